"""Delays of a synthesized netlist for timing simulation: an SDF written by OpenSTA as the
ASIC flow times the netlist, read back and checked against the flat netlist, and rewritten
as an SDF that Icarus Verilog 11 applies in full.

OpenSTA (``write_sdf``) writes, per instance, an ``IOPATH`` delay per input-to-output arc
and edge, at the slews and loads of its own delay calculation, and ``INTERCONNECT`` delays
from every net's driver to its loads (the driving cell's delay on the nets of input ports,
the wire-load model's wire delay on SkyWater 130; zero on OSU 0.18 µm, which has no wire
load model, without parasitics).  It leaves the typical value of each ``min:typ:max``
triple empty and, for the arcs of a non-unate pin pair (an XOR's), writes several
``IOPATH`` entries for the same pins.

What Icarus Verilog 11 does with an SDF (``$sdf_annotate``, ``vpi/sdf_parse.y``, and
tried here): it annotates ``IOPATH`` delays, rise and fall, onto the module paths of a
``specify`` block, an entry with an edge (``(posedge CLK) Q``) only onto a path declared
with that edge ("Unable to match ModPath" otherwise); it takes the *typical* value of a
triple, so OpenSTA's ``(0.1::0.12)`` becomes a zero delay; it reads and ignores
``INTERCONNECT``, ``COND``/``CONDELSE`` (with a warning), ``PATHPULSE`` and the pulse
limits of a value, and every timing check.  So
:meth:`SdfAnnotation.icarus_sdf` rewrites OpenSTA's file: one ``IOPATH`` per arc with the
max (setup) value, the conditional and duplicate entries of a pin pair merged into their
largest delays, each net's largest ``INTERCONNECT`` delay added to its driver's arcs
(input ports: kept apart, for the testbench to apply), on the flat netlist's instance
names.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolFailed, UserError
from ..flows.liberty import Liberty
from ..flows.netlist import CONST1, FlatNetlist
from ..tools import require_executable

__all__ = ["SdfAnnotation", "opensta_sdf", "read_sdf"]


# -- SDF from OpenSTA ---------------------------------------------------------------------


def opensta_sdf(netlist: str | Path, top: str, lib: Liberty, constraints: dict[str, Any],
                out_dir: str | Path, *, driving_cell: str | None = None,
                clock: str = "clk") -> Path:
    """Have OpenSTA write an SDF of ``netlist`` (Verilog, top module ``top``) timed as the
    ASIC flow times it: ``lib``, the clock period, input and output delays and output load
    of ``constraints`` and ``driving_cell`` on every input but the clock.  The script and
    its log are kept in ``out_dir``; the SDF is ``out_dir/timing.sdf``.

    Raises
    ------
    ToolFailed
        OpenSTA failed or wrote no SDF (the message names the log).
    """
    from ..flows.sta import sta_script

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sdf = out / "timing.sdf"
    script = sta_script(constraints, lib, Path(netlist).resolve(), top, driving_cell,
                        clock=clock)
    lines = [ln for ln in script.splitlines() if not ln.startswith("report_")]
    tmp = out / f"timing.sdf.tmp{os.getpid()}"
    lines.append(f"write_sdf -divider / -digits 6 -no_timestamp -no_version {tmp}")
    tcl = out / "sdf.tcl"
    tcl.write_text("\n".join(lines) + "\n")
    log = out / "sdf.log"
    try:
        proc = subprocess.run([require_executable("sta"), "-no_init", "-exit", str(tcl)],
                              capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"OpenSTA did not write the SDF within an hour; log: {log}") from None
    log.write_text(proc.stdout + proc.stderr)
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
    if proc.returncode != 0 or errors or not tmp.exists():
        raise ToolFailed(f"OpenSTA could not write an SDF of {top} "
                         f"({errors[0] if errors else f'exit status {proc.returncode}'}); "
                         f"log: {log}")
    os.replace(tmp, sdf)
    return sdf


_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|((?:[^\s()"\\]|\\.)+))')


def _sexpr(text: str, where: str) -> list[Any]:
    """The nested lists of an SDF file's parenthesised text."""
    stack: list[list[Any]] = [[]]
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip():
                raise UserError(f"SDF {where}: cannot read it at character {pos}")
            break
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            if len(stack) == 1:
                raise UserError(f"SDF {where}: unbalanced ')' at character {pos}")
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3) is not None:
            stack[-1].append(m.group(3))
        else:
            stack[-1].append(m.group(4))
    if len(stack) != 1 or len(stack[0]) != 1 or not isinstance(stack[0][0], list) \
            or not stack[0][0] or str(stack[0][0][0]).upper() != "DELAYFILE":
        raise UserError(f"SDF {where}: not an SDF file (one (DELAYFILE ...) group)")
    return stack[0][0]


