"""Host-side driver: cuts a convolution layer into tile jobs, packs their data, and
reassembles the output.

The same plan feeds the cocotb testbench (which streams it into the RTL), the bit-exact
model of the tile and the analytic cycle model (which predicts the cycles of the same
jobs).

A layer is cut into *output blocks* (``tm`` output channels × ``tr`` × ``tc`` output
pixels) and each block into jobs over its input channels; the jobs of a block accumulate
in the tile, and only the last one's results leave it.  Grouped convolutions (depthwise
included) run as jobs whose input channels are those of the block's groups, with the
weights of other groups' channels zero.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ..config import value_range
from ..conv import ConvShape
from ..reference import pack_words
from .config import TileConfig
from .cycles import LayerCycles, plan_cycles
from .plan import Job, LayerPlan, PostProcess, Tiling, _span, fold_input_zero_point

__all__ = [
    "Job",
    "LayerPlan",
    "PostProcess",
    "Tiling",
    "assemble_output",
    "check_runnable",
    "choose_tiling",
    "decode_rows",
    "fold_input_zero_point",
    "im2col_region",
    "im2col_shape",
    "job_streams",
    "job_weights",
    "layer_cycles",
    "plan_layer",
]


def check_runnable(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
                   act_signed: bool = True) -> int:
    """Lane count for the layer; ``ValueError`` with a one-line reason if the design point
    cannot run it."""
    mac = config.mac
    if shape.k > config.k_max:
        raise ValueError(f"kernel {shape.k} is beyond the tile's k_max={config.k_max}")
    if shape.stride > config.s_max:
        raise ValueError(f"stride {shape.stride} is beyond the tile's s_max={config.s_max}")
    if shape.pads is None and shape.padding > shape.k - 1:
        raise ValueError(f"padding {shape.padding} must be from 0 to k-1={shape.k - 1}")
    for side in ("top", "bottom", "left", "right"):
        pad = getattr(shape, f"pad_{side}")
        if pad > shape.k - 1:
            raise ValueError(f"padding {pad} ({side}) must be from 0 to k-1={shape.k - 1}")
    for name, bits in (("activation", act_bits), ("weight", weight_bits)):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= mac.width:
            raise ValueError(f"{name} bits must be from 1 to {mac.width}, not {bits!r}")
    lanes = (mac.mode_for_bits(act_bits, weight_bits).products if mac.is_fused
             else mac.lanes_for_bits(act_bits, weight_bits))
    _check_reduction(config, math.ceil(shape.group_in / lanes) * shape.k ** 2)
    return lanes


def _check_reduction(config: TileConfig, steps: int) -> None:
    if steps > config.max_reduction:
        raise ValueError(f"a reduction of {steps} steps per output is beyond the tile's "
                         f"max_reduction={config.max_reduction}")


def _in_extent(out_tile: int, stride: int, k: int, size: int, pads: int) -> int:
    """Input rows (or columns) a job of ``out_tile`` output rows needs, at most."""
    return min((out_tile - 1) * stride + k, size + pads)


def _fits(config: TileConfig, shape: ConvShape, tm: int, tr: int, tc: int,
          groups: int) -> bool:
    in_h = _in_extent(tr, shape.stride, shape.k, shape.h, shape.pad_top + shape.pad_bottom)
    in_w = _in_extent(tc, shape.stride, shape.k, shape.w, shape.pad_left + shape.pad_right)
    mb = math.ceil(tm / config.p)
    by, bx = config.act_banks_yx
    return (groups <= config.tn
            and groups * -(-in_h // by) * -(-in_w // bx) <= config.act_buffer_depth
            and mb * groups * shape.k * shape.k <= config.weight_buffer_depth)


def _max_groups(config: TileConfig, shape: ConvShape, tm: int, tr: int, tc: int,
                span_words: int) -> int:
    """Most channel groups (words per pixel) a job of this extent can hold (0: none)."""
    lo, hi = 0, min(config.tn, span_words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(config, shape, tm, tr, tc, mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _extents(tile: int, size: int, patch: int) -> list[int]:
    """Output rows (or columns) per job to try: multiples of the array's patch up to the
    tile's, and the layer's own extent when it is smaller."""
    top = min(tile, size)
    return sorted({top, *range(patch, top + 1, patch)}, reverse=True)


def _span_size(shape: ConvShape, tm: int) -> int:
    """Input channels of the largest block of ``tm`` output channels."""
    return max(hi - lo for lo, hi in (_span(shape, m0, min(tm, shape.m - m0))
                                      for m0 in range(0, shape.m, tm)))


def _tm_options(config: TileConfig, shape: ConvShape) -> list[int]:
    """Output channels per block to try: multiples of P up to ``tm`` (and the layer's
    channel count); for grouped layers only those whose blocks align with the groups
    (a group's channel count and its divisors included)."""
    top = min(config.tm, shape.m)
    options = sorted({*range(config.p, top + 1, config.p), top}, reverse=True)
    if shape.groups > 1:
        mg = shape.group_out
        divisors = {t for t in range(1, min(top, mg) + 1) if mg % t == 0}
        options = sorted({t for t in options if t % mg == 0 or mg % t == 0} | {max(divisors)},
                         reverse=True)
    return options


def _smaller_tm_options(config: TileConfig, shape: ConvShape, tried: list[int]) -> list[int]:
    """Fewer output channels per block than P (or than a group holds), for layers whose
    kernels are so large that P of them do not fit the weight buffer at once."""
    top = min(config.tm, shape.m)
    mg = shape.group_out if shape.groups > 1 else None
    return [t for t in range(top, 0, -1) if t not in tried
            and (mg is None or t % mg == 0 or mg % t == 0)]


def choose_tiling(config: TileConfig, shape: ConvShape, lanes: int,
                  post: PostProcess | None = None, bandwidth: float | None = None) -> Tiling:
    """The tiling of ``shape`` onto ``config`` with the fewest cycles, by the exact cycle
    model (with off-chip traffic at ``bandwidth`` bytes per cycle overlapped, where it is
    given: the larger of compute and transfer cycles): every output-channel, row and
    column extent up to the tile's (in whole pixel patches, or the layer's extent where it
    is smaller) whose pixel groups read distinct activation banks, each with as many input
    channels per job as the buffers hold, spread evenly over the block's jobs (ties: fewer
    compute cycles, then the larger job).  (Cycles depend on whether sums are
    post-processed, not on the parameters' values, so the choice is remembered per layer
    shape.)"""
    return _choose_tiling(config, shape, lanes, _post_mode(post), bandwidth)


def _post_mode(post: PostProcess | None) -> str:
    """What the cycles depend on of the post-processing."""
    return "none" if post is None else ("requantize" if post.requantize else "bias")


def _timing_post(shape: ConvShape, mode: str) -> PostProcess | None:
    """Post-processing of ``mode`` for timing (its values do not matter)."""
    if mode == "none":
        return None
    return dataclasses.replace(PostProcess.for_timing(shape.m, 1),
                               requantize=mode == "requantize")


@functools.lru_cache(maxsize=4096)
def _choose_tiling(config: TileConfig, shape: ConvShape, lanes: int, mode: str,
                   bandwidth: float | None = None) -> Tiling:

    post = _timing_post(shape, mode)

    def reduction(tm: int) -> int:  # accumulation length of a block of tm channels
        return math.ceil(_span_size(shape, tm) / lanes) * shape.k ** 2

    preferred = _tm_options(config, shape)
    if all(reduction(tm) > config.max_reduction for tm in preferred):
        _check_reduction(config, reduction(preferred[-1]))
    # job extents whose pixel groups read distinct banks (a single row or column where
    # none of the larger ones does; one pixel always does)
    def distinct(tr: int, tc: int) -> bool:
        return _reads_distinct_banks(config, shape, tr, tc)

    extents = [(tr, tc) for tr in _extents(config.tr, shape.ho, config.qr)
               for tc in _extents(config.tc, shape.wo, config.qc) if distinct(tr, tc)]
    if not extents:
        extents = [(tr, tc) for tr in range(min(config.tr, shape.ho), 0, -1)
                   for tc in range(min(config.tc, shape.wo), 0, -1)
                   if 1 in (tr, tc) and distinct(tr, tc)]
    best: tuple[tuple[int, int, int], Tiling] | None = None
    # blocks of fewer output channels only when none of the preferred ones fits
    for options in (preferred, _smaller_tm_options(config, shape, preferred)):
        for tm in options:
            if reduction(tm) > config.max_reduction:
                continue
            lo, hi = _span(shape, 0, tm)
            span_words = math.ceil((hi - lo) / lanes)
            for tr, tc in extents:
                groups = _max_groups(config, shape, tm, tr, tc, span_words)
                if not groups:
                    continue
                n_ch = math.ceil(span_words / groups)
                spread = math.ceil(span_words / n_ch)
                tiling = Tiling(tm=tm, tr=tr, tc=tc, channels=min(spread * lanes, hi - lo))
                plan = LayerPlan(config, shape, lanes, 1, 1, True, tiling, post)
                cycles = plan_cycles(plan)
                key = (cycles.latency(bandwidth)[0], cycles.total, -(tm * tr * tc * spread))
                if best is None or key < best[0]:
                    best = (key, tiling)
        if best is not None:
            break
    if best is None:  # buffers hold at least one k_max x k_max kernel of one channel group
        raise AssertionError("no job of one output pixel fits the buffers")
    return best[1]


def _reads_distinct_banks(config: TileConfig, shape: ConvShape, tr: int, tc: int) -> bool:
    """Whether every job of a ``tr`` × ``tc`` tiling of ``shape`` — those of the layer's
    last row and column of jobs too — reads distinct activation banks with each pixel
    group."""
    return all(config.distinct_banks(r, c, shape.stride)
               for r in {tr, shape.ho % tr or tr} for c in {tc, shape.wo % tc or tc})


def plan_layer(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
               act_signed: bool = True, tiling: Tiling | None = None,
               post: PostProcess | None = None, pad_value: int = 0,
               bandwidth: float | None = None) -> LayerPlan:
    """Cut a layer into jobs (with the fewest cycles, at off-chip ``bandwidth`` bytes per
    cycle where it is given: see :func:`choose_tiling`); ``ValueError`` with a reason if
    the design point cannot run it (or ``post`` does not match the layer)."""
    lanes = check_runnable(config, shape, act_bits, weight_bits, act_signed)
    if post is not None:
        if post.channels != shape.m:
            raise ValueError(f"post-processing has {post.channels} channels, the layer "
                             f"{shape.m}")
        if post.out_bits > config.mac.width // min(config.mac.lanes):
            raise ValueError(f"output bits {post.out_bits} are beyond the tile's "
                             f"{config.mac.width}")
    lo, hi = value_range(act_bits, act_signed)
    if not lo <= pad_value <= hi:
        raise ValueError(f"padding value {pad_value} does not fit the activations "
                         f"({lo}..{hi})")
    input_stride = 1
    if shape.k == 1 and shape.stride > 1 and not any(
            (shape.pad_top, shape.pad_bottom, shape.pad_left, shape.pad_right)):
        # a strided 1x1 layer reads every stride-th pixel: the host sends just those
        input_stride = shape.stride
        shape = ConvShape(c=shape.c, m=shape.m, h=shape.ho, w=shape.wo, k=1,
                          groups=shape.groups)
    im2col = None
    if tiling is None:
        lowered, tiling = _choose_lowering(config, shape, lanes, _post_mode(post),
                                           bandwidth)
        if lowered != shape:
            im2col, shape = shape, lowered
    elif not _reads_distinct_banks(config, shape, tiling.tr, tiling.tc):
        raise ValueError(f"a tiling of {tiling.tr}x{tiling.tc} outputs has pixel groups "
                         f"that read one activation bank twice at stride {shape.stride} "
                         f"(the tile's banks are {config.act_banks_yx[0]} rows by "
                         f"{config.act_banks_yx[1]} columns)")
    return LayerPlan(config, shape, lanes, act_bits, weight_bits, act_signed, tiling, post,
                     pad_value, input_stride, im2col)


def im2col_shape(shape: ConvShape) -> ConvShape:
    """``shape`` as a 1×1 layer over its windows: ``c·k²`` input channels (channel-major,
    then kernel row and column, as the weights flatten) at every output pixel."""
    return ConvShape(c=shape.c * shape.k ** 2, m=shape.m, h=shape.ho, w=shape.wo, k=1)


@functools.lru_cache(maxsize=4096)
def _choose_lowering(config: TileConfig, shape: ConvShape, lanes: int, mode: str,
                     bandwidth: float | None = None) -> tuple[ConvShape, Tiling]:
    """The shape a layer runs as (itself, or for a dense layer whose input channels leave
    lanes of its words empty, its im2col form where that takes fewer cycles), and its
    tiling."""

    tiling = _choose_tiling(config, shape, lanes, mode, bandwidth)
    if shape.groups > 1 or shape.k == 1 or shape.c % lanes == 0:
        return shape, tiling
    lowered = im2col_shape(shape)
    if math.ceil(lowered.c / lanes) > config.max_reduction:
        return shape, tiling
    low_tiling = _choose_tiling(config, lowered, lanes, mode, bandwidth)
    post = _timing_post(shape, mode)
    direct = plan_cycles(LayerPlan(config, shape, lanes, 1, 1, True, tiling, post))
    low = plan_cycles(LayerPlan(config, lowered, lanes, 1, 1, True, low_tiling, post))
    if low.latency(bandwidth)[0] < direct.latency(bandwidth)[0]:
        return lowered, low_tiling
    return shape, tiling


# -- data -----------------------------------------------------------------------------------


def job_weights(plan: LayerPlan, job: Job, w: np.ndarray) -> np.ndarray:
    """The job's weights as a dense (mcount, chcount, k, k) block: each output channel's
    weights on its group's input channels, zero on other groups' channels."""
    s = plan.shape
    wt = np.zeros((job.mcount, job.chcount, s.k, s.k), dtype=np.int64)
    for mi in range(job.mcount):
        mo = job.m0 + mi
        g_lo = (mo // s.group_out) * s.group_in
        lo, hi = max(job.ch0, g_lo), min(job.ch0 + job.chcount, g_lo + s.group_in)
        if lo < hi:
            wt[mi, lo - job.ch0:hi - job.ch0] = w[mo, lo - g_lo:hi - g_lo]
    return wt


def job_streams(plan: LayerPlan, job: Job, x: np.ndarray, w: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, list[list[tuple[int, int, int, int]]]]:
    """Activation beats (``[g][row][col]``; with ``act_beat`` > 1 an array of that many
    words per beat), weight rows (``[mb][g][ky][kx]``, each an array of P words) as
    unsigned integers, and parameter rows (per block, P channels'
    (bias, multiplier, shift, rounding code); empty unless the job carries parameters)."""
    cfg, s, n = plan.config, plan.shape, plan.lanes
    mode = plan.mode
    if plan.input_stride > 1:
        x = np.asarray(x)[:, ::plan.input_stride, ::plan.input_stride]
    # Activations: (ng·N, in_h, in_w) channels padded with zeros to whole words.
    region = np.zeros((job.ng * n, job.in_h, job.in_w), dtype=np.int64)
    if plan.im2col is not None:
        region[:job.chcount] = im2col_region(x, plan.im2col, plan.pad_value, job)
        w = np.asarray(w).reshape(s.m, s.c, 1, 1)
    else:
        region[:job.chcount] = x[job.ch0:job.ch0 + job.chcount,
                                 job.y_lo:job.y_lo + job.in_h, job.x_lo:job.x_lo + job.in_w]
    lanes_last = region.reshape(job.ng, n, job.in_h, job.in_w).transpose(0, 2, 3, 1)
    words = pack_words(lanes_last, mode.act_bits, plan.act_signed)  # (ng, in_h, in_w)
    # beats of act_beat words of one row (the row's last beat padded with zeros)
    v = cfg.act_beat
    padded = np.zeros((job.ng, job.in_h, -(-job.in_w // v) * v), dtype=words.dtype)
    padded[:, :, :job.in_w] = words
    beats = padded.reshape(job.ng, job.in_h, -1, v)
    act_words = beats.reshape(-1, v)
    if v == 1:
        act_words = act_words.reshape(-1)
    # Weights: (mb·P, ng·N, k, k) with zeros beyond the job's channels.
    k = s.k
    wt = np.zeros((job.mb * cfg.p, job.ng * n, k, k), dtype=np.int64)
    wt[:job.mcount, :job.chcount] = job_weights(plan, job, w)
    # → [mb][g][ky][kx][p][lane], the lanes in the mode's weight order
    wt = wt.reshape(job.mb, cfg.p, job.ng, n, k, k).transpose(0, 2, 4, 5, 1, 3)
    order = np.array(mode.weight_order(), dtype=np.int64)
    weight_words = pack_words(wt[..., order], mode.weight_bits, True).reshape(-1, cfg.p)
    params: list[list[tuple[int, int, int, int]]] = []
    if plan.job_params(job):
        post = plan.post
        for b in range(job.mb):
            row = []
            for i in range(cfg.p):
                mo = job.m0 + b * cfg.p + i
                if mo < job.m0 + job.mcount:
                    row.append((post.bias[mo], post.multiplier[mo], post.shift[mo],
                                post.rounding_code))
                else:
                    row.append((0, 0, 0, 0))
            params.append(row)
    return act_words, weight_words, params


def im2col_region(x: np.ndarray, shape: ConvShape, pad_value: int, job: Job) -> np.ndarray:
    """The part of the im2col form of input ``x`` (of layer ``shape``) that ``job`` reads:
    its channels (channel ``(c·k + ky)·k + kx`` holds input channel ``c`` at kernel
    position ``(ky, kx)`` of each output pixel's window, ``pad_value`` outside the input)
    at its pixels."""
    k = shape.k
    ids = np.arange(job.ch0, job.ch0 + job.chcount)
    c, ky, kx = ids // (k * k), ids // k % k, ids % k
    oy = np.arange(job.y_lo, job.y_lo + job.in_h)
    ox = np.arange(job.x_lo, job.x_lo + job.in_w)
    iy = oy[None, :, None] * shape.stride + ky[:, None, None] - shape.pad_top
    ix = ox[None, None, :] * shape.stride + kx[:, None, None] - shape.pad_left
    inside = (iy >= 0) & (iy < shape.h) & (ix >= 0) & (ix < shape.w)
    xs = np.asarray(x)
    vals = xs[c[:, None, None], np.clip(iy, 0, shape.h - 1), np.clip(ix, 0, shape.w - 1)]
    return np.where(inside, vals, pad_value)


def decode_rows(plan: LayerPlan, rows: np.ndarray) -> np.ndarray:
    """Output words (an array of unsigned row integers as Python ints, or already split
    per MAC for raw rows) to values, shape (rows, P)."""
    cfg = plan.config
    if plan.raw:
        acc = cfg.mac.accumulator_width
        words = [int(r) for r in rows]
        out = np.zeros((len(words), cfg.p), dtype=np.int64)
        for j, word in enumerate(words):
            for i in range(cfg.p):
                v = (word >> (i * acc)) & ((1 << acc) - 1)
                out[j, i] = v - (1 << acc) if v >> (acc - 1) else v
        return out
    lane = cfg.mac.width // plan.out_lanes
    words = np.array([int(r) & ((1 << (cfg.p * lane)) - 1) for r in rows], dtype=object)
    out = np.zeros((len(words), cfg.p), dtype=np.int64)
    for i in range(cfg.p):
        raw = np.array([(int(wd) >> (i * lane)) & ((1 << lane) - 1) for wd in words],
                       dtype=np.int64)
        if plan.post.out_signed:
            raw = np.where(raw >= 1 << (lane - 1), raw - (1 << lane), raw)
        out[:, i] = raw
    return out


def assemble_output(plan: LayerPlan, results: list[np.ndarray]) -> np.ndarray:
    """The layer's output (int64, M × Ho × Wo) from the result rows (values, shape
    (out_rows, P)) of each job that completes a block, in order."""
    s, p = plan.shape, plan.config.p
    y = np.zeros((s.m, s.ho, s.wo), dtype=np.int64)
    for job, rows in zip(plan.output_jobs(), results, strict=True):
        blk = np.asarray(rows, dtype=np.int64).reshape(job.mb, job.tr, job.tc, p)
        blk = blk.transpose(0, 3, 1, 2).reshape(job.mb * p, job.tr, job.tc)
        y[job.m0:job.m0 + job.mcount, job.r0:job.r0 + job.tr, job.c0:job.c0 + job.tc] = (
            blk[:job.mcount])
    return y


def check_operands(x: np.ndarray, w: np.ndarray, act_bits: int, weight_bits: int,
                   act_signed: bool) -> None:
    """``ValueError`` naming the tensor, index and value of the first operand outside its
    declared bits."""
    from ..reference import check_fits

    check_fits("input", x, act_bits, act_signed)
    check_fits("weights", w, weight_bits, True)


def layer_cycles(config: TileConfig, shape: ConvShape, act_bits: int, weight_bits: int,
                 act_signed: bool = True, post: PostProcess | None = None,
                 bandwidth: float | None = None) -> LayerCycles:
    """Cycles of a layer on ``config`` (planned for off-chip ``bandwidth`` bytes per cycle
    where it is given); ``ValueError`` with a one-line reason if the design point cannot
    run it."""
    return plan_cycles(plan_layer(config, shape, act_bits, weight_bits, act_signed,
                                  post=post, bandwidth=bandwidth))
