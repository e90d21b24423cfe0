"""Bit-level arithmetic helpers: a Dadda compressor tree for summing partial products, and
the pieces of a pipelined carry-select adder."""

from __future__ import annotations

from collections import defaultdict

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

__all__ = ["Columns", "Compressor", "carry_select", "carry_select_sums", "reduce_columns",
           "register_columns", "rows", "sign_extend"]


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


class Compressor:
    """Dadda reduction of :class:`Columns` in ``m``: full and half adders, each output a
    signal named ``{name}_{n}`` (``n`` counting up across every call)."""

    def __init__(self, m: Module, name: str) -> None:
        self._m, self._name, self._count = m, name, 0

    def _bit(self, expr: Value) -> Signal:
        sig = Signal(name=f"{self._name}_{self._count}")
        self._count += 1
        self._m.d.comb += sig.eq(expr)
        return sig

    def _stage(self, cols: dict[int, list[Value]], width: int, target: int
               ) -> dict[int, list[Value]]:
        out: dict[int, list[Value]] = defaultdict(list)
        for pos in range(width):
            bits = list(cols.get(pos, []))
            height = len(bits) + len(out[pos])
            while height > target and len(bits) >= 2:
                if height - target >= 2 and len(bits) >= 3:
                    a, b, c = bits.pop(0), bits.pop(0), bits.pop(0)
                    out[pos].append(self._bit(a ^ b ^ c))
                    if pos + 1 < width:
                        out[pos + 1].append(self._bit((a & b) | (a & c) | (b & c)))
                    height -= 2
                else:
                    a, b = bits.pop(0), bits.pop(0)
                    out[pos].append(self._bit(a ^ b))
                    if pos + 1 < width:
                        out[pos + 1].append(self._bit(a & b))
                    height -= 1
            out[pos].extend(bits)
        return out

    def compress(self, columns: Columns, height: int = 2) -> Columns:
        """``columns`` reduced to at most ``height`` (>= 2) bits in every column."""
        cols = {p: list(b) for p, b in columns.bits.items()}
        for target in _dadda_targets(columns.height):
            if target < height:
                break
            cols = self._stage(cols, columns.width, target)
        while max((len(b) for b in cols.values()), default=0) > height:
            cols = self._stage(cols, columns.width, height)
        out = Columns(columns.width)
        for pos, bits in cols.items():
            out.bits[pos].extend(bits)
        return out


def rows(columns: Columns) -> tuple[Value, Value]:
    """The two rows of columns at most two bits high (unsigned, ``columns.width`` bits)."""
    assert columns.height <= 2
    out = [[Const(0, 1)] * columns.width, [Const(0, 1)] * columns.width]
    for pos in range(columns.width):
        for r, bit in enumerate(columns.bits.get(pos, [])):
            out[r][pos] = bit
    return Cat(*out[0]), Cat(*out[1])


def register_columns(m: Module, columns: Columns, load: Value, name: str) -> Columns:
    """Every bit of ``columns`` through a flip-flop loaded when ``load``."""
    out = Columns(columns.width)
    for pos in sorted(columns.bits):
        for i, bit in enumerate(columns.bits[pos]):
            reg = Signal(name=f"{name}_{pos}_{i}")
            with m.If(load):
                m.d.sync += reg.eq(bit)
            out.bits[pos].append(reg)
    return out


def reduce_columns(m: Module, columns: Columns, name: str = "csa") -> Value:
    """Sum ``columns`` with a Dadda tree of full and half adders and one final adder.

    Returns the sum modulo ``2**columns.width`` as an unsigned value.
    """
    a, b = rows(Compressor(m, name).compress(columns))
    return (a + b)[:columns.width]


def carry_select_sums(m: Module, a: Value, b: Value, load: Value, chunk: int, name: str
                      ) -> tuple[list[Signal], list[Signal], list[Signal], list[Signal]]:
    """First half of a pipelined ``a + b`` (equal widths, unsigned): each ``chunk``-bit
    slice summed with a carry-in of 0 and of 1, registered when ``load``.  Returns the
    slices' sums and carries out for both carry-ins; :func:`carry_select` finishes."""
    width = len(a)
    s0, s1, c0, c1 = [], [], [], []
    for k, lo in enumerate(range(0, width, chunk)):
        n = min(chunk, width - lo)
        x, y = a[lo:lo + n], b[lo:lo + n]
        regs = (Signal(n, name=f"{name}{k}_sum0"), Signal(n, name=f"{name}{k}_sum1"),
                Signal(name=f"{name}{k}_carry0"), Signal(name=f"{name}{k}_carry1"))
        with m.If(load):
            # x + y + 1 as one adder: (2x + 1) + (2y + 1) = 2(x + y + 1)
            plus1 = (Cat(Const(1, 1), x) + Cat(Const(1, 1), y))[1:]
            m.d.sync += [Cat(regs[0], regs[2]).eq(x + y), Cat(regs[1], regs[3]).eq(plus1)]
        for lst, reg in zip((s0, s1, c0, c1), regs, strict=True):
            lst.append(reg)
    return s0, s1, c0, c1


def carry_select(sums: tuple[list[Signal], list[Signal], list[Signal], list[Signal]]
                 ) -> Value:
    """The sum from :func:`carry_select_sums`: each slice's carry-in from the carries
    out below it (a chain of and-or gates), its sum chosen by it."""
    s0, s1, c0, c1 = sums
    carry: Value = Const(0, 1)
    out = []
    for k in range(len(s0)):
        out.append(Mux(carry, s1[k], s0[k]))
        carry = c0[k] | (c1[k] & carry)
    return Cat(*out)


def sign_extend(value: Value, width: int) -> Value:
    """``value`` (two's complement) sign-extended to ``width`` bits."""
    assert len(value) <= width
    return Cat(value, value[-1].replicate(width - len(value)))
