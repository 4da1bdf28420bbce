"""float16 and bfloat16 inputs.

Half-precision logits (and out) are computed in float32 from the float32 stream (one
word per element) and the result is rounded to the input dtype, so every entry point
must be bitwise equal to the float32 call on the upcast input followed by
``.astype(half)`` (NumPy / ml_dtypes round to nearest even), from the same state.
bfloat16 needs ml_dtypes (skipped otherwise).
"""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal_any_nan, random_logits

F32 = np.float32


@pytest.fixture(params=["float16", "bfloat16"])
def hdt(request):
    if request.param == "float16":
        return np.dtype(np.float16)
    ml_dtypes = pytest.importorskip("ml_dtypes")
    return np.dtype(ml_dtypes.bfloat16)


def make_x(shape, hdt, seed, scale=3.0):
    x = random_logits(shape, hdt, seed, scale)
    assert x.dtype == hdt
    return x


def up(a):
    return np.asarray(a).astype(F32)


def shape_for(axis, K, B=9):
    return (B, K) if axis in (-1, 1) else (K, B)


# --------------------------------------------------------------------- forward
@pytest.mark.parametrize("K", [5, 40])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.0])
def test_soft_equals_float32_rounded(hdt, tau, axis, K):
    shape = shape_for(axis, K)
    x = make_x(shape, hdt, seed=K)
    seed, p = 321, 2**32 - 4
    rng = gs.Philox(seed, counter=p)
    y = gs.gumbel_softmax(x, tau, axis=axis, rng=rng)
    assert y.dtype == hdt and y.shape == shape
    assert rng.counter == p + x.size // K
    ref = gs.gumbel_softmax(up(x), tau, axis=axis, rng=gs.Philox(seed, counter=p)).astype(hdt)
    assert_bitwise_equal_any_nan(y, ref)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("tau", [0.3, 1.0])
def test_hard_and_return_soft(hdt, tau, axis):
    shape = shape_for(axis, 12)
    x = make_x(shape, hdt, seed=2)
    seed, p = 5, 17
    yh = gs.gumbel_softmax(x, tau, hard=True, axis=axis, rng=gs.Philox(seed, counter=p))
    ref_h, ref_s = gs.gumbel_softmax(
        up(x), tau, hard=True, axis=axis, return_soft=True, rng=gs.Philox(seed, counter=p)
    )
    assert_bitwise_equal_any_nan(yh, ref_h.astype(hdt))
    h, s = gs.gumbel_softmax(
        x, tau, hard=True, axis=axis, return_soft=True, rng=gs.Philox(seed, counter=p)
    )
    assert h.dtype == hdt and s.dtype == hdt
    assert_bitwise_equal_any_nan(h, ref_h.astype(hdt))
    assert_bitwise_equal_any_nan(s, ref_s.astype(hdt))
    y, s2 = gs.gumbel_softmax(x, tau, axis=axis, return_soft=True, rng=gs.Philox(seed, counter=p))
    assert s2 is y
    assert_bitwise_equal_any_nan(y, ref_s.astype(hdt))


@pytest.mark.parametrize("hard", [False, True])
def test_out_and_in_place(hdt, hard):
    x = make_x((7, 10), hdt, seed=3)
    ref = gs.gumbel_softmax(up(x), 0.5, hard=hard, rng=gs.Philox(2)).astype(hdt)
    out = np.zeros(x.shape, dtype=hdt)
    assert gs.gumbel_softmax(x, 0.5, hard=hard, rng=gs.Philox(2), out=out) is out
    assert_bitwise_equal_any_nan(out, ref)
    big = np.full((7, 20), 5.0, dtype=hdt)
    view = big[:, ::2]
    assert gs.gumbel_softmax(x, 0.5, hard=hard, rng=gs.Philox(2), out=view) is view
    assert_bitwise_equal_any_nan(view, ref)
    assert np.all(big[:, 1::2].astype(F32) == 5.0)
    xi = x.copy()
    assert gs.gumbel_softmax(xi, 0.5, hard=hard, rng=gs.Philox(2), out=xi) is xi
    assert_bitwise_equal_any_nan(xi, ref)


