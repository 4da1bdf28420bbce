"""The markdown report, the saved files and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .cases_extra import EXTRA_CASES, EXTRA_NOTE, SECTIONS
from .cases_main import CASES, OUT_NOTE
from .core import EXP_GOAL_RATIO, EXP_GOAL_SHAPE, TAU
from .goals import goals_markdown

# ---------------------------------------------------------------------------------------
# Reporting


def fmt_time(s: float | None) -> str:
    if s is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _fmt_rate(melem_per_s: float) -> str:
    return f"{melem_per_s:,.0f}" if melem_per_s >= 100 else f"{melem_per_s:.3g}"


def _fmt_ratio(r: float | None) -> str:
    return "" if r is None else f"{r:.2f}x"


def _row(r: dict, labels: dict) -> list:
    if r["status"] != "ok":
        return [r["label"], r["status"], "", "", "", ""]
    one = r.get("one_thread") or {}
    vs = r.get("vs_ours")
    vs_text = f"{vs:.2f}x ({labels[r['compare_to']]})" if vs is not None else ""
    return [
        r["label"],
        fmt_time(r["per_call_s"]),
        _fmt_rate(r["melem_per_s"]),
        fmt_time(one.get("per_call_s")),
        _fmt_ratio(r.get("thread_speedup")),
        vs_text,
    ]


def _markdown_table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def problem_markdown(result: dict, threads: int) -> list:
    extra = result.get("section") == "extra"
    labels = {c.key: c.label for c in (EXTRA_CASES if extra else CASES)}
    shape = tuple(result["shape"])
    lines = [
        f"### {'beyond gumbel_softmax: ' if extra else ''}{result['dtype']} {shape}, "
        f"axis={result['axis']} ({result['size']:,} elements)",
        "",
    ]
    header = [
        "case",
        "time/call",
        "M elem/s",
        "1 thread",
        f"{threads} vs 1 thread",
        "vs (time / time of the row named)" if extra else "vs ours (> 1: ours faster)",
    ]
    lines += _markdown_table(header, [_row(r, labels) for r in result["cases"]])
    notes = [] if extra else problem_notes(result)
    lines += [""] + [f"- {s}" for s in notes] + ([""] if notes else [])
    return lines


def _case(result: dict, key: str) -> dict | None:
    r = next((r for r in result["cases"] if r["key"] == key), None)
    return r if r and r["status"] == "ok" else None


def problem_notes(result: dict) -> list:
    notes = []
    soft, copy = _case(result, "ours.soft"), _case(result, "bound.copy")
    if soft and copy:
        itemsize = np.dtype(result["dtype"]).itemsize
        gbs = 2 * result["size"] * itemsize / copy["per_call_s"] / 1e9
        notes.append(
            f"ours soft forward takes {1 / copy['vs_ours']:.1f}x the time of "
            f"np.copyto on the same array ({gbs:.1f} GB/s read+write)"
        )
    dropin, torch_fb = _case(result, "ours.torch_fwd_bwd"), _case(result, "torch.fwd_bwd")
    if dropin and torch_fb:
        notes.append(
            f"PyTorch drop-in, hard forward + .backward(): "
            f"{torch_fb['per_call_s'] / dropin['per_call_s']:.1f}x faster than "
            f"F.gumbel_softmax's, {dropin['vs_ours']:.2f}x the time of our NumPy "
            f"API's forward + backward"
        )
    alloc, exp = _case(result, "ours.soft_alloc"), _case(result, "bound.exp")
    if tuple(result["shape"]) == EXP_GOAL_SHAPE and alloc and exp:
        ratio = alloc["per_call_s"] / exp["per_call_s"]
        ratio_out = soft["per_call_s"] / exp["per_call_s"] if soft else float("nan")
        verdict = "met" if ratio <= EXP_GOAL_RATIO else "NOT met"
        notes.append(
            f"goal: ours within {EXP_GOAL_RATIO:g}x of one np.exp(x) call: "
            f"{ratio:.2f}x allocating y like np.exp, {ratio_out:.2f}x with out= "
            f"-> {verdict}"
        )
    return notes


# The summary's peer columns: each the fastest of the rows named (the strongest version
# of the peer measured), then the float64 NumPy composition for reference.
SUMMARY_PEERS = (
    ("NumPy f32 in place", ("numpy.soft",)),
    ("torch", ("torch.soft",)),
    ("JAX", ("jax.soft", "jax.soft_rbg")),
    ("NumPy f64 rng.gumbel", ("numpy.soft_f64",)),
)


def strongest(result: dict, keys) -> dict | None:
    """The fastest of the rows ``keys`` that ran (None: none ran)."""
    rows = [r for r in (_case(result, k) for k in keys) if r is not None]
    return min(rows, key=lambda r: r["per_call_s"]) if rows else None


def _peer_cell(result: dict, keys) -> str:
    best = strongest(result, keys)
    if best is not None:
        return _fmt_ratio(best.get("vs_ours")) or "base failed"
    first = next((r for r in result["cases"] if r["key"] in keys), None)
    return first["status"] if first else ""


def summary_markdown(results: list, threads: int) -> list:
    header = ["dtype", "shape", "axis", "ours soft", "M elem/s", "M elem/s, 1 thread"]
    header += [f"{name} / ours" for name, _ in SUMMARY_PEERS]
    header += ["torch fwd+bwd / drop-in", f"ours {threads} vs 1 thread", "ours / np.copyto"]
    rows = []
    for res in results:
        soft = _case(res, "ours.soft")
        one = (soft or {}).get("one_thread")
        row = [
            res["dtype"],
            str(tuple(res["shape"])),
            str(res["axis"]),
            fmt_time(soft and soft["per_call_s"]),
            _fmt_rate(soft["melem_per_s"]) if soft else "",
            _fmt_rate(one["melem_per_s"]) if one else "",
        ]
        row += [_peer_cell(res, keys) for _, keys in SUMMARY_PEERS]
        dropin, torch_fb = _case(res, "ours.torch_fwd_bwd"), _case(res, "torch.fwd_bwd")
        row.append(
            _fmt_ratio(torch_fb["per_call_s"] / dropin["per_call_s"]) if dropin and torch_fb else ""
        )
        copy = _case(res, "bound.copy")
        row.append(_fmt_ratio(soft and soft.get("thread_speedup")))
        row.append(_fmt_ratio(copy and 1 / copy["vs_ours"]))
        rows.append(row)
    return _markdown_table(header, rows)


def extra_summary_markdown(results: list) -> list:
    """One line per compared row of the extra section, one column per problem:
    the row's time / the time of the row it is compared with."""
    header = ["row / row compared with"]
    header += [
        f"{r['dtype']} {tuple(r['shape'])}" + (f" axis={r['axis']}" if r["axis"] != -1 else "")
        for r in results
    ]
    labels = {c.key: c.label for c in EXTRA_CASES}
    rows = []
    for case in EXTRA_CASES:
        if case.compare_to is None:
            continue
        row = [f"{case.label} / {labels[case.compare_to]}"]
        for res in results:
            r = next((r for r in res["cases"] if r["key"] == case.key), None)
            if r is None:
                row.append("")
            elif r.get("vs_ours") is None:
                row.append(r["status"] if r["status"] != "ok" else "base failed")
            elif r.get("vs_ours_one_thread") is not None:
                row.append(
                    f"{_fmt_ratio(r['vs_ours'])} (1 thread: {_fmt_ratio(r['vs_ours_one_thread'])})"
                )
            else:
                row.append(_fmt_ratio(r["vs_ours"]))
        rows.append(row)
    return _markdown_table(header, rows)


