"""Gradient estimators of the categorical VAE (``examples/vae_digits.py``), two ways.

The latent layer of the VAE draws a one-hot (or relaxed) sample of each categorical
variable; an *estimator* says what gradient reaches the encoder's logits through it.
Four of them, each written twice:

=============  =========================================  ===============================
estimator      ours (NumPy, ``gumbel_softmax``)           PyTorch, written from the paper
=============  =========================================  ===============================
``soft``       ``gs.gumbel_softmax`` +                    ``F.gumbel_softmax``
               ``gs.gumbel_softmax_backward``
``st``         the same, ``hard=True`` (straight-         ``F.gumbel_softmax(hard=True)``
               through Gumbel-Softmax, Jang et al. 2016)
``gumbel-rao`` ``gs.gumbel_rao_backward`` (GR-MCk,        :func:`gumbel_rao_torch`: K
               Paulus, Maddison & Krause, ICLR 2021)      conditional draws materialised
``reinmax``    ``gs.reinmax_backward`` (Liu et al.,       the ``reinmax`` package when
               NeurIPS 2023)                              installed, else
                                                          :class:`ReinMaxTorch`
=============  =========================================  ===============================

The hard estimators share their forward: the exact one-hot of ``argmax(logits + g)``,
a draw from ``Categorical(softmax(logits))`` (ours: ``gs.gumbel_softmax(hard=True)``;
torch: the Gumbel-max trick on torch's noise, or ``torch.multinomial`` inside the
``reinmax`` package).  They differ in the backward only:

- straight-through: ``J(p) grad / tau`` with ``p = softmax((logits + g) / tau)``, the
  soft sample of the forward's own noise, ``J(p) = diag(p) - p p^T``;
- Gumbel-Rao: the same Jacobian averaged over K draws ``z_k`` of the perturbed logits
  *conditioned on* the forward's argmax ``I`` (a Rao-Blackwellisation of the
  straight-through estimator: the same expectation, less variance), ``(1 / (K tau))
  sum_k J(softmax(z_k / tau)) grad``.  The paper's estimator is the conditional
  expectation of the straight-through gradient at *fixed* noise, so the torch version
  differentiates ``softmax((logits + g_k) / tau)`` with ``g_k = z_k - logits`` held
  fixed (``detach``);
- ReinMax: ``2 J(p1) grad + J(p0) (grad_p - grad / 2)`` with ``p0 = softmax(logits)``,
  ``p1 = (softmax(logits / tau) + onehot) / 2`` (Heun's method; ``tau >= 1``).

:func:`encoder_gradients` draws the gradient of the loss with respect to the encoder's
parameters many times at fixed parameters and minibatch (fresh noise each time) for the
variance table of ``examples/results/vae_estimators.md``.
"""

from __future__ import annotations

import dataclasses

import gumbel_softmax as gs
import numpy as np

ENCODER = ("W1", "b1", "W2", "b2")
NAMES = ("soft", "st", "gumbel-rao", "reinmax")


@dataclasses.dataclass(frozen=True)
class Estimator:
    """An estimator of the latent layer's gradient: ``name`` in :data:`NAMES`,
    ``samples`` the K of Gumbel-Rao (ignored by the others)."""

    name: str
    samples: int = 10

    def __post_init__(self):
        if self.name not in NAMES:
            raise ValueError(f"estimator must be one of {NAMES}, got {self.name!r}")
        if self.name == "gumbel-rao" and self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")

    @property
    def hard(self):
        """True when the decoder sees exact one-hots."""
        return self.name != "soft"

    @property
    def label(self):
        return f"gumbel-rao K={self.samples}" if self.name == "gumbel-rao" else self.name


def as_estimator(est):
    """An :class:`Estimator` from one, a name, or a bool (``hard``: st, else soft)."""
    if isinstance(est, Estimator):
        return est
    if isinstance(est, bool):
        return Estimator("st" if est else "soft")
    return Estimator(est)


# --------------------------------------------------------------------------------------
# Ours: NumPy with gumbel_softmax


