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

from .conv import ConvShape
from .driver import Job, LayerPlan, plan_layer
from .tile_config import TileConfig

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


def job_timings(plan: LayerPlan, jobs: list[Job] | None = None) -> list[JobTiming]:
    """Event cycles of every job of ``plan`` with a full-rate host."""
    cfg = plan.config
    k = plan.shape.k
    lat = cfg.mac.latency
    jobs = list(plan.jobs()) if jobs is None else jobs
    out: list[JobTiming] = []
    never = -(10 ** 18)
    for i, job in enumerate(jobs):
        prev = out[i - 1] if i >= 1 else None
        prev2 = out[i - 2] if i >= 2 else None
        if prev is None:
            accept = 0
        else:
            # loader idle again, and this job's bank released by job i-2's controller
            accept = max(prev.loaded + 1, prev2.release + 1 if prev2 else never)
        loaded = accept + max(job.act_words, job.weight_rows(k)) + 1
        start = max(loaded + 1, prev.release + 1 if prev else never,
                    prev2.done + 1 if prev2 else never)
        steps = job.compute_steps(k)
        release = start + steps
        written = release + 1 + lat
        drain_start = max(written + 1, prev.done + 1 if prev else never)
        done = drain_start + 1 + job.out_rows
        out.append(JobTiming(accept, loaded, start, release, written, drain_start, done,
                             steps))
    return out


def plan_cycles(plan: LayerPlan) -> LayerCycles:
    """Cycles of a planned layer."""
    timings = job_timings(plan)
    cfg, shape = plan.config, plan.shape
    ideal = -(-shape.macs // (cfg.p * plan.lanes))
    t = plan.tiling
    return LayerCycles(
        total=timings[-1].done + 1,
        compute=sum(j.steps for j in timings),
        ideal=ideal, macs=shape.macs, lanes=plan.lanes, jobs=len(timings), p=cfg.p,
        tiling={"tm": t.tm, "tr": t.tr, "tc": t.tc, "channels": t.channels})


def layer_cycles(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
                 act_signed: bool = True) -> LayerCycles:
    """Cycles of a layer on ``config``; ``ValueError`` with a one-line reason if the design
    point cannot run it."""
    return plan_cycles(plan_layer(config, shape, act_bits, weight_bits, act_signed))
