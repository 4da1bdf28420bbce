"""Argument normalisation shared by every layer of the package.

The NumPy API (``_api`` / ``_ops``), the layer (``_layer``) and the Dask, JAX and torch
modules check their arguments with these functions, so that each check and its message
is written once.  Every check happens before a kernel runs, so that a bad argument
raises with nothing written and no row of the random stream consumed.
"""

from __future__ import annotations

import copy
import math
import numbers
import operator
from typing import Any

import numpy as np

from . import _core

try:  # NumPy >= 2
    from numpy.lib.array_utils import normalize_axis_index as _normalize_axis_index
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import (  # type: ignore[no-redef]
        normalize_axis_index as _normalize_axis_index,
    )

Philox = _core.Philox
FLOAT_TYPES = (np.float32, np.float64)
_TooHardError = getattr(np, "exceptions", np).TooHardError
AxisError = getattr(np, "exceptions", np).AxisError
_Generator = np.random.Generator  # imported now, not inside a first call


# Not numbers, though Python or NumPy class them as such: bools, and np.timedelta64 (a
# np.signedinteger, so numbers.Integral): refused wherever a number is expected.
NON_NUMBERS = (bool, np.bool_, np.timedelta64)


def check_tau(tau, name="tau"):
    if type(tau) is not float:  # fast path for the common case
        if isinstance(tau, np.ndarray) and tau.ndim == 0:
            tau = asarray(tau, name)  # a masked array raises (np.ma.masked too)
            if tau.dtype.kind in "fiu":
                tau = tau.item()
        if isinstance(tau, (np.ndarray, np.generic)) and is_half(tau.dtype):
            tau = float(tau)  # a bfloat16 (or float16) scalar or 0-d array
        if isinstance(tau, NON_NUMBERS) or not isinstance(tau, numbers.Real):
            raise TypeError(f"{name} must be a real scalar or array, got {type(tau).__name__}")
        tau = as_float(tau, name)
    if not (0.0 < tau < math.inf):
        raise ValueError(f"{name} must be positive and finite, got {tau!r}")
    return tau


def as_float(value, name):
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


def check_flag(value, name):
    """A bool argument (hard, return_soft, log_space, ...): True, False or a NumPy bool;
    anything else, truthy or not, raises TypeError rather than being read as True."""
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")


def asarray(a, name):
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


def is_scalar_tau(tau):
    if type(tau) is float or isinstance(tau, numbers.Real):
        return True
    try:
        return np.ndim(tau) == 0
    except (ValueError, TypeError):  # a ragged list: tau_values raises naming tau
        return False


