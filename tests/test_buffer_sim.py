"""Buffers on both simulators against the Buffer contract (read data the cycle after the
address, held while ``rd_en`` is low, old or new word on a read of the word being
written), built from flip-flops and from SkyWater 130 SRAM macros with their behavioural
models; a macro read without a hold register is caught; the tile regression with SRAM
buffers."""

import sys
from pathlib import Path

import pytest
from amaranth.hdl import ClockSignal, Const, Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rcm_gen.flows.macros import load_macro_library
from rcm_gen.gateware.buffers import Buffer
from rcm_gen.gateware.memory import MemoryBinding
from rcm_gen.hierarchy import render
from rcm_gen.presets import apply_overrides, preset
from rcm_gen.sim.runner import Design, run_cocotb

WIDTH, DEPTH = 40, 600


class _Bench(wiring.Component):
    """Buffers of several bindings on shared write and read ports, and a macro read with
    no hold register (``naive``)."""

    def __init__(self, variants, width=WIDTH, depth=DEPTH):
        self._variants = variants
        self._width, self._depth = width, depth
        ports = {"wr_addr": In(range(depth)), "wr_data": In(width), "wr_en": In(1),
                 "rd_addr": In(range(depth)), "rd_en": In(1)}
        for i in range(len(variants)):
            ports[f"rd_data_{i}"] = Out(width)
        ports["naive"] = Out(32)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        for i, (binding, transparent) in enumerate(self._variants):
            b = Buffer(self._width, self._depth, transparent=transparent, binding=binding)
            m.submodules[f"buf{i}"] = b
            m.d.comb += [b.wr_addr.eq(self.wr_addr), b.wr_data.eq(self.wr_data),
                         b.wr_en.eq(self.wr_en), b.rd_addr.eq(self.rd_addr),
                         b.rd_en.eq(self.rd_en), getattr(self, f"rd_data_{i}").eq(b.rd_data)]
        # the macro's port 1 wired straight to the output: data valid for half a cycle
        # and then unknown, so holding fails when reads pause
        m.submodules.naive = Instance(
            "sky130_sram_1kbyte_1rw1r_32x256_8",
            i_clk0=ClockSignal(), i_csb0=~self.wr_en, i_web0=Const(0, 1),
            i_wmask0=Const(0xF, 4), i_addr0=self.wr_addr[:8], i_din0=self.wr_data[:32],
            o_dout0=Signal(32), i_clk1=ClockSignal(), i_csb1=~self.rd_en,
            i_addr1=self.rd_addr[:8], o_dout1=self.naive)
        return m


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_buffer_contract(simulator):
    lib = load_macro_library("sky130_sram")
    bindings = [MemoryBinding()] + [MemoryBinding(name, lib) for name in lib.macro_names]
    plans = [b.plan(WIDTH, DEPTH) for b in bindings]
    # flip-flops; two macro rows with flip-flop columns beside and words below them; five
    # 8-bit columns with a partly used row; one 32-bit macro with columns and words
    assert [p.describe() for p in plans] == [
        "ff 600x40",
        "sram 2x1 sky130_sram_1kbyte_1rw1r_32x256_8 + ff 512x8 + 88x40",
        "sram 1x5 sky130_sram_1kbyte_1rw1r_8x1024_8",
        "sram 1x1 sky130_sram_2kbyte_1rw1r_32x512_8 + ff 512x8 + 88x40"]
    variants = [(b, t) for b in bindings for t in (False, True)]
    # written as rcm_gen writes a design: each buffer variant a module of its own
    text = render(_Bench(variants), "rcm_buffer_bench").text
    buffers = [{"port": f"rd_data_{i}", "width": WIDTH, "depth": DEPTH, "transparent": t,
                "strict": True} for i, (_, t) in enumerate(variants)]
    buffers.append({"port": "naive", "width": 32, "depth": 256, "transparent": False,
                    "strict": False})
    r = run_cocotb(Design("rcm_buffer_bench", text, {
        "width": WIDTH, "depth": DEPTH, "cycles": 3000, "seed": 11, "buffers": buffers}),
        simulator, "buffer_tb")
    res = r.results
    assert all(c > 2000 for c in res["checked"][:-1]), res
    assert res["wrong"][:-1] == [0] * len(variants)
    assert res["held"] > 200 and res["same_cycle_reads"] > 200
    assert res["previous_cycle_reads"] > 200
    # the macro read with no hold register is wrong once reads pause (its data went
    # unknown, or random under Verilator), and on reads of the word being written
    assert res["wrong"][-1] > 100, res


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_latch_buffer_contract(simulator):
    """Latch memories (behavioural clock gates, and the integrated clock-gating cell's
    text, which simulators do not see) keep the Buffer contract beside flip-flops: the
    read of a word whose latches open at the same edge gives the old word."""
    from rcm_gen.gateware.memory import MemoryBinding

    width, depth = 24, 80  # two rows of latch blocks (64 + 16 words)
    gate = ("sky130_fd_sc_hd__dlclkp_1", "CLK", "GATE", "GCLK")
    ff, latch, gated = MemoryBinding(), MemoryBinding("latch"), MemoryBinding("latch", gate=gate)
    assert [b.plan(width, depth).describe() for b in (ff, latch, gated)] == [
        "ff 80x24", "latch 80x24", "latch 80x24"]
    variants = [(ff, False), (latch, False), (latch, True), (gated, False)]
    text = render(_Bench(variants, width, depth), "rcm_buffer_bench").text
    assert "rcm_buffer_bench__latch_block_64x24" in text
    assert "rcm_buffer_bench__latch_block_16x24" in text
    buffers = [{"port": f"rd_data_{i}", "width": width, "depth": depth, "transparent": t,
                "strict": True} for i, (_, t) in enumerate(variants)]
    buffers.append({"port": "naive", "width": 32, "depth": 256, "transparent": False,
                    "strict": False})
    r = run_cocotb(Design("rcm_buffer_bench", text, {
        "width": width, "depth": depth, "cycles": 800, "seed": 5, "buffers": buffers}),
        simulator, "buffer_tb")
    res = r.results
    assert all(c > 500 for c in res["checked"][:-1]), res
    assert res["wrong"][:-1] == [0] * len(variants)
    assert res["held"] > 50 and res["same_cycle_reads"] > 50
    assert res["previous_cycle_reads"] > 50


