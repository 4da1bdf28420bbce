"""gs.relaxed_top_k and gs.relaxed_top_k_backward (issue 16, Xie & Ermon 2019).

Against tests/reference.py's float64 formula built on our own noise (``gs.gumbel``),
with its running error bound as the tolerance (``relaxed_top_k_tol``) on the rows where
that bound is first order (``relaxed_top_k_comparable``); closed forms for K = 2; the
tau -> 0 limit and ``hard=True`` against ``gs.top_k`` from the same state; the gradient
against central finite differences of the float64 reference and against torch autograd
of the same formula on the same noise; stability where 1 - a underflows; masks, undefined
rows, half dtypes, per-row tau.  The shared tables (errors, failed calls, out untouched,
overlap, targets, determinism, fuzzing, golden digests) hold the house rules.
"""

import math

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal, random_logits
from reference import (
    eps_of,
    relaxed_top_k_comparable,
    relaxed_top_k_ref,
    relaxed_top_k_tol,
    tiny_atol,
)

DTYPES = [np.float32, np.float64]


def noise(shape, dtype, seed, counter=0):
    """The noise relaxed_top_k adds to logits of ``shape`` (axis -1): gs.gumbel's."""
    return gs.gumbel(shape, dtype=dtype, rng=gs.Philox(seed, counter=counter))


def khot(idx, K):
    """The k-hot (float64) of top_k indices (the -1 slots left out)."""
    out = np.zeros(idx.shape[:-1] + (K + 1,))
    np.put_along_axis(out, np.where(idx < 0, K, idx), 1.0, axis=-1)
    return out[..., :K]


def check_sums(y, k, dtype, rows=Ellipsis):
    """Entries >= 0 and finite; the sums of ``rows`` k within k (K/16 + 8 + k) eps: each
    step's softmax sums to 1 within (K/16 + 8) eps (as gumbel_softmax's), and the k
    accumulations add at most k eps of the row sum each; every row sums to at most that
    (less where a step finds no finite r left: fewer than k finite logits, or 1 - a
    rounded to 0)."""
    y64 = np.asarray(y, np.float64)
    K = y.shape[-1]
    assert np.all(np.isfinite(y64)) and np.all(y64 >= 0.0)
    tol = k * (K / 16 + 8 + k) * eps_of(dtype)
    assert np.all(y64.sum(-1) <= k + tol)
    err = np.abs(y64.sum(-1) - k)[rows]
    assert np.all(err <= tol), err.max()


