"""gumbel_softmax.torch beyond the drop-in: categorical, top_k, log_gumbel_softmax,
relaxed_bernoulli.

- bitwise the NumPy API's result from the same state (float32, float64, float16,
  bfloat16, mask=, strided views);
- against torch on the same noise ``g`` (``gumbel_softmax.gumbel``): ``categorical`` is
  the argmax of the hard sample and of ``logits + g``, ``top_k`` is ``torch.topk(logits
  + g, k).indices``, ``log_gumbel_softmax`` is ``torch.log_softmax((logits + g) / tau)``
  with its gradients (logits and a per-row tau: gradcheck, gradgradcheck), and
  ``relaxed_bernoulli`` is ``torch.distributions.RelaxedBernoulli``'s reparameterized
  sample ``sigmoid((logits + L) / tau)`` on our logistic noise ``L``, with its gradients;
- in distribution: categorical against ``torch.distributions.Categorical``, a
  chi-square test of homogeneity at a 1e-4 false-alarm rate (fixed seeds);
- under ``torch.compile(fullgraph=True)`` (no graph break, compiled = eager) and
  ``vmap`` (each randomness mode); errors name the argument and draw nothing.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
stats = pytest.importorskip("scipy.stats", reason="scipy is not installed")

import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import (  # noqa: E402
    categorical,
    gumbel_softmax,
    log_gumbel_softmax,
    relaxed_bernoulli,
    top_k,
)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _np(t):
    """The NumPy array of the same values (ml_dtypes for bfloat16)."""
    if t.dtype == torch.bfloat16:
        ml_dtypes = pytest.importorskip("ml_dtypes")
        bits = t.detach().contiguous().view(torch.int16).numpy().view(np.uint16)
        return bits.view(ml_dtypes.bfloat16)
    return t.detach().numpy()


def _logits(shape, dtype=torch.float64, seed=1):
    return (2 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))).to(dtype)


def _noise(shape, seed):
    return torch.from_numpy(gs.gumbel(shape, dtype=np.float64, rng=gs.Philox(seed)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,dim", [((7, 9), -1), ((9, 7), 0), ((3, 4, 40), 2)])
def test_bitwise_the_numpy_api(dtype, shape, dim):
    x = _logits(shape, dtype)
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(2)) > 0.2
    for kw in ({}, {"mask": mask}):
        m = {"mask": kw["mask"].numpy()} if kw else {}
        assert np.array_equal(
            categorical(x, dim, 3, **kw).numpy(), gs.categorical(_np(x), axis=dim, rng=3, **m)
        )
        assert np.array_equal(
            top_k(x, 4, dim, 3, **kw).numpy(), gs.top_k(_np(x), 4, axis=dim, rng=3, **m)
        )
        y = log_gumbel_softmax(x, 0.7, dim, 3, **kw)
        ref = gs.log_gumbel_softmax(_np(x), 0.7, axis=dim, rng=3, **m)
        assert y.dtype == dtype
        assert np.array_equal(
            y.view(torch.int16 if dtype == torch.bfloat16 else dtype).numpy(),
            ref.view(np.int16) if dtype == torch.bfloat16 else ref,
        )


def test_philox_advances_by_the_rows():
    x = _logits((6, 5))
    rng = gs.Philox(4)
    parts = [categorical(x[:2], generator=rng), categorical(x[2:], generator=rng)]
    assert torch.equal(torch.cat(parts), categorical(x, generator=gs.Philox(4)))
    assert rng.counter == 6


def test_against_torch_ops_on_the_same_noise():
    x = _logits((50, 8))
    g = _noise(x.shape, 7)
    idx = categorical(x, generator=7)
    assert torch.equal(idx, (x + g).argmax(-1))
    assert torch.equal(idx, gumbel_softmax(x, hard=True, generator=7).argmax(-1))
    assert torch.equal(top_k(x, 5, generator=7), torch.topk(x + g, 5).indices)
    assert torch.equal(top_k(x, 1, generator=7).squeeze(-1), idx)
    y = log_gumbel_softmax(x, 0.4, generator=7)
    assert torch.allclose(y, torch.log_softmax((x + g) / 0.4, -1), rtol=1e-12, atol=1e-12)
    assert torch.allclose(y.exp(), gumbel_softmax(x, 0.4, generator=7), rtol=1e-12, atol=0)


def test_log_gradients():
    x = _logits((5, 7)).requires_grad_()
    tau = torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.3
    tau.requires_grad_()

    def f(v, t):
        return log_gumbel_softmax(v, t, generator=11)

    assert torch.autograd.gradcheck(f, (x, tau))
    assert torch.autograd.gradgradcheck(f, (x, tau))
    # and the reference's gradients on the same noise, masked entries included
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[:, 3] = False
    w = _logits((5, 7), seed=4)
    g = _noise(x.shape, 11)
    keep = torch.tensor([0, 1, 2, 4, 5, 6])  # the reference on the unmasked columns
    y = log_gumbel_softmax(x, tau, generator=11, mask=mask)
    ours = torch.autograd.grad((y[:, keep] * w[:, keep]).sum(), (x, tau))
    ref_y = torch.log_softmax((x[:, keep] + g[:, keep]) / tau.unsqueeze(-1), -1)
    ref = torch.autograd.grad((ref_y * w[:, keep]).sum(), (x, tau))
    assert torch.allclose(ours[0], ref[0], rtol=1e-10, atol=1e-12)
    assert torch.allclose(ours[1], ref[1], rtol=1e-10, atol=1e-12)
    assert (ours[0][:, 3] == 0).all()


def test_categorical_distribution_is_torchs():
    """50,000 draws each from ours and torch.distributions.Categorical: a chi-square test
    of homogeneity at a 1e-4 false-alarm rate (fixed seeds)."""
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    torch.manual_seed(0)
    theirs = torch.distributions.Categorical(logits=logits).sample((50_000,))
    ours = categorical(logits.expand(50_000, 5), generator=0)
    table = np.stack([np.bincount(t.numpy(), minlength=5) for t in (theirs, ours)])
    assert stats.chi2_contingency(table.astype(np.float64)).pvalue > 1e-4


def test_compiled_fullgraph_equals_eager():
    def f(x):
        return categorical(x), top_k(x, 3), log_gumbel_softmax(x * 2, 0.5)

    x = _logits((16, 9), torch.float32)
    explained = torch._dynamo.explain(f)(x)
    assert explained.graph_break_count == 0
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    torch.manual_seed(5)
    a = [compiled(x) for _ in range(2)]
    torch.manual_seed(5)
    b = [f(x) for _ in range(2)]
    assert all(torch.equal(u, v) for p, q in zip(a, b) for u, v in zip(p, q))
    assert not torch.equal(a[0][2], a[1][2])
    torch._dynamo.reset()


@pytest.mark.parametrize("fn", ["categorical", "top_k"])
def test_vmap_randomness(fn):
    call = {"categorical": lambda v: categorical(v), "top_k": lambda v: top_k(v, 2)}[fn]
    x = _logits((4, 3, 6), torch.float32)
    torch.manual_seed(1)
    y = torch.func.vmap(call, randomness="different")(x)
    torch.manual_seed(1)
    assert torch.equal(y, call(x))
    torch.manual_seed(1)
    y = torch.func.vmap(call, randomness="same")(x)
    for b in range(4):
        torch.manual_seed(1)
        assert torch.equal(y[b], call(x[b]))
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="randomness error mode"):
        torch.func.vmap(call)(x)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda g: top_k(torch.zeros(3, 4), 5, generator=g), ValueError, "k must be in"),
        (lambda g: top_k(torch.zeros(3, 4), -1, generator=g), ValueError, "k must be in"),
        (lambda g: top_k(torch.zeros(3, 4), 1.0, generator=g), TypeError, "k must be"),
        (lambda g: top_k(torch.zeros(3, 4), True, generator=g), TypeError, "k must be"),
        (lambda g: categorical(torch.zeros(3, 4), 2, generator=g), IndexError, "dim 2"),
        (lambda g: categorical(torch.zeros(3, 0), generator=g), ValueError, "length 0"),
        (
            lambda g: categorical(
                torch.zeros(3, 4), mask=torch.ones(5, dtype=torch.bool), generator=g
            ),
            ValueError,
            "mask",
        ),
        (
            lambda g: categorical(torch.zeros(3, 4), mask=torch.ones(4), generator=g),
            TypeError,
            "mask",
        ),
        (lambda g: log_gumbel_softmax(torch.zeros(3, 4), 0.0, generator=g), ValueError, "tau"),
        (
            lambda g: log_gumbel_softmax(torch.zeros(3, 4, dtype=torch.int64), generator=g),
            TypeError,
            "logits",
        ),
    ],
)
def test_errors_name_the_argument_and_draw_nothing(call, exc, words):
    for gen in (None, torch.Generator().manual_seed(1), np.random.default_rng(1), gs.Philox(1)):
        default = torch.get_rng_state()
        before = (
            gen.get_state()
            if isinstance(gen, torch.Generator)
            else gen.bit_generator.state
            if isinstance(gen, np.random.Generator)
            else getattr(gen, "counter", None)
        )
        with pytest.raises(exc, match=words):
            call(gen)
        after = (
            gen.get_state()
            if isinstance(gen, torch.Generator)
            else gen.bit_generator.state
            if isinstance(gen, np.random.Generator)
            else getattr(gen, "counter", None)
        )
        same = torch.equal(before, after) if isinstance(before, torch.Tensor) else before == after
        assert same and torch.equal(torch.get_rng_state(), default)


# --------------------------------------------------------------------------------------
# relaxed_bernoulli


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape", [(7, 9), (40,), (), (3, 2, 50)])
def test_bernoulli_bitwise_the_numpy_api(dtype, hard, shape):
    x = _logits(shape, dtype)
    tau = torch.linspace(0.3, 2.0, shape[-1]).to(dtype) if shape else 0.7
    rng_t, rng_n = gs.Philox(5, counter=3), gs.Philox(5, counter=3)
    y = relaxed_bernoulli(x, tau, hard, rng_t)
    t = tau if isinstance(tau, float) else tau.float().numpy()
    ref = gs.relaxed_bernoulli(_np(x), t, hard=hard, rng=rng_n)
    assert y.dtype == dtype and tuple(y.shape) == shape
    if dtype == torch.bfloat16:
        assert np.array_equal(y.view(torch.int16).numpy(), ref.view(np.int16))
    else:
        assert np.array_equal(y.numpy(), ref)
    assert rng_t.counter == rng_n.counter


def test_bernoulli_is_torchs_rsample_on_our_noise():
    """RelaxedBernoulli.rsample: sigmoid((logits + log(u) - log1p(-u)) / tau), a
    logistic L = log(u) - log1p(-u); ours on our L, and the gradients of that formula
    (logits and a per-element tau)."""
    x = _logits((6, 8)).requires_grad_()
    tau = torch.rand(8, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.3
    tau.requires_grad_()
    w = _logits((6, 8), seed=3)
    noise = torch.from_numpy(gs.logistic((6, 8), dtype=np.float64, rng=gs.Philox(9)))
    y = relaxed_bernoulli(x, tau, generator=9)
    ref = torch.sigmoid((x + noise) / tau)
    assert torch.allclose(y, ref, rtol=1e-12, atol=1e-15)
    ours = torch.autograd.grad((y * w).sum(), (x, tau))
    theirs = torch.autograd.grad((ref * w).sum(), (x, tau))
    for a, b in zip(ours, theirs):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    dist = torch.distributions.RelaxedBernoulli(tau.detach(), logits=x.detach())
    assert torch.isfinite(dist.log_prob(y.detach().clamp(1e-6, 1 - 1e-6))).all()


@pytest.mark.parametrize("shape", [(), (1,), (3,)])
def test_bernoulli_tau_gradient_of_zero_dim_and_short_logits(shape):
    """A 0-d tau tensor that requires grad, with 0-d logits too (their tau gradient was
    a NumPy scalar, which torch.from_numpy refused: TypeError in backward): gradcheck and
    gradgradcheck in float64; a float32 call gives a finite 0-d gradient."""
    x = torch.linspace(-0.4, 0.9, 3, dtype=torch.float64)[: max(1, len(shape) and shape[0])]
    x = x.reshape(shape).requires_grad_()
    tau = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)

    def f(v, t):
        return relaxed_bernoulli(v, t, generator=5)

    assert torch.autograd.gradcheck(f, (x, tau))
    assert torch.autograd.gradgradcheck(f, (x, tau))
    t32 = tau.detach().float().requires_grad_()
    relaxed_bernoulli(x.detach().float(), t32, generator=5).sum().backward()
    assert t32.grad.shape == () and torch.isfinite(t32.grad)


def test_bernoulli_gradients():
    x = _logits((4, 5)).requires_grad_()
    tau = torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) + 0.3
    tau.requires_grad_()

    def f(v, t):
        return relaxed_bernoulli(v, t, generator=2)

    assert torch.autograd.gradcheck(f, (x, tau))
    assert torch.autograd.gradgradcheck(f, (x, tau))
    grads = []
    for hard in (False, True):  # straight-through: the soft sample's gradient
        v = x.detach().clone().requires_grad_()
        (relaxed_bernoulli(v, 0.5, hard, 6) * torch.arange(5.0)).sum().backward()
        grads.append(v.grad)
    assert torch.equal(*grads)


def test_bernoulli_hard_frequency():
    """20,000 hard draws at p = sigmoid(0.8): the count is Binomial(n, p); a two-sided
    z-test at a 1e-4 false-alarm rate (|z| < 3.89), fixed seed."""
    n, p = 20_000, torch.sigmoid(torch.tensor(0.8)).item()
    count = relaxed_bernoulli(torch.full((n,), 0.8), hard=True, generator=1).sum().item()
    assert abs(count - n * p) / (n * p * (1 - p)) ** 0.5 < 3.89


def test_bernoulli_compile_and_vmap():
    x = _logits((4, 6), torch.float32)
    explained = torch._dynamo.explain(lambda v: relaxed_bernoulli(v, 0.5, True))(x)
    assert explained.graph_break_count == 0
    compiled = torch.compile(
        lambda v: relaxed_bernoulli(v * 2, 0.5), fullgraph=True, backend="aot_eager"
    )
    torch.manual_seed(3)
    a = [compiled(x) for _ in range(2)]
    torch.manual_seed(3)
    b = [relaxed_bernoulli(x * 2, 0.5) for _ in range(2)]
    assert all(torch.equal(u, v) for u, v in zip(a, b)) and not torch.equal(a[0], a[1])
    torch._dynamo.reset()
    torch.manual_seed(4)
    y = torch.func.vmap(lambda v: relaxed_bernoulli(v, 0.5), randomness="different")(x)
    torch.manual_seed(4)
    assert torch.equal(y, relaxed_bernoulli(x, 0.5))
    torch.manual_seed(4)
    y = torch.func.vmap(lambda v: relaxed_bernoulli(v, 0.5), randomness="same")(x)
    torch.manual_seed(4)
    assert torch.equal(y[2], relaxed_bernoulli(x[2], 0.5))
    with pytest.raises(RuntimeError, match="randomness error mode"):
        torch.func.vmap(lambda v: relaxed_bernoulli(v, 0.5))(x)
    g = torch.func.grad(lambda v: relaxed_bernoulli(v, 0.5, generator=1).sum())(x)
    v = x.clone().requires_grad_()
    relaxed_bernoulli(v, 0.5, generator=1).sum().backward()
    assert torch.equal(g, v.grad)


@pytest.mark.parametrize(
    "call,exc,words",
    [
        (lambda g: relaxed_bernoulli(torch.zeros(3, 4), 0.0, generator=g), ValueError, "tau"),
        (
            lambda g: relaxed_bernoulli(torch.zeros(3, 4), torch.ones(3), generator=g),
            ValueError,
            "tau",
        ),
        (
            lambda g: relaxed_bernoulli(
                torch.zeros(3, 4), torch.tensor([1.0, -1, 1, 1]), generator=g
            ),
            ValueError,
            "tau",
        ),
        (
            lambda g: relaxed_bernoulli(torch.zeros(3, 4), hard="yes", generator=g),
            TypeError,
            "hard",
        ),
        (lambda g: relaxed_bernoulli(np.zeros(3), generator=g), TypeError, "logits"),
        (
            lambda g: relaxed_bernoulli(torch.zeros(3, dtype=torch.int32), generator=g),
            TypeError,
            "logits",
        ),
    ],
)
def test_bernoulli_errors_draw_nothing(call, exc, words):
    test_errors_name_the_argument_and_draw_nothing(call, exc, words)
