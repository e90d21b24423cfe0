"""Operand streams for power runs: the same data for every design (a longer stream starts
with a shorter one), the documented shapes of relu and sparse data, and .npz streams."""

from __future__ import annotations

import numpy as np
import pytest

from rcm_gen.sim.power_stimulus import STIMULUS_KINDS, load_npz_streams, make_stream


@pytest.mark.parametrize("kind", STIMULUS_KINDS)
def test_streams_are_prefixes_of_longer_ones(kind):
    for bits, signed in ((4, False), (8, True), (16, False)):
        short, long = make_stream(kind, bits, signed, 300), make_stream(kind, bits, signed, 1200)
        assert np.array_equal(short.a, long.a[:300]) and np.array_equal(short.w, long.w[:300])
        lo = -(1 << (bits - 1)) if signed else 0
        hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        assert long.a.min() >= lo and long.a.max() <= hi
        assert long.w.min() >= -(1 << (bits - 1)) and long.w.max() <= (1 << (bits - 1)) - 1


def test_relu_and_sparse_shapes():
    relu = make_stream("relu", 8, True, 20000)
    assert relu.a.min() >= 0 and 0.45 < np.mean(relu.a == 0) < 0.55
    assert np.median(relu.a[relu.a > 0]) < 127 / 8  # skewed small
    assert abs(relu.w.mean()) < 1.0 and 25 < relu.w.std() < 40  # about 127 / 4
    sparse = make_stream("sparse", 8, False, 20000)
    assert 0.72 < np.mean(sparse.a == 0) < 0.78 and 0.47 < np.mean(sparse.w == 0) < 0.53


def test_npz_streams(tmp_path):
    f = tmp_path / "s.npz"
    np.savez(f, a_8=np.arange(50) % 100, w_8=np.arange(50) % 7 - 3)
    streams = load_npz_streams(f, {16: 20, 8: 40, 4: 80})
    # non-negative 8-bit activations fit both unsigned and signed: both are run
    assert [(s.bits, s.act_signed, len(s.a)) for s in streams] == [(8, False, 40), (8, True, 40)]
