"""Timing, problems, cases, peers and machine information: the pieces every section
of the suite shares."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import gumbel_softmax as gs
import numpy as np

TAU = 0.5
DEFAULT_SHAPES = (
    ((64, 10), -1),
    ((256, 1000), -1),
    ((4096, 1000), -1),
    ((1024, 32000), -1),
    ((16384, 4096), -1),
    ((4, 1000000), -1),
    ((1000, 1000), 0),
)
QUICK_SKIPPED_SHAPES = {(16384, 4096)}
EXP_GOAL_SHAPE = (64, 10)  # issue 15: our call on (64, 10) within 2x of one np.exp(x)
EXP_GOAL_RATIO = 2.0
# issue 15's shapes for the soft forward's goals (gsbench.goals); the tau=1.0 peer rows
# run on these shapes only
GOAL_SHAPES = ((4096, 1000), (16384, 4096))
NOT_INSTALLED = "not installed"


# ---------------------------------------------------------------------------------------
# Timing


@dataclass(frozen=True)
class TimingConfig:
    """How long to time each case: see ``measure``."""

    min_time: float  # seconds that one timed loop of calls must at least last
    budget: float  # seconds of timed loops per case (sets the number of repeats)
    min_repeats: int
    max_repeats: int


FULL = TimingConfig(min_time=0.02, budget=0.4, min_repeats=3, max_repeats=15)
QUICK = TimingConfig(min_time=0.01, budget=0.1, min_repeats=2, max_repeats=5)


@dataclass
class Timing:
    per_call: float  # median over repeats, seconds per call
    samples: list  # seconds per call, one per repeat
    loops: int  # calls per timed loop


def _clock(fn: Callable[[], object], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return time.perf_counter() - t0


def _loops_for(fn: Callable[[], object], first: float, min_time: float) -> tuple:
    """(calls per timed loop so that a loop lasts >= min_time, estimated seconds per call)."""
    if first >= min_time:
        return 1, first
    n, t = 1, _clock(fn, 1)
    while t < min_time / 4 and n < 1 << 24:
        n *= 4
        t = _clock(fn, n)
    per_call = max(t / n, 1e-9)
    return max(1, math.ceil(min_time / per_call)), per_call


def measure(fn: Callable[[], object], cfg: TimingConfig) -> Timing:
    """One warm-up call, a calibration of the loop length, then the timed repeats."""
    first = _clock(fn, 1)  # warm-up: first touch of memory, JIT compilation, caches
    loops, per_call = _loops_for(fn, first, cfg.min_time)
    repeats = round(cfg.budget / (loops * per_call))
    repeats = min(max(repeats, cfg.min_repeats), cfg.max_repeats)
    samples = [_clock(fn, loops) / loops for _ in range(repeats)]
    return Timing(statistics.median(samples), samples, loops)


class _Threads:
    """Context manager: our kernels on ``n`` threads, back to OpenMP's setting on exit."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        gs.set_num_threads(self.n)

    def __exit__(self, *exc):
        gs.set_num_threads(0)


# ---------------------------------------------------------------------------------------
# The problems and the cases


@dataclass
class Problem:
    """One shape, axis and dtype with its inputs: logits, an incoming gradient and a
    relaxed sample for the backward pass."""

    shape: tuple
    axis: int
    dtype: np.dtype
    x: np.ndarray = field(repr=False)
    grad_y: np.ndarray = field(repr=False)
    y_soft: np.ndarray = field(repr=False)

    @classmethod
    def make(cls, shape, axis, dtype) -> Problem:
        gen = np.random.default_rng(0)
        x = gen.standard_normal(shape).astype(dtype)
        grad_y = gen.standard_normal(shape).astype(dtype)
        y_soft = gs.gumbel_softmax(x, TAU, axis=axis, rng=gs.Philox(0))
        return cls(tuple(shape), axis, np.dtype(dtype), x, grad_y, y_soft)

    @property
    def size(self) -> int:
        return int(self.x.size)

    @property
    def title(self) -> str:
        return f"{self.dtype.name} {self.shape} axis={self.axis}"


