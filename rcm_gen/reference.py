"""numpy reference models: lane packing, the Sum-Together dot product, integer convolution,
and TFLite's fixed-point requantization.

The vectorised functions here are what the hardware is checked against; each has a naive
plain-loop twin (``*_naive``) that the unit tests use to check the vectorised one.
"""

from __future__ import annotations

import numpy as np

from .config import value_range

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "check_fits",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_naive",
    "requantize",
    "conv2d",
    "conv2d_naive",
    "pack_lanes",
    "saturate_int32",
    "st_dot",
    "st_dot_naive",
    "unpack_lanes",
]


def check_fits(name: str, values: np.ndarray, bits: int, signed: bool) -> None:
    """Raise ``ValueError`` naming the first element of ``values`` outside a ``bits``-wide
    (signed or unsigned) integer, its index and the allowed range."""
    lo, hi = value_range(bits, signed)
    values = np.asarray(values)
    bad = np.argwhere((values < lo) | (values > hi))
    if len(bad):
        index = tuple(int(i) for i in bad[0])
        kind = "signed" if signed else "unsigned"
        raise ValueError(
            f"{name}{list(index)} must fit {bits}-bit {kind} ({lo}..{hi}), "
            f"not {int(values[index])}")


def pack_lanes(values: np.ndarray, width: int, signed: bool = True) -> np.ndarray:
    """Pack the last axis of ``values`` (N lanes) into ``width``-bit words, lane 0 lowest.

    Each lane is ``width // N`` bits; values must fit it (signed or unsigned) and are
    stored in two's complement.  Returns unsigned words as ``int64`` (``uint64`` for
    ``width`` 64 is not supported).
    """
    values = np.asarray(values, dtype=np.int64)
    lanes = values.shape[-1]
    n = width // lanes
    check_fits("lane value", values, n, signed)
    mask = (1 << n) - 1
    shifts = np.arange(lanes, dtype=np.int64) * n
    return np.sum((values & mask) << shifts, axis=-1, dtype=np.int64)


