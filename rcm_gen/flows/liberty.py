"""Liberty cell libraries: reading (plain or gzip), checking, and finding the cells a flow
needs (tie cells, a driving cell)."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..tools import cache_dir

__all__ = ["Cell", "Liberty", "load_liberty"]


@dataclass(frozen=True)
class Cell:
    name: str
    area: float
    inputs: tuple[str, ...]
    outputs: dict[str, str] = field(default_factory=dict)  # pin -> function


@dataclass(frozen=True)
class Liberty:
    """A cell library ready for the tools: ``path`` is a plain-text copy."""

    source: Path
    path: Path
    name: str
    cells: dict[str, Cell]
    #: ``nom_voltage`` and ``nom_temperature`` of the library group (``None`` if absent)
    voltage: float | None = None
    temperature: float | None = None

    @property
    def corner(self) -> tuple[str, float | None, float | None]:
        """(library name, nominal voltage, nominal temperature): what decides which macro
        libraries go with it."""
        return self.name, self.voltage, self.temperature

    def tie_cells(self) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
        """(cell, pin) driving constant 1 and constant 0, if the library has them."""
        hi = lo = None
        for cell in sorted(self.cells.values(), key=lambda c: c.area):
            if cell.inputs:
                continue
            for pin, fn in sorted(cell.outputs.items()):
                f = fn.strip().strip('"').replace("1'b", "")
                if f == "1" and hi is None:
                    hi = (cell.name, pin)
                elif f == "0" and lo is None:
                    lo = (cell.name, pin)
        return hi, lo

    def smallest_buffer(self) -> str | None:
        """Smallest one-input cell whose output function is that input."""
        best = None
        for cell in self.cells.values():
            if len(cell.inputs) == 1 and len(cell.outputs) == 1:
                fn = next(iter(cell.outputs.values())).strip().strip('"').strip("()")
                if fn == cell.inputs[0] and (best is None or cell.area < best.area):
                    best = cell
        return best.name if best else None


_CELL = re.compile(r'\bcell\s*\(\s*"?([^")\s]+)"?\s*\)\s*\{')
_PIN = re.compile(r'\bpin\s*\(\s*"?([^")\s]+)"?\s*\)\s*\{')
_AREA = re.compile(r'\barea\s*:\s*([0-9.eE+-]+)')
_DIR = re.compile(r'\bdirection\s*:\s*"?(\w+)"?')
_FUNC = re.compile(r'\bfunction\s*:\s*"([^"]*)"')


def _block_end(text: str, open_brace: int) -> int:
    depth = 0
    for i in range(open_brace, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def _scan(text: str) -> dict[str, Cell]:
    cells: dict[str, Cell] = {}
    pos = 0
    while True:
        m = _CELL.search(text, pos)
        if not m:
            break
        end = _block_end(text, m.end() - 1)
        body = text[m.end():end]
        area_m = _AREA.search(body)
        inputs, outputs = [], {}
        p = 0
        while True:
            pm = _PIN.search(body, p)
            if not pm:
                break
            pend = _block_end(body, pm.end() - 1)
            pbody = body[pm.end():pend]
            # only the pin's own attributes, not those of nested timing groups
            head = pbody.split("timing", 1)[0]
            d = _DIR.search(head)
            if d and d.group(1) == "input":
                inputs.append(pm.group(1))
            elif d and d.group(1) == "output":
                f = _FUNC.search(head)
                outputs[pm.group(1)] = f.group(1) if f else ""
            p = pend + 1
        cells[m.group(1)] = Cell(m.group(1), float(area_m.group(1)) if area_m else 0.0,
                                 tuple(inputs), outputs)
        pos = end + 1
    return cells


def load_liberty(path: str | os.PathLike[str], option: str = "--liberty") -> Liberty:
    """Read and check a liberty file (plain or ``.gz``); :class:`UserError` naming the
    option and the file if it is missing, unreadable or not a liberty library."""
    src = Path(path)
    if not src.is_file():
        raise UserError(f"{option} {str(src)!r}: file not found")
    try:
        raw = src.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode(
            "utf-8", errors="replace")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"{option} {str(src)!r}: cannot read ({exc})") from None
    lib = re.search(r'^\s*library\s*\(\s*"?([^")\s]+)"?\s*\)\s*\{', text[:200000], re.M)
    if not lib:
        raise UserError(f"{option} {str(src)!r}: not a liberty library (no "
                        "'library (NAME) {' group)")
    cells = _scan(text)
    if not cells:
        raise UserError(f"{option} {str(src)!r}: liberty library {lib.group(1)!r} has no cells")
    if raw[:2] == b"\x1f\x8b":
        digest = hashlib.sha256(raw).hexdigest()[:16]
        plain = cache_dir() / "liberty" / f"{digest}-{src.name.removesuffix('.gz')}"
        if not plain.exists():
            plain.parent.mkdir(parents=True, exist_ok=True)
            tmp = plain.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, plain)
    else:
        plain = src.resolve()
    nominal = []
    for key in ("nom_voltage", "nom_temperature"):
        found = re.search(rf"^\s*{key}\s*:\s*([-+0-9.eE]+)\s*;", text[:200000], re.M)
        nominal.append(float(found.group(1)) if found else None)
    return Liberty(src, plain, lib.group(1), cells, *nominal)
