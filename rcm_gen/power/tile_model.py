"""The tile's energy model, for whole networks: a layer's energy from what the cycle
model gives it, with coefficients fitted at gate level (:func:`calibrate`) on real layers
measured by :mod:`rcm_gen.power.tile`.

For a network, a layer's energy is predicted from what the cycle model gives it::

    E = Σ_component  e_cycle · T  +  e_step[mode] · S  +  e_in · B_in  +  e_out · B_out
                     +  e_value · V  +  P_leak · T · t_clk

``T`` the cycles the layer occupies the tile (its latency, with a bandwidth's roofline the
extra cycles being idle ones), ``S`` the compute steps (cycles the MACs step), ``B_in`` and
``B_out`` the bytes into and out of the tile, ``V`` the output values (each drained and
post-processed, whatever its width), ``t_clk`` the clock period and ``P_leak`` the
netlist's leakage power (from the liberty, exact).  The mode is the layer's lane count and
the smallest calibrated precision that holds its operands.  The coefficients (pJ per cycle,
per step in each mode, per byte in and out) of every energy component (a group, or a finer
part: the clock's tree, wires and pins, each buffer's cells and macro accesses) are fitted,
non-negative, by least squares on the dynamic energy of windows of gate-level runs: per
mode a 3×3 and a 1×1 layer, each cut into windows at the ends of its load-only and
drain-only phases and in its steady state, and an idle window after every layer.  The
calibration (:func:`calibrate`) then runs a layer of another shape and the held-out layers
(:data:`rcm_gen.power.tile.HELD_OUT_KINDS`: stride 2, a wide 1×1, fully connected,
depthwise, ReLU-distributed data, an unfitted precision) through the same flow and reports
the model's error on each beside the one-parameter baseline's (energy per cycle × cycles,
from the fitted layers): ``validation``.  Calibrations are cached per design point,
netlist, liberty, clock, the held-out set and the sources of this flow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..conv import ConvShape
from ..errors import UserError
from ..tile.config import TileConfig
from .tile import (
    HELD_OUT_KINDS,
    Recording,
    TileMode,
    _context,
    _mode_of,
    _run_layers,
    mode_case,
    tile_modes,
)

__all__ = [
    "TileEnergyModel",
    "calibrate",
    "calibration_path",
    "cached_calibration",
    "energy_fingerprint",
    "fit_nonnegative",
    "with_glitches",
]

#: Sources whose change invalidates a cached calibration.
_SOURCES = ("power/tile.py", "power/tile_model.py", "power/energy.py", "power/clock_tree.py",
            "power/sram.py", "power/mac.py", "flows/netlist.py", "flows/liberty.py",
            "flows/macros.py", "sim/gate_level.py", "sim/gate_cycle.py", "sim/gate_program.py",
            "sim/gate_engine.c", "sim/gate_run.py",
            "sim/tile_record.py", "sim/tile_tb.py", "tile/driver.py", "tile/plan.py",
            "tile/cycles.py", "tile/simulate.py")


def _features(rec: Recording, a: int, b: int, modes: list[TileMode], mode: TileMode
              ) -> dict[str, float]:
    """What the model multiplies in window [a, b): cycles, steps in ``mode``, bytes in and
    out and output values (the layer's, as the cycle model counts them, spread over its
    cycles in proportion to the payload bits that moved)."""
    t0, t1 = rec.layer_window()
    traffic = rec.result["traffic"]
    shape = rec.case.shape
    f = {"cycle": float(b - a), **{f"step:{m.key}": 0.0 for m in modes},
         "byte_in": 0.0, "byte_out": 0.0, "out_value": 0.0}
    f[f"step:{mode.key}"] = float(rec.steps()[a:b].sum())
    for into, key, total in ((True, "byte_in", traffic["in"]),
                             (False, "byte_out", traffic["out"]),
                             (False, "out_value", shape.m * shape.ho * shape.wo)):
        bits = rec.payload_bits(into)
        layer = bits[t0:t1].sum()
        f[key] = float(total * bits[a:b].sum() / layer) if layer else 0.0
    return f



def fit_nonnegative(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares ``min |a x − b|`` with ``x ≥ 0`` (Lawson and Hanson's active-set
    method), columns scaled to unit norm first."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    norms = np.linalg.norm(a, axis=0)
    scale = np.where(norms > 0, norms, 1.0)
    a = a / scale
    n = a.shape[1]
    passive = np.zeros(n, dtype=bool)
    x = np.zeros(n)
    tol = 1e-10 * max(1.0, float(np.abs(a.T @ b).max()))
    for _ in range(3 * n + 10):
        grad = a.T @ (b - a @ x)
        free = ~passive & (norms > 0)
        if not free.any() or grad[free].max() <= tol:
            break
        j = int(np.argmax(np.where(free, grad, -np.inf)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = float(np.min(x[neg] / (x[neg] - z[neg])))
            x = x + alpha * (z - x)
            passive &= x > 1e-12
    return x / scale


@dataclass(frozen=True)
class TileEnergyModel:
    """Energy of a tile per cycle, per compute step in each mode, per byte in and out,
    per output value, by component (pJ; ``coefficients``, components such as
    ``multipliers``, ``clock/tree`` or ``buffers/act_buf/macro_read``, each in the group
    its name starts with), and its leakage power (nW) by component: the model of the
    module documentation, calibrated at gate level (:func:`calibrate`).

    ``validation`` is the model against a gate-level run of a layer it was not fitted on
    (``gate_pj``, ``model_pj``, ``error``, and the one-parameter baseline's
    ``baseline_pj``, ``baseline_error``), with ``held_out``: the same for each layer of
    :data:`HELD_OUT_KINDS`; ``fit`` the calibration layers' own errors.
    """

    config: dict[str, Any]
    modes: tuple[TileMode, ...]
    groups: tuple[str, ...]
    coefficients: dict[str, dict[str, float]]
    leakage_nw: dict[str, float]
    clock_ns: float
    fmax_mhz: float
    validation: dict[str, Any]
    fit: dict[str, Any]
    context: dict[str, Any]
    #: per group, the factor its dynamic energy is raised by for glitches
    #: (:func:`with_glitches`); none in a calibration itself
    glitches: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return ["cycle", *(f"step:{m.key}" for m in self.modes), "byte_in", "byte_out",
                "out_value"]

    def mode_for(self, lanes: int, act_bits: int, weight_bits: int) -> TileMode:
        return _mode_of(list(self.modes), lanes, act_bits, weight_bits)

    def energy(self, *, cycles: int, steps: int, bytes_in: int, bytes_out: int,
               outputs: int, mode: TileMode, clock_ns: float | None = None,
               by: str = "group") -> dict[str, float]:
        """Energy (pJ, leakage at ``clock_ns``, default the calibration's) of ``cycles``
        cycles with ``steps`` compute steps in ``mode``, the bytes moved and ``outputs``
        values sent, by group (``by="group"``) or by component (``by="component"``:
        ``clock/tree``, ``buffers/act_buf/macro_read``, ...)."""
        period = self.clock_ns if clock_ns is None else clock_ns
        f = {"cycle": cycles, f"step:{mode.key}": steps, "byte_in": bytes_in,
             "byte_out": bytes_out, "out_value": outputs}
        comps = {}
        for name, c in self.coefficients.items():
            dyn = sum(c.get(k, 0.0) * v for k, v in f.items()) \
                * self.glitches.get(name.split("/")[0], 1.0)
            comps[name] = dyn + self.leakage_nw.get(name, 0.0) * period * cycles * 1e-6
        if by == "component":
            return comps
        out = dict.fromkeys(self.groups, 0.0)
        for name, v in comps.items():
            out[name.split("/")[0]] += v
        return out

    def layer_energy(self, lc: Any, shape: ConvShape, act_bits: int, weight_bits: int, *,
                     cycles: int | None = None, clock_ns: float | None = None
                     ) -> dict[str, Any]:
        """Energy of a layer of ``shape`` from its
        :class:`~rcm_gen.tile.cycles.LayerCycles` (``cycles``: the cycles it occupies the
        tile, default ``lc.total``; more with a bandwidth roofline): ``pj``, ``groups_pj``
        and the calibrated ``mode`` used."""
        mode = self.mode_for(lc.lanes, act_bits, weight_bits)
        t = lc.total if cycles is None else cycles
        comps = self.energy(cycles=t, steps=lc.compute, bytes_in=lc.traffic["in"],
                            bytes_out=lc.traffic["out"], outputs=shape.m * shape.ho * shape.wo,
                            mode=mode, clock_ns=clock_ns, by="component")
        by = dict.fromkeys(self.groups, 0.0)
        for name, v in comps.items():
            by[name.split("/")[0]] += v
        return {"pj": sum(by.values()), "groups_pj": by, "components_pj": comps,
                "mode": mode.key}

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "modes": [[m.act_bits, m.weight_bits, m.lanes]
                                               for m in self.modes],
                "groups": list(self.groups), "coefficients": self.coefficients,
                "leakage_nw": self.leakage_nw, "clock_ns": self.clock_ns,
                "fmax_mhz": self.fmax_mhz, "validation": self.validation, "fit": self.fit,
                "context": self.context, "glitches": self.glitches}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TileEnergyModel:
        return cls(d["config"], tuple(TileMode(*m) for m in d["modes"]),
                   tuple(d["groups"]), d["coefficients"], d["leakage_nw"],
                   float(d["clock_ns"]), float(d["fmax_mhz"]), d["validation"], d["fit"],
                   d["context"], dict(d.get("glitches") or {}))


def with_glitches(model: TileEnergyModel, config: TileConfig, *, liberty: str | None = None,
                  clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                  log: Callable[[str], None] | None = None) -> TileEnergyModel:
    """``model`` with the glitch factors of its tile's MAC carried into the groups the MAC
    makes: a timing simulation of ``config.mac`` (:func:`rcm_gen.power.glitch.glitch_report`,
    cached) against its zero-delay run; a group moved by more than
    :data:`~rcm_gen.power.glitch.GLITCH_THRESHOLD` has its dynamic energy raised by its
    factor, as :func:`rcm_gen.power.tile.carry_glitches` does for a measured layer."""
    from .glitch import GLITCH_THRESHOLD, glitch_report

    log = log or (lambda _m: None)
    r = glitch_report(config.mac, liberty=liberty, clock_ns=clock_ns, constraints=constraints,
                      log=log)
    carried = {g: float(f) for g, f in r["factors"].items()
               if g in model.groups and abs(f - 1.0) > GLITCH_THRESHOLD}
    return dataclasses.replace(model, glitches=carried)


def energy_fingerprint() -> str:
    """Hash of the sources of this flow (the testbenches, the gate-level simulation, the
    energy model, the driver and cycle model): part of a calibration's cache key."""
    return _sources_digest()


def _sources_digest() -> str:
    from .. import sim as sim_package

    root = Path(__file__).resolve().parent.parent
    sim = Path(sim_package.__file__).resolve().parent
    h = hashlib.sha256()
    for rel in _SOURCES:
        path = (sim / rel[4:]) if rel.startswith("sim/") else root / rel
        if path.is_file():
            h.update(rel.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def calibration_path(config: TileConfig, *, liberty: str | None = None,
                     clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                     seed: int = 1, rtl_simulator: str = "verilator",
                     held_out: tuple[str, ...] | None = None) -> Path:
    """Where the calibration of ``config`` with these settings is cached: under
    ``<cache>/energy``, keyed by the synthesis run's folder (design point, liberty, clock,
    constraints, tool versions), the sources of this flow, the seed and the held-out
    layers."""
    from ..flows.synth import run_dir
    from ..generate import config_hash
    from ..tools import cache_dir

    synth = run_dir(config, "asic", liberty, clock_ns, constraints)
    # not the RTL simulator: both record the same port values (the testbench checks
    # every output against numpy and the cycles against the model on either)
    held = list(HELD_OUT_KINDS if held_out is None else held_out)
    key = hashlib.sha256(json.dumps([synth.name, _sources_digest(), seed, held],
                                    sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "energy" / f"rcm_tile-{config_hash(config)}-{key}.json"


def cached_calibration(config: TileConfig, **settings: Any) -> TileEnergyModel | None:
    """The cached calibration of ``config`` with ``settings`` (see :func:`calibrate`)."""
    path = calibration_path(config, **settings)
    try:
        return TileEnergyModel.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def calibrate(config: TileConfig, *, liberty: str | None = None, clock_ns: float | None = None,
              constraints: dict[str, Any] | None = None, seed: int = 1,
              rtl_simulator: str = "verilator", check_mode: TileMode | None = None,
              log: Callable[[str], None] | None = None, use_cache: bool = True,
              report: dict[str, Any] | None = None,
              held_out: tuple[str, ...] | None = None) -> TileEnergyModel:
    """The energy model of ``config`` (see the module documentation), from the cache or
    calibrated now: per mode a 3×3 and a 1×1 layer (with an idle window after each)
    recorded in RTL and replayed at gate level, the coefficients fitted by non-negative
    least squares per energy component; then a layer of another shape and the held-out
    layers (``held_out``, default :data:`HELD_OUT_KINDS`; those the tile cannot run are
    listed in ``validation["skipped"]`` with the reason) in ``check_mode`` (default: the
    middle mode), run the same way and predicted from their cycle-model figures beside
    the one-parameter baseline (``validation``).  With ``report`` (a synthesis report of
    ``config`` with these settings, as the design-space exploration has one) the netlist
    is that report's and the calibration is neither read from nor written to the cache.

    Raises
    ------
    UserError, ToolFailed
        As :func:`tile_energy`.
    """
    from ..tile.cycles import plan_cycles
    from ..tile.driver import plan_layer

    if not isinstance(config, TileConfig):
        raise UserError(f"an energy model needs a tile design point, not a "
                        f"{getattr(config, 'kind', type(config).__name__)}")
    settings = {"liberty": liberty, "clock_ns": clock_ns, "constraints": constraints,
                "seed": seed, "rtl_simulator": rtl_simulator, "held_out": held_out}
    path = calibration_path(config, **settings)
    use_cache = use_cache and report is None
    if use_cache:
        cached = cached_calibration(config, **settings)
        if cached is not None:
            return cached
    started = time.perf_counter()
    log = log or (lambda _m: None)
    modes = tile_modes(config, asymmetric=True)
    check = check_mode or modes[len(modes) // 2]
    kinds = [(m, k) for m in modes for k in ("conv3x3", "conv1x1")] + [(check, "check")]
    skipped = {}
    for kind in held_out if held_out is not None else HELD_OUT_KINDS:
        try:
            mode_case(config, check, kind, seed)
        except ValueError as exc:  # a layer this tile cannot run: say why
            skipped[kind] = str(exc)
            continue
        kinds.append((check, kind))
    gate, recs, windows, energies, facts = _run_layers(
        config, kinds, seed=seed, liberty=liberty, clock_ns=clock_ns,
        constraints=constraints, rtl_simulator=rtl_simulator, log=log, report=report)
    period = gate.power.clock_ns
    groups = gate.groups
    components = list(gate.power.model.components)
    comp_leak = dict(zip(components, gate.power.model.comp_leakage_nw.tolist(), strict=True))
    names = ["cycle", *(f"step:{m.key}" for m in modes), "byte_in", "byte_out", "out_value"]
    fitted_kinds = ("conv3x3", "conv1x1")
    rows, targets = [], []
    for (mode, kind), rec, wins, parts in zip(kinds, recs, windows, energies, strict=True):
        if kind not in fitted_kinds:
            continue
        for (_phase, a, b), e in zip(wins, parts, strict=True):
            f = _features(rec, a, b, modes, mode)
            rows.append([f[n] for n in names])
            targets.append([e.components.get(c, 0.0) - comp_leak[c] * period * (b - a) * 1e-6
                            for c in components])
    a_mat = np.array(rows)
    y = np.array(targets)
    coefficients = {}
    for j, c in enumerate(components):
        x = fit_nonnegative(a_mat, y[:, j]) if np.abs(y[:, j]).max() > 0 \
            else np.zeros(len(names))
        coefficients[c] = {n: float(v) for n, v in zip(names, x, strict=True)}
    model = TileEnergyModel(config.to_dict(), tuple(modes), tuple(groups), coefficients,
                            comp_leak, period, float(gate.power.report["fmax_mhz"]), {}, {}, {})

    def predict(rec: Recording) -> float:
        case = rec.case
        plan = plan_layer(config, case.shape, case.act_bits, case.weight_bits,
                          case.act_signed, post=case.post, pad_value=case.pad_value)
        return model.layer_energy(plan_cycles(plan), case.shape, case.act_bits,
                                  case.weight_bits)["pj"]

    layers = []
    for (mode, kind), rec, wins, parts in zip(kinds, recs, windows, energies, strict=True):
        gate_pj = sum(e.total for (phase, _, _), e in zip(wins, parts, strict=True)
                      if phase != "idle")
        model_pj = predict(rec)
        layers.append({"mode": mode.key, "kind": kind, "shape": rec.case.shape.to_dict(),
                       "act_bits": rec.case.act_bits, "act_signed": rec.case.act_signed,
                       "cycles": rec.result["cycles"], "macs": rec.result["macs"],
                       "gate_pj": gate_pj, "model_pj": model_pj,
                       "error": model_pj / gate_pj - 1.0})
    fitted = [x for x in layers if x["kind"] in fitted_kinds]
    # the one-parameter baseline: energy per cycle over the fitted layers, times cycles
    per_cycle = sum(x["gate_pj"] for x in fitted) / sum(x["cycles"] for x in fitted)
    for x in layers:
        x["baseline_pj"] = per_cycle * x["cycles"]
        x["baseline_error"] = x["baseline_pj"] / x["gate_pj"] - 1.0
    held = [x for x in layers if x["kind"] not in fitted_kinds]
    validation = {**next(x for x in layers if x["kind"] == "check"),
                  "held_out": held, "skipped": skipped,
                  "max_error": max(abs(x["error"]) for x in held),
                  "baseline_max_error": max(abs(x["baseline_error"]) for x in held),
                  "baseline_pj_per_cycle": per_cycle}
    windows_fit = a_mat @ np.array([[coefficients[c][n] for c in components] for n in names])
    residual = (windows_fit.sum(axis=1) - y.sum(axis=1)) / np.maximum(y.sum(axis=1), 1e-12)
    fit = {"layers": fitted, "windows": len(rows),
           "window_error_rms": float(np.sqrt(np.mean(residual ** 2))),
           "max_layer_error": max(abs(x["error"]) for x in fitted)}
    context = {**_context(gate, recs, facts, rtl_simulator), "seed": seed,
               "wall_s": time.perf_counter() - started,
               "model": "E = sum over components of e_cycle*T + e_step[mode]*S + e_in*B_in + "
                        "e_out*B_out + e_value*V + P_leak*T*t_clk"}
    model = dataclasses.replace(model, validation=validation, fit=fit, context=context)
    if report is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(model.to_dict(), indent=1) + "\n")
        tmp.replace(path)
    return model
