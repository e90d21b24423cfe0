"""Shared fixtures: an isolated cache for builds, and the project's command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Builds and results of a test session go to a folder of their own (shared by
    xdist workers through RCM_GEN_CACHE if it is set by the caller).  Simulation builds are
    shared by the session's xdist workers in any case (one process at a time builds and runs
    a design), so that a design is compiled once per session."""
    base = tmp_path_factory.getbasetemp()
    if "RCM_GEN_CACHE" not in os.environ:
        os.environ["RCM_GEN_CACHE"] = str(base / "cache")
    if "RCM_GEN_SIM_CACHE" not in os.environ:
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        os.environ["RCM_GEN_SIM_CACHE"] = str(shared / "sim-cache")


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m rcm_gen ARGS`` in a subprocess and capture its output."""
    return subprocess.run([sys.executable, "-m", "rcm_gen", *args], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})},
                          timeout=timeout)


@pytest.fixture
def cli():
    return run_cli

