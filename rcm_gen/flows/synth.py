"""One entry point for every synthesis flow, and the readable summary of a report."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..generate import config_hash
from ..tools import cache_dir, tool_versions
from .asic import CONSTRAINT_FILES, constraints_file, design_top, run_asic
from .fpga import FPGA_TARGETS, check_family, run_fpga

__all__ = [
    "TARGETS",
    "cached_report",
    "check_clock",
    "compare",
    "format_comparison",
    "format_comparisons",
    "footer",
    "format_report",
    "macs_per_cycle",
    "macs_per_cycle_at",
    "memory_table",
    "precision_label",
    "precisions",
    "run_dir",
    "synthesize",
    "synthesize_cached",
]

TARGETS = ("asic", *FPGA_TARGETS)


def _check_config(config: Any) -> None:
    from ..config import MacConfig
    from ..tile.config import TileConfig
    from .user_design import UserDesign

    if not isinstance(config, (MacConfig, TileConfig, UserDesign)):
        raise TypeError(f"Design point must be a MacConfig, a TileConfig or a UserDesign, not "
                        f"{config!r}")


def check_clock(clock_ns: Any, option: str = "--clock-ns") -> None:
    """:class:`UserError` unless ``clock_ns`` is ``None`` or a finite number above 0."""
    if clock_ns is None:
        return
    if isinstance(clock_ns, bool) or not isinstance(clock_ns, (int, float)) \
            or not math.isfinite(clock_ns) or clock_ns <= 0:
        raise UserError(f"{option} must be a number greater than 0, not {clock_ns!r}")


def synthesize(config: Any, target: str = "asic", *, out_dir: str | Path,
               liberty: str | None = None, clock_ns: float | None = None,
               constraints: dict[str, Any] | None = None, hierarchy: str = "hier",
               sta: str | None = None) -> dict[str, Any]:
    """Generate the Verilog of ``config``, run the ``target`` flow in ``out_dir`` (its
    scripts, netlists and logs are kept there) and return the report.

    Parameters
    ----------
    config : MacConfig or TileConfig
        The design point.
    target : str
        ``"asic"`` (Yosys onto a liberty, OpenSTA), ``"ecp5"``, ``"ice40"`` or ``"nexus"``
        (Yosys, nextpnr).
    out_dir : path
        Run folder; ``report.json`` is written there last, so its presence means the run
        completed.
    liberty : str, optional
        ASIC only: a liberty file (plain or ``.gz``) or a library named in
        ``rcm_gen/flows/data/asic.toml``; default the OSU 0.18 um library.
    clock_ns : float, optional
        Clock period; default from ``rcm_gen/flows/data/``.
    constraints : dict, optional
        Overrides of ``rcm_gen/flows/data/asic.toml`` (:data:`rcm_gen.flows.asic.CONSTRAINT_KEYS`)
        or of the target's section of ``rcm_gen/flows/data/fpga.toml`` (``clock_ns``,
        ``device``).  ``liberty`` and ``clock_ns`` take precedence over these.
    hierarchy : str
        ASIC only: ``hier`` (each distinct module synthesized once, cached, composed
        with the hierarchy kept) or ``flat`` (one flattened run; no area by group).
    sta : str, optional
        ASIC only: ``models`` (each distinct module timed once and replaced by a timing
        model of it; the default for ``hier``) or ``full`` (the whole composed netlist;
        the only mode for ``flat``).

    Returns
    -------
    dict
        ASIC: ``area_um2``, ``area_by_group`` (multipliers, accumulators, buffers,
        control; ``None`` when flat), ``mac_array_area_um2`` (multipliers and
        accumulators), ``logic_area_um2`` (all but memory), ``memory`` (``binding``,
        ``note``, ``macro_library``, ``macros`` by name with count and area,
        ``macro_area_um2``, ``ff_area_um2``, ``area_um2``), ``macro_paths`` (the worst
        paths out of and into the macros, or ``None``), ``cells``, ``critical_path_ns``,
        ``critical_path`` (startpoint, endpoint, arrival_ns), ``wns_ns``,
        ``worst_slack_ns``, ``tns_ns``, ``fmax_mhz``, ``clock_ns``, ``liberty``,
        ``constraints``, ``hierarchy``, ``modules`` (instances, distinct, synthesized;
        hierarchical only), ``sta`` (the mode), ``timing_levels`` (with models: per
        distinct module its instances, worst slack, TNS and critical path),
        ``timing_models`` (with models: how many were made and reused), ``phases``
        (wall and CPU time of Verilog generation, synthesis, composition and STA),
        ``sta_log``, ``netlist``.  ``critical_path`` has a ``level``: the module whose
        own paths hold it (the top for a path between modules).  FPGA:
        ``luts``, ``ffs``, ``dsps``, ``brams``, ``fmax_mhz``, ``device``, ``clock_ns``,
        ``pnr_utilization`` (nextpnr's, harness included), ``synth_log``.  Both:
        ``config``, ``target``, ``top``, ``tools`` (versions), ``log`` (the kept log of
        the main tool: Yosys for ASIC, nextpnr for FPGA), ``wall_s``.

    Raises
    ------
    TypeError
        ``config`` is not a design point.
    UserError
        Unknown target, bad liberty or constraint, missing tool, or (FPGA) a design that
        fits no configured device.
    ToolFailed
        A tool failed or its report cannot be parsed (the message names the log).
    """
    _check_config(config)
    if target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    check_clock(clock_ns)
    check_family(config, target)
    out_dir = Path(out_dir)
    # a report left by an earlier run must not stand for this one if it fails
    (out_dir / "report.json").unlink(missing_ok=True)
    if target == "asic":
        report = run_asic(config, out_dir, liberty=liberty, clock_ns=clock_ns,
                          constraints=constraints, hierarchy=hierarchy, sta=sta)
    else:
        if liberty is not None:
            raise UserError(f"--liberty applies to --target asic, not {target!r}")
        if hierarchy != "hier":
            raise UserError(f"--hierarchy applies to --target asic, not {target!r}")
        if sta is not None:
            raise UserError(f"--sta applies to --target asic, not {target!r}")
        report = run_fpga(config, target, out_dir, clock_ns=clock_ns, constraints=constraints)
    tmp = out_dir / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out_dir / "report.json")  # written last: its presence means complete
    return report


def run_dir(config: Any, target: str = "asic", liberty: str | None = None,
            clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
            hierarchy: str = "hier", sta: str | None = None) -> Path:
    """The cache folder of a synthesis run: one per design point, target, library, clock,
    constraints (the shipped files in ``rcm_gen/flows/data/`` and any overrides), tool
    versions and rcm_gen's source (a report of other gateware is not this one's)."""
    from .hier import source_digest

    shipped = {name: hashlib.sha256(constraints_file(name).read_bytes()).hexdigest()
               for name in CONSTRAINT_FILES}
    parts: list[Any] = [liberty and str(Path(liberty).resolve()), clock_ns,
                        tool_versions("rcm_gen", "amaranth", "yosys"), shipped,
                        source_digest()]
    if constraints:
        parts.append(constraints)
    if hierarchy != "hier":
        parts.append({"hierarchy": hierarchy})
    if sta is not None and sta != ("models" if hierarchy == "hier" else "full"):
        parts.append({"sta": sta})
    settings = json.dumps(parts, sort_keys=True, default=str)
    key = hashlib.sha256(settings.encode()).hexdigest()[:8]
    return cache_dir() / "synth" / f"{design_top(config)}-{config_hash(config)}-{target}-{key}"


def cached_report(config: Any, target: str = "asic", liberty: str | None = None,
                  clock_ns: float | None = None, constraints: dict[str, Any] | None = None
                  ) -> dict[str, Any] | None:
    """The report of an earlier run with the same settings, if one completed."""
    path = run_dir(config, target, liberty, clock_ns, constraints) / "report.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def synthesize_cached(config: Any, target: str = "asic",
                      on_run: Callable[[], None] | None = None) -> dict[str, Any]:
    """The cached report of ``config`` on ``target`` with the default settings, or a run of
    the flow into its cache folder (``on_run`` is called first, to say so)."""
    report = cached_report(config, target)
    if report is None:
        if on_run is not None:
            on_run()
        report = synthesize(config, target, out_dir=run_dir(config, target))
    return report


def memory_table(config: Any, liberty: str | None = None) -> str:
    """What each buffer of a tile is built from, for the cell library ``liberty`` (a file
    or a library of ``rcm_gen/flows/data/asic.toml``; ``None``: none, as in simulation):
    the binding's note, then per buffer its words × bits, plan and estimated area."""
    from ..gateware.memory import buffer_plans
    from ..generate import build_component, platform_for

    if liberty is not None:
        from .asic import _resolve_liberty, asic_constraints, memory_platform

        lib, settings = _resolve_liberty(asic_constraints({"liberty": liberty}))
        binding = memory_platform(config, lib, settings.get("dont_use") or ()).memory_binding
    else:
        binding = platform_for(config).memory_binding
    lines = [f"memory: {binding.note}"]
    rows = [("buffer", "words x bits", "built from", "estimate (um2)")]
    for path, width, depth, plan in buffer_plans(build_component(config), binding):
        area = f"{plan.area_um2:,.0f}" if plan.area_um2 is not None else "-"
        rows.append((path, f"{depth} x {width}", plan.describe(), area))
    return "\n".join([*lines, _table(rows)])


