"""float16 / bfloat16 <-> float32 conversions of the kernels (csrc/include/gumbel_softmax/
half.hpp) against NumPy's float16 cast and ml_dtypes' bfloat16 cast, bit for bit.

The half -> float32 direction is checked on all 65,536 bit patterns; float32 -> half on
every float32 whose bits below the rounding position are at a rounding boundary (0, 1,
half an ulp - 1, half an ulp, half an ulp + 1, an ulp - 1), for every value of the bits
above it, plus 2**22 random patterns: every exponent, both signs, subnormals, infinities
and NaN payloads.  Every SIMD target gives the same bits (tests/test_targets.py runs the
samplers on each); here the active one is checked.
"""

import warnings

import numpy as np
import pytest
from gumbel_softmax import _core


def _boundary_patterns(shift):
    """float32 bit patterns: every value of the bits above `shift`, combined with the
    boundary values of the `shift` bits below (ties, and the ones either side)."""
    half = 1 << (shift - 1)
    low = np.array([0, 1, half - 1, half, half + 1, (1 << shift) - 1], dtype=np.uint64)
    high = np.arange(1 << (32 - shift), dtype=np.uint64) << np.uint64(shift)
    return (high[:, None] | low[None, :]).ravel().astype(np.uint32)


def _patterns(shift):
    rng = np.random.default_rng(2026)
    return np.concatenate(
        [
            _boundary_patterns(shift),
            rng.integers(0, 2**32, 2**22, dtype=np.uint64).astype(np.uint32),
        ]
    )


def _dtypes():
    out = [pytest.param(np.float16, False, 13, id="float16")]
    try:
        import ml_dtypes
    except ImportError:
        out.append(
            pytest.param(
                None,
                True,
                16,
                id="bfloat16",
                marks=pytest.mark.skip(reason="ml_dtypes not installed"),
            )
        )
    else:
        out.append(pytest.param(ml_dtypes.bfloat16, True, 16, id="bfloat16"))
    return out


@pytest.mark.parametrize("dtype, bf16, shift", _dtypes())
def test_float_to_half_equals_numpy_cast(dtype, bf16, shift):
    u = _patterns(shift)
    f = u.view(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow to inf, NaN casts
        expect = f.astype(dtype).view(np.uint16)
    got = _core.float_to_half(f, bf16)
    bad = np.nonzero(got != expect)[0]
    assert bad.size == 0, [(hex(u[i]), hex(got[i]), hex(expect[i])) for i in bad[:8]]


@pytest.mark.parametrize("dtype, bf16, shift", _dtypes())
def test_half_to_float_equals_numpy_cast(dtype, bf16, shift):
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    expect = h.view(dtype).astype(np.float32).view(np.uint32)
    got = _core.half_to_float(h, bf16).view(np.uint32)
    bad = np.nonzero(got != expect)[0]
    assert bad.size == 0, [(hex(h[i]), hex(got[i]), hex(expect[i])) for i in bad[:8]]
