"""The host driver and the cycle model, without simulation: tilings fit the buffers, jobs
cover the layer, and a numpy emulation of the tile's jobs (accumulating over a block's
jobs, padding with the pad word, post-processing) reproduces the reference."""

import dataclasses
import math

import numpy as np
import pytest

from rcm_gen.conv import ConvShape
from rcm_gen.presets import preset
from rcm_gen.reference import requantize, unpack_lanes
from rcm_gen.tile.driver import Tiling, assemble_output, job_streams, layer_cycles, plan_layer
from rcm_gen.tile.simulate import expected_output, random_post


def emulate_job(plan, job, acts, wgts, pars, sums):
    """What the tile computes for one job from the streamed words (the loop nest of the
    controller, in numpy): ``sums`` (the block's partial sums) updated in place; the
    post-processed or raw rows returned when the job completes its block."""
    cfg, s, n = plan.config, plan.shape, plan.lanes
    width = cfg.mac.width
    words = np.asarray(acts).reshape(job.ng, job.in_h, -1)[:, :, :job.in_w]  # beats → words
    a = unpack_lanes(words, width, n, plan.act_signed).reshape(job.ng, job.in_h, job.in_w, n)
    pad = unpack_lanes(np.array([plan.pad_word]), width, n, plan.act_signed)[0]
    wv = unpack_lanes(wgts, width, n, True).reshape(job.mb, job.ng, s.k, s.k, cfg.p, n)
    if job.first:
        sums[...] = 0
        if pars:
            sums += np.array([[c[0] for c in row] for row in pars])[:, None, None, :]
    # The input the job's windows cover, padding holding the pad word.
    rows, cols = (job.tr - 1) * s.stride + s.k, (job.tc - 1) * s.stride + s.k
    window = np.broadcast_to(pad, (job.ng, rows, cols, n)).copy()
    h = min(job.in_h, rows - job.pad_top)
    w = min(job.in_w, cols - job.pad_left)
    window[:, job.pad_top:job.pad_top + h, job.pad_left:job.pad_left + w] = a[:, :h, :w]
    for ky in range(s.k):
        for kx in range(s.k):
            patch = window[:, ky:ky + s.stride * (job.tr - 1) + 1:s.stride,
                           kx:kx + s.stride * (job.tc - 1) + 1:s.stride]
            sums += np.einsum("grcn,bgpn->brcp", patch, wv[:, :, ky, kx])
    if not job.last:
        return None
    rows = sums.reshape(-1, cfg.p).copy()
    if plan.raw:
        return rows
    mult = np.array([[c[1] for c in row] for row in pars])
    shift = np.array([[c[2] for c in row] for row in pars])
    blk = rows.reshape(job.mb, job.tr * job.tc, cfg.p)
    values, _ = requantize(blk, mult[:, None, :], shift[:, None, :], plan.post.zero_point,
                           plan.post.lo, plan.post.hi, plan.post.rounding)
    return values.reshape(-1, cfg.p)


SHAPES = [
    ConvShape(3, 5, 9, 9, 3, 1, 1), ConvShape(7, 9, 11, 10, 5, 2, 2),
    ConvShape(1, 1, 7, 7, 7, 2, 3), ConvShape(17, 3, 6, 5, 1, 1, 0),
    ConvShape(40, 20, 8, 8, 3, 1, 1), ConvShape(3, 64, 30, 30, 7, 2, 3),
    ConvShape(12, 12, 7, 6, 3, 2, groups=12, pads=(0, 1, 1, 0)),
    ConvShape(6, 12, 5, 5, 3, 1, 1, groups=3), ConvShape(5, 10, 4, 4, 3, 1, 1, groups=5),
    ConvShape(9, 6, 7, 8, 1, 2, 0),
]


