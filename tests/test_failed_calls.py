"""A call that raises consumes nothing from any kind of generator.

Every sampler takes ``rng`` as a ``gs.Philox`` (whose counter must not move) or a
``numpy.random.Generator`` (whose ``bit_generator.state`` must not move: its seed is
drawn by the kernel only after every check and allocation of the call).  Each failing
call below is tried with both, for every entry point that takes ``rng``, including
MemoryError from results too large to allocate (broadcast inputs of 2**40 elements and
more).  The torch drop-in's generators are checked in ``test_torch.py``.
"""

import os
import sys

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import run_python

X = np.random.default_rng(0).standard_normal((6, 5))
G = np.random.default_rng(1).standard_normal((6, 5))
HUGE = np.broadcast_to(np.float32(0.0), (2**21, 2**21))  # 2**42 elements, 16 TiB as float32
HUGE_HALF = np.broadcast_to(np.float16(0.0), HUGE.shape)
ONE_HOT = np.eye(5)[np.arange(6) % 5]
BIG_ROW = np.broadcast_to(np.float32(0.0), (1, 2**21))


def _cases():
    """(id, exception, message fragment or None, call(rng))."""
    yield "tau0", ValueError, "tau", lambda r: gs.gumbel_softmax(X, 0.0, rng=r)
    yield (
        "tau_nan_row",
        ValueError,
        "tau",
        lambda r: gs.gumbel_softmax(X, np.array([1, 1, 1, 1, 1, np.nan]), rng=r),
    )
    yield "tau_shape", ValueError, "tau", lambda r: gs.gumbel_softmax(X, np.ones(4), rng=r)
    yield "tau_huge_int", ValueError, "tau", lambda r: gs.gumbel_softmax(X, 10**400, rng=r)
    yield "hard_str", TypeError, "hard", lambda r: gs.gumbel_softmax(X, hard="no", rng=r)
    yield (
        "axis",
        np.exceptions.AxisError if hasattr(np, "exceptions") else ValueError,
        None,
        lambda r: gs.gumbel_softmax(X, axis=2**63, rng=r),
    )
    yield "mask_dtype", TypeError, "mask", lambda r: gs.gumbel_softmax(X, rng=r, mask=np.ones(5))
    yield "out_overlap_mask", ValueError, "mask", _out_overlaps_mask
    yield (
        "out_shape",
        ValueError,
        "out",
        lambda r: gs.gumbel_softmax(X, rng=r, out=np.empty((6, 4))),
    )
    yield "memory_soft", MemoryError, None, lambda r: gs.gumbel_softmax(HUGE, rng=r)
    yield "memory_soft_half", MemoryError, None, lambda r: gs.gumbel_softmax(HUGE_HALF, rng=r)
    yield (
        "memory_hard_soft",
        MemoryError,
        None,
        lambda r: gs.gumbel_softmax(HUGE, hard=True, return_soft=True, rng=r),
    )
    yield "log_tau", ValueError, "tau", lambda r: gs.log_gumbel_softmax(X, -1.0, rng=r)
    yield "memory_log", MemoryError, None, lambda r: gs.log_gumbel_softmax(HUGE, rng=r)
    yield "categorical_axis", TypeError, "axis", lambda r: gs.categorical(X, axis=True, rng=r)
    yield (
        "memory_categorical",
        MemoryError,
        None,
        lambda r: gs.categorical(np.broadcast_to(np.float32(0.0), (2**42, 2)), rng=r),
    )
    yield "top_k_k", ValueError, "k", lambda r: gs.top_k(X, 6, rng=r)
    yield (
        "memory_top_k",
        MemoryError,
        None,
        lambda r: gs.top_k(np.broadcast_to(np.float32(0.0), (2**42, 4)), 4, rng=r),
    )
    yield (
        "recompute_shape",
        ValueError,
        "logits",
        lambda r: gs.gumbel_softmax_backward(G[:3], logits=X, rng=r),
    )
    yield (
        "recompute_memory",
        MemoryError,
        None,
        lambda r: gs.gumbel_softmax_backward(HUGE, logits=HUGE, rng=r),
    )
    yield "bernoulli_tau", ValueError, "tau", lambda r: gs.relaxed_bernoulli(X, np.inf, rng=r)
    yield "bernoulli_hard", TypeError, "hard", lambda r: gs.relaxed_bernoulli(X, hard=1, rng=r)
    yield "memory_bernoulli", MemoryError, None, lambda r: gs.relaxed_bernoulli(HUGE, rng=r)
    yield (
        "memory_bernoulli_half",
        MemoryError,
        None,
        lambda r: gs.relaxed_bernoulli(HUGE_HALF, hard=True, return_soft=True, rng=r),
    )
    yield "gumbel_shape", ValueError, "shape", lambda r: gs.gumbel((2**40, 2**30), rng=r)
    yield "gumbel_shape_64", ValueError, "shape", lambda r: gs.gumbel((2**64, 2), rng=r)
    yield "gumbel_dtype", TypeError, "dtype", lambda r: gs.gumbel((3, 4), dtype=np.int32, rng=r)
    yield "memory_gumbel", MemoryError, None, lambda r: gs.gumbel((2**21, 2**21), rng=r)
    yield (
        "memory_gumbel_half",
        MemoryError,
        None,
        lambda r: gs.gumbel((2**21, 2**21), dtype=np.float16, rng=r),
    )
    yield (
        "conditional_index_dtype",
        TypeError,
        "index",
        lambda r: gs.conditional_gumbel(X, np.zeros(6), rng=r),
    )
    yield (
        "conditional_index_range",
        IndexError,
        "index",
        lambda r: gs.conditional_gumbel(X, np.full(6, 5), rng=r),
    )
    yield (
        "conditional_index_masked",
        ValueError,
        "index",
        lambda r: gs.conditional_gumbel(np.where(X > 0, X, -np.inf), np.argmin(X, -1), rng=r),
    )
    yield (
        "conditional_out",
        ValueError,
        "out",
        lambda r: gs.conditional_gumbel(X, np.zeros(6, int), rng=r, out=np.empty((6, 4))),
    )
    yield (
        "memory_conditional",
        MemoryError,
        None,
        lambda r: gs.conditional_gumbel(HUGE, np.zeros(2**21, np.int64), rng=r),
    )
    yield (
        "memory_conditional_half",
        MemoryError,
        None,
        lambda r: gs.conditional_gumbel(HUGE_HALF, np.zeros(2**21, np.int64), rng=r),
    )
    yield "subset_k", ValueError, "k", lambda r: gs.relaxed_top_k(X, 6, rng=r)
    yield "subset_k0", ValueError, "k", lambda r: gs.relaxed_top_k(X, 0, rng=r)
    yield "subset_k_type", TypeError, "k", lambda r: gs.relaxed_top_k(X, 2.0, rng=r)
    yield "subset_tau", ValueError, "tau", lambda r: gs.relaxed_top_k(X, 2, 0.0, rng=r)
    yield "subset_hard", TypeError, "hard", lambda r: gs.relaxed_top_k(X, 2, hard="no", rng=r)
    yield (
        "subset_mask",
        TypeError,
        "mask",
        lambda r: gs.relaxed_top_k(X, 2, rng=r, mask=np.ones(5)),
    )
    yield (
        "subset_out",
        ValueError,
        "out",
        lambda r: gs.relaxed_top_k(X, 2, rng=r, out=np.empty((6, 4))),
    )
    yield "memory_subset", MemoryError, None, lambda r: gs.relaxed_top_k(HUGE, 2, rng=r)
    yield (
        "memory_subset_half",
        MemoryError,
        None,
        lambda r: gs.relaxed_top_k(HUGE_HALF, 2, hard=True, return_soft=True, rng=r),
    )
    yield (
        "subset_backward_shape",
        ValueError,
        "logits",
        lambda r: gs.relaxed_top_k_backward(G[:3], X, 2, rng=r),
    )
    yield (
        "subset_backward_k",
        ValueError,
        "k",
        lambda r: gs.relaxed_top_k_backward(G, X, 9, rng=r),
    )
    yield (
        "subset_backward_scratch",  # the result fits, k rows of scratch (16 TiB) do not
        MemoryError,
        None,
        lambda r: gs.relaxed_top_k_backward(BIG_ROW, BIG_ROW, 2**21, rng=r),
    )
    yield (
        "subset_backward_memory",
        MemoryError,
        None,
        lambda r: gs.relaxed_top_k_backward(HUGE, HUGE, 2, rng=r),
    )
    yield (
        "gumbel_rao_y_hard",
        ValueError,
        "y_hard",
        lambda r: gs.gumbel_rao_backward(G, X, np.full(X.shape, 0.2), rng=r),
    )
    yield (
        "gumbel_rao_samples",
        ValueError,
        "samples",
        lambda r: gs.gumbel_rao_backward(G, X, ONE_HOT, samples=0, rng=r),
    )
    yield (
        "gumbel_rao_out",
        ValueError,
        "out",
        lambda r: gs.gumbel_rao_backward(G, X, ONE_HOT, rng=r, out=np.empty((6, 4))),
    )
    yield (
        "memory_gumbel_rao",
        MemoryError,
        None,
        lambda r: gs.gumbel_rao_backward(
            HUGE, HUGE, np.broadcast_to(np.eye(1, 2**21, dtype=np.float32), HUGE.shape), rng=r
        ),
    )
    yield (
        "memory_logistic",
        MemoryError,
        None,
        lambda r: gs.logistic((2**21, 2**21), dtype=np.float64, rng=r),
    )


