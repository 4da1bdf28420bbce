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


# NaN bit patterns of float32: quiet and signalling, payloads, both signs.
NANS = np.array([0x7FC00000, 0x7F800001, 0x7FFFFFFF, 0xFFBFFFFF, 0xFF800001], dtype=np.uint32)
SENTINEL = 0xABCD  # a bit pattern neither conversion writes here


@pytest.mark.parametrize("dtype, bf16, shift", _dtypes())
def test_float_to_half_without_nans(dtype, bf16, shift):
    # the boundary patterns with the NaNs taken out: every vector takes the targets'
    # vector conversions (a vector holding a NaN may take the integer code)
    u = _boundary_patterns(shift)
    u = u[(u & 0x7FFFFFFF) <= 0x7F800000]
    f = u.view(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow to inf
        expect = f.astype(dtype).view(np.uint16)
    got = _core.float_to_half(f, bf16)
    bad = np.nonzero(got != expect)[0]
    assert bad.size == 0, [(hex(u[i]), hex(got[i]), hex(expect[i])) for i in bad[:8]]


@pytest.mark.parametrize("n", range(50))
@pytest.mark.parametrize("dtype, bf16, shift", _dtypes())
def test_conversions_every_length_and_nan_lane(dtype, bf16, shift, n):
    # every vector loop and masked tail: n elements written, bit for bit the casts (NaN
    # payloads included), nothing after them; a NaN pattern in the first, a middle and
    # the last lane in turn
    rng = np.random.default_rng(n)
    base = (rng.standard_normal(n) * 1e-3).astype(np.float32).view(np.uint32)
    cases = [(lane, nan) for lane in sorted({0, n // 2, n - 1}) for nan in NANS] if n else [()]
    for case in cases:
        u = base.copy()
        if case:
            u[case[0]] = case[1]
        f = u.view(np.float32)
        bits = np.full(n + 40, SENTINEL, np.uint16)
        _core.float_to_half(f, bf16, bits[:n])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NaN casts
            expect = f.astype(dtype).view(np.uint16)
        np.testing.assert_array_equal(bits[:n], expect)
        assert (bits[n:] == SENTINEL).all()
    h = rng.integers(0, 2**16, n, dtype=np.uint32).astype(np.uint16)
    h[::7] = 0x7C01 if not bf16 else 0x7F81  # signalling NaNs, whose payloads are kept
    got = _core.half_to_float(h, bf16).view(np.uint32)
    np.testing.assert_array_equal(got, h.view(dtype).astype(np.float32).view(np.uint32))
