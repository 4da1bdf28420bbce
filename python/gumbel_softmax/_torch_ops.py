"""The torch custom ops behind ``gumbel_softmax.torch`` (``torch.library``).

Four ops in the ``gumbel_softmax`` namespace (``torch.ops.gumbel_softmax``), each with a
fake (meta) implementation, so that ``torch.compile`` puts them into its graph as opaque
nodes; all but the seed op have vmap rules, the sample op its autograd:

- ``seed(order, tau)``: 64 random bits from torch's default generator, as the state
  ``[seed, 0]`` of a Philox stream (an int64 tensor of two words, each the two's
  complement of a value in ``[0, 2**64)``).  Tagged ``nondeterministic_seeded``, and its
  schema writes ``order`` (a module-level token: ``Tensor(a!)``), so that a compiled
  graph runs its draws, in program order, at every call (the kernel leaves the token's
  value as it is: only the declared write orders the draws, and an ``add_`` would cost
  a dispatch per draw).  ``tau`` (a tensor temperature or None) is checked
  first: in a compiled graph its values are only known when the op runs, and a failed
  call must draw nothing.
- ``sample(logits, state, tau_t, tau, hard, log, dim, need_soft, mask, fixed)``: the
  sample (``log``: log_gumbel_softmax's), pure given the state: ``(y, y_soft)``
  (``y_soft`` is empty unless ``need_soft``);
- ``backward(grad, y_soft, tau_t, tau, dim, need_tau, log)``: ``(grad_logits,
  grad_tau)`` (``grad_tau`` is empty unless ``need_tau``);
- ``indices(logits, state, mask, dim, k, fixed)``: ``categorical`` (``k < 0``) or
  ``top_k``, int64.

(``_torch_bernoulli`` adds the relaxed Bernoulli ops.)  ``fixed`` says that the state is
an int seed's: under vmap the same noise for every element, whatever the randomness.

Under ``torch.compile`` the public functions call the ops, whose registered autograd
calls the backward op.  A compiled graph calls each op once per run, so their kernels
are kept lean (see ``register_autograd``: the sample op's autograd kernel runs the CPU
kernel itself in a compiled graph instead of redispatching to it).  Elsewhere autograd is an ``autograd.Function`` with a separate
``setup_context`` (the style that ``torch.func`` needs; an op's registered autograd does
not support it), whose forward and backward call the ops under ``torch.func``, and the
same implementations directly in plain eager mode (an op's dispatch costs about 10 us,
a Function's ``apply`` with ``setup_context`` about 100 us: both are skipped there).
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from . import _api, _args, _core

_MASK64 = (1 << 64) - 1
_FLOATS = (np.float32, np.float64)
_NONE = (None,) * 10
_functorch = torch._C._functorch
_is_wrapped = _functorch.is_functorch_wrapped_tensor
_is_legacy_batched = _functorch.is_legacy_batchedtensor

# ---------------------------------------------------------------------------------------
# Tensors <-> arrays for the NumPy API


def array_of(t):
    """(a NumPy array of a plain CPU tensor, bf16): a view for float32/float64/float16
    (no copy), float32 values for bfloat16 (NumPy has no bfloat16; its bits are read as
    uint16 and widened as the NumPy API widens an ml_dtypes bfloat16 array)."""
    # (each call below is a dispatch: only the ones that do something)
    if t.requires_grad:
        t = t.detach()
    if t.is_neg() or t.is_conj():
        t = t.resolve_neg().resolve_conj()
    if t.dtype == torch.bfloat16:
        bits = np.ascontiguousarray(t.view(torch.int16).numpy()).view(np.uint16)
        return _core.half_to_float(bits, True).reshape(t.shape), True  # (0-d stays 0-d)
    return t.numpy(), False


class Bf16Dest:
    """The uint16 bits of a bfloat16 result, allocated before the kernel draws (so that
    a MemoryError draws nothing); fill() rounds a float32 result into them as the NumPy
    API rounds (``float_to_half``, nearest even) and returns the bfloat16 tensor."""

    __slots__ = ("bits",)

    def __init__(self, shape):
        self.bits = np.empty(shape, np.uint16)

    def fill(self, result):
        _core.float_to_half(np.ascontiguousarray(result, dtype=np.float32), True, self.bits)
        return torch.from_numpy(self.bits.view(np.int16)).view(torch.bfloat16)


def tau_value(tau_t, tau):
    """What the NumPy API gets as tau: the float, or a tensor tau's values in float64
    (which holds every value of the other real dtypes exactly)."""
    if tau_t is None:
        return tau
    values = tau_t.detach().resolve_neg().to(torch.float64).numpy()
    return values.item() if values.ndim == 0 else values


def philox_of(state):
    """The Philox of a state tensor ``[seed, counter]``."""
    seed, counter = state.tolist()
    return _args.Philox(seed & _MASK64, counter=counter & _MASK64)


def state_tensor(seed, counter=0):
    """``[seed, counter]`` as int64 words (two's complement of values in [0, 2**64))."""
    words = [v - (1 << 64) if v >= 1 << 63 else v for v in (seed, counter)]
    return torch.tensor(words, dtype=torch.int64)


def seed_from_torch(gen):
    """A 64-bit seed drawn from a torch.Generator (None: torch's default generator)."""
    hi, lo = torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=gen).tolist()
    return (hi << 32) | lo


