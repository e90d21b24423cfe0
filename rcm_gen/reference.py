"""numpy reference models: lane packing, the Sum-Together and fusion dot products, integer
convolution, and TFLite's fixed-point requantization.

The vectorised functions here are what the hardware is checked against; each has a naive
plain-loop twin (``*_naive``) that the unit tests use to check the vectorised one.
"""

from __future__ import annotations

import numpy as np

from .config import MacMode, value_range

__all__ = [
    "mode_dot",
    "mode_dot_naive",
    "pack_operands",
    "pack_words",
    "unpack_operands",
    "unpack_words",
    "INT32_MAX",
    "INT32_MIN",
    "check_fits",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_int64",
    "multiply_by_quantized_multiplier_naive",
    "multiply_by_quantized_multiplier_single",
    "reduced_multiplier",
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


# -- any mode: Sum-Together lanes and fusion blocks ---------------------------------------------
#
# Words wider than 62 bits (a fusion MAC's operands) are numpy object arrays of Python ints.


def pack_words(values: np.ndarray, bits: int, signed: bool = True) -> np.ndarray:
    """Pack the last axis of ``values`` into words of ``bits``-bit lanes, lane 0 lowest.

    Values must fit a lane (signed or unsigned; two's complement in the word).  The words
    are ``int64`` when they fit 62 bits, else an object array of Python ints.
    """
    values = np.asarray(values, dtype=np.int64)
    lanes = values.shape[-1]
    check_fits("lane value", values, bits, signed)
    raw = values & ((1 << bits) - 1)
    if lanes * bits <= 62:
        shifts = np.arange(lanes, dtype=np.int64) * bits
        return np.sum(raw << shifts, axis=-1, dtype=np.int64)
    shifts = np.array([i * bits for i in range(lanes)], dtype=object)
    return np.sum(raw.astype(object) << shifts, axis=-1)


def unpack_words(words: np.ndarray, bits: int, lanes: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_words`: a new last axis of ``lanes`` lane values (int64)."""
    words = np.asarray(words)
    if words.dtype != object and lanes * bits <= 62:
        shifts = np.arange(lanes, dtype=np.int64) * bits
        raw = (words.astype(np.int64)[..., None] >> shifts) & ((1 << bits) - 1)
    else:
        shifts = np.array([i * bits for i in range(lanes)], dtype=object)
        raw = ((words.astype(object)[..., None] >> shifts) & ((1 << bits) - 1)).astype(np.int64)
    if signed:
        raw = np.where(raw >= 1 << (bits - 1), raw - (1 << bits), raw)
    return raw


def pack_operands(act: np.ndarray, weights: np.ndarray, mode: MacMode, act_signed: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The activation and weight words of ``mode`` for dot products of ``act`` and
    ``weights`` (last axes: the ``mode.products`` terms, in order — e.g. consecutive input
    channels).  Activations go to the activation word in order; weights go to the weight
    word in :meth:`rcm_gen.config.MacMode.weight_order` (transposed in a fusion mode)."""
    act = np.asarray(act, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    for name, v in (("activations", act), ("weights", weights)):
        if v.shape[-1] != mode.products:
            raise ValueError(f"Mode {mode.name} takes {mode.products} terms of {name}, not "
                             f"{v.shape[-1]}")
    order = np.array(mode.weight_order(), dtype=np.int64)
    return (pack_words(act, mode.act_bits, act_signed),
            pack_words(weights[..., order], mode.weight_bits, True))


def unpack_operands(a: np.ndarray, w: np.ndarray, mode: MacMode, act_signed: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_operands`: the terms of the activation and weight words."""
    av = unpack_words(a, mode.act_bits, mode.products, act_signed)
    wl = unpack_words(w, mode.weight_bits, mode.products, True)
    wv = np.empty_like(wl)
    wv[..., np.array(mode.weight_order(), dtype=np.int64)] = wl
    return av, wv


def mode_dot(a: np.ndarray, w: np.ndarray, mode: MacMode, act_signed: bool) -> np.ndarray:
    """What a MAC's multiplier returns in ``mode`` for the words ``a`` and ``w``: the dot
    product of their terms (weights always signed)."""
    av, wv = unpack_operands(a, w, mode, act_signed)
    return np.sum(av * wv, axis=-1, dtype=np.int64)


def _field_naive(word: int, low: int, bits: int, signed: bool) -> int:
    value = 0
    for bit in range(bits):
        if (word >> (low + bit)) & 1:
            weight = 1 << bit
            if signed and bit == bits - 1:
                weight = -weight
            value += weight
    return value


def mode_dot_naive(a: int, w: int, mode: MacMode, act_signed: bool) -> int:
    """Plain-loop twin of :func:`mode_dot` for one pair of words, from the word layout as
    the hardware sees it: Sum-Together lane k of each word, or in a fusion mode activation
    lane h of W-bit block g times weight lane g of block h."""
    a, w = int(a), int(w)
    total = 0
    if not mode.fused:
        for k in range(mode.products):
            total += (_field_naive(a, k * mode.act_bits, mode.act_bits, act_signed)
                      * _field_naive(w, k * mode.weight_bits, mode.weight_bits, True))
        return total
    width = mode.act_lanes * mode.act_bits
    for g in range(mode.weight_lanes):
        for h in range(mode.act_lanes):
            total += (_field_naive(a, g * width + h * mode.act_bits, mode.act_bits, act_signed)
                      * _field_naive(w, h * width + g * mode.weight_bits, mode.weight_bits,
                                     True))
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


def multiply_by_quantized_multiplier_single(x: np.ndarray, multiplier: np.ndarray,
                                            shift: np.ndarray) -> np.ndarray:
    """``MultiplyByQuantizedMultiplier`` as ``TFLITE_SINGLE_ROUNDING`` builds define it:
    ``(x·multiplier + 2^(30 − shift)) >> (31 − shift)``, one rounding (halves up), for any
    integer ``x`` (int32 sums, or the whole sums of 16x8 layers) — computed exactly on
    Python integers."""
    x, m, s = np.broadcast_arrays(np.asarray(x), np.asarray(multiplier, dtype=np.int64),
                                  np.asarray(shift, dtype=np.int64))
    total = 31 - s
    if x.dtype != object and np.all(np.abs(x) <= 1 << 32) and np.all(np.abs(m) < 1 << 31):
        x = x.astype(np.int64)  # |x·m| < 2^63: exact in int64
        return (x * m + (np.int64(1) << (total - 1))) >> total
    if x.dtype != object and np.all(m % (1 << 16) == 0) and np.all(total >= 17) \
            and np.all(np.abs(x) < 1 << 47):
        x = x.astype(np.int64)  # a reduced multiplier: drop its 16 zero bits first
        return (x * (m >> 16) + (np.int64(1) << (total - 17))) >> (total - 16)
    xo = x.astype(object)
    out = (xo * m.astype(object) + (np.ones_like(xo) << (total - 1).astype(object))
           ) >> total.astype(object)
    return np.clip(out, -(1 << 62), 1 << 62).astype(np.int64)


def multiply_by_quantized_multiplier_int64(x: np.ndarray, multiplier: np.ndarray,
                                           shift: np.ndarray) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier(int64_t x, ...)`` (16x8 kernels, both
    builds): the Q0.31 multiplier reduced to 16 bits (``(m + 2^15) >> 16``, at most
    0x7FFF), ``(x·reduced + 2^(14 − shift)) >> (15 − shift)``; ``x`` within ±2^47."""
    x = np.asarray(x, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total = 15 - shift
    return (x * reduced + (np.int64(1) << (total - 1))) >> total


def reduced_multiplier(multiplier: np.ndarray) -> np.ndarray:
    """The multiplier a tile takes for TFLite's int64 requantization: the 16-bit reduced
    multiplier shifted up by 16 (so that ``wide`` rounding at ``31 − shift`` equals
    :func:`multiply_by_quantized_multiplier_int64`)."""
    m = np.asarray(multiplier, dtype=np.int64)
    return np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF) << 16


def requantize(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, zero_point: int,
               lo: int, hi: int, rounding: str = "double") -> tuple[np.ndarray, np.ndarray]:
    """An accumulator (bias already added) to the output's integer domain, as a TFLite
    kernel does: saturate to int32 (not for ``wide``), multiply by the quantized multiplier
    rounding as ``rounding`` says (``double``: :func:`multiply_by_quantized_multiplier`;
    ``single`` and ``wide``: :func:`multiply_by_quantized_multiplier_single`), add the
    output zero point, clamp to ``[lo, hi]`` (the activation range).  Per-channel
    ``multiplier``/``shift`` broadcast against ``acc``.  Returns the values and where the
    accumulator was saturated (TFLite's int32 accumulator would have overflowed)."""
    if rounding == "wide":
        y = multiply_by_quantized_multiplier_single(acc, multiplier, shift) + zero_point
        return np.clip(y, lo, hi), np.zeros(np.shape(acc), dtype=bool)
    x, saturated = saturate_int32(acc)
    if rounding == "single":
        y = multiply_by_quantized_multiplier_single(x, multiplier, shift) + zero_point
    elif rounding == "double":
        y = multiply_by_quantized_multiplier(x, multiplier, shift) + zero_point
    else:
        raise ValueError(f"Rounding must be one of double, single, wide, not {rounding!r}")
    return np.clip(y, lo, hi), saturated
