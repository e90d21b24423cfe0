"""A cycle-based, zero-delay gate-level simulator with per-net toggle counts, for netlists
too large for an event-driven simulator's build (a tile of 100,000 cells takes Verilator
tens of minutes to build with toggle coverage; this takes seconds).

The netlist becomes data for one C program (compiled once, whatever the netlist): every
net and every storage bit a byte, every cell output a truth table of its liberty
``function`` (or ``state_function``) over its input pins and its cell's state, in
topological order, in blocks of 64 with a bit per cell.  A cell output is evaluated only
when one of its inputs changed since its last evaluation, a flip-flop takes its data at
its clock's edge only when its inputs or its state changed since it last did (most of a
tile is idle in most cycles, all the more with gated clocks), and only the nets that
changed are counted.  Nothing is compiled per netlist: the build is writing the data.

Storage:

- a flip-flop (liberty ``ff``) is clocked by its own clock net: it takes its
  ``next_state`` when that net makes the edge of its ``clocked_on`` expression, from its
  inputs as they were just before that edge; ``clear``/``preset`` are levels evaluated
  with the logic.  Its clock net must come from the clock port, through any logic
  (buffers, inverters, integrated clock-gating cells, latch-and-AND gates): that logic
  is evaluated first at each clock edge, then every flip-flop whose clock net made its
  edge takes its data, then the rest of the netlist settles; a clock net that changes
  while the logic settles clocks its flip-flops then.  A gated clock that stays low
  clocks nothing and does not toggle;
- a latch (liberty ``latch``, and a ``statetable`` that describes one, such as the
  latch inside SkyWater's integrated clock-gating cell ``dlclkp``) is level-sensitive
  state evaluated with the logic: transparent while enabled.  Logic that loops through
  transparent latches is evaluated again until it settles; a netlist that does not settle
  is refused at run time, naming a net that keeps changing;
- an SRAM macro of a macro library behaves as :func:`rcm_gen.flows.macros.model_verilog`
  (inputs sampled at the rising edge of the clock port, reads and writes completing at
  its falling edge), with its accesses counted.

Each cycle is evaluated as the testbench of :mod:`rcm_gen.sim.gate_level` runs it on a
zero-delay simulator: the clock falls and the cycle's inputs are applied together, the
netlist settles; the clock rises, the netlist settles; a net whose value after a settle
differs from its value after the previous one made one transition (rise or fall), so the
counts are those of Verilator's toggle coverage on the same stimulus (tests check this,
with gated clocks and latch memories too).
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolFailed, UserError
from ..flows.liberty import Cell, Liberty
from ..flows.netlist import (
    CONST0,
    CONST1,
    FlatNetlist,
    cell_storage,
    output_function,
    render_liberty_function,
)
from ..tools import cache_dir, require_executable
from .gate_run import GateRun, check_run

__all__ = ["CycleSim", "MacroPorts"]

#: Nodes per block (one bit each in the block's mask of nodes to evaluate).
BLOCK = 64
#: Words per node of the program.
_STRIDE = 8
#: The most inputs (pins and state) of one truth table.
MAX_INPUTS = 8
#: The macro pins the program reads, in the order of its data.
_MACRO_ROLES = ("rw_csb", "rw_web", "rw_wmask", "rw_addr", "rw_din", "rw_dout", "r_csb",
                "r_addr", "r_dout")
_MAGIC = 0x52434D32  # "RCM2"


@dataclass(frozen=True)
class MacroPorts:
    """An SRAM macro instance of the netlist for the simulator: its library macro
    (:class:`rcm_gen.flows.macros.Macro`) and the nets of each pin (LSB first)."""

    path: str
    macro: Any
    pins: dict[str, tuple[int, ...]]


# -- cells as truth tables ------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def _names(function: str) -> frozenset[str]:
    from liberty.boolean_functions import parse_boolean_function

    try:
        return frozenset(str(s) for s in parse_boolean_function(function.strip()).free_symbols)
    except Exception:
        raise UserError(f"liberty function {function!r} cannot be read") from None


def _values(function: str, var: dict[str, tuple[int, int]], n: int, where: str) -> np.ndarray:
    """``function`` over all ``2**n`` assignments of the variables: ``var`` maps each of
    its names to (variable index, inverted)."""
    index = np.arange(1 << n, dtype=np.int64)

    def symbol(name: str) -> str:
        if name not in var:
            raise UserError(f"liberty function {function!r}{where} names {name!r}, which "
                            "is not a pin or state of the cell")
        i, inv = var[name]
        return f"(1^x[{i}])" if inv else f"x[{i}]"

    text = render_liberty_function(function, where, constants=("z0", "z1"), symbol=symbol,
                                   negate=lambda t: f"(1^{t})", operators=("&", "|", "^"))
    x = [((index >> i) & 1).astype(np.uint8) for i in range(n)]
    out = eval(text, {"x": x, "z0": np.zeros(1 << n, np.uint8),  # noqa: S307 - our text
                      "z1": np.ones(1 << n, np.uint8)})
    return np.asarray(out, dtype=np.uint8) & 1


@dataclass(frozen=True)
class _Table:
    """A truth table over ``names`` (pins, or ``@i`` for the cell's i-th state): entry
    ``sum(value(names[j]) << j)``."""

    names: tuple[str, ...]
    values: bytes


@dataclass(frozen=True)
class _CellPlan:
    outputs: tuple[tuple[str, _Table], ...]     # output pin, its table
    # per storage element: kind, clock pin, active level of it, next table (flip-flop:
    # next_state; latch: the whole level behaviour), level table (a flip-flop's
    # clear/preset) or None, and whether taking the data twice gives what taking it once
    # does (then a flip-flop whose inputs did not change need not take it again)
    storage: tuple[tuple[str, str | None, int, _Table, _Table | None, bool], ...]


def _table(cell: Cell, parts: dict[str, str], combine: Callable[..., np.ndarray],
           own: int | None = None) -> _Table:
    """The table of ``combine(state, **{part: values})`` over the names the ``parts``
    (liberty functions) use, plus state ``own`` (index into the cell's storage) when
    given."""
    where = f" of cell {cell.name}"
    storage = cell_storage(cell)
    alias = {}
    for i, seq in enumerate(storage):
        alias[seq.state] = (f"@{i}", 0)
        if seq.state_n:
            alias[seq.state_n] = (f"@{i}", 1)
    pins = {p for p in cell.pins if cell.pins[p].direction == "input"}
    names: set[str] = set()
    for f in parts.values():
        for n in _names(f):
            if n in alias:
                names.add(alias[n][0])
            elif n in pins:
                names.add(n)
            else:
                raise UserError(f"liberty function {f!r}{where} names {n!r}, which is not "
                                "an input pin or state of the cell")
    if own is not None:
        names.add(f"@{own}")
    order = tuple(sorted(names))
    if len(order) > MAX_INPUTS:
        raise UserError(f"cell {cell.name} has a function of {len(order)} inputs; the cycle "
                        f"simulator models at most {MAX_INPUTS}")
    pos = {n: i for i, n in enumerate(order)}
    var = {n: (pos[n], 0) for n in order if not n.startswith("@")}
    for name, (token, inv) in alias.items():
        if token in pos:
            var[name] = (pos[token], inv)
    n = len(order)
    vals = {k: _values(f, var, n, where) for k, f in parts.items()}
    state = (((np.arange(1 << n) >> pos[f"@{own}"]) & 1).astype(np.uint8)
             if own is not None else None)
    return _Table(order, (combine(state, **vals) & 1).astype(np.uint8).tobytes())


def _idempotent(table: _Table, own: str) -> bool:
    """Whether ``table`` applied twice (its result as the state ``own``) equals it once."""
    if own not in table.names:
        return True
    j = table.names.index(own)
    vals = np.frombuffer(table.values, dtype=np.uint8).astype(np.int64)
    idx = np.arange(len(vals))
    again = vals[(idx & ~(1 << j)) | (vals << j)]
    return bool((again == vals).all())


def _levels(state: np.ndarray, clear: np.ndarray | None = None,
            preset: np.ndarray | None = None, both: int = 0,
            enable: np.ndarray | None = None, data: np.ndarray | None = None) -> np.ndarray:
    out = state if enable is None else np.where(enable, data, state)
    if preset is not None:
        out = np.where(preset, 1, out)
    if clear is not None:
        out = np.where(clear, 0, out)
        if preset is not None:
            out = np.where(clear & preset, both, out)
    return out


def _plan(cell: Cell) -> _CellPlan:
    where = f" of cell {cell.name}"
    outputs = []
    for name, pin in sorted(cell.pins.items()):
        if pin.direction in ("input", "internal"):
            continue
        if pin.three_state:
            raise UserError(f"cell {cell.name} has a three-state output; the cycle simulator "
                            "does not model it")
        f = output_function(cell, pin)
        outputs.append((name, _table(cell, {"f": f}, lambda s, f: f)))
    storage = []
    for i, seq in enumerate(cell_storage(cell)):
        asyncs = {k: f for k, f in (("clear", seq.clear), ("preset", seq.preset)) if f}
        both = 1 if (seq.clear_preset_var1 or "L") == "H" else 0
        if seq.kind == "ff":
            clock_pins = _names(seq.clock)
            if len(clock_pins) != 1 or not clock_pins <= set(cell.inputs):
                raise UserError(f"cell {cell.name}: clocked_on {seq.clock!r} is not one pin")
            (cp,) = clock_pins
            active = int(_values(seq.clock, {cp: (0, 0)}, 1, where)[1])
            if _values(seq.clock, {cp: (0, 0)}, 1, where)[0] == active:
                raise UserError(f"cell {cell.name}: clocked_on {seq.clock!r} is constant")
            nxt = _table(cell, {"f": seq.data}, lambda s, f: f)
            lvl = (_table(cell, asyncs, functools.partial(_levels, both=both), own=i)
                   if asyncs else None)
            storage.append(("ff", cp, active, nxt, lvl, _idempotent(nxt, f"@{i}")))
        else:
            table = _table(cell, {"enable": seq.clock, "data": seq.data, **asyncs},
                           functools.partial(_levels, both=both), own=i)
            storage.append(("latch", None, 1, table, None, True))
    return _CellPlan(tuple(outputs), tuple(storage))


# -- the program ------------------------------------------------------------------------------


@dataclass
class _Program:
    """The simulation data: ``blob`` for the C program, and what maps its results back."""

    blob: bytes
    index_of_net: np.ndarray      # original net id -> internal index
    names: list[str]              # internal index -> a readable name
    blocks: int
    nodes: int
    flops: int
    latches: int
    clock_groups: int


def _first_occurrences(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``x`` (sorted) and where each first occurs."""
    o = np.argsort(x, kind="stable")
    xs = x[o]
    first = np.r_[True, xs[1:] != xs[:-1]]
    return xs[first], o[first]


def _driver_name(net: FlatNetlist, index: int, k: int) -> str:
    return "a constant" if k <= CONST1 else net.instances[index].path


def _csr(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return starts


def _gather(sel: np.ndarray, starts: np.ndarray, flat: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``sel`` of the CSR (``starts``, ``flat``), concatenated, and their
    lengths."""
    lens = starts[sel + 1] - starts[sel]
    offs = np.cumsum(lens) - lens
    idx = np.arange(int(lens.sum()), dtype=np.int64) - np.repeat(offs, lens) + \
        np.repeat(starts[sel], lens)
    return flat[idx], lens


def _emit(sel: np.ndarray, out: np.ndarray, ttn: np.ndarray, starts: np.ndarray,
          flat: np.ndarray, internal: np.ndarray, ext: list[np.ndarray],
          ext_size: list[int]) -> np.ndarray:
    """The program of nodes ``sel`` (in that order), one row of :data:`_STRIDE` words per
    node: its output, its truth table << 4 | its input count, its first four inputs
    (internal indices, the unused ones constant 0) and, for a node of more than four,
    where its next four start in the extension (``ext``, ``ext_size`` words so far)."""
    ins, lens = _gather(sel, starts, flat)
    rows = np.zeros((len(sel), _STRIDE), dtype=np.int64)
    rows[:, 0] = internal[out[sel]]
    rows[:, 1] = ttn[sel] | lens
    rel = np.arange(len(ins), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    node = np.repeat(np.arange(len(sel)), lens)
    low = rel < 4
    rows[node[low], 2 + rel[low]] = internal[ins[low]]
    wide = np.flatnonzero(lens > 4)
    if len(wide):
        extra = np.zeros((len(wide), 4), dtype=np.int64)
        slot = np.full(len(sel), -1, dtype=np.int64)
        slot[wide] = np.arange(len(wide))
        high = ~low
        extra[slot[node[high]], rel[high] - 4] = internal[ins[high]]
        rows[wide, 6] = ext_size[0] + 4 * np.arange(len(wide))
        ext.append(extra.ravel())
        ext_size[0] += extra.size
    return rows


def _program(net: FlatNetlist, lib: Liberty, clock: str, macros: Sequence[MacroPorts],
             inputs: list[str], outputs: list[str], before: bool) -> _Program:
    n_nets = net.net_count
    clk = net.ports[clock][1][0]
    state_names: list[str] = []
    plans: dict[str, _CellPlan] = {}
    table_ids: dict[int, int] = {}
    tables: list[_Table] = []

    def tid(t: _Table) -> int:
        i = table_ids.get(id(t))
        if i is None:
            i = table_ids[id(t)] = len(tables)
            tables.append(t)
        return i

    # nodes, evaluated in the settle loop: cell outputs, latches, flip-flop levels
    n_out: list[int] = []
    n_tab: list[int] = []
    n_len: list[int] = []
    n_in: list[int] = []
    n_storage: list[bool] = []
    # flip-flops, taking their data at their clock's edge
    f_clk: list[int] = []
    f_act: list[int] = []
    f_state: list[int] = []
    f_tab: list[int] = []
    f_len: list[int] = []
    f_in: list[int] = []
    f_idem: list[bool] = []
    driver = [-1] * n_nets  # net -> the instance driving it
    latches = 0
    spec: dict[int, tuple[tuple[str, int], ...]] = {}  # table -> (name, state or -1)

    def refs(table: _Table, pins: dict[str, int], base: int, inst: Any) -> list[int]:
        try:
            return [base + j if j >= 0 else pins[n] for n, j in spec[id(table)]]
        except KeyError as exc:
            raise UserError(f"input {exc.args[0]} of cell {inst.path} ({inst.cell}) is not "
                            "connected") from None

    for index, inst in enumerate(net.instances):
        plan = plans.get(inst.cell)
        if plan is None:
            cell = lib.cells[inst.cell]
            plan = plans[inst.cell] = _plan(cell)
            for t in [t for _, t in plan.outputs] + [t for st in plan.storage
                                                     for t in st[3:5] if t is not None]:
                tid(t)
                spec[id(t)] = tuple((n, int(n[1:]) if n[0] == "@" else -1) for n in t.names)
        base = n_nets + len(state_names)
        pins = inst.pins
        if plan.storage:
            storage = cell_storage(lib.cells[inst.cell])
            state_names += [f"{inst.path}.{seq.state}" for seq in storage]

        for i, (kind, cp, active, table, lvl, idem) in enumerate(plan.storage):
            if kind == "latch":
                latches += 1
                r = refs(table, pins, base, inst)
                n_out.append(base + i)
                n_tab.append(table_ids[id(table)])
                n_len.append(len(r))
                n_in += r
                n_storage.append(True)
                continue
            if cp not in pins:
                raise UserError(f"clock pin {cp} of flip-flop {inst.path} ({inst.cell}) is "
                                "not connected")
            r = refs(table, pins, base, inst)
            f_clk.append(pins[cp])
            f_act.append(active)
            f_state.append(base + i)
            f_tab.append(table_ids[id(table)])
            f_len.append(len(r))
            f_in += r
            f_idem.append(idem)
            if lvl is not None:
                r = refs(lvl, pins, base, inst)
                n_out.append(base + i)
                n_tab.append(table_ids[id(lvl)])
                n_len.append(len(r))
                n_in += r
                n_storage.append(True)
        for pin, table in plan.outputs:
            k = pins.get(pin)
            if k is None:
                continue
            if k <= CONST1 or driver[k] >= 0:
                raise UserError(f"net {net.names[k]!r} is driven by {inst.path} ({inst.cell}) "
                                f"and by {_driver_name(net, driver[k], k)}")
            driver[k] = index
            r = refs(table, pins, base, inst)
            n_out.append(k)
            n_tab.append(table_ids[id(table)])
            n_len.append(len(r))
            n_in += r
            n_storage.append(False)
    n_v = n_nets + len(state_names)
    names = list(net.names) + state_names
    for mp in macros:
        for role in ("rw_dout", "r_dout"):
            for k in mp.pins[mp.macro.pin(role)]:
                if k <= CONST1 or driver[k] >= 0:
                    raise UserError(f"net {names[k]!r} is driven by macro {mp.path} and by "
                                    f"{_driver_name(net, driver[k], k)}")

    m = len(n_out)
    out = np.asarray(n_out, dtype=np.int64)
    lens = np.asarray(n_len, dtype=np.int64)
    starts = _csr(lens)
    flat_in = np.asarray(n_in, dtype=np.int64)
    writer = np.full(n_v, -1, dtype=np.int64)
    writer[out] = np.arange(m)
    owner = np.repeat(np.arange(m), lens)
    dep = writer[flat_in]
    keep = (dep >= 0) & (dep != owner)
    d_start = np.searchsorted(owner[keep], np.arange(m + 1))
    order = np.asarray(_topological(d_start.tolist(), dep[keep].tolist(), n_storage, n_out,
                                    names), dtype=np.int64)

    # internal numbering: constants, the clock and the inputs, then first use in
    # evaluation order (each node's inputs, then its output)
    ins_o, lens_o = _gather(order, starts, flat_in)
    seq = np.empty(len(ins_o) + m, dtype=np.int64)
    outs_at = np.cumsum(lens_o + 1) - 1
    is_out = np.zeros(len(seq), dtype=bool)
    is_out[outs_at] = True
    seq[outs_at] = out[order]
    seq[~is_out] = ins_o
    ports = [k for p in [clock, *inputs] for k in net.ports[p][1]]
    seq = np.concatenate([np.asarray([CONST0, CONST1, *ports], dtype=np.int64), seq,
                          np.arange(n_v, dtype=np.int64)])
    uniq, first = _first_occurrences(seq)
    perm = uniq[np.argsort(first, kind="stable")]
    internal = np.empty(n_v, dtype=np.int64)
    internal[perm] = np.arange(n_v)

    # the clock logic: nodes between the clock port and flip-flop clock pins
    by_in = np.argsort(flat_in, kind="stable")
    rd_off = np.searchsorted(flat_in[by_in], np.arange(n_v + 1))
    rd_node = owner[by_in]
    forward = np.zeros(n_v, dtype=bool)
    forward[clk] = True
    frontier = [clk]
    while frontier:
        nxt = []
        for k in frontier:
            for j in rd_node[rd_off[k]:rd_off[k + 1]].tolist():
                o = n_out[j]
                if not forward[o]:
                    forward[o] = True
                    nxt.append(o)
        frontier = nxt
    fclk = np.asarray(f_clk, dtype=np.int64)
    bad = np.flatnonzero(~forward[fclk]) if len(fclk) else np.zeros(0, dtype=np.int64)
    if len(bad):
        j = int(bad[0])
        inst = names[f_state[j]].rsplit(".", 1)[0]
        raise UserError(f"flip-flop {inst} is clocked by net {names[f_clk[j]]!r}, which does "
                        f"not come from the clock port {clock!r}; the cycle simulator cannot "
                        "run it")
    cone = np.zeros(m, dtype=bool)
    stack = [int(writer[k]) for k in np.unique(fclk).tolist() if writer[k] >= 0]
    while stack:
        j = stack.pop()
        if cone[j]:
            continue
        cone[j] = True
        for k in flat_in[starts[j]:starts[j + 1]].tolist():
            w = int(writer[k])
            if w >= 0 and forward[k] and not cone[w]:
                stack.append(w)

    # truth tables
    tt = bytearray()
    tt_off = np.zeros(len(tables), dtype=np.int64)
    seen_tt: dict[bytes, int] = {}
    for i, t in enumerate(tables):
        if t.values not in seen_tt:
            seen_tt[t.values] = len(tt)
            tt.extend(t.values)
        tt_off[i] = seen_tt[t.values]
    ttn = tt_off[np.asarray(n_tab, dtype=np.int64)] << 4 if m else np.zeros(0, np.int64)

    # flip-flops by clock net and edge, in blocks of up to 64 within each
    ext: list[np.ndarray] = []
    ext_size = [0]
    nf = len(f_clk)
    f_ttn = (tt_off[np.asarray(f_tab, dtype=np.int64)] << 4 if nf
             else np.zeros(0, dtype=np.int64))
    fact = np.asarray(f_act, dtype=np.int64)
    fstate = np.asarray(f_state, dtype=np.int64)
    gk = internal[fclk] * 2 + fact
    f_order = np.lexsort((internal[fstate], gk)) if nf else np.zeros(0, dtype=np.int64)
    f_starts = _csr(np.asarray(f_len, dtype=np.int64))
    f_flat = np.asarray(f_in, dtype=np.int64)
    fcode = _emit(f_order, fstate, f_ttn, f_starts, f_flat, internal, ext, ext_size)
    gk_o = gk[f_order]
    firsts = np.flatnonzero(np.diff(gk_o, prepend=-1)) if nf else np.zeros(0, np.int64)
    ends = np.append(firsts[1:], nf) if nf else firsts
    fb_first: list[int] = []   # per flip-flop block: its first flip-flop (in f_order)
    grp: list[int] = []
    for a, e in zip(firsts.tolist(), ends.tolist(), strict=True):
        g = int(f_order[a])
        q0 = len(fb_first)
        fb_first += list(range(a, e, 64))
        grp += [int(internal[f_clk[g]]), f_act[g], q0, len(fb_first)]
    nfb = len(fb_first)
    first_mark = np.zeros(nf, dtype=np.int64)
    first_mark[np.asarray(fb_first, dtype=np.int64)] = 1
    fb_of = np.cumsum(first_mark) - 1  # flip-flop (in f_order) -> its block
    fb_start = np.append(np.asarray(fb_first, dtype=np.int64), nf)
    f_id = (fb_of * 64 + np.arange(nf) - fb_start[fb_of])  # in f_order
    always = np.zeros(max(nfb, 1), dtype=np.uint64)
    idem = np.asarray(f_idem, dtype=bool)
    for i in np.flatnonzero(~idem[f_order]).tolist():
        always[fb_of[i]] |= np.uint64(1 << int(i - fb_start[fb_of[i]]))

    # settle nodes in blocks of 64; the nodes and flip-flops reading each index (node at
    # position i: reader i; flip-flop slot j of flip-flop block q: reader 64 * (nblocks + q)
    # + j)
    nblocks = max(1, -(-m // BLOCK))
    code = np.zeros((nblocks * BLOCK, _STRIDE), dtype=np.int64)
    code[:m] = _emit(order, out, ttn, starts, flat_in, internal, ext, ext_size)
    pos = np.empty(m, dtype=np.int64)
    pos[order] = np.arange(m)
    self_read = dep == owner
    f_rank = np.empty(nf, dtype=np.int64)
    f_rank[f_order] = np.arange(nf)
    f_owner = np.repeat(np.arange(nf), np.asarray(f_len, dtype=np.int64))
    reads = np.concatenate([internal[flat_in[~self_read]], internal[f_flat], internal[fstate]])
    readers = np.concatenate([
        pos[owner[~self_read]],
        64 * nblocks + f_id[f_rank[f_owner]] if nf else np.zeros(0, np.int64),
        64 * nblocks + f_id[f_rank] if nf else np.zeros(0, np.int64)])
    span = 64 * (nblocks + nfb)
    key = np.sort(reads * span + readers)
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    fo_off = np.searchsorted(key // span, np.arange(n_v + 1))
    fo_rd = key % span
    cone_code = _emit(order[cone[order]], out, ttn, starts, flat_in, internal, ext, ext_size)
    ext_all = np.concatenate(ext) if ext else np.zeros(1, dtype=np.int64)
    mac: list[int] = []
    for mp in macros:
        mc = mp.macro
        mac += [mc.words, mc.bits, mc.write_mask_bits]
        for role in _MACRO_ROLES:
            bits = mp.pins[mc.pin(role)]
            mac += [len(bits), *(int(internal[k]) for k in bits)]
    in_bits = [int(internal[k]) for p in inputs for k in net.ports[p][1]]
    out_bits = [int(internal[k]) for p in outputs for k in net.ports[p][1]]
    header = [_MAGIC, n_v, nblocks, len(ext_all), len(tt), len(fo_rd), len(cone_code),
              len(grp) // 4, len(fcode), len(in_bits), len(out_bits), int(internal[clk]),
              len(macros), len(mac), int(before), nfb, m]

    def i32(x: Any) -> bytes:
        return np.asarray(x, dtype="<i4").tobytes()

    blob = b"".join([i32(header), i32(code), i32(ext_all), i32(fo_off), i32(fo_rd),
                     i32(cone_code), i32(grp), i32(fcode), i32(fb_start), i32(in_bits),
                     i32(out_bits), i32(mac), bytes(tt),
                     always.astype("<u8").tobytes()])
    # a storage bit is named by the net its cell drives from it
    shown = list(names)
    is_state = (flat_in >= n_nets) & ~np.asarray(n_storage, dtype=bool)[owner]
    for k, o in zip(flat_in[is_state][::-1].tolist(), out[owner[is_state]][::-1].tolist(),
                    strict=True):
        shown[k] = names[o]
    return _Program(blob, internal[:n_nets].copy(), [shown[k] for k in perm.tolist()],
                    nblocks, m, nf, latches, len(grp) // 4)


def _topological(d_start: list[int], d_node: list[int], storage: list[bool],
                 node_out: list[int], names: list[str]) -> list[int]:
    """The nodes in an order where each comes after the nodes it reads; a loop is allowed
    only through a storage node (a latch), whose reads then come first, and the
    simulation evaluates again until it settles."""
    m = len(storage)
    state = [0] * m  # 0 unvisited, 1 on the stack, 2 done
    where = [0] * m  # position on the stack
    order: list[int] = []
    for start in range(m):
        if state[start]:
            continue
        stack = [start]
        cursor = [d_start[start]]
        state[start] = 1
        where[start] = 0
        while stack:
            j = stack[-1]
            c = cursor[-1]
            if c == d_start[j + 1]:
                stack.pop()
                cursor.pop()
                state[j] = 2
                order.append(j)
                continue
            cursor[-1] = c + 1
            nxt = d_node[c]
            s = state[nxt]
            if s == 2:
                continue
            if s == 1:
                if not any(storage[x] for x in stack[where[nxt]:]):
                    raise UserError(f"the netlist has a combinational loop through net "
                                    f"{names[node_out[nxt]]!r}; the cycle simulator needs "
                                    "none (loops only through latches)")
                continue
            state[nxt] = 1
            where[nxt] = len(stack)
            stack.append(nxt)
            cursor.append(d_start[nxt])
    return order


class CycleSim:
    """The compiled simulation of ``netlist`` (cells of ``lib``; SRAM ``macros``), clocked
    by input port ``clock``; the interface of :class:`rcm_gen.sim.gate_level.GateSim`.

    The C program is built once in ``<cache>/gatesim/engine-<hash>``; the netlist's data
    lives in ``<cache>/gatesim/<hash>/cycle``.  ``access_counts`` of a run hold, per
    window, the accesses of every macro port (``read``/``write`` of port 0, ``read`` of
    port 1), in the order of ``macros``.

    Raises
    ------
    UserError
        A cell this simulator does not model (three-state output, a statetable that is
        not a latch, a function of more than :data:`MAX_INPUTS` inputs), a flip-flop whose
        clock does not come from ``clock``, a combinational loop not through a latch; at
        run time, a netlist that does not settle.
    """

    simulator = "cycle"

    def __init__(self, netlist: FlatNetlist, lib: Liberty, clock: str,
                 sample: str = "after", macros: Sequence[MacroPorts] = ()) -> None:
        if sample not in ("after", "before"):
            raise ValueError(f"sample must be after or before, not {sample!r}")
        if clock not in netlist.ports or netlist.ports[clock][0] != "input":
            raise UserError(f"clock {clock!r} is not an input port of {netlist.top!r}")
        self.netlist, self.lib, self.clock, self.sample = netlist, lib, clock, sample
        self.macros = tuple(macros)
        self.inputs = [p for p, (d, _) in netlist.ports.items() if d == "input" and p != clock]
        self.outputs = [p for p, (d, _) in netlist.ports.items() if d != "input"]
        self._prog = _program(netlist, lib, clock, self.macros, self.inputs, self.outputs,
                              sample == "before")
        #: Size of the simulation data (bytes).
        self.program_bytes = len(self._prog.blob)
        digest = hashlib.sha256(_ENGINE.encode() + self._prog.blob).hexdigest()[:16]
        self.dir = cache_dir() / "gatesim" / digest / "cycle"

    # -- build ----------------------------------------------------------------------------

    @staticmethod
    def engine() -> Path:
        """The simulator program (compiled once, the same for every netlist)."""
        cc = require_executable(os.environ.get("CC", "cc"))
        flags = ["-O2", "-std=c99"]
        digest = hashlib.sha256((_ENGINE + " ".join([cc, *flags])).encode()).hexdigest()[:16]
        d = cache_dir() / "gatesim" / f"engine-{digest}"
        exe = d / "sim"
        if exe.exists():
            return exe
        d.mkdir(parents=True, exist_ok=True)
        src = d / f"sim.{os.getpid()}.c"
        src.write_text(_ENGINE)
        tmp = d / f"sim.{os.getpid()}.tmp"
        log = d / "build.log"
        with open(log, "w") as f:
            proc = subprocess.run([cc, *flags, "-o", str(tmp), str(src)], stdout=f,
                                  stderr=subprocess.STDOUT, cwd=d)
        if proc.returncode != 0 or not tmp.exists():
            raise ToolFailed(f"the C compiler could not build the cycle simulator; log: {log}")
        os.replace(tmp, exe)
        src.replace(d / "sim.c")
        return exe

    def build(self) -> Path:
        """Build the simulator (once) and write the netlist's data; the program."""
        exe = self.engine()
        d = self.dir
        data = d / "net.bin"
        if not data.exists():
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f"net.{os.getpid()}.tmp"
            tmp.write_bytes(self._prog.blob)
            os.replace(tmp, data)
        return exe

    # -- run ------------------------------------------------------------------------------

    def run(self, inputs: dict[str, np.ndarray], windows: Sequence[tuple[int, int]],
            tag: str = "run", on_progress: Callable[[int, int], None] | None = None
            ) -> GateRun:
        """As :meth:`rcm_gen.sim.gate_level.GateSim.run`; the result also has the macros'
        ``access_counts`` (windows × 3·macros).

        Raises
        ------
        UserError
            The netlist does not settle (a loop through transparent latches), naming a
            net that kept changing.
        """
        cycles = check_run(self.inputs, inputs, windows)
        exe = self.build()
        run = self.dir / "runs" / f"{tag}-{os.getpid()}"
        run.mkdir(parents=True, exist_ok=True)
        for old in run.glob("win_*.bin"):
            old.unlink()
        started = time.perf_counter()
        # one byte per input bit per cycle, LSB first per port
        cols = []
        for p in self.inputs:
            w = len(self.netlist.ports[p][1])
            v = np.asarray(inputs[p], dtype=object)
            if len(v) != cycles:
                raise ValueError(f"input {p} has {len(v)} cycles, not {cycles}")
            for off in range(0, w, 62):  # 62-bit slices through numpy
                n = min(62, w - off)
                arr = np.array([(int(x) >> off) & ((1 << n) - 1) for x in v], dtype=np.int64)
                cols.append(((arr[:, None] >> np.arange(n)) & 1).astype(np.uint8))
        stim = run / "stim.bin"
        (np.concatenate(cols, axis=1) if cols else np.zeros((cycles, 0), np.uint8)
         ).tofile(stim)
        (run / "windows.txt").write_text(
            f"{cycles} {len(windows)}\n" + "".join(f"{a} {b}\n" for a, b in windows))
        out = run / "out.bin"
        log = run / "sim.log"
        n_out = sum(len(self.netlist.ports[p][1]) for p in self.outputs)
        with open(log, "w") as f:
            proc = subprocess.Popen([str(exe), str(self.dir / "net.bin"), str(stim),
                                     str(run / "windows.txt"), str(out), str(run)],
                                    stdout=f, stderr=subprocess.STDOUT, cwd=run)
            while proc.poll() is None:
                if on_progress is not None and out.exists():
                    on_progress(min(out.stat().st_size // max(n_out, 1), cycles), cycles)
                time.sleep(0.1)
        if on_progress is not None:
            on_progress(cycles, cycles)
        if proc.returncode == 4:
            text = log.read_text(errors="replace").split()
            k = int(text[text.index("unsettled") + 1]) if "unsettled" in text else -1
            name = self._prog.names[k] if 0 <= k < len(self._prog.names) else "?"
            raise UserError(f"the netlist of {self.netlist.top} does not settle: net "
                            f"{name!r} keeps changing (a loop through transparent latches)")
        if proc.returncode != 0:
            raise ToolFailed(f"the cycle simulation failed (exit status {proc.returncode}); "
                             f"log: {log}")
        bits = np.fromfile(out, dtype=np.uint8)
        if bits.size != cycles * n_out:
            raise ToolFailed(f"the cycle simulation wrote {bits.size} output bits for "
                             f"{cycles} cycles of {n_out}; log: {log}")
        bits = bits.reshape(cycles, n_out)
        outputs: dict[str, list[int]] = {}
        col = 0
        for p in self.outputs:
            w = len(self.netlist.ports[p][1])
            chunk = bits[:, col:col + w]
            col += w
            values = [0] * cycles
            for off in range(0, w, 62):
                n = min(62, w - off)
                part = (chunk[:, off:off + n].astype(np.int64) << np.arange(n)).sum(axis=1)
                values = [a | (int(b) << off) for a, b in zip(values, part.tolist(),
                                                               strict=True)]
            outputs[p] = values
        n = self.netlist.net_count
        n_v = len(self._prog.names)
        at = self._prog.index_of_net
        rises = np.zeros((len(windows), n))
        falls = np.zeros((len(windows), n))
        accesses = np.zeros((len(windows), 3 * len(self.macros)))
        need = 2 * n_v + max(3 * len(self.macros), 1)
        for i, (a, _) in enumerate(windows):
            path = run / f"win_{a}.bin"
            try:
                data = np.fromfile(path, dtype=np.uint32)
            except OSError:
                raise ToolFailed(f"the cycle simulation wrote no toggle counts for window "
                                 f"{i}; log: {log}") from None
            if data.size != need:
                raise ToolFailed(f"toggle counts of window {i} ({path}) have {data.size} "
                                 f"values, not {need}; log: {log}")
            rises[i] = data[:n_v][at]
            falls[i] = data[n_v:2 * n_v][at]
            accesses[i] = data[2 * n_v:2 * n_v + 3 * len(self.macros)]
        for k in (CONST0, CONST1):
            rises[:, k] = falls[:, k] = 0
        return GateRun(outputs, rises, falls, self.simulator, time.perf_counter() - started,
                       log, accesses)


_ENGINE = r"""
/* rcm_gen's cycle-based gate-level simulator: the netlist is data (see gate_cycle.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t i32;
typedef uint64_t u64;
enum { PASS_LIMIT = 1000, STRIDE = 8 };

static i32 NV, NB, NEXT, NTT, NFO, NCONE, NG, NFC, NIN, NOUT, CLK, NMAC, NMD, BEFORE, NFB, NM;
static i32 *code, *ext, *fo_off, *fo, *cone, *grp, *fcode, *fb_start, *IN, *OUT, *md;
static uint8_t *tt, *v, *pv, *flag, *last;
static u64 *always, *dmask, *dsum, *fmask;
static i32 NSUM, NS64, *chg, nchg, lo, again, last_changed;

typedef struct {
  i32 words, bits, mbits, n[9], *pin[9];
  uint8_t *mem, *din;
  u64 a0, a1, mask;
  int cs0, we0, cs1;
} Macro;
static Macro *mac;
static uint32_t *rise, *fall, *acc;
static i32 NACC;

static void *load(FILE *f, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p || fread(p, size, n, f) != n) { fprintf(stderr, "bad simulation data\n"); exit(2); }
  return p;
}

static inline void touch(i32 k) {
  if (!flag[k]) { flag[k] = 1; chg[nchg++] = k; }
}

/* reader r: a node of the settle loop (block r / 64) or a flip-flop */
static inline void mark(i32 r) {
  if (r < NS64) {
    i32 b = r >> 6;
    dmask[b] |= (u64)1 << (r & 63);
    dsum[b >> 6] |= (u64)1 << (b & 63);
    if (b < lo) lo = b;
  } else {
    r -= NS64;
    fmask[r >> 6] |= (u64)1 << (r & 63);
  }
}

/* a change from outside the settle loop: every reader of k */
static inline void setx(i32 k, uint8_t x) {
  if (v[k] == x) return;
  v[k] = x;
  touch(k);
  for (i32 e = fo_off[k]; e < fo_off[k + 1]; e++) mark(fo[e]);
}

/* a node: output, truth table << 4 | input count, four inputs, where four more are */
static inline uint8_t lookup(const i32 *p) {
  uint32_t ttn = (uint32_t)p[1];
  uint32_t idx = (uint32_t)v[p[2]] | (uint32_t)v[p[3]] << 1 | (uint32_t)v[p[4]] << 2 |
                 (uint32_t)v[p[5]] << 3;
  if ((ttn & 15) > 4) {
    const i32 *x = ext + p[6];
    idx |= (uint32_t)v[x[0]] << 4 | (uint32_t)v[x[1]] << 5 | (uint32_t)v[x[2]] << 6 |
           (uint32_t)v[x[3]] << 7;
  }
  return tt[(ttn >> 4) + idx];
}

/* the nodes of block b in mask, in order; a change marks its readers */
static void eval_block(i32 b, u64 mask) {
  const i32 *base = code + (size_t)b * 64 * STRIDE;
  const i32 first = b << 6;
  while (mask) {
    int s = __builtin_ctzll(mask);
    mask &= mask - 1;
    const i32 *p = base + s * STRIDE;
    i32 out = p[0];
    uint8_t x = lookup(p);
    if (x == v[out]) continue;
    v[out] = x;
    touch(out);
    last_changed = out;
    for (i32 e = fo_off[out]; e < fo_off[out + 1]; e++) {
      i32 r = fo[e];
      if (r >= first && r < first + 64 && (r & 63) > s) {
        mask |= (u64)1 << (r & 63);
      } else {
        mark(r);
        if (r <= first + s) again = 1;
      }
    }
  }
}

/* evaluate marked nodes in order until none is left */
static void settle(void) {
  for (int pass = 0;; pass++) {
    i32 w = lo >> 6;
    lo = NB;
    again = 0;
    for (; w < NSUM; w++) {
      /* blocks marked behind the one evaluated wait for the next pass */
      for (int from = 0; from < 64;) {
        u64 bits = dsum[w] & (~(u64)0 << from);
        if (!bits) break;
        int j = __builtin_ctzll(bits);
        dsum[w] &= ~((u64)1 << j);
        from = j + 1;
        i32 b = (w << 6) | j;
        u64 mask = dmask[b];
        dmask[b] = 0;
        if (mask) eval_block(b, mask);
      }
    }
    if (!again) { lo = NB; return; }
    if (pass >= PASS_LIMIT) {
      fprintf(stderr, "unsettled %d\n", (int)last_changed);
      exit(4);
    }
  }
}

/* the clock logic, from the clock port to the flip-flops' clock pins */
static void clock_logic(void) {
  for (i32 i = 0; i < NCONE; i++) {
    const i32 *p = cone + (size_t)i * STRIDE;
    setx(p[0], lookup(p));
  }
}

/* flip-flops whose clock net made its active edge take their data: those whose inputs
   changed since they last did (or whose data taken twice is not taken once) */
static int capture(void) {
  int any = 0;
  for (i32 g = 0; g < NG; g++) {
    const i32 *gr = grp + 4 * g;
    uint8_t c = v[gr[0]];
    if (c == last[g]) continue;
    last[g] = c;
    if (c != gr[1]) continue;
    any = 1;
    for (i32 q = gr[2]; q < gr[3]; q++) {
      u64 mask = fmask[q] | always[q];
      fmask[q] = 0;
      const i32 *base = fcode + (size_t)fb_start[q] * STRIDE;
      while (mask) {
        int s = __builtin_ctzll(mask);
        mask &= mask - 1;
        const i32 *p = base + s * STRIDE;
        setx(p[0], lookup(p));
      }
    }
  }
  return any;
}

static void settle_all(void) {
  for (int i = 0;; i++) {
    settle();
    if (!capture()) return;
    if (i >= PASS_LIMIT) {
      fprintf(stderr, "unsettled %d\n", (int)last_changed);
      exit(4);
    }
  }
}

/* the values after a settle against those after the previous one */
static void count(void) {
  for (i32 i = 0; i < nchg; i++) {
    i32 k = chg[i];
    flag[k] = 0;
    if (v[k] != pv[k]) {
      if (v[k]) rise[k]++; else fall[k]++;
      pv[k] = v[k];
    }
  }
  nchg = 0;
}

static u64 word(const i32 *pins, i32 n) {
  u64 w = 0;
  for (i32 b = 0; b < n && b < 64; b++) w |= (u64)v[pins[b]] << b;
  return w;
}

/* SRAM macros: inputs sampled at the rising edge ... */
static void macro_rise(void) {
  for (i32 n = 0; n < NMAC; n++) {
    Macro *m = mac + n;
    m->cs0 = !v[m->pin[0][0]];
    m->we0 = !v[m->pin[1][0]];
    m->cs1 = !v[m->pin[6][0]];
    m->a0 = word(m->pin[3], m->n[3]);
    m->a1 = word(m->pin[7], m->n[7]);
    m->mask = word(m->pin[2], m->n[2]);
    for (i32 b = 0; b < m->bits; b++) m->din[b] = v[m->pin[4][b]];
    if (m->cs0) acc[3 * n + (m->we0 ? 1 : 0)]++;
    if (m->cs1) acc[3 * n + 2]++;
  }
}

/* ... reads and writes complete at the falling edge */
static void macro_fall(void) {
  for (i32 n = 0; n < NMAC; n++) {
    Macro *m = mac + n;
    if (m->cs0 && m->a0 < (u64)m->words) {
      uint8_t *row = m->mem + m->a0 * m->bits;
      if (m->we0) {
        for (i32 b = 0; b < m->bits; b++)
          if ((m->mask >> (b / m->mbits)) & 1) row[b] = m->din[b];
      } else {
        for (i32 b = 0; b < m->bits; b++) setx(m->pin[5][b], row[b]);
      }
    }
    if (m->cs1 && m->a1 < (u64)m->words && !(m->cs0 && m->we0 && m->a0 == m->a1)) {
      uint8_t *row = m->mem + m->a1 * m->bits;
      for (i32 b = 0; b < m->bits; b++) setx(m->pin[8][b], row[b]);
    }
  }
}

static void sample(uint8_t *out, FILE *fo_) {
  for (i32 i = 0; i < NOUT; i++) out[i] = v[OUT[i]];
  fwrite(out, 1, NOUT, fo_);
}

static void dump(const char *dir, long start) {
  char path[4096];
  snprintf(path, sizeof path, "%s/win_%ld.bin", dir, start);
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); exit(3); }
  fwrite(rise, sizeof rise[0], NV, f);
  fwrite(fall, sizeof fall[0], NV, f);
  fwrite(acc, sizeof acc[0], NACC, f);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: sim DATA STIM WINDOWS OUT DIR\n"); return 2; }
  FILE *fd = fopen(argv[1], "rb");
  if (!fd) { perror(argv[1]); return 2; }
  i32 h[17];
  if (fread(h, sizeof h[0], 17, fd) != 17 || h[0] != 0x52434D32) {
    fprintf(stderr, "bad simulation data\n");
    return 2;
  }
  NV = h[1]; NB = h[2]; NEXT = h[3]; NTT = h[4]; NFO = h[5]; NCONE = h[6]; NG = h[7];
  NFC = h[8]; NIN = h[9]; NOUT = h[10]; CLK = h[11]; NMAC = h[12]; NMD = h[13];
  BEFORE = h[14]; NFB = h[15]; NM = h[16];
  code = load(fd, (size_t)NB * 64 * STRIDE, 4); ext = load(fd, NEXT, 4);
  fo_off = load(fd, NV + 1, 4); fo = load(fd, NFO, 4);
  cone = load(fd, (size_t)NCONE * STRIDE, 4); grp = load(fd, 4 * NG, 4);
  fcode = load(fd, (size_t)NFC * STRIDE, 4); fb_start = load(fd, NFB + 1, 4);
  IN = load(fd, NIN, 4); OUT = load(fd, NOUT, 4); md = load(fd, NMD, 4);
  tt = load(fd, NTT, 1); always = load(fd, NFB ? NFB : 1, 8);
  fclose(fd);
  NSUM = (NB + 63) / 64;
  NS64 = NB * 64;
  v = calloc(NV, 1); pv = calloc(NV, 1); flag = calloc(NV, 1); last = calloc(NG + 1, 1);
  chg = calloc(NV, 4); rise = calloc(NV, 4); fall = calloc(NV, 4);
  dmask = calloc(NB, 8); dsum = calloc(NSUM + 1, 8); fmask = calloc(NFB + 1, 8);
  NACC = NMAC ? 3 * NMAC : 1;
  acc = calloc(NACC, 4);
  mac = calloc(NMAC + 1, sizeof *mac);
  if (!v || !pv || !flag || !last || !chg || !rise || !fall || !dmask || !dsum || !fmask ||
      !acc || !mac) {
    fprintf(stderr, "out of memory\n");
    return 2;
  }
  for (i32 n = 0, at = 0; n < NMAC; n++) {
    Macro *m = mac + n;
    m->words = md[at++]; m->bits = md[at++]; m->mbits = md[at++];
    for (int r = 0; r < 9; r++) { m->n[r] = md[at++]; m->pin[r] = md + at; at += m->n[r]; }
    m->mem = calloc((size_t)m->words * m->bits, 1);
    m->din = calloc(m->bits, 1);
    if (m->mbits < 1) m->mbits = m->bits;
  }

  FILE *fs = fopen(argv[2], "rb"), *fw = fopen(argv[3], "r"), *fo_ = fopen(argv[4], "wb");
  if (!fs || !fw || !fo_) { perror("open"); return 2; }
  long cycles; int nwin;
  if (fscanf(fw, "%ld %d", &cycles, &nwin) != 2) return 2;
  long *ws = malloc(sizeof(long) * (nwin + 1)), *we = malloc(sizeof(long) * (nwin + 1));
  for (int i = 0; i < nwin; i++) if (fscanf(fw, "%ld %ld", &ws[i], &we[i]) != 2) return 2;
  uint8_t *in = calloc(NIN + 1, 1), *out = calloc(NOUT + 1, 1);

  /* every net from the constants and a zero state: every node evaluated once */
  v[1] = 1;
  for (i32 i = 0; i < NM; i++) mark(i);
  for (i32 q = 0; q < NFB; q++)
    for (i32 j = 0; j < fb_start[q + 1] - fb_start[q]; j++) fmask[q] |= (u64)1 << j;
  lo = 0;
  clock_logic();
  settle();
  for (i32 g = 0; g < NG; g++) last[g] = v[grp[4 * g]];
  memcpy(pv, v, NV);
  for (i32 i = 0; i < nchg; i++) flag[chg[i]] = 0;
  nchg = 0;

  int w = 0;
  for (long c = 0; c < cycles; c++) {
    if (w < nwin && c == we[w]) { dump(argv[5], ws[w]); w++; }
    if (w < nwin && c == ws[w]) {
      memset(rise, 0, (size_t)NV * 4); memset(fall, 0, (size_t)NV * 4);
      memset(acc, 0, (size_t)NACC * 4);
    }
    if (fread(in, 1, NIN, fs) != (size_t)NIN) { fprintf(stderr, "short stimulus\n"); return 2; }
    /* the clock falls and the cycle's inputs arrive */
    setx(CLK, 0);
    clock_logic();
    capture();
    macro_fall();
    for (i32 i = 0; i < NIN; i++) setx(IN[i], in[i]);
    settle_all();
    count();
    if (BEFORE) sample(out, fo_);
    /* the clock rises */
    setx(CLK, 1);
    clock_logic();
    capture();
    macro_rise();
    settle_all();
    count();
    if (!BEFORE) sample(out, fo_);
    if ((c & 63) == 63) fflush(fo_);
  }
  if (w < nwin && cycles == we[w]) { dump(argv[5], ws[w]); w++; }
  fclose(fo_);
  return 0;
}
"""
