"""Multipliers: exhaustive at W=8, random and corners at W=16 and other lane sets, in their
generated Verilog (compiled), and the Amaranth simulator agreeing with it; the fusion
multiplier in every mode (exhaustive at W=8 compiled, corners and random at W=16 in the
Amaranth simulator)."""

import functools

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from rcm_gen.config import MacConfig
from rcm_gen.gateware.modes import LaneMode, mode_port_value
from rcm_gen.gateware.multiplier import make_multiplier
from rcm_gen.gateware.primitives import MODELS, instantiated_primitives
from rcm_gen.presets import preset
from rcm_gen.reference import mode_dot, pack_lanes, pack_operands, st_dot
from rcm_gen.sim.comb_sweep import CombSweep
from rcm_gen.sim.mac_stimulus import corner_values, exhaustive_stimulus


def _simulate(cfg: MacConfig, lanes: int, act_signed: bool, a, w) -> np.ndarray:
    """Products for word pairs ``a``, ``w`` (one mode) in the Amaranth simulator."""
    dut = make_multiplier(cfg)
    m = Module()
    m.submodules.dut = dut
    x = Signal(2 * cfg.width)  # one signal per pair: one settle per evaluation
    m.d.comb += [dut.a.eq(x[:cfg.width]), dut.w.eq(x[cfg.width:]),
                 dut.mode.eq(LaneMode.for_lanes(lanes)), dut.act_signed.eq(act_signed)]
    out = np.zeros(len(a), dtype=np.int64)

    async def bench(ctx):
        for i, (av, wv) in enumerate(zip(a.tolist(), w.tolist(), strict=True)):
            ctx.set(x, av | (wv << cfg.width))
            out[i] = ctx.get(dut.product)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return out


@functools.cache
def _compiled(cfg: MacConfig) -> CombSweep:
    dut = make_multiplier(cfg)
    text = verilog.convert(dut, name="mul")
    # the FPGA primitives it instantiates (dsp_block ecp5), as rcm_gen's models of them
    text += "".join(MODELS[name] for name in instantiated_primitives(text))
    return CombSweep(text, "mul", ("a", "w", "mode", "act_signed"),
                     {"product": (cfg.product_width, True)})


def _evaluate(cfg: MacConfig, lanes: int, act_signed: bool, a, w) -> np.ndarray:
    """Products the multiplier's generated Verilog computes for word pairs ``a``, ``w`` (one
    mode), in a compiled Verilator model (an exhaustive W=8 sweep is 65,536 settles per mode,
    minutes in the Amaranth simulator)."""
    sweep = _compiled(cfg)
    return sweep(a=a, w=w, mode=LaneMode.for_lanes(lanes).value,
                 act_signed=int(act_signed))["product"]


def _modes(arch):
    lanes = (1,) if arch == "fixed" else (1, 2, 4)
    return [(arch, n, s) for n in lanes for s in (True, False)]


def _mac_config(width: int, arch: str) -> MacConfig:
    """A W-bit multiplier of ``arch``; ``dsp-ecp5`` is the dsp architecture written as ECP5
    MULT18X18D primitives (simulated with rcm_gen's model of them)."""
    if arch == "dsp-ecp5":
        return MacConfig(width=width, arch="dsp", lanes=(1, 2, 4), dsp_block="ecp5")
    return MacConfig(width=width, arch=arch, lanes=(1,) if arch == "fixed" else (1, 2, 4))


_ARCH_MODES = (_modes("booth") + _modes("ppa") + _modes("fixed") + _modes("dsp")
               + _modes("dsp-ecp5"))


@pytest.mark.parametrize("arch, lanes, act_signed", _ARCH_MODES)
def test_exhaustive_w8(arch, lanes, act_signed):
    cfg = _mac_config(8, arch)
    a, w = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    a, w = a.ravel(), w.ravel()
    got = _evaluate(cfg, lanes, act_signed, a, w)
    want = st_dot(a, w, 8, lanes, act_signed)
    bad = np.nonzero(got != want)[0]
    assert not len(bad), (f"{len(bad)} wrong products, first a={a[bad[0]]:#x} "
                          f"w={w[bad[0]]:#x}: {got[bad[0]]} != {want[bad[0]]}")


