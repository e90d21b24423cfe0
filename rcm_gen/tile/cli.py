"""``rcm-gen run``: an integer convolution on the generated RTL, in simulation."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, UserError

__all__ = ["add_parser", "load_int_array"]


def load_int_array(option: str, path: str, ndim: int, dims: str):
    """An integer ``.npy`` array of rank ``ndim``; :class:`UserError` otherwise."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{option} {path!r}: file not found")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{option} {path!r}: not a .npy array ({reason})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
        kind = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
        raise UserError(f"{option} {path!r}: must hold integers, not {kind}")
    if arr.ndim != ndim:
        raise UserError(f"{option} {path!r}: must be {ndim}-D {dims}, not shape "
                        f"{tuple(arr.shape)}")
    if 0 in arr.shape:
        raise UserError(f"{option} {path!r}: must not be empty, not shape {tuple(arr.shape)}")
    return arr.astype(np.int64)


def _check_bits(option: str, bits: int, width: int) -> None:
    if not 1 <= bits <= width:
        raise UserError(f"{option} must be from 1 to {width} (the datapath width), not {bits}")


def cmd_run(args: argparse.Namespace) -> int:

    from ..cli import design_from_args
    from ..conv import ConvShape
    from ..reference import check_fits
    from ..sim.runner import SIMULATORS
    from ..tools import tool_versions
    from .config import TileConfig
    from .driver import check_runnable
    from .simulate import LayerCase, simulate_layers

    config = design_from_args(args)
    if not isinstance(config, TileConfig):
        raise UserError(f"run needs a tile design point (rcm-small, rcm-default, ...), not a "
                        f"{config.kind} configuration")
    if args.simulator not in SIMULATORS:
        raise UserError(f"--simulator must be one of {', '.join(SIMULATORS)}, "
                        f"not {args.simulator!r}")
    width = config.mac.width
    _check_bits("--act-bits", args.act_bits, width)
    _check_bits("--weight-bits", args.weight_bits, width)
    x = load_int_array("--input", args.input, 3, "(C, H, W)")
    w = load_int_array("--weights", args.weights, 4, "(M, C, K, K)")
    if w.shape[2] != w.shape[3]:
        raise UserError(f"--weights {args.weights!r}: kernel must be square (K, K), not "
                        f"{w.shape[2]}x{w.shape[3]}")
    if w.shape[1] != x.shape[0]:
        raise UserError(f"--weights {args.weights!r}: input channels {w.shape[1]} must equal "
                        f"those of --input ({x.shape[0]})")
    act_signed = not args.unsigned_act
    try:
        check_fits("input", x, args.act_bits, act_signed)
        check_fits("weights", w, args.weight_bits, True)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        shape = ConvShape(c=x.shape[0], m=w.shape[0], h=x.shape[1], w=x.shape[2],
                          k=w.shape[2], stride=args.stride, padding=args.padding)
        check_runnable(config, shape, args.act_bits, args.weight_bits, act_signed)
    except (TypeError, ValueError) as exc:
        raise UserError(f"layer: {exc}") from None

    out = Path(args.output)
    if out.is_dir():
        raise UserError(f"--output {args.output!r} is a directory; give a .npy file path")
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK):
        raise UserError(f"--output {args.output!r}: folder {str(out.parent)!r} does not exist "
                        "or is not writable")
    if args.report:
        rep = Path(args.report)
        if not rep.parent.is_dir() or not os.access(rep.parent, os.W_OK):
            raise UserError(f"--report {args.report!r}: folder {str(rep.parent)!r} does not "
                            "exist or is not writable")

    case = LayerCase(shape, x, w, args.act_bits, args.weight_bits, act_signed)
    print(f"running C={shape.c} M={shape.m} H={shape.h} W={shape.w} K={shape.k} "
          f"stride={shape.stride} padding={shape.padding} on {args.preset or args.config} "
          f"({args.simulator})...", flush=True)
    with tempfile.TemporaryDirectory(prefix="rcm_run_", dir=out.parent) as tmp:
        tmp_out = Path(tmp) / "y.npy"
        results, sim = simulate_layers(config, [case], args.simulator, waves=args.waves,
                                       workdir=Path(tmp), outputs=[tmp_out])
        r = results[0]
        if not r["output_ok"]:
            raise ToolFailed(f"the RTL output differs from the numpy reference "
                             f"({r['mismatch']}); log: {sim.log}")
        os.replace(tmp_out, out)
    report: dict[str, Any] = {
        "cycles": r["cycles"], "model_cycles": r["model_cycles"],
        "ideal_cycles": r["ideal_cycles"],
        "compute_cycles": r["compute_cycles"], "model_compute_cycles": r["model_compute_cycles"],
        "utilisation": r["macs"] / (r["cycles"] * config.macs * r["lanes"]),
        "compute_utilisation": r["macs"] / (r["compute_cycles"] * config.macs
                                             * r["lanes"]),
        "macs": r["macs"], "lanes": r["lanes"], "tiles": r["jobs"], "tiling": r["tiling"],
        "simulator": args.simulator, "act_bits": args.act_bits,
        "weight_bits": args.weight_bits, "act_signed": act_signed,
        "layer": {"c": shape.c, "m": shape.m, "h": shape.h, "w": shape.w, "k": shape.k,
                  "stride": shape.stride, "padding": shape.padding},
        "output": str(out), "matches_reference": True,
        "waves": str(sim.waves) if sim.waves else None, "log": str(sim.log),
        "config": config.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth", "cocotb",
                               "iverilog" if args.simulator == "icarus" else "verilator"),
        "wall_s": sim.wall_s,
    }
    print(f"output {out}: {shape.m}x{shape.ho}x{shape.wo} int64, equal to the numpy reference")
    print(f"lanes {r['lanes']}  tiles {r['jobs']}  cycles {r['cycles']} (model "
          f"{r['model_cycles']})  ideal {r['ideal_cycles']}  utilisation "
          f"{report['utilisation']:.1%} (compute phase {report['compute_utilisation']:.1%})")
    if sim.waves:
        print(f"waves {sim.waves}")
    if r["cycles"] != r["model_cycles"]:
        raise ToolFailed(f"measured cycles {r['cycles']} differ from the cycle model "
                         f"{r['model_cycles']}; log: {sim.log}")
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
        print(f"report {args.report}")
    return 0


def add_parser(subparsers, design_args) -> None:
    p = subparsers.add_parser(
        "run", help="run an integer convolution on the generated RTL in simulation",
        description="Run x (C, H, W) convolved with w (M, C, K, K) on a tile's RTL; write "
                    "y (M, Ho, Wo, int64), the exact integer cross-correlation with zero "
                    "padding.")
    design_args(p)
    p.add_argument("--input", required=True, metavar="X.npy", help="activations (C, H, W)")
    p.add_argument("--weights", required=True, metavar="W.npy", help="weights (M, C, K, K)")
    p.add_argument("--act-bits", type=int, required=True, metavar="A")
    p.add_argument("--weight-bits", type=int, required=True, metavar="B")
    p.add_argument("--unsigned-act", action="store_true",
                   help="activations are unsigned (default signed)")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--padding", type=int, default=0)
    p.add_argument("--simulator", default="icarus", metavar="icarus|verilator")
    p.add_argument("--output", required=True, metavar="Y.npy")
    p.add_argument("--report", metavar="R.json", help="write a JSON report")
    p.add_argument("--waves", action="store_true", help="dump waveforms")
    p.set_defaults(func=cmd_run)
