"""Determinism of the samples: thread counts, splits of rows into calls, axes, seeds.

The random stream is a function of ``(seed, counter)`` alone, so every result below
must be *bitwise* identical, not merely close.
"""

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal, child_env, run_python

DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------------------------
# The workload shared by the subprocess runs and the in-process set_num_threads runs.
# It is source text so that a child interpreter can run exactly the same code.
# --------------------------------------------------------------------------------------
WORKLOAD = r'''
import numpy as np
import gumbel_softmax as gs

SHAPES = [(2048, 300), (3, 200000), (50000, 7)]


def compute():
    """Results of every sampler for big (parallel) shapes; name -> array."""
    data = np.random.default_rng(20240611)
    res = {}
    for shape in SHAPES:
        for dt in (np.float32, np.float64):
            name = "x".join(map(str, shape)) + "_" + np.dtype(dt).name
            x = (data.standard_normal(shape) * 3.0).astype(dt)
            # start just below the 2**32 boundary of the low counter word
            y, y_soft = gs.gumbel_softmax(x, 0.7, rng=gs.Philox(11, counter=2**32 - 5),
                                          return_soft=True)
            res[name + "_soft"] = y
            yh, yh_soft = gs.gumbel_softmax(x, 0.7, hard=True, return_soft=True,
                                            rng=gs.Philox(11, counter=2**32 - 5))
            res[name + "_hard"] = yh
            res[name + "_hard_soft"] = yh_soft
            gy = data.standard_normal(shape).astype(dt)
            res[name + "_backward"] = gs.gumbel_softmax_backward(gy, y_soft, 0.7)
            res[name + "_backward_axis0"] = gs.gumbel_softmax_backward(
                gy, y_soft, 1.5, axis=0)
            res[name + "_gumbel_rao"] = gs.gumbel_rao_backward(
                gy, x, yh, 0.7, samples=2, rng=gs.Philox(15, counter=2**32 - 3))
            res[name + "_reinmax"] = gs.reinmax_backward(gy, x, yh, 1.5, grad_p=y_soft)
            res[name + "_gumbel"] = gs.gumbel(shape, dtype=dt,
                                              rng=gs.Philox(2**40 + 3, counter=12345))
            res[name + "_soft_axis0"] = gs.gumbel_softmax(x, 2.0, axis=0,
                                                          rng=gs.Philox(13))
            res[name + "_hard_axis0"] = gs.gumbel_softmax(x, 2.0, axis=0, hard=True,
                                                          rng=gs.Philox(13))
            # a non-contiguous, negatively strided view
            xv = x[::-2, ::-1]
            res[name + "_soft_view"] = gs.gumbel_softmax(xv, 0.3, rng=gs.Philox(14))
            idx = gs.categorical(x, rng=gs.Philox(15))
            res[name + "_conditional"] = gs.conditional_gumbel(
                x, idx, rng=gs.Philox(16, counter=2**32 - 5))
            idx0 = gs.categorical(x, axis=0, rng=gs.Philox(15))
            res[name + "_conditional_axis0"] = gs.conditional_gumbel(
                x, idx0, axis=0, rng=gs.Philox(16))
    return res
'''

CHILD_MAIN = r"""
import sys
outdir = sys.argv[1]
res = compute()
res["num_threads"] = np.array(gs.get_num_threads())
for k, v in res.items():
    np.save(f"{outdir}/{k}.npy", v)
"""


def _workload_namespace():
    ns = {}
    exec(compile(WORKLOAD, "<determinism workload>", "exec"), ns)
    return ns


