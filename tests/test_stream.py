"""gs.gumbel against the documented stream layout and bits-to-noise formula."""

from __future__ import annotations

import numpy as np
import pytest
from reference import eps_of, gumbel_ref, n_rows_of, noise_tol

DTYPES = [np.float32, np.float64]
ROW_LENGTHS = [1, 3, 5, 17, 1000]
# Range of g implied by the formula (docs/contract.md "Bits to noise"): t lies in
# [2**-(n+1), 1/2], so E lies in [~2**-(n+1), (n+1) log 2]; a little slack for rounding.
G_RANGE = {
    np.float32: (-np.log(33 * np.log(2.0)) - 1e-5, 33 * np.log(2.0) + 1e-5),
    np.float64: (-np.log(65 * np.log(2.0)) - 1e-12, 65 * np.log(2.0) + 1e-12),
}

SHAPE_ROWS = 6  # rows per call in the layout tests: shape (2, 3, K)
COUNTERS = {
    "zero": 0,
    "small": 5,
    "straddle_2**32": 2**32 - 3,  # q & 0xffffffff wraps, q >> 32 becomes 1
    "straddle_2**63": 2**63 - 3,  # high word crosses 2**31
    "end_2**64-rows-1": 2**64 - SHAPE_ROWS - 1,
    "end_2**64-rows": 2**64 - SHAPE_ROWS,  # the very last rows of the stream
}
SEEDS = [0, 1234, 2**32 + 5, 0xFEDCBA9876543210, 2**64 - 1]


def _check_noise(g, seed, counter, shape, dtype):
    g_ref = gumbel_ref(seed, counter, shape, dtype)
    assert g.shape == tuple(shape)
    assert g.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(g))
    err = np.abs(g.astype(np.float64) - g_ref)
    tol = noise_tol(g_ref, dtype)
    bad = err > tol
    if np.any(bad):
        i = np.unravel_index(np.argmax(err / tol), err.shape)
        pytest.fail(
            f"noise mismatch at {i} (seed={seed}, counter={counter}, dtype={np.dtype(dtype)}): "
            f"got {g[i]!r}, expected {g_ref[i]!r}, err={err[i] / eps_of(dtype):.2f} eps, "
            f"{int(bad.sum())} of {g.size} elements out of tolerance"
        )
    return float(np.max(err / (eps_of(dtype) * (1.0 + np.abs(g_ref)))))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("K", ROW_LENGTHS)
@pytest.mark.parametrize("counter", list(COUNTERS.values()), ids=list(COUNTERS))
def test_gumbel_matches_reference(gs, dtype, K, counter):
    seed = 0x5EED0000ABCD + K
    shape = (2, 3, K)
    rng = gs.Philox(seed, counter=counter)
    g = gs.gumbel(shape, dtype=dtype, rng=rng)
    _check_noise(g, seed, counter, shape, dtype)
    assert rng.counter == counter + SHAPE_ROWS


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("seed", SEEDS)
def test_gumbel_seeds(gs, dtype, seed):
    shape = (9, 7)
    g = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(seed, counter=3))
    _check_noise(g, seed, 3, shape, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_gumbel_many_values(gs, dtype):
    # A larger sample for the tails of the error distribution; 1-d and 2-d shapes.
    shape = (1500, 67)
    g = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(99, counter=2**40 + 17))
    _check_noise(g, 99, 2**40 + 17, shape, dtype)
    lo, hi = G_RANGE[dtype]
    assert lo <= g.min() and g.max() <= hi
    # One row: a 1-d shape is a single row.
    g1 = gs.gumbel((4097,), dtype=dtype, rng=gs.Philox(98, counter=1))
    _check_noise(g1, 98, 1, (4097,), dtype)


def test_philox_state(gs):
    seed = 0x0123456789ABCDEF
    rng = gs.Philox(seed, counter=42)
    assert rng.seed == seed
    assert tuple(int(k) for k in rng.key) == (0x89ABCDEF, 0x01234567)
    assert rng.counter == 42
    assert gs.Philox(7).counter == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 5), (3, 1, 2, 17), (0, 4), (3, 0, 2)])
