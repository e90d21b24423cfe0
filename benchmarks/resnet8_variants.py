"""The shipped ResNet-8 as int8, 16x8, int4-weight, a per-layer mix and narrow 4-bit-range
variants (made by ``ai-edge-quantizer`` and rcm_gen's narrow requantization from the shipped
float ResNet-8, calibrated on seeded random inputs), each run on the design points' bit-exact
models over N seeded inputs against LiteRT's reference kernels and, with ``--rtl``, on one
input in RTL; per variant and design: matches, cycles, speed-up over int8 and over the fixed
twin, fidelity against the float model.  Prints figures, no pass/fail beyond them.

    python benchmarks/resnet8_variants.py [--designs rcm-default,rcm-default-fusion]
        [--count 100] [--rtl verilator] [--variants int8,16x8,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

from rcm_gen.presets import preset
from rcm_gen.workloads.infer import compare, make_engine, random_input, run_model
from rcm_gen.workloads.litert_oracle import LiteRTOracle
from rcm_gen.workloads.quantize import (
    VARIANTS,
    calibration_inputs,
    fidelity,
    quantize_variant,
)
from rcm_gen.workloads.tflite_model import load_tflite

FLOAT = resources.files("rcm_gen.workloads") / "data" / "mlperf_tiny_resnet8_float.tflite"


def _tile_cycles(rows) -> int:
    return sum(int(r.stats["cycles"]) for r in rows if r.on == "tile")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default="rcm-default,rcm-default-fusion")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rtl", default=None, metavar="SIMULATOR",
                    help="also run one input in RTL on this simulator")
    ap.add_argument("--keep", default=None, metavar="DIR", help="keep the models here")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    designs = args.designs.split(",")
    names = args.variants.split(",")
    xs, what = calibration_inputs(None, (1, 32, 32, 3), count=16)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="rcm_r8_"))
    folder.mkdir(parents=True, exist_ok=True)
    float_buf = Path(str(FLOAT)).read_bytes()
    (folder / "float.tflite").write_bytes(float_buf)
    results = []
    for name in names:
        path = folder / f"{name}.tflite"
        path.write_bytes(quantize_variant(float_buf, name, xs, "input_1_int8"))
        fid = fidelity(str(folder / "float.tflite"), str(path), xs)
        model, oracle = load_tflite(str(path)), LiteRTOracle(str(path))
        for design in designs:
            config = preset(design)
            engine = make_engine("model", config)
            fixed = make_engine("model", config.fixed_twin())
            start = time.perf_counter()
            matched, rows = 0, None
            for seed in range(1, args.count + 1):
                x = random_input(model, seed)
                inference = run_model(model, x, engine)
                matched += compare(model, inference, oracle.run(x)).match
                rows = rows or inference.rows
            wall = time.perf_counter() - start
            x = random_input(model, 1)
            entry = {
                "variant": name, "design": design, "matched": matched, "count": args.count,
                "model_wall_s": round(wall, 2), "cycles": _tile_cycles(rows),
                "fixed_cycles": _tile_cycles(run_model(model, x, fixed).rows),
                "snr_db": fid["snr_db"], "top1_agreement": fid["top1_agreement"],
                "modes": sorted({r.stats["bits"] for r in rows if r.on == "tile"}),
                "narrow_layers": sum(1 for r in rows if r.stats.get("narrow")),
            }
            if args.rtl:
                start = time.perf_counter()
                rtl = make_engine("rtl", config, simulator=args.rtl)
                inference = run_model(model, x, rtl)
                entry["rtl_match"] = compare(model, inference, oracle.run(x)).match
                entry["rtl_cycles_equal_model"] = all(
                    r.stats["rtl_cycles"] == r.stats["model_cycles"]
                    for r in inference.rows if r.on == "tile")
                entry["rtl_wall_s"] = round(time.perf_counter() - start, 1)
            results.append(entry)
            print(json.dumps(entry), flush=True)
        oracle.close()
    base = {r["design"]: r["cycles"] for r in results if r["variant"] == "int8"}
    print(f"\nResNet-8 variants; fidelity against the float model on {what}")
    print(f"{'variant':<8} {'design':<19} {'modes':<16} {'match':>9} {'cycles':>11} "
          f"{'vs int8':>8} {'vs fixed':>8} {'SNR dB':>7}"
          + (f" {'RTL':>12}" if args.rtl else ""))
    for r in results:
        vs8 = f"{base[r['design']] / r['cycles']:.2f}x" if r["design"] in base else "-"
        line = (f"{r['variant']:<8} {r['design']:<19} {','.join(r['modes']):<16} "
                f"{r['matched']:>4}/{r['count']:<4} {r['cycles']:>11,} {vs8:>8} "
                f"{r['fixed_cycles'] / r['cycles']:>7.2f}x {r['snr_db']:>7.1f}")
        if args.rtl:
            ok = r["rtl_match"] and r["rtl_cycles_equal_model"]
            line += f" {'exact' if ok else 'DIFF':>6} {r['rtl_wall_s']:>5.0f}s"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
