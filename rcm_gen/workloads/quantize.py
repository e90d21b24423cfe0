"""A hardware-aware mixed-precision quantizer: from a float TFLite model, a family of integer
models (int8, 16x8, int4 weights, per-layer mixes, narrow 4-bit activation ranges), each
scored by its fidelity to the float model and by a design point's cycle and energy models;
the Pareto fronts of fidelity against latency and against energy.

The integer models come from ``ai-edge-quantizer``'s static-range recipes (min/max
calibration on the given inputs): int8 everywhere (``int8``), int16 activations with int8
weights (``16x8``), int4 weights on CONV_2D and FULLY_CONNECTED with int8 activations
(``w4a8``, OCTAV's clipping for the 4-bit weights; depthwise layers keep int8 weights, as
the library's policy has it), and a
per-layer mix (``mix``: the stem at 16x8, the inner convolutions at w4a8, the rest int8).
The library has no scheme for activations clamped to fewer levels than their container
holds, so rcm_gen's own requantization makes them (``narrow``): every int8 activation that
a fused ReLU (or ReLU6) ends is requantized to 16 levels — the same real range, its scale
times (127 − zp)/15 and its zero point 112, so the fused activation's clamp is 112…127 —
which the tile then runs in 4-bit lanes as ``x − 112`` (``int8-a4``: int8 weights;
``w4a4``: on top of ``w4a8``).  Operator versions are set as LiteRT's versioning rules want
(the library leaves them at 1).

Fidelity is the signal-to-noise ratio of the dequantized output against the float model's,
over the calibration inputs (LiteRT's reference kernels for both), and per tile layer the
same for its output tensor; latency the cycle model's cycles of one inference (the data do
not change them) on the design point and on its fixed twin; energy the tile's energy model
(:func:`rcm_gen.power.tile.calibrate`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

__all__ = [
    "VARIANTS",
    "Scored",
    "calibration_inputs",
    "fidelity",
    "narrow_activations",
    "pareto_front",
    "quantize_variant",
    "score_model",
]

#: The family of integer models, in the order they are made, with what each is.
VARIANTS = {
    "int8": "int8 activations and weights everywhere",
    "16x8": "int16 activations, int8 weights everywhere (int64 bias)",
    "w4a8": "int4 weights on CONV_2D and FULLY_CONNECTED, int8 activations",
    "mix": "per layer: the stem 16x8, the other convolutions w4a8, the rest int8",
    "int8-a4": "int8, every ReLU output requantized to 16 levels (4-bit ranges)",
    "w4a4": "w4a8, every ReLU output requantized to 16 levels (4-bit ranges)",
}


def _recipe(name: str, stem: str | None) -> Any:
    from ai_edge_quantizer import qtyping, recipe_manager
    from ai_edge_quantizer.algorithm_manager import AlgorithmName

    ops = qtyping.TFLOperationName
    rm = recipe_manager.RecipeManager()
    act = 16 if name == "16x8" else 8
    rm.add_static_config(".*", ops.ALL_SUPPORTED, act, 8)
    if name in ("w4a8", "w4a4", "mix"):
        # OCTAV's clipping for the 4-bit weights: about 5 dB better per layer than min/max
        # on ResNet-8
        octav = AlgorithmName.OCTAV
        rm.add_static_config(".*", ops.CONV_2D, 8, 4, algorithm_key=octav)
        if name != "mix":
            rm.add_static_config(".*", ops.FULLY_CONNECTED, 8, 4, algorithm_key=octav)
    if name == "mix" and stem:
        import re

        rm.add_static_config(re.escape(stem), ops.CONV_2D, 16, 8)
    return rm.get_quantization_recipe()


def _stem_name(float_buf: bytes) -> str | None:
    """The output tensor name of the model's first CONV_2D (the quantizer's regexes match
    an operator by its output's name)."""
    from .tflite_write import _opcode, read_model

    model = read_model(float_buf)
    g = model.subgraphs[0]
    from ai_edge_litert import schema_py_generated as schema

    for op in g.operators:
        if _opcode(model, op.opcodeIndex) == schema.BuiltinOperator.CONV_2D:
            name = g.tensors[int(op.outputs[0])].name
            return name.decode() if isinstance(name, bytes) else name
    return None


