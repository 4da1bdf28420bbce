"""The documentation runs: every docstring example of the public modules (doctest) and
every Python block of README.md; the documentation site's pages (docs/) keep their
examples runnable (the Sphinx doctest build runs them) and agree with the README.

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
    "gumbel_softmax._runtime",
    "gumbel_softmax._layer",
    "gumbel_softmax.torch",
    "gumbel_softmax.jax",
    "gumbel_softmax._jax_more",  # top_k, relaxed_bernoulli, relaxed_top_k of gsj
    "gumbel_softmax._jax_estimators",  # gumbel_rao, reinmax of gsj
    "gumbel_softmax.dask",
]
OPTIONAL = {
    "gumbel_softmax.torch": "torch",
    "gumbel_softmax.jax": "jax",
    "gumbel_softmax._jax_more": "jax",
    "gumbel_softmax._jax_estimators": "jax",
    "gumbel_softmax.dask": "dask",
}
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


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

    # (constants such as STREAM_VERSION are documented by their comment in the API page)
    missing = [
        name
        for name in gs.__all__
        if not name.startswith("__")
        and callable(getattr(gs, name))
        and ">>>" not in (getattr(gs, name).__doc__ or "")
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


def _docs_page(name):
    page = DOCS / name
    if not page.is_file():
        pytest.skip(f"{page} not found: run the suite from the source tree")
    return page.read_text(encoding="utf-8")


def _section(text, heading):
    """The body of the Markdown section that starts with ``heading`` (a whole line)."""
    start = text.index(heading + "\n") + len(heading) + 1
    level = heading.split(" ")[0]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", text[start:], flags=re.M)]
    return text[start : start + ends[0]] if ends else text[start:]


def test_readme_is_a_five_minute_read():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250, "README.md grew past 250 lines: move details to docs/"
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (ROOT / target).exists(), f"README.md links to a missing file: {target}"


def test_docs_code_blocks_all_run_as_doctests():
    """Every fenced block of the Markdown pages is a doctest directive (``testcode``,
    ``testoutput``, ``doctest``: the Sphinx doctest build runs it), a toctree, or shell
    commands / text (``console``, ``text``); a Python example cannot slip in unrun."""
    pages = sorted(DOCS.glob("*.md"))
    if not pages:
        pytest.skip("no docs/ pages in this checkout")
    allowed = {"{testcode}", "{testoutput}", "{doctest}", "{toctree}", "console", "text"}
    bad = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        in_block = False
        for number, line in enumerate(text.splitlines(), 1):
            if not line.startswith("```"):
                continue
            if not in_block and line[3:].strip() not in allowed:
                bad.append(f"{page.name}:{number}: {line}")
            in_block = not in_block
        assert not re.search(r"^(    |\t)>>> ", text, flags=re.M), page.name
    assert not bad, "code blocks the doctest build would not run:\n" + "\n".join(bad)
    for page in sorted(DOCS.rglob("*.rst")):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"^\.\. code(-block)?::", text, flags=re.M), page.name


def test_readme_demo_table_is_the_demo_output():
    """The demo's table in the README and on the user guide page is what
    ``python -m gumbel_softmax`` prints (it is a function of the seed)."""
    from gumbel_softmax.__main__ import temperature_table

    expected = [line.rstrip() for line in temperature_table()]
    readme = README.read_text(encoding="utf-8")
    block = re.search(r"^```\n( +categories\n.*?)^```", readme, flags=re.S | re.M).group(1)
    assert block.splitlines() == expected
    guide = _docs_page("user-guide.md")
    block = re.search(r"^```\{testoutput\}\n( +categories\n.*?)^```", guide, flags=re.S | re.M)
    assert block.group(1).splitlines() == expected


def test_readme_sections_agree_with_the_docs():
    """What the README keeps of the documentation is the documentation's text: the
    migration table and the reasons."""
    readme = README.read_text(encoding="utf-8")
    heading = "## Coming from `torch.nn.functional.gumbel_softmax`"
    table = [line for line in _section(readme, heading).splitlines() if line.startswith("|")]
    guide = _section(_docs_page("user-guide.md"), heading)
    assert len(table) > 5 and all(line in guide.splitlines() for line in table)
    why_readme = _section(readme, "## Why this library").replace("docs/", "")
    assert why_readme.strip() == _section(_docs_page("index.md"), "## Why this library").strip()


def test_docs_extra_declares_the_site_builders():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.is_file() or not (DOCS / "conf.py").is_file():
        pytest.skip("pyproject.toml or docs/conf.py is not next to the tests")
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    for dist, used in [
        ("sphinx", "sphinx.ext.doctest"),
        ("numpydoc", '"numpydoc"'),
        ("pydata-sphinx-theme", '"pydata_sphinx_theme"'),
        ("myst-parser", '"myst_parser"'),
    ]:
        assert any(req.startswith(dist) for req in extras["docs"]), dist
        assert used in conf, used


def test_api_reference_lists_every_public_name():
    """docs/api/index.rst has an autosummary entry for every public function and class of
    gumbel_softmax and of its torch, jax and dask modules (by their ``__all__``)."""
    import gumbel_softmax as gs

    text = _docs_page("api/index.rst")
    sections = re.split(r"^\.\. currentmodule:: ", text, flags=re.M)[1:]
    listed = {}
    for body in sections:
        module, _, rest = body.partition("\n")
        entries = re.findall(r"^   (\w+)$", rest, flags=re.M)
        listed.setdefault(module.strip(), set()).update(entries)
    assert set(listed.get("gumbel_softmax", ())) == {
        n for n in gs.__all__ if not n.startswith("__")
    }
    for name in ("torch", "jax", "dask"):
        module = f"gumbel_softmax.{name}"
        if importlib.util.find_spec(name) is None:
            continue
        expected = set(importlib.import_module(module).__all__)
        assert listed.get(module) == expected, (module, listed.get(module), expected)
