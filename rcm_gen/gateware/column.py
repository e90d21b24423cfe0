"""A column of the tile's MAC array: the P MACs of one output pixel and their output
memories."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .buffers import Buffer
from .controller import InitFrom
from .layouts import param_layout
from .mac import MAC
from .modes import LaneMode, Mode

__all__ = ["Column"]


class Column(wiring.Component):
    """The P MACs that compute one pixel of a patch (MAC ``i``: output channel ``i`` of
    each P-wide block) and the column's two output banks, each a memory of rows of the P
    accumulators.

    Every column of a tile is the same module: the tile wires a column's activation
    operand and its drained rows, and broadcasts the rest (weights, controls, addresses)
    to all of them.

    Members
    -------
    act : In(act_word_bits)
        The column's activation operand.
    wgt : In(P · weight_word_bits)
        The weight row: one word per MAC, MAC 0 lowest.
    mode, act_signed, en, clear : In
        MAC controls.
    init_from : In(InitFrom)
        What the sums that start in this cycle's accumulator update start from: the
        partial sum read from bank ``psum_bank``, the channel's ``bias``, or 0.
    bias : In(ArrayLayout(signed(BIAS_BITS), P))
        The block's biases.
    psum_bank : In(1)
        The output bank the partial sums are read from.
    wr_addr : In, wr_en : In(2)
        Write of the accumulators as one row of bank 0 / 1.
    rd_addr : In(ArrayLayout(range(depth), 2)), rd_en : In(2)
        Read port of each bank.
    drain_bank : In(1)
        The bank whose read data leave on ``drain_data``.
    drain_data : Out(P · accumulator_width)
        A row read for the drain.
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        depth = config.out_buffer_depth
        super().__init__({
            "act": In(config.act_word_bits),
            "wgt": In(config.p * config.weight_word_bits),
            "mode": In(Mode if config.mac.is_fused else LaneMode),
            "act_signed": In(1),
            "en": In(1),
            "clear": In(1),
            "init_from": In(InitFrom),
            "bias": In(data.ArrayLayout(param_layout(config)["bias"].shape, config.p)),
            "psum_bank": In(1),
            "wr_addr": In(range(depth)),
            "wr_en": In(2),
            "rd_addr": In(data.ArrayLayout(range(depth), 2)),
            "rd_en": In(2, init=0b11),
            "drain_bank": In(1),
            "drain_data": Out(config.p * config.mac.accumulator_width),
        })

    @property
    def config(self) -> TileConfig:
        return self._config

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "mac_column"

    def share_key(self):
        """What makes two columns the same module (see :mod:`rcm_gen.hierarchy`)."""
        return type(self), self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        ww, acc = cfg.weight_word_bits, cfg.mac.accumulator_width
        banks = [Buffer(cfg.p * acc, cfg.out_buffer_depth, transparent=True)
                 for _ in range(2)]
        for b, buf in enumerate(banks):
            m.submodules[f"out_buf{b}"] = buf
            m.d.comb += [
                buf.wr_addr.eq(self.wr_addr), buf.wr_en.eq(self.wr_en[b]),
                buf.rd_addr.eq(self.rd_addr[b]), buf.rd_en.eq(self.rd_en[b]),
            ]
        # (Muxes, not conditional assignments with constant defaults: Icarus would not
        # evaluate those before one of their inputs changes.)
        psum = Mux(self.psum_bank, banks[1].rd_data, banks[0].rd_data)
        m.d.comb += self.drain_data.eq(Mux(self.drain_bank, banks[1].rd_data,
                                           banks[0].rd_data))
        accs = []
        for i in range(cfg.p):
            mac = MAC(cfg.mac, with_init=True)
            m.submodules[f"mac{i}"] = mac
            m.d.comb += [
                mac.a.eq(self.act),
                mac.w.eq(self.wgt[i * ww:(i + 1) * ww]),
                mac.mode.eq(self.mode),
                mac.act_signed.eq(self.act_signed),
                mac.en.eq(self.en),
                mac.clear.eq(self.clear),
            ]
            with m.Switch(self.init_from):
                with m.Case(InitFrom.PARTIAL):
                    m.d.comb += mac.init.eq(psum[i * acc:(i + 1) * acc].as_signed())
                with m.Case(InitFrom.BIAS):
                    m.d.comb += mac.init.eq(self.bias[i])
                with m.Default():
                    m.d.comb += mac.init.eq(0)
            accs.append(mac.acc)
        for buf in banks:
            m.d.comb += buf.wr_data.eq(Cat(*accs))
        return m
