"""cocotb testbench: every operand value pair in every term of every mode of a (small) MAC
(:func:`~rcm_gen.sim.mac_stimulus.exhaustive_stimulus`), each product checked against
numpy."""

from __future__ import annotations

import json
import os

import cocotb

from ..config import MacConfig
from .mac_stimulus import exhaustive_stimulus
from .mac_tb import drive, reset


@cocotb.test()
async def mac_exhaustive(dut) -> None:
    """All operand pairs of every term, every mode and signedness, one per cycle."""
    cfg = MacConfig.from_dict(json.loads(os.environ["RCM_CONFIG"]))
    stim = exhaustive_stimulus(cfg, int(os.environ.get("RCM_SEED", "1")))
    await reset(dut)
    checked, _ = await drive(dut, cfg, stim)
    with open(os.environ["RCM_RESULTS"], "w") as f:
        json.dump({"cycles": len(stim), "products_checked": sum(checked.values()),
                   "by_mode": dict(sorted(checked.items()))}, f, indent=2)
