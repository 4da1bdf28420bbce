"""The NumPy recipe of each op: its arguments normalised (``_args``), then its kernel.

The public functions of ``_api`` (signatures and docstrings) call these.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core
from ._args import (
    MAX_ROW,
    HalfDest,
    apply_mask,
    as_float_array,
    as_index,
    as_words,
    asarray,
    batch_taus,
    broadcast_shapes,
    check_axis,
    check_backward_inputs,
    check_flag,
    check_k,
    check_mask,
    check_out,
    check_row_length,
    check_same_shape,
    check_tau,
    common_dtype,
    elementwise_taus,
    flat_rows,
    forward_rng,
    half_result,
    is_bfloat16,
    is_half,
    is_scalar_tau,
    kernel_mask,
    kernel_rng,
    noise_args,
    row_taus,
    sample_setup,
    to_low,
)

# The common case of a sampler (a float32/float64 ndarray, a scalar tau, no mask, ...:
# csrc/bindings/fast_path.hpp) is checked and run by one C++ call; anything else runs the
# general path below, which checks everything (and raises the errors).  The C++ entries
# call the general path themselves (set at the end of this module), which saves small
# calls a Python frame:
#   forward(logits, tau, hard, log, axis, rng, out, return_soft, mask)
#     gumbel_softmax and log_gumbel_softmax: _core.forward_fast, else forward_general;
#   categorical(logits, axis, rng, mask)
#     _core.categorical_fast, else categorical_general.
forward = _core.forward_entry
categorical = _core.categorical_entry


def forward_general(logits, tau, hard, log, axis, rng, out, return_soft, mask):
    """The sampler of gumbel_softmax and log_gumbel_softmax (every case)."""
    hard = check_flag(hard, "hard")
    return_soft = check_flag(return_soft, "return_soft")
    if mask is None and type(logits) is np.ndarray and is_half(logits.dtype):
        res = half_forward(logits, tau, hard, log, axis, rng, out, return_soft)
        if res is not None:
            return res
    x, low, axis, out = sample_setup(logits, axis, out, (("mask", mask), ("tau", tau)))
    x, kmask = kernel_mask(x, mask, axis)
    tau, inv_taus = row_taus(tau, x, axis)
    rng = kernel_rng(rng)
    if low is None:
        return _core.gumbel_softmax(x, tau, inv_taus, hard, log, axis, rng, out, return_soft, kmask)
    y = HalfDest(x.shape, low, out)
    soft = HalfDest(x.shape, low) if hard and return_soft else None
    res = _core.gumbel_softmax(x, tau, inv_taus, hard, log, axis, rng, None, return_soft, kmask)
    if not return_soft:
        return y.fill(res)
    y.fill(res[0])
    return (y.dest, y.dest) if soft is None else (y.dest, soft.fill(res[1]))


def half_forward(logits, tau, hard, log, axis, rng, out, return_soft):
    """forward() of a float16 / bfloat16 ndarray with the conversions fused into the
    kernel (rows of 33 to 2**15 elements; shorter and longer rows have faster float32
    paths): the same checks in the same order, the same bits; None where it does not apply."""
    if logits.ndim == 0 or not (logits.dtype.isnative and logits.flags.aligned):
        return None
    axis = check_axis(axis, logits.ndim)
    if not 32 < logits.shape[axis] <= 2**15:
        return None
    low = logits.dtype
    out = check_out(
        out, logits.shape, low, (("logits", logits), ("tau", tau)), in_place=("logits",)
    )
    tau, inv_taus = row_taus(tau, np.broadcast_to(np.float32(0), logits.shape), axis)
    rng = kernel_rng(rng)
    y = HalfDest(logits.shape, low, out)
    soft = HalfDest(logits.shape, low) if hard and return_soft else None
    bits = logits.view(np.uint16)
    sbits = None if soft is None else soft.bits
    _core.gumbel_softmax_half(
        bits, tau, inv_taus, hard, log, axis, rng, y.bits, sbits, is_bfloat16(low)
    )
    for d in (y, soft):
        if d is not None and d.staged:
            np.copyto(d.dest, d.bits.view(d.dest.dtype))
    if not return_soft:
        return y.dest
    return (y.dest, y.dest) if soft is None else (y.dest, soft.dest)


def categorical_general(logits, axis, rng, mask):
    x, _, axis, _ = sample_setup(logits, axis, None)
    x, kmask = kernel_mask(x, mask, axis)
    return _core.categorical(x, axis, kernel_rng(rng), kmask)


def conditional_gumbel(logits, index, axis, rng, out):
    x, low, axis, out = sample_setup(logits, axis, out, (("index", index),))
    idx = conditional_index(index, x, axis)
    rng = kernel_rng(rng)
    if low is None:
        return _core.conditional_gumbel(x, idx, axis, rng, out)
    z = HalfDest(x.shape, low, out)
    z.fill(_core.conditional_gumbel(x, idx, axis, rng, None))
    return half_ties(z.dest, idx, axis)


def half_ties(z, idx, axis):
    """The tie rule after rounding to a half dtype, which can make z[j] == z[I]: for
    j < I such a z[j] becomes the next number below z[I] (rounding keeps z[j] <= z[I])."""
    zm = np.moveaxis(z, axis, -1)
    zi = take_at(zm, idx, -1)[..., None]
    tie = (np.arange(zm.shape[-1]) < idx[..., None]) & (
        zm.astype(np.float32) >= zi.astype(np.float32)
    )
    if tie.any():
        b = np.ascontiguousarray(zi).view(np.uint16)  # sign and magnitude
        below = np.where((b & 0x7FFF) == 0, 0x8001, np.where(b & 0x8000, b + 1, b - 1))
        zm[tie] = np.broadcast_to(below.astype(np.uint16).view(z.dtype), zm.shape)[tie]
    return z


def take_at(a, idx, axis):
    """a[..., idx, ...] along axis, one element per row (idx: the batch shape), as a
    plain ndarray (a np.matrix keeps two dimensions through indexing): np.take_along_axis,
    or for 64 dimensions, where it stops, the rows indexed in a copy."""
    a = np.asarray(a)
    if axis in (-1, a.ndim - 1) and a.flags.c_contiguous:  # rows one after the other
        rows = a.reshape(-1, a.shape[-1])  # (a view; a fifth of take_along_axis's cost)
        return rows[np.arange(rows.shape[0]), idx.reshape(-1)].reshape(idx.shape)
    if a.ndim < 64:
        return np.take_along_axis(a, np.expand_dims(idx, axis), axis).squeeze(axis)
    rows = np.moveaxis(a, axis, -1).reshape(-1, a.shape[axis])
    return rows[np.arange(rows.shape[0]), idx.reshape(-1)].reshape(idx.shape)


def conditional_index(index, x, axis):
    """conditional_gumbel's index: integers of the batch shape, each in range and at a
    logit that is not -inf; as a C-contiguous int64 array."""
    idx = asarray(index, "index")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"index must be an integer array, got dtype {idx.dtype}")
    batch = x.shape[:axis] + x.shape[axis + 1 :]
    if idx.shape != batch:
        raise ValueError(
            f"index must have shape {batch} (logits' shape without axis {axis}), got {idx.shape}"
        )
    n = x.shape[axis]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise IndexError(f"index values must be in [0, {n}) (axis {axis} of logits), got {bad}")
    idx = idx.astype(np.int64, order="C", copy=not idx.flags.aligned)  # 0-d stays 0-d
    at = take_at(x, idx, axis)
    if (at == -np.inf).any():
        raise ValueError(
            "index points at a -inf (masked) logit, a category of probability 0: "
            "there is no sample with that argmax"
        )
    return idx


def top_k(logits, k, axis, rng, mask):
    k = as_index(k, "k")
    x, _, axis, _ = sample_setup(logits, axis, None)
    x = apply_mask(x, mask)
    check_k(k, x.shape[axis], axis)
    return np.moveaxis(_core.top_k(x, k, axis, kernel_rng(rng)), -1, axis)


def softmax_backward(grad_y, y_soft, tau, axis, out, logits, rng, mask):
    """gumbel_softmax_backward: from y_soft, or from the forward's inputs."""
    check_backward_inputs(y_soft, logits)
    if y_soft is None:
        return recompute_backward(grad_y, logits, tau, axis, out, rng, mask)
    if mask is not None or rng is not None:
        raise ValueError("mask and rng are for recomputing y_soft from logits; y_soft was given")
    g, glow = as_float_array(grad_y, "grad_y", half=True)
    s, slow = as_float_array(y_soft, "y_soft", half=True)
    check_same_shape(g, s)
    if g.ndim == 0:
        raise ValueError("grad_y must have at least one dimension, got a 0-d array")
    low = half_result(glow, slow)
    dtype = common_dtype(g.dtype, s.dtype)
    g = g.astype(dtype, copy=False)
    s = s.astype(dtype, copy=False)
    axis = check_axis(axis, g.ndim)
    check_row_length(g, axis, "grad_y")
    out = check_out(
        out,
        g.shape,
        low or dtype,
        (("grad_y", grad_y), ("y_soft", y_soft), ("tau", tau)),
        in_place=("grad_y", "y_soft"),
    )
    tau, inv_taus = row_taus(tau, g, axis)
    if low is not None:
        return to_low(_core.gumbel_softmax_backward(g, s, tau, inv_taus, axis, None), low, out)
    return _core.gumbel_softmax_backward(g, s, tau, inv_taus, axis, out)


