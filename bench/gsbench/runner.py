"""Running the cases of a section on one problem, and the ratios between rows."""

from __future__ import annotations

import gc
from typing import Callable

import gumbel_softmax as gs

from .cases_main import CASES
from .core import (
    Case,
    Problem,
    Timing,
    TimingConfig,
    _import_module,
    _import_peer,
    _Threads,
    measure,
)


def _timing_record(t: Timing, size: int) -> dict:
    return {
        "per_call_s": t.per_call,
        "samples_s": t.samples,
        "loops": t.loops,
        "repeats": len(t.samples),
        "melem_per_s": size / t.per_call / 1e6,
    }


def run_case(case: Case, p: Problem, cfg: TimingConfig) -> dict:
    """Time one case on one problem (ours also on one thread); never raises."""
    record = {
        "key": case.key,
        "label": case.label,
        "peer": case.peer,
        "compare_to": case.compare_to,
        "status": _import_peer(case.peer) or _import_module(case.requires),
    }
    if record["status"] is not None:
        return record
    fn = None
    try:
        fn = case.make(p)
        record.update(_timing_record(measure(fn, cfg), p.size))
        record["threads"] = gs.get_num_threads() if case.ours else None
        if case.ours:
            with _Threads(1):
                record["one_thread"] = _timing_record(measure(fn, cfg), p.size)
        record["status"] = "ok"
    except Exception as exc:  # e.g. MemoryError on a big shape: report and go on
        record["status"] = f"error: {type(exc).__name__}: {exc}"
    finally:
        fn = None
        gc.collect()
    return record


def _add_ratios(records: list) -> None:
    by_key = {r["key"]: r for r in records}
    for r in records:
        base = by_key.get(r["compare_to"] or "")
        if r["status"] == "ok" and base and base["status"] == "ok":
            r["vs_ours"] = r["per_call_s"] / base["per_call_s"]
            if r.get("one_thread") and base.get("one_thread"):  # ours against ours
                r["vs_ours_one_thread"] = (
                    r["one_thread"]["per_call_s"] / base["one_thread"]["per_call_s"]
                )
        if r.get("one_thread"):
            r["thread_speedup"] = r["one_thread"]["per_call_s"] / r["per_call_s"]


def run_problem(
    p: Problem,
    cfg: TimingConfig,
    progress: Callable[[str], None],
    cases: tuple = CASES,
    section: str = "main",
) -> dict:
    records = []
    for case in cases:
        if case.shapes is not None and p.shape not in case.shapes:
            continue
        progress(f"{section}: {p.title}: {case.label}")
        records.append(run_case(case, p, cfg))
    _add_ratios(records)
    return {
        "dtype": p.dtype.name,
        "shape": list(p.shape),
        "axis": p.axis,
        "size": p.size,
        "section": section,
        "cases": records,
    }