def draw_torch(gen):
    """(seed, undo): a seed from a torch.Generator (None: the default one), and undo(),
    which puts back what the draw took unless another draw from it came since."""
    get, put = (
        (torch.get_rng_state, torch.set_rng_state)
        if gen is None
        else (gen.get_state, gen.set_state)
    )
    before = get()
    seed = seed_from_torch(gen)

    def undo():
        # the state our draw left, replayed on a scratch generator (a call that succeeds
        # pays for one snapshot only): another draw since then is not undone
        replay = torch.Generator()
        replay.set_state(before)
        seed_from_torch(replay)
        if torch.equal(get(), replay.get_state()):
            put(before)

    return seed, undo


# ---------------------------------------------------------------------------------------
# The computations, on plain CPU tensors


def forward_impl(logits, rng, tau_t, tau, hard, log, dim, need_soft, mask):
    """(y, y_soft or an empty tensor) by the NumPy API; rng: anything it accepts."""
    if not torch._C._are_functorch_transforms_active():
        return _forward(logits, rng, tau_t, tau, hard, log, dim, need_soft, mask)
    with torch._C._DisableFuncTorch():  # plain tensors in and out, under torch.func too
        return _forward(logits, rng, tau_t, tau, hard, log, dim, need_soft, mask)


def _forward(logits, rng, tau_t, tau, hard, log, dim, need_soft, mask):
    x, bf16 = array_of(logits)
    t = tau_value(tau_t, tau)
    m = None if mask is None else mask.detach().numpy()
    dests = (Bf16Dest(x.shape), Bf16Dest(x.shape) if need_soft else None) if bf16 else None
    if log:
        res = _api.log_gumbel_softmax(x, t, axis=dim, rng=rng, mask=m)
        y, soft = res, None
    else:
        res = _api.gumbel_softmax(x, t, hard=hard, axis=dim, rng=rng, return_soft=need_soft, mask=m)
        y, soft = res if need_soft else (res, None)
    if bf16:
        y = dests[0].fill(y)
        soft = None if soft is None else dests[1].fill(soft)
    else:
        y, soft = torch.from_numpy(y), None if soft is None else torch.from_numpy(soft)
    return y, (logits.new_empty(0) if soft is None else soft)


def backward_impl(grad, y_soft, tau_t, tau, dim, need_tau, log):
    """(grad_logits, grad_tau or an empty tensor) by the backward kernel; log: y_soft is
    log_gumbel_softmax's output (its backward is computed here in NumPy)."""
    if not torch._C._are_functorch_transforms_active():
        return _backward(grad, y_soft, tau_t, tau, dim, need_tau, log)
    with torch._C._DisableFuncTorch():
        return _backward(grad, y_soft, tau_t, tau, dim, need_tau, log)


