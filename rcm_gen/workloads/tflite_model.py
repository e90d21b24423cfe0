"""Reading an int8 TFLite model: its tensors, its operators in execution order, and for each
convolution or fully connected operator the :class:`TileLayer` a hardware tile runs.

The flatbuffer is read with the ``tflite`` package (generated from TFLite's schema).  Every
integer parameter is derived the way LiteRT's kernels derive it in their ``Prepare`` step:

- SAME padding: total padding ``max((out - 1)·stride + k - in, 0)``, ``total // 2`` before
  (top / left) and the rest after (bottom / right) — so SAME padding is asymmetric when the
  total is odd (stride 2 on an even input, for example).  TFLite pads with the input's zero
  point: padded taps contribute ``(zp - zp) · w = 0``.
- Requantization: per output channel, ``QuantizeMultiplier(in_scale · w_scale / out_scale)``
  in double precision (``frexp``, round half away from zero) gives a Q0.31 ``multiplier``
  and a ``shift`` (positive: left).  A per-tensor weight scale is broadcast over the
  channels.  A per-tensor FULLY_CONNECTED forms the product ``in_scale · w_scale`` in single
  precision first (``GetQuantizedConvolutionMultipler``).
- Fused activations become a clamp range ``[lo, hi]`` (``CalculateActivationRangeQuantized``:
  the output's zero point and ``round(6.0f / scale)`` in single precision for RELU6).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

__all__ = [
    "HOST_OPERATORS",
    "TILE_OPERATORS",
    "Operator",
    "Tensor",
    "DTYPE_RANGES",
    "TfliteModel",
    "TileLayer",
    "activation_range",
    "load_tflite",
    "padding_amounts",
    "quantize_multiplier",
    "round_half_away",
]

#: Operators a tile runs, and the kind of :class:`TileLayer` each becomes.
TILE_OPERATORS = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise",
                  "FULLY_CONNECTED": "fc"}
#: Operators the host runs (int8 in, int8 out), with TFLite's reference semantics.
HOST_OPERATORS = ("ADD", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "SQUEEZE",
                  "CONCATENATION", "SOFTMAX", "LOGISTIC", "TANH", "HARD_SWISH", "PAD",
                  "PADV2", "MEAN", "QUANTIZE", "DEQUANTIZE")

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_SUPPORTED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
           6: "bool", 7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128",
           12: "uint64", 13: "resource", 14: "variant", 15: "uint32", 16: "uint16",
           17: "int4", 18: "bfloat16"}
_NUMPY = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8,
          "int64": np.int64, "int16": np.int16, "int8": np.int8, "float64": np.float64,
          "uint64": np.uint64, "uint32": np.uint32, "uint16": np.uint16, "bool": np.bool_}


# -- TFLite's integer arithmetic on scales ----------------------------------------------------


def round_half_away(x: float) -> int:
    """``std::round``: to the nearest integer, halves away from zero (exact for every
    double, unlike ``floor(x + 0.5)``)."""
    t = math.trunc(x)
    frac = x - t  # exact for doubles
    if abs(frac) >= 0.5:
        t += 1 if x > 0 else -1
    return int(t)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ≈ multiplier · 2^(shift - 31)`` with a Q0.31
    ``multiplier`` in [2^30, 2^31) (0 for ``real`` 0 or below 2^-31) and ``shift`` positive
    for a left shift."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


#: Value range of each integer tensor type.
DTYPE_RANGES = {"int8": (-128, 127), "int16": (-32768, 32767), "uint8": (0, 255),
                "int4": (-8, 7)}


def activation_range(activation: str, scale: float, zero_point: int,
                     dtype: str = "int8") -> tuple[int, int]:
    """The clamp range of a fused activation within ``dtype`` (int8 or int16), as
    ``CalculateActivationRangeQuantized`` computes it (the real bounds 0, 6, ±1 quantized
    in single precision)."""
    def quantize(real: float) -> int:
        return zero_point + round_half_away(float(np.float32(real) / np.float32(scale)))

    lo, hi = DTYPE_RANGES[dtype]
    if activation == "RELU":
        return max(lo, quantize(0.0)), hi
    if activation == "RELU6":
        return max(lo, quantize(0.0)), min(hi, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quantize(-1.0)), min(hi, quantize(1.0))
    return lo, hi


def padding_amounts(padding: str, size: int, kernel: int, stride: int,
                    dilation: int = 1) -> tuple[int, int, int]:
    """Output size and (before, after) padding along one axis, as TFLite's
    ``ComputePaddingHeightWidth`` computes them: ``(out, before, after)``."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        out = (size + stride - 1) // stride
    else:
        out = (size + stride - effective) // stride
    total = max((out - 1) * stride + effective - size, 0)
    if padding == "VALID":
        total = 0
    return out, total // 2, total - total // 2


