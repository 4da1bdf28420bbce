#!/usr/bin/env python
"""Error of the kernels' math primitives, exhaustively in float32, on every SIMD target.

Usage::

    python scripts/ulp_sweep.py                      # the float32 sweeps and the float64 sets
    python scripts/ulp_sweep.py --json out.json      # also save the results (default:
                                                     # build/ulp_sweep/ulp_sweep.json)
    python scripts/ulp_sweep.py --f32 log,exp --f64 none --stride 64   # a quick look
    python scripts/ulp_sweep.py --f32 all            # + bits_to_exponential, bits_to_logistic

What it measures (csrc/kernels/simd/vmath.hpp and gumbel.hpp, on the lanes of each target
this CPU supports: baseline, avx2, avx512):

- float32, every input of the domain: ``log`` (every positive normal float), ``exp``
  (every finite float; results that over- or underflow must be exactly +inf / +0),
  ``log1p_reduced`` (every float of the reduced range the kernels pass it),
  ``bits_to_gumbel`` (every 32-bit word; the reference is -log(-log(U)) from the exact t
  of docs/contract.md "Bits to noise"), and with ``--f32 all`` ``bits_to_exponential``
  (E, the first log) and ``bits_to_logistic``.
- float64, dense sets (``--f64-n`` inputs per random set; consecutive inputs around every
  reduction and rounding boundary): the same functions.

The error is ``|got - exact| / ulp(exact)``, where ulp(x) is the spacing of the dtype's
numbers in the binade of the exact value (2**(floor(log2|x|) - 23) for float32, the
subnormal spacing below the normal range): a correctly rounded result is within 0.5. The
reference is glibc's double function for float32 inputs (error below 2**-29 float32 ulp;
x87 long double where a noise value is below 1/16, which cancellation would otherwise
spoil) and x87 long double for float64 inputs (about 2**-11 float64 ulp). The noise maps
also get the contract's measure ``|g - g_exact| / (eps (1 + |g_exact|))``: their error in
ulps of g is unbounded near g = 0 (E near 1 is known to 2**-24 absolutely, so g = -log E
is known absolutely, not relatively), so docs/contract.md bounds them in that measure.

How: ``scripts/ulp_sweep.cpp`` is compiled once per target with the flags CMakeLists.txt
gives the kernels (read from it), into ``build/ulp_sweep/`` (rebuilt when the sources,
headers or flags change); one driver evaluates all targets on each chunk of inputs,
compares them bit for bit (column "differ") and measures the first one's error (any
other target that differs anywhere in a chunk gets that chunk measured on its own).
Before the sweep, the standalone build is checked bit for bit against the installed
extension (``gumbel_softmax._core._eval_*`` / ``_noise_*``, one interpreter per target)
on a sample of every function's inputs, so the numbers are those of the package.

Exit status: 0 when every float32 function of ``--require`` (default log, exp,
log1p_reduced) has a max error at most ``--bound`` ulps (default 1) and the targets agree
bitwise; 1 otherwise; 2 on a build or cross-check failure.  Run time with 2 threads on a
quiet 2-core machine: about 2 min per 2**32 inputs (the baseline target, whose fused
multiply-adds are library calls, takes half of it; ``--targets avx512`` skips it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "scripts" / "ulp_sweep.cpp"
BUILD = ROOT / "build" / "ulp_sweep"
F32_DEFAULT = "log,exp,log1p_reduced,bits_to_gumbel"
ALL = "log,exp,log1p_reduced,bits_to_gumbel,bits_to_exponential,bits_to_logistic"
NOISE = ("bits_to_gumbel", "bits_to_exponential", "bits_to_logistic")


# ----------------------------------------------------------------------------- build
def cmake_flags() -> tuple[list[str], dict[str, list[str]]]:
    """GS_FP_FLAGS (GNU/Clang branch) and each gs_add_target's flags, from CMakeLists.txt."""
    text = (ROOT / "CMakeLists.txt").read_text()
    fp = re.search(r"set\(GS_FP_FLAGS (-ffp-contract[^)]*)\)", text)
    if not fp:
        raise SystemExit("ulp_sweep: GS_FP_FLAGS not found in CMakeLists.txt")
    targets = {
        m.group(1): m.group(2).split()
        for m in re.finditer(r"gs_add_target\((\w+)([^)]*)\)", text)
        if m.group(1) != "name"
    }
    if "baseline" not in targets:
        raise SystemExit("ulp_sweep: gs_add_target(baseline) not found in CMakeLists.txt")
    return fp.group(1).split(), targets


