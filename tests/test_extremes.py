"""Extreme inputs: huge finite logits, -inf masks, rows that are all
-inf / contain NaN / contain +inf, extreme temperatures, rows of length 1 and 2**20.

What docs/contract.md promises ("Special values", "Forward and backward arithmetic"):

- ``v = x + g`` is computed in the dtype of the data, ``m = max(v)``,
  ``e = exp((v - m) * (1/tau))``, ``y = e * (1/S)``.  So a finite row gives a finite
  sample, however large its logits (``|g| <= 46``, and ``v - m <= 0`` so ``exp`` never
  overflows); at +-1e30 the noise is absorbed by rounding (ulp(1e30) is 2**76 in float32
  and 2**47 in float64) and the result is known exactly.
- ``-inf`` entries among finite ones get exactly 0 and are never the one-hot.
- A row that is all ``-inf``, or contains NaN or ``+inf``, is NaN (hard: NaN too);
  other rows of the same call are unaffected.

"Unaffected" is checked in the strongest form the stream layout allows: row r of a call
that starts at counter p is absolute row p + r, so every finite row of a mixed call must
be bitwise equal to that row computed alone with ``Philox(seed, counter=p + r)``.
Rows already covered by ``test_errors.py`` (``test_bad_rows_are_nan_others_unaffected``,
``test_masked_logits_exact_zero``, ``test_single_finite_logit``) are not repeated; this
module adds huge finite values, extreme ``tau``, length-1 and 2**20-long rows, the
backward of all of these, and the row-alone comparison.
"""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal, random_logits
from reference import check_backward, check_forward, check_one_hot

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
INF = np.inf
NAN = np.nan


def _noise(shape, dtype, seed, counter):
    """The noise a sampler adds (axis -1): gs.gumbel, checked against the reference in
    test_stream.py."""
    return gs.gumbel(shape, dtype=dtype, rng=gs.Philox(seed, counter=counter))


def _sample(x, tau, hard, seed, counter, axis=-1):
    """(y, y_soft, counter after) of one call."""
    rng = gs.Philox(seed, counter=counter)
    y, ys = gs.gumbel_softmax(x, tau, hard=hard, axis=axis, rng=rng, return_soft=True)
    return y, ys, rng.counter


def _assert_rows_alone(x, y, ys, tau, hard, seed, counter, rows):
    """Row r of the call (2-D, axis -1) equals the same row drawn alone at counter + r."""
    for r in rows:
        ya, ysa, _ = _sample(x[r : r + 1], tau, hard, seed, counter + r)
        if np.all(np.isnan(ya)):
            assert np.all(np.isnan(y[r])) and np.all(np.isnan(ys[r])), f"row {r}"
        else:
            assert_bitwise_equal(y[r : r + 1], ya, f"y row {r}")
            assert_bitwise_equal(ys[r : r + 1], ysa, f"y_soft row {r}")


def _one_hot_first_max(v):
    """Exact one-hot at the first maximum of each row of ``v`` (NumPy argmax)."""
    out = np.zeros(v.shape, dtype=v.dtype)
    out[np.arange(v.shape[0]), np.argmax(v, axis=-1)] = 1.0
    return out


# --------------------------------------------------------------------------------------
# huge finite logits: exact results
# --------------------------------------------------------------------------------------
def _huge_rows(dtype):
    """(logits, exact soft sample) of rows whose noise is absorbed by rounding."""
    big = np.finfo(dtype).max
    rows = [
        # logits                              exact y_soft
        ([1e30, 0.0, -1e30, 5.0], [1.0, 0.0, 0.0, 0.0]),
        ([1e30, -1e30, 1e30, 0.0], [0.5, 0.0, 0.5, 0.0]),
        ([-1e30, -1e30, -1e30, -1e30], [0.25, 0.25, 0.25, 0.25]),
        ([1e30, 1e30, 1e30, 1e30], [0.25, 0.25, 0.25, 0.25]),
        ([-1e30, 1e30, 3.0, -7.0], [0.0, 1.0, 0.0, 0.0]),
        ([big, -big, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]),  # v - m overflows
        ([-big, -big, -big, -big], [0.25, 0.25, 0.25, 0.25]),
        ([big, big, big, big], [0.25, 0.25, 0.25, 0.25]),
        ([0.0, -big, big, -big], [0.0, 0.0, 1.0, 0.0]),
        # masks next to huge finite values
        ([-1e30, -INF, -1e30, -INF], [0.5, 0.0, 0.5, 0.0]),
        ([-INF, -big, -INF, -INF], [0.0, 1.0, 0.0, 0.0]),
        ([-INF, 1e30, -INF, -1e30], [0.0, 1.0, 0.0, 0.0]),
        ([-INF, -INF, -1e30, -1e30], [0.0, 0.0, 0.5, 0.5]),
    ]
    x = np.array([r[0] for r in rows], dtype=dtype)
    ys = np.array([r[1] for r in rows], dtype=dtype)
    return x, ys


