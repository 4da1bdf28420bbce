#!/usr/bin/env python
"""Run the test suite as N pytest processes side by side, each on every N-th test.

Usage (from the directory pytest should run in, with the interpreter to test)::

    python scripts/pytest_shards.py [--shards N] [--log-dir DIR] [pytest arguments]

Most of the suite is single-threaded Python, so on a 2-core machine two shards take
about 0.6-0.65x the time of one run when the machine is quiet (0.73-0.92x in a CI run).
CI's reruns of the suite use it (the minimal build, the wheel and the sanitizer build);
the README's test command stays one ``python -m pytest``.

Each shard is ``python -m pytest -p no:cacheprovider [arguments]`` (the shards would
overwrite each other's cache) with GUMBEL_SOFTMAX_TEST_SHARD="i/N": tests/conftest.py
keeps the i-th, (i + N)-th, ... test of the collection (after -m and -k) and writes the
whole collection's node ids to ``DIR/shard-i.json``.  The run fails (exit status 2)
unless every shard that ran wrote one and they are identical, so the shards partition
the suite exactly: no test runs twice or not at all.

Shard 0 prints as it runs; every shard's output is kept in ``DIR/shard-i.log`` (default: a
temporary directory), and the others' are printed after all have finished, then one
pytest-style summary line with the outcome counts summed over the shards (the tests the
sharding itself deselected are not counted as deselected) and the wall time.  Exit
status: 0 when every shard passed; else the first failing shard's status (a shard that
collected no test, status 5, fails only when all did); 2 when the partition check fails.
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
PLURAL = {"warning": "warnings", "error": "errors"}  # pytest writes "1 warning", "2 warnings"


def summary_counts(log: str) -> dict[str, int]:
    """Outcome counts of pytest's last summary line in ``log`` ({} when there is none)."""
    counts: dict[str, int] = {}
    lines = [m for m in map(SUMMARY.match, log.splitlines()) if m]
    if lines:
        for part in lines[-1].group(1).split(", "):
            num, _, word = part.partition(" ")
            word = PLURAL.get(word, word)
            counts[word] = counts.get(word, 0) + int(num)
    return counts


def shard_file(log_dir: str, i: int, ext: str) -> str:
    """Shard i's log (ext "log") or collection (ext "json") in log_dir."""
    return os.path.join(log_dir, f"shard-{i}.{ext}")


def tee(pipe, path: str) -> None:
    """Copy ``pipe`` to this process's stdout as it comes, and to the file ``path``."""
    with open(path, "ab") as log:
        for line in iter(pipe.readline, b""):
            log.write(line)
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
    pipe.close()


def run_shards(n: int, log_dir: str, pytest_args: list[str]) -> list[int]:
    """Start the n shards, wait for all, and return their exit statuses."""
    procs: list[subprocess.Popen] = []
    copier = None
    try:
        for i in range(n):
            env = dict(os.environ)
            env["GUMBEL_SOFTMAX_TEST_SHARD"] = f"{i}/{n}"
            env["GUMBEL_SOFTMAX_TEST_SHARD_LIST"] = shard_file(log_dir, i, "json")
            log_path = shard_file(log_dir, i, "log")
            cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
            with open(log_path, "wb") as out:
                pipe = subprocess.PIPE if i == 0 else out
                procs.append(subprocess.Popen(cmd, env=env, stdout=pipe, stderr=subprocess.STDOUT))
            if i == 0:
                copier = threading.Thread(target=tee, args=(procs[0].stdout, log_path))
                copier.start()
        status = [p.wait() for p in procs]
        if copier is not None:
            copier.join()
        return status
    finally:
        for p in procs:
            if p.poll() is None:  # interrupted: stop the other shards too
                p.kill()
                p.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--log-dir")
    args, pytest_args = parser.parse_known_args(argv)
    n = args.shards
    if n < 1:
        parser.error("--shards must be at least 1")
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="pytest-shards-")
    os.makedirs(log_dir, exist_ok=True)
    lists = [shard_file(log_dir, i, "json") for i in range(n)]
    for path in lists:  # a stale one from an earlier run must not pass the check below
        if os.path.exists(path):
            os.remove(path)
    start = time.monotonic()
    status = run_shards(n, log_dir, pytest_args)
    wall = time.monotonic() - start

    counts = []
    for i in range(n):
        log_path = shard_file(log_dir, i, "log")
        with open(log_path, errors="replace") as f:
            text = f.read()
        if i > 0:
            print(f"\n===== pytest_shards: output of shard {i}/{n} ({log_path}) =====")
            print(text, end="")
        counts.append(summary_counts(text))
    print(f"\npytest_shards: exit status of each shard: {status}", flush=True)

    collections = []
    for path in lists:
        if os.path.exists(path):
            with open(path) as f:
                collections.append(json.load(f))
    if all(s in (0, 5) for s in status) and len(collections) < n:
        print(
            f"pytest_shards: {n - len(collections)} shard(s) wrote no collection to "
            f"{log_dir}: tests/conftest.py's shard hook did not run, so each shard ran "
            "every test",
            file=sys.stderr,
            flush=True,
        )
        return 2
    if any(c != collections[0] for c in collections):
        print(
            f"pytest_shards: the shards collected different tests (collections in "
            f"{log_dir}), so they do not partition the suite",
            file=sys.stderr,
            flush=True,
        )
        return 2
    total: dict[str, int] = {}
    for i, shard in enumerate(counts):
        for word, num in shard.items():
            if word == "deselected":  # each shard's -m / -k ones, and the other shards' tests
                if not collections:
                    continue
                num -= len(collections[0]) - len(range(i, len(collections[0]), n))
                total[word] = max(total.get(word, 0), num)
            else:
                total[word] = total.get(word, 0) + num
    if not total.get("deselected", 1):
        del total["deselected"]
    parts = ", ".join(f"{num} {word}" for word, num in total.items())
    print(
        f"===== {parts or 'no summary'} in {wall:.2f}s ({n} shards side by side; "
        f"logs in {log_dir}) =====",
        flush=True,
    )
    failed = [s for s in status if s not in (0, 5)]  # 5: that shard collected no test
    if failed:
        return failed[0]
    return 5 if all(s == 5 for s in status) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
