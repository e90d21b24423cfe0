"""Tile buffers: a memory with one write port and one synchronous read port."""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Buffer"]


class Buffer(wiring.Component):
    """``depth`` words of ``width`` bits; one write port, one read port whose data appear
    the cycle after the address (and hold while ``rd_en`` is low).  A read of the address
    written in the same cycle returns the old word, or the new one if ``transparent``.

    Parameters
    ----------
    width, depth : int
        Word width and number of words.
    transparent : bool
        Reads see a write of the same cycle.

    Members
    -------
    wr_addr, wr_data, wr_en : In
        Write port.
    rd_addr, rd_en : In
        Read port address and enable.
    rd_data : Out(width)
        Read data.
    """

    def __init__(self, width: int, depth: int, *, transparent: bool = False) -> None:
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Buffer {name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"Buffer {name} must be at least 1, not {value!r}")
        self._width, self._depth = width, depth
        self._transparent = bool(transparent)
        super().__init__({
            "wr_addr": In(range(depth)),
            "wr_data": In(width),
            "wr_en": In(1),
            "rd_addr": In(range(depth)),
            "rd_en": In(1, init=1),
            "rd_data": Out(width),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(self._width), depth=self._depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,) if self._transparent else ())
        m.d.comb += [
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data),
        ]
        return m
