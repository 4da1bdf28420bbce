"""Instructions per training step of bench/torch_compile.py's model, for callgrind.

    GUMBEL_SOFTMAX_TARGET=avx2 OMP_NUM_THREADS=1 valgrind --tool=callgrind \\
        --collect-atstart=no --toggle-collect=starmap_next \\
        python bench/torch_compile_callgrind.py compiled ours hard [--steps 20] [--shape 64x10]

Builds the model (``ours``: ``gumbel_softmax.torch.gumbel_softmax``; ``torch``:
``F.gumbel_softmax``; ``none``: no sampler, the floor of the rest of the step), eager or
under ``torch.compile(fullgraph=True)``, warms it up (compiles), then runs ``--steps``
steps inside ``itertools.starmap``, so that callgrind, told to collect only inside
``starmap_next``, counts those steps alone: "Collected" / steps is the instructions per
step. Machine-independent, and unaffected by other work on a shared machine (callgrind
stops at AVX-512: pin the avx2 target).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.simplefilter("ignore", DeprecationWarning)

import torch  # noqa: E402
import torch_compile as tc  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["eager", "compiled"])
    p.add_argument("impl", choices=["ours", "torch", "none"])
    p.add_argument("kind", choices=["hard", "soft"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--shape", default="64x10")
    args = p.parse_args(argv)
    batch, k = (int(n) for n in args.shape.split("x"))
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, tc.IN_FEATURES, generator=gen)
    w = torch.randn(batch, k, generator=gen)
    sample = tc.IMPLS.get(args.impl, lambda z, tau, hard: z)
    model = tc.Model(k, sample, args.kind == "hard")
    if args.mode == "compiled":
        model = torch.compile(model, fullgraph=True)
    step = tc.step_of(model, x, w)
    for _ in range(5):  # compiles, warms up
        step()
    list(itertools.starmap(step, [()] * args.steps))  # the steps callgrind counts
    print(f"{args.mode} {args.impl} {args.kind} {args.shape}: {args.steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
