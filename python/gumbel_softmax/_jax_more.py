"""More of ``gumbel_softmax.jax`` (issues 16 and 17): ``top_k``, ``relaxed_bernoulli`` and
``relaxed_top_k``, re-exported from :mod:`gumbel_softmax.jax` (import them from there).

They follow the choices of the module docstring of :mod:`gumbel_softmax.jax` (the key
mapping, vmap, x64, dtypes, errors): each result is bitwise the NumPy API's call with
``rng=gumbel_softmax.Philox(seed_of(key_or_seed))``, and each gradient bitwise the NumPy
API's backward on the same draw.  The kernels run in ``jax.pure_callback`` (through
``_host_call``, which carries 64-bit operands as uint32 words), also in builds with the
XLA FFI handlers: there are no custom-call handlers for these three, so each call costs
a callback's tens of microseconds of Python, and ``vmap`` runs one callback per batch
element (``vmap_method="sequential"``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from . import _api, _args, _subset
from ._jax_args import (
    _check_logits,
    _concrete_tau,
    _is_traced,
    _split_tau,
    _StaticTaus,
    _traced_tau,
)
from ._jax_host import _host_call, _sds
from .jax import _HALF, _common_args, _key_operand, _seed_from, _tau_value

if TYPE_CHECKING:
    from jax.typing import ArrayLike

    from ._typing import Axis, Flag
    from .jax import KeyOrSeed


def _static_flag(value, name):
    """A static bool (hard): a traced one raises TypeError naming it."""
    if _is_traced(value):
        raise TypeError(f"{name} must be a Python bool (a static argument), got a traced value")
    return _args.check_flag(value, name)


def _static_k(value):
    """A static int k: a traced one raises TypeError naming it."""
    if _is_traced(value):
        raise TypeError("k must be a Python int (a static argument), got a traced value")
    return _args.as_index(value, "k")


def _index_dtype():
    return np.dtype(np.int64 if jax.config.jax_enable_x64 else np.int32)


# ---------------------------------------------------------------------------------------
# top_k


def _np_top_k(k, axis, kind, index_dtype, key, x):
    rng = _args.Philox(_seed_from(kind, key))
    return _api.top_k(np.asarray(x), k, axis=axis, rng=rng).astype(index_dtype)


def top_k(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    k: int,
    axis: Axis = -1,
    *,
    mask: ArrayLike | None = None,
) -> jax.Array:
    """``k`` categories without replacement (Gumbel-top-k): the indices of the ``k``
    largest ``logits + g`` along ``axis``, in decreasing order.

    Bitwise ``gumbel_softmax.top_k(np.asarray(logits), k, axis=axis, mask=mask,
    rng=gumbel_softmax.Philox(seed_of(key_or_seed)))``: int64 with ``jax_enable_x64``,
    int32 without, ``logits.shape`` with ``k`` along ``axis``; ``-1`` in the slots past
    the categories that can be drawn (``-inf`` or masked).  The first index is that of
    :func:`categorical` from the same key.  ``k`` is a static Python int in ``[0,
    logits.shape[axis]]``; the other arguments are those of :func:`categorical`.  The
    kernel runs in a ``jax.pure_callback`` (no XLA FFI handler); no gradient.

    Examples
    --------
    >>> import jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> idx = gsj.top_k(0, jnp.zeros((2, 5)), 3)
    >>> idx.shape, [len(set(row)) for row in idx.tolist()]
    ((2, 3), [3, 3])
    """
    k = _static_k(k)
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, mask)
    _args.check_k(k, x.shape[axis], axis)
    shape = x.shape[:axis] + (k,) + x.shape[axis + 1 :]
    index_dtype = _index_dtype()
    cb = functools.partial(_np_top_k, k, axis, kind, index_dtype)
    out = jax.ShapeDtypeStruct(shape, index_dtype)
    return _host_call(cb, out, key, jax.lax.stop_gradient(x))


# ---------------------------------------------------------------------------------------
# relaxed_bernoulli: elementwise, tau per element


def _bernoulli_logits(logits):
    """As _check_logits, with 0-d logits allowed (one row of one element)."""
    if isinstance(logits, (str, bytes)):
        raise TypeError(f"logits must be a real array, got {type(logits).__name__}")
    if np.ndim(logits) == 0:
        try:
            x = jnp.asarray(logits)
        except TypeError:
            raise TypeError(f"logits must be a real array, got {type(logits).__name__}") from None
        return _check_logits(x.reshape(1)).reshape(())
    return _check_logits(logits)


def _elementwise_tau(tau, shape):
    """(static tau, None) for a concrete tau: a float, or float64 values broadcasting to
    ``shape`` (checked as the NumPy API checks them); (None, operand) for a traced tau:
    a float scalar, or broadcast to ``shape`` (JAX differentiates the broadcast)."""
    if _is_traced(tau):
        tau = _traced_tau(tau)
        if tau.ndim == 0:
            return None, tau
        try:
            if _args.broadcast_shapes(tau.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(f"tau of shape {tau.shape} does not broadcast to {shape}") from None
        return None, jnp.broadcast_to(tau, shape)
    t = _concrete_tau(tau)
    if t.ndim == 0:
        return _args.check_tau(float(t)), None
    values = _args.tau_values(t)
    try:
        np.broadcast_to(values, shape)
    except ValueError:
        raise ValueError(f"tau of shape {values.shape} does not broadcast to {shape}") from None
    values.setflags(write=False)
    return _StaticTaus(values), None


def _np_bernoulli(hard, return_soft, kind, static_tau, key, x, tau=None):
    t = _tau_value(static_tau, tau)
    rng = _args.Philox(_seed_from(kind, key))
    return _api.relaxed_bernoulli(np.asarray(x), t, hard=hard, rng=rng, return_soft=return_soft)


def _np_bernoulli_backward(static_tau, g, y_soft, tau=None):
    t = _tau_value(static_tau, tau)
    g, y_soft = np.asarray(g), np.asarray(y_soft)
    gx = _api.relaxed_bernoulli_backward(g.astype(y_soft.dtype), y_soft, t)
    if tau is None:
        return gx
    # dL/dtau = -sum(grad_logits * logit(y_soft)): y = sigmoid(s / tau) gives dy/dtau =
    # -y (1 - y) s / tau**2 and s / tau = logit(y); 0 where y_soft is 0 or 1 (saturated,
    # grad_logits is 0 there).  float64 products, summed in float64 for a scalar tau.
    y = y_soft.astype(np.float64)
    with np.errstate(divide="ignore"):
        logit = np.log(y) - np.log1p(-y)
    term = gx.astype(np.float64) * np.where(np.isfinite(logit), logit, 0.0)
    dtau = -np.sum(term) if np.ndim(tau) == 0 else -term
    return gx, np.asarray(dtau, dtype=np.asarray(tau).dtype)


def _bernoulli_call(hard, return_soft, kind, static_tau, key, x, tau):
    cb = functools.partial(_np_bernoulli, hard, return_soft, kind, static_tau)
    shapes = (_sds(x), _sds(x)) if return_soft else _sds(x)
    args = (key, x) if tau is None else (key, x, tau)
    return _host_call(cb, shapes, *args)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _relaxed_bernoulli(hard, kind, static_tau, key, x, tau):
    return _bernoulli_call(hard, False, kind, static_tau, key, x, tau)


def _relaxed_bernoulli_fwd(hard, kind, static_tau, key, x, tau):
    if not hard:
        y = _bernoulli_call(False, False, kind, static_tau, key, x, tau)
        return y, (y, tau)
    y, y_soft = _bernoulli_call(True, True, kind, static_tau, key, x, tau)
    return y, (y_soft, tau)


def _relaxed_bernoulli_bwd(hard, kind, static_tau, res, g):
    y_soft, tau = res
    cb = functools.partial(_np_bernoulli_backward, static_tau)
    if tau is None:
        return None, _host_call(cb, _sds(y_soft), g, y_soft), None
    tau = jnp.asarray(tau)  # a residual may come back as a Python float (a literal)
    gx, gtau = _host_call(cb, (_sds(y_soft), _sds(tau)), g, y_soft, tau)
    return None, gx, gtau


_relaxed_bernoulli.defvjp(_relaxed_bernoulli_fwd, _relaxed_bernoulli_bwd)


def relaxed_bernoulli(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    tau: ArrayLike = 1.0,
    hard: Flag = False,
) -> jax.Array:
    """Relaxed Bernoulli (binary Concrete) samples ``sigmoid((logits + L) / tau)``, ``L``
    standard logistic noise, elementwise.

    Bitwise ``gumbel_softmax.relaxed_bernoulli(np.asarray(logits), tau, hard=hard,
    rng=gumbel_softmax.Philox(seed_of(key_or_seed)))``; its rows (for the random stream)
    are all dimensions but the last, and 0-d logits are one row of one element.
    ``hard=True`` gives exactly 1.0 where ``logits + L > 0`` and 0.0 elsewhere, with the
    straight-through gradient (that of the soft sample of the same draw).  Under
    ``jax.custom_vjp``, the gradient with respect to ``logits`` is bitwise
    ``gumbel_softmax.relaxed_bernoulli_backward(grad_y, y_soft, tau)``; a traced ``tau``
    gets ``-sum(grad_logits * logit(y_soft))`` (over what it broadcasts across; 0 where
    ``y_soft`` is 0 or 1), a concrete one none.  The kernels run in
    ``jax.pure_callback`` (no XLA FFI handler).

    Parameters
    ----------
    key_or_seed, logits
        As for :func:`gumbel_softmax`, except that ``logits`` may be 0-d.
    tau : float or array
        Positive, finite temperature: a scalar or an array that broadcasts to
        ``logits.shape`` (one per element); differentiable when traced.
    hard : bool, static

    Returns
    -------
    jax.Array
        Shape and dtype of ``logits`` (float for integer logits).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> x = jnp.array([-1.0, 0.0, 2.0])
    >>> y = gsj.relaxed_bernoulli(4, x, 0.5)
    >>> bool(((y > 0) & (y < 1)).all())
    True
    >>> bool((gsj.relaxed_bernoulli(4, x, 0.5, hard=True) == (y > 0.5)).all())
    True
    >>> g = jax.grad(lambda x: gsj.relaxed_bernoulli(4, x, 0.5, hard=True).sum())(x)
    >>> bool((g > 0).all())
    True
    """
    hard = _static_flag(hard, "hard")
    kind, key = _key_operand(key_or_seed)
    x = _bernoulli_logits(logits)
    static_tau, tau_op = _elementwise_tau(tau, x.shape)
    return _relaxed_bernoulli(hard, kind, static_tau, key, x, tau_op)


# ---------------------------------------------------------------------------------------
# relaxed_top_k: the backward recomputes the k softmaxes from (key, logits, tau)


def _np_relaxed_top_k(k, hard, axis, kind, static_tau, key, x, tau=None):
    t = _tau_value(static_tau, tau)
    rng = _args.Philox(_seed_from(kind, key))
    return _subset.relaxed_top_k(np.asarray(x), k, t, hard=hard, axis=axis, rng=rng)


def _np_relaxed_top_k_backward(k, axis, kind, static_tau, key, g, x, tau=None):
    t = _tau_value(static_tau, tau)
    rng = _args.Philox(_seed_from(kind, key))
    x = np.asarray(x)
    return _subset.relaxed_top_k_backward(
        np.asarray(g).astype(x.dtype), x, k, t, axis=axis, rng=rng
    )


def _relaxed_top_k_call(k, hard, axis, kind, static_tau, key, x, tau):
    cb = functools.partial(_np_relaxed_top_k, k, hard, axis, kind, static_tau)
    args = (key, x) if tau is None else (key, x, tau)
    return _host_call(cb, _sds(x), *args)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4))
def _relaxed_top_k(k, hard, axis, kind, static_tau, key, x, tau):
    return _relaxed_top_k_call(k, hard, axis, kind, static_tau, key, x, tau)


def _relaxed_top_k_fwd(k, hard, axis, kind, static_tau, key, x, tau):
    y = _relaxed_top_k_call(k, hard, axis, kind, static_tau, key, x, tau)
    return y, (key, x, tau)


def _relaxed_top_k_bwd(k, hard, axis, kind, static_tau, res, g):
    key, x, tau = res
    cb = functools.partial(_np_relaxed_top_k_backward, k, axis, kind, static_tau)
    args = (key, g, x) if tau is None else (key, g, x, tau)
    gx = _host_call(cb, _sds(x), *args)
    if tau is None:
        return None, gx, None
    return None, gx, _tau_grad(k, axis, kind, key, x, jnp.asarray(tau), g)


def _np_noise(axis, kind, dtype, key, x):
    """The Gumbel noise relaxed_top_k adds to x: gs.gumbel of x's shape with axis moved
    last (docs/contract.md, "Relaxed top-k"), moved back."""
    shape = np.moveaxis(np.empty(np.shape(x), np.bool_), axis, -1).shape
    g = _api.gumbel(shape, dtype=dtype, rng=_args.Philox(_seed_from(kind, key)))
    return np.moveaxis(g, -1, axis)


def _tau_grad(k, axis, kind, key, x, tau, g):
    """dL/dtau of a traced tau: ``sum(g * dy/dtau)``, dy/dtau by forward mode (jax.jvp)
    through the formula of docs/contract.md, "Relaxed top-k", written in JAX ops on the
    kernels' noise (float32 for half data).  Forward mode keeps the memory at a few
    arrays of x's size for any k (reverse mode would keep every step's); rows are
    independent, so one tangent of ones gives each row's derivative by its own tau."""
    work = jnp.float32 if x.dtype in _HALF else x.dtype
    noise = _host_call(
        functools.partial(_np_noise, axis, kind, np.dtype(work)),
        jax.ShapeDtypeStruct(x.shape, work),
        key,
        x,
    )
    v = jnp.moveaxis(jax.lax.stop_gradient(x).astype(work) + noise, axis, -1)
    t = tau.astype(work)

    def sample(t):
        return _relaxed_top_k_formula(v, k, t[..., None] if t.ndim else t)

    _, dy = jax.jvp(sample, (t,), (jnp.ones_like(t),))
    prod = jnp.moveaxis(g.astype(work), axis, -1) * dy
    return (jnp.sum(prod, axis=-1) if t.ndim else jnp.sum(prod)).astype(tau.dtype)