def recompute_backward(grad_y, logits, tau, axis, out, rng, mask):
    """gumbel_softmax_backward with y_soft recomputed from the forward's inputs."""
    rng = forward_rng(rng)
    g, glow = as_float_array(grad_y, "grad_y", half=True)
    x, low, ax, _ = sample_setup(logits, axis, None)
    if g.shape != x.shape:
        raise ValueError(f"logits must have the shape of grad_y {g.shape}, got {x.shape}")
    # Everything the backward checks, before the forward draws from rng: a failing call
    # consumes nothing.  y_soft will have logits' dtype (float32 for half logits).
    dtype = common_dtype(g.dtype, x.dtype)
    out_low = half_result(glow, low)
    check_out(
        out,
        g.shape,
        out_low or dtype,
        (("grad_y", grad_y), ("logits", logits), ("mask", mask), ("tau", tau)),
        in_place=("grad_y",),
    )
    t, inv_taus = row_taus(tau, x, ax)
    if mask is not None:
        check_mask(mask, x.shape)
    if g.dtype == x.dtype:  # fused: each row's y_soft recomputed in cache, then its backward
        x = apply_mask(x, mask)
        round_soft = 0 if low is None else 2 if is_bfloat16(low) else 1
        kout = None if out_low is not None else out
        res = _core.gumbel_softmax_backward_recompute(
            g, x, t, inv_taus, ax, kernel_rng(rng), kout, round_soft
        )
        return res if out_low is None else to_low(res, out_low, out)
    y_soft = forward(x, tau, False, False, ax, rng, None, False, mask)
    if low is not None:
        y_soft = to_low(y_soft, low, None)
    return softmax_backward(grad_y, y_soft, tau, ax, out, None, None, None)


