"""gumbel_softmax.dask: lazy samplers on Dask arrays, bitwise equal to the NumPy calls.

Every result is compared *bitwise* (and in dtype and shape) with the NumPy call on the
whole array from the same generator state, for many chunkings, with the threaded
scheduler and with a ``distributed.LocalCluster`` of two worker processes; the
generator's counter after the lazy call must be where the NumPy call leaves it.
"""

from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest
from helpers import child_env, random_logits, run_python
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

dask = pytest.importorskip(
    "dask", reason="gumbel_softmax.dask needs Dask (pip install 'gumbel-softmax[dask]')"
)
da = pytest.importorskip(
    "dask.array", reason="gumbel_softmax.dask needs dask.array (pip install 'dask[array]')"
)

import gumbel_softmax as gs  # noqa: E402
import gumbel_softmax.dask as gsd  # noqa: E402

# When a property fails, Hypothesis' pytest plugin may import libcst, which warns with
# mypy_extensions installed (see test_fuzz.py); filterwarnings = error would hide the report.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


def compute(*arrays):
    """Compute with the threaded scheduler (several blocks at once)."""
    res = dask.compute(*arrays, scheduler="threads")
    return res[0] if len(arrays) == 1 else res


def compute_raising(lazy):
    """Compute a graph that is expected to raise, with the synchronous scheduler: the
    threaded one raises at the first failed block while the pool's other blocks still
    run, and such a block could then call into a later test's monkeypatched API
    (seen once: test_one_call_per_run counted a block of test_per_row_tau's last graph)."""
    return dask.compute(lazy, scheduler="sync")[0]


def assert_same(lazy, expected):
    got = compute(lazy) if isinstance(lazy, da.Array) else lazy
    assert isinstance(got, np.ndarray)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    # bitwise, NaN included
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes()


def _data(shape, dtype=np.float32, seed=0):
    return random_logits(shape, dtype, seed)


# Every sampler as (dask call, NumPy call) on (x, rng, axis); each returns a tuple.
def _samplers():
    def soft(m, x, rng, axis):
        return (m.gumbel_softmax(x, 0.5, axis=axis, rng=rng),)

    def soft_tau1(m, x, rng, axis):
        return (m.gumbel_softmax(x, axis=axis, rng=rng),)

    def hard(m, x, rng, axis):
        return (m.gumbel_softmax(x, 0.5, hard=True, axis=axis, rng=rng),)

    def hard_soft(m, x, rng, axis):
        return m.gumbel_softmax(x, 0.5, hard=True, axis=axis, rng=rng, return_soft=True)

    def soft_soft(m, x, rng, axis):
        return m.gumbel_softmax(x, 2.0, axis=axis, rng=rng, return_soft=True)

    def log(m, x, rng, axis):
        return (m.log_gumbel_softmax(x, 0.25, axis=axis, rng=rng),)

    def categorical(m, x, rng, axis):
        return (m.categorical(x, axis=axis, rng=rng),)

    def top_k(m, x, rng, axis):
        return (m.top_k(x, min(3, x.shape[axis]), axis=axis, rng=rng),)

    def top_k0(m, x, rng, axis):
        return (m.top_k(x, 0, axis=axis, rng=rng),)

    def conditional(m, x, rng, axis):
        # the index of the largest logit: a lazy Dask argmax for the Dask call
        idx = (da if m is gsd else np).argmax(x, axis=axis)
        return (m.conditional_gumbel(x, idx, axis=axis, rng=rng),)

    def conditional_np_index(m, x, rng, axis):
        # a NumPy index (checked at call time) with Dask logits
        idx = np.argmax(np.asarray(x), axis=axis)
        return (m.conditional_gumbel(x, idx, axis=axis, rng=rng),)

    def relaxed_top_k(m, x, rng, axis):
        return (m.relaxed_top_k(x, min(2, x.shape[axis]), 0.5, axis=axis, rng=rng),)

    def relaxed_top_k_all(m, x, rng, axis):  # k = the row length: every step taken
        return (m.relaxed_top_k(x, x.shape[axis], axis=axis, rng=rng),)

    def relaxed_top_k_hard_soft(m, x, rng, axis):
        k = min(3, x.shape[axis])
        return m.relaxed_top_k(x, k, 0.3, hard=True, axis=axis, rng=rng, return_soft=True)

    fns = (soft, soft_tau1, hard, hard_soft, soft_soft, log, categorical, top_k, top_k0)
    fns += (conditional, conditional_np_index)
    fns += (relaxed_top_k, relaxed_top_k_all, relaxed_top_k_hard_soft)
    return {f.__name__: f for f in fns}


