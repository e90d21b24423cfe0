"""Hierarchical synthesis: each distinct module of a design synthesized once, cached, and
the design composed from the results with its hierarchy kept.

The Verilog a design point is generated as (:mod:`rcm_gen.hierarchy`) holds each
distinct module once; Verilog from elsewhere (Amaranth's own backend, which writes
every submodule instance as a module of its own, named after its instance path) may
hold many equal ones.  :func:`split_modules` cuts the Verilog into modules;
:func:`dedupe` gives each module a content key (its text with its own name, its
submodules' names and Yosys's numbered internal names made canonical, computed from
the leaves up) and keeps one module per key, the others' instances pointing at it.
Each distinct module is then synthesized on its own with its submodules as black boxes
(:func:`synthesize_modules`), in parallel, and its netlist and cell statistics are cached
by key and flow settings, so a module that another design point shares (the MAC of a
tile with more MACs, say) is not synthesized again.  The composed netlist is the
concatenation of the modules' netlists; its area is each module's own area times its
instance count.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolFailed
from ..hierarchy import render, sort_declaration_runs
from .yosys import run_yosys

__all__ = [
    "CELL_LOADS_PER_INPUT",
    "Module",
    "buffer_fanouts",
    "cached_shared_verilog",
    "dedupe",
    "output_fanouts",
    "shared_verilog",
    "split_modules",
    "synthesize_modules",
]

_MODULE = re.compile(r"^module\s+(\\\S+|[A-Za-z_][\w$]*)\s*\(", re.M)
#: Names Yosys numbers from a design-wide counter (``\$auto$rtlil.cc:2739:Not$18 ``).
_NUMBERED = re.compile(r"(\\\$auto\$\S*?)\$(\d+)(?= )")
#: Lines whose order does not matter among neighbours of the same kind: a declaration
#: with no initial value, and a one-line continuous assignment.
#: The first name on a line.
_FIRST = re.compile(r"^\s*(\\\S+|[A-Za-z_][\w$]*)(?=\s)", re.M)


@dataclass(frozen=True)
class Module:
    """One module of a design: its name as written (escaped names keep their ``\\``),
    its text, and the names of the modules it instantiates (with how many times)."""

    name: str
    text: str
    children: tuple[tuple[str, int], ...]


def _plain(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def _ref(name: str) -> re.Pattern[str]:
    """A reference to module ``name`` at the start of an instance line."""
    return re.compile(rf"^(\s*){re.escape(name)}(?=\s)", re.M)


def _renumber(text: str) -> str:
    """``text`` with Yosys's counter-numbered names renumbered from 0 per module and name
    prefix (in the order of their numbers), and each run of plain declarations or of
    one-line continuous assignments sorted, so that modules that differ only in those
    numbers read the same."""
    numbers: dict[str, set[int]] = {}
    for m in _NUMBERED.finditer(text):
        numbers.setdefault(m.group(1), set()).add(int(m.group(2)))
    rank = {(prefix, n): i for prefix, ns in numbers.items()
            for i, n in enumerate(sorted(ns))}
    return sort_declaration_runs(
        _NUMBERED.sub(lambda m: f"{m.group(1)}${rank[m.group(1), int(m.group(2))]}", text))


def split_modules(verilog: str) -> dict[str, Module]:
    """The modules of ``verilog`` (Yosys/Amaranth output: ``module`` ... ``endmodule``),
    by plain name, with numbered internal names renumbered per module so that identical
    modules have identical text (:func:`_renumber`)."""
    starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(verilog)]
    texts: dict[str, tuple[str, str]] = {}
    for i, (pos, name) in enumerate(starts):
        end = verilog.find("endmodule", pos)
        if end < 0 or (i + 1 < len(starts) and end > starts[i + 1][0]):
            raise ValueError(f"module {name} has no endmodule")
        texts[_plain(name)] = (name, _renumber(verilog[pos:end + len("endmodule")] + "\n"))
    written = {name: plain for plain, (name, _) in texts.items()}
    modules = {}
    for plain, (name, text) in texts.items():
        body = text[text.index(";") + 1:]
        counts: dict[str, int] = {}
        # an instance line starts with the name of the module it instantiates
        for first in _FIRST.findall(body):
            other = written.get(first)
            if other is not None and other != plain:
                counts[other] = counts.get(other, 0) + 1
        modules[plain] = Module(name, text, tuple(sorted(counts.items())))
    return modules


def _order(modules: dict[str, Module]) -> list[str]:
    """Module names, children before parents."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, depth: int = 0) -> None:
        if name in seen:
            return
        if depth > len(modules):
            raise ValueError(f"module hierarchy has a cycle through {name!r}")
        for child, _ in modules[name].children:
            visit(child, depth + 1)
        seen.add(name)
        done.append(name)

    for name in sorted(modules):
        visit(name)
    return done


