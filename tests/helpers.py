"""Helpers shared by the test modules: how the tests compare, differentiate and run.

Imported as ``helpers`` (``tests/conftest.py`` puts this folder on ``sys.path``, as it
does for ``reference``), so it works from the source tree and from a copy of ``tests/``
run against an installed wheel.  What the package must compute (the random stream, the
noise, the forward and backward formulas and their tolerances) is in ``reference.py``;
this module only holds the test machinery:

- bitwise comparison: ``as_bits``, ``same_bits``, ``assert_bitwise_equal``,
  ``assert_bitwise_equal_any_nan``;
- data: ``random_logits``, ``n_rows``;
- gradients: ``fd_gradient`` (central finite differences);
- child interpreters: ``child_env``, ``run_python``, ``run_python_file``, ``target_env``
  (one interpreter per SIMD target);
- Python threads: ``run_in_threads``, ``assert_exact_cover``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np

# ---------------------------------------------------------------------------------------
# Bitwise comparison

_UINT_OF_SIZE = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def as_bits(a) -> np.ndarray:
    """The raw bits of an array (C order), as unsigned integers of its item size (items
    of another size: their bytes, along one more, last axis)."""
    a = np.ascontiguousarray(a)
    if a.dtype.itemsize in _UINT_OF_SIZE:
        return a.view(_UINT_OF_SIZE[a.dtype.itemsize])
    return a.reshape(a.shape + (1,)).view(np.uint8)


def same_bits(a, b) -> bool:
    """True when a and b have the same dtype, the same shape and the same bytes."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _assert_bits_equal(a, b, what):
    differ = as_bits(a) != as_bits(b)
    if differ.ndim > a.ndim:  # items compared byte by byte
        differ = differ.any(axis=-1)
    if differ.any():
        bad = np.argwhere(differ)
        i = tuple(int(v) for v in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} of {a.size} elements differ, e.g. at {i}: {a[i]!r} vs {b[i]!r}"
        )


def assert_bitwise_equal(a, b, what=""):
    """a and b have the same dtype, the same shape and the same bits everywhere (NaNs
    included: sign and payload).  ``what`` names the comparison in the failure message."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape, b.shape)
    _assert_bits_equal(a, b, what)


def _isnan(a):
    # float16/32/64 directly; bfloat16 (an ml_dtypes type, kind "V") through float32
    return np.isnan(a) if a.dtype.kind == "f" else np.isnan(a.astype(np.float32))


def assert_bitwise_equal_any_nan(a, b, what=""):
    """As ``assert_bitwise_equal``, except that a NaN only has to stand where the other
    array has a NaN: its sign and payload are free.  For comparisons with a reference
    computed by NumPy, whose NaNs need not have the package's (canonical) bits; that the
    package writes canonical NaNs is checked by test_targets.py."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape, b.shape)
    if a.dtype.kind not in "biu":
        na, nb = _isnan(a), _isnan(b)
        np.testing.assert_array_equal(na, nb, err_msg=f"{what}: NaN positions differ")
        zero = np.zeros((), a.dtype)
        a = np.where(na, zero, a).astype(a.dtype)
        b = np.where(nb, zero, b).astype(b.dtype)
    _assert_bits_equal(a, b, what)


# ---------------------------------------------------------------------------------------
# Data


def random_logits(shape, dtype=np.float64, seed=0, scale=2.0) -> np.ndarray:
    """``scale`` times standard normal values from ``np.random.default_rng(seed)``,
    rounded to ``dtype``."""
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def n_rows(shape, axis=-1) -> int:
    """The number of rows of a call along ``axis``: the product of the other dimensions."""
    shape = tuple(shape)
    ax = axis % len(shape)
    return math.prod(shape[:ax] + shape[ax + 1 :])


# ---------------------------------------------------------------------------------------
# Gradients


def fd_gradient(f, x, h):
    """The gradient of the scalar function ``f`` at ``x`` by central differences:
    ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every index i of ``x``."""
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp = x.copy()
        xm = x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = (f(xp) - f(xm)) / (2.0 * h)
    return grad


# ---------------------------------------------------------------------------------------
# Child interpreters


def child_env(*, drop=(), same_path=False, **extra) -> dict:
    """The environment for a child interpreter: ``os.environ`` without the variables in
    ``drop``, with ``extra`` set.  ``same_path=True`` also puts this interpreter's
    ``sys.path`` (then any PYTHONPATH already set) on PYTHONPATH, so that the child
    imports the same ``gumbel_softmax`` and can import the modules of tests/."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if same_path:
        paths = [p for p in sys.path if p]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def target_env(target: str) -> dict:
    """The environment of a child that runs the package's kernels for SIMD ``target``
    (GUMBEL_SOFTMAX_TARGET; a target this CPU lacks gives a warning and the default)."""
    return child_env(GUMBEL_SOFTMAX_TARGET=target)


def _run(argv, env, timeout, cwd):
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_python(code, *args, env=None, timeout=120, cwd=None, flags=()):
    """Run ``code`` (dedented) in a fresh interpreter, ``python *flags -c code *args``,
    with ``env`` (None: this process's environment); returns the CompletedProcess, its
    output captured as text.  Raises subprocess.TimeoutExpired after ``timeout`` s."""
    argv = [sys.executable, *flags, "-c", textwrap.dedent(code), *map(str, args)]
    return _run(argv, env, timeout, cwd)


def run_python_file(path, *args, env=None, timeout=120, cwd=None):
    """As ``run_python``, for the script at ``path``."""
    return _run([sys.executable, str(path), *map(str, args)], env, timeout, cwd)


# ---------------------------------------------------------------------------------------
# Python threads


def run_in_threads(n_threads, target, *, at_start=None):
    """Run ``target(tid)`` for tid in 0 .. n_threads - 1, each on its own Python thread,
    all released at once by a barrier (``at_start()``, when given, runs once just before
    they are released); wait for all of them, then re-raise the first exception any
    thread raised, naming the thread."""
    barrier = threading.Barrier(n_threads, action=at_start)
    errors = []

    def wrapped(tid):
        try:
            barrier.wait()
            target(tid)
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append((tid, exc))

    threads = [threading.Thread(target=wrapped, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        tid, exc = errors[0]
        raise AssertionError(f"thread {tid} raised {exc!r}") from exc


def assert_exact_cover(intervals, start, end):
    """The ranges (first, n) are non-empty, pairwise disjoint and cover exactly
    [start, end)."""
    pos = start
    for first, n in sorted(intervals):
        assert n >= 1
        assert first == pos, f"gap or overlap at {pos} (next range starts at {first})"
        pos = first + n
    assert pos == end
