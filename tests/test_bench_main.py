"""The benchmark suite's first section (``python bench/run.py --suite main``), its goals
table and the performance page generator (``python bench/perf_page.py``).

Imports the suite (the ``gsbench`` package in bench/, next to tests/), builds every case
of the first section on small problems and calls it, checks that the NumPy peers compute
the Gumbel-Softmax they claim to (against a reference written here from the same uniform
draws), and checks the goal verdicts and the regenerated page on synthetic runs. Nothing
here is timed: the synthetic runs carry made-up timings.
"""

import copy
import json
import sys
import types
from pathlib import Path

import gumbel_softmax  # noqa: F401  (the package under test must import here too)
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.skipif(
    not (BENCH / "gsbench").is_dir() or not (BENCH / "perf_page.py").is_file(),
    reason="no bench/gsbench and bench/perf_page.py next to tests/",
)


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import perf_page
        from gsbench import cases_main, cli, core, goals, report, runner
    finally:
        sys.path.remove(str(BENCH))
    names = {**vars(core), **vars(cases_main), **vars(goals)}
    names.update(
        core=core, cases_main=cases_main, cli=cli, goals=goals, report=report, runner=runner
    )
    names.update(perf_page=perf_page)
    return types.SimpleNamespace(**names)


def test_main_cases_unique_and_compared_with_existing_rows(bench):
    keys = [c.key for c in bench.CASES]
    assert len(keys) == len(set(keys))
    for case in bench.CASES:
        assert case.compare_to is None or case.compare_to in keys, case.key
        assert case.peer in ("ours", "numpy", "torch", "jax", "bound")
    for _, rows, _, _ in bench.PEER_GOALS:  # every goal names rows that exist
        assert all(k in keys for ks in rows.values() for k in ks)


@pytest.mark.parametrize("shape,axis", [((6, 12), -1), ((12, 5), 0)])
def test_every_main_case_runs(bench, shape, axis):
    """Every row, including those that a run keeps to the goal shapes, builds and runs."""
    p = bench.Problem.make(shape, axis, "float32")
    with np.errstate(divide="ignore"):  # the documented log(0) hole of the NumPy rows
        for case in bench.CASES:
            if bench._import_peer(case.peer) or bench._import_module(case.requires):
                continue
            case.make(p)()


def _uniforms(p, calls=1):
    gen = np.random.default_rng(1)  # the seed of the NumPy rows
    return [gen.random(p.shape, dtype=p.dtype) for _ in range(calls)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_numpy_in_place_forward_is_gumbel_softmax(bench, dtype, axis, tau):
    """The in-place NumPy row computes softmax((x - log(-log u)) / tau) over the axis, in
    the logits' dtype, from its generator's uniforms; a second call draws new ones."""
    p = bench.Problem.make((7, 9), axis, dtype)
    call = bench._numpy_forward(tau)(p)
    for u in _uniforms(p, calls=2):
        y = call().copy()
        z = (p.x.astype(np.float64) - np.log(-np.log(u.astype(np.float64)))) / tau
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        ref = e / e.sum(axis=axis, keepdims=True)
        assert y.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y, ref, rtol=1e-4 if dtype == "float32" else 1e-12)


def test_numpy_in_place_noise_and_backward(bench):
    p = bench.Problem.make((5, 11), -1, "float64")
    (u,) = _uniforms(p)
    np.testing.assert_allclose(bench._numpy_gumbel(p)(), -np.log(-np.log(u)), rtol=1e-14)
    g, y = p.grad_y, p.y_soft
    ref = y * (g - (g * y).sum(axis=-1, keepdims=True)) / bench.TAU
    np.testing.assert_allclose(bench._numpy_backward(p)(), ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        bench._numpy_backward(p)(), bench._ours_backward(p)(), rtol=1e-10, atol=1e-15
    )


def test_tau1_peer_rows_run_on_the_goal_shapes_only(bench):
    tau1 = [c for c in bench.CASES if c.key.endswith("tau1") and c.peer != "ours"]
    assert {c.peer for c in tau1} == {"numpy", "torch", "jax"}
    assert all(c.shapes == bench.GOAL_SHAPES for c in tau1)
    p = bench.Problem.make((8, 12), -1, "float32")
    cfg = bench.TimingConfig(min_time=1e-4, budget=1e-3, min_repeats=1, max_repeats=1)
    only_ours = tuple(c for c in bench.CASES if c.ours and c.requires is None) + tuple(tau1)
    result = bench.runner.run_problem(p, cfg, lambda s: None, only_ours)
    assert not any(r["key"].endswith("tau1") and r["peer"] != "ours" for r in result["cases"])


# ---------------------------------------------------------------------------------------
# Goals and the performance page, on a synthetic run (made-up times, no timing)


