"""ASIC flow: Yosys onto a liberty, OpenSTA timing, area by group, cells found in the
liberty or configured, constraints, and reports that cannot be parsed."""

import json
import re
from pathlib import Path

import pytest

from rcm_gen.errors import ToolFailed, UserError
from rcm_gen.flows.asic import (
    asic_constraints,
    group_of,
    instance_counts,
    library_cells,
    parse_sta,
    parse_stat,
)
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.synth import synthesize
from rcm_gen.presets import apply_overrides, preset

SKY130 = Path(__file__).resolve().parent / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")


def _check_consistent(r):
    assert r["area_um2"] > 0 and r["cells"] > 0
    assert sum(r["area_by_group"].values()) == pytest.approx(r["area_um2"], rel=1e-9)
    assert r["critical_path_ns"] == pytest.approx(r["clock_ns"] - r["worst_slack_ns"])
    assert r["fmax_mhz"] == pytest.approx(1000 / r["critical_path_ns"])
    assert r["wns_ns"] == min(0.0, r["worst_slack_ns"])
    assert r["tns_ns"] <= 0 and (r["tns_ns"] < 0) == (r["wns_ns"] < 0)
    assert Path(r["log"]).exists() and Path(r["sta_log"]).exists()
    assert r["tools"]["yosys"] and r["tools"]["opensta"]
    assert json.loads((Path(r["log"]).parent / "report.json").read_text()) == r
    netlist = Path(r["netlist"]).read_text()
    # only library cells: plain connections became buffers
    assert not re.search(r"^\s*assign\b", netlist, re.M)


def _area_of_netlist(r) -> float:
    """The chip area Yosys gives the composed netlist of a report (a run of its own)."""
    from rcm_gen.flows.yosys import run_yosys

    log = Path(r["netlist"]).with_name("check-area.log")
    text = run_yosys([f"read_liberty -lib {OSU018}", f"read_verilog {r['netlist']}",
                      f"hierarchy -top {r['top']}", f"stat -liberty {OSU018}"], log)
    areas = re.findall(r"Chip area for (?:top )?module '\\?(\S+)': ([0-9.]+)", text)
    return float(areas[-1][1])


@pytest.mark.synth
def test_mac_on_osu018(tmp_path):
    st = synthesize(preset("mac8"), "asic", out_dir=tmp_path / "st", clock_ns=4.0)
    fx = synthesize(preset("mac8-fixed"), "asic", out_dir=tmp_path / "fx", clock_ns=4.0)
    for r in (st, fx):
        _check_consistent(r)
        assert r["area_by_group"]["multipliers"] > 0 and r["area_by_group"]["accumulators"] > 0
        assert r["area_by_group"]["buffers"] == 0 and r["area_by_group"]["control"] == 0
        assert r["liberty"]["name"] == "osu018_stdcells" and r["clock_ns"] == 4.0
        assert r["liberty"]["driving_cell"] == "INVX1"
        assert r["liberty"]["buffer_cell"] == "BUFX2"
        # the area is that of the composed netlist, counted afresh
        assert r["area_um2"] == pytest.approx(_area_of_netlist(r))
        script = (Path(r["log"]).parent / "synth.ys").read_text()
        assert re.search(r"^synth -top M_\w+ -booth$", script, re.M) and "-D 4000" in script
    assert st["config"] == preset("mac8").to_dict()
    assert fx["config"] == preset("mac8-fixed").to_dict()
    # the numbers are those OpenSTA printed
    sta_text = Path(st["sta_log"]).read_text()
    assert parse_sta(sta_text, st["sta_log"])["worst_slack"] == st["worst_slack_ns"]
    assert st["critical_path"]["startpoint"] in sta_text


