"""Time a training step with gumbel_softmax.torch, compiled and eager.

    python bench/torch_compile.py [--quick] [--no-save] [--out-dir DIR] [--shapes 64x10,...]
                                  [--clock wall|cpu]

The step (issue 17's goal: compiled not slower than eager): a small model, a linear layer
of 32 inputs to K categories and the sample, then the loss ``sum(y * w)`` and
``.backward()`` (the gradients zeroed first, ``set_to_none``).  Cases, for each shape
(batch x K, float32, tau=0.5):

- ours hard / ours soft: ``gumbel_softmax.torch.gumbel_softmax(z, 0.5, hard=...)``;
- torch hard / torch soft: ``torch.nn.functional.gumbel_softmax`` (the peer);

each eager and under ``torch.compile(model, fullgraph=True)`` (inductor, the default).
Noise from torch's default generator in every case.  The two calls of a pair (eager,
compiled) run alternately, block after block, and the ratio is taken within each block
(as ``bench/ab.py``): the median ratio over the blocks with its interquartile range, and
the median time per step of each.  ``compiled / eager`` < 1: the compiled step is faster.
The report records the load average, since a shared machine distorts the times; on a
busy machine ``--clock cpu`` times the calling thread's CPU time instead of the wall
clock (with ``OMP_NUM_THREADS=1``, so that the thread does all the work), which the time
slices other processes take do not count in.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import gsbench.core as gb

try:
    import gumbel_softmax.torch as gst
    import torch
    import torch.nn.functional as F
except ImportError as exc:
    sys.exit(f"bench/torch_compile.py needs PyTorch: {exc}")

TAU = 0.5
IN_FEATURES = 32
SHAPES = ((64, 10), (256, 1000))
IMPLS = {"ours": gst.gumbel_softmax, "torch": F.gumbel_softmax}


class Model(torch.nn.Module):
    def __init__(self, k, sample, hard):
        super().__init__()
        self.lin = torch.nn.Linear(IN_FEATURES, k)
        self.sample, self.hard = sample, hard

    def forward(self, x, w):
        return (self.sample(self.lin(x), TAU, hard=self.hard) * w).sum()


def step_of(model, x, w):
    def step():
        model.zero_grad(set_to_none=True)
        model(x, w).backward()

    return step


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def paired(a, b, blocks, loops, clock=time.perf_counter):
    """Median and quartiles over blocks of time(b) / time(a), and each median time."""
    ratios, ta, tb = [], [], []
    for _ in range(blocks):
        for fn, acc in ((a, ta), (b, tb)):
            t0 = clock()
            for _ in range(loops):
                fn()
            acc.append((clock() - t0) / loops)
        ratios.append(tb[-1] / ta[-1])
    q = statistics.quantiles(ratios, n=4)
    return statistics.median(ratios), q[0], q[2], statistics.median(ta), statistics.median(tb)


def run(shapes, blocks, progress, clock=time.perf_counter):
    results = []
    for batch, k in shapes:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch, IN_FEATURES, generator=gen)
        w = torch.randn(batch, k, generator=gen)
        for impl, sample in IMPLS.items():
            for hard in (True, False):
                name = f"{impl} {'hard' if hard else 'soft'}"
                progress(f"({batch}, {k}) {name}: compiling")
                model = Model(k, sample, hard)
                eager = step_of(model, x, w)
                compiled = step_of(torch.compile(model, fullgraph=True), x, w)
                for _ in range(5):  # compiles, and warms both up
                    compiled()
                    eager()
                per_step = gb.measure(eager, gb.QUICK).per_call
                loops = max(1, round(0.05 / per_step))
                progress(f"({batch}, {k}) {name}: timing ({blocks} blocks of {loops})")
                ratio, q1, q3, t_eager, t_comp = paired(eager, compiled, blocks, loops, clock)
                results.append(
                    {
                        "shape": [batch, k],
                        "case": name,
                        "eager_s": t_eager,
                        "compiled_s": t_comp,
                        "compiled_over_eager": ratio,
                        "iqr": [q1, q3],
                        "loops": loops,
                        "blocks": blocks,
                    }
                )
                torch._dynamo.reset()
    return results


def _us(s):
    return f"{s * 1e6:.0f} us" if s < 1e-2 else f"{s * 1e3:.1f} ms"


def markdown(report):
    m = report["machine"]
    lines = [
        f"## gumbel_softmax.torch: compiled vs eager training step, {report['date']}",
        "",
        f"{m['cpu_model']}, {m['cores']} cores, target `{m['cpu_target']}`, "
        f"{m['gs_num_threads']} threads for our kernels; torch {report['torch']}, "
        f"{report['torch_threads']} torch threads. Load average before / after: "
        f"{report['load_before']} / {report['load_after']}; clock: {report.get('clock', 'wall')}. "
        f"Step: Linear({IN_FEATURES}, K), "
        f"the sample (tau={TAU}), sum(y * w), backward; compiled: "
        "`torch.compile(model, fullgraph=True)` (inductor). Paired blocks; compiled / "
        "eager < 1: the compiled step is faster.",
        "",
        "| shape | case | eager | compiled | compiled / eager (IQR) |",
        "|---|---|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {tuple(r['shape'])} | {r['case']} | {_us(r['eager_s'])} "
            f"| {_us(r['compiled_s'])} | {r['compiled_over_eager']:.2f} "
            f"({r['iqr'][0]:.2f}-{r['iqr'][1]:.2f}) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks")
    parser.add_argument("--no-save", action="store_true", help="only print the table")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--shapes", default=None, help="e.g. 64x10,256x1000")
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="cpu: the thread's CPU time"
    )
    args = parser.parse_args(argv)
    shapes = SHAPES
    if args.shapes:
        shapes = [tuple(int(n) for n in s.split("x")) for s in args.shapes.split(",")]
    start = time.perf_counter()

    def progress(text):
        print(f"[{time.perf_counter() - start:6.1f} s] {text}", file=sys.stderr, flush=True)

    load_before = [round(v, 2) for v in os.getloadavg()]
    with warnings.catch_warnings():
        # torch's own deprecation warnings from inductor's imports (torch.jit.script_method)
        warnings.simplefilter("ignore", DeprecationWarning)
        results = run(shapes, 7 if args.quick else 21, progress, CLOCKS[args.clock])
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable] + sys.argv),
        "mode": "quick" if args.quick else "full",
        "machine": gb.machine_info(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "clock": args.clock,
        "results": results,
    }
    text = markdown(report)
    print(text)
    if not args.no_save:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{report['date'][:10]}-{report['machine']['cpu_target']}-torch-compile"
        base = args.out_dir / (stem + ("-quick" if args.quick else ""))
        base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
        base.with_suffix(".md").write_text(text + "\n")
        print(f"saved {base.with_suffix('.json')} and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
