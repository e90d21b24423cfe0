"""``rcm-gen infer``: an int8 TFLite model run layer by layer — convolutions and fully
connected layers on the tile (an engine), the rest on the host — with every tensor compared
with LiteRT's reference kernels."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["add_parser", "cmd_infer"]

SIMULATORS = ("icarus", "verilator")


def _writable(option: str, path: str, suffix: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{option} {path!r} is a folder; give a {suffix} file path")
    folder = p.resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"{option} {path!r}: folder {str(folder)!r} does not exist or is not "
                        "writable")
    return p


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _versions() -> dict[str, Any]:
    from ..tools import python_package_version, tool_versions

    return {**tool_versions("rcm_gen", "numpy"),
            "tflite": python_package_version("tflite"),
            "ai_edge_litert": python_package_version("ai-edge-litert")}


def inference_energy(model: Any, rows: Any, config: Any, emodel: Any, fmax_mhz: float,
                     narrow: bool = True) -> dict[str, Any]:
    """Energy of one inference's tile layers from the tile's energy model
    (:class:`rcm_gen.power.tile_model.TileEnergyModel`): each layer's cycle-model figures
    (the cycles it occupied the tile, steps, bytes, output values) per batch item, at
    ``fmax_mhz``; EDP is the energy times the tile layers' latency."""
    import numpy as np

    from ..tile.cycles import plan_cycles
    from .tile_engine import tile_run

    clock = 1000.0 / fmax_mhz
    layers, total, cycles = [], 0.0, 0
    groups: dict[str, float] = {}
    components: dict[str, float] = {}
    for r in rows:
        if r.on != "tile":
            continue
        layer = model.layers[r.op_index]
        run = tile_run(layer, np.zeros(layer.input_shape, dtype=np.int64) + layer.input_range[0],
                       config, narrow=narrow)
        lc = plan_cycles(run.plan(config))
        items = len(run.inputs)
        per_item = int(r.stats["cycles"]) // items
        e = emodel.layer_energy(lc, run.shape, run.act_bits, run.weight_bits, cycles=per_item,
                                clock_ns=clock)
        pj = e["pj"] * items
        total += pj
        for g, v in e["groups_pj"].items():
            groups[g] = groups.get(g, 0.0) + v * items
        for c, v in e.get("components_pj", {}).items():
            components[c] = components.get(c, 0.0) + v * items
        cycles += int(r.stats["cycles"])
        layers.append({"op": r.op_index, "opcode": r.opcode, "mode": e["mode"],
                       "energy_uj": pj * 1e-6, "pj_per_mac": pj / r.macs if r.macs else None,
                       "groups_uj": {g: v * items * 1e-6 for g, v in e["groups_pj"].items()}})
    seconds = cycles * clock * 1e-9
    macs = sum(r.macs for r in rows if r.on == "tile")
    return {"layers": layers,
            "totals": {"energy_uj": total * 1e-6, "pj_per_mac": total / macs if macs else None,
                       "latency_ms": seconds * 1e3, "edp_uj_s": total * 1e-6 * seconds,
                       "fmax_mhz": fmax_mhz,
                       "groups_uj": {g: v * 1e-6 for g, v in groups.items()},
                       **_summary_uj(components, total)},
            "model": {"validation_error": emodel.validation["error"],
                      "calibration": emodel.to_dict()}}


def _summary_uj(components: dict[str, float], total_pj: float) -> dict[str, Any]:
    """The clock's parts and the memories (µJ) of an inference's components (pJ), and the
    energy with the memory macros' access energies halved and doubled."""
    from ..power.energy import energy_summary

    s = energy_summary(components)
    access = s["macro_access"]
    return {"clock_uj": {p: v * 1e-6 for p, v in s["clock"].items()},
            "memories_uj": {b: {k: v * 1e-6 for k, v in e.items()}
                            for b, e in s["memories"].items()},
            "macro_access_uj": access * 1e-6,
            "energy_uj_macro_access_x0_5": (total_pj - access / 2) * 1e-6,
            "energy_uj_macro_access_x2": (total_pj + access) * 1e-6}


