"""Relaxed subset sampling: ``relaxed_top_k`` and its backward (signatures, docstrings
and their recipes: argument checks from ``_args``, then the kernels).

Every check happens before a kernel runs, so that a bad argument raises with nothing
written and no row of the random stream consumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, SupportsIndex, overload

import numpy as np

from . import _core
from ._args import (
    HalfDest,
    apply_mask,
    as_float_array,
    as_index,
    check_flag,
    check_out,
    common_dtype,
    forward_rng,
    half_result,
    kernel_rng,
    row_taus,
    sample_setup,
    to_low,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import Array, Axis, Flag, RngLike, TauLike


def check_subset_k(k, n, axis):
    """relaxed_top_k's k: an integer in [1, n], n the length of the category axis."""
    k = as_index(k, "k")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the length of axis {axis}), got {k}")
    return k


@overload
def relaxed_top_k(
    logits: ArrayLike,
    k: SupportsIndex,
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
def relaxed_top_k(
    logits: ArrayLike,
    k: SupportsIndex,
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
def relaxed_top_k(
    logits: ArrayLike,
    k: SupportsIndex,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Flag = False,
    mask: ArrayLike | None = None,
) -> Array | tuple[Array, Array]: ...


def relaxed_top_k(
    logits: ArrayLike,
    k: SupportsIndex,
    tau: TauLike = 1.0,
    *,
    hard: Flag = False,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    return_soft: Flag = False,
    mask: ArrayLike | None = None,
) -> Array | tuple[Array, Array]:
    """Draw a relaxed k-subset (Xie & Ermon, IJCAI 2019): ``k`` successive softmaxes.

    With ``r = logits + g`` (``g`` the noise that :func:`gumbel_softmax` adds: the same
    rows of the stream, the same bits as :func:`gumbel`) and ``a_0 = 0``, for
    ``j = 1 .. k``: ``r = r + log(1 - a_{j-1})`` and ``a_j = softmax(r / tau)``; the
    sample is ``a_1 + ... + a_k``.  Its rows sum to ``k`` and its entries are
    ``>= 0``; as ``tau -> 0`` it tends to the k-hot of :func:`top_k` drawn from the same
    state.  At a finite ``tau`` an entry can exceed 1 (a category taken at one step can
    be taken again at a later one; ``docs/contract.md``, "Relaxed top-k").
    ``log(1 - a)`` is computed stably (``docs/contract.md``), so that a category taken
    with certainty drops out exactly.

    Parameters
    ----------
    logits : array_like
        As for :func:`gumbel_softmax`; ``-inf`` (or masked) categories get exactly 0.
    k : int
        The subset size, ``1 <= k <= logits.shape[axis]``.  A row with fewer than ``k``
        finite logits continues over those (each then can exceed 1).
    tau : float or array_like
        Temperature, positive and finite; an array gives each row its own, as for
        :func:`gumbel_softmax`.
    hard : bool
        Return the exact k-hot (0.0 and 1.0) at the indices of :func:`top_k` from the
        same state (its ``-1`` slots left out).  Its gradient is the relaxed sample's
        (straight-through): :func:`relaxed_top_k_backward`.
    axis, rng, out, mask
        As for :func:`gumbel_softmax` (a ``Philox`` advances by the number of rows).
    return_soft : bool
        Also return the relaxed sample (for ``hard=False`` it is ``y`` itself).

    Returns
    -------
    y : ndarray
        ``logits``' shape and dtype; or ``(y, y_soft)`` when ``return_soft``.  Rows with
        a NaN or ``+inf`` logit, or no finite one, are NaN.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.log(np.array([[0.1, 0.2, 0.3, 0.4]]))
    >>> y = gs.relaxed_top_k(x, 2, tau=0.5, rng=0)
    >>> round(float(y.sum()), 6)
    2.0
    >>> y_hard = gs.relaxed_top_k(x, 2, hard=True, rng=0)
    >>> np.flatnonzero(y_hard[0]).tolist() == sorted(gs.top_k(x, 2, rng=0)[0].tolist())
    True
    """
    hard = check_flag(hard, "hard")
    return_soft = check_flag(return_soft, "return_soft")
    x, low, ax, out = sample_setup(logits, axis, out, (("mask", mask), ("tau", tau)))
    k = check_subset_k(k, x.shape[ax], ax)
    x = apply_mask(x, mask)
    t, inv_taus = row_taus(tau, x, ax)
    krng = kernel_rng(rng)
    if low is None:
        return _core.relaxed_top_k(x, k, t, inv_taus, hard, ax, krng, out, return_soft)
    y = HalfDest(x.shape, low, out)
    soft = HalfDest(x.shape, low) if hard and return_soft else None
    res = _core.relaxed_top_k(x, k, t, inv_taus, hard, ax, krng, None, return_soft)
    if not return_soft:
        return y.fill(res)
    y.fill(res[0])
    return (y.dest, y.dest) if soft is None else (y.dest, soft.fill(res[1]))


def relaxed_top_k_backward(
    grad_y: ArrayLike,
    logits: ArrayLike,
    k: SupportsIndex,
    tau: TauLike = 1.0,
    *,
    axis: Axis = -1,
    rng: RngLike,
    out: Array | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Gradient of a :func:`relaxed_top_k` sample with respect to ``logits``.

    The gradient of ``sum(grad_y * y_soft)``, ``y_soft`` the relaxed sample, which is
    recomputed from the forward's inputs: pass its ``logits``, ``k``, ``tau``, ``axis``
    and ``mask`` with ``rng`` in the state it had *before* the forward (its int seed, a
    ``Philox`` at the forward's counter, or a ``Generator`` in the same state); ``rng`` is
    not advanced.  Each row's ``k`` softmaxes are recomputed and kept in a row buffer
    (``k + 2`` rows of scratch per thread), then back-propagated through the ``k`` steps
    in reverse (``docs/contract.md`` derives the formula).  For ``hard=True`` this is the
    straight-through gradient.

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to the sample, ``logits``' shape.
    logits, k, tau, axis, mask
        The forward call's.
    rng : int, Philox or numpy.random.Generator
        The forward's generator in its state before the forward (``None`` raises).
    out : ndarray, optional
        Destination; may be ``grad_y`` itself.

    Returns
    -------
    ndarray
        float64 when either input is float64 (or an integer or bool array), float16
        (bfloat16) when both are float16 (both bfloat16), else float32 (computed in
        float32).  Masked and ``-inf`` categories get
        exactly 0; rows with no defined sample are NaN.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.array([[0.0, 1.0, 2.0]])
    >>> rng = gs.Philox(4)
    >>> y = gs.relaxed_top_k(x, 2, rng=gs.Philox(4))
    >>> g = gs.relaxed_top_k_backward(np.ones_like(x), x, 2, rng=rng)
    >>> bool(np.allclose(g, 0.0, atol=1e-12))  # the row sum k does not depend on logits
    True
    """
    frng = forward_rng(rng)
    g, glow = as_float_array(grad_y, "grad_y", half=True)
    inputs = (("grad_y", grad_y), ("logits", logits), ("mask", mask), ("tau", tau))
    x, low, ax, _ = sample_setup(logits, axis, None)
    if g.shape != x.shape:
        raise ValueError(f"logits must have the shape of grad_y {g.shape}, got {x.shape}")
    k = check_subset_k(k, x.shape[ax], ax)
    dtype = common_dtype(g.dtype, x.dtype)
    out_low = half_result(glow, low)
    out = check_out(out, g.shape, out_low or dtype, inputs, in_place=("grad_y",))
    t, inv_taus = row_taus(tau, x, ax)
    x = apply_mask(x, mask)
    # In the forward's dtype (its noise and arithmetic), then the result's.
    g = g.astype(x.dtype, copy=False)
    direct = out_low is None and dtype == x.dtype
    res = _core.relaxed_top_k_backward(
        g, x, k, t, inv_taus, ax, kernel_rng(frng), out if direct else None
    )
    if direct:
        return res
    if out_low is not None:
        return to_low(res, out_low, out)
    if out is None:
        return res.astype(dtype)
    np.copyto(out, res)
    return out
