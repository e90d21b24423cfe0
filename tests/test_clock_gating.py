"""Clock gating: the gating cell of each library (SkyWater 130's integrated ``dlclkp``; on
OSU 0.18 µm, which has none, a latch and an AND gate from its cells); a gated MAC that
synthesizes with gating cells on both libraries and is timed with its clock-gating setup
and hold checks; its gate-level run equal to the RTL's cycle for cycle; the same MAC with
clock gating off clocked every cycle; and a library with no cell to gate a clock refused
with one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.errors import UserError
from rcm_gen.flows.clockgate import count_gating, gating_cell, yosys_commands
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.synth import synthesize
from rcm_gen.presets import apply_overrides, preset

HERE = Path(__file__).resolve().parent
SKY130 = HERE / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
LIBRARIES = {"osu018": str(OSU018), "sky130": str(SKY130)}


def test_gating_cell_of_each_library():
    sky = gating_cell(load_liberty(SKY130))
    assert (sky.kind, sky.cell, sky.enable, sky.clock, sky.gated) == (
        "integrated", "sky130_fd_sc_hd__dlclkp_1", "GATE", "CLK", "GCLK")
    assert sky.verilog is None and "dlclkp_1" in sky.description
    osu = gating_cell(load_liberty(OSU018))
    assert (osu.kind, osu.cells) == ("latch_and", ("INVX1", "LATCH", "AND2X1"))
    assert "no integrated clock-gating cell" in osu.description
    # the latch holds the enable while the clock is high: it is open on the inverted clock
    assert re.search(r"INVX1 inv \(\.A\(CLK\), \.Y\(clk_n\)\);\s*LATCH latch "
                     r"\(\.CLK\(clk_n\), \.D\(CE\), \.Q\(en_l\)\);\s*AND2X1 gate "
                     r"\(\.A\(CLK\), \.B\(en_l\), \.Y\(GCLK\)\);", osu.verilog)
    # excluded cells are not chosen
    with pytest.raises(UserError, match="no integrated clock-gating cell"):
        gating_cell(load_liberty(OSU018), ["LATCH"])
    assert gating_cell(load_liberty(SKY130), ["*dlclkp_1"]).cell == "sky130_fd_sc_hd__dlclkp_2"
    assert yosys_commands(sky)[-2] == ("clockgate -pos sky130_fd_sc_hd__dlclkp_1 "
                                       "GATE:CLK:GCLK -min_net_size 4")
    log = ("Converted 7 FFs.\n-- Running command `select -count t:X @rcm_cg_before %d' --\n"
           "\n2 objects.\n")
    assert count_gating(log) == (2, 7)
    with pytest.raises(ValueError):
        count_gating("no such run")


def test_library_without_a_gating_cell_is_refused(tmp_path):
    """OSU 0.18 µm without its latch has neither an integrated gate nor a way to build
    one: exit status 2, one line, before any synthesis."""
    text = OSU018.read_text()
    start = text.index("cell (LATCH)")
    end = text.index("cell (MUX2X1)")
    lib = tmp_path / "nolatch.lib"
    lib.write_text(text[:start] + text[end:])
    proc = subprocess.run([sys.executable, "-m", "rcm_gen", "synth", "mac16", "--liberty",
                           str(lib), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no integrated clock-gating cell" in lines[0] \
        and "nolatch" in lines[0] and "clock_gating=false" in lines[0], proc.stderr
    assert not (tmp_path / "out" / "report.json").exists()


@pytest.fixture(scope="module")
def gated_mac16(tmp_path_factory):
    """mac16 synthesized and timed on both libraries with clock gating on, and on OSU
    0.18 µm with it off."""
    out = {}
    for name, lib in LIBRARIES.items():
        for gated in (True, False) if name == "osu018" else (True,):
            cfg = apply_overrides(preset("mac16"), [f"clock_gating={str(gated).lower()}"])
            work = tmp_path_factory.mktemp(f"{name}-{gated}")
            out[name, gated] = (cfg, synthesize(cfg, "asic", out_dir=work, liberty=lib))
    return out


@pytest.mark.synth
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_gated_mac_synthesizes_and_times(gated_mac16, library):
    """The accumulator and product registers share gated clocks through the library's
    cell; timing checks the gates' setup and hold and Fmax stays finite; clock gating
    off leaves every flip-flop on the free-running clock."""
    _, r = gated_mac16[library, True]
    cg = r["clock_gating"]
    assert cg["enabled"] and cg["gates"] >= 2
    # the product (32 bits) and the accumulator (42) behind their gates; en_p, clear_p not
    assert cg["gated_flip_flops"] == cg["flip_flops"] - 2
    netlist = Path(r["netlist"]).read_text()
    cells = {"osu018": ("LATCH", "AND2X1"), "sky130": ("sky130_fd_sc_hd__dlclkp_1",)}
    for cell in cells[library]:
        assert len(re.findall(rf"^\s*{cell}\s", netlist, re.M)) >= cg["gates"], cell
    for kind in ("setup", "hold"):
        check = cg["checks"][kind]
        assert check is not None and "clock gating-check end-point" in check["endpoint"]
        assert np.isfinite(check["slack_ns"]) and check["slack_ns"] > 0, (kind, check)
    assert np.isfinite(r["fmax_mhz"]) and r["fmax_mhz"] > 0
    # Fmax includes the gating setup check
    assert r["critical_path_ns"] >= r["clock_ns"] - cg["checks"]["setup"]["slack_ns"] - 1e-9
    if (library, False) in gated_mac16:
        _, off = gated_mac16[library, False]
        assert off["clock_gating"] == {"enabled": False, "flip_flops": cg["flip_flops"]}
        assert not re.search(r"^\s*LATCH\s", Path(off["netlist"]).read_text(),
                             re.M)


def _rtl_acc(cfg, inputs: dict[str, np.ndarray]) -> list[int]:
    """The RTL MAC's accumulator after each cycle's edge (Amaranth's simulator)."""
    from amaranth.sim import Simulator

    from rcm_gen.gateware.mac import MAC
    from rcm_gen.gateware.modes import LaneMode

    dut = MAC(cfg)
    got: list[int] = []

    async def bench(ctx):
        n = len(inputs["a"])
        for t in range(n):
            for port, values in inputs.items():
                if port == "mode":
                    ctx.set(dut.mode, LaneMode(int(values[t])))
                elif port != "rst":
                    ctx.set(getattr(dut, port), int(values[t]))
            await ctx.tick()
            got.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.synth
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_gated_mac_gate_level_equals_rtl(gated_mac16, library):
    """The gated netlist on the cycle simulator (gated clocks, latches, integrated gates)
    gives the RTL's accumulator in every cycle, on random operands, modes and enables
    (the gates spend long stretches closed), and its gated clock nets toggle less than
    the clock."""
    from rcm_gen.flows.netlist import read_netlist
    from rcm_gen.sim.gate_cycle import CycleSim

    cfg, r = gated_mac16[library, True]
    lib = load_liberty(LIBRARIES[library])
    net = read_netlist(r["netlist"], lib, "rcm_mac", Path(r["netlist"]).parent / "power")
    rng = np.random.default_rng(3)
    n = 300
    inputs = {"a": rng.integers(0, 1 << 16, n), "w": rng.integers(0, 1 << 16, n),
              "mode": rng.choice([0, 1, 2], n), "act_signed": rng.integers(0, 2, n),
              "en": (rng.random(n) < 0.3).astype(int), "clear": (rng.random(n) < 0.05)
              .astype(int), "rst": np.zeros(n, dtype=int)}
    want = _rtl_acc(cfg, inputs)
    sim = CycleSim(net, lib, "clk")
    run = sim.run({p: inputs[p] for p in sim.inputs}, [(2, n)])
    assert [int(v) for v in run.outputs["acc"]] == [v & ((1 << 42) - 1) for v in want]
    assert len(set(want[2:])) > 20
    # the gated clocks: the gates' outputs (OSU: the AND gates the clock drives)
    clk = list(net.names).index("clk")
    pin = {"osu018": ("AND2X1", "Y"), "sky130": ("sky130_fd_sc_hd__dlclkp_1", "GCLK")}[library]
    gclk = [i.pins[pin[1]] for i in net.instances
            if i.cell == pin[0] and clk in i.pins.values()]
    assert len(gclk) == r["clock_gating"]["gates"]
    assert run.rises[0, clk] == n - 2
    assert all(0 < run.rises[0, k] < n - 2 for k in gclk)


@pytest.mark.synth
@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_gated_clock_energy_per_toggle(gated_mac16, library):
    """The gates are sinks of the clock port's net and each gated clock a clock net of
    its own; the whole gate (OSU: its latch too) is the clock tree's; a gated register's
    clock pins cost energy only when its gated clock toggles, so a window with the gates
    closed has a small fraction of the open window's clock-pin energy, and of its tree the
    gates and the port's net but not the gated nets' own trees."""
    from rcm_gen.flows.asic import asic_constraints
    from rcm_gen.flows.netlist import read_netlist
    from rcm_gen.power.energy import EnergyModel
    from rcm_gen.sim.gate_cycle import CycleSim

    _, r = gated_mac16[library, True]
    lib = load_liberty(LIBRARIES[library])
    net = read_netlist(r["netlist"], lib, "rcm_mac", Path(r["netlist"]).parent / "power")
    cons = asic_constraints({"liberty": LIBRARIES[library]})
    settings = cons["libraries"].get(library if library == "osu018" else SKY130.name, {})
    cons["clock_buffer"] = settings.get("clock_buffer")
    model = EnergyModel(net, lib, "clk", cons, top_module="rcm_mac")
    gates = r["clock_gating"]["gates"]
    gate_cells = {"osu018": {"INVX1", "LATCH", "AND2X1"},
                  "sky130": {"sky130_fd_sc_hd__dlclkp_1"}}[library]
    clk = net.ports["clk"][1][0]
    in_gates = {i for i, inst in enumerate(net.instances) if inst.cell in gate_cells
                and (clk in inst.pins.values() or inst.cell == "LATCH")}
    assert len(in_gates) == gates * len(gate_cells)
    assert in_gates <= model.clock_passers
    # clock port, gated clocks (and OSU's inverted clock per gate), each with its own tree
    assert len(model.clock_nets) == 1 + gates * (2 if library == "osu018" else 1)
    assert model.trees[clk].sinks >= gates
    rng = np.random.default_rng(4)
    n = 200
    en = np.r_[np.ones(100, dtype=int), np.zeros(100, dtype=int)]
    inputs = {"a": rng.integers(0, 1 << 16, n), "w": rng.integers(0, 1 << 16, n),
              "mode": np.zeros(n, dtype=int), "act_signed": np.zeros(n, dtype=int),
              "en": en, "clear": np.zeros(n, dtype=int), "rst": np.zeros(n, dtype=int)}
    run = CycleSim(net, lib, "clk").run(inputs, [(10, 100), (110, 200)])
    open_, closed = (model.window(run.rises[k], run.falls[k], 90, 5.0) for k in (0, 1))
    pins = [e.components["clock/pins"] for e in (open_, closed)]
    tree = [e.components["clock/tree"] for e in (open_, closed)]
    assert pins[1] < 0.1 * pins[0], pins
    # the gates and the port's tree stay clocked; the gated nets' own trees do not
    assert 0 < tree[1] < tree[0], tree
