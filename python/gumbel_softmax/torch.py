"""PyTorch drop-in: ``gumbel_softmax.torch.gumbel_softmax`` for CPU tensors.

>>> import torch, torch.nn.functional as F                        # doctest: +SKIP
>>> from gumbel_softmax.torch import gumbel_softmax               # doctest: +SKIP
>>> y = gumbel_softmax(logits, tau=0.5, hard=True)  # where F.gumbel_softmax was  # doctest: +SKIP

The same call as ``torch.nn.functional.gumbel_softmax(logits, tau=1, hard=False,
eps=1e-10, dim=-1)``, plus a ``generator``; an autograd Function whose forward and
backward are this package's fused kernels, run on zero-copy NumPy views of the tensors
(contiguous or not, nothing is copied; the results are new tensors sharing the memory of
the arrays the kernels wrote).

What differs from ``F.gumbel_softmax`` (see the README's migration table):

- the noise is this package's Philox stream, not torch's: ``generator`` is an int seed,
  a ``gumbel_softmax.Philox`` (advanced by the number of rows), a
  ``numpy.random.Generator``, a ``torch.Generator`` (a 64-bit seed is drawn from it), or
  ``None``: a seed drawn from torch's default generator, so that ``torch.manual_seed``
  makes runs reproducible as it does for ``F.gumbel_softmax``.  The sample is bitwise
  equal to ``gumbel_softmax.gumbel_softmax(logits.numpy(), tau, hard=hard, axis=dim,
  rng=<the same state>)``;
- ``hard=True`` returns the exact one-hot (0.0 and 1.0), where torch's
  ``y_hard - y_soft.detach() + y_soft`` is only close to it; the gradient is the same
  straight-through gradient, that of the soft sample;
- the noise is never infinite, so no NaN from ``log(0)``;
- CPU tensors of dtype float32, float64 or float16 only (float16 is computed in float32
  and rounded, as in the NumPy API); other devices and dtypes raise;
- ``tau`` may be a float, a 0-d tensor or a tensor of per-row temperatures (broadcasting
  to the batch shape, as in the NumPy API); a tensor ``tau`` that requires grad gets its
  gradient, ``-sum(grad_logits * log(y_soft))`` over each row;
- double backward (gradients of gradients), ``torch.func`` transforms and
  ``torch.compile`` tracing are not supported: the kernels are opaque to autograd.

``eps`` is accepted for compatibility; as in torch it is deprecated and has no effect
(a value other than the default warns).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from . import _api

try:
    import torch as _torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "gumbel_softmax.torch needs PyTorch: pip install 'gumbel-softmax[torch]' "
        "(for the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    ) from exc

__all__ = ["gumbel_softmax"]

_DTYPES = (_torch.float32, _torch.float64, _torch.float16)


def _as_array(t, name):
    """A NumPy view of a CPU tensor (no copy), after the device and dtype checks."""
    if t.device.type != "cpu":
        raise ValueError(
            f"{name} must be a CPU tensor, got a tensor on device '{t.device}': "
            f"move it with {name}.cpu(), or use torch.nn.functional.gumbel_softmax there"
        )
    if t.layout != _torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in _DTYPES:
        raise TypeError(
            f"{name} must be a float32, float64 or float16 tensor, got {t.dtype}"
        )
    return t.detach().resolve_neg().resolve_conj().numpy()


def _seed_from_torch(gen):
    """A 64-bit seed drawn from a torch.Generator (None: torch's default generator)."""
    words = _torch.randint(0, 2**32, (2,), dtype=_torch.int64, generator=gen)
    return (int(words[0]) << 32) | int(words[1])


def _as_rng(generator):
    if generator is None or isinstance(generator, _torch.Generator):
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(
                f"generator must be a CPU torch.Generator, got one on '{generator.device}'"
            )
        return _api.Philox(_seed_from_torch(generator))
    try:
        return _api._as_rng(generator)
    except TypeError:
        raise TypeError(
            "generator must be None, an int seed, a gumbel_softmax.Philox, a "
            f"numpy.random.Generator or a torch.Generator, got {type(generator).__name__}"
        ) from None


def _tau_arg(tau):
    """(value for the NumPy API, tensor tau or None)."""
    if isinstance(tau, _torch.Tensor):
        if tau.device.type != "cpu":
            raise ValueError(f"tau must be a CPU tensor or a float, got device '{tau.device}'")
        if tau.dtype.is_complex or tau.dtype == _torch.bool:
            raise TypeError(f"tau must be a real scalar or tensor, got {tau.dtype}")
        arr = tau.detach().numpy()
        if arr.ndim == 0:
            return _api._check_tau(arr.astype(np.float64)), tau
        return arr, tau
    if isinstance(tau, np.ndarray) and tau.ndim:
        return tau, None
    return _api._check_tau(tau), None


def _tau_grad(grad_logits, y_soft, tau_shape, tau_dtype, dim):
    """d loss / d tau for each tau element: -sum(grad_logits * log(y_soft)) over a row
    (s = logits + g = tau * log(y_soft) + const per row, and grad_logits sums to 0)."""
    with np.errstate(divide="ignore"):
        term = np.where(y_soft > 0, grad_logits * np.log(np.where(y_soft > 0, y_soft, 1)), 0)
    rows = _torch.from_numpy(-term.sum(axis=dim, keepdims=True, dtype=np.float64))
    if len(tau_shape) == 0:
        g = rows.sum()
    elif len(tau_shape) == y_soft.ndim and tau_shape[dim] == 1:
        g = rows.sum_to_size(tau_shape)
    else:
        g = rows.squeeze(dim).sum_to_size(tau_shape)
    return g.to(tau_dtype)


class _GumbelSoftmax(_torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, tau_t, tau, hard, dim, rng):
        x = _as_array(logits, "logits")
        need_soft = hard and ctx.needs_input_grad[0] or (
            tau_t is not None and ctx.needs_input_grad[1]
        )
        res = _api.gumbel_softmax(x, tau, hard=hard, axis=dim, rng=rng, return_soft=need_soft)
        y, y_soft = res if need_soft else (res, res)
        out = _torch.from_numpy(y)
        ctx.tau, ctx.dim = tau, dim
        if y_soft is y:
            ctx.save_for_backward(out)
        else:
            ctx.save_for_backward(_torch.from_numpy(y_soft))
        ctx.tau_t_info = None if tau_t is None else (tau_t.shape, tau_t.dtype)
        return out

    @staticmethod
    @_torch.autograd.function.once_differentiable
    def backward(ctx, grad_y):
        (y_soft_t,) = ctx.saved_tensors
        y_soft = y_soft_t.numpy()
        g = _as_array(grad_y, "grad_y")
        if g.dtype != y_soft.dtype:
            g = g.astype(y_soft.dtype)
        grad = _api.gumbel_softmax_backward(g, y_soft, ctx.tau, axis=ctx.dim)
        grad_tau = None
        if ctx.needs_input_grad[1]:
            grad_tau = _tau_grad(grad, y_soft, *ctx.tau_t_info, ctx.dim)
        grad_logits = _torch.from_numpy(grad) if ctx.needs_input_grad[0] else None
        return grad_logits, grad_tau, None, None, None, None


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1, generator=None):
    """Drop-in for ``torch.nn.functional.gumbel_softmax`` on CPU tensors.

    Parameters
    ----------
    logits : torch.Tensor
        ``[..., num_features]`` unnormalised log-probabilities: a CPU tensor of dtype
        float32, float64 or float16, any shape and strides.  ``-inf`` masks a category.
    tau : float or torch.Tensor
        Temperature, positive and finite; a tensor may hold one per row (it broadcasts
        to the batch shape) and receives a gradient when it requires one.
    hard : bool
        Return the exact one-hot at the argmax of ``logits + g``, with the gradient of
        the soft sample (straight-through).
    eps : float
        Deprecated and ignored, as in torch.
    dim : int
        The category dimension.
    generator : None, int, Philox, numpy.random.Generator or torch.Generator
        Source of the noise (see the module docstring); ``None`` draws a seed from
        torch's default generator.

    Returns
    -------
    torch.Tensor
        The sample, same shape and dtype as ``logits``; differentiable with respect to
        ``logits`` (and a tensor ``tau``).

    Examples
    --------
    >>> import torch, gumbel_softmax as gs
    >>> from gumbel_softmax.torch import gumbel_softmax
    >>> x = torch.zeros(2, 3, requires_grad=True)
    >>> y = gumbel_softmax(x, tau=0.5, hard=True, generator=0)
    >>> y.sum(dim=-1)
    tensor([1., 1.], grad_fn=<SumBackward1>)
    >>> torch.equal(y.detach(), torch.from_numpy(
    ...     gs.gumbel_softmax(x.detach().numpy(), 0.5, hard=True, rng=0)))
    True
    """
    if not isinstance(logits, _torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    _as_array(logits, "logits")  # device and dtype checks before anything is drawn
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    if isinstance(hard, _torch.Tensor):
        hard = bool(hard)
    if not isinstance(hard, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    if isinstance(dim, bool) or not isinstance(dim, (numbers.Integral, np.integer)):
        raise TypeError(f"dim must be an integer, got {type(dim).__name__}")
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d tensor")
    dim = _api._check_axis(int(dim), logits.dim())
    tau, tau_t = _tau_arg(tau)
    rng = _as_rng(generator)
    return _GumbelSoftmax.apply(logits, tau_t, tau, bool(hard), dim, rng)
