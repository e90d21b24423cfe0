"""FPGA flows: Yosys ``synth_ecp5`` / ``synth_ice40`` / ``synth_nexus`` and nextpnr place
and route.

The design is placed in a small harness that feeds every input from a shift register and
captures every output in a register (one XOR per bit, the register bits chained into one
output), so that every path into and out of the design starts and ends at a flip-flop and
is timed: nextpnr times register-to-register paths only.  The harness has three ports
(clk, din, dout).  ECP5 is placed out of context (no I/O buffers, no global promotion);
nextpnr-ice40 has no such mode and places the harness on a device of the configured list.
Lattice Nexus (CrossLink-NX) has no such mode either, and this nextpnr-nexus cannot route a
clock from an I/O pin to a global buffer: the harness is clocked by the device's on-chip
oscillator (``OSCA``, divided to about the constraint's frequency), ``din`` and ``dout`` on
the pins of the device entry.

Resources are those of the design alone: Yosys synthesizes the harness and the design
without flattening and counts the cells of the design's own modules, in the units of the
device's data sheet (ECP5: a ``CCU2C`` carry cell occupies two LUT4s).  Fmax is nextpnr's
post-route figure for the clock, from its ``--report`` JSON.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, ToolMissingError, UserError
from ..generate import build_component, platform_for, ports_of, top_name
from ..tools import cache_dir, tool_versions
from .asic import instance_counts, load_constraints
from .hier import cached_shared_verilog
from .yosys import run_yosys

__all__ = [
    "DSP_ARCH_TARGETS",
    "FPGA_TARGETS",
    "HARNESS",
    "RESOURCES",
    "check_family",
    "fpga_config",
    "count_resources",
    "fpga_constraints",
    "harness_verilog",
    "osc_top_verilog",
    "fpga_resources",
    "parse_nextpnr_report",
    "pick_device",
    "run_fpga",
]

FPGA_TARGETS = ("ecp5", "ice40", "nexus")
RESOURCES = ("luts", "ffs", "dsps", "brams")
#: Name of the harness module.
HARNESS = "rcm_fpga_harness"
#: Name of the module around the harness that clocks it from the on-chip oscillator (Nexus).
OSC_TOP = "rcm_fpga_osc_top"

_ICE40_FFS = tuple(f"SB_DFF{s}" for s in (
    "", "E", "SR", "R", "S", "ESR", "ER", "ES", "SS", "RR", "ESS", "N", "NE", "NSR", "NR",
    "NS", "NESR", "NER", "NES", "NSS", "NRR", "NESS"))
#: Resource -> {cell type: how many resource units one cell takes}.
_CELL_UNITS: dict[str, dict[str, dict[str, int]]] = {
    "ecp5": {
        "luts": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 2},
        "ffs": {"TRELLIS_FF": 1},
        "dsps": {"MULT18X18D": 1},
        "brams": {"DP16KD": 1, "PDPW16KD": 1},
    },
    "ice40": {
        "luts": {"SB_LUT4": 1},
        "ffs": dict.fromkeys(_ICE40_FFS, 1),
        "dsps": {"SB_MAC16": 1},
        "brams": {"SB_RAM40_4K": 1},
    },
    # DSPs in 18x18 multipliers (the data sheet's count; a 9x9 multiplier takes half of
    # one's block and counts as one), block RAMs in 18 kb EBRs and 512 kb LRAMs
    "nexus": {
        "luts": {"LUT4": 1, "CCU2": 2, "WIDEFN9": 2, "DPR16X4": 2},
        "ffs": dict.fromkeys(("FD1P3IX", "FD1P3BX", "FD1P3DX", "FD1P3JX"), 1),
        "dsps": {"MULT9X9": 1, "MULT18X18": 1, "MULT18X36": 2, "MULT36X36": 4,
                 "MULTPREADD9X9": 1, "MULTPREADD18X18": 1, "MULTADDSUB18X18": 1,
                 "MULTADDSUB9X9WIDE": 2, "MULTADDSUB18X18WIDE": 2, "MULTADDSUB36X36": 4},
        "brams": {"DP16K": 1, "PDP16K": 1, "SP16K": 1, "PDPSC16K": 1, "LRAM": 1},
    },
}
#: Frequency (MHz) of the Nexus on-chip oscillator before its divider.
_NEXUS_OSC_MHZ = 450.0
_CONSTRAINT_KEYS = ("clock_ns", "device", "pnr_timeout_s", "router", "placer", "dsp")
#: the ``dsp`` constraint: which multipliers go into DSP blocks (``auto``: every one if the
#: device has the blocks for them, else the first :data:`DSP_POLICIES` entry that fits)
DSP_CHOICES = ("auto", "all", "mac+ppu", "mac", "none")
#: nextpnr's routers
ROUTERS = ("router1", "router2")
#: nextpnr's placers (``heap``: analytic, then simulated annealing; ``static``:
#: electrostatic, which spreads a large design's cells more evenly; ``sa``: annealing only)
PLACERS = ("heap", "static", "sa")


def fpga_constraints(target: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The constraints of ``target`` in ``rcm_gen/flows/data/fpga.toml`` with ``overrides``
    (keys ``clock_ns``; ``device``, the name of one of the configured devices, which
    is then the only one tried; ``pnr_timeout_s``, nextpnr's time limit; ``router``, one
    of :data:`ROUTERS`; ``placer``, one of :data:`PLACERS`; ``dsp``, one of
    :data:`DSP_CHOICES`; ``None`` values are ignored).

    Raises
    ------
    UserError
        An unknown target, key, device, router, placer or DSP choice, or a period or
        time limit that is not greater than 0.
    """
    if target not in FPGA_TARGETS:
        raise UserError(f"--target must be one of asic, {', '.join(FPGA_TARGETS)}, "
                        f"not {target!r}")
    if overrides is not None and not isinstance(overrides, dict):
        raise TypeError(f"FPGA constraints must be a dict, not {overrides!r}")
    data = load_constraints("fpga.toml")
    cons = dict(data[target])
    for key, value in (overrides or {}).items():
        if key not in _CONSTRAINT_KEYS:
            raise UserError(f"{target} constraint must be one of {', '.join(_CONSTRAINT_KEYS)}"
                            f", not {key!r}")
        if value is not None:
            cons[key] = value
    period = cons["clock_ns"]
    if isinstance(period, bool) or not isinstance(period, (int, float)) \
            or not math.isfinite(period) or period <= 0:
        raise UserError(f"clock period must be greater than 0 ns, not {period!r}")
    limit = cons["pnr_timeout_s"]
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) \
            or not math.isfinite(limit) or limit <= 0:
        raise UserError(f"pnr_timeout_s must be greater than 0 s, not {limit!r}")
    if cons["router"] not in ROUTERS:
        raise UserError(f"{target} router must be one of {', '.join(ROUTERS)}, not "
                        f"{cons['router']!r}")
    if cons["placer"] not in PLACERS:
        raise UserError(f"{target} placer must be one of {', '.join(PLACERS)}, not "
                        f"{cons['placer']!r}")
    cons.setdefault("dsp", "auto")
    if cons["dsp"] not in DSP_CHOICES:
        raise UserError(f"{target} dsp must be one of {', '.join(DSP_CHOICES)}, not "
                        f"{cons['dsp']!r}")
    names = [d["name"] for d in cons["devices"]]
    if cons.get("device") is not None:
        if cons["device"] not in names:
            raise UserError(f"{target} device must be one of {', '.join(names)}, not "
                            f"{cons['device']!r}")
        cons["devices"] = [d for d in cons["devices"] if d["name"] == cons["device"]]
    return cons


