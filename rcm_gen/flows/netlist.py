"""Synthesized netlists for gate-level work: the hierarchical netlist that ``synth``
writes, flattened into nets and leaf cell instances (each remembering the module it came
from), written back as one flat Verilog module, and Verilog models of the library's cells
generated from their liberty ``function``, ``ff`` and ``latch`` groups.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, UserError
from .liberty import Cell, Liberty, Pin, Sequential
from .yosys import run_yosys

__all__ = ["CONST0", "CONST1", "FlatNetlist", "Instance", "MacroInstance", "cell_models",
           "cell_storage", "flatten_netlist", "liberty_verilog_expr", "output_function",
           "read_netlist", "render_liberty_function", "write_flat_verilog"]

#: Net ids of the constants; every other net is numbered from 2.
CONST0, CONST1 = 0, 1


@dataclass(frozen=True)
class Instance:
    """A leaf cell: its instance path, library cell, pin → net id, and the Verilog module
    (hierarchical name, as in the synthesized netlist) it was instantiated in."""

    path: str
    cell: str
    pins: dict[str, int]
    module: str


@dataclass(frozen=True)
class MacroInstance:
    """A memory macro (a black box of a macro library): its instance path, macro name,
    pin (bus name) → net ids (LSB first), and the module it was instantiated in."""

    path: str
    cell: str
    pins: dict[str, tuple[int, ...]]
    module: str


@dataclass(frozen=True)
class FlatNetlist:
    """A flattened gate-level netlist.

    ``ports`` maps each top-level port to its direction and its bits' net ids (LSB
    first); ``names`` gives one hierarchical name per net id (``0`` and ``1`` are the
    constants); ``instances`` are the leaf cells, ``macros`` the memory macros.
    """

    top: str
    ports: dict[str, tuple[str, tuple[int, ...]]]
    names: tuple[str, ...]
    instances: tuple[Instance, ...]
    macros: tuple[MacroInstance, ...] = ()

    @property
    def net_count(self) -> int:
        return len(self.names)

    def port_nets(self, direction: str | None = None) -> set[int]:
        return {n for d, bits in self.ports.values() if direction in (None, d) for n in bits
                if n > CONST1}


def read_netlist(netlist: str | Path, lib: Liberty, top: str, work: str | Path,
                 macro_liberties: tuple[Path, ...] = (), macro_cells: frozenset[str] = frozenset()
                 ) -> FlatNetlist:
    """Read a synthesized Verilog netlist of ``lib``'s cells (Yosys, in a subprocess:
    ``read_liberty -lib``, ``read_verilog``, ``hierarchy -top``, ``write_json``) and
    flatten it; instances of ``macro_cells`` (black boxes from ``macro_liberties``) are
    kept as :class:`MacroInstance`.

    Raises
    ------
    ToolFailed
        Yosys failed (the message names the log).
    UserError
        The netlist instantiates a cell that is neither a module of it nor a cell of
        ``lib``.
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    out = work / "netlist.json"
    out.unlink(missing_ok=True)
    run_yosys([f"read_liberty -lib {lib.path}",
               *(f"read_liberty -lib {Path(p).resolve()}" for p in macro_liberties),
               f"read_verilog {Path(netlist).resolve()}",
               f"hierarchy -check -top {top}", f"write_json {out.resolve()}"],
              work / "read_netlist.log")
    try:
        data = json.loads(out.read_text())
    except (OSError, ValueError) as exc:
        raise ToolFailed(f"Yosys wrote no readable netlist JSON ({exc}); log: "
                         f"{work / 'read_netlist.log'}") from None
    return flatten_netlist(data, lib, top, macro_cells)


