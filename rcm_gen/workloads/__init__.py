"""Workloads: networks with per-layer bit widths, and mapping them onto a design point."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .networks import Layer, Network, load_network_json
from .resnet18 import BIT_CONFIGS, resnet18

__all__ = ["KNOWN_NETWORKS", "Layer", "Network", "load_network"]

#: Built-in networks and their bit configurations.
KNOWN_NETWORKS = {"resnet18": BIT_CONFIGS}


def load_network(spec: str, bits: str | None = None, bits_file: str | None = None) -> Network:
    """A built-in network (``resnet18`` with bit configuration ``bits``), a network JSON
    file, or an ONNX model (bit widths from ``bits_file`` or the ``.bits.json`` beside
    it); :class:`UserError` naming what is wrong and what is known."""
    if spec in KNOWN_NETWORKS:
        if bits_file:
            raise UserError(f"--bits-file applies to ONNX models, not the built-in {spec!r}")
        bits = bits or "uniform8"
        if bits not in KNOWN_NETWORKS[spec]:
            raise UserError(f"--bits must be one of {', '.join(KNOWN_NETWORKS[spec])} for "
                            f"{spec}, not {bits!r}")
        return resnet18(bits)
    suffix = Path(spec).suffix.lower()
    if suffix in (".json", ".onnx"):
        if bits:
            raise UserError(f"--bits applies to the built-in networks "
                            f"({', '.join(KNOWN_NETWORKS)}); {spec!r} carries its own widths")
        if suffix == ".json":
            if bits_file:
                raise UserError("--bits-file applies to ONNX models; a network JSON file "
                                "carries its own widths")
            return load_network_json(spec)
        from .onnx_import import load_onnx

        return load_onnx(spec, bits_file)
    raise UserError(f"--network must be one of {', '.join(KNOWN_NETWORKS)}, a .json file or "
                    f"a .onnx file, not {spec!r}")
