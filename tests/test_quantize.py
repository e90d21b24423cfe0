"""``rcm-gen quantize``: integer models of a float model scored for a design point, the
Pareto fronts, and what it refuses."""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from rcm_gen.presets import preset
from rcm_gen.workloads.quantize import (
    Scored,
    calibration_inputs,
    narrow_activations,
    pareto_front,
    score_model,
)
from rcm_gen.workloads.quantize_cli import parse_budget
from rcm_gen.workloads.tflite_model import load_tflite

DATA = Path(__file__).resolve().parents[1] / "rcm_gen" / "workloads" / "data"
FLOAT = str(DATA / "mlperf_tiny_resnet8_float.tflite")
INT8 = str(DATA / "mlperf_tiny_resnet8_int8.tflite")


def _scored(name, snr, cycles, energy=None):
    return Scored(name, f"models/{name}.tflite", name, {"snr_db": snr, "top1_agreement": 1.0,
                                                         "layers_snr_db": {}},
                  {"cycles": cycles, "fixed_cycles": 2 * cycles, "speedup_over_fixed": 2.0,
                   "energy_uj": energy})


def test_pareto_front_keeps_the_undominated():
    items = [_scored("a", 30, 100), _scored("b", 20, 50), _scored("c", 10, 60),
             _scored("d", 30, 120), _scored("e", 5, 40)]
    assert [s.name for s in pareto_front(items, lambda s: s.cost["cycles"])] == ["e", "b", "a"]


def test_budget_syntax():
    assert parse_budget("latency=1.5e6") == ("latency", 1.5e6)
    assert parse_budget("energy=30") == ("energy", 30.0)
    for bad in ("speed=3", "latency=", "latency=-1", "energy=abc"):
        with pytest.raises(Exception, match=r"^--budget must be latency=CYCLES or "
                                            r"energy=MICROJOULES with a positive number"):
            parse_budget(bad)


def test_narrow_activations_keep_the_real_range():
    """Every ReLU output of the int8 ResNet-8 goes to zero point 112, the real range kept;
    the biases of its readers follow their input's scale."""
    before = load_tflite(INT8)
    after = load_tflite_bytes(narrow_activations(Path(INT8).read_bytes()))
    moved = 0
    for op in before.operators:
        t0, t1 = before.tensors[op.outputs[0]], after.tensors[op.outputs[0]]
        if op.options.get("activation") == "RELU":
            moved += 1
            assert int(t1.zero_point[0]) == 112
            span0 = float(t0.scale[0]) * (127 - int(t0.zero_point[0]))
            assert math.isclose(float(t1.scale[0]) * 15, span0, rel_tol=1e-6)
    assert moved == 7
    for i, layer in after.layers.items():
        if layer.input_range == (112, 127):
            x = after.tensors[after.operators[i].inputs[0]]
            old = before.tensors[before.operators[i].inputs[0]]
            ratio = float(old.scale[0]) / float(x.scale[0])
            np.testing.assert_allclose(layer.bias, np.round(before.layers[i].bias * ratio),
                                       atol=1)


def load_tflite_bytes(data: bytes):
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(data)
        f.flush()
        return load_tflite(f.name)


class _FakeEnergy:
    """An energy model of fixed pJ per cycle and per step, to test the plumbing."""

    fmax_mhz = 100.0
    validation = {"error": 0.01}

    def layer_energy(self, lc, shape, act_bits, weight_bits, *, cycles=None, clock_ns=None):
        pj = 2.0 * (cycles or lc.total) + 1.0 * sum(lc.compute.values()) \
            if isinstance(lc.compute, dict) else 2.0 * (cycles or lc.total)
        return {"pj": pj, "groups_pj": {"all": pj}, "mode": f"{act_bits}x{weight_bits}"}

    def to_dict(self):
        return {}


def test_score_model_counts_cycles_and_energy():
    s = score_model(INT8, preset("rcm-default"), _FakeEnergy())
    assert s["cycles"] > 0 and s["fixed_cycles"] >= s["cycles"]
    assert s["speedup_over_fixed"] == pytest.approx(s["fixed_cycles"] / s["cycles"])
    assert s["energy_uj"] > 0 and s["latency_ms"] == pytest.approx(s["cycles"] / 1e5)


