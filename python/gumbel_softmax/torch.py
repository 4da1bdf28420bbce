"""PyTorch drop-in: ``gumbel_softmax.torch.gumbel_softmax`` for CPU tensors.

>>> import torch, torch.nn.functional as F                        # doctest: +SKIP
>>> from gumbel_softmax.torch import gumbel_softmax               # doctest: +SKIP
>>> y = gumbel_softmax(logits, tau=0.5, hard=True)  # where F.gumbel_softmax was  # doctest: +SKIP

The same call as ``torch.nn.functional.gumbel_softmax(logits, tau=1, hard=False,
eps=1e-10, dim=-1)``, plus a ``generator`` and a ``mask``.  Its forward and backward are
this package's fused kernels, registered with ``torch.library`` as the custom ops
``torch.ops.gumbel_softmax.seed`` / ``.sample`` / ``.backward`` (fake implementations,
vmap rules, the sample op's autograd): ``torch.compile(model, fullgraph=True)`` puts them
into its graph, and ``torch.func`` transforms them.  In plain eager mode the same
implementations run directly (a custom op's dispatch would cost as much as a small
call), on zero-copy NumPy views of the tensors (contiguous or not; the results are new
tensors sharing the memory of the arrays the kernels wrote).

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
- CPU tensors of dtype float32, float64, float16 or bfloat16 (the half dtypes are
  computed in float32 and rounded to nearest even, as in the NumPy API: bitwise its
  result on the same values); other devices and dtypes raise;
- ``mask`` (a bool tensor broadcasting to ``logits``): ``False`` excludes a category
  exactly as a ``-inf`` logit does (probability and gradient exactly 0);
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
- ``torch.compile``: no graph break with ``generator=None`` (the seed op draws from
  torch's default generator at every run of the graph, in program order, so compiled
  calls draw fresh noise and equal eager calls bitwise from the same
  ``torch.manual_seed``) or an int seed (a constant state, the same noise at every call,
  as in eager mode); a ``torch.Generator``, ``Philox`` or ``numpy.random.Generator`` costs
  one graph break (its draw runs eagerly, fresh at every call), so ``fullgraph=True``
  raises for them rather than freeze noise into the graph;
- ``torch.func``: ``grad``, ``vjp``, ``jacrev`` and ``vmap`` work (``jvp`` and ``jacfwd``,
  forward mode, are not implemented).  Under ``vmap`` with ``generator=None``,
  ``randomness="different"`` gives each element its own noise (the batch becomes more
  rows of one call: the result is the eager call on the stacked batch), ``"same"`` the
  same noise for every element, and ``"error"`` (vmap's default) raises
  ``RuntimeError``; an int seed is no random operation (every element gets the noise of
  that seed, as a loop of calls does); a stateful generator raises ``RuntimeError``;
- ``torch.jit.trace`` (which would freeze the seed into the trace) raises
  ``RuntimeError``; ``torch.autograd.functional.jacobian`` and ``hessian`` work,
  ``vectorize=True`` included;
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

from . import _args

try:
    import torch as _torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "gumbel_softmax.torch needs PyTorch: pip install 'gumbel-softmax[torch]' "
        "(for the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    ) from exc

from . import _torch_bernoulli as _bern  # and the relaxed Bernoulli ops
from . import _torch_estimators as _est  # reinmax's and gumbel_rao's
from . import _torch_ops as _ops  # registers the custom ops (torch.ops.gumbel_softmax)
from . import _torch_subset as _subset  # and relaxed_top_k's

if TYPE_CHECKING:
    from ._typing import Axis, RngLike

    # None (torch's default generator), an int seed, a Philox, a numpy.random.Generator
    # or a torch.Generator
    GeneratorLike = Union[RngLike, _torch.Generator]

__all__ = [
    "categorical",
    "gumbel_rao",
    "gumbel_softmax",
    "log_gumbel_softmax",
    "reinmax",
    "relaxed_bernoulli",
    "relaxed_top_k",
    "top_k",
]

_DTYPES = (_torch.float32, _torch.float64, _torch.float16, _torch.bfloat16)
_MAX_DIMS = 64  # the kernels' limit (and NumPy's); torch allows more
_MAX_ROW = _args.MAX_ROW  # the kernels index a row's elements in 32-bit lanes
_AxisError = _args.AxisError
_functorch = _torch._C._functorch
_VMAP = _functorch.TransformType.Vmap
_ERROR = _functorch.RandomnessType.Error

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
_VMAP_GENERATOR = (
    "gumbel_softmax.torch under torch.func.vmap takes generator=None (torch's default "
    "generator) or an int seed, got a {kind}: draw a seed from it outside vmap"
)
_graph_task_id = getattr(_torch._C, "_current_graph_task_id", lambda: -1)


def _is_seed(generator):
    return isinstance(generator, (numbers.Integral, np.integer)) and not isinstance(
        generator, (bool, np.bool_)
    )


def _check_not_recomputing(generator):
    """A stateful generator inside a backward pass: refuse, rather than give gradients of
    noise other than the forward's."""
    if _graph_task_id() != -1:
        raise RuntimeError(_RECOMPUTE.format(kind=type(generator).__name__))


