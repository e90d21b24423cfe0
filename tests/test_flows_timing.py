"""Static timing with block timing models against OpenSTA on the whole composed netlist,
the model cache, and the STA mode on the command line."""

import re
from pathlib import Path

import pytest

from rcm_gen.flows.synth import synthesize
from rcm_gen.flows.timing_model import boundary_slacks
from rcm_gen.presets import apply_overrides, preset

SKY130 = Path(__file__).resolve().parent / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
# a tile small enough to synthesize in seconds, with every kind of module
TINY = ["p=2", "tm=2", "tn=1", "tr=2", "tc=2", "k_max=3", "s_max=1", "mac.width=8"]
# How far a path timed through models may be from the same path on the whole netlist.
# A model is exact for a block whose inputs reach registers and whose outputs leave
# registers (measured differences 0 to 0.005 ns: the tables' interpolation).  Blocks with
# combinational paths (the multiplier, the MAC, the post-processing) keep the worst output
# transition of all arcs and build each arc's slew-by-load table from two sweeps; on
# these tiles that moved paths by at most 0.03 ns, a quarter of a gate delay in
# either library.  The bound is half a gate delay.
BOUND_NS = 0.05


@pytest.mark.synth
def test_models_against_the_whole_netlist(tmp_path):
    """On sky130 with SRAM macros: blocks of flip-flops, of logic and with macros.  (The
    same on OSU 0.18 um differs by as little; it is left to the benchmarks to keep this
    suite's time down: every run here synthesizes the tile.)"""
    liberty = str(SKY130)
    cfg = apply_overrides(preset("rcm-small"), [*TINY, "memory=sram", "macros=sky130_sram"])
    models = synthesize(cfg, out_dir=tmp_path / "models", liberty=liberty, clock_ns=10.0)
    full = synthesize(cfg, out_dir=tmp_path / "full", liberty=liberty, clock_ns=10.0,
                      sta="full")
    assert models["sta"] == "models" and full["sta"] == "full"
    assert models["area_um2"] == full["area_um2"]
    assert models["timing_models"]["characterized"] + models["timing_models"]["cached"] >= 3
    # the critical path, and the worst paths into and out of every model instance
    assert abs(models["critical_path_ns"] - full["critical_path_ns"]) <= BOUND_NS
    assert models["fmax_mhz"] == pytest.approx(1000 / models["critical_path_ns"])
    with_models = boundary_slacks(models, full=False)
    whole = boundary_slacks(models, full=True)
    assert with_models.keys() == whole.keys()
    compared = [(k, with_models[k], whole[k]) for k in whole if whole[k] is not None]
    assert len(compared) >= 6 and {k[0] for k, _, _ in compared} >= {"col0/mac0", "col0/mac1"}
    for key, a, b in compared:
        assert a is not None and abs(a - b) <= BOUND_NS, (key, a, b)
    assert models["memory"]["macros"]
    for kind in ("from_macros", "to_macros"):
        assert abs(models["macro_paths"][kind]["slack_ns"]
                   - full["macro_paths"][kind]["slack_ns"]) <= BOUND_NS
    # the level of the critical path is the one with the worst slack
    levels = {lv["level"]: lv for lv in models["timing_levels"]}
    assert levels[models["critical_path"]["level"]]["worst_slack_ns"] == \
        models["worst_slack_ns"] == min(lv["worst_slack_ns"] for lv in levels.values()
                                        if lv["worst_slack_ns"] is not None)
    # a second run takes every model from the cache, with the same result
    again = synthesize(cfg, out_dir=tmp_path / "again", liberty=liberty, clock_ns=10.0)
    assert again["timing_models"]["characterized"] == 0
    assert again["timing_models"]["cached"] == (models["timing_models"]["characterized"]
                                               + models["timing_models"]["cached"])
    assert again["critical_path"] == models["critical_path"]
    assert set(again["phases"]) == {"verilog", "synthesis", "composition", "sta"}


def _one_line_error(r, pattern):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"rcm-gen: error: {pattern}", lines[0]), r.stderr


def test_bad_sta_mode_on_the_command_line(cli, tmp_path):
    out = tmp_path / "runs"
    cases = [
        (["--sta", "fast"], r"--sta must be one of models, full, not 'fast'"),
        (["--sta", "models", "--hierarchy", "flat"],
         r"--sta models applies to --hierarchy hier, not 'flat'"),
        (["--sta", "full", "--target", "ecp5"], r"--sta applies to --target asic, not 'ecp5'"),
    ]
    for args, pattern in cases:
        _one_line_error(cli("synth", "rcm-small", *args, "--out", str(out)), pattern)
        assert not out.exists()


@pytest.mark.long
def test_latch_memories_timed_with_models(tmp_path):
    """A tile with latch buffers on sky130: the critical path through block models equals
    OpenSTA's on the whole netlist.  A path into a latch that arrives while the latch is
    open borrows time: on the whole netlist its slack is 0 (the time borrowed goes on to
    the latch's output), where the block's model gives the margin to the latch's
    borrowing limit; both agree on whether it is met.  Paths out of the latch blocks
    agree within 0.1 ns."""
    liberty = str(SKY130)
    cfg = apply_overrides(preset("rcm-small"), [*TINY, "memory=latch"])
    models = synthesize(cfg, out_dir=tmp_path / "models", liberty=liberty, clock_ns=10.0)
    full = synthesize(cfg, out_dir=tmp_path / "full", liberty=liberty, clock_ns=10.0,
                      sta="full")
    assert models["memory"]["latch_cells"] and models["memory"]["clock_gate_cells"]
    assert abs(models["critical_path_ns"] - full["critical_path_ns"]) <= BOUND_NS
    with_models = boundary_slacks(models, full=False)
    whole = boundary_slacks(models, full=True)
    latch_blocks = [k for k in whole if whole[k] is not None
                    and re.search(r"_buf\d*/mem(_\d+)?$", k[0])]
    assert len(latch_blocks) >= 10
    for key in latch_blocks:
        a, b = with_models[key], whole[key]
        if key[1] == "input":
            assert (a >= 0) == (b >= 0), (key, a, b)
        else:
            assert abs(a - b) <= 0.1, (key, a, b)