SAMPLERS = _samplers()


def check_sampler(name, x, chunks, axis, seed=7, counter=5):
    """The dask call equals the NumPy call bitwise and leaves the same counter."""
    fn = SAMPLERS[name]
    r_dask, r_np = gs.Philox(seed, counter=counter), gs.Philox(seed, counter=counter)
    xd = da.from_array(x, chunks=chunks)
    lazy = fn(gsd, xd, r_dask, axis)
    assert r_dask.counter == counter + x.size // x.shape[axis]  # reserved at call time
    expected = fn(gs, x, r_np, axis)
    assert r_dask.counter == r_np.counter
    got = compute(*lazy) if len(lazy) > 1 else (compute(lazy[0]),)
    for g, e, lz in zip(got, expected, lazy):
        assert_same(g, e)
        # chunks: the input's along the batch dimensions, one chunk along axis
        ax = axis % x.ndim
        batch = xd.chunks[:ax] + xd.chunks[ax + 1 :]
        if name == "categorical":
            assert lz.chunks == batch
        else:
            assert lz.chunks[:ax] + lz.chunks[ax + 1 :] == batch
            assert len(lz.chunks[ax]) == 1


# (shape, chunks, axis): first axis only, several batch dims, irregular chunks, the
# sampled axis split, 3-D and 1-D arrays, size-0 batches.
CHUNKINGS = [
    ((40, 9), (40, 9), -1),
    ((40, 9), (7, 9), -1),
    ((40, 9), ((3, 17, 1, 19), 9), -1),
    ((40, 9), (6, 4), -1),  # sampled axis split
    ((40, 9), (40, 2), 0),  # axis 0, batch (last) dim chunked
    ((40, 9), (8, 3), 0),  # axis 0 split and batch chunked
    ((6, 5, 7), (2, 5, 7), -1),
    ((6, 5, 7), (6, 2, 7), -1),  # only the innermost batch dim chunked
    ((6, 5, 7), ((1, 5), (2, 1, 2), (3, 4)), -1),  # several batch dims, axis split
    ((6, 5, 7), (4, 3, 2), 1),  # axis 1 split, batch dims 0 and 2 chunked
    ((6, 5, 7), (1, 1, 1), 0),
    ((4, 3, 5, 6), (3, 2, 5, 4), 2),
    ((4, 3, 5, 6), ((1, 3), 3, (2, 3), 6), -1),
    ((13,), (13,), 0),
    ((13,), (4,), -1),  # 1-D, the only axis split
    ((0, 5), (1, 5), -1),
    ((3, 0, 4), (2, 1, 2), -1),
]


@pytest.mark.parametrize("shape, chunks, axis", CHUNKINGS)
@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_matches_numpy(name, shape, chunks, axis):
    check_sampler(name, _data(shape), chunks, axis)


