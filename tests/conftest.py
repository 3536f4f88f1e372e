"""Shared fixtures: the repository root, a Python to run the CLI with, and quick scenarios."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python run.py ARGS`` in a fresh process and capture its output."""
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def cli():
    return run_cli


#: flags for headless Chromium on machines with no network but the package registries
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def require_browser(reason: str) -> None:
    """No usable browser: fail when WENZHENG_REQUIRE_BROWSER is set (CI sets it), otherwise skip with the reason."""
    if os.environ.get("WENZHENG_REQUIRE_BROWSER"):
        pytest.fail(f"WENZHENG_REQUIRE_BROWSER is set but {reason}")
    pytest.skip(f"{reason}; install Debian's 'chromium' (CI does) or set WENZHENG_REQUIRE_BROWSER=1 to fail here")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's binary) driven by Playwright; never downloads a browser."""
    path = shutil.which("chromium")
    if path is None:
        require_browser("no 'chromium' binary is on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_browser("the playwright Python package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
