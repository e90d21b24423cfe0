"""Design-point configuration: one frozen, validated, JSON round-trippable object per design.

Everything else — Verilog, reports, test parameters, the cycle model — derives from these
objects.  Derived quantities (lane widths, product and accumulator widths) are computed here
and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

__all__ = [
    "ARCHITECTURES",
    "DSP_LANES",
    "MacConfig",
    "check_bool",
    "MacMode",
    "fastest_mode",
    "signed_bits",
    "value_range",
]

#: Multiplier architectures.  ``fixed`` is the non-configurable baseline; ``fusion`` fuses
#: b×b bit-bricks into dot products whose operand widths differ per mode; ``dsp`` composes
#: the product from two narrow signed multipliers (an FPGA's DSP blocks).
ARCHITECTURES = ("booth", "ppa", "fusion", "fixed", "dsp")

#: Lane counts the ``dsp`` architecture implements.
DSP_LANES = (1, 2, 4)
#: How the ``dsp`` and ``fixed`` architectures' multipliers are written
#: (:attr:`MacConfig.dsp_block`).
DSP_BLOCKS = ("generic", "ecp5")
#: Widest signed operand of an ECP5 ``MULT18X18D``.
ECP5_MULT_BITS = 18

#: Brick size of the fusion architecture when the configuration does not give one.
DEFAULT_BRICK = 2

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


def check_bool(owner: str, name: str, value: Any) -> None:
    """``TypeError`` unless ``value`` is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner} {name} must be true or false, not {value!r}")


