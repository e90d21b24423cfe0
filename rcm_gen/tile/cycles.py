"""Analytic cycle model of the tile, for one job and for a whole layer.

It follows the hand-over protocol of the gateware (loader → controller → drain, two banks
each) for a host that streams at full rate (every descriptor, activation word and weight
row is offered as soon as the tile can take it, and every result row is taken at once).
The tests assert that it equals the cycles measured in RTL simulation exactly.

Cycle numbers: cycle 0 is the one in which the first job descriptor is accepted; a layer
takes ``total`` cycles when its last result row is accepted in cycle ``total − 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conv import ConvShape
from .config import TileConfig
from .driver import Job, LayerPlan, plan_layer

__all__ = ["JobTiming", "LayerCycles", "job_timings", "layer_cycles", "plan_cycles"]


@dataclass(frozen=True)
class JobTiming:
    """Event cycles of one job (see the module docstring for the origin)."""

    accept: int     # descriptor accepted by the loader
    loaded: int     # loader's ``loaded`` pulse
    start: int      # controller's ``start`` pulse
    release: int    # controller issues the job's last step
    written: int    # last result row written (controller's ``done``)
    drain_start: int
    done: int       # last result row accepted by the host
    steps: int      # compute steps (cycles the controller issues)


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
    """

    total: int
    compute: int
    ideal: int
    macs: int
    lanes: int
    jobs: int
    p: int
    tiling: dict[str, int] = field(default_factory=dict)

    @property
    def utilisation(self) -> float:
        """Useful MAC-lane operations over the available ones, overall."""
        return self.macs / (self.total * self.p * self.lanes)

    @property
    def compute_utilisation(self) -> float:
        """Useful MAC-lane operations over those available in the compute phase."""
        return self.macs / (self.compute * self.p * self.lanes)

    def to_dict(self) -> dict[str, object]:
        return {
            "total": self.total, "compute": self.compute, "ideal": self.ideal,
            "macs": self.macs, "lanes": self.lanes, "jobs": self.jobs,
            "utilisation": self.utilisation, "compute_utilisation": self.compute_utilisation,
            "tiling": dict(self.tiling),
        }


_NEVER = -(10 ** 18)


def _next(prev2: JobTiming | None, prev: JobTiming | None, act_words: int, weight_rows: int,
          steps: int, out_rows: int, lat: int) -> JobTiming:
    """Event cycles of a job after ``prev`` (and ``prev2`` before it)."""
    if prev is None:
        accept = 0
    else:
        # loader idle again, and this job's bank released by job i-2's controller
        accept = max(prev.loaded + 1, prev2.release + 1 if prev2 else _NEVER)
    loaded = accept + max(act_words, weight_rows) + 1
    start = max(loaded + 1, prev.release + 1 if prev else _NEVER,
                prev2.done + 1 if prev2 else _NEVER)
    release = start + steps
    written = release + 1 + lat
    drain_start = max(written + 1, prev.done + 1 if prev else _NEVER)
    done = drain_start + 1 + out_rows
    return JobTiming(accept, loaded, start, release, written, drain_start, done, steps)


def job_timings(plan: LayerPlan, jobs: list[Job] | None = None) -> list[JobTiming]:
    """Event cycles of every job of ``plan`` with a full-rate host."""
    k = plan.shape.k
    lat = plan.config.mac.latency
    jobs = list(plan.jobs()) if jobs is None else jobs
    out: list[JobTiming] = []
    for i, job in enumerate(jobs):
        out.append(_next(out[i - 2] if i >= 2 else None, out[i - 1] if i >= 1 else None,
                         job.act_words, job.weight_rows(k), job.compute_steps(k),
                         job.out_rows, lat))
    return out


# -- the same recurrence over runs of identical jobs ----------------------------------------
#
# The jobs of a layer are nested runs (output-channel blocks of row blocks of column blocks
# of channel blocks), most of them repeats of one shape.  The recurrence is shift-invariant:
# if the two newest timings after a run's block are those before it plus d (in every
# event), every further block of the run adds d again.  So a run is followed block by block
# until that happens, and then advanced in one step: the same numbers as job by job, in
# time independent of the job count.

_State = tuple[JobTiming | None, JobTiming | None]


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
    (act_words, weight_rows, steps, out_rows)."""
    s, t, k2 = plan.shape, plan.tiling, plan.shape.k ** 2
    ms = _rle([-(-min(t.tm, s.m - m0) // plan.config.p) for m0 in range(0, s.m, t.tm)])
    rows = _rle([(tr, in_h) for _, tr, _, in_h, _ in plan.row_blocks()])
    cols = _rle([(tc, in_w) for _, tc, _, in_w, _ in plan.col_blocks()])
    chs = _rle([-(-min(t.channels, s.c - ch0) // plan.lanes)
                for ch0 in range(0, s.c, t.channels)])
    return tuple(
        (tuple(
            (tuple(
                (tuple(((ng * in_h * in_w, mb * ng * k2, mb * tr * tc * ng * k2, mb * tr * tc),
                        nch) for ng, nch in chs), ncol)
                for (tc, in_w), ncol in cols), nrow)
            for (tr, in_h), nrow in rows), nm)
        for mb, nm in ms)


def _shift(t: JobTiming, d: int) -> JobTiming:
    return JobTiming(t.accept + d, t.loaded + d, t.start + d, t.release + d, t.written + d,
                     t.drain_start + d, t.done + d, t.steps)


def _uniform_shift(before: _State, after: _State) -> int | None:
    """``d`` if ``after`` is ``before`` with every event ``d`` cycles later, else None."""
    if before[0] is None or before[1] is None:
        return None
    d = after[1].done - before[1].done
    return d if all(_shift(b, d) == a for b, a in zip(before, after, strict=True)) else None


def _advance(state: _State, node: tuple, lat: int) -> _State:
    if isinstance(node[0], int):  # a job
        return state[1], _next(*state, *node, lat)
    for child, repeats in node:
        done = 0
        while done < repeats:
            new = _advance(state, child, lat)
            done += 1
            d = _uniform_shift(state, new)
            if d is not None and done < repeats:
                rest = repeats - done
                new = (_shift(new[0], d * rest), _shift(new[1], d * rest))
                done = repeats
            state = new
    return state


def _steps(node: tuple) -> int:
    if isinstance(node[0], int):
        return node[2]
    return sum(_steps(child) * repeats for child, repeats in node)


def plan_cycles(plan: LayerPlan) -> LayerCycles:
    """Cycles of a planned layer: the same numbers as ``job_timings``, in time that does not
    grow with the number of jobs where they repeat."""
    cfg, shape = plan.config, plan.shape
    tree = _job_tree(plan)
    last = _advance((None, None), tree, cfg.mac.latency)[1]
    ideal = -(-shape.macs // (cfg.p * plan.lanes))
    t = plan.tiling
    return LayerCycles(
        total=last.done + 1, compute=_steps(tree),
        ideal=ideal, macs=shape.macs, lanes=plan.lanes, jobs=plan.job_count, p=cfg.p,
        tiling={"tm": t.tm, "tr": t.tr, "tc": t.tc, "channels": t.channels})


def layer_cycles(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
                 act_signed: bool = True) -> LayerCycles:
    """Cycles of a layer on ``config``; ``ValueError`` with a one-line reason if the design
    point cannot run it."""
    return plan_cycles(plan_layer(config, shape, act_bits, weight_bits, act_signed))
