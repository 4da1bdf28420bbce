"""Gumbel-Softmax for JAX: the package's CPU kernels as XLA custom calls (or callbacks).

>>> import jax, jax.numpy as jnp
>>> import gumbel_softmax.jax as gsj
>>> x = jnp.log(jnp.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]))
>>> y = jax.jit(gsj.gumbel_softmax, static_argnames=("hard", "axis"))(
...     jax.random.PRNGKey(0), x, 0.5)
>>> y.shape
(2, 3)
>>> g = jax.grad(lambda x: (gsj.gumbel_softmax(0, x, 0.5, hard=True) * x).sum())(x)

``gumbel_softmax(key_or_seed, logits, tau=1.0, hard=False, axis=-1)`` works eagerly and
under ``jax.jit``, ``jax.grad`` (reverse mode: ``jax.custom_vjp``) and ``jax.vmap``.  It
needs JAX (``pip install 'gumbel-softmax[jax]'``); ``import gumbel_softmax`` alone never
imports JAX.

How the kernels run: a build made where jaxlib is installed (``pip install
--no-build-isolation .`` in an environment with JAX and the build tools; CMake's
``GUMBEL_SOFTMAX_XLA_FFI``, see docs/building.md) has XLA FFI handlers, and every call is
then an XLA custom call (``jax.ffi.ffi_call``) that runs the kernels on XLA's buffers,
with no Python in between: a jitted (64, 10) sample costs about what a pure-JAX one
does.  Other builds (an isolated ``pip install .``, the wheels) run the same kernels in
``jax.pure_callback``, which costs tens of microseconds of Python per call.
``uses_ffi()`` says which; the results are the same bits either way.

Choices, for whoever needs to rely on them:

- **Samples.**  The result is bitwise ``gs.gumbel_softmax(np.asarray(logits), tau,
  hard=hard, axis=axis, rng=gs.Philox(seed))`` (counter 0), eagerly and under ``jit``:
  the forward pass runs that call's kernel (in the custom call or the callback).
  ``logits`` are taken as ``jnp.asarray(logits)`` (so a float64 NumPy array is float32
  unless ``jax_enable_x64`` is on).
- **Key to seed.**  ``key_or_seed`` is one of
  an ``int`` (or NumPy integer) seed in ``[0, 2**64)``;
  a legacy key ``jax.random.PRNGKey(s)`` (``uint32[2]``) or a typed key
  ``jax.random.key(s)`` (its ``jax.random.key_data``), whose words ``(k0, k1)`` give
  ``seed = (k0 << 32) | k1``;
  or a 0-d integer array (a seed passed through ``jit``, or one element of a ``vmap``
  over seeds).  JAX's default (threefry) seeding stores ``s`` as the words ``(s >> 32,
  s & 0xffffffff)``, so ``PRNGKey(s)``, ``key(s)`` and the int ``s`` draw the same
  sample (for every ``s < 2**32``, and for every 64-bit ``s`` with ``jax_enable_x64``).
  Keys are used as they are: the caller splits them (``jax.random.split``) between
  calls as usual; the same key gives the same noise.  Keys of another shape (e.g.
  ``impl="rbg"``, four words, or a batch of keys outside ``vmap``) raise ``ValueError``;
  negative or too large seeds raise ``ValueError``.  A traced seed is checked inside
  the callback: a negative one raises there (see *Errors*).  An int passed to a
  ``jit``-ed function as an argument is traced by JAX as int32 (JAX refuses ints
  ``>= 2**31`` there): pass a key, or make the seed a static argument, for larger seeds.
- **vmap.**  Each batch element is drawn as its own call, with its own key (or the same
  key, when only the logits are batched) and tau, so ``vmap(f)(keys, xs)[i] == f(keys[i],
  xs[i])`` bitwise, as ``vmap`` promises.  With the FFI handlers the batch is one custom
  call (``vmap_method="broadcast_all"``) that runs the elements' rows as one kernel call,
  each row with its element's key and tau (so vmap over keys costs about what one
  batched call does); with callbacks
  it is a Python-level loop of callback calls (``vmap_method="sequential"``).  For one big
  sample with one key, pass the whole batch as extra dimensions of ``logits``.
- **Gradients.**  Reverse mode only (``jax.grad``, ``jax.vjp``; ``jax.jvp`` and
  ``jacfwd`` are not supported by ``custom_vjp``).  The backward pass runs
  ``gs.gumbel_softmax_backward(grad_y, y_soft, tau, axis=axis)`` in a callback, with
  the soft sample kept from the forward pass as the residual: the soft gradient, and
  for ``hard=True`` the straight-through gradient (the gradient of the soft sample of
  the same draw).  No gradient flows to the key.
- **tau.**  A concrete ``tau`` (Python or NumPy scalar, or an untraced array) is
  checked at once (``ValueError``/``TypeError`` naming tau, as in the NumPy API) and
  used as its exact float64 value; such a ``tau`` is a constant of the computation and
  gets no gradient.  A traced scalar ``tau`` (a ``jit`` argument, or what ``jax.grad``
  differentiates) is used at its JAX dtype (float32 unless ``jax_enable_x64``; half and
  integer ``tau`` are computed as float32) and is differentiable:
  ``dL/dtau = -sum(grad_logits * log(y_soft))`` (0 where ``y_soft == 0``), which follows
  from ``y = softmax(s / tau)``, ``s = logits + g``: ``dL/dtau = -sum(grad_logits * s) /
  tau`` and, as ``grad_logits`` sums to 0 over each row, ``s`` may be replaced by
  ``tau * log(y_soft)`` (``s`` minus a constant per row).  It is accumulated in float64:
  with the FFI handlers from float64 logs of ``y_soft`` and the unrounded (float32 for
  half dtypes) ``grad_logits``; with callbacks from logs in the data's precision (float32
  for half dtypes) and the rounded ``grad_logits``, so the two paths may differ in the
  last bits of this gradient (every other output is bitwise the same).
  So ``jax.jit(f)(key, x, 0.3)`` (tau rounded to float32) and ``f(key, x, 0.3)`` may
  differ in the last bits; pass ``tau`` as a JAX array to avoid retracing ``jit`` for
  every new value (annealing).  ``tau`` may also be one per row (an array that
  broadcasts to the batch shape, as in the NumPy API), with its gradient per row.
- **hard, axis** are static Python values (``static_argnames`` under ``jit``).
- **dtypes.**  float32; float64 (with ``jax_enable_x64``); float16 and bfloat16,
  computed in float32 and rounded, as in the NumPy API.  The result and the gradients
  have the dtype of ``logits``.  Integer and bool logits are converted to float64
  (float32 without ``jax_enable_x64``), as the NumPy API converts them; complex and
  other float types raise ``TypeError`` naming logits.
- **Devices.**  The custom calls are registered for the CPU platform only; on a GPU or
  TPU backend use the callback build (``pure_callback`` copies the operands to the host
  and back, a device round trip per call).  It is meant for CPU.
- **Errors.**  Arguments known when tracing (shapes, dtypes, static and concrete values)
  are checked eagerly.  A bad *traced* value (a traced tau that is not positive and
  finite, a negative traced seed) can only be seen when the kernels run: JAX raises
  ``jax.errors.JaxRuntimeError`` carrying the package's message (``tau must be positive
  and finite, got -1.0``) and nothing is printed; once a call of the jitted function
  has succeeded, JAX's C++ fast path raises the same message as ``ValueError`` (its
  mapping of any failed callback or custom call: catch both).  Raised in a callback, the message
  also carries the callback's traceback (JAX's log record of it, which would go to
  stderr, is filtered out: only for our callbacks' ValueError and TypeError).
"""

