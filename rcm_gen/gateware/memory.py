"""Memory technology binding: which storage a :class:`~rcm_gen.gateware.buffers.Buffer`
is built from, and the SRAM-macro implementation of one.

A *binding* (:class:`MemoryBinding`) says how every buffer of a design is built: ``ff``
(flip-flop arrays, ``amaranth.lib.memory``), ``latch`` (a standard-cell memory: latch
arrays written through a clock gate per word, read through a multiplexer tree;
:func:`build_latch`), ``sram`` (macros of a macro library, tiled by width and depth, the
remainder in flip-flops), ``auto`` (per buffer, the best of those by the estimates of the
library in use; :func:`plan_memory` states the rule), or the name of one macro of the
library (``sram`` with that macro only).  ``sram`` without a macro library builds every
buffer from flip-flops and says why (:attr:`MemoryBinding.note`).

The binding of a design reaches its buffers through the object passed to ``elaborate``
(:class:`MemoryPlatform`), so components that create buffers need not know it; a
``Buffer`` can also be given one of its own.

Flip-flop memories are built from blocks of at most 64 bits by 64 words, each a module of
its own (:func:`build_ff`), so that hierarchical synthesis handles a large memory as one
small module synthesized once.

Why a mapper of our own and not Yosys ``memory_libmap``: the macros' read data is valid
only from the falling edge to the next rising edge and is not held, and reading the word
being written is unknown, so a buffer needs a hold register, a forwarding path and (for
old-data reads) a delayed write around the macros; the generated Verilog must instantiate
the macros so that it simulates with their models, before any synthesis; and the choice
between macros and flip-flops is an area decision made per buffer from the library's
figures.  ``memory_libmap`` maps inside synthesis only, and cannot express any of these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import (
    Cat,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    Mux,
    Signal,
    unsigned,
)
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..flows.macros import MEMORY_KINDS, Macro, MacroLibrary

__all__ = [
    "FF_BINDING",
    "MEMORY_KINDS",
    "MemoryBinding",
    "MemoryPlan",
    "MemoryPlatform",
    "FF_SLICE_BITS",
    "FF_SLICE_WORDS",
    "STDCELL_BIT_AREAS",
    "AUTO_AREA_MARGIN",
    "binding_of",
    "buffer_plans",
    "build_ff",
    "build_latch",
    "latch_block_verilog",
    "build_sram",
    "fpga_binding",
    "plan_memory",
    "resolve_binding",
]

#: Flip-flop memories wider than this are built from column slices of at most this many
#: bits, each a module of its own: equal slices are equal modules, which hierarchical
#: synthesis synthesizes once (:mod:`rcm_gen.flows.hier`).
FF_SLICE_BITS = 64
#: ... and of row blocks of at most this many words (a power of two).
FF_SLICE_WORDS = 64


class _FFSlice(Elaboratable):
    """``depth`` × ``width`` flip-flops with one write and one read port (an Amaranth
    memory, with Yosys's ``ram_style`` attribute if one is given)."""

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "ff_block"

    def __init__(self, width: int, depth: int, transparent: bool,
                 ram_style: str | None = None) -> None:
        self.width, self.depth, self.transparent = width, depth, transparent
        self.ram_style = ram_style
        self.wr_addr = Signal(range(depth))
        self.wr_data = Signal(width)
        self.wr_en = Signal()
        self.rd_addr = Signal(range(depth))
        self.rd_en = Signal()
        self.rd_data = Signal(width)

    def elaborate(self, platform) -> Module:
        m = Module()
        attrs = {"ram_style": self.ram_style} if self.ram_style else None
        # (not named "mem": a one-slice memory's instance is, and Verilator would warn
        # that the array hides it)
        m.submodules.ram = mem = Memory(shape=unsigned(self.width), depth=self.depth, init=[],
                                        attrs=attrs)
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,) if self.transparent else ())
        m.d.comb += [
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data),
        ]
        return m


