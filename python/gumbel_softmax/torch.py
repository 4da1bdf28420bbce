"""PyTorch drop-in: ``gumbel_softmax.torch.gumbel_softmax`` for CPU tensors.

>>> import torch, torch.nn.functional as F                        # doctest: +SKIP
>>> from gumbel_softmax.torch import gumbel_softmax               # doctest: +SKIP
>>> y = gumbel_softmax(logits, tau=0.5, hard=True)  # where F.gumbel_softmax was  # doctest: +SKIP

The same call as ``torch.nn.functional.gumbel_softmax(logits, tau=1, hard=False,
eps=1e-10, dim=-1)``, plus a ``generator``; an autograd Function whose forward and
backward are this package's fused kernels, run on zero-copy NumPy views of the tensors
(contiguous or not, nothing is copied; the results are new tensors sharing the memory of
the arrays the kernels wrote).

What differs from ``F.gumbel_softmax`` (see the README's migration table and docs/integrations.md):

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
- gradients of any order: with ``create_graph=True`` (gradient penalties, Hessians) the
  backward is also written in torch ops of the saved soft sample (and a tensor ``tau``),
  so the higher-order terms are exact, while the first-order values stay the backward
  kernel's, bit for bit; without it only the kernel runs;
- a call that raises draws nothing: every argument is checked before the seed is drawn,
  and a failure after it (a ``MemoryError`` allocating the results) puts the caller's
  ``torch.Generator`` (or torch's default generator) or ``numpy.random.Generator`` back
  as it was, unless another draw from it came in between;
- ``torch.compile`` runs the call eagerly (one graph break), drawing fresh noise per call;
  ``torch.jit.trace`` (which would freeze the seed into the trace) and ``torch.func``
  transforms (``grad``, ``vmap``, ``jvp``, ...: their tensors have no memory for the
  kernels) raise ``RuntimeError`` naming them.  ``torch.autograd.functional.jacobian`` and
  ``hessian`` work, ``vectorize=True`` included;
- ``torch.utils.checkpoint`` recomputes the forward in the backward: with
  ``generator=None`` (checkpoint restores torch's default generator) or an int seed the
  recomputation draws the same noise; with a stateful generator (``torch.Generator``,
  ``Philox``, ``numpy.random.Generator``), already advanced by the first forward, a call
  made during a backward pass raises ``RuntimeError`` instead of differentiating other
  noise;
- a bad argument raises an exception naming it, of torch's type for ``dim``: a bool or
  non-integer ``dim`` is a ``TypeError``, one out of range an ``AxisError`` (both
  torch's ``IndexError`` and a ``ValueError``).

``eps`` is accepted for compatibility; as in torch it is deprecated and has no effect
(a value other than the default warns).
"""

from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Union

import numpy as np

from . import _api, _args

try:
    import torch as _torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "gumbel_softmax.torch needs PyTorch: pip install 'gumbel-softmax[torch]' "
        "(for the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    ) from exc

if TYPE_CHECKING:
    from ._typing import Axis, RngLike

    # None (torch's default generator), an int seed, a Philox, a numpy.random.Generator
    # or a torch.Generator
    GeneratorLike = Union[RngLike, _torch.Generator]

__all__ = ["gumbel_softmax"]

_DTYPES = (_torch.float32, _torch.float64, _torch.float16)
_MAX_DIMS = 64  # the kernels' limit (and NumPy's); torch allows more
_MAX_ROW = _args.MAX_ROW  # the kernels index a row's elements in 32-bit lanes
_AxisError = _args.AxisError
_functorch = getattr(_torch._C, "_functorch", None)
# torch.func's tensors (grad, vmap, functionalize levels) and the legacy vmap's batched
# tensors (torch.autograd.functional's vectorize=True): views without memory of their own
_is_wrapped = getattr(_functorch, "is_functorch_wrapped_tensor", None) or (lambda t: False)
_is_legacy_batched = getattr(_functorch, "is_legacy_batchedtensor", None) or (lambda t: False)


def _is_transformed(t):
    return _is_wrapped(t) or _is_legacy_batched(t)