def _relaxed_top_k_formula(v, k, t):
    """sum_j a_j, a_j = softmax(r_j / t) along the last axis, r_1 = v, r_{j+1} = r_j +
    log(1 - a_j): log(1 - a) of the row's first argmax I as log(O / S) (O the sum of the
    others' exponentials, S = 1 + O), -inf where O is 0; -inf entries stay out, and the
    ``where``s keep their derivatives 0, not NaN."""
    first = jnp.arange(v.shape[-1])

    def step(_, carry):
        r, y = carry
        big = jnp.argmax(r, axis=-1)[..., None]
        top = first == big
        m = jnp.take_along_axis(r, big, axis=-1)  # r_I, with its derivative (e_I is 1)
        live = jnp.isfinite(m)
        fin = jnp.isfinite(r) & live
        d = jnp.where(fin, r - jnp.where(live, m, 0), 0)
        e = jnp.where(fin & ~top, jnp.exp(d / t), 0)
        other = jnp.sum(e, axis=-1, keepdims=True)
        total = 1 + other
        a = jnp.where(top, jnp.where(live, 1 / total, 0), e / total)
        pos = other > 0
        log_top = jnp.where(pos, jnp.log(jnp.where(pos, other, 1)) - jnp.log(total), -jnp.inf)
        log_rest = jnp.log1p(-jnp.where(top, 0, a))  # a <= 1/2 off the argmax
        r = r + jnp.where(top, jnp.where(live, log_top, 0), jnp.where(fin, log_rest, 0))
        return r, y + a  # (the last step's r is not used)

    return jax.lax.fori_loop(0, k, step, (v, jnp.zeros_like(v)))[1]


