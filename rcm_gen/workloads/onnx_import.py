"""Convolution shapes from an ONNX model file, with bit widths from a JSON file beside it.

The bit-width file (``model.bits.json`` next to ``model.onnx`` unless given) reads
``{"default": {"act_bits": 8, "weight_bits": 8, "act_signed": false},
"layers": {"node name": {...}}}``; a layer's entry overrides the default key by key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..conv import ConvShape
from ..errors import UserError
from .networks import Layer, Network

__all__ = ["bits_file_for", "load_onnx"]

_BIT_KEYS = ("act_bits", "weight_bits", "act_signed")


def bits_file_for(model: Path) -> Path:
    return model.with_suffix(".bits.json")


def _load_bits(path: Path | None, option: str) -> dict[str, Any]:
    if path is None:
        return {"default": {}, "layers": {}}
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{option} {str(path)!r}: file not found") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{option} {str(path)!r}: not valid JSON ({exc.msg} at line "
                        f"{exc.lineno})") from None
    if not isinstance(data, dict) or set(data) - {"default", "layers"}:
        raise UserError(f"{option} {str(path)!r}: must be an object with keys default and "
                        "layers")
    for where, entry in [("default", data.get("default", {})),
                         *((f"layers.{k}", v) for k, v in data.get("layers", {}).items())]:
        if not isinstance(entry, dict) or set(entry) - set(_BIT_KEYS):
            raise UserError(f"{option} {str(path)!r}: {where} must be an object with keys "
                            f"among {', '.join(_BIT_KEYS)}, not {entry!r}")
    return {"default": data.get("default", {}), "layers": data.get("layers", {})}


def _attr(node, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def load_onnx(path: str | Path, bits_json: str | Path | None = None) -> Network:
    """The Conv, Gemm and MatMul nodes of an ONNX model as a :class:`Network` (Gemm and
    MatMul become 1×1 convolutions on a 1×1 input); :class:`UserError` for a file that is
    not an ONNX model or a node rcm_gen cannot map."""
    import onnx
    from onnx import numpy_helper, shape_inference

    p = Path(path)
    if not p.is_file():
        raise UserError(f"--network {str(p)!r}: file not found")
    try:
        model = onnx.load(str(p))
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"--network {str(p)!r}: not a valid ONNX model ({first})") from None
    bits_path = Path(bits_json) if bits_json else bits_file_for(p)
    if bits_json is None and not bits_path.exists():
        raise UserError(f"--network {str(p)!r}: no bit widths; write {str(bits_path)!r} "
                        "or give --bits-file")
    bits = _load_bits(bits_path, "--bits-file")
    graph = model.graph
    shapes: dict[str, list[int]] = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    inits = {t.name: numpy_helper.to_array(t).shape for t in graph.initializer}

    layers = []
    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type.lower()}{index}"
        where = f"--network {str(p)!r}: node {name!r} ({node.op_type})"
        if node.op_type == "Conv":
            x = shapes.get(node.input[0])
            wshape = inits.get(node.input[1]) or shapes.get(node.input[1])
            if not x or len(x) != 4 or min(x[1:]) < 1 or not wshape or len(wshape) != 4:
                raise UserError(f"{where}: input or weight shape unknown (need N, C, H, W "
                                "and M, C, K, K)")
            if _attr(node, "group", 1) != 1:
                raise UserError(f"{where}: grouped convolution (group="
                                f"{_attr(node, 'group', 1)}) is not supported; group must be 1")
            kernel = list(_attr(node, "kernel_shape", wshape[2:]))
            strides = list(_attr(node, "strides", [1, 1]))
            pads = list(_attr(node, "pads", [0, 0, 0, 0]))
            dil = list(_attr(node, "dilations", [1, 1]))
            if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise UserError(f"{where}: auto_pad is not supported; give explicit pads")
            if kernel[0] != kernel[1]:
                raise UserError(f"{where}: kernel must be square, not {kernel[0]}x{kernel[1]}")
            if strides[0] != strides[1]:
                raise UserError(f"{where}: strides must be equal, not {strides}")
            if len(set(pads)) != 1:
                raise UserError(f"{where}: padding must be the same on every side, not {pads}")
            if dil != [1, 1]:
                raise UserError(f"{where}: dilation must be 1, not {dil}")
            shape = dict(c=x[1], m=wshape[0], h=x[2], w=x[3], k=kernel[0], stride=strides[0],
                         padding=pads[0])
        elif node.op_type in ("Gemm", "MatMul"):
            bshape = inits.get(node.input[1]) or shapes.get(node.input[1])
            if not bshape or len(bshape) != 2:
                raise UserError(f"{where}: the second input must be a 2-D weight matrix")
            trans_b = node.op_type == "Gemm" and _attr(node, "transB", 0) == 1
            cin, cout = (bshape[1], bshape[0]) if trans_b else (bshape[0], bshape[1])
            shape = dict(c=cin, m=cout, h=1, w=1, k=1, stride=1, padding=0)
        else:
            continue
        entry = {**{"act_bits": 8, "weight_bits": 8, "act_signed": False},
                 **bits["default"], **bits["layers"].get(name, {})}
        try:
            layers.append(Layer(name, ConvShape(**shape), entry["act_bits"],
                                entry["weight_bits"], entry["act_signed"]))
        except (TypeError, ValueError) as exc:
            raise UserError(f"{where}: {exc}") from None
    if not layers:
        raise UserError(f"--network {str(p)!r}: no Conv, Gemm or MatMul node")
    unknown = set(bits["layers"]) - {layer.name for layer in layers}
    if unknown:
        raise UserError(f"--bits-file {str(bits_path)!r}: layer {sorted(unknown)[0]!r} is not a "
                        "Conv, Gemm or MatMul node of the model")
    return Network(p.stem, tuple(layers))
