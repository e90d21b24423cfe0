"""Operators the host runs between tile layers, int8 in and int8 out, bit-exact with LiteRT's
reference kernels: ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, RESHAPE, SQUEEZE, CONCATENATION,
PAD, PADV2, MEAN, SOFTMAX, LOGISTIC, TANH and HARD_SWISH; and QUANTIZE (float32, uint8 or
int8 to int8 or uint8) and DEQUANTIZE (to float32) at a model's ends.

The fixed-point helpers follow gemmlowp's ``fixedpoint.h`` (which TFLite's kernels use) on
int64 arrays that hold int32 values: every int32 addition wraps as it does in C++, every
``SaturatingRoundingDoublingHighMul`` and ``RoundingDivideByPOT`` rounds as there.
"""

from __future__ import annotations

import numpy as np

from ..reference import INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier
from .tflite_model import Operator, Tensor, quantize_multiplier

__all__ = [
    "add",
    "average_pool",
    "concatenation",
    "dequantize",
    "exp_on_negative_values",
    "hard_swish",
    "lookup_table",
    "max_pool",
    "mean",
    "mul",
    "one_over_one_plus_x",
    "pad",
    "quantize",
    "run_host_operator",
    "softmax",
]


# -- gemmlowp fixed point on int64 arrays holding int32 values --------------------------------


def _wrap(x) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _srdhm(a, b) -> np.ndarray:
    """``SaturatingRoundingDoublingHighMul``: round(a·b / 2^31), saturating the one
    overflowing case."""
    return multiply_by_quantized_multiplier(a, b, 0)


def _rdbpot(x, exponent) -> np.ndarray:
    """``RoundingDivideByPOT``: x / 2^exponent, rounded to nearest, halves away from 0."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def _sat_shift_left(x, exponent: int) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` for a positive exponent."""
    x = np.asarray(x, dtype=np.int64)
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX,
                    np.where(x < -threshold, INT32_MIN, x << exponent))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    one_third = 715827883
    x = _wrap(a + (1 << 28))
    x2 = _srdhm(x, x)
    x3 = _srdhm(x2, x)
    x4 = _srdhm(x2, x2)
    x4_over_4 = _rdbpot(x4, 2)
    poly = _rdbpot(_wrap(_srdhm(_wrap(x4_over_4 + x3), one_third) + x2), 1)
    return _wrap(constant_term + _srdhm(constant_term, _wrap(x + poly)))


