"""A compiled, cycle-based, zero-delay gate-level simulator with per-net toggle counts, for
netlists too large for an event-driven simulator's build (a tile of 100,000 cells takes
Verilator tens of minutes to build with toggle coverage; this takes seconds).

rcm_gen writes the netlist as one C program: every net a byte, every combinational cell
output an assignment of its liberty ``function`` (in topological order), every flip-flop a
state byte set from its ``next_state`` when its clock pin sees the edge of its
``clocked_on`` expression (``clear``/``preset`` applied as levels after every
evaluation), and every SRAM macro of a macro library the behaviour of
:func:`rcm_gen.flows.macros.model_verilog` (inputs sampled at the rising edge, reads and
writes completing at the falling edge) with its accesses counted.  Each cycle is evaluated
as a zero-delay simulator with the testbench of :mod:`rcm_gen.sim.gate_level` sees it: the
clock falls and the cycle's inputs are applied together, then the clock rises; after each
of the two evaluations a net that changed made one transition (rise or fall), so the counts
are those of Verilator's toggle coverage on the same stimulus (a test checks this).

Flip-flops must be clocked by the clock port, directly or through buffers and inverters;
latches, three-state outputs and combinational loops are refused (use Verilator).
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolFailed, UserError
from ..flows.liberty import Liberty
from ..flows.netlist import CONST0, CONST1, FlatNetlist, render_liberty_function
from ..tools import cache_dir, require_executable
from .gate_run import GateRun, check_run

__all__ = ["CycleSim", "MacroPorts", "c_expr"]

#: Statements per generated C function (smaller functions compile faster).
_CHUNK = 4000


def c_expr(function: str, symbols: dict[str, str], where: str = "") -> str:
    """A liberty boolean function as a C expression on 0/1 bytes; ``symbols`` maps the
    function's names (pins, state variables) to C expressions."""
    def symbol(name: str) -> str:
        if name not in symbols:
            raise UserError(f"liberty function {function!r}{where} names {name!r}, "
                            "which is not a pin or state of the cell")
        return symbols[name]

    return render_liberty_function(function, where, constants=("0", "1"), symbol=symbol,
                                   negate=lambda t: f"(1^{t})", operators=("&", "|", "^"))


@functools.lru_cache(maxsize=4096)
def _names(function: str) -> frozenset[str]:
    from liberty.boolean_functions import parse_boolean_function

    try:
        return frozenset(str(s) for s in parse_boolean_function(function.strip()).free_symbols)
    except Exception:
        return frozenset()


@functools.lru_cache(maxsize=4096)
def _template(function: str, where: str) -> tuple[str, tuple[str, ...]]:
    """``function`` as a C expression with ``{0}``, ``{1}``, ... for its names, and the
    names in that order (one parse per distinct function, not per instance)."""
    names = tuple(sorted(_names(function)))
    return c_expr(function, {n: f"{{{i}}}" for i, n in enumerate(names)}, where), names


def _expr(function: str, symbols: dict[str, str], where: str) -> str:
    text, names = _template(function, where)
    missing = [n for n in names if n not in symbols]
    if missing:
        raise UserError(f"liberty function {function!r}{where} names {missing[0]!r}, which "
                        "is not a pin or state of the cell")
    return text.format(*(symbols[n] for n in names))


@dataclass(frozen=True)
class MacroPorts:
    """An SRAM macro instance of the netlist for the simulator: its library macro
    (:class:`rcm_gen.flows.macros.Macro`) and the nets of each pin (LSB first)."""

    path: str
    macro: Any
    pins: dict[str, tuple[int, ...]]