def osc_top_verilog(clock_ns: float) -> str:
    """Verilog of the Nexus top: the harness clocked by the on-chip oscillator, divided to
    the frequency nearest to (and not above) that of ``clock_ns``."""
    div = max(1, math.ceil(_NEXUS_OSC_MHZ * clock_ns / 1000.0) - 1)
    return "\n".join([
        f"module {OSC_TOP}(input din, output dout);",
        "  wire clk;",
        f"  OSCA #(.HF_CLK_DIV(\"{div}\")) osc (.HFOUTEN(1'b1), .HFCLKOUT(clk));",
        f"  {HARNESS} harness(.clk(clk), .din(din), .dout(dout));",
        "endmodule",
    ]) + "\n"


def _unhook_carry_inputs(netlist: Path) -> None:
    """Disconnect the carry inputs that Yosys ties to a ``VLO`` driver in a Nexus netlist
    (nextpnr-nexus accepts a ``CCU2``'s CIN only from another ``CCU2``; an open CIN is 0)."""
    data = json.loads(netlist.read_text())
    for module in data.get("modules", {}).values():
        cells = module.get("cells", {})
        low = {b for c in cells.values() if c.get("type") == "VLO"
               for b in c.get("connections", {}).get("Z", []) if isinstance(b, int)}
        for cell in cells.values():
            conns = cell.get("connections", {})
            if cell.get("type") == "CCU2" and any(b in low for b in conns.get("CIN", [])):
                del conns["CIN"]
    netlist.write_text(json.dumps(data))


