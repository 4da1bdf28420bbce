"""Public functions: argument normalisation and docstrings around the compiled kernels.

Every check happens here, before the kernel runs, so that a bad argument raises with
nothing written and no row of the random stream consumed.
"""

from __future__ import annotations

import copy
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
_TooHardError = getattr(np, "exceptions", np).TooHardError
_AxisError = getattr(np, "exceptions", np).AxisError
_Generator = np.random.Generator  # imported now, not inside a first call


def _check_tau(tau, name="tau"):
    if type(tau) is not float:  # fast path for the common case
        if isinstance(tau, np.ndarray) and tau.ndim == 0 and tau.dtype.kind in "fiu":
            tau = tau.item()
        if isinstance(tau, (bool, np.bool_)) or not isinstance(tau, numbers.Real):
            raise TypeError(f"{name} must be a real scalar or array, got {type(tau).__name__}")
        tau = _as_float(tau, name)
    if not (0.0 < tau < math.inf):
        raise ValueError(f"{name} must be positive and finite, got {tau!r}")
    return tau


def _as_float(value, name):
    """float(value) for a real number; ValueError naming it when it is too large for a
    float64 (an int such as 10**400)."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be finite as a float64, got an integer of {value.bit_length()} bits"
            if isinstance(value, numbers.Integral)
            else f"{name} is too large for a float64"
        ) from None


def _check_flag(value, name):
    """A bool argument (hard, return_soft, log_space, ...): True, False or a NumPy bool;
    anything else, truthy or not, raises TypeError rather than being read as True."""
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")


def _asarray(a, name):
    """np.asarray(a) for an input argument: a NumPy masked array raises (its mask would be
    dropped silently), and NumPy's conversion errors (ragged lists, ...) name `name`."""
    if type(a) is np.ndarray:  # the common case first
        return a
    if isinstance(a, np.ma.MaskedArray):
        hint = f" (for logits: {name}.data with mask=~{name}.mask)" if name == "logits" else ""
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray, whose mask would be ignored: pass "
            f"{name}.filled(value){hint}"
        )
    try:
        return np.asarray(a)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{name} could not be converted to an array: {exc}") from None


def _is_scalar_tau(tau):
    if type(tau) is float or isinstance(tau, numbers.Real):
        return True
    try:
        return np.ndim(tau) == 0
    except (ValueError, TypeError):  # a ragged list: _tau_values raises naming tau
        return False


def _tau_values(tau):
    """An array tau as float64, every element positive and finite."""
    arr = _asarray(tau, "tau")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"tau must be a real scalar or array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all((arr > 0) & (arr < math.inf)):
        bad = arr[~((arr > 0) & (arr < math.inf))].flat[0]
        raise ValueError(f"tau must be positive and finite everywhere, got an element {bad!r}")
    return arr


def _inverse_tau(tau64, dtype):
    """1/tau rounded to dtype and capped at its largest finite value, exactly as the
    kernels round a scalar tau (see README, "Arithmetic")."""
    with np.errstate(over="ignore", divide="ignore"):
        inv = np.minimum(1.0 / tau64, np.finfo(dtype).max)
    return inv.astype(dtype)


def _batch_taus(tau, shape, axis):
    """An array tau as float64 values of the batch shape (shape without axis): it
    broadcasts to that shape, or has len(shape) dimensions with length 1 along axis
    (keepdims)."""
    arr = _tau_values(tau)
    if arr.ndim == len(shape) and arr.shape[axis] == 1:
        arr = arr.squeeze(axis)
    batch = shape[:axis] + shape[axis + 1 :]
    try:
        return np.broadcast_to(arr, batch)
    except ValueError:
        raise ValueError(
            f"tau of shape {np.shape(tau)} does not broadcast to the batch shape {batch} "
            f"(the shape without axis {axis})"
        ) from None


def _row_taus(tau, x, axis):
    """(scalar tau, None) or (1.0, 1/tau per row as a contiguous array of x's dtype)."""
    if _is_scalar_tau(tau):
        return _check_tau(tau), None
    arr = _batch_taus(tau, x.shape, axis)
    return 1.0, np.ascontiguousarray(_inverse_tau(arr, x.dtype)).reshape(-1)


