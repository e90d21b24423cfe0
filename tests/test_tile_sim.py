"""The tile's RTL under cocotb: random layers (raw and post-processed, dense, grouped and
depthwise) against numpy and the cycle model on both simulators, for the ST tile and its
fixed twin; refused jobs with their status codes; utilisation and speed-up on full
layers."""

import re

import numpy as np
import pytest

from rcm_gen.conv import ConvShape
from rcm_gen.generate import render_design
from rcm_gen.presets import apply_overrides, preset
from rcm_gen.reference import INT32_MAX
from rcm_gen.tile.driver import PostProcess, layer_cycles
from rcm_gen.tile.simulate import LayerCase, random_case, random_post, simulate_layers


def regression_cases(cfg, count: int, seed: int, **sizes) -> list[LayerCase]:
    """Cases that together cover K 1/3/5/7, stride 1/2, every activation precision
    1..W, signed and unsigned activations, raw and post-processed sums, dense, grouped
    and depthwise layers; every third case has random idle cycles on the inputs and
    backpressure on the output."""
    rng = np.random.default_rng(seed)
    width = cfg.mac.width
    cases = []
    for i in range(count):
        cases.append(random_case(
            rng, cfg, k=(1, 3, 5, 7)[i % 4], stride=1 + (i // 4) % 2,
            act_bits=1 + (i * 5) % width, act_signed=(i // 2) % 2 == 0, stalls=i % 3 == 2,
            post=i % 2 == 1, groups=("dense", "grouped", "dense", "depthwise", "dense")[i % 5],
            **sizes))
    return cases


def check_regression(results, cases) -> dict:
    summary = {"cases": len(results), "full_rate_exact": 0, "stalled": 0, "post": 0,
               "grouped": 0}
    for r, case in zip(results, cases, strict=True):
        label = f"{r['shape']} bits={r['act_bits']}/{r['weight_bits']}"
        assert r["error"] == "NONE", label
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
        summary["post"] += case.post is not None
        summary["grouped"] += case.shape.groups > 1
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("name, simulator, count", [
    ("rcm-small", "icarus", 15), ("rcm-small", "verilator", 40),
    ("rcm-small-fixed", "icarus", 15),
    pytest.param("rcm-small-fixed", "verilator", 40, marks=pytest.mark.long)])
def test_random_layers(name, simulator, count):
    """Icarus evaluates the ST multipliers' adder trees net by net (a few hundred cycles a
    second), so it gets fewer and smaller layers than Verilator."""
    cfg = preset(name)
    sizes = {"max_c": 8, "max_m": 6, "max_hw": 7} if simulator == "icarus" else {}
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
def test_dsp_mac_tile():
    """A tile of dsp MACs (two narrow multipliers each, two pipeline stages) on random
    layers at every lane count: outputs equal numpy, cycles equal the model."""
    cfg = apply_overrides(preset("rcm-small"), ["mac.arch=dsp", "mac.pipeline=2"])
    sizes = {"max_c": 8, "max_m": 5, "max_hw": 6}
    cases = regression_cases(cfg, 6, seed=21, **sizes)
    rng = np.random.default_rng(21)
    cases += [random_case(rng, cfg, act_bits=a, weight_bits=4, act_signed=s, **sizes)
              for a, s in ((4, True), (3, False))]
    results, sim = simulate_layers(cfg, cases, "icarus")
    summary = check_regression(results, cases)
    assert {r["lanes"] for r in results} == {1, 2, 4}
    print(f"dsp tile on icarus: {summary}, {sim.wall_s:.1f} s")


#: A small P x Q array: 2 output channels x 4 pixels (banks for a 2x2 patch), 4-word
#: activation beats.
ARRAY = ["p=2", "qr=2", "qc=2", "act_beat=4"]


@pytest.mark.slow
@pytest.mark.parametrize("simulator, count", [
    ("icarus", 6), pytest.param("verilator", 24, marks=pytest.mark.long)])
def test_array_random_layers(simulator, count):
    """The P x Q array (interleaved activation banks, an output memory per MAC column, wide
    activation beats, two post-processing lanes) on random layers: outputs equal numpy,
    cycles equal the model."""
    cfg = apply_overrides(preset("rcm-small"), [*ARRAY, "ppu_lanes=2"])
    sizes = {"max_c": 6, "max_m": 5, "max_hw": 7} if simulator == "icarus" else {}
    cases = regression_cases(cfg, count, seed=sum(map(ord, "array" + simulator)), **sizes)
    results, sim = simulate_layers(cfg, cases, simulator)
    summary = check_regression(results, cases)
    print(f"{cfg.p}x{cfg.q} array on {simulator}: {summary}, {sim.wall_s:.1f} s")


@pytest.mark.slow
def test_array_column_stage():
    """The P x Q array of dsp MACs with a register stage at its columns' inputs, its MACs'
    pipeline registers in ECP5 MULT18X18D primitives (simulated with rcm_gen's model of
    them): outputs equal numpy and cycles equal the model (the stage delays the
    controller's side of a column by a cycle, not the drain's reads; the drain's row
    register adds a cycle to every block's drain), and the stage is
    there, its memory-port registers copied into each MAC's slice of the banks (the
    layers with backpressure pass through the drain's skid register)."""
    cfg = apply_overrides(preset("rcm-small"), [*ARRAY, "ppu_lanes=2", "column_stage=true",
                                                "mac.arch=dsp", "mac.pipeline=2",
                                                "mac.dsp_block=ecp5"])
    text = render_design(cfg).text
    assert len(re.findall(r"^\s*MULT18X18D #\(", text, re.M)) == 2  # one MAC, written once
    column = text.split("module rcm_tile__mac_column(")[1].split("endmodule")[0]
    for name in ("act_r", "wgt_r", "en_r", "bias_r"):
        assert f" {name} " in column or f" {name};" in column, name
    # each MAC's share of the output banks, with its own copy of the address registers
    assert len(re.findall(r"^\s*rcm_tile__out_slice_\w+ out\d+ \(", column, re.M)) == cfg.p
    out_slice = text.split("module rcm_tile__out_slice_")[1].split("endmodule")[0]
    for name in ("wr_addr_r", "wr_en_r", "psum_rd_addr_r", "init_from_r", "drain_bank_r"):
        assert f" {name} " in out_slice or f" {name};" in out_slice, name
    sizes = {"max_c": 6, "max_m": 5, "max_hw": 6}
    cases = regression_cases(cfg, 6, seed=sum(map(ord, "column stage")), **sizes)
    results, sim = simulate_layers(cfg, cases, "icarus")
    summary = check_regression(results, cases)
    print(f"{cfg.p}x{cfg.q} array with column stage on icarus: {summary}, "
          f"{sim.wall_s:.1f} s")


@pytest.mark.slow
def test_array_crossbar_stage():
    """The P x Q array with a register stage in its activation crossbar (16 banks, picked
    in groups of 4): outputs equal numpy, cycles equal the model, in which the stage adds
    latency and no step, and the stage is there."""
    cfg = apply_overrides(preset("rcm-small"), [*ARRAY, "ppu_lanes=2", "crossbar_stage=true"])
    assert cfg.act_banks == 16
    pixel = render_design(cfg).text.split("module rcm_tile__pixel_unit(")[1]
    pixel = pixel.split("endmodule")[0]
    for name in ("group_word0", "group_word3", "pad2"):
        assert f" {name} " in pixel or f" {name};" in pixel, name
    sizes = {"max_c": 6, "max_m": 5, "max_hw": 6}
    cases = regression_cases(cfg, 6, seed=sum(map(ord, "crossbar stage")), **sizes)
    results, sim = simulate_layers(cfg, cases, "icarus")
    summary = check_regression(results, cases)
    plain = cfg.replace(crossbar_stage=False)
    for case in cases:
        with_stage = layer_cycles(cfg, case.shape, case.act_bits, case.weight_bits)
        without = layer_cycles(plain, case.shape, case.act_bits, case.weight_bits)
        assert with_stage.compute == without.compute, case.shape
        assert with_stage.total > without.total, case.shape
    print(f"{cfg.p}x{cfg.q} array with crossbar stage on icarus: {summary}, "
          f"{sim.wall_s:.1f} s")


#: Operand widths (activation, weight) of the fusion tile's regression: every mode of a
#: W=16 tile with 4-bit bricks, asymmetric ones included, and widths between the modes.
FUSION_BITS = [(8, 4), (4, 8), (4, 4), (16, 16), (16, 4), (4, 16), (8, 16), (3, 7), (2, 12),
               (8, 8), (5, 3)]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", [
    "icarus", pytest.param("verilator", marks=pytest.mark.long)])  # its build: minutes
