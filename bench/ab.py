"""Paired A/B timings of our own variants, robust to a noisy machine.

``bench/run.py`` times each case in its own block of repeats, so on a shared VM a burst
of load from elsewhere can land on one case and not the other.  Here the two calls of a
pair run alternately, block after block, and the ratio is taken within each block, so
slow drifts cancel; the median over the blocks is reported with its interquartile range.

    python bench/ab.py                      # the pairs below at (4096, 1000), float32
    python bench/ab.py --shape 16384x4096 --blocks 15
    python bench/ab.py --small              # the small-call goals (issue 15), vs np.exp;
                                            # and gs.gumbel vs NumPy's noise

Pairs: tau=1 vs tau=0.5 (soft), hard vs soft, 2 threads vs 1 (soft), backward vs
np.copyto; and for the other samplers: categorical vs hard, per-row tau vs scalar tau, mask= vs
none, float16 vs float32, recomputing backward vs stored backward (forward included on
both sides); tau=0.1 vs 0.5 for the soft forward and the backward (subnormal results).  Ratios are "speed of A / speed of B" (> 1: A is faster).

Two builds: ``--against DIR`` pairs each call of this build (A) with the same call of
the package installed in DIR (B), for example another commit installed with
``pip install --no-deps --target DIR .``; both run in this process, alternately.

    python bench/ab.py --against /tmp/main-build
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import gumbel_softmax as gs
import numpy as np


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


def small(args):
    """--small: issue 15's small-call goals, each paired with one np.exp on the same
    array (float32): a (64, 10) soft forward (allocating its result) within 2x np.exp,
    gs.categorical at (64, 10) within 1.5x, and a (1, 10) soft forward in at most 1.5 us
    (median per call over the blocks)."""
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    x1 = x[:1].copy()
    rng = gs.Philox(1)
    loops = max(1, int(args.seconds / _per_call(lambda: np.exp(x), 1000)))
    print(
        f"small calls, float32, target {gs.cpu_target()}, {gs.get_num_threads()} threads, "
        f"{args.blocks} blocks of {loops} calls per side; ratio = time of gs / time of np.exp"
    )
    for name, fn, goal in [
        ("gumbel_softmax (64, 10), tau 0.5", lambda: gs.gumbel_softmax(x, 0.5, rng=rng), 2.0),
        ("categorical (64, 10)", lambda: gs.categorical(x, rng=rng), 1.5),
    ]:
        ratio, lo, hi = paired(lambda: np.exp(x), fn, args.blocks, loops)
        met = "met" if ratio <= goal else "NOT met"
        print(
            f"  {name:34s} {ratio:5.2f}x np.exp (quartiles {lo:.2f} - {hi:.2f}); goal <= {goal}x: {met}"
        )
    # the noise alone (no goal of issue 15): gs.gumbel against NumPy's, float64
    # Generator.gumbel and the float32 in-place composition -log(-log(U))
    g = np.random.default_rng(0)
    u = np.empty((64, 10), np.float32)

    def np_gumbel32():  # (its log(0) hole: U = 0 gives +inf noise, silenced here)
        g.random(dtype=np.float32, out=u)
        with np.errstate(divide="ignore"):
            np.log(u, out=u)
        np.negative(u, out=u)
        np.log(u, out=u)
        return np.negative(u, out=u)

    for name, peer in [
        ("Generator.gumbel (float64)", lambda: g.gumbel(size=(64, 10))),
        ("float32 in place", np_gumbel32),
    ]:
        ratio, lo, hi = paired(peer, lambda: gs.gumbel((64, 10), rng=rng), args.blocks, loops)
        print(
            f"  {'gumbel (64, 10) vs ' + name:34s} {ratio:5.2f}x its time "
            f"(quartiles {lo:.2f} - {hi:.2f})"
        )
    # the other functions' small calls (no goals): time of the call / time of np.exp
    g32 = np.random.default_rng(1).standard_normal((64, 10)).astype(np.float32)
    ys = gs.gumbel_softmax(x, 0.5, rng=1)
    index = gs.categorical(x, rng=2)
    for name, fn in [
        ("relaxed_bernoulli", lambda: gs.relaxed_bernoulli(x, 0.5, rng=rng)),
        ("relaxed_bernoulli_backward", lambda: gs.relaxed_bernoulli_backward(g32, ys, 0.5)),
        ("concrete_log_prob", lambda: gs.concrete_log_prob(ys, x, 0.5)),
        ("conditional_gumbel", lambda: gs.conditional_gumbel(x, index, rng=rng)),
        ("gumbel_softmax_backward", lambda: gs.gumbel_softmax_backward(g32, ys, 0.5)),
        ("top_k, k = 3", lambda: gs.top_k(x, 3, rng=rng)),
    ]:
        ratio, lo, hi = paired(lambda: np.exp(x), fn, args.blocks, loops)
        print(f"  {name + ' (64, 10)':34s} {ratio:5.2f}x np.exp (quartiles {lo:.2f} - {hi:.2f})")
    one = lambda: gs.gumbel_softmax(x1, 0.5, rng=rng)  # noqa: E731
    times, ratios = [], []
    for _ in range(args.blocks):
        te = _per_call(lambda: np.exp(x1), loops)
        times.append(_per_call(one, loops))
        ratios.append(times[-1] / te)
    us = statistics.median(times) * 1e6
    met = "met" if us <= 1.5 else "NOT met"
    print(
        f"  {'gumbel_softmax (1, 10), tau 0.5':34s} {us:5.2f} us per call "
        f"({statistics.median(ratios):.2f}x np.exp); goal <= 1.5 us: {met}"
    )
    return 0


def against_cases(shape):
    """The calls --against compares, on this process's gumbel_softmax."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x64 = x.astype(np.float64)
    grad = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y_soft = gs.gumbel_softmax(x, 0.5, rng=1)
    y_small = gs.gumbel_softmax(x, 0.1, rng=1)  # tau 0.1: a fifth of it subnormal
    y_hard = gs.gumbel_softmax(x, 0.5, hard=True, rng=1)
    taus = np.full(shape[0], 0.5)
    index = gs.categorical(x, rng=2)
    mask = np.ones(shape[-1], dtype=bool)
    rng = gs.Philox(1)
    x16 = x.astype(np.float16)
    out, out64, out16 = np.empty_like(x), np.empty_like(x64), np.empty_like(x16)
    cases = {
        "soft-tau0.5": lambda: gs.gumbel_softmax(x, 0.5, rng=rng, out=out),
        "soft-tau1": lambda: gs.gumbel_softmax(x, 1.0, rng=rng, out=out),
        "soft-tau0.1": lambda: gs.gumbel_softmax(x, 0.1, rng=rng, out=out),
        "soft-tau0.5-float64": lambda: gs.gumbel_softmax(x64, 0.5, rng=rng, out=out64),
        "soft-tau0.5-float16": lambda: gs.gumbel_softmax(x16, 0.5, rng=rng, out=out16),
        "soft-tau1-float16": lambda: gs.gumbel_softmax(x16, 1.0, rng=rng, out=out16),
        "hard-float16": lambda: gs.gumbel_softmax(x16, 0.5, hard=True, rng=rng, out=out16),
        "hard": lambda: gs.gumbel_softmax(x, 0.5, hard=True, rng=rng, out=out),
        "per-row-tau": lambda: gs.gumbel_softmax(x, taus, rng=rng, out=out),
        "mask": lambda: gs.gumbel_softmax(x, 0.5, rng=rng, out=out, mask=mask),
        "log_gumbel_softmax": lambda: gs.log_gumbel_softmax(x, 0.5, rng=rng, out=out),
        "backward": lambda: gs.gumbel_softmax_backward(grad, y_soft, 0.5, out=out),
        "backward-tau0.1": lambda: gs.gumbel_softmax_backward(grad, y_small, 0.1, out=out),
        "backward-recompute": lambda: gs.gumbel_softmax_backward(
            grad, logits=x, tau=0.5, rng=1, out=out
        ),
        "backward-recompute-tau1": lambda: gs.gumbel_softmax_backward(
            grad, logits=x, tau=1.0, rng=1, out=out
        ),
        "categorical": lambda: gs.categorical(x, rng=rng),
        "top_k": lambda: gs.top_k(x, 3, rng=rng),
        "conditional_gumbel": lambda: gs.conditional_gumbel(x, index, rng=rng),
        "relaxed_top_k-tau0.5": lambda: gs.relaxed_top_k(x, 3, 0.5, rng=rng),
        "relaxed_top_k-tau0.1": lambda: gs.relaxed_top_k(x, 3, 0.1, rng=rng),
        "relaxed_top_k_backward": lambda: gs.relaxed_top_k_backward(
            grad, x, 3, 0.5, rng=1, out=out
        ),
        "gumbel_rao": lambda: gs.gumbel_rao_backward(
            grad, x, y_hard, 0.5, samples=10, rng=rng, out=out
        ),
        "gumbel_rao-tau1": lambda: gs.gumbel_rao_backward(
            grad, x, y_hard, 1.0, samples=10, rng=rng, out=out
        ),
        "relaxed_bernoulli-tau0.1": lambda: gs.relaxed_bernoulli(5 * x, 0.1, rng=rng, out=out),
        "relaxed_bernoulli": lambda: gs.relaxed_bernoulli(x, 0.5, rng=rng, out=out),
        "relaxed_bernoulli_backward": lambda: gs.relaxed_bernoulli_backward(
            grad, y_soft, 0.5, out=out
        ),
        "concrete_log_prob": lambda: gs.concrete_log_prob(y_soft, x, 0.5),
        "reinmax-tau1.5": lambda: gs.reinmax_backward(grad, x, y_hard, 1.5, out=out),
        "reinmax-tau1": lambda: gs.reinmax_backward(grad, x, y_hard, 1.0, out=out),
    }
    try:
        import ml_dtypes
    except ImportError:
        return cases
    xb = x.astype(ml_dtypes.bfloat16)
    outb = np.empty_like(xb)
    cases["soft-tau0.5-bfloat16"] = lambda: gs.gumbel_softmax(xb, 0.5, rng=rng, out=outb)
    return cases


