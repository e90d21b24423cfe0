"""ResNet-18 (224x224, HAWQ-V3 bit widths) on a design point and its fixed twin.

For each bit configuration (default: uniform8, latency0.5, uniform4, fixed16): total cycles
from the cycle model (the model the tile regression checks against RTL), ideal cycles,
utilisation, latency at the Fmax that OpenSTA gives for the point and for its twin (from
the synthesis cache, or synthesized here: a few minutes per tile), and the speed-up over the
fixed twin in cycles and in time.

    python benchmarks/resnet18_table.py [PRESET] [--bits a,b,...] [--json R.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rcm_gen.errors import ToolFailed, UserError
from rcm_gen.flows.synth import run_dir, synthesize_cached
from rcm_gen.presets import preset
from rcm_gen.workloads import load_network
from rcm_gen.workloads.mapping import map_network

DEFAULT_BITS = ("uniform8", "latency0.5", "uniform4", "fixed16")


def fmax(config, label: str) -> float:
    t0 = time.perf_counter()
    report = synthesize_cached(config, on_run=lambda: print(
        f"synthesizing {label} (Yosys + OpenSTA, OSU 0.18 um) ...", flush=True))
    print(f"{label}: {report['area_um2']:,.0f} um2, Fmax {report['fmax_mhz']:.1f} MHz "
          f"({run_dir(config) / 'report.json'}, {time.perf_counter() - t0:.0f} s)")
    return float(report["fmax_mhz"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("preset", nargs="?", default="rcm-default")
    ap.add_argument("--bits", default=",".join(DEFAULT_BITS))
    ap.add_argument("--json", metavar="R.json")
    args = ap.parse_args(argv)
    try:
        config = preset(args.preset)
        fixed = config.fixed_twin()
        f_st, f_fx = fmax(config, args.preset), fmax(fixed, f"{args.preset} fixed twin")
        rows = []
        for bits in args.bits.split(","):
            t0 = time.perf_counter()
            m = map_network(config, load_network("resnet18", bits), f_st, f_fx)
            rows.append({
                "bits": bits, "cycles": m.total_cycles, "ideal_cycles": m.ideal_cycles,
                "utilisation": m.utilisation, "latency_ms": m.latency_ms,
                "fixed_cycles": m.fixed_cycles, "fixed_latency_ms": m.fixed_latency_ms,
                "speedup_cycles": m.speedup_cycles, "speedup_time": m.speedup_time,
                "model_s": time.perf_counter() - t0,
            })
    except (UserError, ToolFailed) as exc:
        print(f"resnet18_table: {exc}", file=sys.stderr)
        return 2
    print(f"\nResNet-18 224x224 on {args.preset} (P={config.p}) vs its fixed twin")
    print(f"{'bits':<11} {'cycles':>13} {'ideal':>13} {'util':>6} {'latency':>11} "
          f"{'fixed cycles':>13} {'fixed lat.':>11} {'speed-up':>9} {'in time':>8}")
    for r in rows:
        print(f"{r['bits']:<11} {r['cycles']:>13,} {r['ideal_cycles']:>13,} "
              f"{r['utilisation']:>6.1%} {r['latency_ms']:>8.1f} ms {r['fixed_cycles']:>13,} "
              f"{r['fixed_latency_ms']:>8.1f} ms {r['speedup_cycles']:>8.2f}x "
              f"{r['speedup_time']:>7.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "fmax_mhz": f_st,
                                               "fixed_fmax_mhz": f_fx, "rows": rows},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
