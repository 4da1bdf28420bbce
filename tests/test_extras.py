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
