"""The Reconfigurable 2D-Convolution Module (RCM) tile."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .buffers import Buffer
from .controller import Controller
from .drain import Drain
from .layouts import act_layout, job_layout, out_layout, wgt_layout
from .loader import Loader
from .mac import MAC

__all__ = ["Tile"]


class Tile(wiring.Component):
    """A convolution tile of P precision-scalable MACs with double-banked buffers.

    A host sends a job descriptor on ``job`` and the job's activation words on ``act``
    (layout ``[g][row][col]``, a word packing the lanes of N consecutive input channels)
    and weight rows on ``wgt`` (layout ``[mb][g][ky][kx]``, a row holding one word for each
    of the P output channels of block ``mb``); it receives the job's results on ``out``,
    one row of P sums per output pixel (layout ``[mb][r][c]``).  The loader, the
    controller and the drain work on different jobs at once: job k+1 loads while job k
    computes and job k−1 drains.

    Parameters
    ----------
    config : TileConfig
        The design point.

    Members
    -------
    job : In(stream.Signature(job_layout(config)))
    act : In(stream.Signature(act_layout(config)))
    wgt : In(stream.Signature(wgt_layout(config)))
    out : Out(stream.Signature(out_layout(config)))
    """

    def __init__(self, config: TileConfig) -> None:
        if not isinstance(config, TileConfig):
            raise TypeError(f"Tile config must be a TileConfig, not {config!r}")
        self._config = config
        super().__init__({
            "job": In(stream.Signature(job_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "wgt": In(stream.Signature(wgt_layout(config))),
            "out": Out(stream.Signature(out_layout(config))),
        })

    @property
    def config(self) -> TileConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        w = cfg.mac.width
        acc = cfg.mac.accumulator_width

        m.submodules.loader = loader = Loader(cfg)
        m.submodules.controller = ctrl = Controller(cfg)
        m.submodules.drain = drain = Drain(cfg)
        m.submodules.act_buf = act_buf = Buffer(w, 2 * cfg.act_buffer_depth)
        m.submodules.weight_buf = wgt_buf = Buffer(cfg.p * w, 2 * cfg.weight_buffer_depth)
        m.submodules.out_buf = out_buf = Buffer(cfg.p * acc, 2 * cfg.out_buffer_depth)

        wiring.connect(m, wiring.flipped(self.job), loader.job)
        wiring.connect(m, wiring.flipped(self.act), loader.act)
        wiring.connect(m, wiring.flipped(self.wgt), loader.wgt)
        wiring.connect(m, drain.out, wiring.flipped(self.out))

        # Buffers.
        m.d.comb += [
            act_buf.wr_addr.eq(loader.act_wr_addr), act_buf.wr_data.eq(loader.act_wr_data),
            act_buf.wr_en.eq(loader.act_wr_en),
            wgt_buf.wr_addr.eq(loader.wgt_wr_addr), wgt_buf.wr_data.eq(loader.wgt_wr_data),
            wgt_buf.wr_en.eq(loader.wgt_wr_en),
            act_buf.rd_addr.eq(ctrl.act_rd_addr), wgt_buf.rd_addr.eq(ctrl.wgt_rd_addr),
            out_buf.rd_addr.eq(drain.rd_addr), out_buf.rd_en.eq(drain.rd_en),
            drain.rd_data.eq(out_buf.rd_data),
        ]

        # The MACs: MAC i computes output channel i of each P-wide block.
        accs = []
        for i in range(cfg.p):
            mac = MAC(cfg.mac)
            m.submodules[f"mac{i}"] = mac
            m.d.comb += [
                mac.a.eq(act_buf.rd_data),
                mac.w.eq(wgt_buf.rd_data[i * w:(i + 1) * w]),
                mac.mode.eq(ctrl.mode),
                mac.act_signed.eq(ctrl.act_signed),
                mac.en.eq(ctrl.mac_en),
                mac.clear.eq(ctrl.mac_clear),
            ]
            accs.append(mac.acc)
        m.d.comb += [
            out_buf.wr_addr.eq(ctrl.out_wr_addr),
            out_buf.wr_data.eq(Cat(*accs)),
            out_buf.wr_en.eq(ctrl.out_wr_en),
        ]

        # Bank hand-over between loader, controller and drain.  An input bank is busy from
        # the loader accepting a job into it until the controller issued the job's last
        # step; it is ready from the end of loading until the controller starts the job.
        # An output bank is busy from the controller starting a job into it until the drain
        # sent its last row; it is ready from the last row written until the drain starts.
        in_busy, in_ready = Signal(2), Signal(2)
        out_busy, out_ready = Signal(2), Signal(2)
        desc = [Signal(job_layout(cfg), name=f"desc{b}") for b in range(2)]
        rows = [Signal.like(ctrl.done_rows, name=f"rows{b}") for b in range(2)]
        for b in range(2):
            with m.If(loader.accept & (loader.bank == b)):
                m.d.sync += [in_busy[b].eq(1), desc[b].eq(loader.desc)]
            with m.If(ctrl.release & (ctrl.in_bank == b)):
                m.d.sync += in_busy[b].eq(0)
            with m.If(loader.loaded & (loader.bank == b)):
                m.d.sync += in_ready[b].eq(1)
            with m.If(ctrl.start & (ctrl.in_bank == b)):
                m.d.sync += in_ready[b].eq(0)
            with m.If(ctrl.start & (ctrl.out_bank == b)):
                m.d.sync += out_busy[b].eq(1)
            with m.If(drain.done & (drain.bank == b)):
                m.d.sync += out_busy[b].eq(0)
            with m.If(ctrl.done & (ctrl.done_bank == b)):
                m.d.sync += [out_ready[b].eq(1), rows[b].eq(ctrl.done_rows)]
            with m.If(drain.start & (drain.bank == b)):
                m.d.sync += out_ready[b].eq(0)
        m.d.comb += [
            loader.bank_free.eq(~in_busy),
            ctrl.desc.eq(desc[0]),
            ctrl.in_ready.eq(in_ready),
            ctrl.out_free.eq(~out_busy),
            drain.bank_ready.eq(out_ready),
            drain.rows.eq(rows[0]),
        ]
        with m.If(ctrl.in_bank):
            m.d.comb += ctrl.desc.eq(desc[1])
        with m.If(drain.bank):
            m.d.comb += drain.rows.eq(rows[1])
        return m
