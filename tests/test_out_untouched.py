"""Rejected calls write nothing and reserve nothing; the end of the stream.

Untouched ``out`` -- "on any exception every out= array is left untouched byte for byte":
``test_errors.py`` checks this for most rows of the error table (docs/contract.md), but not
systematically: not with ``return_soft=True`` (except bad tau / bad out), not for a
bad ``rng`` type, a non-integer ``axis``, a 0-d or wrongly typed ``grad_y`` with
``out=``, a bad ``gumbel`` shape or dtype with ``out=``, rows longer than 2**31 - 1 with
``out=``, exceptions raised by the arguments themselves, or the in-place case
(``out=logits``) of an overflow, and never with ``out`` a strided view into a larger
buffer (so that a stray write outside the view would show).  Here every entry point
that takes ``out=`` gets the same table: for each raising input, ``out`` is a view
into a buffer filled with a byte pattern, the call must raise the documented exception
naming the argument, and the whole buffer, the inputs and ``rng.counter`` must be
unchanged.

The end of the stream -- "a call that would pass counter 2**64 raises a clear error":
``test_errors.py`` checks soft / hard ``gumbel_softmax``, ``gumbel`` and ``reserve``
a few rows past the end.  Added here: ``return_soft=True`` and ``axis=0``, the exact
boundary (R rows at counter 2**64 - R succeed and leave the counter at exactly 2**64;
at 2**64 - R + 1 they raise), the exhausted generator (counter == 2**64: every call
with at least one row raises, size-0 calls still work, copy / pickle keep the state),
and the message (names the counter and 2**64).
"""

from __future__ import annotations

import copy
import pickle

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import random_logits
from numpy.lib.stride_tricks import as_strided
from reference import gumbel_ref, noise_tol

DTYPES = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]
LAYOUTS = ["contiguous", "strided"]
SHAPE = (5, 7)  # 5 rows of 7
SEED = 0xFEED_0123_4567
C0 = 2**33 + 5
END = 2**64


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _fill_pattern(base):
    """Fills a C-contiguous array with a byte pattern (not a float of any meaning)."""
    b = base.reshape(-1).view(np.uint8)
    b[:] = ((np.arange(b.size) * 37 + 11) % 251).astype(np.uint8)


def _out_view(shape, dtype, layout):
    """(base, out): out has ``shape`` and is base itself or a view of every other
    element of it, reversed; base is filled with the byte pattern."""
    if layout == "contiguous" or len(shape) == 0:
        base = np.empty(shape, dtype)
        out = base
    else:
        base = np.empty(tuple(2 * n for n in shape), dtype)
        out = base[tuple(slice(None, None, -2) for _ in shape)]
    _fill_pattern(base)
    assert out.shape == tuple(shape)
    return base, out


def _zero_stride_writable(n, dtype):
    """(base, out): a writable length-n view of one element (no memory for n elements)."""
    base = np.empty(1, dtype)
    _fill_pattern(base)
    return base, as_strided(base, shape=(n,), strides=(0,))


def _logits(shape, dtype, seed=1):
    return random_logits(shape, dtype, seed)


def _rng(counter=C0):
    return gs.Philox(SEED, counter=counter)


def _exhausted():
    r = gs.Philox(SEED, counter=END - 1)
    r.reserve(1)
    assert r.counter == END
    return r


class _ArrayBoom:
    """An array-like whose conversion raises."""

    def __array__(self, *args, **kwargs):
        raise RuntimeError("array conversion boom")


def assert_untouched(exc, match, call, guard, rng):
    """call() raises exc with `match` in its message; the arrays in guard keep every
    byte and rng (if any) its counter."""
    before = [np.array(g, copy=True).tobytes() for g in guard]
    counter = rng.counter if rng is not None else None
    with pytest.raises(exc) as info:
        call()
    if match is not None:
        assert match in str(info.value), f"message {str(info.value)!r} lacks {match!r}"
    for i, (g, b) in enumerate(zip(guard, before)):
        assert np.array(g, copy=True).tobytes() == b, f"guarded array {i} was written"
    if rng is not None:
        assert rng.counter == counter, "rows were reserved by a rejected call"


# --------------------------------------------------------------------------------------
# gumbel_softmax: each case maps (dtype, layout) -> (logits, kwargs, guard, rng)
# --------------------------------------------------------------------------------------
def _std(dtype, layout, shape=SHAPE):
    x = _logits(shape, dtype)
    base, out = _out_view(shape, dtype, layout)
    return x, out, base, _rng()


def _fwd(**kw):
    """A case with valid logits and out and the keyword arguments kw (values may be
    callables of the rng, for rng-dependent arguments)."""

    def make(dtype, layout):
        x, out, base, rng = _std(dtype, layout)
        args = dict(tau=0.5, rng=rng, out=out)
        args.update(kw)
        return x, args, [base, x], rng

    return make


def _fwd_logits(make_x, out_shape=SHAPE):
    def make(dtype, layout):
        base, out = _out_view(out_shape, dtype, layout)
        rng = _rng()
        return make_x(dtype), dict(tau=0.5, rng=rng, out=out), [base], rng

    return make


def _fwd_out(make_out):
    def make(dtype, layout):
        x = _logits(SHAPE, dtype)
        base, out = make_out(dtype, layout)
        rng = _rng()
        return x, dict(tau=0.5, rng=rng, out=out), [base, x], rng

    return make


def _readonly(dtype, layout):
    base, out = _out_view(SHAPE, dtype, layout)
    out.setflags(write=False)
    return base, out


def _other_dtype(dtype, layout):
    return _out_view(SHAPE, np.float64 if dtype == np.float32 else np.float32, layout)


