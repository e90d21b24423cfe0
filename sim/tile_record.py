"""cocotb testbench that runs layers through the tile's RTL exactly as :mod:`.tile_tb` does
and records, every cycle, the value of every top-level port just before the rising clock
edge (after the testbench has driven the inputs at the falling edge): what the edge samples,
and the outputs a handshake is decided on.
A gate-level simulation of the synthesized netlist replays the inputs and must give the
same outputs (see :mod:`rcm_gen.power.tile`).

Reads ``RCM_CASES`` (as :mod:`.tile_tb`) and ``RCM_RECORD``: a JSON object with ``ports``
(the top-level ports as :func:`rcm_gen.generate.ports_of` lists them), ``probes`` (dotted
paths of internal one-bit signals to record as well, e.g. ``controller.run``), ``idle``
(cycles to keep the tile idle after each case, recorded too) and ``folder`` (where
``case<i>.json`` is written).  Each case starts with the tile's reset, which is recorded.
An input that is not driven yet (``x`` or ``z`` in the RTL) is recorded as 0; an output bit
that the RTL leaves unknown is recorded in the output's ``unknown`` mask, so that it is not
compared.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

from ..tile.config import TileConfig
from .tile_tb import PERIOD_NS, _reset, _run_case


def _value(handle) -> tuple[int, int]:
    """(value with unknown bits as 0, mask of the unknown bits)."""
    text = str(handle.value)
    try:
        return int(text, 2), 0
    except ValueError:
        pass
    value = unknown = 0
    for ch in text:
        value <<= 1
        unknown <<= 1
        if ch == "1":
            value |= 1
        elif ch != "0":
            unknown |= 1
    return value, unknown


async def _record(dut, inputs: list[str], outputs: list[str], probes: list[str],
                  rec: dict) -> None:
    ins = [(p, getattr(dut, p)) for p in inputs]
    outs = [(p, getattr(dut, p)) for p in outputs]
    prb = []
    for path in probes:
        h = dut
        for part in path.split("."):
            h = getattr(h, part)
        prb.append((path, h))
    while True:
        # the testbench drives at the falling edge: what the rising edge will see
        await FallingEdge(dut.clk)
        await ReadOnly()
        for name, h in ins:
            rec["inputs"][name].append(_value(h)[0])
        for name, h in outs:
            v, u = _value(h)
            rec["outputs"][name].append(v)
            if u:
                rec["unknown"][name][len(rec["outputs"][name]) - 1] = u
        for name, h in prb:
            rec["probes"][name].append(_value(h)[0])
        rec["time"].append(get_sim_time("ns"))


@cocotb.test()
async def record_layers(dut) -> None:
    """Every case of RCM_CASES run as tile_tb runs it, each port recorded every cycle."""
    cfg = TileConfig.from_dict(json.loads(os.environ["RCM_CONFIG"]))
    with open(os.environ["RCM_CASES"]) as f:
        cases = json.load(f)
    spec = json.loads(os.environ["RCM_RECORD"])
    folder = Path(spec["folder"])
    ports = [p for p in spec["ports"] if p["name"] != "clk"]
    inputs = [p["name"] for p in ports if p["direction"] == "input"]
    outputs = [p["name"] for p in ports if p["direction"] != "input"]
    probes = list(spec.get("probes", []))
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    # one recorder for the whole run, so that no cycle between two cases is lost: a case
    # starts with the sample of the falling edge at which its reset is driven
    rec: dict = {"inputs": {p: [] for p in inputs}, "outputs": {p: [] for p in outputs},
                 "unknown": {p: {} for p in outputs}, "probes": {p: [] for p in probes},
                 "time": []}
    cocotb.start_soon(_record(dut, inputs, outputs, probes, rec))
    results = []
    first = 0
    for i, case in enumerate(cases):
        await _reset(dut)
        result = await _run_case(dut, cfg, case)
        await ClockCycles(dut.clk, int(spec.get("idle", 0)))
        await FallingEdge(dut.clk)
        last = len(rec["time"])  # this edge's sample is not taken yet: the next case's
        part = {kind: {k: v[first:last] for k, v in rec[kind].items()}
                for kind in ("inputs", "outputs", "probes")}
        part["unknown"] = {k: {str(t - first): u for t, u in v.items() if first <= t < last}
                           for k, v in rec["unknown"].items()}
        part["result"] = result
        part["cycles"] = last - first
        (folder / f"case{i}.json").write_text(json.dumps(part))
        first = last
        results.append(result)
        with open(os.environ["RCM_RESULTS"], "w") as f:
            json.dump({"cases": results}, f, indent=1)
    bad = [r for r in results if not r["output_ok"]]
    assert not bad, f"{len(bad)} cases failed, first: {bad[0].get('mismatch') or bad[0]['error']}"
