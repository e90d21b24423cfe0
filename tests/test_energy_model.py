"""The energy model's clock network and memory macros: per-access SRAM energies (their
units, the analytical model, bad tables), the clock tree estimated on a clock net (its
buffers, wire and leaf slew computed here by hand from the liberty), and a gated clock
whose flip-flops cost nothing while the gate is closed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.errors import UserError
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.macros import load_macro_library
from rcm_gen.flows.netlist import FlatNetlist, Instance
from rcm_gen.power.clock_tree import clock_buffer_cell
from rcm_gen.power.energy import EnergyModel
from rcm_gen.power.sram import macro_energies, parse_energy

DATA = Path(__file__).parent / "data"
SKY130 = DATA / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")


@pytest.fixture(scope="module")
def sky130():
    return load_liberty(SKY130)


# -- memory macros ------------------------------------------------------------------------


def test_energy_units():
    assert parse_energy("6.1 pJ", "x") == pytest.approx(6.1)
    assert parse_energy("250fJ", "x") == pytest.approx(0.25)
    assert parse_energy("0.002 nJ", "x") == pytest.approx(2.0)
    for bad in ("9.589 mW", "6.1", 6.1, "-1 pJ", "pJ"):
        with pytest.raises(UserError, match=r"^x must be an energy with its unit"):
            parse_energy(bad, "x")


def test_analytical_macro_energies_by_hand():
    """The shipped sky130 macros' energies from the model's formulas, recomputed here
    from the library's [energy] parameters: a read swings every column's bitline, a write
    drives the written columns full swing, a deselected cycle clocks the input
    registers; reads cost less than writes and more than an idle cycle."""
    import tomllib

    library = load_macro_library("sky130_sram")
    data = tomllib.loads(Path(library.source).read_text())
    p = data["energy"]
    wpr = {m["name"]: m["words_per_row"] for m in data["macros"]}
    v = library.voltage
    energies = macro_energies(library)
    for m in library.macros:
        rows, cols = m.words // wpr[m.name], m.bits * wpr[m.name]
        addr = math.ceil(math.log2(m.words))
        c_bl = rows * p["bitline_cap_per_row_ff"] + p["bitline_cap_per_column_ff"]
        common = (v * v * cols * p["wordline_cap_per_column_ff"]
                  + addr * p["decoder_fj_per_address_bit"] + p["control_fj"])
        regs = (addr + m.bits + m.bits // m.write_mask_bits + 2) * p["register_fj"]
        read = v * p["read_swing_v"] * c_bl * cols + common + m.bits * p["sense_amp_fj"]
        write = (v * v * c_bl * m.bits + v * p["read_swing_v"] * c_bl * (cols - m.bits)
                 + common + m.bits * p["write_driver_fj"])
        e = energies[m.name]
        assert e.rw_read == pytest.approx((read + regs) / 1000, rel=1e-12)
        assert e.rw_write == pytest.approx((write + regs) / 1000, rel=1e-12)
        assert e.rw_deselected == pytest.approx(regs / 1000, rel=1e-12)
        assert e.r_deselected == pytest.approx((addr + 1) * p["register_fj"] / 1000)
        assert e.rw_deselected < e.rw_read < e.rw_write
        assert "not characterized" in e.source
        half = e.scaled(0.5)
        assert half.rw_read == pytest.approx(e.rw_read / 2)


def _library(tmp_path, energy_table, macro_extra=""):
    src = load_macro_library("sky130_sram")
    m = src.macros[0]
    lines = Path(src.source).read_text().split("\n")
    keep = []
    skip = False
    for line in lines:  # the library without its [energy] table and its macros
        if line.startswith("[energy]"):
            skip = True
            continue
        if line.startswith("[ports]"):
            skip = False
        if line.startswith("[[macros]]"):
            break
        if not skip:
            keep.append(line)
    text = "\n".join(keep) + energy_table + f"""