def _nextpnr(target: str) -> str:
    name = f"yowasp-nextpnr-{target}"
    beside = Path(sys.executable).parent / name  # the virtualenv's scripts folder
    exe = str(beside) if beside.exists() else shutil.which(name)
    if exe is None:
        raise ToolMissingError(f"tool 'nextpnr-{target}' is not installed: pip install "
                               f"yowasp-nextpnr-{target}")
    return exe


def harness_verilog(ports: list[dict[str, Any]], top: str) -> str:
    """Verilog of the harness around module ``top`` with ``ports`` (as
    :func:`rcm_gen.generate.ports_of` lists them): every input bit (reset included) is a
    stage of a shift register fed from ``din``; every output bit is XORed into one stage
    of a register chain that ends in ``dout``."""
    names = {p["name"] for p in ports}
    ins = [p for p in ports if p["direction"] == "input" and p["name"] != "clk"]
    outs = [p for p in ports if p["direction"] == "output"]
    if "clk" not in names or not outs:
        raise ValueError(f"Harness needs a clk input and at least one output, not {ports!r}")
    in_bits = max(1, sum(p["width"] for p in ins))
    out_bits = sum(p["width"] for p in outs)
    lines = [
        f"module {HARNESS}(input clk, input din, output dout);",
        f"  reg [{in_bits}:0] sr = 0;",
        f"  always @(posedge clk) sr <= {{sr[{in_bits - 1}:0], din}};",
    ]
    conns, pos = [".clk(clk)"], 1
    for p in ins:
        hi = pos + p["width"] - 1
        lines.append(f"  wire [{p['width'] - 1}:0] i_{p['name']} = sr[{hi}:{pos}];")
        conns.append(f".{p['name']}(i_{p['name']})")
        pos += p["width"]
    for p in outs:
        lines.append(f"  wire [{p['width'] - 1}:0] o_{p['name']};")
        conns.append(f".{p['name']}(o_{p['name']})")
    lines.append(f"  {top} dut({', '.join(conns)});")
    cat = ", ".join(f"o_{p['name']}" for p in outs)
    lines += [
        f"  reg [{out_bits}:0] oq = 0;",
        f"  always @(posedge clk) oq <= {{1'b0, {cat}}} ^ {{oq[{out_bits - 1}:0], 1'b0}};",
        f"  assign dout = oq[{out_bits}];",
        "endmodule",
    ]
    return "\n".join(lines) + "\n"