def _w16_operands(lanes: int, act_signed: bool, count: int = 400):
    rng = np.random.default_rng(lanes * 2 + act_signed)
    n = 16 // lanes
    a_corner = corner_values(n, act_signed)
    w_corner = corner_values(n, True)
    # every corner pairing with all lanes equal, then random mixes of corners, then random
    av = [[x] * lanes for x in a_corner for _ in w_corner]
    wv = [[y] * lanes for _ in a_corner for y in w_corner]
    av += rng.choice(a_corner, size=(count, lanes)).tolist()
    wv += rng.choice(w_corner, size=(count, lanes)).tolist()
    lo = -(1 << (n - 1)) if act_signed else 0
    hi = (1 << (n - 1)) if act_signed else 1 << n
    av += rng.integers(lo, hi, size=(count, lanes)).tolist()
    wv += rng.integers(-(1 << (n - 1)), 1 << (n - 1), size=(count, lanes)).tolist()
    return pack_lanes(np.array(av), 16, act_signed), pack_lanes(np.array(wv), 16, True)


@pytest.mark.parametrize("arch, lanes, act_signed", _ARCH_MODES)
def test_random_and_corners_w16(arch, lanes, act_signed):
    cfg = _mac_config(16, arch)
    a, w = _w16_operands(lanes, act_signed)
    got = _evaluate(cfg, lanes, act_signed, a, w)
    want = st_dot(a, w, 16, lanes, act_signed)
    assert np.array_equal(got, want)
    # the most negative x most negative corner is among the cases
    n = 16 // lanes
    most_neg = pack_lanes(np.full((1, lanes), -(1 << (n - 1))), 16, True)[0]
    if act_signed:
        assert np.any((a == most_neg) & (w == most_neg))


@pytest.mark.parametrize("arch", ["booth", "ppa"])
def test_other_lane_sets(arch):
    """Lane sets other than 1/2/4: 2-bit lanes at W=16, a set without 1, W=32."""
    for width, lanes_set in ((16, (1, 2, 4, 8)), (16, (2, 8)), (32, (1, 4, 16))):
        cfg = MacConfig(width=width, arch=arch, lanes=lanes_set)
        for lanes in lanes_set:
            n = width // lanes
            rng = np.random.default_rng(width + lanes)
            for act_signed in (True, False):
                lo = -(1 << (n - 1)) if act_signed else 0
                hi = (1 << (n - 1)) if act_signed else 1 << n
                av = rng.integers(lo, hi, size=(60, lanes))
                wv = rng.integers(-(1 << (n - 1)), 1 << (n - 1), size=(60, lanes))
                a, w = pack_lanes(av, width, act_signed), pack_lanes(wv, width, True)
                got = _evaluate(cfg, lanes, act_signed, a, w)
                assert np.array_equal(got, st_dot(a, w, width, lanes, act_signed)), \
                    (width, lanes_set, lanes, act_signed)


@pytest.mark.parametrize("arch", ["booth", "ppa", "fixed", "dsp"])
def test_amaranth_simulator_agrees_with_the_verilog(arch):
    """The generated Verilog and the Amaranth description it comes from compute the same
    products (random words, every mode)."""
    lanes_set = (1,) if arch == "fixed" else (1, 2, 4)
    cfg = MacConfig(width=8, arch=arch, lanes=lanes_set)
    rng = np.random.default_rng(7)
    a, w = rng.integers(0, 256, 300), rng.integers(0, 256, 300)
    for lanes in lanes_set:
        for act_signed in (True, False):
            assert np.array_equal(_simulate(cfg, lanes, act_signed, a, w),
                                  _evaluate(cfg, lanes, act_signed, a, w)), (lanes, act_signed)


