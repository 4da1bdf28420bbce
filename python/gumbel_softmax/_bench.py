"""Benchmark suite: ``python -m gumbel_softmax bench`` or ``python bench/run.py``.

Times this library's kernels against the same computation composed from NumPy, PyTorch
and JAX (the peers that are installed), with ``np.copyto`` on the same array as the
memory-bandwidth bound, for several shapes and dtypes.  Prints a markdown table and saves
the raw timings with machine information as JSON (plus the table as ``.md`` and, when
matplotlib is installed, a PNG plot).  See ``bench/README.md`` for how to read it.

A second section (``--suite extra``) times the other functions and options of the package
(categorical, top_k, log_gumbel_softmax, concrete_log_prob, relaxed_bernoulli and its
backward, mask=, per-row tau, float16/bfloat16, the recomputing backward) against the
peers that compute the same thing, and our options against our plain call.

Every measurement is a median over repeats; a repeat times a loop of calls long enough
to be measured reliably, and reports the time per call.  The SIMD target is chosen by
``GUMBEL_SOFTMAX_TARGET`` before the package is imported.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import gumbel_softmax as gs

TAU = 0.5
DEFAULT_SHAPES = (
    ((64, 10), -1),
    ((256, 1000), -1),
    ((4096, 1000), -1),
    ((1024, 32000), -1),
    ((16384, 4096), -1),
    ((4, 1000000), -1),
    ((1000, 1000), 0),
)
QUICK_SKIPPED_SHAPES = {(16384, 4096)}
EXP_GOAL_SHAPE = (64, 10)  # the issue: our call on (64, 10) within 3x of one np.exp(x)
EXP_GOAL_RATIO = 3.0
NOT_INSTALLED = "not installed"


# ---------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class TimingConfig:
    """How long to time each case: see ``measure``."""

    min_time: float  # seconds that one timed loop of calls must at least last
    budget: float  # seconds of timed loops per case (sets the number of repeats)
    min_repeats: int
    max_repeats: int


FULL = TimingConfig(min_time=0.02, budget=0.4, min_repeats=3, max_repeats=15)
QUICK = TimingConfig(min_time=0.01, budget=0.1, min_repeats=2, max_repeats=5)


@dataclass
class Timing:
    per_call: float  # median over repeats, seconds per call
    samples: list  # seconds per call, one per repeat
    loops: int  # calls per timed loop


def _clock(fn: Callable[[], object], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return time.perf_counter() - t0


def _loops_for(fn: Callable[[], object], first: float, min_time: float) -> tuple:
    """(calls per timed loop so that a loop lasts >= min_time, estimated seconds per call)."""
    if first >= min_time:
        return 1, first
    n, t = 1, _clock(fn, 1)
    while t < min_time / 4 and n < 1 << 24:
        n *= 4
        t = _clock(fn, n)
    per_call = max(t / n, 1e-9)
    return max(1, math.ceil(min_time / per_call)), per_call


def measure(fn: Callable[[], object], cfg: TimingConfig) -> Timing:
    """One warm-up call, a calibration of the loop length, then the timed repeats."""
    first = _clock(fn, 1)  # warm-up: first touch of memory, JIT compilation, caches
    loops, per_call = _loops_for(fn, first, cfg.min_time)
    repeats = round(cfg.budget / (loops * per_call))
    repeats = min(max(repeats, cfg.min_repeats), cfg.max_repeats)
    samples = [_clock(fn, loops) / loops for _ in range(repeats)]
    return Timing(statistics.median(samples), samples, loops)


class _Threads:
    """Context manager: our kernels on ``n`` threads, back to OpenMP's setting on exit."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        gs.set_num_threads(self.n)

    def __exit__(self, *exc):
        gs.set_num_threads(0)


# ---------------------------------------------------------------------------------------
# The problems and the cases


@dataclass
class Problem:
    """One shape, axis and dtype with its inputs: logits, an incoming gradient and a
    relaxed sample for the backward pass."""

    shape: tuple
    axis: int
    dtype: np.dtype
    x: np.ndarray = field(repr=False)
    grad_y: np.ndarray = field(repr=False)
    y_soft: np.ndarray = field(repr=False)

    @classmethod
    def make(cls, shape, axis, dtype) -> Problem:
        gen = np.random.default_rng(0)
        x = gen.standard_normal(shape).astype(dtype)
        grad_y = gen.standard_normal(shape).astype(dtype)
        y_soft = gs.gumbel_softmax(x, TAU, axis=axis, rng=gs.Philox(0))
        return cls(tuple(shape), axis, np.dtype(dtype), x, grad_y, y_soft)

    @property
    def size(self) -> int:
        return int(self.x.size)

    @property
    def title(self) -> str:
        return f"{self.dtype.name} {self.shape} axis={self.axis}"


@dataclass(frozen=True)
class Case:
    key: str  # stable identifier, used in the JSON and for comparisons
    label: str  # text of the table row
    peer: str  # "ours", "numpy", "torch", "jax" or "bound"
    make: Callable[[Problem], Callable[[], object]]  # builds the call to time
    compare_to: str | None = None  # key of our case this row is compared with
    requires: str | None = None  # a module the row needs beyond its peer (ml_dtypes)

    @property
    def ours(self) -> bool:
        return self.peer == "ours"


# Ours: preallocated `out=` arrays wherever the API takes one, so allocation is excluded.


def _ours_forward(tau, hard=False, preallocate=True):
    def make(p):
        rng = gs.Philox(1)
        out = np.empty_like(p.x) if preallocate else None
        return lambda: gs.gumbel_softmax(p.x, tau, hard=hard, axis=p.axis, rng=rng, out=out)

    return make


def _ours_backward(p):
    out = np.empty_like(p.x)
    return lambda: gs.gumbel_softmax_backward(p.grad_y, p.y_soft, TAU, axis=p.axis, out=out)


def _ours_forward_backward(p):
    rng, y, grad = gs.Philox(1), np.empty_like(p.x), np.empty_like(p.x)

    def call():
        _, y_soft = gs.gumbel_softmax(
            p.x, TAU, hard=True, axis=p.axis, rng=rng, out=y, return_soft=True
        )
        return gs.gumbel_softmax_backward(p.grad_y, y_soft, TAU, axis=p.axis, out=grad)

    return call


