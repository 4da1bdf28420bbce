"""The first section: ``gumbel_softmax`` and its backward against NumPy, PyTorch and
JAX compositions, and ``np.copyto`` / ``np.exp`` as reference points."""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np

from .core import TAU, Case

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


# NumPy compositions, written as a NumPy user would.


def _np_softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _numpy_forward(p):
    gen = np.random.default_rng(1)
    return lambda: _np_softmax((p.x + gen.gumbel(size=p.shape).astype(p.dtype)) / TAU, p.axis)


def _numpy_backward(p):
    g, y = p.grad_y, p.y_soft
    return lambda: y * (g - (g * y).sum(axis=p.axis, keepdims=True)) / TAU


def _numpy_gumbel(p):
    gen = np.random.default_rng(1)
    return lambda: gen.gumbel(size=p.shape).astype(p.dtype)


# PyTorch (CPU, all cores; see _import_peer).


def _torch_forward(hard):
    def make(p):
        import torch.nn.functional as F

        xt = _tensor(p.x)
        return lambda: F.gumbel_softmax(xt, tau=TAU, hard=hard, dim=p.axis)

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


def _jax_forward(p):
    import jax

    if p.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    axis, dtype = p.axis, p.dtype

    @jax.jit
    def step(x, key):
        key, sub = jax.random.split(key)
        g = jax.random.gumbel(sub, x.shape, dtype)
        return jax.nn.softmax((x + g) / TAU, axis=axis), key

    x, state = jax.device_put(p.x), [jax.random.PRNGKey(1)]

    def call():
        y, state[0] = step(x, state[0])
        y.block_until_ready()

    return call


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
    Case("numpy.soft", "NumPy rng.gumbel + softmax", "numpy", _numpy_forward, "ours.soft"),
    Case("numpy.backward", "NumPy backward formula", "numpy", _numpy_backward, "ours.backward"),
    Case("numpy.gumbel", "NumPy rng.gumbel().astype", "numpy", _numpy_gumbel, "ours.gumbel"),
    Case("torch.soft", "torch F.gumbel_softmax", "torch", _torch_forward(False), "ours.soft"),
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
    Case("jax.soft", "JAX jit softmax(x + gumbel)", "jax", _jax_forward, "ours.soft"),
    Case("bound.exp", "np.exp(x), one call", "bound", _exp, "ours.soft_alloc"),
    Case("bound.copy", "np.copyto (bandwidth bound)", "bound", _copy, "ours.soft"),
)
PEER_NAMES = {"numpy": "NumPy", "torch": "torch", "jax": "JAX"}
OUT_NOTE = (
    "Our rows pass preallocated `out=` arrays (allocation excluded), except 'allocates y'; "
    "'hard+return_soft, backward' allocates only y_soft. The peers allocate their results as "
    "their APIs do. 'vs ours' = row time / time of the ours row named (> 1: ours is faster)."
)