def _elementwise_taus(tau, shape, dtype):
    """1/tau for every element of an array of `shape` (a broadcast view)."""
    if _is_scalar_tau(tau):
        arr = np.array(_check_tau(tau))
    else:
        arr = _tau_values(tau)
    try:
        return np.broadcast_to(_inverse_tau(arr, dtype), shape)
    except ValueError:
        raise ValueError(f"tau of shape {arr.shape} does not broadcast to {shape}") from None


_BFLOAT16 = []  # [ml_dtypes.bfloat16's dtype, or None], filled on first use


def _is_half(dtype):
    """float16, or bfloat16 when ml_dtypes is installed (imported lazily)."""
    if dtype.type is np.float16:
        return True
    if dtype.itemsize != 2 or dtype.kind != "V":  # bfloat16 is a 2-byte user dtype ("V")
        return False  # no import of ml_dtypes for float32, float64 and the like
    if not _BFLOAT16:
        try:
            import ml_dtypes  # optional: bfloat16
        except ImportError:
            _BFLOAT16.append(None)
        else:
            _BFLOAT16.append(np.dtype(ml_dtypes.bfloat16))
    return _BFLOAT16[0] is not None and dtype == _BFLOAT16[0]


def _is_bfloat16(dtype):
    return dtype.type is not np.float16


def _as_float_array(a, name, half=False):
    """An aligned float32/float64 ndarray; integer and bool arrays become float64.

    With half=True returns (array, half dtype or None): float16 and bfloat16 (with
    ml_dtypes) become float32, the dtype they are computed in."""
    arr = _asarray(a, name)
    low = None
    if arr.dtype.type in _FLOAT_TYPES:  # the common case first
        pass
    elif arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif half and _is_half(arr.dtype):
        low = arr.dtype
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        bits = np.ascontiguousarray(arr).view(np.uint16).reshape(arr.shape)  # 0-d stays 0-d
        arr = _core.half_to_float(bits, _is_bfloat16(low))
    else:
        extra = ", float16 or bfloat16" if half else ""
        raise TypeError(
            f"{name} must be a float32 or float64{extra} array (integer and bool arrays are "
            f"converted to float64), got dtype {arr.dtype}"
        )
    if not arr.dtype.isnative:  # byte-swapped: the kernels read native bytes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    elif not arr.flags.aligned:
        arr = arr.copy()
    return (arr, low) if half else arr


def _to_low(result, low, out):
    """A float32 result rounded to the half dtype `low` (into out when given), bit for
    bit as ``result.astype(low)`` but without NumPy's slow path for subnormals."""
    src = np.ascontiguousarray(result, dtype=np.float32).reshape(np.shape(result))
    return _HalfDest(src.shape, low, out).fill(src)


def _check_mask(mask, shape):
    """A boolean mask broadcastable to shape, as a broadcast view of that shape."""
    m = _asarray(mask, "mask")
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    try:
        full = np.broadcast_shapes(m.shape, shape)
    except (ValueError, RuntimeError):  # RuntimeError: more dimensions than it supports
        full = None
    if full != shape:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to logits' shape {shape}")
    return np.broadcast_to(m, shape)


def _half_result(a_low, b_low):
    """The half dtype of a two-input result: only when both inputs have it (a half
    with float32 or float64 promotes to that, as in NumPy)."""
    return a_low if a_low is not None and a_low == b_low else None


def _apply_mask(x, mask):
    """x with -inf where the boolean mask (broadcastable to x.shape) is False."""
    if mask is None:
        return x
    return np.where(_check_mask(mask, x.shape), x, np.array(-np.inf, dtype=x.dtype))


def _kernel_mask(x, mask, axis):
    """(x, mask for the kernel): the kernels apply a mask themselves while gathering
    rows of up to _core.masked_row_limit elements; longer rows are masked here."""
    if mask is None:
        return x, None
    if x.shape[axis] > _core.masked_row_limit(x.dtype.itemsize):
        return _apply_mask(x, mask), None
    m = _check_mask(mask, x.shape)
    if not m.flags.aligned:  # pragma: no cover - bool arrays are always aligned
        m = m.copy()
    return x, m.view(np.uint8)