# -- the graph --------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Tensor:
    """One tensor of the model.

    Members
    -------
    index : int
        Its index in the subgraph (what the LiteRT interpreter calls it).
    name : str
    shape : tuple of int
    dtype : str
        ``"int8"``, ``"int32"``, ``"float32"``, ...
    scale : numpy.ndarray or None
        float32 scales: one per tensor, or one per channel along ``quantized_dimension``;
        ``None`` when the tensor is not quantized.
    zero_point : numpy.ndarray or None
        int64 zero points, as many as scales.
    quantized_dimension : int
    data : numpy.ndarray or None
        The constant contents (weights, biases, shapes), ``None`` for activations.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quantized_dimension: int
    data: np.ndarray | None

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def per_channel(self) -> bool:
        return self.scale is not None and len(self.scale) > 1

    def label(self) -> str:
        return f"tensor {self.index} ({self.name!r})"


@dataclass(frozen=True, eq=False)
class Operator:
    """One operator, in the model's execution order.

    Members
    -------
    index : int
        Position in execution order.
    opcode : str
        Builtin operator name, ``"CONV_2D"``, ``"ADD"``, ...
    inputs, outputs : tuple of int
        Tensor indices; ``-1`` is an optional input left out (a missing bias).
    options : dict
        Its options, already interpreted: ``stride`` (h, w), ``pads`` (top, bottom, left,
        right), ``kernel`` (h, w), ``activation`` name and ``clamp`` (lo, hi), ``beta``, ...
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def label(self) -> str:
        return f"operator {self.index} ({self.opcode} {self.name!r})"


