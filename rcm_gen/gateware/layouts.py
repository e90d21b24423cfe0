"""Stream payload layouts of the tile, and packing them into integers for drivers."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from ..tile.config import TileConfig
from .modes import LaneMode

__all__ = [
    "act_layout",
    "job_layout",
    "out_layout",
    "pack_payload",
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
    mode : LaneMode
        Lanes per word of this job.
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
        window covers with zero padding.
    """
    return data.StructLayout({
        "mode": LaneMode,
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
    })


def act_layout(cfg: TileConfig) -> data.StructLayout:
    """One activation word (N lanes packed) and the job's last-word flag."""
    return data.StructLayout({"data": unsigned(cfg.mac.width), "last": unsigned(1)})


def wgt_layout(cfg: TileConfig) -> data.StructLayout:
    """One weight row: a word for each of the P MACs (MAC 0 lowest), and a last flag."""
    return data.StructLayout({"data": unsigned(cfg.p * cfg.mac.width), "last": unsigned(1)})


def out_layout(cfg: TileConfig) -> data.StructLayout:
    """One result row: the accumulators of the P MACs (MAC 0 lowest), and a last flag."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.mac.accumulator_width), cfg.p),
        "last": unsigned(1),
    })


def _fields(layout: data.StructLayout):
    for name, field in layout:
        yield name, field.offset, Shape.cast(field.shape).width


def pack_payload(layout: data.StructLayout, values: dict[str, Any]) -> int:
    """Integer holding ``values`` (members by name; enums by value; missing members 0)."""
    unknown = set(values) - {name for name, _ in layout}
    if unknown:
        raise ValueError(f"Payload member must be one of {', '.join(n for n, _ in layout)}, "
                         f"not {sorted(unknown)[0]!r}")
    word = 0
    for name, offset, width in _fields(layout):
        value = values.get(name, 0)
        value = getattr(value, "value", value)
        value = int(value)
        if not 0 <= value < 1 << width:
            raise ValueError(f"Payload member {name} must fit {width} bits, not {value!r}")
        word |= value << offset
    return word


def unpack_payload(layout: data.StructLayout, word: int) -> dict[str, int]:
    """Members of an integer payload, as unsigned integers."""
    return {name: (word >> offset) & ((1 << width) - 1)
            for name, offset, width in _fields(layout)}
