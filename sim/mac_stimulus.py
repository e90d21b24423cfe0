"""Stimulus and expected results for a MAC: random and corner operands in every mode,
random mode switches between consecutive operations, random idle cycles and clears; and the
exhaustive operand sweep of a small MAC.

Pure numpy, shared by the cocotb testbench and the Amaranth-simulator tests.  Operand words
wider than 62 bits (a fusion MAC's) are object arrays of Python ints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import MacConfig, MacMode, value_range
from ..gateware.modes import mode_port_value
from ..reference import mode_dot, pack_operands

__all__ = ["MacStimulus", "corner_values", "exhaustive_stimulus", "mac_stimulus",
           "mode_key"]


@dataclass(frozen=True)
class MacStimulus:
    """Per-cycle inputs and the accumulator value they must produce.

    ``expected[t]`` is the accumulator after the products of cycles ``0..t`` (honouring
    ``clear`` and ``en``); the hardware shows it ``config.latency`` clock edges after
    cycle ``t``'s inputs were applied.  ``mode[t]`` indexes ``modes`` (the configuration's
    :attr:`~rcm_gen.config.MacConfig.mac_modes`); ``mode_value[t]`` is what the MAC's
    ``mode`` port takes for it.
    """

    a: np.ndarray
    w: np.ndarray
    mode: np.ndarray
    mode_value: np.ndarray
    act_signed: np.ndarray
    en: np.ndarray
    clear: np.ndarray
    product: np.ndarray
    expected: np.ndarray
    modes: tuple[MacMode, ...]

    def __len__(self) -> int:
        return len(self.a)

    def key(self, t: int) -> str:
        """``"<mode>_<s|u>"`` of cycle ``t`` (e.g. ``8x4_s``)."""
        return mode_key(self.modes[int(self.mode[t])], bool(self.act_signed[t]))


def mode_key(mode: MacMode, act_signed: bool) -> str:
    """A mode and an activation signedness as ``"8x4_s"`` / ``"8x4_u"``."""
    return f"{mode.name}_{'s' if act_signed else 'u'}"


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


def _words(config: MacConfig, count: int) -> tuple[np.ndarray, np.ndarray]:
    wide = config.act_word_bits > 62 or config.weight_word_bits > 62
    dtype = object if wide else np.int64
    return np.zeros(count, dtype=dtype), np.zeros(count, dtype=dtype)


def _accumulate(config: MacConfig, product: np.ndarray, en: np.ndarray, clr: np.ndarray
                ) -> np.ndarray:
    expected = np.zeros(len(product), dtype=object)
    acc = 0
    run = 0
    for t in range(len(product)):
        if run >= config.reduction:  # never ask for a longer sum than the accumulator holds
            clr[t] = True
        run = 1 if clr[t] else run + 1
        acc = (0 if clr[t] else acc) + (int(product[t]) if en[t] else 0)
        expected[t] = acc
    return expected


def mac_stimulus(config: MacConfig, count: int, seed: int = 1,
                 idle: float = 0.1, clear: float = 0.2,
                 corner: float = 0.25) -> MacStimulus:
    """``count`` cycles of stimulus: each cycle picks a random configured mode and
    signedness, and a random or corner operand pair; ``idle`` is the fraction of cycles
    with ``en`` low, ``clear`` the fraction that start a new sum, ``corner`` the fraction
    drawn from corner values."""
    rng = np.random.default_rng(seed)
    modes = config.mac_modes
    mode = rng.integers(0, len(modes), size=count)
    act_signed = rng.integers(0, 2, size=count).astype(bool)
    is_corner = rng.random(count) < corner
    a, w = _words(config, count)
    product = np.zeros(count, dtype=np.int64)
    for i, md in enumerate(modes):
        for s in (False, True):
            for c in (False, True):
                sel = np.nonzero((mode == i) & (act_signed == s) & (is_corner == c))[0]
                if not len(sel):
                    continue
                av = _lane_values(rng, len(sel), md.products, md.act_bits, s, c)
                wv = _lane_values(rng, len(sel), md.products, md.weight_bits, True, c)
                a[sel], w[sel] = pack_operands(av, wv, md, s)
                product[sel] = mode_dot(a[sel], w[sel], md, s)
    en = rng.random(count) >= idle
    clr = rng.random(count) < clear
    expected = _accumulate(config, product, en, clr)
    values = np.array([mode_port_value(config, md) for md in modes], dtype=np.int64)
    return MacStimulus(a, w, mode, values[mode], act_signed, en, clr, product, expected, modes)


def exhaustive_stimulus(config: MacConfig, seed: int = 1) -> MacStimulus:
    """Every operand value pair in every term of every mode, for both signednesses.

    Per mode ``A``x``B`` and signedness: all 2**(A+B) (activation, weight) pairs in every
    term at once, and then in each term alone with the other terms random.  A one-term mode
    (W×W) thus gets all of its operand words.  Each cycle clears the accumulator, so it
    shows that cycle's product.
    """
    rng = np.random.default_rng(seed)
    parts: list[tuple[int, bool, np.ndarray, np.ndarray]] = []
    for i, md in enumerate(config.mac_modes):
        for s in (False, True):
            a_lo, a_hi = value_range(md.act_bits, s)
            w_lo, w_hi = value_range(md.weight_bits, True)
            av, wv = np.meshgrid(np.arange(a_lo, a_hi + 1), np.arange(w_lo, w_hi + 1),
                                 indexing="ij")
            av, wv = av.ravel(), wv.ravel()
            n, p = len(av), md.products
            blocks_a = [np.repeat(av[:, None], p, axis=1)]
            blocks_w = [np.repeat(wv[:, None], p, axis=1)]
            for k in range(p if p > 1 else 0):
                ra = rng.integers(a_lo, a_hi + 1, size=(n, p))
                rw = rng.integers(w_lo, w_hi + 1, size=(n, p))
                ra[:, k], rw[:, k] = av, wv
                blocks_a.append(ra)
                blocks_w.append(rw)
            parts.append((i, s, np.concatenate(blocks_a), np.concatenate(blocks_w)))
    count = sum(len(x[2]) for x in parts)
    a, w = _words(config, count)
    mode = np.zeros(count, dtype=np.int64)
    act_signed = np.zeros(count, dtype=bool)
    product = np.zeros(count, dtype=np.int64)
    t = 0
    for i, s, av, wv in parts:
        md = config.mac_modes[i]
        sl = slice(t, t + len(av))
        a[sl], w[sl] = pack_operands(av, wv, md, s)
        mode[sl], act_signed[sl] = i, s
        product[sl] = mode_dot(a[sl], w[sl], md, s)
        t += len(av)
    en = np.ones(count, dtype=bool)
    clr = np.ones(count, dtype=bool)
    expected = _accumulate(config, product, en, clr)
    values = np.array([mode_port_value(config, md) for md in config.mac_modes],
                      dtype=np.int64)
    return MacStimulus(a, w, mode, values[mode], act_signed, en, clr, product, expected,
                       config.mac_modes)
