"""The ``rcm-gen`` command line.

Bad input (a value out of range, a missing file, a missing tool) ends with exit status 2
and one line naming the parameter, the value and what is allowed.  A failed simulation or
tool run ends with status 1 and names its log.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .errors import ToolFailed, UserError

__all__ = ["main"]

PROG = "rcm-gen"

#: Modules that add subcommands.  Each defines ``add_parser(subparsers, design_args)``,
#: where ``design_args(parser)`` adds PRESET / --config / --set; the subcommand's function
#: (set with ``set_defaults(func=...)``) takes the parsed arguments and returns an exit
#: status, and may call :func:`design_from_args`.  Keep their module-level imports light:
#: every ``rcm-gen`` call imports them.
_SUBCOMMAND_MODULES: tuple[str, ...] = (
    "rcm_gen.tile.cli",
    "rcm_gen.flows.cli",
    "rcm_gen.power.cli",
    "rcm_gen.workloads.cli",
    "rcm_gen.workloads.infer_cli",
    "rcm_gen.workloads.quantize_cli",
    "rcm_gen.dse.cli",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_design_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("preset", nargs="?", metavar="PRESET",
                   help="a preset name (see `rcm-gen presets`)")
    p.add_argument("--config", metavar="FILE", help="a JSON configuration file instead")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration key (repeatable; nested: mac.arch=ppa)")


def design_from_args(args: argparse.Namespace) -> Any:
    """The configuration named by PRESET or --config, with --set overrides applied."""
    from .presets import apply_overrides, load_config_file, preset

    if args.preset and args.config:
        raise UserError(f"give PRESET or --config, not both ({args.preset!r} and "
                        f"{args.config!r})")
    if not args.preset and not args.config:
        raise UserError("a design is required: give PRESET or --config FILE")
    try:
        config = load_config_file(args.config) if args.config else preset(args.preset)
        return apply_overrides(config, args.set)
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from None


# -- subcommands ------------------------------------------------------------------------


def cmd_presets(args: argparse.Namespace) -> int:
    from .presets import PRESETS

    width = max(len(n) for n in PRESETS)
    for name, (desc, factory) in PRESETS.items():
        print(f"{name:<{width}}  {factory().kind:<5}  {desc}")
    return 0


def mode_table(mac: Any) -> str:
    """The run-time modes of a MAC configuration for every pairing of operand widths W/2^k:
    the mode each runs in, its MACs per cycle and the operand bits it uses, then the
    operand word widths and what the architecture does with asymmetric widths."""
    bits = [mac.width >> k for k in range(6) if mac.width >> k >= 2]
    rows = [("request", "runs in", "MACs/cycle", "act word bits", "weight word bits")]
    for a in bits:
        for w in bits:
            try:
                m = mac.mode_for_bits(a, w)
            except ValueError:
                rows.append((f"{a}x{w}", "-", "-", "-", "-"))
                continue
            rows.append((f"{a}x{w}", m.name, str(m.products), str(m.act_word_bits),
                         str(m.weight_word_bits)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"MAC modes (activation x weight bits; a narrower value is held in its lane; "
             f"modes {', '.join(m.name for m in mac.mac_modes)}):"]
    lines += ["  ".join(c.ljust(n) if i == 0 else c.rjust(n)
                        for i, (c, n) in enumerate(zip(r, widths, strict=True))).rstrip()
              for r in rows]
    lines.append(f"operand words: activations {mac.act_word_bits} bits, weights "
                 f"{mac.weight_word_bits} bits")
    if mac.is_fused:
        lines.append(
            f"fusion: {mac.brick_bits}-bit bricks; mode AxB takes (W/A)(W/B) terms: the "
            f"activation word is W/B blocks of W bits, each W/A activations in term order; "
            f"the weight word is W/A blocks of W/B weights, lane g of block h holding term "
            f"g*(W/A)+h")
    elif mac.is_fixed:
        lines.append("fixed: one product per cycle at any widths up to W")
    else:
        lines.append(
            f"{mac.arch}: an asymmetric request runs in the lane mode of its wider operand "
            f"(no gain from the narrower one: the W-bit ports hold W/N values of each operand "
            f"and a product takes one of each)")
    return "\n".join(lines)


def cmd_config(args: argparse.Namespace) -> int:
    config = design_from_args(args)
    mac = getattr(config, "mac", config)
    # derived tables go to standard error, so that standard output stays the JSON
    table = mode_table(mac)
    if hasattr(config, "memory"):
        from .flows.synth import memory_table

        # the buffers' memory binding, then the modes of each of the tile's MACs
        table = (f"{memory_table(config, args.liberty)}\n{table}\n(per MAC; the tile has "
                 f"{config.macs} MACs: p={config.p} x q={config.q})")
    sys.stdout.write(config.to_json())
    sys.stdout.flush()
    print(table, file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import write_design

    config = design_from_args(args)
    manifest = write_design(config, args.output)
    out = Path(args.output)
    vfile = out / f"{manifest['top']}.v"
    modules = manifest["modules"]
    print(f"wrote {vfile} ({vfile.stat().st_size} bytes, sha256 "
          f"{manifest['files'][vfile.name][:16]}...) and {out / 'manifest.json'}")
    print(f"top {manifest['top']}: {len(manifest['ports'])} ports, config "
          f"{manifest['config_hash']}; {len(modules)} modules, "
          f"{sum(m['instances'] for m in modules)} instances")
    if args.lint:
        from .flows.lint import lint_verilator, lint_yosys

        ok = True
        for fn, name in ((lint_yosys, "yosys-lint.log"), (lint_verilator, "verilator-lint.log")):
            res = fn(vfile, manifest["top"], out / name)
            ok &= res.clean
            status = "clean" if res.clean else f"{len(res.messages)} messages"
            print(f"lint {res.tool}: {status} (log {res.log})")
            for msg in res.messages[:10]:
                print(f"  {msg}")
        if not ok:
            return 1
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .sim.verify import verify_design

    config = design_from_args(args)
    sims = [s.strip() for s in args.simulator.split(",") if s.strip()]
    return verify_design(config, sims, count=args.count, seed=args.seed)


# -- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=(
        "Generate, simulate, synthesize and explore a run-time reconfigurable, "
        "precision-scalable 2D-convolution module."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("presets", help="list the named design points")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("config", help="print a design point's configuration as JSON",
                       description="Print a design point's configuration as JSON; on standard "
                                   "error, its MAC's modes (MACs per cycle for each pairing "
                                   "of activation and weight widths, operand word widths) "
                                   "and for a tile the memory each buffer is built from.")
    _add_design_args(p)
    p.add_argument("--liberty", metavar="FILE|NAME",
                   help="tile: resolve the buffers' memory for this cell library (default: "
                        "none, as in simulation)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("generate", help="write a design point's Verilog and manifest")
    _add_design_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--lint", action="store_true",
                   help="also run Yosys check -assert and Verilator --lint-only -Wall")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("verify", help="simulate a design point's Verilog against numpy")
    _add_design_args(p)
    p.add_argument("--simulator", default="icarus,verilator", metavar="SIMS",
                   help="comma-separated: icarus, verilator (default: both)")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="random MAC operations (default 2000) or tile layers (default 16) "
                        "per simulator")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.set_defaults(func=cmd_verify)

    for module in _SUBCOMMAND_MODULES:
        importlib.import_module(module).add_parser(sub, design_args=_add_design_args)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except ToolFailed as exc:  # tool failures name their log
        print(f"{PROG}: failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