def _mac_count(config: Any) -> int:
    """MACs of a design point: the tile's array (P x Q), or one MAC."""
    return int(getattr(config, "macs", 1))


def macs_per_cycle(config: Any) -> dict[str, int]:
    """Multiply-accumulates per cycle of a design point in each of its MAC's modes (keyed
    by :func:`precision_label`; products per cycle x the array's P x Q MACs)."""
    n = _mac_count(config)
    mac = getattr(config, "mac", config)
    return {precision_label(m.act_bits, m.weight_bits): m.products * n for m in mac.mac_modes}


def macs_per_cycle_at(config: Any, bits: int, weight_bits: int | None = None) -> int:
    """Multiply-accumulates per cycle of a design point on ``bits``-bit activations and
    ``weight_bits``-bit weights (default ``bits``): its MAC's fastest mode that holds both,
    times the array's P x Q MACs (0 if the point cannot take such operands)."""
    mac = getattr(config, "mac", config)
    weight_bits = bits if weight_bits is None else weight_bits
    if max(bits, weight_bits) > mac.width:
        return 0
    try:
        products = mac.products_per_cycle(bits, weight_bits)
    except ValueError:  # no mode holds them (a fusion MAC with a subset of modes)
        return 0
    return products * _mac_count(config)


def precisions(config: Any) -> list[tuple[int, int]]:
    """(activation bits, weight bits) of each mode of a design point's MAC, widest first."""
    mac = getattr(config, "mac", config)
    return [(m.act_bits, m.weight_bits) for m in mac.mac_modes]


