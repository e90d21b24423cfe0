"""Glitch energy of the MACs by timing simulation (OpenSTA SDF, Icarus, inertial delays)
beside the zero-delay power flow: per MAC and operating point the toggles and pJ/MAC both
ways, the Sum-Together / fixed pJ/MAC ratios both ways, per energy group the timed /
zero-delay factor, and the factors :func:`rcm_gen.power.glitch.glitch_factors` gives (a
group moved by more than 5 %).  Prints figures; no pass/fail.

    python benchmarks/glitch_table.py [--cycles 1000] [--library osu018|sky130|both]
        [--presets mac16,mac16-ppa,mac16-fixed,mac8,mac8-fixed] [--stimulus random]
        [--json out.json]

Reports are cached (``<cache>/glitch``): a second run prints the same figures at once,
with the wall time each measurement took when it was made.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rcm_gen.power.glitch import GLITCH_THRESHOLD, format_glitch, glitch_report
from rcm_gen.presets import preset

SKY130 = str(Path(__file__).resolve().parent.parent / "tests" / "data"
             / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz")
LIBRARIES = {"osu018": None, "sky130": SKY130}
#: Sum-Together MAC -> the fixed MAC it is compared with on the same data.
PAIRS = {"mac16": "mac16-fixed", "mac16-ppa": "mac16-fixed", "mac8": "mac8-fixed"}


def _key(m: dict) -> tuple[int, int, bool]:
    return m["act_bits"], m["weight_bits"], m["act_signed"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=1000, help="cycles per mode (1000)")
    ap.add_argument("--library", default="both", choices=[*LIBRARIES, "both"])
    ap.add_argument("--presets", default="mac16,mac16-ppa,mac16-fixed,mac8,mac8-fixed")
    ap.add_argument("--stimulus", default="random")
    ap.add_argument("--json", default=None, help="write every report to this file")
    args = ap.parse_args()
    names = [p for p in args.presets.split(",") if p]
    libs = list(LIBRARIES) if args.library == "both" else [args.library]
    started = time.perf_counter()
    out: dict[str, dict[str, dict]] = {}
    for lib in libs:
        out[lib] = {}
        for name in names:
            t = time.perf_counter()
            r = glitch_report(preset(name), liberty=LIBRARIES[lib], cycles=args.cycles,
                              stimulus=args.stimulus,
                              log=lambda m, n=name, t0=t: print(
                                  f"  [{time.perf_counter() - t0:6.1f} s] {n}: {m}",
                                  flush=True))
            out[lib][name] = r
            print(format_glitch(r, f"{name} ({lib})"))
            print(f"  measured in {r['wall_s']:.1f} s (this call {time.perf_counter() - t:.1f}"
                  f" s); SDF: {r['sdf']['iopaths']} IOPATHs, {r['sdf']['merged_arcs']} merged,"
                  f" {r['sdf']['interconnects_folded']} interconnect delays folded, "
                  f"{r['sdf']['input_delays']} input-port delays; period {r['period_ns']:g} "
                  f"ns (critical path {r['synthesis']['critical_path_ns']:.2f} ns)\n",
                  flush=True)
    # the glitch table: pJ/MAC both ways and the ST / fixed ratios
    for lib in libs:
        print(f"== {lib}: pJ/MAC zero-delay / timed, and Sum-Together over fixed on the "
              "same data ==")
        head = ("MAC", "data", "mode", "toggles/cyc 0-d", "timed", "pJ/MAC 0-d", "timed",
                "timed/0-d", "ST/fixed 0-d", "ST/fixed timed")
        rows = [head]
        for name in names:
            r = out[lib][name]
            fixed = out[lib].get(PAIRS.get(name, ""), None)
            index = {_key(m): m for m in fixed["modes"]} if fixed else {}
            for m in r["modes"]:
                f = index.get(_key(m))
                pz, pt = m["pj_per_mac"]["zero_delay"], m["pj_per_mac"]["timed"]
                rz = f"{pz / f['pj_per_mac']['zero_delay']:.3f}" if f else "-"
                rt = f"{pt / f['pj_per_mac']['timed']:.3f}" if f else "-"
                rows.append((name, f"{m['act_bits']}x{m['weight_bits']} "
                             f"{'s' if m['act_signed'] else 'u'}", m["mode"],
                             f"{m['toggles_per_cycle']['zero_delay']:.1f}",
                             f"{m['toggles_per_cycle']['timed']:.1f}", f"{pz:.3f}", f"{pt:.3f}",
                             f"{pt / pz:.3f}", rz, rt))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        for row in rows:
            print("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        print(f"\n== {lib}: timed / zero-delay energy per group, all modes (factors "
              f"glitch_factors() gives: moved by more than {GLITCH_THRESHOLD:.0%}) ==")
        for name in names:
            r = out[lib][name]
            moved = ", ".join(f"{g} {f:.3f}" for g, f in r["factors"].items()
                              if abs(f - 1) > GLITCH_THRESHOLD) or "none"
            print(f"{name:12s} " + ", ".join(f"{g} {f:.3f}" for g, f in r["factors"].items())
                  + f"   -> factors {moved}")
        print()
    print(f"total {time.perf_counter() - started:.1f} s wall (cached reports print their "
          "own measured wall time above)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
