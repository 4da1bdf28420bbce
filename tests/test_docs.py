"""The documentation runs: every docstring example of the public modules (doctest) and
every Python block of README.md.

Docstring examples show properties (shapes, sums, equalities), not outputs copied from
a run.  A module whose optional dependency is missing (torch, jax, dask) is skipped with
the reason; CI installs them all.  README blocks run in order in one namespace, as a
reader would paste them; a block that imports an optional package skips when it is
missing.
"""

import doctest
import importlib
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

MODULES = [
    "gumbel_softmax",
    "gumbel_softmax._api",
    "gumbel_softmax._layer",
    "gumbel_softmax.torch",
    "gumbel_softmax.jax",
    "gumbel_softmax.dask",
]
OPTIONAL = {
    "gumbel_softmax.torch": "torch",
    "gumbel_softmax.jax": "jax",
    "gumbel_softmax.dask": "dask",
}
README = Path(__file__).resolve().parents[1] / "README.md"


def _doctests():
    cases = []
    for name in MODULES:
        if name in OPTIONAL and importlib.util.find_spec(OPTIONAL[name]) is None:
            cases.append(
                pytest.param(
                    name,
                    None,
                    marks=pytest.mark.skip(reason=f"{OPTIONAL[name]} is not installed"),
                    id=name,
                )
            )
            continue
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder(exclude_empty=True).find(module):
            if test.examples:
                cases.append(pytest.param(name, test.name, id=test.name))
    return cases


@pytest.mark.parametrize("module_name, test_name", _doctests())
def test_docstring_examples(module_name, test_name):
    module = importlib.import_module(module_name)
    (test,) = [t for t in doctest.DocTestFinder().find(module) if t.name == test_name]
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    with np.errstate(all="raise"):
        result = runner.run(test, out=report.append)
    assert result.failed == 0, "".join(report)


def test_every_public_function_has_an_example():
    import gumbel_softmax as gs

    missing = [
        name
        for name in gs.__all__
        if not name.startswith("__") and ">>>" not in (getattr(gs, name).__doc__ or "")
    ]
    assert not missing, f"public names without a docstring example: {missing}"


def _readme_blocks():
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_python_blocks_run():
    if not README.exists():
        pytest.fail(f"{README} not found: run the suite from the source tree")
    blocks = _readme_blocks()
    assert len(blocks) >= 3, "README.md lost its examples"
    namespace = {}
    for i, block in enumerate(blocks):
        needs = set(re.findall(r"^\s*(?:import|from) (torch|jax|dask)\b", block, flags=re.M))
        missing = [m for m in needs if importlib.util.find_spec(m) is None]
        if missing:
            continue  # CI installs them; the module doctests above skip with a reason
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - report which block failed
            raise AssertionError(f"README.md python block {i + 1} failed:\n{block}") from exc
