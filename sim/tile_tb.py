"""cocotb testbench for the RCM tile: runs whole layers through the RTL with the host
driver, checks every output against numpy and the cycles against the analytic model.

Reads ``RCM_CASES`` (a JSON file: a list of cases, each with ``shape``, ``act_bits``,
``weight_bits``, ``act_signed``, ``x``/``w`` as ``.npy`` paths, ``idle`` and
``backpressure`` probabilities, ``seed`` and an optional ``output`` ``.npy`` path) and
writes per-case measurements to ``RCM_RESULTS``.
"""

from __future__ import annotations

import json
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, First, ReadOnly, RisingEdge, Timer

from ..conv import ConvShape
from ..gateware.layouts import job_layout, pack_payload
from ..reference import conv2d
from ..tile.config import TileConfig
from ..tile.cycles import job_timings, plan_cycles
from ..tile.driver import assemble_output, job_streams, plan_layer

PERIOD_NS = 10
#: A tile that changes none of its ports for this many cycles has stalled.
STALL_CYCLES = 1_000_000


class _Stream:
    """A source of beats (payload integers) with random idle cycles."""

    def __init__(self, valid, payload, ready, beats: list[int], idle: float,
                 rng: random.Random) -> None:
        self.valid, self.payload, self.ready = valid, payload, ready
        self.beats, self.idle, self.rng = beats, idle, rng
        self.pos = 0
        self.offered = False

    def drive(self) -> None:
        """Decide this cycle's valid/payload."""
        have = self.pos < len(self.beats)
        offer = have and not (self.idle and self.rng.random() < self.idle)
        if offer:
            self.payload.value = self.beats[self.pos]
        if offer != self.offered:
            self.valid.value = int(offer)
        self.offered = offer

    def sample(self) -> bool:
        """After settling: did a beat transfer at the coming edge?"""
        if self.offered and self.ready.value:
            self.pos += 1
            return True
        return False


def _acc_values(word: int, p: int, width: int) -> list[int]:
    out = []
    for i in range(p):
        v = (word >> (i * width)) & ((1 << width) - 1)
        out.append(v - (1 << width) if v >> (width - 1) else v)
    return out


async def _count_run_cycles(dut, counter: dict) -> None:
    """Cycles in which the controller issues a step (its ``run`` register is set)."""
    run = dut.controller.run
    while True:
        await RisingEdge(run)
        t0 = get_sim_time("ns")
        await FallingEdge(run)
        counter["run"] += round((get_sim_time("ns") - t0) / PERIOD_NS)