def quantize_variant(float_buf: bytes, name: str, calibration: Sequence[np.ndarray],
                     input_name: str) -> bytes:
    """The integer model ``name`` (one of :data:`VARIANTS`) of the float model in
    ``float_buf``, calibrated on ``calibration`` (float32 inputs of the model's input
    shape, fed as ``input_name``)."""
    import tempfile

    from ai_edge_quantizer import quantizer

    from .tflite_write import set_operator_versions

    if name not in VARIANTS:
        raise UserError(f"variant must be one of {', '.join(VARIANTS)}, not {name!r}")
    base = {"int8-a4": "int8", "w4a4": "w4a8"}.get(name, name)
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f, _quiet():
        f.write(float_buf)
        f.flush()
        q = quantizer.Quantizer(f.name, _recipe(base, _stem_name(float_buf)))
        result = q.calibrate({"serving_default": [{input_name: x} for x in calibration]})
        out = q.quantize(result, enable_progress_report=False).quantized_model
    out = set_operator_versions(bytes(out))
    if name != base:
        out = narrow_activations(out)
    return out


@contextlib.contextmanager
def _quiet():
    """The quantizer's progress bars and LiteRT's log lines (written to the process's
    stdout and stderr by C++) kept off the terminal: a failing command prints one line."""
    import os
    import sys
    import tempfile
    import warnings

    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def narrow_activations(buf: bytes, levels: int = 16) -> bytes:
    """``buf`` with every int8 activation that a fused RELU or RELU6 ends requantized to
    ``levels`` levels: the real range it spans kept, its scale times
    ``(127 − zp) / (levels − 1)``, its zero point ``128 − levels`` (so that the fused
    activation's clamp is ``128 − levels … 127``).  The new quantization follows the values
    through operators that move them unchanged (pooling, RESHAPE, SQUEEZE), and the biases
    of the convolutions and fully connected layers that read them are requantized to the
    new input scale (a bias is quantized with the input scale times the weight scale; the
    kernels add it as it is stored)."""
    from ai_edge_litert import schema_py_generated as schema

    from .tflite_write import _opcode, read_model, write_model

    ops, types = schema.BuiltinOperator, schema.TensorType
    model = read_model(buf)
    g = model.subgraphs[0]
    relu = (schema.ActivationFunctionType.RELU, schema.ActivationFunctionType.RELU6)
    zp_new = 128 - levels
    changed: dict[int, float] = {}  # tensor -> its old scale
    moves = (ops.AVERAGE_POOL_2D, ops.MAX_POOL_2D, ops.RESHAPE, ops.SQUEEZE)
    for op in g.operators:
        code = _opcode(model, op.opcodeIndex)
        y = int(op.outputs[0])
        t = g.tensors[y]
        q = t.quantization
        if int(t.type) != types.INT8 or q is None or q.scale is None:
            continue
        src = int(op.inputs[0])
        if code in moves and src in changed:  # the values move as they are
            changed[y] = float(q.scale[0])
            q.scale = np.array(g.tensors[src].quantization.scale, np.float32)
            q.zeroPoint = np.array(g.tensors[src].quantization.zeroPoint, np.int64)
            continue
        if code in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D, ops.FULLY_CONNECTED) \
                and src in changed and len(op.inputs) > 2 and int(op.inputs[2]) >= 0:
            _rescale_bias(model, g.tensors[int(op.inputs[2])],
                          changed[src] / float(g.tensors[src].quantization.scale[0]))
        if code not in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D, ops.FULLY_CONNECTED, ops.ADD):
            continue
        act = getattr(op.builtinOptions, "fusedActivationFunction", None)
        if act not in relu:
            continue
        zp = int(q.zeroPoint[0])
        changed[y] = float(q.scale[0])
        q.scale = np.array([float(q.scale[0]) * (127 - zp) / (levels - 1)], np.float32)
        q.zeroPoint = np.array([zp_new], np.int64)
    return write_model(model)


