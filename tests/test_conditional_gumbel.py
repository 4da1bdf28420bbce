"""gs.conditional_gumbel: Gumbel-perturbed logits conditioned on their argmax.

What the API reference promises (docs/api: ``gs.conditional_gumbel``; docs/user-guide.md
"Conditional Gumbel samples"), and how it is checked here:

- ``argmax(z, axis) == index`` in every row (first-maximum rule), over seeds, shapes,
  dtypes, axes and layouts, with ``-inf`` logits, equal logits, and rows where rounding
  ties a ``z[j]`` with ``z[index]`` (the tie rule: ``z[j] < z[I]`` for ``j < I``, by
  taking the next number below ``z[I]``; ``z[j] <= z[I]`` for ``j > I``).
- the formula, against a NumPy reference in extended precision (np.longdouble) built from
  our own noise ``g = gs.gumbel(shape, dtype, rng=gs.Philox(seed))`` (the counters a
  ``gumbel_softmax`` row uses): ``z[I] = logsumexp(x) + g[I]`` and
  ``z[j] = -log(exp(-z[I]) + exp(-x[j]) * exp(-g[j]))``.  Tolerance: ``TOL_ULPS`` units of
  ``eps(dtype) * (1 + max|x| + max|g|)`` of the row (the rounding of ``x + g`` and of
  ``logsumexp``, then exp/log1p at <= 2 ulps each).
- the distribution: conditional samples against unconditional ``x + g`` filtered on
  ``argmax == I`` (two-sample KS on every coordinate), and ``z[I] - logsumexp(x)`` against
  the standard Gumbel (KS, scipy.stats.gumbel_r).
- every supported SIMD target gives the same bits; 1 and 2 threads give the same bits.
- the stream: the rows of ``gumbel_softmax`` (counter advance, rows contract, numpy
  Generator seeding), and the errors (each names its argument; a failed call consumes no
  row of a Philox nor moves a Generator, and leaves ``out`` untouched).

Statistical tests: fixed seeds; the overall false-alarm rate of the distribution test is
``ALPHA = 1e-3``, Bonferroni-split over its comparisons.  The stream being bitwise
reproducible, a correct implementation passes or fails deterministically; the
probability over the choice of seeds that a correct implementation fails is ALPHA.
"""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal, run_python, target_env
from scipy import stats

try:
    import ml_dtypes
except ImportError:  # pragma: no cover - optional
    ml_dtypes = None

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
TOL_ULPS = 8
ALPHA = 1e-3


def _logits(shape, dtype, seed, scale=3.0, ninf=0.1):
    gen = np.random.default_rng(seed)
    x = (scale * gen.standard_normal(shape)).astype(dtype)
    x[gen.random(shape) < ninf] = -np.inf
    return x


def _index(x, axis, seed):
    """A random index per row of x (along axis) at a finite logit; x gets one finite
    logit in rows that have none."""
    xm = np.moveaxis(x, axis, -1)
    gen = np.random.default_rng(seed + 1000)
    finite = np.isfinite(xm)
    xm[..., 0] = np.where(finite.any(axis=-1), xm[..., 0], 0)
    finite = np.isfinite(xm)
    keys = np.where(finite, gen.random(xm.shape), -1.0)
    return keys.argmax(axis=-1)


def _first_argmax_is_index(z, idx, axis):
    return np.array_equal(np.argmax(z, axis=axis), idx)


