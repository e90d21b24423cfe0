"""The Reconfigurable 2D-Convolution Module (RCM) tile."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .buffers import Buffer
from .column import Column
from .controller import Controller
from .drain import Drain, drain_layout
from .layouts import (
    act_layout,
    job_layout,
    out_layout,
    par_layout,
    requant_layout,
    status_layout,
    wgt_layout,
)
from .loader import Loader

__all__ = ["Tile"]


class Tile(wiring.Component):
    """A convolution tile of P precision-scalable MACs with double-banked buffers, on-chip
    accumulation and post-processing.

    A host sends a job descriptor on ``job`` and the job's activation words on ``act``
    (layout ``[g][row][col]``, a word packing the consecutive input channels of one
    cycle: N in N-lane mode, (W/A)·(W/B) in a fusion mode A×B),
    weight rows on ``wgt`` (layout ``[mb][g][ky][kx]``, a row holding one word for each of
    the P output channels of block ``mb``) and, when the descriptor says ``params``, one row
    of per-channel parameters per block on ``par``.  The jobs of an output block (``first``
    … ``last``) accumulate in the output buffer; after the last one the block's rows
    (layout ``[mb][r][c]``) leave on ``out``: post-processed and packed, or raw.  The
    loader, the controller and the drain work on different jobs at once: job k+1 loads
    while job k computes and the previous block drains.

    ``status`` reports a refused job (see :class:`~rcm_gen.gateware.modes.TileError`;
    after one, the tile discards all input and sends nothing more until reset) and a
    saturated sum.

    Parameters
    ----------
    config : TileConfig
        The design point.

    Members
    -------
    job : In(stream.Signature(job_layout(config)))
    act : In(stream.Signature(act_layout(config)))
    wgt : In(stream.Signature(wgt_layout(config)))
    par : In(stream.Signature(par_layout(config)))
    out : Out(stream.Signature(out_layout(config)))
    status : Out(status_layout(config))
    """

    def __init__(self, config: TileConfig) -> None:
        if not isinstance(config, TileConfig):
            raise TypeError(f"Tile config must be a TileConfig, not {config!r}")
        self._config = config
        super().__init__({
            "job": In(stream.Signature(job_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "wgt": In(stream.Signature(wgt_layout(config))),
            "par": In(stream.Signature(par_layout(config))),
            "out": Out(stream.Signature(out_layout(config))),
            "status": Out(status_layout(config)),
        })

    @property
    def config(self) -> TileConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        aw, ww = cfg.act_word_bits, cfg.weight_word_bits
        rq = requant_layout(cfg)
        params = data.ArrayLayout(par_layout(cfg)["data"].shape.elem_shape, cfg.p)
        requants = data.ArrayLayout(rq, cfg.p)

        m.submodules.loader = loader = Loader(cfg)
        m.submodules.controller = ctrl = Controller(cfg)
        m.submodules.drain = drain = Drain(cfg)
        nb, q = cfg.act_banks, cfg.q
        act_bufs = [Buffer(aw, 2 * cfg.act_buffer_depth, read_enable=False) for _ in range(nb)]
        for b, buf in enumerate(act_bufs):
            m.submodules["act_buf" if nb == 1 else f"act_buf{b}"] = buf
        m.submodules.weight_buf = wgt_buf = Buffer(cfg.p * ww, 2 * cfg.weight_buffer_depth,
                                                     read_enable=False)
        m.submodules.param_buf = par_buf = Buffer(params.size, 2 * cfg.m_blocks, read_enable=False)
        m.submodules.outpar_buf = outpar_buf = Buffer(requants.size, 2 * cfg.m_blocks)
        # the MAC array: a column per pixel of the patch, each with its output banks
        cols = [Column(cfg) for _ in range(q)]
        for j, col in enumerate(cols):
            m.submodules[f"col{j}"] = col

        wiring.connect(m, wiring.flipped(self.job), loader.job)
        wiring.connect(m, wiring.flipped(self.act), loader.act)
        wiring.connect(m, wiring.flipped(self.wgt), loader.wgt)
        wiring.connect(m, wiring.flipped(self.par), loader.par)
        wiring.connect(m, drain.out, wiring.flipped(self.out))

        # Input buffers: written by the loader, read by the controller.
        # bank (row, column) takes word column mod act_beat of a beat addressed to its row
        # and its group of act_beat columns
        by, bx = cfg.act_banks_yx
        beat = cfg.act_beat
        for b, buf in enumerate(act_bufs):
            row, col = divmod(b, bx)
            word = col % beat
            hit = loader.act_wr_en & loader.act_wr_mask[word]
            if by > 1:
                hit &= loader.act_wr_row == row
            if bx > beat:
                hit &= loader.act_wr_col == col // beat
            m.d.comb += [
                buf.wr_addr.eq(loader.act_wr_addr),
                buf.wr_data.eq(loader.act_wr_data[word * aw:(word + 1) * aw]),
                buf.wr_en.eq(hit),
                buf.rd_addr.eq(ctrl.act_rd_addr[b]), ctrl.act_data[b].eq(buf.rd_data),
            ]
        m.d.comb += [
            wgt_buf.wr_addr.eq(loader.wgt_wr_addr), wgt_buf.wr_data.eq(loader.wgt_wr_data),
            wgt_buf.wr_en.eq(loader.wgt_wr_en),
            par_buf.wr_addr.eq(loader.par_wr_addr), par_buf.wr_data.eq(loader.par_wr_data),
            par_buf.wr_en.eq(loader.par_wr_en),
            wgt_buf.rd_addr.eq(ctrl.wgt_rd_addr), ctrl.wgt_data.eq(wgt_buf.rd_data),
            par_buf.rd_addr.eq(ctrl.par_rd_addr),
        ]
        par_row = params(par_buf.rd_data)

        # Output banks: written (and read back for partial sums) by the controller, read by
        # the drain once a block is finished.
        drain_running = Signal()
        with m.If(drain.start):
            m.d.sync += drain_running.eq(1)
        with m.If(drain.done):
            m.d.sync += drain_running.eq(0)
        psum_bank = Signal()
        m.d.sync += psum_bank.eq(ctrl.psum_rd_bank)
        wr_en, drains = Signal(2), Signal(2)
        for b in range(2):
            m.d.comb += [
                wr_en[b].eq(ctrl.out_wr_en & (ctrl.out_wr_bank == b)),
                drains[b].eq(drain_running & (drain.bank == b)),
            ]
        for j, col in enumerate(cols):
            m.d.comb += [
                col.act.eq(ctrl.act_operand[j]),
                col.wgt.eq(ctrl.wgt_operand),
                col.mode.eq(ctrl.mode),
                col.act_signed.eq(ctrl.act_signed),
                col.en.eq(ctrl.mac_en),
                col.clear.eq(ctrl.mac_clear),
                col.init_from.eq(ctrl.init_from),
                col.psum_bank.eq(psum_bank),
                col.wr_addr.eq(ctrl.out_wr_addr),
                col.drain_bank.eq(drain.bank),
                drain.rd_data[j].eq(col.drain_data),
            ]
            for i in range(cfg.p):
                m.d.comb += col.bias[i].eq(par_row[i].bias)
            m.d.comb += [col.wr_en.eq(wr_en), col.psum_rd_addr.eq(ctrl.psum_rd_addr)]
            if cfg.column_stage:  # the next cycle's, registered in each MAC's slice
                m.d.comb += [col.drains.eq(drain.next_drains),
                             col.drain_rd_addr.eq(drain.next_rd_addr),
                             col.drain_rd_en.eq(drain.next_rd_en)]
            else:
                m.d.comb += [col.drains.eq(drains), col.drain_rd_addr.eq(drain.rd_addr),
                             col.drain_rd_en.eq(drain.rd_en)]

        # The output banks' requantization parameters: copied by the controller from the
        # parameter buffer (the block's last job), read by the drain.
        outpar_row = Signal(requants)
        for i in range(cfg.p):
            m.d.comb += [outpar_row[i].multiplier.eq(par_row[i].multiplier),
                         outpar_row[i].shift.eq(par_row[i].shift),
                         outpar_row[i].rounding.eq(par_row[i].rounding)]
        if cfg.column_stage:  # its read from registers by it, loaded a cycle ahead
            par_rd_addr = Signal.like(drain.par_rd_addr, name="outpar_rd_addr_r")
            par_rd_en = Signal(name="outpar_rd_en_r")
            m.d.sync += [par_rd_addr.eq(drain.next_par_rd_addr),
                         par_rd_en.eq(drain.next_rd_en)]
        else:
            par_rd_addr, par_rd_en = drain.par_rd_addr, drain.par_rd_en
        m.d.comb += [
            outpar_buf.wr_addr.eq(ctrl.outpar_wr_addr), outpar_buf.wr_data.eq(outpar_row),
            outpar_buf.wr_en.eq(ctrl.outpar_wr_en),
            outpar_buf.rd_addr.eq(par_rd_addr), outpar_buf.rd_en.eq(par_rd_en),
            drain.par_rd_data.eq(outpar_buf.rd_data),
        ]

        # Bank hand-over between loader, controller and drain.  An input bank is busy from
        # the loader accepting a job into it until the controller released it (its job's
        # last reads are done); it is ready from the end of loading until the controller
        # starts the job.  An output bank is busy from the controller starting a block's
        # first job in it until the drain sent the block's last row; it is ready from the
        # block's last row written until the drain starts.
        in_busy, in_ready = Signal(2), Signal(2)
        out_busy, out_ready = Signal(2), Signal(2)
        desc = [Signal(job_layout(cfg), name=f"desc{b}") for b in range(2)]
        pixels = [Signal.like(loader.out_pixels, name=f"pixels{b}") for b in range(2)]
        rows = [Signal.like(loader.out_rows, name=f"rows{b}") for b in range(2)]
        info = [Signal(drain_layout(cfg), name=f"info{b}") for b in range(2)]
        for b in range(2):
            with m.If(loader.accept & (loader.bank == b)):
                m.d.sync += in_busy[b].eq(1)
            # (the descriptor of a free bank, whether accepted or not: a refused one stops
            # the tile; no check in front of the enable of its registers)
            with m.If(loader.taken & (loader.bank == b)):
                m.d.sync += [desc[b].eq(loader.desc), pixels[b].eq(loader.out_pixels),
                             rows[b].eq(loader.out_rows)]
            with m.If(ctrl.release & (ctrl.release_bank == b)):
                m.d.sync += in_busy[b].eq(0)
            with m.If(loader.loaded & (loader.bank == b)):
                m.d.sync += in_ready[b].eq(1)
            with m.If(ctrl.start & (ctrl.in_bank == b)):
                m.d.sync += in_ready[b].eq(0)
            with m.If(ctrl.start & ctrl.desc.first & (ctrl.out_bank == b)):
                m.d.sync += out_busy[b].eq(1)
            with m.If(drain.done & (drain.bank == b)):
                m.d.sync += out_busy[b].eq(0)
            with m.If(ctrl.start & ctrl.desc.last & (ctrl.out_bank == b)):
                m.d.sync += [
                    info[b].rows.eq(Mux(ctrl.in_bank, rows[1], rows[0])),
                    info[b].tr.eq(ctrl.desc.tr), info[b].tc.eq(ctrl.desc.tc),
                    info[b].raw.eq(ctrl.desc.raw),
                    info[b].out_mode.eq(ctrl.desc.out_mode),
                    info[b].out_zp.eq(ctrl.desc.out_zp),
                    info[b].out_min.eq(ctrl.desc.out_min),
                    info[b].out_max.eq(ctrl.desc.out_max),
                ]
            with m.If(ctrl.done & ctrl.done_last & (ctrl.done_bank == b)):
                m.d.sync += out_ready[b].eq(1)
            with m.If(drain.start & (drain.bank == b)):
                m.d.sync += out_ready[b].eq(0)
        m.d.comb += [
            loader.bank_free.eq(~in_busy),
            ctrl.desc.eq(desc[0]),
            ctrl.desc_pixels.eq(Mux(ctrl.in_bank, pixels[1], pixels[0])),
            ctrl.in_ready.eq(in_ready),
            ctrl.out_free.eq(~out_busy),
            drain.bank_ready.eq(out_ready),
            drain.info.eq(info[0]),
        ]
        with m.If(ctrl.in_bank):
            m.d.comb += ctrl.desc.eq(desc[1])
        with m.If(drain.bank):
            m.d.comb += drain.info.eq(info[1])

        # Status.
        overflow = Signal()
        with m.If(drain.saturated):
            m.d.sync += overflow.eq(1)
        m.d.comb += [self.status.error.eq(loader.error), self.status.overflow.eq(overflow)]
        return m