class CycleSim:
    """The compiled simulation of ``netlist`` (cells of ``lib``; SRAM ``macros``), clocked
    by input port ``clock``; the interface of :class:`rcm_gen.sim.gate_level.GateSim`.

    The program and its build live in ``<cache>/gatesim/<hash>/cycle``.  ``access_counts``
    of a run hold, per window, the accesses of every macro port (``read``/``write`` of
    port 0, ``read`` of port 1), in the order of ``macros``.

    Raises
    ------
    UserError
        A cell this simulator does not model (latch, three-state output), a flip-flop not
        clocked by ``clock``, or a combinational loop.
    """

    simulator = "cycle"

    def __init__(self, netlist: FlatNetlist, lib: Liberty, clock: str,
                 sample: str = "after", macros: Sequence[MacroPorts] = ()) -> None:
        if sample not in ("after", "before"):
            raise ValueError(f"sample must be after or before, not {sample!r}")
        if clock not in netlist.ports or netlist.ports[clock][0] != "input":
            raise UserError(f"clock {clock!r} is not an input port of {netlist.top!r}")
        self.netlist, self.lib, self.clock, self.sample = netlist, lib, clock, sample
        self.macros = tuple(macros)
        self.inputs = [p for p, (d, _) in netlist.ports.items() if d == "input" and p != clock]
        self.outputs = [p for p, (d, _) in netlist.ports.items() if d != "input"]
        self.source = self._program()
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:16]
        self.dir = cache_dir() / "gatesim" / digest / "cycle"

    # -- the program ----------------------------------------------------------------------

    def _program(self) -> str:
        net, lib = self.netlist, self.lib
        clk = net.ports[self.clock][1][0]
        driver: dict[int, tuple[int, str]] = {}
        for i, inst in enumerate(net.instances):
            cell = lib.cells[inst.cell]
            for p, k in inst.pins.items():
                if cell.pins[p].direction != "input":
                    if cell.pins[p].three_state:
                        raise UserError(f"cell {inst.cell} has a three-state output; the "
                                        "cycle simulator does not model it")
                    driver[k] = (i, p)
        for m in self.macros:
            for role in ("rw_dout", "r_dout"):
                for k in m.pins[m.macro.pin(role)]:
                    driver[k] = (-1, role)

        # clock tree: the clock port through buffers and inverters, with inversion parity
        parity = {clk: 0}
        changed = True
        while changed:
            changed = False
            for inst in net.instances:
                cell = lib.cells[inst.cell]
                if cell.sequential or len(cell.inputs) != 1:
                    continue
                a = inst.pins.get(cell.inputs[0])
                if a not in parity:
                    continue
                for p, k in inst.pins.items():
                    pin = cell.pins[p]
                    if pin.direction == "input" or k in parity or not pin.function:
                        continue
                    f = pin.function.replace(" ", "")
                    inv = {cell.inputs[0]: 0, f"!{cell.inputs[0]}": 1,
                           f"{cell.inputs[0]}'": 1}.get(f)
                    if inv is not None:
                        parity[k] = parity[a] ^ inv
                        changed = True

        states: list[tuple[int, Any]] = []  # (instance, Sequential)
        state_of: dict[tuple[int, str], int] = {}
        for i, inst in enumerate(net.instances):
            cell = lib.cells[inst.cell]
            for seq in cell.sequential:
                if seq.kind != "ff":
                    raise UserError(f"cell {inst.cell} is a latch; the cycle simulator "
                                    "models flip-flops only (use --simulator verilator)")
                state_of[(i, seq.state)] = len(states)
                states.append((i, seq))

        def symbols(i: int) -> dict[str, str]:
            inst = net.instances[i]
            cell = lib.cells[inst.cell]
            out = {p: f"v[{k}]" for p, k in inst.pins.items() if cell.pins[p].direction
                   == "input"}
            for seq in cell.sequential:
                j = state_of[(i, seq.state)]
                out[seq.state] = f"s[{j}]"
                if seq.state_n:
                    out[seq.state_n] = f"(1^s[{j}])"
            return out

        # combinational evaluation in topological order
        deps: dict[int, list[int]] = {}
        exprs: dict[int, str] = {}
        for k, (i, p) in driver.items():
            if i < 0:
                continue
            inst = net.instances[i]
            cell = lib.cells[inst.cell]
            pin = cell.pins[p]
            if not pin.function:
                raise UserError(f"output {p} of cell {inst.cell} has no function")
            where = f" of cell {inst.cell}"
            exprs[k] = _expr(pin.function, symbols(i), where)
            deps[k] = [inst.pins[n] for n in _names(pin.function) if n in inst.pins]
        order: list[int] = []
        state = dict.fromkeys(exprs, 0)  # 0 unvisited, 1 on stack, 2 done
        for start in exprs:
            if state[start]:
                continue
            stack = [(start, iter(deps[start]))]
            state[start] = 1
            while stack:
                k, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[k] = 2
                    order.append(k)
                    continue
                if nxt not in state or state[nxt] == 2:
                    continue
                if state[nxt] == 1:
                    raise UserError(f"the netlist has a combinational loop through net "
                                    f"{net.names[nxt]!r}; the cycle simulator needs none")
                state[nxt] = 1
                stack.append((nxt, iter(deps[nxt])))

        # flip-flops by edge
        rise_ff, fall_ff, async_ff = [], [], []
        for j, (i, seq) in enumerate(states):
            inst = net.instances[i]
            cell = lib.cells[inst.cell]
            where = f" of cell {inst.cell}"
            clock_pins = _names(seq.clock)
            if len(clock_pins) != 1:
                raise UserError(f"cell {inst.cell}: clocked_on {seq.clock!r} is not one pin")
            (cp,) = clock_pins
            k = inst.pins.get(cp)
            if k not in parity:
                raise UserError(f"flip-flop {inst.path} ({inst.cell}) is clocked by net "
                                f"{net.names[k] if k is not None else cp!r}, not by the clock "
                                f"port {self.clock!r} through buffers and inverters; the "
                                "cycle simulator cannot run it (use --simulator verilator)")
            inverted = _expr(seq.clock, {cp: "x"}, where) != "x"
            data = _expr(seq.data, symbols(i), where)
            (fall_ff if parity[k] ^ inverted else rise_ff).append((j, data))
            if seq.clear or seq.preset:
                sy = symbols(i)
                clear = _expr(seq.clear, sy, where) if seq.clear else "0"
                preset = _expr(seq.preset, sy, where) if seq.preset else "0"
                both = "1" if (seq.clear_preset_var1 or "L") == "H" else "0"
                async_ff.append((j, clear, preset, both))

        lines = ["#include <stdint.h>", "#include <stdio.h>", "#include <stdlib.h>",
                 "#include <string.h>",
                 f"#define NN {max(net.net_count, 2)}", f"#define NS {max(len(states), 1)}",
                 "static uint8_t v[NN], pv[NN], s[NS], t[NS];",
                 "static uint32_t rise[NN], fall[NN];"]
        funcs = []
        for c in range(0, max(len(order), 1), _CHUNK):
            name = f"eval{c // _CHUNK}"
            funcs.append(name)
            lines.append(f"static void {name}(void) {{")
            lines += [f"  v[{k}] = {exprs[k]};" for k in order[c:c + _CHUNK]]
            lines.append("}")
        lines.append("static void eval(void) {")
        lines += [f"  {f}();" for f in funcs]
        lines.append("}")
        for name, group in (("edge_rise", rise_ff), ("edge_fall", fall_ff)):
            lines.append(f"static void {name}(void) {{")
            lines += [f"  t[{j}] = {d};" for j, d in group]
            lines += [f"  s[{j}] = t[{j}];" for j, _ in group]
            lines.append("}")
        lines.append("static int levels(void) {\n  int c = 0; uint8_t o;")
        for j, clear, preset, both in async_ff:
            lines.append(f"  o = s[{j}]; if (({clear}) && ({preset})) s[{j}] = {both}; "
                         f"else if ({clear}) s[{j}] = 0; else if ({preset}) s[{j}] = 1; "
                         f"c |= o != s[{j}];")
        lines.append("  return c;\n}")
        lines += self._macro_code()
        in_bits = [k for p in self.inputs for k in net.ports[p][1]]
        out_bits = [k for p in self.outputs for k in net.ports[p][1]]
        lines.append(f"static const int IN[] = {{{', '.join(map(str, in_bits)) or '0'}}};")
        lines.append(f"static const int OUT[] = {{{', '.join(map(str, out_bits)) or '0'}}};")
        lines.append(_MAIN.format(nin=len(in_bits), nout=len(out_bits), clk=clk,
                                  const1=CONST1, nmac=len(self.macros),
                                  before=int(self.sample == "before")))
        return "\n".join(lines) + "\n"

    def _macro_code(self) -> list[str]:
        """Memories, sampled inputs and access counters of the macros."""
        lines = []
        rise, fall = [], []
        for n, m in enumerate(self.macros):
            mac = m.macro
            pin = {r: m.pins[mac.pin(r)] for r in ("rw_csb", "rw_web", "rw_wmask", "rw_addr",
                                                   "rw_din", "rw_dout", "r_csb", "r_addr",
                                                   "r_dout")}
            words, bits, mbits = mac.words, mac.bits, mac.write_mask_bits

            def word(nets: tuple[int, ...]) -> str:
                return " | ".join(f"((uint64_t)v[{k}] << {b})" for b, k in enumerate(nets))

            lines.append(f"static uint8_t mem{n}[{words}][{bits}];")
            lines.append(f"static uint64_t m{n}_a0, m{n}_a1, m{n}_mask; "
                         f"static int m{n}_cs0, m{n}_we0, m{n}_cs1; "
                         f"static uint8_t m{n}_din[{bits}];")
            rise.append(
                f"  m{n}_cs0 = !v[{pin['rw_csb'][0]}]; m{n}_we0 = !v[{pin['rw_web'][0]}]; "
                f"m{n}_cs1 = !v[{pin['r_csb'][0]}];\n"
                f"  m{n}_a0 = {word(pin['rw_addr'])}; m{n}_a1 = {word(pin['r_addr'])}; "
                f"m{n}_mask = {word(pin['rw_wmask'])};\n"
                f"  for (int b = 0; b < {bits}; b++) m{n}_din[b] = v[DIN{n}[b]];\n"
                f"  if (m{n}_cs0) acc[{3 * n} + (m{n}_we0 ? 1 : 0)]++;\n"
                f"  if (m{n}_cs1) acc[{3 * n + 2}]++;")
            fall.append(
                f"  if (m{n}_cs0 && m{n}_a0 < {words}) {{\n"
                f"    if (m{n}_we0) {{ for (int b = 0; b < {bits}; b++) "
                f"if ((m{n}_mask >> (b / {mbits})) & 1) mem{n}[m{n}_a0][b] = m{n}_din[b]; }}\n"
                f"    else for (int b = 0; b < {bits}; b++) v[DOUT0_{n}[b]] = "
                f"mem{n}[m{n}_a0][b];\n  }}\n"
                f"  if (m{n}_cs1 && m{n}_a1 < {words} && !(m{n}_cs0 && m{n}_we0 && "
                f"m{n}_a0 == m{n}_a1))\n"
                f"    for (int b = 0; b < {bits}; b++) v[DOUT1_{n}[b]] = mem{n}[m{n}_a1][b];")
            lines.append(f"static const int DIN{n}[] = {{{', '.join(map(str, pin['rw_din']))}}};")
            lines.append(f"static const int DOUT0_{n}[] = "
                         f"{{{', '.join(map(str, pin['rw_dout']))}}};")
            lines.append(f"static const int DOUT1_{n}[] = "
                         f"{{{', '.join(map(str, pin['r_dout']))}}};")
        lines.append(f"static uint32_t acc[{max(3 * len(self.macros), 1)}];")
        lines.append("static void macro_rise(void) {\n" + "\n".join(rise) + "\n}")
        lines.append("static void macro_fall(void) {\n" + "\n".join(fall) + "\n}")
        return lines

    # -- build ----------------------------------------------------------------------------

    def build(self) -> Path:
        """Compile the program (once); the executable."""
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        exe = d / "sim"
        if exe.exists() and (d / "built").exists():
            return exe
        src = d / "sim.c"
        src.write_text(self.source)
        log = d / "build.log"
        cc = require_executable(os.environ.get("CC", "cc"))
        # unoptimized: a 100,000-cell netlist compiles in seconds rather than minutes, and
        # runs only a little slower (the per-net toggle count is optimized on its own)
        cmd = [cc, "-O0", "-o", str(exe), str(src)]
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=d)
        if proc.returncode != 0 or not exe.exists():
            raise ToolFailed(f"the C compiler could not build the cycle simulation of "
                             f"{self.netlist.top}; log: {log}")
        (d / "built").write_text("")
        return exe

    # -- run ------------------------------------------------------------------------------

    def run(self, inputs: dict[str, np.ndarray], windows: Sequence[tuple[int, int]],
            tag: str = "run", on_progress: Callable[[int, int], None] | None = None
            ) -> GateRun:
        """As :meth:`rcm_gen.sim.gate_level.GateSim.run`; the result also has the macros'
        ``access_counts`` (windows × 3·macros)."""
        cycles = check_run(self.inputs, inputs, windows)
        exe = self.build()
        run = self.dir / "runs" / f"{tag}-{os.getpid()}"
        run.mkdir(parents=True, exist_ok=True)
        for old in run.glob("win_*.bin"):
            old.unlink()
        started = time.perf_counter()
        # one byte per input bit per cycle, LSB first per port
        cols = []
        for p in self.inputs:
            w = len(self.netlist.ports[p][1])
            v = np.asarray(inputs[p], dtype=object)
            if len(v) != cycles:
                raise ValueError(f"input {p} has {len(v)} cycles, not {cycles}")
            for off in range(0, w, 62):  # 62-bit slices through numpy
                n = min(62, w - off)
                arr = np.array([(int(x) >> off) & ((1 << n) - 1) for x in v], dtype=np.int64)
                cols.append(((arr[:, None] >> np.arange(n)) & 1).astype(np.uint8))
        stim = run / "stim.bin"
        (np.concatenate(cols, axis=1) if cols else np.zeros((cycles, 0), np.uint8)
         ).tofile(stim)
        (run / "windows.txt").write_text(
            f"{cycles} {len(windows)}\n" + "".join(f"{a} {b}\n" for a, b in windows))
        out = run / "out.bin"
        log = run / "sim.log"
        n_out = sum(len(self.netlist.ports[p][1]) for p in self.outputs)
        with open(log, "w") as f:
            proc = subprocess.Popen([str(exe), str(stim), str(run / "windows.txt"), str(out),
                                     str(run)], stdout=f, stderr=subprocess.STDOUT, cwd=run)
            while proc.poll() is None:
                if on_progress is not None and out.exists():
                    on_progress(min(out.stat().st_size // max(n_out, 1), cycles), cycles)
                time.sleep(0.25)
        if on_progress is not None:
            on_progress(cycles, cycles)
        if proc.returncode != 0:
            raise ToolFailed(f"the cycle simulation failed (exit status {proc.returncode}); "
                             f"log: {log}")
        bits = np.fromfile(out, dtype=np.uint8)
        if bits.size != cycles * n_out:
            raise ToolFailed(f"the cycle simulation wrote {bits.size} output bits for "
                             f"{cycles} cycles of {n_out}; log: {log}")
        bits = bits.reshape(cycles, n_out)
        outputs: dict[str, list[int]] = {}
        col = 0
        for p in self.outputs:
            w = len(self.netlist.ports[p][1])
            chunk = bits[:, col:col + w]
            col += w
            values = [0] * cycles
            for off in range(0, w, 62):
                n = min(62, w - off)
                part = (chunk[:, off:off + n].astype(np.int64) << np.arange(n)).sum(axis=1)
                values = [a | (int(b) << off) for a, b in zip(values, part.tolist(),
                                                               strict=True)]
            outputs[p] = values
        n = self.netlist.net_count
        rises = np.zeros((len(windows), n))
        falls = np.zeros((len(windows), n))
        accesses = np.zeros((len(windows), 3 * len(self.macros)))
        for i, (a, _) in enumerate(windows):
            path = run / f"win_{a}.bin"
            try:
                data = np.fromfile(path, dtype=np.uint32)
            except OSError:
                raise ToolFailed(f"the cycle simulation wrote no toggle counts for window "
                                 f"{i}; log: {log}") from None
            need = 2 * max(n, 2) + max(3 * len(self.macros), 1)
            if data.size != need:
                raise ToolFailed(f"toggle counts of window {i} ({path}) have {data.size} "
                                 f"values, not {need}; log: {log}")
            rises[i] = data[:n]
            falls[i] = data[max(n, 2):max(n, 2) + n]
            accesses[i] = data[2 * max(n, 2):2 * max(n, 2) + 3 * len(self.macros)]
        for k in (CONST0, CONST1):
            rises[:, k] = falls[:, k] = 0
        return GateRun(outputs, rises, falls, self.simulator, time.perf_counter() - started,
                       log, accesses)


_MAIN = """
__attribute__((optimize("O3"))) static void count(void) {{
  for (int k = 0; k < NN; k++) {{
    uint8_t d = v[k] ^ pv[k];
    rise[k] += d & v[k];
    fall[k] += d & pv[k];
    pv[k] = v[k];
  }}
}}
static void settle(void) {{
  eval();
  for (int i = 0; i < 8 && levels(); i++) eval();
}}
static void sample(uint8_t *out, FILE *fo) {{
  for (int i = 0; i < {nout}; i++) out[i] = v[OUT[i]];
  fwrite(out, 1, {nout}, fo);
}}
static void dump(const char *dir, int start) {{
  char path[4096];
  snprintf(path, sizeof path, "%s/win_%d.bin", dir, start);
  FILE *f = fopen(path, "wb");
  if (!f) {{ perror(path); exit(3); }}
  fwrite(rise, sizeof rise[0], NN, f);
  fwrite(fall, sizeof fall[0], NN, f);
  fwrite(acc, sizeof acc[0], sizeof acc / sizeof acc[0], f);
  fclose(f);
}}
int main(int argc, char **argv) {{
  if (argc != 5) {{ fprintf(stderr, "usage: sim STIM WINDOWS OUT DIR\\n"); return 2; }}
  FILE *fs = fopen(argv[1], "rb"), *fw = fopen(argv[2], "r"), *fo = fopen(argv[3], "wb");
  if (!fs || !fw || !fo) {{ perror("open"); return 2; }}
  long cycles; int nwin;
  if (fscanf(fw, "%ld %d", &cycles, &nwin) != 2) return 2;
  long *ws = malloc(sizeof(long) * (nwin + 1)), *we = malloc(sizeof(long) * (nwin + 1));
  for (int i = 0; i < nwin; i++) if (fscanf(fw, "%ld %ld", &ws[i], &we[i]) != 2) return 2;
  static uint8_t in[{nin} + 1], out[{nout} + 1];
  v[{const1}] = 1;
  settle();
  memcpy(pv, v, sizeof v);
  int w = 0;
  for (long c = 0; c < cycles; c++) {{
    if (w < nwin && c == we[w]) {{ dump(argv[4], (int)ws[w]); w++; }}
    if (w < nwin && c == ws[w]) {{
      memset(rise, 0, sizeof rise); memset(fall, 0, sizeof fall); memset(acc, 0, sizeof acc);
    }}
    if (fread(in, 1, {nin}, fs) != {nin}) {{ fprintf(stderr, "short stimulus\\n"); return 2; }}
    /* the clock falls and the cycle's inputs arrive */
    v[{clk}] = 0;
    edge_fall();
    macro_fall();
    for (int i = 0; i < {nin}; i++) v[IN[i]] = in[i];
    settle();
    count();
    if ({before}) sample(out, fo);
    /* the clock rises */
    v[{clk}] = 1;
    edge_rise();
    macro_rise();
    settle();
    count();
    if (!{before}) sample(out, fo);
    fflush(fo);
  }}
  if (w < nwin && cycles == we[w]) {{ dump(argv[4], (int)ws[w]); w++; }}
  fclose(fo);
  return 0;
}}
"""
