"""Property-based fuzzing (Hypothesis) of every public function against tests/reference.py.

Each property draws a whole call (shape with ndim 1-5 including size-1
and size-0 batch dimensions, every axis given as a positive or a negative index, float32
or float64 (integer and bool logits too), memory layouts with negative and non-unit
steps, transposes and stride-0 broadcasts, ``out=`` as a fresh array, as a strided view
of a bigger buffer or as the input itself, tau log-uniform over [1e-3, 1e3], seeds over
[0, 2**64) and counters near 0, 2**32, 2**63 and 2**64 minus the rows needed) and
checks the result against the pure-NumPy reference, with the reference's own
tolerances:

==============================  =====================================================
property                        what must hold
==============================  =====================================================
test_fuzz_gumbel_softmax_soft   noise = gumbel_ref within noise_tol; y = softmax_ref
                                within check_forward (see check_sample); counter +
                                rows exactly; ``out`` returned and nothing outside it
                                written; logits untouched; (y, y) for return_soft;
                                bitwise equal to the contiguous ``moveaxis`` call from
                                the same state
test_fuzz_gumbel_softmax_hard   exact one-hot (+0.0 / 1.0) at the first argmax of
                                logits + noise in the dtype; y_soft = the soft sample
                                bitwise and within check_forward; as above otherwise
test_fuzz_other_samplers        on the same calls: categorical = the hard one-hot's
                                position (-1 on NaN rows), counter + rows;
                                conditional_gumbel at categorical's index = the
                                formula from the noise, argmax = index; top_k =
                                stable sort of -(logits + g), -1 slots; log space =
                                float64 log-softmax of the rounded v / tau within
                                8 eps (2 + |log y| + log K), finite, -inf exactly at
                                -inf logits; relaxed_bernoulli hard = [x + L > 0]
test_fuzz_relaxed_top_k         the same calls with k in [1, K]: hard = top_k's k-hot;
                                the relaxed sample finite, >= 0, 0 at -inf, row sums
                                <= k, = relaxed_top_k_ref within relaxed_top_k_tol on
                                the comparable rows; counter + rows; ``out``; bitwise
                                the moveaxis call; the backward: moveaxis, rng kept
test_fuzz_backward              check_backward against backward_ref; result dtype;
                                ``out`` / in place on grad_y or y_soft; inputs
                                untouched; bitwise equal to the contiguous moveaxis call
test_fuzz_estimators            gumbel_rao_backward against the float64 reference from
                                conditional_gumbel's draws of the documented rows,
                                counter + samples * rows; reinmax_backward against the
                                formula; both: ``out`` / in place on grad_y, bitwise
                                equal to the contiguous moveaxis call
test_fuzz_gumbel                gumbel_ref within noise_tol, finite, in the documented
                                range; counter + rows; ``out`` views; any split of the
                                rows into two calls gives the same bits
test_fuzz_philox4x32            bitwise philox4x32_ref for any counter / key dtype,
                                shape (..., 4) and layout; input untouched
test_fuzz_philox_reserve        a model of the counter over random reserve / gumbel /
                                gumbel_softmax calls, up to and past 2**64: start row,
                                counter, OverflowError consuming nothing; seed, key,
                                copy, pickle, ==
test_fuzz_past_the_end          a sampler call whose rows would pass 2**64 raises
                                OverflowError naming the counter, reserves nothing,
                                writes nothing (``out`` checked byte for byte)
test_fuzz_nonnative_byte_order  byte-swapped float32 / float64 logits, backward inputs
                                and ``out`` arrays (gumbel_softmax, gumbel) give the
                                native result bit for bit (or ``out`` is rejected)
==============================  =====================================================

Replaying failures: why ``derandomize=True`` and no example database
---------------------------------------------------------------------
The installed Hypothesis (6.155) does not allow both: ``settings(derandomize=True,
database=...)`` raises ``InvalidArgument`` ("derandomize=True implies database=None").
We choose ``derandomize=True``:

* With it, Hypothesis seeds its generator from a hash of the test function (its source
  and signature), so every run on every machine draws the same ``FUZZ_EXAMPLES``
  examples and shrinks a failure the same way. A failure in CI is therefore the same
  failure on a developer's machine: run ``python -m pytest tests/test_fuzz.py`` with the
  same Hypothesis version (``pip install hypothesis==<version in the CI log>``). The
  array contents come from ``numpy.random.default_rng(seed)`` with a drawn seed, which
  is reproducible as well.
* ``print_blob=True`` makes every failure print ``@reproduce_failure('<version>',
  b'...')``; pasting that decorator onto the test replays exactly that one example.
* A ``DirectoryBasedExampleDatabase`` would not make a CI failure replay: ``.ci/run``
  tests a clean clone in a fresh virtual environment, so what Hypothesis saves there is
  thrown away with the runner; a database committed under ``tests/`` would be
  rewritten by local runs whenever they find or fix a failure (dirty working trees) and
  would still only hold failures found on the machine that ran it. (Hypothesis' own
  ``ci`` profile, loaded when the ``CI`` variable is set, makes the same choice:
  derandomize, no database. The explicit settings below make CI and local runs
  identical whatever the variable.)

The price of derandomizing is that CI never tries new examples. To explore, set
``GUMBEL_SOFTMAX_FUZZ_EXPLORE=1``: then the examples are random on each run and
failures go to Hypothesis' default database (``.hypothesis/``, git-ignored), which
replays them first on the next local run. ``GUMBEL_SOFTMAX_FUZZ_EXAMPLES=N`` changes
the number of examples per property (default ``FUZZ_EXAMPLES``, at least 300 in CI).
``--hypothesis-show-statistics`` lists, per property, the examples run and how often
each feature (layouts, ``out`` modes, size-0 batches, ties, counters at 2**64, ...) was
drawn. (Hypothesis still writes ``.hypothesis/constants`` in the working directory;
``.hypothesis/`` is git-ignored.)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import pickle

import numpy as np
import pytest
from helpers import n_rows
from hypothesis import Phase, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import (
    check_backward,
    check_forward,
    check_one_hot,
    eps_of,
    gumbel_ref,
    noise_tol,
    philox4x32_ref,
    relaxed_top_k_comparable,
    relaxed_top_k_ref,
    relaxed_top_k_tol,
    softmax_ref,
)

# ----------------------------------------------------------------------------- settings
FUZZ_EXAMPLES = 300
_EXPLORE = os.environ.get("GUMBEL_SOFTMAX_FUZZ_EXPLORE", "") not in ("", "0")
_N = int(os.environ.get("GUMBEL_SOFTMAX_FUZZ_EXAMPLES", FUZZ_EXAMPLES))

# No explain phase: on a failure it traces every line run by the variants it tries, which
# took ~50 s here for one failing property, and its notes point into NumPy internals.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
if _EXPLORE:
    FUZZ = settings(
        max_examples=_N, derandomize=False, deadline=None, print_blob=True, phases=_PHASES
    )
else:
    FUZZ = settings(
        max_examples=_N,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        phases=_PHASES,
    )

# When a property fails, Hypothesis' pytest plugin imports libcst (if installed) to offer
# a patch; with mypy_extensions installed that import warns, and pyproject's
# filterwarnings = error would turn the failure report into an INTERNALERROR that stops
# the whole session. The item's own filter covers the report hook.
pytestmark = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

MASK32 = 0xFFFFFFFF
END = 2**64  # the end of the stream: rng.counter may reach it, never pass it
FLOATS = [np.float32, np.float64]
INTS = [np.int8, np.int32, np.int64, np.uint8, np.bool_]
SENTINEL = -7.25  # what a buffer around an ``out`` view is filled with

# Noise range (docs/contract.md "Bits to noise"), with the slack of tests/test_stream.py.
G_RANGE = {
    np.dtype(np.float32): (-np.log(33 * np.log(2.0)) - 1e-5, 33 * np.log(2.0) + 1e-5),
    np.dtype(np.float64): (-np.log(65 * np.log(2.0)) - 1e-12, 65 * np.log(2.0) + 1e-12),
}


# ------------------------------------------------------------------------- strategies
# Largest dimension by ndim: keeps every example below ~4,000 elements.
MAX_SIDE = {1: 48, 2: 12, 3: 6, 4: 4, 5: 3}
# Row lengths around the kernels' 4 / 8 / 16-lane widths and tails.
ROW_LENGTHS = st.one_of(st.integers(1, 9), st.sampled_from([15, 16, 17, 31, 32, 33, 47]))


@st.composite
def shapes_and_axes(draw, min_row=1, last_axis=False):
    """(shape, axis): ndim 1-5, size-1 dims common, a size-0 batch dim now and then,
    the row length from ROW_LENGTHS (or 0 when ``min_row == 0``), ``axis`` positive or
    negative (always the last axis when ``last_axis``)."""
    ndim = draw(st.integers(1, 5))
    ax = ndim - 1 if last_axis else draw(st.integers(0, ndim - 1))
    shape = [draw(st.integers(1, MAX_SIDE[ndim])) for _ in range(ndim)]
    rows = ROW_LENGTHS if min_row > 0 else st.one_of(ROW_LENGTHS, st.just(0))
    shape[ax] = draw(rows)
    batch = [d for d in range(ndim) if d != ax]
    if batch and draw(st.sampled_from([False] * 7 + [True])):  # size-0 batch dim, ~1/8
        shape[draw(st.sampled_from(batch))] = 0
    axis = draw(st.sampled_from([ax, ax - ndim]))
    return tuple(shape), axis


@dataclasses.dataclass(frozen=True)
class Layout:
    """A strided view: ``base[::steps[0], ::steps[1], ...].transpose(perm)``, optionally
    with dimension ``bcast`` broadcast from length 1 (stride 0; read-only)."""

    perm: tuple
    steps: tuple
    bcast: int | None = None

    def base_shape(self, shape):
        inv = np.argsort(self.perm)
        return tuple(shape[inv[j]] * abs(s) for j, s in enumerate(self.steps))

    def view(self, base):
        return base[tuple(slice(None, None, s) for s in self.steps)].transpose(self.perm)


@st.composite
def layouts(draw, ndim, broadcast=False):
    perm = tuple(draw(st.permutations(range(ndim))))
    steps = tuple(draw(st.sampled_from([1, -1, 2, -2, 3])) for _ in range(ndim))
    bcast = draw(st.one_of(st.none(), st.integers(0, ndim - 1))) if broadcast else None
    return Layout(perm, steps, bcast)


def place(values, layout, dtype):
    """(array, base): an array with ``values`` (cast to ``dtype``) laid out by ``layout``
    inside the buffer ``base`` (filled with SENTINEL elsewhere). A broadcast layout
    repeats the first slice of ``values`` along its dimension."""
    values = np.asarray(values)
    shape = values.shape
    if layout.bcast is not None:
        values = values[
            tuple(slice(0, 1) if d == layout.bcast else slice(None) for d in range(values.ndim))
        ]
    fill = SENTINEL if np.dtype(dtype).kind == "f" else 90
    base = np.full(layout.base_shape(values.shape), fill, dtype=dtype)
    arr = layout.view(base)
    arr[...] = values.astype(dtype)
    if layout.bcast is not None:
        arr = np.broadcast_to(arr, shape)
    assert arr.shape == shape
    return arr, base


def inside(layout, shape):
    """Boolean mask of the elements of ``layout.base_shape(shape)`` that the view covers."""
    mask = np.zeros(layout.base_shape(shape), dtype=bool)
    layout.view(mask)[...] = True
    return mask


@st.composite
def log_uniform(draw, lo_exp, hi_exp, negative=False):
    """10**e for e uniform in [lo_exp, hi_exp], negated if ``negative`` (a composite, so
    that failure reports show the value rather than the expression that made it)."""
    v = 10.0 ** draw(st.floats(lo_exp, hi_exp))
    return -v if negative else v


@st.composite
def tau_objects(draw):
    """tau log-uniform over [1e-3, 1e3], as a Python float, a NumPy float or an int."""
    kind = draw(st.sampled_from(["float", "float64", "float32", "int"]))
    if kind == "int":
        return draw(st.sampled_from([1, 2, 1000]))
    tau = draw(taus)
    return {"float": float, "float64": np.float64, "float32": np.float32}[kind](tau)


taus = log_uniform(-3, 3)


@dataclasses.dataclass(frozen=True)
class Values:
    """How the array contents are made: reproducible, and short in a failure report."""

    kind: str  # normal | integers | constant | offset | tied
    seed: int
    scale: float
    offset: float

    def make(self, shape, dtype=np.float64):
        r = np.random.default_rng(self.seed)
        dt = np.dtype(dtype)
        if dt == np.bool_:
            return r.integers(0, 2, size=shape).astype(np.bool_)
        if dt.kind in "iu":
            lo = 0 if dt.kind == "u" else -5
            return r.integers(lo, 6, size=shape).astype(dt)
        if self.kind == "normal":
            v = self.scale * r.standard_normal(shape)
        elif self.kind == "integers":  # many tied logits
            v = self.scale * r.integers(-3, 4, size=shape)
        elif self.kind == "constant":
            v = np.full(shape, self.offset)
        elif self.kind == "tied":  # 2**62 or 2**62 + 2**59: x + g == x in both dtypes
            v = np.ldexp(8.0 + r.integers(0, 2, size=shape), 59)
        else:  # large magnitude: x + g has few significant bits left (ties in the dtype)
            v = self.offset + self.scale * r.standard_normal(shape)
        return v.astype(np.float64)


def values_st(max_offset_exp=17, kinds=("normal", "integers", "constant", "offset", "tied")):
    """Values: offsets up to 10**max_offset_exp (x + g then rounds to few values in float32
    and float64: exact ties in the hard sample)."""
    return st.builds(
        Values,
        kind=st.sampled_from(kinds),
        seed=st.integers(0, 2**32 - 1),
        scale=log_uniform(-3, 2),
        offset=st.one_of(
            st.just(0.0),
            log_uniform(-6, max_offset_exp),
            log_uniform(-6, max_offset_exp, negative=True),
        ),
    )


# Backward: |grad_y| * |y_soft| * (|grad_y| + |sum|) / tau must stay finite in float32.
backward_values = values_st(max_offset_exp=4, kinds=("normal", "integers", "constant", "offset"))


seeds = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, MASK32, 2**32, 2**64 - 1]))


@st.composite
def counters(draw, rows):
    """Start counters for a call of ``rows`` rows: anywhere, straddling 2**32 and 2**63,
    and at the very end (2**64 - rows exactly, and a few rows before it)."""
    top = min(END - rows, END - 1)
    where = draw(st.sampled_from(["any", "small", "2**32", "2**63", "end", "near_end"]))
    if where == "any":
        return draw(st.integers(0, top))
    if where == "small":
        return draw(st.integers(0, min(8, top)))
    if where == "end":
        return top
    if where == "near_end":
        return max(top - draw(st.integers(1, 3)), 0)
    k = draw(st.integers(0, max(rows, 1) + 2))
    return min((2**32 if where == "2**32" else 2**63) - k, top)


def moved_shape(shape, axis):
    ax = axis % len(shape)
    return shape[:ax] + shape[ax + 1 :] + (shape[ax],)


def check_noise(g, seed, counter, shape, dtype):
    """Package noise ``g`` (axis last) against gumbel_ref within noise_tol."""
    g_ref = gumbel_ref(seed, counter, shape, dtype)
    assert g.shape == tuple(shape) and g.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(g)), "non-finite noise"
    err = np.abs(g.astype(np.float64) - g_ref)
    tol = noise_tol(g_ref, dtype)
    if np.any(err > tol):
        i = np.unravel_index(np.argmax(err / tol), err.shape)
        raise AssertionError(
            f"noise at {i}: got {g[i]!r}, reference {g_ref[i]!r}, "
            f"{err[i] / eps_of(dtype):.2f} eps; {int(np.sum(err > tol))} "
            f"of {g.size} out of tolerance"
        )


def note_layout(name, layout):
    """Hypothesis events (``--hypothesis-show-statistics``): which layouts were drawn."""
    if any(s < 0 for s in layout.steps):
        event(f"{name}: negative strides")
    if any(abs(s) > 1 for s in layout.steps):
        event(f"{name}: non-unit steps")
    if list(layout.perm) != sorted(layout.perm):
        event(f"{name}: transposed")
    if layout.bcast is not None:
        event(f"{name}: broadcast (stride 0)")


def note_call(shape, axis, rows, counter, tau):
    event(f"ndim {len(shape)}")
    event("axis negative" if axis < 0 else "axis positive")
    if rows == 0:
        event("size-0 batch")
    elif 1 in moved_shape(shape, axis)[:-1]:
        event("size-1 batch dim")
    if counter + rows == END:
        event("rows end exactly at 2**64")
    elif counter < 2**32 <= counter + rows:
        event("rows straddle 2**32")
    elif counter < 2**63 <= counter + rows:
        event("rows straddle 2**63")
    if tau is not None:
        event("tau < 0.01" if tau < 0.01 else "tau > 100" if tau > 100 else "tau in [0.01, 100]")


def make_rng(gs, kind, seed, counter):
    """The ``rng`` argument: a Philox, or an int seed (only when counter == 0)."""
    if kind == "int" and counter == 0:
        return seed, None
    if kind == "numpy_int" and counter == 0:
        return np.uint64(seed), None
    rng = gs.Philox(seed, counter=counter)
    return rng, rng


# ----------------------------------------------------------------------------- forward
@dataclasses.dataclass(frozen=True)
class ForwardCase:
    shape: tuple
    axis: int
    dtype: str
    values: Values
    layout: Layout
    tau: object
    seed: int
    counter: int
    rng_kind: str
    out: str  # none | fresh | view | inplace
    out_layout: Layout
    return_soft: bool


@st.composite
def forward_cases(draw):
    shape, axis = draw(shapes_and_axes())
    ndim = len(shape)
    dtype = draw(st.one_of(st.sampled_from(FLOATS), st.sampled_from(INTS)))
    dtype = np.dtype(dtype).name
    layout = draw(layouts(ndim, broadcast=True))
    out_modes = ["none", "fresh", "view"]
    if dtype in ("float32", "float64") and layout.bcast is None:
        out_modes.append("inplace")
    rows = n_rows(shape, axis)
    seed = draw(seeds)
    counter = draw(counters(rows))
    return ForwardCase(
        shape=shape,
        axis=axis,
        dtype=dtype,
        values=draw(values_st()),
        layout=layout,
        tau=draw(tau_objects()),
        seed=seed,
        counter=counter,
        rng_kind=draw(st.sampled_from(["philox"] * 6 + ["int", "numpy_int"])),
        out=draw(st.sampled_from(out_modes)),
        out_layout=draw(layouts(ndim)),
        return_soft=draw(st.booleans()),
    )


def run_forward(gs, moved_noise, case, hard):
    """Make the call that ``case`` describes, check everything that does not depend on
    ``hard``; return (x0, y, y_soft or None, g, tau) for the caller's value checks:
    x0 the logits' values (float64 for integer logits), g the noise the call added."""
    shape, axis, seed, p = case.shape, case.axis, case.seed, case.counter
    tau = float(case.tau)
    x, _ = place(case.values.make(shape, case.dtype), case.layout, case.dtype)
    x0 = np.array(x, dtype=np.float64 if x.dtype.kind in "biu" else x.dtype)  # values
    dt = x0.dtype
    x_bytes = np.array(x, copy=True)
    R = n_rows(shape, axis)
    note_call(shape, axis, R, p, tau)
    note_layout("logits", case.layout)
    event(f"out: {case.out}")
    if case.out == "view":
        note_layout("out", case.out_layout)

    out = base = None
    if case.out == "fresh":
        out = np.full(shape, SENTINEL, dtype=dt)
    elif case.out == "view":
        out, base = place(np.full(shape, 0.5), case.out_layout, dt)
        base_before = base.copy()
    elif case.out == "inplace":
        out = x

    rng_arg, rng = make_rng(gs, case.rng_kind, seed, p)
    res = gs.gumbel_softmax(
        x, case.tau, hard=hard, axis=axis, rng=rng_arg, out=out, return_soft=case.return_soft
    )

    # Return value.
    if case.return_soft:
        assert isinstance(res, tuple) and len(res) == 2
        y, y_soft = res
        if not hard:
            assert y_soft is y
    else:
        assert isinstance(res, np.ndarray)
        y, y_soft = res, None
    if out is not None:
        assert y is out
    else:
        assert y.flags.c_contiguous
    assert y.shape == shape and y.dtype == dt
    if y_soft is not None:
        assert y_soft.shape == shape and y_soft.dtype == dt

    # The stream: exactly R rows consumed, from p.
    if rng is not None:
        assert rng.counter == p + R, (rng.counter, p, R)
    # Inputs untouched, nothing written around an out view.
    if case.out != "inplace":
        assert x.dtype == x_bytes.dtype and np.array_equal(x, x_bytes)
    if base is not None:
        mask = inside(case.out_layout, shape)
        assert np.array_equal(base[~mask], base_before[~mask]), "written outside out"

    # The noise the call added = the documented stream (within noise_tol).
    g = moved_noise(shape, dt, seed, p, axis)
    check_noise(np.moveaxis(g, axis, -1), seed, p, moved_shape(shape, axis), dt)

    # Bitwise: any layout and axis give moveaxis of the contiguous last-axis call.
    xm = np.ascontiguousarray(np.moveaxis(x0, axis, -1))
    ym = gs.gumbel_softmax(xm, tau, hard=hard, rng=gs.Philox(seed, counter=p))
    np.testing.assert_array_equal(y, np.moveaxis(ym, -1, axis))
    return x0, y, y_soft, g, tau


