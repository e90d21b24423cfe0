"""Design spaces: knobs and their values, the flow target, and the workloads, from TOML.

A space file::

    name = "example"

    [knobs]                      # every combination is a design point
    arch = ["booth", "fixed"]    # "fixed" is the non-configurable twin
    p = [1, 2]
    tn = [2, 4]
    clock_ns = [5.0]             # synthesis clock target

    [target]
    kind = "asic"                # asic | ecp5 | ice40
    # liberty = "/path/to/cells.lib"

    [[workloads]]                # a convolution layer at several precisions
    name = "conv3x3"
    layer = {c = 16, m = 16, h = 8, w = 8, k = 3, stride = 1, padding = 1}
    bits = [16, 8, 4]            # activation = weight bits; activations unsigned unless
    act_signed = false           # act_signed = true

    [[workloads]]                # a network at one or more bit configurations
    name = "resnet18"
    network = "resnet18"         # a built-in network, a .json or a .onnx file
    bits = ["latency0.5"]

Knobs not given keep the value of the ``base`` preset (default ``rcm-small``).
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..conv import ConvShape
from ..errors import UserError
from ..tile_config import TileConfig

__all__ = ["KNOBS", "Point", "Space", "Workload", "load_space"]

#: Knob → how it is set on the tile configuration ("mac." for the MAC's fields).
KNOBS = {
    "arch": "mac.arch", "width": "mac.width", "lanes": "mac.lanes", "pipeline": "mac.pipeline",
    "p": "p", "tm": "tm", "tn": "tn", "tr": "tr", "tc": "tc", "k_max": "k_max",
    "s_max": "s_max", "act_depth": "act_depth", "weight_depth": "weight_depth",
    "tm_per_p": None, "clock_ns": None,
}
_TARGETS = ("asic", "ecp5", "ice40")


@dataclass(frozen=True)
class Workload:
    """A layer at some precisions, or a network at some bit configurations."""

    name: str
    layer: ConvShape | None = None
    network: str | None = None
    bits: tuple[Any, ...] = ()
    act_signed: bool = False

    def precisions(self) -> tuple[str, ...]:
        return tuple(str(b) for b in self.bits)


@dataclass(frozen=True)
class Point:
    """One design point: its knob values, its configuration, and the synthesis clock."""

    knobs: dict[str, Any]
    config: TileConfig
    clock_ns: float | None

    @property
    def configurable(self) -> bool:
        return not self.config.is_fixed


@dataclass(frozen=True)
class Space:
    name: str
    knobs: dict[str, list[Any]]
    base: str
    target: str
    liberty: str | None
    workloads: tuple[Workload, ...]
    source: Path | None = None

    def combinations(self) -> list[dict[str, Any]]:
        names = list(self.knobs)
        return [dict(zip(names, values, strict=True))
                for values in itertools.product(*(self.knobs[n] for n in names))]

    def point(self, knobs: dict[str, Any]) -> Point:
        """The design point of a knob combination; ``ValueError`` (the reason) if it is
        not a legal one."""
        from ..presets import preset

        config = preset(self.base)
        mac = config.mac
        changes: dict[str, Any] = {}
        mac_changes: dict[str, Any] = {}
        for name, value in knobs.items():
            field = KNOBS[name]
            if field is None:
                continue
            if field.startswith("mac."):
                mac_changes[field[4:]] = tuple(value) if name == "lanes" else value
            else:
                changes[field] = value
        if mac_changes.get("arch", mac.arch) == "fixed":
            mac_changes["lanes"] = (1,)
        if "tm_per_p" in knobs:
            changes["tm"] = knobs["tm_per_p"] * changes.get("p", config.p)
        elif "p" in changes and "tm" not in changes and config.tm % changes["p"]:
            changes["tm"] = changes["p"]
        try:
            new_mac = mac.replace(**mac_changes)
            cfg = config.replace(mac=new_mac, **changes)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        return Point(dict(knobs), cfg, knobs.get("clock_ns"))


def _fail(src: str, message: str) -> UserError:
    return UserError(f"--space {src!r}: {message}")


def _workload(src: str, i: int, data: Any) -> Workload:
    where = f"workload {i}"
    if not isinstance(data, dict):
        raise _fail(src, f"{where} must be a table")
    allowed = {"name", "layer", "network", "bits", "act_signed"}
    unknown = set(data) - allowed
    if unknown:
        raise _fail(src, f"{where} key must be one of {', '.join(sorted(allowed))}, not "
                         f"{sorted(unknown)[0]!r}")
    name = data.get("name", f"workload{i}")
    where = f"workload {i} ({name!r})"
    if ("layer" in data) == ("network" in data):
        raise _fail(src, f"{where} must have exactly one of layer and network")
    act_signed = data.get("act_signed", False)
    if not isinstance(act_signed, bool):
        raise _fail(src, f"{where} act_signed must be true or false, not {act_signed!r}")
    bits = data.get("bits")
    from_file = "network" in data and str(data["network"]).endswith((".json", ".onnx"))
    if from_file:
        if bits is not None:
            raise _fail(src, f"{where} takes its bit widths from {data['network']!r}; "
                             "remove bits")
        bits = ["file"]
    if not isinstance(bits, list) or not bits:
        raise _fail(src, f"{where} bits must be a non-empty list")
    if "layer" in data:
        if not isinstance(data["layer"], dict):
            raise _fail(src, f"{where} layer must be a table of c, m, h, w, k, stride, padding")
        try:
            shape = ConvShape(**data["layer"])
        except TypeError as exc:
            raise _fail(src, f"{where} layer: {exc}") from None
        except ValueError as exc:
            raise _fail(src, f"{where} layer: {exc}") from None
        for b in bits:
            if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 16:
                raise _fail(src, f"{where} bits must be integers from 1 to 16, not {b!r}")
        return Workload(name, layer=shape, bits=tuple(bits), act_signed=act_signed)
    from ..workloads import load_network

    for b in bits:  # a bad network or bit configuration is reported now, not mid-sweep
        load_network(data["network"], None if from_file else b)
    return Workload(name, network=data["network"], bits=tuple(bits), act_signed=act_signed)


def load_space(path: str | Path) -> Space:
    """Read and check a space file; :class:`UserError` (one line) for anything wrong."""
    p = Path(path)
    src = str(p)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"--space {src!r}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"--space {src!r}: is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--space {src!r}: not valid TOML ({exc})") from None
    allowed = {"name", "base", "knobs", "target", "workloads"}
    unknown = set(data) - allowed
    if unknown:
        raise _fail(src, f"key must be one of {', '.join(sorted(allowed))}, not "
                         f"{sorted(unknown)[0]!r}")
    knobs = data.get("knobs")
    if not isinstance(knobs, dict) or not knobs:
        raise _fail(src, "[knobs] must list at least one knob")
    for name, values in knobs.items():
        if name not in KNOBS:
            raise _fail(src, f"knob must be one of {', '.join(KNOBS)}, not {name!r}")
        if not isinstance(values, list):
            raise _fail(src, f"knob {name} must be a list of values, not {values!r}")
        if not values:
            raise _fail(src, f"knob {name} has an empty list of values")
    base = data.get("base", "rcm-small")
    from ..presets import PRESETS, preset

    if base not in PRESETS or preset(base).kind != "tile":
        raise _fail(src, f"base must be a tile preset, not {base!r}")
    target = data.get("target", {})
    if not isinstance(target, dict) or set(target) - {"kind", "liberty"}:
        raise _fail(src, "[target] takes kind and liberty")
    kind = target.get("kind", "asic")
    if kind not in _TARGETS:
        raise _fail(src, f"target kind must be one of {', '.join(_TARGETS)}, not {kind!r}")
    liberty = target.get("liberty")
    if liberty is not None:
        from ..flows.liberty import load_liberty

        load_liberty(liberty, option=f"--space {src!r}: target liberty")
    workloads = data.get("workloads")
    if not isinstance(workloads, list) or not workloads:
        raise _fail(src, "at least one [[workloads]] entry is required")
    wls = tuple(_workload(src, i, w) for i, w in enumerate(workloads))
    names = [w.name for w in wls]
    if len(set(names)) != len(names):
        raise _fail(src, "workload names must be unique")
    space = Space(data.get("name", p.stem), {k: list(v) for k, v in knobs.items()}, base, kind,
                  liberty, wls, p)
    reasons = {}
    legal = 0
    for combo in space.combinations():
        try:
            space.point(combo)
            legal += 1
        except ValueError as exc:
            reasons[str(exc)] = reasons.get(str(exc), 0) + 1
    if not legal:
        first = next(iter(reasons))
        raise _fail(src, f"no legal design point among {len(space.combinations())} "
                         f"combinations (e.g. {first})")
    return space
