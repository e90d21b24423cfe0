"""Energy of a gate-level netlist from per-net transition counts and a liberty library.

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
- **leakage**: the cells' leakage power (``cell_leakage_power``, else the mean of their
  ``leakage_power`` groups) times the clock period.

Memory macros (black boxes of a macro library, their cells given as ``macro_cells``) count
the same way from their own liberty: their input pins' capacitance loads the nets, their
input pins' ``internal_power`` is energy per transition of those pins (an OpenRAM macro
gives it on its clock pins, the same for a read, a write and a deselected cycle), their
output pins drive their nets (switching energy to the macro's group), and their leakage.

Energies are in pJ.  Each cell's energy (and the switching energy of the net it drives)
goes to the area group of the module it was synthesized in
(:func:`rcm_gen.flows.asic.group_of`); nets driven by input ports go to ``clock`` (the clock
port) or ``inputs``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from ..flows.asic import AREA_GROUPS, group_of
from ..flows.liberty import Liberty, Pin, Table
from ..flows.netlist import CONST1, FlatNetlist

__all__ = ["ENERGY_GROUPS", "TILE_ENERGY_GROUPS", "EnergyModel", "WindowEnergy",
           "tile_group_of"]

#: Groups of an energy breakdown: the area groups, the clock net, the input-port nets.
ENERGY_GROUPS = (*AREA_GROUPS, "clock", "inputs")

#: Groups of a tile's energy breakdown (:func:`tile_group_of`), the clock net and the
#: input-port nets.
TILE_ENERGY_GROUPS = ("multipliers", "accumulators", "buffers", "post_processing", "control",
                      "clock", "inputs")


def tile_group_of(module: str, top: str) -> str:
    """Energy group of a tile's synthesized module, from its hierarchical name
    (``rcm_tile.mac0.multiplier``, ``rcm_tile.out_buf1.mem0``): a ``multiplier`` instance
    anywhere is *multipliers*; the rest of a MAC instance (a path element that starts with
    ``mac``) *accumulators*; buffer instances (``act_buf``, ``out_buf0``: ending in
    ``_buf`` and an optional number) and everything in them, SRAM macros included,
    *buffers*; the output path (``drain``, ``ppu``: draining, requantization, packing)
    *post_processing*; everything else (loader, controller, the top's glue) *control*."""
    name = module.lstrip("\\")
    path = name[len(top) + 1:].split(".") if name.startswith(top + ".") else []
    if "multiplier" in path:
        return "multipliers"
    if any(re.fullmatch(r"mac\w*", p) for p in path):
        return "accumulators"
    if any(re.fullmatch(r"\w*_buf\d*", p) for p in path):
        return "buffers"
    if any(p in ("drain", "ppu") for p in path):
        return "post_processing"
    return "control"


@dataclass(frozen=True)
class WindowEnergy:
    """Energy of one window of cycles (pJ), by kind and by group."""

    cycles: int
    internal: float
    switching: float
    leakage: float
    by_group: dict[str, float]

    @property
    def total(self) -> float:
        return self.internal + self.switching + self.leakage


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
        models; or ``"none"``) and ``wire_cap_per_fanout`` (pF per fanout, when no model
        applies).
    top_module : str
        Name by which :func:`group_of` knows the top (``rcm_mac``, ``rcm_tile``).
    groups, group_of_module : optional
        The groups of the breakdown and the function (module, top) → group that sorts
        cells into them; default :data:`ENERGY_GROUPS` and the area groups of
        :func:`rcm_gen.flows.asic.group_of` (a group it names that ``groups`` lacks counts
        as ``control``).  Nets driven by ports go to ``clock`` and ``inputs``, which
        ``groups`` must contain.

    Raises
    ------
    UserError
        A cell the netlist uses is not in the library, or has output transitions in the
        netlist but no ``internal_power`` data.
    """

    def __init__(self, netlist: FlatNetlist, lib: Liberty, clock: str,
                 constraints: dict[str, Any], top_module: str | None = None,
                 groups: tuple[str, ...] | None = None,
                 group_of_module: Callable[[str, str], str] | None = None,
                 macro_cells: dict[str, Any] | None = None) -> None:
        self.netlist, self.lib = netlist, lib
        self.voltage = float(lib.voltage)
        if not self.voltage > 0:
            raise UserError(f"liberty {lib.name!r} gives no supply voltage (nom_voltage or "
                            "operating_conditions voltage)")
        top = top_module or netlist.top
        n = netlist.net_count
        self.groups = list(groups or ENERGY_GROUPS)
        gidx = {g: i for i, g in enumerate(self.groups)}
        sort = group_of_module or group_of

        def group(module: str) -> str:
            g = sort(module, top)
            return g if g in gidx else "control"

        # -- loads ----------------------------------------------------------------------
        cap = np.zeros(n)
        fanout = np.zeros(n, dtype=int)
        driver: dict[int, tuple[int, str]] = {}
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
                else:
                    driver[net] = (i, pin_name)
        # memory macros: their input pins load their nets, their outputs drive theirs
        macro_pins = []  # (macro instance, liberty pin, nets)
        macro_driven: dict[int, str] = {}
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
                        fanout[net] += 1
                    else:
                        macro_driven[net] = m.module
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
        cap += wire_cap
        cap[: CONST1 + 1] = 0.0
        self.load, self.wire_cap, self.fanout = cap, wire_cap, fanout
        self.wire_model = model

        # -- slews ----------------------------------------------------------------------
        t_in = float(constraints["input_transition_ns"])
        slew = np.full(n, np.nan)
        slew[: CONST1 + 1] = 0.0
        for d, bits in netlist.ports.values():
            if d == "input":
                for k in bits:
                    if k > CONST1:
                        slew[k] = t_in
        self._resolve_slews(slew, driver, t_in)
        self.slew = slew

        # -- per-transition energies -----------------------------------------------------
        g_count = len(self.groups)
        v2 = self.voltage ** 2
        # switching: 1/2 C V^2 per transition, to the driver's group
        self.sw = np.zeros((g_count, n))
        clock_bits = set(netlist.ports[clock][1]) if clock in netlist.ports else set()
        input_bits = {k for p, (d, bits) in netlist.ports.items() if d == "input"
                      for k in bits}
        for k in range(CONST1 + 1, n):
            if k in driver:
                g = group(netlist.instances[driver[k][0]].module)
            elif k in macro_driven:
                g = group(macro_driven[k])
            elif k in clock_bits:
                g = "clock"
            elif k in input_bits:
                g = "inputs"
            else:
                continue  # undriven net
            self.sw[gidx[g], k] = 0.5 * cap[k] * v2
        # input-pin internal energy, per rise / fall of the input net
        self.in_rise = np.zeros((g_count, n))
        self.in_fall = np.zeros((g_count, n))
        # output-pin internal energy: one row per (output pin, related input) pair
        pair_out, pair_in, pair_rise, pair_fall, pair_owner, pair_group = [], [], [], [], [], []
        owner = 0
        #: (instance index, output pin) of each owner of output-pin pairs
        self.owner_pins: list[tuple[int, str]] = []
        leak = np.zeros(g_count)
        self.missing_power: set[str] = set()
        for i_inst, inst in enumerate(netlist.instances):
            cell = lib.cells[inst.cell]
            g = gidx[group(inst.module)]
            if cell.leakage_nw is not None:
                leak[g] += cell.leakage_nw
            for pin_name, net in inst.pins.items():
                pin = cell.pins[pin_name]
                if pin.direction == "input":
                    arcs = list(pin.power)  # energy per transition of this input
                    if arcs:
                        s = slew[net]
                        self.in_rise[g, net] += _mean([a.rise for a in arcs], s, 0.0)
                        self.in_fall[g, net] += _mean([a.fall for a in arcs], s, 0.0)
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
                    pair_group.append(g)
                self.owner_pins.append((i_inst, pin_name))
                owner += 1
        # a macro's energy: its liberty's internal energy per transition of its input
        # pins (OpenRAM's: per clock edge, read, write or deselected alike) and its leakage
        for m in netlist.macros:
            g = gidx[group(m.module)]
            if macro_cells[m.cell].leakage_nw is not None:
                leak[g] += macro_cells[m.cell].leakage_nw
        for m, pin, nets in macro_pins:
            if pin.direction != "input" or not pin.power:
                continue
            g = gidx[group(m.module)]
            for net in nets:
                if net > CONST1:
                    s = float(slew[net])
                    self.in_rise[g, net] += _mean([a.rise for a in pin.power], s, 0.0)
                    self.in_fall[g, net] += _mean([a.fall for a in pin.power], s, 0.0)
        self.pair_out = np.array(pair_out, dtype=int)
        self.pair_in = np.array(pair_in, dtype=int)
        self.pair_rise = np.array(pair_rise, dtype=float)
        self.pair_fall = np.array(pair_fall, dtype=float)
        self.pair_owner = np.array(pair_owner, dtype=int)
        self.pair_group = np.array(pair_group, dtype=int)
        self.owners = owner
        self.leakage_nw = leak

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
                slew[net] = self._output_slew(net, driver, slew, default)
                on_stack.discard(net)

    def _output_slew(self, net: int, driver: dict[int, tuple[int, str]], slew: np.ndarray,
                     default: float) -> float:
        i, pin_name = driver[net]
        inst = self.netlist.instances[i]
        pin = self.lib.cells[inst.cell].pins[pin_name]
        best = None
        for arc in pin.timing:
            k = inst.pins.get(arc.related)
            if k is None:
                continue
            s_in = slew[k] if not np.isnan(slew[k]) else default  # a loop: cut it here
            vals = [t.lookup(float(s_in), float(self.load[net])) for t in (arc.rise, arc.fall)
                    if t is not None]
            if vals:
                s = sum(vals) / len(vals)
                best = s if best is None else max(best, s)
        return default if best is None else best

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
               clock_ns: float) -> WindowEnergy:
        """Energy of a window of ``cycles`` cycles in which net ``k`` rose ``rises[k]``
        and fell ``falls[k]`` times, at clock period ``clock_ns`` (leakage only)."""
        rises = np.asarray(rises, dtype=float)
        falls = np.asarray(falls, dtype=float)
        toggles = rises + falls
        sw = self.sw @ toggles
        internal = self.in_rise @ rises + self.in_fall @ falls
        if len(self.pair_out):
            t_in = np.where(self.pair_in >= 0, toggles[np.maximum(self.pair_in, 0)], 0.0)
            total = np.bincount(self.pair_owner, weights=t_in, minlength=self.owners)
            count = np.bincount(self.pair_owner, minlength=self.owners)
            denom = total[self.pair_owner]
            weight = np.where(denom > 0, t_in / np.where(denom > 0, denom, 1.0),
                              1.0 / count[self.pair_owner])
            e = weight * (self.pair_rise * rises[self.pair_out]
                          + self.pair_fall * falls[self.pair_out])
            internal = internal + np.bincount(self.pair_group, weights=e,
                                              minlength=len(self.groups))
        leak = self.leakage_nw * clock_ns * cycles * 1e-6  # nW x ns = 1e-6 pJ
        by_group = {g: float(sw[i] + internal[i] + leak[i]) for i, g in enumerate(self.groups)}
        return WindowEnergy(cycles, float(internal.sum()), float(sw.sum()), float(leak.sum()),
                            by_group)

    def forced_activity(self, activity: float, clock: str, cycles: int = 1,
                        clock_ns: float = 1.0) -> WindowEnergy:
        """Energy when every net but the clock makes ``activity`` transitions per cycle
        (half rising) and the clock two: what OpenSTA's ``set_power_activity -global``
        assumes."""
        n = self.netlist.net_count
        t = np.full(n, activity * cycles / 2.0)
        t[: CONST1 + 1] = 0.0
        for k in self.netlist.ports[clock][1]:
            t[k] = float(cycles)
        return self.window(t, t, cycles, clock_ns)
