"""Pure-NumPy reference implementation of the documented random stream and maths.

This module never imports ``gumbel_softmax``: everything here is written from the
documentation (docs/contract.md "Random numbers", "Bits to noise", "Forward and backward
arithmetic") so that the tests compare the package against an independent model.
Other test modules import these functions; their names and signatures are stable.

Functions
---------
philox4x32_ref(counters, key, rounds=10)     Philox4x32-R block function
words_ref(seed, first_row, n_rows, n_words)  the 32-bit words of consecutive rows
bits64_ref(seed, first_row, n_rows, n_elems) the 64-bit values float64 elements use
stream_bits_ref(seed, counter, shape, dtype) the random bits of each noise element
gumbel_from_bits_ref(bits, dtype)            the exact-maths noise of given bits
gumbel_ref(seed, counter, shape, dtype)      the exact-maths Gumbel noise (float64)
softmax_ref(z, axis)                         float64 softmax
backward_ref(grad_y, y_soft, tau, axis)      float64 soft / straight-through gradient
fwd_rtol(x, g, tau, dtype, K)                relative tolerance for forward results
bwd_tol(grad_y, y_soft, tau, dtype, axis)    elementwise absolute tolerance, backward
noise_tol(g_ref, dtype)                      elementwise tolerance for the noise
load_kat(path=None)                          parse tests/data/philox_kat.txt
one_hot_ref(v, axis)                         exact one-hot at the first argmax
relaxed_top_k_ref(v, k, tau, axis)           float64 relaxed top-k (Xie & Ermon) of v
relaxed_top_k_tol(ref, dtype)                elementwise tolerance for relaxed_top_k
relaxed_top_k_comparable(ref, dtype)         its rows that a dtype computes comparably
check_forward / check_one_hot / check_backward   assertions with informative messages
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = [
    "M0",
    "M1",
    "W0",
    "W1",
    "KAT_PATH",
    "philox4x32_ref",
    "words_ref",
    "bits64_ref",
    "gumbel_ref",
    "softmax_ref",
    "backward_ref",
    "fwd_rtol",
    "bwd_tol",
    "noise_tol",
    "load_kat",
    "eps_of",
    "tiny_atol",
    "n_rows_of",
    "check_forward",
    "check_one_hot",
    "check_backward",
    "one_hot_ref",
    "relaxed_top_k_ref",
    "relaxed_top_k_tol",
    "relaxed_top_k_comparable",
    "gumbel_from_bits_ref",
    "stream_bits_ref",
]

# Philox4x32 constants (Random123).
M0 = 0xD2511F53
M1 = 0xCD9E8D57
W0 = 0x9E3779B9
W1 = 0xBB67AE85

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)

KAT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "philox_kat.txt")


# --------------------------------------------------------------------------- Philox
def philox4x32_ref(counters, key, rounds: int = 10) -> np.ndarray:
    """Philox4x32 with ``rounds`` rounds, applied to every counter block.

    counters: integer array of shape (..., 4), values in [0, 2**32).
    key:      integer array-like of shape (2,), values in [0, 2**32).
    Returns uint32 array of shape (..., 4).

    Each round: (hi0, lo0) = M0 * c0, (hi1, lo1) = M1 * c2 (64-bit products),
    c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0); the key is bumped by (W0, W1)
    between rounds (mod 2**32).
    """
    c = np.asarray(counters)
    if c.shape[-1:] != (4,):
        raise ValueError("counters must have shape (..., 4)")
    c = c.astype(np.uint64) & _MASK32
    k = np.asarray(key).astype(np.uint64).reshape(2) & _MASK32
    c0, c1, c2, c3 = (c[..., i].copy() for i in range(4))
    k0, k1 = np.uint64(k[0]), np.uint64(k[1])
    m0, m1 = np.uint64(M0), np.uint64(M1)
    w0, w1 = np.uint64(W0), np.uint64(W1)
    for r in range(rounds):
        if r > 0:
            k0 = (k0 + w0) & _MASK32
            k1 = (k1 + w1) & _MASK32
        p0 = m0 * c0  # < 2**64: exact in uint64
        p1 = m1 * c2
        hi0, lo0 = p0 >> _SHIFT32, p0 & _MASK32
        hi1, lo1 = p1 >> _SHIFT32, p1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def _key_of(seed: int) -> np.ndarray:
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError("seed must be in [0, 2**64)")
    return np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint64)


def words_ref(seed: int, first_row: int, n_rows: int, n_words: int) -> np.ndarray:
    """Random words of rows first_row .. first_row + n_rows - 1 (absolute rows q).

    word(q, w) = philox4x32_10(counter=(w // 4, 0, q & 0xffffffff, q >> 32), key)[w % 4]
    with key = (seed & 0xffffffff, seed >> 32). Returns uint32[n_rows, n_words].
    """
    first_row, n_rows, n_words = int(first_row), int(n_rows), int(n_words)
    if first_row < 0 or first_row + n_rows > 2**64:
        raise ValueError("rows must lie in [0, 2**64)")
    n_blocks = -(-n_words // 4)
    q = np.uint64(first_row) + np.arange(n_rows, dtype=np.uint64)
    ctr = np.zeros((n_rows, n_blocks, 4), dtype=np.uint64)
    ctr[..., 0] = np.arange(n_blocks, dtype=np.uint64)[None, :]
    ctr[..., 2] = (q & _MASK32)[:, None]
    ctr[..., 3] = (q >> _SHIFT32)[:, None]
    out = philox4x32_ref(ctr, _key_of(seed), rounds=10)
    return out.reshape(n_rows, n_blocks * 4)[:, :n_words]


def bits64_ref(seed: int, first_row: int, n_rows: int, n_elems: int) -> np.ndarray:
    """64-bit values word(q, 2c) | word(q, 2c + 1) << 32: uint64[n_rows, n_elems]."""
    w = words_ref(seed, first_row, n_rows, 2 * int(n_elems)).astype(np.uint64)
    return w[:, 0::2] | (w[:, 1::2] << _SHIFT32)


def n_rows_of(shape) -> int:
    """Number of rows of an array of ``shape`` whose last axis is the row axis."""
    return int(math.prod(tuple(shape)[:-1]))


# ----------------------------------------------------------------------------- noise
def _t_and_side_from_bits(bits, dtype):
    dt = np.dtype(dtype)
    b = np.asarray(bits).astype(np.uint64)
    if dt == np.float32:
        s = b >> np.uint64(31)
        m = b & np.uint64(0x7FFFFFFF)
        # (m + 1/2) * 2**-32 is exact in float64; one rounding to float32.
        t = ((m.astype(np.float64) + 0.5) * 2.0**-32).astype(np.float32)
    elif dt == np.float64:
        s = b >> np.uint64(63)
        m = b & np.uint64(0x7FFFFFFFFFFFFFFF)
        hi = (m >> np.uint64(31)).astype(np.float64)  # 32 bits, exact
        lo = (m & np.uint64(0x7FFFFFFF)).astype(np.float64)  # 31 bits, exact
        # hi * 2**31 and lo + 0.5 are exact; their sum is m + 1/2 rounded once;
        # the power-of-two scaling is exact (no underflow: t >= 2**-65).
        t = (hi * 2.0**31 + (lo + 0.5)) * 2.0**-64
    else:
        raise TypeError("dtype must be float32 or float64")
    return t, s


def gumbel_from_bits_ref(bits, dtype) -> np.ndarray:
    """Exact-maths noise (float64) of random bits: uint32 words for float32, uint64
    values word(2c) | word(2c+1) << 32 for float64 (docs/contract.md "Bits to noise").

    s = top bit, m = the other bits, t = round_to_dtype((m + 1/2) * 2**-n) (one
    rounding), E = -log(t) if s == 0 else -log1p(-t), g = -log(E); E and g in float64.
    """
    t, s = _t_and_side_from_bits(bits, dtype)
    t = t.astype(np.float64)
    E = np.where(s == 0, -np.log(t), -np.log1p(-t))
    return -np.log(E)


def stream_bits_ref(seed: int, counter: int, shape, dtype) -> np.ndarray:
    """The random bits of every element of ``gs.gumbel(shape, dtype, Philox(seed, counter))``:
    uint32 (float32) or uint64 (float64) array of ``shape``."""
    shape = tuple(int(n) for n in shape)
    if len(shape) < 1:
        raise ValueError("shape needs at least one dimension")
    K, R = shape[-1], n_rows_of(shape)
    if np.dtype(dtype) == np.float32:
        return words_ref(seed, counter, R, K).reshape(shape)
    if np.dtype(dtype) == np.float64:
        return bits64_ref(seed, counter, R, K).reshape(shape)
    raise TypeError("dtype must be float32 or float64")


def gumbel_ref(seed: int, counter: int, shape, dtype) -> np.ndarray:
    """Exact-maths noise of ``gs.gumbel(shape, dtype=dtype, rng=Philox(seed, counter=counter))``.

    t is rounded once to ``dtype`` exactly as documented; E and g are then computed
    in float64 (E = -log(t) for top bit 0, E = -log1p(-t) for top bit 1,
    g = -log(E)). Returns float64 of ``shape``.
    """
    return gumbel_from_bits_ref(stream_bits_ref(seed, counter, shape, dtype), dtype)


def noise_tol(g_ref, dtype) -> np.ndarray:
    """Elementwise tolerance for package noise vs gumbel_ref: 4*eps*(1 + |g_ref|)."""
    return 4.0 * eps_of(dtype) * (1.0 + np.abs(g_ref))


# ---------------------------------------------------------------- forward / backward
def eps_of(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


def tiny_atol(dtype) -> float:
    """A few smallest subnormals of ``dtype``: tiny probabilities may be subnormal."""
    return 16.0 * float(np.finfo(np.dtype(dtype)).smallest_subnormal)


def softmax_ref(z, axis=-1) -> np.ndarray:
    """Softmax of ``z`` along ``axis`` in float64."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def fwd_rtol(x, g, tau, dtype, K) -> float:
    """Relative tolerance of a forward sample against softmax_ref((x + g) / tau).

    8*eps*(1 + max|x + g| / tau) + 4*sqrt(K)*eps, eps of ``dtype``, K the row length.
    """
    eps = eps_of(dtype)
    v = np.asarray(x, dtype=np.float64) + np.asarray(g, dtype=np.float64)
    vmax = float(np.max(np.abs(v))) if v.size else 0.0
    return 8.0 * eps * (1.0 + vmax / float(tau)) + 4.0 * math.sqrt(K) * eps


def backward_ref(grad_y, y_soft, tau, axis=-1) -> np.ndarray:
    """y_soft * (grad_y - sum(grad_y * y_soft, axis)) / tau, in float64."""
    gy = np.asarray(grad_y, dtype=np.float64)
    ys = np.asarray(y_soft, dtype=np.float64)
    s = np.sum(gy * ys, axis=axis, keepdims=True)
    return ys * (gy - s) / float(tau)


def bwd_tol(grad_y, y_soft, tau, dtype, axis=-1) -> np.ndarray:
    """Elementwise absolute tolerance for the backward in ``dtype``.

    The kernel sums grad_y * y_soft in 16 partial sums then pairwise, so the sum has
    an error below (K/16 + 5) * eps * sum|grad_y * y_soft|; the difference, product
    and scaling add a few eps of |y_soft| * (|grad_y| + |sum|) / tau.  The product
    y_soft * (grad_y - sum) is rounded before the scaling by 1/tau, and where it is
    subnormal its error is absolute (up to half the smallest subnormal), so the
    subnormal slack is scaled by 1/tau too (tau < 1 multiplies it).
    """
    eps = eps_of(dtype)
    gy = np.asarray(grad_y, dtype=np.float64)
    ys = np.asarray(y_soft, dtype=np.float64)
    K = gy.shape[axis]
    sabs = np.sum(np.abs(gy * ys), axis=axis, keepdims=True)
    scale = np.abs(ys) * (np.abs(gy) + sabs) / float(tau)
    return (
        4.0 * eps * scale
        + (K / 16.0 + 8.0) * eps * np.abs(ys) * sabs / float(tau)
        + tiny_atol(dtype) * max(1.0, 1.0 / float(tau))
    )


# ------------------------------------------------------------------------------ KAT
def load_kat(path: str | None = None):
    """Parse the Random123 known-answer file.

    Returns a list of dicts with keys name ('philox4x32', ...), rounds (int),
    counter (uint32 array), key (uint32 array), expected (uint32 array).
    Lines are ``name rounds ctr... key... expected...`` in hex; the counter has
    N words, the key N/2 and the output N for ``philoxNxW``.
    """
    path = KAT_PATH if path is None else path
    out = []
    with open(path, encoding="ascii") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            name, rounds = parts[0], int(parts[1])
            n = int(name[len("philox") :].split("x")[0])
            words = [int(p, 16) for p in parts[2:]]
            if len(words) != n + n // 2 + n:
                raise ValueError(f"malformed KAT line: {line!r}")
            out.append(
                {
                    "name": name,
                    "rounds": rounds,
                    "counter": np.array(words[:n], dtype=np.uint32),
                    "key": np.array(words[n : n + n // 2], dtype=np.uint32),
                    "expected": np.array(words[n + n // 2 :], dtype=np.uint32),
                }
            )
    return out


# ------------------------------------------------------------------ check helpers
def _fail_detail(name, got, ref, err, bound):
    i = np.unravel_index(np.argmax(err - bound), err.shape)
    n_bad = int(np.sum(err > bound))
    return (
        f"{name}: {n_bad} of {err.size} elements out of tolerance; worst at {i}: "
        f"got {got[i]!r}, expected {ref[i]!r}, |err|={err[i]:.3e} > bound={bound[i]:.3e}"
    )


def check_forward(y, x, g, tau, axis=-1, dtype=None):
    """Assert that ``y`` is softmax((x + g) / tau) along ``axis`` within fwd_rtol.

    |y - ref| <= fwd_rtol * ref + tiny_atol elementwise, and every row sums to 1 within
    (K/16 + 8) * eps. ``dtype`` defaults to y.dtype.
    """
    dtype = np.dtype(y.dtype if dtype is None else dtype)
    y64 = np.asarray(y, dtype=np.float64)
    K = y64.shape[axis]
    ref = softmax_ref(
        (np.asarray(x, dtype=np.float64) + np.asarray(g, dtype=np.float64)) / float(tau), axis=axis
    )
    rtol = fwd_rtol(x, g, tau, dtype, K)
    err = np.abs(y64 - ref)
    bound = rtol * ref + tiny_atol(dtype)
    assert np.all(np.isfinite(y64)), "non-finite values in the sample"
    assert np.all(err <= bound), _fail_detail("forward", y64, ref, err, bound)
    assert np.all(y64 >= 0.0)
    s = np.sum(y64, axis=axis)
    serr = np.abs(s - 1.0)
    sbound = np.full_like(serr, (K / 16.0 + 8.0) * eps_of(dtype))
    assert np.all(serr <= sbound), _fail_detail("row sums", s, np.ones_like(s), serr, sbound)


def one_hot_ref(v, axis=-1) -> np.ndarray:
    """Exact one-hot (float64) at the first argmax of ``v`` along ``axis``."""
    v = np.asarray(v)
    am = np.expand_dims(np.argmax(v, axis=axis), axis)
    out = np.zeros(v.shape, dtype=np.float64)
    np.put_along_axis(out, am, 1.0, axis=axis)
    return out


def check_one_hot(y, x, g, axis=-1):
    """Assert ``y`` is an exact one-hot (+0.0 / 1.0) at argmax(x + g) in y's dtype."""
    dt = y.dtype
    v = np.asarray(x).astype(dt) + np.asarray(g).astype(dt)
    expected = one_hot_ref(v, axis=axis)
    assert np.all((y == 0.0) | (y == 1.0)), "hard sample has values other than 0 and 1"
    assert not np.any(np.signbit(y)), "hard sample has -0.0 entries"
    assert np.all(np.sum(y, axis=axis) == 1.0)
    if not np.array_equal(y, expected):
        got_idx = np.argmax(y, axis=axis)
        exp_idx = np.argmax(v, axis=axis)
        bad = np.argwhere(got_idx != exp_idx)
        raise AssertionError(
            f"one-hot at the wrong index for {len(bad)} rows, e.g. batch "
            f"index {tuple(bad[0])}: got {got_idx[tuple(bad[0])]}, "
            f"expected {exp_idx[tuple(bad[0])]}"
        )


def check_backward(got, grad_y, y_soft, tau, axis=-1, dtype=None, factor=1.0):
    """Assert ``got`` equals backward_ref(grad_y, y_soft, tau, axis) within factor*bwd_tol."""
    dtype = np.dtype(got.dtype if dtype is None else dtype)
    ref = backward_ref(grad_y, y_soft, tau, axis)
    g64 = np.asarray(got, dtype=np.float64)
    err = np.abs(g64 - ref)
    bound = factor * bwd_tol(grad_y, y_soft, tau, dtype, axis)
    assert np.all(np.isfinite(g64))
    assert np.all(err <= bound), _fail_detail("backward", g64, ref, err, bound)


# ------------------------------------------------------------------- relaxed top-k
class RelaxedTopK:
    """What relaxed_top_k_ref computes, float64, with ``axis`` where v had it: ``y`` (the
    sample), ``a`` (the k steps' softmaxes, shape (k,) + v.shape), ``err`` (a
    first-order bound on the rounding error of y computed in a dtype of machine epsilon
    u, in units of u: |y - y_exact| <= err * u), and per row ``zerr``, the largest bound
    on the error of an exponent (r_i - max r) / tau over the steps (units of u: the
    bound is first order, so it holds while zerr * u is small), and ``omin``, the
    smallest nonzero 1 - a of a step's argmax (O / S; inf if none: where that is near
    the dtype's underflow, the dtype may round it to 0, the category taken with
    certainty, its r exactly -inf, where float64 does not)."""

    def __init__(self, y, a, err, zerr, omin):
        self.y, self.a, self.err, self.zerr, self.omin = y, a, err, zerr, omin


def relaxed_top_k_ref(v, k, tau, axis=-1) -> RelaxedTopK:
    """The relaxed top-k of perturbed logits ``v`` (docs/contract.md, "Relaxed top-k"),
    in float64: ``r = v``, then for j = 1..k: ``r += log(1 - a_{j-1})`` (j > 1) and
    ``a_j = softmax(r / tau)``; ``y = sum_j a_j``.  log(1 - a) in the stable form: for
    the row's first argmax I, ``log(O / S)`` with ``e = exp((r - max r) / tau)``, ``O``
    the sum of the other e and ``S = 1 + O``; else ``log1p(-a)``.  A step whose r is
    -inf everywhere adds 0.  ``tau``: a scalar or one per row (the batch shape); every
    row of ``v`` must have a finite maximum.

    ``err`` is a first-order running error bound (units of u): each step's error of r,
    ``dr``, is carried to the next by the absolute values of the step's Jacobian,
        dr'_i = |1 - a_i / tau| dr_i + a_i / ((1 - a_i) tau) sum_{j != i} a_j dr_j  (i != I)
        dr'_I = |1 - a_I / tau| dr_I + a_I / tau sum_{i != I} (e_i / O) dr_i,
    and to a by |da_i| <= a_i / tau (dr_i + sum_j a_j dr_j), plus each operation's own
    rounding (1 u, the functions' 2 u, sums of K terms (K/16 + 8) u, the exponents'
    |r_i - max r| u).  So it grows as the formula's own condition does: by up to about
    2 / tau per step for small tau (the taken category's new r depends on the others'
    through (r_i - r_I) / tau: for small tau and many steps the sample is chaotic in v,
    and no tolerance can be small), not at all at tau >= 1.
    """
    v = np.moveaxis(np.asarray(v, dtype=np.float64), axis, -1)
    batch, K = v.shape[:-1], v.shape[-1]
    r = v.reshape(-1, K).copy()
    n = r.shape[0]
    t = np.broadcast_to(np.asarray(tau, dtype=np.float64), batch).reshape(-1, 1)
    rows = np.arange(n)
    omin = np.full(n, np.inf)
    zerr = np.zeros(n)
    y = np.zeros_like(r)
    steps = np.zeros((k,) + r.shape)
    sums = K / 16.0 + 8.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        dr = np.where(np.isfinite(r), 2.0 * np.abs(r) + 4.0, 0.0)  # v = x + g rounded
        Y = np.zeros_like(r)
        for j in range(k):
            m = np.max(r, axis=-1, keepdims=True)
            live = np.isfinite(m[:, 0])
            fin = np.isfinite(r) & live[:, None]
            big = np.argmax(r, axis=-1)
            d = np.where(fin, r - np.where(live[:, None], m, 0.0), 0.0)
            e = np.where(fin, np.exp(d / t), 0.0)
            # the exponents' error: propagated (dr_i + dr_I) / tau, rounded (|d| / tau)
            drI = dr[rows, big][:, None]
            zrel = np.where(fin, (dr + drI + np.abs(d)) / t + 2.0, 0.0)
            zerr = np.maximum(zerr, np.max(zrel, axis=-1))
            e[rows, big] = 0.0
            other = np.sum(e, axis=-1)
            total = 1.0 + other
            a = e / total[:, None]
            a[rows, big] = np.where(live, 1.0 / total, 0.0)
            steps[j] = a
            y += a
            # rounding of a (exp, the sums, the division), then the propagated error
            srel = np.sum(e * (np.abs(d) / t + 2.0), axis=-1) / total + sums
            mean_dr = np.sum(a * dr, axis=-1, keepdims=True)
            local = np.where(fin, np.abs(d) / t + 3.0, 0.0) + srel[:, None]
            A = a * (local + (dr + mean_dr) / t)
            Y += A + y
            if j + 1 == k:
                break
            lg = np.log1p(-a)
            lI = np.log(other) - np.log(total)
            omin = np.where(live & (other > 0), np.minimum(omin, other / total), omin)
            h = a / (1.0 - a)
            spread = (mean_dr - a * dr) / t  # sum_{j != i} a_j dr_j / tau
            new = np.abs(1.0 - a / t) * dr + h * spread + h * local + 2.0 * np.abs(lg) + 2.0
            wI = np.where(other[:, None] > 0, e / other[:, None], 0.0)  # e_i / O, i != I
            wsum = np.sum(wI * dr, axis=-1)
            wloc = np.sum(wI * np.where(fin, np.abs(d) / t + 2.0, 0.0), axis=-1) + sums
            aI = a[rows, big]
            newI = np.abs(1.0 - aI / t[:, 0]) * drI[:, 0] + aI / t[:, 0] * wsum
            newI = newI + wloc + 1.0 + 2.0 * np.abs(lI) + 2.0
            lg[rows, big] = np.where(live, lI, 0.0)
            new[rows, big] = newI
            r = r + lg
            dr = np.where(np.isfinite(r), new + np.abs(r), 0.0)
    shape = batch + (K,)
    y = np.moveaxis(y.reshape(shape), -1, axis)
    a = np.moveaxis(steps.reshape((k,) + shape), -1, axis if axis < 0 else axis + 1)
    err = np.moveaxis(Y.reshape(shape), -1, axis)
    return RelaxedTopK(y, a, err, zerr.reshape(batch), omin.reshape(batch))


def relaxed_top_k_comparable(ref, dtype) -> np.ndarray:
    """The rows (batch shape) where ``dtype`` and float64 compute the same thing within
    relaxed_top_k_tol: every exponent's error bound at most 0.05 (the first-order
    regime: exp of a perturbed exponent moves by at most 5.2 %, which the factor 2 of
    relaxed_top_k_tol covers), and every nonzero
    1 - a_I far from ``dtype``'s underflow (above 2**20 times its smallest normal)."""
    eps = eps_of(dtype)
    return (ref.zerr * eps <= 0.05) & (ref.omin > 2.0**20 * float(np.finfo(np.dtype(dtype)).tiny))


def relaxed_top_k_tol(ref, dtype) -> np.ndarray:
    """Elementwise absolute tolerance of a relaxed_top_k sample computed in ``dtype``
    against ``ref`` (a RelaxedTopK): 2 err eps (the package's rounding and, for
    float64, the reference's own) + tiny_atol."""
    return 2.0 * ref.err * eps_of(dtype) + tiny_atol(dtype)