def flatten_netlist(data: dict[str, Any], lib: Liberty, top: str,
                    macro_cells: frozenset[str] = frozenset()) -> FlatNetlist:
    """Flatten the Yosys JSON ``data`` of a netlist whose leaves are cells of ``lib`` and
    memory macros named in ``macro_cells``."""
    modules = data["modules"]
    names: list[str] = ["1'b0", "1'b1"]
    instances: list[Instance] = []
    macros: list[MacroInstance] = []

    def const(bit: Any) -> int | None:
        if bit in ("0", "x", "z"):
            return CONST0
        if bit == "1":
            return CONST1
        return None

    # each module read once: its nets (bit, name) in the order they are numbered, and its
    # cells with their connections, constants resolved
    compiled: dict[str, tuple[list[tuple[int, str]], list[tuple[Any, ...]]]] = {}

    def compile_module(mod_name: str) -> tuple[list[tuple[int, str]], list[tuple[Any, ...]]]:
        mod = modules[mod_name]
        nets = []
        for net_name, net in sorted(mod.get("netnames", {}).items(),
                                    key=lambda kv: kv[1].get("hide_name", 0)):
            for i, bit in enumerate(net["bits"]):
                if const(bit) is None:
                    nets.append((bit, f"{net_name}[{i}]" if len(net["bits"]) > 1 else net_name))
        cells: list[tuple[Any, ...]] = []
        plain = mod_name.lstrip("\\")
        for cell_name, cell in mod.get("cells", {}).items():
            kind = cell["type"]
            conns = cell.get("connections", {})
            if kind.lstrip("\\") in macro_cells:
                cells.append(("macro", cell_name, kind.lstrip("\\"),
                              [(pin, [(b, const(b)) for b in bits])
                               for pin, bits in conns.items()]))
            elif kind in modules and not modules[kind].get("attributes", {}).get("blackbox"):
                pairs = []
                for port, pdata in modules[kind].get("ports", {}).items():
                    bits = conns.get(port, [])
                    for cbit, pbit in zip(pdata["bits"], bits, strict=False):
                        pairs.append((cbit, pbit, const(pbit)))
                cells.append(("module", cell_name, kind, pairs))
            elif kind in lib.cells:
                pins = []
                for pin, bits in conns.items():
                    if len(bits) != 1:
                        raise UserError(f"cell {cell_name!r} of {mod_name!r}: pin {pin} of "
                                        f"{kind} is {len(bits)} bits wide")
                    pins.append((pin, bits[0], const(bits[0])))
                cells.append(("cell", cell_name, kind, pins))
            else:
                raise UserError(f"netlist cell {cell_name!r} of module {mod_name!r} is a "
                                f"{kind!r}, which is neither a module of the netlist nor a "
                                f"cell of liberty {lib.name!r}")
        return nets, [(*c, plain) for c in cells]

    def visit(mod_name: str, prefix: str, bound: dict[Any, int], depth: int) -> None:
        if depth > 64:
            raise UserError(f"netlist hierarchy under {top!r} is deeper than 64 levels")
        if mod_name not in compiled:
            compiled[mod_name] = compile_module(mod_name)
        nets, cells = compiled[mod_name]
        local = dict(bound)
        for bit, name in nets:
            if bit not in local:
                local[bit] = len(names)
                names.append(prefix + name)

        def net_of(bit: Any, c: int | None) -> int:
            if c is not None:
                return c
            k = local.get(bit)
            if k is None:
                k = local[bit] = len(names)
                names.append(f"{prefix}$bit{bit}")
            return k

        for kind, cell_name, cell_type, conns, plain in cells:
            if kind == "cell":
                instances.append(Instance(f"{prefix}{cell_name}", cell_type,
                                          {pin: net_of(b, c) for pin, b, c in conns}, plain))
            elif kind == "module":
                child_bound = {cbit: net_of(pbit, c) for cbit, pbit, c in conns}
                visit(cell_type, f"{prefix}{cell_name}.", child_bound, depth + 1)
            else:
                macros.append(MacroInstance(
                    f"{prefix}{cell_name}", cell_type,
                    {pin: tuple(net_of(b, c) for b, c in bits) for pin, bits in conns},
                    plain))

    if top not in modules:
        raise UserError(f"netlist has no module {top!r}")
    ports: dict[str, tuple[str, tuple[int, ...]]] = {}
    bound: dict[Any, int] = {}
    for port, pdata in modules[top].get("ports", {}).items():
        bits = []
        for i, bit in enumerate(pdata["bits"]):
            c = const(bit)
            if c is not None:
                bits.append(c)
                continue
            if bit not in bound:
                suffix = f"[{i}]" if len(pdata["bits"]) > 1 else ""
                bound[bit] = len(names)
                names.append(f"{port}{suffix}")
            bits.append(bound[bit])
        ports[port] = (pdata["direction"], tuple(bits))
    visit(top, "", bound, 0)
    return FlatNetlist(top, ports, tuple(names), tuple(instances), tuple(macros))


