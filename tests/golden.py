#!/usr/bin/env python
"""Golden digests: the sha256 of the output bytes of every public function, pinned per
stream version (``gs.STREAM_VERSION``) in ``tests/data/golden_digests.json``.

    python tests/golden.py            # compute on every target and thread count, compare
    python tests/golden.py --save     # and write the digests of the current version

The stability contract (docs/contract.md, "Stream version"): the same ``STREAM_VERSION``
gives the same output bits on every SIMD target and thread count.  A change of any bit
bumps the version, with a CHANGELOG.md entry, and the pin is regenerated with ``--save``
(which refuses to change a digest already pinned for the current version, unless
``--force``: a change of bits under the same version is what the pin exists to stop).
Correctness is tested elsewhere, against references; this pins stability only.

Only bits the library computes are pinned: outputs that pass through NumPy's or the
platform's floating-point functions (``anneal_tau``, the tau gradient of the torch
wrapper, the logits gradient of its ``log_gumbel_softmax`` (NumPy's exp),
``concrete_log_prob``'s ``(K - 1) log(tau)`` at a tau whose log libms may round
differently) are left out, as they may differ between machines while our bits do not.

Groups of sections: ``numpy`` (every function of the NumPy API, the layer, the noise,
``philox4x32``; float32, float64, float16) and ``bfloat16`` (with ml_dtypes) are
computed in one interpreter per SIMD target (``GUMBEL_SOFTMAX_TARGET``), each with 1 and
then 2 threads; ``torch``, ``jax`` and ``dask`` (the wrappers, thin layers over the same
kernels) are computed in the calling interpreter, with 1 and 2 threads, when they
import.  Inputs are made by integer hashing (no NumPy random stream, whose algorithms
NumPy may change), so that only our bits decide the digests.

The case list is compact (tests/test_golden.py runs it in seconds) but covers every row
path of the kernels: short rows (64, 10), long rows (3, 5000), strided tiles (axis 0 of
a reversed, sliced view), a row split over the threads (1, 70000); scalar, unit, per-row
and huge tau; a mask; -inf logits, an all -inf (NaN) row, a huge logit; int seeds, a
Philox near the 2**32 counter wrap, one Philox across calls, a NumPy Generator.
``scripts/output_digest.py`` is the broader (minutes-long) check of the same kind for
refactors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PINNED = HERE / "data" / "golden_digests.json"
REGENERATE = "python tests/golden.py --save"
THREADS = (1, 2)
CHILD_GROUPS = ("numpy", "bfloat16")
WRAPPER_GROUPS = ("torch", "jax", "dask")
GROUPS = CHILD_GROUPS + WRAPPER_GROUPS


# ----------------------------------------------------------------------------- digests
def _bytes(a) -> bytes:
    a = np.asarray(a)
    return a.dtype.str.encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes()


class Digest:
    """Sections of sha256 digests, each over the arrays added to it in order."""

    def __init__(self) -> None:
        self._h: dict[str, hashlib._Hash] = {}

    def add(self, section: str, *arrays) -> None:
        h = self._h.setdefault(section, hashlib.sha256())
        for a in arrays:
            if isinstance(a, (tuple, list)):
                self.add(section, *a)
            else:
                h.update(_bytes(a))

    def result(self) -> dict[str, str]:
        return {k: v.hexdigest() for k, v in sorted(self._h.items())}


# ------------------------------------------------------------------------------ inputs
def values(shape, seed: int, lo: float = -4.0, hi: float = 4.0) -> np.ndarray:
    """float64 values in [lo, hi) from an integer hash of the index (splitmix64)."""
    n = int(np.prod(shape))
    z = np.arange(n, dtype=np.uint64) + np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (lo + (hi - lo) * u).reshape(shape)


def dtypes(group: str) -> list:
    if group == "bfloat16":
        import ml_dtypes

        return [ml_dtypes.bfloat16]
    return [np.float32, np.float64, np.float16]


def logit_cases(dt) -> list[tuple[str, np.ndarray, int]]:
    """(name, logits, axis): the row paths of the kernels and special values."""
    short = values((64, 10), 1)
    short[0, 1:] = -np.inf  # one drawable category
    short[1, :] = -np.inf  # no drawable category: a NaN row (-1 for categorical)
    short[2, 3] = -np.inf
    short[3, 5] = 40.0  # a huge logit
    long = values((3, 5000), 2)
    long[0, 100] = -np.inf
    base = values((40, 24), 3)
    strided = base.astype(dt)[::2, ::-1]  # non-contiguous, negative stride; axis 0: tiles
    out = [("short", short.astype(dt), -1), ("long", long.astype(dt), -1)]
    out.append(("strided_axis0", strided, 0))
    if np.dtype(dt).itemsize >= 4:  # a row split over the threads with 2 threads
        out.append(("split", values((1, 70000), 4).astype(dt), -1))
    return out


def taus(x, axis) -> list[tuple[str, object]]:
    rows = x.shape[1 - axis if axis == 0 else 0]
    per_row = np.where(np.arange(rows) % 2 == 0, 1.0, 0.3)
    per_row = per_row[None, :] if axis == 0 else per_row[:, None]
    return [("0.5", 0.5), ("1", 1.0), ("rows", per_row), ("huge", 1e46), ("tiny", 1e-4)]


# --------------------------------------------------------------------------- the cases
def numpy_cases(d: Digest, group: str) -> None:
    """Every function of the NumPy API on every dtype of the group."""
    import gumbel_softmax as gs

    for dt in dtypes(group):
        tag = np.dtype(dt).name
        for name, x, axis in logit_cases(dt):
            sec = f"{tag}/{name}"
            n = 0
            w = values(x.shape, 11).astype(dt)
            mask = (np.arange(x.size).reshape(x.shape) % 3) != 1
            mask[(slice(None), 0) if axis == -1 else (0, slice(None))] = True
            k = min(3, x.shape[axis])

            def P(seed):
                return gs.Philox(seed)

            for tname, tau in taus(x, axis):
                n += 1
                s_ = f"{sec}/tau_{tname}"
                y = gs.gumbel_softmax(x, tau, axis=axis, rng=P(n))
                h, s = gs.gumbel_softmax(x, tau, hard=True, return_soft=True, axis=axis, rng=P(n))
                d.add(f"gumbel_softmax/{s_}", y)
                d.add(f"gumbel_softmax_hard/{s_}", h, s)
                d.add(
                    f"log_gumbel_softmax/{s_}", gs.log_gumbel_softmax(x, tau, axis=axis, rng=P(n))
                )
                d.add(
                    f"gumbel_softmax_backward/{s_}",
                    gs.gumbel_softmax_backward(w, s, tau, axis=axis),
                )
                d.add(
                    f"gumbel_softmax_backward_recompute/{s_}",
                    gs.gumbel_softmax_backward(w, tau=tau, axis=axis, logits=x, rng=P(n)),
                )
                rk = gs.relaxed_top_k(x, k, tau, hard=True, return_soft=True, axis=axis, rng=P(n))
                d.add(f"relaxed_top_k/{s_}", rk, gs.relaxed_top_k(x, k, tau, axis=axis, rng=P(n)))
                d.add(
                    f"relaxed_top_k_backward/{s_}",
                    gs.relaxed_top_k_backward(w, x, k, tau, axis=axis, rng=P(n)),
                )
                rh, rs = gs.relaxed_bernoulli(x, tau, hard=True, return_soft=True, rng=P(n))
                d.add(f"relaxed_bernoulli/{s_}", rh, rs)
                d.add(f"relaxed_bernoulli_backward/{s_}", gs.relaxed_bernoulli_backward(w, rs, tau))
                if tname in ("0.5", "1"):
                    # concrete_log_prob adds (K - 1) log(tau) computed by NumPy's log (whose
                    # bits may depend on the machine): only at taus whose log every libm
                    # rounds alike (0 and -ln 2); the log-space input is our own output
                    ls = gs.log_gumbel_softmax(x, tau, axis=axis, rng=P(n))
                    with np.errstate(all="ignore"):
                        d.add(f"concrete_log_prob/{s_}", gs.concrete_log_prob(s, x, tau, axis=axis))
                        d.add(
                            f"concrete_log_prob_log_space/{s_}",
                            gs.concrete_log_prob(ls, x, tau, axis=axis, log_space=True),
                        )
            d.add(f"categorical/{sec}", gs.categorical(x, axis=axis, rng=P(1)))
            d.add(f"top_k/{sec}", gs.top_k(x, k, axis=axis, rng=P(1)))
            # conditional_gumbel: finite logits (-inf becomes -30), an index from categorical
            cx = np.where(np.isfinite(x), x, np.asarray(-30.0, dt)).astype(dt)
            ci = gs.categorical(cx, axis=axis, rng=P(2))
            d.add(
                f"conditional_gumbel/{sec}", ci, gs.conditional_gumbel(cx, ci, axis=axis, rng=P(3))
            )
            # the estimators: y_hard the one-hot of ci (x's -inf and NaN rows for ReinMax)
            yh = np.zeros_like(cx)
            np.put_along_axis(yh, np.expand_dims(ci, axis), 1, axis)
            for tname, tau in taus(x, axis):
                d.add(
                    f"gumbel_rao_backward/{sec}/tau_{tname}",
                    gs.gumbel_rao_backward(w, cx, yh, tau, samples=3, axis=axis, rng=P(5)),
                )
            hx = gs.gumbel_softmax(x, hard=True, axis=axis, rng=P(6))
            for tname, tau in (("1", 1.0), ("1.5", 1.5), ("huge", 1e46)):
                d.add(
                    f"reinmax_backward/{sec}/tau_{tname}",
                    gs.reinmax_backward(w, x, hx, tau, axis=axis),
                    gs.reinmax_backward(w, x, hx, tau, axis=axis, grad_p=w[::-1].copy()),
                )
            mtag = f"{sec}/mask"
            d.add(
                f"gumbel_softmax/{mtag}", gs.gumbel_softmax(x, 0.7, axis=axis, mask=mask, rng=P(4))
            )
            d.add(
                f"log_gumbel_softmax/{mtag}",
                gs.log_gumbel_softmax(x, 0.7, axis=axis, mask=mask, rng=P(4)),
            )
            d.add(f"categorical/{mtag}", gs.categorical(x, axis=axis, mask=mask, rng=P(4)))
            d.add(f"top_k/{mtag}", gs.top_k(x, k, axis=axis, mask=mask, rng=P(4)))
            d.add(
                f"relaxed_top_k/{mtag}",
                gs.relaxed_top_k(x, k, 0.7, axis=axis, mask=mask, rng=P(4)),
                gs.relaxed_top_k_backward(w, x, k, 0.7, axis=axis, mask=mask, rng=P(4)),
            )
            _, ms = gs.gumbel_softmax(x, 0.7, axis=axis, mask=mask, rng=P(4), return_soft=True)
            d.add(
                f"gumbel_softmax_backward_recompute/{mtag}",
                gs.gumbel_softmax_backward(w, tau=0.7, axis=axis, logits=x, rng=P(4), mask=mask),
                gs.gumbel_softmax_backward(w, ms, 0.7, axis=axis),
            )
        for shape in ((64, 10), (3, 5000), (2, 3, 33)):
            d.add(f"gumbel/{tag}", gs.gumbel(shape, dtype=dt, rng=gs.Philox(5)))
            d.add(f"logistic/{tag}", gs.logistic(shape, dtype=dt, rng=gs.Philox(5)))
    if group != "numpy":
        return
    # the ways of passing rng (float32, short rows)
    x = values((64, 10), 1).astype(np.float32)
    d.add(
        "rng/int_seed", gs.gumbel_softmax(x, 0.5, rng=7), gs.gumbel_softmax(x, 0.5, rng=2**64 - 1)
    )
    d.add("rng/counter_near_wrap", gs.gumbel_softmax(x, 0.5, rng=gs.Philox(7, counter=2**32 - 3)))
    r = gs.Philox(8, counter=5)
    seq = [gs.gumbel_softmax(x, 0.5, rng=r), gs.categorical(x, rng=r), gs.gumbel((3, 7), rng=r)]
    d.add("rng/one_philox_across_calls", *seq, np.array(r.counter, dtype=np.uint64))
    gen = np.random.default_rng(9)
    d.add("rng/numpy_generator", gs.gumbel_softmax(x, 0.5, rng=gen), gs.categorical(x, rng=gen))
    # 3-d, middle axis; int logits
    x3 = values((4, 6, 5), 12).astype(np.float32)
    d.add("gumbel_softmax/float32/3d_axis1", gs.gumbel_softmax(x3, 0.5, axis=1, rng=gs.Philox(3)))
    d.add("top_k/float32/3d_axis1", gs.top_k(x3, 2, axis=1, rng=gs.Philox(3)))
    d.add("relaxed_top_k/float32/3d_axis1", gs.relaxed_top_k(x3, 6, 0.5, axis=1, rng=gs.Philox(3)))
    xw = values((3, 50), 15).astype(np.float32)  # k > 32: the other selection path
    d.add("relaxed_top_k/float32/k40_hard", gs.relaxed_top_k(xw, 40, hard=True, rng=gs.Philox(3)))
    d.add(
        "gumbel_softmax/int_logits",
        gs.gumbel_softmax(np.arange(12).reshape(3, 4), rng=gs.Philox(1)),
    )
    # Philox words, the layer
    c = np.arange(64, dtype=np.uint32).reshape(16, 4)
    d.add("philox4x32", gs.philox4x32(c, np.array([1, 2], dtype=np.uint32)))
    c64 = np.array([[0, 0, 2**32 - 1, 2**32 - 1], [1, 2, 3, 4]], dtype=np.uint64)
    d.add("philox4x32", gs.philox4x32(c64, np.array([2**32 - 1, 0], dtype=np.uint64)))
    xl = values((6, 10), 13).astype(np.float32)
    for hard in (False, True):
        for recompute in (False, True):
            layer = gs.GumbelSoftmax(tau=0.7, hard=hard, rng=gs.Philox(9), recompute=recompute)
            y1 = layer(xl)
            y2 = layer(xl)  # the layer's generator advances
            d.add(
                f"GumbelSoftmax/hard_{hard}/recompute_{recompute}",
                y1,
                y2,
                layer.backward(values(y2.shape, 14)),
            )
    # (anneal_tau is left out: it is Python/NumPy arithmetic, math.exp / np.exp, whose
    # bits are the platform's, not the stream's)


def torch_cases(d: Digest) -> None:
    import gumbel_softmax.torch as gst
    import torch

    for dt in (torch.float32, torch.float64, torch.float16):
        for shape, name in (((64, 10), "short"), ((3, 5000), "long")):
            x = torch.from_numpy(values(shape, 3)).to(dt).requires_grad_()
            w = torch.from_numpy(values(shape, 4)).to(dt)
            tag = f"{str(dt).split('.')[-1]}/{name}"
            for hard in (False, True):
                for tau in (0.5, 1.0):
                    g = torch.Generator().manual_seed(4)
                    y = gst.gumbel_softmax(x, tau=tau, hard=hard, generator=g)
                    (gx,) = torch.autograd.grad(y, x, grad_outputs=w)
                    d.add(f"torch/{tag}/hard_{hard}/tau_{tau}", y.detach().numpy(), gx.numpy())
            tau_t = torch.from_numpy(values((shape[0], 1), 5, 0.2, 2.0)).to(dt).requires_grad_()
            y = gst.gumbel_softmax(x, tau=tau_t, generator=torch.Generator().manual_seed(5))
            # (the gradient of tau is left out: it is summed by NumPy and torch)
            (gx,) = torch.autograd.grad(y, x, grad_outputs=w)
            d.add(f"torch/{tag}/tau_tensor", y.detach().numpy(), gx.numpy())
    # bfloat16 (no .numpy(): its bits), log_gumbel_softmax, categorical, top_k, mask=
    for shape, name in (((64, 10), "short"), ((3, 5000), "long")):
        x = torch.from_numpy(values(shape, 3)).requires_grad_()
        w = torch.from_numpy(values(shape, 4))
        mask = torch.from_numpy(values(shape, 6) > -1.5)
        xb = x.detach().to(torch.bfloat16).requires_grad_()
        y = gst.gumbel_softmax(xb, tau=0.5, hard=True, generator=6)
        (gx,) = torch.autograd.grad(y, xb, grad_outputs=w.to(torch.bfloat16))
        bits = [t.detach().view(torch.int16).numpy() for t in (y, gx)]
        d.add(f"torch/bfloat16/{name}/hard_True/tau_0.5", *bits)
        y = gst.log_gumbel_softmax(x, tau=0.5, generator=7, mask=mask)
        # (its gradient is left out: the wrapper computes it with NumPy's exp, whose last
        # bit depends on the CPU NumPy dispatches to: AVX-512 and AVX2 machines differ)
        d.add(f"torch/float64/{name}/log_mask", y.detach().numpy())
        idx = gst.categorical(x.detach(), generator=8, mask=mask)
        d.add(f"torch/float64/{name}/categorical_mask", idx.numpy())
        d.add(f"torch/float64/{name}/top_k_3", gst.top_k(x.detach(), 3, generator=9).numpy())
        tau_e = torch.from_numpy(values(shape[-1:], 10, 0.2, 2.0)).requires_grad_()
        y = gst.relaxed_bernoulli(x, tau_e, hard=True, generator=10)
        (gx,) = torch.autograd.grad(y, x, grad_outputs=w)
        d.add(f"torch/float64/{name}/relaxed_bernoulli_hard", y.detach().numpy(), gx.numpy())
        for v, dt in ((x, "float64"), (x.detach().float().requires_grad_(), "float32")):
            for hard in (False, True):
                y = gst.relaxed_top_k(v, 3, 0.5, hard=hard, generator=11)
                (gx,) = torch.autograd.grad(y, v, grad_outputs=w.to(v.dtype))
                key = f"torch/{dt}/{name}/relaxed_top_k_3_hard_{hard}"
                d.add(key, y.detach().numpy(), gx.numpy())
    _torch_estimator_cases(d)


def _torch_estimator_cases(d: Digest) -> None:
    """reinmax and gumbel_rao: the hard sample and the estimators' gradients, for each
    kind of generator (gumbel_rao's conditional draws are fixed by it); reinmax's p0 is
    torch.softmax (torch's arithmetic: left out, its gradient is in)."""
    import gumbel_softmax as gs
    import gumbel_softmax.torch as gst
    import torch

    gens = {
        "seed": lambda: 12,
        "philox": lambda: gs.Philox(12, counter=2**32 - 3),
        "torch": lambda: torch.Generator().manual_seed(12),
    }
    for shape, name in (((64, 10), "short"), ((3, 5000), "long")):
        x64 = torch.from_numpy(values(shape, 3))
        w64, v64 = torch.from_numpy(values(shape, 4)), torch.from_numpy(values(shape, 5))
        for dt in (torch.float64, torch.float32, torch.float16):
            x, w, v = x64.to(dt).requires_grad_(), w64.to(dt), v64.to(dt)
            tag = f"torch/{str(dt).split('.')[-1]}/{name}"
            for gen, make in gens.items() if dt == torch.float64 else [("seed", gens["seed"])]:
                for dim in (-1, 0):
                    y, p = gst.reinmax(x, 1.5, dim=dim, generator=make())
                    (gx,) = torch.autograd.grad((y, p), x, grad_outputs=(w, v))
                    d.add(f"{tag}/reinmax/{gen}/dim_{dim}", y.detach().numpy(), gx.numpy())
                    y = gst.gumbel_rao(x, 0.5, samples=3, dim=dim, generator=make())
                    (gx,) = torch.autograd.grad(y, x, grad_outputs=w)
                    d.add(f"{tag}/gumbel_rao_3/{gen}/dim_{dim}", y.detach().numpy(), gx.numpy())


def jax_cases(d: Digest) -> None:
    import gumbel_softmax.jax as gsj
    import jax

    x = jax.numpy.asarray(values((9, 33), 3).astype(np.float32))
    w = jax.numpy.asarray(values((9, 33), 4).astype(np.float32))
    for hard in (False, True):
        for tau in (0.5, 1.0):
            y = gsj.gumbel_softmax(5, x, tau, hard=hard)
            gx = jax.grad(lambda z, h=hard, t=tau: (gsj.gumbel_softmax(5, z, t, hard=h) * w).sum())(
                x
            )
            d.add(f"jax/float32/hard_{hard}/tau_{tau}", np.asarray(y), np.asarray(gx))
    key = jax.random.key(3) if hasattr(jax.random, "key") else jax.random.PRNGKey(3)
    d.add(
        "jax/float32/key", np.asarray(gsj.gumbel_softmax(key, x, 0.5)), np.uint64(gsj.seed_of(key))
    )
    # top_k, relaxed_bernoulli, relaxed_top_k (callbacks; concrete tau: the tau gradients
    # pass through NumPy's log or JAX ops and are left out)
    d.add("jax/top_k", np.asarray(gsj.top_k(5, x, 4)), np.asarray(gsj.top_k(5, x, 2, axis=0)))
    for hard in (False, True):
        rb = gsj.relaxed_bernoulli(5, x, 0.5, hard)
        gb = jax.grad(lambda z, h=hard: (gsj.relaxed_bernoulli(5, z, 0.5, h) * w).sum())(x)
        rt = gsj.relaxed_top_k(5, x, 3, 0.5, hard)
        gt = jax.grad(lambda z, h=hard: (gsj.relaxed_top_k(5, z, 3, 0.5, h) * w).sum())(x)
        d.add(f"jax/relaxed_bernoulli/hard_{hard}", np.asarray(rb), np.asarray(gb))
        d.add(f"jax/relaxed_top_k/hard_{hard}", np.asarray(rt), np.asarray(gt))


def dask_cases(d: Digest) -> None:
    import dask.array as da
    import gumbel_softmax as gs
    import gumbel_softmax.dask as gsd

    def run(a):
        return a.compute(scheduler="sync")

    x = da.from_array(values((40, 33), 3).astype(np.float32), chunks=(16, 33))
    w = da.from_array(values((40, 33), 4).astype(np.float32), chunks=(16, 33))
    P = gs.Philox
    y, s = gsd.gumbel_softmax(x, 0.5, hard=True, return_soft=True, rng=P(2))
    d.add("dask/gumbel_softmax", run(gsd.gumbel_softmax(x, 0.5, rng=P(2))), run(y), run(s))
    d.add("dask/gumbel_softmax_backward", run(gsd.gumbel_softmax_backward(w, s, 0.5)))
    d.add(
        "dask/gumbel_softmax_backward_recompute",
        run(gsd.gumbel_softmax_backward(w, tau=0.5, logits=x, rng=P(2))),
    )
    d.add("dask/log_gumbel_softmax", run(gsd.log_gumbel_softmax(x, 0.5, rng=P(2))))
    d.add("dask/categorical", run(gsd.categorical(x, rng=P(2))))
    d.add("dask/top_k", run(gsd.top_k(x, 3, rng=P(2))))
    rh, rs = gsd.relaxed_bernoulli(x, 0.5, hard=True, return_soft=True, rng=P(2))
    d.add(
        "dask/relaxed_bernoulli", run(rh), run(rs), run(gsd.relaxed_bernoulli_backward(w, rs, 0.5))
    )
    th, ts = gsd.relaxed_top_k(x, 4, 0.5, hard=True, return_soft=True, rng=P(2))
    d.add("dask/relaxed_top_k", run(gsd.relaxed_top_k(x, 4, 0.5, rng=P(2))), run(th), run(ts))
    d.add("dask/gumbel", run(gsd.gumbel((40, 33), chunks=(16, 33), rng=P(2))))
    d.add("dask/logistic", run(gsd.logistic((40, 33), chunks=(16, 33), rng=P(2))))


# ----------------------------------------------------------------------------- running
def available(group: str) -> str | None:
    """None when the group can run here, else the reason it cannot."""
    import importlib.util

    need = {"bfloat16": "ml_dtypes", "torch": "torch", "jax": "jax", "dask": "dask"}.get(group)
    if need and importlib.util.find_spec(need) is None:
        return f"{need} is not installed"
    if group == "dask" and importlib.util.find_spec("dask.array") is None:
        return "dask.array is not installed"
    return None


def compute(groups) -> dict:
    """{threads: {group: {section: sha256} or {"skipped": reason}}} in this interpreter."""
    import gumbel_softmax as gs

    before = gs.get_num_threads()
    out: dict = {}
    try:
        for nt in THREADS:
            gs.set_num_threads(nt)
            res = out[str(nt)] = {}
            for group in groups:
                why = available(group)
                if why:
                    res[group] = {"skipped": why}
                    continue
                d = Digest()
                if group in CHILD_GROUPS:
                    numpy_cases(d, group)
                else:
                    {"torch": torch_cases, "jax": jax_cases, "dask": dask_cases}[group](d)
                res[group] = d.result()
    finally:
        gs.set_num_threads(before)
    return out


def compute_on_target(target: str) -> dict:
    """compute(CHILD_GROUPS) in a fresh interpreter with GUMBEL_SOFTMAX_TARGET=target."""
    env = {k: v for k, v in os.environ.items() if k != "GUMBEL_SOFTMAX_TARGET"}
    env["GUMBEL_SOFTMAX_TARGET"] = target
    paths = [p for p in sys.path if p]
    env["PYTHONPATH"] = os.pathsep.join(
        paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    r = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode:
        raise RuntimeError(f"golden digests on {target} failed:\n{r.stdout}\n{r.stderr}")
    got = json.loads(r.stdout.strip().splitlines()[-1])
    if got["target"] != target:
        raise RuntimeError(f"asked for target {target}, the child ran {got['target']}")
    return got["digests"]


def compute_all() -> dict:
    """{config: {group: digests}}, config = "<target>/<n> threads", for every supported
    target (the child groups) and this interpreter's target (the wrapper groups)."""
    import gumbel_softmax as gs

    configs = {}
    for t in gs.cpu_targets():
        for nt, groups in compute_on_target(t).items():
            configs[f"{t}/{nt} threads"] = groups
    for nt, groups in compute(WRAPPER_GROUPS).items():
        configs.setdefault(f"{gs.cpu_target()}/{nt} threads", {}).update(groups)
    return configs


def load_pinned(path: Path = PINNED) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def differences(got: dict, want: dict) -> list[str]:
    """Sections whose digest differs, or that one side lacks."""
    return [s for s in sorted(set(got) | set(want)) if got.get(s) != want.get(s)]


def policy_message(version: int) -> str:
    return (
        f"The output bits changed under STREAM_VERSION = {version}. If the change is "
        "intended: bump STREAM_VERSION (python/gumbel_softmax/__init__.py), add a "
        "CHANGELOG.md entry for the new version saying what changed and why, and "
        f"regenerate the pin with `{REGENERATE}`. If it is not intended, it is a bug: "
        "the same version must give the same bits on every target and thread count "
        "(docs/contract.md, 'Stream version')."
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--save", action="store_true", help="write the pin of the current version")
    p.add_argument("--force", action="store_true", help="with --save: overwrite changed digests")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        import gumbel_softmax as gs

        print(json.dumps({"target": gs.cpu_target(), "digests": compute(CHILD_GROUPS)}))
        return 0
    import gumbel_softmax as gs

    configs = compute_all()
    merged: dict[str, dict[str, str]] = {}
    status = 0
    for cfg, groups in configs.items():
        for group, dig in groups.items():
            if "skipped" in dig:
                print(f"{cfg} {group}: skipped ({dig['skipped']})")
                continue
            if group not in merged:
                merged[group] = dig
            elif dig != merged[group]:
                print(
                    f"{cfg} {group}: differs from the other configurations in {differences(dig, merged[group])[:10]}"
                )
                status = 1
    if status:
        print("targets or thread counts disagree: nothing saved")
        return status
    ver = gs.STREAM_VERSION
    pinned = load_pinned() if PINNED.exists() else {"stream_version": ver, "groups": {}}
    same_version = pinned.get("stream_version") == ver
    for group, dig in sorted(merged.items()):
        want = pinned["groups"].get(group, {}) if same_version else {}
        changed = [s for s in differences(dig, want) if s in dig and s in want]
        added = [s for s in dig if s not in want]
        removed = [s for s in want if s not in dig]
        print(
            f"{group}: {len(dig)} sections; {len(changed)} changed, {len(added)} new, {len(removed)} gone"
            + (
                f" (changed: {', '.join(changed[:8])}{', ...' if len(changed) > 8 else ''})"
                if changed
                else ""
            )
        )
        if changed:
            status = 1
    if not a.save:
        if status:
            print(policy_message(ver))
        return status
    if status and not a.force:
        print(
            f"not saved: digests pinned for STREAM_VERSION = {ver} would change. {policy_message(ver)}"
        )
        return 1
    keep = pinned["groups"] if same_version else {}
    groups = {g: keep[g] for g in keep if g not in merged}  # groups that could not run here
    groups.update(merged)
    out = {
        "stream_version": ver,
        "regenerate": REGENERATE,
        "note": "sha256 of the output bytes of every public function (tests/golden.py); "
        "the same on every SIMD target and thread count",
        "groups": {g: groups[g] for g in sorted(groups)},
    }
    PINNED.parent.mkdir(parents=True, exist_ok=True)
    with open(PINNED, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=False)
        f.write("\n")
    kept = sorted(set(groups) - set(merged))
    print(f"saved {PINNED} (stream version {ver})" + (f"; kept the pinned {kept}" if kept else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
