"""Paired A/B timings of our own variants, robust to a noisy machine.

``bench/run.py`` times each case in its own block of repeats, so on a shared VM a burst
of load from elsewhere can land on one case and not the other.  Here the two calls of a
pair run alternately, block after block, and the ratio is taken within each block, so
slow drifts cancel; the median over the blocks is reported with its interquartile range.

    python bench/ab.py                      # the pairs below at (4096, 1000), float32
    python bench/ab.py --shape 16384x4096 --blocks 15

Pairs: tau=1 vs tau=0.5 (soft), hard vs soft, 2 threads vs 1 (soft), backward vs
np.copyto; and for issue 5: categorical vs hard, per-row tau vs scalar tau, mask= vs
none, float16 vs float32, recomputing backward vs stored backward (forward included on
both sides).  Ratios are "speed of A / speed of B" (> 1: A is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import gumbel_softmax as gs


def _per_call(fn, loops):
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops


def paired(a, b, blocks, loops, setup_a=None, setup_b=None):
    """Median and quartiles over blocks of time(b) / time(a) (> 1: a is faster)."""
    ratios = []
    for _ in range(blocks):
        if setup_a:
            setup_a()
        ta = _per_call(a, loops)
        if setup_b:
            setup_b()
        tb = _per_call(b, loops)
        ratios.append(tb / ta)
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q[0], q[2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="4096x1000")
    ap.add_argument("--blocks", type=int, default=21)
    ap.add_argument("--seconds", type=float, default=0.15, help="per block and side")
    args = ap.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split("x"))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = np.empty_like(x)
    grad = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    rng = gs.Philox(1)
    threads = gs.get_num_threads()

    def soft(tau):
        return lambda: gs.gumbel_softmax(x, tau, rng=rng, out=out)

    hard = lambda: gs.gumbel_softmax(x, 0.5, hard=True, rng=rng, out=out)  # noqa: E731
    y_soft = gs.gumbel_softmax(x, 0.5, rng=1)
    bwd = lambda: gs.gumbel_softmax_backward(grad, y_soft, 0.5, out=out)  # noqa: E731
    copy = lambda: np.copyto(out, x)  # noqa: E731
    one = lambda: gs.set_num_threads(1)  # noqa: E731
    all_ = lambda: gs.set_num_threads(threads)  # noqa: E731

    t = _per_call(soft(0.5), 3)
    loops = max(1, int(args.seconds / t))
    print(f"gumbel_softmax A/B, float32 {shape}, {threads} threads, target "
          f"{gs.cpu_target()}, {args.blocks} blocks of {loops} calls per side")
    taus = np.full(shape[0], 0.5)
    mask = np.ones(shape[-1], dtype=bool)
    x16 = x.astype(np.float16)
    out16 = np.empty_like(x16)

    def stored():
        y, ys = gs.gumbel_softmax(x, 0.5, hard=True, rng=1, out=out, return_soft=True)
        return gs.gumbel_softmax_backward(grad, ys, 0.5)

    def recomputed():
        gs.gumbel_softmax(x, 0.5, hard=True, rng=1, out=out)
        return gs.gumbel_softmax_backward(grad, logits=x, tau=0.5, rng=1)

    rows = [
        ("tau=1 vs tau=0.5 (soft)", soft(1.0), soft(0.5), None, None),
        ("hard vs soft (tau=0.5)", hard, soft(0.5), None, None),
        (f"{threads} threads vs 1 (soft)", soft(0.5), soft(0.5), all_, one),
        ("categorical vs hard", lambda: gs.categorical(x, rng=rng), hard, None, None),
        ("per-row tau vs scalar (soft)",
         lambda: gs.gumbel_softmax(x, taus, rng=rng, out=out), soft(0.5), None, None),
        ("mask= (K,) vs none (soft)",
         lambda: gs.gumbel_softmax(x, 0.5, rng=rng, out=out, mask=mask), soft(0.5), None, None),
        ("float16 vs float32 (soft)",
         lambda: gs.gumbel_softmax(x16, 0.5, rng=rng, out=out16), soft(0.5), None, None),
        ("recompute vs stored (fwd+bwd)", recomputed, stored, None, None),
    ]
    try:
        for name, a, b, sa, sb in rows:
            med, lo, hi = paired(a, b, args.blocks, loops, sa, sb)
            print(f"  {name:28s} {med:5.2f}x  (quartiles {lo:.2f} - {hi:.2f})")
    finally:
        gs.set_num_threads(threads)
    tb = _per_call(bwd, 3)
    med, lo, hi = paired(bwd, copy, args.blocks, max(1, int(args.seconds / tb)))
    print(f"  {'backward vs np.copyto':28s} {med:5.2f}x  (quartiles {lo:.2f} - {hi:.2f}; "
          f"throughput of backward / np.copyto)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
