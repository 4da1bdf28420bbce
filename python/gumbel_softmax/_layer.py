"""A Gumbel-Softmax layer for NumPy training loops, and the temperature schedule."""

from __future__ import annotations

import copy
import math
import numbers
import operator
from typing import TYPE_CHECKING, Any, SupportsIndex, Union, overload

import numpy as np

from ._api import gumbel_softmax, gumbel_softmax_backward
from ._args import (
    NON_NUMBERS,
    Philox,
    as_float,
    as_rng,
    asarray,
    check_axis_arg,
    check_flag,
    check_tau,
    is_scalar_tau,
    tau_values,
)
from ._estimators import gumbel_rao_backward, reinmax_backward

if TYPE_CHECKING:
    import numpy.typing as npt
    from numpy.typing import ArrayLike

    from ._typing import Array, Axis, Flag, RngLike, TauLike

    # forward's saved state: (recompute, y_soft or logits, mask, tau, rng before forward)
    _Saved = tuple[bool, Any, Any, TauLike, Union[Philox, None]]


class GumbelSoftmax:
    """Gumbel-Softmax as a layer with ``forward`` and ``backward`` for NumPy training loops.

    Parameters
    ----------
    tau : float or array_like
        Temperature (per row when an array, see :func:`gumbel_softmax`).  The attribute
        ``tau`` may be reassigned between steps, for example from :func:`anneal_tau`.
    hard : bool
        Straight-through: ``forward`` returns exact one-hots, ``backward`` the gradient
        of the soft sample.
    axis : int
        The category axis.
    rng : None, int, Philox or numpy.random.Generator
        Turned into a ``Philox`` once; every ``forward`` draws the next rows from it.
    recompute : bool
        Memory-saving backward: ``forward`` keeps a reference to ``logits`` (and
        ``mask``) and the generator's position instead of the soft sample, and
        ``backward`` recomputes the soft sample (bitwise the stored one).  The caller
        must not modify ``logits`` in place between ``forward`` and ``backward``.
        Straight-through only (``estimator="st"``).
    estimator : {"st", "gumbel-rao", "reinmax"}
        The gradient of ``backward``: ``"st"``, that of the soft sample (straight-through
        when ``hard``); ``"gumbel-rao"``, :func:`gumbel_rao_backward` with ``samples``
        conditional draws (the next rows of ``rng``, after the forward's); ``"reinmax"``,
        :func:`reinmax_backward` (``tau >= 1``).  The last two need ``hard=True`` and keep
        a reference to ``logits`` and the one-hot (do not modify them in place before
        ``backward``).
    samples : int
        The number of conditional draws of ``"gumbel-rao"`` (``>= 1``).

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> layer = gs.GumbelSoftmax(tau=0.5, hard=True, rng=0, recompute=True)
    >>> x = np.zeros((4, 3))
    >>> y = layer.forward(x)
    >>> g = layer.backward(np.ones_like(y))
    >>> y.shape, g.shape
    ((4, 3), (4, 3))
    >>> rao = gs.GumbelSoftmax(tau=0.5, hard=True, rng=0, estimator="gumbel-rao", samples=100)
    >>> g = rao.backward(np.ones_like(rao.forward(x)) * [1.0, 0.0, 0.0])
    >>> bool(np.allclose(g.sum(axis=-1), 0.0))
    True
    """

    tau: TauLike
    hard: bool
    axis: int
    rng: Philox
    recompute: bool
    estimator: str
    samples: int

    def __init__(
        self,
        tau: TauLike = 1.0,
        hard: Flag = False,
        axis: Axis = -1,
        rng: RngLike = None,
        recompute: Flag = False,
        estimator: str = "st",
        samples: SupportsIndex = 10,
    ) -> None:
        # Checked here, as each call checks them, so that a bad layer fails where it is
        # made rather than at its first forward.
        if is_scalar_tau(tau):
            check_tau(tau)
        else:
            tau_values(tau)
        self.tau = tau
        self.hard = check_flag(hard, "hard")
        self.axis = check_axis_arg(axis)
        self.recompute = check_flag(recompute, "recompute")
        self.estimator, self.samples = _check_estimator(
            estimator, samples, self.hard, self.recompute, tau
        )
        self.rng = as_rng(rng)
        self._saved: _Saved | None = None

    def forward(self, logits: ArrayLike, mask: ArrayLike | None = None) -> Array:
        """Draw ``gumbel_softmax(logits, self.tau, hard=self.hard, ...)`` and keep what
        ``backward`` needs."""
        tau = self.tau
        if self.estimator != "st":
            if self.estimator == "reinmax":
                _check_reinmax_tau(tau)
            y = gumbel_softmax(logits, tau, hard=True, axis=self.axis, rng=self.rng, mask=mask)
            self._saved = (False, (logits, y), mask, tau, None)
            return y
        if self.recompute:
            before, y = self._draw_recomputable(logits, tau, mask)
            self._saved = (True, logits, mask, tau, before)
        else:
            y, y_soft = gumbel_softmax(
                logits,
                tau,
                hard=self.hard,
                axis=self.axis,
                rng=self.rng,
                mask=mask,
                return_soft=True,
            )
            self._saved = (False, y_soft, None, tau, None)
        return y

    __call__ = forward

    def _draw_recomputable(self, logits, tau, mask):
        """The forward draw and a Philox at its first row, for the backward to recompute
        it.  The rows are reserved first and drawn from a private Philox at them, so that
        another thread drawing from the same Philox (documented as safe) cannot take rows
        between the copy of the state and the draw (the backward would then recompute
        another sample).  A failed draw gives its rows back (unless another reservation
        followed), so that it consumes nothing."""
        rng = self.rng
        n = _rows_of(logits, self.axis)
        if not n:  # no rows, or a bad shape or axis that the call reports
            before = copy.copy(rng)
            return before, gumbel_softmax(
                logits, tau, hard=self.hard, axis=self.axis, rng=rng, mask=mask
            )
        start = rng.reserve(n)
        before = Philox(rng.seed, counter=start)
        try:
            y = gumbel_softmax(
                logits, tau, hard=self.hard, axis=self.axis, rng=copy.copy(before), mask=mask
            )
        except BaseException:
            rng._unreserve(start, n)
            raise
        return before, y

    def backward(self, grad_y: ArrayLike) -> Array:
        """The gradient with respect to the logits of the last ``forward``."""
        if self._saved is None:
            raise RuntimeError("GumbelSoftmax.backward called before forward")
        recompute, saved, mask, tau, before = self._saved
        if self.estimator == "gumbel-rao":
            logits, y = saved
            return gumbel_rao_backward(
                grad_y,
                logits,
                y,
                tau,
                samples=self.samples,
                axis=self.axis,
                rng=self.rng,
                mask=mask,
            )
        if self.estimator == "reinmax":
            logits, y = saved
            if mask is not None:
                logits = np.where(np.asarray(mask, dtype=bool), logits, -np.inf)
            return reinmax_backward(grad_y, logits, y, tau, axis=self.axis)
        if recompute:
            return gumbel_softmax_backward(
                grad_y, tau=tau, axis=self.axis, logits=saved, rng=before, mask=mask
            )
        return gumbel_softmax_backward(grad_y, saved, tau, axis=self.axis)

    def __repr__(self) -> str:
        return (
            f"GumbelSoftmax(tau={self.tau!r}, hard={self.hard}, axis={self.axis}, "
            f"rng={self.rng!r}, recompute={self.recompute}, estimator={self.estimator!r}, "
            f"samples={self.samples})"
        )


