"""Host-side driver: cuts a convolution layer into tile jobs, packs their data, and
reassembles the output.

The same plan feeds the cocotb testbench (which streams it into the RTL) and the analytic
cycle model (which predicts the cycles of the same jobs).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..conv import ConvShape
from ..reference import pack_lanes
from .config import TileConfig

__all__ = ["Job", "LayerPlan", "Tiling", "assemble_output", "job_streams", "plan_layer"]


@dataclass(frozen=True)
class Tiling:
    """How a layer is cut: output channels, rows and columns per job, and input channels
    per job (a multiple of the lane count, except for the last job of a channel range)."""

    tm: int
    tr: int
    tc: int
    channels: int


@dataclass(frozen=True)
class Job:
    """One tile job: its descriptor and where its data come from and go to."""

    m0: int        # first output channel
    mcount: int    # output channels (≤ tiling.tm)
    r0: int        # first output row
    c0: int        # first output column
    tr: int
    tc: int
    ch0: int       # first input channel
    chcount: int   # input channels
    ng: int        # words per input pixel (ceil(chcount / lanes))
    mb: int        # P-wide output-channel blocks
    y_lo: int      # first stored input row
    x_lo: int      # first stored input column
    in_h: int
    in_w: int
    pad_top: int
    pad_left: int

    @property
    def act_words(self) -> int:
        return self.ng * self.in_h * self.in_w

    def weight_rows(self, k: int) -> int:
        return self.mb * self.ng * k * k

    @property
    def out_rows(self) -> int:
        return self.mb * self.tr * self.tc

    def compute_steps(self, k: int) -> int:
        return self.mb * self.tr * self.tc * self.ng * k * k

    def descriptor(self, plan: LayerPlan) -> dict[str, int]:
        """Members of the job descriptor (see ``gateware.layouts.job_layout``)."""
        return {
            "mode": plan.lanes.bit_length() - 1, "act_signed": int(plan.act_signed),
            "mb": self.mb, "ng": self.ng, "k": plan.shape.k, "s": plan.shape.stride,
            "tr": self.tr, "tc": self.tc, "in_h": self.in_h, "in_w": self.in_w,
            "pad_top": self.pad_top, "pad_left": self.pad_left,
        }


def _extent_blocks(out_size: int, tile: int, stride: int, k: int, in_size: int,
                   padding: int) -> Iterator[tuple[int, int, int, int, int]]:
    """One axis (rows or columns) cut into blocks of ``tile`` outputs: per block its first
    output, output count, first stored input, stored input count and zero padding before."""
    for o0 in range(0, out_size, tile):
        count = min(tile, out_size - o0)
        v0 = o0 * stride - padding
        v1 = (o0 + count - 1) * stride - padding + k
        lo, hi = max(v0, 0), min(v1, in_size)
        yield o0, count, lo, hi - lo, lo - v0


@dataclass(frozen=True)
class LayerPlan:
    """A layer cut into jobs for one design point, lane mode and signedness."""

    config: TileConfig
    shape: ConvShape
    lanes: int
    act_bits: int
    weight_bits: int
    act_signed: bool
    tiling: Tiling

    def row_blocks(self) -> Iterator[tuple[int, int, int, int, int]]:
        """Output-row blocks in streaming order: (r0, tr, y_lo, in_h, pad_top)."""
        s = self.shape
        return _extent_blocks(s.ho, self.tiling.tr, s.stride, s.k, s.h, s.padding)

    def col_blocks(self) -> Iterator[tuple[int, int, int, int, int]]:
        """Output-column blocks in streaming order: (c0, tc, x_lo, in_w, pad_left)."""
        s = self.shape
        return _extent_blocks(s.wo, self.tiling.tc, s.stride, s.k, s.w, s.padding)

    def jobs(self) -> Iterator[Job]:
        """Jobs in streaming order: output-channel blocks, then output row blocks, then
        column blocks, then input-channel blocks (whose partial sums the host adds)."""
        s, t = self.shape, self.tiling
        n = self.lanes
        cols = list(self.col_blocks())
        for m0 in range(0, s.m, t.tm):
            mcount = min(t.tm, s.m - m0)
            for r0, tr, y_lo, in_h, pad_top in self.row_blocks():
                for c0, tc, x_lo, in_w, pad_left in cols:
                    for ch0 in range(0, s.c, t.channels):
                        chcount = min(t.channels, s.c - ch0)
                        yield Job(m0=m0, mcount=mcount, r0=r0, c0=c0, tr=tr, tc=tc,
                                  ch0=ch0, chcount=chcount, ng=math.ceil(chcount / n),
                                  mb=math.ceil(mcount / self.config.p),
                                  y_lo=y_lo, x_lo=x_lo, in_h=in_h, in_w=in_w,
                                  pad_top=pad_top, pad_left=pad_left)

    @property
    def job_count(self) -> int:
        s, t = self.shape, self.tiling
        return (math.ceil(s.m / t.tm) * math.ceil(s.ho / t.tr) * math.ceil(s.wo / t.tc)
                * math.ceil(s.c / t.channels))


def check_runnable(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
                   act_signed: bool = True) -> int:
    """Lane count for the layer; ``ValueError`` with a one-line reason if the design point
    cannot run it."""
    mac = config.mac
    if shape.k > config.k_max:
        raise ValueError(f"kernel {shape.k} is beyond the tile's k_max={config.k_max}")
    if shape.stride > config.s_max:
        raise ValueError(f"stride {shape.stride} is beyond the tile's s_max={config.s_max}")
    if shape.padding > shape.k - 1:
        raise ValueError(f"padding {shape.padding} must be from 0 to k-1={shape.k - 1}")
    for name, bits in (("activation", act_bits), ("weight", weight_bits)):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= mac.width:
            raise ValueError(f"{name} bits must be from 1 to {mac.width}, not {bits!r}")
    return mac.lanes_for_bits(act_bits, weight_bits)


def _in_extent(out_tile: int, stride: int, k: int, size: int, padding: int) -> int:
    """Input rows (or columns) a job of ``out_tile`` output rows needs, at most."""
    return min((out_tile - 1) * stride + k, size + 2 * padding)


def _fits(config: TileConfig, shape: ConvShape, lanes: int, tm: int, tr: int, tc: int,
          groups: int) -> bool:
    in_h = _in_extent(tr, shape.stride, shape.k, shape.h, shape.padding)
    in_w = _in_extent(tc, shape.stride, shape.k, shape.w, shape.padding)
    mb = math.ceil(tm / config.p)
    return (groups <= config.tn and groups * in_h * in_w <= config.act_buffer_depth
            and mb * groups * shape.k * shape.k <= config.weight_buffer_depth)


def _max_groups(config: TileConfig, shape: ConvShape, lanes: int, tm: int, tr: int,
                tc: int) -> int:
    """Most channel groups (words per pixel) a job of this extent can hold (0: none)."""
    lo, hi = 0, min(config.tn, math.ceil(shape.c / lanes))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(config, shape, lanes, tm, tr, tc, mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _blocks(total: int, size: int, unit: int) -> int:
    """Sum over the blocks of ``total`` cut into ``size`` of ceil(block / unit)."""
    full, rest = divmod(total, size)
    return full * math.ceil(size / unit) + (math.ceil(rest / unit) if rest else 0)


def _estimate(config: TileConfig, shape: ConvShape, lanes: int, tm: int, tr: int, tc: int,
              groups: int) -> int:
    """Cycles of a tiling, estimated: the exact compute steps of all jobs, plus for every
    job what a full-size job spends beyond its compute (its load or drain when longer, and
    the hand-over cycle), plus the first job's load."""
    k2 = shape.k * shape.k
    groups_total = math.ceil(shape.c / lanes)
    n_ch = math.ceil(groups_total / groups)
    groups = math.ceil(groups_total / n_ch)   # spread evenly, as plan_layer does
    channels = min(groups * lanes, shape.c)
    jobs = (math.ceil(shape.m / tm) * math.ceil(shape.ho / tr) * math.ceil(shape.wo / tc)
            * n_ch)
    compute = (_blocks(shape.m, tm, config.p) * shape.ho * shape.wo
               * _blocks(shape.c, channels, lanes) * k2)
    mb = math.ceil(tm / config.p)
    in_h = _in_extent(tr, shape.stride, shape.k, shape.h, shape.padding)
    in_w = _in_extent(tc, shape.stride, shape.k, shape.w, shape.padding)
    steps = mb * tr * tc * groups * k2
    load = max(groups * in_h * in_w, mb * groups * k2)
    per_job = max(steps + 1, load + 2, mb * tr * tc + 2) - steps
    return compute + jobs * per_job + load


