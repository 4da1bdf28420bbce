"""Gradient estimators of the hard (one-hot) sample: Gumbel-Rao and ReinMax.

The public functions (signatures and docstrings) and their recipes: arguments
normalised by ``_args``, then the kernel (``csrc/kernels/ops/gumbel_rao.cpp`` and
``reinmax.cpp``).  Every check happens before a kernel runs, so that a bad argument
raises with nothing written and no row of the random stream consumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import _core
from ._args import (
    apply_mask,
    as_float_array,
    as_index,
    batch_taus,
    check_axis,
    check_out,
    check_row_length,
    check_tau,
    common_dtype,
    half_result,
    inverse_tau,
    is_scalar_tau,
    kernel_rng,
    to_low,
)

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import Array, Axis, RngLike, TauLike


def gumbel_rao_backward(
    grad_y: ArrayLike,
    logits: ArrayLike,
    y_hard: ArrayLike,
    tau: TauLike = 1.0,
    *,
    samples: int = 10,
    axis: Axis = -1,
    rng: RngLike = None,
    out: Array | None = None,
    mask: ArrayLike | None = None,
) -> Array:
    """Gumbel-Rao (GR-MCk) gradient of a hard sample with respect to ``logits``.

    The straight-through gradient of ``y_hard = gumbel_softmax(logits, tau, hard=True)``
    Rao-Blackwellised over the noise (Paulus, Maddison & Krause, ICLR 2021): with ``I``
    the index of each row's 1 in ``y_hard`` and ``z_k`` (k = 1..K, K = ``samples``)
    draws of the perturbed logits given ``argmax(z_k) == I`` (:func:`conditional_gumbel`),

    ``grad_logits = (1 / (K tau)) * sum_k J(p_k) grad_y``,
    ``p_k = softmax(z_k / tau)``, ``J(p) = diag(p) - p p^T``.

    Its expectation is that of the straight-through estimator (``gumbel_softmax_backward``
    of the soft sample), with less variance.  The draws are made row by row in cache and
    never stored: memory is O(row), whatever ``samples``.  Draw ``k`` of row ``r`` uses
    stream row ``counter + r * samples + k`` (the rows that
    ``conditional_gumbel(np.repeat(logits, samples, axis=0), np.repeat(I, samples))``
    would use for 2-d logits), so a ``Philox`` advances by ``samples`` times the number
    of rows (docs/contract.md, "Gumbel-Rao").

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to ``y_hard``.
    logits : array_like
        The forward's logits, same shape; float32 or float64 (float16 / bfloat16
        computed in float32; integer and bool arrays become float64).
    y_hard : array_like
        The forward's sample, same shape: every row an exact one-hot (one 1.0, every
        other entry 0.0) whose 1 is not at a ``-inf`` or masked logit; else ValueError.
    tau : float or array_like
        The temperature of the relaxation (a scalar, or one per row as for
        :func:`gumbel_softmax`).
    samples : int
        K >= 1, the number of conditional draws per row.
    axis : int
        The category axis.
    rng : None, int, Philox or numpy.random.Generator
        The noise of the conditional draws (fresh noise: not the forward's state).
    out : ndarray, optional
        Destination; may be ``grad_y`` itself.
    mask : array_like of bool, optional
        Broadcastable to ``logits``; ``False`` entries are ``-inf`` logits (as for
        :func:`gumbel_softmax`).

    Returns
    -------
    ndarray
        float64 when either input is float64 (or an integer or bool array), float16
        (bfloat16) when both are float16 (both bfloat16), else float32 (computed in
        float32).  Rows whose logits hold a NaN or
        ``+inf`` are NaN.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.log(np.array([[0.2, 0.3, 0.5]]))
    >>> y = gs.gumbel_softmax(x, 0.5, hard=True, rng=1)
    >>> g = gs.gumbel_rao_backward(np.array([[1.0, 0.0, 0.0]]), x, y, 0.5, samples=100, rng=2)
    >>> g.shape, bool(abs(g.sum()) < 1e-12)
    ((1, 3), True)
    """
    samples = as_index(samples, "samples")
    g, x, h, ax, dtype, low = _inputs(grad_y, logits, y_hard, axis)
    nrows = x.size // x.shape[ax] if x.shape[ax] else 0
    if samples < 1 or samples >= 2**63 or nrows * samples >= 2**64:
        raise ValueError(
            f"samples must be >= 1, with samples * rows ({nrows}) < 2**64 (the stream's "
            f"rows), got {samples}"
        )
    out = check_out(
        out,
        x.shape,
        low or dtype,
        (("grad_y", grad_y), ("logits", logits), ("y_hard", y_hard), ("mask", mask), ("tau", tau)),
        in_place=("grad_y",),
    )
    t, inv_taus = _taus(tau, x, ax, at_least_one=False)
    x = apply_mask(x, mask)
    rng = kernel_rng(rng)
    kout = None if low is not None else out
    res = _core.gumbel_rao_backward(g, x, h, t, inv_taus, samples, ax, rng, kout)
    return res if low is None else to_low(res, low, out)


def reinmax_backward(
    grad_y: ArrayLike,
    logits: ArrayLike,
    y_hard: ArrayLike,
    tau: TauLike = 1.0,
    *,
    axis: Axis = -1,
    out: Array | None = None,
    grad_p: ArrayLike | None = None,
) -> Array:
    """ReinMax gradient of a hard sample with respect to ``logits``.

    The second-order (Heun) estimator of Liu et al., "Bridging Discrete and
    Backpropagation: Straight-Through and Beyond" (NeurIPS 2023), at the cost of
    straight-through: with ``p0 = softmax(logits)``, ``p1 = (softmax(logits / tau) +
    y_hard) / 2`` and ``J(p) = diag(p) - p p^T``,

    ``grad_logits = 2 J(p1) grad_y + J(p0) (grad_p - grad_y / 2)``.

    ``y_hard`` is the forward's one-hot sample drawn from ``softmax(logits)`` (for
    example ``gumbel_softmax(logits, hard=True)``, whose argmax does not depend on tau,
    or a one-hot of :func:`categorical`); ``grad_p`` is the gradient reaching ``p0`` when
    the forward also returns it (the reference ``reinmax`` package returns
    ``(y_hard, p0)``).  One fused pass per row; no noise is drawn.

    Parameters
    ----------
    grad_y : array_like
        Gradient of the loss with respect to ``y_hard``.
    logits : array_like
        The forward's logits, same shape; float32 or float64 (float16 / bfloat16
        computed in float32; integer and bool arrays become float64).
    y_hard : array_like
        The forward's one-hot sample, same shape (used as given in the formula).
    tau : float or array_like
        The temperature, ``tau >= 1`` (ValueError below: the estimator's second-order
        argument needs it and its authors recommend it; the reference package does not
        check): a scalar, or one per row as for :func:`gumbel_softmax`.
    axis : int
        The category axis.
    out : ndarray, optional
        Destination; may be ``grad_y`` itself.
    grad_p : array_like, optional
        The gradient with respect to ``p0``, same shape; None means 0.

    Returns
    -------
    ndarray
        float64 when either input is float64 (or an integer or bool array), float16
        (bfloat16) when both are float16 (both bfloat16), else float32 (computed in
        float32).  Rows whose logits hold a NaN or
        ``+inf``, or only ``-inf``, are NaN.

    Examples
    --------
    >>> import numpy as np, gumbel_softmax as gs
    >>> x = np.log(np.array([[0.25, 0.75]]))
    >>> gs.reinmax_backward(np.array([[1.0, 0.0]]), x, np.array([[0.0, 1.0]]), 1.0)
    array([[ 0.125, -0.125]])
    """
    g, x, h, ax, dtype, low = _inputs(grad_y, logits, y_hard, axis)
    p = None
    if grad_p is not None:
        p = as_float_array(grad_p, "grad_p", half=True)[0]
        if p.shape != x.shape:
            raise ValueError(f"grad_p must have the shape of logits {x.shape}, got {p.shape}")
        p = p.astype(dtype, copy=False)
    out = check_out(
        out,
        x.shape,
        low or dtype,
        (
            ("grad_y", grad_y),
            ("logits", logits),
            ("y_hard", y_hard),
            ("grad_p", grad_p),
            ("tau", tau),
        ),
        in_place=("grad_y",),
    )
    t, inv_taus = _taus(tau, x, ax, at_least_one=True)
    kout = None if low is not None else out
    res = _core.reinmax_backward(g, x, h, p, t, inv_taus, ax, kout)
    return res if low is None else to_low(res, low, out)


def _inputs(grad_y, logits, y_hard, axis):
    """(grad_y, logits, y_hard as arrays of one float dtype, axis, dtype, half dtype of
    the result or None), checked: one shape, ndim >= 1, a nonempty category axis."""
    g, glow = as_float_array(grad_y, "grad_y", half=True)
    x, xlow = as_float_array(logits, "logits", half=True)
    h = as_float_array(y_hard, "y_hard", half=True)[0]
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    for name, a in (("grad_y", g), ("y_hard", h)):
        if a.shape != x.shape:
            raise ValueError(f"{name} must have the shape of logits {x.shape}, got {a.shape}")
    ax = check_axis(axis, x.ndim)
    check_row_length(x, ax, "logits")
    if x.shape[ax] == 0:
        raise ValueError(f"axis {ax} of logits has length 0: there is no category")
    dtype = common_dtype(g.dtype, x.dtype)
    g, x, h = (a.astype(dtype, copy=False) for a in (g, x, h))
    return g, x, h, ax, dtype, half_result(glow, xlow)


def _taus(tau, x, axis, at_least_one):
    """(scalar tau, None) or (1.0, 1/tau per row in x's dtype), as ``_args.row_taus``;
    with at_least_one, a tau below 1 raises ValueError (ReinMax)."""
    if is_scalar_tau(tau):
        t = check_tau(tau)
        low = t
    else:
        arr = batch_taus(tau, x.shape, axis)
        low = float(arr.min()) if arr.size else 1.0
        t = None
    if at_least_one and low < 1:
        raise ValueError(
            f"tau must be >= 1 for ReinMax (its second-order step assumes it), got {low!r}"
        )
    if t is not None:
        return t, None
    return 1.0, np.ascontiguousarray(inverse_tau(arr, x.dtype)).reshape(-1)
