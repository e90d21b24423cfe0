"""The clock network of a synthesized netlist, and the buffered tree estimated on each
of its nets (a synthesized netlist has none; see :mod:`rcm_gen.power.energy` for how its
energy is counted).

The network's nets are the clock port's and every net a clock reaches through
combinational cells (buffers, inverters, the AND of a latch-and-AND clock gate) and
integrated clock-gating cells (a ``statetable`` cell whose clock pin the net drives); its
sinks are the clock pins of flip-flops and the enables of latches.  The latch of a
latch-and-AND gate (a latch on a clock net whose outputs feed only cells that pass the
clock on) is part of the gate: like the integrated cell and the AND, it passes the clock
on, and its energy is the clock's (``clock/tree``), not a sink's.  A gating cell is a sink
of the tree of the net that drives it; the net it drives (the gated clock, toggling only
in the cycles the gate is open) has a tree of its own over its own sinks.  Per clock net with
``n`` sinks the tree is of the library's clock buffer with at most ``fanout`` loads per
driver, and a wire of ``sqrt(n · A)`` µm (the length of a Steiner tree over ``n`` points
spread over area ``A``), ``A`` being the placed area (cell area over the placement
density) times the share of sequential-cell area under that net; each level's output slew
comes from the buffer's transition tables, and the sinks see the leaves' slew.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from ..flows.liberty import Cell, Liberty, Table
from ..flows.netlist import CONST1, FlatNetlist

__all__ = ["ClockTree", "buffer_energy", "clock_buffer_cell", "clock_network",
           "estimate_trees"]


def _names(function: str | None) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_\[\]]*", function or ""))


def _mean(tables: list[Table | None], slew: float, load: float) -> float:
    vals = [t.lookup(slew, load) for t in tables if t is not None]
    return sum(vals) / len(vals) if vals else 0.0


@dataclass
class ClockTree:
    """The clock tree estimated for one clock net: its sinks, buffers (per level, leaves
    first), wire (µm, pF), the leaves' slew (ns), the load the net's driver sees and the
    mean sink pin capacitance (pF)."""

    sinks: int
    buffers: int
    levels: tuple[int, ...]
    wire_um: float
    wire_pf: float
    leaf_slew: float
    driver_load: float
    sink_pin_pf: float


def clock_buffer_cell(lib: Liberty, settings: dict[str, Any]) -> str | None:
    """The clock buffer a clock tree is estimated with: ``settings["clock_buffer"]`` if
    named (:class:`UserError` if the library lacks it or it is not a buffer), else the
    library's clock buffer (a one-input non-inverting cell named ``clkbuf``) of the
    median area, else its smallest buffer; cells matching ``settings["dont_use"]`` are
    skipped."""
    def is_buffer(cell: Cell) -> bool:
        if len(cell.inputs) != 1 or len(cell.outputs) != 1:
            return False
        fn = next(iter(cell.outputs.values())).strip().strip('"').strip("()")
        return fn == cell.inputs[0]

    dont_use = list(settings.get("dont_use") or [])

    def usable(cell: Cell) -> bool:
        return is_buffer(cell) and not any(fnmatch.fnmatchcase(cell.name, p) for p in dont_use)

    named = settings.get("clock_buffer")
    if named:
        cell = lib.cells.get(named)
        if cell is None or not is_buffer(cell):
            raise UserError(f"clock_buffer {named!r} is not a buffer cell of liberty "
                            f"{lib.name!r}")
        return named
    clk = sorted((c for c in lib.cells.values() if usable(c) and "clkbuf" in c.name.lower()),
                 key=lambda c: (c.area, c.name))
    if clk:
        return clk[len(clk) // 2].name
    plain = sorted((c for c in lib.cells.values() if usable(c)), key=lambda c: (c.area, c.name))
    return plain[0].name if plain else None


def clock_network(netlist: FlatNetlist, lib: Liberty, roots: set[int],
                  sinks: dict[int, list[tuple[int, str]]]
                  ) -> tuple[list[int], set[int], set[tuple[int, str]]]:
    """Clock nets (breadth-first from ``roots``, the clock port's nets), the instances
    that pass the clock on, and the (instance, pin) clock sinks of sequential cells;
    ``sinks`` lists each net's (instance, input pin)."""
    insts, cells = netlist.instances, lib.cells
    order: list[int] = []
    seen = set()
    passers: set[int] = set()
    seq_sinks: set[tuple[int, str]] = set()
    frontier = sorted(k for k in roots if k > CONST1)
    while frontier:
        nxt = []
        for k in frontier:
            if k in seen:
                continue
            seen.add(k)
            order.append(k)
            for i, p in sinks.get(k, ()):
                cell = cells[insts[i].cell]
                if cell.sequential:
                    if any(p in _names(s.clock) for s in cell.sequential):
                        seq_sinks.add((i, p))
                    continue
                pin = cell.pins[p]
                outs = [o for o, fn in cell.outputs.items()
                        if (cell.statetable and pin.clock) or p in _names(fn)]
                if not outs:
                    continue
                passers.add(i)
                for o in outs:
                    net = insts[i].pins.get(o)
                    if net is not None and net > CONST1 and net not in seen:
                        nxt.append(net)
        frontier = nxt
    # the latch of a latch-and-AND gate: a latch on a clock net feeding only clock passers
    for i, p in sorted(seq_sinks):
        cell = cells[insts[i].cell]
        if not cell.sequential or any(s.kind != "latch" for s in cell.sequential):
            continue
        users = [j for o in cell.outputs
                 for j, _ in sinks.get(insts[i].pins.get(o, -1), ())]
        if users and all(j in passers for j in users):
            seq_sinks.discard((i, p))
            passers.add(i)
    return order, passers, seq_sinks


def _buf_slew(buf: Cell, pin_out: str, s_in: float, load: float) -> float:
    vals = [t.lookup(s_in, load) for arc in buf.pins[pin_out].timing
            for t in (arc.rise, arc.fall) if t is not None]
    return sum(vals) / len(vals) if vals else s_in


def estimate_trees(netlist: FlatNetlist, lib: Liberty, order: list[int],
                   sinks: dict[int, list[tuple[int, str]]],
                   seq_sinks: set[tuple[int, str]], driver: dict[int, tuple[int, str]],
                   pin_cap: np.ndarray, slew: np.ndarray, t_in: float,
                   cons: dict[str, Any], buf: Cell, fanout: int, macro_area: float,
                   arc_slew: Callable[..., float]) -> dict[int, ClockTree]:
    """A buffered tree per clock net of ``order`` (see the module documentation), with
    the nets' pin capacitance ``pin_cap`` (pF), the slews known so far (``slew``; a
    driver's output slew is ``arc_slew(cell, pin, pins, slew, load, default)``),
    ``placement_density`` and ``clock_wire_cap_per_um`` from ``cons``, and the macros'
    area.  Clock nets are processed from the port down, so a gated net's driver sees its
    parent's leaf slew once the caller has set it; the caller applies each tree's wire,
    driver load and leaf slew to the net."""
    insts, cells = netlist.instances, lib.cells
    density = float(cons.get("placement_density", 0.7))
    per_um = float(cons.get("clock_wire_cap_per_um", 0.0002))
    if not 0 < density <= 1:
        raise UserError(f"placement_density must be in (0, 1], not {density!r}")
    total_area = (sum(cells[i.cell].area for i in insts) + macro_area) / density
    # sequential area under each clock net (through the cells that pass it on)
    under: dict[int, float] = {}
    for k in reversed(order):
        area = 0.0
        for i, p in sinks.get(k, ()):
            if (i, p) in seq_sinks:
                area += cells[insts[i].cell].area
            else:
                for o in cells[insts[i].cell].outputs:
                    area += under.get(insts[i].pins.get(o, -1), 0.0)
        under[k] = area
    seq_total = under[order[0]] if order else 0.0
    pin_in = next(iter(buf.inputs))
    (pin_out,) = buf.outputs
    c_in = buf.pins[pin_in].capacitance
    trees = {}
    for k in order:
        n_sinks = len(sinks.get(k, ()))
        if n_sinks == 0:
            continue
        share = under[k] / seq_total if seq_total > 0 else 1.0
        wire_um = math.sqrt(n_sinks * total_area * share)
        wire_pf = wire_um * per_um
        levels: list[int] = []
        count = n_sinks
        while count > fanout:
            count = -(-count // fanout)
            levels.append(count)
        wire_share = wire_pf / (1 + sum(levels))
        # the driver's load: the top level's buffers (or the sinks) and its wire share
        top_load = (levels[-1] * c_in if levels else pin_cap[k]) + wire_share
        # the driver's own output slew at that load, then down the levels
        if k in driver:
            i, p = driver[k]
            s = arc_slew(insts[i].cell, p, insts[i].pins, slew, top_load, t_in)
        else:
            s = t_in
        below = [*reversed(levels[:-1]), n_sinks] if levels else []
        for count_below, level in zip(below, reversed(levels), strict=True):
            per = count_below / level
            load = per * (c_in if count_below != n_sinks else pin_cap[k] / n_sinks)
            s = _buf_slew(buf, pin_out, s, load + wire_share)
        trees[k] = ClockTree(n_sinks, sum(levels), tuple(levels), wire_um, wire_pf, s,
                             top_load, pin_cap[k] / n_sinks)
        slew[k] = s  # what the gated nets below see
    return trees


def buffer_energy(buf: Cell, tree: ClockTree, voltage: float) -> tuple[float, float]:
    """Internal energy of a clock net's estimated buffers, and their input pins'
    switching, per rise and per fall of the net (pJ)."""
    pin_in = next(iter(buf.inputs))
    (pin_out,) = buf.outputs
    c_in = buf.pins[pin_in].capacitance
    v2 = voltage ** 2
    n_sinks = tree.sinks
    wire_share = tree.wire_pf / (1 + tree.buffers)
    rise = fall = 0.0
    s = tree.leaf_slew  # a level's input slew: close to the leaves' (buffers sized alike)
    below = [*reversed(tree.levels[:-1]), n_sinks] if tree.levels else []
    for count_below, level in zip(below, reversed(tree.levels), strict=True):
        per = count_below / level
        load = per * (c_in if count_below != n_sinks else tree.sink_pin_pf) + wire_share
        arcs = buf.pins[pin_out].power
        e_r = _mean([a.rise for a in arcs], s, load)
        e_f = _mean([a.fall for a in arcs], s, load)
        in_arcs = buf.pins[pin_in].power
        e_r += _mean([a.rise for a in in_arcs], s, 0.0) + 0.5 * c_in * v2
        e_f += _mean([a.fall for a in in_arcs], s, 0.0) + 0.5 * c_in * v2
        rise += level * e_r
        fall += level * e_f
    return rise, fall
