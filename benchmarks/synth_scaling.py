"""Hierarchical against flat synthesis, how synthesis time grows with the MAC count, and
where the time of a large tile goes.  Prints tables of area, critical path and time (the
CPU time of this process and of the tools it ran too, since a shared machine stretches
wall time); no pass/fail.

    python benchmarks/synth_scaling.py compare [--preset rcm-small] [--liberty FILE]
    python benchmarks/synth_scaling.py scale --p 16 64 [--liberty FILE] [--set memory=sram]
    python benchmarks/synth_scaling.py tile [--preset rcm-16x16] [--set KEY=VALUE]
        [--liberty FILE] [--full]

``compare`` runs the hierarchical flow with an empty module cache and again with the
cache it filled, then the flat flow.  ``scale`` runs the hierarchical flow on the preset
with ``p`` = ``tm`` = each given MAC count, first with an empty module cache.  ``tile``
runs the hierarchical flow on one design point (the preset with the ``--set``
overrides) with empty caches (no synthesized module, timing model or generated Verilog;
the parsed liberty is kept, as it does not depend on the design), then again with the
caches it filled, and prints the wall and CPU time of each phase: Verilog generation,
module synthesis, composition (deduplication, fanout buffers, the composed netlist) and
static timing (block models and the top); ``--full`` adds a run on the filled caches
that times the whole composed netlist instead (``--sta full``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from rcm_gen.flows.synth import synthesize
from rcm_gen.presets import apply_overrides, preset
from rcm_gen.tools import cache_dir

PHASES = ("verilog", "synthesis", "composition", "sta")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(cfg, out: Path, liberty: str | None, hierarchy: str, sta: str | None = None
         ) -> dict:
    wall, cpu = time.perf_counter(), _cpu()
    r = synthesize(cfg, out_dir=out, liberty=liberty, hierarchy=hierarchy, sta=sta)
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


def _phases(label: str, r: dict) -> str:
    cells = []
    for name in PHASES:
        t = r["phases"].get(name, {"wall_s": 0.0, "cpu_s": 0.0})
        cells.append(f"{t['wall_s']:>7.1f} {t['cpu_s']:>6.1f}")
    models = r.get("timing_models") or {}
    made = (f"{models['characterized']} made, {models['cached']} cached"
            if models else "-")
    return (f"{label:<18} {'  '.join(cells)}  {r['bench_wall_s']:>7.1f} "
            f"{r['bench_cpu_s']:>6.1f}  {r['critical_path_ns']:>7.3f}  {made}")


def _fresh_cache(work: Path) -> Path:
    """An empty cache for a cold run, with the parsed liberty libraries of the present
    cache copied in (parsing a liberty does not depend on the design)."""
    fresh = work / "cache"
    fresh.mkdir(parents=True)
    parsed = cache_dir() / "liberty"
    if parsed.is_dir():
        shutil.copytree(parsed, fresh / "liberty")
    return fresh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("compare", "scale", "tile"))
    ap.add_argument("--preset", default=None)
    ap.add_argument("--liberty", default=None)
    ap.add_argument("--p", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--full", action="store_true",
                    help="tile: also time the whole composed netlist (--sta full)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rcm_synth_scaling_"))
    os.environ["RCM_GEN_CACHE"] = str(_fresh_cache(work))
    if args.mode == "tile":
        cfg = apply_overrides(preset(args.preset or "rcm-16x16"), args.set)
        print(f"{args.preset or 'rcm-16x16'} {' '.join(args.set)} on "
              f"{args.liberty or 'osu018'}: {os.cpu_count()} cores, load "
              f"{os.getloadavg()[0]:.1f}")
        head = "  ".join(f"{n[:14]:>14}" for n in PHASES)
        print(f"{'run':<18} {head}  {'total':>14}  {'cp (ns)':>7}  timing models")
        print(f"{'':<18} {'  '.join(['   wall    cpu'] * (len(PHASES) + 1))}")
        runs = [("cold", None), ("warm", None)] + ([("warm, full STA", "full")]
                                                   if args.full else [])
        for i, (label, sta) in enumerate(runs):
            r = _run(cfg, work / f"run{i}", args.liberty, "hier", sta)
            print(_phases(label, r), flush=True)
        mods = r["modules"]
        mem = r.get("memory") or {}
        print(f"area {r['area_um2']:,.0f} um2, {r['cells']:,} cells, "
              f"{mods['distinct']} distinct modules of {mods['instances']} instances, "
              f"{mods['fanout_buffers']['count']} fanout buffers; memory: {mem.get('note')}")
        print(f"critical path {r['critical_path_ns']:.3f} ns at level "
              f"{r['critical_path']['level']}: {r['critical_path']['startpoint']} -> "
              f"{r['critical_path']['endpoint']}")
        print(f"runs in {work}")
        return
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
