"""``rcm-gen map``: a network's per-layer latency on a design point."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["add_parser", "format_mapping"]


def _read_report(path: str, config: Any) -> dict[str, Any]:
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"--synth-report {path!r}: file not found") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"--synth-report {path!r}: not a JSON report ({exc})") from None
    if not isinstance(report, dict) or "fmax_mhz" not in report or "config" not in report:
        raise UserError(f"--synth-report {path!r}: not an rcm-gen synth report (no fmax_mhz "
                        "or config)")
    if report["config"] != config.to_dict():
        raise UserError(f"--synth-report {path!r}: the report is for a different design point "
                        "than the one mapped")
    return report


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def format_mapping(mapping) -> str:
    cfg = mapping.config
    bw = mapping.bandwidth
    lines = [f"{mapping.network.name} on P={cfg.p} Q={cfg.q} tm={cfg.tm} tn={cfg.tn} tr={cfg.tr} "
             f"tc={cfg.tc} ({cfg.mac.arch} MAC) and its fixed twin"
             + (f"; off-chip bandwidth {bw:g} bytes/cycle" if bw else ""),
             f"{'layer':<10} {'C->M':>10} {'HxW':>9} {'k/s':>4} {'bits':>5} {'N':>2} "
             f"{'tiling m.r.c.ch':>16} {'cycles':>11} {'ideal':>11} {'util':>6} "
             f"{'bytes':>9} {'bound':>7} {'fixed':>11} {'speed-up':>8}"]
    for m in mapping.layers:
        s, t, layer = m.layer.shape, m.cycles.tiling, m.layer
        bits = f"{layer.act_bits}{'s' if layer.act_signed else 'u'}"
        if layer.weight_bits != layer.act_bits:
            bits += f"/{layer.weight_bits}"
        util = m.cycles.macs / (m.latency * cfg.macs * m.cycles.lanes)
        lines.append(
            f"{layer.name:<10} {f'{s.c}->{s.m}':>10} {f'{s.h}x{s.w}':>9} "
            f"{f'{s.k}/{s.stride}':>4} {bits:>5} {m.cycles.lanes:>2} "
            f"{'{tm}.{tr}.{tc}.{channels}'.format(**t) + ('*' if t.get('im2col') else ''):>16} "
            f"{m.latency:>11,} "
            f"{m.cycles.ideal:>11,} {util:>6.1%} {_bytes(m.cycles.bytes_total):>9} "
            f"{m.binding:>7} {m.fixed_latency:>11,} {m.speedup:>7.2f}x")
    traffic = mapping.traffic
    lines.append(f"{'total':<10} {mapping.network.macs:>25,} MACs {'':>17}"
                 f"{mapping.total_cycles:>11,} {mapping.ideal_cycles:>11,} "
                 f"{mapping.utilisation:>6.1%} "
                 f"{_bytes(traffic.get('in', 0) + traffic.get('out', 0)):>9} {'':>7} "
                 f"{mapping.fixed_cycles:>11,} {mapping.speedup_cycles:>7.2f}x")
    if any(m.cycles.tiling.get("im2col") for m in mapping.layers):
        lines.append("* run as a 1x1 layer over its im2col windows (C*k*k channels: the host "
                     "sends each output pixel's window; fills the lanes C leaves empty)")
    lines.append("traffic: " + ", ".join(
        f"{name} {_bytes(traffic.get(name, 0))}" for name in
        ("activations", "weights", "params", "descriptor", "outputs")))
    if bw:
        bound = mapping.memory_bound
        lines.append(f"memory-bound layers at {bw:g} bytes/cycle: "
                     + (", ".join(bound) if bound else "none")
                     + f" (compute alone: {mapping.compute_cycles:,} cycles)")
    if mapping.latency_ms is not None:
        line = (f"latency {mapping.latency_ms:.3f} ms at {mapping.fmax_mhz:.1f} MHz")
        if mapping.fixed_latency_ms is not None:
            line += (f"; fixed twin {mapping.fixed_latency_ms:.3f} ms at "
                     f"{mapping.fixed_fmax_mhz:.1f} MHz; speed-up in time "
                     f"{mapping.speedup_time:.2f}x")
        lines.append(line)
    return "\n".join(lines)


def format_energy(energy: dict[str, Any], model: Any, fixed_model: Any) -> str:
    """The per-layer energy table of ``map --energy`` and its totals."""
    lines = [f"{'layer':<10} {'mode':>7} {'energy uJ':>11} {'pJ/MAC':>8} {'fixed mode':>10} "
             f"{'fixed uJ':>11} {'ratio':>6}"]
    for r in energy["layers"]:
        lines.append(f"{r['name']:<10} {r['mode']:>7} {r['energy_uj']:>11,.2f} "
                     f"{r['pj_per_mac']:>8.2f} {r['fixed_mode']:>10} "
                     f"{r['fixed_energy_uj']:>11,.2f} "
                     f"{r['energy_uj'] / r['fixed_energy_uj']:>6.3f}")
    t = energy["totals"]
    lines.append(f"energy per inference {t['energy_mj']:.3f} mJ ({t['pj_per_mac']:.2f} pJ/MAC) "
                 f"at {t['fmax_mhz']:.1f} MHz; fixed twin {t['fixed_energy_mj']:.3f} mJ "
                 f"({t['fixed_pj_per_mac']:.2f} pJ/MAC) at {t['fixed_fmax_mhz']:.1f} MHz; "
                 f"ratio {t['energy_ratio']:.3f}")
    lines.append(f"EDP {t['edp_mj_s']:.4g} mJ*s (latency {t['latency_ms']:.3f} ms); fixed twin "
                 f"{t['fixed_edp_mj_s']:.4g} mJ*s ({t['fixed_latency_ms']:.3f} ms); ratio "
                 f"{t['edp_ratio']:.3f}")
    g = t.get("groups_mj", {})
    if g:
        lines.append("breakdown (mJ): " + ", ".join(f"{k} {v:.3f}" for k, v in g.items()))
    clk = t.get("clock_mj")
    if clk:
        total_clk = sum(clk.values())
        lines.append(f"clock {total_clk:.3f} mJ ({100 * total_clk / t['energy_mj']:.1f} %) = "
                     + " + ".join(f"{v:.3f} {p}" for p, v in clk.items()))
    for buf, e in sorted((t.get("memories_mj") or {}).items()):
        lines.append(f"  memory {buf}: " + ", ".join(
            f"{k.replace('macro_', 'macro ')} {v:.3f}" for k, v in e.items() if v) + " mJ")
    if t.get("macro_access_mj"):
        lines.append(f"memory macro access energies x0.5 / x2: "
                     f"{t['energy_mj_macro_access_x0_5']:.3f} / "
                     f"{t['energy_mj_macro_access_x2']:.3f} mJ per inference")
    for name, m in (("design", model), ("fixed twin", fixed_model)):
        lines += energy_model_lines(m, name)
    return "\n".join(lines)


def energy_model_lines(m: Any, name: str) -> list[str]:
    """How a tile energy model was validated: the layer of another shape, and each
    held-out layer's error beside the one-parameter baseline's (energy per cycle x
    cycles)."""
    v = m.validation
    lines = [f"energy model of the {name}: calibrated at gate level on "
             f"{len(m.fit['layers'])} layers; on a layer it was not fitted on "
             f"({v['mode']}, {v['cycles']:,} cycles) it gives {v['model_pj'] / 1e6:.3f} "
             f"uJ against {v['gate_pj'] / 1e6:.3f} uJ at gate level ({v['error']:+.1%}; "
             f"energy per cycle x cycles: {v.get('baseline_error', float('nan')):+.1%})"]
    for x in v.get("held_out", []):
        if x["kind"] == "check":
            continue
        s = x["shape"]
        lines.append(f"  held out {x['kind']:<9} {s['c']}->{s['m']} {s['h']}x{s['w']} k{s['k']} "
                     f"s{s.get('stride', 1)} g{s.get('groups', 1)}, {x['act_bits']}-bit: model "
                     f"{x['error']:+.1%}, per-cycle baseline {x['baseline_error']:+.1%}")
    for kind, why in v.get("skipped", {}).items():
        lines.append(f"  held out {kind:<9} not run: {why}")
    if m.glitches:
        lines.append("  glitches carried (a timing simulation of the tile's MAC): "
                     + ", ".join(f"{g} x{f:.2f}" for g, f in m.glitches.items())
                     + " on those groups' dynamic energy (the validation above is "
                       "zero-delay against zero-delay)")
    return lines


def cmd_map(args: argparse.Namespace) -> int:
    from ..cli import design_from_args
    from ..flows.synth import cached_report, run_dir, synthesize
    from ..tools import tool_versions
    from . import load_network
    from .mapping import map_network

    config = design_from_args(args)
    if args.target not in ("asic", "ecp5", "ice40"):
        raise UserError(f"--target must be one of asic, ecp5, ice40, not {args.target!r}")
    if args.energy and args.target != "asic":
        raise UserError(f"--energy needs --target asic (energy comes from a gate-level run of "
                        f"the synthesized ASIC netlist), not {args.target!r}")
    if args.liberty is not None:
        if args.target != "asic":
            raise UserError(f"--liberty applies to --target asic, not {args.target!r}")
        from ..flows.liberty import load_liberty

        load_liberty(args.liberty)
    network = load_network(args.network, args.bits, args.bits_file)
    if args.json:
        folder = Path(args.json).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UserError(f"--json {args.json!r}: folder {str(folder)!r} does not exist or "
                            "is not writable")
    for opt in ("fmax_mhz", "fixed_fmax_mhz", "bandwidth"):
        value = getattr(args, opt)
        if value is not None and not value > 0:
            raise UserError(f"--{opt.replace('_', '-')} must be greater than 0, not {value:g}")
    # refuses layers the point cannot run, first
    mapping = map_network(config, network, bandwidth=args.bandwidth)
    fixed = config if config.is_fixed else config.fixed_twin()

    def fmax_of(cfg, given, report_path) -> tuple[float | None, str]:
        if given is not None:
            return given, "given"
        if report_path:
            return float(_read_report(report_path, cfg)["fmax_mhz"]), report_path
        report = cached_report(cfg, args.target, args.liberty)
        if report is None and (args.synthesize or args.energy):
            print(f"synthesizing {'the fixed twin' if cfg is fixed else 'the design'} for its "
                  "Fmax ...", flush=True)
            report = synthesize(cfg, args.target,
                                out_dir=run_dir(cfg, args.target, args.liberty),
                                liberty=args.liberty)
        if report is None:
            return None, "unknown"
        return float(report["fmax_mhz"]), str(run_dir(cfg, args.target, args.liberty)
                                              / "report.json")

    fmax, src = fmax_of(config, args.fmax_mhz, args.synth_report)
    fixed_fmax, fixed_src = fmax_of(fixed, args.fixed_fmax_mhz, args.fixed_synth_report)
    mapping = map_network(config, network, fmax, fixed_fmax, args.bandwidth)
    energy = None
    if args.energy:
        from ..power.tile_model import calibrate, with_glitches
        from .mapping import mapping_energy

        models = []
        for cfg in (config, fixed):
            name = "the fixed twin" if cfg is fixed else "the design"

            def say(m: str, n: str = name) -> None:
                print(f"energy model of {n}: {m}", flush=True)

            model = calibrate(cfg, liberty=args.liberty, log=say)
            if not args.no_glitches:
                model = with_glitches(model, cfg, liberty=args.liberty,
                                      log=lambda m, s=say: s(f"MAC glitches: {m}"))
            models.append(model)
        energy = mapping_energy(mapping, *models)
    print(format_mapping(mapping))
    if fmax is None:
        print("latency in ms: no Fmax known for this design point; run `rcm-gen synth` on "
              "it, or pass --synthesize, --synth-report or --fmax-mhz")
    report = {
        **mapping.to_dict(), "fmax_source": src, "fixed_fmax_source": fixed_src,
        "config": config.to_dict(), "fixed_config": fixed.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth"),
    }
    if energy is not None:
        print(format_energy(energy, *models))
        report["energy"] = {
            **energy, "liberty": args.liberty,
            "model": "per layer: e_cycle*T + e_step[mode]*S + e_in*B_in + e_out*B_out + "
                     "P_leak*T*t_clk, coefficients per group fitted on gate-level runs "
                     "(rcm_gen.power.tile_model)",
            "calibration": models[0].to_dict(), "fixed_calibration": models[1].to_dict()}
    if args.store:
        from ..dse.store import equal_area_fixed

        match = equal_area_fixed(args.store, config, mapping)
        report["equal_area_fixed"] = match
        if match is None:
            print(f"equal-area fixed point: none in {args.store} within 5 % of this point's "
                  "area")
        else:
            print(f"equal-area fixed point ({match['area_um2']:,.0f} um2): "
                  f"{match['cycles']:,} cycles, speed-up {match['speedup_cycles']:.2f}x in "
                  f"cycles" + (f", {match['speedup_time']:.2f}x in time"
                               if match.get("speedup_time") else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report {args.json}")
    return 0


def add_parser(subparsers, design_args) -> None:
    p = subparsers.add_parser(
        "map", help="map a network onto a design point: per-layer cycles and latency",
        description="Per-layer tiling, lanes and cycles (from the cycle model that is checked "
                    "against RTL simulation), totals, latency at the synthesized clock, and "
                    "the speed-up against the fixed-multiplier twin.")
    design_args(p)
    p.add_argument("--network", required=True, metavar="NAME|FILE",
                   help="resnet18, a network .json file, or an .onnx model")
    p.add_argument("--bits", metavar="CONFIG",
                   help="bit configuration of a built-in network (resnet18: uniform8, "
                        "latency0.5, uniform4, fixed16, ...; default uniform8)")
    p.add_argument("--bits-file", metavar="FILE",
                   help="bit widths of an ONNX model (default: MODEL.bits.json beside it)")
    p.add_argument("--json", metavar="R.json", help="write the mapping as JSON")
    p.add_argument("--fmax-mhz", type=float, help="clock of the design point")
    p.add_argument("--fixed-fmax-mhz", type=float, help="clock of its fixed twin")
    p.add_argument("--synth-report", metavar="R.json",
                   help="take the Fmax from an `rcm-gen synth --json` report")
    p.add_argument("--fixed-synth-report", metavar="R.json",
                   help="the same for the fixed twin")
    p.add_argument("--synthesize", action="store_true",
                   help="synthesize the point and its twin when no report is cached")
    p.add_argument("--bandwidth", type=float, metavar="BYTES_PER_CYCLE",
                   help="off-chip bandwidth: each layer takes the longer of its compute and "
                        "its transfer, overlapped under double buffering (default: unlimited)")
    p.add_argument("--energy", action="store_true",
                   help="energy per inference and EDP of the design and its fixed twin, from "
                        "tile energy models calibrated at gate level (cached; the first run "
                        "synthesizes and simulates both at gate level)")
    p.add_argument("--no-glitches", action="store_true",
                   help="--energy: zero-delay figures (by default the groups a timing "
                        "simulation of the tile's MAC shows glitching by more than 5 %% are "
                        "raised by their factors)")
    p.add_argument("--target", default="asic", metavar="asic|ecp5|ice40",
                   help="the flow whose Fmax --synthesize takes (default asic)")
    p.add_argument("--liberty", metavar="FILE",
                   help="cell library for the ASIC flow (Fmax and --energy) instead of the "
                        "default OSU 0.18 um")
    p.add_argument("--store", metavar="DB",
                   help="a DSE result store: compare with a fixed point of equal area (±5 %%)")
    p.set_defaults(func=cmd_map)
