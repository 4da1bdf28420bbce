"""The benchmark suite's second section (``python bench/run.py --suite extra``).

Imports the suite (the ``gsbench`` package in bench/, next to tests/), builds every case
of the extra section on a small problem, calls it, and runs ``main`` with a tiny timing
configuration so that the test takes seconds.
"""

import json
import sys
import types
from pathlib import Path

import gumbel_softmax  # noqa: F401  (the package under test must import here too)
import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.skipif(
    not (BENCH / "gsbench").is_dir(), reason="no bench/gsbench next to tests/"
)


@pytest.fixture(scope="module")
def bench():
    """The suite's modules in one namespace: core, cases_main, cases_extra, runner,
    report and cli, and the names the tests use."""
    sys.path.insert(0, str(BENCH))
    try:
        from gsbench import cases_estimators, cases_extra, cli, core, report, runner
    finally:
        sys.path.remove(str(BENCH))
    names = {**vars(core), **vars(cases_extra), **vars(cases_estimators)}
    names.update(core=core, cases_extra=cases_extra, cli=cli, report=report, runner=runner)
    return types.SimpleNamespace(**names)


TINY = dict(min_time=1e-4, budget=1e-3, min_repeats=1, max_repeats=1)


@pytest.fixture
def fast(bench, monkeypatch):
    """A tiny timing configuration, no warm-up and no gc.collect between rows (which takes
    0.1 s or more once torch and JAX are imported)."""
    monkeypatch.setattr(bench.cli, "QUICK", bench.TimingConfig(**TINY))
    monkeypatch.setattr(bench.cli, "warm_up", lambda seconds=0.0: None)
    no_gc = type("NoGC", (), {"collect": staticmethod(lambda: 0)})
    monkeypatch.setattr(bench.runner, "gc", no_gc)
    monkeypatch.setattr(bench.cli, "gc", no_gc)
    monkeypatch.setattr(bench.report, "plot", lambda report, path: "no plot in tests")
    return bench


def test_extra_cases_unique_and_compared_with_existing_rows(bench):
    keys = [c.key for c in bench.EXTRA_CASES]
    assert len(keys) == len(set(keys))
    for case in bench.EXTRA_CASES:
        assert case.compare_to is None or case.compare_to in keys, case.key
        assert case.peer in ("ours", "numpy", "torch", "jax", "bound")


@pytest.mark.parametrize("shape,axis", [((6, 12), -1), ((12, 5), 0), ((7, 3), -1)])
def test_every_extra_case_runs(bench, shape, axis):
    p = bench.Problem.make(shape, axis, "float32")
    for case in bench.EXTRA_CASES:
        if bench._import_peer(case.peer) or bench._import_module(case.requires):
            continue
        case.make(p)()  # builds and calls without raising


def test_extra_peers_match_ours(bench):
    """The NumPy rows compute what ours computes (up to the noise): same shapes, and the
    formula rows (same inputs, no noise) the same values."""
    p = bench.Problem.make((5, 9), -1, "float64")
    np.testing.assert_allclose(
        bench._numpy_concrete(p)(), bench._ours_concrete(False)(p)(), rtol=1e-10
    )
    np.testing.assert_allclose(
        bench._numpy_bernoulli_backward(p)(), bench._ours_bernoulli_backward(p)(), rtol=1e-12
    )
    k = min(bench.TOP_K, 9)
    assert bench._numpy_top_k(False)(p)().shape == bench._ours_top_k(p)().shape == (5, k)
    assert bench._numpy_categorical(p)().shape == bench._ours_categorical(p)().shape == (5,)