async def _run_case(dut, cfg: TileConfig, case: dict) -> dict:
    shape = ConvShape(**case["shape"])
    x = np.load(case["x"])
    w = np.load(case["w"])
    plan = plan_layer(cfg, shape, case["act_bits"], case["weight_bits"], case["act_signed"])
    jobs = list(plan.jobs())
    jl = job_layout(cfg)
    job_beats, act_beats, wgt_beats = [], [], []
    wbits = cfg.mac.width
    for job in jobs:
        job_beats.append(pack_payload(jl, job.descriptor(plan)))
        acts, wgts = job_streams(plan, job, x, w)
        for i, word in enumerate(acts.tolist()):
            act_beats.append(word | (int(i == len(acts) - 1) << wbits))
        for i, row in enumerate(wgts.tolist()):
            value = sum(int(v) << (j * wbits) for j, v in enumerate(row))
            wgt_beats.append(value | (int(i == len(wgts) - 1) << (cfg.p * wbits)))
    rng = random.Random(case.get("seed", 1))
    idle = float(case.get("idle", 0.0))
    bp = float(case.get("backpressure", 0.0))
    streams = [
        _Stream(dut.job__valid, dut.job__payload, dut.job__ready, job_beats, idle, rng),
        _Stream(dut.act__valid, dut.act__payload, dut.act__ready, act_beats, idle, rng),
        _Stream(dut.wgt__valid, dut.wgt__payload, dut.wgt__ready, wgt_beats, idle, rng),
    ]
    acc_w = cfg.mac.accumulator_width
    results: list[list[list[int]]] = [[] for _ in jobs]
    accept_cycles: list[int] = []
    done_cycles: list[int] = []
    counter = {"run": 0}
    run_task = cocotb.start_soon(_count_run_cycles(dut, counter))
    job_idx = 0
    out_ready = False
    t_first = None
    wall = time.perf_counter()
    await FallingEdge(dut.clk)
    t_base = get_sim_time("ns")
    cycle = 0
    while job_idx < len(jobs):
        for s in streams:
            s.drive()
        want_ready = not (bp and rng.random() < bp)
        if want_ready != out_ready:
            dut.out__ready.value = int(want_ready)
            out_ready = want_ready
        await ReadOnly()
        if streams[0].sample():
            accept_cycles.append(cycle)
            if t_first is None:
                t_first = cycle
        streams[1].sample()
        streams[2].sample()
        if out_ready and dut.out__valid.value:
            word = dut.out__payload.value.to_unsigned()
            results[job_idx].append(_acc_values(word, cfg.p, acc_w))
            if (word >> (cfg.p * acc_w)) & 1:
                done_cycles.append(cycle)
                job_idx += 1
        idle_ports = (all(s.pos == len(s.beats) or (s.offered and not s.ready.value)
                          for s in streams)
                      and not dut.out__valid.value and not idle and not bp)
        if idle_ports:
            # Nothing can happen on the ports until one of them changes: skip ahead.
            timeout = Timer(STALL_CYCLES * PERIOD_NS, unit="ns")
            fired = await First(RisingEdge(dut.job__ready), RisingEdge(dut.act__ready),
                                RisingEdge(dut.wgt__ready), RisingEdge(dut.out__valid),
                                timeout)
            assert fired is not timeout, f"tile stalled at cycle {cycle} (job {job_idx})"
            await FallingEdge(dut.clk)
        else:
            await FallingEdge(dut.clk)
        cycle = round((get_sim_time("ns") - t_base) / PERIOD_NS)
    for s in streams:
        s.valid.value = 0
    dut.out__ready.value = 0
    await ClockCycles(dut.clk, 2)
    run_task.cancel()
    wall = time.perf_counter() - wall

    y = assemble_output(plan, [np.array(r, dtype=np.int64) for r in results])
    expected = conv2d(x, w, shape.stride, shape.padding)
    if case.get("output"):
        np.save(case["output"], y)
    model = plan_cycles(plan)
    measured_total = done_cycles[-1] - t_first + 1
    mismatch = None
    if not np.array_equal(y, expected):
        bad = np.argwhere(y != expected)[0]
        mismatch = (f"output{list(map(int, bad))} = {int(y[tuple(bad)])}, "
                    f"expected {int(expected[tuple(bad)])}")
    timings = job_timings(plan, jobs)
    return {
        "shape": case["shape"], "act_bits": case["act_bits"],
        "weight_bits": case["weight_bits"], "act_signed": case["act_signed"],
        "idle": idle, "backpressure": bp, "lanes": plan.lanes, "jobs": len(jobs),
        "cycles": measured_total, "model_cycles": model.total,
        "compute_cycles": counter["run"], "model_compute_cycles": model.compute,
        "ideal_cycles": model.ideal, "macs": model.macs,
        "accept_cycles": [c - t_first for c in accept_cycles],
        "done_cycles": [c - t_first for c in done_cycles],
        "model_accept_cycles": [t.accept for t in timings],
        "model_done_cycles": [t.done for t in timings],
        "tiling": model.tiling, "output_ok": mismatch is None, "mismatch": mismatch,
        "wall_s": wall, "sim_cycles": cycle,
    }


@cocotb.test()
async def tile_layers(dut) -> None:
    """Every case of RCM_CASES: output equals numpy, cycles equal the model."""
    cfg = TileConfig.from_dict(json.loads(os.environ["RCM_CONFIG"]))
    with open(os.environ["RCM_CASES"]) as f:
        cases = json.load(f)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    for name in ("job__valid", "act__valid", "wgt__valid", "out__ready"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    out = []
    for case in cases:
        out.append(await _run_case(dut, cfg, case))
        with open(os.environ["RCM_RESULTS"], "w") as f:
            json.dump({"cases": out}, f, indent=1)
    failures = [c for c in out if not c["output_ok"]]
    assert not failures, f"{len(failures)} wrong outputs, first: {failures[0]['mismatch']}"
