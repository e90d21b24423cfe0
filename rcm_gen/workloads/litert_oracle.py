"""LiteRT as the oracle: run a TFLite model with the interpreter's reference kernels and keep
every tensor — in a child process, so that a kernel that aborts (LiteRT's int8 SOFTMAX does
when the sum of its exponentials reaches 512) costs one line naming the operator, not the
run.

The reference kernels (``OpResolverType.BUILTIN_REF``) are the definition of TFLite's
integer semantics; the default resolver hands convolutions to XNNPACK or optimized kernels,
which are allowed to round differently, so they are never used here.

When the child dies inside ``invoke``, the operator that killed it is found by running the
model cut after operator k (:func:`rcm_gen.workloads.tflite_write.cut_after`) for a
bisection of k: the first cut that dies ends at the culprit.  The tensors of the longest cut
that ran are kept, so everything before the crash is still compared.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

__all__ = ["LiteRTCrash", "LiteRTOracle"]

_WORKER = ("import sys; from rcm_gen.workloads.litert_oracle import _serve; "
           "_serve(sys.argv[1])")


class LiteRTCrash(Exception):
    """LiteRT died while running a model.

    Members
    -------
    op_index : int or None
        The operator it died in (execution order), ``None`` if it could not be found.
    opcode : str
    reason : str
        How it died (the signal, and the last line LiteRT wrote).
    tensors : dict
        Every tensor of the longest prefix of the model that ran (index → array).
    """

    def __init__(self, op_index: int | None, opcode: str, reason: str,
                 tensors: dict[int, np.ndarray]) -> None:
        self.op_index, self.opcode, self.reason, self.tensors = (op_index, opcode, reason,
                                                                 tensors)
        where = (f"operator {op_index} ({opcode})" if op_index is not None
                 else "an unknown operator")
        super().__init__(f"LiteRT (reference kernels) aborted in {where}: {reason}")


def _serve(path: str) -> None:
    """The child: load ``path``, then answer requests (pickled input arrays on stdin) with
    every tensor (pickled dict on stdout) until stdin closes."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the protocol stream
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        interp = Interpreter(model_path=path,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                             experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
        details = interp.get_tensor_details()
        first_input = interp.get_input_details()[0]["index"]
    except (ValueError, RuntimeError) as exc:
        text = str(exc).strip()
        pickle.dump(("error", text.splitlines()[0] if text else type(exc).__name__), out)
        out.flush()
        return
    pickle.dump(("ok", [{k: d[k] for k in ("index", "name", "shape", "dtype",
                                           "quantization_parameters")} for d in details]),
                out)
    out.flush()
    indices = [d["index"] for d in details]
    stdin = sys.stdin.buffer
    while True:
        try:
            x = pickle.load(stdin)
        except EOFError:
            return
        try:
            interp.set_tensor(first_input, x)
            interp.invoke()
        except (ValueError, RuntimeError) as exc:
            text = str(exc).strip()
            pickle.dump(("error", text.splitlines()[0] if text else type(exc).__name__), out)
            out.flush()
            continue
        tensors = {}
        for i in indices:
            try:
                tensors[i] = np.array(interp.get_tensor(i), copy=True)
            except ValueError:  # a tensor without data (an omitted optional input)
                continue
        pickle.dump(tensors, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


class _Child:
    """One worker process on one model file."""

    def __init__(self, path: str) -> None:
        self.log = tempfile.TemporaryFile()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER, path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, env=env)
        self.hello = self._read()

    def _read(self) -> Any:
        try:
            return pickle.load(self.proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            return None

    def run(self, x: np.ndarray) -> dict[int, np.ndarray] | None:
        """Every tensor, or ``None`` when the child died."""
        try:
            pickle.dump(np.asarray(x), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self._read()

    def reason(self) -> str:
        """How the child died: its signal or exit status and its last line of output."""
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.seek(0)
        lines = [ln.strip() for ln in self.log.read().decode("utf-8", "replace").splitlines()
                 if ln.strip()]
        how = (f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}")
        return how + (f" ({lines[-1][:200]})" if lines else "")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class LiteRTOracle:
    """A LiteRT interpreter on one model, with reference kernels and every intermediate
    tensor preserved, in a child process.

    Parameters
    ----------
    path : str or Path
        The ``.tflite`` file.

    Raises
    ------
    UserError
        When LiteRT cannot load or prepare the model.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._child: _Child | None = None
        self._start()
        self._details = self._child.hello[1]

    def _start(self) -> None:
        child = _Child(self.path)
        if child.hello is None:
            reason = child.reason()
            child.close()
            raise UserError(f"--model {self.path!r}: LiteRT cannot load it ({reason})")
        if child.hello[0] == "error":
            child.close()
            raise UserError(f"--model {self.path!r}: LiteRT cannot load it "
                            f"({child.hello[1]})")
        self._child = child

    def tensor_details(self) -> list[dict[str, Any]]:
        """LiteRT's ``get_tensor_details()`` (index, name, shape, dtype, quantization)."""
        return self._details

    def run(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Invoke the model on input ``x``; every tensor (constants included) by index.

        Raises
        ------
        LiteRTCrash
            When LiteRT dies in the run (the worker is restarted for the next one).
        """
        if self._child is None:
            self._start()
        out = self._child.run(x)
        if isinstance(out, tuple):
            raise UserError(f"--model {self.path!r}: LiteRT refused the run ({out[1]})")
        if out is not None:
            return out
        reason = self._child.reason()
        self._child.close()
        self._child = None
        raise self._locate(x, reason)

    def _locate(self, x: np.ndarray, reason: str) -> LiteRTCrash:
        """Bisect the model's prefixes for the first that dies on ``x``."""
        from tflite.utils import BUILTIN_OPCODE2NAME

        from .tflite_write import cut_after, read_model

        buf = Path(self.path).read_bytes()
        model = read_model(buf)
        ops = model.subgraphs[0].operators
        lo, hi = 0, len(ops) - 1  # the whole model dies; find the first prefix that does
        good: dict[int, np.ndarray] = {}
        with tempfile.TemporaryDirectory(prefix="rcm_litert_") as tmp:
            while lo < hi:
                mid = (lo + hi) // 2
                cut = Path(tmp) / f"cut{mid}.tflite"
                cut.write_bytes(cut_after(buf, mid))
                child = _Child(str(cut))
                result = child.run(x) if child.hello and child.hello[0] == "ok" else None
                if result is None:
                    reason = child.reason()
                    hi = mid
                else:
                    good, lo = result, mid + 1
                child.close()
        oc = model.operatorCodes[ops[lo].opcodeIndex]
        code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
        return LiteRTCrash(lo, BUILTIN_OPCODE2NAME.get(code, f"builtin {code}"), reason, good)

    def close(self) -> None:
        """End the worker process."""
        if self._child is not None:
            self._child.close()
            self._child = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown)
            pass
