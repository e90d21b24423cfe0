"""Progress of long runs: a progress bar (``rich``) when standard error is a terminal,
plain lines otherwise (one per change of the counts, for logs)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["ProgressLine"]


class ProgressLine:
    """``total`` steps; :meth:`update` sets how many are done and a status text.

    On a terminal, a ``rich`` bar with the text, elapsed and remaining time, redrawn in
    place; otherwise one line ``[done/total] text; elapsed`` each time the text changes,
    at most every ``interval`` seconds while only the count changes, and at the end.
    ``enabled=False`` prints nothing.
    """

    interval = 10.0

    def __init__(self, total: int, description: str = "", enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.last: tuple[int, str] | None = None
        self.last_time = 0.0
        self._bar: Any = None
        self._task: Any = None
        if enabled and self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TimeRemainingColumn(),
                                 console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(description, total=max(total, 1))

    def update(self, done: int, text: str = "", total: int | None = None,
               final: bool = False) -> None:
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=max(self.total, 1),
                             description=text or self.description)
            if final:
                self._bar.stop()
                self._bar = None
            return
        now = time.monotonic()
        if not final and self.last is not None and (
                (done, text) == self.last
                or (text == self.last[1] and now - self.last_time < self.interval)):
            return
        self.last, self.last_time = (done, text), now
        elapsed = _fmt(time.monotonic() - self.start)
        self.stream.write(f"[{done}/{self.total}] {text or self.description}; "
                          f"{elapsed} elapsed\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
