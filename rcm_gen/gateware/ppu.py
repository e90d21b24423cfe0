"""The post-processing unit: an accumulator to the next layer's integer, as TFLite's integer
kernels compute it (int8 and 16x8, in LiteRT's double rounding or TFLite Micro's single
rounding)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import requant_layout
from .modes import Rounding

__all__ = ["PostProcessor"]

_MIN32, _MAX32 = -(1 << 31), (1 << 31) - 1


class PostProcessor(wiring.Component):
    """One output channel per cycle: the sum requantized as TFLite's kernels do it, in the
    rounding the channel's parameters ask for (:class:`~rcm_gen.gateware.modes.Rounding`):

    - ``DOUBLE``: saturate the sum to int32, ``MultiplyByQuantizedMultiplier`` of LiteRT's
      default build (a left shift for a positive ``shift``, the rounding doubling high
      multiply, a rounding right shift, halves away from zero, for a negative one);
    - ``SINGLE``: saturate to int32, ``(x·M + 2^(30−shift)) >> (31−shift)``
      (``TFLITE_SINGLE_ROUNDING``), computed as a left shift by a positive ``shift``, the
      product rounded at bit 31 when no right shift follows, then a rounding right shift
      (halves up) — the same result, as both roundings sit at the same bit;
    - ``WIDE``: as ``SINGLE`` on the whole sum, not saturated (16x8 layers: TFLite's int64
      requantization, the multiplier the reduced 16-bit one shifted up by 16);

    then add the output zero point and clamp.  Bit-exact with
    :func:`rcm_gen.reference.requantize` of the same rounding wherever the TFLite result
    fits int32 (``SINGLE`` and ``WIDE`` results outside int32, which TFLite's kernels leave
    undefined, are clamped).

    A pipeline of ``LATENCY`` register stages that moves only in cycles with ``en``: the
    value in ``value`` belongs to the inputs given ``LATENCY`` enabled cycles earlier.
    ``zero_point``, ``lo`` and ``hi`` are read at the output and must hold while values
    are in flight.  A tile's drain has ``ppu_lanes`` of them: identical modules,
    synthesized and timed once by the hierarchical flow.

    Parameters
    ----------
    config : TileConfig
        The tile (accumulator and value widths, parameter widths).

    Members
    -------
    en : In(1)
        Advance the pipeline.
    valid : In(1, init=1)
        The inputs hold a value to post-process.  With clock gating (the tile's
        ``clock_gating``) a stage loads only when it takes a valid value (each stage's
        registers then share one gated clock) and ``value`` of an invalid one is left
        unspecified; without, every stage moves with ``en``.  Unconnected: always valid.
    acc : In(signed(accumulator_width))
        The sum, bias included.
    param : In(requant_layout)
        The channel's multiplier, shift and rounding.
    zero_point, lo, hi : In(signed(out_value_bits))
        Output zero point and clamp range.
    saturated : Out(1)
        Combinational, at the input: the sum lies outside int32 and the rounding saturates
        it (not ``WIDE``).
    value : Out(signed(out_value_bits))
        The post-processed value.
    """

    LATENCY = 4

    def __init__(self, config: TileConfig) -> None:
        if not isinstance(config, TileConfig):
            raise TypeError(f"Post-processor config must be a TileConfig, not {config!r}")
        self._config = config
        v = signed(config.out_value_bits)
        super().__init__({
            "en": In(1),
            "valid": In(1, init=1),
            "acc": In(signed(config.mac.accumulator_width)),
            "param": In(requant_layout(config)),
            "zero_point": In(v),
            "lo": In(v),
            "hi": In(v),
            "saturated": Out(1),
            "value": Out(v),
        })

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "ppu"

    def share_key(self):
        """What makes two units the same module (see :mod:`rcm_gen.hierarchy`)."""
        return type(self), self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        v_shape = signed(cfg.out_value_bits)
        acc, par = self.acc, self.param
        # x1: the sum (saturated to int32 unless WIDE) shifted left; 33 bits hold every
        # shifted int32 whose single-rounded result fits int32, the accumulator's width
        # every WIDE sum
        x1_width = max(33, cfg.mac.accumulator_width)
        # Stage 1: saturate to int32, shift left, split the shift.
        over, under = acc > _MAX32, acc < _MIN32
        wide = par.rounding == Rounding.WIDE
        x = Signal(signed(32), name="x")
        m.d.comb += [x.eq(Mux(over, _MAX32, Mux(under, _MIN32, acc))),
                     self.saturated.eq((over | under) & ~wide)]
        shift = par.shift
        left = Mux(shift > 0, shift, 0)[:5]
        x1 = Signal(signed(x1_width), name="x1")
        mult1 = Signal(signed(32), name="mult1")
        right1 = Signal(5, name="right1")
        rnd1 = Signal(Rounding, name="rounding1")
        # with clock gating, each stage loads only a valid value (the valid bits of the
        # stages move with en)
        load = [self.en] * self.LATENCY
        if cfg.clock_gating:
            valid1, valid2, valid3 = (Signal(name=f"valid{i}") for i in (1, 2, 3))
            with m.If(self.en):
                m.d.sync += [valid1.eq(self.valid), valid2.eq(valid1), valid3.eq(valid2)]
            load = [self.en & self.valid, self.en & valid1, self.en & valid2,
                    self.en & valid3]
        with m.If(load[0]):
            with m.Switch(par.rounding):
                with m.Case(Rounding.SINGLE):
                    m.d.sync += x1.eq((x << left)[:33].as_signed())
                with m.Case(Rounding.WIDE):
                    m.d.sync += x1.eq((acc << left)[:x1_width].as_signed())
                with m.Default():  # DOUBLE: C++'s int32 shift wraps
                    m.d.sync += x1.eq((x << left)[:32].as_signed())
            m.d.sync += [mult1.eq(par.multiplier), right1.eq(Mux(shift < 0, -shift, 0)[:5]),
                         rnd1.eq(par.rounding)]
        # Stage 2: the product as two partial products (the low half of the multiplier is
        # zero in WIDE, where x1 is wide), and the product's sign (for DOUBLE's nudge, so
        # that stage 3 adds the product and its rounding constant at once).
        p_lo = Signal(signed(33 + 17), name="p_lo")
        p_hi = Signal(signed(x1_width + 16), name="p_hi")
        both_min2 = Signal(name="both_min")
        neg2 = Signal(name="negative2")
        right2 = Signal(5, name="right2")
        rnd2 = Signal(Rounding, name="rounding2")
        with m.If(load[1]):
            m.d.sync += [p_lo.eq(x1[:33].as_signed() * mult1[:16]),
                         p_hi.eq(x1 * mult1[16:].as_signed()),
                         both_min2.eq((x1 == _MIN32) & (mult1 == _MIN32)),
                         neg2.eq((x1 != 0) & (mult1 != 0) & ((x1 < 0) ^ (mult1 < 0))),
                         right2.eq(right1), rnd2.eq(rnd1)]
        # Stage 3: num = a·m + c in one sum, c the rounding constant: DOUBLE's nudge (2^30,
        # or 1 − 2^30 for a negative product), and num / 2^31 truncated toward zero; SINGLE
        # and WIDE: 2^30 when no right shift follows (else 0: the rounding then happens at
        # the right shift, at the same bit), and num >> 31.
        high_width = x1_width + 2
        double2 = rnd2 == Rounding.DOUBLE
        c = Mux(double2, Mux(neg2, Const(1 - (1 << 30), signed(32)),
                             Const(1 << 30, signed(32))),
                Mux(right2 == 0, Const(1 << 30, signed(32)), 0))
        num = Signal(signed(x1_width + 34), name="num")
        m.d.comb += num.eq(p_lo + (p_hi << 16) + c)
        floor = num >> 31
        # toward zero: a negative quotient with a remainder rounds up (num < 0 exactly when
        # the product is negative: the nudge never changes its sign)
        up = double2 & neg2 & (num[:31] != 0)
        high = Signal(signed(high_width), name="high")
        right3 = Signal(5, name="right3")
        double3 = Signal(name="double3")
        with m.If(load[2]):
            with m.If(double2):
                m.d.sync += high.eq(Mux(both_min2, _MAX32, (floor + up)[:32].as_signed()))
            with m.Else():
                m.d.sync += high.eq(floor[:high_width].as_signed())
            m.d.sync += [right3.eq(right2), double3.eq(double2)]
        # Stage 4: rounding right shift (halves away from zero for DOUBLE, up otherwise).
        mask = Signal(unsigned(32), name="mask")
        m.d.comb += mask.eq(((Const(1, unsigned(33)) << right3) - 1)[:32])
        remainder = high[:32] & mask
        threshold = (mask >> 1) + (double3 & (high < 0))
        q = Signal(signed(high_width + 1), name="q")
        with m.If(load[3]):
            m.d.sync += q.eq((high >> right3) + (remainder > threshold))
        # Output: zero point, clamp (a stage of its own, so that the drain's packing of the
        # values into the output word is not behind the shift and the rounding).
        y = Signal(signed(high_width + 2), name="y")
        m.d.comb += y.eq(q + self.zero_point)
        clamped = Mux(y < self.lo, self.lo, Mux(y > self.hi, self.hi, y))
        m.d.comb += self.value.eq(clamped.as_signed()[:v_shape.width].as_signed())
        return m