def _check_unit_tau_exact(x, g, y_soft, expect_soft):
    """tau = 1 (docs/contract.md, "tau = 1"): y = exp(x - max x) / E / sum, so x + g is never
    rounded and the noise of tied huge logits is not absorbed: y is the exact softmax of
    (x - max x) + g.  Entries that are exactly 0 or 1 in the rounded arithmetic (a
    single entry dominates by ~1e30) are still exactly 0 and 1."""
    from reference import fwd_rtol, softmax_ref, tiny_atol

    dtype = x.dtype
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):  # -max - max overflows to -inf in float64: e^z = 0
        z = (x64 - x64.max(axis=-1, keepdims=True)) + g
    ref = softmax_ref(z)
    rtol = fwd_rtol(np.where(np.isfinite(z), z, 0.0), 0.0, 1.0, dtype, x.shape[-1])
    np.testing.assert_allclose(y_soft, ref, rtol=rtol, atol=tiny_atol(dtype))
    assert np.all(y_soft[expect_soft == 0.0] == 0.0) and not np.any(np.signbit(y_soft))
    assert np.all(y_soft[expect_soft == 1.0] == 1.0)


@pytest.mark.parametrize("tau", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_huge_finite_logits_exact(dtype, tau):
    x, expect_soft = _huge_rows(dtype)
    n = x.shape[0]
    # every g added to a huge entry is absorbed: x + g == x in the dtype (|g| <= 46 < ulp(1e30) / 2)
    g = _noise(x.shape, dtype, 31, 2**32 - 5)
    assert np.all(np.isfinite(g)) and np.all(np.abs(g) < 46)
    huge = np.isfinite(x) & (np.abs(x) >= 1e30)
    assert np.array_equal((x + g)[huge], x[huge])

    y_soft = gs.gumbel_softmax(x, tau, rng=gs.Philox(31, counter=2**32 - 5))
    y, ys, after = _sample(x, tau, True, 31, 2**32 - 5)
    assert after == 2**32 - 5 + n
    if tau == 1.0:
        _check_unit_tau_exact(x, g, y_soft, expect_soft)
        assert_bitwise_equal(ys, y_soft)
    else:
        assert_bitwise_equal(y_soft, expect_soft)  # exact 0, 1/2, 1/4 and 1; no -0.0
        assert_bitwise_equal(ys, expect_soft)
    # hard: the first maximum of x + g (== x): ties go to the lowest index
    assert_bitwise_equal(y, _one_hot_first_max(x))
    # and the same rows inside a call with ordinary rows are unaffected, and vice versa
    mixed = np.concatenate(
        [x, (2 * np.random.default_rng(5).standard_normal((n, 4))).astype(dtype)]
    )[np.argsort(np.arange(2 * n) % 2, kind="stable")]
    ym, ysm, _ = _sample(mixed, tau, True, 31, 7)
    assert np.all(np.isfinite(ym)) and np.all(np.isfinite(ysm))
    _assert_rows_alone(mixed, ym, ysm, tau, True, 31, 7, range(2 * n))


@pytest.mark.parametrize("tau", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_huge_finite_logits_backward(dtype, tau):
    """The straight-through gradient of the exact samples above: finite, exact zeros
    where y_soft is 0 (masked or underflowed) and matching the formula elsewhere; a row
    whose y_soft is exactly one-hot has an exactly zero gradient."""
    x, expect_soft = _huge_rows(dtype)
    _, ys, _ = _sample(x, tau, True, 31, 0)
    gy = (3 * np.random.default_rng(2).standard_normal(x.shape)).astype(dtype)
    grad = gs.gumbel_softmax_backward(gy, ys, tau)
    assert grad.dtype == dtype and np.all(np.isfinite(grad))
    assert np.all(grad[expect_soft == 0.0] == 0.0)
    one_hot_rows = np.any(expect_soft == 1.0, axis=-1)
    assert np.all(grad[one_hot_rows] == 0.0)
    check_backward(grad, gy, ys, tau)


# --------------------------------------------------------------------------------------
# rows that are NaN by contract, next to rows that are not
# --------------------------------------------------------------------------------------
def _nan_rows(dtype, K=6):
    """(logits, is_nan_row) of a call mixing NaN-by-contract rows with finite ones."""
    big = np.finfo(dtype).max
    gen = np.random.default_rng(77)
    nan_rows = [
        [-INF] * K,  # all -inf
        [NAN] * K,  # all NaN
        [INF] * K,  # all +inf
        [INF, -INF] + [-INF] * (K - 2),  # +inf among masks
        [1e30, INF] + [0.0] * (K - 2),  # +inf next to a huge finite
        [-1e30] * (K - 1) + [NAN],  # NaN next to huge finites
        [big] * (K - 1) + [INF],  # +inf next to the largest finite
        [-INF] * (K - 1) + [NAN],  # NaN among masks
    ]
    finite_rows = [
        list(2 * gen.standard_normal(K)),
        [-INF] * (K - 1) + [-1e30],  # one finite entry: exact one-hot
        list(1e30 * np.sign(gen.standard_normal(K))),
        [big] + [-big] * (K - 1),
        list(3 * gen.standard_normal(K)),
    ]
    rows, bad = [], []
    for i in range(max(len(nan_rows), len(finite_rows))):
        for group, flag in ((nan_rows, True), (finite_rows, False)):
            if i < len(group):
                rows.append(group[i])
                bad.append(flag)
    return np.array(rows, dtype=dtype), np.array(bad)


@pytest.mark.parametrize("tau", [1e-4, 0.5, 1e4])
@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_nan_rows_isolated(dtype, hard, tau):
    x, bad = _nan_rows(dtype)
    seed, p = 41, 2**63 - 4  # the rows cross the 2**63 boundary of the counter
    y, ys, after = _sample(x, tau, hard, seed, p)
    assert after == p + x.shape[0]
    assert np.all(np.isnan(y[bad])) and np.all(np.isnan(ys[bad]))
    assert not np.any(np.isnan(y[~bad])) and not np.any(np.isnan(ys[~bad]))
    assert np.all(np.isfinite(y[~bad])) and np.all(np.isfinite(ys[~bad]))
    assert np.all(ys[~bad][np.isneginf(x[~bad])] == 0.0)
    _assert_rows_alone(x, y, ys, tau, hard, seed, p, range(x.shape[0]))
    # axis=0 on the transposed copy gives the same rows (rows in C order of the others)
    yt, yst, _ = _sample(np.ascontiguousarray(x.T), tau, hard, seed, p, axis=0)
    assert_bitwise_equal(np.ascontiguousarray(yt.T)[~bad], y[~bad])
    assert np.all(np.isnan(yt.T[bad]))
    # ordinary rows against the reference
    g = _noise(x.shape, dtype, seed, p)
    idx = [i for i in range(x.shape[0]) if not bad[i] and np.all(np.abs(x[i]) < 100)]
    assert len(idx) == 2  # the two standard-normal rows
    check_forward(ys[idx], x[idx], g[idx], tau)
    if hard:
        check_one_hot(y[idx], x[idx], g[idx])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_nan_rows_isolated(dtype):
    """NaN in y_soft (what a NaN row of the forward gives) makes that gradient row NaN;
    every other row is bitwise the gradient of that row alone."""
    x, bad = _nan_rows(dtype)
    _, ys, _ = _sample(x, 0.5, True, 43, 0)
    gy = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    grad = gs.gumbel_softmax_backward(gy, ys, 0.5)
    assert np.all(np.isnan(grad[bad]))
    assert np.all(np.isfinite(grad[~bad]))
    for r in range(x.shape[0]):
        if not bad[r]:
            alone = gs.gumbel_softmax_backward(gy[r : r + 1], ys[r : r + 1], 0.5)
            assert_bitwise_equal(grad[r : r + 1], alone, f"row {r}")
    check_backward(grad[~bad], gy[~bad], ys[~bad], 0.5)


# --------------------------------------------------------------------------------------
# extreme temperatures on ordinary logits
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [1e-4, 1e4])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_extreme_tau_matches_reference(dtype, tau):
    shape = (64, 33)
    x = (3 * np.random.default_rng(12).standard_normal(shape)).astype(dtype)
    x[::5, 3] = -INF  # some masks too
    y, ys, _ = _sample(x, tau, True, 50, 2**32 - 10)
    y_soft_only = gs.gumbel_softmax(x, tau, rng=gs.Philox(50, counter=2**32 - 10))
    assert_bitwise_equal(y_soft_only, ys)
    g = _noise(shape, dtype, 50, 2**32 - 10)
    assert np.all(np.isfinite(ys))
    assert np.all(ys[:, 3][::5] == 0.0) and np.all(y[:, 3][::5] == 0.0)
    fin = np.isfinite(x)
    # the reference on the unmasked entries (masked ones add exactly 0 to the sums)
    m = np.zeros(shape[0], bool)
    m[::5] = True
    cols = np.arange(shape[1]) != 3
    check_forward(ys[~m], x[~m], g[~m], tau)
    check_forward(ys[m][:, cols], x[m][:, cols], g[m][:, cols], tau)
    check_one_hot(y, x, g)
    v = x.astype(dtype) + g  # computed in the dtype, as the kernel does
    if tau == 1e-4:
        # the soft sample peaks at the hard sample's index: exp(0) = 1 is the largest e
        assert np.array_equal(np.argmax(ys, axis=-1), np.argmax(y, axis=-1))
        # and is essentially one-hot where the top two gaps exceed 0.01 (e < exp(-100))
        top2 = np.sort(np.where(fin, v, -INF), axis=-1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > 0.01
        assert clear.sum() > 50
        assert np.all(ys[clear].max(axis=-1) == 1.0)
    else:
        # nearly uniform over the unmasked entries: K' y in [exp(-D/tau), exp(D/tau)]
        vf = np.where(fin, v, np.nan).astype(np.float64)
        D = np.nanmax(vf, axis=-1) - np.nanmin(vf, axis=-1)
        k = fin.sum(axis=-1)
        lr = np.abs(np.log(np.where(fin, ys.astype(np.float64) * k[:, None], 1.0)))
        slack = 1e-5 if dtype == np.float32 else 1e-12
        assert np.all(lr <= (D / tau)[:, None] + slack)
    gy = np.random.default_rng(13).standard_normal(shape).astype(dtype)
    grad = gs.gumbel_softmax_backward(gy, ys, tau)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~fin] == 0.0)
    check_backward(grad, gy, ys, tau)


