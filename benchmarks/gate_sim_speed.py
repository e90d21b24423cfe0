"""Gate-level simulation speed on a tile: the netlist's size, the simulator's build (time,
size, the peak memory of its compiler) and run (cycles per second) on the layers that
``rcm-gen power`` replays, with every output checked against the RTL's.  Goal: the
gate-level part of ``rcm-gen power rcm-16x16`` (about 30,000 cycles) in a few minutes on
2 cores, so that the whole power run (synthesis cached) takes at most 10 minutes.  Prints
figures; no pass/fail.

    python benchmarks/gate_sim_speed.py [--preset rcm-small] [--liberty FILE]
        [--modes 16,8,4] [--rtl verilator] [--cold]

The presets are synthesized first when the synthesis cache lacks them (minutes for
``rcm-16x16``).  The RTL recordings of the layers are kept under
``<cache>/bench_gate_sim`` so that a second run times the gate level alone; ``--cold``
removes the design's gate-level build first.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from rcm_gen.flows.netlist import read_netlist
from rcm_gen.power.mac import _library, _synthesized, _used_macros
from rcm_gen.power.tile import TileGate, _windows, energy_case, record_layers, tile_modes
from rcm_gen.presets import preset
from rcm_gen.sim.gate_cycle import MacroPorts
from rcm_gen.sim.gate_level import gate_simulation
from rcm_gen.tools import cache_dir

SKY130 = Path(__file__).resolve().parents[1] / "tests/data/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"


def _rss_children_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _cpu_children_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="rcm-small")
    ap.add_argument("--liberty", default=str(SKY130))
    ap.add_argument("--modes", default=None, help="bits of the layers (default: every mode)")
    ap.add_argument("--rtl", default="verilator", choices=("verilator", "icarus"),
                    help="the RTL simulator that records the layers (verilator)")
    ap.add_argument("--cold", action="store_true", help="rebuild the gate-level simulation")
    args = ap.parse_args()
    cfg = preset(args.preset)
    t = time.perf_counter()
    report = _synthesized(cfg, args.liberty, None, None,
                          lambda out: print(f"(synthesizing in {out})"))
    lib, _ = _library(report, args.liberty, None)
    print(f"{args.preset} on {lib.name}: synthesis (cache) {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    macros = _used_macros(cfg, report)
    from rcm_gen.flows.liberty import load_liberty

    macro_cells = {m.name: load_liberty(m.liberty).cells[m.name] for m in macros}
    net = read_netlist(report["netlist"], lib, "rcm_tile",
                       Path(report["netlist"]).parent / "power",
                       tuple(m.liberty for m in macros), frozenset(macro_cells))
    read_s = time.perf_counter() - t
    seq = sum(1 for i in net.instances if lib.cells[i.cell].sequential)
    print(f"netlist: {len(net.instances):,} cells ({seq:,} sequential), {net.net_count:,} "
          f"nets, {len(net.macros)} macros; read in {read_s:.1f} s")

    by_name = {m.name: m for m in macros}
    ports = [MacroPorts(m.path, by_name[m.cell], m.pins) for m in net.macros]
    t = time.perf_counter()
    sim = gate_simulation(net, lib, "clk", "cycle", sample="before", macros=ports)
    prep_s = time.perf_counter() - t
    if args.cold:
        shutil.rmtree(sim.dir, ignore_errors=True)
    size = getattr(sim, "program_bytes", None)
    if size is None:
        size = len(sim.source.encode())
    rss0 = _rss_children_mb()
    t = time.perf_counter()
    sim.build()
    build_s = time.perf_counter() - t
    rss = _rss_children_mb()
    print(f"simulator: program of {size / 1e6:.1f} MB written in {prep_s:.1f} s, built in "
          f"{build_s:.1f} s (peak memory of a build process "
          f"{rss:.0f} MB{'' if rss > rss0 else ', before this run: cached'})")

    bits = ([int(b) for b in args.modes.split(",")] if args.modes
            else [m.bits for m in tile_modes(cfg)])
    key = cache_dir() / "bench_gate_sim" / f"{args.preset}-{'-'.join(map(str, bits))}.pkl"
    if key.exists():
        recs = pickle.loads(key.read_bytes())
    else:
        t = time.perf_counter()
        recs = record_layers(cfg, [energy_case(cfg, b, "conv3x3", 1) for b in bits],
                             simulator=args.rtl)
        print(f"RTL recording of {len(recs)} layers: {time.perf_counter() - t:.1f} s")
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(recs))
        tmp.replace(key)
    total = sum(r.cycles for r in recs)
    # one recording after another in this process (rcm-gen power runs them in parallel)
    t = time.perf_counter()
    cpu0 = _cpu_children_s()
    runs = []
    for rec in recs:
        inputs = {p: np.asarray(rec.inputs[p], dtype=object) for p in sim.inputs}
        runs.append(sim.run(inputs, [(a, b) for _, a, b in _windows(rec, 4)], tag="bench"))
    run_s = time.perf_counter() - t
    cpu = _cpu_children_s() - cpu0
    rss = _rss_children_mb()
    gate = TileGate.__new__(TileGate)
    checked = sum(gate.check_outputs(i, rec, run)
                  for i, (rec, run) in enumerate(zip(recs, runs, strict=True)))
    sim_s = sum(run.wall_s for run in runs)
    moves = int(sum(run.rises.sum() + run.falls.sum() for run in runs))
    print(f"run: {total:,} cycles in {run_s:.1f} s ({total / run_s:,.0f} cycles/s; the "
          f"simulator itself {sim_s:.1f} s wall, {cpu:.1f} s of CPU: "
          f"{total / max(cpu, 1e-9):,.0f} cycles per CPU second; peak memory of a child "
          f"process {rss:.0f} MB), {checked:,} outputs equal the RTL's, "
          f"{moves:,} transitions counted")
    print(f"gate level in all: {read_s + prep_s + build_s + run_s:.1f} s (wall; the machine's "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