@dataclass(frozen=True)
class Case:
    key: str  # stable identifier, used in the JSON and for comparisons
    label: str  # text of the table row
    peer: str  # "ours", "numpy", "torch", "jax" or "bound"
    make: Callable[[Problem], Callable[[], object]]  # builds the call to time
    compare_to: str | None = None  # key of our case this row is compared with
    requires: str | None = None  # a module the row needs beyond its peer (ml_dtypes)
    shapes: tuple | None = None  # the shapes the row runs on (None: every shape)

    @property
    def ours(self) -> bool:
        return self.peer == "ours"


# ---------------------------------------------------------------------------------------
# Peers


def _all_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_peer_status: dict = {}


def _import_peer(peer: str) -> str | None:
    """None when the peer can be used, else why not ("not installed", ...)."""
    if peer in ("ours", "numpy", "bound"):
        return None
    if peer not in _peer_status:
        try:
            if peer == "torch":
                import torch

                torch.set_num_threads(gs.get_num_threads())  # ours' thread count
            elif peer == "jax":
                import jax  # noqa: F401
            _peer_status[peer] = None
        except ImportError:
            _peer_status[peer] = NOT_INSTALLED
        except Exception as exc:  # a broken install: report it, never crash
            _peer_status[peer] = f"import failed: {type(exc).__name__}: {exc}"
    return _peer_status[peer]


def _import_module(name: str | None) -> str | None:
    """None when the module a row requires imports (or none is required), else why not."""
    if name is None:
        return None
    key = f"module:{name}"
    if key not in _peer_status:
        try:
            __import__(name)
            _peer_status[key] = None
        except ImportError:
            _peer_status[key] = NOT_INSTALLED
        except Exception as exc:
            _peer_status[key] = f"import failed: {type(exc).__name__}: {exc}"
    return _peer_status[key]


def _versions() -> dict:
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gumbel_softmax": getattr(gs, "__version__", "?"),
    }
    for peer in ("torch", "jax", "matplotlib", "ml_dtypes"):
        try:
            versions[peer] = __import__(peer).__version__
        except ImportError:
            versions[peer] = NOT_INSTALLED
        except Exception as exc:
            versions[peer] = f"import failed: {type(exc).__name__}"
    return versions


# ---------------------------------------------------------------------------------------
# Running


def load_average() -> list | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def warm_up(seconds: float = 0.3) -> None:
    """Start the OpenMP thread pool and let the CPU clock settle before the first timing."""
    x = np.zeros((256, 1000), np.float32)
    out, rng = np.empty_like(x), gs.Philox(0)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        gs.gumbel_softmax(x, TAU, rng=rng, out=out)


# ---------------------------------------------------------------------------------------
# Machine information and files


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


SIMD_FLAGS = ("avx512f", "avx2", "fma", "sse4_2", "asimd", "sve")


def _cpu_flags() -> list:
    """The SIMD flags of /proc/cpuinfo that matter to the kernels ([] elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("flags", "features")):
                    present = set(line.split(":", 1)[1].split())
                    return [flag for flag in SIMD_FLAGS if flag in present]
    except OSError:
        pass
    return []


def peer_threads() -> dict:
    """The thread count of each peer, as set for the run (torch only once imported)."""
    threads = {"ours": gs.get_num_threads(), "numpy": 1}
    torch = sys.modules.get("torch")
    if torch is not None and _peer_status.get("torch", "") is None:
        threads["torch"] = torch.get_num_threads()
    if "jax" in sys.modules:
        threads["jax"] = "XLA default (all cores)"
    return threads


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": _all_cores(),
        "os_cpu_count": os.cpu_count(),
        "cpu_target": gs.cpu_target(),
        "cpu_targets": list(gs.cpu_targets()),
        "gs_num_threads": gs.get_num_threads(),
        "env": {
            k: os.environ.get(k)
            for k in ("GUMBEL_SOFTMAX_TARGET", "OMP_NUM_THREADS", "XLA_FLAGS", "GOMP_SPINCOUNT")
        },
        "versions": _versions(),
    }
