"""Pareto fronts of latency against area, and a sweep's outputs: results.csv, pareto.csv,
pareto.png/.svg and the summary table."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from .objectives import latency_ns
from .space import Space
from .store import Store

__all__ = ["dominates", "fronts", "hypervolume", "pareto_front", "result_rows",
           "write_outputs"]

_CONFIG_COLUMNS = ("arch", "width", "lanes", "pipeline", "p", "tm", "tn", "tr", "tc", "k_max",
                   "s_max", "act_depth", "weight_depth")
_METRICS = ("area", "area_um2", "cells", "luts", "ffs", "dsps", "brams", "clock_ns",
            "critical_path_ns", "fmax_mhz", "wns_ns")


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether ``a`` is no worse than ``b`` in both objectives and better in one (both
    minimized)."""
    return a[0] <= b[0] and a[1] <= b[1] and a != b


def pareto_front(items: list[dict[str, Any]], x: str = "area", y: str = "latency_ns"
                 ) -> list[dict[str, Any]]:
    """The items no other item dominates (minimizing ``x`` and ``y``), sorted by ``x``;
    of items with equal (x, y), the first."""
    front: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda r: (r[x], r[y])):
        if not front or item[y] < front[-1][y]:
            front.append(item)
    return front


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both objectives minimized), bounded by ``ref``."""
    front: list[tuple[float, float]] = []
    for p in sorted(q for q in points if q[0] < ref[0] and q[1] < ref[1]):
        if not front or p[1] < front[-1][1]:
            front.append(p)
    volume = 0.0
    for i, (px, py) in enumerate(front):
        nx = front[i + 1][0] if i + 1 < len(front) else ref[0]
        volume += (nx - px) * (ref[1] - py)
    return volume


def _cell(v: Any) -> Any:
    return json.dumps(v) if isinstance(v, list | dict | tuple) else v


def result_rows(tasks: list[dict[str, Any]], store: Store, space: Space
                ) -> list[dict[str, Any]]:
    """One flat row per point × workload × precision, with every knob, the point's
    configuration and metrics; a failed point gives one row with its error and log."""
    out = []
    for task in tasks:
        row = store.get(task["key"])
        if row is None or row["status"] not in ("done", "failed"):
            continue
        cfg = task["config"]
        base: dict[str, Any] = {
            "key": task["key"], "target": task["settings"]["target"],
            "kind": "configurable" if task["configurable"] else "fixed",
            "configurable": task["configurable"], "status": row["status"]}
        for name in space.knobs:
            if name not in _CONFIG_COLUMNS:
                base[name] = _cell(task["knobs"].get(name))
        for name in _CONFIG_COLUMNS:
            base[name] = _cell(cfg["mac"][name] if name in cfg["mac"] else cfg[name])
        if row["status"] != "done":
            out.append({**base, "error": row["error"], "log": row["log"]})
            continue
        res = row["result"]
        metrics = {k: res[k] for k in _METRICS if k in res}
        for group, area in (res.get("area_by_group") or {}).items():
            metrics[f"area_{group}"] = area
        cycles = store.cycles(task["key"])
        for case in task["cases"]:
            c = cycles.get(case["key"], {})
            lat = latency_ns(res, c)
            out.append({
                **base, **metrics, "workload": case["workload"],
                "precision": case["precision"], "act_bits": case.get("act_bits"),
                "weight_bits": case.get("weight_bits"), "cycles": c.get("cycles"),
                "ideal_cycles": c.get("ideal_cycles"), "utilisation": c.get("utilisation"),
                "lanes_used": _cell(c.get("lanes")), "latency_ns": lat,
                "not_runnable": c.get("not_runnable"), "log": row["log"]})
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def _precision_order(p: str) -> tuple[int, str]:
    head = p.split("x")[0]
    return (-int(head), p) if head.isdigit() else (0, p)


def fronts(flat: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (target, workload, precision): the runnable rows (``items``), the ``front``,
    and the pairs (configurable, fixed) where the first dominates the second."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in flat:
        if r.get("latency_ns") is not None and r.get("area") is not None:
            groups[(r["target"], r["workload"], r["precision"])].append(r)
    out = {}
    for key in sorted(groups, key=lambda k: (k[0], k[1], _precision_order(k[2]))):
        items = groups[key]
        conf = [r for r in items if r["configurable"]]
        fixed = [r for r in items if not r["configurable"]]
        pairs = [(c, f) for c in conf for f in fixed
                 if dominates((c["area"], c["latency_ns"]), (f["area"], f["latency_ns"]))]
        out[key] = {"items": items, "front": pareto_front(items), "dominating": pairs}
    return out


def _plot(groups: dict[tuple[str, str, str], dict[str, Any]], out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(groups)
    cols = min(3, len(keys))
    nrows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 4 * nrows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys, strict=False):
        g = groups[key]
        target, workload, prec = key
        for configurable, mark, color, label in ((True, "o", "tab:blue", "configurable"),
                                                  (False, "s", "tab:red", "fixed")):
            pts = [r for r in g["items"] if r["configurable"] == configurable]
            if not pts:
                continue
            ax.scatter([r["area"] for r in pts], [r["latency_ns"] / 1e3 for r in pts],
                       marker=mark, facecolors="none" if not configurable else color,
                       edgecolors=color, label=label, alpha=0.85, s=30)
            f = pareto_front(pts)
            ax.step([r["area"] for r in f], [r["latency_ns"] / 1e3 for r in f],
                    where="post", color=color, alpha=0.5, linewidth=1, linestyle="--",
                    label=f"{label} front")
        front = g["front"]
        ax.step([r["area"] for r in front], [r["latency_ns"] / 1e3 for r in front],
                where="post", color="black", linewidth=1.5, label="overall front")
        lats = [r["latency_ns"] for r in g["items"]]
        if max(lats) > 20 * min(lats):
            ax.set_yscale("log")
        bits = f"{prec}-bit" if prec.replace("x", "").isdigit() else prec
        ax.set_title(f"{workload}, {bits}" + (f" ({target})" if target != "asic" else ""))
        ax.set_xlabel("area (µm²)" if target == "asic" else "LUTs")
        ax.set_ylabel("latency (µs)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "svg"):
        tmp = out_dir / f".pareto.tmp.{ext}"
        fig.savefig(tmp, dpi=120, format=ext)
        os.replace(tmp, out_dir / f"pareto.{ext}")
    plt.close(fig)


def summary(groups: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    """The terminal table: per panel, points, front (configurable/fixed), the best
    latency of each kind, and configurable points dominating fixed ones."""
    head = (f"{'workload':<16}{'bits':>8}{'points':>8}{'front c/f':>11}"
            f"{'best conf. us':>15}{'best fixed us':>15}  configurable dominating fixed")
    lines = [head]
    for (target, wl, prec), g in groups.items():
        front = g["front"]
        conf = sum(r["configurable"] for r in front)
        best = {}
        for kind in (True, False):
            lats = [r["latency_ns"] for r in g["items"] if r["configurable"] == kind]
            best[kind] = f"{min(lats) / 1e3:,.2f}" if lats else "-"
        doms = g["dominating"]
        n_fixed = sum(not r["configurable"] for r in g["items"])
        dom = (f"{len({c['key'] for c, _ in doms})} dominate "
               f"{len({f['key'] for _, f in doms})} of {n_fixed} fixed" if doms
               else ("none" if n_fixed else "(no fixed points)"))
        name = wl if target == "asic" else f"{wl} [{target}]"
        lines.append(f"{name:<16}{prec:>8}{len(g['items']):>8}{f'{conf}/{len(front) - conf}':>11}"
                     f"{best[True]:>15}{best[False]:>15}  {dom}")
    return "\n".join(lines)


def write_outputs(tasks: list[dict[str, Any]], store: Store, space: Space, out_dir: Path
                  ) -> str:
    """Write results.csv, pareto.csv and pareto.png/.svg in ``out_dir`` (each replaced
    whole, never left half-written); return the summary table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = result_rows(tasks, store, space)
    groups = fronts(flat)
    keys_on_front = set()
    pareto_rows = []
    for (target, wl, prec), g in groups.items():
        for r in g["front"]:
            keys_on_front.add((r["key"], wl, prec))
            doms = sum(1 for c, _ in g["dominating"] if c is r)
            pareto_rows.append({"target": target, "workload": wl, "precision": prec,
                                "kind": r["kind"], "area": r["area"],
                                "latency_ns": r["latency_ns"], "fixed_dominated": doms,
                                **{k: v for k, v in r.items() if k not in (
                                    "target", "workload", "precision", "kind", "area",
                                    "latency_ns")}})
    for r in flat:
        if r["status"] == "done":
            r["on_front"] = (r["key"], r["workload"], r["precision"]) in keys_on_front
    _write_csv(out_dir / "results.csv", flat)
    _write_csv(out_dir / "pareto.csv", pareto_rows)
    if groups:
        _plot(groups, out_dir)
    else:
        for ext in ("png", "svg"):  # no runnable point: no picture, and no stale one
            (out_dir / f"pareto.{ext}").unlink(missing_ok=True)
    return summary(groups)
