"""Operand streams for power runs: one stream of (activation, weight) pairs per precision
(activation bits x weight bits) and activation signedness, the same for every design so that
energy per MAC compares like with like (a Sum-Together MAC takes N pairs of the stream per
cycle, a fusion MAC (W/A)·(W/B), a fixed MAC one).

Kinds:

- ``random``: activations and weights uniform over the precision's range (weights signed,
  activations signed or unsigned);
- ``relu``: activations as after a ReLU: half are zero, the rest geometric-distributed
  with mean a sixteenth of the range (small values common, large ones rare), non-negative
  also when signed; weights Gaussian with a standard deviation of a quarter of the
  range, rounded and clipped;
- ``sparse``: uniform values of which 75 % of the activations and 50 % of the weights are
  zero;
- a ``.npz`` file: arrays ``a_<bits>`` and ``w_<bits>`` (one-dimensional integers) for each
  precision to run, e.g. ``a_8`` and ``w_8`` (equal length) for 8-bit operands; ``a_8``
  with ``w_4`` for 8-bit activations and 4-bit weights.  A precision without its arrays is
  not run.  Weights must fit ``bits``-bit signed; activations are run unsigned when they
  fit ``bits``-bit unsigned and signed when they fit ``bits``-bit signed (both when both).
  The arrays must hold at least as many pairs as the run needs (cycles × MACs per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import value_range
from ..errors import UserError

__all__ = ["STIMULUS_KINDS", "OperandStream", "load_npz_streams", "make_stream"]

STIMULUS_KINDS = ("random", "relu", "sparse")


@dataclass(frozen=True)
class OperandStream:
    """Pairs of ``bits``-bit activations and ``weight_bits``-bit weights."""

    bits: int
    act_signed: bool
    a: np.ndarray
    w: np.ndarray
    weight_bits: int | None = None

    def __post_init__(self) -> None:
        if self.weight_bits is None:
            object.__setattr__(self, "weight_bits", self.bits)

    def key(self) -> tuple[int, int, bool]:
        return self.bits, self.weight_bits, self.act_signed  # type: ignore[return-value]


def make_stream(kind: str, bits: int, act_signed: bool, count: int, seed: int = 1,
                weight_bits: int | None = None) -> OperandStream:
    """``count`` operand pairs of ``kind`` at ``bits``-bit activations and ``weight_bits``-bit
    weights (default ``bits``), seeded by kind, widths and signedness only: every design
    gets the same pairs."""
    if kind not in STIMULUS_KINDS:
        raise UserError(f"--stimulus must be one of {', '.join(STIMULUS_KINDS)} or a .npz "
                        f"file, not {kind!r}")
    weight_bits = bits if weight_bits is None else weight_bits
    # one generator per drawn array: a longer stream starts with the pairs of a shorter one
    base = [seed, STIMULUS_KINDS.index(kind), bits, int(act_signed)]
    if weight_bits != bits:
        base.append(weight_bits)
    r = [np.random.default_rng([*base, k]) for k in range(4)]
    a_lo, a_hi = value_range(bits, act_signed)
    w_lo, w_hi = value_range(weight_bits, True)
    if kind == "random":
        a = r[0].integers(a_lo, a_hi + 1, count)
        w = r[1].integers(w_lo, w_hi + 1, count)
    elif kind == "relu":
        scale = max(a_hi / 16.0, 1.0)
        a = np.minimum(r[0].geometric(1.0 / (scale + 1.0), count), a_hi)
        a = np.where(r[2].random(count) < 0.5, 0, a)
        w = np.clip(np.rint(r[1].normal(0.0, max(w_hi / 4.0, 0.5), count)), w_lo, w_hi)
    else:
        a = np.where(r[2].random(count) < 0.75, 0, r[0].integers(a_lo, a_hi + 1, count))
        w = np.where(r[3].random(count) < 0.5, 0, r[1].integers(w_lo, w_hi + 1, count))
    return OperandStream(bits, act_signed, np.asarray(a, dtype=np.int64),
                         np.asarray(w, dtype=np.int64), weight_bits)


def load_npz_streams(path: str | Path, counts: dict[Any, int]) -> list[OperandStream]:
    """The operand streams of a user ``.npz`` file (see the module docstring) for the
    design's precisions (``counts``: bits, or (activation bits, weight bits) → pairs a run
    at that precision needs), each cut to that many pairs.

    Raises
    ------
    UserError
        Unreadable file, an array not named ``a_<bits>``/``w_<bits>`` for a precision of
        the design, a missing partner, arrays that are not one-dimensional integers, of
        unequal or too short length, or values that fit no mode.
    """
    option = f"--stimulus {str(path)!r}"
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{option}: cannot read ({exc})") from None
    points = [k if isinstance(k, tuple) else (k, k) for k in counts]
    need = {p: counts[k] for p, k in zip(points, counts, strict=True)}
    allowed = list(dict.fromkeys(n for ab, wb in points for n in (f"a_{ab}", f"w_{wb}")))
    for name in arrays:
        if name not in allowed:
            raise UserError(f"{option}: array {name!r} names no operand port and precision "
                            f"of this design (allowed: {', '.join(allowed)})")
    for name, arr in arrays.items():
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise UserError(f"{option}: array {name} must be one-dimensional integers, "
                            f"not {arr.dtype} of shape {arr.shape}")
    # an array must meet a partner in some precision of the design
    for name in arrays:
        port, bits = name.split("_")
        other = "w" if port == "a" else "a"
        partners = [f"{other}_{wb if port == 'a' else ab}" for ab, wb in points
                    if (ab if port == "a" else wb) == int(bits)]
        if not any(p in arrays for p in partners):
            raise UserError(f"{option}: array {name} has no partner {' or '.join(partners)}")
    streams = []
    for (abits, wbits), count in need.items():
        an, wn = f"a_{abits}", f"w_{wbits}"
        a, w = arrays.get(an), arrays.get(wn)
        if a is None or w is None:
            continue
        if abits == wbits and len(a) != len(w):
            raise UserError(f"{option}: arrays {an} and {wn} must have equal length, "
                            f"not {len(a)} and {len(w)}")
        if min(len(a), len(w)) < count:
            raise UserError(f"{option}: arrays {an}/{wn} hold {min(len(a), len(w))} pairs; "
                            f"the run needs {count}")
        a, w = a[:count].astype(np.int64), w[:count].astype(np.int64)
        w_lo, w_hi = value_range(wbits, True)
        bad = np.nonzero((w < w_lo) | (w > w_hi))[0]
        if len(bad):
            raise UserError(f"{option}: {wn}[{bad[0]}] must fit {wbits}-bit signed "
                            f"({w_lo}..{w_hi}), not {int(w[bad[0]])}")
        fits = []
        for signed in (False, True):
            lo, hi = value_range(abits, signed)
            if np.all((a >= lo) & (a <= hi)):
                fits.append(signed)
        if not fits:
            i = int(np.argmax(np.abs(a)))
            raise UserError(f"{option}: {an}[{i}] = {int(a[i])} fits neither {abits}-bit "
                            "unsigned nor signed")
        streams += [OperandStream(abits, s, a, w, wbits) for s in fits]
    if not streams:
        raise UserError(f"{option}: no arrays for any precision of this design (give "
                        f"{', '.join(allowed)})")
    return streams
