"""examples/vae_digits.py: the categorical VAE trained in NumPy with gumbel_softmax.

- training reduces the -ELBO (soft and straight-through samples);
- the hand-written backpropagation against central finite differences in float64, with
  the Gumbel noise held fixed (soft: every parameter; hard: the decoder against the true
  loss, the encoder against the straight-through surrogate);
- with PyTorch: the manual gradient equals autograd's for the same noise, and the NumPy
  and PyTorch trainers (different noise, same everything else) follow the same curve;
- the estimators of issue 16 (straight-through, Gumbel-Rao, ReinMax;
  examples/vae_estimators.py): 2 short epochs of each lower the loss (ours and torch);
  each hand-written gradient = finite differences of the true loss (decoder), of the
  decoder in z (the gradient at the one-hot) and of a linear surrogate carrying the
  estimator's float64 formula on the same noise (encoder); our Gumbel-Rao / ReinMax
  gradients = torch autograd of the PyTorch versions on the same noise (float64); the
  PyTorch versions = their formulas and the ``reinmax`` package (skipped without it).

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


# --------------------------------------------------------------------------------------
# Estimators (issue 16, point 6): straight-through, Gumbel-Rao and ReinMax, ours and
# the PyTorch implementations written from the papers (examples/vae_estimators.py)

ESTIMATORS = EXAMPLE.parent / "vae_estimators.py"


@pytest.fixture(scope="module")
def est(vae):
    """examples/vae_estimators.py (imported by the example itself)."""
    import sys

    return sys.modules["vae_estimators"]


def _jvp(p, v):
    """J(p) v along the last axis, J(p) = diag(p) - p p^T (float64)."""
    return p * v - p * np.sum(p * v, axis=-1, keepdims=True)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_torch_gumbel_rao_is_the_formula(est):
    """The torch GR-MCk (K conditional draws materialised, the noise held fixed in the
    softmax) gives (1 / (K tau)) sum_k J(softmax(z_k / tau)) grad on its own draws
    (float64), its draws have argmax = I, and the forward is the one-hot."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(6, 4, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    d = est.one_hot_sample_torch(logits, gen)
    z = est.conditional_gumbel_torch(logits, d, 12, gen)
    assert torch.equal(z.argmax(-1), d.argmax(-1).expand(12, 6, 4))
    tau = 0.7
    y = est.gumbel_rao_surrogate_torch(logits, d, z, tau)
    assert torch.equal(y, d)
    grad = torch.randn(6, 4, 7, dtype=torch.float64, generator=gen)
    (y * grad).sum().backward()
    zn, gn = z.numpy(), grad.numpy()
    ref = np.mean([_jvp(_softmax(zk / tau), gn) for zk in zn], axis=0) / tau
    np.testing.assert_allclose(logits.grad.numpy(), ref, rtol=1e-12, atol=1e-15)


def test_torch_reinmax_equals_the_package(est):
    """ReinMaxTorch (written from the paper) = the ``reinmax`` package on the package's
    own sample, for the gradients at the sample and at p0 (float64); skipped without
    the package (pip install reinmax)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    package = est.reinmax_package()
    if package is None:
        pytest.skip("the reinmax package is not installed")
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, 6, dtype=torch.float64, generator=gen)
    gy, gp = (torch.randn(5, 3, 6, dtype=torch.float64, generator=gen) for _ in range(2))
    for tau in (1.0, 1.7):
        a = x.clone().requires_grad_(True)
        y, p = package(a, tau)
        ((y * gy).sum() + (p * gp).sum()).backward()
        b = x.clone().requires_grad_(True)
        y2, p2 = est.reinmax_torch(b, tau, y.detach())
        assert torch.equal(y2, y) and torch.allclose(p2, p)
        ((y2 * gy).sum() + (p2 * gp).sum()).backward()
        # the package subtracts the row mean at the end: a no-op up to rounding (J's rows
        # sum to 0), so equal within float64 rounding
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_torch_reinmax_is_the_formula(est):
    """ReinMaxTorch: 2 J(p1) g + J(p0) (g_p - g / 2), p0 = softmax(x), p1 =
    (softmax(x / tau) + D) / 2, in float64 (no package needed)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(4, 9, dtype=torch.float64, generator=gen, requires_grad=True)
    d = est.one_hot_sample_torch(x, gen)
    g, gp = (torch.randn(4, 9, dtype=torch.float64, generator=gen) for _ in range(2))
    y, p = est.reinmax_torch(x, 1.5, d)
    ((y * g).sum() + (p * gp).sum()).backward()
    xn, dn, gn, gpn = x.detach().numpy(), d.numpy(), g.numpy(), gp.numpy()
    p0, p1 = _softmax(xn), 0.5 * (_softmax(xn / 1.5) + dn)
    ref = 2 * _jvp(p1, gn) + _jvp(p0, gpn - gn / 2)
    np.testing.assert_allclose(x.grad.numpy(), ref, rtol=1e-12, atol=1e-15)