from __future__ import annotations

import functools
import numbers
from typing import TYPE_CHECKING, Any, Union

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("gumbel_softmax.jax needs JAX: pip install 'gumbel-softmax[jax]'") from exc

from . import _api, _args, _core
from ._jax_args import (
    _apply_mask,
    _check_logits,
    _is_traced,
    _split_tau,
    _StaticTaus,
)
from ._jax_host import _host_call, _sds

if TYPE_CHECKING:
    from jax.typing import ArrayLike

    from ._typing import Axis, Flag

    # an int seed, a PRNG key (new-style, or legacy uint32[2]) or a 0-d integer array
    KeyOrSeed = Union[int, np.integer[Any], jax.Array]

__all__ = [
    "categorical",
    "gumbel_rao",
    "gumbel_softmax",
    "log_gumbel_softmax",
    "reinmax",
    "relaxed_bernoulli",
    "relaxed_top_k",
    "seed_of",
    "top_k",
    "uses_ffi",
]

_SEED_LIMIT = 1 << 64
# ---------------------------------------------------------------------------------------
# Arguments


def _check_int_seed(seed):
    seed = int(seed)
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"key_or_seed as an int seed must be in [0, 2**64), got {seed}")
    return seed


def _words_of(seed):
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


def _key_operand(key_or_seed):
    """(kind, operand): kind "words" with a uint32[2] operand (the key data), or "seed"
    with a traced 0-d integer operand."""
    k = key_or_seed
    if isinstance(k, _args.NON_NUMBERS):
        raise TypeError(
            f"key_or_seed must be an int seed or a JAX PRNG key, got {type(k).__name__}"
        )
    if isinstance(k, (numbers.Integral, np.integer)):
        return "words", _words_of(_check_int_seed(k))
    dtype = getattr(k, "dtype", None)
    if dtype is None:
        raise TypeError(
            f"key_or_seed must be an int seed or a JAX PRNG key, got {type(k).__name__}"
        )
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if k.shape != ():
            raise ValueError(
                f"key_or_seed must be a single PRNG key, got a key array of shape {k.shape} "
                "(use jax.vmap for a batch of keys)"
            )
        k = jax.random.key_data(k)
        if k.shape != (2,):
            raise ValueError(
                "key_or_seed must be a key of two 32-bit words (JAX's default threefry "
                f"implementation), got key data of shape {k.shape}"
            )
        return "words", k.astype(jnp.uint32)
    if not (np.issubdtype(dtype, np.integer)):
        raise TypeError(
            "key_or_seed must be an int seed or a JAX PRNG key (jax.random.PRNGKey or "
            f"jax.random.key), got an array of dtype {dtype}"
        )
    shape = tuple(np.shape(k))
    if shape == ():  # a seed in an array: concrete (check now) or traced (in the callback)
        if _is_traced(k):
            return "seed", k
        return "words", _words_of(_check_int_seed(np.asarray(k).item()))
    if shape != (2,):
        raise ValueError(
            "key_or_seed must be an int seed or a single key of two uint32 words "
            f"(jax.random.PRNGKey), got an array of shape {shape}"
            + (" (use jax.vmap for a batch of keys)" if len(shape) == 2 else "")
        )
    if np.dtype(dtype) != np.uint32:
        raise TypeError(
            f"key_or_seed as a legacy key must be uint32 (jax.random.PRNGKey), got dtype {dtype}"
        )
    if _is_traced(k):
        return "words", k
    return "words", np.asarray(k, dtype=np.uint32)


