"""The rcm-gen command line: presets, config, generate (determinism, lint), bad input."""

import json
import os
import re
import stat
from pathlib import Path

import pytest

from rcm_gen.flows.lint import VERILATOR_WAIVERS


def test_presets_lists_names(cli):
    r = cli("presets")
    assert r.returncode == 0
    assert "mac16 " in r.stdout and "mac16-fixed" in r.stdout


def test_config_prints_json_with_overrides(cli):
    r = cli("config", "mac16", "--set", "arch=ppa", "--set", "lanes=1,2")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["arch"] == "ppa" and data["lanes"] == [1, 2] and data["kind"] == "mac"


def test_config_shows_modes_and_word_widths(cli):
    """Standard output is the JSON; standard error the modes: MACs per cycle for every
    pairing of widths, the operand words, and what the architecture does with asymmetry."""
    r = cli("config", "mac16-fusion")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["arch"] == "fusion"
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stderr.splitlines()
            if ln[:1].isdigit()}
    assert rows["8x4"] == ["8x4", "8", "64", "32"] and rows["2x2"] == ["2x2", "64", "128",
                                                                       "128"]
    assert len(rows) == 16
    assert "operand words: activations 128 bits, weights 128 bits" in r.stderr
    r = cli("config", "mac16")
    rows = {ln.split()[0]: ln.split()[1:] for ln in r.stderr.splitlines()
            if ln[:1].isdigit()}
    assert rows["8x4"] == ["8x8", "2", "16", "16"] and rows["2x2"][:2] == ["4x4", "4"]
    assert "booth: an asymmetric request runs in the lane mode of its wider operand" \
        in r.stderr


def test_help_for_every_subcommand(cli):
    r = cli("--help")
    assert r.returncode == 0
    for sub in ("presets", "config", "generate", "verify"):
        assert sub in r.stdout
        assert cli(sub, "--help").returncode == 0


@pytest.mark.parametrize("name", ["mac16", "mac16-ppa", "mac16-fixed", "mac8", "mac8-fusion",
                                  "mac16-dsp"])
def test_generate_is_deterministic_and_lint_clean(cli, tmp_path, name):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    r1 = cli("generate", name, "-o", "out", "--lint", cwd=tmp_path / "a")
    assert r1.returncode == 0, r1.stdout + r1.stderr
    assert "lint yosys: clean" in r1.stdout and "lint verilator: clean" in r1.stdout
    r2 = cli("generate", name, "-o", str(tmp_path / "b" / "deeper" / "x"),
             cwd=tmp_path / "b" / "deeper")
    assert r2.returncode == 0, r2.stderr
    v1 = (tmp_path / "a" / "out" / "rcm_mac.v").read_bytes()
    v2 = (tmp_path / "b" / "deeper" / "x" / "rcm_mac.v").read_bytes()
    assert v1 == v2
    assert b"(* src" not in v1 and str(tmp_path).encode() not in v1
    m1 = json.loads((tmp_path / "a" / "out" / "manifest.json").read_text())
    assert m1["config"]["kind"] == "mac" and m1["top"] == "rcm_mac"
    assert {p["name"] for p in m1["ports"]} >= {"clk", "rst", "a", "w", "mode", "acc"}
    assert m1["tools"]["amaranth"]


@pytest.mark.parametrize("sets", [
    [],
    # a P x Q array whose activation banks are one flip-flop block each
    ["p=2", "tm=2", "qr=2", "qc=2", "act_beat=4", "tn=4"],
])
def test_tile_verilog_is_deterministic_and_lint_clean(cli, tmp_path, sets):
    args = [a for kv in sets for a in ("--set", kv)]
    r1 = cli("generate", "rcm-small", *args, "-o", str(tmp_path / "a"), "--lint")
    assert r1.returncode == 0, r1.stdout + r1.stderr
    assert "lint yosys: clean" in r1.stdout and "lint verilator: clean" in r1.stdout, r1.stdout
    r2 = cli("generate", "rcm-small", *args, "-o", str(tmp_path / "b"))
    assert r2.returncode == 0, r2.stderr
    assert (tmp_path / "a" / "rcm_tile.v").read_bytes() == (
        tmp_path / "b" / "rcm_tile.v").read_bytes()
    # the manifest lists the modules the file defines, each once, the top first
    modules = json.loads((tmp_path / "a" / "manifest.json").read_text())["modules"]
    names = [m["name"] for m in modules]
    assert names[0] == "rcm_tile" and modules[0]["instances"] == 1
    text = (tmp_path / "a" / "rcm_tile.v").read_text()
    assert re.findall(r"^module (\w+)\(", text, re.M) == names
    assert f"; {len(names)} modules, " in r1.stdout


