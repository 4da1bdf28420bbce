#!/usr/bin/env python
"""Exhaustive check of the bits-to-noise map (docs/contract.md "Bits to noise") on one SIMD target.

    python tests/exhaustive_noise.py [--target baseline|avx2|avx512] [--json PATH]
                                     [--threads N] [--no-f32] [--no-f64] [-q]

float32: every one of the 2**32 words, walked in the order of the uniform U it stands for
(words 0 .. 2**31 - 1, then 2**32 - 1 down to 2**31), through the private
``gumbel_softmax._core._noise_f32`` on the active target, in chunks. Checked: every value
is finite, the values never decrease along the walk (inside chunks, across chunk
boundaries and across the middle U = 1/2), the range spans at least [-3.1, 22.0] and lies
within the range the formula implies, and a sparse sample (every 4097th word and the
4096 words at both ends of both tails) matches ``reference.gumbel_from_bits_ref`` within
``reference.noise_tol``. A SHA-256 digest of the float32 values in walk order lets runs on
different targets be compared bit for bit (tests/test_exhaustive.py).

float64 (``_noise_f64``): (a) the extremes: the words at both ends of both tails, the
middle U ~ 1/2, windows around the case split t = 1 - sqrt(1/2), around every power of two
of m, and around every argument-reduction boundary (x = 2**k sqrt(1/2)) of the first log
(x = t) and of the second log (x = E); (b) 10**8 random words (PCG64, fixed seed), sorted
by U. Both sets: finite, non-decreasing in U, within the range the formula implies
([-log(65 ln 2), 65 ln 2], which docs/contract.md rounds to [-3.81, 45.05]), a sample against the
reference, and a digest.

The target is forced with GUMBEL_SOFTMAX_TARGET (set before the package is imported); by
default the process's own choice is used. Exit status 0 when every check passed, 1 when
some failed (offending words are listed in the report), 2 on bad usage.

Implementation notes. Chunks of 2**18 words keep the kernel's input and output in cache
(larger chunks are ~2x slower per element). A chunk is "clean" when every g[i + 1] >= g[i]
holds (a NaN fails that comparison, so a clean chunk has no NaN) and its first and last
values are finite: then all its values are finite, its minimum is its first value and its
maximum its last, so no further pass over it is needed; any other chunk is examined
element by element and every offending word is reported. The noise of the next chunks is
computed by a pool of threads (one per CPU available, at most 8) while the main thread
checks and digests the chunks in order.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import hashlib
import json
import math
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from reference import eps_of, gumbel_from_bits_ref, noise_tol  # noqa: E402

# Range of g implied by the formula: t in [2**-(n+1), 1/2] gives E in
# [~2**-(n+1), (n+1) ln 2], so g in [-log((n+1) ln 2), (n+1) ln 2] (docs/contract.md: [-3.13, 22.88]
# for float32 and [-3.81, 45.05] for float64, rounded); a little slack for rounding.
G_RANGE = {
    32: (-math.log(33 * math.log(2.0)) - 1e-5, 33 * math.log(2.0) + 1e-5),
    64: (-math.log(65 * math.log(2.0)) - 1e-12, 65 * math.log(2.0) + 1e-12),
}
F32_SPAN = (
    -3.1,
    22.0,
)  # the float32 values must reach at least this far (docs/contract.md "Bits to noise")
F64_EXTREME_SPAN = (-3.80, 45.05)  # the float64 extremes must reach at least this far

SAMPLE_STEP = 4097  # float32: words w with w % SAMPLE_STEP == 0 go to the reference check
END_WORDS = 4096  # float32: words at both ends of both tails that go to the reference check
F64_RANDOM_SEED = 20260401
F64_SAMPLE_STEP = 97  # float64 random set: every 97th value (in U order) vs the reference
MAX_LISTED = 50  # offending words listed per kind of failure


def u_key(words: np.ndarray) -> np.ndarray:
    """Unsigned key that sorts words in the order of U: top bit 0 -> the word itself (U = t
    increases with m); top bit 1 -> the low bits flipped (U = 1 - t decreases with m)."""
    w = np.asarray(words)
    n = 8 * w.dtype.itemsize
    low = w.dtype.type((1 << (n - 1)) - 1)
    return w ^ ((w >> w.dtype.type(n - 1)) * low)


class OrderedChecker:
    """Takes (words, g) chunks in U order; checks finiteness and monotonicity, tracks the
    extremes, digests the values and keeps offending words."""

    def __init__(self, bits: int):
        self.bits = bits
        self.hash = hashlib.sha256()
        self.count = 0
        self.prev_g = None
        self.prev_word = None
        self.min = (math.inf, None)  # (value, word)
        self.max = (-math.inf, None)
        self.nonfinite = []  # (word, value)
        self.nonfinite_count = 0
        self.decreasing = []  # (word_a, g_a, word_b, g_b): a before b in U, g_b < g_a
        self.decreasing_count = 0
        self._ok = None

    def add(self, words: np.ndarray, g: np.ndarray) -> None:
        n = g.size
        if n == 0:
            return
        self.hash.update(g)  # the GIL is released: the noise threads go on meanwhile
        if self._ok is None or self._ok.size < n - 1:
            self._ok = np.empty(max(n - 1, 1), dtype=bool)
        ok = self._ok[: n - 1]
        np.greater_equal(g[1:], g[:-1], out=ok)
        first, last = g[0], g[-1]
        if self.prev_g is not None and first < self.prev_g:  # across the chunk boundary
            self._decrease(self.prev_word, self.prev_g, words[0], first)
        if ok.all() and np.isfinite(first) and np.isfinite(last):
            lo, lo_w, hi, hi_w = first, words[0], last, words[-1]
        else:
            lo, lo_w, hi, hi_w = self._examine(words, g)
        if lo < self.min[0]:
            self.min = (float(lo), int(lo_w))
        if hi > self.max[0]:
            self.max = (float(hi), int(hi_w))
        self.prev_g, self.prev_word = last, words[-1]
        self.count += n

    def _decrease(self, wa, ga, wb, gb):
        self.decreasing_count += 1
        if len(self.decreasing) < MAX_LISTED:
            self.decreasing.append((int(wa), float(ga), int(wb), float(gb)))

    def _examine(self, words, g):
        """The slow path for a chunk that is not clean: list every offending word."""
        fin = np.isfinite(g)
        bad = np.flatnonzero(~fin)
        self.nonfinite_count += bad.size
        for i in bad[: max(0, MAX_LISTED - len(self.nonfinite))]:
            self.nonfinite.append((int(words[i]), float(g[i])))
        dec = np.flatnonzero(g[1:] < g[:-1])  # NaNs are reported above, not here
        for i in dec:
            self._decrease(words[i], g[i], words[i + 1], g[i + 1])
        gf = np.where(fin, g, np.nan)
        if fin.any():
            i_lo, i_hi = int(np.nanargmin(gf)), int(np.nanargmax(gf))
        else:
            i_lo = i_hi = 0
        lo, hi = g[i_lo], g[i_hi]
        # an infinite value still counts for the extremes (it is reported as non-finite)
        if np.any(g == -np.inf):
            i_lo = int(np.flatnonzero(g == -np.inf)[0])
            lo = g[i_lo]
        if np.any(g == np.inf):
            i_hi = int(np.flatnonzero(g == np.inf)[0])
            hi = g[i_hi]
        return lo, words[i_lo], hi, words[i_hi]

    def finish(self) -> dict:
        width = self.bits // 4
        hx = lambda w: None if w is None else f"0x{w:0{width}x}"  # noqa: E731
        return {
            "count": self.count,
            "digest": self.hash.hexdigest(),
            "min": self.min[0],
            "min_word": hx(self.min[1]),
            "max": self.max[0],
            "max_word": hx(self.max[1]),
            "nonfinite_count": self.nonfinite_count,
            "nonfinite": [{"word": hx(w), "g": repr(v)} for w, v in self.nonfinite],
            "decreasing_count": self.decreasing_count,
            "decreasing": [
                {"word_a": hx(a), "g_a": repr(ga), "word_b": hx(b), "g_b": repr(gb)}
                for a, ga, b, gb in self.decreasing
            ],
        }


def reference_check(words: np.ndarray, g: np.ndarray, dtype) -> dict:
    """Compare g (the package's values of ``words``) with the exact-maths reference."""
    g_ref = gumbel_from_bits_ref(words, dtype)
    err = np.abs(g.astype(np.float64) - g_ref)
    tol = noise_tol(g_ref, dtype)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(err <= tol))  # NaN counts as bad
    width = np.dtype(words.dtype).itemsize * 2
    rel = err / (eps_of(dtype) * (1.0 + np.abs(g_ref)))
    return {
        "checked": int(words.size),
        "max_err_eps": float(np.nanmax(rel)) if words.size else 0.0,
        "failures_count": int(bad.size),
        "failures": [
            {
                "word": f"0x{int(words[i]):0{width}x}",
                "g": repr(float(g[i])),
                "g_ref": repr(float(g_ref[i])),
                "err_eps": float(rel[i]),
            }
            for i in bad[:MAX_LISTED]
        ],
    }


