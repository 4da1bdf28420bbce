"""Shared pytest configuration for the gumbel_softmax test-suite.

Makes ``tests/reference.py`` importable as ``reference`` whatever pytest's import mode
is, and provides fixtures that wrap the package for the tests.
"""

from __future__ import annotations

import json
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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """One shard of the suite, for scripts/pytest_shards.py (CI's reruns run the suite as
    shards side by side): with GUMBEL_SOFTMAX_TEST_SHARD="i/n", keep every n-th test of
    the collection (after -m and -k) starting at the i-th, and write the whole collection's
    node ids to GUMBEL_SOFTMAX_TEST_SHARD_LIST, where the runner checks that every shard
    collected the same tests (so that the shards partition them exactly)."""
    shard = os.environ.get("GUMBEL_SOFTMAX_TEST_SHARD")
    if not shard:
        return
    i, n = (int(v) for v in shard.split("/"))
    if not 0 <= i < n:
        raise pytest.UsageError(f"GUMBEL_SOFTMAX_TEST_SHARD={shard!r}: want i/n, 0 <= i < n")
    listing = os.environ.get("GUMBEL_SOFTMAX_TEST_SHARD_LIST")
    if listing:
        with open(listing, "w") as f:
            json.dump([item.nodeid for item in items], f)
    config.hook.pytest_deselected(items=[t for k, t in enumerate(items) if k % n != i])
    items[:] = items[i::n]
