"""``power`` flow: energy per operation of a MAC from a gate-level simulation of its
synthesized netlist.

The netlist is the one the ASIC synthesis flow writes (the same cache folder as
``rcm-gen synth``).  It is simulated with cell models written from the liberty
(:mod:`rcm_gen.flows.netlist`, :mod:`rcm_gen.sim.gate_level`), driven in every lane mode and
activation signedness with operand streams (:mod:`rcm_gen.sim.power_stimulus`); every
accumulator value is checked against numpy, so a power run is also a gate-level check of
the netlist.  Toggle counts of every net in each mode's window of cycles give energy
through :class:`rcm_gen.power.energy.EnergyModel`.

The entry point for other energy models (a tile, a network) is :func:`mac_energy`: a
design point and a stimulus in, energy per cycle and per MAC of each mode out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MacConfig, MacMode, fastest_mode
from ..errors import ToolFailed, UserError
from ..flows.asic import asic_constraints, design_top
from ..flows.liberty import Liberty
from ..flows.user_design import PortMap, UserDesign
from ..reference import mode_dot, pack_operands
from ..tools import python_package_version, tool_versions
from .energy import CLOCK_PARTS, ENERGY_GROUPS, EnergyModel

__all__ = [
    "GatePower",
    "MacPortMap",
    "POWER_KEYS",
    "PowerMode",
    "compare_power",
    "format_power",
    "mac_energy",
    "mac_port_map",
    "power_modes",
    "power_points",
]

#: Keys of ``rcm_gen/flows/data/asic.toml`` that only the power flow reads.
POWER_KEYS = ("input_transition_ns", "wire_load", "wire_cap_per_fanout", "clock_tree_fanout",
              "clock_wire_cap_per_um", "placement_density", "clock_buffer")

#: Operations per multiply-accumulate in TOPS/W (a multiply and an add).
OPS_PER_MAC = 2

#: Cycles after each mode switch that are simulated but not measured (the pipeline fills
#: with the new mode's operands), beyond the design's latency.
_SETTLE = 2


@dataclass(frozen=True)
class PowerMode:
    """One measured operating point: the data's activation and weight widths, the MAC mode
    that runs them (its MACs per cycle) and the activations' signedness."""

    bits: int
    weight_bits: int
    mode: MacMode
    act_signed: bool

    @property
    def lanes(self) -> int:
        """MACs per cycle (operand pairs the MAC takes each cycle)."""
        return self.mode.products

    def key(self) -> tuple[int, int, bool]:
        return (self.bits, self.weight_bits, self.act_signed)


@dataclass(frozen=True)
class MacPortMap(PortMap):
    """The port roles of a MAC rcm_gen generates, with its modes and operand words."""

    config: MacConfig | None = None

    def mac_modes(self) -> tuple[MacMode, ...]:
        return self.config.mac_modes  # type: ignore[union-attr]

    def mode_value(self, mode: MacMode) -> int:
        from ..gateware.modes import mode_port_value

        return mode_port_value(self.config, mode)  # type: ignore[arg-type]

    @property
    def port_widths(self) -> tuple[int, int]:
        return self.config.act_word_bits, self.config.weight_word_bits  # type: ignore[union-attr]

    @property
    def mode_in_pipeline(self) -> bool:
        return True  # rcm_mac registers the mode with its operands


def mac_port_map(config: MacConfig) -> MacPortMap:
    """The port roles of rcm_gen's MAC (``rcm_mac``)."""
    return MacPortMap(clock="clk", a="a", w="w", clear="clear", acc="acc", width=config.width,
                      lanes=config.lanes, latency=config.latency, reset="rst", reset_active=1,
                      mode="mode", act_signed="act_signed", en="en",
                      mode_encoding={n: n.bit_length() - 1 for n in config.lanes},
                      config=config)


