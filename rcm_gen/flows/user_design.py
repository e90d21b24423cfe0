"""A design rcm_gen did not generate: the user's Verilog or SystemVerilog files and a top
module, put through the same synthesis and power flows as a generated design point.

For ``rcm-gen power``, a port map (TOML) says which of the design's ports play the MAC's
roles and how its lane mode is encoded::

    [ports]              # the design's port names, by role
    clock = "clk"
    reset = "rst"        # optional
    a = "act"            # packed activations (lane 0 in the low bits)
    w = "wgt"            # packed weights
    mode = "mode"        # optional: lane-count select (absent: one lane only)
    act_signed = "sgn"   # optional: 1 = signed activations (absent: signed only)
    en = "en"            # optional: accumulate this cycle's product (absent: always)
    clear = "clr"        # start a new sum with this cycle's product
    acc = "acc"          # the running sum, two's complement

    [design]
    width = 16           # operand port width W
    lanes = [1, 2, 4]    # lane counts the design computes (Sum-Together dot products)
    latency = 2          # clock edges from operands at the ports to acc showing them
    reset_active = 1     # level of the reset port that resets
    mode_encoding = { 1 = 0, 2 = 1, 4 = 2 }   # lanes -> value on the mode port

Every other input port is held at 0.  The design must compute what rcm_gen's MAC
computes: ``acc <= (clear ? 0 : acc) + (en ? sum_i a_i * w_i : 0)`` with N lanes of W/N
bits (weights signed, activations signed when ``act_signed``).
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


@dataclass(frozen=True)
class PortMap:
    """The roles of a design's ports (see the module docstring)."""

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

    def check(self, ports: dict[str, tuple[str, tuple[int, ...]]], option: str) -> None:
        """:class:`UserError` unless the mapped ports exist with the right direction and
        widths."""
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


def load_port_map(path: str | Path) -> PortMap:
    """Read a port map (TOML); :class:`UserError` naming the file and the key."""
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
    design_keys = ("width", "lanes", "latency", "reset_active", "mode_encoding")
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
    return PortMap(ports["clock"], ports["a"], ports["w"], ports["clear"], ports["acc"], width,
                   tuple(sorted(lanes)), latency, ports.get("reset"), reset_active,
                   ports.get("mode"), ports.get("act_signed"), ports.get("en"), encoding)
