"""ST against fixed on the default ASIC flow, in one run: area ratio, critical-path ratio,
MACs/cycle/area at each precision, and the wall time of each flow.  Prints a table; no
pass/fail.

    python benchmarks/synth_compare.py [--tiles] [--clock-ns T]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rcm_gen.flows.synth import macs_per_cycle, synthesize
from rcm_gen.presets import preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", action="store_true",
                    help="also rcm-default against rcm-default-fixed (several minutes)")
    ap.add_argument("--clock-ns", type=float, default=None)
    ap.add_argument("--out", default=None, help="keep the runs here")
    args = ap.parse_args()
    pairs = [("mac16", "mac16-fixed"), ("mac16-ppa", "mac16-fixed")]
    if args.tiles:
        pairs.append(("rcm-default", "rcm-default-fixed"))
    out = Path(args.out or tempfile.mkdtemp(prefix="rcm_synth_"))
    reports = {}
    for name in dict.fromkeys(n for pair in pairs for n in pair):
        reports[name] = synthesize(preset(name), "asic", out_dir=out / name,
                                   clock_ns=args.clock_ns)
    print(f"OSU 0.18 um, Yosys synth -booth + ABC, OpenSTA; runs in {out}")
    print(f"{'design':<20}{'area um2':>12}{'crit. ns':>10}{'Fmax MHz':>10}{'wall s':>8}  "
          "area by group")
    for name, r in reports.items():
        groups = ", ".join(f"{k} {v:,.0f}" for k, v in r["area_by_group"].items() if v)
        print(f"{name:<20}{r['area_um2']:>12,.0f}{r['critical_path_ns']:>10.3f}"
              f"{r['fmax_mhz']:>10.1f}{r['wall_s']:>8.1f}  {groups}")
    print()
    for st, fx in pairs:
        a, b = reports[st], reports[fx]
        cfg, fcfg = preset(st), preset(fx)
        width = getattr(cfg, "mac", cfg).width
        print(f"{st} / {fx}: area {a['area_um2'] / b['area_um2']:.3f}x, critical path "
              f"{a['critical_path_ns'] / b['critical_path_ns']:.3f}x")
        fixed_rate = macs_per_cycle(fcfg)[1] / b["area_um2"] * 1e6
        for n, m in macs_per_cycle(cfg).items():
            rate = m / a["area_um2"] * 1e6
            print(f"  {width // n:>2}-bit: {rate:8.2f} MACs/cycle/mm2 (fixed {fixed_rate:.2f}: "
                  f"{rate / fixed_rate:.2f}x); per ns at Fmax {rate * a['fmax_mhz'] / 1e3:.3f} "
                  f"(fixed {fixed_rate * b['fmax_mhz'] / 1e3:.3f})")


if __name__ == "__main__":
    main()
