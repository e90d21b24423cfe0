"""Macro libraries: memory macros (SRAMs) described by a data file, their liberties and LEFs.

A macro library is a folder with a ``library.toml`` that names the technology and corner,
the standard-cell libraries the macros go with, the port roles of the macros' pins, and
per macro its words, bits, write-mask granularity, liberty and LEF.  What the data file
does not say is read from the macros' own files: each cell's area and pins (names,
directions, widths, clocks) from its liberty with a Liberty parser (PyPI
``liberty-parser``), its size from its LEF, and the corner (``nom_voltage``,
``nom_temperature``) from the liberty's library group, which must agree with the data
file.  Every macro is a 1RW + 1R SRAM with active-low selects and write enable whose
inputs are sampled on the rising clock edge and whose read data is ready one cycle later
(specified against the falling edge, not held): OpenRAM's kind.

The shipped libraries are folders of ``rcm_gen/flows/data`` (:data:`SHIPPED_LIBRARIES`);
a user's library is given by the path of its ``library.toml``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..tools import write_if_changed

__all__ = [
    "MEMORY_KINDS",
    "PORT_ROLES",
    "SHIPPED_LIBRARIES",
    "Macro",
    "MacroLibrary",
    "find_macro_library",
    "instantiated_macros",
    "load_macro_library",
    "macro_library_file",
    "model_verilog",
    "write_models",
]

#: Macro libraries shipped in ``rcm_gen/flows/data/<name>/library.toml``.
SHIPPED_LIBRARIES = ("sky130_sram",)
#: Memory bindings a configuration may name (besides the name of a macro): flip-flops,
#: latches (a standard-cell memory), macros, or per buffer the best of those (see
#: :mod:`rcm_gen.gateware.memory`).
MEMORY_KINDS = ("ff", "latch", "sram", "auto")

#: Port roles of a 1RW + 1R macro -> (direction, what sets the width).  Port 0 (``rw_``)
#: reads and writes, port 1 (``r_``) reads.
PORT_ROLES: dict[str, tuple[str, str]] = {
    "rw_clk": ("input", "clock"),
    "rw_csb": ("input", "1"),
    "rw_web": ("input", "1"),
    "rw_wmask": ("input", "mask"),
    "rw_addr": ("input", "addr"),
    "rw_din": ("input", "bits"),
    "rw_dout": ("output", "bits"),
    "r_clk": ("input", "clock"),
    "r_csb": ("input", "1"),
    "r_addr": ("input", "addr"),
    "r_dout": ("output", "bits"),
}


@dataclass(frozen=True)
class Macro:
    """One memory macro: ``words`` × ``bits``, its area (liberty) and size (LEF), and the
    pin of each port role (:data:`PORT_ROLES`) with its width."""

    name: str
    words: int
    bits: int
    write_mask_bits: int
    area_um2: float
    size_um: tuple[float, float]
    pins: tuple[tuple[str, str, int], ...]  # (role, pin, width)
    liberty: Path
    lef: Path

    @property
    def addr_bits(self) -> int:
        return max(1, (self.words - 1).bit_length())

    @property
    def mask_width(self) -> int:
        return self.bits // self.write_mask_bits

    def pin(self, role: str) -> str:
        return next(p for r, p, _ in self.pins if r == role)

    def width(self, role: str) -> int:
        return next(w for r, _, w in self.pins if r == role)


@dataclass(frozen=True)
class MacroLibrary:
    """A set of macros of one technology and corner (see the module docstring)."""

    name: str
    technology: str
    corner: str
    voltage: float
    temperature: float
    stdcell_libraries: tuple[str, ...]
    ff_bit_area_um2: float
    macros: tuple[Macro, ...]
    source: Path

    def macro(self, name: str) -> Macro:
        for m in self.macros:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def macro_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.macros)

    @property
    def liberties(self) -> tuple[Path, ...]:
        return tuple(m.liberty for m in self.macros)

    def describe(self) -> str:
        return (f"{self.technology}, {self.corner}, {self.voltage:g} V, "
                f"{self.temperature:g} C")

    def mismatch(self, stdcell: str, voltage: float | None, temperature: float | None
                 ) -> str | None:
        """Why the standard-cell library ``stdcell`` (its liberty library name, nominal
        voltage and temperature) cannot be used with these macros, or ``None`` if it can."""
        if not any(fnmatch.fnmatchcase(stdcell, p) for p in self.stdcell_libraries):
            return (f"is not a {self.technology} library "
                    f"({', '.join(self.stdcell_libraries)})")
        if voltage is None or temperature is None:
            return "states no nom_voltage and nom_temperature"
        if not math.isclose(voltage, self.voltage, abs_tol=1e-6) \
                or not math.isclose(temperature, self.temperature, abs_tol=1e-6):
            return f"is at {voltage:g} V, {temperature:g} C"
        return None


def macro_library_file(name: str) -> Path:
    """The ``library.toml`` of a shipped macro library."""
    return Path(str(resources.files("rcm_gen.flows").joinpath("data", name, "library.toml")))


def _resolve(name: str, option: str) -> Path:
    if name in SHIPPED_LIBRARIES:
        return macro_library_file(name)
    path = Path(name)
    if path.suffix == ".toml":
        if not path.is_file():
            raise UserError(f"{option} {name!r}: file not found")
        return path.resolve()
    raise UserError(f"{option} must be one of {', '.join(SHIPPED_LIBRARIES)} or a macro "
                    f"library file (.toml), not {name!r}")


def load_macro_library(name: str, option: str = "macros") -> MacroLibrary:
    """Read and check the macro library ``name`` (a shipped library or the path of a
    ``library.toml``).

    Raises
    ------
    UserError
        Naming ``option`` and the library: a missing or malformed file, or a macro whose
        liberty lacks the cell, its area, or a pin of a port role with the right
        direction and width, or whose corner differs from the data file's.
    """
    path = _resolve(name, option)
    return _load(path, path.stat().st_mtime_ns, option)


@functools.lru_cache(maxsize=16)
def _load(path: Path, _mtime: int, option: str) -> MacroLibrary:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{option} {str(path)!r}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{option} {str(path)!r}: not valid TOML ({exc})") from None
    where = f"macro library {str(data.get('name', path))!r}"

    def need(table: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise UserError(f"{where}: {what} {key} must be {_kind_name(kind)}, not "
                            f"{value!r}")
        return value

    name = need(data, "name", str, "key")
    technology = need(data, "technology", str, "key")
    corner = need(data, "corner", str, "key")
    voltage = float(need(data, "voltage", (int, float), "key"))
    temperature = float(need(data, "temperature", (int, float), "key"))
    patterns = need(data, "stdcell_libraries", list, "key")
    ff_bit = float(need(data, "ff_bit_area_um2", (int, float), "key"))
    if ff_bit <= 0:
        raise UserError(f"{where}: key ff_bit_area_um2 must be greater than 0, not {ff_bit!r}")
    ports = need(data, "ports", dict, "key")
    macros_data = need(data, "macros", list, "key")
    if not macros_data:
        raise UserError(f"{where}: no macros")
    macros = []
    for entry in macros_data:
        if not isinstance(entry, dict):
            raise UserError(f"{where}: each macro must be a table, not {entry!r}")
        mname = need(entry, "name", str, "macro key")
        mwhere = f"{where}, macro {mname!r}"
        words = need(entry, "words", int, f"macro {mname!r} key")
        bits = need(entry, "bits", int, f"macro {mname!r} key")
        mask = need(entry, "write_mask_bits", int, f"macro {mname!r} key")
        if words < 2 or bits < 1 or mask < 1 or bits % mask:
            raise UserError(f"{mwhere}: words, bits and write_mask_bits must be at least "
                            f"2, 1 and 1 with bits a multiple of write_mask_bits, not "
                            f"{words}, {bits}, {mask}")
        roles = {**ports, **entry.get("ports", {})}
        missing = [r for r in PORT_ROLES if not isinstance(roles.get(r), str)]
        if missing:
            raise UserError(f"{mwhere}: no pin named for port role {missing[0]}")
        lib_file = path.parent / need(entry, "liberty", str, f"macro {mname!r} key")
        lef_file = path.parent / need(entry, "lef", str, f"macro {mname!r} key")
        cell = _liberty_cell(lib_file, mname, mwhere, voltage, temperature)
        size = _lef_size(lef_file, mname, mwhere)
        addr_bits = max(1, (words - 1).bit_length())
        widths = {"clock": 1, "1": 1, "mask": bits // mask, "addr": addr_bits, "bits": bits}
        pins = []
        for role, (direction, sized_by) in PORT_ROLES.items():
            pin = roles[role]
            if pin not in cell["pins"]:
                raise UserError(f"{mwhere}: liberty {lib_file.name!r} has no pin {pin!r} "
                                f"(port role {role})")
            pdir, pwidth, is_clock = cell["pins"][pin]
            if pdir != direction or pwidth != widths[sized_by]:
                raise UserError(f"{mwhere}: pin {pin!r} (port role {role}) must be an "
                                f"{direction} of {widths[sized_by]} bits, not an {pdir} of "
                                f"{pwidth}")
            if sized_by == "clock" and not is_clock:
                raise UserError(f"{mwhere}: pin {pin!r} (port role {role}) is not a clock "
                                "in the liberty")
            pins.append((role, pin, pwidth))
        macros.append(Macro(mname, words, bits, mask, cell["area"], size, tuple(pins),
                            lib_file, lef_file))
    return MacroLibrary(name, technology, corner, voltage, temperature,
                        tuple(str(p) for p in patterns), ff_bit, tuple(macros), path)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a table"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _liberty_cell(path: Path, name: str, where: str, voltage: float, temperature: float
                  ) -> dict[str, Any]:
    """Area and pins (name -> (direction, width, is clock)) of cell ``name`` in ``path``."""
    from liberty.parser import parse_liberty  # a real parser; imported only when needed

    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{where}: cannot read liberty {str(path)!r} ({exc.strerror})"
                        ) from None
    try:
        lib = parse_liberty(text)
    except Exception as exc:  # the parser raises its own (lark) errors
        raise UserError(f"{where}: liberty {path.name!r} cannot be parsed "
                        f"({type(exc).__name__})") from None
    corner = (lib.get("nom_voltage"), lib.get("nom_temperature"))
    if corner != (None, None) and (
            not math.isclose(float(corner[0]), voltage, abs_tol=1e-6)
            or not math.isclose(float(corner[1]), temperature, abs_tol=1e-6)):
        raise UserError(f"{where}: liberty {path.name!r} is at {float(corner[0]):g} V, "
                        f"{float(corner[1]):g} C, not {voltage:g} V, {temperature:g} C")
    cells = [c for c in lib.get_groups("cell") if c.args and str(c.args[0]) == name]
    if not cells:
        raise UserError(f"{where}: liberty {path.name!r} has no cell {name!r}")
    cell = cells[0]
    area = cell.get("area")
    try:
        area = float(area)
    except (TypeError, ValueError):
        area = 0.0
    if not area > 0:
        raise UserError(f"{where}: cell {name!r} in liberty {path.name!r} has no area")
    types = {str(t.args[0]): int(t.get("bit_width")) for t in lib.get_groups("type")
             if t.args and t.get("bit_width") is not None}
    pins: dict[str, tuple[str, int, bool]] = {}
    for group in cell.groups:
        if group.group_name not in ("pin", "bus") or not group.args:
            continue
        pname = str(group.args[0])
        direction = str(group.get("direction") or "")
        width = 1
        if group.group_name == "bus":
            width = types.get(str(group.get("bus_type")), 0)
        is_clock = str(group.get("clock") or "").lower() == "true"
        pins[pname] = (direction, width, is_clock)
    return {"area": area, "pins": pins}


def _lef_size(path: Path, name: str, where: str) -> tuple[float, float]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{where}: cannot read LEF {str(path)!r} ({exc.strerror})") from None
    block = re.search(rf"^\s*MACRO\s+{re.escape(name)}\s*$(.*?)^\s*END\s+{re.escape(name)}\b",
                      text, re.M | re.S)
    size = block and re.search(r"^\s*SIZE\s+([0-9.]+)\s+BY\s+([0-9.]+)\s*;", block.group(1),
                               re.M)
    if not size:
        raise UserError(f"{where}: LEF {path.name!r} has no SIZE for macro {name!r}")
    return float(size.group(1)), float(size.group(2))


def find_macro_library(stdcell: str, voltage: float | None, temperature: float | None
                       ) -> MacroLibrary | None:
    """The first shipped macro library that goes with the standard-cell library
    ``stdcell`` at ``voltage`` and ``temperature``, if any."""
    for name in SHIPPED_LIBRARIES:
        lib = load_macro_library(name)
        if lib.mismatch(stdcell, voltage, temperature) is None:
            return lib
    return None


def model_verilog(macro: Macro) -> str:
    """A behavioural Verilog model of ``macro``, written from its pins.

    Inputs are sampled on the rising clock edge; writes land (per enabled byte of the
    mask) and reads complete at the falling edge; ``dout`` goes unknown just after every
    rising edge and is valid from the falling edge on, so a reader that expects it to
    hold while reads are paused is caught; port 1 reading the word port 0 writes in the
    same cycle gives an unknown word.  Unknown is ``x`` in four-state simulators and
    random bits under Verilator (two-state), where an ``x`` would be read as a constant.
    """
    p = {role: macro.pin(role) for role in PORT_ROLES}
    bits, abits, mwidth, mbits = macro.bits, macro.addr_bits, macro.mask_width, \
        macro.write_mask_bits
    chunks = (bits + 31) // 32
    rand = "{" + ", ".join(["$urandom"] * chunks) + "}"

    def vec(width: int) -> str:
        return f"[{width - 1}:0] " if width > 1 else ""

    writes = "\n".join(
        f"      if ({p['rw_wmask']}_r[{i}]) mem[{p['rw_addr']}_r][{i * mbits + mbits - 1}:"
        f"{i * mbits}] <= {p['rw_din']}_r[{i * mbits + mbits - 1}:{i * mbits}];"
        if mwidth > 1 else
        f"      if ({p['rw_wmask']}_r) mem[{p['rw_addr']}_r] <= {p['rw_din']}_r;"
        for i in range(mwidth))
    return f"""// Behavioural model of {macro.name}: {macro.words} words x {bits} bits,
