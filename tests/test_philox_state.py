"""gs.Philox as an object: pickling with every protocol, copies, state round trips."""

from __future__ import annotations

import copy
import pickle

import gumbel_softmax as gs
import numpy as np
import pytest

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


class Tagged(gs.Philox):
    """A subclass with instance attributes."""


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("counter", [0, 5, 2**63, 2**64 - 1, 2**64])
def test_pickle_round_trip_every_protocol(protocol, counter):
    # Protocols 0 and 1 ended the process (pybind11 supports 2 and up: an uncaught C++
    # exception, SIGABRT); a counter of 2**64 is an exhausted generator.
    rng = gs.Philox(2**64 - 3, counter=min(counter, 2**64 - 1))
    if counter == 2**64:
        rng.reserve(1)
    back = pickle.loads(pickle.dumps(rng, protocol=protocol))
    assert type(back) is gs.Philox
    assert back == rng and back.counter == counter and back.seed == 2**64 - 3
    assert back is not rng
    if counter < 2**64 - 1:  # the same rows follow
        x = np.zeros((3, 4), np.float32)
        assert gs.gumbel_softmax(x, rng=back).tobytes() == gs.gumbel_softmax(x, rng=rng).tobytes()
        assert back.counter == rng.counter


def test_reduce_called_directly():
    rng = gs.Philox(7, counter=9)
    fn, args = rng.__reduce__()
    assert fn(*args) == rng
    fn, args = rng.__reduce_ex__(0)
    assert fn(*args) == rng


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subclass_pickles_with_its_attributes(protocol):
    rng = Tagged(3, counter=4)
    rng.name = "mine"
    back = pickle.loads(pickle.dumps(rng, protocol=protocol))
    assert type(back) is Tagged and back.name == "mine" and back == rng


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_layer_pickles_every_protocol(protocol):
    layer = gs.GumbelSoftmax(tau=0.5, rng=gs.Philox(1, counter=2), recompute=True)
    back = pickle.loads(pickle.dumps(layer, protocol=protocol))
    x = np.zeros((2, 3))
    assert back(x).tobytes() == layer(x).tobytes()


def test_pickles_made_before_still_load():
    # Pickles of earlier versions (protocol 2 and up) restore through __setstate__ on
    # a new object (copyreg.__newobj__), with the state (seed, counter).
    rng = gs.Philox.__new__(gs.Philox)
    rng.__setstate__((11, 6))
    assert rng == gs.Philox(11, counter=6)
    ended = gs.Philox.__new__(gs.Philox)
    ended.__setstate__((11, 2**64))
    assert ended.counter == 2**64


@pytest.mark.parametrize("counter", [2.5, 2.0, "3", None])
def test_setstate_refuses_a_counter_that_is_not_an_int(counter):
    rng = gs.Philox.__new__(gs.Philox)
    with pytest.raises(TypeError, match="counter"):
        rng.__setstate__((11, counter))


def test_copies_are_independent():
    rng = gs.Philox(5, counter=1)
    for c in (copy.copy(rng), copy.deepcopy(rng)):
        assert c == rng and c is not rng
        c.reserve(3)
        assert rng.counter == 1
