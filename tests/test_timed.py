"""Timing simulation on Icarus with OpenSTA's delays (inertial): glitches where they must
be and nowhere else, pulses filtered as the delays predict, sampled outputs equal to the
zero-delay simulation's, the cell models' module paths, and a period too short refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.flows.asic import asic_constraints
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.netlist import read_netlist
from rcm_gen.power.sdf import SdfAnnotation, opensta_sdf, read_sdf
from rcm_gen.power.timed import TimedSim, timed_cell_models
from rcm_gen.sim.gate_level import GateSim

OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
XOR_CHAIN = Path(__file__).parent / "data" / "xor_chain.v"


def _full_adder(i: int) -> str:
    c = f"c{i}"
    return (f"  XOR2X1 up{i} (.A(x[{i}]), .B(y[{i}]), .Y(p{i}));\n"
            f"  XOR2X1 us{i} (.A(p{i}), .B({c}), .Y(s{i}));\n"
            f"  AND2X2 ug{i} (.A(x[{i}]), .B(y[{i}]), .Y(g{i}));\n"
            f"  AND2X2 ut{i} (.A(p{i}), .B({c}), .Y(t{i}));\n"
            f"  OR2X2 uo{i} (.A(g{i}), .B(t{i}), .Y(c{i + 1}));\n"
            f"  DFFPOSX1 ur{i} (.CLK(clk), .D(s{i}), .Q(sum[{i}]));\n")


#: A 4-bit ripple-carry adder, x + y + cin, its sum registered: carries ripple through
#: the bits while the sums settle, so the upper sum and carry nets glitch.
_RIPPLE = ("module ripple(clk, x, y, cin, sum);\n  input clk, cin;\n  input [3:0] x, y;\n"
           "  output [4:0] sum;\n"
           "  wire " + ", ".join(f"p{i}, s{i}, g{i}, t{i}, c{i + 1}" for i in range(4))
           + ";\n  wire c0;\n  BUFX2 ub0 (.A(cin), .Y(c0));\n"
           + "".join(_full_adder(i) for i in range(4))
           + "  DFFPOSX1 ur4 (.CLK(clk), .D(c4), .Q(sum[4]));\nendmodule\n")


def _prepare(tmp_path: Path, text: str, top: str):
    lib = load_liberty(OSU018)
    (tmp_path / f"{top}.v").write_text(text)
    net = read_netlist(tmp_path / f"{top}.v", lib, top, tmp_path / "read")
    cons = asic_constraints()
    sdf = opensta_sdf(tmp_path / f"{top}.v", top, lib, cons, tmp_path / "sdf",
                      driving_cell="INVX1")
    return lib, net, read_sdf(sdf, net, lib)


def _net(net, name: str) -> int:
    return net.names.index(name)


def test_xor_with_its_delayed_copy_glitches(tmp_path):
    """Every change of ``a`` makes the six-buffer XOR pulse (one rise and one fall), which
    zero-delay simulation never shows; the one-buffer XOR pulses exactly on the edges whose
    buffer delay exceeds the XOR's own delay for that edge (inertial filtering, predicted
    from the SDF); no other net has a transition more or less; and the registers sample
    the same values in both simulations."""
    lib, net, ann = _prepare(tmp_path, XOR_CHAIN.read_text(), "xchain")
    n = 40
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, n)
    # held at the window's ends: a zero-delay window holds the edge that takes its last
    # cycle's inputs, a timed one (cut where all is settled, before an edge) the edge that
    # took the cycle before its first; with the inputs held there, both see the same
    a[:5] = 0
    a[n - 3:] = a[n - 4]
    inputs = {"a": a}
    windows = [(3, n)]
    zero = GateSim(net, lib, "clk", "icarus").run(inputs, windows)
    timed = TimedSim(net, lib, "clk", ann, 10.0).run(inputs, windows)
    assert timed.outputs == zero.outputs
    assert zero.outputs["q6"][4:] == [0] * (n - 4) and zero.outputs["q1"][4:] == [0] * (n - 4)
    changes = np.diff(a[2:n])  # window [3, n): the changes into cycles 3..n-1
    ups, downs = int((changes == 1).sum()), int((changes == -1).sum())
    assert ups > 5 and downs > 5
    y6, y1 = _net(net, "y6"), _net(net, "y1")
    tz = zero.rises[0] + zero.falls[0]
    tt = timed.rises[0] + timed.falls[0]
    assert tz[y6] == 0 and tz[y1] == 0
    assert timed.rises[0][y6] == timed.falls[0][y6] == ups + downs
    # y1: a pulse when the buffer is slower than the XOR's rising output from input A
    buf = ann.arcs[[i.path for i in net.instances].index("c1")][("A", "Y")]
    xor = ann.arcs[[i.path for i in net.instances].index("x1")][("A", "Y")]
    expect = (ups if buf[0] > xor[0] else 0) + (downs if buf[1] > xor[0] else 0)
    assert timed.rises[0][y1] == timed.falls[0][y1] == expect
    extra = np.nonzero(tt != tz)[0]
    assert set(extra.tolist()) <= {y6, y1}
    print(f"\nbuffer A->Y {buf} ns, XOR A->Y {xor} ns: y1 pulses {expect} times, y6 "
          f"{ups + downs} times")


#: A two-flop shift register whose second flop is clocked through an AND gate and six
#: buffers (a clock gated by ``en``, as Camus et al.'s Sum-Together MAC gates its clock):
#: with the gate's delays the second flop would sample the first's new value.
_GATED = ("module gated(clk, en, d, q1, q2);\n  input clk, en, d;\n  output q1, q2;\n"
          "  wire g0, g1, g2, g3, g4, g5, g6;\n"
          "  DFFPOSX1 ua (.CLK(clk), .D(d), .Q(q1));\n"
          "  AND2X2 ug (.A(clk), .B(en), .Y(g0));\n"
          + "".join(f"  BUFX2 ub{i} (.A(g{i}), .Y(g{i + 1}));\n" for i in range(6))
          + "  DFFPOSX1 uc (.CLK(g6), .D(q1), .Q(q2));\nendmodule\n")


def test_clock_through_gates_is_ideal(tmp_path):
    """Arcs from the clock through the gating AND and the buffers after it carry no delay
    (the enable's arc keeps its own), so the gated flop takes the first flop's old value,
    as in zero-delay simulation and in silicon with a balanced clock tree."""
    lib, net, ann = _prepare(tmp_path, _GATED, "gated")
    n = 30
    rng = np.random.default_rng(2)
    inputs = {"en": np.ones(n, dtype=int), "d": rng.integers(0, 2, n)}
    sim = TimedSim(net, lib, "clk", ann, 10.0)
    assert sim.annotation.notes["ideal_clock_arcs"] == 7
    ug = [i.path for i in net.instances].index("ug")
    assert sim.annotation.arcs[ug][("A", "Y")] == (0.0, 0.0)
    assert sim.annotation.arcs[ug][("B", "Y")] == ann.arcs[ug][("B", "Y")] != (0.0, 0.0)
    timed = sim.run(inputs, [(2, n)])
    zero = GateSim(net, lib, "clk", "icarus").run(inputs, [(2, n)])
    assert timed.outputs["q2"][3:] == zero.outputs["q2"][3:] == timed.outputs["q1"][2:-1]
    assert timed.outputs["q1"][2:] == zero.outputs["q1"][2:]


def test_ripple_adder_glitches_and_sums(tmp_path):
    """A 4-bit ripple-carry adder with all its inputs changing every cycle: the timed
    simulation counts more transitions than zero-delay, the extra ones on the sum and
    carry nets, more on the upper bits' sums than on bit 0's (not on inputs, registers or
    the first level of gates), and its registered sums equal the zero-delay simulation's
    and x + y + cin."""
    lib, net, ann = _prepare(tmp_path, _RIPPLE, "ripple")
    n = 200
    rng = np.random.default_rng(7)
    x, y, cin = rng.integers(0, 16, n), rng.integers(0, 16, n), rng.integers(0, 2, n)
    for v in (x, y, cin):  # held at the window's ends (see the XOR test)
        v[:4] = v[0]
        v[n - 3:] = v[n - 4]
    inputs = {"x": x, "y": y, "cin": cin}
    windows = [(2, n)]
    zero = GateSim(net, lib, "clk", "icarus").run(inputs, windows)
    timed = TimedSim(net, lib, "clk", ann, 10.0).run(inputs, windows)
    assert timed.outputs == zero.outputs
    assert timed.outputs["sum"] == [int(v) for v in x + y + cin]
    tz = zero.rises[0] + zero.falls[0]
    tt = timed.rises[0] + timed.falls[0]
    assert tt.sum() > tz.sum()
    extra = {net.names[k]: int(tt[k] - tz[k]) for k in np.nonzero(tt != tz)[0]}
    assert all(v > 0 for v in extra.values())  # glitches only add transitions
    registers = {net.names[k] for k in net.ports["sum"][1]}
    port_nets = {net.names[k] for p in ("x", "y", "cin") for k in net.ports[p][1]}
    assert not set(extra) & (registers | port_nets)
    # where the paths into a gate differ in length: the sums and carries (a carry
    # arrives after the bit's own x ^ y), not the first level (x ^ y, x & y: both inputs
    # arrive together)
    assert set(extra) <= {f"{k}{i}" for i in range(4) for k in "st"} | {"c1", "c2", "c3",
                                                                          "c4"}
    assert all(extra.get(f"s{i}", 0) > extra.get("s0", 0) for i in (1, 2, 3))
    assert all(extra.get(f"c{i}", 0) > 0 for i in (2, 3, 4))
    print(f"\nzero-delay {int(tz.sum())} transitions, timed {int(tt.sum())}: extra {extra}")


def test_timed_cell_models_declare_every_arc():
    """The timed models carry one module path per timing arc of the liberty (a flip-flop's
    clock to its output; each input of a gate to its output), nanosecond timescale."""
    lib = load_liberty(OSU018)
    text = timed_cell_models(lib, {"DFFPOSX1", "NAND2X1", "AOI21X1"})
    assert text.startswith("`timescale 1ns/1ps")
    for cell, paths in (("DFFPOSX1", ["(CLK => Q)"]), ("NAND2X1", ["(A => Y)", "(B => Y)"]),
                        ("AOI21X1", ["(A => Y)", "(B => Y)", "(C => Y)"])):
        body = re.search(rf"module {cell} \(.*?endmodule", text, re.S).group(0)
        spec = re.search(r"specify\n(.*?)endspecify", body, re.S).group(1)
        assert sorted(re.findall(r"\(\w+ => \w+\)", spec)) == paths


def test_timed_period_too_short_is_an_error(tmp_path):
    """A period in which the netlist would not settle before the next edge (its longest
    annotated path, here the six buffers and the XOR at 0.9 ns each) is refused; and a
    net still switching just before an edge is a failed run, not a count."""
    from rcm_gen.errors import ToolFailed

    lib, net, ann = _prepare(tmp_path, XOR_CHAIN.read_text(), "xchain")
    slow = SdfAnnotation(ann.source, {i: {k: (0.9, 0.9) for k in a}
                                      for i, a in ann.arcs.items()}, {}, {})
    assert slow.longest_path_ns(net, lib) == pytest.approx(7 * 0.9)
    with pytest.raises(ValueError, match=r"^Period must leave 10% of it after the longest "
                                         r"path \(6\.300 ns\), not 6\.0 ns$"):
        TimedSim(net, lib, "clk", slow, 6.0)
    sim = TimedSim(net, lib, "clk", slow, 7.1)
    sim.period = 6.5  # as if the delays had been underestimated: caught in the waveform
    sim.sources["tb.v"] = sim._testbench(f"tl_{net.top}")
    sim.dir = sim.dir.parent.parent / "short" / "timed"
    a = np.array([0, 0, 0, 1, 0, 1, 0, 1])
    with pytest.raises(ToolFailed, match="period of 6.5 ns is too short"):
        sim.run({"a": a}, [(3, 8)])
