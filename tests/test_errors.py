"""Bad arguments and special values (docs/contract.md "Errors", "Special values" and "Choices where
the contract is silent").

Every rejected call must raise the documented exception naming the argument, leave a
pre-filled ``out`` array untouched byte for byte, and reserve no rows of a shared
``gs.Philox``.
"""

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal, random_logits, run_python

DTYPES = [np.float32, np.float64]
SENTINEL = 7.25


def _logits(shape=(6, 5), dtype=np.float64, seed=0):
    return random_logits(shape, dtype, seed)


def _one_hot(shape=(6, 5)):
    """A one-hot y_hard for _logits() (finite everywhere)."""
    return np.eye(shape[-1])[np.arange(shape[0]) % shape[-1]]


def _filled(shape, dtype=np.float64):
    out = np.empty(shape, dtype=dtype)
    out[...] = SENTINEL
    return out


def assert_rejected(exc, match, fn, *, guard=(), rng=None):
    """fn() raises exc matching `match`; the arrays in guard keep their bytes and rng its
    counter."""
    before = [np.array(g, copy=True).tobytes() for g in guard]
    counter = rng.counter if rng is not None else None
    with pytest.raises(exc, match=match):
        fn()
    for g, b in zip(guard, before):
        assert np.array(g, copy=True).tobytes() == b, "an array was written"
    if rng is not None:
        assert rng.counter == counter, "rows were reserved by a rejected call"


# --------------------------------------------------------------------------------------
# tau
# --------------------------------------------------------------------------------------
BAD_TAU_VALUE = [
    0,
    0.0,
    -0.0,
    -1,
    -1.5,
    np.nan,
    np.inf,
    -np.inf,
    np.float32(0.0),
    np.float64(np.nan),
]
BAD_TAU_TYPE = [
    "1",
    1j,
    complex(1, 0),
    np.complex128(1.0),
    np.array(["1.0"] * 6),
    np.array([1j] * 6),
    np.array([True] * 6),
    True,
    False,
    np.bool_(True),
    None,
]
# Per-row tau arrays that do not fit the batch shape (6,) of _logits(), or hold a bad value.
BAD_TAU_ARRAY = [
    np.array([1.0, 2.0]),
    np.ones((6, 2)),
    np.ones((2, 6, 1)),
    np.array([1.0] * 5 + [0.0]),
    np.array([np.nan] + [1.0] * 5),
    np.array([np.inf] * 6),
    np.array([-1.0] * 6),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", BAD_TAU_VALUE, ids=repr)
def test_tau_bad_value(tau, hard, dtype):
    x = _logits(dtype=dtype)
    out = _filled(x.shape, dtype)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        ValueError,
        "tau",
        lambda: gs.gumbel_softmax(x, tau, hard=hard, rng=rng, out=out),
        guard=[out, x],
        rng=rng,
    )
    assert_rejected(
        ValueError,
        "tau",
        lambda: gs.gumbel_softmax(x, tau=tau, hard=hard, rng=rng, out=out, return_soft=True),
        guard=[out, x],
        rng=rng,
    )


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", BAD_TAU_TYPE, ids=repr)
def test_tau_bad_type(tau, hard):
    x = _logits()
    out = _filled(x.shape)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        TypeError,
        "tau",
        lambda: gs.gumbel_softmax(x, tau, hard=hard, rng=rng, out=out),
        guard=[out, x],
        rng=rng,
    )


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", BAD_TAU_ARRAY, ids=repr)
def test_tau_bad_array(tau, hard):
    x = _logits()
    out = _filled(x.shape)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        ValueError,
        "tau",
        lambda: gs.gumbel_softmax(x, tau, hard=hard, rng=rng, out=out),
        guard=[out, x],
        rng=rng,
    )
    assert_rejected(
        ValueError, "tau", lambda: gs.gumbel_softmax_backward(x, x, tau, out=out), guard=[out, x]
    )


@pytest.mark.parametrize("tau", BAD_TAU_VALUE, ids=repr)
def test_backward_tau_bad_value(tau):
    gy, ys = _logits(seed=1), _logits(seed=2)
    out = _filled(gy.shape)
    assert_rejected(
        ValueError,
        "tau",
        lambda: gs.gumbel_softmax_backward(gy, ys, tau, out=out),
        guard=[out, gy, ys],
    )


@pytest.mark.parametrize("tau", BAD_TAU_TYPE, ids=repr)
def test_backward_tau_bad_type(tau):
    gy, ys = _logits(seed=1), _logits(seed=2)
    out = _filled(gy.shape)
    assert_rejected(
        TypeError,
        "tau",
        lambda: gs.gumbel_softmax_backward(gy, ys, tau=tau, out=out),
        guard=[out, gy, ys],
    )


@pytest.mark.parametrize("tau", [2, np.int64(2), np.float32(2.0), np.float64(2.0), 2.0])
def test_tau_real_scalars_accepted(tau):
    x = _logits()
    ref = gs.gumbel_softmax(x, 2.0, rng=3)
    assert_bitwise_equal(gs.gumbel_softmax(x, tau, rng=3), ref)


# --------------------------------------------------------------------------------------
# logits dtype and shape
# --------------------------------------------------------------------------------------
def _bad_logits():
    base = _logits()
    return {
        "complex64": base.astype(np.complex64),
        "complex128": base.astype(np.complex128),
        "object": base.astype(object),
        "str": base.astype(str),
        "bytes": base.astype("S8"),
        "clongdouble": base.astype(np.clongdouble),
        "longdouble": base.astype(np.longdouble),
    }


@pytest.mark.parametrize("name", list(_bad_logits()))
@pytest.mark.parametrize("hard", [False, True])
def test_logits_bad_dtype(name, hard):
    x = _bad_logits()[name]
    if x.dtype == np.longdouble and np.finfo(np.longdouble).bits == 64:
        x = x.astype(np.complex64)  # longdouble is float64 here: test complex64 instead
    out = np.empty_like(x)
    out[...] = x[::-1]  # same shape and dtype, so only logits is wrong
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        TypeError,
        "logits",
        lambda: gs.gumbel_softmax(x, 0.5, hard=hard, rng=rng, out=out),
        guard=[out],
        rng=rng,
    )
    assert_rejected(TypeError, "logits", lambda: gs.gumbel_softmax(x, rng=rng), rng=rng)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_])
@pytest.mark.parametrize("hard", [False, True])
def test_integer_and_bool_logits_become_float64(dtype, hard):
    x = (np.arange(24).reshape(4, 6) % 5).astype(dtype)
    rng = gs.Philox(8, counter=2)
    y = gs.gumbel_softmax(x, 0.5, hard=hard, rng=rng)
    assert y.dtype == np.float64
    assert rng.counter == 2 + 4
    ref = gs.gumbel_softmax(x.astype(np.float64), 0.5, hard=hard, rng=gs.Philox(8, counter=2))
    assert_bitwise_equal(y, ref)


