"""The public NumPy functions: their signatures and docstrings.

Each checks its arguments (``_args``) and calls its kernel in ``_ops``; every check
happens before the kernel runs, so that a bad argument raises with nothing written and
no row of the random stream consumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, SupportsIndex, overload

import numpy as np

from . import _ops
from ._args import Philox

if TYPE_CHECKING:
    import numpy.typing as npt
    from numpy.typing import ArrayLike, DTypeLike

    from ._typing import Array, Axis, Flag, RngLike, ShapeLike, TauLike

Philox.__doc__ = """Philox4x32-10 counter-based generator; its whole state is ``(seed, counter)``.

Parameters
----------
seed : int or None
    In ``[0, 2**64)``; the Philox key is ``(seed & 0xffffffff, seed >> 32)``.
    ``None`` draws 64 bits of OS entropy.
counter : int, keyword-only
    The first row of the stream to use (rows consumed so far), in ``[0, 2**64)``.

Every sampler reserves its rows with ``reserve`` (atomically), so threads sharing one
``Philox`` never receive the same rows, and ``rng.counter`` advances by the number of
rows of each call.

Examples
--------
>>> import gumbel_softmax as gs
>>> rng = gs.Philox(7)
>>> g = gs.gumbel((3, 5), rng=rng)
>>> rng.counter
3
>>> bool((gs.gumbel((3, 5), rng=gs.Philox(7)) == g).all())
True
"""


def _philox_restore(cls, seed, counter, attrs):
    """Unpickles a gs.Philox (or an instance of a subclass): its class, seed, counter
    (2**64 included: exhausted, which Philox.__setstate__ restores) and instance
    attributes."""
    rng = cls.__new__(cls)
    Philox.__setstate__(rng, (seed, counter))
    if attrs:
        rng.__dict__.update(attrs)
    return rng


def _philox_reduce_ex(self, protocol):
    """Pickles a gs.Philox with every pickle protocol.  (pybind11's own pickling serves
    protocols 2 and up only: protocols 0 and 1 ended the process with an uncaught C++
    exception.  Its __setstate__ stays, for pickles made before.)"""
    return (
        _philox_restore,
        (type(self), self.seed, self.counter, getattr(self, "__dict__", None) or None),
    )


Philox.__reduce_ex__ = _philox_reduce_ex
Philox.__reduce__ = lambda self: _philox_reduce_ex(self, 2)


@overload
def gumbel_softmax(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Literal[False] = False,
    mask: ArrayLike | None = None,
) -> Array: ...


@overload
def gumbel_softmax(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Literal[True],
    mask: ArrayLike | None = None,
) -> tuple[Array, Array]: ...


@overload
def gumbel_softmax(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Flag = False,
    mask: ArrayLike | None = None,
) -> Array | tuple[Array, Array]: ...


def gumbel_softmax(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Flag = False,
    mask: ArrayLike | None = None,
) -> Array | tuple[Array, Array]:
    """Draw a Gumbel-Softmax sample ``softmax((logits + g) / tau)`` along ``axis``.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities, float32 or float64 (integer and bool arrays
        are converted to float64; float16 and bfloat16 are computed in float32 and
        rounded back), any shape with ``ndim >= 1`` and any strides.
        ``-inf`` masks a category (probability exactly 0).
    tau : float or array_like
        Temperature, positive and finite.  Small values give near one-hot samples.
        An array gives each row its own temperature: it broadcasts to the batch shape
        (``logits.shape`` without ``axis``), or has ``logits.ndim`` dimensions with
        length 1 along ``axis``.
    hard : bool
        Return the exact one-hot (0.0 and 1.0) at the first argmax of ``logits + g``.
    axis : int
        The category axis.
    rng : None, int, Philox or numpy.random.Generator
        Source of the noise (SPEC 7).  A ``Philox`` advances by the number of rows
        (the size of ``logits`` divided by its length along ``axis``).
    out : ndarray, optional
        Destination of ``y``: same shape and dtype as the result, writable; may be
        ``logits`` itself.
    return_soft : bool
        Also return the relaxed sample (what :func:`gumbel_softmax_backward` needs).
    mask : array_like of bool, optional
        Broadcastable to ``logits.shape``; ``False`` excludes a category exactly as a
        ``-inf`` logit does (probability and gradient exactly 0, never the one-hot).

    Returns
    -------
    y : ndarray
        The sample; or ``(y, y_soft)`` when ``return_soft`` (for ``hard=False``,
        ``y_soft is y``).

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> logits = np.log(np.array([[0.2, 0.3, 0.5]]))
    >>> y = gs.gumbel_softmax(logits, tau=0.5, rng=0)
    >>> y.shape, bool(np.isclose(y.sum(), 1.0))
    ((1, 3), True)
    >>> y_hard = gs.gumbel_softmax(logits, hard=True, rng=0)  # an exact one-hot
    >>> float(y_hard.sum()), sorted(set(y_hard.ravel().tolist()))
    (1.0, [0.0, 1.0])
    >>> gs.gumbel_softmax(logits, hard=True, rng=0, mask=[True, False, True])[0, 1].item()
    0.0
    """
    return _ops.forward(logits, tau, hard, False, axis, rng, out, return_soft, mask)


def log_gumbel_softmax(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """The log of a Gumbel-Softmax sample, computed in log space.

    ``z - log(sum(exp(z)))`` with ``z = (logits + g - max(logits + g)) / tau``: the
    same noise ``g`` and rows as :func:`gumbel_softmax`, so that ``exp`` of the result
    is that sample up to rounding, but finite wherever the logit is finite, even when
    a small ``tau`` makes the sample itself underflow to 0 (TensorFlow Probability's
    ``ExpRelaxedOneHotCategorical``).  ``-inf`` where the logit is ``-inf`` or masked.

    Parameters
    ----------
    logits, tau, axis, rng, out, mask
        As for :func:`gumbel_softmax` (there is no ``hard`` or ``return_soft``).

    Returns
    -------
    ndarray
        ``log(y)`` of ``logits``' shape and dtype.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> bool(np.isfinite(gs.log_gumbel_softmax(x, tau=1e-3, rng=3)).all())
    True
    >>> bool((gs.gumbel_softmax(x, tau=1e-3, rng=3) == 0).any())  # underflows to 0
    True
    """
    return _ops.forward(logits, tau, False, True, axis, rng, out, False, mask)


def categorical(
    logits: ArrayLike, *, axis: Axis = -1, rng: RngLike = None, mask: ArrayLike | None = None
) -> npt.NDArray[np.int64]:
    """Draw category indices with the Gumbel-max trick: ``argmax(logits + g, axis)``.

    The same noise and rows as :func:`gumbel_softmax`, so the result is the position
    of the one-hot that ``gumbel_softmax(logits, hard=True)`` draws from the same
    state (ties go to the lowest index); it skips the one-hot and writes one integer
    per row.  Index ``i`` has probability ``softmax(logits)[i]``.

    Parameters
    ----------
    logits : array_like
        As for :func:`gumbel_softmax`.
    axis : int
        The category axis.
    rng : None, int, Philox or numpy.random.Generator
        A ``Philox`` advances by the number of rows.
    mask : array_like of bool, optional
        ``False`` excludes a category (never drawn).

    Returns
    -------
    ndarray of int64
        ``logits.shape`` without ``axis``; ``-1`` for rows with no defined sample (a
        NaN or ``+inf`` logit, or every category ``-inf`` or masked).

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.log(np.array([[0.1, 0.9], [0.9, 0.1]]))
    >>> gs.categorical(x, rng=1).shape
    (2,)
    >>> int(gs.categorical(np.array([0.0, -np.inf, 0.0]), rng=1, mask=[False, True, True]))
    2
    """
    return _ops.categorical(logits, axis, rng, mask)


def conditional_gumbel(
    logits: ArrayLike,
    index: ArrayLike,
    *,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
) -> Array:
    """Draw perturbed logits ``z = logits + g`` conditioned on ``argmax(z, axis) == index``.

    The Gumbel perturbation given its argmax (the conditional sample of REBAR / RELAX
    gradient estimators): the maximum is ``z[I] = logsumexp(logits) + g[I]`` and every
    other entry a Gumbel truncated below it, ``z[j] = -log(exp(-z[I]) + exp(-logits[j] -
    g[j]))``, computed in log space, with ``g`` the noise that :func:`gumbel_softmax` adds
    (same rows of the stream, same bits as :func:`gumbel`).  Ties from rounding: every
    ``z[j] <= z[I]``, and ``z[j] < z[I]`` for ``j < I``, so ``argmax`` (first maximum)
    is ``index``.  ``-inf`` logits give ``-inf``.

    Parameters
    ----------
    logits : array_like
        float32 or float64 (integer and bool arrays are converted to float64; float16
        and bfloat16 are computed in float32 and rounded back, then the tie rule is
        applied again), ``ndim >= 1``, any strides.  A row with a NaN or ``+inf`` logit
        is NaN.
    index : array_like of int
        The argmax to condition on: ``logits.shape`` without ``axis`` (like the result of
        :func:`categorical`), each in ``[0, logits.shape[axis])`` and at a logit that is
        not ``-inf``.
    axis : int
        The category axis.
    rng : None, int, Philox or numpy.random.Generator
        A ``Philox`` advances by the number of rows, as for :func:`gumbel_softmax`.
    out : ndarray, optional
        Destination of ``z``: the shape and dtype of ``logits``; may be ``logits`` itself.

    Returns
    -------
    z : ndarray
        ``logits.shape``, the dtype of ``logits``.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> logits = np.log(np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))
    >>> z = gs.conditional_gumbel(logits, [2, 1], rng=0)
    >>> z.argmax(axis=-1).tolist()
    [2, 1]
    """
    return _ops.conditional_gumbel(logits, index, axis, rng, out)


def top_k(
    logits: ArrayLike,
    k: SupportsIndex,
    *,
    axis: Axis = -1,
    rng: RngLike = None,
    mask: ArrayLike | None = None,
) -> npt.NDArray[np.int64]:
    """Sample ``k`` categories without replacement (Gumbel-top-k, Kool et al. 2019).

    The indices of the ``k`` largest ``logits + g`` in decreasing order of that
    perturbed value (ties: lower index first), with the noise and rows of
    :func:`gumbel_softmax`.  The ordered draw follows the Plackett-Luce model: the
    first index has probability ``softmax(logits)``, each next one is drawn from the
    remaining categories renormalised.  ``top_k(x, 1)`` equals ``categorical(x)`` with
    a length-1 ``axis`` added.

    Parameters
    ----------
    logits : array_like
        As for :func:`gumbel_softmax`.
    k : int
        ``0 <= k <= logits.shape[axis]``.
    axis : int
        The category axis; the result has ``k`` along it.
    rng, mask
        As for :func:`categorical`.

    Returns
    -------
    ndarray of int64
        ``logits.shape`` with ``k`` along ``axis``.  Slots past the categories that can
        be drawn (``-inf`` or masked) are ``-1``; a row with no defined sample is all
        ``-1``.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> idx = gs.top_k(np.zeros(5), 3, rng=2)
    >>> idx.shape, len(set(idx.tolist()))
    ((3,), 3)
    """
    return _ops.top_k(logits, k, axis, rng, mask)


def gumbel_softmax_backward(
    grad_y: ArrayLike,
    y_soft: ArrayLike | None = None,
    tau: TauLike = 1.0,
    *,
    axis: Axis = -1,
    out: Array | None = None,
    logits: ArrayLike | None = None,
    rng: RngLike = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Gradient of a Gumbel-Softmax sample with respect to ``logits``.

    ``grad_logits = y_soft * (grad_y - sum(grad_y * y_soft, axis)) / tau``: the
    gradient of the soft sample, which is also the straight-through gradient of the
    ``hard=True`` sample.

    Memory-saving form: instead of ``y_soft``, pass the forward's ``logits`` (and
    ``mask``) with ``rng`` in the state it had *before* the forward (its int seed, a
    ``Philox`` at the forward's counter, or a ``Generator`` in the same state); the soft
    sample is recomputed, bitwise equal to the stored one, and ``rng`` is not advanced.

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to the sample ``y``.
    y_soft : array_like, optional
        The relaxed sample (``return_soft=True`` of :func:`gumbel_softmax`), same shape.
    tau : float or array_like
        The temperature(s) of the forward call.
    axis : int
        The category axis of the forward call.
    out : ndarray, optional
        Destination; may be ``grad_y`` or ``y_soft`` itself.
    logits, rng, mask : optional
        The forward's inputs, to recompute ``y_soft`` (give ``y_soft`` or these).

    Returns
    -------
    ndarray
        float64 when either input is float64 (or an integer or bool array), float16
        (bfloat16) when both are float16 (both bfloat16), else float32 (computed in
        float32).

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> y = np.array([[0.25, 0.75]])
    >>> gs.gumbel_softmax_backward(np.array([[1.0, 0.0]]), y)
    array([[ 0.1875, -0.1875]])
    >>> x, g = np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]])
    >>> _, ys = gs.gumbel_softmax(x, rng=5, return_soft=True)
    >>> bool((gs.gumbel_softmax_backward(g, logits=x, rng=5) == gs.gumbel_softmax_backward(g, ys)).all())
    True
    """
    return _ops.softmax_backward(grad_y, y_soft, tau, axis, out, logits, rng, mask)