# ------------------------------------------------------------------- argmax == index
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "shape, axis",
    [((200, 2), -1), ((50, 7), -1), ((7, 50), 0), ((3, 300, 4), 1), ((9, 1000), -1), ((5,), 0)],
)
def test_argmax_is_index(dtype, shape, axis):
    for seed in range(5):
        x = _logits(shape, dtype, seed)
        idx = _index(x, axis, seed)
        z = gs.conditional_gumbel(x, idx, axis=axis, rng=seed)
        assert z.dtype == dtype and z.shape == x.shape
        assert _first_argmax_is_index(z, idx, axis), seed
        assert np.array_equal(np.isneginf(z), np.isneginf(x))  # -inf stays -inf
        assert np.isfinite(z[np.isfinite(x)]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_near_ties(dtype):
    """Equal logits, and huge logits (where z[j] rounds to z[I] often): the tie rule."""
    n = 64
    eq = np.zeros((300, n), dtype)
    idx = np.arange(300) % n
    z = gs.conditional_gumbel(eq, idx, rng=1)
    assert _first_argmax_is_index(z, idx, -1)
    big = np.full((2000, n), 1e6 if dtype == np.float32 else 1e15, dtype)
    big += np.arange(n, dtype=dtype)[::-1] * np.finfo(dtype).eps * big[0, 0]
    idx = np.random.default_rng(2).integers(0, n, 2000)
    z = gs.conditional_gumbel(big, idx, rng=2)
    assert _first_argmax_is_index(z, idx, -1)
    zi = z[np.arange(2000), idx][:, None]
    cols = np.arange(n)[None, :]
    assert (z <= zi).all()
    below = np.nextafter(zi, dtype(-np.inf))
    nudged = (cols < idx[:, None]) & (z == below)
    assert nudged.sum() > 10  # the rule was exercised: these would be ties with z[I]
    assert not ((cols < idx[:, None]) & (z == zi)).any()


# ------------------------------------------------------------------------- reference
def _reference(x, idx, g):
    """z in np.longdouble from the formula (rows along the last axis)."""
    L = np.longdouble
    x, g = x.astype(L), g.astype(L)
    xm = x.max(axis=-1, keepdims=True)
    lse = xm + np.log(np.exp(x - xm).sum(axis=-1, keepdims=True))
    zi = lse + np.take_along_axis(g, idx[..., None], -1)
    with np.errstate(over="ignore"):
        z = -np.log(np.exp(-zi) + np.exp(-x) * np.exp(-g))
    np.put_along_axis(z, idx[..., None], zi, -1)
    return z


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("shape", [(40, 3), (30, 16), (20, 33), (4, 300), (2, 3000)])
def test_matches_reference(dtype, shape):
    for seed in range(3):
        x = _logits(shape, dtype, seed)
        idx = _index(x, -1, seed)
        z = gs.conditional_gumbel(x, idx, rng=gs.Philox(seed))
        g = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(seed))  # the same counters
        ref = _reference(x, idx, g)
        finite = np.isfinite(x)
        assert np.array_equal(np.isneginf(z), ~finite)
        scale = (
            1 + np.abs(np.where(finite, x, 0)).max(-1, keepdims=True) + np.abs(g).max(-1)[:, None]
        )
        with np.errstate(invalid="ignore"):  # -inf - -inf where x is -inf
            err = np.abs(z.astype(np.longdouble) - ref)
        tol = TOL_ULPS * np.finfo(dtype).eps * scale
        assert (err[finite] <= np.broadcast_to(tol, x.shape)[finite]).all(), float(
            (err[finite] / np.broadcast_to(tol, x.shape)[finite]).max()
        )


def test_long_rows_and_layouts():
    """Rows over several segments (logsumexp in segments), strided and axis-0 views."""
    x = _logits((2, 70_000), np.float32, 5, ninf=0.0)
    idx = np.array([3, 69_999])
    z = gs.conditional_gumbel(x, idx, rng=gs.Philox(4))
    g = gs.gumbel(x.shape, dtype=np.float32, rng=gs.Philox(4))
    ref = _reference(x, idx, g)
    tol = TOL_ULPS * np.finfo(np.float32).eps * (1 + np.abs(x).max() + np.abs(g).max())
    assert (np.abs(z - ref) <= tol).all()
    # axis 0 = the same rows as the moved array; a strided (reversed) view = its copy
    y = _logits((37, 11), np.float64, 6)
    iy = _index(y, 0, 6)
    z0 = gs.conditional_gumbel(y, iy, axis=0, rng=9)
    zm = gs.conditional_gumbel(np.moveaxis(y, 0, -1), iy, rng=9)
    assert_bitwise_equal(z0, np.moveaxis(zm, -1, 0))
    yr = y[::-1, ::-2]
    ir = _index(yr.copy(), -1, 7)
    assert_bitwise_equal(
        gs.conditional_gumbel(yr, ir, rng=3), gs.conditional_gumbel(yr.copy(), ir, rng=3)
    )
    out = np.empty((11, 37))[:, ::1].T  # a strided out
    res = gs.conditional_gumbel(y, iy, axis=0, rng=9, out=out)
    assert res is out
    assert_bitwise_equal(np.ascontiguousarray(out), z0)


