"""Glitch energy of a MAC from a timing simulation of its synthesized netlist, beside the
zero-delay power flow (:mod:`rcm_gen.power.mac`), and the per-group factors that carry it
into other energy figures.

1. The MAC's netlist (the synthesis cache) runs the zero-delay power flow's inputs
   (:func:`rcm_gen.power.mac._schedule` on the same streams, seed and cycles), every
   accumulator value checked against numpy.
2. OpenSTA writes its SDF as the ASIC flow times it (:mod:`rcm_gen.power.sdf`); Icarus
   Verilog 11 runs the same inputs with those delays (:mod:`rcm_gen.power.timed`:
   inertial delays, inputs at the rising edge, a period longer than the longest path so
   that every net settles before the next edge, as the zero-delay run assumes; the clock
   network ideal, as static timing takes it: no delay from the clock through clock gates,
   as if the clock tree balanced the gated clocks against the free-running one); every
   accumulator value is checked against numpy again and every sampled output against the
   zero-delay run's.
3. Both runs' per-net rises and falls become energy through the same
   :class:`rcm_gen.power.energy.EnergyModel` at the design's clock (dynamic energy does
   not depend on the period, leakage is charged at the design's clock as in the zero-delay
   report).  Per operating point: toggles and pJ/MAC both ways, and per energy group the
   timed / zero-delay factor; over all operating points the factor of each group, which
   :func:`glitch_factors` gives where it exceeds :data:`GLITCH_THRESHOLD`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolFailed, UserError
from ..tools import cache_dir
from .energy import ENERGY_GROUPS
from .sdf import opensta_sdf, read_sdf
from .timed import TimedSim

__all__ = ["GLITCH_THRESHOLD", "format_glitch", "glitch_energy", "glitch_factors",
           "glitch_report"]

#: A group's energy must move by more than this fraction under timing simulation for
#: :func:`glitch_factors` to report a factor other than 1.
GLITCH_THRESHOLD = 0.05

#: Sources whose change invalidates a cached glitch report.
_SOURCES = ("power/glitch.py", "power/timed.py", "power/sdf.py", "power/mac.py",
            "power/energy.py", "flows/netlist.py", "flows/liberty.py", "flows/sta.py",
            "flows/asic.py", "flows/user_design.py", "sim/gate_level.py", "sim/gate_run.py",
            "sim/power_stimulus.py", "reference.py")


def _net_groups(model: Any) -> np.ndarray:
    """The energy group (index into ``model.groups``) of each net's switching, -1 for
    none."""
    return np.asarray(model.net_groups())


def glitch_energy(design: Any, *, ports: Any = None, liberty: str | None = None,
                  clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                  stimulus: str = "random", cycles: int = 1000, seed: int = 1,
                  accumulate: int = 128, simulator: str = "verilator",
                  period_ns: float | None = None, log: Callable[[str], None] | None = None
                  ) -> dict[str, Any]:
    """A MAC's energy per operating point with and without glitches: the zero-delay power
    run of :func:`rcm_gen.power.mac.mac_energy` (same stimulus, seed, cycles) and a timing
    simulation of the same inputs (see the module documentation).

    Parameters
    ----------
    design : MacConfig or UserDesign
        A MAC design point, or the user's MAC with ``ports`` saying which port is which
        (its netlist from the synthesis cache, synthesized if absent).
    ports, liberty, clock_ns, constraints, stimulus, cycles, seed, accumulate
        As for :func:`rcm_gen.power.mac.mac_energy`.
    simulator : str
        The zero-delay simulator (``verilator`` or ``icarus``).
    period_ns : float, optional
        Clock period of the timing simulation; default 1.5 times the longer of the
        design's critical path (its synthesis report) and the annotated netlist's longest
        path, plus 1 ns, rounded up to a whole ns.
    log : callable, optional
        Called with a line of progress now and then.

    Returns
    -------
    dict
        ``modes`` (per operating point: ``act_bits``, ``weight_bits``, ``mode``, ``lanes``,
        ``act_signed``, ``toggles_per_cycle`` and ``pj_per_mac`` zero-delay and timed, the
        groups' pJ per cycle both ways, their ``factors`` timed / zero-delay and the extra
        transitions per cycle by group), ``factors`` (per group over all modes, energy
        weighted), ``sdf`` (the SDF and what was merged), ``period_ns``, ``clock_ns``,
        ``library``, ``config``, ``tools``, ``checked`` (accumulator values against numpy
        in both simulations, and outputs compared between them), ``wall_s``.

    Raises
    ------
    UserError
        Bad options, or an SDF that does not match the netlist.
    ToolFailed
        A tool failed; the simulations disagree with numpy or with each other.
    """
    from ..config import MacConfig
    from ..flows.user_design import UserDesign
    from ..tools import python_package_version, tool_versions
    from .mac import (
        _SETTLE,
        GatePower,
        _check_accumulator,
        _schedule,
        _streams,
        mac_port_map,
        power_modes,
    )

    started = time.perf_counter()
    log = log or (lambda _m: None)
    user = isinstance(design, UserDesign)
    if isinstance(design, MacConfig):
        ports = mac_port_map(design)
    elif not user:
        raise UserError(f"timing simulation runs on a MAC (a mac preset, a MAC --config or "
                        f"--verilog), not a {getattr(design, 'kind', type(design).__name__)}")
    elif ports is None:
        raise UserError("--verilog needs --ports FILE (the roles of its ports)")
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
        raise UserError(f"--cycles must be an integer of at least 1, not {cycles!r}")
    modes, streams = _streams(stimulus, power_modes(ports), cycles,
                              ports.latency + _SETTLE, seed)
    timing: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(what: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timing[what] = timing.get(what, 0.0) + now - mark
        mark = now

    log("netlist (synthesis cache) and zero-delay build")
    gp = GatePower.prepare(design, clock=ports.clock, liberty=liberty, clock_ns=clock_ns,
                           constraints=constraints, simulator=simulator,
                           on_synth=lambda out: log(f"synthesizing in {out}"),
                           check_ports=lambda net: ports.check(
                               net.ports, "--ports" if user else "design"))
    lap("prepare")
    inputs, windows, expected, check, which = _schedule(ports, modes, streams, cycles,
                                                        accumulate, gp.sim.inputs)
    log(f"zero-delay simulation ({simulator}) of {len(expected):,} cycles")
    zd_energy, zd_run = gp.run(inputs, windows, tag=f"glitch-{Path(str(stimulus)).stem}")
    acc_bits = len(gp.netlist.ports[ports.acc][1])

    def check_acc(run: Any, what: str) -> int:
        # under the port map's semantics, as the zero-delay power flow checks them
        return _check_accumulator(ports, modes, run.outputs[ports.acc], expected, check,
                                  which, acc_bits, inputs, what, str(run.log), user)

    checked_zd = check_acc(zd_run, f"zero-delay, {simulator}")
    lap("zero_delay")
    sdf_dir = _sdf_dir(gp)
    log(f"SDF from OpenSTA in {sdf_dir}")
    sdf = opensta_sdf(gp.report["netlist"], gp.report["top"], gp.lib, gp.constraints,
                      sdf_dir, driving_cell=gp.report["liberty"].get("driving_cell"),
                      clock=ports.clock)
    ann = read_sdf(sdf, gp.netlist, gp.lib)
    lap("sdf")
    if period_ns is None:
        crit = max(float(gp.report["critical_path_ns"]),
                   ann.longest_path_ns(gp.netlist, gp.lib))
        period_ns = float(np.ceil(1.5 * crit + 1.0))
    tsim = TimedSim(gp.netlist, gp.lib, ports.clock, ann, period_ns,
                    float(gp.constraints.get("input_delay_ns") or 0.0))
    log(f"timing simulation (Icarus, SDF, period {period_ns:g} ns) of {len(expected):,} "
        "cycles")
    t_run = tsim.run(inputs, windows, tag=f"glitch-{Path(str(stimulus)).stem}")
    checked_t = check_acc(t_run, "timing simulation, Icarus with SDF")
    # every output the zero-delay run samples after reset equals the timed one
    first = int(np.argmax(check))
    compared = 0
    for p in tsim.outputs:
        a, b = zd_run.outputs[p][first:], t_run.outputs[p][first:]
        for t, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                raise ToolFailed(f"timing simulation's output {p} differs from the zero-delay "
                                 f"one at cycle {first + t}: {y:#x}, zero-delay {x:#x}; "
                                 f"log: {t_run.log}")
            compared += 1
    lap("timed")
    model = gp.model
    groups = list(model.groups)
    net_group = _net_groups(model)
    mode_reports = []
    tot_zd = dict.fromkeys(groups, 0.0)
    tot_t = dict.fromkeys(groups, 0.0)
    for m, (start, stop), ez, r, f, rz, fz in zip(
            modes, windows, zd_energy, t_run.rises, t_run.falls, zd_run.rises, zd_run.falls,
            strict=True):
        n = stop - start
        et = model.window(r, f, n, gp.clock_ns)
        extra = (r + f) - (rz + fz)
        extra_by = {g: float(extra[net_group == i].sum() / n) for i, g in enumerate(groups)}
        for g in groups:
            tot_zd[g] += ez.by_group[g]
            tot_t[g] += et.by_group[g]
        mode_reports.append({
            "act_bits": m.bits, "weight_bits": m.weight_bits, "mode": m.mode.name,
            "lanes": m.lanes, "act_signed": m.act_signed, "cycles": n,
            "toggles_per_cycle": {"zero_delay": float((rz + fz).sum() / n),
                                  "timed": float((r + f).sum() / n)},
            "pj_per_cycle": {"zero_delay": ez.total / n, "timed": et.total / n},
            "pj_per_mac": {"zero_delay": ez.total / n / m.lanes,
                           "timed": et.total / n / m.lanes},
            "internal_pj_per_cycle": {"zero_delay": ez.internal / n,
                                      "timed": et.internal / n},
            "switching_pj_per_cycle": {"zero_delay": ez.switching / n,
                                       "timed": et.switching / n},
            "groups_pj_per_cycle": {
                "zero_delay": {g: ez.by_group[g] / n for g in groups},
                "timed": {g: et.by_group[g] / n for g in groups}},
            "factors": {g: (et.by_group[g] / ez.by_group[g] if ez.by_group[g] > 0 else 1.0)
                        for g in groups},
            "extra_toggles_per_cycle": extra_by,
        })
    lap("energy")
    versions = tool_versions("rcm_gen", "yosys", "iverilog", "opensta",
                             "iverilog" if simulator == "icarus" else "verilator")
    versions.update({"liberty-parser": python_package_version("liberty-parser"),
                     "pywellen": python_package_version("pywellen")})
    return {
        "modes": mode_reports,
        "factors": {g: (tot_t[g] / tot_zd[g] if tot_zd[g] > 0 else 1.0) for g in groups},
        "groups": groups,
        "stimulus": {"kind": "file" if str(stimulus).endswith(".npz") else stimulus,
                     "file": str(stimulus) if str(stimulus).endswith(".npz") else None,
                     "seed": seed, "accumulate": accumulate},
        "cycles": cycles,
        "clock_ns": gp.clock_ns,
        "period_ns": period_ns,
        "delay_model": "inertial (Icarus module paths; pulses narrower than a cell's delay "
                       "are filtered)",
        "sdf": {"path": str(sdf), **tsim.annotation.notes, "annotated_instances": len(ann.arcs),
                "input_delays": len(ann.inputs)},
        "library": {"name": gp.lib.name, "path": str(gp.lib.source),
                    "voltage": gp.lib.voltage},
        "synthesis": {"netlist": gp.report["netlist"], "cells": gp.report["cells"],
                      "critical_path_ns": gp.report["critical_path_ns"]},
        "config": design.to_dict(),
        "top": gp.report["top"],
        "simulators": {"zero_delay": simulator, "timed": "icarus (SDF)"},
        "checked": {"zero_delay": checked_zd, "timed": checked_t, "outputs_equal": compared},
        "logs": {"zero_delay": str(zd_run.log), "timed": str(t_run.log)},
        "tools": versions,
        "timing_s": timing,
        "wall_s": time.perf_counter() - started,
    }


def _sdf_dir(gp: Any) -> Path:
    """Where the SDF of a prepared netlist is written: by the netlist's, the liberty's and
    the constraints' content."""
    h = hashlib.sha256()
    h.update(Path(gp.report["netlist"]).read_bytes())
    h.update((gp.lib.sha256 or str(gp.lib.path)).encode())
    h.update(json.dumps({k: gp.constraints.get(k) for k in (
        "clock_ns", "input_delay_ns", "output_delay_ns", "output_load")}, sort_keys=True)
        .encode())
    h.update(str(gp.report["liberty"].get("driving_cell")).encode())
    return cache_dir() / "glitch" / "sdf" / h.hexdigest()[:16]