def noise(shape, dtype, rng, out, logistic):
    """gumbel() (logistic=False) and logistic(): the common case in one C++ call
    (_core.noise_fast: an int or a tuple of ints as shape, dtype None / float32 /
    float64, rng None / int / Philox, no out), else noise_general."""
    res = _core.noise_fast(shape, dtype, rng, out, logistic)
    return noise_general(shape, dtype, rng, out, logistic) if res is None else res


def noise_general(shape, dtype, rng, out, logistic):
    """noise(), every case: checked here (the errors are raised here)."""
    if dtype is None:
        dtype = out.dtype if isinstance(out, np.ndarray) else np.float32
    shape, dtype, low = noise_args(shape, dtype)
    out = check_out(out, shape, dtype)  # a byte-swapped out raises
    rng = kernel_rng(rng)
    if low is not None:
        dest = HalfDest(shape, low, out)
        return dest.fill(_core.noise(list(shape), False, logistic, rng, None))
    return _core.noise(list(shape), dtype.type is np.float64, logistic, rng, out)


def relaxed_bernoulli(logits, tau, hard, rng, out, return_soft):
    hard = check_flag(hard, "hard")
    return_soft = check_flag(return_soft, "return_soft")
    x, low = as_float_array(logits, "logits", half=True)
    if x.ndim:
        check_row_length(x, -1, "logits")
    if out is not None:
        out = check_out(
            out, x.shape, low or x.dtype, (("logits", logits), ("tau", tau)), in_place=("logits",)
        )
    inv = elementwise_taus(tau, x.shape, x.dtype)
    rng = kernel_rng(rng)
    if low is None:
        kout = None if out is None else flat_rows(out)
        res = _core.relaxed_bernoulli(flat_rows(x), flat_rows(inv), hard, rng, kout, return_soft)
        if not return_soft:
            return out if out is not None else res.reshape(x.shape)
        y = out if out is not None else res[0].reshape(x.shape)
        return (y, y) if res[0] is res[1] else (y, res[1].reshape(x.shape))
    y = HalfDest(x.shape, low, out)
    soft = HalfDest(x.shape, low) if hard and return_soft else None
    res = _core.relaxed_bernoulli(flat_rows(x), flat_rows(inv), hard, rng, None, return_soft)
    if not return_soft:
        return y.fill(res)
    y.fill(res[0])
    return (y.dest, y.dest) if soft is None else (y.dest, soft.fill(res[1]))


