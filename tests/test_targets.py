"""Every SIMD target this machine supports gives bitwise identical results.

Each target is forced with GUMBEL_SOFTMAX_TARGET in a subprocess that computes forward
(soft, hard, return_soft), backward and noise over many shapes, dtypes, axes and layouts
(row lengths that are and are not multiples of the vector widths, strided and negative
strides, rows long enough to span several chunks), and every math primitive over dense
sweeps, and saves the raw bytes; the results of all targets must be equal byte for byte.
(So the error bounds that tests/test_vmath.py proves on the default target hold on every
target.)  With a single supported target the test
still checks that forcing it works and that the subprocess equals this process.
A second script feeds every function NaN of both signs and with payloads, +-inf, +-0,
subnormals and +-max, and compares sha256 digests of every output across the targets;
every NaN written must be the canonical one (np.nan's bits).
"""

import textwrap

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_bitwise_equal, run_python, target_env

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, gumbel_softmax as gs
    out = {"target": np.array(gs.cpu_target())}
    shapes = [(7, 1), (5, 3), (3, 4), (3, 17), (4, 100), (2, 257), (9, 1000), (2, 5000), (33, 31)]
    n = 0
    for shape in shapes:
        for dt in (np.float32, np.float64):
            gen = np.random.default_rng(n)
            x = (3 * gen.standard_normal(shape)).astype(dt)
            x[0, 0] = -np.inf  # a masked category
            for tau in (0.3, 1.0, 4.0):
                for view in (x, x[::-1, ::-1], np.asfortranarray(x)):
                    key = f"{n}"
                    n += 1
                    y = gs.gumbel_softmax(view, tau, rng=gs.Philox(n, counter=2**32 - 3))
                    h, s = gs.gumbel_softmax(view, tau, hard=True, return_soft=True, rng=n)
                    y0 = gs.gumbel_softmax(view, tau, axis=0, rng=n)
                    w = gen.standard_normal(shape).astype(dt)
                    b = gs.gumbel_softmax_backward(w, s, tau)
                    b0 = gs.gumbel_softmax_backward(w[::-1], y0, tau, axis=0)
                    g = gs.gumbel(shape, dtype=dt, rng=n)
                    # the other samplers, per-row tau (mixing in tau = 1), log space
                    taus = np.where(np.arange(shape[0]) % 2 == 0, 1.0, tau)
                    # k = n up to rows of 257 (past a 256-element chunk), 300 steps on
                    # longer rows: k = 5000 steps over 5000 elements would take a
                    # minute on baseline (its FMAs are library calls) and tell no more
                    k_all = min(shape[1], 300)
                    more = dict(
                        c=gs.categorical(view, rng=n), c0=gs.categorical(view, axis=0, rng=n),
                        k=gs.top_k(view, min(3, shape[1]), rng=n),
                        l=gs.log_gumbel_softmax(view, tau, rng=n),
                        t=gs.gumbel_softmax(view, taus, rng=n),
                        tb=gs.gumbel_softmax_backward(w, s, taus),
                        rb=gs.relaxed_bernoulli(view, tau, rng=n),
                        rh=gs.relaxed_bernoulli(view, tau, hard=True, rng=n),
                        rbb=gs.relaxed_bernoulli_backward(w, s, tau),
                        lg=gs.logistic(shape, dtype=dt, rng=n),
                        cl=gs.concrete_log_prob(s, view, tau),
                        cll=gs.concrete_log_prob(np.log(s), view, taus, log_space=True),
                        rk=gs.relaxed_top_k(view, min(3, shape[1]), tau, rng=n),
                        rkh=gs.relaxed_top_k(view, k_all, tau, hard=True, return_soft=True,
                                             rng=n)[1],
                        rkt=gs.relaxed_top_k(view, 1, taus, rng=n),
                        rkb=gs.relaxed_top_k_backward(w, view, min(3, shape[1]), taus, rng=n),
                        rkb0=gs.relaxed_top_k_backward(w[::-1], view, min(2, shape[0]), tau,
                                                       axis=0, rng=n),
                    )
                    for name, a in dict(y=y, h=h, s=s, y0=y0, b=b, b0=b0, g=g, **more).items():
                        out[key + name] = a
    # the math primitives on dense sweeps (their error bounds: tests/test_vmath.py)
    gen = np.random.default_rng(99)
    for dt, ev, bits, ubits in ((np.float32, gs._core._eval_f32, 32, np.uint32),
                                (np.float64, gs._core._eval_f64, 64, np.uint64)):
        lo = 0x00800000 if bits == 32 else 0x0010000000000000
        hi = 0x7F800000 if bits == 32 else 0x7FF0000000000000
        normals = gen.integers(lo, hi, 200_000, dtype=ubits).view(dt)
        out[f"log{bits}"] = ev("log", np.concatenate([normals, np.linspace(0.5, 2, 100_001, dtype=dt)]))
        out[f"exp{bits}"] = ev("exp", np.linspace(-750, 720, 300_001, dtype=dt))
        out[f"log1p{bits}"] = ev("log1p_reduced", np.linspace(-0.3, 0.42, 100_001, dtype=dt))
        out[f"expn{bits}"] = ev("exp_nonpos", np.linspace(-750, 0, 300_001, dtype=dt))
    out["noise32"] = gs._core._noise_f32(gen.integers(0, 2**32, 1_000_000, dtype=np.uint32))
    out["noise64"] = gs._core._noise_f64(gen.integers(0, 2**64, 200_000, dtype=np.uint64))
    np.savez(sys.argv[1], **out)
    """
)


def run_target(target, path):
    """SCRIPT's results on ``target``, computed in a child interpreter."""
    proc = run_python(SCRIPT, path, env=target_env(target), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return np.load(path)


def test_targets_listed():
    targets = gs.cpu_targets()
    assert targets[0] == "baseline"
    assert gs.cpu_target() in targets
    assert set(targets) <= {"baseline", "avx2", "avx512"}


def test_every_target_bitwise_equal(tmp_path):
    results = {t: run_target(t, tmp_path / f"{t}.npz") for t in gs.cpu_targets()}
    for t, r in results.items():
        assert str(r["target"]) == t
    first, *rest = results
    ref = results[first]
    assert len(ref.files) > 1000
    for t in rest:
        other = results[t]
        assert ref.files == other.files
        for k in ref.files:
            if k == "target":
                continue
            assert_bitwise_equal(ref[k], other[k], f"{first} and {t} differ in {k}")


# Results below the smallest normal: the AVX2 and AVX-512 targets compute them without
# the hardware's subnormal arithmetic (vmath.hpp, GS_EXACT_TINY), the baseline target
# with it, so equal bits here check that emulation against the hardware.  Every float32
# input of the band where exp is subnormal, and whole calls at the temperatures that put
# a fifth of a row's exps there (float32 tau 0.03 to 0.1; float64 0.005 to 0.01), on
# every row path: the row path, strided rows (tiles), short rows, one long row split
# over the threads, per-row tau, and the functions built on the same exps.
TINY_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, gumbel_softmax as gs
    out = {"target": np.array(gs.cpu_target())}
    lo, hi = np.float32(-86.0).view(np.uint32), np.float32(-104.5).view(np.uint32)
    band = np.arange(lo, hi + 1, dtype=np.uint32).view(np.float32)
    out["exp_band"] = gs._core._eval_f32("exp", band)
    out["expn_band"] = gs._core._eval_f32("exp_nonpos", band)
    z64 = np.linspace(-746, -700, 1_000_001)
    out["exp_band64"] = gs._core._eval_f64("exp", z64)
    out["expn_band64"] = gs._core._eval_f64("exp_nonpos", z64)
    gs.set_num_threads(2)  # the split of one long row needs two threads
    n = 0
    for dt, taus in ((np.float32, (0.1, 0.05)), (np.float64, (0.01, 0.006))):
        for shape in ((40, 1000), (9, 37), (1, 70000), (300, 6)):
            gen = np.random.default_rng(n)
            x = gen.standard_normal(shape).astype(dt)
            w = gen.standard_normal(shape).astype(dt)
            k = min(3, shape[1])
            for tau in taus:
                for view in (x, x[::-1, ::-1]):
                    n += 1
                    h, s = gs.gumbel_softmax(view, tau, hard=True, return_soft=True, rng=n)
                    taus_r = np.where(np.arange(shape[0]) % 3 == 0, 1.0, tau)
                    res = dict(
                        y=gs.gumbel_softmax(view, tau, rng=n), s=s,
                        r=gs.gumbel_softmax(view, taus_r, rng=n),
                        l=gs.log_gumbel_softmax(view, tau, rng=n),
                        b=gs.gumbel_softmax_backward(w, s, tau),
                        bs=gs.gumbel_softmax_backward(w * 1e-30, s, tau),  # subnormal products
                        bc=gs.gumbel_softmax_backward(w, tau=tau, logits=view, rng=n),
                        rm=gs.reinmax_backward(w, view / tau, h, 1.0),
                        gr=gs.gumbel_rao_backward(w, view, h, tau, samples=2, rng=n),
                        rk=gs.relaxed_top_k(view, k, tau, rng=n),
                        rkb=gs.relaxed_top_k_backward(w, view, k, tau, rng=n),
                        rb=gs.relaxed_bernoulli(view * 10, tau, rng=n),
                        rbb=gs.relaxed_bernoulli_backward(
                            w, gs.relaxed_bernoulli(view * 10, tau, rng=n), tau
                        ),
                        cl=gs.concrete_log_prob(s, view, tau),
                    )
                    for name, a in res.items():
                        out[f"{n}{name}"] = a
    np.savez(sys.argv[1], **out)
    """
)


def test_subnormal_band_every_target_bitwise_equal(tmp_path):
    results = {}
    for t in gs.cpu_targets():
        proc = run_python(TINY_SCRIPT, tmp_path / f"{t}.npz", env=target_env(t), timeout=300)
        assert proc.returncode == 0, proc.stderr
        results[t] = np.load(tmp_path / f"{t}.npz")
        assert str(results[t]["target"]) == t
    ref = results["baseline"]
    for key, dt in (("1y", np.float32), ("17y", np.float64)):  # the band is reached (> 5%)
        y = ref[key]
        assert y.dtype == dt and np.mean((y > 0) & (y < np.finfo(dt).tiny)) > 0.05, key
    for t, other in results.items():
        assert ref.files == other.files
        for k in ref.files:
            if k != "target":
                assert_bitwise_equal(ref[k], other[k], f"baseline and {t} differ in {k}")


def import_with_target(target):
    """(active target, stderr) of a fresh interpreter with GUMBEL_SOFTMAX_TARGET=target."""
    proc = run_python(
        "import gumbel_softmax as gs; print(gs.cpu_target())",
        env=target_env(target),
        timeout=60,
        flags=("-W", "always"),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip(), proc.stderr


def test_unsupported_target_warns_and_falls_back():
    active, stderr = import_with_target("no-such-target")
    assert "GUMBEL_SOFTMAX_TARGET=no-such-target" in stderr
    assert active == gs.cpu_targets()[-1]


@pytest.mark.parametrize("target", ["baseline", "avx2", "avx512"])
def test_forcing_each_target(target):
    """A supported target is used when forced; an unsupported one warns and falls back."""
    active, stderr = import_with_target(target)
    if target in gs.cpu_targets():
        assert active == target
        assert "GUMBEL_SOFTMAX_TARGET" not in stderr
    else:
        assert f"GUMBEL_SOFTMAX_TARGET={target}" in stderr
        assert active == gs.cpu_targets()[-1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_rows_path_equals_row_path(dtype):
    """Rows of <= 32 elements are computed across rows (one row per vector lane); the
    result must be bitwise that of the row-by-row path, which the private switch
    _core._set_short_rows(False) selects."""
    gen = np.random.default_rng(7)
    cases = []
    for k in (1, 2, 3, 5, 8, 10, 15, 16, 17, 31, 32):
        x = (4 * gen.standard_normal((37, k))).astype(dtype)
        x[3, 0] = -np.inf
        x[5, :] = -np.inf  # undefined row
        x[6, -1] = np.nan  # undefined row
        cases.append(x)
        cases.append(np.ascontiguousarray(x.T).T)  # strided rows

    def run():
        out = []
        for n, x in enumerate(cases):
            for tau in (0.2, 1.0, 5.0):
                out.append(gs.gumbel_softmax(x, tau, rng=gs.Philox(n, counter=2**32 - 9)))
                out.extend(gs.gumbel_softmax(x, tau, hard=True, return_soft=True, rng=n))
                out.append(gs.gumbel_softmax(x, tau, hard=True, rng=n))
                out.append(gs.log_gumbel_softmax(x, tau, rng=n))
                out.append(gs.relaxed_bernoulli(x, tau, rng=n))
            # per-row tau mixing the tau = 1 path with the general one inside a group
            taus = np.resize([1.0, 0.3, 1.0, 1.0, 2.5], x.shape[0])
            out.extend(gs.gumbel_softmax(x, taus, hard=True, return_soft=True, rng=n))
            out.append(gs.categorical(x, rng=n))
            out.append(gs.gumbel(x.shape, dtype=dtype, rng=n))
            out.append(gs.logistic(x.shape, dtype=dtype, rng=n))
        return out

    try:
        fast = run()
        gs._core._set_short_rows(False)
        slow = run()
    finally:
        gs._core._set_short_rows(True)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert a.tobytes() == b.tobytes()


# --------------------------------------------------------------------------------------
# special values: NaN of both signs and with payloads, +-inf, +-0,
# subnormals and the largest finite values, through every function, on every target
# --------------------------------------------------------------------------------------
# The NaN every kernel writes: NumPy's np.nan (positive, quiet, no payload) in each dtype.
CANONICAL_NAN_BITS = {
    "float32": 0x7FC00000,
    "float64": 0x7FF8000000000000,
    "float16": 0x7E00,
    "bfloat16": 0x7FC0,
}

SPECIAL_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys, warnings
    import numpy as np, gumbel_softmax as gs
    warnings.simplefilter("error")
    try:
        import ml_dtypes
        halves = (np.float16, ml_dtypes.bfloat16)
    except ImportError:
        halves = (np.float16,)
    specials = {
        np.float32: np.array([0x7FC00000, 0xFFC00000, 0x7FC12345, 0xFFD00001, 0x7F800001,
                              0xFF812345, 0x7F800000, 0xFF800000, 0, 0x80000000, 1,
                              0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF],
                             np.uint32).view(np.float32),
        np.float64: np.array([0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000012345678,
                              0xFFFC000000000001, 0x7FF0000000000001, 0xFFF0000000012345,
                              0x7FF0000000000000, 0xFFF0000000000000, 0, 0x8000000000000000,
                              1, 0x8000000000000001, 0x000FFFFFFFFFFFFF,
                              0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF],
                             np.uint64).view(np.float64),
    }
    NAN, INF, FIN = slice(0, 6), slice(6, 8), slice(8, 16)

    def special_rows(dt, shape, seed):
        # rows of: finite values only; finite specials and -inf (a defined row); a NaN;
        # a +inf; only -inf; anything.  About a quarter of each row is special.
        gen = np.random.default_rng(seed)
        sp = specials[dt]
        x = (3 * gen.standard_normal(shape)).astype(dt)
        for r in range(shape[0]):
            kind = r % 6
            pool = {0: sp[FIN], 1: np.concatenate([sp[FIN], sp[7:8]]), 2: sp[NAN],
                    3: sp[6:7], 4: sp[7:8], 5: sp}[kind]
            n = shape[1] if kind == 4 else max(1, shape[1] // 4)
            cols = gen.choice(shape[1], n, replace=False)
            x[r, cols] = pool[gen.integers(0, len(pool), n)]
        return x

    digests, nan_bits, calls = {}, {}, [0]

    def record(name, a):
        a = np.asarray(a)
        digests[name] = hashlib.sha256(a.tobytes()).hexdigest()
        if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
            bits = a.reshape(-1).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.itemsize])
            with np.errstate(all="ignore"):
                isnan = np.isnan(a.astype(np.float64)).reshape(-1)
            nan_bits.setdefault(a.dtype.name, set()).update(int(b) for b in np.unique(bits[isnan]))
        calls[0] += 1

    for dt in (np.float32, np.float64):
        sp = specials[dt]
        for shape in ((24, 5), (12, 17), (6, 100), (6, 1000), (1, 70000)):
            x = special_rows(dt, shape, shape[1])
            w = special_rows(dt, shape, shape[1] + 1)  # grad_y
            ys = np.abs(special_rows(dt, shape, shape[1] + 2))  # a y_soft with specials
            with np.errstate(all="ignore"):
                ys[::3] = np.where(np.isfinite(ys[::3]), ys[::3] / (1 + ys[::3]), ys[::3])
            mask = np.random.default_rng(3).random(shape) < 0.8
            taus = np.resize([0.5, 1.0, 1e46, 3.0], shape[0])
            # conditional_gumbel: the index at the first logit that is not -inf (a row of
            # only -inf gets a 0 there: there is no sample with any argmax)
            xc = x.copy()
            xc[np.isneginf(xc).all(axis=1), 0] = 0
            ci = np.argmax(~np.isneginf(xc), axis=1)
            ckey = f"{np.dtype(dt).name}{shape}cond"
            record(ckey, gs.conditional_gumbel(xc, ci, rng=4))
            record(ckey + "T", gs.conditional_gumbel(np.ascontiguousarray(xc.T), ci, axis=0, rng=4))
            for lo in halves:
                with np.errstate(all="ignore"):
                    xl = xc.astype(lo)
                xl[np.isneginf(xl.astype(np.float32)).all(axis=1), 0] = 0
                cl = np.argmax(~np.isneginf(xl.astype(np.float32)), axis=1)
                record(ckey + np.dtype(lo).name, gs.conditional_gumbel(xl, cl, rng=4))
            # 1e46: 1/tau rounds to 0 in float32 (tau -> infinity); 1.7e308: 1/tau subnormal
            for tau in (0.5, 1.0, 1e46, 1.7e308):
                key = f"{np.dtype(dt).name}{shape}tau{tau}"
                views, soft = {"": x, "T": np.ascontiguousarray(x.T)}, None
                for vn, v in views.items():
                    ax = 0 if vn else -1
                    k = key + vn
                    record(k + "soft", gs.gumbel_softmax(v, tau, axis=ax, rng=5))
                    h, s = gs.gumbel_softmax(v, tau, hard=True, return_soft=True, axis=ax, rng=5)
                    record(k + "hard", h)
                    record(k + "rsoft", s)
                    soft = soft if vn else s
                    record(k + "log", gs.log_gumbel_softmax(v, tau, axis=ax, rng=5))
                    record(k + "cat", gs.categorical(v, axis=ax, rng=5))
                    record(k + "topk", gs.top_k(v, min(3, shape[1]), axis=ax, rng=5))
                    rk, rks = gs.relaxed_top_k(v, min(3, shape[1]), tau, hard=True,
                                               return_soft=True, axis=ax, rng=5)
                    record(k + "rtk", rk)
                    record(k + "rtks", rks)
                record(key + "mask", gs.gumbel_softmax(x, tau, mask=mask, rng=6))
                record(key + "logmask", gs.log_gumbel_softmax(x, tau, mask=mask, rng=6))
                record(key + "rowtau", gs.gumbel_softmax(x, taus, hard=True, return_soft=True, rng=7))
                record(key + "bw", gs.gumbel_softmax_backward(w, ys, tau))
                record(key + "bwsoft", gs.gumbel_softmax_backward(w, soft, tau))
                record(key + "bwrow", gs.gumbel_softmax_backward(w, ys, taus))
                record(key + "bwT", gs.gumbel_softmax_backward(w.T, ys.T, tau, axis=0))
                record(key + "bwre", gs.gumbel_softmax_backward(w, logits=x, tau=tau, rng=5, mask=mask))
                record(key + "rtkmask", gs.relaxed_top_k(x, 2, tau, mask=mask, rng=6))
                record(key + "rtkrow", gs.relaxed_top_k(x, 2, taus, rng=6))
                record(key + "rtkb", gs.relaxed_top_k_backward(w, x, 2, tau, rng=5, mask=mask))
                record(key + "rb", gs.relaxed_bernoulli(x, tau, rng=8))
                record(key + "rbh", gs.relaxed_bernoulli(x, tau, hard=True, return_soft=True, rng=8))
                record(key + "rbt", gs.relaxed_bernoulli(x, np.resize(taus, shape), rng=8))
                record(key + "rbb", gs.relaxed_bernoulli_backward(w, ys, tau))
                record(key + "rbbT", gs.relaxed_bernoulli_backward(w.T, ys.T, tau))
                # the estimators: y_hard at each row's first logit that is not -inf
                cx = np.where(np.isneginf(x).all(-1, keepdims=True), 0, x).astype(dt)
                yh = np.zeros(shape, dt)
                yh[np.arange(shape[0]), np.argmax(~np.isneginf(cx), -1)] = 1
                record(key + "gr", gs.gumbel_rao_backward(w, cx, yh, tau, samples=2, rng=9))
                record(key + "rm", gs.reinmax_backward(w, x, yh, max(tau, 1.0), grad_p=w))
                ctau = min(tau, float(np.finfo(dt).max))
                record(key + "cl", gs.concrete_log_prob(ys, x, ctau))
                record(key + "cll", gs.concrete_log_prob(w, x, ctau, log_space=True))
                for lo in halves:
                    hn = np.dtype(lo).name
                    with np.errstate(all="ignore"):
                        xl, wl, yl = x.astype(lo), w.astype(lo), ys.astype(lo)
                    record(key + hn + "soft", gs.gumbel_softmax(xl, tau, rng=5))
                    record(key + hn + "hard", gs.gumbel_softmax(xl, tau, hard=True, rng=5))
                    record(key + hn + "log", gs.log_gumbel_softmax(xl, tau, rng=5))
                    record(key + hn + "rtk", gs.relaxed_top_k(xl, 2, tau, rng=5))
                    record(key + hn + "bw", gs.gumbel_softmax_backward(wl, yl, tau))
                    record(key + hn + "rb", gs.relaxed_bernoulli(xl, tau, rng=8))
                    record(key + hn + "rbb", gs.relaxed_bernoulli_backward(wl, yl, tau))
                    record(key + hn + "cl", gs.concrete_log_prob(yl, xl, min(tau, 6e4)))
    json.dump({"target": gs.cpu_target(), "calls": calls[0], "digests": digests,
               "nan_bits": {k: sorted(v) for k, v in nan_bits.items()}}, open(sys.argv[1], "w"))
    """
)