# Row lengths are limited to 2**31 - 1 elements: the kernels index elements of a row in
# 32-bit vector lanes.
_MAX_ROW = 2**31 - 1
_MAX_BYTES = int(np.iinfo(np.intp).max)  # the largest array NumPy can address
# NumPy's own limit on dimensions (32 before NumPy 2, 64 since).
_MAX_DIMS = getattr(np, "MAXDIMS", None) or (
    64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
)


def _check_result_bytes(shape, itemsize, name):
    """ValueError naming the argument when a result of `shape` cannot even be addressed
    (NumPy's own "array is too big" names nothing); math.prod of ints cannot overflow.
    Only for shapes given as numbers: a result shaped like an existing array of the
    same item size always fits."""
    nbytes = math.prod(shape) * itemsize
    if nbytes > _MAX_BYTES:
        what = f"shape {tuple(shape)}" if name == "shape" else f"{name} of shape {tuple(shape)}"
        raise ValueError(
            f"{what} is too large: a result of {nbytes} bytes exceeds the address space"
        )


def _check_row_length(a, axis, name):
    n = a.shape[axis]
    if n > _MAX_ROW:
        raise ValueError(
            f"{name} rows along axis {axis} have {n} elements; at most 2**31 - 1 are supported"
        )


def _check_axis_arg(axis, name="axis"):
    """An integer axis (not a bool), before the array's ndim is known."""
    try:
        if isinstance(axis, (bool, np.bool_)):
            raise TypeError
        return operator.index(axis)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer (not a bool), got {type(axis).__name__}"
        ) from None


def _check_axis(axis, ndim, name="axis"):
    if type(axis) is int and -ndim <= axis < ndim:  # the common case first
        return axis + ndim if axis < 0 else axis
    axis = _check_axis_arg(axis, name)
    if not -ndim <= axis < ndim:  # also any value too large for a C long
        raise _AxisError(axis, ndim)
    return _normalize_axis_index(axis, ndim)


def _as_rng(rng):
    """SPEC 7: None, int seed, gs.Philox or numpy.random.Generator -> gs.Philox."""
    rng = _kernel_rng(rng)
    if isinstance(rng, np.random.Generator):
        return Philox(int(rng.integers(0, 2**64, dtype=np.uint64)))
    return rng


def _kernel_rng(rng):
    """SPEC 7 for the kernels: a gs.Philox, or the numpy.random.Generator itself.  The
    kernel draws a Generator's seed (as _as_rng does) only after every allocation of
    the call, so that a failed call leaves the Generator as it was."""
    if isinstance(rng, (Philox, _Generator)):
        return rng
    if rng is None:
        return Philox()
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        return Philox(int(rng))
    raise TypeError(
        "rng must be None, an int seed, a gumbel_softmax.Philox or a numpy.random.Generator, "
        f"got {type(rng).__name__}"
    )


def _check_out(out, shape, dtype, inputs=(), in_place=()):
    """Validate a user `out`: ndarray, shape, dtype, writable, aligned, and sharing no
    memory with any of `inputs` ((name, array) pairs, as the caller passed them; None
    and non-arrays are skipped), except that it may be exactly an input named in
    `in_place` (the documented in-place uses)."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or isinstance(out, np.ma.MaskedArray):
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
        if not isinstance(a, np.ndarray) or not np.may_share_memory(out, a):
            continue  # not an array, or disjoint memory bounds (cheap test)
        if name in in_place and _same_memory(out, a):
            continue  # exactly in place
        try:
            overlap = np.shares_memory(out, a, max_work=10**6)
        except _TooHardError:  # undecided within max_work: treat as overlapping
            overlap = True
        if overlap:
            raise ValueError(
                f"out overlaps {name}; it may be {name} itself (in place) but no other view of it"
                if name in in_place
                else f"out shares memory with {name}; they must not overlap"
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


def _sample_setup(logits, axis, out, inputs=()):
    """Checks shared by the categorical samplers; returns (x, half dtype, axis, out).
    `inputs`: the call's other (name, argument) pairs that out must not overlap."""
    x, low = _as_float_array(logits, "logits", half=True)
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    axis = _check_axis(axis, x.ndim)
    _check_row_length(x, axis, "logits")
    if x.shape[axis] == 0:
        raise ValueError(f"axis {axis} of logits has length 0: there is no category to sample")
    if out is not None:
        # the overlap test is against what the caller passed (x may be a converted copy)
        out = _check_out(
            out, x.shape, low or x.dtype, (("logits", logits),) + inputs, in_place=("logits",)
        )
    return x, low, axis, out