def seed_of(key_or_seed: KeyOrSeed) -> int:
    """The ``gs.Philox`` seed that ``key_or_seed`` (concrete) stands for.

    ``gumbel_softmax(key_or_seed, x, ...)`` equals the NumPy API's call with
    ``rng=gs.Philox(seed_of(key_or_seed))``.

    >>> import jax, gumbel_softmax.jax as gsj
    >>> gsj.seed_of(jax.random.PRNGKey(42)), gsj.seed_of(jax.random.key(7)), gsj.seed_of(5)
    (42, 7, 5)
    """
    kind, op = _key_operand(key_or_seed)
    if _is_traced(op):
        raise TypeError("seed_of needs a concrete key_or_seed, got a traced value")
    return _seed_from(kind, np.asarray(op))


def _seed_from(kind, a):
    """The seed from the concrete operand (run inside the callbacks)."""
    a = np.asarray(a)
    if kind == "words":
        return (int(a[0]) << 32) | int(a[1])
    return _check_int_seed(a.item())


# ---------------------------------------------------------------------------------------
# The host-side computations


def _tau_value(static_tau, tau):
    """The tau the NumPy API gets: the static one, or the traced operand's values."""
    if tau is None:
        return static_tau.values if isinstance(static_tau, _StaticTaus) else static_tau
    t = np.asarray(tau)
    return float(t) if t.ndim == 0 else t.astype(np.float64)