#: exp(-2^k) in Q0.31 for k = -2 .. 4: the barrel shifter of ``exp_on_negative_values``.
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: np.ndarray, integer_bits: int = 5) -> np.ndarray:
    """gemmlowp's ``exp_on_negative_values`` for a Q``integer_bits``.(31 - integer_bits)
    input (raw int32 values ≤ 0); returns exp(a) in Q0.31 raw values."""
    a = np.asarray(a, dtype=np.int64)
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = _wrap((a & (quarter - 1)) - quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _sat_shift_left(a_mod, integer_bits))
    remainder = _wrap(a_mod - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = 1 << (frac + exponent)
            result = np.where(remainder & bit, _srdhm(result, multiplier), result)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        result = np.where(a < clamp, 0, result)
    return np.where(a == 0, INT32_MAX, result)


def one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """gemmlowp's ``one_over_one_plus_x_for_x_in_0_1`` (Newton-Raphson) on Q0.31 raw
    values."""
    a = np.asarray(a, dtype=np.int64)
    s = a + INT32_MAX
    half_denominator = _wrap(np.where(s >= 0, (s + 1) // 2, -((-(s - 1)) // 2)))
    x = _wrap(1515870810 + _srdhm(half_denominator, -1010580540))  # 48/17 - 32/17·d in Q2.29
    for _ in range(3):
        one_minus = _wrap((1 << 29) - _srdhm(half_denominator, x))
        x = _wrap(x + _sat_shift_left(_srdhm(x, one_minus), 2))
    return _sat_shift_left(x, 1)


# -- operators --------------------------------------------------------------------------------


def add(a: np.ndarray, b: np.ndarray, qa: tuple[float, int], qb: tuple[float, int],
        qout: tuple[float, int], clamp: tuple[int, int], dtype: str = "int8") -> np.ndarray:
    """TFLite's int8 ADD (``reference_integer_ops::Add``, with broadcasting), and int16 ADD
    with general scales: both inputs shifted left by 20 bits (15 for int16), rescaled to
    twice the larger input scale, summed, rescaled to the output.  ``q*`` are (scale, zero
    point)."""
    (sa, za), (sb, zb), (so, zo) = qa, qb, qout
    left_shift = 15 if dtype == "int16" else 20
    twice_max = 2.0 * float(max(np.float32(sa), np.float32(sb)))
    ma, sha = quantize_multiplier(float(sa) / twice_max)
    mb, shb = quantize_multiplier(float(sb) / twice_max)
    mo, sho = quantize_multiplier(twice_max / float(np.float32(1 << left_shift)
                                                    * np.float32(so)))
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    va = multiply_by_quantized_multiplier((a - za) * (1 << left_shift), ma, sha)
    vb = multiply_by_quantized_multiplier((b - zb) * (1 << left_shift), mb, shb)
    out = multiply_by_quantized_multiplier(_wrap(va + vb), mo, sho) + zo
    return np.clip(out, *clamp).astype(dtype)


def _pool_windows(x: np.ndarray, op: Operator, fill: int) -> np.ndarray:
    (kh, kw), (sh, sw) = op.options["kernel"], op.options["stride"]
    ho, wo = op.options["output_hw"]
    top, bottom, left, right = op.options["pads"]
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    return win[:, ::sh, ::sw][:, :ho, :wo]


def average_pool(x: np.ndarray, op: Operator) -> np.ndarray:
    """TFLite's int8 AVERAGE_POOL_2D: the mean of the window's taps inside the input (padding
    does not count), rounded half away from zero, clamped to the activation range."""
    x = np.asarray(x, dtype=np.int64)
    total = _pool_windows(x, op, 0).sum(axis=(-2, -1))
    count = _pool_windows(np.ones_like(x[..., :1]), op, 0).sum(axis=(-2, -1))
    half = count // 2
    avg = np.where(total > 0, (total + half) // count, -((-(total - half)) // count))
    return np.clip(avg, *op.options["clamp"])


def max_pool(x: np.ndarray, op: Operator) -> np.ndarray:
    """TFLite's int8 MAX_POOL_2D: the largest tap inside the input, clamped to the activation
    range."""
    x = np.asarray(x, dtype=np.int64)
    out = _pool_windows(x, op, -(1 << 15)).max(axis=(-2, -1))
    return np.clip(out, *op.options["clamp"])


def pad(x: np.ndarray, paddings: np.ndarray, zero_point: int) -> np.ndarray:
    """TFLite's int8 PAD: the value is the output's zero point."""
    x = np.asarray(x)
    return np.pad(x, [tuple(int(v) for v in p) for p in paddings],
                  constant_values=zero_point).astype(x.dtype)


def mean(x: np.ndarray, axes: tuple[int, ...], q_in: tuple[float, int],
         q_out: tuple[float, int]) -> np.ndarray:
    """TFLite's int8 MEAN (``reference_ops::QuantizedMeanOrSum``): the int32 sum over
    ``axes`` less ``n`` input zero points, times ``in_scale / out_scale`` with 1/n folded
    into the multiplier (``(multiplier << s) / n``, ``s = floor(log2 n)``), plus the output
    zero point, saturated to int8."""
    (si, zi), (so, zo) = q_in, q_out
    multiplier, shift = quantize_multiplier(float(si) / float(so))
    n = int(np.prod([np.shape(x)[a] for a in axes]))
    s = min(n.bit_length() - 1, 32, 31 + shift)
    multiplier, shift = (multiplier << s) // n, shift - s
    total = _wrap(np.asarray(x, np.int64).sum(axis=axes) - zi * n)
    out = multiply_by_quantized_multiplier(total, multiplier, shift) + zo
    return np.clip(out, -128, 127).astype(np.int8)


_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def quantize(x: np.ndarray, q_in: tuple[float, int] | None,
             q_out: tuple[float, int], out_dtype: str = "int8") -> np.ndarray:
    """TFLite's QUANTIZE: from float32 (``q_in`` None), ``round(x / scale)`` in single
    precision, halves away from zero, plus the zero point; from an integer tensor (int8 or
    uint8), a requantization ``MultiplyByQuantizedMultiplier(x - zp_in, in_scale /
    out_scale) + zp_out`` (``Requantize``); saturated to ``out_dtype`` (int8, uint8 or
    int16)."""
    so, zo = q_out
    if q_in is None:
        v = np.asarray(x, np.float32) / np.float32(so)
        t = np.trunc(v)
        r = (t + np.sign(v) * (np.abs(v - t) >= np.float32(0.5))).astype(np.float64)
        out = np.clip(r, -(1 << 31), (1 << 31) - 1).astype(np.int64) + zo
    else:
        si, zi = q_in
        multiplier, shift = quantize_multiplier(float(si) / float(so))
        out = multiply_by_quantized_multiplier(np.asarray(x, np.int64) - zi, multiplier,
                                               shift) + zo
    return np.clip(out, *_RANGES[out_dtype]).astype(out_dtype)


def dequantize(x: np.ndarray, q_in: tuple[float, int]) -> np.ndarray:
    """TFLite's DEQUANTIZE: ``float(double(scale) · (x - zp))``."""
    si, zi = q_in
    return (float(si) * (np.asarray(x, np.int64) - zi).astype(np.float64)).astype(np.float32)


def softmax(x: np.ndarray, input_scale: float, beta: float) -> np.ndarray:
    """TFLite's int8 SOFTMAX over the last axis (``reference_ops::Softmax``; output scale
    1/256, zero point -128): input differences to the row maximum, rescaled by
    ``beta · input_scale`` into Q5.26, exp in fixed point, summed in Q12.19, a fixed-point
    reciprocal of the sum, and a rounding shift to 8 bits."""
    integer_bits, accumulation_bits = 5, 12
    real = min(float(beta) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    radius = int(np.floor(((1 << integer_bits) - 1) * float(1 << (31 - integer_bits))
                          / float(1 << left_shift)))
    diff_min = -radius
    x = np.asarray(x, dtype=np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= diff_min
    scaled = _srdhm(_wrap(diff * (1 << left_shift)), multiplier)
    exps = exp_on_negative_values(scaled, integer_bits)
    rescaled = _rdbpot(exps, accumulation_bits)
    total = _wrap(np.where(valid, rescaled, 0).sum(axis=-1, keepdims=True))
    # GetReciprocal: normalise the sum to [1, 2) and take 1 / (1 + x)
    headroom = 32 - np.frexp(total.astype(np.float64))[1]  # count of leading zeros
    bits_over_unit = accumulation_bits - headroom
    shifted_minus_one = _wrap(((total << headroom) & 0xFFFFFFFF) - (1 << 31))
    shifted_scale = one_over_one_plus_x(shifted_minus_one)
    exponent = bits_over_unit + 31 - 8
    out = _rdbpot(_srdhm(shifted_scale, exps), exponent) - 128
    out = np.where(valid, np.clip(out, -128, 127), -128)
    return out.astype(np.int8)


# -- more elementwise and shape operators -----------------------------------------------------


def mul(a: np.ndarray, b: np.ndarray, qa: tuple[float, int], qb: tuple[float, int],
        qout: tuple[float, int], clamp: tuple[int, int]) -> np.ndarray:
    """TFLite's int8 MUL (``reference_integer_ops::Mul``, with broadcasting):
    ``MultiplyByQuantizedMultiplier((a - za)·(b - zb), sa·sb/so) + zo``, the real multiplier
    formed in single precision as the kernel's ``Prepare`` forms it, clamped."""
    (sa, za), (sb, zb), (so, zo) = qa, qb, qout
    real = float(np.float32(np.float32(sa) * np.float32(sb)) / np.float32(so))
    multiplier, shift = quantize_multiplier(real)
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    out = multiply_by_quantized_multiplier((a - za) * (b - zb), multiplier, shift) + zo
    return np.clip(out, *clamp).astype(np.int8)


def lookup_table(x: np.ndarray, q_in: tuple[float, int], q_out: tuple[float, int],
                 function: str) -> np.ndarray:
    """TFLite's int8 LOGISTIC and TANH in the reference kernels: a 256-entry table made in
    ``Prepare`` (``PopulateLookupTable``) — each int8 value dequantized in single
    precision, transformed (``1 / (1 + exp(-v))`` or ``tanh(v)``, single precision),
    divided by the output scale (times its single-precision inverse), rounded half away
    from zero, offset by the output zero point and saturated."""
    (si, zi), (so, zo) = q_in, q_out
    values = np.arange(-128, 128, dtype=np.int64)
    deq = (np.float32(si) * (values - zi).astype(np.float32)).astype(np.float32)
    if function == "logistic":
        e = np.exp(-deq.astype(np.float64)).astype(np.float32)
        y = (np.float32(1.0) / (np.float32(1.0) + e)).astype(np.float32)
    elif function == "tanh":
        y = np.tanh(deq.astype(np.float64)).astype(np.float32)
    else:
        raise ValueError(f"Lookup function must be logistic or tanh, not {function!r}")
    inverse = np.float32(1.0) / np.float32(so)
    v = (y * inverse).astype(np.float32)
    t = np.trunc(v)
    r = t + np.sign(v) * (np.abs(v - t) >= np.float32(0.5))
    table = np.clip(r.astype(np.int64) + zo, -128, 127)
    return table[np.asarray(x, np.int64) + 128].astype(np.int8)


def _srdhm16(a, b) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul`` on int16 values."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b
    v = ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    high = np.where(v >= 0, v >> 15, -((-v) >> 15))
    return np.where((a == b) & (a == -32768), 32767, high)


def _sat16(x) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64), -32768, 32767)


def _reduce_to_int16(multiplier: int) -> int:
    """``DownScaleInt32ToInt16Multiplier``."""
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return 32767
    return (multiplier + (1 << 15)) >> 16


def hard_swish(x: np.ndarray, q_in: tuple[float, int], q_out: tuple[float, int]
               ) -> np.ndarray:
    """TFLite's int8 HARD_SWISH (``reference_ops::HardSwish``, quantized): the input on a
    ×128 "hires" scale, a 16-bit fixed-point "relu-ish" factor in [0, 1] from the input
    rescaled so that 3.0 is 32768 (saturating), multiplied without rounding
    (``SaturatingDoublingHighMul``) with the input on the output scale, then a rounding
    right shift, the output zero point and saturation to int8."""
    (si, zi), (so, zo) = q_in, q_out
    hires = np.float32(np.float32(1.0 / 128.0) * np.float32(si))
    out_m, out_e = quantize_multiplier(float(np.float32(hires / np.float32(so))))
    out_m16 = _reduce_to_int16(out_m)
    rel_m, rel_e = quantize_multiplier(float(np.float32(hires / np.float32(3.0 / 32768.0))))
    rel_m16 = _reduce_to_int16(rel_m)
    if out_e > 0:
        raise ValueError("HARD_SWISH output multiplier exponent must be 0 or below, not "
                         f"{out_e}")
    v = np.asarray(x, np.int64) - zi
    hi = v * (1 << 7)
    pre_out = _srdhm16(hi, out_m16)
    rel = hi
    if rel_e > 0:
        rel = _sat16(rel * (1 << (rel_e - 1)))
    rel = _srdhm16(rel, rel_m16)
    if rel_e > 0:
        rel = _sat16(rel * 2)
    if rel_e < 0:
        rel = _rdbpot(rel, -rel_e)
    rel = (rel + (1 << 15)) >> 1
    overflow = (rel == pre_out) & (rel == -32768)
    prod = rel * pre_out
    pre = np.where(overflow, 32767, np.where(prod >= 0, prod >> 15, -((-prod) >> 15)))
    out = _rdbpot(pre, -out_e) + zo
    return np.clip(out, -128, 127).astype(np.int8)


def concatenation(xs: list[np.ndarray], axis: int) -> np.ndarray:
    """TFLite's int8 CONCATENATION: the inputs (of one quantization, which the kernel
    requires of int8) joined along ``axis``."""
    return np.concatenate([np.asarray(x) for x in xs], axis=axis)


def _round_away(v: np.ndarray) -> np.ndarray:
    t = np.trunc(v)
    return t + np.sign(v) * (np.abs(v - t) >= 0.5)


def int16_lut(function, lo: float, hi: float) -> np.ndarray:
    """TFLite's ``gen_lut`` for int16 tables (513 entries, Q0.15 over [-1, 1]): the
    function at 512 steps of ``[lo, hi]``, each sample less half the error that linear
    interpolation makes at the step's midpoint, and the last value for the slope."""
    steps = 512
    step = (hi - lo) / steps
    scale = 32768.0
    i = np.arange(steps, dtype=np.float64)
    val = function(lo + i * step)
    mid = function(lo + i * step + step / 2)
    nxt = function(lo + (i + 1) * step)
    sample = _round_away(val * scale)
    interp = _round_away((nxt * scale + _round_away(val * scale)) / 2)
    bias = _round_away((interp - _round_away(mid * scale)) / 2)
    table = np.clip(sample - bias, -32768, 32767)
    last = np.clip(_round_away(function(np.float64(hi)) * scale), -32768, 32767)
    return np.append(table, last).astype(np.int64)


def int16_lookup(value: np.ndarray, table: np.ndarray) -> np.ndarray:
    """TFLite's int16 table lookup with linear interpolation (``lut_lookup``): entry
    ``256 + (v >> 7)`` and the slope to the next, times the low 7 bits, rounded."""
    v = np.asarray(value, np.int64)
    index = 256 + (v >> 7)
    offset = v & 0x7F
    base = table[index]
    slope = _wrap16(table[index + 1] - base)
    return _wrap16(base + ((slope * offset + 64) >> 7))


def _wrap16(x) -> np.ndarray:
    return ((np.asarray(x, np.int64) + (1 << 15)) & 0xFFFF) - (1 << 15)


def softmax_int16(x: np.ndarray, input_scale: float, beta: float) -> np.ndarray:
    """TFLite's int16 SOFTMAX (``reference_ops::SoftmaxInt16``; output scale 1/32768, zero
    point 0): differences to the row maximum rescaled so that [-65535, 0] is [-10, 0], an
    interpolated exp table, the sum's reciprocal from a 1/(1+x) table after normalising
    it, and a rounding shift."""
    exp_table = int16_lut(np.exp, -10.0, 0.0)
    recip_table = int16_lut(lambda v: 1.0 / (1.0 + v), 0.0, 1.0)
    real = float(np.float32(np.float32(input_scale) * np.float32(beta))) / (10.0 / 65535.0)
    multiplier, shift = quantize_multiplier(real)
    x = np.asarray(x, np.int64)
    diff = x - x.max(axis=-1, keepdims=True)
    scaled = multiply_by_quantized_multiplier(diff, multiplier, shift)
    exps = int16_lookup(np.clip(scaled + 32767, -32768, 32767), exp_table)
    total = exps.sum(axis=-1, keepdims=True)
    clz = 32 - np.frexp(total.astype(np.float64))[1]  # leading zeros of the uint32 sum
    shifted = ((total << (clz - 1)) + (1 << 13)) >> 14
    sym = np.clip(shifted - ((1 << 15) + (1 << 16)), -32768, 32767)
    recip = int16_lookup(sym, recip_table)
    right = 31 - clz
    out = (exps * recip + (np.int64(1) << (right - 1))) >> right
    return np.clip(out, 0, 32767).astype(np.int16)


def _q(t: Tensor) -> tuple[float, int]:
    return float(t.scale[0]), int(t.zero_point[0])


def run_host_operator(op: Operator, tensors: tuple[Tensor, ...],
                      values: dict[int, np.ndarray]) -> np.ndarray:
    """Run one host operator on the computed tensors ``values`` (index → array); returns its
    output tensor, shaped as the model declares it."""
    x = values[op.inputs[0]]
    out = tensors[op.outputs[0]]
    if op.opcode == "ADD":
        y = add(x, values[op.inputs[1]], _q(tensors[op.inputs[0]]),
                _q(tensors[op.inputs[1]]), _q(out), op.options["clamp"], out.dtype)
    elif op.opcode == "MUL":
        y = mul(x, values[op.inputs[1]], _q(tensors[op.inputs[0]]),
                _q(tensors[op.inputs[1]]), _q(out), op.options["clamp"])
    elif op.opcode == "AVERAGE_POOL_2D":
        y = average_pool(x, op)
    elif op.opcode == "MAX_POOL_2D":
        y = max_pool(x, op)
    elif op.opcode in ("RESHAPE", "SQUEEZE"):
        y = np.asarray(x)
    elif op.opcode == "CONCATENATION":
        y = concatenation([values[i] for i in op.inputs], op.options["axis"])
    elif op.opcode == "PAD":
        y = pad(x, op.options["paddings"], _q(out)[1])
    elif op.opcode == "PADV2":
        y = pad(x, op.options["paddings"], int(values[op.inputs[2]].reshape(-1)[0]))
    elif op.opcode == "MEAN":
        y = mean(x, op.options["axes"], _q(tensors[op.inputs[0]]), _q(out))
    elif op.opcode == "QUANTIZE":
        src = tensors[op.inputs[0]]
        y = quantize(x, None if src.dtype == "float32" else _q(src), _q(out), out.dtype)
        return y.reshape(out.shape)
    elif op.opcode == "DEQUANTIZE":
        return dequantize(x, _q(tensors[op.inputs[0]])).reshape(out.shape)
    elif op.opcode == "SOFTMAX" and out.dtype == "int16":
        y = softmax_int16(x, _q(tensors[op.inputs[0]])[0], op.options["beta"])
    elif op.opcode == "SOFTMAX":
        y = softmax(x, _q(tensors[op.inputs[0]])[0], op.options["beta"])
    elif op.opcode in ("LOGISTIC", "TANH"):
        y = lookup_table(x, _q(tensors[op.inputs[0]]), _q(out), op.opcode.lower())
    elif op.opcode == "HARD_SWISH":
        y = hard_swish(x, _q(tensors[op.inputs[0]]), _q(out))
    else:  # load_tflite refuses every other operator
        raise AssertionError(f"{op.label()}: no host implementation")
    return np.asarray(y).astype(out.dtype).reshape(out.shape)
