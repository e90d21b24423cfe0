"""An Amaranth design written as a Verilog hierarchy: each distinct module once,
instantiated where it repeats, named for what it is.

Amaranth's Verilog backend writes every submodule *instance* as a module of its own,
named after its instance path (``rcm_tile.col3.mac7``): a tile of 256 MACs becomes 1,387
modules, most of them copies, elaborated and converted one by one.  :func:`render`
instead

- elaborates and converts every *shareable* component once: one with a ``share_key()``
  (equal keys, equal modules: a MAC, a column of the MAC array, a buffer, a pixel unit of
  the controller, a post-processing unit); where one is used, its parent gets an instance
  of its module, with the clock and reset;
- writes all the parts with one Yosys run (the top's in parallel with the others'); a
  shareable component with a ``verilog_module(name)`` method is not converted: that
  method gives its module's Verilog (written as Yosys writes, so that it is cut and named
  as the others are), for what Amaranth cannot express (latches);
- cuts the text into modules and writes modules that are equal up to their names once
  (equal blocks of a flip-flop memory, say), Yosys's counter-numbered names renumbered
  per module so that a module's text does not depend on what else the design holds;
- names the modules ``<top>__<kind>[_<variant>]`` for shareable components and for
  components whose class says how to name their modules (a ``share_name``), and
  ``<parent>__<instance>`` for the others (``rcm_tile__mac__multiplier``).  The kind is
  the component's ``share_name``, else its class name in snake case; the variant its
  ``share_variant()`` (a string or strings), else ``<depth>x<width>`` from its ``depth``
  and ``width`` (words by bits, as memory plans are written), ``transparent`` if it is,
  and its ``ram_style``.  Modules whose names would still be equal are told apart by the
  ports one has and the other lacks (``rcm_tile__ff_block_64x64_rd_en``), else numbered.

The result is the same design up to module boundaries: a shared module does not see
which of its inputs its parents tie to constants (a flip-flop memory block that is read
every cycle, whose read enable its buffer ties high, is written as a module of its own
because its text differs).  Text work is linear in the size of the Verilog.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import pickle
import re
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hierarchy", "ModuleInfo", "render"]


@dataclass(frozen=True)
class ModuleInfo:
    """One module of a hierarchy: its ``name``, how many ``instances`` of it the design
    holds (the top: 1) and the modules it instantiates, with how many times each
    (``children``, by name)."""

    name: str
    instances: int
    children: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Hierarchy:
    """The Verilog of a design (``text``, every module once, the top ``top`` first) and
    its ``modules``, in the order they are written."""

    top: str
    text: str
    modules: tuple[ModuleInfo, ...]

    def manifest(self) -> list[dict[str, Any]]:
        """The modules as a manifest lists them: ``name`` and ``instances``."""
        return [{"name": m.name, "instances": m.instances} for m in self.modules]


# -- sharing components while Amaranth elaborates --------------------------------------


@dataclass
class _Shared:
    obj: Any
    placeholder: str


@dataclass
class _Session:
    """The shareable components met while elaborating one design, in the order met."""

    top: str
    thread: int = field(default_factory=threading.get_ident)
    by_key: dict[Any, _Shared] = field(default_factory=dict)
    order: list[_Shared] = field(default_factory=list)
    converting: Any = None

    def get(self, obj: Any, platform: Any, original: Any) -> Any:
        key = _share_key(obj)
        if key is None or obj is self.converting:
            return original(obj, platform)
        entry = self.by_key.get(key)
        if entry is None:
            entry = _Shared(obj, f"{self.top}__shared{len(self.order)}")
            self.by_key[key] = entry
            self.order.append(entry)
        obj._MustUse__used = True  # stands in for an equal component, elaborated once
        return original(_stub(obj, entry.placeholder), platform)


def _share_key(obj: Any) -> Any:
    key = getattr(obj, "share_key", None)
    return key() if callable(key) else None


def _stub(obj: Any, module: str) -> Any:
    """An instance of ``module`` wired to ``obj``'s ports, with the clock and reset."""
    from amaranth.hdl import ClockSignal, Instance, ResetSignal
    from amaranth.hdl._ast import ValueCastable
    from amaranth.lib import wiring

    ports: dict[str, Any] = {"i_clk": ClockSignal("sync"), "i_rst": ResetSignal("sync")}
    for path, member, value in obj.signature.flatten(obj):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        prefix = "i_" if member.flow == wiring.In else "o_"
        ports[prefix + "__".join(map(str, path))] = value
    return Instance(module, **ports)


