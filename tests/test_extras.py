"""The optional integrations stay optional: ``import gumbel_softmax`` imports none of
torch, JAX, Dask, threadpoolctl, ml_dtypes or matplotlib, and each integration module,
imported where its dependency is missing, raises ImportError naming the extra to
install (checked in a subprocess that blocks the dependency)."""

import pytest
from helpers import run_python

OPTIONAL = [
    "torch",
    "jax",
    "jaxlib",
    "dask",
    "distributed",
    "threadpoolctl",
    "ml_dtypes",
    "matplotlib",
    "scipy",
]


def _run(code):
    proc = run_python(code, timeout=None)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_gumbel_softmax_imports_no_optional_dependency():
    out = _run(
        f"""
        import sys
        import numpy as np
        import gumbel_softmax as gs
        gs.gumbel_softmax(np.zeros((3, 4)), rng=0, hard=True)
        print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "module,blocked,extra",
    [
        ("torch", ["torch"], "torch"),
        ("jax", ["jax"], "jax"),
        ("dask", ["dask", "dask.array"], "dask"),
    ],
)
def test_integration_without_its_dependency_says_what_to_install(module, blocked, extra):
    out = _run(
        f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None  # import of it raises ImportError
        try:
            import gumbel_softmax.{module}
        except ImportError as exc:
            print(exc)
        else:
            print("imported")
        """
    )
    assert f"gumbel-softmax[{extra}]" in out, out


def test_extras_are_declared():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("pyproject.toml is not next to the tests (installed tests)")
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for extra, dist in [
        ("torch", "torch"),
        ("jax", "jax"),
        ("dask", "dask"),
        ("dask", "distributed"),
        ("test", "threadpoolctl"),
    ]:
        assert any(req.startswith(dist) for req in extras[extra]), (extra, dist)


def test_ci_installs_a_peer_for_every_extra():
    """.ci/peers.txt (what CI installs, so that no peer's test skips there) names a
    distribution of every extra of pyproject.toml but test and docs, torch as its CPU
    build; .ci/run and scripts/sanitize.sh read it instead of a list of their own."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    peers_file = root / ".ci" / "peers.txt"
    if not peers_file.is_file():
        pytest.skip(".ci/peers.txt is not next to the tests (installed tests)")
    lines = [ln.split("#")[0].strip() for ln in peers_file.read_text().splitlines()]
    peers = [ln for ln in lines if ln]

    def name(req):
        return re.match(r"[A-Za-z0-9_.-]+", req).group(0).lower().replace("_", "-")

    names = {name(p) for p in peers}
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, reqs in extras.items():
        if extra in ("test", "docs"):
            continue
        for req in reqs:
            assert name(req) in names, (extra, req, sorted(names))
    assert "torch==2.13.0" in peers, peers
    # .ci/run passes the list to sanitize.sh as one string split at spaces
    assert not any(any(c.isspace() for c in p) for p in peers), peers
    for script in (".ci/run", "scripts/sanitize.sh"):
        text = (root / script).read_text()
        assert ".ci/peers.txt" in text, script
        assert "jax>=" not in text, f"{script} keeps a list of its own"


def test_link_peers_puts_a_directory_after_the_environment(tmp_path):
    """scripts/link_peers.py, by which .ci/run gives each of its virtual environments the
    peers installed once with ``pip install --target``: in a fresh environment, a module
    only in the directory imports from there and its distribution's metadata is found
    (what pip reads to take it as installed); a module in both comes from the
    environment; a missing directory is refused with exit status 2, nothing written."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "link_peers.py"
    if not script.is_file():
        pytest.skip("scripts/link_peers.py is not next to the tests (installed tests)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = str(venv / "bin" / "python")

    def out(*args):
        proc = subprocess.run([vpy, *args], capture_output=True, text=True)
        return proc.returncode, proc.stdout, proc.stderr

    site = out("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")[1].strip()
    peers = tmp_path / "peers"
    (peers / "gs_probe_only-1.2.3.dist-info").mkdir(parents=True)
    (peers / "gs_probe_only-1.2.3.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gs-probe-only\nVersion: 1.2.3\n"
    )
    (peers / "gs_probe_only.py").write_text("WHERE = 'peers'\n")
    (peers / "gs_probe_both.py").write_text("WHERE = 'peers'\n")
    Path(site, "gs_probe_both.py").write_text("WHERE = 'venv'\n")
    probe = (
        "import importlib.metadata as m, gs_probe_both as b, gs_probe_only as o; "
        "print(b.WHERE, o.WHERE, m.version('gs-probe-only'))"
    )
    assert out("-c", probe)[0] != 0  # not importable before

    rc, stdout, stderr = out(str(script), str(tmp_path / "missing"))
    assert rc == 2 and "is not a directory" in stderr, (rc, stdout, stderr)
    assert not os.path.exists(os.path.join(site, "gs_ci_peers.pth"))

    rc, stdout, stderr = out(str(script), str(peers))
    assert rc == 0, (stdout, stderr)
    assert out("-c", probe)[1].split() == ["venv", "peers", "1.2.3"]


def test_lsan_suppressions_cover_the_peers_where_ci_installs_them():
    """scripts/lsan.supp suppresses the exit-time allocations of NumPy, SciPy and PyTorch
    by their modules' paths: each such path is given for an ordinary install
    (site-packages/) and for .ci/run's directory of peers (build/ci-peers/, linked into
    the sanitizer's environment by scripts/link_peers.py).  With only the first, CI's
    sanitizer run failed on torch's leaks at exit (2026-12-07)."""
    from pathlib import Path

    supp = Path(__file__).resolve().parent.parent / "scripts" / "lsan.supp"
    if not supp.is_file():
        pytest.skip("scripts/lsan.supp is not next to the tests (installed tests)")
    lines = [ln.strip() for ln in supp.read_text().splitlines()]
    libs = [
        ln[len("leak:site-packages/") :] for ln in lines if ln.startswith("leak:site-packages/")
    ]
    assert sorted(libs) == ["numpy/", "scipy/", "torch/"], libs
    for lib in libs:
        assert f"leak:build/ci-peers/{lib}" in lines, lib
    assert "build/ci-peers" in (supp.parent.parent / ".ci" / "run").read_text()
