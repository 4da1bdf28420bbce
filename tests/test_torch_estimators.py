"""gumbel_softmax.torch.reinmax and gumbel_rao: the forward is the drop-in's hard sample,
the gradient the NumPy API's estimator on the same state, bitwise."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import same_bits

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
import gumbel_softmax as gs  # noqa: E402
import gumbel_softmax.torch as gst  # noqa: E402


def _x(shape=(4, 6), seed=0):
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape))


@pytest.mark.parametrize("dim", [-1, 0])
def test_reinmax_outputs_and_gradient(dim):
    x, w, v = _x(), _x(seed=1), _x(seed=2)
    xr = x.clone().requires_grad_()
    y, p = gst.reinmax(xr, 1.5, dim=dim, generator=3)
    y_ref = gs.gumbel_softmax(x.numpy(), 1.5, hard=True, axis=dim, rng=3)
    assert same_bits(y.detach(), y_ref)
    assert same_bits(p.detach(), torch.softmax(x, dim=dim))
    ((w * y).sum() + (v * p).sum()).backward()
    want = gs.reinmax_backward(w.numpy(), x.numpy(), y_ref, 1.5, axis=dim, grad_p=v.numpy())
    assert same_bits(xr.grad, want)


@pytest.mark.parametrize("generator", ["int", "philox"])
def test_gumbel_rao_forward_and_gradient(generator):
    x, w = _x(), _x(seed=1)
    xr = x.clone().requires_grad_()
    gen = 5 if generator == "int" else gs.Philox(5)
    y = gst.gumbel_rao(xr, 0.5, samples=7, generator=gen)
    y_ref = gs.gumbel_softmax(x.numpy(), 0.5, hard=True, rng=5)
    assert same_bits(y.detach(), y_ref)
    (w * y).sum().backward()
    # the conditional draws: the rows after the forward's 4
    want = gs.gumbel_rao_backward(
        w.numpy(), x.numpy(), y_ref, 0.5, samples=7, rng=gs.Philox(5, counter=4)
    )
    assert same_bits(xr.grad, want)
    if generator == "philox":
        assert gen.counter == 4 + 7 * 4


def test_gumbel_rao_default_generator_follows_manual_seed():
    x = _x()
    grads = []
    for _ in range(2):
        torch.manual_seed(0)
        xr = x.clone().requires_grad_()
        (gst.gumbel_rao(xr, 0.5, samples=3) * torch.arange(6.0)).sum().backward()
        grads.append(xr.grad)
    assert same_bits(grads[0], grads[1])


def test_estimator_errors():
    x = _x()
    with pytest.raises(ValueError, match="tau"):
        gst.reinmax(x, 0.5)
    with pytest.raises(ValueError, match="samples"):
        gst.gumbel_rao(x, samples=0)
    with pytest.raises(TypeError, match="samples"):
        gst.gumbel_rao(x, samples=1.5)


@pytest.mark.parametrize("fn", ["reinmax", "gumbel_rao"])
def test_tau_that_requires_grad_is_refused(fn):
    """The estimators take tau as a constant: a tau tensor that requires grad (one an
    optimizer would train) raises ValueError naming tau, as relaxed_top_k does, instead
    of silently getting no gradient; nothing is drawn.  Under no_grad, or detached, it
    is taken as its value."""
    call = getattr(gst, fn)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), requires_grad=True)
    tau = torch.tensor(1.5, requires_grad=True)
    gen = torch.Generator().manual_seed(3)
    before = gen.get_state()
    with pytest.raises(ValueError, match=f"^tau: {fn} has no gradient with respect to tau"):
        call(x, tau, generator=gen)
    assert torch.equal(gen.get_state(), before)
    with torch.no_grad():
        a = call(x, tau, generator=7)
    b = call(x, 1.5, generator=7)
    c = call(x, tau.detach(), generator=7)
    for u, v, w in zip(a, b, c):
        assert same_bits(u.detach(), v.detach()) and same_bits(v.detach(), w.detach())
