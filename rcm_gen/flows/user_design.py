"""A design rcm_gen did not generate: the user's Verilog or SystemVerilog files and a top
module, put through the same synthesis and power flows as a generated design point.

For ``rcm-gen power``, a port map (TOML) says which of the design's ports play the MAC's
roles, how its lane mode is encoded and what it computes::

    [ports]              # the design's port names, by role
    clock = "clk"
    reset = "rst"        # optional
    a = "act"            # packed activations (lane 0 in the low bits)
    w = "wgt"            # packed weights
    mode = "mode"        # optional: lane-count select (absent: one lane only)
    act_signed = "sgn"   # optional: 1 = signed activations (only with activations = "both")
    en = "en"            # optional: accumulate this cycle's product (absent: always)
    clear = "clr"        # start a new sum (see clear below)
    acc = "acc"          # the running sum, two's complement

    [design]
    width = 16           # operand port width W
    lanes = [1, 2, 4]    # lane counts the design computes (Sum-Together dot products)
    latency = 2          # clock edges from operands at the ports to acc showing them
    reset_active = 1     # level of the reset port that resets
    mode_encoding = { 1 = 0, 2 = 1, 4 = 2 }   # lanes -> value on the mode port
    activations = "both" # "both" (signed or unsigned, chosen by the act_signed port),
                         # "signed" or "unsigned" (that signedness only, no act_signed port)
    clear = "load"       # "load": the sum restarts with this cycle's product;
                         # "zero": the sum empties and this cycle's product is not added
    clear_latency = 2    # clock edges from the clear port to acc showing the new sum
                         # (1 to latency; latency: clear travels with its operands,
                         # 1: it acts on the accumulator register itself)
    weight_lanes = "same"          # "reversed": lane i of the weight word holds the weight
                                   # of activation lane N-1-i (N lanes)
    acc_bits = { 2 = 13, 4 = 10 }  # lanes -> the valid low bits of acc in that mode

Every [design] key but ``width`` is optional; the defaults are the values shown, except
``lanes = [1]``, ``latency = 1``, ``clear_latency`` = ``latency``, ``activations`` =
"both" with an ``act_signed`` port and "signed" without one, and ``acc_bits`` = the whole
acc port in every mode.  Every other input port is held at 0.

The design must compute, with N lanes of W/N bits (lane i of each word at bits
``i·W/N`` up; weights signed; activations as ``activations`` says), the dot product
``p = sum_i a_i · w_i`` (``w_{N-1-i}`` in place of ``w_i`` for reversed weight lanes)
and ``acc <= (clear ? 0 : acc) + (en ? p : 0)`` (``clear = "load"``) or
``acc <= clear ? 0 : acc + (en ? p : 0)`` (``clear = "zero"``), where ``en`` and the
operands reach the accumulator ``latency`` clock edges after they are at the ports and
``clear`` ``clear_latency`` edges after.  ``acc`` is checked against numpy modulo
2^acc_bits (its low ``acc_bits`` bits, two's complement) in each mode; results in flight
when the mode port changes are not checked (the design may switch its accumulator with
the mode port rather than with its operands).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import MacMode
from ..errors import UserError

__all__ = ["PortMap", "UserDesign", "load_port_map", "user_design"]


@dataclass(frozen=True)
class UserDesign:
    """User HDL files (absolute paths), the top module and its clock input (timed by
    static timing); ``sha256`` hashes the files' contents, so a changed file is
    synthesized again."""

    files: tuple[str, ...]
    top: str
    sha256: str
    clock: str = "clk"
    kind: str = "verilog"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "files": list(self.files), "top": self.top,
                "clock": self.clock, "sha256": self.sha256}

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2) + "\n"


def _yosys_check(files: list[Path], top: str, clock: str) -> str | None:
    """Yosys's first error reading ``files``, elaborating ``top`` and finding its input
    ``clock``, or None."""
    script = "; ".join([*(f"read_verilog -sv {f}" for f in files),
                        f"hierarchy -check -top {top}", f"select -assert-any {top}/i:{clock}"])
    code = ("import sys\nfrom pyosys import libyosys as ys\nd = ys.Design()\n"
            "for cmd in sys.argv[1].split('; '):\n    ys.run_pass(cmd, d)\n")
    proc = subprocess.run([sys.executable, "-c", code, script], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode == 0:
        return None
    text = proc.stdout + proc.stderr
    errors = [ln.strip() for ln in text.splitlines() if "ERROR:" in ln]
    return errors[0] if errors else f"exit status {proc.returncode}"


def user_design(files: list[str], top: str | None, clock: str = "clk") -> UserDesign:
    """Check the user's HDL: files exist and Yosys reads them and finds ``top`` with an
    input ``clock``.

    Raises
    ------
    UserError
        ``--top`` missing, a file missing, Yosys's first error line, or no input
        ``clock``.
    """
    if not files:
        raise UserError("--verilog needs at least one file")
    if not top:
        raise UserError("--verilog needs --top NAME (the top module)")
    paths = []
    digest = hashlib.sha256(top.encode())
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise UserError(f"--verilog {f!r}: file not found")
        digest.update(p.read_bytes())
        paths.append(p.resolve())
    error = _yosys_check(paths, top, clock)
    if error and "selection is empty" in error:
        raise UserError(f"--verilog: top {top!r} has no input {clock!r} to time as the clock "
                        "(name it with --clock-port)")
    if error:
        raise UserError(f"--verilog: Yosys cannot read the design ({error})")
    return UserDesign(tuple(str(p) for p in paths), top, digest.hexdigest(), clock)


#: Allowed values of the port map's semantic keys (the first is the default).
ACTIVATIONS = ("both", "signed", "unsigned")
CLEAR_KINDS = ("load", "zero")
WEIGHT_LANES = ("same", "reversed")


@dataclass(frozen=True)
class PortMap:
    """The roles of a design's ports and what it computes (see the module docstring).

    Members
    -------
    activations : str
        ``"both"`` (the ``act_signed`` port chooses), ``"signed"`` or ``"unsigned"``;
        ``None`` given: ``"both"`` with an ``act_signed`` port, else ``"signed"``.
    clear_kind : str
        ``"load"`` (the sum restarts with this cycle's product) or ``"zero"`` (the sum
        empties; this cycle's product is not added).
    clear_latency : int
        Clock edges from the clear port to ``acc`` showing the new sum (1 to ``latency``);
        ``None`` given: ``latency`` (clear travels with its operands).
    weight_lanes : str
        ``"same"`` or ``"reversed"`` (lane i of the weight word pairs with activation lane
        N-1-i).
    acc_bits : dict of int to int
        Lane count -> valid low bits of ``acc`` in that mode (absent: the whole port).

    Raises
    ------
    ValueError
        A semantic value not allowed, or one that contradicts the ports.
    """

    clock: str
    a: str
    w: str
    clear: str
    acc: str
    width: int
    lanes: tuple[int, ...] = (1,)
    latency: int = 1
    reset: str | None = None
    reset_active: int = 1
    mode: str | None = None
    act_signed: str | None = None
    en: str | None = None
    mode_encoding: dict[int, int] = field(default_factory=dict)
    activations: str | None = None
    clear_kind: str = "load"
    clear_latency: int | None = None
    weight_lanes: str = "same"
    acc_bits: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.activations is None:
            object.__setattr__(self, "activations",
                               "both" if self.act_signed is not None else "signed")
        if self.clear_latency is None:
            object.__setattr__(self, "clear_latency", self.latency)
        for what, value, allowed in (("Activations", self.activations, ACTIVATIONS),
                                     ("Clear kind", self.clear_kind, CLEAR_KINDS),
                                     ("Weight lane order", self.weight_lanes, WEIGHT_LANES)):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
        if (self.activations == "both") != (self.act_signed is not None):
            raise ValueError(f"Activations {self.activations!r} "
                             + ("need an act_signed port" if self.act_signed is None
                                else f"take no act_signed port, not {self.act_signed!r}"))
        if not 1 <= self.clear_latency <= self.latency:  # type: ignore[operator]
            raise ValueError(f"Clear latency must be from 1 to the latency {self.latency}, "
                             f"not {self.clear_latency!r}")
        extra = sorted(set(self.acc_bits) - set(self.lanes))
        if extra:
            raise ValueError(f"Accumulator bits must be given for lane counts of "
                             f"{list(self.lanes)}, not {extra}")

    def mac_modes(self) -> tuple[MacMode, ...]:
        """The design's modes: a Sum-Together mode per lane count."""
        return tuple(MacMode.lane_mode(self.width, n) for n in sorted(self.lanes))

    def mode_value(self, mode: MacMode) -> int:
        """The value on the mode port that selects ``mode``."""
        return self.mode_encoding.get(mode.act_lanes, 0)

    @property
    def port_widths(self) -> tuple[int, int]:
        """Widths of the activation and weight ports."""
        return self.width, self.width

    @property
    def act_signedness(self) -> tuple[bool, ...]:
        """The activation signedness the design takes (False: unsigned)."""
        return {"both": (False, True), "signed": (True,), "unsigned": (False,)}[
            self.activations]  # type: ignore[index]

    @property
    def clear_delay(self) -> int:
        """Cycles the clear port is driven after the operands whose sum it starts."""
        return self.latency - self.clear_latency  # type: ignore[operator]

    @property
    def mode_in_pipeline(self) -> bool:
        """Whether the mode travels down the pipeline with its operands (unknown for a
        user's design: results in flight when the mode port changes are not checked)."""
        return False

    def valid_acc_bits(self, mode: MacMode, port_bits: int) -> int:
        """The low bits of ``acc`` (a ``port_bits``-bit port) that ``mode`` defines."""
        return self.acc_bits.get(mode.act_lanes, port_bits)

    def to_dict(self) -> dict[str, Any]:
        """The port map as its TOML tables (a report carries it)."""
        ports = {"clock": self.clock, "reset": self.reset, "a": self.a, "w": self.w,
                 "mode": self.mode, "act_signed": self.act_signed, "en": self.en,
                 "clear": self.clear, "acc": self.acc}
        return {"ports": {k: v for k, v in ports.items() if v is not None},
                "design": {"width": self.width, "lanes": list(self.lanes),
                           "latency": self.latency, "reset_active": self.reset_active,
                           "mode_encoding": {str(k): v for k, v in self.mode_encoding.items()},
                           "activations": self.activations, "clear": self.clear_kind,
                           "clear_latency": self.clear_latency,
                           "weight_lanes": self.weight_lanes,
                           "acc_bits": {str(k): v for k, v in sorted(self.acc_bits.items())}}}

    def check(self, ports: dict[str, tuple[str, tuple[int, ...]]], option: str) -> None:
        """:class:`UserError` unless the mapped ports exist with the right direction and
        widths, and ``acc_bits`` fit the acc port."""
        roles = {"clock": self.clock, "a": self.a, "w": self.w, "clear": self.clear,
                 "acc": self.acc, "reset": self.reset, "mode": self.mode,
                 "act_signed": self.act_signed, "en": self.en}
        for role, name in roles.items():
            if name is None:
                continue
            if name not in ports:
                raise UserError(f"{option}: port {name!r} ({role}) is not a port of the "
                                f"design (ports: {', '.join(ports)})")
            want = "output" if role == "acc" else "input"
            if ports[name][0] != want:
                raise UserError(f"{option}: port {name!r} ({role}) must be an {want}")
        for role, want in zip(("a", "w"), self.port_widths, strict=True):
            got = len(ports[roles[role]][1])
            if got != want:
                raise UserError(f"{option}: port {roles[role]!r} ({role}) is {got} bits, not "
                                f"width {want}")
        acc = len(ports[self.acc][1])
        for lanes, bits in sorted(self.acc_bits.items()):
            if bits > acc:
                raise UserError(f"{option}: [design] acc_bits {lanes} = {bits} must be at "
                                f"most the {acc} bits of port {self.acc!r} (acc)")


def _one_of(option: str, key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise UserError(f"{option}: [design] {key} must be one of "
                        f"{', '.join(repr(a) for a in allowed)}, not {value!r}")
    return value


def _lane_table(option: str, key: str, raw: Any, lanes: list[int], what: str
                ) -> dict[int, int]:
    """A TOML table of lane count -> integer (``what`` says what the values are)."""
    if not isinstance(raw, dict):
        raise UserError(f"{option}: [design] {key} must be a table of lane counts to {what}, "
                        f"not {raw!r}")
    out = {}
    for k, v in raw.items():
        if not (isinstance(k, str) and k.isdigit() and int(k) in lanes):
            raise UserError(f"{option}: [design] {key} keys must be lane counts of lanes "
                            f"{lanes}, not {k!r}")
        if not isinstance(v, int) or isinstance(v, bool):
            raise UserError(f"{option}: [design] {key} {k} must be an integer ({what}), not "
                            f"{v!r}")
        out[int(k)] = v
    return out


def load_port_map(path: str | Path) -> PortMap:
    """Read a port map (TOML, see the module docstring).

    Raises
    ------
    UserError
        The file missing or unreadable, or a key or value not allowed: one line naming the
        file, the key, the value and what is allowed.
    """
    option = f"--ports {str(path)!r}"
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{option}: file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{option}: cannot read ({exc})") from None
    ports, design = data.get("ports", {}), data.get("design", {})
    unknown = set(data) - {"ports", "design"}
    if unknown:
        raise UserError(f"{option}: sections must be [ports] and [design], not "
                        f"{sorted(unknown)!r}")
    role_keys = ("clock", "reset", "a", "w", "mode", "act_signed", "en", "clear", "acc")
    for k, v in ports.items():
        if k not in role_keys:
            raise UserError(f"{option}: [ports] key must be one of {', '.join(role_keys)}, "
                            f"not {k!r}")
        if not isinstance(v, str) or not v:
            raise UserError(f"{option}: [ports] {k} must be a port name, not {v!r}")
    for k in ("clock", "a", "w", "clear", "acc"):
        if k not in ports:
            raise UserError(f"{option}: [ports] needs {k}")
    design_keys = ("width", "lanes", "latency", "reset_active", "mode_encoding", "activations",
                   "clear", "clear_latency", "weight_lanes", "acc_bits")
    for k in design:
        if k not in design_keys:
            raise UserError(f"{option}: [design] key must be one of {', '.join(design_keys)}, "
                            f"not {k!r}")
    width = design.get("width")
    if not isinstance(width, int) or isinstance(width, bool) or width < 2:
        raise UserError(f"{option}: [design] width must be an integer of at least 2, not "
                        f"{width!r}")
    lanes = design.get("lanes", [1])
    if not isinstance(lanes, list) or not lanes or any(
            not isinstance(n, int) or n < 1 or width % n or width // n < 2 for n in lanes):
        raise UserError(f"{option}: [design] lanes must be lane counts dividing width {width} "
                        f"with at least 2 bits per lane, not {lanes!r}")
    latency = design.get("latency", 1)
    if not isinstance(latency, int) or not 1 <= latency <= 64:
        raise UserError(f"{option}: [design] latency must be an integer from 1 to 64, not "
                        f"{latency!r}")
    enc_raw = design.get("mode_encoding", {})
    try:
        encoding = {int(k): int(v) for k, v in enc_raw.items()}
    except (AttributeError, TypeError, ValueError):
        raise UserError(f"{option}: [design] mode_encoding must map lane counts to values, not "
                        f"{enc_raw!r}") from None
    if len(lanes) > 1 and "mode" not in ports:
        raise UserError(f"{option}: lanes {lanes} need a [ports] mode")
    if "mode" in ports:
        missing = [n for n in lanes if n not in encoding]
        if missing:
            raise UserError(f"{option}: [design] mode_encoding has no value for lanes "
                            f"{missing}")
    reset_active = design.get("reset_active", 1)
    if reset_active not in (0, 1):
        raise UserError(f"{option}: [design] reset_active must be 0 or 1, not "
                        f"{reset_active!r}")
    has_signed = "act_signed" in ports
    activations = _one_of(option, "activations",
                          design.get("activations", "both" if has_signed else "signed"),
                          ACTIVATIONS)
    if activations == "both" and not has_signed:
        raise UserError(f"{option}: [design] activations = 'both' needs a [ports] act_signed "
                        f"(or say 'signed' or 'unsigned')")
    if activations != "both" and has_signed:
        raise UserError(f"{option}: [design] activations = {activations!r} takes no [ports] "
                        f"act_signed (given {ports['act_signed']!r}; say 'both' to use it)")
    clear_kind = _one_of(option, "clear", design.get("clear", "load"), CLEAR_KINDS)
    clear_latency = design.get("clear_latency", latency)
    if (not isinstance(clear_latency, int) or isinstance(clear_latency, bool)
            or not 1 <= clear_latency <= latency):
        raise UserError(f"{option}: [design] clear_latency must be an integer from 1 to "
                        f"latency {latency}, not {clear_latency!r}")
    weight_lanes = _one_of(option, "weight_lanes", design.get("weight_lanes", "same"),
                           WEIGHT_LANES)
    acc_bits = _lane_table(option, "acc_bits", design.get("acc_bits", {}), lanes,
                           "valid low bits of acc")
    for n, bits in sorted(acc_bits.items()):
        if bits < 1:
            raise UserError(f"{option}: [design] acc_bits {n} must be at least 1, not {bits}")
    return PortMap(ports["clock"], ports["a"], ports["w"], ports["clear"], ports["acc"], width,
                   tuple(sorted(lanes)), latency, ports.get("reset"), reset_active,
                   ports.get("mode"), ports.get("act_signed"), ports.get("en"), encoding,
                   activations, clear_kind, clear_latency, weight_lanes, acc_bits)
