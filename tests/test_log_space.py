"""gs.log_gumbel_softmax and gs.concrete_log_prob.

log_gumbel_softmax
------------------
The contract: ``log y = z - log(sum(exp(z)))`` with ``z = (v - max v) / tau``,
``v = x + g`` (``g`` the noise ``gumbel_softmax`` adds from the same state), computed in
the dtype of ``x``.  The reference below rounds ``v`` to that dtype exactly as the
samplers do (docs/contract.md "Forward and backward arithmetic": ``v = x + g`` in the dtype of the
data) and does the rest in float64.  Error budget of the package's result against it,
``eps`` of the dtype, ``K`` the row length, ``ref`` the reference value:

- ``v_i - m`` (one rounding), ``* (1/tau)`` (1/tau rounded once, then one product):
  ``|dz_i| <= 1.5 eps |z_i|``, and ``|z_i| <= |ref_i| + log K`` (``lse`` is in
  ``[0, log K]`` because ``max z = 0``);
- ``lse = log(sum(exp(z)))``: the ``dz`` move it by the softmax-weighted mean of
  ``|dz_k|`` <= ``1.5 eps * sum_k p_k |z_k| <= 1.5 eps * H(p) <= 1.5 eps log K``;
  ``exp`` (<= 2 ulp), the 16-partial-sum summation (``<= (K/16 + 4) eps`` relative) and
  ``log`` (<= 2 ulp of ``lse <= log K``) add ``(K/16 + 8) eps + 2 eps log K``;
- the final subtraction: ``eps/2 |ref|``.

Total below ``eps * (2 |ref| + 6 log K + K/16 + 8)``; the tests allow
``eps * (8 max(1, |ref|) + 8 log K + K/16 + 8)`` (``log_tol``): a few eps relative to
``max(1, |value|)`` plus the summation term.  The tolerance does NOT grow with
``max|x + g| / tau`` (as the forward's ``fwd_rtol`` does) because the reference uses the
same rounded ``v``: an implementation that loses accuracy when subtracting the maximum or
scaling by ``1/tau`` fails it.

concrete_log_prob
-----------------
The Concrete density (Maddison, Mnih & Teh 2017, sec. 3.3) with respect to Lebesgue
measure on the first ``K - 1`` coordinates of the simplex (the convention of
torch.distributions.RelaxedOneHotCategorical), and for ``log_space=True`` the
ExpConcrete density of ``l = log y``.  Checked against a float64 NumPy/SciPy evaluation
of the formula, against torch when installed, and by integrating it:

- K = 2, ``y = (s, 1 - s)``: the density w.r.t. ``ds`` is the binary Concrete density;
  ``s = sigmoid((d + L) / tau)``, ``d = x_1 - x_2``, ``L ~ Logistic(0, 1)``, so
  ``P(s <= a) = sigmoid(tau logit(a) - d)`` in closed form, checked on both halves of
  (0, 1) with scipy.integrate.quad (the upper half parametrised by ``t = 1 - s`` so that
  points near ``s = 1`` are representable).
- ExpConcrete: the formula ``F(l)`` is the density of the log-ratios
  ``r_k = l_k - l_K`` (k < K) w.r.t. ``dr_1 ... dr_(K-1)``.  (Derivation:
  ``l = Z - logsumexp(Z)`` with ``Z_k = (x_k + g_k) / tau``; integrating the density of
  ``Z`` along the direction (1, ..., 1) gives ``F`` per unit of ``dr``; equivalently
  ``dr = dl_1 ... dl_(K-1) / y_K = dy_1 ... dy_(K-1) / (y_1 ... y_K)``, which is why the
  two formulas differ by ``sum_k log y_k`` over all K coordinates.)  For K = 2,
  ``r = logit(s) = (d + L) / tau`` has density ``tau * f_L(tau r - d)``, compared
  pointwise and integrated; for K = 3 both densities are integrated over ``r`` in R^2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_bitwise_equal, n_rows, random_logits
from reference import eps_of, fwd_rtol, tiny_atol
from scipy import integrate, special

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
TAUS = [1e-3, 0.1, 0.5, 1.0, 3.0]


# ----------------------------------------------------------------------- helpers
def _batch_shape(shape, axis):
    ax = axis % len(shape)
    return tuple(shape[:ax]) + tuple(shape[ax + 1 :])


def _row_tau(tau, shape, axis):
    """tau (scalar, batch-broadcastable or keepdims) as an array of the batch shape."""
    t = np.asarray(tau, dtype=np.float64)
    batch = _batch_shape(shape, axis)
    if t.ndim == len(shape):  # keepdims form: length 1 on axis
        t = np.squeeze(t, axis=axis % len(shape))
    return np.broadcast_to(t, batch)


def log_gs_ref(x, g, tau, dtype, axis=-1, mask=None):
    """float64 reference of log_gumbel_softmax: v = x + g rounded in ``dtype``, masked
    entries -inf, z = (v - max v) / tau (tau per row), z - log(sum(exp(z))); NaN rows for
    NaN / +inf / all -inf logits.  Returned with ``axis`` in place."""
    dt = np.dtype(dtype)
    shape = np.shape(x)
    xd = np.asarray(x).astype(dt)
    if mask is not None:
        xd = np.where(np.broadcast_to(mask, shape), xd, dt.type(-np.inf))
    xm = np.moveaxis(xd, axis, -1)
    gm = np.moveaxis(np.asarray(g).astype(dt), axis, -1)
    with np.errstate(all="ignore"):
        v = (xm + gm).astype(np.float64)
        bad = np.any(np.isnan(xm) | np.isposinf(xm), axis=-1) | np.all(np.isneginf(xm), axis=-1)
        t = _row_tau(tau, shape, axis)[..., None]
        m = np.max(v, axis=-1, keepdims=True)
        z = (v - m) / t
        z = np.where(np.isneginf(xm), -np.inf, z)
        lse = np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
        out = z - lse
    out[bad] = np.nan
    return np.moveaxis(out, -1, axis)


def log_tol(ref, K, dtype):
    """Absolute tolerance for log_gumbel_softmax (derivation in the module docstring)."""
    eps = eps_of(dtype)
    with np.errstate(invalid="ignore"):
        mag = np.maximum(1.0, np.abs(ref))
    return eps * (8.0 * mag + 8.0 * math.log(K) + K / 16.0 + 8.0)


def check_log(l, ref, K, dtype, what="log_gumbel_softmax"):
    """Finite entries within log_tol; -inf and NaN exactly where the reference has them."""
    l64 = np.asarray(l, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(l64), np.isnan(ref), err_msg=what + ": NaN pattern")
    np.testing.assert_array_equal(
        np.isneginf(l64), np.isneginf(ref), err_msg=what + ": -inf pattern"
    )
    assert not np.any(np.isposinf(l64)), what + ": +inf"
    fin = np.isfinite(ref)
    err = np.abs(l64[fin] - ref[fin])
    tol = log_tol(ref[fin], K, dtype)
    if err.size and not np.all(err <= tol):
        i = int(np.argmax(err - tol))
        raise AssertionError(
            f"{what}: {int(np.sum(err > tol))} of {err.size} out of "
            f"tolerance; worst got {l64[fin][i]!r}, expected "
            f"{ref[fin][i]!r}, |err| {err[i]:.3e} > {tol[i]:.3e}"
        )


# ============================================================= log_gumbel_softmax
CASES = [
    ((6, 1), -1),
    ((6, 2), -1),
    ((9, 7), -1),
    ((5, 32), -1),
    ((5, 33), 0),
    ((3, 1000), -1),
    ((11,), 0),
    ((4, 6, 5), 0),
    ((4, 6, 5), 1),
    ((4, 6, 5), -1),
]
CASE_IDS = [f"{s}-ax{a}" for s, a in CASES]


@pytest.mark.parametrize("layout", ["contiguous", "negative", "strided"])
@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_log_gs_matches_reference(gs, moved_noise, dtype, case, tau, layout):
    shape, axis = case
    x = random_logits(shape, dtype, seed=17 + shape[axis])
    if layout == "negative":
        x = np.flip(x)
    elif layout == "strided":
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=dtype)
        big[..., ::2] = x
        x = big[..., ::2]
    x_before = x.copy()
    seed, p = 606, 2**32 - 2
    rng = gs.Philox(seed, counter=p)
    l = gs.log_gumbel_softmax(x, tau, axis=axis, rng=rng)
    assert l.dtype == np.dtype(dtype) and l.shape == shape
    assert rng.counter == p + n_rows(shape, axis)
    np.testing.assert_array_equal(x, x_before)
    g = moved_noise(shape, dtype, seed, p, axis)
    ref = log_gs_ref(x, g, tau, dtype, axis)
    assert np.all(np.isfinite(l))
    check_log(l, ref, shape[axis], dtype)
    assert np.all(l <= 0)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_exp_is_gumbel_softmax(gs, moved_noise, dtype, axis, tau):
    """exp(log_gumbel_softmax) ~= gumbel_softmax from the same state: the forward is within
    fwd_rtol (relative) of the exact softmax (test_forward.py), the log within log_tol
    (absolute, i.e. relative after exp) of it; allowed: the sum of the two (fwd_rtol
    twice: exact vs rounded v) plus tiny_atol for subnormal y."""
    shape = (40, 13)
    x = random_logits(shape, dtype, seed=3)
    x[0, 2] = -np.inf
    l = gs.log_gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(8, counter=3))
    y = gs.gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(8, counter=3))
    g = moved_noise(shape, dtype, 8, 3, axis)
    K = shape[axis]
    xf = np.where(np.isneginf(x), 0.0, x)
    ey = np.exp(l.astype(np.float64))
    y64 = y.astype(np.float64)
    lfin = l[np.isfinite(l)].astype(np.float64)
    rtol = 2.0 * fwd_rtol(xf, g, tau, dtype, K) + float(np.max(log_tol(lfin, K, dtype)))
    err = np.abs(ey - y64)
    bound = rtol * np.maximum(ey, y64) + tiny_atol(dtype)
    assert np.all(err <= bound), float(np.max(err / bound))
    assert ey[0, 2] == 0.0 and y[0, 2] == 0.0


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_tiny_tau_finite_where_log_of_sample_is_minus_inf(gs, moved_noise, dtype):
    """tau = 1e-3: y = gumbel_softmax underflows to exactly 0 for all but the top entry
    (so np.log(y) is -inf there), while log_gumbel_softmax stays finite and equals the
    reference (of order -(v_max - v_i) / tau, thousands)."""
    tau = 1e-3
    x = np.array([[0.0, -1.0, -5.0, 2.0, 0.5, 1.0]] * 8, dtype=dtype)
    y = gs.gumbel_softmax(x, tau, rng=gs.Philox(12))
    with np.errstate(divide="ignore"):
        logy = np.log(y)
    assert np.isneginf(logy).sum() >= 8  # fact 1: the log of the sample is -inf somewhere
    l = gs.log_gumbel_softmax(x, tau, rng=gs.Philox(12))
    assert np.all(np.isfinite(l))  # fact 2: the log-space sample is finite everywhere
    g = moved_noise(x.shape, dtype, 12, 0)
    ref = log_gs_ref(x, g, tau, dtype)
    check_log(l, ref, x.shape[-1], dtype)
    assert np.min(ref) < -100.0  # really far below what exp can represent
    # the argmax is the categorical draw from the same state
    np.testing.assert_array_equal(np.argmax(l, axis=-1), gs.categorical(x, rng=gs.Philox(12)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_argmax_is_categorical(gs, dtype):
    # log y is non-decreasing in v = x + g: the categorical draw attains the row maximum
    x = random_logits((300, 9), dtype, seed=5)
    for tau in (0.1, 1.0, 2.0):
        l = gs.log_gumbel_softmax(x, tau, rng=gs.Philox(77))
        c = gs.categorical(x, rng=gs.Philox(77))
        np.testing.assert_array_equal(l[np.arange(300), c], np.max(l, axis=-1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_minus_inf_logits_and_mask(gs, moved_noise, dtype):
    shape = (10, 7)
    x = random_logits(shape, dtype, seed=9)
    r = np.random.default_rng(9)
    holes = r.random(shape) < 0.3
    holes[:, 0] = False
    x[holes] = -np.inf
    l = gs.log_gumbel_softmax(x, 0.5, rng=gs.Philox(4, counter=1))
    np.testing.assert_array_equal(np.isneginf(l), holes)  # -inf exactly there
    assert np.all(np.isfinite(l[~holes]))
    check_log(l, log_gs_ref(x, moved_noise(shape, dtype, 4, 1), 0.5, dtype), 7, dtype)

    # mask=: exactly as if the masked logits were -inf (bitwise, same state)
    xf = random_logits(shape, dtype, seed=10)
    mask = r.random(shape) < 0.6
    mask[:, 3] = True
    for tau in (0.5, 1.0):
        lm = gs.log_gumbel_softmax(xf, tau, rng=gs.Philox(4, counter=1), mask=mask)
        li = gs.log_gumbel_softmax(
            np.where(mask, xf, -np.inf).astype(dtype), tau, rng=gs.Philox(4, counter=1)
        )
        assert_bitwise_equal(lm, li, "mask vs -inf")
        np.testing.assert_array_equal(np.isneginf(lm), ~mask)
        check_log(
            lm, log_gs_ref(xf, moved_noise(shape, dtype, 4, 1), tau, dtype, mask=mask), 7, dtype
        )
    # a broadcast mask along axis 0
    m0 = np.array([True, False, True, True, False, True, True, True, True, True])[:, None]
    l0 = gs.log_gumbel_softmax(xf, 0.7, axis=0, rng=gs.Philox(2), mask=m0)
    assert np.all(np.isneginf(l0[~m0[:, 0]])) and np.all(np.isfinite(l0[m0[:, 0]]))
    with pytest.raises(TypeError, match="mask"):
        gs.log_gumbel_softmax(xf, 0.7, rng=gs.Philox(2), mask=mask.astype(np.float32))
    with pytest.raises(ValueError, match="mask"):
        gs.log_gumbel_softmax(xf, 0.7, rng=gs.Philox(2), mask=np.ones((3, 7), dtype=bool))


@pytest.mark.parametrize("tau", [0.5, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_nan_rows(gs, dtype, tau):
    x = random_logits((7, 5), dtype, seed=12)
    x[1, 2] = np.nan
    x[2, 4] = np.inf
    x[3, :] = -np.inf
    x[4, :] = np.nan
    mask = np.ones(x.shape, dtype=bool)
    mask[5, :] = False  # fully masked row
    rng = gs.Philox(13, counter=2**63 - 1)
    l = gs.log_gumbel_softmax(x, tau, rng=rng, mask=mask)
    assert rng.counter == 2**63 - 1 + 7
    assert np.all(np.isnan(l[1:6]))
    # the other rows are bitwise those of a call with clean bad rows
    clean = x.copy()
    clean[1:6] = 0.0
    lc = gs.log_gumbel_softmax(clean, tau, rng=gs.Philox(13, counter=2**63 - 1))
    assert_bitwise_equal(l[[0, 6]], lc[[0, 6]])
    # and gumbel_softmax has its NaN rows at the same places
    y = gs.gumbel_softmax(x, tau, rng=gs.Philox(13, counter=2**63 - 1), mask=mask)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(l))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_out(gs, dtype, axis):
    shape = (4, 6, 5)
    x = random_logits(shape, dtype, seed=14)
    expected = gs.log_gumbel_softmax(x, 0.3, axis=axis, rng=gs.Philox(6, counter=4))
    # fresh out
    out = np.full(shape, 7.0, dtype=dtype)
    rng = gs.Philox(6, counter=4)
    res = gs.log_gumbel_softmax(x, 0.3, axis=axis, rng=rng, out=out)
    assert res is out and rng.counter == 4 + n_rows(shape, axis)
    assert_bitwise_equal(out, expected, "out")
    # non-contiguous view
    big = np.full((4, 12, 5), -5.0, dtype=dtype)
    view = big[::-1, ::2]
    res = gs.log_gumbel_softmax(x, 0.3, axis=axis, rng=gs.Philox(6, counter=4), out=view)
    assert res is view
    assert_bitwise_equal(view, expected, "view")
    assert np.all(big[:, 1::2] == -5.0)
    # in place, contiguous and strided
    for make in (lambda a: a.copy(), lambda a: np.flip(a.copy())):
        xi = make(x)
        x0 = xi.copy()
        exp_i = gs.log_gumbel_softmax(x0, 0.3, axis=axis, rng=gs.Philox(6, counter=4))
        res = gs.log_gumbel_softmax(xi, 0.3, axis=axis, rng=gs.Philox(6, counter=4), out=xi)
        assert res is xi
        assert_bitwise_equal(xi, exp_i, "in place")
    # wrong dtype / shape -> ValueError naming out, nothing written, no rows reserved
    other = np.float64 if dtype == np.float32 else np.float32
    for bad in (np.full(shape, 7.0, dtype=other), np.full((4, 6), 7.0, dtype=dtype)):
        rng = gs.Philox(6, counter=4)
        with pytest.raises(ValueError, match="out"):
            gs.log_gumbel_softmax(x, 0.3, axis=axis, rng=rng, out=bad)
        assert rng.counter == 4 and np.all(bad == 7.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_axis_is_moveaxis(gs, dtype):
    x = random_logits((4, 6, 5), dtype, seed=15)
    for axis in range(3):
        a = gs.log_gumbel_softmax(x, 0.4, axis=axis, rng=gs.Philox(3, counter=9))
        b = gs.log_gumbel_softmax(np.moveaxis(x, axis, -1), 0.4, rng=gs.Philox(3, counter=9))
        assert_bitwise_equal(a, np.moveaxis(b, -1, axis))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau(gs, moved_noise, dtype, axis):
    shape = (3, 7, 4)
    x = random_logits(shape, dtype, seed=16)
    batch = _batch_shape(shape, axis)
    tau = np.exp(np.random.default_rng(16).uniform(np.log(1e-2), np.log(10.0), size=batch))
    seed, p = 5, 2**32 - 5
    rng = gs.Philox(seed, counter=p)
    l = gs.log_gumbel_softmax(x, tau, axis=axis, rng=rng)
    assert rng.counter == p + n_rows(shape, axis)
    ref = log_gs_ref(x, moved_noise(shape, dtype, seed, p, axis), tau, dtype, axis)
    check_log(l, ref, shape[axis], dtype)
    # row r is bitwise the same row drawn alone with scalar tau[r] at stream row p + r
    lm = np.moveaxis(l, axis, -1)
    xm = np.moveaxis(x, axis, -1)
    for r, idx in enumerate(np.ndindex(*batch)):
        lr = gs.log_gumbel_softmax(xm[idx], float(tau[idx]), rng=gs.Philox(seed, counter=p + r))
        assert_bitwise_equal(lm[idx], lr, f"row {r}")
    # keepdims form and broadcastable forms give the same
    tk = np.expand_dims(tau, axis % 3)
    assert_bitwise_equal(
        gs.log_gumbel_softmax(x, tk, axis=axis, rng=gs.Philox(seed, counter=p)), l, "keepdims tau"
    )
    tb = tau[..., :1]  # broadcast along the last batch dimension
    lb = gs.log_gumbel_softmax(x, tb, axis=axis, rng=gs.Philox(seed, counter=p))
    check_log(
        lb,
        log_gs_ref(
            x, moved_noise(shape, dtype, seed, p, axis), np.broadcast_to(tb, batch), dtype, axis
        ),
        shape[axis],
        dtype,
    )
    # a constant array = the scalar
    tc = np.full(batch, 0.25)
    assert_bitwise_equal(
        gs.log_gumbel_softmax(x, tc, axis=axis, rng=gs.Philox(1)),
        gs.log_gumbel_softmax(x, 0.25, axis=axis, rng=gs.Philox(1)),
        "constant tau array",
    )


BAD_TAU = [
    0.0,
    -1.0,
    np.nan,
    np.inf,
    -np.inf,
    np.array([1.0, 0.0, 1.0, 1.0, 1.0, 1.0]),
    np.array([1.0, 1.0, -2.0, 1.0, 1.0, 1.0]),
    np.array([1.0, np.nan, 1, 1, 1, 1]),
    np.array([[1.0], [np.inf], [1.0], [1.0], [1.0], [1.0]]),
]


@pytest.mark.parametrize("tau", BAD_TAU, ids=repr)
def test_log_gs_bad_tau(gs, tau):
    x = random_logits((6, 5), np.float64, seed=1)
    out = np.full(x.shape, 7.25)
    rng = gs.Philox(1, counter=10)
    with pytest.raises(ValueError, match="tau"):
        gs.log_gumbel_softmax(x, tau, rng=rng, out=out)
    assert rng.counter == 10 and np.all(out == 7.25)


def test_log_gs_float16_computed_in_float32(gs):
    x16 = np.random.default_rng(2).standard_normal((30, 11)).astype(np.float16)
    a = gs.log_gumbel_softmax(x16, 0.5, rng=gs.Philox(5))
    b = gs.log_gumbel_softmax(x16.astype(np.float32), 0.5, rng=gs.Philox(5))
    assert a.dtype == np.float16
    assert_bitwise_equal(a, b.astype(np.float16))


# ================================================================ concrete_log_prob
def concrete_ref(y, x, tau, axis=-1, log_space=False):
    """float64 log density from the formula of the contract (Maddison et al. 2017)."""
    shape = np.shape(y)
    y = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1)
    x = np.moveaxis(np.broadcast_to(np.asarray(x, dtype=np.float64), shape), axis, -1)
    K = y.shape[-1]
    tr = _row_tau(tau, shape, axis)
    t = tr[..., None]
    logy = y if log_space else np.log(y)
    a = x - t * logy
    c = special.gammaln(K) + (K - 1) * np.log(tr) - K * special.logsumexp(a, axis=-1)
    if log_space:
        return c + np.sum(a, axis=-1)
    return c + np.sum(x - (t + 1) * logy, axis=-1)


def concrete_tol(y, x, tau, axis, log_space, eps):
    """Absolute tolerance: the formula's condition (sum of the magnitudes of what is
    added, K times the logsumexp's argument) times (8 + K/8) eps."""
    shape = np.shape(y)
    y = np.moveaxis(np.asarray(y, dtype=np.float64), axis, -1)
    x = np.moveaxis(np.broadcast_to(np.asarray(x, dtype=np.float64), shape), axis, -1)
    K = y.shape[-1]
    tr = _row_tau(tau, shape, axis)
    t = tr[..., None]
    logy = y if log_space else np.log(y)
    a = x - t * logy
    scale = (
        special.gammaln(K)
        + (K - 1) * np.abs(np.log(tr))
        + np.sum(np.abs(x) + (t + 1) * np.abs(logy), axis=-1)
        + K * (np.max(np.abs(a), axis=-1) + math.log(K))
    )
    return (8.0 + K / 8.0) * eps * scale


