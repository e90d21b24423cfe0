"""The result store: one SQLite row per evaluated design point.

Keyed by a hash of the point's configuration, the flow settings and the tool versions, so
a result is reused only when everything that produced it is the same.  The process that
evaluates a point writes its row itself — ``claim`` when it starts, ``finish`` when it ends —
so a result is stored the moment it exists, whatever happens to the process that asked
for it.  ``attempts`` and ``completions`` count evaluations started and finished: a point
with ``completions > 1`` was computed twice.
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

__all__ = ["Store", "equal_area_fixed", "point_key"]

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
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    completions INTEGER NOT NULL DEFAULT 0
)
"""


def point_key(config: dict[str, Any], settings: dict[str, Any]) -> str:
    """Hash of a point's configuration and flow settings (which include tool versions)."""
    text = json.dumps({"config": config, "settings": settings}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Store:
    """A result store at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=120, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, key: str) -> dict[str, Any] | None:
        cur = self._db.execute("SELECT * FROM points WHERE key = ?", (key,))
        row = cur.fetchone()
        if row is None:
            return None
        return self._decode(dict(zip([d[0] for d in cur.description], row, strict=True)))

    def rows(self, keys: list[str] | None = None) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM points ORDER BY started")
        names = [d[0] for d in cur.description]
        out = [self._decode(dict(zip(names, r, strict=True))) for r in cur.fetchall()]
        if keys is not None:
            wanted = set(keys)
            out = [r for r in out if r["key"] in wanted]
        return out

    @staticmethod
    def _decode(row: dict[str, Any]) -> dict[str, Any]:
        for name in ("config", "knobs", "settings", "result"):
            if row.get(name):
                row[name] = json.loads(row[name])
        return row

    def claim(self, key: str, config: dict[str, Any], knobs: dict[str, Any],
              settings: dict[str, Any], configurable: bool) -> None:
        """Record that this process starts evaluating ``key``."""
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT INTO points (key, config, knobs, settings, configurable, status, "
                "host, pid, started, attempts) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, 1) "
                "ON CONFLICT(key) DO UPDATE SET status = 'running', host = excluded.host, "
                "pid = excluded.pid, started = excluded.started, attempts = attempts + 1, "
                "error = NULL",
                (key, json.dumps(config), json.dumps(knobs), json.dumps(settings),
                 int(configurable), socket.gethostname(), os.getpid(), now))

    def finish(self, key: str, status: str, result: dict[str, Any] | None = None,
               error: str | None = None, log: str | None = None) -> None:
        """Record the outcome (``done`` or ``failed``) of this process's evaluation."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE points SET status = ?, result = ?, error = ?, log = ?, finished = ?, "
                "completions = completions + 1 WHERE key = ?",
                (status, json.dumps(result) if result is not None else None, error, log,
                 time.time(), key))

    def in_progress_elsewhere(self, row: dict[str, Any]) -> bool:
        """Whether a ``running`` row's process is still alive (on this host)."""
        if row["status"] != "running" or row["host"] != socket.gethostname():
            return False
        try:
            os.kill(int(row["pid"]), 0)
        except (OSError, TypeError, ValueError):
            return False
        return True


def equal_area_fixed(store_path: str | Path, config: Any, mapping: Any,
                     tolerance: float = 0.05) -> dict[str, Any] | None:
    """The fixed-multiplier point of the store whose area is closest to this point's
    (within ``tolerance``), with the mapped network's cycles on it and the speed-up.
    This point's area comes from the store (or the synthesis cache)."""
    from ..errors import UserError
    from ..flows.synth import cached_report
    from ..tile_config import TileConfig
    from ..workloads.mapping import map_network

    p = Path(store_path)
    if not p.is_file():
        raise UserError(f"--store {str(p)!r}: file not found")
    store = Store(p)
    try:
        rows = [r for r in store.rows() if r["status"] == "done" and r["result"]
                and "area_um2" in r["result"]]
    finally:
        store.close()
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
    return {"key": best["key"], "config": best["config"], "area_um2":
            best["result"]["area_um2"], "cycles": fixed_map.total_cycles,
            "fmax_mhz": best["result"].get("fmax_mhz"), "latency_ms": fixed_map.latency_ms,
            "speedup_cycles": fixed_map.total_cycles / mapping.total_cycles,
            "speedup_time": speedup_time}
