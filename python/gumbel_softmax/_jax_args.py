"""The argument checks of ``gumbel_softmax.jax`` that need no key: logits (dtypes,
integer conversion), ``mask=`` (a ``-inf`` logit, in the gradient too) and ``tau``
(static, per row, or traced).  Imported by :mod:`gumbel_softmax.jax` and its
re-exported parts; import the public functions from there.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from . import _args

_FLOATS = tuple(np.dtype(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64))


def _is_traced(a):
    return isinstance(a, jax.core.Tracer)


def _check_logits(logits):
    try:
        x = jnp.asarray(logits)
    except TypeError:
        raise TypeError(
            f"logits must be a real array, got {type(logits).__name__} of dtype "
            f"{getattr(logits, 'dtype', None)}"
        ) from None
    if x.dtype == jnp.bool_ or jnp.issubdtype(x.dtype, jnp.integer):
        # as the NumPy API converts them: to float64 (float32 without jax_enable_x64)
        x = x.astype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    if x.dtype not in _FLOATS:
        raise TypeError(
            "logits must be a float32, float64, float16, bfloat16, integer or bool array, "
            f"got dtype {x.dtype}"
        )
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    return x


def _apply_mask(x, mask):
    """logits with -inf where mask is False (what the NumPy API's mask= means, bitwise)."""
    if mask is None:
        return x
    m = jnp.asarray(mask)
    if m.dtype != jnp.bool_:
        raise TypeError(f"mask must be a bool array, got dtype {m.dtype}")
    try:
        full = _args.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        full = None
    if full != x.shape:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to logits' shape {x.shape}")
    return _masked(x, jnp.broadcast_to(m, x.shape))


@jax.custom_vjp
def _masked(x, m):
    """x with -inf where m is False; its gradient passes through unchanged, as that of a
    -inf logit does in the NumPy API: 0 (+0 or -0, the kernels' bits) at the masked
    entries of a row with a sample, NaN across a row with none (jnp.where's gradient
    would put +0 there)."""
    return jnp.where(m, x, jnp.asarray(-jnp.inf, x.dtype))


def _masked_fwd(x, m):
    return _masked(x, m), None


def _masked_bwd(_, g):
    return g, None


_masked.defvjp(_masked_fwd, _masked_bwd)


def _tau_dtype_ok(dtype):
    return dtype != jnp.bool_ and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    )


def _traced_tau(tau):
    """A traced tau of a real dtype as a float32 (ints, float16, bfloat16) or float64
    operand; TypeError for another dtype."""
    if not _tau_dtype_ok(tau.dtype):
        raise TypeError(f"tau must be a real scalar or array, got dtype {tau.dtype}")
    return tau if tau.dtype in (np.float32, np.float64) else tau.astype(jnp.float32)


def _concrete_tau(tau):
    """A concrete tau (a real number, or a NumPy or JAX array of a real dtype) as a
    float64 ndarray; TypeError for anything else, as the NumPy API raises it."""
    if isinstance(tau, _args.NON_NUMBERS) or not isinstance(
        tau, (numbers.Real, np.generic, np.ndarray, jax.Array)
    ):
        raise TypeError(f"tau must be a real scalar or array, got {type(tau).__name__}")
    t = np.asarray(tau)
    if not (t.dtype.kind in "fiu" or t.dtype in _FLOATS):
        raise TypeError(f"tau must be a real scalar or array, got dtype {t.dtype}")
    return t.astype(np.float64)


def _split_tau(tau, shape=None, axis=None):
    """(static tau, None) for a concrete tau: a float, or per-row float64 values of the
    batch shape (an array tau, checked as the NumPy API checks it); (None, traced float
    operand) for a traced tau: a scalar, or per-row values broadcast to the batch shape
    (JAX differentiates the broadcast, so the gradient reaches tau's own shape)."""
    if _is_traced(tau):
        tau = _traced_tau(tau)
        if tau.ndim == 0:
            return None, tau
        if tau.ndim == len(shape) and tau.shape[axis] == 1:
            tau = jnp.squeeze(tau, axis)
        batch = shape[:axis] + shape[axis + 1 :]
        try:
            if _args.broadcast_shapes(tau.shape, batch) != batch:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"tau of shape {tau.shape} does not broadcast to the batch shape {batch} "
                f"(the shape without axis {axis})"
            ) from None
        return None, jnp.broadcast_to(tau, batch)
    t = _concrete_tau(tau)
    if t.ndim == 0:
        return _args.check_tau(float(t)), None
    values = np.ascontiguousarray(_args.batch_taus(t, shape, axis))
    if not np.all((values > 0) & (values < np.inf)):
        bad = values[~((values > 0) & (values < np.inf))].flat[0]
        raise ValueError(f"tau must be positive and finite, got {float(bad)!r}")
    values.setflags(write=False)
    return _StaticTaus(values), None


class _StaticTaus:
    """Concrete per-row temperatures (float64, the batch shape, read-only): a nondiff
    argument of the custom_vjps and of the callbacks' cache keys (_jax_host._host_fn),
    equal and hashed by value, so that equal calls share their compiled code."""

    def __init__(self, values):
        self.values = values
        self._hash = hash((values.shape, values.tobytes()))

    def __eq__(self, other):
        return (
            isinstance(other, _StaticTaus)
            and self.values.shape == other.values.shape
            and bool(np.array_equal(self.values, other.values))
        )

    def __hash__(self):
        return self._hash