@pytest.mark.parametrize(
    "x",
    [np.array(1.0), np.float64(1.0), np.array(1.0, np.float32)],
    ids=["0d-array", "scalar", "0d-float32"],
)
def test_logits_0d(x):
    rng = gs.Philox(1, counter=10)
    out = np.array(SENTINEL, dtype=np.asarray(x).dtype)
    assert_rejected(
        ValueError, "logits", lambda: gs.gumbel_softmax(x, rng=rng, out=out), guard=[out], rng=rng
    )
    assert_rejected(ValueError, "logits", lambda: gs.gumbel_softmax(x, hard=True, rng=rng), rng=rng)


@pytest.mark.parametrize("axis", [2, -3, 5, -100])
@pytest.mark.parametrize("hard", [False, True])
def test_axis_out_of_range(axis, hard):
    x = _logits()
    out = _filled(x.shape)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        np.exceptions.AxisError,
        "axis",
        lambda: gs.gumbel_softmax(x, axis=axis, hard=hard, rng=rng, out=out),
        guard=[out, x],
        rng=rng,
    )
    assert issubclass(np.exceptions.AxisError, ValueError)


def test_backward_axis_out_of_range():
    gy, ys = _logits(seed=1), _logits(seed=2)
    out = _filled(gy.shape)
    assert_rejected(
        np.exceptions.AxisError,
        "axis",
        lambda: gs.gumbel_softmax_backward(gy, ys, axis=2, out=out),
        guard=[out, gy, ys],
    )


@pytest.mark.parametrize("shape,axis", [((3, 0), -1), ((2, 0, 4), 1), ((0, 3), 0)])
@pytest.mark.parametrize("hard", [False, True])
def test_size0_axis(shape, axis, hard):
    x = np.zeros(shape)
    out = _filled(shape)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        ValueError,
        "axis",
        lambda: gs.gumbel_softmax(x, axis=axis, hard=hard, rng=rng, out=out),
        guard=[out],
        rng=rng,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape,axis", [((0, 5), -1), ((4, 0, 5), -1), ((5, 0), 0), ((3, 0, 2), 2)])
def test_size0_batch_is_empty(shape, axis, hard, dtype):
    x = np.zeros(shape, dtype=dtype)
    rng = gs.Philox(1, counter=10)
    y = gs.gumbel_softmax(x, axis=axis, hard=hard, rng=rng)
    assert y.shape == shape and y.dtype == dtype
    y, ys = gs.gumbel_softmax(x, axis=axis, hard=hard, rng=rng, return_soft=True)
    assert y.shape == ys.shape == shape and y.dtype == ys.dtype == dtype
    out = np.empty(shape, dtype)
    assert gs.gumbel_softmax(x, axis=axis, hard=hard, rng=rng, out=out) is out
    assert rng.counter == 10
    g = gs.gumbel(shape if axis in (-1, len(shape) - 1) else shape[::-1], dtype=dtype, rng=rng)
    assert g.size == 0 and g.dtype == dtype
    assert rng.counter == 10
    gb = gs.gumbel_softmax_backward(x, x, axis=axis)
    assert gb.shape == shape and gb.dtype == dtype


# --------------------------------------------------------------------------------------
# out
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("return_soft", [False, True])
@pytest.mark.parametrize(
    "case", ["shape", "shape-transposed", "ndim", "dtype32", "dtype-int", "readonly"]
)
def test_out_bad_array(case, hard, return_soft):
    x = _logits()
    if case == "shape":
        out = _filled((6, 4))
    elif case == "shape-transposed":
        out = _filled((5, 6))
    elif case == "ndim":
        out = _filled((1, 6, 5))
    elif case == "dtype32":
        out = _filled(x.shape, np.float32)
    elif case == "dtype-int":
        out = np.full(x.shape, 7, dtype=np.int64)
    else:
        out = _filled(x.shape)
        out.setflags(write=False)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        ValueError,
        "out",
        lambda: gs.gumbel_softmax(x, hard=hard, rng=rng, out=out, return_soft=return_soft),
        guard=[out, x],
        rng=rng,
    )


def test_out_wrong_dtype_float32_logits():
    x = _logits(dtype=np.float32)
    out = _filled(x.shape, np.float64)
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        ValueError, "out", lambda: gs.gumbel_softmax(x, rng=rng, out=out), guard=[out, x], rng=rng
    )


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("case", ["shifted", "shifted-back", "2d-rows", "2d-cols", "transposed"])
def test_out_partial_overlap(case, hard):
    a = _logits((40,), seed=3)
    if case == "shifted":
        x, out = a[:-1], a[1:]
    elif case == "shifted-back":
        x, out = a[1:], a[:-1]
    elif case == "2d-rows":
        m = a.reshape(8, 5)
        x, out = m[:-1], m[1:]
    elif case == "2d-cols":
        m = a.reshape(4, 10)
        x, out = m[:, 0:8], m[:, 2:10]
    else:  # the same elements in another order: not "exactly" the input
        m = a[:36].reshape(6, 6)
        x, out = m, m.T
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        ValueError,
        "out",
        lambda: gs.gumbel_softmax(x, hard=hard, rng=rng, out=out),
        guard=[a],
        rng=rng,
    )


@pytest.mark.parametrize(
    "out", [[[SENTINEL] * 5] * 6, (1.0, 2.0), "out", 3.0], ids=["list", "tuple", "str", "float"]
)
def test_out_not_ndarray(out):
    x = _logits()
    rng = gs.Philox(1, counter=10)
    before = repr(out)
    assert_rejected(
        TypeError, "out", lambda: gs.gumbel_softmax(x, rng=rng, out=out), guard=[x], rng=rng
    )
    assert repr(out) == before


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("view", ["contiguous", "strided"])
def test_out_is_logits_in_place(view, hard, dtype):
    base = _logits((6, 10), dtype=dtype)
    x = base if view == "contiguous" else base[::-1, ::2]
    expect = gs.gumbel_softmax(x.copy(), 0.5, hard=hard, rng=gs.Philox(21, counter=4))
    rng = gs.Philox(21, counter=4)
    y = gs.gumbel_softmax(x, 0.5, hard=hard, rng=rng, out=x)
    assert y is x
    assert rng.counter == 4 + 6
    assert_bitwise_equal(np.ascontiguousarray(x), expect)
    if view == "strided":  # the other elements of the base are untouched
        assert_bitwise_equal(base[:, 1::2], _logits((6, 10), dtype=dtype)[:, 1::2])


def test_out_receives_y_with_return_soft():
    x = _logits()
    out = _filled(x.shape)
    y, ys = gs.gumbel_softmax(x, 0.5, hard=True, rng=5, out=out, return_soft=True)
    assert y is out
    assert set(np.unique(out)) == {0.0, 1.0}
    y2, ys2 = gs.gumbel_softmax(x, 0.5, rng=5, out=_filled(x.shape), return_soft=True)
    assert ys2 is y2
    assert_bitwise_equal(ys, ys2)


# --------------------------------------------------------------------------------------
# backward
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shapes",
    [((6, 5), (6, 4)), ((6, 5), (5, 6)), ((6, 5), (1, 6, 5)), ((6, 5), (6, 1)), ((6, 5), (5,))],
)
def test_backward_shape_mismatch(shapes):
    gy = _logits(shapes[0], seed=1)
    ys = _logits(shapes[1], seed=2)
    out = _filled(shapes[0])
    assert_rejected(
        ValueError,
        "grad_y|y_soft",
        lambda: gs.gumbel_softmax_backward(gy, ys, out=out),
        guard=[out, gy, ys],
    )
    assert_rejected(
        ValueError, "grad_y|y_soft", lambda: gs.gumbel_softmax_backward(ys, gy), guard=[gy, ys]
    )


