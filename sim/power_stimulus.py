"""Operand streams for power runs: one stream of (activation, weight) pairs per precision
and activation signedness, the same for every design so that energy per MAC compares like
with like (a Sum-Together MAC takes N pairs of the stream per cycle, a fixed MAC one).

Kinds:

- ``random``: activations and weights uniform over the precision's range (weights signed,
  activations signed or unsigned);
- ``relu``: activations as after a ReLU: half are zero, the rest geometric-distributed
  with mean a sixteenth of the range (small values common, large ones rare), non-negative
  also when signed; weights Gaussian with a standard deviation of a quarter of the
  range, rounded and clipped;
- ``sparse``: uniform values of which 75 % of the activations and 50 % of the weights are
  zero;
- a ``.npz`` file: arrays ``a_<bits>`` and ``w_<bits>`` (one-dimensional integers, equal
  length) for each precision to run, e.g. ``a_8`` and ``w_8``; a precision without arrays
  is not run.  Weights must fit ``bits``-bit signed; activations are run unsigned when they
  fit ``bits``-bit unsigned and signed when they fit ``bits``-bit signed (both when both).
  The arrays must hold at least as many pairs as the run needs (cycles × lanes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import value_range
from ..errors import UserError

__all__ = ["STIMULUS_KINDS", "OperandStream", "load_npz_streams", "make_stream"]

STIMULUS_KINDS = ("random", "relu", "sparse")


@dataclass(frozen=True)
class OperandStream:
    bits: int
    act_signed: bool
    a: np.ndarray
    w: np.ndarray


def make_stream(kind: str, bits: int, act_signed: bool, count: int, seed: int = 1
                ) -> OperandStream:
    """``count`` operand pairs of ``kind`` at ``bits`` bits (seeded by kind, bits and
    signedness only: every design gets the same pairs)."""
    if kind not in STIMULUS_KINDS:
        raise UserError(f"--stimulus must be one of {', '.join(STIMULUS_KINDS)} or a .npz "
                        f"file, not {kind!r}")
    # one generator per drawn array: a longer stream starts with the pairs of a shorter one
    base = [seed, STIMULUS_KINDS.index(kind), bits, int(act_signed)]
    r = [np.random.default_rng([*base, k]) for k in range(4)]
    a_lo, a_hi = value_range(bits, act_signed)
    w_lo, w_hi = value_range(bits, True)
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
                         np.asarray(w, dtype=np.int64))


def load_npz_streams(path: str | Path, counts: dict[int, int]) -> list[OperandStream]:
    """The operand streams of a user ``.npz`` file (see the module docstring) for the
    design's precisions (``counts``: bits → pairs a run at that precision needs), each
    cut to that many pairs.

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
    precisions = list(counts)
    allowed = [f"{p}_{b}" for b in precisions for p in ("a", "w")]
    for name in arrays:
        if name not in allowed:
            raise UserError(f"{option}: array {name!r} names no operand port and precision "
                            f"of this design (allowed: {', '.join(allowed)})")
    streams = []
    for bits in precisions:
        a, w = arrays.get(f"a_{bits}"), arrays.get(f"w_{bits}")
        if a is None and w is None:
            continue
        if a is None or w is None:
            have, need = (f"w_{bits}", f"a_{bits}") if a is None else (f"a_{bits}", f"w_{bits}")
            raise UserError(f"{option}: array {have} has no partner {need}")
        for name, arr in ((f"a_{bits}", a), (f"w_{bits}", w)):
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise UserError(f"{option}: array {name} must be one-dimensional integers, "
                                f"not {arr.dtype} of shape {arr.shape}")
        if len(a) != len(w):
            raise UserError(f"{option}: arrays a_{bits} and w_{bits} must have equal length, "
                            f"not {len(a)} and {len(w)}")
        count = counts[bits]
        if len(a) < count:
            raise UserError(f"{option}: arrays a_{bits}/w_{bits} hold {len(a)} pairs; the run "
                            f"needs {count}")
        a, w = a[:count].astype(np.int64), w[:count].astype(np.int64)
        w_lo, w_hi = value_range(bits, True)
        bad = np.nonzero((w < w_lo) | (w > w_hi))[0]
        if len(bad):
            raise UserError(f"{option}: w_{bits}[{bad[0]}] must fit {bits}-bit signed "
                            f"({w_lo}..{w_hi}), not {int(w[bad[0]])}")
        fits = []
        for signed in (False, True):
            lo, hi = value_range(bits, signed)
            if np.all((a >= lo) & (a <= hi)):
                fits.append(signed)
        if not fits:
            i = int(np.argmax(np.abs(a)))
            raise UserError(f"{option}: a_{bits}[{i}] = {int(a[i])} fits neither {bits}-bit "
                            "unsigned nor signed")
        streams += [OperandStream(bits, s, a, w) for s in fits]
    if not streams:
        raise UserError(f"{option}: no arrays for any precision of this design (give "
                        f"{', '.join(allowed)})")
    return streams
