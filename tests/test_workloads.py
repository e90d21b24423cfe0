"""Workload data: ResNet-18 and HAWQ-V3 bit configurations, network JSON, ONNX import."""

import json
import re

import pytest

from rcm_gen.conv import ConvShape
from rcm_gen.errors import UserError
from rcm_gen.workloads import KNOWN_NETWORKS, load_network
from rcm_gen.workloads.networks import Layer, Network
from rcm_gen.workloads.resnet18 import BIT_CONFIGS, resnet18, resnet18_shapes


def test_resnet18_shapes_and_macs():
    shapes = dict(resnet18_shapes())
    assert len(shapes) == 21  # stem, 16 convs, 3 downsamples, fc
    # BACKGROUND.md: 1,814,073,344 MACs in all (the fc layer's 512,000 included)
    assert sum(s.macs for s in shapes.values()) == 1_814_073_344
    assert shapes["fc"].macs == 512_000
    assert shapes["stem"].macs == 118_013_952
    assert (shapes["stem"].ho, shapes["stem"].wo) == (112, 112)
    for stage, size in ((1, 56), (2, 28), (3, 14), (4, 7)):
        assert shapes[f"s{stage}.u2.c2"].ho == size
        assert shapes[f"s{stage}.u2.c2"].macs == 115_605_504
    for stage in (2, 3, 4):
        assert shapes[f"s{stage}.u1.c1"].macs == 57_802_752
        assert shapes[f"s{stage}.u1.ds"].macs == 6_422_528
        assert shapes[f"s{stage}.u1.ds"].k == 1 and shapes[f"s{stage}.u1.ds"].stride == 2


def _ideal_speedup(net):
    """Against a fixed 16-bit MAC: N=2 at 8 bits, N=4 at 4 bits, no stalls."""
    lanes = {16: 1, 8: 2, 4: 4}
    return net.macs / sum(layer.macs / lanes[layer.act_bits] for layer in net.layers)


@pytest.mark.parametrize("bits, published", [("uniform8", 2.00), ("latency0.5", 2.57),
                                             ("uniform4", 3.75)])
def test_ideal_speedups_match_background(bits, published):
    assert round(_ideal_speedup(resnet18(bits)), 2) == published


HAWQ = {"uniform8", "size0.75", "size0.5", "size0.25", "bops0.75", "latency0.75", "latency0.5",
        "bops0.5", "bops0.25", "latency0.25", "uniform4"}


def test_bit_configurations():
    assert HAWQ | {f"{b}-a8" for b in HAWQ} | {"fixed16", "w4a8", "w8a4"} == set(BIT_CONFIGS)
    symmetric = HAWQ | {"fixed16"}
    for bits in symmetric:
        net = resnet18(bits)
        stem, fc = net.layer("stem"), net.layer("fc")
        assert stem.act_signed and not fc.act_signed
        for layer in net.layers:
            assert layer.act_bits == layer.weight_bits
            assert layer.act_bits in ((16,) if bits == "fixed16" else (4, 8))
        if bits != "fixed16":
            assert stem.act_bits == 8 and fc.act_bits == 8
    four = {b: {lay.name for lay in resnet18(b).layers if lay.act_bits == 4} for b in symmetric}
    assert four["uniform8"] == set()
    assert four["latency0.5"] == {"s2.u1.c2", "s2.u2.c2", "s3.u2.c1", "s3.u2.c2", "s4.u1.c2",
                                  "s4.u2.c1", "s4.u2.c2"}
    assert four["size0.25"] == {n for n, _ in resnet18_shapes() if n.startswith("s4")}
    assert four["uniform4"] == {n for n, _ in resnet18_shapes()} - {"stem", "fc"}
    assert four["bops0.75"] == four["latency0.75"] and four["bops0.25"] == four["latency0.25"]
    # more 4-bit MACs, smaller model: the configurations are ordered as published
    frac = {b: sum(lay.macs for lay in resnet18(b).layers if lay.act_bits == 4) for b in four}
    assert frac["uniform8"] < frac["size0.75"] < frac["latency0.5"] < frac["uniform4"]
    # asymmetric: the stem and fc 8-bit, the rest 8-bit activations x 4-bit weights (w4a8)
    # or the reverse; "-a8": a configuration's weight bits with 8-bit activations
    for bits, (a, w) in (("w4a8", (8, 4)), ("w8a4", (4, 8))):
        for layer in resnet18(bits).layers:
            edge = layer.name in ("stem", "fc")
            assert (layer.act_bits, layer.weight_bits) == ((8, 8) if edge else (a, w))
    for b in HAWQ:
        for sym, asym in zip(resnet18(b).layers, resnet18(f"{b}-a8").layers, strict=True):
            assert (asym.act_bits, asym.weight_bits) == (8, sym.weight_bits)
            assert asym.shape == sym.shape and asym.act_signed == sym.act_signed


def test_network_json_round_trip(tmp_path):
    net = resnet18("latency0.5")
    f = tmp_path / "net.json"
    f.write_text(net.to_json())
    assert load_network(str(f)) == net
    layers_only = tmp_path / "mine.json"
    layers_only.write_text(json.dumps([{"name": "a", "c": 3, "m": 8, "h": 8, "w": 8, "k": 3,
                                        "stride": 1, "padding": 1, "act_bits": 4,
                                        "weight_bits": 4, "act_signed": True}]))
    mine = load_network(str(layers_only))
    assert mine.name == "mine" and mine.layers[0] == Layer("a", ConvShape(3, 8, 8, 8, 3, 1, 1),
                                                           4, 4, True)


