"""Running a sweep: grid or NSGA-II, on a local process pool or a Dask cluster, over a
resumable result store.

The same loop drives both executors: tasks (plain dicts) go to an evaluation function
(:func:`rcm_gen.dse.evaluate.evaluate_point` unless another picklable top-level function
is given), and results are committed to the store as they come — by the worker itself when
it runs on the store's host, by the sweep otherwise.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from .space import Point, Space
from .store import Store, owner_alive, point_key

__all__ = ["Evaluator", "SweepStats", "make_tasks", "run_sweep", "settings_of"]

#: An evaluation function: a task dict in, an outcome dict out (see evaluate_point).
Evaluator = Callable[[dict[str, Any]], dict[str, Any]]

_TOOLS = {"asic": ("rcm_gen", "amaranth", "yosys", "opensta"),
          "ecp5": ("rcm_gen", "amaranth", "yosys", "nextpnr_ecp5"),
          "ice40": ("rcm_gen", "amaranth", "yosys", "nextpnr_ice40"),
          "nexus": ("rcm_gen", "amaranth", "yosys", "nextpnr_nexus")}


@dataclass
class SweepStats:
    """What a sweep did.

    Members
    -------
    combinations : int
        Knob combinations looked at (grid) or trials asked for (NSGA-II).
    points : int
        Distinct legal design points among them.
    computed, failed : int
        Points synthesized by this run, successfully or not.
    cached : int
        Points whose synthesis came from the store (``waited`` of them after waiting
        for another live process to finish them).
    failed_cached : int
        Points that failed in an earlier run (kept, not retried).
    skipped : int
        Combinations that are not legal design points; ``skip_reasons`` counts them by
        reason.
    duplicates : int
        Combinations that make the same design point as an earlier one.
    cases : int
        Cycle-model cases (workload × precision) run by this sweep.
    """

    combinations: int = 0
    points: int = 0
    computed: int = 0
    failed: int = 0
    cached: int = 0
    failed_cached: int = 0
    waited: int = 0
    skipped: int = 0
    duplicates: int = 0
    cases: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def keys(self) -> list[str]:
        return [t["key"] for t in self.tasks]

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1


class _Progress:
    """Points done, failed, cached, skipped, and the time left: a progress bar (``rich``)
    on a terminal, one line per change of the counts otherwise."""

    def __init__(self, stats: SweepStats, enabled: bool = True) -> None:
        self.stats, self.enabled = stats, enabled
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = ""
        self.bar = None
        if enabled and self.tty:
            from ..progress import ProgressLine

            self.bar = ProgressLine(max(stats.points, 1), "sweep")

    def update(self, final: bool = False) -> None:
        if not self.enabled:
            return
        s = self.stats
        finished = s.computed + s.failed
        settled = finished + s.cached + s.failed_cached
        todo = max(0, s.points - settled)
        elapsed = time.monotonic() - self.start
        eta = ""
        if finished and todo:
            eta = f", ~{_fmt(elapsed / finished * todo)} left"
        counts = (f"[{settled}/{s.points} points] {s.computed} computed, "
                  f"{s.failed + s.failed_cached} failed, {s.cached} cached, "
                  f"{s.skipped} skipped")
        if self.bar is not None:  # redrawn in place by rich
            text = (f"{s.computed} computed, {s.failed + s.failed_cached} failed, "
                    f"{s.cached} cached, {s.skipped} skipped")
            self.bar.update(settled, text, total=max(s.points, 1), final=final)
            return
        # a log: one line per change
        if counts == self.last and not final:
            return
        sys.stderr.write(f"{counts}; {_fmt(elapsed)} elapsed{eta}\n")
        self.last = counts
        sys.stderr.flush()


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def settings_of(space: Space, point: Point) -> dict[str, Any]:
    """The flow settings of a point that go into its key: target, liberty (path and
    content hash), clock, tool versions, and the hash of the generator and flow sources
    (and, with energy on, of the energy flow's sources)."""
    from ..tools import tool_versions
    from .evaluate import hardware_fingerprint

    liberty_sha = None
    if space.liberty and point.target == "asic":
        liberty_sha = _file_sha(space.liberty)
    settings = {"target": point.target,
                "liberty": space.liberty if point.target == "asic" else None,
                "liberty_sha": liberty_sha, "clock_ns": point.clock_ns,
                "tools": tool_versions(*_TOOLS[point.target]),
                "sources": hardware_fingerprint()}
    if space.budget is not None:  # synthesized for the part, pruned by the budget
        settings["budget"] = dict(space.budget)
    if space.energy and point.target == "asic":  # an energy model per point (a new key)
        from ..power.tile_model import energy_fingerprint

        settings["energy"] = energy_fingerprint()
    return settings


def _file_sha(path: str, _cache: dict[str, str] = {}) -> str:  # noqa: B006 (a memo)
    if path not in _cache:
        _cache[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return _cache[path]


def make_tasks(space: Space, store_path: Path, combos: list[dict[str, Any]] | None = None,
               *, synthesizer: str | None = None, retry_failed: bool = False,
               stats: SweepStats | None = None, calibrator: str | None = None
               ) -> list[dict[str, Any]]:
    """Tasks for the legal points among ``combos`` (all of the space by default), one per
    distinct key; illegal combinations and duplicates are counted in ``stats``."""
    stats = stats if stats is not None else SweepStats()
    tasks: dict[str, dict[str, Any]] = {}
    cases = space.cases()
    for combo in space.combinations() if combos is None else combos:
        stats.combinations += 1
        try:
            point = space.point(combo)
        except ValueError as exc:
            stats.skip(str(exc))
            continue
        settings = settings_of(space, point)
        if synthesizer:  # a stand-in flow's results are never taken for the real one's
            settings["synthesizer"] = synthesizer
        if calibrator and "energy" in settings:
            settings["calibrator"] = calibrator
        config = point.config.to_dict()
        key = point_key(config, settings)
        if key in tasks:
            stats.duplicates += 1
            continue
        tasks[key] = {
            "key": key, "store": str(store_path), "config": config, "knobs": combo,
            "settings": settings, "configurable": point.configurable, "cases": cases,
            "run_dir": str(store_path.parent / "runs"), "synthesizer": synthesizer,
            "calibrator": calibrator,
            "retry_failed": retry_failed, "direct": True,
        }
    return list(tasks.values())


class _Executor:
    """A local process pool or a Dask client behind one interface."""

    def __init__(self, jobs: int, scheduler: str | None, timeout: float) -> None:
        self.client = None
        self.pool: cf.ProcessPoolExecutor | None = None
        self.jobs = jobs
        self.counter = itertools.count()
        if scheduler:
            try:
                from distributed import Client

                self.client = Client(scheduler, timeout=f"{timeout}s", set_as_default=False)
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise UserError(f"--scheduler {scheduler!r}: no Dask scheduler reachable "
                                f"there within {timeout:g} s ({reason})") from None
            workers = self.client.scheduler_info().get("workers", {})
            self.slots = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
            hosts = {w.get("host") for w in workers.values()}
            self.same_host = hosts <= {"127.0.0.1", "localhost", socket.gethostname(),
                                       socket.gethostbyname(socket.gethostname())}
        else:
            self._new_pool()
            self.slots = jobs
            self.same_host = True

    def _new_pool(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pool = cf.ProcessPoolExecutor(max_workers=self.jobs, mp_context=ctx,
                                           initializer=_worker_init,
                                           initargs=(os.getpid(),))

    def submit(self, fn: Evaluator, task: dict[str, Any]) -> Any:
        if self.client is not None:
            return self.client.submit(fn, task, pure=False,
                                      key=f"rcm-dse-{task['key']}-{next(self.counter)}")
        assert self.pool is not None
        try:
            return self.pool.submit(_run_task, fn, task)
        except cf.process.BrokenProcessPool:  # a worker died: a fresh pool for the rest
            self.pool.shutdown(wait=False, cancel_futures=True)
            self._new_pool()
            return self.pool.submit(_run_task, fn, task)

    def wait(self, futures: list[Any], timeout: float) -> list[Any]:
        if not futures:
            return []
        if self.client is not None:
            deadline = time.monotonic() + timeout
            while True:
                done = [f for f in futures if f.done()]
                if done or time.monotonic() >= deadline:
                    return done
                time.sleep(0.05)
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def close(self, interrupted: bool = False) -> None:
        if self.client is not None:
            self.client.close()
        if self.pool is not None:
            # On an interrupt, running evaluations still commit their own results.
            self.pool.shutdown(wait=not interrupted, cancel_futures=True)


_busy = threading.Event()


def _run_task(fn: Evaluator, task: dict[str, Any]) -> dict[str, Any]:
    """Run one evaluation in a pool worker, marking the worker busy meanwhile."""
    _busy.set()
    try:
        return fn(task)
    finally:
        _busy.clear()


def _worker_init(parent: int) -> None:
    """Pool workers outlive a sweep killed with SIGKILL; each finishes (and stores) the
    point it holds, then exits instead of waiting forever for work that will not come."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        while _busy.is_set():
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _settled(task: dict[str, Any], store: Store) -> str | None:
    """``done``/``failed`` if the store has everything this task would compute,
    ``busy`` if a live process works on it, else ``None``."""
    row = store.get(task["key"])
    if row is None:
        return None
    if row["status"] == "done":
        have = store.cycles(task["key"])
        return "done" if all(c["key"] in have for c in task["cases"]) else None
    if row["status"] == "failed" and not task["retry_failed"]:
        return "failed"
    if row["status"] == "running" and owner_alive(row):
        return "busy"
    return None


def _evaluate_all(tasks: list[dict[str, Any]], store: Store, executor: _Executor,
                  evaluator: Evaluator, stats: SweepStats, progress: _Progress) -> None:
    """Evaluate ``tasks`` (distinct points), reusing the store; counts go to ``stats``."""
    queue: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    waited: set[str] = set()
    lost: dict[str, int] = {}
    for task in tasks:
        state = _settled(task, store)
        if state == "done":
            stats.cached += 1
        elif state == "failed":
            stats.failed_cached += 1
        elif state == "busy":
            waiting.append(task)
        else:
            queue.append(task)
    progress.update()
    running: dict[Any, dict[str, Any]] = {}
    while queue or running or waiting:
        while queue and len(running) < executor.slots:
            task = queue.pop(0)
            if not task["direct"]:  # the sweep claims for a worker that cannot reach the store
                state, attempt = store.claim(task["key"], task["config"], task["knobs"],
                                             task["settings"], task["configurable"],
                                             retry_failed=task["retry_failed"])
                if state == "busy":
                    waiting.append(task)
                    continue
                row = store.get(task["key"])
                if state == "failed":
                    stats.failed_cached += 1
                    continue
                have = store.cycles(task["key"])
                task = {**task, "attempt": attempt,
                        "synth": row["result"] if state == "done" else None,
                        "cases": [c for c in task["cases"] if c["key"] not in have]}
            running[executor.submit(evaluator, task)] = task
        for fut in executor.wait(list(running), timeout=1.0):
            task = running.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker process died or was lost
                lost[task["key"]] = lost.get(task["key"], 0) + 1
                if lost[task["key"]] < 2:
                    queue.append(task)  # once more (its claim is now a dead process's)
                    continue
                error = f"worker lost twice: {type(exc).__name__}: {exc}".splitlines()[0]
                state, _ = store.claim(task["key"], task["config"], task["knobs"],
                                       task["settings"], task["configurable"],
                                       retry_failed=True)
                if state == "claimed":
                    store.finish(task["key"], "failed", error=error)
                outcome = {"status": "failed", "synthesized": True, "cases": 0}
            if not task["direct"]:
                if outcome.get("synthesized"):
                    store.finish(task["key"], outcome["status"], outcome.get("result"),
                                 outcome.get("error"), outcome.get("log"))
                for ckey, res in outcome.get("cycles", {}).items():
                    store.put_cycles(task["key"], ckey, res)
            stats.cases += outcome.get("cases", 0)
            status = outcome["status"]
            if status == "busy":
                waiting.append(task)
            elif status == "done" and outcome.get("synthesized"):
                stats.computed += 1
            elif status == "done":
                stats.cached += 1
                if task["key"] in waited:
                    stats.waited += 1
            elif outcome.get("synthesized"):
                stats.failed += 1
            else:
                stats.failed_cached += 1
        for task in list(waiting):  # points another live process computes: not repeated
            if _settled(task, store) != "busy":
                waiting.remove(task)
                waited.add(task["key"])
                queue.append(task)
        if waiting and not running and not queue:
            time.sleep(1.0)
        progress.update()


def run_sweep(space: Space, store_path: str | Path, *, jobs: int = 1,
              scheduler: str | None = None, scheduler_timeout: float = 10.0,
              strategy: str = "grid", budget: int | None = None,
              evaluator: Evaluator | None = None, retry_failed: bool = False,
              progress: bool = True, seed: int = 1,
              objective: tuple[str, str] | None = None, synthesizer: str | None = None,
              direct: bool | None = None, calibrator: str | None = None) -> SweepStats:
    """Evaluate the space's points — all of them (``grid``) or an NSGA-II search of
    ``budget`` trials (``nsga2``) — reusing every result already in the store.

    Parameters
    ----------
    jobs : int
        Local worker processes (ignored with ``scheduler``).
    scheduler : str or None
        Address of a Dask distributed scheduler to run on instead.
    evaluator : callable or None
        A picklable top-level function of a task (default
        :func:`rcm_gen.dse.evaluate.evaluate_point`).
    synthesizer : str or None
        ``"module:function"`` replacing :func:`rcm_gen.flows.synth.synthesize`.
    calibrator : str or None
        ``"module:function"`` replacing :func:`rcm_gen.power.tile_model.calibrate` in a
        space with energy on.
    direct : bool or None
        Whether workers commit to the store themselves; by default they do when they run
        on the store's host.

    Raises
    ------
    UserError
        Unreachable scheduler, bad strategy, budget or objective.
    """
    from .evaluate import evaluate_point

    if strategy not in ("grid", "nsga2"):
        raise UserError(f"--strategy must be grid or nsga2, not {strategy!r}")
    if strategy == "nsga2" and len(space.targets) > 1:
        raise UserError(f"--strategy nsga2 needs a space with one target, not "
                        f"{', '.join(space.targets)} (areas are not comparable)")
    if budget is not None and budget < 1:
        raise UserError(f"--budget must be at least 1, not {budget}")
    evaluator = evaluator or evaluate_point
    store_path = Path(store_path)
    started = time.monotonic()
    stats = SweepStats()
    executor = _Executor(jobs, scheduler, scheduler_timeout)  # fails before any output
    interrupted = False
    try:
        store = Store(store_path)
        direct = executor.same_host if direct is None else direct
        try:
            if strategy == "grid":
                tasks = make_tasks(space, store_path, synthesizer=synthesizer,
                                   retry_failed=retry_failed, stats=stats,
                                   calibrator=calibrator)
                for t in tasks:
                    t["direct"] = direct
                stats.tasks = tasks
                stats.points = len(tasks)
                prog = _Progress(stats, progress)
                _evaluate_all(tasks, store, executor, evaluator, stats, prog)
                prog.update(final=True)
            else:
                from .nsga2 import search

                prog = _Progress(stats, progress)
                seen: dict[str, dict[str, Any]] = {}

                def evaluate(combos: list[dict[str, Any]]) -> list[str | None]:
                    keys: list[str | None] = []
                    fresh = []
                    for combo in combos:
                        made = make_tasks(space, store_path, [combo], synthesizer=synthesizer,
                                          retry_failed=retry_failed, stats=stats,
                                          calibrator=calibrator)
                        if not made:
                            keys.append(None)
                            continue
                        task = {**made[0], "direct": direct}
                        keys.append(task["key"])
                        if task["key"] not in seen:
                            seen[task["key"]] = task
                            fresh.append(task)
                    stats.points = len(seen)
                    _evaluate_all(fresh, store, executor, evaluator, stats, prog)
                    return keys

                stats.points = 0
                search(space, store, evaluate, budget or 20, executor.slots, seed=seed,
                       objective=objective)
                stats.tasks = list(seen.values())
                prog.update(final=True)
        finally:
            store.close()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        executor.close(interrupted)
    stats.wall_s = time.monotonic() - started
    return stats