def _sources_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in _SOURCES:
        path = root / rel
        h.update(rel.encode() + b"\0" + (path.read_bytes() if path.exists() else b""))
    return h.hexdigest()[:16]


def glitch_report(design: Any, *, ports: Any = None, liberty: str | None = None,
                  clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                  stimulus: str = "random", cycles: int = 1000, seed: int = 1,
                  simulator: str = "verilator", use_cache: bool = True,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """:func:`glitch_energy` of ``design``, kept under ``<cache>/glitch`` by the synthesized
    netlist, the liberty, the settings and the sources of this flow (a cached report is
    returned as it was computed, ``wall_s`` included; the zero-delay ``simulator`` is not
    part of the key: Verilator and Icarus count the same toggles)."""
    settings = (liberty, clock_ns, constraints, stimulus, cycles, seed, ports)
    path = _factors_path(design, *settings)
    if use_cache and path is not None and path.exists():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass
    r = glitch_energy(design, ports=ports, liberty=liberty, clock_ns=clock_ns,
                      constraints=constraints, stimulus=stimulus, cycles=cycles, seed=seed,
                      simulator=simulator, log=log)
    path = path or _factors_path(design, *settings)  # synthesized just now
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(r, indent=1, default=str))
        os.replace(tmp, path)
    return r


