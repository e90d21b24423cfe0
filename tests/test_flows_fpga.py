"""FPGA flows: ECP5 out of context, iCE40 and Nexus, in a harness that times every path;
resources of the design alone, post-route Fmax, device choice, and reports that cannot be
parsed."""

import json
import re
from pathlib import Path

import pytest

from rcm_gen.errors import ToolFailed, UserError
from rcm_gen.flows import fpga
from rcm_gen.flows.fpga import (
    count_resources,
    fpga_constraints,
    harness_verilog,
    parse_nextpnr_report,
    pick_device,
)
from rcm_gen.flows.synth import synthesize
from rcm_gen.flows.yosys import run_yosys
from rcm_gen.presets import preset


@pytest.mark.synth
@pytest.mark.parametrize("target, dsp_cell", [("ecp5", "MULT18X18D"), ("ice40", "SB_MAC16")])
def test_fpga_mac8(tmp_path, target, dsp_cell):
    st = synthesize(preset("mac8"), target, out_dir=tmp_path / "st")
    fx = synthesize(preset("mac8-fixed"), target, out_dir=tmp_path / "fx")
    first = fpga_constraints(target)["devices"][0]
    for r in (st, fx):
        assert r["target"] == target and r["luts"] > 0 and r["ffs"] > 0
        assert r["device"] == f"{first['name']} ({first['package']})"
        assert r["tools"][f"nextpnr_{target}"] and r["tools"]["yosys"]
        assert Path(r["log"]).exists() and Path(r["synth_log"]).exists()
        assert json.loads((Path(r["log"]).parent / "report.json").read_text()) == r
        # Fmax is nextpnr's figure for the clock
        text = (Path(r["log"]).parent / "nextpnr-report.json").read_text()
        assert r["fmax_mhz"] == parse_nextpnr_report(text, r["log"])["fmax_mhz"] > 0
        assert re.search(rf"Max frequency for clock +'clk\S*': {r['fmax_mhz']:.2f} MHz",
                         Path(r["log"]).read_text())
        # the design alone: the harness's registers are not counted
        stat = (Path(r["log"]).parent / "stat.json").read_text()
        assert count_resources(stat, target, "x") == {k: r[k] for k in fpga.RESOURCES}
        assert count_resources(stat, target, "x", skip=())["ffs"] > r["ffs"]
    # the fixed multiplier goes to a DSP block; the ST multiplier is built from LUTs
    assert fx["dsps"] == 1 and st["dsps"] == 0
    assert st["luts"] > fx["luts"]
    # the accumulator and pipeline registers are the same in both
    assert st["ffs"] == fx["ffs"]
    assert dsp_cell in (tmp_path / "fx" / "synth.log").read_text()
    # a report cut short raises, naming the log
    text = (tmp_path / "st" / "nextpnr-report.json").read_text()
    for cut in (text[:len(text) // 2], "", "{}", '{"fmax": {}, "utilization": {}}'):
        with pytest.raises(ToolFailed, match=rf"^cannot read Fmax .*; log: {st['log']}$"):
            parse_nextpnr_report(cut, st["log"])
    stat = (tmp_path / "st" / "stat.json").read_text()
    assert count_resources(stat, target, "x")["luts"] == st["luts"]
    with pytest.raises(ToolFailed, match=r"^cannot read cell counts .*; log: y\.log$"):
        count_resources(stat[:len(stat) // 3], target, "y.log")


@pytest.mark.synth
def test_dsp_mac8_on_ecp5_uses_two_dsp_blocks(tmp_path):
    """The dsp architecture's two multipliers go to two MULT18X18D blocks; the LUTs left
    are its operand multiplexers, the sum of the products and the accumulator."""
    r = synthesize(preset("mac8-dsp"), "ecp5", out_dir=tmp_path)
    assert r["dsps"] == 2 and 0 < r["luts"] < 400 and r["fmax_mhz"] > 0
    stat = json.loads((tmp_path / "stat.json").read_text())["modules"]
    products = next(m for name, m in stat.items() if name.endswith("__products"))
    assert products["num_cells_by_type"]["MULT18X18D"] == 2


@pytest.mark.synth
def test_ecp5_dsp_block_holds_the_mac_registers(tmp_path):
    """With ``dsp_block`` ``ecp5`` the dsp MAC's operand and product registers are the
    MULT18X18D blocks' own: the same two DSP blocks with their input and output registers
    on, and the fabric's flip-flops fewer by about the bits that moved into them; the
    fixed MAC's likewise (its operand words' registers, mode and signedness with them)."""
    from rcm_gen.gateware.multiplier import _dsp_operand_widths

    base = preset("mac16-dsp").replace(pipeline=2)
    generic = synthesize(base, "ecp5", out_dir=tmp_path / "generic")
    block = synthesize(base.replace(dsp_block="ecp5"), "ecp5", out_dir=tmp_path / "block")
    assert generic["dsps"] == block["dsps"] == 2 and block["fmax_mhz"] > 0
    netlist = json.loads((tmp_path / "block" / "ecp5.json").read_text())
    mults = [c for m in netlist["modules"].values() for c in m.get("cells", {}).values()
             if c["type"] == "MULT18X18D"]
    assert len(mults) == 2
    for cell in mults:
        params = cell["parameters"]
        assert [params[f"REG_{r}_CLK"] for r in ("INPUTA", "INPUTB", "OUTPUT")] == \
            ["CLK0"] * 3
    # one reset net for the pair: a DSP slice's two multipliers share it
    assert mults[0]["connections"]["RST1"] == mults[1]["connections"]["RST1"]
    (a0, b0), (a1, b1) = _dsp_operand_widths(base)
    moved = 2 * (a0 + b0 + a1 + b1)  # the operands' registers and the products'
    assert 0.9 * moved <= generic["ffs"] - block["ffs"] <= moved, (generic["ffs"],
                                                                  block["ffs"], moved)
    # the fixed MAC the same way: its (W+1)xW multiplier's operands and product
    fixed = preset("mac8-fixed").replace(pipeline=2)
    generic = synthesize(fixed, "ecp5", out_dir=tmp_path / "fixed-generic")
    block = synthesize(fixed.replace(dsp_block="ecp5"), "ecp5", out_dir=tmp_path / "fixed")
    assert generic["dsps"] == block["dsps"] == 1 and block["fmax_mhz"] > 0
    moved = (9 + 8) + 17
    assert 0.9 * moved <= generic["ffs"] - block["ffs"] <= moved, (generic["ffs"],
                                                                  block["ffs"])


def test_dsp_block_refused_off_its_family(capsys, tmp_path):
    """ECP5 primitives are refused by the other targets (ASIC and its power flow
    included), before anything runs, with one line naming the key."""
    from rcm_gen.cli import main

    for target in ("asic", "nexus"):
        argv = ["synth", "rcm-small", "--set", "mac.arch=dsp", "--set",
                "mac.dsp_block=ecp5", "--target", target, "--out", str(tmp_path)]
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.strip().splitlines() == [
            f"rcm-gen: error: --target {target}: mac.dsp_block ecp5 instantiates ecp5 "
            f"primitives (MULT18X18D), which only --target ecp5 takes; set "
            f"mac.dsp_block=generic for {target}"]
    assert not any(tmp_path.iterdir())
    assert main(["power", "mac16-dsp", "--set", "dsp_block=ecp5"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines() == [
        "rcm-gen: error: --target asic: dsp_block ecp5 instantiates ecp5 primitives "
        "(MULT18X18D), which only --target ecp5 takes; set dsp_block=generic for asic"]
    with pytest.raises(UserError, match=r"^--target asic: dsp_block ecp5 "):
        synthesize(preset("mac8-dsp").replace(dsp_block="ecp5"), "asic", out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.synth
def test_nexus_mac8_dsp(tmp_path):
    """Nexus: the harness clocked by the on-chip oscillator, din and dout on the device
    entry's pins; mac8-dsp's two multipliers are DSP multipliers that take its operand
    registers as their input registers."""
    r = synthesize(preset("mac8-dsp"), "nexus", out_dir=tmp_path)
    assert r["target"] == "nexus" and r["device"] == "LIFCL-40-9BG400C"
    assert r["dsps"] == 2 and r["luts"] > 0 and r["ffs"] > 0
    assert r["tools"]["nextpnr_nexus"]
    text = (tmp_path / "nextpnr-report.json").read_text()
    assert r["fmax_mhz"] == parse_nextpnr_report(text, r["log"])["fmax_mhz"] > 0
    log = Path(r["log"]).read_text()
    assert "--device LIFCL-40-9BG400C" in log.splitlines()[0] and "--pdc io.pdc" in log
    assert "OSCA" in (tmp_path / "osc_top.v").read_text()
    netlist = json.loads((tmp_path / "nexus.json").read_text())
    mults = [c for m in netlist["modules"].values() for c in m.get("cells", {}).values()
             if c["type"].startswith("MULT")]
    assert len(mults) == 2
    assert all(c["parameters"]["REGINPUTA"] == "REGISTER" for c in mults)
    # the harness and the oscillator's top are not counted
    stat = (tmp_path / "stat.json").read_text()
    assert count_resources(stat, "nexus", "x", skip=())["ffs"] > r["ffs"]


def test_fpga_comparison_has_products_per_cycle():
    """An FPGA comparison gives the MACs per cycle of each mode beside the resources."""
    from rcm_gen.flows.synth import compare, format_comparison

    def rep(luts, dsps, fmax):
        return {"target": "ecp5", "luts": luts, "ffs": 10, "dsps": dsps, "brams": 0,
                "fmax_mhz": fmax, "device": "25k (CABGA381)"}

    a, b = rep(150, 2, 140.0), rep(70, 1, 126.0)
    ratios = compare(a, b, preset("mac8-dsp"), preset("mac8-fixed"))
    assert {k: v["a"] for k, v in ratios["macs_per_cycle"].items()} == {"8": 1, "4": 2, "2": 4}
    assert {v["b"] for v in ratios["macs_per_cycle"].values()} == {1}
    assert ratios["dsps"] == 2.0 and "macs_per_cycle_per_mm2" not in ratios
    text = format_comparison(a, b, "mac8-dsp", "mac8-fixed", ratios)
    assert re.search(r"^MACs/cycle at 2 bits +4 +1 +4\.000x$", text, re.M), text


def test_osc_top_divides_to_the_clock():
    assert 'HF_CLK_DIV("4")' in fpga.osc_top_verilog(10.0)     # 450/5 = 90 MHz
    assert 'HF_CLK_DIV("1")' in fpga.osc_top_verilog(1.0)      # at most 225 MHz


def test_dsp_arch_refused_without_its_multipliers(capsys, tmp_path):
    """iCE40's SB_MAC16 is 16x16: the dsp architecture is refused before anything runs,
    also as a --compare point."""
    from rcm_gen.cli import main

    for argv in (["synth", "mac8-dsp", "--target", "ice40"],
                 ["synth", "mac8", "--target", "ice40", "--compare", "mac8-dsp"]):
        assert main([*argv, "--out", str(tmp_path)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.strip().splitlines() == [
            "rcm-gen: error: --target ice40: arch dsp needs 18x18 signed DSP multipliers, "
            "which ice40 lacks; use --target one of ecp5, nexus, asic, or another arch"]
    assert not any(tmp_path.iterdir())
    fpga.check_family(preset("mac8-dsp"), "ecp5")
    fpga.check_family(preset("mac8"), "ice40")


@pytest.mark.synth
def test_ice40_device_without_dsps(tmp_path):
    """A device without DSP blocks gets a netlist without them."""
    r = synthesize(preset("mac8-fixed"), "ice40", out_dir=tmp_path,
                   constraints={"device": "hx8k"})
    assert r["device"] == "hx8k (ct256)" and r["dsps"] == 0 and r["luts"] > 100
    assert r["synth_log"].endswith("synth-nodsp.log")
    assert "--hx8k" in Path(r["log"]).read_text().splitlines()[0]


@pytest.mark.synth
def test_too_large_for_every_device(tmp_path, monkeypatch):
    small = {"clock_ns": 20.0, "devices": [
        {"name": "up5k", "package": "sg48", "luts": 10, "ffs": 10, "dsps": 8, "brams": 30}]}
    monkeypatch.setattr(fpga, "fpga_constraints", lambda target, overrides=None: small)
    with pytest.raises(UserError, match=r"^--target ice40: the design does not fit any "
                                        r"configured device \(up5k needs \d+ LUTs, "):
        synthesize(preset("mac8-fixed"), "ice40", out_dir=tmp_path)


@pytest.mark.synth
def test_harness_is_valid_verilog(tmp_path):
    ports = [{"name": "clk", "direction": "input", "width": 1},
             {"name": "rst", "direction": "input", "width": 1},
             {"name": "a", "direction": "input", "width": 3},
             {"name": "y", "direction": "output", "width": 2},
             {"name": "z", "direction": "output", "width": 1}]
    dut = tmp_path / "dut.v"
    dut.write_text("module dut(input clk, input rst, input [2:0] a, output [1:0] y, "
                   "output z);\n  assign y = a[1:0]; assign z = a[2] ^ rst;\nendmodule\n")
    harness = tmp_path / "h.v"
    harness.write_text(harness_verilog(ports, "dut"))
    run_yosys([f"read_verilog {dut}", f"read_verilog {harness}",
               f"hierarchy -check -top {fpga.HARNESS}", "proc", "flatten", "opt",
               "check -assert", "techmap", "opt", "stat"], tmp_path / "h.log")
    # every input bit (reset included) and din is a shift-register stage, every output bit
    # a stage of the output chain: (1 + 1 + 3) + (2 + 1 + 1) flip-flops, none optimised away
    log = (tmp_path / "h.log").read_text()
    assert re.search(r"\$_DFF_P_\s+9\b|\b9\s+\$_DFF_P_", log), log[-2000:]


def test_pick_device_and_counts():
    devices = fpga_constraints("ecp5")["devices"]
    assert pick_device({"luts": 1000, "ffs": 10, "dsps": 1, "brams": 0}, devices)["name"] \
        == "25k"
    assert pick_device({"luts": 30000, "ffs": 10, "dsps": 1, "brams": 0}, devices)["name"] \
        == "45k"
    assert pick_device({"luts": 10, "ffs": 10, "dsps": 100, "brams": 0}, devices)["name"] \
        == "85k"
    assert pick_device({"luts": 10 ** 6, "ffs": 0, "dsps": 0, "brams": 0}, devices) is None
    stat = {"modules": {
        "\\rcm_fpga_harness": {"num_cells_by_type": {"LUT4": 5, "TRELLIS_FF": 9,
                                                     "rcm_mac": 1}},
        "\\rcm_mac": {"num_cells_by_type": {"LUT4": 7, "CCU2C": 3, "TRELLIS_FF": 4,
                                            "MULT18X18D": 1, "rcm_mac.multiplier": 2}},
        "\\rcm_mac.multiplier": {"num_cells_by_type": {"LUT4": 10, "DP16KD": 1}},
    }}
    assert count_resources(json.dumps(stat), "ecp5", "x") == {
        "luts": 7 + 2 * 3 + 2 * 10, "ffs": 4, "dsps": 1, "brams": 2}
    assert count_resources(json.dumps(stat), "ecp5", "x", skip=())["ffs"] == 13


@pytest.mark.parametrize("target, overrides, message", [
    ("vhdl", None, r"--target must be one of asic, ecp5, ice40, nexus, not 'vhdl'"),
    ("nexus", {"device": "LIFCL-17"},
     r"nexus device must be one of LIFCL-40-9BG400C, not 'LIFCL-17'"),
    ("ecp5", {"device": "99k"}, r"ecp5 device must be one of 25k, 45k, 85k, not '99k'"),
    ("ice40", {"clock_ns": -1}, r"clock period must be greater than 0 ns, not -1"),
    ("ice40", {"speed": 1},
     r"ice40 constraint must be one of clock_ns, device, pnr_timeout_s, router, placer, "
     r"dsp, not 'speed'"),
    ("ecp5", {"dsp": "some"}, r"ecp5 dsp must be one of auto, all, mac\+ppu, mac, none, "
     r"not 'some'"),
    ("ecp5", {"pnr_timeout_s": 0}, r"pnr_timeout_s must be greater than 0 s, not 0"),
    ("ecp5", {"router": "router3"}, r"ecp5 router must be one of router1, router2, not 'router3'"),
    ("ecp5", {"placer": "magic"}, r"ecp5 placer must be one of heap, static, sa, not 'magic'"),
])
def test_bad_fpga_constraints(target, overrides, message):
    with pytest.raises(UserError, match=rf"^{message}$"):
        fpga_constraints(target, overrides)


@pytest.mark.synth
def test_dsps_for_the_mac_array_first(tmp_path):
    """With a DSP policy the MAC array's multipliers (and the post-processing units', with
    ``mac+ppu``) keep their DSP blocks and every other module's become LUTs (a design
    whose multipliers outnumber the device's DSPs keeps the ones that set its
    throughput)."""
    from rcm_gen.flows.fpga import HARNESS, _synth, count_resources

    design = tmp_path / "d.v"
    design.write_text("".join(
        f"module t__{m}(input clk, input [15:0] a, b, output reg [31:0] y);\n"
        "  always @(posedge clk) y <= a * b;\nendmodule\n" for m in ("mac", "ppu", "ctl")))
    harness = tmp_path / "h.v"
    harness.write_text(
        f"module {HARNESS}(input clk, input [15:0] a, b, output [31:0] x, y, z);\n"
        "  t__mac m (.clk(clk), .a(a), .b(b), .y(x));\n"
        "  t__ppu p (.clk(clk), .a(b), .b(a), .y(y));\n"
        "  t__ctl c (.clk(clk), .a(a), .b(a), .y(z));\nendmodule\n")
    got = {}
    for dsp in ("mac+ppu", "mac"):  # (every multiplier and none: the other tests' runs)
        _, log, stat, _ = _synth("ecp5", tmp_path, design, harness, dsp)
        got[dsp] = count_resources(stat, "ecp5", log, skip=())
    assert [got[d]["dsps"] for d in ("mac+ppu", "mac")] == [2, 1]
    assert got["mac"]["luts"] > got["mac+ppu"]["luts"]


@pytest.mark.parametrize("choice, policy, text", [
    ("auto", True, "every multiplier"),
    ("mac", "mac", "the MAC array's multipliers (the others in LUTs: the dsp constraint)"),
    ("none", False, "none"),
])
def test_dsp_constraint_picks_the_synthesis(tmp_path, monkeypatch, choice, policy, text):
    """The ``dsp`` constraint is the one synthesis run (``auto``: every multiplier in DSPs
    first), and the report says which multipliers went into DSPs and why."""
    stat = json.dumps({"modules": {"\\rcm_mac": {"num_cells_by_type": {"LUT4": 7}}}})
    runs = []

    def fake_synth(target, out_dir, vfile, harness, dsp):
        runs.append(dsp)
        return tmp_path / "n.json", tmp_path / "s.log", stat, "abc9"

    monkeypatch.setattr(fpga, "_synth", fake_synth)
    cons = fpga_constraints("ecp5", {"dsp": choice, "device": "25k"})
    _, counts, *_ = fpga._synthesize_for_device(preset("mac8-fixed"), "ecp5", tmp_path, cons)
    assert runs == [policy] and counts["dsp_policy"] == text


def test_place_and_route_time_limit_keeps_the_log(tmp_path):
    """nextpnr's output reaches its log as it runs: a run over the time limit
    (``pnr_timeout_s``) fails with one line naming the limit and the log, which keeps
    what the tool wrote."""
    import sys

    from rcm_gen.flows.fpga import _run

    log = tmp_path / "pnr.log"
    cmd = [sys.executable, "-c",
           "import sys, time; print('Info: placing', flush=True); time.sleep(30)"]
    with pytest.raises(ToolFailed, match=r"did not finish in 1 s \(the constraint "
                                         r"pnr_timeout_s\); log: .*pnr\.log$"):
        _run(cmd, log, timeout=1)
    assert "Info: placing" in log.read_text()


def test_post_processing_product_in_dsps_on_families_that_have_them():
    from rcm_gen.presets import apply_overrides

    small, fixed = preset("rcm-small"), preset("rcm-small-fixed")
    assert small.ppu_dsp_or_booth == fixed.ppu_dsp_or_booth == "booth"  # the ASIC build
    for target in ("ecp5", "nexus"):
        assert fpga.fpga_config(small, target).ppu_dsp_or_booth == "dsp"
        assert fpga.fpga_config(fixed, target).ppu_dsp_or_booth == "dsp"
    # iCE40's multipliers are 16x16; a choice the user made stands; a MAC has no unit
    assert fpga.fpga_config(small, "ice40") == small
    booth = apply_overrides(small, ["ppu_product=booth"])
    assert fpga.fpga_config(booth, "ecp5") == booth
    assert fpga.fpga_config(preset("mac16"), "ecp5") == preset("mac16")