def count_resources(stat_text: str, target: str, log: Path | str, *,
                    skip: tuple[str, ...] = (HARNESS,)) -> dict[str, int]:
    """Resources of the design in Yosys ``stat -json`` output (every module times the
    number of its instances), less the modules named in ``skip``; :class:`ToolFailed`
    naming ``log`` if it cannot be read."""
    counts = dict.fromkeys(RESOURCES, 0)
    try:
        modules = json.loads(stat_text)["modules"]
        times = instance_counts(modules)
        for name, m in modules.items():
            if name.lstrip("\\") in skip:
                continue
            for cell, n in m.get("num_cells_by_type", {}).items():
                for key, units in _CELL_UNITS[target].items():
                    counts[key] += units.get(cell.lstrip("\\"), 0) * int(n) \
                        * times[name.lstrip("\\")]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolFailed(f"cannot read cell counts from Yosys stat ({type(exc).__name__}: "
                         f"{exc}); log: {log}") from None
    if counts["luts"] + counts["ffs"] + counts["dsps"] <= 0:
        raise ToolFailed(f"Yosys stat counts no cells; log: {log}")
    return counts


def pick_device(need: dict[str, int], devices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first of ``devices`` whose capacity holds ``need`` (``None`` if none does)."""
    for dev in devices:
        if all(need.get(k, 0) <= int(dev[k]) for k in RESOURCES):
            return dev
    return None


def parse_nextpnr_report(text: str, log: Path | str) -> dict[str, Any]:
    """Fmax (MHz, the lowest over the clocks) and utilisation from nextpnr's ``--report``
    JSON text; :class:`ToolFailed` naming ``log`` if it cannot be read."""
    try:
        data = json.loads(text)
        clocks = data["fmax"]
        fmax = min(float(c["achieved"]) for c in clocks.values())
        util = {bel: int(u["used"]) for bel, u in data["utilization"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolFailed(f"cannot read Fmax from nextpnr's report ({type(exc).__name__}: "
                         f"{exc}); log: {log}") from None
    if not fmax > 0 or not math.isfinite(fmax):
        raise ToolFailed(f"nextpnr reports an Fmax of {fmax!r} MHz; log: {log}")
    return {"fmax_mhz": fmax, "utilization": util}


def _run(cmd: list[str], log: Path, timeout: float = 3600) -> str:
    """Run nextpnr in the log's folder (the WebAssembly build sees files only there, so
    file arguments are relative to it), its output written to ``log`` as it runs (a run
    that does not finish leaves what it did)."""
    with open(log, "w") as out:
        out.write(" ".join(cmd) + "\n")
        out.flush()
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True,
                                  timeout=timeout, cwd=log.parent)
        except subprocess.TimeoutExpired:
            raise ToolFailed(f"{Path(cmd[0]).name} did not finish in {timeout:g} s (the "
                             f"constraint pnr_timeout_s); log: {log}") from None
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        errors = [ln for ln in text.splitlines() if "ERROR" in ln]
        reason = errors[0] if errors else f"exit status {proc.returncode}"
        raise ToolFailed(f"{Path(cmd[0]).name} failed ({reason}); log: {log}")
    return text


#: The assertion Yosys 0.70's ABC9 reintegration fails on some modules of a hierarchical
#: ECP5 netlist (``synth_ecp5`` has no ``-noabc9`` any more).
_ABC9_BUG = "count_id(wire->name) == 0"


#: When a design's multipliers outnumber its device's DSP blocks, the modules whose
#: multipliers keep them (:func:`_synth` with ``dsp`` one of these keys), tried in order:
#: the MAC array's and the post-processing units', then the MAC array's alone; each with
#: the module patterns and what they are.
DSP_POLICIES = {
    "mac+ppu": (("*__mac*", "*__ppu*"), "the MAC array and the post-processing units"),
    "mac": (("*__mac*",), "the MAC array"),
}


def _dsp_policy_text(dsp: bool | str, chosen: bool = False) -> str:
    """Which multipliers a synthesis with ``dsp`` (see :func:`_synth`) put in DSPs
    (``chosen``: by the ``dsp`` constraint, not because the device's DSPs were short)."""
    if dsp is True or dsp is False:
        return "every multiplier" if dsp else "none"
    why = ("the dsp constraint" if chosen
           else "the design's every multiplier needs more DSPs than the device has")
    return f"{DSP_POLICIES[dsp][1]}'s multipliers (the others in LUTs: {why})"


def _synth(target: str, out_dir: Path, vfile: Path, harness: Path, dsp: bool | str
           ) -> tuple[Path, Path, str, str]:
    """Synthesize design + harness; (netlist, log, stat text, LUT mapper).  ``dsp``:
    multipliers in DSP blocks where the family maps them (``True``), none (``False``), or
    only those of the modules a :data:`DSP_POLICIES` entry names (every other module's
    multipliers become logic before the DSP mapping sees them).

    ECP5 LUTs are mapped by ABC9, as ``synth_ecp5`` does; where Yosys fails inside ABC9
    (:data:`_ABC9_BUG`), the same script is run again with the LUTs mapped by classic
    ABC (``abc -lut 4``), and the report says so.
    """
    suffix = {True: "", False: "-nodsp"}.get(dsp, f"-dsp-{str(dsp).replace('+', '-')}")
    netlist = out_dir / f"{target}{suffix}.json"
    stat_file = out_dir / f"stat{suffix}.json"
    log = out_dir / f"synth{suffix}.log"
    reads = [f"read_verilog {vfile.resolve()}", f"read_verilog {harness.resolve()}"]
    if dsp in DSP_POLICIES:
        keep = "".join(f" {p}/t:$mul %d" for p in DSP_POLICIES[dsp][0])
        reads.append(f"techmap -map +/techmap.v */t:$mul{keep}")
    tail = [f"tee -q -o {stat_file.resolve()} stat -json", "flatten",
            f"write_json {netlist.resolve()}"]
    mapper = "abc9"
    if target == "ecp5":
        synth = f"synth_ecp5 -noflatten -top {HARNESS}" + ("" if dsp else " -nodsp")
        try:
            run_yosys([*reads, synth, *tail], log)
        except ToolFailed as exc:
            if _ABC9_BUG not in str(exc):
                raise
            mapper = "abc -lut 4 (Yosys failed in ABC9)"
            run_yosys([*reads, f"{synth} -run :map_luts", "check -latchonly -assert",
                       "techmap -map +/lattice/latches_map.v", "abc -lut 4", "clean",
                       f"{synth} -run map_cells:", *tail], log)
    elif target == "nexus":
        top = out_dir / "osc_top.v"
        reads.append(f"read_verilog {top.resolve()}")
        synth = f"synth_nexus -noflatten -top {OSC_TOP}" + ("" if dsp else " -nodsp")
        run_yosys([*reads, synth, *tail], log)
        _unhook_carry_inputs(netlist)
    else:
        synth = f"synth_ice40 -noflatten -top {HARNESS}" + (" -dsp" if dsp else "")
        run_yosys([*reads, synth, *tail], log)
    try:
        text = stat_file.read_text()
    except OSError as exc:
        raise ToolFailed(f"Yosys wrote no cell counts ({exc.strerror}); log: {log}") from None
    return netlist, log, text, mapper


def _memory_note(config: Any) -> dict[str, Any] | None:
    platform = platform_for(config, fpga=True)
    if platform is None:
        return None
    b = platform.memory_binding
    return {"binding": b.kind, "ram_style": b.fpga_ram_style or None, "note": b.note}


def run_fpga(config: Any, target: str, out_dir: str | Path, *, clock_ns: float | None = None,
             constraints: dict[str, Any] | None = None,
             prune: Any = None) -> dict[str, Any]:
    """Synthesize, place and route ``config`` for ``target``; the report dict.

    With ``prune`` (a function of the design's resource counts after synthesis, giving
    the reason it does not fit a budget or ``None``), a design it rejects is not placed
    and routed: the report then has ``pruned`` (the reason) and the resource counts, no
    Fmax; and the design is synthesized for the first configured device whatever its
    size (the budget, not the device list, decides).

    Raises
    ------
    UserError
        Bad constraints, nextpnr not installed, or a design too large for every
        configured device.
    ToolFailed
        Yosys or nextpnr failed, or a report cannot be read (the message names the log).
    """
    started = time.perf_counter()
    config = fpga_config(config, target)
    cons = fpga_constraints(target, {**(constraints or {}),
                                     **({"clock_ns": clock_ns} if clock_ns is not None else {})})
    check_family(config, target)
    nextpnr = _nextpnr(target)
    device, counts, netlist, synth_log, top = _synthesize_for_device(
        config, target, out_dir, cons, fit=prune is None)
    out_dir = Path(out_dir)
    reason = prune(counts) if prune is not None else None
    if reason:
        return {"target": target, "top": top, "device": _device_name(device), **counts,
                "pruned": reason, "clock_ns": float(cons["clock_ns"]),
                "memory": _memory_note(config), "config": config.to_dict(),
                "log": str(synth_log), "synth_log": str(synth_log),
                "wall_s": time.perf_counter() - started}
    pnr_log = out_dir / "pnr.log"
    report = out_dir / "nextpnr-report.json"
    freq = 1000.0 / float(cons["clock_ns"])
    if target == "nexus":  # the package is part of a Nexus device name
        part = ["--device", device["name"]]
    else:
        part = [f"--{device['name']}", "--package", device["package"]]
    cmd = [nextpnr, *part, "--json", netlist.name, "--report", report.name,
           "--freq", f"{freq:.3f}", "--router", cons["router"], "--placer", cons["placer"],
           "--timing-allow-fail"]  # report the achieved Fmax even when it misses the target
    if target == "ecp5":
        cmd.append("--out-of-context")
    if target == "nexus":
        pdc = out_dir / "io.pdc"
        pdc.write_text("".join(f"ldc_set_location -site {{{device[p]}}} [get_ports {p}]\n"
                               for p in ("din", "dout")))
        cmd += ["--pdc", pdc.name]
    _run(cmd, pnr_log, timeout=float(cons["pnr_timeout_s"]))
    try:
        report_text = report.read_text()
    except OSError as exc:
        raise ToolFailed(f"nextpnr wrote no report ({exc.strerror}); log: {pnr_log}") from None
    pnr = parse_nextpnr_report(report_text, pnr_log)
    return {
        "target": target,
        "top": top,
        "device": _device_name(device),
        **counts,
        "fmax_mhz": pnr["fmax_mhz"],
        "clock_ns": float(cons["clock_ns"]),
        "pnr_utilization": pnr["utilization"],
        "memory": _memory_note(config),
        "config": config.to_dict(),
        "tools": tool_versions("rcm_gen", "amaranth", "yosys", f"nextpnr_{target}"),
        "log": str(pnr_log),
        "synth_log": str(synth_log),
        "wall_s": time.perf_counter() - started,
    }


def fpga_resources(config: Any, target: str, out_dir: str | Path) -> dict[str, Any]:
    """Yosys synthesis alone (no place and route): the resources of ``config`` on the
    first configured ``target`` device it fits (``luts``, ``ffs``, ``dsps``, ``brams``,
    ``device``, ``memory``)."""
    config = fpga_config(config, target)
    cons = fpga_constraints(target, {})
    device, counts, *_ = _synthesize_for_device(config, target, out_dir, cons)
    return {**counts, "device": _device_name(device), "memory": _memory_note(config)}


def _device_name(device: dict[str, Any]) -> str:
    return f"{device['name']} ({device['package']})" if device.get("package") \
        else device["name"]


#: Families whose DSP blocks hold the ``dsp`` architecture's multipliers (18x18 signed).
DSP_ARCH_TARGETS = ("ecp5", "nexus")


def fpga_config(config: Any, target: str) -> Any:
    """``config`` as the ``target`` flow builds it: a tile whose ``ppu_product`` is
    ``auto`` has its post-processing units' product built from 18x18 multipliers (``dsp``,
    DSP blocks) on a family that has them, whatever its MAC (Booth rows would be LUTs)."""
    if getattr(config, "ppu_product", None) == "auto" and target in DSP_ARCH_TARGETS:
        return config.replace(ppu_product="dsp")
    return config


def check_family(config: Any, target: str) -> None:
    """:class:`UserError` if the ``target`` family (an FPGA's, or ``asic``) lacks the
    primitives ``config``'s MAC is built from: the ``dsp`` architecture's 18x18 signed
    multipliers (the iCE40's SB_MAC16 is 16x16), or the vendor primitives its
    ``dsp_block`` instantiates."""
    mac = getattr(config, "mac", config)
    block = getattr(mac, "dsp_block", "generic")
    if block != "generic" and target != block:
        key = "mac.dsp_block" if mac is not config else "dsp_block"
        raise UserError(f"--target {target}: {key} {block} instantiates {block} "
                        f"primitives (MULT18X18D), which only --target {block} takes; set "
                        f"{key}=generic for {target}")
    if getattr(mac, "arch", None) == "dsp" and target not in DSP_ARCH_TARGETS:
        raise UserError(f"--target {target}: arch dsp needs 18x18 signed DSP multipliers, "
                        f"which {target} lacks; use --target one of "
                        f"{', '.join(DSP_ARCH_TARGETS)}, asic, or another arch")


def _synthesize_for_device(config: Any, target: str, out_dir: str | Path,
                           cons: dict[str, Any], fit: bool = True
                           ) -> tuple[dict[str, Any], dict[str, Any], Path, Path, str]:
    """Synthesize ``config`` for the configured devices in order until one holds it (with
    ``fit`` false: the first device, whatever the design needs); the device, the resource
    counts, the netlist, the synthesis log and the top's name."""
    check_family(config, target)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    top = top_name(config)
    vfile = out_dir / f"{top}.v"
    # the Verilog ``generate`` writes (its buffers bound for the FPGA), each distinct
    # module once: Yosys keeps the hierarchy (-noflatten) and synthesizes each module
    # once, then flattens the netlist for nextpnr
    vfile.write_text(cached_shared_verilog(config, top, platform_for(config, fpga=True),
                                           cache_dir() / "verilog"))
    component = build_component(config)
    component._MustUse__silence = True  # only its ports are needed here
    harness = out_dir / "harness.v"
    harness.write_text(harness_verilog(ports_of(component), top))
    if target == "nexus":
        (out_dir / "osc_top.v").write_text(osc_top_verilog(float(cons["clock_ns"])))

    synthesized: dict[bool, tuple[Path, Path, str]] = {}
    tried = []
    device = None
    chosen = cons.get("dsp", "auto")
    for dev in cons["devices"]:
        # every multiplier in DSPs where the device has them; if only the DSPs overflow,
        # the MAC array's multipliers in DSPs and the others in LUTs; or the policy the
        # ``dsp`` constraint names
        policies: list[bool | str] = ([True, *DSP_POLICIES] if int(dev["dsps"]) > 0
                                      else [False])
        if chosen != "auto" and int(dev["dsps"]) > 0:
            policies = [{"all": True, "none": False}.get(chosen, chosen)]
        for dsp in policies:
            if dsp not in synthesized:
                synthesized[dsp] = _synth(target, out_dir, vfile, harness, dsp)
            netlist, synth_log, stat_text, mapper = synthesized[dsp]
            whole = count_resources(stat_text, target, synth_log, skip=())
            tried.append(f"{dev['name']} needs {whole['luts']} LUTs, {whole['ffs']} FFs, "
                         f"{whole['dsps']} DSPs, {whole['brams']} BRAMs"
                         + (f" (DSPs for {DSP_POLICIES[dsp][1]} only)"
                            if dsp in DSP_POLICIES else ""))
            if pick_device(whole, [dev]) or not fit:
                device = dev
                break
            over = [k for k in RESOURCES if whole.get(k, 0) > int(dev[k])]
            if over != ["dsps"]:
                break
        if device is not None:
            break
    if device is None:
        raise UserError(f"--target {target}: the design does not fit any configured device "
                        f"({'; '.join(tried)}; devices in rcm_gen/flows/data/fpga.toml)")
    return (device, {**count_resources(stat_text, target, synth_log, skip=(HARNESS, OSC_TOP)),
                     "lut_mapper": mapper,
                     "dsp_policy": _dsp_policy_text(dsp, chosen != "auto")},
            netlist, synth_log, top)