def format_inference_energy(energy: dict[str, Any], emodel: Any) -> str:
    lines = [f"{'#':>3} {'op':<17} {'mode':>7} {'energy uJ':>11} {'pJ/MAC':>8}"]
    for r in energy["layers"]:
        per_mac = f"{r['pj_per_mac']:.2f}" if r["pj_per_mac"] is not None else "-"
        lines.append(f"{r['op']:>3} {r['opcode'][:17]:<17} {r['mode']:>7} "
                     f"{r['energy_uj']:>11,.3f} {per_mac:>8}")
    t = energy["totals"]
    v = emodel.validation
    lines.append(f"energy per inference {t['energy_uj']:,.3f} uJ ({t['pj_per_mac']:.2f} pJ/MAC) "
                 f"at {t['fmax_mhz']:.1f} MHz; EDP {t['edp_uj_s']:.4g} uJ*s; the energy model "
                 f"(calibrated at gate level) is {v['error']:+.1%} off a gate-level run of a "
                 f"layer it was not fitted on")
    if t.get("groups_uj"):
        lines.append("breakdown (uJ): " + ", ".join(f"{k} {x:.3f}"
                                                    for k, x in t["groups_uj"].items()))
    clk = t.get("clock_uj") or {}
    if clk:
        c = sum(clk.values())
        lines.append(f"clock {c:.3f} uJ ({100 * c / t['energy_uj']:.1f} %) = "
                     + " + ".join(f"{x:.3f} {p}" for p, x in clk.items()))
    for buf, e in sorted((t.get("memories_uj") or {}).items()):
        lines.append(f"  memory {buf}: " + ", ".join(
            f"{k.replace('macro_', 'macro ')} {x:.3f}" for k, x in e.items() if x) + " uJ")
    if t.get("macro_access_uj"):
        lines.append(f"memory macro access energies x0.5 / x2: "
                     f"{t['energy_uj_macro_access_x0_5']:.3f} / "
                     f"{t['energy_uj_macro_access_x2']:.3f} uJ per inference")
    return "\n".join(lines)


class _ReferenceOracle:
    """rcm_gen's numpy model of TFLite's kernels as the oracle, for a build LiteRT's wheel
    is not (``TFLITE_SINGLE_ROUNDING``): host operators as LiteRT, tile layers in
    ``rounding``."""

    def __init__(self, model: Any, rounding: str) -> None:
        from .infer import ReferenceEngine

        self.model, self.engine = model, ReferenceEngine(rounding=rounding)

    def run(self, x: Any) -> dict[int, Any]:
        from .infer import run_model

        return run_model(self.model, x, self.engine).values

    def close(self) -> None:
        pass


