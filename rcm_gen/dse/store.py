"""The result store: SQLite, one row per design point and one per (point, workload).

A point is keyed by a hash of its configuration, the flow settings and the tool versions
(:func:`point_key`), so a result is reused only when everything that produced it is the same.
Its synthesis result lives in ``points``; the cycle-model results of its workloads live in
``cycles``, keyed by the point and a hash of the workload, so adding a workload to a space
reuses the synthesis of every point.

Claim and commit
----------------
Whoever synthesizes a point first *claims* it (:meth:`Store.claim`, one transaction): a
point that is ``done`` is not claimed again, a point that is ``running`` under a live
process is left to that process (``busy``), and a point whose owner died is taken over.
The owner commits with :meth:`Store.finish`.  A sweep killed at any moment therefore
resumes with every committed result kept; a point that was being computed by a process
that died is computed once more.  The counters say what happened: ``attempts`` (claims),
``finishes`` (evaluations that ran to their end) and ``successes`` (results committed as
``done``); ``successes > 1`` would mean a completed result was computed twice.

Liveness is checked by process id (and the process's start time, against reuse of the id)
on the store's host: the store is written by processes on one machine (the sweep and its
local workers); workers on other machines hand their results to the sweep, which commits
them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["Store", "equal_area_fixed", "owner_alive", "point_key", "process_start"]

_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    knobs TEXT NOT NULL,
    settings TEXT NOT NULL,
    configurable INTEGER NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    log TEXT,
    host TEXT,
    pid INTEGER,
    pid_start TEXT,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    finishes INTEGER NOT NULL DEFAULT 0,
    successes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cycles (
    point TEXT NOT NULL,
    workload TEXT NOT NULL,
    result TEXT NOT NULL,
    computed REAL NOT NULL,
    PRIMARY KEY (point, workload)
);
"""


def point_key(config: dict[str, Any], settings: dict[str, Any]) -> str:
    """Hash of a point's configuration and flow settings (which include tool versions)."""
    text = json.dumps({"config": config, "settings": settings}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def process_start(pid: int) -> str | None:
    """Start time of process ``pid`` (Linux ``/proc``), to tell a reused process id."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def owner_alive(row: dict[str, Any]) -> bool:
    """Whether the process that claimed a ``running`` row still runs.

    A row claimed on another host counts as dead: only processes on the store's host
    write to it.
    """
    if row.get("status") != "running" or row.get("host") != socket.gethostname():
        return False
    try:
        pid = int(row["pid"])
        os.kill(pid, 0)
    except (OSError, TypeError, ValueError):
        return False
    start = process_start(pid)
    return start is None or row.get("pid_start") in (None, start)


class Store:
    """A result store at ``path`` (created with its folder if missing).

    Raises
    ------
    UserError
        If ``path`` is not an SQLite file or was written in another store format.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=300, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            # one read transaction: the format and the tables of the same snapshot (a
            # store another process is creating is seen before or after, never half-made)
            self._db.execute("BEGIN")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise UserError(f"--store {str(self.path)!r} is not a result store ({exc})"
                            ) from None
        if tables and version != _VERSION:
            self._db.close()
            raise UserError(f"--store {str(self.path)!r} was written in store format "
                            f"{version}, not {_VERSION}; give a new --store")
        # the tables and the format number in one transaction: a process killed while
        # creating the store leaves either nothing or a complete, stamped store
        self._db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\n"
                               f"PRAGMA user_version = {_VERSION};\nCOMMIT;")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------

    def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cur = self._db.execute(sql, args)
        names = [d[0] for d in cur.description]
        return [self._decode(dict(zip(names, r, strict=True))) for r in cur.fetchall()]

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        for name in ("config", "knobs", "settings", "result"):
            if row.get(name):
                row[name] = json.loads(row[name])
        return row

    def get(self, key: str) -> dict[str, Any] | None:
        """The row of point ``key``, or ``None``."""
        rows = self._fetch("SELECT * FROM points WHERE key = ?", (key,))
        return rows[0] if rows else None

    def rows(self, keys: list[str] | None = None) -> list[dict[str, Any]]:
        """Rows of the given points (all of them by default), in the order of ``keys``."""
        rows = self._fetch("SELECT * FROM points ORDER BY started")
        if keys is None:
            return rows
        by_key = {r["key"]: r for r in rows}
        return [by_key[k] for k in keys if k in by_key]

    def cycles(self, key: str) -> dict[str, dict[str, Any]]:
        """Workload key → cycle-model result, for point ``key``."""
        cur = self._db.execute("SELECT workload, result FROM cycles WHERE point = ?", (key,))
        return {w: json.loads(r) for w, r in cur.fetchall()}

    # -- writing ----------------------------------------------------------------------------

    def claim(self, key: str, config: dict[str, Any], knobs: dict[str, Any],
              settings: dict[str, Any], configurable: bool, *, retry_failed: bool = False,
              pid: int | None = None) -> tuple[str, int]:
        """Try to take point ``key`` for evaluation by process ``pid`` (this one by default).

        Returns ``(state, attempt)``: ``"claimed"`` (the caller evaluates it; ``attempt``
        counts claims, 1 for the first), ``"done"``, ``"failed"`` (an earlier failure,
        kept unless ``retry_failed``) or ``"busy"`` (a live process evaluates it now).
        """
        pid = os.getpid() if pid is None else pid
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._fetch("SELECT * FROM points WHERE key = ?", (key,))
            row = row[0] if row else None
            if row is not None:
                if row["status"] == "done":
                    self._db.execute("COMMIT")
                    return "done", row["attempts"]
                if row["status"] == "failed" and not retry_failed:
                    self._db.execute("COMMIT")
                    return "failed", row["attempts"]
                if row["status"] == "running" and owner_alive(row) and row["pid"] != pid:
                    self._db.execute("COMMIT")
                    return "busy", row["attempts"]
            self._db.execute(
                "INSERT INTO points (key, config, knobs, settings, configurable, status, "
                "host, pid, pid_start, started, attempts) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, 1) "
                "ON CONFLICT(key) DO UPDATE SET status = 'running', host = excluded.host, "
                "pid = excluded.pid, pid_start = excluded.pid_start, "
                "started = excluded.started, attempts = attempts + 1, error = NULL",
                (key, json.dumps(config), json.dumps(knobs), json.dumps(settings),
                 int(configurable), socket.gethostname(), pid, process_start(pid),
                 time.time()))
            attempt = self._db.execute("SELECT attempts FROM points WHERE key = ?",
                                       (key,)).fetchone()[0]
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return "claimed", attempt

    def finish(self, key: str, status: str, result: dict[str, Any] | None = None,
               error: str | None = None, log: str | None = None) -> None:
        """Commit the outcome (``done`` or ``failed``) of an evaluation of ``key``."""
        if status not in ("done", "failed"):
            raise ValueError(f"Store status must be done or failed, not {status!r}")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE points SET status = ?, result = ?, error = ?, log = ?, finished = ?, "
                "finishes = finishes + 1, successes = successes + ? WHERE key = ?",
                (status, json.dumps(result) if result is not None else None, error, log,
                 time.time(), int(status == "done"), key))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def put_cycles(self, key: str, workload: str, result: dict[str, Any]) -> None:
        """Store the cycle-model result of ``workload`` on point ``key``."""
        self._db.execute("INSERT OR REPLACE INTO cycles (point, workload, result, computed) "
                         "VALUES (?, ?, ?, ?)", (key, workload, json.dumps(result),
                                                 time.time()))


