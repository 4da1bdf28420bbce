"""Run the benchmark suite: ``python bench/run.py [--quick] [--dtype ...] [--shapes ...]``.

A thin wrapper around ``gumbel_softmax._bench.main`` (also ``python -m gumbel_softmax
bench``); see bench/README.md.  It benchmarks the *installed* package.  The suite's code
is taken from this checkout (python/gumbel_softmax/_bench.py) when it is there, so that
edits to it need no reinstall, else from the installed package.
"""

import importlib.util
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "python" / "gumbel_softmax" / "_bench.py"


def _load_suite():
    if SOURCE.is_file():
        spec = importlib.util.spec_from_file_location("gumbel_softmax_bench", SOURCE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    from gumbel_softmax import _bench

    return _bench


if __name__ == "__main__":
    sys.exit(_load_suite().main())