class _HalfDest:
    """Where a float16 / bfloat16 result goes (`out`, or a new array), and the uint16
    bits the rounding writes, allocated before the kernel takes rows, so that a
    MemoryError leaves every generator as it was."""

    __slots__ = ("dest", "bits", "bf16", "staged")

    def __init__(self, shape, low, out=None):
        self.bf16 = _is_bfloat16(low)
        self.dest = np.empty(shape, low) if out is None else out
        self.staged = not self.dest.flags.c_contiguous
        self.bits = np.empty(shape, np.uint16) if self.staged else self.dest.view(np.uint16)

    def fill(self, result):
        """The float32 result (C-contiguous, of dest's size) rounded into dest, bit for
        bit as ``result.astype(low)``; allocates nothing."""
        _core.float_to_half(result, self.bf16, self.bits)
        if self.staged:
            np.copyto(self.dest, self.bits.view(self.dest.dtype))
        return self.dest


def _forward(logits, tau, hard, log, axis, rng, out, return_soft, mask):
    hard = _check_flag(hard, "hard")
    return_soft = _check_flag(return_soft, "return_soft")
    x, low, axis, out = _sample_setup(logits, axis, out, (("mask", mask), ("tau", tau)))
    x, kmask = _kernel_mask(x, mask, axis)
    tau, inv_taus = _row_taus(tau, x, axis)
    rng = _kernel_rng(rng)
    if low is None:
        return _core.gumbel_softmax(x, tau, inv_taus, hard, log, axis, rng, out, return_soft, kmask)
    y = _HalfDest(x.shape, low, out)
    soft = _HalfDest(x.shape, low) if hard and return_soft else None
    res = _core.gumbel_softmax(x, tau, inv_taus, hard, log, axis, rng, None, return_soft, kmask)
    if not return_soft:
        return y.fill(res)
    y.fill(res[0])
    return (y.dest, y.dest) if soft is None else (y.dest, soft.fill(res[1]))


def gumbel_softmax(
    logits, tau=1.0, *, hard=False, axis=-1, rng=None, out=None, return_soft=False, mask=None
):
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
    return _forward(logits, tau, hard, False, axis, rng, out, return_soft, mask)


def log_gumbel_softmax(logits, tau=1.0, *, axis=-1, rng=None, out=None, mask=None):
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
    return _forward(logits, tau, False, True, axis, rng, out, False, mask)


def categorical(logits, *, axis=-1, rng=None, mask=None):
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
    x, _, axis, _ = _sample_setup(logits, axis, None)
    x, kmask = _kernel_mask(x, mask, axis)
    return _core.categorical(x, axis, _kernel_rng(rng), kmask)


def top_k(logits, k, *, axis=-1, rng=None, mask=None):
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
    try:
        if isinstance(k, (bool, np.bool_)):
            raise TypeError
        k = operator.index(k)
    except TypeError:
        raise TypeError(f"k must be an integer, got {type(k).__name__}") from None
    x, _, axis, _ = _sample_setup(logits, axis, None)
    x = _apply_mask(x, mask)
    if not 0 <= k <= x.shape[axis]:
        raise ValueError(f"k must be in [0, {x.shape[axis]}] (the length of axis {axis}), got {k}")
    return np.moveaxis(_core.top_k(x, k, axis, _kernel_rng(rng)), -1, axis)


