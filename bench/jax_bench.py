"""Time gumbel_softmax.jax against the jitted pure-JAX composition.

    python bench/jax_bench.py [--quick] [--no-save] [--out-dir DIR]

For each shape (float32, tau=0.5, softmax over the last axis) it times:

- ours jit forward: ``gumbel_softmax.jax.gumbel_softmax`` in a jitted step that also
  splits the key (the NumPy kernels run in a ``jax.pure_callback``);
- pure JAX jit forward: ``jax.nn.softmax((x + jax.random.gumbel(sub, x.shape)) / tau)``
  in a jitted step that splits the key the same way (as ``gsbench``, the suite of run.py);
- forward + grad of ``sum(w * y)`` for both: ``jax.value_and_grad`` inside the jitted
  step (ours: forward callback, then ``gs.gumbel_softmax_backward`` in a callback);
- the NumPy API for the same shape as a reference: ``gs.gumbel_softmax(x, tau,
  rng=philox)`` and, for the gradient row, the same with ``return_soft=True``, then
  ``np.vdot(w, y)`` and ``gs.gumbel_softmax_backward(w, y_soft, tau)``.

Every JAX call waits with ``block_until_ready``.  Times are medians over repeats
(``gsbench.core.measure``).  Prints a markdown table and saves JSON and the
table under bench/results/ as ``<date>-<cpu target>-jax[-quick].json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

import gsbench.core as gb
import gumbel_softmax as gs
import numpy as np

try:
    import gumbel_softmax.jax as gsj
    import jax
    import jax.numpy as jnp
except ImportError as exc:
    sys.exit(f"bench/jax_bench.py needs JAX: {exc}")

TAU = 0.5
SHAPES = ((64, 10), (256, 1000), (4096, 1000))
DTYPE = np.float32
OPS = ("forward", "forward+grad")


# ---------------------------------------------------------------------------------------
# The timed calls: each maker returns a no-argument function doing one call, waited for.


def _jax_step(sample, grad):
    """A jitted step that splits the key and draws (grad=False) or returns the value
    and gradient of sum(w * y) (grad=True); the next key is carried in state."""

    if grad:

        def body(x, w, key):
            key, sub = jax.random.split(key)
            value, g = jax.value_and_grad(lambda x: jnp.sum(w * sample(sub, x)))(x)
            return (value, g), key
    else:

        def body(x, w, key):
            key, sub = jax.random.split(key)
            return sample(sub, x), key

    step = jax.jit(body)

    def make(x, w):
        xj, wj = jax.device_put(x), jax.device_put(w)
        state = [jax.random.PRNGKey(1)]

        def call():
            out, state[0] = step(xj, wj, state[0])
            jax.block_until_ready(out)

        return call

    return make


def _ours_sample(key, x):
    return gsj.gumbel_softmax(key, x, TAU)


def _pure_jax_sample(key, x):
    g = jax.random.gumbel(key, x.shape, x.dtype)
    return jax.nn.softmax((x + g) / TAU, axis=-1)


def _numpy_forward(x, w):
    rng = gs.Philox(1)
    return lambda: gs.gumbel_softmax(x, TAU, rng=rng)


def _numpy_grad(x, w):
    rng = gs.Philox(1)

    def call():
        y, y_soft = gs.gumbel_softmax(x, TAU, rng=rng, return_soft=True)
        np.vdot(w, y)
        gs.gumbel_softmax_backward(w, y_soft, TAU)

    return call


CASES = {  # (implementation, op) -> maker(x, w)
    ("ours", "forward"): _jax_step(_ours_sample, grad=False),
    ("jax", "forward"): _jax_step(_pure_jax_sample, grad=False),
    ("numpy", "forward"): _numpy_forward,
    ("ours", "forward+grad"): _jax_step(_ours_sample, grad=True),
    ("jax", "forward+grad"): _jax_step(_pure_jax_sample, grad=True),
    ("numpy", "forward+grad"): _numpy_grad,
}
NAMES = {"ours": "gs.jax (jit)", "jax": "pure JAX (jit)", "numpy": "gs NumPy API"}

# vmap over per-example keys: VMAP_BATCH keys, (VMAP_K,) logits each, against one batched
# call on the (VMAP_BATCH, VMAP_K) array with one key (the goal: within 2x).
VMAP_BATCH, VMAP_K = 256, 10


def _vmap_step(sample, per_example):
    """A jitted step drawing the batch: vmap over VMAP_BATCH per-example keys (per_example;
    the keys are an input, split once outside, as a data pipeline hands them over), or
    the whole batch with one key.  Key splitting is not timed in either."""
    if per_example:
        step = jax.jit(lambda xs, keys: jax.vmap(sample)(keys, xs))
    else:
        step = jax.jit(lambda xs, keys: sample(keys[0], xs))

    def make(xs):
        xj = jax.device_put(xs)
        keys = jax.random.split(jax.random.PRNGKey(1), VMAP_BATCH)

        def call():
            jax.block_until_ready(step(xj, keys))

        return call

    return make


VMAP_CASES = {
    "ours vmap over keys": _vmap_step(_ours_sample, per_example=True),
    "ours one batched call": _vmap_step(_ours_sample, per_example=False),
    "pure JAX vmap over keys": _vmap_step(_pure_jax_sample, per_example=True),
}


def check_parity(x, w):
    """Ours under jit is bitwise the NumPy API (and its gradient); raises otherwise."""
    key = jax.random.PRNGKey(3)
    seed = gsj.seed_of(key)
    y = jax.jit(_ours_sample)(key, x)
    _, y_soft = gs.gumbel_softmax(x, TAU, rng=gs.Philox(seed), return_soft=True)
    g = jax.jit(jax.grad(lambda x: jnp.sum(w * _ours_sample(key, x))))(x)
    ok = np.array_equal(np.asarray(y), y_soft) and np.array_equal(
        np.asarray(g), gs.gumbel_softmax_backward(w, y_soft, TAU)
    )
    if not ok:
        raise AssertionError(f"gs.jax differs from the NumPy API for shape {x.shape}")


# ---------------------------------------------------------------------------------------
# Running and reporting


def run(cfg, progress) -> list:
    results = []
    for shape in SHAPES:
        gen = np.random.default_rng(0)
        x = gen.standard_normal(shape).astype(DTYPE)
        w = gen.standard_normal(shape).astype(DTYPE)
        check_parity(x, w)
        for op in OPS:
            row = {
                "shape": list(shape),
                "dtype": np.dtype(DTYPE).name,
                "op": op,
                "size": int(x.size),
                "times": {},
            }
            for impl in ("ours", "jax", "numpy"):
                progress(f"{shape} {op} {impl}")
                fn = CASES[(impl, op)](x, w)
                for _ in range(3):  # compile first: measure() calibrates on its first call
                    fn()
                t = gb.measure(fn, cfg)
                row["times"][impl] = {
                    "per_call_s": t.per_call,
                    "samples_s": t.samples,
                    "loops": t.loops,
                    "melem_per_s": x.size / t.per_call / 1e6,
                }
            times = row["times"]
            row["jax_over_ours"] = times["jax"]["per_call_s"] / times["ours"]["per_call_s"]
            row["ours_over_numpy"] = times["ours"]["per_call_s"] / times["numpy"]["per_call_s"]
            results.append(row)
    return results


def run_vmap(cfg, progress) -> dict:
    xs = np.random.default_rng(0).standard_normal((VMAP_BATCH, VMAP_K)).astype(DTYPE)
    times = {}
    for name, make in VMAP_CASES.items():
        progress(f"vmap {name}")
        fn = make(xs)
        for _ in range(3):
            fn()
        times[name] = gb.measure(fn, cfg).per_call
    return {
        "batch": VMAP_BATCH,
        "k": VMAP_K,
        "per_call_s": times,
        "vmap_over_batched": times["ours vmap over keys"] / times["ours one batched call"],
    }


# The goals of issue 17 (point 4), as ratios of ours to the reference (at most).
GOALS = {"forward (64, 10)": 1.5, "forward+grad (64, 10)": 1.5, "vmap over keys": 2.0}


def goal_lines(report: dict) -> list:
    got = {}
    for r in report["results"]:
        if tuple(r["shape"]) == (64, 10):
            got[f"{r['op']} (64, 10)"] = 1 / r["jax_over_ours"]
    got["vmap over keys"] = report["vmap"]["vmap_over_batched"]
    lines = ["", "| goal | ours / reference | at most | met |", "|---|---:|---:|---|"]
    for name, limit in GOALS.items():
        ratio = got[name]
        lines.append(f"| {name} | {ratio:.2f} | {limit} | {'yes' if ratio <= limit else 'no'} |")
    return lines


def _fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"## gumbel_softmax.jax benchmark, {report['date']}",
        "",
        f"{m['cpu_model']}, {m['cores']} cores, target `{m['cpu_target']}`, "
        f"{m['gs_num_threads']} threads for our kernels; JAX {m['versions']['jax']} "
        f"(backend {report['jax_backend']}), NumPy {m['versions']['numpy']}. Mode: "
        f"{report['mode']}; float32, tau={TAU}; median time per call. Every JAX call "
        "is a jitted step that also splits the key, waited for with block_until_ready. "
        "forward+grad: value and gradient of sum(w * y). Ratio > 1: ours is faster.",
        "",
        "| shape | op | gs.jax (jit) | M elem/s | pure JAX (jit) | M elem/s "
        "| pure JAX / ours | gs NumPy API | M elem/s | ours / NumPy API |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        t = r["times"]
        lines.append(
            f"| {tuple(r['shape'])} | {r['op']} "
            f"| {_fmt_time(t['ours']['per_call_s'])} | {t['ours']['melem_per_s']:.0f} "
            f"| {_fmt_time(t['jax']['per_call_s'])} | {t['jax']['melem_per_s']:.0f} "
            f"| {r['jax_over_ours']:.2f} "
            f"| {_fmt_time(t['numpy']['per_call_s'])} | {t['numpy']['melem_per_s']:.0f} "
            f"| {r['ours_over_numpy']:.2f} |"
        )
    v = report["vmap"]
    lines += [
        "",
        "`ours / NumPy API` is the cost of going through JAX (dispatch, the custom call or "
        "the callback, copying the result into an XLA buffer). The kernels run as "
        + ("XLA FFI custom calls." if report["uses_ffi"] else "jax.pure_callback callbacks."),
        "",
        f"vmap over {v['batch']} per-example keys, ({v['k']},) logits each, jitted:",
        "",
        "| call | time |",
        "|---|---:|",
    ]
    for name, t in v["per_call_s"].items():
        lines.append(f"| {name} | {_fmt_time(t)} |")
    lines.append(f"| ours vmap / ours one batched call | {v['vmap_over_batched']:.2f} |")
    lines += goal_lines(report)
    return "\n".join(lines)


def out_dir_default() -> Path:
    return Path(__file__).resolve().parent / "results"


def save(report: dict, text: str, out_dir: Path) -> list:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report['date'][:10]}-{report['machine']['cpu_target']}-jax"
    stem += "-quick" if report["mode"] == "quick" else ""
    base = out_dir / stem
    base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    base.with_suffix(".md").write_text(text + "\n")
    return [f"saved {base.with_suffix('.json')}", f"saved {base.with_suffix('.md')}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    parser.add_argument("--no-save", action="store_true", help="only print the table")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where to save (default: bench/results next to this script)",
    )
    args = parser.parse_args(argv)
    cfg = gb.QUICK if args.quick else gb.FULL
    start = time.perf_counter()

    def progress(text):
        print(f"[{time.perf_counter() - start:6.1f} s] {text}", file=sys.stderr, flush=True)

    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable] + sys.argv),
        "mode": "quick" if args.quick else "full",
        "config": {**vars(cfg), "tau": TAU},
        "machine": gb.machine_info(),
        "jax_backend": jax.default_backend(),
        "uses_ffi": gsj.uses_ffi(),
    }
    gb.warm_up()
    report["results"] = run(cfg, progress)
    report["vmap"] = run_vmap(cfg, progress)
    report["elapsed_s"] = time.perf_counter() - start
    text = markdown(report)
    print(text)
    if not args.no_save:
        for note in save(report, text, args.out_dir or out_dir_default()):
            print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
