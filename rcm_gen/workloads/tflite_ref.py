"""A bit-exact numpy model of LiteRT's int8 reference kernels for the operators a tile runs:
CONV_2D (dense and grouped), DEPTHWISE_CONV_2D and FULLY_CONNECTED.

What a tile must reproduce, step by step (``reference_integer_ops::ConvPerChannel``,
``DepthwiseConvPerChannel``, ``FullyConnected``):

1. ``acc = sum(w · (x - input_zero_point)) + bias`` over the kernel window, where taps in the
   padding are skipped — the same as padding with the input zero point.
2. Requantize: for convolutions ``MultiplyByQuantizedMultiplier(acc, multiplier, shift)``
   (:func:`rcm_gen.reference.multiply_by_quantized_multiplier`, the double-rounding
   variant LiteRT is built with); for FULLY_CONNECTED, LiteRT's reference kernel computes
   ``round(acc · scale)`` in double precision instead (:func:`requantize_double`).
3. Add the output zero point and clamp to the fused activation's range.
"""

from __future__ import annotations

import numpy as np

from ..reference import multiply_by_quantized_multiplier_int64, requantize
from .tflite_model import TileLayer

__all__ = ["accumulate", "accumulate_naive", "requantize_double", "requantize_layer",
           "run_layer"]


def _windows(layer: TileLayer, x: np.ndarray) -> np.ndarray:
    """(x - zp) with zero padding as kernel windows: (N, Ho, Wo, C, KH, KW) int64."""
    n, h, w, c = x.shape
    kh, kw = layer.kernel
    sh, sw = layer.stride
    ho, wo = layer.output_hw
    dh, dw = layer.dilation
    top, bottom, left, right = layer.pads
    xs = x.astype(np.int64) - layer.input_zero_point
    xp = np.pad(xs, ((0, 0), (top, bottom), (left, right), (0, 0)))
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(1, 2))
    return win[:, ::sh, ::sw, :, ::dh, ::dw][:, :ho, :wo]