def gumbel_softmax_backward(
    grad_y, y_soft=None, tau=1.0, *, axis=-1, out=None, logits=None, rng=None, mask=None
):
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
        float32 when both inputs are float32 (float16 / bfloat16 inputs give their own
        dtype, computed in float32), else float64.

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
    _check_backward_inputs(y_soft, logits)
    if y_soft is None:
        return _recompute_backward(grad_y, logits, tau, axis, out, rng, mask)
    if mask is not None or rng is not None:
        raise ValueError("mask and rng are for recomputing y_soft from logits; y_soft was given")
    g, glow = _as_float_array(grad_y, "grad_y", half=True)
    s, slow = _as_float_array(y_soft, "y_soft", half=True)
    if g.shape != s.shape:
        raise ValueError(f"y_soft must have the shape of grad_y {g.shape}, got {s.shape}")
    if g.ndim == 0:
        raise ValueError("grad_y must have at least one dimension, got a 0-d array")
    low = _half_result(glow, slow)
    dtype = np.result_type(g.dtype, s.dtype)
    g = g.astype(dtype, copy=False)
    s = s.astype(dtype, copy=False)
    axis = _check_axis(axis, g.ndim)
    _check_row_length(g, axis, "grad_y")
    out = _check_out(
        out,
        g.shape,
        low or dtype,
        (("grad_y", grad_y), ("y_soft", y_soft), ("tau", tau)),
        in_place=("grad_y", "y_soft"),
    )
    tau, inv_taus = _row_taus(tau, g, axis)
    if low is not None:
        return _to_low(_core.gumbel_softmax_backward(g, s, tau, inv_taus, axis, None), low, out)
    return _core.gumbel_softmax_backward(g, s, tau, inv_taus, axis, out)


def _check_backward_inputs(y_soft, logits):
    """Exactly one of y_soft and logits (shared with gumbel_softmax.dask)."""
    if (y_soft is None) == (logits is None):
        raise ValueError(
            "give y_soft (the forward's relaxed sample), or logits and rng to recompute it, "
            "but not both"
            if y_soft is not None
            else "give y_soft (the forward's relaxed sample), or logits and rng to recompute it"
        )


def _recompute_backward(grad_y, logits, tau, axis, out, rng, mask):
    if rng is None:
        raise ValueError(
            "rng must be the generator's state before the forward call to recompute y_soft "
            "(None would draw fresh noise)"
        )
    if isinstance(rng, (Philox, np.random.Generator)):
        # reads the forward's rows (or seed), leaving the caller's generator as it is
        rng = copy.deepcopy(rng) if isinstance(rng, np.random.Generator) else copy.copy(rng)
    g, glow = _as_float_array(grad_y, "grad_y", half=True)
    x, low, ax, _ = _sample_setup(logits, axis, None)
    if g.shape != x.shape:
        raise ValueError(f"logits must have the shape of grad_y {g.shape}, got {x.shape}")
    # Everything the backward checks, before the forward draws from rng: a failing call
    # consumes nothing.  y_soft will have logits' dtype (float32 for half logits).
    dtype = np.result_type(g.dtype, x.dtype)
    out_low = _half_result(glow, low)
    _check_out(
        out,
        g.shape,
        out_low or dtype,
        (("grad_y", grad_y), ("logits", logits), ("mask", mask), ("tau", tau)),
        in_place=("grad_y",),
    )
    _row_taus(tau, x, ax)
    if mask is not None:
        _check_mask(mask, x.shape)
    y_soft = _forward(x, tau, False, False, ax, rng, None, False, mask)
    if low is not None:
        y_soft = _to_low(y_soft, low, None)
    return gumbel_softmax_backward(grad_y, y_soft, tau, axis=ax, out=out)


def _noise_args(shape, dtype):
    """Checks of gumbel()/logistic()'s shape and dtype: (shape tuple, dtype, half dtype
    or None).  Shared with gumbel_softmax.dask."""
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
    if len(shape) > _MAX_DIMS:
        raise ValueError(f"shape has {len(shape)} dimensions; at most {_MAX_DIMS} are supported")
    if shape[-1] > _MAX_ROW:
        raise ValueError(f"shape rows have {shape[-1]} elements; at most 2**31 - 1 are supported")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    low = dtype if _is_half(dtype) else None
    if dtype.type not in _FLOAT_TYPES and low is None:
        raise TypeError(f"dtype must be float32 or float64 (or float16, bfloat16), got {dtype}")
    # float32 for a half dtype, which is computed in float32
    _check_result_bytes(shape, max(dtype.itemsize, 4), "shape")
    return shape, dtype, low


