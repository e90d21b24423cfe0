"""Tile buffers: a memory with one write port and one synchronous read port."""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Buffer"]


class Buffer(wiring.Component):
    """``depth`` words of ``width`` bits; one write port, one read port whose data appear
    the cycle after the address (and hold while ``rd_en`` is low).  Reads and writes of
    the same address in one cycle return the old word.

    Parameters
    ----------
    width, depth : int
        Word width and number of words.

    Members
    -------
    wr_addr, wr_data, wr_en : In
        Write port.
    rd_addr, rd_en : In
        Read port address and enable.
    rd_data : Out(width)
        Read data.
    """

    def __init__(self, width: int, depth: int) -> None:
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Buffer {name} must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"Buffer {name} must be at least 1, not {value!r}")
        self._width, self._depth = width, depth
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
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [
            wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
            rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data),
        ]
        return m