# --------------------------------------------------------------------------------------
# rows of length 1
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_length_one_rows(dtype, tau):
    big = np.finfo(dtype).max
    col = np.array([0.0, 1e30, -1e30, big, -big, -3.5, -INF, NAN, INF], dtype=dtype)
    bad = ~np.isfinite(col)
    x = col[:, None]
    for hard in (False, True):
        y, ys, after = _sample(x, tau, hard, 60, 2**64 - 9)  # ends exactly at 2**64
        assert after == 2**64
        assert np.all(y[~bad] == 1.0) and np.all(ys[~bad] == 1.0)
        assert not np.any(np.signbit(y[~bad]))
        assert np.all(np.isnan(y[bad])) and np.all(np.isnan(ys[bad]))
        _assert_rows_alone(x, y, ys, tau, hard, 60, 2**64 - 9, range(x.shape[0]))
        # the same 9 rows along axis 0 of a (1, 9) array
        yt, yst, _ = _sample(x.T.copy(), tau, hard, 60, 2**64 - 9, axis=0)
        assert_bitwise_equal(yt.T[~bad], y[~bad])
    # backward of a length-1 row: y_soft == 1, so grad = 1 * (gy - gy) / tau == 0 exactly
    gy = np.array([[1.5], [-2.0], [1e30], [0.0], [-7.25], [3.0]], dtype=dtype)
    grad = gs.gumbel_softmax_backward(gy, ys[~bad][:6], tau)
    assert np.all(grad == 0.0)
    grad0 = gs.gumbel_softmax_backward(gy.T, ys[~bad][:6].T, tau, axis=0)
    assert np.all(grad0 == 0.0)


