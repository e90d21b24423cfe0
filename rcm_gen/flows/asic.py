"""ASIC flow: Yosys synthesis onto a liberty library, then OpenSTA static timing.

The design keeps its hierarchy through synthesis, so that the area of each Amaranth
submodule is known and can be attributed to a group (:func:`group_of`).  Every design,
the fixed baseline included, is synthesized with ``synth -booth``: the best multiplier
option the flow has, so that comparisons against the baseline are fair.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
import subprocess
import time
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, UserError
from ..generate import to_verilog, top_name
from ..tools import require_executable, tool_versions
from .liberty import Cell, Liberty, load_liberty
from .yosys import run_yosys

__all__ = [
    "AREA_GROUPS",
    "CONSTRAINT_FILES",
    "CONSTRAINT_KEYS",
    "asic_constraints",
    "constraints_file",
    "design_top",
    "group_of",
    "instance_counts",
    "library_cells",
    "load_constraints",
    "parse_sta",
    "parse_stat",
    "run_asic",
]

#: Area groups of a report, in print order.
AREA_GROUPS = ("multipliers", "accumulators", "buffers", "control")

_NUMBERS = ("clock_ns", "input_delay_ns", "output_delay_ns", "output_load",
            "input_transition_ns", "wire_cap_per_fanout")
_CELLS = ("driving_cell", "tie_cell", "buffer_cell")
#: Keys of ``rcm_gen/flows/data/asic.toml`` that a run can override.
CONSTRAINT_KEYS = (*_NUMBERS, "liberty", *_CELLS, "dont_use", "wire_load")


#: Constraint files shipped with the package (``rcm_gen/flows/data/``), in the order
#: their contents enter a run's cache key.
CONSTRAINT_FILES = ("asic.toml", "fpga.toml")


def constraints_file(name: str) -> Traversable:
    """The shipped constraint file ``name`` (one of :data:`CONSTRAINT_FILES`), found in
    the installed package, editable or not."""
    if name not in CONSTRAINT_FILES:
        raise ValueError(f"Constraint file must be one of {', '.join(CONSTRAINT_FILES)}, "
                         f"not {name!r}")
    return resources.files("rcm_gen.flows").joinpath("data", name)


def load_constraints(name: str) -> dict[str, Any]:
    """The contents of the shipped constraint file ``name`` (TOML)."""
    return tomllib.loads(constraints_file(name).read_text())


def asic_constraints(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ASIC constraints of ``rcm_gen/flows/data/asic.toml`` with ``overrides`` applied.

    Parameters
    ----------
    overrides : dict, optional
        Values for any of :data:`CONSTRAINT_KEYS`; ``None`` values are ignored.  The cell
        names (``driving_cell``, ``tie_cell``, ``buffer_cell``) and ``dont_use`` (a list
        of cell-name patterns) replace those the library section or the liberty itself
        would give.

    Raises
    ------
    UserError
        An unknown key, a value of the wrong type, a period that is not greater than 0,
        or a negative delay or load.
    """
    data = load_constraints("asic.toml")
    out: dict[str, Any] = {k: data.get(k) for k in CONSTRAINT_KEYS}
    out["libraries"] = data.get("libraries", {})
    if overrides is not None and not isinstance(overrides, dict):
        raise TypeError(f"ASIC constraints must be a dict, not {overrides!r}")
    for key, value in (overrides or {}).items():
        if key not in CONSTRAINT_KEYS:
            raise UserError(f"ASIC constraint must be one of {', '.join(CONSTRAINT_KEYS)}, "
                            f"not {key!r}")
        if value is not None:
            out[key] = value
    for key in _NUMBERS:
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise UserError(f"ASIC constraint {key} must be a finite number, not {value!r}")
    if out["clock_ns"] <= 0:
        raise UserError(f"clock period must be greater than 0 ns, not {out['clock_ns']!r}")
    for key in _NUMBERS[1:]:
        if out[key] < 0:
            raise UserError(f"ASIC constraint {key} must not be negative, not {out[key]!r}")
    for key in ("liberty", "wire_load", *_CELLS):
        if out[key] is not None and not isinstance(out[key], str):
            raise UserError(f"ASIC constraint {key} must be a string, not {out[key]!r}")
    dont_use = out["dont_use"]
    if dont_use is not None and (not isinstance(dont_use, list)
                                 or not all(isinstance(p, str) and p for p in dont_use)):
        raise UserError(f"ASIC constraint dont_use must be a list of cell-name patterns, not "
                        f"{dont_use!r}")
    if not out["liberty"]:
        raise UserError("ASIC constraint liberty must name a library or a file, not "
                        f"{out['liberty']!r}")
    return out


