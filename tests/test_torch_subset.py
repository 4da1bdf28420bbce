"""gumbel_softmax.torch.relaxed_top_k (issue 16): the relaxed k-subset on tensors.

- the sample is bitwise the NumPy API's ``gs.relaxed_top_k`` from the same Philox state
  (float32, float64, float16; bfloat16: the float32 call rounded by torch's own
  ``.to(torch.bfloat16)``), soft and hard, any dim, strided views; ``hard=True`` is the
  k-hot of ``gumbel_softmax.torch.top_k`` from the same generator (every generator kind:
  the same seed draw as the other functions);
- the gradient is bitwise ``gs.relaxed_top_k_backward`` with the forward's state, and
  equals torch autograd of the issue's formula (``r = logits + g``, ``r += log(1 -
  a)``, ``a = softmax(r / tau)``, ``y = sum a``) written in torch ops on our own noise
  (``gs.gumbel``), in float64 (allclose 1e-10); straight-through for ``hard=True``;
- ``torch.compile(fullgraph=True)``: no graph break (``torch._dynamo.explain``), the ops
  in the graph, compiled == eager bitwise (forward and gradient, inductor and
  aot_eager, ``generator=None`` under ``torch.manual_seed`` and an int seed);
- ``torch.func``: ``grad`` and ``vjp`` equal eager autograd; ``vmap`` with
  ``randomness="different"`` is one batched call (samples and per-sample gradients),
  ``"same"`` the same noise for every element, ``"error"`` raises drawing nothing;
  ``jacrev`` equals ``torch.autograd.functional.jacobian``;
- bad arguments raise naming ``k``, ``tau``, ``dim``, ``logits`` and draw nothing (the
  default generator and a ``Philox`` unchanged), as does a failure after the draw (a
  ``MemoryError``: the draw is put back, eager and compiled); a second-order gradient
  raises rather than vanish.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import relaxed_top_k, top_k  # noqa: E402
from torch.func import grad, jacrev, vjp, vmap  # noqa: E402

# inductor's imports use torch.jit.script_method, deprecated in torch 2.13 (torch's warning)
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.script_method` is deprecated:DeprecationWarning"
)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _data(shape, seed, dtype=torch.float64, scale=2.0):
    return (scale * torch.randn(shape, generator=torch.Generator().manual_seed(seed))).to(dtype)


def _bits(t):
    """The tensor's bytes (bitwise comparison, NaN included)."""
    t = t.detach().contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def _same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and _bits(a) == _bits(b)


def _numpy_sample(x, k, tau, hard, dim, rng):
    """gs.relaxed_top_k on the tensor's values: bfloat16 as the float32 call rounded by
    torch (nearest even, as the NumPy API rounds)."""
    if x.dtype == torch.bfloat16:
        y = gs.relaxed_top_k(x.float().numpy(), k, tau, hard=hard, axis=dim, rng=rng)
        return torch.from_numpy(y).to(torch.bfloat16)
    return torch.from_numpy(gs.relaxed_top_k(x.numpy(), k, tau, hard=hard, axis=dim, rng=rng))


def _numpy_grad(w, x, k, tau, dim, rng):
    if x.dtype == torch.bfloat16:
        g = gs.relaxed_top_k_backward(
            w.float().numpy(), x.float().numpy(), k, tau, axis=dim, rng=rng
        )
        return torch.from_numpy(g).to(torch.bfloat16)
    return torch.from_numpy(
        gs.relaxed_top_k_backward(w.numpy(), x.numpy(), k, tau, axis=dim, rng=rng)
    )


def _khot(idx, n):
    """The k-hot of top_k indices along the last dim."""
    return torch.zeros(idx.shape[:-1] + (n,)).scatter(-1, idx, 1.0)


# ------------------------------------------------------------------- the NumPy API's bits
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape, dim, k", [((6, 9), -1, 3), ((4, 5, 7), 1, 2), ((11,), 0, 11)])
def test_bitwise_the_numpy_api_and_its_gradient(dtype, hard, shape, dim, k):
    """Forward: gs.relaxed_top_k from the same Philox (counter advanced alike); gradient:
    gs.relaxed_top_k_backward with the forward's state (for hard too: straight-through)."""
    x = _data(shape, 1).to(dtype).requires_grad_()
    w = _data(shape, 2).to(dtype)
    p = gs.Philox(5, counter=2**32 - 2)
    y = relaxed_top_k(x, k, 0.6, hard=hard, dim=dim, generator=p)
    q = gs.Philox(5, counter=2**32 - 2)
    ref = _numpy_sample(x.detach(), k, 0.6, hard, dim, q)
    assert p.counter == q.counter
    assert _same(y.detach(), ref)
    (y * w).sum().backward()
    assert _same(x.grad, _numpy_grad(w, x.detach(), k, 0.6, dim, gs.Philox(5, counter=2**32 - 2)))