def check_sample(y, x0, g, tau, axis):
    """check_forward of a soft sample ``y`` of logits ``x0`` with noise ``g``.

    docs/contract.md: the kernel first forms ``v = x + g`` in the dtype of the data. check_forward's
    bound, 8 eps (1 + max|x + g| / tau) relative, is first order: once eps * max|x + g|
    / tau is not small (float32 logits of 1e7 and tau = 0.1: the rounding of v alone
    moves exponents by 5) the exact-sum centre is off by more than any first-order
    bound, by design. So the sample is checked against softmax(v / tau) with v rounded
    as documented (always), and against softmax((x + g) / tau) where the first-order
    bound holds (eps * max|v| / tau <= 1e-3, most examples).  At tau = 1 the kernel
    takes its own path (docs/contract.md), checked against the exact x + g."""
    dt = y.dtype
    v = x0.astype(dt) + g.astype(dt)
    m = np.max(x0, axis=axis, keepdims=True) if x0.size else None
    if dt.type(1.0) / dt.type(tau) == 1 and x0.size and np.all(np.isfinite(m)):
        # docs/contract.md, "tau = 1": that path computes exp(x - max(x)) / E, the softmax of
        # x + g without rounding x + g (which moves float64 logits of 1e17 by 16); the
        # reference shifts by max(x) first, as the kernel does, then adds g.
        event("forward at tau = 1 checked against (x - max x) + g")
        check_forward(y, x0.astype(np.float64) - m, g, tau, axis=axis)
        return
    check_forward(y, v, np.zeros_like(v), tau, axis=axis)
    if not v.size or eps_of(dt) * float(np.max(np.abs(v))) / tau <= 1e-3:
        check_forward(y, x0, g, tau, axis=axis)
    else:
        event("forward checked at v = x + g rounded in the dtype only")


@FUZZ
@given(case=forward_cases())
def test_fuzz_gumbel_softmax_soft(gs, moved_noise, case):
    x0, y, _, g, tau = run_forward(gs, moved_noise, case, hard=False)
    check_sample(y, x0, g, tau, case.axis)


@FUZZ
@given(case=forward_cases())
def test_fuzz_gumbel_softmax_hard(gs, moved_noise, case):
    x0, y, y_soft, g, tau = run_forward(gs, moved_noise, case, hard=True)
    v = x0 + g.astype(x0.dtype)
    if v.size and np.any(np.sum(v == np.max(v, axis=case.axis, keepdims=True), axis=case.axis) > 1):
        event("tie in logits + noise (first index wins)")
    check_one_hot(y, x0, g, axis=case.axis)
    if y_soft is not None:
        assert y_soft is not y
        check_sample(y_soft, x0, g, tau, case.axis)
        soft = gs.gumbel_softmax(
            x0, tau, axis=case.axis, rng=gs.Philox(case.seed, counter=case.counter)
        )
        np.testing.assert_array_equal(y_soft, soft)


@FUZZ
@given(case=forward_cases())
# float32 at tau = 1 + 4e-16, where 1/tau rounds to exactly 1 (the tau = 1 formula)
@example(
    case=ForwardCase(
        shape=(15,),
        axis=0,
        dtype="float32",
        values=Values(kind="constant", seed=0, scale=1.0, offset=1000.0),
        layout=Layout(perm=(0,), steps=(1,)),
        tau=1.0000000000000004,
        seed=0,
        counter=0,
        rng_kind="philox",
        out="none",
        out_layout=Layout(perm=(0,), steps=(1,)),
        return_soft=False,
    )
)
def test_fuzz_other_samplers(gs, moved_noise, case):
    """categorical, top_k, log_gumbel_softmax and relaxed_bernoulli on the same drawn
    calls: categorical = the position of the hard one-hot (-1 for its NaN rows) and
    advances the counter by the rows; top_k = a stable sort of -(logits + g) in the
    dtype, -1 past the finite values and on undefined rows; exp(log_gumbel_softmax) =
    the soft sample within 8 eps (1 + |log y|) relative, finite wherever the row is
    defined and the logit finite; relaxed_bernoulli hard = [x + L > 0] exactly with L =
    gs.logistic, NaN exactly where x is NaN."""
    shape, axis, seed, p = case.shape, case.axis, case.seed, case.counter
    tau = float(case.tau)
    x, _ = place(case.values.make(shape, case.dtype), case.layout, case.dtype)
    x0 = np.array(x, dtype=np.float64 if x.dtype.kind in "biu" else x.dtype)
    dt = x0.dtype
    R = n_rows(shape, axis)
    note_call(shape, axis, R, p, tau)
    axis = axis % len(shape)
    K = shape[axis]

    def philox():
        return gs.Philox(seed, counter=p)

    hard = gs.gumbel_softmax(x, tau, hard=True, axis=axis, rng=philox())
    soft = gs.gumbel_softmax(x, tau, axis=axis, rng=philox())
    undefined = np.any(np.isnan(hard), axis=axis)
    rng = philox()
    c = gs.categorical(x, axis=axis, rng=rng)
    assert rng.counter == p + R
    assert c.dtype == np.int64 and c.shape == shape[:axis] + shape[axis + 1 :]
    expect = np.where(undefined, -1, np.argmax(np.nan_to_num(hard), axis=axis))
    np.testing.assert_array_equal(c, expect)

    k = min(K, 3)
    t = gs.top_k(x, k, axis=axis, rng=philox())
    g = moved_noise(shape, dt, seed, p, axis)
    v = np.moveaxis(x0 + g.astype(dt), axis, -1)  # rounded in the dtype, as documented
    order = np.argsort(-v, axis=-1, kind="stable")[..., :k]
    chosen = np.take_along_axis(v, order, axis=-1)
    ref = np.where(np.isneginf(chosen), -1, order)
    ref = np.where(undefined[..., None], -1, ref)
    np.testing.assert_array_equal(np.moveaxis(t, axis, -1), ref)
    if k:
        np.testing.assert_array_equal(np.take(t, 0, axis=axis), c)

    lg = gs.log_gumbel_softmax(x, tau, axis=axis, rng=philox())
    assert lg.dtype == dt and lg.shape == shape
    defined = np.broadcast_to(~np.expand_dims(undefined, axis), shape)
    ok = defined & np.isfinite(x0)
    assert np.all(np.isfinite(lg[ok]))
    assert np.all(np.isneginf(lg[defined & np.isneginf(x0)]))
    assert np.all(np.isnan(lg[~defined]))
    if np.any(ok):
        # float64 log-softmax of v / tau, v = x + g rounded in the dtype (docs/contract.md)
        vd = (x0 + g.astype(dt)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            m = np.max(np.where(defined, vd, -np.inf), axis=axis, keepdims=True)
            z = (vd - m) / tau
            ref_log = z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))
        r = np.broadcast_to(ref_log, shape)[ok]
        err = np.abs(lg[ok].astype(np.float64) - r)
        tol = 8 * eps_of(dt) * (2 + np.abs(r) + np.log(K))
        assert np.all(err <= tol), float(np.max(err / tol))
        # where 1/tau (float64, rounded once to the dtype) is exactly 1, the soft sample
        # takes its own formula (docs/contract.md, "tau = 1"): float32 does at tau = 1 + 4e-16 too
        if dt.type(1.0 / tau) != 1:
            e = np.exp(lg[ok].astype(np.float64))
            close = np.abs(e - soft[ok]) <= 2 * tol * e + 2 * np.finfo(dt).smallest_subnormal
            assert np.all(close)

    check_conditional(gs, x, x0, g, c, undefined, axis, seed, p, R)

    # relaxed_bernoulli's rows are all dimensions but the last, whatever the axis
    rows_b = int(np.prod(shape[:-1]))
    pb = min(p, END - rows_b)
    rng = gs.Philox(seed, counter=pb)
    b = gs.relaxed_bernoulli(x, tau, hard=True, rng=rng)
    assert rng.counter == pb + rows_b
    L = gs.logistic(shape, dtype=dt, rng=gs.Philox(seed, counter=pb))
    vb = x0 + L
    np.testing.assert_array_equal(b, np.where(np.isnan(vb), np.nan, (vb > 0).astype(dt)))