def simplex_points(K, shape_batch, seed, tau):
    """(y, l = log y) on the simplex: half Dirichlet(1), half Concrete samples drawn with
    NumPy's Gumbel noise (so that the tiny y of small tau occur), l = z - logsumexp(z)."""
    r = np.random.default_rng(seed)
    n = int(np.prod(shape_batch))
    half = n // 2
    y = r.dirichlet(np.ones(K), size=n)
    l = np.log(y)
    z = (r.standard_normal((half, K)) + r.gumbel(size=(half, K))) / tau
    l[:half] = z - special.logsumexp(z, axis=-1, keepdims=True)
    y[:half] = np.exp(l[:half])
    assert np.all(y > 0)
    return y.reshape(shape_batch + (K,)), l.reshape(shape_batch + (K,))


@pytest.mark.parametrize("log_space", [False, True])
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 2.5])
@pytest.mark.parametrize("K", [1, 2, 3, 5, 32])
def test_concrete_matches_formula(gs, K, tau, log_space):
    y, l = simplex_points(K, (6, 4), seed=K, tau=tau)
    x = random_logits((6, 4, K), np.float64, seed=K + 1)
    pt = l if log_space else y
    for axis in (-1, 0, 1):
        yy = np.moveaxis(pt, -1, axis)
        xx = np.moveaxis(x, -1, axis)
        got = gs.concrete_log_prob(yy, xx, tau, axis=axis, log_space=log_space)
        batch = _batch_shape(yy.shape, axis)
        assert np.shape(got) == batch and np.asarray(got).dtype == np.float64
        ref = concrete_ref(yy, xx, tau, axis, log_space)
        tol = concrete_tol(yy, xx, tau, axis, log_space, eps_of(np.float64))
        err = np.abs(np.asarray(got) - ref)
        assert np.all(err <= tol), (axis, float(np.max(err / tol)), got, ref)


