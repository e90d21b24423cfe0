"""The tile's loader: checks each job descriptor and writes the job's activations, weights
and per-channel parameters into a bank."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .layouts import act_layout, job_layout, par_layout, wgt_layout
from .modes import LaneMode, TileError, mode_port_value

__all__ = ["Loader"]


def _ceil_div(value, n: int):
    """⌈value / n⌉ for a power of two ``n``."""
    shift = n.bit_length() - 1
    return (value + (n - 1)) >> shift if shift else value


class Loader(wiring.Component):
    """Accepts job descriptors, refuses the invalid ones, and streams the data of valid
    ones into alternate buffer banks.

    A descriptor is taken when the loader is idle, its next bank is free
    (``bank_free[bank]``) and the descriptor has been offered for :attr:`SETTLE` cycles:
    the products that size the job (its steps, beats and buffer words) are computed in
    registers, two multiplications deep, while the descriptor waits on the stream (whose
    payload holds still until it is taken).  A host that offers the next descriptor as
    soon as one is taken never waits for them: loading a job takes longer.  The
    descriptor is checked when taken (see :class:`TileError`); a valid
    job is accepted (``accept``), and then activation words, weight rows and — with
    ``params`` — parameter rows are taken in parallel, one per cycle each, written from
    address 0 of the bank.  Each stream must carry exactly the job's beats, ``last`` on the
    final one (``ng·in_h·in_w`` words, ``mb·ng·k²`` weight rows, ``mb`` parameter rows).
    The cycle after all ended, ``loaded`` pulses and the loader moves to the other bank.

    An invalid descriptor, or a stream whose ``last`` comes early or not at all, sets
    ``error`` (sticky): from then on the loader takes and discards every beat on every
    stream and accepts no job, so no host waits on the tile.

    The loader also follows the output blocks: a job with ``first`` opens one, ``last``
    closes it; a continuing job needs an open block with the same ``mb``, ``tr``, ``tc``;
    the block's accumulation (``ng·k²`` steps per job) must stay within ``max_reduction``.

    Members
    -------
    job, act, wgt, par : In(stream.Signature(...))
        Descriptors, activation words, weight rows, parameter rows.
    bank_free : In(2)
        Which banks the loader may write.
    bank : Out(1)
        The bank the loader fills next (or is filling).
    accept, loaded : Out(1)
        Pulses: a job was accepted into ``bank`` / its data is complete in ``bank``.
    taken : Out(1)
        Pulse: a descriptor was taken from the stream for ``bank`` (free; not after a
        failure): ``accept`` too if it passed its checks.
    desc : Out(job_layout)
        The descriptor on the job stream (the tile latches it into ``bank``'s descriptor
        with ``taken``: a refused one stops the tile).
    out_pixels, out_rows : Out
        Its output pixels (``tr·tc``) and result rows (``mb·tr·tc``), in registers (valid
        with ``taken``).
    error : Out(TileError)
        Why a job was refused (``NONE`` until then).
    act_wr_*, wgt_wr_*, par_wr_* : Out
        Write ports of the activation, weight and parameter buffers (bank in the address
        MSB part), registered: a beat is written :attr:`WRITE_DELAY` cycle after it was
        taken, before ``loaded``.  The activation word of input pixel (y, x) of channel
        group g goes to the interleaved bank (y mod By, x mod Bx) (``config.act_banks_yx``), at
        ``(g·⌈in_h/By⌉ + y / By)·⌈in_w/Bx⌉ + x / Bx``: a beat's ``act_beat`` words
        (columns x0 … x0 + act_beat − 1) to bank row ``act_wr_row``, bank columns
        ``act_wr_col``·act_beat … (``act_wr_mask``: the words inside the row).
    """

    #: Cycles a descriptor is offered before it can be taken (its products' registers).
    SETTLE = 2

    #: Cycles from a beat's arrival to its write into a buffer (the write ports'
    #: registers)
    WRITE_DELAY = 1

    #: each buffer's write port: its enable and what it qualifies
    _WRITE_PORTS = {"act": ("addr", "row", "col", "mask", "data"),
                    "wgt": ("addr", "data"), "par": ("addr", "data")}

    def __init__(self, config: TileConfig) -> None:
        self._config = config
        aw, ww = config.act_word_bits, config.weight_word_bits
        super().__init__({
            "job": In(stream.Signature(job_layout(config))),
            "act": In(stream.Signature(act_layout(config))),
            "wgt": In(stream.Signature(wgt_layout(config))),
            "par": In(stream.Signature(par_layout(config))),
            "bank_free": In(2),
            "bank": Out(1),
            "accept": Out(1),
            "taken": Out(1),
            "loaded": Out(1),
            "desc": Out(job_layout(config)),
            "out_pixels": Out(range(config.tr * config.tc + 1)),
            "out_rows": Out(range(config.m_blocks * config.tr * config.tc + 1)),
            "error": Out(TileError),
            "act_wr_addr": Out(range(2 * config.act_buffer_depth)),
            "act_wr_row": Out(range(max(2, config.act_banks_yx[0]))),
            "act_wr_col": Out(range(max(2, config.act_banks_yx[1] // config.act_beat))),
            "act_wr_mask": Out(config.act_beat),
            "act_wr_data": Out(config.act_beat * aw),
            "act_wr_en": Out(1),
            "wgt_wr_addr": Out(range(2 * config.weight_buffer_depth)),
            "wgt_wr_data": Out(config.p * ww),
            "wgt_wr_en": Out(1),
            "par_wr_addr": Out(range(2 * config.m_blocks)),
            "par_wr_data": Out(par_layout(config)["data"].shape),
            "par_wr_en": Out(1),
        })

    def _sizes(self, m: Module, j) -> tuple[Signal, Signal, Signal, Signal]:
        """The job's steps (``ng·k²``), activation beats (``ng·in_h·⌈in_w/beat⌉``), words in
        the fullest activation bank (``ng·⌈in_h/By⌉·⌈in_w/Bx⌉``) and weight rows
        (``mb·ng·k²``), each computed over two registered stages from the descriptor on the
        stream: valid :attr:`SETTLE` cycles after it appeared; the same for the job's
        output pixels and result rows (``out_pixels``, ``out_rows``)."""
        cfg = self._config
        by, bx = cfg.act_banks_yx
        k2 = Signal(range(cfg.k_max ** 2 + 1))
        mbng = Signal(range(cfg.m_blocks * cfg.tn + 1))
        pixels = Signal(range(cfg.in_rows_max * cfg.in_cols_max + 1))      # beats of a group
        bank_pixels = Signal(range(cfg.in_rows_max * cfg.in_cols_max + 1))  # words of a group
        out_pixels = Signal.like(self.out_pixels)
        m.d.sync += [
            out_pixels.eq(j.tr * j.tc),
            k2.eq(j.k * j.k),
            mbng.eq(j.mb * j.ng),
            pixels.eq(j.in_h * _ceil_div(j.in_w, cfg.act_beat)),
            bank_pixels.eq(_ceil_div(j.in_h, by) * _ceil_div(j.in_w, bx)),
        ]
        steps = Signal(range(cfg.tn * cfg.k_max ** 2 + 1))
        act_words = Signal(range(cfg.tn * cfg.in_rows_max * cfg.in_cols_max + 1))
        bank_words = Signal(range(cfg.tn * cfg.in_rows_max * cfg.in_cols_max + 1))
        wgt_rows = Signal(range(cfg.m_blocks * cfg.tn * cfg.k_max ** 2 + 1))
        m.d.sync += [
            steps.eq(j.ng * k2),
            act_words.eq(j.ng * pixels),
            bank_words.eq(j.ng * bank_pixels),
            wgt_rows.eq(mbng * k2),
            self.out_pixels.eq(out_pixels),
            self.out_rows.eq(j.mb * out_pixels),
        ]
        return steps, act_words, bank_words, wgt_rows

    def _check(self, m: Module, j, open_, red, room, blk
               ) -> tuple[Signal, Signal, Signal, Signal]:
        """Error code of descriptor ``j`` (valid :attr:`SETTLE` cycles after it appeared:
        from the registered products of :meth:`_sizes` and the registered outcomes of the
        checks of its fields), the block's accumulation after it, and the job's activation
        words and weight rows.  ``room`` is what the open block may still accumulate
        (``max_reduction − red``, kept in a register so that the check is one
        comparison)."""
        cfg = self._config
        lanes = [LaneMode.for_lanes(n) for n in cfg.mac.lanes]

        def known(mode):
            return Cat(*[mode == code for code in lanes]).any()

        def known_job_mode(mode):  # a fusion MAC's modes are (activation, weight) pairs
            if not cfg.mac.is_fused:
                return known(mode)
            codes = [mode_port_value(cfg.mac, md) for md in cfg.mac.mac_modes]
            return Cat(*[mode.as_value() == code for code in codes]).any()

        steps, act_words, bank_words, wgt_rows = self._sizes(m, j)
        red_new = Signal(range(cfg.max_reduction + cfg.tn * cfg.k_max ** 2 + 1))
        m.d.comb += red_new.eq(steps + (red & ~j.first.replicate(len(red))))

        def within(field, hi):
            if hi >= (1 << len(field)) - 1:  # the field cannot hold more
                return field != 0
            return (field != 0) & (field <= hi)

        size_ok = (within(j.mb, cfg.m_blocks) & within(j.ng, cfg.tn) & within(j.k, cfg.k_max)
                   & within(j.s, cfg.s_max) & within(j.tr, cfg.tr) & within(j.tc, cfg.tc)
                   & within(j.in_h, cfg.in_rows_max) & within(j.in_w, cfg.in_cols_max)
                   & (j.pad_top < j.k) & (j.pad_left < j.k))
        post = j.last & ~j.raw

        # the checks of the descriptor's fields (and of the open block, which changes only
        # when a descriptor is taken) in registers, a cycle after the descriptor
        def checked(failing, name):
            flag = Signal(name=name)
            m.d.sync += flag.eq(failing)
            return flag

        bad_mode = checked(~known_job_mode(j.mode) | (post & ~known(j.out_mode)), "bad_mode")
        bad_size = checked(~size_ok, "bad_size")
        bad_sequence = checked(
            (j.first & open_) | (~j.first & ~open_)
            | (~j.first & ((j.mb != blk.mb) | (j.tr != blk.tr) | (j.tc != blk.tc))),
            "bad_sequence")
        bad_params = checked(((j.first | j.last) & ~j.raw & ~j.params)
                             | (post & (j.out_min > j.out_max)), "bad_params")
        code = Signal(TileError)
        with m.If(bad_mode):
            m.d.comb += code.eq(TileError.MODE)
        with m.Elif(bad_size):
            m.d.comb += code.eq(TileError.SIZE)
        with m.Elif((bank_words > cfg.act_buffer_depth)
                    | (wgt_rows > cfg.weight_buffer_depth)):
            m.d.comb += code.eq(TileError.BUFFER)
        with m.Elif(bad_sequence):
            m.d.comb += code.eq(TileError.SEQUENCE)
        with m.Elif(steps > Mux(j.first, cfg.max_reduction, room)):
            m.d.comb += code.eq(TileError.REDUCTION)
        with m.Elif(bad_params):
            m.d.comb += code.eq(TileError.PARAMS)
        with m.Else():
            m.d.comb += code.eq(TileError.NONE)
        return code, red_new, act_words, wgt_rows

    def _act_addresses(self, m: Module, j, beat, wport: dict[str, Signal]) -> None:
        """Bank and address of each activation word, from the pixel it holds: counters
        over (g, y, x) in the stream's order, and the job's interleaved row length."""
        cfg = self._config
        by, bx = cfg.act_banks_yx
        ly, lx = by.bit_length() - 1, bx.bit_length() - 1
        v = cfg.act_beat
        g = Signal(range(cfg.tn + 1))
        y = Signal(range(cfg.in_rows_max + 1))
        x = Signal(range(cfg.in_cols_max + v))     # the beat's first column
        in_h = Signal.like(j.in_h)
        in_w = Signal.like(j.in_w)
        wb = Signal(range(cfg.in_cols_max + 1))   # columns of a row in a bank
        # (g·⌈in_h/By⌉ + y / By)·wb, kept by additions: it grows by wb when y / By does
        # and when the next group starts (⌈in_h/By⌉ = (in_h − 1) / By + 1)
        row_base = Signal(range(cfg.act_buffer_depth + 1))
        with m.If(self.accept):
            m.d.sync += [g.eq(0), y.eq(0), x.eq(0), in_h.eq(j.in_h), in_w.eq(j.in_w),
                         row_base.eq(0), wb.eq(_ceil_div(j.in_w, bx))]
        last_row = y == in_h - 1
        with m.If(beat):
            m.d.sync += x.eq(x + v)
            with m.If(x + v >= in_w):
                m.d.sync += [x.eq(0), y.eq(y + 1)]
                with m.If(last_row):
                    m.d.sync += [y.eq(0), g.eq(g + 1)]
                with m.If(last_row | ((y + 1)[:ly] == 0)):
                    m.d.sync += row_base.eq(row_base + wb)
        addr = Signal(range(cfg.act_buffer_depth))
        lv = v.bit_length() - 1
        m.d.comb += [
            addr.eq((row_base + (x >> lx))[:len(addr)]),
            wport["act_wr_addr"].eq(addr + self.bank * cfg.act_buffer_depth),
            wport["act_wr_row"].eq(y[:ly]),
            wport["act_wr_col"].eq(x[lv:lx]),
            wport["act_wr_mask"].eq(Cat(*[x + i < in_w for i in range(v)])),
        ]

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        wgt_depth, par_depth = cfg.weight_buffer_depth, cfg.m_blocks
        j = self.job.payload
        failed = Signal()
        loading = Signal()
        open_ = Signal()          # an output block is open (its last job not yet taken)
        red = Signal(range(cfg.max_reduction + 1))
        room = Signal(range(cfg.max_reduction + 1), init=cfg.max_reduction)
        blk = Signal(job_layout(cfg))  # the open block's first descriptor (mb, tr, tc)
        code, red_new, act_words, wgt_rows = self._check(m, j, open_, red, room, blk)

        taken = self.job.valid & self.job.ready
        m.d.comb += self.taken.eq(taken & ~failed)
        held = Signal(range(self.SETTLE + 1))  # cycles the descriptor has been offered
        with m.If(self.job.valid & ~taken):
            with m.If(held != self.SETTLE):
                m.d.sync += held.eq(held + 1)
        with m.Else():
            m.d.sync += held.eq(0)
        settled = held == self.SETTLE
        m.d.comb += [
            self.desc.eq(j),
            self.job.ready.eq(failed | (~loading & settled
                                        & self.bank_free.bit_select(self.bank, 1))),
            self.accept.eq(taken & ~failed & (code == TileError.NONE)),
        ]

        # Expected beats of the job being loaded, and what has arrived.
        act_max = cfg.tn * cfg.in_rows_max * cfg.in_cols_max
        # The buffers' write ports are registered: a beat is written the cycle after it
        # was taken (the buffers' address decoding and enables are not behind the
        # stream's checks).  A job's data are complete in its bank when ``loaded`` pulses.
        wport = {f"{buf}_wr_{field}": Signal.like(getattr(self, f"{buf}_wr_{field}"),
                                                  name=f"{buf}_wr_{field}_next")
                 for buf, fields in self._WRITE_PORTS.items() for field in (*fields, "en")}
        streams = [
            ("act", self.act, act_max, None, wport["act_wr_data"], wport["act_wr_en"],
             act_words),
            ("wgt", self.wgt, wgt_depth, wport["wgt_wr_addr"], wport["wgt_wr_data"],
             wport["wgt_wr_en"], wgt_rows),
            ("par", self.par, par_depth, wport["par_wr_addr"], wport["par_wr_data"],
             wport["par_wr_en"], j.mb & j.params.replicate(len(j.mb))),
        ]
        dones = []
        beat_error = Signal(TileError)
        act_ok = None
        for name, port, depth, wr_addr, wr_data, wr_en, expected in streams:
            count = Signal(range(depth + 1), name=f"{name}_count")
            need = Signal(range(depth + 1), name=f"{name}_need")  # beats less one
            done = Signal(name=f"{name}_done")
            dones.append(done)
            beat = port.valid & port.ready
            final = count == need
            ok = beat & ~failed & (port.payload.last == final)
            m.d.comb += [
                port.ready.eq(failed | (loading & ~done)),
                wr_data.eq(port.payload.data),
                wr_en.eq(ok),
            ]
            if wr_addr is not None:
                m.d.comb += wr_addr.eq(count + self.bank * depth)
            else:
                act_ok = ok
            with m.If(self.accept):
                m.d.sync += [count.eq(0), need.eq(expected - 1), done.eq(expected == 0)]
            with m.If(ok):
                m.d.sync += count.eq(count + 1)
                with m.If(final):
                    m.d.sync += done.eq(1)
            with m.If(beat & ~failed & port.payload.last & ~final):
                m.d.comb += beat_error.eq(TileError.MISSING_BEAT)
            with m.If(beat & ~failed & ~port.payload.last & final):
                m.d.comb += beat_error.eq(TileError.EXTRA_BEAT)

        self._act_addresses(m, j, act_ok, wport)
        for buf, fields in self._WRITE_PORTS.items():
            en = wport[f"{buf}_wr_en"]
            m.d.sync += getattr(self, f"{buf}_wr_en").eq(en)
            # the data and addresses matter only with their enable: with clock gating
            # they load only then
            with m.If(en if cfg.clock_gating else 1):
                m.d.sync += [getattr(self, f"{buf}_wr_{f}").eq(wport[f"{buf}_wr_{f}"])
                             for f in fields]
        m.d.comb += self.loaded.eq(loading & Cat(*dones).all() & ~failed)
        with m.If(self.accept):
            m.d.sync += [loading.eq(1), open_.eq(~j.last), red.eq(red_new),
                         room.eq(cfg.max_reduction - red_new)]
            with m.If(j.first):
                m.d.sync += blk.eq(j)
        with m.If(self.loaded):
            m.d.sync += [loading.eq(0), self.bank.eq(~self.bank)]

        with m.If(~failed):
            with m.If(taken & (code != TileError.NONE)):
                m.d.sync += [failed.eq(1), self.error.eq(code)]
            with m.Elif(beat_error != TileError.NONE):
                m.d.sync += [failed.eq(1), self.error.eq(beat_error)]
        return m
