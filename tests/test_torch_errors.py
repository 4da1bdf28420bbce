"""gumbel_softmax.torch: errors and the generators.

- every error names its argument and has torch's exception type where torch has one
  (IndexError for ``dim``), a non-CPU tensor and bad dtypes included;
- every error of the drop-in leaves torch's default generator, a ``torch.Generator``, a
  ``numpy.random.Generator`` and a ``gumbel_softmax.Philox`` as they were (MemoryError
  included), and a generator is put back only when nothing else drew from it;
- ``torch.utils.checkpoint``: the recomputation draws the same noise (``None``, int
  seed) or raises (a stateful generator), never differentiates other noise.
"""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (pip install 'gumbel-softmax[torch]')"
)
F = torch.nn.functional

import gumbel_softmax as gs  # noqa: E402
from gumbel_softmax.torch import gumbel_softmax  # noqa: E402

AxisError = np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError


# --------------------------------------------------------------------------------------
# Errors


def test_non_cpu_tensor_raises():
    x = torch.zeros(4, 3, device="meta")
    with pytest.raises(ValueError, match=r"logits must be a CPU tensor.*meta"):
        gumbel_softmax(x)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64, torch.float8_e4m3fn])
def test_bad_dtype_raises(dtype):
    with pytest.raises(TypeError, match="logits must be a float32, float64, float16 or bfloat16"):
        gumbel_softmax(torch.zeros(3, 4, dtype=dtype))