def test_strided_views_and_per_row_tau():
    base = _data((12, 20), 3, torch.float32)
    x = base[::2, 1::3].t()  # a non-contiguous view, rows along dim 0
    tau = torch.linspace(0.3, 2.0, 6)
    y = relaxed_top_k(x, 2, tau, dim=0, generator=4)
    ref = gs.relaxed_top_k(x.numpy(), 2, tau.numpy(), axis=0, rng=4)
    assert _same(y, torch.from_numpy(ref))
    xg = x.clone().requires_grad_()
    (relaxed_top_k(xg, 2, tau, dim=0, generator=4) * x).sum().backward()
    g = gs.relaxed_top_k_backward(x.numpy(), x.numpy(), 2, tau.numpy(), axis=0, rng=4)
    assert _same(xg.grad, torch.from_numpy(g))


@pytest.mark.parametrize("kind", ["default", "torch", "int", "philox", "numpy"])
def test_generator_kinds_draw_as_the_other_functions(kind):
    """hard=True is the k-hot of top_k from the same generator state (the same seed
    drawn, the same rows), and leaves the generator where top_k leaves it; for int,
    Philox and numpy.random.Generator also the NumPy API's sample bitwise."""
    x = _data((8, 10), 4, torch.float32)

    def gen():
        torch.manual_seed(17)
        return {
            "default": None,
            "torch": torch.Generator().manual_seed(3),
            "int": 3,
            "philox": gs.Philox(3, counter=9),
            "numpy": np.random.default_rng(3),
        }[kind]

    g1, g2 = gen(), None
    y = relaxed_top_k(x, 4, 0.5, hard=True, generator=g1)
    after = torch.get_rng_state()
    g2 = gen()
    idx = top_k(x, 4, generator=g2)
    assert torch.equal(y, _khot(idx, 10))
    assert torch.equal(after, torch.get_rng_state())
    if kind == "torch":
        assert torch.equal(g1.get_state(), g2.get_state())
    if kind in ("int", "philox", "numpy"):
        soft = relaxed_top_k(x, 4, 0.5, generator=gen())
        assert _same(soft, _numpy_sample(x, 4, 0.5, False, -1, gen()))
    if kind in ("default", "torch"):  # torch.manual_seed / a seeded Generator reproduce
        assert _same(
            relaxed_top_k(x, 4, 0.5, generator=gen()), relaxed_top_k(x, 4, 0.5, generator=gen())
        )


# ------------------------------------------------------------------- the formula's gradient
@pytest.mark.parametrize("k, tau", [(1, 1.0), (3, 0.5), (6, 2.0), (10, 0.7)])
def test_gradient_is_torch_autograd_of_the_formula(k, tau):
    """float64: the issue's formula in torch ops on our noise (gs.gumbel from the same
    state), differentiated by autograd: allclose (1e-10 relative to the row's gradient
    scale); the sample itself too."""
    x = _data((7, 10), 5).requires_grad_()
    w = _data((7, 10), 6)
    y = relaxed_top_k(x, k, tau, generator=gs.Philox(8, counter=3))
    (y * w).sum().backward()
    xr = x.detach().clone().requires_grad_()
    r = xr + torch.from_numpy(gs.gumbel((7, 10), dtype=np.float64, rng=gs.Philox(8, counter=3)))
    a = torch.zeros_like(r)
    ref = torch.zeros_like(r)
    for _ in range(k):
        r = r + torch.log1p(-a)
        a = torch.softmax(r / tau, dim=-1)
        ref = ref + a
    (ref * w).sum().backward()
    assert torch.allclose(y.detach(), ref.detach(), rtol=0, atol=1e-12)
    scale = xr.grad.abs().amax(-1, keepdim=True) + w.abs().amax(-1, keepdim=True)
    assert torch.all((x.grad - xr.grad).abs() <= 1e-10 * scale)


def test_minus_inf_categories_get_zero_and_no_gradient():
    x = _data((5, 8), 7)
    x[:, 2] = -float("inf")
    x.requires_grad_()
    y = relaxed_top_k(x, 3, 0.5, generator=1)
    (y * _data((5, 8), 8)).sum().backward()
    assert torch.all(y[:, 2] == 0) and torch.all(x.grad[:, 2] == 0)
    assert torch.allclose(y.detach().sum(-1), torch.full((5,), 3.0, dtype=torch.float64))