def equal_area_fixed(store_path: str | Path, config: Any, mapping: Any,
                     tolerance: float = 0.05) -> dict[str, Any] | None:
    """The fixed-multiplier point of a sweep's store whose area is closest to ``config``'s
    (within ``tolerance``), with ``mapping.network``'s cycles on it and the speed-up of
    ``mapping`` over it; ``None`` if no fixed point is that close.

    ``config``'s own area comes from the store, or else from the synthesis cache.

    Raises
    ------
    UserError
        If the store does not exist or ``config``'s area is not known.
    """
    from ..flows.synth import cached_report
    from ..tile.config import TileConfig
    from ..workloads.mapping import map_network

    p = Path(store_path)
    if not p.is_file():
        raise UserError(f"--store {str(p)!r}: file not found")
    with Store(p) as store:
        rows = [r for r in store.rows() if r["status"] == "done" and r["result"]
                and "area_um2" in r["result"]]
    own = next((r["result"] for r in rows if r["config"] == config.to_dict()), None)
    if own is None:
        own = cached_report(config)
    if own is None:
        raise UserError("--store: this design point's area is not known; synthesize it "
                        "(rcm-gen synth) or include it in the sweep")
    area = float(own["area_um2"])
    candidates = [r for r in rows if not r["configurable"]
                  and abs(r["result"]["area_um2"] - area) <= tolerance * area]
    if not candidates:
        return None
    best = min(candidates, key=lambda r: abs(r["result"]["area_um2"] - area))
    other = TileConfig.from_dict(best["config"])
    fixed_map = map_network(other, mapping.network, best["result"].get("fmax_mhz"))
    speedup_time = None
    if mapping.latency_ms and fixed_map.latency_ms:
        speedup_time = fixed_map.latency_ms / mapping.latency_ms
    return {"key": best["key"], "config": best["config"],
            "area_um2": best["result"]["area_um2"], "cycles": fixed_map.total_cycles,
            "fmax_mhz": best["result"].get("fmax_mhz"), "latency_ms": fixed_map.latency_ms,
            "speedup_cycles": fixed_map.total_cycles / mapping.total_cycles,
            "speedup_time": speedup_time}
