"""gs.logistic, gs.relaxed_bernoulli and gs.relaxed_bernoulli_backward (docs/api).

The logistic noise is checked against a float64 NumPy reference built from the same
random words (tests/reference.py regenerates the stream), the Binary Concrete sample
against ``sigmoid((x + L) / tau)`` with the package's own noise ``L``, the backward
against its formula and central finite differences.

Statistical tests use fixed seeds and reject at the false-alarm rate ``ALPHA = 1e-3``
(the stream being bitwise reproducible, a given test either always or never fails).
"""

from __future__ import annotations

import math

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import as_bits, assert_bitwise_equal, fd_gradient, random_logits
from reference import _t_and_side_from_bits, eps_of, n_rows_of, stream_bits_ref, tiny_atol
from scipy import special, stats

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
ALPHA = 1e-3
N = 10**5


# ------------------------------------------------------------------ logistic noise
def logistic_ref(seed, counter, shape, dtype):
    """float64 logistic noise of the words of gs.gumbel(shape, dtype, Philox(seed, counter)).

    t and the top bit s exactly as in docs/contract.md "Bits to noise" (t rounded once to dtype);
    L = log(t) - log1p(-t) for s = 0 (U = t), its negative for s = 1 (U = 1 - t).
    """
    bits = stream_bits_ref(seed, counter, shape, dtype)
    t, s = _t_and_side_from_bits(bits, dtype)
    t = t.astype(np.float64)
    L = np.log(t) - np.log1p(-t)
    return np.where(s == 0, L, -L)


def logistic_tol(L_ref, dtype):
    """4 eps (1 + |L|).

    t is exact in the dtype. log(t) has an error below 2 ulp (docs/contract.md vmath table), i.e.
    2 eps |log t| <= 2 eps (|L| + log 2); log1p(-t) (|.| <= log 2) at most 2 eps log 2 plus
    eps/2 / (1 - t) <= eps if it is formed from a rounded 1 - t; the final subtraction
    eps/2 |L|. Total <= 2.5 eps |L| + 3.8 eps <= 4 eps (1 + |L|)."""
    return 4.0 * eps_of(dtype) * (1.0 + np.abs(L_ref))


# largest |L|: t = 2**-(n+1) gives |L| = (n+1) log 2 + O(t)
L_MAX = {np.float32: 33 * math.log(2) + 1e-6, np.float64: 65 * math.log(2) + 1e-12}


