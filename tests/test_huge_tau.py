"""tau -> infinity: where 1/tau rounds to 0 in the computing dtype (docs/contract.md "Special values").

1/tau is computed from the float64 tau and rounded once to the dtype of the arithmetic
(float32 for float32, float16 and bfloat16 data).  Above tau = 2**150 or so it rounds
to 0 in float32; every function must then give the tau -> infinity limit, as it gives
the tau -> 0 limit where 1/tau is capped:

- gumbel_softmax: -inf and masked entries exactly 0, the finite entries the uniform
  distribution over them, bit for bit what 1/tau tiny but nonzero gives for a row of
  only those entries (where every (v - max) / tau rounds to a zero or a subnormal, so
  every exp is exactly 1);
- log_gumbel_softmax: exactly -inf there, -log(count) elsewhere (same bits rule);
- relaxed_bernoulli: sigmoid(+-inf / tau) = 1 and 0 for every tau, 1/2 at finite logits;
- the backwards: 0 (the gradient carries a factor 1/tau), never NaN for finite inputs.

concrete_log_prob takes tau itself (a normal number of the dtype); at huge tau its
terms tau log y are huge and cancel, and it must stay finite and accurate there.

The boundary taus are found here from NumPy's own rounding of 1/tau (float64 division,
then the cast), not from the package: tau_lo is the largest tau whose 1/tau is nonzero
in float32, tau_hi the next double up.  float64 1/tau cannot underflow for a finite tau;
tau = 1.7e308 and the largest double are checked there anyway.
"""

from __future__ import annotations

import math

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import as_bits, assert_bitwise_equal

F32 = np.float32
INF = np.inf


def _f32_boundary():
    """(tau_lo, tau_hi): float32(1 / tau_lo) != 0 == float32(1 / tau_hi), adjacent doubles."""
    t = 2.0**150  # 1/t = 2**-150, half the smallest subnormal: rounds to 0 (even)
    assert F32(1.0 / t) == 0
    while F32(1.0 / t) == 0:
        t = np.nextafter(t, 0.0)
    lo, hi = float(t), float(np.nextafter(t, INF))
    assert F32(1.0 / lo) == F32(2.0**-149) and F32(1.0 / hi) == 0
    return lo, hi


TAU_LO, TAU_HI = _f32_boundary()


def _dtype(name):
    if name == "bfloat16":
        return np.dtype(pytest.importorskip("ml_dtypes").bfloat16)
    return np.dtype(name)


def _f64(a):
    return np.asarray(a).astype(np.float64)


# (dtype, a tau where 1/tau is 0 in the computing dtype or None, a tau where it is tiny)
CASES = [
    ("float32", TAU_HI, TAU_LO),
    ("float16", TAU_HI, TAU_LO),
    ("bfloat16", TAU_HI, TAU_LO),
    ("float32", 1e46, TAU_LO),
    ("float32", 1.7e308, TAU_LO),
    ("float64", None, 1.7e308),
    ("float64", None, float(np.finfo(np.float64).max)),
]
IDS = [f"{d}-{h}" for d, h, _ in CASES]
# rel. tolerance of -log(count) and 1/count (a few ulp of the output dtype)
RTOL = {"float32": 4e-7, "float64": 1e-15, "float16": 1e-3, "bfloat16": 8e-3}


def _rows(dt, K, seed):
    """Rows of K logits in dtype dt, modest values and some -inf, every row defined."""
    gen = np.random.default_rng(seed)
    x = (3 * gen.standard_normal((9, K))).astype(dt)
    for r in range(x.shape[0]):
        n = min(r, K - 1)  # row r has min(r, K - 1) entries at -inf
        x[r, gen.choice(K, n, replace=False)] = -INF
    return x


def _expect_uniform(y, x, log, rtol):
    """-inf entries exactly 0 (log: exactly -inf), finite ones all equal to 1/count
    (log: -log(count)); no NaN."""
    fin = np.isfinite(_f64(x))
    yf = _f64(y)
    assert not np.any(np.isnan(yf))
    if log:
        assert np.all(np.isneginf(yf[~fin]))
    else:
        assert np.all(yf[~fin] == 0) and not np.any(np.signbit(yf[~fin]))
    for r in range(x.shape[0]):
        vals = y[r][fin[r]]
        assert np.all(as_bits(vals) == as_bits(vals[:1])), f"row {r} not uniform"
        count = int(fin[r].sum())
        want = -math.log(count) if log else 1.0 / count
        np.testing.assert_allclose(_f64(vals[:1]), want, rtol=rtol, atol=0 if count > 1 else 0)


