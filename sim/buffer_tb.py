"""cocotb testbench for Buffers on their own: random writes and reads (with pauses of the
read enable, reads of the word written in the same and in the previous cycle) checked
every cycle against the Buffer contract, whatever the memory is built from.

The design has one write port and one read port (``wr_*``, ``rd_*``, ``width`` bits,
``depth`` words) shared by several buffers, each with its own read data output.
Parameters (``RCM_CONFIG``): ``width``, ``depth``, ``cycles``, ``seed``, and ``buffers``:
a list of ``{"port", "width", "depth", "transparent", "strict"}`` (a buffer narrower or
shallower than the ports sees the low bits of the data and the address modulo its
depth).  A ``strict`` buffer fails the test on its first wrong or unknown word; the
others' mismatches are only counted (for a design that is meant to be caught).
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer


class BufferModel:
    """The Buffer contract: read data appear the cycle after the address and hold while
    ``rd_en`` is low; a read of the address written in the same cycle returns the old
    word (the new one if ``transparent``)."""

    def __init__(self, transparent: bool) -> None:
        self.transparent = transparent
        self.mem: dict[int, int] = {}
        self.rd_data: int | None = None  # None: not known (no read, or an unwritten word)

    def clock(self, wr_en: int, wr_addr: int, wr_data: int, rd_en: int, rd_addr: int) -> None:
        if rd_en:
            if self.transparent and wr_en and wr_addr == rd_addr:
                self.rd_data = wr_data
            else:
                self.rd_data = self.mem.get(rd_addr)
        if wr_en:
            self.mem[wr_addr] = wr_data


@cocotb.test()
async def buffer_random(dut) -> None:
    p = json.loads(os.environ["RCM_CONFIG"])
    width, depth, cycles = int(p["width"]), int(p["depth"]), int(p["cycles"])
    rng = random.Random(int(p["seed"]))
    buffers = p["buffers"]
    models = [BufferModel(bool(b["transparent"])) for b in buffers]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name in ("wr_en", "wr_addr", "wr_data", "rd_en", "rd_addr"):
        getattr(dut, name).value = 0
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    checked = [0] * len(buffers)
    wrong = [0] * len(buffers)
    held = same_cycle = previous_cycle = 0
    last_wr = 0
    # a few addresses of each region (first and last words, around every 2^k), so that
    # reads often find written words, and the rest at random
    hot = sorted({a for k in range(depth.bit_length() + 1)
                  for a in ((1 << k) - 1, 1 << k, (1 << k) + 1, depth - 1 - k) if 0 <= a < depth})
    pause = 0
    for t in range(cycles):
        wr_en = int(rng.random() < 0.6)
        wr_addr = rng.choice(hot) if rng.random() < 0.7 else rng.randrange(depth)
        wr_data = rng.getrandbits(width)
        if pause:
            pause -= 1
            rd_en = 0
        else:
            rd_en = int(rng.random() < 0.75)
            if rng.random() < 0.05:
                pause = rng.randrange(2, 8)
        r = rng.random()
        rd_addr = (wr_addr if r < 0.25 else last_wr if r < 0.45 else
                   rng.choice(hot) if r < 0.8 else rng.randrange(depth))
        if rd_en and wr_en and rd_addr == wr_addr:
            same_cycle += 1
        elif rd_en and rd_addr == last_wr:
            previous_cycle += 1
        held += 1 - rd_en
        dut.wr_en.value, dut.wr_addr.value, dut.wr_data.value = wr_en, wr_addr, wr_data
        dut.rd_en.value, dut.rd_addr.value = rd_en, rd_addr
        for b, model in zip(buffers, models, strict=True):
            mask = (1 << int(b["width"])) - 1
            d = int(b["depth"])
            model.clock(wr_en, wr_addr % d, wr_data & mask, rd_en, rd_addr % d)
        if wr_en:
            last_wr = wr_addr
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        await Timer(1, unit="ns")  # read data are due before the next rising edge
        for i, (b, model) in enumerate(zip(buffers, models, strict=True)):
            if model.rd_data is None:
                continue
            value = getattr(dut, b["port"]).value
            ok = value.is_resolvable and int(value) == model.rd_data
            if b["strict"]:
                assert ok, (f"{b['port']}, cycle {t}: rd_data {value}, expected "
                            f"{model.rd_data:#x} (rd_en={rd_en} rd_addr={rd_addr} "
                            f"wr_en={wr_en} wr_addr={wr_addr})")
            checked[i] += 1
            wrong[i] += not ok
    with open(os.environ["RCM_RESULTS"], "w") as f:
        json.dump({"cycles": cycles, "checked": checked, "wrong": wrong, "held": held,
                   "same_cycle_reads": same_cycle, "previous_cycle_reads": previous_cycle},
                  f, indent=2)
