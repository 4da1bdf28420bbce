"""gumbel_softmax.torch.reinmax and gumbel_rao as torch.library custom ops (issue 17,
point 1).

- ``torch.compile(fullgraph=True)`` on a model that calls both (and the drop-in): no
  graph break in ``torch._dynamo.explain``, one graph, no warning, the ops in the graph;
- compiled == eager bitwise, forward (``y_hard``, ``p0``) and the gradients reaching the
  model's parameters (inductor and aot_eager; ``generator=None`` under
  ``torch.manual_seed``, draws in program order, and an int seed); successive compiled
  calls draw fresh noise for None, the same for an int seed; a stateful generator costs
  one graph break (fresh noise, equal to eager) and raises under ``fullgraph=True``;
- the draws: the forward is the NumPy API's hard sample and the gradient its estimator
  on the documented Philox (Gumbel-Rao: the rows after the forward's for an int seed,
  the next ``samples * rows`` of a ``Philox``, the next seed of a
  ``numpy.random.Generator`` or of torch's generators), bitwise; a second backward of
  the same graph draws the same rows; float16 and bfloat16 bitwise the float32 call
  rounded (bfloat16) or the NumPy API (float16);
- ``torch.func``: ``grad`` and ``vjp`` = eager autograd; ``vmap(randomness="different")``
  is the eager call on the stacked batch (samples and per-example gradients),
  ``"same"`` every element from one state, ``"error"`` raises drawing nothing, an int
  seed is no random operation; ``jacrev`` = ``torch.autograd.functional.jacobian``;
- bad arguments raise naming them and draw nothing, a failure after the draw (a result
  that cannot be allocated) puts the draw back, eager and compiled, for every kind of
  generator; a second-order gradient raises rather than vanish.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax._torch_ops import seed_from_torch  # noqa: E402
from gumbel_softmax.torch import gumbel_rao, gumbel_softmax, reinmax  # noqa: E402
from torch.func import grad, jacrev, vjp, vmap  # noqa: E402

# inductor's imports use torch.jit.script_method, deprecated in torch 2.13 (torch's warning)
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.script_method` is deprecated:DeprecationWarning"
)


def _data(shape, seed, dtype=torch.float64, scale=2.0):
    return (scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))).to(dtype)


def _bits(t):
    t = t.detach().contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def _same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and _bits(a) == _bits(b)


def _all_same(xs, ys):
    return len(xs) == len(ys) and all(_same(a, b) for a, b in zip(xs, ys))


@pytest.fixture
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


# ------------------------------------------------------------------- the draws, eager
@pytest.mark.parametrize("kind", ["int", "philox", "numpy", "torch", "default"])
def test_gumbel_rao_draws_the_documented_rows(kind):
    """The forward: gs.gumbel_softmax(hard=True) from the generator's state; the gradient:
    gs.gumbel_rao_backward on the conditional draws' Philox, fixed at the forward (the
    NumPy API's calls in the same order on the same generator, for numpy); the generator
    ends where those calls leave it."""
    x, w = _data((6, 5), 1), _data((6, 5), 2)
    xr = x.clone().requires_grad_()
    if kind == "int":
        gen, fwd, bwd = 7, 7, gs.Philox(7, counter=6)
    elif kind == "philox":
        gen, fwd, bwd = gs.Philox(7, counter=2**32 - 2), gs.Philox(7, counter=2**32 - 2), None
    elif kind == "numpy":
        gen = np.random.default_rng(7)
        fwd = bwd = np.random.default_rng(7)  # the NumPy API draws its seeds in order
    else:
        torch.manual_seed(9)
        gen = None if kind == "default" else torch.Generator().manual_seed(7)
        src = None if kind == "default" else torch.Generator().manual_seed(7)
        fwd, bwd = gs.Philox(seed_from_torch(src)), gs.Philox(seed_from_torch(src))
        after = (src or torch.default_generator).get_state()
        torch.manual_seed(9)
    y = gumbel_rao(xr, 0.5, samples=4, generator=gen)
    y_ref = gs.gumbel_softmax(x.numpy(), 0.5, hard=True, rng=fwd)
    assert _same(y.detach(), torch.from_numpy(y_ref))
    if kind == "philox":  # the forward's 6 rows, then 4 * 6 reserved at the forward
        assert gen.counter == 2**32 - 2 + 6 * 5
        bwd = gs.Philox(7, counter=2**32 - 2 + 6)
    if kind in ("torch", "default"):
        assert torch.equal((gen or torch.default_generator).get_state(), after)
    (y * w).sum().backward(retain_graph=True)
    want = gs.gumbel_rao_backward(w.numpy(), x.numpy(), y_ref, 0.5, samples=4, rng=bwd)
    assert _same(xr.grad, torch.from_numpy(want))
    if kind == "numpy":
        assert gen.bit_generator.state == fwd.bit_generator.state
    first = xr.grad.clone()
    (y * w).sum().backward()  # a second backward: the same rows (the sum is exact)
    assert _same(xr.grad, first + first)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("dim", [-1, 0])
def test_half_dtypes_are_the_numpy_api(dtype, dim):
    """float16: the NumPy API on the float16 arrays; bfloat16: its float32 call on the
    same values, rounded to nearest even by torch; p0 is torch.softmax of the tensor."""
    x = _data((5, 9), 3, dtype).requires_grad_()
    w, v = _data((5, 9), 4, dtype), _data((5, 9), 5, dtype)

    def ref(a):
        return (a.float() if dtype == torch.bfloat16 else a).detach().numpy()

    def back(a):
        return torch.from_numpy(a).to(dtype)

    y, p = reinmax(x, 1.25, dim=dim, generator=2)
    y_ref = gs.gumbel_softmax(ref(x), 1.25, hard=True, axis=dim, rng=2)
    assert _same(y.detach(), back(y_ref)) and _same(p.detach(), torch.softmax(x.detach(), dim))
    (gx,) = torch.autograd.grad((y, p), x, (w, v))
    want = gs.reinmax_backward(ref(w), ref(x), y_ref, 1.25, axis=dim, grad_p=ref(v))
    assert _same(gx, back(want))
    y = gumbel_rao(x, 0.8, samples=3, dim=dim, generator=2)
    assert _same(y.detach(), back(y_ref))
    (gx,) = torch.autograd.grad(y, x, w)
    rows = 45 // x.shape[dim]
    rng = gs.Philox(2, counter=rows)
    want = gs.gumbel_rao_backward(ref(w), ref(x), y_ref, 0.8, samples=3, axis=dim, rng=rng)
    assert _same(gx, back(want))


def test_second_order_gradients_raise_rather_than_vanish():
    x = _data((3, 6), 6)

    def f_rao(v):
        return gumbel_rao(v, 0.5, samples=2, generator=1).mul(torch.arange(6.0)).sum()

    def f_rein(v):
        y, p = reinmax(v, 1.0, generator=1)
        return (y * torch.arange(6.0)).sum() + p.pow(2).sum()

    for name, f in (("gumbel_rao", f_rao), ("reinmax", f_rein)):
        xr = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(f(xr), xr, create_graph=True)
        with pytest.raises(RuntimeError, match=f"{name}: the gradient of its gradient"):
            torch.autograd.grad(g.pow(2).sum(), xr)
        with pytest.raises(RuntimeError, match="gradient of its gradient"):
            torch.autograd.functional.hessian(f, x)
        with pytest.raises(RuntimeError, match="gradient of its gradient"):
            grad(lambda v, f=f: grad(f)(v).pow(2).sum())(x)
        with pytest.raises(RuntimeError, match="vectorize=False"):
            torch.autograd.functional.jacobian(lambda v, n=name: _out(n, v), x, vectorize=True)


def _out(name, v):
    if name == "gumbel_rao":
        return gumbel_rao(v, 0.5, samples=2, generator=1)
    return reinmax(v, 1.0, generator=1)[0]


# ------------------------------------------------------------------- torch.compile
class Model(torch.nn.Module):
    """A linear layer, then both estimators and the drop-in: the draws of one graph."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 6, bias=False)

    def forward(self, x, generator=None):
        z = self.lin(x)
        y, p = reinmax(z, 1.5, generator=generator)
        r = gumbel_rao(z, 0.5, samples=5, dim=0, generator=generator)
        s = gumbel_softmax(z, 0.7, generator=generator)
        return y, p, r, s