def test_lint_waivers_are_only_amaranth_classes():
    assert set(VERILATOR_WAIVERS) == {"WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL",
                                      "PROCASSINIT", "DECLFILENAME"}


@pytest.mark.parametrize("args, message", [
    (["config", "mac99"], "Preset must be one of mac16, .*, not 'mac99'"),
    (["config", "mac16", "--set", "lanes=1,3"],
     r"--set lanes=1,3: Lane count must be one of 1, 2, 4, 8 .*, not 3"),
    (["config", "mac16", "--set", "width=8", "--set", "lanes=8"],
     r"--set lanes=8: Lane count must be one of 1, 2, 4 \(a power of two dividing width 8 "
     r"with at least 2 bits per lane\), not 8"),
    (["config", "mac16", "--set", "depth=3"],
     r"--set depth=3: Configuration key must be one of width, .*, not 'depth'"),
    (["config", "mac16", "--set", "pipeline=two"],
     r"--set pipeline=two: Pipeline depth must be an integer, not 'two'"),
    (["config", "--config", "/nonexistent/x.json"],
     r"--config '/nonexistent/x.json': file not found"),
    (["config"], r"a design is required: give PRESET or --config FILE"),
    (["config", "mac16-fusion", "--set", "modes=16x16,3x4"],
     r"--set modes=16x16,3x4: Fusion mode activation bits must be one of 16, 8, 4, 2 "
     r"\(multiples of brick 2 up to width 16: the lane widths of lanes 1, 2, 4, 8\), not 3 "
     r"in '3x4'$"),
    (["config", "mac16-fusion", "--set", "modes=8x32"],
     r"--set modes=8x32: Fusion mode weight bits must be one of 16, 8, 4, 2 .*, not 32 in "
     r"'8x32'$"),
    (["config", "mac16-fusion", "--set", "brick=3"],
     r"--set brick=3: Brick size must be one of 2, 4, 8 \(a power of two dividing width 16, "
     r"at most half of it\), not 3$"),
    (["config", "mac8-fusion", "--set", "brick=8"],
     r"--set brick=8: Brick size must be one of 2, 4 \(.*\), not 8$"),
    (["config", "mac16-fusion", "--set", "brick=4"],
     r"--set brick=4: Lane count of the fusion architecture must be one of 1, 2, 4 \(16/N "
     r"bits a multiple of brick 4\), not 8$"),
    (["frobnicate"], r"argument COMMAND: invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_exit_2(cli, args, message):
    r = cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("rcm-gen: error: ")
    import re
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in r.stderr


def test_malformed_config_file(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = cli("config", "--config", str(bad))
    assert r.returncode == 2 and "not valid JSON" in r.stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"kind": "mac", "width": 16, "lanes": [1, 2, 4, 8, 16]}))
    r = cli("config", "--config", str(wrong))
    assert r.returncode == 2 and "not 16" in r.stderr and len(r.stderr.splitlines()) == 1
    good = tmp_path / "good.json"
    good.write_text(cli("config", "mac8").stdout)
    r = cli("config", "--config", str(good))
    assert r.returncode == 0 and json.loads(r.stdout)["width"] == 8


def test_unwritable_output_dir(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    # root writes through permissions, but not into /proc
    target = Path("/proc/rcm_gen_out") if os.geteuid() == 0 else locked / "out"
    try:
        r = cli("generate", "mac8", "-o", str(target))
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert repr(str(target)) in r.stderr, r.stderr
        assert "is not writable" in r.stderr or "could not be written" in r.stderr, r.stderr
        assert not target.exists()
    finally:
        locked.chmod(stat.S_IRWXU)


def test_output_dir_is_a_file(cli, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = cli("generate", "mac8", "-o", str(f))
    assert r.returncode == 2 and "is a file" in r.stderr
    assert f.read_text() == "x"


def test_unwritable_output_dir_without_root_privilege(cli, tmp_path):
    """/proc is not writable even for root: no directory, exit 2."""
    r = cli("generate", "mac8", "-o", "/proc/rcm_gen_out")
    assert r.returncode == 2, r.stderr
    assert "rcm-gen: error: output directory '/proc/rcm_gen_out'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_config_leaves_no_output(cli, tmp_path):
    r = cli("generate", "mac16", "--set", "lanes=5", "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []
