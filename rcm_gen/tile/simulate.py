"""Run convolution layers through a tile's RTL in simulation (cocotb, Icarus or Verilator)."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import value_range
from ..conv import ConvShape
from ..reference import conv2d, requantize
from ..sim.runner import SimResult, run_cocotb
from .config import TileConfig
from .driver import PostProcess

__all__ = ["LayerCase", "expected_output", "random_case", "random_post", "simulate_layers"]


@dataclass(frozen=True)
class LayerCase:
    """One layer to run: operands, bit widths, how the sums are post-processed (``None``:
    raw), what padding holds, and how the host behaves (probability of an idle cycle on
    each input stream, of backpressure on the output).

    ``inject`` spoils jobs to test the tile's checks, each entry ``{"job": i, "kind":
    "descriptor", "set": {field: value}}`` or ``{"job": i, "kind": "drop_beat" |
    "extra_beat", "stream": "act" | "wgt" | "par"}`` — and ``expect_error`` names the
    :class:`~rcm_gen.gateware.modes.TileError` the tile must answer with."""

    shape: ConvShape
    x: np.ndarray
    w: np.ndarray
    act_bits: int
    weight_bits: int
    act_signed: bool
    idle: float = 0.0
    backpressure: float = 0.0
    seed: int = 1
    post: PostProcess | None = None
    pad_value: int = 0
    inject: tuple[dict[str, Any], ...] = ()
    expect_error: str | None = None


def expected_output(shape: ConvShape, x: np.ndarray, w: np.ndarray, post: PostProcess | None,
                    pad_value: int = 0) -> tuple[np.ndarray, bool]:
    """What the tile must send for a layer (int64, M × Ho × Wo): the exact sums (padding
    holding ``pad_value``), or with ``post`` the sums from the bias requantized as TFLite
    does; and whether a sum had to be saturated to int32."""
    y = conv2d(x, w, shape.stride, groups=shape.groups,
               pads=(shape.pad_top, shape.pad_bottom, shape.pad_left, shape.pad_right),
               pad_value=pad_value)
    if post is None:
        return y, False
    acc = y + np.asarray(post.bias, dtype=np.int64)[:, None, None]
    if not post.requantize:
        return acc, False
    values, saturated = requantize(acc, np.asarray(post.multiplier)[:, None, None],
                                   np.asarray(post.shift)[:, None, None], post.zero_point,
                                   post.lo, post.hi, post.rounding)
    return values, bool(saturated.any())


def random_post(rng: np.random.Generator, shape: ConvShape, act_bits: int, weight_bits: int,
                width: int, out_bits: int | None = None) -> PostProcess:
    """Random per-channel requantization whose outputs spread over the output range (with
    some clamped): multipliers in [2^30, 2^31), shifts scaled to the sums' size, biases
    about as large as a sum; an activation-like clamp (ReLU-style) now and then."""
    out_bits = int(rng.integers(1, width + 1)) if out_bits is None else out_bits
    out_signed = bool(rng.integers(0, 2))
    lo, hi = value_range(out_bits, out_signed)
    reach = shape.group_in * shape.k ** 2 * (1 << act_bits) * (1 << (weight_bits - 1))
    base = out_bits - max(1, reach.bit_length() // 2 + 2)
    m = shape.m
    shift = np.clip(base + rng.integers(-1, 2, size=m), -31, 31)
    mult = rng.integers(1 << 30, 1 << 31, size=m)
    spread = min(reach // 4 + 1, (1 << 31) - 1)
    bias = rng.integers(-spread, spread + 1, size=m)
    zp = int(rng.integers(lo, hi + 1))
    if rng.random() < 0.3:  # a fused ReLU: the clamp starts at the zero point
        lo = zp
    return PostProcess(tuple(bias), tuple(mult), tuple(shift), zp, lo, hi, out_bits,
                       out_signed)


def random_case(rng: np.random.Generator, config: TileConfig, *, max_c: int = 10,
                max_m: int = 10, max_hw: int = 9, stalls: bool = False, k: int | None = None,
                stride: int | None = None, act_bits: int | None = None,
                weight_bits: int | None = None, act_signed: bool | None = None,
                post: bool | None = None, groups: str | None = None) -> LayerCase:
    """A random layer the tile can run: channels not multiples of the lanes or the tile,
    K in 1/3/5/7 (up to k_max), stride 1 or 2, padding (per side now and then), any
    precision 1..W, signed or unsigned activations; post-processed (with a padding value,
    as TFLite pads with the zero point) or raw; dense, grouped or depthwise; values spread
    over their whole declared range.  Keyword arguments fix a parameter instead of drawing
    it (``groups``: ``"dense"``, ``"grouped"`` or ``"depthwise"``)."""
    width = config.mac.width
    ks = [kk for kk in (1, 3, 5, 7) if kk <= config.k_max]
    k = int(rng.choice(ks)) if k is None else k
    stride = int(rng.integers(1, min(2, config.s_max) + 1)) if stride is None else stride
    if rng.random() < 0.3:
        pads = tuple(int(v) for v in rng.integers(0, k, size=4))
        padding = 0
    else:
        pads, padding = None, int(rng.integers(0, k))
    pad_v = (pads[0] + pads[1], pads[2] + pads[3]) if pads else (2 * padding, 2 * padding)
    h = int(rng.integers(max(1, k - pad_v[0]), max_hw + 1))
    w_ = int(rng.integers(max(1, k - pad_v[1]), max_hw + 1))
    if groups is None:
        groups = str(rng.choice(["dense", "dense", "dense", "grouped", "depthwise"]))
    if groups == "dense":
        c, m, g = int(rng.integers(1, max_c + 1)), int(rng.integers(1, max_m + 1)), 1
    elif groups == "depthwise":
        c = int(rng.integers(1, max_c + 1))
        g, m = c, c * int(rng.integers(1, 3))
    else:
        g = int(rng.integers(2, 4))
        c = g * int(rng.integers(1, max(2, max_c // g) + 1))
        m = g * int(rng.integers(1, max(2, max_m // g) + 1))
    shape = ConvShape(c=c, m=m, h=h, w=w_, k=k, stride=stride, padding=padding, groups=g,
                      pads=pads)
    if act_bits is None:
        act_bits = int(rng.integers(1, width + 1))
        if rng.random() < 0.6:  # mostly layers that can use several lanes
            act_bits = int(rng.integers(1, width // max(config.mac.lanes) + 1))
    drawn = int(rng.integers(1, width + 1)) if rng.random() < 0.3 else act_bits
    weight_bits = drawn if weight_bits is None else weight_bits
    act_signed = bool(rng.integers(0, 2)) if act_signed is None else act_signed
    a_lo, a_hi = value_range(act_bits, act_signed)
    w_lo, w_hi = value_range(weight_bits, True)
    x = rng.integers(a_lo, a_hi + 1, size=(c, h, w_), dtype=np.int64)
    wt = rng.integers(w_lo, w_hi + 1, size=(m, c // g, k, k), dtype=np.int64)
    # Some extreme values in every case.
    x.flat[rng.integers(0, x.size, size=max(1, x.size // 8))] = a_lo
    wt.flat[rng.integers(0, wt.size, size=max(1, wt.size // 8))] = w_lo
    post = bool(rng.integers(0, 2)) if post is None else post
    pp, pad_value = None, 0
    if post:
        pp = random_post(rng, shape, act_bits, weight_bits, width)
        if rng.random() < 0.2:  # the bias added on the tile, the sums sent raw
            pp = dataclasses.replace(pp, requantize=False)
        pad_value = int(rng.integers(a_lo, a_hi + 1))
    return LayerCase(shape, x, wt, act_bits, weight_bits, act_signed,
                     idle=0.3 if stalls else 0.0, backpressure=0.3 if stalls else 0.0,
                     seed=int(rng.integers(1 << 30)), post=pp, pad_value=pad_value)


def simulate_layers(config: TileConfig, cases: list[LayerCase], simulator: str = "icarus",
                    workdir: Path | None = None, waves: bool = False,
                    outputs: list[Path | None] | None = None, *,
                    test_module: str = "tile_tb", env: dict[str, str] | None = None
                    ) -> tuple[list[dict[str, Any]], SimResult]:
    """Run ``cases`` in one simulation; per-case measurements (cycles measured and
    modelled, output check, status) and the simulation result.  ``test_module`` is the
    cocotb module that runs them (``tile_tb``, or ``tile_record``, which records every
    port as well; ``env`` adds to its environment)."""
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
        post = None
        if case.post is not None:
            post = {f.name: (list(v) if isinstance(v := getattr(case.post, f.name), tuple)
                             else v) for f in dataclasses.fields(case.post)}
        spec.append({
            "shape": case.shape.to_dict(), "x": str(xf), "w": str(wf),
            "act_bits": case.act_bits, "weight_bits": case.weight_bits,
            "act_signed": case.act_signed, "idle": case.idle,
            "backpressure": case.backpressure, "seed": case.seed,
            "output": str(Path(out).resolve()) if out else None,
            "post": post, "pad_value": case.pad_value, "inject": list(case.inject),
            "expect_error": case.expect_error,
        })
    cases_file = workdir / "cases.json"
    cases_file.write_text(json.dumps(spec))
    try:
        res = run_cocotb(config, simulator, test_module,
                         env={"RCM_CASES": str(cases_file), **(env or {})}, waves=waves)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return res.results["cases"], res


