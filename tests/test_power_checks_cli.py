"""``rcm-gen power --timed`` (zero-delay against timing simulation) and ``--opensta``
(the energy model against OpenSTA's report_power) from the command line, on the user's
RTL beside a generated MAC; bad input (exit 2, one line, no report)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
USER_MAC = DATA / "user_mac.sv"
USER_PORTS = DATA / "user_mac.toml"


def _one_line_error(r, pattern, report=None):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(rf"rcm-gen: error: {pattern}", lines[0]), r.stderr
    if report is not None:
        assert not Path(report).exists()


@pytest.mark.synth
def test_user_mac_timed_and_against_opensta(cli, tmp_path):
    """The user's 8-bit MAC (a port map says which port is which) and mac8 on the same
    data: every accumulator value checked in both simulations, timed toggles above
    zero-delay ones, both ways' pJ/MAC ratios printed, and the energy model within its
    tolerances of OpenSTA's on the user's netlist."""
    out = tmp_path / "r.json"
    r = cli("power", "--verilog", str(USER_MAC), "--top", "user_mac", "--ports",
            str(USER_PORTS), "--timed", "--opensta", "--cycles", "30", "--simulator",
            "icarus", "--compare", "mac8", "--quiet", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert set(rep["designs"]) == {"user_mac", "mac8"}
    for name, entry in rep["designs"].items():
        t = entry["timed"]
        assert t["checked"]["timed"] == t["checked"]["zero_delay"] >= 6 * 30, name
        assert all(m["toggles_per_cycle"]["timed"] > m["toggles_per_cycle"]["zero_delay"]
                   for m in t["modes"]), name
        assert entry["opensta"]["within"], (name, entry["opensta"]["difference"])
    assert "zero-delay, " in r.stdout and "x timed" in r.stdout
    assert "pJ/MAC of user_mac / mac8 on the same data" in r.stdout


@pytest.mark.parametrize("args, pattern", [
    (["rcm-small", "--timed"],
     r"--timed runs on a MAC \(a mac preset, a MAC --config or --verilog\), not a tile"),
    (["mac8", "--timed", "--simulator", "cycle"],
     r"--simulator for --timed or --opensta on a MAC must be verilator or icarus, not 'cycle'"),
    (["rcm-small", "--opensta", "--cycles", "100"],
     r"--cycles and --stimulus apply to MACs; a tile runs a whole layer per mode"),
    (["mac8", "--opensta", "--compare", "rcm-small"],
     r"--compare 'rcm-small': compares like with like, not a tile"),
    (["mac8", "--timed", "--cycles", "0"], r"--cycles must be at least 1, not 0"),
])
def test_bad_input(cli, tmp_path, args, pattern):
    report = tmp_path / "r.json"
    _one_line_error(cli("power", *args, "--json", str(report)), pattern, report)
