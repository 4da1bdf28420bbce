"""``gumbel_softmax.torch.relaxed_top_k``: its custom ops (see ``_torch_ops``) and autograd.

- ``relaxed_top_k(logits, state, tau_t, tau, k, hard, dim, fixed)``: the relaxed k-hot
  (``hard``: the exact k-hot of ``top_k``) by ``gs.relaxed_top_k``, pure given the state;
- ``relaxed_top_k_backward(grad, logits, state, tau_t, tau, k, dim, fixed)``: the gradient
  with respect to ``logits`` by ``gs.relaxed_top_k_backward``, which recomputes the ``k``
  softmaxes from the forward's state (nothing but ``logits`` and the two-word state is
  saved).  The same for ``hard`` (straight-through: the relaxed sample's gradient).

The state is always an op input, as for the other ops, so ``torch.compile`` keeps the
call in its graph; in plain eager mode the implementations run directly on the NumPy
API (the draw is a Philox, snapshotted before the forward for the backward).  The
backward is once differentiable: a second-order gradient through it raises.  ``tau``
gets no gradient (a tensor ``tau`` that requires one raises).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from . import _args, _subset
from . import _torch_common as _pt
from . import _torch_ops as T

T._LIB.define(
    "relaxed_top_k(Tensor logits, Tensor state, Tensor? tau_t, float tau, int k, bool hard, "
    "int dim, bool fixed) -> Tensor"
)
T._LIB.define(
    "relaxed_top_k_backward(Tensor grad, Tensor logits, Tensor state, Tensor? tau_t, "
    "float tau, int k, int dim, bool fixed) -> Tensor"
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
def forward_impl(logits, rng, tau_t, tau, k, hard, dim):
    x, bf16 = T.array_of(logits)
    dest = T.Bf16Dest(x.shape) if bf16 else None  # allocated before the draw
    y = _subset.relaxed_top_k(x, k, T.tau_value(tau_t, tau), hard=hard, axis=dim, rng=rng)
    return dest.fill(y) if bf16 else torch.from_numpy(y)


@_plain
def backward_impl(grad, logits, rng, tau_t, tau, k, dim):
    x, bf16 = T.array_of(logits)
    g = T.array_of(grad)[0]
    if g.dtype != x.dtype:
        g = g.astype(x.dtype)
    t = T.tau_value(tau_t, tau)
    gx = _subset.relaxed_top_k_backward(g, x, k, t, axis=dim, rng=rng)
    return T.Bf16Dest(gx.shape).fill(gx) if bf16 else torch.from_numpy(gx)


def _sample_op_impl(logits, state, tau_t, tau, k, hard, dim, fixed):
    try:
        return forward_impl(logits, T.philox_of(state), tau_t, tau, k, hard, dim)
    except BaseException:
        T._undo_seed(state)
        raise


def _backward_op_impl(grad, logits, state, tau_t, tau, k, dim, fixed):
    return backward_impl(grad, logits, T.philox_of(state), tau_t, tau, k, dim)


T._LIB.impl("relaxed_top_k", _sample_op_impl, "CPU")
T._LIB.impl("relaxed_top_k_backward", _backward_op_impl, "CPU")
sample_op = torch.ops.gumbel_softmax.relaxed_top_k.default
backward_op = torch.ops.gumbel_softmax.relaxed_top_k_backward.default


@torch.library.register_fake("gumbel_softmax::relaxed_top_k", lib=T._LIB)
def _(logits, state, tau_t, tau, k, hard, dim, fixed):
    return logits.new_empty(logits.shape)


@torch.library.register_fake("gumbel_softmax::relaxed_top_k_backward", lib=T._LIB)
def _(grad, logits, state, tau_t, tau, k, dim, fixed):
    return logits.new_empty(logits.shape)


# ---------------------------------------------------------------------------------------
# vmap: "different" folds the batch into the rows of one call, "same" (and an int seed)
# runs every element from the same state; the backward does what its forward did.


@torch.library.register_vmap("gumbel_softmax::relaxed_top_k", lib=T._LIB)
def _(info, in_dims, logits, state, tau_t, tau, k, hard, dim, fixed):
    if info.randomness == "error" and not fixed:
        raise RuntimeError(T.VMAP_ERROR)
    if in_dims[1] is not None:
        raise RuntimeError("gumbel_softmax: the generator state must not be batched under vmap")
    size, ndim = info.batch_size, logits.dim() - (in_dims[0] is not None)
    x = T._batched(logits, in_dims[0], size)
    if info.randomness == "different" and not fixed:
        t = None if tau_t is None else T._batched_tau(tau_t, in_dims[2], size, ndim, dim)
        return sample_op(x, state, t, tau, k, hard, dim + 1, fixed), 0
    t = None if tau_t is None else T._batched(tau_t, in_dims[2], size)
    outs = [
        sample_op(x[b], state, None if t is None else t[b], tau, k, hard, dim, fixed)
        for b in range(size)
    ]
    return torch.stack(outs), 0


@torch.library.register_vmap("gumbel_softmax::relaxed_top_k_backward", lib=T._LIB)
def _(info, in_dims, grad, logits, state, tau_t, tau, k, dim, fixed):
    if in_dims[2] is not None:
        raise RuntimeError("gumbel_softmax: the generator state must not be batched under vmap")
    size, ndim = info.batch_size, logits.dim() - (in_dims[1] is not None)
    g, x = T._batched(grad, in_dims[0], size), T._batched(logits, in_dims[1], size)
    if info.randomness == "different" and not fixed:
        t = None if tau_t is None else T._batched_tau(tau_t, in_dims[3], size, ndim, dim)
        return backward_op(g, x, state, t, tau, k, dim + 1, fixed), 0
    t = None if tau_t is None else T._batched(tau_t, in_dims[3], size)
    outs = [
        backward_op(g[b], x[b], state, None if t is None else t[b], tau, k, dim, fixed)
        for b in range(size)
    ]
    return torch.stack(outs), 0


# ---------------------------------------------------------------------------------------
# Autograd

_SECOND_ORDER = (
    "gumbel_softmax.torch.relaxed_top_k: the gradient of its gradient (create_graph=True "
    "followed by another backward, a Hessian) is not implemented"
)
_VECTORIZE = (
    "gumbel_softmax.torch.relaxed_top_k: torch.autograd.functional.jacobian(vectorize=True) "
    "is not supported; use vectorize=False or torch.func.jacrev"
)


class FirstOrderOnly(torch.autograd.Function):
    """``gx`` itself, joined to the inputs of the backward that computed it, whose own
    backward raises: a second-order gradient raises rather than come out as a silent
    zero (``torch.autograd.functional.hessian`` would otherwise return zeros)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(gx, logits, grad_y):
        return gx.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, _):
        raise RuntimeError(_SECOND_ORDER)