_HOOK_LOCK = threading.Lock()


@contextlib.contextmanager
def _sharing(session: _Session) -> Iterator[None]:
    """Amaranth's ``Fragment.get`` replaced, for this thread, by ``session.get``."""
    from amaranth.hdl import _ir

    with _HOOK_LOCK:
        original = _ir.Fragment.get

        def get(obj: Any, platform: Any) -> Any:
            if threading.get_ident() != session.thread:
                return original(obj, platform)
            return session.get(obj, platform, original)

        _ir.Fragment.get = staticmethod(get)
        try:
            yield
        finally:
            _ir.Fragment.get = staticmethod(original)


def _ports(obj: Any) -> dict[str, Any]:
    from amaranth.hdl import _ir
    from amaranth.hdl._ast import ValueCastable
    from amaranth.lib import wiring

    ports = {}
    for path, member, value in obj.signature.flatten(obj):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        direction = _ir.PortDirection.Input if member.flow == wiring.In \
            else _ir.PortDirection.Output
        ports["__".join(map(str, path))] = (value, direction)
    return ports


@dataclass(frozen=True)
class _Origin:
    """What a module was elaborated from, as far as its name goes: the component's kind,
    its variant, and whether its modules are named for their kind."""

    kind: str
    variant: tuple[str, ...]
    by_kind: bool


def _elaborate(session: _Session, obj: Any, platform: Any) -> Any:
    """``obj``'s fragment, its shareable parts instances of their modules."""
    from amaranth.hdl import _ir

    session.converting = obj
    return _ir.Fragment.get(obj, platform)


def _convert(fragment: Any, obj: Any, name: str, top: bool
             ) -> tuple[str, dict[str, _Origin]]:
    """RTLIL of ``fragment`` (of ``obj``) as module ``name``, and what each of its
    modules was elaborated from, by module name."""
    from amaranth.back import rtlil
    from amaranth.hdl import _ir

    design = fragment.prepare(ports=_ports(obj), hierarchy=(name,))
    origins = {".".join(info.name): _describe(frag.origins[0])
               for frag, info in design.fragments.items()
               if frag.origins and not isinstance(frag, _ir.Instance)}
    text, _ = rtlil.convert_fragment(design, name=name, emit_src=False)
    if not top:
        text = text.replace("attribute \\top 1\n", "", 1)
    return text, origins


