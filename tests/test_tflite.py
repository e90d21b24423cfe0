"""int8 TFLite models read, run layer by layer with TFLite's integer semantics, and checked
against LiteRT's reference kernels, bit for bit: the shipped MLPerf Tiny ResNet-8 and small
models built here for what it lacks."""

from __future__ import annotations

import json
import re
import time
from importlib import resources

import numpy as np
import pytest
from tflite_builder import build_chain, write_chain

from rcm_gen.config import MacConfig
from rcm_gen.errors import UserError
from rcm_gen.presets import preset
from rcm_gen.reference import multiply_by_quantized_multiplier
from rcm_gen.workloads.infer import (
    ReferenceEngine,
    compare,
    format_table,
    make_engine,
    random_input,
    register_engine,
    run_model,
)
from rcm_gen.workloads.litert_oracle import LiteRTOracle
from rcm_gen.workloads.tflite_model import (
    activation_range,
    load_tflite,
    padding_amounts,
    quantize_multiplier,
    round_half_away,
)
from rcm_gen.workloads.tflite_ref import accumulate, accumulate_naive, requantize_double

RESNET8 = str(resources.files("rcm_gen.workloads") / "data" /
              "mlperf_tiny_resnet8_int8.tflite")


@pytest.fixture(scope="module")
def resnet8():
    return load_tflite(RESNET8)


@pytest.fixture(scope="module")
def resnet8_oracle():
    return LiteRTOracle(RESNET8)


# -- TFLite's arithmetic on scales ------------------------------------------------------------


def test_round_half_away_matches_std_round():
    assert [round_half_away(v) for v in (2.5, -2.5, 0.5, -0.5, 1.4999999999999998)] == \
        [3, -3, 1, -1, 1]
    assert round_half_away(0.49999999999999994) == 0  # floor(x + 0.5) would give 1


def test_quantize_multiplier_represents_the_real_multiplier():
    rng = np.random.default_rng(0)
    for real in np.concatenate([rng.uniform(1e-6, 4.0, 2000), [0.5, 1.0, 2.0 ** -20]]):
        q, shift = quantize_multiplier(float(real))
        assert 1 << 30 <= q < 1 << 31
        assert abs(q * 2.0 ** (shift - 31) - real) <= 2.0 ** (shift - 32)


def test_quantize_multiplier_edge_cases():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0 ** -40) == (0, 0)  # shift below -31 flushes to zero
    # a fraction that rounds up to 2^31 is halved and the shift raised
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    assert quantize_multiplier(0.75) == (3 << 29, 0)


@pytest.mark.parametrize("padding, size, k, stride, want", [
    ("SAME", 32, 3, 2, (16, 0, 1)),   # even input, stride 2: the extra row goes after
    ("SAME", 32, 3, 1, (32, 1, 1)),
    ("SAME", 7, 4, 1, (7, 1, 2)),     # odd total padding
    ("SAME", 9, 3, 2, (5, 1, 1)),
    ("SAME", 32, 1, 2, (16, 0, 0)),
    ("VALID", 9, 3, 2, (4, 0, 0)),
])
def test_padding_as_tflite_computes_it(padding, size, k, stride, want):
    assert padding_amounts(padding, size, k, stride) == want


@pytest.mark.parametrize("act, scale, zp, want", [
    ("NONE", 0.1, 3, (-128, 127)),
    ("RELU", 0.05, -128, (-128, 127)),
    ("RELU", 0.05, 17, (17, 127)),
    ("RELU6", 6 / 255, -128, (-128, 127)),
    ("RELU6", 0.1, -5, (-5, 55)),
    ("RELU_N1_TO_1", 0.01, 0, (-100, 100)),
])
def test_activation_range(act, scale, zp, want):
    assert activation_range(act, scale, zp) == want


# -- the shipped ResNet-8 -----------------------------------------------------------------------


