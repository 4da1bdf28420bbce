"""Gumbel-Softmax samplers on Dask arrays, bitwise equal to the NumPy calls.

>>> import numpy as np, dask.array as da
>>> import gumbel_softmax as gs, gumbel_softmax.dask as gsd
>>> x = np.random.default_rng(0).standard_normal((1000, 10)).astype(np.float32)
>>> y = gsd.gumbel_softmax(da.from_array(x, chunks=(128, 10)), 0.5, rng=gs.Philox(7))
>>> bool((y.compute() == gs.gumbel_softmax(x, 0.5, rng=gs.Philox(7))).all())
True

Functions: :func:`gumbel_softmax`, :func:`log_gumbel_softmax`, :func:`categorical`,
:func:`top_k`, :func:`relaxed_top_k`, :func:`conditional_gumbel`,
:func:`relaxed_bernoulli`, :func:`gumbel`, :func:`logistic`,
:func:`gumbel_softmax_backward` and :func:`relaxed_bernoulli_backward`.  They take Dask
arrays (NumPy arrays and array-likes are converted with ``dask.array.asarray``) and
return lazy Dask arrays.  This module needs Dask (``pip install
'gumbel-softmax[dask]'``); ``import gumbel_softmax`` alone never imports Dask.

Choices, for whoever needs to rely on them:

- **Same bits as NumPy, for any chunking.**  A call on an array with ``R`` rows (every
  index combination of the dimensions other than ``axis``, in C order; for
  ``relaxed_bernoulli``, ``gumbel`` and ``logistic``: all dimensions but the last)
  reserves ``R`` rows of the stream once, when the graph is built, exactly as the NumPy
  call does.  Each block then works out the global indices of its rows from its
  location in the array and draws exactly those rows: the rows of a block form runs of
  consecutive global rows (one run when only the first batch dimension is chunked), and
  the block calls the NumPy function once per run with ``Philox(seed, counter=p + first
  row of the run)``, writing into a view of the block's result.  So the computed result
  is bitwise the NumPy call's on the whole array, for every chunking, scheduler and
  number of workers.
- **The sampled axis is one chunk.**  A row must be in one block, so when ``axis``
  (the last axis for the elementwise samplers and the noise) is split into several
  chunks, the input is rechunked into one chunk along it (``x.rechunk({axis: -1})``);
  the result has that single chunk along ``axis`` and the input's chunks along the
  batch dimensions.  Choose batch chunks so that full rows fit in memory.
  ``gumbel``/``logistic`` always make the last axis one chunk (requested chunks along it
  are ignored; ``chunks="auto"`` sizes the batch chunks for full rows).
- **rng.**  As in NumPy (SPEC 7): ``None`` (fresh OS entropy), an int seed (counter 0),
  a :class:`gumbel_softmax.Philox` or a ``numpy.random.Generator`` (one 64-bit seed is
  drawn from it).  A ``Philox`` is advanced by ``R`` when the function is called (graph
  construction, not ``compute``), so the next call, lazy or NumPy, continues the stream
  exactly as after a NumPy call.  The graph holds only ``(seed, counter)``: computing a
  result twice gives the same bits.
- **Eager validation.**  Dtype, shape, ``axis``, ``k``, scalar ``tau`` and ``rng`` are
  checked at call time, with the NumPy API's exception types and messages, and nothing is
  reserved from ``rng`` when a check fails.  So is the ``index`` of
  :func:`conditional_gumbel` (dtype and shape; its values too when it and ``logits`` are
  NumPy arrays; the values of a Dask index or against Dask logits only when the blocks
  run, as for a Dask ``tau``).  Shapes and chunk sizes must be known (no
  NaN chunks: call ``compute_chunk_sizes()`` first).
- **Dtypes** follow the NumPy API: float32 and float64 stay, integer and bool become
  float64, float16 (and bfloat16 with ``ml_dtypes``) are computed on the float32 stream
  and rounded back.
- **tau** is a positive finite scalar or, for :func:`gumbel_softmax`,
  :func:`log_gumbel_softmax`, :func:`relaxed_top_k` and :func:`gumbel_softmax_backward`,
  an array of one temperature per row (NumPy or Dask; broadcastable to the batch shape,
  or with length 1 along ``axis``), and for the relaxed Bernoulli functions an array broadcastable to
  ``logits.shape``.  It is broadcast and chunked like the batch dimensions.  The values
  of a NumPy ``tau`` array are checked at call time; those of a Dask ``tau`` array only
  when the blocks run (the ``ValueError`` comes from ``compute``, and ``rng`` has given
  its rows at the call, as for a call that succeeded).
- **Not supported**: ``mask=`` (use ``-inf`` logits, which the NumPy API treats alike)
  and ``out=`` (results are new Dask arrays).
- **Graph.**  Each result is one ``map_blocks`` layer (plus a rechunk when ``axis`` is
  split) whose name is a token of the inputs, the arguments and the rng state, so equal
  calls give equal graphs and different rng states different ones.  The block functions
  are module-level functions of plain arguments, so the tasks pickle for
  ``dask.distributed``.  ``return_soft=True`` with ``hard=True`` runs the sampler once
  per block and returns two arrays taken from its ``(y, y_soft)`` pair.
- **Threads.**  The kernels of one task use OpenMP threads (``gs.set_num_threads``) as in
  the NumPy API; Dask runs several tasks at once on top of that.  With many Dask threads
  per process, ``gs.set_num_threads(1)`` avoids oversubscription; results never depend
  on it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, SupportsIndex, Union, overload

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
except ImportError as exc:  # pragma: no cover - tested in a subprocess without dask
    raise ImportError("gumbel_softmax.dask needs Dask: pip install 'gumbel-softmax[dask]'") from exc

from . import _api, _args
from ._dask_blocks import (
    backward_block,
    bernoulli_backward_block,
    bernoulli_block,
    conditional_block,
    noise_block,
    sample_block,
)
from ._dask_subset import relaxed_top_k
from ._subset import check_subset_k

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

    from ._typing import Axis, Flag, RngLike, ShapeLike, TauLike

    _ArrayIn = Union[da.Array, ArrayLike]
    _TauIn = Union[TauLike, da.Array]

__all__ = [
    "categorical",
    "conditional_gumbel",
    "gumbel",
    "gumbel_softmax",
    "gumbel_softmax_backward",
    "log_gumbel_softmax",
    "logistic",
    "relaxed_bernoulli",
    "relaxed_bernoulli_backward",
    "relaxed_top_k",
    "top_k",
]


# --------------------------------------------------------------------------- helpers


def _result_dtype(dtype, name):
    """The dtype the NumPy API gives for input `dtype` (TypeError naming `name` if bad)."""
    probe, low = _args.as_float_array(np.zeros(1, dtype=dtype), name, half=True)
    return np.dtype(low) if low is not None else probe.dtype


def _as_dask(a, name):
    """(Dask array, the NumPy API's result dtype for it); other inputs are converted
    with ``dask.array.asarray`` once their dtype is known to be good."""
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        dtype = _result_dtype(a.dtype, name)  # before asarray: it cannot chunk object arrays
        return da.asarray(a), dtype
    return a, _result_dtype(a.dtype, name)


def _check_known(a, name):
    if any(math.isnan(c) for cs in a.chunks for c in cs):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")


def _setup(logits, axis):
    """The checks of the NumPy samplers: (dask array, result dtype, axis)."""
    x, dtype = _as_dask(logits, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    _check_known(x, "logits")
    return x, dtype, _args.check_sample_axis(x, axis)


def _one_chunk(x, axis):
    """x with a single chunk along axis (a no-op when it already has one)."""
    return x if len(x.chunks[axis]) <= 1 else x.rechunk({axis: -1})


def _batch(seq, axis):
    return tuple(seq[:axis]) + tuple(seq[axis + 1 :])


def _tau_array(tau, name="tau"):
    """A Dask tau array as float64 (eager dtype check), or None for a NumPy/scalar tau."""
    if not isinstance(tau, da.Array):
        return None
    if tau.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real scalar or array, got dtype {tau.dtype}")
    _check_known(tau, name)
    return tau.astype(np.float64)


def _broadcast_chunked(arr, shape, chunks):
    """arr broadcast to `shape` with `chunks` (its own dimensions rechunked to match)."""
    off = len(shape) - arr.ndim
    own = tuple(chunks[off + i] if n == shape[off + i] else -1 for i, n in enumerate(arr.shape))
    if own != arr.chunks:
        arr = arr.rechunk(own)
    return da.broadcast_to(arr, tuple(shape), chunks=tuple(chunks))


def _row_tau(tau, shape, chunks, axis):
    """(scalar tau, None) or (1.0, a Dask array of one tau per row, chunked as the batch
    dimensions, with length 1 along axis).  NumPy taus are checked now, as the NumPy API
    checks them; a Dask tau's values are checked by the blocks."""
    batch = _batch(shape, axis)
    arr = _tau_array(tau)
    if arr is None:
        if _args.is_scalar_tau(tau):
            return _args.check_tau(tau), None
        values = _args.tau_values(tau)
        _args.batch_taus(values, shape, axis)  # shape check, NumPy's message
        arr = da.from_array(values, chunks=-1)
    if arr.ndim == len(shape) and arr.shape[axis] == 1:
        arr = arr.squeeze(axis)
    try:
        full = _args.broadcast_shapes(arr.shape, batch)
    except ValueError:
        full = None
    if full != batch:
        raise ValueError(
            f"tau of shape {tau.shape} does not broadcast to the batch shape {batch} "
            f"(the shape without axis {axis})"
        )
    arr = _broadcast_chunked(arr, batch, _batch(chunks, axis))
    return 1.0, da.expand_dims(arr, axis)


def _elementwise_tau(tau, shape, chunks):
    """(scalar tau, None) or (1.0, a Dask tau array of `shape` with `chunks`)."""
    arr = _tau_array(tau)
    if arr is None:
        if _args.is_scalar_tau(tau):
            return _args.check_tau(tau), None
        values = _args.tau_values(tau)
        _args.elementwise_taus(values, shape, np.float64)  # shape check, NumPy's message
        arr = da.from_array(values, chunks=-1)
    try:
        full = _args.broadcast_shapes(arr.shape, tuple(shape))
    except ValueError:
        full = None
    if full != tuple(shape):
        raise ValueError(f"tau of shape {arr.shape} does not broadcast to {tuple(shape)}")
    return 1.0, _broadcast_chunked(arr, shape, chunks)


def _rng_state(rng, rows):
    """(seed, first counter) after reserving `rows` rows of the caller's generator."""
    rng = _args.as_rng(rng)
    return rng.seed, rng.reserve(rows)


def _pick(pair, i):
    return pair[i]


def _split_pair(pair, prefix, token, dtype, chunks):
    """(y, y_soft) as two Dask arrays from a layer whose blocks are (y, y_soft) tuples."""
    meta = np.empty((0,) * len(chunks), dtype)
    return tuple(
        da.map_blocks(
            _pick, pair, i, name=f"{prefix}-{part}-{token}", dtype=dtype, chunks=chunks, meta=meta
        )
        for i, part in enumerate(("y", "ysoft"))
    )


# --------------------------------------------------------------------------- samplers


def _sampler(kind, logits, tau, hard, return_soft, k, axis, rng):
    hard = _args.check_flag(hard, "hard")
    return_soft = _args.check_flag(return_soft, "return_soft")
    x, dtype, axis = _setup(logits, axis)
    if kind == "top_k":
        _args.check_k(k, x.shape[axis], axis)
    elif kind == "subset":
        k = check_subset_k(k, x.shape[axis], axis)
    x = _one_chunk(x, axis)
    tau_arr = None
    if kind in ("soft", "log", "subset"):
        tau, tau_arr = _row_tau(tau, x.shape, x.chunks, axis)
    seed, counter = _rng_state(rng, math.prod(_batch(x.shape, axis)))
    pair = kind in ("soft", "subset") and hard and return_soft
    token = tokenize(
        x.name,
        None if tau_arr is None else tau_arr.name,
        tau,
        hard,
        return_soft,
        k,
        axis,
        seed,
        counter,
        str(dtype),
    )
    prefix = f"gumbel_softmax-{kind}"
    name = f"{prefix}{'-pair' if pair else ''}-{token}"
    args = (x,) if tau_arr is None else (x, tau_arr)
    kwargs = dict(
        kind=kind,
        tau=tau,
        hard=hard,
        return_soft=return_soft,
        k=k,
        axis=axis,
        seed=seed,
        counter=counter,
        out_dtype=dtype,
    )
    if kind == "categorical":
        return da.map_blocks(
            sample_block,
            *args,
            name=name,
            dtype=np.int64,
            chunks=_batch(x.chunks, axis),
            drop_axis=axis,
            meta=np.empty((0,) * (x.ndim - 1), np.int64),
            **kwargs,
        )
    if kind == "top_k":
        chunks = x.chunks[:axis] + ((k,),) + x.chunks[axis + 1 :]
        return da.map_blocks(
            sample_block,
            *args,
            name=name,
            dtype=np.int64,
            chunks=chunks,
            meta=np.empty((0,) * x.ndim, np.int64),
            **kwargs,
        )
    meta = np.empty((0,) * x.ndim, dtype)
    if not pair:
        y = da.map_blocks(
            sample_block, *args, name=name, dtype=dtype, chunks=x.chunks, meta=meta, **kwargs
        )
        return (y, y) if return_soft else y
    both = da.map_blocks(
        sample_block, *args, name=name, dtype=dtype, chunks=x.chunks, meta=meta, **kwargs
    )
    return _split_pair(both, prefix, token, dtype, x.chunks)


@overload
def gumbel_softmax(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Literal[False] = False,
) -> da.Array: ...


@overload
def gumbel_softmax(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Literal[True],
) -> tuple[da.Array, da.Array]: ...


@overload
def gumbel_softmax(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Flag = False,
) -> da.Array | tuple[da.Array, da.Array]: ...


def gumbel_softmax(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    return_soft: Flag = False,
) -> da.Array | tuple[da.Array, da.Array]:
    """Lazy :func:`gumbel_softmax.gumbel_softmax` on a Dask array, bitwise the NumPy call.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        ``ndim >= 1``; float32, float64 (integers and bool become float64), float16.
        When ``axis`` is split into several chunks it is rechunked into one.
    tau : float or array_like
        Positive finite temperature, or one per row (NumPy or Dask array broadcastable
        to the batch shape, or with length 1 along ``axis``).
    hard, axis, return_soft
        As for the NumPy function.  With ``return_soft=True`` returns ``(y, y_soft)``,
        both from one sampler call per block (for ``hard=False`` the same array twice).
    rng : None, int, Philox or numpy.random.Generator
        A ``Philox`` advances now by the number of rows.

    Returns
    -------
    dask.array.Array
        The sample, chunked as ``logits`` along the batch dimensions and with one chunk
        along ``axis``; or ``(y, y_soft)``.
    """
    return _sampler("soft", logits, tau, hard, return_soft, None, axis, rng)


def log_gumbel_softmax(
    logits: _ArrayIn, tau: _TauIn = 1.0, *, axis: Axis = -1, rng: RngLike = None
) -> da.Array:
    """Lazy :func:`gumbel_softmax.log_gumbel_softmax`; arguments as for :func:`gumbel_softmax`."""
    return _sampler("log", logits, tau, False, False, None, axis, rng)


def categorical(logits: _ArrayIn, *, axis: Axis = -1, rng: RngLike = None) -> da.Array:
    """Lazy :func:`gumbel_softmax.categorical`: int64 indices of shape ``logits.shape``
    without ``axis``, chunked as the batch dimensions of ``logits``."""
    return _sampler("categorical", logits, None, False, False, None, axis, rng)


def top_k(logits: _ArrayIn, k: SupportsIndex, *, axis: Axis = -1, rng: RngLike = None) -> da.Array:
    """Lazy :func:`gumbel_softmax.top_k`: int64 indices with ``k`` along ``axis`` (one
    chunk), chunked as ``logits`` along the batch dimensions."""
    k = _args.as_index(k, "k")
    return _sampler("top_k", logits, None, False, False, k, axis, rng)


def _conditional_index(index, logits, x, axis):
    """conditional_gumbel's index as a Dask array of the batch shape, chunked as x's
    batch dimensions, after the NumPy API's checks (all of them when logits and index
    are NumPy arrays; dtype and shape otherwise)."""
    from . import _ops

    if isinstance(index, da.Array):
        if index.dtype.kind not in "iu":
            raise TypeError(f"index must be an integer array, got dtype {index.dtype}")
        batch = _batch(x.shape, axis)
        if index.shape != batch:
            raise ValueError(
                f"index must have shape {batch} (logits' shape without axis {axis}), "
                f"got {index.shape}"
            )
        _check_known(index, "index")
        idx = index.astype(np.int64)
    else:
        probe = np.broadcast_to(np.zeros((), np.float32), x.shape)  # every logit finite
        if not isinstance(logits, da.Array):
            probe = _args.as_float_array(logits, "logits", half=True)[0]
        idx = da.from_array(_ops.conditional_index(index, probe, axis), chunks=-1)
    return _broadcast_chunked(idx, idx.shape, _batch(x.chunks, axis))


def conditional_gumbel(
    logits: _ArrayIn, index: _ArrayIn, *, axis: Axis = -1, rng: RngLike = None
) -> da.Array:
    """Lazy :func:`gumbel_softmax.conditional_gumbel`: ``z`` of ``logits``' shape, given
    its argmax ``index`` along ``axis`` (NumPy or Dask, the batch shape).  ``index`` is
    chunked like the batch dimensions of ``logits``; an index at a ``-inf`` logit raises
    at call time when both are NumPy arrays, else from ``compute``."""
    x, dtype, axis = _setup(logits, axis)
    x = _one_chunk(x, axis)
    idx = da.expand_dims(_conditional_index(index, logits, x, axis), axis)
    seed, counter = _rng_state(rng, math.prod(_batch(x.shape, axis)))
    token = tokenize(x.name, idx.name, axis, seed, counter, str(dtype))
    return da.map_blocks(
        conditional_block,
        x,
        idx,
        name=f"gumbel_softmax-conditional_gumbel-{token}",
        dtype=dtype,
        chunks=x.chunks,
        meta=np.empty((0,) * x.ndim, dtype),
        axis=axis,
        seed=seed,
        counter=counter,
        out_dtype=dtype,
    )


@overload
def relaxed_bernoulli(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    return_soft: Literal[False] = False,
) -> da.Array: ...


@overload
def relaxed_bernoulli(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    return_soft: Literal[True],
) -> tuple[da.Array, da.Array]: ...


@overload
def relaxed_bernoulli(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    return_soft: Flag = False,
) -> da.Array | tuple[da.Array, da.Array]: ...


def relaxed_bernoulli(
    logits: _ArrayIn,
    tau: _TauIn = 1.0,
    *,
    hard: Flag = False,
    rng: RngLike = None,
    return_soft: Flag = False,
) -> da.Array | tuple[da.Array, da.Array]:
    """Lazy :func:`gumbel_softmax.relaxed_bernoulli` (elementwise; its rows are all
    dimensions but the last, which is rechunked into one chunk when split).

    ``tau``: a scalar, or a NumPy or Dask array broadcastable to ``logits.shape``.
    ``return_soft=True`` returns ``(y, y_soft)`` from one sampler call per block.
    """
    hard = _args.check_flag(hard, "hard")
    return_soft = _args.check_flag(return_soft, "return_soft")
    x, dtype = _as_dask(logits, "logits")
    _check_known(x, "logits")
    if x.ndim:
        _args.check_row_length(x, -1, "logits")
        x = _one_chunk(x, x.ndim - 1)
    tau, tau_arr = _elementwise_tau(tau, x.shape, x.chunks)
    seed, counter = _rng_state(rng, math.prod(x.shape[:-1]))
    token = tokenize(
        x.name,
        None if tau_arr is None else tau_arr.name,
        tau,
        hard,
        return_soft,
        seed,
        counter,
        str(dtype),
    )
    prefix = "gumbel_softmax-relaxed_bernoulli"
    name = f"{prefix}{'-pair' if hard and return_soft else ''}-{token}"
    args = (x,) if tau_arr is None else (x, tau_arr)
    meta = np.empty((0,) * x.ndim, dtype)
    y = da.map_blocks(
        bernoulli_block,
        *args,
        name=name,
        dtype=dtype,
        chunks=x.chunks,
        meta=meta,
        tau=tau,
        hard=hard,
        return_soft=return_soft,
        seed=seed,
        counter=counter,
        out_dtype=dtype,
    )
    if not return_soft:
        return y
    return _split_pair(y, prefix, token, dtype, x.chunks) if hard else (y, y)


# --------------------------------------------------------------------------- noise


def _noise(shape, chunks, dtype, rng, logistic):
    shape, dtype, _ = _args.noise_args(shape, np.float32 if dtype is None else dtype)
    if isinstance(chunks, str):
        chunks = (chunks,) * (len(shape) - 1) + (-1,)
    chunks = da.core.normalize_chunks(chunks, shape, dtype=dtype)
    chunks = chunks[:-1] + ((shape[-1],),)
    seed, counter = _rng_state(rng, math.prod(shape[:-1]))
    kind = "logistic" if logistic else "gumbel"
    name = f"gumbel_softmax-{kind}-{tokenize(shape, chunks, str(dtype), seed, counter)}"
    return da.map_blocks(
        noise_block,
        name=name,
        chunks=chunks,
        dtype=dtype,
        meta=np.empty((0,) * len(shape), dtype),
        out_dtype=dtype,
        seed=seed,
        counter=counter,
        logistic=logistic,
    )


def gumbel(
    shape: ShapeLike, *, chunks: Any = "auto", dtype: DTypeLike = np.float32, rng: RngLike = None
) -> da.Array:
    """Lazy :func:`gumbel_softmax.gumbel` noise: bitwise ``gs.gumbel(shape, dtype=dtype,
    rng=rng)`` for any ``chunks``.

    ``chunks`` as for ``dask.array`` (``"auto"``, an int, a tuple, a dict); the last
    axis (the noise rows) is always one chunk.  A ``Philox`` advances now by the number
    of rows (``prod(shape[:-1])``).
    """
    return _noise(shape, chunks, dtype, rng, False)


def logistic(
    shape: ShapeLike, *, chunks: Any = "auto", dtype: DTypeLike = np.float32, rng: RngLike = None
) -> da.Array:
    """Lazy :func:`gumbel_softmax.logistic` noise; arguments as for :func:`gumbel`."""
    return _noise(shape, chunks, dtype, rng, True)


# --------------------------------------------------------------------------- backward


def gumbel_softmax_backward(
    grad_y: _ArrayIn,
    y_soft: _ArrayIn | None = None,
    tau: _TauIn = 1.0,
    *,
    axis: Axis = -1,
    logits: _ArrayIn | None = None,
    rng: RngLike = None,
) -> da.Array:
    """Lazy :func:`gumbel_softmax.gumbel_softmax_backward`, block by block (no noise).

    ``y_soft``, or ``logits`` and ``rng`` in the state of the forward call to recompute
    it (the soft sample is then computed inside the backward's blocks and never stored;
    a ``Philox`` is not advanced).  ``tau`` may be one per row as in the forward.  The
    two inputs are rechunked to one chunk along ``axis`` and to common batch chunks.
    """
    _args.check_backward_inputs(y_soft, logits)
    if y_soft is None:
        rng = _args.forward_rng(rng)  # a copy: the caller's generator is not advanced
        g, _ = _as_dask(grad_y, "grad_y")
        x, _, ax = _setup(logits, axis)
        if g.shape != x.shape:
            raise ValueError(f"logits must have the shape of grad_y {g.shape}, got {x.shape}")
        _row_tau(tau, x.shape, x.chunks, ax)  # checks tau before anything is drawn
        y_soft = gumbel_softmax(x, tau, axis=ax, rng=rng)
        return gumbel_softmax_backward(g, y_soft, tau, axis=ax)
    if rng is not None:
        raise ValueError("rng is for recomputing y_soft from logits; y_soft was given")
    (g, _), (s, _) = _as_dask(grad_y, "grad_y"), _as_dask(y_soft, "y_soft")
    dtype = _api.gumbel_softmax_backward(np.zeros(1, g.dtype), np.zeros(1, s.dtype)).dtype
    _args.check_same_shape(g, s)
    if g.ndim == 0:
        raise ValueError("grad_y must have at least one dimension, got a 0-d array")
    _check_known(g, "grad_y")
    _check_known(s, "y_soft")
    axis = _args.check_axis(axis, g.ndim)
    _args.check_row_length(g, axis, "grad_y")
    g, s = _one_chunk(g, axis), _one_chunk(s, axis)
    ind = tuple(range(g.ndim))
    _, (g, s) = da.core.unify_chunks(g, ind, s, ind)
    tau, tau_arr = _row_tau(tau, g.shape, g.chunks, axis)
    args = (g, s) if tau_arr is None else (g, s, tau_arr)
    token = tokenize(g.name, s.name, None if tau_arr is None else tau_arr.name, tau, axis)
    return da.map_blocks(
        backward_block,
        *args,
        name=f"gumbel_softmax-backward-{token}",
        dtype=dtype,
        chunks=g.chunks,
        meta=np.empty((0,) * g.ndim, dtype),
        tau=tau,
        axis=axis,
    )


def relaxed_bernoulli_backward(grad_y: _ArrayIn, y_soft: _ArrayIn, tau: _TauIn = 1.0) -> da.Array:
    """Lazy :func:`gumbel_softmax.relaxed_bernoulli_backward` (elementwise, any chunks)."""
    (g, _), (s, _) = _as_dask(grad_y, "grad_y"), _as_dask(y_soft, "y_soft")
    dtype = _api.relaxed_bernoulli_backward(np.zeros(1, g.dtype), np.zeros(1, s.dtype)).dtype
    _args.check_same_shape(g, s)
    _check_known(g, "grad_y")
    _check_known(s, "y_soft")
    ind = tuple(range(g.ndim))
    _, (g, s) = da.core.unify_chunks(g, ind, s, ind)
    tau, tau_arr = _elementwise_tau(tau, g.shape, g.chunks)
    args = (g, s) if tau_arr is None else (g, s, tau_arr)
    token = tokenize(g.name, s.name, None if tau_arr is None else tau_arr.name, tau)
    return da.map_blocks(
        bernoulli_backward_block,
        *args,
        name=f"gumbel_softmax-relaxed_bernoulli_backward-{token}",
        dtype=dtype,
        chunks=g.chunks,
        meta=np.empty((0,) * g.ndim, dtype),
        tau=tau,
    )