def test_bad_arguments_raise():
    x = torch.zeros(3, 4)
    with pytest.raises(TypeError, match="logits must be a torch.Tensor"):
        gumbel_softmax(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(x, 0.0)
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(x, torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(x, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(x, torch.ones(5))
    with pytest.raises(TypeError, match="tau"):
        gumbel_softmax(x, "1")
    with pytest.raises(IndexError, match="dim 2 is out of range"):  # torch's exception type
        gumbel_softmax(x, dim=2)
    with pytest.raises(TypeError, match="dim"):
        gumbel_softmax(x, dim=1.0)
    with pytest.raises(ValueError, match="0-d"):
        gumbel_softmax(torch.tensor(1.0))
    with pytest.raises(ValueError, match="length 0"):
        gumbel_softmax(torch.zeros(3, 0))
    with pytest.raises(TypeError, match="generator"):
        gumbel_softmax(x, generator="seed")
    with pytest.raises(ValueError, match="^generator: seed must be in"):
        gumbel_softmax(x, generator=-1)


def test_eps_warns_as_torch_does():
    x = torch.zeros(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gumbel_softmax(x, 1, False, 1e-10, -1, generator=1)  # torch's positional order
    with pytest.warns(UserWarning, match="eps"):
        gumbel_softmax(x, eps=1e-5, generator=1)


def test_a_failed_call_draws_nothing():
    rng = gs.Philox(3)
    with pytest.raises(ValueError):
        gumbel_softmax(torch.zeros(2, 3), -1.0, generator=rng)
    with pytest.raises(ValueError):
        gumbel_softmax(torch.zeros(2, 3, device="meta"), generator=rng)
    assert rng.counter == 0


# --------------------------------------------------------------------------------------
# A failed call changes no generator


def _huge(dtype=torch.float32):
    return torch.zeros(1, dtype=dtype).expand(2**20, 2**20)  # a 4 TiB result: MemoryError


BAD_CALLS = {
    # tau
    "tau nan tensor": (
        lambda gen: gumbel_softmax(
            torch.zeros(3, 4), torch.tensor([1.0, float("nan"), 1.0]), generator=gen
        ),
        ValueError,
        "tau",
    ),
    "tau negative element": (
        lambda gen: gumbel_softmax(
            torch.zeros(3, 4), torch.tensor([1.0, -1.0, 1.0]), generator=gen
        ),
        ValueError,
        "tau",
    ),
    "tau wrong shape": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), torch.ones(5), generator=gen),
        ValueError,
        "tau",
    ),
    "tau wrong shape keepdims": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), torch.ones(3, 4), generator=gen),
        ValueError,
        "tau",
    ),
    "tau ndarray wrong shape": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), np.ones(5), generator=gen),
        ValueError,
        "tau",
    ),
    "tau ndarray nan": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), np.array([1.0, np.nan, 1.0]), generator=gen),
        ValueError,
        "tau",
    ),
    "tau ndarray str": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), np.array(["a", "b", "c"]), generator=gen),
        TypeError,
        "tau",
    ),
    "tau zero": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), 0.0, generator=gen),
        ValueError,
        "tau",
    ),
    "tau inf": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), float("inf"), generator=gen),
        ValueError,
        "tau",
    ),
    "tau huge int": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), 10**400, generator=gen),
        ValueError,
        "tau",
    ),
    "tau str": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), "1", generator=gen),
        TypeError,
        "tau",
    ),
    "tau bool": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), True, generator=gen),
        TypeError,
        "tau",
    ),
    "tau complex tensor": (
        lambda gen: gumbel_softmax(
            torch.zeros(3, 4), torch.ones(3, dtype=torch.complex64), generator=gen
        ),
        TypeError,
        "tau",
    ),
    "tau bool tensor": (
        lambda gen: gumbel_softmax(
            torch.zeros(3, 4), torch.ones(3, dtype=torch.bool), generator=gen
        ),
        TypeError,
        "tau",
    ),
    "tau meta tensor": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), torch.ones(3, device="meta"), generator=gen),
        ValueError,
        "tau",
    ),
    "tau sparse tensor": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), torch.ones(3).to_sparse(), generator=gen),
        TypeError,
        "tau",
    ),
    "tau 0-d nan": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), torch.tensor(float("nan")), generator=gen),
        ValueError,
        "tau",
    ),
    # logits
    "logits ndarray": (
        lambda gen: gumbel_softmax(np.zeros((3, 4)), generator=gen),
        TypeError,
        "logits",
    ),
    "logits int64": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4, dtype=torch.int64), generator=gen),
        TypeError,
        "logits",
    ),
    "logits float8": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4, dtype=torch.float8_e5m2), generator=gen),
        TypeError,
        "logits",
    ),
    "logits complex": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4, dtype=torch.complex64), generator=gen),
        TypeError,
        "logits",
    ),
    "logits meta": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4, device="meta"), generator=gen),
        ValueError,
        "logits",
    ),
    "logits sparse": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4).to_sparse(), generator=gen),
        TypeError,
        "logits",
    ),
    "logits 0-d": (
        lambda gen: gumbel_softmax(torch.tensor(1.0), generator=gen),
        ValueError,
        "logits",
    ),
    "logits empty row": (
        lambda gen: gumbel_softmax(torch.zeros(3, 0), generator=gen),
        ValueError,
        "length 0",
    ),
    "logits 65 dims": (
        lambda gen: gumbel_softmax(torch.zeros([1] * 65), generator=gen),
        ValueError,
        "logits",
    ),
    "logits row too long": (
        lambda gen: gumbel_softmax(torch.zeros(1).expand(2**31), generator=gen),
        ValueError,
        "logits",
    ),
    "logits too big (MemoryError)": (
        lambda gen: gumbel_softmax(_huge(), generator=gen),
        MemoryError,
        "",
    ),
    "logits too big, hard (MemoryError)": (
        lambda gen: gumbel_softmax(_huge(), hard=True, generator=gen),
        MemoryError,
        "",
    ),
    "logits too big, float16 (MemoryError)": (
        lambda gen: gumbel_softmax(_huge(torch.float16), generator=gen),
        MemoryError,
        "",
    ),
    # dim
    "dim out of range": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), dim=2, generator=gen),
        IndexError,
        "dim 2 is out of range",
    ),
    "dim negative out of range": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), dim=-3, generator=gen),
        IndexError,
        "dim -3 is out of range",
    ),
    "dim 2**63": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), dim=2**63, generator=gen),
        IndexError,
        f"dim {2**63} is out of range",
    ),
    "dim float": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), dim=1.0, generator=gen),
        TypeError,
        "dim",
    ),
    "dim bool": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), dim=True, generator=gen),
        TypeError,
        "dim",
    ),
    "dim str": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), dim="1", generator=gen),
        TypeError,
        "dim",
    ),
    # hard
    "hard str": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), hard="no", generator=gen),
        TypeError,
        "hard",
    ),
    "hard float": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), hard=0.5, generator=gen),
        TypeError,
        "hard",
    ),
    "hard tensor of 2": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), hard=torch.ones(2), generator=gen),
        ValueError,
        "hard",
    ),
    "hard meta tensor": (
        lambda gen: gumbel_softmax(
            torch.zeros(3, 4), hard=torch.ones((), device="meta"), generator=gen
        ),
        ValueError,
        "hard",
    ),
    # mask
    "mask wrong shape": (
        lambda gen: gumbel_softmax(
            torch.zeros(3, 4), mask=torch.ones(5, dtype=torch.bool), generator=gen
        ),
        ValueError,
        "mask of shape",
    ),
    "mask float": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), mask=torch.ones(4), generator=gen),
        TypeError,
        "mask must be a bool tensor",
    ),
    "mask ndarray": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), mask=np.ones(4, bool), generator=gen),
        TypeError,
        "mask must be a bool torch.Tensor",
    ),
    # generator
    "generator negative seed": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), generator=-1),
        ValueError,
        "generator: seed must be in [0, 2**64)",
    ),
    "generator seed 2**64": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), generator=2**64),
        ValueError,
        "generator: seed must be in [0, 2**64)",
    ),
    "generator str": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), generator="seed"),
        TypeError,
        "generator must be",
    ),
    "generator bool": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), generator=True),
        TypeError,
        "generator must be",
    ),
    "Philox counter overflow": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), generator=gs.Philox(1, counter=2**64 - 2)),
        OverflowError,
        "counter",
    ),
    # eps (compared like torch; an array has no truth value)
    "eps array": (
        lambda gen: gumbel_softmax(torch.zeros(3, 4), eps=np.ones(2), generator=gen),
        TypeError,
        "eps",
    ),
}


