"""Public functions: argument normalisation and docstrings around the compiled kernels.

Every check happens here, before the kernel runs, so that a bad argument raises with
nothing written and no row of the random stream consumed.
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from . import _core

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_index as _normalize_axis_index
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import normalize_axis_index as _normalize_axis_index

__all__ = [
    "Philox",
    "cpu_target",
    "cpu_targets",
    "get_num_threads",
    "gumbel",
    "gumbel_softmax",
    "gumbel_softmax_backward",
    "philox4x32",
    "set_num_threads",
]

Philox = _core.Philox
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

_FLOAT_TYPES = (np.float32, np.float64)
_TooHardError = getattr(getattr(np, "exceptions", np), "TooHardError")


def _check_tau(tau):
    if type(tau) is not float:  # fast path for the common case
        if isinstance(tau, (bool, np.bool_)) or not isinstance(tau, numbers.Real):
            raise TypeError(f"tau must be a real scalar, got {type(tau).__name__}")
        tau = float(tau)
    if not (0.0 < tau < math.inf):
        raise ValueError(f"tau must be positive and finite, got {tau!r}")
    return tau


def _as_float_array(a, name):
    """An aligned float32/float64 ndarray; integer and bool arrays become float64."""
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.type not in _FLOAT_TYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array (integer and bool arrays are "
            f"converted to float64), got dtype {arr.dtype}"
        )
    if not arr.dtype.isnative:  # byte-swapped: the kernels read native bytes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    elif not arr.flags.aligned:
        arr = arr.copy()
    return arr


# Row lengths are limited to 2**31 - 1 elements: the kernels index elements of a row in
# 32-bit vector lanes.
_MAX_ROW = 2**31 - 1


def _check_row_length(a, axis, name):
    n = a.shape[axis]
    if n > _MAX_ROW:
        raise ValueError(f"{name} rows along axis {axis} have {n} elements; at most 2**31 - 1 are supported")


def _check_axis(axis, ndim):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {type(axis).__name__}") from None
    return _normalize_axis_index(axis, ndim)


def _as_rng(rng):
    """SPEC 7: None, int seed, gs.Philox or numpy.random.Generator -> gs.Philox."""
    if isinstance(rng, Philox):
        return rng
    if rng is None:
        return Philox()
    if isinstance(rng, np.random.Generator):
        return Philox(int(rng.integers(0, 2**64, dtype=np.uint64)))
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return Philox(int(rng))
    raise TypeError(
        "rng must be None, an int seed, a gumbel_softmax.Philox or a numpy.random.Generator, "
        f"got {type(rng).__name__}"
    )


def _check_out(out, shape, dtype, inputs=()):
    """Validate a user `out`: ndarray, shape, dtype, writable, aligned, no partial overlap."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"out must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.dtype.isnative:
        raise ValueError(f"out must have native byte order, got dtype {out.dtype.str}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if not out.flags.aligned:
        raise ValueError("out must be aligned")
    for name, a in inputs:
        if not np.may_share_memory(out, a) or _same_memory(out, a):
            continue  # disjoint memory bounds (cheap test), or exactly in place
        try:
            overlap = np.shares_memory(out, a, max_work=10**6)
        except _TooHardError:  # undecided within max_work: treat as overlapping
            overlap = True
        if overlap:
            raise ValueError(
                f"out overlaps {name}; it may be {name} itself (in place) but no other view of it"
            )
    return out


def _same_memory(a, b):
    """True when a and b are the very same elements in the same layout."""
    ia, ib = a.__array_interface__, b.__array_interface__
    return (
        ia["data"][0] == ib["data"][0]
        and a.shape == b.shape
        and a.strides == b.strides
        and a.dtype == b.dtype
    )


def gumbel_softmax(logits, tau=1.0, *, hard=False, axis=-1, rng=None, out=None, return_soft=False):
    """Draw a Gumbel-Softmax sample ``softmax((logits + g) / tau)`` along ``axis``.

    Parameters
    ----------
    logits : array_like
        Unnormalised log-probabilities, float32 or float64 (integer and bool arrays
        are converted to float64), any shape with ``ndim >= 1`` and any strides.
        ``-inf`` masks a category (probability exactly 0).
    tau : float
        Temperature, positive and finite.  Small values give near one-hot samples.
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
    >>> gs.gumbel_softmax(logits, hard=True, rng=0).sum()
    np.float64(1.0)
    """
    tau = _check_tau(tau)
    x = _as_float_array(logits, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    axis = _check_axis(axis, x.ndim)
    _check_row_length(x, axis, "logits")
    if x.shape[axis] == 0:
        raise ValueError(f"axis {axis} of logits has length 0: there is no category to sample")
    out = _check_out(out, x.shape, x.dtype, (("logits", x),))
    rng = _as_rng(rng)
    return _core.gumbel_softmax(x, tau, bool(hard), axis, rng, out, bool(return_soft))


def gumbel_softmax_backward(grad_y, y_soft, tau=1.0, *, axis=-1, out=None):
    """Gradient of a Gumbel-Softmax sample with respect to ``logits``.

    ``grad_logits = y_soft * (grad_y - sum(grad_y * y_soft, axis)) / tau``: the
    gradient of the soft sample, which is also the straight-through gradient of the
    ``hard=True`` sample.

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to the sample ``y``.
    y_soft : array_like
        The relaxed sample (``return_soft=True`` of :func:`gumbel_softmax`), same shape.
    tau : float
        The temperature of the forward call.
    axis : int
        The category axis of the forward call.
    out : ndarray, optional
        Destination; may be ``grad_y`` or ``y_soft`` itself.

    Returns
    -------
    ndarray
        float32 when both inputs are float32, else float64.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> y = np.array([[0.25, 0.75]])
    >>> gs.gumbel_softmax_backward(np.array([[1.0, 0.0]]), y)
    array([[ 0.1875, -0.1875]])
    """
    tau = _check_tau(tau)
    g = _as_float_array(grad_y, "grad_y")
    s = _as_float_array(y_soft, "y_soft")
    if g.shape != s.shape:
        raise ValueError(f"y_soft must have the shape of grad_y {g.shape}, got {s.shape}")
    if g.ndim == 0:
        raise ValueError("grad_y must have at least one dimension, got a 0-d array")
    dtype = np.result_type(g.dtype, s.dtype)
    g = g.astype(dtype, copy=False)
    s = s.astype(dtype, copy=False)
    axis = _check_axis(axis, g.ndim)
    _check_row_length(g, axis, "grad_y")
    out = _check_out(out, g.shape, dtype, (("grad_y", g), ("y_soft", s)))
    return _core.gumbel_softmax_backward(g, s, tau, axis, out)


def gumbel(shape, *, dtype=None, rng=None, out=None):
    """Standard Gumbel noise from the documented stream: exactly what the samplers add.

    ``gumbel_softmax(x, rng=Philox(s, counter=p))`` adds ``gumbel(x.shape,
    dtype=x.dtype, rng=Philox(s, counter=p))`` to ``x`` (``axis=-1``).  Rows are all
    dimensions but the last; every value is finite.

    Parameters
    ----------
    shape : int or tuple of int
        At least one dimension.
    dtype : float32 or float64, optional
        Default: ``out.dtype`` when ``out`` is given, else float32.
    rng : None, int, Philox or numpy.random.Generator
    out : ndarray, optional

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> g = gs.gumbel((2, 4), rng=gs.Philox(1))
    >>> g.dtype, g.shape
    (dtype('float32'), (2, 4))
    """
    try:
        shape = (operator.index(shape),)
    except TypeError:
        try:
            shape = tuple(operator.index(n) for n in shape)
        except TypeError:
            raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if len(shape) == 0:
        raise ValueError("shape must have at least one dimension")
    if any(n < 0 for n in shape):
        raise ValueError(f"shape must not have negative dimensions, got {shape}")
    if shape[-1] > _MAX_ROW:
        raise ValueError(f"shape rows have {shape[-1]} elements; at most 2**31 - 1 are supported")
    if dtype is None:
        dtype = out.dtype if isinstance(out, np.ndarray) else np.float32
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype.type not in _FLOAT_TYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    out = _check_out(out, shape, dtype)  # a byte-swapped out raises
    rng = _as_rng(rng)
    return _core.gumbel(list(shape), dtype.type is np.float64, rng, out)


def philox4x32(counters, key):
    """The Philox4x32-10 block function of Random123.

    Parameters
    ----------
    counters : array_like of int, shape (..., 4)
        Counter words, each in ``[0, 2**32)``.
    key : array_like of int, shape (2,)
        Key words, each in ``[0, 2**32)``.

    Returns
    -------
    ndarray of uint32, shape (..., 4)

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> [hex(w) for w in gs.philox4x32([0, 0, 0, 0], [0, 0])]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    c = _as_words(counters, "counters")
    k = _as_words(key, "key")
    if c.ndim == 0 or c.shape[-1] != 4:
        raise ValueError(f"counters must have shape (..., 4), got {c.shape}")
    if k.shape != (2,):
        raise ValueError(f"key must have shape (2,), got {k.shape}")
    return _core.philox4x32(np.ascontiguousarray(c), int(k[0]), int(k[1]))


def _as_words(a, name):
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValueError(f"{name} values must be in [0, 2**32)")
    return arr.astype(np.uint32, copy=False)


def cpu_target():
    """The SIMD target the kernels run on: ``"baseline"``, ``"avx2"`` or ``"avx512"``.

    Chosen once per process from CPUID; ``GUMBEL_SOFTMAX_TARGET`` forces one (an
    unsupported choice warns and falls back).  Every target gives identical bits.
    """
    return _core.cpu_target()


def cpu_targets():
    """The targets compiled into this build that this CPU supports, best last."""
    return list(_core.cpu_targets())


def get_num_threads():
    """Threads the kernels use for large calls (1 without OpenMP)."""
    return _core.get_num_threads()


def set_num_threads(n):
    """Use ``n`` threads for large calls in the whole process; ``0`` or ``None`` follows
    OpenMP's setting (``OMP_NUM_THREADS``, ``threadpoolctl``) again.  Results never
    depend on the thread count."""
    if n is None:
        n = 0
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {type(n).__name__}") from None
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _core.set_num_threads(n)