def test_concrete_one_dimensional(gs):
    y = np.array([0.2, 0.5, 0.3])
    x = np.array([0.1, -0.4, 0.8])
    got = gs.concrete_log_prob(y, x, 0.7)
    assert np.ndim(got) == 0
    ref = concrete_ref(y, x, 0.7)
    assert abs(float(got) - float(ref)) <= float(
        concrete_tol(y, x, 0.7, -1, False, eps_of(np.float64))
    )


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 2.5])
@pytest.mark.parametrize("K", [2, 3, 7])
def test_concrete_log_space_relation_and_shift(gs, K, tau):
    """log p_y(y) = log p_l(log y) - sum_k log y_k (the two formulas), and the density
    depends on the logits only through softmax(logits) (shift invariance)."""
    y, l = simplex_points(K, (20,), seed=10 + K, tau=tau)
    x = random_logits((20, K), np.float64, seed=K)
    eps = eps_of(np.float64)
    py = np.asarray(gs.concrete_log_prob(y, x, tau))
    pl = np.asarray(gs.concrete_log_prob(np.log(y), x, tau, log_space=True))
    tol = concrete_tol(y, x, tau, -1, False, eps) + concrete_tol(np.log(y), x, tau, -1, True, eps)
    assert np.all(np.abs(py - (pl - np.sum(np.log(y), axis=-1))) <= tol)
    shifted = np.asarray(gs.concrete_log_prob(y, x + 3.75, tau))
    tol2 = concrete_tol(y, x + 3.75, tau, -1, False, eps) + concrete_tol(y, x, tau, -1, False, eps)
    assert np.all(np.abs(shifted - py) <= tol2)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_concrete_input_dtypes(gs, dtype):
    y, _ = simplex_points(4, (10,), seed=3, tau=0.5)
    y = y.astype(dtype)
    y /= y.sum(axis=-1, keepdims=True)
    x = random_logits((10, 4), dtype, seed=4)
    got = np.asarray(gs.concrete_log_prob(y, x, 0.5))
    assert got.dtype in (np.float32, np.float64) and got.shape == (10,)
    ref = concrete_ref(y, x, 0.5)
    tol = concrete_tol(y, x, 0.5, -1, False, eps_of(got.dtype))
    assert np.all(np.abs(got - ref) <= tol)


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("log_space", [False, True])
def test_concrete_per_row_tau(gs, log_space, axis):
    K = 5
    y, l = simplex_points(K, (12,), seed=21, tau=0.5)
    pt = l if log_space else y
    x = random_logits((12, K), np.float64, seed=22)
    tau = np.exp(np.random.default_rng(23).uniform(np.log(0.05), np.log(5.0), size=12))
    if axis == 0:
        pt, x = pt.T, x.T
    got = np.asarray(gs.concrete_log_prob(pt, x, tau, axis=axis, log_space=log_space))
    assert got.shape == (12,)
    ref = concrete_ref(pt, x, tau, axis, log_space)
    tol = concrete_tol(pt, x, tau, axis, log_space, eps_of(np.float64))
    assert np.all(np.abs(got - ref) <= tol)
    # each row = the scalar-tau call on that row
    for r in range(12):
        row_p = pt[r] if axis == -1 else pt[:, r]
        row_x = x[r] if axis == -1 else x[:, r]
        one = float(gs.concrete_log_prob(row_p, row_x, float(tau[r]), log_space=log_space))
        assert abs(one - got[r]) <= tol[r]
    # keepdims form
    tk = np.expand_dims(tau, axis)
    got_k = np.asarray(gs.concrete_log_prob(pt, x, tk, axis=axis, log_space=log_space))
    np.testing.assert_array_equal(got_k, got)
    # rows really use their own tau: the scalar mean tau gives something else
    other = np.asarray(
        gs.concrete_log_prob(pt, x, float(np.mean(tau)), axis=axis, log_space=log_space)
    )
    assert np.max(np.abs(other - got)) > 1e-3


