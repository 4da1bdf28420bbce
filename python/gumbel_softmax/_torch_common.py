"""The machinery of ``gumbel_softmax.torch`` behind its public functions: argument checks
(torch's exceptions, validated in full before anything is drawn), the generator
semantics (``_draw``, ``_state``, ``_run``: eager, ``torch.compile`` and ``torch.func``
paths, a failed call puts the caller's generator back) and the samplers' shared bodies
(``_sample``, ``_bernoulli``, ``_indices``).  The choices are documented in the module
docstring of :mod:`gumbel_softmax.torch`; ``_torch_estimators`` and ``_torch_subset``
use the same machinery.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch as _torch

from . import _args
from . import _torch_bernoulli as _bern  # the relaxed Bernoulli ops
from . import _torch_ops as _ops  # registers the custom ops (torch.ops.gumbel_softmax)

_DTYPES = (_torch.float32, _torch.float64, _torch.float16, _torch.bfloat16)
_MAX_DIMS = 64  # the kernels' limit (and NumPy's); torch allows more
_MAX_ROW = _args.MAX_ROW  # the kernels index a row's elements in 32-bit lanes
_AxisError = _args.AxisError
_functorch = _torch._C._functorch
_VMAP = _functorch.TransformType.Vmap
_ERROR = _functorch.RandomnessType.Error

_TRACING = (
    "the samplers of gumbel_softmax.torch cannot be traced by torch.jit.trace: the trace "
    "would hold the noise's seed as a constant, so every call of the traced function would "
    "draw the same noise. Call it outside the traced code (or use "
    "torch.nn.functional.gumbel_softmax there); torch.compile is supported"
)
_RECOMPUTE = (
    "a sampler of gumbel_softmax.torch was called during a backward pass (torch.utils."
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
        generator, _args.NON_NUMBERS
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


def _requires_grad(t, assume=True):
    """t requires grad, seen through torch.func's wrappers: under vmap a batched tensor
    reports False although the tensor it wraps requires grad (a hard sample computed
    without its soft one then had a zero gradient).  While torch.compile traces, whose
    tensors under a traced vmap report False too and which cannot trace the unwrapping:
    `assume` for any tensor (True for the soft sample, then computed whenever grad mode
    is on; False for a refusal)."""
    if t is None or t.requires_grad:
        return t is not None
    if _torch.compiler.is_compiling():
        return assume
    return _plain(t).requires_grad


def _refuse_tau_grad(tau_t, fn):
    """ValueError naming tau when `fn`, which has no gradient in tau, gets a tau that
    would be trained (requires grad, grad mode on; under vmap too)."""
    if _requires_grad(tau_t, assume=False) and _torch.is_grad_enabled():
        raise ValueError(
            f"tau: {fn} has no gradient with respect to tau; pass tau.detach() (or a float)"
        )


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
    if isinstance(dim, _args.NON_NUMBERS) or not isinstance(dim, (numbers.Integral, np.integer)):
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
        # (an int seed out of range: ValueError "generator: seed must be ...")
        return _args.as_rng(generator, "generator"), None
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
        _torch.is_grad_enabled() and (_requires_grad(logits) or _requires_grad(tau_t))
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
        _torch.is_grad_enabled() and (_requires_grad(logits) or _requires_grad(tau_t))
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
        if isinstance(k, _args.NON_NUMBERS) or not isinstance(k, (numbers.Integral, np.integer)):
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
