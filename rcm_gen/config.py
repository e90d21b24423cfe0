"""Design-point configuration: one frozen, validated, JSON round-trippable object per design.

Everything else — Verilog, reports, test parameters, the cycle model — derives from these
objects.  Derived quantities (lane widths, product and accumulator widths) are computed here
and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "ARCHITECTURES",
    "MacConfig",
    "signed_bits",
    "value_range",
]

#: Multiplier architectures.  ``fixed`` is the non-configurable baseline.
ARCHITECTURES = ("booth", "ppa", "fixed")

_MIN_WIDTH, _MAX_WIDTH = 4, 32


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's-complement width holding every integer in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """Range ``(lo, hi)`` of a ``bits``-wide integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _product_range(a_bits: int, a_signed: bool, w_bits: int) -> tuple[int, int]:
    a_lo, a_hi = value_range(a_bits, a_signed)
    w_lo, w_hi = value_range(w_bits, True)
    corners = [a_lo * w_lo, a_lo * w_hi, a_hi * w_lo, a_hi * w_hi]
    return min(corners), max(corners)


def _is_pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


def _check_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")


class _ConfigBase:
    """JSON round-tripping shared by every configuration dataclass."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, _ConfigBase):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Any):
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} must be a JSON object, not {data!r}")
        data = dict(data)
        kind = data.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"Configuration kind must be {cls.kind!r}, not {kind!r}")
        allowed = cls.field_names()
        for key in data:
            if key not in allowed:
                raise ValueError(
                    f"{cls.__name__} key must be one of {', '.join(allowed)}, not {key!r}")
        return cls(**cls._convert_fields(data))

    @classmethod
    def _convert_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class MacConfig(_ConfigBase):
    """A precision-scalable multiply-accumulate unit.

    Parameters
    ----------
    width : int
        Datapath width W in bits (a power of two from 4 to 32).  In one-lane mode the
        multiplier takes W-bit operands.
    lanes : tuple of int
        Lane counts N the multiplier can be switched between at run time.  Each is a power
        of two dividing W with at least 2 bits per lane.  In N-lane mode the multiplier
        returns the sum of N products of W/N-bit operands.
    arch : str
        Multiplier architecture: ``booth`` (radix-4 Booth with lane-aware recoding),
        ``ppa`` (partial-product array, off-lane blocks gated) or ``fixed`` (a plain W×W
        multiplier, the non-configurable baseline; only one lane).
    reduction : int
        Longest reduction the accumulator must hold without overflow, counted in
        accumulate cycles (each cycle adds one N-term dot product).
    acc_width : int or None
        Accumulator width in bits.  ``None`` derives the narrowest width that holds
        ``reduction`` worst-case products; an explicit value may only be wider.
    pipeline : int
        Register stages between the operand ports and the accumulator (0, 1 or 2):
        1 registers the product, 2 registers the operands as well.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range or parameters conflict.
    """

    kind: ClassVar[str] = "mac"

    width: int = 16
    lanes: tuple[int, ...] = (1, 2, 4)
    arch: str = "booth"
    reduction: int = 1024
    acc_width: int | None = None
    pipeline: int = 1

    def __post_init__(self) -> None:
        _check_int("Datapath", "width", self.width)
        if not (_is_pow2(self.width) and _MIN_WIDTH <= self.width <= _MAX_WIDTH):
            raise ValueError(
                f"Datapath width must be a power of two from {_MIN_WIDTH} to {_MAX_WIDTH}, "
                f"not {self.width!r}")
        lanes = self.lanes
        if isinstance(lanes, list):
            lanes = tuple(lanes)
            object.__setattr__(self, "lanes", lanes)
        if not isinstance(lanes, tuple) or not lanes:
            raise TypeError(f"Lane set must be a non-empty list of integers, not {lanes!r}")
        allowed = [n for n in (1 << i for i in range(6)) if self.width // n >= 2]
        allowed_text = ", ".join(map(str, allowed))
        for n in lanes:
            _check_int("Lane", "count", n)
            if n not in allowed:
                raise ValueError(
                    f"Lane count must be one of {allowed_text} (a power of two dividing "
                    f"width {self.width} with at least 2 bits per lane), not {n!r}")
        if len(set(lanes)) != len(lanes):
            raise ValueError(f"Lane set must not repeat a lane count, not {list(lanes)!r}")
        object.__setattr__(self, "lanes", tuple(sorted(lanes)))
        if not isinstance(self.arch, str) or self.arch not in ARCHITECTURES:
            raise ValueError(
                f"Multiplier architecture must be one of {', '.join(ARCHITECTURES)}, "
                f"not {self.arch!r}")
        if self.arch == "fixed" and self.lanes != (1,):
            raise ValueError(
                f"Lane set of the fixed architecture must be [1], not {list(self.lanes)!r}")
        _check_int("Accumulator", "reduction", self.reduction)
        if not 1 <= self.reduction <= 1 << 24:
            raise ValueError(
                f"Accumulator reduction must be from 1 to {1 << 24}, not {self.reduction!r}")
        if self.acc_width is not None:
            _check_int("Accumulator", "width", self.acc_width)
            need = self.required_acc_width
            if not need <= self.acc_width <= 128:
                raise ValueError(
                    f"Accumulator width must be from {need} (to hold a reduction of "
                    f"{self.reduction}) to 128, not {self.acc_width!r}")
        _check_int("Pipeline", "depth", self.pipeline)
        if self.pipeline not in (0, 1, 2):
            raise ValueError(f"Pipeline depth must be one of 0, 1, 2, not {self.pipeline!r}")

    # -- derived values ---------------------------------------------------------------------

    @property
    def max_lanes(self) -> int:
        return max(self.lanes)

    def lane_width(self, lanes: int) -> int:
        """Operand width in bits of one lane in ``lanes``-lane mode."""
        if lanes not in self.lanes:
            raise ValueError(
                f"Lane count must be one of {', '.join(map(str, self.lanes))}, not {lanes!r}")
        return self.width // lanes

    def lanes_for_bits(self, act_bits: int, weight_bits: int) -> int:
        """Most lanes whose lane width holds both operands (an unsigned activation of b
        bits needs a lane of b bits, as does a signed one)."""
        fits = [n for n in self.lanes if max(act_bits, weight_bits) <= self.width // n]
        if not fits:
            raise ValueError(
                f"Operand bits must be at most {self.width // min(self.lanes)}, "
                f"not {max(act_bits, weight_bits)!r}")
        return max(fits)

    def product_range(self, lanes: int, act_signed: bool) -> tuple[int, int]:
        """Range of one cycle's dot product in ``lanes``-lane mode."""
        n = self.lane_width(lanes)
        lo, hi = _product_range(n, act_signed, n)
        return lanes * lo, lanes * hi

    def product_width_for(self, lanes: int) -> int:
        """Two's-complement width of one cycle's dot product in ``lanes``-lane mode."""
        ranges = [self.product_range(lanes, s) for s in (True, False)]
        return signed_bits(min(r[0] for r in ranges), max(r[1] for r in ranges))

    @property
    def product_width(self) -> int:
        """Width of the multiplier output (widest over all modes)."""
        return max(self.product_width_for(n) for n in self.lanes)

    @property
    def required_acc_width(self) -> int:
        lo = min(self.product_range(n, s)[0] for n in self.lanes for s in (True, False))
        hi = max(self.product_range(n, s)[1] for n in self.lanes for s in (True, False))
        return signed_bits(lo * self.reduction, hi * self.reduction)

    @property
    def accumulator_width(self) -> int:
        return self.acc_width if self.acc_width is not None else self.required_acc_width

    @property
    def max_reduction(self) -> int:
        """Longest reduction (accumulate cycles) the accumulator holds without overflow."""
        lo = min(self.product_range(n, s)[0] for n in self.lanes for s in (True, False))
        hi = max(self.product_range(n, s)[1] for n in self.lanes for s in (True, False))
        a_lo, a_hi = value_range(self.accumulator_width, True)
        return min(a_lo // lo, a_hi // hi)

    @property
    def latency(self) -> int:
        """Cycles from operands at the ports to their product in the accumulator."""
        return self.pipeline + 1

    @property
    def is_fixed(self) -> bool:
        return self.arch == "fixed"

    def fixed_twin(self) -> MacConfig:
        """The non-configurable baseline of this design point."""
        return self.replace(arch="fixed", lanes=(1,))

    @classmethod
    def _convert_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("lanes"), list):
            data["lanes"] = tuple(data["lanes"])
        return data

