"""The tile's controller: walks a job's loop nest and drives the MACs and buffers."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import job_layout
from .modes import LaneMode

__all__ = ["Controller"]


class Controller(wiring.Component):
    """Computes one job at a time from an input bank into an output bank.

    Starts a job when its input bank is loaded (``in_ready[in_bank]``) and its output
    bank is free (``out_free[out_bank]``), copying the descriptor ``desc`` (the tile
    presents the descriptor of ``in_bank``).  Then, one cycle per step, it walks

        for mb, r, c (output pixel), for g, ky, kx (reduction)

    reading one activation word (zero-padded positions disable the MACs instead) and one
    P-word weight row, so each MAC adds one N-lane dot product per cycle.  The cycle after
    a pixel's last step reaches the accumulators, the P sums are written as one row of the
    output bank.  The next job can start the cycle after the last step of the current one;
    its MAC operations follow the current ones without a gap in the pipeline.

    Members
    -------
    desc : In(job_layout)
        Descriptor of the job in ``in_bank``.
    in_ready : In(2)
        Input banks holding a complete, not yet started job.
    out_free : In(2)
        Output banks that can be written.
    in_bank, out_bank : Out(1)
        Banks of the next (or current) job.
    start, release : Out(1)
        Pulses: a job started (in ``in_bank``/``out_bank``); its last step was issued (its
        input bank may be reloaded).
    done : Out(1)
        Pulse: the last result row of a job was written to bank ``done_bank``,
        ``done_rows`` rows in all.
    act_rd_addr, wgt_rd_addr : Out
        Read addresses of the activation and weight buffers (bank in the MSB part).
    mac_en, mac_clear : Out(1)
        MAC controls, aligned with the buffers' read data.
    mode : Out(LaneMode)
        Lane mode of the operation at the MAC inputs.
    act_signed : Out(1)
        Activation signedness of the operation at the MAC inputs.
    out_wr_en, out_wr_addr : Out
        Output buffer write (the data are the accumulators).
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        super().__init__({
            "desc": In(job_layout(config)),
            "in_ready": In(2),
            "out_free": In(2),
            "in_bank": Out(1),
            "out_bank": Out(1),
            "start": Out(1),
            "release": Out(1),
            "done": Out(1),
            "done_bank": Out(1),
            "done_rows": Out(range(config.out_buffer_depth + 1)),
            "act_rd_addr": Out(range(2 * config.act_buffer_depth)),
            "wgt_rd_addr": Out(range(2 * config.weight_buffer_depth)),
            "mac_en": Out(1),
            "mac_clear": Out(1),
            "mode": Out(LaneMode),
            "act_signed": Out(1),
            "out_wr_en": Out(1),
            "out_wr_addr": Out(range(2 * config.out_buffer_depth)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        layout = job_layout(cfg)
        d = Signal(layout)  # the running job's descriptor
        run = Signal()

        mbi = Signal.like(d.mb)
        r, c = Signal.like(d.tr), Signal.like(d.tc)
        g = Signal.like(d.ng)
        ky, kx = Signal.like(d.k), Signal.like(d.k)
        coord_bits = max(cfg.in_rows_max, cfg.in_cols_max).bit_length() + 2
        y0 = Signal(signed(coord_bits))  # input row of the pixel's window, may be < 0
        x0 = Signal(signed(coord_bits))
        grow = Signal(range(cfg.tn * cfg.in_rows_max + 1))  # g · in_h
        w_addr = Signal(range(cfg.weight_buffer_depth + 1))
        mb_base = Signal.like(w_addr)
        o_addr = Signal(range(cfg.out_buffer_depth + 1))

        can_start = (~run & self.in_ready.bit_select(self.in_bank, 1)
                     & self.out_free.bit_select(self.out_bank, 1))
        m.d.comb += self.start.eq(can_start)
        with m.If(can_start):
            m.d.sync += [
                run.eq(1), d.eq(self.desc),
                mbi.eq(0), r.eq(0), c.eq(0), g.eq(0), ky.eq(0), kx.eq(0),
                y0.eq(-self.desc.pad_top), x0.eq(-self.desc.pad_left),
                grow.eq(0), w_addr.eq(0), mb_base.eq(0), o_addr.eq(0),
            ]

        # -- the step issued this cycle -----------------------------------------------------
        iy = Signal(signed(coord_bits))
        ix = Signal(signed(coord_bits))
        m.d.comb += [iy.eq(y0 + ky), ix.eq(x0 + kx)]
        inside = (iy >= 0) & (iy < d.in_h) & (ix >= 0) & (ix < d.in_w)
        act_addr = Signal(range(cfg.act_buffer_depth))
        m.d.comb += act_addr.eq(((grow + iy) * d.in_w + ix)[:len(act_addr)])
        m.d.comb += [
            self.act_rd_addr.eq(act_addr + self.in_bank * cfg.act_buffer_depth),
            self.wgt_rd_addr.eq(w_addr + self.in_bank * cfg.weight_buffer_depth),
        ]

        kx_last = kx == d.k - 1
        ky_last = ky == d.k - 1
        g_last = g == d.ng - 1
        c_last = c == d.tc - 1
        r_last = r == d.tr - 1
        mb_last = mbi == d.mb - 1
        first = (g == 0) & (ky == 0) & (kx == 0)
        pixel_last = kx_last & ky_last & g_last
        job_last = pixel_last & c_last & r_last & mb_last

        with m.If(run):
            m.d.sync += kx.eq(kx + 1)
            with m.If(kx_last):
                m.d.sync += [kx.eq(0), ky.eq(ky + 1)]
                with m.If(ky_last):
                    m.d.sync += [ky.eq(0), g.eq(g + 1), grow.eq(grow + d.in_h)]
                    with m.If(g_last):
                        m.d.sync += [g.eq(0), grow.eq(0)]
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(pixel_last):
                m.d.sync += [w_addr.eq(mb_base), o_addr.eq(o_addr + 1),
                             c.eq(c + 1), x0.eq(x0 + d.s)]
                with m.If(c_last):
                    m.d.sync += [c.eq(0), x0.eq(-d.pad_left), r.eq(r + 1), y0.eq(y0 + d.s)]
                    with m.If(r_last):
                        m.d.sync += [r.eq(0), y0.eq(-d.pad_top), mbi.eq(mbi + 1),
                                     w_addr.eq(w_addr + 1), mb_base.eq(w_addr + 1)]
            with m.If(job_last):
                m.d.sync += [run.eq(0), self.in_bank.eq(~self.in_bank),
                             self.out_bank.eq(~self.out_bank)]
        m.d.comb += self.release.eq(run & job_last)

        # -- pipeline: read data (1 cycle), then the MAC's latency --------------------------
        # Stage 1 (aligned with read data and the MAC inputs).
        en1, clear1, last1, jlast1 = Signal(), Signal(), Signal(), Signal()
        mode1 = Signal(LaneMode)
        signed1 = Signal()
        oaddr1 = Signal(range(2 * cfg.out_buffer_depth))
        m.d.sync += [
            en1.eq(run & inside), clear1.eq(run & first), last1.eq(run & pixel_last),
            jlast1.eq(run & job_last), mode1.eq(d.mode), signed1.eq(d.act_signed),
            oaddr1.eq(o_addr + self.out_bank * cfg.out_buffer_depth),
        ]
        m.d.comb += [self.mac_en.eq(en1), self.mac_clear.eq(clear1),
                     self.mode.eq(mode1), self.act_signed.eq(signed1)]
        # Delay the write controls by the MAC latency: the sum is in the accumulator then.
        last_d, jlast_d, oaddr_d = last1, jlast1, oaddr1
        bank_d = Signal()
        m.d.sync += bank_d.eq(self.out_bank)
        rows_d = Signal.like(self.done_rows)
        m.d.sync += rows_d.eq(o_addr + 1)
        for i in range(cfg.mac.latency):
            nl, nj = Signal(name=f"last_d{i}"), Signal(name=f"jlast_d{i}")
            na = Signal.like(oaddr1, name=f"oaddr_d{i}")
            nb = Signal(name=f"bank_d{i}")
            nr = Signal.like(rows_d, name=f"rows_d{i}")
            m.d.sync += [nl.eq(last_d), nj.eq(jlast_d), na.eq(oaddr_d), nb.eq(bank_d),
                         nr.eq(rows_d)]
            last_d, jlast_d, oaddr_d, bank_d, rows_d = nl, nj, na, nb, nr
        m.d.comb += [
            self.out_wr_en.eq(last_d),
            self.out_wr_addr.eq(oaddr_d),
            self.done.eq(jlast_d),
            self.done_bank.eq(bank_d),
            self.done_rows.eq(rows_d),
        ]
        return m