def build(verbose: bool) -> Path:
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not cxx:
        raise SystemExit("ulp_sweep: no C++ compiler (set CXX)")
    fp, targets = cmake_flags()
    # as CMake's Release build of the kernels: -O3 -DNDEBUG, C++17, the FP flags
    common = [
        "-O3",
        "-DNDEBUG",
        "-std=c++17",
        *fp,
        "-Wno-psabi",
        "-Icsrc/include",
        "-Icsrc/kernels",
    ]
    h = hashlib.sha256()
    for f in [SOURCE, *sorted((ROOT / "csrc" / "kernels" / "simd").glob("*.hpp"))]:
        h.update(f.name.encode() + f.read_bytes())
    h.update(json.dumps([cxx, common, targets]).encode())
    h.update(subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.encode())
    exe = BUILD / f"ulp_sweep-{h.hexdigest()[:16]}"
    if exe.exists():
        return exe
    BUILD.mkdir(parents=True, exist_ok=True)
    for old in BUILD.glob("ulp_sweep-*"):
        old.unlink()
    cmds, objs, have = [], [], []
    for name, flags in targets.items():
        obj = BUILD / f"{name}.o"
        cmds.append(
            [cxx, *common, *flags, f"-DGS_TARGET={name}", "-c", str(SOURCE), "-o", str(obj)]
        )
        objs.append(str(obj))
        if name != "baseline":
            have.append(f"-DULP_HAVE_{name.upper()}")
    cmds.append([cxx, *common, *have, str(SOURCE), *objs, "-o", str(exe), "-pthread"])
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT) for c in cmds[:-1]]  # the objects in parallel
    if any(p.wait() for p in procs) or subprocess.run(cmds[-1], cwd=ROOT).returncode:
        raise SystemExit("ulp_sweep: build failed:\n" + "\n".join(map(shlex.join, cmds)))
    if verbose:
        print(f"built {exe.relative_to(ROOT)} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return exe


# ------------------------------------------------------------------- cross-check
_CHILD = r"""
import sys, numpy as np, gumbel_softmax as gs
from gumbel_softmax import _core
d = dict(np.load(sys.argv[1]))
out = {}
for key, x in d.items():
    dtype, fn = key.split(":")
    if fn.startswith("bits_to_"):
        out[key] = (_core._noise_f32 if dtype == "float32" else _core._noise_f64)(x)
    else:
        f = _core._eval_f32 if dtype == "float32" else _core._eval_f64
        out[key] = f(fn, x.view(np.float32 if dtype == "float32" else np.float64))
np.savez(sys.argv[2], target=gs.cpu_target(), **out)
"""


def sample_inputs(f32: list[str], f64: list[str]) -> dict[str, np.ndarray]:
    """Every 4099th 32-bit word (both signs, every binade) plus 2**16 random ones, and
    2**16 random 64-bit words plus a spread of ordinary float64 values."""
    rng = np.random.default_rng(15)
    w32 = np.concatenate(
        [
            np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32),
            rng.integers(0, 2**32, 2**16, dtype=np.uint32),
        ]
    )
    w64 = np.concatenate(
        [
            rng.integers(0, 2**64, 2**16, dtype=np.uint64, endpoint=False),
            rng.uniform(-800, 800, 2**16).view(np.uint64),
            rng.uniform(-0.3, 0.42, 2**16).view(np.uint64),
        ]
    )
    out = {f"float32:{fn}": w32 for fn in f32}
    out.update(
        {
            f"float64:{fn}": w64
            for fn in f64
            if fn != "bits_to_exponential" and fn != "bits_to_logistic"
        }
    )
    return out


