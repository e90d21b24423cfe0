"""Sum-Together (ST) precision-scalable multipliers and the fixed baseline multiplier.

In N-lane mode the W-bit operands ``a`` and ``w`` each hold N lanes of W/N bits, lane 0 in
the least significant bits, and the multiplier returns ``sum(a_i * w_i)``.  Weights are
signed; activations are signed or unsigned by the run-time ``act_signed`` flag.

Both ST architectures use the same trick: the weight's lanes are reversed (lane i moves to
lane N-1-i), so that the wanted products a_i·w_i all land at the same weight 2**((N-1)·W/N)
of one W×W product while the unwanted cross-lane products are suppressed; the dot product is
then read from a mode-selected slice of that sum.

The fusion multiplier (Bit Fusion style, Sum-Together) takes wider operand words and a mode
that pairs an activation width with a weight width: see :class:`FusionMultiplier`.

The DSP multiplier composes the product from two narrow signed multipliers, the kind an
FPGA's DSP blocks implement, so that the narrow modes use the same multipliers for more
products: see :class:`DSPMultiplier`.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Mux, ResetSignal, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import MacConfig, MacMode
from .arith import Columns, reduce_columns, sign_extend
from .modes import LaneMode, Mode
from .primitives import ecp5_mult

__all__ = [
    "BoothMultiplier",
    "DSPCombine",
    "DSPMacMultiplier",
    "DSPMultiplier",
    "DSPProducts",
    "FixedMultiplier",
    "FusionMultiplier",
    "Multiplier",
    "PPAMultiplier",
    "make_multiplier",
]


class Multiplier(wiring.Component):
    """Common port signature of every multiplier (combinational).

    Parameters
    ----------
    config : MacConfig
        The MAC design point the multiplier belongs to.

    Members
    -------
    a : In(config.act_word_bits)
        Packed activations (W bits, except for fusion).
    w : In(config.weight_word_bits)
        Packed weights (signed; W bits, except for fusion).
    mode : In(LaneMode), or In(Mode) for fusion
        Lane count, or the (activation, weight) lane counts of a fusion mode.
    act_signed : In(1)
        Activations are signed when 1, unsigned when 0.
    product : Out(signed(config.product_width))
        Dot product of the lanes.
    """

    def __init__(self, config: MacConfig) -> None:
        if not isinstance(config, MacConfig):
            raise TypeError(f"Multiplier config must be a MacConfig, not {config!r}")
        self._config = config
        super().__init__({
            "a": In(config.act_word_bits),
            "w": In(config.weight_word_bits),
            "mode": In(Mode if config.is_fused else LaneMode),
            "act_signed": In(1),
            "product": Out(signed(config.product_width)),
        })

    @property
    def config(self) -> MacConfig:
        return self._config

    # -- helpers shared by the ST architectures ------------------------------------------

    def _mode_selects(self, m: Module) -> dict[int, Value]:
        """One select signal per configured lane count; unconfigured encodings select the
        smallest configured lane count."""
        return _lane_selects(m, self.mode, self._config.lanes, "mode_x")

    def _select(self, m: Module, sels: dict[int, Value], values: dict[int, Value],
                width: int, name: str) -> Signal:
        """AND-OR multiplexer: ``values[n]`` where ``sels[n]`` is set (one-hot)."""
        out = Signal(width, name=name)
        terms = [Mux(sels[n], values[n], 0) for n in sels]
        expr = terms[0]
        for t in terms[1:]:
            expr = expr | t
        m.d.comb += out.eq(expr)
        return out

    def _reversed_weights(self, m: Module, sels: dict[int, Value]) -> Signal:
        width = self._config.width
        values = {}
        for n in sels:
            lw = width // n
            values[n] = Cat(*(self.w[(n - 1 - p) * lw:(n - p) * lw] for p in range(n)))
        return self._select(m, sels, values, width, "w_rev")

    def _output(self, m: Module, sels: dict[int, Value], total: Value) -> None:
        """Drive ``product`` from the mode's slice of the aligned sum ``total``."""
        cfg = self._config
        values = {}
        for n in sels:
            shift = (n - 1) * (cfg.width // n)
            pw = cfg.product_width_for(n)
            assert shift + pw <= len(total)
            values[n] = total[shift:shift + pw].as_signed()
        with m.Switch(Cat(*(sels[n] for n in sels))):
            for i, n in enumerate(sels):
                with m.Case(1 << i):
                    m.d.comb += self.product.eq(values[n])
            with m.Default():  # unreachable: the selects are one-hot
                m.d.comb += self.product.eq(0)


def _lane_selects(m: Module, field: Value, lanes: tuple[int, ...], prefix: str
                  ) -> dict[int, Value]:
    """One-hot selects of the lane counts ``lanes`` (ascending) from the :class:`LaneMode`
    ``field``; an encoding outside them selects the smallest."""
    sels: dict[int, Value] = {}
    for n in lanes[1:]:
        sel = Signal(name=f"{prefix}{n}")
        m.d.comb += sel.eq(field == LaneMode.for_lanes(n))
        sels[n] = sel
    smallest = Signal(name=f"{prefix}{lanes[0]}")
    m.d.comb += smallest.eq(~Cat(*sels.values()).any() if sels else 1)
    sels[lanes[0]] = smallest
    return dict(sorted(sels.items()))


def _any(bits: list[Value]) -> Value:
    return Cat(*bits).any() if bits else C(0, 1)


class FixedMultiplier(Multiplier):
    """The non-configurable baseline: a plain (W+1)×W signed multiplier (the extra
    activation bit carries ``act_signed``); ``mode`` is ignored."""

    def elaborate(self, platform) -> Module:
        m = Module()
        width = self.config.width
        a_ext = Cat(self.a, self.a[width - 1] & self.act_signed).as_signed()
        m.d.comb += self.product.eq(a_ext * self.w.as_signed())
        return m


class BoothMultiplier(Multiplier):
    """Radix-4 Booth ST multiplier with lane-aware recoding.

    The (lane-reversed) weight is Booth-recoded; a digit's window never reaches across a
    lane boundary of the current mode.  Each digit multiplies only the activation lane that
    pairs with its weight lane (the rest of the multiplicand is masked, its sign taken from
    that lane), so every row is one W+2-bit signed partial product at a fixed position.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        width = cfg.width
        total_width = 2 * width + 2
        sels = self._mode_selects(m)
        w_rev = self._reversed_weights(m, sels)
        a = self.a
        columns = Columns(total_width)
        constant = 0
        for j in range(width // 2):
            pos = 2 * j
            # Booth window (y2, y1, y0); y0 is forced to 0 at a lane boundary.
            boundary = [sels[n] for n in sels if pos % (width // n) == 0]
            y0 = C(0, 1) if pos == 0 else w_rev[pos - 1] & ~Cat(*boundary).any()
            y1, y2 = w_rev[pos], w_rev[pos + 1]
            neg = Signal(name=f"b{j}_neg")
            one = Signal(name=f"b{j}_one")
            two = Signal(name=f"b{j}_two")
            m.d.comb += [
                neg.eq(y2),
                one.eq(y1 ^ y0),
                two.eq((y2 & ~y1 & ~y0) | (~y2 & y1 & y0)),
            ]
            # Multiplicand: the activation lane paired with this digit, in place, masked.
            multiplicands = {}
            for n in sels:
                lw = width // n
                k = n - 1 - pos // lw
                lo, hi = k * lw, (k + 1) * lw
                sign = a[hi - 1] & self.act_signed
                multiplicands[n] = Cat(C(0, lo), a[lo:hi], sign.replicate(width + 1 - hi))
            mcand = self._select(m, sels, multiplicands, width + 1, f"b{j}_m")
            mc_ext = Cat(mcand, mcand[width])  # W+2 bits, sign-extended
            mc_dbl = Cat(C(0, 1), mcand)       # 2·M in W+2 bits
            row = Signal(width + 2, name=f"b{j}_row")
            m.d.comb += row.eq((Mux(one, mc_ext, 0) | Mux(two, mc_dbl, 0))
                               ^ neg.replicate(width + 2))
            # Signed row: keep bits, invert the sign bit, compensate with a constant.
            columns.add_value(pos, row[:width + 1])
            columns.add_bit(pos + width + 1, ~row[width + 1])
            constant -= 1 << (pos + width + 1)
            columns.add_bit(pos, neg)
        columns.add_constant(constant)
        total = reduce_columns(m, columns, "booth_csa")
        self._output(m, sels, total)
        return m


class PPAMultiplier(Multiplier):
    """Partial-product-array ST multiplier (Baugh-Wooley, sub-word parallel).

    One AND per bit pair of the activation and the lane-reversed weight; blocks that pair
    different lanes are gated off in low-precision modes, and the sign handling of each
    lane's most significant row and column follows the mode and ``act_signed``.  The
    partial products are summed by a Dadda tree.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        width = cfg.width
        total_width = 2 * width + 2
        sels = self._mode_selects(m)
        w_rev = self._reversed_weights(m, sels)
        a = self.a
        columns = Columns(total_width)
        # Per (mode, act_signed): the constant compensating the inverted negative terms.
        constants: dict[tuple[int, int], int] = {}
        for n in sels:
            for s in (0, 1):
                constants[(n, s)] = 0
        for i in range(width):
            for j in range(width):
                gate_modes = []
                neg_w_modes = []   # the term is negative because j is a weight lane's MSB
                neg_a_modes = []   # ... or because i is a (signed) activation lane's MSB
                for n in sels:
                    lw = width // n
                    if i // lw != n - 1 - j // lw:
                        continue
                    gate_modes.append(n)
                    a_msb = i % lw == lw - 1
                    w_msb = j % lw == lw - 1
                    for s in (0, 1):
                        if (a_msb and s) != w_msb:
                            constants[(n, s)] -= 1 << (i + j)
                    if w_msb:
                        neg_w_modes.append(n)
                    if a_msb:
                        neg_a_modes.append(n)
                if not gate_modes:
                    continue
                gate = Cat(*(sels[n] for n in gate_modes)).any()
                neg_w = Cat(*(sels[n] for n in neg_w_modes)).any() if neg_w_modes else C(0, 1)
                neg_a = (Cat(*(sels[n] for n in neg_a_modes)).any() & self.act_signed
                         if neg_a_modes else C(0, 1))
                bit = Signal(name=f"pp_{i}_{j}")
                m.d.comb += bit.eq(gate & ((a[i] & w_rev[j]) ^ neg_w ^ neg_a))
                columns.add_bit(i + j, bit)
        const_sig = Signal(total_width, name="pp_const")
        with m.Switch(Cat(self.act_signed, *(sels[n] for n in sels))):
            for idx, n in enumerate(sels):
                for s in (0, 1):
                    with m.Case((1 << (idx + 1)) | s):
                        m.d.comb += const_sig.eq(constants[(n, s)] % (1 << total_width))
            with m.Default():  # unreachable: the selects are one-hot
                m.d.comb += const_sig.eq(0)
        columns.add_value(0, const_sig)
        total = reduce_columns(m, columns, "ppa_csa")
        self._output(m, sels, total)
        return m


class FusionMultiplier(Multiplier):
    """Bit-level fusion (Bit Fusion style) Sum-Together multiplier.

    A W×W array of b×b bit-bricks (b = ``config.brick_bits``), R = W/b bricks on a side.
    In mode ``A``x``B`` (``config.mac_modes``) the array computes a dot product of
    (W/A)·(W/B) terms: the activation word is W/B blocks of W bits, each holding W/A
    activations of A bits, the weight word W/A blocks of W bits, each holding W/B weights of
    B bits, and activation lane h of block g meets weight lane g of block h (see
    :meth:`rcm_gen.config.MacMode.weight_order` for the order of terms).

    Brick (r, c) takes b bits of activation at ``(c // (B/b))·W + r·b`` and b bits of weight
    at ``(r // (A/b))·W + c·b``; it is slice ``r mod (A/b)`` of its activation and slice
    ``c mod (B/b)`` of its weight, so its partial products weigh ``2**(b·(r mod (A/b) +
    c mod (B/b)))``.  All products of a dot product have the same weights, so the bricks'
    partial-product bits go straight into one Dadda tree at the position of the current
    mode (a bit with several positions over the modes enters once per position, gated by
    the modes that put it there).  Signed slices (the top slice of a signed activation,
    the top slice of every weight) are handled the Baugh-Wooley way: a negative term is
    inverted and a mode- and sign-dependent constant compensates.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        width, b = cfg.width, cfg.brick_bits
        rows = width // b
        modes = cfg.mac_modes
        sel_a = _lane_selects(m, self.mode.act, cfg.act_lane_counts, "mode_act_x")
        sel_w = _lane_selects(m, self.mode.weight, cfg.weight_lane_counts, "mode_wgt_x")
        pair = {}
        for md in modes:
            sel = Signal(name=f"mode_{md.name}")
            m.d.comb += sel.eq(sel_a[md.act_lanes] & sel_w[md.weight_lanes])
            pair[md] = sel
        gates: dict[tuple[str, frozenset], Value] = {}

        def gate(sels: dict, keys: frozenset, name: str) -> Value | None:
            """OR of the selects ``keys`` (None: all of them, always on), shared by every
            use of the same ``name`` (one name per dict of selects)."""
            if keys == frozenset(sels):
                return None
            if (name, keys) not in gates:
                sig = Signal(name=f"{name}_{len(gates)}")
                m.d.comb += sig.eq(_any([sels[k] for k in sorted(keys, key=str)]))
                gates[name, keys] = sig
            return gates[name, keys]

        def routed(word: Value, sources: dict[int, list[int]], sels: dict[int, Value],
                   kind: str, offset: int, name: str) -> Value:
            """b bits of ``word`` at ``block·W + offset`` for the block each lane count
            selects (``sources``: block -> lane counts that read it)."""
            if len(sources) == 1:
                (block,) = sources
                return word[block * width + offset:block * width + offset + b]
            out = Signal(b, name=name)
            terms = []
            for block, counts in sorted(sources.items()):
                g = gate(sels, frozenset(counts), kind)
                terms.append(Mux(g, word[block * width + offset:block * width + offset + b], 0))
            expr = terms[0]
            for t in terms[1:]:
                expr = expr | t
            m.d.comb += out.eq(expr)
            return out

        # Per row: which weight block each activation lane count reads, and whether the row
        # is the top slice of an activation; per column, the same for the weight side.
        act_k = {n: rows // n for n in cfg.act_lane_counts}     # bricks per activation
        wgt_k = {n: rows // n for n in cfg.weight_lane_counts}  # bricks per weight
        top_a, top_w = [], []
        for r in range(rows):
            t = Signal(name=f"top_a{r}")
            m.d.comb += t.eq(self.act_signed
                             & _any([sel_a[n] for n, k in act_k.items() if r % k == k - 1]))
            top_a.append(t)
        for c in range(rows):
            top = [n for n, k in wgt_k.items() if c % k == k - 1]
            g = gate(sel_w, frozenset(top), "top_w") if top else C(0, 1)
            top_w.append(C(1, 1) if g is None else g)

        columns = Columns(cfg.product_width)
        # constant compensating the inverted negative terms, per (mode, act_signed)
        constants = {(md, s): 0 for md in modes for s in (0, 1)}
        for r in range(rows):
            for c in range(rows):
                a_src: dict[int, list[int]] = {}
                for n, k in wgt_k.items():
                    a_src.setdefault(c // k, []).append(n)
                w_src: dict[int, list[int]] = {}
                for n, k in act_k.items():
                    w_src.setdefault(r // k, []).append(n)
                a = routed(self.a, a_src, sel_w, "src_a", r * b, f"br{r}_{c}_a")
                w = routed(self.w, w_src, sel_a, "src_w", c * b, f"br{r}_{c}_w")
                # the brick's weight exponent (in bricks) in each mode
                shift: dict[int, list[MacMode]] = {}
                for md in modes:
                    ka, kw = act_k[md.act_lanes], wgt_k[md.weight_lanes]
                    shift.setdefault(r % ka + c % kw, []).append(md)
                for u in range(b):
                    for v in range(b):
                        neg = C(0, 1)
                        if u == b - 1:
                            neg = neg ^ top_a[r]
                        if v == b - 1:
                            neg = neg ^ top_w[c]
                        bit = Signal(name=f"br{r}_{c}_pp{u}{v}")
                        m.d.comb += bit.eq((a[u] & w[v]) ^ neg)
                        for s, mds in shift.items():
                            pos = b * s + u + v
                            g = gate(pair, frozenset(mds), "pos")
                            columns.add_bit(pos, bit if g is None else bit & g)
                            for md in mds:
                                ka = act_k[md.act_lanes]
                                kw = wgt_k[md.weight_lanes]
                                neg_w = v == b - 1 and c % kw == kw - 1
                                for sg in (0, 1):
                                    neg_a = u == b - 1 and r % ka == ka - 1 and sg == 1
                                    if neg_a != neg_w:
                                        constants[md, sg] -= 1 << pos
        pw = cfg.product_width
        const_sig = Signal(pw, name="bw_const")
        expr = C(0, pw)
        for (md, sg), value in constants.items():
            value %= 1 << pw
            if value:
                on = pair[md] & (self.act_signed if sg else ~self.act_signed)
                expr = expr | Mux(on, C(value, pw), 0)
        m.d.comb += const_sig.eq(expr)
        columns.add_value(0, const_sig)
        total = reduce_columns(m, columns, "fusion_csa")
        m.d.comb += self.product.eq(total.as_signed())
        return m


def _dsp_operand_widths(cfg: MacConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    """(activation, weight) operand widths of the ``dsp`` architecture's multipliers 0
    and 1: the widest over the configured modes."""
    width, half = cfg.width, cfg.width // 2
    a0, b0, a1, b1 = 1, 1, 1, 1
    for n in cfg.lanes:
        if n == 1:  # multiplier 0 alone
            a0, b0 = max(a0, width + 1), max(b0, width)
        elif n == 2:
            a0, b0 = max(a0, half + 1), max(b0, half)
            a1, b1 = max(a1, half + 1), max(b1, half)
        else:
            f = cfg.dsp_spacing + width // 4 + 1
            a0, b0, a1, b1 = max(a0, f), max(b0, f), max(a1, f), max(b1, f)
    return (a0, b0), (a1, b1)


def _dsp_product_shapes(cfg: MacConfig):
    (a0, b0), (a1, b1) = _dsp_operand_widths(cfg)
    return signed(a0 + b0), signed(a1 + b1)


class DSPProducts(wiring.Component):
    """The two narrow signed multipliers of the ``dsp`` architecture and their operand
    multiplexers; :class:`DSPCombine` makes the dot product of their products.

    With b = W/4 and k = ``config.dsp_spacing`` in 4-lane mode:

    - 1 lane: ``p0`` = a·w (a (W+1)xW product: one 18x18 multiplier at W=16); ``p1`` is
      not a term (``p1_valid`` low: the consumer zeroes it, a MAC by its register's
      synchronous reset), its operands those of another mode;
    - 2 lanes: ``p0`` = a_0·w_0, ``p1`` = a_1·w_1;
    - 4 lanes: multiplier d takes the operands (a_2d + a_2d+1·2**k) and
      (w_2d+1 + w_2d·2**k) (the weights reversed, as in the Sum-Together trick): the field
      at 2**k of their product is the dot product a_2d·w_2d + a_2d+1·w_2d+1, the one below
      it a_2d·w_2d+1.  The packed operands are sums, not concatenations: the upper field
      takes the borrow of the sign of the lower one.

    Parameters
    ----------
    config : MacConfig
    registered : bool
        Register the multipliers' operands (and the flags): one pipeline stage between
        the ports and the multipliers, which then start from flip-flops.
    output_register : bool
        ``config.dsp_block`` ``ecp5`` only: ``p0`` and ``p1`` come from the multipliers'
        output registers, cleared when not terms (``en`` low; ``p1`` is 0 in 1-lane
        mode, its activation operand 0), as a MAC's product registers are.  With
        ``dsp_block`` ``ecp5`` the operands' registers (``registered``) are the
        multipliers' input registers.

    Members
    -------
    a, w : In(config.width)
        Packed activations and weights.
    mode : In(LaneMode)
        An encoding outside the configured lane counts gives unspecified products (a
        tile never sends one).
    act_signed : In(1)
    en : In(1)
        With ``output_register`` only: the registered products are terms.
    p0, p1 : Out(signed)
        The products.
    packed : Out(1)
        4-lane mode (read the product's packed field).
    p1_valid : Out(1)
        ``p1`` is a term of the dot product (not in 1-lane mode).
    """

    def __init__(self, config: MacConfig, *, registered: bool = False,
                 output_register: bool = False) -> None:
        if not isinstance(config, MacConfig) or config.arch != "dsp":
            raise TypeError(f"DSPProducts config must be a dsp MacConfig, not {config!r}")
        if output_register and config.dsp_block != "ecp5":
            raise ValueError("DSPProducts output_register needs dsp_block ecp5")
        self._config = config
        self._registered = bool(registered)
        self._output_register = bool(output_register)
        self._widths = _dsp_operand_widths(config)
        p0, p1 = _dsp_product_shapes(config)
        super().__init__({
            "a": In(config.width),
            "w": In(config.width),
            "mode": In(LaneMode),
            "act_signed": In(1),
            **({"en": In(1)} if output_register else {}),
            "p0": Out(p0),
            "p1": Out(p1),
            "packed": Out(1),
            "p1_valid": Out(1),
        })

    @property
    def config(self) -> MacConfig:
        return self._config

    def _operands(self, n: int, d: int) -> tuple[Value, Value]:
        """Activation and weight operand of multiplier ``d`` in ``n``-lane mode (two's
        complement values of their own widths)."""
        cfg = self._config
        width, half = cfg.width, cfg.width // 2
        a, w, s = self.a, self.w, self.act_signed
        if n == 1:
            if d == 0:
                return Cat(a, a[width - 1] & s), w
            return None, None  # multiplier 1 idle (``p1_valid`` low): operands of any mode
        if n == 2:
            lo, hi = d * half, (d + 1) * half
            return Cat(a[lo:hi], a[hi - 1] & s), w[lo:hi]
        b, k = width // 4, cfg.dsp_spacing
        a_lo, a_hi = a[2 * d * b:(2 * d + 1) * b], a[(2 * d + 1) * b:(2 * d + 2) * b]
        w_hi, w_lo = w[2 * d * b:(2 * d + 1) * b], w[(2 * d + 1) * b:(2 * d + 2) * b]
        sa = a_lo[b - 1] & s
        sw = w_lo[b - 1]
        # the upper field less the borrow of the lower one's sign (b + 1 bits hold it)
        act = Cat(a_lo, sa.replicate(k - b),
                  (Cat(a_hi, a_hi[b - 1] & s).as_signed() - sa)[:b + 1])
        wgt = Cat(w_lo, sw.replicate(k - b), (Cat(w_hi, w_hi[b - 1]).as_signed() - sw)[:b + 1])
        return act, wgt

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        lanes = cfg.lanes
        # The mode's encoding bits select directly (log2 of the lane count: bit 1 is
        # 4 lanes, bit 0 two), without decoding the mode first: an encoding outside the
        # configured lane counts gives an unspecified product.
        domain = m.d.sync if self._registered else m.d.comb
        mode = self.mode.as_value()
        domain += self.packed.eq(mode[1] if 4 in lanes and len(lanes) > 1
                                 else int(lanes == (4,)))
        domain += self.p1_valid.eq(mode[:2].any() if 1 in lanes and len(lanes) > 1
                                   else int(lanes != (1,)))
        block = cfg.dsp_block == "ecp5"
        clear = None
        if self._output_register:
            # Both multipliers' output registers clear on one net: an ECP5 DSP slice's two
            # MULT18X18D share their resets (nextpnr cannot place two with different ones
            # side by side), and multiplier 1's product is 0 in 1-lane mode already.
            clear = Signal(name="product_clear")
            m.d.comb += clear.eq(ResetSignal() | ~self.en)
        for d, port in enumerate((self.p0, self.p1)):
            wa, wb = self._widths[d]
            ops = {n: self._operands(n, d) for n in lanes}
            act, wgt = Signal(wa, name=f"dsp{d}_a"), Signal(wb, name=f"dsp{d}_w")
            for sig, idx, wd in ((act, 0, wa), (wgt, 1, wb)):
                # an operand a mode leaves open (None) takes another mode's value; in a
                # primitive, the activation is 0 there, so that the product is 0 without
                # a clear of its own (see below)
                given = {n: ops[n][idx] for n in lanes if ops[n][idx] is not None}
                fill = next(iter(given.values()), C(0, 1))
                if block and idx == 0:
                    fill = C(0, 1)
                picked = sig.eq(self._pick({n: sign_extend(given.get(n, fill), wd) for n in lanes}))
                if block:  # the primitive's input registers replace the operands' own
                    m.d.comb += picked
                else:
                    domain += picked
            if not block:
                m.d.comb += port.eq(act.as_signed() * wgt.as_signed())
                continue
            inst, product = ecp5_mult(act.as_signed(), wgt.as_signed(),
                                      input_regs=self._registered,
                                      output_reg=self._output_register,
                                      output_reset=clear)
            m.submodules[f"mult{d}"] = inst
            m.d.comb += port.eq(product[:len(port)])
        return m

    def _pick(self, values: dict[int, Value]) -> Value:
        """The value of the current lane count, selected by the mode's encoding bits."""
        mode = self.mode.as_value()
        order = sorted(values)
        expr = values[order[0]]
        for n in order[1:]:
            expr = Mux(mode[n.bit_length() - 2], values[n], expr)
        return expr


class DSPCombine(wiring.Component):
    """The dot product from the two products of :class:`DSPProducts`: their sum, or in
    4-lane mode the packed field of their sum, as ``value`` plus the rounding bit
    ``round`` (the sign of the field below: an accumulator adds it as its carry in).

    Members
    -------
    p0, p1 : In(signed)
        The products (their widths those of :class:`DSPProducts`).
    packed : In(1)
        4-lane mode.
    value : Out(signed(config.product_width))
    round : Out(1)
        The dot product is ``value + round``.
    """

    def __init__(self, config: MacConfig) -> None:
        if not isinstance(config, MacConfig) or config.arch != "dsp":
            raise TypeError(f"DSPCombine config must be a dsp MacConfig, not {config!r}")
        self._config = config
        p0, p1 = _dsp_product_shapes(config)
        super().__init__({
            "p0": In(p0),
            "p1": In(p1),
            "packed": In(1),
            "value": Out(signed(config.product_width)),
            "round": Out(1),
        })

    @property
    def config(self) -> MacConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        pw = cfg.product_width
        total = Signal(signed(max(len(self.p0), len(self.p1)) + 1), name="dsp_sum")
        m.d.comb += total.eq(self.p0 + self.p1)
        if 4 in cfg.lanes:
            k = cfg.dsp_spacing
            assert 2 * k <= len(total) and k <= pw
            m.d.comb += [
                self.value.eq(Mux(self.packed, sign_extend(total[k:2 * k], pw), total[:pw])),
                self.round.eq(self.packed & total[k - 1]),
            ]
        else:
            m.d.comb += self.value.eq(total[:pw])
        return m


class DSPMultiplier(Multiplier):
    """The ``dsp`` architecture as one combinational multiplier: :class:`DSPProducts`
    followed by :class:`DSPCombine` (a MAC puts its pipeline register between the two, so
    that the multipliers feed flip-flops directly, and takes the rounding bit as its
    adder's carry in)."""

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.config
        m.submodules.products = prods = DSPProducts(cfg)
        m.submodules.combine = comb = DSPCombine(cfg)
        m.d.comb += [
            prods.a.eq(self.a), prods.w.eq(self.w), prods.mode.eq(self.mode),
            prods.act_signed.eq(self.act_signed),
            comb.p0.eq(prods.p0), comb.p1.eq(Mux(prods.p1_valid, prods.p1, 0)),
            comb.packed.eq(prods.packed),
            self.product.eq(comb.value + comb.round),
        ]
        return m


class DSPMacMultiplier(wiring.Component):
    """The ``dsp`` architecture as a MAC uses it: :class:`DSPProducts`, the products'
    register, :class:`DSPCombine`.

    Parameters
    ----------
    config : MacConfig
        Its ``pipeline`` sets the registers: 1 registers the two products (zeroed when
        ``en`` is low, by their synchronous reset), 2 the multipliers' operands too.

    Members
    -------
    a, w, mode, act_signed : In
        As :class:`Multiplier`'s.
    en : In(1)
        The product is a term (else ``value`` and ``round`` are 0), aligned with the
        operands' registers: taken with the operands' stage when ``pipeline`` is 2.
    value : Out(signed(config.product_width))
    round : Out(1)
        The dot product of the operands presented ``config.pipeline`` cycles earlier is
        ``value + round``.
    """

    def __init__(self, config: MacConfig) -> None:
        if not isinstance(config, MacConfig) or config.arch != "dsp":
            raise TypeError(f"DSPMacMultiplier config must be a dsp MacConfig, not "
                            f"{config!r}")
        self._config = config
        super().__init__({
            "a": In(config.width),
            "w": In(config.width),
            "mode": In(LaneMode),
            "act_signed": In(1),
            "en": In(1),
            "value": Out(signed(config.product_width)),
            "round": Out(1),
        })

    @property
    def config(self) -> MacConfig:
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self._config
        # with dsp_block ecp5 the products' registers are the multipliers' own
        in_block = cfg.dsp_block == "ecp5" and cfg.pipeline >= 1
        m.submodules.products = prods = DSPProducts(cfg, registered=cfg.pipeline >= 2,
                                                    output_register=in_block)
        m.submodules.combine = comb = DSPCombine(cfg)
        m.d.comb += [prods.a.eq(self.a), prods.w.eq(self.w), prods.mode.eq(self.mode),
                     prods.act_signed.eq(self.act_signed)]
        # products that are not terms are zeros (a register's synchronous reset)
        if in_block:
            m.d.comb += prods.en.eq(self.en)
            p0, p1 = prods.p0, prods.p1
        else:
            p0 = Mux(self.en, prods.p0, 0)
            p1 = Mux(self.en & prods.p1_valid, prods.p1, 0)
        packed = prods.packed
        if cfg.pipeline >= 1:
            packed_r = Signal(name="packed_r")
            if in_block:
                m.d.sync += packed_r.eq(packed)
            else:
                p0_r = Signal.like(prods.p0, name="p0_r")
                p1_r = Signal.like(prods.p1, name="p1_r")
                m.d.sync += [p0_r.eq(p0), p1_r.eq(p1), packed_r.eq(packed)]
                p0, p1 = p0_r, p1_r
            packed = packed_r
        m.d.comb += [comb.p0.eq(p0), comb.p1.eq(p1), comb.packed.eq(packed),
                     self.value.eq(comb.value), self.round.eq(comb.round)]
        return m


_ARCHS = {
    "booth": BoothMultiplier,
    "ppa": PPAMultiplier,
    "fusion": FusionMultiplier,
    "fixed": FixedMultiplier,
    "dsp": DSPMultiplier,
}


def make_multiplier(config: MacConfig) -> Multiplier:
    """The multiplier of ``config.arch``."""
    return _ARCHS[config.arch](config)
