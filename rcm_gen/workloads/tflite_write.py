"""Rewriting TFLite flatbuffers with LiteRT's own schema (its generated object API): a
model cut after one operator (to find which operator crashes LiteRT), operator versions
set as LiteRT's op-versioning rules want them, and reading / writing a model as objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["cut_after", "read_model", "set_operator_versions", "write_model"]


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def read_model(buf: bytes) -> Any:
    """The model in ``buf`` as LiteRT's schema objects (``ModelT``)."""
    schema = _schema()
    return schema.ModelT.InitFromPackedBuf(bytearray(buf), 0)


def write_model(model: Any) -> bytes:
    """``ModelT`` back to flatbuffer bytes (file identifier ``TFL3``)."""
    import flatbuffers

    b = flatbuffers.Builder(1 << 16)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def cut_after(buf: bytes, op_index: int) -> bytes:
    """The model in ``buf`` with only its operators ``0 .. op_index`` (execution order),
    its output the last kept operator's first output."""
    model = read_model(buf)
    g = model.subgraphs[0]
    g.operators = g.operators[:op_index + 1]
    g.outputs = np.array([int(g.operators[-1].outputs[0])], dtype=np.int32)
    model.signatureDefs = None
    return write_model(model)


def _opcode(model: Any, code_index: int) -> int:
    oc = model.operatorCodes[code_index]
    return max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))


def set_operator_versions(buf: bytes) -> bytes:
    """Operator versions as LiteRT's ``GetBuiltinOperatorVersion``
    (``tensorflow/lite/tools/versioning/op_version.cc``) assigns them to the operators and
    tensor types rcm_gen runs (int8, 16x8, int4 weights), and the deprecated builtin code
    filled beside the new one: ``ai-edge-quantizer`` writes every operator at version 1.
    An operator code shared by operators of several signatures takes the highest."""
    schema = _schema()
    ops = schema.BuiltinOperator
    T = schema.TensorType
    model = read_model(buf)
    g = model.subgraphs[0]
    wanted: dict[int, int] = {}

    def dtype(i: int) -> int:
        return int(g.tensors[i].type) if i >= 0 else -1

    for op in g.operators:
        code = _opcode(model, op.opcodeIndex)
        ins = [int(i) for i in op.inputs]
        x = dtype(ins[0]) if ins else -1
        w = dtype(ins[1]) if len(ins) > 1 else -1
        y = dtype(int(op.outputs[0]))
        opts = op.builtinOptions
        v = 1
        if code == ops.CONV_2D:
            grouped = len(g.tensors[ins[0]].shape) == 4 and \
                int(g.tensors[ins[0]].shape[3]) != int(g.tensors[ins[1]].shape[3])
            v = (6 if grouped else 3 if (x, w, y) == (T.INT8, T.INT8, T.INT8)
                 else 7 if (x, w, y) == (T.INT8, T.INT4, T.INT8) else 1)
        elif code == ops.DEPTHWISE_CONV_2D:
            dilated = opts is not None and (opts.dilationWFactor != 1
                                            or opts.dilationHFactor != 1)
            v = (3 if (x, w, y) == (T.INT8, T.INT8, T.INT8)
                 else 7 if (x, w, y) == (T.INT8, T.INT4, T.INT8) else 2 if dilated else 1)
        elif code == ops.FULLY_CONNECTED:
            if len(ins) == 2 or (len(ins) > 2 and ins[2] < 0):
                v = 6
            elif opts is not None and getattr(opts, "keepNumDims", False):
                v = 5
            elif (x, w, y) == (T.INT8, T.INT8, T.INT8):
                v = 4
            elif (x, w, y) == (T.INT8, T.INT4, T.INT8):
                v = 10
        elif code == ops.ADD:
            pot = getattr(opts, "potScaleInt16", True) if opts is not None else True
            v = 3 if (x, y) == (T.INT16, T.INT16) and not pot else 2 if x == T.INT8 else 1
        elif code == ops.MUL:
            v = 4 if x == T.INT16 else 2 if x == T.INT8 else 1
        elif code in (ops.MAX_POOL_2D, ops.AVERAGE_POOL_2D, ops.TANH, ops.LOGISTIC):
            v = 3 if (x, y) == (T.INT16, T.INT16) else 2 if x == T.INT8 else 1
        elif code in (ops.SOFTMAX, ops.MEAN, ops.CONCATENATION):
            v = 3 if x == T.INT16 else 2 if x == T.INT8 else 1
        elif code in (ops.PAD, ops.PADV2):
            v = (4 if len(g.tensors[ins[0]].shape) > 4 else 3 if x == T.INT16
                 else 2 if x == T.INT8 else 1)
        elif code == ops.QUANTIZE:
            v = 4 if T.INT4 in (x, y) else 2 if y == T.INT16 else 1
        elif code == ops.DEQUANTIZE:
            v = 6 if x == T.INT4 else 3 if x == T.INT16 else 2 if x == T.INT8 else 1
        wanted[op.opcodeIndex] = max(wanted.get(op.opcodeIndex, 1), v)
    for i, oc in enumerate(model.operatorCodes):
        code = _opcode(model, i)
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = wanted.get(i, max(int(oc.version or 1), 1))
    return write_model(model)


