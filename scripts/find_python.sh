#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12, or explain what to install and exit 1.
# Order: $PYTHON; python3.12 / python3.13 / python3 on the PATH; pyenv-installed 3.13.x / 3.12.x.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
if [ -n "${PYTHON:-}" ]; then
    if ok "$PYTHON"; then command -v "$PYTHON" || echo "$PYTHON"; exit 0; fi
    echo "PYTHON=$PYTHON is not a working Python >= 3.12" >&2; exit 1
fi
for cand in python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && ok "$cand"; then
        "$cand" -c 'import sys; print(sys.executable)'; exit 0
    fi
done
# pyenv shims exist but refuse to run a version that is not selected: call the installed binaries directly.
if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
    for v in $(ls -1 "$root/versions" 2>/dev/null | grep -E '^3\.1[2-9]\.[0-9]+$' | sort -V); do
        for exe in "$root/versions/$v/bin/python3"; do
            if [ -x "$exe" ] && ok "$exe"; then echo "$exe"; exit 0; fi
        done
    done
fi
echo "No Python >= 3.12 found. Install one (e.g. 'pyenv install 3.12' or your OS package python3.12)," >&2
echo "or point to it: make PYTHON=/path/to/python3.12 ..." >&2
exit 1
