"""gumbel_softmax.torch under autograd and torch's transforms.

- higher-order gradients (``create_graph=True``): ``torch.autograd.gradgradcheck`` in
  float64 on fixed noise (logits, scalar and per-row tensor ``tau``), and a gradient
  penalty equal to that of ``softmax((logits + g) / tau)`` in torch ops on the same
  noise ``g`` (``gumbel_softmax.gumbel``), soft and straight-through hard; the
  first-order values stay bitwise those of the backward kernel;
- batched gradients (vmap over the backward: ``check_batched_grad``,
  ``is_grads_batched``, ``jacobian(vectorize=True)``) equal the reference's;
- ``torch.jit.trace`` raises instead of storing the seed as a constant.

``torch.func``: test_torch_func.py; ``torch.compile``: test_torch_compile.py; errors,
the generators after a failed call and checkpoint recomputation: test_torch_errors.py.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
F = torch.nn.functional

import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import gumbel_softmax  # noqa: E402


def _noise(shape, dtype, seed):
    """Our noise for a generator state, as a tensor: the g of softmax((x + g) / tau)."""
    np_dtype = {torch.float32: np.float32, torch.float64: np.float64}[dtype]
    return torch.from_numpy(gs.gumbel(shape, dtype=np_dtype, rng=gs.Philox(seed)))


def _reference(x, tau, hard, g):
    """F.gumbel_softmax's formula in torch ops on the noise g (dim=-1)."""
    y_soft = ((x + g) / tau).softmax(-1)
    if not hard:
        return y_soft
    index = y_soft.max(-1, keepdim=True)[1]
    y_hard = torch.zeros_like(x).scatter_(-1, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


# --------------------------------------------------------------------------------------
# Higher-order gradients


def test_our_noise_is_the_reference_noise():
    """The premise of the comparisons below: our sample is softmax((x + g) / tau)."""
    x = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = gumbel_softmax(x, 0.7, generator=4)
    assert torch.allclose(
        y, _reference(x, 0.7, False, _noise(x.shape, x.dtype, 4)), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("shape,dim", [((5, 7), -1), ((3, 4, 6), 1), ((6,), 0), ((4, 3), 0)])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_gradgradcheck_logits(shape, dim, tau):
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x.requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda x: gumbel_softmax(x, tau, dim=dim, generator=7), (x,)
    )


@pytest.mark.parametrize(
    "tau_shape,dim", [((), -1), ((5,), -1), ((5, 1), -1), ((1, 7), 0), ((7,), 0), ((1,), -1)]
)
def test_gradgradcheck_tau_tensor(tau_shape, dim):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 7, dtype=torch.float64, generator=gen).requires_grad_()
    tau = (torch.rand(tau_shape, dtype=torch.float64, generator=gen) + 0.3).requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda x, t: gumbel_softmax(x, t, dim=dim, generator=11), (x, tau)
    )


def test_gradgradcheck_with_masked_entries():
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    mask = torch.zeros(4, 6, dtype=torch.float64)
    mask[:, 2] = -torch.inf
    x.requires_grad_()
    assert torch.autograd.gradgradcheck(lambda v: gumbel_softmax(v + mask, 0.5, generator=4), (x,))


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau_kind", ["float", "scalar tensor", "row tensor", "row ndarray"])
def test_gradient_penalty_equals_the_reference_on_the_same_noise(hard, tau_kind):
    """A gradient penalty, loss + 10 |d loss / d x|^2: the first gradient g must require
    grad, or x.grad would silently lose the penalty's term."""
    gen = torch.Generator().manual_seed(5)
    x0 = torch.randn(6, 5, dtype=torch.float64, generator=gen)
    w = torch.randn(6, 5, dtype=torch.float64, generator=gen)
    t0 = {
        "float": 0.5,
        "scalar tensor": torch.tensor(0.5, dtype=torch.float64),
        "row tensor": torch.rand(6, dtype=torch.float64, generator=gen) + 0.3,
        "row ndarray": np.linspace(0.3, 1.3, 6),
    }[tau_kind]
    noise = _noise(x0.shape, x0.dtype, 9)
    grads = []
    for ours in (True, False):
        x = x0.clone().requires_grad_()
        tau = t0.clone().requires_grad_() if isinstance(t0, torch.Tensor) else t0
        if ours:
            y = gumbel_softmax(x, tau, hard=hard, generator=9)
        else:
            t = torch.from_numpy(tau) if isinstance(tau, np.ndarray) else tau
            t = t.unsqueeze(-1) if isinstance(t, torch.Tensor) and t.dim() else t
            y = _reference(x, t, hard, noise)
        inputs = (x, tau) if isinstance(tau, torch.Tensor) else (x,)
        first = torch.autograd.grad((y * w).sum(), inputs, create_graph=True)
        assert all(g.requires_grad for g in first)
        penalty = sum((g**2).sum() for g in first)
        ((y * w).sum() + 10 * penalty).backward()
        grads.append([v.grad for v in inputs])
    for ours, ref in zip(*grads):
        assert torch.allclose(ours, ref, rtol=1e-9, atol=1e-12)
    # and the penalty is not silently dropped: the gradient differs from the plain one
    x = x0.clone().requires_grad_()
    (gumbel_softmax(x, t0, hard=hard, generator=9) * w).sum().backward()
    assert not torch.allclose(x.grad, grads[0][0])


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_create_graph_first_order_values_are_the_kernels(hard, dtype):
    """With create_graph the first-order gradient is still the backward kernel's, bit for
    bit (the differentiable torch expression only adds its graph)."""
    gen = torch.Generator().manual_seed(6)
    x0 = torch.randn(7, 9, generator=gen).to(dtype)
    w = torch.randn(7, 9, generator=gen).to(dtype)
    tau0 = (torch.rand(7, generator=gen) + 0.3).to(dtype)
    results = []
    for create_graph in (False, True):
        x, tau = x0.clone().requires_grad_(), tau0.clone().requires_grad_()
        y = gumbel_softmax(x, tau, hard=hard, generator=3)
        results.append(torch.autograd.grad((y * w).sum(), (x, tau), create_graph=create_graph))
    for plain, graph in zip(*results):
        assert graph.requires_grad and plain.dtype == graph.dtype == dtype
        assert torch.equal(plain, graph.detach())


