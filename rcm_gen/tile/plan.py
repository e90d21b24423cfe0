"""The plan of a layer on the tile: how it is cut into jobs (:class:`Tiling`,
:class:`Job`, :class:`LayerPlan`) and how its sums are post-processed
(:class:`PostProcess`).  Plain data, shared by the host driver
(:mod:`rcm_gen.tile.driver`, which makes plans), the cycle model
(:mod:`rcm_gen.tile.cycles`, which times them) and the simulation glue."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..config import MacMode, value_range
from ..conv import ConvShape
from ..reference import pack_words
from .config import TileConfig

__all__ = ["ROUNDINGS", "Job", "LayerPlan", "PostProcess", "Tiling", "fold_input_zero_point"]

#: Requantization roundings, in the order of their hardware code
#: (``rcm_gen.gateware.modes.Rounding``).
ROUNDINGS = ("double", "single", "wide")


@dataclass(frozen=True)
class Tiling:
    """How a layer is cut: output channels, rows and columns per output block, and input
    channels per job (a multiple of the lane count, except for the last job of a
    block)."""

    tm: int
    tr: int
    tc: int
    channels: int


@dataclass(frozen=True, eq=False)
class PostProcess:
    """How a layer's sums become its output, as a TFLite int8 kernel computes it: the
    tile starts each sum from ``bias`` (per output channel, the input zero point already
    folded in, see :func:`fold_input_zero_point`), then requantizes it with ``multiplier``
    and ``shift``, adds ``zero_point`` and clamps to ``[lo, hi]``; the values leave the
    tile packed as ``out_bits``-bit lanes (signed if ``out_signed``).  Without
    ``requantize`` the tile adds the bias and sends the sums themselves (for a host that
    rescales them another way: LiteRT's reference fully connected kernel rounds in
    floating point); the multipliers and shifts are then unused.  ``rounding`` is how the
    requantization rounds (:data:`ROUNDINGS`: ``double``, TFLite's default; ``single``,
    ``TFLITE_SINGLE_ROUNDING``; ``wide``, the int64 sums of 16x8 layers, not saturated, with
    ``multiplier`` the reduced 16-bit multiplier shifted up by 16), see
    :func:`rcm_gen.reference.requantize`.

    Raises
    ------
    ValueError
        If a parameter does not fit the tile's registers or the clamp range does not fit
        the output bits.
    """

    bias: tuple[int, ...]
    multiplier: tuple[int, ...]
    shift: tuple[int, ...]
    zero_point: int
    lo: int
    hi: int
    out_bits: int
    out_signed: bool = True
    requantize: bool = True
    rounding: str = "double"

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"Post-processing rounding must be one of {', '.join(ROUNDINGS)}"
                             f", not {self.rounding!r}")
        for name in ("bias", "multiplier", "shift"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not len(self.bias) == len(self.multiplier) == len(self.shift):
            raise ValueError("Post-processing bias, multiplier and shift must have one value "
                             f"per output channel, not {len(self.bias)}, "
                             f"{len(self.multiplier)}, {len(self.shift)}")
        for name, bits in (("bias", TileConfig.BIAS_BITS),
                           ("multiplier", TileConfig.MULTIPLIER_BITS)):
            lo, hi = value_range(bits, True)
            bad = [v for v in getattr(self, name) if not lo <= v <= hi]
            if bad:
                raise ValueError(f"Post-processing {name} must fit {bits}-bit signed, not "
                                 f"{bad[0]}")
        bad = [v for v in self.shift if not -31 <= v <= 31]
        if bad:
            raise ValueError(f"Post-processing shift must be from -31 to 31, not {bad[0]}")
        lo, hi = value_range(self.out_bits, self.out_signed)
        if not lo <= self.lo <= self.hi <= hi:
            kind = "signed" if self.out_signed else "unsigned"
            raise ValueError(f"Post-processing clamp range must lie within {self.out_bits}-bit "
                             f"{kind} ({lo}..{hi}), not {self.lo}..{self.hi}")
        if not -(1 << 16) <= self.zero_point < 1 << 16:
            raise ValueError(f"Post-processing zero point must be a 17-bit signed integer, "
                             f"not {self.zero_point}")

    @property
    def channels(self) -> int:
        return len(self.bias)

    @property
    def rounding_code(self) -> int:
        """The rounding as the post-processing unit's parameter encodes it."""
        return ROUNDINGS.index(self.rounding)

    @classmethod
    def for_timing(cls, channels: int, out_bits: int, out_signed: bool = False
                   ) -> PostProcess:
        """Post-processing with all-zero parameters: what a layer's cycles and traffic
        depend on (whether its sums are requantized, and to how many bits), for mapping
        a network whose quantization parameters are not given."""
        zeros = (0,) * channels
        lo, hi = value_range(out_bits, out_signed)
        return cls(zeros, zeros, zeros, 0, lo, hi, out_bits, out_signed)


