"""gumbel_softmax.torch: the drop-in for torch.nn.functional.gumbel_softmax.

- gradients: torch.autograd.gradcheck in float64 (logits, scalar and per-row tensor tau),
  and the straight-through gradient equal to the soft one of the same draw;
- bitwise equality with the NumPy API for the same generator state (dtypes, dims,
  strided views, the Philox counter after the call);
- PyTorch's own test_nn gumbel_softmax cases, re-implemented (shapes and one choice per
  draw, straight-through counts, "hard and soft propagate the same gradient");
- no copies of contiguous inputs (tracemalloc), generators.

Higher-order gradients, tracing, torch.func and torch.compile: test_torch_autograd.py;
errors, the generators after a failed call and checkpoints: test_torch_errors.py.
"""

import gc
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
F = torch.nn.functional
stats = pytest.importorskip("scipy.stats", reason="scipy is not installed")

import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import gumbel_softmax  # noqa: E402

NP = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}


def _equal(t, a):
    """Bitwise: same dtype, shape and bytes."""
    a = np.asarray(a)
    return (
        t.dtype == torch.from_numpy(a).dtype
        and t.shape == a.shape
        and (
            np.ascontiguousarray(t.detach().numpy()).tobytes() == np.ascontiguousarray(a).tobytes()
        )
    )


# --------------------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("shape,dim", [((5, 7), -1), ((3, 4, 6), 1), ((6,), 0), ((4, 3), 0)])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_gradcheck_logits(shape, dim, tau):
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_()
    # an int seed draws the same noise at every call, as gradcheck needs
    assert torch.autograd.gradcheck(lambda x: gumbel_softmax(x, tau, dim=dim, generator=7), (x,))


@pytest.mark.parametrize(
    "tau_shape,dim", [((), -1), ((5,), -1), ((5, 1), -1), ((1, 7), 0), ((7,), 0), ((1,), -1)]
)
def test_gradcheck_tau_tensor(tau_shape, dim):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 7, dtype=torch.float64, generator=gen).requires_grad_()
    tau = (torch.rand(tau_shape, dtype=torch.float64, generator=gen) + 0.3).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, t: gumbel_softmax(x, t, dim=dim, generator=11), (x, tau)
    )


