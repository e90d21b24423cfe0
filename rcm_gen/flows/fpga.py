"""FPGA flows: Yosys ``synth_ecp5`` / ``synth_ice40`` and nextpnr place and route.

ECP5 runs out of context (the block's ports need not fit a package) and its resources
come from nextpnr's utilisation report.  iCE40 has no out-of-context mode, so the design
is wrapped in a small harness that feeds all its inputs from a shift register and folds
all its outputs into one register; its resources are counted by Yosys on the design's own
module (the harness excluded), and its Fmax is that of the placed and routed whole.
In both cases nextpnr times register-to-register paths (paths through the block's own
ports are not timed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, ToolMissingError, UserError
from ..generate import build_component, ports_of, to_verilog, top_name
from ..tools import tool_versions
from .yosys import run_yosys

__all__ = ["FPGA_TARGETS", "fpga_constraints", "run_fpga"]

FPGA_TARGETS = ("ecp5", "ice40")

_ECP5 = {"luts": ("TRELLIS_COMB",), "ffs": ("TRELLIS_FF",), "dsps": ("MULT18X18D",),
         "brams": ("DP16KD",)}
_ICE40_CELLS = {
    "luts": ("SB_LUT4",),
    "ffs": ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFR", "SB_DFFS", "SB_DFFESR", "SB_DFFER",
            "SB_DFFES", "SB_DFFSS", "SB_DFFRR", "SB_DFFESS", "SB_DFFN", "SB_DFFNE",
            "SB_DFFNSR", "SB_DFFNR", "SB_DFFNS", "SB_DFFNESR", "SB_DFFNER", "SB_DFFNES",
            "SB_DFFNSS", "SB_DFFNRR", "SB_DFFNESS"),
    "dsps": ("SB_MAC16",),
    "brams": ("SB_RAM40_4K",),
}


def fpga_constraints(target: str, clock_ns: float | None = None) -> dict[str, Any]:
    data = tomllib.loads(resources.files("rcm_gen.constraints").joinpath("fpga.toml")
                         .read_text())
    if target not in FPGA_TARGETS:
        raise UserError(f"--target must be one of asic, {', '.join(FPGA_TARGETS)}, "
                        f"not {target!r}")
    cons = dict(data[target])
    if clock_ns is not None:
        cons["clock_ns"] = clock_ns
    if isinstance(cons["clock_ns"], bool) or not isinstance(cons["clock_ns"], (int, float)) \
            or cons["clock_ns"] <= 0:
        raise UserError(f"clock period must be greater than 0 ns, not {cons['clock_ns']!r}")
    return cons


def _nextpnr(target: str) -> str:
    name = f"yowasp-nextpnr-{target}"
    beside = Path(sys.executable).parent / name  # the virtualenv's scripts folder
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        raise ToolMissingError(f"tool 'nextpnr-{target}' is not installed: pip install "
                               f"yowasp-nextpnr-{target}")
    return exe


def _harness(config: Any, top: str) -> str:
    """Verilog of a wrapper driving every input of ``top`` from a shift register and
    folding every output into one registered bit."""
    component = build_component(config)
    component._MustUse__silence = True  # only its ports are needed here
    ports = [p for p in ports_of(component) if p["name"] not in ("clk", "rst")]
    ins = [p for p in ports if p["direction"] == "input"]
    outs = [p for p in ports if p["direction"] == "output"]
    in_bits = sum(p["width"] for p in ins) + 1
    lines = [
        "module rcm_fpga_harness(input clk, input din, output reg dout);",
        f"  reg [{in_bits - 1}:0] sr = 0;",
        f"  always @(posedge clk) sr <= {{sr[{in_bits - 2}:0], din}};" if in_bits > 1
        else "  always @(posedge clk) sr <= din;",
    ]
    conns = [".clk(clk)", f".rst(sr[{in_bits - 1}])"]
    pos = 0
    for p in ins:
        hi = pos + p["width"] - 1
        lines.append(f"  wire [{p['width'] - 1}:0] i_{p['name']} = sr[{hi}:{pos}];")
        conns.append(f".{p['name']}(i_{p['name']})")
        pos += p["width"]
    for p in outs:
        lines.append(f"  wire [{p['width'] - 1}:0] o_{p['name']};")
        conns.append(f".{p['name']}(o_{p['name']})")
    lines.append(f"  {top} dut({', '.join(conns)});")
    fold = " ^ ".join(f"(^o_{p['name']})" for p in outs) or "1'b0"
    lines.append(f"  always @(posedge clk) dout <= {fold};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], log: Path, timeout: float = 3600) -> str:
    """Run nextpnr in the log's folder (the WebAssembly build sees files only there, so
    file arguments are relative to it)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=log.parent)
    text = proc.stdout + proc.stderr
    log.write_text(" ".join(cmd) + "\n" + text)
    if proc.returncode != 0:
        errors = [ln for ln in text.splitlines() if "ERROR" in ln]
        raise ToolFailed(f"{Path(cmd[0]).name} failed ({errors[0] if errors else 'exit status '}"
                         f"{'' if errors else proc.returncode}); log: {log}")
    return text


