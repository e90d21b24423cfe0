"""LiteRT's formats beyond int8 on the tile: 16x8 (int16 activations, int64 bias), int4
weights, per-layer mixes and narrow 4-bit activation ranges, made by ai-edge-quantizer from
the shipped float ResNet-8 (itself the shipped int8 model with its weights dequantized), each
bit-exact against LiteRT's reference kernels in the tile's mode for its widths; and the
single-rounding option against a reference of that rounding."""

from pathlib import Path

import numpy as np
import pytest
from tflite_builder import write_chain

from rcm_gen.presets import preset
from rcm_gen.workloads.infer import (
    ReferenceEngine,
    compare,
    format_table,
    make_engine,
    random_input,
    run_model,
)
from rcm_gen.workloads.litert_oracle import LiteRTOracle
from rcm_gen.workloads.quantize import VARIANTS, calibration_inputs, quantize_variant
from rcm_gen.workloads.tflite_model import load_tflite
from rcm_gen.workloads.tflite_write import dequantized_float_model

DATA = Path(__file__).resolve().parents[1] / "rcm_gen" / "workloads" / "data"
INT8 = DATA / "mlperf_tiny_resnet8_int8.tflite"
FLOAT = DATA / "mlperf_tiny_resnet8_float.tflite"


def test_shipped_float_model_is_the_int8_model_dequantized():
    assert dequantized_float_model(INT8.read_bytes()) == FLOAT.read_bytes()


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    xs, _ = calibration_inputs(None, (1, 32, 32, 3), count=4)
    out = {}
    for name in VARIANTS:
        path = folder / f"{name}.tflite"
        path.write_bytes(quantize_variant(FLOAT.read_bytes(), name, xs, "input_1_int8"))
        out[name] = str(path)
    return out


#: Per variant and tile: the (act x weight) widths its tile layers run at.
WIDTHS = {
    ("int8", "rcm-default"): {"8x8"}, ("int8", "rcm-default-fusion"): {"8x8"},
    ("16x8", "rcm-default"): {"16x8"}, ("16x8", "rcm-default-fusion"): {"16x8"},
    ("w4a8", "rcm-default"): {"8x4"}, ("w4a8", "rcm-default-fusion"): {"8x4"},
    ("mix", "rcm-default"): {"16x8", "8x4", "8x8"},
    ("mix", "rcm-default-fusion"): {"16x8", "8x4", "8x8"},
    # the Sum-Together tile gains nothing from 4-bit activations with 8-bit weights
    ("int8-a4", "rcm-default"): {"8x8"}, ("int8-a4", "rcm-default-fusion"): {"8x8", "4x8"},
    ("w4a4", "rcm-default"): {"8x4", "4x4"}, ("w4a4", "rcm-default-fusion"): {"8x4", "4x4"},
}


@pytest.mark.parametrize("design", ["rcm-default", "rcm-default-fusion"])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_bit_exact_in_their_modes(variants, name, design):
    model, oracle = load_tflite(variants[name]), LiteRTOracle(variants[name])
    engine = make_engine("model", preset(design))
    for seed in range(3):
        x = random_input(model, seed)
        inference = run_model(model, x, engine)
        result = compare(model, inference, oracle.run(x))
        assert result.match, result.first.describe()
    oracle.close()
    tile = [r for r in inference.rows if r.on == "tile"]
    assert {r.stats["bits"] for r in tile} == WIDTHS[(name, design)]
    table = format_table(inference.rows)
    if name == "16x8":
        assert all(r.stats["requant"] == "tile" for r in tile if r.opcode == "CONV_2D")
        assert model.layers[0].requant == "fixed64" and model.input.dtype == "int16"
    narrow = [r for r in tile if r.stats.get("narrow")]
    if name in ("int8-a4", "w4a4") and design == "rcm-default-fusion":
        # every layer whose input a ReLU ends reads it as x - 112 in 4 bits
        assert len(narrow) == 9
        assert "a4: input 112..127 (operator 0 CONV_2D clamps with RELU), sent as x-(112)" in \
            table
    if name == "w4a4" and design == "rcm-default":
        assert {r.stats["bits"] for r in narrow} == {"4x4"}
        assert all(r.stats["lanes"] == 4 for r in narrow)


