# Wenzheng (问政) — set-up and the everyday commands.
# Every target creates .venv when it is missing, with a Python >= 3.12 found by scripts/find_python.sh
# (override with `make PYTHON=/path/to/python3.12 ...`), and re-installs only when pyproject.toml changed.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
ARGS ?=

.PHONY: run test lint bench baseline explore venv kernels clean

$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
		interp="$$(PYTHON='$(PYTHON)' bash scripts/find_python.sh)" || exit 1; \
		echo "creating $(VENV) with $$interp"; \
		"$$interp" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,explorer]'
	@touch $(STAMP)

venv: $(STAMP)

# The kernels compiled ahead of time (sim/aot.py): built once (about 35 s), and again after sim/kernels.py
# changes; a no-op otherwise. Without a C compiler it says so, and runs use the other kernels (sim/jit.py).
kernels: $(STAMP)
	@$(PY) -m sim.aot build

run: kernels
	$(PY) run.py $(ARGS)

# The suite runs on TEST_WORKERS processes (pytest-xdist), one test file per worker at a time.
TEST_WORKERS ?= 2

test: kernels
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

bench: kernels
	$(PY) -m bench $(ARGS)

# Re-pin tests/baseline.json: only for a change that is meant to move results (say so in the commit).
baseline: $(STAMP)
	$(PY) tests/test_baselines.py --repin

explore: kernels
	$(PY) run.py explore $(or $(SCENARIO),scenarios/default.yaml)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache sim/_kaot_*