def gumbel(
    shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
    rng: RngLike = None,
    out: Array | None = None,
) -> Array:
    """Standard Gumbel noise from the documented stream: exactly what the samplers add.

    ``gumbel_softmax(x, rng=Philox(s, counter=p))`` adds ``gumbel(x.shape,
    dtype=x.dtype, rng=Philox(s, counter=p))`` to ``x`` (``axis=-1``).  Rows are all
    dimensions but the last; every value is finite.

    Parameters
    ----------
    shape : int or tuple of int
        At least one dimension.
    dtype : float32 or float64, optional
        Default: ``out.dtype`` when ``out`` is given, else float32.  float16 and
        bfloat16 give the float32 noise rounded.
    rng : None, int, Philox or numpy.random.Generator
        A ``Philox`` advances by the number of rows.
    out : ndarray, optional
        Destination, of ``shape``; writable.

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype`` (``out`` itself when given).

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> g = gs.gumbel((2, 4), rng=gs.Philox(1))
    >>> g.dtype, g.shape
    (dtype('float32'), (2, 4))
    """
    return _ops.noise(shape, dtype, rng, out, False)


def logistic(
    shape: ShapeLike,
    *,
    dtype: DTypeLike | None = None,
    rng: RngLike = None,
    out: Array | None = None,
) -> Array:
    """Standard logistic noise ``log(U) - log(1 - U)`` from the documented stream.

    The same words as :func:`gumbel` (element ``c`` of a row uses word ``c``, or words
    ``2c`` and ``2c + 1`` for float64); what :func:`relaxed_bernoulli` adds.  Always
    finite, ``|L| <= 22.9`` (float32) or ``45.1`` (float64), and exactly antisymmetric
    in the top bit.

    Parameters
    ----------
    shape, dtype, rng, out
        As for :func:`gumbel`.

    Returns
    -------
    ndarray
        Of ``shape`` and ``dtype`` (``out`` itself when given).

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.logistic((2, 3), rng=0).shape
    (2, 3)
    """
    return _ops.noise(shape, dtype, rng, out, True)