@st.composite
def _chunked_arrays(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    chunks = []
    for n in shape:
        cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
        bounds = [0] + cuts + [n]
        chunks.append(tuple(b - a for a, b in zip(bounds[:-1], bounds[1:])))
    axis = draw(st.integers(-ndim, ndim - 1))
    return shape, tuple(chunks), axis


@FUZZ
@given(
    case=_chunked_arrays(),
    name=st.sampled_from(sorted(SAMPLERS)),
    dtype=st.sampled_from([np.float32, np.float64]),
    counter=st.sampled_from([0, 3, 2**32 - 2, 2**63]),
    seed=st.integers(0, 2**64 - 1),
)
def test_fuzz_any_chunking(case, name, dtype, counter, seed):
    shape, chunks, axis = case
    check_sampler(name, _data(shape, dtype, seed=seed % 1000), chunks, axis, seed, counter)


@FUZZ
@given(
    case=_chunked_arrays(),
    logistic=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    counter=st.sampled_from([0, 2**40 + 1]),
)
def test_fuzz_noise_and_bernoulli(case, logistic, dtype, counter):
    shape, chunks, _ = case
    r1, r2 = gs.Philox(11, counter=counter), gs.Philox(11, counter=counter)
    fn = "logistic" if logistic else "gumbel"
    lazy = getattr(gsd, fn)(shape, chunks=chunks, dtype=dtype, rng=r1)
    assert_same(lazy, getattr(gs, fn)(shape, dtype=dtype, rng=r2))
    assert r1.counter == r2.counter
    assert lazy.chunks[:-1] == chunks[:-1] and len(lazy.chunks[-1]) == 1
    x = _data(shape, dtype)
    y, s = gsd.relaxed_bernoulli(
        da.from_array(x, chunks=chunks), 0.7, hard=True, rng=r1, return_soft=True
    )
    y2, s2 = gs.relaxed_bernoulli(x, 0.7, hard=True, rng=r2, return_soft=True)
    assert r1.counter == r2.counter
    got = compute(y, s)
    assert_same(got[0], y2)
    assert_same(got[1], s2)


@pytest.mark.parametrize("chunks", ["auto", 3, (2, 5, 4), (5, 1, 3), {0: 4}])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_gumbel_any_chunks(chunks, dtype):
    shape = (7, 5, 11)
    for fn in ("gumbel", "logistic"):
        r1, r2 = gs.Philox(3, counter=9), gs.Philox(3, counter=9)
        lazy = getattr(gsd, fn)(shape, chunks=chunks, dtype=dtype, rng=r1)
        assert_same(lazy, getattr(gs, fn)(shape, dtype=dtype, rng=r2))
        assert r1.counter == r2.counter == 9 + 35
        assert lazy.chunks[-1] == (11,)
    assert gsd.gumbel(5, rng=1).dtype == np.float32


def test_gumbel_is_the_noise_the_sampler_adds():
    x = _data((30, 8))
    xd = da.from_array(x, chunks=(7, 3))
    y = gsd.gumbel_softmax(xd, hard=True, rng=gs.Philox(4))
    g = gsd.gumbel(x.shape, chunks=(7, 3), rng=gs.Philox(4))
    expected = (x + g).argmax(axis=-1)
    assert np.array_equal(compute(y.argmax(axis=-1)), compute(expected))


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.bool_])
def test_dtypes_follow_numpy(dtype):
    x = (np.random.default_rng(2).standard_normal((9, 6)) * 3).astype(dtype)
    xd = da.from_array(x, chunks=(2, 4))
    for fn, kw in (
        ("gumbel_softmax", {}),
        ("gumbel_softmax", {"hard": True}),
        ("log_gumbel_softmax", {}),
        ("relaxed_bernoulli", {}),
        ("categorical", {}),
        ("relaxed_top_k", {"k": 2}),
        ("relaxed_top_k", {"k": 3, "hard": True}),
    ):
        lazy = getattr(gsd, fn)(xd, rng=3, **kw)
        expected = getattr(gs, fn)(x, rng=3, **kw)
        assert lazy.dtype == expected.dtype
        assert_same(lazy, expected)


def test_numpy_input_and_rng_kinds():
    x = _data((25, 6))
    assert_same(gsd.gumbel_softmax(x, rng=12), gs.gumbel_softmax(x, rng=12))
    assert_same(gsd.gumbel_softmax(x.tolist(), rng=12), gs.gumbel_softmax(x.tolist(), rng=12))
    assert_same(
        gsd.categorical(x, rng=np.random.default_rng(5)),
        gs.categorical(x, rng=np.random.default_rng(5)),
    )
    a, b = compute(gsd.gumbel_softmax(x, rng=None), gsd.gumbel_softmax(x, rng=None))
    assert not np.array_equal(a, b)  # fresh entropy each call
    assert np.allclose(a.sum(axis=-1), 1, atol=1e-5)