def test_resnet8_is_read_as_tflite_declares_it(resnet8, resnet8_oracle):
    assert [op.opcode for op in resnet8.operators] == [
        "CONV_2D", "CONV_2D", "CONV_2D", "ADD", "CONV_2D", "CONV_2D", "CONV_2D", "ADD",
        "CONV_2D", "CONV_2D", "CONV_2D", "ADD", "AVERAGE_POOL_2D", "RESHAPE",
        "FULLY_CONNECTED", "SOFTMAX"]
    details = {d["index"]: d for d in resnet8_oracle.tensor_details()}
    for t in resnet8.tensors:
        assert tuple(details[t.index]["shape"]) == t.shape
        assert details[t.index]["name"] == t.name
        if t.scale is not None:
            np.testing.assert_array_equal(details[t.index]["quantization_parameters"]["scales"],
                                          t.scale)
    macs = 0
    for op in resnet8.operators:
        if op.opcode == "CONV_2D":
            w = details[op.inputs[1]]["shape"]
            y = details[op.outputs[0]]["shape"]
            macs += int(np.prod(y)) * int(np.prod(w[1:]))
        elif op.opcode == "FULLY_CONNECTED":
            macs += int(np.prod(details[op.inputs[1]]["shape"]))
    assert resnet8.macs == macs
    stride2 = [layer for layer in resnet8.layers.values() if layer.stride == (2, 2)]
    assert {layer.pads for layer in stride2 if layer.kernel == (3, 3)} == {(0, 1, 0, 1)}
    assert resnet8.layers[14].kind == "fc" and resnet8.layers[14].requant == "double"
    assert all(layer.per_channel for i, layer in resnet8.layers.items() if i != 14)


def test_resnet8_100_inputs_bit_exact(resnet8, resnet8_oracle):
    engine = ReferenceEngine()
    start = time.perf_counter()
    results = []
    for seed in range(100):
        x = random_input(resnet8, seed)
        results.append(compare(resnet8, run_model(resnet8, x, engine),
                               resnet8_oracle.run(x)))
    assert [r.first for r in results if not r.match] == []
    assert all(len(r.ops) == 16 for r in results)
    assert time.perf_counter() - start < 30


def _single_rounding(acc, multiplier, shift):
    """The TFLITE_SINGLE_ROUNDING variant of MultiplyByQuantizedMultiplier."""
    total = 31 - np.asarray(shift, np.int64)
    return (np.asarray(acc, np.int64) * multiplier + (np.int64(1) << (total - 1))) >> total


def test_litert_convolutions_round_twice(resnet8, resnet8_oracle):
    """LiteRT's reference convolutions use the double-rounding MultiplyByQuantizedMultiplier
    (rcm_gen.reference); the single-rounding build option would differ on these inputs."""
    differ = 0
    for seed in range(5):
        x = random_input(resnet8, seed)
        ref = resnet8_oracle.run(x)
        for i, layer in resnet8.layers.items():
            if layer.kind != "conv":
                continue
            op = resnet8.operators[i]
            acc = accumulate(layer, ref[op.inputs[0]])
            lo, hi = layer.clamp
            double = np.clip(multiply_by_quantized_multiplier(acc, layer.multiplier,
                                                              layer.shift)
                             + layer.output_zero_point, lo, hi)
            single = np.clip(_single_rounding(acc, layer.multiplier, layer.shift)
                             + layer.output_zero_point, lo, hi)
            want = ref[op.outputs[0]].reshape(double.shape)
            np.testing.assert_array_equal(double, want)
            differ += int(np.sum(single != want))
    assert differ > 0


