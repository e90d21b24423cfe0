"""Lint generated Verilog with Yosys ``check -assert`` and Verilator ``--lint-only -Wall``."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..tools import verilator_env, verilator_root
from .yosys import YosysError, run_yosys

__all__ = ["VERILATOR_WAIVERS", "LintResult", "lint_verilator", "lint_yosys"]

#: Warning classes Amaranth's Verilog backend trips by construction, and only these, waived
#: by name: it sizes expressions wider or narrower than their destinations (WIDTHEXPAND,
#: WIDTHTRUNC), keeps every bit of a multi-bit signal when only some are read
#: (UNUSEDSIGNAL), declares every register with its reset value and assigns it in an
#: always block (PROCASSINIT); and rcm_gen writes a design's modules into one file, named
#: after the top (DECLFILENAME).
VERILATOR_WAIVERS = ("WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "PROCASSINIT", "DECLFILENAME")


@dataclass(frozen=True)
class LintResult:
    tool: str
    clean: bool
    log: Path
    messages: tuple[str, ...]


def _models(verilog: Path, log: Path, libraries: tuple[str, ...]) -> list[Path]:
    """Behavioural models of the memory macros and FPGA primitives ``verilog``
    instantiates, written beside ``log`` (``models/``)."""
    from .macros import write_models

    return write_models(verilog.read_text(), log.parent / "models", libraries)


def lint_yosys(verilog: Path, top: str, log: Path, libraries: tuple[str, ...] = ()
               ) -> LintResult:
    """``hierarchy; proc; check -assert`` on ``verilog`` (memory macros it instantiates,
    of the shipped macro libraries or of ``libraries``, are black boxes)."""
    models = _models(verilog, log, libraries)
    try:
        run_yosys([*(f"read_verilog -lib {m.resolve()}" for m in models),
                   f"read_verilog {verilog.resolve()}", f"hierarchy -check -top {top}",
                   "proc", "check -assert"], log)
        return LintResult("yosys", True, log, ())
    except YosysError:
        text = log.read_text(errors="replace")
        msgs = tuple(ln for ln in text.splitlines() if "Warning" in ln or "ERROR" in ln)
        return LintResult("yosys", False, log, msgs)


def lint_verilator(verilog: Path, top: str, log: Path, libraries: tuple[str, ...] = ()
                   ) -> LintResult:
    """``verilator --lint-only -Wall`` with only :data:`VERILATOR_WAIVERS` waived (with
    the behavioural models of the memory macros ``verilog`` instantiates, linted too)."""
    exe = verilator_root() / "bin" / "verilator"
    models = _models(verilog, log, libraries)
    cmd = [str(exe), "--lint-only", "-Wall", *(f"-Wno-{w}" for w in VERILATOR_WAIVERS),
           "--top-module", top, str(verilog.resolve()), *(str(m.resolve()) for m in models)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=verilator_env())
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    msgs = tuple(ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("%"))
    return LintResult("verilator", proc.returncode == 0 and not msgs, log, msgs)
