"""Evaluate a combinational module on many input vectors in a compiled Verilator model.

The Amaranth simulator settles a multiplier a few hundred times a second in Python; an
exhaustive sweep of a W=8 multiplier (65,536 operand pairs per mode) takes minutes there and
well under a second compiled. The model is built once per Verilog source (cached by its hash)
and reads and writes flat files of 64-bit words, one per port per vector.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

import numpy as np

from rcm_gen.tools import cache_dir, python_package_version, verilator_env

__all__ = ["CombSweep"]

_MAIN = """\
#include <cstdint>
#include <cstdio>
#include "V{top}.h"
#include "verilated.h"

int main(int argc, char** argv) {{
    if (argc != 3) return 2;
    FILE* in = std::fopen(argv[1], "rb");
    FILE* out = std::fopen(argv[2], "wb");
    if (!in || !out) return 3;
    VerilatedContext ctx;
    V{top} dut(&ctx);
    uint64_t v[{n_in}];
    while (std::fread(v, sizeof(uint64_t), {n_in}, in) == {n_in}) {{
{assign}
        dut.eval();
        uint64_t r[{n_out}] = {{{read}}};
        std::fwrite(r, sizeof(uint64_t), {n_out}, out);
    }}
    std::fclose(in);
    std::fclose(out);
    return 0;
}}
"""


# Verilator's own runtime objects, and the optimisation levels of a build (a sweep runs a
# few hundred thousand evaluations: compile time matters more than run time)
_RUNTIME = ("verilated.o", "verilated_threads.o")
_OPT = ("OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")


class CombSweep:
    """A compiled model of combinational module ``top`` (inputs of at most 64 bits).

    ``outputs`` maps each output port to (width, signed) so that results come back as the
    integers the port's bits mean.
    """

    def __init__(self, verilog: str, top: str, inputs: Sequence[str],
                 outputs: Mapping[str, tuple[int, bool]]):
        for name, (width, _) in outputs.items():
            if width <= 0:
                raise ValueError(f"output {name!r} has width {width}; at least 1 expected")
        self.inputs = tuple(inputs)
        self.outputs = dict(outputs)
        key = hashlib.sha256(
            repr((verilog, top, self.inputs, sorted(self.outputs.items()))).encode()
        ).hexdigest()[:16]
        self._n_out = sum(self._words(w) for w, _ in self.outputs.values())
        self.dir = cache_dir() / "comb_sweep" / f"{top}-{key}"
        self.exe = self.dir / "obj" / "sweep"
        if not self.exe.exists():
            # one build per model even when several test workers want it at once
            lock = self.dir.with_name(self.dir.name + ".lock")
            lock.parent.mkdir(parents=True, exist_ok=True)
            with open(lock, "w") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                if not self.exe.exists():
                    self._build(verilog, top)

    @staticmethod
    def _words(width: int) -> int:
        """64-bit words an output takes in the result file (Verilator holds a port wider
        than 64 bits as 32-bit words)."""
        return 1 if width <= 64 else -(-width // 32)

    def _build(self, verilog: str, top: str) -> None:
        # built in a folder of its own and renamed into place: a model folder is whole or
        # absent
        final = self.dir
        self.dir = final.with_name(f"{final.name}.tmp{os.getpid()}")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        (self.dir / "dut.v").write_text(verilog)
        assign = "\n".join(f"        dut.{p} = v[{i}];" for i, p in enumerate(self.inputs))
        read = ", ".join(
            f"(uint64_t)dut.{p}" if w <= 64 else
            ", ".join(f"(uint64_t)dut.{p}[{k}]" for k in range(self._words(w)))
            for p, (w, _) in self.outputs.items())
        (self.dir / "main.cpp").write_text(_MAIN.format(
            top=top, n_in=len(self.inputs), n_out=self._n_out, assign=assign, read=read))
        env = verilator_env()
        cmd = ["verilator", "--cc", "--exe", "-Wno-fatal", "-Wno-lint", "--top-module", top,
               "--Mdir", "obj", "-o", "sweep", "--output-split", "0", "dut.v", "main.cpp"]
        res = subprocess.run(cmd, cwd=self.dir, env=env, capture_output=True, text=True)
        if res.returncode == 0:
            # Verilator's runtime objects are the same for every model: compiled once (most
            # of a build's time) and copied in, newer than their sources, so make keeps them
            runtime = cache_dir() / "comb_sweep" / f"runtime-{python_package_version('verilator')}"
            if runtime.is_dir():
                for obj in _RUNTIME:
                    shutil.copy(runtime / obj, self.dir / "obj" / obj)
            res = subprocess.run(["make", "-s", "-f", f"V{top}.mk", *_OPT], cwd=self.dir / "obj",
                                 env=env, capture_output=True, text=True)
            if res.returncode == 0 and not runtime.is_dir():
                staging = runtime.with_name(f"runtime.tmp{os.getpid()}")
                staging.mkdir(parents=True, exist_ok=True)
                for obj in _RUNTIME:
                    shutil.copy(self.dir / "obj" / obj, staging / obj)
                try:
                    staging.rename(runtime)
                except OSError:
                    shutil.rmtree(staging, ignore_errors=True)
        exe = self.dir / "obj" / "sweep"
        if res.returncode != 0 or not exe.exists():
            raise RuntimeError(f"verilator build of {top} failed:\n{res.stdout}\n{res.stderr}")
        try:
            self.dir.rename(final)
        except OSError:  # another process finished the same model first
            shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = final

    def __call__(self, **values: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs for the vectors ``values`` (one array per input port, equal lengths;
        scalars broadcast)."""
        arrays = np.broadcast_arrays(*(np.asarray(values[p]) for p in self.inputs))
        words = np.stack([a.astype(np.uint64) for a in arrays], axis=1)
        run = self.dir / f"run-{np.random.default_rng().integers(1 << 62):x}"
        run.mkdir()
        try:
            (run / "in.bin").write_bytes(np.ascontiguousarray(words).tobytes())
            subprocess.run([str(self.exe), str(run / "in.bin"), str(run / "out.bin")],
                           check=True)
            raw = np.fromfile(run / "out.bin", dtype=np.uint64).reshape(-1, self._n_out)
        finally:
            for f in run.iterdir():
                f.unlink()
            run.rmdir()
        if len(raw) != len(words):
            raise RuntimeError(f"sweep returned {len(raw)} of {len(words)} vectors")
        result = {}
        i = 0
        for name, (width, signed) in self.outputs.items():
            if width <= 64:
                col = raw[:, i].astype(object)
                i += 1
            else:
                col = np.zeros(len(raw), dtype=object)
                for k in range(self._words(width)):
                    col += (raw[:, i].astype(object) & 0xFFFFFFFF) << (32 * k)
                    i += 1
            col &= (1 << width) - 1
            if signed:
                col = np.where(col >= (1 << (width - 1)), col - (1 << width), col)
            result[name] = col.astype(np.int64) if width <= 64 else col
        return result