def test_litert_fully_connected_requantizes_in_double_precision(resnet8, resnet8_oracle):
    """LiteRT's reference FULLY_CONNECTED computes round(acc · scale) in double precision,
    not MultiplyByQuantizedMultiplier: the fixed-point result differs on some outputs."""
    layer = resnet8.layers[14]
    op = resnet8.operators[14]
    fixed_differs = 0
    for seed in range(300):
        ref = resnet8_oracle.run(random_input(resnet8, seed))
        acc = accumulate(layer, ref[op.inputs[0]])
        want = ref[op.outputs[0]]
        np.testing.assert_array_equal(
            requantize_double(acc, layer.scale, layer.output_zero_point, *layer.clamp), want)
        fixed = np.clip(multiply_by_quantized_multiplier(acc, layer.multiplier, layer.shift)
                        + layer.output_zero_point, *layer.clamp)
        fixed_differs += int(np.sum(fixed != want))
    assert fixed_differs > 0


# -- built models: what ResNet-8 lacks ----------------------------------------------------------

BUILT = {
    "depthwise-dm1-relu6-odd": ((1, 9, 9, 5), [
        dict(op="conv", m=7, k=3, stride=2, padding="SAME", act="RELU6", out_zp=-5),
        dict(op="depthwise", k=3, stride=1, act="RELU", out_zp=17),
        dict(op="depthwise", k=3, stride=2, padding="VALID", out_zp=0)]),
    "depthwise-dm2-maxpool": ((1, 8, 8, 3), [
        dict(op="depthwise", k=3, stride=2, dm=2, padding="SAME", out_zp=-128, act="RELU"),
        dict(op="maxpool", k=3, stride=2, padding="SAME"),
        dict(op="conv", m=5, k=1, out_zp=0)]),
    "grouped-avgpool-pad": ((1, 8, 8, 6), [
        dict(op="conv", m=9, k=3, groups=3, stride=2, padding="SAME", out_zp=17),
        dict(op="conv", m=5, k=1, act="RELU", out_zp=-5),
        dict(op="avgpool", k=3, stride=2, padding="SAME"),
        dict(op="pad", pads=[[0, 0], [1, 1], [0, 2], [0, 0]]),
        dict(op="conv", m=3, k=3, padding="VALID", out_zp=0)]),
    "asymmetric-same-kernel4": ((1, 10, 10, 7), [
        dict(op="conv", m=3, k=4, stride=1, padding="SAME", out_zp=17),
        dict(op="conv", m=5, k=3, stride=2, padding="SAME", act="RELU6", out_zp=0),
        dict(op="maxpool", k=2, stride=2, padding="VALID")]),
    "residual-fc-per-tensor-softmax": ((1, 6, 6, 3), [
        dict(op="conv", m=3, k=3, act="RELU", out_zp=-128),
        dict(op="add", act="RELU", out_zp=-5, **{"with": -1}),
        dict(op="reshape", shape=[1, 108]),
        dict(op="fc", m=10, per_channel=False, out_zp=17),
        dict(op="softmax", beta=1.0)]),
    "fc-per-channel-relu-softmax-beta": ((1, 20), [
        dict(op="fc", m=7, per_channel=True, act="RELU", out_zp=0),
        dict(op="fc", m=5, per_channel=False, out_zp=-128, out_scale=0.5),
        dict(op="softmax", beta=0.3)]),
    "softmax-wide-input-scale": ((1, 12), [
        dict(op="fc", m=9, out_zp=3, out_scale=0.02),
        dict(op="softmax", beta=2.0)]),
    "softmax-many-rows": ((16, 20), [
        dict(op="fc", m=11, out_zp=-7, out_scale=0.08),
        dict(op="softmax", beta=1.0)]),
    "softmax-coarse-input-scale": ((8, 20), [
        dict(op="fc", m=6, out_zp=0, out_scale=0.6),
        dict(op="softmax", beta=1.0)]),
    "fused-activations-everywhere": ((1, 8, 8, 3), [
        dict(op="conv", m=3, k=3, act="RELU_N1_TO_1", out_scale=0.012, out_zp=4),
        dict(op="add", act="RELU6", out_scale=0.06, out_zp=-20, **{"with": -1}),
        dict(op="avgpool", k=2, stride=1, padding="SAME", act="RELU"),
        dict(op="maxpool", k=3, stride=2, padding="SAME", act="RELU6")]),
    "without-bias": ((1, 6, 6, 5), [  # LiteRT's int8 CONV_2D requires a bias
        dict(op="depthwise", k=3, no_bias=True, out_zp=-5),
        dict(op="reshape", shape=[1, 180]),
        dict(op="fc", m=4, no_bias=True, out_zp=0)]),
    "mean-global-and-channels": ((1, 7, 5, 6), [
        dict(op="conv", m=9, k=3, stride=2, out_zp=-5),
        dict(op="mean", axes=[1, 2], keep_dims=True, out_zp=3),
        dict(op="mean", axes=[-1], keep_dims=False, out_zp=-128, out_scale=0.01)]),
    "left-shift-multipliers": ((1, 5, 5, 3), [
        # in_scale · w_scale / out_scale > 1: MultiplyByQuantizedMultiplier shifts left
        dict(op="conv", m=4, k=1, w_range=1, w_scale=0.3, out_scale=0.01, out_zp=0,
             bias_range=20),
        dict(op="depthwise", k=1, w_range=1, w_scale=1.6, out_scale=0.01, out_zp=-3,
             bias_range=20)]),
}


