"""Pareto fronts of latency against area, the sweep's CSV files, plots and summary."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["dominates", "hypervolume", "pareto_front", "result_rows", "write_outputs"]


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """``a`` is no worse than ``b`` in both and better in one (both minimized)."""
    return a[0] <= b[0] and a[1] <= b[1] and a != b


def pareto_front(items: list[dict[str, Any]], x: str = "area", y: str = "latency_ns"
                 ) -> list[dict[str, Any]]:
    """The non-dominated items (minimizing ``x`` and ``y``), sorted by ``x``."""
    front = []
    for item in sorted(items, key=lambda r: (r[x], r[y])):
        if not front or item[y] < front[-1][y]:
            front.append(item)
    return front


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both objectives minimized) up to ``ref``."""
    front: list[tuple[float, float]] = []
    for p in sorted(q for q in points if q[0] < ref[0] and q[1] < ref[1]):
        if not front or p[1] < front[-1][1]:
            front.append(p)
    volume = 0.0
    for i, (px, py) in enumerate(front):
        nx = front[i + 1][0] if i + 1 < len(front) else ref[0]
        volume += (nx - px) * (ref[1] - py)
    return volume


def result_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per point × workload × precision (failed points: one row each)."""
    out = []
    for row in rows:
        base = {"key": row["key"], "status": row["status"],
                "configurable": bool(row["configurable"]), **row["knobs"],
                "target": row["settings"]["target"]}
        res = row.get("result") or {}
        metrics = {k: res.get(k) for k in ("area", "area_um2", "luts", "ffs", "dsps", "brams",
                                            "cells", "fmax_mhz", "critical_path_ns")
                   if k in res}
        if row["status"] != "done":
            out.append({**base, "error": row.get("error"), "log": row.get("log")})
            continue
        for wl in res.get("workloads", []):
            out.append({**base, **metrics, "workload": wl["workload"],
                        "precision": wl["precision"], "lanes": wl.get("lanes"),
                        "cycles": wl.get("cycles"), "ideal_cycles": wl.get("ideal_cycles"),
                        "utilisation": wl.get("utilisation"),
                        "latency_ns": wl.get("latency_ns"),
                        "not_runnable": wl.get("not_runnable"), "log": row.get("log")})
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for r in rows:
        for k in r:
            if k not in fields:
                fields.append(k)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v
                             for k, v in r.items()})
    os.replace(tmp, path)


def fronts(flat: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (workload, precision): all runnable rows, the front, and which configurable
    points dominate which fixed ones."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in flat:
        if r.get("latency_ns") is not None and r.get("area") is not None:
            groups[(r["workload"], r["precision"])].append(r)
    out = {}
    for key, items in groups.items():
        front = pareto_front(items)
        conf = [r for r in items if r["configurable"]]
        fixed = [r for r in items if not r["configurable"]]
        pairs = [(c, f) for c in conf for f in fixed
                 if dominates((c["area"], c["latency_ns"]), (f["area"], f["latency_ns"]))]
        out[key] = {"items": items, "front": front, "dominating": pairs}
    return out


def _plot(groups: dict[tuple[str, str], dict[str, Any]], out_dir: Path, area_label: str
          ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(groups, key=lambda k: (k[0], -int(k[1]) if k[1].isdigit() else 0, k[1]))
    cols = min(3, len(keys)) or 1
    rows = (len(keys) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys, strict=False):
        g = groups[key]
        for configurable, mark, color, label in ((True, "o", "tab:blue", "configurable"),
                                                  (False, "x", "tab:red", "fixed")):
            pts = [r for r in g["items"] if r["configurable"] == configurable]
            if pts:
                ax.scatter([r["area"] for r in pts], [r["latency_ns"] / 1e3 for r in pts],
                           marker=mark, color=color, label=label, alpha=0.8)
                f = pareto_front(pts)
                ax.step([r["area"] for r in f], [r["latency_ns"] / 1e3 for r in f],
                        where="post", color=color, alpha=0.4, linewidth=1)
        front = g["front"]
        ax.step([r["area"] for r in front], [r["latency_ns"] / 1e3 for r in front],
                where="post", color="black", linewidth=1.5, label="front")
        prec = f"{key[1]}-bit" if key[1].isdigit() else key[1]
        ax.set_title(f"{key[0]}, {prec}")
        ax.set_xlabel(area_label)
        ax.set_ylabel("latency (us)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    for ext in ("png", "svg"):
        tmp = out_dir / f".pareto.tmp.{ext}"
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, out_dir / f"pareto.{ext}")
    plt.close(fig)


def write_outputs(store_rows: list[dict[str, Any]], out_dir: Path, target: str) -> str:
    """results.csv, pareto.csv, pareto.png/.svg in ``out_dir``; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = result_rows(store_rows)
    _write_csv(out_dir / "results.csv", flat)
    groups = fronts(flat)
    pareto_rows = []
    for (wl, prec), g in sorted(groups.items()):
        for r in g["front"]:
            pareto_rows.append({"workload": wl, "precision": prec,
                                "kind": "configurable" if r["configurable"] else "fixed",
                                **{k: v for k, v in r.items()
                                   if k not in ("workload", "precision")}})
    _write_csv(out_dir / "pareto.csv", pareto_rows)
    area_label = "area (um2)" if target == "asic" else "LUTs"
    if groups:
        _plot(groups, out_dir, area_label)
    lines = [f"{'workload':<14}{'precision':>10}{'points':>8}{'front':>7}"
             f"{'front conf.':>12}{'conf. dominating fixed':>24}"]
    for (wl, prec), g in sorted(groups.items()):
        conf_front = sum(r["configurable"] for r in g["front"])
        doms = g["dominating"]
        dom_text = (f"{len({id(c) for c, _ in doms})} over {len({id(f) for _, f in doms})}"
                    if doms else "none")
        lines.append(f"{wl:<14}{prec:>10}{len(g['items']):>8}{len(g['front']):>7}"
                     f"{conf_front:>12}{dom_text:>24}")
    return "\n".join(lines)