def _generators():
    return {
        "default": None,
        "torch.Generator": torch.Generator().manual_seed(1),
        "numpy": np.random.default_rng(1),
        "Philox": gs.Philox(1, counter=5),
    }


def _state(gen):
    if gen is None:
        return torch.get_rng_state().clone()
    if isinstance(gen, torch.Generator):
        return gen.get_state().clone()
    if isinstance(gen, np.random.Generator):
        return gen.bit_generator.state
    return gen.counter


def _same(a, b):
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_a_failed_call_changes_no_generator(name):
    call, exc, words = BAD_CALLS[name]
    for gen_name, gen in _generators().items():
        default_before = torch.get_rng_state().clone()
        before = _state(gen)
        with pytest.raises(exc) as info:
            call(gen)
        assert words in str(info.value), (gen_name, info.value)
        assert _same(_state(gen), before), gen_name
        assert torch.equal(torch.get_rng_state(), default_before), gen_name


def test_the_generators_are_used():
    """The premise of the test above: a good call advances each of them."""
    for gen_name, gen in _generators().items():
        default_before = torch.get_rng_state().clone()
        before = _state(gen)
        gumbel_softmax(torch.zeros(3, 4), generator=gen)
        if gen is None:
            assert not torch.equal(torch.get_rng_state(), default_before)
        else:
            assert not _same(_state(gen), before), gen_name


@pytest.mark.parametrize("gen_kind", ["default", "torch.Generator", "numpy", "Philox"])
def test_memory_error_then_a_good_call_is_unchanged(gen_kind):
    """After a MemoryError, the next call draws what it would have drawn without it."""
    results = []
    for fail_first in (False, True):
        torch.manual_seed(4)
        gen = _generators()[gen_kind]
        if fail_first:
            with pytest.raises(MemoryError):
                gumbel_softmax(_huge(), generator=gen)
        results.append(gumbel_softmax(torch.zeros(3, 4), generator=gen))
    assert torch.equal(*results)


# --------------------------------------------------------------------------------------
# Errors: the argument named, torch's exception types


def test_dim_out_of_range_is_an_index_error_like_torch():
    x = torch.zeros(3, 4)
    with pytest.raises(IndexError) as theirs:
        F.gumbel_softmax(x, dim=2)
    with pytest.raises(IndexError, match=r"dim 2 is out of range.*\[-2, 1\]"):
        gumbel_softmax(x, dim=2)
    assert "[-2, 1]" in str(theirs.value)
    # AxisError is also a ValueError: code written for the NumPy API still catches it
    with pytest.raises(AxisError):
        gumbel_softmax(x, dim=-3)
    with pytest.raises(TypeError):
        F.gumbel_softmax(x, dim=True)  # torch rejects a bool dim too


