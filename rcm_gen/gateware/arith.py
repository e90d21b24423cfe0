"""Bit-level arithmetic helpers: a Dadda compressor tree for summing partial products."""

from __future__ import annotations

from collections import defaultdict

from amaranth.hdl import Cat, Const, Module, Signal, Value

__all__ = ["Columns", "reduce_columns"]


class Columns:
    """Bits to be summed, grouped by their binary weight, modulo ``2**width``."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.bits: dict[int, list[Value]] = defaultdict(list)

    def add_bit(self, position: int, bit: Value) -> None:
        if 0 <= position < self.width:
            self.bits[position].append(bit)

    def add_value(self, position: int, value: Value) -> None:
        """Add an unsigned value whose bit 0 has weight ``2**position``."""
        for i in range(len(value)):
            self.add_bit(position + i, value[i])

    def add_constant(self, constant: int) -> None:
        """Add an integer (negative constants wrap modulo ``2**width``)."""
        constant %= 1 << self.width
        for i in range(self.width):
            if (constant >> i) & 1:
                self.add_bit(i, Const(1, 1))

    @property
    def height(self) -> int:
        return max((len(v) for v in self.bits.values()), default=0)


def _dadda_targets(height: int) -> list[int]:
    targets = [2]
    while targets[-1] < height:
        targets.append(targets[-1] * 3 // 2)
    return [t for t in reversed(targets) if t < height]


def reduce_columns(m: Module, columns: Columns, name: str = "csa") -> Value:
    """Sum ``columns`` with a Dadda tree of full and half adders and one final adder.

    Returns the sum modulo ``2**columns.width`` as an unsigned value.
    """
    width = columns.width
    cols = {p: list(b) for p, b in columns.bits.items()}
    counter = 0

    def new_bit(expr: Value) -> Signal:
        nonlocal counter
        sig = Signal(name=f"{name}_{counter}")
        counter += 1
        m.d.comb += sig.eq(expr)
        return sig

    def stage(cols: dict[int, list[Value]], target: int) -> dict[int, list[Value]]:
        out: dict[int, list[Value]] = defaultdict(list)
        for pos in range(width):
            bits = list(cols.get(pos, []))
            height = len(bits) + len(out[pos])
            while height > target and len(bits) >= 2:
                if height - target >= 2 and len(bits) >= 3:
                    a, b, c = bits.pop(0), bits.pop(0), bits.pop(0)
                    out[pos].append(new_bit(a ^ b ^ c))
                    if pos + 1 < width:
                        out[pos + 1].append(new_bit((a & b) | (a & c) | (b & c)))
                    height -= 2
                else:
                    a, b = bits.pop(0), bits.pop(0)
                    out[pos].append(new_bit(a ^ b))
                    if pos + 1 < width:
                        out[pos + 1].append(new_bit(a & b))
                    height -= 1
            out[pos].extend(bits)
        return out

    for target in _dadda_targets(columns.height):
        cols = stage(cols, target)
    while max((len(b) for b in cols.values()), default=0) > 2:
        cols = stage(cols, 2)

    rows = [[Const(0, 1)] * width, [Const(0, 1)] * width]
    for pos in range(width):
        for r, bit in enumerate(cols.get(pos, [])):
            rows[r][pos] = bit
    return (Cat(*rows[0]) + Cat(*rows[1]))[:width]