def test_counter_advances_by_rows(gs, dtype, shape):
    p = 2**32 - 2
    rng = gs.Philox(31, counter=p)
    g = gs.gumbel(shape, dtype=dtype, rng=rng)
    R = n_rows_of(shape)
    assert rng.counter == p + R
    assert g.shape == shape
    # A second call continues at p + R.
    g2 = gs.gumbel((2, 3), dtype=dtype, rng=rng)
    assert rng.counter == p + R + 2
    _check_noise(g2, 31, p + R, (2, 3), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("K", [1, 5, 17])
def test_sub_calls_are_rows_of_bigger_call(gs, dtype, K):
    seed, p0 = 2024, 2**32 - 7
    big = gs.gumbel((20, K), dtype=dtype, rng=gs.Philox(seed, counter=p0))
    for a, b in [(0, 1), (0, 20), (3, 4), (5, 12), (7, 20), (19, 20)]:
        part = gs.gumbel((b - a, K), dtype=dtype, rng=gs.Philox(seed, counter=p0 + a))
        np.testing.assert_array_equal(part, big[a:b])
    # Several consecutive calls on one generator give the rows of one call.
    rng = gs.Philox(seed, counter=p0)
    parts = [gs.gumbel((n, K), dtype=dtype, rng=rng) for n in (1, 4, 2, 13)]
    np.testing.assert_array_equal(np.concatenate(parts), big)
    # Higher-dimensional shapes enumerate rows in C order.
    multi = gs.gumbel((4, 5, K), dtype=dtype, rng=gs.Philox(seed, counter=p0))
    np.testing.assert_array_equal(multi.reshape(20, K), big)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_element_uses_fixed_words(gs, dtype):
    # Element c of a row uses word c (float32) or words 2c, 2c+1 (float64), whatever
    # the row length: a shorter row is a prefix of a longer one.
    long = gs.gumbel((6, 1000), dtype=dtype, rng=gs.Philox(5, counter=11))
    for K in (1, 2, 3, 4, 5, 8, 17, 999):
        short = gs.gumbel((6, K), dtype=dtype, rng=gs.Philox(5, counter=11))
        np.testing.assert_array_equal(short, long[:, :K])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_int_seed_is_fresh_philox(gs, dtype):
    a = gs.gumbel((3, 8), dtype=dtype, rng=777)
    b = gs.gumbel((3, 8), dtype=dtype, rng=gs.Philox(777))
    np.testing.assert_array_equal(a, b)
    _check_noise(a, 777, 0, (3, 8), dtype)


def test_default_dtype_is_float32(gs):
    g = gs.gumbel((2, 3), rng=gs.Philox(1))
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, gs.gumbel((2, 3), dtype=np.float32, rng=gs.Philox(1)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_out_argument(gs, dtype):
    shape = (4, 9)
    expected = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(8, counter=2))
    out = np.full(shape, np.nan, dtype=dtype)
    rng = gs.Philox(8, counter=2)
    ret = gs.gumbel(shape, rng=rng, out=out)  # dtype taken from out
    assert ret is out
    assert rng.counter == 2 + 4
    np.testing.assert_array_equal(out, expected)
    # A non-contiguous out view: only the viewed elements are written.
    big = np.full((4, 18), -7.0, dtype=dtype)
    view = big[:, ::2]
    ret = gs.gumbel(shape, dtype=dtype, rng=gs.Philox(8, counter=2), out=view)
    assert ret is view
    np.testing.assert_array_equal(view, expected)
    assert np.all(big[:, 1::2] == -7.0)
    # Negative strides: element (i, j) of the view still gets the noise of (i, j).
    big2 = np.zeros((4, 9), dtype=dtype)
    neg = big2[::-1, ::-1]
    gs.gumbel(shape, dtype=dtype, rng=gs.Philox(8, counter=2), out=neg)
    np.testing.assert_array_equal(neg, expected)