def test_tau_overflow_names_tau():
    with pytest.raises(ValueError, match="tau must be .*finite"):
        gumbel_softmax(torch.zeros(2, 3), 10**400, generator=1)
    with pytest.raises(ValueError, match="tau must be .*finite"):
        gumbel_softmax(torch.zeros(2, 3), -(10**400), generator=1)


def test_hard_tensor_of_one_element_is_accepted():
    x = torch.zeros(2, 3)
    assert torch.equal(
        gumbel_softmax(x, hard=torch.tensor(True), generator=1),
        gumbel_softmax(x, hard=True, generator=1),
    )


def test_bfloat16_tau_is_accepted_as_its_value():
    """A bfloat16 tau tensor (which has no .numpy()) is accepted, as the same temperatures
    as its float32 values."""
    x = torch.randn(4, 5)
    t = torch.tensor([0.5, 1.0, 2.0, 0.75], dtype=torch.bfloat16)
    assert torch.equal(gumbel_softmax(x, t, generator=2), gumbel_softmax(x, t.float(), generator=2))


def test_a_failure_does_not_undo_another_draw(monkeypatch):
    """A generator is put back only when nothing else drew from it since our seed: a
    draw by other code in between (another thread) is not rewound, which would hand
    its numbers out twice."""
    import gumbel_softmax._torch_ops as gst

    def draw_then_fail(*args, **kwargs):
        torch.rand(3)  # someone else's draw from torch's default generator
        raise MemoryError("simulated")

    torch.manual_seed(5)
    gst.seed_from_torch(None)
    torch.rand(3)
    expected = torch.get_rng_state()
    torch.manual_seed(5)
    monkeypatch.setattr(gst._api, "gumbel_softmax", draw_then_fail)
    with pytest.raises(MemoryError, match="simulated"):
        gumbel_softmax(torch.zeros(2, 3))
    assert torch.equal(torch.get_rng_state(), expected)


def test_tau_with_the_negative_bit():
    """A real view with torch's lazy negation bit (the imaginary part of a conjugate)."""
    c = torch.tensor([1 - 0.5j, 1 - 2j, 1 - 1j], dtype=torch.complex128).conj()
    assert c.imag.is_neg()
    x = torch.randn(3, 4, dtype=torch.float64)
    assert torch.equal(
        gumbel_softmax(x, c.imag, generator=1), gumbel_softmax(x, c.imag.clone(), generator=1)
    )


@pytest.mark.parametrize("use_reentrant", [False, True])
@pytest.mark.parametrize("kind", ["default", "int", "torch.Generator", "Philox", "numpy"])
def test_checkpoint_recomputation_same_noise_or_raises(kind, use_reentrant):
    """torch.utils.checkpoint runs the forward again in the backward.  It restores
    torch's default generator, so generator=None (and an int seed) give the gradients of
    the same noise; a stateful generator was already advanced, and a recomputation would
    silently differentiate other noise: that raises, changing no generator."""
    from torch.utils.checkpoint import checkpoint

    x0 = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    w = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(10))

    def make():
        return {
            "default": None,
            "int": 3,
            "torch.Generator": torch.Generator().manual_seed(1),
            "Philox": gs.Philox(1),
            "numpy": np.random.default_rng(1),
        }[kind]

    torch.manual_seed(0)
    x = x0.clone().requires_grad_()
    (gumbel_softmax(x * 1, 0.5, generator=make()) * w).sum().backward()
    reference = x.grad
    torch.manual_seed(0)
    gen = make()
    x = x0.clone().requires_grad_()
    y = checkpoint(
        lambda v: gumbel_softmax(v * 1, 0.5, generator=gen), x, use_reentrant=use_reentrant
    )
    if kind in ("default", "int"):
        (y * w).sum().backward()
        assert torch.equal(x.grad, reference)
        return
    after_forward = _state(gen)
    with pytest.raises(RuntimeError, match="checkpoint"):
        (y * w).sum().backward()
    assert _same(_state(gen), after_forward)