def _ours_torch_forward_backward(p):
    """The PyTorch drop-in, used as torch.fwd_bwd uses F.gumbel_softmax."""
    from gumbel_softmax.torch import gumbel_softmax

    xt, w, rng = _tensor(p.x).requires_grad_(True), _tensor(p.grad_y), gs.Philox(1)

    def call():
        xt.grad = None
        (gumbel_softmax(xt, TAU, hard=True, dim=p.axis, generator=rng) * w).sum().backward()

    return call


def _ours_gumbel(p):
    rng, out = gs.Philox(1), np.empty_like(p.x)
    return lambda: gs.gumbel(p.shape, rng=rng, out=out)


# NumPy compositions, written as a NumPy user would.


def _np_softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _numpy_forward(p):
    gen = np.random.default_rng(1)
    return lambda: _np_softmax((p.x + gen.gumbel(size=p.shape).astype(p.dtype)) / TAU, p.axis)


def _numpy_backward(p):
    g, y = p.grad_y, p.y_soft
    return lambda: y * (g - (g * y).sum(axis=p.axis, keepdims=True)) / TAU


def _numpy_gumbel(p):
    gen = np.random.default_rng(1)
    return lambda: gen.gumbel(size=p.shape).astype(p.dtype)


# PyTorch (CPU, all cores; see _import_peer).


def _torch_forward(hard):
    def make(p):
        import torch.nn.functional as F

        xt = _tensor(p.x)
        return lambda: F.gumbel_softmax(xt, tau=TAU, hard=hard, dim=p.axis)

    return make


def _torch_backward(p):
    """Backward only: autograd.grad through softmax((x + g) / tau) with g drawn once."""
    import torch

    xt = _tensor(p.x).requires_grad_(True)
    g = -torch.empty_like(xt).exponential_().log()
    y = torch.softmax((xt + g) / TAU, dim=p.axis)
    w = _tensor(p.grad_y)
    return lambda: torch.autograd.grad(y, xt, grad_outputs=w, retain_graph=True)


def _torch_forward_backward(p):
    """F.gumbel_softmax(hard=True) (straight-through), then backward of sum(y * w)."""
    import torch.nn.functional as F

    xt, w = _tensor(p.x).requires_grad_(True), _tensor(p.grad_y)

    def call():
        xt.grad = None
        (F.gumbel_softmax(xt, tau=TAU, hard=True, dim=p.axis) * w).sum().backward()

    return call


def _torch_gumbel(p):
    """The noise as F.gumbel_softmax draws it: -log(Exponential(1))."""
    import torch

    xt = _tensor(p.x)
    return lambda: -torch.empty_like(xt).exponential_().log()


def _tensor(a):
    import torch

    return torch.from_numpy(a)


# JAX: jitted, one dispatch per call (the key is split inside), waited for.


def _jax_forward(p):
    import jax

    if p.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    axis, dtype = p.axis, p.dtype

    @jax.jit
    def step(x, key):
        key, sub = jax.random.split(key)
        g = jax.random.gumbel(sub, x.shape, dtype)
        return jax.nn.softmax((x + g) / TAU, axis=axis), key

    x, state = jax.device_put(p.x), [jax.random.PRNGKey(1)]

    def call():
        y, state[0] = step(x, state[0])
        y.block_until_ready()

    return call


# Reference points.


def _copy(p):
    dst = np.empty_like(p.x)
    return lambda: np.copyto(dst, p.x)


def _exp(p):
    return lambda: np.exp(p.x)


CASES = (
    Case("ours.soft", "ours soft, tau=0.5", "ours", _ours_forward(TAU)),
    Case("ours.soft_tau1", "ours soft, tau=1.0", "ours", _ours_forward(1.0)),
    Case(
        "ours.soft_alloc",
        "ours soft, tau=0.5, allocates y",
        "ours",
        _ours_forward(TAU, preallocate=False),
    ),
    Case("ours.hard", "ours hard=True", "ours", _ours_forward(TAU, hard=True)),
    Case("ours.backward", "ours backward", "ours", _ours_backward),
    Case("ours.fwd_bwd", "ours hard+return_soft, backward", "ours", _ours_forward_backward),
    Case(
        "ours.torch_fwd_bwd",
        "ours gumbel_softmax.torch hard fwd + .backward()",
        "ours",
        _ours_torch_forward_backward,
        "ours.fwd_bwd",
        requires="torch",
    ),
    Case("ours.gumbel", "ours gs.gumbel noise", "ours", _ours_gumbel),
    Case("numpy.soft", "NumPy rng.gumbel + softmax", "numpy", _numpy_forward, "ours.soft"),
    Case("numpy.backward", "NumPy backward formula", "numpy", _numpy_backward, "ours.backward"),
    Case("numpy.gumbel", "NumPy rng.gumbel().astype", "numpy", _numpy_gumbel, "ours.gumbel"),
    Case("torch.soft", "torch F.gumbel_softmax", "torch", _torch_forward(False), "ours.soft"),
    Case("torch.hard", "torch F.gumbel_softmax hard", "torch", _torch_forward(True), "ours.hard"),
    Case(
        "torch.backward",
        "torch autograd.grad of softmax",
        "torch",
        _torch_backward,
        "ours.backward",
    ),
    Case(
        "torch.fwd_bwd",
        "torch hard fwd + .backward()",
        "torch",
        _torch_forward_backward,
        "ours.fwd_bwd",
    ),
    Case("torch.gumbel", "torch -log(exponential_())", "torch", _torch_gumbel, "ours.gumbel"),
    Case("jax.soft", "JAX jit softmax(x + gumbel)", "jax", _jax_forward, "ours.soft"),
    Case("bound.exp", "np.exp(x), one call", "bound", _exp, "ours.soft_alloc"),
    Case("bound.copy", "np.copyto (bandwidth bound)", "bound", _copy, "ours.soft"),
)
PEER_NAMES = {"numpy": "NumPy", "torch": "torch", "jax": "JAX"}
OUT_NOTE = (
    "Our rows pass preallocated `out=` arrays (allocation excluded), except 'allocates y'; "
    "'hard+return_soft, backward' allocates only y_soft. The peers allocate their results as "
    "their APIs do. 'vs ours' = row time / time of the ours row named (> 1: ours is faster)."
)