def report_markdown(report: dict) -> str:
    m = report["machine"]
    threads = m["gs_num_threads"]
    lines = [
        f"## gumbel_softmax benchmark, {report['date']}",
        "",
        f"{machine_line(report)} Mode: {report['mode']}; median over repeats, each "
        f"repeat a loop of calls lasting >= {report['config']['min_time'] * 1e3:g} ms. "
        f"Load average (1, 5, 15 min) at start {report['load_average_start']}, at end "
        f"{report['load_average_end']}: other processes on the machine make timings noisy. "
        f"Command: `{report['command']}`.",
        "",
    ]
    if report["results"]:
        lines += [
            "Soft forward (tau=0.5), peer time / our time (> 1: ours is faster; "
            "each peer's strongest row):",
            "",
        ]
        lines += summary_markdown(report["results"], threads)
        lines += ["", OUT_NOTE, ""]
        lines += goals_markdown(report, report.get("goals")) + [""]
        for res in report["results"]:
            lines += problem_markdown(res, threads)
    extra = report.get("extra_results") or []
    if extra:
        lines += [
            "## Beyond gumbel_softmax: categorical, top_k, log space, Concrete density, "
            "relaxed Bernoulli, options",
            "",
            "Time of each row / time of the row it is compared with (for peers: "
            "> 1 means ours is faster):",
            "",
        ]
        lines += extra_summary_markdown(extra)
        lines += ["", EXTRA_NOTE, ""]
        for res in extra:
            lines += problem_markdown(res, threads)
    return "\n".join(lines)


