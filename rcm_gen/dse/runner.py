"""Running a sweep: grid or NSGA-II, on a local process pool or a Dask cluster, over a
resumable result store."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..tools import tool_versions
from .space import Point, Space
from .store import Store, point_key

__all__ = ["SweepStats", "make_tasks", "run_sweep"]

Evaluator = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class SweepStats:
    total: int = 0
    computed: int = 0
    failed: int = 0
    cached: int = 0
    skipped: int = 0
    waited: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    wall_s: float = 0.0


class _Progress:
    """One status line: points done, failed, cached, skipped, and the time left."""

    def __init__(self, stats: SweepStats, jobs: int, enabled: bool = True) -> None:
        self.stats, self.jobs, self.enabled = stats, jobs, enabled
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = ""

    def update(self, final: bool = False) -> None:
        if not self.enabled:
            return
        s = self.stats
        finished = s.computed + s.failed
        todo = s.total - s.cached - s.skipped - finished
        elapsed = time.monotonic() - self.start
        eta = ""
        if finished and todo:
            eta = f", ~{_fmt(elapsed / finished * todo)} left"
        counts = (f"[{finished + s.cached + s.skipped}/{s.total}] {s.computed} computed, "
                  f"{s.failed} failed, {s.cached} cached, {s.skipped} skipped")
        line = f"{counts}; {_fmt(elapsed)} elapsed{eta}"
        # On a terminal the line is redrawn every second; in a log, a line per change.
        if (line if self.tty else counts) == self.last and not final:
            return
        self.last = line if self.tty else counts
        if self.tty:
            sys.stderr.write("\r" + line.ljust(100) + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def settings_of(space: Space, point: Point) -> dict[str, Any]:
    return {"target": space.target, "liberty": space.liberty, "clock_ns": point.clock_ns,
            "tools": tool_versions("rcm_gen", "amaranth", "yosys", "opensta",
                                   "nextpnr_ecp5", "nextpnr_ice40")}


def _workload_specs(space: Space) -> list[dict[str, Any]]:
    out = []
    for w in space.workloads:
        spec: dict[str, Any] = {"name": w.name, "bits": list(w.bits), "act_signed": w.act_signed}
        if w.layer is not None:
            spec["layer"] = {k: getattr(w.layer, k) for k in
                             ("c", "m", "h", "w", "k", "stride", "padding")}
        else:
            spec["network"] = w.network
        out.append(spec)
    return out


def make_tasks(space: Space, store_path: Path, combos: list[dict[str, Any]] | None = None,
               synthesizer: str | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Tasks for the legal points among ``combos`` (all of the space by default), one per
    distinct key, and the reasons the others were skipped."""
    tasks: dict[str, dict[str, Any]] = {}
    reasons: dict[str, int] = {}
    workloads = _workload_specs(space)
    for combo in space.combinations() if combos is None else combos:
        try:
            point = space.point(combo)
        except ValueError as exc:
            reasons[str(exc)] = reasons.get(str(exc), 0) + 1
            continue
        settings = settings_of(space, point)
        config = point.config.to_dict()
        key = point_key(config, settings)
        tasks.setdefault(key, {
            "key": key, "store": str(store_path), "config": config, "knobs": combo,
            "settings": settings, "configurable": point.configurable,
            "workloads": workloads, "run_dir": str(store_path.parent / "runs" / key),
            "synthesizer": synthesizer,
        })
    return list(tasks.values()), reasons


class _Executor:
    """A local process pool or a Dask client behind one interface."""

    def __init__(self, jobs: int, scheduler: str | None, timeout: float = 10.0) -> None:
        self.client = None
        self.pool = None
        if scheduler:
            try:
                from distributed import Client

                self.client = Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise UserError(f"--scheduler {scheduler!r}: cannot reach a Dask scheduler "
                                f"there within {timeout:g} s ({reason})") from None
            self.slots = max(1, sum(self.client.nthreads().values()))
        else:
            ctx = multiprocessing.get_context("spawn")
            self.pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
            self.slots = jobs

    def submit(self, fn: Evaluator, task: dict[str, Any]):
        if self.client is not None:
            return self.client.submit(fn, task, pure=False, key=f"rcm-{task['key']}")
        return self.pool.submit(fn, task)

    def wait(self, futures: list, timeout: float) -> list:
        if not futures:
            return []
        if self.client is not None:
            from distributed import wait

            try:
                done, _ = wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
            except TimeoutError:
                return []
            return list(done)
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _evaluate_all(tasks: list[dict[str, Any]], store: Store, executor: _Executor,
                  evaluator: Evaluator, stats: SweepStats, progress: _Progress,
                  retry_failed: bool) -> None:
    queue = []
    waiting = []
    for task in tasks:
        row = store.get(task["key"])
        if row is not None and (row["status"] == "done"
                                or (row["status"] == "failed" and not retry_failed)):
            stats.cached += 1
        elif row is not None and store.in_progress_elsewhere(row):
            waiting.append(task)  # another live process computes it: wait, do not repeat
        else:
            queue.append(task)
    progress.update()
    running: dict[Any, dict[str, Any]] = {}
    while queue or running or waiting:
        while queue and len(running) < executor.slots:
            task = queue.pop(0)
            running[executor.submit(evaluator, task)] = task
        for fut in executor.wait(list(running), timeout=1.0):
            task = running.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker died: record the point as failed
                outcome = {"status": "failed", "error": f"worker died: {exc}"}
                store.claim(task["key"], task["config"], task["knobs"], task["settings"],
                            task["configurable"])
                store.finish(task["key"], "failed", error=outcome["error"])
            if outcome["status"] == "done":
                stats.computed += 1
            else:
                stats.failed += 1
        for task in list(waiting):
            row = store.get(task["key"])
            if row["status"] != "running":
                waiting.remove(task)
                stats.waited += 1
                stats.cached += 1
            elif not store.in_progress_elsewhere(row):
                waiting.remove(task)
                queue.append(task)
        if waiting and not running and not queue:
            time.sleep(1.0)
        progress.update()


def run_sweep(space: Space, store_path: Path, *, jobs: int = 1, scheduler: str | None = None,
              strategy: str = "grid", budget: int | None = None,
              evaluator: Evaluator | None = None, retry_failed: bool = False,
              progress: bool = True, seed: int = 1,
              objective: tuple[str, str] | None = None,
              synthesizer: str | None = None) -> SweepStats:
    """Evaluate the space's points (all of them, or an NSGA-II search of ``budget``
    trials), reusing every result already in the store."""
    from .evaluate import evaluate_point

    evaluator = evaluator or evaluate_point
    started = time.monotonic()
    store = Store(store_path)
    stats = SweepStats()
    executor = _Executor(jobs, scheduler)
    try:
        if strategy == "grid":
            tasks, reasons = make_tasks(space, store_path, synthesizer=synthesizer)
            stats.total = len(tasks) + sum(reasons.values())
            stats.skipped = sum(reasons.values())
            stats.skip_reasons = reasons
            stats.keys = [t["key"] for t in tasks]
            prog = _Progress(stats, jobs, progress)
            _evaluate_all(tasks, store, executor, evaluator, stats, prog, retry_failed)
            prog.update(final=True)
        elif strategy == "nsga2":
            from .nsga2 import search

            search(space, store, store_path, executor, evaluator, stats, budget or 20,
                   seed, objective, retry_failed, progress, synthesizer)
        else:
            raise UserError(f"--strategy must be grid or nsga2, not {strategy!r}")
    finally:
        executor.close()
        store.close()
    stats.wall_s = time.monotonic() - started
    return stats