# ---------------------------------------------------------------------------------------
# The second section, "beyond gumbel_softmax": the other samplers and options of the
# package (categorical, top_k, log_gumbel_softmax, concrete_log_prob, relaxed_bernoulli,
# mask=, per-row tau, float16/bfloat16, the memory-saving backward), each against the
# peers that have the same computation, and our options against our plain call.

EXTRA_SHAPES = (
    ((4096, 1000), -1),
    ((65536, 10), -1),
)
TOP_K = 10  # k of the top_k rows (min(TOP_K, K) on shorter rows)


def _top_k(p) -> int:
    return min(TOP_K, p.shape[p.axis])


def _batch_shape(p) -> tuple:
    return tuple(d for i, d in enumerate(p.shape) if i != p.axis % len(p.shape))


def _mask(p) -> np.ndarray:
    """A (K,) boolean mask (shaped to broadcast along the axis), about 90% True."""
    k = p.shape[p.axis]
    mask = np.random.default_rng(2).random(k) < 0.9
    mask[0] = True
    dims = [1] * len(p.shape)
    dims[p.axis] = k
    return mask.reshape(dims)


def _row_tau(p) -> np.ndarray:
    """One tau per row, in [0.3, 1)."""
    return np.random.default_rng(3).uniform(0.3, 1.0, _batch_shape(p)).astype(np.float64)


# Ours.


def _ours_categorical(p):
    rng = gs.Philox(1)
    return lambda: gs.categorical(p.x, axis=p.axis, rng=rng)


def _ours_top_k(p):
    rng, k = gs.Philox(1), _top_k(p)
    return lambda: gs.top_k(p.x, k, axis=p.axis, rng=rng)


def _ours_log_forward(p):
    rng, out = gs.Philox(1), np.empty_like(p.x)
    return lambda: gs.log_gumbel_softmax(p.x, TAU, axis=p.axis, rng=rng, out=out)


def _ours_concrete(log_space):
    def make(p):
        y = _log_y_soft(p) if log_space else p.y_soft
        return lambda: gs.concrete_log_prob(y, p.x, TAU, axis=p.axis, log_space=log_space)

    return make


def _log_y_soft(p):
    return gs.log_gumbel_softmax(p.x, TAU, axis=p.axis, rng=gs.Philox(0))


def _ours_bernoulli(hard):
    def make(p):
        rng, out = gs.Philox(1), np.empty_like(p.x)
        return lambda: gs.relaxed_bernoulli(p.x, TAU, hard=hard, rng=rng, out=out)

    return make


def _bernoulli_y_soft(p):
    return gs.relaxed_bernoulli(p.x, TAU, rng=gs.Philox(0))


def _ours_bernoulli_backward(p):
    y, out = _bernoulli_y_soft(p), np.empty_like(p.x)
    return lambda: gs.relaxed_bernoulli_backward(p.grad_y, y, TAU, out=out)


def _ours_masked(p):
    rng, out, mask = gs.Philox(1), np.empty_like(p.x), _mask(p)
    return lambda: gs.gumbel_softmax(p.x, TAU, axis=p.axis, rng=rng, out=out, mask=mask)


def _ours_row_tau(p):
    rng, out, tau = gs.Philox(1), np.empty_like(p.x), _row_tau(p)
    return lambda: gs.gumbel_softmax(p.x, tau, axis=p.axis, rng=rng, out=out)


def _ours_low_precision(dtype_name):
    def make(p):
        if dtype_name == "bfloat16":
            import ml_dtypes

            dtype = ml_dtypes.bfloat16
        else:
            dtype = np.dtype(dtype_name)
        x = p.x.astype(dtype)
        rng, out = gs.Philox(1), np.empty_like(x)
        return lambda: gs.gumbel_softmax(x, TAU, axis=p.axis, rng=rng, out=out)

    return make


def _ours_backward_recompute(p):
    """Memory-saving backward: y_soft recomputed from the logits and the forward's seed."""
    out = np.empty_like(p.x)
    return lambda: gs.gumbel_softmax_backward(
        p.grad_y, tau=TAU, axis=p.axis, out=out, logits=p.x, rng=1
    )


def _ours_forward_backward_recompute(p):
    """hard=True forward (no y_soft kept), then the backward recomputing y_soft."""
    y, grad = np.empty_like(p.x), np.empty_like(p.x)

    def call():
        gs.gumbel_softmax(p.x, TAU, hard=True, axis=p.axis, rng=1, out=y)
        return gs.gumbel_softmax_backward(
            p.grad_y, tau=TAU, axis=p.axis, out=grad, logits=p.x, rng=1
        )

    return call


# NumPy.


def _numpy_noisy(p, gen):
    return p.x + gen.gumbel(size=p.shape).astype(p.dtype)


def _numpy_categorical(p):
    gen = np.random.default_rng(1)
    return lambda: np.argmax(_numpy_noisy(p, gen), axis=p.axis)


def _numpy_top_k(full_sort):
    def make(p):
        gen, k = np.random.default_rng(1), _top_k(p)

        def call():
            v = np.moveaxis(_numpy_noisy(p, gen), p.axis, -1)
            if full_sort or k == v.shape[-1]:
                idx = np.argsort(-v, axis=-1, kind="stable")[..., :k]
            else:
                part = np.argpartition(-v, k - 1, axis=-1)[..., :k]
                order = np.argsort(-np.take_along_axis(v, part, -1), axis=-1, kind="stable")
                idx = np.take_along_axis(part, order, -1)
            return np.moveaxis(idx, -1, p.axis)

        return call

    return make


def _numpy_log_forward(p):
    gen = np.random.default_rng(1)

    def call():
        z = (_numpy_noisy(p, gen)) / TAU
        z = z - z.max(axis=p.axis, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=p.axis, keepdims=True))

    return call


def _numpy_concrete(p):
    y, x, axis, k = p.y_soft, p.x, p.axis, p.shape[p.axis]
    const = math.lgamma(k) + (k - 1) * math.log(TAU)

    def call():
        log_y = np.log(y)
        t = x - TAU * log_y
        m = t.max(axis=axis, keepdims=True)
        lse = np.log(np.exp(t - m).sum(axis=axis)) + np.squeeze(m, axis)
        return const + (t - log_y).sum(axis=axis) - k * lse

    return call


