"""``rcm-gen synth``: area and timing of a design point on an ASIC library or an FPGA; and
the option handling that the commands which read a synthesized design share."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["add_parser", "check_json_path", "cmd_synth", "design_of", "load_constraints_file",
           "name_of", "verilog_args", "write_report"]

_TARGETS = ("asic", "ecp5", "ice40", "nexus")


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


def check_json_path(path: str) -> None:
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"--json {path!r}: folder {str(folder)!r} does not exist or is not "
                        "writable")


def design_of(args: argparse.Namespace, clock: str | None = None) -> Any:
    """The design: PRESET or --config (with --set), or --verilog FILE... --top NAME (its
    clock input ``clock``, else --clock-port)."""
    from ..cli import design_from_args

    if args.verilog is None:
        if args.top is not None:
            raise UserError(f"--top {args.top!r} applies to --verilog designs")
        if getattr(args, "clock_port", None) is not None:
            raise UserError(f"--clock-port {args.clock_port!r} applies to --verilog designs")
        return design_from_args(args)
    if args.preset or args.config:
        raise UserError(f"give PRESET, --config or --verilog, not both "
                        f"({args.preset or args.config!r} and --verilog)")
    if args.set:
        raise UserError(f"--set applies to PRESET or --config designs, not --verilog "
                        f"({args.set[0]!r})")
    from .user_design import user_design

    return user_design(args.verilog, args.top,
                       clock or getattr(args, "clock_port", None) or "clk")


def name_of(args: argparse.Namespace) -> str:
    if getattr(args, "verilog", None):
        return args.top
    return args.preset or Path(args.config).stem


def cmd_synth(args: argparse.Namespace) -> int:
    """Run ``rcm-gen synth``; exit status 0 (UserError and ToolFailed propagate)."""
    from ..presets import apply_overrides, preset
    from .synth import (
        TARGETS,
        check_clock,
        compare,
        footer,
        format_comparisons,
        format_report,
        run_dir,
        synthesize,
    )

    if args.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, not {args.target!r}")
    if args.verilog is not None and args.target != "asic":
        raise UserError(f"--verilog designs are synthesized for --target asic, not "
                        f"{args.target!r}")
    config = design_of(args)
    check_clock(args.clock_ns)
    if args.liberty is not None and args.target != "asic":
        raise UserError(f"--liberty applies to --target asic, not {args.target!r}")
    from .asic import HIERARCHY_MODES

    if args.hierarchy not in HIERARCHY_MODES:
        raise UserError(f"--hierarchy must be one of {', '.join(HIERARCHY_MODES)}, not "
                        f"{args.hierarchy!r}")
    if args.hierarchy != "hier" and args.target != "asic":
        raise UserError(f"--hierarchy applies to --target asic, not {args.target!r}")
    if args.sta is not None:
        if args.target != "asic":
            raise UserError(f"--sta applies to --target asic, not {args.target!r}")
        from .asic import check_sta_mode

        check_sta_mode(args.sta, "flat" if args.verilog is not None else args.hierarchy)
    constraints = load_constraints_file(args.constraints) if args.constraints else None
    # Every input is checked before any synthesis starts.
    lib = None
    from .fpga import check_family

    check_family(config, args.target)
    if args.target == "asic":
        from .asic import _resolve_liberty, asic_constraints, memory_platform

        given = {"clock_ns": args.clock_ns, "liberty": args.liberty}
        lib, lib_settings = _resolve_liberty(asic_constraints(
            {**(constraints or {}), **{k: v for k, v in given.items() if v is not None}}))
        # the memory binding of the design for this liberty: a bad macro library or one
        # that does not go with the liberty is an error before anything runs
        memory_platform(config, lib, lib_settings.get("dont_use") or ())
    else:
        from .fpga import fpga_constraints

        fpga_constraints(args.target, {
            **(constraints or {}),
            **({"clock_ns": args.clock_ns} if args.clock_ns is not None else {})})
    others = []
    for name in args.compare or []:
        try:
            other = apply_overrides(preset(name), args.set)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--compare: {exc}") from None
        check_family(other, args.target)
        if lib is not None:
            memory_platform(other, lib, lib_settings.get("dont_use") or ())
        others.append((name, other))
    if args.json:
        check_json_path(args.json)

    def run(cfg: Any, name: str) -> dict[str, Any]:
        out = (Path(args.out) / name if args.out else
               run_dir(cfg, args.target, args.liberty, args.clock_ns, constraints,
                       args.hierarchy, args.sta))
        print(f"synthesizing {name} for {args.target} in {out} ...", flush=True)
        return synthesize(cfg, args.target, out_dir=out, liberty=args.liberty,
                          clock_ns=args.clock_ns, constraints=constraints,
                          hierarchy=args.hierarchy, sta=args.sta)

    name = name_of(args)
    report = run(config, name)
    if not others:
        print(format_report(report, name))
    else:
        comparisons = []
        for other_name, other in others:
            second = run(other, other_name)
            comparisons.append({"preset": other_name, "report": second,
                                "ratios": compare(report, second, config, other)})
        print(format_comparisons(report, name, [(c["report"], c["preset"], c["ratios"])
                                                for c in comparisons]))
        for r, label in ((report, name), *((c["report"], c["preset"]) for c in comparisons)):
            print(f"{label}:")
            print("\n".join(f"  {line}" for line in footer(r)))
        # "compare": the first comparison (as with one --compare); "comparisons": all
        report = {**report, "compare": comparisons[0], "comparisons": comparisons}
    if args.json:
        write_report(args.json, report)
    return 0


def verilog_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verilog", nargs="+", metavar="FILE",
                   help="the user's own Verilog/SystemVerilog files instead of a preset")
    p.add_argument("--top", metavar="NAME", help="top module of the --verilog files")


def write_report(path: str, report: dict[str, Any]) -> None:
    """Write ``report`` as JSON to ``path`` whole (through a temporary file) and say so."""
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"report {path}")


def add_parser(subparsers: Any, design_args: Any) -> None:
    """Add the ``synth`` subcommand."""
    p = subparsers.add_parser(
        "synth", help="synthesize a design point: ASIC area and timing, or FPGA resources",
        description="Synthesize with Yosys onto a liberty library and time with OpenSTA "
                    "(--target asic), or synthesize, place and route with nextpnr (ecp5, "
                    "ice40, nexus). Prints a table; --json writes the report.")
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
                        "clock_ns, device, pnr_timeout_s, router, placer and dsp (ecp5, "
                        "ice40, nexus)")
    p.add_argument("--hierarchy", default="hier", metavar="hier|flat",
                   help="asic: synthesize each distinct module once and compose (hier, the "
                        "default) or the whole design flattened in one run (flat)")
    p.add_argument("--sta", default=None, metavar="models|full",
                   help="asic: time each distinct module once and the top with a timing "
                        "model per instance (models, the default with --hierarchy hier) or "
                        "the whole composed netlist (full)")
    p.add_argument("--json", metavar="R.json", help="write the report as JSON")
    p.add_argument("--out", metavar="DIR",
                   help="keep scripts, netlists and logs in DIR/<name> (default: the cache)")
    p.add_argument("--compare", action="append", metavar="PRESET",
                   help="also synthesize PRESET (with the same --set) and print the ratios, "
                        "and MACs per cycle (per mm2) in each mode of the design beside it "
                        "(repeatable)")
    verilog_args(p)
    p.add_argument("--clock-port", metavar="NAME",
                   help="--verilog: the clock input that static timing clocks (default clk)")
    p.set_defaults(func=cmd_synth)