# ---------------------------------------------------------------------- distribution
@pytest.mark.parametrize("index", [0, 2])
def test_distribution(index):
    x = np.array([1.0, 0.0, -0.5, 0.3, -np.inf])
    k = x.size - 1  # coordinates compared (the -inf one is always -inf)
    n_tests = 2 * (k + 1)  # both parametrisations: k coordinates + the Gumbel max
    alpha = ALPHA / n_tests
    lse = np.logaddexp.reduce(x[:k])
    # unconditional draws, filtered on argmax == index
    v = x + gs.gumbel((400_000, x.size), rng=gs.Philox(11))
    v = v[v.argmax(-1) == index]
    assert len(v) > 20_000
    z = gs.conditional_gumbel(np.tile(x, (20_000, 1)), np.full(20_000, index), rng=gs.Philox(12))
    assert (z.argmax(-1) == index).all() and np.isneginf(z[:, k]).all()
    for j in range(k):
        p = stats.ks_2samp(z[:, j], v[:, j]).pvalue
        assert p > alpha, (j, p)
    p = stats.kstest(z[:, index] - lse, stats.gumbel_r.cdf).pvalue
    assert p > alpha, p


def test_distribution_can_fail():
    """The KS comparison rejects a wrong law: the unconditional x + g (not conditioned)."""
    x = np.array([1.0, 0.0, -0.5, 0.3])
    v = x + gs.gumbel((100_000, 4), rng=gs.Philox(11))
    v = v[v.argmax(-1) == 2]
    wrong = x + gs.gumbel((20_000, 4), rng=gs.Philox(12))
    assert stats.ks_2samp(wrong[:, 2], v[:, 2]).pvalue < 1e-6


# ------------------------------------------------------------------------ half dtypes
HALF = [np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes is not None else [])


@pytest.mark.parametrize("low", HALF, ids=lambda t: np.dtype(t).name)
def test_half_dtypes(low):
    """Computed in float32 and rounded (as gumbel_softmax), then the tie rule again:
    rounding makes many z[j] equal z[I] at logits near 1000."""
    n = 16
    x = (1000 + np.random.default_rng(3).standard_normal((3000, n))).astype(low)
    x[:, 5] = -np.inf
    idx = np.random.default_rng(4).integers(0, n, 3000)
    idx[idx == 5] = 4
    z = gs.conditional_gumbel(x, idx, rng=8)
    assert z.dtype == low
    z32 = gs.conditional_gumbel(x.astype(np.float32), idx, rng=8)
    rounded = z32.astype(low)
    assert _first_argmax_is_index(z.astype(np.float32), idx, -1)
    zi = rounded[np.arange(3000), idx][:, None]
    nudged = (np.arange(n) < idx[:, None]) & (rounded.astype(np.float32) == zi.astype(np.float32))
    assert nudged.sum() > 100
    assert_bitwise_equal(z[~nudged], rounded[~nudged])
    below = np.broadcast_to(np.nextafter(zi, np.array(-np.inf, low)), z.shape)
    assert_bitwise_equal(z[nudged], below[nudged])  # the next number below z[I]
    # a strided half out, along axis 0
    out = np.zeros((n, 6000), low)[:, ::2]
    r = gs.conditional_gumbel(x.T, idx, axis=0, rng=8, out=out)
    assert r is out
    assert_bitwise_equal(out, z.T)


