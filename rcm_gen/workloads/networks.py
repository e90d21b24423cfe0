"""Networks as lists of convolution layers with per-layer bit widths, and loading a user's
own network from JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..conv import ConvShape
from ..errors import UserError

__all__ = ["LAYER_KEYS", "Layer", "Network", "load_network_json"]

#: Keys of one layer in a network JSON file.
LAYER_KEYS = ("name", "c", "m", "h", "w", "k", "stride", "padding", "act_bits",
              "weight_bits", "act_signed")
_SHAPE_KEYS = ("c", "m", "h", "w", "k", "stride", "padding")


def _bits(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Layer {name} must be an integer, not {value!r}")
    if not 1 <= value <= 16:
        raise ValueError(f"Layer {name} must be from 1 to 16, not {value!r}")


@dataclass(frozen=True)
class Layer:
    """One convolution of a network, with its operands' bit widths.

    Parameters
    ----------
    name : str
        Unique within the network.
    shape : ConvShape
        The convolution (a fully connected layer is a 1×1 convolution on a 1×1 input).
    act_bits, weight_bits : int
        Bits of the activations and weights (1 to 16); weights are signed.
    act_signed : bool
        Whether the activations are signed.
    """

    name: str
    shape: ConvShape
    act_bits: int
    weight_bits: int
    act_signed: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Layer name must be a non-empty string, not {self.name!r}")
        if not isinstance(self.shape, ConvShape):
            raise TypeError(f"Layer shape must be a ConvShape, not {self.shape!r}")
        _bits("act_bits", self.act_bits)
        _bits("weight_bits", self.weight_bits)
        if not isinstance(self.act_signed, bool):
            raise TypeError(f"Layer act_signed must be true or false, not {self.act_signed!r}")

    @property
    def macs(self) -> int:
        return self.shape.macs

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: getattr(self.shape, k) for k in _SHAPE_KEYS},
                "act_bits": self.act_bits, "weight_bits": self.weight_bits,
                "act_signed": self.act_signed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layer:
        unknown = [k for k in data if k not in LAYER_KEYS]
        if unknown:
            raise ValueError(f"layer key must be one of {', '.join(LAYER_KEYS)}, "
                             f"not {unknown[0]!r}")
        missing = [k for k in LAYER_KEYS if k not in data and k not in ("stride", "padding",
                                                                          "act_signed")]
        if missing:
            raise ValueError(f"layer key {missing[0]!r} is missing")
        shape = ConvShape(**{k: data[k] for k in _SHAPE_KEYS if k in data})
        return cls(data["name"], shape, data["act_bits"], data["weight_bits"],
                   data.get("act_signed", False))


@dataclass(frozen=True)
class Network:
    """A named sequence of layers (names unique)."""

    name: str
    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError(f"Network {self.name!r} must have at least one layer")
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise ValueError(f"Layer names must be unique, not {layer.name!r} twice")
            seen.add(layer.name)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layers": [layer.to_dict() for layer in self.layers]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "network") -> Network:
        if isinstance(data, list):
            name, items = default_name, data
        elif isinstance(data, dict):
            unknown = [k for k in data if k not in ("name", "layers")]
            if unknown:
                raise ValueError(f"network key must be name or layers, not {unknown[0]!r}")
            if "layers" not in data:
                raise ValueError("network key 'layers' is missing")
            name, items = data.get("name", default_name), data["layers"]
            if not isinstance(name, str):
                raise TypeError(f"network name must be a string, not {name!r}")
        else:
            raise TypeError("network must be a list of layers or an object with 'layers', "
                            f"not {type(data).__name__}")
        if not isinstance(items, list):
            raise TypeError(f"network layers must be a list, not {type(items).__name__}")
        layers = []
        for i, item in enumerate(items):
            label = (f"layer {i} ({item.get('name')!r})" if isinstance(item, dict)
                     and "name" in item else f"layer {i}")
            if not isinstance(item, dict):
                raise TypeError(f"{label} must be an object, not {type(item).__name__}")
            try:
                layers.append(Layer.from_dict(item))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{label}: {exc}") from None
        return cls(name, tuple(layers))


def load_network_json(path: str | Path) -> Network:
    """A network from a JSON file; :class:`UserError` naming the file, the layer, the key,
    the value and what is allowed."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"--network {str(p)!r}: file not found") from None
    except OSError as exc:
        raise UserError(f"--network {str(p)!r}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--network {str(p)!r}: not valid JSON ({exc.msg} at line "
                        f"{exc.lineno})") from None
    try:
        return Network.from_dict(data, default_name=p.stem)
    except (TypeError, ValueError) as exc:
        raise UserError(f"--network {str(p)!r}: {exc}") from None