def build_ff(m: Module, name: str, width: int, depth: int, transparent: bool, wr_addr,
             wr_data, wr_en, rd_addr, rd_en, ram_style: str | None = None):
    """Flip-flop memory ``name`` in ``m``; its read data.

    Built from blocks of at most :data:`FF_SLICE_BITS` bits by :data:`FF_SLICE_WORDS`
    words, each a module of its own, so that hierarchical synthesis handles a large
    memory as one small module synthesized once.  Column slices are equal where they can
    be: the fewest, in a power-of-two count, that cut the word evenly, so that a word of
    P equal fields (P a power of two: P weights, P accumulators) is cut on field
    boundaries and every slice sees the same ports (Amaranth gives a module one input
    port per source, so a slice across two fields would differ from one inside a field);
    otherwise as equal as possible.  Row blocks hold :data:`FF_SLICE_WORDS` words each
    (the last the rest); the block a read addressed is remembered and its data selected.
    On an FPGA (``ram_style`` given) the memory is not cut, so that Yosys sees it whole.
    """
    if ram_style is None and depth > FF_SLICE_WORDS:
        rows = -(-depth // FF_SLICE_WORDS)
        shift = (FF_SLICE_WORDS - 1).bit_length()
        datas = []
        for r in range(rows):
            words = min(FF_SLICE_WORDS, depth - r * FF_SLICE_WORDS)
            datas.append(build_ff(
                m, f"{name}_r{r}_", width, words, transparent, wr_addr[:shift], wr_data,
                wr_en & (wr_addr[shift:] == r), rd_addr[:shift], rd_en))
        return _select_row(m, name, width, rd_addr[shift:], rd_en, datas)
    n = 1
    if ram_style is None:
        while width % (2 * n) == 0 and width // n > FF_SLICE_BITS:
            n *= 2
        if width // n > FF_SLICE_BITS:
            n = -(-width // FF_SLICE_BITS)
    step = -(-width // n)
    parts = []
    for i, lo in enumerate(range(0, width, step)):
        hi = min(width, lo + step)
        s = _FFSlice(hi - lo, depth, transparent, ram_style)
        m.submodules[f"{name}{i}" if n > 1 else name.rstrip("_")] = s
        m.d.comb += [s.wr_addr.eq(wr_addr), s.wr_data.eq(wr_data[lo:hi]), s.wr_en.eq(wr_en),
                     s.rd_addr.eq(rd_addr), s.rd_en.eq(rd_en)]
        parts.append(s.rd_data)
    return Cat(*parts)


class _LatchBlock(wiring.Component):
    """``depth`` words of ``width`` latches and their read register
    (:func:`latch_block_verilog`): the write port (``wr_data`` already registered by the
    parent) lands in the half cycle after the edge that took it; the read data is taken
    into a register when ``rd_en`` is high, or with ``transparent`` the forwarded word
    ``fwd_data`` when ``fwd`` is high.

    Amaranth cannot express a latch: the block is Verilog of rcm_gen's own, written once
    per shape into the design by :func:`rcm_gen.hierarchy.render` (its
    :meth:`verilog_module`); elaborated on its own (outside ``render``) it is an instance
    of that module, which the Amaranth simulator cannot run."""

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "latch_block"

    def __init__(self, width: int, depth: int, transparent: bool,
                 gate: tuple[str, str, str, str] | None) -> None:
        self.width, self.depth, self.transparent, self.gate = width, depth, transparent, gate
        ports = {"wr_addr": In(range(depth)), "wr_data": In(width), "wr_en": In(1),
                 "rd_addr": In(range(depth)), "rd_en": In(1), "rd_data": Out(width)}
        if transparent:
            ports.update({"fwd": In(1), "fwd_data": In(width)})
        super().__init__(ports)

    def share_key(self):
        return (type(self), self.width, self.depth, self.transparent, self.gate)

    def verilog_module(self, name: str) -> str:
        return latch_block_verilog(name, self.width, self.depth, self.transparent, self.gate)

    def elaborate(self, platform) -> Module:
        m = Module()
        fwd = {"i_fwd": self.fwd, "i_fwd_data": self.fwd_data} if self.transparent else {}
        m.submodules.block = Instance(
            f"latch_block_{self.depth}x{self.width}", i_clk=ClockSignal("sync"),
            i_wr_addr=self.wr_addr, i_wr_data=self.wr_data, i_wr_en=self.wr_en,
            i_rd_addr=self.rd_addr, i_rd_en=self.rd_en, o_rd_data=self.rd_data, **fwd)
        return m


def latch_block_verilog(name: str, width: int, depth: int, transparent: bool = False,
                        gate: tuple[str, str, str, str] | None = None) -> str:
    """Verilog module ``name``: ``depth`` words of ``width`` latches and a read register.

    Word ``k`` is clocked through a clock gate of its own whose enable is ``wr_en &
    (wr_addr == k)``, itself clocked through the block's gate enabled by ``wr_en`` (so
    that the clock reaches the word gates only when a word is written): a gate's latch
    takes the enable while its clock is low, and the
    word's latches are transparent while the gated clock is high, so a write whose
    enable is high before a rising edge lands in the half cycle after it, from
    ``wr_data`` (which the parent holds in a register for that cycle).  The word at
    ``rd_addr``, through a multiplexer, is taken into ``rd_data`` at a rising edge when
    ``rd_en`` is high (with ``transparent``, ``fwd_data`` instead when ``fwd`` is high):
    the word as it was before the edge.  ``gate`` is the library's integrated
    clock-gating cell (cell, clock pin, enable pin, gated-clock pin), instantiated where
    the Verilog is synthesized (Yosys defines ``SYNTHESIS``); elsewhere, and without one,
    the gate is a latch open while the clock is low and an AND, which synthesis maps to
    the library's latch and AND cells.  The latches are assigned with non-blocking
    assignments so that the read register, clocked at the edge that opens a word's
    latches, reads the word as it was before the edge.  Verilator evaluates a latch
    opened by a clock edge before the registers clocked at that edge, whatever the
    assignment: under Verilator (``VERILATOR`` defined) a word is written at the falling
    edge from its enable registered at the rising edge, the same cycle behaviour."""
    abits = max(1, (depth - 1).bit_length())

    def vec(n: int) -> str:
        return f"[{n - 1}:0] " if n > 1 else ""

    ports = ["clk", "wr_addr", "wr_data", "wr_en", "rd_addr", "rd_en",
             *(["fwd", "fwd_data"] if transparent else []), "rd_data"]
    out = [
        f"module {name}({', '.join(ports)});",
        f"  // {depth} words x {width} bits of latches, written through a clock gate per "
        "word, read through a multiplexer (rcm_gen.gateware.memory.latch_block_verilog)",
        "  /* verilator lint_off LATCH */",
        "  /* verilator lint_off COMBDLY */",
        "  input clk;", "  wire clk;",
        f"  input {vec(abits)}wr_addr;", f"  wire {vec(abits)}wr_addr;",
        f"  input {vec(width)}wr_data;", f"  wire {vec(width)}wr_data;",
        "  input wr_en;", "  wire wr_en;",
        f"  input {vec(abits)}rd_addr;", f"  wire {vec(abits)}rd_addr;",
        "  input rd_en;", "  wire rd_en;",
    ]
    if transparent:
        out += ["  input fwd;", "  wire fwd;",
                f"  input {vec(width)}fwd_data;", f"  wire {vec(width)}fwd_data;"]
    out += [f"  output {vec(width)}rd_data;", f"  reg {vec(width)}rd_data = {width}'d0;",
            f"  reg {vec(width)}word;"]

    def clock_gate(name: str, src: str, enable: str, gated: str) -> list[str]:
        behavioural = [f"  reg {name}_l;", "  always @*", f"    if (!{src}) {name}_l <= {enable};",
                       f"  assign {gated} = {src} & {name}_l;"]
        if gate is None:
            return behavioural
        cell, clk, en, gclk = gate
        return ["`ifdef SYNTHESIS", f"  {cell} {name} (", f"    .{clk}({src}),",
                f"    .{en}({enable}),", f"    .{gclk}({gated})", "  );", "`else",
                *behavioural, "`endif"]

    # the word gates are clocked through a gate of the block's own, enabled by a write:
    # while nothing is written the clock stops at the block instead of at every word
    out += ["  wire bclk;", *clock_gate("block_gate", "clk", "wr_en", "bclk")]
    for k in range(depth):
        out += [f"  wire en{k};", f"  wire gclk{k};", f"  reg {vec(width)}word{k};",
                f"  assign en{k} = wr_en & (wr_addr == {abits}'d{k});",
                *clock_gate(f"gate{k}", "bclk", f"en{k}", f"gclk{k}")]
        out += ["`ifdef VERILATOR",
                f"  reg en{k}_q;", "  always @(posedge clk)", f"    en{k}_q <= en{k};",
                "  always @(negedge clk)", f"    if (en{k}_q) word{k} <= wr_data;",
                "`else",
                "  always @*", f"    if (gclk{k}) word{k} <= wr_data;",
                "`endif"]
    # words start at zero in simulation, as a flip-flop memory's do
    out += ["`ifndef SYNTHESIS", "  initial begin",
            *(f"    word{k} = {width}'d0;" for k in range(depth)), "  end", "`endif"]
    out += ["  always @*", "    case (rd_addr)"]
    out += [f"      {abits}'d{k}: word = word{k};" for k in range(depth)]
    if depth < 1 << abits:
        out.append(f"      default: word = {width}'d0;")
    out += ["    endcase", "  always @(posedge clk)", "    if (rd_en)"]
    out += (["      rd_data <= fwd ? fwd_data : word;"] if transparent
            else ["      rd_data <= word;"])
    out += ["  /* verilator lint_on COMBDLY */", "  /* verilator lint_on LATCH */",
            "endmodule", ""]
    return "\n".join(out)


def build_latch(m: Module, name: str, width: int, depth: int, transparent: bool, wr_addr,
                wr_data, wr_en, rd_addr, rd_en, gate: tuple[str, str, str, str] | None):
    """Latch memory ``name`` in ``m`` (the same port behaviour as :func:`build_ff`'s); its
    read data.

    The write data is taken into a register at the edge that ends a write's cycle (a
    write lands in the half cycle after that edge; the register holds otherwise, so
    clock gating can stop its clock while nothing is written) and the written word's
    latches take it while the clock is high (:func:`latch_block_verilog`).
    Each block takes its addressed word into its read register when ``rd_en`` is high,
    so that it holds while ``rd_en`` is low; the block a read addressed is remembered
    and its data selected.  A read of the word written in the same cycle gives the old
    word (its latches open after the edge) or, ``transparent``, the new one (forwarded
    from ``wr_data``).  Blocks are at most :data:`FF_SLICE_BITS` bits by
    :data:`FF_SLICE_WORDS` words, cut as :func:`build_ff` cuts a flip-flop memory, each
    a module of its own written once per shape.
    """
    # (not reset, as a flip-flop memory's registers are not: the reset would fan out to
    # every bit)
    wdata = Signal(width, name=f"{name}_wdata", reset_less=True)
    with m.If(wr_en):
        m.d.sync += wdata.eq(wr_data)
    fwd = Signal(name=f"{name}_fwd")
    if transparent:
        m.d.comb += fwd.eq(wr_en & (wr_addr == rd_addr))
    rows = -(-depth // FF_SLICE_WORDS)
    shift = (FF_SLICE_WORDS - 1).bit_length() if rows > 1 else len(wr_addr)
    n = 1
    while width % (2 * n) == 0 and width // n > FF_SLICE_BITS:
        n *= 2
    if width // n > FF_SLICE_BITS:
        n = -(-width // FF_SLICE_BITS)
    step = -(-width // n)
    row_data = []
    for r in range(rows):
        words = min(FF_SLICE_WORDS, depth - r * FF_SLICE_WORDS)
        parts = []
        for i, lo in enumerate(range(0, width, step)):
            hi = min(width, lo + step)
            blk = _LatchBlock(hi - lo, words, transparent, gate)
            sub = name + (f"_r{r}" if rows > 1 else "") + (f"_{i}" if n > 1 else "")
            m.submodules[sub] = blk
            wsel = wr_en & (wr_addr[shift:] == r) if rows > 1 else wr_en
            m.d.comb += [blk.wr_addr.eq(wr_addr[:shift]), blk.wr_data.eq(wdata[lo:hi]),
                         blk.wr_en.eq(wsel), blk.rd_addr.eq(rd_addr[:shift]),
                         blk.rd_en.eq(rd_en)]
            if transparent:
                m.d.comb += [blk.fwd.eq(fwd), blk.fwd_data.eq(wr_data[lo:hi])]
            parts.append(blk.rd_data)
        row_data.append(Cat(*parts))
    if rows == 1:
        return row_data[0]
    return _select_row(m, name, width, rd_addr[shift:], rd_en, row_data)


def _select_row(m: Module, name: str, width: int, row_addr, rd_en, datas: list):
    """The read data of a memory cut into rows of blocks: the row a read addressed
    (``row_addr``, taken when ``rd_en`` is high, as the blocks take their words) selects
    among the rows' read data ``datas``."""
    row_q = Signal(range(len(datas)), name=f"{name}_row_q")
    with m.If(rd_en):
        m.d.sync += row_q.eq(row_addr)
    out = Signal(width, name=f"{name}_data")
    m.d.comb += out.eq(datas[0])
    for r in range(1, len(datas)):
        with m.If(row_q == r):
            m.d.comb += out.eq(datas[r])
    return out


@dataclass(frozen=True)
class MemoryPlan:
    """How one memory of ``depth`` × ``width`` is built.

    With a ``macro``: ``rows`` × ``cols`` macros hold words ``[0, macro_words)`` and bits
    ``[0, macro_bits)`` (the last row or column may be partly used); flip-flops hold the
    bits beside them (``ff_col_bits`` wide, ``macro_words`` deep) and the words below them
    (``ff_row_words`` deep, full width).  Without one, the memory is flip-flops.
    ``area_um2`` is the estimate the choice was made on (``None`` without a library).
    """

    width: int
    depth: int
    macro: Macro | None = None
    rows: int = 0
    cols: int = 0
    area_um2: float | None = None
    #: FPGA only: Yosys's ``ram_style`` for the flip-flop memories (``logic``: flip-flops,
    #: ``block``: block RAM, ``""``: Yosys chooses); ``None``: not for an FPGA
    ram_style: str | None = None
    #: a latch memory (:func:`build_latch`); with a ``macro``, the bits beside and the
    #: words below the macros are latches instead of flip-flops
    latch: bool = False
    #: the idle-energy proxy the ``auto`` choice breaks near-ties with: cells clocked in
    #: a cycle without reads or writes (``None`` without estimates); see
    #: :func:`plan_memory`
    clocked: int | None = None

    @property
    def macro_words(self) -> int:
        return min(self.depth, self.rows * self.macro.words) if self.macro else 0

    @property
    def macro_bits(self) -> int:
        return min(self.width, self.cols * self.macro.bits) if self.macro else 0

    @property
    def ff_col_bits(self) -> int:
        return self.width - self.macro_bits if self.macro else 0

    @property
    def ff_row_words(self) -> int:
        return self.depth - self.macro_words if self.macro else self.depth

    @property
    def macros(self) -> int:
        return self.rows * self.cols

    @property
    def ff_bits(self) -> int:
        """Flip-flop storage bits (not counting the hold and forwarding registers)."""
        return self.macro_words * self.ff_col_bits + self.ff_row_words * self.width

    def describe(self) -> str:
        if self.ram_style is not None:
            return f"fpga {self.ram_style or 'any'} {self.depth}x{self.width}"
        if self.macro is None:
            return f"{'latch' if self.latch else 'ff'} {self.depth}x{self.width}"
        text = f"sram {self.rows}x{self.cols} {self.macro.name}"
        extra = []
        if self.ff_col_bits:
            extra.append(f"{self.macro_words}x{self.ff_col_bits}")
        if self.ff_row_words:
            extra.append(f"{self.ff_row_words}x{self.width}")
        rest = "latch" if self.latch else "ff"
        return text + (f" + {rest} {' + '.join(extra)}" if extra else "")


#: Estimated area of one memory bit per standard-cell library (liberty library name, a
#: shell pattern) and storage, in um2: a Buffer of 64 words x 16 bits synthesized by
#: rcm_gen's ASIC flow, its area over its 1,024 bits (flip-flops: storage, write enable
#: and read multiplexer; latches: the same with the clock gates and the write-data and
#: read registers).  OSU 0.18 um's liberty gives its ``LATCH`` cell no area (0): its
#: latch figure counts each of the 1,088 latches (1,024 bits, 64 clock gates) at its
#: LEF size, 5.6 x 10 um.  Tests check each figure against a fresh run.  A library not
#: listed has no estimate: ``auto`` does not consider latches there.
STDCELL_BIT_AREAS: dict[str, dict[str, float]] = {
    "sky130_fd_sc_hd__*": {"ff": 38.84, "latch": 22.66},
    "osu018_stdcells": {"ff": 222.77, "latch": 110.04},
}

#: ``auto``: plans whose estimated areas are within this fraction of the smallest are
#: near-ties, decided by the idle-energy proxy (see :func:`plan_memory`).
AUTO_AREA_MARGIN = 0.10


def stdcell_bit_areas(stdcell: str | None) -> dict[str, float] | None:
    """:data:`STDCELL_BIT_AREAS` of the liberty library ``stdcell`` (``None``: unknown)."""
    import fnmatch

    if stdcell is None:
        return None
    for pattern, areas in STDCELL_BIT_AREAS.items():
        if fnmatch.fnmatchcase(stdcell, pattern):
            return areas
    return None


def _estimate(width: int, depth: int, macro: Macro | None, rows: int, cols: int,
              library: MacroLibrary, latch_bit: float | None = None) -> MemoryPlan:
    """A plan and its estimates; with ``latch_bit`` (and a macro), the bits beside and
    below the macros in latches of that area per bit."""
    latch = latch_bit is not None and macro is not None
    plan = MemoryPlan(width, depth, macro, rows, cols, latch=latch)
    ff = library.ff_bit_area_um2
    area = plan.ff_bits * (latch_bit if latch else ff)
    if macro is not None:
        # macros, and the glue around them: a hold register, a forwarding register and an
        # output multiplexer per bit of the macro columns, counted as two flip-flop bits
        area += plan.macros * macro.area_um2 + 2 * plan.macro_bits * ff
    # cells clocked in an idle cycle: every flip-flop bit (storage and glue; latches: a
    # gate per word and two registers per bit of width), and each macro's two clock pins
    rest = plan.ff_bits
    if latch:
        rest = ((plan.macro_words + 2 * plan.ff_col_bits) if plan.ff_col_bits else 0) + \
            ((plan.ff_row_words + 2 * width) if plan.ff_row_words else 0)
    clocked = rest + (2 * plan.macro_bits + 2 * plan.macros if macro else 0)
    return MemoryPlan(width, depth, macro, rows, cols, area, latch=latch, clocked=clocked)


def _stdcell_estimate(width: int, depth: int, latch: bool, areas: dict[str, float]
                      ) -> MemoryPlan:
    bits = width * depth
    if latch:
        # clocked when idle: a clock gate per word and block column, and the write-data
        # and read registers (the latches themselves only when written)
        clocked = depth * -(-width // FF_SLICE_BITS) + 2 * width
        return MemoryPlan(width, depth, area_um2=bits * areas["latch"], latch=True,
                          clocked=clocked)
    return MemoryPlan(width, depth, area_um2=bits * areas["ff"], clocked=bits)


def plan_memory(width: int, depth: int, kind: str, library: MacroLibrary | None,
                areas: dict[str, float] | None = None) -> MemoryPlan:
    """The plan of a ``depth`` × ``width`` memory under binding ``kind`` (one of
    :data:`MEMORY_KINDS` or a macro of ``library``), with the per-bit estimates
    ``areas`` of the standard-cell library in use (:data:`STDCELL_BIT_AREAS`; ``None``:
    none).

    ``latch`` gives a latch memory (flip-flops below two words).  ``sram`` takes, of
    every macro and every way of tiling it (whole rows and columns only, the rest in
    flip-flops, or a partly used last row or column), the one with the smallest
    estimated area; a macro name restricts ``sram`` to that macro.  ``auto`` considers
    flip-flops, latches (where the library has an estimate) and those macro plans
    (where there is a macro library; with an estimate, also with the rest in latches),
    and takes the smallest estimated area, except that
    among the plans within :data:`AUTO_AREA_MARGIN` of it, the one that clocks the fewest
    cells in a cycle without reads or writes (the memory's idle clock energy: flip-flops
    clock every bit, latches a gate per word and their two registers, macros their clock
    pins and their glue's flip-flops) is taken.  Without a library and estimates every
    kind but ``latch`` gives flip-flops.
    """
    if kind == "latch" and depth >= 2:
        if areas is not None:
            return _stdcell_estimate(width, depth, True, areas)
        return MemoryPlan(width, depth, latch=True)
    if library is None and (kind != "auto" or areas is None):
        return _stdcell_estimate(width, depth, False, areas) if areas else \
            MemoryPlan(width, depth)
    ff = (_estimate(width, depth, None, 0, 0, library) if library is not None
          else _stdcell_estimate(width, depth, False, areas))
    if kind in ("ff", "latch"):
        return ff
    candidates = [ff] if kind == "auto" else []
    if kind == "auto" and areas is not None and depth >= 2:
        candidates.append(_stdcell_estimate(width, depth, True, areas))
    macros = () if library is None else (
        library.macros if kind in ("sram", "auto") else (library.macro(kind),))
    for macro in macros:
        for rows in sorted({depth // macro.words, math.ceil(depth / macro.words)} - {0}):
            for cols in sorted({width // macro.bits, math.ceil(width / macro.bits)} - {0}):
                plan = _estimate(width, depth, macro, rows, cols, library)
                candidates.append(plan)
                # auto: the rest in latches (each part of at least two words)
                if kind == "auto" and areas is not None and plan.ff_bits \
                        and plan.ff_row_words != 1:
                    candidates.append(_estimate(width, depth, macro, rows, cols, library,
                                                areas["latch"]))
    best = min(candidates, key=lambda p: (p.area_um2, p.macros))
    if kind != "auto":
        return best
    close = [p for p in candidates if p.area_um2 <= best.area_um2 * (1 + AUTO_AREA_MARGIN)]
    return min(close, key=lambda p: (p.clocked, p.area_um2, p.macros))


@dataclass(frozen=True)
class MemoryBinding:
    """How a design's buffers are built: ``kind`` (see :data:`MEMORY_KINDS`, or a macro
    name), the macro ``library`` (``None``: flip-flops), and a ``note`` saying how the
    binding was resolved (for example why it fell back to flip-flops)."""

    kind: str = "ff"
    library: MacroLibrary | None = None
    note: str = "memory=ff"
    #: for an FPGA: every buffer is an Amaranth memory with this Yosys ``ram_style``
    #: (``logic``, ``block``; ``""``: Yosys chooses), and ``library`` is not used
    fpga_ram_style: str | None = None
    #: the integrated clock-gating cell latch memories are clocked through where they are
    #: synthesized (cell, clock pin, enable pin, gated-clock pin); ``None``: a latch and
    #: an AND gate
    gate: tuple[str, str, str, str] | None = None
    #: per-bit area estimates of the standard-cell library (:data:`STDCELL_BIT_AREAS`)
    areas: tuple[tuple[str, float], ...] | None = None

    def plan(self, width: int, depth: int) -> MemoryPlan:
        if self.fpga_ram_style is not None:
            return MemoryPlan(width, depth, ram_style=self.fpga_ram_style)
        return plan_memory(width, depth, self.kind, self.library,
                           dict(self.areas) if self.areas is not None else None)


#: Flip-flops, with no macro library.
FF_BINDING = MemoryBinding()


class MemoryPlatform:
    """The object a design is elaborated with so that its buffers find their binding."""

    def __init__(self, binding: MemoryBinding) -> None:
        if not isinstance(binding, MemoryBinding):
            raise TypeError(f"Memory binding must be a MemoryBinding, not {binding!r}")
        self.memory_binding = binding


def binding_of(platform) -> MemoryBinding:
    """The binding a platform carries (flip-flops if none)."""
    binding = getattr(platform, "memory_binding", None)
    return binding if isinstance(binding, MemoryBinding) else FF_BINDING


def build_sram(m: Module, plan: MemoryPlan, transparent: bool, ports: dict,
               gate: tuple[str, str, str, str] | None = None) -> None:
    """Build the memory of ``plan`` (with a macro) into ``m``, driving ``ports["rd_data"]``
    from the Buffer ports ``wr_addr``, ``wr_data``, ``wr_en``, ``rd_addr``, ``rd_en``.

    Read data of the macros is taken combinationally in the cycle after the address (it
    is valid from the falling edge) and copied into a hold register at the next rising
    edge, so that it holds while ``rd_en`` is low.  A read of a word whose write reaches
    the macros at the same falling edge (unknown in the macro) is answered from a
    forwarding register: with ``transparent`` the write of the same cycle (new data);
    without, writes reach the macros one cycle late, so a read sees the old word, and a
    read of the word written in the previous cycle takes it from the delayed write.
    """
    macro = plan.macro
    width = plan.width
    wr_addr, wr_data, wr_en = ports["wr_addr"], ports["wr_data"], ports["wr_en"]
    rd_addr, rd_en, rd_data = ports["rd_addr"], ports["rd_en"], ports["rd_data"]
    abits = macro.addr_bits
    mwords, mbits = plan.macro_words, plan.macro_bits

    # The write that reaches the macros in this cycle.
    if transparent:
        w_addr, w_data, w_en = wr_addr, wr_data, wr_en
    else:
        w_addr = Signal.like(wr_addr, name="pend_addr")
        w_data = Signal.like(wr_data, name="pend_data")
        w_en = Signal(name="pend_en")
        m.d.sync += w_en.eq(wr_en)
        # the pending write's address and data hold unless a write comes (gated clocks)
        with m.If(wr_en):
            m.d.sync += [w_addr.eq(wr_addr), w_data.eq(wr_data)]

    w_in = Signal(name="w_in_macros")
    r_in = Signal(name="r_in_macros")
    m.d.comb += [w_in.eq(w_en & (w_addr < mwords)), r_in.eq(rd_addr < mwords)]

    # The macros: row i holds words [i·words, (i+1)·words), column j bits [j·bits, ...).
    row_data = []
    for i in range(plan.rows):
        douts = []
        for j in range(plan.cols):
            lo, hi = j * macro.bits, min((j + 1) * macro.bits, mbits)
            din = Signal(macro.bits, name=f"din_{i}_{j}")
            dout = Signal(macro.bits, name=f"dout_{i}_{j}")
            unused = Signal(macro.bits, name=f"dout0_{i}_{j}")
            m.d.comb += din.eq(w_data[lo:hi])
            wsel = w_in & (w_addr[abits:] == i) if plan.rows > 1 else w_in
            rsel = rd_en & r_in & (rd_addr[abits:] == i) if plan.rows > 1 else rd_en & r_in
            pins = {
                f"i_{macro.pin('rw_clk')}": ClockSignal("sync"),
                f"i_{macro.pin('rw_csb')}": ~wsel,
                f"i_{macro.pin('rw_web')}": Const(0, 1),
                f"i_{macro.pin('rw_wmask')}": Const((1 << macro.mask_width) - 1,
                                                   macro.mask_width),
                f"i_{macro.pin('rw_addr')}": w_addr[:abits],
                f"i_{macro.pin('rw_din')}": din,
                f"o_{macro.pin('rw_dout')}": unused,
                f"i_{macro.pin('r_clk')}": ClockSignal("sync"),
                f"i_{macro.pin('r_csb')}": ~rsel,
                f"i_{macro.pin('r_addr')}": rd_addr[:abits],
                f"o_{macro.pin('r_dout')}": dout,
            }
            m.submodules[f"sram_{i}_{j}"] = Instance(macro.name, **pins)
            douts.append(dout[:hi - lo])
        row_data.append(Cat(*douts))

    # Which macro row the last read addressed, and whether its data is still on dout
    # (a read was issued at the last edge and was not forwarded).
    macro_word = Signal(mbits, name="macro_word")
    if plan.rows > 1:
        row_q = Signal(range(plan.rows), name="row_q")
        with m.If(rd_en):
            m.d.sync += row_q.eq(rd_addr[abits:])
        m.d.comb += macro_word.eq(row_data[0])
        for i in range(1, plan.rows):
            with m.If(row_q == i):
                m.d.comb += macro_word.eq(row_data[i])
    else:
        m.d.comb += macro_word.eq(row_data[0])
    hold = Signal(mbits, name="hold")
    live = Signal(name="live")  # 1: the macro output is this cycle's read data
    collide = Signal(name="collide")
    m.d.comb += collide.eq(rd_en & w_en & (rd_addr == w_addr))
    with m.If(rd_en):
        m.d.sync += live.eq(~collide)
        with m.If(collide):
            m.d.sync += hold.eq(w_data[:mbits])
    with m.Elif(live):
        m.d.sync += [hold.eq(macro_word), live.eq(0)]
    macro_part = Signal(mbits, name="macro_part")
    m.d.comb += macro_part.eq(Mux(live, macro_word, hold))

    # Flip-flops (or latches) beside and below the macros: they hold by themselves.
    def rest(m, name, width, depth, transparent, wr_addr, wr_data, wr_en, rd_addr, rd_en):
        if plan.latch:
            return build_latch(m, name, width, depth, transparent, wr_addr, wr_data, wr_en,
                               rd_addr, rd_en, gate)
        return build_ff(m, name, width, depth, transparent, wr_addr, wr_data, wr_en,
                        rd_addr, rd_en)

    word = Signal(width, name="word")
    if plan.ff_col_bits:
        cols = rest(m, "ff_cols", plan.ff_col_bits, mwords, transparent, wr_addr,
                    wr_data[mbits:], wr_en & (wr_addr < mwords), rd_addr, rd_en)
        m.d.comb += word.eq(Cat(macro_part, cols))
    else:
        m.d.comb += word.eq(macro_part)
    if plan.ff_row_words:
        rows = rest(m, "ff_rows", width, plan.ff_row_words, transparent,
                    wr_addr - mwords, wr_data, wr_en & (wr_addr >= mwords),
                    rd_addr - mwords, rd_en)
        in_rows_q = Signal(name="in_ff_rows_q")
        with m.If(rd_en):
            m.d.sync += in_rows_q.eq(~r_in)
        m.d.comb += rd_data.eq(Mux(in_rows_q, rows, word))
    else:
        m.d.comb += rd_data.eq(word)


def resolve_binding(kind: str, macros: str | None,
                    stdcell: tuple[str, float | None, float | None] | None = None,
                    gate: tuple[str, str, str, str] | None = None) -> MemoryBinding:
    """The binding of a design whose configuration says ``memory=kind`` and ``macros``,
    built for the standard-cell library ``stdcell`` (its liberty library name, nominal
    voltage and temperature; ``None`` when no library is chosen, as in simulation) with
    its integrated clock-gating cell ``gate`` (for latch memories; ``None``: a latch and
    an AND gate).

    ``macros`` names the macro library (shipped, or a ``library.toml`` path); unset, the
    shipped library that goes with ``stdcell`` is used, and without one (no ``stdcell``,
    or one with no macro library, such as OSU 0.18 um) ``sram`` buffers are flip-flops
    and the binding's note says so.  ``latch`` needs no library; ``auto`` chooses among
    flip-flops, latches (where ``stdcell`` has estimates, :data:`STDCELL_BIT_AREAS`) and
    macros (where there is a macro library).

    Raises
    ------
    UserError
        A bad macro library, a ``kind`` that names no macro of it, or a ``stdcell`` of
        another technology, voltage or temperature than the named macro library.
    """
    from ..errors import UserError
    from ..flows.macros import find_macro_library, load_macro_library

    areas = stdcell_bit_areas(stdcell[0] if stdcell else None)
    frozen = tuple(sorted(areas.items())) if areas else None

    def check_kind(lib: MacroLibrary) -> None:
        if kind not in MEMORY_KINDS and kind not in lib.macro_names:
            raise UserError(f"memory must be one of {', '.join(MEMORY_KINDS)} or a macro of "
                            f"{lib.name} ({', '.join(lib.macro_names)}), not {kind!r}")

    def bound(lib: MacroLibrary | None, note: str) -> MemoryBinding:
        return MemoryBinding(kind, lib, note, gate=gate, areas=frozen)

    if macros is not None:
        lib = load_macro_library(macros)
        check_kind(lib)
        if stdcell is not None:
            why = lib.mismatch(*stdcell)
            if why is not None:
                raise UserError(f"macro library {lib.name!r} ({lib.describe()}) does not go "
                                f"with liberty {stdcell[0]!r}, which {why}")
        return bound(lib, f"memory={kind}, macro library {lib.name}")
    if kind == "ff":
        return FF_BINDING
    if kind == "latch":
        return bound(None, "memory=latch")
    if stdcell is None:
        return MemoryBinding("ff", None, f"memory={kind} without a macro library (macros "
                                         "unset): flip-flops")
    lib = find_macro_library(*stdcell)
    if lib is None:
        if kind == "auto" and frozen is not None:
            return bound(None, f"memory=auto, liberty {stdcell[0]!r} has no macro library: "
                               "flip-flops or latches")
        return MemoryBinding("ff", None, f"memory={kind}, but liberty {stdcell[0]!r} has no "
                                         "macro library: flip-flops")
    check_kind(lib)
    return bound(lib, f"memory={kind}, macro library {lib.name} (goes with liberty "
                      f"{stdcell[0]!r})")


def fpga_binding(kind: str) -> MemoryBinding:
    """The binding of a design whose configuration says ``memory=kind`` on an FPGA:
    ``sram`` (or a macro name) puts every buffer in block RAM; ``ff``, ``latch`` and
    ``auto`` leave the buffers to Yosys, which infers block RAM, distributed RAM or
    flip-flops by size (an FPGA's flip-flops are no cheaper than its RAM blocks, so
    ``ff`` does not force them, and it has no latch memories)."""
    style = "" if kind in ("ff", "latch", "auto") else "block"
    what = {"block": "block RAM", "": "block RAM, distributed RAM or flip-flops as Yosys "
                                      "infers"}[style]
    return MemoryBinding(kind, None, f"memory={kind} on an FPGA: buffers in {what}", style)


def buffer_plans(component, binding: MemoryBinding) -> list[tuple[str, int, int, MemoryPlan]]:
    """(instance path, width, depth, plan) of every Buffer in ``component`` elaborated
    with ``binding``, in elaboration order."""
    from amaranth.hdl import Fragment

    recorded: dict[int, tuple[int, int, MemoryPlan]] = {}
    platform = MemoryPlatform(binding)
    platform.record_buffer = lambda buf, plan: recorded.__setitem__(
        id(buf), (buf.width, buf.depth, plan))
    top = Fragment.get(component, platform)
    found: list[tuple[str, int, int, MemoryPlan]] = []

    def walk(fragment, path: str) -> None:
        for origin in getattr(fragment, "origins", None) or ():
            if id(origin) in recorded:
                found.append((path, *recorded[id(origin)]))
                return
        for sub, name, _ in fragment.subfragments:
            walk(sub, f"{path}.{name}" if path else str(name))

    walk(top, "")
    return found