def _plain(t):
    """The tensor under torch.func's wrappers (the values of a batched or grad-tracking
    tensor, for checks)."""
    while _functorch.is_functorch_wrapped_tensor(t):
        t = _functorch.get_unwrapped(t)
    return t


def _check_tensor(t, name, what, dtypes=_DTYPES):
    if t.device.type != "cpu":
        raise ValueError(
            f"{name} must be a CPU tensor, got a tensor on device '{t.device}': "
            f"move it with {name}.cpu(), or use torch.nn.functional.gumbel_softmax there"
        )
    if t.layout != _torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in dtypes:
        raise TypeError(f"{name} must be a {what} tensor, got {t.dtype}")


def _check_logits(logits):
    if not isinstance(logits, _torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension, got a 0-d tensor")
    if logits.dim() > _MAX_DIMS:
        raise ValueError(f"logits must have at most {_MAX_DIMS} dimensions, got {logits.dim()}")
    _check_tensor(logits, "logits", "float32, float64, float16 or bfloat16")


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


def _tau_arg(tau, shape, dim, compiling):
    """(float tau, tensor tau or None), validated in full before anything is drawn: the
    shape against the batch shape, and the values, except under torch.compile (where
    they are unknown when traced: the seed op or the sample op checks them first)."""
    if isinstance(tau, np.ndarray) and tau.ndim:
        _args.batch_taus(tau, shape, dim)
        # as a tensor that needs no gradient (the ops take tensors)
        return 1.0, _torch.from_numpy(np.asarray(tau, dtype=np.float64))
    if not isinstance(tau, _torch.Tensor):
        return _scalar_tau(tau), None
    if tau.device.type != "cpu":
        raise ValueError(f"tau must be a CPU tensor or a float, got device '{tau.device}'")
    if tau.layout != _torch.strided:
        raise TypeError(f"tau must be a dense (strided) tensor, got layout {tau.layout}")
    if tau.dtype.is_complex or tau.dtype == _torch.bool or tau.is_quantized:
        raise TypeError(f"tau must be a real scalar or tensor, got {tau.dtype}")
    if tau.dim():
        _check_tau_shape(tuple(tau.shape), shape, dim)
    if not compiling:
        # float64 holds every value of the other real dtypes (bfloat16 included) exactly
        with _torch._C._DisableFuncTorch():
            values = _plain(tau).detach().resolve_neg().to(_torch.float64).numpy()
        _scalar_tau(values.item()) if values.ndim == 0 else _args.tau_values(values)
    return 1.0, tau


def _check_tau_shape(tau_shape, shape, dim):
    """_args.batch_taus' rule on shapes alone (traceable by torch.compile): tau
    broadcasts to the batch shape, or has len(shape) dimensions with 1 along dim."""
    t = tau_shape
    if len(t) == len(shape) and t[dim] == 1:
        t = t[:dim] + t[dim + 1 :]
    batch = shape[:dim] + shape[dim + 1 :]
    if len(t) > len(batch) or any(a not in (1, b) for a, b in zip(t[::-1], batch[::-1])):
        raise ValueError(
            f"tau of shape {tau_shape} does not broadcast to the batch shape {batch} "
            f"(the shape without axis {dim})"
        )


def _mask_arg(mask, shape):
    if mask is None:
        return None
    if not isinstance(mask, _torch.Tensor):
        raise TypeError(f"mask must be a bool torch.Tensor or None, got {type(mask).__name__}")
    _check_tensor(mask, "mask", "bool", (_torch.bool,))
    try:
        full = _torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        full = None
    if full != shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to logits' shape {tuple(shape)}"
        )
    return mask.expand(shape)


