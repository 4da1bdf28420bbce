"""Calls with nothing to compute: no rows, or rows of no element (both legal: an empty
NumPy array of shape (2**40, 0) or (0, 2**28) costs no memory).  The kernels return at
once (rows/schedule.hpp, and the estimators' own drivers): such a call must neither loop
over its empty rows nor allocate scratch sized by rows that do not exist.  Each case
runs in a fresh interpreter whose peak RSS is compared with the same interpreter's
before the calls, with a generous time bound that only a hang exceeds (the same calls
took hours, 2**40 empty rows at a few ns each, and gigabytes before the fix)."""

from __future__ import annotations

import json

import pytest
from helpers import run_python

# statements on e = np.empty((0, 2**27), float32) (no rows, long rows), z = an empty
# array of 2**40 rows of length 0, i0 = no indices; each returns an empty result
ZERO_ROWS = {
    "gumbel_softmax": "gs.gumbel_softmax(e, rng=1)",
    "log_gumbel_softmax": "gs.log_gumbel_softmax(e, rng=1)",
    "backward_recompute": "gs.gumbel_softmax_backward(e, logits=e, tau=0.5, rng=1)",
    "concrete_log_prob": "gs.concrete_log_prob(e, e, 0.5)",
    "conditional_gumbel": "gs.conditional_gumbel(e, i0, rng=1)",
    "reinmax_backward": "gs.reinmax_backward(e, e, e, 1.5)",
    "gumbel_rao_backward": "gs.gumbel_rao_backward(e, e, e, 0.5, rng=1)",
    "relaxed_top_k": "gs.relaxed_top_k(e, 3, 0.5, rng=1)",
}
EMPTY_ROWS = {
    "gumbel": "gs.gumbel((2**40, 0), rng=r)",
    "logistic": "gs.logistic((2**40, 0), rng=r)",
    "gumbel_float16": "gs.gumbel((2**40, 0), dtype=np.float16, rng=r)",
    "relaxed_bernoulli": "gs.relaxed_bernoulli(z, 0.5, rng=r)",
    "backward_stored": "gs.gumbel_softmax_backward(z, z, 0.5)",
    "relaxed_bernoulli_backward": "gs.relaxed_bernoulli_backward(z, z, 0.5)",
}

_CODE = """
import json, resource, sys
import numpy as np, gumbel_softmax as gs
e = np.empty((0, 2**27), np.float32)
z = np.empty((2**40, 0), np.float32)
i0 = np.zeros((0,), np.int64)
r = gs.Philox(1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = eval(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"shape": list(res.shape), "size": int(res.size),
                  "grew_kib": after - before, "counter": r.counter}))
"""


def _run(stmt):
    proc = run_python(_CODE, stmt, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ZERO_ROWS)
def test_no_rows_allocates_nothing_per_row_length(name):
    got = _run(ZERO_ROWS[name])
    assert got["size"] == 0 and got["shape"][0] == 0
    assert got["grew_kib"] < 64 * 1024, got  # scratch of one 2**27 row: 512 MiB or more


@pytest.mark.parametrize("name", EMPTY_ROWS)
def test_empty_rows_return_at_once_and_take_their_rows(name):
    got = _run(EMPTY_ROWS[name])
    assert got["shape"] == [2**40, 0] and got["size"] == 0
    if "rng=r" in EMPTY_ROWS[name]:  # the documented advance: one stream row per row
        assert got["counter"] == 2**40
