"""The command line demo: ``python -m gumbel_softmax``."""

import os
import subprocess
import sys
from pathlib import Path

import gumbel_softmax  # noqa: F401  (the package under test must import here too)
import numpy as np
import pytest


def _subprocess_env():
    """The environment for a child interpreter that imports the same package."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _run(args, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "gumbel_softmax", *args],
        env=_subprocess_env(),
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_runs(tmp_path):
    proc = _run([], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tau" in proc.stdout.lower(), proc.stdout
    assert "Traceback" not in proc.stderr


def test_help(tmp_path):
    proc = _run(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "--help printed nothing"
    assert "Traceback" not in proc.stderr


def test_demo_prints_every_temperature_and_the_timing(tmp_path):
    proc = _run(["--draws", "2000"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for tau in ("0.1", "0.5", "1", "5"):
        assert f"tau = {tau}  one sample" in proc.stdout, proc.stdout
    assert "softmax(logits)" in proc.stdout and "hard one-hot freq." in proc.stdout
    assert "gumbel_softmax (this library)" in proc.stdout and "NumPy composition" in proc.stdout
    assert "timing 1/" in proc.stderr  # the progress display


def test_bench_points_to_the_source_tree_and_plot_help(tmp_path):
    """The benchmark suite lives in bench/, outside the installed package."""
    proc = _run(["bench"], tmp_path)
    assert proc.returncode != 0 and "bench/run.py" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _run(["--help"], tmp_path)
    assert "--plot" in proc.stdout and "bench/run.py" in proc.stdout


def test_bench_run_help(tmp_path):
    """``python bench/run.py --help`` from a source checkout (skipped elsewhere)."""
    run_py = Path(__file__).resolve().parents[1] / "bench" / "run.py"
    if not run_py.is_file():
        pytest.skip("no bench/run.py next to tests/")
    proc = subprocess.run(
        [sys.executable, str(run_py), "--help"],
        env=_subprocess_env(),
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "--quick" in proc.stdout, proc.stderr
    assert "--suite" in proc.stdout


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the plot extra)")
    out = tmp_path / "tau.png"
    proc = _run(["--draws", "2000", "--no-timing", "--plot", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_means_follow_the_temperature():
    """The demo's numbers mean what the table says.  At tau = 0.1 the sample mean is
    within 0.011 of softmax(logits): the bias of tau = 0.1 is below 0.001 for these
    logits (measured with 2e6 draws) and the standard error of a mean of 50000 draws at
    most 0.0023, so 0.01 is over 4.3 standard errors beyond the bias, a false alarm rate
    below 1e-4 over the five categories.  At tau = 5 the mean is closer to uniform than
    to softmax(logits) in every category (by margins over 50 standard errors)."""
    from gumbel_softmax.__main__ import DEMO_PROBS, temperature_samples

    samples = temperature_samples(50_000, taus=(0.1, 5.0), seed=3)
    np.testing.assert_allclose(samples[0.1].mean(axis=0), DEMO_PROBS, atol=0.011)
    mean5 = samples[5.0].mean(axis=0)
    assert (np.abs(mean5 - 0.2) < np.abs(mean5 - DEMO_PROBS)).all(), mean5
    for y in samples.values():
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
