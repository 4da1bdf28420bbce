"""Every SIMD target this machine supports gives bitwise identical results.

Each target is forced with GUMBEL_SOFTMAX_TARGET in a subprocess that computes forward
(soft, hard, return_soft), backward and noise over many shapes, dtypes, axes and layouts
(row lengths that are and are not multiples of the vector widths, strided and negative
strides, rows long enough to span several chunks), and every math primitive over dense
sweeps, and saves the raw bytes; the results of all targets must be equal byte for byte.
(So the error bounds that tests/test_vmath.py proves on the default target hold on every
target.)  With a single supported target the test
still checks that forcing it works and that the subprocess equals this process.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gumbel_softmax as gs

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
                    # issue 5: the other samplers, per-row tau (mixing in tau = 1), log space
                    taus = np.where(np.arange(shape[0]) % 2 == 0, 1.0, tau)
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
    out["noise32"] = gs._core._noise_f32(gen.integers(0, 2**32, 1_000_000, dtype=np.uint32))
    out["noise64"] = gs._core._noise_f64(gen.integers(0, 2**64, 200_000, dtype=np.uint64))
    np.savez(sys.argv[1], **out)
    """
)


def run_target(target, path):
    env = dict(os.environ, GUMBEL_SOFTMAX_TARGET=target)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
            a, b = ref[k], other[k]
            assert a.dtype == b.dtype and a.shape == b.shape, k
            assert a.tobytes() == b.tobytes(), f"{first} and {t} differ in {k}"


def import_with_target(target):
    """(active target, stderr) of a fresh interpreter with GUMBEL_SOFTMAX_TARGET=target."""
    env = dict(os.environ, GUMBEL_SOFTMAX_TARGET=target)
    proc = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import gumbel_softmax as gs; print(gs.cpu_target())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
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