@overload
def relaxed_bernoulli(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Literal[False] = False,
) -> Array: ...


@overload
def relaxed_bernoulli(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Literal[True],
) -> tuple[Array, Array]: ...


@overload
def relaxed_bernoulli(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Flag = False,
) -> Array | tuple[Array, Array]: ...


def relaxed_bernoulli(
    logits: ArrayLike,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Flag = False,
) -> Array | tuple[Array, Array]:
    """Draw relaxed Bernoulli (binary Concrete) samples ``sigmoid((logits + L) / tau)``.

    ``L`` is standard logistic noise, :func:`logistic` of ``logits.shape`` from the
    same state: elementwise, rows are all dimensions but the last.  ``hard=True``
    returns exactly 1.0 where ``logits + L > 0`` and 0.0 elsewhere (an exact Bernoulli
    draw with probability ``sigmoid(logits)``); :func:`relaxed_bernoulli_backward`
    with ``y_soft`` gives its straight-through gradient.

    Parameters
    ----------
    logits : array_like
        Log-odds, any shape (a 0-d array is one row of one element); dtypes as for
        :func:`gumbel_softmax`.  NaN gives NaN there only.
    tau : float or array_like
        Positive, finite temperature, or an array broadcastable to ``logits.shape``.
    hard, rng, out, return_soft
        As for :func:`gumbel_softmax`.

    Returns
    -------
    y : ndarray
        Of ``logits``' shape; or ``(y, y_soft)`` when ``return_soft``.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> y = gs.relaxed_bernoulli(x, tau=0.5, rng=4)
    >>> bool(((y > 0) & (y < 1)).all())
    True
    >>> hard = gs.relaxed_bernoulli(x, hard=True, rng=4)  # the same noise, thresholded
    >>> bool((hard == (x + gs.logistic(x.shape, dtype=x.dtype, rng=4) > 0)).all())
    True
    """
    return _ops.relaxed_bernoulli(logits, tau, hard, rng, out, return_soft)


