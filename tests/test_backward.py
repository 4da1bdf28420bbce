"""gs.gumbel_softmax_backward: the documented formula, finite differences, torch."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import fd_gradient
from reference import backward_ref, bwd_tol, check_backward, fwd_rtol, softmax_ref

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
AXES = [0, 1, 2, -1]
SHAPE = (4, 6, 5)
LAYOUTS = ["contiguous", "noncontiguous", "negative_strides", "fortran", "broadcast"]


def _layout(arr, layout):
    """A view of ``arr``'s values with the requested memory layout (same values)."""
    if layout == "contiguous":
        return np.ascontiguousarray(arr)
    if layout == "noncontiguous":
        a, b, c = arr.shape
        big = np.zeros((a, 2 * b, c), dtype=arr.dtype)
        big[:, ::2] = arr
        return big[:, ::2]
    if layout == "negative_strides":
        return np.ascontiguousarray(arr[::-1, :, ::-1])[::-1, :, ::-1]
    if layout == "fortran":
        return np.asfortranarray(arr)
    raise ValueError(layout)


def make_pair(dtype, axis, seed, layout_gy="contiguous", layout_ys="contiguous"):
    """grad_y (normal) and y_soft (a softmax along ``axis``) in ``dtype``."""
    r = np.random.default_rng(seed)
    gy = r.standard_normal(SHAPE).astype(dtype)
    ys = softmax_ref(3.0 * r.standard_normal(SHAPE), axis=axis).astype(dtype)
    if layout_gy == "broadcast":  # stride 0 along axis 1
        gy = np.broadcast_to(gy[:, :1, :], SHAPE)
    else:
        gy = _layout(gy, layout_gy)
    ys = _layout(ys, "contiguous" if layout_ys == "broadcast" else layout_ys)
    assert gy.shape == SHAPE and ys.shape == SHAPE
    return gy, ys


