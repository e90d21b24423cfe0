"""The independent check: rcm_gen's per-net activity of a gate-level run of mac16 put into
OpenSTA's report_power, compared with rcm_gen's energy model within stated tolerances;
OpenSTA 2019's internal-power rule as rebuilt here (liberty functions parsed as OpenSTA
parses them, the conditions it infers)."""

from __future__ import annotations

import pytest

from rcm_gen.power.opensta import (
    TOLERANCES,
    _duty,
    _infered_when,
    _parse_function,
    compare_with_opensta,
    format_comparison,
    mac_activity,
    netlist_model,
    opensta_power,
)


def _text(e) -> str:
    if e is None:
        return "-"
    if e.op == "port":
        return e.left
    if e.op in ("one", "zero"):
        return "1" if e.op == "one" else "0"
    if e.op == "not":
        return f"!{_text(e.left)}"
    sym = {"and": "&", "or": "|", "xor": "^"}[e.op]
    return f"({_text(e.left)}{sym}{_text(e.right)})"


@pytest.mark.parametrize("function, parsed", [
    ("(!(A B))", "!(A&B)"),
    ("(!((A+B) C))", "!((A|B)&C)"),
    ("(!((S A) + (!S B)))", "!((S&A)|(!S&B))"),
    ("(((A B)+(B C))+(C A))", "(((A&B)|(B&C))|(C&A))"),
    ("A+B C^D", "(A|((B&C)^D))"),
    ("A*B*C", "((A&B)&C)"),
    ("A'", "!A"),
])
def test_functions_parse_as_opensta_parses_them(function, parsed):
    """Binary and left-associative, ``!`` and ``'`` tightest, then ``^``, then ``*``/``&``
    and juxtaposition, then ``+``/``|`` (OpenSTA's liberty expression grammar)."""
    assert _text(_parse_function(function)) == parsed


@pytest.mark.parametrize("function, pin, when, duty", [
    ("(!A)", "A", "1", 1.0),             # an inverter: every input toggle switches it
    ("(!(A B))", "A", "B", 0.5),         # NAND2: A switches it while B is 1
    ("(!(A+B))", "B", "!A", 0.5),
    ("(!((A+B) C))", "C", "(A|B)", 0.75),
    ("(!((A+B) C))", "A", "-", None),    # not plain from the form: OpenSTA's default
    ("(A^B)", "A", "!B", 0.5),
    ("(!((S A) + (!S B)))", "S", "-", None),
    ("DS0000", "CLK", "-", None),        # a flip-flop's output: its clock arc
])
def test_inferred_conditions(function, pin, when, duty):
    """OpenSTA 2019's inferred ``when`` of an output arc and its probability with every
    pin at duty 0.5."""
    got = _infered_when(_parse_function(function), pin)
    assert _text(got) == when
    if duty is not None:
        assert _duty(got, {"A", "B", "C", "S", "CLK"}) == pytest.approx(duty)


@pytest.mark.synth
def test_mac16_against_opensta(tmp_path):
    """mac16, every mode, a zero-delay run (every accumulator value checked): with every
    pin at its net's activity, OpenSTA's switching of cell-driven nets agrees with
    rcm_gen's to 1 %, leakage to 0.1 %, and its internal power with OpenSTA's 2019 rule
    rebuilt from rcm_gen's table lookups to 3 % (totals likewise); rcm_gen's own
    per-transition internal energy is 2 to 2.5 times less (that rule charges the rise and
    the fall energy for each transition).  Given to the input ports instead of held by
    flip-flops, the activity is overwritten by OpenSTA's propagation and the figures are
    far off: the reason for the detour.  The MAC's clocks are gated: OpenSTA holds the
    gated clocks at the clock's 2 transitions per cycle, and so does the comparison."""
    from rcm_gen.presets import preset

    act = mac_activity(preset("mac16"), cycles=80, simulator="icarus")
    assert act.checked > 6 * 80
    c = act.compare(tmp_path / "sta")
    print("\n" + format_comparison(c, "mac16"))
    assert c["checked"] == list(TOLERANCES)  # OSU 0.18 um: internal power reported
    for key, tol in TOLERANCES.items():
        assert abs(c["difference"][key]) <= tol, (key, c["difference"][key])
    assert c["within"]
    assert 2.0 <= c["opensta_internal_over_rcm_gen"] <= 2.5
    ins = c["inputs_switching"]
    assert ins["opensta"] == pytest.approx(ins["rcm_gen"], rel=0.01)
    gp = act.power
    # the nets compared, the inputs' and the clock's make up the model's switching energy
    model = netlist_model(gp)
    e = model.window(act.rises, act.falls, act.cycles, gp.clock_ns)
    to_w = 1e-3 / gp.clock_ns / act.cycles
    (k,) = gp.netlist.ports["clk"][1]
    clock = 0.5 * model.load[k] * model.voltage ** 2 * (act.rises[k] + act.falls[k])
    # the gated clocks: compared at OpenSTA's 2 transitions per cycle, simulated at fewer
    gated = sorted(set(model.clock_nets) - {k})
    assert gated  # mac16's accumulator and product registers behind their gates
    forced = sum(0.5 * model.load[g] * model.voltage ** 2
                 * (2 * act.cycles - act.rises[g] - act.falls[g]) for g in gated)
    assert forced >= 0
    assert e.switching * to_w == pytest.approx(c["rcm_gen"]["switching"] + ins["rcm_gen"]
                                               + (clock - forced) * to_w, rel=1e-9)
    free = opensta_power(gp.netlist, gp.lib, model, act.rises, act.falls, act.cycles,
                         gp.clock_ns, "clk", gp.constraints, tmp_path / "ports",
                         hold_inputs=False)
    assert abs(free.switching / c["opensta"]["switching"] - 1) > 0.2
    # the comparison is of the activity given: half of it halves OpenSTA's dynamic power
    # but the gated clocks' (2 transitions per cycle whatever is given, as the clock's)
    half = compare_with_opensta(gp.netlist, gp.lib, model, act.rises, act.falls,
                                2 * act.cycles, gp.clock_ns, "clk", gp.constraints,
                                tmp_path / "half")
    clocks = sum(0.5 * model.load[g] * model.voltage ** 2 * 2 for g in gated) \
        * 1e-3 / gp.clock_ns
    assert 0 < clocks < 0.2 * c["opensta"]["switching"]
    assert half["opensta"]["switching"] == pytest.approx(
        (c["opensta"]["switching"] - clocks) / 2 + clocks, rel=1e-2)
    assert half["within"]