def _noise(shape, dtype, rng, out, logistic):
    if dtype is None:
        dtype = out.dtype if isinstance(out, np.ndarray) else np.float32
    shape, dtype, low = _noise_args(shape, dtype)
    out = _check_out(out, shape, dtype)  # a byte-swapped out raises
    rng = _kernel_rng(rng)
    if low is not None:
        dest = _HalfDest(shape, low, out)
        return dest.fill(_core.noise(list(shape), False, logistic, rng, None))
    return _core.noise(list(shape), dtype.type is np.float64, logistic, rng, out)


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
    return _noise(shape, dtype, rng, out, False)


def logistic(shape, *, dtype=None, rng=None, out=None):
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
    return _noise(shape, dtype, rng, out, True)


def _flat_rows(a):
    """A 0-d array as shape (1,) (one row of one element); others unchanged."""
    return a.reshape(1) if a.ndim == 0 else a


def relaxed_bernoulli(logits, tau=1.0, *, hard=False, rng=None, out=None, return_soft=False):
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
    hard = _check_flag(hard, "hard")
    return_soft = _check_flag(return_soft, "return_soft")
    x, low = _as_float_array(logits, "logits", half=True)
    if x.ndim:
        _check_row_length(x, -1, "logits")
    if out is not None:
        out = _check_out(
            out, x.shape, low or x.dtype, (("logits", logits), ("tau", tau)), in_place=("logits",)
        )
    inv = _elementwise_taus(tau, x.shape, x.dtype)
    rng = _kernel_rng(rng)
    if low is None:
        kout = None if out is None else _flat_rows(out)
        res = _core.relaxed_bernoulli(_flat_rows(x), _flat_rows(inv), hard, rng, kout, return_soft)
        if not return_soft:
            return out if out is not None else res.reshape(x.shape)
        y = out if out is not None else res[0].reshape(x.shape)
        return (y, y) if res[0] is res[1] else (y, res[1].reshape(x.shape))
    y = _HalfDest(x.shape, low, out)
    soft = _HalfDest(x.shape, low) if hard and return_soft else None
    res = _core.relaxed_bernoulli(_flat_rows(x), _flat_rows(inv), hard, rng, None, return_soft)
    if not return_soft:
        return y.fill(res)
    y.fill(res[0])
    return (y.dest, y.dest) if soft is None else (y.dest, soft.fill(res[1]))


def relaxed_bernoulli_backward(grad_y, y_soft, tau=1.0, *, out=None):
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
    g, glow = _as_float_array(grad_y, "grad_y", half=True)
    s, slow = _as_float_array(y_soft, "y_soft", half=True)
    if g.shape != s.shape:
        raise ValueError(f"y_soft must have the shape of grad_y {g.shape}, got {s.shape}")
    if g.ndim:
        _check_row_length(g, -1, "grad_y")
    low = _half_result(glow, slow)
    dtype = np.result_type(g.dtype, s.dtype)
    g = g.astype(dtype, copy=False)
    s = s.astype(dtype, copy=False)
    out = _check_out(
        out,
        g.shape,
        low or dtype,
        (("grad_y", grad_y), ("y_soft", y_soft), ("tau", tau)),
        in_place=("grad_y", "y_soft"),
    )
    inv = _elementwise_taus(tau, g.shape, dtype)
    if low is not None:
        res = _core.relaxed_bernoulli_backward(_flat_rows(g), _flat_rows(s), _flat_rows(inv), None)
        return _to_low(res.reshape(g.shape), low, out)
    # Elementwise and without noise: C-contiguous operands run as one flat row (no
    # per-row overhead for short rows) when that row is not over the row limit; anything
    # else row by row.
    flat = g.flags.c_contiguous and s.flags.c_contiguous and (out is None or out.flags.c_contiguous)
    flat = flat and g.size <= _MAX_ROW
    if flat and (inv.flags.c_contiguous or not any(inv.strides)):
        view = (g.size,)
        res = _core.relaxed_bernoulli_backward(
            g.reshape(view),
            s.reshape(view),
            inv.reshape(view),  # a stride-0 view stays one
            None if out is None else out.reshape(view),
        )
    else:
        res = _core.relaxed_bernoulli_backward(
            _flat_rows(g), _flat_rows(s), _flat_rows(inv), None if out is None else _flat_rows(out)
        )
    return out if out is not None else res.reshape(g.shape)