def _canonical(text: str, own: str, names: dict[str, str]) -> str:
    """``text`` with the module's own name and its submodules' names replaced by
    ``names`` (plain name -> new plain identifier)."""
    header_end = text.index("(")
    text = f"module {names[_plain(own)]} " + text[header_end:]
    for plain, new in names.items():
        if plain == _plain(own):
            continue
        escaped = "\\" + plain if not re.fullmatch(r"[A-Za-z_][\w$]*", plain) else plain
        text = _ref(escaped).sub(lambda m, new=new: m.group(1) + new, text)
    return text


def dedupe(modules: dict[str, Module]) -> tuple[dict[str, str], dict[str, str]]:
    """Content keys of the modules, and their canonical texts.

    Returns ``(key_of, text_of)``: ``key_of`` maps each module's plain name to its key;
    ``text_of`` maps each key to the module's text in which the module is named
    ``M_<key>`` and each submodule ``M_<its key>``.  Modules with equal keys are equal
    up to names.
    """
    key_of: dict[str, str] = {}
    text_of: dict[str, str] = {}
    for name in _order(modules):
        mod = modules[name]
        names = {child: f"M_{key_of[child]}" for child, _ in mod.children}
        names[name] = "M_SELF"
        canon = _canonical(mod.text, mod.name, names)
        key = hashlib.sha256(canon.encode()).hexdigest()[:20]
        key_of[name] = key
        text_of.setdefault(key, canon.replace("M_SELF", f"M_{key}", 1))
    return key_of, text_of


def instance_counts(modules: dict[str, Module], top: str) -> dict[str, int]:
    """How many times each module is instantiated under ``top`` (``top`` once)."""
    counts = dict.fromkeys(modules, 0)

    def visit(name: str, times: int) -> None:
        counts[name] += times
        for child, k in modules[name].children:
            visit(child, times * k)

    visit(top, 1)
    return counts


def _wall(folder: Path) -> float | None:
    try:
        return float((folder / "wall_s").read_text())
    except (OSError, ValueError):
        return None


def synthesize_modules(jobs: list[dict[str, Any]], cache: Path, workers: int | None = None
                       ) -> dict[str, dict[str, Any]]:
    """Run each job (``key``, ``script``: Yosys commands with ``{netlist}`` and ``{stat}``
    placeholders for the output files, ``settings``: what else its result depends on),
    ``workers`` at a time, unless ``cache`` holds its result; each result is ``netlist``
    (the path of the module's netlist), ``stat`` (Yosys ``stat -json`` text), ``log``,
    ``cached`` and ``wall_s`` (how long its synthesis took).

    Raises
    ------
    ToolFailed
        A Yosys run failed (the message names its log).
    """
    workers = workers or max(1, min(len(jobs), os.cpu_count() or 1))
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        digest = hashlib.sha256(json.dumps([job["key"], job["script"], job["settings"]],
                                           sort_keys=True).encode()).hexdigest()[:24]
        folder = cache / digest
        done = folder / "stat.json"
        if done.exists():
            results[job["key"]] = {"netlist": folder / "netlist.v",
                                   "stat": done.read_text(), "log": folder / "synth.log",
                                   "cached": True, "wall_s": _wall(folder)}
        else:
            todo.append((job, folder))

    def run(job: dict[str, Any], folder: Path) -> dict[str, Any]:
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, text in job.get("files", {}).items():
            (tmp / name).write_text(text)
        script = [line.format(netlist=(tmp / "netlist.v").resolve(),
                              stat=(tmp / "stat.json").resolve(), dir=tmp.resolve())
                  for line in job["script"]]
        started = time.perf_counter()
        run_yosys(script, tmp / "synth.log")
        (tmp / "wall_s").write_text(f"{time.perf_counter() - started:.3f}\n")
        # the netlist and log name the temporary folder; the final one replaces it
        for name in ("netlist.v", "synth.log"):
            path = tmp / name
            path.write_text(path.read_text().replace(str(tmp.resolve()), str(folder.resolve())))
        if not (tmp / "stat.json").exists():
            raise ToolFailed(f"Yosys wrote no cell statistics; log: {folder / 'synth.log'}")
        try:
            tmp.rename(folder)
        except OSError:  # another run finished the same module first
            shutil.rmtree(tmp, ignore_errors=True)
        return {"netlist": folder / "netlist.v", "stat": (folder / "stat.json").read_text(),
                "log": folder / "synth.log", "cached": False, "wall_s": _wall(folder)}

    # the largest modules first, so that the pool is not left waiting on one at the end
    todo.sort(key=lambda jf: -jf[0].get("size", 0))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run, job, folder): job["key"] for job, folder in todo}
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()
    return results


