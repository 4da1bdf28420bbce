"""gumbel_softmax.jax: the NumPy kernels behind jax.pure_callback and jax.custom_vjp.

Samples are compared bit for bit with the NumPy API (the forward *is* that call).  The
gradients of ``sum(w * y)`` are compared bit for bit with ``gs.gumbel_softmax_backward``
too: the cotangent reaching our backward is exactly ``w`` (``w * 1.0``) and the backward
is that very NumPy call on the same ``y_soft``.  The tau gradient (our own formula) is
checked by central finite differences in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_logits, run_python, same_bits

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


def _ref(x, tau, seed, hard=False, axis=-1):
    return gs.gumbel_softmax(np.asarray(x), tau, hard=hard, axis=axis, rng=gs.Philox(seed))


def _ref_grad(w, x, tau, seed, hard=False, axis=-1):
    """The NumPy API's gradient of sum(w * y): the soft one, also for hard=True."""
    _, y_soft = gs.gumbel_softmax(
        np.asarray(x), tau, hard=hard, axis=axis, rng=gs.Philox(seed), return_soft=True
    )
    return gs.gumbel_softmax_backward(np.asarray(w), y_soft, tau, axis=axis)


_jit = jax.jit(gsj.gumbel_softmax, static_argnames=("hard", "axis"))


# ---------------------------------------------------------------------------------------
# Import


