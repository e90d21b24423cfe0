"""Run convolution layers through a tile's RTL in simulation (cocotb, Icarus or Verilator)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..conv import ConvShape
from ..sim.runner import SimResult, run_cocotb
from .config import TileConfig

__all__ = ["LayerCase", "random_case", "simulate_layers"]


@dataclass(frozen=True)
class LayerCase:
    """One layer to run: operands, bit widths, and how the host behaves (probability of
    an idle cycle on each input stream, of backpressure on the output)."""

    shape: ConvShape
    x: np.ndarray
    w: np.ndarray
    act_bits: int
    weight_bits: int
    act_signed: bool
    idle: float = 0.0
    backpressure: float = 0.0
    seed: int = 1


def random_case(rng: np.random.Generator, config: TileConfig, *, max_c: int = 10,
                max_m: int = 10, max_hw: int = 9, stalls: bool = False, k: int | None = None,
                stride: int | None = None, act_bits: int | None = None,
                act_signed: bool | None = None) -> LayerCase:
    """A random layer the tile can run: channels not multiples of the lanes or the tile,
    K in 1/3/5/7 (up to k_max), stride 1 or 2, padding, any precision 1..W, signed or
    unsigned activations; values spread over their whole declared range.  Keyword
    arguments fix a parameter instead of drawing it."""
    width = config.mac.width
    ks = [kk for kk in (1, 3, 5, 7) if kk <= config.k_max]
    k = int(rng.choice(ks)) if k is None else k
    stride = int(rng.integers(1, min(2, config.s_max) + 1)) if stride is None else stride
    padding = int(rng.integers(0, k))
    h = int(rng.integers(max(1, k - 2 * padding), max_hw + 1))
    w_ = int(rng.integers(max(1, k - 2 * padding), max_hw + 1))
    c = int(rng.integers(1, max_c + 1))
    m = int(rng.integers(1, max_m + 1))
    shape = ConvShape(c=c, m=m, h=h, w=w_, k=k, stride=stride, padding=padding)
    if act_bits is None:
        act_bits = int(rng.integers(1, width + 1))
        if rng.random() < 0.6:  # mostly layers that can use several lanes
            act_bits = int(rng.integers(1, width // max(config.mac.lanes) + 1))
    weight_bits = int(rng.integers(1, width + 1)) if rng.random() < 0.3 else act_bits
    act_signed = bool(rng.integers(0, 2)) if act_signed is None else act_signed
    a_lo, a_hi = ((-(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1) if act_signed
                  else (0, (1 << act_bits) - 1))
    w_lo, w_hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    x = rng.integers(a_lo, a_hi + 1, size=(c, h, w_), dtype=np.int64)
    wt = rng.integers(w_lo, w_hi + 1, size=(m, c, k, k), dtype=np.int64)
    # Some extreme values in every case.
    x.flat[rng.integers(0, x.size, size=max(1, x.size // 8))] = a_lo
    wt.flat[rng.integers(0, wt.size, size=max(1, wt.size // 8))] = w_lo
    return LayerCase(shape, x, wt, act_bits, weight_bits, act_signed,
                     idle=0.3 if stalls else 0.0, backpressure=0.3 if stalls else 0.0,
                     seed=int(rng.integers(1 << 30)))


def simulate_layers(config: TileConfig, cases: list[LayerCase], simulator: str = "icarus",
                    workdir: Path | None = None, waves: bool = False,
                    outputs: list[Path | None] | None = None
                    ) -> tuple[list[dict[str, Any]], SimResult]:
    """Run ``cases`` in one simulation; per-case measurements (cycles measured and
    modelled, output check) and the simulation result."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rcm_cases_")
        workdir = Path(tmp.name)
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    spec = []
    for i, case in enumerate(cases):
        xf, wf = workdir / f"case{i}_x.npy", workdir / f"case{i}_w.npy"
        np.save(xf, case.x)
        np.save(wf, case.w)
        out = outputs[i] if outputs else None
        spec.append({
            "shape": {f: getattr(case.shape, f) for f in
                      ("c", "m", "h", "w", "k", "stride", "padding")},
            "x": str(xf), "w": str(wf), "act_bits": case.act_bits,
            "weight_bits": case.weight_bits, "act_signed": case.act_signed,
            "idle": case.idle, "backpressure": case.backpressure, "seed": case.seed,
            "output": str(Path(out).resolve()) if out else None,
        })
    cases_file = workdir / "cases.json"
    cases_file.write_text(json.dumps(spec))
    try:
        res = run_cocotb(config, simulator, "tile_tb", env={"RCM_CASES": str(cases_file)},
                         waves=waves)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return res.results["cases"], res
