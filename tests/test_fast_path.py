"""The fast path of small calls (csrc/bindings/fast_path.hpp) against the general path.

``gs.gumbel_softmax``, ``gs.log_gumbel_softmax`` and ``gs.categorical`` first offer their
arguments to one C++ call (``_core.forward_fast`` / ``_core.categorical_fast``), which
takes the common case (an aligned native float32/float64 ndarray, a float or int tau, an
int axis, rng None / int / ``gs.Philox``, no mask, out None or a matching array) and
answers None for anything else, which then runs the general path
(``_ops.forward_general`` / ``_ops.categorical_general``).

``gs.gumbel`` and ``gs.logistic`` likewise: ``_core.noise_fast`` (an int or a tuple of
ints as shape, dtype None / float32 / float64, rng None / int / ``gs.Philox``, no out),
else ``_ops.noise_general``.

Checked here, on the cases at the boundary of the fast path: which path a call takes; the
same output bits and the same generator state after the call from both paths; the same
exception type and message from both for bad arguments, and no rows drawn.
"""

from __future__ import annotations

import copy

import gumbel_softmax as gs
import numpy as np
import pytest
from gumbel_softmax import _core, _ops
from helpers import assert_bitwise_equal

X32 = np.random.default_rng(0).standard_normal((7, 10)).astype(np.float32)
X64 = X32.astype(np.float64)


def _fwd_args(x, tau=0.5, *, hard=False, log=False, axis=-1, rng=None, out=None, soft=False):
    return (x, tau, hard, log, axis, rng, out, soft, None)


# (id, logits, keyword arguments of forward): every one of these takes the fast path
TAKEN = [
    ("f32", X32, {}),
    ("f64", X64, {}),
    ("one_row", X32[:1].copy(), {}),
    ("one_element_rows", X32[:, :1].copy(), {}),
    ("1d", X32[0].copy(), {}),
    ("3d", X32.reshape(7, 2, 5), {}),
    ("long_rows", np.random.default_rng(1).standard_normal((3, 100)).astype(np.float32), {}),
    ("many_rows", np.random.default_rng(2).standard_normal((700, 9)).astype(np.float32), {}),
    ("tau1", X32, {"tau": 1.0}),
    ("tau_int", X32, {"tau": 2}),
    ("tau_np_float64", X32, {"tau": np.float64(0.25)}),
    ("tau_tiny", X32, {"tau": 1e-300}),
    ("tau_huge", X32, {"tau": 1e300}),
    ("axis0", X32, {"axis": 0}),
    ("axis_neg", X32.reshape(7, 2, 5), {"axis": -2}),
    ("strided_rows", X32[:, ::2], {}),
    ("strided_batch", X32[::2], {}),
    ("reversed", X32[::-1, ::-1], {}),
    ("fortran", np.asfortranarray(X32), {}),
    ("broadcast", np.broadcast_to(X32[0], (5, 10)), {}),
    ("readonly", np.frombuffer(X32.tobytes(), np.float32).reshape(7, 10), {}),
    ("hard", X32, {"hard": True}),
    ("hard_soft", X32, {"hard": True, "soft": True}),
    ("soft_soft", X32, {"soft": True}),
    ("log", X32, {"log": True}),
    ("special", np.array([[0, -np.inf, 1], [np.nan, 0, 1], [np.inf, 0, 0], [-np.inf] * 3],
                         np.float32), {}),
]  # fmt: skip


def _philox():
    return gs.Philox(11, counter=5)


def _outputs_and_state(fn, x, kw, rng, out=None):
    res = fn(*_fwd_args(x, rng=rng, out=out, **kw))
    return res, (rng.counter if isinstance(rng, gs.Philox) else None)


def _assert_same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same(u, v)
        assert (a[0] is a[1]) == (b[0] is b[1])
        return
    assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
    assert_bitwise_equal(a, b)


@pytest.mark.parametrize("name, x, kw", TAKEN, ids=[c[0] for c in TAKEN])
def test_fast_path_taken_and_equal(name, x, kw):
    assert _core.forward_fast(*_fwd_args(x, rng=_philox(), **kw)) is not None
    fast = _outputs_and_state(_ops.forward, x, kw, _philox())
    general = _outputs_and_state(_ops.forward_general, x, kw, _philox())
    _assert_same(fast[0], general[0])
    assert fast[1] == general[1]


