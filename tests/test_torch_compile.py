"""gumbel_softmax.torch under torch.compile: the custom ops of torch.library.

- ``torch.compile(model, fullgraph=True)`` on a model that calls the drop-in (soft,
  hard, per-row tensor tau with its gradient, mask, bfloat16): no graph break in
  ``torch._dynamo.explain``, one graph, no warning;
- compiled and eager results bitwise equal for the same generator state, forward and
  gradients (inductor and aot_eager: the fake implementations, functionalization and
  the registered autograd);
- successive compiled calls draw fresh noise, ``torch.manual_seed`` reproduces them, and
  two calls in one graph draw in program order;
- an int seed is a constant state (the same noise at every call, as in eager mode);
  stateful generators cost one graph break (fresh noise at every call) and raise under
  ``fullgraph=True`` instead of freezing the noise into the graph;
- a compiled call that fails (a tensor tau with a bad value, known only at run time)
  draws nothing.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import gumbel_softmax  # noqa: E402

# torch's own modules that inductor imports (torch.utils.mkldnn) use torch.jit.script_method,
# deprecated in torch 2.13: a warning of torch's, not of this package
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.script_method` is deprecated:DeprecationWarning"
)


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


class Model(torch.nn.Module):
    """A linear layer, then the drop-in: hard and soft, a per-row temperature that is a
    parameter (its gradient too), a mask."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        # no bias: its gradient is a sum over the batch, which inductor orders otherwise
        # than eager torch (torch's arithmetic, not ours, would differ in the last bit)
        self.lin = torch.nn.Linear(16, 10, bias=False, dtype=dtype)
        self.tau = torch.nn.Parameter(torch.linspace(0.5, 1.5, 64, dtype=dtype))
        self.mask = torch.ones(10, dtype=torch.bool)
        self.mask[3] = False

    def forward(self, x, generator=None):
        z = self.lin(x)
        y = gumbel_softmax(z, self.tau, hard=True, generator=generator)
        s = gumbel_softmax(z, 0.7, mask=self.mask, generator=generator)
        return y, s


def _step(model, x, generator=None):
    """The samples and the gradients of every parameter, for the loss sum(y * w1 + s *
    w2): the gradients reaching the samples are w1 and w2 exactly, so that what is
    compared is our ops and torch's matmul, not a reduction that inductor reorders."""
    model.zero_grad()
    y, s = model(x, generator)
    w1 = torch.linspace(-1, 1, 10, dtype=y.dtype)
    w2 = torch.linspace(2, -1, 10, dtype=y.dtype)
    torch.autograd.backward((y, s), (w1.expand_as(y), w2.expand_as(s)))
    return [y.detach(), s.detach()] + [p.grad.clone() for p in model.parameters()]


def _equal(a, b):
    return all(torch.equal(u, v) for u, v in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fullgraph_no_graph_break_and_no_warning(dtype):
    model = Model(dtype)
    x = torch.randn(64, 16, dtype=dtype, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        explained = torch._dynamo.explain(model)(x)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    assert [str(w.message) for w in caught] == []
    # the ops are in the graph, as opaque nodes
    code = "\n".join(g.code for g in explained.graphs)
    assert "gumbel_softmax.seed" in code and "gumbel_softmax.sample" in code


def test_compiled_training_step_equals_eager_bitwise():
    """inductor, fullgraph: the loss and every gradient bitwise equal to eager ones from
    the same torch.manual_seed; the next compiled call draws other noise."""
    model = Model()
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(2))
    compiled = torch.compile(model, fullgraph=True)
    torch.manual_seed(0)
    eager = [_step(model, x) for _ in range(2)]
    torch.manual_seed(0)
    comp = [_step(compiled, x) for _ in range(2)]
    assert _equal(eager[0], comp[0]) and _equal(eager[1], comp[1])
    assert not torch.equal(comp[0][1], comp[1][1])  # fresh noise per call


@pytest.mark.parametrize("fn", ["gumbel_softmax", "relaxed_bernoulli"])
def test_compiled_vmap_of_a_hard_sample_has_its_gradient(fn):
    """fullgraph over a vmap of hard samples, .backward() outside: the eager gradients,
    bitwise (nonzero: traced under vmap, the logits reported requires_grad False and the
    soft sample, which carries the gradient, was skipped); a tensor tau under compile
    still needs no gradient to be accepted by relaxed_top_k."""
    import gumbel_softmax.torch as gst

    call = getattr(gst, fn)
    gen = torch.Generator().manual_seed(4)
    x, w = torch.randn(4, 3, 6, generator=gen), torch.randn(4, 3, 6, generator=gen)

    def f(v):
        return torch.func.vmap(lambda r: call(r, 0.5, hard=True, generator=7))(v)

    res = []
    for run in (f, torch.compile(f, fullgraph=True)):
        xr = x.clone().requires_grad_()
        y = run(xr)
        (y * w).sum().backward()
        res.append((y.detach(), xr.grad))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])
    assert res[1][1].abs().max() > 0
    top = torch.compile(lambda v, t: gst.relaxed_top_k(v, 2, t, generator=1), fullgraph=True)
    assert torch.allclose(top(x[0], torch.tensor(0.5)).sum(-1), torch.full((3,), 2.0))


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_compiled_equals_eager_and_the_numpy_api(hard, dtype):
    """aot_eager (fake tensors, functionalization, the registered autograd): forward
    and gradient bitwise the eager ones, and an int seed gives the NumPy API's sample."""
    x0 = torch.randn(8, 33, generator=torch.Generator().manual_seed(3)).to(dtype)
    w = torch.randn(8, 33, generator=torch.Generator().manual_seed(4)).to(dtype)

    def f(x, generator):
        return gumbel_softmax(x * 2, 0.6, hard=hard, generator=generator)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    for gen in (None, 11):
        results = []
        for fn in (f, compiled):
            torch.manual_seed(5)
            x = x0.clone().requires_grad_()
            y = fn(x, gen)
            (y * w).sum().backward()
            results.append((y.detach(), x.grad))
        assert _equal(results[0], results[1]), gen
    if dtype != torch.bfloat16:  # (bfloat16: test_torch_dtypes.py)
        ref = gs.gumbel_softmax((x0 * 2).numpy(), 0.6, hard=hard, rng=11)
        assert torch.equal(results[1][0], torch.from_numpy(ref))


