"""Shared pytest configuration for the gumbel_softmax test-suite.

Makes ``tests/reference.py`` importable as ``reference`` whatever pytest's import mode
is, and provides fixtures that wrap the package for the tests.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture(scope="session")
def gs():
    """The package under test."""
    import gumbel_softmax

    return gumbel_softmax


@pytest.fixture(scope="session")
def moved_noise(gs):
    """noise(shape, dtype, seed, counter, axis) -> the noise a sampler adds.

    For ``gumbel_softmax(x, axis=axis, rng=gs.Philox(seed, counter=counter))`` with
    ``x.shape == shape`` the added noise is ``gs.gumbel`` of the shape with ``axis``
    moved last, moved back to ``axis``.
    """

    def noise(shape, dtype, seed, counter, axis=-1):
        shape = tuple(shape)
        ax = axis % len(shape)
        moved = shape[:ax] + shape[ax + 1 :] + (shape[ax],)
        g = gs.gumbel(moved, dtype=dtype, rng=gs.Philox(seed, counter=counter))
        assert g.shape == moved and g.dtype == np.dtype(dtype)
        return np.moveaxis(g, -1, ax)

    return noise
