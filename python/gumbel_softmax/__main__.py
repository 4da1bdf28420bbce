"""``python -m gumbel_softmax``: a short demo on built-in logits.

Shows samples and the sample mean at several temperatures next to softmax(logits)
(the temperature experiment of Jang et al. 2016, Figure 1, as a text table), then times
our forward pass against the same computation composed from NumPy operations (and
PyTorch's ``F.gumbel_softmax`` and a jitted JAX composition when those are installed).
``--plot out.png`` draws the figure (matplotlib).  The benchmark suite is not part of the
installed package: from a source checkout, ``python bench/run.py``.
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


TAUS = (0.1, 0.5, 1.0, 5.0)


def temperature_samples(n_draws=100_000, taus=TAUS, seed=0):
    """{tau: (n_draws, 5) float32 samples} on the demo logits, from one Philox stream."""
    logits = np.log(DEMO_PROBS).astype(np.float32)
    rng = gs.Philox(seed)
    batch = np.broadcast_to(logits, (n_draws, logits.size))
    return {tau: gs.gumbel_softmax(batch, tau=tau, rng=rng) for tau in taus}


def plot_temperatures(path, n_draws=100_000, taus=TAUS, seed=0):
    """Jang et al. Figure 1 for the demo logits: the expected sample (top row, next to
    softmax(logits)) and the density of each category's sample value (bottom row)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'gumbel-softmax[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = temperature_samples(n_draws, taus, seed)
    k = DEMO_PROBS.size
    cats = np.arange(1, k + 1)
    colors = plt.get_cmap("viridis")(np.linspace(0.1, 0.9, k))
    fig, axes = plt.subplots(
        2, len(taus) + 1, figsize=(3.0 * (len(taus) + 1), 5.5), constrained_layout=True
    )
    axes[0, 0].bar(cats, DEMO_PROBS, color=colors)
    axes[0, 0].set_title("softmax(logits)")
    axes[1, 0].axis("off")
    axes[1, 0].text(
        0.0,
        0.5,
        f"{n_draws:,} samples per tau\n"
        f"y = softmax((logits + g) / tau)\n"
        f"g ~ Gumbel(0, 1), gs.Philox({seed})",
        va="center",
        fontsize=9,
    )
    bins = np.linspace(0.0, 1.0, 41)
    for j, tau in enumerate(taus, start=1):
        y = samples[tau]
        axes[0, j].bar(cats, y.mean(axis=0), color=colors)
        axes[0, j].set_title(f"E[y], tau = {tau:g}")
        for c in range(k):
            axes[1, j].hist(
                y[:, c],
                bins=bins,
                density=True,
                histtype="step",
                color=colors[c],
                label=f"y[{c + 1}]",
            )
        axes[1, j].set_yscale("log")
        axes[1, j].set_title(f"density of y[i], tau = {tau:g}")
        axes[1, j].set_xlabel("sample value")
    for ax in axes[0]:
        ax.set_ylim(0, 1)
        ax.set_xticks(cats)
        ax.set_xlabel("category")
    axes[1, 1].legend(fontsize=7)
    fig.suptitle("Gumbel-Softmax samples at several temperatures (cf. Jang et al. 2016, Fig. 1)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def temperature_table(n_draws=100_000, taus=TAUS, seed=0):
    """Lines of text: one sample and the sample mean per tau, next to softmax(logits),
    then the frequencies of hard one-hot draws (the rows after those of the taus)."""
    logits = np.log(DEMO_PROBS).astype(np.float32)
    lines = [f"{'':>22}{'categories':^34}", f"{'softmax(logits)':>22}  {_fmt(_softmax(logits))}"]
    for tau, y in temperature_samples(n_draws, taus, seed).items():
        lines.append(f"{f'tau = {tau:g}  one sample':>22}  {_fmt(y[0])}")
        lines.append(f"{f'mean of {n_draws}':>22}  {_fmt(y.mean(axis=0))}")
    batch = np.broadcast_to(logits, (n_draws, logits.size))
    hard = gs.gumbel_softmax(batch, hard=True, rng=gs.Philox(seed, counter=len(taus) * n_draws))
    lines.append(f"{'hard one-hot freq.':>22}  {_fmt(hard.mean(axis=0))}")
    return lines


def _numpy_gumbel_softmax(x, tau, gen):
    g = gen.gumbel(size=x.shape).astype(x.dtype, copy=False)
    return _softmax((x + g) / tau)


def _jax_candidate(x):
    """A jitted JAX composition with a fresh key per call, or None without JAX."""
    try:
        import jax
    except ImportError:
        return None

    @jax.jit
    def sample(key, x):
        key, sub = jax.random.split(key)
        g = jax.random.gumbel(sub, x.shape, x.dtype)
        return key, jax.nn.softmax((x + g) / 0.5, axis=-1)

    state = {"key": jax.random.PRNGKey(1)}
    xj = jax.numpy.asarray(x)

    def call():
        state["key"], y = sample(state["key"], xj)
        y.block_until_ready()

    return call


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
    jax_fn = _jax_candidate(x)
    if jax_fn is not None:
        candidates.append(("JAX jit(softmax(x + gumbel))", jax_fn))
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
    lines = [
        f"forward, float32 {shape}, tau = 0.5, {gs.get_num_threads()} thread(s), median of {repeats}:"
    ]
    for name, t in results:
        lines.append(
            f"  {name:<32} {t * 1e3:8.2f} ms  {n / t / 1e6:8.1f} M elements/s  x{t / ours:5.2f}"
        )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m gumbel_softmax",
        description="Demo of gumbel_softmax: samples at several temperatures on built-in\n"
        "logits (Jang et al. 2016, Figure 1, as a table), then a quick timing of the\n"
        "forward pass against the NumPy composition (and PyTorch and JAX when\n"
        "installed), in well under 30 seconds. The benchmark suite is in the source\n"
        "tree: python bench/run.py --help.",
        epilog="examples:\n"
        "  python -m gumbel_softmax                    the demo\n"
        "  python -m gumbel_softmax --plot tau.png     also draw the figure (needs matplotlib)\n"
        "  python bench/run.py --quick                 the benchmark suite (source checkout)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=100_000,
        help="samples per temperature for the table (default 100000)",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the timing")
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        help="also draw the temperature figure (expected sample and sample "
        "densities per tau) to this file; needs matplotlib",
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["demo"]:  # the former explicit command name
        argv = argv[1:]
    if argv[:1] == ["bench"]:
        sys.exit(
            "The benchmark suite is not part of the installed package; from a source "
            "checkout run: python bench/run.py (--help for its options)"
        )
    args = parser.parse_args(argv)

    print(f"gumbel_softmax {gs.__version__}: y = softmax((logits + g) / tau), g ~ Gumbel(0, 1)\n")
    print("Samples on built-in logits, log of", DEMO_PROBS.tolist())
    for line in temperature_table(args.draws):
        print(line)
    print("Small tau: samples are near one-hot and their mean matches softmax(logits);")
    print("large tau: samples are near uniform.\n")
    if args.plot:
        print(f"figure written to {plot_temperatures(args.plot, args.draws)}\n")
    if not args.no_timing:
        for line in timing_lines():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