def _numpy_bernoulli(hard):
    def make(p):
        gen = np.random.default_rng(1)

        def call():
            v = p.x + gen.logistic(size=p.shape).astype(p.dtype)
            if hard:
                return (v > 0).astype(p.dtype)
            return 1.0 / (1.0 + np.exp(-v / TAU))

        return call

    return make


def _numpy_bernoulli_backward(p):
    y, g = _bernoulli_y_soft(p), p.grad_y
    return lambda: g * y * (1 - y) / TAU


# PyTorch.


def _last(t, axis):
    return t if axis in (-1, t.dim() - 1) else t.movedim(axis, -1)


def _torch_gumbel_noisy(xt):
    import torch

    return xt - torch.empty_like(xt).exponential_().log()


def _torch_temperature(p):
    import torch

    return torch.tensor(TAU, dtype=_tensor(p.x[:0]).dtype)


def _torch_categorical(p):
    from torch.distributions import Categorical

    xt = _last(_tensor(p.x), p.axis)
    return lambda: Categorical(logits=xt, validate_args=False).sample()


def _torch_categorical_argmax(p):
    xt = _tensor(p.x)
    return lambda: _torch_gumbel_noisy(xt).argmax(dim=p.axis)


def _torch_top_k(p):
    import torch

    xt, k = _tensor(p.x), _top_k(p)
    return lambda: torch.topk(_torch_gumbel_noisy(xt), k, dim=p.axis).indices


def _torch_log_forward(p):
    import torch

    xt = _tensor(p.x)
    return lambda: torch.log_softmax(_torch_gumbel_noisy(xt) / TAU, dim=p.axis)


def _torch_exp_relaxed(p):
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

    xt, tau = _last(_tensor(p.x), p.axis), _torch_temperature(p)
    return lambda: ExpRelaxedCategorical(tau, logits=xt, validate_args=False).rsample()


def _torch_concrete(log_space):
    def make(p):
        from torch.distributions import RelaxedOneHotCategorical
        from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

        dist = ExpRelaxedCategorical if log_space else RelaxedOneHotCategorical
        y = _log_y_soft(p) if log_space else p.y_soft
        xt, yt = _last(_tensor(p.x), p.axis), _last(_tensor(y), p.axis)
        tau = _torch_temperature(p)
        return lambda: dist(tau, logits=xt, validate_args=False).log_prob(yt)

    return make


def _torch_bernoulli(p):
    from torch.distributions import RelaxedBernoulli

    xt, tau = _tensor(p.x), _torch_temperature(p)
    return lambda: RelaxedBernoulli(tau, logits=xt, validate_args=False).rsample()


def _torch_bernoulli_backward(p):
    """Backward only: autograd.grad through RelaxedBernoulli.rsample() drawn once."""
    import torch
    from torch.distributions import RelaxedBernoulli

    xt = _tensor(p.x).requires_grad_(True)
    y = RelaxedBernoulli(_torch_temperature(p), logits=xt, validate_args=False).rsample()
    w = _tensor(p.grad_y)
    return lambda: torch.autograd.grad(y, xt, grad_outputs=w, retain_graph=True)


# JAX: one jitted call per draw (the key is split inside), waited for.


def _jax_call(body):
    """body(x, key, p) -> array, traced once per problem."""

    def make(p):
        import jax

        if p.dtype == np.float64:
            jax.config.update("jax_enable_x64", True)

        @jax.jit
        def step(x, key):
            key, sub = jax.random.split(key)
            return body(x, sub, p), key

        x, state = jax.device_put(p.x), [jax.random.PRNGKey(1)]

        def call():
            y, state[0] = step(x, state[0])
            y.block_until_ready()

        return call

    return make


def _jax_categorical_body(x, key, p):
    import jax

    return jax.random.categorical(key, x, axis=p.axis)


def _jax_top_k_body(x, key, p):
    """k draws without replacement: shape (k, *batch), k first (JAX's layout)."""
    import jax
    import jax.numpy as jnp

    x = jnp.moveaxis(x, p.axis, -1)
    return jax.random.categorical(key, x, axis=-1, shape=(_top_k(p),) + x.shape[:-1], replace=False)


def _jax_log_forward_body(x, key, p):
    import jax

    g = jax.random.gumbel(key, x.shape, p.dtype)
    return jax.nn.log_softmax((x + g) / TAU, axis=p.axis)


def _jax_bernoulli_body(x, key, p):
    import jax

    return jax.nn.sigmoid((x + jax.random.logistic(key, x.shape, p.dtype)) / TAU)


