"""Pareto fronts of latency against area (and, in a space with energy on, of latency
against energy and of area against energy), and a sweep's outputs: results.csv,
pareto.csv, pareto.png/.svg (pareto_latency_energy.*, pareto_area_energy.*) and the summary
table."""

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

__all__ = ["OBJECTIVE_PAIRS", "dominates", "fronts", "hypervolume", "pareto_front",
           "result_rows", "write_outputs"]

#: Pairs of objectives (x, y) with a front each, their names, and the file stem of their
#: plots: latency against area always; with energy, latency against energy and area against
#: energy.
OBJECTIVE_PAIRS = {
    "latency-area": ("area", "latency_ns", "pareto"),
    "latency-energy": ("energy", "latency_ns", "pareto_latency_energy"),
    "area-energy": ("area", "energy", "pareto_area_energy"),
    "latency-dsps": ("dsps", "latency_ns", "pareto_dsps"),
}
#: Pairs written only for a space with an FPGA budget.
_BUDGET_PAIRS = ("latency-dsps",)

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
        if space.budget is not None:
            metrics["budget"] = (f"pruned: {res['pruned']}" if res.get("pruned") else
                                 f"fails: {res['budget_fail']}" if res.get("budget_fail")
                                 else "fits")
        for group, area in (res.get("area_by_group") or {}).items():
            metrics[f"area_{group}"] = area
        cycles = store.cycles(task["key"])
        for case in task["cases"]:
            c = cycles.get(case["key"], {})
            lat = latency_ns(res, c)
            energy = {}
            if c.get("energy_pj") is not None:
                network = case["kind"] == "network"
                energy = {"energy": c["energy_pj"] * 1e-6 if network else c["pj_per_mac"],
                          "energy_unit": "uJ/inference" if network else "pJ/MAC",
                          "energy_uj": c["energy_pj"] * 1e-6, "pj_per_mac": c["pj_per_mac"],
                          "energy_model_error": (res.get("energy_model") or {}).get(
                              "validation", {}).get("error")}
            out.append({
                **base, **metrics, "workload": case["workload"],
                "precision": case["precision"], "act_bits": case.get("act_bits"),
                "weight_bits": case.get("weight_bits"), "cycles": c.get("cycles"),
                "ideal_cycles": c.get("ideal_cycles"), "utilisation": c.get("utilisation"),
                "lanes_used": _cell(c.get("lanes")), "latency_ns": lat,
                **({"frames_per_s": 1e9 / lat} if lat and case["kind"] == "network"
                   else {}), **energy,
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


def fronts(flat: list[dict[str, Any]], x: str = "area", y: str = "latency_ns"
           ) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (target, workload, precision): the rows with both objectives (``items``), the
    ``front`` minimizing ``x`` and ``y``, and the pairs (configurable, fixed) where the
    first dominates the second."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in flat:
        if r.get(x) is not None and r.get(y) is not None:
            groups[(r["target"], r["workload"], r["precision"])].append(r)
    out = {}
    for key in sorted(groups, key=lambda k: (k[0], k[1], _precision_order(k[2]))):
        items = groups[key]
        conf = [r for r in items if r["configurable"]]
        fixed = [r for r in items if not r["configurable"]]
        pairs = [(c, f) for c in conf for f in fixed
                 if dominates((c[x], c[y]), (f[x], f[y]))]
        out[key] = {"items": items, "front": pareto_front(items, x, y), "dominating": pairs,
                    "x": x, "y": y}
    return out


def _label(key: str, target: str, unit: str | None) -> tuple[str, float]:
    """Axis label of an objective and the factor its values are shown at."""
    if key == "latency_ns":
        return "latency (µs)", 1e-3
    if key == "area":
        return ("area (µm²)" if target == "asic" else "LUTs"), 1.0
    if key == "dsps":
        return "DSP blocks", 1.0
    return f"energy ({(unit or '').replace('uJ', 'µJ')})", 1.0


def _plot(groups: dict[tuple[str, str, str], dict[str, Any]], out_dir: Path,
          stem: str = "pareto") -> None:
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
        x, y = g["x"], g["y"]
        target, workload, prec = key
        unit = g["items"][0].get("energy_unit")
        xlabel, xs = _label(x, target, unit)
        ylabel, ys = _label(y, target, unit)
        for configurable, mark, color, label in ((True, "o", "tab:blue", "configurable"),
                                                  (False, "s", "tab:red", "fixed")):
            pts = [r for r in g["items"] if r["configurable"] == configurable]
            if not pts:
                continue
            ax.scatter([r[x] * xs for r in pts], [r[y] * ys for r in pts],
                       marker=mark, facecolors="none" if not configurable else color,
                       edgecolors=color, label=label, alpha=0.85, s=30)
            f = pareto_front(pts, x, y)
            ax.step([r[x] * xs for r in f], [r[y] * ys for r in f],
                    where="post", color=color, alpha=0.5, linewidth=1, linestyle="--",
                    label=f"{label} front")
        front = g["front"]
        ax.step([r[x] * xs for r in front], [r[y] * ys for r in front],
                where="post", color="black", linewidth=1.5, label="overall front")
        values = [r[y] for r in g["items"]]
        if min(values) > 0 and max(values) > 20 * min(values):
            ax.set_yscale("log")
        bits = f"{prec}-bit" if prec.replace("x", "").isdigit() else prec
        ax.set_title(f"{workload}, {bits}" + (f" ({target})" if target != "asic" else ""))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    for ext in ("png", "svg"):
        tmp = out_dir / f".{stem}.tmp.{ext}"
        fig.savefig(tmp, dpi=120, format=ext)
        os.replace(tmp, out_dir / f"{stem}.{ext}")
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


def energy_summary(groups: dict[tuple[str, str, str], dict[str, Any]]) -> str:
    """The energy lines of the terminal summary: per panel, the best energy of each kind
    and how many points are on the latency-energy front."""
    lines = [f"{'workload':<16}{'bits':>8}{'unit':>14}{'best conf.':>15}{'best fixed':>15}"
             f"{'front c/f':>11}  (latency-energy)"]
    for (target, wl, prec), g in groups.items():
        best = {}
        for kind in (True, False):
            values = [r["energy"] for r in g["items"] if r["configurable"] == kind]
            best[kind] = f"{min(values):,.3f}" if values else "-"
        front = g["front"]
        conf = sum(r["configurable"] for r in front)
        name = wl if target == "asic" else f"{wl} [{target}]"
        lines.append(f"{name:<16}{prec:>8}{g['items'][0]['energy_unit']:>14}{best[True]:>15}"
                     f"{best[False]:>15}{f'{conf}/{len(front) - conf}':>11}")
    return "\n".join(lines)


def write_outputs(tasks: list[dict[str, Any]], store: Store, space: Space, out_dir: Path
                  ) -> str:
    """Write results.csv, pareto.csv and pareto.png/.svg in ``out_dir`` (each replaced
    whole, never left half-written) — with energy, also the latency-energy and
    area-energy fronts (pareto.csv rows say which pair in ``objectives``) and their plots
    pareto_latency_energy.png/.svg and pareto_area_energy.png/.svg; return the summary
    table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    flat = result_rows(tasks, store, space)
    with_energy = any(r.get("energy") is not None for r in flat)
    pareto_rows = []
    all_groups = {}
    for name, (x, y, stem) in OBJECTIVE_PAIRS.items():
        if ("energy" in (x, y) and not with_energy) or (
                name in _BUDGET_PAIRS and space.budget is None):
            for ext in ("png", "svg"):
                (out_dir / f"{stem}.{ext}").unlink(missing_ok=True)
            continue
        groups = fronts(flat, x, y)
        all_groups[name] = groups
        keys_on_front = set()
        for (target, wl, prec), g in groups.items():
            for r in g["front"]:
                keys_on_front.add((r["key"], wl, prec))
                doms = sum(1 for c, _ in g["dominating"] if c is r)
                pareto_rows.append({"objectives": name, "target": target, "workload": wl,
                                    "precision": prec, "kind": r["kind"], "area": r["area"],
                                    **({"dsps": r.get("dsps")} if x == "dsps" else {}),
                                    "latency_ns": r["latency_ns"],
                                    **({"energy": r.get("energy"),
                                        "energy_unit": r.get("energy_unit")}
                                       if with_energy else {}),
                                    "fixed_dominated": doms,
                                    **{k: v for k, v in r.items() if k not in (
                                        "target", "workload", "precision", "kind", "area",
                                        "latency_ns", "energy", "energy_unit")}})
        column = "on_front" if name == "latency-area" else f"on_front_{name.replace('-', '_')}"
        for r in flat:
            if r["status"] == "done":
                r[column] = (r["key"], r["workload"], r["precision"]) in keys_on_front
        if groups:
            _plot(groups, out_dir, stem)
        else:
            for ext in ("png", "svg"):  # no runnable point: no picture, and no stale one
                (out_dir / f"{stem}.{ext}").unlink(missing_ok=True)
    _write_csv(out_dir / "results.csv", flat)
    _write_csv(out_dir / "pareto.csv", pareto_rows)
    text = summary(all_groups["latency-area"])
    if all_groups.get("latency-dsps"):
        text += "\nlatency against DSP blocks:\n" + summary(all_groups["latency-dsps"])
    if with_energy and all_groups.get("latency-energy"):
        text += "\n" + energy_summary(all_groups["latency-energy"])
    return text
