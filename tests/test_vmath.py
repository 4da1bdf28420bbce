"""Error bounds of the kernels' math primitives (csrc/kernels/simd/vmath.hpp).

Each primitive is evaluated on the active SIMD target's vector lanes through a private
entry point of the extension over a dense sweep of its documented valid range and compared with a more precise reference: float64
NumPy for float32 lanes, long double NumPy for float64 lanes.  The bounds asserted are the
ones documented next to each primitive (<= 1 ulp).  The maxima over every float32 input
(``python scripts/ulp_sweep.py``, which also compares the targets over all of them) are
0.954 ulp (log), 0.939 (exp) and 0.890 (log1p_reduced); float64, on denser sets than
these: 0.951 ulp (log), 0.894 (exp), 0.898 (log1p_reduced).  Every target computes the
same bits (tests/test_targets.py), so the bounds hold on all of them.
"""

import numpy as np
import pytest
from gumbel_softmax import _core

DOC_BOUND_ULP = 1.0
EVAL = {np.float32: _core._eval_f32, np.float64: _core._eval_f64}
WIDER = {np.float32: np.float64, np.float64: np.longdouble}


def ulp_error(got, ref, dtype):
    """|got - ref| in units of the spacing of ref rounded to dtype."""
    spacing = np.spacing(np.abs(ref.astype(dtype))).astype(WIDER[dtype])
    return np.abs(got.astype(WIDER[dtype]) - ref) / spacing


def random_normals(dtype, n, rng):
    if dtype is np.float32:
        bits = rng.integers(0x00800000, 0x7F800000, n, dtype=np.uint32)
    else:
        bits = rng.integers(0x0010000000000000, 0x7FF0000000000000, n, dtype=np.uint64)
    return bits.view(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_ulp(dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            random_normals(dtype, 1_000_000, rng),  # every binade of the valid range
            np.linspace(0.5, 2.0, 1_000_001, dtype=dtype),  # dense around 1
            np.array([np.finfo(dtype).tiny, np.finfo(dtype).max, 1.0, 2.0, 0.5], dtype),
        ]
    )
    got = EVAL[dtype]("log", x)
    err = ulp_error(got, np.log(x.astype(WIDER[dtype])), dtype)
    assert err.max() <= DOC_BOUND_ULP, f"max error {err.max():.3f} ulp at x={x[err.argmax()]!r}"
    assert got[x == 1.0].tolist() == [0.0] * int((x == 1.0).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_ulp(dtype):
    lo, hi = (-103.0, 88.7) if dtype is np.float32 else (-745.0, 709.7)
    z = np.concatenate(
        [np.linspace(lo, hi, 2_000_001, dtype=dtype), np.linspace(-1, 1, 1_000_001, dtype=dtype)]
    )
    got = EVAL[dtype]("exp", z)
    ref = np.exp(z.astype(WIDER[dtype]))
    normal = ref >= np.finfo(dtype).tiny
    err = ulp_error(got[normal], ref[normal], dtype)
    assert err.max() <= DOC_BOUND_ULP, f"max error {err.max():.3f} ulp"
    # subnormal results are rounded once: within one subnormal spacing
    sub = ~normal
    tiny = np.finfo(dtype).smallest_subnormal
    assert np.all(np.abs(got[sub].astype(WIDER[dtype]) - ref[sub]) <= tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_special_values(dtype):
    lo = -104.0 if dtype is np.float32 else -746.0
    hi = 89.0 if dtype is np.float32 else 710.0
    z = np.array([-np.inf, lo, lo * 2, 0.0, -0.0, hi, np.inf, np.nan], dtype)
    got = EVAL[dtype]("exp", z)
    assert got[:3].tolist() == [0.0, 0.0, 0.0]
    assert got[3:5].tolist() == [1.0, 1.0]
    assert np.isposinf(got[5:7]).all()
    assert np.isnan(got[7])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log1p_reduced_ulp(dtype):
    f = np.linspace(np.sqrt(0.5) - 1, np.sqrt(2.0) - 1, 2_000_001, dtype=dtype)
    f = f[f != 0]
    got = EVAL[dtype]("log1p_reduced", f)
    err = ulp_error(got, np.log1p(f.astype(WIDER[dtype])), dtype)
    assert err.max() <= 1.0, f"max error {err.max():.3f} ulp"