def _out_overlaps_mask(rng):
    buf = np.ones(6 * 5 * 8, bool)
    return gs.gumbel_softmax(X, rng=rng, out=buf.view(np.float64).reshape(6, 5), mask=buf[:5])


CASES = list(_cases())


@pytest.mark.parametrize("exc,match,call", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["Philox", "Generator"])
def test_failed_call_consumes_nothing(kind, exc, match, call):
    if kind == "Philox":
        rng = gs.Philox(11, counter=3)
        before = rng.counter
        state = lambda: rng.counter  # noqa: E731
    else:
        rng = np.random.default_rng(11)
        rng.random()  # a state with a buffered word, too
        before = rng.bit_generator.state
        state = lambda: rng.bit_generator.state  # noqa: E731
    with pytest.raises(exc) as info:
        call(rng)
    if match is not None:
        assert match in str(info.value), str(info.value)
    assert state() == before


def test_generator_draw_is_the_documented_seed():
    """The deferred draw is the same one as before: gs.Philox(rng.integers(0, 2**64,
    dtype=uint64)), so results for a Generator are unchanged."""
    for fn in (
        lambda r: gs.gumbel_softmax(X, 0.5, rng=r),
        lambda r: gs.gumbel((6, 5), rng=r),
        lambda r: gs.relaxed_bernoulli(X, rng=r),
        lambda r: gs.top_k(X, 2, rng=r),
    ):
        a = fn(np.random.default_rng(5))
        seed = int(np.random.default_rng(5).integers(0, 2**64, dtype=np.uint64))
        b = fn(gs.Philox(seed))
        assert a.tobytes() == b.tobytes()


