"""``rcm-gen synth``: area and timing of a design point on an ASIC library or an FPGA."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["add_parser", "cmd_synth", "load_constraints_file"]

_TARGETS = ("asic", "ecp5", "ice40")


def load_constraints_file(path: str) -> dict[str, Any]:
    """Constraint overrides from a TOML file; :class:`UserError` if missing or malformed."""
    import tomllib

    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise UserError(f"--constraints {path!r}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--constraints {path!r}: cannot read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--constraints {path!r}: not valid TOML ({exc})") from None


def _check_json_path(path: str) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"--json {path!r}: folder {str(folder)!r} does not exist or is not "
                        "writable")


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``rcm-gen synth``; exit status 0 (UserError and ToolFailed propagate)."""
    from ..cli import design_from_args
    from ..presets import apply_overrides, preset
    from .synth import (
        TARGETS,
        check_clock,
        compare,
        footer,
        format_comparison,
        format_report,
        run_dir,
        synthesize,
    )

    config = design_from_args(args)
    if args.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, not {args.target!r}")
    check_clock(args.clock_ns)
    if args.liberty is not None and args.target != "asic":
        raise UserError(f"--liberty applies to --target asic, not {args.target!r}")
    from .asic import HIERARCHY_MODES

    if args.hierarchy not in HIERARCHY_MODES:
        raise UserError(f"--hierarchy must be one of {', '.join(HIERARCHY_MODES)}, not "
                        f"{args.hierarchy!r}")
    if args.hierarchy != "hier" and args.target != "asic":
        raise UserError(f"--hierarchy applies to --target asic, not {args.target!r}")
    constraints = load_constraints_file(args.constraints) if args.constraints else None
    # Every input is checked before any synthesis starts.
    lib = None
    if args.target == "asic":
        from ..generate import platform_for
        from .asic import _resolve_liberty, asic_constraints

        given = {"clock_ns": args.clock_ns, "liberty": args.liberty}
        lib, _ = _resolve_liberty(asic_constraints(
            {**(constraints or {}), **{k: v for k, v in given.items() if v is not None}}))
        # the memory binding of the design for this liberty: a bad macro library or one
        # that does not go with the liberty is an error before anything runs
        platform_for(config, lib.corner)
    else:
        from .fpga import fpga_constraints

        fpga_constraints(args.target, {
            **(constraints or {}),
            **({"clock_ns": args.clock_ns} if args.clock_ns is not None else {})})
    other = None
    if args.compare:
        try:
            other = apply_overrides(preset(args.compare), args.set)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--compare: {exc}") from None
        if lib is not None:
            platform_for(other, lib.corner)
    if args.json:
        _check_json_path(args.json)

    def run(cfg: Any, name: str) -> dict[str, Any]:
        out = (Path(args.out) / name if args.out else
               run_dir(cfg, args.target, args.liberty, args.clock_ns, constraints,
                       args.hierarchy))
        print(f"synthesizing {name} for {args.target} in {out} ...", flush=True)
        return synthesize(cfg, args.target, out_dir=out, liberty=args.liberty,
                          clock_ns=args.clock_ns, constraints=constraints,
                          hierarchy=args.hierarchy)

    name = args.preset or Path(args.config).stem
    report = run(config, name)
    if other is None:
        print(format_report(report, name))
    else:
        second = run(other, args.compare)
        ratios = compare(report, second, config, other)
        print(format_comparison(report, second, name, args.compare, ratios))
        for r, label in ((report, name), (second, args.compare)):
            print(f"{label}:")
            print("\n".join(f"  {line}" for line in footer(r)))
        report = {**report, "compare": {"preset": args.compare, "report": second,
                                        "ratios": ratios}}
    if args.json:
        tmp = Path(args.json + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(tmp, args.json)
        print(f"report {args.json}")
    return 0


def add_parser(subparsers: Any, design_args: Any) -> None:
    """Add the ``synth`` subcommand."""
    p = subparsers.add_parser(
        "synth", help="synthesize a design point: ASIC area and timing, or FPGA resources",
        description="Synthesize with Yosys onto a liberty library and time with OpenSTA "
                    "(--target asic), or synthesize, place and route with nextpnr (ecp5, "
                    "ice40). Prints a table; --json writes the report.")
    design_args(p)
    p.add_argument("--target", default="asic", metavar="|".join(_TARGETS),
                   help="flow (default asic)")
    p.add_argument("--liberty", metavar="FILE",
                   help="cell library (.lib or .lib.gz) instead of the default OSU 0.18 um")
    p.add_argument("--clock-ns", type=float, metavar="T",
                   help="clock period in ns (default from the shipped constraints, "
                        "rcm_gen/flows/data/)")
    p.add_argument("--constraints", metavar="FILE.toml",
                   help="override constraints: keys of rcm_gen/flows/data/asic.toml (asic) or "
                        "clock_ns and device (ecp5, ice40)")
    p.add_argument("--hierarchy", default="hier", metavar="hier|flat",
                   help="asic: synthesize each distinct module once and compose (hier, the "
                        "default) or the whole design flattened in one run (flat)")
    p.add_argument("--json", metavar="R.json", help="write the report as JSON")
    p.add_argument("--out", metavar="DIR",
                   help="keep scripts, netlists and logs in DIR/<name> (default: the cache)")
    p.add_argument("--compare", metavar="PRESET",
                   help="also synthesize PRESET (with the same --set) and print the ratios")
    p.set_defaults(func=cmd_synth)
