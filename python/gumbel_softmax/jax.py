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
  every new value (annealing).  Only a scalar ``tau`` is supported.
- **hard, axis** are static Python values (``static_argnames`` under ``jit``).
- **dtypes.**  float32; float64 (with ``jax_enable_x64``); float16 and bfloat16,
  computed in float32 and rounded, as in the NumPy API.  The result and the gradients
  have the dtype of ``logits``.  Integer, bool, complex and other float types raise
  ``TypeError`` naming logits.
- **Devices.**  The custom calls are registered for the CPU platform only; on a GPU or
  TPU backend use the callback build (``pure_callback`` copies the operands to the host
  and back, a device round trip per call).  It is meant for CPU.
- **Errors.**  Arguments known when tracing (shapes, dtypes, static and concrete values)
  are checked eagerly.  A bad *traced* value (a traced tau that is not positive and
  finite, a negative traced seed) can only be seen when the kernels run: JAX raises
  ``jax.errors.JaxRuntimeError`` carrying the package's message (``tau must be positive
  and finite, got -1.0``).  With the FFI handlers nothing else is printed; a callback's
  ``ValueError`` is also logged by JAX with its traceback.
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

if TYPE_CHECKING:
    from jax.typing import ArrayLike

    from ._typing import Axis, Flag

    # an int seed, a PRNG key (new-style, or legacy uint32[2]) or a 0-d integer array
    KeyOrSeed = Union[int, np.integer[Any], jax.Array]

__all__ = ["gumbel_softmax", "seed_of", "uses_ffi"]

_SEED_LIMIT = 1 << 64
_FLOATS = tuple(np.dtype(d) for d in (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64))
_SEQUENTIAL = "sequential"


def _is_traced(a):
    return isinstance(a, jax.core.Tracer)


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
    if isinstance(k, (bool, np.bool_)):
        raise TypeError("key_or_seed must be an int seed or a JAX PRNG key, got bool")
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


def _check_logits(logits):
    x = jnp.asarray(logits)
    if x.dtype not in _FLOATS:
        raise TypeError(
            f"logits must be a float32, float64, float16 or bfloat16 array, got dtype {x.dtype}"
        )
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d array")
    return x


def _split_tau(tau):
    """(static float tau, None) for a concrete tau, (None, traced float scalar) else."""
    if _is_traced(tau):
        if tau.ndim != 0:
            raise ValueError(f"tau must be a scalar, got an array of shape {tau.shape}")
        if tau.dtype == jnp.bool_ or not (
            jnp.issubdtype(tau.dtype, jnp.floating) or jnp.issubdtype(tau.dtype, jnp.integer)
        ):
            raise TypeError(f"tau must be a real scalar, got dtype {tau.dtype}")
        if tau.dtype not in (np.float32, np.float64):
            tau = tau.astype(jnp.float32)
        return None, tau
    if isinstance(tau, (numbers.Real, np.generic)) and not isinstance(tau, (bool, np.bool_)):
        t = np.asarray(tau)
    elif isinstance(tau, (np.ndarray, jax.Array)):
        t = np.asarray(tau)
        if t.ndim != 0:
            raise ValueError(f"tau must be a scalar, got an array of shape {t.shape}")
    else:
        raise TypeError(f"tau must be a real scalar, got {type(tau).__name__}")
    if t.dtype.kind in "fiu" or (t.dtype in _FLOATS):
        t = t.astype(np.float64)
    else:
        raise TypeError(f"tau must be a real scalar, got dtype {t.dtype}")
    return _args.check_tau(float(t)), None


# ---------------------------------------------------------------------------------------
# The host-side computations


def _np_forward(hard, axis, kind, static_tau, return_soft, key, x, tau=None):
    t = static_tau if tau is None else float(np.asarray(tau))
    rng = _args.Philox(_seed_from(kind, key))
    return _api.gumbel_softmax(
        np.asarray(x), t, hard=hard, axis=axis, rng=rng, return_soft=return_soft
    )


def _np_backward(axis, static_tau, g, y_soft, tau=None):
    t = static_tau if tau is None else float(np.asarray(tau))
    g, y_soft = np.asarray(g), np.asarray(y_soft)
    gx = _api.gumbel_softmax_backward(g, y_soft, t, axis=axis)
    if tau is None:
        return gx
    # dL/dtau = -sum(grad_logits * log(y_soft)), 0 where y_soft == 0 (grad_logits is
    # exactly 0 there); products in the data's precision (float32 for half data),
    # accumulated in float64.
    work = np.float64 if y_soft.dtype == np.float64 else np.float32
    ys = y_soft.astype(work)
    logy = np.zeros_like(ys)
    np.log(ys, out=logy, where=ys > 0)
    prod = gx.astype(work) * logy
    dtau = -np.sum(prod, dtype=np.float64)
    return gx, np.asarray(dtau, dtype=np.asarray(tau).dtype)


def _sds(a):
    return jax.ShapeDtypeStruct(a.shape, a.dtype)


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


def _tau_operand(tau):
    return jnp.zeros((), jnp.float32) if tau is None else tau


