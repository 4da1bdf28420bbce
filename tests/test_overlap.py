"""``out`` sharing memory with any input of any function raises ValueError naming both.

The kernels read their inputs while they write ``out``; an ``out`` that shares bytes
with an input other than exactly (the documented in-place uses) would read what it has
already written.  Each (function, input) pair below gets an ``out`` whose bytes overlap
that input's, and must raise before anything is written or drawn; the documented
in-place cases must give the out-of-place result bit for bit.
"""

import gumbel_softmax as gs
import numpy as np
import pytest

SHAPE = (6, 5)
RNG = np.random.default_rng(0)
X = RNG.standard_normal(SHAPE)
GY = RNG.standard_normal(SHAPE)
YS = gs.gumbel_softmax(X, rng=1)
IDX = np.array([0, 4, 2, 1, 3, 0])  # conditional_gumbel: one index per row
YH = gs.gumbel_softmax(X, hard=True, rng=1)


def _shared(out_dtype, in_dtype, in_shape):
    """(out, input, buffer): views into one byte buffer, the input starting half-way
    into out's bytes (a partial overlap)."""
    out_bytes = np.dtype(out_dtype).itemsize * int(np.prod(SHAPE))
    in_bytes = np.dtype(in_dtype).itemsize * int(np.prod(in_shape))
    buf = np.zeros(out_bytes + in_bytes + 64, np.uint8)
    start = (out_bytes // 2) // 8 * 8
    out = buf[:out_bytes].view(out_dtype).reshape(SHAPE)
    inp = buf[start : start + in_bytes].view(in_dtype).reshape(in_shape)
    return out, inp, buf


def _fill(inp, name):
    if name == "mask":
        inp[...] = True
    elif name == "tau":
        inp[...] = 0.75
    elif name == "index":
        inp[...] = IDX
    elif name == "y_soft":
        inp[...] = YS[: inp.shape[0]] if inp.shape == SHAPE else 0.2
    elif name == "y_hard":
        inp[...] = YH
    else:
        inp[...] = {"logits": X, "grad_y": GY, "grad_p": GY}[name]


# (function name, input name, input dtype, input shape, call(input, out, rng))
PAIRS = [
    (
        "gumbel_softmax",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax(a, rng=r, out=o),
    ),
    (
        "gumbel_softmax",
        "mask",
        np.bool_,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax(X, rng=r, out=o, mask=a),
    ),
    (
        "gumbel_softmax",
        "mask",
        np.bool_,
        SHAPE[1:],
        lambda a, o, r: gs.gumbel_softmax(X, rng=r, out=o, mask=a),
    ),
    (
        "gumbel_softmax",
        "tau",
        np.float64,
        SHAPE[:1],
        lambda a, o, r: gs.gumbel_softmax(X, a, rng=r, out=o),
    ),
    (
        "gumbel_softmax hard",
        "mask",
        np.bool_,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax(X, hard=True, rng=r, out=o, mask=a),
    ),
    (
        "log_gumbel_softmax",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.log_gumbel_softmax(a, rng=r, out=o),
    ),
    (
        "log_gumbel_softmax",
        "mask",
        np.bool_,
        SHAPE,
        lambda a, o, r: gs.log_gumbel_softmax(X, rng=r, out=o, mask=a),
    ),
    (
        "log_gumbel_softmax",
        "tau",
        np.float64,
        SHAPE[:1],
        lambda a, o, r: gs.log_gumbel_softmax(X, a, rng=r, out=o),
    ),
    (
        "gumbel_softmax_backward",
        "grad_y",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax_backward(a, YS, out=o),
    ),
    (
        "gumbel_softmax_backward",
        "y_soft",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax_backward(GY, a, out=o),
    ),
    (
        "gumbel_softmax_backward",
        "tau",
        np.float64,
        SHAPE[:1],
        lambda a, o, r: gs.gumbel_softmax_backward(GY, YS, a, out=o),
    ),
    (
        "gumbel_softmax_backward recompute",
        "grad_y",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax_backward(a, logits=X, rng=r, out=o),
    ),
    (
        "gumbel_softmax_backward recompute",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax_backward(GY, logits=a, rng=r, out=o),
    ),
    (
        "gumbel_softmax_backward recompute",
        "mask",
        np.bool_,
        SHAPE,
        lambda a, o, r: gs.gumbel_softmax_backward(GY, logits=X, rng=r, out=o, mask=a),
    ),
    (
        "gumbel_softmax_backward recompute",
        "tau",
        np.float64,
        SHAPE[:1],
        lambda a, o, r: gs.gumbel_softmax_backward(GY, tau=a, logits=X, rng=r, out=o),
    ),
    (
        "conditional_gumbel",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.conditional_gumbel(a, IDX, rng=r, out=o),
    ),
    (
        "conditional_gumbel",
        "index",
        np.int64,
        SHAPE[:1],
        lambda a, o, r: gs.conditional_gumbel(X, a, rng=r, out=o),
    ),
    (
        "conditional_gumbel axis 0",
        "index",
        np.int64,
        SHAPE[:1],
        lambda a, o, r: gs.conditional_gumbel(X.T, a, axis=0, rng=r, out=o.T),
    ),
    (
        "relaxed_bernoulli",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_bernoulli(a, rng=r, out=o),
    ),
    (
        "relaxed_bernoulli",
        "tau",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_bernoulli(X, a, rng=r, out=o),
    ),
    (
        "relaxed_bernoulli_backward",
        "grad_y",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_bernoulli_backward(a, YS, out=o),
    ),
    (
        "relaxed_bernoulli_backward",
        "y_soft",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_bernoulli_backward(GY, a, out=o),
    ),
    (
        "relaxed_bernoulli_backward",
        "tau",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_bernoulli_backward(GY, YS, a, out=o),
    ),
    (
        "gumbel_rao_backward",
        "grad_y",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_rao_backward(a, X, YH, rng=r, out=o),
    ),
    (
        "gumbel_rao_backward",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_rao_backward(GY, a, YH, rng=r, out=o),
    ),
    (
        "gumbel_rao_backward",
        "y_hard",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.gumbel_rao_backward(GY, X, a, rng=r, out=o),
    ),
    (
        "gumbel_rao_backward",
        "mask",
        np.bool_,
        SHAPE,
        lambda a, o, r: gs.gumbel_rao_backward(GY, X, YH, rng=r, out=o, mask=a),
    ),
    (
        "reinmax_backward",
        "grad_y",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.reinmax_backward(a, X, YH, out=o),
    ),
    (
        "reinmax_backward",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.reinmax_backward(GY, a, YH, out=o),
    ),
    (
        "reinmax_backward",
        "y_hard",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.reinmax_backward(GY, X, a, out=o),
    ),
    (
        "reinmax_backward",
        "grad_p",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.reinmax_backward(GY, X, YH, out=o, grad_p=a),
    ),
    (
        "relaxed_top_k",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_top_k(a, 2, rng=r, out=o),
    ),
    (
        "relaxed_top_k hard",
        "mask",
        np.bool_,
        SHAPE,
        lambda a, o, r: gs.relaxed_top_k(X, 2, hard=True, rng=r, out=o, mask=a),
    ),
    (
        "relaxed_top_k",
        "tau",
        np.float64,
        SHAPE[:1],
        lambda a, o, r: gs.relaxed_top_k(X, 2, a, rng=r, out=o),
    ),
    (
        "relaxed_top_k_backward",
        "grad_y",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_top_k_backward(a, X, 2, rng=r, out=o),
    ),
    (
        "relaxed_top_k_backward",
        "logits",
        np.float64,
        SHAPE,
        lambda a, o, r: gs.relaxed_top_k_backward(GY, a, 2, rng=r, out=o),
    ),
    (
        "relaxed_top_k_backward",
        "mask",
        np.bool_,
        SHAPE[1:],
        lambda a, o, r: gs.relaxed_top_k_backward(GY, X, 2, rng=r, out=o, mask=a),
    ),
    (
        "relaxed_top_k_backward",
        "tau",
        np.float64,
        SHAPE[:1],
        lambda a, o, r: gs.relaxed_top_k_backward(GY, X, 2, a, rng=r, out=o),
    ),
]


@pytest.mark.parametrize(
    "fn,name,dtype,shape,call", PAIRS, ids=[f"{p[0]}-{p[1]}-{len(p[3])}d" for p in PAIRS]
)
def test_out_overlapping_an_input_raises_naming_both(fn, name, dtype, shape, call):
    out, inp, buf = _shared(np.float64, dtype, shape)
    _fill(inp, name)
    before = buf.copy()
    rng = gs.Philox(3, counter=9)
    with pytest.raises(ValueError) as info:
        call(inp, out, rng)
    msg = str(info.value)
    assert "out" in msg and name in msg, msg
    assert (buf == before).all(), "bytes were written"
    assert rng.counter == 9, "rows were drawn"


@pytest.mark.parametrize("low", ["float16", "bfloat16"])
def test_half_out_overlapping_mask_raises(low):
    """The float16 / bfloat16 paths (computed in float32, rounded into out) check too."""
    if low == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        low = ml_dtypes.bfloat16
    out, mask, buf = _shared(np.dtype(low), np.bool_, SHAPE)
    mask[...] = True
    with pytest.raises(ValueError, match="mask"):
        gs.gumbel_softmax(X.astype(low), rng=0, out=out, mask=mask)
    with pytest.raises(ValueError, match="grad_y"):
        gs.gumbel_softmax_backward(out[::-1], YS.astype(low), out=out)


# The documented in-place uses: out may be exactly this input.
IN_PLACE = [
    ("gumbel_softmax", "logits", lambda a, o: gs.gumbel_softmax(a, 0.5, rng=4, out=o)),
    (
        "gumbel_softmax hard",
        "logits",
        lambda a, o: gs.gumbel_softmax(a, 0.5, hard=True, rng=4, out=o),
    ),
    ("log_gumbel_softmax", "logits", lambda a, o: gs.log_gumbel_softmax(a, 0.5, rng=4, out=o)),
    (
        "gumbel_softmax_backward",
        "grad_y",
        lambda a, o: gs.gumbel_softmax_backward(a, YS, 0.5, out=o),
    ),
    (
        "gumbel_softmax_backward",
        "y_soft",
        lambda a, o: gs.gumbel_softmax_backward(GY, a, 0.5, out=o),
    ),
    (
        "gumbel_softmax_backward recompute",
        "grad_y",
        lambda a, o: gs.gumbel_softmax_backward(a, tau=0.5, logits=X, rng=4, out=o),
    ),
    (
        "conditional_gumbel",
        "logits",
        lambda a, o: gs.conditional_gumbel(a, IDX, rng=4, out=o),
    ),
    ("relaxed_bernoulli", "logits", lambda a, o: gs.relaxed_bernoulli(a, 0.5, rng=4, out=o)),
    (
        "relaxed_bernoulli_backward",
        "grad_y",
        lambda a, o: gs.relaxed_bernoulli_backward(a, YS, 0.5, out=o),
    ),
    (
        "relaxed_bernoulli_backward",
        "y_soft",
        lambda a, o: gs.relaxed_bernoulli_backward(GY, a, 0.5, out=o),
    ),
    (
        "gumbel_rao_backward",
        "grad_y",
        lambda a, o: gs.gumbel_rao_backward(a, X, YH, 0.5, samples=3, rng=4, out=o),
    ),
    ("reinmax_backward", "grad_y", lambda a, o: gs.reinmax_backward(a, X, YH, 1.5, out=o)),
    ("relaxed_top_k", "logits", lambda a, o: gs.relaxed_top_k(a, 2, 0.5, rng=4, out=o)),
    (
        "relaxed_top_k hard",
        "logits",
        lambda a, o: gs.relaxed_top_k(a, 2, 0.5, hard=True, rng=4, out=o),
    ),
    (
        "relaxed_top_k_backward",
        "grad_y",
        lambda a, o: gs.relaxed_top_k_backward(a, X, 2, 0.5, rng=4, out=o),
    ),
]


@pytest.mark.parametrize("fn,name,call", IN_PLACE, ids=[f"{p[0]}-{p[1]}" for p in IN_PLACE])
def test_documented_in_place_equals_out_of_place(fn, name, call):
    src = {"logits": X, "grad_y": GY, "y_soft": YS}[name]
    expected = call(src.copy(), None)
    a = src.copy()
    got = call(a, a)
    assert got is a
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("general", [False, True], ids=["fast path", "general path"])
def test_in_place_when_only_a_length_one_stride_differs(general):
    # x and out are the same elements in the same layout: their strides differ only on a
    # dimension of length 1, whose stride no element uses.  (The mask sends the call
    # through the Python checks; without it the C++ fast path takes it.)
    kw = {"mask": np.ones(4, bool)} if general else {}
    a = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    expected = gs.gumbel_softmax(a.copy()[:, None, :], 0.5, rng=3, **kw)
    x, out = a[:, None, :], a.reshape(3, 1, 4)
    assert x.strides != out.strides
    got = gs.gumbel_softmax(x, 0.5, rng=3, out=out, **kw)
    assert got is out
    assert got.tobytes() == expected.tobytes()