def test_torch_estimator_peers_compute_ours(bench):
    """The PyTorch compositions of the estimator rows compute what ours computes: ReinMax
    the same values (float64, 1e-12); Gumbel-Rao the same conditional expectation (the
    noise differs): over 4000 rows of one logit vector, sharing their hard samples, the
    per-coordinate means agree (Welch z-test, two-sided, alpha = 1e-6 per coordinate)."""
    torch = pytest.importorskip("torch")
    from scipy import stats

    p = bench.Problem.make((6, 9), -1, "float64")
    np.testing.assert_allclose(
        bench._torch_reinmax(p)().numpy(),
        bench._ours_reinmax(bench.REINMAX_TAU)(p)(),
        rtol=0,
        atol=1e-12,
    )
    x = np.tile(np.array([0.5, -1.0, 0.0, 1.5, -0.3]), (4000, 1))
    g = np.tile(np.array([1.0, -2.0, 0.5, 0.0, 0.7]), (4000, 1))
    q = bench.Problem((4000, 5), -1, np.dtype(np.float64), x, g, x)
    torch.manual_seed(0)
    ours = bench._ours_gumbel_rao(bench.SAMPLES)(q)()
    theirs = bench._torch_gumbel_rao(q)().numpy()
    se = np.sqrt((ours.var(0, ddof=1) + theirs.var(0, ddof=1)) / len(x))
    z = (ours.mean(0) - theirs.mean(0)) / se
    assert (np.abs(z) < stats.norm.isf(1e-6 / 2)).all(), z


def test_subset_peers_compute_relaxed_top_k(bench):
    """The NumPy and torch relaxed_top_k rows compute our formula: on our noise, NumPy's
    steps equal gs.relaxed_top_k (float64, well-conditioned tau), and the torch row
    sums to k."""
    sys.path.insert(0, str(BENCH))
    try:
        from gsbench import cases_subset
    finally:
        sys.path.remove(str(BENCH))
    x = np.random.default_rng(0).standard_normal((6, 12))
    g = gumbel_softmax.gumbel(x.shape, dtype=np.float64, rng=3)
    got = cases_subset.numpy_relaxed_steps(x + g, 4, 0.5, -1)
    np.testing.assert_allclose(got, gumbel_softmax.relaxed_top_k(x, 4, 0.5, rng=3), atol=1e-12)
    assert cases_subset.SUBSET_CASES[0].compare_to == "ours.soft"
    if bench._import_peer("torch") is None:
        p = bench.Problem.make((5, 9), -1, "float64")
        y = cases_subset._torch_subset(p)().numpy()
        np.testing.assert_allclose(y.sum(-1), min(cases_subset.SUBSET_K, 9), rtol=1e-12)


def test_numpy_top_k_is_ordered(bench):
    p = bench.Problem.make((4, 30), -1, "float32")
    gen = np.random.default_rng(1)
    v = bench._numpy_noisy(p, gen)
    idx = bench._numpy_top_k(False)(p)()  # same generator seed: the same noise
    np.testing.assert_array_equal(idx, np.argsort(-v, axis=-1, kind="stable")[:, : bench.TOP_K])


def test_main_extra_suite(fast, tmp_path, capsys):
    bench = fast
    rc = bench.cli.main(
        ["--suite", "extra", "--quick", "--shapes", "8x12,16x4", "--out-dir", str(tmp_path)]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "Beyond gumbel_softmax" in out
    assert "ours categorical" in out and "Soft forward (tau=0.5)" not in out
    report = json.loads(next(tmp_path.glob("*-extra-quick.json")).read_text())
    assert report["suites"] == ["extra"] and report["results"] == []
    assert len(report["extra_results"]) == 2
    for res in report["extra_results"]:
        assert res["section"] == "extra"
        by_key = {r["key"]: r for r in res["cases"]}
        assert by_key["ours.categorical"]["status"] == "ok"
        assert "vs_ours" in by_key["ours.hard"]  # hard=True / categorical, measured
        assert by_key["ours.soft_mask"]["status"] == "ok"
        for r in res["cases"]:
            assert r["status"] == "ok" or r["status"] == bench.NOT_INSTALLED, r


def test_main_default_runs_both_sections(fast, tmp_path, capsys):
    bench = fast
    assert bench.cli.main(["--quick", "--shapes", "8x12", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Soft forward (tau=0.5)" in out and "Beyond gumbel_softmax" in out
    report = json.loads(next(tmp_path.glob("*-quick.json")).read_text())
    assert report["suites"] == ["main", "extra"]
    assert len(report["results"]) == 1 and len(report["extra_results"]) == 1
    assert report["results"][0]["section"] == "main"
