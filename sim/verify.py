"""Simulate a design point's generated Verilog on the open simulators against numpy and
print what was checked."""

from __future__ import annotations

from typing import Any

from ..config import MacConfig
from ..errors import UserError
from .runner import SIMULATORS, run_cocotb

__all__ = ["verify_design"]


def verify_design(config: Any, simulators: list[str], count: int | None = None,
                  seed: int = 1) -> int:
    """Run the design's cocotb regression on each simulator; 0 when all pass."""
    for sim in simulators:
        if sim not in SIMULATORS:
            raise UserError(
                f"--simulator must be among {', '.join(SIMULATORS)}, not {sim!r}")
    if count is not None and count < 1:
        raise UserError(f"--count must be at least 1, not {count}")
    if not isinstance(config, MacConfig):
        from ..tile.verify import verify_tile

        return verify_tile(config, simulators, count=count or 16, seed=seed)
    count = count or 2000
    print(f"MAC W={config.width} lanes={list(config.lanes)} arch={config.arch} "
          f"acc={config.accumulator_width} bits, pipeline={config.pipeline}")
    for sim in simulators:
        res = run_cocotb(config, sim, "mac_tb",
                         env={"RCM_COUNT": str(count), "RCM_SEED": str(seed)})
        r = res.results
        modes = ", ".join(f"{k}={v}" for k, v in r["by_mode"].items())
        print(f"{sim:9s} PASS  {r['products_checked']} products checked against numpy over "
              f"{r['cycles']} cycles ({r['mode_switches']} mode switches; {modes}) "
              f"in {res.wall_s:.1f} s")
    return 0