@pytest.mark.parametrize(
    "case",
    ["shape", "dtype32", "dtype64-for-float32", "readonly", "overlap-grad_y", "overlap-y_soft"],
)
def test_backward_bad_out(case):
    dt = np.float32 if case == "dtype64-for-float32" else np.float64
    a = _logits((2, 6, 5), dtype=dt, seed=1)
    gy, ys = a[0], a[1]
    guard = [a]
    if case == "shape":
        out = _filled((6, 4))
    elif case == "dtype32":
        out = _filled((6, 5), np.float32)
    elif case == "dtype64-for-float32":
        out = _filled((6, 5), np.float64)
    elif case == "readonly":
        out = _filled((6, 5))
        out.setflags(write=False)
    elif case == "overlap-grad_y":
        out = a.reshape(-1)[1:31].reshape(6, 5)
    else:
        out = a.reshape(-1)[29:59].reshape(6, 5)
    if not case.startswith("overlap"):
        guard.append(out)
    assert_rejected(
        ValueError, "out", lambda: gs.gumbel_softmax_backward(gy, ys, out=out), guard=guard
    )


def test_backward_out_not_ndarray():
    gy, ys = _logits(seed=1), _logits(seed=2)
    assert_rejected(
        TypeError,
        "out",
        lambda: gs.gumbel_softmax_backward(gy, ys, out=gy.tolist()),
        guard=[gy, ys],
    )


@pytest.mark.parametrize("dtype", [np.complex128, object, np.complex64])
def test_backward_bad_dtype(dtype):
    gy, ys = _logits(seed=1), _logits(seed=2)
    bad = gy.astype(dtype)
    assert_rejected(
        TypeError, "grad_y", lambda: gs.gumbel_softmax_backward(bad, ys), guard=[bad, ys]
    )
    assert_rejected(
        TypeError, "y_soft", lambda: gs.gumbel_softmax_backward(ys, bad), guard=[bad, ys]
    )


@pytest.mark.parametrize("which", ["grad_y", "y_soft"])
def test_backward_in_place(which):
    gy, ys = _logits(seed=1), np.random.default_rng(2).random((6, 5))
    expect = gs.gumbel_softmax_backward(gy, ys, 0.5)
    target = gy if which == "grad_y" else ys
    got = gs.gumbel_softmax_backward(gy, ys, 0.5, out=target)
    assert got is target
    assert_bitwise_equal(target, expect)


def test_backward_dtype_rule():
    g32 = _logits(dtype=np.float32, seed=1)
    y32 = _logits(dtype=np.float32, seed=2)
    assert gs.gumbel_softmax_backward(g32, y32).dtype == np.float32
    assert gs.gumbel_softmax_backward(g32, y32.astype(np.float64)).dtype == np.float64
    assert gs.gumbel_softmax_backward(g32.astype(np.float64), y32).dtype == np.float64


# --------------------------------------------------------------------------------------
# gumbel
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, -1), (-2,), (-1, 4)])
def test_gumbel_negative_dims(shape):
    rng = gs.Philox(1, counter=10)
    assert_rejected(ValueError, "shape", lambda: gs.gumbel(shape, rng=rng), rng=rng)


def test_gumbel_0d_shape():
    rng = gs.Philox(1, counter=10)
    out = np.array(SENTINEL, dtype=np.float32)
    assert_rejected(ValueError, "shape", lambda: gs.gumbel((), rng=rng), rng=rng)
    assert_rejected(
        ValueError, "shape|out", lambda: gs.gumbel((), rng=rng, out=out), guard=[out], rng=rng
    )


@pytest.mark.parametrize(
    "dtype", [np.int32, np.clongdouble, np.complex64, np.longdouble, object, "U4", np.bool_]
)
def test_gumbel_bad_dtype(dtype):
    if np.dtype(dtype) == np.float64:  # longdouble is float64 on some platforms
        dtype = np.complex128
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        (TypeError, ValueError), "dtype", lambda: gs.gumbel((4, 3), dtype=dtype, rng=rng), rng=rng
    )


@pytest.mark.parametrize("case", ["shape", "readonly", "dtype-mismatch", "dtype-int"])
def test_gumbel_bad_out(case):
    rng = gs.Philox(1, counter=10)
    kw = {}
    if case == "shape":
        out = _filled((4, 2), np.float32)
    elif case == "readonly":
        out = _filled((4, 3), np.float32)
        out.setflags(write=False)
    elif case == "dtype-mismatch":
        out = _filled((4, 3), np.float32)
        kw["dtype"] = np.float64
    else:
        out = np.zeros((4, 3), np.int32)
    # an int32 out or an out that contradicts dtype= may be reported as either
    exc = ValueError if case in ("shape", "readonly") else (TypeError, ValueError)
    assert_rejected(
        exc, "out|dtype", lambda: gs.gumbel((4, 3), rng=rng, out=out, **kw), guard=[out], rng=rng
    )


def test_gumbel_out_not_ndarray():
    rng = gs.Philox(1, counter=10)
    assert_rejected(
        TypeError, "out", lambda: gs.gumbel((2, 3), rng=rng, out=[[0.0] * 3] * 2), rng=rng
    )


def test_gumbel_out_dtype_default():
    out = _filled((4, 3), np.float64)
    g = gs.gumbel((4, 3), rng=gs.Philox(2), out=out)
    assert g is out
    assert_bitwise_equal(out, gs.gumbel((4, 3), dtype=np.float64, rng=gs.Philox(2)))
    assert gs.gumbel((4, 3), rng=gs.Philox(2)).dtype == np.float32


# --------------------------------------------------------------------------------------
# seed and counter
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [-1, 2**64, 2**70, -(2**63)])
def test_seed_out_of_range(seed):
    with pytest.raises(ValueError, match="seed"):
        gs.Philox(seed)
    # an int seed given to a sampler is checked the same way, before anything happens
    x = _logits()
    out = _filled(x.shape)
    assert_rejected(
        ValueError, "seed", lambda: gs.gumbel_softmax(x, rng=seed, out=out), guard=[out, x]
    )
    g = _filled((3, 4), np.float32)
    assert_rejected(ValueError, "seed", lambda: gs.gumbel((3, 4), rng=seed, out=g), guard=[g])


