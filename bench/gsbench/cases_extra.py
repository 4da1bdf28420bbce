"""The second section (``--suite extra``): the other samplers and options of the package
against the peers' nearest equivalents, and our options against our plain call."""

from __future__ import annotations

import math

import gumbel_softmax as gs
import numpy as np

from .cases_estimators import ESTIMATOR_CASES, ESTIMATOR_NOTE
from .cases_main import _ours_backward, _ours_forward, _ours_forward_backward, _tensor
from .cases_subset import SUBSET_CASES, SUBSET_K
from .core import TAU, Case

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


def _numpy_noisy(p, gen, out=None):
    """x + g with g = -log(-log u), in the logits' dtype, in place in ``out`` (allocated
    when None): the main section's strongest NumPy noise, with its log(0) hole (a draw
    u = 0 gives g = -inf)."""
    u = np.empty_like(p.x) if out is None else out
    gen.random(dtype=u.dtype, out=u)
    np.log(u, out=u)
    np.negative(u, out=u)
    np.log(u, out=u)
    return np.subtract(p.x, u, out=u)


def _numpy_categorical(p):
    gen, buf = np.random.default_rng(1), np.empty_like(p.x)
    return lambda: np.argmax(_numpy_noisy(p, gen, buf), axis=p.axis)


def _numpy_top_k(full_sort):
    def make(p):
        gen, k, buf = np.random.default_rng(1), _top_k(p), np.empty_like(p.x)

        def call():
            v = np.moveaxis(_numpy_noisy(p, gen, buf), p.axis, -1)
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
    gen, z, e = np.random.default_rng(1), np.empty_like(p.x), np.empty_like(p.x)
    shape = list(p.shape)
    shape[p.axis] = 1
    m, s = np.empty(shape, p.dtype), np.empty(shape, p.dtype)
    inv_tau = p.dtype.type(1.0 / TAU)

    def call():  # in place: z = (x + g) / tau - max, then z - log(sum(exp(z)))
        np.multiply(_numpy_noisy(p, gen, z), inv_tau, out=z)
        np.max(z, axis=p.axis, keepdims=True, out=m)
        np.subtract(z, m, out=z)
        np.exp(z, out=e)
        np.sum(e, axis=p.axis, keepdims=True, out=s)
        return np.subtract(z, np.log(s, out=s), out=z)

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
        gen, v, w = np.random.default_rng(1), np.empty_like(p.x), np.empty_like(p.x)
        b = np.empty(p.shape, bool)
        inv_tau = p.dtype.type(1.0 / TAU)

        def call():  # logistic noise log(u) - log1p(-u), in the logits' dtype, in place
            gen.random(dtype=v.dtype, out=v)
            np.negative(v, out=w)
            np.log1p(w, out=w)
            np.log(v, out=v)
            np.subtract(v, w, out=v)
            np.add(p.x, v, out=v)
            if hard:
                np.greater(v, 0, out=b)
                np.copyto(w, b)
                return w
            np.multiply(v, -inv_tau, out=v)
            np.exp(v, out=v)
            np.add(v, 1, out=v)
            return np.reciprocal(v, out=v)

        return call

    return make


def _numpy_bernoulli_backward(p):
    y, g, buf = _bernoulli_y_soft(p), p.grad_y, np.empty_like(p.x)
    inv_tau = p.dtype.type(1.0 / TAU)

    def call():  # g * y * (1 - y) / tau, in place
        np.subtract(1, y, out=buf)
        np.multiply(buf, y, out=buf)
        np.multiply(buf, g, out=buf)
        return np.multiply(buf, inv_tau, out=buf)

    return call


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
        "NumPy argmax(x + g), noise in place",
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
    # relaxed_top_k (issue 16): k softmaxes, against one soft forward
    *SUBSET_CASES,
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
        "NumPy sigmoid((x + logistic) / tau), in place",
        "numpy",
        _numpy_bernoulli(False),
        "ours.bernoulli",
    ),
    Case(
        "numpy.bernoulli_hard",
        "NumPy x + logistic > 0, in place",
        "numpy",
        _numpy_bernoulli(True),
        "ours.bernoulli_hard",
    ),
    Case(
        "numpy.bernoulli_backward",
        "NumPy g * y * (1 - y) / tau, in place",
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
    # the gradient estimators of issue 16 (cases_estimators.py)
    *ESTIMATOR_CASES,
)
EXTRA_NOTE = (
    "The NumPy rows draw their noise in the logits' dtype, in place on buffers allocated "
    "once (Gumbel: -log(-log u), logistic: log u - log1p(-u); the log(0) hole at u = 0). "
    "'vs' = row time / time of the row named. For a peer row, > 1: ours is faster. For our "
    "rows against our rows, it is the relative cost: 'hard=True vs categorical' > 1 means "
    "categorical is faster; mask=, per-row tau, float16/bfloat16 and the recomputing "
    "backward against the plain call > 1 is their overhead; these also show the ratio "
    "of the one-thread times. top_k uses k = "
    f"min({TOP_K}, K), relaxed_top_k k = min({SUBSET_K}, K) (its row against the soft "
    "forward: per step = vs / k); JAX's top_k returns (k, B). torch distributions are built inside "
    "the timed call (validate_args=False), as a user builds them. Our rows pass out= where "
    "the API takes one; categorical, top_k and concrete_log_prob allocate their (small) "
    "results. " + ESTIMATOR_NOTE
)
SECTIONS = ("main", "extra")
