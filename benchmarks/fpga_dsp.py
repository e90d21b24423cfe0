"""The DSP-block Sum-Together MAC against the fixed MAC on FPGAs (ECP5, Nexus), in one run.

For mac16-dsp against mac16-fixed and mac8-dsp against mac8-fixed, on each target: LUTs,
flip-flops, DSP multipliers, post-route Fmax and the products per cycle of each mode, and
the goal of each mode with more than one product: one ST MAC costs no more DSPs and no more
LUTs than the N fixed MACs that give its N products per cycle, at no less than 90 % of the
fixed MAC's Fmax (met, or missed by how much).  The dsp presets have two pipeline stages,
the fixed ones one; the fixed MAC with two stages is measured beside them (its Fmax is the
equal-latency reference).  On ECP5 the dsp presets are measured again with
``dsp_block=ecp5`` (their pipeline registers the MULT18X18D blocks' own).  With --booth,
mac16 (radix-4 Booth, built from LUTs) too.  Every figure comes from the Yosys and nextpnr
runs made (or cached) here.

    python benchmarks/fpga_dsp.py [--targets ecp5,nexus] [--booth] [--json R.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rcm_gen.errors import ToolFailed, UserError
from rcm_gen.flows.synth import synthesize_cached
from rcm_gen.presets import apply_overrides, preset

FMAX_GOAL = 0.90
PAIRS = (("mac16-dsp", "mac16-fixed"), ("mac8-dsp", "mac8-fixed"))


def _points(booth: bool, target: str) -> list[tuple[str, Any]]:
    points = []
    for st, fx in PAIRS:
        points += [(st, preset(st)), (fx, preset(fx)),
                   (f"{fx} pipeline=2", apply_overrides(preset(fx), ["pipeline=2"]))]
        if target == "ecp5":
            points.append((f"{st} dsp_block=ecp5",
                           apply_overrides(preset(st), ["dsp_block=ecp5"])))
    if booth:
        points.append(("mac16", preset("mac16")))
    return points


def _goal(st: dict[str, Any], fx: dict[str, Any], n: int) -> str:
    parts, ok = [], True
    for key in ("luts", "dsps"):
        budget = n * fx[key]
        if st[key] <= budget:
            parts.append(f"{key} {st[key]} <= {budget}")
        else:
            ok = False
            parts.append(f"{key} {st[key]} > {budget} (MISSED by {st[key] - budget}, "
                         f"{(st[key] / budget - 1) * 100:.1f} %)")
    ratio = st["fmax_mhz"] / fx["fmax_mhz"]
    if ratio >= FMAX_GOAL:
        parts.append(f"Fmax {ratio:.3f}x >= {FMAX_GOAL:.2f}x")
    else:
        ok = False
        parts.append(f"Fmax {ratio:.3f}x < {FMAX_GOAL:.2f}x (MISSED)")
    return ("met: " if ok else "missed: ") + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="ecp5,nexus",
                    help="comma-separated FPGA targets (default ecp5,nexus)")
    ap.add_argument("--booth", action="store_true",
                    help="also mac16 (the Booth ST MAC from LUTs; a minute or two on ECP5)")
    ap.add_argument("--json", default=None, help="also write every report here")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    reports: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    try:
        for target in targets:
            print(f"{target}:")
            print(f"  {'design':<24}{'pipe':>5}{'LUTs':>7}{'FFs':>6}{'DSPs':>6}"
                  f"{'Fmax MHz':>10}  products/cycle by mode")
            for name, cfg in _points(args.booth, target):
                r = synthesize_cached(cfg, target)
                reports[f"{target}/{name}"] = r
                modes = ", ".join(f"{m.act_bits}b: {m.products}" for m in cfg.mac_modes)
                print(f"  {name:<24}{cfg.pipeline:>5}{r['luts']:>7}{r['ffs']:>6}"
                      f"{r['dsps']:>6}{r['fmax_mhz']:>10.1f}  {modes}", flush=True)
            for st_base, fx in PAIRS:
                for st in (st_base, f"{st_base} dsp_block=ecp5"):
                    if f"{target}/{st}" not in reports:
                        continue
                    a, b = reports[f"{target}/{st}"], reports[f"{target}/{fx}"]
                    b2 = reports[f"{target}/{fx} pipeline=2"]
                    print(f"  {st} against {fx} (Fmax against {fx} with 2 stages: "
                          f"{a['fmax_mhz'] / b2['fmax_mhz']:.3f}x):")
                    for m in preset(st_base).mac_modes:
                        if m.products > 1:
                            print(f"    {m.act_bits}-bit mode, {m.products} products/cycle = "
                                  f"{m.products} fixed MACs: {_goal(a, b, m.products)}")
    except (UserError, ToolFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UserError) else 1
    print(f"wall time {time.perf_counter() - started:.1f} s (cached runs are not redone)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(reports, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
