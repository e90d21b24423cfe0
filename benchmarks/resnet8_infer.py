"""The MLPerf Tiny ResNet-8 (int8) run layer by layer on a design point and checked against
LiteRT's reference kernels: the per-layer table of the first input, and how many of N seeded
inputs match bit for bit, with the wall time.  No pass/fail beyond the match count.

    python benchmarks/resnet8_infer.py [--preset rcm-default] [--engine NAME] [--count 100]
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

from rcm_gen.presets import preset
from rcm_gen.workloads.infer import (
    compare,
    default_engine,
    format_table,
    make_engine,
    random_input,
    run_model,
)
from rcm_gen.workloads.litert_oracle import LiteRTOracle
from rcm_gen.workloads.tflite_model import load_tflite

MODEL = resources.files("rcm_gen.workloads") / "data" / "mlperf_tiny_resnet8_int8.tflite"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="rcm-default")
    ap.add_argument("--engine", default=None, help="default: model when available")
    ap.add_argument("--simulator", default="verilator")
    ap.add_argument("--count", type=int, default=100)
    args = ap.parse_args()
    name = args.engine or default_engine()
    model = load_tflite(str(MODEL))
    oracle = LiteRTOracle(str(MODEL))
    engine = make_engine(name, preset(args.preset), simulator=args.simulator)
    start = time.perf_counter()
    runs = []
    for seed in range(1, args.count + 1):
        x = random_input(model, seed)
        inference = run_model(model, x, engine)
        runs.append((inference, compare(model, inference, oracle.run(x))))
    wall = time.perf_counter() - start
    print(f"ResNet-8 on {args.preset}, engine {name}")
    print(format_table(runs[0][0].rows, runs[0][1].ops))
    matched = sum(c.match for _, c in runs)
    print(f"{matched} of {len(runs)} seeded inputs bit-exact against LiteRT; {wall:.2f} s "
          f"({wall / len(runs) * 1e3:.1f} ms per input)")


if __name__ == "__main__":
    main()
