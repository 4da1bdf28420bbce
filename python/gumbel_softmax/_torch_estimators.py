"""``gumbel_softmax.torch``'s gradient estimators of the hard sample, ``reinmax`` and
``gumbel_rao``: their custom ops (see ``_torch_ops``) and autograd.

- ``reinmax(logits, state, tau, dim, fixed)``: ``(y_hard, p0)``, the hard sample of
  ``gumbel_softmax(logits, tau, hard=True)`` from the state and ``p0 =
  torch.softmax(logits, dim)`` (computed inside the op, so that a compiled graph has
  eager torch's bits);
- ``reinmax_backward(grad_y, grad_p, logits, y_hard, tau, dim)``: ``gs.reinmax_backward``;
- ``gumbel_rao(logits, state, tau, samples, dim, fixed)``: the hard sample.  Its state
  has four words, ``[seed, counter, seed', counter']``: the forward's Philox and that of
  the conditional draws of the backward, both fixed when the forward runs (an int seed:
  the rows after the forward's, ``Philox(seed, counter=rows)``; a ``Philox``: its next
  ``samples * rows`` rows, reserved at the forward; any other generator: a second seed
  drawn from it, after the forward's);
- ``gumbel_rao_backward(grad_y, logits, y_hard, state, tau, samples, dim, fixed)``:
  ``gs.gumbel_rao_backward`` on ``Philox(seed', counter')`` (a second backward of the
  same graph draws the same rows);
- ``gumbel_rao_seed(order)``: the four words for ``generator=None``, two seeds drawn from
  torch's default generator in one op (as ``seed``: nondeterministic_seeded, ordered by
  ``order``), so that an op failing on them puts both back.

The states are op inputs, so ``torch.compile`` keeps the calls in its graph (no graph
break for ``generator=None`` and an int seed); plain eager calls run the same
implementations directly.  The backwards are once differentiable: a second-order
gradient raises.  ``tau`` is a float (no gradient).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from . import _args, _estimators
from . import _torch_common as _pt
from . import _torch_ops as T

T._LIB.define(
    "reinmax(Tensor logits, Tensor state, float tau, int dim, bool fixed) -> (Tensor, Tensor)"
)
T._LIB.define(
    "reinmax_backward(Tensor grad_y, Tensor? grad_p, Tensor logits, Tensor y_hard, float tau, "
    "int dim) -> Tensor"
)
T._LIB.define(
    "gumbel_rao(Tensor logits, Tensor state, float tau, int samples, int dim, bool fixed) -> Tensor"
)
T._LIB.define(
    "gumbel_rao_backward(Tensor grad_y, Tensor logits, Tensor y_hard, Tensor state, float tau, "
    "int samples, int dim, bool fixed) -> Tensor"
)
T._LIB.define(
    "gumbel_rao_seed(Tensor(a!) order) -> Tensor", tags=(torch.Tag.nondeterministic_seeded,)
)


def _plain(fn):
    """fn on plain tensors, under torch.func too."""

    def run(*args):
        if not torch._C._are_functorch_transforms_active():
            return fn(*args)
        with torch._C._DisableFuncTorch():
            return fn(*args)

    return run


def _words(*values):
    """Values in [0, 2**64) as int64 words (two's complement)."""
    return torch.tensor([v - (1 << 64) if v >= 1 << 63 else v for v in values], dtype=torch.int64)


def _arrays(grad_y, logits, y_hard):
    """(grad_y, logits, y_hard) as arrays of logits' dtype (bfloat16: float32 values),
    and whether logits are bfloat16."""
    x, bf16 = T.array_of(logits)
    g, h = T.array_of(grad_y)[0], T.array_of(y_hard)[0]
    return g.astype(x.dtype, copy=False), x, h.astype(x.dtype, copy=False), bf16


def _result(gx, bf16, dest):
    return dest.fill(gx) if bf16 else torch.from_numpy(gx)


@_plain
def reinmax_impl(logits, rng, tau, dim):
    # p0 before the draw: a failure allocating it draws nothing
    p0 = torch.softmax(logits.detach(), dim)
    return T.forward_impl(logits, rng, None, tau, True, False, dim, False, None)[0], p0


@_plain
def reinmax_backward_impl(grad_y, grad_p, logits, y_hard, tau, dim):
    g, x, h, bf16 = _arrays(grad_y, logits, y_hard)
    p = None if grad_p is None else T.array_of(grad_p)[0].astype(x.dtype, copy=False)
    dest = T.Bf16Dest(x.shape) if bf16 else None
    return _result(_estimators.reinmax_backward(g, x, h, tau, axis=dim, grad_p=p), bf16, dest)


@_plain
def gumbel_rao_impl(logits, rng, tau, dim):
    return T.forward_impl(logits, rng, None, tau, True, False, dim, False, None)[0]


@_plain
def gumbel_rao_backward_impl(grad_y, logits, y_hard, rng, tau, samples, dim):
    g, x, h, bf16 = _arrays(grad_y, logits, y_hard)
    dest = T.Bf16Dest(x.shape) if bf16 else None
    gx = _estimators.gumbel_rao_backward(g, x, h, tau, samples=samples, axis=dim, rng=rng)
    return _result(gx, bf16, dest)


def _fwd_rng(state):
    return T.philox_of(state[:2])


def _bwd_rng(state):
    return T.philox_of(state[2:])


def _reinmax_op_impl(logits, state, tau, dim, fixed):
    try:
        return reinmax_impl(logits, _fwd_rng(state), tau, dim)
    except BaseException:
        T._undo_seed(state)
        raise


def _gumbel_rao_op_impl(logits, state, tau, samples, dim, fixed):
    try:
        return gumbel_rao_impl(logits, _fwd_rng(state), tau, dim)
    except BaseException:
        T._undo_seed(state)
        raise


def _gumbel_rao_backward_op_impl(grad_y, logits, y_hard, state, tau, samples, dim, fixed):
    return gumbel_rao_backward_impl(grad_y, logits, y_hard, _bwd_rng(state), tau, samples, dim)


def _seed_pair_impl(order):
    order.add_(1)
    state, undo = _draw_pair(None, 0, 0)
    T.remember_draw(state, undo)  # the op that fails on this state puts both back
    return _words(*state)


T._LIB.impl("reinmax", _reinmax_op_impl, "CPU")
T._LIB.impl("reinmax_backward", lambda *args: reinmax_backward_impl(*args), "CPU")
T._LIB.impl("gumbel_rao", _gumbel_rao_op_impl, "CPU")
T._LIB.impl("gumbel_rao_backward", _gumbel_rao_backward_op_impl, "CPU")
T._LIB.impl("gumbel_rao_seed", _seed_pair_impl, "CPU")
reinmax_op = torch.ops.gumbel_softmax.reinmax.default
reinmax_backward_op = torch.ops.gumbel_softmax.reinmax_backward.default
gumbel_rao_op = torch.ops.gumbel_softmax.gumbel_rao.default
gumbel_rao_backward_op = torch.ops.gumbel_softmax.gumbel_rao_backward.default
seed_pair_op = torch.ops.gumbel_softmax.gumbel_rao_seed.default


@torch.library.register_fake("gumbel_softmax::reinmax", lib=T._LIB)
def _(logits, state, tau, dim, fixed):
    return logits.new_empty(logits.shape), logits.new_empty(logits.shape)


@torch.library.register_fake("gumbel_softmax::reinmax_backward", lib=T._LIB)
def _(grad_y, grad_p, logits, y_hard, tau, dim):
    return logits.new_empty(logits.shape)


@torch.library.register_fake("gumbel_softmax::gumbel_rao", lib=T._LIB)
def _(logits, state, tau, samples, dim, fixed):
    return logits.new_empty(logits.shape)


@torch.library.register_fake("gumbel_softmax::gumbel_rao_backward", lib=T._LIB)
def _(grad_y, logits, y_hard, state, tau, samples, dim, fixed):
    return logits.new_empty(logits.shape)


@torch.library.register_fake("gumbel_softmax::gumbel_rao_seed", lib=T._LIB)
def _(order):
    return torch.empty(4, dtype=torch.int64)


# ---------------------------------------------------------------------------------------
# vmap: "different" folds the batch into the rows of one call (the eager call on the
# stacked batch), "same" (and an int seed) runs every element from the same state.
# reinmax_backward draws nothing: always folded.  gumbel_rao_backward folds when its
# forward did (y_hard batched under "different"), else every element draws the rows
# of the unbatched call (vmap over a vjp: the Jacobian's rows share the noise).


def _check_state(in_dim):
    if in_dim is not None:
        raise RuntimeError("gumbel_softmax: the generator state must not be batched under vmap")


def _sampled(info, in_dims, op, logits, state, rest, fixed):
    """The vmap rule of the two sample ops: rest are the arguments after the state, the
    last of them dim."""
    if info.randomness == "error" and not fixed:
        raise RuntimeError(T.VMAP_ERROR)
    _check_state(in_dims[1])
    x = T._batched(logits, in_dims[0], info.batch_size)
    if info.randomness == "different" and not fixed:
        return op(x, state, *rest[:-1], rest[-1] + 1, fixed)
    return _stack([op(x[b], state, *rest, fixed) for b in range(info.batch_size)])


def _stack(outs):
    if isinstance(outs[0], torch.Tensor):
        return torch.stack(outs)
    return tuple(torch.stack(o) for o in zip(*outs))


@torch.library.register_vmap("gumbel_softmax::reinmax", lib=T._LIB)
def _(info, in_dims, logits, state, tau, dim, fixed):
    return _sampled(info, in_dims, reinmax_op, logits, state, (tau, dim), fixed), (0, 0)


@torch.library.register_vmap("gumbel_softmax::gumbel_rao", lib=T._LIB)
def _(info, in_dims, logits, state, tau, samples, dim, fixed):
    return _sampled(info, in_dims, gumbel_rao_op, logits, state, (tau, samples, dim), fixed), 0


@torch.library.register_vmap("gumbel_softmax::reinmax_backward", lib=T._LIB)
def _(info, in_dims, grad_y, grad_p, logits, y_hard, tau, dim):
    size = info.batch_size
    dims = (in_dims[0], in_dims[2], in_dims[3])
    g, x, h = (T._batched(t, d, size) for t, d in zip((grad_y, logits, y_hard), dims))
    p = None if grad_p is None else T._batched(grad_p, in_dims[1], size)
    return reinmax_backward_op(g, p, x, h, tau, dim + 1), 0


@torch.library.register_vmap("gumbel_softmax::gumbel_rao_backward", lib=T._LIB)
def _(info, in_dims, grad_y, logits, y_hard, state, tau, samples, dim, fixed):
    _check_state(in_dims[3])
    size = info.batch_size
    g, x, h = (T._batched(t, d, size) for t, d in zip((grad_y, logits, y_hard), in_dims[:3]))
    if info.randomness == "different" and not fixed and in_dims[2] is not None:
        return gumbel_rao_backward_op(g, x, h, state, tau, samples, dim + 1, fixed), 0
    outs = [
        gumbel_rao_backward_op(g[b], x[b], h[b], state, tau, samples, dim, fixed)
        for b in range(size)
    ]
    return torch.stack(outs), 0


# ---------------------------------------------------------------------------------------
# Autograd

_SECOND_ORDER = (
    "gumbel_softmax.torch.{name}: the gradient of its gradient (create_graph=True "
    "followed by another backward, a Hessian) is not implemented"
)
_VECTORIZE = (
    "gumbel_softmax.torch.{name}: torch.autograd.functional.jacobian(vectorize=True) "
    "is not supported; use vectorize=False or torch.func.jacrev"
)


class FirstOrderOnly(torch.autograd.Function):
    """``gx`` itself, joined to the inputs of the backward that computed it, whose own
    backward raises: a second-order gradient raises rather than come out as a silent
    zero."""

    generate_vmap_rule = True

    @staticmethod
    def forward(gx, logits, grad_y, grad_p, name):
        return gx.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.name = inputs[4]

    @staticmethod
    def backward(ctx, _):
        raise RuntimeError(_SECOND_ORDER.format(name=ctx.name))


def _first_order(gx, logits, grad_y, grad_p, name):
    inputs = (logits, grad_y, grad_p)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return FirstOrderOnly.apply(gx, logits, grad_y, grad_p, name)  # a graph is recorded
    return gx


def _reinmax_grad(ctx, g_y, g_p, op):
    """The gradient with respect to logits (through the backward op: op, or tensors of
    torch.func transforms)."""
    logits, y_hard = ctx.saved_tensors
    if g_y is None and g_p is None:
        return None
    if g_y is None:
        g_y = torch.zeros_like(logits)
    if T._is_legacy_batched(g_y) or (g_p is not None and T._is_legacy_batched(g_p)):
        raise RuntimeError(_VECTORIZE.format(name="reinmax"))
    args = (g_y.detach(), None if g_p is None else g_p.detach(), logits.detach(), y_hard.detach())
    if op or T.use_ops(g_y, g_p, logits, y_hard):
        with torch.no_grad():
            gx = reinmax_backward_op(*args, ctx.tau, ctx.dim)
    else:
        gx = reinmax_backward_impl(*args, ctx.tau, ctx.dim)
    return _first_order(gx, logits, g_y, g_p, "reinmax")


def _gumbel_rao_grad(ctx, g_y, op):
    logits, y_hard, state = ctx.saved_tensors
    if g_y is None:
        return None
    if T._is_legacy_batched(g_y):
        raise RuntimeError(_VECTORIZE.format(name="gumbel_rao"))
    g, x, h = g_y.detach(), logits.detach(), y_hard.detach()
    if op or T.use_ops(g_y, logits, y_hard):
        with torch.no_grad():
            gx = gumbel_rao_backward_op(g, x, h, state, ctx.tau, ctx.samples, ctx.dim, ctx.fixed)
    else:
        gx = gumbel_rao_backward_impl(g, x, h, _bwd_rng(state), ctx.tau, ctx.samples, ctx.dim)
    return _first_order(gx, logits, g_y, None, "gumbel_rao")


class ReinMaxFn(torch.autograd.Function):
    """(y_hard, p0), differentiable in logits, for eager mode and torch.func.  ``rng``
    None: the op, on ``state``; else the Philox (or Generator) the direct call draws
    from."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, state, rng, tau, dim, fixed):
        if rng is None:
            return reinmax_op(logits, state, tau, dim, fixed)
        return reinmax_impl(logits, rng, tau, dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, _, tau, dim, _ = inputs
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(logits, output[0])
        ctx.tau, ctx.dim = tau, dim

    @staticmethod
    def backward(ctx, g_y, g_p):
        if not ctx.needs_input_grad[0]:
            return (None,) * 6
        return (_reinmax_grad(ctx, g_y, g_p, False),) + (None,) * 5


class GumbelRaoFn(torch.autograd.Function):
    """y_hard, differentiable in logits, for eager mode and torch.func; ``op``: through
    the op (torch.func), else the implementation, on the four-word ``state``."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, state, tau, samples, dim, fixed, op):
        if op:
            return gumbel_rao_op(logits, state, tau, samples, dim, fixed)
        return gumbel_rao_impl(logits, _fwd_rng(state), tau, dim)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, state, tau, samples, dim, fixed, _ = inputs
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(logits, output, state)
        ctx.tau, ctx.samples, ctx.dim, ctx.fixed = tau, samples, dim, fixed

    @staticmethod
    def backward(ctx, g_y):
        if not ctx.needs_input_grad[0]:
            return (None,) * 7
        return (_gumbel_rao_grad(ctx, g_y, False),) + (None,) * 6


# Function.apply binds its arguments with inspect.signature when the Function has a
# setup_context (see _torch_ops.apply): with no torch.func transform, the C++ apply
_reinmax_plain = super(torch.autograd.Function, ReinMaxFn).apply
_gumbel_rao_plain = super(torch.autograd.Function, GumbelRaoFn).apply


def _apply(fn, plain, *args):
    if torch._C._are_functorch_transforms_active():
        return fn.apply(*args)
    return plain(*args)


def _reinmax_setup(ctx, inputs, output):
    logits, _, tau, dim, _ = inputs
    ctx.save_for_backward(logits, output[0])
    ctx.tau, ctx.dim = tau, dim


def _reinmax_backward(ctx, g_y, g_p):
    gx = _reinmax_grad(ctx, g_y, g_p, True) if ctx.needs_input_grad[0] else None
    return (gx,) + (None,) * 4


def _gumbel_rao_setup(ctx, inputs, output):
    logits, state, tau, samples, dim, fixed = inputs
    ctx.save_for_backward(logits, output, state)
    ctx.tau, ctx.samples, ctx.dim, ctx.fixed = tau, samples, dim, fixed


def _gumbel_rao_backward(ctx, g_y):
    gx = _gumbel_rao_grad(ctx, g_y, True) if ctx.needs_input_grad[0] else None
    return (gx,) + (None,) * 5


torch.library.register_autograd(
    "gumbel_softmax::reinmax", _reinmax_backward, setup_context=_reinmax_setup, lib=T._LIB
)
torch.library.register_autograd(
    "gumbel_softmax::gumbel_rao", _gumbel_rao_backward, setup_context=_gumbel_rao_setup, lib=T._LIB
)


# ---------------------------------------------------------------------------------------
# The draws of Gumbel-Rao: the forward's state and the conditional draws', together


def _draw_pair(generator, rows, samples):
    """((seed, counter, seed', counter'), undo or None): the forward's state and the
    conditional draws', drawn in that order once everything is checked; undo() puts
    back both draws (unless another draw from the generator came since)."""
    if _pt._is_seed(generator):
        if not 0 <= generator < 2**64:
            raise ValueError(f"generator: seed must be in [0, 2**64), got {generator}")
        return (int(generator), 0, int(generator), rows), None
    if isinstance(generator, _args.Philox):
        n = rows * (samples + 1)
        if n > 2**64 - generator.counter:
            raise ValueError(
                f"generator: the Philox has fewer than rows * (samples + 1) = {n} rows left"
            )
        start = generator.reserve(n)  # the forward's rows, then samples * rows

        def give_back():
            generator._unreserve(start, n)

        return (generator.seed, start, generator.seed, start + rows), give_back
    # torch's default generator (None), a torch.Generator or a numpy.random.Generator:
    # a seed each (a bad generator raises, naming it, before anything is drawn)
    first, undo_first = _pt._draw(generator)
    second, undo_second = _pt._draw(generator)

    def undo():
        undo_second()
        undo_first()

    return (first.seed, first.counter, second.seed, second.counter), undo


@torch._disable_dynamo
def _eager_pair(generator, rows, samples):
    """Under torch.compile, the four words of a stateful generator (a graph break: each
    call draws anew); an op that fails on them puts the draws back."""
    _pt._check_not_recomputing(generator)
    state, undo = _draw_pair(generator, rows, samples)
    T.remember_draw(state, undo)
    return _words(*state)


def _pair_state(generator, rows, samples, compiling):
    """The four-word state of a call through the ops (torch.compile, vmap)."""
    if generator is None:
        return seed_pair_op(T.ORDER)
    if _pt._is_seed(generator):
        return _words(*_draw_pair(generator, rows, samples)[0])
    if compiling:
        return _eager_pair(generator, rows, samples)
    raise RuntimeError(_pt._VMAP_GENERATOR.format(kind=type(generator).__name__))


# ---------------------------------------------------------------------------------------
# The public functions' bodies (gumbel_softmax.torch holds their docstrings)


def _scalar_tau(tau, at_least_one, fn):
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError("tau must be a float (a scalar) for the estimators")
        _pt._refuse_tau_grad(tau, fn)  # a tau that would be trained gets no gradient
        tau = float(tau)
    tau = _args.check_tau(tau)
    if at_least_one and tau < 1:
        raise ValueError(f"tau must be >= 1 for reinmax, got {tau!r}")
    return tau


def _samples_arg(samples, rows):
    if isinstance(samples, _args.NON_NUMBERS) or not isinstance(
        samples, (numbers.Integral, np.integer)
    ):
        raise TypeError(f"samples must be an integer, got {type(samples).__name__}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if rows * (int(samples) + 1) >= 2**64:
        raise ValueError(
            f"samples must keep (samples + 1) * rows ({rows}) below 2**64, got {samples}"
        )
    return int(samples)


def reinmax(logits, tau, dim, generator):
    compiling = torch.compiler.is_compiling()
    tau = _scalar_tau(tau, at_least_one=True, fn="reinmax")
    shape, dim, tau, _, _ = _pt._prepare(logits, tau, dim, None, compiling)

    def through_op(state, fixed):
        if compiling:  # the op, with its registered autograd
            return reinmax_op(logits, state, tau, dim, fixed)
        return _apply(ReinMaxFn, _reinmax_plain, logits, state, None, tau, dim, fixed)

    def direct(rng):
        return _apply(ReinMaxFn, _reinmax_plain, logits, None, rng, tau, dim, False)

    rows = logits.numel() // shape[dim]
    return tuple(_pt._run(generator, rows, None, compiling, through_op, direct))


def gumbel_rao(logits, tau, samples, dim, generator):
    compiling = torch.compiler.is_compiling()
    tau = _scalar_tau(tau, at_least_one=False, fn="gumbel_rao")
    shape, dim, tau, _, _ = _pt._prepare(logits, tau, dim, None, compiling)
    rows = logits.numel() // shape[dim]
    samples = _samples_arg(samples, rows)
    fixed = _pt._is_seed(generator)
    vmap = () if compiling else _pt._vmap_randomness()
    if _pt._ERROR in vmap and generator is None:  # an int seed is no random operation
        raise RuntimeError(T.VMAP_ERROR)
    if compiling:
        state = _pair_state(generator, rows, samples, compiling)
        return gumbel_rao_op(logits, state, tau, samples, dim, fixed)
    if vmap:
        state = _pair_state(generator, rows, samples, compiling)
        return _apply(GumbelRaoFn, _gumbel_rao_plain, logits, state, tau, samples, dim, fixed, True)
    if generator is not None and not fixed:
        _pt._check_not_recomputing(generator)
    words, undo = _draw_pair(generator, rows, samples)
    try:
        state = _words(*words)
        return _apply(
            GumbelRaoFn, _gumbel_rao_plain, logits, state, tau, samples, dim, fixed, False
        )
    except BaseException:
        if undo is not None:
            undo()
        raise
