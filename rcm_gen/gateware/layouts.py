"""Stream payload layouts of the tile, and packing them into integers for drivers."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from ..tile.config import TileConfig
from .modes import LaneMode, Mode, Rounding, TileError

__all__ = [
    "act_layout",
    "job_layout",
    "out_layout",
    "pack_payload",
    "par_layout",
    "param_layout",
    "requant_layout",
    "status_layout",
    "unpack_payload",
    "wgt_layout",
]


def _count(maximum: int) -> Shape:
    """Unsigned shape holding 0..maximum."""
    return unsigned(max(1, maximum.bit_length()))


def job_layout(cfg: TileConfig) -> data.StructLayout:
    """One job descriptor: what the next tile job computes.

    Members
    -------
    mode : LaneMode, or Mode for a fusion MAC
        Lanes per word of this job (a fusion MAC: its activation and weight lane counts).
    act_signed : 1
        Activations are signed.
    mb : 1..tm/p
        P-wide output-channel blocks.
    ng : 1..tn
        Words (channel groups) per input pixel.
    k, s : kernel size (1..k_max) and stride (1..s_max).
    tr, tc : output rows and columns (1..tr, 1..tc).
    in_h, in_w : rows and columns of input pixels stored for the job.
    pad_top, pad_left : rows above and columns left of the stored input that the job's
        window covers with padding (each less than ``k``).
    pad : act_word_bits
        The word the MACs see at padded positions (0, or the input zero point in every
        lane, as TFLite pads).
    first : 1
        The job starts an output block: its sums start from the bias (or 0 without
        parameters).  Otherwise it continues the open block's sums in the output buffer.
    last : 1
        The job completes the output block: its sums are post-processed and sent.
    params : 1
        One row of per-channel parameters per output-channel block follows on ``par``.
    raw : 1
        Send the sums themselves (``p`` accumulators per row), not post-processed.
    out_mode : LaneMode
        Lanes of the packed output words (post-processed values are packed at W/N bits).
    out_zp, out_min, out_max : signed(W+1)
        Output zero point and clamp range of the post-processed values.
    """
    v = signed(cfg.out_value_bits)
    return data.StructLayout({
        "mode": Mode if cfg.mac.is_fused else LaneMode,
        "act_signed": unsigned(1),
        "mb": _count(cfg.m_blocks),
        "ng": _count(cfg.tn),
        "k": _count(cfg.k_max),
        "s": _count(cfg.s_max),
        "tr": _count(cfg.tr),
        "tc": _count(cfg.tc),
        "in_h": _count(cfg.in_rows_max),
        "in_w": _count(cfg.in_cols_max),
        "pad_top": _count(cfg.in_rows_max),
        "pad_left": _count(cfg.in_cols_max),
        "pad": unsigned(cfg.act_word_bits),
        "first": unsigned(1),
        "last": unsigned(1),
        "params": unsigned(1),
        "raw": unsigned(1),
        "out_mode": LaneMode,
        "out_zp": v,
        "out_min": v,
        "out_max": v,
    })


def act_layout(cfg: TileConfig) -> data.StructLayout:
    """One activation beat: ``act_beat`` words (each ``act_word_bits`` wide, packing the
    input channels of one cycle) of consecutive input columns of one row, word 0 lowest (a
    row's last beat padded), and the job's last-beat flag."""
    return data.StructLayout({"data": unsigned(cfg.act_beat * cfg.act_word_bits),
                              "last": unsigned(1)})


def wgt_layout(cfg: TileConfig) -> data.StructLayout:
    """One weight row: a word for each of the P MACs (MAC 0 lowest), and a last flag."""
    return data.StructLayout({"data": unsigned(cfg.p * cfg.weight_word_bits),
                              "last": unsigned(1)})


def param_layout(cfg: TileConfig) -> data.StructLayout:
    """Post-processing parameters of one output channel (TFLite's per-channel
    quantization): int32 bias, fixed-point multiplier, shift (left when positive), and
    how the requantization rounds (:class:`~rcm_gen.gateware.modes.Rounding`)."""
    return data.StructLayout({
        "bias": signed(cfg.BIAS_BITS),
        "multiplier": signed(cfg.MULTIPLIER_BITS),
        "shift": signed(cfg.SHIFT_BITS),
        "rounding": Rounding,
    })


def requant_layout(cfg: TileConfig) -> data.StructLayout:
    """The part of a channel's parameters that post-processing needs (the bias is
    already in the sum)."""
    return data.StructLayout({
        "multiplier": signed(cfg.MULTIPLIER_BITS),
        "shift": signed(cfg.SHIFT_BITS),
        "rounding": Rounding,
    })


def par_layout(cfg: TileConfig) -> data.StructLayout:
    """One parameter row: the parameters of the P channels of an output-channel block
    (MAC 0 lowest), and a last flag."""
    return data.StructLayout({
        "data": data.ArrayLayout(param_layout(cfg), cfg.p),
        "last": unsigned(1),
    })


def out_layout(cfg: TileConfig) -> data.StructLayout:
    """One result row and a last flag.  Raw: the P accumulators (MAC 0 lowest, each
    ``accumulator_width`` bits, signed).  Post-processed: the P values packed at the output
    lane width W/N (channel 0 lowest) in the low P·W/N bits."""
    return data.StructLayout({
        "data": unsigned(cfg.p * cfg.mac.accumulator_width),
        "last": unsigned(1),
    })


def status_layout(cfg: TileConfig) -> data.StructLayout:
    """The tile's status port.

    Members
    -------
    error : TileError
        Why the tile refused a job (sticky until reset; ``NONE`` while all is well).
    overflow : 1
        Sticky: a sum outside int32 reached post-processing and was saturated (TFLite's
        int32 accumulator would have overflowed).  The accumulator itself cannot
        overflow on an accepted job.
    """
    return data.StructLayout({"error": TileError, "overflow": unsigned(1)})


def _is_signed(shape: Any) -> bool:
    try:
        return Shape.cast(shape).signed and not isinstance(shape, type)
    except TypeError:
        return False


def _fields(layout: data.StructLayout):
    for name, field in layout:
        yield name, field.offset, Shape.cast(field.shape).width


def pack_payload(layout: data.StructLayout, values: dict[str, Any]) -> int:
    """Integer holding ``values`` (members by name; enums by value; signed members in two's
    complement; missing members 0)."""
    unknown = set(values) - {name for name, _ in layout}
    if unknown:
        raise ValueError(f"Payload member must be one of {', '.join(n for n, _ in layout)}, "
                         f"not {sorted(unknown)[0]!r}")
    signed_ = {name: _is_signed(field.shape) for name, field in layout}
    word = 0
    for name, offset, width in _fields(layout):
        value = values.get(name, 0)
        value = getattr(value, "value", value)
        value = int(value)
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed_[name] else (
            0, (1 << width) - 1)
        if not lo <= value <= hi:
            raise ValueError(f"Payload member {name} must fit {width} bits, not {value!r}")
        word |= (value & ((1 << width) - 1)) << offset
    return word


def unpack_payload(layout: data.StructLayout, word: int) -> dict[str, int]:
    """Members of an integer payload, as unsigned integers."""
    return {name: (word >> offset) & ((1 << width) - 1)
            for name, offset, width in _fields(layout)}