def latent_forward(est, logits, tau, rng):
    """The latent sample ``y`` (logits' shape) and what :func:`latent_backward` needs.

    ``rng`` (a ``gs.Philox``) draws the forward's noise, and for Gumbel-Rao, in the
    backward, the conditional draws (rows after the forward's)."""
    if est.name in ("soft", "st"):
        y, y_soft = gs.gumbel_softmax(logits, tau, hard=est.hard, rng=rng, return_soft=True)
        return y, (y_soft, tau)
    # the one-hot of argmax(logits + g): its position does not depend on tau
    y = gs.gumbel_softmax(logits, tau if est.name == "gumbel-rao" else 1.0, hard=True, rng=rng)
    return y, (logits, y, tau, rng)


def latent_backward(est, d_y, state):
    """The gradient reaching the logits, given ``d_y`` (the gradient at ``y``)."""
    if est.name in ("soft", "st"):
        y_soft, tau = state
        return gs.gumbel_softmax_backward(d_y, y_soft, tau)
    logits, y, tau, rng = state
    if est.name == "gumbel-rao":
        return gs.gumbel_rao_backward(d_y, logits, y, tau, samples=est.samples, rng=rng)
    return gs.reinmax_backward(d_y, logits, y, tau)


# --------------------------------------------------------------------------------------
# PyTorch, written from the papers


def _torch():
    import torch

    return torch


def one_hot_sample_torch(logits, generator=None):
    """The exact one-hot of ``argmax(logits + g)``, g standard Gumbel from torch's
    generator (no gradient)."""
    torch = _torch()
    with torch.no_grad():
        u = torch.rand(logits.shape, dtype=logits.dtype, generator=generator)
        g = -torch.log(-torch.log(u.clamp_min(torch.finfo(u.dtype).tiny)))
        index = (logits + g).argmax(-1)
        return torch.nn.functional.one_hot(index, logits.shape[-1]).to(logits.dtype)


def conditional_gumbel_torch(logits, one_hot, samples, generator=None):
    """``samples`` draws of ``z = logits + g`` given ``argmax(z) == I`` (``I`` the 1 of
    ``one_hot``), materialised: shape ``(samples,) + logits.shape``, no gradient.

    From the two facts Paulus et al. (2021, appendix) build on, with ``E`` standard
    exponentials: the maximum ``z_I = logsumexp(logits) - log E_I`` is independent of
    the argmax, and every other ``z_j`` is the Gumbel ``logits_j - log E_j`` truncated
    below ``z_I``: ``z_j = -log(exp(-z_I) + exp(-logits_j) E_j)`` (in log space here)."""
    torch = _torch()
    with torch.no_grad():
        x = logits.detach()
        e = torch.empty((samples,) + tuple(x.shape), dtype=x.dtype)
        e.exponential_(generator=generator)
        log_e = torch.log(e)
        z_i = torch.logsumexp(x, -1, keepdim=True) - (log_e * one_hot).sum(-1, keepdim=True)
        z_j = -torch.logaddexp(-z_i, log_e - x)
        return torch.where(one_hot.bool(), z_i, z_j)


def gumbel_rao_surrogate_torch(logits, one_hot, z, tau):
    """``one_hot`` in the forward, the GR-MCk gradient in the backward: ``s = mean_k
    softmax((logits + g_k) / tau)`` with ``g_k = z_k - logits`` held fixed, returned as
    ``one_hot + (s - s.detach())`` (exactly the one-hot in the forward)."""
    torch = _torch()
    g = (z - logits.detach()).detach()
    s = torch.softmax((logits + g) / tau, dim=-1).mean(0)
    return one_hot + (s - s.detach())


def gumbel_rao_torch(logits, tau, samples, generator=None):
    """GR-MCk as a research implementation writes it: the forward's one-hot from torch's
    noise, then ``samples`` conditional draws at once (memory ``samples`` times the
    logits)."""
    d = one_hot_sample_torch(logits, generator)
    z = conditional_gumbel_torch(logits, d, samples, generator)
    return gumbel_rao_surrogate_torch(logits, d, z, tau)