def _log_backward(g, log_y, tau, dim):
    """(g - exp(log_y) * sum(g)) / tau, computed in float32 or float64 (the dtype of
    log_y, float32 for the half ones) and returned in it."""
    dtype = np.float64 if log_y.dtype == np.float64 else np.float32
    ly, g = log_y.astype(dtype, copy=False), g.astype(dtype, copy=False)
    if np.ndim(tau):
        tau = np.expand_dims(_args.batch_taus(tau, ly.shape, dim), dim)
    return ((g - np.exp(ly) * g.sum(axis=dim, keepdims=True)) / np.asarray(tau, dtype)).astype(
        log_y.dtype
    )


def _backward(grad, y_soft, tau_t, tau, dim, need_tau, log):
    ys, bf16 = array_of(y_soft)
    g = array_of(grad)[0]
    if g.dtype != ys.dtype:
        g = g.astype(ys.dtype)
    if log:
        gx = _log_backward(g, ys, tau_value(tau_t, tau), dim)
    elif tau_t is None and ys.dtype.type in _FLOATS and g.shape == ys.shape and 0 <= dim < g.ndim:
        # the common case (autograd's gradient of the forward's output, a float tau):
        # the kernel without the NumPy API's argument checks, known to pass here
        gx = _core.gumbel_softmax_backward(g, ys, _args.check_tau(tau), None, dim, None)
    else:
        gx = _api.gumbel_softmax_backward(g, ys, tau_value(tau_t, tau), axis=dim)
    if bf16:
        dest = Bf16Dest(gx.shape)
        grad_x = dest.fill(gx)
        gx = _core.half_to_float(dest.bits, True)  # the rounded values, as for float16
    else:
        grad_x = torch.from_numpy(gx)
    if not need_tau:
        return grad_x, y_soft.new_empty(0)
    return grad_x, tau_grad(gx, ys, tau_t.shape, tau_t.dtype, dim, log)


def tau_grad(grad_logits, y_soft, tau_shape, tau_dtype, dim, log=False):
    """d loss / d tau for each tau element: -sum(grad_logits * log(y_soft)) over a row
    (s = logits + g = tau * log(y_soft) + const per row, and grad_logits sums to 0), in
    float64; the same for log_gumbel_softmax, whose output is log(y_soft)."""
    g, y = grad_logits.astype(np.float64), y_soft.astype(np.float64)  # (float16: exact)
    if log:
        log_y = np.where(np.isfinite(y), y, 0)  # 0 where the sample is 0, as is g
    else:
        log_y = np.log(np.where(y > 0, y, 1))  # 0 where y_soft is 0, as is g
    term = g * log_y
    rows = torch.from_numpy(-term.sum(axis=dim, keepdims=True))
    return to_tau_shape(rows, tau_shape, dim).to(tau_dtype)


def to_tau_shape(rows, tau_shape, dim):
    """Per-row values (length 1 along dim) summed over what tau broadcasts across."""
    if len(tau_shape) == 0:
        return rows.sum()
    if len(tau_shape) == rows.dim() and tau_shape[dim] == 1:
        return rows.sum_to_size(tau_shape)
    return rows.squeeze(dim).sum_to_size(tau_shape)


def tau_rows(tau_t, shape, dim):
    """A tensor tau shaped to divide rows along dim (a broadcast view)."""
    if tau_t.dim() == 0 or (tau_t.dim() == len(shape) and tau_t.shape[dim] == 1):
        return tau_t
    return tau_t.expand(shape[:dim] + shape[dim + 1 :]).unsqueeze(dim)


