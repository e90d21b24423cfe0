"""What every gate-level simulation gives back (:class:`GateRun`) and the checks of
its inputs, shared by the event-driven simulators (:mod:`rcm_gen.sim.gate_level`) and the
compiled cycle simulator (:mod:`rcm_gen.sim.gate_cycle`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GATE_SIMULATORS", "GateRun", "check_run"]

#: Gate-level simulators: Verilator (toggle coverage), Icarus (a VCD), and rcm_gen's
#: compiled cycle-based simulator (:mod:`rcm_gen.sim.gate_cycle`, for large netlists).
GATE_SIMULATORS = ("verilator", "icarus", "cycle")


def check_run(ports: Sequence[str], inputs: dict[str, Any],
              windows: Sequence[tuple[int, int]]) -> int:
    """The cycles of a run's ``inputs`` (one array per input port of ``ports``), after
    checking that every port has one and that ``windows`` are in order, do not overlap
    and lie within the cycles (``ValueError`` otherwise)."""
    missing = [p for p in ports if p not in inputs]
    if missing:
        raise ValueError(f"inputs missing for ports {', '.join(missing)}")
    cycles = len(inputs[ports[0]]) if ports else 0
    for (a, b), (c, _) in zip(windows, list(windows)[1:], strict=False):
        if not (0 <= a < b <= c):
            raise ValueError(f"windows must be in order and not overlap, not {windows!r}")
    if windows and not (0 <= windows[-1][0] < windows[-1][1] <= cycles):
        raise ValueError(f"window {windows[-1]} is outside {cycles} cycles")
    return cycles


@dataclass(frozen=True)
class GateRun:
    """Outputs per cycle (port → int array, two's-complement bits as unsigned) and, per
    window, the rises and falls of every net (arrays windows × nets)."""

    outputs: dict[str, list[int]]
    rises: np.ndarray
    falls: np.ndarray
    simulator: str
    wall_s: float
    log: Path
    #: Per window, the accesses of each SRAM macro port (the cycle simulator's count).
    access_counts: np.ndarray | None = None
