"""``rcm-gen quantize``: a family of integer models of a float TFLite model, scored for a
design point (fidelity against latency and energy), and their Pareto fronts."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["add_parser", "cmd_quantize", "parse_budget"]


def parse_budget(text: str | None) -> tuple[str, float] | None:
    """``latency=CYCLES`` or ``energy=MICROJOULES`` (``None`` for no budget)."""
    if text is None:
        return None
    key, _, value = text.partition("=")
    try:
        limit = float(value)
    except ValueError:
        limit = math.nan
    if key not in ("latency", "energy") or not limit > 0:
        raise UserError(f"--budget must be latency=CYCLES or energy=MICROJOULES with a "
                        f"positive number, not {text!r}")
    return key, limit


def _float_model(path: str) -> tuple[bytes, str, tuple[int, ...]]:
    """The float model's bytes (with a ``serving_default`` signature), its input name and
    shape; :class:`UserError` unless it is a float TFLite model."""
    import numpy as np

    from .tflite_write import _signature, read_model, write_model

    p = Path(path)
    try:
        buf = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"--model {path!r}: file not found") from None
    except OSError as exc:
        raise UserError(f"--model {path!r}: cannot read it ({exc.strerror})") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"--model {path!r}: not a TFLite flatbuffer (no TFL3 file identifier)")
    try:
        model = read_model(buf)
        g = model.subgraphs[0]
        x = g.tensors[int(g.inputs[0])]
    except Exception as exc:  # noqa: BLE001 (any malformed flatbuffer)
        raise UserError(f"--model {path!r}: not a readable TFLite flatbuffer "
                        f"({type(exc).__name__})") from None
    if int(x.type) != 0:  # TensorType.FLOAT32
        raise UserError(f"--model {path!r}: its input tensor is not float32; quantize takes a "
                        "float TFLite model (rcm-gen infer runs integer ones)")
    if not model.signatureDefs:
        model.signatureDefs = [_signature(g)]
        buf = write_model(model)
    name = x.name.decode() if isinstance(x.name, bytes) else x.name
    sig = model.signatureDefs[0]
    if sig.inputs:
        n = sig.inputs[0].name
        name = n.decode() if isinstance(n, bytes) else n
    return buf, name, tuple(int(d) for d in np.asarray(x.shape))


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plot(scored: list[Any], fronts: dict[str, list[Any]], title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("cycles", "latency (cycles, cycle model)")]
    if "energy" in fronts:
        panels.append(("energy_uj", "energy per inference (uJ, energy model)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for s in scored:
            if s.cost.get(key) is None:
                continue
            ax.scatter(s.cost[key], s.fidelity["snr_db"], color="tab:blue")
            ax.annotate(s.name, (s.cost[key], s.fidelity["snr_db"]), fontsize=8,
                        xytext=(4, 3), textcoords="offset points")
        front = fronts["latency" if key == "cycles" else "energy"]
        ax.plot([s.cost[key] for s in front], [s.fidelity["snr_db"] for s in front],
                color="tab:red", drawstyle="steps-post", label="Pareto front")
        ax.set_xlabel(label)
        ax.set_ylabel("output SNR vs float (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..cli import design_from_args
    from ..tile.config import TileConfig
    from ..tools import python_package_version, tool_versions
    from .quantize import (
        VARIANTS,
        Scored,
        calibration_inputs,
        fidelity,
        pareto_front,
        quantize_variant,
        score_model,
    )

    config = design_from_args(args)
    if not isinstance(config, TileConfig):
        raise UserError("quantize needs a tile design point (rcm-small, rcm-default, ...), not "
                        f"a {getattr(config, 'kind', type(config).__name__)} configuration")
    if args.count < 1:
        raise UserError(f"--count must be at least 1, not {args.count}")
    budget = parse_budget(args.budget)
    if budget is not None and budget[0] == "energy" and args.no_energy:
        raise UserError("--budget energy=... needs the energy model; drop --no-energy")
    variants = list(VARIANTS) if args.variants is None else [
        v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise UserError(f"--variants: {v!r} is not one of {', '.join(VARIANTS)}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out!r} is a file; give a folder")
    parent = out.resolve().parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"--out {args.out!r}: folder {str(parent)!r} does not exist or is not "
                        "writable")
    float_buf, input_name, shape = _float_model(args.model)
    inputs, what = calibration_inputs(args.calibration, shape, count=args.count)
    emodel = None
    if not args.no_energy:
        from ..power.tile_model import calibrate, with_glitches

        def say(m: str) -> None:
            print(f"energy model: {m}", flush=True)

        emodel = with_glitches(calibrate(config, log=say), config,
                               log=lambda m: say(f"MAC glitches: {m}"))
    start = time.perf_counter()
    print(f"{Path(args.model).name}: {len(variants)} integer models for "
          f"{args.preset or args.config}; calibration and fidelity on {what}", flush=True)
    scored: list[Scored] = []
    with tempfile.TemporaryDirectory(prefix="rcm_quantize_") as tmp:
        float_path = Path(tmp) / "float.tflite"
        float_path.write_bytes(float_buf)
        blobs: dict[str, bytes] = {}
        for name in variants:
            t0 = time.perf_counter()
            blob = quantize_variant(float_buf, name, inputs, input_name)
            path = Path(tmp) / f"{name}.tflite"
            path.write_bytes(blob)
            blobs[name] = blob
            fid = fidelity(str(float_path), str(path), inputs)
            cost = score_model(str(path), config, emodel)
            scored.append(Scored(name, f"models/{name}.tflite", VARIANTS[name], fid, cost))
            energy = cost.get("energy_uj")
            print(f"  {name:<8} SNR {fid['snr_db']:6.1f} dB  cycles {cost['cycles']:>11,}"
                  + (f"  energy {energy:10.2f} uJ" if energy is not None else
                     f"  energy: {cost['energy_note']}" if emodel else "")
                  + f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
    fronts = {"latency": pareto_front(scored, lambda s: s.cost["cycles"])}
    if emodel is not None and any(s.cost.get("energy_uj") is not None for s in scored):
        fronts["energy"] = pareto_front(scored, lambda s: s.cost.get("energy_uj"))
    for key, front in fronts.items():
        for s in front:
            s.fronts.append(key)
    pick = None
    if budget is not None:
        key, limit = budget
        cost_key = "cycles" if key == "latency" else "energy_uj"
        if key not in fronts:
            raise UserError(f"--budget {key}={limit:g}: the energy model covers none of the "
                            "models' modes")
        ok = [s for s in fronts[key] if s.cost[cost_key] <= limit]
        if not ok:
            best = min(s.cost[cost_key] for s in fronts[key])
            raise UserError(f"--budget {key}={limit:g}: no model on the front meets it (the "
                            f"cheapest takes {best:,.6g} "
                            f"{'cycles' if key == 'latency' else 'uJ'})")
        pick = max(ok, key=lambda s: s.fidelity["snr_db"])
    wall = time.perf_counter() - start

    rows = [s.row() for s in scored]
    report = {
        "model": str(args.model), "calibration": what, "variants": VARIANTS,
        "results": [{**s.row(), "description": s.description, "fidelity": s.fidelity,
                     "cost": s.cost} for s in scored],
        "fronts": {k: [s.name for s in v] for k, v in fronts.items()},
        "budget": None if budget is None else {"kind": budget[0], "limit": budget[1],
                                               "pick": pick.name},
        "energy_model": None if emodel is None else {
            "validation_error": emodel.validation["error"], "fmax_mhz": emodel.fmax_mhz},
        "wall_s": round(wall, 2),
        "config": config.to_dict(),
        "tools": {**tool_versions("rcm_gen", "numpy"),
                  "ai_edge_quantizer": python_package_version("ai-edge-quantizer"),
                  "ai_edge_litert": python_package_version("ai-edge-litert")},
    }
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    title = (f"{Path(args.model).name} on {args.preset or args.config}: fidelity on {what}")
    png = _plot(scored, fronts, title)
    (out / "models").mkdir(parents=True, exist_ok=True)
    for name, blob in blobs.items():
        _write_atomic(out / "models" / f"{name}.tflite", blob)
    _write_atomic(out / "front.csv", text.getvalue().encode())
    _write_atomic(out / "front.png", png)
    _write_atomic(out / "front.json", (json.dumps(report, indent=2, default=_json) + "\n"
                                       ).encode())
    for key, front in fronts.items():
        unit = "cycles" if key == "latency" else "uJ"
        cost_key = "cycles" if key == "latency" else "energy_uj"
        print(f"front, fidelity vs {key}: " + ", ".join(
            f"{s.name} ({s.fidelity['snr_db']:.1f} dB, {s.cost[cost_key]:,.6g} {unit})"
            for s in front))
    if pick is not None:
        print(f"budget {budget[0]}={budget[1]:g}: {pick.name} "
              f"({pick.fidelity['snr_db']:.1f} dB) -> {out / pick.path}")
    print(f"wrote {out}/front.csv, front.json, front.png and models/ ({wall:.1f} s)")
    return 0


def _json(v: Any) -> Any:
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(type(v).__name__)


def add_parser(subparsers, design_args) -> None:
    p = subparsers.add_parser(
        "quantize", help="quantize a float TFLite model for a design point (fidelity vs "
                         "latency and energy)",
        description="From a float TFLite model, make a family of integer models with "
                    "ai-edge-quantizer recipes (int8, 16x8, int4 weights, a per-layer mix) "
                    "and rcm_gen's narrow 4-bit activation ranges; score each by its output "
                    "SNR against the float model on the calibration inputs (and per layer), "
                    "by the design point's cycle model and by its energy model; write the "
                    "Pareto fronts (fidelity vs latency, vs energy) as front.csv, "
                    "front.json and front.png, and the models, to --out.")
    design_args(p)
    p.add_argument("--model", required=True, metavar="FLOAT.tflite", help="a float TFLite model")
    p.add_argument("--calibration", metavar="X.npy",
                   help="calibration inputs, (N, ...) of the model's input shape; default: "
                        "seeded random inputs (the report says the fidelity is on random "
                        "data)")
    p.add_argument("--count", type=int, default=16, metavar="N",
                   help="seeded random calibration inputs without --calibration (default 16)")
    p.add_argument("--budget", metavar="latency=CYCLES|energy=UJ",
                   help="pick the most faithful model on the front within this cost")
    p.add_argument("--variants", metavar="A,B,...",
                   help="which integer models to make (default: all of int8, 16x8, w4a8, mix, "
                        "int8-a4, w4a4)")
    p.add_argument("--out", default="quantized", metavar="DIR",
                   help="output folder (default ./quantized)")
    p.add_argument("--no-energy", action="store_true",
                   help="leave out the energy model (its first calibration synthesizes the "
                        "tile and simulates it at gate level)")
    p.set_defaults(func=cmd_quantize)