def power_points(ports: PortMap) -> list[tuple[int, int]]:
    """The data widths (activation bits, weight bits) a power run of a design measures by
    default: those of each of its modes; a one-mode, one-product (fixed) design's at W,
    W/2 and W/4 bits (one product per cycle), so that it meets a precision-scalable
    design on the same data at every precision."""
    modes = ports.mac_modes()
    if len(modes) == 1 and modes[0].products == 1:
        return [(ports.width // d,) * 2 for d in (1, 2, 4) if ports.width // d >= 2]
    return [(m.act_bits, m.weight_bits) for m in modes]


def power_modes(ports: PortMap, signedness: tuple[bool, ...] = (False, True),
                points: list[tuple[int, int]] | None = None) -> list[PowerMode]:
    """The operating points a power run measures: at each data width pair of ``points``
    (default :func:`power_points`) the design's fastest mode that holds them, for each
    activation signedness; a pair no mode holds is left out."""
    signs = tuple(s for s in signedness if s in ports.act_signedness)
    out = []
    for bits, wbits in points if points is not None else power_points(ports):
        mode = fastest_mode(ports.mac_modes(), bits, wbits)
        if mode is not None:
            out += [PowerMode(bits, wbits, mode, s) for s in signs]
    return out


def _energy_constraints(cons: dict[str, Any], lib: Liberty) -> dict[str, Any]:
    """The constraints the energy model reads, the clock buffer resolved (the constraints',
    the library section's, or the liberty's own: :func:`clock_buffer_cell`)."""
    from ..flows.asic import _resolve_liberty
    from .clock_tree import clock_buffer_cell

    _, settings = _resolve_liberty(cons)
    out = {k: cons.get(k) for k in ("output_load", *POWER_KEYS)}
    out["clock_buffer"] = clock_buffer_cell(lib, {
        "clock_buffer": cons.get("clock_buffer") or settings.get("clock_buffer"),
        "dont_use": cons.get("dont_use") or settings.get("dont_use")})
    return out


def _synthesized(design: Any, liberty: str | None, clock_ns: float | None,
                 constraints: dict[str, Any] | None,
                 on_synth: Callable[[str], None] | None) -> dict[str, Any]:
    from ..flows.synth import cached_report, run_dir, synthesize

    report = cached_report(design, "asic", liberty, clock_ns, constraints)
    if report is None:
        out = run_dir(design, "asic", liberty, clock_ns, constraints)
        if on_synth:
            on_synth(str(out))
        report = synthesize(design, "asic", out_dir=out, liberty=liberty, clock_ns=clock_ns,
                            constraints=constraints)
    return report


def _library(report: dict[str, Any], liberty: str | None, constraints: dict[str, Any] | None
             ) -> tuple[Liberty, dict[str, Any]]:
    from ..flows.asic import _resolve_liberty

    cons = asic_constraints({**(constraints or {}),
                             **({"liberty": liberty} if liberty else {})})
    lib, _ = _resolve_liberty(cons)
    if lib.name != report["liberty"]["name"]:
        raise ToolFailed(f"synthesis report names liberty {report['liberty']['name']!r}, "
                         f"not {lib.name!r}; log: {report['log']}")
    return lib, cons


def _used_macros(design: Any, report: dict[str, Any]) -> list[Any]:
    """The macros of ``design``'s macro library that its synthesized netlist instantiates
    (none for flip-flop buffers or a design without memories)."""
    used = (report.get("memory") or {}).get("macros") or {}
    if not used:
        return []
    from ..flows.macros import load_macro_library

    library = load_macro_library(getattr(design, "macros", None)
                                 or report["memory"]["macro_library"])
    return [library.macro(name) for name in sorted(used)]


def _schedule(ports: PortMap, modes: list[PowerMode],
              streams: dict[tuple[int, int, bool], Any], cycles: int, accumulate: int,
              inputs: list[str]
              ) -> tuple[dict[str, np.ndarray], list[tuple[int, int]], np.ndarray, np.ndarray,
                         np.ndarray]:
    """Per-cycle input values for the whole run (reset, then each mode: settling cycles
    and ``cycles`` measured ones), the measured windows, the expected accumulator after
    each cycle's operands (under the port map's semantics: activation signedness, weight
    lane order, clear kind and timing), which cycles to check, and each cycle's index in
    ``modes`` (-1 in reset)."""
    reset_cycles = 2
    settle = ports.latency + _SETTLE
    total = reset_cycles + len(modes) * (settle + cycles)
    wide = max(ports.port_widths) > 62  # words as Python ints
    a = np.zeros(total, dtype=object if wide else np.int64)
    w = np.zeros(total, dtype=object if wide else np.int64)
    mode = np.zeros(total, dtype=np.int64)
    signed = np.zeros(total, dtype=np.int64)
    en = np.zeros(total, dtype=np.int64)
    clear = np.zeros(total, dtype=np.int64)
    rst = np.zeros(total, dtype=np.int64)
    product = np.zeros(total, dtype=np.int64)
    which = np.full(total, -1, dtype=np.int64)
    rst[:reset_cycles] = 1
    windows = []
    t = reset_cycles
    for k, m in enumerate(modes):
        s = streams[m.key()]
        run = settle + cycles
        pairs_a = s.a[: run * m.lanes] if len(s.a) >= run * m.lanes else np.resize(
            s.a, run * m.lanes)
        pairs_w = s.w[: run * m.lanes] if len(s.w) >= run * m.lanes else np.resize(
            s.w, run * m.lanes)
        # the settling cycles take the stream's last pairs, the measured ones its first
        pairs_a = np.concatenate([pairs_a[cycles * m.lanes:], pairs_a[: cycles * m.lanes]])
        pairs_w = np.concatenate([pairs_w[cycles * m.lanes:], pairs_w[: cycles * m.lanes]])
        av = pairs_a.reshape(run, m.lanes)
        wv = pairs_w.reshape(run, m.lanes)
        words_a, words_w = pack_operands(av, wv, m.mode, m.act_signed)
        sl = slice(t, t + run)
        product[sl] = mode_dot(words_a, words_w, m.mode, m.act_signed)
        if ports.weight_lanes == "reversed":
            # weight lane i pairs with activation lane N-1-i (Sum-Together modes only)
            words_w = pack_operands(av, wv[:, ::-1], m.mode, m.act_signed)[1]
        a[sl], w[sl] = words_a, words_w
        mode[sl] = ports.mode_value(m.mode)
        signed[sl] = int(m.act_signed)
        en[sl] = 1
        which[sl] = k
        local = np.arange(run)
        clear[sl] = ((local - settle) % accumulate == 0) | (local == 0)
        windows.append((t + settle, t + run))
        t += run
    # expected accumulator after each cycle's operands
    zero = ports.clear_kind == "zero"
    expected = np.zeros(total, dtype=object)
    acc = 0
    for i in range(total):
        add = int(product[i]) if en[i] else 0
        if rst[i]:
            acc = 0
        elif zero:
            acc = 0 if clear[i] else acc + add
        else:
            acc = (0 if clear[i] else acc) + add
        expected[i] = acc
    check = ~rst.astype(bool)
    if not ports.mode_in_pipeline:
        # a result shows latency - 1 cycles after its operands; where the mode port has
        # changed by then, the design may have switched its accumulator already
        lag = ports.latency - 1
        check[: total - lag] &= which[: total - lag] == which[lag:]
    # the clear port acts clear_latency edges before acc shows it: driven that much later
    # than the operands whose sum it starts (a clear for operands past the run is dropped)
    delay = ports.clear_delay
    clear_port = np.zeros(total, dtype=np.int64)
    clear_port[delay:] = clear[: total - delay]
    values = {"a": a, "w": w, "mode": mode, "act_signed": signed, "en": en,
              "clear": clear_port, "reset": rst if ports.reset_active else 1 - rst}
    by_port: dict[str, np.ndarray] = {}
    for role, name in (("a", ports.a), ("w", ports.w), ("mode", ports.mode),
                       ("act_signed", ports.act_signed), ("en", ports.en),
                       ("clear", ports.clear), ("reset", ports.reset)):
        if name is not None:
            by_port[name] = values[role]
    for name in inputs:
        by_port.setdefault(name, np.zeros(total, dtype=np.int64))
    return by_port, windows, expected, check, which


def _streams(stimulus: str, modes: list[PowerMode], cycles: int, settle: int, seed: int
             ) -> tuple[list[PowerMode], dict[tuple[int, int, bool], Any]]:
    from ..sim.power_stimulus import load_npz_streams, make_stream

    need: dict[tuple[int, int], int] = {}
    for m in modes:
        point = (m.bits, m.weight_bits)
        need[point] = max(need.get(point, 0), (cycles + settle) * m.lanes)
    if stimulus.endswith(".npz"):
        if not Path(stimulus).is_file():
            raise UserError(f"--stimulus {stimulus!r}: file not found")
        counts = {(p if p[0] != p[1] else p[0]): n for p, n in need.items()}
        streams = {s.key(): s for s in load_npz_streams(stimulus, counts)}
        kept = [m for m in modes if m.key() in streams]
        if not kept:
            raise UserError(f"--stimulus {stimulus!r}: its arrays fit none of the design's "
                            f"modes")
        return kept, streams
    # every design draws the same stream at a precision (a longer one starts with a shorter)
    return modes, {m.key(): make_stream(stimulus, m.bits, m.act_signed,
                                        need[m.bits, m.weight_bits], seed, m.weight_bits)
                   for m in modes}


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _check_accumulator(ports: PortMap, modes: list[PowerMode], got: np.ndarray,
                       expected: np.ndarray, check: np.ndarray, which: np.ndarray,
                       port_bits: int, inputs: dict[str, np.ndarray], simulator: str,
                       log: str, user: bool) -> int:
    """Compare the accumulator the netlist showed with numpy's, in each cycle ``check``
    marks: the low ``acc_bits`` of the mode, two's complement.  The number of values
    compared; :class:`ToolFailed` at the first that differs, naming the cycle, the mode,
    the operands and the log."""
    lat = ports.latency
    bits = [ports.valid_acc_bits(m.mode, port_bits) for m in modes]
    checked = 0
    for t in range(len(expected) - lat + 1):
        if not check[t]:
            continue
        n = bits[which[t]]
        g, want = _signed(int(got[t + lat - 1]), n), _signed(int(expected[t]), n)
        if g != want:
            m = modes[which[t]]
            part = f"acc[{n - 1}:0]" if n < port_bits else "acc"
            hint = ("; the design does not compute what --ports says (check [design] "
                    "activations, clear, clear_latency, weight_lanes, acc_bits, latency)"
                    if user else "")
            raise ToolFailed(
                f"gate-level accumulator differs from numpy at cycle {t} ({m.mode.name} mode, "
                f"{m.lanes} lane{'s' if m.lanes > 1 else ''}, "
                f"{'signed' if m.act_signed else 'unsigned'} activations, "
                f"{ports.a}={int(inputs[ports.a][t]):#x} {ports.w}={int(inputs[ports.w][t]):#x}"
                f"): {part} = {g}, numpy {want} ({simulator}){hint}; log: {log}")
        checked += 1
    return checked


@dataclass
class GatePower:
    """A synthesized netlist ready for gate-level energy runs: the design's netlist (from
    the synthesis cache, synthesized if absent), its energy model and its built
    simulation.  What a MAC run uses, and what a tile or network energy model can drive
    with its own per-cycle inputs.

    Use :meth:`prepare`, then :meth:`run` with one value per cycle for the input ports
    (those not given are held at 0) and windows of cycles to measure.
    """

    design: Any
    report: dict[str, Any]
    lib: Liberty
    constraints: dict[str, Any]
    netlist: Any
    model: EnergyModel
    sim: Any
    clock_ns: float

    @classmethod
    def prepare(cls, design: Any, *, clock: str = "clk", liberty: str | None = None,
                clock_ns: float | None = None, constraints: dict[str, Any] | None = None,
                simulator: str = "verilator", check_ports: Callable[[Any], None] | None = None,
                on_synth: Callable[[str], None] | None = None,
                lap: Callable[[str], None] | None = None,
                groups: tuple[str, ...] | None = None,
                group_of_module: Callable[[str, str], str] | None = None,
                sample: str = "after", report: dict[str, Any] | None = None,
                detail_of_module: Callable[[str, str], str | None] | None = None
                ) -> GatePower:
        """Synthesize (or take from the cache) ``design``, read its netlist, build its
        energy model and its simulation; ``check_ports(netlist)`` may refuse the netlist's
        ports (before the simulation is built).  ``groups`` and ``group_of_module`` set
        the breakdown and ``detail_of_module`` its components (see
        :class:`~rcm_gen.power.energy.EnergyModel`), ``sample`` when
        the outputs are read (:class:`~rcm_gen.sim.gate_level.GateSim`); ``report`` is a
        synthesis report of ``design`` with these settings to take the netlist from
        (default: the synthesis cache's)."""
        from ..flows.liberty import load_liberty
        from ..flows.netlist import read_netlist
        from ..sim.gate_cycle import MacroPorts
        from ..sim.gate_level import gate_simulation

        lap = lap or (lambda _what: None)
        cons_in = dict(constraints or {})
        if clock_ns is not None:
            cons_in["clock_ns"] = clock_ns
        if report is None:
            report = _synthesized(design, liberty, clock_ns, constraints, on_synth)
        lib, cons = _library(report, liberty, cons_in)
        lap("synthesis_and_liberty")
        top = design_top(design)
        macros = _used_macros(design, report)
        macro_cells = {m.name: load_liberty(m.liberty).cells[m.name] for m in macros}
        netlist = read_netlist(report["netlist"], lib, top,
                               Path(report["netlist"]).parent / "power",
                               tuple(m.liberty for m in macros), frozenset(macro_cells))
        if check_ports is not None:
            check_ports(netlist)
        lap("netlist")
        from ..flows.macros import load_macro_library
        from .sram import macro_energies

        energies = {}
        if macros:
            library = load_macro_library(getattr(design, "macros", None)
                                         or report["memory"]["macro_library"])
            energies = macro_energies(library)
        model = EnergyModel(netlist, lib, clock, _energy_constraints(cons, lib),
                            top_module=top, groups=groups, group_of_module=group_of_module,
                            macro_cells=macro_cells, macro_energy=energies,
                            detail_of_module=detail_of_module)
        lap("energy_model")
        by_name = {m.name: m for m in macros}
        ports = [MacroPorts(m.path, by_name[m.cell], m.pins) for m in netlist.macros]
        sim = gate_simulation(netlist, lib, clock, simulator, sample=sample, macros=ports)
        sim.build()
        lap("simulator_build")
        return cls(design, report, lib, cons, netlist, model, sim, float(cons["clock_ns"]))

    def run(self, inputs: dict[str, np.ndarray], windows: list[tuple[int, int]], *,
            tag: str = "run", on_progress: Callable[[int, int], None] | None = None
            ) -> tuple[list[Any], Any]:
        """Simulate ``inputs`` and return the energy of each window
        (:class:`rcm_gen.power.energy.WindowEnergy`, at this design's clock) and the
        simulation (its outputs per cycle, for checking)."""
        cycles = len(next(iter(inputs.values())))
        full = {p: inputs.get(p, np.zeros(cycles, dtype=np.int64)) for p in self.sim.inputs}
        run = self.sim.run(full, windows, tag=tag, on_progress=on_progress)
        self.model.check_power_data(run.rises, run.falls)
        accesses = (run.access_counts if run.access_counts is not None
                    else [None] * len(windows))
        energies = [self.model.window(r, f, b - a, self.clock_ns, acc)
                    for (a, b), r, f, acc in zip(windows, run.rises, run.falls, accesses,
                                                 strict=True)]
        return energies, run


def mac_energy(design: MacConfig | UserDesign, *, stimulus: str = "random", cycles: int = 1000,
               liberty: str | None = None, clock_ns: float | None = None,
               constraints: dict[str, Any] | None = None, simulator: str = "verilator",
               ports: PortMap | None = None, seed: int = 1, accumulate: int = 128,
               points: list[tuple[int, int]] | None = None,
               on_synth: Callable[[str], None] | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Energy of a MAC in each of its modes, from a gate-level simulation of its netlist.

    Parameters
    ----------
    design : MacConfig or UserDesign
        A generated MAC, or the user's design with ``ports`` saying which port is which.
    stimulus : str
        ``random``, ``relu``, ``sparse`` or a ``.npz`` file of operand streams
        (:mod:`rcm_gen.sim.power_stimulus`).
    cycles : int
        Measured cycles per mode (each mode also runs its latency plus two cycles first).
    liberty, clock_ns, constraints
        As for :func:`rcm_gen.flows.synth.synthesize`; the netlist synthesized with them is
        used (synthesized now if the cache has none).  The power keys of the constraints
        (:data:`POWER_KEYS`) set slews and wire loads.
    simulator : str
        ``verilator`` (toggle coverage) or ``icarus`` (VCD read with pywellen).
    accumulate : int
        Cycles per sum: ``clear`` starts a new one every ``accumulate`` cycles.
    points : list of (int, int), optional
        Data widths (activation bits, weight bits) to measure, each in the design's fastest
        mode that holds them (one it cannot take is left out); default
        :func:`power_points` (each mode of the design).
    on_synth, on_progress
        Called when synthesis starts (with its folder) and as the simulation advances
        (cycles done, cycles in all).

    Returns
    -------
    dict
        The report: ``modes`` (one entry per operating point: ``act_bits``,
        ``weight_bits`` (the data's widths), ``mode`` (the MAC mode that ran them, e.g.
        ``"8x8"``), ``lanes`` and ``macs_per_cycle`` (its MACs per cycle), ``act_signed``,
        ``pj_per_cycle``, ``pj_per_mac``, ``tops_per_w``, ``breakdown``), ``stimulus``,
        ``cycles``, ``clock_ns``,
        ``library``, ``tools``, ``config``, ``port_map`` (a user design's, as
        :meth:`~rcm_gen.flows.user_design.PortMap.to_dict`), ``checked`` (accumulator
        values compared with numpy), ``simulator``, ``synthesis`` (area and the netlist),
        ``constraints``, ``wall_s``.

    Raises
    ------
    UserError
        Bad input: options, stimulus file, port map, or a liberty without
        ``internal_power`` for a cell the netlist uses.
    ToolFailed
        A tool failed, or the gate-level results differ from numpy (the message names the
        log).
    """
    started = time.perf_counter()
    if isinstance(design, MacConfig):
        ports = mac_port_map(design)
    elif not isinstance(design, UserDesign):
        raise UserError(f"power runs on a MAC (a mac preset, a MAC --config or --verilog), "
                        f"not a {getattr(design, 'kind', type(design).__name__)}")
    elif ports is None:
        raise UserError("--verilog needs --ports FILE (the roles of its ports)")
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
        raise UserError(f"--cycles must be an integer of at least 1, not {cycles!r}")
    modes = power_modes(ports, points=points)
    if not modes:
        raise UserError(f"power: {design_top(design)} runs none of the data widths "
                        f"{', '.join(f'{a}x{b}' for a, b in points or [])}")
    modes, streams = _streams(stimulus, modes, cycles, ports.latency + _SETTLE, seed)
    cons_in = dict(constraints or {})
    if clock_ns is not None:
        cons_in["clock_ns"] = clock_ns
    cons = asic_constraints({**cons_in, **({"liberty": liberty} if liberty else {})})
    period = float(cons["clock_ns"])

    timing: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(what: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timing[what] = timing.get(what, 0.0) + now - mark
        mark = now

    lap("stimulus")
    gp = GatePower.prepare(
        design, clock=ports.clock, liberty=liberty, clock_ns=clock_ns, constraints=constraints,
        simulator=simulator, on_synth=on_synth, lap=lap,
        check_ports=lambda net: ports.check(
            net.ports, "--ports" if isinstance(design, UserDesign) else "design"))
    report, lib, cons, netlist, model = gp.report, gp.lib, gp.constraints, gp.netlist, gp.model
    inputs, windows, expected, check, which = _schedule(ports, modes, streams, cycles,
                                                        accumulate, gp.sim.inputs)
    lap("schedule")
    energies, run = gp.run(inputs, windows, tag=f"power-{Path(str(stimulus)).stem}",
                           on_progress=on_progress)
    lap("simulation")
    checked = _check_accumulator(ports, modes, run.outputs[ports.acc], expected, check,
                                 which, len(netlist.ports[ports.acc][1]), inputs,
                                 simulator, str(run.log), isinstance(design, UserDesign))
    lap("check")
    mode_reports = []
    for m, (start, stop), r, f, e in zip(modes, windows, run.rises, run.falls, energies,
                                         strict=True):
        n_cycles = stop - start
        per_cycle = e.total / n_cycles
        macs = m.lanes
        mode_reports.append({
            "act_bits": m.bits, "weight_bits": m.weight_bits, "mode": m.mode.name,
            "lanes": m.lanes, "act_signed": m.act_signed, "macs_per_cycle": macs,
            "pj_per_cycle": per_cycle, "pj_per_mac": per_cycle / macs,
            "tops_per_w": OPS_PER_MAC * macs / per_cycle,
            "breakdown": {
                "internal_pj_per_cycle": e.internal / n_cycles,
                "switching_pj_per_cycle": e.switching / n_cycles,
                "leakage_pj_per_cycle": e.leakage / n_cycles,
                "groups_pj_per_cycle": {g: e.by_group[g] / n_cycles for g in ENERGY_GROUPS},
                "clock_pj_per_cycle": {p: e.components.get(f"clock/{p}", 0.0) / n_cycles
                                       for p in CLOCK_PARTS},
                "components_pj_per_cycle": {c: v / n_cycles
                                            for c, v in e.components.items()},
            },
            "toggles_per_cycle": float((r + f).sum() / n_cycles),
        })
    lap("energy")
    versions = tool_versions("rcm_gen", "yosys", "iverilog" if simulator == "icarus"
                             else "verilator")
    versions.update({"liberty-parser": python_package_version("liberty-parser"),
                     "pywellen": python_package_version("pywellen")})
    return {
        "modes": mode_reports,
        "stimulus": {"kind": "file" if str(stimulus).endswith(".npz") else stimulus,
                     "file": str(stimulus) if str(stimulus).endswith(".npz") else None,
                     "seed": seed, "accumulate": accumulate},
        "cycles": cycles,
        "clock_ns": period,
        "library": {"name": lib.name, "path": str(lib.source), "voltage": lib.voltage,
                    "wire_load_model": model.wire_model},
        "tools": versions,
        "config": design.to_dict(),
        "top": design_top(design),
        **({"port_map": ports.to_dict()} if isinstance(design, UserDesign) else {}),
        "simulator": simulator,
        "checked": checked,
        "synthesis": {"area_um2": report["area_um2"], "cells": report["cells"],
                      "fmax_mhz": report["fmax_mhz"], "netlist": report["netlist"]},
        "constraints": {k: cons.get(k) for k in ("output_load", *POWER_KEYS)},
        "clock_tree": model.clock_tree_summary(),
        "ops_per_mac": OPS_PER_MAC,
        "sim_log": str(run.log),
        "timing_s": timing,
        "wall_s": time.perf_counter() - started,
    }


def compare_power(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """pJ/MAC of report ``a`` over report ``b`` at each data width pair and signedness both
    measured (the same operand data)."""
    index = {(m["act_bits"], m["weight_bits"], m["act_signed"]): m for m in b["modes"]}
    out = []
    for m in a["modes"]:
        other = index.get((m["act_bits"], m["weight_bits"], m["act_signed"]))
        if other:
            out.append({"act_bits": m["act_bits"], "weight_bits": m["weight_bits"],
                        "act_signed": m["act_signed"], "mode": m["mode"],
                        "other_mode": other["mode"], "pj_per_mac": m["pj_per_mac"],
                        "other_pj_per_mac": other["pj_per_mac"],
                        "ratio": m["pj_per_mac"] / other["pj_per_mac"]})
    return out


def format_power(r: dict[str, Any], name: str) -> str:
    """A readable table of a power report."""
    head = ("data", "mode", "MACs/cyc", "pJ/cycle", "pJ/MAC", "TOPS/W", "internal",
            "switching", "leakage", *ENERGY_GROUPS)
    rows = [head]
    for m in r["modes"]:
        b = m["breakdown"]
        rows.append((
            f"{m['act_bits']}x{m['weight_bits']} {'s' if m['act_signed'] else 'u'}",
            m["mode"], str(m["macs_per_cycle"]), f"{m['pj_per_cycle']:.3f}",
            f"{m['pj_per_mac']:.3f}", f"{m['tops_per_w']:.3f}", f"{b['internal_pj_per_cycle']:.3f}",
            f"{b['switching_pj_per_cycle']:.3f}", f"{b['leakage_pj_per_cycle']:.4f}",
            *(f"{b['groups_pj_per_cycle'][g]:.3f}" for g in ENERGY_GROUPS)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [f"{name}: {r['stimulus']['kind']} stimulus, {r['cycles']} cycles per mode, "
             f"clock {r['clock_ns']:g} ns, {r['library']['name']} at {r['library']['voltage']:g} V"]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    clock = [f"{m['act_bits']}x{m['weight_bits']} {'s' if m['act_signed'] else 'u'} "
             + " + ".join(f"{m['breakdown']['clock_pj_per_cycle'][p]:.3f} {p}"
                          for p in CLOCK_PARTS)
             for m in r["modes"] if "clock_pj_per_cycle" in m["breakdown"]]
    if clock:
        tree = r.get("clock_tree") or {}
        lines.append(f"clock (pJ/cycle) = tree + wires + clock pins; estimated tree: "
                     f"{tree.get('buffers', 0)} x {tree.get('buffer_cell')} for "
                     f"{tree.get('sinks', 0)} sinks, {tree.get('wire_um', 0):,.0f} um of wire, "
                     f"leaf slew {tree.get('worst_leaf_slew_ns') or 0:.3f} ns")
        lines += [f"  {c}" for c in clock[:1]]
    lines.append(f"{r['checked']} accumulator values checked against numpy on "
                 f"{r['simulator']} (gate level); data: activation x weight bits and "
                 f"activation signedness, run in the MAC mode shown; energy in pJ per cycle; "
                 f"TOPS/W counts {r['ops_per_mac']} operations per MAC")
    lines.append(f"netlist {r['synthesis']['netlist']} ({r['wall_s']:.1f} s)")
    return "\n".join(lines)