def test_import_gumbel_softmax_does_not_import_jax():
    r = run_python("import sys, gumbel_softmax; print('jax' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_missing_jax_gives_clear_import_error():
    code = (
        "import sys; sys.modules['jax'] = None\n"
        "try:\n"
        "    import gumbel_softmax.jax\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    r = run_python(code)
    assert r.returncode == 0, r.stderr
    assert "gumbel_softmax.jax needs JAX: pip install 'gumbel-softmax[jax]'" in r.stdout


# ---------------------------------------------------------------------------------------
# Forward: bitwise the NumPy API


@pytest.mark.parametrize(
    "shape,axis",
    [((7,), -1), ((5, 9), -1), ((5, 9), 0), ((3, 4, 6), 1), ((2, 3, 33), -1), ((64, 10), -1)],
)
@pytest.mark.parametrize("hard", [False, True])
def test_forward_bitwise_eager_and_jit(shape, axis, hard):
    x = _normal(shape, seed=len(shape))
    for tau in (0.5, 1.0, 2.3):
        ref = _ref(x, tau, 1234, hard, axis)
        assert same_bits(gsj.gumbel_softmax(1234, x, tau, hard=hard, axis=axis), ref)
        # tau closed over: a constant, its exact float64 value
        f = jax.jit(lambda k, x: gsj.gumbel_softmax(k, x, tau, hard=hard, axis=axis))
        assert same_bits(f(1234, x), ref)
        # tau a jit argument: traced, float32 without x64
        ref32 = _ref(x, np.float32(tau), 1234, hard, axis)
        assert same_bits(_jit(1234, x, tau, hard=hard, axis=axis), ref32)


@pytest.mark.parametrize("seed", [0, 42, 2**31 + 5, 2**32 - 1])
def test_int_seed_prngkey_and_typed_key_agree(seed):
    x = _normal((6, 11))
    ref = _ref(x, 0.7, seed)
    assert gsj.seed_of(jax.random.PRNGKey(seed)) == seed
    assert gsj.seed_of(jax.random.key(seed)) == seed
    for key in (
        seed,
        np.uint64(seed),
        jax.random.PRNGKey(seed),
        jax.random.key(seed),
        np.asarray(jax.random.PRNGKey(seed)),
    ):
        assert same_bits(gsj.gumbel_softmax(key, x, 0.7), ref)
    f = jax.jit(lambda k, x: gsj.gumbel_softmax(k, x, 0.7))
    for key in (jax.random.PRNGKey(seed), jax.random.key(seed)):
        assert same_bits(f(key, x), ref)  # a traced key
    # an int passed through jit is a traced int32 (JAX refuses ints >= 2**31 there);
    # as a static argument any seed works
    if seed < 2**31:
        assert same_bits(f(seed, x), ref)
    g = jax.jit(lambda x, k: gsj.gumbel_softmax(k, x, 0.7), static_argnums=1)
    assert same_bits(g(x, seed), ref)


def test_jax_threefry_seeding_layout():
    """The key mapping rests on this: PRNGKey(s) stores (s >> 32, s & 0xffffffff)."""
    assert np.asarray(jax.random.PRNGKey(42)).tolist() == [0, 42]
    assert np.asarray(jax.random.key_data(jax.random.key(42))).tolist() == [0, 42]


def test_64_bit_seeds(x64):
    seed = 2**40 + 7
    x = _normal((4, 5))
    ref = _ref(x, 0.5, seed)
    for key in (seed, jax.random.PRNGKey(seed), jax.random.key(seed)):
        assert same_bits(gsj.gumbel_softmax(key, x, 0.5), ref)
    top = 2**64 - 1
    assert same_bits(gsj.gumbel_softmax(top, x, 0.5), _ref(x, 0.5, top))
    assert gsj.seed_of(np.array([0xFFFFFFFF, 0xFFFFFFFF], np.uint32)) == top


def test_traced_seed_and_key_under_jit():
    x = _normal((3, 8))

    @jax.jit
    def f(k, x):
        return gsj.gumbel_softmax(k, x, 0.5, hard=True)

    assert same_bits(f(17, x), _ref(x, 0.5, 17, hard=True))  # a traced int32 scalar
    assert same_bits(f(jax.random.PRNGKey(17), x), _ref(x, 0.5, 17, hard=True))
    assert same_bits(f(jax.random.key(17), x), _ref(x, 0.5, 17, hard=True))


def test_traced_tau_is_used_at_its_dtype():
    x = _normal((4, 9))
    f = jax.jit(lambda t: gsj.gumbel_softmax(5, x, t))
    assert same_bits(f(0.3), _ref(x, np.float32(0.3), 5))  # float32 without x64
    # a concrete JAX scalar is its exact value, eagerly
    assert same_bits(gsj.gumbel_softmax(5, x, jnp.float32(0.3)), _ref(x, np.float32(0.3), 5))
    assert same_bits(gsj.gumbel_softmax(5, x, 0.3), _ref(x, 0.3, 5))


# ---------------------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("shape,axis", [((5, 9), -1), ((5, 9), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("hard", [False, True])
def test_grad_bitwise_equals_numpy_backward(shape, axis, hard):
    x, w = _normal(shape, seed=1), _normal(shape, seed=2)

    def loss(x):
        return (w * gsj.gumbel_softmax(9, x, 0.6, hard=hard, axis=axis)).sum()

    ref = _ref_grad(w, x, 0.6, 9, hard, axis)
    assert same_bits(jax.grad(loss)(x), ref)
    assert same_bits(jax.jit(jax.grad(loss))(x), ref)
    # the value of the loss comes from the same sample
    value, _ = jax.value_and_grad(loss)(x)
    assert np.isclose(float(value), float((w * _ref(x, 0.6, 9, hard, axis)).sum()), rtol=1e-5)


def test_straight_through_gradient_is_the_soft_gradient():
    x, w = _normal((6, 7), seed=3), _normal((6, 7), seed=4)

    def grads(hard):
        def loss(x, t):
            return (w * gsj.gumbel_softmax(jax.random.PRNGKey(2), x, t, hard=hard)).sum()

        return jax.jit(jax.grad(loss, argnums=(0, 1)))(x, 0.8)

    (gx_h, gt_h), (gx_s, gt_s) = grads(True), grads(False)
    assert same_bits(gx_h, gx_s)
    assert same_bits(gt_h, gt_s)


@pytest.mark.parametrize("shape,axis", [((4, 6), -1), ((3, 5, 2), 1), ((8,), 0)])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_grad_matches_finite_differences_float64(x64, shape, axis, tau):
    x, w = _normal(shape, np.float64, 5), _normal(shape, np.float64, 6)

    def loss(x, t):
        return (w * gsj.gumbel_softmax(11, x, t, axis=axis)).sum()

    gx, gt = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(tau))
    assert gx.dtype == jnp.float64 and gt.dtype == jnp.float64

    def num(x, t):  # the same fixed draw, through the NumPy API
        return float((w * _ref(x, t, 11, axis=axis)).sum())

    h = 1e-6
    fd_tau = (num(x, tau + h) - num(x, tau - h)) / (2 * h)
    fd_x = np.zeros_like(x)
    for i in np.ndindex(shape):
        e = np.zeros_like(x)
        e[i] = h
        fd_x[i] = (num(x + e, tau) - num(x - e, tau)) / (2 * h)
    np.testing.assert_allclose(float(gt), fd_tau, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(np.asarray(gx), fd_x, rtol=1e-7, atol=1e-8)


def test_tau_gradient_with_masked_category(x64):
    """-inf logits: y_soft == 0 there, and they add 0 (not NaN) to the tau gradient."""
    x = np.array([[0.0, -np.inf, 1.0, 2.0], [-np.inf, 0.5, 0.0, -1.0]])
    w = np.array([[1.0, 2.0, -1.0, 0.5], [0.3, -0.2, 1.0, 2.0]])
    gx, gt = jax.grad(lambda x, t: (w * gsj.gumbel_softmax(1, x, t)).sum(), argnums=(0, 1))(
        jnp.asarray(x), jnp.asarray(0.5)
    )
    assert np.isfinite(float(gt)) and np.all(np.asarray(gx)[np.isinf(x)] == 0)
    h = 1e-6
    fd = (float((w * _ref(x, 0.5 + h, 1)).sum()) - float((w * _ref(x, 0.5 - h, 1)).sum())) / (2 * h)
    np.testing.assert_allclose(float(gt), fd, rtol=1e-7)


def test_no_gradient_for_a_concrete_tau_and_the_key():
    x = _normal((3, 4))
    g = jax.grad(lambda x: gsj.gumbel_softmax(jax.random.key(1), x, 2.0)[:, 0].sum())(x)
    assert g.shape == x.shape and g.dtype == jnp.float32


# ---------------------------------------------------------------------------------------
# vmap


def test_vmap_over_keys_and_seeds_equals_separate_calls():
    x = _normal((4, 10))
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    typed = jax.random.split(jax.random.key(0), 3)
    seeds = jnp.arange(3)
    f = jax.jit(jax.vmap(lambda k: gsj.gumbel_softmax(k, x, 0.5, hard=True)))
    for batch in (keys, typed):
        out = f(batch)
        for i in range(3):
            assert same_bits(out[i], gsj.gumbel_softmax(batch[i], x, 0.5, hard=True))
    out = f(seeds)
    for i in range(3):
        assert same_bits(out[i], _ref(x, 0.5, i, hard=True))


def test_vmap_over_logits_and_grad():
    xs, w = _normal((3, 4, 6)), _normal((4, 6), seed=1)
    out = jax.vmap(lambda x: gsj.gumbel_softmax(8, x, 0.9))(xs)
    for i in range(3):
        assert same_bits(out[i], _ref(xs[i], 0.9, 8))  # one key: each element as a call

    def loss(k, x, t):
        return (w * gsj.gumbel_softmax(k, x, t)).sum()

    keys = jnp.arange(3)
    taus = jnp.array([0.5, 1.0, 2.0])
    gx, gt = jax.jit(jax.vmap(jax.grad(loss, argnums=(1, 2))))(keys, xs, taus)
    for i in range(3):
        gxi, gti = jax.grad(loss, argnums=(1, 2))(i, xs[i], taus[i])
        assert same_bits(gx[i], gxi) and same_bits(gt[i], gti)
        assert same_bits(gx[i], _ref_grad(w, xs[i], float(taus[i]), i))


# ---------------------------------------------------------------------------------------
# dtypes


def test_float64(x64):
    x, w = _normal((5, 6), np.float64), _normal((5, 6), np.float64, 1)
    y = _jit(3, x, 0.4, hard=True)
    assert y.dtype == jnp.float64 and same_bits(y, _ref(x, 0.4, 3, True))
    g = jax.grad(lambda x: (w * gsj.gumbel_softmax(3, x, 0.4)).sum())(x)
    assert same_bits(g, _ref_grad(w, x, 0.4, 3))


def test_float64_input_without_x64_is_float32():
    x = _normal((3, 4), np.float64)
    y = gsj.gumbel_softmax(0, x)
    assert y.dtype == jnp.float32 and same_bits(y, _ref(x.astype(np.float32), 1.0, 0))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("hard", [False, True])
def test_half_dtypes(dtype, hard):
    x = jnp.asarray(_normal((5, 7)), dtype)
    w = jnp.asarray(_normal((5, 7), seed=1), dtype)
    y = _jit(3, x, 0.5, hard=hard)
    assert y.dtype == dtype and same_bits(y, _ref(x, 0.5, 3, hard))

    def loss(x, t):
        return (w * gsj.gumbel_softmax(3, x, t, hard=hard)).sum()

    gx, gt = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, jnp.asarray(0.5, dtype))
    assert gx.dtype == dtype and gt.dtype == dtype
    assert same_bits(gx, _ref_grad(w, x, 0.5, 3, hard))
    assert np.isfinite(float(gt))


# ---------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "tau,exc",
    [
        (0.0, ValueError),
        (-1.0, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        ("a", TypeError),
        (True, TypeError),
        (np.ones(3), ValueError),  # does not broadcast to the batch shape (2,)
        (1 + 2j, TypeError),
    ],
)
def test_bad_tau(tau, exc):
    with pytest.raises(exc, match="tau"):
        gsj.gumbel_softmax(0, np.zeros((2, 3), np.float32), tau)


def test_bad_traced_tau_raises_from_the_callback():
    f = jax.jit(lambda t: gsj.gumbel_softmax(0, jnp.zeros((2, 3)), t))
    with pytest.raises(jax.errors.JaxRuntimeError, match="tau must be positive and finite"):
        f(-1.0).block_until_ready()


@pytest.mark.parametrize(
    "key,exc",
    [
        (jax.random.key(0, impl="rbg"), ValueError),  # 4-word key data
        (jnp.zeros(4, jnp.uint32), ValueError),
        (jnp.zeros((3, 2), jnp.uint32), ValueError),  # a batch outside vmap
        (jax.random.split(jax.random.key(0), 2), ValueError),
        (np.array([0, 1], np.int64), TypeError),
        (-1, ValueError),
        (2**64, ValueError),
        (np.int64(-5), ValueError),
        (0.5, TypeError),
        (True, TypeError),
        ("seed", TypeError),
        (jnp.zeros(2, jnp.float32), TypeError),
    ],
)
def test_bad_key(key, exc):
    with pytest.raises(exc, match="key_or_seed"):
        gsj.gumbel_softmax(key, np.zeros((2, 3), np.float32))


def test_negative_traced_seed_raises_from_the_callback():
    f = jax.jit(lambda s: gsj.gumbel_softmax(s, jnp.zeros((2, 3))))
    with pytest.raises(jax.errors.JaxRuntimeError, match="key_or_seed"):
        f(-3).block_until_ready()


@pytest.mark.parametrize("logits", [np.ones(3, np.complex64), np.array(["a", "b"])])
def test_non_float_logits(logits):
    with pytest.raises(TypeError, match="logits"):
        gsj.gumbel_softmax(0, logits)


@pytest.mark.parametrize("x64_on", [False, True])
def test_integer_and_bool_logits_are_converted_as_numpy_does(x64_on):
    """Integer and bool logits: float64 as in the NumPy API (float32 without x64)."""
    with jax.enable_x64(x64_on):
        for logits in (np.arange(6).reshape(2, 3), np.array([True, False, True])):
            y = gsj.gumbel_softmax(4, logits, 0.5)
            want = np.float64 if x64_on else np.float32
            assert y.dtype == want
            assert same_bits(y, _ref(logits.astype(want), 0.5, 4))
            if x64_on:  # exactly the NumPy API's own conversion
                assert same_bits(y, _ref(logits, 0.5, 4))


def test_bad_shapes_and_axis():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="axis 2"):
        gsj.gumbel_softmax(0, x, axis=2)
    with pytest.raises(TypeError, match="axis"):
        gsj.gumbel_softmax(0, x, axis=1.0)
    with pytest.raises(ValueError, match="0-d"):
        gsj.gumbel_softmax(0, np.float32(1.0))
    with pytest.raises(ValueError, match="length 0"):
        gsj.gumbel_softmax(0, np.zeros((2, 0), np.float32))
    with pytest.raises(TypeError, match="hard"):
        jax.jit(lambda h: gsj.gumbel_softmax(0, x, hard=h))(True)


