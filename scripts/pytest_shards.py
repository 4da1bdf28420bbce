#!/usr/bin/env python
"""Run the test suite as N pytest processes side by side, each on every N-th test.

Usage (from the directory pytest should run in, with the interpreter to test)::

    python scripts/pytest_shards.py [--shards N] [--log-dir DIR] [pytest arguments]

Most of the suite is single-threaded Python, so on a 2-core machine two shards take
about half the time of one run (CI's reruns of the suite: the minimal build, the wheel
and the sanitizer build; the README's test command stays one ``python -m pytest``).

Each shard is ``python -m pytest [arguments]`` with GUMBEL_SOFTMAX_TEST_SHARD="i/N":
tests/conftest.py keeps the i-th, (i + N)-th, ... test of the collection (after -m and
-k).  Every shard also writes its whole collection's node ids to a file, and the run
fails (exit status 2) unless they are identical, so the shards partition the suite
exactly: no test runs twice or not at all.

Shard 0 prints as it runs; every shard's output is kept in ``DIR/shard-i.log`` (default: a
temporary directory), and the others' are printed after all have finished, then one
pytest-style summary line with the outcome counts summed over the shards (the tests
deselected by the sharding itself are left out) and the wall time.  Exit status: 0 when every shard passed; else the first failing shard's status
(a shard that collected no test, status 5, fails only when all did).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

# pytest's last line: "=== 3 passed, 1 skipped in 1.23s (0:00:01) ===" (no "=" with -q)
SUMMARY = re.compile(r"^=* ?(\d+ \w+(?:, \d+ \w+)*) in [0-9.]+s\b")


def summary_counts(log: str) -> dict[str, int]:
    """Outcome counts of pytest's last summary line in ``log`` ({} when there is none)."""
    counts: dict[str, int] = {}
    lines = [m for m in map(SUMMARY.match, log.splitlines()) if m]
    if lines:
        for part in lines[-1].group(1).split(", "):
            num, _, word = part.partition(" ")
            if num.isdigit():
                counts[word] = counts.get(word, 0) + int(num)
    return counts


def tee(pipe, path: str) -> None:
    """Copy ``pipe`` to this process's stdout as it comes, and to the file ``path``."""
    with open(path, "ab") as log:
        for line in iter(pipe.readline, b""):
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
    pipe.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=2, help="number of shards (default 2)")
    parser.add_argument("--log-dir", help="where the shards' logs and collections go")
    args, pytest_args = parser.parse_known_args(argv)
    if args.shards < 1:
        parser.error("--shards must be at least 1")
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="pytest-shards-")
    os.makedirs(log_dir, exist_ok=True)
    start = time.monotonic()
    procs, logs, copier = [], [], None
    try:
        for i in range(args.shards):
            env = dict(os.environ)
            env["GUMBEL_SOFTMAX_TEST_SHARD"] = f"{i}/{args.shards}"
            env["GUMBEL_SOFTMAX_TEST_SHARD_LIST"] = os.path.join(log_dir, f"shard-{i}.json")
            log_path = os.path.join(log_dir, f"shard-{i}.log")
            logs.append(log_path)
            cmd = [sys.executable, "-m", "pytest", *pytest_args]
            with open(log_path, "wb") as out:
                pipe = subprocess.PIPE if i == 0 else out
                procs.append(subprocess.Popen(cmd, env=env, stdout=pipe, stderr=subprocess.STDOUT))
            if i == 0:
                copier = threading.Thread(target=tee, args=(procs[0].stdout, log_path))
                copier.start()
        status = [p.wait() for p in procs]
        if copier is not None:
            copier.join()
    finally:
        for p in procs:
            if p.poll() is None:  # interrupted: stop the other shards too
                p.kill()
                p.wait()
    wall = time.monotonic() - start
    total: dict[str, int] = {}
    for i, log_path in enumerate(logs):
        with open(log_path, errors="replace") as f:
            text = f.read()
        if i > 0:
            print(f"\n===== pytest_shards: output of shard {i}/{args.shards} ({log_path}) =====")
            print(text, end="", flush=True)
        for word, num in summary_counts(text).items():
            total[word] = total.get(word, 0) + num
    collections = []
    for i in range(args.shards):
        path = os.path.join(log_dir, f"shard-{i}.json")
        if os.path.exists(path):
            with open(path) as f:
                collections.append(json.load(f))
    print(f"\npytest_shards: exit status of each shard: {status}")
    if len(collections) == args.shards and any(c != collections[0] for c in collections):
        print("pytest_shards: the shards collected different tests, so they do not partition "
              f"the suite (collections in {log_dir})", file=sys.stderr)
        return 2
    total.pop("deselected", None)  # counts the sharding itself
    parts = ", ".join(f"{n} {w}" for w, n in total.items())
    print(f"===== {parts or 'no summary'} in {wall:.2f}s ({args.shards} shards side by side; "
          f"logs in {log_dir}) =====", flush=True)
    failed = [s for s in status if s not in (0, 5)]  # 5: that shard collected no test
    if failed:
        return failed[0]
    return 5 if all(s == 5 for s in status) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
