"""``rcm-gen power``: energy per operation of a MAC or a tile, from a gate-level simulation
of its synthesized netlist."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..flows.cli import (
    check_json_path,
    design_of,
    load_constraints_file,
    name_of,
    verilog_args,
    write_report,
)

__all__ = ["add_parser", "cmd_power"]


def cmd_power(args: argparse.Namespace) -> int:
    """Run ``rcm-gen power``; exit status 0 (UserError and ToolFailed propagate)."""
    from ..flows.synth import check_clock
    from ..flows.user_design import load_port_map
    from ..presets import apply_overrides, preset
    from ..progress import ProgressLine
    from .mac import compare_power, format_power, mac_energy

    if args.target != "asic":
        raise UserError(f"--target must be asic for power, not {args.target!r}")
    check_clock(args.clock_ns)
    if args.cycles is not None and args.cycles < 1:
        raise UserError(f"--cycles must be at least 1, not {args.cycles}")
    from ..sim.gate_run import GATE_SIMULATORS

    if args.simulator is not None and args.simulator not in GATE_SIMULATORS:
        raise UserError(f"--simulator must be one of {', '.join(GATE_SIMULATORS)}, not "
                        f"{args.simulator!r}")
    from ..sim.power_stimulus import STIMULUS_KINDS

    if not args.stimulus.endswith(".npz") and args.stimulus not in STIMULUS_KINDS:
        raise UserError(f"--stimulus must be one of {', '.join(STIMULUS_KINDS)} or a .npz "
                        f"file, not {args.stimulus!r}")
    if args.stimulus.endswith(".npz") and not Path(args.stimulus).is_file():
        raise UserError(f"--stimulus {args.stimulus!r}: file not found")
    constraints = load_constraints_file(args.constraints) if args.constraints else None
    from ..flows.asic import asic_constraints

    asic_constraints({**(constraints or {}),
                      **{k: v for k, v in {"clock_ns": args.clock_ns,
                                           "liberty": args.liberty}.items() if v is not None}})
    if args.liberty:
        from ..flows.liberty import load_liberty

        load_liberty(args.liberty)
    ports = None
    if args.verilog is not None:
        if not args.ports:
            raise UserError("--verilog needs --ports FILE.toml (the roles of its ports)")
        ports = load_port_map(args.ports)
    elif args.ports:
        raise UserError(f"--ports {args.ports!r} applies to --verilog designs")
    design = design_of(args, ports.clock if ports else None)
    from ..flows.fpga import check_family

    check_family(design, "asic")  # an FPGA's primitives (mac.dsp_block) have no netlist here
    if getattr(args, "timed", False) or getattr(args, "opensta", False):
        return _power_checks(args, design, ports, constraints)
    from ..config import MacConfig
    from ..tile.config import TileConfig

    if isinstance(design, TileConfig):
        return _tile_power(args, design, constraints)
    if not isinstance(design, (MacConfig, type(None))) and args.verilog is None:
        raise UserError(f"power runs on a MAC (a mac preset, a MAC --config or --verilog), "
                        f"not a {design.kind}")
    others = []
    for name in args.compare or []:
        try:
            other = apply_overrides(preset(name), args.set)  # as synth --compare does
        except (TypeError, ValueError) as exc:
            raise UserError(f"--compare: {exc}") from None
        if not isinstance(other, MacConfig):
            raise UserError(f"--compare {name!r}: power compares MACs, not a {other.kind}")
        others.append((name, other))
    if args.json:
        check_json_path(args.json)

    runs = [(name_of(args), design, ports), *((n, c, None) for n, c in others)]
    # the bar counts simulated cycles of all designs (each is simulated once)
    bar = ProgressLine(len(runs), "power", enabled=not args.quiet)
    reports = []
    try:
        for i, (name, cfg, pmap) in enumerate(runs):
            bar.update(0, f"{name} ({i + 1}/{len(runs)}): netlist and gate-level build")

            def progress(done: int, total: int, n: str = name, k: int = i) -> None:
                bar.update(done, f"{n} ({k + 1}/{len(runs)}): simulating cycles",
                           total=total)

            # compared designs run the first design's data widths, each in its own mode
            points = ([(m["act_bits"], m["weight_bits"]) for m in reports[0]["modes"]]
                      if reports else None)
            reports.append(mac_energy(
                cfg, stimulus=args.stimulus, liberty=args.liberty,
                clock_ns=args.clock_ns, constraints=constraints,
                simulator=args.simulator or "verilator", ports=pmap, seed=args.seed,
                on_progress=progress,
                cycles=1000 if args.cycles is None else args.cycles,
                points=list(dict.fromkeys(points)) if points else None,
                on_synth=lambda out, n=name: bar.update(0, f"{n}: synthesizing in {out}")))
        bar.update(bar.total, "done", final=True)
    finally:
        bar.close()
    for (name, _, _), r in zip(runs, reports, strict=True):
        print(format_power(r, name))
    report = reports[0]
    if others:
        report = {**report, "compare": []}
        for (name, _, _), other in zip(runs[1:], reports[1:], strict=True):
            ratios = compare_power(reports[0], other)
            report["compare"].append({"preset": name, "report": other, "ratios": ratios})
            print(f"pJ/MAC of {runs[0][0]} / {name} on the same data:")
            for r in ratios:
                print(f"  {r['act_bits']:2d}-bit {'signed' if r['act_signed'] else 'unsigned'}"
                      f" activations x {r['weight_bits']:2d}-bit weights ({r['mode']} / "
                      f"{r['other_mode']}): {r['pj_per_mac']:.3f} / "
                      f"{r['other_pj_per_mac']:.3f} = {r['ratio']:.3f}x")
    if args.json:
        write_report(args.json, report)
    return 0


def _tile_power(args: argparse.Namespace, design: Any, constraints: dict[str, Any] | None
                ) -> int:
    """``rcm-gen power`` of a tile: a real layer per mode, recorded in RTL and replayed at
    gate level (:func:`rcm_gen.power.tile.tile_energy`)."""
    from ..presets import apply_overrides, preset
    from ..tile.config import TileConfig
    from .tile import format_tile_energy, tile_energy

    if args.stimulus != "random":
        raise UserError(f"--stimulus for a tile must be random (a real layer of random "
                        f"operands per mode), not {args.stimulus!r}")
    if args.cycles is not None:
        raise UserError(f"--cycles {args.cycles} applies to MACs; a tile runs a whole layer "
                        "per mode")
    if args.simulator not in (None, "cycle"):
        raise UserError(f"--simulator for a tile must be cycle (rcm_gen's compiled gate-level "
                        f"simulator, which runs a tile's netlist), not {args.simulator!r}")
    from ..config import MacConfig

    others, macs = [], []
    for name in args.compare or []:
        try:
            # a tile compared with a tile takes the same --set; a MAC is the preset itself
            base = preset(name)
            other = apply_overrides(base, args.set) if isinstance(base, TileConfig) else base
        except (TypeError, ValueError) as exc:
            raise UserError(f"--compare: {exc}") from None
        if isinstance(other, MacConfig):
            macs.append((name, other))
        elif isinstance(other, TileConfig):
            others.append((name, other))
        else:
            raise UserError(f"--compare {name!r}: a tile compares with tiles and MACs, not a "
                            f"{other.kind}")
    if args.json:
        check_json_path(args.json)
    runs = [(name_of(args), design), *others]
    reports = []
    for name, cfg in runs:
        def log(message: str, n: str = name) -> None:
            if not args.quiet:
                print(f"{n}: {message}", flush=True)

        reports.append(tile_energy(cfg, seed=args.seed, liberty=args.liberty,
                                   clock_ns=args.clock_ns, constraints=constraints,
                                   glitches=not args.no_glitches, log=log))
    for (name, _), r in zip(runs, reports, strict=True):
        print(format_tile_energy(r, name))
    report = reports[0]
    if macs:
        report = {**report, "compare_macs": _compare_with_macs(args, report, macs,
                                                               constraints)}
    if others:
        report = {**report, "compare": []}
        for (name, _), other in zip(runs[1:], reports[1:], strict=True):
            index = {m["act_bits"]: m for m in other["modes"]}
            ratios = [{"act_bits": m["act_bits"], "pj_per_mac": m["pj_per_mac"],
                       "other_pj_per_mac": index[m["act_bits"]]["pj_per_mac"],
                       "ratio": m["pj_per_mac"] / index[m["act_bits"]]["pj_per_mac"]}
                      for m in report["modes"] if m["act_bits"] in index]
            report["compare"].append({"preset": name, "report": other, "ratios": ratios})
            print(f"pJ/MAC of {runs[0][0]} / {name} on the same layers:")
            for r in ratios:
                print(f"  {r['act_bits']:2d}-bit: {r['pj_per_mac']:.3f} / "
                      f"{r['other_pj_per_mac']:.3f} = {r['ratio']:.3f}x")
    if args.json:
        write_report(args.json, report)
    return 0


def _compare_with_macs(args: argparse.Namespace, report: dict[str, Any],
                       macs: list[tuple[str, Any]], constraints: dict[str, Any] | None
                       ) -> list[dict[str, Any]]:
    """A tile's pJ/MAC beside lone MACs' on the same library and clock, at each of the
    tile's precisions (random operands, signed activations, the MAC's fastest mode
    that holds them)."""
    from .mac import format_power, mac_energy

    points = sorted({(m["act_bits"], m["weight_bits"]) for m in report["modes"]},
                    reverse=True)
    out = []
    for name, cfg in macs:
        if not args.quiet:
            print(f"{name}: gate-level power of the lone MAC, 1000 cycles per precision",
                  flush=True)
        r = mac_energy(cfg, liberty=args.liberty, clock_ns=args.clock_ns,
                       constraints=constraints, seed=args.seed, cycles=1000, points=points)
        print(format_power(r, name))
        index = {(m["act_bits"], m["weight_bits"]): m for m in r["modes"] if m["act_signed"]}
        ratios = []
        for m in report["modes"]:
            lone = index.get((m["act_bits"], m["weight_bits"]))
            if lone:
                # like with like: the lone MAC's run is zero-delay, so the tile's figure
                # without the glitch factors it may carry
                tile = m.get("zero_delay", m)["pj_per_mac"]
                ratios.append({"act_bits": m["act_bits"], "pj_per_mac": tile,
                               "mac_pj_per_mac": lone["pj_per_mac"],
                               "ratio": tile / lone["pj_per_mac"], "zero_delay": True})
        print(f"pJ/MAC of {name_of(args)} / the lone {name} at each precision, both "
              "zero-delay:")
        for x in ratios:
            print(f"  {x['act_bits']:2d}-bit: {x['pj_per_mac']:.3f} / {x['mac_pj_per_mac']:.3f} "
                  f"= {x['ratio']:.2f}x")
        out.append({"preset": name, "report": r, "ratios": ratios})
    return out


def _power_checks(args: argparse.Namespace, design: Any, ports: Any,
                  constraints: dict[str, Any] | None) -> int:
    """``rcm-gen power --timed`` (glitches: zero-delay against timing simulation,
    :mod:`rcm_gen.power.glitch`) and ``--opensta`` (the energy model against OpenSTA's
    ``report_power`` on the same activity, :mod:`rcm_gen.power.opensta`)."""
    from ..config import MacConfig
    from ..presets import apply_overrides, preset
    from ..tile.config import TileConfig
    from ..tools import cache_dir

    tile = isinstance(design, TileConfig)
    if args.timed and not isinstance(design, MacConfig) and args.verilog is None:
        raise UserError(f"--timed runs on a MAC (a mac preset, a MAC --config or --verilog), "
                        f"not a {design.kind}")
    if tile and (args.cycles is not None or args.stimulus != "random"):
        raise UserError("--cycles and --stimulus apply to MACs; a tile runs a whole layer "
                        "per mode")
    if args.simulator not in (None, "verilator", "icarus") and not tile:
        raise UserError(f"--simulator for --timed or --opensta on a MAC must be verilator or "
                        f"icarus, not {args.simulator!r}")
    others = []
    for name in args.compare or []:
        try:
            other = apply_overrides(preset(name), args.set)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--compare: {exc}") from None
        if not isinstance(other, type(design)) and not (args.verilog and isinstance(
                other, MacConfig)):
            raise UserError(f"--compare {name!r}: compares like with like, not a "
                            f"{other.kind}")
        others.append((name, other, None))
    if args.json:
        check_json_path(args.json)
    common = {"liberty": args.liberty, "clock_ns": args.clock_ns, "constraints": constraints}
    runs = [(name_of(args), design, ports), *others]
    report: dict[str, Any] = {"designs": {}}
    for name, cfg, pmap in runs:
        def log(message: str, n: str = name) -> None:
            if not args.quiet:
                print(f"{n}: {message}", flush=True)

        entry: dict[str, Any] = {}
        if args.timed:
            from .glitch import format_glitch, glitch_report

            entry["timed"] = glitch_report(
                cfg, ports=pmap, stimulus=args.stimulus, seed=args.seed,
                cycles=1000 if args.cycles is None else args.cycles,
                simulator=args.simulator or "verilator", log=log, **common)
            print(format_glitch(entry["timed"], name))
        if args.opensta:
            from .opensta import format_comparison, mac_activity, tile_activity

            log("gate-level run for OpenSTA's activity")
            if isinstance(cfg, TileConfig):
                act = tile_activity(cfg, seed=args.seed, **common)
            else:
                act = mac_activity(cfg, ports=pmap, stimulus=args.stimulus, seed=args.seed,
                                   cycles=1000 if args.cycles is None else args.cycles,
                                   simulator=args.simulator or "verilator", **common)
            entry["opensta"] = act.compare(cache_dir() / "opensta" / f"{name}-"
                                           f"{act.power.lib.name}")
            print(format_comparison(entry["opensta"], f"{name} ({act.what}, {act.checked:,}"
                                                      " output values checked)"))
        report["designs"][name] = entry
    if args.timed and others:
        first = report["designs"][runs[0][0]]["timed"]
        for name, _, _ in runs[1:]:
            other = report["designs"][name]["timed"]
            index = {(m["act_bits"], m["weight_bits"], m["act_signed"]): m
                     for m in other["modes"]}
            print(f"pJ/MAC of {runs[0][0]} / {name} on the same data, zero-delay and timed:")
            for m in first["modes"]:
                o = index.get((m["act_bits"], m["weight_bits"], m["act_signed"]))
                if o:
                    z = m["pj_per_mac"]["zero_delay"] / o["pj_per_mac"]["zero_delay"]
                    t = m["pj_per_mac"]["timed"] / o["pj_per_mac"]["timed"]
                    print(f"  {m['act_bits']:2d}x{m['weight_bits']:<2d} "
                          f"{'signed' if m['act_signed'] else 'unsigned'}: {z:.3f}x "
                          f"zero-delay, {t:.3f}x timed")
    if args.json:
        write_report(args.json, report)
    return 0


def add_parser(subparsers: Any, design_args: Any) -> None:
    """Add the ``power`` subcommand."""
    p = subparsers.add_parser(
        "power", help="energy per operation of a MAC or a tile from a gate-level simulation",
        description="Simulate the synthesized netlist (the synth cache) at gate level with "
                    "cell models written from the liberty, in every mode and activation "
                    "signedness, check every result against numpy, count each net's "
                    "toggles and turn them into energy with the liberty's internal_power "
                    "tables, 1/2 C V^2 per transition and leakage. Prints pJ/cycle, pJ/MAC "
                    "and TOPS/W (2 operations per MAC) per mode; --json writes the report. "
                    "A tile runs a real layer per mode through its RTL (checked against "
                    "numpy and the cycle model), and the netlist replays the RTL's inputs "
                    "cycle for cycle (its outputs checked against the RTL's).")
    design_args(p)
    verilog_args(p)
    p.add_argument("--ports", metavar="FILE.toml",
                   help="--verilog: the roles of the design's ports and its mode encoding "
                        "(see rcm_gen/flows/user_design.py)")
    p.add_argument("--target", default="asic", metavar="asic", help="flow (asic only)")
    p.add_argument("--liberty", metavar="FILE",
                   help="cell library (.lib or .lib.gz) instead of the default OSU 0.18 um")
    p.add_argument("--clock-ns", type=float, metavar="T",
                   help="clock period in ns: synthesis target, leakage per cycle, TOPS/W "
                        "(default from rcm_gen/flows/data/asic.toml)")
    p.add_argument("--constraints", metavar="FILE.toml",
                   help="override keys of rcm_gen/flows/data/asic.toml (slews, wire load, ...)")
    p.add_argument("--stimulus", default="random", metavar="random|relu|sparse|FILE.npz",
                   help="operands (default random); a .npz holds arrays a_<bits>, w_<bits>")
    p.add_argument("--cycles", type=int, metavar="N",
                   help="MACs: measured cycles per mode (default 1000); a tile runs a whole "
                        "layer per mode")
    p.add_argument("--simulator", metavar="verilator|icarus|cycle",
                   help="gate-level simulator (default: verilator for a MAC; cycle, "
                        "rcm_gen's compiled cycle-based simulator, for a tile)")
    p.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    p.add_argument("--json", metavar="R.json", help="write the report as JSON")
    p.add_argument("--compare", action="append", metavar="PRESET",
                   help="also run PRESET (with the same --set) on the same data (the first "
                        "design's activation x weight widths, each in PRESET's fastest mode "
                        "that holds them) and print pJ/MAC ratios (repeatable); a tile also "
                        "compares with a MAC preset (as it is, e.g. mac16): the lone MAC's "
                        "pJ/MAC at each of the tile's precisions")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--timed", action="store_true",
                   help="MACs: also run a timing simulation (OpenSTA's SDF on Icarus, "
                        "inertial delays) of the same inputs and report zero-delay and timed "
                        "toggles, pJ/MAC and per-group glitch factors (cached)")
    p.add_argument("--no-glitches", action="store_true",
                   help="tiles: report zero-delay figures only (by default the groups a "
                        "timing simulation of the tile's MAC shows glitching by more than "
                        "5 %% are raised by their factors, and the report says so)")
    p.add_argument("--opensta", action="store_true",
                   help="compare the energy model with OpenSTA's report_power on the run's "
                        "per-net activity (switching, leakage, internal, totals)")
    p.set_defaults(func=cmd_power)