def test_consecutive_calls_continue_the_stream():
    x = _data((20, 5, 6))
    xd = da.from_array(x, chunks=(3, 2, 6))
    r1, r2 = gs.Philox(21), gs.Philox(21)
    lazy = [gsd.gumbel_softmax(xd, 0.5, rng=r1), gsd.categorical(xd, axis=1, rng=r1)]
    expected = [gs.gumbel_softmax(x, 0.5, rng=r2), gs.categorical(x, axis=1, rng=r2)]
    # a NumPy call after the lazy ones continues from the counter they reserved
    assert_same(gs.gumbel((4, 3), rng=r1), gs.gumbel((4, 3), rng=r2))
    lazy.append(gsd.gumbel((8, 3), chunks=(3, 3), rng=r1))
    expected.append(gs.gumbel((8, 3), rng=r2))
    assert r1.counter == r2.counter == 100 + 120 + 4 + 8
    for g, e in zip(compute(*lazy), expected):
        assert_same(g, e)


def test_per_row_tau():
    x = _data((8, 5, 6))
    xd = da.from_array(x, chunks=(3, 2, 4))
    rs = np.random.default_rng(3)
    for axis, tau in (
        (-1, rs.uniform(0.1, 3, (8, 5))),
        (-1, rs.uniform(0.1, 3, (8, 5, 1))),
        (-1, rs.uniform(0.1, 3, (5,))),
        (1, rs.uniform(0.1, 3, (8, 1, 6))),
    ):
        expected = gs.gumbel_softmax(x, tau, axis=axis, rng=1)
        assert_same(gsd.gumbel_softmax(xd, tau, axis=axis, rng=1), expected)
        assert_same(
            gsd.gumbel_softmax(xd, da.from_array(tau, chunks=2), axis=axis, rng=1), expected
        )
        assert_same(
            gsd.log_gumbel_softmax(xd, tau, axis=axis, rng=1),
            gs.log_gumbel_softmax(x, tau, axis=axis, rng=1),
        )
        assert_same(
            gsd.relaxed_top_k(xd, 2, da.from_array(tau, chunks=2), axis=axis, rng=1),
            gs.relaxed_top_k(x, 2, tau, axis=axis, rng=1),
        )
    bern_tau = rs.uniform(0.1, 3, (8, 1, 6))
    assert_same(
        gsd.relaxed_bernoulli(xd, da.from_array(bern_tau, chunks=(5, 1, 2)), rng=2),
        gs.relaxed_bernoulli(x, bern_tau, rng=2),
    )
    # a Dask tau's values are checked when its blocks run
    with pytest.raises(ValueError, match="tau must be positive and finite"):
        compute_raising(gsd.gumbel_softmax(xd, da.from_array(-rs.uniform(size=5)), rng=1))


def test_backward():
    x = _data((12, 7), np.float64)
    grad = _data((12, 7), np.float64, seed=1)
    tau = np.random.default_rng(0).uniform(0.2, 2, (12, 1))
    _, ys = gs.gumbel_softmax(x, tau, hard=True, rng=4, return_soft=True)
    expected = gs.gumbel_softmax_backward(grad, ys, tau)
    # different chunks for the two inputs; the category axis split
    lazy = gsd.gumbel_softmax_backward(
        da.from_array(grad, chunks=(5, 3)), da.from_array(ys, chunks=(3, 7)), tau
    )
    assert_same(lazy, expected)
    # the memory-saving form recomputes y_soft; the caller's Philox is not advanced
    rng = gs.Philox(4)
    lazy = gsd.gumbel_softmax_backward(
        grad, logits=da.from_array(x, chunks=(5, 2)), tau=tau, rng=rng
    )
    assert rng.counter == 0
    assert_same(lazy, expected)
    assert_same(
        gsd.gumbel_softmax_backward(grad.T, ys.T.astype(np.float32), 0.5, axis=0),
        gs.gumbel_softmax_backward(grad.T, ys.T.astype(np.float32), 0.5, axis=0),
    )
    s = np.random.default_rng(1).uniform(size=(12, 7)).astype(np.float32)
    assert_same(
        gsd.relaxed_bernoulli_backward(da.from_array(grad, chunks=4), s, 0.3),
        gs.relaxed_bernoulli_backward(grad, s, 0.3),
    )