# ---------------------------------------------------------------------------------------
# The two ways the kernels run under jit: XLA FFI custom calls (builds with jaxlib's
# headers, gsj.uses_ffi()) and jax.pure_callback (the fallback).  Same bits.


@pytest.fixture
def callback_path(monkeypatch):
    """The pure_callback fallback for one test, in a build that has the FFI handlers too."""
    monkeypatch.setattr(gsj, "_FFI_TARGETS", None)
    assert not gsj.uses_ffi()


def test_uses_ffi_exactly_when_the_build_has_the_handlers():
    from gumbel_softmax import _core

    assert gsj.uses_ffi() == hasattr(_core, "_xla_ffi")


@pytest.mark.skipif(
    not gsj.uses_ffi(),
    reason="this build has no XLA FFI handlers; the minimal build of .ci/run has them and runs it",
)
def test_ffi_handlers_reject_an_unnormalised_axis():
    # The handlers index the shape by axis (gsj passes it normalised, in [0, ndim)); any
    # other value is an error of the call, not a read outside the shape.
    x = jnp.zeros((2, 5), jnp.float32)
    key = jax.random.PRNGKey(0)
    for axis in (-1, 2):
        calls = {
            "forward": lambda: gsj._ffi_forward(
                False, False, axis, "words", 1.0, False, key, x, None
            ),
            "backward": lambda: gsj._ffi_backward(axis, 1.0, x, x, None),
            "categorical": lambda: gsj._categorical(axis, "words", key, x),
        }
        for call in calls.values():
            with pytest.raises(Exception, match="bad axis"):
                jax.block_until_ready(call())


