"""A column of the tile's MAC array: the P MACs of one output pixel and their output
memories."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..tile.config import TileConfig
from .buffers import Buffer
from .controller import InitFrom
from .layouts import param_layout
from .mac import MAC
from .modes import LaneMode, Mode

__all__ = ["Column", "OutSlice"]


def _bank_read(m: Module, buf: Buffer, b: int, ports: dict, wr_data=None) -> None:
    """Output bank ``b``'s write and read ports from ``ports`` (the column's names; the
    written data too if ``wr_data`` is given): it is read at the partial-sum address
    every cycle, or while the drain runs on it (bit ``b`` of ``drains``) at the drain's
    address when the drain reads."""
    m.d.comb += [
        buf.wr_addr.eq(ports["wr_addr"]), buf.wr_en.eq(ports["wr_en"][b]),
        *([] if wr_data is None else [buf.wr_data.eq(wr_data)]),
        buf.rd_addr.eq(Mux(ports["drains"][b], ports["drain_rd_addr"],
                           ports["psum_rd_addr"])),
        buf.rd_en.eq(~ports["drains"][b] | ports["drain_rd_en"]),
    ]


def _start_value(m: Module, init, init_from, psum, bias) -> None:
    """``init`` (what a MAC's sums start from) as ``init_from`` says: the partial sum
    ``psum``, the ``bias`` or 0."""
    with m.Switch(init_from):
        with m.Case(InitFrom.PARTIAL):
            m.d.comb += init.eq(psum.as_signed())
        with m.Case(InitFrom.BIAS):
            m.d.comb += init.eq(bias)
        with m.Default():
            m.d.comb += init.eq(0)


class OutSlice(wiring.Component):
    """One MAC's share of its column (with ``column_stage``): its share of the two output
    banks, two memories of ``depth`` words of ``width`` bits, and what is read from
    them: its partial sum, which with its bias or 0 is the value its MAC's sums start
    from (``init``), and its part of the drained row (``drain_data``).  The stage's
    registers of the column's memory ports and bank choices are in every slice, a copy
    for each MAC.

    A column's banks are then ``P`` memories each instead of one ``P`` accumulators
    wide, each beside its MAC, its addresses and selections driven by registers of its
    own (so that no register drives the whole column's memories).  Its ports are the
    column's of the same names (``bias`` its MAC's, already registered; the drain's read,
    ``drains``, ``drain_rd_addr`` and ``drain_rd_en``, given a cycle ahead, see
    :class:`Column`), the data its MAC's share.
    """

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "out_slice"

    #: the column ports a slice registers (the column's stage, copied)
    STAGED = ("wr_addr", "wr_en", "psum_rd_addr", "psum_bank", "init_from", "drain_bank",
              "drains", "drain_rd_addr", "drain_rd_en")

    def __init__(self, width: int, depth: int, bias_shape) -> None:
        self.width, self.depth = width, depth
        super().__init__({
            "wr_addr": In(range(depth)),
            "wr_en": In(2),
            "wr_data": In(width),
            "psum_rd_addr": In(range(depth)),
            "psum_bank": In(1),
            "init_from": In(InitFrom),
            "bias": In(bias_shape),
            "init": Out(signed(width)),
            "drains": In(2),
            "drain_rd_addr": In(range(depth)),
            "drain_rd_en": In(1),
            "drain_bank": In(1),
            "drain_data": Out(width),
        })

    def share_key(self):
        """What makes two slices the same module (see :mod:`rcm_gen.hierarchy`)."""
        return type(self), self.width, self.depth, self.bias.shape()

    def elaborate(self, platform) -> Module:
        m = Module()
        staged = {}
        for name in self.STAGED:
            port = getattr(self, name)
            staged[name] = reg = Signal.like(port, name=f"{name}_r")
            m.d.sync += reg.eq(port)
        data_ = []
        for b in range(2):
            m.submodules[f"out_buf{b}"] = buf = Buffer(self.width, self.depth,
                                                       transparent=True)
            _bank_read(m, buf, b, staged, self.wr_data)
            data_.append(buf.rd_data)
        m.d.comb += self.drain_data.eq(Mux(staged["drain_bank"], data_[1], data_[0]))
        _start_value(m, self.init, staged["init_from"],
                     Mux(staged["psum_bank"], data_[1], data_[0]), self.bias)
        return m


class Column(wiring.Component):
    """The P MACs that compute one pixel of a patch (MAC ``i``: output channel ``i`` of
    each P-wide block) and the column's two output banks, each a memory of rows of the P
    accumulators (with ``column_stage``, P memories of one accumulator each, in
    :class:`OutSlice` modules).

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
    psum_rd_addr : In
        The row of partial sums read (every cycle) from a bank that is not being drained.
    drains : In(2)
        The banks the drain reads: their read port takes ``drain_rd_addr`` when
        ``drain_rd_en`` is high, and holds its data otherwise.
    drain_rd_addr : In, drain_rd_en : In(1)
        The drain's read (these three, with ``column_stage``, a cycle ahead: each MAC's
        slice registers them).
    drain_bank : In(1)
        The bank whose read data leave on ``drain_data`` (stable from before a drain's
        first read to after its last).
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
            "psum_rd_addr": In(range(depth)),
            "drains": In(2),
            "drain_rd_addr": In(range(depth)),
            "drain_rd_en": In(1),
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

    def _inputs(self, m: Module) -> dict:
        """The column's inputs as its MACs and memories see them: the ports themselves, or
        with ``column_stage`` their registers (operands loaded with a step and biases with
        a bias start when clock gating, so that an idle column's stage is not clocked).

        The stage delays everything of the controller's step by one cycle, the column's
        own timing unchanged; the drain's read is not delayed (its rows are written by the
        controller two cycles or more before the drain's first read, and its read port
        is chosen per bank in the column, after the stage).  ``drain_bank`` is registered:
        it changes only when a drain ends, two cycles or more before the next one's first
        read data.  The registers of the memories' ports and of the choices of what is
        read (:data:`OutSlice.STAGED`) are the :class:`OutSlice` copies, one per MAC."""
        names = ("act", "wgt", "mode", "act_signed", "en", "clear", "bias")
        if not self._config.column_stage:
            names += ("init_from", "psum_bank", "wr_addr", "wr_en", "psum_rd_addr",
                      "drain_bank")
        ports = {name: getattr(self, name) for name in names}
        drain = {name: getattr(self, name) for name in ("drains", "drain_rd_addr",
                                                         "drain_rd_en")}
        if not self._config.column_stage:
            return ports | drain
        gated = self._config.clock_gating
        loads = {"act": self.en, "wgt": self.en, "mode": self.en, "act_signed": self.en,
                 "bias": self.init_from == InitFrom.BIAS}
        regs = {}
        for name, port in ports.items():
            reg = Signal.like(port, name=f"{name}_r")
            with m.If(loads[name] if gated and name in loads else 1):
                m.d.sync += reg.eq(port)
            regs[name] = reg
        return regs | drain

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        ww, acc = cfg.weight_word_bits, cfg.mac.accumulator_width
        ins = self._inputs(m)
        if cfg.column_stage:
            # each MAC's share of the banks beside it, with its own copies of the stage
            bias_shape = param_layout(cfg)["bias"].shape
            slices = [OutSlice(acc, cfg.out_buffer_depth, bias_shape) for _ in range(cfg.p)]
            for i, sl in enumerate(slices):
                m.submodules[f"out{i}"] = sl
                m.d.comb += [getattr(sl, name).eq(getattr(self, name))
                             for name in OutSlice.STAGED]
                m.d.comb += sl.bias.eq(ins["bias"][i])
            m.d.comb += self.drain_data.eq(Cat(*(sl.drain_data for sl in slices)))
        else:
            banks = [Buffer(cfg.p * acc, cfg.out_buffer_depth, transparent=True)
                     for _ in range(2)]
            for b, buf in enumerate(banks):
                m.submodules[f"out_buf{b}"] = buf
                _bank_read(m, buf, b, ins)
            bank_data = [buf.rd_data for buf in banks]
            # (Muxes, not conditional assignments with constant defaults: Icarus would not
            # evaluate those before one of their inputs changes.)
            psum = Mux(ins["psum_bank"], bank_data[1], bank_data[0])
            m.d.comb += self.drain_data.eq(Mux(ins["drain_bank"], bank_data[1],
                                               bank_data[0]))
        accs = []
        for i in range(cfg.p):
            mac = MAC(cfg.mac, with_init=True)
            m.submodules[f"mac{i}"] = mac
            m.d.comb += [
                mac.a.eq(ins["act"]),
                mac.w.eq(ins["wgt"][i * ww:(i + 1) * ww]),
                mac.mode.eq(ins["mode"]),
                mac.act_signed.eq(ins["act_signed"]),
                mac.en.eq(ins["en"]),
                mac.clear.eq(ins["clear"]),
            ]
            if cfg.column_stage:
                m.d.comb += [mac.init.eq(slices[i].init), slices[i].wr_data.eq(mac.acc)]
                continue
            _start_value(m, mac.init, ins["init_from"], psum[i * acc:(i + 1) * acc],
                         ins["bias"][i])
            accs.append(mac.acc)
        if not cfg.column_stage:
            for buf in banks:
                m.d.comb += buf.wr_data.eq(Cat(*accs))
        return m