def _split_path(name: str, divider: str) -> list[str]:
    """An SDF hierarchical name split at its unescaped dividers, escapes removed."""
    parts, cur, i = [], [], 0
    while i < len(name):
        c = name[i]
        if c == "\\" and i + 1 < len(name):
            cur.append(name[i + 1])
            i += 2
            continue
        if c == divider:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _value(v: Any, where: str) -> float | None:
    """The delay of an SDF value ``(min:typ:max)``: the last one given (OpenSTA writes
    ``min::max``; the max is its setup corner), ``None`` for ``()``."""
    if not isinstance(v, list):
        raise UserError(f"SDF {where}: delay value {v!r} is not parenthesised")
    if not v:
        return None
    if isinstance(v[0], list):  # (rvalue rvalue ...): pulse limits after the delay
        return _value(v[0], where)
    given = [p for p in str(v[0]).split(":") if p != ""]
    try:
        return float(given[-1]) if given else None
    except ValueError:
        raise UserError(f"SDF {where}: delay value {v[0]!r} is not a number") from None


def _rise_fall(values: list[Any], where: str) -> tuple[float, float]:
    vals = [_value(v, where) for v in values]
    if not vals or vals[0] is None:
        raise UserError(f"SDF {where}: an IOPATH without a delay")
    rise = vals[0]
    fall = vals[1] if len(vals) > 1 and vals[1] is not None else rise
    return rise, fall


@dataclass
class SdfAnnotation:
    """An SDF read against a flat netlist: per instance (index into
    ``netlist.instances``) the rise and fall delay (ns) of each arc (input pin, output
    pin), the net delays folded into them; per input-port net the delay of its driver; and
    how many SDF entries were merged or folded (``notes``)."""

    source: Path
    arcs: dict[int, dict[tuple[str, str], tuple[float, float]]]
    inputs: dict[int, tuple[float, float]]
    notes: dict[str, int] = field(default_factory=dict)

    def longest_path_ns(self, netlist: FlatNetlist, lib: Liberty) -> float:
        """The latest time (ns after a clock edge) at which any net can still change:
        arrival times propagated through the annotated arcs (each arc's larger delay)
        from the input ports (their delays) and the sequential cells' outputs."""
        arrival = np.full(netlist.net_count, np.nan)
        arrival[: CONST1 + 1] = 0.0
        for _, (direction, bits) in netlist.ports.items():
            if direction == "input":
                for k in bits:
                    if k > CONST1:
                        arrival[k] = max(self.inputs.get(k, (0.0, 0.0)))
        driver: dict[int, tuple[int, str]] = {}
        for i, inst in enumerate(netlist.instances):
            for pin, k in inst.pins.items():
                if lib.cells[inst.cell].pins[pin].direction != "input":
                    driver[k] = (i, pin)

        def arcs_into(i: int, pin: str) -> list[tuple[str, float]]:
            return [(a, max(rf)) for (a, y), rf in self.arcs.get(i, {}).items() if y == pin]

        for start in driver:
            stack = [start]
            while stack:
                k = stack[-1]
                if not np.isnan(arrival[k]):
                    stack.pop()
                    continue
                i, pin = driver[k]
                inst = netlist.instances[i]
                if lib.cells[inst.cell].sequential:  # launched by the clock edge
                    arrival[k] = max((d for _, d in arcs_into(i, pin)), default=0.0)
                    stack.pop()
                    continue
                todo = [inst.pins[a] for a, _ in arcs_into(i, pin)
                        if np.isnan(arrival[inst.pins[a]]) and inst.pins[a] not in stack]
                if todo:
                    stack += todo
                    continue
                arrival[k] = max((np.nan_to_num(arrival[inst.pins[a]]) + d
                                  for a, d in arcs_into(i, pin)), default=0.0)
                stack.pop()
        return float(np.nanmax(arrival)) if netlist.net_count else 0.0

    def icarus_sdf(self, netlist: FlatNetlist) -> str:
        """The annotation as an SDF that Icarus Verilog 11 applies in full: plain
        ``IOPATH`` entries (no edge, no condition, one value each for rise and fall),
        one per arc, on the flat netlist's instances ``u<i>``."""
        lines = ['(DELAYFILE', ' (SDFVERSION "3.0")', f' (DESIGN "{netlist.top}")',
                 ' (DIVIDER /)', ' (TIMESCALE 1ns)']
        for i in sorted(self.arcs):
            cell = netlist.instances[i].cell
            lines.append(f' (CELL (CELLTYPE "{cell}") (INSTANCE u{i}) (DELAY (ABSOLUTE')
            for (a, y), (r, f) in sorted(self.arcs[i].items()):
                lines.append(f"  (IOPATH {a} {y} ({r:.6f}) ({f:.6f}))")
            lines.append(" )))")
        lines.append(")")
        return "\n".join(lines) + "\n"