def test_one_call_per_run(monkeypatch):
    """A block chunked along the first axis only is one NumPy call; otherwise one call
    per run of consecutive rows; return_soft does not run the sampler twice."""
    calls = []
    real = gs._api.gumbel_softmax

    def counting(x, *args, **kwargs):
        calls.append(x.shape)
        return real(x, *args, **kwargs)

    monkeypatch.setattr(gs._api, "gumbel_softmax", counting)
    x = _data((6, 4, 5))
    y, s = gsd.gumbel_softmax(
        da.from_array(x, chunks=(2, 4, 5)), hard=True, rng=1, return_soft=True
    )
    dask.compute(y, s, scheduler="sync")
    assert calls == [(2, 4, 5)] * 3
    calls.clear()
    # chunked along dim 1: each block (2, 2, 5) is 2 runs of 2 rows
    y = gsd.gumbel_softmax(da.from_array(x, chunks=(2, 2, 5)), rng=1)
    assert_same(y.compute(scheduler="sync"), real(x, rng=1))
    assert calls == [(2, 5)] * 12


def test_graph_is_deterministic_and_pickles():
    x = da.from_array(_data((10, 4)), chunks=(3, 4))
    a = gsd.gumbel_softmax(x, rng=gs.Philox(1, counter=2))
    b = gsd.gumbel_softmax(x, rng=gs.Philox(1, counter=2))
    assert a.name == b.name
    assert a.name != gsd.gumbel_softmax(x, rng=gs.Philox(1, counter=3)).name
    assert a.name != gsd.gumbel_softmax(x, rng=gs.Philox(2, counter=2)).name
    assert a.name != gsd.gumbel_softmax(x, 0.5, rng=gs.Philox(1, counter=2)).name
    assert a.name != gsd.gumbel_softmax(x, hard=True, rng=gs.Philox(1, counter=2)).name
    assert gsd.gumbel((4, 3), rng=5).name == gsd.gumbel((4, 3), rng=5).name
    y, s = gsd.gumbel_softmax(x, hard=True, rng=3, return_soft=True)
    assert y.name != s.name
    again = pickle.loads(pickle.dumps((a, y, s)))
    first = compute(a, y, s)
    for u, v in zip(compute(*again), first):
        assert_same(u, v)
    for u, v in zip(compute(a, y, s), first):  # computing twice gives the same bits
        assert_same(u, v)


def test_return_soft_not_hard_is_one_array():
    y, s = gsd.gumbel_softmax(_data((4, 3)), rng=1, return_soft=True)
    assert y is s


