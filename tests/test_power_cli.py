"""``rcm-gen power`` and ``rcm-gen synth --verilog`` from the command line: the report's
keys and arithmetic, the user's RTL beside a generated MAC, and bad input (exit 2, one
line, no report)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
USER_MAC = DATA / "user_mac.sv"
USER_PORTS = DATA / "user_mac.toml"
OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")

REPORT_KEYS = {"modes", "stimulus", "cycles", "clock_ns", "library", "tools", "config"}
MODE_KEYS = {"act_bits", "weight_bits", "lanes", "act_signed", "pj_per_cycle", "pj_per_mac",
             "tops_per_w", "breakdown"}


def _one_line_error(r, pattern, report=None):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"rcm-gen: error: {pattern}", lines[0]), r.stderr
    if report is not None:
        assert not Path(report).exists()


@pytest.mark.synth
def test_power_report_and_compare(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli("power", "mac8", "--simulator", "icarus", "--cycles", "40", "--stimulus", "relu",
            "--compare", "mac8-fixed", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert REPORT_KEYS <= rep.keys()
    assert rep["cycles"] == 40 and rep["stimulus"]["kind"] == "relu"
    assert rep["config"]["arch"] == "booth" and rep["tools"]["yosys"]
    assert [(m["act_bits"], m["lanes"], m["act_signed"]) for m in rep["modes"]] == [
        (8, 1, False), (8, 1, True), (4, 2, False), (4, 2, True), (2, 4, False), (2, 4, True)]
    for m in rep["modes"]:
        assert MODE_KEYS <= m.keys()
        b = m["breakdown"]
        parts = (b["internal_pj_per_cycle"] + b["switching_pj_per_cycle"]
                 + b["leakage_pj_per_cycle"])
        assert m["pj_per_cycle"] == pytest.approx(parts, rel=1e-9)
        assert sum(b["groups_pj_per_cycle"].values()) == pytest.approx(parts, rel=1e-9)
        assert m["pj_per_mac"] == pytest.approx(m["pj_per_cycle"] / m["lanes"], rel=1e-12)
        assert m["tops_per_w"] == pytest.approx(2 / m["pj_per_mac"], rel=1e-12)
        assert b["groups_pj_per_cycle"]["multipliers"] > 0
    # every accumulator value of the six modes was checked against numpy
    assert rep["checked"] >= 6 * 40
    fixed = rep["compare"][0]
    assert fixed["preset"] == "mac8-fixed"
    assert [(m["act_bits"], m["lanes"]) for m in fixed["report"]["modes"]] == [
        (8, 1), (8, 1), (4, 1), (4, 1), (2, 1), (2, 1)]
    ratios = {(x["act_bits"], x["act_signed"]): x["ratio"] for x in fixed["ratios"]}
    assert len(ratios) == 6 and all(v > 0 for v in ratios.values())
    assert "pJ/MAC of mac8 / mac8-fixed on the same data" in r.stdout



@pytest.mark.synth
def test_fusion_power_in_asymmetric_modes_beside_mac8(cli, tmp_path):
    """A fusion MAC (W = 4, 2-bit bricks) in each of its modes, asymmetric ones included,
    every accumulator value checked at gate level against numpy; mac8 on the same data in
    the mode of max(activation, weight) bits."""
    cfg = tmp_path / "fusion4.json"
    cfg.write_text(json.dumps({"kind": "mac", "width": 4, "lanes": [1, 2], "arch": "fusion"}))
    out = tmp_path / "p.json"
    r = cli("power", "--config", str(cfg), "--simulator", "icarus", "--cycles", "20",
            "--compare", "mac8", "--quiet", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    points = [(a, b, s) for a in (4, 2) for b in (4, 2) for s in (False, True)]
    assert [(m["act_bits"], m["weight_bits"], m["act_signed"]) for m in rep["modes"]] == points
    for m in rep["modes"]:
        assert MODE_KEYS <= m.keys()
        assert m["mode"] == f"{m['act_bits']}x{m['weight_bits']}"
        assert m["lanes"] == m["macs_per_cycle"] == (4 // m["act_bits"]) * (4 // m["weight_bits"])
        assert m["pj_per_mac"] == pytest.approx(m["pj_per_cycle"] / m["lanes"], rel=1e-12)
    assert rep["checked"] >= len(points) * 20
    other = rep["compare"][0]
    assert other["preset"] == "mac8" and other["report"]["checked"] >= len(points) * 20
    for m in other["report"]["modes"]:
        bits = max(m["act_bits"], m["weight_bits"])
        assert (m["mode"], m["lanes"]) == (f"{bits}x{bits}", 8 // bits)
    assert [(x["act_bits"], x["weight_bits"], x["act_signed"]) for x in other["ratios"]] == points
    assert re.search(r"4-bit signed activations x  2-bit weights \(4x2 / 4x4\): "
                     r"[\d.]+ / [\d.]+ = [\d.]+x", r.stdout)

@pytest.mark.synth
def test_user_rtl_synth_and_power_beside_mac8(cli, tmp_path):
    synth_json = tmp_path / "s.json"
    r = cli("synth", "--verilog", str(USER_MAC), "--top", "user_mac", "--clock-port", "clock",
            "--compare", "mac8", "--json", str(synth_json))
    assert r.returncode == 0, r.stderr
    s = json.loads(synth_json.read_text())
    assert s["top"] == "user_mac" and s["area_um2"] > 0 and s["config"]["kind"] == "verilog"
    assert s["compare"]["preset"] == "mac8" and s["config"]["clock"] == "clock"
    # timed on its clock: a register-to-register path of a multiply-add, not a few gates
    assert 1.0 < s["critical_path_ns"] < 20.0
    assert s["compare"]["ratios"]["area"] == pytest.approx(
        s["area_um2"] / s["compare"]["report"]["area_um2"])
    assert re.search(r"^area \(um2\)\s+[\d,]+\s+[\d,]+\s+[\d.]+x$", r.stdout, re.M)
    out = tmp_path / "p.json"
    r = cli("power", "--verilog", str(USER_MAC), "--top", "user_mac", "--ports",
            str(USER_PORTS), "--simulator", "icarus", "--cycles", "30", "--compare", "mac8",
            "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["top"] == "user_mac" and len(rep["modes"]) == 6 and rep["checked"] >= 180
    assert {x["act_bits"] for x in rep["compare"][0]["ratios"]} == {8, 4, 2}
    assert "user_mac" in r.stdout and "mac8" in r.stdout


@pytest.mark.synth
def test_wrong_user_rtl_fails_the_gate_level_check(cli, tmp_path):
    """A design that does not compute what its port map says fails the numpy check
    (exit 1, the log named), with no report."""
    wrong = tmp_path / "wrong.sv"
    wrong.write_text(USER_MAC.read_text().replace("(valid ? 24'(product)", "(valid ? 24'(x)"))
    out = tmp_path / "p.json"
    r = cli("power", "--verilog", str(wrong), "--top", "user_mac", "--ports", str(USER_PORTS),
            "--simulator", "icarus", "--cycles", "10", "--quiet", "--json", str(out))
    assert r.returncode == 1, r.stderr
    assert re.fullmatch(r"rcm-gen: failed: gate-level accumulator differs from numpy at cycle "
                        r"\d+ \(8x8 mode, 1 lane, (un)?signed activations, x=0x[0-9a-f]+ "
                        r"k=0x[0-9a-f]+\): acc = -?\d+, numpy -?\d+ \(icarus\); the design does "
                        r"not compute what --ports says \(.*\); log: \S+", r.stderr.strip())
    assert not out.exists()


ST_MAC = DATA / "st_mac_u8.sv"
ST_PORTS = DATA / "st_mac_u8.toml"


@pytest.mark.synth
def test_user_mac_semantics_through_verilator(cli, tmp_path):
    """A hand-written MAC with unsigned activations, a clear that empties its accumulator
    register, reversed weight lanes and narrow accumulators in its 4- and 2-bit modes
    (1, 2, 4 lanes of an 8-bit datapath) measured on Verilator, every accumulator value
    checked under its port map; each wrong [design] value fails that check (exit 1)."""
    out = tmp_path / "p.json"
    r = cli("power", "--verilog", str(ST_MAC), "--top", "st_mac_u8", "--ports", str(ST_PORTS),
            "--cycles", "40", "--quiet", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["simulator"] == "verilator" and rep["top"] == "st_mac_u8"
    assert [(m["act_bits"], m["lanes"], m["act_signed"]) for m in rep["modes"]] == [
        (8, 1, False), (4, 2, False), (2, 4, False)]
    # every cycle but the reset, the last (still in flight) and one per mode change
    assert rep["checked"] == 3 * (40 + 4) - 1 - 2
    assert rep["port_map"]["design"] == {
        "width": 8, "lanes": [1, 2, 4], "latency": 2, "reset_active": 1,
        "mode_encoding": {"1": 0, "2": 1, "4": 2}, "activations": "unsigned",
        "clear": "zero", "clear_latency": 1, "weight_lanes": "reversed",
        "acc_bits": {"2": 12, "4": 8}}
    for m in rep["modes"]:
        assert m["pj_per_mac"] == pytest.approx(m["pj_per_cycle"] / m["lanes"], rel=1e-12)
    # the timing simulation (--timed) checks every value under the same semantics
    timed = tmp_path / "t.json"
    r = cli("power", "--verilog", str(ST_MAC), "--top", "st_mac_u8", "--ports", str(ST_PORTS),
            "--cycles", "20", "--timed", "--quiet", "--json", str(timed))
    assert r.returncode == 0, r.stderr
    (t,) = [d["timed"] for d in json.loads(timed.read_text())["designs"].values()]
    assert t["checked"]["timed"] == t["checked"]["zero_delay"] > 3 * 20
    assert len(t["modes"]) == 3
    text = ST_PORTS.read_text()
    wrong = {
        'weight_lanes = "same"': ('weight_lanes = "reversed"', r"4x4 mode, 2 lanes"),
        'activations = "signed"': ('activations = "unsigned"', r"8x8 mode, 1 lane, signed"),
        'clear = "load"': ('clear = "zero"', r"8x8 mode, 1 lane, unsigned"),
        "no clear_latency": ("clear_latency = 1\n", r"8x8 mode, 1 lane, unsigned"),
        "no acc_bits": ("acc_bits = { 2 = 12, 4 = 8 }\n", r"4x4 mode, 2 lanes"),
    }
    for name, (old, first) in wrong.items():
        assert old in text
        ports = tmp_path / "wrong.toml"
        ports.write_text(text.replace(old, name if "=" in name else ""))
        bad = tmp_path / "bad.json"
        r = cli("power", "--verilog", str(ST_MAC), "--top", "st_mac_u8", "--ports",
                str(ports), "--cycles", "40", "--quiet", "--json", str(bad))
        assert r.returncode == 1, (name, r.stderr)
        assert re.fullmatch(
            rf"rcm-gen: failed: gate-level accumulator differs from numpy at cycle \d+ "
            rf"\({first}.*\): acc(\[\d+:0\])? = -?\d+, numpy -?\d+ \(verilator\); the design "
            r"does not compute what --ports says \(check \[design\] activations, clear, "
            r"clear_latency, weight_lanes, acc_bits, latency\); log: \S+",
            r.stderr.strip()), (name, r.stderr)
        assert not bad.exists()


def _strip_internal_power(text: str, cell: str) -> str:
    start = text.index(f"cell ({cell})")
    end = text.index("\ncell (", start + 1)
    body = text[start:end]
    while "internal_power()" in body:
        i = body.index("internal_power()")
        depth, j = 0, body.index("{", i)
        while True:
            depth += {"{": 1, "}": -1}.get(body[j], 0)
            if depth == 0:
                break
            j += 1
        body = body[:i] + body[j + 1:]
    return text[:start] + body + text[end:]


@pytest.mark.synth
def test_liberty_without_internal_power(cli, tmp_path):
    lib = tmp_path / "nopower.lib"
    lib.write_text(_strip_internal_power(OSU018.read_text(), "DFFPOSX1"))
    out = tmp_path / "r.json"
    r = cli("power", "mac8", "--liberty", str(lib), "--simulator", "icarus", "--cycles", "5",
            "--quiet", "--json", str(out))
    _one_line_error(r, r"liberty 'osu018_stdcells' has no internal_power for cell DFFPOSX1 "
                       r"\(output Q\), which the netlist uses", out)


def test_bad_stimulus_files(cli, tmp_path):
    cases = {
        "names.npz": ({"x_8": np.zeros(9, int)},
                      r"array 'x_8' names no operand port and precision of this design "
                      r"\(allowed: a_16, w_16, a_8, w_8, a_4, w_4\)"),
        "range.npz": ({"a_4": np.full(500, 20), "w_4": np.zeros(500, int)},
                      r"a_4\[0\] = 20 fits neither 4-bit unsigned nor signed"),
        "weights.npz": ({"a_4": np.zeros(500, int), "w_4": np.full(500, 8)},
                        r"w_4\[0\] must fit 4-bit signed \(-8\.\.7\), not 8"),
        "short.npz": ({"a_16": np.zeros(10, int), "w_16": np.zeros(10, int)},
                      r"arrays a_16/w_16 hold 10 pairs; the run needs 14"),
        "partner.npz": ({"a_8": np.zeros(100, int)}, r"array a_8 has no partner w_8"),
        "shape.npz": ({"a_8": np.zeros((10, 2), int), "w_8": np.zeros(20, int)},
                      r"array a_8 must be one-dimensional integers, not int64 of shape "
                      r"\(10, 2\)"),
    }
    for name, (arrays, pattern) in cases.items():
        f = tmp_path / name
        np.savez(f, **arrays)
        _one_line_error(cli("power", "mac16", "--stimulus", str(f), "--cycles", "10",
                            "--quiet"), rf"--stimulus '{re.escape(str(f))}': {pattern}")


@pytest.mark.parametrize("args, pattern", [
    (["--verilog", str(USER_MAC), "--top", "nope"],
     r"--verilog: Yosys cannot read the design \(ERROR: Module `nope' not found!\)"),
    (["--verilog", "/nonexistent.v", "--top", "x"], r"--verilog '/nonexistent.v': file not found"),
    (["--verilog", str(USER_MAC), "--top", "user_mac"],
     r"--verilog: top 'user_mac' has no input 'clk' to time as the clock \(name it with "
     r"--clock-port\)"),
    (["mac8", "--clock-port", "clock"], r"--clock-port 'clock' applies to --verilog designs"),
    (["--verilog", str(USER_MAC)], r"--verilog needs --top NAME \(the top module\)"),
    (["mac8", "--top", "x"], r"--top 'x' applies to --verilog designs"),
    (["mac8", "--verilog", str(USER_MAC), "--top", "user_mac"],
     r"give PRESET, --config or --verilog, not both \('mac8' and --verilog\)"),
])
def test_bad_verilog_designs(cli, args, pattern):
    _one_line_error(cli("synth", *args), pattern)


def test_unreadable_verilog(cli, tmp_path):
    bad = tmp_path / "broken.v"
    bad.write_text("module broken(input a, output b);\n  assign b = a +;\nendmodule\n")
    out = tmp_path / "r.json"
    _one_line_error(cli("synth", "--verilog", str(bad), "--top", "broken", "--json", str(out)),
                    rf"--verilog: Yosys cannot read the design \({re.escape(str(bad))}:2: "
                    r"ERROR: syntax error, .*\)", out)


def test_bad_power_options(cli):
    cases = [
        (["mac16", "--cycles", "0"], r"--cycles must be at least 1, not 0"),
        (["mac16", "--compare", "rcm-small"],
         r"--compare 'rcm-small': power compares MACs, not a tile"),
        (["mac16", "--simulator", "xsim"], r"--simulator must be one of verilator, icarus, cycle, "
                                           r"not 'xsim'"),
        (["mac16", "--stimulus", "noise"],
         r"--stimulus must be one of random, relu, sparse or a \.npz file, not 'noise'"),
        (["--verilog", str(USER_MAC), "--top", "user_mac"],
         r"--verilog needs --ports FILE\.toml \(the roles of its ports\)"),
    ]
    for args, pattern in cases:
        _one_line_error(cli("power", *args, "--quiet"), pattern)


@pytest.mark.synth
def test_port_map_naming_a_missing_port(cli, tmp_path):
    ports = tmp_path / "p.toml"
    ports.write_text(USER_PORTS.read_text().replace('acc = "sum"', 'acc = "total"'))
    _one_line_error(cli("power", "--verilog", str(USER_MAC), "--top", "user_mac", "--ports",
                        str(ports), "--simulator", "icarus", "--quiet"),
                    r"--ports: port 'total' \(acc\) is not a port of the design \(ports: .*\)")