def test_recompute_backward_leaves_a_generator_as_it_was():
    """The memory-saving backward replays the forward's draw from a Generator in the
    forward's state, and leaves it there (as it leaves a Philox)."""
    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    _, soft = gs.gumbel_softmax(X, 0.5, rng=np.random.default_rng(9), return_soft=True)
    got = gs.gumbel_softmax_backward(G, tau=0.5, logits=X, rng=rng)
    assert rng.bit_generator.state == before
    assert got.tobytes() == gs.gumbel_softmax_backward(G, soft, 0.5).tobytes()


def test_failing_recompute_consumes_nothing():
    x = np.zeros((2, 3))
    for kwargs in (
        dict(grad_y=np.zeros((2, 3), complex)),
        dict(grad_y=np.zeros((2, 3)), out=np.zeros((3, 3))),
        dict(grad_y=np.zeros((2, 3)), out=np.zeros((2, 3), np.float32)),
        dict(grad_y=np.zeros((2, 3)), tau=np.array([1.0, 2.0, 3.0])),
        dict(grad_y=np.zeros((2, 3)), mask=np.ones(3, np.int8)),
        dict(grad_y=np.zeros((2, 4))),
    ):
        gen = np.random.default_rng(0)
        state = gen.bit_generator.state
        grad = kwargs.pop("grad_y")
        with pytest.raises((TypeError, ValueError)):
            gs.gumbel_softmax_backward(grad, logits=x, rng=gen, **kwargs)
        assert gen.bit_generator.state == state, kwargs


@pytest.mark.parametrize(
    "rng",
    [3, gs.Philox(3, counter=7), np.random.default_rng(3)],
    ids=["3", "Philox(seed=3, counter=7)", "Generator(PCG64)"],  # no address: stable ids
)
def test_failed_layer_forward_consumes_nothing(rng):
    """GumbelSoftmax turns its rng into a Philox once (documented); a forward that
    raises leaves that Philox's counter where it was."""
    layer = gs.GumbelSoftmax(tau=1.0, rng=rng)
    before = layer.rng.counter
    layer.tau = -1.0  # reassigned between steps, as anneal_tau does, but wrong
    with pytest.raises(ValueError, match="tau"):
        layer.forward(X)
    layer.tau = 1.0
    with pytest.raises(ValueError, match="mask"):
        layer.forward(X, mask=np.ones(4, bool))
    assert layer.rng.counter == before


