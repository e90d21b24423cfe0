"""LiteRT as the oracle: run a TFLite model with the interpreter's reference kernels and keep
every tensor.

The reference kernels (``OpResolverType.BUILTIN_REF``) are the definition of TFLite's
integer semantics; the default resolver hands convolutions to XNNPACK or optimized kernels,
which are allowed to round differently, so they are never used here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError

__all__ = ["LiteRTOracle"]


class LiteRTOracle:
    """A LiteRT interpreter on one model, with reference kernels and every intermediate
    tensor preserved.

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
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = str(path)
        try:
            self._interpreter = Interpreter(
                model_path=self.path,
                experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                experimental_preserve_all_tensors=True)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--model {self.path!r}: LiteRT cannot load it ({first})") from None
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._indices = [d["index"] for d in self._interpreter.get_tensor_details()]

    def run(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """Invoke the model on input ``x``; every tensor (constants included) by index."""
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        out = {}
        for i in self._indices:
            try:
                out[i] = np.array(self._interpreter.get_tensor(i), copy=True)
            except ValueError:  # a tensor without data (an omitted optional input)
                continue
        return out
