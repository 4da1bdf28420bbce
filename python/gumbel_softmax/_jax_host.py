"""How ``gumbel_softmax.jax`` runs NumPy-API code under ``jit``: ``_host_call``, a
``jax.pure_callback`` with one callback per batch element under ``vmap``, 64-bit operands
carried as uint32 words, and the callbacks' own argument errors kept off stderr.  Used by
:mod:`gumbel_softmax.jax` where the build has no XLA FFI handlers, and by the functions
that have none (``_jax_more``, ``_jax_estimators``).
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

_SEQUENTIAL = "sequential"


def _sds(a):
    return jax.ShapeDtypeStruct(a.shape, a.dtype)


class _QuietOwnErrors(logging.Filter):
    """Drops JAX's log record of an exception that one of our callbacks raised on
    purpose (a ValueError or TypeError naming a bad traced argument): JAX raises it as a
    JaxRuntimeError anyway, and the record would dump a traceback on stderr.  Other
    exceptions, and other callbacks' records, pass."""

    def filter(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, "_gumbel_softmax_raised", False)


logging.getLogger("jax._src.callback").addFilter(_QuietOwnErrors())


def _marked(cb):
    """cb, whose ValueError and TypeError carry the mark _QuietOwnErrors looks for."""

    @functools.wraps(cb)
    def run(*args):
        try:
            return cb(*args)
        except (ValueError, TypeError) as exc:
            exc._gumbel_softmax_raised = True
            raise

    return run


def _host_call(cb, shapes, *args):
    """``jax.pure_callback(cb, shapes, *args)``, one callback per batch element under vmap,
    with 64-bit operands and results carried across as pairs of uint32 words, and the
    callback's errors kept off stderr (_QuietOwnErrors).

    ``jax.enable_x64`` is a thread-local switch, and XLA may run a callback on one of its
    own threads, where it is off: JAX then casts float64 operands to float32 on the way
    in (the result's dtype no longer matches) and refuses float64 and int64 results.  The
    words cross unchanged, and the callback sees the arrays of the traced program.

    cb is a ``functools.partial`` of static arguments (hashable: ints, strings, dtypes,
    floats, _StaticTaus by value): equal calls get the very same host function
    (_host_fn's cache), because JAX compiles and keeps an executable per callable, and
    an eager call with a new callable each time kept about 1.4 MB per call."""
    args = tuple(jnp.asarray(a) for a in args)
    single = not isinstance(shapes, tuple)
    outs = (shapes,) if single else shapes
    wide_in = tuple(np.dtype(a.dtype).itemsize == 8 for a in args)
    wide_out = tuple(np.dtype(o.dtype).itemsize == 8 for o in outs)
    in_specs = tuple((np.dtype(a.dtype), a.shape) for a in args)
    host = _host_fn(cb.func, cb.args, single, wide_in, wide_out, in_specs, outs)
    if not any(wide_in) and not any(wide_out):
        return jax.pure_callback(host, shapes, *args, vmap_method=_SEQUENTIAL)
    packed_in = [
        jax.lax.bitcast_convert_type(a, jnp.uint32) if wide else a for a, wide in zip(args, wide_in)
    ]
    packed_out = tuple(
        jax.ShapeDtypeStruct(o.shape + (2,), jnp.uint32) if wide else o
        for o, wide in zip(outs, wide_out)
    )
    res = jax.pure_callback(host, packed_out, *packed_in, vmap_method=_SEQUENTIAL)
    res = tuple(
        jax.lax.bitcast_convert_type(r, o.dtype) if wide else r
        for r, o, wide in zip(res, outs, wide_out)
    )
    return res[0] if single else res


@functools.lru_cache(maxsize=512)
def _host_fn(func, fargs, single, wide_in, wide_out, in_specs, outs):
    """The host function of _host_call for func(*fargs) on operands in_specs, one object
    per distinct key (a bounded cache: a key evicted costs one more compilation)."""
    cb = _marked(functools.partial(func, *fargs))
    if not any(wide_in) and not any(wide_out):
        return cb

    def host(*words):
        vals = [
            np.asarray(w).view(dt).reshape(shape) if wide else w
            for w, wide, (dt, shape) in zip(words, wide_in, in_specs)
        ]
        res = cb(*vals)
        res = (res,) if single else tuple(res)
        return tuple(
            np.ascontiguousarray(r, dtype=o.dtype).reshape(o.shape + (1,)).view(np.uint32)
            if wide
            else r
            for r, o, wide in zip(res, outs, wide_out)
        )

    return host
