"""Hierarchical against flat synthesis, and how synthesis time grows with the MAC count.
Prints a table of area, critical path and wall time (CPU time of this process and its
children too, since a shared machine stretches wall time); no pass/fail.

    python benchmarks/synth_scaling.py compare [--preset rcm-small] [--liberty FILE]
    python benchmarks/synth_scaling.py scale --p 16 64 [--liberty FILE] [--set memory=sram]

``compare`` runs the hierarchical flow with an empty module cache and again with the
cache it filled, then the flat flow.  ``scale`` runs the hierarchical flow on the preset
with ``p`` = ``tm`` = each given MAC count, first with an empty module cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from rcm_gen.flows.synth import synthesize
from rcm_gen.presets import apply_overrides, preset


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(cfg, out: Path, liberty: str | None, hierarchy: str) -> dict:
    wall, cpu = time.perf_counter(), _cpu()
    r = synthesize(cfg, out_dir=out, liberty=liberty, hierarchy=hierarchy)
    r["bench_wall_s"] = time.perf_counter() - wall
    r["bench_cpu_s"] = _cpu() - cpu
    return r


def _row(label: str, r: dict) -> str:
    mem = r.get("memory") or {}
    macros = ", ".join(f"{u['count']}x {n}" for n, u in (mem.get("macros") or {}).items())
    mods = r.get("modules") or {}
    return (f"{label:<24} {r['area_um2']:>14,.0f} {r['critical_path_ns']:>8.3f} "
            f"{r['cells']:>10,} {r['bench_wall_s']:>8.1f} {r['bench_cpu_s']:>8.1f}  "
            f"{mods.get('distinct', '-')}/{mods.get('instances', '-')} {macros}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("compare", "scale"))
    ap.add_argument("--preset", default=None)
    ap.add_argument("--liberty", default=None)
    ap.add_argument("--p", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rcm_synth_scaling_"))
    os.environ["RCM_GEN_CACHE"] = str(work / "cache")  # an empty module cache
    print(f"{'run':<24} {'area (um2)':>14} {'cp (ns)':>8} {'cells':>10} {'wall s':>8} "
          f"{'cpu s':>8}  distinct/instances macros")
    if args.mode == "compare":
        cfg = apply_overrides(preset(args.preset or "rcm-small"), args.set)
        cold = _run(cfg, work / "hier", args.liberty, "hier")
        print(_row("hier (empty cache)", cold), flush=True)
        warm = _run(cfg, work / "hier2", args.liberty, "hier")
        print(_row("hier (cached)", warm), flush=True)
        flat = _run(cfg, work / "flat", args.liberty, "flat")
        print(_row("flat", flat), flush=True)
        print(f"hier / flat: area {cold['area_um2'] / flat['area_um2']:.4f}, critical path "
              f"{cold['critical_path_ns'] / flat['critical_path_ns']:.4f}")
    else:
        for p in args.p:
            cfg = apply_overrides(preset(args.preset or "rcm-default"),
                                  [f"tm={p}", f"p={p}", *args.set])
            r = _run(cfg, work / f"p{p}", args.liberty, "hier")
            print(_row(f"p={p}", r), flush=True)
    print(f"runs in {work}")


if __name__ == "__main__":
    main()
