"""gs.gumbel_softmax forward: soft and hard samples against the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import n_rows
from reference import check_forward, check_one_hot, fwd_rtol, softmax_ref, tiny_atol

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
AXES = [0, 1, 2, -1]
TAUS = [0.1, 0.5, 1.0, 3.0]
SHAPE = (4, 6, 5)
LAYOUTS = [
    "contiguous",
    "noncontiguous",
    "negative_strides",
    "broadcast_batch",
    "broadcast_row",
    "fortran",
]


def make_logits(layout, dtype, seed, shape=SHAPE, scale=2.0):
    """Logits of ``shape`` with the requested memory layout (values from ``seed``)."""
    r = np.random.default_rng(seed)
    a, b, c = shape
    if layout == "contiguous":
        x = (scale * r.standard_normal(shape)).astype(dtype)
    elif layout == "noncontiguous":
        x = (scale * r.standard_normal((a, 2 * b, c))).astype(dtype)[:, ::2]
    elif layout == "negative_strides":
        x = (scale * r.standard_normal(shape)).astype(dtype)[::-1, :, ::-1]
    elif layout == "broadcast_batch":  # stride 0 along axis 0
        x = np.broadcast_to((scale * r.standard_normal((1, b, c))).astype(dtype), shape)
    elif layout == "broadcast_row":  # stride 0 along axis 1
        x = np.broadcast_to((scale * r.standard_normal((a, 1, c))).astype(dtype), shape)
    elif layout == "fortran":
        x = np.asfortranarray((scale * r.standard_normal(shape)).astype(dtype))
    else:
        raise ValueError(layout)
    assert x.shape == shape and x.dtype == np.dtype(dtype)
    return x


# ------------------------------------------------------------------------- soft
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_soft_matches_reference(gs, moved_noise, dtype, axis, tau, layout):
    x = make_logits(layout, dtype, seed=100 + AXES.index(axis))
    x_before = x.copy()
    seed, p = 4321, 2**32 - 3
    rng = gs.Philox(seed, counter=p)
    y = gs.gumbel_softmax(x, tau, axis=axis, rng=rng)
    assert y.shape == x.shape and y.dtype == np.dtype(dtype)
    assert y.flags.c_contiguous
    assert rng.counter == p + n_rows(SHAPE, axis)
    np.testing.assert_array_equal(x, x_before)  # input untouched
    g = moved_noise(SHAPE, dtype, seed, p, axis)
    check_forward(y, x, g, tau, axis=axis)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_axis_is_moveaxis(gs, dtype, axis):
    # gumbel_softmax(x, axis=a) is bitwise moveaxis(gumbel_softmax(moveaxis(x, a, -1))).
    x = make_logits("contiguous", dtype, seed=7)
    y = gs.gumbel_softmax(x, 0.7, axis=axis, rng=gs.Philox(3, counter=9))
    xm = np.moveaxis(x, axis, -1)
    ym = gs.gumbel_softmax(xm, 0.7, rng=gs.Philox(3, counter=9))
    np.testing.assert_array_equal(y, np.moveaxis(ym, -1, axis))
    for hard in (False, True):
        yh = gs.gumbel_softmax(x, 0.7, axis=axis, hard=hard, rng=gs.Philox(3, counter=9))
        ymh = gs.gumbel_softmax(xm, 0.7, hard=hard, rng=gs.Philox(3, counter=9))
        np.testing.assert_array_equal(yh, np.moveaxis(ymh, -1, axis))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_noise_is_gumbel_noise(gs, dtype):
    # With zero logits and tau = 1 the sample is softmax(g) for g = gs.gumbel of the
    # same shape and state (here rows straddling 2**63).
    shape = (7, 13)
    x = np.zeros(shape, dtype=dtype)
    y = gs.gumbel_softmax(x, 1.0, rng=gs.Philox(55, counter=2**63 - 2))
    g = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(55, counter=2**63 - 2))
    check_forward(y, x, g, 1.0)


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("K", [1, 2, 3, 5, 16, 17, 33, 1000])
def test_row_lengths(gs, moved_noise, dtype, K, tau):
    shape = (3, K)
    x = (3.0 * np.random.default_rng(K).standard_normal(shape)).astype(dtype)
    y = gs.gumbel_softmax(x, tau, rng=gs.Philox(17, counter=K))
    check_forward(y, x, moved_noise(shape, dtype, 17, K), tau)
    if K == 1:
        np.testing.assert_allclose(y, 1.0, rtol=4 * np.finfo(dtype).eps, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_one_dimensional_input(gs, dtype):
    x = np.linspace(-3, 3, 11).astype(dtype)
    rng = gs.Philox(1, counter=5)
    y = gs.gumbel_softmax(x, 0.5, rng=rng)
    assert rng.counter == 6
    g = gs.gumbel((11,), dtype=dtype, rng=gs.Philox(1, counter=5))
    check_forward(y, x, g, 0.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_wide_logit_range(gs, moved_noise, dtype):
    # Probabilities spanning many orders of magnitude, down to subnormal / zero.
    K = 40
    x = np.linspace(-75.0, 5.0, K).astype(dtype)[None, :].repeat(5, axis=0)
    for tau in (0.1, 0.5, 1.0):
        y = gs.gumbel_softmax(x, tau, rng=gs.Philox(8, counter=1))
        check_forward(y, x, moved_noise(x.shape, dtype, 8, 1), tau)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_int_seed_is_fresh_philox(gs, dtype):
    x = make_logits("contiguous", dtype, seed=3)
    a = gs.gumbel_softmax(x, 0.5, rng=99)
    b = gs.gumbel_softmax(x, 0.5, rng=gs.Philox(99))
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------- out=
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_out_fresh_array(gs, moved_noise, dtype, axis, hard):
    x = make_logits("noncontiguous", dtype, seed=21)
    expected = gs.gumbel_softmax(x, 0.5, axis=axis, hard=hard, rng=gs.Philox(6, counter=4))
    out = np.full(SHAPE, np.nan, dtype=dtype)
    rng = gs.Philox(6, counter=4)
    y = gs.gumbel_softmax(x, 0.5, axis=axis, hard=hard, rng=rng, out=out)
    assert y is out
    assert rng.counter == 4 + n_rows(SHAPE, axis)
    np.testing.assert_array_equal(out, expected)
    g = moved_noise(SHAPE, dtype, 6, 4, axis)
    if hard:
        check_one_hot(out, x, g, axis=axis)
    else:
        check_forward(out, x, g, 0.5, axis=axis)


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_out_noncontiguous_view(gs, dtype, axis, hard):
    x = make_logits("contiguous", dtype, seed=22)
    expected = gs.gumbel_softmax(x, 1.0, axis=axis, hard=hard, rng=gs.Philox(6, counter=4))
    a, b, c = SHAPE
    for make_view in (lambda m: m[:, ::2], lambda m: m[::-1, ::2, :]):
        big = np.full((a, 2 * b, c), -5.0, dtype=dtype)
        view = make_view(big)
        y = gs.gumbel_softmax(x, 1.0, axis=axis, hard=hard, rng=gs.Philox(6, counter=4), out=view)
        assert y is view
        np.testing.assert_array_equal(view, expected)
        assert np.all(big[:, 1::2] == -5.0)  # nothing written outside the view


@pytest.mark.parametrize("layout", ["contiguous", "noncontiguous", "negative_strides", "fortran"])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_in_place(gs, moved_noise, dtype, axis, hard, layout):
    x = make_logits(layout, dtype, seed=23)
    x0 = x.copy()
    expected = gs.gumbel_softmax(x0, 0.5, axis=axis, hard=hard, rng=gs.Philox(6, counter=4))
    y = gs.gumbel_softmax(x, 0.5, axis=axis, hard=hard, rng=gs.Philox(6, counter=4), out=x)
    assert y is x
    np.testing.assert_array_equal(x, expected)
    g = moved_noise(SHAPE, dtype, 6, 4, axis)
    if hard:
        check_one_hot(x, x0, g, axis=axis)
    else:
        check_forward(x, x0, g, 0.5, axis=axis)


# ------------------------------------------------------------------------- hard
@pytest.mark.parametrize("layout", ["contiguous", "negative_strides", "broadcast_row"])
@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_hard_one_hot(gs, moved_noise, dtype, axis, tau, layout):
    x = make_logits(layout, dtype, seed=31)
    seed, p = 77, 2**63 - 5
    rng = gs.Philox(seed, counter=p)
    y = gs.gumbel_softmax(x, tau, hard=True, axis=axis, rng=rng)
    assert y.dtype == np.dtype(dtype) and y.shape == SHAPE
    assert rng.counter == p + n_rows(SHAPE, axis)
    g = moved_noise(SHAPE, dtype, seed, p, axis)
    check_one_hot(y, x, g, axis=axis)

    # return_soft: (one-hot, y_soft); y_soft is the soft sample from the same state.
    rng2 = gs.Philox(seed, counter=p)
    res = gs.gumbel_softmax(x, tau, hard=True, axis=axis, rng=rng2, return_soft=True)
    assert isinstance(res, tuple) and len(res) == 2
    y_hard, y_soft = res
    assert rng2.counter == p + n_rows(SHAPE, axis)
    np.testing.assert_array_equal(y_hard, y)
    assert y_soft.dtype == np.dtype(dtype) and y_soft.shape == SHAPE
    soft = gs.gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(seed, counter=p))
    np.testing.assert_array_equal(y_soft, soft)
    check_forward(y_soft, x, g, tau, axis=axis)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_return_soft_without_hard(gs, dtype):
    x = make_logits("contiguous", dtype, seed=5)
    res = gs.gumbel_softmax(x, 0.5, rng=gs.Philox(2), return_soft=True)
    assert isinstance(res, tuple) and len(res) == 2
    y, y_soft = res
    assert y_soft is y
    np.testing.assert_array_equal(y, gs.gumbel_softmax(x, 0.5, rng=gs.Philox(2)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_hard_return_soft_with_out(gs, moved_noise, dtype):
    x = make_logits("contiguous", dtype, seed=6)
    out = np.empty(SHAPE, dtype=dtype)
    y, y_soft = gs.gumbel_softmax(
        x, 0.5, hard=True, rng=gs.Philox(2, counter=1), out=out, return_soft=True
    )
    assert y is out
    g = moved_noise(SHAPE, dtype, 2, 1, -1)
    check_one_hot(out, x, g)
    check_forward(y_soft, x, g, 0.5)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_hard_ties_go_to_lowest_index(gs, dtype):
    # Logits so large that x + g rounds to x in the dtype: every row is an exact tie.
    big = np.float32(2.0**40) if dtype == np.float32 else 2.0**80
    x = np.full((6, 9), big, dtype=dtype)
    y = gs.gumbel_softmax(x, 1.0, hard=True, rng=gs.Philox(4))
    g = gs.gumbel((6, 9), dtype=dtype, rng=gs.Philox(4))
    assert np.all(x + g == x)  # really tied in the dtype
    expected = np.zeros((6, 9), dtype=dtype)
    expected[:, 0] = 1.0
    np.testing.assert_array_equal(y, expected)


# ------------------------------------------------------------------- integer logits
@pytest.mark.parametrize("idtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
@pytest.mark.parametrize("hard", [False, True])
def test_integer_logits_give_float64(gs, moved_noise, idtype, hard):
    r = np.random.default_rng(41)
    if idtype == np.bool_:
        x = r.integers(0, 2, size=(5, 7)).astype(np.bool_)
    else:
        x = r.integers(0, 5, size=(5, 7)).astype(idtype)
    y = gs.gumbel_softmax(x, 0.5, hard=hard, rng=gs.Philox(12, counter=3))
    assert y.dtype == np.float64
    g = moved_noise((5, 7), np.float64, 12, 3, -1)
    if hard:
        check_one_hot(y, x, g)
    else:
        check_forward(y, x.astype(np.float64), g, 0.5)
        y64 = gs.gumbel_softmax(x.astype(np.float64), 0.5, rng=gs.Philox(12, counter=3))
        np.testing.assert_array_equal(y, y64)


# ---------------------------------------------------------------------- row sums
@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_rows_sum_to_one(gs, dtype, tau):
    x = (2.0 * np.random.default_rng(2).standard_normal((64, 1000))).astype(dtype)
    y = gs.gumbel_softmax(x, tau, rng=gs.Philox(10))
    K = x.shape[-1]
    s = np.sum(y.astype(np.float64), axis=-1)
    assert np.all(np.abs(s - 1.0) <= (K / 16 + 8) * np.finfo(dtype).eps)
    assert np.all(y >= 0)


# ------------------------------------------------------------------------- torch
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_matches_torch_softmax(gs, moved_noise, dtype, axis, tau):
    torch = pytest.importorskip("torch")
    x = make_logits("contiguous", dtype, seed=51)
    y = gs.gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(123, counter=45))
    g = moved_noise(SHAPE, dtype, 123, 45, axis)
    g = np.ascontiguousarray(g)
    yt = torch.softmax((torch.from_numpy(x) + torch.from_numpy(g)) / tau, dim=axis).numpy()
    assert yt.dtype == np.dtype(dtype)
    rtol = 2.0 * fwd_rtol(x, g, tau, dtype, SHAPE[axis])
    err = np.abs(y.astype(np.float64) - yt.astype(np.float64))
    bound = rtol * np.maximum(y, yt).astype(np.float64) + tiny_atol(dtype)
    assert np.all(err <= bound), float(np.max(err - bound))
    # And both agree with the float64 reference.
    ref = softmax_ref((x.astype(np.float64) + g.astype(np.float64)) / tau, axis=axis)
    assert np.all(np.abs(y - ref) <= rtol * ref + tiny_atol(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tau", [1e-39, 1e-300, 5e-324])
def test_tiny_tau_gives_the_one_hot_limit(gs, tau, dtype):
    """For tau below 1/max(dtype), 1/tau is capped at the dtype's largest finite value,
    so the soft sample is the tau -> 0 limit (the one-hot at the argmax of x + g), never
    NaN; the backward stays finite."""
    gen = np.random.default_rng(3)
    x = gen.standard_normal((50, 7)).astype(dtype)
    y = gs.gumbel_softmax(x, tau, rng=gs.Philox(8))
    h = gs.gumbel_softmax(x, 0.5, hard=True, rng=gs.Philox(8))
    np.testing.assert_array_equal(y, h)
    b = gs.gumbel_softmax_backward(gen.standard_normal(x.shape).astype(dtype), y, tau)
    assert np.isfinite(b).all()
