"""Energy of a gate-level netlist from per-net transition counts, memory-macro access
counts and a liberty library.

For every net, the load is the input-pin capacitance of its sinks, a wire-load
capacitance and, on nets that drive output ports, the constraints' output load; the slew is
the driving cell's NLDM output transition at that load and at its own input's slew
(primary inputs: the constraints' ``input_transition_ns``), propagated in topological
order, the worst arc of each output, the mean of rise and fall.  Then, per window of
cycles:

- **switching**: ``1/2 · C · V²`` per transition of every net;
- **internal**: each cell's NLDM ``internal_power`` energy per transition — under an output
  pin per rise (``rise_power``) or fall (``fall_power``) of the output, looked up at the
  related input's slew and the output's load; under an input pin per rise or fall of that
  input, at its slew.  An output's transitions are shared among its related inputs in
  proportion to how often each toggled in the window (a one-input cell or a flip-flop's
  clock arc takes them all); groups that differ only in their ``when`` state are averaged;
- **memory access**: each memory macro's energy per read, write and deselected cycle of
  each port (:mod:`rcm_gen.power.sram`) times the accesses the simulation counted; the
  macros' liberty ``internal_power`` is not used (OpenRAM's is not an energy);
- **leakage**: the cells' and macros' leakage power (``cell_leakage_power``, else the mean
  of their ``leakage_power`` groups) times the clock period.

**The clock network** is counted apart from the data, as ``clock`` with three parts; its
nets and sinks, and the buffered tree estimated on each of its nets (a synthesized netlist
has none), are :mod:`rcm_gen.power.clock_tree`'s.  Per transition of a clock net:

- ``clock/tree``: the estimated buffers' internal energy and input-pin switching, and the
  whole energy of the cells that pass the clock on (clock-gating cells — an integrated
  one, or the latch, inverter and AND of a gate built from library cells — and buffers);
- ``clock/wires``: ``1/2 · C_wire · V²`` of the estimated wire;
- ``clock/pins``: the sinks' clock-pin internal energy and pin switching.

A flip-flop's output transitions (``Q`` related to ``CLK``) stay with its own group: that
is data.  With ``clock_tree_fanout = 0`` no tree is estimated and the clock nets take the
wire-load capacitance of any net (the clock's parts are then pins and wires only).

Energies are in pJ.  Each cell's energy (and the switching energy of the net it drives)
goes to the group of the module it was synthesized in (:func:`rcm_gen.flows.asic.group_of`
or ``group_of_module``), and with ``detail_of_module`` to a finer *component*
(``buffers/act_buf``): a window's ``components`` give every such part, ``by_group`` the
groups; nets driven by input ports go to ``clock`` (the clock network) or ``inputs``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from ..flows.asic import AREA_GROUPS, group_of
from ..flows.liberty import Liberty, Pin, Table
from ..flows.netlist import CONST1, FlatNetlist
from .clock_tree import ClockTree, buffer_energy, clock_network, estimate_trees

__all__ = ["CLOCK_PARTS", "ENERGY_GROUPS", "MACRO_ACCESSES", "TILE_ENERGY_GROUPS",
           "EnergyModel", "WindowEnergy", "buffer_of", "energy_summary",
           "memory_breakdown",
           "tile_group_of"]

#: Groups of an energy breakdown: the area groups, the clock network, the input-port nets.
ENERGY_GROUPS = (*AREA_GROUPS, "clock", "inputs")

#: Groups of a tile's energy breakdown (:func:`tile_group_of`), the clock network and the
#: input-port nets.
TILE_ENERGY_GROUPS = ("multipliers", "accumulators", "buffers", "post_processing", "control",
                      "clock", "inputs")

#: The parts of the clock network's energy (components ``clock/<part>``).
CLOCK_PARTS = ("tree", "wires", "pins")

#: The macro access kinds of a memory component (``buffers/<buffer>/<kind>``).
MACRO_ACCESSES = ("macro_read", "macro_write", "macro_deselected")


def tile_group_of(module: str, top: str) -> str:
    """Energy group of a tile's synthesized module, from its hierarchical name
    (``rcm_tile__mac__multiplier``, ``rcm_tile__ff_block_64x64`` as rcm_gen writes the
    Verilog, see :func:`rcm_gen.flows.asic.group_of`; ``rcm_tile.mac0.multiplier``,
    ``rcm_tile.out_buf1.mem0`` as Amaranth's backend does): a ``multiplier`` instance
    anywhere is *multipliers*; the rest of a MAC (``mac``, ``mac<i>``, ``mac_<p>_<q>``)
    *accumulators*; buffers (``buffer_*``, ``ff_block_*``, ``latch_block_*``; instances
    ``act_buf``, ``out_buf0``: ending in ``_buf`` and an optional number) and everything
    in them, SRAM macros included, *buffers*; the output path (``drain``, ``ppu``: draining,
    requantization, packing) *post_processing*; everything else (loader, controller and
    its pixel units, the MAC columns' and the top's glue) *control*."""
    name = module.lstrip("\\")
    path = (name[len(top) + 2:].split("__") if name.startswith(top + "__")
            else name[len(top) + 1:].split(".") if name.startswith(top + ".") else [])
    if "multiplier" in path:
        return "multipliers"
    if any(re.fullmatch(r"mac(_?\d+)*", p) for p in path):
        return "accumulators"
    if any(re.fullmatch(r"\w*_buf\d*|(buffer|ff_block|latch_block)(_\w+)?", p) for p in path):
        return "buffers"
    if any(p in ("drain", "ppu") for p in path):
        return "post_processing"
    return "control"


def buffer_of(module: str, top: str) -> str | None:
    """The buffer a tile's module belongs to (``act_buf``, ``weight_buf``, ``param_buf``,
    ``outpar_buf``, ``out_buf`` — banks and columns together), or ``None``."""
    name = module.lstrip("\\")
    path = name[len(top) + 1:].split(".") if name.startswith(top + ".") else name.split(".")
    for p in path:
        m = re.fullmatch(r"(\w*?_buf)(\d+(_\d+)?)?", p)
        if m:
            return m.group(1)
    return None


def memory_breakdown(components: dict[str, float]) -> dict[str, dict[str, float]]:
    """Per buffer, from a window's (or a sum of windows') components: ``cells`` (its
    standard cells: flip-flops or latches, decoders, muxes; leakage included),
    ``macro_read``, ``macro_write``, ``macro_deselected`` and ``macro_leakage`` (pJ)."""
    out: dict[str, dict[str, float]] = {}
    for name, value in components.items():
        parts = name.split("/")
        if parts[0] != "buffers" or len(parts) < 2:
            continue
        kind = parts[2] if len(parts) > 2 else "cells"
        entry = out.setdefault(parts[1], {"cells": 0.0, **{k: 0.0 for k in MACRO_ACCESSES},
                                          "macro_leakage": 0.0})
        entry[kind] = entry.get(kind, 0.0) + value
    return out


def energy_summary(components: dict[str, float]) -> dict[str, Any]:
    """The parts an architect reads from components (any energy unit): the clock network
    (``tree``, ``wires``, ``pins``), each memory's parts (:func:`memory_breakdown`), and the
    memory macros' access energy (``macro_access``: what an SRAM energy sensitivity
    scales)."""
    mem = memory_breakdown(components)
    return {"clock": {p: components.get(f"clock/{p}", 0.0) for p in CLOCK_PARTS},
            "memories": mem,
            "macro_access": sum(v for m in mem.values() for k, v in m.items()
                                if k in MACRO_ACCESSES)}


@dataclass(frozen=True)
class WindowEnergy:
    """Energy of one window of cycles (pJ): by kind (internal, switching, memory-macro
    accesses, leakage), by group, and by component (``clock/tree``, ``buffers/act_buf``,
    ``buffers/act_buf/macro_read``, ...; a group without details is its own component)."""

    cycles: int
    internal: float
    switching: float
    leakage: float
    by_group: dict[str, float]
    components: dict[str, float] = field(default_factory=dict)
    memory_access: float = 0.0

    @property
    def total(self) -> float:
        return self.internal + self.switching + self.leakage + self.memory_access


def _mean(tables: list[Table | None], slew: float, load: float) -> float:
    vals = [t.lookup(slew, load) for t in tables if t is not None]
    return sum(vals) / len(vals) if vals else 0.0


class EnergyModel:
    """The loads, slews and per-transition energies of ``netlist`` on ``lib``.

    Parameters
    ----------
    netlist : FlatNetlist
    lib : Liberty
    clock : str
        The clock input port.
    constraints : dict
        ``input_transition_ns``, ``output_load``, ``wire_load`` (``"library"``: the
        liberty's default wire-load model when it has one; or the name of one of its
        models; or ``"none"``), ``wire_cap_per_fanout`` (pF per fanout, when no model
        applies), and for the clock tree ``clock_tree_fanout`` (0: no tree),
        ``clock_wire_cap_per_um`` (pF/µm), ``placement_density`` and ``clock_buffer``
        (a cell name; default :func:`clock_buffer_cell`).
    top_module : str
        Name by which :func:`group_of` knows the top (``rcm_mac``, ``rcm_tile``).
    groups, group_of_module : optional
        The groups of the breakdown and the function (module, top) → group that sorts
        cells into them; default :data:`ENERGY_GROUPS` and the area groups of
        :func:`rcm_gen.flows.asic.group_of` (a group it names that ``groups`` lacks counts
        as ``control``).  ``groups`` must contain ``clock`` and ``inputs``.
    detail_of_module : optional
        (instance path with the top's name in front, top) → a detail name or ``None``:
        components ``<group>/<detail>`` (the path, not the module: hierarchical synthesis
        writes a module once for all its instances).
    macro_cells, macro_energy : optional
        The liberty cells (pins, leakage) and per-access energies
        (:class:`rcm_gen.power.sram.MacroEnergy`) of the memory macros, by macro name.

    Raises
    ------
    UserError
        A cell the netlist uses is not in the library, or has output transitions in the
        netlist but no ``internal_power`` data; a macro without a liberty cell or without
        per-access energies; a clock buffer the library lacks.
    """

    def __init__(self, netlist: FlatNetlist, lib: Liberty, clock: str,
                 constraints: dict[str, Any], top_module: str | None = None,
                 groups: tuple[str, ...] | None = None,
                 group_of_module: Callable[[str, str], str] | None = None,
                 macro_cells: dict[str, Any] | None = None,
                 macro_energy: dict[str, Any] | None = None,
                 detail_of_module: Callable[[str, str], str | None] | None = None) -> None:
        self.netlist, self.lib = netlist, lib
        self._macro_cells = dict(macro_cells or {})
        self.voltage = float(lib.voltage)
        if not self.voltage > 0:
            raise UserError(f"liberty {lib.name!r} gives no supply voltage (nom_voltage or "
                            "operating_conditions voltage)")
        top = top_module or netlist.top
        n = netlist.net_count
        self.groups = list(groups or ENERGY_GROUPS)
        for needed in ("clock", "inputs"):
            if needed not in self.groups:
                raise ValueError(f"Energy groups must include {needed!r}, not {self.groups!r}")
        sort = group_of_module or group_of
        detail = detail_of_module or (lambda _m, _t: None)
        self._comp_index: dict[str, int] = {}
        for g in self.groups:
            if g == "clock":
                for part in CLOCK_PARTS:
                    self._comp(f"clock/{part}")
            else:
                self._comp(g)

        module_comp: dict[tuple[str, str | None, str], int] = {}
        group_cache: dict[str, str] = {}

        def comp_of(module: str, path: str, suffix: str = "") -> int:
            """The component of a cell or macro: the group of the module it was
            synthesized in, the detail of its instance path (a module synthesized once
            for several instances has one name; the path tells them apart)."""
            if module not in group_cache:
                g = sort(module, top)
                group_cache[module] = (g if g in self.groups and g not in ("clock", "inputs")
                                       else "control")
            g = group_cache[module]
            d = detail(f"{top}.{path}", top)
            key = (g, d, suffix)
            if key not in module_comp:
                name = g if d is None else f"{g}/{d}"
                module_comp[key] = self._comp(name + (f"/{suffix}" if suffix else ""))
            return module_comp[key]

        # -- loads ----------------------------------------------------------------------
        cap = np.zeros(n)
        fanout = np.zeros(n, dtype=int)
        driver: dict[int, tuple[int, str]] = {}
        sinks: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for i, inst in enumerate(netlist.instances):
            cell = lib.cells.get(inst.cell)
            if cell is None:
                raise UserError(f"cell {inst.cell!r} of the netlist is not in liberty "
                                f"{lib.name!r}")
            for pin_name, net in inst.pins.items():
                pin = cell.pins.get(pin_name)
                if pin is None:
                    raise UserError(f"cell {inst.cell} has no pin {pin_name!r}")
                if pin.direction == "input":
                    cap[net] += pin.capacitance
                    fanout[net] += 1
                    sinks[net].append((i, pin_name))
                else:
                    driver[net] = (i, pin_name)
        macro_pins = []  # (macro instance, liberty pin, nets)
        macro_driven: dict[int, Any] = {}
        macro_sink_cap = np.zeros(n)
        for m in netlist.macros:
            mcell = (macro_cells or {}).get(m.cell)
            if mcell is None:
                raise UserError(f"macro {m.cell!r} of the netlist has no liberty cell")
            by_bus = {re.sub(r"\[.*\]$", "", name): pin for name, pin in mcell.pins.items()}
            for pin_name, nets in m.pins.items():
                pin = by_bus.get(pin_name)
                if pin is None:
                    raise UserError(f"macro {m.cell} has no pin {pin_name!r} in its liberty")
                macro_pins.append((m, pin, nets))
                for net in nets:
                    if net <= CONST1:
                        continue
                    if pin.direction == "input":
                        cap[net] += pin.capacitance
                        macro_sink_cap[net] += pin.capacitance
                        fanout[net] += 1
                    else:
                        macro_driven[net] = m
        outputs = [k for p, (d, bits) in netlist.ports.items() if d != "input" for k in bits]
        for k in outputs:
            cap[k] += float(constraints["output_load"])
            fanout[k] += 1
        wire = str(constraints.get("wire_load", "library"))
        model = None
        if wire == "library":
            model = lib.default_wire_load
        elif wire != "none":
            if wire not in lib.wire_loads:
                raise UserError(f"wire_load must be library, none or a wire-load model of "
                                f"liberty {lib.name!r} ({', '.join(lib.wire_loads) or 'none'}), "
                                f"not {wire!r}")
            model = wire
        per_fanout = float(constraints.get("wire_cap_per_fanout", 0.0))
        wire_cap = np.zeros(n)
        for k in range(CONST1 + 1, n):
            if fanout[k]:
                wire_cap[k] = (lib.wire_cap(model, int(fanout[k])) if model
                               else per_fanout * fanout[k])
        pin_cap = cap.copy()
        cap += wire_cap
        cap[: CONST1 + 1] = 0.0
        self.wire_model = model

        # -- the clock network -----------------------------------------------------------
        clock_bits = set(netlist.ports[clock][1]) if clock in netlist.ports else set()
        clock_order, passers, seq_sinks = clock_network(netlist, lib, clock_bits, sinks)
        self.clock_nets = clock_order
        self.clock_passers = passers
        t_in = float(constraints["input_transition_ns"])
        slew = np.full(n, np.nan)
        slew[: CONST1 + 1] = 0.0
        for d, bits in netlist.ports.values():
            if d == "input":
                for k in bits:
                    if k > CONST1:
                        slew[k] = t_in
        self.trees: dict[int, ClockTree] = {}
        tree_fanout = int(constraints.get("clock_tree_fanout", 0) or 0)
        buffer = constraints.get("clock_buffer") if tree_fanout else None
        if tree_fanout and clock_order:
            if not buffer:
                raise UserError(f"liberty {lib.name!r} has no buffer cell for a clock tree "
                                "(set clock_buffer, or clock_tree_fanout = 0)")
            if buffer not in lib.cells:
                raise UserError(f"clock_buffer {buffer!r} is not a cell of liberty "
                                f"{lib.name!r}")
            macro_area = sum(self._macro_cells[m.cell].area for m in netlist.macros)
            self.trees = estimate_trees(netlist, lib, clock_order, sinks, seq_sinks, driver,
                                        pin_cap, slew, t_in, constraints, lib.cells[buffer],
                                        tree_fanout, macro_area, self._arc_slew)
            for k, tree in self.trees.items():
                wire_cap[k] = tree.wire_pf
                cap[k] = tree.driver_load
                slew[k] = tree.leaf_slew
        self.load, self.wire_cap, self.fanout = cap, wire_cap, fanout
        self.clock_buffer = buffer

        # -- slews ----------------------------------------------------------------------
        self._resolve_slews(slew, driver, t_in)
        self.slew = slew

        # -- per-transition energies -----------------------------------------------------
        v2 = self.voltage ** 2
        clock_set = set(clock_order)
        input_bits = {k for p, (d, bits) in netlist.ports.items() if d == "input"
                      for k in bits}
        sw_net, sw_comp, sw_e = [], [], []
        tree_c, wire_c, pins_c = (self._comp_index[f"clock/{p}"] for p in CLOCK_PARTS)
        inputs_c = self._comp_index["inputs"]
        for k in range(CONST1 + 1, n):
            if k in clock_set:
                # the clock net's load by part: sinks' pins (sequential: pins; cells that
                # pass the clock on: tree), its wire (and the estimated tree's)
                seq_cap = sum(lib.cells[netlist.instances[i].cell].pins[p].capacitance
                              for i, p in sinks.get(k, ()) if (i, p) in seq_sinks)
                seq_cap += macro_sink_cap[k]
                other = pin_cap[k] - seq_cap
                tree = self.trees.get(k)
                wire_pf = tree.wire_pf if tree else wire_cap[k]
                for c, value in ((pins_c, seq_cap), (tree_c, other), (wire_c, wire_pf)):
                    if value:
                        sw_net.append(k)
                        sw_comp.append(c)
                        sw_e.append(0.5 * value * v2)
                continue
            if k in driver and driver[k][0] in passers:
                c = tree_c  # inside a clock gate (a latch-and-AND gate's latched enable)
            elif k in driver:
                drv = netlist.instances[driver[k][0]]
                c = comp_of(drv.module, drv.path)
            elif k in macro_driven:
                c = comp_of(macro_driven[k].module, macro_driven[k].path)
            elif k in input_bits:
                c = inputs_c
            else:
                continue  # undriven net
            sw_net.append(k)
            sw_comp.append(c)
            sw_e.append(0.5 * cap[k] * v2)
        # input-pin internal energy, per rise / fall of the input net
        in_net, in_comp, in_rise, in_fall = [], [], [], []
        # output-pin internal energy: one row per (output pin, related input) pair
        pair_out, pair_in, pair_rise, pair_fall, pair_owner, pair_comp = [], [], [], [], [], []
        owner = 0
        #: (instance index, output pin) of each owner of output-pin pairs
        self.owner_pins: list[tuple[int, str]] = []
        leak = np.zeros(len(self._comp_index) + 64)
        self.missing_power: set[str] = set()
        for i_inst, inst in enumerate(netlist.instances):
            cell = lib.cells[inst.cell]
            c_cell = tree_c if i_inst in passers else comp_of(inst.module, inst.path)
            if cell.leakage_nw is not None:
                leak = self._grow(leak)
                leak[c_cell] += cell.leakage_nw
            for pin_name, net in inst.pins.items():
                pin = cell.pins[pin_name]
                if pin.direction == "input":
                    arcs = list(pin.power)  # energy per transition of this input
                    if arcs:
                        s = slew[net]
                        c = pins_c if (i_inst, pin_name) in seq_sinks else c_cell
                        in_net.append(net)
                        in_comp.append(c)
                        in_rise.append(_mean([a.rise for a in arcs], s, 0.0))
                        in_fall.append(_mean([a.fall for a in arcs], s, 0.0))
                    continue
                if not pin.power:
                    self.missing_power.add(cell.name)
                    continue
                for rel, r_e, f_e in self._output_arcs(pin, inst.pins, slew, cap[net]):
                    pair_out.append(net)
                    pair_in.append(rel)
                    pair_rise.append(r_e)
                    pair_fall.append(f_e)
                    pair_owner.append(owner)
                    pair_comp.append(c_cell)
                self.owner_pins.append((i_inst, pin_name))
                owner += 1
        # the estimated clock buffers: internal energy per rise / fall of the clock net
        buf_leak = (lib.cells[buffer].leakage_nw or 0.0) if buffer else 0.0
        for k, tree in self.trees.items():
            if tree.buffers:
                e_r, e_f = buffer_energy(lib.cells[buffer], tree, self.voltage)
                in_net.append(k)
                in_comp.append(tree_c)
                in_rise.append(e_r)
                in_fall.append(e_f)
                leak[tree_c] += tree.buffers * buf_leak
        # memory macros: energy per access of each port (counted by the simulation) and
        # their leakage; their liberties' internal_power is not an energy and is not used
        self.macro_comps: list[tuple[int, int, int, int]] = []
        self.macro_access_pj: list[tuple[float, float, float, float, float]] = []
        for m in netlist.macros:
            energy = (macro_energy or {}).get(m.cell)
            if energy is None:
                raise UserError(f"memory macro {m.cell!r} has no per-access energies (its "
                                "macro library's [energy] table)")
            read_c, write_c, idle_c = (comp_of(m.module, m.path, a) for a in MACRO_ACCESSES)
            leak_c = comp_of(m.module, m.path, "macro_leakage")
            self.macro_comps.append((read_c, write_c, idle_c, leak_c))
            self.macro_access_pj.append((energy.rw_read, energy.rw_write, energy.rw_deselected,
                                         energy.r_read, energy.r_deselected))
            if macro_cells[m.cell].leakage_nw is not None:
                leak = self._grow(leak)
                leak[leak_c] += macro_cells[m.cell].leakage_nw
        self.components = list(self._comp_index)
        ncomp = len(self.components)
        self.sw_net = np.array(sw_net, dtype=np.int64)
        self.sw_comp = np.array(sw_comp, dtype=np.int64)
        self.sw_e = np.array(sw_e, dtype=float)
        self.in_net = np.array(in_net, dtype=np.int64)
        self.in_comp = np.array(in_comp, dtype=np.int64)
        self.in_rise_e = np.array(in_rise, dtype=float)
        self.in_fall_e = np.array(in_fall, dtype=float)
        self.pair_out = np.array(pair_out, dtype=np.int64)
        self.pair_in = np.array(pair_in, dtype=np.int64)
        self.pair_rise = np.array(pair_rise, dtype=float)
        self.pair_fall = np.array(pair_fall, dtype=float)
        self.pair_owner = np.array(pair_owner, dtype=np.int64)
        self.pair_comp = np.array(pair_comp, dtype=np.int64)
        self.owners = owner
        self.comp_leakage_nw = leak[:ncomp].copy()
        self.comp_group = np.array([self.groups.index(c.split("/")[0])
                                    for c in self.components], dtype=np.int64)
        self.leakage_nw = np.bincount(self.comp_group, weights=self.comp_leakage_nw,
                                      minlength=len(self.groups))

    # -- construction helpers -----------------------------------------------------------

    def _comp(self, name: str) -> int:
        if name not in self._comp_index:
            self._comp_index[name] = len(self._comp_index)
        return self._comp_index[name]

    def _grow(self, leak: np.ndarray) -> np.ndarray:
        if len(self._comp_index) >= len(leak):
            leak = np.concatenate([leak, np.zeros(len(leak))])
        return leak

    def _arc_slew(self, cell_name: str, pin_name: str, pins: dict[str, int],
                  slew: np.ndarray, load: float, default: float) -> float:
        pin = self.lib.cells[cell_name].pins[pin_name]
        best = None
        for arc in pin.timing:
            k = pins.get(arc.related)
            if k is None:
                continue
            s_in = slew[k] if not np.isnan(slew[k]) else default
            vals = [t.lookup(float(s_in), float(load)) for t in (arc.rise, arc.fall)
                    if t is not None]
            if vals:
                s = sum(vals) / len(vals)
                best = s if best is None else max(best, s)
        return default if best is None else best

    def _output_arcs(self, pin: Pin, pins: dict[str, int], slew: np.ndarray, load: float
                     ) -> list[tuple[int, float, float]]:
        """(related net or -1, energy per output rise, per output fall) of an output pin,
        the ``when`` variants of one related pin averaged."""
        by_rel: dict[str | None, list[Any]] = defaultdict(list)
        for arc in pin.power:
            by_rel[arc.related].append(arc)
        out = []
        for rel, arcs in by_rel.items():
            k = pins.get(rel, -1) if rel is not None else -1
            s = float(slew[k]) if k >= 0 else 0.0
            out.append((k, _mean([a.rise for a in arcs], s, load),
                        _mean([a.fall for a in arcs], s, load)))
        return out

    def _resolve_slews(self, slew: np.ndarray, driver: dict[int, tuple[int, str]],
                       default: float) -> None:
        insts = self.netlist.instances
        cells = self.lib.cells

        def inputs_of(net: int) -> list[int]:
            i, pin_name = driver[net]
            pin = cells[insts[i].cell].pins[pin_name]
            return [insts[i].pins[a.related] for a in pin.timing
                    if a.related in insts[i].pins]

        for start in driver:
            if not np.isnan(slew[start]):
                continue
            stack = [(start, False)]
            on_stack = {start}
            while stack:
                net, expanded = stack.pop()
                if not np.isnan(slew[net]):
                    on_stack.discard(net)
                    continue
                if net not in driver:
                    slew[net] = default
                    continue
                ins = inputs_of(net)
                todo = [k for k in ins if np.isnan(slew[k]) and k not in on_stack]
                if not expanded and todo:
                    stack.append((net, True))
                    for k in todo:
                        on_stack.add(k)
                        stack.append((k, False))
                    continue
                i, pin_name = driver[net]
                slew[net] = self._arc_slew(insts[i].cell, pin_name, insts[i].pins, slew,
                                           float(self.load[net]), default)
                on_stack.discard(net)

    # -- what tests and other tools read -------------------------------------------------

    def switching_per_net(self, components: set[str] | None = None) -> np.ndarray:
        """``1/2 C V²`` per transition of each net (pJ), over ``components`` (all by
        default)."""
        sel = self._select(self.sw_comp, components)
        return np.bincount(self.sw_net[sel], weights=self.sw_e[sel],
                           minlength=self.netlist.net_count)

    def input_internal_per_net(self, components: set[str] | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
        """Input-pin internal energy per rise and per fall of each net (pJ; the estimated
        clock buffers' included), over ``components`` (all by default)."""
        sel = self._select(self.in_comp, components)
        n = self.netlist.net_count
        return (np.bincount(self.in_net[sel], weights=self.in_rise_e[sel], minlength=n),
                np.bincount(self.in_net[sel], weights=self.in_fall_e[sel], minlength=n))

    def net_groups(self) -> np.ndarray:
        """The group (index into ``groups``) of each net's switching energy — its
        driver's group, ``clock`` for the clock network's nets — or -1 for a net that
        carries none (constants, undriven nets)."""
        out = np.full(self.netlist.net_count, -1, dtype=np.int64)
        out[self.sw_net] = self.comp_group[self.sw_comp]
        return out

    def _select(self, comps: np.ndarray, names: set[str] | None) -> np.ndarray:
        if names is None:
            return np.ones(len(comps), dtype=bool)
        wanted = [i for i, c in enumerate(self.components) if c in names]
        return np.isin(comps, wanted)

    def clock_tree_summary(self) -> dict[str, Any]:
        """The estimated clock tree: clock nets, sinks, buffers, wire (µm) and the worst
        leaf slew (ns), with the settings it was estimated with."""
        trees = list(self.trees.values())
        return {
            "clock_nets": len(self.clock_nets),
            "gating_cells": len(self.clock_passers),
            "sinks": sum(t.sinks for t in trees),
            "buffers": sum(t.buffers for t in trees),
            "buffer_cell": self.clock_buffer,
            "wire_um": sum(t.wire_um for t in trees),
            "worst_leaf_slew_ns": max((t.leaf_slew for t in trees), default=None),
            "root_sinks": trees[0].sinks if trees else 0,
        }

    # -- evaluation ---------------------------------------------------------------------

    def check_power_data(self, rises: np.ndarray, falls: np.ndarray) -> None:
        """:class:`UserError` naming a cell whose outputs toggle but that has no
        ``internal_power`` data."""
        if not self.missing_power:
            return
        toggled = (np.asarray(rises).sum(axis=0) + np.asarray(falls).sum(axis=0)) > 0
        for inst in self.netlist.instances:
            if inst.cell not in self.missing_power:
                continue
            pins = self.lib.cells[inst.cell].pins
            for p, k in inst.pins.items():
                if pins[p].direction != "input" and not pins[p].power and toggled[k]:
                    raise UserError(f"liberty {self.lib.name!r} has no internal_power for "
                                    f"cell {inst.cell} (output {p}), which the netlist uses")

    def window(self, rises: np.ndarray, falls: np.ndarray, cycles: int,
               clock_ns: float, accesses: np.ndarray | None = None) -> WindowEnergy:
        """Energy of a window of ``cycles`` cycles in which net ``k`` rose ``rises[k]``
        and fell ``falls[k]`` times, at clock period ``clock_ns`` (leakage only);
        ``accesses`` are the macros' port accesses in the window (read and write of port
        0, read of port 1, per macro: the cycle simulator's counts), needed when the
        netlist has macros."""
        rises = np.asarray(rises, dtype=float)
        falls = np.asarray(falls, dtype=float)
        ncomp = len(self.components)
        toggles = rises + falls
        sw = np.bincount(self.sw_comp, weights=self.sw_e * toggles[self.sw_net],
                         minlength=ncomp)
        internal = np.bincount(self.in_comp, weights=self.in_rise_e * rises[self.in_net]
                               + self.in_fall_e * falls[self.in_net], minlength=ncomp)
        if len(self.pair_out):
            t_in = np.where(self.pair_in >= 0, toggles[np.maximum(self.pair_in, 0)], 0.0)
            total = np.bincount(self.pair_owner, weights=t_in, minlength=self.owners)
            count = np.bincount(self.pair_owner, minlength=self.owners)
            denom = total[self.pair_owner]
            weight = np.where(denom > 0, t_in / np.where(denom > 0, denom, 1.0),
                              1.0 / count[self.pair_owner])
            e = weight * (self.pair_rise * rises[self.pair_out]
                          + self.pair_fall * falls[self.pair_out])
            internal = internal + np.bincount(self.pair_comp, weights=e, minlength=ncomp)
        access = np.zeros(ncomp)
        if self.macro_comps:
            if accesses is None:
                raise ValueError("the netlist has memory macros: give their access counts")
            acc = np.asarray(accesses, dtype=float).reshape(-1)
            if len(acc) != 3 * len(self.macro_comps):
                raise ValueError(f"access counts must be 3 per macro "
                                 f"({3 * len(self.macro_comps)}), not {len(acc)}")
            for j, (read_c, write_c, idle_c, _) in enumerate(self.macro_comps):
                e_rd, e_wr, e_idle, e_r1, e_idle1 = self.macro_access_pj[j]
                reads, writes, reads1 = acc[3 * j], acc[3 * j + 1], acc[3 * j + 2]
                access[read_c] += reads * e_rd + reads1 * e_r1
                access[write_c] += writes * e_wr
                access[idle_c] += ((cycles - reads - writes) * e_idle
                                   + (cycles - reads1) * e_idle1)
        leak = self.comp_leakage_nw * clock_ns * cycles * 1e-6  # nW x ns = 1e-6 pJ
        per_comp = sw + internal + access + leak
        by_group = np.bincount(self.comp_group, weights=per_comp, minlength=len(self.groups))
        return WindowEnergy(
            cycles, float(internal.sum()), float(sw.sum()), float(leak.sum()),
            {g: float(by_group[i]) for i, g in enumerate(self.groups)},
            {c: float(per_comp[i]) for i, c in enumerate(self.components)},
            float(access.sum()))

    def forced_activity(self, activity: float, clock: str, cycles: int = 1,
                        clock_ns: float = 1.0) -> WindowEnergy:
        """Energy when every net but the clock makes ``activity`` transitions per cycle
        (half rising) and the clock two: what OpenSTA's ``set_power_activity -global``
        assumes (macros deselected)."""
        n = self.netlist.net_count
        t = np.full(n, activity * cycles / 2.0)
        t[: CONST1 + 1] = 0.0
        for k in self.netlist.ports[clock][1]:
            t[k] = float(cycles)
        acc = np.zeros(3 * len(self.macro_comps)) if self.macro_comps else None
        return self.window(t, t, cycles, clock_ns, acc)
