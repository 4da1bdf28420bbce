"""The first section: ``gumbel_softmax`` and its backward against NumPy, PyTorch and
JAX compositions, and ``np.copyto`` / ``np.exp`` as reference points."""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np

from .core import GOAL_SHAPES, TAU, Case

# Ours: preallocated `out=` arrays wherever the API takes one, so allocation is excluded.


def _ours_forward(tau, hard=False, preallocate=True):
    def make(p):
        rng = gs.Philox(1)
        out = np.empty_like(p.x) if preallocate else None
        return lambda: gs.gumbel_softmax(p.x, tau, hard=hard, axis=p.axis, rng=rng, out=out)

    return make


def _ours_backward(p):
    out = np.empty_like(p.x)
    return lambda: gs.gumbel_softmax_backward(p.grad_y, p.y_soft, TAU, axis=p.axis, out=out)


def _ours_forward_backward(p):
    rng, y, grad = gs.Philox(1), np.empty_like(p.x), np.empty_like(p.x)

    def call():
        _, y_soft = gs.gumbel_softmax(
            p.x, TAU, hard=True, axis=p.axis, rng=rng, out=y, return_soft=True
        )
        return gs.gumbel_softmax_backward(p.grad_y, y_soft, TAU, axis=p.axis, out=grad)

    return call


def _ours_torch_forward_backward(p):
    """The PyTorch drop-in, used as torch.fwd_bwd uses F.gumbel_softmax."""
    from gumbel_softmax.torch import gumbel_softmax

    xt, w, rng = _tensor(p.x).requires_grad_(True), _tensor(p.grad_y), gs.Philox(1)

    def call():
        xt.grad = None
        (gumbel_softmax(xt, TAU, hard=True, dim=p.axis, generator=rng) * w).sum().backward()

    return call


def _ours_gumbel(p):
    rng, out = gs.Philox(1), np.empty_like(p.x)
    return lambda: gs.gumbel(p.shape, rng=rng, out=out)


# NumPy compositions. The main NumPy rows are the strongest a performance-minded user
# writes: in place on preallocated buffers, in the dtype of the logits (NumPy runs on one
# thread). The float64 `Generator.gumbel` composition, cast to the dtype, is kept as a
# second, clearly labelled row.


def _reduced(p) -> tuple:
    """The shape of a keepdims reduction over the sampled axis."""
    shape = list(p.shape)
    shape[p.axis] = 1
    return tuple(shape)


def _numpy_noise_in_place(gen, u):
    """u = log(-log(uniform)) = -g in place: two logs and a negation, no temporaries.
    The log(0) hole: a uniform draw of exactly 0 (probability 2**-24 per float32 word)
    gives g = -inf (that category gets weight 0) and a divide-by-zero warning."""
    gen.random(dtype=u.dtype, out=u)
    np.log(u, out=u)
    np.negative(u, out=u)
    np.log(u, out=u)


def _numpy_forward(tau):
    """softmax((x + g) / tau) in place: noise, x - log(-log u), scale, subtract the row
    max, exp, sum, divide; the buffers are allocated once, outside the timed call."""

    def make(p):
        gen, u = np.random.default_rng(1), np.empty_like(p.x)
        m, s = np.empty(_reduced(p), p.dtype), np.empty(_reduced(p), p.dtype)
        inv_tau = p.dtype.type(1.0 / tau)

        def call():
            _numpy_noise_in_place(gen, u)
            np.subtract(p.x, u, out=u)  # x + g
            if tau != 1.0:  # a user with tau = 1 skips the pass
                np.multiply(u, inv_tau, out=u)
            np.max(u, axis=p.axis, keepdims=True, out=m)
            np.subtract(u, m, out=u)
            np.exp(u, out=u)
            np.sum(u, axis=p.axis, keepdims=True, out=s)
            return np.divide(u, s, out=u)

        return call

    return make


def _np_softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _numpy_forward_float64_gumbel(p):
    gen = np.random.default_rng(1)
    return lambda: _np_softmax((p.x + gen.gumbel(size=p.shape).astype(p.dtype)) / TAU, p.axis)


