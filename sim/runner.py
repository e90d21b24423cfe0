"""Build a design point's Verilog and run a cocotb test module on it (Icarus or Verilator).

One build directory per design point and simulator, under
``<cache>/sim/<top>-<config hash>/<simulator>``; the Verilog is rewritten only when it
changes, so a simulator does not rebuild an unchanged design.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ToolFailed, UserError
from ..flows.lint import VERILATOR_WAIVERS
from ..flows.macros import write_models
from ..generate import config_hash, render_design, top_name
from ..tools import cache_dir, require_executable, verilator_env, write_if_changed

__all__ = ["SIMULATORS", "Design", "SimResult", "SimulationFailed", "run_cocotb"]

SIMULATORS = ("icarus", "verilator")

#: Verilator warning classes Amaranth's output trips by construction (see flows.lint), and
#: the precompiled-header include flag that the PyPI wheel's verilated.mk leaves empty
#: (without it, designs large enough to be split into several C++ files fail to build).
#: The model is compiled at -O1 and its construction code and Verilator's runtime without
#: optimisation: a tile then builds in about a third of the CPU time of the default -Os,
#: and a simulation's time goes mostly to the cocotb testbench anyway.
_VERILATOR_BUILD_ARGS = [f"-Wno-{w}" for w in VERILATOR_WAIVERS]
_VERILATOR_MAKEFLAGS = "CFG_CXXFLAGS_PCH_I=-include"
_VERILATOR_OPT = "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O0"


class SimulationFailed(ToolFailed):
    """A cocotb test failed; the message names the log."""


@dataclass(frozen=True)
class SimResult:
    simulator: str
    results: dict[str, Any]
    log: Path
    build_dir: Path
    wall_s: float
    waves: Path | None


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass(frozen=True)
class Design:
    """A design that is not a design point (a component under test on its own): its top
    module, its Verilog, and the parameters its testbench reads from ``RCM_CONFIG``."""

    top: str
    verilog: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.params)

    def to_json(self) -> str:
        return json.dumps(self.params, indent=2, sort_keys=True) + "\n"


def _top_and_text(config: Any) -> tuple[str, str, list[str]]:
    """The top's name, its Verilog and the modules to build as Verilator hierarchical
    blocks (:func:`_hier_blocks`)."""
    if isinstance(config, Design):
        return config.top, config.verilog, []
    design = render_design(config)
    return design.top, design.text, _hier_blocks(design)


#: Verilator 5 compiles a module's logic once per instance (its scheduler specialises the
#: code of every instance), so a 256-MAC tile became 204 MB of C++ that took most of an
#: hour to build.  The MAC array's repeated module -- its columns, else its MACs -- is
#: instead built once as a hierarchical block (``hier_block``) when the design holds at
#: least this many instances of it: the 256-MAC tile then verilates in seconds.
_HIER_MIN_INSTANCES = 4
_HIER_KINDS = ("mac_column", "mac")


def _hier_blocks(design: Any) -> list[str]:
    """The modules of ``design`` (a :class:`rcm_gen.hierarchy.Hierarchy`) to build as
    Verilator hierarchical blocks: the outermost repeated module of the MAC array."""
    for kind in _HIER_KINDS:
        found = [m.name for m in design.modules
                 if m.name.endswith(f"__{kind}") and m.instances >= _HIER_MIN_INSTANCES]
        if found:
            return found
    return []


def _hier_source(text: str, blocks: list[str]) -> tuple[str, str]:
    """The Verilog for a hierarchical Verilator build of ``blocks``, and its control
    file.  Verilator does not substitute a hierarchical block whose module name holds a
    double underscore (it encodes the name and then misses the original's instances), so
    those modules are renamed in the simulated copy (instance names, which the testbench
    sees, are unchanged)."""
    lines = ["`verilator_config"]
    for name in blocks:
        plain = "hier_" + name.replace("__", "_x_")
        text = re.sub(rf"(?<![\w$]){re.escape(name)}(?![\w$])", plain, text)
        lines.append(f'hier_block -module "{plain}"')
    return text, "\n".join(lines) + "\n"


def design_dir(config: Any, root: Path | None = None) -> Path:
    """Folder of ``config``'s simulation builds: under ``root``, else
    ``$RCM_GEN_SIM_CACHE``, else the cache's ``sim`` folder."""
    if root is None:
        shared = os.environ.get("RCM_GEN_SIM_CACHE")
        root = Path(shared) if shared else cache_dir() / "sim"
    root = Path(root)
    if isinstance(config, Design):
        key = hashlib.sha256((config.verilog + config.to_json()).encode()).hexdigest()[:12]
        return root / f"{config.top}-{key}"
    return root / f"{top_name(config)}-{config_hash(config)}"


def run_cocotb(config: Any, simulator: str, test_module: str, *,
               env: dict[str, str] | None = None, build_root: Path | None = None,
               waves: bool = False, testcase: str | None = None,
               seed: int = 1) -> SimResult:
    """Run cocotb ``test_module`` (a module of :mod:`rcm_gen.sim`) on ``config``'s RTL.

    The test reads the configuration from ``RCM_CONFIG`` and writes its own JSON results
    to ``RCM_RESULTS``; that JSON is returned.  A fusion MAC's Verilator model is compiled
    without C++ optimisation: its tens of thousands of nets take minutes to optimise, far
    longer than a regression runs.

    Raises
    ------
    UserError
        Unknown simulator, or the simulator is not installed.
    SimulationFailed
        The build failed or a test failed; the message names the log.
    """
    if simulator not in SIMULATORS:
        raise UserError(
            f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "icarus":
        require_executable("iverilog")
        base_env = dict(os.environ)
    else:
        base_env = verilator_env()
        flags = _VERILATOR_MAKEFLAGS + " " + (
            "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0" if getattr(config, "is_fused", False)
            else _VERILATOR_OPT)
        base_env["MAKEFLAGS"] = (base_env.get("MAKEFLAGS", "") + " " + flags).strip()
    # The runner behaves differently (and calls sys.exit) under pytest; rcm_gen checks the
    # results itself, the same way everywhere.
    base_env.pop("PYTEST_CURRENT_TEST", None)
    logging.getLogger("cocotb_tools").setLevel(logging.WARNING)
    ddir = design_dir(config, build_root)
    ddir.mkdir(parents=True, exist_ok=True)
    # One process at a time writes, builds and runs a design's simulation (its sources, log
    # and result files are the design folder's); others wait, then reuse the build.
    with open(ddir / "sim.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_and_test(config, simulator, test_module, env, waves, testcase, seed,
                               base_env, ddir)


def _build_and_test(config: Any, simulator: str, test_module: str,
                    env: dict[str, str] | None, waves: bool, testcase: str | None, seed: int,
                    base_env: dict[str, str], ddir: Path) -> SimResult:
    from cocotb_tools.runner import get_runner

    top, text, blocks = _top_and_text(config)
    vfile = ddir / f"{top}.v"
    control: list[Path] = []
    build_args = list(_VERILATOR_BUILD_ARGS) if simulator == "verilator" else []
    if simulator == "verilator" and blocks:
        text, vlt = _hier_source(text, blocks)
        control = [ddir / "hier.vlt"]
        write_if_changed(control[0], vlt)
        build_args.append("--hierarchical")
    write_if_changed(vfile, text)
    write_if_changed(ddir / "config.json", config.to_json())
    # The memory macros and FPGA primitives the design instantiates are black boxes in its
    # Verilog: their behavioural models join the sources.
    user_libs = tuple(lib for lib in [getattr(config, "macros", None)]
                      if isinstance(lib, str) and lib.endswith(".toml"))
    models = write_models(text, ddir / "models", user_libs)
    build_dir = ddir / simulator
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / f"{test_module}.log"
    results_file = build_dir / f"{test_module}.results.json"
    results_xml = build_dir / f"{test_module}.results.xml"
    with contextlib.suppress(FileNotFoundError):
        results_file.unlink()
    test_env = {
        "RCM_CONFIG": json.dumps(config.to_dict()),
        "RCM_RESULTS": str(results_file),
        **(env or {}),
    }
    start = time.perf_counter()
    with _environ(base_env):
        runner = get_runner(simulator)
        runner.log.setLevel(logging.ERROR)  # "skipping compilation" is not news
        build_log = build_dir / "build.log"
        try:
            runner.build(
                sources=[*control, vfile, *models], hdl_toplevel=top, build_dir=build_dir,
                timescale=("1ns", "1ps"), waves=waves, log_file=build_log,
                build_args=build_args,
                always=False)
        except RuntimeError:
            raise SimulationFailed(
                f"{simulator} could not build {vfile}; log: {build_log}") from None
        try:
            runner.test(
                test_module=f"rcm_gen.sim.{test_module}", hdl_toplevel=top,
                build_dir=build_dir, test_dir=build_dir, extra_env=test_env, waves=waves,
                log_file=log, results_xml=str(results_xml.resolve()), testcase=testcase,
                seed=seed)
        except SystemExit:  # the simulator exited with an error status
            pass
    wall = time.perf_counter() - start
    failures = _xml_failures(results_xml)
    if failures is None or failures or not results_file.exists():
        raise SimulationFailed(
            f"cocotb test {test_module} failed on {simulator}"
            f"{' (' + failures[0] + ')' if failures else ''}; log: {log}")
    waves_file = None
    if waves:
        found = sorted(build_dir.glob("*.fst")) + sorted(build_dir.glob("*.vcd"))
        waves_file = found[0] if found else None
    return SimResult(simulator, json.loads(results_file.read_text()), log, build_dir, wall,
                     waves_file)


def _xml_failures(path: Path) -> list[str] | None:
    """Names (with first message line) of failed test cases; None if no results."""
    if not path.exists():
        return None
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
    if not cases:
        return None
    failed = []
    for case in cases:
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is not None:
                msg = (node.get("message") or "").splitlines()
                failed.append(f"{case.get('name')}: {msg[0] if msg else tag}")
    return failed
