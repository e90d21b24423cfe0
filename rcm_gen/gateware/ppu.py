"""The post-processing unit: an accumulator to the next layer's integer, as TFLite's integer
kernels compute it (int8 and 16x8, in LiteRT's double rounding or TFLite Micro's single
rounding)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .arith import Columns, Compressor, carry_select, carry_select_sums, register_columns, rows
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
      (``TFLITE_SINGLE_ROUNDING``), computed as a left shift by a positive ``shift``, then
      the product with its rounding constant shifted right at once;
    - ``WIDE``: as ``SINGLE`` on the whole sum, not saturated (16x8 layers: TFLite's int64
      requantization, the multiplier the reduced 16-bit one shifted up by 16);

    then add the output zero point and clamp.  Bit-exact with
    :func:`rcm_gen.reference.requantize` of the same rounding wherever the TFLite result
    fits int32 (``SINGLE`` and ``WIDE`` results outside int32, which TFLite's kernels leave
    undefined, are clamped).

    A pipeline of ``LATENCY`` register stages that moves only in cycles with ``en``: the
    value in ``value`` belongs to the inputs given ``LATENCY`` enabled cycles earlier.  No
    stage holds a long carry chain: the product is Booth rows compressed to two rows (or,
    with the tile's ``ppu_product`` ``dsp``, partial products of at most 18×18 bits, one
    DSP block each on an FPGA), summed a slice at a time (or on the FPGA's carry chain),
    and the zero point and clamp are decided in a few bits more than the output's.
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
        The sum in the second stage (the inputs two enabled cycles earlier) lies outside
        int32 and the rounding saturates it (not ``WIDE``).
    value : Out(signed(out_value_bits))
        The post-processed value.
    """

    LATENCY = 7
    #: the width of a slice of stage 4's carry-select adder
    _CHUNK = 12

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

    def _booth_products(self, m: Module, x1: Value, mult1: Value, load: Value, n: int
                        ) -> Columns:
        """The product as a radix-4 Booth row of ``x1`` for each digit of ``mult1`` (a
        row's sign bit inverted and compensated by a constant), compressed to two rows
        and registered: no carry chain longer than the compressor's."""
        w = len(x1)
        cols = Columns(n)
        constant = 0
        x_ext = Cat(x1, x1[w - 1])        # x1 in w + 1 bits
        x_dbl = Cat(Const(0, 1), x1)      # 2·x1 in w + 1 bits
        for j in range(16):
            pos = 2 * j
            y0 = Const(0, 1) if j == 0 else mult1[pos - 1]
            y1, y2 = mult1[pos], mult1[pos + 1]
            one = y1 ^ y0
            two = (y2 & ~y1 & ~y0) | (~y2 & y1 & y0)
            row = Signal(w + 1, name=f"booth{j}")
            m.d.comb += row.eq((Mux(one, x_ext, 0) | Mux(two, x_dbl, 0)) ^ y2.replicate(w + 1))
            cols.add_value(pos, row[:w])
            cols.add_bit(pos + w, ~row[w])
            constant -= 1 << (pos + w)
            cols.add_bit(pos, y2)
        cols.add_constant(constant)
        return register_columns(m, Compressor(m, "product_csa").compress(cols), load,
                                "product")

    @staticmethod
    def _dsp_products(m: Module, x1: Value, mult1: Value, load: Value, n: int) -> Columns:
        """The product as registered partial products of Yosys's multiplications, each at
        most 18×18 bits signed, which FPGA flows map to one DSP block each: 17-bit slices of
        x1 (unsigned, the top one signed) by the halves of mult1 (the low half unsigned);
        x1 beyond 33 bits only by the high half (the low half is zero in WIDE, where x1 is
        wide)."""
        w = len(x1)
        cols = Columns(n)
        constant = 0
        for half, (m_lo, m_hi) in enumerate(((0, 16), (16, 32))):
            mh = mult1[m_lo:m_hi]
            mh = mh.as_signed() if half else mh
            top = 33 if half == 0 else w
            for x_lo in range(0, top, 17):
                x_hi = min(x_lo + 17, top)
                xs = x1[x_lo:x_hi]
                xs = xs.as_signed() if x_hi == top else xs
                p = Signal(signed(x_hi - x_lo + 17), name=f"p{half}_{x_lo}")
                with m.If(load):
                    m.d.sync += p.eq(xs * mh)
                pos, msb = x_lo + m_lo, len(p) - 1
                # signed: the sign bit inverted, compensated by a constant
                cols.add_value(pos, p[:msb])
                cols.add_bit(pos + msb, ~p[msb])
                constant -= 1 << (pos + msb)
        cols.add_constant(constant)
        return cols

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        acc, par = self.acc, self.param
        ov = cfg.out_value_bits
        # x1: the sum (saturated to int32 unless WIDE) shifted left; 33 bits hold every
        # shifted int32 whose single-rounded result fits int32, the accumulator's width
        # every WIDE sum
        w = max(33, cfg.mac.accumulator_width)
        n = w + 33  # the product plus its rounding constant, signed
        dsp = cfg.ppu_dsp_or_booth == "dsp"
        # with clock gating, each stage loads only a valid value (the valid bits of the
        # stages move with en)
        load = [self.en] * self.LATENCY
        if cfg.clock_gating:
            valids = [Signal(name=f"valid{i}") for i in range(1, self.LATENCY)]
            with m.If(self.en):
                m.d.sync += [v.eq(prev) for v, prev in zip(valids, [self.valid, *valids][:-1],
                                                               strict=True)]
            load = [self.en & v for v in [self.valid, *valids]]

        # Stage 0: the sum and its parameters registered (the sum arrives through the
        # drain's multiplexers from the output buffer).  Stage 1: whether it lies outside
        # int32 (comparisons as long as the accumulator).
        acc_in = Signal.like(acc, name="acc_in")
        par_in = Signal.like(par, name="param_in")
        with m.If(load[0]):
            m.d.sync += [acc_in.eq(acc), par_in.eq(par)]
        over, under = acc_in > _MAX32, acc_in < _MIN32
        acc0 = Signal.like(acc, name="acc0")
        over0, under0 = Signal(name="over0"), Signal(name="under0")
        par0 = Signal.like(par, name="param0")
        with m.If(load[1]):
            m.d.sync += [acc0.eq(acc_in), over0.eq(over), under0.eq(under), par0.eq(par_in)]
        m.d.comb += self.saturated.eq((over0 | under0) & (par0.rounding != Rounding.WIDE))
        acc, par = acc0, par0

        # Stage 2: saturate to int32, shift left, split the shift; where the rounding
        # constant goes: 2^30 (DOUBLE's nudge, the same for both signs once its quotient
        # is taken as a floor: see stage 5), or 2^(30 + right) (SINGLE and WIDE: the whole
        # rounding at once, (x·M + 2^(30+r)) >> (31+r)).
        x = Signal(signed(32), name="x")
        m.d.comb += x.eq(Mux(over0, _MAX32, Mux(under0, _MIN32, acc)))
        shift = par.shift
        left = Mux(shift > 0, shift, 0)[:5]
        right = Mux(shift < 0, -shift, 0)[:5]
        x1 = Signal(signed(w), name="x1")
        mult1 = Signal(signed(32), name="mult1")
        right1 = Signal(5, name="right1")
        rnd1 = Signal(Rounding, name="rounding1")
        const1 = Signal(range(64), name="round_bit1")
        with m.If(load[2]):
            with m.Switch(par.rounding):
                with m.Case(Rounding.SINGLE):
                    m.d.sync += x1.eq((x << left)[:33].as_signed())
                with m.Case(Rounding.WIDE):
                    m.d.sync += x1.eq((acc << left)[:w].as_signed())
                with m.Default():  # DOUBLE: C++'s int32 shift wraps
                    m.d.sync += x1.eq((x << left)[:32].as_signed())
            m.d.sync += [mult1.eq(par.multiplier), right1.eq(right), rnd1.eq(par.rounding),
                         const1.eq(Mux(par.rounding == Rounding.DOUBLE, 30, 30 + right))]

        # Stage 3: the product x1·mult1, as columns of bits to be summed with the rounding
        # constant in stage 4.
        if dsp:
            cols2 = self._dsp_products(m, x1, mult1, load[3], n)
        else:
            cols2 = self._booth_products(m, x1, mult1, load[3], n)
        both_min2 = Signal(name="both_min")
        right2 = Signal(5, name="right2")
        double2 = Signal(name="double2")
        const2 = Signal(range(64), name="round_bit2")
        with m.If(load[3]):
            m.d.sync += [both_min2.eq((x1 == _MIN32) & (mult1 == _MIN32)),
                         right2.eq(right1), double2.eq(rnd1 == Rounding.DOUBLE),
                         const2.eq(const1)]

        # Stage 4: the product's rows and 2^const2 summed (a slice at a time for either
        # carry-in: no carry chain longer than a slice).
        for p in range(30, 62):
            cols2.add_bit(p, const2 == p)
        a, b = rows(Compressor(m, "sum_csa").compress(cols2))
        if dsp:  # an FPGA's carry chain adds the rows at once
            num3 = Signal(n, name="num3")
            with m.If(load[4]):
                m.d.sync += num3.eq(a + b)
        else:
            sums = carry_select_sums(m, a, b, load[4], self._CHUNK, "num")
        both_min3 = Signal(name="both_min3")
        right3 = Signal(5, name="right3")
        double3 = Signal(name="double3")
        # where the rounding bit is (bit right − 1, none for no shift) and the bits under
        # it, as masks decoded a stage ahead
        at3 = Signal(31, name="round_at3")
        below3 = Signal(30, name="below3")
        with m.If(load[4]):
            m.d.sync += [both_min3.eq(both_min2), right3.eq(right2), double3.eq(double2),
                         at3.eq(Cat(*(right2 == i + 1 for i in range(31)))),
                         below3.eq(Cat(*(right2 > i + 1 for i in range(30))))]

        # Stage 5: num = x1·mult1 + c; its high part num >> 31 is DOUBLE's doubling high
        # multiply (TFLite's (ab + nudge) / 2^31 truncated toward zero equals
        # floor((ab + 2^30) / 2^31) for either sign of ab), saturated where both operands
        # are int32's minimum; then the right shift: DOUBLE rounds half away from zero (the
        # rounding bit: the highest bit shifted out, unless the value is negative and the
        # bits below it are all zero); SINGLE and WIDE were rounded by c.
        num = (num3 if dsp else carry_select(sums)).as_signed()
        high = Signal(signed(32), name="high")
        m.d.comb += high.eq(Mux(both_min3, _MAX32, num[31:63]))
        t = Mux(double3, high, num[31:].as_signed())
        q = Signal(signed(w + 2), name="q")
        round4 = Signal(name="round4")
        round_bit = ((high[:31] & at3).any()
                     & (~high[31] | (high[:30] & below3).any()))
        with m.If(load[5]):
            m.d.sync += [q.eq(t >> right3), round4.eq(double3 & round_bit)]

        # Stage 6: zero point and clamp: clamp(q + round, lo - zp, hi - zp) + zp, the
        # bounds' differences registered (the bounds hold while values are in flight), q
        # compared in a few bits more than the output's where it fits them.
        diff = signed(ov + 1)
        bounds = [Signal(diff, name=nm) for nm in ("lo_zp", "lo_zp_1", "hi_zp", "hi_zp_1")]
        lo_zp = self.lo - self.zero_point
        hi_zp = self.hi - self.zero_point
        with m.If(self.en):
            m.d.sync += [bounds[0].eq(lo_zp), bounds[1].eq(lo_zp - 1),
                         bounds[2].eq(hi_zp), bounds[3].eq(hi_zp - 1)]
        short = ov + 2
        qs = q[:short].as_signed()
        top = q[short - 1:]
        fits = (top == 0) | (top == (1 << len(top)) - 1)
        neg = q[-1]
        low_bound = Mux(round4, bounds[1], bounds[0])
        high_bound = Mux(round4, bounds[3], bounds[2])
        is_low, is_high = Signal(name="is_low"), Signal(name="is_high")
        y = Signal(signed(ov), name="y")
        with m.If(load[6]):
            m.d.sync += [is_low.eq(Mux(fits, qs < low_bound, neg)),
                         is_high.eq(Mux(fits, qs > high_bound, ~neg)),
                         # q + zp + round in one adder, round its carry-in
                         y.eq((Cat(round4, q[:ov]) + Cat(round4, self.zero_point))[1:ov + 1])]
        # Output: the clamp's choice (a multiplexer in front of the drain's packing).
        m.d.comb += self.value.eq(Mux(is_low, self.lo, Mux(is_high, self.hi, y)))
        return m