@pytest.mark.parametrize("name", ["rcm-small", "rcm-default", "rcm-default-fixed", "rcm-8x8"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("bits, act_signed, post", [(16, True, False), (8, False, True),
                                                    (4, True, True), (2, False, False),
                                                    (8, True, "bias only")])
def test_jobs_reproduce_the_reference(name, shape, bits, act_signed, post):
    cfg = preset(name)
    rng = np.random.default_rng(shape.c * 31 + bits)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if act_signed else (0, 1 << bits)
    x = rng.integers(lo, hi, size=(shape.c, shape.h, shape.w))
    w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1),
                     size=(shape.m, shape.group_in, shape.k, shape.k))
    pp = random_post(rng, shape, bits, bits, 16) if post else None
    if post == "bias only":
        pp = dataclasses.replace(pp, requantize=False)
    pad_value = int(rng.integers(lo, hi)) if post else 0
    plan = plan_layer(cfg, shape, bits, bits, act_signed, post=pp, pad_value=pad_value)
    results = []
    sums = None
    for job in plan.jobs():
        acts, wgts, pars = job_streams(plan, job, x, w)
        # every job fits the buffers and the accumulator's reduction
        by, bx = cfg.act_banks_yx
        assert len(acts) == job.act_beats(cfg.act_beat)
        assert job.ng * -(-job.in_h // by) * -(-job.in_w // bx) <= cfg.act_buffer_depth
        assert len(wgts) == job.weight_rows(plan.shape.k) <= cfg.weight_buffer_depth
        patches = -(-job.tr * job.tc // cfg.q)
        assert cfg.distinct_banks(job.tr, job.tc, plan.shape.stride)
        assert job.ng <= cfg.tn and job.mb * patches <= cfg.out_buffer_depth
        carries = pp is not None and (job.first or (job.last and pp.requantize))
        assert len(pars) == (job.mb if carries else 0)
        if job.first:
            sums = np.zeros((job.mb, job.tr, job.tc, cfg.p), dtype=np.int64)
        rows = emulate_job(plan, job, acts, wgts, pars, sums)
        if rows is not None:
            results.append(rows)
    assert sum(1 for _ in plan.jobs()) == plan.job_count
    expected, _ = expected_output(shape, x, w, pp, pad_value)
    assert np.array_equal(assemble_output(plan, results), expected)


def test_pixel_groups_read_distinct_banks():
    """A group of q pixels (raster order) must read q distinct activation banks: rcm-16x16
    has 8 x 8 banks for its 4 x 4 patch at stride 2."""
    cfg = preset("rcm-16x16")
    assert cfg.distinct_banks(8, 4, 2)       # 4 x 4 patches
    assert not cfg.distinct_banks(8, 8, 2)   # x and x + 4 of one row: the same bank
    assert cfg.distinct_banks(8, 8, 1) and cfg.distinct_banks(7, 7, 1)
    assert cfg.distinct_banks(8, 6, 1)       # groups over 3 and 4 rows of 6
    assert not cfg.distinct_banks(8, 1, 2)   # a column at stride 2: rows y, y + 4 share
    assert cfg.distinct_banks(1, 1, 2)
    # a tiling given by hand is held to the same rule
    with pytest.raises(ValueError, match=r"^a tiling of 8x8 outputs has pixel groups that "
                       r"read one activation bank twice at stride 2 \(the tile's banks are "
                       r"8 rows by 8 columns\)$"):
        plan_layer(cfg, ConvShape(64, 64, 28, 28, 3, 2, 1), 8, 8,
                   tiling=Tiling(tm=32, tr=8, tc=8, channels=64))
    # every job the planner makes passes (asserted per job in the test above too)
    for shape in (ConvShape(64, 64, 14, 14, 3, 1, 1), ConvShape(64, 64, 14, 14, 3, 2, 1),
                  ConvShape(8, 8, 3, 40, 3, 1, 1), ConvShape(8, 8, 40, 1, 1)):
        plan = plan_layer(cfg, shape, 8, 8)
        assert all(cfg.distinct_banks(j.tr, j.tc, plan.shape.stride) for j in plan.jobs())


def test_raster_groups_fill_the_array_where_patches_do_not():
    """A 14 x 14 layer on rcm-16x16: 16-pixel groups in raster order (8 x 8, 8 x 6, 6 x 8,
    6 x 6 jobs: 13 groups for 196 pixels) where 4 x 4 patches would need 16."""
    cfg = preset("rcm-16x16")
    lc = layer_cycles(cfg, ConvShape(64, 64, 14, 14, 3, 1, 1), 8, 8)
    assert lc.compute == 64 // cfg.p * 13 * (64 // 2) * 9
    assert lc.compute_utilisation == pytest.approx(196 / 208)


def test_layers_with_few_channels_run_as_im2col():
    """ResNet-18's stem (3 channels: one 2-lane word of two and one of one) runs as a 1x1
    layer over its 147-channel windows where that takes fewer cycles; at 16 bits (one
    lane, nothing to fill) and with channels that fill the words, as itself."""
    cfg = preset("rcm-16x16")
    stem = ConvShape(3, 64, 224, 224, 7, 2, 3)
    plan = plan_layer(cfg, stem, 8, 8)
    assert plan.im2col == stem and plan.shape == ConvShape(147, 64, 112, 112, 1)
    lc = layer_cycles(cfg, stem, 8, 8)
    assert lc.tiling["im2col"] == 1 and lc.compute_utilisation > 0.99
    assert plan_layer(cfg, stem, 16, 16).im2col is None
    assert plan_layer(cfg, ConvShape(4, 64, 56, 56, 3, 1, 1), 8, 8).im2col is None


def test_lanes_follow_bits():
    cfg = preset("rcm-small")
    shape = ConvShape(8, 4, 6, 6, 3, 1, 1)
    assert [plan_layer(cfg, shape, b, b).lanes for b in (16, 9, 8, 5, 4, 1)] == [1, 1, 2, 2,
                                                                                   4, 4]
    assert plan_layer(cfg, shape, 4, 8).lanes == 2
    assert plan_layer(cfg.fixed_twin(), shape, 4, 4).lanes == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 9}, r"^kernel 9 is beyond the tile's k_max=7$"),
    ({"stride": 3}, r"^stride 3 is beyond the tile's s_max=2$"),
    ({"padding": 3}, r"^padding 3 must be from 0 to k-1=2$"),
])
def test_layers_the_tile_cannot_run(kwargs, message):
    base = {"c": 4, "m": 4, "h": 12, "w": 12, "k": 3, "stride": 1, "padding": 1}
    with pytest.raises(ValueError, match=message):
        plan_layer(preset("rcm-small"), ConvShape(**{**base, **kwargs}), 8, 8)
    with pytest.raises(ValueError, match=r"^activation bits must be from 1 to 16, not 17$"):
        plan_layer(preset("rcm-small"), ConvShape(**base), 17, 8)


