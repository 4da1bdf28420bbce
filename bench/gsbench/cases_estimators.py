"""The gradient estimators of issue 16 (part of the second section, ``--suite extra``):
``gumbel_rao_backward`` against one soft forward and against a PyTorch composition of the
same estimator, ``reinmax_backward`` against ``gumbel_softmax_backward`` and a PyTorch
composition of the reference package's backward."""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np

from .cases_main import _tensor
from .core import TAU, Case

SAMPLES = 10  # K of the Gumbel-Rao rows (the goal: K = 10 at (4096, 1000))
REINMAX_TAU = 1.5  # ReinMax needs tau >= 1


def _y_hard(p) -> np.ndarray:
    """The hard sample of the problem's logits (a one-hot along the axis)."""
    return gs.gumbel_softmax(p.x, TAU, hard=True, axis=p.axis, rng=gs.Philox(0))


# Ours.


def _ours_gumbel_rao(samples):
    def make(p):
        yh, rng, out = _y_hard(p), gs.Philox(1), np.empty_like(p.x)
        return lambda: gs.gumbel_rao_backward(
            p.grad_y, p.x, yh, TAU, samples=samples, axis=p.axis, rng=rng, out=out
        )

    return make


def _ours_reinmax(tau):
    def make(p):
        yh, out = _y_hard(p), np.empty_like(p.x)
        return lambda: gs.reinmax_backward(p.grad_y, p.x, yh, tau, axis=p.axis, out=out)

    return make


# PyTorch, written from the papers as a performance-minded user would: float32, no
# autograd (the Jacobian-vector products written out), batched over the K draws,
# torch.set_num_threads = ours (core.py).


def _torch_inputs(p):
    import torch

    def last(a):
        t = _tensor(a)
        return t if p.axis in (-1, t.dim() - 1) else t.movedim(p.axis, -1).contiguous()

    x, g, yh = last(p.x), last(p.grad_y), last(_y_hard(p))
    return torch, x, g, yh


def _torch_gumbel_rao(p):
    """GR-MCk (Paulus et al. 2021, their conditional sampler): E ~ Exp(1) of shape
    (K, ...), E_I at the sample, z_j = -log(E_j e^-x_j + E_I / Z), z_I = log Z - log E_I,
    then mean_k J(softmax(z_k / tau)) g / tau."""
    torch, x, g, yh = _torch_inputs(p)
    index = yh.argmax(-1, keepdim=True).expand((SAMPLES,) + x.shape[:-1] + (1,))
    gen = torch.Generator().manual_seed(1)

    def call():
        with torch.no_grad():
            e = torch.empty((SAMPLES,) + x.shape, dtype=x.dtype).exponential_(generator=gen)
            ei = e.gather(-1, index)
            lse = torch.logsumexp(x, -1, keepdim=True)
            z = -torch.log(torch.addcmul(ei * torch.exp(-lse), e, torch.exp(-x)))
            z.scatter_(-1, index, lse - torch.log(ei))
            s = torch.softmax(z / TAU, -1)
            jg = s * (g - (s * g).sum(-1, keepdim=True))
            return jg.mean(0) / TAU

    return call


def _torch_reinmax(p):
    """The reinmax package's backward (ReinMax_Auto.backward) as a composition."""
    torch, x, g, yh = _torch_inputs(p)

    def call():
        with torch.no_grad():
            p0 = x.softmax(-1)
            p1 = 0.5 * ((x / REINMAX_TAU).softmax(-1) + yh)
            g1 = (2 * g) * p1
            g1 = g1 - p1 * g1.sum(-1, keepdim=True)
            g0 = (-0.5 * g) * p0
            g0 = g0 - p0 * g0.sum(-1, keepdim=True)
            return g0 + g1

    return call


ESTIMATOR_CASES = (
    Case(
        "ours.gumbel_rao",
        f"ours gumbel_rao_backward, samples={SAMPLES}, out=",
        "ours",
        _ours_gumbel_rao(SAMPLES),
        "ours.soft",
    ),
    Case(
        "ours.gumbel_rao_1",
        "ours gumbel_rao_backward, samples=1, out=",
        "ours",
        _ours_gumbel_rao(1),
        "ours.soft",
    ),
    Case(
        "torch.gumbel_rao",
        f"torch GR-MCk composition, K={SAMPLES} batched",
        "torch",
        _torch_gumbel_rao,
        "ours.gumbel_rao",
    ),
    Case(
        "ours.reinmax",
        f"ours reinmax_backward, tau={REINMAX_TAU}, out=",
        "ours",
        _ours_reinmax(REINMAX_TAU),
        "ours.backward",
    ),
    Case(
        "ours.reinmax_tau1",
        "ours reinmax_backward, tau=1, out=",
        "ours",
        _ours_reinmax(1.0),
        "ours.backward",
    ),
    Case(
        "torch.reinmax",
        f"torch ReinMax backward composition, tau={REINMAX_TAU}",
        "torch",
        _torch_reinmax,
        "ours.reinmax",
    ),
)
ESTIMATOR_NOTE = (
    f"Gumbel-Rao: 'ours gumbel_rao_backward, samples={SAMPLES}' vs the soft forward is "
    f"{SAMPLES} conditional draws: divided by {SAMPLES} it is the cost per element and "
    "draw against one soft forward (issue 16's goal: at most 1.5). ReinMax rows are "
    "against the backward from a stored y_soft (goal: within 1.5x)."
)