def _rng_calls():
    """Every entry point that takes ``rng``, as name -> call(rng), on valid arguments
    otherwise (float32 C-contiguous rows, which the samplers' C++ fast path takes)."""
    x = _logits((6, 5), np.float32)
    y = np.eye(5, dtype=np.float32)[np.arange(6) % 5]
    g = np.ones_like(x)
    return {
        "gumbel": lambda r: gs.gumbel((6, 5), rng=r),
        "logistic": lambda r: gs.logistic((6, 5), rng=r),
        "gumbel_softmax": lambda r: gs.gumbel_softmax(x, rng=r),
        "gumbel_softmax_hard": lambda r: gs.gumbel_softmax(x, hard=True, rng=r),
        "log_gumbel_softmax": lambda r: gs.log_gumbel_softmax(x, rng=r),
        "categorical": lambda r: gs.categorical(x, rng=r),
        "top_k": lambda r: gs.top_k(x, 2, rng=r),
        "relaxed_top_k": lambda r: gs.relaxed_top_k(x, 2, rng=r),
        "relaxed_top_k_backward": lambda r: gs.relaxed_top_k_backward(g, x, 2, rng=r),
        "relaxed_bernoulli": lambda r: gs.relaxed_bernoulli(x, rng=r),
        "conditional_gumbel": lambda r: gs.conditional_gumbel(x, np.arange(6) % 5, rng=r),
        "gumbel_softmax_backward": lambda r: gs.gumbel_softmax_backward(g, None, logits=x, rng=r),
        "gumbel_rao_backward": lambda r: gs.gumbel_rao_backward(g, x, y, rng=r),
        "GumbelSoftmax": lambda r: gs.GumbelSoftmax(rng=r),
    }


@pytest.mark.parametrize("seed", [-1, 2**64, np.int64(-5)])
@pytest.mark.parametrize("entry", sorted(_rng_calls()))
def test_int_rng_out_of_range_names_rng(entry, seed):
    """An int ``rng`` outside [0, 2**64) raises ValueError naming the argument and the
    seed, on every entry point that takes one (the fast paths decline it)."""
    with pytest.raises(ValueError, match=r"^rng: seed must be in \[0, 2\*\*64\), got -?\d+$"):
        _rng_calls()[entry](seed)


@pytest.mark.parametrize("rng", [1.5, "a", True, [1]])
@pytest.mark.parametrize("entry", sorted(_rng_calls()))
def test_rng_of_another_type_names_rng(entry, rng):
    with pytest.raises(TypeError, match="^rng must be None, an int seed"):
        _rng_calls()[entry](rng)


def test_dask_int_rng_out_of_range_names_rng():
    gd = pytest.importorskip("gumbel_softmax.dask", exc_type=ImportError)
    x = _logits((6, 5), np.float32)
    for call in (
        lambda r: gd.gumbel((6, 5), chunks=3, rng=r),
        lambda r: gd.gumbel_softmax(x, rng=r),
        lambda r: gd.categorical(x, rng=r),
    ):
        with pytest.raises(ValueError, match=r"^rng: seed must be in \[0, 2\*\*64\)"):
            call(-1)


@pytest.mark.parametrize("seed", [1.5, "x", 2.0, 1j, [1]])
def test_seed_not_integer(seed):
    with pytest.raises(TypeError, match="seed"):
        gs.Philox(seed)


@pytest.mark.parametrize("counter", [-1, 2**64, 2**80])
def test_counter_out_of_range(counter):
    with pytest.raises(ValueError, match="counter"):
        gs.Philox(1, counter=counter)


@pytest.mark.parametrize("counter", [1.5, "x", 3.0])
def test_counter_not_integer(counter):
    with pytest.raises(TypeError, match="counter"):
        gs.Philox(1, counter=counter)


def test_seed_and_counter_bounds_accepted():
    r = gs.Philox(2**64 - 1, counter=2**64 - 1)
    assert r.seed == 2**64 - 1 and r.counter == 2**64 - 1
    assert tuple(int(k) for k in r.key) == (0xFFFFFFFF, 0xFFFFFFFF)
    r = gs.Philox(np.uint64(2**64 - 2), counter=np.uint64(5))
    assert r.seed == 2**64 - 2 and r.counter == 5
    assert tuple(int(k) for k in r.key) == (0xFFFFFFFE, 0xFFFFFFFF)
    r = gs.Philox(0)
    assert r.seed == 0 and r.counter == 0 and tuple(int(k) for k in r.key) == (0, 0)


def test_reserve_past_end():
    rng = gs.Philox(1, counter=2**64 - 5)
    for n in (10, 2**63, 2**64 - 1):
        with pytest.raises(OverflowError, match="counter"):
            rng.reserve(n)
        assert rng.counter == 2**64 - 5
    assert rng.reserve(4) == 2**64 - 5
    assert rng.counter == 2**64 - 1
    with pytest.raises(OverflowError, match="counter"):
        rng.reserve(2)
    assert rng.counter == 2**64 - 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_sampler_past_end(hard, dtype):
    x = _logits((10, 4), dtype=dtype)
    out = _filled(x.shape, dtype)
    rng = gs.Philox(1, counter=2**64 - 3)
    assert_rejected(
        OverflowError,
        "counter",
        lambda: gs.gumbel_softmax(x, hard=hard, rng=rng, out=out),
        guard=[out, x],
        rng=rng,
    )
    assert_rejected(
        OverflowError,
        "counter",
        lambda: gs.gumbel_softmax(x.T, axis=0, hard=hard, rng=rng, out=out.T),
        guard=[out, x],
        rng=rng,
    )
    g = _filled((10, 4), dtype)
    assert_rejected(
        OverflowError, "counter", lambda: gs.gumbel((10, 4), rng=rng, out=g), guard=[g], rng=rng
    )
    # two rows still fit below 2**64 - 1; the last row has q >> 32 == 0xffffffff
    y = gs.gumbel_softmax(x[:2], hard=hard, rng=rng)
    assert rng.counter == 2**64 - 1
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------------------
# philox4x32
# --------------------------------------------------------------------------------------
KEY = np.array([1, 2], dtype=np.uint32)


@pytest.mark.parametrize("shape", [(3,), (5, 3), (2, 5), (4, 0), (2, 4, 1)])
def test_philox4x32_wrong_last_dim(shape):
    with pytest.raises(ValueError, match="counters"):
        gs.philox4x32(np.zeros(shape, dtype=np.uint32), KEY)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, object, np.bool_])
def test_philox4x32_non_integer_counters(dtype):
    with pytest.raises(TypeError, match="counters"):
        gs.philox4x32(np.zeros((2, 4), dtype=dtype), KEY)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_philox4x32_non_integer_key(dtype):
    with pytest.raises(TypeError, match="key"):
        gs.philox4x32(np.zeros((2, 4), dtype=np.uint32), np.zeros(2, dtype=dtype))


@pytest.mark.parametrize(
    "key",
    [np.zeros(3, np.uint32), np.zeros((2, 2), np.uint32), np.zeros(1, np.uint32), np.uint32(0)],
    ids=["3", "2x2", "1", "0d"],
)
def test_philox4x32_key_wrong_shape(key):
    with pytest.raises(ValueError, match="key"):
        gs.philox4x32(np.zeros((2, 4), dtype=np.uint32), key)


@pytest.mark.parametrize(
    "key",
    [
        np.array([0, 2**32], np.uint64),
        np.array([2**40, 0], np.uint64),
        np.array([0, 2**64 - 1], np.uint64),
    ],
    ids=["2**32", "2**40", "2**64-1"],
)
def test_philox4x32_key_out_of_range(key):
    with pytest.raises(ValueError, match="key"):
        gs.philox4x32(np.zeros((2, 4), dtype=np.uint32), key)


@pytest.mark.parametrize("value", [2**32, 2**63])
def test_philox4x32_counter_values_out_of_range(value):
    c = np.zeros((2, 4), dtype=np.uint64)
    c[1, 2] = value
    with pytest.raises(ValueError, match="counters"):
        gs.philox4x32(c, KEY)