def check_conditional(gs, x, x0, g, c, undefined, axis, seed, p, R):
    """conditional_gumbel on the drawn call, index = categorical's (the first finite
    logit on undefined rows): counter + rows; argmax(z) = index on defined rows, NaN rows
    exactly where the row is undefined, -inf exactly at -inf logits; the formula from
    the call's noise g in float64 within 8 eps (1 + max|x| + max|g|) of the row; bitwise
    equal to the contiguous moveaxis call."""
    xm = np.moveaxis(x0, axis, -1)
    if xm.size == 0 or np.any(np.all(np.isneginf(xm), axis=-1)):
        event("conditional_gumbel skipped: a row of only -inf")
        return
    idx = np.where(undefined, np.argmax(~np.isneginf(xm), axis=-1), c)
    rng = gs.Philox(seed, counter=p)
    z = gs.conditional_gumbel(x, idx, axis=axis, rng=rng)
    assert rng.counter == p + R
    assert z.shape == x0.shape and z.dtype == x0.dtype
    zm = np.moveaxis(z, axis, -1)
    ref_call = gs.conditional_gumbel(np.ascontiguousarray(xm), idx, rng=gs.Philox(seed, counter=p))
    np.testing.assert_array_equal(zm, ref_call)
    assert np.all(np.isnan(zm[undefined]))
    d = ~undefined
    if not np.any(d):
        return
    zd, xd = zm[d], xm[d].astype(np.float64)
    gd = np.moveaxis(g, axis, -1)[d].astype(np.float64)
    idd = idx[d]
    np.testing.assert_array_equal(np.argmax(zd, axis=-1), idd)
    np.testing.assert_array_equal(np.isneginf(zd), np.isneginf(xd))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = np.max(xd, axis=-1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(xd - m), axis=-1, keepdims=True))
        zi = lse + np.take_along_axis(gd, idd[:, None], -1)
        ref = -np.logaddexp(-zi, -(xd + gd))
    np.put_along_axis(ref, idd[:, None], zi, -1)
    fin = np.isfinite(xd)
    scale = 1 + np.max(np.abs(np.where(fin, xd, 0)), -1) + np.max(np.abs(gd), -1)
    tol = np.broadcast_to(8 * eps_of(zd.dtype) * scale[:, None], zd.shape)
    err = np.abs(zd.astype(np.float64) - ref)
    assert np.all(err[fin] <= tol[fin]), float(np.max(err[fin] / tol[fin]))


