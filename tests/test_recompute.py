"""Memory-saving backward, the GumbelSoftmax layer and anneal_tau.

gumbel_softmax_backward(grad_y, logits=x, tau=t, rng=<state before the forward>)
recomputes y_soft and must be bitwise equal to the backward with the stored y_soft
(return_soft=True of the forward, hard or not); the Philox passed is not advanced.
"""

from __future__ import annotations

import copy
import math

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal_any_nan, fd_gradient, random_logits

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


# ---------------------------------------------------------- memory-saving backward
# name: (shape, axis, tau, mask maker or None)
CASES = {
    "2d_tau": ((9, 20), -1, 0.6, None),
    "2d_tau1": ((9, 20), -1, 1.0, None),
    "short_rows": ((33, 7), -1, 0.3, None),
    # many groups of short rows on two threads, mixed tau = 1 and other lanes
    "short_rows_threaded_per_row_tau": ((2000, 10), -1, "per_row", None),
    "short_rows_32": ((50, 32), -1, 1.0, None),
    "long_rows": ((3, 1500), -1, 2.0, None),
    "threaded_per_row_tau": ((24, 2000), -1, "per_row", "full"),
    "axis0": ((12, 5, 4), 0, 0.8, None),
    "axis1_per_row_tau": ((4, 10, 6), 1, "per_row", None),
    "per_row_tau_keepdims": ((8, 30), -1, "per_row_keepdims", None),
    "mask": ((10, 16), -1, 0.5, "full"),
    "mask_K_axis0": ((16, 10), 0, 1.0, "axis0"),
    "mask_per_row_tau": ((10, 16), -1, "per_row", "full"),
}


def _case(name, dtype):
    shape, axis, tau, mk = CASES[name]
    ax = axis % len(shape)
    batch = tuple(d for i, d in enumerate(shape) if i != ax)
    cyc = [1.0, 0.5, 1.0, 2.0, 0.05, 3.0, 1.0, 0.8]
    if tau == "per_row":
        tau = np.resize(cyc, batch).astype(np.float64)
    elif tau == "per_row_keepdims":
        tau = np.expand_dims(np.resize(cyc, batch).astype(np.float64), ax)
    mask = None
    gen = np.random.default_rng(len(name))
    if mk == "full":
        mask = gen.random(shape) < 0.6
        np.moveaxis(mask, ax, -1)[..., 0] = True
    elif mk == "axis0":
        mask = (gen.random(shape[0]) < 0.6)[:, None]
        mask[0] = True
    x = random_logits(shape, dtype, seed=len(name) + 7)
    return x, axis, tau, mask


def _rng_pair(kind, seed, p):
    """(rng for the forward, rng in the same state for the backward)."""
    if kind == "philox":
        r = gs.Philox(seed, counter=p)
        return r, copy.copy(r)
    if kind == "int":
        return seed, seed
    if kind == "generator":
        return np.random.default_rng(seed), np.random.default_rng(seed)
    raise ValueError(kind)


# ------------------------------------------- the decoupled-temperature recipe
# docs/user-guide.md, "Recipe: decoupled straight-through temperatures": the forward
# at tau_f (hard or soft), the backward's soft sample at tau_b, by recomputing with
# the forward's state.  The result must be J(softmax((x + g) / tau_b)) grad / tau_b
# with g = gs.gumbel at the forward's state, J(p) = diag(p) - p p^T, in float64.
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize(
    "tau_f, tau_b", [(1.0, 0.5), (0.1, 2.0), (0.5, "per_row")], ids=["1-0.5", "0.1-2", "rows"]
)
def test_decoupled_tau_recipe(dtype, hard, tau_f, tau_b):
    x = random_logits((12, 9), dtype, seed=3)
    grad = random_logits((12, 9), dtype, seed=4)
    if tau_b == "per_row":
        tau_b = np.resize([0.3, 1.0, 4.0], 12)
    rng = gs.Philox(17, counter=2**32 - 5)
    state = copy.copy(rng)  # the forward's state, kept for the backward
    y, y_soft = gs.gumbel_softmax(x, tau_f, hard=hard, rng=rng, return_soft=True)
    got = gs.gumbel_softmax_backward(grad, logits=x, tau=tau_b, rng=state)
    assert state.counter == 2**32 - 5  # the backward draws nothing
    g = gs.gumbel(x.shape, dtype=dtype, rng=gs.Philox(17, counter=2**32 - 5))
    tb = np.reshape(tau_b, (-1, 1)) if np.ndim(tau_b) else tau_b
    p = np.exp(
        (x.astype(np.float64) + g) / tb - np.max((x.astype(np.float64) + g) / tb, -1, keepdims=True)
    )
    p /= p.sum(-1, keepdims=True)
    gd = grad.astype(np.float64)
    jvp = p * gd - p * np.sum(p * gd, -1, keepdims=True)  # J(p) grad, J symmetric
    ref = jvp / tb
    # the backward's tolerance (bwd_tol) plus the soft sample's at tau_b (fwd_rtol)
    eps = np.finfo(dtype).eps
    vmax = np.abs(x.astype(np.float64) + g).max()
    rtol_p = 8 * eps * (1 + vmax / np.min(tau_b)) + 4 * 3 * eps
    scale = p * (np.abs(gd) + np.sum(np.abs(p * gd), -1, keepdims=True)) / tb
    assert np.all(np.abs(got - ref) <= (rtol_p + 16 * eps) * 2 * scale + 1e-30)
    # the forward was at tau_f: its soft sample differs from the backward's (tau_f != tau_b)
    assert not np.allclose(y_soft, p, atol=1e-3)
    if hard:
        assert np.array_equal(y.argmax(-1), p.argmax(-1))  # the same noise, any tau