def _paths_outputs(x, w, tau, hard, axis, key):
    """Forward, gradients (logits, traced tau) and vmap over keys, jitted."""

    def loss(x, t):
        return (w * gsj.gumbel_softmax(key, x, t, hard=hard, axis=axis)).sum()

    y = jax.jit(gsj.gumbel_softmax, static_argnames=("hard", "axis"))(key, x, tau, hard, axis)
    gx, gt = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, jnp.float32(tau))
    keys = jax.random.split(jax.random.PRNGKey(7), 5)
    v = jax.jit(jax.vmap(lambda k: gsj.gumbel_softmax(k, x, tau, hard=hard, axis=axis)))(keys)
    return y, gx, gt, v


@pytest.mark.parametrize(
    "shape,axis,hard,dtype",
    [
        ((64, 10), -1, False, np.float32),
        ((3, 7, 5), 1, True, np.float32),
        ((2, 33), -1, True, jnp.bfloat16),
        ((5, 4), 0, False, jnp.float16),
    ],
)
def test_ffi_and_callback_paths_agree(monkeypatch, shape, axis, hard, dtype):
    x = jnp.asarray(_normal(shape)).astype(dtype)
    w = jnp.asarray(_normal(shape, seed=2)).astype(dtype)
    first = _paths_outputs(x, w, 0.7, hard, axis, jax.random.PRNGKey(3))
    monkeypatch.setattr(gsj, "_FFI_TARGETS", None if gsj.uses_ffi() else gsj._FFI_TARGETS)
    second = _paths_outputs(x, w, 0.7, hard, axis, jax.random.PRNGKey(3))
    y, gx, gt, v = first
    assert same_bits(y, second[0]) and same_bits(gx, second[1]) and same_bits(v, second[3])
    # the tau gradient: float64 sums in both, of float64 (FFI) or float32 (callback) logs,
    # and for half dtypes of the float32 (FFI) or the rounded (callback) grad_logits
    rtol = 1e-5 if dtype == np.float32 else 4 * float(jnp.finfo(dtype).eps)
    np.testing.assert_allclose(float(gt), float(second[2]), rtol=rtol, atol=1e-6)
    assert same_bits(y, _ref(np.asarray(x), 0.7, 3, hard=hard, axis=axis))