def _ffi_forward(hard, axis, kind, static_tau, return_soft, key, x, tau):
    """The forward as an XLA custom call (float16/bfloat16: computed in float32 and
    rounded, as the NumPy API does)."""
    work = x.astype(jnp.float32) if x.dtype in _HALF else x
    shapes = (_sds(work), jax.ShapeDtypeStruct(work.shape if return_soft else (0,), work.dtype))
    call = jax.ffi.ffi_call("gumbel_softmax_forward", shapes, vmap_method="broadcast_all")
    y, y_soft = call(
        key,
        work,
        _tau_operand(tau),
        axis=np.int64(axis),
        ndim=np.int64(x.ndim),
        hard=bool(hard),
        key_kind=np.int64(_KEY_KINDS[kind]),
        static_tau=np.float64(0.0 if static_tau is None else static_tau),
        traced_tau=tau is not None,
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
    gx, gtau = call(
        gw,
        ys,
        _tau_operand(tau),
        axis=np.int64(axis),
        ndim=np.int64(y_soft.ndim),
        static_tau=np.float64(0.0 if static_tau is None else static_tau),
        traced_tau=tau is not None,
    )
    gx = gx.astype(y_soft.dtype)
    return gx if tau is None else (gx, gtau)


def _forward_call(hard, axis, kind, static_tau, return_soft, key, x, tau):
    if _FFI_TARGETS is not None:
        return _ffi_forward(hard, axis, kind, static_tau, return_soft, key, x, tau)
    cb = functools.partial(_np_forward, hard, axis, kind, static_tau, return_soft)
    shapes = (_sds(x), _sds(x)) if return_soft else _sds(x)
    args = (key, x) if tau is None else (key, x, tau)
    return jax.pure_callback(cb, shapes, *args, vmap_method=_SEQUENTIAL)


def _backward_call(axis, static_tau, g, y_soft, tau):
    if _FFI_TARGETS is not None:
        return _ffi_backward(axis, static_tau, g, y_soft, tau)
    cb = functools.partial(_np_backward, axis, static_tau)
    if tau is None:
        return jax.pure_callback(cb, _sds(y_soft), g, y_soft, vmap_method=_SEQUENTIAL)
    return jax.pure_callback(cb, (_sds(y_soft), _sds(tau)), g, y_soft, tau, vmap_method=_SEQUENTIAL)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _gumbel_softmax(hard, axis, kind, static_tau, key, x, tau):
    return _forward_call(hard, axis, kind, static_tau, False, key, x, tau)


def _gumbel_softmax_fwd(hard, axis, kind, static_tau, key, x, tau):
    if not hard:  # y is the soft sample: one output, one copy back into JAX
        y = _forward_call(hard, axis, kind, static_tau, False, key, x, tau)
        return y, (y, tau)
    y, y_soft = _forward_call(hard, axis, kind, static_tau, True, key, x, tau)
    return y, (y_soft, tau)


def _gumbel_softmax_bwd(hard, axis, kind, static_tau, res, g):
    y_soft, tau = res
    if tau is None:
        return None, _backward_call(axis, static_tau, g, y_soft, None), None
    tau = jnp.asarray(tau)  # a residual may come back as a Python float (a literal)
    gx, gtau = _backward_call(axis, static_tau, g, y_soft, tau)
    return None, gx, gtau


_gumbel_softmax.defvjp(_gumbel_softmax_fwd, _gumbel_softmax_bwd)


# ---------------------------------------------------------------------------------------
# Public function


def gumbel_softmax(
    key_or_seed: KeyOrSeed,
    logits: ArrayLike,
    tau: ArrayLike = 1.0,
    hard: Flag = False,
    axis: Axis = -1,
) -> jax.Array:
    """Draw ``softmax((logits + g) / tau)`` along ``axis`` (``g`` standard Gumbel noise).

    Bitwise ``gumbel_softmax.gumbel_softmax(np.asarray(logits), tau, hard=hard,
    axis=axis, rng=gumbel_softmax.Philox(seed_of(key_or_seed)))``, computed on the host
    as an XLA custom call or in a ``jax.pure_callback`` (``uses_ffi()``); usable under ``jit``, ``grad`` (reverse mode) and
    ``vmap``.  See the module docstring for the key mapping, the tau gradient and vmap.

    Parameters
    ----------
    key_or_seed : int, PRNG key or 0-d integer array
        An int seed in ``[0, 2**64)``, ``jax.random.PRNGKey(s)`` or ``jax.random.key(s)``
        (threefry; ``s`` and its key give the same sample), or a (traced) 0-d integer.
    logits : array_like
        float32, float64 (``jax_enable_x64``), float16 or bfloat16; ``ndim >= 1``.
    tau : float or scalar array
        Positive, finite temperature; differentiable when traced.
    hard : bool, static
        Exact one-hot at the argmax of ``logits + g``, with the straight-through
        gradient (that of the soft sample of the same draw).
    axis : int, static
        The category axis.

    Returns
    -------
    jax.Array
        Shape and dtype of ``logits``.
    """
    if _is_traced(hard):
        raise TypeError("hard must be a Python bool (a static argument), got a traced value")
    hard = _args.check_flag(hard, "hard")
    kind, key = _key_operand(key_or_seed)
    x = _check_logits(logits)
    if _is_traced(axis):
        raise TypeError("axis must be a Python int (a static argument), got a traced value")
    axis = _args.check_axis(axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"axis {axis} of logits has length 0: there is no category to sample")
    static_tau, tau_op = _split_tau(tau)
    return _gumbel_softmax(hard, axis, kind, static_tau, key, x, tau_op)