# ---------------------------------------------------------------- targets and threads
TARGET_SCRIPT = """
import sys, numpy as np, gumbel_softmax as gs
out = {"target": np.array(gs.cpu_target())}
for n, shape in enumerate([(7, 1), (5, 3), (9, 17), (4, 100), (2, 257), (3, 1000), (2, 40000)]):
    for dt in (np.float32, np.float64):
        gen = np.random.default_rng(n)
        x = (3 * gen.standard_normal(shape)).astype(dt)
        if shape[1] > 1:
            x[0, -1] = -np.inf
        for m, view in enumerate((x, x[::-1, ::-1], np.asfortranarray(x))):
            idx = gen.integers(0, shape[1], shape[0])
            at = np.take_along_axis(view, idx[:, None], 1)[:, 0]
            idx = np.where(np.isneginf(at), (idx + 1) % shape[1], idx)
            out[f"{n}{dt.__name__}{m}"] = gs.conditional_gumbel(view, idx, rng=n)
            big = view * dt(1e5)
            out[f"{n}{dt.__name__}{m}b"] = gs.conditional_gumbel(big, idx, rng=n + 1)
np.savez(sys.argv[1], **out)
"""


def test_every_target_bitwise_equal(tmp_path):
    results = {}
    for t in gs.cpu_targets():
        path = tmp_path / f"{t}.npz"
        proc = run_python(TARGET_SCRIPT, path, env=target_env(t), timeout=300)
        assert proc.returncode == 0, proc.stderr
        results[t] = np.load(path)
        assert str(results[t]["target"]) == t
    first, *rest = results
    assert len(results[first].files) > 40
    for t in rest:
        for name in results[first].files:
            if name != "target":
                assert_bitwise_equal(results[first][name], results[t][name], f"{t} {name}")


@pytest.fixture
def restore_threads():
    yield
    gs.set_num_threads(0)


def test_threads_bitwise(restore_threads):
    x = _logits((3000, 40), np.float32, 8)
    idx = _index(x, -1, 8)
    gs.set_num_threads(1)
    z1 = gs.conditional_gumbel(x, idx, rng=5)
    gs.set_num_threads(2)
    assert_bitwise_equal(z1, gs.conditional_gumbel(x, idx, rng=5))


# ---------------------------------------------------------------------------- stream
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_stream(dtype):
    x = _logits((10, 20), dtype, 3)
    idx = _index(x, -1, 3)
    rng = gs.Philox(7)
    a = gs.conditional_gumbel(x[:4], idx[:4], rng=rng)
    assert rng.counter == 4
    b = gs.conditional_gumbel(x[4:], idx[4:], rng=rng)
    assert rng.counter == 10
    assert_bitwise_equal(np.concatenate([a, b]), gs.conditional_gumbel(x, idx, rng=gs.Philox(7)))
    # the same rows as gumbel_softmax
    r2 = gs.Philox(7)
    gs.gumbel_softmax(x, rng=r2)
    assert r2.counter == rng.counter
    # a numpy Generator seeds a fresh Philox with one 64-bit draw
    seed = int(np.random.default_rng(3).integers(0, 2**64, dtype=np.uint64))
    gen = np.random.default_rng(3)
    assert_bitwise_equal(
        gs.conditional_gumbel(x, idx, rng=gen), gs.conditional_gumbel(x, idx, rng=gs.Philox(seed))
    )
    assert gen.bit_generator.state != np.random.default_rng(3).bit_generator.state


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_same_counters_as_gumbel_softmax(dtype):
    """At index = argmax(x + g) (categorical of the same state), z[I] = lse + g[I]."""
    x = _logits((50, 30), dtype, 4)
    g = gs.gumbel(x.shape, dtype=dtype, rng=gs.Philox(21))
    idx = gs.categorical(x, rng=gs.Philox(21))
    assert np.array_equal(idx, np.argmax(x + g, axis=-1))
    z = gs.conditional_gumbel(x, idx, rng=gs.Philox(21))
    x64 = x.astype(np.float64)
    lse = np.logaddexp.reduce(x64, axis=-1)
    gi = g[np.arange(50), idx].astype(np.float64)
    zi = z[np.arange(50), idx].astype(np.float64)
    assert np.allclose(zi, lse + gi, rtol=0, atol=8 * np.finfo(dtype).eps * (1 + np.abs(lse)))
    # another seed's noise is far off
    other = gs.gumbel(x.shape, dtype=dtype, rng=gs.Philox(22))[np.arange(50), idx]
    assert not np.allclose(zi, lse + other, atol=1e-3)


