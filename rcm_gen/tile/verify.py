"""``rcm-gen verify`` for tiles: random layers on the RTL against numpy and the cycle model."""

from __future__ import annotations

import numpy as np

from ..errors import ToolFailed
from .config import TileConfig
from .simulate import random_case, simulate_layers

__all__ = ["verify_tile"]


def verify_tile(config: TileConfig, simulators: list[str], count: int = 16,
                seed: int = 1) -> int:
    """Run ``count`` random layers on each simulator (every third with random idle cycles
    and backpressure); print what was checked.  Raises :class:`ToolFailed` on a wrong
    output or a cycle count that differs from the model."""
    rng = np.random.default_rng(seed)
    cases = [random_case(rng, config, k=(1, 3, 5, 7)[i % 4] if config.k_max >= 7 else None,
                         stalls=i % 3 == 2, max_c=8, max_m=6, max_hw=8)
             for i in range(count)]
    mac = config.mac
    print(f"tile P={config.p} Q={config.q} ({config.qr}x{config.qc}) tm={config.tm} "
          f"tn={config.tn} tr={config.tr} tc={config.tc} k_max={config.k_max} "
          f"s_max={config.s_max}; MAC W={mac.width} lanes={list(mac.lanes)} arch={mac.arch}")
    for sim in simulators:
        results, res = simulate_layers(config, cases, sim)
        exact = stalled = 0
        for r, case in zip(results, cases, strict=True):
            if not r["output_ok"]:
                raise ToolFailed(f"{sim}: layer {r['shape']} output differs from numpy "
                                 f"({r['mismatch']}); log: {res.log}")
            full_rate = case.idle == 0 and case.backpressure == 0
            if r["compute_cycles"] != r["model_compute_cycles"] or (
                    full_rate and r["cycles"] != r["model_cycles"]):
                raise ToolFailed(f"{sim}: layer {r['shape']} took {r['cycles']} cycles "
                                 f"({r['compute_cycles']} computing), the model says "
                                 f"{r['model_cycles']} ({r['model_compute_cycles']}); "
                                 f"log: {res.log}")
            exact += full_rate
            stalled += not full_rate
        lanes = sorted({r["lanes"] for r in results})
        cycles = sum(r["sim_cycles"] for r in results)
        post = sum(1 for c in cases if c.post is not None)
        grouped = sum(1 for c in cases if c.shape.groups > 1)
        print(f"{sim:9s} PASS  {len(results)} layers equal to numpy ({post} post-processed as "
              f"TFLite does, {grouped} grouped or depthwise; lanes {lanes}); "
              f"cycles equal to the model on all {exact} full-rate layers, compute cycles "
              f"on all {len(results)} ({stalled} with random stalls); {cycles} cycles in "
              f"{res.wall_s:.1f} s")
    return 0