def _resolve_liberty(cons: dict[str, Any]) -> tuple[Liberty, dict[str, Any]]:
    """The liberty to use and its settings (the library's section of the constraints,
    found by library name or by file name)."""
    name = str(cons["liberty"])
    libs = cons["libraries"]
    if name in libs and "path" in libs[name]:
        settings = libs[name]
        path = Path(settings["path"])
        if not path.is_file():
            raise UserError(f"liberty {name!r} is not installed ({path} missing): "
                            f"{settings.get('install', 'install it or give --liberty FILE')}")
        return load_liberty(path, option=f"liberty {name}"), settings
    lib = load_liberty(name)
    return lib, libs.get(Path(name).name, {})


def _function(cell: Cell, pin: str) -> str:
    return cell.outputs[pin].strip().strip('"').replace("1'b", "").strip("()").strip()


def _cell(lib: Liberty, name: str, role: str) -> Cell:
    cell = lib.cells.get(name)
    if cell is None:
        raise UserError(f"{role} {name!r} is not a cell of liberty {lib.name!r}")
    return cell


def _usable(name: str, dont_use: list[str]) -> bool:
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in dont_use)


def library_cells(lib: Liberty, settings: dict[str, Any]) -> dict[str, Any]:
    """The cells the flow needs from ``lib``: tie-high and tie-low (cell, pin), a buffer
    (cell, input pin, output pin) and the cell that drives the inputs in timing.

    Each comes from ``settings`` (``tie_cell``, ``buffer_cell``, ``driving_cell``) when
    named there, otherwise from the liberty, among the cells that no ``dont_use`` pattern
    of ``settings`` matches: the smallest cells without inputs whose output function is
    the constant 1 or 0, and the smallest one-input cell whose output function is that
    input.  A library without tie cells keeps constants as constant nets; one without a
    buffer keeps plain connections as ``assign`` statements.

    Raises
    ------
    UserError
        A configured cell that the library lacks or that has no such function.
    """
    dont_use = list(settings.get("dont_use") or [])
    hi = lo = None
    buffer: tuple[str, str, str] | None = None
    for cell in sorted(lib.cells.values(), key=lambda c: (c.area, c.name)):
        if not _usable(cell.name, dont_use):
            continue
        for pin in sorted(cell.outputs):
            fn = _function(cell, pin)
            if not cell.inputs and fn == "1" and hi is None:
                hi = (cell.name, pin)
            elif not cell.inputs and fn == "0" and lo is None:
                lo = (cell.name, pin)
            elif len(cell.inputs) == 1 and len(cell.outputs) == 1 and fn == cell.inputs[0] \
                    and buffer is None:
                buffer = (cell.name, cell.inputs[0], pin)
    if settings.get("tie_cell"):
        cell = _cell(lib, settings["tie_cell"], "tie cell")
        consts = {_function(cell, p): p for p in cell.outputs}
        if cell.inputs or not ({"0", "1"} & consts.keys()):
            raise UserError(f"tie cell {cell.name!r} of liberty {lib.name!r} has no constant "
                            "output")
        hi = (cell.name, consts["1"]) if "1" in consts else hi
        lo = (cell.name, consts["0"]) if "0" in consts else lo
    if settings.get("buffer_cell"):
        cell = _cell(lib, settings["buffer_cell"], "buffer cell")
        outs = [p for p in cell.outputs if len(cell.inputs) == 1
                and _function(cell, p) == cell.inputs[0]]
        if not outs:
            raise UserError(f"buffer cell {cell.name!r} of liberty {lib.name!r} is not a "
                            "buffer (one input, output function equal to it)")
        buffer = (cell.name, cell.inputs[0], outs[0])
    driving = settings.get("driving_cell")
    if driving:
        _cell(lib, driving, "driving cell")
    else:
        driving = buffer[0] if buffer else None
    return {"tie_hi": hi, "tie_lo": lo, "buffer": buffer, "driving_cell": driving,
            "dont_use": dont_use}


