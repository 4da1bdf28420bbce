"""The kernels' bits do not depend on the calling thread's floating-point environment.

Flush-to-zero and denormals-are-zero (set by ``torch.set_flush_denormal(True)``, by a
library built with ``-ffast-math``, by XLA on its threads) would flush subnormal results
to zero, and OpenMP's worker threads keep the environment of the thread that created
them, so a row's bits would depend on which thread ran it.  Each check runs in a child
process, so that the thread pool is created in the state under test, and compares with
a child that never sets the flags.  The inputs give subnormal results (checked), so a
flushing kernel fails.
"""

import json
import subprocess
import sys

import pytest
from gumbel_softmax import _core

CHILD = """
import hashlib, json, sys
import numpy as np
import gumbel_softmax as gs
from gumbel_softmax import _core

gs.set_num_threads(2)
x32 = np.linspace(0, -120, 1000, dtype=np.float32)[None, :].repeat(64, 0)
x64 = np.linspace(0, -800, 1000)[None, :].repeat(64, 0)
long_row = np.linspace(0, -120, 200000, dtype=np.float32)[None, :]

def results():
    out = {}
    for name, x in (("f32", x32), ("f64", x64), ("long", long_row)):
        for tau in (1.0, 0.5):
            y = gs.gumbel_softmax(x, tau, rng=gs.Philox(5))
            out[f"{name}/soft/{tau}"] = y
            out[f"{name}/backward/{tau}"] = gs.gumbel_softmax_backward(x * 1e-30, y, tau)
    out["f32/log"] = gs.log_gumbel_softmax(x32, 0.5, rng=gs.Philox(6))
    return out

def summary(res):
    tiny = {k: int(((v != 0) & (np.abs(v) < np.finfo(v.dtype).tiny)).sum()) for k, v in res.items()}
    digest = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in res.items()}
    return {"subnormals": tiny, "digest": digest}

steps = sys.argv[1].split(",")
report = []
for step in steps:
    if step in ("on", "off"):
        _core._set_flush_denormal(step == "on")
    else:
        report.append(summary(results()))
print(json.dumps(report))
"""


def _child(steps):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, steps], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(
    not _core._set_flush_denormal(False), reason="no MXCSR: the environment is left alone"
)
def test_flush_to_zero_in_the_caller_or_the_pool_changes_no_bit():
    (ref,) = _child("run")
    # the inputs give subnormal results: a kernel that flushed them would differ
    assert ref["subnormals"]["f32/soft/1.0"] > 1000
    assert ref["subnormals"]["f64/soft/0.5"] > 1000
    assert ref["subnormals"]["long/soft/1.0"] > 1000
    assert ref["subnormals"]["f32/backward/1.0"] > 0
    # the pool made while the flags are on, then calls with them on and off; and the
    # flags set only after the pool exists
    for report in (_child("on,run,off,run"), _child("run,on,run,off,run")):
        for got in report:
            assert got["digest"] == ref["digest"]
