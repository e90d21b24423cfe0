"""The port map of a user's own MAC (``--ports``, :mod:`rcm_gen.flows.user_design`): what its
[design] keys say, their defaults (today's semantics for old maps), one-line errors for bad
values, and the power run's schedule and accumulator check under each semantics, against a
plain cycle model of ``tests/data/st_mac_u8.sv``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.errors import ToolFailed, UserError
from rcm_gen.flows.user_design import PortMap, load_port_map
from rcm_gen.power.mac import (
    _check_accumulator,
    _schedule,
    _streams,
    mac_port_map,
    power_modes,
)
from rcm_gen.presets import preset

DATA = Path(__file__).parent / "data"
USER_PORTS = DATA / "user_mac.toml"
ST_PORTS = DATA / "st_mac_u8.toml"
BENCH_PORTS = DATA / "mac_st_benchmark.toml"


def _map(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_old_port_map_keeps_todays_semantics():
    p = load_port_map(USER_PORTS)
    assert (p.activations, p.clear_kind, p.clear_latency, p.weight_lanes, p.acc_bits) == (
        "both", "load", 1, "same", {})
    assert p.act_signedness == (False, True) and p.clear_delay == 0


def test_old_port_map_without_act_signed_is_signed_only(tmp_path):
    text = USER_PORTS.read_text().replace('act_signed = "x_signed"\n', "")
    p = load_port_map(_map(tmp_path, text))
    assert p.activations == "signed" and p.act_signedness == (True,)
    assert [(m.bits, m.act_signed) for m in power_modes(p)] == [(8, True), (4, True), (2, True)]


def test_port_map_semantics_are_read():
    p = load_port_map(ST_PORTS)
    assert (p.activations, p.clear_kind, p.clear_latency, p.weight_lanes, p.acc_bits) == (
        "unsigned", "zero", 1, "reversed", {2: 12, 4: 8})
    assert p.latency == 2 and p.clear_delay == 1 and not p.mode_in_pipeline
    assert [(m.bits, m.lanes, m.act_signed) for m in power_modes(p)] == [
        (8, 1, False), (4, 2, False), (2, 4, False)]
    d = p.to_dict()["design"]
    assert d["activations"] == "unsigned" and d["acc_bits"] == {"2": 12, "4": 8}


def test_benchmark_example_map_is_valid():
    p = load_port_map(BENCH_PORTS)
    assert p.mode_encoding == {1: 0, 2: 1, 4: 3} and p.acc_bits == {2: 13, 4: 10}
    assert (p.activations, p.clear_kind, p.weight_lanes) == ("unsigned", "zero", "reversed")


def test_generated_mac_keeps_its_semantics():
    p = mac_port_map(preset("mac8"))
    assert (p.activations, p.clear_kind, p.clear_latency, p.weight_lanes) == (
        "both", "load", p.latency, "same")
    assert p.mode_in_pipeline


BAD = [
    ('activations = "unsigned"', 'activations = "maybe"',
     r"\[design\] activations must be one of 'both', 'signed', 'unsigned', not 'maybe'"),
    ('activations = "unsigned"', "activations = 1",
     r"\[design\] activations must be one of 'both', 'signed', 'unsigned', not 1"),
    ('activations = "unsigned"', 'activations = "both"',
     r"\[design\] activations = 'both' needs a \[ports\] act_signed \(or say 'signed' or "
     r"'unsigned'\)"),
    ('acc = "acc"', 'acc = "acc"\nact_signed = "sgn"',
     r"\[design\] activations = 'unsigned' takes no \[ports\] act_signed \(given 'sgn'; say "
     r"'both' to use it\)"),
    ('clear = "zero"', 'clear = "reset"',
     r"\[design\] clear must be one of 'load', 'zero', not 'reset'"),
    ("clear_latency = 1", "clear_latency = 3",
     r"\[design\] clear_latency must be an integer from 1 to latency 2, not 3"),
    ("clear_latency = 1", "clear_latency = 0",
     r"\[design\] clear_latency must be an integer from 1 to latency 2, not 0"),
    ('weight_lanes = "reversed"', 'weight_lanes = "backwards"',
     r"\[design\] weight_lanes must be one of 'same', 'reversed', not 'backwards'"),
    ("acc_bits = { 2 = 12, 4 = 8 }", "acc_bits = { 3 = 12 }",
     r"\[design\] acc_bits keys must be lane counts of lanes \[1, 2, 4\], not '3'"),
    ("acc_bits = { 2 = 12, 4 = 8 }", 'acc_bits = { 2 = "12" }',
     r"\[design\] acc_bits 2 must be an integer \(valid low bits of acc\), not '12'"),
    ("acc_bits = { 2 = 12, 4 = 8 }", "acc_bits = { 2 = 0 }",
     r"\[design\] acc_bits 2 must be at least 1, not 0"),
    ("acc_bits = { 2 = 12, 4 = 8 }", "acc_bits = 12",
     r"\[design\] acc_bits must be a table of lane counts to valid low bits of acc, not 12"),
    ("acc_bits = { 2 = 12, 4 = 8 }", "acc_bits = { 2 = 12 }\nlane_order = 1",
     r"\[design\] key must be one of width, lanes, latency, reset_active, mode_encoding, "
     r"activations, clear, clear_latency, weight_lanes, acc_bits, not 'lane_order'"),
]


@pytest.mark.parametrize("old, new, pattern", BAD, ids=[b[1].split("\n")[-1] for b in BAD])
def test_bad_semantic_keys(tmp_path, old, new, pattern):
    text = ST_PORTS.read_text()
    assert old in text
    path = _map(tmp_path, text.replace(old, new))
    with pytest.raises(UserError) as info:
        load_port_map(path)
    assert re.fullmatch(rf"--ports {re.escape(repr(str(path)))}: {pattern}", str(info.value))


def test_bad_semantic_key_on_the_command_line(cli, tmp_path):
    """The CLI reads the map before anything else: exit 2, one line, nothing written."""
    path = _map(tmp_path, ST_PORTS.read_text().replace('"reversed"', '"mirrored"'))
    out = tmp_path / "r.json"
    r = cli("power", "--verilog", str(DATA / "st_mac_u8.sv"), "--top", "st_mac_u8",
            "--ports", str(path), "--quiet", "--json", str(out))
    assert r.returncode == 2, r.stderr
    assert re.fullmatch(rf"rcm-gen: error: --ports {re.escape(repr(str(path)))}: \[design\] "
                        r"weight_lanes must be one of 'same', 'reversed', not 'mirrored'",
                        r.stderr.strip())
    assert not out.exists()


def test_acc_bits_wider_than_the_port():
    p = load_port_map(ST_PORTS)
    ports = {"clk": ("input", (0,)), "rst": ("input", (0,)), "lanes_sel": ("input", (0, 1)),
             "act": ("input", tuple(range(8))), "wgt": ("input", tuple(range(8))),
             "zero_acc": ("input", (0,)), "acc": ("output", tuple(range(10)))}
    with pytest.raises(UserError, match=r"^--ports: \[design\] acc_bits 2 = 12 must be at most "
                                        r"the 10 bits of port 'acc' \(acc\)$"):
        p.check(ports, "--ports")


def test_inconsistent_port_map_built_in_python():
    with pytest.raises(ValueError, match=r"^Activations 'both' need an act_signed port$"):
        PortMap("clk", "a", "w", "clr", "acc", 8, activations="both")
    with pytest.raises(ValueError, match=r"^Clear latency must be from 1 to the latency 1, "
                                         r"not 2$"):
        PortMap("clk", "a", "w", "clr", "acc", 8, clear_latency=2)


# -- the schedule and the check, on a cycle model of st_mac_u8.sv ----------------------------


def _lane(word: int, i: int, bits: int, signed: bool) -> int:
    v = (word >> (i * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def _st_mac_u8(inputs: dict[str, np.ndarray]) -> np.ndarray:
    """acc after each clock edge of st_mac_u8.sv, cycle by cycle (as its RTL reads)."""
    dot_r, acc, out = 0, 0, []
    for i in range(len(inputs["act"])):
        a, w, sel = int(inputs["act"][i]), int(inputs["wgt"][i]), int(inputs["lanes_sel"][i])
        lanes, bits, low = {0: (1, 8, 20), 1: (2, 4, 12), 2: (4, 2, 8)}[sel]
        dot = sum(_lane(a, k, bits, False) * _lane(w, lanes - 1 - k, bits, True)
                  for k in range(lanes))
        if inputs["rst"][i]:
            dot_r, acc = 0, 0
        else:
            mask = (1 << low) - 1
            new = 0 if inputs["zero_acc"][i] else (acc + dot_r) & mask
            acc = (acc & ~mask & ((1 << 20) - 1)) | new
            dot_r = dot
        out.append(acc)
    return np.array(out, dtype=object)


def _model_check(ports: PortMap, cycles: int = 300) -> int:
    names = ["clk", "rst", "lanes_sel", "act", "wgt", "zero_acc"]
    modes, streams = _streams("random", power_modes(ports), cycles, ports.latency + 2, 1)
    inputs, _, expected, check, which = _schedule(ports, modes, streams, cycles, 128, names)
    got = _st_mac_u8(inputs)
    return _check_accumulator(ports, modes, got, expected, check, which, 20, inputs, "model",
                              "model.log", True)


def test_schedule_meets_the_design_under_its_semantics():
    ports = load_port_map(ST_PORTS)
    # every cycle but the reset, the last (in flight at the end) and one per mode change
    assert _model_check(ports) == 3 * (300 + 4) - 1 - 2


@pytest.mark.parametrize("old, new, first", [
    ('weight_lanes = "reversed"', 'weight_lanes = "same"', "4x4 mode, 2 lanes"),
    ('activations = "unsigned"', 'activations = "signed"', "8x8 mode, 1 lane, signed"),
    ('clear = "zero"', 'clear = "load"', "8x8 mode, 1 lane, unsigned"),
    ("clear_latency = 1\n", "", "8x8 mode, 1 lane, unsigned"),
    ("acc_bits = { 2 = 12, 4 = 8 }\n", "", "4x4 mode, 2 lanes"),
    ("acc_bits = { 2 = 12, 4 = 8 }", "acc_bits = { 2 = 12, 4 = 9 }", "2x2 mode, 4 lanes"),
])
def test_wrong_semantics_fail_the_check(tmp_path, old, new, first):
    text = ST_PORTS.read_text()
    assert old in text
    ports = load_port_map(_map(tmp_path, text.replace(old, new)))
    with pytest.raises(ToolFailed) as info:
        _model_check(ports)
    assert re.fullmatch(rf"gate-level accumulator differs from numpy at cycle \d+ \({first}"
                        r".*\): acc(\[\d+:0\])? = -?\d+, numpy -?\d+ \(model\); the design does "
                        r"not compute what --ports says \(check \[design\] .*\); log: model\.log",
                        str(info.value))
