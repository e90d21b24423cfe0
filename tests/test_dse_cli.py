"""rcm-gen dse: bad input, and the real flow end to end on a small space."""

import csv
import json
import re
import textwrap

import pytest

BAD_SPACES = [
    ("[knobs]\nfoo = [1]\n[[workloads]]\nname='a'\nlayer={c=1,m=1,h=4,w=4,k=3}\nbits=[8]\n",
     r"knob must be one of arch, .*, not 'foo'"),
    ("[knobs]\np = []\n[[workloads]]\nname='a'\nlayer={c=1,m=1,h=4,w=4,k=3}\nbits=[8]\n",
     r"knob p has an empty list of values"),
    ("[knobs]\np = [3]\ntm = [4]\n[[workloads]]\nname='a'\nlayer={c=1,m=1,h=4,w=4,k=3}\n"
     "bits=[8]\n", r"no legal design point among 1 combinations"),
    ("[knobs]\np = [1]\n", r"\[\[workloads\]\]"),
    ("[knobs]\np = [1]\n[target]\nkind = 'gpu'\n[[workloads]]\nname='a'\n"
     "layer={c=1,m=1,h=4,w=4,k=3}\nbits=[8]\n", r"target kind must be one of asic"),
    ("[knobs]\np = [1]\n[[workloads]]\nname='a'\nnetwork='resnet18'\nbits=['int2']\n",
     r"uniform8"),
    ("not toml [", r"not valid TOML"),
]


@pytest.mark.parametrize("text, message", BAD_SPACES)
def test_bad_space_files(tmp_path, cli, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    r = cli("dse", "--space", str(f), "--out", str(tmp_path / "o"))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_bad_arguments(tmp_path, cli):
    f = tmp_path / "file"
    f.write_text("")
    r = cli("dse", "--example", "--out", str(f))
    assert r.returncode == 2 and "is a file" in r.stderr
    r = cli("dse", "--example", "--out", str(tmp_path / "o"), "--scheduler",
            "tcp://127.0.0.1:9")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "scheduler" in r.stderr
    r = cli("dse", "--space", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "file not found" in r.stderr
    r = cli("dse", "--example", "space7", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert ("'space7' is not a shipped space; known: example_space, fpga, fpga-25k, "
            "space24, ") in r.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name, points", [("example_space", 12), ("space24", 24)])
def test_shipped_spaces_load(name, points):
    from rcm_gen.dse.cli import example_space
    from rcm_gen.dse.space import load_space

    space = load_space(example_space(name))
    assert len(space.combinations()) == points
    for knobs in space.combinations():
        space.point(knobs)  # every combination is a legal design point


SMALL = """
name = "real"
base = "rcm-small"
[knobs]
arch = ["booth", "fixed"]
p = [1]
tm_per_p = [1]
tn = [1]
tr = [2]
tc = [2]
k_max = [3]
s_max = [1]
width = [8]
lanes = [[1, 2, 4]]
clock_ns = [10.0]
[[workloads]]
name = "conv"
layer = {c = 4, m = 2, h = 4, w = 4, k = 3, stride = 1, padding = 1}
bits = [8, 2]
"""


@pytest.mark.synth
def test_real_flow_end_to_end(tmp_path, cli):
    """Two real points (ST and fixed): synthesized, timed, cycles from the model; a second
    run computes nothing; the map command finds the fixed point of equal area."""
    from rcm_gen.conv import ConvShape
    from rcm_gen.tile.config import TileConfig
    from rcm_gen.tile.driver import PostProcess, layer_cycles

    space = tmp_path / "space.toml"
    space.write_text(textwrap.dedent(SMALL))
    out = tmp_path / "out"
    r = cli("dse", "--space", str(space), "--out", str(out), "-j", "2", "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["precision"] for r in rows} == {"8", "2"}
    for row in rows:
        assert float(row["area"]) > 0 and float(row["fmax_mhz"]) > 0
    with open(out / "pareto.csv") as f:
        assert list(csv.DictReader(f))
    # the cycles are the cycle model's
    import sqlite3

    db = sqlite3.connect(out / "store.sqlite")
    configs = [json.loads(c) for (c,) in db.execute("SELECT config FROM points")]
    db.close()
    shape = ConvShape(c=4, m=2, h=4, w=4, k=3, stride=1, padding=1)
    expected = {(TileConfig.from_dict(c).is_fixed, b): layer_cycles(
        TileConfig.from_dict(c), shape, b, b, False,
        post=PostProcess.for_timing(shape.m, b)).total for c in configs for b in (8, 2)}
    for row in rows:
        fixed = row["configurable"] == "False"
        assert int(row["cycles"]) == expected[(fixed, int(row["precision"]))]
    again = cli("dse", "--space", str(space), "--out", str(out), "--quiet")
    assert again.returncode == 0 and "0 computed" in again.stdout, again.stdout
    # rcm-gen map --store: the fixed point of (about) equal area from the sweep
    booth = next(c for c in configs if c["mac"]["arch"] == "booth")
    cfg_file = tmp_path / "booth.json"
    cfg_file.write_text(json.dumps(booth))
    net = tmp_path / "net.json"
    net.write_text(json.dumps([{"name": "l1", "c": 8, "m": 4, "h": 6, "w": 6, "k": 3,
                                "stride": 1, "padding": 1, "act_bits": 4,
                                "weight_bits": 4, "act_signed": False}]))
    r = cli("map", "--config", str(cfg_file), "--network", str(net), "--store",
            str(out / "store.sqlite"), "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    match = json.loads((tmp_path / "m.json").read_text())["equal_area_fixed"]
    assert match is not None and match["config"]["mac"]["arch"] == "fixed"
    assert match["speedup_cycles"] > 1.5  # 4-bit layer: 2 lanes of the W=8 ST MAC
