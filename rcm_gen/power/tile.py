"""Energy of a tile running real layers, from a gate-level simulation of its synthesized
netlist.

Measuring a layer
-----------------
A layer runs through the tile's RTL exactly as the tile regression runs it
(:mod:`rcm_gen.sim.tile_tb`: the host driver's beats, a full-rate host, every output
checked against numpy and the cycles against the cycle model), and
:mod:`rcm_gen.sim.tile_record` records the value of every top-level port in every cycle.
The synthesized netlist (the ``synth`` cache) is then simulated at gate level with those
inputs, cycle for cycle: with a full-rate host the handshakes are the same as in RTL, and
every output the RTL defines must come out the same from the netlist (a stream's payload
while its ``valid`` is set).  Toggle counts of every net in windows of cycles become energy
through :class:`~rcm_gen.power.energy.EnergyModel`, by group: multipliers, accumulators,
buffers (flip-flop memories and their decoders, or SRAM macros), post-processing (drain
and requantization), control (loader, controller, glue), the clock net and the input-port
nets.  The ports are read from the design itself (:func:`rcm_gen.generate.ports_of`): a
stream is a ``NAME__valid``/``NAME__ready``/``NAME__payload`` triple, whatever it carries.

A layer's energy is the sum over the cycles from its first descriptor accepted to its last
result row accepted: the cycle model's ``total``.  The layers measured per lane mode are
real jobs of a quantized layer: uniformly random activations and weights over the mode's
precision (signed), requantized on the tile to the same precision.

The energy model that networks are costed with, calibrated on such runs, is
:mod:`rcm_gen.power.tile_model`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..conv import ConvShape
from ..errors import ToolFailed, UserError
from ..tile.config import TileConfig
from .energy import (
    CLOCK_PARTS,
    TILE_ENERGY_GROUPS,
    WindowEnergy,
    buffer_of,
    memory_breakdown,
    tile_group_of,
)

__all__ = [
    "HELD_OUT_KINDS",
    "LAYER_KINDS",
    "Recording",
    "TileGate",
    "TileMode",
    "energy_case",
    "mode_case",
    "format_tile_energy",
    "record_layers",
    "tile_energy",
    "tile_modes",
]

#: Layers a calibration runs per mode (``conv3x3``: the measured layer, also what
#: :func:`tile_energy` reports; ``conv1x1``: a load-heavy one) and the shape it checks
#: the model on (``check``).
LAYER_KINDS = ("conv3x3", "conv1x1", "check")
#: Layers held out from the fit, unlike the calibration layers, on which a calibration
#: reports the model's error beside the one-parameter baseline (energy per cycle x
#: cycles): a stride-2 3x3, a 1x1 with four channel blocks, a fully connected layer, a
#: depthwise 3x3, activations as after a ReLU (unsigned, half zeros, small values common),
#: and operands two bits narrower than the mode's (a precision not used to fit).
HELD_OUT_KINDS = ("stride2", "wide1x1", "fc", "depthwise", "relu", "precision")
#: Cycles the tile is kept idle after each recorded layer (the idle window), and the
#: cycles after a layer's last result left out of that window.
IDLE_CYCLES = 48
_IDLE_SETTLE = 6
#: Windows the steady state of a calibration layer is cut into.
_PIECES = 4
#: Internal signals recorded besides the ports: the controller's step register.
PROBES = ("controller.run",)
#: Operations per multiply-accumulate in TOPS/W.
OPS_PER_MAC = 2
@dataclass(frozen=True, order=True)
class TileMode:
    """An operating point of the tile: operand precision of activations and of weights,
    and lanes (MACs per step per MAC unit).  A Sum-Together or fixed tile runs its
    operands at one precision (``act_bits == weight_bits``); a fusion tile has asymmetric
    modes too (8x4: 8-bit activations, 4-bit weights)."""

    act_bits: int
    weight_bits: int
    lanes: int

    @classmethod
    def square(cls, bits: int, lanes: int) -> TileMode:
        """Activations and weights both ``bits`` wide."""
        return cls(bits, bits, lanes)

    @property
    def bits(self) -> int:
        """The wider operand's precision."""
        return max(self.act_bits, self.weight_bits)

    @property
    def key(self) -> str:
        if self.act_bits == self.weight_bits:
            return f"{self.bits}b x{self.lanes}"
        return f"{self.act_bits}x{self.weight_bits}b x{self.lanes}"


