"""Our calls interleaved with NumPy matrix products, as in a NumPy training step.

A training loop alternates BLAS calls (``x @ W``; NumPy's OpenBLAS runs them on a pool
of its own threads) with our kernels (an OpenMP team).  After a parallel call each pool
keeps its idle workers spinning for a while before they sleep; on a machine with few
cores the spinning workers of one pool hold the cores that the other pool's next call
needs, and every hand-over waits for the scheduler.  This script measures that cost:
per setting, in a fresh interpreter each (the OpenMP runtime reads its environment when
it loads), the median time of our call alone, of the product alone and of the pair.

    python bench/interleave.py                 # prints a markdown table
    python bench/interleave.py --out bench/results/interleave.md

Settings: the package's default (libgomp's spin shortened to 1000 iterations while
``_core`` loads, see docs/user-guide.md "Threads and SIMD targets"); libgomp's own default
(``GOMP_SPINCOUNT=300000``, what the package did before); ``OMP_WAIT_POLICY=passive``;
our calls on one thread (``gs.set_num_threads(1)``); BLAS on one thread
(``threadpoolctl.threadpool_limits(1, "blas")``, when threadpoolctl is installed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

SETTINGS = [
    ("package default (GOMP_SPINCOUNT=1000 at load)", {}, ""),
    ("libgomp default (GOMP_SPINCOUNT=300000)", {"GOMP_SPINCOUNT": "300000"}, ""),
    ("OMP_WAIT_POLICY=passive", {"OMP_WAIT_POLICY": "passive"}, ""),
    ("ours on 1 thread", {}, "gs.set_num_threads(1)"),
    ("BLAS on 1 thread (threadpoolctl)", {}, "blas1"),
]
# (rows, K) of our call: the VAE example's latent (100 images x 20 variables, K = 10),
# ten times that, and a larger layer.
SHAPES = [(2000, 10), (20000, 10), (4096, 1000)]

CHILD = r"""
import json, sys, time
import numpy as np
import gumbel_softmax as gs
setup, shapes, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
limits = None
if setup == "blas1":
    from threadpoolctl import threadpool_limits
    limits = threadpool_limits(1, "blas")
elif setup:
    exec(setup)
a = np.random.default_rng(0).standard_normal((100, 256)).astype(np.float32)
w = np.random.default_rng(1).standard_normal((256, 200)).astype(np.float32)
rng = gs.Philox(0)

def median_us(fn, loops):
    for _ in range(loops):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter() - t0) / loops)
    return float(np.median(times)) * 1e6

out = {"threads": gs.get_num_threads()}
cases = []
for rows, k in shapes:
    x = np.random.default_rng(2).standard_normal((rows, k)).astype(np.float32)
    y = np.empty_like(x)
    cases.append((f"{rows}x{k}", lambda x=x, y=y: gs.gumbel_softmax(x, 0.5, rng=rng, out=y),
                  max(5, int(2e6 // x.size))))
# Our calls alone first, before any product has started BLAS's threads (which keep
# spinning for a while after each product), then the product alone, then the pairs.
for name, ours, loops in cases:
    out[name] = {"alone": median_us(ours, loops)}
out["matmul"] = median_us(lambda: a @ w, 50)
for name, ours, loops in cases:
    def pair(ours=ours):
        a @ w
        ours()
    out[name]["pair"] = median_us(pair, loops)
print(json.dumps(out))
"""


def run_setting(env_extra, setup, shapes, repeats):
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, setup, json.dumps(shapes), str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1]
    return json.loads(proc.stdout), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="blocks per median (9)")
    parser.add_argument("--out", help="also write the markdown table (and .json) here")
    args = parser.parse_args(argv)
    import gumbel_softmax as gs
    import numpy as np

    head = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"NumPy {np.__version__}, gumbel_softmax {gs.__version__} ({gs.cpu_target()}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    lines = [
        f"`python bench/interleave.py`: {head}. Median microseconds per call of "
        "`gs.gumbel_softmax(x, 0.5, out=y)` alone, and of the pair "
        "`a @ w; gs.gumbel_softmax(...)` with `a @ w` a (100, 256) x (256, 200) "
        "float32 product; pair / (alone + product) in brackets.",
        "",
    ]
    cols = [f"{r}x{k}" for r, k in SHAPES]
    lines.append(
        "| setting | product alone | " + " | ".join(f"{c}: alone | {c}: pair" for c in cols) + " |"
    )
    lines.append("|---|---|" + "---|---|" * len(cols))
    results = {}
    for name, env_extra, setup in SETTINGS:
        print(f"  {name} ...", file=sys.stderr, flush=True)
        res, err = run_setting(env_extra, setup, SHAPES, args.repeats)
        results[name] = res or {"error": err}
        if res is None:
            lines.append(f"| {name} | skipped: {err} |" + " |" * (2 * len(cols)))
            continue
        cells = [f"{res['matmul']:.0f}"]
        for c in cols:
            alone, pair = res[c]["alone"], res[c]["pair"]
            cells += [f"{alone:.0f}", f"{pair:.0f} ({pair / (alone + res['matmul']):.1f}x)"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump({"machine": head, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