def test_fusion_tile_asymmetric_layers(simulator):
    """A tile of fusion MACs (4-bit bricks; activation words and weight words 64 bits) on
    layers whose activation and weight widths differ: each runs in the fastest mode that
    holds both (W4A8 and W8A4 at 8 products per cycle, twice the 8x8 mode's), outputs
    equal numpy, cycles equal the model."""
    cfg = apply_overrides(preset("rcm-small"), ["mac.arch=fusion", "mac.brick=4"])
    assert cfg.act_word_bits == cfg.weight_word_bits == 64
    rng = np.random.default_rng(sum(map(ord, "fusion" + simulator)))
    size = {"max_c": 20, "max_m": 5, "max_hw": 6 if simulator == "icarus" else 8}
    cases = [random_case(rng, cfg, act_bits=a, weight_bits=w, **size) for a, w in FUSION_BITS]
    results, sim = simulate_layers(cfg, cases, simulator)
    summary = check_regression(results, cases)
    products = {(r["act_bits"], r["weight_bits"]): r["lanes"] for r in results}
    assert products[(8, 4)] == products[(4, 8)] == 2 * products[(8, 8)] == 8
    assert products[(4, 4)] == 16 and products[(16, 16)] == 1 and products[(16, 4)] == 4
    assert products[(3, 7)] == products[(5, 3)] == 8 and products[(2, 12)] == 4
    print(f"fusion tile on {simulator}: {summary}, products {products}, {sim.wall_s:.1f} s")