def _rescale_bias(model: Any, bias: Any, factor: float) -> None:
    """An int32 bias requantized for an input scale ``1 / factor`` times its old one."""
    b = model.buffers[bias.buffer]
    values = np.frombuffer(np.asarray(b.data, np.uint8).tobytes(), np.int32).astype(
        np.float64)
    new = np.clip(np.round(values * factor), -(1 << 31), (1 << 31) - 1).astype(np.int32)
    b.data = np.frombuffer(new.tobytes(), np.uint8).copy()
    q = bias.quantization
    if q is not None and q.scale is not None:
        q.scale = (np.asarray(q.scale, np.float64) / factor).astype(np.float32)


# -- scoring ----------------------------------------------------------------------------------


def calibration_inputs(path: str | None, shape: tuple[int, ...], count: int = 16,
                       seed: int = 0) -> tuple[list[np.ndarray], str]:
    """Calibration inputs for a float model of input ``shape``: those in ``path`` (a
    ``.npy`` of ``(N, *shape[1:])`` or ``(N, *shape)`` float values), or ``count`` seeded
    uniform ones in [0, 1); and what they are.

    Raises
    ------
    UserError
        For a missing or unreadable file or an array of another shape.
    """
    if path is None:
        rng = np.random.default_rng(seed)
        return ([rng.uniform(0.0, 1.0, size=shape).astype(np.float32) for _ in range(count)],
                f"{count} seeded random inputs (uniform in [0, 1)): fidelity on random data")
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"--calibration {path!r}: file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"--calibration {path!r}: not a .npy array ({exc})".replace("\n", " ")
                        ) from None
    tail = tuple(shape[1:])
    ok = (isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] >= 1
          and (tuple(x.shape[1:]) == tail or tuple(x.shape[1:]) == tuple(shape))
          and np.issubdtype(x.dtype, np.number))
    if not ok:
        raise UserError(f"--calibration {path!r}: must be an array of shape (N, "
                        f"{', '.join(map(str, tail))}) (N inputs of the model's input), not "
                        f"{getattr(x, 'dtype', '?')} {tuple(getattr(x, 'shape', ()))}")
    items = [np.asarray(v, np.float32).reshape(shape) for v in x]
    return items, f"{len(items)} inputs from {path}"


