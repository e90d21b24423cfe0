"""Utilisation of a tile in RTL simulation on layers that fill it, at 16, 8 and 4 bits (sums
requantized on the tile to the layer's bits, 8 at most), and the speed-up of the ST tile
over its fixed twin on the same layers.  Prints a table of measured and modelled cycles; no
pass/fail.

    python benchmarks/tile_utilisation.py [--preset rcm-default] [--simulator verilator]
        [--memory ff|sram|auto] [--no-fixed]

Utilisation counts every MAC of the array (P x Q) and its lanes.
"""

from __future__ import annotations

import argparse

import numpy as np

from rcm_gen.conv import ConvShape
from rcm_gen.presets import preset
from rcm_gen.tile.simulate import LayerCase, random_post, simulate_layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="rcm-default")
    ap.add_argument("--simulator", default="verilator")
    ap.add_argument("--spatial", type=int, default=2,
                    help="output rows/columns as a multiple of the tile's (default 2)")
    ap.add_argument("--memory", choices=("ff", "sram", "auto"),
                    help="buffer binding (sram and auto: SkyWater 130 OpenRAM macros)")
    ap.add_argument("--no-fixed", action="store_true", help="skip the fixed twin")
    args = ap.parse_args()
    st = preset(args.preset)
    if args.memory:
        st = st.replace(memory=args.memory,
                        macros="sky130_sram" if args.memory != "ff" else None)
    fixed = st.fixed_twin()
    rng = np.random.default_rng(1)
    cases = []
    for bits in (16, 8, 4):
        n = st.mac.lanes_for_bits(bits, bits)
        shape = ConvShape(c=st.tn * n, m=st.tm, h=args.spatial * st.tr,
                          w=args.spatial * st.tc, k=3, stride=1, padding=1)
        lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
        post = random_post(rng, shape, bits, bits, st.mac.width, out_bits=min(bits, 8))
        cases.append(LayerCase(shape, rng.integers(lo, hi, (shape.c, shape.h, shape.w)),
                               rng.integers(lo, hi, (shape.m, shape.c, 3, 3)), bits, bits, True,
                               post=post))
    st_res, st_sim = simulate_layers(st, cases, args.simulator)
    if args.no_fixed:
        fx_res, fx_sim = [None] * len(cases), None
    else:
        fx_res, fx_sim = simulate_layers(fixed, cases, args.simulator)
    versus = "" if args.no_fixed else f" vs {args.preset}-fixed"
    print(f"{args.preset} (P={st.p}, Q={st.q}, memory {st.memory}){versus} "
          f"on {args.simulator}; layers fill "
          f"the tile: C = tn x N, M = tm, {args.spatial}x{args.spatial} jobs of "
          f"{st.tr}x{st.tc} outputs, 3x3")
    print(f"{'bits':>4} {'layer C-M-HxW':>14} {'N':>2} {'ST cycles':>10} {'model':>8} "
          f"{'compute util':>12} {'overall':>8} {'fixed cycles':>12} {'model':>8} "
          f"{'speed-up':>8}")
    for case, r, f in zip(cases, st_res, fx_res, strict=True):
        s = case.shape
        assert r["output_ok"] and (f is None or f["output_ok"])
        cu = r["macs"] / (r["compute_cycles"] * st.macs * r["lanes"])
        ou = r["macs"] / (r["cycles"] * st.macs * r["lanes"])
        fixed_cols = ("" if f is None else f"{f['cycles']:>12} {f['model_cycles']:>8} "
                      f"{f['cycles'] / r['cycles']:>7.2f}x")
        print(f"{case.act_bits:>4} {f'{s.c}-{s.m}-{s.h}x{s.w}':>14} {r['lanes']:>2} "
              f"{r['cycles']:>10} {r['model_cycles']:>8} {cu:>12.1%} {ou:>8.1%} {fixed_cols}")
    print(f"wall: ST {st_sim.wall_s:.1f} s"
          + ("" if fx_sim is None else f", fixed {fx_sim.wall_s:.1f} s"))


if __name__ == "__main__":
    main()