def choose_tiling(config: TileConfig, shape: ConvShape, lanes: int) -> Tiling:
    """The tiling of ``shape`` onto ``config``: of all output-row and -column extents up
    to the tile's (and output channels in steps of P), each with as many input channels
    per job as the buffers hold, the one with the fewest estimated cycles (ties: the
    larger job)."""
    best: tuple[int, int, Tiling] | None = None
    tm_options = range(min(config.tm, shape.m), 0, -config.p)
    for i, tm in enumerate(list(tm_options) or [min(config.tm, shape.m)]):
        if i >= 2 and best is not None:  # the two widest that fit, or narrower until one does
            break
        for tr in range(min(config.tr, shape.ho), 0, -1):
            for tc in range(min(config.tc, shape.wo), 0, -1):
                groups = _max_groups(config, shape, lanes, tm, tr, tc)
                if not groups:
                    continue
                n_ch = math.ceil(math.ceil(shape.c / lanes) / groups)
                spread = math.ceil(math.ceil(shape.c / lanes) / n_ch)
                tiling = Tiling(tm=tm, tr=tr, tc=tc, channels=min(spread * lanes, shape.c))
                key = (_estimate(config, shape, lanes, tm, tr, tc, groups),
                       -(tm * tr * tc * spread))
                if best is None or key < best[:2]:
                    best = (*key, tiling)
    if best is None:  # buffers hold at least one k_max x k_max kernel of one channel group
        raise AssertionError("no job of one output pixel fits the buffers")
    return best[2]


