"""Static timing of a hierarchical netlist with block timing models.

A tile made of hundreds of instances of a few distinct modules is timed without handing
OpenSTA the flattened netlist.  Each distinct module (a *block*) is timed once, on its
own netlist, with its submodules as the model cells already made for them and its memory
macros as their liberty cells, by :func:`characterize`:

- its **internal** paths (register to register, through submodule models and macros) give
  the block's own worst slack, TNS and critical path, reported as a *level* of the design;
- its **boundary** is measured with every data input launched by a virtual clock of its
  own at the clock edge: the required times at each input give the setup and hold
  constraints of input to register paths (rise and fall), the arrivals at each output
  from the clock give rising- and falling-edge clock-to-output delays, and the arrivals
  from each input's own clock give the combinational input-to-output delays;
- each is measured at several input transitions and output loads (points from the
  library's own buffer, :func:`characterization_points`), so that the model's tables span
  the slews and loads the block meets in a parent.

The result is written as a liberty cell (:func:`write_model_liberty`): pins with the
capacitance of the net each input drives inside the block, ``setup_rising`` and
``hold_rising`` arcs on ``constrained_pin_transition``, ``rising_edge`` and
``falling_edge`` arcs and ``combinational`` arcs on ``total_output_net_capacitance``
(combinational ones also on ``input_net_transition``), and the block's area.  Models are
cached by the block's netlist, its children's models and the timing settings.

Modules that are mostly wiring, and modules used once that are small beside their
boundary, get no model: their netlists are read with their parent's (:func:`plan`).

The model is exact, up to the wire load of the nets that cross the block boundary, for a
block whose inputs reach registers and whose outputs come from registers: the constraint
at an input and the delay to an output are those OpenSTA computes inside the block for the
same slew and load, and the composition adds the same register-to-register paths.  It is
approximate where a block has combinational input-to-output paths: each input edge and
output edge pair keeps its worst delay (a positive-unate and a negative-unate arc), and
its table over slew and load is built from the two one-dimensional sweeps (the input slew
acts on the first stages, the load on the last); the output transition of every arc into
an output is the worst over all of them.  Between table points OpenSTA interpolates
linearly.  Hold arcs are the block's minimum requirements, but its clock-to-output delays
are the maximum ones, so hold analysis through a model is optimistic; the flow reports
setup timing only.  TNS is summed over levels: an endpoint inside a block is counted once
per instance for its internal paths, and once more (at the model's input pin) if the
paths into it from outside the block also fail.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolFailed
from .liberty import Liberty
from .sta import GATING_MARK, gating_tcl, parse_gating, parse_macro_paths, sta_script, worst_path

__all__ = [
    "MODEL_CELLS_PER_PIN",
    "Block",
    "Port",
    "boundary_slacks",
    "characterization_points",
    "characterize",
    "model_instances",
    "model_ports",
    "parse_path",
    "plan",
    "time_with_models",
    "write_model_liberty",
]

#: Bumped when the characterization or the model format changes.
MODEL_FLOW_VERSION = 9

_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s*)?"
                   r"(\\\S+|[A-Za-z_][\w$]*)\s*;", re.M)
_NUMBER = r"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"
#: Marks between the parts of a characterization log.
_MARKS = ("rcm_gen: internal paths", "rcm_gen: worst path from the memory macros",
          "rcm_gen: worst path to the memory macros", "rcm_gen: boundary")


@dataclass(frozen=True)
class Port:
    """A port of a module: name, direction, and its bits' indices in declaration order
    (``()`` for a one-bit port declared without a range)."""

    name: str
    direction: str
    msb: int | None = None
    lsb: int | None = None

    @property
    def bits(self) -> list[str]:
        """The names OpenSTA gives the port's bits (``a[3]``, or ``a``)."""
        if self.msb is None or self.lsb is None:
            return [self.name]
        step = -1 if self.msb >= self.lsb else 1
        return [f"{self.name}[{i}]" for i in range(self.msb, self.lsb + step, step)]


def model_ports(netlist: str) -> list[Port]:
    """The ports of the first module of a gate-level netlist (as Yosys writes it)."""
    end = netlist.find("endmodule")
    out = []
    for m in _PORT.finditer(netlist[:end if end >= 0 else len(netlist)]):
        # an escaped Verilog name (``\\port$1 ``) is the name without its backslash
        name = m.group(4).removeprefix("\\")
        msb = int(m.group(2)) if m.group(2) is not None else None
        lsb = int(m.group(3)) if m.group(3) is not None else None
        out.append(Port(name, m.group(1), msb, lsb))
    return out


@dataclass(frozen=True)
class Block:
    """A distinct module to model: its key (``M_<key>`` is its cell name), the name it is
    reported under, its gate-level netlist text, the keys of the submodules it
    instantiates, its area, and the macro cells (name, liberty) it instantiates."""

    key: str
    name: str
    netlist: str
    children: tuple[str, ...]
    area: float
    macros: tuple[tuple[str, Path], ...] = ()

    @property
    def cell(self) -> str:
        return f"M_{self.key}"