# -- Verilog ------------------------------------------------------------------------------


def render_liberty_function(function: str, where: str, *, constants: tuple[str, str],
                            symbol: Callable[[str], str], negate: Callable[[str], str],
                            operators: tuple[str, str, str]) -> str:
    """A liberty boolean function (``!A & (B | C')``, ``A ^ B``, ``1``), read with
    ``liberty-parser``'s function grammar, written in another language: ``constants``
    (0, 1), ``symbol(name)`` for a pin or state, ``negate(text)``, and the infix
    ``operators`` for and, or, xor.  :class:`UserError` if it cannot be read or uses an
    operator beyond those."""
    from liberty.boolean_functions import parse_boolean_function
    from sympy.logic import boolalg

    try:
        expr = parse_boolean_function(function.strip())
    except Exception:
        raise UserError(f"liberty function {function!r}{where} cannot be read") from None
    ops = dict(zip((boolalg.And, boolalg.Or, boolalg.Xor), operators, strict=True))

    def text(e: Any) -> str:
        if e is True or isinstance(e, boolalg.BooleanTrue):
            return constants[1]
        if e is False or isinstance(e, boolalg.BooleanFalse):
            return constants[0]
        if e.is_Symbol:
            return symbol(str(e))
        if isinstance(e, boolalg.Not):
            return negate(text(e.args[0]))
        op = ops.get(type(e))
        if op is None:
            raise UserError(f"liberty function {function!r}{where} has an operator rcm_gen "
                            f"does not model ({type(e).__name__})")
        return "(" + op.join(text(a) for a in e.args) + ")"

    return text(expr)


def liberty_verilog_expr(function: str, where: str = "") -> str:
    """A liberty boolean function as a Verilog expression."""
    return render_liberty_function(function, where, constants=("1'b0", "1'b1"),
                                   symbol=str, negate=lambda t: f"~{t}",
                                   operators=(" & ", " | ", " ^ "))


def output_function(cell: Cell, pin: Pin) -> str:
    """The boolean function of output ``pin`` of ``cell``: its ``function``, else its
    ``state_function`` (an integrated clock-gating cell's output, a function of its inputs
    and its statetable's node).  :class:`UserError` if it has neither."""
    f = pin.function or pin.state_function
    if not f:
        raise UserError(f"output {pin.name} of cell {cell.name} has no function")
    return f


def _state_values(symbol: str, where: str) -> tuple[int, ...]:
    values = {"L": (0,), "H": (1,), "-": (0, 1), "L/H": (0, 1), "H/L": (0, 1)}.get(symbol)
    if values is None:
        raise UserError(f"cell {where} is described by a statetable that rcm_gen cannot "
                        f"model (entry {symbol!r}); exclude it with dont_use")
    return values


