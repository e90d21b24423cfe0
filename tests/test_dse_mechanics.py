"""The sweep machinery with a stand-in synthesis flow (tests/dse_fake.py) and the real cycle
model: store and cache, claims, failures, skipped points, kill -9 and resume, concurrent
sweeps, Dask, NSGA-II against the grid, outputs."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rcm_gen.conv import ConvShape
from rcm_gen.dse.pareto import hypervolume, pareto_front, write_outputs
from rcm_gen.dse.runner import run_sweep
from rcm_gen.dse.space import load_space
from rcm_gen.dse.store import Store
from rcm_gen.tile.config import TileConfig
from rcm_gen.tile.driver import PostProcess, layer_cycles

HERE = Path(__file__).resolve().parent
FAKE = "dse_fake:fake_synthesize"

SPACE = """
name = "mech"
base = "rcm-small"
[knobs]
arch = ["booth", "fixed"]
p = [1, 2, 4]
tm_per_p = [1]
tn = [2, 4]
tr = [2]
tc = [2]
k_max = [3]
s_max = [1]
clock_ns = [5.0, 10.0]
[[workloads]]
name = "conv"
layer = {c = 8, m = 8, h = 6, w = 6, k = 3, stride = 1, padding = 1}
bits = [16, 8, 4]
"""
SHAPE = ConvShape(8, 8, 6, 6, 3, 1, 1)


@pytest.fixture(autouse=True)
def _importable_fake(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))


def _space(tmp_path, text=SPACE, name="space.toml"):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return load_space(f)


def _rows(path, keys=None):
    with Store(path) as s:
        return s.rows(keys), {r["key"]: s.cycles(r["key"]) for r in s.rows(keys)}


def test_grid_store_cache_and_cycle_model(tmp_path):
    space = _space(tmp_path)
    store = tmp_path / "out" / "store.sqlite"
    first = run_sweep(space, store, jobs=2, synthesizer=FAKE, progress=False)
    assert (first.points, first.computed, first.cached, first.failed) == (24, 24, 0, 0)
    assert first.cases == 24 * 3
    again = run_sweep(space, store, jobs=2, synthesizer=FAKE, progress=False)
    assert (again.computed, again.cached, again.cases) == (0, 24, 0)
    rows, cycles = _rows(store, first.keys)
    assert len(rows) == 24
    assert all((r["attempts"], r["finishes"], r["successes"]) == (1, 1, 1) for r in rows)
    # every case's cycles are the cycle model's, latency is cycles × achieved period
    case_keys = {c["precision"]: c["key"] for c in space.cases()}
    for r in rows:
        cfg = TileConfig.from_dict(r["config"])
        for prec, ckey in case_keys.items():
            lc = layer_cycles(cfg, SHAPE, int(prec), int(prec), False,
                              post=PostProcess.for_timing(SHAPE.m, int(prec)))
            assert cycles[r["key"]][ckey]["cycles"] == lc.total
            assert cycles[r["key"]][ckey]["lanes"] == lc.lanes


def test_a_new_workload_reuses_every_synthesis(tmp_path):
    space = _space(tmp_path)
    store = tmp_path / "store.sqlite"
    run_sweep(space, store, jobs=1, synthesizer=FAKE, progress=False)
    more = SPACE + textwrap.dedent("""
        [[workloads]]
        name = "pointwise"
        layer = {c = 16, m = 8, h = 4, w = 4, k = 1}
        bits = ["8x4", 2]
        """)
    stats = run_sweep(_space(tmp_path, more, "more.toml"), store, jobs=2, synthesizer=FAKE,
                      progress=False)
    assert (stats.computed, stats.cached, stats.cases) == (0, 24, 24 * 2)
    rows, cycles = _rows(store)
    mixed = next(c for c in load_space(tmp_path / "more.toml").cases()
                 if c["precision"] == "8x4")
    assert (mixed["act_bits"], mixed["weight_bits"]) == (8, 4)
    for r in rows:
        lc = layer_cycles(TileConfig.from_dict(r["config"]), ConvShape(16, 8, 4, 4, 1, 1, 0),
                          8, 4, False, post=PostProcess.for_timing(8, 8))
        assert cycles[r["key"]][mixed["key"]]["cycles"] == lc.total


def test_network_workload_is_the_sum_over_its_layers(tmp_path):
    layers = [{"name": "a", "c": 4, "m": 8, "h": 6, "w": 6, "k": 3, "stride": 1,
               "padding": 1, "act_bits": 8, "weight_bits": 8},
              {"name": "b", "c": 8, "m": 8, "h": 6, "w": 6, "k": 1, "stride": 1,
               "padding": 0, "act_bits": 4, "weight_bits": 4},
              {"name": "c", "c": 8, "m": 4, "h": 6, "w": 6, "k": 5, "stride": 1,
               "padding": 2, "act_bits": 8, "weight_bits": 8}]
    (tmp_path / "net.json").write_text(json.dumps({"name": "tiny", "layers": layers}))
    text = SPACE.replace('clock_ns = [5.0, 10.0]', 'clock_ns = [5.0]').replace(
        "k_max = [3]", "k_max = [3, 5]") + textwrap.dedent("""
        [[workloads]]
        name = "tiny"
        network = "net.json"
        """)
    space = _space(tmp_path, text)
    store = tmp_path / "o" / "store.sqlite"
    stats = run_sweep(space, store, jobs=2, synthesizer=FAKE, progress=False)
    net_case = next(c for c in space.cases() if c["workload"] == "tiny")
    rows, cycles = _rows(store, stats.keys)
    runnable = 0
    for r in rows:
        cfg = TileConfig.from_dict(r["config"])
        got = cycles[r["key"]][net_case["key"]]
        if cfg.k_max < 5:
            assert got["cycles"] is None
            assert got["not_runnable"].startswith("layer 'c' cannot run on this design point: ")
            continue
        runnable += 1
        want = sum(layer_cycles(cfg, ConvShape(*(x[k] for k in "cmhwk"), 1, x["padding"]),
                                x["act_bits"], x["weight_bits"], False,
                                post=PostProcess.for_timing(x["m"], x["act_bits"])).total
                   for x in layers)
        assert got["cycles"] == want
    assert runnable == 12
    with Store(store) as s:
        write_outputs(stats.tasks, s, space, tmp_path / "o")
    with open(tmp_path / "o" / "results.csv") as f:
        tiny = [r for r in csv.DictReader(f) if r["workload"] == "tiny"]
    assert len(tiny) == 24
    assert sum(r["latency_ns"] == "" for r in tiny) == 12


def test_failed_and_skipped_points_do_not_stop_the_sweep(tmp_path):
    text = SPACE.replace("tn = [2, 4]", "tn = [2, 3]").replace("tm_per_p = [1]", "tm = [2]")
    space = _space(tmp_path, text)
    store = tmp_path / "st.sqlite"
    stats = run_sweep(space, store, jobs=2, synthesizer=FAKE, progress=False)
    # p=4 with tm=2: illegal (tm must be a multiple of p), skipped with the reason
    assert stats.skipped == 8
    assert stats.skip_reasons == {"Tile tm must be a multiple of p=4, not 2": 8}
    assert (stats.failed, stats.computed) == (8, 8)  # tn=3 fails in the stand-in flow
    rows, _ = _rows(store)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 8
    assert all(r["error"].startswith("fake flow refuses tn=3") and Path(r["log"]).is_file()
               for r in failed)
    again = run_sweep(space, store, jobs=2, synthesizer=FAKE, progress=False)
    assert (again.computed, again.failed, again.failed_cached, again.cached) == (0, 0, 8, 8)
    retry = run_sweep(space, store, jobs=2, synthesizer=FAKE, progress=False,
                      retry_failed=True)
    assert (retry.computed, retry.failed, retry.cached) == (0, 8, 8)


def test_claims(tmp_path):
    """The claim protocol: done points are not taken again, a live owner's point is busy,
    a dead owner's point is taken over, and finishing counts successes."""
    with Store(tmp_path / "s.sqlite") as s:
        args = ("k", {"c": 1}, {}, {"t": 1}, True)
        assert s.claim(*args) == ("claimed", 1)
        # this process holds it: another live process sees it busy
        assert s.claim(*args, pid=os.getppid()) == ("busy", 1)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        s._db.execute("UPDATE points SET pid = ? WHERE key = 'k'", (dead.pid,))
        assert s.claim(*args) == ("claimed", 2)  # owner died: taken over
        s.finish("k", "done", {"area": 1.0})
        assert s.claim(*args) == ("done", 2)
        row = s.get("k")
        assert (row["attempts"], row["finishes"], row["successes"]) == (2, 1, 1)
        s.put_cycles("k", "w", {"cycles": 3})
        assert s.cycles("k") == {"w": {"cycles": 3}}