def test_narrow_modes_are_faster_and_need_proof(variants):
    """The narrow variant runs its 4-bit layers in half the cycles on the ST tile; the int8
    model (ReLU outputs with zero point -128 span all 256 levels) is not narrowed."""
    config = preset("rcm-default")
    cycles = {}
    for name in ("w4a8", "w4a4"):
        model = load_tflite(variants[name])
        rows = run_model(model, random_input(model, 0), make_engine("model", config)).rows
        cycles[name] = sum(r.stats["cycles"] for r in rows if r.on == "tile")
    assert cycles["w4a4"] < 0.6 * cycles["w4a8"]
    model = load_tflite(str(INT8))
    assert all(layer.input_range == (-128, 127) for layer in model.layers.values())
    rows = run_model(model, random_input(model, 0), make_engine("model", config)).rows
    assert not any(r.stats.get("narrow") for r in rows)
    # turned off: the container's widths
    model = load_tflite(variants["w4a4"])
    rows = run_model(model, random_input(model, 0),
                     make_engine("model", config, narrow=False)).rows
    assert {r.stats["bits"] for r in rows if r.on == "tile"} == {"8x4"}


def test_narrow_activation_with_padding_needs_its_zero_point_in_range(tmp_path):
    """A RELU6 output on 16 levels (scale 6/15) feeding a padded convolution: run as
    x - zp in 4 bits with padding 0; with weights beyond 4 bits the ST tile keeps 8 bits."""
    path = write_chain(tmp_path / "n.tflite", (1, 6, 6, 4), [
        dict(op="conv", m=8, act="RELU6", out_scale=6 / 15, out_zp=-20),
        dict(op="conv", m=8, k=3, padding="SAME", w_range=7)], seed=4)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    layer = model.layers[1]
    assert layer.input_range == (-20, -5)
    for design in ("rcm-default", "rcm-default-fusion"):
        engine = make_engine("model", preset(design))
        for seed in range(3):
            x = random_input(model, seed)
            inference = run_model(model, x, engine)
            assert compare(model, inference, oracle.run(x)).match
        assert inference.rows[1].stats["bits"] == "4x4"
        assert inference.rows[1].stats["narrow"] == (
            "a4: input -20..-5 (operator 0 CONV_2D clamps with RELU6), sent as x-(-20); "
            "w4: weights within -8..7")


def test_single_rounding_against_its_reference(tmp_path):
    """TFLITE_SINGLE_ROUNDING on the tile: equal to rcm_gen's reference of that build
    tensor by tensor, and different from LiteRT's double rounding somewhere (so the option
    is not a no-op)."""
    path = write_chain(tmp_path / "r.tflite", (1, 8, 8, 16), [
        dict(op="conv", m=16, k=3, out_zp=3), dict(op="conv", m=8, k=1, out_zp=-7)], seed=9)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    engine = make_engine("model", preset("rcm-default"), rounding="single")
    differs = 0
    for seed in range(6):
        x = random_input(model, seed)
        single = run_model(model, x, engine)
        want = run_model(model, x, ReferenceEngine(rounding="single")).values
        assert compare(model, single, want).match
        differs += not compare(model, single, oracle.run(x)).match
        assert all(r.stats["requant_how"] == "in the post-processing unit, single rounding"
                   for r in single.rows)
    assert differs >= 1


