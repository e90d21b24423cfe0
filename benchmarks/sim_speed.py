"""Simulation speed of the ST MAC against the fixed MAC, for the same stimulus count, on
each simulator.  Prints a table; no pass/fail.

    python benchmarks/sim_speed.py [--count N] [--presets mac16,mac16-fixed]
"""

from __future__ import annotations

import argparse
import time

from rcm_gen.presets import preset
from rcm_gen.sim.runner import SIMULATORS, run_cocotb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20000, help="stimulus cycles (default 20000)")
    ap.add_argument("--presets", default="mac16,mac16-fixed")
    args = ap.parse_args()
    rows = []
    for name in args.presets.split(","):
        cfg = preset(name)
        for sim in SIMULATORS:
            t0 = time.perf_counter()
            run_cocotb(cfg, sim, "mac_tb", env={"RCM_COUNT": "10"})  # build (cached)
            build_s = time.perf_counter() - t0
            res = run_cocotb(cfg, sim, "mac_tb", env={"RCM_COUNT": str(args.count)})
            rows.append((name, sim, build_s, res.wall_s, res.results["products_checked"]))
    print(f"{'design':<14}{'simulator':<11}{'build+10 s':>11}{'run s':>9}{'cycles/s':>10}"
          f"{'checked':>9}")
    for name, sim, build_s, run_s, checked in rows:
        print(f"{name:<14}{sim:<11}{build_s:>11.1f}{run_s:>9.2f}{args.count / run_s:>10.0f}"
              f"{checked:>9}")


if __name__ == "__main__":
    main()
