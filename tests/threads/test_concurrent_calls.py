"""Eight Python threads calling every entry point at once.

Two phases of one second each (two seconds in total; the duration is the only timing
in this module and nothing is asserted about speed):

1. one ``gs.Philox`` shared by all threads;
2. a separate ``gs.Philox`` per thread (and ``int`` seeds, a fresh generator per call).

Every thread mixes ``gumbel_softmax`` (soft; hard with ``return_soft``; ``out=``;
``axis=0``), ``gumbel`` (float32, float64 with ``out=``), ``conditional_gumbel``
(float32; float64 along axis 0 into ``out=``; long rows), ``gumbel_softmax_backward``,
``philox4x32`` and ``Philox.reserve``, in small calls (run on the calling thread),
calls of 2**14 elements (OpenMP over rows inside the call) and single rows of 70001
elements (OpenMP over the 2**15-element segments of the row).

What is checked:

- no call raises;
- no torn output: every output equals a sequential replay of the same call with
  ``gs.Philox(seed, counter=start)`` for the start the call reserved, byte for byte
  (``backward`` and ``philox4x32`` consume no counters: they must equal the result
  computed before the threads started);
- the reservations are disjoint and cover the counter range exactly, and the final
  counter is the start plus the sum of all rows.

With a shared generator the start a call received cannot be read (the counter moves
under it), so it is recovered from the output: all calls of one family (same row length
8, dtype, logits and tau) are rows of one stream, so the first row of a call is looked
up in one call that draws the whole range at once (allowed because the stream does not
depend on how the rows are split into calls); the literal per-call replay then checks
the whole output.  ``reserve`` returns its start.  With a private generator the start
is simply ``rng.counter`` before the call.

Each thread stops consuming counters after ROW_BUDGET rows (and keeps calling
``backward`` and ``philox4x32`` until the end of the phase), so that the replay stays
cheap on any machine.
"""

from __future__ import annotations

import time

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import assert_exact_cover, run_in_threads

N_THREADS = 8
PHASE_SECONDS = 1.0  # per phase; two phases
ROW_BUDGET = 60_000  # rows a thread may consume per phase
K = 8  # row length of the identifiable calls
SMALL = (1, 22)  # rows of a small call: 8 .. 168 elements, serial
LARGE = 2048  # 2048 x 8 = 2**14 elements: OpenMP over rows
LONG = 70_001  # one row of > 2**16 elements: OpenMP over its segments

SEED = 0x5EED_C0FF_EE01
START = 2**32 - 5000  # the rows cross the 2**32 boundary of the low counter word

L32 = np.array([0.5, -1.0, 2.0, 0.0, 1.0, -0.5, 0.25, 3.0], dtype=np.float32)
L64 = L32.astype(np.float64) * 1.5 - 0.25
LONG32 = np.random.default_rng(1).standard_normal(LONG).astype(np.float32)
LONG64 = np.random.default_rng(2).standard_normal(LONG)


# --------------------------------------------------------------------------------------
# counter-consuming calls: kind -> (family, fn(rng, n) -> tuple of arrays)
# The first array has the call's rows along axis 0; its first K elements of row 0
# identify the call within its family.
# --------------------------------------------------------------------------------------
def _gumbel32(rng, n):
    return (gs.gumbel((n, K), rng=rng),)


def _gumbel64_out(rng, n):
    out = np.empty((n, K), dtype=np.float64)
    got = gs.gumbel((n, K), rng=rng, out=out)  # dtype from out
    assert got is out
    return (out,)


def _soft32(rng, n):
    return (gs.gumbel_softmax(np.broadcast_to(L32, (n, K)), 0.7, rng=rng),)


def _soft64_out(rng, n):
    out = np.empty((n, K), dtype=np.float64)
    got = gs.gumbel_softmax(np.broadcast_to(L64, (n, K)), 1.3, rng=rng, out=out)
    assert got is out
    return (out,)


def _soft64_axis0(rng, n):
    # the same rows as _soft64_out, with the categories along axis 0 (strided rows)
    y = gs.gumbel_softmax(np.broadcast_to(L64[:, None], (K, n)), 1.3, axis=0, rng=rng)
    return (np.ascontiguousarray(y.T),)


def _hard32_soft(rng, n):
    y, ys = gs.gumbel_softmax(
        np.broadcast_to(L32, (n, K)), 0.7, hard=True, return_soft=True, rng=rng
    )
    return (ys, y)


def _hard64_soft(rng, n):
    y, ys = gs.gumbel_softmax(
        np.broadcast_to(L64, (n, K)), 1.3, hard=True, return_soft=True, rng=rng
    )
    return (ys, y)


IDX8 = 3  # conditional_gumbel's index in every row of length K


def _cond32(rng, n):
    return (gs.conditional_gumbel(np.broadcast_to(L32, (n, K)), np.full(n, IDX8), rng=rng),)