def _check_int(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")


@dataclass(frozen=True)
class MacMode:
    """One run-time mode of a MAC: the lane width of each operand and what a cycle does.

    A Sum-Together (or fixed) mode has N lanes of W/N bits in each W-bit operand word and
    returns the N-term dot product (``products`` = N).  A fusion mode ``A``x``B`` has
    ``act_lanes`` = W/A activations in each W-bit block of the activation word and
    ``weight_lanes`` = W/B weights in each W-bit block of the weight word, and returns a
    dot product of ``products`` = (W/A)·(W/B) terms; its operand words are laid out as
    :meth:`weight_order` says.

    Members
    -------
    act_bits, weight_bits : int
        Lane width of an activation and of a weight; any narrower value is held in its lane
        (sign- or zero-extended).
    act_lanes, weight_lanes : int
        W // act_bits and W // weight_bits.
    products : int
        Multiply-accumulates per cycle (terms of the dot product).
    fused : bool
        A fusion mode (products = act_lanes·weight_lanes) rather than a Sum-Together one
        (products = act_lanes = weight_lanes).
    """

    act_bits: int
    weight_bits: int
    act_lanes: int
    weight_lanes: int
    products: int
    fused: bool

    @classmethod
    def lane_mode(cls, width: int, lanes: int) -> MacMode:
        """The Sum-Together mode of ``lanes`` lanes of a ``width``-bit datapath."""
        return cls(width // lanes, width // lanes, lanes, lanes, lanes, False)

    @classmethod
    def fusion_mode(cls, width: int, act_bits: int, weight_bits: int) -> MacMode:
        """The fusion mode ``act_bits``x``weight_bits`` of a ``width``-bit datapath."""
        na, nw = width // act_bits, width // weight_bits
        return cls(act_bits, weight_bits, na, nw, na * nw, True)

    @property
    def name(self) -> str:
        """``"AxB"`` (activation bits x weight bits)."""
        return f"{self.act_bits}x{self.weight_bits}"

    @property
    def act_word_bits(self) -> int:
        """Bits of the activation word this mode uses (from bit 0)."""
        return self.products * self.act_bits

    @property
    def weight_word_bits(self) -> int:
        """Bits of the weight word this mode uses (from bit 0)."""
        return self.products * self.weight_bits

    def holds(self, act_bits: int, weight_bits: int) -> bool:
        """Whether ``act_bits``-bit activations and ``weight_bits``-bit weights fit its
        lanes (an unsigned activation of b bits needs a lane of b bits, as a signed one)."""
        return act_bits <= self.act_bits and weight_bits <= self.weight_bits

    def weight_order(self) -> tuple[int, ...]:
        """The term of the dot product held in each weight lane, lane 0 first.

        Activation lane k (bits ``k·act_bits`` up) holds term k: consecutive terms (input
        channels of a convolution) in consecutive lanes.  In a Sum-Together mode weight lane
        k holds term k too.  In a fusion mode the weight word is transposed: it is
        ``act_lanes`` W-bit blocks, and lane g of block h (lane ``h·weight_lanes + g``)
        holds term ``g·act_lanes + h`` — the activation word's block g is the terms
        ``g·act_lanes`` to ``g·act_lanes + act_lanes - 1``, so activation lane h of block g
        meets weight lane g of block h.
        """
        if not self.fused:
            return tuple(range(self.products))
        na, nw = self.act_lanes, self.weight_lanes
        return tuple(g * na + h for h in range(na) for g in range(nw))


def fastest_mode(modes: Iterable[MacMode], act_bits: int, weight_bits: int
                 ) -> MacMode | None:
    """The mode of ``modes`` with the most products per cycle whose lanes hold both operand
    widths (ties: the one with fewer operand bits per product, then narrower activations);
    ``None`` if none holds them."""
    fits = [m for m in modes if m.holds(act_bits, weight_bits)]
    if not fits:
        return None
    return min(fits, key=lambda m: (-m.products, m.act_bits + m.weight_bits, m.act_bits))


def _parse_mode(text: Any) -> tuple[int, int]:
    if isinstance(text, str) and text.count("x") == 1 and all(
            part.isdigit() for part in text.split("x")):
        a, w = text.split("x")
        return int(a), int(w)
    raise ValueError(f"Fusion mode must be a string \"AxW\" (activation bits x weight bits), "
                     f"not {text!r}")


class _ConfigBase:
    """JSON round-tripping shared by every configuration dataclass."""

    kind: ClassVar[str]
    #: Fields added after the first release that are written only when set (not ``None``),
    #: so that earlier design points keep their JSON and their hash.
    _optional_fields: ClassVar[tuple[str, ...]] = ()
    #: Fields added after the first release that are written only when they differ from
    #: their default, for the same reason.
    _default_fields: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name in self._optional_fields:
                continue
            if f.name in self._default_fields and value == f.default:
                continue
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
        Lane counts N an operand can be split into at run time (W/N bits each).  Each is a
        power of two dividing W with at least 2 bits per lane.  For ``booth``, ``ppa`` and
        ``fixed`` these are the modes: in N-lane mode the multiplier returns the sum of N
        products of W/N-bit operands.  For ``fusion`` the modes pair an activation width
        with a weight width, each one of the W/N.
    arch : str
        Multiplier architecture: ``booth`` (radix-4 Booth with lane-aware recoding),
        ``ppa`` (partial-product array, off-lane blocks gated), ``fusion`` (a W×W array of
        b×b bit-bricks fused by shift-add; a mode ``A``x``B`` returns a dot product of
        (W/A)·(W/B) terms), ``fixed`` (a plain W×W multiplier, the non-configurable
        baseline; only one lane) or ``dsp`` (two narrow signed multipliers, as an FPGA's
        DSP blocks implement them: one of them the whole product at W bits, one lane each
        at W/2 bits, two lanes packed with guard bits each at W/4 bits; lanes 1, 2 and 4
        only).
    reduction : int
        Longest reduction the accumulator must hold without overflow, counted in
        accumulate cycles (each cycle adds one dot product).
    acc_width : int or None
        Accumulator width in bits.  ``None`` derives the narrowest width that holds
        ``reduction`` worst-case products; an explicit value may only be wider.
    pipeline : int
        Register stages between the operand ports and the accumulator (0, 1 or 2):
        1 registers the product, 2 registers the operands as well.
    brick : int or None
        ``fusion`` only: brick size b in bits (a power of two dividing W, at most W/2;
        ``None``: 2).  Every lane width W/N must be a multiple of it.
    modes : tuple of str or None
        ``fusion`` only: the run-time modes as ``"AxW"`` strings (activation bits x weight
        bits, each one of the lane widths W/N); ``None``: every pairing of the lane widths.
    clock_gating : bool
        ASIC synthesis gives flip-flops that share an enable their clock through a
        clock-gating cell of the library (an integrated one, or a latch and an AND gate
        built from its cells); ``False`` keeps every flip-flop on the free-running clock.
        FPGA flows ignore it (the FPGA tools map enables to the flip-flops' own
        clock-enable pins).
    dsp_block : str
        ``dsp`` and ``fixed`` only: how their multipliers are written.  ``generic`` (the
        default): a ``*`` between registers, which any synthesis maps (an FPGA's to its
        DSP blocks, the registers to flip-flops beside them).  ``ecp5``: each multiplier
        an ECP5 ``MULT18X18D`` instance whose own input and output registers are the
        MAC's pipeline registers (``pipeline`` 2: both; 1: the output's), so that these
        registers and their nets leave the fabric; a fixed twin keeps it.  The Verilog is
        then for ECP5 only: the ECP5 flow and the simulators (with rcm_gen's model of the
        primitive) take it, the ASIC flows and the other FPGA families refuse it.

    Members
    -------
    mac_modes : tuple of MacMode
        The run-time modes (widest first); :attr:`act_word_bits` and
        :attr:`weight_word_bits` the operand port widths they need.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range or parameters conflict.
    """

    kind: ClassVar[str] = "mac"
    _optional_fields: ClassVar[tuple[str, ...]] = ("brick", "modes")
    _default_fields: ClassVar[tuple[str, ...]] = ("clock_gating", "dsp_block")

    width: int = 16
    lanes: tuple[int, ...] = (1, 2, 4)
    arch: str = "booth"
    reduction: int = 1024
    acc_width: int | None = None
    pipeline: int = 1
    brick: int | None = None
    modes: tuple[str, ...] | None = None
    clock_gating: bool = True
    dsp_block: str = "generic"

    def __post_init__(self) -> None:
        check_bool("Clock", "gating", self.clock_gating)
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
        if self.arch == "dsp" and not set(self.lanes) <= set(DSP_LANES):
            raise ValueError(
                f"Lane set of the dsp architecture must be a subset of "
                f"{list(DSP_LANES)!r}, not {list(self.lanes)!r}")
        self._check_fusion()
        self._check_dsp_block()
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

    def _check_dsp_block(self) -> None:
        """``dsp_block``: one of :data:`DSP_BLOCKS`, ``ecp5`` only for the ``dsp`` and
        ``fixed`` architectures with operands a ``MULT18X18D`` takes."""
        if not isinstance(self.dsp_block, str) or self.dsp_block not in DSP_BLOCKS:
            raise ValueError(f"DSP block must be one of {', '.join(DSP_BLOCKS)}, "
                             f"not {self.dsp_block!r}")
        if self.dsp_block == "generic":
            return
        if self.arch not in ("dsp", "fixed"):
            raise ValueError(f"DSP block {self.dsp_block} applies to arch dsp and fixed, not "
                             f"arch {self.arch!r}")
        if self.width + 1 > ECP5_MULT_BITS:
            raise ValueError(
                f"DSP block ecp5 takes operands of at most {ECP5_MULT_BITS} bits (width "
                f"at most {ECP5_MULT_BITS - 1}), not width {self.width!r}")

    def _check_fusion(self) -> None:
        """Brick size, lane widths and the mode list of the fusion architecture."""
        if self.arch != "fusion":
            if self.brick is not None:
                raise ValueError(f"Brick size applies to arch fusion, not arch {self.arch!r} "
                                 f"(brick {self.brick!r})")
            if self.modes is not None:
                raise ValueError(
                    f"Mode list applies to arch fusion (booth, ppa, dsp and fixed run the "
                    f"symmetric modes of their lanes), not arch {self.arch!r} (modes "
                    f"{self.modes!r})")
            return
        bricks = [b for b in (2, 4, 8, 16) if b <= self.width // 2]
        if self.brick is not None:
            _check_int("Brick", "size", self.brick)
            if self.brick not in bricks:
                raise ValueError(
                    f"Brick size must be one of {', '.join(map(str, bricks))} (a power of two "
                    f"dividing width {self.width}, at most half of it), not {self.brick!r}")
        brick = self.brick_bits
        for n in self.lanes:
            if (self.width // n) % brick:
                ok = [m for m in (1 << i for i in range(6)) if self.width // m >= brick]
                raise ValueError(
                    f"Lane count of the fusion architecture must be one of "
                    f"{', '.join(map(str, ok))} ({self.width}/N bits a multiple of brick "
                    f"{brick}), not {n!r}")
        if self.modes is None:
            return
        modes = self.modes
        if isinstance(modes, str):
            modes = [m.strip() for m in modes.split(",") if m.strip()]
        if not isinstance(modes, (list, tuple)) or not modes:
            raise TypeError(f"Fusion mode list must be a non-empty list of \"AxW\" strings, "
                            f"not {self.modes!r}")
        bits = [self.width // n for n in self.lanes]
        bits_text = ", ".join(map(str, bits))
        pairs = []
        for text in modes:
            a, w = _parse_mode(text)
            for what, value in (("activation", a), ("weight", w)):
                if value not in bits:
                    raise ValueError(
                        f"Fusion mode {what} bits must be one of {bits_text} (multiples of "
                        f"brick {brick} up to width {self.width}: the lane widths of lanes "
                        f"{', '.join(map(str, self.lanes))}), not {value!r} in {text!r}")
            pairs.append((a, w))
        if len(set(pairs)) != len(pairs):
            raise ValueError(f"Fusion mode list must not repeat a mode, not {list(modes)!r}")
        pairs.sort(key=lambda p: (-p[0], -p[1]))
        object.__setattr__(self, "modes", tuple(f"{a}x{w}" for a, w in pairs))

    # -- derived values ---------------------------------------------------------------------

    @property
    def max_lanes(self) -> int:
        return max(self.lanes)

    @property
    def is_fused(self) -> bool:
        """The fusion architecture (modes are activation x weight width pairs)."""
        return self.arch == "fusion"

    @property
    def brick_bits(self) -> int | None:
        """Brick size of the fusion architecture (``None`` for the others)."""
        if not self.is_fused:
            return None
        return self.brick if self.brick is not None else DEFAULT_BRICK

    @cached_property
    def mac_modes(self) -> tuple[MacMode, ...]:
        """The run-time modes, widest activations first, then widest weights."""
        if not self.is_fused:
            return tuple(MacMode.lane_mode(self.width, n) for n in self.lanes)
        if self.modes is None:
            bits = [self.width // n for n in self.lanes]
            pairs = [(a, w) for a in bits for w in bits]
        else:
            pairs = [_parse_mode(m) for m in self.modes]
        return tuple(MacMode.fusion_mode(self.width, a, w) for a, w in pairs)

    @property
    def act_lane_counts(self) -> tuple[int, ...]:
        """Activation lane counts (W/A) of the modes, ascending."""
        return tuple(sorted({m.act_lanes for m in self.mac_modes}))

    @property
    def weight_lane_counts(self) -> tuple[int, ...]:
        """Weight lane counts (W/B) of the modes, ascending."""
        return tuple(sorted({m.weight_lanes for m in self.mac_modes}))

    @property
    def act_word_bits(self) -> int:
        """Width of the activation operand port: the most activation bits a mode takes in
        a cycle (W, except for fusion: W times the most weight lanes)."""
        return max(m.act_word_bits for m in self.mac_modes)

    @property
    def weight_word_bits(self) -> int:
        """Width of the weight operand port (W, except for fusion: W times the most
        activation lanes)."""
        return max(m.weight_word_bits for m in self.mac_modes)

    def mode(self, act_bits: int, weight_bits: int) -> MacMode:
        """The mode whose lanes are exactly ``act_bits`` and ``weight_bits`` wide."""
        for m in self.mac_modes:
            if (m.act_bits, m.weight_bits) == (act_bits, weight_bits):
                return m
        raise ValueError(f"Mode must be one of {', '.join(m.name for m in self.mac_modes)}, "
                         f"not '{act_bits}x{weight_bits}'")

    def mode_for_bits(self, act_bits: int, weight_bits: int) -> MacMode:
        """The fastest mode (most products per cycle) whose lanes hold ``act_bits``-bit
        activations and ``weight_bits``-bit weights.  Sum-Together and fixed MACs have no
        asymmetric modes: their W-bit operand ports hold W/N values of each operand and a
        product takes one of each, so they run ``A``x``B`` in the mode of max(A, B) bits.
        """
        for what, bits in (("Activation", act_bits), ("Weight", weight_bits)):
            _check_int(what, "bits", bits)
            if not 1 <= bits <= self.width:
                raise ValueError(f"{what} bits must be from 1 to {self.width}, not {bits!r}")
        mode = fastest_mode(self.mac_modes, act_bits, weight_bits)
        if mode is None:
            raise ValueError(
                f"Operand bits {act_bits}x{weight_bits} must fit one of the modes "
                f"{', '.join(m.name for m in self.mac_modes)}")
        return mode

    def products_per_cycle(self, act_bits: int, weight_bits: int) -> int:
        """Multiply-accumulates per cycle on ``act_bits``-bit activations and
        ``weight_bits``-bit weights (in the mode of :meth:`mode_for_bits`)."""
        return self.mode_for_bits(act_bits, weight_bits).products

    def lane_width(self, lanes: int) -> int:
        """Operand width in bits of one lane in ``lanes``-lane mode."""
        if lanes not in self.lanes:
            raise ValueError(
                f"Lane count must be one of {', '.join(map(str, self.lanes))}, not {lanes!r}")
        return self.width // lanes

    def lanes_for_bits(self, act_bits: int, weight_bits: int) -> int:
        """Most lanes whose lane width holds both operands (an unsigned activation of b
        bits needs a lane of b bits, as does a signed one).

        For Sum-Together and fixed MACs, where a mode is a lane count; a fusion MAC's modes
        are pairs: use :meth:`mode_for_bits`.
        """
        if self.is_fused:
            raise ValueError("Lane count applies to booth, ppa and fixed MACs; a fusion "
                             "MAC's modes are activation x weight pairs (mode_for_bits)")
        fits = [n for n in self.lanes if max(act_bits, weight_bits) <= self.width // n]
        if not fits:
            raise ValueError(
                f"Operand bits must be at most {self.width // min(self.lanes)}, "
                f"not {max(act_bits, weight_bits)!r}")
        return max(fits)

    def _as_mode(self, mode: int | MacMode) -> MacMode:
        if isinstance(mode, MacMode):
            if mode not in self.mac_modes:
                raise ValueError(f"Mode must be one of "
                                 f"{', '.join(m.name for m in self.mac_modes)}, not {mode!r}")
            return mode
        n = self.lane_width(mode)
        return self.mode(n, n)

    def product_range(self, mode: int | MacMode, act_signed: bool) -> tuple[int, int]:
        """Range of one cycle's dot product in ``mode`` (a :class:`MacMode`, or a lane count:
        the mode with that many lanes of each operand)."""
        m = self._as_mode(mode)
        lo, hi = _product_range(m.act_bits, act_signed, m.weight_bits)
        return m.products * lo, m.products * hi

    def product_width_for(self, mode: int | MacMode) -> int:
        """Two's-complement width of one cycle's dot product in ``mode``."""
        ranges = [self.product_range(mode, s) for s in (True, False)]
        return signed_bits(min(r[0] for r in ranges), max(r[1] for r in ranges))

    @property
    def product_width(self) -> int:
        """Width of the multiplier output (widest over all modes)."""
        return max(self.product_width_for(m) for m in self.mac_modes)

    @property
    def product_bounds(self) -> tuple[int, int]:
        """Smallest and largest dot product of one cycle over every mode and signedness."""
        ranges = [self.product_range(m, s) for m in self.mac_modes for s in (True, False)]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def required_acc_width(self) -> int:
        lo, hi = self.product_bounds
        return signed_bits(lo * self.reduction, hi * self.reduction)

    @property
    def accumulator_width(self) -> int:
        return self.acc_width if self.acc_width is not None else self.required_acc_width

    @property
    def max_reduction(self) -> int:
        """Longest reduction (accumulate cycles) the accumulator holds without overflow."""
        lo, hi = self.product_bounds
        a_lo, a_hi = value_range(self.accumulator_width, True)
        return min(a_lo // lo, a_hi // hi)

    @property
    def dsp_spacing(self) -> int | None:
        """Distance in bits between the two packed fields of a multiplier operand of the
        ``dsp`` architecture in 4-lane mode (``None`` for other architectures or without
        4 lanes): the smallest k such that the dot product's field (4 products, read with
        one rounding bit) and the field below it (a product from each multiplier, read only
        for its sign) both fit k bits."""
        if self.arch != "dsp" or 4 not in self.lanes:
            return None
        lo, hi = (x // 4 for x in self.product_bounds_for(4))
        k = 2
        while not (-(1 << (k - 1)) <= 2 * lo and 2 * hi < 1 << (k - 1)
                   and -(1 << (k - 1)) <= 4 * lo - 1 and 4 * hi < 1 << (k - 1)):
            k += 1
        return max(k, self.width // 4)

    def product_bounds_for(self, mode: int | MacMode) -> tuple[int, int]:
        """Smallest and largest dot product of one cycle in ``mode`` over both
        signednesses."""
        ranges = [self.product_range(mode, s) for s in (True, False)]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def latency(self) -> int:
        """Cycles from operands at the ports to their product in the accumulator."""
        return self.pipeline + 1

    @property
    def is_fixed(self) -> bool:
        return self.arch == "fixed"

    def fixed_twin(self) -> MacConfig:
        """The non-configurable baseline of this design point."""
        return self.replace(arch="fixed", lanes=(1,), brick=None, modes=None)

    @classmethod
    def _convert_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        for key in ("lanes", "modes"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return data
