"""How long ``rcm-gen generate`` takes and what it writes: per design point, the wall
time and CPU time (the command's process and the tools it ran: Yosys) of the whole
command, the Verilog's size, its module count and the instances they make.  No
pass/fail; the wall time of a shared machine varies with its load, the CPU time less.

    python benchmarks/generate_speed.py [PRESET ...] [--repeat N] [--baseline]

Presets default to ``rcm-default`` and ``rcm-16x16``.  Each runs ``--repeat`` times (the
fastest run is printed; default 1).  ``--baseline`` adds, for comparison, Amaranth's own
Verilog backend on the same design in this process (one module per instance, every
instance elaborated and converted: what ``generate`` wrote before the hierarchy; minutes
for a 256-MAC tile).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def generate(name: str, out: Path) -> dict:
    """One ``rcm-gen generate`` run in a process of its own."""
    cpu, wall = _children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rcm_gen", "generate", name, "-o", str(out)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - wall
    cpu = _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"rcm-gen generate {name} failed: {proc.stderr.strip()}")
    manifest = json.loads((out / "manifest.json").read_text())
    vfile = out / f"{manifest['top']}.v"
    return {"wall_s": wall, "cpu_s": cpu, "bytes": vfile.stat().st_size,
            "modules": len(manifest["modules"]),
            "instances": sum(m["instances"] for m in manifest["modules"])}


def baseline(name: str) -> dict:
    """Amaranth's own backend: one module per instance."""
    from amaranth.back import verilog

    from rcm_gen.generate import build_component, platform_for, top_name
    from rcm_gen.presets import preset

    cfg = preset(name)
    cpu0, wall = os.times(), time.perf_counter()
    text = verilog.convert(build_component(cfg), name=top_name(cfg), emit_src=False,
                           platform=platform_for(cfg))
    wall = time.perf_counter() - wall
    cpu1 = os.times()
    cpu = (cpu1.user + cpu1.system + cpu1.children_user + cpu1.children_system
           - cpu0.user - cpu0.system - cpu0.children_user - cpu0.children_system)
    modules = len(re.findall(r"^module\s", text, re.M))
    return {"wall_s": wall, "cpu_s": cpu, "bytes": len(text.encode()), "modules": modules,
            "instances": modules}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="*", default=["rcm-default", "rcm-16x16"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", action="store_true",
                        help="also time Amaranth's own backend (one module per instance)")
    args = parser.parse_args()
    print(f"{'design':<14} {'writer':<22} {'wall s':>8} {'CPU s':>8} {'bytes':>12} "
          f"{'modules':>8} {'instances':>10}")
    with tempfile.TemporaryDirectory(prefix="rcm_gen_bench_") as tmp:
        for name in args.presets:
            runs = [generate(name, Path(tmp) / f"{name}-{i}") for i in range(args.repeat)]
            best = min(runs, key=lambda r: r["wall_s"])
            rows = [("rcm-gen generate", best)]
            if args.baseline:
                rows.append(("Amaranth, per instance", baseline(name)))
            for writer, r in rows:
                print(f"{name:<14} {writer:<22} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} "
                      f"{r['bytes']:>12,} {r['modules']:>8,} {r['instances']:>10,}",
                      flush=True)


if __name__ == "__main__":
    main()
