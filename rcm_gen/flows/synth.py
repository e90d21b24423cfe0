"""One entry point for every synthesis flow, and the readable summary of a report."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..generate import config_hash, top_name
from ..tools import cache_dir, tool_versions
from .asic import run_asic
from .fpga import FPGA_TARGETS, run_fpga

__all__ = ["TARGETS", "cached_report", "format_report", "macs_per_cycle", "run_dir",
           "synthesize"]

TARGETS = ("asic", *FPGA_TARGETS)


def synthesize(config: Any, target: str = "asic", *, out_dir: str | Path,
               liberty: str | None = None, clock_ns: float | None = None,
               constraints: dict[str, Any] | None = None) -> dict[str, Any]:
    """Synthesize ``config`` for ``target`` in ``out_dir`` (scripts and logs kept there).

    Returns the report: ASIC keys ``area_um2``, ``area_by_group``, ``cells``,
    ``critical_path_ns``, ``critical_path``, ``wns_ns``, ``tns_ns``, ``fmax_mhz``,
    ``clock_ns``, ``liberty``; FPGA keys ``luts``, ``ffs``, ``dsps``, ``brams``,
    ``fmax_mhz``, ``device``; both ``config``, ``target``, ``tools``, ``log``, ``wall_s``.

    Raises
    ------
    UserError
        Unknown target, bad liberty or constraint, missing tool.
    ToolFailed
        A tool failed or its report cannot be parsed (the message names the log).
    """
    if target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    if clock_ns is not None and (isinstance(clock_ns, bool)
                                 or not isinstance(clock_ns, (int, float)) or clock_ns <= 0):
        raise UserError(f"--clock-ns must be greater than 0, not {clock_ns!r}")
    out_dir = Path(out_dir)
    if target == "asic":
        report = run_asic(config, out_dir, liberty=liberty, clock_ns=clock_ns,
                          constraints=constraints)
    else:
        if liberty is not None:
            raise UserError(f"--liberty applies to --target asic, not {target!r}")
        report = run_fpga(config, target, out_dir, clock_ns=clock_ns)
    tmp = out_dir / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out_dir / "report.json")  # written last: its presence means complete
    return report


def run_dir(config: Any, target: str = "asic", liberty: str | None = None,
            clock_ns: float | None = None) -> Path:
    """The cache folder of a synthesis run: one per design point, target, library, clock
    and tool versions."""
    settings = json.dumps([liberty and str(Path(liberty).resolve()), clock_ns,
                           tool_versions("rcm_gen", "amaranth", "yosys")], sort_keys=True)
    key = hashlib.sha256(settings.encode()).hexdigest()[:8]
    return cache_dir() / "synth" / f"{top_name(config)}-{config_hash(config)}-{target}-{key}"


def cached_report(config: Any, target: str = "asic", liberty: str | None = None,
                  clock_ns: float | None = None) -> dict[str, Any] | None:
    """The report of an earlier run with the same settings, if one completed."""
    path = run_dir(config, target, liberty, clock_ns) / "report.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def macs_per_cycle(config: Any) -> dict[int, int]:
    """Multiply-accumulates per cycle of a design point at each lane count."""
    p = getattr(config, "p", 1)
    mac = getattr(config, "mac", config)
    return {n: n * p for n in mac.lanes}


def format_report(r: dict[str, Any]) -> str:
    """A few readable lines summarising a report."""
    if r["target"] == "asic":
        groups = ", ".join(f"{k} {v:,.0f}" for k, v in r["area_by_group"].items() if v)
        cp = r["critical_path"]
        return "\n".join([
            f"area        {r['area_um2']:,.0f} um2 ({groups}); {r['cells']} cells",
            f"timing      critical path {r['critical_path_ns']:.3f} ns at a "
            f"{r['clock_ns']:g} ns clock (WNS {r['wns_ns']:.3f} ns, TNS {r['tns_ns']:.3f} ns)"
            f" -> Fmax {r['fmax_mhz']:.1f} MHz",
            f"            from {cp['startpoint']}",
            f"            to   {cp['endpoint']}",
            f"library     {r['liberty']['name']} ({r['liberty']['path']})",
            f"logs        {r['log']}, {r['sta_log']}  ({r['wall_s']:.1f} s)",
        ])
    return "\n".join([
        f"resources   {r['luts']} LUTs, {r['ffs']} FFs, {r['dsps']} DSPs, {r['brams']} BRAMs "
        f"on {r['target']} {r['device']}",
        f"timing      Fmax {r['fmax_mhz']:.1f} MHz after place and route "
        f"(target {1000 / r['clock_ns']:.1f} MHz)",
        f"logs        {r['synth_log']}, {r['log']}  ({r['wall_s']:.1f} s)",
    ])
