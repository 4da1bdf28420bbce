"""examples/vae_digits.py: the categorical VAE trained in NumPy with gumbel_softmax.

- training reduces the -ELBO (soft and straight-through samples);
- the hand-written backpropagation against central finite differences in float64, with
  the Gumbel noise held fixed (soft: every parameter; hard: the decoder against the true
  loss, the encoder against the straight-through surrogate);
- with PyTorch: the manual gradient equals autograd's for the same noise, and the NumPy
  and PyTorch trainers (different noise, same everything else) follow the same curve.

The example is not a package: it is loaded from its path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "sklearn",
    reason='scikit-learn is not installed (pip install "gumbel-softmax[examples]")',
)

import gumbel_softmax as gs  # noqa: E402

EXAMPLE = Path(__file__).parents[1] / "examples" / "vae_digits.py"
ENCODER = ("W1", "b1", "W2", "b2")
DECODER = ("W3", "b3", "W4", "b4")


@pytest.fixture(scope="module")
def vae():
    """The example module, loaded by file path."""
    spec = importlib.util.spec_from_file_location("vae_digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(vae):
    """A 300-image training subset and the 297 test images, float32."""
    return vae.load_data(n_train=300, n_test=297, data_seed=0)


@pytest.fixture
def one_thread(vae):
    """Kernels and BLAS on one thread (speed only: results never depend on threads)."""
    with vae.thread_limits(1):
        yield


def _run_numpy(vae, data, hard, epochs, lr=1e-3, batch_size=50, seed=0):
    x_train, x_test = data
    steps = epochs * (len(x_train) // batch_size)
    params = vae.init_params(np.random.default_rng(seed))
    return vae.train_numpy(
        params,
        x_train,
        x_test,
        hard=hard,
        taus=vae.tau_schedule(steps),
        orders=vae.batch_orders(len(x_train), epochs, seed + 1),
        batch_size=batch_size,
        lr=lr,
        noise_seed=seed,
        verbose=False,
    )


# --------------------------------------------------------------------------------------
# Training


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_two_epochs_reduce_the_loss(vae, data, one_thread, hard):
    hist = _run_numpy(vae, data, hard, epochs=2)
    losses = [hist["init_train"], *hist["train"], *hist["test"]]
    assert np.all(np.isfinite(losses))
    assert hist["train"][1] < hist["train"][0] < hist["init_train"]
    assert hist["test"][1] < hist["init_test"]
    assert len(hist["seconds"]) == len(hist["tau"]) == 2


# --------------------------------------------------------------------------------------
# Gradients against central finite differences (float64, fixed noise)


def _central_difference(param, i, f, h=1e-6):
    """(f(p + h e_i) - f(p - h e_i)) / 2h for flat entry i of param (perturbed in place
    and restored)."""
    flat = param.reshape(-1)
    old = flat[i]
    flat[i] = old + h
    up = f()
    flat[i] = old - h
    down = f()
    flat[i] = old
    return (up - down) / (2 * h)


def _check_entries(name, param, grad, f, rng, n_random=4):
    """Compare ``grad`` with central differences of ``f`` at the entry of the largest
    ``|grad|`` and ``n_random`` random entries of ``param``."""
    gflat = grad.reshape(-1)
    picks = [int(np.argmax(np.abs(gflat)))] + rng.choice(gflat.size, n_random).tolist()
    assert abs(gflat[picks[0]]) > 1e-3, name  # a gradient worth checking
    for i in picks:
        fd = _central_difference(param, i, f)
        assert gflat[i] == pytest.approx(fd, rel=1e-4, abs=1e-6), (name, i)


def test_gumbel_softmax_float64(vae):
    """The check below runs in float64: the library samples and differentiates float64
    logits in float64."""
    logits = np.zeros((3, vae.N_VARS, vae.N_CATS))
    y, y_soft = gs.gumbel_softmax(logits, 0.5, hard=True, rng=gs.Philox(1), return_soft=True)
    assert y.dtype == y_soft.dtype == np.float64
    assert gs.gumbel_softmax_backward(np.ones_like(y), y_soft, 0.5).dtype == np.float64


def test_soft_gradient_matches_finite_differences(vae, data):
    """Soft samples: with the noise fixed (``gs.Philox(seed)`` afresh for every
    evaluation) the loss is a smooth function of every parameter, and the manual
    gradient is its derivative."""
    x = data[0][:5].astype(np.float64)
    params = vae.init_params(np.random.default_rng(1), dtype=np.float64)
    tau, seed = 0.7, 11
    loss, grads = vae.loss_and_grads(params, x, tau, False, gs.Philox(seed))
    assert np.isfinite(loss)

    def f():
        return vae.forward(params, x, tau, False, gs.Philox(seed))[0]

    rng = np.random.default_rng(2)
    for name in vae.PARAM_NAMES:
        assert grads[name].dtype == np.float64 and grads[name].shape == params[name].shape
        _check_entries(name, params[name], grads[name], f, rng)


def test_hard_gradient_is_straight_through(vae, data):
    """Hard samples: the loss is not differentiable through the one-hot, so the check
    is split by what the straight-through estimator defines.

    - Decoder (``W3 .. b4``): with the noise fixed, the one-hot does not depend on the
      decoder, the loss is smooth in it, and the manual gradient is its derivative.
    - Encoder (``W1 .. b2``): the gradient is that of the surrogate torch's
      ``F.gumbel_softmax(hard=True)`` differentiates, ``L_st(theta) = BCE(decode(y_hard +
      y_soft(theta) - y_soft(theta_0))) + KL(theta)``: equal to the true loss at
      ``theta_0``, smooth, and its derivative passes the decoder's gradient at the
      one-hot through the soft sample's Jacobian.  ``y_soft(theta)`` is drawn with the
      same noise (a soft call from the same ``Philox`` state gives the soft sample of
      the hard call, bitwise; asserted).
    - The true loss's own derivative in the encoder is the KL term's alone (the one-hot
      stays put for small steps): asserted too, to show the two differ.
    """
    x = data[0][:5].astype(np.float64)
    params = vae.init_params(np.random.default_rng(3), dtype=np.float64)
    tau, seed = 0.7, 13
    loss, grads = vae.loss_and_grads(params, x, tau, True, gs.Philox(seed))

    def true_loss():
        return vae.forward(params, x, tau, True, gs.Philox(seed))[0]

    rng = np.random.default_rng(4)
    for name in DECODER:
        _check_entries(name, params[name], grads[name], true_loss, rng)

    _, logits0 = vae.encode(params, x)
    y_hard, y_soft0 = gs.gumbel_softmax(
        logits0, tau, hard=True, rng=gs.Philox(seed), return_soft=True
    )
    soft_again = gs.gumbel_softmax(logits0, tau, rng=gs.Philox(seed))
    assert soft_again.tobytes() == y_soft0.tobytes()
    assert np.array_equal(y_hard.sum(-1), np.ones(y_hard.shape[:-1]))

    def surrogate():
        _, logits = vae.encode(params, x)
        y_soft = gs.gumbel_softmax(logits, tau, rng=gs.Philox(seed))
        z = (y_hard + (y_soft - y_soft0)).reshape(len(x), -1)
        _, pixel_logits = vae.decode(params, z)
        kl = vae.kl_uniform(logits)[0]
        return float(np.mean(vae.bce_with_logits(pixel_logits, x) + kl))

    assert surrogate() == pytest.approx(loss, rel=1e-12)
    for name in ENCODER:
        _check_entries(name, params[name], grads[name], surrogate, rng)

    # The KL term's gradient in W2, written out: d KL / d logits = q (log q - sum q log q)
    h1, logits = vae.encode(params, x)
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    q = np.exp(log_q)
    d_logits = q * (log_q - (q * log_q).sum(-1, keepdims=True)) / len(x)
    kl_grad = (h1.T @ d_logits.reshape(len(x), -1)).reshape(-1)
    i = int(np.argmax(np.abs(grads["W2"].reshape(-1) - kl_grad)))
    assert abs(grads["W2"].reshape(-1)[i] - kl_grad[i]) > 1e-3  # straight-through differs
    fd = _central_difference(params["W2"], i, true_loss)
    assert fd == pytest.approx(kl_grad[i], rel=1e-4, abs=1e-6)


# --------------------------------------------------------------------------------------
# PyTorch


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_gradient_equals_torch_autograd_for_the_same_noise(vae, data, hard):
    """The manual backpropagation equals torch autograd's gradient (float64) of the same
    model with the same Gumbel noise (``gs.gumbel``, the noise ``gumbel_softmax`` adds),
    the hard sample as ``F.gumbel_softmax`` builds it (``y_hard - y_soft.detach() +
    y_soft``)."""
    torch = pytest.importorskip(
        "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
    )
    F = torch.nn.functional
    x = data[0][:8].astype(np.float64)
    params = vae.init_params(np.random.default_rng(5), dtype=np.float64)
    tau, seed = 0.6, 17
    loss, grads = vae.loss_and_grads(params, x, tau, hard, gs.Philox(seed))

    shape = (len(x), vae.N_VARS, vae.N_CATS)
    g = torch.from_numpy(gs.gumbel(shape, dtype=np.float64, rng=gs.Philox(seed)))
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt = torch.from_numpy(x)
    h1 = torch.relu(xt @ p["W1"] + p["b1"])
    logits = (h1 @ p["W2"] + p["b2"]).reshape(shape)
    y = torch.softmax((logits + g) / tau, dim=-1)
    if hard:
        one_hot = F.one_hot(y.argmax(-1), vae.N_CATS).to(y.dtype)
        y = one_hot - y.detach() + y
    h2 = torch.relu(y.reshape(len(x), -1) @ p["W3"] + p["b3"])
    pix = h2 @ p["W4"] + p["b4"]
    bce = F.binary_cross_entropy_with_logits(pix, xt, reduction="none").sum(-1)
    log_q = torch.log_softmax(logits, -1)
    kl = (log_q.exp() * log_q).sum((-2, -1)) + vae.N_VARS * np.log(vae.N_CATS)
    t_loss = (bce + kl).mean()
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    for name in vae.PARAM_NAMES:
        np.testing.assert_allclose(
            grads[name], p[name].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )


@pytest.mark.parametrize("hard", [False, True], ids=["soft", "hard"])
def test_numpy_and_torch_trainers_agree(vae, data, one_thread, hard):
    """Three epochs from the same weights, batches and temperatures, with different
    noise: both trainers lower the -ELBO by far more than they differ, at every epoch."""
    pytest.importorskip(
        "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
    )
    epochs, batch_size, lr = 3, 50, 3e-3
    x_train, x_test = data
    ours = _run_numpy(vae, data, hard, epochs, lr=lr, batch_size=batch_size)
    steps = epochs * (len(x_train) // batch_size)
    theirs = vae.train_torch(
        vae.init_params(np.random.default_rng(0)),
        x_train,
        x_test,
        hard=hard,
        taus=vae.tau_schedule(steps),
        orders=vae.batch_orders(len(x_train), epochs, 1),
        batch_size=batch_size,
        lr=lr,
        noise_seed=0,
        verbose=False,
        num_threads=1,
    )
    assert ours["init_test"] == pytest.approx(theirs["init_test"], rel=0.02)
    for key in ("train", "test"):
        a, b = np.array(ours[key]), np.array(theirs[key])
        assert np.all(np.abs(a - b) <= 0.03 * b), (key, a, b)
    drop = ours["init_test"] - ours["test"][-1]
    assert drop > 0.3 * ours["init_test"]  # far more than the 3 % allowed between them
    assert theirs["init_test"] - theirs["test"][-1] > 0.3 * theirs["init_test"]
