"""SDF for timing simulation: what Icarus 11 cannot take is merged and folded, and an SDF
of another netlist is refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcm_gen.errors import UserError
from rcm_gen.flows.liberty import load_liberty
from rcm_gen.flows.netlist import read_netlist
from rcm_gen.power.sdf import read_sdf

OSU018 = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
XOR_CHAIN = Path(__file__).parent / "data" / "xor_chain.v"


_SDF_HEAD = '(DELAYFILE (SDFVERSION "3.0") (DESIGN "xchain") (DIVIDER /) (TIMESCALE 1ns)\n'


def _sdf(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "t.sdf"
    path.write_text(_SDF_HEAD + body + ")\n")
    return path


def test_sdf_merged_for_icarus(tmp_path):
    """What Icarus 11 cannot take is rewritten: conditional and duplicate arcs of a pin
    pair become one with their largest delays (the max of min::max triples), a net's
    INTERCONNECT delay is added to its driver's arcs, an input port's becomes its input
    delay; the SDF written for Icarus has plain IOPATHs on the flat instances."""
    lib = load_liberty(OSU018)
    (tmp_path / "x.v").write_text(XOR_CHAIN.read_text())
    net = read_netlist(tmp_path / "x.v", lib, "xchain", tmp_path / "read")
    cells = "".join(f' (CELL (CELLTYPE "BUFX2") (INSTANCE c{i}) (DELAY (ABSOLUTE '
                    f'(IOPATH A Y (0.1::0.1) (0.1::0.1)))))\n' for i in range(2, 7))
    cells += "".join(f' (CELL (CELLTYPE "DFFPOSX1") (INSTANCE r{r}) (DELAY (ABSOLUTE '
                     f'(IOPATH (posedge CLK) Q (0.2::0.3) (0.25::0.35)))))\n'
                     for r in ("6", "1", "a"))
    body = (' (CELL (CELLTYPE "xchain") (INSTANCE) (DELAY (ABSOLUTE\n'
            '  (INTERCONNECT a c1/A (0.05::0.07) (0.04::0.06))\n'
            '  (INTERCONNECT a x1/A (0.05::0.08) (0.04::0.05))\n'
            '  (INTERCONNECT c1/Y x1/B (0.01::0.02) (0.03::0.03)))))\n'
            ' (CELL (CELLTYPE "BUFX2") (INSTANCE c1) (DELAY (ABSOLUTE\n'
            '  (IOPATH A Y (0.1::0.12) (0.09::0.11)))))\n'
            ' (CELL (CELLTYPE "XOR2X1") (INSTANCE x1) (DELAY (ABSOLUTE\n'
            '  (COND B (IOPATH A Y (0.2::0.21) (0.3::0.31)))\n'
            '  (COND !B (IOPATH A Y (0.25::0.26) (0.1::0.11)))\n'
            '  (IOPATH B Y (0.1::0.1) (0.1::0.1)) (IOPATH B Y (0.15::0.15) (0.05::0.05)))))\n'
            ' (CELL (CELLTYPE "XOR2X1") (INSTANCE x6) (DELAY (ABSOLUTE\n'
            '  (IOPATH A Y (0.2) (0.2)) (IOPATH B Y (0.2) (0.2)))))\n' + cells)
    ann = read_sdf(_sdf(tmp_path, body), net, lib)
    idx = {i.path: k for k, i in enumerate(net.instances)}
    assert ann.arcs[idx["c1"]][("A", "Y")] == pytest.approx((0.12 + 0.02, 0.11 + 0.03))
    assert ann.arcs[idx["x1"]][("A", "Y")] == pytest.approx((0.26, 0.31))
    assert ann.arcs[idx["x1"]][("B", "Y")] == pytest.approx((0.15, 0.1))
    assert ann.arcs[idx["r6"]][("CLK", "Q")] == pytest.approx((0.3, 0.35))
    assert ann.inputs == {net.ports["a"][1][0]: pytest.approx((0.08, 0.06))}
    assert ann.notes["conditional_arcs"] == 2 and ann.notes["merged_arcs"] == 2
    text = ann.icarus_sdf(net)
    assert "COND" not in text and "INTERCONNECT" not in text
    assert f"(INSTANCE u{idx['x1']})" in text and text.count("(IOPATH A Y") == 8


@pytest.mark.parametrize("body, message", [
    (' (CELL (CELLTYPE "BUFX2") (INSTANCE nowhere) (DELAY (ABSOLUTE '
     '(IOPATH A Y (0.1) (0.1)))))\n', r"instance 'nowhere' \(BUFX2\) is not in it"),
    (' (CELL (CELLTYPE "INVX1") (INSTANCE c1) (DELAY (ABSOLUTE '
     '(IOPATH A Y (0.1) (0.1)))))\n', r"instance 'c1' is a BUFX2, the SDF says INVX1"),
    (' (CELL (CELLTYPE "BUFX2") (INSTANCE c1) (DELAY (ABSOLUTE '
     '(IOPATH Z Y (0.1) (0.1)))))\n', r"names pin 'Z', which cell BUFX2 does not have"),
    (' (CELL (CELLTYPE "BUFX2") (INSTANCE c1) (DELAY (ABSOLUTE '
     '(IOPATH A Y (0.1) (0.1)))))\n', r"instance 'c2' \(BUFX2\) has no delays in it"),
])
def test_sdf_that_does_not_match_the_netlist(tmp_path, body, message):
    """An SDF of another netlist is refused with one line naming the file and what does
    not match."""
    lib = load_liberty(OSU018)
    (tmp_path / "x.v").write_text(XOR_CHAIN.read_text())
    net = read_netlist(tmp_path / "x.v", lib, "xchain", tmp_path / "read")
    with pytest.raises(UserError, match=rf"^SDF '.*t\.sdf'.*{message}") as err:
        read_sdf(_sdf(tmp_path, body), net, lib)
    assert "\n" not in str(err.value)
