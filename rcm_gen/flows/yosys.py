"""Run a Yosys script with the pyosys library, in a subprocess.

A Yosys error inside pyosys ends the whole Python process, so scripts never run in the
caller's process: :func:`run_yosys` starts ``python -m rcm_gen.flows.yosys SCRIPT`` and
keeps its log.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from ..errors import ToolFailed, ToolMissingError

__all__ = ["YosysError", "run_yosys"]


class YosysError(ToolFailed):
    """A Yosys run failed; the message names the log."""


def run_yosys(commands: list[str], log_path: str | Path, cwd: str | Path | None = None,
              timeout: float | None = None) -> str:
    """Run Yosys ``commands`` (one pass per item) and return the log text.

    Raises
    ------
    ToolMissingError
        If pyosys is not installed.
    YosysError
        If Yosys reports an error or the process fails; the message names the log.
    """
    # found, not imported: importing pyosys sets RTLD_GLOBAL for every extension module
    # loaded after it, and two pybind11 modules (cocotb's, matplotlib's) then clash
    if importlib.util.find_spec("pyosys") is None:
        raise ToolMissingError(
            "tool 'yosys' (pyosys) is not installed: pip install pyosys") from None
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    script = log_path.with_suffix(".ys")
    script.write_text("\n".join(commands) + "\n")
    with open(log_path, "w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "rcm_gen.flows.yosys", str(script.resolve())],
            stdout=log, stderr=subprocess.STDOUT, cwd=cwd, timeout=timeout)
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0 or "\nERROR:" in text or text.startswith("ERROR:"):
        lines = [ln for ln in text.splitlines() if ln.startswith("ERROR:")]
        reason = lines[0] if lines else f"exit status {proc.returncode}"
        raise YosysError(f"Yosys failed ({reason}); log: {log_path}")
    return text


def _main(script: str) -> int:
    from pyosys import libyosys as ys

    design = ys.Design()
    for line in Path(script).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ys.run_pass(line, design)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1]))