@pytest.mark.parametrize("seed", [0, 7, 2**64 - 1])
def test_int_seed_is_a_new_philox(seed):
    fast = gs.gumbel_softmax(X32, 0.5, rng=seed)
    assert_bitwise_equal(fast, _ops.forward_general(*_fwd_args(X32, rng=seed)))
    assert_bitwise_equal(fast, gs.gumbel_softmax(X32, 0.5, rng=gs.Philox(seed)))


def test_rng_none_draws_fresh_entropy():
    a, b = (gs.gumbel_softmax(X32, 0.5) for _ in range(2))
    assert a.dtype == np.float32 and a.shape == X32.shape
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a.sum(-1), 1, rtol=1e-5)


@pytest.mark.parametrize(
    "case", ["new", "contiguous", "strided", "fortran", "in_place", "in_place_strided"]
)
@pytest.mark.parametrize("hard", [False, True])
def test_out(case, hard):
    base = np.full((7, 20), 7.0, np.float32)

    def make():
        if case == "in_place":
            return X32.copy(), None
        if case == "in_place_strided":
            b = base.copy()
            b[:, ::2] = X32
            return b[:, ::2], None
        out = {"new": None, "contiguous": np.empty_like(X32), "strided": base.copy()[:, ::2],
               "fortran": np.asfortranarray(np.empty_like(X32))}[case]  # fmt: skip
        return X32, out

    results = []
    for fn in (_ops.forward, _ops.forward_general):
        x, out = make()
        if case.startswith("in_place"):
            out = x
        assert (fn is _ops.forward_general) or _core.forward_fast(
            *_fwd_args(
                x.copy() if out is x else x, rng=_philox(), out=None if out is x else out, hard=hard
            )
        ) is not None
        rng = _philox()
        res = fn(*_fwd_args(x, rng=rng, out=out, hard=hard))
        assert out is None or res is out
        results.append((res.copy(), rng.counter))
    assert_bitwise_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]


class _OddFloat(float):
    """A float subclass whose __float__ differs from its value: float(tau), which the
    general path takes, is 5.0."""

    def __float__(self):
        return 5.0


def _declined():
    """(id, positional arguments of forward_fast): calls the fast path leaves to Python."""
    x16 = X32.astype(np.float16)
    swapped = X32.astype(X32.dtype.newbyteorder())
    unaligned = np.frombuffer(b"\0" + X32.tobytes(), np.float32, offset=1, count=70).reshape(7, 10)
    yield "float16", _fwd_args(x16)
    yield "int_logits", _fwd_args(np.arange(20).reshape(2, 10))
    yield "bool_logits", _fwd_args(np.ones((2, 10), bool))
    yield "list_logits", _fwd_args(X32.tolist())
    yield "subclass", _fwd_args(X32.view(np.matrix))
    yield "byteswapped", _fwd_args(swapped)
    yield "unaligned", _fwd_args(unaligned)
    yield "0d", _fwd_args(np.float32(1.0))
    yield "0d_array", _fwd_args(np.array(1.0, np.float32))
    yield "empty_batch", _fwd_args(np.empty((0, 10), np.float32))
    yield "empty_rows", _fwd_args(np.empty((3, 0), np.float32))
    yield "tau_array", _fwd_args(X32, np.full(7, 0.5))
    yield "tau_0d", _fwd_args(X32, np.array(0.5))
    yield "tau_float32", _fwd_args(X32, np.float32(0.5))
    yield "tau_float_subclass", _fwd_args(X32, _OddFloat(0.05))
    yield "tau_bool", _fwd_args(X32, True)
    yield "tau_zero", _fwd_args(X32, 0.0)
    yield "tau_inf", _fwd_args(X32, np.inf)
    yield "tau_nan", _fwd_args(X32, np.nan)
    yield "tau_huge_int", _fwd_args(X32, 10**400)
    yield "hard_int", _fwd_args(X32, hard=1)
    yield "axis_np_int", _fwd_args(X32, axis=np.int64(1))
    yield "axis_bool", _fwd_args(X32, axis=True)
    yield "axis_out", _fwd_args(X32, axis=2)
    yield "axis_huge", _fwd_args(X32, axis=2**70)
    yield "rng_generator", _fwd_args(X32, rng=np.random.default_rng(0))
    yield "rng_np_int", _fwd_args(X32, rng=np.int64(3))
    yield "rng_negative", _fwd_args(X32, rng=-1)
    yield "rng_too_big", _fwd_args(X32, rng=2**64)
    yield "rng_philox_uninitialised", _fwd_args(X32, rng=gs.Philox.__new__(gs.Philox))
    yield "rng_bool", _fwd_args(X32, rng=True)
    yield "rng_str", _fwd_args(X32, rng="a")
    yield "out_float64", _fwd_args(X32, out=np.empty(X32.shape))
    yield "out_shape", _fwd_args(X32, out=np.empty((7, 9), np.float32))
    yield (
        "out_readonly",
        _fwd_args(X32, out=np.frombuffer(X32.tobytes(), np.float32).reshape(7, 10)),
    )
    yield "out_list", _fwd_args(X32, out=[0.0] * 70)
    base = X32.copy()  # written by the overlap cases that are valid
    yield "out_overlap", _fwd_args(base[:, :5], out=base[:, 5:])  # disjoint elements
    yield "out_partial_overlap", _fwd_args(base[1:], out=base[:-1])
    yield "out_half", _fwd_args(x16, out=np.empty_like(x16))
    yield "mask", (X32, 0.5, False, False, -1, None, None, False, np.ones(10, bool))