def _vmap_randomness():
    """The randomness of every vmap level around the call (empty outside vmap)."""
    if _functorch.maybe_current_level() is None:
        return ()
    stack = _functorch.get_interpreter_stack() or ()
    return tuple(_functorch.CVmapInterpreterPtr(i).randomness() for i in stack if i.key() == _VMAP)


def _draw(generator):
    """(what the NumPy API gets as rng, undo or None), in eager mode.  Called once
    everything else is checked; undo() puts back what the seed took from the caller's
    generator, for a failure after it (MemoryError in the kernel), unless another draw
    from that generator came since."""
    if generator is None or isinstance(generator, _torch.Generator):
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(
                f"generator must be a CPU torch.Generator, got one on '{generator.device}'"
            )
        seed, undo = _ops.draw_torch(generator)
        return _args.Philox(seed), undo
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


# torch._disable_dynamo imports Dynamo when first called, not at import as
# torch.compiler.disable does (seconds), so that importing this module stays fast
@_torch._disable_dynamo
def _eager_state(generator, rows):
    """Under torch.compile, the state tensor of a stateful generator (a graph break:
    it runs eagerly at every call, so each call draws anew): a Philox's rows reserved,
    or a seed drawn from a numpy.random.Generator or a torch.Generator; an op that then
    fails on this state (MemoryError) puts the generator back as it was."""
    _check_not_recomputing(generator)
    rng, undo = _draw(generator)
    if rng is generator:  # a Philox: its rows, given back if the op fails
        start = rng.reserve(rows)

        def undo():
            rng._unreserve(start, rows)

        state = (rng.seed, start)
    else:
        state = (rng.seed, rng.counter)
    _ops.remember_draw(state, undo)  # the op that fails with this state calls undo()
    return _ops.state_tensor(*state)


def _state(generator, tau_t, rows, compiling):
    """The state tensor of the call through the ops (torch.compile, vmap)."""
    if generator is None:
        return _torch.ops.gumbel_softmax.seed(_ops.ORDER, tau_t if compiling else None)
    if _is_seed(generator):
        if not 0 <= generator < 2**64:
            raise ValueError(f"generator: seed must be in [0, 2**64), got {generator}")
        return _ops.state_tensor(int(generator))
    if compiling:
        return _eager_state(generator, rows)
    raise RuntimeError(_VMAP_GENERATOR.format(kind=type(generator).__name__))


def _prepare(logits, tau, dim, mask, compiling):
    """The checks every function shares: (shape, dim, tau, tau tensor, mask)."""
    if _torch.jit.is_tracing():
        raise RuntimeError(_TRACING)
    _check_logits(logits)
    shape = tuple(logits.shape)
    dim = _dim_arg(dim, len(shape))
    _check_rows(shape, dim)
    tau, tau_t = _tau_arg(tau, shape, dim, compiling)
    return shape, dim, tau, tau_t, _mask_arg(mask, shape)