def cmd_infer(args: argparse.Namespace) -> int:
    import numpy as np

    from ..cli import design_from_args
    from .infer import (
        compare,
        default_engine,
        format_table,
        inference_report,
        load_input,
        make_engine,
        overflowed,
        random_input,
        run_model,
        totals,
    )
    from .litert_oracle import LiteRTCrash, LiteRTOracle
    from .tflite_model import load_tflite

    config = design_from_args(args)
    engine_name = args.engine or default_engine()
    if args.count is not None and args.count < 1:
        raise UserError(f"--count must be at least 1, not {args.count}")
    if args.count is not None and args.input:
        raise UserError("--count runs seeded random inputs; give --input or --count, not "
                        "both")
    count = args.count or 1
    output = _writable("--output", args.output, ".npy") if args.output else None
    report_path = _writable("--json", args.json, ".json") if args.json else None
    model = load_tflite(args.model)
    inputs = ([("input", load_input(model, args.input))] if args.input else
              [(f"seed {args.seed + i}", random_input(model, args.seed + i))
               for i in range(count)])
    if args.rounding == "single":
        oracle = _ReferenceOracle(model, args.rounding)
    else:
        oracle = LiteRTOracle(args.model)
    if args.bandwidth is not None and not args.bandwidth > 0:
        raise UserError(f"--bandwidth must be a number of bytes per cycle greater than 0, not "
                        f"{args.bandwidth:g}")
    engine = make_engine(engine_name, config, simulator=args.simulator,
                         bandwidth=args.bandwidth, rounding=args.rounding,
                         narrow=not args.no_narrow)
    if args.energy and engine_name not in ("model", "rtl"):
        raise UserError(f"--energy needs the cycles of the model or rtl engine, not engine "
                        f"{engine_name!r}")
    if args.liberty is not None:
        if not args.energy:
            raise UserError(f"--liberty {args.liberty!r} applies to --energy (the library "
                            "the energy model and the Fmax come from)")
        from ..flows.liberty import load_liberty

        load_liberty(args.liberty)

    print(f"{Path(args.model).name}: {len(model.operators)} operators, {len(model.layers)} on "
          f"the tile ({model.macs:,} MACs), input {model.input.name!r} "
          f"{'x'.join(map(str, model.input.shape))} {model.input.dtype}; engine {engine_name}"
          f"{f' ({args.simulator})' if engine_name == 'rtl' else ''} on "
          f"{args.preset or args.config}"
          + ("; single rounding, checked against rcm_gen's reference of TFLite built with "
             "TFLITE_SINGLE_ROUNDING (LiteRT's wheel rounds twice)"
             if args.rounding == "single" else ""), flush=True)
    start = time.perf_counter()
    results = []
    crashes: list[tuple[str, LiteRTCrash]] = []
    try:
        for label, x in inputs:
            inference = run_model(model, x, engine)
            try:
                reference = oracle.run(x)
            except LiteRTCrash as crash:
                reference = crash.tensors
                crashes.append((label, crash))
            results.append((label, inference, compare(model, inference, reference)))
    finally:
        oracle.close()
    wall = time.perf_counter() - start
    first_label, first, first_cmp = results[0]
    print(format_table(first.rows, first_cmp.ops))
    tot = totals(first.rows)

    energy = None
    if args.energy:
        from ..power.tile_model import calibrate, with_glitches

        def say(m: str) -> None:
            print(f"energy model: {m}", flush=True)

        emodel = calibrate(config, liberty=args.liberty, log=say)
        if not args.no_glitches:
            emodel = with_glitches(emodel, config, liberty=args.liberty,
                                   log=lambda m: say(f"MAC glitches: {m}"))
    fmax = None
    if tot.get("cycles"):
        from ..flows.synth import cached_report

        rep = cached_report(config, "asic", args.liberty)
        if rep is not None:
            fmax = float(rep["fmax_mhz"])
            tot["latency_ms"] = tot["cycles"] / (fmax * 1e3)
            print(f"latency {tot['latency_ms']:.3f} ms at {fmax:.1f} MHz (from the synthesis "
                  "cache)")
        else:
            print("latency in ms: no Fmax cached for this design point (run `rcm-gen synth` "
                  "on it)")
    if args.energy:
        energy = inference_energy(model, first.rows, config, emodel, fmax or emodel.fmax_mhz,
                                  not args.no_narrow)
        print(format_inference_energy(energy, emodel))
    matched = sum(1 for _, _, c in results if c.match)
    mismatch = next((c.first for _, _, c in results if not c.match), None)
    mismatch_label = next((lb for lb, _, c in results if not c.match), None)
    for label, crash in crashes[:1]:
        print(f"{label}: {crash}; operators from it on are not compared"
              + (f" ({len(crashes)} of {len(results)} inputs crashed LiteRT)"
                 if len(results) > 1 else ""))
    saturated = sorted({i for _, inf, _ in results for i in overflowed(inf.rows)})
    if saturated:
        print("OVERFLOW: a sum outside int32 was saturated in tile layer(s) "
              f"{', '.join(map(str, saturated))} (TFLite's int32 accumulator would wrap)")
    if len(results) == 1:
        what = f"{first_label}: " if not args.input else ""
        if first_cmp.match:
            print(f"{what}output and all {len(model.operators)} operator outputs equal "
                  f"LiteRT's (reference kernels) bit for bit; {wall:.2f} s")
        elif mismatch is not None:
            print(f"{what}MISMATCH against LiteRT: {mismatch.describe()}; {wall:.2f} s")
        else:
            print(f"{what}every operator LiteRT ran equals it bit for bit; "
                  f"{len(first_cmp.unchecked)} not compared; {wall:.2f} s")
    else:
        print(f"{matched} of {len(results)} seeded inputs (seeds {args.seed}.."
              f"{args.seed + len(results) - 1}) equal LiteRT's tensors bit for bit in every "
              f"operator; {wall:.2f} s")
        if mismatch is not None:
            print(f"first mismatch ({mismatch_label}): {mismatch.describe()}")

    if output is not None:
        y = (first.output if len(results) == 1 else
             np.stack([inf.output for _, inf, _ in results]))
        def save(p: Path) -> None:
            with open(p, "wb") as f:
                np.save(f, y)

        _write_atomic(output, save)
        print(f"output {output}: {y.dtype} {tuple(y.shape)}")
    if report_path is not None:
        report = {
            "model": str(args.model), "engine": engine_name,
            "simulator": args.simulator if engine_name == "rtl" else None,
            "inputs": [lb for lb, _, _ in results], "matched": matched,
            "match": matched == len(results),
            "first_mismatch": (None if mismatch is None else
                               {"input": mismatch_label, **mismatch.to_dict()}),
            "layers": inference_report(first, first_cmp)["layers"],
            "totals": tot, "fmax_mhz": fmax, "bandwidth": args.bandwidth,
            "rounding": args.rounding, "narrow": not args.no_narrow,
            "energy": energy,
            "litert_crash": [{"input": lb, "op": c.op_index, "opcode": c.opcode,
                              "reason": c.reason} for lb, c in crashes],
            "overflow": saturated,
            "wall_s": round(wall, 3),
            "config": config.to_dict(), "tools": _versions(),
        }
        _write_atomic(report_path,
                      lambda p: p.write_text(json.dumps(report, indent=2) + "\n"))
        print(f"report {report_path}")
    return 0 if matched == len(results) and not saturated else 1