def graph_backward(g, y_soft, tau, tau_t, dim, need_tau, log=False):
    """The backward in differentiable torch ops, for higher-order gradients and the
    legacy vmap: grad_logits = y_soft * (g - sum(g * y_soft)) / tau (y_soft is the saved
    output, so its own gradient flows back through the Function), and the tau gradient
    -sum(grad_logits * log(y_soft)) over each row; log: y_soft is log(y_soft), and
    grad_logits = (g - y_soft * sum(g)) / tau."""
    if tau_t is None:
        rows_tau = tau
    else:
        rows_tau = tau_rows(tau_t, tuple(y_soft.shape), dim).to(y_soft.dtype)
    if log:
        gx = (g - y_soft.exp() * g.sum(dim, keepdim=True)) / rows_tau
    else:
        gx = y_soft * (g - (g * y_soft).sum(dim, keepdim=True)) / rows_tau
    if not need_tau:
        return gx, None
    if log:
        log_y = torch.where(y_soft.isfinite(), y_soft, 0)
    else:
        log_y = torch.where(y_soft > 0, y_soft, 1).log()  # 0 where y_soft is 0, as is gx
    rows = -(gx * log_y).sum(dim, keepdim=True)
    return gx, to_tau_shape(rows, tau_t.shape, dim).to(tau_t.dtype)


# ---------------------------------------------------------------------------------------
# The ops

# The seed op's token: its schema writes it, which orders the draws of a graph.
ORDER = torch.zeros(1, dtype=torch.int64)
_pending = threading.local()  # the last seed op's (state words, undo), per thread


# The ops are defined with torch.library.Library and a CPU kernel (not custom_op, whose
# Python layers around the kernel cost about 40 us a call against 10 us: a compiled
# step would be slower than an eager one)
_LIB = torch.library.Library("gumbel_softmax", "DEF")
_LIB.define(
    "seed(Tensor(a!) order, Tensor? tau) -> Tensor", tags=(torch.Tag.nondeterministic_seeded,)
)
_LIB.define(
    "sample(Tensor logits, Tensor state, Tensor? tau_t, float tau, bool hard, bool log, "
    "int dim, bool need_soft, Tensor? mask, bool fixed) -> (Tensor, Tensor)"
)
_LIB.define(
    "backward(Tensor grad, Tensor y_soft, Tensor? tau_t, float tau, int dim, bool need_tau, "
    "bool log) -> (Tensor, Tensor)"
)


def seed_impl(order, tau):
    if tau is not None:
        v = tau_value(tau, None)
        _args.check_tau(v) if np.ndim(v) == 0 else _args.tau_values(v)
    seed, undo = draw_torch(None)
    remember_draw((seed, 0), undo)
    # state_tensor(seed) without torch.tensor's parsing of a list (a third of its cost;
    # this runs at every draw of a compiled graph, never traced)
    return torch.from_numpy(np.array([seed - (1 << 64) if seed >> 63 else seed, 0], np.int64))


def remember_draw(state, undo):
    """The last draw of this thread, (seed, counter) and its undo: the op that fails on
    that state puts the generator back (_undo_seed)."""
    _pending.last = (state, undo)


def _undo_seed(state):
    """After a failed op: put back the draw that made this state (remember_draw)."""
    last = getattr(_pending, "last", None)
    if last is not None and tuple(v & _MASK64 for v in state.tolist()) == last[0]:
        _pending.last = None
        last[1]()


def sample_impl(logits, state, tau_t, tau, hard, log, dim, need_soft, mask, fixed):
    try:
        return forward_impl(logits, philox_of(state), tau_t, tau, hard, log, dim, need_soft, mask)
    except BaseException:
        _undo_seed(state)
        raise


_LIB.define(
    "indices(Tensor logits, Tensor state, Tensor? mask, int dim, int k, bool fixed) -> Tensor"
)


def indices_impl(logits, rng, mask, dim, k):
    """categorical (k < 0) or top_k by the NumPy API, as an int64 tensor."""
    if not torch._C._are_functorch_transforms_active():
        return _indices(logits, rng, mask, dim, k)
    with torch._C._DisableFuncTorch():
        return _indices(logits, rng, mask, dim, k)


def _indices(logits, rng, mask, dim, k):
    x = array_of(logits)[0]
    m = None if mask is None else mask.detach().numpy()
    if k < 0:
        return torch.from_numpy(_api.categorical(x, axis=dim, rng=rng, mask=m))
    return torch.from_numpy(_api.top_k(x, k, axis=dim, rng=rng, mask=m))


def indices_op_impl(logits, state, mask, dim, k, fixed):
    try:
        return indices_impl(logits, philox_of(state), mask, dim, k)
    except BaseException:
        _undo_seed(state)
        raise