def instance_counts(modules: dict[str, Any]) -> dict[str, int]:
    """How many times each module of Yosys ``stat -json`` output is instantiated in the
    design (a module no other instantiates counts once)."""
    names = {n.lstrip("\\"): n for n in modules}
    children: dict[str, dict[str, int]] = {
        n.lstrip("\\"): {c.lstrip("\\"): int(k) for c, k in m.get("num_cells_by_type", {}).items()
                         if c.lstrip("\\") in names}
        for n, m in modules.items()}
    parents = {c for kids in children.values() for c in kids}
    counts = dict.fromkeys(names, 0)

    def visit(name: str, times: int, depth: int = 0) -> None:
        if depth > len(names):
            raise ValueError(f"module hierarchy has a cycle through {name!r}")
        counts[name] += times
        for child, k in children[name].items():
            visit(child, times * k, depth + 1)

    for root in names.keys() - parents:
        visit(root, 1)
    return counts


def group_of(module: str, top: str) -> str:
    """Area group of a synthesized module, from its hierarchical name.

    Amaranth names each submodule's Verilog module after its instance path
    (``rcm_tile.mac0.multiplier``).  In a MAC (top ``rcm_mac``) the ``multiplier``
    instance is *multipliers* and the rest of the MAC *accumulators*; in a tile, the
    ``multiplier`` inside each ``mac<i>`` instance is *multipliers*, the rest of each
    ``mac<i>`` *accumulators*, instances whose names end in ``_buf`` *buffers*, and
    everything else *control*.
    """
    name = module.lstrip("\\")
    path = name[len(top) + 1:].split(".") if name.startswith(top + ".") else []
    if top == "rcm_mac":
        return "multipliers" if path[:1] == ["multiplier"] else "accumulators"
    if path and re.fullmatch(r"mac\d+", path[0]):
        return "multipliers" if path[1:2] == ["multiplier"] else "accumulators"
    if path and path[0].endswith("_buf"):
        return "buffers"
    return "control"


def parse_stat(text: str, top: str, log: Path | str) -> tuple[float, dict[str, float], int]:
    """Total area, area per group and leaf-cell count of ``top`` from the text of Yosys
    ``stat -json -liberty``; :class:`ToolFailed` naming ``log`` if it cannot be read.

    Each module's own area is its area less that of its submodule instances.
    """
    try:
        modules = json.loads(text)["modules"]
        total_by_module = {name.lstrip("\\"): float(m["area"]) for name, m in modules.items()}
        times = instance_counts(modules)
        groups = dict.fromkeys(AREA_GROUPS, 0.0)
        cells = 0
        for name, m in modules.items():
            own = float(m["area"])
            own_cells = int(m["num_cells"])
            for cell_type, count in m.get("num_cells_by_type", {}).items():
                sub = cell_type.lstrip("\\")
                if sub in total_by_module:
                    own -= count * total_by_module[sub]
                    own_cells -= count
            groups[group_of(name, top)] += own * times[name.lstrip("\\")]
            cells += own_cells * times[name.lstrip("\\")]
        total = total_by_module[top]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolFailed(f"cannot read the area of {top} from Yosys stat "
                         f"({type(exc).__name__}: {exc}); log: {log}") from None
    if not total > 0 or cells <= 0:
        raise ToolFailed(f"Yosys reported no area for {top}; log: {log}")
    return total, groups, cells


def _sta_script(cons: dict[str, Any], lib: Liberty, netlist: Path, top: str,
                driving_cell: str | None, clock: str = "clk") -> str:
    inputs = f"[delete_from_list [all_inputs] [get_ports {clock}]]"
    lines = [
        f"read_liberty {lib.path}",
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {cons['clock_ns']} [get_ports {clock}]",
        f"set_input_delay {cons['input_delay_ns']} -clock clk {inputs}",
        f"set_output_delay {cons['output_delay_ns']} -clock clk [all_outputs]",
        f"set_load {cons['output_load']} [all_outputs]",
    ]
    if driving_cell:
        lines.append(f"set_driving_cell -lib_cell {driving_cell} {inputs}")
    lines += [
        "report_checks -path_delay max -digits 4",
        "report_worst_slack -digits 4",
        "report_tns -digits 4",
    ]
    return "\n".join(lines) + "\n"


