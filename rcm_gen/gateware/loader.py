"""The tile's loader: accepts a job and writes its activations and weights into a bank."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import act_layout, job_layout, wgt_layout

__all__ = ["Loader"]


class Loader(wiring.Component):
    """Accepts job descriptors and streams their data into alternate buffer banks.

    A job is accepted when the loader is idle and its next bank is free
    (``bank_free[bank]``); then activation words and weight rows are accepted in parallel,
    one per cycle each, written from address 0 of that bank, until each stream's ``last``
    beat.  The cycle after both ended, ``loaded`` pulses and the loader moves to the other
    bank.  Beats beyond a bank's depth are dropped (the host never sends them).

    Members
    -------
    job, act, wgt : In(stream.Signature(...))
        Descriptors, activation words, weight rows.
    bank_free : In(2)
        Which banks the loader may write.
    bank : Out(1)
        The bank the loader fills next (or is filling).
    accept, loaded : Out(1)
        Pulses: a job was accepted into ``bank`` / its data is complete in ``bank``.
    desc : Out(job_layout)
        The descriptor on the job stream (latched by the tile on ``accept``).
    act_wr_addr, act_wr_data, act_wr_en, wgt_wr_addr, wgt_wr_data, wgt_wr_en : Out
        Write ports of the activation and weight buffers (bank in the address MSB).
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        w = config.mac.width
        super().__init__({
            "job": In(stream.Signature(job_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "wgt": In(stream.Signature(wgt_layout(config))),
            "bank_free": In(2),
            "bank": Out(1),
            "accept": Out(1),
            "loaded": Out(1),
            "desc": Out(job_layout(config)),
            "act_wr_addr": Out(range(2 * config.act_buffer_depth)),
            "act_wr_data": Out(w),
            "act_wr_en": Out(1),
            "wgt_wr_addr": Out(range(2 * config.weight_buffer_depth)),
            "wgt_wr_data": Out(config.p * w),
            "wgt_wr_en": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        act_depth, wgt_depth = cfg.act_buffer_depth, cfg.weight_buffer_depth
        loading = Signal()
        act_done = Signal()
        wgt_done = Signal()
        act_addr = Signal(range(act_depth + 1))
        wgt_addr = Signal(range(wgt_depth + 1))

        m.d.comb += [
            self.desc.eq(self.job.payload),
            self.job.ready.eq(~loading & self.bank_free.bit_select(self.bank, 1)),
            self.accept.eq(self.job.valid & self.job.ready),
            self.act.ready.eq(loading & ~act_done),
            self.wgt.ready.eq(loading & ~wgt_done),
            self.loaded.eq(loading & act_done & wgt_done),
        ]
        with m.If(self.accept):
            m.d.sync += [loading.eq(1), act_done.eq(0), wgt_done.eq(0),
                         act_addr.eq(0), wgt_addr.eq(0)]
        with m.If(self.loaded):
            m.d.sync += [loading.eq(0), self.bank.eq(~self.bank)]

        # Activation words.
        act_beat = self.act.valid & self.act.ready
        m.d.comb += [
            self.act_wr_addr.eq(act_addr + self.bank * act_depth),
            self.act_wr_data.eq(self.act.payload.data),
            self.act_wr_en.eq(act_beat & (act_addr < act_depth)),
        ]
        with m.If(act_beat):
            with m.If(act_addr < act_depth):
                m.d.sync += act_addr.eq(act_addr + 1)
            with m.If(self.act.payload.last):
                m.d.sync += act_done.eq(1)

        # Weight rows.
        wgt_beat = self.wgt.valid & self.wgt.ready
        m.d.comb += [
            self.wgt_wr_addr.eq(wgt_addr + self.bank * wgt_depth),
            self.wgt_wr_data.eq(self.wgt.payload.data),
            self.wgt_wr_en.eq(wgt_beat & (wgt_addr < wgt_depth)),
        ]
        with m.If(wgt_beat):
            with m.If(wgt_addr < wgt_depth):
                m.d.sync += wgt_addr.eq(wgt_addr + 1)
            with m.If(self.wgt.payload.last):
                m.d.sync += wgt_done.eq(1)
        return m
