"""Design spaces: knobs and their values, the flow target(s), and the workloads, from TOML.

A space file::

    name = "example"
    base = "rcm-small"           # knobs not given keep this preset's values

    [knobs]                      # every combination of the values is a design point
    arch = ["booth", "ppa", "fixed"]
    p = [1, 2]
    tn = [2, 4]
    clock_ns = [5.0]             # synthesis clock target

    [target]
    kind = "asic"                # asic | ecp5 | ice40 | nexus, or a list of them
    # liberty = "/path/to/cells.lib"
    # energy = true              # asic: energy as a third objective (see below)
    # part = "LFE5U-85"          # an FPGA kind: the part as a budget (see below)
    # luts = 40000               # with part: limits below the part's (also dsps, brams)
    # fmax_mhz = 30.0            # with part: the minimum post-route Fmax

    [[workloads]]                # a convolution layer at several precisions
    name = "conv3x3"
    layer = {c = 16, m = 16, h = 8, w = 8, k = 3, stride = 1, padding = 1}
    bits = [16, 8, 4, "8x4"]     # N: N-bit activations and weights; "AxW": A and W bits
    act_signed = false

    [[workloads]]                # a network: latency is the sum over its layers
    name = "resnet18"
    network = "resnet18"         # a built-in network (bits: its bit configurations),
    bits = ["uniform8", "latency0.5"]  # or a .json / .onnx file (its own widths)
    bandwidth = 16               # optional: off-chip bytes per cycle (a roofline per layer)

Knobs: the tile's fields (``p``, ``qr``, ``qc`` — the P × Q array —, ``tm``, ``tn``, ``tr``,
``tc``, ``k_max``, ``s_max``, ``act_depth``, ``weight_depth``, ``ppu_lanes``, ``act_beat``,
and the buffers' memory binding ``memory`` with its macro library ``macros``), the MAC's
(``arch`` — ``booth``, ``ppa``, ``fusion`` or ``fixed`` —, ``width``, ``lanes`` — a list of
lane sets —, ``pipeline``), ``tm_per_p`` (``tm`` as a multiple of ``p``), ``fixed``
(``true``: the point's fixed-multiplier twin) and ``clock_ns``.  A combination the tile
rejects (``tm`` not a multiple of ``p``, say) is skipped with the tile's reason.

``energy = true`` (ASIC targets only) calibrates every point's tile energy model at gate
level (:func:`rcm_gen.power.tile_model.calibrate`: a few layers recorded in RTL and
replayed on the synthesized netlist, minutes per point) and adds energy as an objective:
per inference for a network, per MAC for a layer.

``part`` (one FPGA kind only) makes the part a budget: its LUTs, DSPs and block RAMs (or
the ``luts``, ``dsps``, ``brams`` given, at most the part's), and a minimum Fmax
``fmax_mhz``.  Every point is synthesized for the part (Yosys, each distinct module once)
and its resources checked against the budget before place and route: a point over it is
*pruned* (never placed and routed; the store keeps its counts and which resource is how
much over), a point that fits is placed and routed, and one under ``fmax_mhz`` fails the
budget.  Neither is on a front; the fronts are latency (at the post-route Fmax) against
LUTs and against DSPs.  Parts: :data:`PARTS`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..conv import ConvShape
from ..errors import UserError
from ..tile.config import TileConfig

__all__ = ["KNOBS", "PARTS", "TARGETS", "Point", "Space", "Workload", "load_space"]

#: Knob → the configuration field it sets ("mac." for the MAC's), or None.
KNOBS: dict[str, str | None] = {
    "arch": "mac.arch", "width": "mac.width", "lanes": "mac.lanes", "pipeline": "mac.pipeline",
    "p": "p", "qr": "qr", "qc": "qc", "tm": "tm", "tn": "tn", "tr": "tr", "tc": "tc",
    "k_max": "k_max", "s_max": "s_max", "act_depth": "act_depth",
    "weight_depth": "weight_depth", "ppu_lanes": "ppu_lanes", "act_beat": "act_beat",
    "memory": "memory", "dsp_block": "mac.dsp_block",
    "macros": "macros", "ppu_product": "ppu_product", "column_stage": "column_stage",
    "crossbar_stage": "crossbar_stage",
    "tm_per_p": None, "fixed": None, "clock_ns": None,
}
TARGETS = ("asic", "ecp5", "ice40", "nexus")
#: FPGA kind → part name → the device of ``rcm_gen/flows/data/fpga.toml`` it is (the
#: devices' own names are accepted too).
PARTS: dict[str, dict[str, str]] = {
    "ecp5": {"LFE5U-25": "25k", "LFE5U-45": "45k", "LFE5U-85": "85k"},
    "ice40": {"iCE40UP5K": "up5k", "iCE40HX8K": "hx8k"},
    "nexus": {"LIFCL-40": "LIFCL-40-9BG400C"},
}
_BUDGET_KEYS = ("part", "luts", "dsps", "brams", "fmax_mhz")
_SHAPE_KEYS = ("c", "m", "h", "w", "k", "stride", "padding")


@dataclass(frozen=True)
class Workload:
    """A convolution layer at some precisions, or a network at some bit configurations.

    ``cases`` are the (workload, precision) pairs it contributes: plain dicts (picklable)
    that say everything the cycle model needs, and ``key``, a hash of that.
    """

    name: str
    cases: tuple[dict[str, Any], ...]

    @property
    def precisions(self) -> tuple[str, ...]:
        return tuple(c["precision"] for c in self.cases)


@dataclass(frozen=True)
class Point:
    """One design point: its knob values, its configuration, synthesis clock and target."""

    knobs: dict[str, Any]
    config: TileConfig
    clock_ns: float | None
    target: str

    @property
    def configurable(self) -> bool:
        return not self.config.is_fixed


@dataclass(frozen=True)
class Space:
    """A design space (see the module docstring); made by :func:`load_space`."""

    name: str
    knobs: dict[str, list[Any]]
    base: str
    targets: tuple[str, ...]
    liberty: str | None
    workloads: tuple[Workload, ...]
    source: Path | None = None
    energy: bool = False
    #: The FPGA part as a budget: ``part``, ``device`` (its name in the FPGA flow),
    #: ``luts``, ``dsps``, ``brams`` (limits) and ``fmax_mhz`` (minimum, or ``None``).
    budget: dict[str, Any] | None = None

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of knob values (legal or not), targets included when there
        are several."""
        names = list(self.knobs)
        combos = [dict(zip(names, values, strict=True))
                  for values in itertools.product(*(self.knobs[n] for n in names))]
        if len(self.targets) == 1:
            return combos
        return [{**c, "target": t} for c in combos for t in self.targets]

    def cases(self) -> list[dict[str, Any]]:
        """Every (workload, precision) case of the space."""
        return [c for w in self.workloads for c in w.cases]

    def point(self, knobs: dict[str, Any]) -> Point:
        """The design point of a knob combination.

        Raises
        ------
        ValueError
            With the reason, if the combination is not a legal design point.
        """
        from ..presets import preset

        config = preset(self.base)
        mac = config.mac
        changes: dict[str, Any] = {}
        mac_changes: dict[str, Any] = {}
        for name, value in knobs.items():
            field = KNOBS.get(name)
            if field is None:
                continue
            if field.startswith("mac."):
                mac_changes[field[4:]] = (tuple(value) if name == "lanes"
                                          and isinstance(value, list) else value)
            else:
                changes[field] = value
        if "tm_per_p" in knobs:
            changes["tm"] = knobs["tm_per_p"] * changes.get("p", config.p)
        elif "p" in changes and "tm" not in changes and config.tm % changes["p"]:
            changes["tm"] = changes["p"]
        fixed = knobs.get("fixed", False) or mac_changes.get("arch", mac.arch) == "fixed"
        try:
            if fixed:  # the fixed twin: one lane, whatever the lane knob says
                mac_changes.update(arch="fixed", lanes=(1,))
            new_mac = mac.replace(**mac_changes)
            cfg = config.replace(mac=new_mac, **changes)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc)) from None
        return Point(dict(knobs), cfg, knobs.get("clock_ns"),
                     knobs.get("target", self.targets[0]))


