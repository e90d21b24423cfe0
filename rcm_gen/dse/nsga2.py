"""Multi-objective search (Optuna's NSGA-II sampler) over a space, through the same store
and executors as the grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from .space import Space
from .store import Store

__all__ = ["latency_ns", "search"]


def latency_ns(result: dict[str, Any] | None, cycles: dict[str, Any] | None) -> float | None:
    """Latency of a case on a point: its cycles times the point's achieved clock period;
    ``None`` if the point failed or cannot run the case."""
    if not result or not cycles or cycles.get("cycles") is None:
        return None
    return cycles["cycles"] * result["critical_path_ns"]


def search(space: Space, store: Store, store_path: Path, executor: Any, evaluator: Any,
           stats: Any, budget: int, *, seed: int, objective: tuple[str, str] | None,
           retry_failed: bool, progress: bool, synthesizer: str | None,
           direct: bool) -> None:
    """Ask NSGA-II for ``budget`` trials minimizing (area, latency of ``objective``, a
    (workload, precision) pair; the first workload's first precision by default), a
    batch of one per worker slot at a time.  Points already in the store are not
    computed again; illegal points are skipped (a failed trial for the sampler)."""
    import optuna

    from .runner import _evaluate_all, _Progress, make_tasks

    cases = {(c["workload"], c["precision"]): c for c in space.cases()}
    if objective is None:
        objective = next(iter(cases))
    if objective not in cases:
        known = ", ".join(f"{w}:{p}" for w, p in cases)
        raise UserError(f"--objective must be one of {known}, not "
                        f"'{objective[0]}:{objective[1]}'")
    case = cases[objective]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(seed=seed,
                                            population_size=max(4, min(20, budget // 3)))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    names = list(space.knobs)
    prog = _Progress(stats, progress)
    stats.points = 0
    tasks: dict[str, dict[str, Any]] = {}
    asked = 0
    while asked < budget:
        batch = min(executor.slots, budget - asked)
        trials = [study.ask() for _ in range(batch)]
        asked += batch
        pending = []
        for trial in trials:
            combo = {n: space.knobs[n][trial.suggest_categorical(
                n, list(range(len(space.knobs[n]))))] for n in names}
            made = make_tasks(space, store_path, [combo], synthesizer=synthesizer,
                              retry_failed=retry_failed, stats=stats)
            if not made:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            task = {**made[0], "direct": direct}
            pending.append((trial, task))
        fresh = {t["key"]: t for _, t in pending if t["key"] not in tasks}
        tasks.update(fresh)
        stats.points = len(tasks)
        _evaluate_all(list(fresh.values()), store, executor, evaluator, stats, prog)
        for trial, task in pending:
            row = store.get(task["key"])
            value = None
            if row and row["status"] == "done":
                value = latency_ns(row["result"], store.cycles(task["key"]).get(case["key"]))
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, [float(row["result"]["area"]), float(value)])
    stats.tasks = list(tasks.values())
    prog.update(final=True)