def tau_values(tau):
    """An array tau as float64, every element positive and finite."""
    arr = asarray(tau, "tau")
    if arr.dtype.kind not in "fiu" and not is_half(arr.dtype):  # bfloat16 is real too
        raise TypeError(f"tau must be a real scalar or array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all((arr > 0) & (arr < math.inf)):
        bad = arr[~((arr > 0) & (arr < math.inf))].flat[0]
        raise ValueError(f"tau must be positive and finite everywhere, got an element {bad!r}")
    return arr


def inverse_tau(tau64, dtype):
    """1/tau rounded to dtype and capped at its largest finite value, exactly as the
    kernels round a scalar tau (see docs/contract.md, "Forward and backward arithmetic")."""
    with np.errstate(over="ignore", divide="ignore"):
        inv = np.minimum(1.0 / tau64, np.finfo(dtype).max)
    return inv.astype(dtype)


def batch_taus(tau, shape, axis):
    """An array tau as float64 values of the batch shape (shape without axis): it
    broadcasts to that shape, or has len(shape) dimensions with length 1 along axis
    (keepdims)."""
    arr = tau_values(tau)
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


def row_taus(tau, x, axis):
    """(scalar tau, None) or (1.0, 1/tau per row as a contiguous array of x's dtype)."""
    if is_scalar_tau(tau):
        return check_tau(tau), None
    arr = batch_taus(tau, x.shape, axis)
    return 1.0, np.ascontiguousarray(inverse_tau(arr, x.dtype)).reshape(-1)


_FLOAT_MAX: dict[np.dtype[Any], float] = {}  # np.finfo(dtype).max as a float, by dtype


def scalar_inverse_tau(tau, dtype):
    """inverse_tau of a scalar tau (a checked float) as a 0-d array: the same bits (1/tau
    in float64, capped at dtype's largest finite value, then rounded to dtype), without
    the array machinery that costs a small call several microseconds."""
    cap = _FLOAT_MAX.get(dtype)
    if cap is None:
        cap = _FLOAT_MAX[dtype] = float(np.finfo(dtype).max)
    return np.array(min(1.0 / tau, cap), dtype)  # (1.0 / tau is inf past float64's range)


def elementwise_taus(tau, shape, dtype):
    """1/tau for every element of an array of `shape` (a read-only broadcast view)."""
    if is_scalar_tau(tau):
        inv = scalar_inverse_tau(check_tau(tau), np.dtype(dtype))
        # np.broadcast_to(inv, shape), built directly (a third of its cost)
        view = np.ndarray(shape, inv.dtype, buffer=inv, strides=(0,) * len(shape))
        view.flags.writeable = False
        return view
    arr = tau_values(tau)
    try:
        return np.broadcast_to(inverse_tau(arr, dtype), shape)
    except ValueError:
        raise ValueError(f"tau of shape {arr.shape} does not broadcast to {shape}") from None


_BFLOAT16: list[
    np.dtype[Any] | None
] = []  # [ml_dtypes.bfloat16's dtype, or None], filled on first use


def is_half(dtype):
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


def is_bfloat16(dtype):
    """For a dtype that is_half takes: bfloat16 (not float16)."""
    return dtype.type is not np.float16


def as_float_array(a, name, half=False):
    """An aligned float32/float64 ndarray; integer and bool arrays become float64.

    With half=True returns (array, half dtype or None): float16 and bfloat16 (with
    ml_dtypes) become float32, the dtype they are computed in."""
    arr = asarray(a, name)
    low = None
    if arr.dtype.type in FLOAT_TYPES:  # the common case first
        pass
    elif arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif half and is_half(arr.dtype):
        if not arr.dtype.isnative:  # the result is native, as for byte-swapped float32
            arr = arr.astype(arr.dtype.newbyteorder("="))
        low = arr.dtype
        bits = np.ascontiguousarray(arr).view(np.uint16).reshape(arr.shape)  # 0-d stays 0-d
        arr = _core.half_to_float(bits, is_bfloat16(low))
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


def common_dtype(a, b):
    """np.result_type(a, b) of two float dtypes, without its cost (about 0.8 us) when
    they are equal (the common case of every backward)."""
    return a if a == b else np.result_type(a, b)


def to_low(result, low, out):
    """A float32 result rounded to the half dtype `low` (into out when given), bit for
    bit as ``result.astype(low)`` but without NumPy's slow path for subnormals."""
    src = np.ascontiguousarray(result, dtype=np.float32).reshape(np.shape(result))
    return HalfDest(src.shape, low, out).fill(src)


def broadcast_shapes(*shapes):
    """np.broadcast_shapes for any number of dimensions: NumPy's stops at 32 (RuntimeError)
    although arrays may have 64.  ValueError when the shapes do not broadcast."""
    n = max((len(s) for s in shapes), default=0)
    out = [1] * n
    for s in shapes:
        for i, d in enumerate(s, n - len(s)):
            if d != 1:
                if out[i] not in (1, d):
                    raise ValueError(f"shapes {shapes} do not broadcast")
                out[i] = d
    return tuple(int(d) for d in out)


def check_mask(mask, shape):
    """A boolean mask broadcastable to shape, as a broadcast view of that shape."""
    m = asarray(mask, "mask")
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
    try:
        full = broadcast_shapes(m.shape, shape)
    except ValueError:
        full = None
    if full != shape:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to logits' shape {shape}")
    return np.broadcast_to(m, shape)


def half_result(a_low, b_low):
    """The half dtype of a two-input result: only when both inputs have it (a half
    with float32 or float64 promotes to that, as in NumPy)."""
    return a_low if a_low is not None and a_low == b_low else None


def apply_mask(x, mask):
    """x with -inf where the boolean mask (broadcastable to x.shape) is False."""
    if mask is None:
        return x
    return np.where(check_mask(mask, x.shape), x, np.array(-np.inf, dtype=x.dtype))


def kernel_mask(x, mask, axis):
    """(x, mask for the kernel): the kernels apply a mask themselves while gathering
    rows of up to _core.masked_row_limit elements; longer rows are masked here."""
    if mask is None:
        return x, None
    if x.shape[axis] > _core.masked_row_limit(x.dtype.itemsize):
        return apply_mask(x, mask), None
    m = check_mask(mask, x.shape)
    if not m.flags.aligned:  # pragma: no cover - bool arrays are always aligned
        m = m.copy()
    return x, m.view(np.uint8)


# Row lengths are limited to 2**31 - 1 elements: the kernels index elements of a row in
# 32-bit vector lanes.
MAX_ROW = 2**31 - 1
MAX_BYTES = int(np.iinfo(np.intp).max)  # the largest array NumPy can address
# NumPy's own limit on dimensions (32 before NumPy 2, 64 since).
MAX_DIMS = getattr(np, "MAXDIMS", None) or (
    64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
)


def check_result_bytes(shape, itemsize, name):
    """ValueError naming the argument when a result of `shape` cannot even be addressed
    (NumPy's own "array is too big" names nothing); math.prod of ints cannot overflow.
    Only for shapes given as numbers: a result shaped like an existing array of the
    same item size always fits.  NumPy refuses an empty shape too when its nonzero
    dimensions alone are too large ((2**62, 0) float32), so zeros count as ones here."""
    nbytes = math.prod(max(n, 1) for n in shape) * itemsize
    if nbytes > MAX_BYTES:
        what = f"shape {tuple(shape)}" if name == "shape" else f"{name} of shape {tuple(shape)}"
        size = f"{nbytes} bytes" if 0 not in shape else f"{nbytes} bytes without its zeros"
        raise ValueError(f"{what} is too large: a result of {size} exceeds the address space")


def check_row_length(a, axis, name):
    n = a.shape[axis]
    if n > MAX_ROW:
        raise ValueError(
            f"{name} rows along axis {axis} have {n} elements; at most 2**31 - 1 are supported"
        )


def check_axis_arg(axis, name="axis"):
    """An integer axis (not a bool), before the array's ndim is known."""
    try:
        if isinstance(axis, NON_NUMBERS):
            raise TypeError
        return operator.index(axis)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer (not a bool), got {type(axis).__name__}"
        ) from None