# ------------------------------------------------------------------------ relaxed top-k
@FUZZ
@given(case=forward_cases(), data=st.data())
def test_fuzz_relaxed_top_k(gs, moved_noise, case, data):
    """relaxed_top_k on the drawn calls, k drawn in [1, K], hard or not: counter + rows;
    ``out`` returned and nothing outside it written; bitwise the contiguous moveaxis
    call; hard = the k-hot of top_k from the same state (NaN rows NaN); the relaxed
    sample: NaN exactly on undefined rows, else finite, >= 0, 0 at -inf logits, row sums
    at most k, and the float64 reference (on the rows where its bound is first order);
    its backward: bitwise the moveaxis call, 0 at -inf logits, finite on defined rows,
    rng untouched."""
    shape, axis, seed, p = case.shape, case.axis, case.seed, case.counter
    tau = float(case.tau)
    ax = axis % len(shape)
    K = shape[ax]
    k = data.draw(st.integers(1, K), label="k")
    hard = data.draw(st.booleans(), label="hard")
    x, _ = place(case.values.make(shape, case.dtype), case.layout, case.dtype)
    x0 = np.array(x, dtype=np.float64 if x.dtype.kind in "biu" else x.dtype)
    dt = x0.dtype
    R = n_rows(shape, axis)
    note_call(shape, axis, R, p, tau)
    out = base = None
    if case.out == "fresh":
        out = np.full(shape, SENTINEL, dtype=dt)
    elif case.out == "view":
        out, base = place(np.full(shape, 0.5), case.out_layout, dt)
        base_before = base.copy()
    elif case.out == "inplace":
        out = x
    rng_arg, rng = make_rng(gs, case.rng_kind, seed, p)
    res = gs.relaxed_top_k(
        x, k, case.tau, hard=hard, axis=axis, rng=rng_arg, out=out, return_soft=case.return_soft
    )
    y, soft = res if case.return_soft else (res, None)
    if out is not None:
        assert y is out
    assert y.shape == shape and y.dtype == dt
    if rng is not None:
        assert rng.counter == p + R
    if base is not None:
        assert np.array_equal(
            base[~inside(case.out_layout, shape)], base_before[~inside(case.out_layout, shape)]
        )

    def philox():
        return gs.Philox(seed, counter=p)

    xm = np.ascontiguousarray(np.moveaxis(x0, axis, -1))
    ym = gs.relaxed_top_k(xm, k, tau, hard=hard, rng=philox())
    np.testing.assert_array_equal(y, np.moveaxis(ym, -1, axis))
    undefined = np.any(np.isnan(gs.gumbel_softmax(xm, tau, hard=True, rng=philox())), axis=-1)
    if hard:
        t = gs.top_k(xm, k, rng=philox())
        ref = np.zeros(xm.shape[:-1] + (K + 1,))
        np.put_along_axis(ref, np.where(t < 0, K, t), 1.0, axis=-1)
        ref = np.where(undefined[..., None], np.nan, ref[..., :K])
        np.testing.assert_array_equal(ym, ref)
        soft_m = gs.relaxed_top_k(xm, k, tau, rng=philox())
        if soft is not None:
            np.testing.assert_array_equal(soft, np.moveaxis(soft_m, -1, axis))
    else:
        soft_m = ym
        if soft is not None:
            assert soft is y
    assert np.all(np.isnan(soft_m[undefined]))
    good = soft_m[~undefined].astype(np.float64)
    assert np.all(np.isfinite(good)) and np.all(good >= 0)
    assert np.all(good[np.isneginf(xm[~undefined])] == 0)
    assert np.all(good.sum(-1) <= k * (1 + (K / 16 + 8 + k) * eps_of(dt)))
    g = np.moveaxis(moved_noise(shape, dt, seed, p, axis), axis, -1)
    v = (xm + g.astype(dt))[~undefined]
    if v.size and eps_of(dt) * float(np.max(np.abs(v[np.isfinite(v)]))) / tau <= 1e-3:
        ref = relaxed_top_k_ref(v, k, min(tau, float(np.finfo(dt).max)))
        ok = relaxed_top_k_comparable(ref, dt)
        event(f"relaxed_top_k: {ok.mean():.0%} of the rows compared" if ok.size else "no rows")
        err = np.abs(good - ref.y)[ok]
        assert np.all(err <= relaxed_top_k_tol(ref, dt)[ok])

    # the backward, replayed from the same state
    gy = np.random.default_rng(case.values.seed).standard_normal(shape).astype(dt)
    rng = philox()
    gx = gs.relaxed_top_k_backward(gy, x0, k, tau, axis=axis, rng=rng)
    assert rng.counter == p and gx.shape == shape and gx.dtype == dt
    gm = gs.relaxed_top_k_backward(
        np.ascontiguousarray(np.moveaxis(gy, axis, -1)), xm, k, tau, rng=philox()
    )
    np.testing.assert_array_equal(gx, np.moveaxis(gm, -1, axis))
    assert np.all(gm[np.isneginf(xm) & ~undefined[..., None]] == 0)
    assert np.all(np.isnan(gm[undefined]))