def parse_sta(text: str, log: Path | str) -> dict[str, Any]:
    """Worst slack, TNS and the critical path from an OpenSTA log (the output of
    ``report_checks``, ``report_worst_slack``, ``report_tns``); :class:`ToolFailed`
    naming ``log`` if the log reports an error or lacks one of them."""
    def grab(pattern: str, what: str) -> str:
        m = re.search(pattern, text, re.M)
        if not m:
            raise ToolFailed(f"OpenSTA report has no {what}; log: {log}")
        return m.group(1)

    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolFailed(f"OpenSTA failed ({errors[0]}); log: {log}")
    number = r"(-?[0-9]+(?:\.[0-9]+)?)"
    return {
        "worst_slack": float(grab(rf"^worst slack\s+{number}\s*$", "worst slack")),
        "tns": float(grab(rf"^tns\s+{number}\s*$", "TNS")),
        "startpoint": grab(r"^Startpoint:\s*(\S.*)$", "critical path startpoint").strip(),
        "endpoint": grab(r"^Endpoint:\s*(\S.*)$", "critical path endpoint").strip(),
        "arrival": float(grab(rf"^\s*{number}\s+data arrival time", "data arrival time")),
    }


def design_top(config: Any) -> str:
    """Top module name of a design point or of a user design."""
    from .user_design import UserDesign

    return config.top if isinstance(config, UserDesign) else top_name(config)


def _design_sources(config: Any, out_dir: Path) -> list[str]:
    """Yosys commands that read the design: the generated Verilog (written to
    ``out_dir``) or the user's files (SystemVerilog where Yosys reads it)."""
    from .user_design import UserDesign

    if isinstance(config, UserDesign):
        return [f"read_verilog -sv {f}" for f in config.files]
    vfile = out_dir / f"{top_name(config)}.v"
    vfile.write_text(to_verilog(config))
    return [f"read_verilog {vfile.resolve()}"]


def _yosys_script(top: str, reads: list[str], lib: Liberty, clock_ns: float,
                  cells: dict[str, Any], abc_constr: Path, stat_file: Path, netlist: Path
                  ) -> list[str]:
    avoid = "".join(f" -dont_use {pattern}" for pattern in cells["dont_use"])
    script = [
        *reads,
        f"synth -top {top} -booth",
        f"dfflibmap{avoid} -liberty {lib.path}",
        f"abc{avoid} -liberty {lib.path} -D {int(round(clock_ns * 1000))} "
        f"-constr {abc_constr.resolve()}",
        "opt_clean",
        "setundef -zero",
    ]
    hi, lo = cells["tie_hi"], cells["tie_lo"]
    if hi and lo:
        script.append(f"hilomap -singleton -hicell {hi[0]} {hi[1]} -locell {lo[0]} {lo[1]}")
    script += ["splitnets", "opt_clean -purge"]
    if cells["buffer"]:
        # plain connections (port to port, net to port) become buffer cells, so that the
        # netlist is made of library cells only and their delay is timed
        script.append("insbuf -buf {} {} {}".format(*cells["buffer"]))
    script += [
        f"tee -q -o {stat_file.resolve()} stat -json -liberty {lib.path}",
        f"stat -liberty {lib.path}",
        f"write_verilog -noattr -noexpr -nohex -nodec {netlist.resolve()}",
    ]
    return script


