"""The block functions of ``gumbel_softmax.dask``: what each Dask task runs.

Module-level functions of plain arguments (they pickle for ``dask.distributed``) that
need NumPy only.  A block works out the global rows it covers from its location in the
array and draws exactly those rows, one NumPy call per run of consecutive rows.
"""

from __future__ import annotations

import numpy as np

from . import _api, _subset
from ._args import Philox


def _runs(starts, extents, full):
    """The runs of consecutive global rows of a block of the batch dimensions.

    starts, extents: the block's position and size along each batch dimension (C order
    of the rows); full: the array's batch shape.  Returns (runs, t): `runs` is a list of
    (index, first_row), `index` a tuple of block-local indices into the dimensions
    before `t` (``()`` when the block is a single run); each run covers the whole block along dimension `t` and the dimensions
    after it (which the block covers entirely), rows first_row, first_row + 1, ...
    """
    n = len(full)
    if n == 0:
        return [((), 0)]
    strides = [1] * n
    for j in range(n - 2, -1, -1):
        strides[j] = strides[j + 1] * full[j + 1]
    t = 0
    for j in range(n - 1, -1, -1):
        if extents[j] != full[j]:
            t = j
            break
    base = sum(starts[j] * strides[j] for j in range(t + 1))
    if all(e == 1 for e in extents[:t]):  # t == 0 included: the whole block is one run
        return [((), base)]
    outer = strides[:t]
    return [
        (idx, base + sum(i * s for i, s in zip(idx, outer))) for idx in np.ndindex(*extents[:t])
    ]


def _block_runs(info, axis, ndim):
    """The runs of a block whose row axis is `axis` (block_info of the input)."""
    loc, full = info["array-location"], info["shape"]
    dims = [j for j in range(ndim) if j != axis]
    return _runs(
        [loc[j][0] for j in dims], [loc[j][1] - loc[j][0] for j in dims], [full[j] for j in dims]
    )


def sample_block(
    x, *tau_block, kind, tau, hard, return_soft, k, axis, seed, counter, out_dtype, block_info=None
):
    """One block of a categorical sampler: the rows it covers, one NumPy call per run."""
    runs = _block_runs(block_info[0], axis, x.ndim)
    xm = np.moveaxis(x, axis, -1)
    tm = np.moveaxis(tau_block[0], axis, -1) if tau_block else None
    single = len(runs) == 1
    pair = kind in ("soft", "subset") and hard and return_soft  # (y, y_soft)
    y, ym = _block_result(kind, x, xm, axis, k, out_dtype)
    soft = soft_m = None
    if pair and not single:
        soft = np.empty(x.shape, out_dtype)
        soft_m = np.moveaxis(soft, axis, -1)
    for idx, row in runs:
        rng = Philox(seed, counter=counter + row)
        tr = tau if tm is None else tm[idx]
        run_soft = _sample_run(kind, xm[idx], tr, k, hard, pair, rng, ym, idx)
        if pair:
            if single:
                soft = np.moveaxis(run_soft, -1, axis)
            else:
                soft_m[idx] = run_soft
    return (y, soft) if pair else y


def _block_result(kind, x, xm, axis, k, out_dtype):
    """(y, ym): a categorical sampler's result for block x, and y with axis last."""
    if kind == "categorical":
        y = np.empty(xm.shape[:-1], np.int64)
        return y, y
    shape = list(x.shape)
    if kind == "top_k":
        shape[axis] = k
    y = np.empty(shape, np.int64 if kind == "top_k" else out_dtype)
    return y, np.moveaxis(y, axis, -1)


def _sample_run(kind, xr, tr, k, hard, pair, rng, ym, idx):
    """The NumPy call of one run (axis last), into ym[idx]; its y_soft for a pair."""
    if kind == "soft":
        res = _api.gumbel_softmax(xr, tr, hard=hard, rng=rng, out=ym[idx], return_soft=pair)
        return res[1] if pair else None
    if kind == "subset":
        res = _subset.relaxed_top_k(xr, k, tr, hard=hard, rng=rng, out=ym[idx], return_soft=pair)
        return res[1] if pair else None
    if kind == "log":
        _api.log_gumbel_softmax(xr, tr, rng=rng, out=ym[idx])
    elif kind == "categorical":
        ym[idx] = _api.categorical(xr, rng=rng)
    else:
        ym[idx] = _api.top_k(xr, k, rng=rng)
    return None


def conditional_block(x, idx, *, axis, seed, counter, out_dtype, block_info=None):
    """One block of conditional_gumbel: idx has length 1 along axis."""
    runs = _block_runs(block_info[0], axis, x.ndim)
    xm = np.moveaxis(x, axis, -1)
    im = np.moveaxis(idx, axis, -1)[..., 0]
    z = np.empty(x.shape, out_dtype)
    zm = np.moveaxis(z, axis, -1)
    for i, row in runs:
        rng = Philox(seed, counter=counter + row)
        _api.conditional_gumbel(xm[i], im[i], rng=rng, out=zm[i])
    return z


def bernoulli_block(
    x, *tau_block, tau, hard, return_soft, seed, counter, out_dtype, block_info=None
):
    """One block of relaxed_bernoulli: rows are all dimensions but the last."""
    if x.ndim == 0:
        return _api.relaxed_bernoulli(
            x,
            tau_block[0] if tau_block else tau,
            hard=hard,
            rng=Philox(seed, counter=counter),
            return_soft=return_soft and hard,
        )
    runs = _block_runs(block_info[0], x.ndim - 1, x.ndim)
    y = np.empty(x.shape, out_dtype)
    soft = np.empty(x.shape, out_dtype) if (return_soft and hard and len(runs) > 1) else None
    for idx, row in runs:
        res = _api.relaxed_bernoulli(
            x[idx],
            tau_block[0][idx] if tau_block else tau,
            hard=hard,
            rng=Philox(seed, counter=counter + row),
            out=y[idx],
            return_soft=return_soft and hard,
        )
        if return_soft and hard:
            if soft is None:
                soft = res[1]
            else:
                soft[idx] = res[1]
    return (y, soft) if return_soft and hard else y


def noise_block(*, out_dtype, seed, counter, logistic, block_info=None):
    """One block of gumbel / logistic noise (its last axis whole)."""
    info = block_info[None]
    shape = info["chunk-shape"]
    fn = _api.logistic if logistic else _api.gumbel
    n = len(shape)
    runs = _block_runs(info, n - 1, n)
    if len(runs) == 1:
        return fn(shape, dtype=out_dtype, rng=Philox(seed, counter=counter + runs[0][1]))
    out = np.empty(shape, out_dtype)
    for idx, row in runs:
        view = out[idx]
        fn(view.shape, dtype=out_dtype, rng=Philox(seed, counter=counter + row), out=view)
    return out


def backward_block(g, s, *tau_block, tau, axis):
    return _api.gumbel_softmax_backward(g, s, tau_block[0] if tau_block else tau, axis=axis)


def bernoulli_backward_block(g, s, *tau_block, tau):
    return _api.relaxed_bernoulli_backward(g, s, tau_block[0] if tau_block else tau)