def test_special_values_bitwise_equal_and_canonical_nan(tmp_path):
    """Every function on NaN (both signs, with payloads, signalling), +-inf, +-0,
    subnormals and +-max, float32 and float64 (and float16 / bfloat16): the sha256 of
    every output's bytes is the same on every supported target, and every NaN written is
    the canonical one (np.nan's bits in the output's dtype)."""
    import json

    results = {}
    for t in gs.cpu_targets():
        path = tmp_path / f"{t}.json"
        proc = run_python(SPECIAL_SCRIPT, path, env=target_env(t), timeout=300)
        assert proc.returncode == 0, proc.stderr
        results[t] = json.loads(path.read_text())
        assert results[t]["target"] == t
    first, *rest = results
    ref = results[first]
    assert ref["calls"] > 1000 and len(ref["digests"]) == ref["calls"]
    for t in rest:
        differ = sorted(k for k in ref["digests"] if ref["digests"][k] != results[t]["digests"][k])
        assert not differ, f"{first} and {t} differ in {len(differ)} outputs, e.g. {differ[:8]}"
    for t, r in results.items():
        have = {"float32", "float64", "float16"}
        assert have <= set(r["nan_bits"])  # NaNs were written in every dtype
        for dt, bits in r["nan_bits"].items():
            assert bits == [CANONICAL_NAN_BITS[dt]], (t, dt, [hex(b) for b in bits])
    # the canonical bits are NumPy's NaN (and ml_dtypes' bfloat16 NaN)
    assert int(np.array(np.nan, np.float32).view(np.uint32)) == CANONICAL_NAN_BITS["float32"]
    assert int(np.array(np.nan, np.float64).view(np.uint64)) == CANONICAL_NAN_BITS["float64"]
    assert int(np.array(np.nan, np.float16).view(np.uint16)) == CANONICAL_NAN_BITS["float16"]