def test_second_order_gradients_raise_rather_than_vanish():
    """The backward is a kernel (once differentiable): differentiating the gradient
    raises, for backward(), autograd.grad, hessian and nested torch.func.grad alike (a
    silent zero second derivative would be a wrong answer); jacobian(vectorize=True)
    raises naming the alternatives."""
    x = _data((3, 6), 9)

    def f(v):
        return relaxed_top_k(v, 2, generator=1).pow(2).sum()

    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(xr), xr, create_graph=True)
    with pytest.raises(RuntimeError, match="gradient of its gradient"):
        torch.autograd.grad(g.sum(), xr)
    with pytest.raises(RuntimeError, match="gradient of its gradient"):
        g.sum().backward()
    with pytest.raises(RuntimeError, match="gradient of its gradient"):
        torch.autograd.functional.hessian(f, x)
    with pytest.raises(RuntimeError, match="gradient of its gradient"):
        grad(lambda v: grad(f)(v).sum())(x)
    with pytest.raises(RuntimeError, match="vectorize=False"):
        torch.autograd.functional.jacobian(
            lambda v: relaxed_top_k(v, 2, generator=1), x, vectorize=True
        )


# ------------------------------------------------------------------- torch.compile
@pytest.fixture
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _model(x, lin, generator=None):
    return relaxed_top_k(x @ lin, 3, 0.7, hard=True, generator=generator), relaxed_top_k(
        x @ lin, 2, 0.4, dim=0, generator=generator
    )


@pytest.mark.usefixtures("_fresh_dynamo")
def test_compile_fullgraph_has_no_graph_break():
    x, lin = _data((16, 8), 10, torch.float32), _data((8, 6), 11, torch.float32)
    explained = torch._dynamo.explain(_model)(x, lin)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    code = "\n".join(g.code for g in explained.graphs)
    assert "gumbel_softmax.seed" in code and "gumbel_softmax.relaxed_top_k" in code


@pytest.mark.usefixtures("_fresh_dynamo")
@pytest.mark.parametrize(
    "backend, generator", [("aot_eager", None), ("aot_eager", 12), ("inductor", None)]
)
def test_compiled_equals_eager_bitwise(backend, generator):
    """Forward and the gradients reaching x and lin (w exactly: the loss is linear), from
    the same torch.manual_seed (None) or seed; two compiled calls draw anew for None.
    Everything is compared bit for bit, except under inductor the gradients of x and lin:
    they come out of torch's matmul backward, which inductor may sum in another order than
    eager (seen on an AVX2 machine: lin's gradient 1 ulp apart), so there they are
    compared within 8 float32 ulps of their largest entry."""
    x0, lin0 = _data((16, 8), 12, torch.float32), _data((8, 6), 13, torch.float32)
    w1, w2 = _data((16, 6), 14, torch.float32), _data((16, 6), 15, torch.float32)
    compiled = torch.compile(_model, backend=backend, fullgraph=True)
    results = []
    for fn in (_model, compiled):
        torch.manual_seed(5)
        runs = []
        for _ in range(2):
            x, lin = x0.clone().requires_grad_(), lin0.clone().requires_grad_()
            y, s = fn(x, lin, generator)
            torch.autograd.backward((y, s), (w1, w2))
            runs.append([y.detach(), s.detach(), x.grad, lin.grad])
        results.append(runs)
    for a, b in zip(results[0], results[1]):
        assert _same(a[0], b[0]) and _same(a[1], b[1])
        for u, v in zip(a[2:], b[2:]):
            if backend == "inductor":
                # 8 float32 ulps of the largest entry: a reordered sum, not a wrong value
                tol = 8 * torch.finfo(torch.float32).eps * float(u.abs().max())
                torch.testing.assert_close(v, u, rtol=0, atol=tol)
            else:
                assert _same(u, v)
    fresh = not torch.equal(results[1][0][1], results[1][1][1])
    assert fresh == (generator is None)


# ------------------------------------------------------------------- torch.func
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("kind", ["default", "int", "philox"])
def test_grad_and_vjp_equal_eager_autograd(hard, kind):
    x, w = _data((5, 7), 16), _data((5, 7), 17)

    def gen():
        return {"default": None, "int": 9, "philox": gs.Philox(9)}[kind]

    def loss(v, g):
        return (relaxed_top_k(v, 3, 0.6, hard=hard, generator=g) * w).sum()

    torch.manual_seed(2)
    gx = grad(loss)(x, gen())
    torch.manual_seed(2)
    y, pull = vjp(lambda v: relaxed_top_k(v, 3, 0.6, hard=hard, generator=gen()), x)
    (gv,) = pull(w)
    torch.manual_seed(2)
    xe = x.clone().requires_grad_()
    loss(xe, gen()).backward()
    assert _same(gx, xe.grad) and _same(gv, xe.grad)