_SWEEP_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from pathlib import Path
from rcm_gen.dse.runner import run_sweep
from rcm_gen.dse.space import load_space
if __name__ == "__main__":
    run_sweep(load_space({space!r}), Path({store!r}), jobs=2, synthesizer={fake!r},
              progress=False)
"""


def _sweep_process(tmp_path, space_file, store, env, new_group=False):
    script = tmp_path / "sweep.py"
    script.write_text(_SWEEP_SCRIPT.format(here=str(HERE), space=str(space_file),
                                           store=str(store), fake=FAKE))
    return subprocess.Popen([sys.executable, str(script)], env=env,
                            start_new_session=new_group)


def _done(store):
    if not store.exists():
        return 0
    with Store(store) as s:
        return sum(r["status"] == "done" for r in s.rows())


@pytest.mark.slow
@pytest.mark.parametrize("whole_group", [False, True], ids=["sweep", "process-group"])
def test_kill_minus_9_then_resume(tmp_path, whole_group):
    """A sweep killed with SIGKILL mid-way — the sweep process alone (its workers finish
    and commit the points they hold, and the resumed sweep waits for them) or with its
    whole process group (the points in flight die with it and are computed once more) —
    resumes with no point lost and no completed point computed twice."""
    space_file = tmp_path / "space.toml"
    space_file.write_text(textwrap.dedent(SPACE))
    store = tmp_path / "k" / "store.sqlite"
    counter = tmp_path / "evaluations.txt"
    env = {**os.environ, "RCM_FAKE_SYNTH_DELAY": "0.4", "RCM_FAKE_SYNTH_LOG": str(counter)}
    proc = _sweep_process(tmp_path, space_file, store, env, new_group=whole_group)
    deadline = time.time() + 120
    while time.time() < deadline and _done(store) < 6:
        time.sleep(0.1)
    if whole_group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _done(store)
    assert 6 <= done_before < 24
    os.environ.update(RCM_FAKE_SYNTH_DELAY="0.4", RCM_FAKE_SYNTH_LOG=str(counter))
    try:
        stats = run_sweep(load_space(space_file), store, jobs=2, synthesizer=FAKE,
                          progress=False)
    finally:
        del os.environ["RCM_FAKE_SYNTH_DELAY"], os.environ["RCM_FAKE_SYNTH_LOG"]
    rows, cycles = _rows(store)
    lost = 24 - sum(r["status"] == "done" and len(cycles[r["key"]]) == 3 for r in rows)
    computed_twice = sum(r["successes"] > 1 for r in rows)
    recomputed = sum(r["attempts"] - 1 for r in rows)
    print(f"killed ({'process group' if whole_group else 'sweep process'}) with "
          f"{done_before} points done; resume: {stats.computed} computed, {stats.cached} "
          f"from the store ({stats.waited} waited for); lost {lost}, completed results "
          f"computed twice {computed_twice}, interrupted points computed again {recomputed}")
    assert lost == 0 and computed_twice == 0
    assert stats.cached >= done_before
    assert recomputed <= 2  # at most the points in flight on the two workers
    lines = counter.read_text().split("\n")
    assert len([x for x in lines if x]) <= 24 + recomputed


@pytest.mark.slow
def test_concurrent_sweeps_share_the_work(tmp_path):
    """Two sweeps of the same space on one store at once: every point is computed once."""
    space_file = tmp_path / "space.toml"
    space_file.write_text(textwrap.dedent(SPACE))
    store = tmp_path / "c" / "store.sqlite"
    env = {**os.environ, "RCM_FAKE_SYNTH_DELAY": "0.3"}
    a = _sweep_process(tmp_path, space_file, store, env)
    time.sleep(0.5)
    script_b = tmp_path / "b"
    script_b.mkdir()
    b = _sweep_process(script_b, space_file, store, env)
    assert a.wait(timeout=300) == 0 and b.wait(timeout=300) == 0
    rows, _ = _rows(store)
    assert len(rows) == 24
    assert all(r["status"] == "done" and r["successes"] == 1 for r in rows)


def _results(path):
    rows, cycles = _rows(path)
    strip = ("log", "synth_wall_s")
    return {r["key"]: ({k: v for k, v in r["result"].items() if k not in strip},
                       cycles[r["key"]]) for r in rows}


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_results(tmp_path):
    from distributed import LocalCluster

    space = _space(tmp_path)
    local = run_sweep(space, tmp_path / "a" / "store.sqlite", jobs=2, synthesizer=FAKE,
                      progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask = run_sweep(space, tmp_path / "b" / "store.sqlite",
                         scheduler=cluster.scheduler_address, synthesizer=FAKE,
                         progress=False)
        # workers that cannot reach the store hand their results to the sweep
        relay = run_sweep(space, tmp_path / "c" / "store.sqlite",
                          scheduler=cluster.scheduler_address, synthesizer=FAKE,
                          progress=False, direct=False)
        again = run_sweep(space, tmp_path / "c" / "store.sqlite",
                          scheduler=cluster.scheduler_address, synthesizer=FAKE,
                          progress=False, direct=False)
    assert local.computed == dask.computed == relay.computed == 24
    assert (again.computed, again.cached) == (0, 24)
    a = _results(tmp_path / "a" / "store.sqlite")
    assert a == _results(tmp_path / "b" / "store.sqlite")
    assert a == _results(tmp_path / "c" / "store.sqlite")


def test_nsga2_finds_a_front_close_to_the_grid(tmp_path):
    big = SPACE.replace('p = [1, 2, 4]', 'p = [1, 2, 4, 8]').replace(
        'tn = [2, 4]', 'tn = [1, 2, 4, 8]').replace('clock_ns = [5.0, 10.0]', 'clock_ns = [5.0]')
    space = _space(tmp_path, big)
    grid = run_sweep(space, tmp_path / "g.sqlite", jobs=2, synthesizer=FAKE, progress=False)
    nsga = run_sweep(space, tmp_path / "n.sqlite", jobs=2, synthesizer=FAKE, progress=False,
                     strategy="nsga2", budget=16, objective=("conv", "4"))
    ckey = next(c["key"] for c in space.cases() if c["precision"] == "4")

    def points(path, keys):
        rows, cycles = _rows(path, keys)
        return [(r["result"]["area"], cycles[r["key"]][ckey]["cycles"]
                 * r["result"]["critical_path_ns"]) for r in rows]

    g, n = points(tmp_path / "g.sqlite", grid.keys), points(tmp_path / "n.sqlite", nsga.keys)
    assert nsga.points == len(n) <= 16 < len(g) == 32
    ref = (max(x for x, _ in g) * 1.1, max(y for _, y in g) * 1.1)
    ratio = hypervolume(n, ref) / hypervolume(g, ref)
    print(f"grid {len(g)} points, NSGA-II {len(n)} points in 16 trials: "
          f"hypervolume ratio {ratio:.3f}")
    assert ratio >= 0.9


def test_outputs_and_fronts(tmp_path):
    space = _space(tmp_path)
    out = tmp_path / "o"
    stats = run_sweep(space, out / "store.sqlite", jobs=1, synthesizer=FAKE, progress=False)
    with Store(out / "store.sqlite") as s:
        summary = write_outputs(stats.tasks, s, space, out)
    with open(out / "results.csv") as f:
        results = list(csv.DictReader(f))
    assert len(results) == 24 * 3
    assert {"arch", "p", "tn", "clock_ns", "tm_per_p", "area", "fmax_mhz", "cycles",
            "latency_ns", "precision", "kind", "on_front"} <= set(results[0])
    with open(out / "pareto.csv") as f:
        front = list(csv.DictReader(f))
    for prec in ("16", "8", "4"):
        pts = [{"area": float(r["area"]), "latency_ns": float(r["latency_ns"]),
                "kind": r["kind"]} for r in results if r["precision"] == prec]
        got = [r for r in front if r["precision"] == prec]
        assert len(got) == len(pareto_front(pts)) > 0
        assert sum(r["on_front"] == "True" for r in results if r["precision"] == prec) \
            == len(got)
        for g in got:  # nothing in the sweep dominates a front point
            a, lat = float(g["area"]), float(g["latency_ns"])
            assert not any(i["area"] <= a and i["latency_ns"] <= lat
                           and (i["area"], i["latency_ns"]) != (a, lat) for i in pts)
            assert g["kind"] in ("configurable", "fixed")
            assert g["kind"] == ("configurable" if g["arch"] != "fixed" else "fixed")
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (out / "pareto.svg").read_text()[:1000]
    lines = summary.splitlines()
    assert lines[0].split()[:3] == ["workload", "bits", "points"]
    assert [ln.split()[:3] for ln in lines[1:]] == [["conv", p, "24"] for p in ("16", "8", "4")]


def test_fusion_points_run_asymmetric_layers_faster(tmp_path):
    """The arch knob takes fusion: its points are evaluated, and on 8-bit activations
    with 4-bit weights a fusion tile runs twice the products per cycle of its 8x8 mode,
    where a Sum-Together tile runs 8x4 in its 8-bit mode."""
    text = SPACE.replace('arch = ["booth", "fixed"]', 'arch = ["booth", "fusion"]').replace(
        "p = [1, 2, 4]", "p = [1]").replace("clock_ns = [5.0, 10.0]", "clock_ns = [5.0]"
    ).replace("bits = [16, 8, 4]", 'bits = [8, "8x4"]')
    space = _space(tmp_path, text)
    stats = run_sweep(space, tmp_path / "st.sqlite", jobs=1, synthesizer=FAKE, progress=False)
    assert stats.skipped == 0 and stats.computed == 4
    with Store(tmp_path / "st.sqlite") as store:
        write_outputs(stats.tasks, store, space, tmp_path / "o")
    with open(tmp_path / "o" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    lanes = {(r["arch"], r["tn"], r["precision"]): int(r["lanes_used"]) for r in rows}
    for tn in ("2", "4"):
        assert lanes[("booth", tn, "8")] == lanes[("booth", tn, "8x4")] == 2
        assert lanes[("fusion", tn, "8")] == 4 and lanes[("fusion", tn, "8x4")] == 8