def test_philox4x32_wide_unsigned_in_range_ok():
    c = np.arange(8, dtype=np.uint64).reshape(2, 4) + (2**32 - 8)
    got = gs.philox4x32(c, np.array([5, 6], dtype=np.uint64))
    assert got.dtype == np.uint32 and got.shape == (2, 4)
    np.testing.assert_array_equal(
        got, gs.philox4x32(c.astype(np.uint32), np.array([5, 6], np.uint32))
    )


# --------------------------------------------------------------------------------------
# special values
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("axis", [-1, 0])
def test_bad_rows_are_nan_others_unaffected(axis, hard, dtype):
    x = _logits((9, 7), dtype=dtype, seed=11)
    bad = x.copy()
    bad[1, :] = -np.inf  # all -inf
    bad[3, 4] = np.nan  # one NaN
    bad[5, :] = np.nan  # all NaN
    bad[6, 0] = np.inf  # +inf (docs/contract.md: NaN row)
    bad[8, 2] = np.nan
    bad[8, 5] = -np.inf  # NaN together with -inf
    bad_rows = [1, 3, 5, 6, 8]
    good_rows = [0, 2, 4, 7]
    if axis == 0:
        x, bad = x.T.copy(), bad.T.copy()
    ref = gs.gumbel_softmax(x, 0.5, hard=hard, axis=axis, rng=gs.Philox(17, counter=9))
    rng = gs.Philox(17, counter=9)
    y, ys = gs.gumbel_softmax(bad, 0.5, hard=hard, axis=axis, rng=rng, return_soft=True)
    assert rng.counter == 9 + 9
    if axis == 0:
        y, ys, ref = y.T, ys.T, ref.T
    assert np.all(np.isnan(y[bad_rows]))
    assert np.all(np.isnan(ys[bad_rows]))
    assert np.all(np.isfinite(y[good_rows]))
    assert_bitwise_equal(np.ascontiguousarray(y[good_rows]), np.ascontiguousarray(ref[good_rows]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau", [0.05, 1.0, 20.0])
def test_masked_logits_exact_zero(tau, hard, dtype):
    row = np.array([-np.inf, 0.3, -np.inf, 2.0, -1.0, -np.inf, 0.0], dtype=dtype)
    masked = np.isneginf(row)
    x = np.broadcast_to(row, (20000, row.size))
    y, ys = gs.gumbel_softmax(
        x, tau, hard=hard, rng=gs.Philox(23, counter=2**32 - 7), return_soft=True
    )
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(ys))
    assert np.all(y[:, masked] == 0.0)
    assert np.all(ys[:, masked] == 0.0)
    if hard:
        assert np.all(y.sum(axis=-1) == 1.0)
        assert np.all((y == 0.0) | (y == 1.0))
        assert np.all(np.count_nonzero(y[:, ~masked], axis=0) > 0)  # every unmasked wins
    else:
        np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_single_finite_logit(dtype, hard):
    x = np.full((50, 6), -np.inf, dtype=dtype)
    x[np.arange(50), np.arange(50) % 6] = np.random.default_rng(1).standard_normal(50) * 5
    y = gs.gumbel_softmax(x, 0.3, hard=hard, rng=gs.Philox(29))
    expect = np.zeros_like(x)
    expect[np.arange(50), np.arange(50) % 6] = 1.0
    if hard:
        assert_bitwise_equal(y, expect)
    else:  # masked entries exactly 0, the single finite entry (essentially) 1
        assert np.all(y[expect == 0.0] == 0.0)
        np.testing.assert_allclose(y, expect, rtol=4 * np.finfo(dtype).eps, atol=0)


def test_rows_longer_than_2_31_minus_1_are_rejected():
    """Row lengths above 2**31 - 1 raise ValueError (checked on zero-stride views that
    take no memory); nothing is reserved."""
    n = 2**31
    rng = gs.Philox(3)
    x = np.broadcast_to(np.float32(0), (n,))
    with pytest.raises(ValueError, match="logits"):
        gs.gumbel_softmax(x, rng=rng)
    with pytest.raises(ValueError, match="grad_y"):
        gs.gumbel_softmax_backward(x, x)
    with pytest.raises(ValueError, match="shape"):
        gs.gumbel((1, n), rng=rng)
    assert rng.counter == 0


# --------------------------------------------------------------------------------------
# Odd but legal-looking arguments: each is rejected naming its argument, out untouched
# --------------------------------------------------------------------------------------
AXIS_ERROR = getattr(np, "exceptions", np).AxisError
HUGE_INT = 10**400  # a real number, but not a float64


def _with_out(make):
    """make(out) for a float64 out of _logits()' shape, pre-filled; returns (call, out)."""
    out = _filled((6, 5))
    return (lambda: make(out)), out


TAU_TAKERS = {
    "gumbel_softmax": lambda tau, out: gs.gumbel_softmax(_logits(), tau, rng=0, out=out),
    "log_gumbel_softmax": lambda tau, out: gs.log_gumbel_softmax(_logits(), tau, rng=0, out=out),
    "backward": lambda tau, out: gs.gumbel_softmax_backward(
        _logits(seed=1), _logits(seed=2), tau, out=out
    ),
    "recompute": lambda tau, out: gs.gumbel_softmax_backward(
        _logits(seed=1), tau=tau, logits=_logits(), rng=0, out=out
    ),
    "relaxed_bernoulli": lambda tau, out: gs.relaxed_bernoulli(_logits(), tau, rng=0, out=out),
    "relaxed_bernoulli_backward": lambda tau, out: gs.relaxed_bernoulli_backward(
        _logits(seed=1), _logits(seed=2), tau, out=out
    ),
    "concrete_log_prob": lambda tau, out: gs.concrete_log_prob(
        np.full((6, 5), 0.2), _logits(), tau
    ),
    "GumbelSoftmax": lambda tau, out: gs.GumbelSoftmax(tau=tau),
    "gumbel_rao_backward": lambda tau, out: gs.gumbel_rao_backward(
        _logits(seed=1), _logits(), _one_hot(), tau, rng=0, out=out
    ),
    "reinmax_backward": lambda tau, out: gs.reinmax_backward(
        _logits(seed=1), _logits(), _one_hot(), tau, out=out
    ),
    "relaxed_top_k": lambda tau, out: gs.relaxed_top_k(_logits(), 2, tau, rng=0, out=out),
    "relaxed_top_k_backward": lambda tau, out: gs.relaxed_top_k_backward(
        _logits(seed=1), _logits(), 2, tau, rng=0, out=out
    ),
}


@pytest.mark.parametrize("fn", sorted(TAU_TAKERS))
@pytest.mark.parametrize(
    "tau", [HUGE_INT, -HUGE_INT, [1.0, 2.0, HUGE_INT, 1.0, 1.0, 1.0]], ids=["big", "-big", "list"]
)
def test_tau_too_large_for_a_float_names_tau(fn, tau):
    if isinstance(tau, list) and fn.startswith("relaxed_bernoulli"):
        tau = [tau[2]] * 5  # broadcasts against the last axis
    call, out = _with_out(lambda o: TAU_TAKERS[fn](tau, o))
    rng = None
    assert_rejected((ValueError, TypeError), "tau", call, guard=[out], rng=rng)


@pytest.mark.parametrize("arg", ["tau0", "min_tau", "rate"])
def test_anneal_tau_huge_ints(arg):
    with pytest.raises(ValueError, match=arg):
        gs.anneal_tau(10, **{arg: HUGE_INT})
    # a huge step is a step: the schedule has reached its floor
    assert gs.anneal_tau(HUGE_INT, rate=1e-4, min_tau=0.25) == 0.25
    assert gs.anneal_tau(HUGE_INT, rate=0.0, tau0=2.0, min_tau=0.25) == 2.0


AXIS_TAKERS = {
    "gumbel_softmax": lambda ax, out: gs.gumbel_softmax(_logits(), axis=ax, rng=0, out=out),
    "log_gumbel_softmax": lambda ax, out: gs.log_gumbel_softmax(_logits(), axis=ax, rng=0, out=out),
    "categorical": lambda ax, out: gs.categorical(_logits(), axis=ax, rng=0),
    "top_k": lambda ax, out: gs.top_k(_logits(), 1, axis=ax, rng=0),
    "backward": lambda ax, out: gs.gumbel_softmax_backward(
        _logits(seed=1), _logits(seed=2), axis=ax, out=out
    ),
    "recompute": lambda ax, out: gs.gumbel_softmax_backward(
        _logits(seed=1), logits=_logits(), axis=ax, rng=0, out=out
    ),
    "concrete_log_prob": lambda ax, out: gs.concrete_log_prob(
        np.full((6, 5), 0.2), _logits(), axis=ax
    ),
    "GumbelSoftmax": lambda ax, out: gs.GumbelSoftmax(axis=ax).forward(_logits()),
    "gumbel_rao_backward": lambda ax, out: gs.gumbel_rao_backward(
        _logits(seed=1), _logits(), _one_hot(), axis=ax, rng=0, out=out
    ),
    "reinmax_backward": lambda ax, out: gs.reinmax_backward(
        _logits(seed=1), _logits(), _one_hot(), axis=ax, out=out
    ),
    "relaxed_top_k": lambda ax, out: gs.relaxed_top_k(_logits(), 1, axis=ax, rng=0, out=out),
    "relaxed_top_k_backward": lambda ax, out: gs.relaxed_top_k_backward(
        _logits(seed=1), _logits(), 1, axis=ax, rng=0, out=out
    ),
}


@pytest.mark.parametrize("fn", sorted(AXIS_TAKERS))
@pytest.mark.parametrize(
    "axis",
    [2**63, -(2**63) - 1, np.uint64(2**64 - 1), 2**100, 2, -3],
    ids=["2**63", "-2**63-1", "uint64max", "2**100", "2", "-3"],
)
def test_axis_out_of_range_is_an_axis_error(fn, axis):
    call, out = _with_out(lambda o: AXIS_TAKERS[fn](axis, o))
    assert_rejected(AXIS_ERROR, "axis", call, guard=[out])


@pytest.mark.parametrize("fn", sorted(AXIS_TAKERS))
@pytest.mark.parametrize("axis", [True, False, np.bool_(True), 1.0, "1"], ids=repr)
def test_axis_must_be_an_integer_not_a_bool(fn, axis):
    call, out = _with_out(lambda o: AXIS_TAKERS[fn](axis, o))
    assert_rejected(TypeError, "axis", call, guard=[out])


FLAG_TAKERS = {
    ("gumbel_softmax", "hard"): lambda v, out: gs.gumbel_softmax(_logits(), hard=v, rng=0, out=out),
    ("gumbel_softmax", "return_soft"): lambda v, out: gs.gumbel_softmax(
        _logits(), return_soft=v, rng=0, out=out
    ),
    ("relaxed_bernoulli", "hard"): lambda v, out: gs.relaxed_bernoulli(
        _logits(), hard=v, rng=0, out=out
    ),
    ("relaxed_bernoulli", "return_soft"): lambda v, out: gs.relaxed_bernoulli(
        _logits(), return_soft=v, rng=0, out=out
    ),
    ("concrete_log_prob", "log_space"): lambda v, out: gs.concrete_log_prob(
        np.full((6, 5), 0.2), _logits(), log_space=v
    ),
    ("GumbelSoftmax", "hard"): lambda v, out: gs.GumbelSoftmax(hard=v),
    ("GumbelSoftmax", "recompute"): lambda v, out: gs.GumbelSoftmax(recompute=v),
    ("relaxed_top_k", "hard"): lambda v, out: gs.relaxed_top_k(
        _logits(), 2, hard=v, rng=0, out=out
    ),
    ("relaxed_top_k", "return_soft"): lambda v, out: gs.relaxed_top_k(
        _logits(), 2, return_soft=v, rng=0, out=out
    ),
}


@pytest.mark.parametrize("fn,flag", sorted(FLAG_TAKERS), ids=lambda p: str(p))
@pytest.mark.parametrize("value", ["no", "", 1, 0, None, 1.0, np.array([1, 0]), [True]], ids=repr)
def test_flags_must_be_bools(fn, flag, value):
    """A flag is a bool: any other truthy object ('no') raises TypeError instead of
    counting as True (docs/contract.md "Choices where the contract is silent")."""
    call, out = _with_out(lambda o: FLAG_TAKERS[(fn, flag)](value, o))
    rng = gs.Philox(0)
    assert_rejected(TypeError, flag, call, guard=[out], rng=rng)


def test_numpy_bools_are_bools():
    x = _logits()
    assert (
        gs.gumbel_softmax(x, hard=np.bool_(True), rng=3) == gs.gumbel_softmax(x, hard=True, rng=3)
    ).all()


ARRAY_TAKERS = {
    "logits": lambda a: gs.gumbel_softmax(a, rng=0),
    "mask": lambda a: gs.gumbel_softmax(_logits(), rng=0, mask=a),
    "tau": lambda a: gs.gumbel_softmax(_logits(), a, rng=0),
    "grad_y": lambda a: gs.gumbel_softmax_backward(a, _logits()),
    "y_soft": lambda a: gs.gumbel_softmax_backward(_logits(), a),
    "y": lambda a: gs.concrete_log_prob(a, _logits()),
    "y_hard": lambda a: gs.gumbel_rao_backward(_logits(), _logits(), a, rng=0),
    "grad_p": lambda a: gs.reinmax_backward(_logits(), _logits(), _one_hot(), grad_p=a),
}
# relaxed_top_k's arrays, as ARRAY_TAKERS'
SUBSET_ARRAY_TAKERS = {
    "logits": lambda a: gs.relaxed_top_k(a, 1, rng=0),
    "mask": lambda a: gs.relaxed_top_k(_logits(), 1, rng=0, mask=a),
    "tau": lambda a: gs.relaxed_top_k(_logits(), 1, a, rng=0),
    "grad_y": lambda a: gs.relaxed_top_k_backward(a, _logits(), 1, rng=0),
}


ALL_ARRAY_TAKERS = {(n, "numpy"): f for n, f in ARRAY_TAKERS.items()}
ALL_ARRAY_TAKERS.update({(n, "subset"): f for n, f in SUBSET_ARRAY_TAKERS.items()})


@pytest.mark.parametrize("name,api", sorted(ALL_ARRAY_TAKERS))
def test_ragged_lists_name_the_argument(name, api):
    with pytest.raises(ValueError, match=name):
        ALL_ARRAY_TAKERS[name, api]([[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("name,api", sorted(ALL_ARRAY_TAKERS))
def test_masked_arrays_are_rejected(name, api):
    """A masked array raises TypeError: its mask would otherwise be dropped silently."""
    base = np.ones((6, 5), bool) if name == "mask" else np.full((6, 5), 0.5)
    if name == "tau":
        base = np.ones(6)
    with pytest.raises(TypeError, match=f"{name} is a numpy.ma.MaskedArray"):
        ALL_ARRAY_TAKERS[name, api](np.ma.array(base, mask=np.zeros(base.shape, bool)))


def _tau_takers():
    """Every function that takes tau, as name -> call(tau) (float32 rows, which the
    samplers' fast path takes)."""
    x = _logits((6, 5), np.float32)
    y = gs.gumbel_softmax(x, rng=0)
    g = np.ones_like(x)
    return {
        "gumbel_softmax": lambda t: gs.gumbel_softmax(x, t, rng=0),
        "log_gumbel_softmax": lambda t: gs.log_gumbel_softmax(x, t, rng=0),
        "relaxed_top_k": lambda t: gs.relaxed_top_k(x, 2, t, rng=0),
        "relaxed_top_k_backward": lambda t: gs.relaxed_top_k_backward(g, x, 2, t, rng=0),
        "relaxed_bernoulli": lambda t: gs.relaxed_bernoulli(x, t, rng=0),
        "relaxed_bernoulli_backward": lambda t: gs.relaxed_bernoulli_backward(g, y, t),
        "concrete_log_prob": lambda t: gs.concrete_log_prob(y, x, t),
        "gumbel_softmax_backward": lambda t: gs.gumbel_softmax_backward(g, y, t),
        "reinmax_backward": lambda t: gs.reinmax_backward(g, x, _one_hot((6, 5)), t),
        "gumbel_rao_backward": lambda t: gs.gumbel_rao_backward(g, x, _one_hot((6, 5)), t, rng=0),
        "GumbelSoftmax": lambda t: gs.GumbelSoftmax(tau=t, rng=0).forward(x),
    }


@pytest.mark.parametrize(
    "tau",
    [np.ma.masked_array(0.5, mask=True), np.ma.masked_array(0.5, mask=False), np.ma.masked],
    ids=["masked", "unmasked", "np.ma.masked"],
)
@pytest.mark.parametrize("entry", sorted(_tau_takers()))
def test_zero_dim_masked_tau_is_rejected(entry, tau):
    """A 0-d masked array as tau raises as an array one does (its mask was dropped: a
    masked 0.5 ran with tau 0.5, and np.ma.masked raised 'got 0.0')."""
    with pytest.raises(TypeError, match="tau is a numpy.ma.MaskedArray"):
        _tau_takers()[entry](tau)


@pytest.mark.parametrize("entry", sorted(_tau_takers()))
def test_bfloat16_tau_is_taken_as_float16_is(entry):
    """A bfloat16 tau (scalar, 0-d or per row) gives what the same values as float64 give,
    as a float16 tau does; bad values raise ValueError naming tau."""
    bf16 = pytest.importorskip("ml_dtypes").bfloat16
    call = _tau_takers()[entry]
    taus = [bf16(1.5), np.array(bf16(1.5)), np.float16(1.5)]
    if entry not in ("GumbelSoftmax", "relaxed_bernoulli", "relaxed_bernoulli_backward"):
        taus.append(np.array([1.5, 1.0, 2.0, 1.25, 3.0, 4.0], bf16).reshape(6, 1))
    for tau in taus:
        assert_bitwise_equal(np.asarray(call(tau)), np.asarray(call(np.asarray(tau, np.float64))))
    for bad in (bf16(0.0), bf16(float("inf")), np.array([1.0, float("nan")], bf16)):
        with pytest.raises(ValueError, match="tau"):
            call(bad)


def test_masked_array_out_is_rejected():
    out = np.ma.array(_filled((6, 5)))
    with pytest.raises(TypeError, match="out"):
        gs.gumbel_softmax(_logits(), rng=0, out=out)


@pytest.mark.parametrize("ndim", [33, 40, 64])
def test_mask_with_many_dimensions_names_mask(ndim):
    with pytest.raises(ValueError, match="mask"):
        gs.gumbel_softmax(_logits(), rng=0, mask=np.ones((1,) * ndim, bool))


@pytest.mark.parametrize("fn", ["gumbel", "logistic"])
@pytest.mark.parametrize("shape", [(2**40, 2**30), (2**64, 2), (2**62, 2, 2)], ids=str)
def test_noise_shape_too_large_names_shape(fn, shape):
    rng = gs.Philox(1)
    assert_rejected(ValueError, "shape", lambda: getattr(gs, fn)(shape, rng=rng), rng=rng)


@pytest.mark.parametrize(
    "call",
    [
        lambda big: gs.relaxed_bernoulli(big, rng=0),
        lambda big: gs.relaxed_bernoulli_backward(big, big),
    ],
    ids=["relaxed_bernoulli", "relaxed_bernoulli_backward"],
)
def test_relaxed_bernoulli_rows_over_the_limit(call):
    """Rows of more than 2**31 - 1 elements, as every other function rejects."""
    big = np.broadcast_to(np.float32(0.5), (2**31,))
    with pytest.raises(ValueError, match="2\\*\\*31 - 1"):
        call(big)


def test_thread_count_has_a_maximum():
    limit = gs._core.thread_limit()
    assert limit >= 4
    before = gs.get_num_threads()
    for n in (limit + 1, 5000, 2**63, 2**100):
        with pytest.raises(ValueError, match="n must be at most"):
            gs.set_num_threads(n)
    with pytest.raises(TypeError, match="n must be an integer"):
        gs.set_num_threads(True)
    assert gs.get_num_threads() == before
    gs.set_num_threads(limit)
    try:
        assert gs.get_num_threads() == (limit if gs._core.have_openmp else 1)
    finally:
        gs.set_num_threads(0)


@pytest.mark.parametrize(
    "kw",
    [dict(tau=0), dict(tau=-1.0), dict(tau=np.array([1.0, -1.0])), dict(tau="1"), dict(axis=1.5)],
    ids=repr,
)
def test_layer_checks_its_arguments_when_made(kw):
    with pytest.raises((ValueError, TypeError), match=next(iter(kw))):
        gs.GumbelSoftmax(**kw)


@pytest.mark.parametrize("name", ["counters", "key"])
def test_philox4x32_ragged_names_the_argument(name):
    args = {"counters": [[0, 0, 0, 0]], "key": [0, 0]}
    args[name] = [[1, 2], [3]]
    with pytest.raises(ValueError, match=name):
        gs.philox4x32(args["counters"], args["key"])


def _core_calls(axis):
    """Every private _core binding that takes an axis, called on valid (2, 5) float32 arrays
    with that axis (the Python layer passes it normalised, in [0, ndim))."""
    c = gs._core
    x = _logits((2, 5), np.float32)
    g = np.ones((2, 5), np.float32)
    h = np.eye(5, dtype=np.float32)[[1, 3]]
    y = np.full((2, 5), 0.2, np.float32)
    idx = np.array([1, 3])
    tau = np.ones(1, np.float32)
    return {
        "gumbel_softmax": lambda: c.gumbel_softmax(
            x, 1.0, None, False, False, axis, gs.Philox(0), None, False, None
        ),
        "categorical": lambda: c.categorical(x, axis, gs.Philox(0)),
        "top_k": lambda: c.top_k(x, 2, axis, gs.Philox(0)),
        "conditional_gumbel": lambda: c.conditional_gumbel(x, idx, axis, gs.Philox(0), None),
        "gumbel_softmax_backward": lambda: c.gumbel_softmax_backward(g, y, 1.0, None, axis, None),
        "gumbel_softmax_backward_recompute": lambda: c.gumbel_softmax_backward_recompute(
            g, x, 1.0, None, axis, gs.Philox(0), None, False
        ),
        "reinmax_backward": lambda: c.reinmax_backward(g, x, h, None, 1.0, None, axis, None),
        "gumbel_rao_backward": lambda: c.gumbel_rao_backward(
            g, x, h, 1.0, None, 2, axis, gs.Philox(0), None
        ),
        "relaxed_top_k": lambda: c.relaxed_top_k(
            x, 2, 1.0, None, False, axis, gs.Philox(0), None, False
        ),
        "relaxed_top_k_backward": lambda: c.relaxed_top_k_backward(
            g, x, 2, 1.0, None, axis, gs.Philox(0), None
        ),
        "concrete_log_prob": lambda: c.concrete_log_prob(
            y, x, tau, np.zeros(1, np.float32), 0, False, axis
        ),
    }


@pytest.mark.parametrize("name", sorted(_core_calls(1)))
def test_private_bindings_reject_an_unnormalised_axis(name):
    # The bindings index the shape by axis; one outside [0, ndim) was read outside it
    # (reinmax_backward raised MemoryError from a garbage length).  Each must raise
    # ValueError naming the axis, and work with the normalised one.
    _core_calls(1)[name]()
    for axis in (-1, 2, -3):
        with pytest.raises(ValueError, match="axis"):
            _core_calls(axis)[name]()


def test_private_bindings_reject_counts_out_of_range():
    # top_k's k and gumbel_rao_backward's samples, as relaxed_top_k's k: checked in the
    # binding too (k > len read past the row, samples = 0 divided by zero).
    c = gs._core
    x = _logits((2, 5), np.float32)
    g = np.ones((2, 5), np.float32)
    h = np.eye(5, dtype=np.float32)[[1, 3]]
    rng = gs.Philox(0)
    for k in (-1, 6, 2**31):
        with pytest.raises(ValueError, match="k out of range"):
            c.top_k(x, k, 1, rng)
    for s in (0, -1):
        with pytest.raises(ValueError, match="samples"):
            c.gumbel_rao_backward(g, x, h, 1.0, None, s, 1, rng, None)
    assert rng.counter == 0  # nothing drawn
    assert c.top_k(x, 5, 1, rng).shape == (2, 5)


@pytest.mark.parametrize("fn", [gs.gumbel, gs.logistic])
def test_empty_shape_too_large_for_numpy_names_shape(fn):
    # NumPy refuses an empty array whose nonzero dimensions alone overflow the address
    # space; these were pybind11's "incompatible function arguments" (dimensions of
    # 2**63 and more) or NumPy's "array is too big", naming nothing.
    rng = gs.Philox(0)
    for shape in [(2**64, 0), (2**63, 0), (2**62, 0), (0, 2**40, 2**30)]:
        assert_rejected(ValueError, "shape .* is too large", lambda: fn(shape, rng=rng), rng=rng)
    assert fn((10**6, 0), rng=rng).shape == (10**6, 0)


def test_timedelta_and_bools_are_not_numbers():
    # np.timedelta64 is a np.signedinteger (so numbers.Integral): it was taken as tau
    # (1 for timedelta64(1)) and as an int seed; True was taken as a dimension of 1.
    x = _logits()
    rng = gs.Philox(0)
    t = np.timedelta64(2)
    assert_rejected(TypeError, "tau", lambda: gs.gumbel_softmax(x, t, rng=rng), rng=rng)
    assert_rejected(TypeError, "tau", lambda: gs.relaxed_bernoulli(x, t, rng=rng), rng=rng)
    assert_rejected(TypeError, "rng", lambda: gs.gumbel_softmax(x, rng=t))
    assert_rejected(TypeError, "shape", lambda: gs.gumbel((True, 3), rng=rng), rng=rng)
    assert_rejected(TypeError, "shape", lambda: gs.logistic(True, rng=rng), rng=rng)
    assert gs.gumbel((np.int64(2), 3), rng=rng).shape == (2, 3)
    # any iterable of ints is a shape, an iterator too (read once)
    assert gs.gumbel(iter([2, 3]), rng=rng).shape == (2, 3)
    assert gs.logistic((d for d in (4, 1)), rng=rng).shape == (4, 1)


UNINITIALISED_PHILOX = """
import copy, pickle, sys
import numpy as np
import gumbel_softmax as gs
sys.path.insert(0, sys.argv[1])
from test_errors import _rng_calls
p = gs.Philox.__new__(gs.Philox)  # never initialised: no __init__
uses = dict(_rng_calls())
uses["GumbelSoftmax"] = lambda r: gs.GumbelSoftmax(rng=r)(np.zeros((2, 3)))  # (at the call)
for name, use in [
    ("seed", lambda r: r.seed), ("key", lambda r: r.key), ("counter", lambda r: r.counter),
    ("reserve", lambda r: r.reserve(1)), ("_unreserve", lambda r: r._unreserve(0, 1)),
    ("repr", repr), ("copy", copy.copy), ("deepcopy", copy.deepcopy),
    ("pickle", pickle.dumps), ("eq", lambda r: r == gs.Philox(1)),
    ("eq reflected", lambda r: gs.Philox(1) == r),
] + sorted(uses.items()):
    try:
        use(p)
    except TypeError as e:
        if "never initialised" not in str(e):
            print(name, "raised another TypeError:", e)
    except Exception as e:
        print(name, "raised", type(e).__name__, e)
    else:
        print(name, "did not raise")
for name, call in [("repr", gs.Philox.__repr__), ("seed", gs.Philox.seed.fget)]:
    try:
        call(5)
        print(name, "of an int did not raise")
    except TypeError as e:
        if "must be a gs.Philox" not in str(e):
            print(name, "of an int raised", e)
print("done")
"""


def test_uninitialised_philox_raises_everywhere():
    """A gs.Philox made by Philox.__new__ without __init__ raises TypeError on every
    method and as the rng of every entry point (pybind11 would cast it to a state of
    uninitialised memory: a hang in its lock, or samples from a garbage seed).  In a
    child process, with a time limit, since the failure was a hang."""
    import os

    res = run_python(UNINITIALISED_PHILOX, os.path.dirname(os.path.abspath(__file__)))
    assert res.returncode == 0, res.stderr
    assert res.stdout == "done\n", res.stdout