def test_out_of_other_dtype_rejected(hdt):
    x = make_x((4, 6), hdt, seed=4)
    rng = gs.Philox(1, counter=3)
    with pytest.raises(ValueError, match="out"):
        gs.gumbel_softmax(x, 0.5, rng=rng, out=np.empty((4, 6), dtype=F32))
    assert rng.counter == 3


def test_strided_and_special_values(hdt):
    base = make_x((8, 30), hdt, seed=5)
    base[2, 4] = np.nan  # row 2 (of the ::2 view) -> NaN
    base[3, 0] = -np.inf  # a masked category
    base[5, ::2] = -np.inf  # an all -inf row
    x = base[:, ::2]
    y = gs.gumbel_softmax(x, 0.7, rng=gs.Philox(6))
    ref = gs.gumbel_softmax(up(x), 0.7, rng=gs.Philox(6)).astype(hdt)
    assert_bitwise_equal_any_nan(y, ref)
    assert np.isnan(y[2].astype(F32)).all() and np.isnan(y[5].astype(F32)).all()
    assert y[3, 0] == 0


@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_threaded_call(hdt, tau):
    x = make_x((30, 1100), hdt, seed=23)  # above 2**14 elements
    y, s = gs.gumbel_softmax(x, tau, hard=True, return_soft=True, rng=gs.Philox(24))
    ry, rs = gs.gumbel_softmax(up(x), tau, hard=True, return_soft=True, rng=gs.Philox(24))
    assert_bitwise_equal_any_nan(y, ry.astype(hdt))
    assert_bitwise_equal_any_nan(s, rs.astype(hdt))
    b = gs.relaxed_bernoulli(x, tau, rng=gs.Philox(25))
    assert_bitwise_equal_any_nan(b, gs.relaxed_bernoulli(up(x), tau, rng=gs.Philox(25)).astype(hdt))


def test_wide_range_small_probabilities(hdt):
    # probabilities down to and below the half types' subnormals: the rounding to the
    # half dtype must be the correctly rounded one of the float32 result
    x = np.linspace(-30.0, 4.0, 64).astype(hdt)[None, :].repeat(6, axis=0)
    for tau in (0.25, 1.0, 3.0):
        y = gs.gumbel_softmax(x, tau, rng=gs.Philox(7, counter=1))
        ref = gs.gumbel_softmax(up(x), tau, rng=gs.Philox(7, counter=1)).astype(hdt)
        assert_bitwise_equal_any_nan(y, ref)


SENTINEL = 0xABCD  # a bit pattern no kernel writes (a float16 / bfloat16 NaN payload)


def sentinel_out(shape, hdt, pad=40):
    """A C-contiguous out of shape and dtype hdt at the start of a larger buffer of
    SENTINEL bits (the kernels write into it directly), and the buffer's bits."""
    n = int(np.prod(shape))
    bits = np.full(n + pad, SENTINEL, np.uint16)
    return bits[:n].view(hdt).reshape(shape), bits


@pytest.mark.parametrize("K", [*range(33, 49), 1000, 1003])
@pytest.mark.parametrize("tau", [0.05, 0.5, 1.0, 1e300, "rows"])
def test_fused_rounding_every_row_kind(hdt, tau, K):
    # rows of 33 to 2**15 take the kernel that rounds as it scales (one pass on avx512,
    # its last partial vector masked, and for float16 on avx2): every tail length of 16
    # and 8; tau 0.05, whose tiny results take the two passes, and the tau = 1 division,
    # 1/tau = 0 and a per-row mix of them; rows that are NaN; half subnormal results;
    # nothing written past the end of out
    x = make_x((8, K), hdt, seed=K)
    x[1, 3] = np.nan
    x[2, :] = -np.inf
    x[3, 5] = np.inf
    x[4, ::3] = -np.inf
    x[5] *= 8  # at tau 0.05: results below float32's smallest normal
    if tau == "rows":
        tau = np.array([1.0, 0.5, 1e300, 1.0, 0.05, 1.0, 2.0, 1e300])
    for hard in (False, True):
        y, ybits = sentinel_out(x.shape, hdt)
        soft = gs.gumbel_softmax(
            x, tau, hard=hard, return_soft=True, rng=gs.Philox(9, counter=4), out=y
        )[1]
        ref = gs.gumbel_softmax(
            up(x), tau, hard=hard, return_soft=True, rng=gs.Philox(9, counter=4)
        )
        assert_bitwise_equal_any_nan(y, ref[0].astype(hdt))
        assert_bitwise_equal_any_nan(soft, ref[1].astype(hdt))
        assert (ybits[x.size :] == SENTINEL).all()
    y = soft.astype(F32)
    assert np.isnan(y[1:4]).all() and not np.isnan(y[[0, 4, 5, 6, 7]]).any()
    if isinstance(tau, float) and tau in (0.5, 1.0) and hdt == np.float16:
        tiny = (y > 0) & (y < np.finfo(np.float16).tiny)
        assert tiny.any()  # half subnormals were written


