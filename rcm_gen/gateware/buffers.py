"""Tile buffers: a memory with one write port and one synchronous read port, built from
flip-flops, latches or SRAM macros (:mod:`rcm_gen.gateware.memory`)."""

from __future__ import annotations

from amaranth.hdl import Const, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .memory import MemoryBinding, binding_of, build_ff, build_latch, build_sram

__all__ = ["Buffer"]


class Buffer(wiring.Component):
    """``depth`` words of ``width`` bits; one write port, one read port whose data appear
    the cycle after the address and hold while ``rd_en`` is low.

    A write takes effect at the end of its cycle: a read in a later cycle returns it.  A
    read of the address written in the same cycle returns the old word, or with
    ``transparent`` the new one.  The contract is the same whatever the memory is built
    from: flip-flops, latches, or SRAM macros with the registers and forwarding they need.

    Parameters
    ----------
    width, depth : int
        Word width and number of words.
    transparent : bool
        Whether a read of the address being written returns the new word.
    read_enable : bool
        Whether the read port has ``rd_en``; without it, it reads every cycle.
    binding : MemoryBinding, optional
        What the memory is built from; by default the binding of the platform the design
        is elaborated with (:class:`rcm_gen.gateware.memory.MemoryPlatform`), else
        flip-flops.

    Members
    -------
    wr_addr, wr_data, wr_en : In
        Write port.
    rd_addr, rd_en : In
        Read port address and enable (``rd_en`` only with ``read_enable``).
    rd_data : Out(width)
        Read data.

    Raises
    ------
    TypeError
        A parameter of the wrong type.
    ValueError
        A width or depth below 1.
    """

    def __init__(self, width: int, depth: int, *, transparent: bool = False,
                 read_enable: bool = True, binding: MemoryBinding | None = None) -> None:
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Buffer {name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"Buffer {name} must be at least 1, not {value!r}")
        for name, flag in (("transparent", transparent), ("read_enable", read_enable)):
            if not isinstance(flag, bool):
                raise TypeError(f"Buffer {name} must be a bool, not {flag!r}")
        if binding is not None and not isinstance(binding, MemoryBinding):
            raise TypeError(f"Buffer binding must be a MemoryBinding, not {binding!r}")
        self._width, self._depth = width, depth
        self._transparent = transparent
        self._read_enable = read_enable
        self._binding = binding
        super().__init__({
            "wr_addr": In(range(depth)),
            "wr_data": In(width),
            "wr_en": In(1),
            "rd_addr": In(range(depth)),
            **({"rd_en": In(1, init=1)} if read_enable else {}),
            "rd_data": Out(width),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def transparent(self) -> bool:
        return self._transparent

    @property
    def binding(self) -> MemoryBinding | None:
        return self._binding

    #: what its module is called in the Verilog (see :mod:`rcm_gen.hierarchy`)
    share_name = "buffer"

    def share_key(self):
        """What makes two buffers the same module (see :mod:`rcm_gen.hierarchy`)."""
        return (type(self), self._width, self._depth, self._transparent, self._read_enable,
                None if self._binding is None else id(self._binding))

    def plan(self, platform=None):
        """The :class:`~rcm_gen.gateware.memory.MemoryPlan` this buffer is built by."""
        binding = self._binding if self._binding is not None else binding_of(platform)
        return binding.plan(self._width, self._depth)

    def elaborate(self, platform) -> Module:
        m = Module()
        plan = self.plan(platform)
        recorder = getattr(platform, "record_buffer", None)
        if recorder is not None:
            recorder(self, plan)
        rd_en = self.rd_en if self._read_enable else Const(1)
        binding = self._binding if self._binding is not None else binding_of(platform)
        if plan.macro is not None:
            build_sram(m, plan, self._transparent, {
                "wr_addr": self.wr_addr, "wr_data": self.wr_data, "wr_en": self.wr_en,
                "rd_addr": self.rd_addr, "rd_en": rd_en, "rd_data": self.rd_data},
                binding.gate)
            return m
        if plan.latch:
            m.d.comb += self.rd_data.eq(build_latch(
                m, "mem", self._width, self._depth, self._transparent, self.wr_addr,
                self.wr_data, self.wr_en, self.rd_addr, rd_en, binding.gate))
            return m
        m.d.comb += self.rd_data.eq(build_ff(
            m, "mem", self._width, self._depth, self._transparent, self.wr_addr,
            self.wr_data, self.wr_en, self.rd_addr, rd_en, plan.ram_style))
        return m