def run_asic(config: Any, out_dir: str | Path, *, liberty: str | None = None,
             clock_ns: float | None = None, constraints: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Synthesize ``config`` onto a liberty library and time it; the report dict.

    ``liberty`` and ``clock_ns`` override the same keys of ``constraints``, which
    override ``rcm_gen/flows/data/asic.toml``.  The critical path is the clock period less the
    worst slack (the shortest period the mapped netlist meets, as OpenSTA times it) and
    Fmax its inverse: ``1000 / (period - slack)``; WNS is ``min(0, slack)``.

    Raises
    ------
    UserError
        Bad constraints or liberty, or OpenSTA not installed.
    ToolFailed
        Yosys or OpenSTA failed, or their reports cannot be read (the message names the
        log).
    """
    started = time.perf_counter()
    given = {"clock_ns": clock_ns, "liberty": liberty}
    cons = asic_constraints({**(constraints or {}),
                             **{k: v for k, v in given.items() if v is not None}})
    lib, lib_settings = _resolve_liberty(cons)
    cells = library_cells(lib, {**lib_settings, **{k: cons[k] for k in (*_CELLS, "dont_use")
                                                   if cons[k] is not None}})
    sta_exe = require_executable("sta")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = design_top(config)
    reads = _design_sources(config, out_dir)
    netlist = out_dir / "netlist.v"
    stat_file = out_dir / "stat.json"
    driving = cells["driving_cell"]
    # ABC maps each module on its own: tell it what drives the module's inputs and what
    # its outputs drive, so that it sizes and buffers nets that cross module boundaries.
    abc_constr = out_dir / "abc.constr"
    abc_constr.write_text((f"set_driving_cell {driving}\n" if driving else "")
                          + f"set_load {cons['output_load']}\n")
    synth_log = out_dir / "synth.log"
    run_yosys(_yosys_script(top, reads, lib, float(cons["clock_ns"]), cells, abc_constr,
                            stat_file, netlist), synth_log)
    try:
        stat_text = stat_file.read_text()
    except OSError as exc:
        raise ToolFailed(f"Yosys wrote no area report ({exc.strerror}); log: {synth_log}"
                         ) from None
    total, groups, n_cells = parse_stat(stat_text, top, synth_log)
    # OpenSTA's Verilog reader rejects `signed` declarations; a gate-level netlist has no
    # arithmetic, so they carry no meaning there (user designs may declare signed ports)
    text = netlist.read_text()
    plain = re.sub(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", r"\1", text,
                   flags=re.M)
    if plain != text:
        netlist.write_text(plain)

    sta_tcl = out_dir / "sta.tcl"
    sta_tcl.write_text(_sta_script(cons, lib, netlist.resolve(), top, driving,
                                   getattr(config, "clock", "clk")))
    sta_log = out_dir / "sta.log"
    try:
        proc = subprocess.run([sta_exe, "-no_init", "-exit", str(sta_tcl)],
                              capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"OpenSTA did not finish within an hour; log: {sta_log}") from None
    sta_log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise ToolFailed(f"OpenSTA failed (exit status {proc.returncode}); log: {sta_log}")
    timing = parse_sta(proc.stdout + proc.stderr, sta_log)
    period = float(cons["clock_ns"])
    critical = period - timing["worst_slack"]
    if critical <= 0:
        raise ToolFailed(f"OpenSTA slack {timing['worst_slack']} exceeds the period; "
                         f"log: {sta_log}")
    return {
        "target": "asic",
        "top": top,
        "area_um2": total,
        "area_by_group": groups,
        "cells": n_cells,
        "clock_ns": period,
        "critical_path_ns": critical,
        "critical_path": {"startpoint": timing["startpoint"], "endpoint": timing["endpoint"],
                          "arrival_ns": timing["arrival"]},
        "wns_ns": min(0.0, timing["worst_slack"]),
        "worst_slack_ns": timing["worst_slack"],
        "tns_ns": timing["tns"],
        "fmax_mhz": 1000.0 / critical,
        "liberty": {"name": lib.name, "path": str(lib.source),
                    "tie_cells": [list(c) if c else None
                                  for c in (cells["tie_hi"], cells["tie_lo"])],
                    "buffer_cell": cells["buffer"][0] if cells["buffer"] else None,
                    "driving_cell": driving, "dont_use": cells["dont_use"]},
        "constraints": {k: cons[k] for k in _NUMBERS},
        "config": config.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth", "yosys", "opensta"),
        "log": str(synth_log),
        "sta_log": str(sta_log),
        "netlist": str(netlist),
        "wall_s": time.perf_counter() - started,
    }
