"""The post-processing unit in Amaranth's simulator against rcm_gen.reference.requantize, in
each rounding (TFLite's double rounding, TFLITE_SINGLE_ROUNDING, the int64 requantization of
16x8 layers), edge cases included."""

import dataclasses

import numpy as np
import pytest
from amaranth.sim import Simulator

from rcm_gen.gateware.modes import Rounding
from rcm_gen.gateware.ppu import PostProcessor
from rcm_gen.presets import apply_overrides, preset
from rcm_gen.reference import (
    INT32_MAX,
    INT32_MIN,
    multiply_by_quantized_multiplier_int64,
    multiply_by_quantized_multiplier_single,
    reduced_multiplier,
    requantize,
)
from rcm_gen.tile.plan import ROUNDINGS


def _vectors(rng, n, rounding, acc_bits):
    if rounding == "wide":
        # 16x8 sums: up to the accumulator's width, shifts -31..7, reduced multipliers
        acc = rng.integers(-(1 << (acc_bits - 2)), 1 << (acc_bits - 2), n)
        acc = acc >> rng.integers(0, acc_bits - 2, n)
        mult = reduced_multiplier(rng.integers(1 << 30, 1 << 31, n))
        shift = rng.integers(-31, 8, n)
    else:
        acc = rng.integers(-(1 << 33), 1 << 33, n) >> rng.integers(0, 33, n)
        mult = rng.integers(1 << 30, 1 << 31, n)
        shift = rng.integers(-31, 31, n)
        shift[: n // 4] = rng.integers(0, 3, n // 4)  # left shifts
    edges = np.array([INT32_MAX, INT32_MIN, INT32_MAX + 5, INT32_MIN - 5, 0, -1, 1, 1 << 30,
                      -(1 << 30), (1 << 30) + 1])
    acc[: len(edges)] = edges
    mult[:3] = [INT32_MAX, 1 << 30, (1 << 31) - (1 << 16)] if rounding != "wide" else mult[:3]
    if rounding == "double":  # the parameter is signed: negative multipliers too
        mult[10:40] = -mult[10:40]
        mult[40] = INT32_MIN
        acc[40] = INT32_MIN
    return acc, mult, shift


@pytest.mark.parametrize("arch", ["booth", "dsp"])
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_post_processor_matches_the_reference(rounding, arch):
    """Both builds of the unit's product: the Booth rows compressed (ASIC tiles) and
    Yosys's multiplications, which FPGA flows put in DSP blocks (tiles of DSP MACs)."""
    cfg = preset("rcm-small")
    if arch == "dsp":
        cfg = apply_overrides(cfg, ["mac.arch=dsp", "mac.pipeline=2"])
    dut = PostProcessor(cfg)
    rng = np.random.default_rng(ROUNDINGS.index(rounding))
    acc, mult, shift = _vectors(rng, 600, rounding, cfg.mac.accumulator_width)
    zp, lo, hi = -5, -(1 << 16), (1 << 16) - 1
    want, sat = requantize(acc, mult, shift, zp, lo, hi, rounding)
    if rounding != "double":  # results TFLite leaves undefined (outside int32) are clamped
        x = acc if rounding == "wide" else np.clip(acc, INT32_MIN, INT32_MAX)
        raw = multiply_by_quantized_multiplier_single(x, mult, shift)
        keep = (raw >= INT32_MIN) & (raw <= INT32_MAX)
    else:
        keep = np.ones(len(acc), bool)
    got, saturated = [], []

    async def bench(ctx):
        ctx.set(dut.zero_point, zp)
        ctx.set(dut.lo, lo)
        ctx.set(dut.hi, hi)
        ctx.set(dut.en, 1)
        for i in range(len(acc) + PostProcessor.LATENCY):
            if i < len(acc):
                ctx.set(dut.acc, int(acc[i]))
                ctx.set(dut.param.multiplier, int(mult[i]))
                ctx.set(dut.param.shift, int(shift[i]))
                ctx.set(dut.param.rounding, Rounding[rounding.upper()])
            await ctx.tick()
            if 1 <= i <= len(acc):  # a sum's saturation, from the second stage
                saturated.append(ctx.get(dut.saturated))
            if i >= PostProcessor.LATENCY - 1:
                got.append(ctx.get(dut.value))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    got = np.array(got[:len(acc)])
    bad = np.flatnonzero((got != want) & keep)
    assert not len(bad), [(int(acc[i]), int(mult[i]), int(shift[i]), int(got[i]),
                           int(want[i])) for i in bad[:5]]
    assert keep.mean() > 0.5
    np.testing.assert_array_equal(np.array(saturated, bool), sat)


def test_wide_rounding_is_tflites_int64_requantization():
    """The tile's wide rounding on the reduced multiplier shifted up by 16 equals TFLite's
    int64 ``MultiplyByQuantizedMultiplier`` on the Q0.31 multiplier."""
    rng = np.random.default_rng(3)
    acc = rng.integers(-(1 << 46), 1 << 46, 5000) >> rng.integers(0, 40, 5000)
    m = rng.integers(1 << 30, 1 << 31, 5000)
    m[:2] = [0x7FFF0000, INT32_MAX]
    shift = rng.integers(-31, 8, 5000)
    want = multiply_by_quantized_multiplier_int64(acc, m, shift)
    got, sat = requantize(acc, reduced_multiplier(m), shift, 0, -(1 << 62), 1 << 62, "wide")
    np.testing.assert_array_equal(got, want)
    assert not sat.any()


def test_single_rounding_differs_from_double_on_halves():
    """-0.5 and +0.5 (sums -2 and 2 times 1/4): single rounding takes halves up, TFLite's
    double rounding away from zero."""
    acc = np.array([-2, 2])
    mult, shift = np.array([1 << 30, 1 << 30]), np.array([-1, -1])
    single, _ = requantize(acc, mult, shift, 0, -100, 100, "single")
    double, _ = requantize(acc, mult, shift, 0, -100, 100, "double")
    assert single.tolist() == [0, 1] and double.tolist() == [-1, 1]


@pytest.mark.slow
def test_tile_rtl_rounds_each_layer_as_its_parameters_say():
    """Three layers on rcm-small's RTL (Icarus), one per rounding, with multipliers that
    put many results on a half (so the roundings differ); the wide one a 16x8 layer (16-bit
    activations, int16 outputs): outputs equal the reference of that rounding, cycles equal
    the cycle model's."""
    from rcm_gen.conv import ConvShape
    from rcm_gen.tile.plan import PostProcess
    from rcm_gen.tile.simulate import LayerCase, expected_output, simulate_layers

    cfg = preset("rcm-small")
    rng = np.random.default_rng(7)
    shape = ConvShape(c=5, m=3, h=5, w=5, k=3, padding=1)
    x = rng.integers(-8, 8, (5, 5, 5))
    w = rng.integers(-8, 8, (3, 5, 3, 3))
    bias, mult, shift = (3, -7, 11), (1 << 30, 1518500250, 1 << 30), (-1, -3, 1)
    cases, outs = [], {}
    for rounding in ROUNDINGS:
        m, bits, xr = mult, 8, x
        if rounding == "wide":  # a 16x8 layer: int16 activations, a long reduction
            m, bits = tuple(int(v) for v in reduced_multiplier(mult)), 16
            xr = rng.integers(-32768, 32768, (5, 5, 5))
        post = PostProcess(bias, m, shift if rounding != "wide" else (-9, -12, -8), -3 * (
            rounding != "wide"), -32768, 32767, 16, True, rounding=rounding)
        cases.append(LayerCase(shape, xr, w, bits, 8, True, post=post, seed=len(cases)))
        outs[rounding] = expected_output(shape, xr, w, post)[0]
    single = dataclasses.replace(cases[0].post, rounding="single")
    assert (expected_output(shape, x, w, single)[0] != outs["double"]).sum() >= 5
    assert np.abs(outs["wide"]).max() > 127  # int16 outputs beyond int8
    results, sim = simulate_layers(cfg, cases, "icarus")
    for rounding, r in zip(ROUNDINGS, results, strict=True):
        assert r["output_ok"], (rounding, r.get("mismatch"), sim.log)
        assert r["cycles"] == r["model_cycles"], rounding
