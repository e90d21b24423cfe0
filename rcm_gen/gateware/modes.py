"""Run-time operating modes shared by the gateware and its drivers."""

# (no ``from __future__ import annotations``: a data.Struct reads its annotations as shapes)

from amaranth.lib import data, enum

from ..config import MacConfig, MacMode

__all__ = ["TILE_ERROR_TEXT", "LaneMode", "Mode", "Rounding", "TileError", "mode_port_value"]


class Rounding(enum.Enum, shape=2):
    """How post-processing rounds a channel's requantization (TFLite's
    ``MultiplyByQuantizedMultiplier`` variants).

    - ``DOUBLE``: the sum saturated to int32, a rounding doubling high multiply by the Q0.31
      multiplier, then a rounding right shift, halves away from zero (gemmlowp; LiteRT's
      default build).
    - ``SINGLE``: the sum saturated to int32, ``(x·M + 2^(30−shift)) >> (31−shift)`` in one
      rounding, halves up (``TFLITE_SINGLE_ROUNDING``, TFLite Micro builds).
    - ``WIDE``: as ``SINGLE`` on the whole sum, not saturated (TFLite's int64 overload, for
      16x8 layers: the host sends the 16-bit reduced multiplier shifted up by 16).
    """

    DOUBLE = 0
    SINGLE = 1
    WIDE = 2


class LaneMode(enum.Enum, shape=3):
    """Lane count N of a precision-scalable multiplier, encoded as log2(N).

    A MAC only implements the lane counts of its configuration (an encoding outside that
    set selects the smallest configured lane count); the tile refuses a job that asks for
    one it lacks.
    """

    X1 = 0
    X2 = 1
    X4 = 2
    X8 = 3
    X16 = 4

    @classmethod
    def for_lanes(cls, lanes: int) -> "LaneMode":
        if lanes not in (1, 2, 4, 8, 16):
            raise ValueError(f"Lane count must be one of 1, 2, 4, 8, 16, not {lanes!r}")
        return cls(lanes.bit_length() - 1)

    @property
    def lanes(self) -> int:
        return 1 << self.value


class Mode(data.Struct):
    """Mode of a fusion multiplier: activation lanes and weight lanes, each a
    :class:`LaneMode` (the lane count per W-bit block of its operand word; W/lanes bits per
    lane).

    A pair that is not one of the configured modes gives an unspecified product (a tile
    refuses such jobs); an encoding of an operand's lane count outside the configured ones
    selects its smallest configured lane count.
    """

    act: LaneMode
    weight: LaneMode


def mode_port_value(config: MacConfig, mode: MacMode) -> int:
    """The value a MAC of ``config`` takes on its ``mode`` port for ``mode``: the
    :class:`LaneMode` of the lane count (booth, ppa, fixed) or the :class:`Mode` pair
    (fusion)."""
    if mode not in config.mac_modes:
        raise ValueError(f"Mode must be one of {', '.join(m.name for m in config.mac_modes)}, "
                         f"not {mode.name!r}")
    act = LaneMode.for_lanes(mode.act_lanes).value
    if not config.is_fused:
        return act
    weight = LaneMode.for_lanes(mode.weight_lanes).value
    return act | weight << LaneMode.as_shape().width


class TileError(enum.Enum, shape=4):
    """Why the tile refused a job (its ``status.error``; sticky until reset).

    Once set, the tile takes and discards every further descriptor and data beat, so a
    host never waits on it, and sends no result of the refused job or any later one.
    """

    NONE = 0
    #: The job's lane mode, or the lane mode of its packed output, is not in the design.
    MODE = 1
    #: A size is zero or beyond the design's maximum (``mb``, ``ng``, ``k``, ``s``, ``tr``,
    #: ``tc``, ``in_h``, ``in_w``), or a padding is not smaller than the kernel.
    SIZE = 2
    #: The job's activations or weights exceed a buffer bank.
    BUFFER = 3
    #: A continuing job without an open output block, a first job while one is open, or
    #: a continuing job whose output block (``mb``, ``tr``, ``tc``) differs.
    SEQUENCE = 4
    #: The output block's accumulation would exceed ``max_reduction`` steps.
    REDUCTION = 5
    #: Post-processing without its per-channel parameters, or a clamp with min > max.
    PARAMS = 6
    #: A stream's ``last`` beat came before the job's data were complete.
    MISSING_BEAT = 7
    #: A stream's data went on past what the job needs (no ``last`` on its final beat).
    EXTRA_BEAT = 8


#: What each refusal means, for a driver's error message.
TILE_ERROR_TEXT = {
    TileError.MODE: "a lane mode the design lacks",
    TileError.SIZE: "a size that is zero or beyond the design's maximum, or a padding not "
                    "smaller than the kernel",
    TileError.BUFFER: "activations or weights beyond a buffer bank",
    TileError.SEQUENCE: "a job out of its output block's order",
    TileError.REDUCTION: "an accumulation longer than max_reduction",
    TileError.PARAMS: "post-processing without parameters, or a clamp with min above max",
    TileError.MISSING_BEAT: "a stream ended before the job's data were complete",
    TileError.EXTRA_BEAT: "a stream went on past the job's data",
}
