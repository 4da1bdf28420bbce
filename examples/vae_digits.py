"""Categorical VAE on scikit-learn's 8x8 digits, in NumPy with ``gumbel_softmax``.

The categorical variational autoencoder of Jang, Gu and Poole (2016, "Categorical
Reparameterization with Gumbel-Softmax", arXiv:1611.01144, section 4.2), scaled down to
the 1797 bundled 8x8 digit images of ``sklearn.datasets.load_digits`` (no download):

- data: pixel intensities divided by 16, in [0, 1]; a fixed permutation (``--data-seed``)
  splits them into 1500 training and 297 test images;
- encoder: MLP 64 -> 256 (ReLU) -> 200 logits, read as 20 categorical variables with 10
  categories each;
- latent: a Gumbel-Softmax sample of each variable (``gs.gumbel_softmax``) with its
  gradient from ``gs.gumbel_softmax_backward``; relaxed (``soft``) or straight-through
  (``hard``: the decoder sees exact one-hots, the gradient is that of the soft sample);
- decoder: MLP 200 -> 256 (ReLU) -> 64 Bernoulli logits, scored with the binary
  cross-entropy against the [0, 1] intensities;
- loss: the negative ELBO per image, BCE summed over pixels plus the KL divergence of
  each categorical posterior ``softmax(logits)`` from the uniform prior, summed over the
  20 variables, averaged over the batch;
- training: hand-written backpropagation and Adam in NumPy, float32 throughout, with the
  temperature schedule of the paper, ``tau = max(tau_min, tau0 * exp(-r * step))`` per
  optimiser step (``gs.anneal_tau``).

When PyTorch is installed (imported only then; ``--no-torch`` skips it), the same model
is trained again with ``torch.nn.functional.gumbel_softmax``, autograd and
``torch.optim.Adam``, also in float32: the same initial weights (copies of the NumPy
arrays), the same minibatch order, the same temperature at every step and the same
number of epochs. Only the Gumbel noise differs (our Philox stream vs torch's generator).
PyTorch runs on the number of threads our kernels use, so the timings compare like with
like. ``--threads`` (default 1) sets that number for our kernels, NumPy's BLAS and PyTorch
together. One thread is the default because these minibatches are far too small to gain
from more, and because with 2 threads on a 2-core machine the thread teams that spin-wait
between calls (our kernels' OpenMP, OpenBLAS, PyTorch's OpenMP) take the cores from each
other: epochs took 12 to 65 times longer, in both implementations (``--threads 2``; see
``examples/results/vae_digits.md``).  Since then the package shortens libgomp's spin
(docs/user-guide.md, "Threads and SIMD targets"), and ours with ``--threads 2`` takes about 3 times
as long per epoch as with 1 thread, no longer 12 to 65 times; one thread stays faster.

``--estimator st gumbel-rao reinmax --samples 10 100`` trains instead with the one-hot
forward and the gradient estimators of issue 16 (straight-through, Gumbel-Rao with each
K, ReinMax at ``--reinmax-tau``), ours and PyTorch's (``examples/vae_estimators.py``),
and measures the variance of the encoder's gradient at the start, middle and end of each
run (``--variance-draws``); ``examples/results/vae_estimators.md`` has a run.

Run ``python examples/vae_digits.py --help`` for the options. Every epoch prints the mean
training -ELBO over the epoch, the test -ELBO (same noise seed at every evaluation), the
temperature at the end of the epoch and the wall seconds of the epoch's training steps
(evaluation excluded); a summary table of both implementations closes the run.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import gumbel_softmax as gs
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vae_estimators as est_mod  # noqa: E402  (examples/vae_estimators.py)

N_VARS = 20  # categorical latent variables
N_CATS = 10  # categories per variable
N_PIXELS = 64
N_HIDDEN = 256
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4")
DTYPE = np.float32


# --------------------------------------------------------------------------------------
# Data, parameters, schedule


def load_data(n_train=1500, n_test=297, data_seed=0, dtype=DTYPE):
    """Load the 8x8 digits, scaled to [0, 1], split by a fixed permutation.

    Parameters
    ----------
    n_train, n_test : int
        Sizes of the two parts; ``n_train + n_test <= 1797``.
    data_seed : int
        Seed of the permutation (``np.random.default_rng(data_seed)``).
    dtype : numpy dtype
        Of the returned arrays.

    Returns
    -------
    x_train, x_test : ndarray, shape (n, 64)
        C-contiguous pixel intensities / 16.
    """
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float64) / 16.0
    if n_train + n_test > len(x):
        raise ValueError(f"n_train + n_test must be <= {len(x)}, got {n_train + n_test}")
    perm = np.random.default_rng(data_seed).permutation(len(x))
    x = x[perm].astype(dtype)
    return np.ascontiguousarray(x[:n_train]), np.ascontiguousarray(x[n_train : n_train + n_test])


def init_params(rng, dtype=DTYPE):
    """Initial weights: uniform in +-1/sqrt(fan_in) (PyTorch's ``nn.Linear`` rule).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all initial values (drawn in float64, then cast).
    dtype : numpy dtype

    Returns
    -------
    dict of str to ndarray
        ``W1`` (64, 256), ``b1`` (256,), ``W2`` (256, 200), ``b2`` (200,), ``W3`` (200, 256),
        ``b3`` (256,), ``W4`` (256, 64), ``b4`` (64,); ``x @ W + b`` layout.
    """
    sizes = [
        (N_PIXELS, N_HIDDEN),
        (N_HIDDEN, N_VARS * N_CATS),
        (N_VARS * N_CATS, N_HIDDEN),
        (N_HIDDEN, N_PIXELS),
    ]
    params = {}
    for i, (fan_in, fan_out) in enumerate(sizes, start=1):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"W{i}"] = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype)
        params[f"b{i}"] = rng.uniform(-bound, bound, fan_out).astype(dtype)
    return params


def default_anneal_rate(total_steps, tau0=1.0, tau_min=0.5, fraction=0.5):
    """The rate ``r`` at which ``tau0 * exp(-r * step)`` reaches ``tau_min`` after
    ``fraction`` of the ``total_steps`` (the temperature then stays at ``tau_min``)."""
    if tau_min >= tau0:
        return 0.0
    return math.log(tau0 / tau_min) / max(1.0, fraction * total_steps)


def tau_schedule(total_steps, tau0=1.0, tau_min=0.5, rate=None):
    """Temperatures of the optimiser steps ``0 .. total_steps - 1`` (float64 array).

    ``max(tau_min, tau0 * exp(-rate * step))``, Jang et al.'s schedule updated every step
    (``gs.anneal_tau``); ``rate=None`` takes :func:`default_anneal_rate`.
    """
    if rate is None:
        rate = default_anneal_rate(total_steps, tau0, tau_min)
    steps = np.arange(total_steps, dtype=np.int64)
    return np.atleast_1d(gs.anneal_tau(steps, tau0=tau0, rate=rate, min_tau=tau_min))


def batch_orders(n, epochs, seed):
    """One permutation of ``range(n)`` per epoch, from ``np.random.default_rng(seed)``;
    both trainers visit the minibatches in this order."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


# --------------------------------------------------------------------------------------
# The NumPy model: forward, backward, Adam


def _relu(a):
    return np.maximum(a, 0, out=a)


def _log_softmax(a):
    m = a.max(axis=-1, keepdims=True)
    s = a - m
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def encode(params, x):
    """Encoder: returns ``(h1, logits)`` with ``logits`` of shape (B, 20, 10)."""
    h1 = _relu(x @ params["W1"] + params["b1"])
    logits = (h1 @ params["W2"] + params["b2"]).reshape(len(x), N_VARS, N_CATS)
    return h1, logits


def decode(params, z):
    """Decoder: ``z`` of shape (B, 200) to ``(h2, pixel_logits)``, shape (B, 64)."""
    h2 = _relu(z @ params["W3"] + params["b3"])
    return h2, h2 @ params["W4"] + params["b4"]


def bce_with_logits(pixel_logits, x):
    """Binary cross-entropy of Bernoulli logits against targets in [0, 1], summed over
    pixels: ``softplus(l) - x * l``, computed stably. Returns shape (B,)."""
    l = pixel_logits
    return (np.maximum(l, 0) - x * l + np.log1p(np.exp(-np.abs(l)))).sum(axis=-1)


def kl_uniform(logits):
    """KL divergence of ``Categorical(softmax(logits))`` from the uniform prior, summed
    over the latent variables: ``sum q log q + log K``. Returns ``(kl, q, log_q)``,
    ``kl`` of shape (B,)."""
    log_q = _log_softmax(logits)
    q = np.exp(log_q)
    kl = (q * log_q).sum(axis=(-2, -1)) + logits.shape[-2] * math.log(logits.shape[-1])
    return kl, q, log_q


def forward(params, x, tau, hard, rng):
    """The -ELBO of a minibatch and what :func:`backward` needs.

    Parameters
    ----------
    params : dict of ndarray
    x : ndarray, shape (B, 64)
    tau : float
        Temperature.
    hard : bool, str or vae_estimators.Estimator
        The latent layer's estimator: ``False`` (or ``"soft"``) the relaxed sample,
        ``True`` (or ``"st"``) straight-through Gumbel-Softmax (the decoder gets exact
        one-hots), ``"gumbel-rao"`` or ``"reinmax"`` (one-hots too, other gradients;
        ``Estimator("gumbel-rao", samples=K)`` for K draws).
    rng : gs.Philox
        Gumbel noise, as for ``gs.gumbel_softmax`` (advanced by B * 20 rows; Gumbel-Rao's
        backward draws B * 20 * K more).

    Returns
    -------
    loss : float
        Mean over the batch of BCE (summed over pixels) + KL (summed over variables).
    cache : tuple
    """
    est = est_mod.as_estimator(hard)
    h1, logits = encode(params, x)
    y, latent = est_mod.latent_forward(est, logits, tau, rng)
    z = y.reshape(len(x), N_VARS * N_CATS)
    h2, pixel_logits = decode(params, z)
    kl, q, log_q = kl_uniform(logits)
    loss = float(np.mean(bce_with_logits(pixel_logits, x) + kl))
    return loss, (x, h1, q, log_q, est, latent, z, h2, pixel_logits)


def backward(params, cache):
    """Gradients of :func:`forward`'s loss with respect to every parameter.

    The latent layer's gradient is the estimator's (``vae_estimators.latent_backward``):
    ``gs.gumbel_softmax_backward`` of the soft sample for the relaxed sample and for
    straight-through (the decoder's gradient at the one-hot is passed to the logits as
    if it were the gradient at the soft sample), ``gs.gumbel_rao_backward`` or
    ``gs.reinmax_backward`` for the others.
    """
    x, h1, q, log_q, est, latent, z, h2, pixel_logits = cache
    n = len(x)
    grads = {}
    # d/dl of softplus(l) - x l is sigmoid(l) - x; stable sigmoid via tanh
    d_pix = (0.5 * (1.0 + np.tanh(0.5 * pixel_logits)) - x) / n
    grads["W4"] = h2.T @ d_pix
    grads["b4"] = d_pix.sum(axis=0)
    d_h2 = d_pix @ params["W4"].T
    d_h2 *= h2 > 0
    grads["W3"] = z.T @ d_h2
    grads["b3"] = d_h2.sum(axis=0)
    d_z = (d_h2 @ params["W3"].T).reshape(q.shape)
    d_logits = est_mod.latent_backward(est, d_z, latent)
    # KL: d/dl_j sum_k q_k log q_k = q_j (log q_j - sum_k q_k log q_k)
    d_logits += q * (log_q - (q * log_q).sum(axis=-1, keepdims=True)) / n
    d_logits = d_logits.reshape(n, N_VARS * N_CATS)
    grads["W2"] = h1.T @ d_logits
    grads["b2"] = d_logits.sum(axis=0)
    d_h1 = d_logits @ params["W2"].T
    d_h1 *= h1 > 0
    grads["W1"] = x.T @ d_h1
    grads["b1"] = d_h1.sum(axis=0)
    return {k: grads[k].astype(params[k].dtype, copy=False) for k in PARAM_NAMES}


def loss_and_grads(params, x, tau, hard, rng):
    """``(loss, grads)``: :func:`forward` then :func:`backward`."""
    loss, cache = forward(params, x, tau, hard, rng)
    return loss, backward(params, cache)


class Adam:
    """Adam (Kingma and Ba 2015) on a dict of arrays, updated in place.

    The update is written as ``torch.optim.Adam`` computes it (default settings):
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.t = 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params, grads):
        """Apply one update to ``params`` from ``grads``."""
        self.t += 1
        c1 = 1.0 - self.b1**self.t
        c2 = math.sqrt(1.0 - self.b2**self.t)
        for k, p in params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            p -= (self.lr / c1) * m / (np.sqrt(v) / c2 + self.eps)


def evaluate(params, x, tau, hard, seed):
    """-ELBO of ``x`` (mean per image) with the noise of ``gs.Philox(seed)``: the same
    noise whenever it is called with the same seed."""
    return forward(params, x, tau, hard, gs.Philox(seed))[0]


def _new_history(tau0, init_train, init_test):
    return {
        "train": [],
        "test": [],
        "tau": [],
        "seconds": [],
        "eval_tau": tau0,
        "init_train": init_train,
        "init_test": init_test,
    }


def _log_epoch(name, epoch, hist, verbose):
    if verbose:
        print(
            f"{name:>5} epoch {epoch:3d}  train -ELBO {hist['train'][-1]:8.3f}  "
            f"test -ELBO {hist['test'][-1]:8.3f}  tau {hist['tau'][-1]:.3f}  "
            f"{hist['seconds'][-1]:.3f} s",
            flush=True,
        )


def train_numpy(
    params,
    x_train,
    x_test,
    *,
    hard,
    taus,
    orders,
    batch_size=100,
    lr=1e-3,
    noise_seed=0,
    eval_seed=12345,
    verbose=True,
    checkpoint=None,
):
    """Train the VAE in NumPy; ``params`` is updated in place.

    Parameters
    ----------
    params : dict of ndarray
        Initial weights (:func:`init_params`).
    x_train, x_test : ndarray, shape (n, 64)
    hard : bool, str or vae_estimators.Estimator
        The latent layer's estimator (see :func:`forward`); ``True``: straight-through
        Gumbel-Softmax instead of the relaxed sample.
    taus : sequence of float
        Temperature of each optimiser step (:func:`tau_schedule`), at least as many as
        the steps of ``orders``.
    orders : list of ndarray
        One permutation of the training indices per epoch (:func:`batch_orders`).
    batch_size : int
    lr : float
        Adam learning rate.
    noise_seed : int
        Seed of the ``gs.Philox`` stream of the training noise.
    eval_seed : int
        Noise seed of every evaluation.
    verbose : bool
        Print one line per epoch.
    checkpoint : callable, optional
        ``checkpoint(epoch, params, tau)`` before training (epoch 0, ``taus[0]``) and
        after every epoch (at its last temperature), outside the timed steps.

    Returns
    -------
    dict
        ``train`` (mean minibatch -ELBO of each epoch), ``test`` (test -ELBO after each
        epoch, at that epoch's last temperature), ``tau``, ``seconds`` (wall time of each
        epoch's training steps), ``init_train`` and ``init_test`` (-ELBO before training,
        at ``taus[0]``).
    """
    opt = Adam(params, lr=lr)
    rng = gs.Philox(noise_seed)
    hist = _new_history(
        float(taus[0]),
        evaluate(params, x_train, taus[0], hard, eval_seed),
        evaluate(params, x_test, taus[0], hard, eval_seed),
    )
    step = 0
    if checkpoint is not None:
        checkpoint(0, params, float(taus[0]))
    for epoch, order in enumerate(orders, start=1):
        total = 0.0
        t0 = time.perf_counter()
        for start in range(0, len(order), batch_size):
            xb = x_train[order[start : start + batch_size]]
            loss, grads = loss_and_grads(params, xb, float(taus[step]), hard, rng)
            opt.step(params, grads)
            total += loss * len(xb)
            step += 1
        hist["seconds"].append(time.perf_counter() - t0)
        tau = float(taus[step - 1])
        hist["train"].append(total / len(order))
        hist["tau"].append(tau)
        hist["test"].append(evaluate(params, x_test, tau, hard, eval_seed))
        _log_epoch("ours", epoch, hist, verbose)
        if checkpoint is not None:
            checkpoint(epoch, params, tau)
    return hist


# --------------------------------------------------------------------------------------
# The same model in PyTorch


def neg_elbo_torch(p, x, tau, hard, generator=None, use_package=True):
    """The -ELBO of minibatch ``x`` (a tensor) in PyTorch, ``p`` a dict of tensors; the
    latent layer of estimator ``hard`` (as in :func:`forward`) as PyTorch code writes it
    (``vae_estimators.latent_torch``: ``F.gumbel_softmax`` for soft and straight-through,
    the papers' Gumbel-Rao and ReinMax)."""
    import torch
    import torch.nn.functional as F

    est = est_mod.as_estimator(hard)
    h1 = torch.relu(x @ p["W1"] + p["b1"])
    logits = (h1 @ p["W2"] + p["b2"]).reshape(len(x), N_VARS, N_CATS)
    y = est_mod.latent_torch(est, logits, tau, generator, use_package)
    h2 = torch.relu(y.reshape(len(x), N_VARS * N_CATS) @ p["W3"] + p["b3"])
    pix = h2 @ p["W4"] + p["b4"]
    bce = F.binary_cross_entropy_with_logits(pix, x, reduction="none").sum(-1)
    log_q = F.log_softmax(logits, dim=-1)
    kl = (log_q.exp() * log_q).sum((-2, -1)) + N_VARS * math.log(N_CATS)
    return (bce + kl).mean()


def train_torch(
    params,
    x_train,
    x_test,
    *,
    hard,
    taus,
    orders,
    batch_size=100,
    lr=1e-3,
    noise_seed=0,
    eval_seed=12345,
    verbose=True,
    num_threads=None,
    checkpoint=None,
):
    """Train the same VAE in PyTorch (autograd, :func:`neg_elbo_torch`, ``torch.optim.Adam``).

    Parameters are those of :func:`train_numpy`; ``params`` (NumPy arrays) is copied, not
    modified, and the tensors keep its dtype. The training noise comes from
    ``torch.manual_seed(noise_seed)``; each evaluation draws with ``torch.manual_seed
    (eval_seed)`` inside ``torch.random.fork_rng``, leaving the training stream alone.
    ``num_threads`` sets ``torch.set_num_threads`` for the run (restored afterwards);
    ``None`` takes ``gs.get_num_threads()``.  ``checkpoint(epoch, params, tau)`` gets the
    weights as NumPy arrays.

    Returns
    -------
    dict
        As :func:`train_numpy`, plus ``params``: the trained weights as NumPy arrays.
    """
    import torch

    def evaluate_t(p, x, tau):
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(eval_seed)
            return float(neg_elbo_torch(p, x, tau, hard))

    def as_numpy(p):
        return {k: v.detach().numpy().copy() for k, v in p.items()}

    old_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads or gs.get_num_threads())
    try:
        p = {k: torch.tensor(np.array(v), requires_grad=True) for k, v in params.items()}
        xtr, xte = torch.from_numpy(x_train), torch.from_numpy(x_test)
        opt = torch.optim.Adam(list(p.values()), lr=lr)
        torch.manual_seed(noise_seed)
        hist = _new_history(
            float(taus[0]), evaluate_t(p, xtr, float(taus[0])), evaluate_t(p, xte, float(taus[0]))
        )
        if checkpoint is not None:
            with torch.random.fork_rng():
                checkpoint(0, as_numpy(p), float(taus[0]))
        step = 0
        for epoch, order in enumerate(orders, start=1):
            total = 0.0
            t0 = time.perf_counter()
            for start in range(0, len(order), batch_size):
                xb = xtr[torch.from_numpy(order[start : start + batch_size])]
                opt.zero_grad(set_to_none=True)
                loss = neg_elbo_torch(p, xb, float(taus[step]), hard)
                loss.backward()
                opt.step()
                total += loss.detach().item() * len(xb)
                step += 1
            hist["seconds"].append(time.perf_counter() - t0)
            tau = float(taus[step - 1])
            hist["train"].append(total / len(order))
            hist["tau"].append(tau)
            hist["test"].append(evaluate_t(p, xte, tau))
            _log_epoch("torch", epoch, hist, verbose)
            if checkpoint is not None:
                with torch.random.fork_rng():
                    checkpoint(epoch, as_numpy(p), tau)
        hist["params"] = as_numpy(p)
    finally:
        torch.set_num_threads(old_threads)
    return hist


# --------------------------------------------------------------------------------------
# Command line


class thread_limits:
    """Context manager: run our kernels, NumPy's BLAS and (through :func:`train_torch`'s
    default) PyTorch on ``n`` threads.

    ``gs.set_num_threads(n)`` for the kernels (back to OpenMP's setting on exit) and,
    when ``threadpoolctl`` is installed (scikit-learn depends on it), a BLAS limit of ``n``
    for NumPy's matrix products. ``n = 0`` changes nothing.
    """

    def __init__(self, n):
        self.n = n
        self._blas = None

    def __enter__(self):
        if self.n:
            gs.set_num_threads(self.n)
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                pass
            else:
                self._blas = threadpool_limits(self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.n:
            gs.set_num_threads(0)
            if self._blas is not None:
                self._blas.restore_original_limits()
        return False


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(results["modes"])
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for impl, color in (("ours", "C0"), ("torch", "C1")):
            hist = results["modes"][mode].get(impl)
            if hist is None:
                continue
            epochs = np.arange(len(hist["train"]) + 1)  # 0: before training
            label = "gumbel_softmax (NumPy)" if impl == "ours" else "PyTorch"
            ax.plot(
                epochs[1:],
                hist["train"],
                color=color,
                ls="--",
                lw=1,
                label=f"{label}, train (epoch mean)",
            )
            ax.plot(
                epochs,
                [hist["init_test"], *hist["test"]],
                color=color,
                lw=1.5,
                label=f"{label}, test",
            )
        ax.set_title(f"{mode} ({'straight-through' if mode == 'hard' else 'relaxed'})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("-ELBO (nats per image)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Categorical VAE, 8x8 digits, 20 x 10 latent")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _summary_rows(results):
    rows = []
    for mode, res in results["modes"].items():
        ours, tch = res["ours"], res.get("torch")
        row = {
            "mode": mode,
            "ours_test": ours["test"][-1],
            "ours_s_per_epoch": float(np.mean(ours["seconds"])),
        }
        if tch is not None:
            row["torch_test"] = tch["test"][-1]
            row["rel_diff"] = (ours["test"][-1] - tch["test"][-1]) / abs(tch["test"][-1])
            row["torch_s_per_epoch"] = float(np.mean(tch["seconds"]))
            row["speedup"] = row["torch_s_per_epoch"] / row["ours_s_per_epoch"]
        rows.append(row)
    return rows


def _print_summary(rows):
    print("\nfinal test -ELBO (nats per image) and mean training seconds per epoch")
    print(
        f"{'mode':<5} {'ours':>9} {'torch':>9} {'rel diff':>9} {'ours s/ep':>10} "
        f"{'torch s/ep':>10} {'speedup':>8}"
    )
    for r in rows:
        if "torch_test" in r:
            print(
                f"{r['mode']:<5} {r['ours_test']:9.3f} {r['torch_test']:9.3f} "
                f"{r['rel_diff']:+9.2%} {r['ours_s_per_epoch']:10.4f} "
                f"{r['torch_s_per_epoch']:10.4f} {r['speedup']:7.2f}x"
            )
        else:
            print(
                f"{r['mode']:<5} {r['ours_test']:9.3f} {'-':>9} {'-':>9} "
                f"{r['ours_s_per_epoch']:10.4f} {'-':>10} {'-':>8}"
            )


def main(argv=None):
    """Command-line entry point; returns the results dict (also written by ``--json``)."""
    ap = argparse.ArgumentParser(
        description="Categorical VAE (Jang et al. 2016) on sklearn's 8x8 digits: NumPy with "
        "gumbel_softmax, and the same model in PyTorch when it is installed."
    )
    ap.add_argument("--epochs", type=int, default=300, help="training epochs (default 300)")
    ap.add_argument("--batch-size", type=int, default=100, help="minibatch size (default 100)")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights, the batch order and the noise (default 0)",
    )
    ap.add_argument(
        "--data-seed", type=int, default=0, help="seed of the train/test permutation (default 0)"
    )
    ap.add_argument(
        "--mode",
        choices=("soft", "hard", "both"),
        default="both",
        help="relaxed or straight-through samples, or both runs (default both)",
    )
    ap.add_argument("--tau0", type=float, default=1.0, help="initial temperature (default 1)")
    ap.add_argument("--tau-min", type=float, default=0.5, help="final temperature (default 0.5)")
    ap.add_argument(
        "--anneal-rate",
        type=float,
        default=None,
        help="r in tau = max(tau_min, tau0 exp(-r step)); default: tau_min is "
        "reached half-way through the run",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for our kernels, NumPy's BLAS and PyTorch alike (default 1: "
        "a 100 x 200 minibatch gains nothing from more; 0 keeps each "
        "library's own setting and gives PyTorch our kernels' count)",
    )
    ap.add_argument(
        "--estimator",
        nargs="+",
        choices=("st", "gumbel-rao", "reinmax"),
        help="train with these gradient estimators of the one-hot sample instead of "
        "--mode: straight-through Gumbel-Softmax, Gumbel-Rao (GR-MCk, one run per "
        "--samples) or ReinMax; ours and PyTorch's, with the variance table",
    )
    ap.add_argument(
        "--samples",
        nargs="+",
        type=int,
        default=[10],
        help="K of Gumbel-Rao, one run each (default 10)",
    )
    ap.add_argument(
        "--reinmax-tau",
        type=float,
        default=1.0,
        help="ReinMax's temperature, constant (>= 1; default 1)",
    )
    ap.add_argument(
        "--variance-draws",
        type=int,
        default=100,
        help="with --estimator: encoder gradients drawn at fixed weights at the start, "
        "middle and end of each run, for their variance (default 100; 0: none)",
    )
    ap.add_argument(
        "--variance-batch",
        type=int,
        default=100,
        help="the minibatch of the variance: the first N training images (default 100)",
    )
    ap.add_argument(
        "--only",
        choices=("ours", "torch"),
        help="with --estimator: run one implementation only (to split a long run; "
        "--merge joins the JSON files)",
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="print (and with --json save) the tables of earlier --estimator runs' JSON "
        "files together, training nothing",
    )
    ap.add_argument("--no-reinmax-package", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch run")
    ap.add_argument("--json", metavar="PATH", help="write the curves and timings as JSON")
    ap.add_argument("--plot", metavar="PATH", help="save the -ELBO curves (needs matplotlib)")
    ap.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        ap.error("--epochs and --batch-size must be >= 1")
    if args.threads < 0:
        ap.error("--threads must be >= 0")
    if any(k < 1 for k in args.samples) or args.reinmax_tau < 1 or args.variance_draws < 0:
        ap.error("--samples must be >= 1, --reinmax-tau >= 1, --variance-draws >= 0")
    if args.merge:
        return _merge(args.merge, args.json)
    with thread_limits(args.threads):
        return _run_estimators(args) if args.estimator else _run(args)


def _run(args):
    """Train every requested mode with both implementations; print, save and plot."""
    x_train, x_test = load_data(data_seed=args.data_seed)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    rate = args.anneal_rate
    if rate is None:
        rate = default_anneal_rate(total_steps, args.tau0, args.tau_min)
    taus = tau_schedule(total_steps, args.tau0, args.tau_min, rate)
    orders = batch_orders(len(x_train), args.epochs, args.seed + 1)
    init = init_params(np.random.default_rng(args.seed))
    use_torch = not args.no_torch and _torch_available()
    if not args.no_torch and not use_torch:
        print("PyTorch is not installed: skipping the PyTorch run", file=sys.stderr)
    threads = gs.get_num_threads()
    print(
        f"{len(x_train)} training / {len(x_test)} test images; latent {N_VARS} x {N_CATS}; "
        f"{args.epochs} epochs of {steps_per_epoch} steps; float32; tau {args.tau0} -> "
        f"{args.tau_min} (r = {rate:.3g} per step); {threads} thread(s)"
    )

    modes = ("soft", "hard") if args.mode == "both" else (args.mode,)
    results = {
        "config": {
            **vars(args),
            "anneal_rate": rate,
            "threads": threads,
            "dtype": "float32",
            "n_train": len(x_train),
            "n_test": len(x_test),
            "steps_per_epoch": steps_per_epoch,
        },
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gumbel_softmax": gs.__version__,
            "cpu_target": gs.cpu_target(),
        },
        "modes": {},
    }
    common = dict(
        taus=taus,
        orders=orders,
        batch_size=args.batch_size,
        lr=args.lr,
        noise_seed=args.seed,
        verbose=not args.quiet,
    )
    for mode in modes:
        hard = mode == "hard"
        print(f"\n== {mode} ==")
        res = {
            "ours": train_numpy(
                {k: v.copy() for k, v in init.items()}, x_train, x_test, hard=hard, **common
            )
        }
        if use_torch:
            import torch

            results["machine"]["torch"] = torch.__version__
            res["torch"] = train_torch(init, x_train, x_test, hard=hard, **common)
            del res["torch"]["params"]
        results["modes"][mode] = res

    rows = _summary_rows(results)
    results["summary"] = rows
    _print_summary(rows)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plot:
        _plot(results, args.plot)
        print(f"wrote {args.plot}")
    return results


# --------------------------------------------------------------------------------------
# --estimator: straight-through, Gumbel-Rao and ReinMax, ours and PyTorch's


def _estimator_runs(args):
    """(Estimator, taus) of each run: ST and Gumbel-Rao on the annealed schedule,
    ReinMax at its constant temperature (>= 1)."""
    runs = []
    for name in dict.fromkeys(args.estimator):
        if name == "gumbel-rao":
            runs += [est_mod.Estimator(name, k) for k in dict.fromkeys(args.samples)]
        else:
            runs.append(est_mod.Estimator(name))
    return runs


def _variance_recorder(out, x_var, est, draws, epochs, impl, use_package, cross=None):
    """A checkpoint callback: at epochs 0, epochs // 2 and epochs, the variance of
    ``est``'s encoder gradient (``impl`` ours or torch) at the current weights; with
    ``cross`` (a list of estimators) also ours for each of those, into ``out``."""
    this = sys.modules[__name__]
    marks = est_mod.checkpoint_epochs(epochs)

    def record(epoch, params, tau):
        if epoch not in marks or not draws:
            return
        if impl == "ours":
            g = est_mod.encoder_gradients(this, params, x_var, tau, est, draws)
        else:
            g = est_mod.encoder_gradients_torch(
                this, params, x_var, tau, est, draws, 2024, use_package
            )
        out.setdefault("variance", []).append(
            {"epoch": epoch, "tau": tau, **est_mod.variance_summary(g)}
        )
        for other in cross or ():
            # at these weights, the other estimators' variance (ours), each at its own tau
            t = 1.0 if other.name == "reinmax" else tau
            v = est_mod.variance_summary(
                est_mod.encoder_gradients(this, params, x_var, t, other, draws)
            )
            out.setdefault("cross", {}).setdefault(other.label, []).append(
                {"epoch": epoch, "tau": t, **v}
            )

    return record


def _run_estimators(args):
    """Train every requested estimator with both implementations; variance at three
    checkpoints; print the tables, save JSON."""
    x_train, x_test = load_data(data_seed=args.data_seed)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    total_steps = args.epochs * steps_per_epoch
    rate = args.anneal_rate
    if rate is None:
        rate = default_anneal_rate(total_steps, args.tau0, args.tau_min)
    annealed = tau_schedule(total_steps, args.tau0, args.tau_min, rate)
    orders = batch_orders(len(x_train), args.epochs, args.seed + 1)
    init = init_params(np.random.default_rng(args.seed))
    x_var = x_train[: args.variance_batch]
    use_torch = not args.no_torch and _torch_available()
    use_package = not args.no_reinmax_package and est_mod.reinmax_package() is not None
    runs = _estimator_runs(args)
    print(
        f"{len(x_train)} training / {len(x_test)} test images; latent {N_VARS} x {N_CATS}; "
        f"{args.epochs} epochs of {steps_per_epoch} steps; float32; {gs.get_num_threads()} "
        f"thread(s); estimators {[e.label for e in runs]}; variance over "
        f"{args.variance_draws} draws on {len(x_var)} images"
    )
    results = {
        "config": {**vars(args), "anneal_rate": rate, "threads": gs.get_num_threads()},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "gumbel_softmax": gs.__version__,
            "cpu_target": gs.cpu_target(),
            "reinmax_package": use_package,
        },
        "estimators": {},
    }
    cross = [e for e in runs]
    for est in runs:
        taus = np.full(total_steps, args.reinmax_tau) if est.name == "reinmax" else annealed
        common = dict(
            hard=est,
            taus=taus,
            orders=orders,
            batch_size=args.batch_size,
            lr=args.lr,
            noise_seed=args.seed,
            verbose=not args.quiet,
        )
        print(f"\n== {est.label} ==")
        res = {"ours": {}, "torch": {}}
        rec = _variance_recorder(
            res["ours"],
            x_var,
            est,
            args.variance_draws,
            args.epochs,
            "ours",
            use_package,
            cross if est.name == "st" else None,
        )
        if args.only != "torch":
            params = {k: v.copy() for k, v in init.items()}
            res["ours"].update(train_numpy(params, x_train, x_test, checkpoint=rec, **common))
        if use_torch and args.only != "ours":
            import torch

            results["machine"]["torch"] = torch.__version__
            rec = _variance_recorder(
                res["torch"], x_var, est, args.variance_draws, args.epochs, "torch", use_package
            )
            res["torch"].update(train_torch(init, x_train, x_test, checkpoint=rec, **common))
            del res["torch"]["params"]
        results["estimators"][est.label] = res
    results["tables"] = _estimator_tables(results)
    print("\n" + results["tables"])
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {args.json}")
    return results


def _merge(paths, out=None):
    """The results of several ``--estimator`` runs' JSON files as one (a later file's
    implementation of an estimator completes an earlier one's); prints the tables."""
    merged = None
    for path in paths:
        res = json.loads(Path(path).read_text())
        if merged is None:
            merged = res
            continue
        for label, impls in res["estimators"].items():
            mine = merged["estimators"].setdefault(label, {"ours": {}, "torch": {}})
            for impl, hist in impls.items():
                if hist:
                    mine[impl] = hist
        merged["machine"].update(res["machine"])
    merged["tables"] = _estimator_tables(merged)
    print(merged["tables"])
    if out:
        Path(out).write_text(json.dumps(merged, indent=1) + "\n")
        print(f"wrote {out}")
    return merged


def _estimator_tables(results):
    """Markdown: the -ELBO / time table, the variance table (each run's own weights) and
    the variance of every estimator at the straight-through run's weights."""
    lines = [
        "| estimator | ours test -ELBO | torch test -ELBO | ours s/epoch | torch s/epoch |",
        "|---|---:|---:|---:|---:|",
    ]
    var_lines = [
        "| estimator | impl | start | middle | end |",
        "|---|---|---:|---:|---:|",
    ]
    cross = None
    for label, res in results["estimators"].items():
        cells = []
        for impl in ("ours", "torch"):
            h = res.get(impl) or {}
            cells.append(f"{h['test'][-1]:.3f}" if h.get("test") else "-")
        for impl in ("ours", "torch"):
            h = res.get(impl) or {}
            cells.append(f"{np.mean(h['seconds']):.4f}" if h.get("seconds") else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for impl in ("ours", "torch"):
            v = (res.get(impl) or {}).get("variance")
            if v:
                vals = " | ".join(f"{c['total_variance']:.4g}" for c in v)
                var_lines.append(f"| {label} | {impl} | {vals} |")
        cross = cross or res["ours"].get("cross")
    out = "\n".join(lines) + "\n\n" + "\n".join(var_lines)
    if cross:
        cl = ["| estimator (ours) | start | middle | end |", "|---|---:|---:|---:|"]
        for label, v in cross.items():
            cl.append(f"| {label} | " + " | ".join(f"{c['total_variance']:.4g}" for c in v) + " |")
        out += "\n\n" + "\n".join(cl)
    return out


if __name__ == "__main__":
    main()
