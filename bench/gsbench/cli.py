"""The command line: ``python bench/run.py [--quick] [--suite ...] [--dtype ...]
[--shapes ...]``."""

from __future__ import annotations

import argparse
import datetime
import gc
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

from .cases_extra import EXTRA_CASES, EXTRA_NOTE, EXTRA_SHAPES, SECTIONS
from .cases_main import CASES, OUT_NOTE
from .core import (
    DEFAULT_SHAPES,
    FULL,
    QUICK,
    QUICK_SKIPPED_SHAPES,
    TAU,
    Problem,
    load_average,
    machine_info,
    peer_threads,
    warm_up,
)
from .goals import goal_rows
from .report import default_out_dir, report_markdown, save
from .runner import run_problem

# 2: the NumPy rows are the in-place float32 compositions, the goals of issue 15 are in
# the report ("goals"), and the machine has its SIMD flags and every peer's threads
BENCH_VERSION = 2

# ---------------------------------------------------------------------------------------
# Command line


def parse_shapes(text: str) -> list:
    """'4096x1000,64x10,1000x1000:0' -> [((4096, 1000), -1), ((64, 10), -1), ((1000, 1000), 0)]."""
    shapes = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        dims, _, axis = item.partition(":")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
            axis = int(axis) if axis else -1
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad shape {item!r}: use e.g. 4096x1000 or 1000x1000:0 (axis after the colon)"
            ) from None
        if any(d <= 0 for d in shape) or not -len(shape) <= axis < len(shape):
            raise argparse.ArgumentTypeError(f"bad shape or axis {item!r}")
        shapes.append((shape, axis))
    if not shapes:
        raise argparse.ArgumentTypeError("no shape given")
    return shapes


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Time gumbel_softmax against NumPy, PyTorch and JAX compositions "
        "(those installed) and np.copyto; print a markdown table and save JSON + markdown "
        "(+ PNG with matplotlib). Set GUMBEL_SOFTMAX_TARGET to pick the SIMD target.",
    )
    parser.add_argument(
        "--suite",
        choices=["all", *SECTIONS],
        default="all",
        help="'main': gumbel_softmax against the peers; 'extra': categorical, "
        "top_k, relaxed_top_k, log_gumbel_softmax, concrete_log_prob, relaxed_bernoulli, "
        "mask=, per-row tau, float16/bfloat16, recomputing backward; "
        "'all' (default): both",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer repeats, skip {sorted(QUICK_SKIPPED_SHAPES)} (~2 min, "
        "+ ~1 min for the extra section)",
    )
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="float32")
    parser.add_argument(
        "--shapes",
        type=parse_shapes,
        default=None,
        help="comma-separated, e.g. 4096x1000,64x10,1000x1000:0 "
        "(':0' = softmax over axis 0; default: the built-in lists); "
        "replaces the shapes of every section run",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to save results (default: bench/results when run from "
        "the repository root, else the current directory)",
    )
    parser.add_argument("--no-save", action="store_true", help="only print the table")
    return parser.parse_args(argv)


def _progress(enabled: bool) -> Callable[[str], None]:
    tty = sys.stderr.isatty()
    start = time.perf_counter()

    def show(text: str) -> None:
        if not enabled:
            return
        line = f"[{time.perf_counter() - start:6.1f} s] {text}"
        if tty:
            print(f"\r\033[K{line[:110]}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    return show


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quick = args.quick
    cfg = QUICK if quick else FULL
    suites = list(SECTIONS) if args.suite == "all" else [args.suite]
    shapes = args.shapes or [
        (s, a) for s, a in DEFAULT_SHAPES if not (quick and s in QUICK_SKIPPED_SHAPES)
    ]
    extra_shapes = args.shapes or list(EXTRA_SHAPES)
    dtypes = ["float32", "float64"] if args.dtype == "both" else [args.dtype]
    report = {
        "bench_version": BENCH_VERSION,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable] + sys.argv),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "mode": "quick" if quick else "full",
        "suites": suites,
        "config": {**vars(cfg), "tau": TAU},
        "machine": machine_info(),
        "load_average_start": load_average(),
        "notes": OUT_NOTE,
        "extra_notes": EXTRA_NOTE,
        "results": [],
        "extra_results": [],
    }
    progress = _progress(True)
    start = time.perf_counter()
    warm_up()
    plan = [
        ("main", CASES, shapes, report["results"]),
        ("extra", EXTRA_CASES, extra_shapes, report["extra_results"]),
    ]
    with warnings.catch_warnings():
        # the in-place NumPy rows' log(0) hole (a uniform draw of 0): known, documented
        warnings.filterwarnings("ignore", "divide by zero encountered in log", RuntimeWarning)
        for section, cases, section_shapes, results in plan:
            if section not in suites:
                continue
            for dtype in dtypes:
                for shape, axis in section_shapes:
                    problem = Problem.make(shape, axis, dtype)
                    results.append(run_problem(problem, cfg, progress, cases, section))
                    del problem
                    gc.collect()
    report["elapsed_s"] = time.perf_counter() - start
    report["load_average_end"] = load_average()
    report["machine"]["peer_threads"] = peer_threads()
    report["goals"] = goal_rows(report)
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    markdown = report_markdown(report)
    print(markdown)
    count = len(report["results"]) + len(report["extra_results"])
    print(f"\n{count} problem(s) in {report['elapsed_s']:.0f} s")
    if not args.no_save:
        out_dir = args.out_dir or default_out_dir(Path.cwd())
        for note in save(report, markdown, out_dir):
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