def _run(generator, rows, tau_t, compiling, through_op, direct):
    """Draw and run, once everything is checked: through_op(state, fixed) under
    torch.compile and vmap (the state a tensor), else direct(rng) (what the NumPy API
    takes), and a failure after the draw (the allocation of the results) puts the
    caller's generator back as it was."""
    vmap = () if compiling else _vmap_randomness()
    if _ERROR in vmap and generator is None:  # an int seed is no random operation
        raise RuntimeError(_ops.VMAP_ERROR)
    if compiling or vmap:
        return through_op(_state(generator, tau_t, rows, compiling), _is_seed(generator))
    if generator is not None and not _is_seed(generator):
        _check_not_recomputing(generator)
    rng, undo = _draw(generator)
    try:
        return direct(rng)
    except BaseException:
        if undo is not None:
            undo()
        raise


def _sample(logits, tau, hard, log, dim, generator, mask):
    """gumbel_softmax (log=False) and log_gumbel_softmax (log=True)."""
    compiling = _torch.compiler.is_compiling()
    shape, dim, tau, tau_t, mask = _prepare(logits, tau, dim, mask, compiling)
    need_soft = hard and (
        _torch.is_grad_enabled()
        and (logits.requires_grad or (tau_t is not None and tau_t.requires_grad))
    )

    def through_op(state, fixed):
        if compiling:  # the op, with its registered autograd
            return _torch.ops.gumbel_softmax.sample(
                logits, state, tau_t, tau, hard, log, dim, need_soft, mask, fixed
            )[0]
        return _ops.apply(logits, tau_t, mask, state, tau, hard, log, dim, need_soft, fixed)[0]

    def direct(rng):
        return _ops.apply(logits, tau_t, mask, rng, tau, hard, log, dim, need_soft, False)[0]

    rows = logits.numel() // shape[dim]
    return _run(generator, rows, tau_t, compiling, through_op, direct)


def _gumbel_softmax(logits, tau, hard, eps, dim, generator, mask):
    try:
        default_eps = bool(eps == 1e-10)
    except Exception:
        raise TypeError(
            f"eps must be a number (it is deprecated and has no effect), got {type(eps).__name__}"
        ) from None
    if not default_eps:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=3)
    return _sample(logits, tau, _hard_arg(hard), False, dim, generator, mask)


def _bernoulli(logits, tau, hard, generator):
    compiling = _torch.compiler.is_compiling()
    if _torch.jit.is_tracing():
        raise RuntimeError(_TRACING)
    if not isinstance(logits, _torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() > _MAX_DIMS:
        raise ValueError(f"logits must have at most {_MAX_DIMS} dimensions, got {logits.dim()}")
    _check_tensor(logits, "logits", "float32, float64, float16 or bfloat16")
    hard = _hard_arg(hard)
    shape = tuple(logits.shape)
    if shape and shape[-1] > _MAX_ROW:
        raise ValueError(f"logits rows have {shape[-1]} elements; at most 2**31 - 1 are supported")
    if isinstance(tau, (_torch.Tensor, np.ndarray)) and tau.ndim:
        try:
            full = _torch.broadcast_shapes(tuple(tau.shape), shape)
        except RuntimeError:
            full = None
        if full != shape:
            raise ValueError(
                f"tau of shape {tuple(tau.shape)} does not broadcast to logits' shape {shape}"
            )
    # _tau_arg's checks, with the elements as the rows (a tau broadcasting to shape)
    tau, tau_t = _tau_arg(tau, shape + (1,), len(shape), compiling)
    need_soft = hard and (
        _torch.is_grad_enabled()
        and (logits.requires_grad or (tau_t is not None and tau_t.requires_grad))
    )

    def through_op(state, fixed):
        if compiling:
            return _bern.sample_op(logits, state, tau_t, tau, hard, need_soft, fixed)[0]
        return _bern.apply(logits, tau_t, state, tau, hard, need_soft, fixed)[0]

    def direct(rng):
        return _bern.apply(logits, tau_t, rng, tau, hard, need_soft, False)[0]

    rows = logits.numel() // shape[-1] if shape and shape[-1] else (1 if not shape else 0)
    return _run(generator, rows, tau_t, compiling, through_op, direct)


def _indices(logits, k, dim, generator, mask):
    """categorical (k None) and top_k."""
    compiling = _torch.compiler.is_compiling()
    shape, dim, _, _, mask = _prepare(logits, 1.0, dim, mask, compiling)
    if k is None:
        k = -1
    else:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (numbers.Integral, np.integer)):
            raise TypeError(f"k must be an integer, got {type(k).__name__}")
        if not 0 <= k <= shape[dim]:
            raise ValueError(f"k must be in [0, {shape[dim]}] (the length of dim {dim}), got {k}")
        k = int(k)

    def through_op(state, fixed):
        return _torch.ops.gumbel_softmax.indices(logits, state, mask, dim, k, fixed)

    def direct(rng):
        return _ops.indices_impl(logits, rng, mask, dim, k)

    rows = logits.numel() // shape[dim]
    return _run(generator, rows, None, compiling, through_op, direct)


