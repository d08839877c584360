"""Where the uvicorn workers of `accounts-api serve` keep their metrics, so that /metrics adds
them up whichever worker answers (prometheus_client's multiprocess mode, issue 9).

prometheus_client chooses its mode when it is imported, from PROMETHEUS_MULTIPROC_DIR: the
variable must be set before any process of the service imports it. `serve` calls
`prepare_multiprocess_directory()` first; the workers uvicorn spawns inherit the environment.
This module therefore does not import prometheus_client (metrics.py does).

- PROMETHEUS_MULTIPROC_DIR unset: a fresh directory only this user can read, removed when
  `serve` exits. A `serve` killed outright (SIGKILL) cannot remove it: the next one removes
  those whose process is gone (their names carry its pid).
- set by the operator: that directory, emptied now (prometheus_client's documentation: files
  of an earlier run would be added to this one's), and left in place at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psutil

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "accounts-api-metrics-"


def prepare_multiprocess_directory() -> Path:
    """Sets PROMETHEUS_MULTIPROC_DIR for this process and those it starts; returns it."""
    configured = os.environ.get(VARIABLE)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return path
    if "prometheus_client" in sys.modules:
        # it has chosen its single-process mode already: this process's metrics would not be
        # in the directory (an import of metrics.py crept into the CLI's imports)
        raise RuntimeError("prometheus_client was imported before its directory was prepared")
    _remove_abandoned(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    os.environ[VARIABLE] = str(path)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _remove_abandoned(parent: Path) -> None:
    """The private directories of `serve` processes that are gone."""
    for path in parent.glob(f"{PREFIX}*-*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