def check_axis(axis, ndim, name="axis"):
    if type(axis) is int and -ndim <= axis < ndim:  # the common case first
        return axis + ndim if axis < 0 else axis
    axis = check_axis_arg(axis, name)
    if not -ndim <= axis < ndim:  # also any value too large for a C long
        raise AxisError(axis, ndim)
    return _normalize_axis_index(axis, ndim)


def as_rng(rng, name="rng"):
    """SPEC 7: None, int seed, gs.Philox or numpy.random.Generator -> gs.Philox (name:
    the argument's name in the errors)."""
    rng = kernel_rng(rng, name)
    if isinstance(rng, np.random.Generator):
        return Philox(int(rng.integers(0, 2**64, dtype=np.uint64)))
    return rng


def kernel_rng(rng, name="rng"):
    """SPEC 7 for the kernels: a gs.Philox, or the numpy.random.Generator itself.  The
    kernel draws a Generator's seed (as as_rng does) only after every allocation of
    the call, so that a failed call leaves the Generator as it was.  An int seed out of
    range raises ValueError naming the argument and the seed ("rng: seed must be ...")."""
    if isinstance(rng, (Philox, _Generator)):
        return rng
    if rng is None:
        return Philox()
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, NON_NUMBERS):
        seed = int(rng)
        if not 0 <= seed < 2**64:
            raise ValueError(f"{name}: seed must be in [0, 2**64), got {seed}")
        return Philox(seed)
    raise TypeError(
        f"{name} must be None, an int seed, a gumbel_softmax.Philox or a "
        f"numpy.random.Generator, got {type(rng).__name__}"
    )


def check_out(out, shape, dtype, inputs=(), in_place=()):
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
        _check_overlap(out, name, a, name in in_place)
    return out


def _check_overlap(out, name, a, in_place):
    """ValueError when out shares memory with the input array a (named name), unless
    in_place and out is exactly a."""
    if in_place and same_memory(out, a):
        return  # exactly in place
    try:
        overlap = np.shares_memory(out, a, max_work=10**6)
    except _TooHardError:  # undecided within max_work: treat as overlapping
        overlap = True
    if overlap:
        raise ValueError(
            f"out overlaps {name}; it may be {name} itself (in place) but no other view of it"
            if in_place
            else f"out shares memory with {name}; they must not overlap"
        )


def same_memory(a, b):
    """True when a and b are the very same elements in the same layout (the stride of a
    dimension of length 1 is never used, so it may differ)."""
    ia, ib = a.__array_interface__, b.__array_interface__
    return (
        ia["data"][0] == ib["data"][0]
        and a.shape == b.shape
        and all(n <= 1 or sa == sb for n, sa, sb in zip(a.shape, a.strides, b.strides))
        and a.dtype == b.dtype
    )