def test_callback_path_still_matches_numpy(callback_path):
    x, w = _normal((6, 9)), _normal((6, 9), seed=1)
    y = _jit(5, x, 0.5, True)
    assert same_bits(y, _ref(x, 0.5, 5, hard=True))
    g = jax.jit(jax.grad(lambda x: (w * gsj.gumbel_softmax(5, x, 0.5, hard=True)).sum()))(x)
    assert same_bits(g, _ref_grad(w, x, 0.5, 5, hard=True))


def test_nested_vmap_over_keys_and_taus_equals_separate_calls():
    """vmap of vmap: every batch element is one call with its own key and tau."""
    x = _normal((3, 6))
    keys = jax.random.split(jax.random.PRNGKey(1), 6).reshape(2, 3, 2)
    taus = jnp.array([0.5, 2.0])
    f = jax.jit(
        jax.vmap(lambda ks, t: jax.vmap(lambda k: gsj.gumbel_softmax(k, x, t))(ks), in_axes=(0, 0))
    )
    out = f(keys, taus)
    for i in range(2):
        for j in range(3):
            assert same_bits(out[i, j], _ref(x, float(taus[i]), gsj.seed_of(keys[i, j])))


_TRACED_TAU_CALLS = {
    "gumbel_softmax": lambda t: gsj.gumbel_softmax(0, jnp.zeros((2, 3)), t),
    "relaxed_bernoulli": lambda t: gsj.relaxed_bernoulli(0, jnp.zeros((2, 3)), t),
    "relaxed_top_k": lambda t: gsj.relaxed_top_k(0, jnp.zeros((2, 3)), 2, t),
}


@pytest.mark.parametrize("name", sorted(_TRACED_TAU_CALLS))
@pytest.mark.parametrize("way", ["ffi", "callback"])
def test_bad_traced_tau_prints_nothing(monkeypatch, capfd, way, name):
    """The error is a JaxRuntimeError naming tau, and nothing reaches stderr: with the
    FFI handlers, and with callbacks (JAX's log record of our callback's ValueError is
    filtered out; other records pass)."""
    if way == "callback":
        monkeypatch.setattr(gsj, "_FFI_TARGETS", None)
    f = jax.jit(_TRACED_TAU_CALLS[name])
    capfd.readouterr()
    with pytest.raises(
        jax.errors.JaxRuntimeError, match=r"tau must be positive and finite, got -1\.0"
    ):
        f(-1.0).block_until_ready()
    with pytest.raises(jax.errors.JaxRuntimeError, match="got nan"):
        f(jnp.nan).block_until_ready()
    # After a call that succeeded, JAX runs the compiled function on its C++ fast path,
    # which raises a failed call's message as ValueError (JAX's mapping, for any
    # callback or custom call error): the message is the same
    f(2.0).block_until_ready()
    with pytest.raises((jax.errors.JaxRuntimeError, ValueError), match=r"got -1\.0"):
        f(-1.0).block_until_ready()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_other_callback_errors_are_still_logged(caplog):
    """The filter drops only the records of our own callbacks' ValueError/TypeError."""
    import logging

    def broken(x):
        raise ValueError("not ours")

    with caplog.at_level(logging.ERROR, logger="jax._src.callback"):
        with pytest.raises(Exception, match="not ours"):
            jax.jit(lambda x: jax.pure_callback(broken, _sds_like(x), x))(
                jnp.ones(2)
            ).block_until_ready()
    assert any("pure_callback failed" in r.getMessage() for r in caplog.records)