# ---------------------------------------------------------------------------- backward
@dataclasses.dataclass(frozen=True)
class BackwardCase:
    shape: tuple
    axis: int
    gy_dtype: str
    ys_dtype: str
    gy_values: Values
    ys_source: str  # sample | softmax | arbitrary
    ys_values: Values
    gy_layout: Layout
    ys_layout: Layout
    tau: object
    out: str  # none | fresh | view | grad_y | y_soft
    out_layout: Layout


@st.composite
def backward_cases(draw):
    shape, axis = draw(shapes_and_axes(min_row=0))
    ndim = len(shape)
    gy_dtype = np.dtype(draw(st.sampled_from(FLOATS))).name
    ys_dtype = np.dtype(draw(st.sampled_from(FLOATS))).name
    gy_layout = draw(layouts(ndim, broadcast=True))
    ys_layout = draw(layouts(ndim, broadcast=True))
    res = np.result_type(gy_dtype, ys_dtype).name
    modes = ["none", "fresh", "view"]
    if gy_dtype == res and gy_layout.bcast is None:
        modes.append("grad_y")
    if ys_dtype == res and ys_layout.bcast is None:
        modes.append("y_soft")
    return BackwardCase(
        shape=shape,
        axis=axis,
        gy_dtype=gy_dtype,
        ys_dtype=ys_dtype,
        gy_values=draw(backward_values),
        ys_source=draw(st.sampled_from(["sample", "softmax", "arbitrary"])),
        ys_values=draw(backward_values),
        gy_layout=gy_layout,
        ys_layout=ys_layout,
        tau=draw(tau_objects()),
        out=draw(st.sampled_from(modes)),
        out_layout=draw(layouts(ndim)),
    )


@FUZZ
@given(case=backward_cases())
def test_fuzz_backward(gs, case):
    shape, axis, tau = case.shape, case.axis, float(case.tau)
    ys_vals = case.ys_values.make(shape)
    if shape[axis] and case.ys_source == "sample":
        _, ys_vals = gs.gumbel_softmax(
            ys_vals.astype(case.ys_dtype),
            tau,
            hard=True,
            axis=axis,
            rng=case.ys_values.seed,
            return_soft=True,
        )
    elif shape[axis] and case.ys_source == "softmax":
        ys_vals = softmax_ref(ys_vals, axis=axis)
    gy, _ = place(case.gy_values.make(shape), case.gy_layout, case.gy_dtype)
    ys, _ = place(ys_vals, case.ys_layout, case.ys_dtype)
    gy0, ys0 = gy.copy(), ys.copy()
    dt = np.result_type(gy.dtype, ys.dtype)
    note_call(shape, axis, n_rows(shape, axis), 0, tau)
    note_layout("grad_y", case.gy_layout)
    note_layout("y_soft", case.ys_layout)
    event(f"out: {case.out}")
    if shape[axis] == 0:
        event("size-0 axis")

    out = base = None
    if case.out == "fresh":
        out = np.full(shape, SENTINEL, dtype=dt)
    elif case.out == "view":
        out, base = place(np.zeros(shape), case.out_layout, dt)
        base_before = base.copy()
    elif case.out == "grad_y":
        out = gy
    elif case.out == "y_soft":
        out = ys

    got = gs.gumbel_softmax_backward(gy, ys, case.tau, axis=axis, out=out)

    assert isinstance(got, np.ndarray)
    if out is not None:
        assert got is out
    else:
        assert got.flags.c_contiguous
    assert got.shape == shape and got.dtype == dt
    if case.out != "grad_y":
        assert np.array_equal(gy, gy0)
    if case.out != "y_soft":
        assert np.array_equal(ys, ys0)
    if base is not None:
        mask = inside(case.out_layout, shape)
        assert np.array_equal(base[~mask], base_before[~mask]), "written outside out"

    check_backward(got, gy0, ys0, tau, axis=axis)
    # Bitwise: any layout and axis give moveaxis of the contiguous last-axis call.
    moved = gs.gumbel_softmax_backward(
        np.ascontiguousarray(np.moveaxis(gy0, axis, -1)),
        np.ascontiguousarray(np.moveaxis(ys0, axis, -1)),
        tau,
    )
    np.testing.assert_array_equal(got, np.moveaxis(moved, -1, axis))


# -------------------------------------------------------------------------- estimators
@dataclasses.dataclass(frozen=True)
class EstimatorCase:
    shape: tuple
    axis: int
    dtype: str
    x_values: Values
    gy_values: Values
    x_layout: Layout
    gy_layout: Layout
    tau: object
    samples: int
    seed: int
    out: str  # none | fresh | view | grad_y
    out_layout: Layout


@st.composite
def estimator_cases(draw):
    shape, axis = draw(shapes_and_axes())
    ndim = len(shape)
    return EstimatorCase(
        shape=shape,
        axis=axis,
        dtype=np.dtype(draw(st.sampled_from(FLOATS))).name,
        x_values=draw(values_st(max_offset_exp=4, kinds=("normal", "integers", "offset"))),
        gy_values=draw(backward_values),
        x_layout=draw(layouts(ndim, broadcast=True)),
        gy_layout=draw(layouts(ndim)),
        tau=draw(tau_objects()),
        samples=draw(st.integers(1, 4)),
        seed=draw(seeds),
        out=draw(st.sampled_from(["none", "fresh", "view", "grad_y"])),
        out_layout=draw(layouts(ndim)),
    )