def accumulate(layer: TileLayer, x: np.ndarray) -> np.ndarray:
    """The layer's int32 accumulators, bias included, before requantization.

    Parameters
    ----------
    layer : TileLayer
    x : numpy.ndarray
        The input tensor as TFLite stores it (int8; NHWC for convolutions, read as
        ``(-1, in_channels)`` for a fully connected layer).

    Returns
    -------
    numpy.ndarray
        int64, ``(N, Ho, Wo, M)`` (``(rows, M)`` for a fully connected layer): the exact sum;
        it equals TFLite's int32 accumulator whenever that does not overflow.
    """
    x = np.asarray(x)
    m = layer.out_channels
    if layer.kind == "fc":
        xs = x.reshape(-1, layer.in_channels).astype(np.int64) - layer.input_zero_point
        w = layer.weights.reshape(m, -1).astype(np.int64)
        return xs @ w.T + layer.bias.astype(np.int64)
    win = _windows(layer, x.reshape(layer.input_shape))
    n, ho, wo = win.shape[:3]
    g = layer.groups
    cg = layer.in_channels // g
    kh, kw = layer.kernel
    # integer matmul: exact, and single-threaded (no BLAS threads contending for cores)
    if g == 1:
        cols = win.reshape(n * ho * wo, -1)
        w = layer.weights.reshape(m, -1).astype(np.int64)
        acc = (cols @ w.T).reshape(n, ho, wo, m)
    else:
        cols = win.reshape(n * ho * wo, g, cg * kh * kw).transpose(1, 0, 2)
        w = layer.weights.reshape(g, m // g, cg * kh * kw).astype(np.int64)
        acc = np.matmul(cols, w.transpose(0, 2, 1))  # (g, pixels, m/g)
        acc = acc.transpose(1, 0, 2).reshape(n, ho, wo, m)
    return acc + layer.bias.astype(np.int64)


def accumulate_naive(layer: TileLayer, x: np.ndarray) -> np.ndarray:
    """Plain-loop twin of :func:`accumulate`, written after the C++ kernels' loops (one
    batch; taps outside the input skipped)."""
    m = layer.out_channels
    if layer.kind == "fc":
        rows = np.asarray(x).reshape(-1, layer.in_channels)
        out = np.zeros((len(rows), m), dtype=np.int64)
        for b, row in enumerate(rows):
            for o in range(m):
                acc = 0
                for d in range(layer.in_channels):
                    acc += int(layer.weights[o, d, 0, 0]) * (int(row[d])
                                                            - layer.input_zero_point)
                out[b, o] = acc + int(layer.bias[o])
        return out
    x = np.asarray(x).reshape(layer.input_shape)
    _, h, w, _ = x.shape
    ho, wo = layer.output_hw
    kh, kw = layer.kernel
    sh, sw = layer.stride
    dh, dw = layer.dilation
    top, _, left, _ = layer.pads
    cg = layer.in_channels // layer.groups
    per_group = m // layer.groups
    out = np.zeros((1, ho, wo, m), dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            for o in range(m):
                g = o // per_group
                acc = 0
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * sh - top + ky * dh, ox * sw - left + kx * dw
                        if not (0 <= iy < h and 0 <= ix < w):
                            continue
                        for c in range(cg):
                            acc += int(layer.weights[o, c, ky, kx]) * (
                                int(x[0, iy, ix, g * cg + c]) - layer.input_zero_point)
                out[0, oy, ox, o] = acc + int(layer.bias[o])
    return out


def requantize_double(acc: np.ndarray, scale: np.ndarray, zero_point: int, lo: int,
                      hi: int) -> np.ndarray:
    """LiteRT's reference FULLY_CONNECTED requantization: ``round(double(acc) · scale)``
    (``std::round``, halves away from zero), plus the zero point, clamped to ``[lo, hi]``."""
    v = np.asarray(acc, dtype=np.float64) * np.asarray(scale, dtype=np.float64)
    t = np.trunc(v)
    r = t + np.sign(v) * (np.abs(v - t) >= 0.5)
    return np.clip(r.astype(np.int64) + zero_point, lo, hi)


def requantize_layer(layer: TileLayer, acc: np.ndarray, rounding: str = "double"
                     ) -> np.ndarray:
    """Accumulators (last axis: output channel) to the layer's output values (int8, or
    int16 for a 16x8 layer), the way LiteRT's reference kernel for the layer does it
    (``layer.requant``), in a build of TFLite that rounds as ``rounding`` says: ``double``
    (LiteRT's wheel) or ``single`` (``TFLITE_SINGLE_ROUNDING``, which changes only the
    int32 ``MultiplyByQuantizedMultiplier``)."""
    lo, hi = layer.clamp
    dtype = np.int16 if layer.act_bits == 16 else np.int8
    if layer.requant == "double":
        y = requantize_double(acc, layer.scale, layer.output_zero_point, lo, hi)
    elif layer.requant == "fixed64":  # the int64 overload, the same in both builds
        v = multiply_by_quantized_multiplier_int64(acc, layer.multiplier, layer.shift)
        y = np.clip(_wrap32(v) + layer.output_zero_point, lo, hi)
    else:
        # TFLite's accumulator is int32: wrap as it would (it never does in practice)
        acc32 = _wrap32(acc)
        if rounding == "single":
            m = layer.multiplier.astype(np.int64)
            total = 31 - layer.shift.astype(np.int64)
            v = (acc32 * m + (np.int64(1) << (total - 1))) >> total
            y = np.clip(_wrap32(v) + layer.output_zero_point, lo, hi)
        elif rounding == "double":
            y, _ = requantize(acc32, layer.multiplier, layer.shift, layer.output_zero_point,
                              lo, hi)
        else:
            raise ValueError(f"Rounding must be double or single, not {rounding!r}")
    return y.astype(dtype)


def _wrap32(x) -> np.ndarray:
    return ((np.asarray(x, np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def run_layer(layer: TileLayer, x: np.ndarray, rounding: str = "double") -> np.ndarray:
    """The layer's output tensor (in ``layer.output_shape``) for input ``x``, bit-exact
    with LiteRT's reference kernel (built with ``rounding``)."""
    return requantize_layer(layer, accumulate(layer, x), rounding).reshape(layer.output_shape)
