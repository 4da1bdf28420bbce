"""Time from SIGINT to KeyboardInterrupt in a long call (docs/reliability.md, "Processes, threads
and fork"): a child process draws `categorical` over 2**32 broadcast elements (seconds
of work), the parent sends SIGINT 0.3-0.75 s into the call, and the child reports when
the KeyboardInterrupt reached Python (CLOCK_MONOTONIC is shared by the processes).

    python bench/interrupt_latency.py [--runs 10]
    python bench/interrupt_latency.py --busy-thread   # what the polling costs
    python bench/interrupt_latency.py --case relaxed_top_k_backward_one_long_row
    python bench/interrupt_latency.py --case all --runs 3

--case runs the child of a case of tests/test_interrupt.py (its CALLS; "all": each in
turn) instead of the categorical call above.

--busy-thread times a (8192, 4096) float32 call alone and next to a Python thread that
spins (holding the GIL between switches): each poll takes the GIL, so the calling thread
may wait up to Python's switch interval (5 ms) per 50 ms.  It uses the public API only,
so it also runs against another build (PYTHONPATH=DIR) for a comparison.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import sys, time
import numpy as np
import gumbel_softmax as gs
gs.set_num_threads({threads})
gs.gumbel_softmax(np.zeros((2, 3)), rng=0)  # imports done before the clock starts
print("start", time.monotonic(), flush=True)
try:
    gs.categorical(np.broadcast_to(np.zeros(2**16, np.float32), (2**16, 2**16)), rng=1)
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    sys.exit(0)
print("finished", time.monotonic(), flush=True)
"""


def latencies(threads: int, runs: int, child=CHILD.format) -> list[float]:
    """Milliseconds from SIGINT to KeyboardInterrupt, one per run (child(threads=n): the
    code of the child process)."""
    out = []
    for i in range(runs):
        proc = subprocess.Popen(
            [sys.executable, "-c", child(threads=threads)], stdout=subprocess.PIPE, text=True
        )
        word, started = proc.stdout.readline().split()
        time.sleep(max(0.0, float(started) + 0.3 + 0.05 * i - time.monotonic()))
        sent = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        word, when = proc.communicate(timeout=60)[0].split()
        if word != "interrupted":
            raise SystemExit(f"the call finished before the signal ({threads} threads)")
        out.append((float(when) - sent) * 1e3)
    return out


def busy_thread(reps: int = 12) -> None:
    import threading

    import gumbel_softmax as gs
    import numpy as np

    x = np.zeros((8192, 4096), np.float32)
    out = np.empty_like(x)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    for busy in (False, True):
        t = threading.Thread(target=spin) if busy else None
        if t:
            t.start()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            gs.gumbel_softmax(x, 0.5, rng=1, out=out)
            times.append(time.perf_counter() - t0)
        if t:
            stop.set()
            t.join()
        label = "next to a spinning Python thread" if busy else "alone"
        print(
            f"(8192, 4096) soft call {label}: median {statistics.median(times) * 1e3:.1f} ms "
            f"({gs.__file__})"
        )


def case_children(case: str) -> dict:
    """The children of tests/test_interrupt.py's cases (one, or "all"), by name, as
    functions of threads=n."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_interrupt

    names = sorted(test_interrupt.CALLS) if case == "all" else [case]
    for name in names:
        if name not in test_interrupt.CALLS:
            raise SystemExit(f"--case: {name!r} is not one of {sorted(test_interrupt.CALLS)}")
    return {
        name: functools.partial(test_interrupt.CHILD.format, call=test_interrupt.CALLS[name])
        for name in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--busy-thread", action="store_true")
    parser.add_argument("--case", help='a case of tests/test_interrupt.py, or "all"')
    args = parser.parse_args()
    if args.busy_thread:
        busy_thread()
        return
    children = case_children(args.case) if args.case else {"categorical (2**32)": CHILD.format}
    for name, child in children.items():
        for threads in (1, 2):
            lat = latencies(threads, args.runs, child)
            print(
                f"{name}, {threads} thread(s), {args.runs} runs: median "
                f"{statistics.median(lat):.0f} ms, min {min(lat):.0f} ms, max {max(lat):.0f} ms"
            )


if __name__ == "__main__":
    main()
