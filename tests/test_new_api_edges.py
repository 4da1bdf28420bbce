"""Edge cases of the issue-5 functions found in review: values outside the log's range in
concrete_log_prob, temperatures outside the data type's normal range, 0-d half-precision
inputs, failing recompute calls that must consume nothing, bool k, huge steps."""

import math

import gumbel_softmax as gs
import numpy as np
import pytest
from scipy import special


def _concrete64(y, x, tau, log_space=False):
    """The Concrete log-density in float64 with NumPy's log (README formula)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    K = y.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        l = y if log_space else np.log(y)
        s = x - tau * l
        res = (
            math.lgamma(K) + (K - 1) * math.log(tau) + np.sum(s, -1) - K * special.logsumexp(s, -1)
        )
        if not log_space:
            res = res - np.sum(l, -1)
    return res


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concrete_log_prob_outside_logs_range(dtype):
    tiny = np.finfo(dtype).tiny
    sub = np.finfo(dtype).smallest_subnormal
    x = np.zeros(2, dtype)
    # subnormal y: finite and equal to the float64 formula (relative to the terms' size)
    for y0 in (sub, sub * 7, tiny / 3, tiny / 2**10):
        y = np.array([y0, 1 - y0], dtype=dtype)
        got = gs.concrete_log_prob(y, x, 0.5)
        ref = _concrete64(y, x, 0.5)
        assert np.isfinite(got)
        assert abs(got - ref) <= 64 * np.finfo(dtype).eps * (1 + abs(ref)), (y0, got, ref)
    # zero, negative, NaN: NaN, as the float64 formula gives; +inf: -inf, likewise;
    # never a finite value
    for y in ([0.0, 1.0], [-0.5, 1.5], [np.nan, 1.0], [np.inf, 1.0]):
        got = gs.concrete_log_prob(np.array(y, dtype), x, 0.5)
        ref = _concrete64(y, x, 0.5)
        assert not np.isfinite(ref)
        assert np.array_equal(got, ref.astype(dtype), equal_nan=True), (y, got, ref)
    # the library's own small-tau samples, which hold exact zeros and subnormals
    z = np.zeros((1, 50), dtype)
    ys = gs.gumbel_softmax(z, tau=0.05, rng=3)
    if dtype == np.float32:  # float64 samples need a far smaller tau to underflow
        assert np.any(ys == 0) and np.any((ys > 0) & (ys < tiny))
    got = gs.concrete_log_prob(ys, z, 0.05)
    ref = _concrete64(ys, z, 0.05)
    assert np.array_equal(np.isnan(got), np.isnan(ref))


def test_concrete_log_prob_tau_range():
    y = np.array([0.25, 0.75])
    x = np.array([0.3, -0.2])
    for tau in (1e-40, 1e-44, 1e-46, 1e39):
        with pytest.raises(ValueError, match="tau"):
            gs.concrete_log_prob(y.astype(np.float32), x.astype(np.float32), tau)
        got = gs.concrete_log_prob(y, x, tau)  # fine in float64
        assert np.isclose(got, _concrete64(y, x, tau), rtol=1e-12, atol=1e-9)
    with pytest.raises(ValueError, match="tau"):
        gs.concrete_log_prob(y.astype(np.float32), x.astype(np.float32), np.array(1e-40))


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16"])
def test_zero_d_half_keeps_its_shape(dtype):
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dtype = ml_dtypes.bfloat16
    x = np.array(0.5, dtype)
    y = gs.relaxed_bernoulli(x, rng=1)
    assert y.shape == () and y.dtype == np.dtype(dtype)
    assert y == np.array(gs.relaxed_bernoulli(np.float32(0.5), rng=1)).astype(dtype)
    b = gs.relaxed_bernoulli_backward(np.array(1, dtype), np.array(0.5, dtype))
    assert b.shape == () and b.dtype == np.dtype(dtype)
    c = gs.concrete_log_prob(np.array([0.25, 0.75], dtype), np.zeros(2, dtype))
    assert c.shape == () and c.dtype == np.dtype(dtype)


def test_failing_recompute_consumes_nothing():
    x = np.zeros((2, 3))
    for kwargs in (
        dict(grad_y=np.zeros((2, 3), complex)),
        dict(grad_y=np.zeros((2, 3)), out=np.zeros((3, 3))),
        dict(grad_y=np.zeros((2, 3)), out=np.zeros((2, 3), np.float32)),
        dict(grad_y=np.zeros((2, 3)), tau=np.array([1.0, 2.0, 3.0])),
        dict(grad_y=np.zeros((2, 3)), mask=np.ones(3, np.int8)),
        dict(grad_y=np.zeros((2, 4))),
    ):
        gen = np.random.default_rng(0)
        state = gen.bit_generator.state
        grad = kwargs.pop("grad_y")
        with pytest.raises((TypeError, ValueError)):
            gs.gumbel_softmax_backward(grad, logits=x, rng=gen, **kwargs)
        assert gen.bit_generator.state == state, kwargs


def test_top_k_rejects_bool_k():
    rng = gs.Philox(1)
    for k in (True, np.bool_(True)):
        with pytest.raises(TypeError, match=r"\bk\b"):
            gs.top_k(np.zeros(4), k, rng=rng)
    assert rng.counter == 0


def test_anneal_tau_any_int_step_and_every():
    assert gs.anneal_tau(10**20) == 0.5
    assert gs.anneal_tau(10**20, min_tau=1e-300, rate=0.0) == 1.0
    assert gs.anneal_tau(5, every=2**64) == 1.0
    np.testing.assert_array_equal(gs.anneal_tau(np.array([0, 10**6]), every=2**64), [1.0, 1.0])
    assert gs.anneal_tau(np.int64(1000), rate=1e-4) == pytest.approx(math.exp(-0.1))