_TRANSFORMS = (
    "gumbel_softmax.torch.gumbel_softmax does not support torch.func transforms (grad, vjp, "
    "jvp, jacrev, jacfwd, hessian, vmap, functionalize): its kernels run on the memory of "
    "ordinary CPU tensors, which a transformed tensor does not have. Differentiate with "
    "torch.autograd.grad (create_graph=True for higher orders, or "
    "torch.autograd.functional.jacobian / hessian), and batch with a leading dimension"
)
_TRACING = (
    "gumbel_softmax.torch.gumbel_softmax cannot be traced by torch.jit.trace: the trace "
    "would hold the noise's seed as a constant, so every call of the traced function would "
    "draw the same noise. Call it outside the traced code (or use "
    "torch.nn.functional.gumbel_softmax there); torch.compile is supported"
)


_RECOMPUTE = (
    "gumbel_softmax.torch.gumbel_softmax was called during a backward pass (torch.utils."
    "checkpoint recomputing its forward?) with a {kind} as generator: the forward's call "
    "already advanced it, so a recomputation would draw other noise and the gradients "
    "would be silently wrong. Under checkpoint pass generator=None (checkpoint restores "
    "torch's default generator for the recomputation) or an int seed"
)
_graph_task_id = getattr(_torch._C, "_current_graph_task_id", lambda: -1)


def _check_not_recomputing(generator):
    """A stateful generator inside a backward pass: refuse, rather than give gradients of
    noise other than the forward's."""
    if generator is None or (
        isinstance(generator, (numbers.Integral, np.integer))
        and not isinstance(generator, (bool, np.bool_))
    ):
        return
    if _graph_task_id() != -1:
        raise RuntimeError(_RECOMPUTE.format(kind=type(generator).__name__))


def _check_untransformed(t, name):
    if _is_transformed(t):
        raise RuntimeError(f"{_TRANSFORMS} ({name} is a tensor of such a transform)")


def _as_array(t, name):
    """A NumPy view of a CPU tensor (no copy), after the device, layout and dtype checks."""
    _check_untransformed(t, name)
    if t.device.type != "cpu":
        raise ValueError(
            f"{name} must be a CPU tensor, got a tensor on device '{t.device}': "
            f"move it with {name}.cpu(), or use torch.nn.functional.gumbel_softmax there"
        )
    if t.layout != _torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in _DTYPES:
        raise TypeError(f"{name} must be a float32, float64 or float16 tensor, got {t.dtype}")
    try:
        return t.detach().resolve_neg().resolve_conj().numpy()
    except RuntimeError as exc:  # a tensor subclass or a tracer's tensor without memory
        raise RuntimeError(
            f"{name} has no memory the kernels can read ({exc}); gumbel_softmax.torch runs "
            "on ordinary CPU tensors, not under torch.func transforms, torch.export or "
            "make_fx tracing"
        ) from None


def _logits_array(logits):
    if not isinstance(logits, _torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    _check_untransformed(logits, "logits")
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d tensor")
    if logits.dim() > _MAX_DIMS:
        raise ValueError(f"logits must have at most {_MAX_DIMS} dimensions, got {logits.dim()}")
    return _as_array(logits, "logits")


def _dim_arg(dim, ndim):
    """dim as an index in [0, ndim): torch's exceptions (TypeError for a bool or a
    non-integer, IndexError out of range: an AxisError, which is also a ValueError)."""
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (numbers.Integral, np.integer)):
        raise TypeError(f"dim must be an integer, got {type(dim).__name__}")
    d = int(dim)
    if not -ndim <= d < ndim:
        raise _AxisError(
            f"dim {d} is out of range for logits of {ndim} dimension{'s' if ndim > 1 else ''} "
            f"(expected in [{-ndim}, {ndim - 1}])"
        )
    return d % ndim


def _check_rows(shape, dim):
    n = shape[dim]
    if n == 0:
        raise ValueError(f"dim {dim} of logits has length 0: there is no category to sample")
    if n > _MAX_ROW:
        raise ValueError(
            f"logits rows along dim {dim} have {n} elements; at most 2**31 - 1 are supported"
        )