@pytest.mark.parametrize("K", [5, 17, 32, 100, 1000])
@pytest.mark.parametrize("dtn,tau_zero,tau_tiny", CASES, ids=IDS)
def test_forward_is_the_uniform_limit(dtn, tau_zero, tau_tiny, K):
    dt = _dtype(dtn)
    x = _rows(dt, K, K)
    for tau in (t for t in (tau_zero, tau_tiny) if t is not None):
        y = gs.gumbel_softmax(x, tau, rng=3)
        lg = gs.log_gumbel_softmax(x, tau, rng=3)
        assert y.dtype == dt and lg.dtype == dt
        _expect_uniform(y, x, False, RTOL[dtn])
        _expect_uniform(lg, x, True, RTOL[dtn])
        # the same bits as the normal path (1/tau tiny, nonzero) on a row of only the
        # finite entries, which has no -inf at all
        for r in range(x.shape[0]):
            fin = np.isfinite(_f64(x[r]))
            alone = x[r][fin][None]
            assert_bitwise_equal(y[r][fin][:1], gs.gumbel_softmax(alone, tau_tiny, rng=4)[0, :1])
            assert_bitwise_equal(
                lg[r][fin][:1], gs.log_gumbel_softmax(alone, tau_tiny, rng=4)[0, :1]
            )
        # hard / return_soft: the one-hot of x + g does not depend on tau
        h, s = gs.gumbel_softmax(x, tau, hard=True, return_soft=True, rng=3)
        assert_bitwise_equal(s, y)
        assert_bitwise_equal(h, gs.gumbel_softmax(x, 0.5, hard=True, rng=3))
        # other layouts: the softmax over axis 0 of the transpose
        yt = gs.gumbel_softmax(np.ascontiguousarray(x.T), tau, axis=0, rng=3)
        assert_bitwise_equal(np.ascontiguousarray(yt.T), y)
        lgt = gs.log_gumbel_softmax(np.ascontiguousarray(x.T), tau, axis=0, rng=3)
        assert_bitwise_equal(np.ascontiguousarray(lgt.T), lg)


@pytest.mark.parametrize("K", [7, 300])
@pytest.mark.parametrize("dtn,tau_zero,tau_tiny", CASES[:3], ids=IDS[:3])
def test_mask_and_per_row_tau(dtn, tau_zero, tau_tiny, K):
    dt = _dtype(dtn)
    gen = np.random.default_rng(K)
    x = (2 * gen.standard_normal((12, K))).astype(dt)
    mask = gen.random((12, K)) < 0.6
    mask[:, 0] = True
    y = gs.gumbel_softmax(x, tau_zero, mask=mask, rng=5)
    lg = gs.log_gumbel_softmax(x, tau_zero, mask=mask, rng=5)
    xm = np.where(mask, x, np.array(-INF, dt)).astype(dt)
    _expect_uniform(y, xm, False, RTOL[dtn])
    _expect_uniform(lg, xm, True, RTOL[dtn])
    assert_bitwise_equal(y, gs.gumbel_softmax(xm, tau_zero, rng=5))
    # per-row tau mixing 1/tau == 0 with ordinary rows (and tau = 1): each row as alone
    taus = np.resize([tau_zero, 0.5, 1.0, tau_tiny], 12)
    for log in (False, True):
        f = gs.log_gumbel_softmax if log else gs.gumbel_softmax
        yr = f(xm, taus, rng=gs.Philox(6))
        for r in range(12):
            alone = f(xm[r : r + 1], taus[r], rng=gs.Philox(6, counter=r))
            assert_bitwise_equal(yr[r : r + 1], alone, f"row {r}")
        _expect_uniform(yr[taus == tau_zero], xm[taus == tau_zero], log, RTOL[dtn])


@pytest.mark.parametrize("dtn", ["float32", "float64"])
def test_long_single_row(dtn):
    """A row long enough to be split over the threads in segments."""
    dt = np.dtype(dtn)
    x = np.random.default_rng(1).standard_normal((1, 70001)).astype(dt)
    x[0, ::7] = -INF
    tau = TAU_HI if dtn == "float32" else 1.7e308
    for log in (False, True):
        f = gs.log_gumbel_softmax if log else gs.gumbel_softmax
        y = f(x, tau, rng=2)
        _expect_uniform(y, x, log, 4 * RTOL[dtn])
        assert_bitwise_equal(y, f(np.ascontiguousarray(x.T), tau, axis=0, rng=2).T)


@pytest.mark.parametrize("dtn,tau_zero,tau_tiny", CASES, ids=IDS)
def test_undefined_rows_stay_nan(dtn, tau_zero, tau_tiny):
    dt = _dtype(dtn)
    x = np.array([[0, np.nan, 1], [-INF] * 3, [INF, 0, 1], [0, -INF, 2]], dt)
    for tau in (t for t in (tau_zero, tau_tiny) if t is not None):
        for hard in (False, True):
            y = gs.gumbel_softmax(x, tau, hard=hard, rng=1)
            assert np.all(np.isnan(_f64(y[:3]))) and np.all(np.isfinite(_f64(y[3])))
        assert np.all(np.isnan(_f64(gs.log_gumbel_softmax(x, tau, rng=1)[:3])))