# ------------------------------------------------------------------- the formula
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(300, 2), (200, 7), (40, 64), (6, 1000)], ids=str)
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
def test_matches_float64_reference(shape, tau, dtype):
    """y equals the float64 formula on the same v = logits + g (rounded in the dtype, as
    the kernel forms it) within relaxed_top_k_tol, on every row where that bound is first
    order (at least 3 in 4 rows here); every row: entries >= 0, sums k."""
    K = shape[1]
    x = random_logits(shape, dtype, seed=K)
    x[0, 0] = -np.inf
    for k in sorted({1, 2, min(3, K), K // 2, K}):
        y = gs.relaxed_top_k(x, k, tau, rng=gs.Philox(K, counter=7))
        assert y.dtype == dtype and y.shape == shape
        assert y[0, 0] == 0.0
        ref = relaxed_top_k_ref(x + noise(shape, dtype, K, 7), k, tau)
        ok = relaxed_top_k_comparable(ref, dtype)
        check_sums(y, k, dtype, ok & (np.abs(ref.y.sum(-1) - k) < 1e-6))
        if k <= 3 or tau >= 0.5:  # else the condition can blow up (see relaxed_top_k_ref)
            assert ok.mean() >= 0.75, (k, ok.mean())
        err = np.abs(y - ref.y)[ok]
        tol = relaxed_top_k_tol(ref, dtype)[ok]
        assert np.all(err <= tol), (k, float(np.max(err / tol)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [0.2, 0.5, 0.8, 1.0, 2.0])
def test_two_categories_closed_form(tau, dtype):
    """K = 2, k = 2: with d = v_0 - v_1, a_1 = (s(d/tau), s(-d/tau)) and a_2 works out
    to (s(-d (1/tau - 1) / tau), ...) (s the logistic function), so y_0 = s(d / tau) +
    s(-d (1 - tau) / tau**2).  The row sums to 2, so y = (1, 1) is the only sample in
    [0, 1]: it comes at tau = 1/2 exactly and in the limit tau -> 0; at any other tau one
    entry exceeds 1 (the larger one for tau > 1/2, the smaller one below; at tau = 1,
    y = (p + 1/2, 1 - p + 1/2)).  The relaxation is not confined to [0, 1]."""
    x = random_logits((500, 2), dtype, seed=3, scale=1.0)
    y = gs.relaxed_top_k(x, 2, tau, rng=9)
    v = (x + noise(x.shape, dtype, 9)).astype(np.float64)
    d = v[:, 0] - v[:, 1]

    def s(t):
        return 0.5 * (1.0 + np.tanh(0.5 * t))  # overflow-free logistic

    y0 = s(d / tau) + s(-d * (1.0 - tau) / tau**2)
    ref = np.stack([y0, 2.0 - y0], -1)
    tol = 32 * eps_of(dtype) * (1 + np.abs(d)[:, None] / tau**2)
    assert np.all(np.abs(y - ref) <= tol)
    if tau == 0.5:
        assert np.all(np.abs(y - 1.0) <= tol)
    else:
        assert np.mean(y.max(-1) > 1 + tol[:, 0]) > 0.5  # most rows have an entry above 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_k1_is_the_gumbel_softmax_sample(dtype):
    """One step is gumbel_softmax's soft sample (same noise, same rows), within the
    forward's tolerance."""
    x = random_logits((64, 33), dtype, seed=4)
    for tau in (0.3, 1.0, 2.0):
        y = gs.relaxed_top_k(x, 1, tau, rng=gs.Philox(5, counter=3))
        s = gs.gumbel_softmax(x, tau, rng=gs.Philox(5, counter=3))
        assert np.all(np.abs(y - s) <= 32 * eps_of(dtype) * (1 + 10 / tau) * s + tiny_atol(dtype))


# ------------------------------------------------------------------- tau -> 0 and hard
def _well_separated_tau(v, k):
    """A tau small enough for v's rows: a gap of the top k + 1 values over tau is at
    least 50 (range + 1), so each taken category falls below every other one and every
    softmax is one-hot within exp(-50)."""
    top = -np.sort(-v, axis=-1)[:, : k + 1]
    gap = np.min(np.diff(-top, axis=-1)) if top.shape[-1] > 1 else 1.0
    span = float(np.max(v) - np.min(v[np.isfinite(v)]))
    return gap / (50 * (span + 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K,k", [(5, 1), (5, 3), (12, 4), (40, 10), (7, 7)])
def test_tau_to_zero_is_the_top_k_khot(K, k, dtype):
    """As tau -> 0 the sample tends to the k-hot of gs.top_k from the same state: within
    K k exp(-50) + a few eps once tau is small against v's gaps (_well_separated_tau),
    exactly at tau = 1e-30 (every exp of another category underflows)."""
    x = random_logits((30, K), dtype, seed=K + k)
    rng = gs.Philox(21, counter=2**32 - 3)
    ref = khot(gs.top_k(x, k, rng=rng.__copy__()), K)
    v = x + noise(x.shape, dtype, 21, 2**32 - 3)
    for r in range(x.shape[0]):
        tau = _well_separated_tau(v[r : r + 1].astype(np.float64), k)
        y = gs.relaxed_top_k(x[r : r + 1], k, tau, rng=gs.Philox(21, counter=2**32 - 3 + r))
        assert np.all(np.abs(y - ref[r]) <= K * k * math.exp(-50) + 8 * k * eps_of(dtype))
    y = gs.relaxed_top_k(x, k, 1e-30, rng=rng.__copy__())
    assert_bitwise_equal(y, ref.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 5, 32, 33, 60])
def test_hard_is_exactly_the_top_k_khot(k, dtype):
    """hard=True: exact 0.0 / 1.0 at the indices of gs.top_k from the same state (both
    selection paths: k <= 32 and k > 32), masked and -inf categories never chosen (rows
    with fewer finite ones get fewer ones); return_soft gives the relaxed sample
    bitwise."""
    x = random_logits((50, 60), dtype, seed=k, scale=3.0)
    x[3, ::2] = -np.inf
    mask = np.random.default_rng(k).random(x.shape) < 0.9
    for m in (None, mask):
        rng = gs.Philox(8, counter=11)
        y, soft = gs.relaxed_top_k(x, k, 0.4, hard=True, rng=rng, return_soft=True, mask=m)
        assert rng.counter == 11 + 50
        ref = khot(gs.top_k(x, k, rng=gs.Philox(8, counter=11), mask=m), 60)
        assert_bitwise_equal(y, ref.astype(dtype))
        assert not np.signbit(y).any()
        alone = gs.relaxed_top_k(x, k, 0.4, hard=True, rng=gs.Philox(8, counter=11), mask=m)
        assert_bitwise_equal(alone, y)
        relaxed = gs.relaxed_top_k(x, k, 0.4, rng=gs.Philox(8, counter=11), mask=m)
        assert_bitwise_equal(soft, relaxed)


def test_return_soft_without_hard_is_the_sample_itself():
    x = random_logits((4, 9))
    y, soft = gs.relaxed_top_k(x, 3, rng=1, return_soft=True)
    assert soft is y


# ------------------------------------------------------------------- gradients
def _ref_loss(x, g, G, k, tau):
    return float(np.sum(G * relaxed_top_k_ref(x + g, k, tau).y))


@pytest.mark.parametrize(
    "K,k,tau", [(2, 1, 1.0), (5, 2, 0.5), (7, 3, 0.3), (6, 6, 1.0), (9, 4, 2.5), (30, 28, 0.7)]
)
def test_gradient_central_differences_float64(K, k, tau):
    """relaxed_top_k_backward equals central differences (h = 1e-6) of the float64
    reference formula on the same noise, within 1e-7 (1 + |grad|): the differences'
    truncation error is h**2 times third derivatives of order 1/tau**3, their rounding
    eps / h."""
    x = random_logits((3, K), seed=K)
    x[1, 0] = -np.inf
    G = random_logits((3, K), seed=K + 1)
    g = noise(x.shape, np.float64, 13)
    got = gs.relaxed_top_k_backward(G, x, k, tau, rng=13)
    fd = np.zeros_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        if not np.isfinite(x[i]):
            continue
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd[i] = (_ref_loss(xp, g, G, k, tau) - _ref_loss(xm, g, G, k, tau)) / (2 * h)
    assert np.all(np.abs(got - fd) <= 1e-7 * (1 + np.abs(fd))), np.abs(got - fd).max()
    assert got[1, 0] == 0.0  # a -inf category: exactly 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 3, 8])
def test_gradient_matches_torch_autograd(k, dtype):
    """The same formula written in torch ops (r = x + g; r += log1p(-a); a =
    softmax(r / tau); y = sum a) on the same noise, differentiated by autograd in float64,
    with per-row tau; float32 within 64 k eps (1 + max|v| / tau) of the row's gradient
    scale."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    x = random_logits((20, 11), dtype, seed=k)
    x[0, 1] = -np.inf
    G = random_logits((20, 11), dtype, seed=k + 50)
    tau = np.linspace(0.3, 2.0, 20)
    got = gs.relaxed_top_k_backward(G, x, k, tau, rng=gs.Philox(4, counter=99))
    assert got.dtype == dtype
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    r = xt + torch.tensor(noise(x.shape, dtype, 4, 99).astype(np.float64))
    t = torch.tensor(tau)[:, None]
    a = torch.zeros_like(r)
    y = torch.zeros_like(r)
    for _ in range(k):
        r = r + torch.log1p(-a)
        a = torch.softmax(r / t, dim=-1)
        y = y + a
    (y * torch.tensor(G.astype(np.float64))).sum().backward()
    ref = xt.grad.numpy()
    if dtype == np.float64:
        tol = 1e-12 * (1 + np.abs(ref))
    else:
        v = np.abs(np.where(np.isfinite(x), x, 0) + noise(x.shape, dtype, 4, 99))
        scale = np.abs(ref).max(-1, keepdims=True) + np.abs(G).max(-1, keepdims=True)
        tol = 64 * k * eps_of(dtype) * (1 + v.max(-1, keepdims=True) / tau[:, None]) * scale
    assert np.all(np.abs(got - ref) <= tol), np.max(np.abs(got - ref) / tol)
    assert got[0, 1] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_the_row_sum_is_zero(dtype):
    """Every row sums to k whatever the logits: grad_y = 1 gives a gradient of 0 (within
    the rounding of the sums)."""
    x = random_logits((40, 17), dtype, seed=1)
    got = gs.relaxed_top_k_backward(np.ones_like(x), x, 4, 0.6, rng=2)
    assert np.all(np.abs(got) <= 64 * 4 * eps_of(dtype) * (1 + 10 / 0.6))


def test_backward_leaves_rng_and_hard_forward_share_it():
    """The backward replays the forward's rows from rng in its state before the forward
    and leaves it there (Philox and Generator); the gradient of hard=True is the
    relaxed sample's (straight-through), so the same call serves both; rng=None raises."""
    x = random_logits((6, 8))
    G = random_logits((6, 8), seed=1)
    p = gs.Philox(3, counter=5)
    a = gs.relaxed_top_k_backward(G, x, 3, 0.5, rng=p)
    assert p.counter == 5
    gen = np.random.default_rng(7)
    before = gen.bit_generator.state
    b = gs.relaxed_top_k_backward(G, x, 3, 0.5, rng=gen)
    assert gen.bit_generator.state == before
    seed = int(np.random.default_rng(7).integers(0, 2**64, dtype=np.uint64))
    assert_bitwise_equal(b, gs.relaxed_top_k_backward(G, x, 3, 0.5, rng=seed))
    assert_bitwise_equal(a, gs.relaxed_top_k_backward(G, x, 3, 0.5, rng=gs.Philox(3, counter=5)))
    with pytest.raises(ValueError, match="rng"):
        gs.relaxed_top_k_backward(G, x, 3, 0.5, rng=None)


# ------------------------------------------------------------------- stability
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tau", [1.0, 0.1, 1e-3, 1e-30])
@pytest.mark.parametrize("spread", [30.0, 1e4, 1e30])
def test_stable_where_one_minus_a_underflows(spread, tau, dtype):
    """Huge logit gaps and tiny tau make 1 - a of the taken category underflow: it drops
    out exactly (its r becomes -inf), the sample is finite, sums to k and is the k-hot
    of top_k once every step is one-hot; the gradient is finite (0 where the sample is
    one-hot to the last bit)."""
    x = (spread * np.arange(6.0)[::-1]).astype(dtype)[None, :].repeat(4, 0)
    x[1] = x[1, ::-1]
    x[2, 3] = -np.inf
    for k in (1, 2, 4, 6):
        y = gs.relaxed_top_k(x, k, tau, rng=5)
        check_sums(y, k, dtype) if np.isfinite(x).all(-1).all() else None
        assert np.all(np.isfinite(y)) and np.all(y >= 0)
        kh = khot(gs.top_k(x, k, rng=5), 6)
        under = 104 if dtype == np.float32 else 746  # exp(-under) rounds to 0
        if spread / tau > under:  # every other exp underflows: one-hot steps
            assert_bitwise_equal(y, kh.astype(dtype))
        gr = gs.relaxed_top_k_backward(random_logits(x.shape, dtype), x, k, tau, rng=5)
        assert np.all(np.isfinite(gr))
        if spread / tau > 4 * under:
            assert np.all(gr == 0.0)


def test_subnormal_one_minus_a_float64():
    """float64, K = 2, gap 720 at tau = 1: 1 - a of the first pick is exp(-720), a
    subnormal (log takes it scaled by 2**64); the category comes back level with the
    other (r_I + log(1 - a_I) = v_1 up to rounding), so the second step splits evenly:
    y = (1.5, 0.5) as the float64 formula says (float32 rounds 1 - a to 0: (1, 1))."""
    x = np.array([[720.0, 0.0]])
    g = noise(x.shape, np.float64, 1)
    x = x - g  # v = (720, 0) exactly up to the rounding of x
    y = gs.relaxed_top_k(x, 2, 1.0, rng=1)
    ref = relaxed_top_k_ref(x + g, 2, 1.0)
    assert np.all(np.abs(y - ref.y) <= 1e-9), (y, ref.y)
    assert abs(y[0, 0] - 1.5) < 0.01
    y32 = gs.relaxed_top_k(x.astype(np.float32), 2, 1.0, rng=1)
    assert_bitwise_equal(y32, np.ones((1, 2), np.float32))
    grad = gs.relaxed_top_k_backward(np.array([[1.0, -1.0]]), x, 2, 1.0, rng=1)
    assert np.all(np.isfinite(grad))


# ------------------------------------------------------------------- special rows
@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_and_minus_inf(dtype):
    """mask=False is a -inf logit (bitwise the same call); such categories get exactly 0
    in the sample and in the gradient."""
    x = random_logits((8, 12), dtype, seed=2)
    mask = np.random.default_rng(0).random(x.shape) < 0.7
    mask[:, 0] = True
    masked = np.where(mask, x, -np.inf).astype(dtype)
    y = gs.relaxed_top_k(x, 3, 0.5, rng=4, mask=mask)
    assert_bitwise_equal(y, gs.relaxed_top_k(masked, 3, 0.5, rng=4))
    assert np.all(y[~mask] == 0.0)
    G = random_logits(x.shape, dtype, seed=3)
    g = gs.relaxed_top_k_backward(G, x, 3, 0.5, rng=4, mask=mask)
    assert_bitwise_equal(g, gs.relaxed_top_k_backward(G, masked, 3, 0.5, rng=4))
    assert np.all(g[~mask] == 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fewer_finite_categories_than_k(dtype):
    """A row with f < k finite logits: the steps continue over those f (each can exceed
    1, the row still sums to k); at tau -> 0 each step after the f-th finds every r at
    -inf and adds nothing: ones at the f finite categories."""
    x = np.full((2, 6), -np.inf, dtype)
    x[:, [1, 4]] = [[0.5, -0.25], [3.0, 2.0]]
    y = gs.relaxed_top_k(x, 3, 1.0, rng=6)
    check_sums(y, 3, dtype)
    assert np.all(y[:, [0, 2, 3, 5]] == 0)
    y0 = gs.relaxed_top_k(x, 3, 1e-30, rng=6)
    assert_bitwise_equal(y0, np.where(np.isfinite(x), 1.0, 0.0).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_undefined_rows_are_nan(hard, dtype):
    """Rows with a NaN or +inf logit, or none finite, are NaN (the canonical NaN); the
    other rows are bitwise what they are without them; the backward likewise."""
    x = random_logits((5, 7), dtype, seed=8)
    bad = x.copy()
    bad[1, 2] = np.nan
    bad[2, 0] = np.inf
    bad[3] = -np.inf
    y = gs.relaxed_top_k(bad, 2, 0.7, hard=hard, rng=3)
    good = gs.relaxed_top_k(x, 2, 0.7, hard=hard, rng=3)
    assert np.all(np.isnan(y[1:4]))
    assert_bitwise_equal(y[[0, 4]], good[[0, 4]])
    nan = np.array(np.nan, dtype).view({4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize])
    assert np.all(y[1:4].view(nan.dtype) == nan)
    G = random_logits(x.shape, dtype, seed=9)
    gb = gs.relaxed_top_k_backward(G, bad, 2, 0.7, rng=3)
    assert np.all(np.isnan(gb[1:4]))
    assert_bitwise_equal(gb[[0, 4]], gs.relaxed_top_k_backward(G, x, 2, 0.7, rng=3)[[0, 4]])


def test_huge_tau_is_uniform_over_the_finite_categories():
    """float32 tau = 1e46: 1/tau rounds to 0, the tau -> infinity limit: every step is
    uniform over the finite categories, y = k / f there; the gradient is 0."""
    x = random_logits((3, 10), np.float32, seed=1)
    x[1, :4] = -np.inf
    y = gs.relaxed_top_k(x, 4, 1e46, rng=2)
    f = np.isfinite(x).sum(-1, keepdims=True)
    ref = np.where(np.isfinite(x), 4.0 / f, 0.0)
    assert np.all(np.abs(y - ref) <= 8 * eps_of(np.float32))
    g = gs.relaxed_top_k_backward(random_logits(x.shape, np.float32), x, 4, 1e46, rng=2)
    assert np.all(g == 0.0)


# ------------------------------------------------------------------- arguments
@pytest.mark.parametrize("dtype", DTYPES)
def test_per_row_tau_equals_row_by_row_calls(dtype):
    """An array tau gives each row its own, bitwise what the row's scalar call gives."""
    x = random_logits((5, 9), dtype, seed=5)
    tau = np.array([0.2, 1.0, 3.0, 0.5, 1e-3])
    y = gs.relaxed_top_k(x, 3, tau, rng=gs.Philox(2, counter=4))
    G = random_logits(x.shape, dtype, seed=6)
    gr = gs.relaxed_top_k_backward(G, x, 3, tau[:, None], rng=gs.Philox(2, counter=4))
    for r in range(5):
        one = gs.relaxed_top_k(x[r : r + 1], 3, tau[r], rng=gs.Philox(2, counter=4 + r))
        assert_bitwise_equal(y[r : r + 1], one)
        b = gs.relaxed_top_k_backward(
            G[r : r + 1], x[r : r + 1], 3, tau[r], rng=gs.Philox(2, counter=4 + r)
        )
        assert_bitwise_equal(gr[r : r + 1], b)


@pytest.mark.parametrize("k", [0, 8, -1])
def test_k_out_of_range_names_k(k):
    rng = gs.Philox(1)
    with pytest.raises(ValueError, match="k must be in"):
        gs.relaxed_top_k(random_logits((3, 7)), k, rng=rng)
    with pytest.raises(ValueError, match="k must be in"):
        gs.relaxed_top_k_backward(random_logits((3, 7)), random_logits((3, 7)), k, rng=rng)
    assert rng.counter == 0


@pytest.mark.parametrize("k", [1.0, True, "2", None])
def test_k_must_be_an_integer(k):
    with pytest.raises(TypeError, match="k must be an integer"):
        gs.relaxed_top_k(random_logits((3, 7)), k, rng=0)


@pytest.mark.parametrize("low", ["float16", "bfloat16"])
def test_half_dtypes_are_float32_rounded(low):
    """float16 / bfloat16 logits are computed in float32 and rounded back (the sample,
    the k-hot, the gradient), bitwise."""
    if low == "bfloat16":
        low = pytest.importorskip("ml_dtypes").bfloat16
    x = random_logits((6, 40), np.float32, seed=7).astype(low)
    x32 = x.astype(np.float32)
    for hard in (False, True):
        y = gs.relaxed_top_k(x, 5, 0.5, hard=hard, rng=2)
        assert y.dtype == x.dtype
        assert_bitwise_equal(y, gs.relaxed_top_k(x32, 5, 0.5, hard=hard, rng=2).astype(low))
    G = random_logits(x.shape, np.float32, seed=8).astype(low)
    g = gs.relaxed_top_k_backward(G, x, 5, 0.5, rng=2)
    assert g.dtype == x.dtype
    ref = gs.relaxed_top_k_backward(G.astype(np.float32), x32, 5, 0.5, rng=2).astype(low)
    assert_bitwise_equal(g, ref)


def test_backward_dtypes_and_out():
    """The gradient is computed in logits' dtype (the forward's noise and arithmetic)
    and returned in the common dtype of grad_y and logits; out (also grad_y itself) is
    written and returned."""
    x = random_logits((4, 6), np.float32)
    G = random_logits((4, 6), np.float64, seed=1)
    g = gs.relaxed_top_k_backward(G, x, 2, rng=3)
    assert g.dtype == np.float64
    assert_bitwise_equal(
        g, gs.relaxed_top_k_backward(G.astype(np.float32), x, 2, rng=3).astype(np.float64)
    )
    G32 = G.astype(np.float32)
    expected = gs.relaxed_top_k_backward(G32, x, 2, rng=3)
    out = np.empty_like(G32)
    assert gs.relaxed_top_k_backward(G32, x, 2, rng=3, out=out) is out
    assert_bitwise_equal(out, expected)
    assert gs.relaxed_top_k_backward(G32, x, 2, rng=3, out=G32) is G32
    assert_bitwise_equal(G32, expected)
    out64 = np.empty((4, 6))
    assert gs.relaxed_top_k_backward(G, x, 2, rng=3, out=out64) is out64
    assert_bitwise_equal(out64, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_and_in_place(dtype):
    x = random_logits((5, 8), dtype)
    ref = gs.relaxed_top_k(x, 3, 0.5, rng=1)
    out = np.empty_like(x)
    assert gs.relaxed_top_k(x, 3, 0.5, rng=1, out=out) is out
    assert_bitwise_equal(out, ref)
    xc = x.copy()
    assert gs.relaxed_top_k(xc, 3, 0.5, rng=1, out=xc) is xc
    assert_bitwise_equal(xc, ref)
