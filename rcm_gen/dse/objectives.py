"""What a sweep minimizes, computed from a point's stored results."""

from __future__ import annotations

from typing import Any

__all__ = ["latency_ns"]


def latency_ns(result: dict[str, Any] | None, cycles: dict[str, Any] | None) -> float | None:
    """Latency of a case on a point: its cycles times the point's achieved clock period;
    ``None`` if the point failed, was pruned or fails its budget, or cannot run the
    case."""
    if not result or not cycles or cycles.get("cycles") is None:
        return None
    if result.get("pruned") or result.get("budget_fail"):
        return None
    return cycles["cycles"] * result["critical_path_ns"]