def worker(shape):
    """--worker: reads "case loops" lines, answers the seconds per call."""
    cases = against_cases(shape)
    print("READY", gs.cpu_target(), gs.__file__, flush=True)
    for line in sys.stdin:
        name, loops = line.split()
        print(repr(_per_call(cases[name], int(loops))), flush=True)
    return 0


class Worker:
    """A --worker subprocess; with directory, on the package installed there (run with
    -S, so that no .pth hook, an editable install's included, can supply another copy)."""

    def __init__(self, shape_arg, directory=None):
        cmd = [sys.executable, __file__, "--worker", "--shape", shape_arg]
        env = dict(os.environ)
        if directory:
            cmd.insert(1, "-S")
            env["PYTHONPATH"] = os.pathsep.join([directory] + [p for p in sys.path if p])
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        line = ""
        while not line.startswith("READY "):  # skip what an editable install's rebuild says
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"--worker failed: {' '.join(cmd)}")
        _, self.target, self.path = line.split(maxsplit=2)
        self.path = self.path.strip()

    def __call__(self, name, loops):
        self.proc.stdin.write(f"{name} {loops}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def against(args):
    """This build (A) against the one installed in args.against (B), alternately block by
    block, each in its own process (the same inputs and calls)."""
    a, b = Worker(args.shape), Worker(args.shape, args.against)
    try:
        names = list(against_cases((2, 16)))
        if args.only:
            names = [n for n in names if any(w == n for w in args.only.split(","))]
        print(
            f"A: {a.path} ({a.target})\nB: {b.path} ({b.target})\nfloat32 {args.shape}, "
            f"{gs.get_num_threads()} threads, {args.blocks} blocks; ratio = speed of A / "
            f"speed of B (> 1: A faster), median (quartiles); per-call medians"
        )
        for name in names:
            loops = max(1, int(args.seconds / a(name, 2)))
            b(name, 2)
            ratios, ta, tb = [], [], []
            for _ in range(args.blocks):
                ta.append(a(name, loops))
                tb.append(b(name, loops))
                ratios.append(tb[-1] / ta[-1])
            q = statistics.quantiles(ratios, n=4)
            print(
                f"  {name:28s} {statistics.median(ratios):6.3f}x ({q[0]:.3f} - {q[2]:.3f})"
                f"   A {statistics.median(ta) * 1e3:8.3f} ms   B {statistics.median(tb) * 1e3:8.3f} ms"
            )
    finally:
        a.close()
        b.close()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="4096x1000")
    ap.add_argument("--blocks", type=int, default=21)
    ap.add_argument("--seconds", type=float, default=0.15, help="per block and side")
    ap.add_argument(
        "--against", metavar="DIR", help="pair this build with the gumbel_softmax installed in DIR"
    )
    ap.add_argument(
        "--only",
        metavar="NAMES",
        help="with --against: only these comma-separated cases (the keys of against_cases: "
        "soft-tau0.5, hard, backward-recompute, top_k, ...)",
    )
    ap.add_argument(
        "--small",
        action="store_true",
        help="the small-call goals of issue 15: (64, 10) and (1, 10) calls against np.exp",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split("x"))
    if args.worker:
        return worker(shape)
    if args.against:
        return against(args)
    if args.small:
        return small(args)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = np.empty_like(x)
    grad = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    rng = gs.Philox(1)
    threads = gs.get_num_threads()

    def soft(tau):
        return lambda: gs.gumbel_softmax(x, tau, rng=rng, out=out)

    hard = lambda: gs.gumbel_softmax(x, 0.5, hard=True, rng=rng, out=out)  # noqa: E731
    y_soft = gs.gumbel_softmax(x, 0.5, rng=1)
    y_small = gs.gumbel_softmax(x, 0.1, rng=1)
    bwd = lambda: gs.gumbel_softmax_backward(grad, y_soft, 0.5, out=out)  # noqa: E731
    copy = lambda: np.copyto(out, x)  # noqa: E731
    one = lambda: gs.set_num_threads(1)  # noqa: E731
    all_ = lambda: gs.set_num_threads(threads)  # noqa: E731

    t = _per_call(soft(0.5), 3)
    loops = max(1, int(args.seconds / t))
    print(
        f"gumbel_softmax A/B, float32 {shape}, {threads} threads, target "
        f"{gs.cpu_target()}, {args.blocks} blocks of {loops} calls per side"
    )
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
        (
            "per-row tau vs scalar (soft)",
            lambda: gs.gumbel_softmax(x, taus, rng=rng, out=out),
            soft(0.5),
            None,
            None,
        ),
        (
            "mask= (K,) vs none (soft)",
            lambda: gs.gumbel_softmax(x, 0.5, rng=rng, out=out, mask=mask),
            soft(0.5),
            None,
            None,
        ),
        (
            "float16 vs float32 (soft)",
            lambda: gs.gumbel_softmax(x16, 0.5, rng=rng, out=out16),
            soft(0.5),
            None,
            None,
        ),
        ("recompute vs stored (fwd+bwd)", recomputed, stored, None, None),
        # small temperatures put about a fifth of the exps below the smallest normal
        ("tau=0.1 vs tau=0.5 (soft)", soft(0.1), soft(0.5), None, None),
        (
            "backward: y of tau=0.1 vs 0.5",
            lambda: gs.gumbel_softmax_backward(grad, y_small, 0.1, out=out),
            bwd,
            None,
            None,
        ),
    ]
    try:
        for name, a, b, sa, sb in rows:
            med, lo, hi = paired(a, b, args.blocks, loops, sa, sb)
            print(f"  {name:28s} {med:5.2f}x  (quartiles {lo:.2f} - {hi:.2f})")
    finally:
        gs.set_num_threads(threads)
    tb = _per_call(bwd, 3)
    med, lo, hi = paired(bwd, copy, args.blocks, max(1, int(args.seconds / tb)))
    print(
        f"  {'backward vs np.copyto':28s} {med:5.2f}x  (quartiles {lo:.2f} - {hi:.2f}; "
        f"throughput of backward / np.copyto)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
