"""Mapping a network onto a design point: per-layer tiling, lanes and cycles from the
validated cycle model, totals, latency at the synthesized clock, and the speed-up against
the fixed-multiplier twin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..tile.config import TileConfig
from ..tile.cycles import LayerCycles, layer_cycles
from .networks import Layer, Network

__all__ = ["LayerMapping", "NetworkMapping", "map_network"]


@dataclass(frozen=True)
class LayerMapping:
    layer: Layer
    cycles: LayerCycles
    fixed: LayerCycles

    @property
    def speedup(self) -> float:
        return self.fixed.total / self.cycles.total


@dataclass(frozen=True)
class NetworkMapping:
    """A network on a design point and on its fixed twin; latencies when the clocks
    (``fmax_mhz``, ``fixed_fmax_mhz``, from synthesis) are known."""

    config: TileConfig
    network: Network
    layers: tuple[LayerMapping, ...]
    fmax_mhz: float | None = None
    fixed_fmax_mhz: float | None = None

    @property
    def total_cycles(self) -> int:
        return sum(m.cycles.total for m in self.layers)

    @property
    def fixed_cycles(self) -> int:
        return sum(m.fixed.total for m in self.layers)

    @property
    def ideal_cycles(self) -> int:
        return sum(m.cycles.ideal for m in self.layers)

    @property
    def utilisation(self) -> float:
        """Useful MAC-lane operations over the available ones, whole network."""
        avail = sum(m.cycles.total * self.config.p * m.cycles.lanes for m in self.layers)
        return self.network.macs / avail

    @property
    def speedup_cycles(self) -> float:
        return self.fixed_cycles / self.total_cycles

    @property
    def latency_ms(self) -> float | None:
        return self.total_cycles / (self.fmax_mhz * 1e3) if self.fmax_mhz else None

    @property
    def fixed_latency_ms(self) -> float | None:
        return self.fixed_cycles / (self.fixed_fmax_mhz * 1e3) if self.fixed_fmax_mhz else None

    @property
    def speedup_time(self) -> float | None:
        if self.latency_ms and self.fixed_latency_ms:
            return self.fixed_latency_ms / self.latency_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.name,
            "layers": [{
                **m.layer.to_dict(), "lanes": m.cycles.lanes, "tiling": m.cycles.tiling,
                "jobs": m.cycles.jobs, "macs": m.cycles.macs, "cycles": m.cycles.total,
                "compute_cycles": m.cycles.compute, "ideal_cycles": m.cycles.ideal,
                "utilisation": m.cycles.utilisation, "fixed_cycles": m.fixed.total,
                "speedup": m.speedup,
            } for m in self.layers],
            "totals": {
                "macs": self.network.macs, "cycles": self.total_cycles,
                "ideal_cycles": self.ideal_cycles, "utilisation": self.utilisation,
                "fixed_cycles": self.fixed_cycles, "speedup_cycles": self.speedup_cycles,
                "fmax_mhz": self.fmax_mhz, "fixed_fmax_mhz": self.fixed_fmax_mhz,
                "latency_ms": self.latency_ms, "fixed_latency_ms": self.fixed_latency_ms,
                "speedup_time": self.speedup_time,
            },
        }


def map_network(config: TileConfig, network: Network, fmax_mhz: float | None = None,
                fixed_fmax_mhz: float | None = None) -> NetworkMapping:
    """Every layer of ``network`` on ``config`` and on its fixed twin; :class:`UserError`
    naming the first layer the design point cannot run and why."""
    if not isinstance(config, TileConfig):
        raise UserError(f"map needs a tile design point (rcm-small, rcm-default, ...), not a "
                        f"{config.kind} configuration")
    fixed = config if config.is_fixed else config.fixed_twin()
    rows = []
    for layer in network.layers:
        try:
            st = layer_cycles(config, layer.shape, layer.act_bits, layer.weight_bits,
                              layer.act_signed)
            fx = layer_cycles(fixed, layer.shape, layer.act_bits, layer.weight_bits,
                              layer.act_signed)
        except ValueError as exc:
            raise UserError(f"layer {layer.name!r} cannot run on this design point: {exc}"
                            ) from None
        rows.append(LayerMapping(layer, st, fx))
    return NetworkMapping(config, network, tuple(rows), fmax_mhz, fixed_fmax_mhz)