def test_fresh_noise_per_call_and_manual_seed_reproduces():
    def f(x):
        return gumbel_softmax(x, 0.5)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    x = torch.zeros(4, 6)
    torch.manual_seed(7)
    a = [compiled(x) for _ in range(3)]
    torch.manual_seed(7)
    b = [compiled(x) for _ in range(3)]
    torch.manual_seed(7)
    c = [f(x) for _ in range(3)]
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2])
    assert _equal(a, b) and _equal(a, c)


def test_two_calls_in_one_graph_draw_in_program_order():
    def two(x):
        return gumbel_softmax(x, 1.0), gumbel_softmax(x * 1, 1.0, hard=True)

    compiled = torch.compile(two, fullgraph=True)
    x = torch.randn(16, 5)
    torch.manual_seed(1)
    p = compiled(x)
    torch.manual_seed(1)
    q = two(x)
    assert _equal(p, q)


def test_int_seed_is_a_constant_state():
    """An int seed draws the same noise at every call, compiled as eagerly (a function
    of the seed); another seed recompiles or reads it as an input, never stale."""
    compiled = torch.compile(
        lambda x, s: gumbel_softmax(x, 0.5, generator=s), backend="aot_eager", fullgraph=True
    )
    x = torch.randn(4, 6)
    a, b = compiled(x, 3), compiled(x, 3)
    assert torch.equal(a, b) and torch.equal(a, gumbel_softmax(x, 0.5, generator=3))
    for seed in (4, 2**64 - 1):
        assert torch.equal(compiled(x, seed), gumbel_softmax(x, 0.5, generator=seed))


@pytest.mark.parametrize("kind", ["torch", "philox", "numpy"])
def test_stateful_generators_cost_a_graph_break_not_frozen_noise(kind):
    """A torch.Generator, Philox or numpy.random.Generator: one graph break (the draw
    runs eagerly at every call), fresh noise per call, equal to the eager calls; under
    fullgraph=True an error rather than noise frozen into the graph."""

    def make():
        return {
            "torch": torch.Generator().manual_seed(3),
            "philox": gs.Philox(3),
            "numpy": np.random.default_rng(3),
        }[kind]

    def f(x, gen):
        return gumbel_softmax(x * 2, 0.5, generator=gen)

    x = torch.randn(4, 6)
    explained = torch._dynamo.explain(f)(x, make())
    assert explained.graph_break_count == 1
    torch._dynamo.reset()
    compiled = torch.compile(f, backend="aot_eager")
    gen = make()
    runs = [compiled(x, gen) for _ in range(3)]
    gen = make()
    assert _equal(runs, [f(x, gen) for _ in range(3)])
    assert not torch.equal(runs[0], runs[1])
    torch._dynamo.reset()
    with pytest.raises(Exception, match=r"(?i)graph break|skip|disable"):
        torch.compile(f, backend="aot_eager", fullgraph=True)(x, make())


def test_failed_compiled_call_draws_nothing():
    """A tensor tau's values are known only when the compiled graph runs: the seed op
    checks them before it draws."""
    compiled = torch.compile(lambda x, t: gumbel_softmax(x, t), backend="aot_eager", fullgraph=True)
    x = torch.randn(3, 4)
    compiled(x, torch.ones(3))
    state = torch.get_rng_state()
    for bad in ([1.0, -1.0, 1.0], [1.0, float("nan"), 1.0], [0.0, 1.0, 1.0]):
        with pytest.raises(ValueError, match="tau"):
            compiled(x, torch.tensor(bad))
        assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("kind", ["default", "torch", "numpy", "philox"])
