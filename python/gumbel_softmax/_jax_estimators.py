"""The gradient estimators of ``gumbel_softmax.jax`` (issue 16): ``gumbel_rao`` and
``reinmax``, re-exported from :mod:`gumbel_softmax.jax` (import them from there).

They follow the choices of the module docstring of :mod:`gumbel_softmax.jax` (the key
mapping, vmap, x64, dtypes, errors).  The forward is the hard sample of
``gumbel_softmax`` (an XLA custom call where the build has the handlers, else a
callback); the backward is the NumPy API's estimator in a ``jax.pure_callback``.
"""

from __future__ import annotations

import functools
import numbers
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from . import _args, _estimators
from ._jax_args import _split_tau, _StaticTaus
from ._jax_host import _host_call, _sds
from .jax import _common_args, _forward_call, _seed_from, _tau_value

if TYPE_CHECKING:
    from jax.typing import ArrayLike

    from ._typing import Axis
    from .jax import KeyOrSeed


# ---------------------------------------------------------------------------------------
# Gradient estimators of the hard sample (issue 16): the forward is the hard sample of
# gumbel_softmax (a custom call or a callback), the backward the NumPy API's estimator
# in a jax.pure_callback.


def _np_gumbel_rao_backward(axis, kind, static_tau, samples, key, g, x, y, tau=None):
    t = _tau_value(static_tau, tau)
    seed = _seed_from(kind, key)
    nrows = x.size // x.shape[axis]
    # the conditional draws take the rows after the forward's: Philox(seed) at nrows
    rng = _args.Philox(seed, counter=nrows)
    return _estimators.gumbel_rao_backward(
        np.asarray(g), np.asarray(x), np.asarray(y), t, samples=samples, axis=axis, rng=rng
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _gumbel_rao(axis, kind, static_tau, samples, key, x, tau):
    return _forward_call(True, False, axis, kind, static_tau, False, key, x, tau)


def _gumbel_rao_fwd(axis, kind, static_tau, samples, key, x, tau):
    y = _forward_call(True, False, axis, kind, static_tau, False, key, x, tau)
    return y, (key, x, y, tau)


def _gumbel_rao_bwd(axis, kind, static_tau, samples, res, g):
    key, x, y, tau = res
    cb = functools.partial(_np_gumbel_rao_backward, axis, kind, static_tau, samples)
    args = (key, g, x, y) if tau is None else (key, g, x, y, tau)
    gx = _host_call(cb, _sds(x), *args)
    return None, gx, None if tau is None else jnp.zeros_like(tau)


_gumbel_rao.defvjp(_gumbel_rao_fwd, _gumbel_rao_bwd)


def gumbel_rao(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    tau: ArrayLike = 1.0,
    samples: int = 10,
    axis: Axis = -1,
) -> jax.Array:
    """The hard sample of :func:`gumbel_softmax` with the Gumbel-Rao (GR-MCk) gradient.

    The forward is bitwise ``gumbel_softmax(key_or_seed, logits, tau, hard=True,
    axis=axis)``; the gradient with respect to ``logits`` is
    ``gumbel_softmax.gumbel_rao_backward(grad_y, logits, y_hard, tau, samples=samples,
    axis=axis, rng=Philox(seed, counter=nrows))``: its ``samples`` conditional draws take
    the rows of the key's stream after the forward's ``nrows`` rows.  The backward runs
    in a ``jax.pure_callback`` (under ``vmap``, one callback per batch element).  No
    gradient reaches ``tau`` (the estimator has none; 0).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> x = jnp.log(jnp.array([[0.2, 0.3, 0.5]]))
    >>> g = jax.grad(lambda x: (gsj.gumbel_rao(0, x, 0.5, samples=100) * jnp.arange(3.0)).sum())(x)
    >>> bool(jnp.abs(g.sum()) < 1e-6)
    True
    """
    samples = _estimators_samples(samples)
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, None)
    static_tau, tau_op = _split_tau(tau, x.shape, axis)
    return _gumbel_rao(axis, kind, static_tau, samples, key, x, tau_op)


def _estimators_samples(samples):
    if isinstance(samples, _args.NON_NUMBERS) or not isinstance(samples, (numbers.Integral,)):
        raise TypeError(f"samples must be a Python int, got {type(samples).__name__}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    return int(samples)


def _np_reinmax_backward(axis, static_tau, g, gp, x, y, tau=None):
    t = _tau_value(static_tau, tau)
    return _estimators.reinmax_backward(
        np.asarray(g), np.asarray(x), np.asarray(y), t, axis=axis, grad_p=np.asarray(gp)
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _reinmax(axis, kind, static_tau, key, x, tau):
    y = _forward_call(True, False, axis, kind, static_tau, False, key, x, tau)
    return y, jax.nn.softmax(x, axis=axis)


def _reinmax_fwd(axis, kind, static_tau, key, x, tau):
    out = _reinmax(axis, kind, static_tau, key, x, tau)
    return out, (x, out[0], tau)


def _reinmax_bwd(axis, kind, static_tau, res, cts):
    x, y, tau = res
    g, gp = cts
    cb = functools.partial(_np_reinmax_backward, axis, static_tau)
    args = (g, gp, x, y) if tau is None else (g, gp, x, y, tau)
    gx = _host_call(cb, _sds(x), *args)
    return None, gx, None if tau is None else jnp.zeros_like(tau)


_reinmax.defvjp(_reinmax_fwd, _reinmax_bwd)


def reinmax(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    tau: ArrayLike = 1.0,
    axis: Axis = -1,
) -> tuple[jax.Array, jax.Array]:
    """ReinMax: ``(y_hard, p0)``, a one-hot sample of ``softmax(logits)`` and ``p0 =
    softmax(logits)``, with the ReinMax gradient (Liu et al., NeurIPS 2023).

    As the reference package's ``reinmax(logits, tau)``: ``y_hard`` is bitwise
    ``gumbel_softmax(key_or_seed, logits, tau, hard=True, axis=axis)`` (its argmax does
    not depend on tau: a sample of ``softmax(logits)``), ``p0`` is ``jax.nn.softmax``;
    the gradient with respect to ``logits`` is
    ``gumbel_softmax.reinmax_backward(grad_y, logits, y_hard, tau, grad_p=grad_p0)``, in
    a ``jax.pure_callback``.  ``tau >= 1``, as there (a smaller one raises ValueError
    when the gradient is computed, through JAX's error for the callback).  No gradient
    reaches ``tau`` (0).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> y, p = gsj.reinmax(0, jnp.log(jnp.array([0.2, 0.3, 0.5])), 1.5)
    >>> float(y.sum()), round(float(p[2]), 6)
    (1.0, 0.5)
    """
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, None)
    static_tau, tau_op = _split_tau(tau, x.shape, axis)
    if tau_op is None:
        values = static_tau.values if isinstance(static_tau, _StaticTaus) else static_tau
        if np.any(np.asarray(values) < 1):
            raise ValueError(f"tau must be >= 1 for reinmax, got {tau!r}")
    return _reinmax(axis, kind, static_tau, key, x, tau_op)
