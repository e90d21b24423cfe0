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
from ..reference import reduced_multiplier
from ..tile.config import TileConfig
from ..tile.cycles import LayerCycles, plan_cycles
from ..tile.driver import LayerPlan, PostProcess, fold_input_zero_point, plan_layer
from .tflite_model import TileLayer
from .tflite_ref import requantize_layer

__all__ = ["ModelEngine", "RTLEngine", "TileRun", "host_lowering", "im2col_windows",
           "narrow_widths", "tile_run"]

@dataclass(frozen=True, eq=False)
class TileRun:
    """A TFLite layer as the tile runs it: one convolution per batch item (``inputs``,
    each (C, H, W), the stored values less ``offset``), the weights (M, C/groups, K, K),
    the post-processing (the bias with the input zero point, less the offset, folded in),
    the padding value (the input zero point less the offset), the operand widths and
    signedness the tile runs them at, why the host requantizes the raw sums instead of the
    tile (``host_requant``, ``None`` when the tile does), why the host lowered the layer to
    im2col windows (``lowering``) and why the layer runs narrower than its tensors'
    containers (``narrow``)."""

    layer: TileLayer
    shape: ConvShape
    inputs: tuple[np.ndarray, ...]
    weights: np.ndarray
    post: PostProcess
    pad_value: int
    host_requant: str | None
    lowering: str | None = None
    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = True
    offset: int = 0
    narrow: str | None = None
    rounding: str = "double"
    host_bias: np.ndarray | None = None

    @property
    def host_scale(self) -> bool:
        return self.host_requant is not None

    def plan(self, config: TileConfig) -> LayerPlan:
        try:
            return plan_layer(config, self.shape, self.act_bits, self.weight_bits,
                              self.act_signed, post=self.post, pad_value=self.pad_value)
        except ValueError as exc:
            raise UserError(f"{self.layer.label()} cannot run on this design point: {exc}"
                            ) from None

    def output(self, sums: list[np.ndarray]) -> np.ndarray:
        """The layer's output tensor (int8, or int16 for a 16x8 layer) from the tile's
        results (M, Ho, Wo) per item: the values themselves, or raw sums that the host
        requantizes as LiteRT's kernel does."""
        layer = self.layer
        dtype = np.int16 if layer.act_bits == 16 else np.int8
        items = []
        for y in sums:
            if self.host_scale:  # raw sums (bias included unless the host adds it)
                acc = np.moveaxis(np.asarray(y, np.int64), 0, -1)
                if self.host_bias is not None:
                    acc = acc + self.host_bias
                y = np.moveaxis(requantize_layer(layer, acc, self.rounding), -1, 0)
            items.append(np.asarray(y).transpose(1, 2, 0))
        out = np.stack(items).astype(dtype)
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


def narrow_widths(layer: TileLayer, config: TileConfig | None = None
                  ) -> tuple[int, int, bool, int, str | None]:
    """The operand widths a layer's data provably needs: ``(act_bits, weight_bits,
    act_signed, offset, reason)``.  Activations whose producer clamps them to at most 16
    levels (``layer.input_range``) run as 4-bit unsigned values ``x − lo`` (the offset
    moves with them: a ReLU output with zero point −128 holds −128…−113, 0…15 once −128 is
    taken off), provided the padding value (the zero point less the offset) fits as well;
    int8 weights all within −8…7 run as 4-bit weights.  Only where the design point has a
    faster mode for the narrower widths (``config``; any when ``None``)."""
    act_bits, weight_bits, signed, offset = layer.act_bits, layer.weight_bits, True, 0
    reasons = []
    lo, hi = layer.input_range
    zp = layer.input_zero_point
    padded = any(layer.pads) and layer.kind != "fc"
    if act_bits == 8 and hi - lo <= 15 and (not padded or lo <= zp <= hi):
        act_bits, signed, offset = 4, False, lo
        reasons.append(f"a4: input {lo}..{hi} ({layer.input_range_source}), sent as x-({lo})")
    if weight_bits == 8 and int(np.abs(layer.weights.astype(np.int64) + 0).max(initial=0)) \
            <= 7 and int(layer.weights.min(initial=0)) >= -8:
        weight_bits = 4
        reasons.append("w4: weights within -8..7")
    if config is not None and reasons:
        mac = config.mac
        def rate(a: int, w: int) -> int:
            return (mac.mode_for_bits(a, w).products if mac.is_fused
                    else mac.lanes_for_bits(a, w))
        if rate(act_bits, weight_bits) <= rate(layer.act_bits, layer.weight_bits):
            return layer.act_bits, layer.weight_bits, True, 0, None
    return act_bits, weight_bits, signed, offset, "; ".join(reasons) or None