def _np_forward(hard, log, axis, kind, static_tau, return_soft, key, x, tau=None):
    t = _tau_value(static_tau, tau)
    rng = _args.Philox(_seed_from(kind, key))
    if log:
        return _api.log_gumbel_softmax(np.asarray(x), t, axis=axis, rng=rng)
    return _api.gumbel_softmax(
        np.asarray(x), t, hard=hard, axis=axis, rng=rng, return_soft=return_soft
    )


def _np_categorical(axis, kind, index_dtype, key, x):
    rng = _args.Philox(_seed_from(kind, key))
    return _api.categorical(np.asarray(x), axis=axis, rng=rng).astype(index_dtype)


def _np_backward(axis, static_tau, g, y_soft, tau=None):
    t = _tau_value(static_tau, tau)
    g, y_soft = np.asarray(g), np.asarray(y_soft)
    gx = _api.gumbel_softmax_backward(g, y_soft, t, axis=axis)
    if tau is None:
        return gx
    # dL/dtau = -sum(grad_logits * log(y_soft)), 0 where y_soft == 0 (grad_logits is
    # exactly 0 there); products in the data's precision (float32 for half data),
    # accumulated in float64; over each row for a per-row tau.
    work = np.float64 if y_soft.dtype == np.float64 else np.float32
    ys = y_soft.astype(work)
    logy = np.zeros_like(ys)
    np.log(ys, out=logy, where=ys > 0)
    prod = gx.astype(work) * logy
    per_row = np.ndim(tau) != 0
    dtau = -np.sum(prod, axis=axis if per_row else None, dtype=np.float64)
    return gx, np.asarray(dtau, dtype=np.asarray(tau).dtype)


# The XLA FFI handlers (csrc/bindings/xla_ffi.cpp), when this build has them: registered
# with XLA once, at import; otherwise the kernels run in jax.pure_callback.
_FFI_TARGETS = getattr(_core, "_xla_ffi", None)
if _FFI_TARGETS is not None:
    for _name, _capsule in _FFI_TARGETS.items():
        jax.ffi.register_ffi_target(_name, _capsule, platform="cpu")
_KEY_KINDS = {"words": 0, "seed": 1}
_HALF = (np.dtype(jnp.float16), np.dtype(jnp.bfloat16))


def uses_ffi() -> bool:
    """True when the jitted calls run the kernels as XLA custom calls (this build has the
    XLA FFI handlers); False when they run in ``jax.pure_callback``.

    >>> import gumbel_softmax.jax as gsj
    >>> gsj.uses_ffi() in (True, False)
    True
    """
    return _FFI_TARGETS is not None


def _ffi_tau(static_tau, tau, work_dtype):
    """(tau_mode, static float, operand) of the handlers (see xla_ffi.cpp)."""
    if tau is not None:
        return 1, 0.0, tau
    if isinstance(static_tau, _StaticTaus):  # 1/tau per row, rounded as the NumPy API does
        inv = _args.inverse_tau(static_tau.values, np.dtype(work_dtype))
        return 2, 0.0, jnp.asarray(np.ascontiguousarray(inv))
    return 0, float(static_tau), jnp.zeros((), jnp.float32)