def dequantized_float_model(buf: bytes) -> bytes:
    """A float32 model from an integer one: every quantized constant (weights, biases)
    dequantized (``scale · (q − zero_point)``, per channel along its quantized dimension),
    every quantized activation made float32 without quantization, QUANTIZE and DEQUANTIZE
    at the model's ends dropped (the model then takes and gives float32), operator versions
    set to 1 (the float kernels).  The operators are the integer model's own, so the float
    model computes what the integer one approximates."""
    schema = _schema()
    types = schema.TensorType
    ops = schema.BuiltinOperator
    model = read_model(buf)
    g = model.subgraphs[0]
    numpy_of = {types.INT8: np.int8, types.INT16: np.int16, types.INT32: np.int32,
                types.INT64: np.int64, types.UINT8: np.uint8}
    for t in g.tensors:
        q = t.quantization
        quantized = q is not None and q.scale is not None and len(q.scale) > 0
        if not quantized or int(t.type) not in numpy_of:
            continue
        b = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        data = getattr(b, "data", None) if b is not None else None
        if data is not None and len(data):
            raw = np.frombuffer(np.asarray(data, np.uint8).tobytes(), numpy_of[int(t.type)])
            shape = [int(d) for d in t.shape]
            values = raw.reshape(shape).astype(np.float64)
            scale = np.asarray(q.scale, np.float64)
            zp = (np.asarray(q.zeroPoint, np.float64) if q.zeroPoint is not None
                  else np.zeros_like(scale))
            if len(scale) > 1:
                axis = int(q.quantizedDimension)
                bshape = [1] * len(shape)
                bshape[axis] = len(scale)
                scale, zp = scale.reshape(bshape), zp.reshape(bshape)
            b.data = np.frombuffer(((values - zp) * scale).astype(np.float32).tobytes(),
                                   np.uint8).copy()
        t.type = types.FLOAT32
        t.quantization = None
    keep = []
    boundary = {int(i) for i in g.inputs} | {int(i) for i in g.outputs}
    rename: dict[int, int] = {}
    for op in g.operators:
        code = _opcode(model, op.opcodeIndex)
        if code in (ops.QUANTIZE, ops.DEQUANTIZE):
            src, dst = int(op.inputs[0]), int(op.outputs[0])
            if src in boundary or dst in boundary:
                rename[dst] = rename.get(src, src)
                continue
        keep.append(op)
    for op in keep:
        op.inputs = np.array([rename.get(int(i), int(i)) for i in op.inputs], np.int32)
    g.operators = keep
    # an output made by a dropped DEQUANTIZE or QUANTIZE becomes its source
    g.outputs = np.array([rename.get(int(o), int(o)) for o in g.outputs], np.int32)
    for oc in model.operatorCodes:
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
    model.signatureDefs = [_signature(g)]
    return write_model(model)


def _signature(g: Any) -> Any:
    """A ``serving_default`` signature naming the subgraph's inputs and outputs by their
    tensors' names (what the quantizer's calibration feeds by name)."""
    schema = _schema()

    def tensor_map(i: int) -> Any:
        m = schema.TensorMapT()
        m.name = g.tensors[i].name
        m.tensorIndex = i
        return m

    sig = schema.SignatureDefT()
    sig.inputs = [tensor_map(int(i)) for i in g.inputs]
    sig.outputs = [tensor_map(int(i)) for i in g.outputs]
    sig.signatureKey = "serving_default"
    sig.subgraphIndex = 0
    return sig