# --------------------------------------------------------------------------------------
# rows of 2**20 elements (32 segments of 2**15; split over the threads when alone)
# --------------------------------------------------------------------------------------
LONG = 2**20


@pytest.fixture(scope="module", params=DTYPES, ids=DT_IDS)
def long_rows(request):
    dtype = request.param
    gen = np.random.default_rng(2**20)
    x = (3 * gen.standard_normal((4, LONG))).astype(dtype)
    # row 1: masked except for a few entries, one in the very last segment
    keep = np.array([5, 2**15 - 1, 2**15, 700_001, LONG - 1])
    x[1] = -INF
    x[1, keep] = gen.standard_normal(keep.size).astype(dtype)
    # row 2: NaN in the last element (last segment) only
    x[2, -1] = NAN
    # row 3: huge finite values around ordinary ones: exactly two 1e30 entries
    x[3, 123] = 1e30
    x[3, LONG - 2] = 1e30
    x[3, :100] = -1e30
    seed, p = 70, 2**32 - 2
    y, ys, after = _sample(x, 0.7, True, seed, p)
    assert after == p + 4
    g = _noise(x.shape, dtype, seed, p)
    return dict(dtype=dtype, x=x, y=y, ys=ys, g=g, seed=seed, p=p, keep=keep)


def test_long_rows_forward(long_rows):
    d = long_rows
    x, y, ys, g = d["x"], d["y"], d["ys"], d["g"]
    # row 0: ordinary, against the reference
    check_forward(ys[0:1], x[0:1], g[0:1], 0.7)
    check_one_hot(y[0:1], x[0:1], g[0:1])
    # row 1: masked entries exactly 0, the rest the softmax of the kept entries
    keep = d["keep"]
    masked = np.ones(LONG, bool)
    masked[keep] = False
    assert np.all(ys[1, masked] == 0.0) and np.all(y[1, masked] == 0.0)
    check_forward(ys[1:2, keep], x[1:2, keep], g[1:2, keep], 0.7)
    check_one_hot(y[1:2, keep], x[1:2, keep], g[1:2, keep])
    # row 2: one NaN in the last segment makes the whole row NaN
    assert np.all(np.isnan(y[2])) and np.all(np.isnan(ys[2]))
    # row 3: the two 1e30 entries share the mass exactly; hard picks the first
    expect = np.zeros(LONG, d["dtype"])
    expect[[123, LONG - 2]] = 0.5
    assert_bitwise_equal(ys[3], expect)
    expect[:] = 0.0
    expect[123] = 1.0
    assert_bitwise_equal(y[3], expect)
    # every row alone (a 1-row call: its segments are spread over the threads)
    _assert_rows_alone(x, y, ys, 0.7, True, d["seed"], d["p"], range(4))
    # soft-only call: the same soft sample
    y2 = gs.gumbel_softmax(x, 0.7, rng=gs.Philox(d["seed"], counter=d["p"]))
    assert_bitwise_equal(y2[[0, 1, 3]], ys[[0, 1, 3]])
    assert np.all(np.isnan(y2[2]))