def precision_label(act_bits: int, weight_bits: int) -> str:
    """``"8"`` for 8-bit activations and weights, ``"8x4"`` for 8-bit activations and
    4-bit weights."""
    return str(act_bits) if act_bits == weight_bits else f"{act_bits}x{weight_bits}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _metrics(r: dict[str, Any]) -> list[tuple[str, str, float | None]]:
    """(label, formatted value, number for ratios) of a report."""
    if r["target"] == "asic":
        rows: list[tuple[str, str, float | None]] = [
            ("area (um2)", f"{r['area_um2']:,.0f}", r["area_um2"])]
        rows += [(f"  {g}", f"{v:,.0f}", v) for g, v in (r["area_by_group"] or {}).items()]
        if r.get("mac_array_area_um2") is not None:
            mem = r["memory"]
            rows += [("MAC array (um2)", f"{r['mac_array_area_um2']:,.0f}",
                      r["mac_array_area_um2"]),
                     ("logic (um2)", f"{r['logic_area_um2']:,.0f}", r["logic_area_um2"]),
                     ("memory (um2)", f"{mem['area_um2']:,.0f}", mem["area_um2"]),
                     ("  macros", f"{mem['macro_area_um2']:,.0f}", mem["macro_area_um2"]),
                     ("  flip-flops and glue", f"{mem['ff_area_um2']:,.0f}",
                      mem["ff_area_um2"])]
            if mem.get("latch_area_um2"):
                rows.append(("    of which latch cells", f"{mem['latch_area_um2']:,.0f}",
                             mem["latch_area_um2"]))
            rows += [(f"  {name}", f"{u['count']} x", u["count"])
                     for name, u in mem["macros"].items()]
        rows += [
            ("cells", f"{r['cells']:,}", r["cells"]),
            ("critical path (ns)", f"{r['critical_path_ns']:.3f}", r["critical_path_ns"]),
            ("Fmax (MHz)", f"{r['fmax_mhz']:.1f}", r["fmax_mhz"]),
            (f"WNS at {r['clock_ns']:g} ns (ns)", f"{r['wns_ns']:.3f}", None),
            ("TNS (ns)", f"{r['tns_ns']:.3f}", None),
        ]
        cg = r.get("clock_gating")
        if cg is not None:
            rows.append(("flip-flops", f"{cg['flip_flops']:,}", cg["flip_flops"]))
        if cg and cg["enabled"]:
            rows += [("  clock-gated", f"{cg['gated_flip_flops']:,}", cg["gated_flip_flops"]),
                     ("clock gates", f"{cg['gates']:,}", cg["gates"])]
        return rows
    return [
        ("LUTs", f"{r['luts']:,}", r["luts"]),
        ("FFs", f"{r['ffs']:,}", r["ffs"]),
        ("DSPs", f"{r['dsps']}", r["dsps"]),
        ("BRAMs", f"{r['brams']}", r["brams"]),
        ("Fmax (MHz)", f"{r['fmax_mhz']:.1f}", r["fmax_mhz"]),
        ("device", r["device"], None),
    ]