def test_per_row_tau_and_mask(hdt):
    x = make_x((11, 9), hdt, seed=8)
    tau = np.array([1.0, 0.5, 2.0, 1.0, 0.1, 3.0, 1.0, 0.7, 1.0, 0.2, 5.0])
    m = np.random.default_rng(9).random((11, 9)) < 0.7
    m[:, 0] = True
    y = gs.gumbel_softmax(x, tau, rng=gs.Philox(10), mask=m)
    ref = gs.gumbel_softmax(up(x), tau, rng=gs.Philox(10), mask=m).astype(hdt)
    assert_bitwise_equal_any_nan(y, ref)
    ly = gs.log_gumbel_softmax(x, tau[:, None], rng=gs.Philox(10), mask=m)
    lref = gs.log_gumbel_softmax(up(x), tau[:, None], rng=gs.Philox(10), mask=m).astype(hdt)
    assert_bitwise_equal_any_nan(ly, lref)


# -------------------------------------------------------------------- backward
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("tau", [0.4, 1.0, "per_row"])
def test_backward_equals_float32_rounded(hdt, tau, axis):
    shape = shape_for(axis, 10)
    x = make_x(shape, hdt, seed=11)
    gy = make_x(shape, hdt, seed=12, scale=1.0)
    if tau == "per_row":
        tau = np.array([0.4, 1.0, 2.0, 1.0, 0.1, 3.0, 1.0, 0.7, 0.25])
    _, ys = gs.gumbel_softmax(
        x, tau, hard=True, axis=axis, return_soft=True, rng=gs.Philox(13, counter=5)
    )
    assert ys.dtype == hdt
    g = gs.gumbel_softmax_backward(gy, ys, tau, axis=axis)
    assert g.dtype == hdt and g.shape == shape
    ref = gs.gumbel_softmax_backward(up(gy), up(ys), tau, axis=axis).astype(hdt)
    assert_bitwise_equal_any_nan(g, ref)
    out = np.empty(shape, dtype=hdt)
    assert gs.gumbel_softmax_backward(gy, ys, tau, axis=axis, out=out) is out
    assert_bitwise_equal_any_nan(out, ref)
    # the memory-saving backward recomputes the same (half) y_soft
    rng = gs.Philox(13, counter=5)
    gr = gs.gumbel_softmax_backward(gy, logits=x, tau=tau, axis=axis, rng=rng)
    assert rng.counter == 5
    assert_bitwise_equal_any_nan(gr, g)


# ------------------------------------------------------------- other entry points
@pytest.mark.parametrize("tau", [0.05, 1.0, 2.0])
def test_log_gumbel_softmax(hdt, tau):
    x = make_x((9, 33), hdt, seed=14)
    y = gs.log_gumbel_softmax(x, tau, rng=gs.Philox(15, counter=2))
    assert y.dtype == hdt
    ref = gs.log_gumbel_softmax(up(x), tau, rng=gs.Philox(15, counter=2)).astype(hdt)
    assert_bitwise_equal_any_nan(y, ref)