[[macros]]
name = "{m.name}"
words = {m.words}
bits = {m.bits}
write_mask_bits = {m.write_mask_bits}
liberty = "{m.liberty}"
lef = "{m.lef}"
{macro_extra}
"""
    path = tmp_path / "library.toml"
    path.write_text(text)
    return load_macro_library(str(path))


def test_given_energies_and_bad_tables(tmp_path):
    lib = _library(tmp_path, '\n[energy]\nsource = "measured"\n',
                   'read_energy = "5 pJ"\nwrite_energy = "7.5 pJ"\ndeselected_energy = "400 fJ"')
    e = macro_energies(lib)[lib.macros[0].name]
    assert (e.rw_read, e.rw_write, e.rw_deselected) == pytest.approx((5.0, 7.5, 0.4))
    bad = _library(tmp_path, '\n[energy]\nsource = "OpenRAM"\n',
                   'read_energy = "9.59 mW"\nwrite_energy = "1 pJ"\ndeselected_energy = "1 pJ"')
    with pytest.raises(UserError, match=r"read_energy must be an energy with its unit.*'9.59 mW'"):
        macro_energies(bad)
    none = _library(tmp_path, "\n")
    with pytest.raises(UserError, match=r"no \[energy\] table"):
        macro_energies(none)
    nomodel = _library(tmp_path, '\n[energy]\nsource = "x"\n')
    with pytest.raises(UserError, match="no read_energy, write_energy and deselected_energy"):
        macro_energies(nomodel)


# -- the clock tree -------------------------------------------------------------------------


def _flops(lib, n, gated=0):
    """A clock port driving ``n`` flip-flops, ``gated`` more behind one clock-gating cell
    (its enable an input port); each flop's D is an input."""
    names = ["1'b0", "1'b1", "clk", "d", "en", "gclk"]
    clk, d, en, gclk = 2, 3, 4, 5
    insts = []
    for i in range(n + gated):
        names.append(f"q{i}")
        insts.append(Instance(f"r{i}", "sky130_fd_sc_hd__dfxtp_1",
                              {"CLK": clk if i < n else gclk, "D": d, "Q": len(names) - 1},
                              "top"))
    if gated:
        insts.append(Instance("icg", "sky130_fd_sc_hd__dlclkp_1",
                              {"CLK": clk, "GATE": en, "GCLK": gclk}, "top"))
    return FlatNetlist("top", {"clk": ("input", (clk,)), "d": ("input", (d,)),
                               "en": ("input", (en,))}, tuple(names), tuple(insts))


CONS = {"input_transition_ns": 0.1, "output_load": 0.01, "wire_load": "none",
        "wire_cap_per_fanout": 0.0, "clock_tree_fanout": 8,
        "clock_wire_cap_per_um": 0.0002, "placement_density": 0.5,
        "clock_buffer": "sky130_fd_sc_hd__clkbuf_4"}


def dfx_leak(lib):
    return lib.cells["sky130_fd_sc_hd__dfxtp_1"].leakage_nw


