"""ResNet-18 at 224×224 with the HAWQ-V3 per-layer bit configurations.

Signedness: the stem's input is the normalized image, which is signed; every other layer's
input comes out of a ReLU (through max-pooling, the residual add and ReLU, or average
pooling for the fc layer), so it is non-negative and runs as unsigned activations — which is
what lets an 8-bit or 4-bit unsigned activation use its whole range.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ..conv import ConvShape
from .networks import Layer, Network

__all__ = ["ASYMMETRIC", "BIT_CONFIGS", "resnet18", "resnet18_shapes"]


def resnet18_shapes() -> list[tuple[str, ConvShape]]:
    """Every convolution of ResNet-18 at 224×224, in order, and fc as a 1×1 convolution;
    names in HAWQ-V3's notation (stem, s1.u1.c1, ..., s2.u1.ds, ..., fc)."""
    out = [("stem", ConvShape(c=3, m=64, h=224, w=224, k=7, stride=2, padding=3))]
    size, channels = 56, 64  # after the stem (112x112) and the 3x3/2 max-pool
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        first_stride = 1 if stage == 1 else 2
        out_size = size // first_stride
        for unit in (1, 2):
            stride = first_stride if unit == 1 else 1
            cin = channels if unit == 1 else width
            hin = size if unit == 1 else out_size
            out.append((f"s{stage}.u{unit}.c1",
                        ConvShape(c=cin, m=width, h=hin, w=hin, k=3, stride=stride, padding=1)))
            out.append((f"s{stage}.u{unit}.c2",
                        ConvShape(c=width, m=width, h=out_size, w=out_size, k=3, stride=1,
                                  padding=1)))
            if unit == 1 and stage > 1:
                out.append((f"s{stage}.u1.ds",
                            ConvShape(c=channels, m=width, h=size, w=size, k=1, stride=2)))
        size, channels = out_size, width
    out.append(("fc", ConvShape(c=512, m=1000, h=1, w=1, k=1)))
    return out


@cache
def _hawq() -> dict[str, Any]:
    text = resources.files("rcm_gen.workloads").joinpath("data/resnet18_hawq_v3.json")
    return json.loads(text.read_text())


def _four_bit(config: str) -> set[str]:
    spec = _hawq()["configs"][config]["four_bit"]
    if spec == "all but stem and fc":
        return {name for name, _ in resnet18_shapes() if name not in ("stem", "fc")}
    return set(spec)


#: Asymmetric configurations: (activation bits, weight bits) of every layer but the stem
#: and fc, which stay 8-bit (as HAWQ-V3 keeps them).
ASYMMETRIC = {"w4a8": (8, 4), "w8a4": (4, 8)}


def _bit_configs() -> dict[str, str]:
    """Known configuration names → the HAWQ-V3 entry they use (or fixed16, or an
    asymmetric one).  ``<entry>-a8`` is a HAWQ-V3 entry's weight bits with 8-bit
    activations throughout."""
    names = {name: name for name in _hawq()["configs"]}
    for name, alias in _hawq()["aliases"].items():
        names[alias] = name
    for name in list(names):
        names[f"{name}-a8"] = f"{names[name]}-a8"
    names["fixed16"] = "fixed16"
    for name in ASYMMETRIC:
        names[name] = name
    return names


BIT_CONFIGS: tuple[str, ...] = tuple(_bit_configs())


def resnet18(bits: str = "uniform8") -> Network:
    """ResNet-18 with bit configuration ``bits`` (one of :data:`BIT_CONFIGS`)."""
    configs = _bit_configs()
    if bits not in configs:
        raise ValueError(f"ResNet-18 bit configuration must be one of {', '.join(configs)}, "
                         f"not {bits!r}")
    entry = configs[bits]
    layers = []
    if entry in ASYMMETRIC:
        for name, shape in resnet18_shapes():
            a, w = (8, 8) if name in ("stem", "fc") else ASYMMETRIC[entry]
            layers.append(Layer(name, shape, a, w, act_signed=name == "stem"))
        return Network(f"resnet18-{bits}", tuple(layers))
    act8 = entry.endswith("-a8")
    entry = entry.removesuffix("-a8")
    four = set() if entry == "fixed16" else _four_bit(entry)
    for name, shape in resnet18_shapes():
        b = 16 if entry == "fixed16" else (4 if name in four else 8)
        layers.append(Layer(name, shape, 8 if act8 else b, b, act_signed=name == "stem"))
    return Network(f"resnet18-{bits}", tuple(layers))
