"""gs.categorical and gs.top_k: exact draws from the Gumbel-max trick.

What the API reference promises (docs/api: ``gs.categorical``, ``gs.top_k``), and how it is
checked here:

- ``categorical(x, axis=a, rng=s)`` is the index of ``argmax(x + g)`` along ``a`` with
  ``g`` the noise ``gumbel_softmax`` adds from the same state: ``gs.gumbel`` of the shape
  with ``a`` moved last (the ``moved_noise`` fixture).  ``v = x + g`` is computed in the
  dtype of ``x`` (docs/contract.md "Forward and backward arithmetic"), so the NumPy reference adds
  the two in that dtype and the comparison is exact (the same rounded values, the same
  first-maximum rule).  It is also bitwise ``np.argmax`` of the hard ``gumbel_softmax``.
- ``top_k(x, k)``: the indices of the k largest ``v`` in decreasing order, ties to the
  lower index = a stable sort of ``-v``; -1 in the slots past the finite ``v``.
- rows with NaN / +inf / only -inf (after masking) give -1 (all slots for top_k).
- the distributions: categorical ~ softmax(x), top_k ~ Plackett-Luce sampling without
  replacement; checked by chi-square goodness of fit on the exact (enumerated)
  probabilities.

Statistical tests: every hypothesis test uses a fixed seed and rejects at the
false-alarm rate ``ALPHA = 1e-6`` per test (Bonferroni-split where one test makes several
comparisons).  The stream being bitwise reproducible, a correct implementation passes
or fails a given test deterministically; the probability over the choice of seeds that a
correct implementation fails one of these tests is ALPHA.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import n_rows
from scipy import stats

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
ALPHA = 1e-6  # false-alarm rate of each statistical test (see the module docstring)
K_WORD = r"\bk\b"  # an error message naming the argument k (not just "top_k")


# ----------------------------------------------------------------------- references
def _masked_logits(x, mask):
    x = np.asarray(x)
    if mask is None:
        return x
    return np.where(np.broadcast_to(mask, x.shape), x, x.dtype.type(-np.inf))


def _perturbed(x, g, dtype, axis, mask=None):
    """v = x + g rounded in ``dtype`` (as the samplers compute it), masked entries -inf,
    with ``axis`` moved last; and the invalid-row flags (NaN, +inf or only -inf logits
    after masking)."""
    dt = np.dtype(dtype)
    xm = _masked_logits(np.asarray(x).astype(dt), mask)
    with np.errstate(invalid="ignore", over="ignore"):
        v = xm + np.asarray(g).astype(dt)
    v = np.where(np.isneginf(xm), dt.type(-np.inf), v)
    xmm = np.moveaxis(xm, axis, -1)
    bad = np.any(np.isnan(xmm) | np.isposinf(xmm), axis=-1) | np.all(np.isneginf(xmm), axis=-1)
    return np.moveaxis(v, axis, -1), bad


def categorical_ref(x, g, dtype, axis=-1, mask=None):
    """int64 index of the first maximum of x + g along axis; -1 for invalid rows."""
    v, bad = _perturbed(x, g, dtype, axis, mask)
    idx = np.asarray(np.argmax(v, axis=-1), dtype=np.int64)
    idx[bad] = -1
    return idx


def top_k_ref(x, g, dtype, k, axis=-1, mask=None):
    """Indices of the k largest x + g (stable sort of -(x + g): ties to the lower index),
    -1 past the finite entries and for invalid rows; k along axis."""
    v, bad = _perturbed(x, g, dtype, axis, mask)
    order = np.argsort(-v, axis=-1, kind="stable")[..., :k].astype(np.int64)
    vals = np.take_along_axis(v, order, axis=-1)
    order[np.isneginf(vals)] = -1
    order[bad] = -1
    return np.moveaxis(order, -1, axis)


def softmax64(l):
    l = np.asarray(l, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        e = np.exp(l - np.max(l))
    return e / e.sum()


def plackett_luce(p, k):
    """{ordered k-tuple: probability} of sampling k without replacement from p
    (zero-probability categories never drawn; tuples shorter than k when fewer than k
    categories have p > 0, padded with -1)."""
    p = np.asarray(p, dtype=np.float64)
    support = [i for i in range(p.size) if p[i] > 0]
    kk = min(k, len(support))
    out = {}
    for t in itertools.permutations(support, kk):
        prob, left = 1.0, 1.0
        for i in t:
            prob *= p[i] / left
            left -= p[i]
        out[t + (-1,) * (k - kk)] = prob
    return out


def make_logits(shape, dtype, seed, layout="contiguous", scale=2.0):
    """Logits of ``shape`` with a given memory layout."""
    r = np.random.default_rng(seed)
    if layout == "contiguous":
        x = (scale * r.standard_normal(shape)).astype(dtype)
    elif layout == "strided":  # every other element of a wider last axis
        big = (scale * r.standard_normal(shape[:-1] + (2 * shape[-1],))).astype(dtype)
        x = big[..., ::2]
    elif layout == "negative":  # negative strides on every axis
        x = np.flip((scale * r.standard_normal(shape)).astype(dtype))
    elif layout == "fortran":
        x = np.asfortranarray((scale * r.standard_normal(shape)).astype(dtype))
    elif layout == "broadcast":  # stride 0 along the first axis
        x = np.broadcast_to((scale * r.standard_normal((1,) + shape[1:])).astype(dtype), shape)
    else:
        raise ValueError(layout)
    assert x.shape == tuple(shape)
    return x


# (shape, axis): rows of length 1, 2, 7, 32, 33, 1000; 1-d; 3-d and 4-d with axis != -1
CASES = [
    ((6, 1), -1),
    ((9, 2), -1),
    ((11, 7), -1),
    ((5, 32), -1),
    ((5, 33), 1),
    ((3, 1000), -1),
    ((7,), 0),
    ((1000,), -1),
    ((4, 6, 5), 0),
    ((4, 6, 5), 1),
    ((4, 6, 5), 2),
    ((4, 6, 5), -1),
    ((2, 3, 4, 5), 1),
    ((33, 3), 0),
]
CASE_IDS = [f"{s}-ax{a}" for s, a in CASES]
LAYOUTS = ["contiguous", "strided", "negative", "fortran", "broadcast"]


# ====================================================================== categorical
# every layout with every case, except broadcasting a 1-d array (no batch axis)
CASE_LAYOUTS = [
    pytest.param(c, lay, id=f"{i}-{lay}")
    for c, i in zip(CASES, CASE_IDS)
    for lay in LAYOUTS
    if not (lay == "broadcast" and len(c[0]) < 2)
]


@pytest.mark.parametrize("case,layout", CASE_LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_matches_reference(gs, moved_noise, dtype, case, layout):
    shape, axis = case
    x = make_logits(shape, dtype, seed=len(shape) * 100 + shape[axis], layout=layout)
    x_before = x.copy()
    seed, p = 2024, 2**32 - 3  # rows straddle 2**32
    rng = gs.Philox(seed, counter=p)
    c = gs.categorical(x, axis=axis, rng=rng)
    batch = shape[: axis % len(shape)] + shape[axis % len(shape) + 1 :]
    assert isinstance(c, np.ndarray) and c.dtype == np.int64 and c.shape == batch
    assert rng.counter == p + n_rows(shape, axis)
    np.testing.assert_array_equal(x, x_before)
    g = moved_noise(shape, dtype, seed, p, axis)
    np.testing.assert_array_equal(c, categorical_ref(x, g, dtype, axis))
    assert np.all((c >= 0) & (c < shape[axis]))


@pytest.mark.parametrize("tau", [0.5, 1.0])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_is_argmax_of_hard_sample(gs, dtype, case, tau):
    shape, axis = case
    x = make_logits(shape, dtype, seed=7, layout="negative")
    y = gs.gumbel_softmax(x, tau, hard=True, axis=axis, rng=gs.Philox(99, counter=5))
    c = gs.categorical(x, axis=axis, rng=gs.Philox(99, counter=5))
    np.testing.assert_array_equal(c, np.argmax(y, axis=axis))


@pytest.mark.parametrize("idtype", [np.int32, np.int64, np.bool_])
def test_categorical_integer_logits_like_hard_sample(gs, idtype):
    # integer / bool logits are converted as gumbel_softmax converts them (float64)
    x = np.random.default_rng(3).integers(0, 3, size=(40, 6)).astype(idtype)
    y = gs.gumbel_softmax(x, 1.0, hard=True, rng=gs.Philox(5))
    np.testing.assert_array_equal(gs.categorical(x, rng=gs.Philox(5)), np.argmax(y, axis=-1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_axis_is_moveaxis(gs, dtype):
    x = make_logits((4, 6, 5), dtype, seed=11)
    for axis in range(3):
        a = gs.categorical(x, axis=axis, rng=gs.Philox(3, counter=9))
        b = gs.categorical(np.moveaxis(x, axis, -1), rng=gs.Philox(3, counter=9))
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_one_dimensional_gives_0d(gs, moved_noise, dtype):
    x = np.linspace(-2, 2, 9).astype(dtype)
    rng = gs.Philox(8, counter=2)
    c = gs.categorical(x, rng=rng)
    assert isinstance(c, np.ndarray) and c.shape == () and c.dtype == np.int64
    assert rng.counter == 3
    g = moved_noise((9,), dtype, 8, 2)
    assert int(c) == int(categorical_ref(x, g, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_rng_forms(gs, dtype):
    x = make_logits((20, 6), dtype, seed=4)
    a = gs.categorical(x, rng=77)  # an int seed is a fresh Philox(seed) per call
    np.testing.assert_array_equal(a, gs.categorical(x, rng=77))
    np.testing.assert_array_equal(a, gs.categorical(x, rng=gs.Philox(77)))
    # consecutive calls on one Philox = one call on the stacked rows
    rng = gs.Philox(12)
    first, second = gs.categorical(x, rng=rng), gs.categorical(x, rng=rng)
    both = gs.categorical(np.concatenate([x, x]), rng=gs.Philox(12))
    np.testing.assert_array_equal(np.concatenate([first, second]), both)
    # a Generator: one 64-bit seed drawn from it, so NumPy seeding reproduces
    c1 = gs.categorical(x, rng=np.random.default_rng(5))
    c2 = gs.categorical(x, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(c1, c2)


def test_categorical_empty_batch_consumes_nothing(gs):
    rng = gs.Philox(1, counter=10)
    c = gs.categorical(np.zeros((0, 5)), rng=rng)
    assert c.shape == (0,) and c.dtype == np.int64
    assert rng.counter == 10


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_ties_lowest_index(gs, dtype):
    # logits so large that x + g rounds to x: every row is an exact tie
    big = 2.0**40 if dtype == np.float32 else 2.0**80
    x = np.full((6, 9), big, dtype=dtype)
    g = gs.gumbel((6, 9), dtype=dtype, rng=gs.Philox(4))
    assert np.all(x + g == x)
    np.testing.assert_array_equal(gs.categorical(x, rng=gs.Philox(4)), np.zeros(6, np.int64))
    # a tie between the last two only
    x2 = np.full((6, 9), -big, dtype=dtype)
    x2[:, 7:] = big
    np.testing.assert_array_equal(gs.categorical(x2, rng=gs.Philox(4)), np.full(6, 7))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_invalid_rows(gs, moved_noise, dtype):
    inf, nan = np.inf, np.nan
    x = make_logits((8, 7), dtype, seed=21)
    x[1, 3] = nan
    x[2, 0] = inf
    x[3, :] = -inf
    x[4, [0, 2, 3, 4, 6]] = -inf  # two finite entries left
    x[5, :] = -inf
    x[5, 6] = -5.0  # one finite entry: always chosen
    x[6, :] = nan
    x[7, 2] = -inf
    x[7, 5] = inf  # +inf next to -inf
    rng = gs.Philox(31, counter=2**63 - 3)
    c = gs.categorical(x, rng=rng)
    assert rng.counter == 2**63 - 3 + 8  # invalid rows still consume their stream row
    g = moved_noise(x.shape, dtype, 31, 2**63 - 3)
    np.testing.assert_array_equal(c, categorical_ref(x, g, dtype))
    np.testing.assert_array_equal(c[[1, 2, 3, 6, 7]], -1)
    assert c[4] in (1, 5) and c[5] == 6
    # the valid rows are bitwise those of a call with the invalid rows replaced
    clean = x.copy()
    clean[[1, 2, 3, 6, 7]] = 0.0
    c_clean = gs.categorical(clean, rng=gs.Philox(31, counter=2**63 - 3))
    valid = [0, 4, 5]
    np.testing.assert_array_equal(c[valid], c_clean[valid])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_never_picks_minus_inf(gs, dtype):
    r = np.random.default_rng(17)
    x = (3.0 * r.standard_normal((2000, 9))).astype(dtype)
    hole = r.random((2000, 9)) < 0.6
    hole[:, 4] = False  # at least one finite entry per row
    x[hole] = -np.inf
    c = gs.categorical(x, rng=gs.Philox(17))
    assert np.all(c >= 0)
    assert not np.any(hole[np.arange(2000), c])


# --------------------------------------------------------------------------- mask=
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_mask(gs, moved_noise, dtype, axis):
    shape = (4, 6, 5)
    x = make_logits(shape, dtype, seed=41)
    r = np.random.default_rng(41 + axis % 3)
    mask = r.random(shape) < 0.5
    # one row with no allowed category -> -1
    idx = [0, 0, 0]
    idx[axis % 3] = slice(None)
    mask[tuple(idx)] = False
    rng = gs.Philox(6, counter=4)
    c = gs.categorical(x, axis=axis, rng=rng, mask=mask)
    assert rng.counter == 4 + n_rows(shape, axis)
    g = moved_noise(shape, dtype, 6, 4, axis)
    expected = categorical_ref(x, g, dtype, axis, mask=mask)
    np.testing.assert_array_equal(c, expected)
    # masked = exactly as if the logit were -inf, from the same state
    c_inf = gs.categorical(_masked_logits(x, mask), axis=axis, rng=gs.Philox(6, counter=4))
    np.testing.assert_array_equal(c, c_inf)
    # never a masked category; the empty row -1, every other row valid
    mm = np.moveaxis(mask, axis, -1)
    empty = ~np.any(mm, axis=-1)
    assert np.sum(empty) >= 1
    np.testing.assert_array_equal(c[empty], -1)
    ok = ~empty
    assert np.all(np.take_along_axis(mm, np.where(ok, c, 0)[..., None], -1)[..., 0][ok])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_categorical_mask_broadcasts(gs, dtype):
    x = make_logits((5, 4, 7), dtype, seed=43)
    for mask_shape, axis in [
        ((7,), -1),
        ((4, 1), 1),
        ((5, 1, 7), -1),
        ((1, 4, 1), 1),
        ((5, 4, 7), 0),
    ]:
        mask = np.random.default_rng(sum(mask_shape)).random(mask_shape) < 0.6
        full = np.broadcast_to(mask, x.shape)
        # make sure no row is empty so that every row gives an index
        mm = np.moveaxis(np.array(full), axis, -1)
        if not np.all(np.any(mm, axis=-1)):
            mask = np.ones(mask_shape, dtype=bool)
            full = np.broadcast_to(mask, x.shape)
        c = gs.categorical(x, axis=axis, rng=gs.Philox(2), mask=mask)
        c_inf = gs.categorical(_masked_logits(x, full), axis=axis, rng=gs.Philox(2))
        np.testing.assert_array_equal(c, c_inf)
        assert np.all(c >= 0)


@pytest.mark.parametrize(
    "bad",
    [np.ones((3, 5), dtype=np.int64), np.ones((3, 5)), np.ones(5, dtype=np.uint8), [1, 0, 1, 1, 1]],
    ids=["int64", "float64", "uint8", "int-list"],
)
def test_categorical_mask_not_bool(gs, bad):
    x = make_logits((3, 5), np.float64, seed=1)
    rng = gs.Philox(1, counter=10)
    with pytest.raises(TypeError, match="mask"):
        gs.categorical(x, rng=rng, mask=bad)
    assert rng.counter == 10


@pytest.mark.parametrize("shape", [(4,), (2, 5), (3, 5, 1), (6, 5)])
def test_categorical_mask_not_broadcastable(gs, shape):
    x = make_logits((3, 5), np.float64, seed=1)
    rng = gs.Philox(1, counter=10)
    with pytest.raises(ValueError, match="mask"):
        gs.categorical(x, rng=rng, mask=np.ones(shape, dtype=bool))
    assert rng.counter == 10


def test_categorical_float16_uses_float32_stream(gs):
    x16 = np.random.default_rng(2).standard_normal((30, 11)).astype(np.float16)
    a = gs.categorical(x16, rng=gs.Philox(5))
    b = gs.categorical(x16.astype(np.float32), rng=gs.Philox(5))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- distribution
N_DRAWS = 200_000
CAT_CASES = {
    "rare-1e-3": (np.log([0.001, 0.2, 0.3, 0.499]), None),
    "uniform-10": (np.zeros(10), None),
    "spread-7": (np.array([2.0, -1.0, 0.5, 3.0, -4.0, 0.0, 1.5]), None),
    "random-33": (np.random.default_rng(33).standard_normal(33), None),
    "masked-7": (
        np.array([2.0, -1.0, 0.5, 3.0, -4.0, 0.0, 1.5]),
        np.array([True, True, False, False, True, True, True]),
    ),
    "neg-inf-5": (np.array([0.0, -np.inf, 1.0, -np.inf, -0.5]), None),
}


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", list(CAT_CASES))
def test_categorical_chisquare(gs, name, dtype, axis):
    """Frequencies of N_DRAWS draws against softmax(logits) (over the allowed
    categories): chi-square goodness of fit, rejected at ALPHA = 1e-6."""
    l, mask = CAT_CASES[name]
    l = l.astype(dtype)
    K = l.size
    seed = (
        5000
        + 10 * list(CAT_CASES).index(name)
        + (0 if dtype == np.float32 else 1)
        + (0 if axis == -1 else 2)
    )
    x = np.broadcast_to(l, (N_DRAWS, K))
    m = None if mask is None else np.broadcast_to(mask, (N_DRAWS, K))
    if axis == 0:
        x, m = x.T, (None if m is None else m.T)
    rng = gs.Philox(seed)
    c = gs.categorical(x, axis=axis, rng=rng, mask=m)
    assert rng.counter == N_DRAWS and c.shape == (N_DRAWS,)
    p = softmax64(_masked_logits(l, mask))  # probabilities of the logits as given
    allowed = p > 0
    assert np.all((c >= 0) & (c < K))
    counts = np.bincount(c, minlength=K)
    assert np.all(counts[~allowed] == 0), "a masked / -inf category was drawn"
    expected = N_DRAWS * p[allowed]
    assert expected.min() >= 5  # the chi-square approximation is valid
    res = stats.chisquare(counts[allowed], expected)
    assert res.pvalue > ALPHA, (counts, expected, res)


def test_categorical_single_category(gs):
    # K = 1: always index 0, and the counter still advances by the number of rows
    rng = gs.Philox(3)
    c = gs.categorical(np.full((50, 1), -7.0), rng=rng)
    np.testing.assert_array_equal(c, 0)
    assert rng.counter == 50


# ============================================================================ top_k
TOPK_CASES = [
    ((6, 1), -1, 1),
    ((9, 2), -1, 1),
    ((9, 2), -1, 2),
    ((11, 7), -1, 3),
    ((11, 7), 0, 5),
    ((5, 32), -1, 32),
    ((5, 33), -1, 8),
    ((5, 33), 1, 33),
    ((3, 1000), -1, 10),
    ((2, 1000), -1, 1000),
    ((7,), 0, 4),
    ((4, 6, 5), 0, 2),
    ((4, 6, 5), 1, 6),
    ((4, 6, 5), 2, 3),
    ((2, 3, 4, 5), 1, 2),
]
TOPK_IDS = [f"{s}-ax{a}-k{k}" for s, a, k in TOPK_CASES]


def _topk_shape(shape, axis, k):
    s = list(shape)
    s[axis % len(shape)] = k
    return tuple(s)


@pytest.mark.parametrize("layout", ["contiguous", "strided", "negative", "fortran"])
@pytest.mark.parametrize("case", TOPK_CASES, ids=TOPK_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_k_matches_reference(gs, moved_noise, dtype, case, layout):
    shape, axis, k = case
    x = make_logits(shape, dtype, seed=300 + shape[axis] + k, layout=layout)
    x_before = x.copy()
    seed, p = 77, 2**32 - 2
    rng = gs.Philox(seed, counter=p)
    t = gs.top_k(x, k, axis=axis, rng=rng)
    assert isinstance(t, np.ndarray) and t.dtype == np.int64
    assert t.shape == _topk_shape(shape, axis, k)
    assert rng.counter == p + n_rows(shape, axis)
    np.testing.assert_array_equal(x, x_before)
    g = moved_noise(shape, dtype, seed, p, axis)
    np.testing.assert_array_equal(t, top_k_ref(x, g, dtype, k, axis))
    # distinct indices in range; the values v along the result decrease
    tm = np.moveaxis(t, axis, -1)
    assert np.all((tm >= 0) & (tm < shape[axis]))
    srt = np.sort(tm, axis=-1)
    assert np.all(srt[..., 1:] != srt[..., :-1])
    v, _ = _perturbed(x, g, dtype, axis)
    vt = np.take_along_axis(v, tm, axis=-1)
    assert np.all(vt[..., 1:] <= vt[..., :-1])


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_k_k_equals_K_is_a_permutation(gs, dtype):
    x = make_logits((50, 6), dtype, seed=5)
    t = gs.top_k(x, 6, rng=gs.Philox(1))
    np.testing.assert_array_equal(np.sort(t, axis=-1), np.broadcast_to(np.arange(6), (50, 6)))
    # and its first column is categorical from the same state
    np.testing.assert_array_equal(t[:, 0], gs.categorical(x, rng=gs.Philox(1)))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_k_zero(gs, dtype, axis):
    x = make_logits((3, 4, 5), dtype, seed=6)
    t = gs.top_k(x, 0, axis=axis, rng=gs.Philox(1))
    assert t.dtype == np.int64 and t.shape == _topk_shape(x.shape, axis, 0)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_1_is_categorical(gs, dtype, axis):
    shape = (4, 6, 5)
    x = make_logits(shape, dtype, seed=8, layout="negative")
    x[1, 2, 3] = -np.inf
    x[0, 0, :] = np.nan  # invalid rows along the last axis: -1 in both
    t = gs.top_k(x, 1, axis=axis, rng=gs.Philox(21, counter=3))
    c = gs.categorical(x, axis=axis, rng=gs.Philox(21, counter=3))
    assert t.shape == _topk_shape(shape, axis, 1)
    np.testing.assert_array_equal(np.squeeze(t, axis=axis), c)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_k_minus_one_slots(gs, moved_noise, dtype):
    inf, nan = np.inf, np.nan
    x = make_logits((7, 6), dtype, seed=9)
    x[0, [1, 3, 4]] = -inf  # 3 finite: slots 3, 4 are -1
    x[1, :5] = -inf  # 1 finite
    x[2, :] = -inf  # none: all -1
    x[3, 2] = nan  # NaN: all -1
    x[4, 0] = inf  # +inf: all -1
    rng = gs.Philox(50, counter=7)
    t = gs.top_k(x, 5, rng=rng)
    assert rng.counter == 14
    g = moved_noise(x.shape, dtype, 50, 7)
    np.testing.assert_array_equal(t, top_k_ref(x, g, dtype, 5))
    assert np.all(t[0, 3:] == -1) and np.all(t[0, :3] >= 0)
    assert set(t[0, :3].tolist()) == {0, 2, 5}
    np.testing.assert_array_equal(t[1], [5, -1, -1, -1, -1])
    np.testing.assert_array_equal(t[2:5], -1)
    assert np.all(t[5:] >= 0)


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_k_mask(gs, moved_noise, dtype, axis):
    shape = (9, 8)
    x = make_logits(shape, dtype, seed=10)
    mask = np.random.default_rng(10).random(shape) < 0.5
    if axis == -1:
        mask[2] = False
    else:
        mask[:, 2] = False
    k = 4
    t = gs.top_k(x, k, axis=axis, rng=gs.Philox(3, counter=1), mask=mask)
    g = moved_noise(shape, dtype, 3, 1, axis)
    np.testing.assert_array_equal(t, top_k_ref(x, g, dtype, k, axis, mask=mask))
    t_inf = gs.top_k(_masked_logits(x, mask), k, axis=axis, rng=gs.Philox(3, counter=1))
    np.testing.assert_array_equal(t, t_inf)
    # never a masked category; exactly min(k, #allowed) valid slots per row
    tm, mm = np.moveaxis(t, axis, -1), np.moveaxis(mask, axis, -1)
    n_ok = np.minimum(k, mm.sum(axis=-1))
    for r in range(tm.shape[0]):
        assert np.all(tm[r, : n_ok[r]] >= 0) and np.all(tm[r, n_ok[r] :] == -1)
        assert np.all(mm[r, tm[r, : n_ok[r]]])
    with pytest.raises(TypeError, match="mask"):
        gs.top_k(x, 2, rng=gs.Philox(1), mask=mask.astype(np.int8))
    with pytest.raises(ValueError, match="mask"):
        gs.top_k(x, 2, rng=gs.Philox(1), mask=np.ones((2, 8), dtype=bool))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_top_k_ties_lower_index_first(gs, dtype):
    big = 2.0**40 if dtype == np.float32 else 2.0**80
    x = np.full((5, 9), big, dtype=dtype)
    x[:, 3] = -big
    t = gs.top_k(x, 9, rng=gs.Philox(4))
    np.testing.assert_array_equal(t, np.broadcast_to([0, 1, 2, 4, 5, 6, 7, 8, 3], (5, 9)))


@pytest.mark.parametrize("k", [-1, -5, 8, 100])
def test_top_k_k_out_of_range(gs, k):
    x = make_logits((3, 7), np.float64, seed=1)
    rng = gs.Philox(1, counter=10)
    with pytest.raises(ValueError, match=K_WORD):
        gs.top_k(x, k, rng=rng)
    assert rng.counter == 10
    with pytest.raises(ValueError, match=K_WORD):  # K = 3 along axis 0
        gs.top_k(x, k, axis=0, rng=rng)
    assert rng.counter == 10


def test_top_k_k_range_follows_axis(gs):
    x = make_logits((3, 7), np.float64, seed=1)
    assert gs.top_k(x, 3, axis=0, rng=gs.Philox(1)).shape == (3, 7)
    with pytest.raises(ValueError, match=K_WORD):
        gs.top_k(x, 4, axis=0, rng=gs.Philox(1))


@pytest.mark.parametrize("k", [1.5, 2.0, "2", None, np.float64(2.0), [2]], ids=repr)
def test_top_k_k_not_an_integer(gs, k):
    x = make_logits((3, 7), np.float64, seed=1)
    rng = gs.Philox(1, counter=10)
    with pytest.raises(TypeError, match=K_WORD):
        gs.top_k(x, k, rng=rng)
    assert rng.counter == 10


def test_top_k_rejects_bool_k(gs):
    rng = gs.Philox(1)
    for k in (True, np.bool_(True)):
        with pytest.raises(TypeError, match=r"\bk\b"):
            gs.top_k(np.zeros(4), k, rng=rng)
    assert rng.counter == 0


def test_top_k_numpy_integer_k(gs):
    x = make_logits((3, 7), np.float64, seed=1)
    a = gs.top_k(x, np.int64(3), rng=gs.Philox(2))
    np.testing.assert_array_equal(a, gs.top_k(x, 3, rng=gs.Philox(2)))


def test_top_k_one_dimensional(gs, moved_noise):
    x = np.linspace(-1, 1, 12)
    rng = gs.Philox(2, counter=1)
    t = gs.top_k(x, 4, rng=rng)
    assert t.shape == (4,) and rng.counter == 2
    np.testing.assert_array_equal(
        t, top_k_ref(x, moved_noise((12,), np.float64, 2, 1), np.float64, 4)
    )


def test_top_k_float16_uses_float32_stream(gs):
    x16 = np.random.default_rng(2).standard_normal((30, 11)).astype(np.float16)
    a = gs.top_k(x16, 4, rng=gs.Philox(5))
    b = gs.top_k(x16.astype(np.float32), 4, rng=gs.Philox(5))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------- exactness: Plackett-Luce
PL_CASES = {
    # name: (probabilities or logits, mask, k)
    "K2-k1": (np.log([0.3, 0.7]), None, 1),
    "K2-k2": (np.log([0.3, 0.7]), None, 2),
    "K3-k2": (np.log([0.2, 0.3, 0.5]), None, 2),
    "K3-k3": (np.log([0.05, 0.35, 0.6]), None, 3),
    "K4-k2": (np.log([0.1, 0.2, 0.3, 0.4]), None, 2),
    "K4-k3": (np.array([1.0, -0.5, 0.0, 0.7]), None, 3),
    "K5-k3": (np.log([0.1, 0.15, 0.2, 0.25, 0.3]), None, 3),
    "K5-k5": (np.array([0.3, -0.2, 0.9, 0.0, -1.0]), None, 5),
    "K5-masked-k4": (
        np.array([0.3, -0.2, 0.9, 0.0, -1.0]),
        np.array([True, False, True, True, True]),
        4,
    ),
    "K4-neginf-k4": (np.array([0.5, -np.inf, -0.3, 0.1]), None, 4),  # 3 finite: slot 4 = -1
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("name", list(PL_CASES))
def test_top_k_plackett_luce_exact(gs, name, dtype):
    """Ordered k-tuples against the enumerated Plackett-Luce probabilities
    P(i1..ik) = prod_j p_ij / (1 - p_i1 - ... - p_i(j-1)) with p = softmax(logits):
    chi-square over all ordered tuples at false-alarm rate ALPHA / 2, and the inclusion
    frequency of each category against sum of P over the tuples containing it: two-sided
    z-tests, Bonferroni over the K categories at total ALPHA / 2.  Total false-alarm rate
    of the test: ALPHA = 1e-6."""
    l, mask, k = PL_CASES[name]
    l = l.astype(dtype)
    K = l.size
    N = N_DRAWS
    seed = 9000 + 10 * list(PL_CASES).index(name) + (0 if dtype == np.float32 else 1)
    x = np.broadcast_to(l, (N, K))
    m = None if mask is None else np.broadcast_to(mask, (N, K))
    rng = gs.Philox(seed)
    t = gs.top_k(x, k, rng=rng, mask=m)
    assert t.shape == (N, k) and rng.counter == N

    p = softmax64(_masked_logits(l, mask))
    pl = plackett_luce(p, k)
    tuples = list(pl)
    probs = np.array([pl[tp] for tp in tuples])
    assert abs(probs.sum() - 1.0) < 1e-12

    # encode each drawn tuple (entries in -1..K-1) as one integer, base K + 1
    base = (K + 1) ** np.arange(k, dtype=np.int64)
    codes = (t + 1) @ base
    cell_codes = (np.array(tuples, dtype=np.int64) + 1) @ base
    pos = {int(c): i for i, c in enumerate(cell_codes)}
    uniq, cnt = np.unique(codes, return_counts=True)
    unknown = [u for u in uniq.tolist() if u not in pos]
    assert not unknown, f"impossible tuples drawn, e.g. code {unknown[0]}"
    counts = np.zeros(len(tuples), dtype=np.int64)
    for u, c in zip(uniq.tolist(), cnt.tolist()):
        counts[pos[u]] = c
    expected = N * probs
    assert expected.min() >= 5, "the chi-square approximation needs >= 5 per cell"
    if len(tuples) > 1:
        res = stats.chisquare(counts, expected)
        assert res.pvalue > ALPHA / 2, (name, counts, expected, res)

    # inclusion probabilities
    incl_p = np.array([sum(pr for tp, pr in pl.items() if c in tp) for c in range(K)])
    assert abs(incl_p.sum() - min(k, int(np.sum(p > 0)))) < 1e-12
    incl_n = np.array([np.count_nonzero(np.any(t == c, axis=1)) for c in range(K)])
    z_crit = stats.norm.isf(ALPHA / 2 / (2 * K))  # two-sided, Bonferroni over K
    for c in range(K):
        if incl_p[c] == 0.0:
            assert incl_n[c] == 0, f"category {c} has probability 0 but was drawn"
        elif incl_p[c] > 1.0 - 1e-12:  # certain (a sum of rounded products)
            assert incl_n[c] == N
        else:
            z = (incl_n[c] - N * incl_p[c]) / math.sqrt(N * incl_p[c] * (1 - incl_p[c]))
            assert abs(z) < z_crit, (name, c, incl_n[c], N * incl_p[c], z)