def test_clock_tree_by_hand(sky130):
    """100 flip-flops on the clock port, at most 8 loads a driver: 13 leaf buffers under 2
    more; wire sqrt(100 x area) um; each level's slew from the buffer's transition
    tables; per clock cycle, the buffers' internal energy and pins, the wire and the
    flops' clock pins, in their three parts."""
    net = _flops(sky130, 100)
    model = EnergyModel(net, sky130, "clk", CONS, groups=("control", "clock", "inputs"),
                        group_of_module=lambda m, t: "control")
    tree = model.trees[2]
    assert tree.levels == (13, 2) and tree.buffers == 15
    area = 100 * sky130.cells["sky130_fd_sc_hd__dfxtp_1"].area / 0.5
    assert tree.wire_um == pytest.approx(math.sqrt(100 * area))
    buf = sky130.cells["sky130_fd_sc_hd__clkbuf_4"]
    c_in = buf.pins["A"].capacitance
    c_clk = sky130.cells["sky130_fd_sc_hd__dfxtp_1"].pins["CLK"].capacitance
    share = tree.wire_pf / 16

    def slew(s, load):
        arcs = buf.pins["X"].timing
        return np.mean([t.lookup(s, load) for a in arcs for t in (a.rise, a.fall)])

    s_top = slew(0.1, 13 / 2 * c_in + share)
    s_leaf = slew(s_top, 100 / 13 * c_clk + share)
    assert tree.leaf_slew == pytest.approx(s_leaf, rel=1e-12)
    assert model.slew[2] == pytest.approx(s_leaf)

    cycles = 10
    rises = np.zeros(net.net_count)
    falls = np.zeros(net.net_count)
    rises[2] = falls[2] = cycles
    e = model.window(rises, falls, cycles, 5.0)
    v2 = sky130.voltage ** 2
    pins = cycles * 100 * (sum(a.rise.lookup(s_leaf, 0) + a.fall.lookup(s_leaf, 0)
                               for a in sky130.cells["sky130_fd_sc_hd__dfxtp_1"]
                               .pins["CLK"].power) + c_clk * v2)
    assert e.components["clock/pins"] == pytest.approx(pins, rel=1e-9)
    assert e.components["clock/wires"] == pytest.approx(cycles * tree.wire_pf * v2,
                                                        rel=1e-12)
    assert e.components["clock/tree"] > 15 * cycles * c_in * v2  # at least their pins
    assert e.by_group["clock"] == pytest.approx(sum(e.components[f"clock/{p}"]
                                                    for p in ("tree", "wires", "pins")))
    # the flops hold their value: their own group has only their leakage (their clock
    # pins are the clock's); the estimated buffers leak in the tree's part
    assert e.by_group["control"] == pytest.approx(
        100 * dfx_leak(sky130) * 5.0 * cycles * 1e-6, rel=1e-12)
    assert e.leakage == pytest.approx((100 * dfx_leak(sky130) + 15 * buf.leakage_nw)
                                      * 5.0 * cycles * 1e-6, rel=1e-12)
    summary = model.clock_tree_summary()
    assert summary["buffers"] == 15 and summary["sinks"] == 100


def test_gated_clock_costs_nothing_while_closed(sky130):
    """Behind a clock-gating cell, 32 flops whose gated clock does not toggle cost no
    clock energy; the gating cell is the tree's, the gated net has its own small tree."""
    net = _flops(sky130, 4, gated=32)
    model = EnergyModel(net, sky130, "clk", CONS, groups=("control", "clock", "inputs"),
                        group_of_module=lambda m, t: "control")
    assert model.clock_nets == [2, 5]
    assert len(model.clock_passers) == 1
    assert model.trees[5].sinks == 32 and model.trees[2].sinks == 5
    cycles = 8
    rises = np.zeros(net.net_count)
    falls = np.zeros(net.net_count)
    rises[2] = falls[2] = cycles
    closed = model.window(rises, falls, cycles, 5.0)
    rises[5] = falls[5] = cycles
    opened = model.window(rises, falls, cycles, 5.0)
    dfx = sky130.cells["sky130_fd_sc_hd__dfxtp_1"]
    per_flop = cycles * (dfx.pins["CLK"].capacitance * sky130.voltage ** 2)
    # the 32 gated flops' pins appear only when their clock runs
    assert opened.components["clock/pins"] - closed.components["clock/pins"] > 32 * per_flop
    assert closed.components["clock/pins"] < 6 * cycles * 0.1  # five sinks on the root
    assert opened.components["clock/tree"] > closed.components["clock/tree"]


def test_clock_buffer_choice(sky130):
    assert clock_buffer_cell(sky130, {"clock_buffer": "sky130_fd_sc_hd__clkbuf_8"}) \
        == "sky130_fd_sc_hd__clkbuf_8"
    chosen = clock_buffer_cell(sky130, {"dont_use": ["sky130_fd_sc_hd__lpflow_*"]})
    assert re.fullmatch(r"sky130_fd_sc_hd__clkbuf_\d+", chosen)
    with pytest.raises(UserError, match="is not a buffer cell"):
        clock_buffer_cell(sky130, {"clock_buffer": "sky130_fd_sc_hd__nand2_1"})
    osu = load_liberty(OSU018)
    assert clock_buffer_cell(osu, {}).startswith("CLKBUF")
