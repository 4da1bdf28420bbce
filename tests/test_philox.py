"""gs.philox4x32: Random123 known answers and agreement with the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from reference import load_kat, philox4x32_ref, words_ref

KAT = load_kat()
KAT_4x32 = [e for e in KAT if e["name"] == "philox4x32"]
KAT_4x32_10 = [e for e in KAT_4x32 if e["rounds"] == 10]


def _kat_id(e):
    return " ".join(f"{int(w):08x}" for w in np.concatenate([e["counter"], e["key"]]))


def test_kat_file_parsed():
    # The file carries the three Random123 philox4x32-10 vectors (plus others).
    assert len(KAT_4x32_10) >= 3
    for e in KAT_4x32:
        assert e["counter"].shape == (4,)
        assert e["key"].shape == (2,)
        assert e["expected"].shape == (4,)


@pytest.mark.parametrize("e", KAT_4x32, ids=lambda e: f"r{e['rounds']}-{_kat_id(e)}")
def test_reference_reproduces_kat(e):
    got = philox4x32_ref(e["counter"], e["key"], rounds=e["rounds"])
    np.testing.assert_array_equal(got, e["expected"])


@pytest.mark.parametrize("e", KAT_4x32_10, ids=_kat_id)
def test_package_reproduces_kat(gs, e):
    got = gs.philox4x32(e["counter"], e["key"])
    assert got.dtype == np.uint32
    assert got.shape == (4,)
    np.testing.assert_array_equal(got, e["expected"])


def test_package_kat_batched(gs):
    # Same key, the three KAT counters (and their copies) in one batched call.
    for e in KAT_4x32_10:
        c = np.broadcast_to(e["counter"], (2, 3, 4)).copy()
        got = gs.philox4x32(c, e["key"])
        assert got.shape == (2, 3, 4)
        np.testing.assert_array_equal(got, np.broadcast_to(e["expected"], (2, 3, 4)))


def _random_key(rng):
    return rng.integers(0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)


SPECIAL_KEYS = [
    (0, 0),
    (0xFFFFFFFF, 0xFFFFFFFF),
    (1, 0),
    (0, 1),
    (0x9E3779B9, 0xBB67AE85),
    (0x80000000, 0x7FFFFFFF),
]


@pytest.mark.parametrize("i, key", list(enumerate(SPECIAL_KEYS + [None] * 8)))
def test_random_counters_match_reference(gs, i, key):
    rng = np.random.default_rng(20240611 + i)
    k = _random_key(rng) if key is None else np.array(key, dtype=np.uint32)
    c = rng.integers(0, 2**32, size=(500, 4), dtype=np.uint64).astype(np.uint32)
    # Edge words in some counters.
    c[:8] = np.array(
        [
            [0, 0, 0, 0],
            [0xFFFFFFFF] * 4,
            [1, 0, 0, 0],
            [0, 0, 0, 1],
            [0xFFFFFFFF, 0, 0xFFFFFFFF, 0],
            [0, 0xFFFFFFFF, 0, 0xFFFFFFFF],
            [0x80000000] * 4,
            [0x7FFFFFFF] * 4,
        ],
        dtype=np.uint32,
    )
    got = gs.philox4x32(c, k)
    assert got.dtype == np.uint32 and got.shape == c.shape
    np.testing.assert_array_equal(got, philox4x32_ref(c, k))


@pytest.mark.parametrize(
    "shape", [(4,), (1, 4), (7, 4), (3, 5, 4), (2, 3, 2, 4), (0, 4), (2, 0, 4)]
)
def test_batched_shapes(gs, shape):
    rng = np.random.default_rng(7)
    c = rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)
    k = _random_key(rng)
    got = gs.philox4x32(c, k)
    assert got.shape == shape
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, philox4x32_ref(c, k))


def test_strided_and_fortran_counters(gs):
    rng = np.random.default_rng(11)
    k = _random_key(rng)
    base = rng.integers(0, 2**32, size=(10, 6, 4), dtype=np.uint64).astype(np.uint32)
    views = [base[::2], base[::-1, 1::2], np.asfortranarray(base), base[:, ::-1]]
    for v in views:
        got = gs.philox4x32(v, k)
        assert got.shape == v.shape
        np.testing.assert_array_equal(got, philox4x32_ref(np.ascontiguousarray(v), k))
    # Input left untouched.
    assert base.dtype == np.uint32


def test_uint64_counters_in_range(gs):
    rng = np.random.default_rng(12)
    k = _random_key(rng)
    c = rng.integers(0, 2**32, size=(64, 4), dtype=np.uint64)
    got = gs.philox4x32(c, k)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, philox4x32_ref(c, k))


def test_block_function_gives_stream_words(gs):
    # The documented stream: word(q, w) = philox(counter=(w//4, 0, q lo, q hi), key)[w%4].
    seed = 0x0123456789ABCDEF
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32)
    for q0 in (0, 2**32 - 2, 2**63 - 1, 2**64 - 3):
        n_rows, n_words = 3, 10
        blocks = np.zeros((n_rows, 3, 4), dtype=np.uint32)
        for r in range(n_rows):
            q = q0 + r
            for b in range(3):
                blocks[r, b] = (b, 0, q & 0xFFFFFFFF, q >> 32)
        got = gs.philox4x32(blocks, key).reshape(n_rows, 12)[:, :n_words]
        np.testing.assert_array_equal(got, words_ref(seed, q0, n_rows, n_words))