def _fwd_overlap(dtype, layout):
    base = np.empty(36 if layout == "contiguous" else 72, dtype)
    _fill_pattern(base)
    step = 1 if layout == "contiguous" else 2
    x = base[: 35 * step : step].reshape(SHAPE)
    out = base[step : 36 * step : step].reshape(SHAPE)
    rng = _rng()
    return x, dict(tau=0.5, rng=rng, out=out), [base], rng


def _fwd_rng(make_rng, rows_shape=SHAPE):
    def make(dtype, layout):
        x, out, base, _ = _std(dtype, layout, rows_shape)
        rng = make_rng()
        return (
            x,
            dict(tau=0.5, rng=rng, out=out),
            [base, x],
            (rng if isinstance(rng, gs.Philox) else None),
        )

    return make


def _fwd_in_place_overflow(dtype, layout):
    base, x = _out_view(SHAPE, dtype, layout)
    x[...] = _logits(SHAPE, dtype)
    rng = gs.Philox(SEED, counter=END - 4)  # 5 rows needed, 4 left
    return x, dict(tau=0.5, rng=rng, out=x), [base], rng


def _fwd_long_row(dtype, layout):
    x = np.broadcast_to(dtype(0.0), (2**31,))
    base, out = _zero_stride_writable(2**31, dtype)
    rng = _rng()
    return x, dict(tau=0.5, rng=rng, out=out), [base], rng


def _fwd_size0_axis(dtype, layout):
    x = np.zeros((5, 0), dtype)
    out = np.empty((5, 0), dtype)
    rng = _rng()
    return x, dict(tau=0.5, rng=rng, out=out), [], rng


FWD_CASES = {
    # name: (exception, text the message must contain, make)
    "tau=0": (ValueError, "tau", _fwd(tau=0.0)),
    "tau=-1": (ValueError, "tau", _fwd(tau=-1)),
    "tau=nan": (ValueError, "tau", _fwd(tau=float("nan"))),
    "tau=inf": (ValueError, "tau", _fwd(tau=np.inf)),
    "tau=str": (TypeError, "tau", _fwd(tau="0.5")),
    "tau=complex": (TypeError, "tau", _fwd(tau=0.5 + 0j)),
    "tau=bool": (TypeError, "tau", _fwd(tau=True)),
    "tau=array-shape": (ValueError, "tau", _fwd(tau=np.array([0.5, 0.5]))),
    "tau=array-zero": (ValueError, "tau", _fwd(tau=np.array([0.5, 0.5, 0.0, 0.5, 0.5]))),
    "tau=array-str": (TypeError, "tau", _fwd(tau=np.array(["0.5"] * 5))),
    "mask=int": (TypeError, "mask", _fwd(mask=np.ones(SHAPE, dtype=np.int8))),
    "mask=shape": (ValueError, "mask", _fwd(mask=np.ones((5, 6), dtype=bool))),
    "tau=None": (TypeError, "tau", _fwd(tau=None)),
    "logits=complex": (
        TypeError,
        "logits",
        _fwd_logits(lambda dt: _logits(SHAPE, dt).astype(np.complex128)),
    ),
    "logits=complex64": (
        TypeError,
        "logits",
        _fwd_logits(lambda dt: _logits(SHAPE, dt).astype(np.complex64)),
    ),
    "logits=object": (
        TypeError,
        "logits",
        _fwd_logits(lambda dt: _logits(SHAPE, dt).astype(object)),
    ),
    "logits=str": (TypeError, "logits", _fwd_logits(lambda dt: _logits(SHAPE, dt).astype(str))),
    "logits=0d": (ValueError, "logits", _fwd_logits(lambda dt: np.array(1.0, dt), ())),
    "logits=array-raises": (RuntimeError, "boom", _fwd_logits(lambda dt: _ArrayBoom())),
    "logits=row>2**31-1": (ValueError, "logits", _fwd_long_row),
    "axis=2": (np.exceptions.AxisError, "axis", _fwd(axis=2)),
    "axis=-3": (np.exceptions.AxisError, "axis", _fwd(axis=-3)),
    "axis=1.5": (TypeError, "axis", _fwd(axis=1.5)),
    "axis=None": (TypeError, "axis", _fwd(axis=None)),
    "axis=str": (TypeError, "axis", _fwd(axis="0")),
    "axis=size0": (ValueError, "axis", _fwd_size0_axis),
    "out=shape": (ValueError, "out", _fwd_out(lambda dt, lay: _out_view((7, 5), dt, lay))),
    "out=ndim": (ValueError, "out", _fwd_out(lambda dt, lay: _out_view((1, 5, 7), dt, lay))),
    "out=dtype": (ValueError, "out", _fwd_out(_other_dtype)),
    "out=int": (ValueError, "out", _fwd_out(lambda dt, lay: _out_view(SHAPE, np.int64, lay))),
    "out=readonly": (ValueError, "out", _fwd_out(_readonly)),
    "out=overlap": (ValueError, "out", _fwd_overlap),
    "out=list": (TypeError, "out", _fwd(out=[[0.0] * 7] * 5)),
    "rng=str": (TypeError, "rng", _fwd_rng(lambda: "123")),
    "rng=float": (TypeError, "rng", _fwd_rng(lambda: 1.0)),
    "rng=bool": (TypeError, "rng", _fwd_rng(lambda: True)),
    "rng=RandomState": (TypeError, "rng", _fwd_rng(lambda: np.random.RandomState(0))),
    "seed=-1": (ValueError, "seed", _fwd_rng(lambda: -1)),
    "seed=2**64": (ValueError, "seed", _fwd_rng(lambda: 2**64)),
    "counter-overflow": (
        OverflowError,
        "counter",
        _fwd_rng(lambda: gs.Philox(SEED, counter=END - 4)),
    ),
    "counter-exhausted": (OverflowError, "counter", _fwd_rng(_exhausted)),
    "counter-overflow-in-place": (OverflowError, "counter", _fwd_in_place_overflow),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "hard,return_soft",
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["soft", "hard", "soft+return_soft", "hard+return_soft"],
)
@pytest.mark.parametrize("case", list(FWD_CASES))
def test_gumbel_softmax_rejects_and_writes_nothing(case, hard, return_soft, dtype, layout):
    exc, match, make = FWD_CASES[case]
    x, kw, guard, rng = make(dtype, layout)
    assert_untouched(
        exc,
        match,
        lambda: gs.gumbel_softmax(x, hard=hard, return_soft=return_soft, **kw),
        guard,
        rng,
    )
    if (
        kw.get("axis", -1) == -1
        and isinstance(x, np.ndarray)
        and x.ndim == 2
        and isinstance(kw["out"], np.ndarray)
        and not case.startswith("out=")
    ):
        # the same with the rows along axis 0 (strided rows of a transposed out)
        out_t = kw["out"].T
        kw_t = dict(kw, out=out_t, axis=0)
        assert_untouched(
            exc,
            match,
            lambda: gs.gumbel_softmax(x.T, hard=hard, return_soft=return_soft, **kw_t),
            guard,
            rng,
        )