@pytest.mark.parametrize("tau", [0.2, 1.0, "array"])
def test_relaxed_bernoulli(hdt, tau):
    x = make_x((6, 13), hdt, seed=16)
    if tau == "array":
        tau = np.exp(np.random.default_rng(17).uniform(-2, 1, 13))
    rng = gs.Philox(18, counter=9)
    y = gs.relaxed_bernoulli(x, tau, rng=rng)
    assert rng.counter == 9 + 6
    assert y.dtype == hdt
    ref = gs.relaxed_bernoulli(up(x), tau, rng=gs.Philox(18, counter=9)).astype(hdt)
    assert_bitwise_equal_any_nan(y, ref)
    h, s = gs.relaxed_bernoulli(x, tau, hard=True, return_soft=True, rng=gs.Philox(18, counter=9))
    rh, rs = gs.relaxed_bernoulli(
        up(x), tau, hard=True, return_soft=True, rng=gs.Philox(18, counter=9)
    )
    assert_bitwise_equal_any_nan(h, rh.astype(hdt))
    assert_bitwise_equal_any_nan(s, rs.astype(hdt))
    out = np.empty(x.shape, dtype=hdt)
    assert gs.relaxed_bernoulli(x, tau, rng=gs.Philox(18, counter=9), out=out) is out
    assert_bitwise_equal_any_nan(out, ref)


@pytest.mark.parametrize("shape", [(50,), (7, 33)], ids=str)
def test_gumbel_noise(hdt, shape):
    rng = gs.Philox(19, counter=2**32 - 1)
    g = gs.gumbel(shape, dtype=hdt, rng=rng)
    assert g.dtype == hdt and g.shape == shape
    assert rng.counter == 2**32 - 1 + int(np.prod(shape[:-1]))
    ref = gs.gumbel(shape, dtype=F32, rng=gs.Philox(19, counter=2**32 - 1)).astype(hdt)
    assert_bitwise_equal_any_nan(g, ref)
    out = np.empty(shape, dtype=hdt)
    assert gs.gumbel(shape, rng=gs.Philox(19, counter=2**32 - 1), out=out) is out
    assert_bitwise_equal_any_nan(out, ref)


@pytest.mark.parametrize("axis", [-1, 0])
def test_categorical_and_top_k(hdt, axis):
    # coarse half logits produce ties in x; the float32 stream decides as for float32
    shape = shape_for(axis, 16, B=40)
    x = make_x(shape, hdt, seed=20, scale=1.0)
    c = gs.categorical(x, axis=axis, rng=gs.Philox(21))
    assert c.dtype == np.int64
    assert_bitwise_equal_any_nan(c, gs.categorical(up(x), axis=axis, rng=gs.Philox(21)))
    t = gs.top_k(x, 4, axis=axis, rng=gs.Philox(21))
    assert_bitwise_equal_any_nan(t, gs.top_k(up(x), 4, axis=axis, rng=gs.Philox(21)))
    m = np.random.default_rng(22).random(shape) < 0.5
    assert_bitwise_equal_any_nan(
        gs.categorical(x, axis=axis, rng=gs.Philox(21), mask=m),
        gs.categorical(up(x), axis=axis, rng=gs.Philox(21), mask=m),
    )


def test_zero_d_half_keeps_its_shape(hdt):
    dtype = hdt
    x = np.array(0.5, dtype)
    y = gs.relaxed_bernoulli(x, rng=1)
    assert y.shape == () and y.dtype == np.dtype(dtype)
    assert y == np.array(gs.relaxed_bernoulli(np.float32(0.5), rng=1)).astype(dtype)
    b = gs.relaxed_bernoulli_backward(np.array(1, dtype), np.array(0.5, dtype))
    assert b.shape == () and b.dtype == np.dtype(dtype)
    c = gs.concrete_log_prob(np.array([0.25, 0.75], dtype), np.zeros(2, dtype))
    assert c.shape == () and c.dtype == np.dtype(dtype)


