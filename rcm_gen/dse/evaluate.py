"""Evaluating one design point: synthesis (area, clock) and the cycle model for every
workload and precision.  Runs in a worker process (local pool or Dask)."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

from ..conv import ConvShape
from ..errors import ToolFailed, UserError
from ..tile_config import TileConfig
from .store import Store

__all__ = ["Task", "evaluate_point", "workload_results"]

#: A task is a plain dict (picklable for any executor): key, store, config, knobs,
#: settings (target, liberty, clock_ns, tools), configurable, workloads, run_dir, and
#: optionally ``synthesizer``: "module:function" with the signature of
#: :func:`rcm_gen.flows.synth.synthesize` (the default).
Task = dict[str, Any]


def _synthesizer(task: Task):
    spec = task.get("synthesizer")
    if not spec:
        from ..flows.synth import synthesize

        return synthesize
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def workload_results(config: TileConfig, workloads: list[dict[str, Any]],
                     critical_path_ns: float | None) -> list[dict[str, Any]]:
    """Cycles and latency of every workload at every precision on ``config``."""
    from ..cycles import layer_cycles
    from ..workloads import load_network

    out = []
    for wl in workloads:
        for prec in wl["bits"]:
            row: dict[str, Any] = {"workload": wl["name"], "precision": str(prec)}
            try:
                if wl.get("layer"):
                    lc = layer_cycles(config, ConvShape(**wl["layer"]), int(prec), int(prec),
                                      bool(wl.get("act_signed", False)))
                    row.update(cycles=lc.total, ideal_cycles=lc.ideal, lanes=lc.lanes,
                               utilisation=lc.utilisation, macs=lc.macs)
                else:
                    from ..workloads.mapping import map_network

                    net = load_network(wl["network"], None if prec == "file" else prec)
                    m = map_network(config, net)
                    row.update(cycles=m.total_cycles, ideal_cycles=m.ideal_cycles,
                               lanes=None, utilisation=m.utilisation, macs=net.macs)
            except (ValueError, UserError) as exc:
                row.update(cycles=None, not_runnable=str(exc))
            if row.get("cycles") is not None and critical_path_ns:
                row["latency_ns"] = row["cycles"] * critical_path_ns
            out.append(row)
    return out


def _synth_metrics(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("area_um2", "cells", "critical_path_ns", "wns_ns", "fmax_mhz", "luts", "ffs",
            "dsps", "brams", "area_by_group")
    metrics = {k: report[k] for k in keys if k in report}
    if "critical_path_ns" not in metrics:
        metrics["critical_path_ns"] = 1000.0 / report["fmax_mhz"]
    if "area_um2" not in metrics:  # FPGA: the front is drawn against LUTs
        metrics["area"] = report["luts"]
    else:
        metrics["area"] = report["area_um2"]
    metrics["log"] = report.get("log")
    metrics["synth_wall_s"] = report.get("wall_s")
    return metrics


def evaluate_point(task: Task) -> dict[str, Any]:
    """Synthesize a point and run its workloads; the outcome is written to the store by
    this process (so it survives whatever happens to the caller) and returned."""
    synthesize = _synthesizer(task)
    store = Store(task["store"])
    try:
        store.claim(task["key"], task["config"], task["knobs"], task["settings"],
                    task["configurable"])
        config = TileConfig.from_dict(task["config"])
        settings = task["settings"]
        run_dir = Path(task["run_dir"])
        try:
            report = synthesize(config, settings["target"], out_dir=run_dir,
                                liberty=settings.get("liberty"),
                                clock_ns=settings.get("clock_ns"))
            metrics = _synth_metrics(report)
            result = {**metrics, "workloads": workload_results(
                config, task["workloads"], metrics["critical_path_ns"])}
            store.finish(task["key"], "done", result, log=metrics.get("log"))
            return {"key": task["key"], "status": "done"}
        except (ToolFailed, UserError, ValueError, OSError) as exc:
            log = str(exc).rsplit("log: ", 1)[-1] if "log: " in str(exc) else None
            store.finish(task["key"], "failed", error=str(exc).splitlines()[0], log=log)
            return {"key": task["key"], "status": "failed", "error": str(exc)}
        except Exception as exc:  # a bug: record it with its traceback, go on with the sweep
            run_dir.mkdir(parents=True, exist_ok=True)
            trace = run_dir / "traceback.txt"
            trace.write_text(traceback.format_exc())
            store.finish(task["key"], "failed", error=f"{type(exc).__name__}: {exc}",
                         log=str(trace))
            return {"key": task["key"], "status": "failed", "error": str(exc)}
    finally:
        store.close()
