"""cocotb testbench for the RCM tile: runs whole layers through the RTL with the host
driver, checks every output against numpy and the cycles against the analytic model,
and checks that faulty jobs are refused with the right status.

Reads ``RCM_CASES`` (a JSON file: a list of cases, see :mod:`rcm_gen.tile.simulate`) and
writes per-case measurements to ``RCM_RESULTS``.  The tile is reset before each case.
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
from cocotb.triggers import (
    ClockCycles,
    FallingEdge,
    First,
    ReadOnly,
    RisingEdge,
    Timer,
    ValueChange,
)

from ..conv import ConvShape
from ..gateware.layouts import job_layout, pack_payload, par_layout
from ..gateware.modes import TILE_ERROR_TEXT, TileError
from ..tile.config import TileConfig
from ..tile.cycles import job_timings, plan_cycles
from ..tile.driver import PostProcess, assemble_output, decode_rows, job_streams, plan_layer
from ..tile.simulate import expected_output

PERIOD_NS = 10
#: A tile that changes none of its ports for this many cycles has stalled.
STALL_CYCLES = 1_000_000
#: Cycles a case with an expected refusal keeps running after it, to show nothing hangs.
AFTER_ERROR_CYCLES = 64


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

    @property
    def finished(self) -> bool:
        return self.pos == len(self.beats)


async def _count_run_cycles(dut, counter: dict) -> None:
    """Cycles in which the controller issues a step (its ``run`` register is set)."""
    run = dut.controller.run
    while True:
        await RisingEdge(run)
        t0 = get_sim_time("ns")
        await FallingEdge(run)
        counter["run"] += round((get_sim_time("ns") - t0) / PERIOD_NS)


def _beats(cfg: TileConfig, plan, jobs, x, w, inject: list[dict]):
    """Descriptor, activation, weight and parameter beats of the jobs; each entry of
    ``inject`` spoils a job (a descriptor field set to a value, or a stream's last beat
    dropped or one added)."""
    jl, pl = job_layout(cfg), par_layout(cfg)
    aw, ww = cfg.act_word_bits, cfg.weight_word_bits
    beats: dict[str, list[int]] = {"job": [], "act": [], "wgt": [], "par": []}
    for i, job in enumerate(jobs):
        spoils = [sp for sp in inject if sp["job"] == i]
        desc = job.descriptor(plan)
        for spoil in spoils:
            if spoil["kind"] == "descriptor":
                desc.update(spoil["set"])
        beats["job"].append(pack_payload(jl, desc))
        acts, wgts, pars = job_streams(plan, job, x, w)
        v = cfg.act_beat
        streams = {
            "act": [sum(int(a) << (i * aw) for i, a in enumerate(beat))
                    for beat in np.asarray(acts).reshape(-1, v).tolist()],
            "wgt": [sum(int(v) << (j * ww) for j, v in enumerate(row))
                    for row in wgts.tolist()],
            "par": [_par_word(cfg, row) for row in pars],
        }
        flag_bits = {"act": v * aw, "wgt": cfg.p * ww, "par": pl["last"].offset}
        for name, words in streams.items():
            for spoil in spoils:
                if spoil["kind"] == "drop_beat" and spoil["stream"] == name:
                    words = words[:-1]
                if spoil["kind"] == "extra_beat" and spoil["stream"] == name:
                    words = [*words, words[-1]]
            for k, word in enumerate(words):
                beats[name].append(word | (int(k == len(words) - 1) << flag_bits[name]))
    return beats


def _par_word(cfg: TileConfig, row: list[tuple[int, int, int, int]]) -> int:
    """One parameter row (P channels' bias, multiplier, shift, rounding) as its payload's
    data."""
    bits = {"bias": cfg.BIAS_BITS, "multiplier": cfg.MULTIPLIER_BITS, "shift": cfg.SHIFT_BITS,
            "rounding": cfg.ROUNDING_BITS}
    word, offset = 0, 0
    for channel in row:
        for width, value in zip(bits.values(), channel, strict=True):
            word |= (int(value) & ((1 << width) - 1)) << offset
            offset += width
    return word


async def _reset(dut) -> None:
    for name in ("job__valid", "act__valid", "wgt__valid", "par__valid", "out__ready"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


async def _run_case(dut, cfg: TileConfig, case: dict) -> dict:
    shape = ConvShape(**case["shape"])
    x = np.load(case["x"])
    w = np.load(case["w"])
    post = PostProcess(**case["post"]) if case.get("post") else None
    plan = plan_layer(cfg, shape, case["act_bits"], case["weight_bits"], case["act_signed"],
                      post=post, pad_value=case.get("pad_value", 0))
    jobs = list(plan.jobs())
    beats = _beats(cfg, plan, jobs, x, w, case.get("inject") or [])
    rng = random.Random(case.get("seed", 1))
    idle = float(case.get("idle", 0.0))
    bp = float(case.get("backpressure", 0.0))
    streams = [_Stream(getattr(dut, f"{n}__valid"), getattr(dut, f"{n}__payload"),
                       getattr(dut, f"{n}__ready"), beats[n], idle, rng)
               for n in ("job", "act", "wgt", "par")]
    out_jobs = [j for j in jobs if j.last]
    results: list[list[int]] = [[] for _ in out_jobs]
    out_width = len(dut.out__payload.value) - 1
    accept_cycles: list[int] = []
    done_cycles: list[int] = []
    counter = {"run": 0}
    run_task = cocotb.start_soon(_count_run_cycles(dut, counter))
    out_idx = 0
    out_ready = False
    t_first = None
    error_cycle = error_job = None
    wall = time.perf_counter()
    await FallingEdge(dut.clk)
    t_base = get_sim_time("ns")
    cycle = 0
    while out_idx < len(out_jobs):
        for s in streams:
            s.drive()
        want_ready = not (bp and rng.random() < bp)
        if want_ready != out_ready:
            dut.out__ready.value = int(want_ready)
            out_ready = want_ready
        await ReadOnly()
        status = dut.status.value.to_unsigned()
        if status & 0xF and error_cycle is None:
            error_cycle = cycle
            error_job = len(accept_cycles) - 1  # the job taken or loaded last
        if streams[0].sample():
            accept_cycles.append(cycle)
            if t_first is None:
                t_first = cycle
        for s in streams[1:]:
            s.sample()
        if out_ready and dut.out__valid.value:
            payload = dut.out__payload.value
            assert payload.is_resolvable, f"unresolved output row {payload} at cycle {cycle}"
            word = payload.to_unsigned()
            results[out_idx].append(word & ((1 << out_width) - 1))
            if word >> out_width:
                done_cycles.append(cycle)
                out_idx += 1
        if error_cycle is not None:
            assert cycle - error_cycle < STALL_CYCLES, (
                f"the tile stopped taking beats after refusing a job (cycle {cycle})")
        if error_cycle is not None and (cycle - error_cycle >= AFTER_ERROR_CYCLES
                                        and all(s.finished for s in streams)):
            await FallingEdge(dut.clk)
            break
        idle_ports = (all(s.finished or (s.offered and not s.ready.value) for s in streams)
                      and not dut.out__valid.value and not idle and not bp
                      and error_cycle is None)
        if idle_ports:
            # Nothing can happen on the ports until one of them changes: skip ahead.
            timeout = Timer(STALL_CYCLES * PERIOD_NS, unit="ns")
            fired = await First(RisingEdge(dut.job__ready), RisingEdge(dut.act__ready),
                                RisingEdge(dut.wgt__ready), RisingEdge(dut.par__ready),
                                RisingEdge(dut.out__valid), ValueChange(dut.status), timeout)
            assert fired is not timeout, f"tile stalled at cycle {cycle} (output {out_idx})"
            await FallingEdge(dut.clk)
        else:
            await FallingEdge(dut.clk)
        cycle = round((get_sim_time("ns") - t_base) / PERIOD_NS)
    for s in streams:
        s.valid.value = 0
    dut.out__ready.value = 0
    await ClockCycles(dut.clk, 2)
    status = dut.status.value.to_unsigned()
    run_task.cancel()
    wall = time.perf_counter() - wall

    error = TileError(status & 0xF).name
    overflow = bool(status >> 4 & 1)
    common = {
        "shape": case["shape"], "act_bits": case["act_bits"],
        "weight_bits": case["weight_bits"], "act_signed": case["act_signed"],
        "post": post is not None, "idle": idle, "backpressure": bp, "lanes": plan.lanes,
        "jobs": len(jobs), "error": error, "overflow": overflow, "wall_s": wall,
        "sim_cycles": cycle, "streams_consumed": all(s.finished for s in streams),
    }
    if error_cycle is not None:
        text = TILE_ERROR_TEXT.get(TileError[error], "")
        return {**common, "output_ok": False, "error_job": error_job,
                "mismatch": f"the tile refused job {error_job} of {len(jobs)} with status "
                            f"{error} ({text})",
                "error_cycle": error_cycle - (t_first or 0)}
    values = [decode_rows(plan, r) for r in results]
    y = assemble_output(plan, values)
    expected, saturated = expected_output(shape, x, w, post, case.get("pad_value", 0))
    if case.get("output"):
        np.save(case["output"], y)
    model = plan_cycles(plan)
    measured_total = done_cycles[-1] - t_first + 1
    mismatch = None
    if not np.array_equal(y, expected):
        bad = np.argwhere(y != expected)[0]
        mismatch = (f"output{list(map(int, bad))} = {int(y[tuple(bad)])}, "
                    f"expected {int(expected[tuple(bad)])}")
    elif overflow != saturated:
        mismatch = f"overflow flag {overflow}, expected {saturated}"
    timings = job_timings(plan, jobs)
    return {
        **common,
        "cycles": measured_total, "model_cycles": model.total,
        "compute_cycles": counter["run"], "model_compute_cycles": model.compute,
        "ideal_cycles": model.ideal, "macs": model.macs,
        "accept_cycles": [c - t_first for c in accept_cycles],
        "done_cycles": [c - t_first for c in done_cycles],
        "model_accept_cycles": [t.accept for t in timings],
        "model_done_cycles": [t.done for t in timings if t.done is not None],
        "tiling": model.tiling, "traffic": model.traffic, "output_ok": mismatch is None,
        "mismatch": mismatch,
    }


@cocotb.test()
async def tile_layers(dut) -> None:
    """Every case of RCM_CASES: output equals numpy, cycles equal the model; a spoiled
    case is refused with its status code and nothing hangs."""
    cfg = TileConfig.from_dict(json.loads(os.environ["RCM_CONFIG"]))
    with open(os.environ["RCM_CASES"]) as f:
        cases = json.load(f)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    out = []
    for case in cases:
        await _reset(dut)
        out.append(await _run_case(dut, cfg, case))
        with open(os.environ["RCM_RESULTS"], "w") as f:
            json.dump({"cases": out}, f, indent=1)
    failures = [(c, r) for c, r in zip(cases, out, strict=True)
                if (r["error"] != (c.get("expect_error") or "NONE"))
                or (not c.get("expect_error") and not r["output_ok"])]
    assert not failures, (f"{len(failures)} failed cases, first: "
                          f"{failures[0][1].get('mismatch') or failures[0][1]['error']}")
