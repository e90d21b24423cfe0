"""ASIC flow: Yosys synthesis onto a liberty library, then OpenSTA static timing."""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, UserError
from ..generate import to_verilog, top_name
from ..tools import require_executable, tool_versions
from .liberty import Liberty, load_liberty
from .yosys import run_yosys

__all__ = ["asic_constraints", "group_of", "run_asic"]

_KEYS = ("clock_ns", "input_delay_ns", "output_delay_ns", "output_load", "liberty")


def asic_constraints(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ASIC constraints (``constraints/asic.toml``) with ``overrides`` applied."""
    data = tomllib.loads(resources.files("rcm_gen.constraints").joinpath("asic.toml")
                         .read_text())
    out = {k: data[k] for k in _KEYS}
    out["libraries"] = data.get("libraries", {})
    for key, value in (overrides or {}).items():
        if key not in _KEYS:
            raise UserError(f"ASIC constraint must be one of {', '.join(_KEYS)}, not {key!r}")
        if value is not None:
            out[key] = value
    for key in ("clock_ns", "input_delay_ns", "output_delay_ns", "output_load"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{key} must be a number, not {value!r}")
    if out["clock_ns"] <= 0:
        raise UserError(f"clock period must be greater than 0 ns, not {out['clock_ns']!r}")
    if out["output_load"] < 0 or out["input_delay_ns"] < 0 or out["output_delay_ns"] < 0:
        raise UserError("I/O delays and output load must not be negative")
    return out


def _resolve_liberty(cons: dict[str, Any]) -> tuple[Liberty, dict[str, Any]]:
    """The liberty to use and its per-library settings."""
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


def group_of(module: str, top: str) -> str:
    """Area group of a synthesized module: multipliers, accumulators, buffers, control."""
    name = module.lstrip("\\")
    path = name[len(top) + 1:].split(".") if name.startswith(top + ".") else []
    if "multiplier" in path:
        return "multipliers"
    if (not path and top == "rcm_mac") or (path and re.fullmatch(r"mac\d+", path[0])):
        return "accumulators"
    if path and path[0].endswith("_buf"):
        return "buffers"
    return "control"


def _areas(stat: dict[str, Any], top: str) -> tuple[float, dict[str, float], int]:
    modules = stat["modules"]
    total_by_module = {name.lstrip("\\"): float(m["area"]) for name, m in modules.items()}
    groups = {"multipliers": 0.0, "accumulators": 0.0, "buffers": 0.0, "control": 0.0}
    cells = 0
    for name, m in modules.items():
        own = float(m["area"])
        own_cells = int(m["num_cells"])
        for cell_type, count in m.get("num_cells_by_type", {}).items():
            sub = cell_type.lstrip("\\")
            if sub in total_by_module:
                own -= count * total_by_module[sub]
                own_cells -= count
        groups[group_of(name, top)] += own
        cells += own_cells
    total = total_by_module.get(top)
    if total is None:
        raise KeyError(top)
    return total, groups, cells


def _sta_script(cons: dict[str, Any], lib: Liberty, netlist: Path, top: str,
                driving_cell: str | None) -> str:
    inputs = "[delete_from_list [all_inputs] [get_ports clk]]"
    lines = [
        f"read_liberty {lib.path}",
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {cons['clock_ns']} [get_ports clk]",
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


def _parse_sta(text: str, log: Path) -> dict[str, Any]:
    def grab(pattern: str) -> str:
        m = re.search(pattern, text, re.M)
        if not m:
            raise ToolFailed(f"OpenSTA report has no {pattern!r}; log: {log}")
        return m.group(1)

    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolFailed(f"OpenSTA failed ({errors[0]}); log: {log}")
    return {
        "worst_slack": float(grab(r"^worst slack\s+(-?[0-9.]+)")),
        "tns": float(grab(r"^tns\s+(-?[0-9.]+)")),
        "startpoint": grab(r"^Startpoint:\s*(.+)$").strip(),
        "endpoint": grab(r"^Endpoint:\s*(.+)$").strip(),
        "arrival": float(grab(r"^\s*(-?[0-9.]+)\s+data arrival time")),
    }


def run_asic(config: Any, out_dir: Path, *, liberty: str | None = None,
             clock_ns: float | None = None, constraints: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    """Synthesize ``config`` onto a liberty library and time it; the report dict.

    The critical path is the clock period minus the worst slack (the shortest period the
    design meets), and Fmax its inverse.
    """
    started = time.perf_counter()
    cons = asic_constraints({**(constraints or {}), "clock_ns": clock_ns, "liberty": liberty})
    lib, lib_settings = _resolve_liberty(cons)
    sta_exe = require_executable("sta")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = top_name(config)
    vfile = out_dir / f"{top}.v"
    vfile.write_text(to_verilog(config))
    netlist = out_dir / "netlist.v"
    stat_file = out_dir / "stat.json"
    tie = lib_settings.get("tie_cell")
    hi, lo = lib.tie_cells()
    if tie:
        cell = lib.cells.get(tie)
        if cell is None:
            raise UserError(f"tie cell {tie!r} is not in liberty {lib.name!r}")
        hi = next(((tie, p) for p, f in cell.outputs.items() if f.strip('"') == "1"), hi)
        lo = next(((tie, p) for p, f in cell.outputs.items() if f.strip('"') == "0"), lo)
    driving = lib_settings.get("driving_cell") or lib.smallest_buffer()
    clock_ps = int(round(cons["clock_ns"] * 1000))
    # ABC maps each module separately: tell it what drives the module's inputs and what
    # its outputs drive, so that it buffers nets that fan out across module boundaries.
    abc_constr = out_dir / "abc.constr"
    abc_constr.write_text((f"set_driving_cell {driving}\n" if driving else "")
                          + f"set_load {cons['output_load']}\n")
    script = [
        f"read_verilog {vfile.resolve()}",
        f"synth -top {top} -booth",
        f"dfflibmap -liberty {lib.path}",
        f"abc -liberty {lib.path} -D {clock_ps} -constr {abc_constr.resolve()}",
        "opt_clean",
    ]
    if hi and lo:
        script.append(f"hilomap -singleton -hicell {hi[0]} {hi[1]} -locell {lo[0]} {lo[1]}")
    script += [
        "setundef -zero",
        "splitnets",
        "opt_clean -purge",
        f"tee -q -o {stat_file.resolve()} stat -json -liberty {lib.path}",
        f"stat -liberty {lib.path}",
        f"write_verilog -noattr -noexpr -nohex -nodec {netlist.resolve()}",
    ]
    synth_log = out_dir / "synth.log"
    run_yosys(script, synth_log)
    try:
        total, groups, cells = _areas(json.loads(stat_file.read_text()), top)
    except (OSError, ValueError, KeyError) as exc:
        raise ToolFailed(f"cannot read the area from Yosys ({exc}); log: {synth_log}") from None
    if total <= 0:
        raise ToolFailed(f"Yosys reported no area for {top}; log: {synth_log}")

    sta_tcl = out_dir / "sta.tcl"
    sta_tcl.write_text(_sta_script(cons, lib, netlist.resolve(), top, driving))
    sta_log = out_dir / "sta.log"
    proc = subprocess.run([sta_exe, "-no_init", "-exit", str(sta_tcl)], capture_output=True,
                          text=True, timeout=3600)
    sta_log.write_text(proc.stdout + proc.stderr)
    timing = _parse_sta(proc.stdout + proc.stderr, sta_log)
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
        "cells": cells,
        "clock_ns": period,
        "critical_path_ns": critical,
        "critical_path": {"startpoint": timing["startpoint"], "endpoint": timing["endpoint"],
                          "arrival_ns": timing["arrival"]},
        "wns_ns": min(0.0, timing["worst_slack"]),
        "worst_slack_ns": timing["worst_slack"],
        "tns_ns": timing["tns"],
        "fmax_mhz": 1000.0 / critical,
        "liberty": {"name": lib.name, "path": str(lib.source), "tie_cells": [hi, lo],
                    "driving_cell": driving},
        "constraints": {k: cons[k] for k in _KEYS if k != "liberty"},
        "config": config.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth", "yosys", "opensta"),
        "log": str(synth_log),
        "sta_log": str(sta_log),
        "netlist": str(netlist),
        "wall_s": time.perf_counter() - started,
    }
