"""The data a flat netlist becomes for rcm_gen's cycle-based gate-level simulator
(:mod:`rcm_gen.sim.gate_cycle`, whose compiled program, ``gate_engine.c``, reads it): every
cell output a truth table of its liberty function over its inputs and its cell's state, in
topological order, in blocks of :data:`BLOCK`; flip-flops, latches and SRAM macro ports as
storage; the ports' nets.  Nothing here is compiled: :func:`build_program` only writes
data (see :mod:`rcm_gen.sim.gate_cycle` for what the simulation does with it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from ..flows.liberty import Cell, Liberty
from ..flows.netlist import (
    CONST0,
    CONST1,
    FlatNetlist,
    cell_storage,
    output_function,
    render_liberty_function,
)

__all__ = ["BLOCK", "MAX_INPUTS", "MacroPorts", "Program", "build_program"]

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
class Program:
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


def build_program(net: FlatNetlist, lib: Liberty, clock: str, macros: Sequence[MacroPorts],
             inputs: list[str], outputs: list[str], before: bool) -> Program:
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
    return Program(blob, internal[:n_nets].copy(), [shown[k] for k in perm.tolist()],
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