def test_variance_machinery(vae, data, est):
    """encoder_gradients: draws differ (fresh noise), have the encoder's size, are
    reproducible from the seed; a draw is loss_and_grads' encoder gradient; the
    summary's total variance is the trace of the sample covariance."""
    x = data[0][:10]
    params = vae.init_params(np.random.default_rng(6))
    st = est.Estimator("st")
    g = est.encoder_gradients(vae, params, x, 0.8, st, draws=4, seed=9)
    assert g.shape == (4, sum(params[k].size for k in ENCODER))
    assert not np.array_equal(g[0], g[1])
    np.testing.assert_array_equal(g, est.encoder_gradients(vae, params, x, 0.8, st, 4, 9))
    rng = gs.Philox(9)
    first = vae.loss_and_grads(params, x, 0.8, st, rng)[1]
    np.testing.assert_array_equal(g[0], np.concatenate([first[k].reshape(-1) for k in ENCODER]))
    s = est.variance_summary(g)
    centred = g - g.mean(axis=0)
    trace_cov = np.einsum("ij,ij->", centred, centred) / (len(g) - 1)  # trace of np.cov(g.T)
    assert s["total_variance"] == pytest.approx(trace_cov, rel=1e-9)
    assert s["draws"] == 4
    assert est.checkpoint_epochs(300) == [0, 150, 300]


HARD_ESTIMATORS = ["st", "gumbel-rao", "reinmax"]


def _estimator(est, name):
    return est.Estimator(name, samples=5) if name == "gumbel-rao" else est.Estimator(name)


