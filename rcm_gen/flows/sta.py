"""OpenSTA scripts and reports: the script that times a netlist on a liberty (with the
memory macros' and block models' liberties), and the parsers of its reports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ToolFailed
from .liberty import Liberty

__all__ = ["GATING_MARK", "gating_tcl", "parse_gating", "parse_macro_paths", "parse_sta",
           "sta_script", "worst_path"]

#: The line that opens the clock-gating checks of an OpenSTA log (:func:`gating_tcl`).
GATING_MARK = "rcm_gen: clock gating checks"


def gating_tcl(gating_cells: tuple[str, ...]) -> list[str]:
    """OpenSTA commands that report the worst clock-gating setup and hold checks: those
    OpenSTA infers where a clock and an enable meet in a gate (a latch-and-AND gate built
    from library cells), and the setup and hold checks of the enable pins of the
    integrated clock-gating cells ``gating_cells`` (``clock_gating_integrated_cell``: the
    library's own arcs)."""
    lines = [f'puts "{GATING_MARK}"',
             "report_check_types -clock_gating_setup -clock_gating_hold -verbose -digits 4"]
    for cell in gating_cells:
        lines += [f'set rcm_icg [get_cells -quiet -hierarchical -filter "ref_name == {cell}"]',
                  "if {[llength $rcm_icg]} { report_checks -path_delay min_max -digits 4 "
                  "-to [get_pins -of_objects $rcm_icg -filter \"direction == input\"] }"]
    lines.append(f'puts "{GATING_MARK} end"')
    return lines


def _paths(text: str) -> list[str]:
    """The path reports of a ``report_checks`` text, each from its ``Startpoint:``."""
    starts = [m.start() for m in re.finditer(r"^Startpoint:", text, re.M)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)][:len(starts)],
                                      strict=True)]


_NUM = r"(-?[0-9]+(?:\.[0-9]+)?)"


def worst_path(text: str) -> dict[str, Any] | None:
    """Startpoint, endpoint, data arrival and slack of the path with the least slack
    among the paths of an OpenSTA ``report_checks`` text (one per path group: the clock's
    and, with inferred clock gating, ``**clock_gating_default**``); ``None`` if none."""
    best = None
    for part in _paths(text):
        found = [re.search(p, part, re.M) for p in (
            r"^Startpoint:\s*(\S.*)$", r"^Endpoint:\s*(\S.*)$",
            rf"^\s*{_NUM}\s+data arrival time", rf"^\s*{_NUM}\s+slack")]
        if not all(found[:3]):
            continue
        path = {"startpoint": found[0].group(1).strip(), "endpoint": found[1].group(1).strip(),
                "arrival_ns": float(found[2].group(1)),
                "slack_ns": float(found[3].group(1)) if found[3] else None}
        # a path without a slack stands only where no path has one
        if best is None or (path["slack_ns"] is not None and (
                best["slack_ns"] is None or path["slack_ns"] < best["slack_ns"])):
            best = path
    return best


def parse_gating(text: str) -> dict[str, Any] | None:
    """The worst clock-gating setup and hold checks of the section :func:`gating_tcl`
    wrote in an OpenSTA log (``setup``/``hold``: startpoint, endpoint, arrival and slack,
    ``None`` where there is no such check); ``None`` if the log has no such section."""
    start = text.find(GATING_MARK)
    if start < 0:
        return None
    end = text.find(GATING_MARK + " end", start)
    part = text[start:end if end >= 0 else len(text)]
    out: dict[str, Any] = {"setup": None, "hold": None}
    for kind, path_type in (("setup", "max"), ("hold", "min")):
        chosen = [p for p in _paths(part)
                  if "clock gating-check end-point" in p
                  and re.search(rf"^Path Type:\s*{path_type}\b", p, re.M)]
        out[kind] = worst_path("".join(chosen))
    return out


