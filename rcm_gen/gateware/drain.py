"""The tile's drain: streams a job's result rows out of the output buffer."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import out_layout

__all__ = ["Drain"]


class Drain(wiring.Component):
    """Streams the rows of a completed output bank, in order, honouring backpressure.

    When bank ``bank`` holds a completed job (``bank_ready[bank]``), ``start`` pulses and
    rows ``0 .. rows-1`` go out on ``out``, the last with ``last`` set; when that beat is
    taken, ``done`` pulses and the drain moves to the other bank.  The buffer's read port
    (``rd_en``, ``rd_addr``, ``rd_data``; one cycle of latency, holding its data while
    ``rd_en`` is low) doubles as the output register.

    Members
    -------
    out : Out(stream.Signature(out_layout))
        Result rows.
    bank_ready : In(2)
        Output banks holding a completed job.
    rows : In
        Rows of the job in ``bank``.
    bank : Out(1)
        The bank drained next (or being drained).
    start, done : Out(1)
        Pulses: draining ``bank`` began / ended.
    rd_addr, rd_en, rd_data : the output buffer's read port.
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        layout = out_layout(config)
        super().__init__({
            "out": Out(stream.Signature(layout)),
            "bank_ready": In(2),
            "rows": In(range(config.out_buffer_depth + 1)),
            "bank": Out(1),
            "start": Out(1),
            "done": Out(1),
            "rd_addr": Out(range(2 * config.out_buffer_depth)),
            "rd_en": Out(1),
            "rd_data": In(layout["data"].shape),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        running = Signal()
        idx = Signal(range(cfg.out_buffer_depth + 1))
        count = Signal.like(idx)
        valid = Signal()
        last = Signal()

        m.d.comb += self.start.eq(~running & self.bank_ready.bit_select(self.bank, 1))
        with m.If(self.start):
            m.d.sync += [running.eq(1), idx.eq(0), count.eq(self.rows)]

        m.d.comb += [
            self.out.valid.eq(valid),
            self.out.payload.data.eq(self.rd_data),
            self.out.payload.last.eq(last),
            self.rd_addr.eq(idx + self.bank * cfg.out_buffer_depth),
            self.rd_en.eq(running & (~valid | self.out.ready)),
        ]
        with m.If(self.rd_en):
            with m.If(idx < count):
                m.d.sync += [valid.eq(1), last.eq(idx == count - 1), idx.eq(idx + 1)]
            with m.Else():
                m.d.sync += valid.eq(0)
        m.d.comb += self.done.eq(valid & self.out.ready & last)
        with m.If(self.done):
            m.d.sync += [running.eq(0), valid.eq(0), last.eq(0), self.bank.eq(~self.bank)]
        return m