def ordered_map(pool, fn, args, depth: int = 16):
    """fn(*a) for each a in args, in order; with a thread pool, up to ``depth`` chunks
    ahead (the kernel and NumPy release the GIL, so the chunks are computed in parallel)."""
    if pool is None:
        for a in args:
            yield fn(*a)
        return
    pending = collections.deque()
    for a in args:
        pending.append(pool.submit(fn, *a))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


# ------------------------------------------------------------------------------ float32
def check_f32(noise, chunk_log2: int, pool, progress: bool) -> dict:
    t0 = time.perf_counter()
    C = 1 << chunk_log2
    half = 1 << 31
    n_per_half = half // C
    ar = np.arange(C, dtype=np.uint32)
    chk = OrderedChecker(32)
    sample_w, sample_g = [], []
    K = min(END_WORDS, C)

    def chunk(tail, k):
        if tail == 0:  # U = t, increasing in m: words ascending from 0
            words = ar + np.uint32(k * C)
        else:  # U = 1 - t, increasing as m decreases: words descending from 2**32 - 1
            words = np.uint32((1 << 32) - 1 - k * C) - ar
        return tail, k, words, noise(words)

    jobs = [(tail, k) for tail in (0, 1) for k in range(n_per_half)]
    for tail, k, words, g in ordered_map(pool, chunk, jobs):
        chk.add(words, g)
        w0 = int(words[0])
        p0 = (-w0) % SAMPLE_STEP if tail == 0 else w0 % SAMPLE_STEP  # words % STEP == 0
        sample_w.append(words[p0::SAMPLE_STEP].copy())
        sample_g.append(g[p0::SAMPLE_STEP].copy())
        if k == 0:  # first words of the tail in the walk
            sample_w.append(words[:K].copy())
            sample_g.append(g[:K].copy())
        if k == n_per_half - 1:  # last words of the tail in the walk
            sample_w.append(words[-K:].copy())
            sample_g.append(g[-K:].copy())
        if progress and (k + 1) % max(1, n_per_half // 8) == 0:
            print(
                f"  f32 tail {tail}: {k + 1}/{n_per_half} chunks, {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    res = chk.finish()
    res["reference"] = reference_check(
        np.concatenate(sample_w), np.concatenate(sample_g), np.float32
    )
    res["seconds"] = time.perf_counter() - t0
    return res


# ------------------------------------------------------------------------------ float64
def _windows_around_t(t_values, radius_ulps: int, step_words: int = 1) -> list[int]:
    """Words of both tails whose t lies within ``radius_ulps`` float64 ulps of each t in
    ``t_values`` (every ``step_words``-th word there, and always both ends)."""
    out = []
    top = 1 << 63
    for t in t_values:
        t = float(t)
        if not (0.0 < t <= 0.5):
            continue
        lo = hi = t
        for _ in range(radius_ulps):
            lo = float(np.nextafter(lo, 0.0))
            hi = float(np.nextafter(hi, 1.0))
        # (m + 1/2) 2**-64 in [lo, hi]  <=>  m in [lo 2**64 - 1/2, hi 2**64 - 1/2]
        m_lo = max(0, math.floor(lo * 2.0**64) - 1)
        m_hi = min(top - 1, math.ceil(hi * 2.0**64) + 1)
        ms = list(range(m_lo, m_hi + 1, step_words))
        ms.append(m_hi)
        for m in ms:
            out.append(m)
            out.append(top | m)
    return out


def f64_extreme_words() -> np.ndarray:
    top = 1 << 63
    K = 4096
    words = []
    words += range(0, K)  # U -> 0: m = 0 .. in the lower tail
    words += range(top - K, top)  # U -> 1/2 from below (all-one low bits)
    words += range((1 << 64) - K, 1 << 64)  # U -> 1/2 from above (all-one low bits)
    words += range(top, top + K)  # U -> 1 (all-zero low bits)
    for k in range(63):  # around every power of two of m, both tails
        for m in range(max(0, (1 << k) - 8), min(top, (1 << k) + 9)):
            words += [m, top | m]
    # The case split t = 1 - sqrt(1/2) (rounded as in gumbel.hpp): every word within 4
    # ulps of t (~8k words per tail), every 101st word within 64 ulps.
    split = float(np.float64(0.29289321881345247))
    words += _windows_around_t([split], 4)
    words += _windows_around_t([split], 64, step_words=101)
    # Argument-reduction boundaries x = 2**k sqrt(1/2) of log(x): the first log has x = t
    # (lower tail); the second x = E, reached at t = exp(-x) (lower tail) and
    # t = -expm1(-x) (upper tail).
    r = math.sqrt(0.5)
    t_first = [r * 2.0**k for k in range(-66, 0)]
    E_bound = [r * 2.0**k for k in range(-70, 8)] + [2.0**k for k in range(-70, 8)]
    t_second = [math.exp(-x) for x in E_bound] + [-math.expm1(-x) for x in E_bound]
    words += _windows_around_t(t_first + t_second, 3)
    w = np.unique(np.array(words, dtype=np.uint64))
    # sort by U
    return w[np.argsort(u_key(w), kind="stable")]


def check_f64(noise, n_random: int, chunk_log2: int, pool, progress: bool) -> dict:
    t0 = time.perf_counter()
    lo_doc, hi_doc = G_RANGE[64]
    # (a) the extremes
    w = f64_extreme_words()
    g = noise(w)
    chk = OrderedChecker(64)
    chk.add(w, g)
    ext = chk.finish()
    ext["reference"] = reference_check(w, g, np.float64)
    t1 = time.perf_counter()
    ext["seconds"] = t1 - t0
    if progress:
        print(
            f"  f64 extremes: {w.size} words, {ext['seconds']:.1f} s", file=sys.stderr, flush=True
        )
    # (b) random words, sorted by U (as keys; the key map is its own inverse)
    C = 1 << chunk_log2
    bitgen = np.random.PCG64(F64_RANDOM_SEED)
    keys = np.empty(n_random, dtype=np.uint64)
    for i in range(0, n_random, C):
        j = min(n_random, i + C)
        keys[i:j] = u_key(bitgen.random_raw(j - i))
    keys.sort()
    t2 = time.perf_counter()
    chk = OrderedChecker(64)
    sample_w, sample_g = [], []

    def chunk(i):
        words = u_key(keys[i : i + C])
        return i, words, noise(words)

    for i, words, g in ordered_map(pool, chunk, [(i,) for i in range(0, n_random, C)]):
        chk.add(words, g)
        p0 = (-i) % F64_SAMPLE_STEP
        sample_w.append(words[p0::F64_SAMPLE_STEP].copy())
        sample_g.append(g[p0::F64_SAMPLE_STEP].copy())
    keys = None  # frees the sorted keys (chunk no longer runs)
    rnd = chk.finish()
    rnd["reference"] = reference_check(
        np.concatenate(sample_w), np.concatenate(sample_g), np.float64
    )
    rnd["seed"] = F64_RANDOM_SEED
    rnd["sort_seconds"] = t2 - t1
    rnd["seconds"] = time.perf_counter() - t1
    if progress:
        print(
            f"  f64 random: {n_random} words, {rnd['seconds']:.1f} s", file=sys.stderr, flush=True
        )
    return {
        "extremes": ext,
        "random": rnd,
        "range": [lo_doc, hi_doc],
        "seconds": time.perf_counter() - t0,
    }


# ------------------------------------------------------------------------------ checks
def failures_of(report: dict) -> list[str]:
    out = []

    def common(name, r, lo, hi):
        if r["nonfinite_count"]:
            out.append(
                f"{name}: {r['nonfinite_count']} non-finite values, e.g. {r['nonfinite'][:5]}"
            )
        if r["decreasing_count"]:
            out.append(
                f"{name}: {r['decreasing_count']} decreasing steps in U order, e.g. "
                f"{r['decreasing'][:5]}"
            )
        if not (lo <= r["min"] and r["max"] <= hi):
            out.append(
                f"{name}: values [{r['min']!r} (word {r['min_word']}), {r['max']!r} "
                f"(word {r['max_word']})] outside the formula's range [{lo}, {hi}]"
            )
        ref = r["reference"]
        if ref["failures_count"]:
            out.append(
                f"{name}: {ref['failures_count']} of {ref['checked']} sampled values "
                f"differ from the reference beyond noise_tol, e.g. {ref['failures'][:5]}"
            )

    if "f32" in report:
        r = report["f32"]
        common("float32", r, *G_RANGE[32])
        if r["count"] != 1 << 32:
            out.append(f"float32: {r['count']} words checked, not 2**32")
        if not (r["min"] <= F32_SPAN[0] and r["max"] >= F32_SPAN[1]):
            out.append(f"float32: values [{r['min']!r}, {r['max']!r}] do not span {F32_SPAN}")
    if "f64" in report:
        common("float64 extremes", report["f64"]["extremes"], *G_RANGE[64])
        common("float64 random", report["f64"]["random"], *G_RANGE[64])
        e = report["f64"]["extremes"]
        if not (e["min"] <= F64_EXTREME_SPAN[0] and e["max"] >= F64_EXTREME_SPAN[1]):
            out.append(
                f"float64 extremes: values [{e['min']!r}, {e['max']!r}] do not span "
                f"{F64_EXTREME_SPAN}"
            )
    return out


def default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def run(
    target: str | None,
    *,
    f32: bool = True,
    f64: bool = True,
    n_random: int = 10**8,
    chunk_log2: int = 18,
    threads: int = 0,
    progress: bool = False,
) -> dict:
    if target is not None:
        os.environ["GUMBEL_SOFTMAX_TARGET"] = target
    if "gumbel_softmax" in sys.modules and target is not None:
        raise RuntimeError("the target must be forced before gumbel_softmax is imported")
    import gumbel_softmax as gs

    report = {"target": gs.cpu_target(), "targets": list(gs.cpu_targets())}
    if target is not None and gs.cpu_target() != target:
        report["failures"] = [
            f"target {target} was requested but {gs.cpu_target()} is "
            f"active (supported here: {gs.cpu_targets()})"
        ]
        report["ok"] = False
        return report
    t0 = time.perf_counter()
    if threads <= 0:
        threads = default_threads()
    report["threads"] = threads
    pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        if f32:
            report["f32"] = check_f32(gs._core._noise_f32, chunk_log2, pool, progress)
        if f64:
            report["f64"] = check_f64(gs._core._noise_f64, n_random, chunk_log2, pool, progress)
    finally:
        if pool is not None:
            pool.shutdown()
    report["seconds"] = time.perf_counter() - t0
    report["failures"] = failures_of(report)
    report["ok"] = not report["failures"]
    return report


def summary(report: dict) -> str:
    lines = [
        f"target {report['target']} (supported: {', '.join(report['targets'])}), "
        f"{report.get('threads', 1)} noise threads"
    ]
    if "f32" in report:
        r = report["f32"]
        lines.append(
            f"float32: {r['count']} words in {r['seconds']:.1f} s; g in [{r['min']!r} "
            f"(word {r['min_word']}), {r['max']!r} (word {r['max_word']})]; "
            f"non-finite {r['nonfinite_count']}, decreasing steps {r['decreasing_count']}; "
            f"reference: {r['reference']['checked']} words, max err "
            f"{r['reference']['max_err_eps']:.3f} eps(1+|g|), "
            f"{r['reference']['failures_count']} beyond noise_tol"
        )
        lines.append(f"  sha256 {r['digest']}")
    if "f64" in report:
        for name in ("extremes", "random"):
            r = report["f64"][name]
            lines.append(
                f"float64 {name}: {r['count']} words in {r['seconds']:.1f} s; g in "
                f"[{r['min']!r} (word {r['min_word']}), {r['max']!r} (word {r['max_word']})]; "
                f"non-finite {r['nonfinite_count']}, decreasing steps "
                f"{r['decreasing_count']}; reference: {r['reference']['checked']} words, "
                f"max err {r['reference']['max_err_eps']:.3f} eps(1+|g|), "
                f"{r['reference']['failures_count']} beyond noise_tol"
            )
            lines.append(f"  sha256 {r['digest']}")
    if "seconds" in report:
        lines.append(f"total {report['seconds']:.1f} s")
    lines.append("OK" if report["ok"] else "FAILED:\n  " + "\n  ".join(report["failures"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--target",
        choices=["baseline", "avx2", "avx512"],
        help="force this SIMD target (default: the process's own choice)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the full report as JSON")
    p.add_argument("--no-f32", action="store_true", help="skip the float32 exhaustive walk")
    p.add_argument("--no-f64", action="store_true", help="skip the float64 checks")
    p.add_argument(
        "--f64-random",
        type=int,
        default=10**8,
        metavar="N",
        help="number of random float64 words (default 10**8)",
    )
    p.add_argument(
        "--chunk-log2",
        type=int,
        default=18,
        choices=range(12, 25),
        metavar="N",
        help="float32 chunk of 2**N words (12..24, default 18)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="threads computing the noise (default: the CPUs available, "
        "at most 8; 1: all on the main thread)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    a = p.parse_args(argv)
    report = run(
        a.target,
        f32=not a.no_f32,
        f64=not a.no_f64,
        n_random=a.f64_random,
        chunk_log2=a.chunk_log2,
        threads=a.threads,
        progress=not a.quiet,
    )
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    print(summary(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
