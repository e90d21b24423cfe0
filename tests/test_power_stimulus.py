"""Operand streams for power runs: the same data for every design (a longer stream starts
with a shorter one), the documented shapes of relu and sparse data, and .npz streams."""

from __future__ import annotations

import numpy as np
import pytest

from rcm_gen.errors import UserError
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


@pytest.mark.parametrize("kind", STIMULUS_KINDS)
def test_asymmetric_streams(kind):
    """Activations of one width and weights of another, each in its own range; a longer
    stream starts with a shorter one."""
    short = make_stream(kind, 8, False, 300, weight_bits=2)
    long = make_stream(kind, 8, False, 1200, weight_bits=2)
    assert short.key() == (8, 2, False)
    assert np.array_equal(short.a, long.a[:300]) and np.array_equal(short.w, long.w[:300])
    assert long.a.min() >= 0 and long.a.max() <= 255
    assert long.w.min() >= -2 and long.w.max() <= 1
    if kind == "random":
        assert set(np.unique(long.w)) == {-2, -1, 0, 1}
    assert make_stream(kind, 8, False, 10).key() == (8, 8, False)


def test_npz_asymmetric_streams(tmp_path):
    f = tmp_path / "s.npz"
    np.savez(f, a_8=np.arange(90) % 100, w_4=np.arange(70) % 16 - 8, w_8=np.arange(90) - 45)
    streams = load_npz_streams(f, {(8, 8): 40, (8, 4): 60, (4, 4): 80})
    # a_8 meets w_8 and w_4; arrays of unequal length serve an asymmetric pair
    assert [(s.key(), len(s.a), len(s.w)) for s in streams] == [
        ((8, 8, False), 40, 40), ((8, 8, True), 40, 40),
        ((8, 4, False), 60, 60), ((8, 4, True), 60, 60)]
    assert np.array_equal(streams[2].w, np.arange(60) % 16 - 8)
    g = tmp_path / "lonely.npz"
    np.savez(g, w_4=np.zeros(100, int))
    with pytest.raises(UserError, match=r"array w_4 has no partner a_8 or a_4"):
        load_npz_streams(g, {(8, 8): 40, (8, 4): 60, (4, 4): 80})
    h = tmp_path / "short.npz"
    np.savez(h, a_8=np.zeros(100, int), w_4=np.zeros(59, int))
    with pytest.raises(UserError, match=r"arrays a_8/w_4 hold 59 pairs; the run needs 60"):
        load_npz_streams(h, {(8, 4): 60})
