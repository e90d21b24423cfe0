"""``rcm-gen synth``: area and timing of a design point on an ASIC library or an FPGA."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["add_parser"]


def _ratios(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    if a["target"] == "asic":
        return {"area": a["area_um2"] / b["area_um2"],
                "critical_path": a["critical_path_ns"] / b["critical_path_ns"],
                "fmax": a["fmax_mhz"] / b["fmax_mhz"]}
    out = {k: a[k] / b[k] for k in ("luts", "ffs") if b[k]}
    out["fmax"] = a["fmax_mhz"] / b["fmax_mhz"]
    return out


def cmd_synth(args: argparse.Namespace) -> int:
    from ..cli import design_from_args
    from ..presets import apply_overrides, preset
    from .synth import TARGETS, format_report, macs_per_cycle, run_dir, synthesize

    config = design_from_args(args)
    if args.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, not {args.target!r}")
    if args.clock_ns is not None and args.clock_ns <= 0:
        raise UserError(f"--clock-ns must be greater than 0, not {args.clock_ns:g}")
    if args.target == "asic" and args.liberty:
        from .liberty import load_liberty

        load_liberty(args.liberty)  # a bad file is reported before any synthesis
    other = None
    if args.compare:
        try:
            other = apply_overrides(preset(args.compare), args.set)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--compare: {exc}") from None
    if args.json:
        folder = Path(args.json).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UserError(f"--json {args.json!r}: folder {str(folder)!r} does not exist or "
                            "is not writable")

    def run(cfg: Any, name: str) -> dict[str, Any]:
        out = (Path(args.out) / name if args.out else
               run_dir(cfg, args.target, args.liberty, args.clock_ns))
        print(f"synthesizing {name} for {args.target} in {out} ...", flush=True)
        return synthesize(cfg, args.target, out_dir=out, liberty=args.liberty,
                          clock_ns=args.clock_ns)

    name = args.preset or Path(args.config).stem
    report = run(config, name)
    print(format_report(report))
    if other is not None:
        second = run(other, args.compare)
        print(format_report(second))
        ratios = _ratios(report, second)
        print(f"{name} / {args.compare}: " + ", ".join(f"{k} {v:.3f}x"
                                                      for k, v in ratios.items()))
        if args.target == "asic":
            for cfg, rep, label in ((config, report, name), (other, second, args.compare)):
                per = macs_per_cycle(cfg)
                print(f"  {label}: MACs/cycle/mm2 " + ", ".join(
                    f"{_width(cfg) // n}-bit {m / (rep['area_um2'] / 1e6):,.1f}"
                    for n, m in per.items()))
        report = {**report, "compare": {"preset": args.compare, "report": second,
                                        "ratios": ratios}}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report {args.json}")
    return 0


def _width(cfg: Any) -> int:
    return getattr(cfg, "mac", cfg).width


def add_parser(subparsers, design_args) -> None:
    p = subparsers.add_parser(
        "synth", help="synthesize a design point: ASIC area and timing, or FPGA resources",
        description="Synthesize with Yosys onto a liberty library and time with OpenSTA "
                    "(--target asic), or place and route with nextpnr (ecp5, ice40).")
    design_args(p)
    p.add_argument("--target", default="asic", metavar="asic|ecp5|ice40",
                   help="flow (default asic)")
    p.add_argument("--liberty", metavar="FILE",
                   help="cell library (.lib or .lib.gz) instead of the default OSU 0.18 um")
    p.add_argument("--clock-ns", type=float, metavar="T",
                   help="clock period in ns (default from constraints/)")
    p.add_argument("--json", metavar="R.json", help="write the report as JSON")
    p.add_argument("--out", metavar="DIR",
                   help="keep scripts, netlists and logs here (default: the cache)")
    p.add_argument("--compare", metavar="PRESET",
                   help="also synthesize PRESET (with the same --set) and print the ratios")
    p.set_defaults(func=cmd_synth)
