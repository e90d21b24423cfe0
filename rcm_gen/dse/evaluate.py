"""Evaluating one design point: synthesis (area, clock from STA) and the cycle model for
every workload and precision.  Runs in a worker process (local pool or Dask worker).

A *task* is a plain dict, picklable for any executor:

``key``, ``config``, ``knobs``, ``settings`` (target, liberty, clock_ns, tools), ``configurable``
    The point, as :func:`rcm_gen.dse.runner.make_tasks` builds it.
``cases``
    The (workload, precision) cases to run the cycle model on (see
    :class:`rcm_gen.dse.space.Workload`).
``store``, ``direct``
    The result store; with ``direct`` the worker claims the point and commits its results
    there itself (a worker on the store's host), otherwise it returns them and the sweep
    commits them.
``run_dir``
    Folder for the synthesis runs (one sub-folder per point and attempt).
``synthesizer``
    ``"module:function"`` with the signature of :func:`rcm_gen.flows.synth.synthesize`, or
    ``None`` for that function; in a space with an FPGA budget (``settings["budget"]``),
    with that of :func:`rcm_gen.flows.fpga.run_fpga` (``constraints`` and ``prune``), the
    default.
``calibrator``
    The same for :func:`rcm_gen.power.tile_model.calibrate` (a point whose settings have
    ``energy``).
``retry_failed``
    Evaluate a point that failed before again.
``synth``, ``attempt``
    Without ``direct``: the stored synthesis result if the point is already done, and the
    attempt number of the sweep's claim.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import traceback
from pathlib import Path
from typing import Any

from ..conv import ConvShape
from ..errors import ToolFailed, UserError
from ..tile.config import TileConfig
from .store import Store

__all__ = ["Task", "budget_excess", "case_cycles", "evaluate_point", "hardware_fingerprint",
           "model_fingerprint", "synth_metrics"]

Task = dict[str, Any]

#: Sources whose change changes a synthesized netlist or its timing.
_HARDWARE_SOURCES = ("gateware/*.py", "generate.py", "config.py", "tile/config.py",
                     "flows/asic.py", "flows/fpga.py", "flows/yosys.py", "flows/liberty.py",
                     "flows/synth.py", "flows/data/*.toml")
#: Sources whose change changes the cycle model's answer.
_MODEL_SOURCES = ("tile/cycles.py", "tile/driver.py", "conv.py", "tile/config.py", "config.py",
                  "workloads/networks.py", "workloads/resnet18.py", "workloads/onnx_import.py",
                  "workloads/data/*")


def _fingerprint(patterns: tuple[str, ...]) -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pattern in patterns:
        base = root
        while pattern.startswith("../"):
            base, pattern = base.parent, pattern[3:]
        for path in sorted(base.glob(pattern)):
            if path.is_file():
                h.update(str(path.relative_to(base)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def hardware_fingerprint() -> str:
    """Hash of the generator and flow sources: part of every point's key, so that a
    changed generator or flow never reuses a stale synthesis result."""
    return _fingerprint(_HARDWARE_SOURCES)


@functools.cache
def model_fingerprint() -> str:
    """Hash of the cycle model's sources: part of every cycle result's key."""
    return _fingerprint(_MODEL_SOURCES)


def _hook(task: Task, key: str, default: str) -> Any:
    """The function a task names under ``key`` (``"module:function"``), else ``default``
    (a function of rcm_gen, named the same way)."""
    module, _, name = (task.get(key) or default).partition(":")
    return getattr(importlib.import_module(module), name)


def _synthesizer(task: Task):
    if task["settings"].get("budget"):
        return _hook(task, "synthesizer", "rcm_gen.flows.fpga:run_fpga")
    return _hook(task, "synthesizer", "rcm_gen.flows.synth:synthesize")


def budget_excess(counts: dict[str, Any], budget: dict[str, Any]) -> str | None:
    """Which resources of ``counts`` exceed the ``budget`` and by how much (``"dsps 23 >
    20 (+3)"``, several joined by ``"; "``), or ``None`` if the counts fit."""
    over = [f"{res} {int(counts.get(res, 0)):,} > {int(budget[res]):,} "
            f"(+{int(counts.get(res, 0)) - int(budget[res]):,})"
            for res in ("luts", "dsps", "brams")
            if res in budget and int(counts.get(res, 0)) > int(budget[res])]
    return "; ".join(over) or None


def _budget_run(task: Task, config: TileConfig, run_dir: Path) -> dict[str, Any]:
    """Synthesis for the budget's part, pruned before place and route if over it: the
    metrics (``pruned`` with the reason, or the post-route figures and, under the minimum
    Fmax, ``budget_fail``)."""
    settings = task["settings"]
    budget = settings["budget"]
    report = _synthesizer(task)(config, settings["target"], out_dir=run_dir,
                                clock_ns=settings.get("clock_ns"),
                                constraints={"device": budget["device"]},
                                prune=lambda counts: budget_excess(counts, budget))
    if report.get("pruned"):
        metrics = {k: report[k] for k in ("luts", "ffs", "dsps", "brams", "clock_ns")
                   if k in report}
        return {**metrics, "area": report["luts"], "pruned": report["pruned"],
                "log": report.get("log"), "synth_wall_s": report.get("wall_s")}
    metrics = synth_metrics(report)
    if budget.get("fmax_mhz") and metrics["fmax_mhz"] < budget["fmax_mhz"]:
        metrics["budget_fail"] = (f"Fmax {metrics['fmax_mhz']:.1f} MHz < "
                                  f"{budget['fmax_mhz']:g} MHz")
    return metrics


def _calibrator(task: Task):
    return _hook(task, "calibrator", "rcm_gen.power.tile_model:calibrate")


def case_cycles(config: TileConfig, case: dict[str, Any],
                metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cycles of one (workload, precision) case on ``config``, its sums requantized on the
    tile as in a quantized network (with the case's ``bandwidth``, bytes per cycle, as a
    roofline per layer): ``cycles``, ``ideal_cycles``, ``utilisation``, ``macs``,
    ``lanes`` (per layer for a network), ``bytes``, ``memory_bound`` (layers), or
    ``not_runnable`` (the reason) if the point cannot run it.  When the point's synthesis
    ``metrics`` carry an energy model (``energy_model``), also ``energy_pj`` (the whole
    layer, or one inference of the network) and ``pj_per_mac``, at the point's achieved
    clock."""
    from ..tile.driver import PostProcess, layer_cycles

    model = None
    if metrics and metrics.get("energy_model"):
        from ..power.tile_model import TileEnergyModel

        model = TileEnergyModel.from_dict(metrics["energy_model"])
        clock = float(metrics["critical_path_ns"])
    bandwidth = case.get("bandwidth")
    if case["kind"] == "layer":
        try:
            shape = ConvShape(**case["layer"])
            lc = layer_cycles(config, shape, case["act_bits"], case["weight_bits"],
                              case["act_signed"],
                              post=PostProcess.for_timing(shape.m, case["act_bits"]))
        except ValueError as exc:
            return {"cycles": None, "not_runnable": str(exc)}
        cycles, binding = lc.latency(bandwidth)
        out = {"cycles": cycles, "ideal_cycles": lc.ideal,
               "utilisation": lc.macs / (cycles * lc.mac_count * lc.lanes), "macs": lc.macs,
               "lanes": lc.lanes, "jobs": lc.jobs, "bytes": lc.bytes_total,
               "memory_bound": [case["workload"]] if binding == "memory" else []}
        if model is not None:
            pj = model.layer_energy(lc, shape, case["act_bits"], case["weight_bits"],
                                    cycles=cycles, clock_ns=clock)["pj"]
            out.update(energy_pj=pj, pj_per_mac=pj / lc.macs)
        return out
    from ..workloads import load_network
    from ..workloads.mapping import network_cycles

    net = load_network(case["network"], case["bits"], case.get("bits_file"))
    try:
        layers = network_cycles(config, net)
    except UserError as exc:
        return {"cycles": None, "not_runnable": str(exc)}
    latencies = [lc.latency(bandwidth) for lc in layers]
    cycles = sum(c for c, _ in latencies)
    lane_cycles = sum(c * config.macs * lc.lanes for (c, _), lc in zip(latencies, layers,
                                                                    strict=True))
    out = {"cycles": cycles, "ideal_cycles": sum(lc.ideal for lc in layers),
           "utilisation": net.macs / lane_cycles, "macs": net.macs,
           "lanes": [lc.lanes for lc in layers], "jobs": None,
           "bytes": sum(lc.bytes_total for lc in layers),
           "memory_bound": [layer.name for layer, (_, b) in zip(net.layers, latencies,
                                                                strict=True)
                            if b == "memory"]}
    if model is not None:
        pj = sum(model.layer_energy(lc, layer.shape, layer.act_bits, layer.weight_bits,
                                    cycles=c, clock_ns=clock)["pj"]
                 for layer, lc, (c, _) in zip(net.layers, layers, latencies, strict=True))
        out.update(energy_pj=pj, pj_per_mac=pj / net.macs)
    return out


def synth_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers a sweep keeps from a synthesis report; ``area`` is µm² (ASIC) or LUTs
    (FPGA), ``critical_path_ns`` the achieved clock period."""
    keys = ("area_um2", "cells", "critical_path_ns", "wns_ns", "fmax_mhz", "luts", "ffs",
            "dsps", "brams", "area_by_group", "clock_ns")
    metrics = {k: report[k] for k in keys if k in report}
    if "fmax_mhz" not in metrics:
        raise ToolFailed(f"synthesis report has no fmax_mhz; log: {report.get('log')}")
    metrics.setdefault("critical_path_ns", 1000.0 / report["fmax_mhz"])
    metrics["area"] = report["area_um2"] if "area_um2" in report else report["luts"]
    metrics["log"] = report.get("log")
    metrics["synth_wall_s"] = report.get("wall_s")
    return metrics


def _synthesize(task: Task, attempt: int) -> tuple[str, dict[str, Any] | None, str | None,
                                                   str | None]:
    """(status, metrics, error, log) of a synthesis run of the task's point."""
    config = TileConfig.from_dict(task["config"])
    settings = task["settings"]
    run_dir = Path(task["run_dir"]) / f"{task['key']}-{attempt}"
    try:
        if settings.get("budget"):
            metrics = _budget_run(task, config, run_dir)
            return "done", metrics, None, metrics.get("log")
        report = _synthesizer(task)(config, settings["target"], out_dir=run_dir,
                                    liberty=settings.get("liberty"),
                                    clock_ns=settings.get("clock_ns"))
        metrics = synth_metrics(report)
        if settings.get("energy"):  # the point's tile energy model, on this netlist
            model = _calibrator(task)(config, liberty=settings.get("liberty"),
                                      clock_ns=settings.get("clock_ns"), report=report)
            metrics["energy_model"] = model.to_dict()
        return "done", metrics, None, metrics.get("log")
    except (ToolFailed, UserError, OSError) as exc:
        text = str(exc)
        log = text.rsplit("log: ", 1)[-1].strip() if "log: " in text else None
        return "failed", None, text.splitlines()[0] if text else type(exc).__name__, log
    except Exception as exc:  # a bug: recorded with its traceback; the sweep goes on
        run_dir.mkdir(parents=True, exist_ok=True)
        trace = run_dir / "traceback.txt"
        trace.write_text(traceback.format_exc())
        return "failed", None, f"{type(exc).__name__}: {exc}".splitlines()[0], str(trace)


def evaluate_point(task: Task) -> dict[str, Any]:
    """Evaluate one point (see the module docstring for ``task``).

    Returns ``{"key", "status", "synthesized", "cases"}``: ``status`` is ``done``,
    ``failed`` or ``busy`` (another live process evaluates the point now; nothing was
    done), ``synthesized`` whether this call ran synthesis (``False`` for a point found
    already done or failed), ``cases`` how many cycle-model cases it ran.  Without
    ``direct``, also ``result``, ``error``, ``log`` and ``cycles`` (case key → result) for
    the sweep to commit.  Never raises for a failed tool or a broken point: the failure is
    the outcome.
    """
    config = TileConfig.from_dict(task["config"])
    if not task.get("direct", True):
        outcome: dict[str, Any] = {"key": task["key"], "synthesized": False}
        metrics = task.get("synth")
        if metrics is None:
            status, metrics, error, log = _synthesize(task, task.get("attempt", 1))
            outcome.update(synthesized=True, status=status, result=metrics, error=error,
                           log=log)
            if status != "done":
                return {**outcome, "cases": 0, "cycles": {}}
        outcome["status"] = "done"
        cycles = {c["key"]: case_cycles(config, c, metrics) for c in task["cases"]}
        return {**outcome, "cases": len(cycles), "cycles": cycles}

    with Store(task["store"]) as store:
        state, attempt = store.claim(task["key"], task["config"], task["knobs"],
                                     task["settings"], task["configurable"],
                                     retry_failed=task.get("retry_failed", False))
        out = {"key": task["key"], "synthesized": state == "claimed", "cases": 0}
        if state in ("busy", "failed"):
            return {**out, "status": state}
        if state == "claimed":
            status, metrics, error, log = _synthesize(task, attempt)
            store.finish(task["key"], status, metrics, error, log)
            if status != "done":
                return {**out, "status": "failed", "error": error, "log": log}
        have = store.cycles(task["key"])
        metrics = (store.get(task["key"]) or {}).get("result")
        for case in task["cases"]:
            if case["key"] not in have:
                store.put_cycles(task["key"], case["key"], case_cycles(config, case, metrics))
                out["cases"] += 1
        return {**out, "status": "done"}
