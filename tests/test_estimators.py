"""gs.gumbel_rao_backward and gs.reinmax_backward: the gradient estimators of issue 16.

What is shown here, and how:

Gumbel-Rao (GR-MCk, Paulus, Maddison & Krause, ICLR 2021)
- agreement with a float64 NumPy reference built from the same conditional draws,
  regenerated with ``gs.conditional_gumbel`` from the documented stream rows (draw k of
  row r is stream row ``counter + r * samples + k``: the rows of
  ``conditional_gumbel(np.repeat(x, K, 0), np.repeat(I, K))``).  Tolerance: the kernel
  works from ``L = z_I - z`` without rounding ``z``, the reference from the rounded z
  (conditional_gumbel's bound: 8 ulps of ``1 + max|z|``), so the gap is at most the
  reference's own error propagated through ``(1 / tau) J(softmax(z / tau)) grad_y``
  (Lipschitz constant ``3 max|grad_y| / tau**2`` in z, max norm), plus ``16 eps
  max|grad_y| / tau`` for the kernel's own rounding (``REF_TOL``);
- its expectation equals straight-through's: over N forward draws, the paired
  differences ``ST_i - GR_i`` (same hard sample, GR's own conditional noise) have mean 0
  (``E[GR | I] = E[ST | I]``): a z-test per coordinate, Bonferroni over every
  coordinate of every case, overall false-alarm rate ``ALPHA = 1e-3``; and the same
  test rejects GR computed at a wrong tau (power);
- its variance: ``samples = 1`` has straight-through's variance (the pair (I, z) is then
  distributed as an unconditional draw), and the variance falls with ``samples``
  (10 below 0.7 of straight-through's, 100 below 0.95 of 10's; measured ratios 0.28-0.49
  and 0.79-0.90 on the logit vectors below, N = 4000);
- memory independent of ``samples``: tracemalloc peak (NumPy allocations) and the
  process's peak RSS (the kernels' own buffers) for samples = 1 and 100 agree within
  a small bound;
- the house rules: errors name the argument and consume no row; every SIMD target and
  thread count bitwise equal; splits of the rows over calls bitwise equal.

ReinMax (Liu et al., NeurIPS 2023)
- equals the formula (a float64 NumPy reference), torch autograd of the construction of
  the paper's Algorithm 2, and the ``reinmax`` package on the same sample (skipped
  without torch / reinmax); tau < 1 raises; the house rules as above.
"""

from __future__ import annotations

import tracemalloc

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
ALPHA = 1e-3


def _case(shape, dtype, seed, scale=2.0, ninf=0.1):
    """(grad_y, logits, y_hard, index): logits with some -inf, y_hard a one-hot of a
    categorical sample (never at a -inf logit)."""
    gen = np.random.default_rng(seed)
    x = (scale * gen.standard_normal(shape)).astype(dtype)
    x[gen.random(shape) < ninf] = -np.inf
    x[..., 0] = np.where(np.isfinite(x).any(-1), x[..., 0], 0)
    idx = gs.categorical(x, rng=seed + 100)
    y = np.zeros_like(x)
    np.put_along_axis(y, idx[..., None], 1, -1)
    g = gen.standard_normal(shape).astype(dtype)
    return g, x, y, idx


def _jacobian_apply(p, g):
    """J(p) g = p * (g - sum(p * g)) along the last axis."""
    return p * (g - (p * g).sum(-1, keepdims=True))