@pytest.mark.parametrize("rng_kind", ["philox", "int", "generator"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_recompute_equals_stored(dtype, hard, case, rng_kind):
    x, axis, tau, mask = _case(case, dtype)
    x0 = x.copy()
    seed, p = 2468, 2**32 - 3
    fwd_rng, bwd_rng = _rng_pair(rng_kind, seed, p)
    kw = {} if mask is None else {"mask": mask}
    y, ys = gs.gumbel_softmax(x, tau, hard=hard, axis=axis, rng=fwd_rng, return_soft=True, **kw)
    gy = random_logits(x.shape, dtype, seed=99, scale=1.0)
    g_stored = gs.gumbel_softmax_backward(gy, ys, tau, axis=axis)
    g_re = gs.gumbel_softmax_backward(gy, logits=x, tau=tau, axis=axis, rng=bwd_rng, **kw)
    assert g_re.dtype == np.dtype(dtype) and g_re.shape == x.shape
    assert_bitwise_equal_any_nan(g_re, g_stored)
    np.testing.assert_array_equal(x, x0)
    if rng_kind == "philox":
        assert bwd_rng.counter == p  # not advanced
        # and the recompute can be repeated with the same object
        assert_bitwise_equal_any_nan(
            gs.gumbel_softmax_backward(gy, logits=x, tau=tau, axis=axis, rng=bwd_rng, **kw),
            g_stored,
        )
        assert bwd_rng.counter == p


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_recompute_out_and_strided(dtype):
    base = random_logits((6, 40), dtype, seed=3)
    x = base[::-1, ::2]
    gy = random_logits((6, 20), dtype, seed=4)
    _, ys = gs.gumbel_softmax(x, 0.7, hard=True, rng=gs.Philox(5, counter=8), return_soft=True)
    expected = gs.gumbel_softmax_backward(gy, ys, 0.7)
    out = np.full(gy.shape, np.nan, dtype=dtype)
    res = gs.gumbel_softmax_backward(gy, logits=x, tau=0.7, rng=gs.Philox(5, counter=8), out=out)
    assert res is out
    assert_bitwise_equal_any_nan(out, expected)
    g2 = gy.copy()
    res = gs.gumbel_softmax_backward(g2, logits=x, tau=0.7, rng=gs.Philox(5, counter=8), out=g2)
    assert res is g2
    assert_bitwise_equal_any_nan(g2, expected)


def test_recompute_errors():
    x = random_logits((4, 5), np.float64, seed=1)
    gy = random_logits((4, 5), np.float64, seed=2)
    ys = gs.gumbel_softmax(x, 0.5, rng=gs.Philox(1))
    rng = gs.Philox(1, counter=7)
    with pytest.raises(ValueError):  # both y_soft and logits
        gs.gumbel_softmax_backward(gy, ys, 0.5, logits=x, rng=rng)
    with pytest.raises(ValueError):  # neither
        gs.gumbel_softmax_backward(gy, tau=0.5)
    with pytest.raises(ValueError):
        gs.gumbel_softmax_backward(gy, None, 0.5, rng=rng)
    with pytest.raises(ValueError, match="rng"):  # logits without rng
        gs.gumbel_softmax_backward(gy, logits=x, tau=0.5)
    with pytest.raises(ValueError, match="rng"):
        gs.gumbel_softmax_backward(gy, logits=x, tau=0.5, rng=None)
    assert rng.counter == 7


# ------------------------------------------------------------------------- layer
def _layer_steps(dtype, hard, axis, recompute, taus, with_mask=False, shape=(6, 5, 9)):
    """Run a GumbelSoftmax layer over several steps with tau reassigned between steps;
    return the (y, grad) of every step."""
    layer = gs.GumbelSoftmax(
        tau=taus[0], hard=hard, axis=axis, rng=gs.Philox(77, counter=5), recompute=recompute
    )
    res = []
    for step, tau in enumerate(taus):
        layer.tau = tau
        x = random_logits(shape, dtype, seed=100 + step)
        gy = random_logits(shape, dtype, seed=200 + step, scale=1.0)
        if with_mask:
            m = np.random.default_rng(300 + step).random(shape) < 0.6
            np.moveaxis(m, axis % len(shape), -1)[..., 0] = True
            y = layer.forward(x, mask=m)
        else:
            m = None
            y = layer.forward(x)
        g = layer.backward(gy)
        res.append((x, gy, m, tau, y, g))
    return res


TAUS = [1.0, 0.8, 0.5, 1.0, 0.3]


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_layer_matches_functions(dtype, hard, axis, recompute, with_mask):
    steps = _layer_steps(dtype, hard, axis, recompute, TAUS, with_mask)
    ref_rng = gs.Philox(77, counter=5)
    for x, gy, m, tau, y, g in steps:
        kw = {} if m is None else {"mask": m}
        ry, rs = gs.gumbel_softmax(
            x, tau, hard=hard, axis=axis, rng=ref_rng, return_soft=True, **kw
        )
        assert_bitwise_equal_any_nan(y, ry, "forward")
        rg = gs.gumbel_softmax_backward(gy, rs, tau, axis=axis)
        assert_bitwise_equal_any_nan(g, rg, "backward")
        if m is not None:
            assert np.all(g[~m] == 0.0)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_layer_recompute_bitwise_equal(dtype, hard, with_mask):
    taus = [1.0, 0.9, 0.7, 0.5, 1.0, 0.25, 2.0]
    a = _layer_steps(dtype, hard, -1, False, taus, with_mask, shape=(20, 33))
    b = _layer_steps(dtype, hard, -1, True, taus, with_mask, shape=(20, 33))
    for i, (sa, sb) in enumerate(zip(a, b)):
        assert_bitwise_equal_any_nan(sa[4], sb[4], f"forward of step {i}")
        assert_bitwise_equal_any_nan(sa[5], sb[5], f"gradient of step {i}")


@pytest.mark.parametrize("recompute", [False, True])
def test_layer_rng_used_elsewhere_between_forward_and_backward(recompute):
    # the layer keeps what it needs (y_soft, or logits + the counter of its rows)
    rng = gs.Philox(12, counter=3)
    layer = gs.GumbelSoftmax(tau=0.6, rng=rng, recompute=recompute)
    x = random_logits((5, 8), np.float64, seed=1)
    gy = random_logits((5, 8), np.float64, seed=2)
    y = layer.forward(x)
    gs.gumbel((7, 8), rng=rng)  # the same generator used by someone else
    g = layer.backward(gy)
    ys = gs.gumbel_softmax(x, 0.6, rng=gs.Philox(12, counter=3))
    assert_bitwise_equal_any_nan(y, ys)
    assert_bitwise_equal_any_nan(g, gs.gumbel_softmax_backward(gy, ys, 0.6))


class _Interleaved(gs.Philox):
    """A Philox that another thread draws 4 rows from whenever the layer copies it or
    reserves from it: a deterministic stand-in for a thread scheduled in between."""

    def _other_thread(self):
        gs.Philox.reserve(self, 4)

    def __copy__(self):
        state = gs.Philox(self.seed, counter=self.counter)
        self._other_thread()
        return state

    def reserve(self, n):
        self._other_thread()
        return gs.Philox.reserve(self, n)


def test_layer_recompute_with_a_philox_shared_by_threads():
    # The recompute forward reserves its rows and draws them from a private Philox, so
    # that rows another thread takes between the copy of the state and the draw cannot
    # make the backward recompute another sample (it copied the state, then drew from
    # the shared Philox: a wrong gradient, without an error).
    rng = _Interleaved(12, counter=3)
    layer = gs.GumbelSoftmax(tau=0.6, rng=rng, recompute=True)
    x = random_logits((5, 8), np.float64, seed=1)
    gy = random_logits((5, 8), np.float64, seed=2)
    y = layer.forward(x)
    g = layer.backward(gy)
    start = 3 + 4  # the other thread's rows came first
    ys = gs.gumbel_softmax(x, 0.6, rng=gs.Philox(12, counter=start))
    assert_bitwise_equal_any_nan(y, ys)
    assert_bitwise_equal_any_nan(g, gs.gumbel_softmax_backward(gy, ys, 0.6))
    assert rng.counter == start + 5


def test_layer_recompute_failed_forward_gives_its_rows_back():
    rng = gs.Philox(12, counter=3)
    layer = gs.GumbelSoftmax(tau=0.6, rng=rng, recompute=True)
    with pytest.raises(ValueError, match="mask"):
        layer.forward(np.zeros((5, 8)), mask=np.ones((5, 7), bool))
    assert rng.counter == 3


@pytest.mark.parametrize("recompute", [False, True])
def test_layer_backward_before_forward(recompute):
    layer = gs.GumbelSoftmax(tau=0.5, rng=gs.Philox(1), recompute=recompute)
    with pytest.raises(RuntimeError):
        layer.backward(np.ones((2, 3)))


def test_layer_defaults():
    layer = gs.GumbelSoftmax()
    assert layer.tau == 1.0
    x = random_logits((3, 4), np.float64, seed=1)
    y = layer.forward(x)
    assert y.shape == x.shape
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-14)
    layer.tau = 0.5
    assert layer.tau == 0.5


@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.0])
def test_layer_finite_differences(tau, axis, recompute):
    """Central differences (h = 1e-6, float64) of a scalar loss sum(w * y) of the soft
    layer, the noise held fixed (a fresh layer on the same Philox state each time);
    allowed 1e-6 * max(1, |grad|) as in test_backward.py."""
    shape = (3, 4, 5)
    gen = np.random.default_rng(40 + axis)
    x = gen.standard_normal(shape)
    w = gen.standard_normal(shape)

    def layer():
        return gs.GumbelSoftmax(
            tau=tau, axis=axis, rng=gs.Philox(31, counter=2**63), recompute=recompute
        )

    def loss(z):
        return float(np.sum(w * layer().forward(z)))

    lay = layer()
    lay.forward(x)
    grad = lay.backward(w)
    fd = fd_gradient(loss, x, 1e-6)
    scale = max(1.0, float(np.max(np.abs(grad))))
    assert np.all(np.abs(fd - grad) <= 1e-6 * scale), float(np.max(np.abs(fd - grad)))