def test_in_place_and_integer_logits():
    x = _logits((6, 9), np.float64, 2)
    idx = _index(x, -1, 2)
    z = gs.conditional_gumbel(x, idx, rng=1)
    xc = x.copy()
    assert gs.conditional_gumbel(xc, idx, rng=1, out=xc) is xc
    assert_bitwise_equal(xc, z)
    zi = gs.conditional_gumbel(np.arange(12).reshape(3, 4), [0, 1, 3], rng=1)
    assert zi.dtype == np.float64 and np.array_equal(zi.argmax(-1), [0, 1, 3])


def test_undefined_rows_are_nan():
    x = np.array([[0.0, np.nan, 1.0], [0.0, np.inf, 1.0], [0.0, 1.0, 2.0]])
    z = gs.conditional_gumbel(x, [0, 2, 1], rng=1)
    assert np.isnan(z[:2]).all() and np.isfinite(z[2]).all()
    assert (z[:2].view(np.uint64) == np.array(np.nan).view(np.uint64)).all()  # canonical


# ---------------------------------------------------------------------------- errors
X = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -1.0]])


def _bad_calls():
    ok = np.array([0, 1])
    return [
        (dict(index=np.array([0.0, 1.0])), TypeError, "index"),
        (dict(index=np.array([True, False])), TypeError, "index"),
        (dict(index=[0, 1, 2]), ValueError, "index"),
        (dict(index=np.array([[0, 1]])), ValueError, "index"),
        (dict(index=[0, 3]), IndexError, "index"),
        (dict(index=[-1, 0]), IndexError, "index"),
        (dict(index=[1, 0]), ValueError, "index"),  # the -inf (masked) logit
        (dict(index=ok, axis=2), ValueError, "axis"),
        (dict(index=ok, axis=1.0), TypeError, "axis"),
        (dict(index=ok, out=np.zeros((2, 2))), ValueError, "out"),
        (dict(index=ok, out=np.zeros((2, 3), np.float32)), ValueError, "out"),
        (dict(index=ok, rng="seed"), TypeError, "rng"),
    ]


@pytest.mark.parametrize("kind", ["Philox", "Generator"])
def test_errors_consume_nothing(kind):
    for kwargs, exc, word in _bad_calls():
        x = X.copy()
        rng = gs.Philox(3) if kind == "Philox" else np.random.default_rng(3)
        state = (lambda: rng.counter) if kind == "Philox" else (lambda: rng.bit_generator.state)
        before = state()
        kwargs = dict(kwargs)
        kwargs.setdefault("rng", rng)
        out = kwargs.get("out")
        out_before = None if out is None else out.copy()
        with pytest.raises(exc, match=word):
            gs.conditional_gumbel(x, **kwargs)
        assert state() == before, kwargs
        assert_bitwise_equal(x, X)
        if out is not None:
            assert_bitwise_equal(out, out_before)


def test_more_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="out"):  # overlaps logits without being it
        gs.conditional_gumbel(x, [0, 0, 0, 0], out=x[::-1])
    buf = np.zeros(12, np.float64)
    out = buf.reshape(4, 3)
    idx = buf[4:8].view(np.int64)
    with pytest.raises(ValueError, match="index"):  # out overlaps index
        gs.conditional_gumbel(x, idx, out=out)
    with pytest.raises(ValueError, match="logits"):
        gs.conditional_gumbel(np.float64(1.0), 0)
    # out fully written, with a strided out too
    for out in (np.full((4, 3), np.nan), np.full((3, 4), np.nan).T):
        assert gs.conditional_gumbel(x, [0, 1, 2, 0], out=out, rng=1) is out
        assert np.isfinite(out).all()


