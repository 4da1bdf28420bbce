"""``python -m gumbel_softmax``: a short demo on built-in logits.

Shows samples and the sample mean at several temperatures next to softmax(logits)
(the temperature experiment of Jang et al. 2016, Figure 1, as a text table), then times
our forward pass against the same computation composed from NumPy operations.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import gumbel_softmax as gs

# Built-in demo logits: a 5-category distribution with one dominant category.
DEMO_PROBS = np.array([0.05, 0.10, 0.15, 0.25, 0.45])


def _softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _fmt(row):
    return " ".join(f"{v:5.3f}" for v in row)


def temperature_table(n_draws=100_000, taus=(0.1, 0.5, 1.0, 5.0), seed=0):
    """Lines of text: one sample and the sample mean per tau, next to softmax(logits)."""
    logits = np.log(DEMO_PROBS).astype(np.float32)
    lines = [f"{'':>22}{'categories':^34}", f"{'softmax(logits)':>22}  {_fmt(_softmax(logits))}"]
    rng = gs.Philox(seed)
    batch = np.broadcast_to(logits, (n_draws, logits.size))
    for tau in taus:
        y = gs.gumbel_softmax(batch, tau=tau, rng=rng)
        lines.append(f"{'tau = %g  one sample' % tau:>22}  {_fmt(y[0])}")
        lines.append(f"{'mean of %d' % n_draws:>22}  {_fmt(y.mean(axis=0))}")
    hard = gs.gumbel_softmax(batch, hard=True, rng=rng)
    lines.append(f"{'hard one-hot freq.':>22}  {_fmt(hard.mean(axis=0))}")
    return lines


def _numpy_gumbel_softmax(x, tau, gen):
    g = gen.gumbel(size=x.shape).astype(x.dtype, copy=False)
    return _softmax((x + g) / tau)


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def timing_lines(shape=(1024, 1000), repeats=7, progress=True):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    gen = np.random.default_rng(1)
    rng = gs.Philox(1)
    candidates = [
        ("gumbel_softmax (this library)", lambda: gs.gumbel_softmax(x, 0.5, rng=rng)),
        ("NumPy composition", lambda: _numpy_gumbel_softmax(x, 0.5, gen)),
    ]
    try:
        import torch
        import torch.nn.functional as F

        xt = torch.from_numpy(x)
        candidates.append(("torch F.gumbel_softmax", lambda: F.gumbel_softmax(xt, tau=0.5)))
    except ImportError:
        pass
    results = []
    for i, (name, fn) in enumerate(candidates):
        if progress:
            print(f"\r  timing {i + 1}/{len(candidates)}: {name:<32}", end="", file=sys.stderr)
            sys.stderr.flush()
        fn()  # warm up
        results.append((name, _median_time(fn, repeats)))
    if progress:
        print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
    n = x.size
    ours = results[0][1]
    lines = [f"forward, float32 {shape}, tau = 0.5, {gs.get_num_threads()} thread(s), median of {repeats}:"]
    for name, t in results:
        lines.append(f"  {name:<32} {t * 1e3:8.2f} ms  {n / t / 1e6:8.1f} M elements/s  x{t / ours:5.2f}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m gumbel_softmax",
        description="Demo of gumbel_softmax: samples at several temperatures on built-in "
        "logits (Jang et al. 2016, Figure 1, as a table), then a quick timing of the "
        "forward pass against the NumPy composition (and PyTorch when installed). "
        "`bench` runs the benchmark suite instead.",
    )
    parser.add_argument("command", nargs="?", default="demo", choices=["demo", "bench"],
                        help="demo (default) or bench: the benchmark suite against NumPy, "
                        "PyTorch and JAX (see `python -m gumbel_softmax bench --help`)")
    parser.add_argument("--draws", type=int, default=100_000,
                        help="samples per temperature for the table (default 100000)")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        from . import _bench

        return _bench.main(argv[1:])
    args = parser.parse_args(argv)

    print(f"gumbel_softmax {gs.__version__}: y = softmax((logits + g) / tau), g ~ Gumbel(0, 1)\n")
    print("Samples on built-in logits, log of", DEMO_PROBS.tolist())
    for line in temperature_table(args.draws):
        print(line)
    print("Small tau: samples are near one-hot and their mean matches softmax(logits);")
    print("large tau: samples are near uniform.\n")
    if not args.no_timing:
        for line in timing_lines():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