def tile_modes(config: TileConfig, *, asymmetric: bool = False) -> list[TileMode]:
    """The modes measured on a design point: each lane count N at its precision W/N; a
    fixed (one-lane) tile at W, W/2 and W/4 bits (one product per step), so that it meets
    a Sum-Together tile on the same layers at every precision; a fusion tile in its
    symmetric modes W/N x W/N (N² products per step), and with ``asymmetric`` in every
    mode its MAC has (16x8, 8x4, 4x8, ...).  Widest first."""
    mac = config.mac
    w = mac.width
    if mac.lanes == (1,):
        modes = [TileMode.square(w // d, 1) for d in (1, 2, 4) if w // d >= 2]
    elif asymmetric and mac.is_fused:
        modes = [TileMode(m.act_bits, m.weight_bits, m.products) for m in mac.mac_modes]
    else:
        modes = [TileMode.square(w // n, mac.mode_for_bits(w // n, w // n).products)
                 for n in mac.lanes]
    return sorted(set(modes), reverse=True)


def _mode_of(modes: list[TileMode], lanes: int, act_bits: int, weight_bits: int) -> TileMode:
    """The calibrated mode for a layer: its lanes, the narrowest precisions that hold its
    activations and its weights."""
    fits = [m for m in modes if m.lanes == lanes and m.act_bits >= act_bits
            and m.weight_bits >= weight_bits]
    if not fits:
        raise UserError(f"no calibrated tile mode runs {act_bits}x{weight_bits}-bit operands "
                        f"in {lanes} lanes (calibrated: {', '.join(m.key for m in modes)})")
    return min(fits, key=lambda m: (m.act_bits + m.weight_bits, m.act_bits))


# -- layers -----------------------------------------------------------------------------------


def energy_case(config: TileConfig, bits: int, kind: str, seed: int = 1, *,
                weight_bits: int | None = None) -> Any:
    """The layer a measurement runs at ``bits`` (activations; weights at ``weight_bits``,
    default the same): a :class:`~rcm_gen.tile.simulate.LayerCase` sized from the tile
    (two channel blocks of the ``W/b``-lane word, ``b`` the narrower operand's bits, ``tm``
    output channels, two row and two column blocks, a 3×3 kernel where the tile has one)
    with seeded random operands and requantization, or one of the held-out layers
    (:data:`HELD_OUT_KINDS`).  The shape depends on the precision, not on the design's
    lanes, so a tile and its fixed twin run the same layer.

    Raises
    ------
    ValueError
        An unknown kind, or a held-out layer the tile cannot run (stride 2 on a tile of
        ``s_max`` 1; the message says so).
    """
    from ..config import value_range
    from ..tile.simulate import LayerCase, random_post

    kinds = (*LAYER_KINDS, *HELD_OUT_KINDS)
    if kind not in kinds:
        raise ValueError(f"Layer kind must be one of {', '.join(kinds)}, not {kind!r}")
    wbits = bits if weight_bits is None else weight_bits
    n = max(1, config.mac.width // min(bits, wbits))
    ch = config.tn * n
    k = 3 if config.k_max >= 3 else 1
    data_bits = max(2, bits - 2) if kind == "precision" else bits
    w_bits = max(2, wbits - 2) if kind == "precision" else wbits
    act_signed = kind != "relu"
    if kind in ("conv3x3", "relu", "precision"):
        shape = ConvShape(c=2 * ch, m=config.tm, h=2 * config.tr, w=2 * config.tc, k=k,
                          padding=k // 2)
    elif kind == "conv1x1":
        shape = ConvShape(c=2 * ch, m=config.tm, h=2 * config.tr, w=2 * config.tc, k=1)
    elif kind == "check":  # another shape: partial channel, output-channel, row/column blocks
        shape = ConvShape(c=ch + n, m=config.tm + config.p, h=2 * config.tr + 1,
                          w=max(1, 2 * config.tc - 1), k=k, padding=k // 2)
    elif kind == "stride2":
        if config.s_max < 2:
            raise ValueError(f"a stride-2 layer needs s_max of at least 2, not "
                             f"{config.s_max}")
        shape = ConvShape(c=2 * ch, m=config.tm, h=4 * config.tr, w=4 * config.tc, k=k,
                          stride=2, padding=k // 2)
    elif kind == "wide1x1":
        shape = ConvShape(c=4 * ch, m=config.tm, h=config.tr, w=config.tc, k=1)
    elif kind == "fc":
        shape = ConvShape(c=8 * ch, m=2 * config.tm, h=1, w=1, k=1)
    else:  # depthwise
        c = max(config.tm, 2 * config.p)
        shape = ConvShape(c=c, m=c, h=2 * config.tr, w=2 * config.tc, k=k, padding=k // 2,
                          groups=c)
    rng = np.random.default_rng([seed, bits, kinds.index(kind)] if wbits == bits
                                else [seed, bits, kinds.index(kind), wbits])
    lo, hi = value_range(data_bits, act_signed)
    size = (shape.c, shape.h, shape.w)
    if kind == "relu":
        scale = max(hi / 16.0, 1.0)
        x = np.minimum(rng.geometric(1.0 / (scale + 1.0), size=size), hi)
        x = np.where(rng.random(size) < 0.5, 0, x).astype(np.int64)
    else:
        x = rng.integers(lo, hi + 1, size=size, dtype=np.int64)
    w_lo, w_hi = value_range(w_bits, True)
    w = rng.integers(w_lo, w_hi + 1, size=(shape.m, shape.group_in, shape.k, shape.k),
                     dtype=np.int64)
    post = random_post(rng, shape, data_bits, w_bits, config.mac.width, out_bits=bits)
    post = dataclasses.replace(post, out_signed=True, zero_point=0,
                               lo=value_range(bits, True)[0], hi=value_range(bits, True)[1])
    return LayerCase(shape, x, w, data_bits, w_bits, act_signed, post=post, pad_value=0)


def mode_case(config: TileConfig, mode: TileMode, kind: str, seed: int = 1) -> Any:
    """:func:`energy_case` of ``kind`` with the operand widths of ``mode``."""
    return energy_case(config, mode.act_bits, kind, seed, weight_bits=mode.weight_bits)


# -- recording the RTL ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Recording:
    """One layer as the RTL ran it: every port's value per cycle (inputs as the tile
    samples them at the rising edge, outputs just before it), the output bits the RTL left
    unknown, the probes, and the testbench's measurements (``result``: cycles measured and
    modelled, output check, traffic)."""

    case: Any
    ports: tuple[dict[str, Any], ...]
    inputs: dict[str, list[int]]
    outputs: dict[str, list[int]]
    unknown: dict[str, dict[int, int]]
    probes: dict[str, list[int]]
    result: dict[str, Any]

    @property
    def cycles(self) -> int:
        return len(next(iter(self.inputs.values())))

    def width(self, port: str) -> int:
        return next(p["width"] for p in self.ports if p["name"] == port)

    def streams(self) -> tuple[list[str], list[str]]:
        """Names of the input streams (valid and payload in, ready out) and of the output
        streams (valid and payload out, ready in)."""
        ins = [n[:-7] for n in self.inputs if n.endswith("__valid")
               and n[:-7] + "__ready" in self.outputs and n[:-7] + "__payload" in self.inputs]
        outs = [n[:-7] for n in self.outputs if n.endswith("__valid")
                and n[:-7] + "__ready" in self.inputs and n[:-7] + "__payload" in self.outputs]
        return ins, outs

    def fires(self, stream: str, into: bool) -> np.ndarray:
        """Cycles in which a beat of ``stream`` moves (valid and ready both set)."""
        src, dst = (self.inputs, self.outputs) if into else (self.outputs, self.inputs)
        valid = np.asarray(src[f"{stream}__valid"], dtype=np.int64)
        ready = np.asarray(dst[f"{stream}__ready"], dtype=np.int64)
        return (valid & ready).astype(bool)

    def payload_bits(self, into: bool) -> np.ndarray:
        """Payload bits moved per cycle into (or out of) the tile."""
        ins, outs = self.streams()
        bits = np.zeros(self.cycles)
        for s in (ins if into else outs):
            bits += self.fires(s, into) * self.width(f"{s}__payload")
        return bits

    def layer_window(self) -> tuple[int, int]:
        """[first beat into the tile, last beat out of it + 1): the cycles the cycle model
        counts as the layer's ``total``."""
        beats_in = np.flatnonzero(self.payload_bits(True))
        beats_out = np.flatnonzero(self.payload_bits(False))
        if not len(beats_in) or not len(beats_out):
            raise ToolFailed("the recorded layer moved no beat in or out of the tile")
        return int(beats_in[0]), int(beats_out[-1]) + 1

    def steps(self) -> np.ndarray:
        return np.asarray(self.probes[PROBES[0]], dtype=np.int64)


def record_layers(config: TileConfig, cases: list[Any], *, simulator: str = "verilator",
                  idle: int = IDLE_CYCLES, workdir: Path | None = None) -> list[Recording]:
    """Run ``cases`` (:class:`~rcm_gen.tile.simulate.LayerCase`, full-rate host) through
    ``config``'s RTL, each in a simulation of its own from power-on (one build), and
    record every port per cycle.

    Raises
    ------
    ToolFailed
        The simulation failed, an output differs from numpy, or the cycles differ from
        the cycle model's (the message names the log).
    """
    import tempfile

    from ..generate import build_component, ports_of
    from ..tile.simulate import simulate_layers

    for case in cases:
        if case.idle or case.backpressure:
            raise ValueError("a recorded layer needs a full-rate host (no idle cycles, no "
                             "backpressure)")
    ports = ports_of(build_component(config))
    recs = []
    with tempfile.TemporaryDirectory(prefix="rcm_record_") as tmp:
        root = Path(workdir or tmp).resolve()
        for i, case in enumerate(cases):
            # each layer in a simulation of its own, from power-on, so that the gate-level
            # replays of the layers are independent of each other (and run in parallel)
            folder = root / f"layer{i}"
            folder.mkdir(parents=True, exist_ok=True)
            spec = {"ports": ports, "probes": list(PROBES), "idle": idle,
                    "folder": str(folder)}
            (result,), sim = simulate_layers(config, [case], simulator, workdir=folder,
                                             test_module="tile_record",
                                             env={"RCM_RECORD": json.dumps(spec)})
            if not result["output_ok"]:
                raise ToolFailed(f"layer {i}: the RTL output differs from numpy "
                                 f"({result['mismatch']}); log: {sim.log}")
            if result["cycles"] != result["model_cycles"]:
                raise ToolFailed(f"layer {i}: the RTL took {result['cycles']} cycles, the "
                                 f"cycle model says {result['model_cycles']}; log: {sim.log}")
            data = json.loads((folder / "case0.json").read_text())
            rec = Recording(case, tuple(ports), data["inputs"], data["outputs"],
                            {p: {int(t): u for t, u in v.items()}
                             for p, v in data["unknown"].items()},
                            data["probes"], result)
            t0, t1 = rec.layer_window()
            if t1 - t0 != result["cycles"]:
                raise ToolFailed(f"layer {i}: the recorded ports move beats over {t1 - t0} "
                                 f"cycles, the testbench measured {result['cycles']}; log: "
                                 f"{sim.log}")
            steps = int(rec.steps()[t0:t1].sum())
            if steps != result["compute_cycles"]:
                raise ToolFailed(f"layer {i}: {steps} steps recorded, the testbench counted "
                                 f"{result['compute_cycles']}; log: {sim.log}")
            recs.append(rec)
    return recs


# -- the gate-level replay --------------------------------------------------------------------


def _windows(rec: Recording, pieces: int) -> list[tuple[str, int, int]]:
    """Windows of a recorded layer: (phase, start, stop).  ``load`` up to the first step,
    ``steady`` pieces to the last, ``drain`` to the last result, then ``idle``."""
    t0, t1 = rec.layer_window()
    run = np.flatnonzero(rec.steps()[t0:t1]) + t0
    first, last = (int(run[0]), int(run[-1]) + 1) if len(run) else (t1, t1)
    out = []
    if first > t0:
        out.append(("load", t0, first))
    cuts = np.linspace(first, last, pieces + 1).round().astype(int)
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b > a:
            out.append(("steady", int(a), int(b)))
    if t1 > last:
        out.append(("drain", last, t1))
    idle0 = t1 + _IDLE_SETTLE
    if rec.cycles > idle0:
        out.append(("idle", idle0, rec.cycles))
    return out


@dataclass
class TileGate:
    """A tile's synthesized netlist, built for gate-level replay (see the module
    documentation); :meth:`prepare`, then :meth:`replay` recordings."""

    config: TileConfig
    power: Any  # GatePower
    ports: tuple[dict[str, Any], ...]

    @classmethod
    def prepare(cls, config: TileConfig, *, liberty: str | None = None,
                clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                on_synth: Callable[[str], None] | None = None,
                report: dict[str, Any] | None = None) -> TileGate:
        from ..generate import build_component, ports_of
        from .mac import GatePower

        ports = tuple(ports_of(build_component(config)))

        def check(netlist: Any) -> None:
            want = {p["name"]: (p["direction"], p["width"]) for p in ports}
            have = {n: (d, len(bits)) for n, (d, bits) in netlist.ports.items()}
            if want != have:
                raise ToolFailed(f"the synthesized netlist's ports {sorted(have)} differ from "
                                 f"the design's {sorted(want)}")

        gp = GatePower.prepare(config, clock="clk", liberty=liberty, clock_ns=clock_ns,
                               constraints=constraints, simulator="cycle",
                               check_ports=check, on_synth=on_synth, sample="before",
                               groups=TILE_ENERGY_GROUPS, group_of_module=tile_group_of,
                               detail_of_module=buffer_of, report=report)
        return cls(config, gp, ports)

    @property
    def groups(self) -> list[str]:
        return list(self.power.model.groups)

    def leakage_pj(self, cycles: int, clock_ns: float) -> dict[str, float]:
        """Leakage energy of each group over ``cycles`` cycles of ``clock_ns``."""
        leak = self.power.model.leakage_nw * clock_ns * cycles * 1e-6
        return {g: float(v) for g, v in zip(self.groups, leak, strict=True)}

    def replay(self, recs: list[Recording], windows: list[list[tuple[int, int]]], *,
               jobs: int | None = None, tag: str = "tile",
               on_progress: Callable[[int, int], None] | None = None
               ) -> tuple[list[list[WindowEnergy]], dict[str, Any]]:
        """Simulate each recording's inputs at gate level from power-on (as the RTL ran
        them: :func:`record_layers`), up to ``jobs`` recordings at a time (default: one
        per core), check every output against the RTL's, and return the energy of each
        recording's ``windows`` (cycles of that recording) and facts about the run
        (``checked`` output values, ``wall_s``, ``log``, ``runs`` (the runs, one per
        recording) and ``accesses``: per recording and window, the memory macros' port
        accesses).

        Raises
        ------
        ToolFailed
            An output differs from the RTL's (naming the port, the cycle and the values).
        """
        from concurrent.futures import ThreadPoolExecutor

        started = time.perf_counter()
        sim = self.power.sim
        sim.build()  # once, before the runs share it
        total = sum(r.cycles for r in recs)
        done = [0] * len(recs)

        def one(i: int) -> tuple[list[WindowEnergy], Any]:
            rec = recs[i]
            inputs = {p: np.asarray(rec.inputs[p], dtype=object) for p in sim.inputs}

            def progress(k: int, _n: int) -> None:
                done[i] = k
                if on_progress is not None:
                    on_progress(sum(done), total)

            return self.power.run(inputs, list(windows[i]), tag=f"{tag}{i}",
                                  on_progress=progress)

        workers = max(1, min(len(recs), jobs or os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, range(len(recs))))
        checked = sum(self.check_outputs(i, rec, run)
                      for i, (rec, (_, run)) in enumerate(zip(recs, results, strict=True)))
        runs = [run for _, run in results]
        accesses = None
        if all(run.access_counts is not None for run in runs):
            accesses = [run.access_counts for run in runs]
        return [energies for energies, _ in results], {
            "checked": checked, "wall_s": time.perf_counter() - started,
            "log": str(runs[0].log) if runs else "", "cycles": total, "runs": runs,
            "accesses": accesses, "jobs": workers}

    def check_outputs(self, layer: int, rec: Recording, run: Any) -> int:
        """Compare the gate-level outputs of recording ``rec`` (layer ``layer``, run
        from power-on as :meth:`replay` runs it) with the RTL's, cycle for cycle, from
        the first cycle after the first reset edge; a payload only while its valid is
        set.  The number of values compared."""
        checked = 0
        rst = np.flatnonzero(np.asarray(rec.inputs["rst"], dtype=np.int64))
        start = int(rst[0]) + 1 if len(rst) else 0
        for port, values in rec.outputs.items():
            valid = None
            if port.endswith("__payload") and port[:-9] + "__valid" in rec.outputs:
                valid = rec.outputs[port[:-9] + "__valid"]
            got = run.outputs[port]
            unknown = rec.unknown.get(port, {})
            for t in range(start, rec.cycles):
                if valid is not None and not valid[t]:
                    continue
                u = unknown.get(t, 0)
                g = got[t]
                if g < 0:
                    if u:
                        continue
                    bad = "x"
                elif (g & ~u) == (values[t] & ~u):
                    checked += 1
                    continue
                else:
                    bad = f"{g:#x}"
                raise ToolFailed(
                    f"gate-level output {port} differs from the RTL's in layer {layer}, "
                    f"cycle {t}: {bad}, expected {values[t]:#x}; log: {run.log}")
        return checked


# -- measuring layers -------------------------------------------------------------------------


def _layer_report(rec: Recording, parts: list[WindowEnergy], clock_ns: float,
                  groups: list[str]) -> dict[str, Any]:
    case = rec.case
    cycles = rec.result["cycles"]
    macs = rec.result["macs"]
    e = sum(w.total for w in parts)
    by_group = {g: sum(w.by_group[g] for w in parts) for g in groups}
    components: dict[str, float] = {}
    for w in parts:
        for c, v in w.components.items():
            components[c] = components.get(c, 0.0) + v
    return {
        "shape": case.shape.to_dict(), "act_bits": case.act_bits,
        "weight_bits": case.weight_bits, "lanes": rec.result["lanes"], "macs": macs,
        "cycles": cycles, "compute_cycles": rec.result["compute_cycles"],
        "bytes_in": rec.result["traffic"]["in"], "bytes_out": rec.result["traffic"]["out"],
        "energy_pj": e, "pj_per_mac": e / macs, "pj_per_cycle": e / cycles,
        "tops_per_w": OPS_PER_MAC * macs / e,
        "breakdown": {
            "internal_pj": sum(w.internal for w in parts),
            "switching_pj": sum(w.switching for w in parts),
            "leakage_pj": sum(w.leakage for w in parts),
            "memory_access_pj": sum(w.memory_access for w in parts),
            "groups_pj": by_group,
            "groups_pj_per_mac": {g: v / macs for g, v in by_group.items()},
            "components_pj": components,
            "clock_pj": {p: components.get(f"clock/{p}", 0.0) for p in CLOCK_PARTS},
            "memories_pj": memory_breakdown(components),
        },
    }


def _run_layers(config: TileConfig, kinds: list[tuple[TileMode, str]], *, seed: int,
                liberty: str | None, clock_ns: float | None,
                constraints: dict[str, Any] | None, rtl_simulator: str,
                log: Callable[[str], None], report: dict[str, Any] | None = None
                ) -> tuple[TileGate, list[Recording],
                                                     list[list[tuple[str, int, int]]],
                                                     list[list[WindowEnergy]], dict[str, Any]]:
    """Record ``kinds`` (mode, layer kind) in RTL and replay them at gate level."""
    timing: dict[str, float] = {}
    t = time.perf_counter()
    log("synthesis (cache) and gate-level build")
    gate = TileGate.prepare(config, liberty=liberty, clock_ns=clock_ns,
                            constraints=constraints, report=report,
                            on_synth=lambda out: log(f"synthesizing in {out}"))
    timing["prepare_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cases = [mode_case(config, m, kind, seed) for m, kind in kinds]
    log(f"RTL simulation of {len(cases)} layers ({rtl_simulator}), recording every port")
    recs = record_layers(config, cases, simulator=rtl_simulator)
    timing["rtl_s"] = time.perf_counter() - t
    t = time.perf_counter()
    windows = [_windows(r, _PIECES) for r in recs]
    total = sum(r.cycles for r in recs)
    log(f"gate-level simulation of {total:,} cycles")
    energies, facts = gate.replay(recs, [[(a, b) for _, a, b in w] for w in windows])
    timing["gate_s"] = time.perf_counter() - t
    facts["timing"] = timing
    return gate, recs, windows, energies, facts


def _context(gate: TileGate, recs: list[Recording], facts: dict[str, Any],
             rtl_simulator: str) -> dict[str, Any]:
    from ..tools import python_package_version, tool_versions

    gp = gate.power
    versions = tool_versions("rcm_gen", "yosys", "verilator", "iverilog")
    versions["liberty-parser"] = python_package_version("liberty-parser")
    versions["cocotb"] = python_package_version("cocotb")
    return {
        "config": gate.config.to_dict(),
        "clock_ns": gp.clock_ns,
        "library": {"name": gp.lib.name, "path": str(gp.lib.source),
                    "voltage": gp.lib.voltage, "wire_load_model": gp.model.wire_model},
        "synthesis": {"area_um2": gp.report["area_um2"], "cells": gp.report["cells"],
                      "fmax_mhz": gp.report["fmax_mhz"], "netlist": gp.report["netlist"]},
        "simulators": {"rtl": rtl_simulator, "gate": "cycle"},
        "checked": facts["checked"], "gate_cycles": facts["cycles"],
        "sim_log": facts["log"], "timing_s": facts["timing"],
        "stimulus": {"kind": "random", "note": "uniform over each mode's signed range; "
                     "requantized on the tile to the same precision"},
        "tools": versions,
    }


def carry_glitches(mode: dict[str, Any], factors: dict[str, float],
                   leakage: dict[str, float]) -> None:
    """Raise a layer report's (:func:`tile_energy`'s ``modes`` entry) groups by their
    glitch ``factors`` (:func:`rcm_gen.power.glitch.glitch_factors`: timed over
    zero-delay energy of the tile's MAC), applied to each group's dynamic energy (its
    ``leakage`` over the layer's cycles left out); the zero-delay figures are kept under
    ``zero_delay`` and the added energy under ``breakdown.glitch_pj``."""
    b, macs = mode["breakdown"], mode["macs"]
    mode["zero_delay"] = {"energy_pj": mode["energy_pj"], "pj_per_mac": mode["pj_per_mac"],
                          "groups_pj": dict(b["groups_pj"])}
    added: dict[str, float] = {}
    for g, f in factors.items():
        if g not in b["groups_pj"] or f == 1.0:
            continue
        d = (f - 1.0) * max(b["groups_pj"][g] - leakage.get(g, 0.0), 0.0)
        b["groups_pj"][g] += d
        b["components_pj"][g] = b["components_pj"].get(g, 0.0) + d
        added[g] = d
    e = mode["energy_pj"] + sum(added.values())
    b["glitch_pj"] = added
    b["groups_pj_per_mac"] = {g: v / macs for g, v in b["groups_pj"].items()}
    mode.update(energy_pj=e, pj_per_mac=e / macs, pj_per_cycle=e / mode["cycles"],
                tops_per_w=OPS_PER_MAC * macs / e)


def tile_energy(config: TileConfig, *, modes: list[TileMode] | None = None, seed: int = 1,
                liberty: str | None = None, clock_ns: float | None = None,
                constraints: dict[str, Any] | None = None, rtl_simulator: str = "verilator",
                glitches: bool = False,
                log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Energy of ``config`` running a real layer in each mode, at gate level; with
    ``glitches``, the groups its MACs make (multipliers, accumulators) raised by the
    factors a timing simulation of the tile's MAC gives where they exceed
    :data:`~rcm_gen.power.glitch.GLITCH_THRESHOLD` (:func:`carry_glitches`; report key
    ``glitches``).

    Returns
    -------
    dict
        ``modes`` (one entry per mode: ``act_bits``, ``weight_bits``, ``lanes``,
        ``layer`` shape, ``macs``, ``cycles``, ``energy_pj``, ``pj_per_mac``,
        ``pj_per_cycle``, ``tops_per_w`` and a ``breakdown`` into internal / switching /
        leakage and by group), with ``config``, ``clock_ns``, ``library``, ``tools``,
        ``checked`` (output values compared with the RTL) and ``timing_s``.

    Raises
    ------
    UserError
        Bad options (see :func:`rcm_gen.power.mac.mac_energy`).
    ToolFailed
        A tool failed, the RTL differs from numpy or the cycle model, or the netlist
        from the RTL.
    """
    started = time.perf_counter()
    if not isinstance(config, TileConfig):
        raise UserError(f"tile energy needs a tile design point, not a "
                        f"{getattr(config, 'kind', type(config).__name__)}")
    log = log or (lambda _m: None)
    modes = modes or tile_modes(config)
    gate, recs, windows, energies, facts = _run_layers(
        config, [(m, "conv3x3") for m in modes], seed=seed, liberty=liberty,
        clock_ns=clock_ns, constraints=constraints, rtl_simulator=rtl_simulator, log=log)
    reports, layers = [], []
    for rec, wins, parts in zip(recs, windows, energies, strict=True):
        layer = [e for (phase, _, _), e in zip(wins, parts, strict=True) if phase != "idle"]
        layers.append(layer)
        reports.append(_layer_report(rec, layer, gate.power.clock_ns, gate.groups))
    glitch = None
    if glitches:
        from .glitch import GLITCH_THRESHOLD, glitch_report

        log("timing simulation of the tile's MAC for its glitch factors (cached)")
        r = glitch_report(config.mac, liberty=liberty, clock_ns=clock_ns,
                          constraints=constraints, log=lambda m: log(f"MAC glitches: {m}"))
        every = {g: float(f) for g, f in r["factors"].items()}
        carried = {g: f for g, f in every.items()
                   if g in gate.groups and abs(f - 1.0) > GLITCH_THRESHOLD}
        for rep, layer in zip(reports, layers, strict=True):
            leak = gate.leakage_pj(sum(w.cycles for w in layer), gate.power.clock_ns)
            carry_glitches(rep, carried, leak)
        glitch = {"factors": every, "carried": carried, "threshold": GLITCH_THRESHOLD,
                  "mac": config.mac.to_dict(), "period_ns": r["period_ns"],
                  "cycles": r.get("cycles"), "wall_s": r["wall_s"]}
    return {"modes": reports, **_context(gate, recs, facts, rtl_simulator),
            "groups": gate.groups, "ops_per_mac": OPS_PER_MAC, "glitches": glitch,
            "wall_s": time.perf_counter() - started}


def format_tile_energy(r: dict[str, Any], name: str) -> str:
    """A readable table of a :func:`tile_energy` report."""
    groups = r["groups"]
    head = ("mode", "layer", "MACs", "cycles", "pJ/cycle", "pJ/MAC", "TOPS/W",
            *(f"{g[:10]}" for g in groups))
    rows = [head]
    for m in r["modes"]:
        s = m["layer"] if "layer" in m else m["shape"]
        per_mac = m["breakdown"]["groups_pj_per_mac"]
        rows.append((f"{m['act_bits']}b x{m['lanes']}",
                     f"{s['c']}->{s['m']} {s['h']}x{s['w']} k{s['k']}", f"{m['macs']:,}",
                     f"{m['cycles']:,}", f"{m['pj_per_cycle']:.1f}", f"{m['pj_per_mac']:.2f}",
                     f"{m['tops_per_w']:.3g}", *(f"{per_mac[g]:.2f}" for g in groups)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"{name}: a real layer per mode at gate level, clock {r['clock_ns']:g} ns, "
             f"{r['library']['name']} at {r['library']['voltage']:g} V (groups in pJ/MAC)"]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    lines += _detail_lines(r)
    g = r.get("glitches")
    if g:
        moved = ", ".join(f"{k} x{v:.2f}" for k, v in g["carried"].items()) or "none"
        lines.append(f"glitches: a timing simulation of the tile's MAC (OpenSTA's SDF on "
                     f"Icarus) raises {moved} (groups moved by more than "
                     f"{100 * g['threshold']:.0f} %), carried into the figures above; "
                     f"zero-delay pJ/MAC: " + ", ".join(
                         f"{m['act_bits']}b {m['zero_delay']['pj_per_mac']:.3f}"
                         for m in r["modes"] if "zero_delay" in m))
    lines.append(f"{r['checked']:,} output values of {r['gate_cycles']:,} gate-level cycles "
                 f"equal the RTL's ({r['simulators']['rtl']} RTL; gate level on rcm_gen's "
                 f"cycle simulator); "
                 f"{r['wall_s']:.0f} s")
    return "\n".join(lines)


def _detail_lines(r: dict[str, Any]) -> list[str]:
    """The clock network's parts and each memory's accesses, per mode (pJ/MAC), and the
    totals with the macros' access energies halved and doubled."""
    lines = ["clock (pJ/MAC): tree + wires + clock pins = clock, share of the total"]
    for m in r["modes"]:
        b, macs = m["breakdown"], m["macs"]
        clk = b.get("clock_pj", {})
        total = sum(clk.values())
        lines.append(f"  {m['act_bits']}b x{m['lanes']}: "
                     + " + ".join(f"{clk.get(p, 0.0) / macs:.3f} {p}" for p in CLOCK_PARTS)
                     + f" = {total / macs:.3f} ({100 * total / m['energy_pj']:.1f} %)")
    for m in r["modes"]:
        mem = m["breakdown"].get("memories_pj", {})
        if not mem:
            continue
        macs = m["macs"]
        parts = []
        for buf, e in sorted(mem.items()):
            kinds = [f"{k.replace('macro_', '')} {v / macs:.3f}" for k, v in e.items() if v]
            parts.append(f"{buf}: " + ", ".join(kinds))
        lines.append(f"memories {m['act_bits']}b x{m['lanes']} (pJ/MAC): " + "; ".join(parts))
        access = m["breakdown"].get("memory_access_pj", 0.0)
        if access:
            lo = (m["energy_pj"] - access / 2) / macs
            hi = (m["energy_pj"] + access) / macs
            lines.append(f"  macro access energies x0.5 / x2: {lo:.3f} / {hi:.3f} pJ/MAC "
                         f"(as measured {m['pj_per_mac']:.3f})")
    return lines