def _in_child(work: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``work`` in a forked process; a function that waits for its result and
    returns it (or raises its exception), and that must be called."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 1
        try:
            os.close(read_fd)
            try:
                payload = pickle.dumps((True, work()))
                status = 0
            except BaseException as exc:  # handed to the parent
                try:
                    payload = pickle.dumps((False, exc))
                except Exception:
                    payload = pickle.dumps((False, RuntimeError(
                        "".join(traceback.format_exception(exc)))))
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
        finally:
            os._exit(status)
    os.close(write_fd)

    def result() -> Any:
        try:
            with os.fdopen(read_fd, "rb") as src:
                data = src.read()
        finally:
            os.waitpid(pid, 0)
        if not data:
            raise RuntimeError("the process converting the top module ended without a result")
        ok, value = pickle.loads(data)
        if not ok:
            raise value
        return value

    return result


def _write_verilog(rtlil_text: str) -> str:
    """Yosys's Verilog of ``rtlil_text``, as Amaranth's ``verilog.convert`` writes it."""
    from amaranth._toolchain.yosys import find_yosys

    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = "\n".join([f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil", "proc -nomux -norom",
                        "memory_collect", "write_verilog -norename"])
    return yosys.run(["-q", "-"], script, ignore_warnings=True)


# -- the text ---------------------------------------------------------------------------

_ID = r"(?:\\\S+ |[A-Za-z_][\w$]*)"
_MODULE = re.compile(rf"^((?:\(\*.*\*\)\n)*)module ({_ID})\(", re.M)
_INSTANCE = re.compile(rf"^  ({_ID}) ({_ID}) ?\($", re.M)
#: Names Yosys numbers from a counter over the whole run.
_NUMBERED = re.compile(r"(\\\$auto\$[^\s$]*)\$(\d+)(?= )")
_TOP_ATTR = "(* top =  1  *)\n"
_DECL = re.compile(r"^\s*(?:wire|reg)\b[^=;()]*;$")
_ASSIGN = re.compile(r"^\s*assign\b.*;$")


def _plain(name: str) -> str:
    return name[1:-1] if name.startswith("\\") else name


@dataclass
class _Module:
    name: str                       # plain name as Yosys wrote it
    text: str                       # attributes, module ... endmodule, newline
    ports: tuple[str, ...]
    #: (child plain name, instance plain name), in order; only instances of modules
    children: list[tuple[str, str]] = field(default_factory=list)


def _split(texts: list[str]) -> tuple[str, dict[str, _Module]]:
    """The first text's opening comment and the modules of all the texts."""
    header = ""
    modules: dict[str, _Module] = {}
    for verilog in texts:
        starts = list(_MODULE.finditer(verilog))
        if starts and not header:
            header = verilog[:starts[0].start()].strip() + "\n"
        for m in starts:
            end = verilog.find("\nendmodule\n", m.end())
            if end < 0:
                raise ValueError(f"module {m.group(2)} has no endmodule")
            close = verilog.index(");", m.end())
            ports = tuple(p.strip() for p in verilog[m.end():close].split(","))
            text = _renumber(verilog[m.start():end + len("\nendmodule\n")])
            modules[_plain(m.group(2))] = _Module(_plain(m.group(2)), text, ports)
    for mod in modules.values():
        for inst in _INSTANCE.finditer(mod.text):
            child = _plain(inst.group(1))
            if child in modules:
                mod.children.append((child, _plain(inst.group(2))))
    return header, modules


def _renumber(text: str) -> str:
    """``text`` with Yosys's counter-numbered names renumbered from 0, per prefix, in the
    order of their numbers."""
    numbers: dict[str, set[int]] = {}
    for m in _NUMBERED.finditer(text):
        numbers.setdefault(m.group(1), set()).add(int(m.group(2)))
    if not numbers:
        return text
    rank = {(prefix, n): i for prefix, ns in numbers.items()
            for i, n in enumerate(sorted(ns))}
    return _NUMBERED.sub(lambda m: f"{m.group(1)}${rank[m.group(1), int(m.group(2))]}", text)


def sort_declaration_runs(text: str) -> str:
    """``text`` with each run of plain declarations and of one-line continuous
    assignments sorted (renumbered names can sort differently from the originals)."""
    out: list[str] = []
    run: list[str] = []
    kind = None
    for line in text.split("\n"):
        this = "decl" if _DECL.match(line) else "assign" if _ASSIGN.match(line) else None
        if this != kind or this is None:
            out += sorted(run)
            run = []
        kind = this
        if this is None:
            out.append(line)
        else:
            run.append(line)
    return "\n".join(out + sorted(run))


def _rename(text: str, names: dict[str, str], drop: dict[str, set[str]] | None = None
            ) -> str:
    """``text`` with its own name and the module names of its instances replaced by
    ``names`` (plain name -> new plain name), and the connections of instance ports
    in ``drop`` (plain child name -> ports) left out."""
    def header(m: re.Match[str]) -> str:
        return f"{m.group(1)}module {names[_plain(m.group(2))]}("

    text = _MODULE.sub(header, text, count=1)
    if not drop:
        return _INSTANCE.sub(
            lambda m: (f"  {names[_plain(m.group(1))]} {m.group(2)} ("
                       if _plain(m.group(1)) in names else m.group(0)), text)
    pieces, pos = [], 0
    for m in _INSTANCE.finditer(text):
        child = _plain(m.group(1))
        if child not in names:
            continue
        end = text.index("\n  );\n", m.end())
        lines = text[m.end() + 1:end].split("\n")
        gone = drop.get(child, set())
        kept = [ln.rstrip(",") for ln in lines
                if ln.strip()[1:].split("(", 1)[0].strip() not in gone]
        pieces += [text[pos:m.start()], f"  {names[child]} {m.group(2)} (\n",
                   ",\n".join(kept)]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


# -- names --------------------------------------------------------------------------------


def _snake(name: str) -> str:
    name = name.strip("_")
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return name.lower()


def _clean(part: str) -> str:
    """``part`` as a piece of a plain Verilog identifier."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", part)).strip("_") or "x"


def _kind(obj: Any) -> str:
    name = getattr(obj, "share_name", None)
    return _clean(name if isinstance(name, str) else _snake(type(obj).__name__))


def _variant(obj: Any) -> tuple[str, ...]:
    custom = getattr(obj, "share_variant", None)
    if callable(custom):
        parts = custom()
        return tuple(_clean(p) for p in ((parts,) if isinstance(parts, str) else parts) if p)
    parts = []
    width, depth = getattr(obj, "width", None), getattr(obj, "depth", None)
    if type(width) is int and type(depth) is int:
        parts.append(f"{depth}x{width}")
    if getattr(obj, "transparent", None) is True:
        parts.append("transparent")
    style = getattr(obj, "ram_style", None)
    if isinstance(style, str) and style:
        parts.append(_clean(style))
    return tuple(parts)


def _describe(obj: Any) -> _Origin:
    by_kind = (isinstance(getattr(obj, "share_name", None), str)
               or callable(getattr(obj, "share_key", None)))
    return _Origin(_kind(obj), _variant(obj), by_kind)


# -- render -------------------------------------------------------------------------------


def render(component: Any, name: str, platform: Any = None, *,
           parallel: bool = True) -> Hierarchy:
    """The Verilog of ``component`` as a hierarchy of modules (see the module's text),
    with ``name`` its top module; byte-identical for equal designs.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design.
    name : str
        The top module's name, a plain Verilog identifier.
    platform : optional
        What the design is elaborated with.
    parallel : bool
        Convert the top module (after elaboration) in a forked process while this one
        converts the shareable components, where the platform forks and this process
        runs no other thread; the text is the same either way.

    Raises
    ------
    ValueError
        ``name`` is not a plain Verilog identifier.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Top module name must be a plain Verilog identifier, not {name!r}")
    session = _Session(name)
    origins: dict[str, _Origin] = {}
    with _sharing(session), contextlib.ExitStack() as stack:
        fragment = _elaborate(session, component, platform)

        def top_verilog() -> tuple[str, dict[str, _Origin]]:
            text, found = _convert(fragment, component, name, top=True)
            return _write_verilog(text), found

        if parallel and hasattr(os, "fork") and threading.active_count() == 1:
            top_result = _in_child(top_verilog)
        else:
            # (the top's Yosys run beside the conversion of the shareable components)
            text, found = _convert(fragment, component, name, top=True)
            origins.update(found)
            pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(max_workers=1))
            future = pool.submit(_write_verilog, text)

            def top_result() -> tuple[str, dict[str, _Origin]]:
                return future.result(), {}
        try:
            parts = []
            own: list[str] = []
            done = 0
            while done < len(session.order):
                entry = session.order[done]
                done += 1
                written = getattr(entry.obj, "verilog_module", None)
                if callable(written):
                    # a module of rcm_gen's own (what Amaranth cannot express: latches)
                    own.append(written(entry.placeholder))
                    origins[entry.placeholder] = _describe(entry.obj)
                    continue
                text, found = _convert(_elaborate(session, entry.obj, platform), entry.obj,
                                       entry.placeholder, top=False)
                origins.update(found)
                parts.append(text)
            shared_verilog = _write_verilog("".join(parts)) if parts else ""
        except BaseException:
            with contextlib.suppress(BaseException):  # (the child is waited for)
                top_result()
            raise
        verilog, found = top_result()
        origins.update(found)
    return _assemble(name, origins, [verilog, shared_verilog, *own])


def _assemble(top: str, origins: dict[str, _Origin], texts: list[str]) -> Hierarchy:
    header, modules = _split(texts)
    if top not in modules:
        raise ValueError(f"Yosys wrote no module {top}")
    # a shared module that has no clock or reset: its instances do not connect them
    drop = {n: gone for n, m in modules.items()
            if n.startswith(f"{top}__shared") and (gone := {"clk", "rst"} - set(m.ports))}

    # modules reachable from the top, children before parents
    post: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, int]] = [(top, 0)]
    while stack:
        mod, i = stack.pop()
        if i == 0:
            if mod in seen:
                continue
            seen.add(mod)
        children = modules[mod].children
        if i < len(children):
            stack.append((mod, i + 1))
            if children[i][0] not in seen:
                stack.append((children[i][0], 0))
        else:
            post.append(mod)

    # content keys, leaves first: equal keys, equal modules up to their names
    key_of: dict[str, str] = {}
    for mod in post:
        names = {c: f"K{key_of[c]}" for c, _ in modules[mod].children}
        names[mod] = "SELF"
        canon = sort_declaration_runs(_rename(modules[mod].text, names, drop))
        key_of[mod] = hashlib.sha256(canon.encode()).hexdigest()[:24]

    # distinct modules in the order they are written: the top, then depth first
    order: list[str] = []
    rep: dict[str, str] = {}
    uses: dict[str, list[tuple[str, str]]] = {}
    for mod in reversed(post):  # parents before children
        key = key_of[mod]
        if key not in rep:
            rep[key] = mod
    written: set[str] = set()

    def visit(mod: str) -> None:
        key = key_of[mod]
        if key in written:
            return
        written.add(key)
        order.append(key)
        for child, inst in modules[mod].children:
            uses.setdefault(key_of[child], []).append((key, inst))
        for child, _ in modules[mod].children:
            visit(rep[key_of[child]])

    visit(top)
    # (recursion depth is the hierarchy's depth, a handful of levels)

    final: dict[str, str] = {key_of[top]: top}
    for key in order[1:]:
        mod = rep[key]
        origin = origins.get(mod)
        parent_key, inst = uses[key][0]
        if origin is not None and (origin.by_kind or len({i for _, i in uses[key]}) > 1):
            base = f"{top}__{'_'.join([origin.kind, *origin.variant])}"
        elif origin is None and len({i for _, i in uses[key]}) > 1:
            base = f"{top}__{_clean(re.sub(r'[0-9_]+$', '', inst))}"
        else:
            base = f"{final[parent_key]}__{_clean(inst)}"
        final[key] = base
        # parents come first in ``order``, so a child's path name uses its parent's
        # final name: collisions are resolved as each name is given
        _resolve(key, final, modules[mod].ports, modules, rep)

    names = {mod: final[key_of[mod]] for mod in post}
    parts = [header]
    infos = []
    counts = _instance_counts(top, order, rep, modules, key_of)
    for key in order:
        mod = modules[rep[key]]
        text = _rename(mod.text, names, drop)
        if key != key_of[top]:
            text = text.replace(_TOP_ATTR, "", 1)
        parts.append("\n" + text)
        children: dict[str, int] = {}
        for child, _ in mod.children:
            children[names[child]] = children.get(names[child], 0) + 1
        infos.append(ModuleInfo(final[key], counts[key], tuple(children.items())))
    return Hierarchy(top, "".join(parts), tuple(infos))