def test_score_model_leaves_out_energy_of_uncalibrated_modes():
    """A layer in a mode the energy model lacks: no energy, the reason kept."""
    from rcm_gen.errors import UserError

    class _Partial(_FakeEnergy):
        def layer_energy(self, lc, shape, act_bits, weight_bits, **kw):
            raise UserError("no calibrated tile mode runs 8-bit operands in 4 lanes")

    s = score_model(INT8, preset("rcm-default"), _Partial())
    assert s["energy_uj"] is None and "no calibrated tile mode" in s["energy_note"]
    assert s["cycles"] > 0


def test_cli_quantize_scores_energy_with_the_glitch_carrying_tile_model(tmp_path,
                                                                        monkeypatch):
    """The energy front's plumbing: the tile's energy model (calibrated, then carrying its
    MAC's glitch factors) scores every variant; the calibration itself is faked here."""
    import rcm_gen.power.tile_model as tile_model
    from rcm_gen.cli import main

    calls = []
    monkeypatch.setattr(tile_model, "calibrate",
                        lambda config, **kw: calls.append("calibrate") or _FakeEnergy())
    monkeypatch.setattr(tile_model, "with_glitches",
                        lambda model, config, **kw: calls.append("glitches") or model)
    out = tmp_path / "q"
    assert main(["quantize", "rcm-default", "--model", FLOAT, "--out", str(out),
                 "--variants", "int8,w4a4", "--count", "2"]) == 0
    assert calls == ["calibrate", "glitches"]
    report = json.loads((out / "front.json").read_text())
    assert set(report["fronts"]) == {"latency", "energy"}
    rows = list(csv.DictReader((out / "front.csv").open()))
    assert all(float(row["energy_uj"]) > 0 for row in rows)


def test_cli_quantize_writes_the_fronts(cli, tmp_path):
    out = tmp_path / "q"
    r = cli("quantize", "rcm-default", "--model", FLOAT, "--out", str(out), "--no-energy",
            "--variants", "int8,w4a4", "--count", "4", "--budget", "latency=1e9")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fidelity on random data" in r.stdout
    rows = list(csv.DictReader((out / "front.csv").open()))
    assert [row["variant"] for row in rows] == ["int8", "w4a4"]
    assert int(rows[1]["cycles"]) < int(rows[0]["cycles"])
    report = json.loads((out / "front.json").read_text())
    assert report["config"] == preset("rcm-default").to_dict()
    assert report["tools"]["ai_edge_quantizer"]
    assert set(report["fronts"]["latency"]) >= {"w4a4"}
    assert report["budget"]["pick"] in ("int8", "w4a4")
    assert (out / "front.png").read_bytes()[:4] == b"\x89PNG"
    assert load_tflite(str(out / "models" / "w4a4.tflite")).layers[1].weight_bits == 4


def test_cli_quantize_bad_input(cli, tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((4, 32, 32, 4), np.float32))
    cases = [
        (("--model", INT8), r"--model '.*int8\.tflite': its input tensor is not float32; "
                            r"quantize takes a float TFLite model .*"),
        (("--model", FLOAT, "--calibration", str(tmp_path / "bad.npy")),
         r"--calibration '.*bad\.npy': must be an array of shape \(N, 32, 32, 3\) \(N inputs "
         r"of the model's input\), not float32 \(4, 32, 32, 4\)"),
        (("--model", FLOAT, "--budget", "latency=10", "--variants", "int8", "--count", "2"),
         r"--budget latency=10: no model on the front meets it \(the cheapest takes "
         r"[0-9.]+e\+06 cycles\)"),
        (("--model", FLOAT, "--variants", "int3"),
         r"--variants: 'int3' is not one of int8, 16x8, w4a8, mix, int8-a4, w4a4"),
        (("--model", str(tmp_path / "none.tflite")), r"--model '.*none\.tflite': file not found"),
        (("--model", FLOAT, "--count", "0"), r"--count must be at least 1, not 0"),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        r = cli("quantize", "rcm-default", *args, "--out", str(out), "--no-energy")
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert re.fullmatch(rf"rcm-gen( quantize)?: error: {message}\n", r.stderr), r.stderr
        assert not out.exists(), args


def test_calibration_inputs_accept_batched_arrays(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 1, 32, 32, 3), np.float32))
    xs, what = calibration_inputs(str(tmp_path / "x.npy"), (1, 32, 32, 3))
    assert len(xs) == 3 and xs[0].shape == (1, 32, 32, 3) and "3 inputs from" in what
