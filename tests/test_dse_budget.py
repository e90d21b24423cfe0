"""An FPGA part as the budget of a design-space exploration: points over it pruned from
their synthesized resources before place and route, points under the minimum Fmax failing
it, fronts of latency against LUTs and DSPs (the stand-in flow of dse_fake.py), and the
bad-input lines."""

import csv
import re
import textwrap

import pytest

from rcm_gen.dse.evaluate import budget_excess
from rcm_gen.dse.pareto import write_outputs
from rcm_gen.dse.runner import run_sweep
from rcm_gen.dse.space import load_space
from rcm_gen.dse.store import Store

FAKE = "dse_fake:fake_fpga"

SPACE = """
name = "budget"
base = "rcm-small"
[knobs]
arch = ["booth", "dsp", "fixed"]
p = [1, 2, 4]
tm_per_p = [1]
[target]
kind = "ecp5"
part = "LFE5U-25"
{limits}
[[workloads]]
name = "net"
network = "net.json"
"""
#: A two-layer network (the cycle model runs in milliseconds on it).
NET = ('{"name": "net", "layers": ['
       '{"name": "c1", "c": 8, "m": 16, "h": 8, "w": 8, "k": 3, "padding": 1, '
       '"act_bits": 8, "weight_bits": 8}, '
       '{"name": "c2", "c": 16, "m": 16, "h": 8, "w": 8, "k": 3, "padding": 1, '
       '"act_bits": 4, "weight_bits": 4}]}')


def _space(tmp_path, limits):
    (tmp_path / "net.json").write_text(NET)
    f = tmp_path / "space.toml"
    f.write_text(textwrap.dedent(SPACE.format(limits=limits)))
    return load_space(f)


def test_budget_excess_names_each_resource_and_how_much_over():
    budget = {"luts": 24288, "dsps": 20, "brams": 56}
    assert budget_excess({"luts": 100, "dsps": 20, "brams": 0}, budget) is None
    assert budget_excess({"luts": 25000, "dsps": 23, "brams": 2}, budget) == \
        "luts 25,000 > 24,288 (+712); dsps 23 > 20 (+3)"


def test_points_over_the_budget_are_pruned_before_place_and_route(tmp_path, monkeypatch):
    log = tmp_path / "pnr.log"
    monkeypatch.setenv("RCM_FAKE_SYNTH_LOG", str(log))
    # fake counts: LUTs booth 3000P+1500, dsp 2400P+1500, fixed 2000P+1500; DSPs fixed
    # P+2, dsp 2P+2, booth 2; Fmax 60/P (+5 fixed)
    space = _space(tmp_path, "luts = 10000\ndsps = 6\nfmax_mhz = 20.0")
    assert space.budget == {"part": "LFE5U-25", "device": "25k", "luts": 10000, "dsps": 6,
                            "brams": 56, "fmax_mhz": 20.0}
    store_path = tmp_path / "store.sqlite"
    stats = run_sweep(space, store_path, jobs=1, synthesizer=FAKE, progress=False)
    assert stats.points == 9 and stats.computed == 9 and stats.failed == 0
    with Store(store_path) as store:
        results = {(r["knobs"]["arch"], r["knobs"]["p"]): r["result"]
                   for r in store.rows(stats.keys)}
        write_outputs(stats.tasks, store, space, tmp_path / "out")
    pruned = {k: r["pruned"] for k, r in results.items() if r.get("pruned")}
    assert pruned == {("booth", 4): "luts 13,500 > 10,000 (+3,500)",
                      ("dsp", 4): "luts 11,100 > 10,000 (+1,100); dsps 10 > 6 (+4)"}
    # only the points that fit were "placed and routed"
    placed = sorted((ln.split()[2], int(ln.split()[3])) for ln in log.read_text().splitlines())
    assert placed == sorted(k for k in results if k not in pruned)
    assert all("fmax_mhz" not in results[k] for k in pruned)
    # the fixed P = 4 runs at 20 MHz: not under the 20 MHz minimum
    assert not any(r.get("budget_fail") for r in results.values())
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    budget = {(r["arch"], r["p"]): r["budget"] for r in rows}
    assert budget[("booth", "4")].startswith("pruned: luts 13,500")
    assert budget[("fixed", "1")] == "fits"
    for r in rows:  # frames/s of the network at the point's Fmax, only for points that fit
        if r["budget"] == "fits":
            assert float(r["frames_per_s"]) == pytest.approx(1e9 / float(r["latency_ns"]))
            assert float(r["latency_ns"]) == pytest.approx(
                int(r["cycles"]) * float(r["critical_path_ns"]))
        else:
            assert r["latency_ns"] == "" and r["frames_per_s"] == ""
    front = list(csv.DictReader(open(tmp_path / "out" / "pareto.csv")))
    assert {f["objectives"] for f in front} == {"latency-area", "latency-dsps"}
    assert all(budget[(f["arch"], f["p"])] == "fits" for f in front)
    assert (tmp_path / "out" / "pareto_dsps.png").is_file()
    # the LUT front: it reaches the fastest point that fits, and no point that fits
    # dominates a point on it
    fits = [r for r in rows if r["budget"] == "fits"]
    lut_front = [f for f in front if f["objectives"] == "latency-area"]
    assert min(float(f["latency_ns"]) for f in lut_front) == \
        min(float(r["latency_ns"]) for r in fits)
    for f in lut_front:
        assert not any(float(r["luts"]) <= float(f["luts"]) and float(r["latency_ns"])
                       < float(f["latency_ns"]) for r in fits)