def concrete_log_prob(y, logits, tau=1.0, *, axis=-1, log_space=False):
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
    log_space = _check_flag(log_space, "log_space")
    yv, ylow = _as_float_array(y, "y", half=True)
    x, xlow = _as_float_array(logits, "logits", half=True)
    try:
        shape = np.broadcast_shapes(yv.shape, x.shape)
    except ValueError:
        raise ValueError(
            f"y of shape {yv.shape} and logits of shape {x.shape} do not broadcast"
        ) from None
    if len(shape) == 0:
        raise ValueError("y must have at least one dimension, got a 0-d array")
    axis = _check_axis(axis, len(shape))
    K = shape[axis]
    if K == 0:
        raise ValueError(f"axis {axis} has length 0: there is no category")
    dtype = np.result_type(yv.dtype, x.dtype)
    yv = np.broadcast_to(yv.astype(dtype, copy=False), shape)
    x = np.broadcast_to(x.astype(dtype, copy=False), shape)
    _check_row_length(yv, axis, "y")
    if _is_scalar_tau(tau):
        t64, step = np.array([_check_tau(tau)]), 0
    else:
        t64, step = np.ascontiguousarray(_batch_taus(tau, shape, axis)).reshape(-1), 1
        if t64.size == 0:
            t64, step = np.ones(1), 0
    info = np.finfo(dtype)
    if not np.all((t64 >= info.tiny) & (t64 <= info.max)):
        raise ValueError(
            f"tau must be a normal {dtype} number for {dtype} data (in [{info.tiny}, {info.max}])"
        )
    # lgamma(K) + (K - 1) log(tau) in float64, rounded once to the data's dtype
    cst = (math.lgamma(K) + (K - 1) * np.log(t64)).astype(dtype)
    res = _core.concrete_log_prob(yv, x, t64.astype(dtype), cst, step, log_space, axis)
    # A half result only when both inputs are of that half type (float16 with float32
    # promotes to float32, as in NumPy).
    if ylow is not None and ylow == xlow:
        return _to_low(res, ylow, None)
    return res


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
    arr = _asarray(a, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValueError(f"{name} values must be in [0, 2**32)")
    return arr.astype(np.uint32, copy=False)


def cpu_target():
    """The SIMD target the kernels run on: ``"baseline"``, ``"avx2"`` or ``"avx512"``.

    Chosen once per process from CPUID; ``GUMBEL_SOFTMAX_TARGET`` forces one (an
    unsupported choice warns and falls back).  Every target gives identical bits.

    Returns
    -------
    str

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.cpu_target() in gs.cpu_targets()
    True
    """
    return _core.cpu_target()


def cpu_targets():
    """The targets compiled into this build that this CPU supports, best last.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.cpu_targets()[0]  # always compiled, runs on any CPU
    'baseline'
    """
    return list(_core.cpu_targets())


def get_num_threads():
    """Threads the kernels use for large calls (1 without OpenMP).

    Returns
    -------
    int

    Examples
    --------
    >>> import gumbel_softmax as gs
    >>> gs.get_num_threads() >= 1
    True
    """
    return _core.get_num_threads()


def set_num_threads(n):
    """Use ``n`` threads for large calls in the whole process; ``0`` or ``None`` follows
    OpenMP's setting (``OMP_NUM_THREADS``, ``threadpoolctl``) again.  Results never
    depend on the thread count.

    Parameters
    ----------
    n : int or None
        Threads, ``>= 0``; ``0`` or ``None`` resets.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.zeros((4096, 64), np.float32)
    >>> gs.set_num_threads(1)
    >>> y1 = gs.gumbel_softmax(x, rng=7)
    >>> gs.set_num_threads(0)  # back to OpenMP's default
    >>> bool((gs.gumbel_softmax(x, rng=7) == y1).all())
    True
    """
    if n is None:
        n = 0
    try:
        if isinstance(n, (bool, np.bool_)):
            raise TypeError
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {type(n).__name__}") from None
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    limit = _core.thread_limit()
    if n > limit:
        raise ValueError(
            f"n must be at most {limit} (4 per processor available to this process), got {n}"
        )
    _core.set_num_threads(n)
