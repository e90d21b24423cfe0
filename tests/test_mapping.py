"""Mapping networks onto design points, and the evidence that the mapping's cycles are the
RTL's: real ResNet-18 layer shapes, reduced in spatial size only, run through `rcm-gen run`."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.errors import UserError
from rcm_gen.presets import preset
from rcm_gen.tile.driver import layer_cycles
from rcm_gen.tile.simulate import LayerCase, random_post, simulate_layers
from rcm_gen.workloads import load_network
from rcm_gen.workloads.mapping import layer_post, map_network
from rcm_gen.workloads.resnet18 import resnet18


def test_resnet18_latency05_on_rcm_default():
    cfg = preset("rcm-default")
    m = map_network(cfg, resnet18("latency0.5"), fmax_mhz=150.0, fixed_fmax_mhz=160.0)
    assert m.total_cycles == sum(row.cycles.total for row in m.layers)
    assert m.network.macs == 1_814_073_344
    # every layer's cycles are the cycle model's (sums requantized on the tile at the
    # layer's activation bits), lanes follow the bits
    for row in m.layers:
        assert row.cycles == layer_cycles(cfg, row.layer.shape, row.layer.act_bits,
                                          row.layer.weight_bits, row.layer.act_signed,
                                          post=layer_post(row.layer))
        assert row.cycles.lanes == {8: 2, 4: 4}[row.layer.act_bits]
        assert row.fixed.lanes == 1
    assert m.speedup_cycles >= 2.3  # the goal for latency0.5 (ideal 2.57)
    assert m.latency_ms == pytest.approx(m.total_cycles / 150e3)
    assert m.speedup_time == pytest.approx(m.speedup_cycles * 150 / 160)
    fixed16 = map_network(cfg, resnet18("fixed16"))
    assert fixed16.speedup_cycles == pytest.approx(1.0, abs=0.01)


def test_tilings_follow_the_bandwidth():
    """With an off-chip bandwidth, every layer takes the tiling (and the im2col form or
    not) with the fewest cycles under it: never more than the tiling chosen for compute
    alone, at that bandwidth; fewer in total."""
    cfg, net = preset("rcm-default"), resnet18("latency0.5")
    aware = map_network(cfg, net, bandwidth=1)
    blind = [row.cycles.latency(1)[0] for row in map_network(cfg, net).layers]
    assert all(row.latency <= b for row, b in zip(aware.layers, blind, strict=True))
    assert aware.total_cycles < sum(blind)


@pytest.mark.parametrize("bits", ["w4a8", "w8a4", "latency0.5-a8"])
def test_asymmetric_resnet18_on_fusion_and_st_tiles(bits):
    """Asymmetric bit widths: the fusion tile runs each layer in the mode of its
    (activation, weight) widths, (16/A)(16/B) products per MAC and cycle (W4A8 and W8A4:
    8, twice its 8x8 mode); the Sum-Together tile runs them in the lane mode of the wider
    operand, as slowly as 8x8."""
    net = resnet18(bits)
    st = map_network(preset("rcm-default"), net)
    fusion = map_network(preset("rcm-default-fusion"), net)
    for a, b in zip(st.layers, fusion.layers, strict=True):
        layer = a.layer
        assert a.cycles.lanes == 16 // max(layer.act_bits, layer.weight_bits)
        assert b.cycles.lanes == (16 // layer.act_bits) * (16 // layer.weight_bits)
        assert b.cycles == layer_cycles(preset("rcm-default-fusion"), layer.shape,
                                        layer.act_bits, layer.weight_bits, layer.act_signed,
                                        post=layer_post(layer))
    eight = map_network(preset("rcm-default-fusion"), resnet18("uniform8"))
    if bits != "latency0.5-a8":
        assert st.total_cycles == map_network(preset("rcm-default"),
                                              resnet18("uniform8")).total_cycles
        assert fusion.total_cycles < 0.6 * eight.total_cycles
    assert fusion.speedup_cycles > 2.4 * st.speedup_cycles


def test_layer_the_point_cannot_run():
    small_k = preset("rcm-small").replace(k_max=5)
    with pytest.raises(UserError, match=r"^layer 'stem' cannot run on this design point: "
                                        r"kernel 7 is beyond the tile's k_max=5$"):
        map_network(small_k, resnet18())


def test_map_cli_json_and_fmax(cli, tmp_path):
    out = tmp_path / "m.json"
    r = cli("map", "rcm-small", "--network", "resnet18", "--bits", "uniform4",
            "--fmax-mhz", "100", "--fixed-fmax-mhz", "120", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "latency" in r.stdout and "s4.u2.c2" in r.stdout
    data = json.loads(out.read_text())
    assert len(data["layers"]) == 21
    assert data["totals"]["latency_ms"] == pytest.approx(data["totals"]["cycles"] / 100e3)
    assert data["config"]["kind"] == "tile" and data["fmax_source"] == "given"
    # a synthesis report of another design point is refused
    rep = tmp_path / "r.json"
    rep.write_text(json.dumps({"fmax_mhz": 100, "config": preset("mac16").to_dict()}))
    r = cli("map", "rcm-small", "--network", "resnet18", "--synth-report", str(rep))
    assert r.returncode == 2 and "different design point" in r.stderr


@pytest.mark.synth
@pytest.mark.long
def test_map_synthesize_uses_the_cache(cli, tmp_path):
    """--synthesize runs the ASIC flow for the point and its twin once, into the cache;
    the latency uses the Fmax of those reports, and a second call synthesizes nothing."""
    cache = {"RCM_GEN_CACHE": str(tmp_path / "cache")}
    net = tmp_path / "net.json"
    net.write_text(json.dumps([{"name": "a", "c": 8, "m": 4, "h": 6, "w": 6, "k": 3,
                                "stride": 1, "padding": 1, "act_bits": 4, "weight_bits": 4,
                                "act_signed": False}]))
    args = ("map", "rcm-small", "--set", "p=1", "--set", "tm=1", "--set", "tn=1",
            "--set", "tr=1", "--set", "tc=1", "--set", "k_max=3", "--network", str(net),
            "--synthesize", "--json", str(tmp_path / "m.json"))
    r = cli(*args, env=cache)
    assert r.returncode == 0, r.stderr
    assert "synthesizing the design" in r.stdout and "synthesizing the fixed twin" in r.stdout
    data = json.loads((tmp_path / "m.json").read_text())
    for side, fmax in (("fmax_source", "fmax_mhz"), ("fixed_fmax_source", "fixed_fmax_mhz")):
        report = json.loads(Path(data[side]).read_text())
        assert data["totals"][fmax] == report["fmax_mhz"] > 0
    r = cli(*args, env=cache)
    assert r.returncode == 0, r.stderr
    assert "synthesizing" not in r.stdout
    assert json.loads((tmp_path / "m.json").read_text())["totals"] == data["totals"]


@pytest.mark.slow
def test_mapper_cycles_equal_rtl_on_resnet18_layers():
    """s1.u1.c1 (64->64, 8-bit) and s2.u1.c2 (128->128, 4-bit) of ResNet-18 latency0.5,
    spatially reduced, requantized on the tile as the mapper has them: rcm-default's RTL
    measures the mapper's cycles (and computes the layer bit-exactly)."""
    cfg = preset("rcm-default")
    net = load_network("resnet18", "latency0.5")
    rng = np.random.default_rng(3)
    cases, mapped = [], []
    for name, size in (("s1.u1.c1", 4), ("s2.u1.c2", 2)):
        layer = net.layer(name)
        shape = dataclasses.replace(layer.shape, h=size, w=size)
        reduced = dataclasses.replace(layer, shape=shape)
        mapped.append(map_network(cfg, dataclasses.replace(net, layers=(reduced,))).layers[0])
        bits = layer.act_bits
        x = rng.integers(0, 1 << bits, size=(shape.c, size, size))
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(shape.m, shape.c, 3, 3))
        values = random_post(rng, shape, bits, bits, cfg.mac.width, out_bits=bits)
        post = dataclasses.replace(layer_post(reduced), bias=values.bias,
                                   multiplier=values.multiplier, shift=values.shift)
        cases.append(LayerCase(shape, x, w, bits, bits, layer.act_signed, post=post))
    results, _ = simulate_layers(cfg, cases, "verilator")
    for r, m in zip(results, mapped, strict=True):
        assert r["error"] == "NONE" and r["output_ok"], r["mismatch"]
        assert r["cycles"] == m.cycles.total, m.layer.name
        print(f"{m.layer.name} at {m.layer.shape.h}x{m.layer.shape.w}: RTL {r['cycles']} "
              f"cycles = mapper {m.cycles.total}, lanes {m.cycles.lanes}")