# Bad arguments: (function, args, kwargs); the dask call must raise what NumPy raises.
X = np.zeros((4, 3), np.float32)
BAD = [
    ("gumbel_softmax", (X,), {"tau": 0.0}),
    ("gumbel_softmax", (X,), {"tau": -1}),
    ("gumbel_softmax", (X,), {"tau": np.inf}),
    ("gumbel_softmax", (X,), {"tau": np.nan}),
    ("gumbel_softmax", (X,), {"tau": "a"}),
    ("gumbel_softmax", (X,), {"tau": True}),
    ("gumbel_softmax", (X,), {"tau": np.array([1.0, -1.0, 1.0, 1.0])}),
    ("gumbel_softmax", (X,), {"tau": np.ones(5)}),
    ("gumbel_softmax", (X,), {"axis": 2}),
    ("gumbel_softmax", (X,), {"axis": 1.0}),
    ("gumbel_softmax", (np.zeros(()),), {}),
    ("gumbel_softmax", (np.zeros((4, 0)),), {}),
    ("gumbel_softmax", (X.astype(np.complex64),), {}),
    ("gumbel_softmax", (X.astype(object),), {}),
    ("gumbel_softmax", (X,), {"rng": "a"}),
    ("gumbel_softmax", (X,), {"rng": 1.5}),
    ("gumbel_softmax", (X,), {"rng": True}),
    ("log_gumbel_softmax", (X,), {"tau": 0}),
    ("categorical", (X,), {"axis": -3}),
    ("categorical", (np.zeros(()),), {}),
    ("top_k", (X, 4), {}),
    ("top_k", (X, -1), {}),
    ("top_k", (X, 1.0), {}),
    ("top_k", (X, True), {}),
    ("conditional_gumbel", (X, np.zeros(4)), {}),
    ("conditional_gumbel", (X, np.zeros(3, int)), {}),
    ("conditional_gumbel", (X, np.zeros(4, int)), {"axis": 2}),
    ("conditional_gumbel", (X.astype(complex), np.zeros(4, int)), {}),
    ("gumbel", ((),), {}),
    ("gumbel", ((3, -1),), {}),
    ("gumbel", ("a",), {}),
    ("gumbel", ((3,),), {"dtype": np.int32}),
    ("gumbel", ((3,),), {"dtype": "foo"}),
    ("gumbel", ((3,),), {"rng": object()}),
    ("relaxed_bernoulli", (X,), {"tau": 0}),
    ("relaxed_bernoulli", (X,), {"tau": np.ones(5)}),
    ("relaxed_bernoulli", (X.astype(complex),), {}),
    ("gumbel_softmax_backward", (X, X[:2]), {}),
    ("gumbel_softmax_backward", (X, X), {"tau": 0}),
    ("gumbel_softmax_backward", (X, X), {"axis": 5}),
    ("gumbel_softmax_backward", (np.zeros(()), np.zeros(())), {}),
    ("gumbel_softmax_backward", (X.astype(complex), X), {}),
    ("gumbel_softmax_backward", (X,), {}),
    ("gumbel_softmax_backward", (X, X), {"logits": X}),
    ("gumbel_softmax_backward", (X,), {"logits": X}),
    ("gumbel_softmax_backward", (X,), {"logits": X[:2], "rng": 1}),
    ("relaxed_top_k", (X, 0), {}),
    ("relaxed_top_k", (X, 4), {}),
    ("relaxed_top_k", (X, 2.0), {}),
    ("relaxed_top_k", (X, True), {}),
    ("relaxed_top_k", (X, 2), {"tau": -1.0}),
    ("relaxed_top_k", (X, 2), {"tau": np.ones(5)}),
    ("relaxed_top_k", (X, 2), {"axis": 2}),
    ("relaxed_top_k", (X, 2), {"hard": "yes"}),
    ("relaxed_top_k", (X, 2), {"return_soft": 2}),
    ("relaxed_top_k", (X.astype(complex), 2), {}),
    ("relaxed_top_k", (np.zeros(()), 1), {}),
    ("relaxed_bernoulli_backward", (X, X[:2]), {}),
    ("relaxed_bernoulli_backward", (X, X), {"tau": -2}),
]