_LIB.impl("indices", indices_op_impl, "CPU")
_LIB.impl("seed", seed_impl, "CPU")
_LIB.impl("sample", sample_impl, "CPU")
_LIB.impl("backward", lambda *args: backward_impl(*args), "CPU")
seed_op = torch.ops.gumbel_softmax.seed.default
sample_op = torch.ops.gumbel_softmax.sample.default
backward_op = torch.ops.gumbel_softmax.backward.default
indices_op = torch.ops.gumbel_softmax.indices.default


@torch.library.register_fake("gumbel_softmax::indices", lib=_LIB)
def _(logits, state, mask, dim, k, fixed):
    shape = list(logits.shape)
    if k < 0:
        del shape[dim]
    else:
        shape[dim] = k
    return logits.new_empty(shape, dtype=torch.int64)


@torch.library.register_fake("gumbel_softmax::seed", lib=_LIB)
def _(order, tau):
    return torch.empty(2, dtype=torch.int64)


@torch.library.register_fake("gumbel_softmax::sample", lib=_LIB)
def _(logits, state, tau_t, tau, hard, log, dim, need_soft, mask, fixed):
    return logits.new_empty(logits.shape), logits.new_empty(logits.shape if need_soft else 0)


@torch.library.register_fake("gumbel_softmax::backward", lib=_LIB)
def _(grad, y_soft, tau_t, tau, dim, need_tau, log):
    gt = tau_t.new_empty(tau_t.shape) if need_tau else y_soft.new_empty(0)
    return y_soft.new_empty(y_soft.shape), gt


# ---------------------------------------------------------------------------------------
# vmap rules: the batch folded into the rows


def _batched(t, bdim, size):
    """t with its batch dimension first (expanded when t is not batched)."""
    return t.movedim(bdim, 0) if bdim is not None else t.expand(size, *t.shape)


def _batched_tau(tau_t, bdim, size, ndim, dim):
    """A tensor tau of a call on logits of ndim (logical) dimensions, for the call on
    the folded logits (batch first): (size, *tau.shape), with ones inserted so that it
    broadcasts to the folded batch shape (or keeps length 1 along the sampled dim)."""
    t = _batched(tau_t, bdim, size)
    shape = tuple(t.shape[1:])
    if len(shape) == ndim and shape[dim] == 1:
        return t
    return t.reshape((size,) + (1,) * (ndim - 1 - len(shape)) + shape)


VMAP_ERROR = (
    "vmap: called random operation while in randomness error mode. Please either use the "
    "'same' or 'different' randomness flags on vmap or perform the randomness operation "
    "out of vmap"
)


@torch.library.register_vmap("gumbel_softmax::sample", lib=_LIB)
def _(info, in_dims, logits, state, tau_t, tau, hard, log, dim, need_soft, mask, fixed):
    # fixed (an int seed): a function of the seed, the same noise for every element, as
    # a loop over the elements would draw; else what vmap's randomness asks for
    if info.randomness == "error" and not fixed:
        raise RuntimeError(VMAP_ERROR)
    if in_dims[1] is not None:
        raise RuntimeError("gumbel_softmax: the generator state must not be batched under vmap")
    size, ndim = info.batch_size, logits.dim() - (in_dims[0] is not None)
    x = _batched(logits, in_dims[0], size)
    t = None if tau_t is None else _batched_tau(tau_t, in_dims[2], size, ndim, dim)
    m = None if mask is None else _batched(mask, in_dims[8], size)
    soft_dim = 0 if need_soft else None
    if info.randomness == "different" and not fixed:  # the batch as more rows: own noise
        out = sample_op(x, state, t, tau, hard, log, dim + 1, need_soft, m, fixed)
        return out, (0, soft_dim)
    # "same" (or fixed): every batch element drawn from the same state
    t = None if tau_t is None else _batched(tau_t, in_dims[2], size)
    outs = [
        sample_op(
            x[b],
            state,
            t if t is None else t[b],
            tau,
            hard,
            log,
            dim,
            need_soft,
            m if m is None else m[b],
            fixed,
        )
        for b in range(size)
    ]
    y = torch.stack([o[0] for o in outs])
    soft = torch.stack([o[1] for o in outs]) if need_soft else outs[0][1]
    return (y, soft), (0, soft_dim)