def _ffi_forward(hard, log, axis, kind, static_tau, return_soft, key, x, tau):
    """The forward as an XLA custom call (float16/bfloat16: computed in float32 and
    rounded, as the NumPy API does)."""
    work = x.astype(jnp.float32) if x.dtype in _HALF else x
    shapes = (_sds(work), jax.ShapeDtypeStruct(work.shape if return_soft else (0,), work.dtype))
    call = jax.ffi.ffi_call("gumbel_softmax_forward", shapes, vmap_method="broadcast_all")
    mode, fixed, operand = _ffi_tau(static_tau, tau, work.dtype)
    y, y_soft = call(
        key,
        work,
        operand,
        axis=np.int64(axis),
        ndim=np.int64(x.ndim),
        hard=bool(hard),
        log=bool(log),
        key_kind=np.int64(_KEY_KINDS[kind]),
        static_tau=np.float64(fixed),
        tau_mode=np.int64(mode),
    )
    y = y.astype(x.dtype)
    return (y, y_soft.astype(x.dtype)) if return_soft else y


def _ffi_backward(axis, static_tau, g, y_soft, tau):
    half = y_soft.dtype in _HALF
    gw = g.astype(jnp.float32) if half else g.astype(y_soft.dtype)
    ys = y_soft.astype(jnp.float32) if half else y_soft
    tau_shape = jax.ShapeDtypeStruct((0,), jnp.float32) if tau is None else _sds(tau)
    call = jax.ffi.ffi_call(
        "gumbel_softmax_backward", (_sds(gw), tau_shape), vmap_method="broadcast_all"
    )
    mode, fixed, operand = _ffi_tau(static_tau, tau, gw.dtype)
    gx, gtau = call(
        gw,
        ys,
        operand,
        axis=np.int64(axis),
        ndim=np.int64(y_soft.ndim),
        static_tau=np.float64(fixed),
        tau_mode=np.int64(mode),
    )
    gx = gx.astype(y_soft.dtype)
    return gx if tau is None else (gx, gtau)


def _forward_call(hard, log, axis, kind, static_tau, return_soft, key, x, tau):
    if _FFI_TARGETS is not None:
        return _ffi_forward(hard, log, axis, kind, static_tau, return_soft, key, x, tau)
    cb = functools.partial(_np_forward, hard, log, axis, kind, static_tau, return_soft)
    shapes = (_sds(x), _sds(x)) if return_soft else _sds(x)
    args = (key, x) if tau is None else (key, x, tau)
    return _host_call(cb, shapes, *args)


def _backward_call(axis, static_tau, g, y_soft, tau):
    if _FFI_TARGETS is not None:
        return _ffi_backward(axis, static_tau, g, y_soft, tau)
    cb = functools.partial(_np_backward, axis, static_tau)
    if tau is None:
        return _host_call(cb, _sds(y_soft), g, y_soft)
    return _host_call(cb, (_sds(y_soft), _sds(tau)), g, y_soft, tau)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _gumbel_softmax(hard, axis, kind, static_tau, key, x, tau):
    return _forward_call(hard, False, axis, kind, static_tau, False, key, x, tau)


def _gumbel_softmax_fwd(hard, axis, kind, static_tau, key, x, tau):
    if not hard:  # y is the soft sample: one output, one copy back into JAX
        y = _forward_call(hard, False, axis, kind, static_tau, False, key, x, tau)
        return y, (y, tau)
    y, y_soft = _forward_call(hard, False, axis, kind, static_tau, True, key, x, tau)
    return y, (y_soft, tau)


def _gumbel_softmax_bwd(hard, axis, kind, static_tau, res, g):
    y_soft, tau = res
    if tau is None:
        return None, _backward_call(axis, static_tau, g, y_soft, None), None
    tau = jnp.asarray(tau)  # a residual may come back as a Python float (a literal)
    gx, gtau = _backward_call(axis, static_tau, g, y_soft, tau)
    return None, gx, gtau


_gumbel_softmax.defvjp(_gumbel_softmax_fwd, _gumbel_softmax_bwd)


def _row_taus_along(static_tau, tau, shape, axis, dtype):
    """tau as an array that broadcasts along axis against an array of shape."""
    t = _tau_value(static_tau, None) if tau is None else tau
    t = jnp.asarray(t, dtype) if not isinstance(t, float) else t
    if isinstance(t, float) or jnp.ndim(t) == 0:
        return t
    return jnp.expand_dims(jnp.broadcast_to(t, shape[:axis] + shape[axis + 1 :]), axis)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _log_gumbel_softmax(axis, kind, static_tau, key, x, tau):
    return _forward_call(False, True, axis, kind, static_tau, False, key, x, tau)