def sta_script(cons: dict[str, Any], lib: Liberty, netlist: Path, top: str,
                driving_cell: str | None, macro_liberties: tuple[Path, ...] = (),
                macro_names: tuple[str, ...] = (), clock: str = "clk",
                model_liberties: tuple[Path, ...] = (),
                gating_cells: tuple[str, ...] | None = None) -> str:
    """The OpenSTA script that times ``netlist``; with ``gating_cells`` (a tuple, empty
    for a gate built from library cells; ``None`` without clock gating) it reports the
    clock-gating checks too (:func:`gating_tcl`)."""
    inputs = f"[delete_from_list [all_inputs] [get_ports {clock}]]"
    lines = [
        f"read_liberty {lib.path}",
        # the memory macros' own liberties: their pins' timing, so that paths into and
        # out of the macros are timed
        *(f"read_liberty {path.resolve()}" for path in macro_liberties),
        # block timing models: a model's input-to-output arc beside a clock-to-output arc
        # and a setup check on that input is not a latch
        *(f"read_liberty -no_latch_infer {path.resolve()}" for path in model_liberties),
        f"read_verilog {netlist}",
        f"link_design {top}",
        f"create_clock -name clk -period {cons['clock_ns']} [get_ports {clock}]",
        f"set_input_delay {cons['input_delay_ns']} -clock clk {inputs}",
        f"set_output_delay {cons['output_delay_ns']} -clock clk [all_outputs]",
        f"set_load {cons['output_load']} [all_outputs]",
    ]
    if driving_cell:
        lines.append(f"set_driving_cell -lib_cell {driving_cell} {inputs}")
    lines += [
        "report_checks -path_delay max -digits 4",
        "report_worst_slack -digits 4",
        "report_tns -digits 4",
    ]
    if gating_cells is not None:
        lines += gating_tcl(gating_cells)
    if macro_names:
        # the worst paths out of and into the memory macros, reported on their own
        cells = " ".join(f'[get_cells -hierarchical -filter "ref_name == {n}"]'
                         for n in macro_names)
        lines += [f"set rcm_macros [concat {cells}]",
                  f"puts \"{_MACRO_MARKS[0]}\"",
                  "report_checks -path_delay max -from $rcm_macros -digits 4",
                  f"puts \"{_MACRO_MARKS[1]}\"",
                  "report_checks -path_delay max -to $rcm_macros -digits 4"]
    return "\n".join(lines) + "\n"


_MACRO_MARKS = ("rcm_gen: worst path from the memory macros",
                "rcm_gen: worst path to the memory macros")


def parse_macro_paths(text: str, log: Path | str) -> dict[str, Any] | None:
    """The worst paths out of and into the memory macros (startpoint, endpoint,
    arrival_ns, slack_ns) from an OpenSTA log, ``None`` if it has no such reports;
    :class:`ToolFailed` naming ``log`` if one cannot be read."""
    if _MACRO_MARKS[0] not in text:
        return None
    out = {}
    for key, mark, end in (("from_macros", _MACRO_MARKS[0], _MACRO_MARKS[1]),
                           ("to_macros", _MACRO_MARKS[1], None)):
        start = text.find(mark)
        part = text[start:text.find(end) if end else len(text)]
        number = r"(-?[0-9]+(?:\.[0-9]+)?)"
        found = [re.search(p, part, re.M) for p in (
            r"^Startpoint:\s*(\S.*)$", r"^Endpoint:\s*(\S.*)$",
            rf"^\s*{number}\s+data arrival time", rf"^\s*{number}\s+slack")]
        if start < 0 or not all(found):
            raise ToolFailed(f"OpenSTA report has no {key.replace('_', ' ')} path; log: {log}")
        out[key] = {"startpoint": found[0].group(1).strip(),
                    "endpoint": found[1].group(1).strip(),
                    "arrival_ns": float(found[2].group(1)), "slack_ns": float(found[3].group(1))}
    return out


def parse_sta(text: str, log: Path | str) -> dict[str, Any]:
    """Worst slack, TNS and the critical path from an OpenSTA log (the output of
    ``report_checks``, ``report_worst_slack``, ``report_tns``); :class:`ToolFailed`
    naming ``log`` if the log reports an error or lacks one of them."""
    def grab(pattern: str, what: str) -> str:
        m = re.search(pattern, text, re.M)
        if not m:
            raise ToolFailed(f"OpenSTA report has no {what}; log: {log}")
        return m.group(1)

    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolFailed(f"OpenSTA failed ({errors[0]}); log: {log}")
    number = r"(-?[0-9]+(?:\.[0-9]+)?)"
    worst = float(grab(rf"^worst slack\s+{number}\s*$", "worst slack"))
    tns = float(grab(rf"^tns\s+{number}\s*$", "TNS"))
    head = text.split(GATING_MARK, 1)[0].split("rcm_gen: worst path", 1)[0]
    path = worst_path(head)
    if path is None:
        raise ToolFailed(f"OpenSTA report has no critical path; log: {log}")
    gating = parse_gating(text)
    setup = (gating or {}).get("setup")
    if setup is not None and setup["slack_ns"] < worst:
        worst, path = setup["slack_ns"], setup   # a gating check is the critical path
    return {"worst_slack": worst, "tns": tns, "startpoint": path["startpoint"],
            "endpoint": path["endpoint"], "arrival": path["arrival_ns"], "gating": gating}
