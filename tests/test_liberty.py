"""Liberty reading for power: units, table orientation, interpolation and extrapolation,
the cache, wire-load models, and Verilog cell models written from cell functions."""

from __future__ import annotations

import pytest

from rcm_gen.errors import UserError
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.netlist import cell_models, liberty_verilog_expr

_LIB = """
library (units) {
  time_unit : "1ps";
  voltage_unit : "1V";
  leakage_power_unit : "1pW";
  capacitive_load_unit (1, ff);
  nom_voltage : 1.2;
  power_lut_template (load_slew) {
    variable_1 : total_output_net_capacitance;
    variable_2 : input_transition_time;
    index_1 ("1, 2");
    index_2 ("10, 20");
  }
  power_lut_template (slew_load) {
    variable_1 : input_transition_time;
    variable_2 : total_output_net_capacitance;
    index_1 ("10, 20");
    index_2 ("1, 2");
  }
  wire_load (w) { capacitance : 0.5; slope : 2; fanout_length (1, 1.0); fanout_length (2, 3.0); }
  default_wire_load : "w";
  cell (NAND) {
    area : 2;
    cell_leakage_power : 1500;
    pin (A) { direction : input; capacitance : 3; }
    pin (B) { direction : input; rise_capacitance : 2; fall_capacitance : 4; }
    pin (Y) { direction : output; function : "!(A B)";
      internal_power () { related_pin : "A";
        rise_power (load_slew) { values ("1, 2", "3, 4"); }
        fall_power (slew_load) { values ("1, 3", "2, 4"); } }
    }
  }
  cell (SR) {
    area : 5;
    pin (S) { direction : input; capacitance : 1; }
    pin (Q) { direction : output; function : "IQ"; }
    statetable ("S", "IQ") { table : "H : - : H, L : - : N"; }
  }
  cell (TOGGLE) {
    area : 5;
    pin (T) { direction : input; capacitance : 1; }
    pin (Q) { direction : output; function : "IQ"; }
    statetable ("T", "IQ") { table : "H : L : H, H : H : L, L : - : N"; }
  }
}
"""


def test_units_tables_and_wire_load(tmp_path):
    f = tmp_path / "units.lib"
    f.write_text(_LIB)
    lib = load_liberty(f)
    nand = lib.cells["NAND"]
    assert lib.voltage == 1.2
    assert nand.leakage_nw == pytest.approx(1.5)  # 1500 pW
    assert nand.pins["A"].capacitance == pytest.approx(0.003)  # 3 fF in pF
    assert nand.pins["B"].capacitance == pytest.approx(0.003)  # mean of rise and fall
    arc = nand.pins["Y"].power[0]
    # rise: rows are loads (1, 2 fF), columns slews (10, 20 ps); energies in fF V^2 = fJ
    # fall: the same numbers with the axes swapped: both look up to the same value
    for slew_ns, load_pf, want in [(0.010, 0.001, 1), (0.020, 0.002, 4), (0.015, 0.0015, 2.5),
                                   (0.030, 0.001, 3)]:  # the last one extrapolated
        assert arc.rise.lookup(slew_ns, load_pf) == pytest.approx(want * 1e-3)
        assert arc.fall.lookup(slew_ns, load_pf) == pytest.approx(want * 1e-3)
    # wire: length from fanout_length (extrapolated with slope) times capacitance per length
    assert lib.default_wire_load == "w"
    assert lib.wire_cap("w", 2) == pytest.approx(3.0 * 0.5e-3)
    assert lib.wire_cap("w", 4) == pytest.approx((3.0 + 2 * 2) * 0.5e-3)
    again = load_liberty(f)  # from the cache
    assert again.cells["NAND"] == nand and again.wire_loads == lib.wire_loads


def test_cell_models_from_functions(tmp_path):
    f = tmp_path / "units.lib"
    f.write_text(_LIB)
    lib = load_liberty(f)
    assert liberty_verilog_expr("!(A B)") == "~(A & B)"
    assert liberty_verilog_expr("A' + B ^ C") in ("(~A | (B ^ C))", "((B ^ C) | ~A)")
    assert "assign Y = ~(A & B);" in cell_models(lib, {"NAND"})
    # a statetable that loads a level or holds is a latch (here: set while S is high)
    assert "if (_e0) IQ <= S;" in cell_models(lib, {"SR"})
    with pytest.raises(UserError, match=r"^cell TOGGLE is described by a statetable that "
                                        r"rcm_gen cannot model \(a next state that is neither "
                                        r"a level nor N\); exclude it with dont_use$"):
        cell_models(lib, {"TOGGLE"})
