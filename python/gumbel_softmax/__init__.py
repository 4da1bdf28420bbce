"""Fast, reproducible Gumbel-Softmax samples and gradients for NumPy on the CPU.

>>> import numpy as np, gumbel_softmax as gs
>>> y = gs.gumbel_softmax(np.zeros((2, 5), np.float32), tau=0.5, rng=gs.Philox(0))
>>> y.shape
(2, 5)
"""

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without a built extension
    raise ImportError(
        "gumbel_softmax._core could not be imported: was the extension built? "
        "Install the package with `pip install .` from the source tree."
    ) from exc

from ._api import (
    Philox,
    categorical,
    concrete_log_prob,
    cpu_target,
    cpu_targets,
    get_num_threads,
    gumbel,
    gumbel_softmax,
    gumbel_softmax_backward,
    log_gumbel_softmax,
    logistic,
    philox4x32,
    relaxed_bernoulli,
    relaxed_bernoulli_backward,
    set_num_threads,
    top_k,
)
from ._layer import GumbelSoftmax, anneal_tau

__version__ = "0.1.0"

if _core.target_warning():
    import warnings

    warnings.warn(_core.target_warning(), RuntimeWarning, stacklevel=2)

__all__ = [
    "GumbelSoftmax",
    "Philox",
    "__version__",
    "anneal_tau",
    "categorical",
    "concrete_log_prob",
    "cpu_target",
    "cpu_targets",
    "get_num_threads",
    "gumbel",
    "gumbel_softmax",
    "gumbel_softmax_backward",
    "log_gumbel_softmax",
    "logistic",
    "philox4x32",
    "relaxed_bernoulli",
    "relaxed_bernoulli_backward",
    "set_num_threads",
    "top_k",
]
