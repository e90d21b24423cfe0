"""Stimulus and expected results for a MAC: random and corner operands in every mode,
random mode switches between consecutive operations, random idle cycles and clears.

Pure numpy, shared by the cocotb testbench and the Amaranth-simulator tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import MacConfig, value_range
from ..reference import pack_lanes, st_dot

__all__ = ["MacStimulus", "corner_values", "mac_stimulus"]


@dataclass(frozen=True)
class MacStimulus:
    """Per-cycle inputs and the accumulator value they must produce.

    ``expected[t]`` is the accumulator after the products of cycles ``0..t`` (honouring
    ``clear`` and ``en``); the hardware shows it ``config.latency`` clock edges after
    cycle ``t``'s inputs were applied.
    """

    a: np.ndarray
    w: np.ndarray
    lanes: np.ndarray
    act_signed: np.ndarray
    en: np.ndarray
    clear: np.ndarray
    product: np.ndarray
    expected: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


def corner_values(bits: int, signed: bool) -> list[int]:
    """Most negative, zero, all-ones, most positive, one."""
    lo, hi = value_range(bits, signed)
    all_ones = -1 if signed else hi
    return sorted({lo, 0, all_ones, hi, 1 if hi >= 1 else 0})


def _lane_values(rng: np.random.Generator, count: int, lanes: int, lane_bits: int,
                 signed: bool, corner: bool) -> np.ndarray:
    """``count`` × ``lanes`` values, each of a random precision 1..lane_bits, held
    (sign- or zero-extended) in a ``lane_bits``-wide lane."""
    if corner:
        corners = np.array(corner_values(lane_bits, signed), dtype=np.int64)
        return rng.choice(corners, size=(count, lanes))
    precision = rng.integers(1, lane_bits + 1, size=(count, lanes))
    lo = np.where(signed, -(1 << (precision - 1)), 0)
    hi = np.where(signed, (1 << (precision - 1)) - 1, (1 << precision) - 1)
    return rng.integers(lo, hi + 1, dtype=np.int64)


def mac_stimulus(config: MacConfig, count: int, seed: int = 1,
                 idle: float = 0.1, clear: float = 0.2,
                 corner: float = 0.25) -> MacStimulus:
    """``count`` cycles of stimulus: each cycle picks a random configured lane count and
    signedness, and a random or corner operand pair; ``idle`` is the fraction of cycles
    with ``en`` low, ``clear`` the fraction that start a new sum, ``corner`` the fraction
    drawn from corner values."""
    rng = np.random.default_rng(seed)
    width = config.width
    lanes = rng.choice(np.array(config.lanes), size=count)
    act_signed = rng.integers(0, 2, size=count).astype(bool)
    is_corner = rng.random(count) < corner
    a = np.zeros(count, dtype=np.int64)
    w = np.zeros(count, dtype=np.int64)
    product = np.zeros(count, dtype=np.int64)
    for n in config.lanes:
        for s in (False, True):
            for c in (False, True):
                sel = np.nonzero((lanes == n) & (act_signed == s) & (is_corner == c))[0]
                if not len(sel):
                    continue
                lane_bits = width // n
                av = _lane_values(rng, len(sel), n, lane_bits, s, c)
                wv = _lane_values(rng, len(sel), n, lane_bits, True, c)
                a[sel] = pack_lanes(av, width, s)
                w[sel] = pack_lanes(wv, width, True)
                product[sel] = st_dot(a[sel], w[sel], width, n, s)
    en = rng.random(count) >= idle
    clr = rng.random(count) < clear
    expected = np.zeros(count, dtype=object)
    acc = 0
    run = 0
    for t in range(count):
        if run >= config.reduction:  # never ask for a longer sum than the accumulator holds
            clr[t] = True
        run = 1 if clr[t] else run + 1
        acc = (0 if clr[t] else acc) + (int(product[t]) if en[t] else 0)
        expected[t] = acc
    return MacStimulus(a, w, lanes, act_signed, en, clr, product, expected)
