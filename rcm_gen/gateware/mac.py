"""The precision-scalable multiply-accumulate unit."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import MacConfig
from .modes import LaneMode, Mode
from .multiplier import DSPMacMultiplier, make_multiplier
from .primitives import ecp5_mult

__all__ = ["MAC"]


class MAC(wiring.Component):
    """A multiplier of the configured architecture followed by an accumulator.

    Each cycle, ``acc <= (init if clear else acc) + (product if en else 0)``, where the
    product is that of the operands presented ``config.pipeline`` cycles earlier (``en``
    and ``clear`` travel down the pipeline with their operands; ``init`` does not: it is
    taken in the cycle the delayed ``clear`` reaches the accumulator, and is 0 without
    ``with_init``).  The accumulator is ``config.accumulator_width`` bits: wide enough for
    ``config.reduction`` worst-case products.

    The ``dsp`` architecture registers its two narrow products, not their sum: the
    multipliers (an FPGA's DSP blocks) feed the pipeline register directly, and the sum
    is made in the accumulator's cycle, its rounding bit the accumulator adder's carry in.
    Its second stage registers the multipliers' operands (formed from the lanes of the
    mode), not the operand words, so that the multipliers start from flip-flops too.  These
    registers are inside its multiplier
    (:class:`~rcm_gen.gateware.multiplier.DSPMacMultiplier`).

    Parameters
    ----------
    config : MacConfig
        The design point.
    with_init : bool
        Add the ``init`` port (a tile starts an output pixel from its bias or from the
        partial sum of earlier jobs).

    Members
    -------
    a : In(config.act_word_bits)
        Packed activations (W bits; wider for fusion, see
        :class:`~rcm_gen.gateware.multiplier.FusionMultiplier`).
    w : In(config.weight_word_bits)
        Packed weights.
    mode : In(LaneMode), or In(Mode) for fusion
        Lane count of this operation, or the (activation, weight) lane counts of a fusion
        mode (:func:`~rcm_gen.gateware.modes.mode_port_value`).
    act_signed : In(1)
        Activations are signed.
    en : In(1)
        Accumulate this product.
    clear : In(1)
        Start a new sum (with ``en``, the accumulator becomes ``init`` plus this product).
    init : In(signed(config.accumulator_width)), with ``with_init`` only
        The value a new sum starts from, aligned with the accumulator (see above).
    acc : Out(signed(config.accumulator_width))
        The running sum.
    """

    def __init__(self, config: MacConfig, *, with_init: bool = False) -> None:
        if not isinstance(config, MacConfig):
            raise TypeError(f"MAC config must be a MacConfig, not {config!r}")
        self._config = config
        self._with_init = bool(with_init)
        ports = {
            "a": In(config.act_word_bits),
            "w": In(config.weight_word_bits),
            "mode": In(Mode if config.is_fused else LaneMode),
            "act_signed": In(1),
            "en": In(1),
            "clear": In(1),
            "acc": Out(signed(config.accumulator_width)),
        }
        if self._with_init:
            ports["init"] = In(signed(config.accumulator_width))
        super().__init__(ports)

    @property
    def config(self) -> MacConfig:
        return self._config

    def share_key(self):
        """What makes two MACs the same module (see :mod:`rcm_gen.hierarchy`)."""
        return type(self), self._config, self._with_init

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        a, w, mode, act_signed = self.a, self.w, self.mode, self.act_signed
        en, clear = self.en, self.clear
        if cfg.arch == "fixed" and cfg.dsp_block == "ecp5":
            return self._fixed_in_dsp_block(m)
        if cfg.pipeline >= 2 and cfg.arch == "dsp":
            # the multipliers' operands are registered (DSPProducts), not the words
            en_r, clear_r = Signal(name="en_r"), Signal(name="clear_r")
            m.d.sync += [en_r.eq(en), clear_r.eq(clear)]
            en, clear = en_r, clear_r
        elif cfg.pipeline >= 2:
            a_r = Signal.like(a, name="a_r")
            w_r = Signal.like(w, name="w_r")
            mode_r = Signal.like(mode, name="mode_r")
            signed_r = Signal(name="act_signed_r")
            en_r, clear_r = Signal(name="en_r"), Signal(name="clear_r")
            # with clock gating the operand registers load only with a valid operand
            # (their flip-flops share the gated clock of ``en``); without, every cycle
            with m.If(en if cfg.clock_gating else 1):
                m.d.sync += [a_r.eq(a), w_r.eq(w), mode_r.eq(mode),
                             signed_r.eq(act_signed)]
            m.d.sync += [en_r.eq(en), clear_r.eq(clear)]
            a, w, mode, act_signed, en, clear = a_r, w_r, mode_r, signed_r, en_r, clear_r
        init = self.init if self._with_init else 0
        if cfg.arch == "dsp":
            m.submodules.multiplier = mult = DSPMacMultiplier(cfg)
            m.d.comb += [mult.a.eq(a), mult.w.eq(w), mult.mode.eq(mode),
                         mult.act_signed.eq(act_signed), mult.en.eq(en)]
            value, carry = mult.value, mult.round
            if cfg.pipeline >= 1:
                en_p, clear_p = Signal(name="en_p"), Signal(name="clear_p")
                m.d.sync += [en_p.eq(en), clear_p.eq(clear)]
                en, clear = en_p, clear_p
            # the products are zero while not enabled: the accumulator then holds, and
            # with clock gating says so (its flip-flops share one gated clock)
            with m.If((en | clear) if cfg.clock_gating else 1):
                m.d.sync += self.acc.eq(Mux(clear, init, self.acc) + value + carry)
            return m
        m.submodules.multiplier = mult = make_multiplier(cfg)
        m.d.comb += [mult.a.eq(a), mult.w.eq(w), mult.mode.eq(mode),
                     mult.act_signed.eq(act_signed)]

        product = mult.product
        if cfg.pipeline >= 1:
            product_r = Signal.like(mult.product, name="product_r")
            en_p, clear_p = Signal(name="en_p"), Signal(name="clear_p")
            with m.If(en if cfg.clock_gating else 1):
                m.d.sync += product_r.eq(mult.product)
            m.d.sync += [en_p.eq(en), clear_p.eq(clear)]
            product, en, clear = product_r, en_p, clear_p

        # the accumulator holds while neither enabled nor cleared: with clock gating it
        # says so, and its flip-flops share one gated clock
        with m.If((en | clear) if cfg.clock_gating else 1):
            m.d.sync += self.acc.eq(Mux(clear, init, self.acc) + Mux(en, product, 0))
        return m

    def _fixed_in_dsp_block(self, m: Module) -> Module:
        """The fixed MAC with ``dsp_block`` ``ecp5``: its (W+1)xW multiplier an ECP5
        ``MULT18X18D`` whose input registers are the operands' stage (``pipeline`` 2) and
        whose output register is the product's (``pipeline`` 1 or 2).  They load every
        cycle (the primitive's clock enable is not used): ``en`` and ``clear`` travel in
        flip-flops beside them, and a product that is not a term is not added."""
        cfg = self._config
        width = cfg.width
        a_ext = Cat(self.a, self.a[width - 1] & self.act_signed)
        mult, product = ecp5_mult(a_ext.as_signed(), self.w.as_signed(),
                                  input_regs=cfg.pipeline >= 2, output_reg=cfg.pipeline >= 1)
        m.submodules.multiplier = mult
        en, clear = self.en, self.clear
        for stage in range(cfg.pipeline):
            en_s, clear_s = Signal(name=f"en_{stage}"), Signal(name=f"clear_{stage}")
            m.d.sync += [en_s.eq(en), clear_s.eq(clear)]
            en, clear = en_s, clear_s
        init = self.init if self._with_init else 0
        term = product[:cfg.product_width].as_signed()
        with m.If((en | clear) if cfg.clock_gating else 1):
            m.d.sync += self.acc.eq(Mux(clear, init, self.acc) + Mux(en, term, 0))
        return m
