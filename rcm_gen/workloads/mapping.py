"""Mapping a network onto a design point: per-layer tiling, lanes and cycles from the
validated cycle model, off-chip traffic, totals, latency at the synthesized clock, and the
speed-up against the fixed-multiplier twin.

Every layer runs as the tile runs a quantized network: its sums requantized on the tile
and sent at the layer's activation precision.  With a ``bandwidth`` (bytes per cycle), a
layer takes the longer of its compute cycles and its transfer (loads and drains overlap
compute under double buffering): a roofline, with the binding side named per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..tile.config import TileConfig
from ..tile.cycles import LayerCycles, layer_cycles
from ..tile.driver import PostProcess
from .networks import Layer, Network

__all__ = ["LayerMapping", "NetworkMapping", "layer_post", "map_network", "network_cycles"]


@dataclass(frozen=True)
class LayerMapping:
    """One layer on the design point (``cycles``) and on its fixed twin (``fixed``);
    ``latency`` and ``fixed_latency`` in cycles with the mapping's bandwidth, and which
    side binds each."""

    layer: Layer
    cycles: LayerCycles
    fixed: LayerCycles
    bandwidth: float | None = None

    @property
    def latency(self) -> int:
        return self.cycles.latency(self.bandwidth)[0]

    @property
    def binding(self) -> str:
        return self.cycles.latency(self.bandwidth)[1]

    @property
    def fixed_latency(self) -> int:
        return self.fixed.latency(self.bandwidth)[0]

    @property
    def speedup(self) -> float:
        return self.fixed_latency / self.latency


@dataclass(frozen=True)
class NetworkMapping:
    """A network on a design point and on its fixed twin; latencies when the clocks
    (``fmax_mhz``, ``fixed_fmax_mhz``, from synthesis) are known."""

    config: TileConfig
    network: Network
    layers: tuple[LayerMapping, ...]
    fmax_mhz: float | None = None
    fixed_fmax_mhz: float | None = None
    bandwidth: float | None = None

    @property
    def total_cycles(self) -> int:
        """Cycles of the whole network (with the bandwidth's roofline per layer)."""
        return sum(m.latency for m in self.layers)

    @property
    def compute_cycles(self) -> int:
        """Cycles without a bandwidth limit."""
        return sum(m.cycles.total for m in self.layers)

    @property
    def fixed_cycles(self) -> int:
        return sum(m.fixed_latency for m in self.layers)

    @property
    def traffic(self) -> dict[str, int]:
        """Bytes into and out of the tile over the network, by stream."""
        out: dict[str, int] = {}
        for m in self.layers:
            for k, v in m.cycles.traffic.items():
                out[k] = out.get(k, 0) + v
        return out

    @property
    def memory_bound(self) -> list[str]:
        return [m.layer.name for m in self.layers if m.binding == "memory"]

    @property
    def ideal_cycles(self) -> int:
        return sum(m.cycles.ideal for m in self.layers)

    @property
    def utilisation(self) -> float:
        """Useful MAC-lane operations over the available ones, whole network."""
        avail = sum(m.latency * self.config.macs * m.cycles.lanes for m in self.layers)
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
                "jobs": m.cycles.jobs, "macs": m.cycles.macs, "cycles": m.latency,
                "tile_cycles": m.cycles.total, "compute_cycles": m.cycles.compute,
                "ideal_cycles": m.cycles.ideal,
                "utilisation": m.cycles.macs / (m.latency * self.config.macs * m.cycles.lanes),
                "bytes_in": m.cycles.traffic["in"], "bytes_out": m.cycles.traffic["out"],
                "traffic": m.cycles.traffic, "binding": m.binding,
                "fixed_cycles": m.fixed_latency, "speedup": m.speedup,
            } for m in self.layers],
            "totals": {
                "macs": self.network.macs, "cycles": self.total_cycles,
                "tile_cycles": self.compute_cycles, "bandwidth": self.bandwidth,
                "traffic": self.traffic, "bytes": self.traffic.get("in", 0)
                + self.traffic.get("out", 0), "memory_bound": self.memory_bound,
                "ideal_cycles": self.ideal_cycles, "utilisation": self.utilisation,
                "fixed_cycles": self.fixed_cycles, "speedup_cycles": self.speedup_cycles,
                "fmax_mhz": self.fmax_mhz, "fixed_fmax_mhz": self.fixed_fmax_mhz,
                "latency_ms": self.latency_ms, "fixed_latency_ms": self.fixed_latency_ms,
                "speedup_time": self.speedup_time,
            },
        }


def layer_post(layer: Layer) -> PostProcess:
    """How a network layer's sums leave the tile: requantized to its activation bits."""
    return PostProcess.for_timing(layer.shape.m, layer.act_bits, layer.act_signed)


def network_cycles(config: TileConfig, network: Network) -> list[LayerCycles]:
    """Every layer of ``network`` on ``config`` (sums requantized on the tile);
    :class:`UserError` naming the first layer the design point cannot run and why."""
    out = []
    for layer in network.layers:
        try:
            out.append(layer_cycles(config, layer.shape, layer.act_bits, layer.weight_bits,
                                    layer.act_signed, post=layer_post(layer)))
        except ValueError as exc:
            raise UserError(f"layer {layer.name!r} cannot run on this design point: {exc}"
                            ) from None
    return out


def map_network(config: TileConfig, network: Network, fmax_mhz: float | None = None,
                fixed_fmax_mhz: float | None = None, bandwidth: float | None = None
                ) -> NetworkMapping:
    """Every layer of ``network`` on ``config`` and on its fixed twin (with off-chip
    ``bandwidth`` bytes per cycle, unlimited when ``None``); :class:`UserError` naming the
    first layer the design point cannot run and why."""
    if not isinstance(config, TileConfig):
        raise UserError(f"map needs a tile design point (rcm-small, rcm-default, ...), not a "
                        f"{config.kind} configuration")
    fixed = config if config.is_fixed else config.fixed_twin()
    rows = [LayerMapping(layer, st, fx, bandwidth) for layer, st, fx in zip(
        network.layers, network_cycles(config, network), network_cycles(fixed, network),
        strict=True)]
    return NetworkMapping(config, network, tuple(rows), fmax_mhz, fixed_fmax_mhz, bandwidth)