def _small_layer(rng, c=4, m=3, post=True, size=4):
    shape = ConvShape(c=c, m=m, h=size, w=size, k=3, stride=1, padding=1)
    x = rng.integers(-8, 8, size=(c, size, size))
    w = rng.integers(-8, 8, size=(m, c, 3, 3))
    pp = random_post(rng, shape, 4, 4, 16, out_bits=4) if post else None
    return shape, x, w, pp


# Each spoiled job, and the status code the tile must answer with.
_REFUSALS = [
    ("kernel 0", [{"job": 0, "kind": "descriptor", "set": {"k": 0}}], "SIZE"),
    ("more groups than tn", [{"job": 0, "kind": "descriptor", "set": {"ng": 5}}], "SIZE"),
    ("stride beyond s_max", [{"job": 0, "kind": "descriptor", "set": {"s": 3}}], "SIZE"),
    ("unknown lane mode", [{"job": 0, "kind": "descriptor", "set": {"mode": 3}}], "MODE"),
    ("unknown output lane mode", [{"job": 0, "kind": "descriptor", "set": {"out_mode": 4}}],
     "MODE"),
    ("activations beyond a bank", [{"job": 0, "kind": "descriptor",
                                    "set": {"ng": 4, "in_h": 10, "in_w": 10}}], "BUFFER"),
    ("continuing without a block", [{"job": 0, "kind": "descriptor", "set": {"first": 0}}],
     "SEQUENCE"),
    ("no parameters to post-process", [{"job": 0, "kind": "descriptor",
                                        "set": {"params": 0}}], "PARAMS"),
    ("clamp min above max", [{"job": 0, "kind": "descriptor",
                              "set": {"out_min": 5, "out_max": 4}}], "PARAMS"),
    ("missing activation beat", [{"job": 0, "kind": "drop_beat", "stream": "act"}],
     "MISSING_BEAT"),
    ("extra weight beat", [{"job": 0, "kind": "extra_beat", "stream": "wgt"}], "EXTRA_BEAT"),
    ("extra parameter beat", [{"job": 0, "kind": "extra_beat", "stream": "par"}],
     "EXTRA_BEAT"),
]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", [
    "icarus", pytest.param("verilator", marks=pytest.mark.long)])