@pytest.mark.synth
def test_reports_that_cannot_be_parsed_raise_with_the_log(tmp_path):
    """Truncated OpenSTA and Yosys reports of a real run raise ToolFailed naming the log."""
    r = synthesize(preset("mac8-fixed"), "asic", out_dir=tmp_path, clock_ns=40.0,
                   hierarchy="flat")  # one Yosys run, whose stat.json is read below
    assert r["worst_slack_ns"] > 0 and r["wns_ns"] == 0 and r["tns_ns"] == 0
    sta_text = Path(r["sta_log"]).read_text()
    for cut in (sta_text[:sta_text.index("worst slack")],
                sta_text[:sta_text.index("data arrival time") - 12], ""):
        with pytest.raises(ToolFailed, match=rf"^OpenSTA report has no .*; log: {r['sta_log']}$"):
            parse_sta(cut, r["sta_log"])
    stat_text = (tmp_path / "stat.json").read_text()
    total, _, cells = parse_stat(stat_text, "rcm_mac", r["log"])
    assert (total, cells) == (r["area_um2"], r["cells"])
    for cut in (stat_text[:len(stat_text) // 2], "{}", '{"modules": {}}'):
        with pytest.raises(ToolFailed, match=rf"^cannot read the area .*; log: {r['log']}$"):
            parse_stat(cut, "rcm_mac", r["log"])


@pytest.mark.synth
def test_constraints_reach_the_tools(tmp_path):
    """An input delay lengthens the critical path by as much when the path starts at an
    input (without a pipeline register, the multiplier's operands are inputs); the load and
    driving cell are in the STA script."""
    cfg = apply_overrides(preset("mac8-fixed"), ["pipeline=0"])
    base = synthesize(cfg, "asic", out_dir=tmp_path / "a", clock_ns=10.0)
    assert "input port" in base["critical_path"]["startpoint"]
    late = synthesize(cfg, "asic", out_dir=tmp_path / "b", clock_ns=10.0, constraints={
        "input_delay_ns": 1.25, "output_load": 0.02, "driving_cell": "BUFX2"})
    tcl = (tmp_path / "b" / "sta.tcl").read_text()
    assert "set_input_delay 1.25 -clock clk" in tcl and "set_load 0.02" in tcl
    assert "set_driving_cell -lib_cell BUFX2" in tcl
    assert late["constraints"]["input_delay_ns"] == 1.25
    assert late["critical_path_ns"] > base["critical_path_ns"] + 1.0


@pytest.mark.synth
def test_user_liberty_sky130_gz(tmp_path):
    r = synthesize(preset("mac8"), "asic", out_dir=tmp_path, liberty=str(SKY130))
    _check_consistent(r)
    assert r["liberty"]["name"] == "sky130_fd_sc_hd__tt_025C_1v80"
    assert r["liberty"]["path"] == str(SKY130)
    assert r["liberty"]["tie_cells"][0][0] == "sky130_fd_sc_hd__conb_1"
    assert r["liberty"]["driving_cell"] == "sky130_fd_sc_hd__buf_1"
    netlist = (tmp_path / "netlist.v").read_text()
    assert "sky130_fd_sc_hd__" in netlist and "DFFPOSX1" not in netlist
    # the library's dont_use patterns (rcm_gen/flows/data/asic.toml) keep power-management cells out
    assert r["liberty"]["dont_use"] and "sky130_fd_sc_hd__lpflow_" not in netlist


@pytest.mark.synth
def test_tile_area_groups(tmp_path):
    tiny = apply_overrides(preset("rcm-small"), [
        "p=1", "tm=1", "tn=1", "tr=2", "tc=2", "k_max=3", "s_max=1", "mac.width=8"])
    r = synthesize(tiny, "asic", out_dir=tmp_path, clock_ns=10.0)
    _check_consistent(r)
    assert all(v > 0 for v in r["area_by_group"].values()), r["area_by_group"]
    assert r["top"] == "rcm_tile"


def test_groups_follow_instance_names():
    assert group_of("\\rcm_mac.multiplier", "rcm_mac") == "multipliers"
    assert group_of("\\rcm_mac.multiplier.tree", "rcm_mac") == "multipliers"
    assert group_of("\\rcm_mac", "rcm_mac") == "accumulators"
    assert group_of("\\rcm_mac.pipe", "rcm_mac") == "accumulators"
    assert group_of("\\rcm_tile.mac3.multiplier", "rcm_tile") == "multipliers"
    assert group_of("\\rcm_tile.mac0.multiplier.booth", "rcm_tile") == "multipliers"
    assert group_of("\\rcm_tile.mac12", "rcm_tile") == "accumulators"
    assert group_of("\\rcm_tile.weight_buf", "rcm_tile") == "buffers"
    assert group_of("\\rcm_tile.act_buf.bank0", "rcm_tile") == "buffers"
    # the two banks of the output double buffer
    assert group_of("\\rcm_tile.out_buf1", "rcm_tile") == "buffers"
    assert group_of("\\rcm_tile.out_buf0.mem3", "rcm_tile") == "buffers"
    assert group_of("\\rcm_tile.controller", "rcm_tile") == "control"
    assert group_of("\\rcm_tile.loader.multiplier", "rcm_tile") == "control"
    assert group_of("\\rcm_tile", "rcm_tile") == "control"
    # as rcm_gen writes the Verilog: modules named for their kind, or their parent
    assert group_of("rcm_mac__multiplier", "rcm_mac") == "multipliers"
    assert group_of("rcm_tile__mac", "rcm_tile") == "accumulators"
    assert group_of("rcm_tile__mac__multiplier", "rcm_tile") == "multipliers"
    assert group_of("rcm_tile__mac_column", "rcm_tile") == "control"
    assert group_of("rcm_tile__buffer_92x32_transparent", "rcm_tile") == "buffers"
    assert group_of("rcm_tile__ff_block_64x64", "rcm_tile") == "buffers"
    assert group_of("rcm_tile__buffer_128x16__mem", "rcm_tile") == "buffers"
    assert group_of("rcm_tile__pixel_unit", "rcm_tile") == "control"
    assert group_of("rcm_tile__ppu", "rcm_tile") == "control"


def test_area_counts_every_instance():
    """A module instantiated twice counts twice; each module's own area is its area less
    its submodules'."""
    stat = {"modules": {
        "\\rcm_tile": {"area": 50.0, "num_cells": 4,
                       "num_cells_by_type": {"NAND2X1": 2, "rcm_tile.mac0": 2}},
        "\\rcm_tile.mac0": {"area": 20.0, "num_cells": 3,
                            "num_cells_by_type": {"INVX1": 2, "rcm_tile.mac0.multiplier": 1}},
        "\\rcm_tile.mac0.multiplier": {"area": 8.0, "num_cells": 2,
                                       "num_cells_by_type": {"XOR2X1": 2}},
    }}
    assert instance_counts(stat["modules"]) == {
        "rcm_tile": 1, "rcm_tile.mac0": 2, "rcm_tile.mac0.multiplier": 2}
    total, groups, cells = parse_stat(json.dumps(stat), "rcm_tile", "x.log")
    assert total == 50.0 and cells == 2 + 2 * 2 + 2 * 2
    assert groups == {"multipliers": 16.0, "accumulators": 24.0, "buffers": 0.0,
                      "control": 10.0}


def test_unparseable_sta_report_raises_with_log(tmp_path):
    log = tmp_path / "sta.log"
    good = ("Startpoint: a\nEndpoint: b\n   1.0000   data arrival time\n"
            "worst slack 0.5000\ntns 0.0000\n")
    assert parse_sta(good, log)["worst_slack"] == 0.5
    with pytest.raises(ToolFailed, match=rf"^OpenSTA report has no worst slack; log: {log}$"):
        parse_sta(good[:good.index("worst")], log)
    with pytest.raises(ToolFailed, match=rf"^OpenSTA report has no TNS; log: {log}$"):
        parse_sta(good.replace("tns 0.0000", "tns"), log)
    with pytest.raises(ToolFailed, match=r"^OpenSTA failed \(Error: x\); log: "):
        parse_sta("Error: x\n" + good, log)


_TINY_LIB = """library (tiny) {
  cell (INV) { area : 2; pin (A) { direction : input; }
    pin (Y) { direction : output; function : "!A"; } }
  cell (BUF) { area : 3; pin (A) { direction : input; }
    pin (Y) { direction : output; function : "A"; } }
  cell (BIGBUF) { area : 9; pin (A) { direction : input; }
    pin (Y) { direction : output; function : "A"; } }
  cell (TIE) { area : 4; pin (H) { direction : output; function : "1"; }
    pin (L) { direction : output; function : "0"; } }
}
"""


def test_library_cells_found_or_configured(tmp_path):
    f = tmp_path / "tiny.lib"
    f.write_text(_TINY_LIB)
    lib = load_liberty(f)
    found = library_cells(lib, {})
    assert found == {"tie_hi": ("TIE", "H"), "tie_lo": ("TIE", "L"),
                     "buffer": ("BUF", "A", "Y"), "driving_cell": "BUF", "dont_use": []}
    avoided = library_cells(lib, {"dont_use": ["B?F", "TI*"]})
    assert avoided["buffer"] == ("BIGBUF", "A", "Y") and avoided["tie_hi"] is None
    chosen = library_cells(lib, {"buffer_cell": "BIGBUF", "driving_cell": "INV"})
    assert chosen["buffer"] == ("BIGBUF", "A", "Y") and chosen["driving_cell"] == "INV"
    with pytest.raises(UserError, match=r"^buffer cell 'NAND' is not a cell of liberty "
                                        r"'tiny'$"):
        library_cells(lib, {"buffer_cell": "NAND"})
    with pytest.raises(UserError, match=r"^buffer cell 'INV' of liberty 'tiny' is not a buffer"):
        library_cells(lib, {"buffer_cell": "INV"})
    with pytest.raises(UserError, match=r"^tie cell 'BUF' of liberty 'tiny' has no constant"):
        library_cells(lib, {"tie_cell": "BUF"})
    osu = library_cells(load_liberty(OSU018), {})
    assert osu["tie_hi"] is None and osu["buffer"] == ("BUFX2", "A", "Y")


@pytest.mark.parametrize("overrides, message", [
    ({"clock": 5}, r"ASIC constraint must be one of clock_ns, .*, not 'clock'"),
    ({"clock_ns": 0}, r"clock period must be greater than 0 ns, not 0"),
    ({"clock_ns": float("nan")}, r"ASIC constraint clock_ns must be a finite number, not nan"),
    ({"input_delay_ns": -1.0}, r"ASIC constraint input_delay_ns must not be negative, not -1.0"),
    ({"output_load": "big"}, r"ASIC constraint output_load must be a finite number, not 'big'"),
    ({"driving_cell": 3}, r"ASIC constraint driving_cell must be a string, not 3"),
    ({"dont_use": "X*"},
     r"ASIC constraint dont_use must be a list of cell-name patterns, not 'X\*'"),
])
def test_bad_constraints(overrides, message):
    with pytest.raises(UserError, match=rf"^{message}$"):
        asic_constraints(overrides)


def test_constraints_must_be_a_dict():
    with pytest.raises(TypeError, match=r"^ASIC constraints must be a dict, not \[\]$"):
        asic_constraints([])


def test_shipped_constraints():
    cons = asic_constraints()
    assert cons["clock_ns"] > 0 and cons["liberty"] == "osu018"
    assert cons["libraries"]["osu018"]["path"] == str(OSU018)