def test_long_rows_backward(long_rows):
    d = long_rows
    ys, dtype = d["ys"], d["dtype"]
    gy = np.random.default_rng(3).standard_normal(ys.shape).astype(dtype)
    grad = gs.gumbel_softmax_backward(gy, ys, 0.7)
    assert np.all(np.isnan(grad[2]))
    ok = [0, 1, 3]
    assert np.all(np.isfinite(grad[ok]))
    assert np.all(grad[ok][ys[ok] == 0.0] == 0.0)
    check_backward(grad[ok], gy[ok], ys[ok], 0.7)
    for r in range(4):
        alone = gs.gumbel_softmax_backward(gy[r : r + 1], ys[r : r + 1], 0.7)
        if r == 2:
            assert np.all(np.isnan(alone))
        else:
            assert_bitwise_equal(grad[r : r + 1], alone, f"row {r}")
    # strided rows (axis 0 of the transpose) give the same bits
    gt = gs.gumbel_softmax_backward(gy.T, ys.T, 0.7, axis=0)
    assert_bitwise_equal(np.ascontiguousarray(gt.T[ok]), grad[ok])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_long_single_row_nan_and_mask(dtype):
    """A single long row (split into segments over the threads): a NaN or +inf in any
    one segment makes the whole row NaN; a row masked but for one entry is exactly
    one-hot in the soft sample too."""
    for pos in (0, 2**15 - 1, 2**15, LONG // 2 + 3, LONG - 1):
        for bad_value in (NAN, INF):
            x = np.zeros((1, LONG), dtype=dtype)
            x[0, pos] = bad_value
            y, ys, after = _sample(x, 1.0, True, 80, 3)
            assert after == 4
            assert np.all(np.isnan(y)) and np.all(np.isnan(ys)), (pos, bad_value)
        x = np.full((1, LONG), -INF, dtype=dtype)
        x[0, pos] = -1e30
        for hard in (False, True):
            y = gs.gumbel_softmax(x, 1e-4, hard=hard, rng=gs.Philox(80, counter=3))
            expect = np.zeros_like(x)
            expect[0, pos] = 1.0
            assert_bitwise_equal(y, expect, f"pos {pos}")
    x = np.full((1, LONG), -INF, dtype=dtype)
    assert np.all(np.isnan(gs.gumbel_softmax(x, rng=gs.Philox(80))))


# --------------------------------------------------------------------------------------
# rows of length 0 and NaN with the sign bit set
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(0,), (3, 0), (2, 0, 0)])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_gumbel_rows_of_length_zero(shape, dtype):
    """gs.gumbel of rows with no element: an empty array; the rows still count."""
    rng = gs.Philox(3, counter=10)
    g = gs.gumbel(shape, dtype=dtype, rng=rng)
    assert g.shape == shape and g.dtype == dtype
    assert rng.counter == 10 + int(np.prod(shape[:-1]))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_exp_of_negative_nan_is_nan(dtype):
    """exp of a NaN with the sign bit set (what -inf - (-inf) gives on x86) is NaN, not
    a number made of the NaN's bits (the sanitizer build checks the integer steps)."""
    evaluate = gs._core._eval_f32 if dtype == np.float32 else gs._core._eval_f64
    z = np.array([np.copysign(np.nan, -1.0), np.nan, -np.inf, 0.0] * 8, dtype=dtype)
    e = evaluate("exp", z)
    assert np.all(np.isnan(e[0::4])) and np.all(np.isnan(e[1::4]))
    assert np.all(e[2::4] == 0.0) and np.all(e[3::4] == 1.0)


