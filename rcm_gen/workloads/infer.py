"""Running an int8 TFLite model layer by layer: tile operators on an *engine*, the others on
the host, and every tensor compared with LiteRT's reference kernels, bit for bit.

The engine protocol
-------------------
An engine runs the tile's layers.  It is made by a factory registered under a name in
:data:`ENGINES` (``factory(config, *, simulator, bandwidth[, rounding, narrow])``, where
``config`` is the design point, ``simulator`` ``"icarus"`` or ``"verilator"``, and the
optional ``rounding`` and ``narrow`` are given only when they are not ``"double"`` and
true), has a ``name`` attribute and one method::

    run(layer: TileLayer, x: numpy.ndarray) -> tuple[numpy.ndarray, dict]

``x`` is the layer's input tensor as TFLite stores it (int8 or int16, NHWC for
convolutions, the input tensor's own shape for a fully connected layer), and the result is
the output tensor (of the output tensor's type, ``layer.output_shape``) with a dict of what
the engine measured for that layer.  The
report carries the dict and prints these keys when present: ``cycles``, ``ideal``,
``utilisation``, ``lanes``, ``bits``, ``bytes_in``, ``bytes_out``, ``binding``.
:class:`ReferenceEngine` is the numpy model of LiteRT's kernels (:mod:`.tflite_ref`).
:func:`run_model` checks that every result is int8 of the output tensor's shape.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UserError
from .tflite_model import TfliteModel, TileLayer
from .tflite_ops import run_host_operator
from .tflite_ref import run_layer

__all__ = [
    "ENGINES",
    "STAT_KEYS",
    "Comparison",
    "Engine",
    "Inference",
    "LayerRow",
    "Mismatch",
    "ReferenceEngine",
    "compare",
    "default_engine",
    "engine_names",
    "format_table",
    "inference_report",
    "load_input",
    "make_engine",
    "overflowed",
    "random_input",
    "register_engine",
    "run_model",
    "totals",
]

#: Statistics an engine may report per layer, in table order.
STAT_KEYS = ("bits", "lanes", "cycles", "ideal", "utilisation", "bytes_in", "bytes_out",
             "binding")


class Engine(Protocol):
    """What runs a model's tile layers (see the module documentation)."""

    name: str

    def run(self, layer: TileLayer, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        ...


class ReferenceEngine:
    """The bit-exact numpy model of LiteRT's reference kernels; it measures nothing but
    the layer's multiply-accumulates."""

    name = "reference"
    rounding = "double"

    def __init__(self, config: Any = None, *, simulator: str = "icarus",
                 bandwidth: float | None = None, rounding: str = "double",
                 narrow: bool = True) -> None:
        self.config = config  # the design point is not used: the model is LiteRT's
        self.rounding = rounding

    def run(self, layer: TileLayer, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        return run_layer(layer, x, self.rounding), {"macs": layer.macs}


EngineFactory = Callable[..., Engine]

#: Engines by name: a factory ``factory(config, *, simulator, bandwidth) -> Engine``, or
#: the dotted
#: path ``"package.module:attribute"`` of one (imported when the engine is asked for).
ENGINES: dict[str, EngineFactory | str] = {
    "reference": ReferenceEngine,
    "model": "rcm_gen.workloads.tile_engine:ModelEngine",
    "rtl": "rcm_gen.workloads.tile_engine:RTLEngine",
}


def register_engine(name: str, factory: EngineFactory | str) -> None:
    """Make an engine available under ``name`` (replacing one of the same name)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"Engine name must be a non-empty string, not {name!r}")
    ENGINES[name] = factory


def default_engine() -> str:
    """``model`` when it is available, else ``reference``."""
    return "model" if "model" in ENGINES else "reference"


def engine_names() -> list[str]:
    return sorted(ENGINES)


def make_engine(name: str, config: Any = None, *, simulator: str = "icarus",
                bandwidth: float | None = None, rounding: str = "double",
                narrow: bool = True) -> Engine:
    """The engine registered as ``name`` for design point ``config`` (off-chip bandwidth
    ``bandwidth`` bytes per cycle, unlimited when ``None``), requantizing int32 sums in
    ``rounding`` (``double``: LiteRT's build; ``single``: ``TFLITE_SINGLE_ROUNDING``),
    running layers at the narrowest widths their data provably need unless ``narrow`` is
    false.

    Raises
    ------
    UserError
        For a name no engine has, or a design point the engine cannot use.
    """
    if name not in ENGINES:
        raise UserError(f"--engine must be one of {', '.join(engine_names())}, not {name!r}")
    factory = ENGINES[name]
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    if rounding == "double" and narrow:  # (engines registered before these options)
        return factory(config, simulator=simulator, bandwidth=bandwidth)
    return factory(config, simulator=simulator, bandwidth=bandwidth, rounding=rounding,
                   narrow=narrow)


# -- inputs -----------------------------------------------------------------------------------


def _quantizer(model: TfliteModel):
    """The tensor the QUANTIZE operators of a float-input model write."""
    return next(model.tensors[op.outputs[0]] for op in model.operators
                if op.opcode == "QUANTIZE" and op.inputs[0] == model.inputs[0])


def random_input(model: TfliteModel, seed: int) -> np.ndarray:
    """A seeded uniform input of the model's input shape: int8 (uint8) over its whole range,
    or for a float model (QUANTIZE first) float32 over the range its quantization spans, and 10 %
    beyond on each side."""
    rng = np.random.default_rng(seed)
    if model.input.dtype == "float32":
        q = _quantizer(model)
        scale, zp = float(q.scale[0]), int(q.zero_point[0])
        lo, hi = scale * (-128 - zp), scale * (127 - zp)
        span = hi - lo
        return rng.uniform(lo - 0.1 * span, hi + 0.1 * span,
                           size=model.input.shape).astype(np.float32)
    if model.input.dtype == "uint8":
        return rng.integers(0, 256, size=model.input.shape, dtype=np.uint8)
    if model.input.dtype == "int16":
        return rng.integers(-32768, 32768, size=model.input.shape, dtype=np.int16)
    return rng.integers(-128, 128, size=model.input.shape, dtype=np.int8)


def load_input(model: TfliteModel, path: str | Path) -> np.ndarray:
    """An input from a ``.npy`` file; :class:`UserError` unless it has the model's input
    shape and type (int8, or float32 for a model that starts with QUANTIZE)."""
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"--input {str(path)!r}: file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"--input {str(path)!r}: not a .npy array ({exc})".replace("\n", " ")
                        ) from None
    if not isinstance(x, np.ndarray):
        raise UserError(f"--input {str(path)!r}: not a .npy array (an archive of several)")
    shape, dtype = tuple(model.input.shape), model.input.dtype
    if x.dtype != np.dtype(dtype) or x.shape != shape:
        article = "an" if dtype.startswith("i") else "a"
        raise UserError(f"--input {str(path)!r}: must be {article} {dtype} array of shape "
                        f"{shape} (the model's input {model.input.name!r}), not {x.dtype} "
                        f"{tuple(x.shape)}")
    return x


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRow:
    """One operator as run: where, on what, and what the engine measured.

    Members
    -------
    op_index : int
    opcode : str
    name : str
        The output tensor's name.
    output : int
        The output tensor's index.
    shape : tuple of int
        The output tensor's shape.
    on : str
        ``"tile"`` or ``"host"``.
    macs : int
        Multiply-accumulates (0 for host operators).
    stats : dict
        The engine's statistics for a tile layer (empty for host operators).
    seconds : float
        Wall time of the operator.
    """

    op_index: int
    opcode: str
    name: str
    output: int
    shape: tuple[int, ...]
    on: str
    macs: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op_index, "opcode": self.opcode, "name": self.name,
                "tensor": self.output, "shape": list(self.shape), "on": self.on,
                "macs": self.macs, "seconds": round(self.seconds, 6),
                **{k: _jsonable(v) for k, v in self.stats.items()}}


@dataclass(frozen=True, eq=False)
class Inference:
    """One run of a model: every computed tensor by index, and a row per operator."""

    values: dict[int, np.ndarray]
    rows: tuple[LayerRow, ...]
    output: np.ndarray


def run_model(model: TfliteModel, x: np.ndarray, engine: Engine) -> Inference:
    """Run ``model`` on input ``x``: tile operators on ``engine``, the others on the host.

    Raises
    ------
    RuntimeError
        When the engine returns a tensor of the wrong shape or type.
    """
    values: dict[int, np.ndarray] = {t.index: t.data for t in model.tensors if t.is_constant}
    values[model.inputs[0]] = np.asarray(x, dtype=model.input.dtype).reshape(
        model.input.shape)
    rows = []
    for op in model.operators:
        out = model.tensors[op.outputs[0]]
        start = time.perf_counter()
        if op.index in model.layers:
            layer = model.layers[op.index]
            y, stats = engine.run(layer, values[op.inputs[0]])
            y = np.asarray(y)
            if y.dtype != np.dtype(out.dtype) or y.shape != tuple(out.shape):
                raise RuntimeError(f"engine {engine.name!r} returned {y.dtype} {y.shape} for "
                                   f"{op.label()}, not {out.dtype} {tuple(out.shape)}")
            rows.append(LayerRow(op.index, op.opcode, out.name, out.index, out.shape, "tile",
                                 layer.macs, dict(stats), time.perf_counter() - start))
        else:
            y = run_host_operator(op, model.tensors, values)
            rows.append(LayerRow(op.index, op.opcode, out.name, out.index, out.shape, "host",
                                 seconds=time.perf_counter() - start))
        values[out.index] = y
    return Inference(values, tuple(rows), values[model.outputs[0]])


# -- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """The first tensor (in execution order) that differs from LiteRT's.

    Members
    -------
    tensor : int
        Its index.
    name : str
    op_index, opcode :
        The operator that produced it.
    position : tuple of int
        The first differing element (row-major).
    got, want : int or float
        The values there: ours and LiteRT's.
    count : int
        How many elements differ.
    """

    tensor: int
    name: str
    op_index: int
    opcode: str
    position: tuple[int, ...]
    got: int | float
    want: int | float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "name": self.name, "op": self.op_index,
                "opcode": self.opcode, "position": list(self.position), "got": self.got,
                "want": self.want, "count": self.count}

    def describe(self) -> str:
        return (f"tensor {self.tensor} ({self.name!r}, output of operator {self.op_index} "
                f"{self.opcode}) differs at {list(self.position)}: {self.got} instead of "
                f"{self.want} ({self.count} elements differ)")


@dataclass(frozen=True)
class Comparison:
    """Every operator output compared with LiteRT: ``match`` when all are equal (and every
    one could be compared), ``first`` the first that is not, ``ops`` per operator index
    whether it matched (``None``: LiteRT gave no tensor to compare it with, as after an
    operator it crashed in)."""

    match: bool
    first: Mismatch | None
    ops: dict[int, bool | None]

    @property
    def unchecked(self) -> list[int]:
        """Operators whose output could not be compared."""
        return [i for i, v in self.ops.items() if v is None]


def compare(model: TfliteModel, inference: Inference,
            reference: dict[int, np.ndarray]) -> Comparison:
    """Compare every operator's output tensor of ``inference`` with ``reference`` (LiteRT's
    tensors by index), bit for bit, in execution order; an operator whose output
    ``reference`` lacks is not compared."""
    first = None
    ops: dict[int, bool | None] = {}
    for op in model.operators:
        i = op.outputs[0]
        if i not in reference:
            ops[op.index] = None
            continue
        got, want = inference.values[i], reference[i]
        equal = got.shape == want.shape and bool(np.array_equal(got, want))
        ops[op.index] = equal
        if not equal and first is None:
            if got.shape != want.shape:
                pos, g, w, n = (), -1, -1, int(max(got.size, want.size))
            else:
                diff = np.argwhere(got != want)
                pos = tuple(int(v) for v in diff[0])
                g, w, n = got[pos].item(), want[pos].item(), len(diff)
            first = Mismatch(i, model.tensors[i].name, op.index, op.opcode, pos, g, w, n)
    return Comparison(first is None and None not in ops.values(), first, ops)


# -- reporting --------------------------------------------------------------------------------


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _cell(stats: dict[str, Any], key: str) -> str:
    v = stats.get(key)
    if v is None:
        return "-"
    if key == "utilisation":
        return f"{float(v):.1%}"
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return f"{int(v):,}"
    return str(v)


def totals(rows: tuple[LayerRow, ...] | list[LayerRow]) -> dict[str, Any]:
    """Sums over the tile layers: MACs, and each of cycles, ideal, bytes_in, bytes_out when
    every tile layer reports it; utilisation as ideal / cycles."""
    tile = [r for r in rows if r.on == "tile"]
    out: dict[str, Any] = {"macs": sum(r.macs for r in tile), "tile_layers": len(tile),
                           "host_operators": len(rows) - len(tile)}
    for key in ("cycles", "ideal", "bytes_in", "bytes_out"):
        if tile and all(isinstance(r.stats.get(key), int | np.integer) for r in tile):
            out[key] = int(sum(int(r.stats[key]) for r in tile))
    if out.get("cycles"):
        out["utilisation"] = out.get("ideal", 0) / out["cycles"] if "ideal" in out else None
    return out


def _flags(stats: dict[str, Any]) -> str:
    """Where a tile layer was requantized, and whether a sum was saturated."""
    if not stats:
        return "-"
    where = str(stats.get("requant", "-"))
    return where + (" OVF" if stats.get("overflow") else "")


def format_table(rows: tuple[LayerRow, ...] | list[LayerRow],
                 matched: dict[int, bool | None] | None = None) -> str:
    """The per-operator table: op, output shape, bits, lanes, cycles, ideal, utilisation,
    bytes in/out, binding side (``-`` where the engine gave nothing), where the layer was
    requantized (``tile`` or ``host``; ``OVF`` when a sum outside int32 was saturated), and
    whether the output equals LiteRT's when ``matched`` is given (``-``: not compared); a
    total line for the tile layers; a footnote per layer the host lowered."""
    head = (f"{'#':>3} {'op':<17} {'shape':<14} {'on':<4} {'bits':>4} {'lanes':>5} "
            f"{'cycles':>11} {'ideal':>11} {'util':>6} {'bytes in':>10} {'bytes out':>10} "
            f"{'binding':>8} {'requant':>8}")
    if matched is not None:
        head += f" {'LiteRT':>6}"
    lines = [head]
    notes = []
    for r in rows:
        s = r.stats
        shape = "x".join(str(d) for d in r.shape)
        mark = "*" if s.get("lowering") else " "
        line = (f"{r.op_index:>3}{mark}{r.opcode[:17]:<17} {shape:<14} {r.on:<4} "
                f"{_cell(s, 'bits'):>4} {_cell(s, 'lanes'):>5} {_cell(s, 'cycles'):>11} "
                f"{_cell(s, 'ideal'):>11} {_cell(s, 'utilisation'):>6} "
                f"{_cell(s, 'bytes_in'):>10} {_cell(s, 'bytes_out'):>10} "
                f"{_cell(s, 'binding'):>8} {_flags(s):>8}")
        if matched is not None:
            m = matched.get(r.op_index)
            line += f" {'-' if m is None else 'equal' if m else 'DIFF':>6}"
        lines.append(line)
        if s.get("lowering"):
            notes.append(f"* {r.op_index}: {s['lowering']}")
        if s.get("narrow"):
            notes.append(f"  {r.op_index}: {s['narrow']}")
    t = totals(rows)
    macs = f"{t['macs']:,} MACs"
    lines.append(f"{'':>3} {'total':<17} {macs:<19} {'':>4} {'':>5} "
                 f"{_cell(t, 'cycles'):>11} {_cell(t, 'ideal'):>11} "
                 f"{_cell(t, 'utilisation'):>6} {_cell(t, 'bytes_in'):>10} "
                 f"{_cell(t, 'bytes_out'):>10}")
    return "\n".join(lines + notes)


def overflowed(rows: tuple[LayerRow, ...] | list[LayerRow]) -> list[int]:
    """Tile layers in which a sum outside int32 was saturated (TFLite's int32 accumulator
    would have wrapped)."""
    return [r.op_index for r in rows if r.stats.get("overflow")]


def inference_report(inference: Inference, comparison: Comparison) -> dict[str, Any]:
    """One run as a JSON-able dict: ``match``, ``first_mismatch`` (or None), a row per
    operator (with its statistics and whether it matched) and the tile layers' totals."""
    return {
        "match": comparison.match,
        "first_mismatch": None if comparison.first is None else comparison.first.to_dict(),
        "layers": [{**r.to_dict(), "match": comparison.ops[r.op_index]}
                   for r in inference.rows],
        "totals": totals(inference.rows),
    }
