"""gumbel_softmax.jax's top_k, relaxed_bernoulli and relaxed_top_k (issues 16 and 17).

Their kernels run in jax.pure_callback, so the samples are compared bit for bit with the
NumPy API on the key's seed (``gs.Philox(gsj.seed_of(key))``), and the gradients of
``sum(w * y)`` bit for bit with the NumPy backward on the same draw (the cotangent that
reaches the custom_vjp is exactly ``w``).  The gradients are also checked against
central finite differences of the NumPy forward on the same fixed draw, in float64
(``jax.enable_x64``): for the logits (the NumPy backward's own formula, through the
custom_vjp) and for a traced tau (our formulas: ``-sum(grad_logits * logit(y))`` for
relaxed_bernoulli, reverse mode of the relaxed top-k recursion in JAX ops for
relaxed_top_k).  Tolerances: the FD step is 1e-6 (truncation error O(h^2) ~ 1e-12
relative for these smooth functions of moderate curvature) and float64 rounding of the
difference quotient is ~ eps / h ~ 2e-10 relative, so rtol 1e-6 leaves a wide margin.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_logits, same_bits

jax = pytest.importorskip("jax", reason="JAX is not installed: pip install 'gumbel-softmax[jax]'")
import gumbel_softmax as gs  # noqa: E402
import gumbel_softmax.jax as gsj  # noqa: E402
import jax.numpy as jnp  # noqa: E402


@pytest.fixture
def x64():
    """float64 in JAX for one test; the previous setting comes back afterwards."""
    with jax.enable_x64(True):
        yield


def _normal(shape, dtype=np.float32, seed=0):
    return random_logits(shape, dtype, seed, scale=1.0)


def _fd(f, x, eps=1e-6):
    """Central finite differences of the scalar function f at x (float64 numpy)."""
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def _khot(idx, K):
    """The k-hot (float64) of top_k indices along the last axis (-1 slots left out)."""
    out = np.zeros(idx.shape[:-1] + (K + 1,))
    np.put_along_axis(out, np.where(idx < 0, K, idx), 1.0, axis=-1)
    return out[..., :K]


def _keys(n, seed=0):
    return jax.random.split(jax.random.PRNGKey(seed), n)


# ---------------------------------------------------------------------------------------
# top_k


@pytest.mark.parametrize("shape,axis", [((7,), -1), ((5, 9), -1), ((5, 9), 0), ((3, 4, 6), 1)])
@pytest.mark.parametrize("x64_on", [False, True])
def test_top_k_bitwise_the_numpy_api(shape, axis, x64_on):
    with jax.enable_x64(x64_on):
        x = _normal(shape, np.float64 if x64_on else np.float32, seed=len(shape))
        n = shape[axis]
        index = np.int64 if x64_on else np.int32
        for k in (0, 1, 3, n):
            want = gs.top_k(x, k, axis=axis, rng=gs.Philox(21))
            got = gsj.top_k(21, x, k, axis)
            assert got.dtype == index and np.array_equal(np.asarray(got), want)
            f = jax.jit(gsj.top_k, static_argnames=("k", "axis"))
            assert np.array_equal(np.asarray(f(jax.random.PRNGKey(21), x, k=k, axis=axis)), want)
        # the first index is categorical's from the same key
        first = np.take(np.asarray(gsj.top_k(21, x, 1, axis)), 0, axis=axis)
        assert np.array_equal(first, np.asarray(gsj.categorical(21, x, axis)))


def test_top_k_mask_minus_one_slots_and_vmap():
    x = _normal((4, 6))
    mask = np.ones((4, 6), bool)
    mask[0, :4] = False  # two categories left in row 0: slots 3 and 4 are -1
    got = jax.jit(lambda k, x: gsj.top_k(k, x, 4, mask=mask))(jax.random.key(5), x)
    want = gs.top_k(x, 4, mask=mask, rng=gs.Philox(5))
    assert np.array_equal(np.asarray(got), want) and (want[0, 2:] == -1).all()
    keys = _keys(3, 1)
    v = jax.jit(jax.vmap(lambda k: gsj.top_k(k, x, 2, mask=mask)))(keys)
    for i in range(3):
        want = gs.top_k(x, 2, mask=mask, rng=gs.Philox(gsj.seed_of(keys[i])))
        assert np.array_equal(np.asarray(v[i]), want)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_top_k_half_dtypes(dtype):
    x = jnp.asarray(_normal((5, 7)), dtype)
    want = gs.top_k(np.asarray(x), 3, rng=gs.Philox(8))
    assert np.array_equal(np.asarray(jax.jit(lambda x: gsj.top_k(8, x, 3))(x)), want)


def test_top_k_has_no_gradient_and_errors():
    x = _normal((3, 5))
    g = jax.grad(lambda x: gsj.top_k(0, x, 2).astype(x.dtype).sum())(x)  # indices: none
    assert np.array_equal(np.asarray(g), np.zeros_like(x))
    with pytest.raises(ValueError, match="k must be in"):
        gsj.top_k(0, x, 6)
    with pytest.raises(ValueError, match="k must be in"):
        gsj.top_k(0, x, -1)
    with pytest.raises(TypeError, match="k must be an integer"):
        gsj.top_k(0, x, 2.0)
    with pytest.raises(TypeError, match="k must be a Python"):
        jax.jit(lambda k: gsj.top_k(0, x, k))(2)
    with pytest.raises(ValueError, match="axis 2"):
        gsj.top_k(0, x, 1, axis=2)
    with pytest.raises(TypeError, match="logits"):
        gsj.top_k(0, np.ones(3, np.complex64), 1)
    with pytest.raises(ValueError, match="key_or_seed"):
        gsj.top_k(-1, x, 1)
    with pytest.raises(TypeError, match="mask"):
        gsj.top_k(0, x, 1, mask=np.ones((3, 5)))


# ---------------------------------------------------------------------------------------
# relaxed_bernoulli


def _rb(x, tau, seed, hard=False, return_soft=False):
    return gs.relaxed_bernoulli(
        np.asarray(x), tau, hard=hard, rng=gs.Philox(seed), return_soft=return_soft
    )


def _rb_grad(w, x, tau, seed, hard=False):
    _, y_soft = _rb(x, tau, seed, hard, return_soft=True)
    return gs.relaxed_bernoulli_backward(np.asarray(w), y_soft, tau)


@pytest.mark.parametrize("shape", [(), (7,), (5, 9), (2, 3, 33)])
@pytest.mark.parametrize("hard", [False, True])
def test_relaxed_bernoulli_forward_and_gradient_bitwise(shape, hard):
    x, w = _normal(shape, seed=1), _normal(shape, seed=2)
    want = _rb(x, 0.6, 13, hard)
    assert same_bits(gsj.relaxed_bernoulli(13, x, 0.6, hard), want)
    f = jax.jit(gsj.relaxed_bernoulli, static_argnames="hard")
    assert same_bits(f(jax.random.key(13), x, 0.6, hard=hard), _rb(x, np.float32(0.6), 13, hard))

    def loss(x):
        return (w * gsj.relaxed_bernoulli(13, x, 0.6, hard)).sum()

    ref = _rb_grad(w, x, 0.6, 13, hard)
    assert same_bits(jax.grad(loss)(x), ref)
    assert same_bits(jax.jit(jax.grad(loss))(x), ref)
    if hard:  # straight-through: the soft sample's gradient, the same draw
        assert same_bits(ref, _rb_grad(w, x, 0.6, 13, False))


def test_relaxed_bernoulli_elementwise_tau_concrete_and_traced():
    x = _normal((4, 5))
    taus = np.linspace(0.3, 2.0, 5)  # one per column, broadcast over the rows
    want = _rb(x, taus, 6)
    assert same_bits(gsj.relaxed_bernoulli(6, x, taus), want)
    t32 = taus.astype(np.float32)
    got = jax.jit(lambda t: gsj.relaxed_bernoulli(6, x, t))(jnp.asarray(t32))
    assert same_bits(got, _rb(x, np.broadcast_to(t32.astype(np.float64), x.shape), 6))
    with pytest.raises(ValueError, match="tau"):
        gsj.relaxed_bernoulli(6, x, np.ones(4))
    with pytest.raises(ValueError, match="tau"):
        jax.jit(lambda t: gsj.relaxed_bernoulli(6, x, t))(jnp.ones(4))
    with pytest.raises(ValueError, match="tau must be positive"):
        gsj.relaxed_bernoulli(6, x, -taus)


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_relaxed_bernoulli_gradients_match_finite_differences(x64, tau):
    x, w = _normal((3, 4), np.float64, 5), _normal((3, 4), np.float64, 6)

    def loss(x, t):
        return (w * gsj.relaxed_bernoulli(11, x, t)).sum()

    def num(x, t):  # the same fixed draw, through the NumPy API
        return float((w * _rb(x, t, 11)).sum())

    gx, gt = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(tau))
    assert gx.dtype == jnp.float64 and gt.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(gx), _fd(lambda v: num(v, tau), x), rtol=1e-6, atol=1e-9)
    fd_t = _fd(lambda t: num(x, float(t[0])), np.array([tau]))[0]
    np.testing.assert_allclose(float(gt), fd_t, rtol=1e-6, atol=1e-9)
    # a tau per column: its gradient sums over the rows it broadcasts across
    taus = np.array([0.4, 1.0, 2.0, 0.7])
    gt = jax.grad(lambda t: loss(jnp.asarray(x), t))(jnp.asarray(taus))
    np.testing.assert_allclose(np.asarray(gt), _fd(lambda t: num(x, t), taus), rtol=1e-6, atol=1e-9)
    # hard: the straight-through gradients are the soft ones of the same draw
    gh = jax.grad(lambda x, t: (w * gsj.relaxed_bernoulli(11, x, t, True)).sum(), argnums=(0, 1))
    hx, ht = gh(jnp.asarray(x), jnp.asarray(tau))
    sx, st = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(tau))
    assert same_bits(hx, sx) and same_bits(ht, st)


def test_relaxed_bernoulli_saturated_tau_gradient_is_finite(x64):
    """Where y_soft rounds to 0 or 1 the logit is infinite: it adds 0, not NaN."""
    x = np.array([-800.0, 0.0, 800.0])
    gt = jax.grad(lambda t: gsj.relaxed_bernoulli(1, x, t).sum())(jnp.asarray(0.5))
    assert np.isfinite(float(gt))


def test_relaxed_bernoulli_vmap_over_keys_and_taus():
    x, w = _normal((3, 5)), _normal((3, 5), seed=1)
    keys = _keys(4, 2)
    taus = jnp.array([0.5, 1.0, 2.0, 0.7])
    y = jax.jit(jax.vmap(lambda k, t: gsj.relaxed_bernoulli(k, x, t, True)))(keys, taus)
    for i in range(4):
        assert same_bits(y[i], _rb(x, float(taus[i]), gsj.seed_of(keys[i]), True))

    def loss(x, k):
        return (w * gsj.relaxed_bernoulli(k, x, 0.5)).sum()

    g = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(x, keys)
    for i in range(4):
        assert same_bits(g[i], _rb_grad(w, x, 0.5, gsj.seed_of(keys[i])))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_relaxed_bernoulli_half_dtypes(dtype):
    x = jnp.asarray(_normal((5, 7)), dtype)
    w = jnp.asarray(_normal((5, 7), seed=1), dtype)
    y = jax.jit(lambda x: gsj.relaxed_bernoulli(3, x, 0.5, True))(x)
    assert y.dtype == dtype and same_bits(y, _rb(x, 0.5, 3, True))

    def loss(x, t):
        return (w * gsj.relaxed_bernoulli(3, x, t, True)).sum()

    gx, gt = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, jnp.asarray(0.5, dtype))
    assert gx.dtype == dtype and gt.dtype == dtype
    assert same_bits(gx, _rb_grad(w, x, 0.5, 3, True)) and np.isfinite(float(gt))


def test_relaxed_bernoulli_errors():
    x = _normal((2, 3))
    for tau, exc in [(0.0, ValueError), (np.inf, ValueError), ("a", TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="tau"):
            gsj.relaxed_bernoulli(0, x, tau)
    with pytest.raises(TypeError, match="hard"):
        jax.jit(lambda h: gsj.relaxed_bernoulli(0, x, hard=h))(True)
    with pytest.raises(TypeError, match="hard"):
        gsj.relaxed_bernoulli(0, x, hard="yes")
    with pytest.raises(TypeError, match="logits"):
        gsj.relaxed_bernoulli(0, np.ones(3, np.complex64))
    with pytest.raises(TypeError, match="logits"):
        gsj.relaxed_bernoulli(0, "a")
    with pytest.raises(TypeError, match="key_or_seed"):
        gsj.relaxed_bernoulli(0.5, x)
    f = jax.jit(lambda t: gsj.relaxed_bernoulli(0, x, t))
    with pytest.raises(jax.errors.JaxRuntimeError, match="tau must be positive and finite"):
        f(-1.0).block_until_ready()


# ---------------------------------------------------------------------------------------
# relaxed_top_k


def _rtk(x, k, tau, seed, hard=False, axis=-1, mask=None):
    return gs.relaxed_top_k(
        np.asarray(x), k, tau, hard=hard, axis=axis, mask=mask, rng=gs.Philox(seed)
    )


def _rtk_grad(w, x, k, tau, seed, axis=-1, mask=None):
    return gs.relaxed_top_k_backward(
        np.asarray(w), np.asarray(x), k, tau, axis=axis, mask=mask, rng=gs.Philox(seed)
    )


@pytest.mark.parametrize("shape,axis", [((7,), -1), ((5, 9), -1), ((5, 9), 0), ((3, 4, 6), 1)])
@pytest.mark.parametrize("hard", [False, True])
def test_relaxed_top_k_forward_and_gradient_bitwise(shape, axis, hard):
    x, w = _normal(shape, seed=1), _normal(shape, seed=2)
    k = 3
    want = _rtk(x, k, 0.6, 17, hard, axis)
    assert same_bits(gsj.relaxed_top_k(17, x, k, 0.6, hard, axis), want)
    f = jax.jit(gsj.relaxed_top_k, static_argnames=("k", "hard", "axis"))
    got = f(jax.random.PRNGKey(17), x, k=k, tau=0.6, hard=hard, axis=axis)
    assert same_bits(got, _rtk(x, k, np.float32(0.6), 17, hard, axis))
    if hard:  # the k-hot of top_k from the same key
        idx = np.moveaxis(np.asarray(gsj.top_k(17, x, k, axis)), axis, -1)
        assert np.array_equal(np.moveaxis(np.asarray(want), axis, -1), _khot(idx, shape[axis]))

    def loss(x):
        return (w * gsj.relaxed_top_k(17, x, k, 0.6, hard, axis)).sum()

    ref = _rtk_grad(w, x, k, 0.6, 17, axis)  # for hard too: straight-through
    assert same_bits(jax.grad(loss)(x), ref)
    assert same_bits(jax.jit(jax.grad(loss))(x), ref)


def test_relaxed_top_k_per_row_tau_and_mask():
    x, w = _normal((4, 6)), _normal((4, 6), seed=1)
    taus = np.array([0.3, 0.8, 1.0, 2.0])
    mask = np.ones((4, 6), bool)
    mask[1, 2] = mask[3, :2] = False
    want = _rtk(x, 2, taus, 4, mask=mask)
    assert same_bits(gsj.relaxed_top_k(4, x, 2, taus, mask=mask), want)
    assert (np.asarray(want)[~mask] == 0).all()
    t32 = jnp.asarray(taus, jnp.float32)
    got = jax.jit(lambda t: gsj.relaxed_top_k(4, x, 2, t, mask=mask))(t32)
    assert same_bits(got, _rtk(x, 2, np.asarray(t32, np.float64), 4, mask=mask))
    g = jax.grad(lambda x: (w * gsj.relaxed_top_k(4, x, 2, taus, True, mask=mask)).sum())(x)
    assert same_bits(g, _rtk_grad(w, x, 2, taus, 4, mask=mask))
    assert (np.asarray(g)[~mask] == 0).all()


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.5])
def test_relaxed_top_k_gradients_match_finite_differences(x64, axis, tau):
    shape, k = (3, 5), 3
    x, w = _normal(shape, np.float64, 5), _normal(shape, np.float64, 6)

    def loss(x, t):
        return (w * gsj.relaxed_top_k(11, x, k, t, axis=axis)).sum()

    def num(x, t):  # the same fixed draw, through the NumPy API
        return float((w * _rtk(x, k, t, 11, axis=axis)).sum())

    gx, gt = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(tau))
    assert gx.dtype == jnp.float64 and gt.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(gx), _fd(lambda v: num(v, tau), x), rtol=1e-6, atol=1e-9)
    fd_t = _fd(lambda t: num(x, float(t[0])), np.array([tau]))[0]
    np.testing.assert_allclose(float(gt), fd_t, rtol=1e-6, atol=1e-9)
    # hard: the same gradients (straight-through)
    gh = jax.grad(
        lambda x, t: (w * gsj.relaxed_top_k(11, x, k, t, True, axis)).sum(), argnums=(0, 1)
    )(jnp.asarray(x), jnp.asarray(tau))
    assert same_bits(gh[0], gx) and same_bits(gh[1], gt)


def test_relaxed_top_k_per_row_tau_gradient_with_masked_logits(x64):
    x, w = _normal((3, 6), np.float64, 7), _normal((3, 6), np.float64, 8)
    x[0, 1] = x[2, 4] = -np.inf
    taus = np.array([0.4, 1.0, 2.0])

    def loss(t):
        return (w * gsj.relaxed_top_k(2, x, 4, t)).sum()

    gt = jax.grad(loss)(jnp.asarray(taus))
    fd = _fd(lambda t: float((w * _rtk(x, 4, t, 2)).sum()), taus)
    np.testing.assert_allclose(np.asarray(gt), fd, rtol=1e-6, atol=1e-9)
    # a (1,) tau broadcast over the rows: the gradient is the sum
    g1 = jax.grad(loss)(jnp.asarray([0.7]))
    fd1 = _fd(lambda t: float((w * _rtk(x, 4, np.broadcast_to(t, 3), 2)).sum()), [0.7])
    np.testing.assert_allclose(np.asarray(g1), fd1, rtol=1e-6, atol=1e-9)


def test_relaxed_top_k_vmap_over_keys_forward_and_gradient():
    x, w = _normal((3, 6)), _normal((3, 6), seed=1)
    keys = _keys(4, 3)
    y = jax.jit(jax.vmap(lambda k: gsj.relaxed_top_k(k, x, 2, 0.5)))(keys)

    def loss(x, k, t):
        return (w * gsj.relaxed_top_k(k, x, 2, t, True)).sum()

    taus = jnp.array([0.5, 1.0, 2.0, 0.8])
    gx, gt = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 2)), in_axes=(None, 0, 0)))(x, keys, taus)
    for i in range(4):
        seed = gsj.seed_of(keys[i])
        assert same_bits(y[i], _rtk(x, 2, 0.5, seed))
        assert same_bits(gx[i], _rtk_grad(w, x, 2, float(taus[i]), seed))
        gxi, gti = jax.grad(loss, argnums=(0, 2))(x, keys[i], taus[i])
        assert same_bits(gx[i], gxi)
        # the tau gradient is JAX ops (float32 here): jit and vmap may reorder its sums
        np.testing.assert_allclose(float(gt[i]), float(gti), rtol=1e-4, atol=1e-6)


def test_traced_int_seeds_under_jit_and_vmap():
    """A seed passed through jit (a traced int32) and a vmap over seeds: the backward's
    callbacks get the traced seed as their residual."""
    x, w = _normal((3, 6)), _normal((3, 6), seed=1)
    seeds = jnp.arange(3)

    def loss(x, s):
        return (w * gsj.relaxed_top_k(s, x, 2, 0.7)).sum() + (
            w * gsj.relaxed_bernoulli(s, x, 0.7, True)
        ).sum()

    g = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(x, seeds)
    idx = jax.jit(jax.vmap(lambda s: gsj.top_k(s, x, 2)))(seeds)
    for i in range(3):
        assert same_bits(g[i], jax.jit(jax.grad(loss))(x, i))
        want = _rtk_grad(w, x, 2, 0.7, i) + _rb_grad(w, x, 0.7, i, True)
        assert same_bits(g[i], want)
        assert np.array_equal(np.asarray(idx[i]), gs.top_k(x, 2, rng=gs.Philox(i)))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_relaxed_top_k_half_dtypes(dtype):
    x = jnp.asarray(_normal((5, 7)), dtype)
    w = jnp.asarray(_normal((5, 7), seed=1), dtype)
    y = jax.jit(lambda x: gsj.relaxed_top_k(3, x, 2, 0.5))(x)
    assert y.dtype == dtype and same_bits(y, _rtk(x, 2, 0.5, 3))

    def loss(x, t):
        return (w * gsj.relaxed_top_k(3, x, 2, t, True)).sum()

    gx, gt = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, jnp.asarray(0.5, dtype))
    assert gx.dtype == dtype and gt.dtype == dtype
    assert same_bits(gx, _rtk_grad(w, x, 2, 0.5, 3)) and np.isfinite(float(gt))


def test_x64_callbacks_on_xla_threads():
    """x64 on: float64 operands and results, int64 indices, also when XLA runs the
    callbacks on its own threads (one long row)."""
    with jax.enable_x64(True):
        x = _normal((1, 70000), np.float64)
        w = _normal((1, 70000), np.float64, seed=1)
        keys = _keys(2, 2)
        taus = jnp.asarray([0.6, 1.3])
        y = jax.jit(jax.vmap(lambda k, t: gsj.relaxed_top_k(k, x, 5, t)))(keys, taus)
        idx = jax.jit(jax.vmap(lambda k: gsj.top_k(k, x, 5)))(keys)
        b = jax.jit(jax.vmap(lambda k, t: gsj.relaxed_bernoulli(k, x, t)))(keys, taus)
        assert y.dtype == b.dtype == np.float64 and idx.dtype == np.int64
        for i in range(2):
            seed, t = gsj.seed_of(keys[i]), float(taus[i])
            assert same_bits(y[i], _rtk(x, 5, t, seed))
            assert np.array_equal(np.asarray(idx[i]), gs.top_k(x, 5, rng=gs.Philox(seed)))
            assert same_bits(b[i], _rb(x, t, seed))
        g = jax.jit(jax.grad(lambda x: (w * gsj.relaxed_top_k(3, x, 5, 1.2)).sum()))(x)
        assert g.dtype == np.float64 and same_bits(g, _rtk_grad(w, x, 5, 1.2, 3))


def test_relaxed_top_k_errors():
    x = _normal((2, 4))
    with pytest.raises(ValueError, match=r"k must be in \[1, 4\]"):
        gsj.relaxed_top_k(0, x, 0)
    with pytest.raises(ValueError, match="k must be in"):
        gsj.relaxed_top_k(0, x, 5)
    with pytest.raises(TypeError, match="k must be an integer"):
        gsj.relaxed_top_k(0, x, True)
    with pytest.raises(TypeError, match="k must be a Python"):
        jax.jit(lambda k: gsj.relaxed_top_k(0, x, k))(2)
    with pytest.raises(TypeError, match="hard"):
        jax.jit(lambda h: gsj.relaxed_top_k(0, x, 2, hard=h))(True)
    for tau, exc in [(0.0, ValueError), (-1.0, ValueError), ("a", TypeError)]:
        with pytest.raises(exc, match="tau"):
            gsj.relaxed_top_k(0, x, 2, tau)
    with pytest.raises(ValueError, match="tau"):
        gsj.relaxed_top_k(0, x, 2, np.ones(3))  # batch shape (2,)
    with pytest.raises(ValueError, match="axis 2"):
        gsj.relaxed_top_k(0, x, 2, axis=2)
    with pytest.raises(ValueError, match="0-d"):
        gsj.relaxed_top_k(0, np.float32(1.0), 1)
    with pytest.raises(ValueError, match="mask"):
        gsj.relaxed_top_k(0, x, 2, mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="key_or_seed"):
        gsj.relaxed_top_k(jnp.zeros(4, jnp.uint32), x, 2)
    f = jax.jit(lambda s: gsj.relaxed_top_k(s, x, 2))
    with pytest.raises(jax.errors.JaxRuntimeError, match="key_or_seed"):
        f(-3).block_until_ready()


def test_eager_calls_share_their_host_function(monkeypatch):
    """JAX compiles and keeps an executable per callable given to pure_callback: equal
    eager calls must pass the very same host function (a new functools.partial each
    call kept about 1.4 MB per call: 2.8 GB after 2000 eager top_k calls)."""
    from gumbel_softmax import _jax_host

    seen = []
    real = jax.pure_callback

    def spy(cb, *args, **kwargs):
        seen.append(cb)
        return real(cb, *args, **kwargs)

    monkeypatch.setattr(_jax_host.jax, "pure_callback", spy)
    monkeypatch.setattr(gsj, "_FFI_TARGETS", None)  # gumbel_softmax through callbacks too
    x = jnp.asarray(random_logits((4, 5), np.float32, 1))
    calls = {
        "top_k": lambda t: gsj.top_k(3, x, 2),
        "relaxed_top_k": lambda t: gsj.relaxed_top_k(3, x, 2, t),
        "relaxed_bernoulli": lambda t: gsj.relaxed_bernoulli(3, x, 0.5),
        "gumbel_softmax": lambda t: gsj.gumbel_softmax(3, x, t),
        "categorical": lambda t: gsj.categorical(3, x),
    }
    hosts = {}
    for name, call in calls.items():
        hosts[name] = []
        for _ in range(2):  # equal per-row taus, in new arrays each time
            seen.clear()
            call(np.array([0.5, 0.7, 0.9, 1.1])).block_until_ready()
            hosts[name].append(seen[-1])
        assert hosts[name][0] is hosts[name][1], name
    seen.clear()
    gsj.top_k(3, x, 3).block_until_ready()  # another k: another host function
    assert seen[-1] is not hosts["top_k"][0]
    seen.clear()
    gsj.relaxed_top_k(3, x, 2, np.array([0.5, 0.7, 0.9, 1.2])).block_until_ready()
    assert seen[-1] is not hosts["relaxed_top_k"][0]  # other per-row taus