def _out_calls(shape=(6, 5), dtype=np.float32):
    """Every function with out=, on operands of shape and dtype: name -> f(out) (None:
    allocate), each drawing from Philox(3) where it draws."""
    x = random_logits(shape, dtype, 1)
    g = random_logits(shape, dtype, 2)
    idx = np.argmax(x, axis=-1)
    h = np.eye(shape[-1], dtype=dtype)[idx]
    y = gs.gumbel_softmax(x, 0.5, rng=9)
    p = lambda: gs.Philox(3)  # noqa: E731
    return {
        "gumbel_softmax": lambda o: gs.gumbel_softmax(x, 0.5, rng=p(), out=o),
        "gumbel_softmax hard": lambda o: gs.gumbel_softmax(x, 0.5, hard=True, rng=p(), out=o),
        "log_gumbel_softmax": lambda o: gs.log_gumbel_softmax(x, 0.5, rng=p(), out=o),
        "conditional_gumbel": lambda o: gs.conditional_gumbel(x, idx, rng=p(), out=o),
        "gumbel": lambda o: gs.gumbel(shape, dtype=dtype, rng=p(), out=o),
        "logistic": lambda o: gs.logistic(shape, dtype=dtype, rng=p(), out=o),
        "relaxed_bernoulli": lambda o: gs.relaxed_bernoulli(x, 0.5, rng=p(), out=o),
        "relaxed_bernoulli_backward": lambda o: gs.relaxed_bernoulli_backward(g, y, 0.5, out=o),
        "relaxed_top_k": lambda o: gs.relaxed_top_k(x, 2, 0.5, rng=p(), out=o),
        "relaxed_top_k_backward": lambda o: gs.relaxed_top_k_backward(g, x, 2, 0.5, rng=p(), out=o),
        "gumbel_softmax_backward": lambda o: gs.gumbel_softmax_backward(g, y, 0.5, out=o),
        "gumbel_softmax_backward recompute": lambda o: gs.gumbel_softmax_backward(
            g, tau=0.5, logits=x, rng=p(), out=o
        ),
        "gumbel_rao_backward": lambda o: gs.gumbel_rao_backward(g, x, h, 0.5, rng=p(), out=o),
        "reinmax_backward": lambda o: gs.reinmax_backward(g, x, h, 1.5, out=o),
    }


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("kind", ["matrix", "memmap"])
@pytest.mark.parametrize("name", sorted(_out_calls()))
def test_subclass_out_is_written_whole(name, kind, dtype, tmp_path):
    # An ndarray subclass as out (np.matrix, np.memmap) gets every element of the result,
    # bitwise the allocating call's, and is returned itself.  relaxed_bernoulli_backward
    # reshaped a matrix out to (1, N) for its flat path: one element written, then a
    # write past the buffer (a crash at (100, 100)); float16 conditional_gumbel indexed
    # a matrix out's rows as a matrix (a crash).
    for shape in [(6, 5), (100, 100)]:
        call = _out_calls(shape, dtype)[name]
        expected = call(None)
        if kind == "matrix":
            out = np.asmatrix(np.full(shape, 7.25, dtype))
        else:
            out = np.memmap(tmp_path / "out.bin", dtype, "w+", shape=shape)
            out[...] = 7.25
        res = call(out)
        assert res is out
        assert_bitwise_equal(np.asarray(out), expected)


