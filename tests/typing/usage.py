"""Typed use of the public API, for the type checker (not a pytest module).

CI runs, with the package installed (not editable) and torch, JAX and Dask present::

    python -m mypy --strict tests/typing/usage.py

The ``*_rejects`` functions hold calls that the annotations must reject, each marked
``# type: ignore[code]``: ``--strict`` includes ``--warn-unused-ignores``, so mypy fails
when one of them stops being an error.  Running the file (``python
tests/typing/usage.py``) executes the other functions' calls, as a smoke test; the
``*_rejects`` functions are never called.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import gumbel_softmax as gs
import gumbel_softmax.dask as gsd
import gumbel_softmax.jax as gsj
import gumbel_softmax.torch as gst
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import torch
from typing_extensions import assert_type

Array = npt.NDArray[Any]


def numpy_api() -> None:
    x = np.zeros((4, 3), np.float32)
    rng = gs.Philox(7, counter=2)
    assert_type(rng.counter, int)
    assert_type(rng.seed, int)
    assert_type(gs.__version__, str)
    assert_type(gs.STREAM_VERSION, int)

    y = gs.gumbel_softmax(x, 0.5, hard=True, rng=rng, mask=[True, False, True])
    assert_type(y, Array)
    y, y_soft = gs.gumbel_softmax(x, np.full(4, 0.5), rng=0, return_soft=True)
    assert_type(y_soft, Array)
    flag: bool = bool(y.sum() > 0)
    assert_type(gs.gumbel_softmax(x, return_soft=flag), "Array | tuple[Array, Array]")
    gs.gumbel_softmax([[0.0, 1.0]], [[0.5]], axis=-1, rng=np.random.default_rng(1), out=None)
    assert_type(gs.log_gumbel_softmax(x, tau=2, rng=None), Array)
    assert_type(gs.categorical(x, axis=np.int64(1), rng=3), npt.NDArray[np.int64])
    i = gs.categorical(x, rng=3)
    assert_type(gs.conditional_gumbel(x, i, rng=gs.Philox(3)), npt.NDArray[Any])
    assert_type(gs.top_k(x, 2, rng=rng), npt.NDArray[np.int64])
    yh = gs.gumbel_softmax(x, hard=True, rng=0)
    assert_type(gs.gumbel_rao_backward(x, x, yh, 0.5, samples=3, rng=rng, mask=None), Array)
    assert_type(gs.reinmax_backward(x, x, yh, tau=1.5, grad_p=x, out=np.empty_like(x)), Array)

    assert_type(gs.gumbel_softmax_backward(x, y_soft, 0.5), Array)
    assert_type(gs.gumbel_softmax_backward(x, logits=x, rng=0, out=np.empty_like(x)), Array)
    assert_type(gs.gumbel(5, rng=1), Array)
    assert_type(gs.logistic((2, 3), dtype=np.float64, rng=rng), Array)
    b, b_soft = gs.relaxed_bernoulli(x, 0.5, hard=True, return_soft=True)
    assert_type(b, Array)
    assert_type(gs.relaxed_bernoulli_backward(x, b_soft, tau=0.5), Array)
    assert_type(gs.concrete_log_prob(y_soft, x, 0.5, log_space=False), Array)
    assert_type(gs.relaxed_top_k(x, 2, 0.5, rng=rng, mask=[True, False, True]), Array)
    s_hard, s_soft = gs.relaxed_top_k(x, 2, np.full(4, 0.5), hard=True, return_soft=True)
    assert_type(s_soft, Array)
    assert_type(gs.relaxed_top_k(x, np.int64(2), return_soft=flag), "Array | tuple[Array, Array]")
    assert_type(gs.relaxed_top_k_backward(x, x, 2, 0.5, rng=0, out=np.empty_like(x)), Array)
    assert_type(gs.philox4x32([0, 0, 0, 0], [0, 0]), npt.NDArray[np.uint32])
    assert_type(gs.cpu_target(), str)
    assert_type(gs.cpu_targets(), list[str])
    n = gs.get_num_threads()
    gs.set_num_threads(n)
    gs.set_num_threads(None)

    layer = gs.GumbelSoftmax(tau=0.5, hard=True, rng=0, recompute=True)
    rao = gs.GumbelSoftmax(tau=0.5, hard=True, rng=0, estimator="gumbel-rao", samples=20)
    assert_type(rao.backward(rao.forward(np.zeros((2, 3)))), Array)
    assert_type(layer.rng, gs.Philox)
    assert_type(layer.backward(np.ones_like(layer.forward(x))), Array)
    layer.tau = gs.anneal_tau(1000, rate=1e-4)
    assert_type(gs.anneal_tau(10), float)
    assert_type(gs.anneal_tau(np.arange(3)), "float | npt.NDArray[np.float64]")


def numpy_api_rejects() -> None:
    x = np.zeros((4, 3))
    gs.gumbel_softmax(x, tau="hot")  # type: ignore[arg-type]
    gs.gumbel_softmax(x, hard=1)  # type: ignore[call-overload]
    _ = gs.gumbel_softmax(x, return_soft=True).shape  # type: ignore[attr-defined]
    gs.log_gumbel_softmax(x, tau=None)  # type: ignore[arg-type]
    gs.categorical(x, axis=1.5)  # type: ignore[arg-type]
    gs.categorical(x, rng="seed")  # type: ignore[arg-type]
    gs.conditional_gumbel(x, x, axis="0")  # type: ignore[arg-type]
    gs.top_k(x, 2.0)  # type: ignore[arg-type]
    gs.gumbel_rao_backward(x, x, x, samples="3")  # type: ignore[arg-type]
    gs.reinmax_backward(x, x, x, axis=None)  # type: ignore[arg-type]
    gs.relaxed_top_k(x, 2.0)  # type: ignore[call-overload]
    _ = gs.relaxed_top_k(x, 2, return_soft=True).shape  # type: ignore[attr-defined]
    gs.relaxed_top_k_backward(x, x, 2)  # type: ignore[call-arg]
    gs.gumbel((2, 3), rng=1.5)  # type: ignore[arg-type]
    gs.gumbel_softmax_backward(x, x, out=[0.0])  # type: ignore[arg-type]
    gs.relaxed_bernoulli(x, rng=gs)  # type: ignore[call-overload]
    gs.set_num_threads("4")  # type: ignore[arg-type]
    gs.GumbelSoftmax(tau="hot")  # type: ignore[arg-type]
    gs.anneal_tau(10) + ""  # type: ignore[operator]


def dask_api() -> None:
    x = da.zeros((8, 3), chunks=(4, 3))
    assert_type(gsd.gumbel_softmax(x, 0.5, rng=gs.Philox(0)), da.Array)
    y, y_soft = gsd.gumbel_softmax(x, hard=True, return_soft=True)
    assert_type(y_soft, da.Array)
    assert_type(gsd.log_gumbel_softmax(np.zeros((2, 3)), rng=1), da.Array)
    assert_type(gsd.categorical(x, rng=1), da.Array)
    assert_type(gsd.top_k(x, 2, rng=1), da.Array)
    assert_type(gsd.conditional_gumbel(x, np.zeros(8, np.int64), rng=1), da.Array)
    assert_type(gsd.relaxed_bernoulli(x, rng=1), da.Array)
    assert_type(gsd.relaxed_top_k(x, 2, 0.5, rng=1), da.Array)
    k_hot, k_soft = gsd.relaxed_top_k(x, 2, hard=True, axis=-1, return_soft=True)
    assert_type(k_soft, da.Array)
    assert_type(gsd.gumbel((8, 3), chunks=4, rng=1), da.Array)
    assert_type(gsd.logistic(5, rng=1), da.Array)
    assert_type(gsd.gumbel_softmax_backward(x, logits=x, rng=0), da.Array)
    assert_type(gsd.relaxed_bernoulli_backward(x, x), da.Array)


def dask_api_rejects() -> None:
    x = da.zeros((8, 3), chunks=(4, 3))
    gsd.categorical(x, axis="0")  # type: ignore[arg-type]
    _ = gsd.gumbel_softmax(x, return_soft=True).compute()  # type: ignore[attr-defined]
    _ = gsd.relaxed_top_k(x, 2, return_soft=True).compute()  # type: ignore[attr-defined]


def jax_api() -> None:
    x = jnp.zeros((2, 3))
    assert_type(gsj.gumbel_softmax(jax.random.PRNGKey(0), x, 0.5, hard=True), jax.Array)
    assert_type(gsj.gumbel_softmax(5, x, tau=jnp.asarray(0.5)), jax.Array)
    assert_type(gsj.seed_of(jax.random.key(7)), int)
    mask = jnp.ones((2, 3), bool)
    assert_type(gsj.top_k(jax.random.key(1), x, 2, axis=-1, mask=mask), jax.Array)
    assert_type(gsj.relaxed_bernoulli(3, x, jnp.ones(3), hard=True), jax.Array)
    assert_type(gsj.relaxed_top_k(3, x, 2, 0.5, hard=True, axis=0, mask=mask), jax.Array)


def jax_api_rejects() -> None:
    x = jnp.zeros((2, 3))
    gsj.gumbel_softmax(x)  # type: ignore[call-arg]
    gsj.gumbel_softmax("key", x)  # type: ignore[arg-type]
    gsj.top_k(0, x, "2")  # type: ignore[arg-type]
    gsj.relaxed_top_k(0, x)  # type: ignore[call-arg]


def torch_api() -> None:
    x = torch.zeros(2, 3, requires_grad=True)
    y = gst.gumbel_softmax(x, tau=0.5, hard=True, generator=torch.Generator().manual_seed(0))
    assert_type(y, torch.Tensor)
    assert_type(
        gst.gumbel_softmax(x, torch.tensor(0.5), dim=0, generator=gs.Philox(1)), torch.Tensor
    )
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert_type(gst.gumbel_softmax(x, 0.5, mask=mask), torch.Tensor)
    assert_type(gst.log_gumbel_softmax(x, 0.5, generator=1, mask=mask), torch.Tensor)
    assert_type(gst.categorical(x, generator=np.random.default_rng(0)), torch.Tensor)
    assert_type(gst.top_k(x, 2, dim=-1, mask=mask), torch.Tensor)
    assert_type(gst.relaxed_bernoulli(x, torch.ones(3), hard=True, generator=2), torch.Tensor)
    assert_type(gst.relaxed_top_k(x, 2, 0.5, hard=True, dim=-1, generator=None), torch.Tensor)


def torch_api_rejects() -> None:
    x = torch.zeros(2, 3, requires_grad=True)
    gst.gumbel_softmax(np.zeros((2, 3)))  # type: ignore[arg-type]
    gst.gumbel_softmax(x, generator="seed")  # type: ignore[arg-type]
    gst.top_k(x, "2")  # type: ignore[arg-type]
    gst.relaxed_top_k(x, 2, 0.5, True)  # type: ignore[call-arg]


if __name__ == "__main__":
    numpy_api()
    dask_api()
    jax_api()
    torch_api()
    print("ok")
