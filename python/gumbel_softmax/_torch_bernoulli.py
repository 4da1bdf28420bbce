"""The relaxed Bernoulli ops of ``gumbel_softmax.torch`` (see ``_torch_ops``).

- ``bernoulli(logits, state, tau_t, tau, hard, need_soft, fixed)``: ``(y, y_soft)``
  (``y_soft`` empty unless ``need_soft``), elementwise, rows all dimensions but the last;
- ``bernoulli_backward(grad, y_soft, tau_t, tau, need_tau)``: ``(grad_logits,
  grad_tau)`` (``grad_tau`` empty unless ``need_tau``): ``grad * y (1 - y) / tau``, and
  for tau ``-sum(grad_logits * logit(y))`` over what tau broadcasts across.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _api
from . import _torch_ops as T

T._LIB.define(
    "bernoulli(Tensor logits, Tensor state, Tensor? tau_t, float tau, bool hard, "
    "bool need_soft, bool fixed) -> (Tensor, Tensor)"
)
T._LIB.define(
    "bernoulli_backward(Tensor grad, Tensor y_soft, Tensor? tau_t, float tau, bool need_tau) "
    "-> (Tensor, Tensor)"
)


def _plain(fn):
    """fn on plain tensors, under torch.func too."""

    def run(*args):
        if not torch._C._are_functorch_transforms_active():
            return fn(*args)
        with torch._C._DisableFuncTorch():
            return fn(*args)

    return run


@_plain
def forward_impl(logits, rng, tau_t, tau, hard, need_soft):
    x, bf16 = T.array_of(logits)
    t = T.tau_value(tau_t, tau)
    dests = (T.Bf16Dest(x.shape), T.Bf16Dest(x.shape) if need_soft else None) if bf16 else None
    res = _api.relaxed_bernoulli(x, t, hard=hard, rng=rng, return_soft=need_soft)
    y, soft = res if need_soft else (res, None)
    if bf16:
        y, soft = dests[0].fill(y), None if soft is None else dests[1].fill(soft)
    else:
        y, soft = torch.from_numpy(y), None if soft is None else torch.from_numpy(soft)
    return y, (logits.new_empty(0) if soft is None else soft)


@_plain
def backward_impl(grad, y_soft, tau_t, tau, need_tau):
    ys, bf16 = T.array_of(y_soft)
    g = T.array_of(grad)[0]
    if g.dtype != ys.dtype:
        g = g.astype(ys.dtype)
    t = T.tau_value(tau_t, tau)
    gx = _api.relaxed_bernoulli_backward(g, ys, t)
    if bf16:
        dest = T.Bf16Dest(gx.shape)
        grad_x = dest.fill(gx)
        gx = T._core.half_to_float(dest.bits, True)
    else:
        grad_x = torch.from_numpy(gx)
    if not need_tau:
        return grad_x, y_soft.new_empty(0)
    y = ys.astype(np.float64)
    with np.errstate(divide="ignore"):
        logit = np.log(y) - np.log1p(-y)
    term = gx.astype(np.float64) * np.where(np.isfinite(logit), logit, 0)  # saturated: 0
    # np.asarray: for 0-d logits the product is a NumPy scalar, which from_numpy refuses
    return grad_x, torch.from_numpy(np.asarray(-term)).sum_to_size(tau_t.shape).to(tau_t.dtype)


def _sample_op_impl(logits, state, tau_t, tau, hard, need_soft, fixed):
    try:
        return forward_impl(logits, T.philox_of(state), tau_t, tau, hard, need_soft)
    except BaseException:
        T._undo_seed(state)
        raise


T._LIB.impl("bernoulli", _sample_op_impl, "CPU")
T._LIB.impl("bernoulli_backward", lambda *args: backward_impl(*args), "CPU")
sample_op = torch.ops.gumbel_softmax.bernoulli.default
backward_op = torch.ops.gumbel_softmax.bernoulli_backward.default


@torch.library.register_fake("gumbel_softmax::bernoulli", lib=T._LIB)
def _(logits, state, tau_t, tau, hard, need_soft, fixed):
    return logits.new_empty(logits.shape), logits.new_empty(logits.shape if need_soft else 0)


@torch.library.register_fake("gumbel_softmax::bernoulli_backward", lib=T._LIB)
def _(grad, y_soft, tau_t, tau, need_tau):
    gt = tau_t.new_empty(tau_t.shape) if need_tau else y_soft.new_empty(0)
    return y_soft.new_empty(y_soft.shape), gt


def _batched_tau(tau_t, bdim, size, ndim):
    """tau for the folded (batch-first) call: (size, 1.., *tau.shape), broadcasting to
    (size, *shape) as tau broadcasts to shape (ndim: the logical ndim of logits)."""
    t = T._batched(tau_t, bdim, size)
    shape = tuple(t.shape[1:])
    return t.reshape((size,) + (1,) * (ndim - len(shape)) + shape)


@torch.library.register_vmap("gumbel_softmax::bernoulli", lib=T._LIB)
def _(info, in_dims, logits, state, tau_t, tau, hard, need_soft, fixed):
    if info.randomness == "error" and not fixed:
        raise RuntimeError(T.VMAP_ERROR)
    if in_dims[1] is not None:
        raise RuntimeError("gumbel_softmax: the generator state must not be batched under vmap")
    size, ndim = info.batch_size, logits.dim() - (in_dims[0] is not None)
    x = T._batched(logits, in_dims[0], size)
    soft_dim = 0 if need_soft else None
    if info.randomness == "different" and not fixed:
        t = None if tau_t is None else _batched_tau(tau_t, in_dims[2], size, ndim)
        return sample_op(x, state, t, tau, hard, need_soft, fixed), (0, soft_dim)
    t = None if tau_t is None else T._batched(tau_t, in_dims[2], size)
    outs = [
        sample_op(x[b], state, t if t is None else t[b], tau, hard, need_soft, fixed)
        for b in range(size)
    ]
    soft = torch.stack([o[1] for o in outs]) if need_soft else outs[0][1]
    return (torch.stack([o[0] for o in outs]), soft), (0, soft_dim)


@torch.library.register_vmap("gumbel_softmax::bernoulli_backward", lib=T._LIB)
def _(info, in_dims, grad, y_soft, tau_t, tau, need_tau):
    size = info.batch_size
    ndim = y_soft.dim() - (in_dims[1] is not None)
    g, s = T._batched(grad, in_dims[0], size), T._batched(y_soft, in_dims[1], size)
    t = None if tau_t is None else _batched_tau(tau_t, in_dims[2], size, ndim)
    gx, gt = backward_op(g, s, t, tau, need_tau)
    if not need_tau:
        return (gx, gt), (0, None)
    return (gx, gt.reshape((size,) + tuple(tau_t.shape[in_dims[2] is not None :]))), (0, 0)


def _grads(ctx, grad_y, grad_soft, need_x, need_tau, op):
    y_soft, tau_t = ctx.saved_tensors
    g = grad_y if grad_soft is None else grad_soft if grad_y is None else grad_y + grad_soft
    if g is None or not (need_x or need_tau):
        return None, None
    if T._is_legacy_batched(g):
        gx, gt = graph_backward(g, y_soft, ctx.tau, tau_t, need_tau)
        return gx if need_x else None, gt
    detached = (g.detach(), y_soft.detach(), None if tau_t is None else tau_t.detach())
    if op or T.use_ops(g, y_soft, tau_t):
        with torch.no_grad():
            gx, gt = backward_op(*detached, ctx.tau, need_tau)
    else:
        gx, gt = backward_impl(*detached, ctx.tau, need_tau)
    gx, gt = gx if need_x else None, gt if need_tau else None
    if torch.is_grad_enabled() and (
        g.requires_grad or y_soft.requires_grad or (tau_t is not None and tau_t.requires_grad)
    ):  # create_graph: the same expression in torch ops, for higher orders
        rx, rt = graph_backward(g, y_soft, ctx.tau, tau_t, gt is not None)
        gx = None if gx is None else gx + (rx - rx.detach())
        gt = None if gt is None else gt + (rt - rt.detach())
    return gx, gt


def graph_backward(g, y_soft, tau, tau_t, need_tau):
    """The backward in differentiable torch ops (higher orders, the legacy vmap)."""
    t = tau if tau_t is None else tau_t.to(y_soft.dtype)
    gx = g * y_soft * (1 - y_soft) / t
    if not need_tau:
        return gx, None
    logit = y_soft.log() - (-y_soft).log1p()
    term = gx * torch.where(logit.isfinite(), logit, 0)
    return gx, (-term).sum_to_size(tau_t.shape).to(tau_t.dtype)


def _save(ctx, output, tau_t, tau, need_soft):
    ctx.set_materialize_grads(False)
    ctx.tau = tau
    ctx.save_for_backward(output[1] if need_soft else output[0], tau_t)


class BernoulliFn(torch.autograd.Function):
    """(y, y_soft) of the relaxed Bernoulli sample, as GumbelSoftmaxFn."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, tau_t, rng, tau, hard, need_soft, fixed):
        if isinstance(rng, torch.Tensor):
            return sample_op(logits, rng, tau_t, tau, hard, need_soft, fixed)
        return forward_impl(logits, rng, tau_t, tau, hard, need_soft)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, tau_t, _, tau, _, need_soft, _ = inputs
        _save(ctx, output, tau_t, tau, need_soft)

    @staticmethod
    def backward(ctx, grad_y, grad_soft):
        need = ctx.needs_input_grad
        return _grads(ctx, grad_y, grad_soft, need[0], need[1], False) + (None,) * 5


_apply_plain = super(torch.autograd.Function, BernoulliFn).apply  # see _torch_ops.apply


def apply(*args):
    if torch._C._are_functorch_transforms_active():
        return BernoulliFn.apply(*args)
    return _apply_plain(*args)


def _op_setup(ctx, inputs, output):
    _, _, tau_t, tau, _, need_soft, _ = inputs
    _save(ctx, output, tau_t, tau, need_soft)


def _op_backward(ctx, grad_y, grad_soft):
    need = ctx.needs_input_grad
    gx, gt = _grads(ctx, grad_y, grad_soft, need[0], need[2], True)
    return (gx, None, gt) + (None,) * 4


T.register_autograd(T._LIB, "bernoulli", _sample_op_impl, _op_backward, _op_setup)