def tile_run(layer: TileLayer, x: np.ndarray, config: TileConfig | None = None,
             rounding: str = "double", narrow: bool = True) -> TileRun:
    """``layer`` with input ``x`` (as TFLite stores it) as the tile runs it: itself, or where
    :func:`host_lowering` gives a reason, a 1×1 layer over its im2col windows that the host
    sends (the bias fold is the same: the windows hold stored values, the padding the zero
    point); at the narrowest widths its data provably need (:func:`narrow_widths`, unless
    ``narrow`` is false); requantized on the tile in ``rounding`` (``double`` or
    ``single``: TFLite's int32 requantization in LiteRT's or TFLite Micro's build; a 16x8
    layer's int64 requantization is ``wide`` either way), or on the host where LiteRT's
    kernel rounds in floating point (FULLY_CONNECTED) or the bias does not fit the tile's
    32 bits.
    """
    if rounding not in ("double", "single"):
        raise UserError(f"--rounding must be double or single, not {rounding!r}")
    kh, kw = layer.kernel
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(layer.weights, dtype=np.int64)
    lowering = host_lowering(layer, config)
    act_bits, weight_bits, act_signed, offset, why = (
        narrow_widths(layer, config) if narrow else
        (layer.act_bits, layer.weight_bits, True, 0, None))
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
    if offset:
        inputs = tuple(item - offset for item in inputs)
    zero = int(layer.input_zero_point) - offset  # what TFLite's padding holds, as sent
    bias = fold_input_zero_point(layer.bias, w, zero)
    # the padding value matters only where there is padding (a narrow layer's zero point
    # may lie outside its narrow range when nothing is padded)
    padded = layer.kind != "fc" and (lowering is not None or any(layer.pads))
    pad = zero if padded or not offset else 0
    lo, hi = layer.clamp
    host_requant = None
    if layer.requant == "double":
        host_requant = "LiteRT rounds FULLY_CONNECTED as round(acc*scale) in double precision"
    lo32, hi32 = -(1 << 31), (1 << 31) - 1
    host_bias = None
    if np.any((bias < lo32) | (bias > hi32)):
        host_requant = "the folded bias does not fit the tile's 32 bits"
        host_bias, bias = bias, np.zeros_like(bias)
    multiplier = np.asarray(layer.multiplier, dtype=np.int64)
    tile_rounding = rounding
    if layer.requant == "fixed64":
        multiplier, tile_rounding = reduced_multiplier(multiplier), "wide"
    try:
        post = PostProcess(tuple(bias), tuple(multiplier), tuple(layer.shift),
                           int(layer.output_zero_point), int(lo), int(hi), layer.act_bits,
                           True, requantize=host_requant is None, rounding=tile_rounding)
    except ValueError as exc:
        raise UserError(f"{layer.label()}: the tile cannot express its quantization ({exc})"
                        ) from None
    if lowering is not None:
        w = w.reshape(w.shape[0], -1, 1, 1)
    return TileRun(layer, shape, inputs, w, post, pad, host_requant, lowering, act_bits,
                   weight_bits, act_signed, offset, why, rounding, host_bias)


def _stats(run: TileRun, plan: LayerPlan, lc: LayerCycles, items: int,
           bandwidth: float | None) -> dict[str, Any]:
    cycles, binding = lc.latency(bandwidth)
    return {
        "bits": f"{run.act_bits}x{run.weight_bits}", "lanes": lc.lanes,
        "cycles": cycles * items,
        "compute_cycles": lc.total * items, "ideal": lc.ideal * items,
        "utilisation": lc.macs * items / (cycles * items * plan.config.macs * lc.lanes),
        "bytes_in": lc.traffic["in"] * items, "bytes_out": lc.traffic["out"] * items,
        "binding": binding, "jobs": lc.jobs * items, "tiling": lc.tiling,
        "groups": run.shape.groups,
        "requant": "host" if run.host_scale else "tile",
        "requant_how": (f"on the host: {run.host_requant}" if run.host_scale else
                        f"in the post-processing unit, {run.post.rounding} rounding"),
        "lowering": f"im2col on the host ({run.lowering})" if run.lowering else None,
        "narrow": run.narrow, "act_bits": run.act_bits, "weight_bits": run.weight_bits,
        "mode": plan.mode.name,
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
                 bandwidth: float | None = None, rounding: str = "double",
                 narrow: bool = True) -> None:
        self.config = _check_config(config)
        self.bandwidth = bandwidth
        self.rounding, self.narrow = rounding, narrow

    def run(self, layer: TileLayer, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from ..tile.simulate import expected_output

        run = tile_run(layer, x, self.config, self.rounding, self.narrow)
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
                 bandwidth: float | None = None, rounding: str = "double",
                 narrow: bool = True) -> None:
        from ..sim.runner import SIMULATORS

        self.config = _check_config(config)
        self.rounding, self.narrow = rounding, narrow
        if simulator not in SIMULATORS:
            raise UserError(f"--simulator must be one of {', '.join(SIMULATORS)}, not "
                            f"{simulator!r}")
        self.simulator = simulator
        self.bandwidth = bandwidth

    def run(self, layer: TileLayer, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        from ..tile.simulate import LayerCase, simulate_layers

        run = tile_run(layer, x, self.config, self.rounding, self.narrow)
        plan = run.plan(self.config)
        lc = plan_cycles(plan)
        with tempfile.TemporaryDirectory(prefix="rcm_infer_") as tmp:
            outs = [Path(tmp) / f"y{i}.npy" for i in range(len(run.inputs))]
            cases = [LayerCase(run.shape, item, run.weights, run.act_bits, run.weight_bits,
                               run.act_signed, post=run.post, pad_value=run.pad_value)
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