def _hard_arg(hard):
    if isinstance(hard, _torch.Tensor):
        if hard.numel() != 1:
            raise ValueError(
                f"hard must be a bool or a one-element tensor, got a tensor of shape "
                f"{tuple(hard.shape)}"
            )
        try:
            return bool(hard)
        except Exception as exc:  # a meta tensor, a transformed tensor: no value
            raise ValueError(f"hard: the tensor has no value to read ({exc})") from None
    if not isinstance(hard, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"hard must be a bool, got {type(hard).__name__}")
    return bool(hard)


def _scalar_tau(tau):
    try:
        return _args.check_tau(tau)
    except OverflowError:  # an int beyond float's range
        raise ValueError(
            f"tau must be positive and finite, got {'-' if tau < 0 else ''}an integer of "
            f"{len(str(abs(tau)))} digits"
        ) from None


def _tau_arg(tau, shape, dim):
    """(value for the NumPy API, tensor tau or None), validated in full (values, dtype,
    shape against the batch shape) before anything is drawn."""
    if isinstance(tau, _torch.Tensor):
        _check_untransformed(tau, "tau")
        if tau.device.type != "cpu":
            raise ValueError(f"tau must be a CPU tensor or a float, got device '{tau.device}'")
        if tau.layout != _torch.strided:
            raise TypeError(f"tau must be a dense (strided) tensor, got layout {tau.layout}")
        if tau.dtype.is_complex or tau.dtype == _torch.bool or tau.is_quantized:
            raise TypeError(f"tau must be a real scalar or tensor, got {tau.dtype}")
        # float64 holds every value of the other real dtypes (bfloat16 included) exactly,
        # and is what the NumPy API converts an array tau to
        values = tau.detach().resolve_neg().to(_torch.float64).numpy()
        if values.ndim == 0:
            return _scalar_tau(values.item()), tau
        _args.batch_taus(values, shape, dim)
        return values, tau
    if isinstance(tau, np.ndarray) and tau.ndim:
        _args.batch_taus(tau, shape, dim)
        values = np.asarray(tau, dtype=np.float64)
        # as a tensor too (that needs no gradient), for the backward in torch ops
        return values, _torch.from_numpy(values)
    return _scalar_tau(tau), None


def _seed_from_torch(gen):
    """A 64-bit seed drawn from a torch.Generator (None: torch's default generator)."""
    words = _torch.randint(0, 2**32, (2,), dtype=_torch.int64, generator=gen)
    return (int(words[0]) << 32) | int(words[1])


def _draw(generator):
    """(the Philox of this call, undo or None).  Called once everything else is checked;
    undo() puts back what the seed took from the caller's generator, for a failure after
    it (MemoryError in the kernel), unless another draw from that generator came since."""
    if generator is None or isinstance(generator, _torch.Generator):
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(
                f"generator must be a CPU torch.Generator, got one on '{generator.device}'"
            )
        if generator is None:
            get, put = _torch.get_rng_state, _torch.set_rng_state
        else:
            get, put = generator.get_state, generator.set_state
        before = get()
        rng = _args.Philox(_seed_from_torch(generator))

        def undo_torch():
            # the state our draw left (replayed on a scratch generator, so that a call
            # that succeeds pays for one snapshot only): another draw since then is not
            # undone
            replay = _torch.Generator()
            replay.set_state(before)
            _seed_from_torch(replay)
            if _torch.equal(get(), replay.get_state()):
                put(before)

        return rng, undo_torch
    if isinstance(generator, np.random.Generator):
        bits = generator.bit_generator
        before = bits.state
        rng = _args.as_rng(generator)
        after = bits.state

        def undo():
            if bits.state == after:
                bits.state = before

        return rng, undo
    try:
        # a Philox: the kernels reserve its rows only once their results are allocated
        return _args.as_rng(generator), None
    except ValueError as exc:  # an int seed out of range
        raise ValueError(f"generator: {exc}") from None
    except TypeError:
        raise TypeError(
            "generator must be None, an int seed, a gumbel_softmax.Philox, a "
            f"numpy.random.Generator or a torch.Generator, got {type(generator).__name__}"
        ) from None