def test_memory_error_in_a_compiled_call_draws_nothing(kind):
    """The op puts back the draw that made its state when it fails (its results cannot
    be allocated): the seed op's draw from torch's default generator, and the eager draw
    (a graph break) from a torch.Generator, a numpy.random.Generator or a Philox."""
    make = {
        "default": lambda: None,
        "torch": lambda: torch.Generator().manual_seed(1),
        "numpy": lambda: np.random.default_rng(2),
        "philox": lambda: gs.Philox(3, counter=5),
    }[kind]
    gen = make()
    compiled = torch.compile(lambda x: gumbel_softmax(x, generator=gen), backend="aot_eager")
    huge = torch.zeros(1).expand(2**20, 2**20)  # a 4 TiB result
    torch.manual_seed(4)

    def snapshot():
        if kind == "default":
            return torch.get_rng_state()
        if kind == "torch":
            return gen.get_state()
        return gen.bit_generator.state if kind == "numpy" else gen.counter

    state = snapshot()
    with pytest.raises(MemoryError):
        compiled(huge)
    after = snapshot()
    assert torch.equal(after, state) if isinstance(state, torch.Tensor) else after == state


# The raw ops, as a compiled graph calls them: the sample op's autograd kernel runs its
# CPU kernel itself for a call that records nothing on plain CPU tensors (the call of a
# compiled graph) and hands anything else to torch.library's kernel; the backward op
# skips the NumPy API's checks for autograd's own arguments.


def _state(seed):
    from gumbel_softmax import _torch_ops as ops

    return ops.state_tensor(seed)


@pytest.mark.parametrize("hard", [False, True])
def test_sample_op_without_grad_is_the_numpy_api(hard):
    sample = torch.ops.gumbel_softmax.sample.default
    x = torch.randn(5, 7, dtype=torch.float64)
    with torch.no_grad():  # the kernel shortcut
        y, soft = sample(x, _state(11), None, 0.5, hard, False, 1, True, None, False)
    y_ref, soft_ref = gs.gumbel_softmax(x.numpy(), 0.5, hard=hard, rng=11, return_soft=True)
    assert np.array_equal(y.numpy(), y_ref) and np.array_equal(soft.numpy(), soft_ref)
    # with a gradient to record: torch.library's autograd kernel, the same values, and
    # the gradient of the soft sample (the NumPy backward on its own output)
    xg = x.clone().requires_grad_()
    y2, soft2 = sample(xg, _state(11), None, 0.5, hard, False, 1, True, None, False)
    assert y2.requires_grad and torch.equal(y2.detach(), y)
    g = torch.randn(5, 7, dtype=torch.float64)
    y2.backward(g)
    ref = gs.gumbel_softmax_backward(g.numpy(), soft_ref, 0.5)
    assert np.array_equal(xg.grad.numpy(), ref)


def test_sample_op_under_a_dispatch_mode_is_not_run():
    """Fake tensors (as torch.compile traces) reach the fake implementation, not the
    CPU kernel: the shortcut is taken for plain CPU tensors only."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    sample = torch.ops.gumbel_softmax.sample.default
    with FakeTensorMode() as mode, torch.no_grad():
        x = mode.from_tensor(torch.randn(3, 4))
        y, soft = sample(
            x, mode.from_tensor(_state(1)), None, 1.0, False, False, 1, True, None, False
        )
    assert type(y).__name__ == "FakeTensor" and y.shape == (3, 4) and soft.shape == (3, 4)


def test_backward_op_is_the_numpy_backward():
    backward = torch.ops.gumbel_softmax.backward.default
    ys = torch.from_numpy(
        gs.gumbel_softmax(np.random.default_rng(0).normal(size=(4, 6)), 0.6, rng=0)
    )
    cases = [
        (torch.randn(4, 6, dtype=torch.float64), 1),  # contiguous
        (torch.randn(6, 4, dtype=torch.float64).t(), 1),  # transposed
        (torch.ones(1, 1, dtype=torch.float64).expand(4, 6), 1),  # stride 0 (sum's grad)
        (torch.randn(4, 6, dtype=torch.float64), 0),  # the other axis
    ]
    for g, dim in cases:
        gx, _ = backward(g, ys, None, 0.6, dim, False, False)
        ref = gs.gumbel_softmax_backward(g.numpy(), ys.numpy(), 0.6, axis=dim)
        assert np.array_equal(gx.numpy(), ref)
    with pytest.raises(ValueError, match="tau"):  # what the NumPy API checks still raises
        backward(g, ys, None, -1.0, 1, False, False)