def _gating_footer(cg: dict[str, Any] | None) -> list[str]:
    if cg is None:
        return []
    if not cg["enabled"]:
        return ["clock gating off: every flip-flop on the free-running clock"]
    return [f"clock gating: {cg['gated_flip_flops']:,} of {cg['flip_flops']:,} flip-flops "
            f"through {cg['gates']:,} gates ({cg['cell']['description']}; enables shared "
            f"by at least {cg['min_flops']} flip-flops)",
            *(f"  worst clock-gating {k} check: slack {c['slack_ns']:.3f} ns at {c['endpoint']}"
              for k, c in (cg.get("checks") or {}).items() if c)]


def footer(r: dict[str, Any]) -> list[str]:
    """Lines naming the critical path (ASIC), the device, the library and the logs."""
    if r["target"] == "asic":
        cp = r["critical_path"]
        mem = r.get("memory") or {}
        return [f"critical path from {cp['startpoint']}",
                f"              to   {cp['endpoint']}",
                f"library {r['liberty']['name']} ({r['liberty']['path']})",
                *([f"memory: {mem['note']}"] if mem.get("note") else []),
                *_gating_footer(r.get("clock_gating")),
                *([f"areas leave out {n:,} {t} (no area in the liberty)"
                   for t, n in mem["cells_without_area"].items()]
                  if mem.get("cells_without_area") else []),
                f"logs {r['log']}, {r['sta_log']} ({r['wall_s']:.1f} s)"]
    mem = r.get("memory") or {}
    mapper = r.get("lut_mapper") or "abc9"
    return [f"post-route Fmax on {r['device']} (target {1000 / r['clock_ns']:.1f} MHz)",
            *([f"LUTs mapped by {mapper}"] if mapper != "abc9" else []),
            *([f"DSP blocks: {r['dsp_policy']}"]
              if r.get("dsp_policy", "every multiplier") != "every multiplier" else []),
            *([f"memory: {mem['note']}"] if mem.get("note") else []),
            f"logs {r['synth_log']}, {r['log']} ({r['wall_s']:.1f} s)"]


def format_report(r: dict[str, Any], name: str = "") -> str:
    """A readable table of a report."""
    rows = [("metric", name or r.get("top", ""))]
    rows += [(label, value) for label, value, _ in _metrics(r)]
    return "\n".join([_table(rows), *footer(r)])