# ------------------------------------------------------- point 1 of issue 16: the law
# Drawing I from gs.categorical(x) and then z from conditional_gumbel(x, I) must give
# z - x distributed as independent Gumbel(0, 1) coordinates (the Gumbel-max coupling
# read backwards).  Checked per coordinate (KS against scipy's gumbel_r), on the argmax
# frequencies (chi-square of argmax(z) = I against softmax(x)), and on the joint law
# through the argmax of the noise itself (i.i.d. coordinates: argmax(z - x) uniform, a
# chi-square).  Fixed seeds; the false-alarm rate ALPHA is Bonferroni-split over the
# K + 2 tests of each logit vector and the two vectors.
JOINT_LOGITS = [
    np.array([1.0, 0.0, -0.5, 0.3, 2.0]),
    np.array([-3.0, 4.0, 0.0, 0.0, 1.5, -1.0, 2.5]),
]


@pytest.mark.parametrize("case", range(len(JOINT_LOGITS)))
def test_categorical_then_conditional_is_unconditional(case):
    x = JOINT_LOGITS[case]
    k, n = x.size, 20_000
    alpha = ALPHA / (len(JOINT_LOGITS) * (k + 2))
    xs = np.tile(x, (n, 1))
    idx = gs.categorical(xs, rng=gs.Philox(31 + case))
    z = gs.conditional_gumbel(xs, idx, rng=gs.Philox(41 + case))
    assert np.array_equal(z.argmax(-1), idx)
    g = z - x
    for j in range(k):
        p = stats.kstest(g[:, j], stats.gumbel_r.cdf).pvalue
        assert p > alpha, (j, p)
    probs = np.exp(x - np.logaddexp.reduce(x))
    counts = np.bincount(z.argmax(-1), minlength=k)
    assert stats.chisquare(counts, n * probs).pvalue > alpha
    counts = np.bincount(g.argmax(-1), minlength=k)
    assert stats.chisquare(counts, np.full(k, n / k)).pvalue > alpha


def test_joint_law_test_can_fail():
    """The checks above reject a wrong construction: z[I] taken as logsumexp + g[I] of
    the *unconditional* noise (the max coordinate then has the wrong law)."""
    x = JOINT_LOGITS[0]
    n = 20_000
    xs = np.tile(x, (n, 1))
    idx = gs.categorical(xs, rng=gs.Philox(31))
    g = gs.gumbel(xs.shape, dtype=np.float64, rng=gs.Philox(41))
    wrong = g.copy()
    wrong[np.arange(n), idx] = g.max(-1) + 0.5  # a shifted max: not Gumbel(0, 1)
    p = min(stats.kstest(wrong[:, j], stats.gumbel_r.cdf).pvalue for j in range(x.size))
    assert p < 1e-6