def _step(model, x, generator=None):
    """Outputs and the weight's gradient for a loss linear in every output (the
    gradients reaching the outputs are exact, so that the comparison is of our ops and
    torch's matmul, not of a reduction that inductor orders otherwise)."""
    model.zero_grad()
    outs = model(x, generator)
    ws = [_data(o.shape, 20 + i, o.dtype) for i, o in enumerate(outs)]
    torch.autograd.backward(outs, ws)
    return [o.detach() for o in outs] + [model.lin.weight.grad.clone()]


@pytest.mark.usefixtures("_fresh_dynamo")
def test_fullgraph_has_no_graph_break_and_no_warning():
    model, x = Model(), _data((16, 8), 7, torch.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explained = torch._dynamo.explain(model)(x)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    assert [str(w.message) for w in caught] == []
    code = "\n".join(g.code for g in explained.graphs)
    for op in ("gumbel_softmax.reinmax", "gumbel_softmax.gumbel_rao", "gumbel_rao_seed"):
        assert op in code


@pytest.mark.usefixtures("_fresh_dynamo")
@pytest.mark.parametrize(
    "backend, generator", [("aot_eager", None), ("aot_eager", 12), ("inductor", None)]
)
def test_compiled_equals_eager_bitwise_and_draws_fresh_noise(backend, generator):
    """Two steps from the same torch.manual_seed (None: the seed ops draw in program
    order, so that compiled = eager) or seed, forward and gradient; None draws other
    noise at the second call, an int seed the same."""
    model, x = Model(), _data((16, 8), 8, torch.float32)
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    runs = {}
    for name, fn in (("eager", model), ("compiled", compiled)):
        torch.manual_seed(5)
        runs[name] = [_step(fn, x, generator) for _ in range(2)]
    for a, b in zip(runs["eager"], runs["compiled"]):
        assert _all_same(a, b)
    first, second = runs["compiled"]
    for i in (0, 2, 3, 4):  # y_hard, gumbel_rao's sample, the drop-in's, the gradient
        assert torch.equal(first[i], second[i]) == (generator is not None)


@pytest.mark.usefixtures("_fresh_dynamo")
def test_int_seed_conditional_rows_follow_the_batch_size_when_compiled():
    """An int seed's conditional draws start after the forward's rows, a count that
    Dynamo makes symbolic when the batch size changes (a recompilation with dynamic
    shapes): every size compiled = eager, forward and gradient."""

    def f(x):
        return gumbel_rao(x * 1, 0.5, samples=3, generator=4)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    for n in (6, 9, 13):
        w = _data((n, 5), n)
        runs = []
        for fn in (f, compiled):
            x = _data((n, 5), 30).requires_grad_()
            y = fn(x)
            runs.append([y.detach(), torch.autograd.grad(y, x, w)[0]])
        assert _all_same(runs[0], runs[1])


@pytest.mark.usefixtures("_fresh_dynamo")
@pytest.mark.parametrize("fn_name", ["reinmax", "gumbel_rao"])
@pytest.mark.parametrize("kind", ["torch", "philox", "numpy"])
def test_stateful_generators_cost_a_graph_break_not_frozen_noise(fn_name, kind):
    """A torch.Generator, Philox or numpy.random.Generator: one graph break (the draws
    run eagerly at every call), fresh noise per call, samples and gradients equal to the
    eager calls'; under fullgraph=True an error rather than noise frozen into the graph."""

    def make():
        return {
            "torch": torch.Generator().manual_seed(3),
            "philox": gs.Philox(3),
            "numpy": np.random.default_rng(3),
        }[kind]

    def f(x, gen):
        # (the tensor returned as is: a frame that Dynamo starts or resumes at a graph
        # break with a non-leaf tensor that requires grad warns, torch's warning)
        if fn_name == "reinmax":
            return reinmax(x, 1.0, generator=gen)
        return gumbel_rao(x, 0.5, samples=3, generator=gen)

    def g(x, gen):
        return f(x * 2, gen)

    x = _data((8, 6), 9, torch.float32, scale=0.1)  # two draws give one sample: p < 1e-5
    assert torch._dynamo.explain(g)(x, make()).graph_break_count == 1
    torch._dynamo.reset()
    with pytest.raises(Exception, match=r"(?i)graph break|skip|disable"):
        torch.compile(g, backend="aot_eager", fullgraph=True)(x, make())
    torch._dynamo.reset()
    x.requires_grad_()
    compiled = torch.compile(f, backend="aot_eager")
    results = []
    for fn in (compiled, f):
        gen, runs = make(), []
        for _ in range(3):
            y = fn(x, gen)
            y = y[0] if isinstance(y, tuple) else y
            runs += [y.detach(), torch.autograd.grad(y, x, torch.arange(6.0).expand(8, 6))[0]]
        results.append(runs)
    assert _all_same(results[0], results[1])
    assert not torch.equal(results[0][0], results[0][2])


# ------------------------------------------------------------------- torch.func
def _loss(fn_name, w, generator):
    def loss(v):
        if fn_name == "reinmax":
            y, p = reinmax(v, 1.5, generator=generator)
            return (y * w).sum() + (p * w.flip(-1)).sum()
        return (gumbel_rao(v, 0.5, samples=3, generator=generator) * w).sum()

    return loss


@pytest.mark.parametrize("fn_name", ["reinmax", "gumbel_rao"])
@pytest.mark.parametrize("kind", ["default", "int", "philox"])
def test_grad_and_vjp_equal_eager_autograd(fn_name, kind):
    x, w = _data((5, 7), 10), _data((5, 7), 11)

    def loss():
        return _loss(fn_name, w, {"default": None, "int": 9, "philox": gs.Philox(9)}[kind])

    torch.manual_seed(2)
    gx = grad(loss())(x)
    torch.manual_seed(2)
    _, pull = vjp(loss(), x)
    (gv,) = pull(torch.tensor(1.0, dtype=torch.float64))
    torch.manual_seed(2)
    xe = x.clone().requires_grad_()
    loss()(xe).backward()
    assert _same(gx, xe.grad) and _same(gv, xe.grad)


@pytest.mark.parametrize("fn_name", ["reinmax", "gumbel_rao"])
def test_vmap_randomness_modes(fn_name):
    """ "different": the eager call on the stacked batch (samples and per-example
    gradients); "same": every element the eager call from the same state; "error":
    RuntimeError, nothing drawn; an int seed: every element that seed's call."""
    x, w = _data((4, 5, 7), 12), _data((4, 5, 7), 13)

    def per_example(v, wv, generator=None):
        return grad(lambda u: _loss(fn_name, wv, generator)(u))(v)

    torch.manual_seed(3)
    got = vmap(per_example, randomness="different")(x, w)
    torch.manual_seed(3)
    xe = x.clone().requires_grad_()
    _loss(fn_name, w, None)(xe).backward()
    assert _same(got, xe.grad)
    torch.manual_seed(3)
    got = vmap(per_example, randomness="same")(x, w)
    for b in range(4):
        torch.manual_seed(3)
        assert _same(got[b], per_example(x[b], w[b]))
    before = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(per_example)(x, w)
    assert torch.equal(before, torch.get_rng_state())
    got = vmap(lambda v, wv: per_example(v, wv, 6))(x, w)
    assert all(_same(got[b], per_example(x[b], w[b], 6)) for b in range(4))
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("fn_name", ["reinmax", "gumbel_rao"])
def test_jacrev_equals_autograd_jacobian(fn_name):
    """Every row of the Jacobian from the same draws (the backward's state is fixed at
    the forward), as autograd.functional.jacobian's loop of backwards."""
    x = _data((2, 5), 14)
    jr = jacrev(lambda v: _out(fn_name, v))(x)
    ja = torch.autograd.functional.jacobian(lambda v: _out(fn_name, v), x)
    assert _same(jr, ja)


# ------------------------------------------------------------------- errors
X = torch.zeros(4, 3)

BAD = [
    ("reinmax", (X, 0.5), {}, ValueError, "tau must be >= 1"),
    ("reinmax", (X, float("nan")), {}, ValueError, "tau"),
    ("reinmax", (X, torch.ones(2)), {}, ValueError, "tau"),
    ("gumbel_rao", (X, 0.0), {}, ValueError, "tau"),
    ("gumbel_rao", (X,), {"samples": 0}, ValueError, "samples"),
    ("gumbel_rao", (X,), {"samples": 1.5}, TypeError, "samples"),
    ("gumbel_rao", (X,), {"samples": True}, TypeError, "samples"),
    ("gumbel_rao", (X,), {"samples": 2**62}, ValueError, "samples"),
    ("both", (X,), {"dim": 2}, IndexError, "dim"),
    ("both", (X,), {"dim": 1.0}, TypeError, "dim"),
    ("both", (X.numpy(),), {}, TypeError, "logits"),
    ("both", (X.int(),), {}, TypeError, "logits"),
    ("both", (torch.zeros(()),), {}, ValueError, "logits"),
    ("both", (torch.zeros(4, 0),), {}, ValueError, "length 0"),
    ("both", (X,), {"generator": -1}, ValueError, "generator"),
    ("both", (X,), {"generator": "a"}, TypeError, "generator"),
]


@pytest.mark.parametrize(
    "name, args, kwargs, exc, match", BAD, ids=[str(i) for i in range(len(BAD))]
)
def test_errors_name_the_argument_and_draw_nothing(name, args, kwargs, exc, match):
    for fn in {"reinmax": [reinmax], "gumbel_rao": [gumbel_rao]}.get(name, [reinmax, gumbel_rao]):
        torch.manual_seed(0)
        before = torch.get_rng_state()
        with pytest.raises(exc, match=match):
            fn(*args, **kwargs)
        assert torch.equal(before, torch.get_rng_state())
        if "generator" not in kwargs:
            p, g = gs.Philox(1), torch.Generator().manual_seed(1)
            state = g.get_state()
            with pytest.raises(exc, match=match):
                fn(*args, **kwargs, generator=p)
            with pytest.raises(exc, match=match):
                fn(*args, **kwargs, generator=g)
            assert p.counter == 0 and torch.equal(g.get_state(), state)


@pytest.mark.usefixtures("_fresh_dynamo")
@pytest.mark.parametrize("case", [0, 4, 7, 8, 14], ids=lambda i: BAD[i][4])
def test_compiled_calls_with_bad_arguments_raise_and_draw_nothing(case):
    """Under torch.compile the checks run when Dynamo traces the call (it then runs the
    frame eagerly, which raises the same exception); nothing is drawn, from torch's
    default generator or a Philox."""
    name, args, kwargs, exc, match = BAD[case]
    fn = reinmax if name == "reinmax" else gumbel_rao
    for gen in (None, gs.Philox(1)):
        extra = {} if "generator" in kwargs else {"generator": gen}
        compiled = torch.compile(lambda x: fn(x, *args[1:], **kwargs, **extra), backend="aot_eager")
        torch.manual_seed(0)
        before = torch.get_rng_state()
        with pytest.raises(exc, match=match):
            compiled(args[0])
        assert torch.equal(before, torch.get_rng_state())
        assert gen is None or gen.counter == 0


@pytest.mark.usefixtures("_fresh_dynamo")
@pytest.mark.parametrize("fn_name", ["reinmax", "gumbel_rao"])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("kind", ["default", "torch", "numpy", "philox"])
def test_a_failure_after_the_draw_draws_nothing(fn_name, compiled, kind):
    """Results that cannot be allocated (a 4 TiB expanded input): the call raises and
    every generator is where it was (compiled: the op puts back the draw that made its
    state, the seed op's or the eager one's of a stateful generator)."""
    huge = torch.zeros(1).expand(2**20, 2**20)
    gen = {
        "default": lambda: None,
        "torch": lambda: torch.Generator().manual_seed(1),
        "numpy": lambda: np.random.default_rng(2),
        "philox": lambda: gs.Philox(3, counter=5),
    }[kind]()

    def f(x):
        if fn_name == "reinmax":
            return reinmax(x, generator=gen)[0]
        return gumbel_rao(x, samples=3, generator=gen)

    fn = torch.compile(f, backend="aot_eager") if compiled else f
    torch.manual_seed(4)

    def snapshot():
        if kind in ("default", "torch"):
            return (gen or torch.default_generator).get_state()
        return gen.bit_generator.state if kind == "numpy" else gen.counter

    state = snapshot()
    # our allocations raise MemoryError, torch's (reinmax's p0) RuntimeError
    with pytest.raises((MemoryError, RuntimeError), match="(?i)memory|allocate"):
        fn(huge)
    after = snapshot()
    assert torch.equal(after, state) if isinstance(state, torch.Tensor) else after == state