def compare(a: dict[str, Any], b: dict[str, Any], config_a: Any, config_b: Any
            ) -> dict[str, Any]:
    """Ratios of report ``a`` to report ``b`` (same target): area or resources, critical
    path, Fmax, and the MACs/cycle (for ASIC also MACs/cycle/mm2) of both at each mode of
    ``a`` (keyed by :func:`precision_label`; ``b`` in its fastest mode that holds the
    widths)."""
    if a["target"] != b["target"]:
        raise ValueError(f"Reports must be of one target, not {a['target']!r} and "
                         f"{b['target']!r}")
    out: dict[str, Any] = {}
    density, per_cycle = {}, {}
    known = all(hasattr(getattr(c, "mac", c), "lanes") for c in (config_a, config_b))
    # a user design's lanes are not known to synth: no MACs/cycle for it
    for bits, wbits in precisions(config_a) if known else []:
        label = precision_label(bits, wbits)
        ma = macs_per_cycle_at(config_a, bits, wbits)
        mb = macs_per_cycle_at(config_b, bits, wbits)
        per_cycle[label] = {"a": ma, "b": mb, "ratio": ma / mb if mb else None}
        if a["target"] == "asic":
            da = ma / (a["area_um2"] / 1e6)
            db = mb / (b["area_um2"] / 1e6)
            density[label] = {"a": da, "b": db, "ratio": da / db if db else None}
    out["macs_per_cycle"] = per_cycle
    if a["target"] == "asic":
        out["area"] = a["area_um2"] / b["area_um2"]
        out["critical_path"] = a["critical_path_ns"] / b["critical_path_ns"]
        out["macs_per_cycle_per_mm2"] = density
    else:
        for key in ("luts", "ffs", "dsps", "brams"):
            out[key] = a[key] / b[key] if b[key] else None
    out["fmax"] = a["fmax_mhz"] / b["fmax_mhz"]
    return out


def format_comparison(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str,
                      ratios: dict[str, Any]) -> str:
    """A readable table of two reports side by side, with the ratio a / b."""
    return format_comparisons(a, name_a, [(b, name_b, ratios)])


def format_comparisons(a: dict[str, Any], name_a: str,
                       others: list[tuple[dict[str, Any], str, dict[str, Any]]]) -> str:
    """A readable table of report ``a`` beside each of ``others`` (report, name, ratios of
    :func:`compare`), with the ratios a / other: the metrics, then per mode of ``a`` the
    MACs per cycle and MACs per cycle per mm2."""
    rows = [("metric", name_a, *(n for _, n, _ in others),
             *(f"{name_a} / {n}" for _, n, _ in others))]
    # the reports may have different rows (area groups, macros, a user design without a
    # MAC array): every row of any, in order, '-' where a design has none
    tables = [{label: (v, x) for label, v, x in _metrics(r)}
              for r in (a, *(b for b, _, _ in others))]
    labels = list(tables[0])
    for t in tables[1:]:
        keys = list(t)
        for i, label in enumerate(keys):
            if label not in labels:
                prev = next((lb for lb in reversed(keys[:i]) if lb in labels), None)
                labels.insert(labels.index(prev) + 1 if prev else 0, label)
    for label in labels:
        va, xa = tables[0].get(label, ("-", None))
        cells = [t.get(label, ("-", None)) for t in tables[1:]]
        rows.append((label, va, *(v for v, _ in cells),
                     *(f"{xa / xb:.3f}x" if xa is not None and xb else "" for _, xb in cells)))
    first = others[0][2] if others else {}
    for key, label, fmt in (("macs_per_cycle", "MACs/cycle", "{:,}"),
                            ("macs_per_cycle_per_mm2", "MACs/cycle/mm2", "{:,.2f}")):
        for prec, d in first.get(key, {}).items():
            cells = [other.get(key, {}).get(prec) for _, _, other in others]
            rows.append((f"{label} at {prec} bits", fmt.format(d["a"]),
                         *(fmt.format(c["b"]) if c else "" for c in cells),
                         *(f"{c['ratio']:.3f}x" if c and c["ratio"] else "" for c in cells)))
    return _table(rows)