def _fmax(report: Path, log: Path) -> float:
    try:
        data = json.loads(report.read_text())
        clocks = data["fmax"]
        return min(float(c["achieved"]) for c in clocks.values())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ToolFailed(f"cannot read Fmax from nextpnr's report {report} ({exc}); "
                         f"log: {log}") from None


def run_fpga(config: Any, target: str, out_dir: Path, *, clock_ns: float | None = None
             ) -> dict[str, Any]:
    """Synthesize, place and route ``config`` for ``target``; the report dict."""
    started = time.perf_counter()
    cons = fpga_constraints(target, clock_ns)
    pnr = _nextpnr(target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = top_name(config)
    vfile = out_dir / f"{top}.v"
    vfile.write_text(to_verilog(config))
    netlist = out_dir / f"{target}.json"
    stat_file = out_dir / "stat.json"
    synth_log = out_dir / "synth.log"
    pnr_log = out_dir / "pnr.log"
    report = out_dir / "nextpnr-report.json"
    freq = 1000.0 / float(cons["clock_ns"])
    # Report the achieved Fmax even when it misses the target.
    common = ["--report", report.name, "--freq", f"{freq:.3f}", "--timing-allow-fail"]
    if target == "ecp5":
        run_yosys([f"read_verilog {vfile.resolve()}",
                   f"synth_ecp5 -top {top} -json {netlist.resolve()}"], synth_log)
        _run([pnr, f"--{cons['device']}", "--package", cons["package"], "--out-of-context",
              "--json", netlist.name, *common], pnr_log)
        try:
            util = json.loads(report.read_text())["utilization"]
            counts = {k: sum(int(util.get(b, {}).get("used", 0)) for b in bels)
                      for k, bels in _ECP5.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ToolFailed(f"cannot read utilisation from {report} ({exc}); "
                             f"log: {pnr_log}") from None
    else:
        harness = out_dir / "harness.v"
        harness.write_text(_harness(config, top))
        run_yosys([f"read_verilog {vfile.resolve()}", f"read_verilog {harness.resolve()}",
                   "synth_ice40 -dsp -noflatten -top rcm_fpga_harness",
                   f"tee -q -o {stat_file.resolve()} stat -json",
                   "flatten",
                   f"write_json {netlist.resolve()}"], synth_log)
        try:
            modules = json.loads(stat_file.read_text())["modules"]
            counts = {k: 0 for k in _ICE40_CELLS}
            for name, m in modules.items():
                if name.lstrip("\\") == "rcm_fpga_harness":
                    continue
                for cell, n in m.get("num_cells_by_type", {}).items():
                    for key, cells in _ICE40_CELLS.items():
                        if cell in cells:
                            counts[key] += int(n)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ToolFailed(f"cannot read cell counts from Yosys ({exc}); "
                             f"log: {synth_log}") from None
        _run([pnr, f"--{cons['device']}", "--package", cons["package"], "--json",
              netlist.name, *common], pnr_log)
    fmax = _fmax(report, pnr_log)
    return {
        "target": target,
        "top": top,
        "device": f"{cons['device']} ({cons['package']})",
        **counts,
        "fmax_mhz": fmax,
        "clock_ns": float(cons["clock_ns"]),
        "config": config.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth", "yosys", f"nextpnr_{target}"),
        "log": str(pnr_log),
        "synth_log": str(synth_log),
        "wall_s": time.perf_counter() - started,
    }
