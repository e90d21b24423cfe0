"""ASIC flow: Yosys synthesis onto a liberty library, then OpenSTA static timing.

The design keeps its hierarchy through synthesis, so that the area of each Amaranth
submodule is known and can be attributed to a group (:func:`group_of`).  Every design,
the fixed baseline included, is synthesized with ``synth -booth``: the best multiplier
option the flow has, so that comparisons against the baseline are fair.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
import resource
import shutil
import subprocess
import time
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, UserError
from ..generate import top_name
from ..tools import require_executable, tool_versions
from .clockgate import MIN_FLOPS, GatingCell, count_gating, gating_cell
from .clockgate import yosys_commands as clockgate_commands
from .liberty import Cell, Liberty, load_liberty
from .sta import parse_macro_paths, parse_sta, sta_script
from .yosys import run_yosys

__all__ = [
    "AREA_GROUPS",
    "HIERARCHY_MODES",
    "STA_MODES",
    "CONSTRAINT_FILES",
    "CONSTRAINT_KEYS",
    "asic_constraints",
    "check_sta_mode",
    "constraints_file",
    "design_top",
    "group_of",
    "instance_counts",
    "library_cells",
    "load_constraints",
    "parse_macro_paths",
    "parse_sta",
    "parse_stat",
    "run_asic",
]

#: Area groups of a report, in print order.
AREA_GROUPS = ("multipliers", "accumulators", "buffers", "control")

_NUMBERS = ("clock_ns", "input_delay_ns", "output_delay_ns", "output_load",
            "input_transition_ns", "wire_cap_per_fanout",
            "clock_tree_fanout", "clock_wire_cap_per_um", "placement_density")
_CELLS = ("driving_cell", "tie_cell", "buffer_cell", "clock_buffer")
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

    The Verilog rcm_gen generates names a module ``<top>__<kind>[_<variant>]`` or
    ``<parent>__<instance>`` (``rcm_tile__mac__multiplier``, ``rcm_tile__buffer_512x64``,
    ``rcm_tile__ff_block_64x64``; see :mod:`rcm_gen.hierarchy`); Amaranth's own backend
    after its instance path (``rcm_tile.col0.mac0.multiplier``).  In a MAC (top
    ``rcm_mac``) the ``multiplier`` instance is *multipliers* and the rest of the MAC
    *accumulators*; in a tile, a ``multiplier`` inside a MAC (``mac``, ``mac<i>``,
    ``mac<p>_<q>``) is *multipliers*, the rest of each MAC *accumulators*, the buffers
    (``buffer_*``, ``ff_block_*``, ``latch_block_*``; instances ``<name>_buf``, numbered
    per bank ``_buf<b>``
    / ``_buf<side>_<column>``) and what is in them *buffers*, and everything else
    *control*.
    """
    name = module.lstrip("\\")
    path = (name[len(top) + 2:].split("__") if name.startswith(top + "__")
            else name[len(top) + 1:].split(".") if name.startswith(top + ".") else [])
    if top == "rcm_mac":
        return "multipliers" if path[:1] == ["multiplier"] else "accumulators"
    for k, part in enumerate(path):
        if re.fullmatch(r"mac(\d+(_\d+)?)?", part):
            return "multipliers" if path[k + 1:k + 2] == ["multiplier"] else "accumulators"
        if re.fullmatch(r"\w+_buf(\d+(_\d+)?)?|(buffer|ff_block|latch_block)(_\w+)?", part):
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