def shared_verilog(component: Any, name: str, platform: Any = None) -> str:
    """The Verilog of ``component`` as a hierarchy, each distinct module once (its
    shareable components generated once): :func:`rcm_gen.hierarchy.render`'s text, what
    ``rcm-gen generate`` writes."""
    return render(component, name, platform).text


@functools.cache
def source_digest() -> str:
    """A digest of rcm_gen's own source: what generated Verilog depends on besides the
    configuration and the Amaranth version."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cached_shared_verilog(config: Any, name: str, platform: Any, cache: Path) -> str:
    """:func:`shared_verilog` of ``config``'s component (the text
    :func:`rcm_gen.generate.to_verilog` gives for the same platform), kept in ``cache``
    by the configuration, the platform's memory binding, the Amaranth version and
    rcm_gen's source, so that a design point generated before is not generated again."""
    from ..generate import build_component
    from ..tools import tool_versions

    key = hashlib.sha256(json.dumps(
        [config.to_dict(), repr(getattr(platform, "memory_binding", None)),
         tool_versions("amaranth")["amaranth"], source_digest()],
        sort_keys=True, default=str).encode()).hexdigest()[:24]
    path = cache / f"{name}-{key}.v"
    try:
        return path.read_text()
    except OSError:
        pass
    text = shared_verilog(build_component(config), name, platform)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return text


_INSTANCE = re.compile(r"^  (\\\S+|[A-Za-z_][\w$]*)\s+(\\\S+|[A-Za-z_][\w$]*)\s*\((.*?)^  \);",
                       re.M | re.S)
_CONNECTION = re.compile(r"^\s*\.(\\\S+|[A-Za-z_][\w$]*)\s*\((.*)\),?\s*$", re.M)
_REFERENCE = re.compile(r"(\\\S+|[A-Za-z_][\w$]*)\s*(?:\[(\d+)(?::(\d+))?\])?")
_PORT = re.compile(r"^\s*(input|output)\b\s*(?:\[(\d+):(\d+)\])?\s*(\\\S+|[A-Za-z_][\w$]*)\s*;",
                   re.M)


def _references(expr: str) -> list[tuple[str, int, int]]:
    """(signal, low bit, high bit) of every signal an instance connection refers to
    (a whole signal as bits 0 to 2^20)."""
    out = []
    for m in _REFERENCE.finditer(re.sub(r"\d+'[sS]?[bBoOdDhH][0-9a-fA-FxXzZ_]+", " ", expr)):
        name = m.group(1).strip()
        if name[0].isdigit():
            continue
        if m.group(2) is None:
            out.append((name, 0, 1 << 20))
        else:
            hi = int(m.group(2))
            lo = int(m.group(3)) if m.group(3) is not None else hi
            out.append((name, min(lo, hi), max(lo, hi)))
    return out


