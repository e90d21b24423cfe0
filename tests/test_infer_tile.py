"""TFLite models on the tile: the bit-exact model of the tile (engine ``model``) and the
RTL in simulation (engine ``rtl``) against LiteRT's reference kernels, tensor by tensor."""

import dataclasses
import json

import numpy as np
import pytest
from test_tflite import BUILT, FLOAT_ENDS, RESNET8
from tflite_builder import write_chain

from rcm_gen.errors import UserError
from rcm_gen.presets import preset
from rcm_gen.tile.cycles import plan_cycles
from rcm_gen.workloads.infer import compare, make_engine, random_input, run_model
from rcm_gen.workloads.litert_oracle import LiteRTOracle
from rcm_gen.workloads.tflite_model import load_tflite
from rcm_gen.workloads.tile_engine import tile_run


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
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("name", sorted(RTL_MODELS))
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


def test_tile_refuses_what_it_cannot_express(tmp_path):
    """A kernel that is not square: a one-line error naming the layer."""
    path = write_chain(tmp_path / "k.tflite", (1, 6, 6, 2),
                       [dict(op="conv", m=2, k=3, out_zp=0)], seed=1)
    model = load_tflite(path)
    layer = model.layers[0]
    wide = dataclasses.replace(layer, weights=np.zeros((2, 2, 3, 1), dtype=np.int8))
    with pytest.raises(UserError, match=r"^operator 0 \(conv .*\): kernel 3x1 is not square; "
                                        r"the tile runs square kernels$"):
        tile_run(wide, np.zeros((1, 6, 6, 2), dtype=np.int8))