# ----------------------------------------------------- point 1: extreme logits, K = 1e6
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_finite_for_logits_up_to_1e30(dtype):
    """Logits anywhere in [-1e30, 1e30] (uniform, log-uniform magnitudes of both signs,
    rows of only -1e30 or only 1e30, rows mixing both) give finite z with argmax index."""
    gen = np.random.default_rng(12)
    rows = [
        gen.uniform(-1e30, 1e30, (40, 20)),
        gen.choice([-1.0, 1.0], (40, 20)) * 10.0 ** gen.uniform(-30, 30, (40, 20)),
        np.full((2, 20), -1e30),
        np.full((2, 20), 1e30),
        np.where(np.arange(20) % 2, 1e30, -1e30)[None].repeat(20, 0),
    ]
    x = np.concatenate(rows).astype(dtype)
    for seed in range(3):
        idx = np.random.default_rng(seed).integers(0, 20, x.shape[0])
        z = gs.conditional_gumbel(x, idx, rng=seed)
        assert np.isfinite(z).all(), seed
        assert _first_argmax_is_index(z, idx, -1), seed
        # the perturbation never lifts a coordinate: z[j] <= max(x[j] + g[j], z[I])
        assert (z <= z[np.arange(x.shape[0]), idx][:, None]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_row_of_a_million(dtype):
    """K = 10**6 in one row (logsumexp over 31 segments), index at the start, the middle
    and the end; finite, argmax = index, and z[I] = logsumexp(x) + g[I] (float64 with
    NumPy's pairwise sum, ~20 eps: a float64 logaddexp.reduce over 10**6 terms is
    sequential and itself 1e-13 off)."""
    k = 10**6
    x = 3 * np.random.default_rng(5).standard_normal((3, k), dtype=dtype)
    x[1, ::2] = -1e30
    idx = np.array([0, k // 2 + 1, k - 1])
    z = gs.conditional_gumbel(x, idx, rng=gs.Philox(6))
    assert np.isfinite(z).all()
    assert _first_argmax_is_index(z, idx, -1)
    g = gs.gumbel((3, k), dtype=dtype, rng=gs.Philox(6))
    x64 = x.astype(np.float64)
    m = x64.max(-1)
    lse = m + np.log(np.exp(x64 - m[:, None]).sum(-1))
    zi = z[np.arange(3), idx].astype(np.float64)
    gi = g[np.arange(3), idx].astype(np.float64)
    tol = TOL_ULPS * np.finfo(dtype).eps * (1 + np.abs(lse) + np.abs(gi))
    assert (np.abs(zi - (lse + gi)) <= tol).all()


# ------------------------------------------------------------------------ split rows
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_split_rows_bitwise(dtype, restore_threads):
    """Few long rows take the split path with 2 threads (a row's segments over the
    threads) and the row path with 1: the same bits, for contiguous, strided and
    in-place calls and a strided out."""
    x = _logits((2, 3 * 2**15 + 77), dtype, 9)
    idx = _index(x, -1, 9)
    xs = np.repeat(x, 2, axis=1)[:, ::2]  # the same values, strided
    res = {}
    for n in (1, 2):
        gs.set_num_threads(n)
        out_s = np.empty((x.shape[1], 2), dtype).T  # a strided out
        inplace = x.copy()
        res[n] = [
            gs.conditional_gumbel(x, idx, rng=gs.Philox(3)),
            gs.conditional_gumbel(xs, idx, rng=gs.Philox(3)),
            gs.conditional_gumbel(x, idx, rng=gs.Philox(3), out=out_s),
            gs.conditional_gumbel(inplace, idx, rng=gs.Philox(3), out=inplace),
            gs.conditional_gumbel(x[:1], idx[:1], rng=gs.Philox(3)),
        ]
    for a, b in zip(res[1], res[2], strict=True):
        assert_bitwise_equal(a, b)
    for a in res[2][1:4]:
        assert_bitwise_equal(a, res[2][0])
    assert_bitwise_equal(res[2][4], res[2][0][:1])


def test_long_row_split_matches_reference():
    """A row of 2**22 + 5 elements always takes the split path: the formula, in float64
    (pairwise sums: far below the float32 tolerance) on 4096 columns and the index."""
    x = 3 * np.random.default_rng(10).standard_normal((1, 2**22 + 5), dtype=np.float32)
    i = 2**21 + 3
    z = gs.conditional_gumbel(x, [i], rng=gs.Philox(8))
    g = gs.gumbel(x.shape, dtype=np.float32, rng=gs.Philox(8))[0].astype(np.float64)
    x64 = x[0].astype(np.float64)
    lse = x64.max() + np.log(np.exp(x64 - x64.max()).sum())
    zi = lse + g[i]
    cols = np.random.default_rng(1).choice(x.shape[1], 4096, replace=False)
    ref = -np.logaddexp(-zi, -(x64[cols] + g[cols]))
    tol = TOL_ULPS * np.finfo(np.float32).eps * (1 + np.abs(x).max() + np.abs(g).max())
    assert (np.abs(z[0, cols] - ref) <= tol).all()
    assert abs(z[0, i] - zi) <= tol
    assert z.argmax() == i