def _reinmax_function():
    torch = _torch()

    class ReinMaxTorch(torch.autograd.Function):
        """ReinMax (Liu et al. 2023, Algorithm 2) as an autograd function of
        ``(logits, tau, one_hot)``, returning ``(one_hot, p0)``: the backward is
        ``2 J(p1) grad_y + J(p0) (grad_p - grad_y / 2)``."""

        @staticmethod
        def forward(ctx, logits, tau, one_hot):
            p0 = torch.softmax(logits, dim=-1)
            ctx.save_for_backward(logits, one_hot, p0)
            ctx.tau = tau
            return one_hot.clone(), p0

        @staticmethod
        def backward(ctx, grad_y, grad_p):
            logits, one_hot, p0 = ctx.saved_tensors
            p1 = 0.5 * (torch.softmax(logits / ctx.tau, dim=-1) + one_hot)

            def jvp(p, v):  # J(p) v with J(p) = diag(p) - p p^T
                return p * v - p * (p * v).sum(-1, keepdim=True)

            return 2 * jvp(p1, grad_y) + jvp(p0, grad_p - 0.5 * grad_y), None, None

    return ReinMaxTorch


def reinmax_torch(logits, tau, one_hot):
    """``(one_hot, softmax(logits))`` with ReinMax's gradient (:class:`ReinMaxTorch`)."""
    return _reinmax_function().apply(logits, tau, one_hot)


def reinmax_package():
    """The ``reinmax`` package's ``reinmax(logits, tau)``, or None when not installed."""
    try:
        from reinmax import reinmax
    except ImportError:
        return None
    return reinmax


def latent_torch(est, logits, tau, generator=None, use_package=True):
    """The torch latent sample of ``est`` with its gradient (logits ``(..., C)``)."""
    torch = _torch()
    F = torch.nn.functional
    if est.name in ("soft", "st"):
        return F.gumbel_softmax(logits, tau=tau, hard=est.hard, dim=-1)
    if est.name == "gumbel-rao":
        return gumbel_rao_torch(logits, tau, est.samples, generator)
    package = reinmax_package() if use_package else None
    if package is not None:
        return package(logits, tau)[0]
    return reinmax_torch(logits, tau, one_hot_sample_torch(logits, generator))[0]


# --------------------------------------------------------------------------------------
# The variance of the encoder's gradient


def _flat(grads):
    return np.concatenate([np.asarray(grads[k], np.float64).reshape(-1) for k in ENCODER])


def encoder_gradients(vae, params, x, tau, est, draws=100, seed=2024):
    """``draws`` gradients of the -ELBO with respect to the encoder's parameters (W1, b1,
    W2, b2; flattened, float64 rows) at fixed ``params`` and minibatch ``x``, each with
    fresh noise (one ``gs.Philox(seed)`` stream, drawn in turn)."""
    rng = gs.Philox(seed)
    out = np.empty((draws, sum(params[k].size for k in ENCODER)))
    for d in range(draws):
        out[d] = _flat(vae.loss_and_grads(params, x, tau, est, rng)[1])
    return out


def encoder_gradients_torch(vae, params, x, tau, est, draws=100, seed=2024, use_package=True):
    """As :func:`encoder_gradients` with the torch model and estimator (torch's noise,
    ``torch.Generator().manual_seed(seed)``; the ``reinmax`` package uses the global
    generator, seeded with ``seed`` inside ``torch.random.fork_rng``)."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    p = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in params.items()}
    xt = torch.from_numpy(np.ascontiguousarray(x))
    out = np.empty((draws, sum(params[k].size for k in ENCODER)))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for d in range(draws):
            for v in p.values():
                v.grad = None
            loss = vae.neg_elbo_torch(p, xt, tau, est, gen, use_package)
            loss.backward()
            out[d] = np.concatenate([p[k].grad.double().numpy().reshape(-1) for k in ENCODER])
    return out


def variance_summary(grads):
    """``{"total_variance": sum of the per-coordinate variances (ddof 1), "mean_sq_norm":
    |mean|^2, "draws": n}``: the trace of the gradient's covariance, and the squared
    norm of its mean for scale."""
    mean = grads.mean(axis=0)
    return {
        "total_variance": float(grads.var(axis=0, ddof=1).sum()),
        "mean_sq_norm": float(mean @ mean),
        "draws": int(len(grads)),
    }


def checkpoint_epochs(epochs):
    """The epochs after which the variance is measured: 0 (the initial weights), the
    middle and the end."""
    return sorted({0, epochs // 2, epochs})