@FUZZ
@given(case=estimator_cases())
def test_fuzz_estimators(gs, case):
    """gumbel_rao_backward against the float64 reference from conditional_gumbel's draws
    of the documented rows (tolerance as in test_estimators.py), reinmax_backward (at
    max(tau, 1)) against the formula within 32 eps (1 + max|grad_y|); both bitwise equal
    to the contiguous moveaxis call, ``out`` returned and nothing outside it written."""
    shape, axis, dt, K = case.shape, case.axis, np.dtype(case.dtype), case.samples
    tau = float(case.tau)
    x, _ = place(case.x_values.make(shape), case.x_layout, dt)
    gy, _ = place(case.gy_values.make(shape), case.gy_layout, dt)
    idx = gs.categorical(x, axis=axis, rng=case.seed)
    yh = np.zeros(shape, dt)
    np.put_along_axis(yh, np.expand_dims(idx, axis), 1, axis)
    note_call(shape, axis, n_rows(shape, axis) * K, 0, tau)
    note_layout("logits", case.x_layout)
    event(f"out: {case.out}")
    m = shape[axis]
    xm, gm, ym = (np.moveaxis(a, axis, -1).reshape(-1, m) for a in (x, gy, yh))
    for fn in ("gumbel_rao_backward", "reinmax_backward"):
        out = base = None
        if case.out == "fresh":
            out = np.full(shape, SENTINEL, dtype=dt)
        elif case.out == "view":
            out, base = place(np.zeros(shape), case.out_layout, dt)
            base_before = base.copy()
        elif case.out == "grad_y":
            out = gy.copy()
        gin = out if case.out == "grad_y" else gy
        if fn == "gumbel_rao_backward":
            rng = gs.Philox(case.seed)
            got = gs.gumbel_rao_backward(gin, x, yh, tau, samples=K, axis=axis, rng=rng, out=out)
            assert rng.counter == n_rows(shape, axis) * K
            moved = gs.gumbel_rao_backward(gm, xm, ym, tau, samples=K, rng=case.seed)
        else:
            got = gs.reinmax_backward(gin, x, yh, max(tau, 1.0), axis=axis, out=out)
            moved = gs.reinmax_backward(gm, xm, ym, max(tau, 1.0))
        if out is not None:
            assert got is out
        assert got.shape == shape and got.dtype == dt
        if base is not None:
            mask = inside(case.out_layout, shape)
            assert np.array_equal(base[~mask], base_before[~mask]), "written outside out"
        expect = np.moveaxis(moved.reshape(np.moveaxis(gy, axis, -1).shape), -1, axis)
        np.testing.assert_array_equal(got, expect)
        if gm.shape[0] == 0:
            continue
        g64 = gm.astype(np.float64)
        gmax = np.abs(g64).max(-1)
        eps = float(np.finfo(dt).eps)
        if fn == "gumbel_rao_backward":
            im = idx.reshape(-1)  # C order over the batch, as the rows of xm
            z = gs.conditional_gumbel(np.repeat(xm, K, 0), np.repeat(im, K), rng=case.seed)
            z = z.astype(np.float64).reshape(-1, K, m)
            p = softmax_ref(z / tau, axis=-1)
            jg = p * (g64[:, None] - (p * g64[:, None]).sum(-1, keepdims=True))
            ref = jg.mean(1) / tau
            zmax = np.abs(z).max((1, 2))
            tol = 3 * gmax * 8 * eps * (1 + zmax) / tau**2 + 16 * eps * gmax / tau
        else:
            t = max(tau, 1.0)
            p0 = softmax_ref(xm.astype(np.float64), axis=-1)
            p1 = (softmax_ref(xm.astype(np.float64) / t, axis=-1) + ym) / 2
            u = -g64 / 2
            ref = 2 * p1 * (g64 - (p1 * g64).sum(-1, keepdims=True))
            ref += p0 * (u - (p0 * u).sum(-1, keepdims=True))
            tol = 32 * eps * (1 + gmax)
        err = np.abs(moved.astype(np.float64) - ref).max(-1)
        assert (err <= tol).all(), (fn, float((err / tol).max()))


# ------------------------------------------------------------------------------- noise
@dataclasses.dataclass(frozen=True)
class NoiseCase:
    shape: tuple
    shape_arg: str  # tuple | list | int | numpy
    dtype: str
    dtype_arg: str  # type | name | dtype | none
    seed: int
    counter: int
    rng_kind: str
    out: str  # none | fresh | view
    out_layout: Layout
    split: int


@st.composite
def noise_cases(draw):
    shape, _ = draw(shapes_and_axes(min_row=0, last_axis=True))
    R = math.prod(shape[:-1])
    dtype = np.dtype(draw(st.sampled_from(FLOATS))).name
    out = draw(st.sampled_from(["none", "fresh", "view"]))
    dtype_args = ["type", "name", "dtype"] + (
        ["none"] if out != "none" or dtype == "float32" else []
    )
    shape_args = ["tuple", "list", "numpy"] + (["int"] if len(shape) == 1 else [])
    return NoiseCase(
        shape=shape,
        shape_arg=draw(st.sampled_from(shape_args)),
        dtype=dtype,
        dtype_arg=draw(st.sampled_from(dtype_args)),
        seed=draw(seeds),
        counter=draw(counters(R)),
        rng_kind=draw(st.sampled_from(["philox"] * 6 + ["int", "numpy_int"])),
        out=out,
        out_layout=draw(layouts(len(shape))),
        split=draw(st.integers(0, R)),
    )


@FUZZ
@given(case=noise_cases())
def test_fuzz_gumbel(gs, case):
    shape, seed, p, dt = case.shape, case.seed, case.counter, np.dtype(case.dtype)
    R, K = math.prod(shape[:-1]), shape[-1]
    shape_arg = {
        "tuple": shape,
        "list": list(shape),
        "int": shape[0],
        "numpy": tuple(np.int64(n) for n in shape),
    }[case.shape_arg]
    dtype_arg = {"type": dt.type, "name": dt.name, "dtype": dt, "none": None}[case.dtype_arg]

    out = base = None
    if case.out == "fresh":
        out = np.full(shape, SENTINEL, dtype=dt)
    elif case.out == "view":
        out, base = place(np.zeros(shape), case.out_layout, dt)
        base_before = base.copy()

    note_call(shape, len(shape) - 1, R, p, None)
    event(f"out: {case.out}")
    if case.out == "view":
        note_layout("out", case.out_layout)
    rng_arg, rng = make_rng(gs, case.rng_kind, seed, p)
    g = gs.gumbel(shape_arg, dtype=dtype_arg, rng=rng_arg, out=out)

    if out is not None:
        assert g is out
    else:
        assert g.flags.c_contiguous
    assert g.shape == shape and g.dtype == dt
    if rng is not None:
        assert rng.counter == p + R, (rng.counter, p, R)
    if base is not None:
        mask = inside(case.out_layout, shape)
        assert np.array_equal(base[~mask], base_before[~mask]), "written outside out"

    check_noise(g, seed, p, shape, dt)
    if g.size:
        lo, hi = G_RANGE[dt]
        assert lo <= g.min() and g.max() <= hi

    # Any split of the rows into two calls gives the same bits.
    # (two calls on one generator; the second may start at counter 2**64 with no rows).
    j = case.split
    rng2 = gs.Philox(seed, counter=p)
    a = gs.gumbel((j, K), dtype=dt, rng=rng2)
    b = gs.gumbel((R - j, K), dtype=dt, rng=rng2)
    assert rng2.counter == p + R
    np.testing.assert_array_equal(np.concatenate([a, b]), np.reshape(g, (R, K)))


# ------------------------------------------------------------------------------ philox
WORD_DTYPES = [np.uint32, np.uint64, np.int64, np.uint16]


@st.composite
def counter_arrays(draw):
    lead = draw(st.lists(st.integers(0, 4), min_size=0, max_size=3))
    shape = tuple(lead) + (4,)
    dtype = np.dtype(draw(st.sampled_from(WORD_DTYPES)))
    hi = min(MASK32, np.iinfo(dtype).max)
    words = draw(hnp.arrays(dtype, shape, elements=st.integers(0, hi)))
    layout = draw(layouts(len(shape)))
    arr, _ = place(words, layout, dtype)
    return arr


keys = st.one_of(
    hnp.arrays(
        st.sampled_from([np.uint32, np.uint64, np.int64]), 2, elements=st.integers(0, MASK32)
    ),
    st.lists(st.integers(0, MASK32), min_size=2, max_size=2),
    st.tuples(st.integers(0, MASK32), st.integers(0, MASK32)),
)


@FUZZ
@given(counters_=counter_arrays(), key=keys)
def test_fuzz_philox4x32(gs, counters_, key):
    c_before = counters_.copy()
    got = gs.philox4x32(counters_, key)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.uint32 and got.shape == counters_.shape
    np.testing.assert_array_equal(got, philox4x32_ref(counters_, np.asarray(key)))
    np.testing.assert_array_equal(counters_, c_before)


def _check_state(gs, rng, seed, c):
    assert rng.seed == seed
    assert tuple(int(k) for k in rng.key) == (seed & MASK32, seed >> 32)
    assert rng.counter == c
    twin = copy.copy(rng)
    assert twin == rng and twin is not rng
    assert pickle.loads(pickle.dumps(rng)) == rng
    assert copy.deepcopy(rng) == rng
    if c < END:
        assert gs.Philox(seed, counter=c) == rng
        if c + 1 < END:
            assert gs.Philox(seed, counter=c + 1) != rng
        assert gs.Philox(seed ^ 1, counter=c) != rng
    return twin