def output_fanouts(modules: dict[str, Module]) -> dict[str, int]:
    """For each module, the most submodule inputs that one bit of one of its outputs
    drives in a parent (1 if none): the load its output drivers see once composed."""
    directions = {name: {m.group(4): m.group(1) for m in _PORT.finditer(mod.text)}
                  for name, mod in modules.items()}
    fanout = dict.fromkeys(modules, 1)
    for parent in modules.values():
        sinks: dict[str, list[tuple[int, int]]] = {}
        drivers: list[tuple[str, str, int, int]] = []
        for inst in _INSTANCE.finditer(parent.text):
            child = _plain(inst.group(1))
            if child not in modules:
                continue
            for conn in _CONNECTION.finditer(inst.group(3)):
                port, expr = conn.group(1), conn.group(2)
                if port in ("clk", "rst"):
                    continue
                refs = _references(expr)
                if directions[child].get(port) == "input":
                    for name, lo, hi in refs:
                        sinks.setdefault(name, []).append((lo, hi))
                elif directions[child].get(port) == "output":
                    drivers += [(child, name, lo, hi) for name, lo, hi in refs]
        for child, name, lo, hi in drivers:
            ranges = sinks.get(name, [])
            edges = sorted({lo, hi + 1, *(a for a, _ in ranges), *(b + 1 for _, b in ranges)})
            most = max((sum(1 for a, b in ranges if a <= x <= b) for x in edges
                        if lo <= x <= hi), default=0)
            fanout[child] = max(fanout[child], most)
    return fanout


_NET_INSTANCE = re.compile(r"^  (\S+)\s+(\S+)\s*\(\n(.*?)\n  \);\n", re.M | re.S)
_PIN = re.compile(r"^    \.(\S+?)\s*\((.*)\),?$", re.M)


_DECLARED = re.compile(r"^\s*(?:wire|input|output|inout)\s+(?:signed\s+)?"
                       r"(?:\[(\d+):(\d+)\]\s*)?(\\\S+|[A-Za-z_][\w$]*)\s*;", re.M)
_SELECT = re.compile(r"^(\\\S+|[A-Za-z_][\w$]*)\s*(?:\[(\d+)(?::(\d+))?\])?$")


def _widths(text: str) -> dict[str, tuple[int, int]]:
    """(msb, lsb) of every vector a netlist module declares (one-bit nets are absent)."""
    return {m.group(3): (int(m.group(1)), int(m.group(2)))
            for m in _DECLARED.finditer(text) if m.group(1) is not None}


def _bit(name: str, index: int) -> str:
    """One bit of a vector as Yosys writes it, with the space an escaped name needs."""
    return f"{name} [{index}] " if name.startswith("\\") else f"{name}[{index}]"


def _bits(expr: str, widths: dict[str, tuple[int, int]] | None = None
          ) -> list[tuple[str, bool]] | None:
    """The parts of a connection, most significant first: each one-bit net (a net, a
    bit-select, or a bit of a whole vector or of a part-select, each with the space an
    escaped name needs after it) as ``(net, True)``, and each constant as ``(text,
    False)``; ``None`` if it cannot be read.  ``widths`` gives the vectors' ranges
    (:func:`_widths`); a name not in it is one bit."""
    widths = widths or {}
    expr = expr.strip()
    parts = [p.strip() for p in expr[1:-1].split(",")] if expr.startswith("{") else [expr]
    out: list[tuple[str, bool]] = []
    for p in parts:
        if not p:
            return None
        if p[0].isdigit():
            out.append((p, False))
            continue
        m = _SELECT.match(p)
        if not m:
            return None
        name = m.group(1)
        if m.group(2) is None:
            if name in widths:
                hi, lo = widths[name]
            else:
                out.append((name + " " if name.startswith("\\") else name, True))
                continue
        else:
            hi = int(m.group(2))
            lo = int(m.group(3)) if m.group(3) is not None else hi
        step = -1 if hi >= lo else 1
        out += [(_bit(name, i), True) for i in range(hi, lo + step, step)]
    return out


#: Library cell inputs of a buffer's own input capacitance that make one load of
#: :func:`buffer_fanouts` (a submodule input is one load)
CELL_LOADS_PER_INPUT = 8