#: Models with a float32 input (QUANTIZE first) and output (DEQUANTIZE last).
FLOAT_ENDS = {
    "float-in-float-out": ((1, 6, 6, 3), [
        dict(op="quantize", out_scale=0.04, out_zp=-7),
        dict(op="conv", m=4, k=3, stride=2, out_zp=5),
        dict(op="quantize", out_zp=-20),
        dict(op="dequantize")]),
}
BUILT.update(FLOAT_ENDS)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_model_bit_exact(tmp_path, name):
    shape, layers = BUILT[name]
    kw = {"input_dtype": "float32"} if name in FLOAT_ENDS else {}
    path = write_chain(tmp_path / f"{name}.tflite", shape, layers, seed=7, **kw)
    model = load_tflite(path)
    oracle = LiteRTOracle(path)
    engine = ReferenceEngine()
    spread = set()
    for seed in range(20):
        x = random_input(model, seed)
        ref = oracle.run(x)
        result = compare(model, run_model(model, x, engine), ref)
        assert result.match, result.first.describe()
        spread |= set(np.unique(ref[model.outputs[0]]).tolist())
    assert len(spread) > 3  # the outputs are not all clamped to one value


@pytest.mark.parametrize("name", ["grouped-avgpool-pad", "depthwise-dm2-maxpool",
                                  "asymmetric-same-kernel4", "residual-fc-per-tensor-softmax"])
def test_vectorised_accumulation_matches_its_plain_loop_twin(tmp_path, name):
    shape, layers = BUILT[name]
    model = load_tflite(write_chain(tmp_path / "m.tflite", shape, layers, seed=7))
    values = run_model(model, random_input(model, 4), ReferenceEngine()).values
    for i, layer in model.layers.items():
        x = values[model.operators[i].inputs[0]]
        np.testing.assert_array_equal(accumulate(layer, x), accumulate_naive(layer, x))


def test_built_layers_carry_groups_and_zero_points(tmp_path):
    shape, layers = BUILT["grouped-avgpool-pad"]
    model = load_tflite(write_chain(tmp_path / "g.tflite", shape, layers, seed=7))
    conv = model.layers[0]
    assert (conv.kind, conv.groups, conv.weights.shape) == ("conv", 3, (9, 2, 3, 3))
    assert conv.output_zero_point == 17 and conv.input_zero_point == -128
    assert conv.pads == (0, 1, 0, 1)
    shape, layers = BUILT["depthwise-dm2-maxpool"]
    model = load_tflite(write_chain(tmp_path / "d.tflite", shape, layers, seed=7))
    dw = model.layers[0]
    assert (dw.kind, dw.groups, dw.depth_multiplier, dw.weights.shape) == \
        ("depthwise", 3, 2, (6, 1, 3, 3))
    assert dw.clamp == (-128, 127)