def machine_line(report: dict) -> str:
    """The CPU, its SIMD flags, the target, every peer's thread count and the versions."""
    m = report["machine"]
    v = m["versions"]
    flags = ", ".join(m.get("cpu_flags") or []) or "not read"
    threads = m.get("peer_threads") or {"ours": m["gs_num_threads"]}
    thread_text = ", ".join(f"{k} {n}" for k, n in threads.items())
    return (
        f"{m['cpu_model']}, {m['cores']} cores (flags: {flags}), target `{m['cpu_target']}` "
        f"(compiled and supported: {', '.join(m['cpu_targets'])}); threads: {thread_text}; "
        f"gumbel_softmax {v.get('gumbel_softmax', '?')}, Python {v.get('python', '?')}, "
        f"NumPy {v['numpy']}, torch {v['torch']}, JAX {v['jax']}."
    )


def default_out_dir(cwd: Path) -> Path:
    """bench/results when run from the repository root (or from bench/), else the cwd."""
    if (cwd / "bench").is_dir():
        return cwd / "bench" / "results"
    if cwd.name == "bench" and (cwd / "run.py").is_file():
        return cwd / "results"
    return cwd


def save(report: dict, markdown: str, out_dir: Path) -> list:
    """Write <date>-<target>[-quick].json, .md and (with matplotlib) .png; return notes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{report['date'][:10]}-{report['machine']['cpu_target']}"
    suites = report.get("suites", list(SECTIONS))
    stem += "" if len(suites) != 1 else f"-{suites[0]}"
    stem += "-quick" if report["mode"] == "quick" else ""
    base = out_dir / stem
    base.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    base.with_suffix(".md").write_text(markdown + "\n")
    notes = [f"saved {base.with_suffix('.json')}", f"saved {base.with_suffix('.md')}"]
    if report["results"]:
        notes.append(plot(report, base.with_suffix(".png")))
    return notes


def plot(report: dict, path: Path) -> str:
    """Soft-forward throughput per shape, one bar per implementation; log scale."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed, no plot"
    bars = {
        "ours.soft": "ours",
        "numpy.soft": "NumPy float32 in place",
        "numpy.soft_f64": "NumPy float64 rng.gumbel, cast",
        "torch.soft": "torch",
        "jax.soft": "JAX",
        "jax.soft_rbg": "JAX, rbg key",
        "bound.copy": "np.copyto",
    }
    bars = {
        k: v for k, v in bars.items() if any(_case(r, k) for r in report["results"])
    }  # drop peers not installed
    keys, names = list(bars), list(bars.values())
    dtypes = sorted({r["dtype"] for r in report["results"]})
    fig, axes = plt.subplots(len(dtypes), 1, figsize=(11, 4.5 * len(dtypes)), squeeze=False)
    for ax, dtype in zip(axes[:, 0], dtypes):
        results = [r for r in report["results"] if r["dtype"] == dtype]
        width = 0.8 / len(keys)
        for i, (key, name) in enumerate(zip(keys, names)):
            values = [(_case(r, key) or {}).get("melem_per_s", 0.0) for r in results]
            xs = [j + (i - (len(keys) - 1) / 2) * width for j in range(len(results))]
            ax.bar(xs, values, width, label=name)
        ax.set_xticks(range(len(results)))
        ax.set_xticklabels([f"{tuple(r['shape'])}\naxis={r['axis']}" for r in results], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("million elements / s")
        ax.set_title(f"soft forward, tau={TAU}, {dtype}, target {report['machine']['cpu_target']}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"saved {path}"