def test_points_under_the_minimum_fmax_fail_the_budget(tmp_path):
    space = _space(tmp_path, "fmax_mhz = 20.0")
    store_path = tmp_path / "store.sqlite"
    stats = run_sweep(space, store_path, jobs=1, synthesizer=FAKE, progress=False)
    with Store(store_path) as store:
        results = {(r["knobs"]["arch"], r["knobs"]["p"]): r["result"]
                   for r in store.rows(stats.keys)}
    failing = {k for k, r in results.items() if r.get("budget_fail")}
    assert failing == {("booth", 4), ("dsp", 4)}  # 15 MHz; fixed P = 4 reaches 20
    assert results[("booth", 4)]["budget_fail"] == "Fmax 15.0 MHz < 20 MHz"


def test_no_point_fits_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    import rcm_gen.dse.runner as runner
    from rcm_gen.cli import main

    real = runner.run_sweep
    monkeypatch.setattr(runner, "run_sweep",
                        lambda *a, **k: real(*a, **{**k, "synthesizer": FAKE}))
    (tmp_path / "net.json").write_text(NET)
    f = tmp_path / "space.toml"
    f.write_text(textwrap.dedent(SPACE.format(limits="luts = 3000")))
    assert main(["dse", "--space", str(f), "--out", str(tmp_path / "o"), "-j", "1",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no design point fits the budget of LFE5U-25 (3,000 LUTs" \
        in err[0], err
    assert not (tmp_path / "o" / "pareto.csv").exists()
    rows = list(csv.DictReader(open(tmp_path / "o" / "results.csv")))
    assert len(rows) == 9 and all(r["budget"].startswith("pruned: luts") for r in rows)


BAD_TARGETS = [
    ("kind = 'ecp5'\npart = 'XC7A35T'",
     r"target part must be one of LFE5U-25, LFE5U-45, LFE5U-85, 25k, 45k, 85k for kind "
     r"ecp5, not 'XC7A35T'$"),
    ("kind = 'ecp5'\npart = 'up5k'", r"for kind ecp5, not 'up5k' \(a part of ice40\)$"),
    ("kind = 'asic'\npart = 'LFE5U-85'",
     r"target part applies to one FPGA kind \(ecp5, ice40, nexus\), not asic$"),
    ("kind = ['ecp5', 'ice40']\npart = 'LFE5U-85'", r"not ecp5, ice40$"),
    ("kind = 'ecp5'\npart = 'LFE5U-85'\nluts = 90000",
     r"target luts must be an integer from 0 to 83640 \(the LFE5U-85's\), not 90000$"),
    ("kind = 'ecp5'\npart = 'LFE5U-85'\nfmax_mhz = -5",
     r"target fmax_mhz must be a number of MHz greater than 0, not -5$"),
    ("kind = 'ecp5'\ndsps = 4", r"target dsps needs a part"),
]


@pytest.mark.parametrize("target, message", BAD_TARGETS)
def test_bad_budget_lines(tmp_path, cli, target, message):
    f = tmp_path / "bad.toml"
    f.write_text(f"[knobs]\np = [1]\n[target]\n{target}\n[[workloads]]\nname='a'\n"
                 f"layer={{c=1,m=1,h=4,w=4,k=3}}\nbits=[8]\n")
    r = cli("dse", "--space", str(f), "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name, part, archs, macs", [
    ("fpga", "LFE5U-85", {"dsp", "fixed"}, {8, 16, 32}),
    ("fpga-25k", "LFE5U-25", {"booth", "dsp", "fixed"}, {2, 4}),
])
def test_shipped_fpga_spaces(name, part, archs, macs):
    from rcm_gen.dse.cli import example_space

    space = load_space(example_space(name))
    assert space.targets == ("ecp5",) and space.budget["part"] == part
    points = [space.point(c).config for c in space.combinations()]
    assert {c.mac.arch for c in points} == archs
    assert {c.p * c.qr * c.qc for c in points} == macs
    # every point's post-processing product in DSP blocks, the fixed ones' too
    assert {c.ppu_dsp_or_booth for c in points} == {"dsp"}


@pytest.mark.long
def test_real_synthesis_prunes_without_place_and_route(tmp_path, cli):
    """The real flow: Yosys synthesizes the point for the part, its DSPs are over the
    budget, nextpnr never runs, and with no point left the sweep says so in one line."""
    f = tmp_path / "space.toml"
    f.write_text("base = 'rcm-small'\n[knobs]\narch = ['fixed']\n[target]\nkind = 'ecp5'\n"
                 "part = 'LFE5U-25'\ndsps = 4\n[[workloads]]\nname = 'conv'\n"
                 "layer = {c = 8, m = 8, h = 4, w = 4, k = 3, padding = 1}\nbits = [8]\n")
    out = tmp_path / "o"
    r = cli("dse", "--space", str(f), "--out", str(out), "-j", "1", "--quiet")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no design point fits the budget of LFE5U-25" in lines[0]
    with Store(out / "store.sqlite") as store:
        (row,) = store.rows()
    res = row["result"]
    assert res["dsps"] > 4 and res["luts"] > 0
    assert res["pruned"] == f"dsps {res['dsps']} > 4 (+{res['dsps'] - 4})"
    run = out / "runs" / f"{row['key']}-1"
    assert (run / "stat.json").is_file() and not (run / "pnr.log").exists()
    assert f"pruned {row['key']}" in r.stdout
