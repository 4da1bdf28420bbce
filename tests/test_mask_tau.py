"""The mask= keyword and per-row (array) tau.

mask: True = allowed, False = excluded exactly as if that logit were -inf, on
gumbel_softmax, log_gumbel_softmax, categorical, top_k and the recomputing
gumbel_softmax_backward.

Per-row tau: an array broadcastable to the batch shape (logits.shape without axis) or
of logits.ndim dims with length 1 on axis; row r of such a call is bitwise equal to the
same row drawn alone with the scalar tau of that row at the same stream row (a 1-row
slice with gs.Philox(seed, counter=p + r)).
"""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal_any_nan, random_logits
from reference import check_backward, softmax_ref

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


# ----------------------------------------------------------------------- helpers
def row_slices(shape, axis):
    """(r, 1-row slice of the original array, batch index) for the rows in C order of
    the dimensions other than ``axis``."""
    ax = axis % len(shape)
    batch = tuple(d for i, d in enumerate(shape) if i != ax)
    for r, bidx in enumerate(np.ndindex(*batch)):
        it = iter(bidx)
        sl = tuple(
            slice(None) if i == ax else (lambda j: slice(j, j + 1))(next(it))
            for i in range(len(shape))
        )
        yield r, sl, bidx


def batch_shape(shape, axis):
    ax = axis % len(shape)
    return tuple(d for i, d in enumerate(shape) if i != ax)


def tau_per_row(tau, shape, axis):
    """The tau of every row, as an array of the batch shape."""
    tau = np.asarray(tau, dtype=np.float64)
    ax = axis % len(shape)
    if tau.ndim == len(shape):  # keepdims
        tau = np.squeeze(tau, axis=ax)
    return np.broadcast_to(tau, batch_shape(shape, axis))


def per_row_reference(fn, x, tau, axis, seed, p):
    """Every row drawn alone (scalar tau of that row, Philox at p + r)."""
    tb = tau_per_row(tau, x.shape, axis)
    outs = None
    for r, sl, bidx in row_slices(x.shape, axis):
        res = fn(x[sl], float(tb[bidx]), axis, gs.Philox(seed, counter=p + r))
        if outs is None:
            outs = [np.empty(x.shape, dtype=a.dtype) for a in res]
        for o, a in zip(outs, res):
            o[sl] = a
    return tuple(outs)


FNS = {
    "soft": lambda x, tau, axis, rng: (gs.gumbel_softmax(x, tau, axis=axis, rng=rng),),
    "hard_return_soft": lambda x, tau, axis, rng: gs.gumbel_softmax(
        x, tau, hard=True, axis=axis, rng=rng, return_soft=True
    ),
    "soft_return_soft": lambda x, tau, axis, rng: gs.gumbel_softmax(
        x, tau, axis=axis, rng=rng, return_soft=True
    ),
    "log": lambda x, tau, axis, rng: (gs.log_gumbel_softmax(x, tau, axis=axis, rng=rng),),
}

# tau = 1.0 exactly (the internal tau = 1 path) mixed with other values; 1 + 2**-30
# has 1/tau == 1 in float32 but not in float64.
# 1e-39 and 1e-300: 1/tau above float32's (resp. both dtypes') largest finite value (capped).
TAU_CYCLE = [
    1.0,
    0.5,
    1.0,
    2.0,
    0.05,
    1.0 + 2.0**-30,
    7.3,
    1.0,
    0.9,
    1e-3,
    30.0,
    1e-39,
    1.0,
    1e-300,
]

A, B, C = 3, 21, 7
LAYOUTS = {
    # name: (shape with K for the axis, axis, tau shape)
    "2d_batch": (lambda K: (B, K), -1, (B,)),
    "2d_keepdims": (lambda K: (B, K), -1, (B, 1)),
    "axis0_batch": (lambda K: (K, B), 0, (B,)),
    "axis0_keepdims": (lambda K: (K, B), 0, (1, B)),
    "3d_batch": (lambda K: (A, K, C), 1, (A, C)),
    "3d_keepdims": (lambda K: (A, K, C), 1, (A, 1, C)),
    "3d_broadcast_batch": (lambda K: (A, K, C), 1, (C,)),
    "3d_broadcast_batch2": (lambda K: (A, C, K), 2, (A, 1)),
}