def test_cycle_model_scales_with_lanes():
    """On a layer that fills the tile, the compute phase runs at ≥ 95 % of P·N, and the
    ST tile's cycles fall with the lane count where the fixed tile's do not."""
    st, fixed = preset("rcm-default"), preset("rcm-default-fixed")
    cycles = {}
    for bits in (16, 8, 4):
        n = st.mac.lanes_for_bits(bits, bits)
        shape = ConvShape(c=st.tn * n, m=st.tm, h=4 * st.tr, w=4 * st.tc, k=3, stride=1,
                          padding=1)
        lc = layer_cycles(st, shape, bits, bits)
        assert lc.lanes == n
        assert lc.compute_utilisation >= 0.95
        assert lc.utilisation >= 0.9
        assert lc.ideal == math.ceil(shape.macs / (st.p * n))
        cycles[bits] = (lc.total, layer_cycles(fixed, shape, bits, bits).total)
    # same layer at 8 bits: about 2x faster than the fixed tile, at 4 bits about 4x
    shape8 = ConvShape(c=32, m=8, h=16, w=16, k=3, stride=1, padding=1)
    st8 = layer_cycles(st, shape8, 8, 8).total
    st4 = layer_cycles(st, shape8, 4, 4).total
    fx = layer_cycles(fixed, shape8, 8, 8).total
    assert 1.8 < fx / st8 <= 2.0
    assert 3.4 < fx / st4 <= 4.0


def test_layer_model_equals_job_by_job_recurrence():
    """plan_cycles advances runs of identical jobs in one step; it must give the same total
    as following every job (job_timings), on random layers and tile shapes, including ones
    with partial blocks in every dimension."""
    from rcm_gen.tile.cycles import job_timings, plan_cycles

    rng = np.random.default_rng(7)
    bases = [preset("rcm-small"), preset("rcm-default"), preset("rcm-small-fixed")]
    checked = 0
    for _ in range(60):
        base = bases[rng.integers(len(bases))]
        p = int(rng.choice([1, 2, 4]))
        cfg = base.replace(p=p, tm=p * int(rng.integers(1, 4)), tn=int(rng.integers(1, 5)),
                           tr=int(rng.integers(1, 5)), tc=int(rng.integers(1, 5)))
        if rng.random() < 0.5:
            cfg = cfg.replace(ppu_lanes=int(rng.choice([d for d in (1, 2, 4) if p % d == 0])))
        k = int(rng.choice([1, 3, 5, 7]))
        stride = int(rng.choice([1, 2]))
        h, w = int(rng.integers(k, 20)), int(rng.integers(k, 20))
        groups = int(rng.choice([1, 1, 2, 3]))
        c, m = groups * int(rng.integers(1, 14)), groups * int(rng.integers(1, 7))
        shape = ConvShape(c, m, h, w, k, stride, int(rng.integers(0, k // 2 + 1)),
                          groups=groups)
        bits = int(rng.choice([16, 8, 6, 4, 2]))
        if bits > 8 and not cfg.is_fixed and rng.random() < 0.5:
            bits = 4
        post = random_post(rng, shape, bits, bits, 16) if rng.random() < 0.5 else None
        plan = plan_layer(cfg, shape, bits, bits, post=post)
        fast = plan_cycles(plan)
        timings = job_timings(plan)
        assert fast.total == max(t.done for t in timings if t.done is not None) + 1, (
            cfg, shape, bits)
        assert fast.compute == sum(t.steps for t in timings)
        assert fast.jobs == len(timings)
        checked += 1
    assert checked == 60


def test_layer_model_is_fast_on_resnet18_with_a_tiny_tile():
    """A ResNet-18 layer on a 1x2x2-output tile is ~800,000 jobs; the model must not walk
    them one by one (here: under a million job steps, counted)."""
    from rcm_gen.tile import cycles

    calls = 0
    real = cycles._events

    def counting(*args):
        nonlocal calls
        calls += 1
        return real(*args)

    cfg = preset("rcm-small").replace(p=1, tm=1, tn=2, tr=2, tc=2)
    shape = ConvShape(64, 64, 56, 56, 3, 1, 1)
    plan = plan_layer(cfg, shape, 8, 8)
    try:
        cycles._events = counting
        lc = cycles.plan_cycles(plan)
    finally:
        cycles._events = real
    assert lc.jobs == plan.job_count > 500_000
    assert calls < 1000, calls