# ---------------------------------------------------------------------- formula
@pytest.mark.parametrize("tau", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_matches_formula(gs, dtype, axis, layout, tau):
    gy, ys = make_pair(dtype, axis, seed=10 + AXES.index(axis), layout_gy=layout, layout_ys=layout)
    gy0, ys0 = gy.copy(), ys.copy()
    got = gs.gumbel_softmax_backward(gy, ys, tau, axis=axis)
    assert got.shape == SHAPE and got.dtype == np.dtype(dtype)
    check_backward(got, gy, ys, tau, axis=axis)
    np.testing.assert_array_equal(gy, gy0)
    np.testing.assert_array_equal(ys, ys0)
    # Same values in contiguous memory give the same bits.
    got_c = gs.gumbel_softmax_backward(
        np.ascontiguousarray(gy), np.ascontiguousarray(ys), tau, axis=axis
    )
    np.testing.assert_array_equal(got, got_c)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_mixed_layouts(gs, dtype, axis):
    gy, ys = make_pair(dtype, axis, seed=3, layout_gy="negative_strides", layout_ys="noncontiguous")
    check_backward(gs.gumbel_softmax_backward(gy, ys, 0.5, axis=axis), gy, ys, 0.5, axis=axis)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_axis_is_moveaxis(gs, dtype, axis):
    gy, ys = make_pair(dtype, axis, seed=4)
    got = gs.gumbel_softmax_backward(gy, ys, 0.7, axis=axis)
    moved = gs.gumbel_softmax_backward(np.moveaxis(gy, axis, -1), np.moveaxis(ys, axis, -1), 0.7)
    np.testing.assert_array_equal(got, np.moveaxis(moved, -1, axis))


@pytest.mark.parametrize("K", [1, 3, 16, 17, 1000])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_row_lengths(gs, dtype, K):
    r = np.random.default_rng(K)
    gy = r.standard_normal((7, K)).astype(dtype)
    ys = softmax_ref(r.standard_normal((7, K))).astype(dtype)
    got = gs.gumbel_softmax_backward(gy, ys, 0.3)
    check_backward(got, gy, ys, 0.3)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_of_real_samples(gs, dtype):
    x = (2.0 * np.random.default_rng(5).standard_normal((16, 33))).astype(dtype)
    for tau in (0.1, 0.5, 1.0, 3.0):
        _, y_soft = gs.gumbel_softmax(x, tau, hard=True, rng=gs.Philox(1), return_soft=True)
        gy = np.random.default_rng(6).standard_normal(x.shape).astype(dtype)
        check_backward(gs.gumbel_softmax_backward(gy, y_soft, tau), gy, y_soft, tau)


def test_backward_mixed_dtypes_give_float64(gs):
    gy, ys = make_pair(np.float64, -1, seed=8)
    got = gs.gumbel_softmax_backward(gy.astype(np.float32), ys, 0.5)
    assert got.dtype == np.float64
    check_backward(got, gy.astype(np.float32), ys, 0.5)
    got = gs.gumbel_softmax_backward(gy, ys.astype(np.float32), 0.5)
    assert got.dtype == np.float64
    check_backward(got, gy, ys.astype(np.float32), 0.5)


def test_backward_default_tau_and_axis(gs):
    gy, ys = make_pair(np.float64, -1, seed=9)
    np.testing.assert_array_equal(
        gs.gumbel_softmax_backward(gy, ys), gs.gumbel_softmax_backward(gy, ys, 1.0, axis=-1)
    )
    check_backward(gs.gumbel_softmax_backward(gy, ys), gy, ys, 1.0)


# ------------------------------------------------------------------------- out=
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_out(gs, dtype, axis):
    gy, ys = make_pair(dtype, axis, seed=12, layout_gy="noncontiguous")
    expected = gs.gumbel_softmax_backward(gy, ys, 0.5, axis=axis)
    # A fresh array.
    out = np.full(SHAPE, np.nan, dtype=dtype)
    res = gs.gumbel_softmax_backward(gy, ys, 0.5, axis=axis, out=out)
    assert res is out
    np.testing.assert_array_equal(out, expected)
    check_backward(out, gy, ys, 0.5, axis=axis)
    # Non-contiguous and negative-stride views of a bigger buffer.
    a, b, c = SHAPE
    for make_view in (lambda m: m[:, ::2], lambda m: m[::-1, 1::2, ::-1]):
        big = np.full((a, 2 * b, c), 9.0, dtype=dtype)
        view = make_view(big)
        res = gs.gumbel_softmax_backward(gy, ys, 0.5, axis=axis, out=view)
        assert res is view
        np.testing.assert_array_equal(view, expected)
        mask = np.zeros(big.shape, dtype=bool)
        make_view(mask)[...] = True
        assert np.all(big[~mask] == 9.0)  # nothing written outside the view


@pytest.mark.parametrize("which", ["grad_y", "y_soft"])
@pytest.mark.parametrize("layout", ["contiguous", "noncontiguous", "negative_strides"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_in_place(gs, dtype, axis, layout, which):
    gy, ys = make_pair(dtype, axis, seed=13, layout_gy=layout, layout_ys=layout)
    gy0, ys0 = gy.copy(), ys.copy()
    expected = gs.gumbel_softmax_backward(gy0, ys0, 2.0, axis=axis)
    target = gy if which == "grad_y" else ys
    res = gs.gumbel_softmax_backward(gy, ys, 2.0, axis=axis, out=target)
    assert res is target
    np.testing.assert_array_equal(target, expected)
    check_backward(target, gy0, ys0, 2.0, axis=axis)


@pytest.mark.parametrize("which", [None, "grad_y", "y_soft"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_backward_large_operands(gs, dtype, which):
    # Operands of 8 MiB and more take the row loop that prefetches the next row (a hint
    # only): the formula, and the bits of the same rows computed by small calls (which do
    # not prefetch), also in place on either input and on the last row of the call.
    rows, K = (2048, 1024) if dtype == np.float32 else (1100, 1000)
    r = np.random.default_rng(31)
    gy = r.standard_normal((rows, K)).astype(dtype)
    ys = softmax_ref(3.0 * r.standard_normal((rows, K))).astype(dtype)
    expected = np.concatenate(
        [
            gs.gumbel_softmax_backward(gy[i : i + 64], ys[i : i + 64], 0.7)
            for i in range(0, rows, 64)
        ]
    )
    gy0, ys0 = gy.copy(), ys.copy()
    out = {None: None, "grad_y": gy, "y_soft": ys}[which]
    got = gs.gumbel_softmax_backward(gy, ys, 0.7, out=out)
    np.testing.assert_array_equal(got, expected)
    check_backward(got, gy0, ys0, 0.7)


# ------------------------------------------------------------- finite differences
FD_SHAPE = (3, 4, 5)


def _assert_fd_close(fd, grad):
    scale = max(1.0, float(np.max(np.abs(grad))))
    err = np.abs(fd - grad)
    assert np.all(err <= 1e-6 * scale), (float(np.max(err)), scale)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("axis", AXES)
def test_finite_differences_soft(gs, axis, tau):
    r = np.random.default_rng(100 + AXES.index(axis))
    x = r.standard_normal(FD_SHAPE)
    w = r.standard_normal(FD_SHAPE)
    seed, p = 31337, 2**32 - 1

    def loss(z):  # the noise is held fixed: the same state every evaluation
        return float(
            np.sum(w * gs.gumbel_softmax(z, tau, axis=axis, rng=gs.Philox(seed, counter=p)))
        )

    y_soft = gs.gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(seed, counter=p))
    grad = gs.gumbel_softmax_backward(w, y_soft, tau, axis=axis)
    fd = fd_gradient(loss, x, 1e-6)
    _assert_fd_close(fd, grad)
    # The gradient of a softmax sums to zero along the axis.
    assert np.all(np.abs(np.sum(grad, axis=axis)) <= 1e-12 * np.max(np.abs(grad)) * 10)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_straight_through_equals_soft_gradient(gs, axis, tau):
    r = np.random.default_rng(200 + axis)
    x = r.standard_normal(FD_SHAPE)
    w = r.standard_normal(FD_SHAPE)
    seed, p = 4242, 2**63 - 1

    y_hard, y_soft = gs.gumbel_softmax(
        x, tau, hard=True, axis=axis, return_soft=True, rng=gs.Philox(seed, counter=p)
    )
    assert set(np.unique(y_hard)) <= {0.0, 1.0}
    grad_st = gs.gumbel_softmax_backward(w, y_soft, tau, axis=axis)

    # y_soft is the soft sample of the same state, so the straight-through gradient
    # (d/dx of y_hard - stop(y_soft) + y_soft) is the soft sample's gradient.
    y_soft_direct = gs.gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(seed, counter=p))
    np.testing.assert_array_equal(y_soft, y_soft_direct)
    np.testing.assert_array_equal(
        grad_st, gs.gumbel_softmax_backward(w, y_soft_direct, tau, axis=axis)
    )

    def soft_loss(z):
        return float(
            np.sum(
                w
                * gs.gumbel_softmax(
                    z, tau, axis=axis, hard=True, return_soft=True, rng=gs.Philox(seed, counter=p)
                )[1]
            )
        )

    _assert_fd_close(fd_gradient(soft_loss, x, 1e-6), grad_st)
    check_backward(grad_st, w, y_soft, tau, axis=axis)


# ------------------------------------------------------------------------- torch
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_matches_torch_autograd(gs, moved_noise, dtype, axis, tau):
    torch = pytest.importorskip("torch")
    r = np.random.default_rng(300 + axis)
    x = (2.0 * r.standard_normal(SHAPE)).astype(dtype)
    w = r.standard_normal(SHAPE).astype(dtype)
    seed, p = 99, 12345
    y_soft = gs.gumbel_softmax(x, tau, axis=axis, rng=gs.Philox(seed, counter=p))
    grad = gs.gumbel_softmax_backward(w, y_soft, tau, axis=axis)
    g = np.ascontiguousarray(moved_noise(SHAPE, dtype, seed, p, axis))

    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = torch.softmax((xt + torch.from_numpy(g)) / tau, dim=axis)
    torch.sum(torch.from_numpy(w) * yt).backward()
    gt = xt.grad.numpy()
    assert gt.dtype == np.dtype(dtype)

    # The forward samples differ by at most fwd_rtol (relative); propagate that
    # into the gradient formula and add the backward's own rounding.
    rtol = 2.0 * fwd_rtol(x, g, tau, dtype, SHAPE[axis])
    ys = y_soft.astype(np.float64)
    w64 = w.astype(np.float64)
    sabs = np.sum(np.abs(w64 * ys), axis=axis, keepdims=True)
    bound = 2.0 * rtol * np.abs(ys) * (np.abs(w64) + sabs) / tau + 2.0 * bwd_tol(
        w, y_soft, tau, dtype, axis
    )
    err = np.abs(grad.astype(np.float64) - gt.astype(np.float64))
    assert np.all(err <= bound), float(np.max(err - bound))
    # Both against the float64 formula on torch's own forward.
    ref = backward_ref(w, yt.detach().numpy(), tau, axis)
    assert np.all(np.abs(gt - ref) <= bound)


def test_subnormal_y_soft_small_tau(gs):
    """A row with subnormal y_soft entries and tau = 1e-3 (the example Hypothesis 6.170
    found): the product y_soft * (grad_y - dot) is subnormal and rounded before the
    scaling by 1/tau, and the result stays within check_backward's bound."""
    ys = np.array([[0.0, 5.619e-42, 0.0, 1.0], [2.0e-40, 1.0 - 2.0e-40, 0.0, 3.1e-43]], np.float32)
    gy = np.array([[0.1257, -0.1321, 0.6404, 0.1049], [-0.5357, 0.3616, 1.304, 0.947]], np.float32)
    for tau in (1e-3, 0.5):
        check_backward(gs.gumbel_softmax_backward(gy, ys, tau), gy, ys, tau)