@torch.library.register_vmap("gumbel_softmax::indices", lib=_LIB)
def _(info, in_dims, logits, state, mask, dim, k, fixed):
    if info.randomness == "error" and not fixed:
        raise RuntimeError(VMAP_ERROR)
    if in_dims[1] is not None:
        raise RuntimeError("gumbel_softmax: the generator state must not be batched under vmap")
    size = info.batch_size
    x = _batched(logits, in_dims[0], size)
    m = None if mask is None else _batched(mask, in_dims[2], size)
    if info.randomness == "different" and not fixed:
        return indices_op(x, state, m, dim + 1, k, fixed), 0
    outs = [indices_op(x[b], state, m if m is None else m[b], dim, k, fixed) for b in range(size)]
    return torch.stack(outs), 0


@torch.library.register_vmap("gumbel_softmax::backward", lib=_LIB)
def _(info, in_dims, grad, y_soft, tau_t, tau, dim, need_tau, log):
    size = info.batch_size
    ndim = y_soft.dim() - (in_dims[1] is not None)
    g, s = _batched(grad, in_dims[0], size), _batched(y_soft, in_dims[1], size)
    t = None if tau_t is None else _batched_tau(tau_t, in_dims[2], size, ndim, dim)
    gx, gt = backward_op(g, s, t, tau, dim + 1, need_tau, log)
    if not need_tau:
        return (gx, gt), (0, None)
    return (gx, gt.reshape((size,) + tuple(tau_t.shape[in_dims[2] is not None :]))), (0, 0)


# ---------------------------------------------------------------------------------------
# Autograd


def use_ops(*tensors):
    """Whether to go through the ops: under torch.compile, and for tensors of torch.func
    transforms (which have no memory of their own)."""
    return torch.compiler.is_compiling() or any(t is not None and _is_wrapped(t) for t in tensors)