DECLINED = list(_declined())


@pytest.mark.parametrize("name, args", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_cases_run_the_general_path(name, args):
    assert _core.forward_fast(*args) is None


def _copy(res):
    return tuple(_copy(r) for r in res) if isinstance(res, tuple) else res.copy()


def _outcome(fn, args):
    """What a call gives: ('ok', result, counter) or ('raise', type, message, counter)."""
    rng, given = _philox(), args[5]
    if isinstance(given, np.random.Generator):
        given = copy.deepcopy(given)  # the same state for both paths
    args = args[:5] + (rng if given is None else given,) + args[6:]
    try:
        res = fn(*args)
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        return ("raise", type(exc), str(exc), rng.counter)
    return ("ok", _copy(res), rng.counter)


@pytest.mark.parametrize("name, args", DECLINED, ids=[c[0] for c in DECLINED])
def test_declined_cases_same_outcome(name, args):
    a, b = (_outcome(fn, args) for fn in (_ops.forward, _ops.forward_general))
    assert a[0] == b[0]
    if a[0] == "raise":
        assert a[1:] == b[1:]
        assert a[3] == 5  # a failed call draws nothing
    else:
        _assert_same(a[1], b[1])
        assert a[2] == b[2]


@pytest.mark.parametrize(
    "call",
    [
        lambda r: gs.gumbel_softmax(X32, 0.0, rng=r),
        lambda r: gs.gumbel_softmax(X32, -1, rng=r),
        lambda r: gs.gumbel_softmax(X32, hard="yes", rng=r),
        lambda r: gs.gumbel_softmax(X32, axis=5, rng=r),
        lambda r: gs.gumbel_softmax(X32, axis=1.0, rng=r),
        lambda r: gs.gumbel_softmax(X32, rng=r, out=np.empty((7, 9), np.float32)),
        lambda r: gs.gumbel_softmax(X32, rng=r, out=X32[::-1]),
        lambda r: gs.gumbel_softmax(np.empty((3, 0), np.float32), rng=r),
        lambda r: gs.log_gumbel_softmax(X32, np.nan, rng=r),
        lambda r: gs.categorical(X32, axis=-3, rng=r),
        lambda r: gs.categorical(np.empty((3, 0), np.float32), rng=r),
    ],
)
def test_errors_name_the_argument_and_draw_nothing(call):
    rng = _philox()
    with pytest.raises((ValueError, TypeError)) as info:
        call(rng)
    assert rng.counter == 5
    assert any(w in str(info.value) for w in ("tau", "hard", "axis", "out", "logits"))


def test_counter_overflow_on_the_fast_path():
    rng = gs.Philox(1, counter=2**64 - 3)
    args = _fwd_args(X32, rng=rng)
    with pytest.raises(OverflowError, match="rng counter overflow"):
        _core.forward_fast(*args)
    with pytest.raises(OverflowError) as general:
        _ops.forward_general(*args)
    with pytest.raises(OverflowError) as fast:
        gs.gumbel_softmax(X32, 0.5, rng=rng)
    assert str(fast.value) == str(general.value)
    assert rng.counter == 2**64 - 3


CAT_TAKEN = [
    ("f32", X32, -1),
    ("f64", X64, -1),
    ("1d", X32[0].copy(), 0),
    ("axis0", X32, 0),
    ("strided", X32[::2, ::3], -1),
    ("3d", X32.reshape(7, 2, 5), 1),
    ("special", np.array([[0, -np.inf], [np.nan, 0], [-np.inf, -np.inf]], np.float32), -1),
]


@pytest.mark.parametrize("name, x, axis", CAT_TAKEN, ids=[c[0] for c in CAT_TAKEN])
def test_categorical_fast_path_equal(name, x, axis):
    assert _core.categorical_fast(x, axis, _philox(), None) is not None
    r1, r2 = _philox(), _philox()
    a = _ops.categorical(x, axis, r1, None)
    b = _ops.categorical_general(x, axis, r2, None)
    assert a.dtype == b.dtype == np.int64 and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    assert r1.counter == r2.counter


@pytest.mark.parametrize(
    "args",
    [
        (X32.astype(np.float16), -1, None, None),
        (np.arange(10), -1, None, None),
        (X32, 2, None, None),
        (X32, -1, np.random.default_rng(0), None),
        (X32, -1, None, np.ones(10, bool)),
        (np.empty((0, 3), np.float32), -1, None, None),
    ],
)
def test_categorical_declined(args):
    assert _core.categorical_fast(*args) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_row_groups_equal_the_row_path(dtype):
    """Small calls run in the short-row path, one row per vector lane, whose groups move
    rows into columns (gathers, or scalar copies) and back (one block store for
    contiguous rows); their noise is drawn with the Philox lanes as rows (more than half a
    group) or as row blocks (fewer rows).  Every group size and layout must give the bits
    of the row-by-row path (_core._set_short_rows(False)); so must the backward's groups,
    stored (a NaN and an inf in the gradient included) and recomputed from the logits,
    reinmax_backward's, concrete_log_prob's, gumbel_rao_backward's (its unit, fast and
    wide rows, a NaN row, groups that fall back to rows), conditional_gumbel's and
    relaxed_top_k's and its backward's (soft and hard, k up to the row length, a tiny
    tau), top_k's (ties included) and relaxed_bernoulli's."""
    gen = np.random.default_rng(3)
    cases = []
    for nrows in (1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 33):
        for k in (1, 4, 10, 32):
            x = (3 * gen.standard_normal((nrows, k))).astype(dtype)
            x[nrows // 2, 0] = -np.inf
            cases.append((x, -1, None))
            cases.append((x, -1, np.full((nrows, 2 * k), 9, dtype)[:, ::2]))  # strided out
            cases.append((np.asfortranarray(x), -1, np.empty_like(x, order="F")))
            cases.append((np.ascontiguousarray(x.T), 0, None))  # rows with step nrows
    x3 = np.asfortranarray(gen.standard_normal((4, 5, 6)).astype(dtype))
    cases.append((x3, 0, np.empty_like(x3, order="F")))  # two batch dims, rows contiguous
    cases.append((x3[:, ::-1], 0, None))

    def run():
        out = []
        for n, (x, axis, o) in enumerate(cases):
            for tau in (0.5, 1.0):
                rng = gs.Philox(n, counter=2**32 - 5)
                y = gs.gumbel_softmax(x, tau, axis=axis, rng=rng, out=o)
                out.append((y.copy(), rng.counter))
            out.append((gs.categorical(x, axis=axis, rng=n), 0))
            out.append((gs.log_gumbel_softmax(x, 0.5, axis=axis, rng=n), 0))
            w = np.random.default_rng(n).standard_normal(x.shape).astype(dtype)
            w.flat[-1] = np.nan if n % 3 == 0 else np.inf
            y = gs.gumbel_softmax(x, 0.7, axis=axis, rng=n)
            taus = np.linspace(0.5, 1.5, y.size // y.shape[axis]).reshape(
                np.delete(np.shape(y), axis % y.ndim)
            )
            taus = np.expand_dims(taus, axis)
            out.append((gs.gumbel_softmax_backward(w, y, 0.7, axis=axis, out=o).copy(), 0))
            out.append((gs.gumbel_softmax_backward(w, y, taus, axis=axis), 0))
            out.append((gs.gumbel_softmax_backward(w, logits=x, tau=taus, axis=axis, rng=n), 0))
            h = gs.gumbel_softmax(x, 1.0, hard=True, axis=axis, rng=n)
            out.append((gs.reinmax_backward(w, x, h, 1.0 + taus, axis=axis), 0))
            out.append((gs.reinmax_backward(w, x, h, 1.0, axis=axis, grad_p=y, out=o).copy(), 0))
            out.append((gs.concrete_log_prob(y, x, taus, axis=axis), 0))
            tau_e = np.linspace(0.2, 2.0, x.size).reshape(x.shape)  # per element
            for t, hard in ((0.5, False), (tau_e, True)):
                res = gs.relaxed_bernoulli(x, t, hard=hard, rng=n, return_soft=True)
                out.extend((y.copy(), 0) for y in res)
            out.append((gs.relaxed_bernoulli(x, 0.3, rng=n, out=o).copy(), 0))
            ties = np.round(x) * dtype(1e30)  # equal x + g: the lower index first
            for kk in (1, 3, x.shape[axis]):
                kk = min(kk, x.shape[axis])
                out.append((gs.top_k(x, kk, axis=axis, rng=n), 0))
                out.append((gs.top_k(ties, kk, axis=axis, rng=n), 0))
            if np.isfinite(x).any(axis=axis).all():  # (a row of -inf has no one-hot)
                for t, k in ((1.0, 3), (0.5, 2), (taus, 2)):  # unit, fast, mixed rows
                    r = gs.Philox(n)
                    g = gs.gumbel_rao_backward(w, x, h, t, samples=k, axis=axis, rng=r, out=o)
                    out.append((g.copy(), r.counter))
                wide = 40 * x  # rows of range > 60 (the wide form), and one row of NaN
                wide[(0,) * wide.ndim] = np.nan
                out.append((gs.gumbel_rao_backward(w, wide, h, 0.5, axis=axis, rng=n), 0))
                for t, k, hard in ((0.5, 1, False), (taus, 3, True), (1e-3, x.shape[axis], False)):
                    r = gs.Philox(n, counter=2**32 - 5)
                    res = gs.relaxed_top_k(x, k, t, hard=hard, axis=axis, rng=r, return_soft=True)
                    out.extend((y.copy(), r.counter) for y in res)
                    r = gs.Philox(n, counter=2**32 - 5)
                    res = gs.relaxed_top_k_backward(w, x, k, t, axis=axis, rng=r, out=o)
                    out.append((res.copy(), r.counter))
                i = gs.categorical(x, axis=axis, rng=n)
                r = gs.Philox(n, counter=2**32 - 5)
                out.append((gs.conditional_gumbel(x, i, axis=axis, rng=r, out=o).copy(), r.counter))
                xs = 1e30 * x  # ties of z_j and z_I (the tie rule) and a NaN row
                xs[(-1,) * xs.ndim] = np.nan
                xs = np.where(np.isinf(x), x, xs)
                out.append((gs.conditional_gumbel(xs, i, axis=axis, rng=n), 0))
            with np.errstate(divide="ignore"):  # y = 0 where x = -inf
                log_y = np.log(y)
            out.append((gs.concrete_log_prob(log_y, x, 300.0, axis=axis, log_space=True), 0))
        return out

    try:
        fast = run()
        _core._set_short_rows(False)
        slow = run()
    finally:
        _core._set_short_rows(True)
    for (a, ca), (b, cb) in zip(fast, slow):
        assert a.tobytes() == b.tobytes()
        assert ca == cb


@pytest.mark.parametrize("dtype, big, k", [(np.float32, 1e38, 3), (np.float64, 1e307, 5)])
def test_relaxed_top_k_backward_far_terms_on_short_rows(dtype, big, k):
    """Gradients near the overflow threshold make relaxed_top_k_backward's q = a_I delta_I
    S / O overflow in some rows (its 'far' terms, taken one by one): the short-row
    groups must give the row path's bits there too (these seeds reach that branch)."""
    gen = np.random.default_rng(0)
    x = gen.standard_normal((256, 10)).astype(dtype)
    w = (gen.standard_normal(x.shape) * big).astype(dtype)
    a = gs.relaxed_top_k_backward(w, x, k, 0.1, rng=1)
    try:
        _core._set_short_rows(False)
        b = gs.relaxed_top_k_backward(w, x, k, 0.1, rng=1)
    finally:
        _core._set_short_rows(True)
    assert a.tobytes() == b.tobytes()


# ----- gs.gumbel and gs.logistic (_core.noise_fast, else _ops.noise_general) ----------
# (id, positional arguments of _ops.noise but rng): each takes the fast path
NOISE_TAKEN = [
    ("tuple", ((7, 10), None, None, False)),
    ("int", (70, None, None, False)),
    ("float32_type", ((7, 10), np.float32, None, False)),
    ("float64_type", ((3, 5, 4), np.float64, None, False)),
    ("float32_dtype", ((7, 10), np.dtype("float32"), None, False)),
    ("float64_dtype", ((2, 33), np.dtype("<f8"), None, False)),
    ("logistic", ((7, 10), None, None, True)),
    ("long_rows", ((2, 1000), None, None, False)),
    ("empty_batch", ((0, 10), None, None, False)),
    ("empty_rows", ((4, 0), None, None, False)),
    ("1d_empty", ((0,), np.float64, None, False)),
]


def _noise_args(args, rng):
    shape, dtype, out, logistic = args
    return (shape, dtype, rng, out, logistic)


@pytest.mark.parametrize("name, args", NOISE_TAKEN, ids=[c[0] for c in NOISE_TAKEN])
def test_noise_fast_path_taken_and_equal(name, args):
    assert _core.noise_fast(*_noise_args(args, _philox())) is not None
    r1, r2 = _philox(), _philox()
    a = _ops.noise(*_noise_args(args, r1))
    b = _ops.noise_general(*_noise_args(args, r2))
    assert type(a) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
    assert_bitwise_equal(a, b)
    assert r1.counter == r2.counter == 5 + int(np.prod(a.shape[:-1]))  # a Philox step per row


@pytest.mark.parametrize("seed", [0, 2**64 - 1, None])
def test_noise_fast_path_seeds(seed):
    a = gs.gumbel((3, 4), rng=seed)
    assert _core.noise_fast((3, 4), None, seed, None, False) is not None
    if seed is None:  # fresh OS entropy each call
        assert not np.array_equal(a, gs.gumbel((3, 4)))
    else:  # an int is a new Philox at counter 0, as on the general path
        assert_bitwise_equal(a, _ops.noise_general((3, 4), None, seed, None, False))
        assert_bitwise_equal(a, gs.gumbel((3, 4), rng=gs.Philox(seed)))


def _noise_declined():
    """(id, arguments of _ops.noise but rng): left to the general path, which computes
    them or raises."""
    yield "list_shape", ([7, 10], None, None, False)
    yield "np_int_shape", ((np.int64(7), 10), None, None, False)
    yield "np_int", (np.int64(7), None, None, False)
    yield "bool_dim", ((True, 3), None, None, False)
    yield "bool_shape", (True, None, None, False)
    yield "float_dim", ((7, 1.0), None, None, False)
    yield "negative", ((7, -1), None, None, False)
    yield "empty_shape", ((), None, None, False)
    yield "too_many_dims", ((1,) * 33, None, None, False)
    yield "huge_dim", ((2**63,), None, None, False)
    yield "too_large", ((2**40, 2**30), None, None, False)
    yield "too_large_with_zero", ((2**62, 0), None, None, False)
    yield "row_too_long", ((1, 2**31), None, None, False)
    yield "float16", ((7, 10), np.float16, None, False)
    yield "str_dtype", ((7, 10), "float32", None, False)
    yield "python_float_dtype", ((7, 10), float, None, False)
    yield "int_dtype", ((7, 10), np.int32, None, False)
    yield "swapped_dtype", ((7, 10), np.dtype(">f4"), None, False)
    yield "out", ((7, 10), None, np.empty((7, 10), np.float32), False)
    yield "out_wrong", ((7, 10), None, np.empty((7, 9), np.float32), False)


NOISE_DECLINED = list(_noise_declined())


def _noise_outcomes(args, make):
    """What _ops.noise and _ops.noise_general each give for args (as _noise_args takes
    them) with a fresh make() as rng: ("ok", result, rng) or ("raise", type, message,
    rng)."""
    outcomes = []
    for fn in (_ops.noise, _ops.noise_general):
        r = make()
        try:
            res = fn(*_noise_args(args, r))
        except Exception as exc:  # noqa: BLE001 - compared between the two paths
            outcomes.append(("raise", type(exc), str(exc), r))
        else:
            outcomes.append(("ok", res, r))
    return outcomes


@pytest.mark.parametrize("name, args", NOISE_DECLINED, ids=[c[0] for c in NOISE_DECLINED])
@pytest.mark.parametrize("rng", ["philox", "generator", "np_int"])
def test_noise_declined_cases_same_outcome(name, args, rng):
    """Not taken (with any rng), and the same result or error from both paths; a failed
    call draws nothing."""
    make = {
        "philox": _philox,
        "generator": lambda: np.random.default_rng(3),
        "np_int": lambda: np.int64(3),
    }[rng]
    assert _core.noise_fast(*_noise_args(args, make())) is None
    a, b = _noise_outcomes(args, make)
    assert a[0] == b[0]
    if a[0] == "raise":
        assert a[1:3] == b[1:3]
        assert any(w in a[2] for w in ("shape", "dtype", "out"))  # names the argument
        if rng == "philox":
            assert a[3].counter == 5  # nothing drawn
        if rng == "generator":
            assert a[3].bit_generator.state == np.random.default_rng(3).bit_generator.state
    else:
        assert_bitwise_equal(a[1], b[1])
        if rng == "philox":
            assert a[2].counter == b[2].counter


@pytest.mark.parametrize(
    "rng",
    ["generator", -1, 2**64, True, "a", 3.0],
    ids=["generator", "-1", "2**64", "True", "str", "float"],
)
def test_noise_declined_for_the_rng_alone(rng):
    """The common shape and dtype with an rng the fast path leaves to Python: a Generator
    (the same noise as the general path, drawn from its state) or a bad rng (the same
    error)."""
    make = (lambda: np.random.default_rng(3)) if rng == "generator" else (lambda: rng)
    assert _core.noise_fast((7, 10), None, make(), None, False) is None
    a, b = _noise_outcomes(((7, 10), None, None, False), make)
    assert a[0] == b[0] == ("ok" if rng == "generator" else "raise")
    if a[0] == "ok":
        assert_bitwise_equal(a[1], b[1])
    else:
        assert a[1:3] == b[1:3] and ("rng" in a[2] or "seed" in a[2])


def test_noise_fast_path_counter_overflow():
    rng = gs.Philox(1, counter=2**64 - 3)
    with pytest.raises(OverflowError) as fast:
        gs.gumbel((7, 10), rng=rng)
    with pytest.raises(OverflowError) as general:
        _ops.noise_general((7, 10), None, rng, None, False)
    assert str(fast.value) == str(general.value)
    assert rng.counter == 2**64 - 3


def test_float_subclass_tau_is_its_float_on_every_path():
    # The general path takes float(tau); the fast path, which reads a float's value,
    # leaves other float subclasses to it, so that a call with a mask (general path) and
    # one without give the same sample.
    a = gs.gumbel_softmax(X32, _OddFloat(0.05), rng=3)
    b = gs.gumbel_softmax(X32, _OddFloat(0.05), rng=3, mask=np.ones(10, bool))
    c = gs.gumbel_softmax(X32, 5.0, rng=3)
    assert_bitwise_equal(a, c)
    assert_bitwise_equal(b, c)
