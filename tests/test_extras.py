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