def _cond64_axis0_out(rng, n):
    # the conditional rows of L64, categories along axis 0 (strided rows), into out
    out = np.empty((K, n), dtype=np.float64)
    x = np.broadcast_to(L64[:, None], (K, n))
    got = gs.conditional_gumbel(x, np.full(n, IDX8), axis=0, rng=rng, out=out)
    assert got is out
    return (np.ascontiguousarray(out.T),)


def _cond64(rng, n):
    return (gs.conditional_gumbel(np.broadcast_to(L64, (n, K)), np.full(n, IDX8), rng=rng),)


def _gumbel32_long(rng, n):
    return (gs.gumbel((n, LONG), rng=rng),)


def _gumbel64_long(rng, n):
    return (gs.gumbel((n, LONG), dtype=np.float64, rng=rng),)


# identifiable with a shared generator
SHARED_KINDS = {
    "gumbel32": ("g32", _gumbel32),
    "gumbel64_out": ("g64", _gumbel64_out),
    "soft32": ("s32", _soft32),
    "soft64_out": ("s64", _soft64_out),
    "soft64_axis0": ("s64", _soft64_axis0),
    "hard32_soft": ("s32", _hard32_soft),  # y_soft is the soft32 sample
    "hard64_soft": ("s64", _hard64_soft),
    "gumbel32_long": ("g32", _gumbel32_long),  # element c uses word c: first K = g32 row
    "gumbel64_long": ("g64", _gumbel64_long),
    "cond32": ("c32", _cond32),
    "cond64_axis0_out": ("c64", _cond64_axis0_out),
}
LONG_KINDS = {"gumbel32_long", "gumbel64_long", "soft32_long", "hard64_long", "cond32_long"}


def _hard32(rng, n):
    return (gs.gumbel_softmax(np.broadcast_to(L32, (n, K)), 0.7, hard=True, rng=rng),)


def _soft32_long(rng, n):
    return (gs.gumbel_softmax(np.broadcast_to(LONG32, (n, LONG)), 0.9, rng=rng),)


def _hard64_long(rng, n):
    y, ys = gs.gumbel_softmax(
        np.broadcast_to(LONG64, (n, LONG)), 0.9, hard=True, return_soft=True, rng=rng
    )
    return (y, ys)


