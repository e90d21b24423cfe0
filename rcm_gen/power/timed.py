"""Timing simulation of a flat netlist on Icarus Verilog with SDF delays, counting every
net's rises and falls, glitches included.

- **Cell models**: the zero-delay models rcm_gen writes from the liberty
  (:func:`rcm_gen.flows.netlist.cell_models`) with a ``specify`` block declaring a module
  path for each timing arc of each cell's outputs; :class:`rcm_gen.power.sdf.SdfAnnotation`
  gives their delays (``$sdf_annotate``), in nanoseconds.
- **Delay model: inertial.**  Icarus's module paths schedule an output event at the path's
  delay and, when it fires, send the output's *latest* value: a pulse at a cell's input
  narrower than the cell's delay for that edge never reaches its output (Verilog's default
  pulse limits, reject = error = the path delay; Icarus 11 ignores ``PATHPULSE`` and the
  SDF's pulse limits, so they cannot be set otherwise).  That is what a real gate does to
  a pulse shorter than its own propagation time: its output does not swing before the
  input returns.  A transport model would pass every such pulse on and grow glitch
  trains that silicon filters.  A filtered pulse costs no energy here, though a real one
  partly charges the gate's output: in that sense the count is a lower bound.
- **Testbench**: inputs change at each rising edge (after the flip-flops have sampled;
  then their input delay and their port's SDF delay, the driving cell's), the clock period
  leaves the last tenth of each cycle after the netlist's longest annotated path (it is
  refused otherwise), outputs are sampled in that tenth, just before the next rising edge,
  and the run fails if any net switches there after all.
- **An ideal clock**: arcs from a clock net through a cell that passes the clock on (a
  gate or an integrated clock-gating cell on the way to flip-flops' clock pins) get no
  delay, as the clock is ideal in static timing and as a balanced clock tree makes it in
  silicon.  With the gate's own delay, registers clocked through it would sample late,
  after registers on the ungated clock have changed their data: a hold race that
  clock-tree synthesis removes (Camus et al.'s Sum-Together MAC gates its high
  accumulator bits' clock by mode with an AND, and takes the next product there).  The
  other arcs into such a cell (the enable) keep their delays.
- **Counting**: rises and falls of every net from the VCD (``pywellen``).  A cycle runs
  from just before one rising edge (all settled) to just before the next: it holds that
  cycle's input change and the edge that took the previous cycle's inputs, where a
  zero-delay window holds the edge that takes its own.  The two differ by one edge's
  register activity at each end of a window (both within one operating point when
  windows follow settling cycles).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ToolFailed, UserError
from ..flows.liberty import Liberty
from ..flows.netlist import CONST1, FlatNetlist, cell_models, write_flat_verilog
from ..tools import cache_dir, require_executable
from .sdf import SdfAnnotation

__all__ = ["GUARD", "TimedSim", "timed_cell_models"]

#: Fraction of the simulation's clock period before each rising edge in which no net may
#: switch (everything settled): outputs are sampled, and windows cut, in it.
GUARD = 0.1


def _paths(lib: Liberty, cell_name: str) -> list[tuple[str, str]]:
    """(input, output) module paths of a cell: every timing arc of its outputs."""
    cell = lib.cells[cell_name]
    out = set()
    for name, pin in cell.pins.items():
        if pin.direction == "input":
            continue
        for arc in pin.timing:
            rel = cell.pins.get(arc.related)
            if rel is not None and rel.direction == "input":
                out.add((arc.related, name))
    return sorted(out)


def timed_cell_models(lib: Liberty, cells: set[str]) -> str:
    """Verilog models of ``cells`` (:func:`rcm_gen.flows.netlist.cell_models`) with a
    ``specify`` block declaring a module path, of zero delay until an SDF annotates it,
    for each timing arc of each cell's outputs; in nanoseconds (``timescale 1ns/1ps``)."""
    text = cell_models(lib, cells)

    def add(m: re.Match[str]) -> str:
        paths = _paths(lib, m.group(2))
        if not paths:
            return m.group(0)
        spec = "".join(f"    ({a} => {y}) = (0, 0);\n" for a, y in paths)
        return f"{m.group(1)}  specify\n{spec}  endspecify\nendmodule"

    body = re.sub(r"(^module (\S+) \(.*?\n)endmodule", add, text, flags=re.M | re.S)
    return "`timescale 1ns/1ps\n" + body


