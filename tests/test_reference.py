import numpy as np
import pytest

from rcm_gen.config import MacConfig
from rcm_gen.presets import preset
from rcm_gen.reference import (
    check_fits,
    conv2d,
    conv2d_naive,
    mode_dot,
    mode_dot_naive,
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_naive,
    pack_lanes,
    pack_operands,
    pack_words,
    st_dot,
    st_dot_naive,
    unpack_lanes,
    unpack_operands,
    unpack_words,
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


# -- modes: Sum-Together lanes and fusion blocks ---------------------------------------------


@pytest.mark.parametrize("name", ["mac8-fusion", "mac16-fusion", "mac16", "mac32-fusion"])
def test_mode_dot_matches_naive_twin(name):
    """Every mode of the design: the vectorised model (terms in weight_order) against the
    plain-loop twin that reads the words as the hardware does (blocks and lanes)."""
    cfg = (preset(name) if name != "mac32-fusion" else
           MacConfig(width=32, arch="fusion", lanes=(1, 2, 4, 8), brick=4))
    rng = np.random.default_rng(5)
    for md in cfg.mac_modes:
        for s in (False, True):
            a_lo = -(1 << (md.act_bits - 1)) if s else 0
            a_hi = (1 << (md.act_bits - 1)) if s else 1 << md.act_bits
            av = rng.integers(a_lo, a_hi, size=(30, md.products))
            wv = rng.integers(-(1 << (md.weight_bits - 1)), 1 << (md.weight_bits - 1),
                              size=(30, md.products))
            av[0], wv[0] = a_lo, -(1 << (md.weight_bits - 1))  # the extreme corner
            a, w = pack_operands(av, wv, md, s)
            got = mode_dot(a, w, md, s)
            assert np.array_equal(got, np.sum(av * wv, axis=1))
            assert [mode_dot_naive(x, y, md, s) for x, y in zip(a, w, strict=True)] \
                == got.tolist()
            back_a, back_w = unpack_operands(a, w, md, s)
            assert np.array_equal(back_a, av) and np.array_equal(back_w, wv)


def test_fusion_word_layout():
    """8x4 at W=16: activations in order, four W-bit blocks of two; weights transposed,
    two W-bit blocks of four: activation lane h of block g meets weight lane g of block h."""
    md = preset("mac16-fusion").mode(8, 4)
    act = np.arange(1, 9)           # terms 0..7
    weights = np.arange(-4, 4)      # terms 0..7
    a, w = pack_operands(act, weights, md, False)
    assert int(a) == sum(int(x) << (8 * k) for k, x in enumerate(act))
    wl = unpack_words(w, 4, 8)
    for g in range(4):          # activation block (and weight lane within a block)
        for h in range(2):      # activation lane within a block (and weight block)
            term = g * 2 + h
            assert unpack_words(a, 8, 8, False)[term] == act[term]
            assert wl[h * 4 + g] == weights[term]
    assert pack_words(np.array([[1] * 40]), 2, False).dtype == object  # 80-bit words
    with pytest.raises(ValueError, match=r"^Mode 8x4 takes 8 terms of weights, not 4$"):
        pack_operands(act, weights[:4], md, False)