def _log_gumbel_softmax_fwd(axis, kind, static_tau, key, x, tau):
    z = _forward_call(False, True, axis, kind, static_tau, False, key, x, tau)
    return z, (z, tau)


def _log_gumbel_softmax_bwd(axis, kind, static_tau, res, g):
    """In JAX ops: z = log softmax(s / tau), so grad_logits = (g - p sum(g)) / tau with
    p = exp(z), and dL/dtau = -sum(g (z - sum(p z))) / tau over each row (0 where p = 0)."""
    z, tau = res
    work = jnp.float32 if z.dtype in _HALF else z.dtype
    zw, gw = z.astype(work), g.astype(work)
    p = jnp.exp(zw)
    t = _row_taus_along(static_tau, tau, z.shape, axis, work)
    gx = ((gw - p * jnp.sum(gw, axis=axis, keepdims=True)) / t).astype(z.dtype)
    if tau is None:
        return None, gx, None
    zf = jnp.where(p > 0, zw, 0)
    centred = zf - jnp.sum(p * zf, axis=axis, keepdims=True)
    per_row = -jnp.sum(gw * centred, axis=axis) / jnp.squeeze(
        jnp.broadcast_to(t, p.shape[:axis] + (1,) + p.shape[axis + 1 :]), axis
    )
    gtau = per_row if jnp.ndim(tau) else jnp.sum(per_row)
    return None, gx, gtau.astype(jnp.asarray(tau).dtype)


_log_gumbel_softmax.defvjp(_log_gumbel_softmax_fwd, _log_gumbel_softmax_bwd)


def _categorical(axis, kind, key, x):
    index_dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    batch = x.shape[:axis] + x.shape[axis + 1 :]
    out = jax.ShapeDtypeStruct(batch, index_dtype)
    work = x.astype(jnp.float32) if x.dtype in _HALF else x
    if _FFI_TARGETS is not None:
        call = jax.ffi.ffi_call("gumbel_softmax_categorical", out, vmap_method="broadcast_all")
        return call(
            key,
            work,
            axis=np.int64(axis),
            ndim=np.int64(x.ndim),
            key_kind=np.int64(_KEY_KINDS[kind]),
        )
    cb = functools.partial(_np_categorical, axis, kind, np.dtype(index_dtype))
    return _host_call(cb, out, key, work)


def _common_args(key_or_seed, logits, axis, mask):
    kind, key = _key_operand(key_or_seed)
    x = _check_logits(logits)
    if _is_traced(axis):
        raise TypeError("axis must be a Python int (a static argument), got a traced value")
    axis = _args.check_axis(axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"axis {axis} of logits has length 0: there is no category to sample")
    return kind, key, _apply_mask(x, mask), axis


# ---------------------------------------------------------------------------------------
# Public function