@pytest.mark.parametrize("ndim", [33, 64])
def test_many_dimensions_as_their_rows(ndim):
    # NumPy arrays may have up to 64 dimensions; np.broadcast_shapes stops at 32 and
    # np.take_along_axis at 63, so masks were refused as "not broadcasting", and
    # concrete_log_prob and conditional_gumbel raised NumPy's own errors.  Each call on
    # logits of shape (2, 1, ..., 1, 5) equals the call on its (2, 5) rows.
    flat = random_logits((2, 5), np.float32, 6)
    shape = (2,) + (1,) * (ndim - 2) + (5,)
    x = flat.reshape(shape)
    m2 = np.array([[True, False, True, True, True], [True, True, True, False, True]])
    idx = np.argmax(flat, -1)
    y = gs.gumbel_softmax(flat, 0.5, rng=1)
    calls = {
        "mask of logits' shape": lambda a, m, i, yy: gs.gumbel_softmax(a, 0.5, rng=3, mask=m),
        "mask (5,)": lambda a, m, i, yy: gs.categorical(a, rng=3, mask=m2[0]),
        "top_k mask": lambda a, m, i, yy: gs.top_k(a, 2, rng=3, mask=m),
        "concrete_log_prob": lambda a, m, i, yy: gs.concrete_log_prob(yy, a, 0.5),
        "conditional_gumbel": lambda a, m, i, yy: gs.conditional_gumbel(a, i, rng=3),
    }
    for call in calls.values():
        expected = call(flat, m2, idx, y)
        got = call(x, m2.reshape(shape), idx.reshape(shape[:-1]), y.reshape(shape))
        assert_bitwise_equal(got.reshape(expected.shape), expected)
    # float16 conditional_gumbel: its tie rule indexes the rows too
    got = gs.conditional_gumbel(x.astype(np.float16), idx.reshape(shape[:-1]), rng=3)
    expected = gs.conditional_gumbel(flat.astype(np.float16), idx, rng=3)
    assert_bitwise_equal(got.reshape(expected.shape), expected)