@pytest.mark.parametrize("flag", ["hard", "return_soft"])
def test_uninterpretable_flags_write_nothing(flag):
    """A flag that is not a bool raises TypeError naming it: nothing is written or
    reserved."""
    x, out, base, rng = _std(np.float64, "strided")
    assert_untouched(
        TypeError,
        flag,
        lambda: gs.gumbel_softmax(x, rng=rng, out=out, **{flag: np.array([1, 0])}),
        [base, x],
        rng,
    )


# --------------------------------------------------------------------------------------
# gumbel_softmax_backward
# --------------------------------------------------------------------------------------
def _bwd_std(dtype, layout, shape=SHAPE):
    gy = _logits(shape, dtype, seed=2)
    ys = _logits(shape, dtype, seed=3)
    base, out = _out_view(shape, dtype, layout)
    return gy, ys, out, base


def _bwd(**kw):
    def make(dtype, layout):
        gy, ys, out, base = _bwd_std(dtype, layout)
        args = dict(tau=0.5, out=out)
        args.update(kw)
        return gy, ys, args, [base, gy, ys]

    return make


def _bwd_inputs(make_gy, make_ys, out_shape=SHAPE):
    def make(dtype, layout):
        base, out = _out_view(out_shape, dtype, layout)
        gy, ys = make_gy(dtype), make_ys(dtype)
        guard = [base] + [a for a in (gy, ys) if isinstance(a, np.ndarray)]
        return gy, ys, dict(tau=0.5, out=out), guard

    return make


def _bwd_out(make_out):
    def make(dtype, layout):
        gy, ys, _, _ = _bwd_std(dtype, layout)
        base, out = make_out(dtype, layout)
        return gy, ys, dict(tau=0.5, out=out), [base, gy, ys]

    return make


def _bwd_overlap(which):
    def make(dtype, layout):
        step = 1 if layout == "contiguous" else 2
        base = np.empty(2 * 35 * step + step, dtype)
        _fill_pattern(base)
        a = base[: 70 * step : step].reshape(2, *SHAPE)
        gy, ys = a[0], a[1]
        start = 1 if which == "grad_y" else 36
        out = base[start * step : (start + 35) * step : step].reshape(SHAPE)
        return gy, ys, dict(tau=0.5, out=out), [base]

    return make


def _bwd_long_row(dtype, layout):
    gy = np.broadcast_to(dtype(0.0), (2**31,))
    base, out = _zero_stride_writable(2**31, dtype)
    return gy, gy, dict(tau=0.5, out=out), [base]


