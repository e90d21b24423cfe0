"""The tile's drain: post-processes a finished output block and streams it out."""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import job_layout, out_layout, requant_layout
from .modes import LaneMode
from .ppu import PostProcessor

__all__ = ["Drain", "drain_layout"]


def drain_layout(cfg: TileConfig) -> data.StructLayout:
    """What the drain needs to know of a finished block: its result rows (pixels of all
    its output-channel blocks), its output rows and columns, and how its sums leave the
    tile."""
    j = job_layout(cfg)
    return data.StructLayout({
        "rows": range(cfg.m_blocks * cfg.tr * cfg.tc + 1),
        "tr": j["tr"].shape,
        "tc": j["tc"].shape,
        "raw": 1,
        "out_mode": LaneMode,
        "out_zp": j["out_zp"].shape,
        "out_min": j["out_min"].shape,
        "out_max": j["out_max"].shape,
    })


def _case(m: Module, k: int, count: int):
    """``Case(k)`` of a switch over 0 .. count-1, the last one as the default (so that
    every encoding is covered)."""
    return m.Default() if k == count - 1 else m.Case(k)


class Drain(wiring.Component):
    """Streams the rows of a finished output bank, in order, honouring backpressure.

    When bank ``bank`` holds a finished block (``bank_ready[bank]``), ``start`` pulses and its
    rows go out on ``out`` in ``[mb][r][c]`` order, one per output pixel (from the memory of the
    MAC column that computed the pixel: pixel ``i`` of a block, in raster order, is column
    ``i mod q`` of the block's group ``⌊i/q⌋``), the last with ``last`` set; when that beat
    is taken, ``done`` pulses and the drain moves to the other bank.  A raw block's rows are
    the sums themselves.  Otherwise each row's P sums pass ``ppu_lanes`` at a time through the
    post-processing units (with the multipliers and shifts of the row's output-channel block,
    from the bank's parameter memory) and are packed at the output lane width.  The whole
    pipeline holds while a row waits to be taken.

    Members
    -------
    out : Out(stream.Signature(out_layout))
        Result rows.
    bank_ready : In(2)
        Output banks holding a finished block.
    info : In(drain_layout)
        The block in ``bank``.
    bank : Out(1)
        The bank drained next (or being drained).
    start, done : Out(1)
        Pulses: draining ``bank`` began / ended.
    rd_addr, rd_en, rd_data : the output bank's read ports: one address for the memories of
        all q MAC columns, their data (one cycle of latency, held while ``rd_en`` is low).
    par_rd_addr, par_rd_en, par_rd_data : the parameter memory's read port (bank in the
        MSB part).
    saturated : Out(1)
        Pulse: a sum outside int32 was saturated by post-processing.
    next_drains, next_rd_addr, next_rd_en, next_par_rd_addr : Out (with ``column_stage``)
        The next cycle's banks being drained (bit ``b``: the drain runs on bank ``b``),
        read address, read enable (of both memories) and parameter address, for
        registers by the memories (each MAC's slice of the array's output banks has its
        own): so the drain's reads reach the memories from registers beside them, in the
        same cycles.
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        layout = out_layout(config)
        super().__init__({
            "out": Out(stream.Signature(layout)),
            "bank_ready": In(2),
            "info": In(drain_layout(config)),
            "bank": Out(1),
            "start": Out(1),
            "done": Out(1),
            "rd_addr": Out(range(config.out_buffer_depth)),
            "rd_en": Out(1),
            "rd_data": In(data.ArrayLayout(config.p * config.mac.accumulator_width, config.q)),
            "par_rd_addr": Out(range(2 * config.m_blocks)),
            "par_rd_en": Out(1),
            "par_rd_data": In(data.ArrayLayout(requant_layout(config), config.p)),
            "saturated": Out(1),
            # (with column_stage: next cycle's read, registered in every MAC's slice)
            **({"next_drains": Out(2), "next_rd_addr": Out(range(config.out_buffer_depth)),
                "next_rd_en": Out(1), "next_par_rd_addr": Out(range(2 * config.m_blocks))}
               if config.column_stage else {}),
        })

    def _row_stage(self, m: Module, adv, row, v1, last1, chunk1, end1):
        """The drain's row stage (with ``column_stage``): a row and its parameters
        registered when its first chunk moves on, the chunk's bookkeeping one stage
        later; the bookkeeping, row and parameters after the stage."""
        v2, last2, chunk2, end2 = (Signal(name="v2"), Signal(name="last2"),
                                   Signal.like(chunk1, name="chunk2"), Signal(name="end2"))
        with m.If(adv):
            m.d.sync += [v2.eq(v1), last2.eq(last1), chunk2.eq(chunk1), end2.eq(end1)]
        row2 = Signal.like(row, name="row2")
        par2 = Signal.like(self.par_rd_data, name="par2")
        with m.If(adv & v1 & (chunk1 == 0)):
            m.d.sync += [row2.eq(row), par2.eq(self.par_rd_data)]
        return v2, last2, chunk2, end2, row2, par2

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        p, acc_w, w = cfg.p, cfg.mac.accumulator_width, cfg.mac.width
        u = cfg.ppu_lanes
        chunks = cfg.ppu_chunks
        info = Signal(drain_layout(cfg))  # the block being drained
        running = Signal()
        q = cfg.q
        idx = Signal(range(cfg.m_blocks * cfg.tr * cfg.tc + 1))  # next row to issue
        chunk = Signal(max(1, (chunks - 1).bit_length()))  # next chunk of that row
        r = Signal(range(cfg.tr + 1))                      # the row's output pixel
        c = Signal(range(cfg.tc + 1))
        # its group (its row of the MAC columns' memories) and its place in the group (the
        # MAC column): a block's pixels are consecutive groups of q in raster order
        group = Signal(range(cfg.out_buffer_depth + 1))
        blk = Signal(range(cfg.m_blocks + 1))              # its output-channel block
        column = Signal(max(1, (q - 1).bit_length()))

        out_valid = Signal()
        out_last = Signal()
        out_data = Signal(p * acc_w)
        skid = cfg.column_stage  # (see the output register below)
        if skid:
            # the pipeline moves unless a row waits in the skid register: the output's
            # ready reaches no further than the output
            skid_valid = Signal()
            adv = ~skid_valid
        else:
            adv = ~out_valid | self.out.ready  # the pipeline moves unless a row waits

        m.d.comb += self.start.eq(~running & self.bank_ready.bit_select(self.bank, 1))
        with m.If(self.start):
            m.d.sync += [running.eq(1), info.eq(self.info), idx.eq(0), chunk.eq(0),
                         r.eq(0), c.eq(0), blk.eq(0), group.eq(0), column.eq(0)]

        # Issue: one chunk of a row per cycle (the whole row when raw).
        row_chunks_last = info.raw | (chunk == chunks - 1)
        issue = running & adv & (idx < info.rows)
        m.d.comb += [
            self.rd_addr.eq(group[:len(self.rd_addr)]),
            self.rd_en.eq(issue & (chunk == 0)),
            self.par_rd_addr.eq(blk + self.bank * cfg.m_blocks),
            self.par_rd_en.eq(issue & (chunk == 0)),
        ]
        with m.If(issue):
            with m.If(row_chunks_last):
                m.d.sync += [idx.eq(idx + 1), chunk.eq(0), c.eq(c + 1),
                             column.eq(column + 1)]
                block_last = (c == info.tc - 1) & (r == info.tr - 1)
                with m.If(c == info.tc - 1):
                    m.d.sync += [c.eq(0), r.eq(r + 1)]
                    with m.If(r == info.tr - 1):
                        m.d.sync += [r.eq(0), blk.eq(blk + 1)]
                with m.If(block_last | (column == q - 1)):
                    m.d.sync += [group.eq(group + 1), column.eq(0)]
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)

        # Stage 1: the row (and its block's parameters) out of the memories.
        v1, last1, chunk1, end1 = Signal(), Signal(), Signal.like(chunk), Signal()
        column1 = Signal.like(column)
        with m.If(adv):
            m.d.sync += [v1.eq(issue), last1.eq(idx == info.rows - 1), chunk1.eq(chunk),
                         end1.eq(row_chunks_last)]
        with m.If(issue & (chunk == 0)):
            m.d.sync += column1.eq(column)
        row = Signal(cfg.p * acc_w)
        # (an AND-OR of the columns' rows by a one-hot select: a shift by the column
        # number would be synthesized as a barrel shifter of all q rows)
        m.d.comb += row.eq(functools.reduce(operator.or_, (
            Mux(column1 == j, self.rd_data[j], 0) for j in range(cfg.q))))
        if cfg.column_stage:
            # A stage more: the row from the MAC columns into a register here (the
            # parameters, read at the same time, wait beside it), so that no path runs
            # from the columns' memories across the array into the units.
            v1, last1, chunk1, end1, row, par = self._row_stage(m, adv, row, v1, last1,
                                                                chunk1, end1)
        else:
            par = self.par_rd_data

        # Raw rows go straight to the output register.
        # Post-processed ones: the chunk's sums and parameters into the units.
        # (each unit a submodule of the drain: a module of wiring alone around them made
        # Yosys's ABC9 fail)
        units = [PostProcessor(cfg) for _ in range(u)]
        for i, unit in enumerate(units):
            m.submodules["ppu" if u == 1 else f"ppu{i}"] = unit
            m.d.comb += [unit.en.eq(adv), unit.valid.eq(v1 & ~info.raw),
                         unit.zero_point.eq(info.out_zp),
                         unit.lo.eq(info.out_min), unit.hi.eq(info.out_max)]
        with m.Switch(chunk1):
            for k in range(chunks):
                with _case(m, k, chunks):
                    for i in range(u):
                        ch = k * u + i
                        m.d.comb += [
                            units[i].acc.eq(row[ch * acc_w:(ch + 1) * acc_w]),
                            units[i].param.eq(par[ch]),
                        ]
        # The chunk's bookkeeping travels beside the units.
        vq, lastq, chunkq, endq = v1 & ~info.raw, last1, chunk1, end1
        valids = []
        for i in range(PostProcessor.LATENCY):
            nv, nl, nc, ne = (Signal(name=f"v_q{i}"), Signal(name=f"last_q{i}"),
                              Signal.like(chunk, name=f"chunk_q{i}"), Signal(name=f"end_q{i}"))
            with m.If(adv):
                m.d.sync += [nv.eq(vq), nl.eq(lastq), nc.eq(chunkq), ne.eq(endq)]
            vq, lastq, chunkq, endq = nv, nl, nc, ne
            valids.append(nv)
        # a unit's saturation is of the sums in its second stage: counted as they move on
        saturated = Cat(*(unit.saturated for unit in units)).any()
        m.d.comb += self.saturated.eq(valids[1] & adv & saturated)

        # The output register: its next value built combinationally and taken under one
        # enable, so that clock gating stops all of its bits while no row is being packed
        # (a per-slice enable for each lane mode and chunk left it clocked every cycle).
        # With ``column_stage`` a row is packed in a register of its own, and a finished
        # row goes to the output register or, while that one waits, to a skid register
        # (the pipeline then stands until the output register takes it): the same cycles
        # while the output is taken at once, and no path from the output's ready into
        # the pipeline and the memories' reads.
        taken = out_valid & self.out.ready
        with m.If(taken):
            m.d.sync += out_valid.eq(0)
        pack = Signal.like(out_data, name="pack_data") if skid else out_data
        nxt = Signal.like(out_data, name="out_data_next")
        m.d.comb += nxt.eq(pack)
        if skid:
            finished, finished_last = Signal(), Signal()

        def finish(last):
            """Statements that a row ends here, ``last`` its block's last."""
            if skid:
                m.d.comb += [finished.eq(1), finished_last.eq(last)]
            else:
                m.d.sync += [out_valid.eq(1), out_last.eq(last)]

        load_raw = adv & v1 & info.raw
        with m.If(load_raw):
            m.d.comb += nxt.eq(row)
            finish(last1)
        with m.If(adv & vq):
            with m.If(chunkq == 0):  # a new row: the bits above its packed values are 0
                m.d.comb += nxt.eq(0)
            # Pack the chunk's values at the output lane width, channel 0 lowest (the
            # loader refuses lane modes the design lacks: the last case takes them all).
            with m.Switch(info.out_mode):
                for j, n in enumerate(cfg.mac.lanes):
                    lane = w // n
                    last_case = j == len(cfg.mac.lanes) - 1
                    with (m.Default() if last_case else m.Case(LaneMode.for_lanes(n))):
                        with m.Switch(chunkq):
                            for k in range(chunks):
                                with _case(m, k, chunks):
                                    for i in range(u):
                                        ch = k * u + i
                                        m.d.comb += nxt[ch * lane:(ch + 1) * lane].eq(
                                            units[i].value.as_unsigned()[:lane])
            with m.If(endq):
                finish(lastq)
        with m.If(load_raw | (adv & vq)):
            m.d.sync += pack.eq(nxt)
        if skid:
            skid_data = Signal.like(out_data, name="skid_data")
            skid_last = Signal()
            with m.If(~out_valid | self.out.ready):  # the output register takes a row
                with m.If(skid_valid):  # (none finishes then: the pipeline stands)
                    m.d.sync += [out_data.eq(skid_data), out_last.eq(skid_last),
                                 out_valid.eq(1), skid_valid.eq(0)]
                with m.Elif(finished):
                    m.d.sync += [out_data.eq(nxt), out_last.eq(finished_last),
                                 out_valid.eq(1)]
            with m.Elif(finished):
                m.d.sync += [skid_data.eq(nxt), skid_last.eq(finished_last),
                             skid_valid.eq(1)]

        m.d.comb += [
            self.out.valid.eq(out_valid),
            self.out.payload.data.eq(out_data),
            self.out.payload.last.eq(out_last),
            self.done.eq(taken & out_last),
        ]
        with m.If(self.done):
            m.d.sync += [running.eq(0), self.bank.eq(~self.bank)]
        if skid:
            self._next_read(m, running, info, idx, chunk, r, c, group, blk, column, issue,
                            row_chunks_last, out_valid, finished, skid_valid)
        return m

    def _next_read(self, m: Module, running, info, idx, chunk, r, c, group, blk, column,
                   issue, row_chunks_last, out_valid, finished, skid_valid) -> None:
        """The next cycle's read (``next_*``, with ``column_stage``): the next values of
        the registers it is made of, as :meth:`elaborate` updates them.  Whether rows are
        left to issue comes from a count of them (``left``, ``info.rows - idx``) compared
        with constants, not from an adder and a comparison."""
        cfg = self._config
        start, done, rows_in = self.start, self.done, self.info.rows
        row_issued = issue & row_chunks_last
        left = Signal.like(idx, name="rows_left")
        with m.If(start):
            m.d.sync += left.eq(rows_in)
        with m.Elif(row_issued):
            m.d.sync += left.eq(left - 1)
        running_n = Mux(start, 1, Mux(done, 0, running))
        bank_n = Mux(done, ~self.bank, self.bank)
        more_n = Mux(start, rows_in != 0, Mux(row_issued, left != 1, left != 0))
        first_chunk_n = start | row_issued | (~issue & (chunk == 0))
        block_last = (c == info.tc - 1) & (r == info.tr - 1)
        group_n = Mux(start, 0, Mux(row_issued & (block_last | (column == cfg.q - 1)),
                                    group + 1, group))
        blk_n = Mux(start, 0, Mux(row_issued & block_last, blk + 1, blk))
        skid_n = ~(~out_valid | self.out.ready) & (finished | skid_valid)
        m.d.comb += [
            self.next_drains.eq(Cat(running_n & ~bank_n, running_n & bank_n)),
            self.next_rd_addr.eq(group_n[:len(self.next_rd_addr)]),
            self.next_rd_en.eq(running_n & ~skid_n & more_n & first_chunk_n),
            self.next_par_rd_addr.eq(blk_n + bank_n * cfg.m_blocks),
        ]