def cross_check(
    exe: Path, targets: list[str], f32: list[str], f64: list[str], tmp: Path
) -> list[str]:
    """The standalone build against the installed extension, bit for bit, per target.
    (bits_to_exponential and bits_to_logistic have no private entry point; they share
    every operation with bits_to_gumbel's first log.)"""
    f32 = [f for f in f32 if f not in ("bits_to_exponential", "bits_to_logistic")]
    inputs = sample_inputs(f32, f64)
    np.savez(tmp / "in.npz", **inputs)
    problems = []
    import gumbel_softmax as gs

    for t in targets:
        if t not in gs.cpu_targets():
            problems.append(f"{t}: not a target of the installed extension ({gs.cpu_targets()})")
            continue
        env = dict(os.environ, GUMBEL_SOFTMAX_TARGET=t)
        r = subprocess.run(
            [sys.executable, "-c", _CHILD, str(tmp / "in.npz"), str(tmp / f"{t}.npz")],
            env=env,
            capture_output=True,
            text=True,
        )
        if r.returncode:
            problems.append(f"{t}: the extension failed:\n{r.stderr}")
            continue
        ext = np.load(tmp / f"{t}.npz")
        if str(ext["target"]) != t:
            problems.append(f"{t}: the extension ran {ext['target']}")
            continue
        for key, x in inputs.items():
            dtype, fn = key.split(":")
            mine = subprocess.run(
                [str(exe), "--eval", t, dtype, fn], input=x.tobytes(), capture_output=True
            ).stdout
            if mine != ext[key].tobytes():
                a = np.frombuffer(mine, dtype=np.uint32 if dtype == "float32" else np.uint64)
                b = ext[key].view(a.dtype) if len(mine) == ext[key].nbytes else None
                n = "size differs" if b is None else f"{int((a != b).sum())} of {a.size} differ"
                problems.append(f"{t} {key}: standalone build != extension ({n})")
    return problems


# ------------------------------------------------------------------------ report
def fmt_where(w: dict, dtype: str, fn: str) -> str:
    bits = int(w["input_bits"], 16)
    if fn in NOISE:
        arg = f"word {w['input_bits']}"
    else:
        x = np.array([bits], dtype=np.uint32 if dtype == "float32" else np.uint64).view(
            np.float32 if dtype == "float32" else np.float64
        )[0]
        arg = f"x={float(x).hex()} ({float(x)!r})"
    return f"{arg}: got {w['got']!r}, exact {w['ref']!r}"


def table(res: dict) -> str:
    """One row per function, dtype and target.  "max err" is in ulps, except for the noise
    maps (unit eps(1+|g|), the contract's measure; their ulp error is in the JSON);
    ">0.5" and ">1" count the results more than 0.5 and 1 ulp away (not correctly rounded,
    not faithful); "differ" the results whose bits differ from the first target's."""
    head = (
        "function",
        "dtype",
        "target",
        "inputs",
        "max err",
        "unit",
        ">0.5 ulp",
        ">1 ulp",
        "differ",
    )
    rows, wheres = [], []
    for r in res["results"]:
        noise = r["function"] in NOISE
        w = r["max_eps_1_plus_abs"] if noise else r["max_ulp"]
        rows.append(
            (
                r["function"],
                r["dtype"],
                r["target"],
                f"{r['count']:,}",
                f"{w['err']:.4f}",
                "eps(1+|g|)" if noise else "ulp",
                f"{r['above_half_ulp']:,}",
                f"{r['above_one_ulp']:,}",
                f"{r[next(k for k in r if k.startswith('mismatches_vs_'))]:,}",
            )
        )
        wheres.append(fmt_where(w, r["dtype"], r["function"]))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)) + "  where (the max)"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + wh
        for row, wh in zip(rows, wheres)
    ]
    domains = {}
    for r in res["results"]:
        domains.setdefault((r["function"], r["dtype"]), r["domain"])
    lines.append("")
    lines += [f"{fn} ({dt}): {d}" for (fn, dt), d in domains.items()]
    return "\n".join(lines)


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_rev() -> str:
    r = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return r.stdout.strip() or "unknown"