def _sds_like(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


@pytest.mark.parametrize(
    "shape,axis,tau,hard",
    [
        ((10,), -1, 0.5, False),  # short rows, one per element
        ((3, 7), -1, 1.0, True),  # short rows, the tau = 1 path
        ((40, 3), 0, 0.7, True),  # strided rows (tiles)
        ((2, 300), -1, 1.0, False),  # rows of the row path
        ((1, 70000), -1, 0.9, True),  # one long row (split over segments)
    ],
)
@pytest.mark.parametrize("x64_on", [False, True])
def test_vmap_over_keys_every_row_path(path, shape, axis, tau, hard, x64_on):
    """vmap over keys (one custom call with a key per row, with the FFI handlers; one
    callback per element without) equals separate calls on every row path of the kernel,
    also with a traced tau per element."""
    with jax.enable_x64(x64_on):
        dtype = np.float64 if x64_on else np.float32
        xs = np.stack([_normal(shape, dtype, seed=s) for s in range(3)])
        keys = jax.random.split(jax.random.PRNGKey(11), 3)
        taus = jnp.asarray([tau, 2 * tau, tau], dtype)
        f = jax.jit(jax.vmap(lambda k, x, t: gsj.gumbel_softmax(k, x, t, hard=hard, axis=axis)))
        out = f(keys, jnp.asarray(xs), taus)
        for i in range(3):
            ref = _ref(xs[i], float(taus[i]), gsj.seed_of(keys[i]), hard=hard, axis=axis)
            assert same_bits(out[i], ref)


def test_x64_callbacks_on_xla_threads(callback_path):
    """With x64 on, the callbacks get float64 operands and may return float64 and int64
    results also when XLA runs them on its own threads (where the thread-local x64 switch
    is off): one long row, as in CI's build without the FFI handlers."""
    with jax.enable_x64(True):
        x = jnp.asarray(_normal((1, 70000), np.float64))
        w = jnp.asarray(_normal((1, 70000), np.float64, seed=1))
        keys = jax.random.split(jax.random.PRNGKey(2), 2)
        taus = jnp.asarray([0.6, 1.3])
        y = jax.jit(jax.vmap(lambda k, t: gsj.gumbel_softmax(k, x, t)))(keys, taus)
        assert y.dtype == np.float64
        for i in range(2):
            assert same_bits(y[i], _ref(np.asarray(x), float(taus[i]), gsj.seed_of(keys[i])))
        idx = jax.jit(jax.vmap(lambda k: gsj.categorical(k, x)))(keys)
        assert idx.dtype == np.int64
        for i in range(2):
            want = gs.categorical(np.asarray(x), rng=gs.Philox(gsj.seed_of(keys[i])))
            assert np.array_equal(np.asarray(idx[i]), want)

        def loss(x, t):
            return (w * gsj.gumbel_softmax(3, x, t, hard=True)).sum()

        gx, gt = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0)))(x, taus)
        assert gx.dtype == gt.dtype == np.float64
        for i in range(2):
            assert same_bits(
                gx[i], _ref_grad(np.asarray(w), np.asarray(x), float(taus[i]), 3, hard=True)
            )
        xn, wn = np.asarray(x), np.asarray(w)
        g = jax.jit(jax.grad(lambda x: (w * gsj.gumbel_rao(3, x, 1.2, samples=2)).sum()))(x)
        y = _ref(xn, 1.2, 3, hard=True)
        want = gs.gumbel_rao_backward(wn, xn, y, 1.2, samples=2, rng=gs.Philox(3, counter=1))
        assert g.dtype == np.float64 and same_bits(g, want)
        g = jax.jit(jax.grad(lambda x: (w * gsj.reinmax(3, x, 1.2)[0]).sum()))(x)
        assert g.dtype == np.float64 and same_bits(g, gs.reinmax_backward(wn, xn, y, 1.2))


# ---------------------------------------------------------------------------------------
# Breadth: per-row tau, mask, log_gumbel_softmax, categorical (both kernel paths)


@pytest.fixture(params=["ffi", "callback"])
def path(request, monkeypatch):
    """Each test once per way the kernels run (with callbacks only, when the build has no
    FFI handlers, the "ffi" run is the callback run again)."""
    if request.param == "callback":
        monkeypatch.setattr(gsj, "_FFI_TARGETS", None)
    return request.param


