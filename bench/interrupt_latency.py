"""Time from SIGINT to KeyboardInterrupt in a long call (docs/reliability.md, "Processes, threads
and fork"): a child process runs a case of tests/test_interrupt.py (its CHILD and CALLS; by
default `categorical` over 2**32 broadcast elements, seconds of work), the parent sends
SIGINT 0.3-0.75 s into the call, and the child reports when the KeyboardInterrupt reached
Python (CLOCK_MONOTONIC is shared by the processes; tests/test_interrupt.py's
signal_latency).

    python bench/interrupt_latency.py [--runs 10]
    python bench/interrupt_latency.py --busy-thread   # what the polling costs
    python bench/interrupt_latency.py --case relaxed_top_k_backward_one_long_row
    python bench/interrupt_latency.py --case all --runs 3

--busy-thread times a (8192, 4096) float32 call alone and next to a Python thread that
spins (holding the GIL between switches): each poll takes the GIL, so the calling thread
may wait up to Python's switch interval (5 ms) per 50 ms.  It uses the public API only,
so it also runs against another build (PYTHONPATH=DIR) for a comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_interrupt  # noqa: E402  (tests/, put on the path above)


def latencies(threads: int, runs: int, case: str) -> list[float]:
    """Milliseconds from SIGINT to KeyboardInterrupt in the child of a case of
    tests/test_interrupt.py, one per run (the signal 0.3, 0.35, ... s into the call)."""
    code = test_interrupt.CHILD.format(threads=threads, call=test_interrupt.CALLS[case])
    return [test_interrupt.signal_latency(code, 0.3 + 0.05 * i) * 1e3 for i in range(runs)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--busy-thread", action="store_true")
    parser.add_argument(
        "--case", default="categorical", help='a case of tests/test_interrupt.py, or "all"'
    )
    args = parser.parse_args()
    if args.busy_thread:
        busy_thread()
        return
    names = sorted(test_interrupt.CALLS) if args.case == "all" else [args.case]
    for name in names:
        if name not in test_interrupt.CALLS:
            raise SystemExit(f"--case: {name!r} is not one of {sorted(test_interrupt.CALLS)}")
    for name in names:
        for threads in (1, 2):
            lat = latencies(threads, args.runs, name)
            print(
                f"{name}, {threads} thread(s), {args.runs} runs: median "
                f"{statistics.median(lat):.0f} ms, min {min(lat):.0f} ms, max {max(lat):.0f} ms"
            )


if __name__ == "__main__":
    main()
