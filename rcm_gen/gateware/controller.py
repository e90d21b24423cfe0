"""The tile's controller: walks a job's loop nest and drives the MACs and buffers."""

from __future__ import annotations

import functools
import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import job_layout
from .loader import Loader
from .modes import LaneMode, Mode

__all__ = ["ADDRESS_STAGES", "OPERAND_STAGES", "Controller", "InitFrom", "Pixel", "operand_stages",
           "release_delay", "step_latency", "weight_read_stage"]


class InitFrom(enum.Enum, shape=2):
    """What an output pixel's sum starts from."""

    PARTIAL = 0  #: the sum of the block's earlier jobs, in the output buffer
    BIAS = 1     #: the channel's bias (a block's first job, with parameters)
    ZERO = 2     #: 0 (a block's first job without parameters)


#: Register stages between a step's issue and its buffers' read: the pixels' window
#: positions (row and column in the bank, the bank, inside or not), the row's product by
#: the bank's row length, and the read addresses
ADDRESS_STAGES = 3

#: Register stages between a step's issue and its operands at the MAC inputs: the read
#: addresses, the buffers' read data and the operand registers (a block RAM's read data
#: come late in the cycle on an FPGA: they go through no more than a multiplexer); one
#: more with ``crossbar_stage`` (:func:`operand_stages`)
OPERAND_STAGES = ADDRESS_STAGES + 2


def operand_stages(config: TileConfig) -> int:
    """Register stages between a step's issue and its operands at the MAC inputs:
    :data:`OPERAND_STAGES`, and the crossbar's register with ``crossbar_stage``."""
    return OPERAND_STAGES + int(config.crossbar_stage)


def weight_read_stage(config: TileConfig) -> int:
    """Cycles from a step's issue to its weight row's read address at the weight buffer:
    two stages before the operands reach the MACs (the read data, then the operand
    registers), :data:`ADDRESS_STAGES` without ``crossbar_stage`` and one more with it."""
    return operand_stages(config) - 2


def step_latency(config: TileConfig) -> int:
    """Cycles from a step's issue to its accumulator update less one: the operand stages
    (:func:`operand_stages`) and the MAC's latency, less one (the cycle model's
    ``lat``)."""
    return config.mac.latency + operand_stages(config) - 1


def release_delay(config: TileConfig) -> int:
    """Cycles from a job's last step's issue to its input bank's release (the
    controller's ``release``): the bank is released once no read of the job is to come
    after the loader's first write into it.  The loader accepts a job the cycle after the
    release at the earliest, and writes its first beat :attr:`Loader.WRITE_DELAY` cycles
    later, in the clock edge that ends the cycle after that.  The last reads are the
    activation and weight reads of the last step (in the edge that ends cycle issue +
    :data:`ADDRESS_STAGES`, the weights' at :func:`weight_read_stage`) and its bias read
    (issue + :func:`step_latency` − 1)."""
    last_read = max(weight_read_stage(config), step_latency(config) - 1)
    return max(0, last_read - (Loader.WRITE_DELAY + 2))


