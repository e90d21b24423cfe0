import numpy as np
import pytest

from rcm_gen.reference import (
    check_fits,
    conv2d,
    conv2d_naive,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_naive,
    pack_lanes,
    st_dot,
    st_dot_naive,
    unpack_lanes,
)


@pytest.mark.parametrize("width, lanes", [(8, 1), (8, 2), (8, 4), (16, 4), (16, 8)])
@pytest.mark.parametrize("signed", [True, False])
def test_pack_unpack_round_trip(width, lanes, signed):
    rng = np.random.default_rng(0)
    n = width // lanes
    lo, hi = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if signed else (0, (1 << n) - 1)
    values = rng.integers(lo, hi + 1, size=(100, lanes))
    words = pack_lanes(values, width, signed)
    assert words.min() >= 0 and words.max() < 1 << width
    assert np.array_equal(unpack_lanes(words, width, lanes, signed), values)


def test_pack_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError, match=r"^lane value\[0, 1\] must fit 4-bit signed "
                                         r"\(-8\.\.7\), not 8$"):
        pack_lanes(np.array([[1, 8, 0, 0]]), 16, True)


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("act_signed", [True, False])
def test_st_dot_matches_naive_exhaustively_at_w8(lanes, act_signed):
    a, w = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    got = st_dot(a.ravel(), w.ravel(), 8, lanes, act_signed)
    # naive loop on a strided subset (every pair would take too long in pure Python)
    for idx in range(0, 65536, 97):
        assert got[idx] == st_dot_naive(a.ravel()[idx], w.ravel()[idx], 8, lanes, act_signed)


def test_st_dot_corners_w16():
    # most negative x most negative in each lane
    for lanes in (1, 2, 4):
        n = 16 // lanes
        a = pack_lanes(np.full((1, lanes), -(1 << (n - 1))), 16, True)
        assert st_dot(a, a, 16, lanes, True)[0] == lanes * (1 << (2 * n - 2))
        assert st_dot_naive(int(a[0]), int(a[0]), 16, lanes, True) == lanes << (2 * n - 2)


@pytest.mark.parametrize("stride, padding, k", [(1, 0, 1), (1, 1, 3), (2, 1, 3), (2, 3, 7),
                                                (1, 2, 5), (2, 0, 2)])
def test_conv2d_matches_naive(stride, padding, k):
    rng = np.random.default_rng(k + stride * 10 + padding)
    x = rng.integers(-8, 8, size=(3, 9, 8))
    w = rng.integers(-8, 8, size=(4, 3, k, k))
    assert np.array_equal(conv2d(x, w, stride, padding), conv2d_naive(x, w, stride, padding))


@pytest.mark.parametrize("groups, cg, mg", [(1, 3, 4), (3, 2, 2), (4, 1, 1), (2, 1, 3)])
@pytest.mark.parametrize("pads, pad_value", [((0, 1, 1, 0), 0), ((2, 1, 0, 2), -5),
                                             ((1, 1, 1, 1), 7)])
def test_grouped_asymmetric_conv2d_matches_naive(groups, cg, mg, pads, pad_value):
    """Groups (depthwise with a multiplier when cg = 1), per-side padding, a padding
    value other than 0 (TFLite pads with the input zero point)."""
    rng = np.random.default_rng(groups * 10 + cg)
    x = rng.integers(-8, 8, size=(groups * cg, 6, 5))
    w = rng.integers(-8, 8, size=(groups * mg, cg, 3, 3))
    for stride in (1, 2):
        assert np.array_equal(
            conv2d(x, w, stride, groups=groups, pads=pads, pad_value=pad_value),
            conv2d_naive(x, w, stride, groups=groups, pads=pads, pad_value=pad_value))


def test_check_fits_names_index_and_value():
    check_fits("x", np.array([[0, 15]]), 4, False)
    with pytest.raises(ValueError, match=r"^x\[1, 0\] must fit 4-bit unsigned \(0\.\.15\), "
                                         r"not -1$"):
        check_fits("x", np.array([[0, 15], [-1, 2]]), 4, False)


def test_requantization_matches_its_plain_integer_twin():
    """Corners (int32 limits, the INT32_MIN·INT32_MIN saturation, ties of the rounding)
    and random values, shifts −31..+8."""
    rng = np.random.default_rng(3)
    corners = [0, 1, -1, 2, -2, 3, -3, (1 << 31) - 1, -(1 << 31), 12345, -12345, 1 << 20]
    xs = np.array(corners + list(rng.integers(-(1 << 31), 1 << 31, size=400)))
    ms = np.array([-(1 << 31), (1 << 30), (1 << 31) - 1, 1 << 30 | 1]
                  + list(rng.integers(1 << 30, 1 << 31, size=40)))
    for shift in list(range(-31, 9)):
        got = multiply_by_quantized_multiplier(xs[:, None], ms[None, :], shift)
        for i in range(0, len(xs), 7):
            for j in range(len(ms)):
                want = multiply_by_quantized_multiplier_naive(int(xs[i]), int(ms[j]), shift)
                assert got[i, j] == want, (int(xs[i]), int(ms[j]), shift)