def _record(key, per_call, peer, compare_to=None, one=None, size=4096 * 1000):
    r = {
        "key": key,
        "label": key,
        "peer": peer,
        "compare_to": compare_to,
        "status": "ok",
        "per_call_s": per_call,
        "melem_per_s": size / per_call / 1e6,
    }
    if one is not None:
        r["one_thread"] = {"per_call_s": one, "melem_per_s": size / one / 1e6}
        r["thread_speedup"] = one / per_call
    if compare_to is not None:
        r["vs_ours"] = None  # filled below
    return r


def _synthetic_report(target="avx512", threads=2):
    """ours 4 ms on 2 threads and 8 ms on 1 (1,024 M elem/s); NumPy 24 ms (3x per core),
    torch 100 ms (25x), JAX 60 ms with threefry and 50 ms with rbg (12.5x)."""
    cases = [
        _record("ours.soft", 4e-3, "ours", one=8e-3),
        _record("ours.soft_tau1", 3e-3, "ours", one=6e-3),
        _record("ours.hard", 3.5e-3, "ours", one=7e-3),
        _record("numpy.soft", 24e-3, "numpy", "ours.soft"),
        _record("numpy.soft_tau1", 12e-3, "numpy", "ours.soft_tau1"),
        _record("numpy.soft_f64", 80e-3, "numpy", "ours.soft"),
        _record("torch.soft", 100e-3, "torch", "ours.soft"),
        _record("torch.soft_tau1", 100e-3, "torch", "ours.soft_tau1"),
        _record("torch.hard", 120e-3, "torch", "ours.hard"),
        _record("jax.soft", 60e-3, "jax", "ours.soft"),
        _record("jax.soft_rbg", 50e-3, "jax", "ours.soft"),
        _record("jax.soft_tau1", 60e-3, "jax", "ours.soft_tau1"),
        _record("jax.soft_rbg_tau1", 70e-3, "jax", "ours.soft_tau1"),
        _record("bound.copy", 1e-3, "bound", "ours.soft"),
    ]
    by_key = {r["key"]: r for r in cases}
    for r in cases:
        if r["compare_to"]:
            r["vs_ours"] = r["per_call_s"] / by_key[r["compare_to"]]["per_call_s"]
    result = {"dtype": "float32", "shape": [4096, 1000], "axis": -1, "size": 4096 * 1000}
    result.update(section="main", cases=cases)
    return {
        "bench_version": 2,
        "date": "2026-12-05T12:00:00",
        "command": "/venv/bin/python bench/run.py --quick",
        "argv": ["--quick"],
        "mode": "quick",
        "suites": ["main"],
        "config": {"min_time": 0.01},
        "machine": {
            "cpu_model": "Test CPU",
            "cpu_flags": ["avx512f", "avx2"],
            "cores": 2,
            "cpu_target": target,
            "cpu_targets": ["baseline", "avx2", "avx512"],
            "gs_num_threads": threads,
            "peer_threads": {"ours": threads, "numpy": 1, "torch": threads},
            "versions": {"numpy": "2", "torch": "2", "jax": "0", "python": "3"},
        },
        "load_average_start": [0.1, 0.1, 0.1],
        "load_average_end": [0.2, 0.1, 0.1],
        "elapsed_s": 60.0,
        "results": [result],
        "extra_results": [],
    }


def _by(rows, kind, tau, peer=None):
    (row,) = [
        r
        for r in rows
        if r["kind"] == kind and r["tau"] == tau and (peer is None or r["peer"] == peer)
    ]
    return row


def test_goal_rows_verdicts(bench):
    rows = bench.goal_rows(_synthetic_report())
    numpy = _by(rows, "peer", 0.5, "NumPy float32 in place")
    assert numpy["threads"] == 1 and numpy["ratio"] == pytest.approx(3.0) and numpy["met"]
    torch = _by(rows, "peer", 0.5, "torch F.gumbel_softmax")
    assert torch["ratio"] == pytest.approx(25.0) and not torch["met"]
    jax = _by(rows, "peer", 0.5, "JAX jit")
    assert jax["peer_key"] == "jax.soft_rbg" and jax["ratio"] == pytest.approx(12.5)
    assert jax["met"]
    assert _by(rows, "peer", 1.0, "JAX jit")["peer_key"] == "jax.soft_tau1"
    assert not _by(rows, "peer", 1.0, "NumPy float32 in place")["met"]  # 12 / 6 = 2x
    limit = _by(rows, "limit", 0.5)
    assert limit["ratio"] == pytest.approx(1024 / 1310) and not limit["met"]
    assert _by(rows, "limit", 1.0)["limit_melem_per_s"] == 1590
    assert _by(rows, "threads", 0.5)["ratio"] == pytest.approx(2.0)
    assert _by(rows, "threads", 0.5)["met"]
    assert bench.missing_goal_shapes(_synthetic_report()) == [(16384, 4096)]
    avx2 = bench.goal_rows(_synthetic_report(target="avx2"))
    assert _by(avx2, "limit", 0.5)["limit_melem_per_s"] == 965
    assert not [r for r in bench.goal_rows(_synthetic_report("baseline")) if r["kind"] == "limit"]


