"""Statistical tests of the samples' distribution.

Every hypothesis test here uses a fixed seed and rejects at the false-alarm rate
``ALPHA = 1e-3``: a correct implementation fails a given test with probability 1e-3 over
the choice of seed (and, the seeds being fixed, either always or never on every machine,
since the stream is bitwise reproducible).  The tolerance tests on the mean of the soft
sample allow 6 standard errors (a two-sided normal false-alarm rate of about 2e-9) plus
a deterministic bound on the relaxation bias, derived in each test.
"""

import gumbel_softmax as gs
import numpy as np
import pytest
from scipy import stats

ALPHA = 1e-3
N = 10**5


def _softmax64(logits):
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


ONE_HOT_CASES = {
    # K=4, one category of probability 1e-3 (about 100 expected counts)
    "rare-1e-3": np.log([0.001, 0.2, 0.3, 0.499]),
    "uniform-10": np.zeros(10),
    "spread-7": np.array([2.0, -1.0, 0.5, 3.0, -4.0, 0.0, 1.5]),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ONE_HOT_CASES))
def test_hard_frequencies_chisquare(name, dtype):
    l = ONE_HOT_CASES[name].astype(dtype)
    K = l.size
    seed = 1000 + list(ONE_HOT_CASES).index(name) + (0 if dtype == np.float32 else 10)
    x = np.broadcast_to(l, (N, K))
    rng = gs.Philox(seed)
    y = gs.gumbel_softmax(x, 0.5, hard=True, rng=rng)
    assert rng.counter == N
    # exact one-hots
    assert np.all((y == 0.0) | (y == 1.0))
    assert np.all(np.count_nonzero(y, axis=1) == 1)
    counts = np.count_nonzero(y, axis=0)
    p = _softmax64(l)  # the probabilities of the logits as given (in their dtype)
    expected = N * p / p.sum()
    res = stats.chisquare(counts, expected)
    assert res.pvalue > ALPHA, (counts, expected, res)
    # tau does not change the argmax: the one-hot is the same for any tau
    y2 = gs.gumbel_softmax(x, 7.0, hard=True, rng=gs.Philox(seed))
    np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(N,), (250, 400)])
def test_gumbel_kstest(shape, dtype):
    seed = 77 + len(shape) + (0 if dtype == np.float32 else 100)
    g = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(seed, counter=2**32 - 50))
    assert g.dtype == dtype and g.shape == shape
    assert np.all(np.isfinite(g))
    res = stats.kstest(g.ravel().astype(np.float64), "gumbel_r")
    assert res.pvalue > ALPHA, res


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gumbel_moments(dtype):
    # mean = Euler's gamma, variance = pi**2 / 6; 6 standard errors
    g = gs.gumbel((N,), dtype=dtype, rng=gs.Philox(31337)).astype(np.float64)
    gamma = np.euler_gamma
    var = np.pi**2 / 6
    assert abs(g.mean() - gamma) < 6 * np.sqrt(var / N)
    # Var(s**2) ~ var**2 * (2 + excess kurtosis) / N, the Gumbel's excess kurtosis is 12/5
    assert abs(g.var(ddof=1) - var) < 6 * var * np.sqrt((2 + 12 / 5) / N)


LOGITS_MEAN = np.log([0.1, 0.2, 0.3, 0.4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_mean_large_tau_is_uniform(dtype):
    """For tau -> inf, y -> 1/K.  To first order in 1/tau,
    E[y_i] = 1/K + (l_i - mean(l)) / (K tau) (the noise has the same mean in every
    category); the second-order term is below max (l - mean l)**2 / (2 K tau**2) << 1/tau**2.
    Allowed: 6 standard errors of the sample mean + 1/tau**2 around the first-order value,
    and all of it well inside 0.01 of uniform, while softmax(l) is 0.15 away from it.
    """
    tau = 100.0
    K = LOGITS_MEAN.size
    l = LOGITS_MEAN.astype(dtype)
    y = gs.gumbel_softmax(np.broadcast_to(l, (N, K)), tau, rng=gs.Philox(4242))
    y = y.astype(np.float64)
    m = y.mean(axis=0)
    se = y.std(axis=0, ddof=1) / np.sqrt(N)
    l64 = l.astype(np.float64)
    first_order = 1 / K + (l64 - l64.mean()) / (K * tau)
    assert np.all(np.abs(m - first_order) <= 6 * se + 1 / tau**2), (m, first_order, se)
    assert np.all(np.abs(m - 1 / K) < 0.01)
    assert np.max(np.abs(_softmax64(l) - 1 / K)) > 0.1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_soft_mean_small_tau_is_softmax(dtype):
    """For tau -> 0, y -> one-hot(argmax(l + g)), whose mean is softmax(l).  The
    relaxation bias |E[y_i] - p_i| is at most E|y_i - h_i| <= sum over the other
    categories j of E[exp(-(z_top - z_j) / tau)] with z = l + g; z_i - z_j is logistic
    with density <= 1/4, so each term is <= tau / 4 and the bias is <= K * tau.
    Allowed: 6 standard errors of the sample mean + K * tau; softmax(l) is 0.15 away from
    uniform, the tolerance about 0.015.
    """
    tau = 1e-3
    K = LOGITS_MEAN.size
    l = LOGITS_MEAN.astype(dtype)
    y = gs.gumbel_softmax(np.broadcast_to(l, (N, K)), tau, rng=gs.Philox(2718))
    assert np.all(np.isfinite(y))
    y = y.astype(np.float64)
    m = y.mean(axis=0)
    se = y.std(axis=0, ddof=1) / np.sqrt(N)
    p = _softmax64(l)
    tol = 6 * se + K * tau
    assert np.all(np.abs(m - p) <= tol), (m, p, tol)
    assert np.all(tol < 0.03)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hard_one_hot_is_argmax_of_soft_sample(dtype):
    # the one-hot and the relaxed sample come from the same noise: at tau = 1 the
    # relaxed sample is largest at the one-hot position (up to exact ties after rounding)
    l = LOGITS_MEAN.astype(dtype)
    y, ys = gs.gumbel_softmax(
        np.broadcast_to(l, (20000, 4)), 1.0, hard=True, return_soft=True, rng=gs.Philox(555)
    )
    hot = np.argmax(y, axis=1)
    top = ys.max(axis=1)
    assert np.all(ys[np.arange(20000), hot] == top)
