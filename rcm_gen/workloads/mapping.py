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
from ..tile.cycles import LayerCycles
from ..tile.driver import PostProcess, layer_cycles
from .networks import Layer, Network

__all__ = ["LayerMapping", "NetworkMapping", "layer_post", "map_network", "mapping_energy",
           "network_cycles"]


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


def network_cycles(config: TileConfig, network: Network, bandwidth: float | None = None
                   ) -> list[LayerCycles]:
    """Every layer of ``network`` on ``config`` (sums requantized on the tile);
    :class:`UserError` naming the first layer the design point cannot run and why."""
    out = []
    for layer in network.layers:
        try:
            out.append(layer_cycles(config, layer.shape, layer.act_bits, layer.weight_bits,
                                    layer.act_signed, post=layer_post(layer),
                                    bandwidth=bandwidth))
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
        network.layers, network_cycles(config, network, bandwidth),
        network_cycles(fixed, network, bandwidth),
        strict=True)]
    return NetworkMapping(config, network, tuple(rows), fmax_mhz, fixed_fmax_mhz, bandwidth)


def mapping_energy(mapping: NetworkMapping, model: Any, fixed_model: Any) -> dict[str, Any]:
    """Energy per inference of a mapped network on the design point and on its fixed
    twin, from their energy models (:class:`rcm_gen.power.tile_model.TileEnergyModel`):
    each layer's energy from its cycle-model figures (latency, compute steps, bytes in
    and out) at the point's clock (its Fmax; the model's synthesis Fmax when the mapping
    has none), summed; EDP is the energy times the latency.  Energies in µJ per layer and
    mJ in total, EDP in mJ·s."""
    fmax = mapping.fmax_mhz or model.fmax_mhz
    fixed_fmax = mapping.fixed_fmax_mhz or fixed_model.fmax_mhz
    clock, fixed_clock = 1000.0 / fmax, 1000.0 / fixed_fmax
    rows = []
    total = fixed_total = 0.0
    groups: dict[str, float] = {}
    components: dict[str, float] = {}
    for m in mapping.layers:
        layer = m.layer
        e = model.layer_energy(m.cycles, layer.shape, layer.act_bits, layer.weight_bits,
                               cycles=m.latency, clock_ns=clock)
        f = fixed_model.layer_energy(m.fixed, layer.shape, layer.act_bits, layer.weight_bits,
                                     cycles=m.fixed_latency, clock_ns=fixed_clock)
        total += e["pj"]
        fixed_total += f["pj"]
        for g, v in e["groups_pj"].items():
            groups[g] = groups.get(g, 0.0) + v
        for c, v in e.get("components_pj", {}).items():
            components[c] = components.get(c, 0.0) + v
        rows.append({"name": layer.name, "mode": e["mode"], "energy_uj": e["pj"] * 1e-6,
                     "pj_per_mac": e["pj"] / m.cycles.macs, "fixed_mode": f["mode"],
                     "fixed_energy_uj": f["pj"] * 1e-6,
                     "groups_uj": {g: v * 1e-6 for g, v in e["groups_pj"].items()}})
    seconds = mapping.total_cycles * clock * 1e-9
    fixed_seconds = mapping.fixed_cycles * fixed_clock * 1e-9
    energy_mj, fixed_mj = total * 1e-9, fixed_total * 1e-9
    return {
        "layers": rows,
        "totals": {
            "energy_mj": energy_mj, "fixed_energy_mj": fixed_mj,
            "pj_per_mac": total / mapping.network.macs,
            "fixed_pj_per_mac": fixed_total / mapping.network.macs,
            "energy_ratio": energy_mj / fixed_mj,
            "latency_ms": seconds * 1e3, "fixed_latency_ms": fixed_seconds * 1e3,
            "edp_mj_s": energy_mj * seconds, "fixed_edp_mj_s": fixed_mj * fixed_seconds,
            "edp_ratio": (energy_mj * seconds) / (fixed_mj * fixed_seconds),
            "fmax_mhz": fmax, "fixed_fmax_mhz": fixed_fmax,
            "groups_mj": {g: v * 1e-9 for g, v in groups.items()},
            "components_mj": {c: v * 1e-9 for c, v in components.items()},
            **_summary_mj(components, total),
        },
    }


def _summary_mj(components: dict[str, float], total_pj: float) -> dict[str, Any]:
    """The clock's parts and the memories (mJ) of a network's components (pJ), and the
    energy with the memory macros' access energies halved and doubled."""
    from ..power.energy import energy_summary

    s = energy_summary(components)
    access = s["macro_access"]
    return {"clock_mj": {p: v * 1e-9 for p, v in s["clock"].items()},
            "memories_mj": {b: {k: v * 1e-9 for k, v in e.items()}
                            for b, e in s["memories"].items()},
            "macro_access_mj": access * 1e-9,
            "energy_mj_macro_access_x0_5": (total_pj - access / 2) * 1e-9,
            "energy_mj_macro_access_x2": (total_pj + access) * 1e-9}