def add_parser(subparsers, design_args) -> None:
    p = subparsers.add_parser(
        "infer", help="run an integer TFLite model on the tile and check it against LiteRT",
        description="Run an integer TFLite model (int8, 16x8, int4 weights, mixed) layer by "
                    "layer: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on the tile (an "
                    "engine) in the mode of their widths (narrower where the data provably "
                    "fit), ADD, MUL, pooling, RESHAPE, SQUEEZE, CONCATENATION, PAD, PADV2, "
                    "MEAN, SOFTMAX, LOGISTIC, TANH, HARD_SWISH, QUANTIZE and DEQUANTIZE on the "
                    "host with TFLite's integer semantics; compare every "
                    "tensor with the LiteRT interpreter's reference kernels bit for bit and "
                    "print a per-layer table. Exit status 1 when a tensor differs, when "
                    "LiteRT crashed (the operator is named; what ran before it is still "
                    "compared) or when a sum outside int32 was saturated on the tile.")
    design_args(p)
    p.add_argument("--model", required=True, metavar="M.tflite", help="an int8 TFLite model")
    p.add_argument("--input", metavar="X.npy",
                   help="the input: the model's input shape and type, int8 (float32 when the "
                        "model starts with QUANTIZE); default: seeded random")
    p.add_argument("--engine", metavar="NAME",
                   help="what runs the tile layers: model (the tile's bit-exact Python "
                        "model with its cycle model; the default when available), rtl (its "
                        "Verilog in simulation), reference (numpy model of LiteRT's kernels)")
    p.add_argument("--simulator", default="icarus", choices=SIMULATORS,
                   help="simulator of the rtl engine (default icarus)")
    p.add_argument("--output", metavar="Y.npy",
                   help="write the model's output (stacked over inputs with --count)")
    p.add_argument("--json", metavar="R.json", help="write the report as JSON")
    p.add_argument("--bandwidth", type=float, metavar="BYTES_PER_CYCLE",
                   help="off-chip bandwidth: a layer's cycles become those of compute and "
                        "transfer overlapped, whichever binds (default: unlimited)")
    p.add_argument("--energy", action="store_true",
                   help="energy per tile layer and per inference, and EDP, from the tile's "
                        "energy model calibrated at gate level (cached; the first run "
                        "synthesizes the tile and simulates it at gate level)")
    p.add_argument("--liberty", metavar="FILE",
                   help="--energy: the cell library (.lib or .lib.gz) of the energy model and "
                        "the Fmax instead of the default OSU 0.18 um")
    p.add_argument("--no-glitches", action="store_true",
                   help="--energy: zero-delay figures (by default the groups a timing "
                        "simulation of the tile's MAC shows glitching by more than 5 %% are "
                        "raised by their factors)")
    p.add_argument("--rounding", choices=("double", "single"), default="double",
                   help="how the tile requantizes int32 sums: double (LiteRT's build, "
                        "checked against LiteRT) or single (TFLITE_SINGLE_ROUNDING, as "
                        "TFLite Micro builds often are; checked against rcm_gen's numpy "
                        "reference of that build, since LiteRT's wheel rounds twice)")
    p.add_argument("--no-narrow", action="store_true",
                   help="run every layer at its tensors' container widths (default: at the "
                        "narrowest widths its data provably need, the reason in the table)")
    p.add_argument("--count", type=int, metavar="N",
                   help="run N seeded random inputs and count those that match")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the first random input (default 1; input i uses seed+i)")
    p.set_defaults(func=cmd_infer)