def test_vmap_different_is_one_batched_call_with_per_sample_gradients():
    x, w = _data((4, 5, 7), 18), _data((4, 5, 7), 19)
    torch.manual_seed(3)
    y = vmap(lambda v: relaxed_top_k(v, 2, 0.5), randomness="different")(x)
    torch.manual_seed(3)
    assert _same(y, relaxed_top_k(x, 2, 0.5))

    def loss(v, wv):
        return (relaxed_top_k(v, 2, 0.5) * wv).sum()

    torch.manual_seed(3)
    per = vmap(grad(loss), randomness="different")(x, w)
    torch.manual_seed(3)
    xe = x.clone().requires_grad_()
    (relaxed_top_k(xe, 2, 0.5) * w).sum().backward()
    assert _same(per, xe.grad)


def test_vmap_same_and_error():
    x = _data((3, 6), 20)
    torch.manual_seed(4)
    y = vmap(lambda v: relaxed_top_k(v, 2, 0.5), randomness="same")(x)
    for b in range(3):  # "same": every element the noise of one call from the state
        torch.manual_seed(4)
        assert _same(y[b], relaxed_top_k(x[b], 2, 0.5))
    before = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="randomness"):
        vmap(lambda v: relaxed_top_k(v, 2, 0.5))(x)
    assert torch.equal(before, torch.get_rng_state())
    # an int seed is no random operation: every element that seed's noise
    z = vmap(lambda v: relaxed_top_k(v, 2, 0.5, generator=6))(x)
    assert all(_same(z[b], relaxed_top_k(x[b], 2, 0.5, generator=6)) for b in range(3))


def test_jacrev_equals_autograd_jacobian():
    x = _data((2, 5), 21)
    jr = jacrev(lambda v: relaxed_top_k(v, 2, 0.8, generator=3))(x)
    ja = torch.autograd.functional.jacobian(lambda v: relaxed_top_k(v, 2, 0.8, generator=3), x)
    assert torch.allclose(jr, ja, rtol=0, atol=1e-15)


# ------------------------------------------------------------------- errors
X = torch.zeros(4, 3)

BAD = [
    ((X, 0), {}, ValueError, "k must be in"),
    ((X, 4), {}, ValueError, "k must be in"),
    ((X, 2.0), {}, TypeError, "k must be an integer"),
    ((X, True), {}, TypeError, "k must be an integer"),
    ((X, 2), {"tau": 0.0}, ValueError, "tau"),
    ((X, 2), {"tau": float("nan")}, ValueError, "tau"),
    ((X, 2), {"tau": torch.ones(5)}, ValueError, "tau"),
    ((X, 2), {"tau": torch.tensor([1.0, -1.0, 1.0, 1.0])}, ValueError, "tau"),
    ((X, 2), {"tau": torch.ones(4, requires_grad=True)}, ValueError, "tau"),
    ((X, 2), {"dim": 2}, IndexError, "dim"),
    ((X, 2), {"dim": 1.0}, TypeError, "dim"),
    ((X, 2), {"hard": "yes"}, TypeError, "hard"),
    ((X.numpy(), 2), {}, TypeError, "logits"),
    ((X.int(), 2), {}, TypeError, "logits"),
    ((torch.zeros(()), 1), {}, ValueError, "logits"),
    ((torch.zeros(4, 0), 1), {}, ValueError, "k must be in|length 0"),
    ((X, 2), {"generator": -1}, ValueError, "generator"),
    ((X, 2), {"generator": "a"}, TypeError, "generator"),
]


@pytest.mark.parametrize("args, kwargs, exc, match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_errors_name_the_argument_and_draw_nothing(args, kwargs, exc, match):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    with pytest.raises(exc, match=match):
        relaxed_top_k(*args, **kwargs)
    assert torch.equal(before, torch.get_rng_state())
    if "generator" not in kwargs:
        p = gs.Philox(1)
        with pytest.raises(exc, match=match):
            relaxed_top_k(*args, **kwargs, generator=p)
        assert p.counter == 0


@pytest.mark.usefixtures("_fresh_dynamo")
@pytest.mark.parametrize(
    "kind, compiled", [("default", False), ("torch", False), ("philox", False), ("default", True)]
)
def test_a_failure_after_the_draw_draws_nothing(kind, compiled):
    """A result that cannot be allocated (a 4 TiB expanded input): MemoryError, and the
    generator is where it was (the draw is put back; a Philox reserves nothing), eager
    and compiled (where the seed op's draw is put back by the sample op)."""
    huge = torch.zeros(1).expand(2**20, 2**20)
    g = {"default": None, "torch": torch.Generator().manual_seed(1), "philox": gs.Philox(2)}[kind]

    def f(x):
        return relaxed_top_k(x, 2, generator=g)

    fn = torch.compile(f, backend="aot_eager") if compiled else f
    torch.manual_seed(4)
    state = torch.get_rng_state() if g is None else g.get_state() if kind == "torch" else None
    with pytest.raises(MemoryError):
        fn(huge)
    if kind == "default":
        assert torch.equal(torch.get_rng_state(), state)
    elif kind == "torch":
        assert torch.equal(g.get_state(), state)
    else:
        assert g.counter == 0