def _fail(src: str, message: str) -> UserError:
    return UserError(f"--space {src!r}: {message}")


def _sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def case_key(case: dict[str, Any]) -> str:
    """Hash of what a case's cycles depend on: the case (not its display name) and the
    cycle model's sources."""
    from .evaluate import model_fingerprint

    text = json.dumps({"case": {k: v for k, v in case.items() if k not in ("workload", "key")},
                       "model": model_fingerprint()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _with_key(case: dict[str, Any]) -> dict[str, Any]:
    return {**case, "key": case_key(case)}


def _layer_bits(src: str, where: str, b: Any) -> tuple[int, int, str]:
    """(activation bits, weight bits, label) of one ``bits`` entry of a layer."""
    if isinstance(b, int) and not isinstance(b, bool):
        a = w = b
    elif isinstance(b, str) and b.count("x") == 1 and all(
            part.isdigit() for part in b.split("x")):
        a, w = (int(part) for part in b.split("x"))
    else:
        raise _fail(src, f"{where} bits must be integers or \"AxW\" strings, not {b!r}")
    for v in (a, w):
        if not 1 <= v <= 16:
            raise _fail(src, f"{where} bit widths must be from 1 to 16, not {b!r}")
    return a, w, (str(a) if a == w else f"{a}x{w}")


def _workload(src: str, base: Path, i: int, data: Any) -> Workload:
    where = f"workload {i}"
    if not isinstance(data, dict):
        raise _fail(src, f"{where} must be a table")
    allowed = ("name", "layer", "network", "bits", "bits_file", "act_signed", "bandwidth")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise _fail(src, f"{where} key must be one of {', '.join(allowed)}, not {unknown[0]!r}")
    name = data.get("name", f"workload{i}")
    if not isinstance(name, str) or not name:
        raise _fail(src, f"{where} name must be a non-empty string, not {name!r}")
    where = f"workload {i} ({name!r})"
    if ("layer" in data) == ("network" in data):
        raise _fail(src, f"{where} must have exactly one of layer and network")
    bits = data.get("bits")
    bandwidth = data.get("bandwidth")
    if bandwidth is not None and (isinstance(bandwidth, bool)
                                  or not isinstance(bandwidth, int | float) or bandwidth <= 0):
        raise _fail(src, f"{where} bandwidth must be a number of bytes per cycle greater "
                         f"than 0, not {bandwidth!r}")
    extra = {} if bandwidth is None else {"bandwidth": bandwidth}
    if "layer" in data:
        for key in ("bits_file",):
            if key in data:
                raise _fail(src, f"{where} {key} applies to networks, not layers")
        act_signed = data.get("act_signed", False)
        if not isinstance(act_signed, bool):
            raise _fail(src, f"{where} act_signed must be true or false, not {act_signed!r}")
        layer = data["layer"]
        if not isinstance(layer, dict):
            raise _fail(src, f"{where} layer must be a table of {', '.join(_SHAPE_KEYS)}")
        try:
            shape = ConvShape(**layer)
        except (TypeError, ValueError) as exc:
            raise _fail(src, f"{where} layer: {exc}") from None
        if not isinstance(bits, list) or not bits:
            raise _fail(src, f"{where} bits must be a non-empty list")
        cases = []
        for b in bits:
            a, w, label = _layer_bits(src, where, b)
            cases.append(_with_key({
                "kind": "layer", "workload": name, "precision": label,
                "layer": shape.to_dict(),
                "act_bits": a, "weight_bits": w, "act_signed": act_signed, **extra}))
        labels = [c["precision"] for c in cases]
        if len(set(labels)) != len(labels):
            raise _fail(src, f"{where} bits must not repeat a precision")
        return Workload(name, tuple(cases))

    from ..workloads import KNOWN_NETWORKS, load_network

    if "act_signed" in data:
        raise _fail(src, f"{where} act_signed applies to layers; a network's layers say it")
    spec = data["network"]
    if not isinstance(spec, str):
        raise _fail(src, f"{where} network must be a string, not {spec!r}")
    bits_file = data.get("bits_file")
    if spec in KNOWN_NETWORKS:
        if not isinstance(bits, list) or not bits:
            raise _fail(src, f"{where} bits must be a non-empty list of "
                             f"{', '.join(KNOWN_NETWORKS[spec])}")
        entries: list[tuple[str | None, str]] = []
        for b in bits:
            if not isinstance(b, str):
                raise _fail(src, f"{where} bits must be names of bit configurations, "
                                 f"not {b!r}")
            entries.append((b, b))
        file_path, fingerprint = spec, None
    else:
        path = Path(spec) if Path(spec).is_absolute() else base / spec
        if bits is not None:
            raise _fail(src, f"{where} takes its bit widths from {spec!r}; remove bits")
        if not path.is_file():
            raise _fail(src, f"{where} network file {str(path)!r} not found")
        entries = [(None, "file")]
        file_path = str(path.resolve())
        fingerprint = _sha_file(path)
        if bits_file is not None:
            bf = Path(bits_file) if Path(bits_file).is_absolute() else base / bits_file
            bits_file = str(bf.resolve())
            if bf.is_file():
                fingerprint += _sha_file(bf)
    cases = []
    for b, label in entries:
        try:
            net = load_network(file_path, b, bits_file)
        except UserError as exc:
            raise _fail(src, f"{where}: {exc}") from None
        cases.append(_with_key({
            "kind": "network", "workload": name, "precision": label, "network": file_path,
            "bits": b, "bits_file": bits_file, "fingerprint": fingerprint,
            "layers": len(net.layers), "macs": net.macs, **extra}))
    return Workload(name, tuple(cases))


def _check_knob(src: str, name: str, values: Any) -> None:
    if name not in KNOBS:
        raise _fail(src, f"knob must be one of {', '.join(KNOBS)}, not {name!r}")
    if not isinstance(values, list):
        raise _fail(src, f"knob {name} must be a list of values, not {values!r}")
    if not values:
        raise _fail(src, f"knob {name} has an empty list of values")
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise _fail(src, f"knob {name} lists a value twice: {values!r}")
    for v in values:
        if name == "clock_ns" and (isinstance(v, bool) or not isinstance(v, int | float)
                                   or v <= 0):
            raise _fail(src, f"knob clock_ns values must be numbers greater than 0, not {v!r}")
        if name == "fixed" and not isinstance(v, bool):
            raise _fail(src, f"knob fixed values must be true or false, not {v!r}")
        if name == "lanes" and not isinstance(v, list):
            raise _fail(src, f"knob lanes values must be lists of lane counts (e.g. "
                             f"[1, 2, 4]), not {v!r}")


def _budget(src: str, target: dict[str, Any], kinds: list[str]) -> dict[str, Any] | None:
    """The budget of ``[target]`` (see the module docstring), or ``None`` without part."""
    given = [k for k in _BUDGET_KEYS if k in target]
    if not given:
        return None
    if "part" not in target:
        raise _fail(src, f"target {given[0]} needs a part (the FPGA the budget is of)")
    part = target["part"]
    if len(kinds) != 1 or kinds[0] not in PARTS:
        raise _fail(src, f"target part applies to one FPGA kind ({', '.join(PARTS)}), "
                         f"not {', '.join(kinds)}")
    kind = kinds[0]
    from ..flows.fpga import fpga_constraints

    devices = {d["name"]: d for d in fpga_constraints(kind)["devices"]}
    names = {**PARTS[kind], **{n: n for n in devices}}
    if part not in names or names[part] not in devices:
        allowed = ", ".join(n for n in names if names[n] in devices)
        other = [k for k in PARTS if k != kind and (part in PARTS[k] or part in {
            d["name"] for d in fpga_constraints(k)["devices"]})]
        where = f" (a part of {other[0]})" if other else ""
        raise _fail(src, f"target part must be one of {allowed} for kind {kind}, not "
                         f"{part!r}{where}")
    device = devices[names[part]]
    budget: dict[str, Any] = {"part": part, "device": device["name"]}
    for res in ("luts", "dsps", "brams"):
        cap = int(device[res])
        value = target.get(res, cap)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= cap:
            raise _fail(src, f"target {res} must be an integer from 0 to {cap} (the "
                             f"{part}'s), not {value!r}")
        budget[res] = value
    fmax = target.get("fmax_mhz")
    if fmax is not None and (isinstance(fmax, bool) or not isinstance(fmax, int | float)
                             or not fmax > 0):
        raise _fail(src, f"target fmax_mhz must be a number of MHz greater than 0, "
                         f"not {fmax!r}")
    budget["fmax_mhz"] = None if fmax is None else float(fmax)
    return budget


def load_space(path: str | Path) -> Space:
    """Read and check a space file.

    Raises
    ------
    UserError
        One line naming the file and what is wrong: not found, not TOML, an unknown key or
        knob, an empty value list, a bad target or workload, or no legal design point.
    """
    p = Path(path)
    src = str(p)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"--space {src!r}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"--space {src!r}: is a directory, not a TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"--space {src!r}: not valid TOML ({exc})") from None
    allowed = ("name", "base", "knobs", "target", "workloads")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise _fail(src, f"key must be one of {', '.join(allowed)}, not {unknown[0]!r}")
    name = data.get("name", p.stem)
    if not isinstance(name, str):
        raise _fail(src, f"name must be a string, not {name!r}")
    knobs = data.get("knobs")
    if not isinstance(knobs, dict) or not knobs:
        raise _fail(src, "[knobs] must list at least one knob")
    for knob, values in knobs.items():
        _check_knob(src, knob, values)
    if "tm" in knobs and "tm_per_p" in knobs:
        raise _fail(src, "give knob tm or tm_per_p, not both")
    base = data.get("base", "rcm-small")
    from ..presets import PRESETS, preset

    if base not in PRESETS or preset(base).kind != "tile":
        tiles = [n for n in PRESETS if preset(n).kind == "tile"]
        raise _fail(src, f"base must be one of {', '.join(tiles)}, not {base!r}")
    target = data.get("target", {})
    if not isinstance(target, dict):
        raise _fail(src, "[target] must be a table with kind and liberty")
    bad = [k for k in target if k not in ("kind", "liberty", "energy", *_BUDGET_KEYS)]
    if bad:
        raise _fail(src, f"[target] key must be kind, liberty, energy, "
                         f"{', '.join(_BUDGET_KEYS)}, not {bad[0]!r}")
    kinds = target.get("kind", "asic")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if not kinds:
        raise _fail(src, "target kind has an empty list")
    for kind in kinds:
        if kind not in TARGETS:
            raise _fail(src, f"target kind must be one of {', '.join(TARGETS)}, not {kind!r}")
    if len(set(kinds)) != len(kinds):
        raise _fail(src, f"target kind lists a target twice: {kinds!r}")
    energy = target.get("energy", False)
    if not isinstance(energy, bool):
        raise _fail(src, f"target energy must be true or false, not {energy!r}")
    if energy and any(kind != "asic" for kind in kinds):
        raise _fail(src, f"target energy applies to kind asic (a gate-level run of the "
                         f"synthesized netlist), not {next(k for k in kinds if k != 'asic')!r}")
    liberty = target.get("liberty")
    if liberty is not None:
        if "asic" not in kinds:
            raise _fail(src, "target liberty applies to kind asic")
        from ..flows.liberty import load_liberty

        lib_path = Path(str(liberty))
        if not lib_path.is_absolute():
            lib_path = p.parent / lib_path
        load_liberty(str(lib_path), option=f"--space {src!r}: target liberty")
        liberty = str(lib_path.resolve())
    budget = _budget(src, target, kinds)
    workloads = data.get("workloads")
    if not isinstance(workloads, list) or not workloads:
        raise _fail(src, "at least one [[workloads]] entry is required")
    wls = tuple(_workload(src, p.parent, i, w) for i, w in enumerate(workloads))
    names = [w.name for w in wls]
    if len(set(names)) != len(names):
        raise _fail(src, f"workload names must be unique, not {names!r}")
    space = Space(name, {k: list(v) for k, v in knobs.items()}, base, tuple(kinds),
                  liberty, wls, p, energy, budget)
    reasons: dict[str, int] = {}
    combos = space.combinations()
    for combo in combos:
        try:
            space.point(combo)
            break
        except ValueError as exc:
            reasons[str(exc)] = reasons.get(str(exc), 0) + 1
    else:
        first = next(iter(reasons))
        raise _fail(src, f"no legal design point among {len(combos)} combinations "
                         f"(e.g. {first})")
    return space
