"""A digest of the raw output bytes of every public function, for refactors.

Usage::

    python scripts/output_digest.py            # every supported target, one line each
    python scripts/output_digest.py --save F   # also write {target: {section: sha256}} to F
    python scripts/output_digest.py --check F  # exit 1 when any section differs from F

Each target runs in its own interpreter (``GUMBEL_SOFTMAX_TARGET``), with 2 threads.  The
calls cover every public function of the NumPy API, the layer, and the torch, JAX and
Dask modules where they import, on a spread of shapes, dtypes (float32, float64,
float16, bfloat16 with ml_dtypes), axes, layouts, taus (scalar, per row, unit), masks,
special values and every row path of the kernels: short-row groups (rows of at most 32),
per-row chunks, multi-segment rows (over 2**15 elements), strided tiles (axis 0) and
split rows (2**22 elements and more).

This pins behaviour across a change that must not alter any bit (a restructure); it is
not a test of correctness, which the suite does against references.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys

import numpy as np

SHAPES = [(1, 1), (7, 1), (3, 5), (4, 17), (33, 32), (5, 33), (9, 100), (2, 1000), (3, 40000)]
LONG = (1, (1 << 22) + 5)


def _bytes(a):
    a = np.asarray(a)
    return a.dtype.str.encode() + str(a.shape).encode() + np.ascontiguousarray(a).tobytes()


class Digest:
    def __init__(self):
        self.sections = {}

    def add(self, section, *arrays):
        h = self.sections.setdefault(section, hashlib.sha256())
        for a in arrays:
            if isinstance(a, (tuple, list)):
                self.add(section, *a)
            else:
                h.update(_bytes(a))

    def result(self):
        return {k: v.hexdigest() for k, v in sorted(self.sections.items())}


def _dtypes():
    out = [np.float32, np.float64, np.float16]
    try:
        import ml_dtypes

        out.append(ml_dtypes.bfloat16)
    except ImportError:
        pass
    return out


def _logits(shape, dt, seed, special):
    gen = np.random.default_rng(seed)
    x = (3 * gen.standard_normal(shape)).astype(np.float32)
    if special and x.size > 2:
        x.flat[0] = -np.inf
        x.flat[x.size // 2] = 40.0
    return x.astype(dt)


def numpy_api(d):
    import gumbel_softmax as gs

    n = 0
    for shape in SHAPES:
        for dt in _dtypes():
            for special in (False, True):
                n += 1
                x = _logits(shape, dt, n, special)
                w = np.random.default_rng(n + 1000).standard_normal(shape).astype(dt)
                mask = (np.arange(x.size).reshape(shape) % 3) != 1
                mask[..., 0] = True
                taus_row = np.where(np.arange(shape[0]) % 2 == 0, 1.0, 0.4)[:, None]
                tag = np.dtype(dt).name
                views = [("c", x), ("rev", x[::-1, ::-1]), ("f", np.asfortranarray(x))]
                for vname, v in views:
                    for axis in (-1, 0):
                        sec = f"np/{tag}/{vname}/ax{axis}"
                        k = min(3, shape[axis])
                        for tau in (0.1, 0.5, 1.0, 3.0):
                            d.add(sec, gs.gumbel_softmax(v, tau, axis=axis, rng=gs.Philox(n)))
                            h, s = gs.gumbel_softmax(
                                v, tau, hard=True, return_soft=True, axis=axis, rng=gs.Philox(n)
                            )
                            d.add(sec, h, s)
                            d.add(sec, gs.log_gumbel_softmax(v, tau, axis=axis, rng=gs.Philox(n)))
                            wa = w if axis == -1 else w[::-1]
                            d.add(sec, gs.gumbel_softmax_backward(wa, s, tau, axis=axis))
                            d.add(
                                sec,
                                gs.gumbel_softmax_backward(
                                    wa, logits=v, tau=tau, axis=axis, rng=gs.Philox(n)
                                ),
                            )
                            d.add(sec, gs.relaxed_bernoulli(v, tau, rng=gs.Philox(n)))
                            rh, rs = gs.relaxed_bernoulli(
                                v, tau, hard=True, return_soft=True, rng=gs.Philox(n)
                            )
                            d.add(sec, rh, rs, gs.relaxed_bernoulli_backward(wa, rs, tau))
                            with np.errstate(all="ignore"):
                                d.add(sec, gs.concrete_log_prob(s, v, tau, axis=axis))
                                d.add(
                                    sec,
                                    gs.concrete_log_prob(
                                        np.log(s.astype(np.float64)).astype(s.dtype),
                                        v,
                                        tau,
                                        axis=axis,
                                        log_space=True,
                                    ),
                                )
                        d.add(sec, gs.categorical(v, axis=axis, rng=gs.Philox(n)))
                        d.add(sec, gs.top_k(v, k, axis=axis, rng=gs.Philox(n)))
                        d.add(sec, gs.categorical(v, axis=axis, rng=np.random.default_rng(n)))
                        gen = np.random.default_rng(n)
                        d.add(sec, gs.gumbel_softmax(v, 0.5, axis=axis, rng=gen))
                        d.add(sec, np.frombuffer(str(gen.bit_generator.state).encode(), np.uint8))
                        d.add(
                            sec, gs.gumbel_softmax(v, 0.7, axis=axis, mask=mask, rng=gs.Philox(n))
                        )
                        d.add(sec, gs.categorical(v, axis=axis, mask=mask, rng=gs.Philox(n)))
                        d.add(sec, gs.top_k(v, k, axis=axis, mask=mask, rng=gs.Philox(n)))
                    # per-row tau (mixing unit tau) and a counter near the 2**32 wrap
                    sec = f"np/{tag}/{vname}/rows"
                    d.add(sec, gs.gumbel_softmax(v, taus_row, rng=gs.Philox(n)))
                    d.add(sec, gs.gumbel_softmax(v, 0.5, rng=gs.Philox(n, counter=2**32 - 3)))
                    h, s = gs.gumbel_softmax(v, taus_row, hard=True, return_soft=True, rng=n)
                    d.add(sec, h, s, gs.gumbel_softmax_backward(w, s, taus_row))
                d.add(f"noise/{tag}", gs.gumbel(shape, dtype=dt, rng=gs.Philox(n)))
                d.add(f"noise/{tag}", gs.logistic(shape, dtype=dt, rng=gs.Philox(n)))
    # 3-D, middle axis; int logits
    x = _logits((4, 6, 5), np.float32, 7, True)
    for axis in (0, 1, 2):
        d.add("np/3d", gs.gumbel_softmax(x, 0.5, axis=axis, rng=gs.Philox(3)))
        d.add("np/3d", gs.top_k(x, 2, axis=axis, rng=gs.Philox(3)))
    d.add("np/int", gs.gumbel_softmax(np.arange(12).reshape(3, 4), rng=gs.Philox(1)))
    # split rows: one row of more than 2**22 elements
    for dt in (np.float32, np.float64):
        x = _logits(LONG, dt, 11, True)
        w = np.random.default_rng(12).standard_normal(LONG).astype(dt)
        h, s = gs.gumbel_softmax(x, 0.5, hard=True, return_soft=True, rng=gs.Philox(5))
        d.add(f"np/long/{dt.__name__}", h, s, gs.gumbel_softmax_backward(w, s, 0.5))
        d.add(f"np/long/{dt.__name__}", gs.categorical(x, rng=gs.Philox(5)))
        d.add(f"np/long/{dt.__name__}", gs.log_gumbel_softmax(x, 1.0, rng=gs.Philox(5)))
    # relaxed_top_k and its backward, in sections of their own
    for shape in SHAPES[1:]:
        for dt in _dtypes():
            n += 1
            x = _logits(shape, dt, n, True)
            w = np.random.default_rng(n + 1000).standard_normal(shape).astype(dt)
            for axis in (-1, 0):
                k = min(3, shape[axis])
                xa = x if axis == -1 else x[::-1]
                sec = f"subset/{np.dtype(dt).name}/ax{axis}"
                for tau in (0.1, 1.0, 3.0):
                    h, s = gs.relaxed_top_k(
                        xa, k, tau, hard=True, return_soft=True, axis=axis, rng=gs.Philox(n)
                    )
                    b = gs.relaxed_top_k_backward(w, xa, k, tau, axis=axis, rng=gs.Philox(n))
                    d.add(sec, h, s, b)
    # Philox, the layer, anneal_tau
    c = np.arange(64, dtype=np.uint32).reshape(16, 4)
    d.add("philox", gs.philox4x32(c, np.array([1, 2], dtype=np.uint32)))
    layer = gs.GumbelSoftmax(tau=0.7, hard=True, rng=gs.Philox(9))
    x = _logits((6, 10), np.float32, 13, False)
    y = layer(x)
    d.add("layer", y, layer.backward(np.ones_like(y)))
    d.add("layer", np.array([gs.anneal_tau(s, 1.0, 0.1, 100) for s in range(0, 200, 7)]))


def torch_api(d):
    try:
        import torch
    except ImportError:
        return
    import gumbel_softmax.torch as gst

    for dt in (torch.float32, torch.float64):
        x = torch.from_numpy(_logits((9, 33), np.float32, 3, False)).to(dt).requires_grad_()
        for hard in (False, True):
            g = torch.Generator().manual_seed(4)
            y = gst.gumbel_softmax(x, tau=0.5, hard=hard, generator=g)
            (gx,) = torch.autograd.grad((y * torch.arange(33.0, dtype=dt)).sum(), x)
            d.add(f"torch/{dt}", y.detach().numpy(), gx.numpy())


def jax_api(d):
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", False)
    import gumbel_softmax.jax as gsj

    x = jax.numpy.asarray(_logits((9, 33), np.float32, 3, False))
    for hard in (False, True):
        y = gsj.gumbel_softmax(5, x, 0.5, hard=hard)
        gx = jax.grad(lambda z: (gsj.gumbel_softmax(5, z, 0.5, hard=hard) ** 2).sum())(x)
        d.add("jax", np.asarray(y), np.asarray(gx))


def dask_api(d):
    try:
        import dask.array as da
    except ImportError:
        return
    import gumbel_softmax as gs
    import gumbel_softmax.dask as gsd

    x = da.from_array(_logits((40, 33), np.float32, 3, False), chunks=(16, 33))
    d.add("dask", gsd.gumbel_softmax(x, 0.5, rng=gs.Philox(2)).compute(scheduler="sync"))
    d.add("dask", gsd.categorical(x, rng=gs.Philox(2)).compute(scheduler="sync"))
    d.add("dask", gsd.gumbel((40, 33), chunks=(16, 33), rng=gs.Philox(2)).compute(scheduler="sync"))


def one_target():
    import gumbel_softmax as gs

    gs.set_num_threads(2)
    d = Digest()
    numpy_api(d)
    torch_api(d)
    jax_api(d)
    dask_api(d)
    out = d.result()
    out["all"] = hashlib.sha256("".join(out.values()).encode()).hexdigest()
    print(json.dumps({"target": gs.cpu_target(), "sections": out}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--save")
    p.add_argument("--check")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one_target()
        return 0
    import gumbel_softmax as gs

    results = {}
    for t in gs.cpu_targets():
        env = dict(os.environ, GUMBEL_SOFTMAX_TARGET=t)
        r = subprocess.run(
            [sys.executable, __file__, "--one"], env=env, capture_output=True, text=True
        )
        if r.returncode:
            sys.stderr.write(r.stderr)
            return 2
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert got["target"] == t, got["target"]
        results[t] = got["sections"]
        print(f"{t}: {results[t]['all']} ({len(results[t]) - 1} sections)")
    if args.save:
        with open(args.save, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    if args.check:
        with open(args.check) as f:
            want = json.load(f)
        bad = [
            f"{t}/{s}"
            for t in results
            for s in sorted(set(results[t]) | set(want.get(t, {})))
            if results[t].get(s) != want.get(t, {}).get(s)
        ]
        print("unchanged" if not bad else "CHANGED: " + ", ".join(bad))
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