@pytest.mark.parametrize("fn, args, kwargs", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_errors_raise_eagerly_as_numpy(fn, args, kwargs):
    with pytest.raises(Exception) as np_err:
        getattr(gs, fn)(*args, **kwargs)
    rng = gs.Philox(1)
    if "rng" not in kwargs and fn not in ("gumbel_softmax_backward", "relaxed_bernoulli_backward"):
        kwargs = dict(kwargs, rng=rng)
    # the same, with a Dask array as input, at call time (nothing is computed)
    dargs = tuple(
        da.from_array(a, chunks=2)
        if isinstance(a, np.ndarray) and a.ndim and a.dtype != object
        else a
        for a in args
    )
    for call_args in (args, dargs):
        with pytest.raises(type(np_err.value)) as err:
            getattr(gsd, fn)(*call_args, **kwargs)
        assert str(err.value) == str(np_err.value)
    assert rng.counter == 0  # a failing call reserves nothing


def test_conditional_index_values():
    """An index out of range or at a -inf logit: with NumPy logits and index the Dask
    call raises at call time as NumPy does, reserving nothing; with a Dask index, the
    NumPy call inside the block raises from compute."""
    x = np.where(np.arange(3) == 1, -np.inf, X)
    for bad, exc in (([0, 3, 0, 0], IndexError), ([0, 1, 0, 0], ValueError)):
        with pytest.raises(exc) as np_err:
            gs.conditional_gumbel(x, bad)
        rng = gs.Philox(1)
        with pytest.raises(exc) as err:
            gsd.conditional_gumbel(x, bad, rng=rng)
        assert str(err.value) == str(np_err.value) and rng.counter == 0
        lazy = gsd.conditional_gumbel(x, da.from_array(np.array(bad), chunks=2), rng=rng)
        assert rng.counter == 4
        with pytest.raises(exc):
            compute_raising(lazy)


def test_unknown_chunks_raise():
    x = da.from_array(_data((10, 3)), chunks=(4, 3))
    x = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        gsd.gumbel_softmax(x, rng=1)


def _run_python(code):
    return run_python(code, env=child_env(same_path=True), timeout=60)


def test_import_gumbel_softmax_does_not_import_dask():
    res = _run_python("""
        import sys, gumbel_softmax
        assert "dask" not in sys.modules and "gumbel_softmax.dask" not in sys.modules
    """)
    assert res.returncode == 0, res.stderr


def test_import_without_dask_says_how_to_install():
    res = _run_python("""
        import sys
        sys.modules["dask"] = None  # as if Dask were not installed
        try:
            import gumbel_softmax.dask
        except ImportError as e:
            print(e)
        else:
            raise SystemExit("no ImportError")
    """)
    assert res.returncode == 0, res.stderr
    assert "gumbel_softmax.dask needs Dask: pip install 'gumbel-softmax[dask]'" in res.stdout


# ------------------------------------------------------------------ distributed cluster


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip(
        "distributed", reason="the cluster tests need dask.distributed (pip install distributed)"
    )
    # dashboard_address=":0": a free port (with None the scheduler's HTTP server still
    # took 8787, and the fixture failed whenever another process held it)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def test_cluster_matches_numpy(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()
    x = _data((60, 5, 7))
    xd = da.from_array(x, chunks=(11, 2, 3))  # several batch dims, the sampled axis split
    r1, r2 = gs.Philox(99, counter=2**32 - 7), gs.Philox(99, counter=2**32 - 7)
    lazy = [
        gsd.gumbel_softmax(xd, 0.5, rng=r1),
        gsd.gumbel_softmax(xd, 0.5, axis=1, rng=r1),
        *gsd.gumbel_softmax(xd, 0.5, hard=True, rng=r1, return_soft=True),
        gsd.categorical(xd, axis=0, rng=r1),
        gsd.top_k(xd, 2, rng=r1),
        gsd.gumbel((60, 5, 7), chunks=(7, 2, 7), rng=r1),
        gsd.relaxed_bernoulli(xd, 0.5, rng=r1),
        *gsd.relaxed_top_k(xd, 3, 0.4, hard=True, axis=1, rng=r1, return_soft=True),
    ]
    expected = [
        gs.gumbel_softmax(x, 0.5, rng=r2),
        gs.gumbel_softmax(x, 0.5, axis=1, rng=r2),
        *gs.gumbel_softmax(x, 0.5, hard=True, rng=r2, return_soft=True),
        gs.categorical(x, axis=0, rng=r2),
        gs.top_k(x, 2, rng=r2),
        gs.gumbel((60, 5, 7), rng=r2),
        gs.relaxed_bernoulli(x, 0.5, rng=r2),
        *gs.relaxed_top_k(x, 3, 0.4, hard=True, axis=1, rng=r2, return_soft=True),
    ]
    assert r1.counter == r2.counter
    got = client.gather(client.compute(lazy))
    for g, e in zip(got, expected):
        assert_same(g, e)
    # copies of the generator state give the same graph, so the same bits again
    r3 = copy.copy(gs.Philox(99, counter=2**32 - 7))
    assert_same(client.compute(gsd.gumbel_softmax(xd, 0.5, rng=r3)).result(), expected[0])
