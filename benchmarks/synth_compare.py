"""ST against fixed on the default ASIC flow, in one run.

For mac16 (and every other ST multiplier architecture, mac16-ppa among them) against
mac16-fixed: area ratio, critical-path ratio, MACs/cycle/mm2 at 16, 8 and 4 bits, the wall
time of each flow, and the goals (ST area <= 1.15x the fixed MAC, critical path <= 1.10x):
met, or missed by how much, and which architecture came closest.  With --tiles, the same
for rcm-default against rcm-default-fixed (goal: <= 5 % tile area overhead), and whether
that part ran.  Every figure comes from the flow run here (Yosys + OpenSTA on OSU 0.18 um).

    python benchmarks/synth_compare.py [--tiles] [--clock-ns T] [--out DIR] [--json R.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rcm_gen.config import ARCHITECTURES
from rcm_gen.errors import ToolFailed, UserError
from rcm_gen.flows.synth import compare, synthesize
from rcm_gen.presets import apply_overrides, preset

AREA_GOAL = 1.15
PATH_GOAL = 1.10
TILE_AREA_GOAL = 1.05


def mac_points() -> dict[str, Any]:
    """mac16-fixed, mac16 (Booth), mac16-ppa and mac16 with any other ST architecture."""
    points = {"mac16-fixed": preset("mac16-fixed"), "mac16": preset("mac16"),
              "mac16-ppa": preset("mac16-ppa")}
    for arch in ARCHITECTURES:
        if arch != "fixed" and all(c.arch != arch for c in points.values()):
            points[f"mac16 arch={arch}"] = apply_overrides(preset("mac16"), [f"arch={arch}"])
    return points


def _goal(value: float, goal: float) -> str:
    if value <= goal:
        return f"met (goal <= {goal:.2f}x)"
    return (f"MISSED by {value - goal:.3f}x, {(value / goal - 1) * 100:.1f} % over the goal "
            f"(<= {goal:.2f}x)")


def _row(name: str, r: dict[str, Any]) -> str:
    groups = ", ".join(f"{k} {v:,.0f}" for k, v in r["area_by_group"].items() if v)
    return (f"{name:<22}{r['area_um2']:>12,.0f}{r['critical_path_ns']:>10.3f}"
            f"{r['fmax_mhz']:>10.1f}{r['wall_s']:>8.1f}  {groups}")


def _pair(st: str, fx: str, a: dict[str, Any], b: dict[str, Any], ca: Any, cb: Any,
          area_goal: float, path_goal: float | None) -> dict[str, Any]:
    ratios = compare(a, b, ca, cb)
    print(f"{st} / {fx}:")
    print(f"  area          {ratios['area']:.3f}x  {_goal(ratios['area'], area_goal)}")
    line = f"  critical path {ratios['critical_path']:.3f}x"
    print(line + (f"  {_goal(ratios['critical_path'], path_goal)}" if path_goal else ""))
    for bits, d in ratios["macs_per_cycle_per_mm2"].items():
        at_fmax_a = d["a"] * a["fmax_mhz"] / 1e3
        at_fmax_b = d["b"] * b["fmax_mhz"] / 1e3
        print(f"  {bits:>2}-bit: {d['a']:9.2f} MACs/cycle/mm2 vs {d['b']:9.2f} "
              f"({d['ratio']:.2f}x); at Fmax {at_fmax_a:7.3f} vs {at_fmax_b:7.3f} "
              f"MACs/ns/mm2 ({at_fmax_a / at_fmax_b:.2f}x)")
    return ratios


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles", action="store_true",
                    help="also rcm-default against rcm-default-fixed (several minutes)")
    ap.add_argument("--clock-ns", type=float, default=None,
                    help="clock period (default: rcm_gen/flows/data/asic.toml)")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temp folder)")
    ap.add_argument("--json", default=None, help="also write every report and ratio here")
    args = ap.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="rcm_synth_"))
    started = time.perf_counter()

    points = mac_points()
    reports = {name: synthesize(cfg, "asic", out_dir=out / name.replace(" ", "_"),
                                clock_ns=args.clock_ns)
               for name, cfg in points.items()}
    r0 = reports["mac16-fixed"]
    print(f"{r0['liberty']['name']}, Yosys synth -booth + ABC -D {r0['clock_ns'] * 1000:g}, "
          f"OpenSTA at {r0['clock_ns']:g} ns; runs in {out}")
    print(f"{'design':<22}{'area um2':>12}{'crit. ns':>10}{'Fmax MHz':>10}{'wall s':>8}  "
          "area by group")
    for name, r in reports.items():
        print(_row(name, r))
    print()
    results: dict[str, Any] = {"reports": reports, "ratios": {}}
    for name, cfg in points.items():
        if name == "mac16-fixed":
            continue
        results["ratios"][name] = _pair(name, "mac16-fixed", reports[name], r0, cfg,
                                        points["mac16-fixed"], AREA_GOAL, PATH_GOAL)
    st = results["ratios"]
    best_area = min(st, key=lambda n: st[n]["area"])
    best_path = min(st, key=lambda n: st[n]["critical_path"])
    met = [n for n, r in st.items()
           if r["area"] <= AREA_GOAL and r["critical_path"] <= PATH_GOAL]
    print()
    print(f"closest in area: {best_area} ({st[best_area]['area']:.3f}x); closest in critical "
          f"path: {best_path} ({st[best_path]['critical_path']:.3f}x)")
    print("both MAC goals met by: " + (", ".join(met) if met else "none"))

    results["tiles"] = {"ran": False}
    if args.tiles:
        print()
        try:
            tiles = {name: preset(name) for name in ("rcm-default", "rcm-default-fixed")}
            treps = {name: synthesize(cfg, "asic", out_dir=out / name, clock_ns=args.clock_ns)
                     for name, cfg in tiles.items()}
        except (ImportError, NotImplementedError, AttributeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            print(f"tiles: not run, the tile could not be generated ({reason})")
            results["tiles"] = {"ran": False, "reason": reason}
        else:
            for name, r in treps.items():
                print(_row(name, r))
            ratios = _pair("rcm-default", "rcm-default-fixed", treps["rcm-default"],
                           treps["rcm-default-fixed"], tiles["rcm-default"],
                           tiles["rcm-default-fixed"], TILE_AREA_GOAL, None)
            ga = treps["rcm-default"]["area_by_group"]
            gb = treps["rcm-default-fixed"]["area_by_group"]
            print("  area by group (ST - fixed): " + ", ".join(
                f"{k} {ga[k] - gb[k]:+,.0f}" for k in ga))
            compute = [g["multipliers"] + g["accumulators"] for g in (ga, gb)]
            share = 1 - compute[1] / treps["rcm-default-fixed"]["area_um2"]
            print(f"  MACs alone (multipliers + accumulators): {compute[0] / compute[1]:.3f}x; "
                  f"buffers and control are {share * 100:.1f} % of the fixed tile")
            ratios["macs_alone"] = compute[0] / compute[1]
            print("tiles: ran")
            results["tiles"] = {"ran": True, "reports": treps, "ratios": ratios}
    else:
        print("tiles: not run (pass --tiles for rcm-default against rcm-default-fixed)")
    print(f"total wall time {time.perf_counter() - started:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"synth_compare: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ToolFailed as exc:
        print(f"synth_compare: failed: {exc}", file=sys.stderr)
        sys.exit(1)