@pytest.mark.parametrize("log_space", [False, True])
@pytest.mark.parametrize("tau", BAD_TAU, ids=repr)
def test_concrete_bad_tau(gs, tau, log_space):
    y, l = simplex_points(5, (6,), seed=1, tau=0.5)
    x = random_logits((6, 5), np.float64, seed=1)
    with pytest.raises(ValueError, match="tau"):
        gs.concrete_log_prob(l if log_space else y, x, tau, log_space=log_space)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 2.5])
@pytest.mark.parametrize("K", [2, 3, 6])
def test_concrete_matches_torch(gs, K, tau):
    torch = pytest.importorskip("torch")
    from torch.distributions.relaxed_categorical import (
        ExpRelaxedCategorical,
        RelaxedOneHotCategorical,
    )

    y, l = simplex_points(K, (16,), seed=30 + K, tau=tau)
    x = random_logits((16, K), np.float64, seed=31 + K)
    t = torch.tensor(tau, dtype=torch.float64)
    d = RelaxedOneHotCategorical(t, logits=torch.from_numpy(x), validate_args=False)
    want = d.log_prob(torch.from_numpy(y)).numpy()
    got = np.asarray(gs.concrete_log_prob(y, x, tau))
    tol = 2.0 * concrete_tol(y, x, tau, -1, False, eps_of(np.float64))
    assert np.all(np.abs(got - want) <= tol), (got, want)
    de = ExpRelaxedCategorical(t, logits=torch.from_numpy(x), validate_args=False)
    want_l = de.log_prob(torch.from_numpy(l)).numpy()
    got_l = np.asarray(gs.concrete_log_prob(l, x, tau, log_space=True))
    tol_l = 2.0 * concrete_tol(l, x, tau, -1, True, eps_of(np.float64))
    assert np.all(np.abs(got_l - want_l) <= tol_l), (got_l, want_l)


