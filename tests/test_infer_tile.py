"""TFLite models on the tile: the bit-exact model of the tile (engine ``model``) and the
RTL in simulation (engine ``rtl``) against LiteRT's reference kernels, tensor by tensor."""

import dataclasses
import json

import numpy as np
import pytest
from test_tflite import BUILT, FLOAT_ENDS, RESNET8
from tflite_builder import write_chain

from rcm_gen.presets import preset
from rcm_gen.tile.cycles import plan_cycles
from rcm_gen.workloads.infer import (
    compare,
    format_table,
    make_engine,
    random_input,
    run_model,
)
from rcm_gen.workloads.litert_oracle import LiteRTOracle
from rcm_gen.workloads.tflite_model import load_tflite
from rcm_gen.workloads.tile_engine import host_lowering, tile_run


def _check(model, oracle, engine, seeds) -> list:
    runs = []
    for seed in seeds:
        x = random_input(model, seed)
        inference = run_model(model, x, engine)
        result = compare(model, inference, oracle.run(x))
        assert result.match, result.first.describe()
        runs.append(inference)
    return runs


@pytest.mark.parametrize("name", sorted(BUILT))
@pytest.mark.parametrize("design", ["rcm-small", "rcm-default-fixed"])
def test_model_engine_on_built_models(tmp_path, name, design):
    """Depthwise (with a channel multiplier), grouped, fully connected (per tensor and per
    channel), odd channel counts, zero points other than -128, asymmetric SAME padding,
    every fused activation, left shifts: every tensor equal to LiteRT's; each tile
    layer's statistics are its plan's cycle model."""
    shape, layers = BUILT[name]
    kw = {"input_dtype": "float32"} if name in FLOAT_ENDS else {}
    path = write_chain(tmp_path / f"{name}.tflite", shape, layers, seed=7, **kw)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    config = preset(design)
    engine = make_engine("model", config)
    inference = _check(model, oracle, engine, range(8))[0]
    for row in inference.rows:
        if row.on != "tile":
            continue
        layer = model.layers[row.op_index]
        run = tile_run(layer, inference.values[model.operators[row.op_index].inputs[0]])
        lc = plan_cycles(run.plan(config))
        assert row.stats["cycles"] == lc.total * len(run.inputs)
        assert row.stats["lanes"] == (1 if config.is_fixed else 2)
        assert row.stats["binding"] == "compute"


@pytest.fixture(scope="module")
def resnet8_path():
    return RESNET8


def test_model_engine_resnet8(resnet8_path):
    """20 seeded inputs through the MLPerf Tiny ResNet-8 on rcm-default, bit-exact."""
    model, oracle = load_tflite(resnet8_path), LiteRTOracle(resnet8_path)
    engine = make_engine("model", preset("rcm-default"))
    inference = _check(model, oracle, engine, range(1, 21))[0]
    tile = [r for r in inference.rows if r.on == "tile"]
    assert len(tile) == 10
    assert all(r.stats["utilisation"] <= 1 for r in tile)
    assert sum(r.stats["ideal"] for r in tile) <= sum(r.stats["cycles"] for r in tile)