def _fd(f, x, eps):
    """Central finite differences of the scalar function f at x (float64 numpy)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        g[i] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


@pytest.mark.parametrize("axis", [-1, 0])
def test_per_row_tau_concrete_and_traced(path, axis):
    x = _normal((4, 5))
    shape = (4,) if axis == -1 else (5,)
    taus = np.linspace(0.3, 2.0, shape[0])
    want = gs.gumbel_softmax(x, taus, hard=True, axis=axis, rng=gs.Philox(6))
    assert same_bits(gsj.gumbel_softmax(6, x, taus, True, axis), want)
    f = jax.jit(lambda t: gsj.gumbel_softmax(6, x, t, True, axis))
    # traced float32 taus: the NumPy API on the same float32 values
    t32 = taus.astype(np.float32)
    want32 = gs.gumbel_softmax(x, t32.astype(np.float64), hard=True, axis=axis, rng=gs.Philox(6))
    assert same_bits(f(jnp.asarray(t32)), want32)
    # keepdims form and broadcasting
    kd = np.expand_dims(taus, axis)
    assert same_bits(gsj.gumbel_softmax(6, x, kd, True, axis), want)
    with pytest.raises(ValueError, match="tau"):
        gsj.gumbel_softmax(6, x, np.ones(7), axis=axis)
    with pytest.raises(ValueError, match="tau must be positive"):
        gsj.gumbel_softmax(6, x, -taus, axis=axis)


def test_per_row_traced_tau_gradient_matches_finite_differences(path, x64):
    x, w = _normal((3, 6), np.float64), _normal((3, 6), np.float64, seed=1)
    taus = np.array([0.4, 1.0, 2.5])

    def loss(t):
        return (w * gsj.gumbel_softmax(2, x, t)).sum()

    g = jax.grad(loss)(jnp.asarray(taus))
    fd = _fd(lambda t: float(loss(jnp.asarray(t))), taus, 1e-6)
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)
    # a broadcast tau of shape (1,): its gradient is the sum over the rows
    g1 = jax.grad(loss)(jnp.asarray([0.7]))
    fd1 = _fd(lambda t: float(loss(jnp.asarray(t))), np.array([0.7]), 1e-6)
    np.testing.assert_allclose(np.asarray(g1), fd1, rtol=1e-6, atol=1e-9)


def test_mask_equals_the_numpy_mask_and_has_zero_gradient(path):
    x, w = _normal((3, 6)), _normal((3, 6), seed=1)
    mask = np.ones((3, 6), bool)
    mask[0, 2] = mask[1, 0] = mask[2, 5] = False
    want = gs.gumbel_softmax(x, 0.5, hard=True, mask=mask, rng=gs.Philox(9))
    assert same_bits(gsj.gumbel_softmax(9, x, 0.5, True, mask=mask), want)
    g = jax.grad(lambda x: (w * gsj.gumbel_softmax(9, x, 0.5, mask=mask)).sum())(x)
    assert (np.asarray(g)[~mask] == 0).all()
    row_mask = np.array([True, False, True, True, True, True])  # broadcasts over rows
    assert same_bits(
        gsj.gumbel_softmax(9, x, 0.5, mask=row_mask),
        gs.gumbel_softmax(x, 0.5, mask=np.broadcast_to(row_mask, x.shape), rng=gs.Philox(9)),
    )
    with pytest.raises(TypeError, match="mask"):
        gsj.gumbel_softmax(9, x, mask=np.ones((3, 6)))
    with pytest.raises(ValueError, match="mask"):
        gsj.gumbel_softmax(9, x, mask=np.ones((2, 6), bool))


@pytest.mark.parametrize("x64_on", [False, True])
def test_log_gumbel_softmax_bitwise_and_gradients(path, x64_on):
    with jax.enable_x64(x64_on):
        dt = np.float64 if x64_on else np.float32
        x, w = _normal((3, 7), dt), _normal((3, 7), dt, seed=1)
        want = gs.log_gumbel_softmax(x, 0.05, rng=gs.Philox(5))
        assert same_bits(jax.jit(lambda x: gsj.log_gumbel_softmax(5, x, 0.05))(x), want)
        if not x64_on:
            return
        taus = np.array([0.5, 1.0, 2.0])

        def loss(x, t):
            return (w * gsj.log_gumbel_softmax(5, x, t)).sum()

        gx, gt = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(taus))
        fx = _fd(lambda v: float(loss(jnp.asarray(v), jnp.asarray(taus))), x, 1e-6)
        ft = _fd(lambda v: float(loss(jnp.asarray(x), jnp.asarray(v))), taus, 1e-6)
        np.testing.assert_allclose(np.asarray(gx), fx, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.asarray(gt), ft, rtol=1e-5, atol=1e-7)


def test_categorical_bitwise_vmap_and_mask(path):
    x = _normal((5, 8))
    mask = np.ones(8, bool)
    mask[3] = False
    want = gs.categorical(x, rng=gs.Philox(3), mask=np.broadcast_to(mask, x.shape))
    got = jax.jit(lambda x: gsj.categorical(3, x, mask=mask))(x)
    assert got.dtype == jnp.int32 and (np.asarray(got) == want).all()
    # the index of the hard sample's one-hot, from the same key
    hard = gsj.gumbel_softmax(3, x, 0.5, hard=True, mask=mask)
    assert (np.asarray(hard).argmax(-1) == want).all()
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    v = jax.vmap(lambda k: gsj.categorical(k, x, axis=0))(keys)
    for i in range(4):
        assert (
            np.asarray(v[i]) == gs.categorical(x, axis=0, rng=gs.Philox(gsj.seed_of(keys[i])))
        ).all()


# ---------------------------------------------------------------------------------------
# Gradient estimators (issue 16): gumbel_rao and reinmax


@pytest.mark.parametrize("axis", [-1, 0])
def test_gumbel_rao_forward_and_gradient_are_the_numpy_functions(path, axis):
    x, w = _normal((4, 6)), _normal((4, 6), seed=1)
    f = jax.jit(lambda x: gsj.gumbel_rao(5, x, 0.5, samples=7, axis=axis))
    y = gs.gumbel_softmax(x, 0.5, hard=True, axis=axis, rng=gs.Philox(5))
    assert same_bits(f(x), y)
    g = jax.jit(jax.grad(lambda x: (w * gsj.gumbel_rao(5, x, 0.5, samples=7, axis=axis)).sum()))(x)
    nrows = x.size // x.shape[axis]
    want = gs.gumbel_rao_backward(
        w, x, y, 0.5, samples=7, axis=axis, rng=gs.Philox(5, counter=nrows)
    )
    assert same_bits(g, want)


def test_gumbel_rao_vmap_over_keys(path):
    x, w = _normal((3, 5)), _normal((3, 5), seed=1)
    keys = jax.random.split(jax.random.PRNGKey(4), 3)
    gv = jax.vmap(
        jax.grad(lambda x, k: (w * gsj.gumbel_rao(k, x, 0.7, samples=4)).sum()), in_axes=(None, 0)
    )(x, keys)
    for i in range(3):
        seed = gsj.seed_of(keys[i])
        y = gs.gumbel_softmax(x, 0.7, hard=True, rng=gs.Philox(seed))
        want = gs.gumbel_rao_backward(w, x, y, 0.7, samples=4, rng=gs.Philox(seed, counter=3))
        assert same_bits(gv[i], want)


def test_reinmax_outputs_and_gradient_are_the_numpy_functions(path):
    x, w, v = _normal((4, 6)), _normal((4, 6), seed=1), _normal((4, 6), seed=2)

    def loss(x):
        y, p = gsj.reinmax(3, x, 1.5)
        return (w * y).sum() + (v * p).sum()

    y, p = gsj.reinmax(3, x, 1.5)
    y_ref = gs.gumbel_softmax(x, 1.5, hard=True, rng=gs.Philox(3))
    assert same_bits(y, y_ref)
    assert same_bits(p, jax.nn.softmax(jnp.asarray(x)))
    g = jax.jit(jax.grad(loss))(x)
    assert same_bits(g, gs.reinmax_backward(w, x, y_ref, 1.5, grad_p=v))


def test_estimator_errors():
    x = _normal((2, 3))
    with pytest.raises(ValueError, match="tau"):
        gsj.reinmax(0, x, 0.5)
    with pytest.raises(ValueError, match="samples"):
        gsj.gumbel_rao(0, x, samples=0)
    with pytest.raises(TypeError, match="samples"):
        gsj.gumbel_rao(0, x, samples=2.0)


@pytest.mark.parametrize("name", ["soft", "hard", "log", "relaxed_top_k"])
def test_mask_gradient_is_that_of_minus_inf_logits(name):
    """mask=False is a -inf logit, in the gradient too: bitwise the gradient with the
    -inf logits written in (the kernels' +0 or -0 at the masked entries of a row with a
    sample, NaN across a row with none, as the NumPy backwards give).  jnp.where's own
    gradient put +0 everywhere a mask was False, so a row with nothing left got 0."""
    x = random_logits((3, 5), np.float32, 2)
    w = jnp.asarray(random_logits((3, 5), np.float32, 3))
    m = np.array([[False] * 5, [True, False, True, True, False], [True] * 5])
    calls = {
        "soft": lambda z, mk: gsj.gumbel_softmax(3, z, 0.5, mask=mk),
        "hard": lambda z, mk: gsj.gumbel_softmax(3, z, 0.5, hard=True, mask=mk),
        "log": lambda z, mk: gsj.log_gumbel_softmax(3, z, 0.5, mask=mk),
        "relaxed_top_k": lambda z, mk: gsj.relaxed_top_k(3, z, 2, 0.5, mask=mk),
    }
    call = calls[name]

    def loss(z, mk):
        y = call(z, mk)
        return jnp.sum(jnp.where(jnp.isfinite(y), y, 0.0) * w)

    got = jax.grad(loss)(jnp.asarray(x), jnp.asarray(m))
    expected = jax.grad(loss)(jnp.asarray(np.where(m, x, -np.inf)), None)
    assert same_bits(got, expected)
    assert np.isnan(np.asarray(got)[0]).all() and np.isfinite(np.asarray(got)[1:]).all()
    if name == "relaxed_top_k":
        numpy = gs.relaxed_top_k_backward(np.asarray(w), x, 2, 0.5, mask=m, rng=gs.Philox(3))
        assert same_bits(got, numpy)
    jitted = jax.jit(jax.grad(loss))(jnp.asarray(x), jnp.asarray(m))
    if name == "log":  # its backward is jnp arithmetic, which XLA fuses under jit
        np.testing.assert_allclose(jitted, got, rtol=1e-6)
    else:
        assert same_bits(jitted, got)
