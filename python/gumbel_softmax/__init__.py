"""Fast, reproducible Gumbel-Softmax samples and gradients for NumPy on the CPU.

>>> import numpy as np, gumbel_softmax as gs
>>> y = gs.gumbel_softmax(np.zeros((2, 5), np.float32), tau=0.5, rng=gs.Philox(0))
>>> y.shape
(2, 5)
"""

import os as _os
from typing import Final as _Final

# GNU OpenMP (libgomp) reads GOMP_SPINCOUNT once, when the library loads, which is when
# _core is imported (the wheel bundles its own copy).  Its default lets an idle worker
# spin for about 300,000 iterations after each parallel call; interleaved with NumPy's
# multithreaded BLAS on a machine with few cores, the spinning workers of both take the
# cores from each other and a training step of small calls runs 10-100x slower (docs/user-guide.md,
# "Threads and SIMD targets").  1000 iterations keep back-to-back calls of ours as fast
# and let the cores go between calls.  A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins,
# and the variable is removed again, so that other libraries' runtimes are unaffected.
_SPIN_ENV = "GOMP_SPINCOUNT"
_set_spin = not ({_SPIN_ENV, "OMP_WAIT_POLICY"} & set(_os.environ))
if _set_spin:
    _os.environ[_SPIN_ENV] = "1000"
try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without a built extension
    raise ImportError(
        "gumbel_softmax._core could not be imported: was the extension built? "
        "Install the package with `pip install .` from the source tree."
    ) from exc
finally:
    if _set_spin:
        del _os.environ[_SPIN_ENV]

from ._api import (  # noqa: E402 (after the environment set-up above)
    Philox,
    categorical,
    concrete_log_prob,
    conditional_gumbel,
    gumbel,
    gumbel_softmax,
    gumbel_softmax_backward,
    log_gumbel_softmax,
    logistic,
    relaxed_bernoulli,
    relaxed_bernoulli_backward,
    top_k,
)
from ._estimators import gumbel_rao_backward, reinmax_backward  # noqa: E402
from ._layer import GumbelSoftmax, anneal_tau  # noqa: E402
from ._runtime import (  # noqa: E402
    cpu_target,
    cpu_targets,
    get_num_threads,
    philox4x32,
    set_num_threads,
)
from ._subset import relaxed_top_k, relaxed_top_k_backward  # noqa: E402

# The one place of the version: pyproject.toml reads it (dynamic = ["version"]).
__version__ = "0.1.0"

#: The version of the output bits (docs/contract.md, "Stream version"): the same
#: STREAM_VERSION gives the same bits from every function, on every SIMD target and
#: thread count.  Any change of an output bit bumps it, with a CHANGELOG.md entry;
#: tests/test_golden.py pins the digests of each version (tests/data/golden_digests.json).
STREAM_VERSION: _Final[int] = 2

if _core.target_warning():
    import warnings

    warnings.warn(_core.target_warning(), RuntimeWarning, stacklevel=2)

__all__ = [
    "GumbelSoftmax",
    "Philox",
    "STREAM_VERSION",
    "__version__",
    "anneal_tau",
    "categorical",
    "concrete_log_prob",
    "conditional_gumbel",
    "cpu_target",
    "cpu_targets",
    "get_num_threads",
    "gumbel",
    "gumbel_rao_backward",
    "gumbel_softmax",
    "gumbel_softmax_backward",
    "log_gumbel_softmax",
    "logistic",
    "philox4x32",
    "reinmax_backward",
    "relaxed_bernoulli",
    "relaxed_bernoulli_backward",
    "relaxed_top_k",
    "relaxed_top_k_backward",
    "set_num_threads",
    "top_k",
]