def make_tau(tau_shape, seed=0):
    n = int(np.prod(tau_shape))
    start = seed % len(TAU_CYCLE)
    return np.resize(np.roll(TAU_CYCLE, -start), n).reshape(tau_shape).astype(np.float64)


# -------------------------------------------------------------------- per-row tau
@pytest.mark.parametrize("K", [3, 17, 32, 33, 300])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("fn", list(FNS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau_rows_bitwise(dtype, fn, layout, K):
    make_shape, axis, tshape = LAYOUTS[layout]
    shape = make_shape(K)
    x = random_logits(shape, dtype, seed=K + len(layout))
    tau = make_tau(tshape, seed=K)
    tau0 = tau.copy()
    seed, p = 1357, 2**32 - 5
    rng = gs.Philox(seed, counter=p)
    got = FNS[fn](x, tau, axis, rng)
    R = int(np.prod(batch_shape(shape, axis)))
    assert rng.counter == p + R
    np.testing.assert_array_equal(tau, tau0)  # tau untouched
    ref = per_row_reference(FNS[fn], x, tau, axis, seed, p)
    assert len(got) == len(ref)
    for i, (a, b) in enumerate(zip(got, ref)):
        assert a.shape == shape and a.dtype == np.dtype(dtype)
        assert_bitwise_equal_any_nan(a, b, f"output {i}")
    if fn == "soft_return_soft":
        assert got[1] is got[0]


@pytest.mark.parametrize("fn", ["soft", "hard_return_soft", "log"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau_threaded_call(dtype, fn):
    # 40 x 1000 elements: above the 2**14-element threshold for threads
    x = random_logits((40, 1000), dtype, seed=3)
    tau = make_tau((40,), seed=5)
    got = FNS[fn](x, tau, -1, gs.Philox(8, counter=77))
    ref = per_row_reference(FNS[fn], x, tau, -1, 8, 77)
    for a, b in zip(got, ref):
        assert_bitwise_equal_any_nan(a, b)


@pytest.mark.parametrize("tau", [0.3, 1.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau_long_single_row(dtype, tau):
    # one row of 2**17 elements: split into segments over the threads
    x = random_logits((1, 2**17), dtype, seed=4)
    for fn in ("soft", "log"):
        a = FNS[fn](x, np.array([tau]), -1, gs.Philox(9, counter=3))[0]
        b = FNS[fn](x, tau, -1, gs.Philox(9, counter=3))[0]
        assert_bitwise_equal_any_nan(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau_and_mask_rows_split_over_threads(dtype):
    """4 threads, 3 rows of more than 2**16 elements: the rows are split into segments
    over the threads; every row still equals the row alone, and the 1-thread call."""
    x = random_logits((3, 2**16 + 37), dtype, seed=21)
    tau = np.array([0.3, 1.0, 2.0])
    m = np.random.default_rng(22).random(x.shape) < 0.8
    res = {}
    try:
        for n in (4, 1):
            gs.set_num_threads(n)
            res[n] = [
                gs.gumbel_softmax(x, tau, rng=gs.Philox(3, counter=1), mask=m),
                gs.log_gumbel_softmax(x, tau[:, None], rng=gs.Philox(3, counter=1), mask=m),
            ]
        gs.set_num_threads(4)
        xm = np.where(m, x, -np.inf).astype(dtype)
        ref = [per_row_reference(FNS[f], xm, tau, -1, 3, 1)[0] for f in ("soft", "log")]
    finally:
        gs.set_num_threads(0)
    for a, b, c in zip(res[4], res[1], ref):
        assert_bitwise_equal_any_nan(a, b, "4 vs 1 thread")
        assert_bitwise_equal_any_nan(a, c, "rows alone")


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau_keepdims_broadcast(dtype):
    # a keepdims tau whose other dims broadcast: (A, 1, 1) for logits (A, C, K), axis -1
    shape = (A, C, 9)
    x = random_logits(shape, dtype, seed=6)
    tau = np.array([0.4, 1.0, 2.5]).reshape(A, 1, 1)
    got = FNS["hard_return_soft"](x, tau, -1, gs.Philox(2, counter=11))
    ref = per_row_reference(FNS["hard_return_soft"], x, tau, -1, 2, 11)
    for a, b in zip(got, ref):
        assert_bitwise_equal_any_nan(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_tau_zero_d_array_and_uniform_array_equal_scalar(dtype):
    x = random_logits((B, 10), dtype, seed=7)
    for t in (0.37, 1.0):
        ref = gs.gumbel_softmax(x, t, rng=gs.Philox(1, counter=2))
        assert_bitwise_equal_any_nan(
            gs.gumbel_softmax(x, np.array(t), rng=gs.Philox(1, counter=2)), ref
        )
        assert_bitwise_equal_any_nan(
            gs.gumbel_softmax(x, np.full(B, t), rng=gs.Philox(1, counter=2)), ref
        )
        ref = gs.log_gumbel_softmax(x, t, rng=gs.Philox(1, counter=2))
        assert_bitwise_equal_any_nan(
            gs.log_gumbel_softmax(x, np.full((B, 1), t), rng=gs.Philox(1, counter=2)), ref
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_per_row_tau_out(dtype):
    x = random_logits((B, 12), dtype, seed=8)
    tau = make_tau((B,), seed=2)
    ref = gs.gumbel_softmax(x, tau, rng=gs.Philox(4))
    out = np.full(x.shape, np.nan, dtype=dtype)
    assert gs.gumbel_softmax(x, tau, rng=gs.Philox(4), out=out) is out
    assert_bitwise_equal_any_nan(out, ref)
    xi = x.copy()
    assert gs.gumbel_softmax(xi, tau, rng=gs.Philox(4), out=xi) is xi
    assert_bitwise_equal_any_nan(xi, ref)


# ------------------------------------------------------- per-row tau, backward
@pytest.mark.parametrize("K", [5, 32, 100])
@pytest.mark.parametrize(
    "layout", ["2d_batch", "2d_keepdims", "axis0_keepdims", "3d_batch", "3d_broadcast_batch"]
)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_per_row_tau(dtype, layout, K):
    make_shape, axis, tshape = LAYOUTS[layout]
    shape = make_shape(K)
    gen = np.random.default_rng(K)
    gy = gen.standard_normal(shape).astype(dtype)
    ys = softmax_ref(3.0 * gen.standard_normal(shape), axis=axis).astype(dtype)
    # (no tau below 1e-30 here: 1/tau is capped at the dtype's largest finite value and
    # the gradient may overflow, as documented; the forward tests cover those)
    tau = make_tau(tshape, seed=K + 1)
    tau = np.where(tau < 1e-30, 0.02, tau)
    got = gs.gumbel_softmax_backward(gy, ys, tau, axis=axis)
    assert got.shape == shape and got.dtype == np.dtype(dtype)
    tb = tau_per_row(tau, shape, axis)
    ax = axis % len(shape)
    for r, sl, bidx in row_slices(shape, axis):
        # the NumPy formula y_soft * (grad_y - sum(grad_y * y_soft)) / tau_row
        check_backward(
            np.squeeze(got[sl]).reshape(-1),
            np.squeeze(gy[sl]).reshape(-1),
            np.squeeze(ys[sl]).reshape(-1),
            float(tb[bidx]),
        )
        # and bitwise the row alone with its scalar tau
        one = gs.gumbel_softmax_backward(gy[sl], ys[sl], float(tb[bidx]), axis=ax)
        assert_bitwise_equal_any_nan(got[sl], one, f"row {r}")


# ------------------------------------------------------------------ bad tau arrays
def _bad_tau_calls(x, gy, ys, rng):
    return {
        "gumbel_softmax": lambda t: gs.gumbel_softmax(x, t, rng=rng),
        "hard": lambda t: gs.gumbel_softmax(x, t, hard=True, rng=rng, return_soft=True),
        "log_gumbel_softmax": lambda t: gs.log_gumbel_softmax(x, t, rng=rng),
        "backward": lambda t: gs.gumbel_softmax_backward(gy, ys, t),
        "backward_recompute": lambda t: gs.gumbel_softmax_backward(gy, logits=x, tau=t, rng=rng),
    }


BAD_ELEMENT = [0.0, -0.0, -1.0, np.nan, np.inf, -np.inf]
NB, NK = 5, 4
BAD_SHAPES = [(NB + 1,), (NB, 2), (1, NK), (2, NB), (NK,), (NB, 1, 1), (2, NB, 1)]


@pytest.mark.parametrize(
    "call", ["gumbel_softmax", "hard", "log_gumbel_softmax", "backward", "backward_recompute"]
)
def test_bad_tau_arrays(call):
    x = random_logits((NB, NK), np.float64, seed=1)
    gy = random_logits((NB, NK), np.float64, seed=2)
    ys = softmax_ref(x)
    rng = gs.Philox(3, counter=10)
    f = _bad_tau_calls(x, gy, ys, rng)[call]
    for v in BAD_ELEMENT:
        for tshape in [(NB,), (NB, 1)]:
            t = np.full(tshape, 0.5)
            t.flat[2] = v
            with pytest.raises(ValueError, match="tau"):
                f(t)
    for tshape in BAD_SHAPES:
        with pytest.raises(ValueError, match="tau"):
            f(np.full(tshape, 0.5))
    assert rng.counter == 10


# --------------------------------------------------------------------------- mask
MASK_FNS = {
    "soft": lambda x, rng, axis, **kw: gs.gumbel_softmax(x, 0.7, axis=axis, rng=rng, **kw),
    "soft_tau1": lambda x, rng, axis, **kw: gs.gumbel_softmax(x, 1.0, axis=axis, rng=rng, **kw),
    "hard": lambda x, rng, axis, **kw: gs.gumbel_softmax(
        x, 0.7, hard=True, axis=axis, rng=rng, **kw
    ),
    "hard_soft": lambda x, rng, axis, **kw: gs.gumbel_softmax(
        x, 1.0, hard=True, axis=axis, rng=rng, return_soft=True, **kw
    )[1],
    "log": lambda x, rng, axis, **kw: gs.log_gumbel_softmax(x, 0.7, axis=axis, rng=rng, **kw),
    "log_tau1": lambda x, rng, axis, **kw: gs.log_gumbel_softmax(x, 1.0, axis=axis, rng=rng, **kw),
    "categorical": lambda x, rng, axis, **kw: gs.categorical(x, axis=axis, rng=rng, **kw),
    "top_k": lambda x, rng, axis, **kw: gs.top_k(x, 3, axis=axis, rng=rng, **kw),
}

MB, MK = 13, 6


def _mask_case(case, seed=0):
    """(logits shape, axis, mask) for a named mask layout."""
    gen = np.random.default_rng(seed)
    if case == "full":
        m = gen.random((MB, MK)) < 0.6
        m[np.arange(MB), gen.integers(0, MK, MB)] = True  # at least one allowed per row
        m[4] = False  # one all-masked row
        m[5] = True
        return (MB, MK), -1, m
    if case == "K":  # a category mask shared by every row
        return (MB, MK), -1, np.array([True, False, True, True, False, True])
    if case == "B1":  # whole rows allowed / excluded
        m = np.ones((MB, 1), dtype=bool)
        m[[1, 6, 12]] = False
        return (MB, MK), -1, m
    if case == "axis0_K1":  # logits (K, B), axis 0, category mask (K, 1)
        return (MK, MB), 0, np.array([False, True, True, False, True, True])[:, None]
    if case == "axis0_full":
        m = gen.random((MK, MB)) < 0.5
        m[0, :] = True
        m[:, 3] = False
        return (MK, MB), 0, m
    if case == "3d":  # (2, K, 5), axis 1, mask (1, K, 1)
        return (2, MK, 5), 1, np.array([True, True, False, True, False, False])[None, :, None]
    raise ValueError(case)


MASK_CASES = ["full", "K", "B1", "axis0_K1", "axis0_full", "3d"]


@pytest.mark.parametrize("case", MASK_CASES)
@pytest.mark.parametrize("fn", list(MASK_FNS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_mask_equals_minus_inf_logits(dtype, fn, case):
    shape, axis, m = _mask_case(case, seed=len(case))
    x = random_logits(shape, dtype, seed=11)
    # NaN and +inf at excluded entries: masked first, so they do not spoil the row
    excl = np.argwhere(~np.broadcast_to(m, shape))
    if len(excl) >= 2:
        x[tuple(excl[0])] = np.nan
        x[tuple(excl[-1])] = np.inf
    x0, m0 = x.copy(), m.copy()
    seed, p = 246, 2**63 - 7
    rng = gs.Philox(seed, counter=p)
    got = MASK_FNS[fn](x, rng, axis, mask=m)
    R = int(np.prod(batch_shape(shape, axis)))
    assert rng.counter == p + R
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(m, m0)
    xm = np.where(m, x, -np.inf).astype(dtype)
    ref = MASK_FNS[fn](xm, gs.Philox(seed, counter=p), axis)
    assert_bitwise_equal_any_nan(got, ref, fn)

    mb = np.broadcast_to(m, shape)
    ax = axis % len(shape)
    dead = ~np.any(mb, axis=ax)  # rows with every category excluded
    if fn in ("categorical", "top_k"):
        assert got.dtype == np.int64
        idx = got if fn == "top_k" else np.expand_dims(got, ax)
        valid = idx >= 0
        allowed = np.take_along_axis(mb, np.where(valid, idx, 0), axis=ax)
        assert np.all(allowed[valid]), "a masked category was chosen"
        if fn == "categorical":
            np.testing.assert_array_equal(got == -1, dead)
        else:
            n_allowed = np.sum(mb, axis=ax, keepdims=True)
            np.testing.assert_array_equal(
                np.sum(valid, axis=ax, keepdims=True), np.minimum(n_allowed, 3)
            )
            # -1 only in the trailing slots; the chosen indices are distinct
            assert np.all(np.diff(valid.astype(np.int8), axis=ax) <= 0)
            srt = np.sort(
                np.where(
                    valid,
                    idx,
                    -1 - np.arange(3).reshape([3 if i == ax else 1 for i in range(idx.ndim)]),
                ),
                axis=ax,
            )
            assert np.all(np.diff(srt, axis=ax) != 0)
        return
    deadx = np.expand_dims(dead, ax)
    live = np.broadcast_to(~deadx, shape)
    assert np.all(np.isnan(got[np.broadcast_to(deadx, shape)])), "all-masked row not NaN"
    assert not np.any(np.isnan(got[live]))
    if fn.startswith("log"):
        assert np.all(got[live & ~mb] == -np.inf)
        assert np.all(np.isfinite(got[live & mb]))
    else:
        assert np.all(got[live & ~mb] == 0.0)
        assert not np.any(np.signbit(got[live & ~mb]))
        if fn == "hard":
            np.testing.assert_array_equal(got[live & ~mb], 0.0)
            assert np.all(np.sum(got, axis=ax)[~dead] == 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_mask_leaves_other_rows_unchanged(dtype):
    shape, axis, m = _mask_case("B1")
    x = random_logits(shape, dtype, seed=12)
    rows = m[:, 0]
    for fn in MASK_FNS:
        a = MASK_FNS[fn](x, gs.Philox(5, counter=1), axis, mask=m)
        b = MASK_FNS[fn](x, gs.Philox(5, counter=1), axis)
        assert_bitwise_equal_any_nan(a[rows], b[rows], fn)
        if fn == "categorical":
            assert np.all(a[~rows] == -1)
        elif fn == "top_k":
            assert np.all(a[~rows] == -1)
        else:
            assert np.all(np.isnan(a[~rows]))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_mask_hard_return_soft_and_per_row_tau(dtype):
    shape, axis, m = _mask_case("full", seed=3)
    x = random_logits(shape, dtype, seed=13)
    tau = make_tau((MB,), seed=4)
    h, s = gs.gumbel_softmax(x, tau, hard=True, rng=gs.Philox(7), return_soft=True, mask=m)
    xm = np.where(m, x, -np.inf).astype(dtype)
    h2, s2 = gs.gumbel_softmax(xm, tau, hard=True, rng=gs.Philox(7), return_soft=True)
    assert_bitwise_equal_any_nan(h, h2)
    assert_bitwise_equal_any_nan(s, s2)
    # and each row equals the row alone with its scalar tau
    hr, sr = per_row_reference(FNS["hard_return_soft"], xm, tau, -1, 7, 0)
    assert_bitwise_equal_any_nan(h, hr)
    assert_bitwise_equal_any_nan(s, sr)


@pytest.mark.parametrize("case", ["full", "K", "axis0_full", "3d"])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_mask_gradient_exactly_zero(dtype, hard, case):
    shape, axis, m = _mask_case(case, seed=5)
    # no all-masked row here (the gradient of a NaN row is NaN): allow category 0
    m = m.copy()
    ax = axis % len(shape)
    if m.ndim == len(shape) and m.shape[ax] == shape[ax]:
        np.moveaxis(m, ax, -1)[..., 0] = True
    x = random_logits(shape, dtype, seed=14)
    gy = random_logits(shape, dtype, seed=15)
    seed, p = 99, 1000
    y, ys = gs.gumbel_softmax(
        x, 0.6, hard=hard, axis=axis, rng=gs.Philox(seed, counter=p), return_soft=True, mask=m
    )
    mb = np.broadcast_to(m, shape)
    g_stored = gs.gumbel_softmax_backward(gy, ys, 0.6, axis=axis)
    rng = gs.Philox(seed, counter=p)
    g_re = gs.gumbel_softmax_backward(gy, logits=x, tau=0.6, axis=axis, rng=rng, mask=m)
    assert rng.counter == p
    assert_bitwise_equal_any_nan(g_re, g_stored)
    assert np.all(g_re[~mb] == 0.0)
    assert np.all(np.isfinite(g_re))
    # the same as recomputing with -inf logits
    xm = np.where(m, x, -np.inf).astype(dtype)
    g_inf = gs.gumbel_softmax_backward(
        gy, logits=xm, tau=0.6, axis=axis, rng=gs.Philox(seed, counter=p)
    )
    assert_bitwise_equal_any_nan(g_re, g_inf)


def test_mask_one_dimensional_logits():
    x = np.array([0.5, 3.0, -1.0, 2.0])
    m = np.array([True, False, True, True])
    c = gs.categorical(x, rng=gs.Philox(1), mask=m)
    assert c.shape == () and c.dtype == np.int64 and m[int(c)]
    y = gs.gumbel_softmax(x, 0.5, rng=gs.Philox(1), mask=m)
    assert y[1] == 0.0
    assert_bitwise_equal_any_nan(
        y, gs.gumbel_softmax(np.where(m, x, -np.inf), 0.5, rng=gs.Philox(1))
    )
    assert np.all(gs.categorical(x, rng=gs.Philox(1), mask=np.zeros(4, bool)) == -1)


# --------------------------------------------------------------------- mask errors
def _mask_calls(x, gy, rng):
    return {
        "gumbel_softmax": lambda m: gs.gumbel_softmax(x, 0.5, rng=rng, mask=m),
        "hard": lambda m: gs.gumbel_softmax(x, 0.5, hard=True, rng=rng, mask=m),
        "log_gumbel_softmax": lambda m: gs.log_gumbel_softmax(x, 0.5, rng=rng, mask=m),
        "categorical": lambda m: gs.categorical(x, rng=rng, mask=m),
        "top_k": lambda m: gs.top_k(x, 2, rng=rng, mask=m),
        "backward_recompute": lambda m: gs.gumbel_softmax_backward(
            gy, logits=x, tau=0.5, rng=rng, mask=m
        ),
    }


MASK_CALLS = [
    "gumbel_softmax",
    "hard",
    "log_gumbel_softmax",
    "categorical",
    "top_k",
    "backward_recompute",
]


@pytest.mark.parametrize("call", MASK_CALLS)
def test_mask_bad_dtype_is_type_error(call):
    x = random_logits((NB, NK), np.float32, seed=1)
    gy = random_logits((NB, NK), np.float32, seed=2)
    rng = gs.Philox(3, counter=10)
    f = _mask_calls(x, gy, rng)[call]
    for m in (
        np.ones((NB, NK), dtype=np.int64),
        np.ones((NB, NK), dtype=np.uint8),
        np.ones((NB, NK), dtype=np.float64),
        np.ones(NK, dtype=np.int8),
        [[1, 0, 1, 1]] * NB,
    ):
        with pytest.raises(TypeError, match="mask"):
            f(m)
    assert rng.counter == 10


@pytest.mark.parametrize("call", MASK_CALLS)
def test_mask_not_broadcastable_is_value_error(call):
    x = random_logits((NB, NK), np.float32, seed=1)
    gy = random_logits((NB, NK), np.float32, seed=2)
    rng = gs.Philox(3, counter=10)
    f = _mask_calls(x, gy, rng)[call]
    for shape in [(NK + 1,), (NB,), (NB + 1, 1), (NB, NK, 2), (2, NB, NK), (NK, NB)]:
        with pytest.raises(ValueError, match="mask"):
            f(np.ones(shape, dtype=bool))
    assert rng.counter == 10


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K", [40_000, 70_000])
def test_mask_long_rows_equal_neg_inf_logits(dtype, K):
    """The kernels apply a mask themselves for rows of up to 4 MiB / 16 (65,536 float32,
    32,768 float64 elements) and the Python layer masks longer rows first: both sides of
    that limit, contiguous rows, a column mask broadcast over rows (axis 0, strided) and
    the hard, categorical and log-space samplers, bitwise against -inf logits."""
    rng = np.random.default_rng(K)
    x = rng.standard_normal((3, K)).astype(dtype)
    mask = rng.random(K) < 0.7
    xm = np.where(mask, x, -np.inf).astype(dtype)
    for tau in (0.5, 1.0):
        a = gs.gumbel_softmax(x, tau, rng=gs.Philox(4), mask=mask)
        b = gs.gumbel_softmax(xm, tau, rng=gs.Philox(4))
        assert a.tobytes() == b.tobytes()
        assert np.all(a[:, ~mask] == 0)
    h = gs.gumbel_softmax(x, 0.5, hard=True, rng=gs.Philox(4), mask=mask)
    assert h.tobytes() == gs.gumbel_softmax(xm, 0.5, hard=True, rng=gs.Philox(4)).tobytes()
    c = gs.categorical(x, rng=gs.Philox(4), mask=mask)
    assert np.array_equal(c, gs.categorical(xm, rng=gs.Philox(4))) and mask[c].all()
    lg = gs.log_gumbel_softmax(x, 0.5, rng=gs.Philox(4), mask=mask)
    assert lg.tobytes() == gs.log_gumbel_softmax(xm, 0.5, rng=gs.Philox(4)).tobytes()
    # axis 0: rows are the columns of x.T (strided), the mask varies along the rows
    xt, mt, xmt = x.T, mask[:, None], xm.T
    a = gs.gumbel_softmax(xt, 0.5, axis=0, rng=gs.Philox(9), mask=mt)
    assert a.tobytes() == gs.gumbel_softmax(xmt, 0.5, axis=0, rng=gs.Philox(9)).tobytes()
