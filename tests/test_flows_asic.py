"""ASIC flow: Yosys onto a liberty, OpenSTA timing, area by group, bad input, bad reports."""

import json
import os
from pathlib import Path

import pytest

from rcm_gen.errors import ToolFailed
from rcm_gen.flows.asic import _parse_sta, group_of
from rcm_gen.flows.synth import synthesize
from rcm_gen.presets import apply_overrides, preset

SKY130 = Path(__file__).resolve().parents[2] / "shared" / "pdk" / \
    "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"


def _check_consistent(r):
    assert r["area_um2"] > 0 and r["cells"] > 0
    assert sum(r["area_by_group"].values()) == pytest.approx(r["area_um2"], rel=1e-9)
    assert r["critical_path_ns"] == pytest.approx(r["clock_ns"] - r["worst_slack_ns"])
    assert r["fmax_mhz"] == pytest.approx(1000 / r["critical_path_ns"])
    assert r["wns_ns"] == min(0.0, r["worst_slack_ns"])
    assert Path(r["log"]).exists() and Path(r["sta_log"]).exists()
    assert r["tools"]["yosys"] and r["tools"]["opensta"]


@pytest.mark.synth
def test_mac_on_osu018(tmp_path):
    st = synthesize(preset("mac8"), "asic", out_dir=tmp_path / "st", clock_ns=4.0)
    fx = synthesize(preset("mac8-fixed"), "asic", out_dir=tmp_path / "fx", clock_ns=4.0)
    for r in (st, fx):
        _check_consistent(r)
        assert r["area_by_group"]["multipliers"] > 0 and r["area_by_group"]["accumulators"] > 0
        assert r["area_by_group"]["buffers"] == 0
        assert r["liberty"]["name"] == "osu018_stdcells" and r["clock_ns"] == 4.0
    assert st["config"] == preset("mac8").to_dict()
    # the same design at a looser clock has a positive slack and the same critical path
    # definition (period - slack)
    loose = synthesize(preset("mac8-fixed"), "asic", out_dir=tmp_path / "loose",
                       clock_ns=40.0)
    assert loose["worst_slack_ns"] > 0 and loose["wns_ns"] == 0
    _check_consistent(loose)


@pytest.mark.synth
def test_user_liberty_sky130_gz(tmp_path):
    r = synthesize(preset("mac8"), "asic", out_dir=tmp_path, liberty=str(SKY130))
    _check_consistent(r)
    assert r["liberty"]["name"] == "sky130_fd_sc_hd__tt_025C_1v80"
    assert r["liberty"]["tie_cells"][0][0] == "sky130_fd_sc_hd__conb_1"
    assert r["liberty"]["driving_cell"] == "sky130_fd_sc_hd__buf_1"
    assert "sky130_fd_sc_hd__" in (tmp_path / "netlist.v").read_text()


@pytest.mark.synth
def test_tile_area_groups(tmp_path):
    tiny = apply_overrides(preset("rcm-small"), [
        "p=1", "tm=1", "tn=1", "tr=2", "tc=2", "k_max=3", "s_max=1", "mac.width=8"])
    r = synthesize(tiny, "asic", out_dir=tmp_path, clock_ns=10.0)
    _check_consistent(r)
    assert all(v > 0 for v in r["area_by_group"].values()), r["area_by_group"]


def test_groups_follow_instance_names():
    assert group_of("\\rcm_mac.multiplier", "rcm_mac") == "multipliers"
    assert group_of("\\rcm_mac", "rcm_mac") == "accumulators"
    assert group_of("\\rcm_tile.mac3.multiplier", "rcm_tile") == "multipliers"
    assert group_of("\\rcm_tile.mac12", "rcm_tile") == "accumulators"
    assert group_of("\\rcm_tile.weight_buf", "rcm_tile") == "buffers"
    assert group_of("\\rcm_tile.controller", "rcm_tile") == "control"
    assert group_of("\\rcm_tile", "rcm_tile") == "control"


def test_unparseable_sta_report_raises_with_log(tmp_path):
    log = tmp_path / "sta.log"
    good = ("Startpoint: a\nEndpoint: b\n   1.0000   data arrival time\n"
            "worst slack 0.5000\ntns 0.0000\n")
    assert _parse_sta(good, log)["worst_slack"] == 0.5
    with pytest.raises(ToolFailed, match=rf"^OpenSTA report has no .*; log: {log}$"):
        _parse_sta(good[:good.index("worst")], log)
    with pytest.raises(ToolFailed, match=r"^OpenSTA failed \(Error: x\); log: "):
        _parse_sta("Error: x\n" + good, log)


@pytest.mark.parametrize("args, message", [
    (["--target", "vhdl"], r"--target must be one of asic, ecp5, ice40, not 'vhdl'"),
    (["--liberty", "/nonexistent.lib"], r"--liberty '/nonexistent.lib': file not found"),
    (["--liberty", "/etc/hostname"],
     r"--liberty '/etc/hostname': not a liberty library"),
    (["--clock-ns", "0"], r"--clock-ns must be greater than 0, not 0"),
    (["--clock-ns", "-2"], r"--clock-ns must be greater than 0, not -2"),
    (["--target", "ecp5", "--liberty", "/etc/hostname"],
     r"--liberty applies to --target asic, not 'ecp5'"),
])
def test_bad_input(cli, args, message):
    import re

    r = cli("synth", "mac8", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), r.stderr


def test_bad_liberty_content(cli, tmp_path):
    f = tmp_path / "empty.lib"
    f.write_text("library (x) {\n}\n")
    r = cli("synth", "mac8", "--liberty", str(f))
    assert r.returncode == 2 and "has no cells" in r.stderr


def test_missing_tool_is_named(cli, tmp_path):
    """Without OpenSTA on PATH: exit 2 naming the tool and how to install it."""
    venv_bin = str(Path(os.sys.executable).parent)
    r = cli("synth", "mac8", env={"PATH": venv_bin})
    assert r.returncode == 2, r.stderr
    assert "tool 'sta' is not installed: install Debian package opensta" in r.stderr


@pytest.mark.synth
def test_cli_json_and_compare(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli("synth", "mac8", "--compare", "mac8-fixed", "--clock-ns", "4", "--json", str(out),
            "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    assert "mac8 / mac8-fixed: area" in r.stdout and "MACs/cycle/mm2" in r.stdout
    data = json.loads(out.read_text())
    for key in ("area_um2", "cells", "critical_path_ns", "wns_ns", "fmax_mhz", "config",
                "target", "tools", "log"):
        assert key in data
    ratio = data["area_um2"] / data["compare"]["report"]["area_um2"]
    assert data["compare"]["ratios"]["area"] == pytest.approx(ratio)