@pytest.mark.parametrize("dtn,tau_zero,tau_tiny", CASES, ids=IDS)
def test_relaxed_bernoulli_limit(dtn, tau_zero, tau_tiny):
    dt = _dtype(dtn)
    x = np.array([INF, -INF, 0.0, -0.0, 3.0, -5.0, np.nan, 1e-30] * 5, dt).reshape(5, 8)
    for tau in (t for t in (tau_zero, tau_tiny) if t is not None):
        y = _f64(gs.relaxed_bernoulli(x, tau, rng=2))
        h, s = gs.relaxed_bernoulli(x, tau, hard=True, return_soft=True, rng=2)
        assert_bitwise_equal(s, gs.relaxed_bernoulli(x, tau, rng=2))
        assert np.all(y[:, 0] == 1) and np.all(y[:, 1] == 0) and np.all(np.isnan(y[:, 6]))
        assert np.all(_f64(h)[:, 0] == 1) and np.all(_f64(h)[:, 1] == 0)
        if tau == tau_zero or dtn == "float64":
            # finite logits: sigmoid((x + L) / tau) -> 1/2 (float64: exactly, as 1/tau
            # times |x + L| < 1e3 is far below the half-ulp of 1/2)
            assert np.all(y[:, [2, 3, 4, 5, 7]] == 0.5)
        # a per-element tau array mixing 1/tau == 0 with ordinary temperatures
        taus = np.resize([tau, 0.5], x.shape)
        ym = gs.relaxed_bernoulli(x, taus, rng=2)
        assert_bitwise_equal(ym[:, ::2], gs.relaxed_bernoulli(x, tau, rng=2)[:, ::2])
        assert_bitwise_equal(ym[:, 1::2], gs.relaxed_bernoulli(x, 0.5, rng=2)[:, 1::2])


@pytest.mark.parametrize("dtn,tau_zero,tau_tiny", CASES, ids=IDS)
def test_backwards_vanish(dtn, tau_zero, tau_tiny):
    """Every gradient carries a factor 1/tau: exactly 0 where it is 0 and the inputs are
    finite, and tiny (|grad| <= |y (g - dot)| / tau) where it is tiny; never NaN."""
    dt = _dtype(dtn)
    x = _rows(dt, 20, 3)
    w = np.random.default_rng(4).standard_normal(x.shape).astype(dt)
    for tau in (t for t in (tau_zero, tau_tiny) if t is not None):
        _, ys = gs.gumbel_softmax(x, tau, hard=True, return_soft=True, rng=3)
        for g in (
            gs.gumbel_softmax_backward(w, ys, tau),
            gs.gumbel_softmax_backward(w, logits=x, tau=tau, rng=3),
            gs.gumbel_softmax_backward(w, ys, np.full(x.shape[0], tau)),
            gs.relaxed_bernoulli_backward(w, ys, tau),
        ):
            gf = _f64(g)
            assert g.dtype == dt and np.all(np.isfinite(gf))
            if tau == tau_zero:
                assert np.all(gf == 0)
            else:
                assert np.all(np.abs(gf) <= 10 / tau)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tau", [0.5, 1e30, TAU_HI])
def test_backward_overflow_is_not_nan(dtype, tau):
    """Finite grad_y and y_soft whose exact gradient is finite (0 here), where the
    arithmetic meets 0 * inf: grad_y - dot overflows at an entry with y_soft = 0."""
    big = np.finfo(dtype).max
    g = np.array([[big, -big, 1.0], [big, -big, 0.0]], dtype)
    y = np.array([[0.0, 1.0, 0.0], [0.0, 0.5, 0.5]], dtype)
    out = gs.gumbel_softmax_backward(g, y, tau)
    assert np.all(np.isfinite(out))
    assert out[0, 0] == 0 and out[1, 0] == 0 and out[0, 2] == 0


@pytest.mark.parametrize("dtype", [np.float32])
def test_concrete_log_prob_rejects_tau_beyond_the_dtype(dtype):
    """concrete_log_prob takes tau itself (not 1/tau) and needs a normal tau in the
    data's dtype: the float32 boundary taus are far beyond it and raise."""
    y = np.full(3, 1 / 3, dtype)
    for tau in (TAU_LO, TAU_HI):
        with pytest.raises(ValueError, match="tau"):
            gs.concrete_log_prob(y, np.zeros(3, dtype), tau)


