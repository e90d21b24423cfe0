"""A cycle-based, zero-delay gate-level simulator with per-net toggle counts, for netlists
too large for an event-driven simulator's build (a tile of 100,000 cells takes Verilator
tens of minutes to build with toggle coverage; this takes seconds).

The netlist becomes data for one C program (compiled once, whatever the netlist): every
net and every storage bit a byte, every cell output a truth table of its liberty
``function`` (or ``state_function``) over its input pins and its cell's state, in
topological order, in blocks of 64 with a bit per cell.  A cell output is evaluated only
when one of its inputs changed since its last evaluation, a flip-flop takes its data at
its clock's edge only when its inputs or its state changed since it last did (most of a
tile is idle in most cycles, all the more with gated clocks), and only the nets that
changed are counted.  Nothing is compiled per netlist: the build is writing the data.

Storage:

- a flip-flop (liberty ``ff``) is clocked by its own clock net: it takes its
  ``next_state`` when that net makes the edge of its ``clocked_on`` expression, from its
  inputs as they were just before that edge; ``clear``/``preset`` are levels evaluated
  with the logic.  Its clock net must come from the clock port, through any logic
  (buffers, inverters, integrated clock-gating cells, latch-and-AND gates): that logic
  is evaluated first at each clock edge, then every flip-flop whose clock net made its
  edge takes its data, then the rest of the netlist settles; a clock net that changes
  while the logic settles clocks its flip-flops then.  A gated clock that stays low
  clocks nothing and does not toggle;
- a latch (liberty ``latch``, and a ``statetable`` that describes one, such as the
  latch inside SkyWater's integrated clock-gating cell ``dlclkp``) is level-sensitive
  state evaluated with the logic: transparent while enabled.  Logic that loops through
  transparent latches is evaluated again until it settles; a netlist that does not settle
  is refused at run time, naming a net that keeps changing;
- an SRAM macro of a macro library behaves as :func:`rcm_gen.flows.macros.model_verilog`
  (inputs sampled at the rising edge of the clock port, reads and writes completing at
  its falling edge), with its accesses counted.

Each cycle is evaluated as the testbench of :mod:`rcm_gen.sim.gate_level` runs it on a
zero-delay simulator: the clock falls and the cycle's inputs are applied together, the
netlist settles; the clock rises, the netlist settles; a net whose value after a settle
differs from its value after the previous one made one transition (rise or fall), so the
counts are those of Verilator's toggle coverage on the same stimulus (tests check this,
with gated clocks and latch memories too).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import ToolFailed, UserError
from ..flows.liberty import Liberty
from ..flows.netlist import (
    CONST0,
    CONST1,
    FlatNetlist,
)
from ..tools import cache_dir, require_executable
from .gate_program import MAX_INPUTS, MacroPorts, build_program
from .gate_run import GateRun, check_run

__all__ = ["MAX_INPUTS", "CycleSim", "MacroPorts"]

#: The simulator program's C source (compiled once, whatever the netlist).
_ENGINE = (Path(__file__).parent / "gate_engine.c").read_text()


class CycleSim:
    """The compiled simulation of ``netlist`` (cells of ``lib``; SRAM ``macros``), clocked
    by input port ``clock``; the interface of :class:`rcm_gen.sim.gate_level.GateSim`.

    The C program is built once in ``<cache>/gatesim/engine-<hash>``; the netlist's data
    lives in ``<cache>/gatesim/<hash>/cycle``.  ``access_counts`` of a run hold, per
    window, the accesses of every macro port (``read``/``write`` of port 0, ``read`` of
    port 1), in the order of ``macros``.

    Raises
    ------
    UserError
        A cell this simulator does not model (three-state output, a statetable that is
        not a latch, a function of more than :data:`MAX_INPUTS` inputs), a flip-flop whose
        clock does not come from ``clock``, a combinational loop not through a latch; at
        run time, a netlist that does not settle.
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
        self._prog = build_program(netlist, lib, clock, self.macros, self.inputs, self.outputs,
                              sample == "before")
        #: Size of the simulation data (bytes).
        self.program_bytes = len(self._prog.blob)
        digest = hashlib.sha256(_ENGINE.encode() + self._prog.blob).hexdigest()[:16]
        self.dir = cache_dir() / "gatesim" / digest / "cycle"

    # -- build ----------------------------------------------------------------------------

    @staticmethod
    def engine() -> Path:
        """The simulator program (compiled once, the same for every netlist)."""
        cc = require_executable(os.environ.get("CC", "cc"))
        flags = ["-O2", "-std=c99"]
        digest = hashlib.sha256((_ENGINE + " ".join([cc, *flags])).encode()).hexdigest()[:16]
        d = cache_dir() / "gatesim" / f"engine-{digest}"
        exe = d / "sim"
        if exe.exists():
            return exe
        d.mkdir(parents=True, exist_ok=True)
        src = d / f"sim.{os.getpid()}.c"
        src.write_text(_ENGINE)
        tmp = d / f"sim.{os.getpid()}.tmp"
        log = d / "build.log"
        with open(log, "w") as f:
            proc = subprocess.run([cc, *flags, "-o", str(tmp), str(src)], stdout=f,
                                  stderr=subprocess.STDOUT, cwd=d)
        if proc.returncode != 0 or not tmp.exists():
            raise ToolFailed(f"the C compiler could not build the cycle simulator; log: {log}")
        os.replace(tmp, exe)
        src.replace(d / "sim.c")
        return exe

    def build(self) -> Path:
        """Build the simulator (once) and write the netlist's data; the program."""
        exe = self.engine()
        d = self.dir
        data = d / "net.bin"
        if not data.exists():
            d.mkdir(parents=True, exist_ok=True)
            tmp = d / f"net.{os.getpid()}.tmp"
            tmp.write_bytes(self._prog.blob)
            os.replace(tmp, data)
        return exe

    # -- run ------------------------------------------------------------------------------

    def run(self, inputs: dict[str, np.ndarray], windows: Sequence[tuple[int, int]],
            tag: str = "run", on_progress: Callable[[int, int], None] | None = None
            ) -> GateRun:
        """As :meth:`rcm_gen.sim.gate_level.GateSim.run`; the result also has the macros'
        ``access_counts`` (windows × 3·macros).

        Raises
        ------
        UserError
            The netlist does not settle (a loop through transparent latches), naming a
            net that kept changing.
        """
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
            proc = subprocess.Popen([str(exe), str(self.dir / "net.bin"), str(stim),
                                     str(run / "windows.txt"), str(out), str(run)],
                                    stdout=f, stderr=subprocess.STDOUT, cwd=run)
            while proc.poll() is None:
                if on_progress is not None and out.exists():
                    on_progress(min(out.stat().st_size // max(n_out, 1), cycles), cycles)
                time.sleep(0.1)
        if on_progress is not None:
            on_progress(cycles, cycles)
        if proc.returncode == 4:
            text = log.read_text(errors="replace").split()
            k = int(text[text.index("unsettled") + 1]) if "unsettled" in text else -1
            name = self._prog.names[k] if 0 <= k < len(self._prog.names) else "?"
            raise UserError(f"the netlist of {self.netlist.top} does not settle: net "
                            f"{name!r} keeps changing (a loop through transparent latches)")
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
        n_v = len(self._prog.names)
        at = self._prog.index_of_net
        rises = np.zeros((len(windows), n))
        falls = np.zeros((len(windows), n))
        accesses = np.zeros((len(windows), 3 * len(self.macros)))
        need = 2 * n_v + max(3 * len(self.macros), 1)
        for i, (a, _) in enumerate(windows):
            path = run / f"win_{a}.bin"
            try:
                data = np.fromfile(path, dtype=np.uint32)
            except OSError:
                raise ToolFailed(f"the cycle simulation wrote no toggle counts for window "
                                 f"{i}; log: {log}") from None
            if data.size != need:
                raise ToolFailed(f"toggle counts of window {i} ({path}) have {data.size} "
                                 f"values, not {need}; log: {log}")
            rises[i] = data[:n_v][at]
            falls[i] = data[n_v:2 * n_v][at]
            accesses[i] = data[2 * n_v:2 * n_v + 3 * len(self.macros)]
        for k in (CONST0, CONST1):
            rises[:, k] = falls[:, k] = 0
        return GateRun(outputs, rises, falls, self.simulator, time.perf_counter() - started,
                       log, accesses)