_relaxed_top_k.defvjp(_relaxed_top_k_fwd, _relaxed_top_k_bwd)


def relaxed_top_k(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    k: int,
    tau: ArrayLike = 1.0,
    hard: Flag = False,
    axis: Axis = -1,
    *,
    mask: ArrayLike | None = None,
) -> jax.Array:
    """A relaxed k-subset (Xie & Ermon, IJCAI 2019): ``k`` successive softmaxes of the
    perturbed logits, summed.

    Bitwise ``gumbel_softmax.relaxed_top_k(np.asarray(logits), k, tau, hard=hard,
    axis=axis, mask=mask, rng=gumbel_softmax.Philox(seed_of(key_or_seed)))``: rows sum
    to ``k``; ``hard=True`` gives the exact k-hot of :func:`top_k` from the same key.
    Under ``jax.custom_vjp``, the gradient with respect to ``logits`` is bitwise
    ``gumbel_softmax.relaxed_top_k_backward(grad_y, logits, k, tau, axis=axis,
    mask=mask, rng=Philox(seed))`` (the relaxed sample's gradient, recomputed from the
    key: nothing but the inputs is kept; for ``hard=True`` straight-through).  A traced
    ``tau`` (scalar or per row) gets ``sum(grad_y * dy/dtau)``, which the NumPy API does
    not compute: ``dy/dtau`` by ``jax.jvp`` through the recursion written in JAX ops
    (``docs/contract.md``, "Relaxed top-k") on the kernels' noise, fetched in one more
    callback only then; as JAX ops, its last bits may change under ``jit`` and ``vmap``.
    A concrete ``tau`` gets no gradient.  The kernels run in ``jax.pure_callback`` (no
    XLA FFI handler).

    Parameters
    ----------
    key_or_seed, logits, axis, mask
        As for :func:`gumbel_softmax`.
    k : int, static
        The subset size, ``1 <= k <= logits.shape[axis]``.
    tau : float or array
        As for :func:`gumbel_softmax` (a scalar, or one per row).
    hard : bool, static
        The k-hot, with the relaxed sample's gradient.

    Returns
    -------
    jax.Array
        Shape and dtype of ``logits`` (float for integer logits).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> x = jnp.log(jnp.array([[0.1, 0.2, 0.3, 0.4]]))
    >>> round(float(gsj.relaxed_top_k(0, x, 2, 0.5).sum()), 5)
    2.0
    >>> y = gsj.relaxed_top_k(0, x, 2, hard=True)
    >>> sorted(jnp.flatnonzero(y[0]).tolist()) == sorted(gsj.top_k(0, x, 2)[0].tolist())
    True
    >>> g = jax.grad(lambda x: (gsj.relaxed_top_k(0, x, 2, 0.5, hard=True) * x).sum())(x)
    >>> g.shape
    (1, 4)
    """
    hard = _static_flag(hard, "hard")
    k = _static_k(k)
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, mask)
    k = _subset.check_subset_k(k, x.shape[axis], axis)
    static_tau, tau_op = _split_tau(tau, x.shape, axis)
    return _relaxed_top_k(k, hard, axis, kind, static_tau, key, x, tau_op)


__all__ = ["relaxed_bernoulli", "relaxed_top_k", "top_k"]