def buffer_fanouts(netlists: dict[str, str], buffer: tuple[str, str, str], limit: int = 8,
                   cells: dict[str, dict[str, tuple[str, float]]] | None = None
                   ) -> tuple[dict[str, str], dict[str, int]]:
    """Netlists (module name -> text of one synthesized module, as Yosys writes it) in
    which every one-bit net whose load exceeds ``limit`` buffer inputs drives it through
    a tree of ``buffer`` cells (cell, input pin, output pin), each buffer driving at most
    that load; and the number of buffers added to each module.

    Each module was mapped on its own, so a net that fans out to many submodules (one
    buffer's read data to every MAC) has a driver sized for one load; the tree is what
    a flat mapping would have added.  A submodule input is one load, or more where the
    child's netlist (buffered first) loads it more.  With ``cells``
    (library cell -> pin -> (direction, capacitance), clock pins left out, and the
    buffer's input among them) the library cells a module's input port or a submodule's
    output drives count too, by capacitance: one load is :data:`CELL_LOADS_PER_INPUT`
    times the buffer's input capacitance (with ``limit`` 8, a buffer drives at most 64
    times its own input: a tenth of sky130's ``bufbuf_16`` maximum).  Those nets had no
    driver in the module's own mapping (a write enable reaching a thousand flip-flop
    enables of an ungated memory was driven by one small gate of the parent).
    """
    directions = {name: {m.group(4): m.group(1) for m in _PORT.finditer(text)}
                  for name, text in netlists.items()}
    cells = cells or {}
    unit = cells.get(buffer[0], {}).get(buffer[1], ("input", 0.0))[1]
    out: dict[str, str] = {}
    added: dict[str, int] = {}
    # children first: a parent weighs a submodule input by the capacitance the child's
    # (buffered) netlist puts on it
    port_caps: dict[str, dict[str, float]] = {}
    for name in _children_first(netlists):
        out[name], added[name] = _buffer_module(netlists[name], directions, buffer, limit,
                                                cells, unit, port_caps)
        if unit > 0:
            port_caps[name] = _input_capacitance(name, out[name], directions, cells,
                                                 port_caps)
    return {n: out[n] for n in netlists}, {n: added[n] for n in netlists}


def _children_first(netlists: dict[str, str]) -> list[str]:
    """Module names, each after every module it instantiates."""
    uses = {name: {i.group(1) for i in _NET_INSTANCE.finditer(text)} & netlists.keys()
            for name, text in netlists.items()}
    order: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        for child in sorted(uses[name]):
            visit(child)
        order.append(name)

    for name in sorted(netlists):
        visit(name)
    return order


def _input_pin_capacitance(kind: str, port: str, directions: dict[str, dict[str, str]],
                           cells: dict[str, dict[str, tuple[str, float]]],
                           port_caps: dict[str, dict[str, float]]) -> float | None:
    """The capacitance (pF) of input ``port`` of an instance of ``kind`` (a library cell,
    or a module as its netlist loads the port: 0 if not known); ``None`` if the port is
    not an input."""
    if kind in cells:
        direction, cap = cells[kind].get(port, ("", 0.0))
        return cap if direction == "input" else None
    if directions.get(kind, {}).get(port) != "input":
        return None
    return port_caps.get(kind, {}).get(port, 0.0)