def _concrete64(y, x, tau, log_space=False):
    """The Concrete log-density in float64 with NumPy's log (docs/contract.md formula), for a
    scalar tau and the last axis.  Unlike ``concrete_ref`` it adds the terms in the
    docs/contract.md's order and keeps NumPy's NaN / -inf where y leaves the log's range."""
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


@pytest.mark.parametrize("log_space", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concrete_log_prob_of_minus_inf_logits(gs, dtype, log_space):
    """A -inf logit among finite ones gives -inf (the density is 0 inside the simplex,
    as the float64 formula and torch's log_prob give); a row of only -inf logits NaN
    (docs/user-guide.md)."""
    y = np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]], dtype)
    pt = np.log(y) if log_space else y
    x = np.array([[0.0, -np.inf, 0.0], [-np.inf, -np.inf, -np.inf]], dtype)
    got = gs.concrete_log_prob(pt, x, 0.5, log_space=log_space)
    assert got[0] == -np.inf and np.isnan(got[1]), got
    with np.errstate(invalid="ignore"):
        ref = _concrete64(pt.astype(np.float64)[:1], x.astype(np.float64)[:1], 0.5, log_space)
    assert ref[0] == -np.inf, ref


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concrete_log_prob_outside_logs_range(gs, dtype):
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


