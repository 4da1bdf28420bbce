"""Run the benchmark suite: ``python bench/run.py [--quick] [--suite ...] [--dtype ...]
[--shapes ...]``.

The suite is the ``gsbench`` package next to this file (see bench/README.md); it times
the *installed* gumbel_softmax, so install it first (``pip install .``).
"""

import sys

from gsbench.cli import main

if __name__ == "__main__":
    sys.exit(main())
