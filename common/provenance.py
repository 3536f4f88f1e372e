"""Where results come from: the git commit of the code and the versions of the packages that ran it.

Used by ``experiments.runner`` (the store's manifest) and ``experiments.calibration`` (the header of a
calibrated scenario file).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import sim

#: The checkout this code runs from (the folder holding sim/, experiments/, analysis/ and common/).
REPO_ROOT = Path(__file__).resolve().parent.parent


def git_commit(short: bool = False) -> str | None:
    """The commit checked out in :data:`REPO_ROOT` (abbreviated with ``short``); None outside a git
    checkout or without git."""
    cmd = ["git", "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = res.stdout.strip()
    return commit if res.returncode == 0 and commit else None


def versions() -> dict[str, str | None]:
    """Python's version and those of mesa, numpy, pandas, pyarrow and this package (None when absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("mesa", "numpy", "pandas", "pyarrow", "wenzheng"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = getattr(sim, "__version__", None) if name == "wenzheng" else None
    return out
