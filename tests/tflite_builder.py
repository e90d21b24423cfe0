"""Small int8 TFLite models written with the ``tflite`` package's generated flatbuffer
builders, for what the MLPerf Tiny ResNet-8 lacks: depthwise and grouped convolutions, odd
channel counts, zero points other than -128, asymmetric SAME padding, fused RELU/RELU6,
per-tensor fully connected weights, max pooling, padding.

A model is a chain of layer specifications (dicts, see :func:`build_chain`), each reading the
previous layer's output (or, for ``add``, also an earlier one); weights, biases and scales
are random from a seed, and each output scale is chosen from the layer's reduction length so
that outputs spread over the int8 range without saturating everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import flatbuffers
import numpy as np
import tflite
from tflite.utils import BUILTIN_OPCODE2NAME

_CODES = {name: code for code, name in BUILTIN_OPCODE2NAME.items()}
_TYPES = {"float32": 0, "int32": 2, "int8": 9, "int64": 4, "uint8": 3, "int16": 7, "int4": 17}
_ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
_PAD = {"SAME": 0, "VALID": 1}


def _pair(v) -> tuple[int, int]:
    """An int for both axes, or (rows, columns)."""
    return (int(v), int(v)) if isinstance(v, int | np.integer) else (int(v[0]), int(v[1]))


class ModelBuilder:
    """Collects tensors, buffers and operators, then writes one subgraph's flatbuffer."""

    def __init__(self) -> None:
        self.tensors: list[dict[str, Any]] = []
        self.buffers: list[bytes] = [b""]  # buffer 0: empty, by convention
        self.operators: list[dict[str, Any]] = []
        self.opcodes: list[str] = []

    def tensor(self, name: str, shape, dtype: str = "int8", scale=None, zero_point=None,
               data: np.ndarray | None = None, qdim: int = 0) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(self.buffers) - 1
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zp = np.zeros(len(scale), np.int64) if zero_point is None else \
                np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
            if len(zp) == 1 and len(scale) > 1:
                zp = np.repeat(zp, len(scale))
        else:
            zp = None
        self.tensors.append({"name": name, "shape": [int(d) for d in shape], "dtype": dtype,
                             "scale": scale, "zp": zp, "buffer": buf, "qdim": qdim})
        return len(self.tensors) - 1

    def op(self, opcode: str, inputs, outputs, options: tuple[str, dict] | None = None) -> None:
        if opcode not in self.opcodes:
            self.opcodes.append(opcode)
        self.operators.append({"opcode": self.opcodes.index(opcode), "inputs": list(inputs),
                               "outputs": list(outputs), "options": options})

    # -- writing --

    @staticmethod
    def _ivec(b: flatbuffers.Builder, values, dtype=np.int32) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

    def _options(self, b: flatbuffers.Builder, kind: str, o: dict) -> tuple[int, int]:
        BO = tflite.BuiltinOptions
        if kind == "conv":
            tflite.Conv2DOptionsStart(b)
            tflite.Conv2DOptionsAddPadding(b, _PAD[o.get("padding", "SAME")])
            sh, sw = _pair(o.get("stride", 1))
            dh, dw = _pair(o.get("dilation", 1))
            tflite.Conv2DOptionsAddStrideW(b, sw)
            tflite.Conv2DOptionsAddStrideH(b, sh)
            tflite.Conv2DOptionsAddFusedActivationFunction(b, _ACT[o.get("act", "NONE")])
            tflite.Conv2DOptionsAddDilationWFactor(b, dw)
            tflite.Conv2DOptionsAddDilationHFactor(b, dh)
            return BO.Conv2DOptions, tflite.Conv2DOptionsEnd(b)
        if kind == "depthwise":
            tflite.DepthwiseConv2DOptionsStart(b)
            tflite.DepthwiseConv2DOptionsAddPadding(b, _PAD[o.get("padding", "SAME")])
            sh, sw = _pair(o.get("stride", 1))
            dh, dw = _pair(o.get("dilation", 1))
            tflite.DepthwiseConv2DOptionsAddStrideW(b, sw)
            tflite.DepthwiseConv2DOptionsAddStrideH(b, sh)
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, o.get("dm", 1))
            tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(
                b, _ACT[o.get("act", "NONE")])
            tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, dw)
            tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, dh)
            return BO.DepthwiseConv2DOptions, tflite.DepthwiseConv2DOptionsEnd(b)
        if kind == "fc":
            tflite.FullyConnectedOptionsStart(b)
            tflite.FullyConnectedOptionsAddFusedActivationFunction(b, _ACT[o.get("act", "NONE")])
            return BO.FullyConnectedOptions, tflite.FullyConnectedOptionsEnd(b)
        if kind == "pool":
            tflite.Pool2DOptionsStart(b)
            tflite.Pool2DOptionsAddPadding(b, _PAD[o.get("padding", "VALID")])
            tflite.Pool2DOptionsAddStrideW(b, o.get("stride", 2))
            tflite.Pool2DOptionsAddStrideH(b, o.get("stride", 2))
            tflite.Pool2DOptionsAddFilterWidth(b, o.get("k", 2))
            tflite.Pool2DOptionsAddFilterHeight(b, o.get("k", 2))
            tflite.Pool2DOptionsAddFusedActivationFunction(b, _ACT[o.get("act", "NONE")])
            return BO.Pool2DOptions, tflite.Pool2DOptionsEnd(b)
        if kind == "add":
            tflite.AddOptionsStart(b)
            tflite.AddOptionsAddFusedActivationFunction(b, _ACT[o.get("act", "NONE")])
            return BO.AddOptions, tflite.AddOptionsEnd(b)
        if kind == "softmax":
            tflite.SoftmaxOptionsStart(b)
            tflite.SoftmaxOptionsAddBeta(b, o.get("beta", 1.0))
            return BO.SoftmaxOptions, tflite.SoftmaxOptionsEnd(b)
        if kind == "reshape":
            shape = self._ivec(b, o["shape"])
            tflite.ReshapeOptionsStart(b)
            tflite.ReshapeOptionsAddNewShape(b, shape)
            return BO.ReshapeOptions, tflite.ReshapeOptionsEnd(b)
        if kind == "mean":
            tflite.ReducerOptionsStart(b)
            tflite.ReducerOptionsAddKeepDims(b, o.get("keep_dims", False))
            return BO.ReducerOptions, tflite.ReducerOptionsEnd(b)
        if kind == "pad":
            tflite.PadOptionsStart(b)
            return BO.PadOptions, tflite.PadOptionsEnd(b)
        if kind == "padv2":
            tflite.PadV2OptionsStart(b)
            return BO.PadV2Options, tflite.PadV2OptionsEnd(b)
        if kind == "mul":
            tflite.MulOptionsStart(b)
            tflite.MulOptionsAddFusedActivationFunction(b, _ACT[o.get("act", "NONE")])
            return BO.MulOptions, tflite.MulOptionsEnd(b)
        if kind == "concat":
            tflite.ConcatenationOptionsStart(b)
            tflite.ConcatenationOptionsAddAxis(b, o.get("axis", -1))
            tflite.ConcatenationOptionsAddFusedActivationFunction(b, _ACT[o.get("act",
                                                                                "NONE")])
            return BO.ConcatenationOptions, tflite.ConcatenationOptionsEnd(b)
        if kind == "squeeze":
            dims = self._ivec(b, o["dims"])
            tflite.SqueezeOptionsStart(b)
            tflite.SqueezeOptionsAddSqueezeDims(b, dims)
            return BO.SqueezeOptions, tflite.SqueezeOptionsEnd(b)
        raise ValueError(kind)

    def build(self, inputs, outputs, identifier: bytes = b"TFL3") -> bytes:
        b = flatbuffers.Builder(1024)
        buffers = []
        for data in self.buffers:
            vec = b.CreateByteVector(data) if data else None
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buffers.append(tflite.BufferEnd(b))
        tensors = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._ivec(b, t["shape"])
            quant = None
            if t["scale"] is not None:
                scale = b.CreateNumpyVector(t["scale"])
                zp = b.CreateNumpyVector(t["zp"])
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, scale)
                tflite.QuantizationParametersAddZeroPoint(b, zp)
                tflite.QuantizationParametersAddQuantizedDimension(b, t["qdim"])
                quant = tflite.QuantizationParametersEnd(b)
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, _TYPES[t["dtype"]])
            tflite.TensorAddBuffer(b, t["buffer"])
            tflite.TensorAddName(b, name)
            if quant is not None:
                tflite.TensorAddQuantization(b, quant)
            tensors.append(tflite.TensorEnd(b))
        ops = []
        for o in self.operators:
            ins = self._ivec(b, o["inputs"])
            outs = self._ivec(b, o["outputs"])
            opts = self._options(b, *o["options"]) if o["options"] else None
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, o["opcode"])
            tflite.OperatorAddInputs(b, ins)
            tflite.OperatorAddOutputs(b, outs)
            if opts is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opts[0])
                tflite.OperatorAddBuiltinOptions(b, opts[1])
            ops.append(tflite.OperatorEnd(b))

        def table_vector(start, items):
            start(b, len(items))
            for item in reversed(items):
                b.PrependUOffsetTRelative(item)
            return b.EndVector()

        t_vec = table_vector(tflite.SubGraphStartTensorsVector, tensors)
        o_vec = table_vector(tflite.SubGraphStartOperatorsVector, ops)
        in_vec, out_vec = self._ivec(b, inputs), self._ivec(b, outputs)
        sg_name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, t_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, o_vec)
        tflite.SubGraphAddName(b, sg_name)
        subgraph = tflite.SubGraphEnd(b)
        codes = []
        for name in self.opcodes:
            code = _CODES[name]
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            tflite.OperatorCodeAddBuiltinCode(b, code)
            tflite.OperatorCodeAddVersion(b, 1)
            codes.append(tflite.OperatorCodeEnd(b))
        c_vec = table_vector(tflite.ModelStartOperatorCodesVector, codes)
        s_vec = table_vector(tflite.ModelStartSubgraphsVector, [subgraph])
        b_vec = table_vector(tflite.ModelStartBuffersVector, buffers)
        desc = b.CreateString("rcm_gen test model")
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, c_vec)
        tflite.ModelAddSubgraphs(b, s_vec)
        tflite.ModelAddDescription(b, desc)
        tflite.ModelAddBuffers(b, b_vec)
        model = tflite.ModelEnd(b)
        b.Finish(model, file_identifier=identifier)
        return bytes(b.Output())