def _run_child(tmp_path, nthreads):
    outdir = tmp_path / f"omp{nthreads}"
    outdir.mkdir()
    env = child_env(same_path=True, OMP_NUM_THREADS=str(nthreads))
    proc = run_python(WORKLOAD + CHILD_MAIN, outdir, env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {p.stem: np.load(p) for p in outdir.glob("*.npy")}


@pytest.fixture
def restore_threads():
    yield
    gs.set_num_threads(0)  # follow OpenMP's setting again, as at import


def _have_openmp():
    return gs._core.have_openmp


def test_omp_num_threads_1_vs_2_bitwise(tmp_path):
    r1 = _run_child(tmp_path, 1)
    r2 = _run_child(tmp_path, 2)
    assert int(r1.pop("num_threads")) == 1
    assert int(r2.pop("num_threads")) == (2 if _have_openmp() else 1)
    assert sorted(r1) == sorted(r2)
    assert len(r1) == 3 * 2 * 13
    for name in r1:
        assert_bitwise_equal(r1[name], r2[name])
    # and the same as this process computes, whatever its thread count
    mine = _workload_namespace()["compute"]()
    assert sorted(mine) == sorted(r1)
    for name in mine:
        assert_bitwise_equal(mine[name], r1[name])


def test_set_num_threads_1_vs_2_bitwise(restore_threads):
    compute = _workload_namespace()["compute"]
    gs.set_num_threads(1)
    assert gs.get_num_threads() == 1
    r1 = compute()
    gs.set_num_threads(2)
    r2 = compute()
    assert sorted(r1) == sorted(r2)
    for name in r1:
        assert_bitwise_equal(r1[name], r2[name])


# --------------------------------------------------------------------------------------
# Splitting the rows over several calls
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_split_rows_over_calls_2d(dtype, hard):
    R, K = 1000, 37
    x = (np.random.default_rng(1).standard_normal((R, K)) * 2).astype(dtype)
    start = 2**32 - 150  # the split crosses the low-word boundary of the counter
    whole = gs.gumbel_softmax(x, 0.9, hard=hard, rng=gs.Philox(77, counter=start))
    rng = gs.Philox(77, counter=start)
    parts = []
    for lo, hi in [(0, 100), (100, 101), (101, R)]:
        parts.append(gs.gumbel_softmax(x[lo:hi], 0.9, hard=hard, rng=rng))
        assert rng.counter == start + hi
    assert_bitwise_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_rows_over_calls_conditional(dtype):
    R, K = 1000, 37
    x = (np.random.default_rng(4).standard_normal((R, K)) * 2).astype(dtype)
    idx = gs.categorical(x, rng=3)
    start = 2**32 - 150  # the split crosses the low-word boundary of the counter
    whole = gs.conditional_gumbel(x, idx, rng=gs.Philox(78, counter=start))
    rng = gs.Philox(78, counter=start)
    parts = []
    for lo, hi in [(0, 100), (100, 101), (101, R)]:
        parts.append(gs.conditional_gumbel(x[lo:hi], idx[lo:hi], rng=rng))
        assert rng.counter == start + hi
    assert_bitwise_equal(np.concatenate(parts), whole)
    # along axis 0, the rows split by columns
    x0 = np.ascontiguousarray(x.T)
    whole0 = gs.conditional_gumbel(x0, idx, axis=0, rng=gs.Philox(78, counter=start))
    assert_bitwise_equal(whole0, whole.T)
    rng = gs.Philox(78, counter=start)
    parts = [
        gs.conditional_gumbel(x0[:, lo:hi], idx[lo:hi], axis=0, rng=rng)
        for lo, hi in [(0, 10), (10, 11), (11, R)]
    ]
    assert_bitwise_equal(np.concatenate(parts, axis=1), whole0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_rows_over_calls_gumbel(dtype):
    R, K = 700, 29
    whole = gs.gumbel((R, K), dtype=dtype, rng=gs.Philox(5, counter=2**32 - 100))
    rng = gs.Philox(5, counter=2**32 - 100)
    parts = [gs.gumbel((n, K), dtype=dtype, rng=rng) for n in (100, 1, R - 101)]
    assert rng.counter == 2**32 - 100 + R
    assert_bitwise_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_split_rows_over_calls_axis0(dtype, hard):
    # shape (K, A, B) with axis=0: rows are the (a, b) pairs in C order, so the slices
    # x[:, lo:hi] hold the contiguous row ranges [lo*B, hi*B).
    K, A, B = 13, 40, 6
    x = np.random.default_rng(2).standard_normal((K, A, B)).astype(dtype)
    whole = gs.gumbel_softmax(x, 1.3, axis=0, hard=hard, rng=gs.Philox(9, counter=3))
    rng = gs.Philox(9, counter=3)
    parts = [
        gs.gumbel_softmax(x[:, lo:hi], 1.3, axis=0, hard=hard, rng=rng)
        for lo, hi in [(0, 10), (10, 11), (11, A)]
    ]
    assert rng.counter == 3 + A * B
    assert_bitwise_equal(np.concatenate(parts, axis=1), whole)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_rows_3d_batch(dtype):
    x = np.random.default_rng(3).standard_normal((7, 30, 11)).astype(dtype)
    whole = gs.gumbel_softmax(x, 0.5, rng=gs.Philox(123, counter=2**33 + 1))
    rng = gs.Philox(123, counter=2**33 + 1)
    parts = [gs.gumbel_softmax(x[lo:hi], 0.5, rng=rng) for lo, hi in [(0, 3), (3, 4), (4, 7)]]
    assert rng.counter == 2**33 + 1 + 7 * 30
    assert_bitwise_equal(np.concatenate(parts), whole)


# --------------------------------------------------------------------------------------
# axis=a is moveaxis of axis=-1
# --------------------------------------------------------------------------------------
AXIS_SHAPES = [(5, 6, 7), (3, 4, 5, 6), (64, 50, 30)]


def _axis_cases():
    for shape in AXIS_SHAPES:
        for a in range(len(shape)):
            yield shape, a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape,axis", list(_axis_cases()))
def test_axis_equals_moveaxis(shape, axis, hard, dtype):
    x = (np.random.default_rng(4).standard_normal(shape) * 2).astype(dtype)
    R = int(np.prod(shape)) // shape[axis]
    rng_a = gs.Philox(31, counter=2**32 - 17)
    y, y_soft = gs.gumbel_softmax(x, 0.8, hard=hard, axis=axis, rng=rng_a, return_soft=True)
    rng_b = gs.Philox(31, counter=2**32 - 17)
    z, z_soft = gs.gumbel_softmax(
        np.moveaxis(x, axis, -1), 0.8, hard=hard, rng=rng_b, return_soft=True
    )
    assert rng_a.counter == rng_b.counter == 2**32 - 17 + R
    assert_bitwise_equal(y, np.moveaxis(z, -1, axis))
    assert_bitwise_equal(y_soft, np.moveaxis(z_soft, -1, axis))
    # the negative spelling of the axis is the same axis
    w = gs.gumbel_softmax(
        x, 0.8, hard=hard, axis=axis - len(shape), rng=gs.Philox(31, counter=2**32 - 17)
    )
    assert_bitwise_equal(w, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", list(_axis_cases()))
def test_backward_axis_equals_moveaxis(shape, axis, dtype):
    data = np.random.default_rng(5)
    gy = data.standard_normal(shape).astype(dtype)
    ys = data.random(shape).astype(dtype)
    got = gs.gumbel_softmax_backward(gy, ys, 0.6, axis=axis)
    ref = gs.gumbel_softmax_backward(np.moveaxis(gy, axis, -1), np.moveaxis(ys, axis, -1), 0.6)
    assert_bitwise_equal(got, np.moveaxis(ref, -1, axis))
    neg = gs.gumbel_softmax_backward(gy, ys, 0.6, axis=axis - len(shape))
    assert_bitwise_equal(neg, got)


# --------------------------------------------------------------------------------------
# rng forms
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_int_seed_reproduces(dtype):
    x = np.random.default_rng(6).standard_normal((50, 9)).astype(dtype)
    a = gs.gumbel_softmax(x, 0.5, rng=2024)
    b = gs.gumbel_softmax(x, 0.5, rng=2024)
    assert_bitwise_equal(a, b)
    # an int seed is a fresh Philox(seed) for every call
    assert_bitwise_equal(a, gs.gumbel_softmax(x, 0.5, rng=gs.Philox(2024)))
    assert_bitwise_equal(
        gs.gumbel((50, 9), dtype=dtype, rng=2024), gs.gumbel((50, 9), dtype=dtype, rng=2024)
    )
    # a different seed gives a different sample
    assert not np.array_equal(a, gs.gumbel_softmax(x, 0.5, rng=2025))


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_generator_reproduces(dtype):
    x = np.random.default_rng(7).standard_normal((50, 9)).astype(dtype)
    a = gs.gumbel_softmax(x, 0.5, rng=np.random.default_rng(5))
    b = gs.gumbel_softmax(x, 0.5, rng=np.random.default_rng(5))
    assert_bitwise_equal(a, b)
    assert_bitwise_equal(
        gs.gumbel((50, 9), dtype=dtype, rng=np.random.default_rng(5)),
        gs.gumbel((50, 9), dtype=dtype, rng=np.random.default_rng(5)),
    )
    # a seed is drawn from the generator, so it advances: the next call differs
    g = np.random.default_rng(5)
    c = gs.gumbel_softmax(x, 0.5, rng=g)
    d = gs.gumbel_softmax(x, 0.5, rng=g)
    assert_bitwise_equal(c, a)
    assert not np.array_equal(c, d)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rng_none_differs(dtype):
    x = np.zeros((20, 10), dtype=dtype)
    a = gs.gumbel_softmax(x, 1.0, rng=None)
    b = gs.gumbel_softmax(x)
    assert a.dtype == b.dtype == dtype
    assert not np.array_equal(a, b)
    assert not np.array_equal(gs.gumbel((20, 10), dtype=dtype), gs.gumbel((20, 10), dtype=dtype))
    assert gs.Philox().seed != gs.Philox().seed


def test_gumbel_is_the_noise_of_the_sampler():
    # with tau=1 and hard=True the one-hot is the argmax of logits + gumbel noise
    x = np.random.default_rng(8).standard_normal((300, 12))
    g = gs.gumbel(x.shape, dtype=np.float64, rng=gs.Philox(44, counter=2**32 - 3))
    y = gs.gumbel_softmax(x, hard=True, rng=gs.Philox(44, counter=2**32 - 3))
    expect = np.zeros_like(y)
    expect[np.arange(300), np.argmax(x + g, axis=-1)] = 1.0
    assert_bitwise_equal(y, expect)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tau", [0.7, 1.0])  # 1.0: the tau = 1 arithmetic
@pytest.mark.parametrize("shape", [(1, 3 * 2**15 + 77), (1, 2**16), (2, 70_001)])
def test_long_rows_split_over_threads_bitwise(shape, dtype, tau, restore_threads):
    """Few long rows are split into fixed segments of 2**15 elements over the threads;
    forward (soft, hard), backward and their sums must not depend on the thread count,
    and the soft sample must match the NumPy reference."""
    from reference import backward_ref, check_forward

    gen = np.random.default_rng(11)
    x = (3 * gen.standard_normal(shape)).astype(dtype)
    w = gen.standard_normal(shape).astype(dtype)
    results = []
    for nthreads in (1, 2):
        gs.set_num_threads(nthreads)
        y = gs.gumbel_softmax(x, tau, rng=gs.Philox(4, counter=2**32 - 1))
        h, s = gs.gumbel_softmax(x, tau, hard=True, return_soft=True, rng=4)
        b = gs.gumbel_softmax_backward(w, s, tau)
        bt = gs.gumbel_softmax_backward(w.T, s.T, tau, axis=0)  # strided rows
        results.append((y, h, s, b, bt))
    for a, b in zip(*results):
        assert_bitwise_equal(a, b)
    g = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(4, counter=2**32 - 1))
    check_forward(results[0][0], x, g, tau)
    assert_bitwise_equal(results[0][3], results[0][4].T)
    np.testing.assert_allclose(
        results[0][3],
        backward_ref(w, results[0][2], tau),
        rtol=1e-4,
        atol=1e-6 if dtype == np.float32 else 1e-12,
    )


# --------------------------------------------------------------------------------------
# relaxed_top_k and its backward: threads, splits of the rows, axes
# --------------------------------------------------------------------------------------
SUBSET_CHILD = r"""
import sys
import numpy as np
import gumbel_softmax as gs
out = {}
data = np.random.default_rng(3)
for shape, k in (((3000, 40), 4), ((2, 70_001), 3), ((20_000, 9), 9)):
    for dt in (np.float32, np.float64):
        x = (2 * data.standard_normal(shape)).astype(dt)
        gy = data.standard_normal(shape).astype(dt)
        name = f"{shape[0]}x{shape[1]}_{np.dtype(dt).name}"
        rng = gs.Philox(11, counter=2**32 - 5)
        out[name + "_hard"], out[name + "_soft"] = gs.relaxed_top_k(
            x, k, 0.6, hard=True, return_soft=True, rng=rng)
        out[name + "_axis0"] = gs.relaxed_top_k(x, 2, 1.5, axis=0, rng=gs.Philox(12))
        out[name + "_bwd"] = gs.relaxed_top_k_backward(gy, x, k, 0.6,
                                                       rng=gs.Philox(11, counter=2**32 - 5))
out["num_threads"] = np.array(gs.get_num_threads())
np.savez(sys.argv[1], **out)
"""


def test_relaxed_top_k_threads_1_vs_2_bitwise(tmp_path):
    """OMP_NUM_THREADS=1 and 2 give the same bits (forward soft and hard, along axis 0,
    and the backward), for many short rows, few long ones and many rows of 9."""
    res = {}
    for n in (1, 2):
        env = child_env(same_path=True, OMP_NUM_THREADS=str(n))
        proc = run_python(SUBSET_CHILD, tmp_path / f"t{n}.npz", env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        res[n] = dict(np.load(tmp_path / f"t{n}.npz"))
    assert int(res[1].pop("num_threads")) == 1
    assert int(res[2].pop("num_threads")) == (2 if _have_openmp() else 1)
    assert sorted(res[1]) == sorted(res[2]) and len(res[1]) == 3 * 2 * 4
    for name in res[1]:
        assert_bitwise_equal(res[1][name], res[2][name], name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_relaxed_top_k_split_rows_over_calls(dtype, hard):
    """Any split of the rows into calls from one generator gives the same bits; the
    backward of each part, replayed from the part's state, too."""
    R, K = 600, 23
    x = (np.random.default_rng(1).standard_normal((R, K)) * 2).astype(dtype)
    gy = np.random.default_rng(2).standard_normal((R, K)).astype(dtype)
    start = 2**32 - 150
    whole = gs.relaxed_top_k(x, 5, 0.7, hard=hard, rng=gs.Philox(77, counter=start))
    bwhole = gs.relaxed_top_k_backward(gy, x, 5, 0.7, rng=gs.Philox(77, counter=start))
    rng = gs.Philox(77, counter=start)
    parts, bparts = [], []
    for lo, hi in [(0, 100), (100, 101), (101, R)]:
        bparts.append(gs.relaxed_top_k_backward(gy[lo:hi], x[lo:hi], 5, 0.7, rng=rng))
        parts.append(gs.relaxed_top_k(x[lo:hi], 5, 0.7, hard=hard, rng=rng))
        assert rng.counter == start + hi
    assert_bitwise_equal(np.concatenate(parts), whole)
    assert_bitwise_equal(np.concatenate(bparts), bwhole)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", list(_axis_cases()))
def test_relaxed_top_k_axis_equals_moveaxis(shape, axis, dtype):
    """axis=a (any strides) is moveaxis of the contiguous last-axis call from the same
    state, forward (soft, hard) and backward; a negative axis is the same axis."""
    x = (np.random.default_rng(4).standard_normal(shape) * 2).astype(dtype)
    gy = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    k = min(3, shape[axis])
    xm, gm = np.moveaxis(x, axis, -1), np.moveaxis(gy, axis, -1)

    def rng():
        return gs.Philox(31, counter=2**32 - 17)

    for hard in (False, True):
        y = gs.relaxed_top_k(x, k, 0.8, hard=hard, axis=axis, rng=rng())
        z = gs.relaxed_top_k(np.ascontiguousarray(xm), k, 0.8, hard=hard, rng=rng())
        assert_bitwise_equal(y, np.moveaxis(z, -1, axis))
        w = gs.relaxed_top_k(x, k, 0.8, hard=hard, axis=axis - len(shape), rng=rng())
        assert_bitwise_equal(w, y)
    b = gs.relaxed_top_k_backward(gy, x, k, 0.8, axis=axis, rng=rng())
    c = gs.relaxed_top_k_backward(
        np.ascontiguousarray(gm), np.ascontiguousarray(xm), k, 0.8, rng=rng()
    )
    assert_bitwise_equal(b, np.moveaxis(c, -1, axis))
