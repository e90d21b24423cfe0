"""numpy reference models: lane packing, the Sum-Together dot product, integer convolution.

The vectorised functions here are what the hardware is checked against; each has a naive
plain-loop twin (``*_naive``) that the unit tests use to check the vectorised one.
"""

from __future__ import annotations

import numpy as np

from .config import value_range

__all__ = [
    "check_fits",
    "conv2d",
    "conv2d_naive",
    "pack_lanes",
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


def conv2d(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Exact integer cross-correlation with zero padding, as ``torch.nn.functional.conv2d``
    computes it: ``x`` is (C, H, W), ``w`` is (M, C, K, K), result int64 (M, Ho, Wo)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    c, h, wd = x.shape
    m, c2, k, k2 = w.shape
    assert c == c2 and k == k2
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - k) // stride + 1
    wo = (wd + 2 * padding - k) // stride + 1
    out = np.zeros((m, ho, wo), dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            rows = slice(ky, ky + stride * (ho - 1) + 1, stride)
            cols = slice(kx, kx + stride * (wo - 1) + 1, stride)
            patch = xp[:, rows, cols]
            out += np.einsum("mc,chw->mhw", w[:, :, ky, kx], patch, dtype=np.int64)
    return out


def conv2d_naive(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Plain-loop twin of :func:`conv2d`."""
    c, h, wd = x.shape
    m, _, k, _ = w.shape
    ho = (h + 2 * padding - k) // stride + 1
    wo = (wd + 2 * padding - k) // stride + 1
    out = np.zeros((m, ho, wo), dtype=np.int64)
    for mo in range(m):
        for oy in range(ho):
            for ox in range(wo):
                acc = 0
                for ci in range(c):
                    for ky in range(k):
                        for kx in range(k):
                            iy = oy * stride + ky - padding
                            ix = ox * stride + kx - padding
                            if 0 <= iy < h and 0 <= ix < wd:
                                acc += int(x[ci, iy, ix]) * int(w[mo, ci, ky, kx])
                out[mo, oy, ox] = acc
    return out