EXTRA_CASES = (
    # reference rows for the option rows below
    Case("ours.soft", "ours soft, tau=0.5", "ours", _ours_forward(TAU)),
    # categorical (Gumbel-max)
    Case("ours.categorical", "ours categorical", "ours", _ours_categorical),
    Case(
        "ours.hard",
        "ours gumbel_softmax hard=True, out=",
        "ours",
        _ours_forward(TAU, hard=True),
        "ours.categorical",
    ),
    Case(
        "numpy.categorical",
        "NumPy argmax(x + rng.gumbel)",
        "numpy",
        _numpy_categorical,
        "ours.categorical",
    ),
    Case(
        "torch.categorical",
        "torch Categorical(logits).sample()",
        "torch",
        _torch_categorical,
        "ours.categorical",
    ),
    Case(
        "torch.categorical_argmax",
        "torch argmax(x - log(exponential_()))",
        "torch",
        _torch_categorical_argmax,
        "ours.categorical",
    ),
    Case(
        "jax.categorical",
        "JAX jit random.categorical",
        "jax",
        _jax_call(_jax_categorical_body),
        "ours.categorical",
    ),
    # top_k (Gumbel-top-k: k draws without replacement)
    Case("ours.top_k", f"ours top_k, k={TOP_K}", "ours", _ours_top_k),
    Case(
        "numpy.top_k",
        "NumPy argpartition + sort of x + gumbel",
        "numpy",
        _numpy_top_k(False),
        "ours.top_k",
    ),
    Case(
        "numpy.top_k_argsort",
        "NumPy argsort(x + gumbel)[:k]",
        "numpy",
        _numpy_top_k(True),
        "ours.top_k",
    ),
    Case("torch.top_k", "torch topk(x + gumbel, k)", "torch", _torch_top_k, "ours.top_k"),
    Case(
        "jax.top_k",
        "JAX jit categorical(shape=(k, B), replace=False)",
        "jax",
        _jax_call(_jax_top_k_body),
        "ours.top_k",
    ),
    # log_gumbel_softmax
    Case("ours.log_soft", "ours log_gumbel_softmax, out=", "ours", _ours_log_forward),
    Case(
        "numpy.log_soft",
        "NumPy log_softmax((x + g) / tau)",
        "numpy",
        _numpy_log_forward,
        "ours.log_soft",
    ),
    Case(
        "torch.log_soft",
        "torch log_softmax((x + g) / tau)",
        "torch",
        _torch_log_forward,
        "ours.log_soft",
    ),
    Case(
        "torch.exp_relaxed",
        "torch ExpRelaxedCategorical.rsample()",
        "torch",
        _torch_exp_relaxed,
        "ours.log_soft",
    ),
    Case(
        "jax.log_soft",
        "JAX jit log_softmax((x + gumbel) / tau)",
        "jax",
        _jax_call(_jax_log_forward_body),
        "ours.log_soft",
    ),
    # concrete_log_prob
    Case("ours.concrete", "ours concrete_log_prob(y)", "ours", _ours_concrete(False)),
    Case(
        "ours.concrete_log",
        "ours concrete_log_prob(log y, log_space=True)",
        "ours",
        _ours_concrete(True),
    ),
    Case(
        "numpy.concrete",
        "NumPy Concrete log-density formula",
        "numpy",
        _numpy_concrete,
        "ours.concrete",
    ),
    Case(
        "torch.concrete",
        "torch RelaxedOneHotCategorical.log_prob",
        "torch",
        _torch_concrete(False),
        "ours.concrete",
    ),
    Case(
        "torch.concrete_log",
        "torch ExpRelaxedCategorical.log_prob",
        "torch",
        _torch_concrete(True),
        "ours.concrete_log",
    ),
    # relaxed_bernoulli
    Case("ours.bernoulli", "ours relaxed_bernoulli, out=", "ours", _ours_bernoulli(False)),
    Case(
        "ours.bernoulli_hard",
        "ours relaxed_bernoulli hard=True, out=",
        "ours",
        _ours_bernoulli(True),
    ),
    Case(
        "ours.bernoulli_backward",
        "ours relaxed_bernoulli_backward, out=",
        "ours",
        _ours_bernoulli_backward,
    ),
    Case(
        "numpy.bernoulli",
        "NumPy sigmoid((x + rng.logistic) / tau)",
        "numpy",
        _numpy_bernoulli(False),
        "ours.bernoulli",
    ),
    Case(
        "numpy.bernoulli_hard",
        "NumPy x + rng.logistic > 0",
        "numpy",
        _numpy_bernoulli(True),
        "ours.bernoulli_hard",
    ),
    Case(
        "numpy.bernoulli_backward",
        "NumPy g * y * (1 - y) / tau",
        "numpy",
        _numpy_bernoulli_backward,
        "ours.bernoulli_backward",
    ),
    Case(
        "torch.bernoulli",
        "torch RelaxedBernoulli.rsample()",
        "torch",
        _torch_bernoulli,
        "ours.bernoulli",
    ),
    Case(
        "torch.bernoulli_backward",
        "torch autograd.grad of RelaxedBernoulli",
        "torch",
        _torch_bernoulli_backward,
        "ours.bernoulli_backward",
    ),
    Case(
        "jax.bernoulli",
        "JAX jit sigmoid((x + logistic) / tau)",
        "jax",
        _jax_call(_jax_bernoulli_body),
        "ours.bernoulli",
    ),
    # options of gumbel_softmax, against the plain call (ratio = the option's cost)
    Case("ours.soft_mask", "ours soft, mask= (K,) bool", "ours", _ours_masked, "ours.soft"),
    Case("ours.soft_row_tau", "ours soft, per-row tau array", "ours", _ours_row_tau, "ours.soft"),
    Case(
        "ours.soft_float16",
        "ours soft, float16 in and out",
        "ours",
        _ours_low_precision("float16"),
        "ours.soft",
    ),
    Case(
        "ours.soft_bfloat16",
        "ours soft, bfloat16 in and out",
        "ours",
        _ours_low_precision("bfloat16"),
        "ours.soft",
        requires="ml_dtypes",
    ),
    # memory-saving backward
    Case("ours.backward", "ours backward, stored y_soft", "ours", _ours_backward),
    Case(
        "ours.backward_recompute",
        "ours backward, recomputed (logits=, rng=)",
        "ours",
        _ours_backward_recompute,
        "ours.backward",
    ),
    Case("ours.fwd_bwd", "ours hard+return_soft, stored backward", "ours", _ours_forward_backward),
    Case(
        "ours.fwd_bwd_recompute",
        "ours hard, recomputing backward",
        "ours",
        _ours_forward_backward_recompute,
        "ours.fwd_bwd",
    ),
)
EXTRA_NOTE = (
    "'vs' = row time / time of the row named. For a peer row, > 1: ours is faster. For our "
    "rows against our rows, it is the relative cost: 'hard=True vs categorical' > 1 means "
    "categorical is faster; mask=, per-row tau, float16/bfloat16 and the recomputing "
    "backward against the plain call > 1 is their overhead; these also show the ratio "
    "of the one-thread times. top_k uses k = "
    f"min({TOP_K}, K); JAX's top_k returns (k, B). torch distributions are built inside "
    "the timed call (validate_args=False), as a user builds them. Our rows pass out= where "
    "the API takes one; categorical, top_k and concrete_log_prob allocate their (small) "
    "results."
)
SECTIONS = ("main", "extra")

# ---------------------------------------------------------------------------------------
# Peers


def _all_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_peer_status: dict = {}


def _import_peer(peer: str) -> str | None:
    """None when the peer can be used, else why not ("not installed", ...)."""
    if peer in ("ours", "numpy", "bound"):
        return None
    if peer not in _peer_status:
        try:
            if peer == "torch":
                import torch

                torch.set_num_threads(_all_cores())
            elif peer == "jax":
                import jax  # noqa: F401
            _peer_status[peer] = None
        except ImportError:
            _peer_status[peer] = NOT_INSTALLED
        except Exception as exc:  # a broken install: report it, never crash
            _peer_status[peer] = f"import failed: {type(exc).__name__}: {exc}"
    return _peer_status[peer]