def _cond32_long(rng, n):
    idx = np.full(n, LONG // 2)
    return (gs.conditional_gumbel(np.broadcast_to(LONG32, (n, LONG)), idx, rng=rng),)


def _subset32(rng, n):
    return gs.relaxed_top_k(
        np.broadcast_to(L32, (n, K)), 3, 0.7, hard=True, return_soft=True, rng=rng
    )


def _subset64(rng, n):
    return (gs.relaxed_top_k(np.broadcast_to(L64, (n, K)), K, 1.3, rng=rng),)


# with a private generator the start is known: any call will do
PRIVATE_KINDS = {name: fn for name, (_, fn) in SHARED_KINDS.items()}
PRIVATE_KINDS.update(
    {
        "hard32": _hard32,
        "soft32_long": _soft32_long,
        "hard64_long": _hard64_long,
        "cond32_long": _cond32_long,
    }
)
PRIVATE_KINDS.update({"subset32": _subset32, "subset64": _subset64})

FAMILIES = {
    "g32": _gumbel32,
    "g64": _gumbel64_out,
    "s32": _soft32,
    "s64": _soft64_out,
    "c32": _cond32,
    "c64": _cond64,
}


# --------------------------------------------------------------------------------------
# calls that consume no counters: fixed inputs, results computed before the threads
# --------------------------------------------------------------------------------------
def _backward_cases():
    gen = np.random.default_rng(3)
    cases = []
    for shape, axis, dtype in [
        ((7, K), -1, np.float32),
        ((LARGE, K), -1, np.float64),
        ((K, LARGE), 0, np.float32),
        ((1, LONG), -1, np.float64),
        ((3, 5, 11), 1, np.float64),
    ]:
        gy = gen.standard_normal(shape).astype(dtype)
        ys = gs.gumbel_softmax(
            gen.standard_normal(shape).astype(dtype), 0.8, axis=axis, rng=gs.Philox(9)
        )
        cases.append((gy, ys, 0.8, axis, gs.gumbel_softmax_backward(gy, ys, 0.8, axis=axis)))
    return cases


def _philox_cases():
    gen = np.random.default_rng(4)
    cases = []
    for m in (3, 5000):
        c = gen.integers(0, 2**32, size=(m, 4), dtype=np.uint64).astype(np.uint32)
        key = gen.integers(0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)
        cases.append((c, key, gs.philox4x32(c, key)))
    return cases


# --------------------------------------------------------------------------------------
# the thread driver
# --------------------------------------------------------------------------------------
def _run_phase(target):
    """Runs target(tid, deadline, out_list) in N_THREADS threads for PHASE_SECONDS;
    returns the per-thread lists; re-raises the first exception of any thread."""
    deadline = []
    results = [[] for _ in range(N_THREADS)]
    run_in_threads(
        N_THREADS,
        lambda tid: target(tid, deadline[0], results[tid]),
        at_start=lambda: deadline.append(time.perf_counter() + PHASE_SECONDS),
    )
    return results


class _NoCounterCalls:
    """backward and philox4x32 calls, checked in the thread against precomputed results."""

    def __init__(self):
        self.backward = _backward_cases()
        self.philox = _philox_cases()

    def call(self, choose, counts, which=None):
        if which is None:
            which = "backward" if choose.random() < 0.6 else "philox4x32"
        if which == "backward":
            i = int(choose.integers(len(self.backward)))
            gy, ys, tau, axis, expect = self.backward[i]
            use_out = choose.random() < 0.5
            out = np.empty_like(expect) if use_out else None
            got = gs.gumbel_softmax_backward(gy, ys, tau, axis=axis, out=out)
            assert got.tobytes() == expect.tobytes(), f"backward case {i} torn"
            if use_out:
                assert got is out
            counts["backward"] = counts.get("backward", 0) + 1
        else:
            i = int(choose.integers(len(self.philox)))
            c, key, expect = self.philox[i]
            got = gs.philox4x32(c, key)
            assert got.tobytes() == expect.tobytes(), f"philox4x32 case {i} torn"
            counts["philox4x32"] = counts.get("philox4x32", 0) + 1


def _script(tid, kinds):
    """The first calls of thread tid: every kind once (long kinds on one row, the others
    on LARGE rows in even threads and a few rows in odd ones), so that every kind and
    size runs concurrently however slow the machine; random calls follow."""
    names = sorted(kinds)
    names = names[tid % len(names) :] + names[: tid % len(names)] + ["reserve"]
    return [(k, 1 if k in LONG_KINDS else LARGE if tid % 2 == 0 else 3 + tid) for k in names]


def _pick(choose, kinds, script):
    """(kind, n) of the next counter-consuming call."""
    if script:
        return script.pop(0)
    names = sorted(kinds)
    u = choose.random()
    if u < 0.03:
        return "reserve", int(choose.integers(1, 200))
    kind = names[int(choose.integers(len(names)))]
    if kind in LONG_KINDS:
        if choose.random() < 0.05:  # long rows are few
            return kind, 1
        kind = "gumbel32"
    if choose.random() < 0.01:
        return kind, LARGE
    return kind, int(choose.integers(*SMALL))


def _row_keys(a):
    """A 64-bit key of the first K elements of every row of a (rows, >=K) array."""
    head = np.ascontiguousarray(a[:, :K])
    return head.view(np.uint8).reshape(head.shape[0], -1)[:, :8].copy().view(np.uint64)[:, 0]


@pytest.fixture
def serial_replay():
    """Replays run on one thread (results never depend on the thread count, so this
    also checks that; and it keeps the replay fast on a loaded machine, where every
    parallel call waits for a time slice).  Call the fixture's value to switch."""
    yield lambda: gs.set_num_threads(1)
    gs.set_num_threads(0)  # follow OpenMP's setting again, as at import


# --------------------------------------------------------------------------------------
# phase 1: one shared generator
# --------------------------------------------------------------------------------------
def test_threads_share_one_generator(serial_replay):
    rng = gs.Philox(SEED, counter=START)
    nocounter = _NoCounterCalls()

    def work(tid, deadline, out):
        choose = np.random.default_rng(100 + tid)
        script = _script(tid, SHARED_KINDS)
        rows = 0
        counts = {}
        nocounter.call(choose, counts, "backward")
        nocounter.call(choose, counts, "philox4x32")
        while script or time.perf_counter() < deadline:
            if (rows >= ROW_BUDGET and not script) or choose.random() < 0.2:
                nocounter.call(choose, counts)
                continue
            kind, n = _pick(choose, SHARED_KINDS, script)
            if kind == "reserve":
                out.append(("reserve", n, int(rng.reserve(n))))
            else:
                out.append((kind, n, SHARED_KINDS[kind][1](rng, n)))
            rows += n
        out.append(("counts", 0, counts))

    per_thread = _run_phase(work)
    records = [
        (tid, seq, r)
        for tid, recs in enumerate(per_thread)
        for seq, r in enumerate(recs)
        if r[0] != "counts"
    ]
    counts = [r for recs in per_thread for r in recs if r[0] == "counts"]
    total = sum(r[1] for _, _, r in records)
    end = rng.counter
    assert end == START + total
    kinds_seen = {r[0] for _, _, r in records}
    assert kinds_seen == set(SHARED_KINDS) | {"reserve"}, kinds_seen
    assert any(r[1] == LARGE for _, _, r in records)
    assert all(c[2].get("backward", 0) + c[2].get("philox4x32", 0) > 0 for c in counts)

    serial_replay()
    # one call per family draws the whole range: the lookup tables
    tables = {}
    for fam, fn in FAMILIES.items():
        t = fn(gs.Philox(SEED, counter=START), total)[0]
        keys = _row_keys(t)
        order = np.argsort(keys, kind="stable")
        tables[fam] = (t, keys[order], order)

    intervals = []
    last = {}
    for tid, seq, (kind, n, payload) in records:
        if kind == "reserve":
            start = payload
        else:
            fam, fn = SHARED_KINDS[kind]
            t, skeys, order = tables[fam]
            head = np.ascontiguousarray(payload[0][:1, :K])
            key = _row_keys(head)[0]
            lo = int(np.searchsorted(skeys, key, side="left"))
            hi = int(np.searchsorted(skeys, key, side="right"))
            cands = [
                int(order[i]) for i in range(lo, hi) if t[order[i]].tobytes() == head.tobytes()
            ]
            assert len(cands) == 1, (
                f"thread {tid} call {seq} ({kind}, {n} rows): first row "
                f"found {len(cands)} times in the stream"
            )
            start = START + cands[0]
            # the literal sequential replay of this call from its start
            replay_rng = gs.Philox(SEED, counter=start)
            replay = fn(replay_rng, n)
            assert replay_rng.counter == start + n
            for got, ref in zip(payload, replay, strict=True):
                assert got.shape == ref.shape and got.dtype == ref.dtype
                assert got.tobytes() == ref.tobytes(), (
                    f"thread {tid} call {seq} ({kind}, {n} rows at {start}): torn output"
                )
        # one thread's reservations are made in order
        assert start > last.get(tid, -1)
        last[tid] = start
        intervals.append((start, n))
    assert_exact_cover(intervals, START, end)


# --------------------------------------------------------------------------------------
# phase 2: a generator per thread
# --------------------------------------------------------------------------------------
def test_threads_with_separate_generators(serial_replay):
    nocounter = _NoCounterCalls()
    starts = [2**64 - 2**40 * (t + 1) + 17 * t for t in range(N_THREADS)]
    rngs = [gs.Philox(SEED + t, counter=starts[t]) for t in range(N_THREADS)]

    def work(tid, deadline, out):
        rng = rngs[tid]
        choose = np.random.default_rng(200 + tid)
        script = _script(tid, PRIVATE_KINDS)
        rows = 0
        counts = {}
        nocounter.call(choose, counts, "backward")
        nocounter.call(choose, counts, "philox4x32")
        while script or time.perf_counter() < deadline:
            if (rows >= ROW_BUDGET and not script) or choose.random() < 0.2:
                nocounter.call(choose, counts)
                continue
            kind, n = _pick(choose, PRIVATE_KINDS, script)
            if choose.random() < 0.05 and kind != "reserve" and not script:
                # an int seed: a fresh Philox(seed) per call, counter 0
                seed = int(choose.integers(0, 2**63))
                out.append((kind, n, ("int", seed), PRIVATE_KINDS[kind](seed, n)))
                continue
            before = rng.counter  # only this thread uses rng: exact
            if kind == "reserve":
                got = int(rng.reserve(n))
                assert got == before
                out.append(("reserve", n, before, None))
            else:
                out.append((kind, n, before, PRIVATE_KINDS[kind](rng, n)))
            assert rng.counter == before + n
            rows += n
        out.append(("counts", 0, None, counts))

    per_thread = _run_phase(work)
    serial_replay()
    kinds_seen = set()
    for tid, recs in enumerate(per_thread):
        intervals = []
        for seq, (kind, n, start, payload) in enumerate(recs):
            if kind == "counts":
                assert payload.get("backward", 0) + payload.get("philox4x32", 0) > 0
                continue
            kinds_seen.add(kind)
            if isinstance(start, tuple):  # int seed
                replay = PRIVATE_KINDS[kind](gs.Philox(start[1]), n)
            else:
                intervals.append((start, n))
                if kind == "reserve":
                    continue
                replay_rng = gs.Philox(SEED + tid, counter=start)
                replay = PRIVATE_KINDS[kind](replay_rng, n)
                assert replay_rng.counter == start + n
            for got, ref in zip(payload, replay, strict=True):
                assert got.tobytes() == ref.tobytes(), (
                    f"thread {tid} call {seq} ({kind}, {n} rows at {start}): torn output"
                )
        assert_exact_cover(intervals, starts[tid], rngs[tid].counter)
    assert kinds_seen == set(PRIVATE_KINDS) | {"reserve"}, kinds_seen
