"""Energy of a memory macro per access: read, write, and a deselected cycle, per port.

A macro library (:mod:`rcm_gen.flows.macros`) says what its macros cost per access in the
``[energy]`` table of its ``library.toml``, in one of two ways:

- **given energies** — per macro, ``read_energy``, ``write_energy`` and
  ``deselected_energy`` as strings with an energy unit (``"6.1 pJ"``; ``fJ``, ``pJ`` or
  ``nJ``), e.g. from OpenRAM's own characterizer or from measurements, with ``source``
  saying where they come from;
- **the analytical model** (``model = "analytical"``), a switched-capacitance model of a
  6T/8T SRAM in the manner of CACTI, whose parameters the table gives and whose
  assumptions it states (:class:`SramModel`).  Per access of one port of a macro of
  ``words`` × ``bits`` with ``words_per_row`` words on a row (the column mux), the array
  has ``rows = words / words_per_row`` rows and ``cols = bits · words_per_row`` columns:

  - a **read** swings every column's bitline of that port by ``read_swing_v`` and
    precharges it back (``V · ΔV · C_bl`` per column, ``C_bl = rows · c_cell + c_col``),
    raises and lowers one wordline (``V² · cols · c_wl``), decodes the address
    (``e_decode`` per address bit), fires ``bits`` sense amplifiers (``e_sense`` each)
    and runs the port's control (``e_control``: replica bitline, delay chain, enables);
  - a **write** drives ``bits`` columns full swing (``V² · C_bl`` each) while the other
    ``cols − bits`` columns of the row see a read's swing, plus the wordline, decoder,
    write drivers (``e_write_driver`` per bit) and control;
  - every **cycle**, selected or not, the port's input registers are clocked
    (``e_register`` per register bit: address, and for the read/write port data, write
    mask, select and write enable): that is the deselected energy, the macro's leakage
    aside.

Leakage is the macro liberty's (it is a power, in the liberty's unit).  The OpenRAM
liberties' ``internal_power`` values are not used: they are OpenRAM's analytical power
figures in mW (their unit is not an energy), identical for read, write and deselected.

Every figure is per access of one port, in pJ; :func:`macro_energies` returns them for
each macro of a library, and :func:`check_energy_table` refuses a table whose energies
are missing or not energies.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["MacroEnergy", "SramModel", "macro_energies", "parse_energy"]

#: Energy units a library may give, in pJ.
_UNITS = {"fj": 1e-3, "pj": 1.0, "nj": 1e3}


def parse_energy(text: Any, where: str) -> float:
    """``"6.1 pJ"`` → 6.1 (pJ); :class:`UserError` naming ``where`` for anything that is
    not a non-negative number with an energy unit (fJ, pJ, nJ)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]+)\s*",
                     text) if isinstance(text, str) else None
    if not m or m.group(2).lower() not in _UNITS:
        raise UserError(f"{where} must be an energy with its unit (e.g. \"6.1 pJ\"; units "
                        f"fJ, pJ, nJ), not {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


@dataclass(frozen=True)
class SramModel:
    """Parameters of the analytical model (see the module documentation); capacitances
    in fF, energies in fJ, swing in V."""

    c_cell: float
    c_col: float
    c_wl: float
    read_swing_v: float
    e_decode: float
    e_sense: float
    e_write_driver: float
    e_control: float
    e_register: float

    KEYS = ("bitline_cap_per_row_ff", "bitline_cap_per_column_ff",
            "wordline_cap_per_column_ff", "read_swing_v", "decoder_fj_per_address_bit",
            "sense_amp_fj", "write_driver_fj", "control_fj", "register_fj")

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> SramModel:
        values = []
        for key in cls.KEYS:
            v = table.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise UserError(f"{where}: [energy] {key} must be a number of at least 0, "
                                f"not {v!r}")
            values.append(float(v))
        return cls(*values)

    def access(self, words: int, bits: int, words_per_row: int, mask_bits: int,
               voltage: float) -> dict[str, dict[str, float]]:
        """Energy (pJ) of a read, a write and a deselected cycle of each port of a
        1RW + 1R macro, each with its parts."""
        rows = math.ceil(words / words_per_row)
        cols = bits * words_per_row
        addr = max(1, (words - 1).bit_length())
        fj = 1e-3  # fF·V² = fJ; to pJ
        c_bl = rows * self.c_cell + self.c_col
        bitline_read = voltage * self.read_swing_v * c_bl * cols * fj
        wordline = voltage ** 2 * cols * self.c_wl * fj
        decode = self.e_decode * addr * fj
        control = self.e_control * fj
        read = {"bitlines": bitline_read, "wordline": wordline, "decoder": decode,
                "sense_amps": self.e_sense * bits * fj, "control": control}
        write = {"bitlines": (voltage ** 2 * c_bl * bits
                              + voltage * self.read_swing_v * c_bl * (cols - bits)) * fj,
                 "wordline": wordline, "decoder": decode,
                 "write_drivers": self.e_write_driver * bits * fj, "control": control}
        regs_rw = addr + bits + bits // mask_bits + 2  # address, data, mask, select, we
        regs_r = addr + 1
        idle_rw = {"registers": self.e_register * regs_rw * fj}
        idle_r = {"registers": self.e_register * regs_r * fj}
        return {"rw_read": {**read, **idle_rw}, "rw_write": {**write, **idle_rw},
                "rw_deselected": idle_rw, "r_read": {**read, **idle_r},
                "r_deselected": idle_r}


@dataclass(frozen=True)
class MacroEnergy:
    """Per-access energies (pJ) of one macro: read and write of the read/write port,
    read of the read port, and a deselected cycle of each port; ``parts`` breaks each
    down (analytical model), ``source`` says where the figures come from."""

    macro: str
    rw_read: float
    rw_write: float
    rw_deselected: float
    r_read: float
    r_deselected: float
    source: str
    parts: dict[str, dict[str, float]]

    def scaled(self, factor: float) -> MacroEnergy:
        """The same macro with every access energy times ``factor`` (a sensitivity)."""
        return MacroEnergy(self.macro, self.rw_read * factor, self.rw_write * factor,
                           self.rw_deselected * factor, self.r_read * factor,
                           self.r_deselected * factor, f"{self.source} x {factor:g}",
                           {k: {p: v * factor for p, v in d.items()}
                            for k, d in self.parts.items()})

    def to_dict(self) -> dict[str, Any]:
        return {"macro": self.macro, "rw_read_pj": self.rw_read, "rw_write_pj": self.rw_write,
                "rw_deselected_pj": self.rw_deselected, "r_read_pj": self.r_read,
                "r_deselected_pj": self.r_deselected, "source": self.source,
                "parts_pj": self.parts}


def macro_energies(library: Any) -> dict[str, MacroEnergy]:
    """Per-access energies of every macro of ``library`` (a
    :class:`~rcm_gen.flows.macros.MacroLibrary`) from the ``[energy]`` table of its
    ``library.toml``.

    Raises
    ------
    UserError
        The table is missing, names no model and gives no energies for a macro, or gives
        a figure that is not an energy (naming the library, the macro and the key).
    """
    path = Path(library.source)
    where = f"macro library {library.name!r} ({path})"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{where}: cannot read ({exc})") from None
    table = data.get("energy")
    if not isinstance(table, dict):
        raise UserError(f"{where}: no [energy] table (per-access energies of its macros, "
                        "or the parameters of model = \"analytical\")")
    source = str(table.get("source", "")).strip()
    if not source:
        raise UserError(f"{where}: [energy] source must say where the energies come from")
    model_name = table.get("model")
    if model_name not in (None, "analytical"):
        raise UserError(f"{where}: [energy] model must be \"analytical\" or absent (energies "
                        f"given per macro), not {model_name!r}")
    model = SramModel.from_table(table, where) if model_name == "analytical" else None
    entries = {e.get("name"): e for e in data.get("macros", []) if isinstance(e, dict)}
    out = {}
    for macro in library.macros:
        entry = entries.get(macro.name, {})
        mwhere = f"{where}, macro {macro.name!r}"
        given = [k for k in ("read_energy", "write_energy", "deselected_energy")
                 if k in entry]
        if given:
            if len(given) != 3:
                missing = sorted({"read_energy", "write_energy", "deselected_energy"}
                                 - set(given))
                raise UserError(f"{mwhere}: {missing[0]} is missing (give read_energy, "
                                "write_energy and deselected_energy together)")
            read = parse_energy(entry["read_energy"], f"{mwhere}: read_energy")
            write = parse_energy(entry["write_energy"], f"{mwhere}: write_energy")
            idle = parse_energy(entry["deselected_energy"], f"{mwhere}: deselected_energy")
            out[macro.name] = MacroEnergy(macro.name, read, write, idle, read, idle, source,
                                          {})
            continue
        if model is None:
            raise UserError(f"{mwhere}: no read_energy, write_energy and deselected_energy, "
                            "and [energy] names no model")
        wpr = entry.get("words_per_row")
        if isinstance(wpr, bool) or not isinstance(wpr, int) or wpr < 1 \
                or macro.words % wpr:
            raise UserError(f"{mwhere}: words_per_row (its column mux) must be an integer "
                            f"dividing {macro.words}, not {wpr!r}")
        parts = model.access(macro.words, macro.bits, wpr, macro.write_mask_bits,
                             library.voltage)
        totals = {k: sum(v.values()) for k, v in parts.items()}
        out[macro.name] = MacroEnergy(macro.name, totals["rw_read"], totals["rw_write"],
                                      totals["rw_deselected"], totals["r_read"],
                                      totals["r_deselected"], source, parts)
    return out