def test_depthwise_output_channel_reads_input_channel_m_div_dm(tmp_path):
    """Output channels c·dm .. c·dm + dm - 1 depend on input channel c alone (checked on
    LiteRT's outputs), and the TileLayer's weights follow that order."""
    path = write_chain(tmp_path / "dw.tflite", (1, 5, 5, 3),
                       [dict(op="depthwise", k=3, dm=2, padding="SAME", out_zp=0)], seed=2)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    zp = model.input.zero_point[0]
    base = oracle.run(np.full((1, 5, 5, 3), zp, np.int8))[model.outputs[0]]
    for c in range(3):
        x = np.full((1, 5, 5, 3), zp, np.int8)
        x[..., c] = np.random.default_rng(c).integers(-128, 128, (1, 5, 5))
        y = oracle.run(x)[model.outputs[0]]
        changed = sorted({int(i) for i in np.nonzero(y != base)[3]})
        assert changed == [2 * c, 2 * c + 1]
        np.testing.assert_array_equal(run_model(model, x, ReferenceEngine()).output, y)


# -- engines, comparison, report ----------------------------------------------------------------


class _Perturbing(ReferenceEngine):
    """Adds 1 to one element of one layer's output, and reports made-up statistics."""

    name = "perturbing"

    def __init__(self, op_index: int, position: tuple[int, ...]):
        self.op_index, self.position = op_index, position

    def run(self, layer, x):
        y, stats = super().run(layer, x)
        if layer.op_index == self.op_index:
            y = y.copy()
            y[self.position] = np.int8(int(y[self.position]) ^ 1)
        return y, {**stats, "cycles": 1000 + layer.op_index, "lanes": 2, "bits": 8,
                   "utilisation": 0.5}


def test_compare_names_the_first_mismatching_tensor(resnet8, resnet8_oracle):
    x = random_input(resnet8, 3)
    inference = run_model(resnet8, x, _Perturbing(4, (0, 5, 6, 7)))
    ref = resnet8_oracle.run(x)
    result = compare(resnet8, inference, ref)
    assert not result.match
    first = result.first
    out = resnet8.operators[4].outputs[0]
    assert (first.tensor, first.op_index, first.opcode, first.position) == \
        (out, 4, "CONV_2D", (0, 5, 6, 7))
    assert first.got == int(inference.values[out][0, 5, 6, 7])
    assert first.want == int(ref[out][0, 5, 6, 7]) and first.got != first.want
    assert result.ops[0] and not result.ops[4]
    table = format_table(inference.rows, result.ops)
    row4 = next(line for line in table.splitlines() if re.match(r"\s+4 CONV_2D", line))
    assert "1,004" in row4 and row4.rstrip().endswith("DIFF")
    row3 = next(line for line in table.splitlines() if re.match(r"\s+3 ADD", line))
    assert re.search(r"host\s+-\s+-\s+-", row3)


def test_engines_are_looked_up_by_name(monkeypatch):
    with pytest.raises(UserError, match=r"^infer needs a tile design point \(rcm-small, "
                                        r"rcm-default, \.\.\.\), not a mac configuration$"):
        make_engine("rtl", MacConfig())
    with pytest.raises(UserError, match=r"^--engine must be one of model, reference, rtl, "
                                        r"not 'gpu'$"):
        make_engine("gpu")
    monkeypatch.setitem(__import__("rcm_gen.workloads.infer", fromlist=["ENGINES"]).ENGINES,
                        "model", "rcm_gen.workloads.infer:ReferenceEngine")
    assert isinstance(make_engine("model", None, simulator="icarus"), ReferenceEngine)


def test_register_engine_checks_the_name():
    with pytest.raises(TypeError, match=r"^Engine name must be a non-empty string, not ''$"):
        register_engine("", lambda config, simulator: ReferenceEngine())