def _uniform_log_prob(x, tau):
    """log p(y) at the uniform y = 1/K, in closed form: with l = -log K every
    x - tau l is x + tau log K, and the tau log K cancel between sum(s) and K lse(s):
    lgamma(K) + (K-1) log tau + sum(x) - K logsumexp(x) + K log K."""
    x = np.asarray(x, np.float64)
    K = x.size
    m = x.max()
    lse = m + math.log(np.exp(x - m).sum())
    return math.lgamma(K) + (K - 1) * math.log(tau) + x.sum() - K * lse + K * math.log(K)


@pytest.mark.parametrize("K", [2, 3, 4, 17, 100])
@pytest.mark.parametrize(
    "dtype,tau",
    [
        (np.float64, 1e20),
        (np.float64, 1e300),
        (np.float64, 1.7e308),
        (np.float64, float(np.finfo(np.float64).max)),
        (np.float32, 1e30),
        (np.float32, 3e38),
    ],
)
def test_concrete_log_prob_uniform_y_huge_tau(dtype, tau, K):
    """Finite and accurate where tau l alone overflows or rounds x away (the exact value
    is moderate: the huge terms cancel)."""
    x = np.random.default_rng(K).standard_normal(K).astype(dtype)
    y = np.full(K, 1 / K, dtype)
    want = _uniform_log_prob(x, tau)
    eps = np.finfo(dtype).eps
    tol = 64 * K * eps * (abs(want) + np.abs(x.astype(np.float64)).sum() + K * math.log(K))
    got = gs.concrete_log_prob(y, x, tau)
    assert got.dtype == dtype and abs(float(got) - want) <= tol
    # log space: the density of l = log y, without the -sum(l) = K log K term
    got = gs.concrete_log_prob(np.log(y), x, tau, log_space=True)
    assert abs(float(got) - (want - K * math.log(K))) <= tol


@pytest.mark.parametrize("tau", [1e5, 1e20, 1e300, 1.7e308])
def test_concrete_log_prob_huge_tau_against_exact(tau):
    """float64, log space, l spread over a few ulps: against the formula evaluated with
    exact rational s = x - tau l (only the exp and log of logsumexp in floating point)."""
    from fractions import Fraction

    K = 6
    gen = np.random.default_rng(int(math.log10(tau)))
    x = gen.standard_normal(K)
    for spread in (0, 1, 4):
        l = -1.7 + gen.integers(0, spread + 1, K) * 2.0**-52
        s = [Fraction(float(xc)) - Fraction(tau) * Fraction(float(lc)) for xc, lc in zip(x, l)]
        m = max(s)
        sum_e = math.fsum(math.exp(float(sc - m)) for sc in s)
        want = (
            math.lgamma(K) + (K - 1) * math.log(tau) + float(sum(s) - K * m) - K * math.log(sum_e)
        )
        spread_s = float(tau * (l.max() - l.min()))
        tol = 64 * K * 2.0**-52 * (abs(want) + spread_s + np.abs(x).sum() + K)
        got = float(gs.concrete_log_prob(l, x, tau, log_space=True))
        assert abs(got - want) <= tol, (spread, got, want)


@pytest.mark.parametrize(
    "dtype,tau", [(np.float64, 1.7e308), (np.float32, 3e38), (np.float64, 0.5)]
)
def test_concrete_log_prob_huge_tau_keeps_the_contract(dtype, tau):
    """A zero y, a NaN y or logit, or a +inf logit: NaN; a -inf logit where y > 0: -inf
    (a density of 0); other rows unaffected."""
    K = 4
    y = np.full((6, K), 1 / K, dtype)
    x = np.zeros((6, K), dtype)
    y[0, 1] = 0
    y[1, 2] = np.nan
    x[2, 0] = np.nan
    x[3, 3] = np.inf
    x[4, 1] = -np.inf
    out = gs.concrete_log_prob(y, x, tau)
    assert np.all(np.isnan(out[:4]))
    assert out[4] == -np.inf
    assert np.isfinite(out[5])
    assert float(out[5]) == pytest.approx(_uniform_log_prob(x[5], tau), rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concrete_log_prob_tau_bounds_scalar_and_array_agree(dtype):
    """concrete_log_prob's tau must be a normal number of the data's dtype, the bounds
    included; a scalar tau is checked in floats, an array elementwise: the two agree at
    both bounds and just past them (the next float64 beyond; past float64's max that is
    inf, refused as not finite)."""
    info = np.finfo(dtype)
    y = np.array([[0.25, 0.75]], dtype)
    x = np.zeros((1, 2), dtype)
    lo, hi = float(info.tiny), float(info.max)
    for tau in (lo, hi):  # accepted, the same bits either way
        assert_bitwise_equal(gs.concrete_log_prob(y, x, tau), gs.concrete_log_prob(y, x, [tau]))
    for tau in (math.nextafter(lo, 0.0), math.nextafter(hi, math.inf)):
        for t in (float(tau), np.array([float(tau)])):
            with pytest.raises(ValueError, match="tau"):
                gs.concrete_log_prob(y, x, t)