def _tau_grad(grad_logits, y_soft, tau_shape, tau_dtype, dim):
    """d loss / d tau for each tau element: -sum(grad_logits * log(y_soft)) over a row
    (s = logits + g = tau * log(y_soft) + const per row, and grad_logits sums to 0)."""
    with np.errstate(divide="ignore"):
        term = np.where(y_soft > 0, grad_logits * np.log(np.where(y_soft > 0, y_soft, 1)), 0)
    rows = _torch.from_numpy(-term.sum(axis=dim, keepdims=True, dtype=np.float64))
    return _to_tau_shape(rows, tau_shape, dim).to(tau_dtype)


def _to_tau_shape(rows, tau_shape, dim):
    """Per-row values (length 1 along dim) summed over what tau broadcasts across."""
    if len(tau_shape) == 0:
        return rows.sum()
    if len(tau_shape) == rows.dim() and tau_shape[dim] == 1:
        return rows.sum_to_size(tau_shape)
    return rows.squeeze(dim).sum_to_size(tau_shape)


def _tau_rows(tau_t, shape, dim):
    """A tensor tau shaped to divide rows along dim (a broadcast view)."""
    if tau_t.dim() == 0 or (tau_t.dim() == len(shape) and tau_t.shape[dim] == 1):
        return tau_t
    return tau_t.expand(shape[:dim] + shape[dim + 1 :]).unsqueeze(dim)


def _graph_backward(g, y_soft, tau, tau_t, dim, need_tau):
    """The backward in differentiable torch ops, for higher-order gradients and vmap:
    grad_logits = y_soft * (g - sum(g * y_soft)) / tau (y_soft is the saved output, so
    its own gradient flows back through this Function), and the tau gradient
    -sum(grad_logits * log(y_soft)) over each row."""
    if tau_t is None:
        rows_tau = tau
    else:
        rows_tau = _tau_rows(tau_t, tuple(y_soft.shape), dim).to(y_soft.dtype)
    gx = y_soft * (g - (g * y_soft).sum(dim, keepdim=True)) / rows_tau
    if not need_tau:
        return gx, None
    log_y = _torch.where(y_soft > 0, y_soft, 1).log()  # 0 where y_soft is 0, as is gx
    rows = -(gx * log_y).sum(dim, keepdim=True)
    return gx, _to_tau_shape(rows, tau_t.shape, dim).to(tau_t.dtype)


class _GumbelSoftmax(_torch.autograd.Function):
    """Forward and backward by the kernels.  For hard=True with a gradient to compute,
    the soft sample is a second output (not returned to the caller): saved as an output,
    it carries higher-order gradients back through this Function."""

    @staticmethod
    def forward(ctx, logits, tau_t, x, tau, hard, dim, rng):
        # x: the checked NumPy view of logits; tau: its value for the NumPy API
        need_soft = hard and (
            ctx.needs_input_grad[0] or (tau_t is not None and ctx.needs_input_grad[1])
        )
        res = _api.gumbel_softmax(x, tau, hard=hard, axis=dim, rng=rng, return_soft=need_soft)
        ctx.set_materialize_grads(False)
        ctx.tau, ctx.dim = tau, dim
        if need_soft:
            y, y_soft = _torch.from_numpy(res[0]), _torch.from_numpy(res[1])
            ctx.save_for_backward(y_soft, tau_t)
            return y, y_soft
        y = _torch.from_numpy(res)
        ctx.save_for_backward(y, tau_t)
        return y

    @staticmethod
    def backward(ctx, grad_y, grad_soft=None):
        y_soft_t, tau_t = ctx.saved_tensors
        g = grad_y if grad_soft is None else grad_soft if grad_y is None else grad_y + grad_soft
        need_x, need_tau = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if g is None or not (need_x or need_tau):
            return None, None, None, None, None, None, None
        if _is_transformed(g):
            # vmap over the backward (torch.autograd.functional.jacobian(vectorize=True)):
            # torch ops, which vmap batches
            gx, gt = _graph_backward(g, y_soft_t, ctx.tau, tau_t, ctx.dim, need_tau)
            return gx if need_x else None, gt, None, None, None, None, None
        y_soft = y_soft_t.detach().numpy()
        ga = _as_array(g, "grad_y")
        if ga.dtype != y_soft.dtype:
            ga = ga.astype(y_soft.dtype)
        grad = _api.gumbel_softmax_backward(ga, y_soft, ctx.tau, axis=ctx.dim)
        grad_tau = None
        if need_tau:
            grad_tau = _tau_grad(grad, y_soft, tau_t.shape, tau_t.dtype, ctx.dim)
        grad_x = _torch.from_numpy(grad) if need_x else None
        grad_x, grad_tau = _with_graph(ctx, g, y_soft_t, tau_t, grad_x, grad_tau)
        return grad_x, grad_tau, None, None, None, None, None