def test_gradcheck_with_masked_entries():
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x[:, 2] = -torch.inf
    x.requires_grad_()
    y = gumbel_softmax(x, 0.5, generator=4)
    assert (y[:, 2] == 0).all()
    y.backward(torch.randn_like(y))
    assert (x.grad[:, 2] == 0).all()
    free = torch.tensor([0, 1, 3, 4, 5])
    xf = x.detach()[:, free].clone().requires_grad_()
    # the masked column does not change the others: compare with the reduced problem's
    # gradient by finite differences through gradcheck on the full function
    assert torch.autograd.gradcheck(
        lambda v: gumbel_softmax(
            torch.cat([v[:, :2], x.detach()[:, 2:3], v[:, 2:]], 1), 0.5, generator=4
        ),
        (xf,),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_straight_through_gradient_is_the_soft_gradient(dtype):
    x = torch.randn(8, 9, dtype=dtype, generator=torch.Generator().manual_seed(5))
    w = torch.randn(8, 9, dtype=dtype, generator=torch.Generator().manual_seed(6))
    grads = []
    for hard in (False, True):
        xi = x.clone().requires_grad_()
        (gumbel_softmax(xi, 0.7, hard=hard, generator=gs.Philox(9)) * w).sum().backward()
        grads.append(xi.grad)
    assert torch.equal(grads[0], grads[1])
    # and both are the NumPy API's backward of that draw, bitwise
    _, ys = gs.gumbel_softmax(x.numpy(), 0.7, hard=True, return_soft=True, rng=gs.Philox(9))
    assert _equal(grads[0], gs.gumbel_softmax_backward(w.numpy(), ys, 0.7))


def test_backward_equals_numpy_backward_for_strided_grad():
    x = torch.randn(6, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    xi = x.clone().requires_grad_()
    y = gumbel_softmax(xi, 0.4, dim=0, generator=3)
    g = torch.randn(10, 6, dtype=torch.float64).t()  # a transposed (strided) gradient
    y.backward(g)
    ys = gs.gumbel_softmax(x.numpy(), 0.4, axis=0, rng=3)
    assert _equal(xi.grad, gs.gumbel_softmax_backward(g.numpy(), ys, 0.4, axis=0))


def test_no_grad_and_requires_grad_false():
    x = torch.randn(3, 4)
    y = gumbel_softmax(x, generator=1)
    assert y.grad_fn is None and not y.requires_grad
    with torch.no_grad():
        y = gumbel_softmax(x.requires_grad_(), generator=1)
    assert y.grad_fn is None


def test_tau_gradient_sums_over_broadcast_rows():
    """A scalar tensor tau gets the sum of the per-row gradients of a per-row tau."""
    x = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    w = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    t0 = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    t1 = torch.full((5,), 0.8, dtype=torch.float64, requires_grad=True)
    (gumbel_softmax(x, t0, generator=2) * w).sum().backward()
    (gumbel_softmax(x, t1, generator=2) * w).sum().backward()
    assert torch.allclose(t0.grad, t1.grad.sum(), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------------------
# Bitwise equality with the NumPy API


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize(
    "shape,dim", [((64, 10), -1), ((3, 5, 33), 1), ((1000,), 0), ((7, 4), 0), ((2, 3, 4), -2)]
)
def test_bitwise_equal_to_numpy_api(dtype, hard, shape, dim):
    x = (3 * torch.randn(shape, generator=torch.Generator().manual_seed(4))).to(dtype)
    rng_t, rng_n = gs.Philox(21, counter=2**32 - 3), gs.Philox(21, counter=2**32 - 3)
    y = gumbel_softmax(x.clone().requires_grad_(), 0.6, hard=hard, dim=dim, generator=rng_t)
    ref = gs.gumbel_softmax(x.numpy(), 0.6, hard=hard, axis=dim, rng=rng_n)
    assert _equal(y, ref)
    assert rng_t.counter == rng_n.counter  # advanced by the number of rows


@pytest.mark.parametrize("hard", [False, True])
def test_mask_is_the_numpy_apis_and_gets_no_gradient(hard):
    x = torch.randn(6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mask = torch.rand(9, generator=torch.Generator().manual_seed(4)) > 0.4
    xi = x.clone().requires_grad_()
    y = gumbel_softmax(xi, 0.5, hard=hard, generator=5, mask=mask)
    ref = gs.gumbel_softmax(x.numpy(), 0.5, hard=hard, rng=5, mask=mask.numpy())
    assert _equal(y, ref)
    assert (y.detach()[:, ~mask] == 0).all()
    y.backward(torch.randn(6, 9, dtype=torch.float64))
    assert (xi.grad[:, ~mask] == 0).all()
    # the same as -inf logits
    xm = x.masked_fill(~mask, -torch.inf)
    assert torch.equal(y.detach(), gumbel_softmax(xm, 0.5, hard=hard, generator=5))


def test_bitwise_equal_for_strided_views_without_copying_them():
    base = torch.randn(20, 30, generator=torch.Generator().manual_seed(5))
    for view in (base[::2, 1::3], base.t(), base[3:, 5:], base.unsqueeze(1).expand(20, 4, 30)):
        y = gumbel_softmax(view, 1.3, generator=8)
        assert _equal(y, gs.gumbel_softmax(view.numpy(), 1.3, rng=8))


def test_generator_kinds_reproduce():
    x = torch.randn(4, 6)
    ref = gs.gumbel_softmax(x.numpy(), rng=gs.Philox(5))
    assert _equal(gumbel_softmax(x, generator=5), ref)
    assert _equal(gumbel_softmax(x, generator=np.int64(5)), ref)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert _equal(gumbel_softmax(x, generator=g1), gs.gumbel_softmax(x.numpy(), rng=g2))
    # torch.Generator and torch's default generator: a seed drawn from them, so that
    # torch.manual_seed reproduces a run, as it does for F.gumbel_softmax
    a = gumbel_softmax(x, generator=torch.Generator().manual_seed(9))
    b = gumbel_softmax(x, generator=torch.Generator().manual_seed(9))
    c = gumbel_softmax(x, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(123)
    a = gumbel_softmax(x)
    a2 = gumbel_softmax(x)
    torch.manual_seed(123)
    b = gumbel_softmax(x)
    assert torch.equal(a, b) and not torch.equal(a, a2)


def test_philox_generator_continues_the_stream():
    x = torch.randn(6, 5)
    rng = gs.Philox(77)
    parts = [gumbel_softmax(x[:2], generator=rng), gumbel_softmax(x[2:], generator=rng)]
    assert _equal(torch.cat(parts), gs.gumbel_softmax(x.numpy(), rng=gs.Philox(77)))
    assert rng.counter == 6


def test_exact_one_hot_where_torch_is_only_close():
    x = torch.randn(200, 17, dtype=torch.float32, requires_grad=True)
    y = gumbel_softmax(x, 0.5, hard=True, generator=1)
    assert set(np.unique(y.detach().numpy()).tolist()) == {0.0, 1.0}
    assert (y.detach().sum(-1) == 1).all()


def test_special_values():
    x = torch.tensor([[0.0, -torch.inf, 1.0], [-torch.inf] * 3, [0.0, torch.nan, 1.0]])
    y = gumbel_softmax(x, generator=2)
    assert y[0, 1] == 0 and torch.isfinite(y[0]).all()
    assert torch.isnan(y[1]).all() and torch.isnan(y[2]).all()
    h = gumbel_softmax(x, hard=True, generator=2)
    assert h[0, 1] == 0 and h[0].sum() == 1 and torch.isnan(h[1:]).all()


def test_empty_batch():
    y = gumbel_softmax(torch.zeros(0, 5, requires_grad=True), generator=1)
    assert y.shape == (0, 5)
    y.sum().backward()


# --------------------------------------------------------------------------------------
# PyTorch's own test cases (test/test_nn.py: test_gumbel_softmax), re-implemented


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "shape,dim,count_expected",
    [
        ([5], 0, 1),
        ([5], -1, 1),
        ([5, 4], 1, 5),
        ([5, 4, 3], 1, 5 * 3),
        ([5, 4, 3], -1, 5 * 4),
    ],
)
def test_torch_st_shapes(dtype, shape, dim, count_expected):
    torch.manual_seed(0)
    logits = torch.randn(shape, dtype=torch.float).to(dtype)
    y_draw = gumbel_softmax(logits, hard=True, dim=dim)
    assert y_draw.min() >= 0  # all values non-negative
    assert y_draw.shape == logits.shape  # shape unchanged
    assert y_draw.sum() == count_expected  # one choice per draw (exactly, here)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_straight_through_counts(dtype, seed):
    """torch's test: 100 hard draws of logits [[0.2, 0.8, 0.1]]; counts sum to 100 and
    each z = (count - expected) / sqrt(expected (1 - p)) has |z| < 2.58 (a lazy two-sided
    test at about 1% per category, at most 3% per seed for an unbiased sampler: the seeds
    are fixed, so the outcome is too).  Then a sharper check of the same draws: 20,000
    draws, chi-square test at a 1e-4 false-alarm rate."""
    num_draws = 100
    logits = torch.tensor([[0.2, 0.8, 0.1]]).reshape([1, 3]).to(dtype).requires_grad_()
    probs = logits.softmax(dim=-1)
    counts = torch.zeros_like(logits)
    torch.manual_seed(seed)
    for _ in range(num_draws):
        y_draw = gumbel_softmax(logits, hard=True)
        counts = counts + y_draw
    assert y_draw.min() >= 0
    assert counts.sum() == num_draws
    expected = probs * num_draws
    z = (counts - expected) / (expected * (1 - probs)).sqrt()
    assert z.abs().max().item() < 2.58

    many = gumbel_softmax(logits.expand(20_000, 3), hard=True, generator=seed)
    observed = many.detach().sum(0).numpy().astype(np.float64)
    p = probs.detach().numpy()[0].astype(np.float64)
    p /= p.sum()
    assert stats.chisquare(observed, 20_000 * p).pvalue > 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_hard_and_soft_propagate_the_same_gradient(dtype):
    logits_soft = torch.zeros(10, 10, dtype=dtype, requires_grad=True)
    logits_hard = torch.zeros(10, 10, dtype=dtype, requires_grad=True)
    state = torch.random.get_rng_state()
    y_soft = gumbel_softmax(logits_soft, hard=False)
    torch.random.set_rng_state(state)
    y_hard = gumbel_softmax(logits_hard, hard=True)
    y_soft.sum().backward()
    y_hard.sum().backward()
    # torch allows 2 eps (its hard output is y_hard - y_soft.detach() + y_soft); ours
    # uses the soft gradient itself, so the two are equal
    assert torch.equal(logits_soft.grad, logits_hard.grad)


def test_same_distribution_as_torch():
    """Category frequencies of our hard draws and of F.gumbel_softmax's, 50,000 each:
    a chi-square test of homogeneity at a 1e-4 false-alarm rate (fixed seeds)."""
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5]).expand(50_000, 5)
    torch.manual_seed(0)
    theirs = F.gumbel_softmax(logits, tau=0.3, hard=True).sum(0).numpy()
    ours = gumbel_softmax(logits, tau=0.3, hard=True, generator=0).sum(0).numpy()
    table = np.stack([theirs, ours]).astype(np.float64)
    assert stats.chi2_contingency(table).pvalue > 1e-4


# --------------------------------------------------------------------------------------
# No copies


@pytest.mark.parametrize("hard", [False, True])
def test_contiguous_input_is_not_copied(hard):
    """NumPy reports its allocations to tracemalloc; torch does not, so what is traced
    is what the NumPy side allocated: the output (and y_soft for hard with grad), and no
    copy of the 4 MB input."""
    x = torch.randn(1000, 1000, requires_grad=True)
    nbytes = 1000 * 1000 * 4
    gc.collect()
    tracemalloc.start()
    try:
        y = gumbel_softmax(x, 0.5, hard=hard, generator=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    arrays = 2 if hard else 1
    assert arrays * nbytes <= peak < arrays * nbytes + nbytes // 2
    tracemalloc.start()
    try:
        y.backward(torch.ones_like(y))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert nbytes <= peak < nbytes + nbytes // 2  # the gradient only