# --------------------------------------------------------------------- anneal_tau
def anneal_ref(step, tau0=1.0, rate=1e-4, min_tau=0.5, every=1):
    return max(min_tau, tau0 * math.exp(-rate * ((step // every) * every)))


ANNEAL_PARAMS = [
    {},
    {"tau0": 1.0, "rate": 1e-5, "min_tau": 0.5, "every": 1000},
    {"tau0": 1.0, "rate": 1e-4, "min_tau": 0.5, "every": 500},
    {"tau0": 5.0, "rate": 3e-3, "min_tau": 0.1, "every": 7},
    {"tau0": 2.0, "rate": 0.0, "min_tau": 0.5},
]


@pytest.mark.parametrize("params", ANNEAL_PARAMS, ids=str)
def test_anneal_tau_scalar(params):
    for step in [0, 1, 6, 7, 499, 500, 999, 1000, 1001, 4321, 6931, 6932, 10**4, 10**5, 10**7]:
        got = gs.anneal_tau(step, **params)
        assert np.ndim(got) == 0
        exp = anneal_ref(step, **params)
        assert math.isclose(float(got), exp, rel_tol=1e-14, abs_tol=0.0), (step, got, exp)


@pytest.mark.parametrize("params", ANNEAL_PARAMS, ids=str)
def test_anneal_tau_array(params):
    steps = np.concatenate([np.arange(0, 3000, 37), [10**4, 10**6], np.arange(495, 506)])
    got = gs.anneal_tau(steps, **params)
    assert isinstance(got, np.ndarray) and got.shape == steps.shape
    exp = np.array([anneal_ref(int(s), **params) for s in steps])
    np.testing.assert_allclose(got, exp, rtol=1e-14, atol=0)
    # elementwise the same as the scalar calls
    for s, g in zip(steps[::10], got[::10]):
        assert math.isclose(float(gs.anneal_tau(int(s), **params)), float(g), rel_tol=1e-15)
    got2 = gs.anneal_tau(steps.reshape(-1, 1), **params)
    assert got2.shape == (steps.size, 1)


def test_anneal_tau_floor_and_start():
    assert float(gs.anneal_tau(0)) == 1.0
    assert float(gs.anneal_tau(0, tau0=3.0, min_tau=0.5)) == 3.0
    # exp(-1e-4 * 6931) > 1/2 > exp(-1e-4 * 6932): the floor takes over between them
    assert float(gs.anneal_tau(6931)) > 0.5
    assert float(gs.anneal_tau(6932)) == 0.5
    for s in (10**4, 10**6, 10**9):
        assert float(gs.anneal_tau(s)) == 0.5
        assert float(gs.anneal_tau(s, min_tau=0.1, rate=1e-3)) == 0.1
    # tau0 below the floor: the floor
    assert float(gs.anneal_tau(0, tau0=0.2, min_tau=0.5)) == 0.5
    arr = gs.anneal_tau(np.array([0, 10**6]))
    np.testing.assert_array_equal(arr, [1.0, 0.5])


def test_anneal_tau_every_quantises():
    every = 1000
    steps = np.arange(0, 5 * every)
    got = np.asarray(gs.anneal_tau(steps, rate=1e-4, min_tau=1e-3, every=every), dtype=np.float64)
    blocks = got.reshape(5, every)
    # constant within each block of `every` steps ...
    assert np.all(blocks == blocks[:, :1])
    # ... equal to the value at the block's first step, and decreasing between blocks
    for k in range(5):
        assert math.isclose(blocks[k, 0], math.exp(-1e-4 * k * every), rel_tol=1e-14)
    assert np.all(np.diff(blocks[:, 0]) < 0)
    # every=1 is the plain schedule
    assert float(gs.anneal_tau(999, every=1)) < float(gs.anneal_tau(999, every=1000))
    assert float(gs.anneal_tau(999, every=1000)) == 1.0


def test_anneal_tau_any_int_step_and_every():
    assert gs.anneal_tau(10**20) == 0.5
    assert gs.anneal_tau(10**20, min_tau=1e-300, rate=0.0) == 1.0
    assert gs.anneal_tau(5, every=2**64) == 1.0
    np.testing.assert_array_equal(gs.anneal_tau(np.array([0, 10**6]), every=2**64), [1.0, 1.0])
    assert gs.anneal_tau(np.int64(1000), rate=1e-4) == pytest.approx(math.exp(-0.1))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32])
def test_anneal_tau_small_int_steps_with_a_larger_every(dtype):
    """Steps of a small integer dtype with an `every` past its range (or near it): the
    array form equals the scalar one (it raised OverflowError computing in the step's
    dtype: int8 steps with every=1000)."""
    top = int(np.iinfo(dtype).max)
    steps = np.array([0, 1, top // 2, top - 1, top], dtype)
    for every in (1, 3, top - 1, top, top + 1, 1000, 2**40):
        got = gs.anneal_tau(steps, rate=1e-3, every=every)
        want = [gs.anneal_tau(int(s), rate=1e-3, every=every) for s in steps]
        np.testing.assert_array_equal(got, want)


def test_anneal_tau_masked_step_is_rejected():
    with pytest.raises(TypeError, match="step is a numpy.ma.MaskedArray"):
        gs.anneal_tau(np.ma.masked_array([5, 10**6], mask=[False, True]))


def test_anneal_tau_array_equals_scalar_at_the_integer_limits():
    # uint64 steps with every beyond int64: the array form took "every > 2**63 - 1" for
    # "larger than any step" and returned tau0 (1.0 for step 2**64 - 1 and every 2**63 + 1,
    # where t = 2**63 + 1 and the scalar form gives the floor 0.5).  A rate * t past
    # float64's range is the floor in both forms, without a floating-point warning.
    cases = [
        (np.uint64, [0, 5, 2**63, 2**63 + 1, 2**64 - 1], 2**63 + 1),
        (np.uint64, [2**64 - 1], 2**64 - 1),
        (np.uint64, [2**64 - 1], 2**64),
        (np.int64, [0, 2**63 - 1], 2**63),
        (np.int64, [10**10], 3),
    ]
    for dtype, steps, every in cases:
        arr = gs.anneal_tau(np.array(steps, dtype), every=every)
        scalar = [gs.anneal_tau(s, every=every) for s in steps]
        np.testing.assert_array_equal(arr, scalar)
    with np.errstate(all="raise"):
        assert gs.anneal_tau(np.array([10**10]), rate=1e300).tolist() == [0.5]
    with pytest.raises(TypeError, match="every"):  # a bool is no step count (as for samples)
        gs.anneal_tau(5, every=True)
