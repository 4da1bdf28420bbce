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

from typing import TYPE_CHECKING, Union

try:
    import torch as _torch
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "gumbel_softmax.torch needs PyTorch: pip install 'gumbel-softmax[torch]' "
        "(for the CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    ) from exc

from . import _torch_estimators as _est  # reinmax's and gumbel_rao's ops
from . import _torch_subset as _subset  # relaxed_top_k's ops
from ._torch_common import _bernoulli, _gumbel_softmax, _indices, _sample

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
    ``tau >= 1`` (a float), as the estimator's authors recommend (ValueError below); a
    one-element tensor is taken as its value, but one that requires grad (with grad
    mode on) raises ValueError naming tau: the estimator has no gradient in tau.
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
    draws the same rows.  ``tau`` is a float (a one-element tensor that requires grad
    raises ValueError naming tau, as for :func:`reinmax`).  Custom ops as :func:`reinmax`'s (under
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