def glitch_factors(design: Any, *, liberty: str | None = None, clock_ns: float | None = None,
                   constraints: dict[str, Any] | None = None, stimulus: str = "random",
                   cycles: int = 1000, seed: int = 1, threshold: float = GLITCH_THRESHOLD,
                   use_cache: bool = True, log: Callable[[str], None] | None = None
                   ) -> dict[str, float]:
    """Per energy group, the factor by which glitches raise a MAC's energy: timed over
    zero-delay energy summed over all its operating points (:func:`glitch_report`), 1.0
    for a group that moves by ``threshold`` (a fraction) or less.  What a tile's energy
    figures can carry for the groups its MACs make (``multipliers``, ``accumulators``);
    the clock and input nets do not glitch.  Cached with the report.

    Raises
    ------
    ValueError
        ``threshold`` is not in [0, 1).
    UserError, ToolFailed
        As :func:`glitch_energy`.
    """
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) \
            or not 0 <= threshold < 1:
        raise ValueError(f"Threshold must be a number in [0, 1), not {threshold!r}")
    r = glitch_report(design, liberty=liberty, clock_ns=clock_ns, constraints=constraints,
                      stimulus=stimulus, cycles=cycles, seed=seed, use_cache=use_cache,
                      log=log)
    return {g: (float(f) if abs(f - 1.0) > threshold else 1.0)
            for g, f in r["factors"].items()}