def _import_module(name: str | None) -> str | None:
    """None when the module a row requires imports (or none is required), else why not."""
    if name is None:
        return None
    key = f"module:{name}"
    if key not in _peer_status:
        try:
            __import__(name)
            _peer_status[key] = None
        except ImportError:
            _peer_status[key] = NOT_INSTALLED
        except Exception as exc:
            _peer_status[key] = f"import failed: {type(exc).__name__}: {exc}"
    return _peer_status[key]


def _versions() -> dict:
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gumbel_softmax": getattr(gs, "__version__", "?"),
    }
    for peer in ("torch", "jax", "matplotlib", "ml_dtypes"):
        try:
            versions[peer] = __import__(peer).__version__
        except ImportError:
            versions[peer] = NOT_INSTALLED
        except Exception as exc:
            versions[peer] = f"import failed: {type(exc).__name__}"
    return versions


# ---------------------------------------------------------------------------------------
# Running


def _load_average() -> list | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def warm_up(seconds: float = 0.3) -> None:
    """Start the OpenMP thread pool and let the CPU clock settle before the first timing."""
    x = np.zeros((256, 1000), np.float32)
    out, rng = np.empty_like(x), gs.Philox(0)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        gs.gumbel_softmax(x, TAU, rng=rng, out=out)


def _timing_record(t: Timing, size: int) -> dict:
    return {
        "per_call_s": t.per_call,
        "samples_s": t.samples,
        "loops": t.loops,
        "repeats": len(t.samples),
        "melem_per_s": size / t.per_call / 1e6,
    }


def run_case(case: Case, p: Problem, cfg: TimingConfig) -> dict:
    """Time one case on one problem (ours also on one thread); never raises."""
    record = {
        "key": case.key,
        "label": case.label,
        "peer": case.peer,
        "compare_to": case.compare_to,
        "status": _import_peer(case.peer) or _import_module(case.requires),
    }
    if record["status"] is not None:
        return record
    fn = None
    try:
        fn = case.make(p)
        record.update(_timing_record(measure(fn, cfg), p.size))
        record["threads"] = gs.get_num_threads() if case.ours else None
        if case.ours:
            with _Threads(1):
                record["one_thread"] = _timing_record(measure(fn, cfg), p.size)
        record["status"] = "ok"
    except Exception as exc:  # e.g. MemoryError on a big shape: report and go on
        record["status"] = f"error: {type(exc).__name__}: {exc}"
    finally:
        fn = None
        gc.collect()
    return record


def _add_ratios(records: list) -> None:
    by_key = {r["key"]: r for r in records}
    for r in records:
        base = by_key.get(r["compare_to"] or "")
        if r["status"] == "ok" and base and base["status"] == "ok":
            r["vs_ours"] = r["per_call_s"] / base["per_call_s"]
            if r.get("one_thread") and base.get("one_thread"):  # ours against ours
                r["vs_ours_one_thread"] = (
                    r["one_thread"]["per_call_s"] / base["one_thread"]["per_call_s"]
                )
        if r.get("one_thread"):
            r["thread_speedup"] = r["one_thread"]["per_call_s"] / r["per_call_s"]


def run_problem(
    p: Problem,
    cfg: TimingConfig,
    progress: Callable[[str], None],
    cases: tuple = CASES,
    section: str = "main",
) -> dict:
    records = []
    for case in cases:
        progress(f"{section}: {p.title}: {case.label}")
        records.append(run_case(case, p, cfg))
    _add_ratios(records)
    return {
        "dtype": p.dtype.name,
        "shape": list(p.shape),
        "axis": p.axis,
        "size": p.size,
        "section": section,
        "cases": records,
    }


# ---------------------------------------------------------------------------------------
# Reporting


def fmt_time(s: float | None) -> str:
    if s is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt_rate(melem_per_s: float) -> str:
    return f"{melem_per_s:,.0f}" if melem_per_s >= 100 else f"{melem_per_s:.3g}"


def _fmt_ratio(r: float | None) -> str:
    return "" if r is None else f"{r:.2f}x"


def _row(r: dict, labels: dict) -> list:
    if r["status"] != "ok":
        return [r["label"], r["status"], "", "", "", ""]
    one = r.get("one_thread") or {}
    vs = r.get("vs_ours")
    vs_text = f"{vs:.2f}x ({labels[r['compare_to']]})" if vs is not None else ""
    return [
        r["label"],
        fmt_time(r["per_call_s"]),
        _fmt_rate(r["melem_per_s"]),
        fmt_time(one.get("per_call_s")),
        _fmt_ratio(r.get("thread_speedup")),
        vs_text,
    ]


def _markdown_table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def problem_markdown(result: dict, threads: int) -> list:
    extra = result.get("section") == "extra"
    labels = {c.key: c.label for c in (EXTRA_CASES if extra else CASES)}
    shape = tuple(result["shape"])
    lines = [
        f"### {'beyond gumbel_softmax: ' if extra else ''}{result['dtype']} {shape}, "
        f"axis={result['axis']} ({result['size']:,} elements)",
        "",
    ]
    header = [
        "case",
        "time/call",
        "M elem/s",
        "1 thread",
        f"{threads} vs 1 thread",
        "vs (time / time of the row named)" if extra else "vs ours (> 1: ours faster)",
    ]
    lines += _markdown_table(header, [_row(r, labels) for r in result["cases"]])
    notes = [] if extra else problem_notes(result)
    lines += [""] + [f"- {s}" for s in notes] + ([""] if notes else [])
    return lines


def _case(result: dict, key: str) -> dict | None:
    r = next((r for r in result["cases"] if r["key"] == key), None)
    return r if r and r["status"] == "ok" else None


