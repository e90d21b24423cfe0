"""Named design points, configuration files, and ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import MacConfig
from .errors import UserError
from .tile.config import TILE_PRESETS, TileConfig

__all__ = [
    "PRESETS",
    "apply_overrides",
    "config_from_dict",
    "load_config_file",
    "preset",
]

_MAC16 = MacConfig(width=16, lanes=(1, 2, 4), arch="booth")
_MAC16_FUSION = _MAC16.replace(arch="fusion", lanes=(1, 2, 4, 8))

#: name → (description, factory)
PRESETS: dict[str, tuple[str, Callable[[], Any]]] = {
    "mac16": ("ST MAC, W=16, lanes 1/2/4, radix-4 Booth", lambda: _MAC16),
    "mac16-ppa": ("ST MAC, W=16, lanes 1/2/4, partial-product array",
                  lambda: _MAC16.replace(arch="ppa")),
    "mac16-fixed": ("fixed 16x16 baseline MAC", lambda: _MAC16.fixed_twin()),
    "mac8": ("ST MAC, W=8, lanes 1/2/4, radix-4 Booth", lambda: _MAC16.replace(width=8)),
    "mac8-fixed": ("fixed 8x8 baseline MAC", lambda: _MAC16.replace(width=8).fixed_twin()),
    "mac16-dsp": ("ST MAC, W=16, lanes 1/2/4, two narrow multipliers (FPGA DSP blocks), "
                  "2 pipeline stages", lambda: _MAC16.replace(arch="dsp", pipeline=2)),
    "mac8-dsp": ("ST MAC, W=8, lanes 1/2/4, two narrow multipliers (FPGA DSP blocks), "
                 "2 pipeline stages", lambda: _MAC16.replace(width=8, arch="dsp", pipeline=2)),
    "mac16-fusion": ("fusion MAC, W=16, 2-bit bricks, activation x weight bits 16/8/4/2 "
                     "each (16 modes)", lambda: _MAC16_FUSION),
    "mac16-fusion-b4": ("fusion MAC, W=16, 4-bit bricks, activation x weight bits 16/8/4 "
                        "each (9 modes)",
                        lambda: _MAC16_FUSION.replace(brick=4, lanes=(1, 2, 4))),
    "mac8-fusion": ("fusion MAC, W=8, 2-bit bricks, activation x weight bits 8/4/2 each "
                    "(9 modes)", lambda: _MAC16_FUSION.replace(width=8, lanes=(1, 2, 4))),
    **TILE_PRESETS,
}

_KINDS: dict[str, Any] = {"mac": MacConfig, "tile": TileConfig}


def preset(name: str) -> Any:
    """The configuration of preset ``name``."""
    if name not in PRESETS:
        raise ValueError(f"Preset must be one of {', '.join(PRESETS)}, not {name!r}")
    return PRESETS[name][1]()


def config_from_dict(data: Any) -> Any:
    """A configuration object from its ``to_dict`` form (dispatching on ``kind``)."""
    kinds = _KINDS
    if not isinstance(data, dict):
        raise TypeError(f"Configuration must be a JSON object, not {type(data).__name__}")
    kind = data.get("kind")
    if kind not in kinds:
        raise ValueError(f"Configuration kind must be one of {', '.join(kinds)}, not {kind!r}")
    return kinds[kind].from_dict(data)


def load_config_file(path: str | os.PathLike[str]) -> Any:
    """Read a JSON configuration file; :class:`UserError` if missing or malformed."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"--config {str(p)!r}: file not found") from None
    except OSError as exc:
        raise UserError(f"--config {str(p)!r}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--config {str(p)!r}: not valid JSON ({exc.msg} at line "
                        f"{exc.lineno})") from None
    try:
        return config_from_dict(data)
    except (TypeError, ValueError) as exc:
        raise UserError(f"--config {str(p)!r}: {exc}") from None


def _parse_value(text: str, field_type: Any) -> Any:
    origin = typing.get_origin(field_type)
    if origin is tuple or field_type is tuple:
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return [int(p) if p.lstrip("-").isdigit() else p for p in parts]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_one(config: Any, path: list[str], text: str, full_key: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(config)}
    head = path[0]
    if head not in fields:
        raise ValueError(
            f"Configuration key must be one of {', '.join(fields)}, not {full_key!r}")
    hints = typing.get_type_hints(type(config))
    current = getattr(config, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"Configuration key {head!r} has no sub-keys, not {full_key!r}")
        return config.replace(**{head: _set_one(current, path[1:], text, full_key)})
    if dataclasses.is_dataclass(current):
        raise ValueError(
            f"Configuration key {full_key!r} is a group; set one of its keys "
            f"({', '.join(f.name for f in dataclasses.fields(current))}) as "
            f"{full_key}.KEY=VALUE")
    return config.replace(**{head: _parse_value(text, hints[head])})


def apply_overrides(config: Any, sets: list[str]) -> Any:
    """Apply ``key=value`` overrides (``mac.arch=ppa`` reaches into a nested config).

    Values are JSON (``16``, ``null``, ``[1,2]``) or bare strings; list keys also take
    ``1,2,4``.  Raises ``ValueError``/``TypeError`` naming the key and value.
    """
    for item in sets:
        if "=" not in item:
            raise ValueError(f"--set must be KEY=VALUE, not {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        try:
            config = _set_one(config, key.split("."), text.strip(), key)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"--set {item}: {exc}") from None
    return config
