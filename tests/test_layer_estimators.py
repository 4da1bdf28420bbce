"""GumbelSoftmax(estimator=...): the layer's backward is the estimator function called
on the forward's logits and one-hot, bitwise; errors name the argument."""

from __future__ import annotations

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import same_bits


def _x(shape=(5, 7), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("masked", [False, True])
def test_gumbel_rao_layer_is_the_function_on_the_next_rows(axis, masked):
    x, g = _x(), _x(seed=1)
    mask = None
    if masked:
        mask = np.ones(x.shape, bool)
        mask[1, 2] = mask[3, 0] = False
    layer = gs.GumbelSoftmax(
        tau=0.7, hard=True, axis=axis, rng=4, estimator="gumbel-rao", samples=6
    )
    y = layer.forward(x, mask=mask)
    assert same_bits(y, gs.gumbel_softmax(x, 0.7, hard=True, axis=axis, rng=4, mask=mask))
    after_forward = gs.Philox(4, counter=layer.rng.counter)
    got = layer.backward(g)
    want = gs.gumbel_rao_backward(g, x, y, 0.7, samples=6, axis=axis, rng=after_forward, mask=mask)
    assert same_bits(got, want)
    assert layer.rng.counter == after_forward.counter  # the draws came from the layer's rng


def test_reinmax_layer_is_the_function():
    x, g = _x(), _x(seed=1)
    layer = gs.GumbelSoftmax(tau=1.5, hard=True, rng=2, estimator="reinmax")
    y = layer.forward(x)
    assert same_bits(layer.backward(g), gs.reinmax_backward(g, x, y, 1.5))
    mask = np.ones(x.shape, bool)
    mask[0, 0] = False
    y = layer.forward(x, mask=mask)
    assert y[0, 0] == 0
    want = gs.reinmax_backward(g, np.where(mask, x, -np.inf), y, 1.5)
    assert same_bits(layer.backward(g), want)


def test_st_is_the_default_and_unchanged():
    x, g = _x(), _x(seed=1)
    a = gs.GumbelSoftmax(tau=0.5, hard=True, rng=1)
    b = gs.GumbelSoftmax(tau=0.5, hard=True, rng=1, estimator="st")
    assert a.estimator == "st" and a.samples == 10
    assert same_bits(a.forward(x), b.forward(x)) and same_bits(a.backward(g), b.backward(g))


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"estimator": "rao"}, ValueError, "estimator"),
        ({"estimator": 1}, TypeError, "estimator"),
        ({"estimator": "gumbel-rao", "samples": 0}, ValueError, "samples"),
        ({"estimator": "gumbel-rao", "samples": 2.0}, TypeError, "samples"),
        ({"estimator": "gumbel-rao", "samples": True}, TypeError, "samples"),
        ({"estimator": "gumbel-rao", "hard": False}, ValueError, "hard"),
        ({"estimator": "reinmax", "hard": False, "tau": 2.0}, ValueError, "hard"),
        ({"estimator": "reinmax", "tau": 0.5}, ValueError, "tau"),
        ({"estimator": "reinmax", "tau": [1.0, 0.9]}, ValueError, "tau"),
        ({"estimator": "gumbel-rao", "recompute": True}, ValueError, "recompute"),
    ],
)
def test_bad_estimator_arguments(kwargs, exc, match):
    args = {"tau": 1.0, "hard": True, "rng": 0, **kwargs}
    with pytest.raises(exc, match=match):
        gs.GumbelSoftmax(**args)


def test_reinmax_tau_reassigned_below_one_raises_and_draws_nothing():
    layer = gs.GumbelSoftmax(tau=1.0, hard=True, rng=0, estimator="reinmax")
    layer.tau = 0.5
    with pytest.raises(ValueError, match="tau"):
        layer.forward(_x())
    assert layer.rng.counter == 0