# -- refusing what cannot run -------------------------------------------------------------------


def _refused(tmp_path, layers, shape=(1, 6, 6, 3), **kw) -> str:
    path = tmp_path / "m.tflite"
    path.write_bytes(build_chain(shape, layers, **kw))
    with pytest.raises(UserError) as info:
        load_tflite(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_reader_refusals(tmp_path):
    assert re.fullmatch(
        r"operator 1 \(EXP 'raw1'\): operator EXP is not supported \(the tile runs "
        r"CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED; the host runs ADD, MUL, AVERAGE_POOL_2D, "
        r"MAX_POOL_2D, RESHAPE, SQUEEZE, CONCATENATION, SOFTMAX, LOGISTIC, TANH, HARD_SWISH, "
        r"PAD, PADV2, MEAN, QUANTIZE, DEQUANTIZE\)",
        _refused(tmp_path, [dict(op="conv", m=3), dict(op="raw", opcode="EXP")]))
    assert re.fullmatch(
        r"operator 1 \(LOGISTIC 'raw1'\): int8 LOGISTIC output must have scale 1/256 and "
        r"zero point -128",
        _refused(tmp_path, [dict(op="conv", m=3), dict(op="raw", opcode="LOGISTIC")]))
    assert re.fullmatch(
        r"operator 0 \(CONV_2D 'conv0'\): weights tensor 1 \('w0'\) have zero point 3; the "
        r"tile supports symmetric weights only \(zero point 0\)",
        _refused(tmp_path, [dict(op="conv", m=3, weight_zp=3)]))
    assert re.fullmatch(
        r"operator 0 \(CONV_2D 'conv0'\): fused activation TANH is not supported \(supported: "
        r"NONE, RELU, RELU6, RELU_N1_TO_1\)",
        _refused(tmp_path, [dict(op="conv", m=3, act="TANH")]))
    assert re.fullmatch(
        r"--model '.*m\.tflite': model input tensor 0 \('input'\) is float32; rcm-gen infer "
        r"runs integer models only \(quantize the model fully to int8\)",
        _refused(tmp_path, [dict(op="conv", m=3)], input_dtype="float32"))
    assert re.fullmatch(
        r"operator 0 \(CONV_2D 'conv0'\): weights tensor 1 \('w0'\) are float32 without "
        r"quantization; int8 or int4 quantized weights are required",
        _refused(tmp_path, [dict(op="conv", m=3, weights_dtype="float32")]))
    assert re.fullmatch(
        r"--model '.*m\.tflite': not a TFLite flatbuffer \(no TFL3 file identifier\)",
        _refused(tmp_path, [dict(op="conv", m=3)], identifier=b"XXXX"))


def test_reader_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match=r"^--model '.*nothing\.tflite': file not found$"):
        load_tflite(tmp_path / "nothing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 3 + b"not a model at all" * 10)
    with pytest.raises(UserError, match=r"^--model '.*junk\.tflite': not a TFLite flatbuffer "
                                        r"\(no TFL3 file identifier\)$"):
        load_tflite(junk)


# -- the command line ---------------------------------------------------------------------------


def test_cli_infer_resnet8(cli, tmp_path):
    out, rep = tmp_path / "y.npy", tmp_path / "r.json"
    r = cli("infer", "rcm-default", "--model", RESNET8, "--engine", "reference",
            "--output", str(out), "--json", str(rep))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^seed 1: output and all 16 operator outputs equal LiteRT's \(reference "
                     r"kernels\) bit for bit; ", r.stdout, re.M)
    report = json.loads(rep.read_text())
    assert report["match"] is True and report["first_mismatch"] is None
    assert [row["opcode"] for row in report["layers"]][:4] == ["CONV_2D"] * 3 + ["ADD"]
    assert all(row["match"] for row in report["layers"])
    assert report["config"] == preset("rcm-default").to_dict()
    y = np.load(out)
    oracle = LiteRTOracle(RESNET8)
    model = load_tflite(RESNET8)
    want = oracle.run(random_input(model, 1))[model.outputs[0]]
    np.testing.assert_array_equal(y, want)