BWD_CASES = {
    "tau=0": (ValueError, "tau", _bwd(tau=0.0)),
    "tau=nan": (ValueError, "tau", _bwd(tau=float("nan"))),
    "tau=-inf": (ValueError, "tau", _bwd(tau=-np.inf)),
    "tau=str": (TypeError, "tau", _bwd(tau="1")),
    "tau=bool": (TypeError, "tau", _bwd(tau=False)),
    "grad_y=complex": (
        TypeError,
        "grad_y",
        _bwd_inputs(
            lambda dt: _logits(SHAPE, dt).astype(np.complex64), lambda dt: _logits(SHAPE, dt)
        ),
    ),
    "y_soft=object": (
        TypeError,
        "y_soft",
        _bwd_inputs(lambda dt: _logits(SHAPE, dt), lambda dt: _logits(SHAPE, dt).astype(object)),
    ),
    "y_soft=complex64": (
        TypeError,
        "y_soft",
        _bwd_inputs(
            lambda dt: _logits(SHAPE, dt), lambda dt: _logits(SHAPE, dt).astype(np.complex64)
        ),
    ),
    "grad_y=array-raises": (
        RuntimeError,
        "boom",
        _bwd_inputs(lambda dt: _ArrayBoom(), lambda dt: _logits(SHAPE, dt)),
    ),
    "shapes-differ": (
        ValueError,
        "y_soft",
        _bwd_inputs(lambda dt: _logits(SHAPE, dt), lambda dt: _logits((5, 6), dt)),
    ),
    "shapes-transposed": (
        ValueError,
        "y_soft",
        _bwd_inputs(lambda dt: _logits(SHAPE, dt), lambda dt: _logits((7, 5), dt)),
    ),
    "grad_y=0d": (
        ValueError,
        "grad_y",
        _bwd_inputs(lambda dt: np.array(1.0, dt), lambda dt: np.array(1.0, dt), ()),
    ),
    "grad_y=row>2**31-1": (ValueError, "grad_y", _bwd_long_row),
    "axis=2": (np.exceptions.AxisError, "axis", _bwd(axis=2)),
    "axis=1.5": (TypeError, "axis", _bwd(axis=1.5)),
    "out=shape": (ValueError, "out", _bwd_out(lambda dt, lay: _out_view((5, 6), dt, lay))),
    "out=dtype": (ValueError, "out", _bwd_out(_other_dtype)),
    "out=readonly": (ValueError, "out", _bwd_out(_readonly)),
    "out=overlap-grad_y": (ValueError, "out", _bwd_overlap("grad_y")),
    "out=overlap-y_soft": (ValueError, "out", _bwd_overlap("y_soft")),
    "out=list": (TypeError, "out", _bwd(out=[[0.0] * 7] * 5)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(BWD_CASES))
def test_backward_rejects_and_writes_nothing(case, dtype, layout):
    exc, match, make = BWD_CASES[case]
    gy, ys, kw, guard = make(dtype, layout)
    assert_untouched(exc, match, lambda: gs.gumbel_softmax_backward(gy, ys, **kw), guard, None)


# --------------------------------------------------------------------------------------
# gumbel_rao_backward and reinmax_backward: each case maps (dtype, layout) -> kwargs
# --------------------------------------------------------------------------------------
def _est(**kw):
    """Valid arguments of both estimators (rng for Gumbel-Rao only) updated with kw
    (values may be callables of the dtype)."""

    def make(fn, dtype, layout):
        base, out = _out_view(SHAPE, dtype, layout)
        x, gy = _logits(SHAPE, dtype), _logits(SHAPE, dtype, seed=2)
        yh = np.eye(SHAPE[1], dtype=dtype)[np.arange(SHAPE[0]) % SHAPE[1]]
        args = dict(grad_y=gy, logits=x, y_hard=yh, tau=1.5, out=out)
        rng = _rng() if fn == "gumbel_rao_backward" else None
        if rng is not None:
            args["rng"] = rng
        args.update({k: v(dtype) if callable(v) else v for k, v in kw.items()})
        if isinstance(args.get("rng"), gs.Philox):
            rng = args["rng"]
        guard = [base] + [a for a in args.values() if isinstance(a, np.ndarray) and a is not out]
        return args, guard, rng

    return make


def _est_out(make_out):
    def make(fn, dtype, layout):
        args, guard, rng = _est()(fn, dtype, layout)
        out_base, out = make_out(dtype, layout)
        args["out"] = out
        return args, guard[1:] + [out_base], rng

    return make


def _est_overlapping(fn, dtype, layout):
    args, guard, rng = _est()(fn, dtype, layout)
    step = 1 if layout == "contiguous" else 2
    buf = np.empty(36 * step, dtype)
    _fill_pattern(buf)
    gy = buf[: 35 * step : step].reshape(SHAPE)
    gy[...] = args["grad_y"]
    args["grad_y"] = gy
    args["out"] = buf[step : 36 * step : step].reshape(SHAPE)
    return args, [buf] + guard[2:], rng


def _not_one_hot(dtype):
    return np.full(SHAPE, 0.2, dtype)


BOTH = ("gumbel_rao_backward", "reinmax_backward")
GR = ("gumbel_rao_backward",)
EST_CASES = {
    "tau=0": (BOTH, ValueError, "tau", _est(tau=0.0)),
    "tau=nan": (BOTH, ValueError, "tau", _est(tau=float("nan"))),
    "tau=str": (BOTH, TypeError, "tau", _est(tau="1")),
    "tau=rows-shape": (BOTH, ValueError, "tau", _est(tau=np.ones(4))),
    "grad_y=complex": (BOTH, TypeError, "grad_y", _est(grad_y=lambda dt: np.ones(SHAPE, complex))),
    "logits=object": (BOTH, TypeError, "logits", _est(logits=lambda dt: np.ones(SHAPE, object))),
    "y_hard=shape": (BOTH, ValueError, "y_hard", _est(y_hard=lambda dt: np.ones((5, 6), dt))),
    "logits=array-raises": (BOTH, RuntimeError, "boom", _est(logits=_ArrayBoom())),
    "axis=2": (BOTH, np.exceptions.AxisError, "axis", _est(axis=2)),
    "axis=1.5": (BOTH, TypeError, "axis", _est(axis=1.5)),
    "out=shape": (BOTH, ValueError, "out", _est_out(lambda dt, lay: _out_view((5, 6), dt, lay))),
    "out=dtype": (BOTH, ValueError, "out", _est_out(_other_dtype)),
    "out=readonly": (BOTH, ValueError, "out", _est_out(_readonly)),
    "out=list": (BOTH, TypeError, "out", _est(out=[[0.0] * 7] * 5)),
    "out=overlap-grad_y": (BOTH, ValueError, "out", _est_overlapping),
    "y_hard=not-one-hot": (GR, ValueError, "y_hard", _est(y_hard=_not_one_hot)),
    "samples=0": (GR, ValueError, "samples", _est(samples=0)),
    "samples=float": (GR, TypeError, "samples", _est(samples=2.0)),
    "mask=int": (GR, TypeError, "mask", _est(mask=np.ones(SHAPE, int))),
    "rng=str": (GR, TypeError, "rng", _est(rng="1")),
    "counter-overflow": (GR, OverflowError, "counter", _est(rng=_rng(END - 4))),
    "tau=0.5": (("reinmax_backward",), ValueError, "tau", _est(tau=0.5)),
    "grad_p=shape": (
        ("reinmax_backward",),
        ValueError,
        "grad_p",
        _est(grad_p=lambda dt: np.ones((5, 6), dt)),
    ),
    "grad_p=complex": (
        ("reinmax_backward",),
        TypeError,
        "grad_p",
        _est(grad_p=lambda dt: np.ones(SHAPE, complex)),
    ),
}
EST_PARAMS = [(fn, case) for case, (fns, *_) in EST_CASES.items() for fn in fns]
# relaxed_top_k: the same table, and its k
# --------------------------------------------------------------------------------------
SUBSET_CASES = dict(
    FWD_CASES,
    **{
        "k=0": (ValueError, "k", _fwd(k=0)),
        "k=8": (ValueError, "k", _fwd(k=8)),
        "k=-1": (ValueError, "k", _fwd(k=-1)),
        "k=1.5": (TypeError, "k", _fwd(k=1.5)),
        "k=bool": (TypeError, "k", _fwd(k=True)),
    },
)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("fn,case", EST_PARAMS, ids=[f"{f}-{c}" for f, c in EST_PARAMS])
def test_estimators_reject_and_write_nothing(fn, case, dtype, layout):
    _, exc, match, make = EST_CASES[case]
    args, guard, rng = make(fn, dtype, layout)
    assert_untouched(exc, match, lambda: getattr(gs, fn)(**args), guard, rng)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize(
    "hard,return_soft",
    [(False, False), (True, False), (True, True)],
    ids=["soft", "hard", "hard+return_soft"],
)
@pytest.mark.parametrize("case", list(SUBSET_CASES))
def test_relaxed_top_k_rejects_and_writes_nothing(case, hard, return_soft, dtype, layout):
    exc, match, make = SUBSET_CASES[case]
    x, kw, guard, rng = make(dtype, layout)
    kw = dict(kw)
    k = kw.pop("k", 2)
    assert_untouched(
        exc,
        match,
        lambda: gs.relaxed_top_k(x, k, hard=hard, return_soft=return_soft, **kw),
        guard,
        rng,
    )


def _rbwd(**kw):
    def make(dtype, layout):
        gy, x, out, base = _bwd_std(dtype, layout)
        args = dict(k=2, tau=0.5, rng=_rng(), out=out)
        args.update(kw)
        return gy, x, args, [base, gy, x]

    return make


def _rbwd_inputs(make_gy, make_x, out_shape=SHAPE):
    def make(dtype, layout):
        base, out = _out_view(out_shape, dtype, layout)
        gy, x = make_gy(dtype), make_x(dtype)
        guard = [base] + [a for a in (gy, x) if isinstance(a, np.ndarray)]
        return gy, x, dict(k=2, tau=0.5, rng=_rng(), out=out), guard

    return make


def _rbwd_overlap(which):
    def make(dtype, layout):
        gy, x, args, guard = _bwd_overlap("grad_y" if which == "grad_y" else "y_soft")(
            dtype, layout
        )
        return gy, x, dict(args, k=2, rng=_rng()), guard

    return make


SUBSET_BWD_CASES = {
    "tau=0": (ValueError, "tau", _rbwd(tau=0.0)),
    "tau=str": (TypeError, "tau", _rbwd(tau="1")),
    "tau=array-shape": (ValueError, "tau", _rbwd(tau=np.ones(3))),
    "k=0": (ValueError, "k", _rbwd(k=0)),
    "k=8": (ValueError, "k", _rbwd(k=8)),
    "k=1.5": (TypeError, "k", _rbwd(k=1.5)),
    "rng=None": (ValueError, "rng", _rbwd(rng=None)),
    "rng=str": (TypeError, "rng", _rbwd(rng="1")),
    "mask=int": (TypeError, "mask", _rbwd(mask=np.ones(SHAPE, np.int8))),
    "grad_y=complex": (
        TypeError,
        "grad_y",
        _rbwd_inputs(
            lambda dt: _logits(SHAPE, dt).astype(np.complex64), lambda dt: _logits(SHAPE, dt)
        ),
    ),
    "logits=object": (
        TypeError,
        "logits",
        _rbwd_inputs(lambda dt: _logits(SHAPE, dt), lambda dt: _logits(SHAPE, dt).astype(object)),
    ),
    "shapes-differ": (
        ValueError,
        "logits",
        _rbwd_inputs(lambda dt: _logits(SHAPE, dt), lambda dt: _logits((5, 6), dt)),
    ),
    "logits=0d": (
        ValueError,
        "logits",
        _rbwd_inputs(lambda dt: np.array(1.0, dt), lambda dt: np.array(1.0, dt), ()),
    ),
    "axis=2": (np.exceptions.AxisError, "axis", _rbwd(axis=2)),
    "axis=1.5": (TypeError, "axis", _rbwd(axis=1.5)),
    "out=shape": (ValueError, "out", _bwd_out(lambda dt, lay: _out_view((5, 6), dt, lay))),
    "out=dtype": (ValueError, "out", _bwd_out(_other_dtype)),
    "out=readonly": (ValueError, "out", _bwd_out(_readonly)),
    "out=overlap-grad_y": (ValueError, "out", _rbwd_overlap("grad_y")),
    "out=overlap-logits": (ValueError, "out", _rbwd_overlap("logits")),
    "out=list": (TypeError, "out", _rbwd(out=[[0.0] * 7] * 5)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(SUBSET_BWD_CASES))
def test_relaxed_top_k_backward_rejects_and_writes_nothing(case, dtype, layout):
    """The backward never advances rng (it replays the forward's rows from a copy); a
    rejected call writes nothing either."""
    exc, match, make = SUBSET_BWD_CASES[case]
    gy, x, kw, guard = make(dtype, layout)
    kw = dict(kw)
    k = kw.pop("k", 2)
    kw.setdefault("rng", _rng())
    rng = kw["rng"] if isinstance(kw["rng"], gs.Philox) else None
    assert_untouched(exc, match, lambda: gs.relaxed_top_k_backward(gy, x, k, **kw), guard, rng)


# --------------------------------------------------------------------------------------
# gumbel
# --------------------------------------------------------------------------------------
def _gum(shape=SHAPE, out_shape=None, out_dtype=None, readonly=False, rng=None, **kw):
    def make(dtype, layout):
        base, out = _out_view(
            SHAPE if out_shape is None else out_shape,
            dtype if out_dtype is None else out_dtype,
            layout,
        )
        if readonly:
            out.setflags(write=False)
        r = _rng() if rng is None else rng()
        args = dict(rng=r, out=out)
        args.update(kw)
        return shape, args, [base], r if isinstance(r, gs.Philox) else None

    return make


def _gum_long_row(dtype, layout):
    base, out = _zero_stride_writable(2**31, dtype)
    rng = _rng()
    return (1, 2**31), dict(rng=rng, out=out.reshape(1, 2**31)), [base], rng


def _gum_dtype_mismatch(dtype, layout):
    """dtype= contradicts out.dtype."""
    other = np.float64 if dtype == np.float32 else np.float32
    return _gum(dtype=other)(dtype, layout)


GUMBEL_CASES = {
    "shape=negative": (ValueError, "shape", _gum(shape=(5, -7))),
    "shape=0d": (ValueError, "shape", _gum(shape=(), out_shape=())),
    "shape=float": (TypeError, "shape", _gum(shape=(5, 7.0))),
    "shape=None": (TypeError, "shape", _gum(shape=None)),
    "shape=row>2**31-1": (ValueError, "shape", _gum_long_row),
    "dtype=int32": (TypeError, "dtype", _gum(dtype=np.int32, out_dtype=np.int32)),
    "dtype=complex64": (TypeError, "dtype", _gum(dtype=np.complex64, out_dtype=np.complex64)),
    "dtype=str": (TypeError, "dtype", _gum(dtype="U4")),
    "dtype=bogus": (TypeError, "dtype", _gum(dtype="not-a-dtype")),
    "out=shape": (ValueError, "out", _gum(out_shape=(7, 5))),
    "out=readonly": (ValueError, "out", _gum(readonly=True)),
    "out=dtype-mismatch": (ValueError, "out", _gum_dtype_mismatch),
    "out=list": (TypeError, "out", _gum(out=[[0.0] * 7] * 5)),
    "rng=str": (TypeError, "rng", _gum(rng=lambda: "1")),
    "seed=-1": (ValueError, "seed", _gum(rng=lambda: -1)),
    "counter-overflow": (
        OverflowError,
        "counter",
        _gum(rng=lambda: gs.Philox(SEED, counter=END - 4)),
    ),
    "counter-exhausted": (OverflowError, "counter", _gum(rng=_exhausted)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(GUMBEL_CASES))
def test_gumbel_rejects_and_writes_nothing(case, dtype, layout):
    exc, match, make = GUMBEL_CASES[case]
    shape, kw, guard, rng = make(dtype, layout)
    assert_untouched(exc, match, lambda: gs.gumbel(shape, **kw), guard, rng)


# --------------------------------------------------------------------------------------
# conditional_gumbel: each case maps (dtype, layout) -> (logits, kwargs, guard, rng)
# --------------------------------------------------------------------------------------
IDX = np.array([0, 6, 3, 1, 2])  # one index per row of SHAPE


def _cond(**kw):
    def make(dtype, layout):
        x, out, base, rng = _std(dtype, layout)
        args = dict(index=IDX.copy(), rng=rng, out=out)
        args.update(kw)
        guard = [base, x] + [a for a in (args["index"],) if isinstance(a, np.ndarray)]
        return x, args, guard, rng

    return make


def _cond_logits(make_x, index=IDX, out_shape=SHAPE):
    def make(dtype, layout):
        base, out = _out_view(out_shape, dtype, layout)
        rng = _rng()
        return make_x(dtype), dict(index=index, rng=rng, out=out), [base], rng

    return make


def _cond_out(make_out):
    def make(dtype, layout):
        x = _logits(SHAPE, dtype)
        base, out = make_out(dtype, layout)
        rng = _rng()
        return x, dict(index=IDX, rng=rng, out=out), [base, x], rng

    return make


def _cond_masked(dtype, layout):
    x, kw, guard, rng = _cond()(dtype, layout)
    x[2, 3] = -np.inf  # the logit row 2's index points at
    return x, kw, guard, rng


def _cond_overlap(dtype, layout):
    x, kw, guard, rng = _fwd_overlap(dtype, layout)
    return x, dict(index=IDX, rng=rng, out=kw["out"]), guard, rng


def _cond_overlap_index(dtype, layout):
    """out shares bytes with index (int64 inside a float buffer)."""
    step = 1 if layout == "contiguous" else 2
    base = np.empty(36 * step, np.float64)
    _fill_pattern(base)
    out = base[: 35 * step : step].reshape(SHAPE)
    idx = base[4 : 4 + 5].view(np.int64)
    idx[:] = IDX
    x = _logits(SHAPE, np.float64)
    rng = _rng()
    return x, dict(index=idx, rng=rng, out=out), [base, x], rng


def _cond_in_place_overflow(dtype, layout):
    x, kw, guard, rng = _fwd_in_place_overflow(dtype, layout)
    return x, dict(index=IDX, rng=rng, out=x), guard, rng


def _cond_rng(make_rng):
    def make(dtype, layout):
        x, out, base, _ = _std(dtype, layout)
        rng = make_rng()
        kw = dict(index=IDX, rng=rng, out=out)
        return x, kw, [base, x], (rng if isinstance(rng, gs.Philox) else None)

    return make


def _cond_long_row(dtype, layout):
    x = np.broadcast_to(dtype(0.0), (2**31,))
    base, out = _zero_stride_writable(2**31, dtype)
    rng = _rng()
    return x, dict(index=np.int64(0), rng=rng, out=out), [base], rng


COND_CASES = {
    "index=float": (TypeError, "index", _cond(index=IDX.astype(np.float64))),
    "index=bool": (TypeError, "index", _cond(index=IDX > 2)),
    "index=shape": (ValueError, "index", _cond(index=IDX[:4])),
    "index=ndim": (ValueError, "index", _cond(index=IDX[None])),
    "index=7": (IndexError, "index", _cond(index=np.array([0, 7, 3, 1, 2]))),
    "index=-1": (IndexError, "index", _cond(index=np.array([0, 6, -1, 1, 2]))),
    "index=masked": (ValueError, "index", _cond_masked),
    "index=array-raises": (RuntimeError, "boom", _cond(index=_ArrayBoom())),
    "index=None": (TypeError, "index", _cond(index=None)),
    "logits=complex": (
        TypeError,
        "logits",
        _cond_logits(lambda dt: _logits(SHAPE, dt).astype(np.complex128)),
    ),
    "logits=str": (TypeError, "logits", _cond_logits(lambda dt: _logits(SHAPE, dt).astype(str))),
    "logits=0d": (ValueError, "logits", _cond_logits(lambda dt: np.array(1.0, dt), 0, ())),
    "logits=array-raises": (RuntimeError, "boom", _cond_logits(lambda dt: _ArrayBoom())),
    "logits=row>2**31-1": (ValueError, "logits", _cond_long_row),
    "axis=2": (np.exceptions.AxisError, "axis", _cond(axis=2)),
    "axis=1.5": (TypeError, "axis", _cond(axis=1.5)),
    "axis=None": (TypeError, "axis", _cond(axis=None)),
    "out=shape": (ValueError, "out", _cond_out(lambda dt, lay: _out_view((7, 5), dt, lay))),
    "out=dtype": (ValueError, "out", _cond_out(_other_dtype)),
    "out=int": (ValueError, "out", _cond_out(lambda dt, lay: _out_view(SHAPE, np.int64, lay))),
    "out=readonly": (ValueError, "out", _cond_out(_readonly)),
    "out=overlap": (ValueError, "out", _cond_overlap),
    "out=overlap-index": (ValueError, "index", _cond_overlap_index),
    "out=list": (TypeError, "out", _cond(out=[[0.0] * 7] * 5)),
    "rng=str": (TypeError, "rng", _cond_rng(lambda: "123")),
    "rng=bool": (TypeError, "rng", _cond_rng(lambda: True)),
    "seed=-1": (ValueError, "seed", _cond_rng(lambda: -1)),
    "counter-overflow": (
        OverflowError,
        "counter",
        _cond_rng(lambda: gs.Philox(SEED, counter=END - 4)),
    ),
    "counter-exhausted": (OverflowError, "counter", _cond_rng(_exhausted)),
    "counter-overflow-in-place": (OverflowError, "counter", _cond_in_place_overflow),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("case", list(COND_CASES))
def test_conditional_gumbel_rejects_and_writes_nothing(case, dtype, layout):
    exc, match, make = COND_CASES[case]
    x, kw, guard, rng = make(dtype, layout)
    assert_untouched(exc, match, lambda: gs.conditional_gumbel(x, **kw), guard, rng)
    if (
        kw.get("axis", -1) == -1
        and isinstance(x, np.ndarray)
        and x.ndim == 2
        and isinstance(kw["out"], np.ndarray)
        and not case.startswith("out=")
    ):
        # the same with the rows along axis 0 (strided rows of a transposed out)
        kw_t = dict(kw, out=kw["out"].T, axis=0)
        assert_untouched(exc, match, lambda: gs.conditional_gumbel(x.T, **kw_t), guard, rng)


# --------------------------------------------------------------------------------------
# Philox.reserve
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n,exc",
    [
        (-1, ValueError),
        (2**64, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        (None, TypeError),
        ("2", TypeError),
    ],
    ids=repr,
)
@pytest.mark.parametrize("counter", [0, C0, END - 1, END], ids=["0", "C0", "2**64-1", "2**64"])
def test_reserve_bad_n_reserves_nothing(n, exc, counter):
    rng = _exhausted() if counter == END else gs.Philox(SEED, counter=counter)
    assert_untouched(exc, "n", lambda: rng.reserve(n), [], rng)


# --------------------------------------------------------------------------------------
# the end of the stream
# --------------------------------------------------------------------------------------
def _x(shape, dtype):
    return _logits(shape, dtype, seed=7)


# name -> (fn(rng, R) performing a call on R rows and returning its arrays)
CONSUMERS = {
    "soft": lambda rng, R, dt: (gs.gumbel_softmax(_x((R, 6), dt), 0.5, rng=rng),),
    "hard": lambda rng, R, dt: (gs.gumbel_softmax(_x((R, 6), dt), 0.5, hard=True, rng=rng),),
    "hard+return_soft": lambda rng, R, dt: gs.gumbel_softmax(
        _x((R, 6), dt), 0.5, hard=True, return_soft=True, rng=rng
    ),
    "soft+return_soft+out": lambda rng, R, dt: gs.gumbel_softmax(
        _x((R, 6), dt), 0.5, return_soft=True, rng=rng, out=np.empty((R, 6), dt)
    ),
    "axis0": lambda rng, R, dt: (gs.gumbel_softmax(_x((6, R), dt), 0.5, axis=0, rng=rng),),
    "3d": lambda rng, R, dt: (gs.gumbel_softmax(_x((R, 1, 6), dt), 0.5, rng=rng),),
    "gumbel": lambda rng, R, dt: (gs.gumbel((R, 6), dtype=dt, rng=rng),),
    "gumbel-out": lambda rng, R, dt: (gs.gumbel((R, 6), rng=rng, out=np.empty((R, 6), dt)),),
    "reserve": lambda rng, R, dt: (np.array(rng.reserve(R), dtype=object),),
    "conditional": lambda rng, R, dt: (
        gs.conditional_gumbel(_x((R, 6), dt), np.arange(R) % 6, rng=rng),
    ),
    "conditional-axis0-out": lambda rng, R, dt: (
        gs.conditional_gumbel(
            _x((6, R), dt), np.arange(R) % 6, axis=0, rng=rng, out=np.empty((6, R), dt)
        ),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("R", [1, 3])
@pytest.mark.parametrize("kind", list(CONSUMERS))
def test_exact_end_of_stream(kind, R, dtype):
    """R rows at counter 2**64 - R succeed (the last row is q = 2**64 - 1) and leave the
    counter at exactly 2**64, giving what the same call gives from a generator with
    room to spare; at 2**64 - R + 1 the same call raises and reserves nothing."""
    fn = CONSUMERS[kind]
    rng = gs.Philox(SEED, counter=END - R)
    got = fn(rng, R, dtype)
    assert rng.counter == END
    if kind == "reserve":
        assert got[0][()] == END - R
    else:
        for a in got:
            assert np.all(np.isfinite(a))
    if kind == "gumbel":
        ref = gumbel_ref(SEED, END - R, (R, 6), dtype)
        assert np.all(np.abs(got[0] - ref) <= noise_tol(ref, dtype))
    # one row too many
    late = gs.Philox(SEED, counter=END - R + 1) if R > 1 else _exhausted()
    with pytest.raises(OverflowError) as info:
        fn(late, R, dtype)
    msg = str(info.value)
    assert "counter" in msg and "2**64" in msg, msg
    assert late.counter == END - R + 1
    # one row fewer still fits
    if R > 1:
        fn(late, R - 1, dtype)
        assert late.counter == END


@pytest.mark.parametrize("dtype", DTYPES, ids=DT_IDS)
@pytest.mark.parametrize("kind", list(CONSUMERS))
def test_exhausted_generator(kind, dtype):
    """At counter 2**64 every call with at least one row raises OverflowError naming
    the counter; calls with no rows still work; the state survives copy and pickle."""
    fn = CONSUMERS[kind]
    rng = _exhausted()
    for R in (1, 2, 100):
        with pytest.raises(OverflowError, match=r"counter.*2\*\*64"):
            fn(rng, R, dtype)
        assert rng.counter == END
    for r in (copy.copy(rng), copy.deepcopy(rng), pickle.loads(pickle.dumps(rng))):
        assert r == rng and r.counter == END and r.seed == SEED
        with pytest.raises(OverflowError, match="counter"):
            fn(r, 1, dtype)
        assert r.counter == END
    # size-0 batches consume nothing and are fine at the end of the stream
    assert gs.gumbel_softmax(np.zeros((0, 4), dtype), rng=rng).shape == (0, 4)
    assert gs.gumbel((0, 4), dtype=dtype, rng=rng).shape == (0, 4)
    assert rng.counter == END


def test_exhausted_reserve_zero_returns_the_counter():
    """reserve(0) reserves nothing and returns the current counter; at the end of the
    stream that is 2**64."""
    rng = gs.Philox(SEED, counter=END - 2)
    assert rng.reserve(0) == END - 2
    rng.reserve(2)
    assert rng.counter == END
    assert rng.reserve(0) == END


def test_huge_reservations_up_to_the_end():
    """Requests of 2**63 rows and more are valid where they fit."""
    rng = gs.Philox(SEED, counter=5)
    assert rng.reserve(2**63) == 5
    assert rng.counter == 2**63 + 5
    with pytest.raises(OverflowError, match="counter"):
        rng.reserve(2**63)
    assert rng.counter == 2**63 + 5
    assert rng.reserve(2**63 - 5) == 2**63 + 5
    assert rng.counter == END


@pytest.mark.parametrize("n", [2**62, 2**63, 2**64 - 1])
def test_overflow_message_states_the_request(n):
    """The OverflowError for a request past the end names the counter, 2**64 and the
    number of rows asked for."""
    rng = gs.Philox(SEED, counter=2**63 + 2**62 + 5)
    with pytest.raises(OverflowError) as info:
        rng.reserve(n)
    assert rng.counter == 2**63 + 2**62 + 5
    msg = str(info.value)
    assert "counter" in msg and "2**64" in msg
    assert f"reserving {n} rows" in msg, msg