def test_concrete_log_prob_tau_range(gs):
    y = np.array([0.25, 0.75])
    x = np.array([0.3, -0.2])
    for tau in (1e-40, 1e-44, 1e-46, 1e39):
        with pytest.raises(ValueError, match="tau"):
            gs.concrete_log_prob(y.astype(np.float32), x.astype(np.float32), tau)
        got = gs.concrete_log_prob(y, x, tau)  # fine in float64
        assert np.isclose(got, _concrete64(y, x, tau), rtol=1e-12, atol=1e-9)
    with pytest.raises(ValueError, match="tau"):
        gs.concrete_log_prob(y.astype(np.float32), x.astype(np.float32), np.array(1e-40))


# ----------------------------------------------------------- densities integrate
K2_CASES = [
    ((0.0, 0.0), 1.0),
    ((1.5, -0.5), 0.5),
    ((-2.0, 1.0), 2.0),
    ((0.3, 0.0), 0.7),
    ((0.0, 1.0), 0.3),
]
QUAD = dict(epsabs=1e-12, epsrel=1e-12, limit=400)


def _expit(z):
    return special.expit(z)


@pytest.mark.parametrize("case", K2_CASES, ids=[f"x{c[0]}-tau{c[1]}" for c in K2_CASES])
def test_concrete_k2_integrates_to_one(gs, case):
    """K = 2, y = (s, 1 - s): the density w.r.t. ds (first K - 1 coordinates, as torch).
    s = sigmoid((d + L) / tau), so P(s <= a) = sigmoid(tau logit(a) - d), d = x1 - x2:
    the lower half (0, 1/2) holds sigmoid(-d), the upper half sigmoid(d), in total 1.
    The upper half is integrated as t = 1 - s in (0, 1/2) with y = (1 - t, t) (|ds/dt| = 1)
    so that points within 1e-16 of s = 1 (where most of the mass sits for small tau) are
    representable.  quad's error estimate is asserted below 1e-9; the density itself is
    accurate to ~1e-13 relative, so 1e-7 is a safe bound on |integral - exact|."""
    x, tau = np.array(case[0]), case[1]
    d = x[0] - x[1]

    def lower(s):
        return math.exp(float(gs.concrete_log_prob(np.array([s, 1.0 - s]), x, tau)))

    def upper(t):
        return math.exp(float(gs.concrete_log_prob(np.array([1.0 - t, t]), x, tau)))

    lo, e_lo = integrate.quad(lower, 0.0, 0.5, **QUAD)
    hi, e_hi = integrate.quad(upper, 0.0, 0.5, **QUAD)
    assert e_lo < 1e-9 and e_hi < 1e-9
    assert abs(lo - _expit(-d)) < 1e-7, (lo, _expit(-d))
    assert abs(hi - _expit(d)) < 1e-7, (hi, _expit(d))
    assert abs(lo + hi - 1.0) < 1e-7
    # the CDF at a = 0.1 and the pointwise density (binary Concrete, Maddison et al.)
    a = 0.1
    part, e_part = integrate.quad(lower, 0.0, a, **QUAD)
    assert abs(part - _expit(tau * special.logit(a) - d)) < 1e-7
    for s in (1e-6, 0.1, 0.37, 0.5, 0.9):
        u = tau * special.logit(s) - d
        dens = tau * _expit(u) * _expit(-u) / (s * (1 - s))
        assert abs(lower(s) / dens - 1.0) < 1e-11