def test_cli_infer_count(cli, tmp_path):
    r = cli("infer", "rcm-small", "--model", RESNET8, "--engine", "reference", "--count", "5",
            "--seed", "10", "--output", str(tmp_path / "y.npy"))
    assert r.returncode == 0, r.stderr
    assert re.search(r"^5 of 5 seeded inputs \(seeds 10\.\.14\) equal LiteRT's tensors bit for "
                     r"bit in every operator; ", r.stdout, re.M)
    assert np.load(tmp_path / "y.npy").shape == (5, 1, 10)


def test_cli_infer_given_input(cli, tmp_path):
    x = np.random.default_rng(5).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    r = cli("infer", "rcm-default", "--model", RESNET8, "--engine", "reference", "--input",
            str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert r.returncode == 0, r.stderr
    model = load_tflite(RESNET8)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"),
                                  LiteRTOracle(RESNET8).run(x)[model.outputs[0]])


def _bad_cases(tmp_path):
    np.save(tmp_path / "x_shape.npy", np.zeros((1, 32, 32, 4), np.int8))
    np.save(tmp_path / "x_dtype.npy", np.zeros((1, 32, 32, 3), np.float32))
    (tmp_path / "junk.tflite").write_bytes(b"junk" * 40)
    (tmp_path / "float.tflite").write_bytes(
        build_chain((1, 6, 6, 3), [dict(op="conv", m=3)], input_dtype="float32"))
    (tmp_path / "exp.tflite").write_bytes(
        build_chain((1, 6, 6, 3), [dict(op="conv", m=3), dict(op="raw", opcode="EXP")]))
    m = ("--model", RESNET8)
    return [
        (("--model", str(tmp_path / "none.tflite")),
         r"--model '.*none\.tflite': file not found"),
        (("--model", str(tmp_path / "junk.tflite")),
         r"--model '.*junk\.tflite': not a TFLite flatbuffer \(no TFL3 file identifier\)"),
        (("--model", str(tmp_path / "float.tflite")),
         r"--model '.*float\.tflite': model input tensor 0 \('input'\) is float32; .*"),
        (("--model", str(tmp_path / "exp.tflite")),
         r"operator 1 \(EXP 'raw1'\): operator EXP is not supported .*"),
        ((*m, "--input", str(tmp_path / "x_shape.npy")),
         r"--input '.*x_shape\.npy': must be an int8 array of shape \(1, 32, 32, 3\) \(the "
         r"model's input 'input_1_int8'\), not int8 \(1, 32, 32, 4\)"),
        ((*m, "--input", str(tmp_path / "x_dtype.npy")),
         r"--input '.*x_dtype\.npy': must be an int8 array of shape \(1, 32, 32, 3\) .*, not "
         r"float32 \(1, 32, 32, 3\)"),
        ((*m, "--input", str(tmp_path / "none.npy")), r"--input '.*none\.npy': file not found"),
        ((*m, "--bandwidth", "0"),
         r"--bandwidth must be a number of bytes per cycle greater than 0, not 0"),
        ((*m, "--engine", "gpu"), r"--engine must be one of model, reference, rtl, not 'gpu'"),
        ((*m, "--count", "0"), r"--count must be at least 1, not 0"),
        ((*m, "--count", "2", "--input", str(tmp_path / "x_shape.npy")),
         r"--count runs seeded random inputs; give --input or --count, not both"),
        ((*m, "--json", str(tmp_path / "no" / "r.json")),
         r"--json '.*r\.json': folder '.*no' does not exist or is not writable"),
        ((*m, "--simulator", "modelsim"),
         r"argument --simulator: invalid choice: 'modelsim' \(choose from .*\)"),
    ]


