"""A stand-in for the synthesis flow, to exercise the sweep machinery (store, resume,
parallelism, fronts) in seconds.  Area and clock are made-up but deterministic functions of
the configuration; the real flow is exercised in test_dse_real.py.

``RCM_FAKE_SYNTH_DELAY`` (seconds) makes each run take that long; ``RCM_FAKE_SYNTH_LOG``
names a file to which every run appends the point's hash (to count evaluations)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rcm_gen.errors import ToolFailed
from rcm_gen.generate import config_hash


def fake_synthesize(config, target="asic", *, out_dir, liberty=None, clock_ns=None,
                    constraints=None):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "synth.log"
    log.write_text(f"fake synthesis of {json.dumps(config.to_dict())}\n")
    time.sleep(float(os.environ.get("RCM_FAKE_SYNTH_DELAY", "0")))
    if config.tn == 3:
        raise ToolFailed(f"fake flow refuses tn=3; log: {log}")
    counter = os.environ.get("RCM_FAKE_SYNTH_LOG")
    if counter:
        with open(counter, "a") as f:
            f.write(f"{config_hash(config)} {clock_ns}\n")
    mac = config.mac
    per_mac = {"booth": 1.25, "ppa": 1.4, "fusion": 2.0, "fixed": 1.0}[mac.arch] * 20000
    buffers = sum(config.buffer_bits.values()) * 20.0
    area = config.p * per_mac + buffers + 5000
    cp = (clock_ns or 5.0) * 0.9 + (0.3 if mac.arch == "ppa" else 0.0)
    return {"target": target, "area_um2": area, "cells": int(area / 30),
            "critical_path_ns": cp, "wns_ns": 0.0, "fmax_mhz": 1000.0 / cp,
            "area_by_group": {"buffers": buffers}, "log": str(log), "wall_s": 0.0}


def fake_calibrate(config, *, liberty=None, clock_ns=None, report=None, **_):
    """A stand-in for the tile energy calibration: a model whose energy per step falls
    with the lanes of a Sum-Together MAC and grows with P, made-up but deterministic."""
    from rcm_gen.power.tile import tile_modes
    from rcm_gen.power.tile_model import TileEnergyModel

    if report is None or "area_um2" not in report:
        raise ToolFailed("fake calibration needs the point's synthesis report; log: -")
    modes = tuple(tile_modes(config))
    per_step = {m.key: 10.0 * config.p * (1.0 if config.mac.arch != "fixed" else 1.2)
                / (1 + 0.2 * (m.lanes - 1)) for m in modes}
    coefficients = {"control": {"cycle": 5.0 + config.tn, **{f"step:{k}": v for k, v in
                                                             per_step.items()},
                                "byte_in": 1.0, "byte_out": 1.0, "out_value": 2.0}}
    return TileEnergyModel(config.to_dict(), modes, ("control",), coefficients,
                           {"control": 100.0}, clock_ns or 5.0, report["fmax_mhz"],
                           {"error": 0.0, "mode": modes[0].key}, {"layers": []}, {})


def fake_fpga(config, target="ecp5", *, out_dir, clock_ns=None, constraints=None,
              prune=None):
    """A stand-in for :func:`rcm_gen.flows.fpga.run_fpga` with a budget: made-up but
    deterministic resource counts (``prune`` sees them; a pruned point gets no "place and
    route", and ``RCM_FAKE_SYNTH_LOG`` records ``pnr HASH`` only for the points that do)
    and an Fmax that falls with P."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "synth.log"
    log.write_text(f"fake FPGA synthesis of {json.dumps(config.to_dict())}\n")
    arch = config.mac.arch
    counts = {"luts": {"booth": 3000, "ppa": 3300, "fusion": 4000, "fixed": 2000,
                       "dsp": 2400}[arch] * config.p + 1500,
              "ffs": 800 * config.p + 500,
              "dsps": {"fixed": 1, "dsp": 2}.get(arch, 0) * config.p + 2,
              "brams": 2}
    reason = prune(counts) if prune is not None else None
    if reason:
        return {"target": target, **counts, "pruned": reason, "log": str(log), "wall_s": 0.0}
    counter = os.environ.get("RCM_FAKE_SYNTH_LOG")
    if counter:
        with open(counter, "a") as f:
            f.write(f"pnr {config_hash(config)} {arch} {config.p}\n")
    fmax = 60.0 / config.p + (5.0 if arch == "fixed" else 0.0)
    return {"target": target, **counts, "fmax_mhz": fmax, "log": str(log), "wall_s": 0.0}