def sample_setup(logits, axis, out, inputs=()):
    """Checks shared by the categorical samplers; returns (x, half dtype, axis, out).
    `inputs`: the call's other (name, argument) pairs that out must not overlap."""
    x, low = as_float_array(logits, "logits", half=True)
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    # check_sample_axis, written out: this is every small call's path
    axis = check_axis(axis, x.ndim)
    check_row_length(x, axis, "logits")
    if x.shape[axis] == 0:
        raise ValueError(f"axis {axis} of logits has length 0: there is no category to sample")
    if out is not None:
        # the overlap test is against what the caller passed (x may be a converted copy)
        out = check_out(
            out, x.shape, low or x.dtype, (("logits", logits),) + inputs, in_place=("logits",)
        )
    return x, low, axis, out


class HalfDest:
    """Where a float16 / bfloat16 result goes (`out`, or a new array), and the uint16
    bits the rounding writes, allocated before the kernel takes rows, so that a
    MemoryError leaves every generator as it was."""

    __slots__ = ("dest", "bits", "bf16", "staged")

    def __init__(self, shape, low, out=None):
        self.bf16 = is_bfloat16(low)
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


def check_backward_inputs(y_soft, logits):
    """Exactly one of y_soft and logits (shared with gumbel_softmax.dask)."""
    if (y_soft is None) == (logits is None):
        raise ValueError(
            "give y_soft (the forward's relaxed sample), or logits and rng to recompute it, "
            "but not both"
            if y_soft is not None
            else "give y_soft (the forward's relaxed sample), or logits and rng to recompute it"
        )


def noise_args(shape, dtype):
    """Checks of gumbel()/logistic()'s shape and dtype: (shape tuple, dtype, half dtype
    or None).  Shared with gumbel_softmax.dask."""
    try:
        if isinstance(shape, NON_NUMBERS):  # (True would be 1)
            raise TypeError
        shape = (operator.index(shape),)
    except TypeError:
        try:
            dims = tuple(shape)  # (once: shape may be an iterator)
            if any(isinstance(n, NON_NUMBERS) for n in dims):
                raise TypeError
            shape = tuple(operator.index(n) for n in dims)
        except TypeError:
            raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if len(shape) == 0:
        raise ValueError("shape must have at least one dimension")
    if any(n < 0 for n in shape):
        raise ValueError(f"shape must not have negative dimensions, got {shape}")
    if len(shape) > MAX_DIMS:
        raise ValueError(f"shape has {len(shape)} dimensions; at most {MAX_DIMS} are supported")
    if shape[-1] > MAX_ROW:
        raise ValueError(f"shape rows have {shape[-1]} elements; at most 2**31 - 1 are supported")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if not dtype.isnative and dtype.kind == "f":  # '>f2' as '>f4': a native result
        dtype = dtype.newbyteorder("=")
    low = dtype if is_half(dtype) else None
    if dtype.type not in FLOAT_TYPES and low is None:
        raise TypeError(f"dtype must be float32 or float64 (or float16, bfloat16), got {dtype}")
    # float32 for a half dtype, which is computed in float32
    check_result_bytes(shape, max(dtype.itemsize, 4), "shape")
    return shape, dtype, low


def flat_rows(a):
    """A 0-d array as shape (1,) (one row of one element); others unchanged."""
    return a.reshape(1) if a.ndim == 0 else a


def as_words(a, name):
    arr = asarray(a, name)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValueError(f"{name} values must be in [0, 2**32)")
    return arr.astype(np.uint32, copy=False)


def as_index(value, name):
    """An integer argument other than an axis (k, n): a bool raises as any non-integer."""
    try:
        if isinstance(value, NON_NUMBERS):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None


def check_k(k, n, axis):
    """top_k's k against the length n of the category axis."""
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}] (the length of axis {axis}), got {k}")


def check_sample_axis(x, axis):
    """The category axis of a sampler's logits x (NumPy or Dask), normalised."""
    axis = check_axis(axis, x.ndim)
    check_row_length(x, axis, "logits")
    if x.shape[axis] == 0:
        raise ValueError(f"axis {axis} of logits has length 0: there is no category to sample")
    return axis


def check_same_shape(g, s):
    """A backward's grad_y and y_soft (NumPy or Dask arrays) have one shape."""
    if g.shape != s.shape:
        raise ValueError(f"y_soft must have the shape of grad_y {g.shape}, got {s.shape}")


def forward_rng(rng):
    """The generator of a recomputed forward, in the caller's state before the forward:
    a copy of a Philox or Generator, which the recomputation advances instead."""
    if rng is None:
        raise ValueError(
            "rng must be the generator's state before the forward call to recompute y_soft "
            "(None would draw fresh noise)"
        )
    if isinstance(rng, (Philox, np.random.Generator)):
        # reads the forward's rows (or seed), leaving the caller's generator as it is
        rng = copy.deepcopy(rng) if isinstance(rng, np.random.Generator) else copy.copy(rng)
    return rng
