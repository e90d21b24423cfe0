"""``rcm-gen dse``: explore a design space for latency against area."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserError

__all__ = ["add_parser", "example_space"]


def example_space(name: str = "example_space") -> Path:
    from importlib import resources

    return Path(str(resources.files("rcm_gen.dse").joinpath(f"data/{name}.toml")))


def cmd_dse(args: argparse.Namespace) -> int:
    from .pareto import write_outputs
    from .runner import run_sweep
    from .space import load_space
    from .store import Store

    if bool(args.space) == bool(args.example):
        raise UserError("give --space FILE or --example (one of them)")
    space_file = Path(args.space) if args.space else example_space()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out!r} is a file; give a directory")
    parent = out if out.exists() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"--out {args.out!r} is not writable")
    if args.jobs < 1:
        raise UserError(f"-j must be at least 1, not {args.jobs}")
    if args.budget is not None and args.budget < 1:
        raise UserError(f"--budget must be at least 1, not {args.budget}")
    if args.strategy not in ("grid", "nsga2"):
        raise UserError(f"--strategy must be grid or nsga2, not {args.strategy!r}")
    objective = None
    if args.objective:
        if ":" not in args.objective:
            raise UserError(f"--objective must be WORKLOAD:PRECISION, not {args.objective!r}")
        objective = tuple(args.objective.split(":", 1))
    space = load_space(space_file)
    store_path = Path(args.store) if args.store else out / "store.sqlite"
    print(f"space {space.name!r} ({space_file}): {len(space.combinations())} knob combinations, "
          f"{len(space.workloads)} workloads, target {space.target}; store {store_path}",
          flush=True)
    stats = run_sweep(space, store_path, jobs=args.jobs, scheduler=args.scheduler,
                      strategy=args.strategy, budget=args.budget, objective=objective,
                      retry_failed=args.retry_failed, progress=not args.quiet)
    store = Store(store_path)
    try:
        rows = store.rows(stats.keys)
    finally:
        store.close()
    summary = write_outputs([r for r in rows if r["status"] in ("done", "failed")], out,
                            space.target)
    print(f"{stats.computed} computed, {stats.failed} failed, {stats.cached} from the store, "
          f"{stats.skipped} skipped, in {stats.wall_s:.1f} s")
    for reason, count in stats.skip_reasons.items():
        print(f"  skipped {count}: {reason}")
    for row in rows:
        if row["status"] == "failed":
            print(f"  failed {row['key']}: {row['error']} (log {row['log']})")
    print(summary)
    print(f"wrote {out / 'results.csv'}, {out / 'pareto.csv'}, {out / 'pareto.png'}, "
          f"{out / 'pareto.svg'}")
    return 0


def add_parser(subparsers, design_args) -> None:
    p = subparsers.add_parser(
        "dse", help="explore a design space: latency against area, configurable and fixed",
        description="Evaluate every point of a design space (or an NSGA-II search of it): "
                    "synthesis for area and clock, the cycle model for latency; results "
                    "are stored, so an interrupted or repeated sweep recomputes nothing "
                    "already done.")
    p.add_argument("--space", metavar="FILE", help="the design space (TOML)")
    p.add_argument("--example", action="store_true",
                   help="the example space shipped with rcm_gen")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel evaluations on this machine (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run on a Dask distributed scheduler (tcp://host:port) instead")
    p.add_argument("--strategy", default="grid", metavar="grid|nsga2")
    p.add_argument("--budget", type=int, metavar="N", help="NSGA-II trials (default 20)")
    p.add_argument("--objective", metavar="WORKLOAD:PRECISION",
                   help="NSGA-II latency objective (default: the first workload's first "
                        "precision)")
    p.add_argument("--store", metavar="DB", help="result store (default OUT/store.sqlite)")
    p.add_argument("--retry-failed", action="store_true",
                   help="evaluate points that failed before again")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_dse)
