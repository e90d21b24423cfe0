"""Clock gating: the cell that gives a group of flip-flops sharing an enable their clock.

Yosys's ``clockgate`` pass replaces each set of enable flip-flops that share a clock and
an enable by enable-less flip-flops clocked through one clock-gating cell; this module
chooses that cell for a liberty library (:func:`gating_cell`):

* the library's integrated clock-gating cell (``clock_gating_integrated_cell :
  "latch_posedge"``, no test or observe pins; the smallest one no ``dont_use`` pattern
  excludes), such as SkyWater 130's ``sky130_fd_sc_hd__dlclkp_1``; or
* for a library without one, a gate built from its cells: a latch transparent while the
  clock is low holds the enable, and a 2-input AND of it and the clock is the gated clock
  (glitch-free: the enable can only change while the clock is low and the AND's output
  low).  A latch transparent while its enable pin is high takes the clock through an
  inverter.  OSU 0.18 µm's gate is ``INVX1``, ``LATCH`` and ``AND2X1``.

A library with neither is a :class:`~rcm_gen.errors.UserError` (the command exits with
status 2).  :func:`yosys_commands` gives the Yosys commands that insert the cell between
``synth`` and the cell mapping; :func:`count_gating` reads what the pass did from its log.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .liberty import Liberty

__all__ = ["LATCH_AND_MODULE", "MIN_FLOPS", "GatingCell", "count_gating", "gating_cell",
           "yosys_commands"]

#: Fewest flip-flops sharing an enable that get a gating cell (``clockgate
#: -min_net_size``): the gating cell's own clock pin toggles every cycle, so a gate that
#: serves fewer flip-flops saves little clock energy; smaller groups keep their enable on
#: the flip-flop (an enable flip-flop, or a multiplexer feeding back its output).
MIN_FLOPS = 4

#: Name of the module a built (latch and AND) gating cell is inserted as, before Yosys
#: flattens it into its library cells.
LATCH_AND_MODULE = "rcm_clock_gate"


@dataclass(frozen=True)
class GatingCell:
    """How the flip-flops of a library get a gated clock.

    Members
    -------
    kind : str
        ``integrated`` (a library cell) or ``latch_and`` (built from library cells).
    cell : str
        The cell type the ``clockgate`` pass inserts: the library's cell, or
        :data:`LATCH_AND_MODULE`.
    enable, clock, gated : str
        Its enable input, clock input and gated-clock output pins.
    cells : tuple of str
        The library cells one gate is made of (the integrated cell alone, or the
        inverter if any, the latch and the AND gate).
    verilog : str or None
        For ``latch_and``: the module of the gate, in library cells, with a black-box
        declaration of each.
    """

    kind: str
    cell: str
    enable: str
    clock: str
    gated: str
    cells: tuple[str, ...]
    verilog: str | None = None

    @property
    def description(self) -> str:
        """One line for a report: which cell gates the clock."""
        if self.kind == "integrated":
            return f"integrated clock-gating cell {self.cell}"
        return ("latch and AND gate built from library cells (" + " + ".join(self.cells)
                + "; the library has no integrated clock-gating cell)")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "cell": self.cell, "cells": list(self.cells),
                "pins": {"enable": self.enable, "clock": self.clock, "gated": self.gated},
                "description": self.description}


def _usable(name: str, dont_use: tuple[str, ...]) -> bool:
    return not any(fnmatch.fnmatchcase(name, p) for p in dont_use)


def _truth(function: str, names: tuple[str, ...]) -> tuple[int, ...] | None:
    """The truth table of a liberty function over ``names`` (``None`` if it cannot be
    read or names anything else)."""
    from liberty.boolean_functions import parse_boolean_function

    try:
        expr = parse_boolean_function(function.strip().strip('"'))
    except Exception:
        return None
    if not {str(s) for s in expr.free_symbols} <= set(names):
        return None
    syms = {str(s): s for s in expr.free_symbols}
    out = []
    for values in itertools.product((0, 1), repeat=len(names)):
        env = {syms[n]: bool(v) for n, v in zip(names, values, strict=True) if n in syms}
        out.append(int(bool(expr.subs(env))))
    return tuple(out)


def _integrated(lib: Liberty, dont_use: tuple[str, ...]) -> GatingCell | None:
    found = []
    for cell in lib.cells.values():
        if cell.clock_gating != "latch_posedge" or not _usable(cell.name, dont_use):
            continue
        clocks = [p for p in cell.inputs if cell.pins.get(p) and cell.pins[p].clock]
        others = [p for p in cell.inputs if p not in clocks]
        if len(clocks) != 1 or len(others) != 1 or len(cell.outputs) != 1:
            continue  # test (scan-enable) or observe pins: not the plain gate
        found.append((cell.area, cell.name, others[0], clocks[0], next(iter(cell.outputs))))
    if not found:
        return None
    _, name, enable, clock, gated = min(found)
    return GatingCell("integrated", name, enable, clock, gated, (name,))


def _smallest(cells: list[tuple[float, str, Any]]) -> tuple[str, Any] | None:
    return (min(cells, key=lambda c: (c[0], c[1]))[1:]) if cells else None


def _latch_and(lib: Liberty, dont_use: tuple[str, ...]) -> GatingCell | None:
    latches: list[tuple[float, str, Any]] = []
    ands: list[tuple[float, str, Any]] = []
    invs: list[tuple[float, str, Any]] = []
    for cell in lib.cells.values():
        if not _usable(cell.name, dont_use):
            continue
        if len(cell.sequential) == 1 and cell.sequential[0].kind == "latch" \
                and len(cell.inputs) == 2:
            seq = cell.sequential[0]
            outs = [p for p, f in cell.outputs.items()
                    if f.strip().strip('"').strip("()") == seq.state]
            data = seq.data.strip().strip('"')
            enable = seq.clock.strip().strip('"')
            if not outs or data not in cell.inputs or seq.clear or seq.preset:
                continue
            gate = enable.lstrip("!").strip("()").rstrip("'")
            if gate not in cell.inputs or gate == data:
                continue
            low = _truth(enable, (gate,)) == (1, 0)   # transparent while the pin is low
            if not low and _truth(enable, (gate,)) != (0, 1):
                continue
            latches.append((cell.area, cell.name, (data, gate, outs[0], low)))
        elif not cell.sequential and not cell.statetable and len(cell.outputs) == 1:
            pin, function = next(iter(cell.outputs.items()))
            if len(cell.inputs) == 2 and _truth(function, cell.inputs) == (0, 0, 0, 1):
                ands.append((cell.area, cell.name, (*cell.inputs, pin)))
            elif len(cell.inputs) == 1 and _truth(function, cell.inputs) == (1, 0):
                invs.append((cell.area, cell.name, (cell.inputs[0], pin)))
    and_gate = _smallest(ands)
    low = _smallest([c for c in latches if c[2][3]])
    high = _smallest([c for c in latches if not c[2][3]])
    inv = _smallest(invs)
    if and_gate is None or (low is None and (high is None or inv is None)):
        return None
    latch = low or high
    assert latch is not None
    lname, (ld, lg, lq, is_low) = latch
    aname, (a1, a2, ay) = and_gate
    lines = [f"module {LATCH_AND_MODULE} (CE, CLK, GCLK);",
             "  input CE, CLK;", "  output GCLK;", "  wire en_l;"]
    used = [lname, aname]
    if is_low:
        lines.append(f"  {lname} latch (.{lg}(CLK), .{ld}(CE), .{lq}(en_l));")
    else:
        assert inv is not None
        iname, (ia, iy) = inv
        used.insert(0, iname)
        lines += ["  wire clk_n;", f"  {iname} inv (.{ia}(CLK), .{iy}(clk_n));",
                  f"  {lname} latch (.{lg}(clk_n), .{ld}(CE), .{lq}(en_l));"]
    lines += [f"  {aname} gate (.{a1}(CLK), .{a2}(en_l), .{ay}(GCLK));", "endmodule", ""]
    stubs = []
    for name in used:
        cell = lib.cells[name]
        ports = [*cell.inputs, *cell.outputs]
        stubs += ["(* blackbox *)", f"module {name} ({', '.join(ports)});",
                  *(f"  input {p};" for p in cell.inputs),
                  *(f"  output {p};" for p in cell.outputs), "endmodule", ""]
    return GatingCell("latch_and", LATCH_AND_MODULE, "CE", "CLK", "GCLK", tuple(used),
                      "\n".join(stubs + lines))


def gating_cell(lib: Liberty, dont_use: list[str] | tuple[str, ...] = ()) -> GatingCell:
    """The clock-gating cell of ``lib`` (module docstring): its integrated cell, else a
    latch and AND gate from its cells.

    Raises
    ------
    UserError
        If the library has neither an integrated clock-gating cell nor a latch and a
        2-input AND gate (and an inverter, for a latch transparent on a high enable).
    """
    dont_use = tuple(dont_use)
    found = _integrated(lib, dont_use) or _latch_and(lib, dont_use)
    if found is None:
        raise UserError(
            f"liberty {lib.name!r} ({lib.source}) has no integrated clock-gating cell "
            "(latch_posedge) and no latch, 2-input AND and inverter to build one: "
            "set clock_gating=false")
    return found


def yosys_commands(gate: GatingCell, module_file: str | None = None,
                   min_flops: int = MIN_FLOPS) -> list[str]:
    """The Yosys commands, after ``synth`` and before the cell mapping, that clock every
    set of at least ``min_flops`` rising-edge enable flip-flops sharing an enable through
    ``gate``.  A built gate is read from ``module_file`` (where the caller wrote
    :attr:`GatingCell.verilog`), inserted as :data:`LATCH_AND_MODULE` and flattened into
    its library cells.

    ``clockgate`` takes enable flip-flops without a synchronous reset; a register with a
    reset that overrides its enable (``$_SDFFE_``, what Amaranth's synchronous reset
    gives every register) is first rewritten as an enable flip-flop whose enable is
    ``enable | reset`` and whose data is ``reset ? init : data`` (the same register), and
    the enables that came out equal are merged so that registers sharing one share a
    gate.
    """
    pins = f"{gate.enable}:{gate.clock}:{gate.gated}"
    cmds = ["dfflegalize -cell $_SDFFCE_????_ 01 t:$_SDFFE_*",
            "dfflegalize -cell $_DFFE_??_ 01 t:$_SDFFCE_*",
            "opt_merge", "opt_clean"]
    if gate.kind == "latch_and":
        if module_file is None:
            raise ValueError("a built gating cell needs the file of its module")
        cmds.append(f"read_verilog {module_file}")
    cmds += [f"select -set rcm_cg_before t:{gate.cell}",
             f"clockgate -pos {gate.cell} {pins} -min_net_size {min_flops}",
             f"select -count t:{gate.cell} @rcm_cg_before %d"]
    if gate.kind == "latch_and":
        cmds += ["flatten", f"delete {LATCH_AND_MODULE}", *(f"delete {c}" for c in gate.cells)]
    return cmds


_FLOPS = re.compile(r"Converted (\d+) FFs\.")
_GATES = re.compile(r"select -count t:\S+ @rcm_cg_before %d' --\s*\n\s*(\d+) objects\.")


def count_gating(log: str) -> tuple[int, int]:
    """(gating cells inserted, flip-flops clocked through them) from the log of a Yosys
    run of :func:`yosys_commands`; :class:`ValueError` if the log has no such run."""
    flops = [int(m.group(1)) for m in _FLOPS.finditer(log)]
    gates = [int(m.group(1)) for m in _GATES.finditer(log)]
    if not flops or len(flops) != len(gates):
        raise ValueError("the Yosys log has no clockgate run")
    return sum(gates), sum(flops)