def test_dask_recompute_backward_leaves_a_generator_as_it_was():
    da = pytest.importorskip("dask.array")
    import gumbel_softmax.dask as gsd

    rng = np.random.default_rng(9)
    before = rng.bit_generator.state
    got = gsd.gumbel_softmax_backward(
        da.from_array(G, chunks=3), tau=0.5, logits=da.from_array(X, chunks=3), rng=rng
    ).compute()
    assert rng.bit_generator.state == before
    _, soft = gs.gumbel_softmax(X, 0.5, rng=np.random.default_rng(9), return_soft=True)
    assert got.tobytes() == gs.gumbel_softmax_backward(G, soft, 0.5).tobytes()


@pytest.mark.parametrize("flag", ["hard", "return_soft"])
@pytest.mark.parametrize("fn", ["gumbel_softmax", "relaxed_bernoulli"])
def test_dask_flags_are_checked_before_the_draw(fn, flag):
    pytest.importorskip("dask.array")
    import gumbel_softmax.dask as gsd

    rng = gs.Philox(2, counter=4)
    with pytest.raises(TypeError, match=flag):
        getattr(gsd, fn)(X, rng=rng, **{flag: "no"})
    assert rng.counter == 4


def test_jax_hard_must_be_a_bool():
    pytest.importorskip("jax")
    import gumbel_softmax.jax as gsj

    with pytest.raises(TypeError, match="hard"):
        gsj.gumbel_softmax(0, X, 0.5, hard="no")


# An address-space limit (RLIMIT_AS) in a child process: Linux, and not under
# AddressSanitizer, which reserves terabytes of address space and aborts on a failed
# allocation (the build without it runs these tests).
needs_address_space_limit = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="RLIMIT_AS and /proc: Linux, without AddressSanitizer",
)


SCRATCH_CHILD = """
import resource, sys
import numpy as np
import gumbel_softmax as gs
gs.set_num_threads(1)  # no thread to create under the limit
x = np.broadcast_to(np.float64(0.0), (2, 2**28))  # top_k keeps a 2 GiB row buffer
# relaxed_top_k: a 512 MiB result, and 1.5 GiB of row buffers (r, e and the sample)
xs = np.broadcast_to(np.float64(0.0), (1, 2**26))
philox, gen = gs.Philox(5, counter=3), np.random.default_rng(5)
state = gen.bit_generator.state
with open("/proc/self/statm") as f:
    used = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, resource.RLIM_INFINITY))
for call in (lambda r: gs.top_k(x, 1, rng=r), lambda r: gs.relaxed_top_k(xs, 2, rng=r)):
    for rng in (philox, gen):
        try:
            call(rng)
        except MemoryError:
            pass
        else:
            sys.exit("no MemoryError")
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
assert philox.counter == 3, philox.counter
assert gen.bit_generator.state == state
print("ok")
"""


@needs_address_space_limit
def test_kernel_scratch_memory_error_gives_the_rows_back():
    """The results fit but the kernel's own row buffer does not (an address-space
    limit): MemoryError, and the rows taken for the call are given back."""
    proc = run_python(SCRATCH_CHILD, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


SHARED_GENERATOR_CHILD = """
import resource, sys, threading, time
import numpy as np
import gumbel_softmax as gs
gs.set_num_threads(1)
G = np.random.default_rng(0)
big = np.zeros((1, 2**22), np.float32)  # relaxed_top_k: a 16 MiB result, 48 MiB of scratch
small = np.zeros((1, 16), np.float32)
outs, errors = [], []
go = threading.Barrier(2)

def failing():
    go.wait()
    t = time.monotonic()
    while time.monotonic() - t < 2:
        try:
            gs.relaxed_top_k(big, 2, 1.0, rng=G)
        except MemoryError:
            errors.append(1)

def drawing():
    go.wait()
    t = time.monotonic()
    while time.monotonic() - t < 2:
        outs.append(gs.gumbel_softmax(small, rng=G).tobytes())

gs.relaxed_top_k(big, 2, 1.0, rng=1)  # warm up before the limit
gs.gumbel_softmax(small, rng=1)
threads = [threading.Thread(target=f) for f in (failing, drawing)]
with open("/proc/self/statm") as f:
    used = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + 56 * 2**20, resource.RLIM_INFINITY))
for t in threads:
    t.start()
for t in threads:
    t.join()
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
assert errors, "no MemoryError"
assert len(set(outs)) == len(outs), (len(outs), len(set(outs)))
print("ok")
"""


@needs_address_space_limit
def test_failed_call_never_undoes_another_threads_draws():
    """A call whose kernel fails (MemoryError of its scratch) gives a numpy Generator's
    draw back only if nothing was drawn from it since: here another thread draws from
    the same Generator all along (2 s), and every one of its draws is distinct.  Giving
    the state back unconditionally rewound those draws, and about 3% of the other
    thread's samples were repeats."""
    proc = run_python(SHARED_GENERATOR_CHILD, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