def test_dsp_other_lane_sets():
    """The dsp architecture's other lane sets and widths: W=4 (lanes 1/2), W=32 (its
    products wider than one DSP block), sets without 1 or 2 lanes."""
    for width, lanes_set in ((4, (1, 2)), (32, (1, 2, 4)), (16, (2, 4))):
        cfg = MacConfig(width=width, arch="dsp", lanes=lanes_set)
        for lanes in lanes_set:
            n = width // lanes
            rng = np.random.default_rng(width + lanes)
            for act_signed in (True, False):
                lo = -(1 << (n - 1)) if act_signed else 0
                hi = (1 << (n - 1)) if act_signed else 1 << n
                av = rng.integers(lo, hi, size=(60, lanes), dtype=np.int64)
                wv = rng.integers(-(1 << (n - 1)), 1 << (n - 1), size=(60, lanes),
                                  dtype=np.int64)
                # the extremes of every lane, then random words
                av[:4] = [[lo] * lanes, [hi - 1] * lanes, [lo] * lanes, [hi - 1] * lanes]
                wv[:4] = [[-(1 << (n - 1))] * lanes] * 2 + [[(1 << (n - 1)) - 1] * lanes] * 2
                a, w = pack_lanes(av, width, act_signed), pack_lanes(wv, width, True)
                got = _evaluate(cfg, lanes, act_signed, a, w)
                assert np.array_equal(got, st_dot(a, w, width, lanes, act_signed)), \
                    (width, lanes_set, lanes, act_signed)


def test_dsp_lane_set_refused():
    with pytest.raises(ValueError, match=r"^Lane set of the dsp architecture must be a "
                                         r"subset of \[1, 2, 4\], not \[1, 8\]$"):
        MacConfig(width=16, arch="dsp", lanes=(1, 8))


# -- fusion ------------------------------------------------------------------------------------


def _evaluate_cases(cfg: MacConfig, cases) -> list[int]:
    """Products for ``(mode, act_signed, a, w)`` cases (any architecture)."""
    dut = make_multiplier(cfg)
    out: list[int] = []

    async def bench(ctx):
        for mode, act_signed, a, w in cases:
            ctx.set(dut.a, int(a))
            ctx.set(dut.w, int(w))
            ctx.set(dut.mode.as_value(), mode_port_value(cfg, mode))
            ctx.set(dut.act_signed, act_signed)
            out.append(ctx.get(dut.product))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


def _extremes(bits: int, signed: bool) -> list[int]:
    lo, hi = -(1 << (bits - 1)) if signed else 0, (1 << (bits - 1 if signed else bits)) - 1
    return sorted({lo, hi, -1 if signed else 1})


def _mode_cases(cfg: MacConfig, random: int, seed: int = 0, corners=corner_values):
    """Per mode and signedness: every pairing of ``corners`` values with all terms equal,
    then ``random`` random operand words."""
    rng = np.random.default_rng(seed)
    cases, want = [], []
    for md in cfg.mac_modes:
        for s in (False, True):
            pairs = [(x, y) for x in corners(md.act_bits, s)
                     for y in corners(md.weight_bits, True)]
            av = np.array([[x] * md.products for x, _ in pairs])
            wv = np.array([[y] * md.products for _, y in pairs])
            a_lo = -(1 << (md.act_bits - 1)) if s else 0
            a_hi = (1 << (md.act_bits - 1)) if s else 1 << md.act_bits
            av = np.concatenate([av, rng.integers(a_lo, a_hi, size=(random, md.products))])
            wv = np.concatenate([wv, rng.integers(-(1 << (md.weight_bits - 1)),
                                                  1 << (md.weight_bits - 1),
                                                  size=(random, md.products))])
            a, w = pack_operands(av, wv, md, s)
            cases += [(md, s, x, y) for x, y in zip(a, w, strict=True)]
            want += [int(v) for v in mode_dot(a, w, md, s)]
            # the reference is the plain dot product of the terms
            assert np.array_equal(mode_dot(a, w, md, s), np.sum(av * wv, axis=1))
    return cases, want