@functools.lru_cache(maxsize=256)
def _statetable_latch(name: str, inputs: tuple[str, ...], nodes: tuple[str, ...],
                      table: str) -> Sequential:
    """A one-node statetable whose every row loads a level or holds (``N``) as the latch it
    describes: ``enable`` where a row loads, ``data_in`` the level it loads."""
    from sympy import Symbol
    from sympy.logic import boolalg

    def refuse(why: str) -> UserError:
        return UserError(f"cell {name} is described by a statetable that rcm_gen cannot "
                         f"model ({why}); exclude it with dont_use")

    if len(nodes) != 1:
        raise refuse(f"{len(nodes)} internal nodes")
    if len(inputs) > 8:
        raise refuse(f"{len(inputs)} inputs")
    rows = []
    for text in table.replace("\\", " ").split(","):
        parts = [p.split() for p in text.split(":")]
        if len(parts) != 3 or len(parts[0]) != len(inputs) or len(parts[1]) != 1 or \
                len(parts[2]) != 1:
            raise refuse(f"row {text.strip()!r}")
        rows.append(([_state_values(x, name) for x in parts[0]],
                     _state_values(parts[1][0], name), parts[2][0]))
    load, one, hold = [], [], []
    loaded: dict[int, int] = {}  # input combination -> the level it loads
    for k in range(1 << len(inputs)):
        bits = [(k >> i) & 1 for i in range(len(inputs))]
        nxt = []
        for q in (0, 1):
            row = next((r for r in rows if q in r[1] and all(
                b in allowed for b, allowed in zip(bits, r[0], strict=True))), None)
            if row is None:
                raise refuse(f"no row for {' '.join('LH'[b] for b in bits)} with the node "
                             f"{'LH'[q]}")
            nxt.append({"L": 0, "H": 1, "N": q}.get(row[2], -1))
        term = boolalg.And(*(Symbol(p) if b else boolalg.Not(Symbol(p))
                             for p, b in zip(inputs, bits, strict=True)))
        if nxt == [0, 1]:
            hold.append(term)
            continue
        if nxt not in ([0, 0], [1, 1]):
            raise refuse("a next state that is neither a level nor N")
        load.append(term)
        loaded[k] = nxt[0]
        if nxt[0]:
            one.append(term)

    def text(e: object) -> str:
        if e is True or isinstance(e, boolalg.BooleanTrue):
            return "1"
        if e is False or isinstance(e, boolalg.BooleanFalse):
            return "0"
        if isinstance(e, Symbol):
            return str(e)
        if isinstance(e, boolalg.Not):
            return f"!{text(e.args[0])}"
        op = {boolalg.And: "&", boolalg.Or: "|"}[type(e)]
        return "(" + op.join(text(a) for a in e.args) + ")"

    enable = boolalg.simplify_logic(boolalg.Or(*load), form="dnf")
    # what a closed latch would load does not matter: one input pin (or its inverse) when
    # that is what the latch loads, else the loaded levels as a sum of products
    data_text = None
    for i, pin in enumerate(inputs):
        for inverse in (0, 1):
            if all(((k >> i) & 1) ^ inverse == v for k, v in loaded.items()):
                data_text = data_text or (f"!{pin}" if inverse else pin)
    if data_text is None:
        data_text = text(boolalg.simplify_logic(boolalg.Or(*one), form="dnf",
                                                dontcare=boolalg.Or(*hold)))
    return Sequential("latch", nodes[0], "", text(enable), data_text)


def cell_storage(cell: Cell) -> tuple[Sequential, ...]:
    """The storage of ``cell``: its ``ff`` and ``latch`` groups, and a ``statetable`` (the
    latch of an integrated clock-gating cell such as SkyWater's ``dlclkp``) as the latch
    it describes.

    Raises
    ------
    UserError
        A statetable that is not one latch (more than one node, edge-sensitive entries,
        a row that toggles the node).
    """
    if not cell.statetable:
        return cell.sequential
    if cell.table is None:
        raise UserError(f"cell {cell.name} is described by a statetable, which rcm_gen "
                        "cannot model; exclude it with dont_use")
    st = cell.table
    return (*cell.sequential, _statetable_latch(cell.name, st.inputs, st.nodes, st.table))