def _resolve(key: str, final: dict[str, str], ports: tuple[str, ...],
             modules: dict[str, _Module], rep: dict[str, str]) -> None:
    """Make ``final[key]`` unique among the names given so far: tell it from the module
    whose name it takes by the ports it has and that one lacks, else by a number."""
    name = final[key]
    taken = {n: k for k, n in final.items() if k != key}
    if name not in taken:
        return
    other = modules[rep[taken[name]]].ports
    extra = [_clean(p.lstrip("\\")) for p in ports if p not in other]
    if extra:
        name = f"{name}_{'_'.join(extra)}"
    n = 2
    candidate = name
    while candidate in taken:
        candidate = f"{name}_{n}"
        n += 1
    final[key] = candidate


def _instance_counts(top: str, order: list[str], rep: dict[str, str],
                     modules: dict[str, _Module], key_of: dict[str, str]) -> dict[str, int]:
    """How many instances of each distinct module the design holds (``order`` lists
    parents before children)."""
    counts = dict.fromkeys(order, 0)
    counts[key_of[top]] = 1
    # a module's instances are counted once all its parents' counts are final: walk the
    # distinct modules in an order where every parent precedes its children
    parents: dict[str, list[str]] = {k: [] for k in order}
    for key in order:
        for child, _ in modules[rep[key]].children:
            parents[key_of[child]].append(key)
    done: list[str] = []
    pending = {k: len(set(ps)) for k, ps in parents.items()}
    ready = [key_of[top]]
    while ready:
        key = ready.pop()
        done.append(key)
        kids: dict[str, int] = {}
        for child, _ in modules[rep[key]].children:
            kids[key_of[child]] = kids.get(key_of[child], 0) + 1
        for child, k in kids.items():
            counts[child] += counts[key] * k
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    return counts