@pytest.mark.parametrize("simulator", [
    "icarus", pytest.param("verilator", marks=pytest.mark.long)])
def test_macros_with_latches_keep_the_contract(simulator):
    """``auto`` on sky130 puts a 600 x 40 buffer in a macro with latches beside and below
    it; read and written at random, it keeps the Buffer contract."""
    from rcm_gen.gateware.memory import STDCELL_BIT_AREAS

    lib = load_macro_library("sky130_sram")
    areas = tuple(sorted(STDCELL_BIT_AREAS["sky130_fd_sc_hd__*"].items()))
    gate = ("sky130_fd_sc_hd__dlclkp_1", "CLK", "GATE", "GCLK")
    binding = MemoryBinding("auto", lib, gate=gate, areas=areas)
    assert binding.plan(WIDTH, DEPTH).describe() == (
        "sram 1x1 sky130_sram_2kbyte_1rw1r_32x512_8 + latch 512x8 + 88x40")
    variants = [(binding, False), (binding, True)]
    text = render(_Bench(variants), "rcm_buffer_bench").text
    assert "latch_block_" in text and "sky130_sram_2kbyte_1rw1r_32x512_8" in text
    buffers = [{"port": f"rd_data_{i}", "width": WIDTH, "depth": DEPTH, "transparent": t,
                "strict": True} for i, (_, t) in enumerate(variants)]
    buffers.append({"port": "naive", "width": 32, "depth": 256, "transparent": False,
                    "strict": False})
    r = run_cocotb(Design("rcm_buffer_bench", text, {
        "width": WIDTH, "depth": DEPTH, "cycles": 1500, "seed": 3, "buffers": buffers}),
        simulator, "buffer_tb")
    res = r.results
    assert all(c > 1000 for c in res["checked"][:-1]), res
    assert res["wrong"][:-1] == [0, 0]
    assert res["same_cycle_reads"] > 50 and res["previous_cycle_reads"] > 50


def _tile_regression():
    sys.path.insert(0, str(Path(__file__).parent))
    from test_tile_sim import check_regression, regression_cases

    return regression_cases, check_regression


@pytest.mark.slow
@pytest.mark.parametrize("simulator, count", [
    ("icarus", 3), pytest.param("verilator", 6, marks=pytest.mark.long)])
def test_tile_with_sram_buffers(simulator, count):
    """The tile RTL regression with every buffer in sky130 SRAM macros."""
    from rcm_gen.flows.macros import instantiated_macros
    from rcm_gen.generate import to_verilog
    from rcm_gen.tile.simulate import simulate_layers

    regression_cases, check_regression = _tile_regression()
    cfg = apply_overrides(preset("rcm-small"), ["memory=sram", "macros=sky130_sram"])
    assert len(instantiated_macros(to_verilog(cfg))) >= 1
    cases = regression_cases(cfg, count, seed=7, max_c=6, max_m=4, max_hw=6)
    results, _ = simulate_layers(cfg, cases, simulator)
    summary = check_regression(results, cases)
    assert summary["cases"] == count


@pytest.mark.parametrize("simulator, count", [
    ("icarus", 1), pytest.param("verilator", 2, marks=pytest.mark.long)])
def test_tile_with_latch_buffers(simulator, count):
    """A short slice of the tile RTL regression with every buffer a latch memory (under
    Verilator, whose build takes over a minute, in the long suite)."""
    from rcm_gen.generate import to_verilog
    from rcm_gen.tile.simulate import simulate_layers

    regression_cases, check_regression = _tile_regression()
    cfg = apply_overrides(preset("rcm-small"), ["memory=latch"])
    assert "rcm_tile__latch_block_" in to_verilog(cfg)
    cases = regression_cases(cfg, count, seed=11, max_c=4, max_m=4, max_hw=5)
    results, _ = simulate_layers(cfg, cases, simulator)
    summary = check_regression(results, cases)
    assert summary["cases"] == count