def read_sdf(path: str | Path, netlist: FlatNetlist, lib: Liberty) -> SdfAnnotation:
    """Read an SDF of ``netlist`` (its instances named by their hierarchical paths, as
    OpenSTA names them) and check it against the netlist.

    Raises
    ------
    UserError
        The file cannot be read, or it does not match the netlist: an instance it names is
        not in the netlist or is another cell, an arc names a pin the cell lacks, or a cell
        of the netlist with timing arcs has no delays in it.
    """
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise UserError(f"SDF {str(path)!r}: cannot read it ({exc})") from None
    where = repr(str(path))
    top = _sexpr(text, where)
    divider = "/"
    for item in top[1:]:
        if isinstance(item, list) and item and str(item[0]).upper() == "DIVIDER":
            divider = str(item[1]) if len(item) > 1 else "/"
    by_path = {inst.path: i for i, inst in enumerate(netlist.instances)}
    port_bits: dict[str, int] = {}
    for name, (_direction, bits) in netlist.ports.items():
        for b, k in enumerate(bits):
            port_bits[f"{name}[{b}]" if len(bits) > 1 else name] = k
            if len(bits) == 1:
                port_bits[f"{name}[0]"] = k
    arcs: dict[int, dict[tuple[str, str], tuple[float, float]]] = {}
    notes = {"iopaths": 0, "merged_arcs": 0, "conditional_arcs": 0,
             "interconnects": 0, "interconnects_folded": 0}
    wires: dict[tuple[int, str], tuple[float, float]] = {}  # driver (inst, pin) -> delay
    inputs: dict[int, tuple[float, float]] = {}

    def locate(name: str, scope: list[str], what: str) -> tuple[int | None, str | None, int]:
        """(instance index, pin) of a pin path, or (None, None, net) of a port bit."""
        parts = scope + _split_path(name, divider)
        if len(parts) == 1:
            if parts[0] not in port_bits:
                raise UserError(f"SDF {where} does not match netlist {netlist.top}: "
                                f"{what} names port {name!r}, which it does not have")
            return None, None, port_bits[parts[0]]
        inst_path, pin = ".".join(parts[:-1]), parts[-1]
        if inst_path not in by_path:
            raise UserError(f"SDF {where} does not match netlist {netlist.top}: {what} "
                            f"names instance {inst_path!r}, which it does not have")
        i = by_path[inst_path]
        if pin not in netlist.instances[i].pins:
            raise UserError(f"SDF {where} does not match netlist {netlist.top}: {what} "
                            f"names pin {pin} of {inst_path} ({netlist.instances[i].cell}), "
                            "which has no such pin")
        return i, pin, netlist.instances[i].pins[pin]

    def add_arc(i: int, a: str, y: str, rf: tuple[float, float], conditional: bool) -> None:
        notes["iopaths"] += 1
        if conditional:
            notes["conditional_arcs"] += 1
        cell = lib.cells[netlist.instances[i].cell]
        for p in (a, y):
            if p not in cell.pins:
                raise UserError(f"SDF {where} does not match netlist {netlist.top}: an "
                                f"IOPATH of {netlist.instances[i].path} names pin {p!r}, "
                                f"which cell {cell.name} does not have")
        have = arcs.setdefault(i, {}).get((a, y))
        if have is not None:
            notes["merged_arcs"] += 1
            rf = (max(have[0], rf[0]), max(have[1], rf[1]))
        arcs[i][(a, y)] = rf

    def pin_name(p: Any) -> str:
        # (posedge CLK) / (negedge CLK): the edge is dropped, the module path has none
        return str(p[-1]) if isinstance(p, list) else str(p)

    for cell_group in top[1:]:
        if not (isinstance(cell_group, list) and cell_group
                and str(cell_group[0]).upper() == "CELL"):
            continue
        celltype, inst_name = None, None
        for part in cell_group[1:]:
            if isinstance(part, list) and part and str(part[0]).upper() == "CELLTYPE":
                celltype = str(part[1]) if len(part) > 1 else None
            elif isinstance(part, list) and part and str(part[0]).upper() == "INSTANCE":
                inst_name = str(part[1]) if len(part) > 1 else ""
        if inst_name is None or inst_name == "*":
            raise UserError(f"SDF {where}: a CELL without one INSTANCE")
        scope = _split_path(inst_name, divider) if inst_name else []
        inst_index = None
        if scope:
            ipath = ".".join(scope)
            if ipath not in by_path:
                raise UserError(f"SDF {where} does not match netlist {netlist.top}: "
                                f"instance {ipath!r} ({celltype}) is not in it")
            inst_index = by_path[ipath]
            have = netlist.instances[inst_index].cell
            if celltype is not None and celltype != have:
                raise UserError(f"SDF {where} does not match netlist {netlist.top}: "
                                f"instance {ipath!r} is a {have}, the SDF says {celltype}")
        for part in cell_group[1:]:
            if not (isinstance(part, list) and part and str(part[0]).upper() == "DELAY"):
                continue
            for kind in part[1:]:
                if not (isinstance(kind, list) and kind):
                    continue
                if str(kind[0]).upper() == "INCREMENT":
                    raise UserError(f"SDF {where}: INCREMENT delays are not supported "
                                    "(absolute delays only)")
                if str(kind[0]).upper() != "ABSOLUTE":
                    continue  # PATHPULSE limits: Icarus 11 ignores them, and so do we
                for entry in kind[1:]:
                    if not (isinstance(entry, list) and entry):
                        continue
                    tag = str(entry[0]).upper()
                    conditional = tag in ("COND", "CONDELSE")
                    if conditional:
                        entry = next((e for e in entry[1:] if isinstance(e, list) and e
                                      and str(e[0]).upper() == "IOPATH"), None)
                        if entry is None:
                            continue
                        tag = "IOPATH"
                    if tag == "IOPATH":
                        if inst_index is None:
                            raise UserError(f"SDF {where}: an IOPATH outside an instance")
                        add_arc(inst_index, pin_name(entry[1]), pin_name(entry[2]),
                                _rise_fall(entry[3:], where), conditional)
                    elif tag == "INTERCONNECT":
                        notes["interconnects"] += 1
                        rf = _rise_fall(entry[3:], where)
                        src = locate(str(entry[1]), scope, "an INTERCONNECT")
                        locate(str(entry[2]), scope, "an INTERCONNECT")
                        if src[0] is None:
                            k = src[2]
                            old = inputs.get(k, (0.0, 0.0))
                            inputs[k] = (max(old[0], rf[0]), max(old[1], rf[1]))
                        else:
                            key2 = (src[0], str(src[1]))
                            old = wires.get(key2, (0.0, 0.0))
                            wires[key2] = (max(old[0], rf[0]), max(old[1], rf[1]))
    # each net's wire delay onto its driver's arcs
    for (i, pin), (r, f) in wires.items():
        if r == 0.0 and f == 0.0:
            continue
        for (a, y), (ar, af) in list(arcs.get(i, {}).items()):
            if y == pin:
                arcs[i][(a, y)] = (ar + r, af + f)
                notes["interconnects_folded"] += 1
    # every cell with timing arcs in the liberty must have delays
    for i, inst in enumerate(netlist.instances):
        cell = lib.cells[inst.cell]
        timed = any(arc.related in inst.pins for p in cell.pins.values()
                    if p.direction != "input" for arc in p.timing)
        if timed and i not in arcs:
            raise UserError(f"SDF {where} does not match netlist {netlist.top}: instance "
                            f"{inst.path!r} ({inst.cell}) has no delays in it")
    for k in list(inputs):
        if k <= CONST1:
            del inputs[k]
    return SdfAnnotation(path, arcs, inputs, notes)
