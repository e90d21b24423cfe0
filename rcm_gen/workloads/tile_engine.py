"""The tile as an inference engine: a TFLite layer turned into a tile layer (convolution
shape, operands, post-processing, padding value), run on the bit-exact model of the tile
with its cycle model (``model``) or on the tile's RTL in simulation (``rtl``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..conv import ConvShape
from ..errors import ToolFailed, UserError
from ..tile.config import TileConfig
from ..tile.cycles import LayerCycles, plan_cycles
from ..tile.driver import LayerPlan, PostProcess, fold_input_zero_point, plan_layer
from .tflite_model import TileLayer
from .tflite_ref import requantize_double

__all__ = ["ModelEngine", "RTLEngine", "TileRun", "tile_run"]

#: TFLite int8 models: 8-bit signed activations and weights.
_BITS = 8


@dataclass(frozen=True, eq=False)
class TileRun:
    """A TFLite layer as the tile runs it: one convolution per batch item (``inputs``,
    each (C, H, W)), the weights (M, C/groups, K, K), the post-processing (bias with the
    input zero point folded in), the padding value (the input zero point), and whether
    the host rescales the raw sums in floating point afterwards (``host_scale``)."""

    layer: TileLayer
    shape: ConvShape
    inputs: tuple[np.ndarray, ...]
    weights: np.ndarray
    post: PostProcess
    pad_value: int
    host_scale: bool
    lowering: str | None = None

    def plan(self, config: TileConfig) -> LayerPlan:
        try:
            return plan_layer(config, self.shape, _BITS, _BITS, True, post=self.post,
                              pad_value=self.pad_value)
        except ValueError as exc:
            raise UserError(f"{self.layer.label()} cannot run on this design point: {exc}"
                            ) from None

    def output(self, sums: list[np.ndarray]) -> np.ndarray:
        """The layer's int8 output tensor from the tile's results (M, Ho, Wo) per item."""
        layer = self.layer
        items = []
        for y in sums:
            if self.host_scale:  # raw sums, bias included: LiteRT's float rounding
                lo, hi = layer.clamp
                y = requantize_double(np.moveaxis(y, 0, -1), layer.scale,
                                      layer.output_zero_point, lo, hi)
                y = np.moveaxis(y, -1, 0)
            items.append(np.asarray(y).transpose(1, 2, 0))
        out = np.stack(items).astype(np.int8)
        return out.reshape(layer.output_shape)


def host_lowering(layer: TileLayer, config: TileConfig | None = None) -> str | None:
    """Why the host sends ``layer`` to the tile as a 1×1 layer over its im2col windows
    (``None``: the tile runs it as it is): a dilation, a kernel that is not square, strides
    that differ, or (on ``config``) a kernel beyond ``k_max`` or a stride beyond
    ``s_max``."""
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel, layer.stride, layer.dilation
    reasons = []
    if (dh, dw) != (1, 1):
        reasons.append(f"dilation {dh}x{dw}")
    if kh != kw:
        reasons.append(f"kernel {kh}x{kw}")
    if sh != sw:
        reasons.append(f"strides {sh}x{sw}")
    if config is not None and layer.kind != "fc":
        if max(kh, kw) > config.k_max:
            reasons.append(f"kernel {max(kh, kw)} > k_max {config.k_max}")
        if max(sh, sw) > config.s_max:
            reasons.append(f"stride {max(sh, sw)} > s_max {config.s_max}")
    return ", ".join(reasons) or None


def im2col_windows(layer: TileLayer, x: np.ndarray) -> np.ndarray:
    """Each output pixel's kernel window of ``x`` (as TFLite stores it, NHWC), padding
    holding the input zero point, as channels: (N, C·KH·KW, Ho, Wo), channel
    ``(c·KH + ky)·KW + kx`` (so a group's channels stay together, in the order its weights
    flatten)."""
    n = layer.batch
    (h, w), (ho, wo) = layer.input_hw, layer.output_hw
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel, layer.stride, layer.dilation
    top, bottom, left, right = layer.pads
    xs = np.asarray(x, dtype=np.int64).reshape(n, h, w, -1)
    xp = np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)),
                constant_values=layer.input_zero_point)
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(1, 2))
    win = win[:, ::sh, ::sw, :, ::dh, ::dw][:, :ho, :wo]  # (N, Ho, Wo, C, KH, KW)
    return np.ascontiguousarray(win.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2))


def tile_run(layer: TileLayer, x: np.ndarray, config: TileConfig | None = None) -> TileRun:
    """``layer`` with input ``x`` (as TFLite stores it) as the tile runs it: itself, or where
    :func:`host_lowering` gives a reason, a 1×1 layer over its im2col windows that the host
    sends (the bias fold is the same: the windows hold stored values, the padding the zero
    point).

    Raises
    ------
    UserError
        For a layer the tile cannot express (a bias that no longer fits 32 bits once the
        zero point is folded in).
    """
    kh, kw = layer.kernel
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(layer.weights, dtype=np.int64)
    lowering = host_lowering(layer, config)
    if layer.kind == "fc":
        c = layer.in_channels
        shape = ConvShape(c=c, m=layer.out_channels, h=1, w=1, k=1)
        inputs = tuple(row.reshape(c, 1, 1) for row in x.reshape(-1, c))
    elif lowering is not None:
        (ho, wo) = layer.output_hw
        windows = im2col_windows(layer, x)
        shape = ConvShape(c=windows.shape[1], m=layer.out_channels, h=ho, w=wo, k=1,
                          groups=layer.groups)
        inputs = tuple(windows)
    else:
        (h, wd), n = layer.input_hw, layer.batch
        shape = ConvShape(c=layer.in_channels, m=layer.out_channels, h=h, w=wd, k=kh,
                          stride=layer.stride[0], pads=tuple(layer.pads), groups=layer.groups)
        inputs = tuple(x.reshape(n, h, wd, -1)[b].transpose(2, 0, 1) for b in range(n))
    zp = int(layer.input_zero_point)
    bias = fold_input_zero_point(layer.bias, w, zp)
    lo, hi = layer.clamp
    host_scale = layer.requant == "double"
    try:
        post = PostProcess(tuple(bias), tuple(layer.multiplier), tuple(layer.shift),
                           int(layer.output_zero_point), int(lo), int(hi), _BITS, True,
                           requantize=not host_scale)
    except ValueError as exc:
        raise UserError(f"{layer.label()}: the tile cannot express its quantization ({exc})"
                        ) from None
    if lowering is not None:
        w = w.reshape(w.shape[0], -1, 1, 1)
    return TileRun(layer, shape, inputs, w, post, zp, host_scale, lowering)


def _stats(run: TileRun, plan: LayerPlan, lc: LayerCycles, items: int,
           bandwidth: float | None) -> dict[str, Any]:
    cycles, binding = lc.latency(bandwidth)
    return {
        "bits": _BITS, "lanes": lc.lanes, "cycles": cycles * items,
        "compute_cycles": lc.total * items, "ideal": lc.ideal * items,
        "utilisation": lc.macs * items / (cycles * items * plan.config.macs * lc.lanes),
        "bytes_in": lc.traffic["in"] * items, "bytes_out": lc.traffic["out"] * items,
        "binding": binding, "jobs": lc.jobs * items, "tiling": lc.tiling,
        "groups": run.shape.groups,
        "requant": "host" if run.host_scale else "tile",
        "requant_how": ("round(acc*scale) in double precision, on the host (LiteRT's "
                        "reference FULLY_CONNECTED)" if run.host_scale else
                        "fixed-point multiplier and shift in the post-processing unit"),
        "lowering": f"im2col on the host ({run.lowering})" if run.lowering else None,
    }


def _check_config(config: Any) -> TileConfig:
    if not isinstance(config, TileConfig):
        raise UserError("infer needs a tile design point (rcm-small, rcm-default, ...), not a "
                        f"{getattr(config, 'kind', type(config).__name__)} configuration")
    return config


class ModelEngine:
    """The tile's bit-exact model: the exact integer sums the tile accumulates (padding
    holding the input zero point, the folded bias), post-processed as the tile's units do;
    cycles and traffic from the cycle model that the RTL regression checks."""

    name = "model"

    def __init__(self, config: Any, *, simulator: str = "icarus",
                 bandwidth: float | None = None) -> None:
        self.config = _check_config(config)
        self.bandwidth = bandwidth

    def run(self, layer: TileLayer, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from ..tile.simulate import expected_output

        run = tile_run(layer, x, self.config)
        plan = run.plan(self.config)
        lc = plan_cycles(plan)
        sums, overflow = [], False
        for item in run.inputs:
            y, saturated = expected_output(run.shape, item, run.weights, run.post,
                                           run.pad_value)
            sums.append(y)
            overflow |= saturated
        stats = _stats(run, plan, lc, len(run.inputs), self.bandwidth)
        stats["overflow"] = overflow
        return run.output(sums), stats


class RTLEngine:
    """The tile's Verilog in simulation (Icarus or Verilator): each tile layer streamed
    through the RTL by the host driver; the measured cycles must equal the model's."""

    name = "rtl"

    def __init__(self, config: Any, *, simulator: str = "icarus",
                 bandwidth: float | None = None) -> None:
        from ..sim.runner import SIMULATORS

        self.config = _check_config(config)
        if simulator not in SIMULATORS:
            raise UserError(f"--simulator must be one of {', '.join(SIMULATORS)}, not "
                            f"{simulator!r}")
        self.simulator = simulator
        self.bandwidth = bandwidth

    def run(self, layer: TileLayer, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from ..tile.simulate import LayerCase, simulate_layers

        run = tile_run(layer, x, self.config)
        plan = run.plan(self.config)
        lc = plan_cycles(plan)
        with tempfile.TemporaryDirectory(prefix="rcm_infer_") as tmp:
            outs = [Path(tmp) / f"y{i}.npy" for i in range(len(run.inputs))]
            cases = [LayerCase(run.shape, item, run.weights, _BITS, _BITS, True,
                               post=run.post, pad_value=run.pad_value)
                     for item in run.inputs]
            results, sim = simulate_layers(self.config, cases, self.simulator,
                                           workdir=Path(tmp), outputs=outs)
            sums = [np.load(o) for o in outs]
        for r in results:
            if not r["output_ok"]:
                raise ToolFailed(f"{layer.label()}: the RTL output differs from the tile's "
                                 f"model ({r['mismatch']}); log: {sim.log}")
            if r["cycles"] != r["model_cycles"]:
                raise ToolFailed(f"{layer.label()}: the RTL took {r['cycles']} cycles, the "
                                 f"cycle model says {r['model_cycles']}; log: {sim.log}")
        stats = _stats(run, plan, lc, len(run.inputs), self.bandwidth)
        stats.update(rtl_cycles=sum(r["cycles"] for r in results),
                     model_cycles=lc.total * len(run.inputs),
                     overflow=any(r["overflow"] for r in results),
                     sim_wall_s=round(sim.wall_s, 2))
        return run.output(sums), stats
