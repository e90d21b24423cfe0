"""``rcm-gen dse``: explore a design space for latency against area."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserError

__all__ = ["add_parser", "example_space"]


def example_space(name: str = "example_space") -> Path:
    """Path of a space file shipped with rcm_gen (``rcm_gen/dse/data/NAME.toml``)."""
    from importlib import resources

    return Path(str(resources.files("rcm_gen.dse").joinpath(f"data/{name}.toml")))


def _check_out(out: Path, option: str) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{option} {str(out)!r} is a file; give a directory")
    parent = out if out.exists() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {str(out)!r} is not writable")


def cmd_dse(args: argparse.Namespace) -> int:
    from .pareto import write_outputs
    from .runner import run_sweep
    from .space import load_space
    from .store import Store

    if bool(args.space) == bool(args.example):
        raise UserError("give --space FILE or --example (one of them)")
    if args.space:
        space_file = Path(args.space)
    else:
        name = "example_space" if args.example is True else args.example
        space_file = example_space(name)
        if not space_file.is_file():
            shipped = sorted(f.stem for f in space_file.parent.glob("*.toml"))
            raise UserError(f"--example {name!r} is not a shipped space; known: "
                            f"{', '.join(shipped)}")
    out = Path(args.out)
    _check_out(out, "--out")
    if args.store:
        _check_out(Path(args.store).parent, "--store")
        if Path(args.store).is_dir():
            raise UserError(f"--store {args.store!r} is a directory; give a file")
    if args.jobs < 1:
        raise UserError(f"-j must be at least 1, not {args.jobs}")
    if args.budget is not None:
        if args.strategy != "nsga2":
            raise UserError("--budget applies to --strategy nsga2")
        if args.budget < 1:
            raise UserError(f"--budget must be at least 1, not {args.budget}")
    if args.scheduler_timeout <= 0:
        raise UserError(f"--scheduler-timeout must be greater than 0, not "
                        f"{args.scheduler_timeout:g}")
    objective = None
    if args.objective:
        if args.strategy != "nsga2":
            raise UserError("--objective applies to --strategy nsga2")
        if ":" not in args.objective:
            raise UserError(f"--objective must be WORKLOAD:PRECISION, not {args.objective!r}")
        objective = tuple(args.objective.split(":", 1))
    space = load_space(space_file)
    store_path = Path(args.store) if args.store else out / "store.sqlite"
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else f"{args.jobs} processes"
    print(f"space {space.name!r} ({space_file}): {len(space.combinations())} combinations, "
          f"{len(space.cases())} workload cases, target {', '.join(space.targets)}; "
          f"{args.strategy} on {where}; store {store_path}", flush=True)
    stats = run_sweep(space, store_path, jobs=args.jobs, scheduler=args.scheduler,
                      scheduler_timeout=args.scheduler_timeout, strategy=args.strategy,
                      budget=args.budget, objective=objective, seed=args.seed,
                      retry_failed=args.retry_failed, progress=not args.quiet)
    with Store(store_path) as store:
        table = write_outputs(stats.tasks, store, space, out)
        rows = store.rows(stats.keys)
        failed = [r for r in rows if r["status"] == "failed"]
        done = [r for r in rows if r["status"] == "done"]
    print(f"{stats.points} points: {stats.computed} computed, {stats.cached} from the store, "
          f"{stats.failed} failed (+{stats.failed_cached} failed before), {stats.skipped} "
          f"combinations skipped, {stats.duplicates} duplicates; {stats.cases} cycle-model "
          f"cases run; {stats.wall_s:.1f} s")
    for reason, count in stats.skip_reasons.items():
        print(f"  skipped {count}: {reason}")
    for row in failed:
        print(f"  failed {row['key']}: {row['error']} (log {row['log']})")
    if space.budget is not None:
        b = space.budget
        limit = (f"{b['part']} ({b['luts']:,} LUTs, {b['dsps']:,} DSPs, {b['brams']:,} "
                 f"BRAMs" + (f", Fmax >= {b['fmax_mhz']:g} MHz)" if b["fmax_mhz"] else ")"))
        fits = 0
        for row in done:
            res, knobs = row["result"] or {}, row["knobs"]
            if res.get("pruned"):
                print(f"  pruned {row['key']} {knobs}: {res['pruned']} (no place and route)")
            elif res.get("budget_fail"):
                print(f"  fails budget {row['key']} {knobs}: {res['budget_fail']}")
            else:
                fits += 1
        print(f"budget {limit}: {fits} of {len(rows)} points fit")
    print(table)
    if space.budget is not None and not fits:
        (out / "pareto.csv").unlink(missing_ok=True)
        raise UserError(f"no design point fits the budget of {limit}: see "
                        f"{out / 'results.csv'} (column budget); no front written")
    print(f"wrote {out / 'results.csv'}, {out / 'pareto.csv'}, {out / 'pareto.png'}, "
          f"{out / 'pareto.svg'}" + (f", {out / 'pareto_dsps.png'}" if space.budget else ""))
    return 0


def add_parser(subparsers, design_args) -> None:
    """Register ``dse`` (the subcommand hook of :mod:`rcm_gen.cli`)."""
    p = subparsers.add_parser(
        "dse", help="explore a design space: latency against area, configurable and fixed",
        description="Evaluate every point of a design space (or an NSGA-II search of it): "
                    "synthesis for area and clock, the cycle model for latency.  Results "
                    "are stored, so an interrupted or repeated sweep recomputes nothing "
                    "already done.")
    p.add_argument("--space", metavar="FILE", help="the design space (TOML)")
    p.add_argument("--example", nargs="?", const=True, default=None, metavar="NAME",
                   help="a space shipped with rcm_gen: example_space (the default, 12 points, "
                        "about two minutes on two cores), space24 (24 points and "
                        "ResNet-18, about six minutes), space_energy (4 points with energy "
                        "from gate-level runs, about ten minutes), fpga (8 points within "
                        "half of an LFE5U-85, ResNet-18 against LUTs and DSPs) or "
                        "fpga-25k (6 points within an LFE5U-25's budget)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel evaluations on this machine (default: all cores)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run on a Dask distributed scheduler (tcp://host:port) instead")
    p.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the scheduler (default 10)")
    p.add_argument("--strategy", default="grid", choices=("grid", "nsga2"),
                   help="every point (grid, default) or an NSGA-II search")
    p.add_argument("--budget", type=int, metavar="N", help="NSGA-II trials (default 20)")
    p.add_argument("--objective", metavar="WORKLOAD:PRECISION",
                   help="NSGA-II latency objective (default: the first workload's first "
                        "precision)")
    p.add_argument("--seed", type=int, default=1, help="NSGA-II seed (default 1)")
    p.add_argument("--store", metavar="DB", help="result store (default OUT/store.sqlite)")
    p.add_argument("--retry-failed", action="store_true",
                   help="evaluate points that failed before again")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_dse)