def characterization_points(lib: Liberty, buffer: str | None, input_transition: float
                            ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input transitions (ns) and output loads (pF) at which blocks are characterized.

    The loads are 1 to 1024 input capacitances of the library's buffer ``buffer``, four
    times apart (a net inside a composed tile drives one to a few hundred pins' worth:
    fanout trees keep it to eight block inputs, but one block input may be a wide net
    inside the block); the transitions are those of that buffer driving 1, 8, 64 and 512
    such loads from ``input_transition``.  Both axes are in the library's own range, and
    wide enough that OpenSTA rarely extrapolates a model's tables.
    """
    cell = lib.cells.get(buffer) if buffer else None
    if cell is None or not cell.inputs:
        raise ToolFailed(f"liberty {lib.name!r} has no buffer to characterize blocks with")
    pin_in = cell.pins.get(cell.inputs[0])
    cap = pin_in.capacitance if pin_in is not None and pin_in.capacitance > 0 else 0.005
    loads = tuple(round(cap * k, 6) for k in (1, 4, 16, 64, 256, 1024))
    out = cell.pins.get(next(iter(cell.outputs)))
    arcs = [a for a in (out.timing if out else ()) if a.rise is not None or a.fall is not None]
    slews: list[float] = []
    for load in (cap * k for k in (1, 8, 64, 512)):
        values = [t.lookup(input_transition, load) for a in arcs for t in (a.rise, a.fall)
                  if t is not None]
        slews.append(max(values) if values else input_transition)
    # strictly increasing, as a table axis must be
    axis: list[float] = []
    for s in sorted(slews):
        s = round(max(s, 1e-3), 5)
        axis.append(s if not axis or s > axis[-1] else round(axis[-1] * 1.5, 5))
    return tuple(axis), loads


# -- the characterization script -----------------------------------------------------------


def _tcl_name(name: str) -> str:
    return "{" + name + "}"


def block_script(block: Block, lib_path: Path, macros: list[Path], models: list[Path],
                 netlist: Path,
                 ports: list[Port], clock: str, period: float, slews: tuple[float, ...],
                 loads: tuple[float, ...], ref: tuple[int, int],
                 gating_cells: tuple[str, ...] | None = None, latches: bool = False) -> str:
    """The OpenSTA script that times ``block`` on its own: the internal paths (and with
    ``gating_cells``, the clock-gating checks: :func:`rcm_gen.flows.sta.gating_tcl`), then
    the boundary at each slew (loads at the reference) and each load (slew at the
    reference).

    With ``latches`` (the block's netlist has latch cells), the inputs' required times
    are read with every input arriving a period after its clock edge: the required time
    at a latch's data input is then the latest arrival the latch can take by borrowing
    (its closing edge less its setup time), where an earlier arrival would report the
    arrival itself (the time it borrows)."""
    inputs = [b for p in ports if p.direction == "input" and p.name != clock for b in p.bits]
    outputs = [b for p in ports if p.direction == "output" for b in p.bits]
    has_clock = any(p.name == clock and p.direction == "input" for p in ports)
    lines = [f"read_liberty {lib_path}", *(f"read_liberty {p.resolve()}" for p in macros),
             *(f"read_liberty -no_latch_infer {p.resolve()}" for p in models),
             f"read_verilog {netlist.resolve()}", f"link_design {block.cell}"]
    if has_clock:
        lines.append(f"create_clock -name clk -period {period} [get_ports {_tcl_name(clock)}]")
    lines += [f'puts "{_MARKS[0]}"', "report_checks -path_delay max -digits 6",
              "report_worst_slack -digits 6", "report_tns -digits 6"]
    if gating_cells is not None and has_clock:
        lines += gating_tcl(gating_cells)
    if block.macros and has_clock:
        cells = " ".join(f'[get_cells -hierarchical -filter "ref_name == {n}"]'
                         for n in sorted({n for n, _ in block.macros}))
        lines += [f"set rcm_macros [concat {cells}]",
                  f'puts "{_MARKS[1]}"',
                  "report_checks -path_delay max -from $rcm_macros -digits 6",
                  f'puts "{_MARKS[2]}"',
                  "report_checks -path_delay max -to $rcm_macros -digits 6"]
    lines.append(f'puts "{_MARKS[3]}"')
    lines.append("set rcm_data {" + " ".join(_tcl_name(n) for n in inputs) + "}")
    lines.append("set rcm_out {" + " ".join(_tcl_name(n) for n in outputs) + "}")
    lines.append(f"set rcm_clock {'[get_clocks clk]' if has_clock else 'NULL'}")
    lines.append(f"set rcm_clock_port {_tcl_name(clock) if has_clock else '{}'}")
    lines.append(f"set rcm_period {period}")
    lines.append(_PROCS)
    lines.append("rcm_ports")
    lines.append("rcm_launch")
    lines.append("rcm_caps")
    s_ref, l_ref = ref
    if outputs:
        lines.append(f"set_load {loads[l_ref]} [all_outputs]")
    for k, slew in enumerate(slews):
        if inputs:
            lines.append(f"set_input_transition {slew} $rcm_data_ports")
        if latches and inputs:
            lines += ["rcm_input_delay $rcm_period", f"rcm_dump_inputs s{k}",
                      "rcm_input_delay 0", f"rcm_dump s{k} 0 {int(k == s_ref)}"]
            continue
        lines.append(f"rcm_dump s{k} 1 {int(k == s_ref)}")
    if inputs:
        lines.append(f"set_input_transition {slews[s_ref]} $rcm_data_ports")
    for m, load in enumerate(loads):
        if m == l_ref:
            continue
        if outputs:
            lines.append(f"set_load {load} [all_outputs]")
        lines.append(f"rcm_dump l{m} 0 1")
    return "\n".join(lines) + "\n"


# Tcl procedures of the characterization script.  Requireds and arrivals come from the
# vertices of the ports (min and max, ns); slews and capacitances are in seconds and farads.
_PROCS = r"""
# The port objects and top-level pins of the block, by name, looked up once (a lookup by
# name searches every port).
proc rcm_ports {} {
  global rcm_port rcm_pin
  foreach port [concat [all_inputs] [all_outputs]] {
    set name [get_full_name $port]
    set rcm_port($name) $port
    set rcm_pin($name) [sta::get_port_pin_error "pin" $port]
  }
}
proc rcm_vertex {name} {
  global rcm_pin
  return [lindex [$rcm_pin($name) vertices] 0]
}
proc rcm_caps {} {
  global rcm_in rcm_clock_port rcm_pin
  set corner [sta::cmd_corner]
  set names {}
  foreach {name clks} $rcm_in { lappend names $name }
  if {$rcm_clock_port != {}} { lappend names $rcm_clock_port }
  foreach name $names {
    set term [$rcm_pin($name) term]
    set net [expr {$term == "NULL" ? "NULL" : [$term net]}]
    if {$net == "NULL"} { puts "P $name 0 0"; continue }
    puts "P $name [$net capacitance rise $corner max] [$net capacitance fall $corner max]"
  }
}
# Every data input is launched at the clock's edges by virtual clocks, one for its rising
# and one for its falling transitions: its required times give its constraints.  An input
# with a combinational path to an output gets clocks of its own, so that the arrivals at
# the outputs tell the inputs apart; the others share a pair.
proc rcm_launch {} {
  global rcm_data rcm_out rcm_in rcm_comb rcm_period rcm_data_ports rcm_port
  foreach name $rcm_data { set data($name) 1 }
  foreach name $rcm_out {
    set rcm_comb($name) {}
    foreach pin [get_fanin -to $rcm_port($name) -flat -startpoints_only] {
      if {![$pin is_top_level_port]} { continue }
      set in [get_full_name $pin]
      if {[info exists data($in)]} {
        lappend fanout($in) $name
      }
    }
  }
  set half [expr {$rcm_period / 2.0}]
  create_clock -name rcm_r -period $rcm_period -waveform [list 0 $half]
  create_clock -name rcm_f -period $rcm_period -waveform [list 0 $half]
  set shared [list [get_clocks rcm_r] [get_clocks rcm_f]]
  set rcm_in {}
  set rcm_data_ports {}
  set shared_ports {}
  set i 0
  foreach name $rcm_data {
    set port $rcm_port($name)
    lappend rcm_data_ports $port
    if {[info exists fanout($name)]} {
      create_clock -name rcm_r$i -period $rcm_period -waveform [list 0 $half]
      create_clock -name rcm_f$i -period $rcm_period -waveform [list 0 $half]
      set clks [list [get_clocks rcm_r$i] [get_clocks rcm_f$i]]
      foreach out $fanout($name) { lappend rcm_comb($out) $name $clks }
      set_input_delay -rise 0 -clock [lindex $clks 0] $port
      set_input_delay -fall 0 -clock [lindex $clks 1] -add_delay $port
      incr i
    } else {
      set clks $shared
      lappend shared_ports $port
    }
    lappend rcm_in $name $clks
  }
  if {$shared_ports != {}} {
    set_input_delay -rise 0 -clock rcm_r $shared_ports
    set_input_delay -fall 0 -clock rcm_f -add_delay $shared_ports
  }
}
# Every data input's delay after its clock edge set to `d`.
proc rcm_input_delay {d} {
  global rcm_in rcm_port
  foreach {name clks} $rcm_in {
    set_input_delay -rise $d -clock [lindex $clks 0] $rcm_port($name)
    set_input_delay -fall $d -clock [lindex $clks 1] -add_delay $rcm_port($name)
  }
}
proc rcm_dump_inputs {tag} {
  global rcm_in
  foreach {name clks} $rcm_in {
    puts "I $tag $name [rcm_req [rcm_vertex $name] $clks]"
  }
}
proc rcm_req {v clks} {
  set r [lindex $clks 0]
  set f [lindex $clks 1]
  return "[$v requireds_clk_delays rise $r rise 6] [$v requireds_clk_delays fall $f rise 6]"
}
proc rcm_arr {v clk edge} {
  return "[$v arrivals_clk_delays rise $clk $edge 6] [$v arrivals_clk_delays fall $clk $edge 6]"
}
# The boundary at the present slew and load: the inputs' required times (when
# `inputs`), the outputs' slews, their arrivals from the clock (when `clocked`) and from
# the inputs with combinational paths to them.
proc rcm_dump {tag inputs clocked} {
  global rcm_in rcm_out rcm_comb rcm_clock
  if {$inputs} {
    foreach {name clks} $rcm_in {
      puts "I $tag $name [rcm_req [rcm_vertex $name] $clks]"
    }
  }
  foreach name $rcm_out {
    set v [rcm_vertex $name]
    puts "S $tag $name [$v slews rise] [$v slews fall]"
    if {$clocked && $rcm_clock != "NULL"} {
      puts "C $tag $name [rcm_arr $v $rcm_clock rise] [rcm_arr $v $rcm_clock fall]"
    }
    foreach {in clks} $rcm_comb($name) {
      puts "X $tag $name $in [rcm_arr $v [lindex $clks 0] rise] [rcm_arr $v [lindex $clks 1] rise]"
    }
  }
}
"""


# -- reading the characterization ---------------------------------------------------------


def _value(text: str) -> float | None:
    """A number, or ``None`` for OpenSTA's infinities (no path)."""
    if text.lstrip("-").upper() == "INF":
        return None
    return float(text)


def parse_path(part: str) -> dict[str, Any] | None:
    """Startpoint, endpoint, data arrival and slack of the worst path of an OpenSTA
    ``report_checks`` text (one path per path group); ``None`` if it found no path with
    a slack."""
    path = worst_path(part)
    return path if path is not None and path["slack_ns"] is not None else None


def _with_gating(level: dict[str, Any], gating: dict[str, Any] | None) -> dict[str, Any]:
    """``level`` with its clock-gating checks, a failing gating setup check counted in
    its worst slack and critical path (the setup check is a path like any other)."""
    level = {**level, "gating": gating}
    setup = (gating or {}).get("setup")
    if setup is not None and (level["worst_slack_ns"] is None
                              or setup["slack_ns"] < level["worst_slack_ns"]):
        level["worst_slack_ns"], level["path"] = setup["slack_ns"], setup
    return level


def _section(text: str, mark: str) -> str:
    start = text.find(mark)
    if start < 0:
        return ""
    ends = [i for i in (text.find(m, start + len(mark)) for m in _MARKS) if i >= 0]
    return text[start + len(mark):min(ends) if ends else len(text)]


def parse_characterization(text: str, log: Path, period: float, slews: tuple[float, ...],
                           loads: tuple[float, ...], ref: tuple[int, int]) -> dict[str, Any]:
    """The internal timing and the boundary tables of a block from its OpenSTA log;
    :class:`ToolFailed` naming ``log`` if it cannot be read."""
    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolFailed(f"OpenSTA failed ({errors[0]}); log: {log}")
    if _MARKS[3] not in text:
        raise ToolFailed(f"OpenSTA did not reach the block's boundary; log: {log}")
    internal = _section(text, _MARKS[0])
    gating = parse_gating(internal)
    internal = internal.split(GATING_MARK, 1)[0]
    worst = re.search(r"^worst slack\s+(\S+)\s*$", internal, re.M)
    tns = re.search(rf"^tns\s+{_NUMBER}\s*$", internal, re.M)
    if not worst or not tns:
        raise ToolFailed(f"OpenSTA report of the block has no worst slack or TNS; log: {log}")
    level = _with_gating({"worst_slack_ns": _value(worst.group(1)),
                          "tns_ns": float(tns.group(1)), "path": parse_path(internal)}, gating)
    if level["worst_slack_ns"] is not None and level["path"] is None:
        raise ToolFailed(f"OpenSTA report of the block has no critical path; log: {log}")
    macro_paths = None
    if _MARKS[1] in text:
        macro_paths = {"from_macros": parse_path(_section(text, _MARKS[1])),
                       "to_macros": parse_path(_section(text, _MARKS[2]))}

    n_s, n_l = len(slews), len(loads)
    s_ref, l_ref = ref
    # run tag -> (slew index, load index)
    runs = {f"s{k}": (k, l_ref) for k in range(n_s)}
    runs.update({f"l{m}": (s_ref, m) for m in range(n_l) if m != l_ref})
    caps: dict[str, float] = {}
    inputs: dict[str, dict[str, list[float | None]]] = {}
    slew: dict[str, dict[str, list[float | None]]] = {}
    clocked: dict[str, dict[str, list[float | None]]] = {}
    comb: dict[tuple[str, str], dict[tuple[int, int], tuple[float | None, float | None]]] = {}
    try:
        for line in _section(text, _MARKS[3]).splitlines():
            f = line.split()
            if not f or f[0] not in "PISCX" or len(f[0]) != 1:
                continue
            if f[0] == "P":
                caps[f[1]] = max(float(f[2]), float(f[3])) * 1e12
                continue
            k, m = runs[f[1]]
            name = f[2]
            if f[0] == "I":
                # requireds: rise (min max), fall (min max)
                d = inputs.setdefault(name, {key: [None] * n_s for key in
                                             ("setup_rise", "setup_fall", "hold_rise",
                                              "hold_fall")})
                if m == l_ref:
                    rmin, rmax, fmin, fmax = (_value(x) for x in f[3:7])
                    d["setup_rise"][k] = None if rmax is None else period - rmax
                    d["setup_fall"][k] = None if fmax is None else period - fmax
                    d["hold_rise"][k] = rmin
                    d["hold_fall"][k] = fmin
            elif f[0] == "S":
                d = slew.setdefault(name, {"rise": [None] * n_l, "fall": [None] * n_l,
                                           "rise_s": [None] * n_s, "fall_s": [None] * n_s})
                rise, fall = float(f[4]) * 1e9, float(f[6]) * 1e9
                if k == s_ref:
                    d["rise"][m], d["fall"][m] = rise, fall
                if m == l_ref:
                    d["rise_s"][k], d["fall_s"][k] = rise, fall
            elif f[0] == "C":
                if k != s_ref:
                    continue
                d = clocked.setdefault(name, {key: [None] * n_l for key in
                                              ("rise_rise", "rise_fall", "fall_rise",
                                               "fall_fall")})
                # arrivals (min max) of the output rising and falling, from the clock's
                # rising edge (time 0) and from its falling edge (half a period)
                values = [_value(x) for x in f[3:11]]
                d["rise_rise"][m] = values[1]
                d["rise_fall"][m] = values[3]
                d["fall_rise"][m] = None if values[5] is None else values[5] - period / 2
                d["fall_fall"][m] = None if values[7] is None else values[7] - period / 2
            else:
                # arrivals (min max) of the output rising and falling, from the input
                # rising and from it falling
                v = [_value(x) for x in f[4:12]]
                comb.setdefault((name, f[3]), {})[k, m] = (v[1], v[3], v[5], v[7])
    except (KeyError, IndexError, ValueError) as exc:
        raise ToolFailed(f"cannot read the block's boundary timing ({type(exc).__name__}: "
                         f"{exc}); log: {log}") from None

    # combinational tables, per input edge and output edge (``rise_fall``: the output
    # falling after the input rose): d(s, l) = d(s, l_ref) + d(s_ref, l) - d(s_ref, l_ref)
    arcs: dict[str, dict[str, dict[str, list[list[float]]]]] = {}
    none = (None, None, None, None)
    for (out, inp), points in comb.items():
        table: dict[str, list[list[float]]] = {}
        for e, edge in enumerate(("rise_rise", "rise_fall", "fall_rise", "fall_fall")):
            base = points.get((s_ref, l_ref), none)[e]
            if base is None:
                continue
            rows = []
            for k in range(n_s):
                dk = points.get((k, l_ref), none)[e]
                row = []
                for m in range(n_l):
                    dm = points.get((s_ref, m), none)[e]
                    row.append((dk if dk is not None else base) + (
                        dm if dm is not None else base) - base)
                rows.append(row)
            table[edge] = rows
        if table:
            arcs.setdefault(out, {})[inp] = table
    return {"level": level, "macro_paths": macro_paths, "caps": caps, "inputs": inputs,
            "slews": slew, "clocked": clocked, "comb": arcs}


# -- the model liberty --------------------------------------------------------------------


def _axis(values: tuple[float, ...] | list[float]) -> str:
    return '"' + ", ".join(f"{v:.6g}" for v in values) + '"'


def _filled(values: list[float | None]) -> list[float] | None:
    """A table row with points that had no path filled from the nearest that had one;
    ``None`` if none had."""
    known = [i for i, v in enumerate(values) if v is not None]
    if not known:
        return None
    return [values[min(known, key=lambda j: abs(j - i))] for i in range(len(values))]


_THRESHOLDS = ("slew_upper_threshold_pct_rise", "slew_lower_threshold_pct_rise",
               "slew_upper_threshold_pct_fall", "slew_lower_threshold_pct_fall",
               "input_threshold_pct_rise", "input_threshold_pct_fall",
               "output_threshold_pct_rise", "output_threshold_pct_fall",
               "slew_derate_from_library", "nom_process", "nom_voltage", "nom_temperature")


def library_header(lib_text: str) -> dict[str, str]:
    """The slew thresholds, slew derating and nominal conditions of a liberty's library
    group, so that a model's slews are measured as the library's are."""
    head = lib_text[:200000]
    cell = re.search(r"^\s*cell\s*\(", head, re.M)
    head = head[:cell.start()] if cell else head
    out = {}
    for key in _THRESHOLDS:
        m = re.search(rf"^\s*{key}\s*:\s*([^;]+);", head, re.M)
        if m:
            out[key] = m.group(1).strip()
    return out


def write_model_liberty(block: Block, ports: list[Port], data: dict[str, Any],
                        slews: tuple[float, ...], loads: tuple[float, ...], clock: str,
                        header: dict[str, str], ref: tuple[int, int] = (1, 1)) -> str:
    """The liberty text of ``block``'s model (one cell, ``M_<key>``) from its
    characterization ``data`` (:func:`parse_characterization`)."""
    lines = [f"library (rcm_model_{block.key}) {{",
             "  delay_model : table_lookup;",
             '  time_unit : "1ns";',
             '  voltage_unit : "1V";',
             '  current_unit : "1mA";',
             '  pulling_resistance_unit : "1kohm";',
             '  leakage_power_unit : "1nW";',
             "  capacitive_load_unit (1, pf);",
             *(f"  {k} : {v};" for k, v in header.items()),
             "  lu_table_template (rcm_slew) {",
             "    variable_1 : constrained_pin_transition;",
             f"    index_1 ({_axis(slews)});",
             "  }",
             "  lu_table_template (rcm_load) {",
             "    variable_1 : total_output_net_capacitance;",
             f"    index_1 ({_axis(loads)});",
             "  }",
             "  lu_table_template (rcm_comb) {",
             "    variable_1 : input_net_transition;",
             "    variable_2 : total_output_net_capacitance;",
             f"    index_1 ({_axis(slews)});",
             f"    index_2 ({_axis(loads)});",
             "  }"]
    for width in sorted({(p.msb, p.lsb) for p in ports if p.msb is not None}):
        msb, lsb = width
        lines += [f"  type (rcm_bus_{msb}_{lsb}) {{",
                  "    base_type : array;", "    data_type : bit;",
                  f"    bit_width : {abs(msb - lsb) + 1};",
                  f"    bit_from : {msb};", f"    bit_to : {lsb};",
                  f"    downto : {'true' if msb >= lsb else 'false'};", "  }"]
    lines += [f"  cell ({block.cell}) {{", f"    area : {block.area:.6g};"]
    caps = data["caps"]
    for port in ports:
        indent = "    "
        if port.msb is not None:
            lines += [f'    bus ("{port.name}") {{', f"      bus_type : rcm_bus_{port.msb}_"
                      f"{port.lsb};", f"      direction : {port.direction};"]
            indent = "      "
        for bit in port.bits:
            lines.append(f'{indent}pin ("{bit}") {{')
            body = [f"direction : {port.direction};"]
            if port.direction == "input":
                body.append(f"capacitance : {caps.get(bit, 0.0):.6g};")
                if port.name == clock:
                    body.append("clock : true;")
                else:
                    body += _input_arcs(data["inputs"].get(bit), clock)
            else:
                body += _output_arcs(bit, data, clock, len(slews), ref)
            lines += [f"{indent}  {b}" for b in body]
            lines.append(f"{indent}}}")
        if port.msb is not None:
            lines.append("    }")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def _values(row: list[float]) -> str:
    return f"values ({_axis(row)});"


def _input_arcs(d: dict[str, list[float | None]] | None, clock: str) -> list[str]:
    out: list[str] = []
    if d is None:
        return out
    for kind in ("setup", "hold"):
        pair = _rise_fall(d[f"{kind}_rise"], d[f"{kind}_fall"])
        if pair is None:
            continue
        rise, fall = pair
        out += _timing_group(clock, [f"timing_type : {kind}_rising;"],
                             [("rise_constraint", "rcm_slew", _values(rise)),
                              ("fall_constraint", "rcm_slew", _values(fall))])
    return out


def _rise_fall(rise: list[float | None], fall: list[float | None]
               ) -> tuple[list[float], list[float]] | None:
    """The filled rise and fall rows of an arc, one standing in for the other when it is
    missing; None when both are."""
    r, f = _filled(rise), _filled(fall)
    if r is None and f is None:
        return None
    return r or f, f or r


def _timing_group(pin: str, attributes: list[str],
                  tables: list[tuple[str, str, str]]) -> list[str]:
    """A liberty ``timing`` group related to ``pin``: its attributes, then each table as
    (name, template, values)."""
    return ["timing () {", f'  related_pin : "{pin}";', *(f"  {a}" for a in attributes),
            *(f"  {name} ({template}) {{ {values} }}" for name, template, values in tables),
            "}"]


def _output_arcs(bit: str, data: dict[str, Any], clock: str, n_slews: int,
                 ref: tuple[int, int]) -> list[str]:
    out: list[str] = []
    slew = data["slews"].get(bit)
    if slew is None:
        return out
    s_rise, s_fall = _filled(slew["rise"]), _filled(slew["fall"])
    if s_rise is None or s_fall is None:
        return out
    clocked = data["clocked"].get(bit)
    for edge in ("rise", "fall"):
        if clocked is None:
            break
        pair = _rise_fall(clocked[f"{edge}_rise"], clocked[f"{edge}_fall"])
        if pair is None:
            continue
        rise, fall = pair
        out += _timing_group(
            clock, [f"timing_type : {'rising' if edge == 'rise' else 'falling'}_edge;"],
            [("cell_rise", "rcm_load", _values(rise)), ("cell_fall", "rcm_load", _values(fall)),
             ("rise_transition", "rcm_load", _values(s_rise)),
             ("fall_transition", "rcm_load", _values(s_fall))])
    # a combinational arc's output transition over (slew, load), built as its delay is
    tr = {}
    for edge, row in (("rise", s_rise), ("fall", s_fall)):
        by_slew = _filled(slew[f"{edge}_s"]) or [row[ref[1]]] * n_slews
        tr[edge] = [[max(1e-4, row[m] + by_slew[k] - by_slew[ref[0]]) for m in range(len(row))]
                    for k in range(n_slews)]
    # an input's rising and falling transitions reach the output through different
    # paths: a positive-unate arc for those that keep their direction, a negative-unate
    # one for those that invert it
    for inp, table in sorted(data["comb"].get(bit, {}).items()):
        for sense, rise, fall in (("positive_unate", "rise_rise", "fall_fall"),
                                  ("negative_unate", "fall_rise", "rise_fall")):
            if rise not in table and fall not in table:
                continue
            tables = []
            for key, edge in ((rise, "rise"), (fall, "fall")):
                if key in table:
                    tables += [(f"cell_{edge}", "rcm_comb", _table_values(table[key])),
                               (f"{edge}_transition", "rcm_comb", _table_values(tr[edge]))]
            out += _timing_group(inp, [f"timing_sense : {sense};",
                                       "timing_type : combinational;"], tables)
    return out


def _table_values(rows: list[list[float]]) -> str:
    return "values (" + ", ".join(_axis(r) for r in rows) + ");"


# -- running ------------------------------------------------------------------------------


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()
                          ).hexdigest()[:24]


def run_sta(sta_exe: str, script: Path, log: Path, timeout: float = 3600) -> str:
    """Run an OpenSTA script; its output (kept in ``log``), or :class:`ToolFailed`."""
    try:
        proc = subprocess.run([sta_exe, "-no_init", "-exit", str(script)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"OpenSTA did not finish within {timeout:.0f} s; log: {log}") from None
    text = proc.stdout + proc.stderr
    log.write_text(text)
    if proc.returncode != 0:
        raise ToolFailed(f"OpenSTA failed (exit status {proc.returncode}); log: {log}")
    return text


def characterize(blocks: dict[str, Block], lib: Liberty, sta_exe: str, cache: Path,
                 settings: dict[str, Any], clock: str, period: float,
                 slews: tuple[float, ...], loads: tuple[float, ...],
                 workers: int | None = None,
                 gating_cells: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """A timing model of every block, children before parents, ``workers`` at a time,
    each taken from ``cache`` when an earlier run made it with the same netlist, child
    models and ``settings``.

    Returns, per key: ``liberty`` (path of the model), ``level`` (the block's internal
    worst slack, TNS and critical path), ``macro_paths``, ``log``, ``cached``,
    ``wall_s``.

    Raises
    ------
    ToolFailed
        OpenSTA failed on a block or its report cannot be read (the message names the
        log).
    """
    ref = (1, 1)
    header = library_header(lib.path.read_text(errors="replace"))
    latch_cells = sorted(c.name for c in lib.cells.values()
                         if any(q.kind == "latch" for q in c.sequential))
    latch_use = re.compile(r"^\s*(?:" + "|".join(map(re.escape, latch_cells)) + r")\s",
                           re.M) if latch_cells else None

    def has_latches(netlist: str) -> bool:
        return latch_use is not None and latch_use.search(netlist) is not None

    done: dict[str, dict[str, Any]] = {}
    digests: dict[str, str] = {}
    pending = dict(blocks)
    workers = workers or max(1, os.cpu_count() or 1)

    def run(block: Block, digest: str) -> dict[str, Any]:
        folder = cache / digest
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}.{id(block)}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        started = time.perf_counter()
        netlist = tmp / "netlist.v"
        netlist.write_text(block.netlist)
        ports = model_ports(block.netlist)
        script = tmp / "sta.tcl"
        script.write_text(block_script(
            block, lib.path, sorted({p for _, p in block.macros}),
            [Path(done[c]["liberty"]) for c in block.children], netlist, ports, clock,
            period, slews, loads, ref, gating_cells, has_latches(block.netlist)))
        # a failed run's folder is kept where its log is named
        log = tmp / "sta.log"
        text = run_sta(sta_exe, script, log)
        data = parse_characterization(text, log, period, slews, loads, ref)
        (tmp / "model.lib").write_text(write_model_liberty(block, ports, data, slews, loads,
                                                           clock, header, ref))
        wall = time.perf_counter() - started
        (tmp / "model.json").write_text(json.dumps(
            {"level": data["level"], "macro_paths": data["macro_paths"], "wall_s": wall},
            indent=1))
        for name in ("sta.tcl", "sta.log"):
            path = tmp / name
            path.write_text(path.read_text().replace(str(tmp.resolve()), str(folder.resolve())))
        try:
            tmp.rename(folder)
        except OSError:  # another run made the same model first
            shutil.rmtree(tmp, ignore_errors=True)
        return _load(folder, cached=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        while pending:
            ready = [b for b in pending.values() if all(c in done for c in b.children)]
            if not ready:
                raise ValueError("block hierarchy has a cycle through "
                                 f"{sorted(pending)[0]!r}")
            futures = {}
            for block in sorted(ready, key=lambda b: -len(b.netlist)):
                del pending[block.key]
                digests[block.key] = _digest(
                    MODEL_FLOW_VERSION, block.key, hashlib.sha256(
                        block.netlist.encode()).hexdigest(),
                    [digests[c] for c in block.children],
                    [hashlib.sha256(p.read_bytes()).hexdigest() for _, p in block.macros],
                    settings, clock, period, slews, loads, gating_cells,
                    *(["latch inputs read at a period"] if has_latches(block.netlist)
                      else []))
                folder = cache / digests[block.key]
                if (folder / "model.json").exists():
                    done[block.key] = _load(folder, cached=True)
                else:
                    futures[pool.submit(run, block, digests[block.key])] = block.key
            for future in concurrent.futures.as_completed(futures):
                done[futures[future]] = future.result()
    return done


def _load(folder: Path, cached: bool) -> dict[str, Any]:
    info = json.loads((folder / "model.json").read_text())
    return {"liberty": folder / "model.lib", "level": info["level"],
            "macro_paths": info["macro_paths"], "log": folder / "sta.log", "cached": cached,
            "wall_s": info.get("wall_s")}


def worse(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """The path with the smaller slack (either may be ``None``)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a["slack_ns"] <= b["slack_ns"] else b


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _instance_prefix(name: str, top: str) -> str:
    """The instance path (``drain/ppu/``) of a module named after its first instance
    (``rcm_tile.drain.ppu``) under ``top``."""
    if name == top or not name.startswith(top + "."):
        return ""
    return name[len(top) + 1:].replace(".", "/") + "/"


def _prefixed(path: dict[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    if path is None or not prefix:
        return path
    return {**path, "startpoint": prefix + path["startpoint"],
            "endpoint": prefix + path["endpoint"]}


#: A module is timed as part of its parent (its netlist read with the parent's) unless
#: it has at least this many cells per boundary bit, or is instantiated more than once
#: and has at least as many cells as boundary bits: the model of a module that is
#: mostly wiring (a buffer's glue, a wide multiplexer) is as large as its netlist and
#: slower to make than to time.  A module that holds memory macros (itself or below) is
#: always timed with its parent, so that the paths into and out of every macro are
#: reported from the top.
MODEL_CELLS_PER_PIN = 8


def plan(parts: dict[str, Any], clock: str) -> tuple[set[str], dict[str, list[str]]]:
    """Which distinct modules of a composed design (``parts`` of
    :func:`rcm_gen.flows.asic._hier`) get a timing model (see
    :data:`MODEL_CELLS_PER_PIN`), and for the top and each of those, the modules whose
    netlists are read with its own (itself first, then the modules it holds that get no
    model, recursively)."""
    top = parts["top"]
    counts = parts["counts"]
    holds_macros: dict[str, bool] = {}

    def macros_below(key: str) -> bool:
        if key not in holds_macros:
            holds_macros[key] = bool(parts["macros"][key]) or any(
                macros_below(c) for c in parts["children"][key])
        return holds_macros[key]

    modelled = set()
    for key, names in parts["names"].items():
        if key == top or macros_below(key):
            continue
        instances = sum(counts[n] for n in names)
        pins = sum(len(p.bits) for p in model_ports(parts["netlists"][f"M_{key}"])
                   if p.name != clock)
        cells = parts["cells"][key]
        if cells >= MODEL_CELLS_PER_PIN * max(1, pins) or (instances > 1 and cells >= pins):
            modelled.add(key)
    reads: dict[str, list[str]] = {}
    for key in [top, *sorted(modelled)]:
        order = [key]
        for k in order:
            order += [c for c in parts["children"][k] if c not in modelled and c not in order]
        reads[key] = order
    return modelled, reads


def time_with_models(parts: dict[str, Any], top: str, lib: Liberty, cons: dict[str, Any],
                     driving_cell: str | None, buffer: str | None,
                     macro_liberties: tuple[Path, ...], sta_exe: str, out_dir: Path,
                     clock: str, cache: Path, settings: dict[str, Any],
                     gating_cells: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Time a composed design (``parts`` of :func:`rcm_gen.flows.asic._hier`) with a
    model of the modules below ``top`` that :func:`plan` chooses; the worst path over all
    levels.

    Returns ``worst_slack``, ``tns``, ``startpoint``, ``endpoint``, ``arrival``,
    ``level`` (the modelled module whose own paths hold the critical path, or ``top``),
    ``levels`` (per modelled module and the top: instances, worst slack, TNS, critical
    path), ``macro_paths``, ``models`` (how many were characterized and taken from the
    cache, and the characterization's wall time), ``sta_log`` and ``top_wall_s``.
    """

    period = float(cons["clock_ns"])
    slews, loads = characterization_points(lib, buffer, float(cons["input_transition_ns"]))
    top_key = parts["top"]
    names = parts["names"]
    netlists = {k[2:]: _plain(t) for k, t in parts["netlists"].items()}
    modelled, reads = plan(parts, clock)

    def cells_below(key: str) -> tuple[str, ...]:
        return tuple(sorted({c for k in reads[key] for c in parts["children"][k]
                             if c in modelled}))

    blocks = {key: Block(key, names[key][0], "".join(netlists[k] for k in reads[key]),
                         cells_below(key), parts["areas"][key],
                         tuple(m for k in reads[key] for m in parts["macros"][k]))
              for key in modelled}
    started = time.perf_counter()
    models = characterize(blocks, lib, sta_exe, cache, settings, clock, period, slews, loads,
                          gating_cells=gating_cells)
    char_wall = time.perf_counter() - started

    # the top: its own cells and one model cell per submodule instance
    top_text = re.sub(rf"^module M_{top_key}\b", f"module {top}", netlists[top_key], count=1,
                      flags=re.M)
    netlist = out_dir / "top_models.v"
    netlist.write_text(top_text + "".join(netlists[k] for k in reads[top_key][1:]))
    used = [models[c]["liberty"] for c in cells_below(top_key)]
    top_macros = tuple(m for k in reads[top_key] for m in parts["macros"][k])
    script = sta_script(cons, lib, netlist.resolve(), top, driving_cell, macro_liberties,
                         tuple(sorted({n for n, _ in top_macros})), clock, tuple(used),
                         gating_cells)
    # model libraries of grandchildren are not needed: each model cell stands alone
    tcl = out_dir / "sta.tcl"
    tcl.write_text(script)
    log = out_dir / "sta.log"
    started = time.perf_counter()
    text = run_sta(sta_exe, tcl, log)
    top_wall = time.perf_counter() - started
    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolFailed(f"OpenSTA failed ({errors[0]}); log: {log}")
    worst = re.search(r"^worst slack\s+(\S+)\s*$", text, re.M)
    tns = re.search(rf"^tns\s+{_NUMBER}\s*$", text, re.M)
    if not worst or not tns:
        raise ToolFailed(f"OpenSTA report has no worst slack or TNS; log: {log}")
    head = text.split("rcm_gen: worst path", 1)[0].split(GATING_MARK, 1)[0]
    top_level = _with_gating({"worst_slack_ns": _value(worst.group(1)),
                              "path": parse_path(head)}, parse_gating(text))
    top_path, top_slack = top_level["path"], top_level["worst_slack_ns"]
    if top_slack is not None and top_path is None:
        raise ToolFailed(f"OpenSTA report has no critical path; log: {log}")

    # instances of each distinct module
    counts = parts["counts"]
    levels = [{"level": top, "instances": 1, "worst_slack_ns": top_slack,
               "tns_ns": float(tns.group(1)), "critical_path": top_path,
               "gating": top_level["gating"], "log": str(log)}]
    macro_paths: dict[str, Any] = {"from_macros": None, "to_macros": None}

    top_macro_paths = parse_macro_paths(text, log)
    if top_macro_paths:
        for k in macro_paths:
            macro_paths[k] = worse(macro_paths[k], top_macro_paths[k])
    for key, model in sorted(models.items(), key=lambda kv: names[kv[0]][0]):
        name = names[key][0]
        prefix = _instance_prefix(name, top)
        level = model["level"]
        levels.append({"level": name, "instances": sum(counts[n] for n in names[key]),
                       "worst_slack_ns": level["worst_slack_ns"], "tns_ns": level["tns_ns"],
                       "critical_path": _prefixed(level["path"], prefix),
                       "gating": {k: _prefixed(v, prefix)
                                  for k, v in level["gating"].items()}
                       if level.get("gating") else None,
                       "log": str(model["log"])})
        for k in macro_paths:
            found = (model["macro_paths"] or {}).get(k)
            macro_paths[k] = worse(macro_paths[k], _prefixed(found, prefix))
    timed = [lv for lv in levels if lv["worst_slack_ns"] is not None]
    if not timed:
        raise ToolFailed(f"OpenSTA found no timed path in {top}; log: {log}")
    critical = min(timed, key=lambda lv: lv["worst_slack_ns"])
    path = critical["critical_path"]
    gating = None
    if gating_cells is not None:
        gating = {"setup": None, "hold": None}
        for lv in levels:
            for k in gating:
                gating[k] = worse(gating[k], (lv.get("gating") or {}).get(k))
    return {"worst_slack": critical["worst_slack_ns"], "gating": gating,
            "tns": sum(lv["tns_ns"] * lv["instances"] for lv in levels),
            "startpoint": path["startpoint"], "endpoint": path["endpoint"],
            "arrival": path["arrival_ns"], "level": critical["level"], "levels": levels,
            "macro_paths": macro_paths if any(macro_paths.values()) else None,
            "models": {"characterized": sum(1 for m in models.values() if not m["cached"]),
                       "cached": sum(1 for m in models.values() if m["cached"]),
                       "wall_s": char_wall, "slews_ns": list(slews), "loads_pf": list(loads)},
            "sta_log": log, "netlist": netlist, "top_wall_s": top_wall}


def _plain(text: str) -> str:
    """A netlist without ``signed`` declarations, which OpenSTA's reader rejects (a
    gate-level netlist has no arithmetic, so they carry no meaning there)."""
    return re.sub(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", r"\1", text, flags=re.M)


def model_instances(netlist: str, top: str) -> list[tuple[str, str]]:
    """(model cell, instance path) of every model cell instance in a netlist the top is
    timed with (the top and the modules read with it)."""
    bodies = {m.group(1): m.group(2) for m in re.finditer(
        r"^module (\S+)\s*\((.*?)^endmodule", netlist, re.M | re.S)}
    out: list[tuple[str, str]] = []

    def walk(module: str, prefix: str) -> None:
        for cell, inst in re.findall(r"^  (M_[0-9a-f]{20})\s+(\S+)\s*\(", bodies[module],
                                     re.M):
            if cell in bodies:
                walk(cell, prefix + inst + "/")
            else:
                out.append((cell, prefix + inst))

    walk(top, "")
    return out


def boundary_slacks(report: dict[str, Any], full: bool, sta_exe: str = "sta"
                    ) -> dict[tuple[str, str], float | None]:
    """The worst slack of the paths through the input pins, and through the output pins,
    of every model instance of a run with models (``report``), timed with the models
    (``full`` false) or on the whole composed netlist (``full`` true): what validates the
    models.  Keys are (instance path, ``input`` or ``output``); ``None`` where no path
    goes through."""
    run = Path(report["sta_log"]).parent
    tcl = (run / "sta.tcl").read_text()
    top = report["top"]
    header = tcl.split("report_checks", 1)[0]
    models_netlist = run / "top_models.v"
    libs = dict(re.findall(r"^read_liberty -no_latch_infer (\S+/([0-9a-f]+)/model\.lib)$",
                           header, re.M))
    cell_dir = {}
    for lib_path in libs:
        m = re.search(r"^\s*cell \((M_[0-9a-f]{20})\)", Path(lib_path).read_text(), re.M)
        if m:
            cell_dir[m.group(1)] = Path(lib_path).parent
    if full:
        plain = run / "netlist_sta.v"
        plain.write_text(_plain(Path(report["netlist"]).read_text()))
        header = re.sub(r"^read_liberty -no_latch_infer \S+\n", "", header, flags=re.M)
        header = header.replace(str(models_netlist.resolve()), str(plain.resolve()))
    lines = [header]
    keys = []
    for cell, inst in model_instances(models_netlist.read_text(), top):
        ports = model_ports((cell_dir[cell] / "netlist.v").read_text())
        for direction in ("input", "output"):
            bits = [b for p in ports if p.direction == direction and p.name != "clk"
                    for b in p.bits]
            if not bits:
                continue
            pins = " ".join("{" + f"{inst}/{b}" + "}" for b in bits)
            keys.append((inst, direction))
            lines += [f"set rcm_ends [find_timing_paths -through [get_pins [list {pins}]] "
                      "-path_delay max]",
                      f'puts "rcm_slack {len(keys) - 1} [expr {{[llength $rcm_ends] ? '
                      f'[get_property [lindex $rcm_ends 0] slack] : "none"}}]"']
    script = run / f"boundary_{'full' if full else 'models'}.tcl"
    script.write_text("\n".join(lines) + "\n")
    text = run_sta(sta_exe, script, script.with_suffix(".log"))
    found = {int(i): None if v == "none" else float(v)
             for i, v in re.findall(r"^rcm_slack (\d+) (\S+)$", text, re.M)}
    if len(found) != len(keys):
        raise ToolFailed(f"OpenSTA reported {len(found)} of {len(keys)} boundary slacks; "
                         f"log: {script.with_suffix('.log')}")
    return {key: found[i] for i, key in enumerate(keys)}