_TB = """\
`timescale 1ns/1ps
module tb;
  reg {clock} = 1'b0;
{regs}
{delayed}
{wires}
  integer tb_fin, tb_fout, tb_r, tb_t;
  reg [8*1024-1:0] tb_stim, tb_out, tb_sdf;
{temps}
  {module} dut ({conns});
  initial begin
    if (!$value$plusargs("stim=%s", tb_stim)) $fatal(1, "no +stim");
    if (!$value$plusargs("out=%s", tb_out)) $fatal(1, "no +out");
    if (!$value$plusargs("sdf=%s", tb_sdf)) $fatal(1, "no +sdf");
    $sdf_annotate(tb_sdf, dut);
    tb_fin = $fopen(tb_stim, "r");
    tb_fout = $fopen(tb_out, "w");
    $dumpfile("waves.vcd");
    $dumpvars(1, dut);
    tb_t = 0;
    while ($fscanf(tb_fin, "{fmt}\\n", {targs}) == {nargs}) begin
{apply}      #{half} {clock} = 1'b0;
      #{before};
      {write}
      #{guard} {clock} = 1'b1;
      tb_t = tb_t + 1;
    end
    #{half} {clock} = 1'b0;
    #{before};
    {write}
    $fclose(tb_fout);
    $finish;
  end
endmodule
"""