def _cell_model(cell: Cell) -> str:
    where = f" of cell {cell.name}"
    storage = cell_storage(cell)
    ports = sorted(p for p in cell.pins if cell.pins[p].direction != "internal")
    lines = [f"module {cell.name} ({', '.join(ports)});"]
    for name in ports:
        pin = cell.pins[name]
        kind = "input" if pin.direction == "input" else "output"
        lines.append(f"  {kind} {name};")
    for i, seq in enumerate(storage):
        lines.append(f"  reg {seq.state};")
        if seq.state_n:
            lines.append(f"  wire {seq.state_n} = ~{seq.state};")
        clock = liberty_verilog_expr(seq.clock, where)
        data = liberty_verilog_expr(seq.data, where)
        clear = liberty_verilog_expr(seq.clear, where) if seq.clear else None
        preset = liberty_verilog_expr(seq.preset, where) if seq.preset else None
        both = {"L": "1'b0", "H": "1'b1"}.get(seq.clear_preset_var1 or "L", "1'b0")
        lines.append(f"  wire _c{i} = {clock};")
        if clear:
            lines.append(f"  wire _r{i} = {clear};")
        if preset:
            lines.append(f"  wire _s{i} = {preset};")
        body = []
        if clear and preset:
            body.append(f"if (_r{i} & _s{i}) {seq.state} <= {both};")
            body.append(f"else if (_r{i}) {seq.state} <= 1'b0;")
            body.append(f"else if (_s{i}) {seq.state} <= 1'b1;")
        elif clear:
            body.append(f"if (_r{i}) {seq.state} <= 1'b0;")
        elif preset:
            body.append(f"if (_s{i}) {seq.state} <= 1'b1;")
        if seq.kind == "ff":
            events = [f"posedge _c{i}"] + ([f"posedge _r{i}"] if clear else []) + (
                [f"posedge _s{i}"] if preset else [])
            body.append(("else " if body else "") + f"{seq.state} <= {data};")
            lines.append(f"  always @({' or '.join(events)}) begin")
        else:
            # a latch opens once its enable has risen and the flip-flops clocked by the
            # same edge have taken their data (the enable as of the nonblocking region);
            # it closes as its enable falls.  So a latch written while its gated clock is
            # high takes the data a flip-flop captured at that clock's edge, not the
            # value before it, as the cycle simulator has it
            lines.append(f"  reg _o{i};")
            lines.append(f"  always @(posedge _c{i} or negedge _c{i}) _o{i} <= _c{i};")
            lines.append(f"  wire _e{i} = _c{i} & _o{i};")
            body.append(("else " if body else "") + f"if (_e{i}) {seq.state} <= {data};")
            lines.append("  always @* begin")
        lines += [f"    {b}" for b in body]
        lines.append("  end")
    for name in ports:
        pin = cell.pins[name]
        if pin.direction in ("output", "inout"):
            function = output_function(cell, pin)
            lines.append(f"  assign {name} = {liberty_verilog_expr(function, where)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def cell_models(lib: Liberty, cells: set[str]) -> str:
    """Verilog models of ``cells`` of ``lib``, written from the liberty: combinational
    outputs from their ``function``, flip-flops and latches from their ``ff``/``latch``
    groups (clear and preset included), an integrated clock-gating cell from its
    ``statetable`` (the latch it describes) and its output's ``state_function``.
    Zero-delay: activity without glitches.

    Raises
    ------
    UserError
        A cell with a ``statetable`` that is not one latch, or an output without a
        function.
    """
    header = (f"// Cell models of liberty {lib.name}, written by rcm_gen from the cells'\n"
              "// function, ff and latch groups.\n")
    return header + "\n".join(_cell_model(lib.cells[c]) for c in sorted(cells))


def write_flat_verilog(net: FlatNetlist, module: str) -> str:
    """The flat netlist as one Verilog module ``module`` with the top's ports; net ``k``
    is the wire ``n<k>``."""
    ports = list(net.ports)
    lines = [f"module {module} ({', '.join(ports)});"]
    for port, (direction, bits) in net.ports.items():
        width = f"[{len(bits) - 1}:0] " if len(bits) > 1 else ""
        lines.append(f"  {direction} {width}{port};")
    # one declaration per line of nets: Verilator's preprocessor refuses lines of more
    # than 40,000 tokens
    for start in range(2, net.net_count, 64):
        stop = min(start + 64, net.net_count)
        lines.append("  wire " + ", ".join(f"n{k}" for k in range(start, stop)) + ";")
    lines.append("  wire n0 = 1'b0, n1 = 1'b1;")
    for port, (direction, bits) in net.ports.items():
        for i, k in enumerate(bits):
            ref = f"{port}[{i}]" if len(bits) > 1 else port
            if direction == "input":
                if k > CONST1:
                    lines.append(f"  assign n{k} = {ref};")
            else:
                lines.append(f"  assign {ref} = n{k};")
    for i, inst in enumerate(net.instances):
        conns = ", ".join(f".{p}(n{k})" for p, k in sorted(inst.pins.items()))
        lines.append(f"  {inst.cell} u{i} ({conns});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"