@FUZZ
@given(
    seed=seeds,
    start=st.one_of(st.integers(0, END - 1), st.integers(END - 40, END - 1), st.integers(0, 40)),
    data=st.data(),
)
def test_fuzz_philox_reserve(gs, seed, start, data):
    """Random reserve / gumbel / gumbel_softmax calls on one generator, against a model
    counter ``c`` that may reach 2**64 exactly and never pass it."""
    rng = gs.Philox(seed, counter=start)
    c = start
    _check_state(gs, rng, seed, c)
    for _ in range(data.draw(st.integers(1, 6), label="n_ops")):
        left = END - c
        op = data.draw(st.sampled_from(["reserve", "gumbel", "gumbel_softmax"]), label="op")
        if op == "reserve":
            n = data.draw(
                st.one_of(
                    st.integers(0, 5),
                    st.integers(0, END + 5),
                    st.just(left),
                    st.integers(1, 5).map(lambda k: left + k),
                    st.integers(1, 5).map(lambda k: max(left - k, 0)),
                ),
                label="n",
            )
            if n >= END:  # n itself outside [0, 2**64): an argument error
                with pytest.raises((ValueError, OverflowError)):
                    rng.reserve(n)
            elif n <= left:
                assert rng.reserve(n) == c  # the first row reserved (2**64 when n == 0 there)
                c += n
            else:
                with pytest.raises(OverflowError, match="counter"):
                    rng.reserve(n)
        else:
            R = data.draw(
                st.one_of(
                    st.integers(0, 5),
                    st.sampled_from([r for r in (left, left + 1) if r <= 8] or [0]),
                ),
                label="rows",
            )
            K = data.draw(st.integers(1, 5), label="K")
            dt = np.dtype(data.draw(st.sampled_from(FLOATS), label="dtype"))
            if op == "gumbel":
                call = lambda: gs.gumbel((R, K), dtype=dt, rng=rng)  # noqa: E731
            else:
                x = np.zeros((K, R), dtype=dt)  # axis 0: the R rows are columns
                call = lambda: gs.gumbel_softmax(x, 1.0, axis=0, rng=rng)  # noqa: E731
            if R <= left:
                y = call()
                assert y.size == R * K
                if R:  # the noise of rows c .. c + R - 1 (c + R may be 2**64)
                    g = gs.gumbel((R, K), dtype=dt, rng=gs.Philox(seed, counter=c))
                    check_noise(g, seed, c, (R, K), dt)
                    if op == "gumbel":
                        np.testing.assert_array_equal(y, g)
                    else:
                        check_forward(y, x, g.T, 1.0, axis=0)
                c += R
            else:
                with pytest.raises(OverflowError, match="counter"):
                    call()
        twin = _check_state(gs, rng, seed, c)
        if c < END:  # a copy is independent of the original
            twin.reserve(1)
            assert rng.counter == c and twin.counter == c + 1


# --------------------------------------------------------------------- past the end
@dataclasses.dataclass(frozen=True)
class PastEndCase:
    shape: tuple
    axis: int
    dtype: str
    func: str  # soft | hard | gumbel
    excess: int  # the call needs this many rows more than are left (>= 1)
    seed: int
    with_out: bool


@st.composite
def past_end_cases(draw):
    shape, axis = draw(shapes_and_axes())
    shape = tuple(max(n, 1) for n in shape)  # at least one row
    R = n_rows(shape, axis)
    return PastEndCase(
        shape=shape,
        axis=axis,
        dtype=np.dtype(draw(st.sampled_from(FLOATS))).name,
        func=draw(st.sampled_from(["soft", "hard", "gumbel"])),
        excess=draw(st.integers(1, R)),
        seed=draw(seeds),
        with_out=draw(st.booleans()),
    )


@FUZZ
@given(case=past_end_cases())
def test_fuzz_past_the_end(gs, case):
    shape, axis, dt = case.shape, case.axis, np.dtype(case.dtype)
    R = n_rows(shape, axis)
    start = END - R + case.excess  # in (2**64 - R, 2**64]
    rng = gs.Philox(case.seed, counter=min(start, END - 1))
    if start == END:
        rng.reserve(1)
    assert rng.counter == start
    x = np.linspace(-2.0, 2.0, math.prod(shape)).reshape(shape).astype(dt)
    x_before = x.copy()
    out_shape = moved_shape(shape, axis) if case.func == "gumbel" else shape
    out = np.full(out_shape, SENTINEL, dtype=dt) if case.with_out else None
    out_before = None if out is None else out.tobytes()
    with pytest.raises(OverflowError, match="counter"):
        if case.func == "gumbel":
            gs.gumbel(out_shape, dtype=dt, rng=rng, out=out)
        else:
            gs.gumbel_softmax(x, 0.5, hard=case.func == "hard", axis=axis, rng=rng, out=out)
    assert rng.counter == start, "a call that raised reserved rows"
    assert x.tobytes() == x_before.tobytes()
    if out is not None:
        assert out.tobytes() == out_before, "a call that raised wrote into out"


# ------------------------------------------------------------------- byte order
@FUZZ
@given(
    shape_axis=shapes_and_axes(),
    dtype=st.sampled_from(FLOATS),
    values=values_st(),
    tau=taus,
    seed=seeds,
    hard=st.booleans(),
    which=st.sampled_from(["logits", "out", "gumbel_out", "backward"]),
)
def test_fuzz_nonnative_byte_order(gs, shape_axis, dtype, values, tau, seed, hard, which):
    """A non-native (byte-swapped) float32 / float64 array is a float32 / float64 array:
    as logits, as backward inputs, or as ``out`` of the same dtype it must give the
    native result bit for bit (rejecting such an ``out`` with an error is acceptable;
    a silently wrong result or dtype is not)."""
    shape, axis = shape_axis
    native = np.dtype(dtype)
    swapped = native.newbyteorder("S")
    x = values.make(shape).astype(native)
    xs = x.astype(swapped)
    if which == "gumbel_out":
        expected = gs.gumbel(shape, dtype=native, rng=seed)
    elif which == "backward":
        expected = gs.gumbel_softmax_backward(
            x, softmax_ref(x, axis).astype(native), tau, axis=axis
        )
    else:
        expected = gs.gumbel_softmax(x, tau, hard=hard, axis=axis, rng=seed)
    try:
        if which == "logits":
            y = gs.gumbel_softmax(xs, tau, hard=hard, axis=axis, rng=seed)
        elif which == "backward":
            y = gs.gumbel_softmax_backward(xs, softmax_ref(x, axis).astype(swapped), tau, axis=axis)
        elif which == "out":
            y = np.zeros(shape, dtype=swapped)
            gs.gumbel_softmax(xs, tau, hard=hard, axis=axis, rng=seed, out=y)
        else:
            y = np.zeros(shape, dtype=swapped)
            gs.gumbel(shape, rng=seed, out=y)
    except (TypeError, ValueError) as e:
        if which in ("out", "gumbel_out") and "out" in str(e):
            return  # rejecting a non-native out is acceptable
        raise
    same = (
        y.dtype.kind == "f" and y.dtype.itemsize == native.itemsize and np.array_equal(y, expected)
    )
    assert same, f"{which}, dtype {swapped.str}: got {y!r}, native result {expected!r}"