def test_byte_swapped_float16_is_float16():
    # A big-endian float16 array (read from a file, say) holds the same values as a native
    # one: every function gives the native input's result, bit for bit, as native float16
    # (as byte-swapped float32 gives native float32).  The result used to be labelled
    # '>f2' while holding native bits: silently wrong values.
    x = random_logits((5, 7), np.float16, 4)
    xs = x.astype(x.dtype.newbyteorder("S"))
    g = random_logits((5, 7), np.float16, 5)
    gsw = g.astype(g.dtype.newbyteorder("S"))
    y = gs.gumbel_softmax(x, 0.7, rng=1)
    ys = y.astype(y.dtype.newbyteorder("S"))
    h = np.eye(7, dtype=np.float16)[np.argmax(x, -1)]
    idx = np.argmax(x, -1)
    calls = {
        "gumbel_softmax": lambda a, b, c: gs.gumbel_softmax(a, 0.7, rng=5),
        "log_gumbel_softmax": lambda a, b, c: gs.log_gumbel_softmax(a, 0.7, rng=5),
        "relaxed_top_k": lambda a, b, c: gs.relaxed_top_k(a, 2, 0.7, rng=5),
        "relaxed_bernoulli": lambda a, b, c: gs.relaxed_bernoulli(a, 0.7, rng=5),
        "conditional_gumbel": lambda a, b, c: gs.conditional_gumbel(a, idx, rng=5),
        "gumbel_softmax_backward": lambda a, b, c: gs.gumbel_softmax_backward(b, c, 0.7),
        "recompute": lambda a, b, c: gs.gumbel_softmax_backward(b, tau=0.7, logits=a, rng=5),
        "relaxed_bernoulli_backward": lambda a, b, c: gs.relaxed_bernoulli_backward(b, c),
        "relaxed_top_k_backward": lambda a, b, c: gs.relaxed_top_k_backward(b, a, 2, rng=5),
        "gumbel_rao_backward": lambda a, b, c: gs.gumbel_rao_backward(b, a, h, rng=5),
        "reinmax_backward": lambda a, b, c: gs.reinmax_backward(b, a, h, 1.5),
        "concrete_log_prob": lambda a, b, c: gs.concrete_log_prob(c, a),
    }
    for name, call in calls.items():
        expected, got = call(x, g, y), call(xs, gsw, ys)
        assert got.dtype == np.float16 and got.dtype.isnative, name
        assert_bitwise_equal_any_nan(got, expected)
    for noise in (gs.gumbel, gs.logistic):
        got = noise((3, 4), dtype=">f2", rng=2)
        assert got.dtype == np.float16 and got.dtype.isnative
        assert_bitwise_equal_any_nan(got, noise((3, 4), dtype=np.float16, rng=2))


def _backward_calls(a, b):
    """Each backward function on a gradient of dtype a and data of dtype b (docs/user-guide.md,
    gs.gumbel_softmax_backward: the result dtype rule, shared by every backward)."""
    g = np.ones((2, 3)).astype(a)
    p = np.full((2, 3), 0.25).astype(b)
    x = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]]).astype(b)
    hot = np.eye(3)[[2, 1]].astype(b)
    return {
        "gumbel_softmax_backward": lambda: gs.gumbel_softmax_backward(g, p, 0.5),
        "gumbel_softmax_backward, logits": lambda: gs.gumbel_softmax_backward(
            g, logits=x, tau=0.5, rng=3
        ),
        "relaxed_bernoulli_backward": lambda: gs.relaxed_bernoulli_backward(g, p, 0.5),
        "relaxed_top_k_backward": lambda: gs.relaxed_top_k_backward(g, x, 2, rng=3),
        "gumbel_rao_backward": lambda: gs.gumbel_rao_backward(g, x, hot, samples=2, rng=3),
        "reinmax_backward": lambda: gs.reinmax_backward(g, x, hot, 1.5),
    }


def _half_dtypes():
    out = [np.dtype(np.float16)]
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes is a test peer
        return out
    return out + [np.dtype(ml_dtypes.bfloat16)]


@pytest.mark.parametrize("b", ["float16", "bfloat16", "float32", "float64", "int64", "bool"])
@pytest.mark.parametrize("a", ["float16", "bfloat16", "float32", "float64", "int64", "bool"])
def test_backward_result_dtype_rule(a, b):
    # The documented rule, written out: float64 when either input is float64 or not a
    # float (integers and bools are taken as float64), the half dtype when both inputs
    # are that half dtype, float32 otherwise (float32 and halves mixed).
    halves = {d.name: d for d in _half_dtypes()}
    if "bfloat16" in (a, b) and "bfloat16" not in halves:
        pytest.skip("bfloat16 needs ml_dtypes")
    da, db = (halves[n] if n in halves else np.dtype(n) for n in (a, b))
    floats = ("float16", "bfloat16", "float32")
    if a not in floats or b not in floats:
        want = np.dtype(np.float64)
    elif a == b:
        want = da
    else:
        want = np.dtype(np.float32)
    for name, call in _backward_calls(da, db).items():
        assert call().dtype == want, name