def plan_layer(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
               act_signed: bool = True, tiling: Tiling | None = None) -> LayerPlan:
    """Cut a layer into jobs; ``ValueError`` with a reason if the design point cannot run
    it."""
    lanes = check_runnable(config, shape, act_bits, weight_bits, act_signed)
    if tiling is None:
        tiling = choose_tiling(config, shape, lanes)
    return LayerPlan(config, shape, lanes, act_bits, weight_bits, act_signed, tiling)


# -- data -----------------------------------------------------------------------------------


def job_streams(plan: LayerPlan, job: Job, x: np.ndarray, w: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Activation words (``[g][row][col]``) and weight rows (``[mb][g][ky][kx]``, each an
    array of P words) of ``job``, as unsigned integers."""
    cfg, s, n = plan.config, plan.shape, plan.lanes
    width = cfg.mac.width
    # Activations: (ng·N, in_h, in_w) channels padded with zeros to whole words.
    region = np.zeros((job.ng * n, job.in_h, job.in_w), dtype=np.int64)
    region[:job.chcount] = x[job.ch0:job.ch0 + job.chcount,
                             job.y_lo:job.y_lo + job.in_h, job.x_lo:job.x_lo + job.in_w]
    lanes_last = region.reshape(job.ng, n, job.in_h, job.in_w).transpose(0, 2, 3, 1)
    act_words = pack_lanes(lanes_last, width, plan.act_signed).reshape(-1)
    # Weights: (mb·P, ng·N, k, k) with zeros beyond the job's channels.
    k = s.k
    wt = np.zeros((job.mb * cfg.p, job.ng * n, k, k), dtype=np.int64)
    wt[:job.mcount, :job.chcount] = w[job.m0:job.m0 + job.mcount, job.ch0:job.ch0 + job.chcount]
    # → [mb][g][ky][kx][p][lane]
    wt = wt.reshape(job.mb, cfg.p, job.ng, n, k, k).transpose(0, 2, 4, 5, 1, 3)
    weight_words = pack_lanes(wt, width, True).reshape(-1, cfg.p)
    return act_words, weight_words


def assemble_output(plan: LayerPlan, results: list[np.ndarray]) -> np.ndarray:
    """The layer's output (int64, M × Ho × Wo) from each job's result rows (array of
    shape (out_rows, P), signed), adding partial sums over input-channel jobs."""
    s, p = plan.shape, plan.config.p
    y = np.zeros((s.m, s.ho, s.wo), dtype=np.int64)
    for job, rows in zip(plan.jobs(), results, strict=True):
        blk = np.asarray(rows, dtype=np.int64).reshape(job.mb, job.tr, job.tc, p)
        blk = blk.transpose(0, 3, 1, 2).reshape(job.mb * p, job.tr, job.tc)
        y[job.m0:job.m0 + job.mcount, job.r0:job.r0 + job.tr, job.c0:job.c0 + job.tc] += (
            blk[:job.mcount])
    return y


def check_operands(x: np.ndarray, w: np.ndarray, act_bits: int, weight_bits: int,
                   act_signed: bool) -> None:
    """``ValueError`` naming the tensor, index and value of the first operand outside its
    declared bits."""
    from ..reference import check_fits

    check_fits("input", x, act_bits, act_signed)
    check_fits("weights", w, weight_bits, True)