@dataclass(frozen=True, eq=False)
class TileLayer:
    """Everything a hardware tile needs to run one CONV_2D, DEPTHWISE_CONV_2D or
    FULLY_CONNECTED operator of an int8 model, with TFLite's semantics.

    The layer computes, for output channel ``m`` of group ``g = m // (M / groups)``::

        acc[m, y, x] = bias[m] + sum over c < C/groups, ky, kx of
                       weights[m, c, ky, kx] · (in[g·C/groups + c, y·sh + ky - pad_top,
                                                x·sw + kx - pad_left] - input_zero_point)

    (taps outside the input contribute 0: TFLite pads with the input zero point), then
    ``out = clamp(requantize(acc) + output_zero_point, clamp_lo, clamp_hi)``.

    Members
    -------
    kind : str
        ``"conv"``, ``"depthwise"`` or ``"fc"``.
    name : str
        The output tensor's name.
    op_index : int
        The operator's position in execution order.
    input_shape, output_shape : tuple of int
        The input and output tensors' shapes as TFLite stores them (NHWC for convolutions;
        ``(batch, features)`` or the input's own rank for a fully connected layer, whose
        input is read as ``(-1, in_channels)``).
    weights : numpy.ndarray
        int8, ``(M, C / groups, KH, KW)`` (OIHW).  A fully connected layer has
        ``(M, C, 1, 1)``.  Depthwise: ``(C · depth_multiplier, 1, KH, KW)``; output channel
        ``m`` reads input channel ``m // depth_multiplier`` (TFLite's order: the outputs of
        input channel ``c`` are ``c·dm .. c·dm + dm - 1``).
    groups : int
        1 for dense and fully connected layers, C for depthwise, C / filter depth for a
        grouped CONV_2D.
    bias : numpy.ndarray
        int64 ``(M,)``, the model's int32 (or, in a 16x8 layer, int64) bias (zeros when the
        model has no bias).
    multiplier, shift : numpy.ndarray
        int32 ``(M,)`` each: TFLite's Q0.31 multiplier and shift (positive: left) per output
        channel, from ``QuantizeMultiplier`` as the kernel's Prepare computes them.
    scale : numpy.ndarray
        float64 ``(M,)``: ``in_scale · w_scale / out_scale`` in double precision.
    requant : str
        How LiteRT's reference kernel requantizes: ``"fixed"`` —
        ``MultiplyByQuantizedMultiplier(acc, multiplier, shift)`` (CONV_2D,
        DEPTHWISE_CONV_2D with an int32 bias); ``"fixed64"`` — TFLite's int64
        ``MultiplyByQuantizedMultiplier`` (16x8 convolutions with an int64 bias: the
        multiplier reduced to 16 bits, one rounding); ``"double"`` — ``round(acc · scale)``
        in double precision, halves away from zero (FULLY_CONNECTED since LiteRT 1.3).
    input_zero_point, output_zero_point : int
    clamp : tuple of int
        ``(lo, hi)``, the fused activation's range within int8.
    activation : str
        The fused activation's name (``NONE``, ``RELU``, ``RELU6``, ``RELU_N1_TO_1``).
    stride : tuple of int
        ``(sh, sw)``.
    pads : tuple of int
        ``(top, bottom, left, right)``.
    depth_multiplier : int
        Output channels per input channel of a depthwise layer (1 otherwise).
    per_channel : bool
        Whether the model gives one weight scale per output channel.
    dilation : tuple of int
        ``(dh, dw)``: kernel tap ``(ky, kx)`` reads input ``(y·sh + ky·dh - pad_top,
        x·sw + kx·dw - pad_left)``.
    act_bits : int
        8 (int8 input and output) or 16 (int16: a 16x8 layer).
    weight_bits : int
        8, or 4 for int4 weights.
    input_range : tuple of int
        ``(lo, hi)``: the values the input can provably hold (its type's range, or what its
        producers clamp it to), and ``input_range_source`` what says so.
    """

    kind: str
    name: str
    op_index: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    weights: np.ndarray
    groups: int
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    requant: str
    input_zero_point: int
    output_zero_point: int
    clamp: tuple[int, int]
    activation: str
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    depth_multiplier: int = 1
    per_channel: bool = True
    dilation: tuple[int, int] = (1, 1)
    act_bits: int = 8
    weight_bits: int = 8
    input_range: tuple[int, int] = (-128, 127)
    input_range_source: str = "the input's type"

    @property
    def out_channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weights.shape[1]) * self.groups

    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def input_hw(self) -> tuple[int, int]:
        """(H, W) of the input (1, 1 for a fully connected layer)."""
        if self.kind == "fc":
            return 1, 1
        return int(self.input_shape[1]), int(self.input_shape[2])

    @property
    def output_hw(self) -> tuple[int, int]:
        if self.kind == "fc":
            return 1, 1
        return int(self.output_shape[1]), int(self.output_shape[2])

    @property
    def batch(self) -> int:
        if self.kind == "fc":
            return int(np.prod(self.input_shape)) // self.in_channels
        return int(self.input_shape[0])

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer (all batches)."""
        ho, wo = self.output_hw
        kh, kw = self.kernel
        return (self.batch * ho * wo * self.out_channels * (self.in_channels // self.groups)
                * kh * kw)

    def label(self) -> str:
        return f"operator {self.op_index} ({self.kind} {self.name!r})"


@dataclass(frozen=True, eq=False)
class TfliteModel:
    """An int8 TFLite model: tensors, operators in execution order, and a
    :class:`TileLayer` for each tile operator.

    Members
    -------
    path : str
    tensors : tuple of Tensor
        Indexed by tensor index.
    operators : tuple of Operator
    inputs, outputs : tuple of int
        The subgraph's input and output tensor indices.
    layers : dict
        Operator index → :class:`TileLayer` for every CONV_2D, DEPTHWISE_CONV_2D and
        FULLY_CONNECTED.
    """

    path: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    layers: dict[int, TileLayer]
    description: str = ""

    @property
    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers.values())


# -- reading ----------------------------------------------------------------------------------


def _read_tensor(t, index: int, buffers, raw: bytes) -> Tensor:
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor{index}"
    dtype = _DTYPES.get(t.Type(), f"type{t.Type()}")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    scale = zero_point = None
    qdim = 0
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).copy()
        zero_point = (np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).copy()
                      if q.ZeroPointLength() else np.zeros(len(scale), np.int64))
        qdim = int(q.QuantizedDimension())
    data = None
    buf = buffers(t.Buffer())
    content = b""
    if buf is not None and buf.DataLength():
        content = buf.DataAsNumpy().tobytes()
    elif buf is not None and buf.Offset() > 1:  # large models keep buffers after the root
        content = raw[buf.Offset():buf.Offset() + buf.Size()]
    if t.Sparsity() is not None:
        dtype = f"sparse {dtype}"
    elif content and dtype == "int4":  # two values a byte, the first in the low nibble
        packed = np.frombuffer(content, dtype=np.uint8)
        nibbles = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(-1).astype(np.int8)
        nibbles = np.where(nibbles >= 8, nibbles - 16, nibbles).astype(np.int8)
        count = int(np.prod(shape)) if shape else 1
        data = nibbles[:count].reshape(shape).copy()
    elif content and dtype in _NUMPY:
        data = np.frombuffer(content, dtype=_NUMPY[dtype]).reshape(shape).copy()
    return Tensor(index, name, shape, dtype, scale, zero_point, qdim, data)


def _options(op, cls):
    table = op.BuiltinOptions()
    opts = cls()
    if table is None:
        return None
    opts.Init(table.Bytes, table.Pos)
    return opts


def _read_options(opcode: str, op, op_index: int, tensors: list[Tensor], inputs,
                  outputs) -> dict[str, Any]:
    import tflite

    out: dict[str, Any] = {}
    if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if opcode == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = _options(op, cls)
        out["padding"] = "SAME" if o.Padding() == 0 else "VALID"
        out["stride"] = (int(o.StrideH()), int(o.StrideW()))
        out["dilation"] = (int(o.DilationHFactor()), int(o.DilationWFactor()))
        out["activation"] = _ACTIVATIONS.get(o.FusedActivationFunction(), "unknown")
        w = tensors[inputs[1]]
        out["kernel"] = (w.shape[1], w.shape[2])
    elif opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = _options(op, tflite.Pool2DOptions)
        out["padding"] = "SAME" if o.Padding() == 0 else "VALID"
        out["stride"] = (int(o.StrideH()), int(o.StrideW()))
        out["dilation"] = (1, 1)
        out["kernel"] = (int(o.FilterHeight()), int(o.FilterWidth()))
        out["activation"] = _ACTIVATIONS.get(o.FusedActivationFunction(), "unknown")
    elif opcode == "FULLY_CONNECTED":
        o = _options(op, tflite.FullyConnectedOptions)
        out["activation"] = (_ACTIVATIONS.get(o.FusedActivationFunction(), "unknown")
                             if o is not None else "NONE")
        out["weights_format"] = int(o.WeightsFormat()) if o is not None else 0
        out["keep_num_dims"] = bool(o.KeepNumDims()) if o is not None else False
    elif opcode in ("ADD", "MUL", "CONCATENATION"):
        cls = {"ADD": tflite.AddOptions, "MUL": tflite.MulOptions,
               "CONCATENATION": tflite.ConcatenationOptions}[opcode]
        o = _options(op, cls)
        out["activation"] = (_ACTIVATIONS.get(o.FusedActivationFunction(), "unknown")
                             if o is not None else "NONE")
        if opcode == "CONCATENATION":
            rank = len(tensors[outputs[0]].shape)
            axis = int(o.Axis()) if o is not None else 0
            out["axis"] = axis % rank if rank else 0
    elif opcode == "SOFTMAX":
        o = _options(op, tflite.SoftmaxOptions)
        out["beta"] = float(o.Beta()) if o is not None else 1.0
    elif opcode == "MEAN":
        o = _options(op, tflite.ReducerOptions)
        out["keep_dims"] = bool(o.KeepDims()) if o is not None else False
    if "padding" in out:
        x, y = tensors[inputs[0]], tensors[outputs[0]]
        if len(x.shape) == 4:
            (kh, kw), (sh, sw), (dh, dw) = out["kernel"], out["stride"], out["dilation"]
            ho, top, bottom = padding_amounts(out["padding"], x.shape[1], kh, sh, dh)
            wo, left, right = padding_amounts(out["padding"], x.shape[2], kw, sw, dw)
            out["pads"] = (top, bottom, left, right)
            out["output_hw"] = (ho, wo)
            if len(y.shape) != 4 or tuple(y.shape[1:3]) != (ho, wo):
                raise UserError(f"operator {op_index} ({opcode} {y.name!r}): output shape "
                                f"{y.shape} does not match the {out['padding']} output size "
                                f"{ho}x{wo}")
    return out


#: Host operators that also run on int16 tensors (16x8 models).
INT16_HOST_OPERATORS = ("ADD", "AVERAGE_POOL_2D", "MAX_POOL_2D", "RESHAPE", "SQUEEZE",
                        "CONCATENATION", "PAD", "SOFTMAX", "QUANTIZE", "DEQUANTIZE")


def _check_int8(op: Operator, tensor: Tensor, dtypes: tuple[str, ...] = ("int8",)) -> None:
    if tensor.dtype not in dtypes:
        if dtypes == ("int8",):
            raise UserError(f"{op.label()}: {tensor.label()} is {tensor.dtype}; rcm-gen "
                            f"infer runs {op.opcode} on int8 tensors only")
        raise UserError(f"{op.label()}: {tensor.label()} is {tensor.dtype}; rcm-gen infer "
                        f"runs {op.opcode} on {' or '.join(dtypes)} tensors")
    if tensor.scale is None:
        raise UserError(f"{op.label()}: {tensor.label()} is {tensor.dtype} but has no "
                        "quantization parameters")
    if len(tensor.scale) != 1:
        raise UserError(f"{op.label()}: activation {tensor.label()} has per-channel "
                        "quantization; activations must be quantized per tensor")
    if tensor.dtype == "int16" and int(tensor.zero_point[0]) != 0:
        raise UserError(f"{op.label()}: int16 {tensor.label()} has zero point "
                        f"{int(tensor.zero_point[0])}; int16 tensors must be symmetric (0)")


def _clamp(op: Operator, out: Tensor) -> tuple[int, int]:
    act = op.options.get("activation", "NONE")
    if act not in _SUPPORTED_ACTIVATIONS:
        raise UserError(f"{op.label()}: fused activation {act} is not supported (supported: "
                        f"{', '.join(_SUPPORTED_ACTIVATIONS)})")
    return activation_range(act, float(out.scale[0]), int(out.zero_point[0]),
                            out.dtype if out.dtype in DTYPE_RANGES else "int8")


def _tile_layer(op: Operator, tensors: list[Tensor]) -> TileLayer:
    kind = TILE_OPERATORS[op.opcode]
    x, w = tensors[op.inputs[0]], tensors[op.inputs[1]]
    y = tensors[op.outputs[0]]
    b = tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    _check_int8(op, x, ("int8", "int16"))
    _check_int8(op, y, (x.dtype,))
    if w.dtype not in ("int8", "int4") or w.scale is None:
        raise UserError(f"{op.label()}: weights {w.label()} are {w.dtype}"
                        f"{'' if w.scale is not None else ' without quantization'}; int8 "
                        "or int4 quantized weights are required")
    if not w.is_constant:
        raise UserError(f"{op.label()}: weights {w.label()} are not constant; the tile needs "
                        "constant weights")
    if np.any(w.zero_point != 0):
        bad = int(w.zero_point[np.flatnonzero(w.zero_point)[0]])
        raise UserError(f"{op.label()}: weights {w.label()} have zero point {bad}; the tile "
                        "supports symmetric weights only (zero point 0)")
    bias_types = ("int32", "int64") if x.dtype == "int16" else ("int32",)
    if b is not None and (b.dtype not in bias_types or not b.is_constant):
        raise UserError(f"{op.label()}: bias {b.label()} must be a constant "
                        f"{' or '.join(bias_types)} tensor, not "
                        f"{'a variable ' if not b.is_constant else ''}{b.dtype}")
    if op.opcode == "FULLY_CONNECTED" and op.options.get("weights_format", 0) != 0:
        raise UserError(f"{op.label()}: shuffled weights format is not supported")
    clamp = _clamp(op, y)
    wq = w.data.astype(np.int8)
    groups, dm = 1, 1
    if kind == "conv":
        if len(x.shape) != 4 or len(wq.shape) != 4:
            raise UserError(f"{op.label()}: CONV_2D needs 4-D input and weights, not "
                            f"{x.shape} and {wq.shape}")
        if x.shape[3] % wq.shape[3] or wq.shape[0] % (x.shape[3] // wq.shape[3]):
            raise UserError(f"{op.label()}: input channels {x.shape[3]} and filter depth "
                            f"{wq.shape[3]} do not form whole groups")
        groups = x.shape[3] // wq.shape[3]
        weights = wq.transpose(0, 3, 1, 2)  # OHWI -> OIHW
    elif kind == "depthwise":
        c = x.shape[3]
        if wq.shape[0] != 1 or wq.shape[3] % c:
            raise UserError(f"{op.label()}: depthwise filter {wq.shape} does not fit "
                            f"{c} input channels")
        dm = wq.shape[3] // c
        groups = c
        weights = wq[0].transpose(2, 0, 1)[:, None, :, :]  # 1HW(C·dm) -> (C·dm)1HW
    else:
        if len(wq.shape) != 2:
            raise UserError(f"{op.label()}: FULLY_CONNECTED weights must be 2-D, not "
                            f"{wq.shape}")
        if int(np.prod(x.shape)) % wq.shape[1]:
            raise UserError(f"{op.label()}: input {x.shape} does not divide into rows of "
                            f"{wq.shape[1]} features")
        weights = wq[:, :, None, None]
    m = weights.shape[0]
    if w.per_channel and len(w.scale) != m:
        raise UserError(f"{op.label()}: weights {w.label()} have {len(w.scale)} scales for "
                        f"{m} output channels")
    in_s, out_s = float(x.scale[0]), float(y.scale[0])
    w_scales = w.scale if w.per_channel else np.repeat(w.scale, m)
    scale = np.array([in_s * float(s) / out_s for s in w_scales], dtype=np.float64)
    if kind == "fc" and not w.per_channel:
        real = float(np.float32(x.scale[0]) * np.float32(w.scale[0])) / out_s
        qm = [quantize_multiplier(real)] * m
    else:
        qm = [quantize_multiplier(s) for s in scale]
    bias = (b.data.astype(np.int64).reshape(-1) if b is not None
            else np.zeros(m, dtype=np.int64))
    if len(bias) != m:
        raise UserError(f"{op.label()}: bias {b.label()} has {len(bias)} values for {m} "
                        "output channels")
    return TileLayer(
        kind=kind, name=y.name, op_index=op.index, input_shape=x.shape,
        output_shape=y.shape, weights=np.ascontiguousarray(weights), groups=groups,
        bias=bias, multiplier=np.array([q for q, _ in qm], dtype=np.int32),
        shift=np.array([s for _, s in qm], dtype=np.int32), scale=scale,
        requant=("double" if kind == "fc" else
                 "fixed64" if b is not None and b.dtype == "int64" else "fixed"),
        input_zero_point=int(x.zero_point[0]), output_zero_point=int(y.zero_point[0]),
        clamp=clamp, activation=op.options.get("activation", "NONE"),
        stride=op.options.get("stride", (1, 1)), pads=op.options.get("pads", (0, 0, 0, 0)),
        depth_multiplier=dm, per_channel=w.per_channel,
        dilation=tuple(op.options.get("dilation", (1, 1))),
        act_bits=16 if x.dtype == "int16" else 8,
        weight_bits=4 if w.dtype == "int4" else 8)


def _check_host(op: Operator, tensors: list[Tensor], model_input: int,
                model_output: int) -> None:
    x, y = tensors[op.inputs[0]], tensors[op.outputs[0]]
    n_in = {"ADD": 2, "MUL": 2, "CONCATENATION": len(op.inputs)}.get(op.opcode, 1)
    checked = [*op.inputs[:n_in], *op.outputs]
    if op.opcode == "QUANTIZE" and x.index == model_input and x.dtype in ("float32", "uint8"):
        checked = op.outputs  # the model's float or uint8 input, quantized
        if x.dtype == "uint8":
            _check_quantized(op, x)
    if op.opcode == "QUANTIZE" and y.index == model_output and y.dtype == "uint8":
        checked = op.inputs[:1]  # an int8 tensor requantized to the model's uint8 output
        _check_quantized(op, y)
    if op.opcode == "DEQUANTIZE" and y.dtype == "float32" and y.index == model_output:
        checked = op.inputs[:1]  # the model's float output, dequantized
    allowed = ("int8", "int16") if op.opcode in INT16_HOST_OPERATORS else ("int8",)
    for i in checked:
        _check_int8(op, tensors[i], allowed)
    if op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "MUL"):
        op.options["clamp"] = _clamp(op, y)
    # pooling, RESHAPE, SQUEEZE and PAD move raw int8 values: LiteRT ignores a difference
    # between their input and output quantization (a debug-build check only), and so does
    # the host
    if op.opcode in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and len(x.shape) != 4:
        raise UserError(f"{op.label()}: {op.opcode} needs a 4-D input, not {x.shape}")
    if op.opcode == "SOFTMAX" and y.dtype == "int16":
        if y.zero_point[0] != 0 or abs(float(y.scale[0]) - 1 / 32768) > 0.001 / 32768:
            raise UserError(f"{op.label()}: int16 SOFTMAX output must have scale 1/32768 and "
                            "zero point 0")
    elif op.opcode in ("SOFTMAX", "LOGISTIC"):
        if y.zero_point[0] != -128 or abs(float(y.scale[0]) - 1 / 256) > 0.001 / 256:
            raise UserError(f"{op.label()}: int8 {op.opcode} output must have scale 1/256 "
                            "and zero point -128")
    if op.opcode == "CONCATENATION":
        if op.options.get("activation", "NONE") != "NONE":
            raise UserError(f"{op.label()}: fused activation {op.options['activation']} on "
                            "CONCATENATION is not supported (only NONE)")
        for i in op.inputs:
            t = tensors[i]
            if (float(t.scale[0]), int(t.zero_point[0])) != (float(y.scale[0]),
                                                             int(y.zero_point[0])):
                raise UserError(f"{op.label()}: input {t.label()} is quantized with scale "
                                f"{float(t.scale[0]):g} and zero point {int(t.zero_point[0])}"
                                ", the output otherwise; int8 CONCATENATION needs one "
                                "quantization")
    if op.opcode in ("PAD", "PADV2"):
        pads = tensors[op.inputs[1]]
        if not pads.is_constant:
            raise UserError(f"{op.label()}: the paddings {pads.label()} must be constant")
        op.options["paddings"] = pads.data.astype(np.int64).reshape(-1, 2)
    if op.opcode == "PADV2":
        if len(op.inputs) < 3 or op.inputs[2] < 0:
            raise UserError(f"{op.label()}: PADV2 needs its constant value input")
        value = tensors[op.inputs[2]]
        if not value.is_constant or value.dtype != "int8":
            raise UserError(f"{op.label()}: the pad value {value.label()} must be a constant "
                            f"int8 tensor, not {'a variable ' if not value.is_constant else ''}"
                            f"{value.dtype}")
    if op.opcode == "MEAN":
        axes = tensors[op.inputs[1]]
        if not axes.is_constant:
            raise UserError(f"{op.label()}: the axes {axes.label()} must be constant")
        rank = len(x.shape)
        op.options["axes"] = tuple(sorted({int(a) % rank for a in axes.data.reshape(-1)}))


def _check_quantized(op: Operator, tensor: Tensor) -> None:
    if tensor.scale is None or len(tensor.scale) != 1:
        raise UserError(f"{op.label()}: {tensor.label()} is {tensor.dtype} without "
                        "per-tensor quantization parameters")


def load_tflite(path: str | Path) -> TfliteModel:
    """Read an int8 TFLite model.

    Raises
    ------
    UserError
        (one line) when the file is missing, not a TFLite flatbuffer, has several subgraphs,
        has non-int8 activations, or an operator, fused activation or quantization the tile
        and host cannot run — naming the operator (index, type, output tensor) and tensor.
    """
    import flatbuffers
    import tflite
    from tflite.utils import BUILTIN_OPCODE2NAME

    path = Path(path)
    try:
        buf = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"--model {str(path)!r}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"--model {str(path)!r}: is a folder, not a .tflite file") from None
    except OSError as exc:
        raise UserError(f"--model {str(path)!r}: cannot read it ({exc.strerror})") from None
    if len(buf) < 8 or not tflite.Model.ModelBufferHasIdentifier(buf, 0):
        raise UserError(f"--model {str(path)!r}: not a TFLite flatbuffer (no TFL3 file "
                        "identifier)")
    try:
        model = tflite.Model.GetRootAs(buf, 0)
        if model.SubgraphsLength() != 1:
            raise UserError(f"--model {str(path)!r}: has {model.SubgraphsLength()} subgraphs; "
                            "only single-subgraph models are supported")
        g = model.Subgraphs(0)

        def buffers(i):
            return model.Buffers(i) if 0 <= i < model.BuffersLength() else None

        tensors = [_read_tensor(g.Tensors(i), i, buffers, buf)
                   for i in range(g.TensorsLength())]
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            name = BUILTIN_OPCODE2NAME.get(code, f"builtin {code}")
            if name == "CUSTOM":
                name = f"CUSTOM({(oc.CustomCode() or b'').decode('utf-8', 'replace')})"
            codes.append(name)
        operators = []
        for i in range(g.OperatorsLength()):
            o = g.Operators(i)
            opcode = codes[o.OpcodeIndex()]
            inputs = tuple(int(v) for v in o.InputsAsNumpy()) if o.InputsLength() else ()
            outputs = tuple(int(v) for v in o.OutputsAsNumpy()) if o.OutputsLength() else ()
            name = tensors[outputs[0]].name if outputs else ""
            options = {}
            if opcode in TILE_OPERATORS or opcode in HOST_OPERATORS:
                options = _read_options(opcode, o, i, tensors, inputs, outputs)
            operators.append(Operator(i, opcode, inputs, outputs, options, name))
        inputs = tuple(int(v) for v in g.InputsAsNumpy())
        outputs = tuple(int(v) for v in g.OutputsAsNumpy())
        description = (model.Description() or b"").decode("utf-8", "replace")
    except UserError:
        raise
    except (IndexError, ValueError, TypeError, AttributeError, KeyError,
            flatbuffers.builder.OffsetArithmeticError) as exc:
        raise UserError(f"--model {str(path)!r}: not a readable TFLite flatbuffer "
                        f"({type(exc).__name__}: {exc})".replace("\n", " ")) from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"--model {str(path)!r}: has {len(inputs)} inputs and {len(outputs)} "
                        "outputs; only one of each is supported")
    ends = {"input": (("QUANTIZE",), lambda op: inputs[0] in op.inputs[:1]),
            "output": (("DEQUANTIZE", "QUANTIZE"), lambda op: outputs[0] in op.outputs)}
    for role, t in (("input", tensors[inputs[0]]), ("output", tensors[outputs[0]])):
        opcodes, touches = ends[role]
        if t.dtype in ("float32", "uint8") and all(
                op.opcode in opcodes and (op.opcode != "DEQUANTIZE" or t.dtype == "float32")
                and (op.opcode != "QUANTIZE" or role == "input" or t.dtype == "uint8")
                for op in operators if touches(op)):
            continue  # a float or uint8 model boundary: QUANTIZE in, (DE)QUANTIZE out
        if t.dtype not in ("int8", "int16"):
            raise UserError(f"--model {str(path)!r}: model {role} {t.label()} is {t.dtype}; "
                            "rcm-gen infer runs integer models only (quantize the model "
                            "fully to int8)")
    layers = {}
    for op in operators:
        if op.opcode in TILE_OPERATORS:
            layers[op.index] = _tile_layer(op, tensors)
        elif op.opcode in HOST_OPERATORS:
            _check_host(op, tensors, inputs[0], outputs[0])
        else:
            raise UserError(
                f"{op.label()}: operator {op.opcode} is not supported (the tile runs "
                f"{', '.join(TILE_OPERATORS)}; the host runs {', '.join(HOST_OPERATORS)})")
    ranges = value_ranges(tensors, operators, layers)
    for i, layer in layers.items():
        x = operators[i].inputs[0]
        lo, hi, source = ranges.get(x) or (*DTYPE_RANGES[tensors[x].dtype], "the input's type")
        layers[i] = dataclasses.replace(layer, input_range=(lo, hi), input_range_source=source)
    return TfliteModel(str(path), tuple(tensors), tuple(operators), inputs, outputs, layers,
                       description)


def value_ranges(tensors: list[Tensor], operators: list[Operator],
                 layers: dict[int, TileLayer]) -> dict[int, tuple[int, int, str]]:
    """The values each integer activation tensor can provably hold, ``(lo, hi, what says
    so)``: its type's range, or what its producer clamps it to — a fused activation's
    range (tile layers, ADD, MUL, pooling), carried through operators that only move or
    select values (RESHAPE, SQUEEZE, MAX_POOL_2D, AVERAGE_POOL_2D; PAD, PADV2 and
    CONCATENATION take in their pad value or every input)."""
    out: dict[int, tuple[int, int, str]] = {}

    def full(i: int) -> tuple[int, int, str]:
        lo, hi = DTYPE_RANGES.get(tensors[i].dtype, (0, 0))
        return lo, hi, "the input's type"

    def get(i: int) -> tuple[int, int, str]:
        return out.get(i) or full(i)

    for op in operators:
        y = op.outputs[0]
        if tensors[y].dtype not in DTYPE_RANGES:
            continue
        lo, hi, _ = full(y)
        where = f"operator {op.index} {op.opcode}"
        if op.index in layers:
            layer = layers[op.index]
            lo, hi = layer.clamp
            if (lo, hi) != full(y)[:2]:
                out[y] = (lo, hi, f"{where} clamps with {layer.activation}")
            continue
        if op.opcode in ("RESHAPE", "SQUEEZE"):
            out[y] = get(op.inputs[0])
        elif op.opcode in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            a, b, source = get(op.inputs[0])
            c_lo, c_hi = op.options.get("clamp", (lo, hi))
            out[y] = (min(max(a, c_lo), c_hi), max(min(b, c_hi), c_lo), source)
        elif op.opcode in ("PAD", "PADV2", "CONCATENATION"):
            srcs = [get(i) for i in (op.inputs if op.opcode == "CONCATENATION"
                                     else op.inputs[:1])]
            a, b = min(r[0] for r in srcs), max(r[1] for r in srcs)
            if op.opcode == "PAD":
                v = int(tensors[y].zero_point[0]) if tensors[y].zero_point is not None else 0
                a, b = min(a, v), max(b, v)
            elif op.opcode == "PADV2":
                v = int(tensors[op.inputs[2]].data.reshape(-1)[0])
                a, b = min(a, v), max(b, v)
            out[y] = (a, b, srcs[0][2])
        elif op.opcode in ("ADD", "MUL") and "clamp" in op.options:
            c_lo, c_hi = op.options["clamp"]
            if (c_lo, c_hi) != (lo, hi):
                out[y] = (c_lo, c_hi,
                          f"{where} clamps with {op.options.get('activation', 'NONE')}")
    return out
