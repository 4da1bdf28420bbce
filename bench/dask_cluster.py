"""Gumbel-Softmax on a Dask cluster, on an array larger than a worker's memory limit.

``python bench/dask_cluster.py [--quick] [--out-dir DIR] [--no-save]``

Starts a ``distributed.LocalCluster`` of 2 worker processes (1 thread each, on
127.0.0.1) with a ``memory_limit`` per worker, and makes float32 logits several times
larger than that limit *inside the workers* (a cheap deterministic ``map_blocks``;
nothing is shipped from the client), chunked along the batch dimension.  Then it times,
median of a few repeats, reductions that stream the whole array through the workers:

- ``logits``: generating the logits alone (``x.mean(axis=0)``), the floor of the others;
- ``ours soft``: ``gs.dask.gumbel_softmax(x, 0.5, rng=seed).mean(axis=0)``;
- ``dask.array soft``: the same composed from ``dask.array`` operations,
  ``da.random.default_rng(seed).gumbel`` then ``softmax((x + g) / tau)``;
- ``ours categorical``: ``da.bincount(gs.dask.categorical(x, rng=seed), minlength=K)``;
- ``dask.array categorical``: ``da.bincount(argmax(x + g, axis=-1), minlength=K)``.

It reports elements/s, the ratios, the memory limit, the array size, the peak resident
memory of each worker process (sampled from the client with psutil) and whether a worker
was killed or restarted (the worker processes' ids and the worker count are compared
before and after each measurement).  Results are saved as ``bench/results/<date>-dask.json``
and ``.md`` (``-quick`` for ``--quick``).  The kernels run on one thread per worker
(``gs.set_num_threads(1)`` on each), as does NumPy, so both sides use the same 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path

import gumbel_softmax as gs
import numpy as np
from gsbench.core import load_average, machine_info
from gsbench.report import default_out_dir

TAU = 0.5
K = 1000  # categories (row length)
MIB = 2**20
GIB = 2**30

FULL = dict(memory_limit=1 * GIB, array_bytes=4.5 * GIB, chunk_bytes=64 * MIB, repeats=3)
QUICK = dict(memory_limit=512 * MIB, array_bytes=2 * GIB, chunk_bytes=32 * MIB, repeats=1)


def make_logits(block_info=None):
    """A deterministic float32 block of logits, from its global row indices only."""
    info = block_info[None]
    (r0, r1), (c0, c1) = info["array-location"]
    rows = np.arange(r0, r1, dtype=np.int64)
    row_part = ((rows * 2654435761) % 1024).astype(np.float32) * np.float32(1 / 256)
    col_part = np.arange(c0, c1, dtype=np.float32) * np.float32(-0.004)
    return row_part[:, None] + col_part[None, :]


def composed_soft(x, seed, tau):
    import dask.array as da

    g = da.random.default_rng(seed).gumbel(size=x.shape, chunks=x.chunks).astype(np.float32)
    z = (x + g) / np.float32(tau)
    e = da.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def composed_categorical(x, seed):
    import dask.array as da

    g = da.random.default_rng(seed).gumbel(size=x.shape, chunks=x.chunks).astype(np.float32)
    return (x + g).argmax(axis=-1)


class RssSampler:
    """Peak resident memory of a set of processes, sampled every `interval` seconds."""

    def __init__(self, pids, interval=0.05):
        import psutil

        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.peak = {pid: 0 for pid in pids}
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid, p in self.procs.items():
                try:
                    self.peak[pid] = max(self.peak[pid], p.memory_info().rss)
                except Exception:  # the process is gone: reported by the pid check
                    pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def worker_pids(client):
    return dict(sorted(client.run(os.getpid).items()))


def measure(client, name, make, repeats, pids):
    """Median seconds of `repeats` computations of make(); checks the workers survived."""
    times = []
    with RssSampler(list(pids.values())) as rss:
        for _ in range(repeats):
            expr = make()
            t0 = time.perf_counter()
            future = client.compute(expr)
            value = future.result()
            times.append(time.perf_counter() - t0)
            del future
    after = worker_pids(client)
    survived = after == pids
    print(
        f"  {name}: {', '.join(f'{t:.2f}' for t in times)} s; peak worker RSS "
        f"{', '.join(f'{v / MIB:.0f}' for v in rss.peak.values())} MiB"
        f"{'' if survived else '; WORKERS CHANGED: ' + repr(after)}",
        flush=True,
    )
    return {
        "name": name,
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_worker_rss_bytes": list(rss.peak.values()),
        "workers_survived": survived,
        "result_summary": _summary(value),
    }


def _summary(value):
    v = np.asarray(value)
    return {"shape": list(v.shape), "sum": float(v.sum(dtype=np.float64))}


def run(cfg, quick):
    import dask
    import dask.array as da
    import distributed
    import gumbel_softmax.dask as gsd

    rows_per_chunk = max(1, int(cfg["chunk_bytes"] // (K * 4)))
    n_chunks = max(1, math.ceil(cfg["array_bytes"] / (rows_per_chunk * K * 4)))
    rows = rows_per_chunk * n_chunks
    shape = (rows, K)
    nbytes = rows * K * 4
    print(
        f"logits {shape} float32 = {nbytes / GIB:.2f} GiB in {n_chunks} chunks of "
        f"{rows_per_chunk * K * 4 / MIB:.0f} MiB; memory_limit {cfg['memory_limit'] / MIB:.0f} "
        f"MiB per worker ({nbytes / cfg['memory_limit']:.1f}x)",
        flush=True,
    )

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=cfg["memory_limit"],
    )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        client.run(gs.set_num_threads, 1)
        pids = worker_pids(client)
        info = client.scheduler_info()["workers"]
        limits = sorted(w["memory_limit"] for w in info.values())
        print(
            f"workers: {len(pids)} processes {list(pids.values())}, memory_limit {limits}",
            flush=True,
        )

        def logits():
            return da.map_blocks(
                make_logits,
                chunks=((rows_per_chunk,) * n_chunks, (K,)),
                dtype=np.float32,
                meta=np.empty((0, 0), np.float32),
            )

        cases = [
            ("logits", lambda: logits().mean(axis=0)),
            ("ours soft", lambda: gsd.gumbel_softmax(logits(), TAU, rng=1).mean(axis=0)),
            ("dask.array soft", lambda: composed_soft(logits(), 1, TAU).mean(axis=0)),
            (
                "ours categorical",
                lambda: da.bincount(gsd.categorical(logits(), rng=1), minlength=K),
            ),
            (
                "dask.array categorical",
                lambda: da.bincount(composed_categorical(logits(), 1), minlength=K),
            ),
        ]
        # warm-up: imports and the first tasks on every worker, not timed
        client.compute(
            gsd.gumbel_softmax(logits()[: 2 * rows_per_chunk], TAU, rng=0).sum()
        ).result()
        client.compute(composed_soft(logits()[: 2 * rows_per_chunk], 0, TAU).sum()).result()
        results = [measure(client, name, make, cfg["repeats"], pids) for name, make in cases]
        final_workers = len(client.scheduler_info()["workers"])
    finally:
        client.close()
        cluster.close()
    return {
        "shape": list(shape),
        "dtype": "float32",
        "array_bytes": nbytes,
        "chunk_rows": rows_per_chunk,
        "chunk_bytes": rows_per_chunk * K * 4,
        "n_chunks": n_chunks,
        "memory_limit_bytes": cfg["memory_limit"],
        "worker_memory_limits": limits,
        "n_workers": 2,
        "threads_per_worker": 1,
        "final_worker_count": final_workers,
        "repeats": cfg["repeats"],
        "tau": TAU,
        "dask_version": dask.__version__,
        "distributed_version": distributed.__version__,
        "results": results,
    }


def markdown(report):
    m, r = report["machine"], report["run"]
    by = {x["name"]: x for x in r["results"]}
    elems = r["shape"][0] * r["shape"][1]
    survived = all(x["workers_survived"] for x in r["results"])
    lines = [
        f"## gumbel_softmax.dask on a 2-worker LocalCluster, {report['date']}",
        "",
        f"{m['cpu_model']}, {m['cores']} cores, target `{m['cpu_target']}`; dask "
        f"{r['dask_version']}, distributed {r['distributed_version']}, NumPy "
        f"{m['versions']['numpy']}. Mode: {report['mode']}. 2 worker processes x 1 thread "
        f"(our kernels on 1 thread per worker), memory_limit "
        f"{r['memory_limit_bytes'] / MIB:.0f} MiB per worker; logits {tuple(r['shape'])} "
        f"float32 = {r['array_bytes'] / GIB:.2f} GiB "
        f"({r['array_bytes'] / r['memory_limit_bytes']:.1f}x one worker's limit, "
        f"{r['array_bytes'] / (2 * r['memory_limit_bytes']):.1f}x both), generated in the "
        f"workers in {r['n_chunks']} chunks of {r['chunk_rows']} rows "
        f"({r['chunk_bytes'] / MIB:.0f} MiB). tau = {r['tau']}. Median of {r['repeats']} "
        f"run(s). Load average at start {report['load_average_start']}, at end "
        f"{report['load_average_end']}.",
        "",
        "| workload | median s | M elem/s | time / ours | peak worker RSS, MiB | workers survived |",
        "|---|---|---|---|---|---|",
    ]
    ours_for = {"dask.array soft": "ours soft", "dask.array categorical": "ours categorical"}
    for x in r["results"]:
        ratio = ""
        if x["name"] in ours_for:
            ratio = f"{x['median_s'] / by[ours_for[x['name']]]['median_s']:.2f}x"
        rss = " / ".join(f"{v / MIB:.0f}" for v in x["peak_worker_rss_bytes"])
        lines.append(
            f"| {x['name']} | {x['median_s']:.2f} | {elems / x['median_s'] / 1e6:.0f} "
            f"| {ratio} | {rss} | {'yes' if x['workers_survived'] else 'NO'} |"
        )
    gen = by["logits"]["median_s"]
    lines += [
        "",
        "Each workload ends in a reduction (`mean(axis=0)` of the sample, or `bincount` of the "
        "indices), so it streams the whole array through the workers. 'logits' generates the "
        "logits alone; the sampler's own cost is about its time minus that: "
        f"ours soft {by['ours soft']['median_s'] - gen:.2f} s, dask.array soft "
        f"{by['dask.array soft']['median_s'] - gen:.2f} s "
        f"({(by['dask.array soft']['median_s'] - gen) / max(by['ours soft']['median_s'] - gen, 1e-9):.1f}x).",
        f"Workers: {r['final_worker_count']} at the end, the same processes throughout: "
        f"{'yes, none killed or restarted' if survived else 'NO'}.",
    ]
    return "\n".join(lines)


def save(report, md, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report['date'][:10]}-dask" + ("-quick" if report["mode"] == "quick" else "")
    base = out_dir / stem
    base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    base.with_suffix(".md").write_text(md + "\n")
    return [f"saved {base.with_suffix('.json')}", f"saved {base.with_suffix('.md')}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="512 MiB limit, 2 GiB array, one run each (< 60 s)"
    )
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable] + sys.argv),
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "load_average_start": load_average(),
    }
    t0 = time.perf_counter()
    report["run"] = run(cfg, args.quick)
    report["load_average_end"] = load_average()
    report["wall_s"] = time.perf_counter() - t0
    md = markdown(report)
    print()
    print(md)
    if not args.no_save:
        out_dir = args.out_dir or default_out_dir(Path.cwd())
        for note in save(report, md, out_dir):
            print(note)
    ok = all(x["workers_survived"] for x in report["run"]["results"])
    return 0 if ok and report["run"]["final_worker_count"] == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