def relaxed_bernoulli_backward(grad_y, y_soft, tau, out):
    g, glow = as_float_array(grad_y, "grad_y", half=True)
    s, slow = as_float_array(y_soft, "y_soft", half=True)
    check_same_shape(g, s)
    if g.ndim:
        check_row_length(g, -1, "grad_y")
    low = half_result(glow, slow)
    dtype = common_dtype(g.dtype, s.dtype)
    g = g.astype(dtype, copy=False)
    s = s.astype(dtype, copy=False)
    out = check_out(
        out,
        g.shape,
        low or dtype,
        (("grad_y", grad_y), ("y_soft", y_soft), ("tau", tau)),
        in_place=("grad_y", "y_soft"),
    )
    inv = elementwise_taus(tau, g.shape, dtype)
    if low is not None:
        res = _core.relaxed_bernoulli_backward(flat_rows(g), flat_rows(s), flat_rows(inv), None)
        return to_low(res.reshape(g.shape), low, out)
    # Elementwise and without noise: C-contiguous operands run as one flat row (no
    # per-row overhead for short rows) when that row is not over the row limit; anything
    # else row by row.
    flat = g.flags.c_contiguous and s.flags.c_contiguous and (out is None or out.flags.c_contiguous)
    flat = flat and g.size <= MAX_ROW
    if flat and (inv.flags.c_contiguous or not any(inv.strides)):
        view = (g.size,)
        res = _core.relaxed_bernoulli_backward(
            g.reshape(view),
            s.reshape(view),
            inv.reshape(view),  # a stride-0 view stays one
            # (np.asarray: a subclass's reshape may keep two dimensions, as np.matrix does)
            None if out is None else np.asarray(out).reshape(view),
        )
    else:
        res = _core.relaxed_bernoulli_backward(
            flat_rows(g), flat_rows(s), flat_rows(inv), None if out is None else flat_rows(out)
        )
    return out if out is not None else res.reshape(g.shape)


def concrete_log_prob(y, logits, tau, axis, log_space):
    log_space = check_flag(log_space, "log_space")
    yv, ylow = as_float_array(y, "y", half=True)
    x, xlow = as_float_array(logits, "logits", half=True)
    try:
        shape = broadcast_shapes(yv.shape, x.shape)
    except ValueError:
        raise ValueError(
            f"y of shape {yv.shape} and logits of shape {x.shape} do not broadcast"
        ) from None
    if len(shape) == 0:
        raise ValueError("y must have at least one dimension, got a 0-d array")
    axis = check_axis(axis, len(shape))
    K = shape[axis]
    if K == 0:
        raise ValueError(f"axis {axis} has length 0: there is no category")
    dtype = common_dtype(yv.dtype, x.dtype)
    # (broadcast views only where needed: np.broadcast_to costs a small call ~10%)
    yv, x = yv.astype(dtype, copy=False), x.astype(dtype, copy=False)
    yv = yv if yv.shape == shape else np.broadcast_to(yv, shape)
    x = x if x.shape == shape else np.broadcast_to(x, shape)
    check_row_length(yv, axis, "y")
    info = np.finfo(dtype)
    if is_scalar_tau(tau):
        t = check_tau(tau)
        t64, step = np.array([t]), 0
        normal = float(info.tiny) <= t <= float(info.max)  # in float64, as the array's test
    else:
        t64, step = np.ascontiguousarray(batch_taus(tau, shape, axis)).reshape(-1), 1
        if t64.size == 0:
            t64, step = np.ones(1), 0
        normal = np.all((t64 >= info.tiny) & (t64 <= info.max))
    if not normal:
        raise ValueError(
            f"tau must be a normal {dtype} number for {dtype} data (in [{info.tiny}, {info.max}])"
        )
    # lgamma(K) + (K - 1) log(tau) in float64, rounded once to the data's dtype
    cst = (math.lgamma(K) + (K - 1) * np.log(t64)).astype(dtype)
    res = _core.concrete_log_prob(yv, x, t64.astype(dtype), cst, step, log_space, axis)
    # A half result only when both inputs are of that half type (float16 with float32
    # promotes to float32, as in NumPy).
    if ylow is not None and ylow == xlow:
        return to_low(res, ylow, None)
    return res


def philox4x32(counters, key):
    c = as_words(counters, "counters")
    k = as_words(key, "key")
    if c.ndim == 0 or c.shape[-1] != 4:
        raise ValueError(f"counters must have shape (..., 4), got {c.shape}")
    if k.shape != (2,):
        raise ValueError(f"key must have shape (2,), got {k.shape}")
    return _core.philox4x32(np.ascontiguousarray(c), int(k[0]), int(k[1]))


def set_num_threads(n):
    if n is None:
        n = 0
    n = as_index(n, "n")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    limit = _core.thread_limit()
    if n > limit:
        raise ValueError(
            f"n must be at most {limit} (4 per processor available to this process), got {n}"
        )
    _core.set_num_threads(n)


_core.set_general_paths(forward_general, categorical_general)