def _softmax(t):
    with np.errstate(invalid="ignore"):
        e = np.exp(t - t.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------------- GR: reference
def _gr_reference(g, x, idx, tau, K, seed):
    """(GR in float64 from the conditional draws of the documented rows, max|z| per row)."""
    n, m = x.shape
    z = gs.conditional_gumbel(np.repeat(x, K, 0), np.repeat(idx, K), rng=gs.Philox(seed))
    z = z.astype(np.float64).reshape(n, K, m)
    tau = np.broadcast_to(np.asarray(tau, np.float64), (n,))[:, None, None]
    p = _softmax(z / tau)
    ref = _jacobian_apply(p, g.astype(np.float64)[:, None, :]).mean(1) / tau[:, 0]
    zmax = np.where(np.isfinite(z), np.abs(z), 0).max((1, 2))
    return ref, zmax


def _ref_tol(g, zmax, tau, dtype):
    eps = float(np.finfo(dtype).eps)
    gmax = np.abs(g).max(-1).astype(np.float64)
    dz = 8 * eps * (1 + zmax)
    return 3 * gmax * dz / tau**2 + 16 * eps * gmax / tau


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("scale", ["fast", "wide"])
def test_gr_matches_reference(dtype, tau, scale):
    """Rows of 'wide' logits (a range above 60 resp. 650) take the kernel's other form."""
    s = 2.0 if scale == "fast" else (40.0 if dtype == np.float32 else 400.0)
    for K, shape in ((1, (30, 9)), (5, (12, 40)), (3, (4, 300))):
        g, x, y, idx = _case(shape, dtype, K, scale=s)
        got = gs.gumbel_rao_backward(g, x, y, tau, samples=K, rng=gs.Philox(7))
        assert got.dtype == dtype and got.shape == x.shape
        ref, zmax = _gr_reference(g, x, idx, tau, K, 7)
        err = np.abs(got.astype(np.float64) - ref).max(-1)
        tol = _ref_tol(g, zmax, tau, dtype)
        assert (err <= tol).all(), (K, float((err / tol).max()))
        assert (got[np.isneginf(x)] == 0).all()  # masked entries: exactly 0


def test_gr_per_row_tau_and_mask():
    g, x, y, idx = _case((6, 11), np.float64, 3, ninf=0.0)
    taus = np.array([0.2, 0.5, 1.0, 1.0, 2.0, 7.0])
    got = gs.gumbel_rao_backward(g, x, y, taus, samples=4, rng=gs.Philox(1))
    ref, zmax = _gr_reference(g, x, idx, taus, 4, 1)
    assert (np.abs(got - ref).max(-1) <= _ref_tol(g, zmax, taus, np.float64)).all()
    # keepdims taus, a numpy Generator, a mask (= -inf logits)
    mask = np.ones(x.shape, bool)
    mask[:, 3] = idx == 3  # masks column 3 except where it is the sample
    xm = np.where(mask, x, -np.inf)
    a = gs.gumbel_rao_backward(
        g, x, y, taus[:, None], samples=4, rng=np.random.default_rng(2), mask=mask
    )
    b = gs.gumbel_rao_backward(g, xm, y, taus, samples=4, rng=np.random.default_rng(2))
    assert_bitwise_equal(a, b)


def test_gr_layouts_and_out():
    g, x, y, _ = _case((7, 13), np.float32, 5)
    base = gs.gumbel_rao_backward(g, x, y, 0.7, samples=3, rng=9)
    # axis 0 = the moved arrays; strided views = their copies
    t = gs.gumbel_rao_backward(g.T, x.T, y.T, 0.7, samples=3, axis=0, rng=9)
    assert_bitwise_equal(t, base.T)
    gg, xx, yy = (np.repeat(a, 2, 1)[:, ::2] for a in (g, x, y))
    assert_bitwise_equal(gs.gumbel_rao_backward(gg, xx, yy, 0.7, samples=3, rng=9), base)
    out = np.full((13, 14), np.nan, np.float32)[:, ::2].T
    assert gs.gumbel_rao_backward(g, x, y, 0.7, samples=3, rng=9, out=out) is out
    assert_bitwise_equal(np.ascontiguousarray(out), base)
    gc = g.copy()
    assert gs.gumbel_rao_backward(gc, x, y, 0.7, samples=3, rng=9, out=gc) is gc
    assert_bitwise_equal(gc, base)
    # integer / bool y_hard and integer grad_y are converted
    gi = gs.gumbel_rao_backward(
        g.astype(np.float64), x.astype(np.float64), y.astype(bool), 0.7, samples=3, rng=9
    )
    assert gi.dtype == np.float64


def test_gr_samples_one_is_straight_through_of_the_conditional_draw():
    """K = 1: J(softmax(z / tau)) grad_y / tau with z the one conditional draw, which is
    what gumbel_softmax_backward computes from y_soft = softmax(z / tau)."""
    g, x, y, idx = _case((40, 6), np.float64, 8, ninf=0.0)
    z = gs.conditional_gumbel(x, idx, rng=gs.Philox(4))
    ys = _softmax(z / 0.4)
    st = gs.gumbel_softmax_backward(g, ys, 0.4)
    gr = gs.gumbel_rao_backward(g, x, y, 0.4, samples=1, rng=gs.Philox(4))
    np.testing.assert_allclose(gr, st, rtol=0, atol=1e-13)


# --------------------------------------------------------- GR: statistical properties
LOGIT_VECTORS = [
    (np.array([1.0, 0.0, -0.5, 0.3, -1.0]), 0.5),
    (np.array([2.0, -1.0, 0.5]), 1.0),
    (np.log(np.array([0.1, 0.2, 0.3, 0.4])), 2.0),
]
N_TESTS = sum(x.size for x, _ in LOGIT_VECTORS)


def _st_and_gr(x, tau, n, samples, seed, gr_tau=None):
    X = np.tile(x, (n, 1))
    G = np.tile(np.random.default_rng(seed).standard_normal(x.size), (n, 1))
    yh, ys = gs.gumbel_softmax(X, tau, hard=True, return_soft=True, rng=gs.Philox(seed))
    st = gs.gumbel_softmax_backward(G, ys, tau)
    gr = gs.gumbel_rao_backward(
        G, X, yh, tau if gr_tau is None else gr_tau, samples=samples, rng=gs.Philox(seed + 1)
    )
    return st, gr


def _paired_z(st, gr):
    d = st - gr
    return d.mean(0) / (d.std(0, ddof=1) / np.sqrt(len(d)))


def test_gr_expectation_equals_straight_through():
    crit = stats.norm.isf(ALPHA / (2 * N_TESTS))  # two-sided, Bonferroni
    for i, (x, tau) in enumerate(LOGIT_VECTORS):
        st, gr = _st_and_gr(x, tau, 100_000, 10, 10 * i + 1)
        z = _paired_z(st, gr)
        assert (np.abs(z) < crit).all(), (i, z, crit)


def test_gr_expectation_test_can_fail():
    """Power: GR at a wrong tau (1.5 times the forward's) is rejected by the same test."""
    crit = stats.norm.isf(ALPHA / (2 * N_TESTS))
    x, tau = LOGIT_VECTORS[0]
    st, gr = _st_and_gr(x, tau, 100_000, 10, 1, gr_tau=1.5 * tau)
    assert (np.abs(_paired_z(st, gr)) > crit).any()


def test_gr_variance_below_straight_through_and_falls_with_samples():
    for i, (x, tau) in enumerate(LOGIT_VECTORS):
        v = {}
        for K in (1, 10, 100):
            st, gr = _st_and_gr(x, tau, 4000, K, 10 * i + 3)
            v["st"] = st.var(0).sum()  # the same forward draws for every K
            v[K] = gr.var(0).sum()
        assert abs(v[1] / v["st"] - 1) < 0.15, (i, v)  # K = 1 is straight-through's law
        assert v[10] < 0.7 * v["st"], (i, v)
        assert v[100] < 0.95 * v[10], (i, v)


# ------------------------------------------------------------------------ GR: memory
MEMORY_CHILD = """
import resource, sys
import numpy as np, gumbel_softmax as gs
gs.set_num_threads(1)
x = np.random.default_rng(0).standard_normal((4, 20000)).astype(np.float32)
y = gs.gumbel_softmax(x, hard=True, rng=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
gs.gumbel_rao_backward(x, x, y, 0.5, samples=int(sys.argv[1]), rng=2)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_gr_memory_independent_of_samples():
    x = np.random.default_rng(0).standard_normal((64, 2000)).astype(np.float32)
    y = gs.gumbel_softmax(x, hard=True, rng=1)
    peaks = {}
    for K in (1, 100):  # K = 100 stored draws would be 51 MB here
        gs.gumbel_rao_backward(x, x, y, 0.5, samples=1, rng=2)  # warm-up
        tracemalloc.start()
        gs.gumbel_rao_backward(x, x, y, 0.5, samples=K, rng=2)
        peaks[K] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert abs(peaks[100] - peaks[1]) <= 4096, peaks  # one result array either way
    assert peaks[1] < 2 * x.nbytes, peaks
    # the kernels' buffers (not seen by tracemalloc): peak RSS growth of a child, with
    # rows of 20000 floats: K = 100 stored draws would take 32 MB, one row's 8 MB
    growth = {}
    for K in (1, 100):
        proc = run_python(MEMORY_CHILD, str(K), timeout=300)
        assert proc.returncode == 0, proc.stderr
        growth[K] = int(proc.stdout.split()[-1])  # KiB
    assert abs(growth[100] - growth[1]) < 4 * 1024, growth


# ----------------------------------------------------------------- GR: the stream
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_gr_stream_rows_and_splits(dtype):
    g, x, y, _ = _case((10, 17), dtype, 2)
    rng = gs.Philox(3, counter=5)
    a = gs.gumbel_rao_backward(g[:4], x[:4], y[:4], 0.8, samples=6, rng=rng)
    assert rng.counter == 5 + 4 * 6
    b = gs.gumbel_rao_backward(g[4:], x[4:], y[4:], 0.8, samples=6, rng=rng)
    assert rng.counter == 5 + 10 * 6
    whole = gs.gumbel_rao_backward(g, x, y, 0.8, samples=6, rng=gs.Philox(3, counter=5))
    assert_bitwise_equal(np.concatenate([a, b]), whole)
    # a numpy Generator seeds a fresh Philox with one 64-bit draw
    seed = int(np.random.default_rng(4).integers(0, 2**64, dtype=np.uint64))
    assert_bitwise_equal(
        gs.gumbel_rao_backward(g, x, y, 0.8, samples=6, rng=np.random.default_rng(4)),
        gs.gumbel_rao_backward(g, x, y, 0.8, samples=6, rng=gs.Philox(seed)),
    )
    # 3-d batch: rows in C order over the batch dimensions
    g3, x3, y3 = (a.reshape(2, 5, 17) for a in (g, x, y))
    assert_bitwise_equal(
        gs.gumbel_rao_backward(g3, x3, y3, 0.8, samples=6, rng=gs.Philox(3, counter=5)),
        whole.reshape(2, 5, 17),
    )


def test_gr_undefined_rows_are_nan():
    x = np.array([[0.0, np.nan, 1.0], [0.0, np.inf, 1.0], [0.0, 1.0, 2.0]])
    y = np.eye(3)[[0, 2, 1]]
    r = gs.gumbel_rao_backward(np.ones((3, 3)), x, y, samples=3, rng=1)
    assert np.isnan(r[:2]).all() and np.isfinite(r[2]).all()
    assert (r[:2].view(np.uint64) == np.array(np.nan).view(np.uint64)).all()  # canonical


# ------------------------------------------------------------------------ GR: errors
X = np.array([[0.0, -np.inf, 1.0], [2.0, 0.5, -1.0]])
Y = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def _gr_bad_calls():
    return [
        (dict(y_hard=np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])), ValueError, "y_hard row 1"),
        (dict(y_hard=np.array([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])), ValueError, "y_hard row 1"),
        (dict(y_hard=np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])), ValueError, "y_hard row 0"),
        (dict(y_hard=np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])), ValueError, "-inf"),
        (dict(mask=np.array([True, True, False])), ValueError, "y_hard row 0"),
        (dict(y_hard=Y[:1]), ValueError, "y_hard"),
        (dict(y_hard=Y.astype(complex)), TypeError, "y_hard"),
        (dict(grad_y=np.ones((2, 4))), ValueError, "grad_y"),
        (dict(samples=0), ValueError, "samples"),
        (dict(samples=2**63), ValueError, "samples"),
        (dict(samples=1.5), TypeError, "samples"),
        (dict(samples=True), TypeError, "samples"),
        (dict(tau=0.0), ValueError, "tau"),
        (dict(tau=np.ones(3)), ValueError, "tau"),
        (dict(axis=2), ValueError, "axis"),
        (dict(out=np.zeros((2, 2))), ValueError, "out"),
        (dict(out=np.zeros((2, 3), np.float32)), ValueError, "out"),
        (dict(mask=np.ones(3)), TypeError, "mask"),
        (dict(rng="seed"), TypeError, "rng"),
    ]


@pytest.mark.parametrize("kind", ["Philox", "Generator"])
def test_gr_errors_consume_nothing(kind):
    for kwargs, exc, word in _gr_bad_calls():
        rng = gs.Philox(3) if kind == "Philox" else np.random.default_rng(3)
        state = (lambda: rng.counter) if kind == "Philox" else (lambda: rng.bit_generator.state)
        before = state()
        args = dict(grad_y=np.ones((2, 3)), logits=X.copy(), y_hard=Y, rng=rng)
        args.update(kwargs)
        out = args.get("out")
        out_before = None if out is None else out.copy()
        with pytest.raises(exc, match=word):
            gs.gumbel_rao_backward(**args)
        assert state() == before, kwargs
        if out is not None:
            assert_bitwise_equal(out, out_before)


def test_gr_samples_times_rows_must_fit_the_stream():
    x = np.broadcast_to(np.float32(0), (2**20, 2))
    y = np.broadcast_to(np.array([1, 0], np.float32), (2**20, 2))
    with pytest.raises(ValueError, match="samples"):
        gs.gumbel_rao_backward(x, x, y, samples=2**44, rng=1)


# ------------------------------------------------------------------- ReinMax
def _reinmax_reference(g, x, h, tau, gp=None):
    g, x, h = (a.astype(np.float64) for a in (g, x, h))
    tau = np.broadcast_to(np.asarray(tau, np.float64), x.shape[:-1])[..., None]
    p0 = _softmax(x)
    p1 = (_softmax(x / tau) + h) / 2
    u = -g / 2 if gp is None else gp.astype(np.float64) - g / 2
    return 2 * _jacobian_apply(p1, g) + _jacobian_apply(p0, u)


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("tau", [1.0, 1.5, 4.0, 1e30])
@pytest.mark.parametrize("with_p", [False, True])
def test_reinmax_matches_formula(dtype, tau, with_p):
    for shape in ((30, 9), (5, 100), (2, 40000)):
        g, x, y, _ = _case(shape, dtype, 3)
        gp = np.random.default_rng(9).standard_normal(shape).astype(dtype) if with_p else None
        got = gs.reinmax_backward(g, x, y, tau, grad_p=gp)
        assert got.dtype == dtype
        ref = _reinmax_reference(g, x, y, tau, gp)
        scale = (
            1
            + np.abs(g).max(-1, keepdims=True)
            + (0 if gp is None else np.abs(gp).max(-1, keepdims=True))
        )
        tol = 32 * np.finfo(dtype).eps * scale
        assert (np.abs(got - ref) <= tol).all(), float((np.abs(got - ref) / tol).max())
        assert (got[np.isneginf(x)] == 0).all()


def test_reinmax_layouts_per_row_tau_and_out():
    g, x, y, _ = _case((8, 21), np.float64, 4)
    gp = np.random.default_rng(1).standard_normal(x.shape)
    taus = np.linspace(1, 3, 8)
    got = gs.reinmax_backward(g, x, y, taus, grad_p=gp)
    np.testing.assert_allclose(got, _reinmax_reference(g, x, y, taus, gp), rtol=0, atol=1e-13)
    for i in range(8):  # a per-row tau is the row's scalar tau, bit for bit
        assert_bitwise_equal(got[i], gs.reinmax_backward(g[i], x[i], y[i], taus[i], grad_p=gp[i]))
    assert_bitwise_equal(gs.reinmax_backward(g.T, x.T, y.T, taus, axis=0, grad_p=gp.T), got.T)
    out = np.full((21, 16), np.nan)[:, ::2].T
    assert gs.reinmax_backward(g, x, y, taus, out=out, grad_p=gp) is out
    assert_bitwise_equal(np.ascontiguousarray(out), got)
    gc = g.copy()
    assert gs.reinmax_backward(gc, x, y, taus, out=gc, grad_p=gp) is gc
    assert_bitwise_equal(gc, got)


def test_reinmax_tau_below_one_raises():
    g, x, y, _ = _case((3, 4), np.float64, 1)
    for tau in (0.999, 0.5, np.array([1.0, 2.0, 0.9])):
        with pytest.raises(ValueError, match="tau"):
            gs.reinmax_backward(g, x, y, tau)
    gs.reinmax_backward(g, x, y, 1.0)  # 1 itself is fine


def test_reinmax_undefined_rows_are_nan():
    x = np.array([[0.0, np.nan, 1.0], [0.0, np.inf, 1.0], [-np.inf] * 3, [0.0, 1.0, 2.0]])
    y = np.eye(3)[[0, 2, 1, 1]]
    r = gs.reinmax_backward(np.ones((4, 3)), x, y, 2.0)
    assert np.isnan(r[:3]).all() and np.isfinite(r[3]).all()
    assert (r[:3].view(np.uint64) == np.array(np.nan).view(np.uint64)).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
def test_reinmax_every_case_of_one_over_tau(dtype):
    """The kernel's cases of 1/tau (exactly 1; in (0, 1); 0: tau so large that 1/tau
    rounds to 0, float32 only) in one call with per-row taus: each row equals its scalar-tau call
    bit for bit and the float64 reference, where softmax(x / tau) at 1/tau = 0 is its
    limit, uniform over the finite logits.  Rows of 1000 (prefetched) and 40000."""
    for n in (1000, 40000):
        g, x, y, _ = _case((5, n), dtype, 6)
        taus = np.array([1.0, 1.5, 1e300, 1e30, 3.0])
        got = gs.reinmax_backward(g, x, y, taus)
        zero = np.asarray(1 / taus).astype(dtype) == 0  # 1/tau as the kernel has it
        assert zero.tolist() == [False, False, dtype == np.float32, False, False]
        limit = np.where(np.isneginf(x), -np.inf, 0.0)  # x / tau as 1/tau -> 0
        for i, tau in enumerate(taus):
            assert_bitwise_equal(got[i], gs.reinmax_backward(g[i], x[i], y[i], tau))
            xi, gi, yi = (a[i].astype(np.float64) for a in (x, g, y))
            p0, pt = _softmax(xi), _softmax(limit[i] if zero[i] else xi / tau)
            ref = 2 * _jacobian_apply((pt + yi) / 2, gi) + _jacobian_apply(p0, -gi / 2)
            tol = 32 * np.finfo(dtype).eps * (1 + np.abs(gi).max())
            assert (np.abs(got[i] - ref) <= tol).all(), (
                i,
                float((np.abs(got[i] - ref) / tol).max()),
            )


def test_reinmax_equals_torch_autograd_of_the_construction():
    """Algorithm 2 of the paper: pi0 = softmax(theta), pi1 = (softmax(theta / tau) + D) / 2,
    pi1 = softmax(sg(log pi1 - theta) + theta), pi2 = 2 pi1 - pi0 / 2,
    D_hat = pi2 - sg(pi2) + D; the forward also returns pi0."""
    torch = pytest.importorskip("torch")
    g, x, y, _ = _case((20, 7), np.float64, 6, ninf=0.0)
    gp = np.random.default_rng(2).standard_normal(x.shape)
    for tau in (1.0, 2.5):
        theta = torch.tensor(x, requires_grad=True)
        D = torch.tensor(y)
        pi0 = theta.softmax(-1)
        pi1 = ((theta / tau).softmax(-1) + D) / 2
        pi1 = ((pi1.log() - theta).detach() + theta).softmax(-1)
        pi2 = 2 * pi1 - pi0 / 2
        d_hat = pi2 - pi2.detach() + D
        ((d_hat * torch.tensor(g)).sum() + (pi0 * torch.tensor(gp)).sum()).backward()
        got = gs.reinmax_backward(g, x, y, tau, grad_p=gp)
        np.testing.assert_allclose(got, theta.grad.numpy(), rtol=0, atol=1e-12)


def test_reinmax_equals_the_reinmax_package():
    """The reference package (``pip install reinmax``) on its own sample."""
    torch = pytest.importorskip("torch")
    reinmax = pytest.importorskip("reinmax")
    torch.manual_seed(0)
    _, x, _, _ = _case((50, 6), np.float64, 7, ninf=0.0)
    g = np.random.default_rng(3).standard_normal(x.shape)
    gp = np.random.default_rng(4).standard_normal(x.shape)
    for tau in (1.0, 1.7):
        theta = torch.tensor(x, requires_grad=True)
        y_hard, p = reinmax.reinmax(theta, tau)
        ((y_hard * torch.tensor(g)).sum() + (p * torch.tensor(gp)).sum()).backward()
        got = gs.reinmax_backward(g, x, y_hard.detach().numpy(), tau, grad_p=gp)
        np.testing.assert_allclose(got, theta.grad.numpy(), rtol=0, atol=1e-12)


# ------------------------------------------------------------------- both: dtypes
HALF = [np.float16] + ([ml_dtypes.bfloat16] if ml_dtypes is not None else [])


@pytest.mark.parametrize("low", HALF, ids=lambda t: np.dtype(t).name)
def test_half_dtypes_are_computed_in_float32(low):
    g, x, y, _ = _case((9, 40), np.float32, 2)
    gl, xl, yl = (a.astype(low) for a in (g, x, y))
    g32, x32 = gl.astype(np.float32), xl.astype(np.float32)
    r = gs.gumbel_rao_backward(gl, xl, yl, 0.5, samples=3, rng=4)
    assert r.dtype == low
    ref = gs.gumbel_rao_backward(g32, x32, y, 0.5, samples=3, rng=4)
    assert_bitwise_equal(r, ref.astype(low))
    r = gs.reinmax_backward(gl, xl, yl, 2.0)
    assert r.dtype == low
    assert_bitwise_equal(r, gs.reinmax_backward(g32, x32, y, 2.0).astype(low))
    # a half with float32 promotes to float32
    assert gs.reinmax_backward(g32, xl, yl, 2.0).dtype == np.float32


# ---------------------------------------------------- both: targets and threads
TARGET_SCRIPT = """
import sys, numpy as np, gumbel_softmax as gs
out = {"target": np.array(gs.cpu_target())}
for n, shape in enumerate([(7, 1), (5, 3), (9, 17), (4, 100), (2, 257), (3, 1000), (2, 40000)]):
    for dt in (np.float32, np.float64):
        gen = np.random.default_rng(n)
        for s, scale in enumerate((3.0, 300.0 if dt == np.float64 else 50.0, 2000.0)):
            x = (scale * gen.standard_normal(shape)).astype(dt)
            g = gen.standard_normal(shape).astype(dt)
            if shape[1] > 1:
                x[0, -1] = -np.inf
            idx = gs.categorical(x, rng=n)
            y = np.zeros_like(x)
            y[np.arange(shape[0]), idx] = 1
            for tau in (1.0, 0.3, 2.0):
                key = f"{n}{dt.__name__}{s}{tau}"
                out["gr" + key] = gs.gumbel_rao_backward(g, x, y, tau, samples=3, rng=n)
                out["gv" + key] = gs.gumbel_rao_backward(g[::-1], x[::-1], y[::-1], tau, samples=2, rng=n)
                out["rm" + key] = gs.reinmax_backward(g, x, y, tau + 1, grad_p=g[::-1] if s else None)
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
    assert len(results[first].files) > 300
    for t in rest:
        for name in results[first].files:
            if name != "target":
                assert_bitwise_equal(results[first][name], results[t][name], f"{t} {name}")


@pytest.fixture
def restore_threads():
    yield
    gs.set_num_threads(0)


def test_threads_bitwise(restore_threads):
    g, x, y, _ = _case((600, 70), np.float32, 8)
    gs.set_num_threads(1)
    a = gs.gumbel_rao_backward(g, x, y, 0.5, samples=5, rng=5)
    b = gs.reinmax_backward(g, x, y, 2.0, grad_p=x)
    gs.set_num_threads(2)
    assert_bitwise_equal(a, gs.gumbel_rao_backward(g, x, y, 0.5, samples=5, rng=5))
    assert_bitwise_equal(b, gs.reinmax_backward(g, x, y, 2.0, grad_p=x))