@pytest.mark.parametrize("case", K2_CASES, ids=[f"x{c[0]}-tau{c[1]}" for c in K2_CASES])
def test_concrete_log_space_k2_integrates_to_one(gs, case):
    """log_space=True, K = 2: the ExpConcrete formula is the density of the log-ratio
    r = l1 - l2 = logit(s) = (d + L) / tau, i.e. tau f_L(tau r - d) with f_L the logistic
    density; l(r) = (log sigmoid(r), log sigmoid(-r)).  Checked pointwise and integrated
    over each side of the median d / tau (1/2 each), quad error estimate < 1e-9."""
    x, tau = np.array(case[0]), case[1]
    d = x[0] - x[1]

    def dens(r):
        l = np.array([-np.logaddexp(0.0, -r), -np.logaddexp(0.0, r)])
        return math.exp(float(gs.concrete_log_prob(l, x, tau, log_space=True)))

    r0 = d / tau
    left, e1 = integrate.quad(dens, -np.inf, r0, **QUAD)
    right, e2 = integrate.quad(dens, r0, np.inf, **QUAD)
    assert e1 < 1e-9 and e2 < 1e-9
    assert abs(left - 0.5) < 1e-7 and abs(right - 0.5) < 1e-7, (left, right)
    for r in (-30.0 / tau, -3.0, r0, 0.5, 4.0 / tau):
        u = tau * r - d
        assert abs(dens(r) / (tau * _expit(u) * _expit(-u)) - 1.0) < 1e-11