@pytest.mark.parametrize("layer, message", [
    ({"k": 3, "bogus": 1}, r"layer 0 \('l0'\): layer key must be one of name, .*, not 'bogus'"),
    ({}, r"layer 0 \('l0'\): layer key 'k' is missing"),
    ({"k": "3"}, r"layer 0 \('l0'\): Layer k must be an integer, not '3'"),
    ({"k": 3, "act_bits": 17}, r"layer 0 \('l0'\): Layer act_bits must be from 1 to 16, not 17"),
    ({"k": 3, "act_signed": "yes"},
     r"layer 0 \('l0'\): Layer act_signed must be true or false, not 'yes'"),
    ({"k": 9}, r"layer 0 \('l0'\): Layer kernel must fit the padded input \(8x8\), not 9"),
])
def test_network_json_validation(tmp_path, cli, layer, message):
    base = {"name": "l0", "c": 3, "m": 8, "h": 8, "w": 8, "act_bits": 8, "weight_bits": 8}
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"name": "bad", "layers": [{**base, **layer}]}))
    with pytest.raises(UserError, match=rf"^--network '{re.escape(str(f))}': {message}$"):
        load_network(str(f))
    r = cli("map", "rcm-small", "--network", str(f))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_network_spec_errors(tmp_path):
    with pytest.raises(UserError, match=r"^--network must be one of resnet18, a \.json file or "
                                        r"a \.onnx file, not 'vgg'$"):
        load_network("vgg")
    with pytest.raises(UserError, match=r"^--bits must be one of uniform8, .*, not 'int3'$"):
        load_network("resnet18", "int3")
    with pytest.raises(UserError, match=r"file not found"):
        load_network(str(tmp_path / "none.json"))
    bad = tmp_path / "broken.json"
    bad.write_text("[{")
    with pytest.raises(UserError, match=r"not valid JSON"):
        load_network(str(bad))
    assert set(KNOWN_NETWORKS) == {"resnet18"}
    with pytest.raises(ValueError, match=r"^Layer names must be unique, not 'a' twice$"):
        lay = Layer("a", ConvShape(1, 1, 1, 1, 1), 8, 8)
        Network("n", (lay, lay))


# -- ONNX ----------------------------------------------------------------------------------


def _onnx_model(path, conv_attrs=None, with_gemm=True):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "group": 1,
             **(conv_attrs or {})}
    k = attrs["kernel_shape"]
    w1 = numpy_helper.from_array(np.zeros((16, 3, k[0], k[1]), np.float32), "w1")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["y1"], name="conv1", **attrs),
             helper.make_node("Relu", ["y1"], ["y2"], name="relu1"),
             helper.make_node("GlobalAveragePool", ["y2"], ["y3"], name="gap"),
             helper.make_node("Flatten", ["y3"], ["y4"], name="flat")]
    inits = [w1]
    out = "y4"
    if with_gemm:
        inits.append(numpy_helper.from_array(np.zeros((10, 16), np.float32), "w2"))
        nodes.append(helper.make_node("Gemm", ["y4", "w2"], ["z"], name="fc", transB=1))
        out = "z"
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph), str(path))


def test_onnx_import(tmp_path):
    model = tmp_path / "tiny.onnx"
    _onnx_model(model)
    (tmp_path / "tiny.bits.json").write_text(json.dumps({
        "default": {"act_bits": 8, "weight_bits": 8, "act_signed": False},
        "layers": {"conv1": {"act_bits": 4, "weight_bits": 4, "act_signed": True}}}))
    net = load_network(str(model))
    assert [lay.name for lay in net.layers] == ["conv1", "fc"]
    conv, fc = net.layers
    assert conv.shape == ConvShape(c=3, m=16, h=32, w=32, k=3, stride=2, padding=1)
    assert (conv.act_bits, conv.weight_bits, conv.act_signed) == (4, 4, True)
    assert fc.shape == ConvShape(c=16, m=10, h=1, w=1, k=1)
    assert (fc.act_bits, fc.act_signed) == (8, False)


@pytest.mark.parametrize("attrs, message", [
    ({"group": 3, "kernel_shape": [3, 3]}, r"grouped convolution \(group=3\)"),
    ({"kernel_shape": [3, 1], "pads": [1, 0, 1, 0]}, r"kernel must be square, not 3x1"),
    ({"pads": [1, 0, 1, 0]}, r"padding must be the same on every side"),
    ({"strides": [1, 2]}, r"strides must be equal"),
])
def test_onnx_unsupported_nodes(tmp_path, attrs, message):
    model = tmp_path / "m.onnx"
    try:
        _onnx_model(model, attrs, with_gemm=False)
    except Exception:  # the grouped model's weights do not match; make it valid
        pytest.fail("test model could not be built")
    (tmp_path / "m.bits.json").write_text("{}")
    with pytest.raises(UserError, match=rf"node 'conv1' \(Conv\): {message}"):
        load_network(str(model))


def test_onnx_malformed(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf")
    (tmp_path / "bad.bits.json").write_text("{}")
    with pytest.raises(UserError, match=r"not a valid ONNX model"):
        load_network(str(bad))
    model = tmp_path / "nobits.onnx"
    _onnx_model(model)
    with pytest.raises(UserError, match=r"no bit widths; write .*nobits\.bits\.json"):
        load_network(str(model))
    (tmp_path / "nobits.bits.json").write_text(json.dumps({"layers": {"convX": {}}}))
    with pytest.raises(UserError, match=r"layer 'convX' is not a Conv, Gemm or MatMul node"):
        load_network(str(model))