_ESTIMATORS = ("st", "gumbel-rao", "reinmax")


def _check_reinmax_tau(tau: Any) -> None:
    values = np.asarray(tau_values(tau) if not is_scalar_tau(tau) else check_tau(tau))
    if (values < 1).any():
        raise ValueError(f"tau must be >= 1 for estimator='reinmax', got {tau!r}")


def _check_estimator(
    estimator: Any, samples: Any, hard: bool, recompute: bool, tau: Any
) -> tuple[str, int]:
    if not isinstance(estimator, str):
        raise TypeError(f"estimator must be a str, got {type(estimator).__name__}")
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {_ESTIMATORS}, got {estimator!r}")
    if isinstance(samples, NON_NUMBERS):
        raise TypeError(f"samples must be an integer, got {type(samples).__name__}")
    try:
        samples = operator.index(samples)
    except TypeError:
        raise TypeError(f"samples must be an integer, got {type(samples).__name__}") from None
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if estimator != "st":
        if not hard:
            raise ValueError(f"estimator={estimator!r} needs hard=True (it is a hard sample's)")
        if recompute:
            raise ValueError(f"recompute applies to estimator='st' only, not {estimator!r}")
        if estimator == "reinmax":
            _check_reinmax_tau(tau)
    return estimator, samples