def _factors_path(design: Any, liberty: str | None, clock_ns: float | None,
                  constraints: dict[str, Any] | None, stimulus: str, cycles: int, seed: int,
                  ports: Any = None) -> Path | None:
    """Where :func:`glitch_report` keeps the report of ``design`` with these settings
    (``None`` while the design has no synthesized netlist)."""
    from ..flows.synth import cached_report

    report = cached_report(design, "asic", liberty, clock_ns, constraints)
    if report is None:
        return None
    stim = stimulus
    if str(stimulus).endswith(".npz") and Path(stimulus).is_file():
        stim = hashlib.sha256(Path(stimulus).read_bytes()).hexdigest()
    key = hashlib.sha256(json.dumps([
        hashlib.sha256(Path(report["netlist"]).read_bytes()).hexdigest(),
        report["liberty"]["name"], str(report["liberty"].get("path")), stim, cycles,
        seed, clock_ns, constraints, repr(ports), _sources_digest()],
        sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_dir() / "glitch" / f"{report['top']}-{key}.json"


def format_glitch(r: dict[str, Any], name: str) -> str:
    """A readable table of a :func:`glitch_energy` report."""
    groups = [g for g in ENERGY_GROUPS if g in r["groups"]]
    head = ("data", "mode", "toggles/cyc 0-delay", "timed", "pJ/MAC 0-delay", "timed",
            "ratio", *(f"{g[:8]} x" for g in groups))
    rows = [head]
    for m in r["modes"]:
        rows.append((
            f"{m['act_bits']}x{m['weight_bits']} {'s' if m['act_signed'] else 'u'}",
            m["mode"], f"{m['toggles_per_cycle']['zero_delay']:.1f}",
            f"{m['toggles_per_cycle']['timed']:.1f}",
            f"{m['pj_per_mac']['zero_delay']:.3f}", f"{m['pj_per_mac']['timed']:.3f}",
            f"{m['pj_per_mac']['timed'] / m['pj_per_mac']['zero_delay']:.3f}",
            *(f"{m['factors'][g]:.3f}" for g in groups)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"{name}: zero-delay and timed (SDF, inertial) gate-level energy, "
             f"{r['cycles']} cycles per mode, {r['library']['name']}, timing simulation "
             f"at {r['period_ns']:g} ns (energy at the {r['clock_ns']:g} ns clock)"]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    lines.append("all modes, timed / zero-delay energy by group: " + ", ".join(
        f"{g} {r['factors'][g]:.3f}" for g in groups))
    c = r["checked"]
    lines.append(f"{c['timed']} accumulator values of the timing simulation and "
                 f"{c['zero_delay']} of the zero-delay one checked against numpy; "
                 f"{c['outputs_equal']} sampled outputs equal between them "
                 f"({r['wall_s']:.0f} s)")
    return "\n".join(lines)
