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
from dataclasses import dataclass, field, replace

from ..conv import ConvShape
from ..gateware.ppu import PostProcessor
from .config import TileConfig
from .driver import Job, LayerPlan, PostProcess, plan_layer

__all__ = ["JobTiming", "LayerCycles", "drain_cycles", "job_timings", "layer_cycles",
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
        return replace(self, accept=self.accept + d, loaded=self.loaded + d,
                       start=self.start + d, release=self.release + d,
                       written=self.written + d,
                       drain_start=None if self.drain_start is None else self.drain_start + d,
                       done=None if self.done is None else self.done + d)


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
    p: int
    tiling: dict[str, int] = field(default_factory=dict)
    traffic: dict[str, int] = field(default_factory=dict)

    @property
    def utilisation(self) -> float:
        """Useful MAC-lane operations over the available ones, overall."""
        return self.macs / (self.total * self.p * self.lanes)

    @property
    def compute_utilisation(self) -> float:
        """Useful MAC-lane operations over those available in the compute phase."""
        return self.macs / (self.compute * self.p * self.lanes)

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
    cycle (``p / ppu_lanes`` chunks a post-processed row, one a raw row), the memory read,
    the post-processing pipeline and the output register."""
    if raw:
        return rows + 2
    return rows * config.ppu_chunks + 2 + PostProcessor.LATENCY


@dataclass(frozen=True)
class _State:
    """What the next job's timing depends on: the two jobs before it (input banks), and
    the drains of the two output blocks before its block (output banks)."""

    prev2: JobTiming | None = None
    prev: JobTiming | None = None
    done2: int | None = None   # drain of the block before the last drained one
    done1: int | None = None   # drain of the last drained block

    def shifted(self, d: int) -> _State:
        return _State(None if self.prev2 is None else self.prev2.shifted(d),
                      None if self.prev is None else self.prev.shifted(d),
                      None if self.done2 is None else self.done2 + d,
                      None if self.done1 is None else self.done1 + d)


def _next(state: _State, act_words: int, weight_rows: int, par_rows: int, steps: int,
          out_rows: int, first: bool, last: bool, lat: int, drain: int) -> _State:
    """The state after one more job (its timing becomes ``prev``)."""
    prev, prev2 = state.prev, state.prev2
    if prev is None:
        accept = 0
    else:
        # loader idle again, and this job's bank released by job i-2's controller
        accept = max(prev.loaded + 1, prev2.release + 1 if prev2 else _NEVER)
    loaded = accept + max(act_words, weight_rows, par_rows) + 1
    start = max(loaded + 1, prev.release + 1 if prev else _NEVER)
    if first and state.done2 is not None:  # its output bank freed by block k-2's drain
        start = max(start, state.done2 + 1)
    release = start + steps
    written = release + 1 + lat
    drain_start = done = None
    done2, done1 = state.done2, state.done1
    if last:
        drain_start = max(written + 1, done1 + 1 if done1 is not None else _NEVER)
        done = drain_start + drain
        done2, done1 = done1, done
    timing = JobTiming(accept, loaded, start, release, written, drain_start, done, steps)
    return _State(prev, timing, done2, done1)


def _job_leaf(plan: LayerPlan, job: Job) -> tuple:
    k = plan.shape.k
    return (job.act_words, job.weight_rows(k), job.mb if plan.job_params(job) else 0,
            job.compute_steps(k), job.out_rows, job.first, job.last)


def job_timings(plan: LayerPlan, jobs: list[Job] | None = None) -> list[JobTiming]:
    """Event cycles of every job of ``plan`` with a full-rate host."""
    cfg = plan.config
    lat = cfg.mac.latency
    jobs = list(plan.jobs()) if jobs is None else jobs
    state = _State()
    out: list[JobTiming] = []
    for job in jobs:
        leaf = _job_leaf(plan, job)
        state = _next(state, *leaf, lat, drain_cycles(cfg, leaf[4], plan.raw))
        out.append(state.prev)
    return out


# -- the same recurrence over runs of identical jobs ----------------------------------------
#
# The jobs of a layer are nested runs (output-channel blocks of row blocks of column blocks
# of channel blocks), most of them repeats of one shape.  The recurrence is shift-invariant:
# if the state after a run's block is the state before it plus d (in every event), every
# further block of the run adds d again.  So a run is followed block by block until that
# happens, and then advanced in one step: the same numbers as job by job, in time
# independent of the job count.


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
    (act_words, weight_rows, par_rows, steps, out_rows, first, last)."""
    k2, p, n = plan.shape.k ** 2, plan.config.p, plan.lanes
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
            out.append((ng * in_h * in_w, mb * ng * k2, mb if par else 0,
                        mb * tr * tc * ng * k2, mb * tr * tc if last else 0, first, last))
        return _rle(out)

    return tuple(
        (tuple(
            (tuple((leaves(mb, ngs, tr, in_h, tc, in_w), ncol) for (tc, in_w), ncol in cols),
             nrow)
            for (tr, in_h), nrow in rows), nm)
        for (mb, ngs), nm in blocks)


def _uniform_shift(before: _State, after: _State) -> int | None:
    """``d`` if ``after`` is ``before`` with every event ``d`` cycles later, else None."""
    if before.prev is None or before.prev2 is None or after.prev is None:
        return None
    d = after.prev.release - before.prev.release
    return d if before.shifted(d) == after else None


def _advance(state: _State, node: tuple, plan: LayerPlan) -> _State:
    if isinstance(node[0], int):  # a job
        cfg = plan.config
        return _next(state, *node, cfg.mac.latency,
                     drain_cycles(cfg, node[4], plan.raw))
    for child, repeats in node:
        done = 0
        while done < repeats:
            new = _advance(state, child, plan)
            done += 1
            d = _uniform_shift(state, new)
            if d is not None and done < repeats:
                new = new.shifted(d * (repeats - done))
                done = repeats
            state = new
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
    w = cfg.mac.width
    bits = {
        "descriptor": jobs * job_layout(cfg).size,
        "activations": _sum(tree, 0) * w,
        "weights": _sum(tree, 1) * cfg.p * w,
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
    last = _advance(_State(), tree, plan).prev
    ideal = -(-shape.macs // (cfg.p * plan.lanes))
    t = plan.tiling
    return LayerCycles(
        total=last.done + 1, compute=_sum(tree, 3),
        ideal=ideal, macs=shape.macs, lanes=plan.lanes, jobs=_count(tree), p=cfg.p,
        tiling={"tm": t.tm, "tr": t.tr, "tc": t.tc, "channels": t.channels},
        traffic=plan_traffic(plan, tree))


def layer_cycles(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
                 act_signed: bool = True, post: PostProcess | None = None) -> LayerCycles:
    """Cycles of a layer on ``config``; ``ValueError`` with a one-line reason if the design
    point cannot run it."""
    return plan_cycles(plan_layer(config, shape, act_bits, weight_bits, act_signed,
                                  post=post))