def _map_script(lib: Liberty, clock_ns: float, cells: dict[str, Any], abc_constr: str,
                macro_liberties: tuple[Path, ...], stat_file: str, netlist: str,
                gating: list[str] | None = None) -> list[str]:
    """The Yosys commands after ``synth``: clock gating (``gating``, the commands of
    :func:`rcm_gen.flows.clockgate.yosys_commands`), cell mapping, constants, buffers,
    statistics and the netlist."""
    avoid = "".join(f" -dont_use {pattern}" for pattern in cells["dont_use"])
    script = [
        *(gating or []),
        f"dfflibmap{avoid} -liberty {lib.path}",
        f"abc{avoid} -liberty {lib.path} -D {int(round(clock_ns * 1000))} "
        f"-constr {abc_constr}",
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
    liberties = "".join(f" -liberty {p.resolve()}" for p in (lib.path, *macro_liberties))
    script += [
        f"tee -q -o {stat_file} stat -json{liberties}",
        f"stat{liberties}",
        f"write_verilog -noattr -noexpr -nohex -nodec {netlist}",
    ]
    return script


class Phases:
    """Wall and CPU time (this process's threads and the tools it waited for) of the
    phases of a run, each :meth:`lap` closing the phase named."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {}
        self._last = (time.perf_counter(), _cpu())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), _cpu())
        t = self.times.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
        t["wall_s"] += now[0] - self._last[0]
        t["cpu_s"] += now[1] - self._last[1]
        self._last = now


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


#: How a design is synthesized: ``hier`` (each distinct module once, cached, composed
#: with the hierarchy kept) or ``flat`` (the whole design in one run, flattened, so that
#: optimization crosses module boundaries; no area by group).
HIERARCHY_MODES = ("hier", "flat")
#: Bumped when the per-module synthesis changes in a way its cache key does not show.
_MODULE_FLOW_VERSION = 1


def cell_stubs(lib: Liberty, names: tuple[str, ...] | list[str]) -> str:
    """Black-box Verilog modules of the library cells ``names`` (a design that
    instantiates them, such as a latch memory its clock-gating cell, reads these)."""
    out = []
    for name in names:
        cell = lib.cells[name]
        ports = [*cell.inputs, *cell.outputs]
        out += ["(* blackbox *)", f"module {name} ({', '.join(ports)});",
                *(f"  input {p};" for p in cell.inputs),
                *(f"  output {p};" for p in cell.outputs), "endmodule", ""]
    return "\n".join(out)


def _instantiated_cells(text: str, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in names if re.search(rf"^\s*{re.escape(n)}\s", text, re.M))


def _flat(top: str, reads: list[str], lib: Liberty, cons: dict[str, Any],
          cells: dict[str, Any], abc_constr: Path, macro_liberties: tuple[Path, ...],
          out_dir: Path, gate: GatingCell | None = None, stubs: str = ""
          ) -> tuple[float, dict[str, float] | None, int, dict[str, int], Path, Path,
                     tuple[int, int] | None]:
    stat_file, netlist, log = out_dir / "stat.json", out_dir / "netlist.v", out_dir / "synth.log"
    script = [*(f"read_liberty -lib {p.resolve()}" for p in macro_liberties)]
    if stubs:
        (out_dir / "cells.v").write_text(stubs)
        script.append(f"read_verilog -lib {(out_dir / 'cells.v').resolve()}")
    script += [*reads, f"synth -top {top} -flatten -booth"]
    gating = None
    if gate is not None:
        module = None
        if gate.verilog:
            (out_dir / "clock_gate.v").write_text(gate.verilog)
            module = str((out_dir / "clock_gate.v").resolve())
        gating = clockgate_commands(gate, module)
    script += _map_script(lib, float(cons["clock_ns"]), cells, str(abc_constr.resolve()),
                          macro_liberties, str(stat_file.resolve()), str(netlist.resolve()),
                          gating)
    log_text = run_yosys(script, log)
    gated = count_gating(log_text) if gate is not None else None
    try:
        stat_text = stat_file.read_text()
    except OSError as exc:
        raise ToolFailed(f"Yosys wrote no area report ({exc.strerror}); log: {log}") from None
    total, _, n_cells = parse_stat(stat_text, top, log)
    try:
        by_type = json.loads(stat_text)["modules"]
        by_type = {k.lstrip("\\"): int(v) for k, v in
                   next(m for n, m in by_type.items() if n.lstrip("\\") == top)
                   ["num_cells_by_type"].items()}
    except (ValueError, KeyError, StopIteration) as exc:
        raise ToolFailed(f"cannot read the cells of {top} from Yosys stat ({exc}); "
                         f"log: {log}") from None
    return total, None, n_cells, by_type, netlist, log, gated


def _fanout_buffer(lib: Liberty, cells: dict[str, Any]) -> tuple[str, str, str] | None:
    """The buffer that drives high-fanout nets between modules: the largest one-input
    cell whose output is its input, not a clock buffer, that no ``dont_use`` pattern
    excludes (cell, input pin, output pin)."""
    found = []
    for cell in lib.cells.values():
        if len(cell.inputs) != 1 or len(cell.outputs) != 1 \
                or not _usable(cell.name, cells["dont_use"]):
            continue
        pin = next(iter(cell.outputs))
        if _function(cell, pin) == cell.inputs[0]:
            found.append(("clk" in cell.name.lower(), -cell.area, cell.name, pin))
    if not found:
        return None
    _, _, name, pin = min(found)
    return name, lib.cells[name].inputs[0], pin


def _hier(top: str, verilog: str, lib: Liberty, cons: dict[str, Any], cells: dict[str, Any],
          abc_text: str, macro_liberties: tuple[Path, ...], macro_names: tuple[str, ...],
          out_dir: Path, phases: Phases | None = None, gate: GatingCell | None = None,
          lib_cells: tuple[str, ...] = ()
          ) -> tuple[float, dict[str, float], int, dict[str, int], Path, Path, dict[str, Any],
                     dict[str, Any]]:
    """Each distinct module synthesized once (cached in ``<cache>/modules``), composed."""
    from ..tools import cache_dir, tool_versions
    from .hier import (
        buffer_fanouts,
        dedupe,
        instance_counts,
        output_fanouts,
        split_modules,
        synthesize_modules,
    )

    modules = split_modules(verilog)
    if top not in modules:
        raise ToolFailed(f"the Verilog of {top} has no module {top}")
    key_of, text_of = dedupe(modules)
    counts = instance_counts(modules, top)
    key_names: dict[str, list[str]] = {}
    for name in sorted(modules):
        if counts[name]:
            key_names.setdefault(key_of[name], []).append(name)
    lib_digest = hashlib.sha256(lib.path.read_bytes()).hexdigest()
    macro_digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in macro_liberties]
    settings = {"liberty": lib_digest, "macros": macro_digests, "clock_ns": cons["clock_ns"],
                "cells": {k: v for k, v in cells.items()}, "abc": abc_text,
                "yosys": tool_versions("yosys")["yosys"], "flow": _MODULE_FLOW_VERSION}
    # ABC maps each module on its own: an output that drives many submodule inputs once
    # composed (a buffer's read data broadcast to every MAC) is given the load of them all,
    # so that ABC sizes and buffers its driver
    fanouts = output_fanouts(modules)
    jobs = []
    for key, names in key_names.items():
        mod = modules[names[0]]
        text = text_of[key]
        fanout = max(fanouts[n] for n in names)
        abc = abc_text if fanout == 1 else abc_text.replace(
            f"set_load {cons['output_load']}\n", f"set_load {cons['output_load'] * fanout:g}\n")
        children = "".join(text_of[key_of[c]] for c, _ in mod.children)
        used = tuple(p for p, n in zip(macro_liberties, macro_names, strict=True)
                     if re.search(rf"^\s*{re.escape(n)}\s", text, re.M))
        script = [*(f"read_liberty -lib {p.resolve()}" for p in used)]
        # library cells the Verilog instantiates (a latch memory's clock-gating cell)
        stubs = cell_stubs(lib, _instantiated_cells(text, lib_cells))
        if stubs:
            script.append("read_verilog -lib {dir}/cells.v")
        if children:
            script.append("read_verilog -lib {dir}/children.v")
        # A memory's flip-flops and multiplexers gain nothing from synth's own ABC run
        # before the liberty mapping (measured: smaller without it, and 3x faster).
        memory = re.search(r"^\s*reg\b[^;]*\]\s*\S+\s*\[[^;]*;", text, re.M)
        script += ["read_verilog {dir}/module.v", f"hierarchy -top M_{key}",
                   f"synth -top M_{key} -booth" + (" -noabc" if memory else "")]
        gating = None
        files = {"module.v": text, "children.v": children, "abc.constr": abc}
        if gate is not None:
            gating = clockgate_commands(gate, "{dir}/clock_gate.v" if gate.verilog else None)
            if gate.verilog:
                files["clock_gate.v"] = gate.verilog
        script += _map_script(lib, float(cons["clock_ns"]), cells, "{dir}/abc.constr", used,
                              "{stat}", "{netlist}", gating)
        jobs.append({"key": key, "script": script, "settings": {**settings, "abc": abc},
                     "size": len(text),
                     "files": {**files, **({"cells.v": stubs} if stubs else {})}})
    (out_dir / "synth.ys").write_text("".join(
        f"# module {key_names[j['key']][0]} (M_{j['key']}), in {{dir}}: module.v, children.v "
        "(black boxes), abc.constr\n" + "\n".join(j["script"]) + "\n\n"
        for j in sorted(jobs, key=lambda j: key_names[j["key"]][0])))
    if phases is not None:
        phases.lap("composition")
    try:
        results = synthesize_modules(jobs, cache_dir() / "modules")
    except ToolFailed as exc:
        # the failed module's log is kept in the run folder, where the message points
        text = str(exc)
        where = text.rfind("; log: ")
        log = out_dir / "synth.log"
        if where >= 0 and Path(text[where + 7:]).is_file():
            shutil.copyfile(text[where + 7:], log)
            text = text[:where] + f"; log: {log}"
        raise type(exc)(text) from None
    if phases is not None:
        phases.lap("synthesis")

    # own area, cells and cells by type of each distinct module
    own: dict[str, tuple[float, int, dict[str, int]]] = {}
    for key, res in results.items():
        log = res["log"]
        try:
            stats = json.loads(res["stat"])["modules"]
            m = next(v for n, v in stats.items() if n.lstrip("\\") == f"M_{key}")
            by_type = {t.lstrip("\\"): int(c) for t, c in m.get("num_cells_by_type", {}).items()}
            subs = sum(c for t, c in by_type.items() if t.startswith("M_"))
            own[key] = (float(m.get("area", 0.0)), int(m["num_cells"]) - subs,
                        {t: c for t, c in by_type.items() if not t.startswith("M_")})
        except (ValueError, KeyError, TypeError, StopIteration) as exc:
            raise ToolFailed(f"cannot read the area of module M_{key} from Yosys stat "
                             f"({type(exc).__name__}: {exc}); log: {log}") from None
    # nets that fan out to many submodules, or from a module's inputs to many cells, get
    # buffer trees (each module was mapped on its own, its drivers sized for one load)
    netlists = {f"M_{k}": Path(results[k]["netlist"]).read_text() for k in key_names}
    fanout_cell = _fanout_buffer(lib, cells)
    added: dict[str, int] = {}
    if fanout_cell is not None:
        pins = {c.name: {p.name: (p.direction, p.capacitance) for p in c.pins.values()
                         if not p.clock} for c in lib.cells.values()}
        netlists, added = buffer_fanouts(netlists, fanout_cell, cells=pins)
        for name, count in added.items():
            if count:
                key = name[2:]
                area, ncells, by_type = own[key]
                by_type = {**by_type, fanout_cell[0]: by_type.get(fanout_cell[0], 0) + count}
                own[key] = (area + count * lib.cells[fanout_cell[0]].area, ncells + count,
                            by_type)
    groups = dict.fromkeys(AREA_GROUPS, 0.0)
    total, n_cells = 0.0, 0
    by_type_all: dict[str, int] = {}
    for name, times in counts.items():
        if not times:
            continue
        area, ncells, by_type = own[key_of[name]]
        groups[group_of(name, top)] += area * times
        total += area * times
        n_cells += ncells * times
        for t, c in by_type.items():
            by_type_all[t] = by_type_all.get(t, 0) + c * times
    if not total > 0 or n_cells <= 0:
        raise ToolFailed(f"Yosys reported no area for {top}; log: {out_dir / 'synth.log'}")

    # the composed netlist: every distinct module once, named after its first instance
    rename = {f"M_{key}": (names[0] if re.fullmatch(r"[A-Za-z_][\w$]*", names[0])
                          else "\\" + names[0] + " ")
              for key, names in key_names.items()}
    pattern = re.compile(r"\bM_[0-9a-f]{20}\b")
    used = sum(1 for c in counts.values() if c)
    parts = [f"// {top}: {len(key_names)} distinct modules of {used} instantiated, each "
             "synthesized once (rcm_gen.flows.hier)\n"]
    for key in sorted(key_names, key=lambda k: key_names[k][0]):
        parts.append(pattern.sub(lambda m: rename[m.group(0)], netlists[f"M_{key}"]))
    netlist = out_dir / "netlist.v"
    netlist.write_text("".join(parts))
    log = out_dir / "synth.log"
    log.write_text("".join(
        f"module {key_names[k][0]} (M_{k}, instances: {', '.join(key_names[k])}): "
        f"{'cached' if results[k]['cached'] else 'synthesized'} "
        f"({results[k]['wall_s'] or 0:.1f} s), log {results[k]['log']}\n"
        for k in sorted(key_names, key=lambda k: key_names[k][0])))
    gated = None
    if gate is not None:
        gates = flops = 0
        for name, times in counts.items():
            if times:
                module_log = results[key_of[name]]["log"]
                try:
                    g, f = count_gating(Path(module_log).read_text(errors="replace"))
                except (OSError, ValueError) as exc:
                    raise ToolFailed(f"cannot read the clock gating of module {name} "
                                     f"({exc}); log: {module_log}") from None
                gates += g * times
                flops += f * times
        gated = (gates, flops)
    info = {"instances": sum(counts.values()), "distinct": len(key_names), "gated": gated,
            "fanout_buffers": {"cell": fanout_cell[0] if fanout_cell else None,
                               "count": sum(added.get(f"M_{key_of[n]}", 0) * t
                                            for n, t in counts.items() if t)},
            "synthesized": sum(1 for r in results.values() if not r["cached"])}
    # what timing with block models needs: each distinct module's netlist, children, area
    # (its own and its submodules') and the macros it instantiates
    children = {key: tuple(sorted({key_of[c] for c, _ in modules[names[0]].children}))
                for key, names in key_names.items()}
    area_of: dict[str, float] = {}
    for name in _order_children_first(modules, key_names, key_of):
        key = key_of[name]
        area_of[key] = own[key][0] + sum(k * area_of[key_of[c]]
                                         for c, k in modules[name].children)
    parts = {"top": key_of[top], "names": key_names, "netlists": netlists, "counts": counts,
             "children": children, "areas": area_of,
             "cells": {key: own[key][1] for key in key_names},
             "macros": {key: tuple((n, p) for n, p in zip(macro_names, macro_liberties,
                                                          strict=True)
                                   if re.search(rf"^\s*{re.escape(n)}\s", text, re.M))
                        for key, text in ((k[2:], t) for k, t in netlists.items())}}
    return total, groups, n_cells, by_type_all, netlist, log, info, parts


def _order_children_first(modules: dict[str, Any], key_names: dict[str, list[str]],
                          key_of: dict[str, str]) -> list[str]:
    """One module name per distinct module, each after the modules it instantiates."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if key_of[name] in seen:
            return
        for child, _ in modules[name].children:
            visit(child)
        seen.add(key_of[name])
        done.append(name)

    for names in key_names.values():
        visit(names[0])
    return done


def latch_cells(lib: Liberty, dont_use: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The latch cells of ``lib`` (liberty ``latch`` group, no clear or preset) that no
    ``dont_use`` pattern excludes, smallest first."""
    found = [c for c in lib.cells.values()
             if len(c.sequential) == 1 and c.sequential[0].kind == "latch"
             and not c.sequential[0].clear and not c.sequential[0].preset
             and _usable(c.name, list(dont_use))]
    return [c.name for c in sorted(found, key=lambda c: (c.area, c.name))]


def memory_platform(config: Any, lib: Liberty, dont_use: list[str] | tuple[str, ...] = ()
                    ) -> Any:
    """The platform a design point is elaborated with for synthesis onto ``lib``
    (:func:`rcm_gen.generate.platform_for`): for latch memories, the library's
    integrated clock-gating cell (:func:`rcm_gen.flows.clockgate.gating_cell`; a
    library without one gets a latch and an AND gate, which Yosys maps to its cells).

    Raises
    ------
    UserError
        ``memory=latch`` on a liberty without latch cells, or without an AND gate to
        gate the clock with; a bad or mismatched macro library.
    """
    from ..generate import platform_for

    kind = getattr(config, "memory", None)
    gate = None
    if kind in ("latch", "auto"):
        from .clockgate import gating_cell

        latches = latch_cells(lib, dont_use)
        try:
            found = gating_cell(lib, dont_use) if latches else None
        except UserError:
            found = None
        if kind == "latch" and found is None:
            what = "latch cells" if not latches else "clock-gating cell or AND gate"
            raise UserError(f"memory=latch needs latch cells and a clock gate, but liberty "
                            f"{lib.name!r} has no {what}: use memory=ff")
        if found is not None and found.kind == "integrated":
            gate = (found.cell, found.clock, found.enable, found.gated)
    return platform_for(config, lib.corner, gate=gate)


def design_top(config: Any) -> str:
    """Top module name of a design point or of a user design."""
    from .user_design import UserDesign

    return config.top if isinstance(config, UserDesign) else top_name(config)


def run_asic(config: Any, out_dir: str | Path, *, liberty: str | None = None,
             clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
             hierarchy: str = "hier", sta: str | None = None) -> dict[str, Any]:
    """Synthesize ``config`` onto a liberty library and time it; the report dict.

    ``liberty`` and ``clock_ns`` override the same keys of ``constraints``, which
    override ``rcm_gen/flows/data/asic.toml``.  The critical path is the clock period less the
    worst slack (the shortest period the mapped netlist meets, as OpenSTA times it) and
    Fmax its inverse: ``1000 / (period - slack)``; WNS is ``min(0, slack)``.

    A tile's buffers are bound to memory for the liberty's technology
    (:func:`rcm_gen.gateware.memory.resolve_binding`): SRAM macros are black boxes in
    synthesis, their area comes from their liberty, and OpenSTA reads that liberty too.
    ``hierarchy`` is one of :data:`HIERARCHY_MODES`, ``sta`` one of :data:`STA_MODES`
    (default ``models`` for a hierarchical run, ``full`` for a flat one).  A user design
    (:class:`~rcm_gen.flows.user_design.UserDesign`: Verilog or SystemVerilog files and a
    top) goes through the same flow, flattened.

    Raises
    ------
    UserError
        Bad constraints, liberty or macro library (one of another technology or corner
        than the liberty), an STA mode that does not apply, or OpenSTA not installed.
    ToolFailed
        Yosys or OpenSTA failed, or their reports cannot be read (the message names the
        log).
    """
    from ..flows.macros import instantiated_macros
    from .user_design import UserDesign

    started = time.perf_counter()
    phases = Phases()
    if hierarchy not in HIERARCHY_MODES:
        raise UserError(f"--hierarchy must be one of {', '.join(HIERARCHY_MODES)}, not "
                        f"{hierarchy!r}")
    user = isinstance(config, UserDesign)
    sta = check_sta_mode(sta, "flat" if user else hierarchy)
    given = {"clock_ns": clock_ns, "liberty": liberty}
    cons = asic_constraints({**(constraints or {}),
                             **{k: v for k, v in given.items() if v is not None}})
    lib, lib_settings = _resolve_liberty(cons)
    cells = library_cells(lib, {**lib_settings, **{k: cons[k] for k in (*_CELLS, "dont_use")
                                                   if cons[k] is not None}})
    # clock gating (design points only: a user design is synthesized as written); raises
    # for a library without a clock-gating cell
    gate = None
    if not user and getattr(config, "clock_gating", False):
        gate = gating_cell(lib, cells["dont_use"])
    # raises on a mismatched macro library
    platform = None if user else memory_platform(config, lib, cells["dont_use"])
    sta_exe = require_executable("sta")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = design_top(config)
    vfile = out_dir / f"{top}.v"
    if user:
        hierarchy = "flat"
        text = "\n".join(Path(f).read_text(errors="replace") for f in config.files)
        reads = [f"read_verilog -sv {Path(f).resolve()}" for f in config.files]
    else:
        # the Verilog ``generate`` writes (its buffers bound for this library), each
        # distinct module once; the flat flow flattens it
        from ..tools import cache_dir
        from .hier import cached_shared_verilog

        text = cached_shared_verilog(config, top, platform, cache_dir() / "verilog")
    if not user:
        vfile.write_text(text)
        reads = [f"read_verilog {vfile.resolve()}"]
    user_libs = tuple(m for m in [getattr(config, "macros", None)]
                      if isinstance(m, str) and m.endswith(".toml"))
    macros = instantiated_macros(text, user_libs)
    macro_liberties = tuple(m.liberty for m in macros)
    driving = cells["driving_cell"]
    # ABC maps each module on its own: tell it what drives the module's inputs and what
    # its outputs drive, so that it sizes and buffers nets that cross module boundaries.
    abc_text = ((f"set_driving_cell {driving}\n" if driving else "")
                + f"set_load {cons['output_load']}\n")
    abc_constr = out_dir / "abc.constr"
    abc_constr.write_text(abc_text)
    phases.lap("verilog")
    hier_info = None
    binding = getattr(platform, "memory_binding", None)
    lib_cells = (binding.gate[0],) if binding is not None and binding.gate else ()
    if hierarchy == "flat":
        total, groups, n_cells, by_type, netlist, synth_log, gated = _flat(
            top, reads, lib, cons, cells, abc_constr, macro_liberties, out_dir, gate,
            cell_stubs(lib, _instantiated_cells(text, lib_cells)))
        phases.lap("synthesis")
    else:
        total, groups, n_cells, by_type, netlist, synth_log, hier_info, parts = _hier(
            top, text, lib, cons, cells, abc_text, macro_liberties,
            tuple(m.name for m in macros), out_dir, phases, gate, lib_cells)
        gated = hier_info.pop("gated")
        phases.lap("composition")

    clock = getattr(config, "clock", "clk")
    period = float(cons["clock_ns"])
    levels = models = None
    gating_cells = None if gate is None else (gate.cells if gate.kind == "integrated" else ())
    if sta == "models":
        from ..tools import cache_dir
        from .timing_model import time_with_models

        settings = {"liberty": lib.sha256 or hashlib.sha256(lib.path.read_bytes()).hexdigest(),
                    "constraints": {k: cons[k] for k in _NUMBERS}, "cells": cells,
                    "opensta": tool_versions("opensta")["opensta"]}
        timing = time_with_models(parts, top, lib, cons, driving,
                                  cells["buffer"][0] if cells["buffer"] else None,
                                  macro_liberties, sta_exe, out_dir, clock,
                                  cache_dir() / "models", settings, gating_cells)
        sta_log = timing["sta_log"]
        macro_paths = timing["macro_paths"]
        levels, models = timing["levels"], timing["models"]
    else:
        timing, macro_paths, sta_log = _sta_full(cons, lib, netlist, top, driving, macros,
                                                 by_type, clock, sta_exe, out_dir,
                                                 gating_cells)
    phases.lap("sta")
    critical = period - timing["worst_slack"]
    if critical <= 0:
        raise ToolFailed(f"OpenSTA slack {timing['worst_slack']} exceeds the period; "
                         f"log: {sta_log}")
    memory = _memory_report(macros, by_type, groups, total, platform, lib)
    return {
        "target": "asic",
        "top": top,
        "hierarchy": hierarchy,
        "sta": sta,
        "area_um2": total,
        "area_by_group": groups,
        **memory,
        "cells": n_cells,
        "clock_ns": period,
        "critical_path_ns": critical,
        "critical_path": {"startpoint": timing["startpoint"], "endpoint": timing["endpoint"],
                          "arrival_ns": timing["arrival"],
                          "level": timing.get("level", top)},
        "wns_ns": min(0.0, timing["worst_slack"]),
        "worst_slack_ns": timing["worst_slack"],
        "tns_ns": timing["tns"],
        "fmax_mhz": 1000.0 / critical,
        "macro_paths": macro_paths,
        "clock_gating": _gating_report(gate, gated, by_type, lib, timing.get("gating")),
        "timing_levels": levels,
        "timing_models": models,
        "liberty": {"name": lib.name, "path": str(lib.source),
                    "tie_cells": [list(c) if c else None
                                  for c in (cells["tie_hi"], cells["tie_lo"])],
                    "buffer_cell": cells["buffer"][0] if cells["buffer"] else None,
                    "driving_cell": driving, "dont_use": cells["dont_use"]},
        "constraints": {k: cons[k] for k in _NUMBERS},
        "modules": hier_info,
        "config": config.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth", "yosys", "opensta"),
        "log": str(synth_log),
        "sta_log": str(sta_log),
        "netlist": str(netlist),
        "phases": phases.times,
        "wall_s": time.perf_counter() - started,
    }


def _gating_report(gate: GatingCell | None, gated: tuple[int, int] | None,
                   by_type: dict[str, int], lib: Liberty,
                   checks: dict[str, Any] | None = None) -> dict[str, Any]:
    """What clock gating did: the cell, how many gates, how many flip-flops they clock,
    of how many flip-flops in all, and the worst clock-gating setup and hold checks."""
    flops = sum(n for t, n in by_type.items()
                if t in lib.cells and any(s.kind == "ff" for s in lib.cells[t].sequential))
    if gate is None or gated is None:
        return {"enabled": False, "flip_flops": flops}
    return {"enabled": True, "cell": gate.to_dict(), "min_flops": MIN_FLOPS,
            "gates": gated[0], "gated_flip_flops": gated[1], "flip_flops": flops,
            "checks": checks}


#: How a hierarchical design is timed: ``models`` (each distinct module once, as a
#: liberty cell of its boundary timing; the composed top with one cell per instance) or
#: ``full`` (the whole composed netlist, flattened by OpenSTA).
STA_MODES = ("models", "full")


def check_sta_mode(sta: str | None, hierarchy: str) -> str:
    """The STA mode of a run (``sta``, or the default for ``hierarchy``);
    :class:`UserError` for an unknown mode or ``models`` on a flat design."""
    if sta is None:
        return "models" if hierarchy == "hier" else "full"
    if sta not in STA_MODES:
        raise UserError(f"--sta must be one of {', '.join(STA_MODES)}, not {sta!r}")
    if sta == "models" and hierarchy != "hier":
        raise UserError(f"--sta models applies to --hierarchy hier, not {hierarchy!r}")
    return sta


def _sta_full(cons: dict[str, Any], lib: Liberty, netlist: Path, top: str,
              driving: str | None, macros: list[Any], by_type: dict[str, int], clock: str,
              sta_exe: str, out_dir: Path, gating_cells: tuple[str, ...] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any] | None, Path]:
    """OpenSTA on the whole composed netlist: timing, macro paths and the log."""
    # OpenSTA's Verilog reader rejects `signed` declarations; a gate-level netlist has no
    # arithmetic, so they carry no meaning there (user designs may declare signed ports)
    net_text = netlist.read_text()
    plain = re.sub(r"^(\s*(?:input|output|inout|wire|reg))\s+signed\b", r"\1", net_text,
                   flags=re.M)
    if plain != net_text:
        netlist.write_text(plain)
    sta_tcl = out_dir / "sta.tcl"
    used_macros = tuple(m.name for m in macros if by_type.get(m.name))
    sta_tcl.write_text(sta_script(cons, lib, netlist.resolve(), top, driving,
                                   tuple(m.liberty for m in macros), used_macros, clock,
                                   gating_cells=gating_cells))
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
    return timing, parse_macro_paths(proc.stdout + proc.stderr, sta_log), sta_log


def _memory_report(macros: list[Any], by_type: dict[str, int], groups: dict[str, float] | None,
                   total: float, platform: Any, lib: Liberty | None = None) -> dict[str, Any]:
    """Memory, MAC-array and logic area of a report (``None`` parts where a flat run
    cannot tell them apart), and the latch and clock-gating cells of the netlist."""
    used = {}
    for macro in macros:
        count = by_type.get(macro.name, 0)
        if count:
            used[macro.name] = {"count": count, "area_um2": count * macro.area_um2,
                                "words": macro.words, "bits": macro.bits}
    macro_area = sum(u["area_um2"] for u in used.values())
    binding = getattr(platform, "memory_binding", None)
    memory: dict[str, Any] = {
        "binding": binding.kind if binding else None,
        "note": binding.note if binding else None,
        "macro_library": binding.library.name if binding and binding.library else None,
        "macros": used,
        "macro_area_um2": macro_area,
        "ff_area_um2": None,
        "area_um2": None,
    }
    if lib is not None:
        latches = {t: c for t, c in sorted(by_type.items()) if t in lib.cells
                   and any(q.kind == "latch" for q in lib.cells[t].sequential)}
        gates = {t: c for t, c in sorted(by_type.items()) if t in lib.cells
                 and lib.cells[t].clock_gating}
        memory["latch_cells"] = latches
        memory["latch_area_um2"] = sum(c * lib.cells[t].area for t, c in latches.items())
        memory["clock_gate_cells"] = gates
        # cells the liberty gives no area (OSU 0.18 um's LATCH): the areas above leave
        # them out, and the report says so
        memory["cells_without_area"] = {t: c for t, c in {**latches, **gates}.items()
                                        if not lib.cells[t].area > 0}
    out: dict[str, Any] = {"memory": memory, "mac_array_area_um2": None,
                           "logic_area_um2": None}
    if groups is not None:
        memory["area_um2"] = groups["buffers"]
        memory["ff_area_um2"] = groups["buffers"] - macro_area
        out["mac_array_area_um2"] = groups["multipliers"] + groups["accumulators"]
        out["logic_area_um2"] = total - groups["buffers"]
    return out