def test_cli_infer_bad_input_exits_2_with_one_line(cli, tmp_path):
    for args, message in _bad_cases(tmp_path):
        out = tmp_path / "y.npy"
        r = cli("infer", "rcm-default", *args, "--output", str(out))
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert re.fullmatch(rf"rcm-gen( infer)?: error: {message}\n", r.stderr), \
            (args, r.stderr)
        assert not out.exists(), args


def test_cli_infer_needs_a_tile(cli):
    r = cli("infer", "mac16", "--model", RESNET8)
    assert r.returncode == 2
    assert r.stderr == ("rcm-gen: error: infer needs a tile design point (rcm-small, "
                        "rcm-default, ...), not a mac configuration\n")


def test_cli_infer_needs_a_design(cli):
    r = cli("infer", "--model", RESNET8)
    assert r.returncode == 2
    assert r.stderr == "rcm-gen: error: a design is required: give PRESET or --config FILE\n"


def test_cli_infer_help(cli):
    r = cli("infer", "--help")
    assert r.returncode == 0
    for option in ("--model", "--input", "--engine", "--simulator", "--output", "--json",
                   "--count", "--seed"):
        assert option in r.stdout


def test_float_requant_needs_exact_halves():
    # ties go away from zero, like std::round
    got = requantize_double(np.array([5, -5, 3, -3]), np.array(0.5), 0, -128, 127)
    assert got.tolist() == [3, -3, 2, -2]


def test_cli_infer_reports_a_mismatch_and_engine_statistics(monkeypatch, tmp_path, capsys):
    from rcm_gen.cli import main
    from rcm_gen.workloads import infer

    monkeypatch.setitem(infer.ENGINES, "perturbing",
                        lambda config, simulator, bandwidth: _Perturbing(9, (0, 1, 2, 3)))
    rep = tmp_path / "r.json"
    code = main(["infer", "rcm-small", "--model", RESNET8, "--engine", "perturbing",
                 "--json", str(rep)])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^seed 1: MISMATCH against LiteRT: tensor 31 \('.*'\, output of "
                     r"operator 9 CONV_2D\) differs at \[0, 1, 2, 3\]: -?\d+ instead of "
                     r"-?\d+ \(1 elements differ\); ", out, re.M)
    report = json.loads(rep.read_text())
    assert report["match"] is False
    assert report["first_mismatch"]["op"] == 9 and report["first_mismatch"]["tensor"] == 31
    assert report["first_mismatch"]["position"] == [0, 1, 2, 3]
    tile = [row for row in report["layers"] if row["on"] == "tile"]
    assert [row["cycles"] for row in tile] == [1000 + row["op"] for row in tile]
    assert report["totals"]["cycles"] == sum(1000 + row["op"] for row in tile)
    # later operators read the perturbed tensor, so they may differ as well
    assert [row["match"] for row in report["layers"]][:9] == [True] * 9


def test_quantize_rounds_halves_away_from_zero_like_litert(tmp_path):
    shape, layers = FLOAT_ENDS["float-in-float-out"]
    path = write_chain(tmp_path / "f.tflite", shape, layers, seed=7, input_dtype="float32")
    model, oracle = load_tflite(path), LiteRTOracle(path)
    halves = (np.arange(-54, 54, dtype=np.float32) + np.float32(0.5)) * np.float32(0.04)
    x = halves.reshape(shape)
    quantized = model.operators[0].outputs[0]
    want = oracle.run(x)[quantized]
    got = run_model(model, x, ReferenceEngine()).values[quantized]
    np.testing.assert_array_equal(got, want)
    v = (x / np.float32(0.04)).reshape(-1)
    ties = np.abs(v - np.trunc(v)) == np.float32(0.5)
    assert ties.sum() > 50  # most inputs are exact halves, in both signs
    assert set(np.sign(v[ties]).tolist()) == {-1.0, 1.0}