def test_third_order():
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    x.requires_grad_()
    noise = _noise(x.shape, x.dtype, 2)
    out = []
    for f in (
        lambda v: gumbel_softmax(v, 0.8, generator=2),
        lambda v: _reference(v, 0.8, False, noise),
    ):
        y = f(x)
        (g1,) = torch.autograd.grad(y[:, 0].sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad((g1**2).sum(), x, create_graph=True)
        (g3,) = torch.autograd.grad(g2.sum(), x)
        out.append(g3)
    assert torch.allclose(out[0], out[1], rtol=1e-9, atol=1e-12)


def test_hessian_and_vectorized_jacobian():
    """torch.autograd.functional: the Hessian (double backward) and a jacobian with
    vectorize=True (vmap over the backward)."""
    x = torch.randn(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    noise = _noise(x.shape, x.dtype, 5)
    w = torch.arange(8.0, dtype=torch.float64).reshape(2, 4)

    def ours(v):
        return (gumbel_softmax(v, 0.6, generator=5) * w).sum()

    def ref(v):
        return (_reference(v, 0.6, False, noise) * w).sum()

    H = torch.autograd.functional.hessian(ours, x)
    assert torch.allclose(H, torch.autograd.functional.hessian(ref, x), rtol=1e-9, atol=1e-12)
    J = torch.autograd.functional.jacobian(
        lambda v: gumbel_softmax(v, 0.6, generator=5), x, vectorize=True
    )
    Jr = torch.autograd.functional.jacobian(lambda v: _reference(v, 0.6, False, noise), x)
    assert torch.allclose(J, Jr, rtol=1e-9, atol=1e-12)


def test_batched_gradients():
    """vmap over the backward: gradcheck's check_batched_grad and autograd.grad's
    is_grads_batched (the batched gradients are those of the reference's Jacobian)."""
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(3, 4, dtype=torch.float64, generator=gen).requires_grad_()
    t = (torch.rand(3, dtype=torch.float64, generator=gen) + 0.3).requires_grad_()

    def f(x, t):
        return gumbel_softmax(x, t, generator=3)

    assert torch.autograd.gradcheck(f, (x, t), check_batched_grad=True)
    assert torch.autograd.gradgradcheck(f, (x, t), check_batched_grad=True)
    basis = torch.eye(12, dtype=torch.float64).reshape(12, 3, 4)
    jx, jt = torch.autograd.grad(f(x, t), (x, t), basis, is_grads_batched=True)
    noise = _noise(x.shape, x.dtype, 3)
    rx, rt = torch.autograd.functional.jacobian(
        lambda x, t: _reference(x, t.unsqueeze(-1), False, noise), (x, t)
    )
    assert torch.allclose(jx.reshape(12, 12), rx.reshape(12, 12), rtol=1e-9, atol=1e-12)
    assert torch.allclose(jt, rt.reshape(12, 3), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# Tracing


@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.trace` is deprecated:DeprecationWarning")
def test_jit_trace_raises_instead_of_freezing_the_noise():
    """Traced, the seed and counter were constants: every call drew the same noise."""
    x = torch.randn(4, 5)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace"):
        torch.jit.trace(lambda v: gumbel_softmax(v, 0.5), (x,), check_trace=False)
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    torch_state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match=r"torch\.jit\.trace"):
        torch.jit.trace(lambda v: gumbel_softmax(v, 0.5, generator=rng), (x,), check_trace=False)
    assert rng.bit_generator.state == state and torch.equal(torch.get_rng_state(), torch_state)


def test_gradient_penalty_is_not_dropped():
    """A gradient penalty: with create_graph=True the first gradient is differentiable
    and the penalty's second-order term reaches x.grad, equal to that of
    softmax((x + g) / tau) in torch ops on our noise g."""
    x0 = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    w = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    g_noise = torch.from_numpy(gs.gumbel((3, 4), dtype=np.float64, rng=0))
    grads = []
    for f in (
        lambda v: gumbel_softmax(v, 0.5, generator=0),
        lambda v: ((v + g_noise) / 0.5).softmax(-1),
    ):
        x = x0.clone().requires_grad_()
        y = f(x)
        (g,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
        assert g.requires_grad
        ((y * w).sum() + 10 * (g**2).sum()).backward()
        grads.append(x.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)
