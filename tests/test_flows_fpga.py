"""FPGA flows: ECP5 out of context and iCE40 (in a harness), resources and post-P&R Fmax."""

import pytest

from rcm_gen.flows.synth import synthesize
from rcm_gen.presets import preset


@pytest.mark.synth
@pytest.mark.parametrize("target, dsp_cell", [("ecp5", "MULT18X18D"), ("ice40", "SB_MAC16")])
def test_fpga_mac8(tmp_path, target, dsp_cell):
    st = synthesize(preset("mac8"), target, out_dir=tmp_path / "st")
    fx = synthesize(preset("mac8-fixed"), target, out_dir=tmp_path / "fx")
    for r in (st, fx):
        assert r["target"] == target and r["luts"] > 0 and r["ffs"] > 0
        assert r["fmax_mhz"] > 0
        assert r["tools"][f"nextpnr_{target}"]
    # the fixed multiplier goes to a DSP block; the ST multiplier is built from LUTs
    assert fx["dsps"] == 1 and st["dsps"] == 0
    assert st["luts"] > fx["luts"]
    # the accumulator and pipeline registers are the same in both
    assert st["ffs"] == fx["ffs"]
    assert dsp_cell in (tmp_path / "fx" / "synth.log").read_text()