def _numpy_backward(p):
    """y * (grad_y - sum(grad_y * y)) / tau, in place on preallocated buffers."""
    g, y = p.grad_y, p.y_soft
    buf, s = np.empty_like(p.x), np.empty(_reduced(p), p.dtype)
    inv_tau = p.dtype.type(1.0 / TAU)

    def call():
        np.multiply(g, y, out=buf)
        np.sum(buf, axis=p.axis, keepdims=True, out=s)
        np.subtract(g, s, out=buf)
        np.multiply(buf, y, out=buf)
        return np.multiply(buf, inv_tau, out=buf)

    return call


def _numpy_gumbel(p):
    """The noise alone, in place: g = -log(-log u)."""
    gen, u = np.random.default_rng(1), np.empty_like(p.x)

    def call():
        _numpy_noise_in_place(gen, u)
        return np.negative(u, out=u)

    return call


def _numpy_gumbel_float64(p):
    gen = np.random.default_rng(1)
    return lambda: gen.gumbel(size=p.shape).astype(p.dtype)


# PyTorch (CPU, all cores; see _import_peer).


def _torch_forward(hard, tau=TAU):
    """F.gumbel_softmax on a float32 tensor sharing the array's memory, under
    torch.inference_mode() (no autograd bookkeeping: the forward rows need none)."""

    def make(p):
        import torch
        import torch.nn.functional as F

        xt = _tensor(p.x)

        def call():
            with torch.inference_mode():
                return F.gumbel_softmax(xt, tau=tau, hard=hard, dim=p.axis)

        return call

    return make


def _torch_backward(p):
    """Backward only: autograd.grad through softmax((x + g) / tau) with g drawn once."""
    import torch

    xt = _tensor(p.x).requires_grad_(True)
    g = -torch.empty_like(xt).exponential_().log()
    y = torch.softmax((xt + g) / TAU, dim=p.axis)
    w = _tensor(p.grad_y)
    return lambda: torch.autograd.grad(y, xt, grad_outputs=w, retain_graph=True)


def _torch_forward_backward(p):
    """F.gumbel_softmax(hard=True) (straight-through), then backward of sum(y * w)."""
    import torch.nn.functional as F

    xt, w = _tensor(p.x).requires_grad_(True), _tensor(p.grad_y)

    def call():
        xt.grad = None
        (F.gumbel_softmax(xt, tau=TAU, hard=True, dim=p.axis) * w).sum().backward()

    return call


def _torch_gumbel(p):
    """The noise as F.gumbel_softmax draws it: -log(Exponential(1))."""
    import torch

    xt = _tensor(p.x)
    return lambda: -torch.empty_like(xt).exponential_().log()


def _tensor(a):
    import torch

    return torch.from_numpy(a)


# JAX: jitted, one dispatch per call (the key is split inside), waited for.


def _jax_forward(tau=TAU, impl=None):
    """The composition, jitted; ``impl`` picks the key's PRNG (None: JAX's default,
    threefry2x32; "rbg": XLA's RngBitGenerator, faster on CPU)."""

    def make(p):
        import jax

        if p.dtype == np.float64:
            jax.config.update("jax_enable_x64", True)
        axis, dtype = p.axis, p.dtype

        @jax.jit
        def step(x, key):
            key, sub = jax.random.split(key)
            g = jax.random.gumbel(sub, x.shape, dtype)
            return jax.nn.softmax((x + g) / tau, axis=axis), key

        key = jax.random.PRNGKey(1) if impl is None else jax.random.key(1, impl=impl)
        x, state = jax.device_put(p.x), [key]

        def call():
            y, state[0] = step(x, state[0])
            y.block_until_ready()

        return call

    return make


# Reference points.


def _copy(p):
    dst = np.empty_like(p.x)
    return lambda: np.copyto(dst, p.x)


def _exp(p):
    return lambda: np.exp(p.x)


