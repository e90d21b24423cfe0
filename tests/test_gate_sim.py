"""The cycle simulator on gated clocks and latches: small gate-level netlists written with
each library's own cells (SkyWater 130's integrated clock-gating cell ``dlclkp`` and its
latches; on OSU 0.18 µm, which has no such cell, a gate built from ``LATCH`` and
``AND2X1``) — a register behind a clock gate beside an ungated one, and a standard-cell
memory (latch words written through a clock gate per word, read through a mux tree) —
run on random inputs: outputs equal a reference model's and Verilator's, and every net's
rises and falls in every window equal Verilator's toggle coverage; a register whose gate
stays closed sees no clock edge.  Bad netlists (a flip-flop clocked from data, a latch
loop that does not settle, a combinational loop, a statetable that is not a latch) are
refused with one line naming the culprit."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.errors import UserError
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.netlist import cell_models, cell_storage, read_netlist
from rcm_gen.sim.gate_cycle import CycleSim
from rcm_gen.sim.gate_level import GateSim

HERE = Path(__file__).resolve().parent
SKY130 = HERE / "data" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")


def _sky130_cells() -> dict[str, str]:
    p = "sky130_fd_sc_hd__"
    return {
        "icg": f"{p}dlclkp_1 {{name}} (.CLK({{clk}}), .GATE({{en}}), .GCLK({{out}}));",
        "dff": f"{p}dfxtp_1 {{name}} (.CLK({{clk}}), .D({{d}}), .Q({{q}}));",
        "latch": f"{p}dlxtp_1 {{name}} (.GATE({{en}}), .D({{d}}), .Q({{q}}));",
        # mux: out = s ? a : b
        "mux": f"{p}mux2_1 {{name}} (.S({{s}}), .A1({{a}}), .A0({{b}}), .X({{out}}));",
        "nor3": f"{p}nor3_1 {{name}} (.A({{a}}), .B({{b}}), .C({{c}}), .Y({{out}}));",
        "inv": f"{p}inv_1 {{name}} (.A({{a}}), .Y({{out}}));",
        "xor": f"{p}xor2_1 {{name}} (.A({{a}}), .B({{b}}), .X({{out}}));",
        "buf": f"{p}clkbuf_1 {{name}} (.A({{a}}), .X({{out}}));",
    }


def _osu018_cells() -> dict[str, str]:
    return {
        # a latch open while the clock is low, and the clock ANDed with it
        "icg": ("INVX1 {name}_i (.A({clk}), .Y({name}_n));\n"
                "LATCH {name}_l (.CLK({name}_n), .D({en}), .Q({name}_q));\n"
                "AND2X1 {name}_a (.A({clk}), .B({name}_q), .Y({out}));"),
        "dff": "DFFPOSX1 {name} (.CLK({clk}), .D({d}), .Q({q}));",
        "latch": "LATCH {name} (.CLK({en}), .D({d}), .Q({q}));",
        # MUX2X1 inverts: two levels of mux read a word the right way up
        "mux": "MUX2X1 {name} (.S({s}), .A({a}), .B({b}), .Y({out}));",
        "nor3": "NOR3X1 {name} (.A({a}), .B({b}), .C({c}), .Y({out}));",
        "inv": "INVX1 {name} (.A({a}), .Y({out}));",
        "xor": "XOR2X1 {name} (.A({a}), .B({b}), .Y({out}));",
        "buf": "CLKBUF1 {name} (.A({a}), .Y({out}));",
    }


LIBRARIES = {"sky130": (SKY130, _sky130_cells), "osu018": (OSU018, _osu018_cells)}
WORDS, BITS = 4, 4


def gated_design(cells: dict[str, str]) -> str:
    """Module ``gates``: register ``q`` clocked through a clock gate (enable ``en``, then a
    clock buffer) takes ``d``; register ``r`` on the clock takes ``q ^ d``; a latch memory
    of WORDS x BITS: ``wdata`` captured in a register at the clock's edge, word ``waddr``
    (when ``we``) written through its own clock gate while the clock is high, ``rdata``
    the word at ``raddr`` through a mux tree."""
    lines = [
        "module gates (clk, en, d, q, r, we, waddr, wdata, raddr, rdata);",
        "  input clk, en, we;",
        f"  input [{BITS - 1}:0] d, wdata;",
        "  input [1:0] waddr, raddr;",
        f"  output [{BITS - 1}:0] q, r, rdata;",
        "  wire gclk, gclk_b, we_n, wa0_n, wa1_n;",
        f"  wire [{BITS - 1}:0] x, wd;",
    ]
    c = cells
    body = [c["icg"].format(name="cg", clk="clk", en="en", out="gclk"),
            c["buf"].format(name="cb", a="gclk", out="gclk_b")]
    for i in range(BITS):
        body.append(c["dff"].format(name=f"fq{i}", clk="gclk_b", d=f"d[{i}]", q=f"q[{i}]"))
        body.append(c["xor"].format(name=f"xr{i}", a=f"q[{i}]", b=f"d[{i}]", out=f"x[{i}]"))
        body.append(c["dff"].format(name=f"fr{i}", clk="clk", d=f"x[{i}]", q=f"r[{i}]"))
        body.append(c["dff"].format(name=f"fw{i}", clk="clk", d=f"wdata[{i}]",
                                    q=f"wd[{i}]"))
    body += [c["inv"].format(name="iwe", a="we", out="we_n"),
             c["inv"].format(name="ia0", a="waddr[0]", out="wa0_n"),
             c["inv"].format(name="ia1", a="waddr[1]", out="wa1_n")]
    for w in range(WORDS):
        lines.append(f"  wire sel{w}, wclk{w};")
        lines.append(f"  wire [{BITS - 1}:0] m{w};")
        # word w selected: nor of (not we, address bits differing from w)
        b0 = "waddr[0]" if not w & 1 else "wa0_n"
        b1 = "waddr[1]" if not w & 2 else "wa1_n"
        body.append(c["nor3"].format(name=f"sw{w}", a="we_n", b=b0, c=b1, out=f"sel{w}"))
        body.append(c["icg"].format(name=f"cw{w}", clk="clk", en=f"sel{w}", out=f"wclk{w}"))
        for i in range(BITS):
            body.append(c["latch"].format(name=f"l{w}_{i}", en=f"wclk{w}", d=f"wd[{i}]",
                                          q=f"m{w}[{i}]"))
    lines.append(f"  wire [{BITS - 1}:0] lo, hi;")
    for i in range(BITS):
        body.append(c["mux"].format(name=f"ml{i}", s="raddr[0]", a=f"m1[{i}]", b=f"m0[{i}]",
                                    out=f"lo[{i}]"))
        body.append(c["mux"].format(name=f"mh{i}", s="raddr[0]", a=f"m3[{i}]", b=f"m2[{i}]",
                                    out=f"hi[{i}]"))
        body.append(c["mux"].format(name=f"mr{i}", s="raddr[1]", a=f"hi[{i}]", b=f"lo[{i}]",
                                    out=f"rdata[{i}]"))
    return "\n".join(lines + ["  " + b.replace("\n", "\n  ") for b in body]
                     + ["endmodule"]) + "\n"


def stimulus(cycles: int, seed: int) -> dict[str, np.ndarray]:
    """Random inputs; the enable closed for the cycles [40, 80), every word written in
    cycles 2 to 5, nothing clocked or written before (Verilator opens a latch at an edge
    of its enable, and at time 0 there is none)."""
    rng = np.random.default_rng(seed)
    s = {"en": rng.integers(0, 2, cycles), "d": rng.integers(0, 1 << BITS, cycles),
         "we": rng.integers(0, 2, cycles), "waddr": rng.integers(0, WORDS, cycles),
         "wdata": rng.integers(0, 1 << BITS, cycles), "raddr": rng.integers(0, WORDS, cycles)}
    s["en"][40:80] = 0
    s["en"][:2] = 0
    s["we"][:2] = 0
    s["we"][2:2 + WORDS] = 1
    s["waddr"][2:2 + WORDS] = np.arange(WORDS)
    return s


def reference(s: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """What the design computes, cycle by cycle (outputs after the clock's rising edge)."""
    q = r = 0
    mem = [0] * WORDS
    out: dict[str, list[int]] = {"q": [], "r": [], "rdata": []}
    for t in range(len(s["en"])):
        r = q ^ int(s["d"][t])
        if s["en"][t]:
            q = int(s["d"][t])
        if s["we"][t]:
            mem[int(s["waddr"][t])] = int(s["wdata"][t])  # written while the clock is high
        out["q"].append(q)
        out["r"].append(r)
        out["rdata"].append(mem[int(s["raddr"][t])])
    return out


@pytest.fixture(scope="module", params=sorted(LIBRARIES))
def design(request, tmp_path_factory):
    path, cells = LIBRARIES[request.param]
    lib = load_liberty(path)
    work = tmp_path_factory.mktemp(request.param)
    (work / "gates.v").write_text(gated_design(cells()))
    return request.param, lib, read_netlist(work / "gates.v", lib, "gates", work)


WINDOWS = [(2, 40), (40, 80), (80, 200)]


def test_gated_clocks_and_latch_memory_equal_verilator(design):
    """Outputs equal the reference model's in every cycle (after the first) and
    Verilator's; every net's rises and falls in every window equal Verilator's toggle
    coverage (the clock gates' nets and the latches' outputs included)."""
    name, lib, net = design
    s = stimulus(200, seed=5)
    cyc = CycleSim(net, lib, "clk")
    mine = cyc.run(s, WINDOWS)
    want = reference(s)
    for p in ("q", "r", "rdata"):
        assert mine.outputs[p] == want[p], p
    ref = GateSim(net, lib, "clk", "verilator").run(s, WINDOWS)
    for p in cyc.outputs:
        assert mine.outputs[p] == ref.outputs[p], p
    assert mine.rises.sum() > 1000
    np.testing.assert_array_equal(mine.rises, ref.rises)
    np.testing.assert_array_equal(mine.falls, ref.falls)
    # the latch words and the word clocks toggle
    names = list(net.names)
    for n in ("wclk0", "wclk3", "m2[1]"):
        assert mine.rises[2, names.index(n)] > 0, n


def test_a_closed_clock_gate_clocks_nothing(design):
    """While the enable is low (cycles 40 to 80) the gated clock and its buffer make no
    transition and the gated register holds, while the ungated one and the clock toggle
    every cycle."""
    _, lib, net = design
    s = stimulus(200, seed=6)
    run = CycleSim(net, lib, "clk").run(s, WINDOWS)
    names = list(net.names)
    for n in ("gclk", "gclk_b"):
        k = names.index(n)
        assert run.rises[1, k] == run.falls[1, k] == 0, n
        assert run.rises[2, k] > 10, n
    assert run.rises[1, names.index("clk")] == 40
    assert len(set(run.outputs["q"][41:80])) == 1


def test_icarus_agrees_on_the_gated_design(design):
    """Icarus runs the same cell models (the clock-gating cell from its statetable): the
    same outputs and toggles once every storage bit has been written."""
    name, lib, net = design
    s = stimulus(120, seed=7)
    windows = [(8, 60), (60, 120)]
    mine = CycleSim(net, lib, "clk").run(s, windows)
    ref = GateSim(net, lib, "clk", "icarus").run(s, windows)
    for p in ("q", "r", "rdata"):
        assert mine.outputs[p][8:] == ref.outputs[p][8:], p
    np.testing.assert_array_equal(mine.rises, ref.rises)
    np.testing.assert_array_equal(mine.falls, ref.falls)


# -- cell models -------------------------------------------------------------------------------


def test_clock_gating_cell_is_a_latch_and_an_and():
    lib = load_liberty(SKY130)
    cell = lib.cells["sky130_fd_sc_hd__dlclkp_1"]
    assert cell.clock_gating == "latch_posedge"
    (latch,) = cell_storage(cell)
    assert (latch.kind, latch.state, latch.clock, latch.data) == ("latch", "M0", "!CLK", "GATE")
    model = cell_models(lib, {"sky130_fd_sc_hd__dlclkp_1"})
    assert "wire _c0 = ~CLK;" in model and "if (_e0) M0 <= GATE;" in model
    assert "assign GCLK = (CLK & M0);" in model
    assert "M0;" not in model.splitlines()[0]  # the internal node is not a port


# -- bad netlists -------------------------------------------------------------------------------


def _netlist(tmp_path, lib, text):
    (tmp_path / "bad.v").write_text(textwrap.dedent(text))
    return read_netlist(tmp_path / "bad.v", lib, "bad", tmp_path)


def test_flip_flop_clocked_from_data_is_refused(tmp_path):
    lib = load_liberty(OSU018)
    net = _netlist(tmp_path, lib, """\
        module bad (clk, a, d, q);
          input clk, a, d;
          output q;
          wire g;
          AND2X1 u0 (.A(a), .B(d), .Y(g));
          DFFPOSX1 ff (.CLK(g), .D(d), .Q(q));
        endmodule
        """)
    with pytest.raises(UserError, match=r"^flip-flop ff is clocked by net 'g', which does not "
                                        r"come from the clock port 'clk'; the cycle simulator "
                                        r"cannot run it$"):
        CycleSim(net, lib, "clk")


def test_latch_loop_that_does_not_settle_is_refused(tmp_path):
    """A latch whose output, inverted, is its input oscillates while it is open."""
    lib = load_liberty(OSU018)
    net = _netlist(tmp_path, lib, """\
        module bad (clk, en, q);
          input clk, en;
          output q;
          wire n;
          INVX1 u0 (.A(q), .Y(n));
          LATCH l0 (.CLK(en), .D(n), .Q(q));
        endmodule
        """)
    sim = CycleSim(net, lib, "clk")
    ok = sim.run({"en": np.zeros(4, dtype=np.int64)}, [(0, 4)])  # closed: it settles
    assert ok.outputs["q"] == [0] * 4
    with pytest.raises(UserError, match=r"^the netlist of bad does not settle: net '(q|n)' "
                                        r"keeps changing \(a loop through transparent "
                                        r"latches\)$"):
        sim.run({"en": np.array([0, 1, 1, 0])}, [(0, 4)])


def test_latch_loop_that_settles_runs(tmp_path):
    """Two latches open on opposite clock phases in a loop (a flip-flop made of latches,
    toggling): it settles every half cycle."""
    lib = load_liberty(OSU018)
    net = _netlist(tmp_path, lib, """\
        module bad (clk, a, q);
          input clk, a;
          output q;
          wire n, m, clk_n;
          INVX1 u0 (.A(q), .Y(n));
          INVX1 u1 (.A(clk), .Y(clk_n));
          LATCH master (.CLK(clk_n), .D(n), .Q(m));
          LATCH slave (.CLK(clk), .D(m), .Q(q));
        endmodule
        """)
    run = CycleSim(net, lib, "clk").run({"a": np.zeros(6, dtype=np.int64)}, [(0, 6)])
    assert run.outputs["q"] == [1, 0, 1, 0, 1, 0]
    k = list(net.names).index("q")
    assert run.rises[0, k] == 3 and run.falls[0, k] == 3


def test_combinational_loop_is_refused(tmp_path):
    lib = load_liberty(OSU018)
    net = _netlist(tmp_path, lib, """\
        module bad (clk, a, y);
          input clk, a;
          output y;
          wire n;
          NAND2X1 u0 (.A(a), .B(y), .Y(n));
          INVX1 u1 (.A(n), .Y(y));
        endmodule
        """)
    with pytest.raises(UserError, match=r"^the netlist has a combinational loop through net "
                                        r"'(n|y)'; the cycle simulator needs none \(loops only "
                                        r"through latches\)$"):
        CycleSim(net, lib, "clk")