def unpack_lanes(words: np.ndarray, width: int, lanes: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: a new last axis of ``lanes`` lane values."""
    words = np.asarray(words, dtype=np.int64)
    n = width // lanes
    shifts = np.arange(lanes, dtype=np.int64) * n
    raw = (words[..., None] >> shifts) & ((1 << n) - 1)
    if signed:
        raw = np.where(raw >= 1 << (n - 1), raw - (1 << n), raw)
    return raw


def st_dot(a: np.ndarray, w: np.ndarray, width: int, lanes: int, act_signed: bool) -> np.ndarray:
    """What the Sum-Together multiplier returns for packed words ``a`` and ``w``:
    the sum over lanes of a_i · w_i (weights always signed)."""
    av = unpack_lanes(a, width, lanes, act_signed)
    wv = unpack_lanes(w, width, lanes, True)
    return np.sum(av * wv, axis=-1, dtype=np.int64)


def _lane_value_naive(word: int, width: int, lanes: int, lane: int, signed: bool) -> int:
    n = width // lanes
    value = 0
    for bit in range(n):
        if (word >> (lane * n + bit)) & 1:
            weight = 1 << bit
            if signed and bit == n - 1:
                weight = -weight
            value += weight
    return value


def st_dot_naive(a: int, w: int, width: int, lanes: int, act_signed: bool) -> int:
    """Plain-loop twin of :func:`st_dot` for one pair of words."""
    total = 0
    for lane in range(lanes):
        total += (_lane_value_naive(int(a), width, lanes, lane, act_signed)
                  * _lane_value_naive(int(w), width, lanes, lane, True))
    return total


def _padded(x: np.ndarray, pads: tuple[int, int, int, int], pad_value: int) -> np.ndarray:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right)), constant_values=pad_value)


def _pads(padding: int, pads: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    return tuple(pads) if pads is not None else (padding,) * 4  # type: ignore[return-value]


def conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0, groups: int = 1,
           pads: tuple[int, int, int, int] | None = None, pad_value: int = 0) -> np.ndarray:
    """Exact integer cross-correlation, as ``torch.nn.functional.conv2d`` computes it:
    ``x`` is (C, H, W), ``w`` is (M, C/groups, K, K), result int64 (M, Ho, Wo).  The input
    is padded with ``pad_value`` (0, or a zero point), ``padding`` on every side or
    ``pads`` = (top, bottom, left, right)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    c, h, wd = x.shape
    m, cg, k, k2 = w.shape
    assert c == cg * groups and m % groups == 0 and k == k2
    top, bottom, left, right = _pads(padding, pads)
    xp = _padded(x, (top, bottom, left, right), pad_value)
    ho = (h + top + bottom - k) // stride + 1
    wo = (wd + left + right - k) // stride + 1
    mg = m // groups
    out = np.zeros((m, ho, wo), dtype=np.int64)
    for g in range(groups):
        xg = xp[g * cg:(g + 1) * cg]
        wg = w[g * mg:(g + 1) * mg]
        for ky in range(k):
            for kx in range(k):
                rows = slice(ky, ky + stride * (ho - 1) + 1, stride)
                cols = slice(kx, kx + stride * (wo - 1) + 1, stride)
                out[g * mg:(g + 1) * mg] += np.einsum("mc,chw->mhw", wg[:, :, ky, kx],
                                                      xg[:, rows, cols], dtype=np.int64)
    return out


def conv2d_naive(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0,
                 groups: int = 1, pads: tuple[int, int, int, int] | None = None,
                 pad_value: int = 0) -> np.ndarray:
    """Plain-loop twin of :func:`conv2d`."""
    c, h, wd = x.shape
    m, cg, k, _ = w.shape
    top, bottom, left, right = _pads(padding, pads)
    ho = (h + top + bottom - k) // stride + 1
    wo = (wd + left + right - k) // stride + 1
    mg = m // groups
    out = np.zeros((m, ho, wo), dtype=np.int64)
    for mo in range(m):
        g = mo // mg
        for oy in range(ho):
            for ox in range(wo):
                acc = 0
                for ci in range(cg):
                    for ky in range(k):
                        for kx in range(k):
                            iy = oy * stride + ky - top
                            ix = ox * stride + kx - left
                            inside = 0 <= iy < h and 0 <= ix < wd
                            value = int(x[g * cg + ci, iy, ix]) if inside else pad_value
                            acc += value * int(w[mo, ci, ky, kx])
                out[mo, oy, ox] = acc
    return out


# -- TFLite fixed-point requantization --------------------------------------------------------
#
# What TFLite's reference kernels do to an int32 accumulator (``MultiplyByQuantizedMultiplier``
# in tensorflow/lite/kernels/internal/common.h, the default double-rounding variant):
# multiply by a 32-bit fixed-point multiplier M (a Q0.31 fraction) with a left shift for
# positive ``shift``, a rounding right shift for negative ``shift``.

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def saturate_int32(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` clamped to int32, and where it was clamped."""
    x = np.asarray(x, dtype=np.int64)
    return np.clip(x, INT32_MIN, INT32_MAX), (x < INT32_MIN) | (x > INT32_MAX)


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray,
                                     shift: np.ndarray) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier(x, multiplier, shift)`` on int32 values,
    elementwise (arrays broadcast).  ``x << shift`` for a positive shift wraps to int32 as
    C++ does on two's-complement machines."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    a = _wrap32(x << left)
    # SaturatingRoundingDoublingHighMul(a, m): (a·m + nudge) / 2^31, truncating
    ab = a * m
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(v >= 0, v >> 31, -((-v) >> 31))
    high = np.where((a == INT32_MIN) & (m == INT32_MIN), INT32_MAX, high)
    # RoundingDivideByPOT(high, right)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def multiply_by_quantized_multiplier_naive(x: int, multiplier: int, shift: int) -> int:
    """Plain-integer twin of :func:`multiply_by_quantized_multiplier`, written after the
    C++ (``int32`` wrap-around, truncating division)."""
    left, right = max(shift, 0), max(-shift, 0)
    a = ((x * (1 << left) + (1 << 31)) % (1 << 32)) - (1 << 31)
    if a == INT32_MIN and multiplier == INT32_MIN:
        high = INT32_MAX
    else:
        ab = a * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        num = ab + nudge
        high = abs(num) // (1 << 31) * (1 if num >= 0 else -1)
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, zero_point: int,
               lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """An accumulator (bias already added) to the output's integer domain, as a TFLite
    int8 kernel does: saturate to int32, multiply by the quantized multiplier, add the
    output zero point, clamp to ``[lo, hi]`` (the activation range).  Per-channel
    ``multiplier``/``shift`` broadcast against ``acc``.  Returns the values and where the
    accumulator was saturated (TFLite's int32 accumulator would have overflowed)."""
    x, saturated = saturate_int32(acc)
    y = multiply_by_quantized_multiplier(x, multiplier, shift) + zero_point
    return np.clip(y, lo, hi), saturated
