"""Instruction counts of the kernels: the machine-independent check of issue 15's budgets.

Runs each case under ``valgrind --tool=callgrind`` on the avx2 target (valgrind stops at
the first AVX-512 instruction), one thread, and reports the instructions executed inside
the kernel (the inclusive count of the target's ``gumbel_softmax::avx2::run`` entry, all
calls of the case summed, less the warm-up call's) per element and per call.  These
counts repeat to within a few hundred instructions per call (the kernels poll for
Ctrl-C by the clock).  The whole process's count is not reported: between two runs it
varies by tens of thousands of instructions per call, more than a small call costs, so
the Python layer's cost is timed instead (``bench/ab.py``, ``bench/run.py``).

    python bench/instructions.py                     # every case, (64, 1000)
    python bench/instructions.py --cases soft0.5,soft1 --shape 64x10 --calls 20

Needs valgrind (``callgrind_annotate`` comes with it) and the installed package.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

# name: (statement, what it runs); x: the logits, out: a result array, g, y: a gradient
# and a soft sample of x's shape, h: a hard one, rng: a Philox
CASES = {
    "soft0.5": "gs.gumbel_softmax(x, 0.5, rng=rng, out=out)",
    "soft1": "gs.gumbel_softmax(x, 1.0, rng=rng, out=out)",
    "hard0.5": "gs.gumbel_softmax(x, 0.5, hard=True, rng=rng, out=out)",
    "log0.5": "gs.log_gumbel_softmax(x, 0.5, rng=rng, out=out)",
    "categorical": "gs.categorical(x, rng=rng)",
    "backward": "gs.gumbel_softmax_backward(g, y, 0.5, out=out)",
    "reinmax1.5": "gs.reinmax_backward(g, x, h, 1.5, out=out)",
    "reinmax1": "gs.reinmax_backward(g, x, h, 1.0, out=out)",
    "soft0.5-alloc": "gs.gumbel_softmax(x, 0.5, rng=rng)",
}

_DRIVER = """
import gc, sys, numpy as np, gumbel_softmax as gs
gc.disable()  # as timeit does: a collection would land in one run and not the other
shape, calls = tuple(int(s) for s in sys.argv[1].split("x")), int(sys.argv[2])
r = np.random.default_rng(0)
x = r.standard_normal(shape).astype(np.float32)
g = r.standard_normal(shape).astype(np.float32)
y = gs.gumbel_softmax(x, 0.5, rng=gs.Philox(9))
h = gs.gumbel_softmax(x, 0.5, hard=True, rng=gs.Philox(9))
out = np.empty_like(x)
rng = gs.Philox(1)
f = lambda: {stmt}
f()  # warm-up: first-call set-up stays out of the difference
for _ in range(calls):
    f()
"""

_KERNEL = re.compile(r"^\s*([\d,]+) .*gumbel_softmax::avx2::run\(")


def _callgrind(stmt, shape, calls, outfile):
    """The text of callgrind_annotate --inclusive for the run."""
    env = dict(
        os.environ, GUMBEL_SOFTMAX_TARGET="avx2", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"
    )
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={outfile}",
        sys.executable,
        "-c",
        _DRIVER.format(stmt=stmt),
        shape,
        str(calls),
    ]
    subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", outfile],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _kernel(ann):
    """The inclusive count of the kernel entries (every avx2::run overload, summed:
    they do not call each other)."""
    return sum(int(m.group(1).replace(",", "")) for m in map(_KERNEL.match, ann.splitlines()) if m)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    p.add_argument("--shape", default="64x1000", help="ROWSxCOLS of the float32 logits")
    p.add_argument("--calls", type=int, default=10, help="calls counted (after one warm-up)")
    a = p.parse_args(argv)
    rows, cols = (int(s) for s in a.shape.split("x"))
    n = rows * cols
    print(f"callgrind, avx2 target, 1 thread, float32 ({rows}, {cols}), {a.calls} calls")
    print("| case | kernel instr/elem | kernel instr/call |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.cases.split(","):
            stmt = CASES[name]
            ann0 = _callgrind(stmt, a.shape, 0, os.path.join(tmp, f"{name}.0"))
            ann1 = _callgrind(stmt, a.shape, a.calls, os.path.join(tmp, f"{name}.1"))
            k = (_kernel(ann1) - _kernel(ann0)) / a.calls
            print(f"| {name} | {k / n:.2f} | {k:,.0f} |")


if __name__ == "__main__":
    main()