class GumbelSoftmaxFn(torch.autograd.Function):
    """(y, y_soft) of the sample, differentiable in logits and a tensor tau, for eager
    mode and torch.func (torch.compile calls the sample op, whose registered autograd
    is the same).  rng: a state tensor (through the op) or what the NumPy API accepts
    (direct).  y_soft is empty unless need_soft (hard=True with a gradient to compute):
    saved as an output, it carries higher-order gradients back through this Function."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits, tau_t, mask, rng, tau, hard, log, dim, need_soft, fixed):
        if isinstance(rng, torch.Tensor):
            return torch.ops.gumbel_softmax.sample(
                logits, rng, tau_t, tau, hard, log, dim, need_soft, mask, fixed
            )
        return forward_impl(logits, rng, tau_t, tau, hard, log, dim, need_soft, mask)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, tau_t, _, _, tau, _, log, dim, need_soft, _ = inputs
        _save(ctx, output, tau_t, tau, dim, need_soft, log)

    @staticmethod
    def backward(ctx, grad_y, grad_soft):
        need = ctx.needs_input_grad
        return _grads(ctx, grad_y, grad_soft, need[0], need[1], False) + _NONE[:8]


# Function.apply binds the arguments with inspect.signature at every call when the
# Function defines setup_context (about 100 us, as much as a whole small call); with
# no torch.func transform active it then calls the C++ apply, which is what this is.
_apply_plain = super(torch.autograd.Function, GumbelSoftmaxFn).apply


def apply(*args):
    """GumbelSoftmaxFn.apply(*args), every argument given (positionally)."""
    if torch._C._are_functorch_transforms_active():
        return GumbelSoftmaxFn.apply(*args)
    return _apply_plain(*args)


def _save(ctx, output, tau_t, tau, dim, need_soft, log):
    ctx.set_materialize_grads(False)
    ctx.tau, ctx.dim, ctx.log = tau, dim, log
    ctx.save_for_backward(output[1] if need_soft else output[0], tau_t)


def _grads(ctx, grad_y, grad_soft, need_x, need_tau, op):
    """(grad_logits, grad_tau) of the sample; op: always through the backward op."""
    y_soft, tau_t = ctx.saved_tensors
    g = grad_y if grad_soft is None else grad_soft if grad_y is None else grad_y + grad_soft
    if g is None or not (need_x or need_tau):
        return None, None
    if _is_legacy_batched(g):
        # the legacy vmap over the backward (autograd.functional.jacobian with
        # vectorize=True): torch ops, which it batches
        gx, gt = graph_backward(g, y_soft, ctx.tau, tau_t, ctx.dim, need_tau, ctx.log)
        return gx if need_x else None, gt
    if op or use_ops(g, y_soft, tau_t):
        with torch.no_grad():  # the op's own autograd kernel does not support torch.func
            gx, gt = torch.ops.gumbel_softmax.backward(
                g.detach(),
                y_soft.detach(),
                None if tau_t is None else tau_t.detach(),
                ctx.tau,
                ctx.dim,
                need_tau,
                ctx.log,
            )
    else:
        gx, gt = backward_impl(g, y_soft, tau_t, ctx.tau, ctx.dim, need_tau, ctx.log)
    return with_graph(ctx, g, y_soft, tau_t, gx if need_x else None, gt if need_tau else None)


def _sample_setup(ctx, inputs, output):
    _, _, tau_t, tau, _, log, dim, need_soft, _, _ = inputs
    _save(ctx, output, tau_t, tau, dim, need_soft, log)


def _sample_backward(ctx, grad_y, grad_soft):
    need = ctx.needs_input_grad
    gx, gt = _grads(ctx, grad_y, grad_soft, need[0], need[2], True)
    return (gx, None, gt) + _NONE[:7]


_AFTER_AUTOGRAD = torch._C._after_autograd_keyset
_CPU = torch._C.DispatchKey.CPU
_any_requires_grad = torch._C._any_requires_grad


def register_autograd(lib, name, impl, backward, setup_context):
    """torch.library.register_autograd of the op ``gumbel_softmax::name`` (CPU kernel
    impl), except that its autograd kernel runs impl itself for a call that records
    nothing on plain CPU tensors (every call of a compiled graph: the registered kernel
    would redispatch to impl, a second trip through the dispatcher and Python per
    call).  Anything else (grad to record, a dispatch mode, functionalization, fake
    tensors) goes to the kernel torch.library generates, as register_autograd would."""
    qualname = f"gumbel_softmax::{name}"
    op = getattr(torch.ops.gumbel_softmax, name).default
    try:
        from torch._library.autograd import Info, make_autograd_impl

        generated = make_autograd_impl(op, Info(backward, setup_context))
    except (ImportError, AttributeError, TypeError):  # another torch: its own kernel
        torch.library.register_autograd(qualname, backward, setup_context=setup_context, lib=lib)
        return

    def kernel(keyset, *args):
        if (keyset & _AFTER_AUTOGRAD).highestPriorityTypeId() == _CPU and not (
            torch.is_grad_enabled() and _any_requires_grad(*args)
        ):
            return impl(*args)
        return generated(keyset, *args)

    lib.impl(name, kernel, "Autograd", with_keyset=True)


register_autograd(_LIB, "sample", sample_impl, _sample_backward, _sample_setup)


def with_graph(ctx, g, y_soft, tau_t, grad_x, grad_tau):
    """(grad_x, grad_tau), for a backward that records a graph (create_graph, or
    torch.func.grad): the kernels' values, plus the graph of the same expression in
    torch ops (whose value is added as x - x = 0), so that higher-order gradients are
    exact and the first-order values stay the kernels', bitwise."""
    if not torch.is_grad_enabled() or not (
        g.requires_grad or y_soft.requires_grad or (tau_t is not None and tau_t.requires_grad)
    ):
        return grad_x, grad_tau
    gx, gt = graph_backward(g, y_soft, ctx.tau, tau_t, ctx.dim, grad_tau is not None, ctx.log)
    if grad_x is not None:
        grad_x = grad_x + (gx - gx.detach())
    if grad_tau is not None:
        grad_tau = grad_tau + (gt - gt.detach())
    return grad_x, grad_tau
