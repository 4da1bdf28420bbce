"""gumbel_softmax.torch with float16 and bfloat16 tensors, in and out.

Computed as the NumPy API computes them (float32 from the float32 stream, rounded to
nearest even), so the sample is bitwise the NumPy API's on the same values as an
ml_dtypes bfloat16 (or float16) array, from the same state, and bitwise the float32
call on the upcast tensor rounded with torch's own ``.to(torch.bfloat16)``; the gradient
is the NumPy API's backward of the half sample, rounded the same way.  Every row path
(short rows, the fused half path of 33 to 2**15 elements, long rows) and strided views.
"""

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)

import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import gumbel_softmax  # noqa: E402

HALF = [torch.float16, torch.bfloat16]
SHAPES = [((64, 10), -1), ((9, 40), -1), ((40, 9), 0), ((2, 40000), -1), ((3, 5, 33), 1)]


def _np_half(t):
    """The NumPy array of the same values in the NumPy API's half dtype."""
    if t.dtype == torch.float16:
        return t.detach().numpy()
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bits = t.detach().contiguous().view(torch.int16).numpy().view(np.uint16)
    return bits.view(ml_dtypes.bfloat16)


def _bits(t):
    return t.detach().contiguous().view(torch.int16).numpy()


def _same_bits(t, a):
    """A torch half tensor and a NumPy half array: the same shape and bits."""
    return tuple(t.shape) == a.shape and np.array_equal(_bits(t), a.view(np.int16))


def _logits(shape, dtype, seed):
    return (3 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))).to(dtype)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape,dim", SHAPES)
def test_sample_is_the_numpy_apis(dtype, hard, shape, dim):
    x = _logits(shape, dtype, 1)
    rng_t, rng_n = gs.Philox(5, counter=7), gs.Philox(5, counter=7)
    y = gumbel_softmax(x, 0.6, hard=hard, dim=dim, generator=rng_t)
    assert y.dtype == dtype and y.shape == x.shape
    ref = gs.gumbel_softmax(_np_half(x), 0.6, hard=hard, axis=dim, rng=rng_n)
    assert _same_bits(y, ref)
    assert rng_t.counter == rng_n.counter
    # and the float32 call rounded by torch (nearest even, as ml_dtypes and NumPy)
    y32 = gumbel_softmax(x.float(), 0.6, hard=hard, dim=dim, generator=gs.Philox(5, counter=7))
    assert np.array_equal(_bits(y), _bits(y32.to(dtype)))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("shape,dim", SHAPES[:3])
def test_gradient_is_the_numpy_apis(dtype, hard, shape, dim):
    x = _logits(shape, dtype, 2).requires_grad_()
    w = _logits(shape, dtype, 3)
    y = gumbel_softmax(x, 0.6, hard=hard, dim=dim, generator=4)
    y.backward(w)
    assert x.grad.dtype == dtype
    _, ys = gs.gumbel_softmax(_np_half(x), 0.6, hard=hard, axis=dim, rng=4, return_soft=True)
    ref = gs.gumbel_softmax_backward(_np_half(w), ys, 0.6, axis=dim)
    assert _same_bits(x.grad, ref)


@pytest.mark.parametrize("dtype", HALF)
def test_strided_views_and_per_row_tau(dtype):
    base = _logits((20, 30), dtype, 5)
    tau = torch.linspace(0.3, 2.0, 10, dtype=torch.bfloat16)
    for view in (base[::2, 1::3], base.t()[:, ::2][:, :10].t()):
        y = gumbel_softmax(view, tau, generator=8)
        ref = gs.gumbel_softmax(_np_half(view), tau.float().numpy(), rng=8)
        assert _same_bits(y, ref)


@pytest.mark.parametrize("dtype", HALF)
def test_tau_gradient_in_half(dtype):
    """A half tau gets its gradient in its dtype: the float64 sum over the rows of
    -grad_logits * log(y_soft), from the rounded half gradient and sample."""
    x = _logits((6, 12), dtype, 6)
    tau = torch.full((6,), 0.75, dtype=dtype, requires_grad=True)
    w = _logits((6, 12), dtype, 7)
    (gumbel_softmax(x, tau, generator=3) * w).sum().backward()
    assert tau.grad.dtype == dtype
    ys = gs.gumbel_softmax(_np_half(x), 0.75, rng=3)
    gx = gs.gumbel_softmax_backward(_np_half(w), ys, 0.75).astype(np.float64)
    ys = ys.astype(np.float64)
    ref = -(gx * np.log(np.where(ys > 0, ys, 1))).sum(-1)
    assert torch.equal(tau.grad, torch.from_numpy(ref).to(dtype))


def test_bfloat16_under_torch_func():
    x = _logits((4, 10), torch.bfloat16, 8)
    y = torch.func.vmap(lambda v: gumbel_softmax(v, 0.5, generator=2), randomness="same")(x)
    assert np.array_equal(
        _bits(y), _bits(torch.stack([gumbel_softmax(v, 0.5, generator=2) for v in x]))
    )
    g = torch.func.grad(lambda v: gumbel_softmax(v, 0.5, generator=2)[:, 0].float().sum())(x)
    xe = x.clone().requires_grad_()
    gumbel_softmax(xe, 0.5, generator=2)[:, 0].float().sum().backward()
    assert g.dtype == torch.bfloat16 and np.array_equal(_bits(g), _bits(xe.grad))
