"""Run-time operating modes shared by the gateware and its drivers."""

from amaranth.lib import enum

__all__ = ["LaneMode"]


class LaneMode(enum.Enum, shape=3):
    """Lane count N of a precision-scalable multiplier, encoded as log2(N).

    A design only implements the lane counts of its configuration; an encoding outside
    that set selects the smallest configured lane count.
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