def expand(arg: str) -> list[str]:
    if arg == "none":
        return []
    return (ALL if arg == "all" else arg).split(",")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--f32",
        default=F32_DEFAULT,
        help=f"float32 functions, 'all' or 'none' (default {F32_DEFAULT})",
    )
    p.add_argument(
        "--f64", default=F32_DEFAULT, help="float64 functions, 'all' or 'none' (same default)"
    )
    p.add_argument(
        "--f64-n", type=int, default=2**24, help="inputs per random float64 set (default 2**24)"
    )
    p.add_argument(
        "--stride",
        type=int,
        default=1,
        help="float32: every N-th input only (a quick look, not a bound)",
    )
    p.add_argument("--targets", help="comma-separated subset of the targets this CPU supports")
    p.add_argument("--threads", type=int, default=0, help="default: the CPUs available")
    p.add_argument(
        "--json", default=str(BUILD / "ulp_sweep.json"), help="where to save the results"
    )
    p.add_argument(
        "--no-check", action="store_true", help="skip the cross-check against the extension"
    )
    p.add_argument(
        "--bound", type=float, default=1.0, help="ulp bound for the exit status (default 1)"
    )
    p.add_argument(
        "--require", default="log,exp,log1p_reduced", help="float32 functions held to --bound"
    )
    p.add_argument("--show", metavar="JSON", help="print the table of saved results and exit")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.show:
        with open(a.show) as f:
            res = json.load(f)
        print(table(res))
        print(
            f"\n{res['machine']}, {res['threads']} threads, {res['sweep_seconds']} s sweep ({res['revision']})"
        )
        return 0
    f32, f64 = expand(a.f32), expand(a.f64)
    threads = a.threads or len(os.sched_getaffinity(0))
    t0 = time.perf_counter()
    exe = build(not a.quiet)
    listed = subprocess.run(
        [str(exe), "--f32", "none", "--f64", "none"], capture_output=True, text=True
    )
    targets = json.loads(listed.stdout)["targets"]
    if a.targets:
        targets = [t for t in targets if t in a.targets.split(",")]
    if not a.no_check:
        tmp = BUILD / "check"
        tmp.mkdir(parents=True, exist_ok=True)
        problems = cross_check(exe, targets, f32, f64, tmp)
        if problems:
            print("cross-check FAILED:\n  " + "\n  ".join(problems))
            return 2
        if not a.quiet:
            print(
                f"cross-check: the standalone build matches the extension on {', '.join(targets)}",
                file=sys.stderr,
            )
    cmd = [
        str(exe),
        "--threads",
        str(threads),
        "--f32",
        ",".join(f32) or "none",
        "--f64",
        ",".join(f64) or "none",
    ]
    cmd += ["--f64-n", str(a.f64_n), "--stride", str(a.stride), "--targets", ",".join(targets)]
    t1 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr)
        return 2
    res = json.loads(r.stdout)
    res.update(
        command=shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(argv),
        machine=machine(),
        revision=git_rev(),
        sweep_seconds=round(time.perf_counter() - t1, 1),
        total_seconds=round(time.perf_counter() - t0, 1),
        cross_checked=not a.no_check,
    )
    print(table(res))
    print(
        f"\n{res['machine']}, {threads} threads, {res['sweep_seconds']} s sweep ({res['revision']})"
    )
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print(f"saved {a.json}")
    req = set(a.require.split(","))
    bad = [
        f"{x['function']} {x['dtype']} {x['target']}: {x['max_ulp']['err']:.4f} ulp"
        for x in res["results"]
        if x["dtype"] == "float32" and x["function"] in req and x["max_ulp"]["err"] > a.bound
    ]
    bad += [
        f"{x['function']} {x['dtype']} {x['target']}: differs from {res['targets'][0]}"
        for x in res["results"]
        if x[next(k for k in x if k.startswith("mismatches_vs_"))]
    ]
    if bad:
        print(f"above {a.bound} ulp or not bitwise equal across targets:\n  " + "\n  ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
