"""Configuration of the RCM tile: a convolution tile of P precision-scalable MACs."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..config import MacConfig, _check_int, _ConfigBase, check_bool, signed_bits, value_range

__all__ = ["TILE_PRESETS", "TileConfig"]


def _range(owner: str, value: Any, lo: int, hi: int) -> None:
    _check_int("Tile", owner, value)
    if not lo <= value <= hi:
        raise ValueError(f"Tile {owner} must be from {lo} to {hi}, not {value!r}")


@dataclass(frozen=True)
class TileConfig(_ConfigBase):
    """A Reconfigurable 2D-Convolution Module (RCM) design point.

    A *job* is the part of a layer the tile computes from its local buffers: up to ``tm``
    output channels × ``tr`` × ``tc`` output pixels, from up to ``tn`` words per input
    pixel (a word packs N input channels in N-lane mode, so up to ``tn``·N channels).
    The MAC array is ``p`` × ``q``: ``p`` output channels (each weight word broadcast to
    a row of ``q`` MACs) × ``q`` output pixels, consecutive in the job's raster order (each
    activation word broadcast to a column of ``p`` MACs); each MAC accumulates one output
    pixel of one channel over the job's channel words and kernel positions.  The activation
    buffer is interleaved over ``act_banks`` banks by input row and column (sized for a
    ``qr`` × ``qc`` patch) so that the ``q`` MACs read ``q`` different words every cycle
    (the driver plans jobs whose pixel groups do, :meth:`distinct_banks`); ``q = 1`` is a
    single bank.  The jobs of one *output
    block* (the same output channels and pixels, successive input channels) accumulate in
    the output buffer: only the last one's sums leave the tile, post-processed (bias,
    TFLite requantization, zero point, clamp, packing) or raw.  Buffers are double-banked,
    so the next job loads while the current one computes and the previous block drains.

    Parameters
    ----------
    mac : MacConfig
        The MAC design point.  The tile sets its ``reduction`` to ``max_reduction`` and its
        accumulator width to hold that many worst-case products plus a 32-bit bias, so the
        accumulator can never overflow on a job the tile accepts.
    p : int
        Output channels computed at once (rows of the MAC array).
    qr, qc : int
        The patch the activation banks are interleaved for: ``q = qr·qc`` output pixels
        computed at once (columns of the MAC array).
    tm : int
        Output channels per job (a multiple of ``p``).
    tn : int
        Words (channel groups) per input pixel per job.
    tr, tc : int
        Output rows and columns per job (multiples of ``qr`` and ``qc``).
    k_max, s_max : int
        Largest kernel and stride the tile runs.
    act_depth, weight_depth : int or None
        Words per activation-buffer bank (of each of its ``act_banks`` interleaved banks)
        and P-word rows per weight-buffer bank.  ``None`` sizes them for a 3×3, stride-1
        job at full ``tn``/``tm``/``tr``/``tc`` (and never below one ``k_max``×``k_max``
        kernel).
    max_reduction : int
        Longest accumulation the tile accepts for one output pixel, in MAC steps (each
        adds one N-lane dot product), summed over the jobs of an output block.  A job
        that would exceed it is refused.
    act_beat : int
        Activation words per beat of the ``act`` stream (consecutive input columns of one
        row, written into as many interleaved banks at once): a power of two up to the
        column interleaving (1 for a single-column patch).  A large array consumes up to
        ``q`` words a cycle and needs the wider stream to keep loads behind compute.
    ppu_lanes : int
        Post-processing units (each requantizes one output channel per cycle); a divisor
        of ``p``.  A result row of P channels leaves the tile every ``p / ppu_lanes``
        cycles.
    memory : str
        What the buffers are built from: ``ff`` (flip-flops), ``latch`` (latch arrays
        written through a clock gate per word), ``sram`` (macros of the macro library,
        the remainder in flip-flops), ``auto`` (per buffer, the best of those by the
        library's estimates), or the name of one macro of ``macros``.
    macros : str or None
        The macro library: ``sky130_sram`` or the path of a ``library.toml``; ``None``
        takes the library that goes with the synthesis liberty, and without one the
        buffers are flip-flops (see :func:`rcm_gen.gateware.memory.resolve_binding`).
    clock_gating : bool
        ASIC synthesis gives flip-flops that share an enable (buffer words, accumulators,
        pipeline stages, descriptor registers) their clock through a clock-gating cell of
        the library; ``False`` clocks every flip-flop every cycle.  The tile sets its MAC's
        ``clock_gating`` to the same value.  FPGA flows ignore it.
    ppu_product : str
        How the post-processing units build their 32-bit product: ``booth`` (Booth rows
        compressed to two rows in logic, no long carry chain: for ASICs), ``dsp`` (partial
        products of at most 18×18 bits that FPGA flows put in one DSP block each, summed on
        the carry chain) or ``auto`` (``dsp`` in a tile of ``dsp`` MACs, else ``booth``;
        the ECP5 and Nexus flows take ``dsp``: :func:`rcm_gen.flows.fpga.fpga_config`).
    column_stage : bool
        A register stage at the inputs of every MAC column (its operands, controls,
        biases and memory ports): what the controller broadcasts to the array then drives
        ``q`` registers instead of every MAC and output memory of the array, and a large
        array's long high-fanout nets become short local ones.  Each MAC's share of the
        column's output banks is then a memory of its own with its own copy of the
        stage's address registers (:class:`rcm_gen.gateware.column.OutSlice`), so that
        no register drives a whole column's memories; and the drain's output has a
        skid register, so that the output's ready reaches no further than the output
        (not the drain's pipeline and the memories' reads), and a register for the row
        it reads from the array (so no path runs from the array's memories into the
        post-processing units).  It delays the controller's side of a column by one
        cycle and not the drain's reads, and a block's drain takes one cycle more.
    crossbar_stage : bool
        A register stage inside the activation crossbar, where each of the ``q`` pixels
        picks its word from the ``act_banks`` interleaved banks: a pixel first picks one
        word in each group of banks (the low half of the bank number's bits), registered,
        then one of those groups' words.  The wide selection then spans two clock periods
        and its first level can sit by its banks.  A step's operands reach the MACs a cycle
        later (the weights are read a cycle later to match), so a job's results come a
        cycle later; no step is added (the cycle model's
        :func:`~rcm_gen.gateware.controller.step_latency`).

    Raises
    ------
    TypeError, ValueError
        If a parameter has the wrong type or is out of range.
    """

    kind: ClassVar[str] = "tile"

    mac: MacConfig = field(default_factory=MacConfig)
    p: int = 4
    qr: int = 1
    qc: int = 1
    tm: int = 8
    tn: int = 8
    tr: int = 4
    tc: int = 4
    k_max: int = 7
    s_max: int = 2
    act_depth: int | None = None
    weight_depth: int | None = None
    max_reduction: int = 8192
    ppu_lanes: int = 1
    act_beat: int = 1

    #: Widths of the per-channel post-processing parameters (TFLite's int32 bias and
    #: fixed-point multiplier, and a shift from −31 to 31).
    BIAS_BITS: ClassVar[int] = 32
    MULTIPLIER_BITS: ClassVar[int] = 32
    SHIFT_BITS: ClassVar[int] = 6
    #: Bits of a channel's rounding (``gateware.modes.Rounding``).
    ROUNDING_BITS: ClassVar[int] = 2

    # -- memory technology of the buffers (see _check_memory) -------------------------------
    #: ``ff``, ``sram``, ``auto`` or the name of a macro of ``macros``, for every buffer.
    memory: str = "ff"
    #: Macro library: a shipped one (``sky130_sram``) or a ``library.toml`` path; ``None``:
    #: the one that goes with the synthesis liberty, if any (flip-flops otherwise).
    macros: str | None = None
    clock_gating: bool = True
    ppu_product: str = "auto"
    column_stage: bool = False
    crossbar_stage: bool = False
    _default_fields: ClassVar[tuple[str, ...]] = ("clock_gating", "ppu_product", "column_stage",
                                                  "crossbar_stage")
    #: The values of ``ppu_product``.
    PPU_PRODUCTS: ClassVar[tuple[str, ...]] = ("auto", "booth", "dsp")

    def __post_init__(self) -> None:
        if not isinstance(self.mac, MacConfig):
            raise TypeError(f"Tile mac must be a MacConfig, not {self.mac!r}")
        check_bool("Tile", "clock_gating", self.clock_gating)
        check_bool("Tile", "column_stage", self.column_stage)
        check_bool("Tile", "crossbar_stage", self.crossbar_stage)
        if self.ppu_product not in self.PPU_PRODUCTS:
            raise ValueError(f"Tile ppu_product must be one of "
                             f"{', '.join(self.PPU_PRODUCTS)}, not {self.ppu_product!r}")
        _range("p", self.p, 1, 64)
        _range("tm", self.tm, 1, 256)
        if self.tm % self.p:
            raise ValueError(f"Tile tm must be a multiple of p={self.p}, not {self.tm!r}")
        _range("tn", self.tn, 1, 256)
        for name in ("qr", "qc"):
            _check_int("Tile", name, getattr(self, name))
            if getattr(self, name) not in (1, 2, 4, 8, 16):
                raise ValueError(f"Tile {name} must be one of 1, 2, 4, 8, 16, not "
                                 f"{getattr(self, name)!r}")
        _range("tr", self.tr, 1, 64)
        _range("tc", self.tc, 1, 64)
        if self.tr % self.qr:
            raise ValueError(f"Tile tr must be a multiple of qr={self.qr}, not {self.tr!r}")
        if self.tc % self.qc:
            raise ValueError(f"Tile tc must be a multiple of qc={self.qc}, not {self.tc!r}")
        if self.p * self.q > 1024:
            raise ValueError(f"Tile MAC array p x q must be at most 1024 MACs, not "
                             f"{self.p}x{self.q}")
        _range("k_max", self.k_max, 1, 15)
        _range("s_max", self.s_max, 1, 4)
        by, bx = self.act_banks_yx
        act_floor = -(-self.k_max // by) * -(-self.k_max // bx)
        for name, floor in (("act_depth", act_floor), ("weight_depth", self.k_max ** 2)):
            value = getattr(self, name)
            if value is not None:
                _range(name, value, floor, 1 << 16)
        _range("max_reduction", self.max_reduction, 1, 1 << 20)
        _check_int("Tile", "ppu_lanes", self.ppu_lanes)
        divisors = [d for d in range(1, self.p + 1) if self.p % d == 0]
        if self.ppu_lanes not in divisors:
            raise ValueError(f"Tile ppu_lanes must be a divisor of p={self.p} "
                             f"({', '.join(map(str, divisors))}), not {self.ppu_lanes!r}")
        _check_int("Tile", "act_beat", self.act_beat)
        bx = self.act_banks_yx[1]
        beats = [1 << i for i in range(bx.bit_length())]
        if self.act_beat not in beats:
            raise ValueError(f"Tile act_beat must be one of {', '.join(map(str, beats))} "
                             f"(a power of two up to the {bx} column banks), not "
                             f"{self.act_beat!r}")
        mac = self.mac.replace(reduction=self.max_reduction, acc_width=None)
        mac = mac.replace(acc_width=self._acc_width_with_bias(mac),
                          clock_gating=self.clock_gating)
        if mac != self.mac:
            object.__setattr__(self, "mac", mac)
        self._check_memory()

    def _acc_width_with_bias(self, mac: MacConfig) -> int:
        lo = min(mac.product_range(n, s)[0] for n in mac.lanes for s in (True, False))
        hi = max(mac.product_range(n, s)[1] for n in mac.lanes for s in (True, False))
        b_lo, b_hi = value_range(self.BIAS_BITS, True)
        return signed_bits(lo * self.max_reduction + b_lo, hi * self.max_reduction + b_hi)

    # -- derived values ---------------------------------------------------------------------

    @property
    def m_blocks(self) -> int:
        """P-wide output-channel blocks per job."""
        return self.tm // self.p

    @property
    def in_rows_max(self) -> int:
        """Input rows a job can need: (tr − 1)·s_max + k_max."""
        return (self.tr - 1) * self.s_max + self.k_max

    @property
    def in_cols_max(self) -> int:
        return (self.tc - 1) * self.s_max + self.k_max

    @property
    def q(self) -> int:
        """Output pixels computed at once (columns of the MAC array)."""
        return self.qr * self.qc

    @property
    def macs(self) -> int:
        """MACs in the array."""
        return self.p * self.q

    @property
    def act_banks_yx(self) -> tuple[int, int]:
        """Interleaving of the activation buffer: banks by input row and by input column
        (a power of two at least ``s_max·qr`` and ``s_max·qc``, so that the patch's pixels
        read distinct banks at any stride; 1 where the patch is one pixel wide)."""
        def banks(n: int) -> int:
            return 1 if n == 1 else 1 << (self.s_max * n - 1).bit_length()
        return banks(self.qr), banks(self.qc)

    def distinct_banks(self, tr: int, tc: int, stride: int) -> bool:
        """Whether, in a job of ``tr`` × ``tc`` output pixels at ``stride``, every group of
        ``q`` pixels computed at once (consecutive in raster order) reads ``q`` distinct
        activation banks: the controller sends each bank one address a cycle, so the
        driver only plans jobs that pass this (a ``qr`` × ``qc`` patch always does)."""
        return _distinct_banks(self.q, *self.act_banks_yx, tr, tc, stride)

    @property
    def act_banks(self) -> int:
        by, bx = self.act_banks_yx
        return by * bx

    @property
    def act_buffer_depth(self) -> int:
        """Words per activation-buffer bank in each of the ``act_banks`` banks."""
        if self.act_depth is not None:
            return self.act_depth
        by, bx = self.act_banks_yx
        return max(self.tn * -(-(self.tr + 2) // by) * -(-(self.tc + 2) // bx),
                   -(-self.k_max // by) * -(-self.k_max // bx))

    @property
    def weight_buffer_depth(self) -> int:
        if self.weight_depth is not None:
            return self.weight_depth
        return max(self.m_blocks * self.tn * 9, self.k_max * self.k_max)

    @property
    def out_buffer_depth(self) -> int:
        """Rows of P accumulators per output-buffer bank, in each of the ``q`` memories
        (one per MAC column)."""
        return self.m_blocks * (self.tr // self.qr) * (self.tc // self.qc)

    @property
    def param_bits(self) -> int:
        """Bits of one output channel's post-processing parameters."""
        return self.BIAS_BITS + self.MULTIPLIER_BITS + self.SHIFT_BITS + self.ROUNDING_BITS

    @property
    def out_value_bits(self) -> int:
        """Width of a post-processed value before packing (and of the output zero point and
        clamp bounds): any W-bit value, signed or unsigned."""
        return self.mac.width + 1

    @property
    def act_word_bits(self) -> int:
        """Bits of an activation word (a buffer word, what a MAC takes in a cycle): W, or
        for a fusion MAC its wide activation port (W times its most weight lanes)."""
        return self.mac.act_word_bits

    @property
    def weight_word_bits(self) -> int:
        """Bits of one MAC's weight word: W, or a fusion MAC's wide weight port."""
        return self.mac.weight_word_bits

    @property
    def ppu_chunks(self) -> int:
        """Cycles the post-processing units take for one row of P sums."""
        return self.p // self.ppu_lanes

    @property
    def buffer_bits(self) -> dict[str, int]:
        """Storage of each buffer, both banks."""
        return {
            "act": 2 * self.act_banks * self.act_buffer_depth * self.act_word_bits,
            "weight": 2 * self.weight_buffer_depth * self.p * self.weight_word_bits,
            "param": 2 * self.m_blocks * self.p * self.param_bits,
            "out": 2 * self.q * self.out_buffer_depth * self.p * self.mac.accumulator_width,
        }

    @property
    def is_fixed(self) -> bool:
        return self.mac.is_fixed

    def fixed_twin(self) -> TileConfig:
        """The same tile with the fixed-multiplier baseline MAC (and the same
        post-processing product)."""
        twin = self.replace(mac=self.mac.fixed_twin())
        if twin.ppu_dsp_or_booth != self.ppu_dsp_or_booth:
            twin = twin.replace(ppu_product=self.ppu_dsp_or_booth)
        return twin

    @property
    def ppu_dsp_or_booth(self) -> str:
        """``ppu_product`` resolved: ``dsp`` or ``booth``."""
        if self.ppu_product == "auto":
            return "dsp" if self.mac.arch == "dsp" else "booth"
        return self.ppu_product

    # -- memory technology of the buffers ---------------------------------------------------

    def _check_memory(self) -> None:
        """``memory`` is ``ff``, ``latch``, ``sram``, ``auto`` or, with ``macros`` set, a macro of
        that library; ``macros`` is ``None``, a shipped library or a ``.toml`` path."""
        from ..flows.macros import MEMORY_KINDS, SHIPPED_LIBRARIES

        if not isinstance(self.memory, str):
            raise TypeError(f"Tile memory must be a string, not {self.memory!r}")
        if self.macros is not None:
            if not isinstance(self.macros, str):
                raise TypeError(f"Tile macros must be a string or None, not {self.macros!r}")
            if self.macros not in SHIPPED_LIBRARIES and not self.macros.endswith(".toml"):
                raise ValueError(f"Tile macros must be one of {', '.join(SHIPPED_LIBRARIES)} "
                                 f"or a macro library file (.toml), not {self.macros!r}")
        if self.memory in MEMORY_KINDS:
            return
        if self.macros is None:
            raise ValueError(f"Tile memory must be one of {', '.join(MEMORY_KINDS)}, or a "
                             f"macro name with macros set, not {self.memory!r}")
        from ..errors import UserError
        from ..flows.macros import load_macro_library

        try:
            names = load_macro_library(self.macros).macro_names
        except UserError as exc:
            raise ValueError(f"Tile macros: {exc}") from None
        if self.memory not in names:
            raise ValueError(f"Tile memory must be one of {', '.join(MEMORY_KINDS)} or a "
                             f"macro of {self.macros} ({', '.join(names)}), not "
                             f"{self.memory!r}")

    @classmethod
    def _convert_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "mac" in data:
            mac = data["mac"]
            if isinstance(mac, dict):
                data["mac"] = MacConfig.from_dict(mac)
        return data


@functools.lru_cache(maxsize=4096)
def _distinct_banks(q: int, by: int, bx: int, tr: int, tc: int, stride: int) -> bool:
    pixels = tr * tc
    for first in range(0, pixels, q):
        banks = {((stride * y) % by, (stride * x) % bx)
                 for y, x in (divmod(i, tc) for i in range(first, min(first + q, pixels)))}
        if len(banks) < min(q, pixels - first):
            return False
    return True


_MAC = MacConfig(width=16, lanes=(1, 2, 4), arch="booth", pipeline=1)
_SMALL = TileConfig(mac=_MAC, p=2, tm=4, tn=4, tr=4, tc=4, k_max=7, s_max=2)
_DEFAULT = TileConfig(mac=_MAC, p=4, tm=8, tn=8, tr=4, tc=4, k_max=7, s_max=2)
# The same tile with BitFusion-style MACs: 4-bit bricks, activation x weight modes of 16, 8
# and 4 bits each (up to 16 products per cycle at 4x4), 64-bit operand words.
_FUSION_MAC = MacConfig(width=16, lanes=(1, 2, 4), arch="fusion", brick=4, pipeline=1)
_DEFAULT_FUSION = _DEFAULT.replace(mac=_FUSION_MAC)
# Accelerator-scale arrays: P x Q MACs (P output channels x a qr x qc patch of pixels),
# one post-processing unit per output channel, buffers bound per buffer to flip-flops,
# latches or SRAM macros, whichever the library's estimates favour (memory="auto").
_ARRAY8 = TileConfig(mac=_MAC, p=8, qr=2, qc=4, tm=16, tn=8, tr=4, tc=8, k_max=7, s_max=2,
                     ppu_lanes=8, act_beat=8, memory="auto")
_ARRAY16 = TileConfig(mac=_MAC, p=16, qr=4, qc=4, tm=32, tn=16, tr=8, tc=8, k_max=7, s_max=2,
                      ppu_lanes=16, act_beat=8, memory="auto")

#: name → (description, factory)
TILE_PRESETS = {
    "rcm-small": ("RCM tile, P=2, 4x4 outputs x 4 channels, K<=7, ST Booth MAC",
                  lambda: _SMALL),
    "rcm-small-fixed": ("rcm-small with the fixed 16x16 MAC", lambda: _SMALL.fixed_twin()),
    "rcm-default": ("RCM tile, P=4, 4x4 outputs x 8 channels, K<=7, ST Booth MAC",
                    lambda: _DEFAULT),
    "rcm-default-fixed": ("rcm-default with the fixed 16x16 MAC",
                          lambda: _DEFAULT.fixed_twin()),
    "rcm-default-fusion": ("rcm-default with fusion MACs (4-bit bricks, modes 16/8/4 x "
                           "16/8/4 bits, 64-bit operand words)", lambda: _DEFAULT_FUSION),
    "rcm-8x8": ("RCM array, 8x8 MACs (8 channels x 2x4 pixels), 4x8 outputs x 8 channels, "
                "SRAM/auto buffers, ST Booth MAC", lambda: _ARRAY8),
    "rcm-8x8-fixed": ("rcm-8x8 with the fixed 16x16 MAC", lambda: _ARRAY8.fixed_twin()),
    "rcm-16x16": ("RCM array, 16x16 MACs (16 channels x 4x4 pixels), 8x8 outputs x 16 "
                  "channels, SRAM/auto buffers, ST Booth MAC", lambda: _ARRAY16),
    "rcm-16x16-fixed": ("rcm-16x16 with the fixed 16x16 MAC", lambda: _ARRAY16.fixed_twin()),
}
