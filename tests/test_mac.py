"""The MAC in the Amaranth simulator: accumulate, clear, pipeline, accumulator bound."""

import pytest
from amaranth.sim import Simulator

from rcm_gen.config import MacConfig
from rcm_gen.gateware.mac import MAC
from rcm_gen.gateware.modes import LaneMode
from rcm_gen.presets import preset
from rcm_gen.reference import pack_lanes
from rcm_gen.sim.mac_stimulus import mac_stimulus


def _run(cfg: MacConfig, stim) -> list[int]:
    dut = MAC(cfg)
    seen: list[int] = []

    async def bench(ctx):
        for t in range(len(stim) + cfg.latency - 1):
            if t < len(stim):
                ctx.set(dut.a, int(stim.a[t]))
                ctx.set(dut.w, int(stim.w[t]))
                ctx.set(dut.mode.as_value(), int(stim.mode_value[t]))
                ctx.set(dut.act_signed, int(stim.act_signed[t]))
                ctx.set(dut.en, int(stim.en[t]))
                ctx.set(dut.clear, int(stim.clear[t]))
            else:
                ctx.set(dut.en, 0)
                ctx.set(dut.clear, 0)
            await ctx.tick()
            if t >= cfg.latency - 1:
                seen.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("arch", ["booth", "ppa", "fixed", "dsp"])
@pytest.mark.parametrize("pipeline", [0, 1, 2])
def test_mac_random_with_mode_switches(arch, pipeline):
    cfg = MacConfig(width=16, arch=arch, lanes=(1,) if arch == "fixed" else (1, 2, 4),
                    pipeline=pipeline)
    stim = mac_stimulus(cfg, 300, seed=pipeline)
    assert _run(cfg, stim) == [int(x) for x in stim.expected]


@pytest.mark.parametrize("pipeline", [2])
def test_fusion_mac_random_with_mode_switches(pipeline):
    """The fusion MAC (W=8: 32-bit operand words, nine modes) switching mode every cycle;
    its mode, like its operands, travels down the pipeline."""
    cfg = preset("mac8-fusion").replace(pipeline=pipeline)
    stim = mac_stimulus(cfg, 150, seed=pipeline)
    assert len({stim.key(t) for t in range(len(stim))}) == 18
    assert _run(cfg, stim) == [int(x) for x in stim.expected]


@pytest.mark.parametrize("arch", ["booth", "ppa", "fixed", "dsp"])
def test_accumulator_holds_longest_reduction(arch):
    """``reduction`` worst-case products accumulate without overflow (both extremes)."""
    lanes_set = (1,) if arch == "fixed" else (1, 2, 4)
    cfg = MacConfig(width=8, arch=arch, lanes=lanes_set, reduction=37, pipeline=1)
    for lanes in lanes_set:
        n = 8 // lanes
        most_neg = -(1 << (n - 1))
        cases = [  # (a lane value, act_signed, w lane value)
            (most_neg, True, most_neg),              # largest positive product
            ((1 << n) - 1, False, most_neg),         # most negative product
        ]
        for a_val, act_signed, w_val in cases:
            a = int(pack_lanes([[a_val] * lanes], 8, act_signed)[0])
            w = int(pack_lanes([[w_val] * lanes], 8, True)[0])
            dut = MAC(cfg)
            result = {}

            async def bench(ctx, dut=dut, a=a, w=w, act_signed=act_signed, result=result,
                            lanes=lanes):
                ctx.set(dut.a, a)
                ctx.set(dut.w, w)
                ctx.set(dut.mode, LaneMode.for_lanes(lanes))
                ctx.set(dut.act_signed, act_signed)
                ctx.set(dut.en, 1)
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                await ctx.tick().repeat(cfg.reduction - 1)
                ctx.set(dut.en, 0)
                await ctx.tick().repeat(cfg.latency)
                result["acc"] = ctx.get(dut.acc)

            sim = Simulator(dut)
            sim.add_clock(1e-8)
            sim.add_testbench(bench)
            sim.run()
            assert result["acc"] == cfg.reduction * lanes * a_val * w_val
    assert cfg.accumulator_width < MacConfig(width=8, arch=arch, lanes=lanes_set,
                                             reduction=38 * 64).accumulator_width