def _positive(value: Any, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, NON_NUMBERS) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = as_float(value, name)
    ok = (value >= 0.0 if allow_zero else value > 0.0) and value < math.inf
    if not ok:
        raise ValueError(
            f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, got {value!r}"
        )
    return value


@overload
def anneal_tau(
    step: int, tau0: float = 1.0, rate: float = 1e-4, min_tau: float = 0.5, every: SupportsIndex = 1
) -> float: ...


@overload
def anneal_tau(
    step: ArrayLike,
    tau0: float = 1.0,
    rate: float = 1e-4,
    min_tau: float = 0.5,
    every: SupportsIndex = 1,
) -> float | npt.NDArray[np.float64]: ...


def anneal_tau(
    step: ArrayLike,
    tau0: float = 1.0,
    rate: float = 1e-4,
    min_tau: float = 0.5,
    every: SupportsIndex = 1,
) -> float | npt.NDArray[np.float64]:
    """The exponential temperature schedule of Jang, Gu and Poole (2016).

    ``max(min_tau, tau0 * exp(-rate * t))`` with ``t = (step // every) * every``: the
    paper uses ``tau = max(0.5, exp(-r t))`` with ``r`` in {1e-5, 1e-4}, updated every
    ``N`` in {500, 1000} steps (``every=N``).

    Parameters
    ----------
    step : int or array_like of int
        Training step(s), ``>= 0``.
    tau0, rate, min_tau : float
        Start temperature (positive), decay rate (``>= 0``), floor (positive).
    every : int
        Update the temperature every ``every`` steps (``>= 1``).

    Returns
    -------
    float, or ndarray of float64 for an array ``step``.

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.anneal_tau(0), gs.anneal_tau(10**6)
    (1.0, 0.5)
    >>> round(gs.anneal_tau(1000, rate=1e-4), 6)
    0.904837
    >>> gs.anneal_tau(999, rate=1e-4, every=1000)
    1.0
    """
    tau0 = _positive(tau0, "tau0")
    rate = _positive(rate, "rate", allow_zero=True)
    min_tau = _positive(min_tau, "min_tau")
    try:
        if isinstance(every, NON_NUMBERS):
            raise TypeError
        every = operator.index(every)
    except TypeError:
        raise TypeError(f"every must be an integer, got {type(every).__name__}") from None
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if isinstance(step, numbers.Integral) and not isinstance(step, NON_NUMBERS):
        step = operator.index(step)  # any Python int, exactly
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        t = (step // every) * every
        try:
            decay = rate * float(t) if rate else 0.0
        except OverflowError:  # a step past float64's range: the schedule is at its floor
            decay = math.inf
        return max(min_tau, tau0 * math.exp(-decay))
    s = asarray(step, "step")  # a masked array raises
    if s.dtype.kind not in "iu":
        raise TypeError(f"step must be an integer or an integer array, got dtype {s.dtype}")
    if s.size and s.min() < 0:
        raise ValueError("step must be >= 0")
    # in 64 bits, so that an `every` past a small dtype's range (int8, uint16) works
    s = s.astype(np.uint64 if s.dtype.kind == "u" else np.int64)
    if every <= np.iinfo(np.int64).max:
        t = ((s // every) * every).astype(np.float64)
    elif s.dtype == np.uint64 and every <= np.iinfo(np.uint64).max:  # steps up to 2**64 - 1
        e = np.uint64(every)
        t = ((s // e) * e).astype(np.float64)
    else:  # larger than any step of the array's dtype: the schedule never moves
        t = np.zeros(s.shape)
    with np.errstate(over="ignore"):  # rate * t past float64's range: the floor, as above
        tau = np.maximum(min_tau, tau0 * np.exp(-rate * t))
    return float(tau) if tau.ndim == 0 else tau


def _rows_of(logits, axis):
    """The rows a forward call on logits takes (the product of the shape without axis),
    or None when the shape or the axis is invalid (the call then raises the error)."""
    try:
        shape = np.shape(logits)
        k = operator.index(axis)
    except (TypeError, ValueError):
        return None
    if not shape or not -len(shape) <= k < len(shape):
        return None
    return math.prod(d for i, d in enumerate(shape) if i != k % len(shape))
