"""Multi-objective search (Optuna's NSGA-II) over a space, through the same store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from .space import Space
from .store import Store

__all__ = ["objective_value", "search"]


def objective_value(result: dict[str, Any], objective: tuple[str, str]) -> float | None:
    """Latency (ns) of ``(workload, precision)`` in a stored result, if runnable."""
    for row in result.get("workloads", []):
        if (row["workload"], row["precision"]) == objective:
            return row.get("latency_ns")
    return None


def search(space: Space, store: Store, store_path: Path, executor, evaluator, stats,
           budget: int, seed: int, objective: tuple[str, str] | None, retry_failed: bool,
           progress: bool, synthesizer: str | None = None) -> None:
    """Ask NSGA-II for ``budget`` points (area, latency of ``objective``), a batch of one
    per worker at a time; points already in the store are not computed again."""
    import optuna

    from .runner import _evaluate_all, _Progress, make_tasks

    if budget < 1:
        raise UserError(f"--budget must be at least 1, not {budget}")
    if objective is None:
        w = space.workloads[0]
        objective = (w.name, w.precisions()[0])
    known = {(w.name, p) for w in space.workloads for p in w.precisions()}
    if objective not in known:
        raise UserError(f"--objective must be one of {', '.join(f'{a}:{b}' for a, b in known)}, "
                        f"not '{objective[0]}:{objective[1]}'")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.NSGAIISampler(seed=seed,
                                            population_size=max(4, min(20, budget // 3)))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    names = list(space.knobs)
    stats.total = budget
    prog = _Progress(stats, executor.slots, progress)
    keys: list[str] = []
    asked = 0
    while asked < budget:
        batch = min(executor.slots, budget - asked)
        trials = [study.ask() for _ in range(batch)]
        asked += batch
        pending = []
        for trial in trials:
            combo = {n: space.knobs[n][trial.suggest_categorical(
                n, list(range(len(space.knobs[n]))))] for n in names}
            tasks, reasons = make_tasks(space, store_path, [combo], synthesizer)
            if not tasks:
                reason = next(iter(reasons))
                stats.skipped += 1
                stats.skip_reasons[reason] = stats.skip_reasons.get(reason, 0) + 1
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            pending.append((trial, tasks[0]))
        unique = list({t["key"]: t for _, t in pending}.values())
        _evaluate_all(unique, store, executor, evaluator, stats, prog, retry_failed)
        for trial, task in pending:
            keys.append(task["key"])
            row = store.get(task["key"])
            value = (objective_value(row["result"], objective)
                     if row and row["status"] == "done" else None)
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, [float(row["result"]["area"]), float(value)])
    stats.keys = list(dict.fromkeys(keys))
    prog.update(final=True)
