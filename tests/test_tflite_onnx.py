"""onnxruntime as a second, independent oracle for what a tile accumulates.

Each :class:`TileLayer` read from a TFLite model is written as an ONNX ``ConvInteger`` (or
``MatMulInteger``) node plus its bias and run in onnxruntime; its int32 result must equal
:func:`rcm_gen.workloads.tflite_ref.accumulate` exactly.  That checks the reader's
conversion of TFLite's layouts (OHWI and 1HW(C·dm) filters to OIHW, groups, the depthwise
channel order, asymmetric SAME padding with the input zero point) against an implementation
that shares no code with LiteRT.  Requantization is not compared: onnxruntime's
``QLinearConv`` rescales in single-precision floating point and differs from TFLite's
fixed-point rounding on about 0.1 % of ResNet-8's outputs.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_tflite import BUILT
from tflite_builder import write_chain

from rcm_gen.workloads.infer import ReferenceEngine, random_input, run_model
from rcm_gen.workloads.tflite_model import TileLayer, load_tflite
from rcm_gen.workloads.tflite_ref import accumulate

RESNET8 = str(resources.files("rcm_gen.workloads") / "data" /
              "mlperf_tiny_resnet8_int8.tflite")


def _session(layer: TileLayer):
    """An onnxruntime session computing the layer's accumulators (bias included)."""
    init = [numpy_helper.from_array(np.array(layer.input_zero_point, np.int8), "x_zp"),
            numpy_helper.from_array(np.array(0, np.int8), "w_zp")]
    if layer.kind == "fc":
        x = helper.make_tensor_value_info("x", TensorProto.INT8, [None, layer.in_channels])
        init += [numpy_helper.from_array(layer.weights[:, :, 0, 0].T.copy(), "w"),
                 numpy_helper.from_array(layer.bias.astype(np.int32), "b")]
        node = helper.make_node("MatMulInteger", ["x", "w", "x_zp", "w_zp"], ["acc"])
    else:
        n, h, w, c = layer.input_shape
        top, bottom, left, right = layer.pads
        x = helper.make_tensor_value_info("x", TensorProto.INT8, [n, c, h, w])
        init += [numpy_helper.from_array(layer.weights, "w"),
                 numpy_helper.from_array(layer.bias.astype(np.int32).reshape(1, -1, 1, 1),
                                         "b")]
        node = helper.make_node("ConvInteger", ["x", "w", "x_zp", "w_zp"], ["acc"],
                                kernel_shape=list(layer.kernel), strides=list(layer.stride),
                                pads=[top, left, bottom, right], group=layer.groups)
    y = helper.make_tensor_value_info("y", TensorProto.INT32, None)
    graph = helper.make_graph([node, helper.make_node("Add", ["acc", "b"], ["y"])],
                              layer.name.replace("/", "_")[:60] or "layer", [x], [y], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              ir_version=8)
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _onnx_accumulate(session, layer: TileLayer, x: np.ndarray) -> np.ndarray:
    if layer.kind == "fc":
        return session.run(None, {"x": x.reshape(-1, layer.in_channels)})[0]
    nchw = np.ascontiguousarray(x.reshape(layer.input_shape).transpose(0, 3, 1, 2))
    return session.run(None, {"x": nchw})[0].transpose(0, 2, 3, 1)


def _check_model(model, seeds) -> int:
    sessions = {i: _session(layer) for i, layer in model.layers.items()}
    checked = 0
    for seed in seeds:
        values = run_model(model, random_input(model, seed), ReferenceEngine()).values
        for i, layer in model.layers.items():
            x = values[model.operators[i].inputs[0]]
            np.testing.assert_array_equal(_onnx_accumulate(sessions[i], layer, x),
                                          accumulate(layer, x), err_msg=layer.label())
            checked += 1
    return checked


def test_resnet8_accumulators_equal_onnxruntime():
    model = load_tflite(RESNET8)
    assert _check_model(model, range(5)) == 5 * len(model.layers)


@pytest.mark.parametrize("name", ["depthwise-dm1-relu6-odd", "depthwise-dm2-maxpool",
                                  "grouped-avgpool-pad", "asymmetric-same-kernel4",
                                  "residual-fc-per-tensor-softmax", "without-bias"])
def test_built_model_accumulators_equal_onnxruntime(tmp_path, name):
    shape, layers = BUILT[name]
    model = load_tflite(write_chain(tmp_path / "m.tflite", shape, layers, seed=7))
    assert _check_model(model, range(3)) == 3 * len(model.layers)