def test_cli_single_rounding(cli, tmp_path):
    path = write_chain(tmp_path / "r.tflite", (1, 8, 8, 16), [dict(op="conv", m=16, k=3)],
                       seed=9)
    r = cli("infer", "rcm-default", "--model", path, "--rounding", "single", "--count", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "single rounding, checked against rcm_gen's reference" in r.stdout
    assert "3 of 3 seeded inputs" in r.stdout


def test_int16_input_and_int4_weights_read_as_stored(variants):
    m16 = load_tflite(variants["16x8"])
    assert m16.input.dtype == "int16" and m16.layers[0].act_bits == 16
    assert m16.layers[0].bias.dtype == np.int64
    m4 = load_tflite(variants["w4a8"])
    w = m4.layers[0].weights
    assert m4.layers[0].weight_bits == 4 and w.min() >= -8 and w.max() <= 7
    assert len(np.unique(w)) > 8


def test_biases_beyond_32_bits_are_added_on_the_host(variants, tmp_path):
    """A 16x8 convolution whose int64 bias does not fit the tile's 32-bit bias register:
    the tile sends raw sums, the host adds the bias and requantizes as LiteRT's int64
    kernel does (bit-exact); the table says where."""
    from rcm_gen.workloads.tflite_write import read_model, write_model

    model = read_model(Path(variants["16x8"]).read_bytes())
    g = model.subgraphs[0]
    op = g.operators[2]  # a CONV_2D without activation
    bias = g.tensors[int(op.inputs[2])]
    buf = model.buffers[bias.buffer]
    values = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), np.int64).copy()
    values[::2] += (1 << 33) * np.sign(values[::2] + 1)  # half the channels beyond int32
    buf.data = np.frombuffer(values.tobytes(), np.uint8).copy()
    path = tmp_path / "big_bias.tflite"
    path.write_bytes(write_model(model))
    m, oracle = load_tflite(str(path)), LiteRTOracle(str(path))
    for design in ("rcm-default", "rcm-default-fusion"):
        inference = None
        for seed in range(2):
            x = random_input(m, seed)
            inference = run_model(m, x, make_engine("model", preset(design)))
            assert compare(m, inference, oracle.run(x)).match
        row = inference.rows[2]
        assert row.stats["requant"] == "host"
        assert row.stats["requant_how"] == ("on the host: the folded bias does not fit the "
                                            "tile's 32 bits")


def test_zero_point_fold_beyond_32_bits(tmp_path):
    """bias - zp*sum(w) beyond int32 (an int8 layer, zero point -128, a bias near the
    limit): the host adds it to the tile's exact sums and wraps as LiteRT's int32
    accumulator does."""
    path = write_chain(tmp_path / "fold.tflite", (1, 6, 6, 32),
                       [dict(op="conv", m=4, k=3, bias=(1 << 31) - 100, out_zp=0)], seed=2)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    assert model.layers[0].input_zero_point == -128
    for seed in range(3):
        x = random_input(model, seed)
        inference = run_model(model, x, make_engine("model", preset("rcm-default")))
        assert compare(model, inference, oracle.run(x)).match
    assert inference.rows[0].stats["requant"] == "host"


def test_operator_versions_follow_litert_rules(variants):
    """The quantizer leaves every operator at version 1; rcm_gen sets LiteRT's versions
    (op_version.cc): int8 CONV_2D 3, int4-weight CONV_2D 7, int4-weight FULLY_CONNECTED 10,
    int8 FULLY_CONNECTED 4, int8 ADD 2, int16 SOFTMAX 3, int16 QUANTIZE 2."""
    from rcm_gen.workloads.tflite_write import read_model

    def versions(path):
        m = read_model(Path(path).read_bytes())
        names = {0: "ADD", 3: "CONV_2D", 9: "FULLY_CONNECTED", 25: "SOFTMAX", 114: "QUANTIZE"}
        return {names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode)): oc.version
                for oc in m.operatorCodes}

    assert versions(variants["int8"])["CONV_2D"] == 3
    assert versions(variants["int8"])["FULLY_CONNECTED"] == 4
    assert versions(variants["int8"])["ADD"] == 2
    assert versions(variants["w4a8"])["CONV_2D"] == 7
    assert versions(variants["w4a8"])["FULLY_CONNECTED"] == 10
    assert versions(variants["16x8"])["SOFTMAX"] == 3
    assert versions(variants["mix"])["QUANTIZE"] == 2
