"""The tile's RTL under cocotb: random layers against numpy and the cycle model, on both
simulators, for the ST tile and its fixed twin; utilisation and speed-up on full layers."""

import numpy as np
import pytest

from rcm_gen.conv import ConvShape
from rcm_gen.presets import preset
from rcm_gen.tile.cycles import layer_cycles
from rcm_gen.tile.simulate import LayerCase, random_case, simulate_layers


def regression_cases(cfg, count: int, seed: int, **sizes) -> list[LayerCase]:
    """Cases that together cover K 1/3/5/7, stride 1/2, every activation precision
    1..W, signed and unsigned activations; every third case has random idle cycles on the
    inputs and backpressure on the output."""
    rng = np.random.default_rng(seed)
    width = cfg.mac.width
    cases = []
    for i in range(count):
        cases.append(random_case(
            rng, cfg, k=(1, 3, 5, 7)[i % 4], stride=1 + (i // 4) % 2,
            act_bits=1 + (i * 5) % width, act_signed=(i // 2) % 2 == 0, stalls=i % 3 == 2,
            **sizes))
    return cases


def check_regression(results, cases) -> dict:
    summary = {"cases": len(results), "full_rate_exact": 0, "stalled": 0}
    for r, case in zip(results, cases, strict=True):
        label = f"{r['shape']} bits={r['act_bits']}/{r['weight_bits']}"
        assert r["output_ok"], f"{label}: {r['mismatch']}"
        assert r["compute_cycles"] == r["model_compute_cycles"], label
        if case.idle == 0 and case.backpressure == 0:
            assert r["cycles"] == r["model_cycles"], (label, r["accept_cycles"],
                                                      r["model_accept_cycles"],
                                                      r["done_cycles"], r["model_done_cycles"])
            summary["full_rate_exact"] += 1
        else:
            assert r["cycles"] >= r["model_cycles"], label
            summary["stalled"] += 1
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("simulator, count", [("icarus", 16), ("verilator", 32)])
@pytest.mark.parametrize("name", ["rcm-small", "rcm-small-fixed"])
def test_random_layers(name, simulator, count):
    """Icarus evaluates the ST multipliers' adder trees net by net (a few hundred cycles a
    second), so it gets fewer and smaller layers than Verilator."""
    cfg = preset(name)
    sizes = {"max_c": 8, "max_m": 6, "max_hw": 8} if simulator == "icarus" else {}
    cases = regression_cases(cfg, count, seed=sum(map(ord, name + simulator)), **sizes)
    results, sim = simulate_layers(cfg, cases, simulator)
    summary = check_regression(results, cases)
    assert {c.shape.k for c in cases} == {1, 3, 5, 7}
    assert {c.shape.stride for c in cases} == {1, 2}
    if count >= 16:
        assert {c.act_bits for c in cases} == set(range(1, 17))
    lanes = {r["lanes"] for r in results}
    assert lanes == ({1} if cfg.is_fixed else {1, 2, 4})
    print(f"{name} on {simulator}: {summary}, {sum(r['sim_cycles'] for r in results)} "
          f"cycles, {sim.wall_s:.1f} s")


@pytest.mark.slow
def test_utilisation_and_speedup_on_full_layers():
    """Layers that fill rcm-default at 16, 8 and 4 bits: measured cycles equal the model,
    compute-phase utilisation ≥ 95 % of P·N; the same 8- and 4-bit layer on the fixed
    twin."""
    st, fixed = preset("rcm-default"), preset("rcm-default-fixed")
    rng = np.random.default_rng(5)
    cases, fixed_cases = [], []
    for bits in (16, 8, 4):
        n = st.mac.lanes_for_bits(bits, bits)
        shape = ConvShape(c=st.tn * n, m=st.tm, h=2 * st.tr, w=2 * st.tc, k=3, stride=1,
                          padding=1)
        x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(shape.c, shape.h, shape.w))
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(shape.m, shape.c, 3, 3))
        case = LayerCase(shape, x, w, bits, bits, True)
        cases.append(case)
        if bits < 16:
            fixed_cases.append(case)
    results, _ = simulate_layers(st, cases, "icarus")
    fixed_results, _ = simulate_layers(fixed, fixed_cases, "icarus")
    for r in results + fixed_results:
        assert r["output_ok"]
        assert r["cycles"] == r["model_cycles"]
        assert r["compute_cycles"] == r["model_compute_cycles"]
    for r in results:
        compute_util = r["macs"] / (r["compute_cycles"] * st.p * r["lanes"])
        overall = r["macs"] / (r["cycles"] * st.p * r["lanes"])
        assert compute_util >= 0.95
        print(f"{r['act_bits']}-bit: lanes {r['lanes']}, cycles {r['cycles']}, compute-phase "
              f"utilisation {compute_util:.1%}, overall {overall:.1%}")
    # Speed-up over the fixed tile on the same layer, in cycles (the 8-bit layer has 16
    # channels, the 4-bit one 32: both run on each tile).
    for r, fr in zip(results[1:], fixed_results, strict=True):
        assert fr["lanes"] == 1
        speedup = fr["cycles"] / r["cycles"]
        assert speedup > 0.9 * r["lanes"] * (1 if r["lanes"] == 1 else 0.95)
        print(f"{r['act_bits']}-bit: fixed {fr['cycles']} cycles, ST {r['cycles']}, "
              f"speed-up {speedup:.2f}x")
    # The model predicts the same for a large layer that the test does not simulate.
    big = ConvShape(c=64, m=64, h=56, w=56, k=3, stride=1, padding=1)
    assert layer_cycles(st, big, 4, 4).compute_utilisation >= 0.95