def gumbel_softmax(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    tau: ArrayLike = 1.0,
    hard: Flag = False,
    axis: Axis = -1,
    mask: ArrayLike | None = None,
) -> jax.Array:
    """Draw ``softmax((logits + g) / tau)`` along ``axis`` (``g`` standard Gumbel noise).

    Bitwise ``gumbel_softmax.gumbel_softmax(np.asarray(logits), tau, hard=hard,
    axis=axis, mask=mask, rng=gumbel_softmax.Philox(seed_of(key_or_seed)))``, computed on
    the host as an XLA custom call or in a ``jax.pure_callback`` (``uses_ffi()``); usable
    under ``jit``, ``grad`` (reverse mode) and ``vmap``.  See the module docstring for the
    key mapping, the tau gradient and vmap.

    Parameters
    ----------
    key_or_seed : int, PRNG key or 0-d integer array
        An int seed in ``[0, 2**64)``, ``jax.random.PRNGKey(s)`` or ``jax.random.key(s)``
        (threefry; ``s`` and its key give the same sample), or a (traced) 0-d integer.
    logits : array_like
        float32, float64 (``jax_enable_x64``), float16 or bfloat16; integer and bool
        arrays are converted to float64 (float32 without ``jax_enable_x64``), as the
        NumPy API converts them; ``ndim >= 1``.
    tau : float or array
        Positive, finite temperature: a scalar, or one per row (an array that broadcasts
        to the batch shape, ``logits.shape`` without ``axis``, or has length 1 along
        ``axis``); differentiable when traced.
    hard : bool, static
        Exact one-hot at the argmax of ``logits + g``, with the straight-through
        gradient (that of the soft sample of the same draw).
    axis : int, static
        The category axis.
    mask : bool array, optional
        ``False`` excludes a category (as a ``-inf`` logit; its gradient is 0); it
        broadcasts to ``logits.shape``.

    Returns
    -------
    jax.Array
        Shape and dtype of ``logits`` (float for integer logits).

    Examples
    --------
    >>> import jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> y = gsj.gumbel_softmax(0, jnp.zeros((2, 3)), jnp.array([0.5, 2.0]),
    ...                        mask=jnp.array([True, False, True]))
    >>> y[:, 1].tolist()
    [0.0, 0.0]
    """
    if _is_traced(hard):
        raise TypeError("hard must be a Python bool (a static argument), got a traced value")
    hard = _args.check_flag(hard, "hard")
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, mask)
    static_tau, tau_op = _split_tau(tau, x.shape, axis)
    return _gumbel_softmax(hard, axis, kind, static_tau, key, x, tau_op)


def log_gumbel_softmax(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    tau: ArrayLike = 1.0,
    axis: Axis = -1,
    mask: ArrayLike | None = None,
) -> jax.Array:
    """The log of a Gumbel-Softmax sample, computed in log space.

    Bitwise ``gumbel_softmax.log_gumbel_softmax(np.asarray(logits), tau, axis=axis,
    mask=mask, rng=gumbel_softmax.Philox(seed_of(key_or_seed)))``: finite wherever the
    logit is finite, even where a small ``tau`` makes the sample underflow to 0.  The
    arguments are those of :func:`gumbel_softmax` (no ``hard``).  Differentiable with
    respect to ``logits`` and a traced ``tau``; the backward is written in JAX ops:
    ``(g - exp(z) * sum(g)) / tau``, and for tau ``-sum(g * (z - sum(exp(z) * z))) / tau``
    over each row.

    Examples
    --------
    >>> import jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> z = gsj.log_gumbel_softmax(3, jnp.array([0.0, 1.0, 2.0]), 1e-3)
    >>> bool(jnp.isfinite(z).all())
    True
    """
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, mask)
    static_tau, tau_op = _split_tau(tau, x.shape, axis)
    return _log_gumbel_softmax(axis, kind, static_tau, key, x, tau_op)


def categorical(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    axis: Axis = -1,
    mask: ArrayLike | None = None,
) -> jax.Array:
    """Category indices by the Gumbel-max trick: ``argmax(logits + g, axis)``.

    Bitwise ``gumbel_softmax.categorical(np.asarray(logits), axis=axis, mask=mask,
    rng=gumbel_softmax.Philox(seed_of(key_or_seed)))`` (the index of the one-hot that
    :func:`gumbel_softmax` with ``hard=True`` draws from the same key): int64 with
    ``jax_enable_x64``, int32 without; ``-1`` for rows with no defined sample.  No
    gradient.

    Examples
    --------
    >>> import jax.numpy as jnp, gumbel_softmax.jax as gsj
    >>> gsj.categorical(0, jnp.log(jnp.array([[0.5, 0.5, 0.0]]))).tolist()[0] in (0, 1)
    True
    """
    kind, key, x, axis = _common_args(key_or_seed, logits, axis, mask)
    return _categorical(axis, kind, key, jax.lax.stop_gradient(x))


# gumbel_rao, reinmax: in _jax_estimators; top_k, relaxed_bernoulli, relaxed_top_k: in
# _jax_more (they use the helpers above)
from ._jax_estimators import gumbel_rao, reinmax  # noqa: E402
from ._jax_more import relaxed_bernoulli, relaxed_top_k, top_k  # noqa: E402