def _snr_db(reference: np.ndarray, got: np.ndarray) -> float:
    noise = float(np.sum((got.astype(np.float64) - reference.astype(np.float64)) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def _dequantized(t: Any, values: np.ndarray) -> np.ndarray:
    if t.scale is None:
        return np.asarray(values, np.float64)
    return (np.asarray(values, np.float64) - float(t.zero_point[0])) * float(t.scale[0])


def fidelity(float_path: str, quant_path: str, inputs: Sequence[np.ndarray]
             ) -> dict[str, Any]:
    """SNR (dB) of the integer model's dequantized output against the float model's over
    ``inputs`` (fed to the integer model quantized as its input tensor says), and per tile
    layer of its output tensor against the float model's tensor of the same name."""
    from .litert_oracle import LiteRTOracle
    from .tflite_model import load_tflite

    qm = load_tflite(quant_path)
    fo, qo = LiteRTOracle(float_path), LiteRTOracle(quant_path)
    try:
        fdetails = {d["name"]: d["index"] for d in fo.tensor_details()}
        qin, qout = qm.input, qm.output
        outs_f, outs_q = [], []
        layer_pairs: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        f_output = _float_output_index(float_path)
        for x in inputs:
            ft = fo.run(np.asarray(x, np.float32))
            if qin.dtype == "float32":
                xq = np.asarray(x, np.float32)
            else:
                s, z = float(qin.scale[0]), int(qin.zero_point[0])
                lo, hi = np.iinfo(np.dtype(qin.dtype)).min, np.iinfo(np.dtype(qin.dtype)).max
                xq = np.clip(np.round(np.asarray(x, np.float64) / s) + z, lo, hi).astype(
                    qin.dtype)
            qt = qo.run(xq)
            outs_f.append(ft[f_output])
            outs_q.append(_dequantized(qout, qt[qout.index]))
            for i in qm.layers:
                t = qm.tensors[qm.operators[i].outputs[0]]
                j = fdetails.get(t.name)
                if j is None:
                    continue
                pair = layer_pairs.setdefault(i, ([], []))
                pair[0].append(ft[j])
                pair[1].append(_dequantized(t, qt[t.index]))
    finally:
        fo.close()
        qo.close()
    per_layer = {}
    for i, (f, q) in layer_pairs.items():
        per_layer[i] = _snr_db(np.concatenate([a.ravel() for a in f]),
                               np.concatenate([a.ravel() for a in q]))
    top1 = float(np.mean([np.argmax(a) == np.argmax(b) for a, b in zip(outs_f, outs_q,
                                                                       strict=True)]))
    return {"snr_db": _snr_db(np.concatenate([a.ravel() for a in outs_f]),
                              np.concatenate([a.ravel() for a in outs_q])),
            "top1_agreement": top1,
            "layers_snr_db": {str(k): v for k, v in sorted(per_layer.items())}}


def _float_output_index(path: str) -> int:
    from .tflite_write import read_model

    model = read_model(Path(path).read_bytes())
    return int(model.subgraphs[0].outputs[0])


def score_model(path: str, config: Any, energy_model: Any = None,
                fmax_mhz: float | None = None) -> dict[str, Any]:
    """Latency (cycles of one inference on ``config`` and on its fixed twin, from the cycle
    model) and, with ``energy_model``, energy (µJ) of the integer model at ``path``; the
    modes its tile layers run in."""
    from .infer import make_engine, random_input, run_model
    from .tflite_model import load_tflite

    model = load_tflite(path)
    x = random_input(model, 0)
    rows = run_model(model, x, make_engine("model", config)).rows
    fixed_rows = run_model(model, x, make_engine("model", config.fixed_twin())).rows
    cycles = sum(int(r.stats["cycles"]) for r in rows if r.on == "tile")
    fixed = sum(int(r.stats["cycles"]) for r in fixed_rows if r.on == "tile")
    out: dict[str, Any] = {
        "cycles": cycles, "fixed_cycles": fixed, "speedup_over_fixed": fixed / cycles,
        "macs": model.macs,
        "modes": {str(r.op_index): r.stats.get("bits") for r in rows if r.on == "tile"},
        "narrow_layers": sum(1 for r in rows if r.stats.get("narrow")),
    }
    if energy_model is not None:
        from .infer_cli import inference_energy

        try:
            e = inference_energy(model, rows, config, energy_model,
                                 fmax_mhz or energy_model.fmax_mhz)
        except UserError as exc:  # a mode the energy model was not calibrated in
            out["energy_uj"], out["energy_note"] = None, str(exc)
        else:
            out["energy_uj"] = e["totals"]["energy_uj"]
            out["latency_ms"] = e["totals"]["latency_ms"]
    return out


@dataclass
class Scored:
    """One integer model of the family with its scores."""

    name: str
    path: str
    description: str
    fidelity: dict[str, Any]
    cost: dict[str, Any]
    fronts: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"variant": self.name, "model": self.path, "snr_db": self.fidelity["snr_db"],
                "top1_agreement": self.fidelity["top1_agreement"],
                "min_layer_snr_db": min(self.fidelity["layers_snr_db"].values(),
                                        default=None),
                "cycles": self.cost["cycles"], "fixed_cycles": self.cost["fixed_cycles"],
                "speedup_over_fixed": self.cost["speedup_over_fixed"],
                "energy_uj": self.cost.get("energy_uj"),
                "pareto": ";".join(self.fronts)}


def pareto_front(items: Sequence[Scored], cost: Callable[[Scored], float | None]
                 ) -> list[Scored]:
    """The items no other beats on both fidelity (higher SNR) and ``cost`` (lower), in
    increasing cost."""
    pts = [(c, s.fidelity["snr_db"], s) for s in items if (c := cost(s)) is not None]
    front = []
    for c, f, s in pts:
        dominated = any((c2 <= c and f2 >= f) and (c2 < c or f2 > f) for c2, f2, _ in pts)
        if not dominated:
            front.append((c, s))
    return [s for _, s in sorted(front, key=lambda t: t[0])]
