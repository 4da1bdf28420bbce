"""Rows of the second section for relaxed_top_k (issue 16): ours against our soft
forward (issue 16's speed point: per step k at most 1.5x one soft forward, that is the
row at most 1.5 k times ``ours.soft``), and the same formula composed in NumPy and in
PyTorch (forward, and the backward by autograd)."""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np

from .cases_main import _tensor
from .core import TAU, Case

SUBSET_K = 5  # k of the relaxed_top_k rows (min(SUBSET_K, K) on shorter rows)
PER_STEP_GOAL = 1.5  # issue 16: a step costs at most 1.5 soft forwards


def _k(p) -> int:
    return min(SUBSET_K, p.shape[p.axis])


def _ours_subset(hard):
    def make(p):
        rng, out, k = gs.Philox(1), np.empty_like(p.x), _k(p)
        return lambda: gs.relaxed_top_k(p.x, k, TAU, hard=hard, axis=p.axis, rng=rng, out=out)

    return make


def _ours_subset_backward(p):
    out, k = np.empty_like(p.x), _k(p)
    return lambda: gs.relaxed_top_k_backward(p.grad_y, p.x, k, TAU, axis=p.axis, rng=1, out=out)


def numpy_relaxed_steps(v, k, tau, axis, bufs=None):
    """The formula in NumPy on perturbed logits v (in place on preallocated buffers when
    given: r, a, y and a batch-shaped scratch): r = v, then k times r += log1p(-a),
    a = softmax(r / tau), y += a, in the naive form (log1p(-1) = -inf drops a category
    taken with certainty)."""
    r, a, y, s = bufs if bufs is not None else (np.empty_like(v), None, None, None)
    a = np.zeros_like(v) if a is None else a
    y = np.zeros_like(v) if y is None else y
    s = np.empty(np.max(v, axis=axis, keepdims=True).shape, v.dtype) if s is None else s
    np.copyto(r, v)
    a.fill(0)
    y.fill(0)
    inv_tau = v.dtype.type(1.0 / tau)
    with np.errstate(divide="ignore"):
        for _ in range(k):
            np.negative(a, out=a)
            np.log1p(a, out=a)
            np.add(r, a, out=r)
            np.multiply(r, inv_tau, out=a)
            np.max(a, axis=axis, keepdims=True, out=s)
            np.subtract(a, s, out=a)
            np.exp(a, out=a)
            np.sum(a, axis=axis, keepdims=True, out=s)
            np.divide(a, s, out=a)
            np.add(y, a, out=y)
    return y


def _numpy_subset(p):
    gen, k = np.random.default_rng(1), _k(p)
    v = np.empty_like(p.x)
    shape = list(p.shape)
    shape[p.axis] = 1
    bufs = (np.empty_like(p.x), np.empty_like(p.x), np.empty_like(p.x), np.empty(shape, p.dtype))

    def call():  # noise -log(-log u) in place, as the other NumPy rows draw it
        gen.random(dtype=v.dtype, out=v)
        np.log(v, out=v)
        np.negative(v, out=v)
        np.log(v, out=v)
        np.subtract(p.x, v, out=v)
        return numpy_relaxed_steps(v, k, TAU, p.axis, bufs)

    return call


def _torch_steps(xt, k, dim):
    import torch

    r = xt - torch.empty_like(xt).exponential_().log()
    a = torch.zeros_like(r)
    y = torch.zeros_like(r)
    for _ in range(k):
        r = r + torch.log1p(-a)
        a = torch.softmax(r / TAU, dim=dim)
        y = y + a
    return y


def _torch_subset(p):
    import torch

    xt, k = _tensor(p.x), _k(p)

    def call():
        with torch.no_grad():
            return _torch_steps(xt, k, p.axis)

    return call


def _torch_subset_backward(p):
    """Backward only: autograd.grad through the k steps, drawn once."""
    import torch

    xt = _tensor(p.x).requires_grad_(True)
    y = _torch_steps(xt, _k(p), p.axis)
    w = _tensor(p.grad_y)
    return lambda: torch.autograd.grad(y, xt, grad_outputs=w, retain_graph=True)


SUBSET_CASES = (
    Case(
        "ours.relaxed_top_k",
        f"ours relaxed_top_k, k={SUBSET_K}, out= (vs soft: <= {PER_STEP_GOAL} k)",
        "ours",
        _ours_subset(False),
        "ours.soft",
    ),
    Case(
        "ours.relaxed_top_k_hard",
        f"ours relaxed_top_k hard=True (the k-hot), k={SUBSET_K}",
        "ours",
        _ours_subset(True),
        "ours.top_k",
    ),
    Case(
        "ours.relaxed_top_k_backward",
        f"ours relaxed_top_k_backward (recomputing), k={SUBSET_K}",
        "ours",
        _ours_subset_backward,
        "ours.relaxed_top_k",
    ),
    Case(
        "numpy.relaxed_top_k",
        "NumPy k softmaxes of x + g, in place",
        "numpy",
        _numpy_subset,
        "ours.relaxed_top_k",
    ),
    Case(
        "torch.relaxed_top_k",
        "torch k softmaxes of x + gumbel",
        "torch",
        _torch_subset,
        "ours.relaxed_top_k",
    ),
    Case(
        "torch.relaxed_top_k_backward",
        "torch autograd.grad of the k softmaxes",
        "torch",
        _torch_subset_backward,
        "ours.relaxed_top_k_backward",
    ),
)