def _with_graph(ctx, g, y_soft_t, tau_t, grad_x, grad_tau):
    """(grad_x, grad_tau), for create_graph (a backward that records a graph of its
    inputs): the kernels' values, plus the graph of the same expression in torch ops
    (whose value is added as x - x = 0), so that higher-order gradients are exact and
    the first-order values stay the kernels', bitwise."""
    if not _torch.is_grad_enabled() or not (
        g.requires_grad or y_soft_t.requires_grad or (tau_t is not None and tau_t.requires_grad)
    ):
        return grad_x, grad_tau
    need_x, need_tau = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    gx, gt = _graph_backward(g, y_soft_t, ctx.tau, tau_t, ctx.dim, need_tau)
    if need_x:
        grad_x = grad_x + (gx - gx.detach())
    if need_tau:
        grad_tau = grad_tau + (gt - gt.detach())
    return grad_x, grad_tau


def _gumbel_softmax(logits, tau, hard, eps, dim, generator):
    if _torch.jit.is_tracing():
        raise RuntimeError(_TRACING)
    x = _logits_array(logits)
    try:
        default_eps = bool(eps == 1e-10)
    except Exception:
        raise TypeError(
            f"eps must be a number (it is deprecated and has no effect), got {type(eps).__name__}"
        ) from None
    if not default_eps:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=3)
    hard = _hard_arg(hard)
    dim = _dim_arg(dim, x.ndim)
    _check_rows(x.shape, dim)
    tau, tau_t = _tau_arg(tau, x.shape, dim)
    _check_not_recomputing(generator)
    # Everything is checked: only now is the seed drawn.  What can still fail (the
    # allocation of the results) puts the caller's generator back as it was.
    rng, undo = _draw(generator)
    try:
        out = _GumbelSoftmax.apply(logits, tau_t, x, tau, hard, dim, rng)
    except BaseException:
        if undo is not None:
            undo()
        raise
    return out[0] if isinstance(out, tuple) else out


# Under torch.compile the call runs eagerly as a whole (one graph break): Dynamo does not
# trace into it, so it holds no seed or tensor value as a constant, and each compiled
# call draws fresh noise as an eager call does.  torch._disable_dynamo imports Dynamo only
# when first called, so that importing this module stays as fast as before.
_disable_dynamo = getattr(_torch, "_disable_dynamo", None)
_gumbel_softmax_uncompiled = (
    _disable_dynamo(_gumbel_softmax) if _disable_dynamo is not None else _gumbel_softmax
)


def gumbel_softmax(
    logits: _torch.Tensor,
    tau: float | _torch.Tensor = 1,
    hard: bool | _torch.Tensor = False,
    eps: float = 1e-10,
    dim: Axis = -1,
    generator: GeneratorLike = None,
) -> _torch.Tensor:
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
        ``logits`` (and a tensor ``tau``), to any order.

    Raises
    ------
    TypeError, ValueError, IndexError
        For a bad argument, naming it (``dim`` out of range: an ``AxisError``, both an
        ``IndexError`` as in torch and a ``ValueError``); ``MemoryError`` when the
        results cannot be allocated; ``RuntimeError`` under ``torch.jit.trace`` and
        ``torch.func`` transforms, and for a stateful ``generator`` during a backward
        pass (``torch.utils.checkpoint``'s recomputation).  A call that raises draws nothing: every generator
        (torch's default one included) is left as it was.

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
    if _torch.compiler.is_compiling():
        return _gumbel_softmax_uncompiled(logits, tau, hard, eps, dim, generator)
    return _gumbel_softmax(logits, tau, hard, eps, dim, generator)