def _delay(m: Module, value, cycles: int, name: str):
    """``value`` delayed by ``cycles`` clock cycles (``value`` itself for 0)."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def _pick(choices) -> object:
    """The word whose condition holds, as an AND-OR of ``(condition, word)`` pairs (at
    most one condition holds; none gives 0)."""
    return functools.reduce(operator.or_, [Mux(cond, word, 0) for cond, word in choices])


def _times_stride(m: Module, s, x, s_max: int, name: str) -> Signal:
    """``s · x`` for a stride ``s`` of 1 … ``s_max``, as a choice among constant
    multiplications (shifts and adds): a multiplier would be a DSP block on an FPGA, in
    the path that moves a pixel."""
    out = Signal(len(x) + s_max.bit_length(), name=name)
    with m.Switch(s):
        for k in range(1, s_max + 1):
            with m.Case(k) if k < s_max else m.Default():
                m.d.comb += out.eq(_times_constant(x, k))
    return out


def _times_constant(x, k: int):
    """``k · x`` as shifts and adds."""
    terms = [x << i for i in range(k.bit_length()) if k >> i & 1]
    return functools.reduce(operator.add, terms) if terms else Const(0)


def _coord_bits(config: TileConfig) -> int:
    """Bits of a signed input coordinate (a window's may be below 0 or past the edge, and
    a pixel of a job's last group past its last row)."""
    return max(config.in_rows_max, config.in_cols_max,
               config.s_max * (config.tr + config.q) + config.k_max).bit_length() + 2


class Pixel(wiring.Component):
    """One pixel of the group the controller computes at once: where its activation is
    this cycle, and its activation operand the next.

    The ``q`` pixels of a group are consecutive output pixels of the job in raster order
    (rows of ``tc``): pixel ``j`` of group ``g`` is output pixel ``g·q + j``.  A pixel keeps
    its output row and column (``oy``, ``ox``) and the input position of its window's
    corner (``s·oy − pad_top``, ``s·ox − pad_left``): ``load`` sets them to its place in
    the first group (``oy0``, ``ox0``; ``s``, ``pad_top`` and ``pad_left`` of the job
    starting, or running), ``adv`` moves them on by one group (``dy`` rows and ``dx``
    columns, ``q = dy·tc + dx``, one row more where the column passes ``tc``; the window
    corner by the stride's multiples ``s_dy``, ``s_dy1`` = s·(dy + 1), ``s_dx``, ``s_tc``,
    which the controller registers when a job starts).  It reads input position (corner +
    (``ky``, ``kx``)); it is *inside* when that position is in the input and the pixel in
    the job (``oy`` < ``tr``).  An inside pixel reads the bank whose
    bit of ``hit`` is set (the bank of the position's low bits; no bit for a pixel outside)
    at ``addr`` (the position in that bank, channel group row ``grow``, ``wb`` columns a
    row); both come two cycles after the step's issue (``wb`` is read in the cycle after
    it: a job's last step is issued before the next job's descriptor is taken).  The
    cycle after the controller's read address stage (:data:`ADDRESS_STAGES` after the
    issue; the banks register their read data), ``operand`` is that bank's word of
    ``act_data``, or ``pad_word`` for a pixel that was not inside (its cycle's).  (Banks
    are selected one-hot, as AND-OR: a shift by the bank number would be synthesized as
    a barrel shifter of all the banks' words.)  With ``crossbar_stage`` that choice takes
    two cycles: in the read data's cycle the pixel picks one word in each group of
    ``2**lo`` banks (``lo`` the low half of the bank number's bits) into a register,
    loaded when ``data_en`` (a step's read data are there), and in the next cycle one of
    the groups' words; ``operand`` then comes a cycle later.  The driver plans only jobs
    whose groups read distinct banks (:meth:`TileConfig.distinct_banks`).  Every pixel
    of the group is the same module.
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        layout = job_layout(config)
        super().__init__({
            "load": In(1),
            "adv": In(1),
            "oy0": In(range(max(2, config.q))),
            "ox0": In(range(max(2, config.tc))),
            "dy": In(range(config.q + 1)),
            "dx": In(range(max(2, config.tc))),
            "s_dy": In(range(config.s_max * config.q + 1)),
            "s_dy1": In(range(config.s_max * (config.q + 1) + 1)),
            "s_dx": In(range(config.s_max * config.tc + 1)),
            "s_tc": In(range(config.s_max * config.tc + 1)),
            "ky": In(layout["k"].shape),
            "kx": In(layout["k"].shape),
            "s": In(layout["s"].shape),
            "pad_top": In(layout["pad_top"].shape),
            "pad_left": In(layout["pad_left"].shape),
            "tr": In(layout["tr"].shape),
            "tc": In(layout["tc"].shape),
            "in_h": In(layout["in_h"].shape),
            "in_w": In(layout["in_w"].shape),
            "grow": In(range(config.tn * config.in_rows_max + 1)),
            "wb": In(range(config.in_cols_max + 1)),
            "hit": Out(config.act_banks),
            "addr": Out(range(config.act_buffer_depth)),
            "act_data": In(data.ArrayLayout(config.act_word_bits, config.act_banks)),
            "pad_word": In(config.act_word_bits),
            "operand": Out(config.act_word_bits),
            **({"data_en": In(1)} if config.crossbar_stage else {}),
        })

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "pixel_unit"

    def share_key(self):
        """What makes two pixels the same module (see :mod:`rcm_gen.hierarchy`)."""
        return type(self), self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        by, bx = cfg.act_banks_yx
        ly, lx = by.bit_length() - 1, bx.bit_length() - 1
        coord_bits = _coord_bits(cfg)
        oy = Signal(range(cfg.tr + cfg.q + 1), name="oy")
        ox = Signal(range(max(2, cfg.tc)), name="ox")
        cy = Signal(signed(coord_bits), name="cy")  # the window's corner
        cx = Signal(signed(coord_bits), name="cx")
        nx = Signal(range(2 * cfg.tc + 1), name="nx")  # the column one group on
        wrap = Signal(name="wrap")
        m.d.comb += [nx.eq(ox + self.dx), wrap.eq(nx >= self.tc)]

        def times_s(x, name):
            return _times_stride(m, self.s, x, cfg.s_max, name)

        with m.If(self.load):
            m.d.sync += [oy.eq(self.oy0), ox.eq(self.ox0),
                         cy.eq(times_s(self.oy0, "s_oy0") - self.pad_top),
                         cx.eq(times_s(self.ox0, "s_ox0") - self.pad_left)]
        with m.Elif(self.adv):
            with m.If(wrap):
                m.d.sync += [oy.eq(oy + self.dy + 1), ox.eq(nx - self.tc),
                             cy.eq(cy + self.s_dy1),
                             cx.eq(cx + self.s_dx - self.s_tc)]
            with m.Else():
                m.d.sync += [oy.eq(oy + self.dy), ox.eq(nx),
                             cy.eq(cy + self.s_dy), cx.eq(cx + self.s_dx)]
        iy, ix = Signal.like(cy, name="iy"), Signal.like(cx, name="ix")
        m.d.comb += [iy.eq(cy + self.ky), ix.eq(cx + self.kx)]
        inside = Signal(name="inside")
        bank = Signal(range(max(2, cfg.act_banks)), name="bank")
        m.d.comb += [
            inside.eq((oy < self.tr) & (iy >= 0) & (iy < self.in_h) & (ix >= 0)
                      & (ix < self.in_w)),
            bank.eq(Cat(ix[:lx], iy[:ly])),
        ]
        # stage 1: the position's row in its bank (the channel group's rows first) and
        # column, and the banks it hits; stage 2: the row's first word (the row times the
        # bank's row length); then its address is that word plus the column (the
        # arithmetic is modulo the address width: it matters only where the pixel hits)
        n = len(self.addr)
        row1 = Signal(n, name="row1")
        col1 = Signal(n, name="col1")
        hit1 = Signal.like(self.hit, name="hit1")
        m.d.sync += [row1.eq((self.grow + (iy >> ly))[:n]), col1.eq((ix >> lx)[:n])]
        for b in range(cfg.act_banks):
            m.d.sync += hit1[b].eq(inside & (bank == b))
        base2 = Signal(n, name="base2")
        col2 = Signal(n, name="col2")
        hit2 = Signal.like(self.hit, name="hit2")
        m.d.sync += [base2.eq((row1 * self.wb)[:n]), col2.eq(col1), hit2.eq(hit1)]
        m.d.comb += [self.hit.eq(hit2), self.addr.eq((base2 + col2)[:n])]
        # the read data come the cycle after the read addresses' stage
        pad = _delay(m, ~inside, ADDRESS_STAGES + 1, "pad")
        sel = _delay(m, bank, ADDRESS_STAGES + 1, "bank")
        if not cfg.crossbar_stage:
            word = _pick((~pad & (sel == b), self.act_data[b]) for b in range(cfg.act_banks))
            m.d.comb += self.operand.eq(word | Mux(pad, self.pad_word, 0))
            return m
        # two levels: a word of each group of banks (registered), then a group's
        bits = cfg.act_banks.bit_length() - 1  # of the bank number
        lo = (bits + 1) // 2                    # its low half, rounded up
        size = 1 << lo
        groups = -(-cfg.act_banks // size)
        part = [Signal(cfg.act_word_bits, name=f"group_word{h}") for h in range(groups)]
        sel_hi = Signal(range(max(2, groups)), name="group")
        pad2 = Signal(name="pad2")
        with m.If(self.data_en if cfg.clock_gating else 1):
            for h, reg in enumerate(part):
                m.d.sync += reg.eq(_pick((~pad & (sel[:lo] == i), self.act_data[h * size + i])
                                         for i in range(min(size, cfg.act_banks - h * size))))
            m.d.sync += [sel_hi.eq(sel >> lo), pad2.eq(pad)]
        m.d.comb += self.operand.eq(Mux(pad2, self.pad_word,
                                        _pick((sel_hi == h, reg) for h, reg in enumerate(part))))
        return m


class Controller(wiring.Component):
    """Computes one job at a time from an input bank into an output bank.

    Starts a job when its input bank is loaded (``in_ready[in_bank]``) and, if the job
    opens an output block (``first``), its output bank is free (``out_free[out_bank]``);
    a continuing job works in the block's bank.  It copies the descriptor ``desc`` (the
    tile presents the descriptor of ``in_bank``).  Then, one cycle per step, it walks

        for mb, group (q consecutive output pixels in raster order, see Pixel),
            for g, ky, kx (reduction)

    reading, for each of the q pixels of the group, one activation word from the interleaved
    activation banks (the pixels read distinct banks; at padded positions, and for pixels beyond
    the job's last pixel, the MACs see the job's ``pad`` word instead) and one P-word weight row, so
    each MAC adds one N-lane dot product per cycle.  A pixel's sum starts from the bias (first
    job of a block), or from the partial sum the block's earlier jobs left in the output buffer,
    read in the cycle before the accumulator needs it.  The cycle after a pixel's last step
    reaches the accumulators, the P sums are written back as one row of the output bank.  The
    next job can start the cycle after the last step of the current one; its MAC operations
    follow the current ones without a gap in the pipeline (the output buffer's read of a row
    written in the same cycle returns the new row).

    Members
    -------
    desc : In(job_layout)
        Descriptor of the job in ``in_bank``; ``desc_pixels`` its output pixels
        (``tr·tc``).
    in_ready : In(2)
        Input banks holding a complete, not yet started job.
    out_free : In(2)
        Output banks that a new block can be written into.
    in_bank, out_bank : Out(1)
        Banks of the next (or current) job.
    start : Out(1)
        Pulse: a job started (in ``in_bank``/``out_bank``).
    release, release_bank : Out(1)
        Pulse: input bank ``release_bank`` may be reloaded (:func:`release_delay` cycles
        after its job's last step was issued).
    done : Out(1)
        Pulse: the last result row of a job was written to bank ``done_bank``;
        ``done_last`` if the job completed its block.
    act_rd_addr : Out(ArrayLayout(range(2·depth), act_banks))
        Read address of each interleaved activation bank (side in the MSB part), registered:
        the step issued in one cycle reads :data:`ADDRESS_STAGES` cycles later, its address
        computed in stages (see :class:`Pixel`), so that no address arithmetic shares a
        clock period with a multiplication or a buffer's read.
    wgt_rd_addr : Out
        Read address of the weight buffer (side in the MSB part), registered alike.
    act_data : In(ArrayLayout(act_word_bits, act_banks))
        The activation banks' read data.
    act_operand : Out(ArrayLayout(act_word_bits, q))
        The activation operand of each MAC column, registered: its bank's data, or the
        job's pad word at padded positions (one driver for the column's P MACs).
    wgt_data : In, wgt_operand : Out(P · weight_word_bits)
        The weight buffer's read data, and the weight row at the MAC inputs (registered).
    mac_en, mac_clear : Out(1)
        MAC controls, aligned with the buffers' read data.
    mode : Out(LaneMode), or Out(Mode) for a fusion MAC
        Mode of the operation at the MAC inputs.
    act_signed : Out(1)
        Activation signedness of the operation at the MAC inputs.
    psum_rd_addr, psum_rd_bank : Out
        Output-buffer row (of every MAC column's memory) to read for the partial sums, one
        cycle before ``init_from``.
    par_rd_addr : Out
        Parameter-buffer row (bank in the MSB part) to read for the biases, one cycle
        before ``init_from``.
    init_from : Out(InitFrom)
        What the sums that start in this cycle's accumulator update start from.
    outpar_wr_en, outpar_wr_addr : Out
        Copy the parameter buffer's read data into the output bank's parameter memory
        (blocks that are post-processed; bank in the MSB part).
    out_wr_en, out_wr_addr, out_wr_bank : Out
        Output buffer write, the same row of every MAC column's memory (the data are the
        accumulators).
    """

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        super().__init__({
            "desc": In(job_layout(config)),
            "desc_pixels": In(range(config.tr * config.tc + 1)),
            "in_ready": In(2),
            "out_free": In(2),
            "in_bank": Out(1),
            "out_bank": Out(1),
            "start": Out(1),
            "release": Out(1),
            "release_bank": Out(1),
            "done": Out(1),
            "done_bank": Out(1),
            "done_last": Out(1),
            "act_rd_addr": Out(data.ArrayLayout(range(2 * config.act_buffer_depth),
                                                config.act_banks)),
            "wgt_rd_addr": Out(range(2 * config.weight_buffer_depth)),
            "act_data": In(data.ArrayLayout(config.act_word_bits, config.act_banks)),
            "act_operand": Out(data.ArrayLayout(config.act_word_bits, config.q)),
            "wgt_data": In(config.p * config.weight_word_bits),
            "wgt_operand": Out(config.p * config.weight_word_bits),
            "mac_en": Out(1),
            "mac_clear": Out(1),
            "mode": Out(Mode if config.mac.is_fused else LaneMode),
            "act_signed": Out(1),
            "psum_rd_addr": Out(range(config.out_buffer_depth)),
            "psum_rd_bank": Out(1),
            "par_rd_addr": Out(range(2 * config.m_blocks)),
            "init_from": Out(InitFrom),
            "outpar_wr_en": Out(1),
            "outpar_wr_addr": Out(range(2 * config.m_blocks)),
            "out_wr_en": Out(1),
            "out_wr_addr": Out(range(config.out_buffer_depth)),
            "out_wr_bank": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        lat = step_latency(cfg)  # from the addresses at the buffers (stage 1) on
        layout = job_layout(cfg)
        d = Signal(layout)  # the running job's descriptor
        run = Signal()

        q = cfg.q
        lq = q.bit_length() - 1
        by, bx = cfg.act_banks_yx
        ly, lx = by.bit_length() - 1, bx.bit_length() - 1
        mbi = Signal.like(d.mb)
        grp = Signal(range(-(-cfg.tr * cfg.tc // q) + 1))  # pixel group
        grp_last_at = Signal.like(grp)                     # the job's last one
        dy = Signal(range(q + 1))          # a group is dy rows and dx columns of the job
        dx = Signal(range(max(2, cfg.tc)))
        g = Signal.like(d.ng)
        ky, kx = Signal.like(d.k), Signal.like(d.k)
        hb = Signal(range(cfg.in_rows_max + 1))  # rows of a channel group in a bank
        wb = Signal(range(cfg.in_cols_max + 1))  # columns of a row in a bank
        grow = Signal(range(cfg.tn * cfg.in_rows_max + 1))  # g · hb
        w_addr = Signal(range(cfg.weight_buffer_depth + 1))
        mb_base = Signal.like(w_addr)
        o_addr = Signal(range(cfg.out_buffer_depth + 1))

        can_start = (~run & self.in_ready.bit_select(self.in_bank, 1)
                     & (~self.desc.first | self.out_free.bit_select(self.out_bank, 1)))
        m.d.comb += self.start.eq(can_start)
        with m.If(can_start):
            nd = self.desc
            m.d.sync += [
                run.eq(1), d.eq(nd),
                mbi.eq(0), grp.eq(0), g.eq(0), ky.eq(0), kx.eq(0),
                grp_last_at.eq((self.desc_pixels - 1) >> lq),
                hb.eq((nd.in_h + (by - 1)) >> ly), wb.eq((nd.in_w + (bx - 1)) >> lx),
                grow.eq(0), w_addr.eq(0), mb_base.eq(0), o_addr.eq(0),
            ]

        # -- the step issued this cycle: each MAC column's pixel, bank and address -----------
        # The pixels' places in a job's first group, and a group's extent, for the width
        # of the job starting (its descriptor) or running.
        tc_now = Mux(run, d.tc, self.desc.tc)
        # and the window corners' steps: the stride times those (held for the job)
        s_dy = Signal(range(cfg.s_max * q + 1))
        s_dy1 = Signal(range(cfg.s_max * (q + 1) + 1))
        s_dx = Signal(range(cfg.s_max * cfg.tc + 1))
        s_tc = Signal(range(cfg.s_max * cfg.tc + 1))
        with m.If(can_start):
            m.d.sync += s_tc.eq(_times_stride(m, self.desc.s, self.desc.tc, cfg.s_max, "s_tc"))
            with m.Switch(self.desc.tc):
                for tc in range(1, cfg.tc + 1):  # (the tile's width: all the others)
                    with m.Case(tc) if tc < cfg.tc else m.Default():
                        m.d.sync += [dy.eq(q // tc), dx.eq(q % tc),
                                     s_dy.eq(_times_constant(self.desc.s, q // tc)),
                                     s_dy1.eq(_times_constant(self.desc.s, q // tc + 1)),
                                     s_dx.eq(_times_constant(self.desc.s, q % tc))]
        places = [(Signal(range(max(2, q)), name=f"oy0_{j}"),
                   Signal(range(max(2, cfg.tc)), name=f"ox0_{j}")) for j in range(q)]
        with m.Switch(tc_now):
            for tc in range(1, cfg.tc + 1):
                with m.Case(tc) if tc < cfg.tc else m.Default():
                    for j, (oy0, ox0) in enumerate(places):
                        m.d.comb += [oy0.eq(j // tc), ox0.eq(j % tc)]
        bank_terms: list[list] = [[] for _ in range(cfg.act_banks)]
        pixels = []
        for j, (oy0, ox0) in enumerate(places):
            pix = Pixel(cfg)
            m.submodules[f"pixel{j}"] = pix
            pixels.append(pix)
            m.d.comb += [
                pix.oy0.eq(oy0), pix.ox0.eq(ox0), pix.dy.eq(dy), pix.dx.eq(dx),
                pix.s_dy.eq(s_dy), pix.s_dy1.eq(s_dy1), pix.s_dx.eq(s_dx), pix.s_tc.eq(s_tc),
                pix.s.eq(Mux(run, d.s, self.desc.s)),
                pix.pad_top.eq(Mux(run, d.pad_top, self.desc.pad_top)),
                pix.pad_left.eq(Mux(run, d.pad_left, self.desc.pad_left)),
                pix.ky.eq(ky), pix.kx.eq(kx), pix.tr.eq(d.tr), pix.tc.eq(d.tc),
                pix.in_h.eq(d.in_h), pix.in_w.eq(d.in_w), pix.grow.eq(grow),
                pix.wb.eq(wb),
            ]
            # the bank this pixel reads takes its address (the group's pixels read
            # distinct banks; pixels outside the input drive none)
            for b in range(cfg.act_banks):
                bank_terms[b].append((pix.hit[b], pix.addr))
        # the pixels' addresses come ADDRESS_STAGES - 1 cycles after the step's issue, to
        # the input bank it was issued in
        in_bank_a = _delay(m, self.in_bank, ADDRESS_STAGES - 1, "act_side")
        for b, terms in enumerate(bank_terms):
            bank_addr = Signal(range(cfg.act_buffer_depth), name=f"bank_addr{b}")
            m.d.comb += bank_addr.eq(_pick(terms))
            m.d.sync += self.act_rd_addr[b].eq(bank_addr + in_bank_a * cfg.act_buffer_depth)
        wgt_addr = Signal.like(self.wgt_rd_addr)
        m.d.comb += [wgt_addr.eq(w_addr + self.in_bank * cfg.weight_buffer_depth),
                     self.wgt_rd_addr.eq(_delay(m, wgt_addr, weight_read_stage(cfg),
                                                "wgt_addr"))]

        kx_last = kx == d.k - 1
        ky_last = ky == d.k - 1
        g_last = g == d.ng - 1
        grp_last = grp == grp_last_at
        mb_last = mbi == d.mb - 1
        first = (g == 0) & (ky == 0) & (kx == 0)
        pixel_last = kx_last & ky_last & g_last
        job_last = pixel_last & grp_last & mb_last
        # the pixels take their first group's places when a job starts and when it moves
        # on to its next output-channel block, and move one group on after a group's last
        # step
        for pix in pixels:
            m.d.comb += [pix.load.eq(can_start | (run & pixel_last & grp_last)),
                         pix.adv.eq(run & pixel_last)]

        with m.If(run):
            m.d.sync += kx.eq(kx + 1)
            with m.If(kx_last):
                m.d.sync += [kx.eq(0), ky.eq(ky + 1)]
                with m.If(ky_last):
                    m.d.sync += [ky.eq(0), g.eq(g + 1), grow.eq(grow + hb)]
                    with m.If(g_last):
                        m.d.sync += [g.eq(0), grow.eq(0)]
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(pixel_last):
                m.d.sync += [w_addr.eq(mb_base), o_addr.eq(o_addr + 1), grp.eq(grp + 1)]
                with m.If(grp_last):
                    m.d.sync += [grp.eq(0), mbi.eq(mbi + 1),
                                 w_addr.eq(w_addr + 1), mb_base.eq(w_addr + 1)]
            with m.If(job_last):
                m.d.sync += [run.eq(0), self.in_bank.eq(~self.in_bank)]
                with m.If(d.last):
                    m.d.sync += self.out_bank.eq(~self.out_bank)
        m.d.comb += [
            self.release.eq(_delay(m, run & job_last, release_delay(cfg), "release")),
            self.release_bank.eq(_delay(m, self.in_bank, release_delay(cfg), "release_bank")),
        ]

        # -- pipeline: the read address stages, the read data and the operand registers,
        # then the MAC's latency.  Stage 1 (``last1``, ``jlast1``) is the cycle after the
        # issue (``lat`` counts from there); stage ``stages`` (:func:`operand_stages`)
        # has the operands at the MAC inputs, with the step's controls.
        stages = operand_stages(cfg)
        last1, jlast1 = Signal(), Signal()
        m.d.sync += [last1.eq(run & pixel_last), jlast1.eq(run & job_last)]
        ens = [run]  # a step in stage k
        for k in range(1, stages + 1):
            ens.append(Signal(name=f"en{k}"))
            m.d.sync += ens[k].eq(ens[k - 1])

        def staged(value, shape, stages: int, name: str):
            """``value`` carried ``stages`` stages with its step: with clock gating each
            register loads only with a step."""
            for k in range(1, stages + 1):
                reg = Signal(shape, name=f"{name}{k}")
                with m.If(ens[k - 1] if cfg.clock_gating else 1):
                    m.d.sync += reg.eq(value)
                value = reg
            return value

        # the read data's stage: the pixels choose their words (or the pad word) and the
        # operands are registered
        read = stages - 1
        padword = staged(d.pad, cfg.act_word_bits, read, "padword")
        for pix in pixels:
            m.d.comb += [pix.act_data.eq(self.act_data), pix.pad_word.eq(padword)]
            if cfg.crossbar_stage:
                m.d.comb += pix.data_en.eq(ens[ADDRESS_STAGES + 1])
        with m.If(ens[read] if cfg.clock_gating else 1):
            m.d.sync += [self.act_operand[q].eq(pix.operand) for q, pix in enumerate(pixels)]
            m.d.sync += self.wgt_operand.eq(self.wgt_data)
        m.d.comb += [
            self.mac_en.eq(ens[stages]),
            self.mac_clear.eq(_delay(m, run & first, stages, "clear")),
            self.mode.eq(staged(d.mode, Mode if cfg.mac.is_fused else LaneMode,
                                stages, "mode")),
            self.act_signed.eq(staged(d.act_signed, 1, stages, "signed")),
        ]

        # The partial sums and biases are read in the cycle before the step's accumulator
        # update (issue + lat), its start value chosen in that cycle.
        init_sel = Signal(InitFrom)
        with m.If(~d.first):
            m.d.comb += init_sel.eq(InitFrom.PARTIAL)
        with m.Elif(d.params):
            m.d.comb += init_sel.eq(InitFrom.BIAS)
        with m.Else():
            m.d.comb += init_sel.eq(InitFrom.ZERO)
        par_addr = Signal.like(self.par_rd_addr)
        m.d.comb += par_addr.eq(mbi + self.in_bank * cfg.m_blocks)
        outpar_addr = Signal.like(self.outpar_wr_addr)
        m.d.comb += outpar_addr.eq(mbi + self.out_bank * cfg.m_blocks)
        o_addr_now = Signal.like(self.psum_rd_addr)
        m.d.comb += o_addr_now.eq(o_addr[:len(o_addr_now)])
        m.d.comb += [
            self.psum_rd_addr.eq(_delay(m, o_addr_now, lat - 1, "psum_addr")),
            self.psum_rd_bank.eq(_delay(m, self.out_bank, lat - 1, "psum_bank")),
            self.par_rd_addr.eq(_delay(m, par_addr, lat - 1, "par_addr")),
            self.init_from.eq(_delay(m, init_sel, lat, "init_from")),
            self.outpar_wr_addr.eq(_delay(m, outpar_addr, lat, "outpar_addr")),
            self.outpar_wr_en.eq(_delay(m, run & first & d.last & ~d.raw, lat, "outpar_en")),
        ]

        # The write: the cycle after the pixel's last step reached the accumulator.
        wr_addr = _delay(m, o_addr_now, 1 + lat, "out_addr")
        m.d.comb += [
            self.out_wr_en.eq(_delay(m, last1, lat, "last")),
            self.out_wr_addr.eq(wr_addr),
            self.out_wr_bank.eq(_delay(m, self.out_bank, 1 + lat, "out_bank")),
            self.done.eq(_delay(m, jlast1, lat, "jlast")),
            self.done_bank.eq(_delay(m, self.out_bank, 1 + lat, "done_bank")),
            self.done_last.eq(_delay(m, d.last, 1 + lat, "done_last")),
        ]
        return m
