"""Gate-level power of a MAC in each of its modes and activation signedness: pJ/cycle, pJ/MAC and
TOPS/W per mode, and where the time goes.  Goal: mac16, 10,000 cycles per mode, within
60 s on 2 cores with a warm synthesis cache.  Prints figures; no pass/fail.

    python benchmarks/power_mac.py [--preset mac16] [--cycles 10000] [--stimulus random]
        [--simulator verilator] [--liberty FILE] [--cold]

--cold removes the design's compiled gate-level simulation first, so that the time of a
first run (the simulator build) is shown too.
"""

from __future__ import annotations

import argparse
import shutil
import time

from rcm_gen.power.mac import format_power, mac_energy
from rcm_gen.presets import preset

GOAL_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="mac16")
    ap.add_argument("--cycles", type=int, default=10000, help="cycles per mode (10000)")
    ap.add_argument("--stimulus", default="random")
    ap.add_argument("--simulator", default="verilator")
    ap.add_argument("--liberty", default=None)
    ap.add_argument("--cold", action="store_true",
                    help="rebuild the gate-level simulation (time a first run)")
    args = ap.parse_args()
    cfg = preset(args.preset)
    if args.cold:
        from rcm_gen.flows.synth import cached_report
        from rcm_gen.tools import cache_dir

        if cached_report(cfg, liberty=args.liberty) is not None:
            shutil.rmtree(cache_dir() / "gatesim", ignore_errors=True)
    started = time.perf_counter()
    report = mac_energy(cfg, stimulus=args.stimulus, cycles=args.cycles,
                        liberty=args.liberty, simulator=args.simulator,
                        on_synth=lambda out: print(f"(synthesizing in {out}: the synthesis "
                                                   "cache was cold)"))
    wall = time.perf_counter() - started
    print(format_power(report, args.preset))
    total_cycles = sum(1 for _ in report["modes"]) * args.cycles
    print(f"\n{len(report['modes'])} modes x {args.cycles} cycles = {total_cycles} measured "
          f"cycles ({report['checked']} accumulator values checked) in {wall:.1f} s "
          f"(goal {GOAL_S:.0f} s: {'met' if wall <= GOAL_S else 'missed'})")
    print("time by step (s): " + ", ".join(f"{k} {v:.2f}" for k, v in
                                           report["timing_s"].items()))


if __name__ == "__main__":
    main()