def problem_notes(result: dict) -> list:
    notes = []
    soft, copy = _case(result, "ours.soft"), _case(result, "bound.copy")
    if soft and copy:
        itemsize = np.dtype(result["dtype"]).itemsize
        gbs = 2 * result["size"] * itemsize / copy["per_call_s"] / 1e9
        notes.append(
            f"ours soft forward takes {1 / copy['vs_ours']:.1f}x the time of "
            f"np.copyto on the same array ({gbs:.1f} GB/s read+write)"
        )
    dropin, torch_fb = _case(result, "ours.torch_fwd_bwd"), _case(result, "torch.fwd_bwd")
    if dropin and torch_fb:
        notes.append(
            f"PyTorch drop-in, hard forward + .backward(): "
            f"{torch_fb['per_call_s'] / dropin['per_call_s']:.1f}x faster than "
            f"F.gumbel_softmax's, {dropin['vs_ours']:.2f}x the time of our NumPy "
            f"API's forward + backward"
        )
    alloc, exp = _case(result, "ours.soft_alloc"), _case(result, "bound.exp")
    if tuple(result["shape"]) == EXP_GOAL_SHAPE and alloc and exp:
        ratio = alloc["per_call_s"] / exp["per_call_s"]
        ratio_out = soft["per_call_s"] / exp["per_call_s"] if soft else float("nan")
        verdict = "met" if ratio <= EXP_GOAL_RATIO else "NOT met"
        notes.append(
            f"goal: ours within {EXP_GOAL_RATIO:g}x of one np.exp(x) call: "
            f"{ratio:.2f}x allocating y like np.exp, {ratio_out:.2f}x with out= "
            f"-> {verdict}"
        )
    return notes


def summary_markdown(results: list, threads: int) -> list:
    peers = list(PEER_NAMES)
    header = ["dtype", "shape", "axis", "ours soft", "M elem/s"]
    header += [f"{PEER_NAMES[p]} / ours" for p in peers]
    header += ["torch fwd+bwd / drop-in", f"ours {threads} vs 1 thread", "ours / np.copyto"]
    rows = []
    for res in results:
        soft = _case(res, "ours.soft")
        row = [
            res["dtype"],
            str(tuple(res["shape"])),
            str(res["axis"]),
            fmt_time(soft and soft["per_call_s"]),
            _fmt_rate(soft["melem_per_s"]) if soft else "",
        ]
        for peer in peers:
            r = next(r for r in res["cases"] if r["key"] == f"{peer}.soft")
            row.append(_fmt_ratio(r.get("vs_ours")) or r["status"])
        dropin, torch_fb = _case(res, "ours.torch_fwd_bwd"), _case(res, "torch.fwd_bwd")
        row.append(
            _fmt_ratio(torch_fb["per_call_s"] / dropin["per_call_s"]) if dropin and torch_fb else ""
        )
        copy = _case(res, "bound.copy")
        row.append(_fmt_ratio(soft and soft.get("thread_speedup")))
        row.append(_fmt_ratio(copy and 1 / copy["vs_ours"]))
        rows.append(row)
    return _markdown_table(header, rows)


def extra_summary_markdown(results: list) -> list:
    """One line per compared row of the extra section, one column per problem:
    the row's time / the time of the row it is compared with."""
    header = ["row / row compared with"]
    header += [
        f"{r['dtype']} {tuple(r['shape'])}" + (f" axis={r['axis']}" if r["axis"] != -1 else "")
        for r in results
    ]
    labels = {c.key: c.label for c in EXTRA_CASES}
    rows = []
    for case in EXTRA_CASES:
        if case.compare_to is None:
            continue
        row = [f"{case.label} / {labels[case.compare_to]}"]
        for res in results:
            r = next((r for r in res["cases"] if r["key"] == case.key), None)
            if r is None:
                row.append("")
            elif r.get("vs_ours") is None:
                row.append(r["status"] if r["status"] != "ok" else "base failed")
            elif r.get("vs_ours_one_thread") is not None:
                row.append(
                    f"{_fmt_ratio(r['vs_ours'])} (1 thread: {_fmt_ratio(r['vs_ours_one_thread'])})"
                )
            else:
                row.append(_fmt_ratio(r["vs_ours"]))
        rows.append(row)
    return _markdown_table(header, rows)


def report_markdown(report: dict) -> str:
    m = report["machine"]
    threads = m["gs_num_threads"]
    lines = [
        f"## gumbel_softmax benchmark, {report['date']}",
        "",
        f"{m['cpu_model']}, {m['cores']} cores, target `{m['cpu_target']}` "
        f"(compiled and supported: {', '.join(m['cpu_targets'])}), {threads} threads; "
        f"NumPy {m['versions']['numpy']}, torch {m['versions']['torch']}, "
        f"JAX {m['versions']['jax']}. Mode: {report['mode']}; median over repeats, each "
        f"repeat a loop of calls lasting >= {report['config']['min_time'] * 1e3:g} ms. "
        f"Load average (1, 5, 15 min) at start {report['load_average_start']}, at end "
        f"{report['load_average_end']}: other processes on the machine make timings noisy.",
        "",
    ]
    if report["results"]:
        lines += ["Soft forward (tau=0.5), peer time / our time (> 1: ours is faster):", ""]
        lines += summary_markdown(report["results"], threads)
        lines += ["", OUT_NOTE, ""]
        for res in report["results"]:
            lines += problem_markdown(res, threads)
    extra = report.get("extra_results") or []
    if extra:
        lines += [
            "## Beyond gumbel_softmax: categorical, top_k, log space, Concrete density, "
            "relaxed Bernoulli, options",
            "",
            "Time of each row / time of the row it is compared with (for peers: "
            "> 1 means ours is faster):",
            "",
        ]
        lines += extra_summary_markdown(extra)
        lines += ["", EXTRA_NOTE, ""]
        for res in extra:
            lines += problem_markdown(res, threads)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Machine information and files


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": _all_cores(),
        "os_cpu_count": os.cpu_count(),
        "cpu_target": gs.cpu_target(),
        "cpu_targets": list(gs.cpu_targets()),
        "gs_num_threads": gs.get_num_threads(),
        "env": {k: os.environ.get(k) for k in ("GUMBEL_SOFTMAX_TARGET", "OMP_NUM_THREADS")},
        "versions": _versions(),
    }


def default_out_dir(cwd: Path) -> Path:
    """bench/results when run from the repository root (or from bench/), else the cwd."""
    if (cwd / "bench").is_dir():
        return cwd / "bench" / "results"
    if cwd.name == "bench" and (cwd / "run.py").is_file():
        return cwd / "results"
    return cwd


