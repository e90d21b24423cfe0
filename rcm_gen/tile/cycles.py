"""Analytic cycle model of the tile, for one job and for a whole layer.

It follows the hand-over protocol of the gateware (loader → controller → drain; two input
banks, two output banks) for a host that streams at full rate (every descriptor,
activation word, weight row and parameter row is offered as soon as the tile can take it,
and every result row is taken at once).  The tests assert that it equals the cycles
measured in RTL simulation exactly.

Cycle numbers: cycle 0 is the one in which the first job descriptor is accepted; a layer
takes ``total`` cycles when its last result row is accepted in cycle ``total − 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..gateware.controller import release_delay, step_latency
from ..gateware.ppu import PostProcessor
from .config import TileConfig
from .plan import Job, LayerPlan

__all__ = ["JobTiming", "LayerCycles", "drain_cycles", "job_timings",
           "plan_cycles", "plan_traffic"]


@dataclass(frozen=True)
class JobTiming:
    """Event cycles of one job (see the module docstring for the origin).  Jobs that do
    not complete their output block send nothing: their drain events are ``None``."""

    accept: int     # descriptor accepted by the loader
    loaded: int     # loader's ``loaded`` pulse
    start: int      # controller's ``start`` pulse
    release: int    # controller issues the job's last step
    written: int    # last result row written (controller's ``done``)
    drain_start: int | None
    done: int | None  # last result row accepted by the host
    steps: int      # compute steps (cycles the controller issues)

    def shifted(self, d: int) -> JobTiming:
        return JobTiming(self.accept + d, self.loaded + d, self.start + d, self.release + d,
                         self.written + d,
                         None if self.drain_start is None else self.drain_start + d,
                         None if self.done is None else self.done + d, self.steps)


@dataclass(frozen=True)
class LayerCycles:
    """Cycles of a layer on a design point.

    Members
    -------
    total : int
        Cycles from the first job accepted to the last result accepted (full-rate host).
    compute : int
        Cycles in which the controller issued a MAC step (the compute phase).
    ideal : int
        MACs / (P·N): cycles if every MAC lane did useful work every cycle.
    macs : int
        Multiply-accumulates of the layer.
    lanes : int
        Lane count N the layer runs at.
    jobs : int
        Tile jobs.
    mac_count : int
        MACs of the array (P·Q).
    traffic : dict
        Bytes moved into the tile (``descriptor``, ``activations``, ``weights``,
        ``params``) and out of it (``outputs``), with ``in`` and ``out`` totals.
    """

    total: int
    compute: int
    ideal: int
    macs: int
    lanes: int
    jobs: int
    mac_count: int
    tiling: dict[str, int] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)

    @property
    def utilisation(self) -> float:
        """Useful MAC-lane operations over the available ones, overall."""
        return self.macs / (self.total * self.mac_count * self.lanes)

    @property
    def compute_utilisation(self) -> float:
        """Useful MAC-lane operations over those available in the compute phase."""
        return self.macs / (self.compute * self.mac_count * self.lanes)

    @property
    def bytes_total(self) -> int:
        return self.traffic.get("in", 0) + self.traffic.get("out", 0)

    def latency(self, bandwidth: float | None) -> tuple[int, str]:
        """Cycles with off-chip traffic at ``bandwidth`` bytes per cycle overlapped with
        compute (double buffering): the larger of the two, and which one binds."""
        if not bandwidth:
            return self.total, "compute"
        transfer_cycles = math.ceil(self.bytes_total / bandwidth)
        if transfer_cycles > self.total:
            return transfer_cycles, "memory"
        return self.total, "compute"

    def to_dict(self) -> dict[str, object]:
        return {
            "total": self.total, "compute": self.compute, "ideal": self.ideal,
            "macs": self.macs, "lanes": self.lanes, "jobs": self.jobs,
            "utilisation": self.utilisation, "compute_utilisation": self.compute_utilisation,
            "tiling": dict(self.tiling), "traffic": dict(self.traffic),
        }


_NEVER = -(10 ** 18)


def drain_cycles(config: TileConfig, rows: int, raw: bool) -> int:
    """Cycles from the drain's start to the last row accepted: one chunk of a row per
    cycle (``p / ppu_lanes`` chunks a post-processed row, one a raw row), the memory read
    (and with ``column_stage`` the drain's row register), the post-processing pipeline
    and the output register."""
    stage = 1 if config.column_stage else 0
    if raw:
        return rows + 2 + stage
    return rows * config.ppu_chunks + 2 + stage + PostProcessor.LATENCY


#: What the next job's timing depends on: the ``loaded`` and ``release`` events of the
#: job before it, ``release`` of the one before that (input banks), and the ``done`` of
#: the last two drained output blocks (output banks); ``None`` where there is none yet.
_State = tuple[int | None, int | None, int | None, int | None, int | None]
_START: _State = (None, None, None, None, None)


def _events(state: _State, act_words: int, weight_rows: int, par_rows: int, steps: int,
            out_rows: int, first: bool, last: bool, lat: int, free: int, drain: int
            ) -> tuple[JobTiming, _State]:
    """One more job: its event cycles, and the state after it (``free``: cycles from a
    job's last step to its input bank's release)."""
    loaded1, release1, release2, done2, done1 = state
    if loaded1 is None:
        accept = 0
    else:
        # loader idle again, and this job's bank released by job i-2's controller
        accept = max(loaded1 + 1, release2 + free + 1 if release2 is not None else _NEVER)
    loaded = accept + max(act_words, weight_rows, par_rows) + 1
    start = max(loaded + 1, release1 + 1 if release1 is not None else _NEVER)
    if first and done2 is not None:  # its output bank freed by block k-2's drain
        start = max(start, done2 + 1)
    release = start + steps
    written = release + 1 + lat
    drain_start = done = None
    if last:
        drain_start = max(written + 1, done1 + 1 if done1 is not None else _NEVER)
        done = drain_start + drain
        done2, done1 = done1, done
    timing = JobTiming(accept, loaded, start, release, written, drain_start, done, steps)
    return timing, (loaded, release, release1, done2, done1)


def _shifted(state: _State, d: int) -> _State:
    return tuple(None if v is None else v + d for v in state)  # type: ignore[return-value]


def _job_leaf(plan: LayerPlan, job: Job) -> tuple:
    k = plan.shape.k
    return (job.act_beats(plan.config.act_beat), job.weight_rows(k),
            job.mb if plan.job_params(job) else 0,
            job.compute_steps(k, plan.config.q), job.out_rows, job.first,
            job.last)


def job_timings(plan: LayerPlan, jobs: list[Job] | None = None) -> list[JobTiming]:
    """Event cycles of every job of ``plan`` with a full-rate host."""
    cfg = plan.config
    lat, free = step_latency(cfg), release_delay(cfg)
    jobs = list(plan.jobs()) if jobs is None else jobs
    state = _START
    out: list[JobTiming] = []
    for job in jobs:
        leaf = _job_leaf(plan, job)
        timing, state = _events(state, *leaf, lat, free,
                                drain_cycles(cfg, leaf[4], plan.raw))
        out.append(timing)
    return out


# -- the same recurrence over runs of identical jobs ----------------------------------------
#
# The jobs of a layer are nested runs (output-channel blocks of row blocks of column blocks
# of channel blocks), most of them repeats of one shape.  The recurrence is shift-invariant:
# if the state after q more blocks of a run is the state before them plus d (in every
# event), every further q blocks add d again.  So a run is followed block by block until
# that happens (q = 1, or 2 where the two banks alternate), and then advanced in one step:
# the same numbers as job by job, in time independent of the job count.


def _rle(items: list) -> tuple:
    out: list[list] = []
    for item in items:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return tuple((item, count) for item, count in out)


def _job_tree(plan: LayerPlan) -> tuple:
    """The plan's jobs as nested runs ((child, repeats), ...); a leaf is a job's
    (act_beats, weight_rows, par_rows, steps, out_rows, first, last)."""
    k2, p, n = plan.shape.k ** 2, plan.config.p, plan.lanes
    q, beat = plan.config.q, plan.config.act_beat
    first_params = plan.post is not None
    last_params = first_params and not plan.raw
    rows = _rle([(tr, in_h) for _, tr, _, in_h, _ in plan.row_blocks()])
    cols = _rle([(tc, in_w) for _, tc, _, in_w, _ in plan.col_blocks()])
    blocks = _rle([(-(-mc // p), tuple(-(-cc // n) for _, cc in plan.channel_blocks(m0, mc)))
                   for m0, mc in plan.m_blocks()])

    def leaves(mb, ngs, tr, in_h, tc, in_w):
        out = []
        for i, ng in enumerate(ngs):
            first, last = i == 0, i == len(ngs) - 1
            par = first_params and first or last_params and last
            out.append((ng * in_h * -(-in_w // beat), mb * ng * k2, mb if par else 0,
                        mb * -(-tr * tc // q) * ng * k2, mb * tr * tc if last else 0,
                        first, last))
        return _rle(out)

    return tuple(
        (tuple(
            (tuple((leaves(mb, ngs, tr, in_h, tc, in_w), ncol) for (tc, in_w), ncol in cols),
             nrow)
            for (tr, in_h), nrow in rows), nm)
        for (mb, ngs), nm in blocks)


def _uniform_shift(before: _State, after: _State) -> int | None:
    """``d`` if ``after`` is ``before`` with every event ``d`` cycles later, else None."""
    if before[1] is None or after[1] is None:
        return None
    d = after[1] - before[1]
    for a, b in zip(before, after, strict=True):
        if (a is None) != (b is None) or (a is not None and a + d != b):
            return None
    return d


#: Periods (in blocks of a run) whose shift invariance is looked for.
_PERIODS = (1, 2)


def _advance(state: _State, node: tuple, plan: LayerPlan, lat: int, free: int,
             memo: dict[tuple[int, _State], _State]) -> _State:
    """The state after the jobs of ``node``.  Shift invariance again: the result for a
    state is the result for that state moved to a fixed origin, moved back; ``memo`` keeps
    the results per node and origin-relative state."""
    if isinstance(node[0], int):  # a job
        drain = drain_cycles(plan.config, node[4], plan.raw)
        return _events(state, *node, lat, free, drain)[1]
    origin = state[1] or 0
    key = (id(node), _shifted(state, -origin))
    if key in memo:
        return _shifted(memo[key], origin)
    start = state
    for child, repeats in node:
        history = [state]
        done = 0
        while done < repeats:
            state = _advance(state, child, plan, lat, free, memo)
            done += 1
            history.append(state)
            for q in _PERIODS:
                if len(history) <= q or done >= repeats:
                    continue
                d = _uniform_shift(history[-1 - q], state)
                if d is not None:
                    jumps = (repeats - done) // q
                    state = _shifted(state, d * jumps)
                    done += jumps * q
                    history = [state]
                    break
    memo[(id(node), _shifted(start, -origin))] = _shifted(state, -origin)
    return state


def _sum(node: tuple, index: int) -> int:
    if isinstance(node[0], int):
        return node[index]
    return sum(_sum(child, index) * repeats for child, repeats in node)


def plan_traffic(plan: LayerPlan, tree: tuple | None = None) -> dict[str, int]:
    """Bytes the plan moves into and out of the tile, by stream, with totals."""
    from ..gateware.layouts import job_layout

    cfg = plan.config
    tree = _job_tree(plan) if tree is None else tree
    jobs = _count(tree)
    bits = {
        "descriptor": jobs * job_layout(cfg).size,
        "activations": _sum(tree, 0) * cfg.act_beat * cfg.act_word_bits,
        "weights": _sum(tree, 1) * cfg.p * cfg.weight_word_bits,
        "params": _sum(tree, 2) * cfg.p * cfg.param_bits,
        "outputs": _sum(tree, 4) * plan.out_row_bits(),
    }
    out = {name: -(-b // 8) for name, b in bits.items()}
    out["in"] = sum(out[n] for n in ("descriptor", "activations", "weights", "params"))
    out["out"] = out["outputs"]
    return out


def _count(node: tuple) -> int:
    if isinstance(node[0], int):
        return 1
    return sum(_count(child) * repeats for child, repeats in node)


def plan_cycles(plan: LayerPlan) -> LayerCycles:
    """Cycles of a planned layer: the same numbers as ``job_timings``, in time that does not
    grow with the number of jobs where they repeat."""
    cfg, shape = plan.config, plan.shape
    tree = _job_tree(plan)
    last_done = _advance(_START, tree, plan, step_latency(cfg), release_delay(cfg), {})[4]
    ideal = -(-shape.macs // (cfg.macs * plan.lanes))
    t = plan.tiling
    return LayerCycles(
        total=last_done + 1, compute=_sum(tree, 3),
        ideal=ideal, macs=shape.macs, lanes=plan.lanes, jobs=_count(tree), mac_count=cfg.macs,
        tiling={"tm": t.tm, "tr": t.tr, "tc": t.tc, "channels": t.channels,
                "im2col": int(plan.im2col is not None)},
        traffic=plan_traffic(plan, tree))
