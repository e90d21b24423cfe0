"""What an inference path must survive: host operators common models use (each against
LiteRT's reference kernels), LiteRT itself aborting on an operator, sums that overflow
int32 on the tile."""

import re

import numpy as np
import pytest
from tflite_builder import write_chain

from rcm_gen.workloads.infer import ReferenceEngine, compare, random_input, run_model
from rcm_gen.workloads.litert_oracle import LiteRTCrash, LiteRTOracle
from rcm_gen.workloads.tflite_model import load_tflite
from rcm_gen.workloads.tflite_ops import hard_swish, lookup_table

#: One model per host operator (and the uint8 edges): (input shape, layers, input dtype).
HOST = {
    "mul-constant": ((1, 6, 6, 5), [dict(op="conv", m=8), dict(op="mul")], "int8"),
    "mul-tensors-relu": ((1, 6, 6, 5), [dict(op="conv", m=8), dict(op="conv", m=8),
                                        dict(op="mul", **{"with": 0}, act="RELU")], "int8"),
    "concatenation-channels": ((1, 6, 6, 5), [dict(op="conv", m=8), dict(op="concat"),
                                              dict(op="conv", m=4)], "int8"),
    "concatenation-rows": ((1, 6, 6, 5), [dict(op="conv", m=8),
                                          dict(op="concat", axis=1, copies=3)], "int8"),
    "squeeze": ((1, 1, 1, 16), [dict(op="conv", m=8, k=1), dict(op="squeeze", dims=[1, 2]),
                                dict(op="fc", m=5)], "int8"),
    "logistic": ((1, 6, 6, 5), [dict(op="conv", m=8), dict(op="logistic")], "int8"),
    "tanh": ((1, 6, 6, 5), [dict(op="conv", m=8), dict(op="tanh")], "int8"),
    "hard-swish": ((1, 6, 6, 5), [dict(op="conv", m=8), dict(op="hard_swish")], "int8"),
    "padv2": ((1, 6, 6, 5), [dict(op="conv", m=8),
                             dict(op="padv2", pads=[[0, 0], [1, 2], [2, 1], [0, 0]], value=-3),
                             dict(op="conv", m=4, padding="VALID")], "int8"),
    "uint8-edges": ((1, 6, 6, 5), [dict(op="quantize"), dict(op="conv", m=8),
                                   dict(op="quantize", out_dtype="uint8")], "uint8"),
}


@pytest.mark.parametrize("name", sorted(HOST))
def test_host_operators_bit_exact(tmp_path, name):
    shape, layers, dtype = HOST[name]
    for seed in range(3):
        path = write_chain(tmp_path / f"{name}{seed}.tflite", shape, layers, seed=seed,
                           input_dtype=dtype)
        model, oracle = load_tflite(path), LiteRTOracle(path)
        for i in range(4):
            x = random_input(model, i)
            result = compare(model, run_model(model, x, ReferenceEngine()), oracle.run(x))
            assert result.match, (seed, i, result.first.describe())
        oracle.close()


def test_elementwise_tables_cover_every_input():
    """LOGISTIC, TANH and HARD_SWISH on all 256 int8 values: monotone where the function
    is, within one step of the real function."""
    x = np.arange(-128, 128, dtype=np.int8)
    y = lookup_table(x, (0.05, 3), (1 / 256, -128), "logistic").astype(np.int64)
    real = 1 / (1 + np.exp(-0.05 * (x.astype(np.float64) - 3)))
    assert np.all(np.diff(y) >= 0)
    assert np.max(np.abs((y + 128) / 256 - real)) <= 1 / 256
    t = lookup_table(x, (0.03, 0), (1 / 128, 0), "tanh").astype(np.int64)
    assert np.max(np.abs(t / 128 - np.tanh(0.03 * x))) <= 1 / 128
    h = hard_swish(x, (0.05, -10), (0.04, 5)).astype(np.int64)
    v = 0.05 * (x.astype(np.float64) + 10)
    real = v * np.clip(v + 3, 0, 6) / 6
    inside = real / 0.04 + 5 <= 127  # the rest saturates at 127
    assert np.all(h[~inside] == 127)
    assert np.max(np.abs(0.04 * (h - 5) - real)[inside]) <= 0.04 * 1.01


#: FC 64 -> 520 whose outputs are all equal, then SOFTMAX: LiteRT's int8 SOFTMAX aborts when
#: the sum of its exponentials reaches 512.
SOFTMAX_CRASH = ((1, 64), [dict(op="fc", m=520, w_range=0, bias_range=0), dict(op="softmax")])


def test_litert_crash_names_the_operator(tmp_path):
    path = write_chain(tmp_path / "sm.tflite", *SOFTMAX_CRASH, seed=3)
    model, oracle = load_tflite(path), LiteRTOracle(path)
    x = random_input(model, 1)
    with pytest.raises(LiteRTCrash) as info:
        oracle.run(x)
    crash = info.value
    assert (crash.op_index, crash.opcode) == (1, "SOFTMAX")
    assert re.fullmatch(r"LiteRT \(reference kernels\) aborted in operator 1 \(SOFTMAX\): "
                        r"signal SIGABRT.*", str(crash))
    # what ran before the crash is kept, and the oracle works again afterwards
    inference = run_model(model, x, ReferenceEngine())
    result = compare(model, inference, crash.tensors)
    assert result.ops == {0: True, 1: None} and not result.match
    ok = write_chain(tmp_path / "ok.tflite", (1, 64), [dict(op="fc", m=8)], seed=3)
    assert LiteRTOracle(ok).run(random_input(load_tflite(ok), 1))
    with pytest.raises(LiteRTCrash):
        oracle.run(x)


def test_cli_prints_the_tile_result_when_litert_crashes(tmp_path, cli):
    path = write_chain(tmp_path / "sm.tflite", *SOFTMAX_CRASH, seed=3)
    r = cli("infer", "rcm-default", "--model", path)
    assert r.returncode == 1, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert re.match(r"\s+0 FULLY_CONNECTED\s+1x520\s+tile .* host\s+equal$", lines[2])
    assert re.match(r"\s+1 SOFTMAX\s+1x520\s+host .*-\s+-$", lines[3])
    assert ("seed 1: LiteRT (reference kernels) aborted in operator 1 (SOFTMAX): signal "
            "SIGABRT; operators from it on are not compared") in r.stdout
    assert "1 not compared" in r.stdout


def test_overflow_in_table_and_exit_status(tmp_path, cli):
    """A bias near the int32 limit plus a large sum: the tile saturates (LiteRT's int32
    accumulator wraps), the table marks the layer OVF and the exit status is 1."""
    path = write_chain(tmp_path / "big.tflite", (1, 4, 4, 64),
                       [dict(op="conv", m=8, k=3, bias=(1 << 31) - 10, out_zp=0)],
                       input_q=(0.05, 0), seed=2)
    r = cli("infer", "rcm-default", "--model", path, "--json", str(tmp_path / "r.json"))
    assert r.returncode == 1
    assert re.search(r"\n\s+0 CONV_2D .* tile OVF\s+(equal|DIFF)\n", r.stdout), r.stdout
    assert ("OVERFLOW: a sum outside int32 was saturated in tile layer(s) 0 (TFLite's int32 "
            "accumulator would wrap)") in r.stdout
