"""gumbel_softmax.torch under torch.func: grad, vjp, jacrev, vmap.

Each is checked against eager calls on the same noise, bitwise where the same kernels
run:

- ``grad`` and ``vjp`` equal ``torch.autograd`` in eager mode (logits and a tensor tau,
  soft and hard, every generator kind);
- ``vmap(randomness="different")``: each element its own noise, the rows of one batched
  eager call (the batch folded into the rows);
- ``vmap(randomness="same")``: every element the noise of one eager call from the same
  state;
- ``vmap(randomness="error")`` raises, drawing nothing; an int seed is no random
  operation (a function of the seed: every element the seed's noise, as a loop of
  calls gives);
- per-sample gradients (``vmap(grad)``) equal the rows of one batched backward, and
  ``jacrev`` equals ``torch.autograd.functional.jacobian``;
- forward mode (``jvp``, ``jacfwd``) is not implemented: torch's NotImplementedError.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import gumbel_softmax  # noqa: E402
from torch.func import grad, jacrev, vjp, vmap  # noqa: E402


def _data(seed, shape=(5, 7), dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype), torch.randn(
        shape, generator=gen, dtype=dtype
    )


def _gen(kind):
    return {
        "default": None,
        "int": 9,
        "philox": gs.Philox(9),
        "numpy": np.random.default_rng(9),
        "torch": torch.Generator().manual_seed(9),
    }[kind]


@pytest.mark.parametrize("kind", ["default", "int", "philox", "numpy", "torch"])
@pytest.mark.parametrize("hard", [False, True])
def test_grad_equals_eager_autograd(kind, hard):
    x, w = _data(1)
    tau0 = torch.linspace(0.3, 1.5, 5, dtype=torch.float64)

    def loss(v, t, gen):
        return (gumbel_softmax(v, t, hard=hard, generator=gen) * w).sum()

    torch.manual_seed(2)
    gx, gt = grad(loss, argnums=(0, 1))(x, tau0, _gen(kind))
    torch.manual_seed(2)
    v, t = x.clone().requires_grad_(), tau0.clone().requires_grad_()
    loss(v, t, _gen(kind)).backward()
    assert torch.equal(gx, v.grad) and torch.equal(gt, t.grad)


@pytest.mark.parametrize("hard", [False, True])
def test_vjp_equals_eager_autograd(hard):
    x, w = _data(3)
    torch.manual_seed(4)
    y, pullback = vjp(lambda v: gumbel_softmax(v, 0.5, hard=hard), x)
    (gx,) = pullback(w)
    torch.manual_seed(4)
    v = x.clone().requires_grad_()
    ye = gumbel_softmax(v, 0.5, hard=hard)
    ye.backward(w)
    assert torch.equal(y, ye.detach()) and torch.equal(gx, v.grad)


@pytest.mark.parametrize("hard", [False, True])
def test_vmap_different_is_one_batched_call(hard):
    """Each element its own noise: the batch is folded into the rows of one call, so
    the result is the eager call on the whole batch from the same torch.manual_seed."""
    x, _ = _data(5, (4, 3, 6))
    torch.manual_seed(6)
    y = vmap(lambda v: gumbel_softmax(v, 0.5, hard=hard), randomness="different")(x)
    torch.manual_seed(6)
    assert torch.equal(y, gumbel_softmax(x, 0.5, hard=hard))
    assert not torch.equal(y[0], y[1])  # (here the logits differ too: see below)
    same_logits = x[:1].expand(4, 3, 6)
    y = vmap(lambda v: gumbel_softmax(v, 0.5), randomness="different")(same_logits)
    assert not torch.equal(y[0], y[1])


@pytest.mark.parametrize(
    "fn,hard",
    [(f, h) for f in ("gumbel_softmax", "relaxed_bernoulli") for h in (False, True)]
    + [("log_gumbel_softmax", False)],
)
def test_vmap_then_backward_is_the_batched_calls_gradient(fn, hard):
    """vmap over logits that require grad, then .backward() outside it (autograd, not
    torch.func.grad): the gradient of the eager batched call on the same noise.  With
    hard=True the batched tensor reported requires_grad False, so the op skipped the
    soft sample and the straight-through gradient was all zeros."""
    import gumbel_softmax.torch as gst

    call = getattr(gst, fn)
    kw = {"hard": hard} if hard else {}
    x, w = _data(8, (4, 3, 6))
    grads = []
    for batched in (True, False):
        xr = x.clone().requires_grad_()
        torch.manual_seed(2)
        if batched:
            y = vmap(lambda v: call(v, 0.5, **kw), randomness="different")(xr)
        else:
            y = call(xr, 0.5, **kw)
        (y * w).sum().backward()
        grads.append((y.detach(), xr.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])
    assert grads[0][1].abs().max() > 0


def test_vmap_relaxed_top_k_tau_requiring_grad_raises():
    """relaxed_top_k has no gradient in tau and says so for a tau that requires one; a
    batched tau under vmap reports requires_grad False, which let it through."""
    import gumbel_softmax.torch as gst

    x, _ = _data(3, (3, 5))
    tau = torch.full((3,), 0.5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="tau"):
        vmap(lambda v, t: gst.relaxed_top_k(v, 2, t, generator=1))(x, tau)
    y = vmap(lambda v, t: gst.relaxed_top_k(v, 2, t, generator=1))(x, tau.detach())
    assert torch.allclose(y.sum(-1), torch.full((3,), 2.0, dtype=torch.float64))


def test_vmap_different_other_batch_dims():
    """in_dims other than 0, a batched per-row tau and a batched mask."""
    x, _ = _data(7, (3, 4, 5))  # batch along dim 1
    tau = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    tau = tau + 0.3
    mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(9)) > 0.3
    mask[:, 0] = True
    torch.manual_seed(10)
    y = vmap(
        lambda v, t, m: gumbel_softmax(v, t, mask=m), in_dims=(1, 0, 0), randomness="different"
    )(x, tau, mask)
    torch.manual_seed(10)
    ref = gumbel_softmax(x.movedim(1, 0), tau, mask=mask.unsqueeze(1).expand(4, 3, 5))
    assert torch.equal(y, ref)
    assert (y[~mask.unsqueeze(1).expand(4, 3, 5)] == 0).all()


@pytest.mark.parametrize("hard", [False, True])
def test_vmap_same_is_the_same_noise_for_every_element(hard):
    x, _ = _data(11, (4, 3, 6))
    torch.manual_seed(12)
    y = vmap(lambda v: gumbel_softmax(v, 0.5, hard=hard), randomness="same")(x)
    for b in range(4):
        torch.manual_seed(12)
        assert torch.equal(y[b], gumbel_softmax(x[b], 0.5, hard=hard))


def test_vmap_error_raises_and_draws_nothing():
    x, _ = _data(13)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="randomness error mode"):
        vmap(lambda v: gumbel_softmax(v, 0.5))(x)  # randomness="error" is vmap's default
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("randomness", ["error", "same", "different"])
def test_vmap_int_seed_is_a_function_of_the_seed(randomness):
    x, _ = _data(14, (4, 6))
    y = vmap(lambda v: gumbel_softmax(v, 0.5, generator=3), randomness=randomness)(x)
    assert torch.equal(y, torch.stack([gumbel_softmax(v, 0.5, generator=3) for v in x]))


@pytest.mark.parametrize("kind", ["philox", "numpy", "torch"])
def test_vmap_stateful_generator_raises_naming_it(kind):
    x, _ = _data(15, (4, 6))
    gen = _gen(kind)
    with pytest.raises(RuntimeError, match="generator=None .* or an int seed"):
        vmap(lambda v: gumbel_softmax(v, 0.5, generator=gen), randomness="different")(x)


@pytest.mark.parametrize("hard", [False, True])
def test_per_sample_gradients(hard):
    """vmap(grad) over the rows: each row's gradient is that row of the batched eager
    backward (the same noise: the rows of one folded call)."""
    x, w = _data(16, (6, 7))
    tau = torch.linspace(0.4, 1.4, 6, dtype=torch.float64)

    def row_loss(v, t, wr):
        return (gumbel_softmax(v, t, hard=hard) * wr).sum()

    torch.manual_seed(17)
    gx, gt = vmap(grad(row_loss, argnums=(0, 1)), randomness="different")(x, tau, w)
    torch.manual_seed(17)
    v, t = x.clone().requires_grad_(), tau.clone().requires_grad_()
    (gumbel_softmax(v, t, hard=hard) * w).sum().backward()
    assert torch.equal(gx, v.grad)
    assert torch.allclose(gt, t.grad, rtol=1e-12, atol=0)  # (a sum per row either way)


def test_jacrev_equals_autograd_jacobian():
    x, _ = _data(18, (3, 4))
    f = lambda v: gumbel_softmax(v, 0.6, generator=5)  # noqa: E731
    J = jacrev(f)(x)
    Je = torch.autograd.functional.jacobian(f, x)
    assert torch.equal(J, Je)


# torch.func's forward-mode transforms call torch.jit.script, deprecated in torch 2.13
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("transform", ["jvp", "jacfwd"])
def test_forward_mode_is_not_implemented(transform):
    x, _ = _data(19, (3, 4))
    f = lambda v: gumbel_softmax(v, 0.6, generator=5)  # noqa: E731
    call = {
        "jvp": lambda: torch.func.jvp(f, (x,), (torch.ones_like(x),)),
        "jacfwd": lambda: torch.func.jacfwd(f)(x),
    }[transform]
    with pytest.raises(NotImplementedError, match="jvp"):
        call()