def gumbel_softmax(
    logits: _torch.Tensor,
    tau: float | _torch.Tensor = 1,
    hard: bool | _torch.Tensor = False,
    eps: float = 1e-10,
    dim: Axis = -1,
    generator: GeneratorLike = None,
    *,
    mask: _torch.Tensor | None = None,
) -> _torch.Tensor:
    """Drop-in for ``torch.nn.functional.gumbel_softmax`` on CPU tensors.

    Parameters
    ----------
    logits : torch.Tensor
        ``[..., num_features]`` unnormalised log-probabilities: a CPU tensor of dtype
        float32, float64, float16 or bfloat16, any shape and strides.  ``-inf`` masks a
        category.
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
    mask : torch.Tensor of bool, optional
        Broadcastable to ``logits``' shape; ``False`` excludes a category exactly as a
        ``-inf`` logit does (probability and gradient exactly 0, never the one-hot).

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
        results cannot be allocated; ``RuntimeError`` under ``torch.jit.trace``, under
        ``vmap(randomness="error")`` with ``generator=None``, for a stateful
        ``generator`` under ``vmap`` or during a backward pass
        (``torch.utils.checkpoint``'s recomputation).  A call that raises draws
        nothing: every generator (torch's default one included) is left as it was.

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
    return _gumbel_softmax(logits, tau, hard, eps, dim, generator, mask)


def log_gumbel_softmax(
    logits: _torch.Tensor,
    tau: float | _torch.Tensor = 1,
    dim: Axis = -1,
    generator: GeneratorLike = None,
    *,
    mask: _torch.Tensor | None = None,
) -> _torch.Tensor:
    """The log of a Gumbel-Softmax sample, computed in log space (differentiable).

    :func:`gumbel_softmax.log_gumbel_softmax` on tensors: the same noise and rows as
    :func:`gumbel_softmax` from the same generator state, so ``exp`` of the result is
    that sample up to rounding, but finite wherever the logit is finite, even when a
    small ``tau`` makes the sample underflow to 0 (``ExpRelaxedCategorical.rsample()``
    of ``torch.distributions``).  ``-inf`` where the logit is ``-inf`` or masked.

    Parameters
    ----------
    logits, tau, dim, generator, mask
        As for :func:`gumbel_softmax` (there is no ``hard``).

    Returns
    -------
    torch.Tensor
        ``log(y)``, same shape and dtype as ``logits``; differentiable with respect to
        ``logits`` and a tensor ``tau``: ``grad_logits = (g - exp(log_y) * sum(g)) / tau``.

    Raises
    ------
    TypeError, ValueError, IndexError, RuntimeError
        As :func:`gumbel_softmax`.

    Examples
    --------
    >>> import torch
    >>> from gumbel_softmax.torch import gumbel_softmax, log_gumbel_softmax
    >>> x = torch.tensor([0.0, 1.0, 2.0])
    >>> bool(torch.isfinite(log_gumbel_softmax(x, tau=1e-3, generator=3)).all())
    True
    >>> bool((gumbel_softmax(x, tau=1e-3, generator=3) == 0).any())  # underflows to 0
    True
    """
    return _sample(logits, tau, False, True, dim, generator, mask)


def categorical(
    logits: _torch.Tensor,
    dim: Axis = -1,
    generator: GeneratorLike = None,
    *,
    mask: _torch.Tensor | None = None,
) -> _torch.Tensor:
    """Category indices by the Gumbel-max trick: ``argmax(logits + g, dim)``.

    :func:`gumbel_softmax.categorical` on tensors: the position of the one-hot that
    ``gumbel_softmax(logits, hard=True)`` draws from the same generator state (ties go
    to the lowest index).  Index ``i`` has probability ``softmax(logits)[i]``, as for
    ``torch.distributions.Categorical(logits=logits).sample()``, moved to the last
    dimension.

    Parameters
    ----------
    logits, dim, generator, mask
        As for :func:`gumbel_softmax`.

    Returns
    -------
    torch.Tensor of int64
        ``logits.shape`` without ``dim``; ``-1`` for rows with no defined sample (a NaN
        or ``+inf`` logit, or every category ``-inf`` or masked).  Not differentiable.

    Raises
    ------
    TypeError, ValueError, IndexError, RuntimeError
        As :func:`gumbel_softmax`.

    Examples
    --------
    >>> import torch
    >>> from gumbel_softmax.torch import categorical, gumbel_softmax
    >>> x = torch.randn(4, 6)
    >>> idx = categorical(x, generator=5)
    >>> torch.equal(idx, gumbel_softmax(x, hard=True, generator=5).argmax(-1))
    True
    """
    return _indices(logits, None, dim, generator, mask)


def top_k(
    logits: _torch.Tensor,
    k: int,
    dim: Axis = -1,
    generator: GeneratorLike = None,
    *,
    mask: _torch.Tensor | None = None,
) -> _torch.Tensor:
    """``k`` categories without replacement (Gumbel-top-k, Kool et al. 2019).

    :func:`gumbel_softmax.top_k` on tensors: the indices of the ``k`` largest
    ``logits + g`` in decreasing order (ties: lower index first), with the noise and
    rows of :func:`gumbel_softmax`; ``torch.topk(logits + g, k, dim).indices`` on our
    noise ``g``, and the ordered draw of the Plackett-Luce model.

    Parameters
    ----------
    logits, dim, generator, mask
        As for :func:`gumbel_softmax`.
    k : int
        ``0 <= k <= logits.shape[dim]``.

    Returns
    -------
    torch.Tensor of int64
        ``logits.shape`` with ``k`` along ``dim``; ``-1`` past the categories that can
        be drawn.  Not differentiable.

    Raises
    ------
    TypeError, ValueError, IndexError, RuntimeError
        As :func:`gumbel_softmax`, and for a bad ``k``.

    Examples
    --------
    >>> import torch
    >>> from gumbel_softmax.torch import top_k
    >>> idx = top_k(torch.zeros(5), 3, generator=2)
    >>> idx.shape, len(set(idx.tolist()))
    (torch.Size([3]), 3)
    """
    return _indices(logits, k, dim, generator, mask)


def relaxed_bernoulli(
    logits: _torch.Tensor,
    tau: float | _torch.Tensor = 1,
    hard: bool | _torch.Tensor = False,
    generator: GeneratorLike = None,
) -> _torch.Tensor:
    """Relaxed Bernoulli (binary Concrete) samples ``sigmoid((logits + L) / tau)``.

    :func:`gumbel_softmax.relaxed_bernoulli` on tensors (``L`` standard logistic noise,
    elementwise; rows are all dimensions but the last): the reparameterized sample of
    ``torch.distributions.RelaxedBernoulli(tau, logits=logits).rsample()``, on our noise.

    Parameters
    ----------
    logits : torch.Tensor
        Log-odds, any shape (0-d included); dtypes as for :func:`gumbel_softmax`.
    tau : float or torch.Tensor
        Positive, finite temperature, or a tensor broadcasting to ``logits``' shape
        (it receives a gradient when it requires one).
    hard : bool
        Exactly 1.0 where ``logits + L > 0`` and 0.0 elsewhere, with the gradient of the
        soft sample (straight-through).
    generator : None, int, Philox, numpy.random.Generator or torch.Generator
        As for :func:`gumbel_softmax`.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``logits``; differentiable in ``logits`` and a tensor
        ``tau``: ``grad_logits = grad * y (1 - y) / tau``.

    Raises
    ------
    TypeError, ValueError, RuntimeError
        As :func:`gumbel_softmax`.

    Examples
    --------
    >>> import torch, gumbel_softmax as gs
    >>> from gumbel_softmax.torch import relaxed_bernoulli
    >>> x = torch.tensor([-1.0, 0.0, 2.0])
    >>> y = relaxed_bernoulli(x, tau=0.5, generator=4)
    >>> bool(((y > 0) & (y < 1)).all())
    True
    >>> torch.equal(relaxed_bernoulli(x, hard=True, generator=4),
    ...             (x + torch.from_numpy(gs.logistic(3, rng=4)) > 0).float())
    True
    """
    return _bernoulli(logits, tau, hard, generator)


def reinmax(
    logits: _torch.Tensor,
    tau: float = 1.0,
    *,
    dim: Axis = -1,
    generator: GeneratorLike = None,
) -> tuple[_torch.Tensor, _torch.Tensor]:
    """ReinMax (Liu et al., NeurIPS 2023): ``(y_hard, y_soft)`` like the reference
    package's ``reinmax(logits, tau)``.

    ``y_hard`` is a one-hot sample of ``softmax(logits)`` (bitwise ``gumbel_softmax(logits,
    tau, hard=True, dim=dim, generator=generator)``, whose argmax does not depend on
    tau) and ``y_soft = softmax(logits)``; the gradient with respect to ``logits`` is
    ``gs.reinmax_backward(grad_y_hard, logits, y_hard, tau, grad_p=grad_y_soft)``.
    ``tau >= 1`` (a float), as the estimator's authors recommend (ValueError below).
    Custom ops as :func:`gumbel_softmax`'s (``torch.compile`` without graph break for
    ``generator=None`` or an int seed, ``torch.func``, float16 and bfloat16); a gradient
    of the gradient raises ``RuntimeError``.

    Examples
    --------
    >>> import torch
    >>> from gumbel_softmax.torch import reinmax
    >>> x = torch.zeros(2, 3, requires_grad=True)
    >>> y_hard, y_soft = reinmax(x, 1.5, generator=0)
    >>> ((y_hard * torch.arange(3.0)).sum() + y_soft[:, 0].sum()).backward()
    >>> x.grad.shape
    torch.Size([2, 3])
    """
    return _est.reinmax(logits, tau, dim, generator)


def gumbel_rao(
    logits: _torch.Tensor,
    tau: float = 1.0,
    *,
    samples: int = 10,
    dim: Axis = -1,
    generator: GeneratorLike = None,
) -> _torch.Tensor:
    """The one-hot of ``gumbel_softmax(..., hard=True)`` with the Gumbel-Rao (GR-MCk)
    gradient (Paulus, Maddison & Krause, ICLR 2021).

    The forward is bitwise ``gumbel_softmax(logits, tau, hard=True, dim=dim,
    generator=generator)``; the gradient with respect to ``logits`` is
    ``gs.gumbel_rao_backward(grad_y, logits, y_hard, tau, samples=samples, axis=dim,
    rng=R)``, where ``R`` is fixed when the forward runs: for an int seed the stream rows
    after the forward's (``Philox(seed, counter=nrows)``); for a ``Philox`` its next
    ``samples * nrows`` rows (reserved at the forward); otherwise a second seed drawn
    from the generator, after the forward's (torch's default one for None: under
    ``torch.compile`` one op draws both).  A second backward of the same graph
    draws the same rows.  ``tau`` is a float.  Custom ops as :func:`reinmax`'s (under
    ``vmap(randomness="different")`` the batch is more rows of one call, draws included).

    Examples
    --------
    >>> import torch
    >>> from gumbel_softmax.torch import gumbel_rao
    >>> x = torch.zeros(4, 3, requires_grad=True)
    >>> y = gumbel_rao(x, 0.5, samples=20, generator=0)
    >>> (y * torch.arange(3.0)).sum().backward()
    >>> bool(torch.allclose(x.grad.sum(dim=-1), torch.zeros(4), atol=1e-6))
    True
    """
    return _est.gumbel_rao(logits, tau, samples, dim, generator)


def relaxed_top_k(
    logits: _torch.Tensor,
    k: int,
    tau: float | _torch.Tensor = 1.0,
    *,
    hard: bool | _torch.Tensor = False,
    dim: Axis = -1,
    generator: GeneratorLike = None,
) -> _torch.Tensor:
    """A relaxed k-subset (Xie & Ermon, IJCAI 2019): :func:`gumbel_softmax.relaxed_top_k`
    on tensors, differentiable in ``logits``.

    Bitwise ``gs.relaxed_top_k(logits.numpy(), k, tau, hard=hard, axis=dim, rng=<the same
    state>)`` (the noise and rows of :func:`gumbel_softmax`); ``hard=True`` gives the
    exact k-hot of :func:`top_k` from the same state with the relaxed sample's gradient
    (straight-through).  The gradient is ``gs.relaxed_top_k_backward``, which recomputes
    the ``k`` softmaxes from the forward's state (only ``logits`` is saved); a gradient
    of that gradient (a Hessian) raises ``RuntimeError``.  Custom ops as
    :func:`gumbel_softmax`'s: ``torch.compile`` (no graph break for ``generator=None`` or
    an int seed), ``torch.func`` (``grad``, ``vjp``, ``jacrev``, ``vmap``) and the
    generator semantics are the same.  No ``mask`` (use ``-inf`` logits).

    Parameters
    ----------
    logits, dim, generator
        As for :func:`gumbel_softmax`; ``-inf`` excludes a category.
    k : int
        ``1 <= k <= logits.shape[dim]``.
    tau : float or torch.Tensor
        Positive, finite; a tensor may hold one per row.  It gets no gradient (a tensor
        that requires one raises ``ValueError``).
    hard : bool
        Return the exact k-hot, with the relaxed sample's gradient.

    Returns
    -------
    torch.Tensor
        ``logits``' shape and dtype; rows sum to ``k``.

    Raises
    ------
    TypeError, ValueError, IndexError, RuntimeError
        As :func:`gumbel_softmax`, and for a bad ``k``.

    Examples
    --------
    >>> import torch, gumbel_softmax as gs
    >>> from gumbel_softmax.torch import relaxed_top_k
    >>> x = torch.tensor([[0.0, 1.0, 2.0, 3.0]], requires_grad=True)
    >>> y = relaxed_top_k(x, 2, tau=0.5, generator=0)
    >>> round(float(y.detach().sum()), 5)
    2.0
    >>> torch.equal(y.detach(), torch.from_numpy(
    ...     gs.relaxed_top_k(x.detach().numpy(), 2, 0.5, rng=0)))
    True
    >>> relaxed_top_k(x, 2, hard=True, generator=0).sum(dim=-1)
    tensor([2.], grad_fn=<SumBackward1>)
    """
    return _subset.relaxed_top_k(logits, k, tau, hard, dim, generator)