@pytest.mark.parametrize("counter", [0, 2**32 - 3, 2**63 - 1])
@pytest.mark.parametrize("shape", [(1000,), (37, 33), (3, 4, 17), (3, 70001)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_logistic_matches_reference(dtype, shape, counter):
    seed = 2024
    rng = gs.Philox(seed, counter=counter)
    L = gs.logistic(shape, dtype=dtype, rng=rng)
    assert isinstance(L, np.ndarray)
    assert L.shape == shape and L.dtype == np.dtype(dtype)
    assert rng.counter == counter + n_rows_of(shape)
    ref = logistic_ref(seed, counter, shape, dtype)
    L64 = L.astype(np.float64)
    assert np.all(np.isfinite(L64))
    err = np.abs(L64 - ref)
    bound = logistic_tol(ref, dtype)
    i = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"{int(np.sum(err > bound))} elements out of tolerance; "
        f"worst at {i}: got {L64[i]!r}, expected {ref[i]!r}"
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_logistic_rng_forms_and_out(dtype):
    shape = (5, 9)
    a = gs.logistic(shape, dtype=dtype, rng=77)
    assert_bitwise_equal(a, gs.logistic(shape, dtype=dtype, rng=gs.Philox(77)))
    # a Generator: NumPy seeding reproduces
    b = gs.logistic(shape, dtype=dtype, rng=np.random.default_rng(3))
    assert_bitwise_equal(b, gs.logistic(shape, dtype=dtype, rng=np.random.default_rng(3)))
    # out=: returned as the result, dtype taken from out when dtype is not given
    out = np.full(shape, np.nan, dtype=dtype)
    rng = gs.Philox(77, counter=0)
    res = gs.logistic(shape, rng=rng, out=out)
    assert res is out
    assert rng.counter == 5
    assert_bitwise_equal(out, a)
    # a non-contiguous out view receives the same values and nothing else is written
    big = np.full((5, 18), -7.0, dtype=dtype)
    res = gs.logistic(shape, dtype=dtype, rng=gs.Philox(77), out=big[:, ::2])
    assert res.base is big or np.shares_memory(res, big)
    assert_bitwise_equal(np.ascontiguousarray(big[:, ::2]), a)
    assert np.all(big[:, 1::2] == -7.0)


def test_logistic_default_dtype_is_float32():
    # the same default as gs.gumbel (float32 when neither dtype nor out is given)
    L = gs.logistic((4, 6), rng=gs.Philox(1))
    assert L.dtype == np.float32
    assert_bitwise_equal(L, gs.logistic((4, 6), dtype=np.float32, rng=gs.Philox(1)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_logistic_finite_bounded_and_antisymmetric(dtype):
    """Every value finite and within the documented range; L is an exactly odd function
    of the uniform: two words with the same low bits m and different top bits s give
    L and -L bit for bit (IEEE subtraction is sign-symmetric)."""
    n = 2**20
    seed, counter = 99, 12345
    L = gs.logistic((n,), dtype=dtype, rng=gs.Philox(seed, counter=counter))
    assert np.all(np.isfinite(L))
    assert float(np.max(np.abs(L.astype(np.float64)))) <= L_MAX[dtype]
    if dtype == np.float32:
        bits = stream_bits_ref(seed, counter, (n,), dtype).astype(np.uint64)
        m = bits & np.uint64(0x7FFFFFFF)
        s = bits >> np.uint64(31)
        order = np.argsort(m, kind="stable")
        ms, ss = m[order], s[order]
        same = np.nonzero((ms[1:] == ms[:-1]) & (ss[1:] != ss[:-1]))[0]
        # about n**2 / 2**33 = 128 such pairs are expected among 2**20 words
        assert same.size > 20
        i, j = order[same], order[same + 1]
        np.testing.assert_array_equal(as_bits(L[i]), as_bits(-L[j]))
    # The sign is the top bit: L < 0 exactly where U = t < 1/2 (s = 0), L >= 0 else.
    ref = logistic_ref(seed, counter, (n,), dtype)
    nz = np.abs(ref) > logistic_tol(ref, dtype)  # the sign is decided within tolerance
    np.testing.assert_array_equal(np.sign(L[nz]), np.sign(ref[nz]))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(N,), (250, 400)])
def test_logistic_kstest(shape, dtype):
    seed = 501 + len(shape) + (0 if dtype == np.float32 else 50)
    L = gs.logistic(shape, dtype=dtype, rng=gs.Philox(seed, counter=2**32 - 100))
    res = stats.kstest(L.ravel().astype(np.float64), stats.logistic.cdf)
    assert res.pvalue > ALPHA, res
    # symmetric: mean 0 (variance pi**2 / 3), 6 standard errors
    assert abs(float(L.astype(np.float64).mean())) < 6 * math.sqrt(math.pi**2 / 3 / L.size)


# ------------------------------------------------------------- relaxed_bernoulli
def sigmoid_ref(z):
    return special.expit(np.asarray(z, dtype=np.float64))


def rb_check(y, x, L, tau):
    """y == sigmoid((x + L) / tau) elementwise (tau broadcast), float64 reference.

    v = x + L rounds once (eps/2 |v|), z = v / tau (or v * (1/tau)) at most twice more,
    so |dz| <= 2 eps |z|, which changes y by y (1 - y) |dz|; the exp, the 1 + e and the
    division add at most 2 + 1/2 + 1/2 eps relative. rtol = 8 eps (1 + |z|) leaves a
    factor 2. atol: the smallest normal number of the dtype (a sigmoid below it may be
    flushed or be subnormal; nothing in the contract is about that range).
    """
    dt = y.dtype
    eps = eps_of(dt)
    z = (x.astype(np.float64) + L.astype(np.float64)) / np.asarray(tau, dtype=np.float64)
    ref = sigmoid_ref(z)
    y64 = y.astype(np.float64)
    bound = 8.0 * eps * (1.0 + np.abs(z)) * ref + float(np.finfo(dt).tiny)
    err = np.abs(y64 - ref)
    assert np.all((y64 >= 0.0) & (y64 <= 1.0))
    i = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert np.all(err <= bound), (
        f"{int(np.sum(err > bound))} of {err.size} out of "
        f"tolerance; worst at {i}: got {y64[i]!r}, expected "
        f"{ref[i]!r} (z = {z[i]!r})"
    )


RB_SHAPES = [(40,), (6, 17), (2, 3, 33), (50, 700)]  # the last: threaded (> 2**14)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("shape", RB_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_soft_matches_reference(dtype, shape, tau):
    seed, p = 8080, 2**32 - 2
    x = random_logits(shape, dtype, seed=len(shape))
    x0 = x.copy()
    rng = gs.Philox(seed, counter=p)
    y = gs.relaxed_bernoulli(x, tau, rng=rng)
    assert y.shape == shape and y.dtype == np.dtype(dtype)
    assert rng.counter == p + n_rows_of(shape)  # rows = all dims but the last
    assert_bitwise_equal(x, x0)
    L = gs.logistic(shape, dtype=dtype, rng=gs.Philox(seed, counter=p))
    rb_check(y, x, L, tau)


@pytest.mark.parametrize("tau", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("shape", RB_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_hard_and_return_soft(dtype, shape, tau):
    seed, p = 31, 2**63 - 4
    x = random_logits(shape, dtype, seed=10 + len(shape))
    rng = gs.Philox(seed, counter=p)
    yh = gs.relaxed_bernoulli(x, tau, hard=True, rng=rng)
    assert rng.counter == p + n_rows_of(shape)
    assert yh.dtype == np.dtype(dtype) and yh.shape == shape
    L = gs.logistic(shape, dtype=dtype, rng=gs.Philox(seed, counter=p))
    expected = (x + L > 0).astype(dtype)  # x + L in the dtype, as the package computes it
    assert_bitwise_equal(yh, expected)  # exact 0.0 / 1.0, no -0.0
    # return_soft with hard: (one-hot, the soft sample of the same state)
    rng2 = gs.Philox(seed, counter=p)
    res = gs.relaxed_bernoulli(x, tau, hard=True, rng=rng2, return_soft=True)
    assert isinstance(res, tuple) and len(res) == 2
    assert rng2.counter == p + n_rows_of(shape)
    h, s = res
    assert_bitwise_equal(h, yh)
    soft = gs.relaxed_bernoulli(x, tau, rng=gs.Philox(seed, counter=p))
    assert_bitwise_equal(s, soft)
    rb_check(s, x, L, tau)
    # return_soft without hard: the pair is (y, y), one object
    y, y_soft = gs.relaxed_bernoulli(x, tau, rng=gs.Philox(seed, counter=p), return_soft=True)
    assert y_soft is y
    assert_bitwise_equal(y, soft)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_hard_is_strict(dtype):
    # logits = -L exactly: x + L == 0, which is not > 0, so the hard sample is 0.0
    shape = (4, 25)
    L = gs.logistic(shape, dtype=dtype, rng=gs.Philox(14, counter=6))
    x = -L
    assert np.all(x + L == 0)
    h, s = gs.relaxed_bernoulli(x, 0.5, hard=True, return_soft=True, rng=gs.Philox(14, counter=6))
    assert_bitwise_equal(h, np.zeros(shape, dtype=dtype))
    rb_check(s, x, L, 0.5)  # sigmoid(0) = 1/2
    # the next representable logit above -L gives 1.0
    x_up = np.nextafter(x, np.array(np.inf, dtype=dtype))
    h = gs.relaxed_bernoulli(x_up, 0.5, hard=True, rng=gs.Philox(14, counter=6))
    assert_bitwise_equal(h, (x_up + L > 0).astype(dtype))
    assert np.all(h == 1.0)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_out_and_in_place(dtype, hard):
    shape = (5, 12)
    x = random_logits(shape, dtype, seed=4)
    expected = gs.relaxed_bernoulli(x, 0.5, hard=hard, rng=gs.Philox(6, counter=3))
    # fresh out
    out = np.full(shape, np.nan, dtype=dtype)
    rng = gs.Philox(6, counter=3)
    res = gs.relaxed_bernoulli(x, 0.5, hard=hard, rng=rng, out=out)
    assert res is out and rng.counter == 3 + 5
    assert_bitwise_equal(out, expected)
    # non-contiguous view: nothing written outside it
    big = np.full((5, 24), -3.0, dtype=dtype)
    res = gs.relaxed_bernoulli(x, 0.5, hard=hard, rng=gs.Philox(6, counter=3), out=big[:, 1::2])
    assert_bitwise_equal(np.ascontiguousarray(big[:, 1::2]), expected)
    assert np.all(big[:, ::2] == -3.0)
    # in place
    xi = x.copy()
    res = gs.relaxed_bernoulli(xi, 0.5, hard=hard, rng=gs.Philox(6, counter=3), out=xi)
    assert res is xi
    assert_bitwise_equal(xi, expected)
    # out with return_soft: out receives y
    out = np.empty(shape, dtype=dtype)
    y, s = gs.relaxed_bernoulli(
        x, 0.5, hard=hard, rng=gs.Philox(6, counter=3), out=out, return_soft=True
    )
    assert y is out
    assert_bitwise_equal(out, expected)
    assert_bitwise_equal(s, gs.relaxed_bernoulli(x, 0.5, rng=gs.Philox(6, counter=3)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_strided_logits(dtype):
    base = random_logits((6, 20), dtype, seed=5)
    for view in (
        base[:, ::2],
        base[::-1, ::-2],
        np.asfortranarray(base)[:, 3:13],
        np.broadcast_to(base[:1, :10], (6, 10)),
    ):
        a = gs.relaxed_bernoulli(view, 0.7, rng=gs.Philox(2, counter=9))
        b = gs.relaxed_bernoulli(np.ascontiguousarray(view), 0.7, rng=gs.Philox(2, counter=9))
        assert_bitwise_equal(a, b)


@pytest.mark.parametrize("tau_shape", ["K", "B1", "full", "0d", "1K"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_tau_array_broadcast(dtype, tau_shape):
    B, K = 7, 11
    x = random_logits((B, K), dtype, seed=6)
    gen = np.random.default_rng(7)
    tau = {
        "K": np.exp(gen.uniform(-2.5, 1.5, K)),
        "B1": np.exp(gen.uniform(-2.5, 1.5, (B, 1))),
        "full": np.exp(gen.uniform(-2.5, 1.5, (B, K))),
        "0d": np.array(0.37),
        "1K": np.exp(gen.uniform(-2.5, 1.5, (1, K))),
    }[tau_shape]
    tau = tau.copy()
    tau.flat[0] = 1.0  # include an exact tau = 1
    tau0 = tau.copy()
    seed, p = 12, 100
    rng = gs.Philox(seed, counter=p)
    y = gs.relaxed_bernoulli(x, tau, rng=rng)
    assert rng.counter == p + B
    assert_bitwise_equal(tau, tau0)
    L = gs.logistic((B, K), dtype=dtype, rng=gs.Philox(seed, counter=p))
    rb_check(y, x, L, np.broadcast_to(tau, (B, K)))
    # hard does not depend on tau
    yh = gs.relaxed_bernoulli(x, tau, hard=True, rng=gs.Philox(seed, counter=p))
    assert_bitwise_equal(yh, (x + L > 0).astype(dtype))


# scalar taus whose 1/tau rounds, caps or is exact in float32 / float64
SCALAR_TAUS = [1.0, 0.37, 3.0, 1 / 3, 1e-3, 2.9e-39, 1e-300, 5e-324, 1e300, 7, np.float32(0.1)]


@pytest.mark.parametrize("tau", SCALAR_TAUS, ids=[repr(t) for t in SCALAR_TAUS])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_scalar_tau_equals_the_same_tau_as_an_array(dtype, tau):
    """A scalar tau takes its own path to 1/tau (_args.scalar_inverse_tau, a 0-stride
    view); an array of that value takes the array path (inverse_tau): the same bits,
    for the sample, hard and soft, and for the backward."""
    x = random_logits((5, 9), dtype, seed=3)
    full = np.full(x.shape, float(tau))
    for hard in (False, True):
        a = gs.relaxed_bernoulli(x, tau, hard=hard, rng=gs.Philox(4), return_soft=True)
        b = gs.relaxed_bernoulli(x, full, hard=hard, rng=gs.Philox(4), return_soft=True)
        assert_bitwise_equal(a[0], b[0])
        assert_bitwise_equal(a[1], b[1])
    g = random_logits(x.shape, dtype, seed=4)
    y = gs.relaxed_bernoulli(x, 0.5, rng=5)
    assert_bitwise_equal(
        gs.relaxed_bernoulli_backward(g, y, tau), gs.relaxed_bernoulli_backward(g, y, full)
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_wide_range(dtype):
    # logits far out in both tails at small and large tau: relative accuracy of small y
    x = np.linspace(-60.0, 60.0, 97).astype(dtype)[None, :].repeat(4, axis=0)
    for tau in (0.05, 0.5, 1.0, 20.0):
        y = gs.relaxed_bernoulli(x, tau, rng=gs.Philox(3, counter=1))
        L = gs.logistic(x.shape, dtype=dtype, rng=gs.Philox(3, counter=1))
        rb_check(y, x, L, tau)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_nan_only_where_logits_nan(dtype, hard):
    shape = (4, 9)
    x = random_logits(shape, dtype, seed=8)
    xs = x.copy()
    xs[0, 2] = np.nan
    xs[2, 0] = np.nan
    xs[1, 4] = np.inf
    xs[3, 8] = -np.inf
    seed, p = 5, 77
    y = gs.relaxed_bernoulli(xs, 0.5, hard=hard, rng=gs.Philox(seed, counter=p))
    nan = np.isnan(xs)
    np.testing.assert_array_equal(np.isnan(y), nan)
    assert y[1, 4] == 1.0 and y[3, 8] == 0.0  # the limits of the sigmoid at +-inf
    # the other elements are those of the call without the special values
    ref = gs.relaxed_bernoulli(x, 0.5, hard=hard, rng=gs.Philox(seed, counter=p))
    ok = np.isfinite(xs)
    assert_bitwise_equal(y[ok], ref[ok])


@pytest.mark.parametrize("shape", [(7,), (5, 1), (2, 3, 4), (1, 1, 6)], ids=str)
def test_relaxed_bernoulli_counter_advance(shape):
    x = np.zeros(shape, dtype=np.float32)
    rng = gs.Philox(1, counter=2**40)
    gs.relaxed_bernoulli(x, rng=rng)
    assert rng.counter == 2**40 + n_rows_of(shape)
    # rows are all dims but the last, whatever the shape: the same as the noise
    y = gs.relaxed_bernoulli(x, 1.0, hard=True, rng=gs.Philox(1, counter=2**40))
    L = gs.logistic(shape, dtype=np.float32, rng=gs.Philox(1, counter=2**40))
    assert_bitwise_equal(y, (L > 0).astype(np.float32))


def test_relaxed_bernoulli_default_tau_and_int_seed():
    x = random_logits((3, 5), np.float64, seed=9)
    a = gs.relaxed_bernoulli(x, rng=42)
    assert_bitwise_equal(a, gs.relaxed_bernoulli(x, 1.0, rng=gs.Philox(42)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_hard_mean_is_sigmoid(dtype):
    """P(x + L > 0) = P(L > -x) = sigmoid(x): the hard samples are Bernoulli(sigmoid(x)).
    One two-sided exact binomial test per logit at ALPHA / 6 (Bonferroni), so the
    test's false-alarm rate is at most ALPHA."""
    logits = np.array([-4.0, -1.5, 0.0, 0.3, 2.0, 5.0], dtype=dtype)
    K = logits.size
    seed = 9100 + (0 if dtype == np.float32 else 1)
    rng = gs.Philox(seed)
    y = gs.relaxed_bernoulli(np.broadcast_to(logits, (N, K)), 0.5, hard=True, rng=rng)
    assert rng.counter == N
    counts = np.sum(y, axis=0, dtype=np.int64)
    p = special.expit(logits.astype(np.float64))
    for k in range(K):
        res = stats.binomtest(int(counts[k]), N, float(p[k]))
        assert res.pvalue > ALPHA / K, (k, counts[k], N * p[k], res.pvalue)
    # The soft sample at x = 0 has mean exactly 1/2 (L is symmetric): 6 standard errors
    # (two-sided normal false-alarm rate about 2e-9).
    s = gs.relaxed_bernoulli(np.broadcast_to(logits, (N, K)), 0.5, rng=gs.Philox(seed))
    s0 = s[:, 2].astype(np.float64)
    assert abs(s0.mean() - 0.5) <= 6 * s0.std(ddof=1) / math.sqrt(N)


@pytest.mark.parametrize("tau", [0, 0.0, -1.0, np.nan, np.inf])
def test_relaxed_bernoulli_bad_tau(tau):
    x = random_logits((3, 4), np.float64, seed=1)
    rng = gs.Philox(1, counter=5)
    with pytest.raises(ValueError, match="tau"):
        gs.relaxed_bernoulli(x, tau, rng=rng)
    bad = np.full((4,), 0.5)
    bad[2] = tau
    with pytest.raises(ValueError, match="tau"):
        gs.relaxed_bernoulli(x, bad, rng=rng)
    with pytest.raises(ValueError, match="tau"):
        gs.relaxed_bernoulli(x, np.full((3, 5), 0.5), rng=rng)  # not broadcastable
    with pytest.raises(ValueError, match="tau"):
        gs.relaxed_bernoulli(x, np.full((2, 3, 4), 0.5), rng=rng)  # broadcasts past x
    assert rng.counter == 5


# -------------------------------------------------------- relaxed_bernoulli_backward
def rbb_ref(gy, ys, tau):
    gy = np.asarray(gy, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    return gy * ys * (1.0 - ys) / np.asarray(tau, dtype=np.float64)


def rbb_check(got, gy, ys, tau):
    """At most 5 roundings of eps/2 each (1 - y is exact for y >= 1/2, relative eps/2
    otherwise; three products and 1/tau or a division): rtol 4 eps.  The product
    grad_y * y * (1 - y) is rounded before the scaling by 1/tau; where it is subnormal
    its error is absolute, so the subnormal slack is scaled by 1/tau too."""
    ref = rbb_ref(gy, ys, tau)
    eps = eps_of(got.dtype)
    g64 = got.astype(np.float64)
    err = np.abs(g64 - ref)
    slack = np.maximum(1.0, 1.0 / np.asarray(tau, dtype=np.float64))
    bound = 4.0 * eps * np.abs(ref) + tiny_atol(got.dtype) * slack
    i = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"worst at {i}: got {g64[i]!r}, expected {ref[i]!r}, y_soft {ys[i]!r}"
    )


def _rb_pair(shape, dtype, seed):
    gen = np.random.default_rng(seed)
    gy = gen.standard_normal(shape).astype(dtype)
    ys = special.expit(6.0 * gen.standard_normal(shape)).astype(dtype)
    ys.flat[:4] = [0.0, 1.0, 0.5, 1.0 - eps_of(dtype)]
    return gy, ys


@pytest.mark.parametrize("tau", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_backward_formula(dtype, tau):
    shape = (9, 31)
    gy, ys = _rb_pair(shape, dtype, seed=20)
    gy0, ys0 = gy.copy(), ys.copy()
    got = gs.relaxed_bernoulli_backward(gy, ys, tau)
    assert got.shape == shape and got.dtype == np.dtype(dtype)
    rbb_check(got, gy, ys, tau)
    assert_bitwise_equal(gy, gy0)
    assert_bitwise_equal(ys, ys0)
    # strided inputs give the same bits
    big_g = np.zeros((9, 62), dtype=dtype)
    big_g[:, ::2] = gy
    got2 = gs.relaxed_bernoulli_backward(big_g[:, ::2], ys[::-1].copy()[::-1], tau)
    assert_bitwise_equal(got2, got)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_backward_of_real_samples(dtype):
    x = random_logits((16, 40), dtype, seed=21, scale=4.0)
    gy = np.random.default_rng(22).standard_normal(x.shape).astype(dtype)
    for tau in (0.05, 0.5, 1.0, 4.0):
        _, ys = gs.relaxed_bernoulli(x, tau, hard=True, return_soft=True, rng=gs.Philox(1))
        rbb_check(gs.relaxed_bernoulli_backward(gy, ys, tau), gy, ys, tau)


def test_relaxed_bernoulli_backward_default_tau():
    gy, ys = _rb_pair((4, 5), np.float64, seed=23)
    assert_bitwise_equal(
        gs.relaxed_bernoulli_backward(gy, ys), gs.relaxed_bernoulli_backward(gy, ys, 1.0)
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_backward_tau_array(dtype):
    # the forward's per-element tau (broadcastable to the shape) is the backward's too
    B, K = 6, 13
    gy, ys = _rb_pair((B, K), dtype, seed=24)
    gen = np.random.default_rng(25)
    for tau in (
        np.exp(gen.uniform(-2, 2, K)),
        np.exp(gen.uniform(-2, 2, (B, 1))),
        np.exp(gen.uniform(-2, 2, (B, K))),
    ):
        got = gs.relaxed_bernoulli_backward(gy, ys, tau)
        rbb_check(got, gy, ys, np.broadcast_to(tau, (B, K)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_relaxed_bernoulli_backward_out(dtype):
    gy, ys = _rb_pair((5, 8), dtype, seed=26)
    expected = gs.relaxed_bernoulli_backward(gy, ys, 0.3)
    out = np.full(gy.shape, np.nan, dtype=dtype)
    assert gs.relaxed_bernoulli_backward(gy, ys, 0.3, out=out) is out
    assert_bitwise_equal(out, expected)
    for which in ("grad_y", "y_soft"):
        g2, s2 = gy.copy(), ys.copy()
        target = g2 if which == "grad_y" else s2
        assert gs.relaxed_bernoulli_backward(g2, s2, 0.3, out=target) is target
        assert_bitwise_equal(target, expected)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0, "array"])
@pytest.mark.parametrize("hard", [False, True])
def test_relaxed_bernoulli_finite_differences(tau, hard):
    """Central differences (h = 1e-6, float64) of sum(w * y_soft) with the noise held
    fixed (the same Philox state every evaluation): truncation h**2 |y'''| / 6 and
    rounding eps |loss| / h are both below 1e-8 here; allowed 1e-6 * max(1, |grad|)."""
    shape = (3, 4, 5)
    gen = np.random.default_rng(30)
    x = gen.standard_normal(shape)
    w = gen.standard_normal(shape)
    if tau == "array":
        tau = np.exp(gen.uniform(-1.5, 1.0, (4, 1)))
    seed, p = 4711, 2**32 - 1

    def loss(z):
        res = gs.relaxed_bernoulli(
            z, tau, hard=hard, return_soft=True, rng=gs.Philox(seed, counter=p)
        )
        return float(np.sum(w * res[1]))

    _, ys = gs.relaxed_bernoulli(
        x, tau, hard=hard, return_soft=True, rng=gs.Philox(seed, counter=p)
    )
    grad = gs.relaxed_bernoulli_backward(w, ys, tau)
    fd = fd_gradient(loss, x, 1e-6)
    scale = max(1.0, float(np.max(np.abs(grad))))
    err = np.abs(fd - grad)
    assert np.all(err <= 1e-6 * scale), (float(np.max(err)), scale)
    rbb_check(grad, w, ys, np.broadcast_to(tau, shape))


def test_backward_subnormal_y_small_tau():
    """Subnormal y_soft with a small tau: the rounded subnormal product, scaled by 1/tau,
    stays within the documented error (regression: Hypothesis found the same gap in the
    softmax backward's tolerance)."""
    ys = np.array([5.619e-42, 3.3e-41, 1.1e-40, 0.25], np.float32)
    gy = np.array([0.0871, -0.77, 0.31, 1.5], np.float32)
    for tau in (1e-3, 0.1, 1.0):
        rbb_check(gs.relaxed_bernoulli_backward(gy, ys, tau), gy, ys, tau)
