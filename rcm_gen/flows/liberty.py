"""Liberty cell libraries: reading (plain or gzip) with a real Liberty parser (PyPI
``liberty-parser``), checking, finding the cells a flow needs (tie cells, a driving cell),
and the power and slew data that the power flow needs (pin capacitances, NLDM
``internal_power`` and transition tables, leakage, flip-flop and latch groups, wire-load
models).

Parsing a large library takes seconds (about 9 s for SkyWater 130 ``hd``), so what rcm_gen
uses of a library is kept in the cache as JSON, keyed by the file's content.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..tools import cache_dir

__all__ = ["Cell", "Liberty", "Pin", "PowerArc", "Sequential", "Statetable", "Table",
           "TimingArc", "load_liberty"]

#: Bumped whenever the cached form changes.
_CACHE_FORMAT = 4


@dataclass(frozen=True)
class Table:
    """An NLDM lookup table: ``variables`` name the axes (``input_transition_time``,
    ``total_output_net_capacitance``, ...), ``index`` their points, ``values`` the table
    (flattened row-major; a scalar table has no axes)."""

    variables: tuple[str, ...]
    index: tuple[tuple[float, ...], ...]
    values: tuple[float, ...]

    def lookup(self, slew: float, load: float) -> float:
        """The table at input transition ``slew`` and output load ``load``, interpolated
        bilinearly and extrapolated linearly from the end segments (as OpenSTA does)."""
        if not self.index:
            return self.values[0]
        point = [slew if "transition" in v else load for v in self.variables]
        if len(self.index) == 1:
            return _interp1(self.index[0], self.values, point[0])
        i0, f0 = _segment(self.index[0], point[0])
        n1 = len(self.index[1])
        rows = []
        for i in (i0, i0 + 1) if len(self.index[0]) > 1 else (i0,):
            rows.append(_interp1(self.index[1], self.values[i * n1:(i + 1) * n1], point[1]))
        if len(rows) == 1:
            return rows[0]
        return rows[0] + (rows[1] - rows[0]) * f0


def _segment(axis: tuple[float, ...], x: float) -> tuple[int, float]:
    if len(axis) == 1:
        return 0, 0.0
    i = min(max(bisect.bisect_right(axis, x) - 1, 0), len(axis) - 2)
    return i, (x - axis[i]) / (axis[i + 1] - axis[i])


def _interp1(axis: tuple[float, ...], values: Any, x: float) -> float:
    if len(axis) == 1:
        return float(values[0])
    i, f = _segment(axis, x)
    return float(values[i] + (values[i + 1] - values[i]) * f)


@dataclass(frozen=True)
class PowerArc:
    """One ``internal_power`` group of a pin: energy per rising and falling transition
    (of the output pin it is under, or of the input pin itself when under an input)."""

    related: str | None
    when: str | None
    rise: Table | None
    fall: Table | None


@dataclass(frozen=True)
class TimingArc:
    """The output transition tables of one ``timing`` group of an output pin."""

    related: str
    sense: str | None
    rise: Table | None
    fall: Table | None


@dataclass(frozen=True)
class Pin:
    name: str
    direction: str
    capacitance: float = 0.0
    function: str | None = None
    three_state: str | None = None
    clock: bool = False
    power: tuple[PowerArc, ...] = ()
    timing: tuple[TimingArc, ...] = ()
    #: An output's ``state_function`` (a function of inputs and a statetable's nodes)
    state_function: str | None = None


@dataclass(frozen=True)
class Sequential:
    """An ``ff`` or ``latch`` group: the state variables and the expressions that set
    them (``clocked_on``/``next_state`` for a flip-flop, ``enable``/``data_in`` for a
    latch)."""

    kind: str
    state: str
    state_n: str
    clock: str
    data: str
    clear: str | None = None
    preset: str | None = None
    clear_preset_var1: str | None = None


@dataclass(frozen=True)
class Statetable:
    """A ``statetable`` group as written: its input pins, its internal nodes and the
    ``table`` text (rows ``inputs : nodes : next nodes``, comma-separated)."""

    inputs: tuple[str, ...]
    nodes: tuple[str, ...]
    table: str


@dataclass(frozen=True)
class Cell:
    name: str
    area: float
    inputs: tuple[str, ...]
    outputs: dict[str, str] = field(default_factory=dict)  # pin -> function
    pins: dict[str, Pin] = field(default_factory=dict)
    leakage_nw: float | None = None
    sequential: tuple[Sequential, ...] = ()
    statetable: bool = False
    #: The ``statetable`` group, when the cell has one
    table: Statetable | None = None
    #: ``clock_gating_integrated_cell`` (``latch_posedge``, ...), for a clock-gating cell
    clock_gating: str | None = None


@dataclass(frozen=True)
class Liberty:
    """A cell library ready for the tools: ``path`` is a plain-text copy.

    Units after reading: capacitance pF, time ns, internal energy pJ, leakage nW,
    voltage V.
    """

    source: Path
    path: Path
    name: str
    cells: dict[str, Cell]
    voltage: float = 0.0
    wire_loads: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_wire_load: str | None = None
    sha256: str = ""
    #: ``nom_voltage`` and ``nom_temperature`` of the library group (``None`` if absent)
    nom_voltage: float | None = None
    temperature: float | None = None

    @property
    def corner(self) -> tuple[str, float | None, float | None]:
        """(library name, nominal voltage, nominal temperature): what decides which macro
        libraries go with it."""
        return self.name, self.nom_voltage, self.temperature

    def tie_cells(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        """(cell, pin) driving constant 1 and constant 0, if the library has them."""
        hi = lo = None
        for cell in sorted(self.cells.values(), key=lambda c: c.area):
            if cell.inputs:
                continue
            for pin, fn in sorted(cell.outputs.items()):
                f = fn.strip().strip('"').replace("1'b", "")
                if f == "1" and hi is None:
                    hi = (cell.name, pin)
                elif f == "0" and lo is None:
                    lo = (cell.name, pin)
        return hi, lo

    def smallest_buffer(self) -> str | None:
        """Smallest one-input cell whose output function is that input."""
        best = None
        for cell in self.cells.values():
            if len(cell.inputs) == 1 and len(cell.outputs) == 1:
                fn = next(iter(cell.outputs.values())).strip().strip('"').strip("()")
                if fn == cell.inputs[0] and (best is None or cell.area < best.area):
                    best = cell
        return best.name if best else None

    def wire_cap(self, model: str, fanout: int) -> float:
        """Wire capacitance (pF) of a net with ``fanout`` loads under wire-load model
        ``model`` of this library (length from ``fanout_length``, extrapolated with
        ``slope`` past the table, times ``capacitance`` per unit length)."""
        wl = self.wire_loads[model]
        table = wl["fanout_length"]
        if fanout <= 0:
            return 0.0
        if fanout in table:
            length = table[fanout]
        else:
            top = max(table)
            if fanout > top:
                length = table[top] + (fanout - top) * wl["slope"]
            else:
                lo = max(k for k in table if k < fanout)
                hi = min(k for k in table if k > fanout)
                length = table[lo] + (table[hi] - table[lo]) * (fanout - lo) / (hi - lo)
        return length * wl["capacitance"]


# -- reading ------------------------------------------------------------------------------


_SCALE = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3}


def _unit(text: Any, base: str) -> float:
    """Scale of a unit string such as ``1ns``, ``1pW`` or ``100mV`` in SI."""
    m = re.fullmatch(r"\s*([0-9.eE+-]*)\s*([fpnumk]?)" + base + r"\s*", str(text).strip('"'),
                     re.I)
    if not m:
        raise ValueError(f"unit {text!r}")
    number = float(m.group(1)) if m.group(1) else 1.0
    prefix = m.group(2)
    prefix = prefix if prefix in ("m", "u", "n", "p", "f") else prefix.lower()
    return number * _SCALE[prefix]


def _str(value: Any) -> str:
    return str(getattr(value, "value", value)).strip().strip('"')


def _float(value: Any, default: float = 0.0) -> float:
    if value is None:
        return default
    return float(_str(value))


def _numbers(value: Any) -> tuple[float, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[float] = []
    for item in items:
        text = _str(item).replace("\\\n", "").replace("\\", "")
        out += [float(x) for x in text.replace(",", " ").split()]
    return tuple(out)


def _table(group: Any, templates: dict[str, Any], scale: float, units: dict[str, float]
           ) -> Table:
    """A table with values times ``scale`` and its axes in ns and pF."""
    template = templates.get(_str(group.args[0])) if group.args else None
    variables, index = [], []
    for k in (1, 2, 3):
        var = (template or {}).get(f"variable_{k}")
        own = group.get(f"index_{k}")
        axis = _numbers(own) if own is not None else (template or {}).get(f"index_{k}")
        if var is None and axis is None:
            break
        var = var or ""
        unit = units["time"] if "transition" in var else (
            units["cap"] if "capacitance" in var else 1.0)
        variables.append(var)
        index.append(tuple(x * unit for x in (axis or ())))
    values = tuple(v * scale for v in _numbers(group["values"]))
    if len(index) > 2:
        raise ValueError(f"{len(index)}-dimensional table")
    if not index or all(len(a) <= 1 and values and len(values) == 1 for a in index):
        return Table((), (), values[:1])
    return Table(tuple(variables), tuple(index), values)


def _templates(lib: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for kind in ("lu_table_template", "power_lut_template"):
        for g in lib.get_groups(kind):
            t: dict[str, Any] = {}
            for k in (1, 2, 3):
                if g.get(f"variable_{k}") is not None:
                    t[f"variable_{k}"] = _str(g[f"variable_{k}"])
                if g.get(f"index_{k}") is not None:
                    t[f"index_{k}"] = _numbers(g[f"index_{k}"])
            out[_str(g.args[0])] = t
    return out


def _pin(group: Any, name: str, templates: dict[str, Any], units: dict[str, float]) -> Pin:
    energy, cap, time = units["energy"], units["cap"], units["time"]
    direction = _str(group.get("direction", "")).lower()
    c = group.get("capacitance")
    if c is None and (group.get("rise_capacitance") is not None):
        c = (_float(group["rise_capacitance"]) + _float(group.get("fall_capacitance"))) / 2
    capacitance = _float(c) * cap
    power = []
    for ip in group.get_groups("internal_power"):
        rel = ip.get("related_pin")
        when = ip.get("when")
        tables = {}
        for kind in ("rise_power", "fall_power", "power"):
            sub = ip.get_groups(kind)
            if sub:
                tables[kind] = _table(sub[0], templates, energy, units)
        rise = tables.get("rise_power", tables.get("power"))
        fall = tables.get("fall_power", tables.get("power"))
        for r in (_str(rel).split() if rel is not None else [None]):
            power.append(PowerArc(r, _str(when) if when is not None else None, rise, fall))
    timing = []
    for tg in group.get_groups("timing"):
        ttype = _str(tg.get("timing_type", "combinational"))
        if any(x in ttype for x in ("setup", "hold", "recovery", "removal", "skew",
                                    "width", "period", "nochange")):
            continue
        rel = tg.get("related_pin")
        if rel is None:
            continue
        tables = {}
        for kind in ("rise_transition", "fall_transition"):
            sub = tg.get_groups(kind)
            if sub:
                tables[kind] = _table(sub[0], templates, time, units)
        sense = tg.get("timing_sense")
        for r in _str(rel).split():
            timing.append(TimingArc(r, _str(sense) if sense is not None else None,
                                    tables.get("rise_transition"),
                                    tables.get("fall_transition")))
    fn = group.get("function")
    ts = group.get("three_state")
    sf = group.get("state_function")
    return Pin(name, direction, capacitance, _str(fn) if fn is not None else None,
               _str(ts) if ts is not None else None,
               _str(group.get("clock", "false")).lower() == "true", tuple(power), tuple(timing),
               _str(sf) if sf is not None else None)


def _sequential(group: Any, kind: str) -> Sequential:
    def opt(key: str) -> str | None:
        v = group.get(key)
        return _str(v) if v is not None else None

    args = [_str(a) for a in group.args]
    clock_key, data_key = ("clocked_on", "next_state") if kind == "ff" else ("enable",
                                                                            "data_in")
    return Sequential(kind, args[0], args[1] if len(args) > 1 else "",
                      opt(clock_key) or "0", opt(data_key) or "0", opt("clear"),
                      opt("preset"), opt("clear_preset_var1"))


def _cell(group: Any, templates: dict[str, Any], units: dict[str, float]) -> Cell:
    pins: dict[str, Pin] = {}
    pin_groups = list(group.get_groups("pin"))
    for bus in group.get_groups("bus") + group.get_groups("bundle"):
        pin_groups += bus.get_groups("pin")
    for pg in pin_groups:
        for name in pg.args:
            name = _str(name)
            pins[name] = _pin(pg, name, templates, units)
    inputs = tuple(p.name for p in pins.values() if p.direction == "input")
    outputs = {p.name: p.function or "" for p in pins.values()
               if p.direction in ("output", "inout")}
    leak = group.get("cell_leakage_power")
    leakage = _float(leak) * units["leakage"] if leak is not None else None
    if leakage is None:
        values = [_float(g.get("value")) for g in group.get_groups("leakage_power")]
        leakage = sum(values) / len(values) * units["leakage"] if values else None
    seq = tuple(_sequential(g, kind) for kind in ("ff", "latch")
                for g in group.get_groups(kind))
    tables = group.get_groups("statetable")
    table = None
    if tables and len(tables[0].args) == 2 and tables[0].get("table") is not None:
        st = tables[0]
        table = Statetable(tuple(_str(st.args[0]).split()), tuple(_str(st.args[1]).split()),
                           _str(st["table"]).replace("\\\n", " ").replace("\\", " "))
    cg = group.get("clock_gating_integrated_cell")
    return Cell(_str(group.args[0]), _float(group.get("area")), inputs, outputs, pins,
                leakage, seq, bool(tables), table, _str(cg) if cg is not None else None)


def _distill(lib: Any) -> dict[str, Any]:
    """What rcm_gen uses of a parsed library, in its units (pF, ns, pJ, nW, V)."""
    cap_unit = lib.get("capacitive_load_unit")
    if isinstance(cap_unit, list) and len(cap_unit) == 2:
        cap_si = float(_str(cap_unit[0])) * _unit(_str(cap_unit[1]), "f")
    elif cap_unit is not None and not isinstance(cap_unit, list):
        cap_si = _unit(_str(cap_unit), "f")
    else:
        cap_si = 1e-12
    volt_si = _unit(_str(lib.get("voltage_unit", "1V")), "V")
    time_si = _unit(_str(lib.get("time_unit", "1ns")), "s")
    leak_si = _unit(_str(lib.get("leakage_power_unit", "1nW")), "W")
    units = {"cap": cap_si / 1e-12, "time": time_si / 1e-9,
             # internal power tables are energies in capacitance x voltage^2 units
             "energy": cap_si * volt_si ** 2 / 1e-12, "leakage": leak_si / 1e-9}
    voltage = _float(lib.get("nom_voltage"), 0.0) * volt_si
    default_oc = lib.get("default_operating_conditions")
    for oc in lib.get_groups("operating_conditions"):
        if default_oc is None or _str(oc.args[0]) == _str(default_oc):
            voltage = _float(oc.get("voltage"), voltage) * volt_si
            break
    templates = _templates(lib)
    cells = {}
    for g in lib.get_groups("cell"):
        cell = _cell(g, templates, units)
        cells[cell.name] = cell
    wire_loads = {}
    for wl in lib.get_groups("wire_load"):
        table = {}
        for fl in wl.get_attributes("fanout_length"):
            fo, length = _numbers(fl)[:2] if isinstance(fl, list) else _numbers(fl)
            table[int(fo)] = float(length)
        wire_loads[_str(wl.args[0])] = {
            "capacitance": _float(wl.get("capacitance")) * units["cap"],
            "slope": _float(wl.get("slope")), "fanout_length": table}
    dwl = lib.get("default_wire_load")
    nominal = {key: (None if lib.get(key) is None else _float(lib.get(key)))
               for key in ("nom_voltage", "nom_temperature")}
    return {"name": _str(lib.args[0]), "voltage": voltage, "cells": cells,
            "wire_loads": wire_loads, "default_wire_load": _str(dwl) if dwl else None,
            **nominal}


def _to_json(obj: Any) -> Any:
    if isinstance(obj, (Table, PowerArc, TimingArc, Pin, Sequential, Statetable, Cell)):
        return {k: _to_json(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_json(v) for v in obj]
    return obj


def _table_from(d: dict[str, Any] | None) -> Table | None:
    if d is None:
        return None
    return Table(tuple(d["variables"]), tuple(tuple(a) for a in d["index"]),
                 tuple(d["values"]))


def _cell_from(d: dict[str, Any]) -> Cell:
    pins = {}
    for name, p in d["pins"].items():
        pins[name] = Pin(
            p["name"], p["direction"], p["capacitance"], p["function"], p["three_state"],
            p["clock"],
            tuple(PowerArc(a["related"], a["when"], _table_from(a["rise"]),
                           _table_from(a["fall"])) for a in p["power"]),
            tuple(TimingArc(a["related"], a["sense"], _table_from(a["rise"]),
                            _table_from(a["fall"])) for a in p["timing"]),
            p.get("state_function"))
    st = d.get("table")
    return Cell(d["name"], d["area"], tuple(d["inputs"]), d["outputs"], pins,
                d["leakage_nw"], tuple(Sequential(**s) for s in d["sequential"]),
                d["statetable"],
                Statetable(tuple(st["inputs"]), tuple(st["nodes"]), st["table"]) if st else None,
                d.get("clock_gating"))


def _parse(text: str, option: str, src: Path) -> dict[str, Any]:
    from liberty.parser import parse_liberty

    try:
        return _distill(parse_liberty(text))
    except Exception as exc:  # the parser raises many kinds; all mean a bad file
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UserError(f"{option} {str(src)!r}: cannot parse the liberty ({reason})"
                        ) from None


def load_liberty(path: str | os.PathLike[str], option: str = "--liberty") -> Liberty:
    """Read and check a liberty file (plain or ``.gz``); :class:`UserError` naming the
    option and the file if it is missing, unreadable or not a liberty library."""
    src = Path(path)
    if not src.is_file():
        raise UserError(f"{option} {str(src)!r}: file not found")
    try:
        raw = src.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode(
            "utf-8", errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"{option} {str(src)!r}: cannot read ({exc})") from None
    lib = re.search(r'^\s*library\s*\(\s*"?([^")\s]+)"?\s*\)\s*\{', text[:200000], re.M)
    if not lib:
        raise UserError(f"{option} {str(src)!r}: not a liberty library (no "
                        "'library (NAME) {' group)")
    digest = hashlib.sha256(raw).hexdigest()
    stem = src.name.removesuffix(".gz")
    memo = cache_dir() / "liberty" / f"{digest[:16]}-{stem}.v{_CACHE_FORMAT}.json"
    data = None
    if memo.exists():
        try:
            data = json.loads(memo.read_text())
            data["cells"] = {n: _cell_from(c) for n, c in data["cells"].items()}
            for wl in data["wire_loads"].values():
                wl["fanout_length"] = {int(k): v for k, v in wl["fanout_length"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            data = None
    if data is None:
        data = _parse(text, option, src)
        if data["cells"]:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(_to_json(data)))
            os.replace(tmp, memo)
    if not data["cells"]:
        raise UserError(f"{option} {str(src)!r}: liberty library {lib.group(1)!r} has no cells")
    if raw[:2] == b"\x1f\x8b":
        plain = cache_dir() / "liberty" / f"{digest[:16]}-{stem}"
        if not plain.exists():
            plain.parent.mkdir(parents=True, exist_ok=True)
            tmp = plain.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            os.replace(tmp, plain)
    else:
        plain = src.resolve()
    return Liberty(src, plain, data["name"], data["cells"], data["voltage"],
                   data["wire_loads"], data["default_wire_load"], digest,
                   data.get("nom_voltage"), data.get("nom_temperature"))