def test_refused_jobs_set_status_and_never_hang(simulator):
    """A spoiled descriptor or stream is refused with its status code; the tile then takes
    and discards all the host still sends, and sends nothing.  The reduction limit: two
    jobs continuing one block beyond ``max_reduction``.  Between the refusals, a good layer
    runs right (the tile is reset before each case)."""
    cfg = preset("rcm-small").replace(max_reduction=64)
    rng = np.random.default_rng(11)
    cases = []
    for _, inject, code in _REFUSALS:
        shape, x, w, pp = _small_layer(rng)
        cases.append(LayerCase(shape, x, w, 4, 4, True, post=pp, pad_value=-3,
                               inject=tuple(inject), expect_error=code))
    # 3x3 over 4 channels at 16 bits: 36 steps a job; two made into one block.
    shape, x, w, pp = _small_layer(rng, size=8)
    cases.append(LayerCase(shape, x, w, 16, 16, True, post=None, inject=(
        {"job": 0, "kind": "descriptor", "set": {"last": 0}},
        {"job": 1, "kind": "descriptor", "set": {"first": 0}}), expect_error="REDUCTION"))
    shape, x, w, pp = _small_layer(rng)
    cases.append(LayerCase(shape, x, w, 4, 4, True, post=pp, pad_value=-3))
    results, _ = simulate_layers(cfg, cases, simulator)
    for (label, _, code), r in zip([*_REFUSALS, ("reduction", None, "REDUCTION")], results,
                                   strict=False):
        assert r["error"] == code, label
        assert r["streams_consumed"], f"{label}: the tile stopped taking beats"
        spoiled = 1 if code == "REDUCTION" else 0
        assert r["error_job"] == spoiled, label
        assert r["mismatch"].startswith(f"the tile refused job {spoiled} of "), r["mismatch"]
    assert results[-1]["error"] == "NONE" and results[-1]["output_ok"]
    assert results[-1]["cycles"] == results[-1]["model_cycles"]


@pytest.mark.slow
def test_sums_beyond_int32_saturate_and_set_overflow():
    """A bias at the top of int32 plus positive products: the post-processing saturates
    the sum (as the reference does) and the sticky overflow flag is set; a layer without
    such sums leaves it clear."""
    cfg = preset("rcm-small")
    shape = ConvShape(c=2, m=2, h=3, w=3, k=1)
    x = np.full((2, 3, 3), 100)
    w = np.full((2, 2, 1, 1), 100)
    hot = PostProcess((INT32_MAX, 0), (1 << 30, 1 << 30), (-24, -24), 0, -128, 127, 8)
    results, _ = simulate_layers(cfg, [
        LayerCase(shape, x, w, 8, 8, True, post=hot),
        LayerCase(shape, x, w, 8, 8, True, post=hot.__class__(
            (1000, 0), hot.multiplier, hot.shift, 0, -128, 127, 8)),
    ], "verilator")
    assert results[0]["output_ok"] and results[0]["overflow"]
    assert results[1]["output_ok"] and not results[1]["overflow"]


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_depthwise_and_grouped_layers(simulator):
    """Depthwise (with and without a channel multiplier) and grouped layers, post-processed
    at 8, 4 and 2 bits, exact; the utilisation the mapping reaches is printed."""
    cfg = preset("rcm-small")
    rng = np.random.default_rng(21)
    cases = []
    for bits, (c, m, groups) in zip((8, 4, 2, 8), ((6, 6, 6), (5, 10, 5), (8, 8, 4),
                                                    (6, 12, 3)), strict=True):
        shape = ConvShape(c=c, m=m, h=6, w=6, k=3, stride=1, padding=1, groups=groups)
        x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(c, 6, 6))
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(m, c // groups, 3, 3))
        pp = random_post(rng, shape, bits, bits, 16, out_bits=bits)
        cases.append(LayerCase(shape, x, w, bits, bits, True, post=pp,
                               pad_value=int(rng.integers(-(1 << (bits - 1)),
                                                          1 << (bits - 1)))))
    results, _ = simulate_layers(cfg, cases, simulator)
    for r, case in zip(results, cases, strict=True):
        assert r["output_ok"], r["mismatch"]
        assert r["cycles"] == r["model_cycles"]
        util = r["macs"] / (r["cycles"] * cfg.p * r["lanes"])
        print(f"{case.shape}: {case.act_bits} bits, lanes {r['lanes']}, {r['cycles']} cycles, "
              f"utilisation {util:.1%}")


@pytest.mark.slow
@pytest.mark.parametrize("memory", [pytest.param("ff", marks=pytest.mark.long), "sram"])
def test_array_fills_its_macs(memory):
    """A 2 x 2x2 array on layers that fill it at 16, 8 and 4 bits: cycles equal the model,
    compute-phase utilisation ≥ 95 % of P·Q·N; with flip-flop buffers and with the buffers
    in SkyWater 130 SRAM macros (simulated with the macros' models).  (rcm-8x8, 64 MACs,
    is measured the same way by benchmarks/tile_utilisation.py.)"""
    cfg = apply_overrides(preset("rcm-small"), [
        *ARRAY, f"memory={memory}", *(["macros=sky130_sram"] if memory == "sram" else [])])
    rng = np.random.default_rng(8)
    cases = []
    for bits in (16, 8, 4):
        n = cfg.mac.lanes_for_bits(bits, bits)
        shape = ConvShape(c=cfg.tn * n, m=cfg.tm, h=cfg.tr, w=2 * cfg.tc, k=3, stride=1,
                          padding=1)
        x = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(shape.c, shape.h, shape.w))
        w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(shape.m, shape.c, 3, 3))
        pp = random_post(rng, shape, bits, bits, 16, out_bits=min(bits, 8))
        cases.append(LayerCase(shape, x, w, bits, bits, True, post=pp, pad_value=-1))
    results, _ = simulate_layers(cfg, cases, "verilator")
    for r in results:
        assert r["output_ok"], r["mismatch"]
        assert r["cycles"] == r["model_cycles"]
        assert r["compute_cycles"] == r["model_compute_cycles"]
        compute_util = r["macs"] / (r["compute_cycles"] * cfg.macs * r["lanes"])
        assert compute_util >= 0.95
        print(f"{cfg.p}x{cfg.q} array ({memory}) {r['act_bits']}-bit: lanes {r['lanes']}, "
              f"cycles {r['cycles']}, compute-phase utilisation {compute_util:.1%}, overall "
              f"{r['macs'] / (r['cycles'] * cfg.macs * r['lanes']):.1%}")


