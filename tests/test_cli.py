"""The command line demo: ``python -m gumbel_softmax``."""

import os
import subprocess
import sys

import gumbel_softmax  # noqa: F401  (the package under test must import here too)


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
        env=_subprocess_env(), cwd=str(tmp_path), capture_output=True, text=True,
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
