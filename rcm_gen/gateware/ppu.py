"""The post-processing unit: an accumulator to the next layer's integer, as TFLite's int8
kernels compute it."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import requant_layout

__all__ = ["PostProcessor"]

_MIN32, _MAX32 = -(1 << 31), (1 << 31) - 1


class PostProcessor(wiring.Component):
    """One output channel per cycle: saturate the sum to int32, multiply by the channel's
    fixed-point multiplier (TFLite's ``MultiplyByQuantizedMultiplier``: a left shift for a
    positive ``shift``, the rounding doubling high multiply, a rounding right shift for a
    negative one), add the output zero point, clamp.  Bit-exact with
    :func:`rcm_gen.reference.requantize`.

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
    acc : In(signed(accumulator_width))
        The sum, bias included.
    param : In(requant_layout)
        The channel's multiplier and shift.
    zero_point, lo, hi : In(signed(out_value_bits))
        Output zero point and clamp range.
    saturated : Out(1)
        Combinational, at the input: the sum lies outside int32.
    value : Out(signed(out_value_bits))
        The post-processed value.
    """

    LATENCY = 3

    def __init__(self, config: TileConfig) -> None:
        if not isinstance(config, TileConfig):
            raise TypeError(f"Post-processor config must be a TileConfig, not {config!r}")
        self._config = config
        v = signed(config.out_value_bits)
        super().__init__({
            "en": In(1),
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
        # Stage 1: saturate to int32, shift left, split the shift.
        over, under = acc > _MAX32, acc < _MIN32
        x = Signal(signed(32), name="x")
        m.d.comb += [x.eq(Mux(over, _MAX32, Mux(under, _MIN32, acc))),
                     self.saturated.eq(over | under)]
        shift = par.shift
        left = Mux(shift > 0, shift, 0)[:5]
        x1 = Signal(signed(32), name="x1")
        mult1 = Signal(signed(32), name="mult1")
        right1 = Signal(5, name="right1")
        with m.If(self.en):
            m.d.sync += [x1.eq((x << left)[:32]), mult1.eq(par.multiplier),
                         right1.eq(Mux(shift < 0, -shift, 0)[:5])]
        # Stage 2: the 32x32 product as two 32x16 partial products.
        p_lo = Signal(signed(49), name="p_lo")
        p_hi = Signal(signed(48), name="p_hi")
        both_min2 = Signal(name="both_min")
        right2 = Signal(5, name="right2")
        with m.If(self.en):
            m.d.sync += [p_lo.eq(x1 * mult1[:16]), p_hi.eq(x1 * mult1[16:].as_signed()),
                         both_min2.eq((x1 == _MIN32) & (mult1 == _MIN32)),
                         right2.eq(right1)]
        # Stage 3: (a·m + nudge) / 2^31, truncating toward zero.
        ab = Signal(signed(64), name="ab")
        nudge = Mux(ab >= 0, Const(1 << 30, signed(32)), Const(1 - (1 << 30), signed(32)))
        num = Signal(signed(65), name="num")
        m.d.comb += [ab.eq(p_lo + (p_hi << 16)), num.eq(ab + nudge)]
        trunc = (num + Mux(num < 0, (1 << 31) - 1, 0)) >> 31
        high = Signal(signed(32), name="high")
        right3 = Signal(5, name="right3")
        with m.If(self.en):
            m.d.sync += [high.eq(Mux(both_min2, _MAX32, trunc[:32])), right3.eq(right2)]
        # Output: rounding right shift, zero point, clamp.
        mask = Signal(unsigned(32), name="mask")
        m.d.comb += mask.eq(((Const(1, unsigned(33)) << right3) - 1)[:32])
        remainder = high.as_unsigned() & mask
        threshold = (mask >> 1) + (high < 0)
        q = Signal(signed(33), name="q")
        m.d.comb += q.eq((high >> right3) + (remainder > threshold))
        y = Signal(signed(34), name="y")
        m.d.comb += y.eq(q + self.zero_point)
        clamped = Mux(y < self.lo, self.lo, Mux(y > self.hi, self.hi, y))
        m.d.comb += self.value.eq(clamped.as_signed()[:v_shape.width].as_signed())
        return m