def _input_capacitance(name: str, text: str, directions: dict[str, dict[str, str]],
                       cells: dict[str, dict[str, tuple[str, float]]],
                       port_caps: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per input port of module ``name`` (its netlist ``text``), the most capacitance (pF)
    one of its bits drives directly: library cell inputs, and submodule inputs as their
    own netlists load them."""
    widths = _widths(text)
    bit_cap: dict[str, float] = {}
    for inst in _NET_INSTANCE.finditer(text):
        for pin in _PIN.finditer(inst.group(3)):
            cap = _input_pin_capacitance(inst.group(1), pin.group(1), directions, cells,
                                         port_caps)
            if cap is None:
                continue
            for b, is_net in _bits(pin.group(2), widths) or ():
                if is_net:
                    bit_cap[b] = bit_cap.get(b, 0.0) + cap
    caps = {}
    for port, direction in directions[name].items():
        if direction == "input":
            bits = [b for b, _ in _bits(port, widths) or ()]
            caps[port] = max((bit_cap.get(b, 0.0) for b in bits), default=0.0)
    return caps


def _buffer_module(text: str, directions: dict[str, dict[str, str]],
                   buffer: tuple[str, str, str], limit: int,
                   cells: dict[str, dict[str, tuple[str, float]]], unit: float,
                   port_caps: dict[str, dict[str, float]]) -> tuple[str, int]:
    cell, pin_in, pin_out = buffer
    widths = _widths(text)
    instances = [i for i in _NET_INSTANCE.finditer(text)
                 if i.group(1) in directions or (unit > 0 and i.group(1) in cells)]
    # nets a library cell of this module drives: its own mapping sized and buffered them
    driven = set()
    for inst in instances:
        if inst.group(1) in cells:
            for pin in _PIN.finditer(inst.group(3)):
                if cells[inst.group(1)].get(pin.group(1), ("",))[0] == "output":
                    driven.update(b for b, is_net in _bits(pin.group(2), widths) or ()
                                  if is_net)

    def sink_loads(child: str, port: str, expr: str) -> list[tuple[str, bool, float]] | None:
        """The bits of a connection, each with its load if it is one this pass buffers."""
        cap = _input_pin_capacitance(child, port, directions, cells, port_caps)
        if cap is None or (child not in cells and port == "clk"):
            return None
        weight = cap / unit / CELL_LOADS_PER_INPUT if unit > 0 else 0.0
        if child in cells:  # only nets this module's own mapping did not drive
            return [(b, is_net and b not in driven, weight)
                    for b, is_net in _bits(expr, widths) or ()]
        return [(b, is_net, max(1.0, weight)) for b, is_net in _bits(expr, widths) or ()]

    loads: dict[str, list[float]] = {}
    for inst in instances:
        for pin in _PIN.finditer(inst.group(3)):
            for net, counted, load in sink_loads(inst.group(1), pin.group(1),
                                                 pin.group(2)) or ():
                if counted:
                    loads.setdefault(net, []).append(load)
    wide = {net: ls for net, ls in loads.items() if sum(ls) > limit}
    if not wide:
        return text, 0
    decls: list[str] = []
    added: list[str] = []

    def new_buffer(src: str) -> str:
        net = f"rcm_fanout_{len(added)}"
        decls.append(f"  wire {net};\n")
        added.append(f"  {cell} rcm_fanout_buf_{len(added)} (.{pin_in}({src}), "
                     f".{pin_out}({net}));\n")
        return net

    def leaves(src: str, count: int) -> list[str]:
        if count <= limit:
            return [new_buffer(src) for _ in range(count)]
        mids = leaves(src, -(-count // limit))
        return [new_buffer(mids[i // limit]) for i in range(count)]

    # each sink's leaf, in the order the connections are met: a leaf takes sinks until
    # their load would pass the limit
    leaf_of: dict[str, list[int]] = {}
    for net, ls in sorted(wide.items()):
        order, k, total = [], 0, 0.0
        for load in ls:
            if total > 0 and total + load > limit:
                k, total = k + 1, 0.0
            order.append(k)
            total += load
        leaf_of[net] = order
    trees = {net: leaves(net, leaf_of[net][-1] + 1) for net in sorted(wide)}
    used = dict.fromkeys(wide, 0)

    def rewire(match: re.Match[str], child: str) -> str:
        bits = sink_loads(child, match.group(1), match.group(2))
        if not bits or not any(counted and b in wide for b, counted, _ in bits):
            return match.group(0)
        new = []
        for b, counted, _ in bits:
            if counted and b in wide:
                new.append(trees[b][leaf_of[b][used[b]]])
                used[b] += 1
            else:
                new.append(b.rstrip())
        comma = "," if match.group(0).rstrip().endswith(",") else ""
        port = match.group(1) + (" " if match.group(1).startswith("\\") else "")
        return f"    .{port}({{ {' , '.join(new)} }}){comma}"

    pieces, pos = [], 0
    for inst in instances:
        child = inst.group(1)
        body = _PIN.sub(lambda m, child=child: rewire(m, child), inst.group(3))
        pieces += [text[pos:inst.start(3)], body]
        pos = inst.end(3)
    pieces.append(text[pos:])
    text = "".join(pieces)
    header_end = text.index(";\n") + 2
    end = text.rindex("endmodule")
    return (text[:header_end] + "".join(decls) + text[header_end:end] + "".join(added)
            + text[end:], len(added))