@pytest.mark.parametrize(
    "case",
    [
        ((0.5, -0.3, 0.1), 1.0),
        ((1.0, 0.0, -1.0), 0.5),
        ((0.0, 0.0, 0.0), 2.0),
        ((-0.7, 0.4, 0.0), 0.3),
    ],
    ids=lambda c: f"x{c[0]}-tau{c[1]}",
)
def test_concrete_k3_integrates_to_one(gs, case):
    """K = 3 on a grid of the log-ratios r = (l1 - l3, l2 - l3) in R^2: the ExpConcrete
    formula is the density w.r.t. dr, and the Concrete density w.r.t. dy1 dy2 times
    y1 y2 y3 is the same (dr = dy1 dy2 / (y1 y2 y3)).  The trapezoid rule on a wide
    uniform grid converges geometrically for this analytic, exponentially decaying
    density (poles at distance pi / tau from the real axis, tails exp(-tau |r|), the box
    half-width 40 / tau + 10 leaves mass < 1e-16 outside): the sum is exact to ~1e-12, so
    |integral - 1| < 1e-6 is a safe bound."""
    x, tau = np.array(case[0]), case[1]
    n = 601
    half = 40.0 / tau + 10.0
    c = (x[:2] - x[2]) / tau
    g1 = np.linspace(c[0] - half, c[0] + half, n)
    g2 = np.linspace(c[1] - half, c[1] + half, n)
    h1, h2 = g1[1] - g1[0], g2[1] - g2[0]
    R1, R2 = np.meshgrid(g1, g2, indexing="ij")
    r = np.stack([R1, R2, np.zeros_like(R1)], axis=-1)
    l = r - special.logsumexp(r, axis=-1, keepdims=True)
    xb = np.broadcast_to(x, l.shape)
    pl = np.asarray(gs.concrete_log_prob(l, xb, tau, log_space=True))
    assert pl.shape == (n, n)
    total_l = float(np.sum(np.exp(pl))) * h1 * h2
    assert abs(total_l - 1.0) < 1e-6, total_l
    y = np.exp(l)
    py = np.asarray(gs.concrete_log_prob(y, xb, tau))
    total_y = float(np.sum(np.exp(py + np.sum(l, axis=-1)))) * h1 * h2
    assert abs(total_y - 1.0) < 1e-6, total_y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log_space", [False, True])
def test_concrete_long_rows_and_strided_views(gs, dtype, log_space):
    """The fused kernel sums a row in 2**15-element segments: rows of 70,000 (three
    segments) and strided, negative-stride and broadcast operands match the formula."""
    rng = np.random.default_rng(11)
    eps = np.finfo(dtype).eps
    for shape, axis in (((2, 70_000), -1), ((70, 3, 9), 0)):
        z = rng.standard_normal(shape) * 2
        l = z - special.logsumexp(z, axis=axis, keepdims=True)
        y = np.exp(l)
        x = rng.standard_normal(shape)
        arg = (l if log_space else y).astype(dtype)
        for view in (lambda a: a, lambda a: a[::-1], lambda a: np.asfortranarray(a)):
            a, xv = view(arg), view(x.astype(dtype))
            got = gs.concrete_log_prob(a, xv, 0.7, axis=axis, log_space=log_space)
            ref = concrete_ref(a, xv, 0.7, axis=axis, log_space=log_space)
            tol = concrete_tol(a, xv, 0.7, axis, log_space, eps)
            assert got.dtype == dtype
            assert np.all(np.abs(got - ref) <= tol), float(np.max(np.abs(got - ref) / tol))
        # a stride-0 operand: one logit repeated along the axis
        xb = x.astype(dtype)[(slice(None),) * (axis % len(shape)) + (slice(0, 1),)]
        got = gs.concrete_log_prob(arg, xb, 0.7, axis=axis, log_space=log_space)
        ref = concrete_ref(arg, np.broadcast_to(xb, shape), 0.7, axis=axis, log_space=log_space)
        tol = concrete_tol(arg, np.broadcast_to(xb, shape), 0.7, axis, log_space, eps)
        assert np.all(np.abs(got - ref) <= tol)
