"""rcm_gen's energy model against OpenSTA's report_power on the same per-net activity, on a
MAC and on a tile (see rcm_gen/power/opensta.py for how the activity gets in and what is
compared): switching, leakage, internal (rcm_gen's, and OpenSTA's 2019 rule rebuilt from
rcm_gen's lookups), totals, tolerances; then why the direct paths do not work.  Prints
figures and wall times; no pass/fail.

    python benchmarks/opensta_check.py [--designs mac16,rcm-small] [--cycles 1000]
        [--liberty FILE] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from rcm_gen.power.opensta import (
    format_comparison,
    mac_activity,
    netlist_model,
    opensta_power,
    tile_activity,
)
from rcm_gen.presets import preset
from rcm_gen.tools import cache_dir


def _direct_pins_attempt(netlist: str, lib: str, top: str) -> str:
    """What Debian's ``set_power_activity -pins`` says."""
    with tempfile.TemporaryDirectory() as d:
        tcl = Path(d) / "t.tcl"
        tcl.write_text(f"read_liberty {lib}\nread_verilog {netlist}\nlink_design {top}\n"
                       "set p [lindex [get_pins -hierarchical *] 0]\n"
                       "if {[catch {set_power_activity -pins $p -activity 0.3} msg]} "
                       "{puts \"set_power_activity -pins: $msg\"}\n")
        out = subprocess.run(["sta", "-no_init", "-exit", str(tcl)], capture_output=True,
                             text=True, timeout=600).stdout
    return next((ln for ln in out.splitlines() if ln.startswith("set_power_activity")),
                "(no error)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default="mac16,rcm-small")
    ap.add_argument("--cycles", type=int, default=1000, help="cycles per MAC mode (1000)")
    ap.add_argument("--liberty", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out = {}
    for name in [d for d in args.designs.split(",") if d]:
        cfg = preset(name)
        t0 = time.perf_counter()
        if getattr(cfg, "kind", "") == "tile":
            act = tile_activity(cfg, liberty=args.liberty)
        else:
            act = mac_activity(cfg, cycles=args.cycles, liberty=args.liberty)
        t1 = time.perf_counter()
        work = cache_dir() / "opensta" / f"{name}-{act.power.lib.name}"
        c = act.compare(work)
        t2 = time.perf_counter()
        print(format_comparison(c, f"{name} ({act.what}; {act.checked:,} output values "
                                   "checked)"))
        print(f"  inputs' switching: rcm_gen {c['inputs_switching']['rcm_gen']:.6e} W, "
              f"OpenSTA (the input flip-flops' output nets) "
              f"{c['inputs_switching']['opensta']:.6e} W")
        print(f"  wall: gate-level run {t1 - t0:.1f} s, comparison (OpenSTA + rebuilt rule) "
              f"{t2 - t1:.1f} s; {len(act.power.netlist.instances):,} cells")
        # the direct path: OpenSTA propagating from the input ports overwrites the pins
        gp = act.power
        free = opensta_power(gp.netlist, gp.lib, netlist_model(gp), act.rises, act.falls,
                             act.cycles,
                             gp.clock_ns, "clk", gp.constraints, work / "ports",
                             hold_inputs=False)
        t3 = time.perf_counter()
        o = c["opensta"]

        def rel(a: float, b: float) -> str:
            return f"{a / b - 1:+.1%}" if b else "-"

        print(f"  with the input ports as ports (OpenSTA propagates from them and overwrites "
              f"the pins it reaches): internal {free.internal:.6e} W "
              f"({rel(free.internal, o['internal'])} against the pins' activity), switching "
              f"{free.switching:.6e} W ({rel(free.switching, o['switching'])}) "
              f"({t3 - t2:.1f} s)")
        print("  " + _direct_pins_attempt(gp.report["netlist"], str(gp.lib.path),
                                          gp.report["top"]) + "\n", flush=True)
        c["wall_s"] = {"gate_level": t1 - t0, "comparison": t2 - t1}
        c["ports_as_ports"] = {"internal": free.internal, "switching": free.switching,
                               "leakage": free.leakage}
        out[name] = c
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
