"""Python threads sharing one ``gs.Philox``: every call reserves its rows atomically.

The rows a call received are identified exactly: the whole range of rows is drawn once
more in a single call from a fresh ``Philox(seed, counter=start)`` (allowed because the
stream does not depend on how the rows are split into calls), and each returned row is
looked up there by its bytes.  The reserved ranges must be contiguous per call, pairwise
disjoint, and together cover exactly ``[start, start + total)``.
"""

import operator
import threading

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_exact_cover, run_in_threads

SEED = 0x1234_5678_9ABC
START = 2**32 - 1000  # the rows cross the 2**32 boundary of the low counter word
K = 8
N_THREADS = 8
CALLS = 200

L32 = np.array([0.5, -1.0, 2.0, 0.0, 1.0, -0.5, 0.25, 3.0], dtype=np.float32)
L64 = L32.astype(np.float64) * 1.5

# kind -> function (rng, n) returning the (n, K) arrays that identify the rows, in the
# order (key, *others); `key` is looked up, `others` must match the same rows.
KINDS = {
    "gumbel32": lambda rng, n: (gs.gumbel((n, K), rng=rng),),
    "gumbel64": lambda rng, n: (gs.gumbel((n, K), dtype=np.float64, rng=rng),),
    "soft32": lambda rng, n: (gs.gumbel_softmax(np.broadcast_to(L32, (n, K)), 0.7, rng=rng),),
    "hard64": lambda rng, n: gs.gumbel_softmax(
        np.broadcast_to(L64, (n, K)), 0.7, hard=True, return_soft=True, rng=rng
    )[::-1],
}


def _identify(records, start, total):
    """records: list of (thread, seq, kind, n, arrays).  Returns the row intervals."""
    refs = {}
    lookup = {}
    for kind, fn in KINDS.items():
        arrays = fn(gs.Philox(SEED, counter=start), total)
        refs[kind] = arrays
        table = {row.tobytes(): i for i, row in enumerate(arrays[0])}
        assert len(table) == total  # every reference row is distinct
        lookup[kind] = table
    intervals = []
    last_start = {}
    for tid, seq, kind, n, arrays in sorted(records, key=lambda r: (r[0], r[1])):
        assert all(a.shape == (n, K) for a in arrays)
        first = arrays[0][0].tobytes()
        assert first in lookup[kind], f"thread {tid} call {seq}: row not in the stream"
        off = lookup[kind][first]
        assert off + n <= total
        for got, ref in zip(arrays, refs[kind]):
            # the call's rows are the contiguous reference rows [off, off + n)
            assert got.tobytes() == np.ascontiguousarray(ref[off : off + n]).tobytes()
        # reservations of one thread are made in order, so they increase
        if tid in last_start:
            assert off > last_start[tid]
        last_start[tid] = off
        intervals.append((off, n))
    return intervals


@pytest.mark.parametrize(
    "n_threads, calls, sizes, seed",
    [
        (N_THREADS, CALLS, (1, 21), 1000),  # many small calls
        # fewer, larger calls, so that OpenMP runs inside concurrently running Python threads
        (4, 4, (500, 3000), 2000),
    ],
    ids=["small-calls", "large-calls"],
)
def test_threads_share_one_philox(n_threads, calls, sizes, seed):
    rng = gs.Philox(SEED, counter=START)
    records = []
    lock = threading.Lock()
    kinds = list(KINDS)

    def work(tid):
        choose = np.random.default_rng(seed + tid)
        mine = []
        for seq in range(calls):
            n = int(choose.integers(*sizes))
            kind = kinds[(seq + tid) % len(kinds)]
            mine.append((tid, seq, kind, n, KINDS[kind](rng, n)))
        with lock:
            records.extend(mine)

    run_in_threads(n_threads, work)
    assert len(records) == n_threads * calls
    total = sum(r[3] for r in records)
    assert rng.counter == START + total
    assert_exact_cover(_identify(records, START, total), 0, total)


def test_reserve_from_threads():
    rng = gs.Philox(99, counter=START)
    got = []
    lock = threading.Lock()

    def work(tid):
        choose = np.random.default_rng(tid)
        mine = []
        for _ in range(500):
            n = int(choose.integers(1, 51))
            s = operator.index(rng.reserve(n))
            mine.append((s - START, n))
        with lock:
            got.extend(mine)

    run_in_threads(N_THREADS, work)
    total = sum(n for _, n in got)
    assert len(got) == N_THREADS * 500
    assert rng.counter == START + total
    assert_exact_cover(got, 0, total)


def test_reserve_from_threads_up_to_the_end():
    # 100 rows are left below counter 2**64 - 1; threads reserve 2 rows at a time until
    # the generator refuses: exactly 50 reservations succeed, the others raise
    # OverflowError and reserve nothing.
    start = 2**64 - 1 - 100
    rng = gs.Philox(3, counter=start)
    got = []
    refused = []
    lock = threading.Lock()

    def work(tid):
        for _ in range(20):
            try:
                s = rng.reserve(2)
            except OverflowError:
                with lock:
                    refused.append(tid)
            else:
                with lock:
                    got.append((s - start, 2))

    run_in_threads(N_THREADS, work)
    assert len(got) == 50
    assert len(refused) == N_THREADS * 20 - 50
    assert rng.counter == 2**64 - 1
    assert_exact_cover(got, 0, 100)
    with pytest.raises(OverflowError, match="counter"):
        rng.reserve(2)
    assert rng.counter == 2**64 - 1