CASES = (
    Case("ours.soft", "ours soft, tau=0.5", "ours", _ours_forward(TAU)),
    Case("ours.soft_tau1", "ours soft, tau=1.0", "ours", _ours_forward(1.0)),
    Case(
        "ours.soft_alloc",
        "ours soft, tau=0.5, allocates y",
        "ours",
        _ours_forward(TAU, preallocate=False),
    ),
    Case("ours.hard", "ours hard=True", "ours", _ours_forward(TAU, hard=True)),
    Case("ours.backward", "ours backward", "ours", _ours_backward),
    Case("ours.fwd_bwd", "ours hard+return_soft, backward", "ours", _ours_forward_backward),
    Case(
        "ours.torch_fwd_bwd",
        "ours gumbel_softmax.torch hard fwd + .backward()",
        "ours",
        _ours_torch_forward_backward,
        "ours.fwd_bwd",
        requires="torch",
    ),
    Case("ours.gumbel", "ours gs.gumbel noise", "ours", _ours_gumbel),
    Case(
        "numpy.soft",
        "NumPy float32 in place: random, log, log, softmax",
        "numpy",
        _numpy_forward(TAU),
        "ours.soft",
    ),
    Case(
        "numpy.soft_tau1",
        "NumPy float32 in place, tau=1.0",
        "numpy",
        _numpy_forward(1.0),
        "ours.soft_tau1",
        shapes=GOAL_SHAPES,
    ),
    Case(
        "numpy.soft_f64",
        "NumPy float64 rng.gumbel, cast",
        "numpy",
        _numpy_forward_float64_gumbel,
        "ours.soft",
    ),
    Case(
        "numpy.backward",
        "NumPy backward formula, in place",
        "numpy",
        _numpy_backward,
        "ours.backward",
    ),
    Case(
        "numpy.gumbel",
        "NumPy -log(-log(random)), in place",
        "numpy",
        _numpy_gumbel,
        "ours.gumbel",
    ),
    Case(
        "numpy.gumbel_f64",
        "NumPy float64 rng.gumbel().astype",
        "numpy",
        _numpy_gumbel_float64,
        "ours.gumbel",
    ),
    Case("torch.soft", "torch F.gumbel_softmax", "torch", _torch_forward(False), "ours.soft"),
    Case(
        "torch.soft_tau1",
        "torch F.gumbel_softmax, tau=1.0",
        "torch",
        _torch_forward(False, 1.0),
        "ours.soft_tau1",
        shapes=GOAL_SHAPES,
    ),
    Case("torch.hard", "torch F.gumbel_softmax hard", "torch", _torch_forward(True), "ours.hard"),
    Case(
        "torch.backward",
        "torch autograd.grad of softmax",
        "torch",
        _torch_backward,
        "ours.backward",
    ),
    Case(
        "torch.fwd_bwd",
        "torch hard fwd + .backward()",
        "torch",
        _torch_forward_backward,
        "ours.fwd_bwd",
    ),
    Case("torch.gumbel", "torch -log(exponential_())", "torch", _torch_gumbel, "ours.gumbel"),
    Case("jax.soft", "JAX jit softmax(x + gumbel)", "jax", _jax_forward(), "ours.soft"),
    Case(
        "jax.soft_rbg",
        "JAX jit softmax(x + gumbel), rbg key",
        "jax",
        _jax_forward(impl="rbg"),
        "ours.soft",
    ),
    Case(
        "jax.soft_tau1",
        "JAX jit softmax(x + gumbel), tau=1.0",
        "jax",
        _jax_forward(1.0),
        "ours.soft_tau1",
        shapes=GOAL_SHAPES,
    ),
    Case(
        "jax.soft_rbg_tau1",
        "JAX jit softmax(x + gumbel), rbg key, tau=1.0",
        "jax",
        _jax_forward(1.0, impl="rbg"),
        "ours.soft_tau1",
        shapes=GOAL_SHAPES,
    ),
    Case("bound.exp", "np.exp(x), one call", "bound", _exp, "ours.soft_alloc"),
    Case("bound.copy", "np.copyto (bandwidth bound)", "bound", _copy, "ours.soft"),
)
OUT_NOTE = (
    "Our rows pass preallocated `out=` arrays (allocation excluded), except 'allocates y'; "
    "'hard+return_soft, backward' allocates only y_soft. The NumPy 'in place' rows reuse "
    "buffers allocated once, in the logits' dtype (the strongest NumPy version; one "
    "thread); their noise has the log(0) hole: a uniform draw of exactly 0 gives g = -inf. "
    "torch and JAX allocate their results as their APIs do; torch runs on our thread "
    "count. Rows marked tau=1.0 run on the goal shapes only. "
    "'vs ours' = row time / time of the ours row named (> 1: ours is faster)."
)
