"""Progress output: plain lines when standard error is not a terminal (one per change),
a rich progress bar when it is; the DSE keeps its counts line in logs."""

from __future__ import annotations

import io
import re

from rcm_gen.dse.runner import SweepStats, _Progress
from rcm_gen.progress import ProgressLine


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_one_per_change():
    out = io.StringIO()
    bar = ProgressLine(3, "power", stream=out)
    bar.update(0, "mac16: simulating")
    bar.update(0, "mac16: simulating")  # no change: no line
    bar.update(1, "mac16: done")
    bar.update(3, "all done", final=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\[0/3\] mac16: simulating; 0s elapsed", lines[0])
    assert re.fullmatch(r"\[3/3\] all done; 0s elapsed", lines[2])


def test_terminal_gets_a_rich_bar():
    out = _Tty()
    bar = ProgressLine(4, "sweep", stream=out)
    bar.update(2, "2 computed")
    bar.update(4, "4 computed", final=True)
    text = out.getvalue()
    assert "4 computed" in text and "4/4" in text and "[4/4]" not in text


def test_disabled_prints_nothing():
    out = io.StringIO()
    ProgressLine(2, "x", enabled=False, stream=out).update(1, "y")
    assert out.getvalue() == ""


def test_dse_progress_lines_in_a_log(capsys):
    stats = SweepStats()
    stats.points = 4
    prog = _Progress(stats)
    prog.tty = False
    prog.update()
    stats.computed, stats.cached = 2, 1
    prog.update()
    prog.update()  # unchanged counts: no new line
    prog.update(final=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\[0/4 points\] 0 computed, 0 failed, 0 cached, 0 skipped; 0s elapsed",
                        lines[0])
    assert re.fullmatch(r"\[3/4 points\] 2 computed, 0 failed, 1 cached, 0 skipped; 0s "
                        r"elapsed, ~0s left", lines[1])


def test_plain_lines_are_rate_limited_while_only_the_count_moves():
    out = io.StringIO()
    bar = ProgressLine(1000, "sim", stream=out)
    for done in range(0, 1000, 10):
        bar.update(done, "simulating")
    bar.update(1000, "simulating", final=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[0/1000]") and lines[1].startswith(
        "[1000/1000]")