def relaxed_bernoulli_backward(
    grad_y: ArrayLike, y_soft: ArrayLike, tau: TauLike = 1.0, *, out: Array | None = None
) -> Array:
    """Gradient of a relaxed Bernoulli sample: ``grad_y * y_soft * (1 - y_soft) / tau``.

    Also the straight-through gradient of ``hard=True`` samples (pass the soft sample
    from ``return_soft=True``).

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to the sample.
    y_soft : array_like
        The relaxed sample, of ``grad_y``'s shape.
    tau : float or array_like
        As in the forward call.
    out : ndarray, optional
        Destination; may be ``grad_y`` or ``y_soft``.

    Returns
    -------
    ndarray
        The gradient with respect to ``logits``; dtypes as for
        :func:`gumbel_softmax_backward`.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> gs.relaxed_bernoulli_backward(np.array([1.0]), np.array([0.5]), tau=0.5)
    array([0.5])
    """
    return _ops.relaxed_bernoulli_backward(grad_y, y_soft, tau, out)


def concrete_log_prob(
    y: ArrayLike, logits: ArrayLike, tau: TauLike = 1.0, *, axis: Axis = -1, log_space: Flag = False
) -> Array:
    """Log density of the Concrete (relaxed one-hot categorical) distribution at ``y``.

    Maddison, Mnih and Teh (2017), with ``K`` categories:
    ``log p(y) = lgamma(K) + (K - 1) log(tau) + sum(x - (tau + 1) log y)
    - K logsumexp(x - tau log y)``, the density of the first ``K - 1`` coordinates of
    a point ``y`` of the simplex (as ``torch.distributions.RelaxedOneHotCategorical``).
    With ``log_space=True``, ``y`` is the log-space sample ``l`` of
    :func:`log_gumbel_softmax` and the result is the density of ``l``
    (``ExpRelaxedOneHotCategorical``): ``... + sum(x - tau l) - K logsumexp(x - tau l)``.

    Parameters
    ----------
    y : array_like
        Points of the simplex along ``axis`` (or their logs with ``log_space``).
    logits : array_like
        Broadcastable against ``y``; any additive constant per row cancels.
    tau : float or array_like
        As for :func:`gumbel_softmax` (per-row arrays broadcast to the batch shape).
    axis : int
    log_space : bool

    Returns
    -------
    ndarray
        The broadcast shape of ``y`` and ``logits`` without ``axis``; float64 unless
        both inputs are float32 (or half, computed in float32).

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> float(np.exp(gs.concrete_log_prob(np.array([0.5, 0.5]), np.zeros(2))))  # K=2, tau=1
    1.0
    """
    return _ops.concrete_log_prob(y, logits, tau, axis, log_space)