@pytest.mark.slow
def test_array_raster_groups_and_im2col():
    """The 2 x 2x2 array computes q = 4 consecutive pixels of a job in raster order (a
    5 x 5 layer: 7 groups where 2 x 2 patches would need 9), and layers with 3 input
    channels as 1x1 layers over their im2col windows (the host builds them): outputs equal
    numpy, cycles equal the model."""
    cfg = apply_overrides(preset("rcm-small"), [*ARRAY, "tr=6", "tc=6"])
    rng = np.random.default_rng(12)
    cases = []
    for shape, pad_value in ((ConvShape(4, 2, 5, 5, 3, 1, 1), -3),
                             (ConvShape(3, 2, 10, 10, 5, 2, 2), 5),
                             (ConvShape(3, 4, 9, 9, 3, 1, 1), -1)):
        x = rng.integers(-128, 128, size=(shape.c, shape.h, shape.w))
        w = rng.integers(-128, 128, size=(shape.m, shape.c, shape.k, shape.k))
        cases.append(LayerCase(shape, x, w, 8, 8, True,
                               post=random_post(rng, shape, 8, 8, 16), pad_value=pad_value))
    results, _ = simulate_layers(cfg, cases, "icarus")
    for r in results:
        assert r["output_ok"], r["mismatch"]
        assert r["cycles"] == r["model_cycles"]
        assert r["compute_cycles"] == r["model_compute_cycles"]
    raster, *lowered = results
    assert raster["tiling"]["im2col"] == 0
    assert raster["compute_cycles"] == 7 * 2 * 9  # 7 groups x 2 words x 3 x 3
    assert [r["tiling"]["im2col"] for r in lowered] == [1, 1]


@pytest.mark.slow
@pytest.mark.long
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
        pp = random_post(rng, shape, bits, bits, 16, out_bits=min(bits, 8))
        case = LayerCase(shape, x, w, bits, bits, True, post=pp)
        cases.append(case)
        if bits < 16:
            fixed_cases.append(case)
    results, _ = simulate_layers(st, cases, "verilator")
    fixed_results, _ = simulate_layers(fixed, fixed_cases, "verilator")
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


def test_verilator_builds_the_mac_arrays_repeated_module_once():
    """Verilator compiles a module's code once per instance; the MAC array's repeated
    module (columns, else MACs) is built as one hierarchical block instead, from four
    instances up, renamed in the simulated copy so that Verilator substitutes it."""
    from rcm_gen.sim.runner import _hier_blocks, _hier_source

    for name, want in [("rcm-small", []), ("rcm-default", ["rcm_tile__mac"]),
                       ("rcm-8x8", ["rcm_tile__mac_column"])]:
        assert _hier_blocks(render_design(preset(name))) == want, name
    design = render_design(preset("rcm-default"))
    text, vlt = _hier_source(design.text, ["rcm_tile__mac"])
    assert "module hier_rcm_tile_x_mac(" in text and "module rcm_tile__mac(" not in text
    assert text.count("  hier_rcm_tile_x_mac ") == design.text.count("  rcm_tile__mac ") == 4
    assert "module rcm_tile__mac__multiplier(" in text  # a longer name is left alone
    assert vlt == '`verilator_config\nhier_block -module "hier_rcm_tile_x_mac"\n'