def test_bandwidth_makes_layers_memory_bound(resnet8_path):
    """With little off-chip bandwidth, the layers whose bytes exceed their compute cycles
    take their transfer time instead, and say so."""
    model = load_tflite(resnet8_path)
    x = random_input(model, 1)
    free = run_model(model, x, make_engine("model", preset("rcm-default")))
    tight = run_model(model, x, make_engine("model", preset("rcm-default"), bandwidth=0.5))
    assert np.array_equal(free.output, tight.output)
    bound = 0
    for a, b in zip(free.rows, tight.rows, strict=True):
        if a.on != "tile":
            continue
        transfer = -(-(a.stats["bytes_in"] + a.stats["bytes_out"]) // 0.5)
        assert b.stats["cycles"] == max(a.stats["cycles"], int(transfer))
        assert b.stats["binding"] == ("memory" if transfer > a.stats["cycles"] else "compute")
        bound += b.stats["binding"] == "memory"
    assert bound > 0


RTL_MODELS = {
    "depthwise": ((1, 5, 5, 3), [
        dict(op="depthwise", k=3, stride=1, dm=2, padding="SAME", out_zp=-5, act="RELU"),
        dict(op="conv", m=4, k=3, stride=2, padding="SAME", out_zp=17)]),
    "grouped-fc": ((1, 4, 4, 4), [
        dict(op="conv", m=6, k=3, groups=2, padding="SAME", out_zp=0),
        dict(op="reshape", shape=[1, 96]),
        dict(op="fc", m=5, per_channel=False, out_zp=-128)]),
}


@pytest.mark.slow
@pytest.mark.parametrize("simulator, name", [
    *(("icarus", n) for n in sorted(RTL_MODELS)),
    *(pytest.param("verilator", n, marks=pytest.mark.long) if n == "depthwise"
      else ("verilator", n) for n in sorted(RTL_MODELS))])
def test_rtl_engine_on_small_models(tmp_path, cli, name, simulator):
    """Depthwise (with a channel multiplier), dense, grouped and fully connected layers on
    rcm-small's RTL through `rcm-gen infer --engine rtl`: every tensor equal to LiteRT's,
    every layer's RTL cycles equal to the model's."""
    shape, layers = RTL_MODELS[name]
    path = write_chain(tmp_path / f"{name}.tflite", shape, layers, seed=3)
    out = tmp_path / "r.json"
    r = cli("infer", "rcm-small", "--model", path, "--engine", "rtl", "--simulator",
            simulator, "--json", str(out), timeout=1800)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "equal LiteRT's (reference kernels) bit for bit" in r.stdout
    report = json.loads(out.read_text())
    assert report["match"]
    tile = [row for row in report["layers"] if row["on"] == "tile"]
    assert tile and all(row["rtl_cycles"] == row["model_cycles"] == row["cycles"]
                        for row in tile)
    print(f"{name} on {simulator}: " + ", ".join(
        f"{row['opcode']} {row['cycles']} cycles ({row['utilisation']:.0%})" for row in tile))


#: Layers the tile does not run as they are: the host sends their im2col windows.
LOWERED = {
    "dilated": ((1, 9, 9, 5), [dict(op="conv", m=6, k=3, dilation=2, padding="SAME",
                                     out_zp=-5)], "dilation 2x2"),
    "dilated-depthwise": ((1, 8, 8, 4), [dict(op="depthwise", k=3, dilation=(2, 1), dm=2,
                                               padding="SAME")], "dilation 2x1"),
    "kernel-1x7": ((1, 6, 10, 4), [dict(op="conv", m=5, k=(1, 7), padding="SAME")],
                   "kernel 1x7"),
    "kernel-7x1-valid": ((1, 10, 6, 4), [dict(op="conv", m=5, k=(7, 1), padding="VALID")],
                         "kernel 7x1"),
    "strides-2x1": ((1, 8, 8, 3), [dict(op="conv", m=4, k=3, stride=(2, 1), padding="SAME",
                                         act="RELU")], "strides 2x1"),
    "kernel-9": ((1, 12, 12, 2), [dict(op="conv", m=3, k=9, padding="SAME")],
                 "kernel 9 > k_max 7"),
    "stride-3": ((1, 12, 12, 2), [dict(op="conv", m=3, k=3, stride=3, padding="VALID")],
                 "stride 3 > s_max 2"),
}


@pytest.mark.parametrize("name", sorted(LOWERED))
def test_lowered_layers_bit_exact(tmp_path, name):
    """Dilation, non-square kernels, unequal strides, kernels beyond k_max and strides
    beyond s_max: run as 1x1 layers over the im2col windows the host sends, every tensor
    equal to LiteRT's, the reason in the layer's statistics and the table."""
    shape, layers, reason = LOWERED[name]
    path = write_chain(tmp_path / f"{name}.tflite", shape, layers, seed=5)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    engine = make_engine("model", preset("rcm-default"))
    inference = _check(model, oracle, engine, range(4))[0]
    row = next(r for r in inference.rows if r.on == "tile")
    assert row.stats["lowering"] == f"im2col on the host ({reason})"
    assert row.stats["cycles"] > 0
    assert f"* 0: im2col on the host ({reason})" in format_table(inference.rows)


def test_square_layers_within_the_tile_are_not_lowered(tmp_path):
    path = write_chain(tmp_path / "k.tflite", (1, 6, 6, 2), [dict(op="conv", m=2, k=7)],
                       seed=1)
    layer = load_tflite(path).layers[0]
    assert host_lowering(layer, preset("rcm-default")) is None
    run = tile_run(layer, np.zeros((1, 6, 6, 2), dtype=np.int8), preset("rcm-default"))
    assert run.lowering is None and run.shape.k == 7
    wide = dataclasses.replace(layer, weights=np.zeros((2, 2, 7, 3), dtype=np.int8))
    assert host_lowering(wide) == "kernel 7x3"