def _check(cfg: MacConfig, cases, want) -> None:
    got = _evaluate_cases(cfg, cases)
    bad = [i for i, (g, x) in enumerate(zip(got, want, strict=True)) if g != x]
    assert not bad, (f"{len(bad)} wrong products, first in mode {cases[bad[0]][0].name} "
                     f"act_signed={cases[bad[0]][1]}: {got[bad[0]]} != {want[bad[0]]}")


def test_fusion_every_mode_w8():
    """mac8-fusion in the Amaranth simulator: extreme values and random words in all nine
    modes, both signednesses (its Verilog is swept exhaustively below)."""
    cfg = preset("mac8-fusion")
    _check(cfg, *_mode_cases(cfg, random=6, corners=_extremes))


def test_fusion_exhaustive_w8():
    """mac8-fusion's generated Verilog, compiled: every operand value pair in every term of
    each of the nine modes, both signednesses (all 65,536 operand words of the 8x8 mode),
    against numpy."""
    cfg = preset("mac8-fusion")
    stim = exhaustive_stimulus(cfg)
    for i, m in enumerate(cfg.mac_modes):
        for s in (False, True):
            pairs = 1 << (m.act_bits + m.weight_bits)
            terms = m.products + 1 if m.products > 1 else 1
            assert np.count_nonzero((stim.mode == i) & (stim.act_signed == s)) == pairs * terms
    got = _compiled(cfg)(a=stim.a, w=stim.w, mode=stim.mode_value,
                         act_signed=stim.act_signed.astype(np.int64))["product"]
    bad = np.nonzero(got != stim.product)[0]
    assert not len(bad), (f"{len(bad)} wrong products, first in {stim.key(bad[0])}: "
                          f"{got[bad[0]]} != {stim.product[bad[0]]}")


@pytest.mark.slow
@pytest.mark.long
def test_fusion_corners_and_random_w16():
    """mac16-fusion: extreme values and random words in all sixteen modes, both
    signednesses (the cocotb regression adds thousands more on the Verilog)."""
    cfg = preset("mac16-fusion")
    _check(cfg, *_mode_cases(cfg, random=2, seed=1, corners=_extremes))


@pytest.mark.parametrize("name, changes", [
    ("mac8-fusion", {"brick": 4, "lanes": (1, 2)}),                 # 4-bit bricks
    ("mac16-fusion", {"modes": ("8x8", "8x4", "4x2", "16x2")}),     # a subset of the pairings
    pytest.param("mac16-fusion", {"brick": 4, "lanes": (1, 2, 4)}, marks=pytest.mark.long),
], ids=["brick4-w8", "mode-subset-w16", "brick4-w16"])
def test_fusion_variants(name, changes):
    """Extreme values and random words in every mode of other fusion configurations."""
    cfg = preset(name).replace(**changes)
    _check(cfg, *_mode_cases(cfg, random=3, seed=2, corners=_extremes))


def test_fusion_st_modes_agree_with_st_dot():
    """A Sum-Together mode's words mean what :func:`st_dot` says (the shared reference)."""
    cfg = MacConfig(width=16)
    rng = np.random.default_rng(3)
    for md in cfg.mac_modes:
        av = rng.integers(0, 1 << md.act_bits, size=(50, md.products))
        wv = rng.integers(-(1 << (md.weight_bits - 1)), 1 << (md.weight_bits - 1),
                          size=(50, md.products))
        a, w = pack_operands(av, wv, md, False)
        assert np.array_equal(a, pack_lanes(av, 16, False))
        assert np.array_equal(mode_dot(a, w, md, False), st_dot(a, w, 16, md.products, False))
