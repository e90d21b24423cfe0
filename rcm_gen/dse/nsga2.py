"""Multi-objective search (Optuna's NSGA-II sampler) over a space.

The search only asks and tells: the sweep that calls it evaluates each batch of knob
combinations (through the same store and executors as the grid) and returns where each
point's results are, so this module needs nothing from the runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UserError
from .objectives import latency_ns
from .space import Space
from .store import Store

__all__ = ["BatchEvaluator", "search"]

#: Evaluates knob combinations; per combination, the store key of its point, or ``None``
#: when the combination is not a legal design point.
BatchEvaluator = Callable[[list[dict[str, Any]]], list[str | None]]


def search(space: Space, store: Store, evaluate: BatchEvaluator, budget: int, slots: int, *,
           seed: int, objective: tuple[str, str] | None) -> None:
    """Ask NSGA-II for ``budget`` trials minimizing (area, latency of ``objective``, a
    (workload, precision) pair; the first workload's first precision by default), a
    batch of ``slots`` at a time.  Illegal points are failed trials for the sampler."""
    import optuna

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
    asked = 0
    while asked < budget:
        batch = min(slots, budget - asked)
        trials = [study.ask() for _ in range(batch)]
        asked += batch
        combos = [{n: space.knobs[n][trial.suggest_categorical(
            n, list(range(len(space.knobs[n]))))] for n in names} for trial in trials]
        for trial, key in zip(trials, evaluate(combos), strict=True):
            value = row = None
            if key is not None:
                row = store.get(key)
                if row and row["status"] == "done":
                    value = latency_ns(row["result"], store.cycles(key).get(case["key"]))
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, [float(row["result"]["area"]), float(value)])