def _grad(grad_y, logits, state, tau_t, tau, k, dim, fixed, op):
    """The gradient with respect to logits (through the backward op: op, or tensors of
    torch.func transforms)."""
    if T._is_legacy_batched(grad_y):
        raise RuntimeError(_VECTORIZE)
    args = (grad_y.detach(), logits.detach(), state)
    rest = (None if tau_t is None else tau_t.detach(), tau, k, dim)
    if op or T.use_ops(grad_y, logits):
        with torch.no_grad():
            gx = backward_op(*args, *rest, fixed)
    else:
        gx = backward_impl(args[0], args[1], T.philox_of(state), *rest)
    if torch.is_grad_enabled() and (grad_y.requires_grad or logits.requires_grad):
        gx = FirstOrderOnly.apply(gx, logits, grad_y)  # a graph is recorded
    return gx


class RelaxedTopKFn(torch.autograd.Function):
    """The sample, differentiable in logits, for eager mode and torch.func.  ``state`` is
    the forward's state tensor ``[seed, counter]`` before the draw; ``rng`` None (the
    op, on ``state``) or the Philox that the direct call advances."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, tau_t, state, rng, tau, k, hard, dim, fixed):
        if rng is None:
            return sample_op(logits, state, tau_t, tau, k, hard, dim, fixed)
        return forward_impl(logits, rng, tau_t, tau, k, hard, dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, tau_t, state, _, tau, k, _, dim, fixed = inputs
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(logits, tau_t, state)
        ctx.tau, ctx.k, ctx.dim, ctx.fixed = tau, k, dim, fixed

    @staticmethod
    def backward(ctx, grad_y):
        if grad_y is None or not ctx.needs_input_grad[0]:
            return (None,) * 9
        logits, tau_t, state = ctx.saved_tensors
        gx = _grad(grad_y, logits, state, tau_t, ctx.tau, ctx.k, ctx.dim, ctx.fixed, False)
        return (gx,) + (None,) * 8


_apply_plain = super(torch.autograd.Function, RelaxedTopKFn).apply  # see _torch_ops.apply


def apply(*args):
    if torch._C._are_functorch_transforms_active():
        return RelaxedTopKFn.apply(*args)
    return _apply_plain(*args)


def _op_setup(ctx, inputs, output):
    logits, state, tau_t, tau, k, _, dim, fixed = inputs
    ctx.save_for_backward(logits, tau_t, state)
    ctx.tau, ctx.k, ctx.dim, ctx.fixed = tau, k, dim, fixed


def _op_backward(ctx, grad_y):
    logits, tau_t, state = ctx.saved_tensors
    gx = None
    if ctx.needs_input_grad[0]:
        gx = _grad(grad_y, logits, state, tau_t, ctx.tau, ctx.k, ctx.dim, ctx.fixed, True)
    return (gx,) + (None,) * 7


torch.library.register_autograd(
    "gumbel_softmax::relaxed_top_k", _op_backward, setup_context=_op_setup, lib=T._LIB
)


# ---------------------------------------------------------------------------------------
# The public function's body (gumbel_softmax.torch.relaxed_top_k holds its docstring)


def _k_arg(k, n, dim):
    if isinstance(k, _args.NON_NUMBERS) or not isinstance(k, (numbers.Integral, np.integer)):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the length of dim {dim}), got {k}")
    return int(k)


def relaxed_top_k(logits, k, tau, hard, dim, generator):
    compiling = torch.compiler.is_compiling()
    shape, dim, tau, tau_t, _ = _pt._prepare(logits, tau, dim, None, compiling)
    k = _k_arg(k, shape[dim], dim)
    hard = _pt._hard_arg(hard)
    _pt._refuse_tau_grad(tau_t, "relaxed_top_k")

    def through_op(state, fixed):
        if compiling:  # the op, with its registered autograd
            return sample_op(logits, state, tau_t, tau, k, hard, dim, fixed)
        return apply(logits, tau_t, state, None, tau, k, hard, dim, fixed)

    def direct(rng):
        state = T.state_tensor(rng.seed, rng.counter)  # before the draw: the backward's
        return apply(logits, tau_t, state, rng, tau, k, hard, dim, False)

    rows = logits.numel() // shape[dim]
    return _pt._run(generator, rows, tau_t, compiling, through_op, direct)
