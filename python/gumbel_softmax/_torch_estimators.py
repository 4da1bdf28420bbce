"""gumbel_softmax.torch's gradient estimators of the hard sample: ``reinmax`` and
``gumbel_rao`` (autograd Functions around the NumPy API's estimators).

The forward sample is the drop-in's ``gumbel_softmax(logits, tau, hard=True, dim=dim,
generator=generator)``, bitwise; the backward runs ``gs.reinmax_backward`` /
``gs.gumbel_rao_backward`` on zero-copy NumPy views.  Under ``torch.compile`` each call
runs eagerly (one graph break, ``torch._disable_dynamo``): the estimators are not
custom ops yet.  ``tau`` is a positive float.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from . import _args, _estimators
from . import _torch_ops as _ops


def _conditional_rng(generator, nrows, samples):
    """The Philox of Gumbel-Rao's conditional draws, fixed when the forward runs: for an
    int seed the rows after the forward's (``Philox(seed, counter=nrows)``); for a
    ``Philox`` the next ``samples * nrows`` rows, reserved now; otherwise a fresh seed
    drawn from the generator (torch's default one for None)."""
    if isinstance(generator, (numbers.Integral, np.integer)) and not isinstance(
        generator, (bool, np.bool_)
    ):
        return _args.Philox(int(generator), counter=nrows)
    if isinstance(generator, _args.Philox):
        first = generator.reserve(samples * nrows)
        return _args.Philox(generator.seed, counter=first)
    if generator is None or isinstance(generator, torch.Generator):
        seed, _ = _ops.draw_torch(generator)
        return _args.Philox(seed)
    return _args.as_rng(generator)


def _scalar_tau(tau, at_least_one):
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError("tau must be a float (a scalar) for the estimators")
        tau = float(tau)
    tau = _args.check_tau(tau)
    if at_least_one and tau < 1:
        raise ValueError(f"tau must be >= 1 for reinmax, got {tau!r}")
    return tau


def _view(t):
    return t.detach().contiguous().numpy()


class _ReinMax(torch.autograd.Function):
    @staticmethod
    def forward(logits, y_hard, tau, dim):
        return y_hard.clone(), torch.softmax(logits, dim=dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, y_hard, tau, dim = inputs
        ctx.save_for_backward(logits, y_hard)
        ctx.tau, ctx.dim = tau, dim

    @staticmethod
    def backward(ctx, g_y, g_p):
        logits, y_hard = ctx.saved_tensors
        if g_y is None:
            g_y = torch.zeros_like(logits)
        grad_p = None if g_p is None else _view(g_p.to(logits.dtype))
        grad = _estimators.reinmax_backward(
            _view(g_y.to(logits.dtype)),
            _view(logits),
            _view(y_hard),
            ctx.tau,
            axis=ctx.dim,
            grad_p=grad_p,
        )
        return torch.from_numpy(grad), None, None, None


class _GumbelRao(torch.autograd.Function):
    @staticmethod
    def forward(logits, y_hard, tau, dim, samples, rng):
        return y_hard.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, y_hard, tau, dim, samples, rng = inputs
        ctx.save_for_backward(logits, y_hard)
        ctx.tau, ctx.dim, ctx.samples, ctx.rng = tau, dim, samples, rng

    @staticmethod
    def backward(ctx, g_y):
        logits, y_hard = ctx.saved_tensors
        # a fresh copy of the draws' Philox: a second backward draws the same rows
        rng = _args.Philox(ctx.rng.seed, counter=ctx.rng.counter)
        grad = _estimators.gumbel_rao_backward(
            _view(g_y.to(logits.dtype)),
            _view(logits),
            _view(y_hard),
            ctx.tau,
            samples=ctx.samples,
            axis=ctx.dim,
            rng=rng,
        )
        return torch.from_numpy(grad), None, None, None, None, None


def _hard_sample(logits, tau, dim, generator):
    from .torch import gumbel_softmax

    with torch.no_grad():
        return gumbel_softmax(logits.detach(), tau, hard=True, dim=dim, generator=generator)


@torch._disable_dynamo
def reinmax(logits, tau=1.0, *, dim=-1, generator=None):
    tau = _scalar_tau(tau, at_least_one=True)
    y = _hard_sample(logits, tau, dim, generator)
    return _ReinMax.apply(logits, y, tau, dim % logits.dim())


@torch._disable_dynamo
def gumbel_rao(logits, tau=1.0, *, samples=10, dim=-1, generator=None):
    if isinstance(samples, (bool, np.bool_)) or not isinstance(
        samples, (numbers.Integral, np.integer)
    ):
        raise TypeError(f"samples must be an integer, got {type(samples).__name__}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    tau = _scalar_tau(tau, at_least_one=False)
    y = _hard_sample(logits, tau, dim, generator)
    d = dim % logits.dim()
    rng = _conditional_rng(generator, logits.numel() // max(logits.shape[d], 1), int(samples))
    return _GumbelRao.apply(logits, y, tau, d, int(samples), rng)
