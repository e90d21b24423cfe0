"""cocotb testbench for the MAC: drives :func:`mac_stimulus` and checks the accumulator
against the numpy model on every cycle."""

from __future__ import annotations

import json
import os
from collections import Counter

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from ..config import MacConfig
from .mac_stimulus import MacStimulus, mac_stimulus


def _config() -> MacConfig:
    return MacConfig.from_dict(json.loads(os.environ["RCM_CONFIG"]))


async def reset(dut) -> None:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name in ("a", "w", "mode", "act_signed", "en", "clear"):
        getattr(dut, name).value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


@cocotb.test()
async def mac_random(dut) -> None:
    """Random and corner operands in every mode; mode switches every cycle."""
    cfg = _config()
    count = int(os.environ.get("RCM_COUNT", "1000"))
    seed = int(os.environ.get("RCM_SEED", "1"))
    stim = mac_stimulus(cfg, count, seed)
    await reset(dut)
    checked, switches = await drive(dut, cfg, stim)
    with open(os.environ["RCM_RESULTS"], "w") as f:
        json.dump({"cycles": count, "products_checked": sum(checked.values()),
                   "by_mode": dict(sorted(checked.items())), "mode_switches": switches,
                   "seed": seed}, f, indent=2)


async def drive(dut, cfg: MacConfig, stim: MacStimulus) -> tuple[Counter[str], int]:
    """Apply ``stim`` one operation per cycle and check the accumulator on every cycle;
    the products checked per mode key (``8x4_s``) and the number of mode switches."""
    latency = cfg.latency
    count = len(stim)
    checked: Counter[str] = Counter()
    switches = 0
    for t in range(count + latency - 1):
        if t < count:
            dut.a.value = int(stim.a[t])
            dut.w.value = int(stim.w[t])
            dut.mode.value = int(stim.mode_value[t])
            dut.act_signed.value = int(stim.act_signed[t])
            dut.en.value = int(stim.en[t])
            dut.clear.value = int(stim.clear[t])
            if t and stim.mode[t] != stim.mode[t - 1]:
                switches += 1
        else:
            dut.en.value = 0
            dut.clear.value = 0
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        k = t - latency + 1  # the input cycle whose effect the accumulator now shows
        if k >= 0:
            got = dut.acc.value.to_signed()
            want = int(stim.expected[k])
            assert got == want, (
                f"cycle {k}: mode {stim.key(k)} a={int(stim.a[k]):#x} w={int(stim.w[k]):#x} "
                f"en={bool(stim.en[k])} clear={bool(stim.clear[k])}: acc {got}, expected "
                f"{want}")
            if stim.en[k]:
                checked[stim.key(k)] += 1
    return checked, switches