def test_goals_markdown_names_the_verdicts(bench):
    text = "\n".join(bench.goals_markdown(_synthetic_report(threads=4)))
    assert "| 3.00x | >= 2.6x | met |" in text  # per core: 1 thread, whatever the run's
    assert "| 12.50x | >= 12x | met (goal stated for 2 threads; this run: 4) |" in text
    assert "| 25.00x | >= 30x | **not met** (goal stated for 2 threads" in text
    assert "(16384, 4096): not in this run (`--quick` skips it)" in text


PAGE = """# Title
hand-written intro

<!-- perf_page:main begin: generated -->
old figures
<!-- perf_page:main end -->

hand-written middle

<!-- perf_page:extra begin -->
<!-- perf_page:extra end -->

hand-written end
"""
CLAIM = """## Why
- **Speed.** prose.
  <!-- perf_page:claim begin -->
  old claim
  <!-- perf_page:claim end -->
"""


def test_perf_page_regenerates_only_the_blocks(bench, tmp_path):
    run = tmp_path / "run.json"
    run.write_text(json.dumps(_synthetic_report()))
    page, readme = tmp_path / "docs" / "performance.md", tmp_path / "README.md"
    index = tmp_path / "docs" / "index.md"
    page.parent.mkdir()
    page.write_text(PAGE)
    readme.write_text(CLAIM)
    index.write_text(CLAIM)
    argv = [str(run), "--page", str(page), "--claims", str(readme), str(index), "--no-plot"]
    assert bench.perf_page.main(argv + ["--check"]) == 1
    assert page.read_text() == PAGE  # --check writes nothing
    assert bench.perf_page.main(argv) == 0
    text = page.read_text()
    for hand in ("hand-written intro", "hand-written middle", "hand-written end"):
        assert hand in text
    assert "old figures" not in text
    prose = " ".join(text.split())  # the generated paragraphs are wrapped
    assert "python bench/run.py --quick" in prose and "Test CPU, 2 cores" in prose
    assert "| (4096, 1000) | 0.5 | ours on 1 thread vs NumPy float32 in place" in text
    assert "12.5x" in text  # JAX: the rbg row, the faster one
    assert "The second section (`--suite extra`) was not in this run." in text
    claim_readme, claim_index = readme.read_text(), index.read_text()
    claim = " ".join(claim_readme.split())
    assert "3.00x faster than the float32" in claim and "25.0x faster" in claim
    assert "(docs/performance.md)" in claim_readme and "(performance.md)" in claim_index
    assert claim_readme.replace("docs/", "") == claim_index  # the README keeps the docs' text
    assert "  <!-- perf_page:claim end -->" in claim_index  # the indent of the list item
    assert "busy machine" not in claim  # load average 0.1 on 2 cores
    assert bench.perf_page.main(argv + ["--check"]) == 0  # regenerating changes nothing


def test_perf_page_refuses_runs_of_the_old_suite(bench, tmp_path):
    old = copy.deepcopy(_synthetic_report())
    del old["bench_version"]  # its "numpy.soft" row was the float64 composition
    run = tmp_path / "old.json"
    run.write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="older suite"):
        bench.perf_page.main([str(run), "--check", "--no-plot"])


def test_main_section_report_has_the_goals(bench, tmp_path, monkeypatch, capsys):
    """``main`` on a tiny problem: the goals table, the machine's flags and threads."""
    monkeypatch.setattr(
        bench.cli, "QUICK", bench.TimingConfig(min_time=1e-4, budget=1e-3, min_repeats=1,
                                               max_repeats=1)
    )  # fmt: skip
    monkeypatch.setattr(bench.cli, "warm_up", lambda seconds=0.0: None)
    monkeypatch.setattr(bench.report, "plot", lambda report, path: "no plot in tests")
    no_gc = type("NoGC", (), {"collect": staticmethod(lambda: 0)})  # 0.1 s a row with torch
    monkeypatch.setattr(bench.runner, "gc", no_gc)
    monkeypatch.setattr(bench.cli, "gc", no_gc)
    argv = ["--suite", "main", "--quick", "--shapes", "8x12", "--out-dir", str(tmp_path)]
    assert bench.cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Goals of issue 15" in out and "(4096, 1000): not in this run" in out
    report = json.loads(next(tmp_path.glob("*-main-quick.json")).read_text())
    assert report["bench_version"] >= 2 and report["goals"] == []
    machine = report["machine"]
    assert machine["peer_threads"]["ours"] == machine["gs_num_threads"]
    assert isinstance(machine["cpu_flags"], list)
    by_key = {r["key"]: r for r in report["results"][0]["cases"]}
    assert by_key["numpy.soft"]["status"] == "ok" and "in place" in by_key["numpy.soft"]["label"]