def _ns(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") or "0"


def _ideal_clock(annotation: SdfAnnotation, netlist: FlatNetlist, lib: Liberty,
                 clock: str) -> SdfAnnotation:
    """``annotation`` with no delay on the arcs from clock nets through the cells that
    pass the clock on (see the module documentation); ``notes["ideal_clock_arcs"]`` says
    how many."""
    from .clock_tree import clock_network

    sinks: dict[int, list[tuple[int, str]]] = {}
    for i, inst in enumerate(netlist.instances):
        pins = lib.cells[inst.cell].pins
        for pin, k in inst.pins.items():
            if pins[pin].direction == "input":
                sinks.setdefault(k, []).append((i, pin))
    order, passers, _ = clock_network(netlist, lib, set(netlist.ports[clock][1]), sinks)
    nets = set(order)
    arcs, zeroed = dict(annotation.arcs), 0
    for i in passers & set(arcs):
        pins = netlist.instances[i].pins
        new = {}
        for (a, y), rf in arcs[i].items():
            if pins.get(a) in nets:
                rf, zeroed = (0.0, 0.0), zeroed + 1
            new[(a, y)] = rf
        arcs[i] = new
    return dataclasses.replace(annotation, arcs=arcs,
                               notes={**annotation.notes, "ideal_clock_arcs": zeroed})


class TimedSim:
    """A timing simulation of ``netlist`` on Icarus Verilog with the delays of
    ``annotation`` (see the module documentation), clocked by input port ``clock`` with
    period ``period_ns``; inputs change ``input_delay_ns`` after each rising edge (plus
    their port's delay).  The build is kept under ``<cache>/gatesim/<hash>/timed``.
    """

    simulator = "icarus-sdf"

    def __init__(self, netlist: FlatNetlist, lib: Liberty, clock: str,
                 annotation: SdfAnnotation, period_ns: float,
                 input_delay_ns: float = 0.0) -> None:
        if clock not in netlist.ports or netlist.ports[clock][0] != "input":
            raise UserError(f"clock {clock!r} is not an input port of {netlist.top!r}")
        longest = annotation.longest_path_ns(netlist, lib) + float(input_delay_ns)
        if not period_ns * (1 - GUARD) > longest:
            raise ValueError(f"Period must leave {GUARD:.0%} of it after the longest path "
                             f"({longest:.3f} ns), not {period_ns!r} ns")
        self.longest_path_ns = longest
        annotation = _ideal_clock(annotation, netlist, lib, clock)
        self.netlist, self.lib, self.clock = netlist, lib, clock
        self.annotation, self.period = annotation, float(period_ns)
        self.input_delay = float(input_delay_ns)
        self.inputs = [p for p, (d, _) in netlist.ports.items() if d == "input" and p != clock]
        self.outputs = [p for p, (d, _) in netlist.ports.items() if d != "input"]
        module = f"tl_{re.sub(r'[^A-Za-z0-9_]', '_', netlist.top)}"
        self.sources = {
            "netlist.v": "`timescale 1ns/1ps\n" + write_flat_verilog(netlist, module),
            "cells.v": timed_cell_models(lib, {i.cell for i in netlist.instances}),
            "tb.v": self._testbench(module),
            "timing.sdf": annotation.icarus_sdf(netlist),
        }
        digest = hashlib.sha256("\0".join(self.sources[k] for k in sorted(self.sources))
                                .encode()).hexdigest()[:16]
        self.dir = cache_dir() / "gatesim" / digest / "timed"

    def _width(self, port: str) -> int:
        return len(self.netlist.ports[port][1])

    def _testbench(self, module: str) -> str:
        def decl(kind: str, p: str, suffix: str = "") -> str:
            w = self._width(p)
            return f"  {kind} {f'[{w - 1}:0] ' if w > 1 else ''}{p}{suffix};"

        delayed = []
        for p in self.inputs:
            bits = self.netlist.ports[p][1]
            delayed.append(decl("wire", p, "__d"))
            for b, k in enumerate(bits):
                r, f = self.annotation.inputs.get(k, (0.0, 0.0))
                r, f = r + self.input_delay, f + self.input_delay
                sel = f"[{b}]" if len(bits) > 1 else ""
                delayed.append(f"  assign #({_ns(r)}, {_ns(f)}) {p}__d{sel} = {p}{sel};")
        conns = ", ".join(f".{p}({p}__d)" if p in self.inputs else f".{p}({p})"
                          for p in self.netlist.ports)
        half = self.period / 2
        guard = self.period * GUARD
        write = (f'$fwrite(tb_fout, "{" ".join("%h" for _ in self.outputs)}\\n", '
                 f'{", ".join(self.outputs) or chr(34) * 2});')
        # inputs change after the edge's flip-flops have sampled (non-blocking)
        apply = "".join(f"      {p} <= tb_v_{p};\n" for p in self.inputs)
        return _TB.format(
            clock=self.clock, module=module, conns=conns,
            regs="\n".join(decl("reg", p) for p in self.inputs),
            delayed="\n".join(delayed),
            wires="\n".join(decl("wire", p) for p in self.outputs),
            temps="\n".join(decl("reg", p).replace(f" {p};", f" tb_v_{p};")
                            for p in self.inputs),
            fmt=" ".join("%h" for _ in self.inputs),
            targs=", ".join(f"tb_v_{p}" for p in self.inputs), nargs=len(self.inputs),
            apply=apply, half=_ns(half), before=_ns(half - guard), guard=_ns(guard),
            write=write)

    def build(self) -> Path:
        """Compile the simulation (once); the compiled file."""
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        for name, text in self.sources.items():
            path = d / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        exe = d / "sim.vvp"
        done = d / "built"
        if exe.exists() and done.exists():
            return exe
        log = d / "build.log"
        cmd = [require_executable("iverilog"), "-g2005", "-gspecify", "-s", "tb", "-o",
               str(exe), *(str(d / n) for n in ("tb.v", "netlist.v", "cells.v"))]
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=d)
        if proc.returncode != 0 or not exe.exists():
            raise ToolFailed(f"iverilog could not build the timing simulation of "
                             f"{self.netlist.top}; log: {log}")
        done.write_text("")
        return exe

    def run(self, inputs: dict[str, np.ndarray], windows: Sequence[tuple[int, int]],
            tag: str = "run", on_progress: Callable[[int, int], None] | None = None
            ) -> Any:
        """Simulate ``inputs`` (one value per cycle for every input port but the clock)
        and count rises and falls of every net in each window of cycles, glitches
        included; a :class:`rcm_gen.sim.gate_run.GateRun` whose ``outputs[p][t]`` is
        port ``p`` after the rising edge that took cycle ``t``'s inputs (as a zero-delay
        run samples it, for outputs that registers drive).

        Raises
        ------
        ToolFailed
            The simulation failed, Icarus reported an SDF error, or a net still switched
            within the last tenth of a period before an edge (the period is too short).
        """
        from ..sim.gate_run import GateRun, check_run

        cycles = check_run(self.inputs, inputs, windows)
        exe = self.build()
        run = self.dir / "runs" / f"{tag}-{os.getpid()}"
        run.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        stim = run / "stim.txt"
        cols = []
        for p in self.inputs:
            w = self._width(p)
            v = np.asarray(inputs[p], dtype=object)
            if len(v) != cycles:
                raise ValueError(f"input {p} has {len(v)} cycles, not {cycles}")
            cols.append([format(int(x) & ((1 << w) - 1), "x") for x in v])
        stim.write_text("".join(" ".join(row) + "\n" for row in zip(*cols, strict=True)))
        out = run / "out.txt"
        log = run / "sim.log"
        cmd = [require_executable("vvp"), "-n", str(exe), f"+stim={stim}", f"+out={out}",
               f"+sdf={self.dir / 'timing.sdf'}"]
        line = sum((self._width(p) + 3) // 4 for p in self.outputs) + len(self.outputs)
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=run)
            while proc.poll() is None:
                if on_progress is not None and out.exists():
                    on_progress(min(out.stat().st_size // max(line, 1), cycles), cycles)
                time.sleep(0.25)
        if on_progress is not None:
            on_progress(cycles, cycles)
        text = log.read_text(errors="replace")
        if proc.returncode != 0:
            raise ToolFailed(f"timing simulation failed (exit status {proc.returncode}); "
                             f"log: {log}")
        bad = [ln for ln in text.splitlines() if "SDF ERROR" in ln or "SDF WARNING" in ln]
        if bad:
            raise ToolFailed(f"Icarus could not apply the SDF ({bad[0].strip()}); log: {log}")
        outputs = self._read_outputs(out, cycles, log)
        rises, falls = self._read_vcd(run / "waves.vcd", windows, cycles, log)
        (run / "waves.vcd").unlink()  # counted; kept only when a run fails
        return GateRun(outputs, rises, falls, self.simulator, time.perf_counter() - started,
                       log)

    def _read_outputs(self, out: Path, cycles: int, log: Path) -> dict[str, list[int]]:
        try:
            lines = out.read_text().splitlines()
        except OSError:
            raise ToolFailed(f"timing simulation wrote no outputs; log: {log}") from None
        if len(lines) != cycles + 1:
            raise ToolFailed(f"timing simulation wrote {len(lines)} output lines for "
                             f"{cycles} cycles; log: {log}")
        values: dict[str, list[int]] = {p: [] for p in self.outputs}
        for line in lines[1:]:  # line t + 1: after the edge that took cycle t's inputs
            for p, text in zip(self.outputs, line.split(), strict=True):
                values[p].append(int(text, 16) if re.fullmatch(r"[0-9a-fA-F]+", text)
                                 else -1)
        return values

    def _read_vcd(self, vcd: Path, windows: Sequence[tuple[int, int]], cycles: int,
                  log: Path) -> tuple[np.ndarray, np.ndarray]:
        import pywellen

        try:
            wave = pywellen.Waveform(str(vcd))
        except Exception as exc:  # pywellen raises its own error types
            raise ToolFailed(f"cannot read waveform {vcd} ({exc}); log: {log}") from None
        scale = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
        unit = str(wave.timescale.unit).split(".")[-1].lower()
        ns_per_tick = wave.timescale.factor * scale.get(unit, 1e-3)
        period = self.period / ns_per_tick
        guard = self.period * GUARD / ns_per_tick
        # window [a, b) of cycles: from just before the edge at a*P to just before b*P
        bounds = np.array([(a * period - guard / 2, b * period - guard / 2)
                           for a, b in windows], dtype=float).reshape(-1, 2)
        clock_nets = set(self.netlist.ports[self.clock][1])
        n = self.netlist.net_count
        rises = np.zeros((len(windows), n))
        falls = np.zeros((len(windows), n))
        found = 0
        late: tuple[float, str] | None = None
        for var in wave.all_vars():
            m = re.fullmatch(r"n(\d+)", var.name(wave) if callable(var.name) else var.name)
            if not m:
                continue
            k = int(m.group(1))
            if k <= CONST1:
                continue
            found += 1
            prev = None
            times, ups = [], []
            for t, value in var.signal:
                v = value if isinstance(value, int) else None
                if prev is not None and v is not None and v != prev:
                    times.append(t)
                    ups.append(v == 1)
                prev = v
            if not times:
                continue
            t_arr = np.asarray(times, dtype=float)
            up = np.asarray(ups, dtype=bool)
            if k not in clock_nets:
                # settled before each edge: nothing may switch in the guard band (after
                # the first edge: before it, the netlist leaves its unknown state)
                phase = np.mod(t_arr, period)
                hot = (t_arr > period) & (phase > period - guard)
                if hot.any():
                    at = float(t_arr[np.argmax(hot)] * ns_per_tick)
                    if late is None or at < late[0]:
                        late = (at, self.netlist.names[k])
            for i, (lo, hi) in enumerate(bounds):
                sel = (t_arr >= lo) & (t_arr < hi)
                rises[i, k] = np.count_nonzero(sel & up)
                falls[i, k] = np.count_nonzero(sel & ~up)
        if not found:
            raise ToolFailed(f"waveform {vcd} has no net of the netlist; log: {log}")
        if late is not None:
            raise ToolFailed(f"timing simulation: net {late[1]} switches at {late[0]:.3f} ns, "
                             f"within {GUARD:.0%} of a period before a clock edge: the "
                             f"period of {self.period:g} ns is too short; log: {log}")
        return rises, falls