def fold_input_zero_point(bias: np.ndarray, w: np.ndarray, zero_point: int) -> np.ndarray:
    """The bias the tile starts from when activations arrive as they are stored (with
    their zero point) and padding carries the zero point too: TFLite computes
    ``bias + Σ (x − zp)·w``, which is ``(bias − zp·Σ w) + Σ x·w`` (``Σ w`` over each output
    channel's weights)."""
    w = np.asarray(w, dtype=np.int64)
    return np.asarray(bias, dtype=np.int64) - zero_point * w.reshape(w.shape[0], -1).sum(axis=1)


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
    first: bool    # opens its output block
    last: bool     # completes it (its results leave the tile)

    @property
    def act_words(self) -> int:
        """Activation words (input pixels × channel groups)."""
        return self.ng * self.in_h * self.in_w

    def act_beats(self, beat: int = 1) -> int:
        """Beats of the activation stream, ``beat`` words of one row each."""
        return self.ng * self.in_h * -(-self.in_w // beat)

    def weight_rows(self, k: int) -> int:
        return self.mb * self.ng * k * k

    @property
    def out_rows(self) -> int:
        """Result rows the job sends (0 unless it completes its block)."""
        return self.mb * self.tr * self.tc if self.last else 0

    def compute_steps(self, k: int, q: int = 1) -> int:
        """Controller steps: one per group of ``q`` output pixels (consecutive in raster
        order), channel word and kernel position."""
        return self.mb * -(-self.tr * self.tc // q) * self.ng * k * k

    def descriptor(self, plan: LayerPlan) -> dict[str, int]:
        """Members of the job descriptor (see ``gateware.layouts.job_layout``)."""
        from ..gateware.modes import mode_port_value

        post = plan.post
        d = {
            "mode": mode_port_value(plan.config.mac, plan.mode),
            "act_signed": int(plan.act_signed),
            "mb": self.mb, "ng": self.ng, "k": plan.shape.k, "s": plan.shape.stride,
            "tr": self.tr, "tc": self.tc, "in_h": self.in_h, "in_w": self.in_w,
            "pad_top": self.pad_top, "pad_left": self.pad_left, "pad": plan.pad_word,
            "first": int(self.first), "last": int(self.last),
            "params": int(plan.job_params(self)), "raw": int(plan.raw),
        }
        if not plan.raw:
            d.update(out_mode=plan.out_lanes.bit_length() - 1, out_zp=post.zero_point,
                     out_min=post.lo, out_max=post.hi)
        return d


def _extent_blocks(out_size: int, tile: int, stride: int, k: int, in_size: int,
                   pad_before: int) -> Iterator[tuple[int, int, int, int, int]]:
    """One axis (rows or columns) cut into blocks of ``tile`` outputs: per block its first
    output, output count, first stored input, stored input count and padding before."""
    for o0 in range(0, out_size, tile):
        count = min(tile, out_size - o0)
        v0 = o0 * stride - pad_before
        v1 = (o0 + count - 1) * stride - pad_before + k
        lo, hi = max(v0, 0), min(v1, in_size)
        yield o0, count, lo, hi - lo, lo - v0


def _span(shape: ConvShape, m0: int, mcount: int) -> tuple[int, int]:
    """Input channels [lo, hi) that output channels [m0, m0 + mcount) read."""
    g0 = m0 // shape.group_out
    g1 = (m0 + mcount - 1) // shape.group_out
    return g0 * shape.group_in, (g1 + 1) * shape.group_in


@dataclass(frozen=True)
class LayerPlan:
    """A layer cut into jobs for one design point, lane mode and signedness.

    ``post`` is how the sums are post-processed (``None``: the raw sums leave the tile);
    ``pad_value`` is what padded activations hold (TFLite: the input zero point).
    ``input_stride`` > 1: a 1×1 layer of that stride, run as the stride-1 layer ``shape``
    on the input pixels it reads (the host sends only those).  ``im2col``: the layer
    itself, run as the 1×1 layer ``shape`` (input channels ``c·k²``, one per channel and
    kernel position, at every output pixel: the host sends each output pixel's window,
    padding included, and the weights flattened alike) — for layers with fewer input
    channels than fill the lanes of their words (see :func:`plan_layer`).
    """

    config: TileConfig
    shape: ConvShape
    lanes: int
    act_bits: int
    weight_bits: int
    act_signed: bool
    tiling: Tiling
    post: PostProcess | None = None
    pad_value: int = 0
    input_stride: int = 1
    im2col: ConvShape | None = None
    out_lanes: int = field(init=False)

    def __post_init__(self) -> None:
        out_lanes = 1
        if not self.raw:
            # values packed W/N bits apiece, N one of the MAC's lane counts
            mac = self.config.mac
            out_lanes = max(n for n in mac.lanes if self.post.out_bits <= mac.width // n)
        object.__setattr__(self, "out_lanes", out_lanes)

    @property
    def mode(self) -> MacMode:
        """The MAC mode the layer runs in: ``lanes`` lanes of W/``lanes`` bits, or for a
        fusion MAC the fastest mode holding the layer's activation and weight bits
        (``lanes`` is its products per cycle, the input channels of one word)."""
        mac = self.config.mac
        if mac.is_fused:
            return mac.mode_for_bits(self.act_bits, self.weight_bits)
        return MacMode.lane_mode(mac.width, self.lanes)

    @property
    def raw(self) -> bool:
        """The sums leave the tile as they are (no requantization)."""
        return self.post is None or not self.post.requantize

    @property
    def pad_word(self) -> int:
        """The word the MACs see at padded positions: ``pad_value`` in every lane."""
        if not self.pad_value:
            return 0
        return int(pack_words(np.full(self.lanes, self.pad_value), self.mode.act_bits,
                              self.act_signed))

    def job_params(self, job: Job) -> bool:
        """Whether the job carries per-channel parameters (a block's first job, for the
        bias, and a requantized block's last, for the multipliers and shifts)."""
        return self.post is not None and (job.first or (job.last and not self.raw))

    def row_blocks(self) -> Iterator[tuple[int, int, int, int, int]]:
        """Output-row blocks in streaming order: (r0, tr, y_lo, in_h, pad_top)."""
        s = self.shape
        return _extent_blocks(s.ho, self.tiling.tr, s.stride, s.k, s.h, s.pad_top)

    def col_blocks(self) -> Iterator[tuple[int, int, int, int, int]]:
        """Output-column blocks in streaming order: (c0, tc, x_lo, in_w, pad_left)."""
        s = self.shape
        return _extent_blocks(s.wo, self.tiling.tc, s.stride, s.k, s.w, s.pad_left)

    def channel_blocks(self, m0: int, mcount: int) -> list[tuple[int, int]]:
        """Input-channel blocks (ch0, count) of the output channels [m0, m0 + mcount)."""
        lo, hi = _span(self.shape, m0, mcount)
        t = self.tiling.channels
        return [(ch0, min(t, hi - ch0)) for ch0 in range(lo, hi, t)]

    def m_blocks(self) -> Iterator[tuple[int, int]]:
        """Output-channel blocks (m0, count)."""
        s, t = self.shape, self.tiling
        for m0 in range(0, s.m, t.tm):
            yield m0, min(t.tm, s.m - m0)

    def jobs(self) -> Iterator[Job]:
        """Jobs in streaming order: output-channel blocks, then output row blocks, then
        column blocks, then the input-channel blocks that accumulate in the tile."""
        n, p = self.lanes, self.config.p
        cols = list(self.col_blocks())
        for m0, mcount in self.m_blocks():
            chs = self.channel_blocks(m0, mcount)
            for r0, tr, y_lo, in_h, pad_top in self.row_blocks():
                for c0, tc, x_lo, in_w, pad_left in cols:
                    for i, (ch0, chcount) in enumerate(chs):
                        yield Job(m0=m0, mcount=mcount, r0=r0, c0=c0, tr=tr, tc=tc,
                                  ch0=ch0, chcount=chcount, ng=math.ceil(chcount / n),
                                  mb=math.ceil(mcount / p), y_lo=y_lo, x_lo=x_lo,
                                  in_h=in_h, in_w=in_w, pad_top=pad_top, pad_left=pad_left,
                                  first=i == 0, last=i == len(chs) - 1)

    def output_jobs(self) -> Iterator[Job]:
        """The jobs whose results leave the tile (the last of each output block)."""
        return (job for job in self.jobs() if job.last)

    @property
    def job_count(self) -> int:
        s, t = self.shape, self.tiling
        blocks = math.ceil(s.ho / t.tr) * math.ceil(s.wo / t.tc)
        return blocks * sum(len(self.channel_blocks(m0, mc)) for m0, mc in self.m_blocks())

    # -- off-chip traffic (bits of every beat's payload) -----------------------------------

    def out_row_bits(self) -> int:
        cfg = self.config
        if self.raw:
            return cfg.p * cfg.mac.accumulator_width
        return cfg.p * cfg.mac.width // self.out_lanes

    def traffic_bits(self, job: Job) -> dict[str, int]:
        """Bits the job moves into and out of the tile, by stream."""
        cfg = self.config
        from ..gateware.layouts import job_layout  # the descriptor's width

        return {
            "descriptor": job_layout(cfg).size,
            "activations": job.act_beats(cfg.act_beat) * cfg.act_beat * cfg.act_word_bits,
            "weights": job.weight_rows(self.shape.k) * cfg.p * cfg.weight_word_bits,
            "params": (job.mb * cfg.p * cfg.param_bits) if self.job_params(job) else 0,
            "outputs": job.out_rows * self.out_row_bits(),
        }