// port 0 read/write with a {mwidth}-bit write mask, port 1 read-only.  Written by rcm_gen
// from the macro's liberty pins; see rcm_gen.flows.macros.model_verilog.
module {macro.name} (
  input {p['rw_clk']},
  input {p['rw_csb']},
  input {p['rw_web']},
  input {vec(mwidth)}{p['rw_wmask']},
  input [{abits - 1}:0] {p['rw_addr']},
  input [{bits - 1}:0] {p['rw_din']},
  output reg [{bits - 1}:0] {p['rw_dout']},
  input {p['r_clk']},
  input {p['r_csb']},
  input [{abits - 1}:0] {p['r_addr']},
  output reg [{bits - 1}:0] {p['r_dout']}
);
  reg [{bits - 1}:0] mem [0:{macro.words - 1}];
  reg {p['rw_csb']}_r, {p['rw_web']}_r, {p['r_csb']}_r;
  reg {vec(mwidth)}{p['rw_wmask']}_r;
  reg [{abits - 1}:0] {p['rw_addr']}_r, {p['r_addr']}_r;
  reg [{bits - 1}:0] {p['rw_din']}_r;
`ifdef VERILATOR
  reg [{32 * chunks - 1}:0] unknown_r;
  wire [{bits - 1}:0] unknown = unknown_r[{bits - 1}:0];
  always @({p['rw_clk']} or {p['r_clk']}) unknown_r = {rand};
`else
  wire [{bits - 1}:0] unknown = {{{bits}{{1'bx}}}};
`endif
  // port 0: inputs sampled at the rising edge, dout unknown until the falling edge, when
  // the write lands or the read completes
  always @(posedge {p['rw_clk']}) begin
    {p['rw_csb']}_r <= {p['rw_csb']};
    {p['rw_web']}_r <= {p['rw_web']};
    {p['rw_wmask']}_r <= {p['rw_wmask']};
    {p['rw_addr']}_r <= {p['rw_addr']};
    {p['rw_din']}_r <= {p['rw_din']};
  end
  always @(posedge {p['rw_clk']} or negedge {p['rw_clk']}) begin
    if ({p['rw_clk']}) begin
      {p['rw_dout']} <= unknown;
    end else if (!{p['rw_csb']}_r && {p['rw_web']}_r) begin
      {p['rw_dout']} <= mem[{p['rw_addr']}_r];
    end
  end
  always @(negedge {p['rw_clk']}) begin
    if (!{p['rw_csb']}_r && !{p['rw_web']}_r) begin
{writes}
    end
  end
  // port 1: the same, read only; the word port 0 writes in this cycle reads as unknown
  always @(posedge {p['r_clk']}) begin
    {p['r_csb']}_r <= {p['r_csb']};
    {p['r_addr']}_r <= {p['r_addr']};
  end
  always @(posedge {p['r_clk']} or negedge {p['r_clk']}) begin
    if ({p['r_clk']}) begin
      {p['r_dout']} <= unknown;
    end else if (!{p['r_csb']}_r) begin
      if (!{p['rw_csb']}_r && !{p['rw_web']}_r && {p['rw_addr']}_r == {p['r_addr']}_r)
        {p['r_dout']} <= unknown;
      else
        {p['r_dout']} <= mem[{p['r_addr']}_r];
    end
  end
endmodule
"""


def instantiated_macros(verilog: str, libraries: tuple[str, ...] = ()) -> list[Macro]:
    """The macros of the shipped libraries (and of ``libraries``, names or paths) that
    ``verilog`` instantiates, in name order."""
    found: dict[str, Macro] = {}
    for name in (*SHIPPED_LIBRARIES, *libraries):
        for macro in load_macro_library(name).macros:
            if re.search(rf"^\s*{re.escape(macro.name)}\s", verilog, re.M):
                found.setdefault(macro.name, macro)
    return [found[n] for n in sorted(found)]


def write_models(verilog: str, folder: str | Path,
                 libraries: tuple[str, ...] = ()) -> list[Path]:
    """Write the behavioural model of each memory macro (of the shipped libraries and of
    ``libraries``) and each FPGA primitive (:mod:`rcm_gen.gateware.primitives`) that
    ``verilog`` instantiates to ``folder/<name>.v``, only when its text changed (so that
    simulators do not rebuild); the paths, macros first."""
    from ..gateware.primitives import MODELS, instantiated_primitives

    texts = [(m.name, model_verilog(m)) for m in instantiated_macros(verilog, libraries)]
    texts += [(name, MODELS[name]) for name in instantiated_primitives(verilog)]
    return [write_if_changed(Path(folder) / f"{name}.v", text) for name, text in texts]