#: The spread (standard deviation, in integer steps) each layer's output aims at.
_TARGET = 40.0


def _scales(rng, spec: dict[str, Any], in_scale: float, spread: float, n: int, m: int,
            per_channel: bool, out_zp: int) -> tuple[float, np.ndarray]:
    """An output scale, and weight scales that make a reduction of ``n`` products of inputs
    spread by ``spread`` integer steps land at about :data:`_TARGET` steps of the output."""
    if "out_scale" in spec:
        o_scale = spec["out_scale"]
    elif spec.get("act") == "RELU6":
        o_scale = 6.0 / (127 - out_zp) * rng.uniform(0.9, 1.1)  # 6.0 lands near 127
    else:
        o_scale = rng.uniform(0.02, 0.2)
    base = o_scale * _TARGET / (in_scale * math.sqrt(n) * spread * 73.0)
    if "w_scale" in spec:
        base = spec["w_scale"]
    w_scale = base * rng.uniform(0.6, 1.5, m if per_channel else 1)
    return float(o_scale), w_scale.astype(np.float32)


def build_chain(input_shape, layers: list[dict[str, Any]], *, input_q=(0.05, -128),
                seed: int = 0, input_dtype: str = "int8", identifier: bytes = b"TFL3") -> bytes:
    """A model whose layers run one after another.

    ``input_shape`` is NHWC (or any shape for a model that starts with ``fc``); each layer is
    a dict with ``op`` one of:

    - ``conv``: ``m``, ``k``, ``stride``, ``padding``, ``act``, ``groups`` (1), ``dilation``
    - ``depthwise``: ``k``, ``stride``, ``padding``, ``act``, ``dm`` (1)
    - ``fc``: ``m``, ``act``, ``per_channel`` (False)
    - ``maxpool`` / ``avgpool``: ``k``, ``stride``, ``padding``, ``act``
    - ``add``: ``with`` (the index of an earlier layer's output, -1 for the model input)
    - ``reshape``: ``shape``;  ``softmax``: ``beta``;  ``pad``: ``pads`` [[before, after]]*4
    - ``mean``: ``axes``, ``keep_dims``
    - ``quantize``: from the float32 model input (first, with ``input_dtype="float32"``) or
      from int8;  ``dequantize``: to a float32 model output (last)
    - ``raw``: ``opcode``, any other builtin operator (one input, no options)

    and optionally ``out_zp`` (the output zero point; default drawn from -128, -5, 0, 17),
    ``out_scale``, ``per_channel`` (default True for convolutions), ``weight_zp`` (default 0),
    ``no_bias`` (the bias input left out), ``w_scale`` (a weight scale instead of one derived
    from the output scale), ``w_range`` (weights drawn from [-w_range, w_range]),
    ``bias_range`` (likewise for biases, default 4000), ``weights_dtype`` / ``act_dtype`` (to
    build models the reader must refuse).
    """
    rng = np.random.default_rng(seed)
    mb = ModelBuilder()
    if input_dtype == "float32" and layers and layers[0]["op"] == "quantize":
        x = mb.tensor("input", input_shape, "float32")  # a float model: QUANTIZE first
    elif input_dtype == "uint8" and layers and layers[0]["op"] == "quantize":
        x = mb.tensor("input", input_shape, "uint8", input_q[0], input_q[1] + 128)
    else:
        x = mb.tensor("input", input_shape, input_dtype, input_q[0], input_q[1])
    first = x
    outs: list[int] = []
    shape = list(input_shape)
    scale, zp = input_q
    spread = 74.0  # uniform int8
    for i, spec in enumerate(layers):
        op = spec["op"]
        out_zp = spec.get("out_zp", int(rng.choice([-128, -5, 0, 17])))
        act = spec.get("act", "NONE")
        dtype = spec.get("act_dtype", "int8")
        if op in ("conv", "depthwise", "fc"):
            kh, kw = _pair(spec.get("k", 1 if op == "fc" else 3))
            stride = spec.get("stride", 1)
            (sh, sw), (dh, dw) = _pair(stride), _pair(spec.get("dilation", 1))
            padding = spec.get("padding", "SAME")
            c = shape[-1] if op != "fc" else int(np.prod(shape[1:])) if len(shape) > 1 else 1
            if op == "fc":
                c = spec.get("in_features", shape[-1])
            groups = spec.get("groups", 1)
            dm = spec.get("dm", 1)
            m = spec["m"] if op != "depthwise" else c * dm
            cg = c // groups if op == "conv" else 1
            per_channel = spec.get("per_channel", op != "fc")
            n = cg * kh * kw if op != "depthwise" else kh * kw
            o_scale, w_scale = _scales(rng, spec, scale, spread, n, m, per_channel, out_zp)
            if op == "conv":
                w_shape = (m, kh, kw, cg)
            elif op == "depthwise":
                w_shape = (1, kh, kw, m)
            else:
                w_shape = (m, c)
            w_max = spec.get("w_range", 127)
            w = rng.integers(-w_max, w_max + 1, size=w_shape).astype(np.int8)
            w_dtype = spec.get("weights_dtype", "int8")
            w_data = w if w_dtype == "int8" else w.astype(np.float32)
            w_zp = spec.get("weight_zp", 0)
            qdim = 3 if op == "depthwise" else 0
            wt = mb.tensor(f"w{i}", w_shape, w_dtype, w_scale if w_dtype == "int8" else None,
                           w_zp if w_dtype == "int8" else None, w_data, qdim=qdim)
            bias_scale = (np.float32(scale) * w_scale).astype(np.float32)
            if not per_channel:
                bias_scale = np.repeat(bias_scale, m)
            b_max = spec.get("bias_range", 4000)
            bias = rng.integers(-b_max, b_max + 1, size=m).astype(np.int32)
            if "bias" in spec:
                bias = np.broadcast_to(np.asarray(spec["bias"], np.int32), (m,)).copy()
            bt = mb.tensor(f"b{i}", (m,), "int32", bias_scale, 0, bias)
            if op == "fc":
                out_shape = [int(np.prod(shape)) // c, m]
            else:
                h, wd = shape[1], shape[2]
                if padding == "SAME":
                    ho, wo = -(-h // sh), -(-wd // sw)
                else:
                    ho = (h - (kh - 1) * dh - 1) // sh + 1
                    wo = (wd - (kw - 1) * dw - 1) // sw + 1
                out_shape = [shape[0], ho, wo, m]
            y = mb.tensor(f"{op}{i}", out_shape, dtype, o_scale, out_zp)
            kind = {"conv": "conv", "depthwise": "depthwise", "fc": "fc"}[op]
            opcode = {"conv": "CONV_2D", "depthwise": "DEPTHWISE_CONV_2D",
                      "fc": "FULLY_CONNECTED"}[op]
            inputs = [x, wt, bt]
            if spec.get("no_bias"):  # 2 inputs for DEPTHWISE_CONV_2D, -1 for FC
                inputs = [x, wt, -1] if op == "fc" else [x, wt]
            mb.op(opcode, inputs, [y],
                  (kind, {"padding": padding, "stride": stride, "act": act, "dm": dm,
                          "dilation": spec.get("dilation", 1)}))
            shape, scale, zp, spread = out_shape, o_scale, out_zp, _TARGET
        elif op in ("maxpool", "avgpool"):
            k, stride = spec.get("k", 2), spec.get("stride", 2)
            padding = spec.get("padding", "VALID")
            h, wd = shape[1], shape[2]
            if padding == "SAME":
                ho, wo = -(-h // stride), -(-wd // stride)
            else:
                ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
            out_shape = [shape[0], ho, wo, shape[3]]
            y = mb.tensor(f"{op}{i}", out_shape, dtype, scale, zp)
            mb.op("MAX_POOL_2D" if op == "maxpool" else "AVERAGE_POOL_2D", [x], [y],
                  ("pool", {"padding": padding, "stride": stride, "k": k, "act": act}))
            shape = out_shape
        elif op == "add":
            other = first if spec["with"] == -1 else outs[spec["with"]]
            o_scale = spec.get("out_scale", scale * rng.uniform(1.2, 2.0))
            y = mb.tensor(f"add{i}", shape, dtype, o_scale, out_zp)
            mb.op("ADD", [x, other], [y], ("add", {"act": act}))
            scale, zp = o_scale, out_zp
        elif op == "reshape":
            new = list(spec["shape"])
            st = mb.tensor(f"shape{i}", (len(new),), "int32", data=np.array(new, np.int32))
            y = mb.tensor(f"reshape{i}", new, dtype, scale, zp)
            mb.op("RESHAPE", [x, st], [y], ("reshape", {"shape": new}))
            shape = new
        elif op == "softmax":
            y = mb.tensor(f"softmax{i}", shape, dtype, 1 / 256, -128)
            mb.op("SOFTMAX", [x], [y], ("softmax", {"beta": spec.get("beta", 1.0)}))
            scale, zp = 1 / 256, -128
        elif op == "pad":
            pads = np.array(spec["pads"], dtype=np.int32)
            pt = mb.tensor(f"pads{i}", pads.shape, "int32", data=pads)
            new = [d + int(p[0]) + int(p[1]) for d, p in zip(shape, pads, strict=True)]
            y = mb.tensor(f"pad{i}", new, dtype, scale, zp)
            mb.op("PAD", [x, pt], [y], ("pad", {}))
            shape = new
        elif op == "mean":
            axes = np.array(spec["axes"], dtype=np.int32)
            at = mb.tensor(f"axes{i}", axes.shape, "int32", data=axes)
            keep = spec.get("keep_dims", False)
            rank = len(shape)
            red = {int(a) % rank for a in axes}
            new = [1 if d in red else n for d, n in enumerate(shape)] if keep else \
                [n for d, n in enumerate(shape) if d not in red]
            o_scale = spec.get("out_scale", scale * rng.uniform(0.3, 1.2))
            y = mb.tensor(f"mean{i}", new, dtype, o_scale, out_zp)
            mb.op("MEAN", [x, at], [y], ("mean", {"keep_dims": keep}))
            shape, scale, zp = new, o_scale, out_zp
        elif op == "quantize":  # float32 or uint8 (the model input) or int8 to int8/uint8
            o_scale = spec.get("out_scale", input_q[0] if i == 0 else scale * 1.3)
            o_dtype = spec.get("out_dtype", "int8")
            if o_dtype == "uint8":
                out_zp = spec.get("out_zp", 128 + int(rng.integers(-20, 20)))
            y = mb.tensor(f"quantize{i}", shape, o_dtype, o_scale, out_zp)
            mb.op("QUANTIZE", [x], [y])
            scale, zp = o_scale, out_zp
        elif op == "mul":
            if spec.get("with") is None:  # a constant per-channel factor
                c = shape[-1]
                bscale = float(rng.uniform(0.005, 0.02))
                bzp = int(rng.integers(-10, 10))
                bdata = rng.integers(-128, 128, size=(c,)).astype(np.int8)
                other = mb.tensor(f"factor{i}", (c,), "int8", bscale, bzp, bdata)
            else:
                other = first if spec["with"] == -1 else outs[spec["with"]]
            o_scale = spec.get("out_scale", scale * rng.uniform(0.5, 1.5))
            y = mb.tensor(f"mul{i}", shape, dtype, o_scale, out_zp)
            mb.op("MUL", [x, other], [y], ("mul", {"act": act}))
            scale, zp = o_scale, out_zp
        elif op == "concat":
            others = [x] * spec.get("copies", 2)
            axis = spec.get("axis", -1)
            new = list(shape)
            new[axis] = shape[axis] * len(others)
            y = mb.tensor(f"concat{i}", new, dtype, scale, zp)
            mb.op("CONCATENATION", others, [y], ("concat", {"axis": axis}))
            shape = new
        elif op == "squeeze":
            dims = list(spec["dims"])
            new = [n for d, n in enumerate(shape) if d not in {a % len(shape) for a in dims}]
            y = mb.tensor(f"squeeze{i}", new, dtype, scale, zp)
            mb.op("SQUEEZE", [x], [y], ("squeeze", {"dims": dims}))
            shape = new
        elif op in ("logistic", "tanh", "hard_swish"):
            if op == "logistic":
                o_scale, o_zp = 1 / 256, -128
            elif op == "tanh":
                o_scale, o_zp = 1 / 128, 0
            else:
                o_scale = spec.get("out_scale", scale * rng.uniform(0.5, 1.0))
                o_zp = out_zp
            y = mb.tensor(f"{op}{i}", shape, dtype, o_scale, o_zp)
            mb.op(op.upper(), [x], [y])
            scale, zp = o_scale, o_zp
        elif op == "padv2":
            pads = np.array(spec["pads"], dtype=np.int32)
            pt = mb.tensor(f"pads{i}", pads.shape, "int32", data=pads)
            value = np.array([spec.get("value", 7)], dtype=np.int8)
            vt = mb.tensor(f"padvalue{i}", (1,), "int8", scale, zp, value)
            new = [d + int(p[0]) + int(p[1]) for d, p in zip(shape, pads, strict=True)]
            y = mb.tensor(f"padv2_{i}", new, dtype, scale, zp)
            mb.op("PADV2", [x, pt, vt], [y], ("padv2", {}))
            shape = new
        elif op == "dequantize":
            y = mb.tensor(f"dequantize{i}", shape, "float32")
            mb.op("DEQUANTIZE", [x], [y])
        elif op == "raw":  # any other operator, one input, same shape and quantization
            y = mb.tensor(f"raw{i}", shape, dtype, scale, zp)
            mb.op(spec["opcode"], [x], [y])
        else:
            raise ValueError(f"unknown layer op {op!r}")
        outs.append(y)
        x = y
    return mb.build([first], [x], identifier)


def write_chain(path, input_shape, layers, **kw) -> str:
    """:func:`build_chain` written to ``path``; returns the path as a string."""
    data = build_chain(input_shape, layers, **kw)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)