def save(report: dict, markdown: str, out_dir: Path) -> list:
    """Write <date>-<target>[-quick].json, .md and (with matplotlib) .png; return notes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report['date'][:10]}-{report['machine']['cpu_target']}"
    suites = report.get("suites", list(SECTIONS))
    stem += "" if len(suites) != 1 else f"-{suites[0]}"
    stem += "-quick" if report["mode"] == "quick" else ""
    base = out_dir / stem
    base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    base.with_suffix(".md").write_text(markdown + "\n")
    notes = [f"saved {base.with_suffix('.json')}", f"saved {base.with_suffix('.md')}"]
    if report["results"]:
        notes.append(plot(report, base.with_suffix(".png")))
    return notes


def plot(report: dict, path: Path) -> str:
    """Soft-forward throughput per shape, one bar per implementation; log scale."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed, no plot"
    bars = {
        "ours.soft": "ours",
        "numpy.soft": "NumPy",
        "torch.soft": "torch",
        "jax.soft": "JAX",
        "bound.copy": "np.copyto",
    }
    bars = {
        k: v for k, v in bars.items() if any(_case(r, k) for r in report["results"])
    }  # drop peers not installed
    keys, names = list(bars), list(bars.values())
    dtypes = sorted({r["dtype"] for r in report["results"]})
    fig, axes = plt.subplots(len(dtypes), 1, figsize=(11, 4.5 * len(dtypes)), squeeze=False)
    for ax, dtype in zip(axes[:, 0], dtypes):
        results = [r for r in report["results"] if r["dtype"] == dtype]
        width = 0.8 / len(keys)
        for i, (key, name) in enumerate(zip(keys, names)):
            values = [(_case(r, key) or {}).get("melem_per_s", 0.0) for r in results]
            xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(results))]
            ax.bar(xs, values, width, label=name)
        ax.set_xticks(range(len(results)))
        ax.set_xticklabels([f"{tuple(r['shape'])}\naxis={r['axis']}" for r in results], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("million elements / s")
        ax.set_title(f"soft forward, tau={TAU}, {dtype}, target {report['machine']['cpu_target']}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"saved {path}"


# ---------------------------------------------------------------------------------------
# Command line


def parse_shapes(text: str) -> list:
    """'4096x1000,64x10,1000x1000:0' -> [((4096, 1000), -1), ((64, 10), -1), ((1000, 1000), 0)]."""
    shapes = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        dims, _, axis = item.partition(":")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
            axis = int(axis) if axis else -1
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad shape {item!r}: use e.g. 4096x1000 or 1000x1000:0 (axis after the colon)"
            ) from None
        if any(d <= 0 for d in shape) or not -len(shape) <= axis < len(shape):
            raise argparse.ArgumentTypeError(f"bad shape or axis {item!r}")
        shapes.append((shape, axis))
    if not shapes:
        raise argparse.ArgumentTypeError("no shape given")
    return shapes


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gumbel_softmax bench",
        description="Time gumbel_softmax against NumPy, PyTorch and JAX compositions "
        "(those installed) and np.copyto; print a markdown table and save JSON + markdown "
        "(+ PNG with matplotlib). Set GUMBEL_SOFTMAX_TARGET to pick the SIMD target.",
    )
    parser.add_argument(
        "--suite",
        choices=["all", *SECTIONS],
        default="all",
        help="'main': gumbel_softmax against the peers; 'extra': categorical, "
        "top_k, log_gumbel_softmax, concrete_log_prob, relaxed_bernoulli, "
        "mask=, per-row tau, float16/bfloat16, recomputing backward; "
        "'all' (default): both",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer repeats, skip {sorted(QUICK_SKIPPED_SHAPES)} (~2 min, "
        "+ ~1 min for the extra section)",
    )
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="float32")
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=None,
        help="comma-separated, e.g. 4096x1000,64x10,1000x1000:0 "
        "(':0' = softmax over axis 0; default: the built-in lists); "
        "replaces the shapes of every section run",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to save results (default: bench/results when run from "
        "the repository root, else the current directory)",
    )
    parser.add_argument("--no-save", action="store_true", help="only print the table")
    return parser.parse_args(argv)


def _progress(enabled: bool) -> Callable[[str], None]:
    tty = sys.stderr.isatty()
    start = time.perf_counter()

    def show(text: str) -> None:
        if not enabled:
            return
        line = f"[{time.perf_counter() - start:6.1f} s] {text}"
        if tty:
            print(f"\r\033[K{line[:110]}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quick = args.quick
    cfg = QUICK if quick else FULL
    suites = list(SECTIONS) if args.suite == "all" else [args.suite]
    shapes = args.shapes or [
        (s, a) for s, a in DEFAULT_SHAPES if not (quick and s in QUICK_SKIPPED_SHAPES)
    ]
    extra_shapes = args.shapes or list(EXTRA_SHAPES)
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable] + sys.argv),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "mode": "quick" if quick else "full",
        "suites": suites,
        "config": {**vars(cfg), "tau": TAU},
        "machine": machine_info(),
        "load_average_start": _load_average(),
        "notes": OUT_NOTE,
        "extra_notes": EXTRA_NOTE,
        "results": [],
        "extra_results": [],
    }
    progress = _progress(True)
    start = time.perf_counter()
    warm_up()
    plan = [
        ("main", CASES, shapes, report["results"]),
        ("extra", EXTRA_CASES, extra_shapes, report["extra_results"]),
    ]
    for section, cases, section_shapes, results in plan:
        if section not in suites:
            continue
        for dtype in dtypes:
            for shape, axis in section_shapes:
                problem = Problem.make(shape, axis, dtype)
                results.append(run_problem(problem, cfg, progress, cases, section))
                del problem
                gc.collect()
    report["elapsed_s"] = time.perf_counter() - start
    report["load_average_end"] = _load_average()
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    markdown = report_markdown(report)
    print(markdown)
    count = len(report["results"]) + len(report["extra_results"])
    print(f"\n{count} problem(s) in {report['elapsed_s']:.0f} s")
    if not args.no_save:
        out_dir = args.out_dir or default_out_dir(Path.cwd())
        for note in save(report, markdown, out_dir):
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
