"""An independent figure for rcm_gen's energy model: the same per-net activity put into
OpenSTA's ``report_power``, and the two compared.

How the activity gets into Debian's OpenSTA (2.0.17, upstream git c018cb2 of November
2019, ``search/Power.cc`` and ``tcl/Power.tcl``), and why it takes a detour:

- ``set_power_activity -pins`` does not work there: its Tcl procedure calls
  ``get_pins_error``, which that build does not define ("invalid command name"), and then
  loops over an undefined variable.  The command underneath, ``sta::set_power_pin_activity
  PIN ACTIVITY DUTY``, works, one pin at a time (a Tcl loop over each group of pins of
  equal activity keeps the script small).
- Before reporting, that OpenSTA *propagates* activities from the design's roots (input
  ports, and pins with no driver such as those tied to constants) through every cell's
  function and overwrites what was set on every pin it reaches: a per-pin activity
  survives only outside the input ports' fan-out cone (a MAC's multiplier is inside it).
  Clock-to-output arcs of flip-flops stop the propagation.  So OpenSTA reads a flat copy
  of the netlist (:func:`opensta_verilog`, rcm_gen's flattening, instances ``u<i>`` and
  nets ``n<k>``) in which every input port but the clock, and each constant, is the
  output of a flip-flop of the library that holds its value (its D is its Q): nothing
  is left to propagate from, every pin keeps the activity it is given, and those
  flip-flops' own power is subtracted (``report_power -instances``) from the totals.
  Input-port nets keep the input slew of the constraints (``set_assigned_transition``).
- Activity is rcm_gen's count of rises and falls of the pin's net per clock cycle
  (OpenSTA's unit: transitions per clock period); the clock's activity OpenSTA fixes
  at 2 per period itself, as rcm_gen counts it.  OpenSTA propagates the clock through
  clock-gating cells, so it fixes a gated clock at 2 per period too, open or closed: on
  the clock network (:attr:`~rcm_gen.power.energy.EnergyModel.clock_nets`, gated clocks
  included) the figures compared take that activity on both sides (rcm_gen's own
  internal and total figures keep the simulated one).  Duty (the fraction of time a net is 1)
  is not something toggle counts give: every pin gets 0.5.
- Wire capacitance: rcm_gen's own per-net figure (``wire_cap_per_fanout`` times the
  fanout on a library without a wire-load model) as ``set_load`` on each net; a library
  with a default wire-load model (SkyWater 130) has it applied by both tools.

How the two differ by construction, and what is compared:

- **Switching**: both ``1/2 C V²`` per transition of each net driven by a cell (OpenSTA
  does not count nets driven by ports: here those are the input flip-flops', subtracted).
  Compared directly.
- **Leakage**: both the cells' ``cell_leakage_power``.  Compared directly.
- **Internal**: rcm_gen charges each transition its own table energy (``rise_power`` for
  a rise, ``fall_power`` for a fall), sharing an output's transitions among its inputs in
  proportion to their toggles.  This OpenSTA charges every transition of a pin the *sum*
  of an arc's rise and fall energies, weighted by a duty: for an output arc, the
  probability that the related input is what switches the output (its ``when`` inferred
  from the cell's function, e.g. ``B`` for input ``A`` of ``A&B``: activity of ``A`` /
  activity of the output times the inferred condition's probability), 1 for a clock
  arc, 0.5 otherwise.  (Later OpenSTA averages the rise and fall energies instead.)  Its
  internal figure is therefore 2 to 3 times rcm_gen's, by a factor that depends on the
  activities, not a constant.  :func:`opensta_rule_internal` rebuilds that rule from
  rcm_gen's own table lookups (loads, slews, energies) and the same activities; that
  figure is compared with OpenSTA's, and totals are compared with the rule rebuilt.
  rcm_gen's own internal energy is reported beside it.

The energy model compared is the netlist's as it is (:func:`netlist_model`: no clock tree
estimated beyond its cells, which OpenSTA would not see either).  Netlists with memory
macros are not compared (rcm_gen charges a macro per access, OpenSTA per pin transition).

Tolerances (:data:`TOLERANCES`): switching 1 % (same capacitances and ``½CV²``; OpenSTA
keeps floats), leakage 0.1 %, internal (rule rebuilt) 3 %: OpenSTA looks each table up
at the rise or the fall slew of the related pin from its own delay calculation (and the
2019 code takes the output's edge for the input's), rcm_gen at the mean of the two from
its slew propagation; the total, dominated by those, 3 %.  Debian's OpenSTA reports no
internal power for SkyWater 130 (it looks a cell's supply voltage up through its
``pg_pin`` names and finds none): there only switching and leakage compare.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolFailed, UserError
from ..flows.liberty import Cell, Liberty
from ..flows.netlist import CONST0, CONST1, FlatNetlist
from ..tools import require_executable, tool_versions

__all__ = ["RISE_FALL_CAP_SWITCHING", "TOLERANCES", "OpenStaPower", "RunActivity",
           "compare_with_opensta", "format_comparison", "mac_activity", "netlist_model",
           "opensta_power", "opensta_rule_internal", "opensta_verilog", "source_flip_flop",
           "tile_activity"]

#: Relative tolerances of :func:`compare_with_opensta` (see the module documentation).
TOLERANCES = {"switching": 0.01, "leakage": 0.001, "internal_rule": 0.03, "total_rule": 0.03}

#: The switching tolerance on a liberty whose pins give ``rise_capacitance`` and
#: ``fall_capacitance`` (SkyWater 130): OpenSTA loads a net with the larger of the two,
#: rcm_gen with the pin's ``capacitance``, about their mean (3.4 % less switching on
#: ``mac16``, 3 % on ``mac8``).
RISE_FALL_CAP_SWITCHING = 0.05

_MODULE = "rcm_sta_power"


# -- the netlist OpenSTA reads ------------------------------------------------------------


def source_flip_flop(lib: Liberty) -> tuple[str, str, str, str]:
    """(cell, clock pin, data pin, output pin) of the smallest plain flip-flop of ``lib``
    (one ``ff`` group, no clear or preset, two inputs, an output equal to its state)."""
    best = None
    for cell in lib.cells.values():
        if len(cell.sequential) != 1 or len(cell.inputs) != 2:
            continue
        seq = cell.sequential[0]
        if seq.kind != "ff" or seq.clear or seq.preset:
            continue
        clock = seq.clock.strip().strip('"')
        data = seq.data.strip().strip('"')
        if clock not in cell.inputs or data not in cell.inputs:
            continue
        outs = [p for p, f in cell.outputs.items() if f.strip().strip('"()') == seq.state]
        if outs and (best is None or cell.area < best[0].area):
            best = (cell, clock, data, outs[0])
    if best is None:
        raise UserError(f"liberty {lib.name!r} has no plain flip-flop (one ff group, a clock "
                        "and a data input, no clear or preset) to drive the input ports in "
                        "OpenSTA's power run")
    return best[0].name, best[1], best[2], best[3]


def opensta_verilog(netlist: FlatNetlist, lib: Liberty, clock: str, *,
                    hold_inputs: bool = True) -> tuple[str, list[str]]:
    """The flat netlist as OpenSTA reads it for power (see the module documentation):
    module ``rcm_sta_power`` whose ports are the clock and the output nets, instances
    ``u<i>``, nets ``n<k>``, and a flip-flop ``src<k>`` driving each input-port net and
    each constant (its data input left open, so that it loads nothing); with the names of
    those flip-flops.  ``hold_inputs=False`` keeps the input ports as ports and the
    constants as constants instead: what OpenSTA's propagation then overwrites is what the
    flip-flops are there to prevent."""
    ff, ck, d, q = source_flip_flop(lib)
    if clock not in netlist.ports:
        raise UserError(f"clock {clock!r} is not a port of {netlist.top!r}")
    clk = netlist.ports[clock][1][0]
    inputs = sorted({k for p, (di, bits) in netlist.ports.items() if di == "input"
                     and p != clock for k in bits if k > CONST1})
    outputs = sorted({k for p, (di, bits) in netlist.ports.items() if di != "input"
                      for k in bits})
    used = {k for inst in netlist.instances for k in inst.pins.values()} | set(outputs)
    consts = [k for k in (CONST0, CONST1) if k in used]
    free = inputs if not hold_inputs else []
    ports = [f"n{clk}"] + [f"n{k}" for k in free] + [f"n{k}" for k in outputs
                                                      if k != clk and k not in free]
    lines = [f"module {_MODULE} ({', '.join(ports)});", f"  input n{clk};"]
    lines += [f"  input n{k};" for k in free]
    lines += [f"  output n{k};" for k in outputs if k != clk and k not in free]
    nets = sorted(used | set(inputs) | {clk})
    if not hold_inputs:
        nets = [k for k in nets if k > CONST1]
    for start in range(0, len(nets), 64):
        lines.append("  wire " + ", ".join(f"n{k}" for k in nets[start:start + 64]) + ";")
    sources = []
    if hold_inputs:
        for k in [*inputs, *consts]:
            sources.append(f"src{k}")
            lines.append(f"  {ff} src{k} (.{ck}(n{clk}), .{d}(), .{q}(n{k}));")

    def net(k: int) -> str:
        return f"1'b{k}" if k <= CONST1 and not hold_inputs else f"n{k}"

    for i, inst in enumerate(netlist.instances):
        conns = ", ".join(f".{p}({net(k)})" for p, k in sorted(inst.pins.items()))
        lines.append(f"  {inst.cell} u{i} ({conns});")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", sources


# -- OpenSTA's run ------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenStaPower:
    """``report_power`` of the design (its own cells), in W: the totals less the holding
    flip-flops', and those flip-flops' own (``sources``: the input nets' switching is
    theirs)."""

    internal: float
    switching: float
    leakage: float
    sources: dict[str, float]
    log: Path

    @property
    def total(self) -> float:
        return self.internal + self.switching + self.leakage


def _fmt(x: float) -> str:
    return f"{x:.9g}"


def opensta_power(netlist: FlatNetlist, lib: Liberty, model: Any, rises: np.ndarray,
                  falls: np.ndarray, cycles: int, clock_ns: float, clock: str,
                  constraints: dict[str, Any], out_dir: str | Path, *,
                  hold_inputs: bool = True) -> OpenStaPower:
    """OpenSTA's ``report_power`` of ``netlist`` with every pin at the activity of its net
    in a window of ``cycles`` cycles in which net ``k`` rose ``rises[k]`` and fell
    ``falls[k]`` times (see the module documentation); ``model`` is the
    :class:`~rcm_gen.power.energy.EnergyModel` of the same netlist, whose wire
    capacitances OpenSTA is given.  The script, netlist and log stay in ``out_dir``.
    ``hold_inputs=False`` reads the netlist with its input ports as ports (each given its
    net's activity) and shows what OpenSTA's propagation makes of the activity given to
    the pins it reaches (:func:`opensta_verilog`).

    Raises
    ------
    ToolFailed
        OpenSTA failed, did not find a pin or net it was given, or its report cannot be
        read (the message names the log).
    """
    if netlist.macros:
        raise UserError(f"OpenSTA's power comparison covers standard-cell netlists; "
                        f"{netlist.top} has {len(netlist.macros)} memory macros (their "
                        "energy is charged per access, which OpenSTA does not model)")
    if cycles < 1:
        raise ValueError(f"Cycles must be at least 1, not {cycles!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    verilog, sources = opensta_verilog(netlist, lib, clock, hold_inputs=hold_inputs)
    (out / "netlist.v").write_text(verilog)
    _, _, _, q = source_flip_flop(lib)
    activity = (np.asarray(rises, dtype=float) + np.asarray(falls, dtype=float)) / cycles
    clock_nets = set(netlist.ports[clock][1]) | set(model.clock_nets)
    groups: dict[str, list[str]] = defaultdict(list)
    for i, inst in enumerate(netlist.instances):
        for pin, k in sorted(inst.pins.items()):
            if k in clock_nets:
                continue  # OpenSTA: 2 per period on a clock network, whatever is set
            groups[_fmt(activity[k] if k > CONST1 else 0.0)].append(f"u{i}/{pin}")
    for name in sources:
        k = int(name[3:])
        groups[_fmt(activity[k] if k > CONST1 else 0.0)].append(f"{name}/{q}")
    wires: dict[str, list[str]] = defaultdict(list)
    if model.wire_model is None:  # else the liberty's wire-load model, in both tools
        for k in range(CONST1 + 1, netlist.net_count):
            if model.wire_cap[k] > 0:
                wires[_fmt(model.wire_cap[k])].append(f"n{k}")
    outputs = defaultdict(int)
    for d, bits in netlist.ports.values():
        if d != "input":
            for k in bits:
                outputs[k] += 1
    t_in = float(constraints["input_transition_ns"])
    lines = [
        f"read_liberty {lib.path}",
        f"read_verilog {(out / 'netlist.v').resolve()}",
        f"link_design {_MODULE}",
        f"create_clock -name clk -period {clock_ns} [get_ports n{netlist.ports[clock][1][0]}]",
        f"set_input_transition {t_in} [get_ports n{netlist.ports[clock][1][0]}]",
        "proc rcm_activity {a pins} {",
        "  set n 0",
        "  foreach p [get_pins $pins] { sta::set_power_pin_activity $p $a 0.5; incr n }",
        "  if {$n != [llength $pins]} { puts \"Error: rcm_gen: [llength $pins] pins given, "
        "$n found\" }",
        "}",
        "proc rcm_wire {c nets} {",
        "  set found [get_nets $nets]",
        "  if {[llength $found] != [llength $nets]} { puts \"Error: rcm_gen: [llength $nets] "
        "nets given, [llength $found] found\" }",
        "  set_load $c $found",
        "}",
    ]
    if sources:
        held = " ".join(f"{s}/{q}" for s in sources)
        lines.append(f"set_assigned_transition {t_in} [get_pins {{{held}}}]")
    for n, count in sorted(outputs.items()):
        if n not in clock_nets:
            lines.append(f"set_load {_fmt(count * float(constraints['output_load']))} "
                         f"[get_ports n{n}]")
    for c, nets in sorted(wires.items()):
        lines.append(f"rcm_wire {c} {{{' '.join(nets)}}}")
    for a, pins in sorted(groups.items()):
        lines.append(f"rcm_activity {a} {{{' '.join(pins)}}}")
    if not hold_inputs:
        for p, (d, bits) in netlist.ports.items():
            if d == "input" and p != clock:
                for k in bits:
                    if k > CONST1:
                        lines.append(f"sta::set_power_input_port_activity [get_ports n{k}] "
                                     f"{_fmt(activity[k])} 0.5")
    lines += ['puts "rcm_gen: design"', "report_power -digits 10"]
    if sources:
        lines += ['puts "rcm_gen: sources"',
                  f"report_power -digits 10 -instances [get_cells {{{' '.join(sources)}}}]"]
    tcl = out / "power.tcl"
    tcl.write_text("\n".join(lines) + "\n")
    log = out / "power.log"
    try:
        proc = subprocess.run([require_executable("sta"), "-no_init", "-exit", str(tcl)],
                              capture_output=True, text=True, timeout=7200)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"OpenSTA did not report power within two hours; log: {log}") from None
    text = proc.stdout + proc.stderr
    log.write_text(text)
    # the pins and nets given are counted (rcm_activity, rcm_wire: "Error: rcm_gen: ...")
    bad = [ln for ln in text.splitlines() if ln.startswith("Error")
           or re.search(r"\b(pin|net|port|instance) '[^']*' not found", ln)]
    if proc.returncode != 0 or bad:
        raise ToolFailed(f"OpenSTA's power run failed ({bad[0] if bad else proc.returncode}); "
                         f"log: {log}")
    number = r"([-+0-9.eE]+)"
    design = text.split("rcm_gen: design", 1)[-1].split("rcm_gen: sources", 1)[0]
    m = re.search(rf"^Total\s+{number}\s+{number}\s+{number}\s+{number}", design, re.M)
    if m is None:
        raise ToolFailed(f"OpenSTA's power report has no Total line; log: {log}")
    internal, switching, leakage = (float(m.group(i)) for i in (1, 2, 3))
    src = {"internal": 0.0, "switching": 0.0, "leakage": 0.0}
    if sources:
        part = text.split("rcm_gen: sources", 1)[-1]
        rows = re.findall(rf"^\s*{number}\s+{number}\s+{number}\s+{number}\s+src\d+\s*$",
                          part, re.M)
        if len(rows) != len(sources):
            raise ToolFailed(f"OpenSTA's power report has {len(rows)} rows for the "
                             f"{len(sources)} input flip-flops; log: {log}")
        for row in rows:
            for key, v in zip(("internal", "switching", "leakage"), row[:3], strict=True):
                src[key] += float(v)
    return OpenStaPower(internal - src["internal"], switching - src["switching"],
                        leakage - src["leakage"], src, log)


# -- OpenSTA 2019's internal-power rule from rcm_gen's lookups -------------------------------


class _Expr:
    """A liberty function as OpenSTA parses it (binary, left-associative; ``!`` and ``'``
    bind tightest, then ``^``, then ``*``/``&`` and juxtaposition, then ``+``/``|``)."""

    def __init__(self, op: str, left: Any = None, right: Any = None) -> None:
        self.op, self.left, self.right = op, left, right


def _parse_function(text: str) -> _Expr:
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_\[\]]*|[01]|[!'*&+|^()]", text.strip('"'))
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def terminal() -> _Expr:
        t = take()
        if t == "(":
            e = expr()
            if take() != ")":
                raise ValueError(f"Liberty function must close its parentheses, not {text!r}")
            return e
        if t in ("0", "1"):
            return _Expr("one" if t == "1" else "zero")
        return _Expr("port", t)

    def unary() -> _Expr:
        if peek() == "!":
            take()
            return _Expr("not", terminal())
        e = terminal()
        while peek() == "'":
            take()
            e = _Expr("not", e)
        return e

    def starts_terminal(t: str | None) -> bool:
        return t is not None and (t in ("(", "!", "0", "1") or re.match(r"[A-Za-z_]", t)
                                  is not None)

    def implicit() -> _Expr:
        e = unary()
        while starts_terminal(peek()):
            e = _Expr("and", e, unary())
        return e

    def xor() -> _Expr:
        e = implicit()
        while peek() == "^":
            take()
            e = _Expr("xor", e, implicit())
        return e

    def and_() -> _Expr:
        e = xor()
        while peek() in ("*", "&"):
            take()
            e = _Expr("and", e, xor())
        return e

    def expr() -> _Expr:
        e = and_()
        while peek() in ("+", "|"):
            take()
            e = _Expr("or", e, and_())
        return e

    e = expr()
    if pos != len(tokens):
        raise ValueError(f"Liberty function must be one expression, not {text!r}")
    return e


def _is_port_ref(e: _Expr, port: str) -> bool:
    return (e.op == "port" and e.left == port) or (
        e.op == "not" and e.left.op == "port" and e.left.left == port)


def _negate(e: _Expr) -> _Expr:
    return e.left if e.op == "not" else _Expr("not", e)


def _infered_when(e: _Expr, port: str) -> _Expr | None:
    """OpenSTA 2019's ``Power::inferedWhen``: the condition under which ``port`` alone
    switches the function, where its form makes that plain."""
    if e.op == "port":
        return _Expr("one") if e.left == port else None
    if e.op == "not":
        return _infered_when(e.left, port)
    if e.op in ("or", "xor"):
        if _is_port_ref(e.left, port):
            return _negate(e.right)
        if _is_port_ref(e.right, port):
            return _negate(e.left)
        return None
    if e.op == "and":
        if _is_port_ref(e.left, port):
            return e.right
        if _is_port_ref(e.right, port):
            return e.left
    return None


def _duty(e: _Expr, pins: set[str], duty: float = 0.5) -> float:
    """OpenSTA's probability that ``e`` is 1 when each of the instance's ``pins`` is 1 with
    probability ``duty`` (anything else, such as a flip-flop's state, 0)."""
    if e.op == "port":
        return duty if e.left in pins else 0.0
    if e.op == "one":
        return 1.0
    if e.op == "zero":
        return 0.0
    if e.op == "not":
        return 1.0 - _duty(e.left, pins, duty)
    a, b = _duty(e.left, pins, duty), _duty(e.right, pins, duty)
    if e.op == "and":
        return a * b
    if e.op == "or":
        return 1.0 - (1.0 - a) * (1.0 - b)
    return a * (1.0 - b) + b * (1.0 - a)  # xor


def _arc_weights(cell: Cell, out_pin: str, related: str | None, pins: set[str],
                 clock_related: bool) -> tuple[str, float]:
    """How OpenSTA 2019 weights an output arc of ``cell``: (``infered``, duty of the
    inferred condition) — the arc's energy then counts per transition of the related
    input —, or (``when``, sum of the duties of the arc's ``when`` variants), (``clock``,
    1) or (``default``, 0.5) per transition of the output."""
    pin = cell.pins[out_pin]
    arcs = [a for a in pin.power if a.related == related]
    whens = [a.when for a in arcs if a.when]
    if related is not None and not whens and pin.function:
        inferred = _infered_when(_parse_function(pin.function), related)
        if inferred is not None:
            return "infered", _duty(inferred, pins)
    if whens:  # rcm_gen's arc energy is the mean of the variants; OpenSTA sums them
        return "when", sum(_duty(_parse_function(a.when), pins) if a.when else 0.5
                           for a in arcs)
    return ("clock", 1.0) if clock_related else ("default", 0.5)


def opensta_rule_internal(netlist: FlatNetlist, lib: Liberty, model: Any,
                          activity: np.ndarray, clock: str) -> float:
    """Internal energy per cycle (pJ) by Debian OpenSTA's rule (see the module
    documentation) from ``model``'s own per-arc table lookups, every net ``k`` making
    ``activity[k]`` transitions per cycle (the clock network's 2, gated clocks included),
    every pin at duty 0.5."""
    clock_nets = set(netlist.ports[clock][1]) | set(model.clock_nets)
    act = np.asarray(activity, dtype=float).copy()
    for k in clock_nets:
        act[k] = 2.0
    # input pins: (rise + fall) energy per transition, duty 1 on a clock, else 0.5
    inputs = _input_internal_per_net(model)
    duty_in = np.array([1.0 if k in clock_nets else 0.5 for k in range(netlist.net_count)])
    total = float((inputs * duty_in * act).sum())
    # output arcs, in the order EnergyModel lists them
    order = []
    for inst in netlist.instances:
        cell = lib.cells[inst.cell]
        for pin_name in inst.pins:
            pin = cell.pins[pin_name]
            if pin.direction == "input" or not pin.power:
                continue
            for rel in dict.fromkeys(a.related for a in pin.power):
                order.append((inst, cell, pin_name, rel))
    if len(order) != len(model.pair_out):
        raise ValueError(f"Energy model lists {len(model.pair_out)} output arcs, the netlist "
                         f"{len(order)}")
    weights: dict[tuple[str, str, str | None, bool, frozenset[str]], tuple[str, float]] = {}
    for (inst, cell, pin_name, rel), k_out, k_in, r, f in zip(
            order, model.pair_out, model.pair_in, model.pair_rise, model.pair_fall,
            strict=True):
        rel_net = inst.pins.get(rel) if rel is not None else None
        key = (cell.name, pin_name, rel, rel_net is not None and rel_net in clock_nets,
               frozenset(inst.pins))
        if key not in weights:
            weights[key] = _arc_weights(cell, pin_name, rel, set(inst.pins), key[3])
        kind, w = weights[key]
        per = act[k_in] if kind == "infered" and k_in >= 0 else act[k_out]
        if kind == "infered" and act[k_out] == 0:
            per = 0.0
        total += (r + f) * w * per
    return total


# -- the comparison --------------------------------------------------------------------------


def _switching_per_net(netlist: FlatNetlist, lib: Liberty, model: Any, clock: str
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``1/2 C V²`` per transition (pJ) of each net a cell (or a macro) drives, and of each
    net an input port other than the clock drives, at ``model``'s loads; zero elsewhere."""
    n = netlist.net_count
    driven = np.zeros(n, dtype=bool)
    for inst in netlist.instances:
        pins = lib.cells[inst.cell].pins
        for p, k in inst.pins.items():
            if pins[p].direction != "input":
                driven[k] = True
    for m in netlist.macros:
        for nets in m.pins.values():
            for k in nets:
                driven[k] = True  # a macro's inputs are driven by cells anyway
    ports = np.zeros(n, dtype=bool)
    for p, (d, bits) in netlist.ports.items():
        if d == "input" and p != clock:
            ports[list(bits)] = True
    driven[: CONST1 + 1] = ports[: CONST1 + 1] = False
    e = 0.5 * np.asarray(model.load, dtype=float) * float(model.voltage) ** 2
    return np.where(driven, e, 0.0), np.where(ports & ~driven, e, 0.0)


def _rise_fall_excess(lib: Liberty) -> float:
    """The largest relative excess of a pin's larger ``rise_capacitance`` or
    ``fall_capacitance`` over its ``capacitance`` in ``lib`` (0 where they agree or are
    not given)."""
    text = lib.path.read_text(errors="replace")
    worst = 0.0
    for chunk in re.split(r"\bpin\s*\(", text)[1:]:
        vals = {}
        for key in ("capacitance", "rise_capacitance", "fall_capacitance"):
            m = re.search(rf"(?<![\w]){key}\s*:\s*([-+0-9.eE]+)", chunk)
            if m:
                vals[key] = float(m.group(1))
        c = vals.get("capacitance", 0.0)
        edges = [vals[k] for k in ("rise_capacitance", "fall_capacitance") if k in vals]
        if c > 0 and edges:
            worst = max(worst, (max(edges) - c) / c)
    return worst


def _input_internal_per_net(model: Any) -> np.ndarray:
    """Input-pin internal energy per rise plus per fall of each net (pJ), from ``model``'s
    lookups."""
    rise, fall = model.input_internal_per_net()
    return np.asarray(rise) + np.asarray(fall)


def compare_with_opensta(netlist: FlatNetlist, lib: Liberty, model: Any, rises: np.ndarray,
                         falls: np.ndarray, cycles: int, clock_ns: float, clock: str,
                         constraints: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """rcm_gen's energy of a window (``rises``/``falls`` per net over ``cycles`` cycles)
    beside OpenSTA's ``report_power`` of the same activity (:func:`opensta_power`), in W
    at ``clock_ns``: internal (rcm_gen's own, its rebuilt OpenSTA rule, OpenSTA's),
    switching of cell-driven nets, leakage and totals, the relative differences and the
    tolerances (:data:`TOLERANCES`; :data:`RISE_FALL_CAP_SWITCHING` for switching on a
    liberty with rise and fall pin capacitances); ``checked`` lists the figures compared
    (internal and totals only where OpenSTA reports internal power), ``within`` whether
    each is within its tolerance, ``notes`` why a tolerance or a figure differs."""
    e = model.window(rises, falls, cycles, clock_ns)
    to_w = 1e-12 / (clock_ns * 1e-9) / cycles  # pJ over the window -> W
    activity = (np.asarray(rises, dtype=float) + np.asarray(falls, dtype=float)) / cycles
    toggles = np.asarray(rises, dtype=float) + np.asarray(falls, dtype=float)
    # on the clock network (gated clocks included) OpenSTA's activity: 2 per period
    gated = sorted(set(model.clock_nets) - set(netlist.ports[clock][1]))
    toggles[gated] = 2.0 * cycles
    per_cell_net, per_input_net = _switching_per_net(netlist, lib, model, clock)
    switching_cells = float(per_cell_net @ toggles)
    rule = opensta_rule_internal(netlist, lib, model, activity, clock)
    sta = opensta_power(netlist, lib, model, rises, falls, cycles, clock_ns, clock,
                        constraints, out_dir)
    mine = {"internal": e.internal * to_w, "internal_rule": rule / clock_ns * 1e-3,
            "switching": switching_cells * to_w, "leakage": e.leakage * to_w}
    mine["total"] = mine["internal"] + mine["switching"] + mine["leakage"]
    mine["total_rule"] = mine["internal_rule"] + mine["switching"] + mine["leakage"]
    theirs = {"internal": sta.internal, "switching": sta.switching, "leakage": sta.leakage,
              "total": sta.total}

    def rel(a: float, b: float) -> float | None:
        return (a - b) / b if b else None

    diff = {"switching": rel(mine["switching"], sta.switching),
            "leakage": rel(mine["leakage"], sta.leakage),
            "internal_rule": rel(mine["internal_rule"], sta.internal),
            "total_rule": rel(mine["total_rule"], sta.total),
            "internal": rel(mine["internal"], sta.internal),
            "total": rel(mine["total"], sta.total)}
    reports_internal = sta.internal > 0
    checked = [k for k in TOLERANCES if reports_internal or k in ("switching", "leakage")]
    tolerances = dict(TOLERANCES)
    notes = []
    excess = _rise_fall_excess(lib)
    if excess > 0.01:
        tolerances["switching"] = RISE_FALL_CAP_SWITCHING
        notes.append(f"the liberty's rise and fall pin capacitances exceed its pins' "
                     f"capacitance by up to {excess:.0%}: OpenSTA loads a net with the larger "
                     "of the two, rcm_gen with the capacitance")
    if not reports_internal:
        notes.append("OpenSTA reports no internal power for this library (it finds no "
                     "supply voltage through the cells' pg_pin names): switching and "
                     "leakage compared")
    within = all(diff[k] is not None and abs(diff[k]) <= tolerances[k] for k in checked)
    # the inputs' switching (rcm_gen's "inputs" group) against the input flip-flops'
    inputs_sw = float(per_input_net @ toggles) * to_w
    return {
        "cycles": cycles, "clock_ns": clock_ns, "unit": "W",
        "rcm_gen": mine, "opensta": theirs, "difference": diff, "tolerances": tolerances,
        "checked": checked, "within": within, "notes": notes,
        "opensta_internal_over_rcm_gen": (sta.internal / mine["internal"]
                                          if mine["internal"] else None),
        "inputs_switching": {"rcm_gen": inputs_sw, "opensta": sta.sources["switching"]},
        "library": lib.name, "log": str(sta.log),
        "tools": tool_versions("opensta"),
    }


def format_comparison(c: dict[str, Any], name: str) -> str:
    """A readable table of :func:`compare_with_opensta`."""
    r, o, d = c["rcm_gen"], c["opensta"], c["difference"]
    rows = [("", "rcm_gen", "OpenSTA", "difference", "tolerance")]

    def row(label: str, mine: float, key: str, theirs: float) -> None:
        diff = d.get(key)
        tol = c["tolerances"].get(key)
        rows.append((label, f"{mine:.6e}", f"{theirs:.6e}",
                     f"{diff:+.2%}" if diff is not None else "-",
                     f"{tol:.1%}" if tol is not None and key in c["checked"] else "-"))

    row("switching (cell-driven nets)", r["switching"], "switching", o["switching"])
    row("leakage", r["leakage"], "leakage", o["leakage"])
    row("internal, OpenSTA's rule rebuilt", r["internal_rule"], "internal_rule", o["internal"])
    row("total, OpenSTA's rule rebuilt", r["total_rule"], "total_rule", o["total"])
    row("internal, rcm_gen (per transition)", r["internal"], "internal", o["internal"])
    row("total, rcm_gen", r["total"], "total", o["total"])
    widths = [max(len(x[i]) for x in rows) for i in range(5)]
    lines = [f"{name}: rcm_gen's energy model against OpenSTA's report_power on the same "
             f"activity ({c['cycles']:,} cycles at {c['clock_ns']:g} ns, {c['library']}; W)"]
    for x in rows:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(x, widths, strict=True))))
    lines += [f"note: {n}" for n in c.get("notes", [])]
    ratio = c["opensta_internal_over_rcm_gen"]
    lines.append(f"OpenSTA's internal / rcm_gen's: {ratio:.3f} (its rule charges rise + fall "
                 f"energy per transition); within tolerance: {c['within']}; log {c['log']}"
                 if ratio else f"within tolerance: {c['within']}; log {c['log']}")
    return "\n".join(lines)


# -- the activity of a run ---------------------------------------------------------------------


def netlist_model(power: Any, clock: str = "clk") -> Any:
    """The :class:`~rcm_gen.power.energy.EnergyModel` of a prepared netlist
    (:class:`~rcm_gen.power.mac.GatePower`) as OpenSTA sees it: the same loads, wire model
    and slews, and no clock tree estimated beyond the netlist's own cells."""
    from .energy import EnergyModel

    cons = {k: power.constraints.get(k) for k in ("output_load", "input_transition_ns",
                                                  "wire_load", "wire_cap_per_fanout")}
    cons["clock_tree_fanout"] = 0
    return EnergyModel(power.netlist, power.lib, clock, cons, top_module=power.report["top"])


@dataclass
class RunActivity:
    """What a comparison needs from a gate-level run: the prepared netlist
    (:class:`~rcm_gen.power.mac.GatePower`: netlist, liberty, energy model, constraints,
    clock), the rises and falls of every net summed over the measured windows, their
    ``cycles``, the output values ``checked`` (against numpy or the RTL), and what ran
    (``what``), and its clock port."""

    power: Any
    rises: np.ndarray
    falls: np.ndarray
    cycles: int
    checked: int
    what: str

    clock: str = "clk"

    def compare(self, out_dir: str | Path) -> dict[str, Any]:
        """:func:`compare_with_opensta` of this run, with the energy model of the netlist
        as it is (:func:`netlist_model`)."""
        gp = self.power
        c = compare_with_opensta(gp.netlist, gp.lib, netlist_model(gp, self.clock),
                                 self.rises, self.falls, self.cycles, gp.clock_ns,
                                 self.clock, gp.constraints, out_dir)
        c["run"] = {"what": self.what, "checked": self.checked,
                    "netlist": gp.report["netlist"], "cells": gp.report["cells"],
                    "config": gp.design.to_dict()}
        return c


def mac_activity(design: Any, *, ports: Any = None, cycles: int = 1000,
                 stimulus: str = "random", seed: int = 1, liberty: str | None = None,
                 clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                 simulator: str = "verilator") -> RunActivity:
    """The zero-delay power run of a MAC (:func:`rcm_gen.power.mac.mac_energy`'s inputs:
    every mode, ``cycles`` measured cycles each; a user design with its port map
    ``ports``), every accumulator value checked against numpy, its per-net counts summed
    over the modes' windows."""
    from ..config import MacConfig
    from .mac import _SETTLE, GatePower, _schedule, _streams, mac_port_map, power_modes

    if isinstance(design, MacConfig):
        ports = mac_port_map(design)
    elif ports is None:
        raise UserError("--verilog needs --ports FILE (the roles of its ports)")
    modes, streams = _streams(stimulus, power_modes(ports), cycles, ports.latency + _SETTLE,
                              seed)
    gp = GatePower.prepare(design, clock=ports.clock, liberty=liberty, clock_ns=clock_ns,
                           constraints=constraints, simulator=simulator,
                           check_ports=lambda net: ports.check(
                               net.ports, "design" if isinstance(design, MacConfig)
                               else "--ports"))
    inputs, windows, expected, check, _ = _schedule(ports, modes, streams, cycles, 128,
                                                    gp.sim.inputs)
    _, run = gp.run(inputs, windows, tag="opensta")
    bits = len(gp.netlist.ports[ports.acc][1])
    got = run.outputs[ports.acc]
    checked = 0
    for t in np.flatnonzero(check[: len(expected) - ports.latency + 1]):
        want = int(expected[t]) & ((1 << bits) - 1)
        if got[t + ports.latency - 1] != want:
            raise ToolFailed(f"gate-level accumulator differs from numpy at cycle {t}: "
                             f"{got[t + ports.latency - 1]:#x}, expected {want:#x}; "
                             f"log: {run.log}")
        checked += 1
    n = sum(b - a for a, b in windows)
    return RunActivity(gp, run.rises.sum(axis=0), run.falls.sum(axis=0), n, checked,
                       f"{len(modes)} modes x {cycles} cycles, {Path(str(stimulus)).name} "
                       f"data, {simulator}", ports.clock)


def tile_activity(config: Any, *, seed: int = 1, liberty: str | None = None,
                  clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                  rtl_simulator: str = "verilator") -> RunActivity:
    """The layers ``rcm-gen power`` runs on a tile (a 3×3 layer per mode, recorded in RTL
    and replayed on the netlist by :class:`rcm_gen.power.tile.TileGate`, every output
    checked against the RTL's), per-net counts summed over the layers' windows (the
    cycles the cycle model counts)."""
    from .tile import TileGate, mode_case, record_layers, tile_modes

    gate = TileGate.prepare(config, liberty=liberty, clock_ns=clock_ns,
                            constraints=constraints)
    modes = tile_modes(config)
    recs = record_layers(config, [mode_case(config, m, "conv3x3", seed) for m in modes],
                         simulator=rtl_simulator)
    windows = [[rec.layer_window()] for rec in recs]
    # every output the RTL defines is checked, as for the tile's energy
    _, facts = gate.replay(recs, windows, tag="opensta")
    rises = sum(run.rises.sum(axis=0) for run in facts["runs"])
    falls = sum(run.falls.sum(axis=0) for run in facts["runs"])
    checked = facts["checked"]
    n = sum(b - a for [(a, b)] in windows)
    return RunActivity(gate.power, rises, falls, n, checked,
                       f"{len(modes)} layers (3x3, one per mode), RTL on {rtl_simulator}, "
                       "gate level on the cycle simulator")