@pytest.mark.parametrize("name", HARD_ESTIMATORS)
def test_two_epochs_reduce_the_loss_each_estimator(vae, data, est, one_thread, name):
    """Ours: 2 short epochs of each estimator lower the training and test -ELBO
    (ReinMax at its constant tau = 1, the others on the annealed schedule)."""
    x_train, x_test = data
    epochs, batch_size = 2, 50
    steps = epochs * (len(x_train) // batch_size)
    taus = np.ones(steps) if name == "reinmax" else vae.tau_schedule(steps)
    hist = vae.train_numpy(
        vae.init_params(np.random.default_rng(0)),
        x_train,
        x_test,
        hard=_estimator(est, name),
        taus=taus,
        orders=vae.batch_orders(len(x_train), epochs, 1),
        batch_size=batch_size,
        noise_seed=0,
        verbose=False,
    )
    assert np.all(np.isfinite(hist["train"] + hist["test"]))
    assert hist["train"][1] < hist["train"][0] < hist["init_train"]
    assert hist["test"][1] < hist["init_test"]


def _latent_reference(name, logits, y, d_z, tau, seed, samples=5):
    """The estimator's gradient at the logits, in float64 from its formula, with the
    noise the example's call used: the forward's rows of gs.Philox(seed) (straight-
    through's soft sample), then for Gumbel-Rao the conditional draws of the documented
    stream rows that follow (draw k of row r at row R + r K + k, R the forward's rows)."""
    shape, c = logits.shape, logits.shape[-1]
    x2, y2, d2 = (a.reshape(-1, c).astype(np.float64) for a in (logits, y, d_z))
    rows = len(x2)
    if name == "st":
        g = gs.gumbel(x2.shape, dtype=np.float64, rng=gs.Philox(seed))
        ref = _jvp(_softmax((x2 + g) / tau), d2) / tau
    elif name == "gumbel-rao":
        index = y2.argmax(-1)
        z = gs.conditional_gumbel(
            np.repeat(x2, samples, axis=0),
            np.repeat(index, samples),
            rng=gs.Philox(seed, counter=rows),
        ).reshape(rows, samples, c)
        ref = np.mean([_jvp(_softmax(z[:, k] / tau), d2) for k in range(samples)], 0) / tau
    else:
        p0, p1 = _softmax(x2), 0.5 * (_softmax(x2 / tau) + y2)
        ref = 2 * _jvp(p1, d2) + _jvp(p0, -d2 / 2)
    return ref.reshape(shape)


@pytest.mark.parametrize("name", HARD_ESTIMATORS)
def test_estimator_gradient_matches_reference(vae, data, est, name):
    """The hand-written gradient of each hard estimator's path (float64, fixed noise):

    - decoder: central differences of the true loss (the one-hot does not move);
    - the gradient at the one-hot ``d_z``: central differences of the decoder's loss in
      ``z`` (smooth: z enters the decoder only);
    - encoder: central differences of ``S(theta) = sum(c * logits(theta)) + mean KL``,
      whose derivative chains the estimator's latent gradient ``c`` (its formula in
      float64, :func:`_latent_reference`) through the encoder.
    """
    x = data[0][:5].astype(np.float64)
    params = vae.init_params(np.random.default_rng(7), dtype=np.float64)
    e = _estimator(est, name)
    tau, seed = (1.3 if name == "reinmax" else 0.7), 19
    loss, grads = vae.loss_and_grads(params, x, tau, e, gs.Philox(seed))
    loss_again, cache = vae.forward(params, x, tau, e, gs.Philox(seed))
    assert loss_again == loss
    z = cache[6]  # the one-hots the decoder saw, (B, 200)
    rng = np.random.default_rng(8)

    def true_loss():
        return vae.forward(params, x, tau, e, gs.Philox(seed))[0]

    for n in DECODER:
        _check_entries(n, params[n], grads[n], true_loss, rng)

    def dec_loss(zz):
        return float(np.sum(vae.bce_with_logits(vae.decode(params, zz)[1], x)) / len(x))

    h = 1e-6
    d_z = np.empty_like(z)
    for j in range(z.shape[1]):
        up, down = z.copy(), z.copy()
        up[:, j] += h
        down[:, j] -= h
        for b in range(len(x)):  # per image: its BCE depends on its own z only
            d_z[b, j] = (
                vae.bce_with_logits(vae.decode(params, up[b : b + 1])[1], x[b : b + 1])[0]
                - vae.bce_with_logits(vae.decode(params, down[b : b + 1])[1], x[b : b + 1])[0]
            ) / (2 * h * len(x))
    _, logits0 = vae.encode(params, x)
    y = z.reshape(logits0.shape)
    c = _latent_reference(name, logits0, y, d_z.reshape(logits0.shape), tau, seed)

    def surrogate():
        _, logits = vae.encode(params, x)
        return float(np.sum(c * logits) + np.mean(vae.kl_uniform(logits)[0]))

    for n in ENCODER:
        gflat = grads[n].reshape(-1)
        picks = [int(np.argmax(np.abs(gflat)))] + rng.choice(gflat.size, 4).tolist()
        for i in picks:
            fd = _central_difference(params[n], i, surrogate)
            assert gflat[i] == pytest.approx(fd, rel=1e-5, abs=1e-7), (n, i)


@pytest.mark.parametrize("name", ["gumbel-rao", "reinmax"])
def test_ours_equals_torch_on_the_same_noise(vae, data, est, name):
    """Our Gumbel-Rao / ReinMax gradients of every parameter = torch autograd (float64)
    of the same model with the PyTorch estimator on the same noise: the one-hot of our
    forward, and for Gumbel-Rao the conditional draws of the documented stream rows
    (``gs.conditional_gumbel``) fed to the torch surrogate."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    F = torch.nn.functional
    x = data[0][:8].astype(np.float64)
    params = vae.init_params(np.random.default_rng(9), dtype=np.float64)
    e = _estimator(est, name)
    tau, seed, k = (1.2 if name == "reinmax" else 0.6), 23, 5
    loss, grads = vae.loss_and_grads(params, x, tau, e, gs.Philox(seed))
    shape = (len(x), vae.N_VARS, vae.N_CATS)
    _, cache = vae.forward(params, x, tau, e, gs.Philox(seed))
    d = torch.from_numpy(cache[6].reshape(shape))

    p = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
    xt = torch.from_numpy(x)
    h1 = torch.relu(xt @ p["W1"] + p["b1"])
    logits = (h1 @ p["W2"] + p["b2"]).reshape(shape)
    if name == "gumbel-rao":
        rows = len(x) * vae.N_VARS
        l2 = logits.detach().numpy().reshape(rows, -1)
        z = gs.conditional_gumbel(
            np.repeat(l2, k, axis=0),
            np.repeat(cache[6].reshape(rows, -1).argmax(-1), k),
            rng=gs.Philox(seed, counter=rows),
        )
        z = torch.from_numpy(z.reshape(len(x), vae.N_VARS, k, -1).transpose(2, 0, 1, 3).copy())
        y = est.gumbel_rao_surrogate_torch(logits, d, z, tau)
    else:
        y = est.reinmax_torch(logits, tau, d)[0]
    h2 = torch.relu(y.reshape(len(x), -1) @ p["W3"] + p["b3"])
    pix = h2 @ p["W4"] + p["b4"]
    bce = F.binary_cross_entropy_with_logits(pix, xt, reduction="none").sum(-1)
    log_q = torch.log_softmax(logits, -1)
    kl = (log_q.exp() * log_q).sum((-2, -1)) + vae.N_VARS * np.log(vae.N_CATS)
    t_loss = (bce + kl).mean()
    t_loss.backward()
    assert loss == pytest.approx(t_loss.item(), rel=1e-12)
    for n in vae.PARAM_NAMES:
        np.testing.assert_allclose(grads[n], p[n].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=n)


@pytest.mark.parametrize("name", HARD_ESTIMATORS)
def test_torch_trainer_each_estimator(vae, data, est, one_thread, name):
    """The PyTorch trainer with each estimator (the reinmax package when installed):
    two short epochs lower the -ELBO."""
    pytest.importorskip("torch", reason="PyTorch is not installed")
    x_train, x_test = data
    epochs, batch_size = 2, 50
    steps = epochs * (len(x_train) // batch_size)
    hist = vae.train_torch(
        vae.init_params(np.random.default_rng(0)),
        x_train,
        x_test,
        hard=_estimator(est, name),
        taus=np.ones(steps) if name == "reinmax" else vae.tau_schedule(steps),
        orders=vae.batch_orders(len(x_train), epochs, 1),
        batch_size=batch_size,
        noise_seed=0,
        verbose=False,
        num_threads=1,
    )
    assert hist["train"][1] < hist["train"][0] < hist["init_train"]
    assert hist["test"][1] < hist["init_test"]
