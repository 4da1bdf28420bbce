"""The soft forward's goals from issue 15, computed from one run's results.

Point 2 (against the strongest peers, in one run): per core at least 2.6x the in-place
float32 NumPy composition (ours on 1 thread against NumPy, which runs on one), and with
2 threads at least 30x ``F.gumbel_softmax`` and 12x a jitted JAX composition. Point 1
(at the limit): at least 1,310 / 1,590 M elem/s for tau 0.5 / 1 with 2 threads on the
avx512 target, 965 / 1,185 on avx2, and 2 threads at least 1.9x one thread. All at
float32, on the shapes of ``GOAL_SHAPES``, softmax over the last axis.

``goal_rows(report)`` gives one dict per goal and shape (what the JSON keeps as
``goals``); ``goals_markdown(rows)`` the table the report prints and the performance
page shows. A peer goal compares with the fastest of the peer's rows that do the same
work (JAX: the default threefry key and the rbg key).
"""

from __future__ import annotations

from .core import GOAL_SHAPES, QUICK_SKIPPED_SHAPES

GOAL_DTYPE = "float32"
GOAL_THREADS = 2  # the thread count the issue states its 2-thread goals for
# (our row, {peer: (the peer's rows doing the same work, goal ratio)}) per tau
OURS_ROWS = {0.5: "ours.soft", 1.0: "ours.soft_tau1"}
PEER_GOALS = (
    # peer, rows per tau, our thread setting ("one": ours on 1 thread), goal ratio
    ("NumPy float32 in place", {0.5: ("numpy.soft",), 1.0: ("numpy.soft_tau1",)}, "one", 2.6),
    ("torch F.gumbel_softmax", {0.5: ("torch.soft",), 1.0: ("torch.soft_tau1",)}, "all", 30.0),
    (
        "JAX jit",
        {0.5: ("jax.soft", "jax.soft_rbg"), 1.0: ("jax.soft_tau1", "jax.soft_rbg_tau1")},
        "all",
        12.0,
    ),
)
# M elem/s with 2 threads, per SIMD target and tau (the limit prototype's figures)
LIMITS = {"avx512": {0.5: 1310.0, 1.0: 1590.0}, "avx2": {0.5: 965.0, 1.0: 1185.0}}
THREAD_SCALING_GOAL = 1.9


def _ok(result: dict, key: str) -> dict | None:
    r = next((r for r in result["cases"] if r["key"] == key), None)
    return r if r and r.get("status") == "ok" else None


def _goal_results(report: dict) -> dict:
    """{shape: result} for the goal shapes measured at float32, last axis."""
    found = {}
    for res in report.get("results", []):
        shape = tuple(res["shape"])
        if res["dtype"] == GOAL_DTYPE and shape in GOAL_SHAPES and res["axis"] in (-1, 1):
            found[shape] = res
    return found


def _row(shape, tau, kind, goal, threads, **fields) -> dict:
    row = {"shape": list(shape), "tau": tau, "kind": kind, "goal": goal, "threads": threads}
    row.update(fields)
    if row.get("ratio") is not None:
        row["met"] = bool(row["ratio"] >= goal)
    else:
        row.setdefault("met", None)
    return row


def _peer_rows(res, shape, tau, ours, threads) -> list:
    rows = []
    for peer, keys, setting, goal in PEER_GOALS:
        on_one = setting == "one"
        mine = ours.get("one_thread") if on_one else ours
        n = 1 if on_one else threads
        peers = [r for r in (_ok(res, k) for k in keys[tau]) if r is not None]
        if not peers or not mine:
            rows.append(
                _row(
                    shape,
                    tau,
                    "peer",
                    goal,
                    n,
                    peer=peer,
                    ratio=None,
                    status="not measured in this run",
                )
            )
            continue
        best = min(peers, key=lambda r: r["per_call_s"])
        rows.append(
            _row(
                shape,
                tau,
                "peer",
                goal,
                n,
                peer=peer,
                peer_key=best["key"],
                peer_label=best["label"],
                peer_s=best["per_call_s"],
                ours_s=mine["per_call_s"],
                ours_melem_per_s=mine["melem_per_s"],
                ratio=best["per_call_s"] / mine["per_call_s"],
                status="ok",
            )
        )
    return rows


def goal_rows(report: dict) -> list:
    """One dict per goal, tau and goal shape measured in the run (see the module doc)."""
    target = report["machine"]["cpu_target"]
    threads = report["machine"]["gs_num_threads"]
    rows = []
    for shape, res in sorted(_goal_results(report).items()):
        for tau, key in OURS_ROWS.items():
            ours = _ok(res, key)
            if ours is None:
                continue
            rows += _peer_rows(res, shape, tau, ours, threads)
            limit = LIMITS.get(target, {}).get(tau)
            if limit is not None:
                rows.append(
                    _row(
                        shape,
                        tau,
                        "limit",
                        1.0,
                        threads,
                        ours_melem_per_s=ours["melem_per_s"],
                        limit_melem_per_s=limit,
                        ratio=ours["melem_per_s"] / limit,
                        status="ok",
                    )
                )
            if ours.get("thread_speedup") is not None:
                rows.append(
                    _row(
                        shape,
                        tau,
                        "threads",
                        THREAD_SCALING_GOAL,
                        threads,
                        ratio=ours["thread_speedup"],
                        status="ok",
                    )
                )
    return rows


def missing_goal_shapes(report: dict) -> list:
    found = _goal_results(report)
    return [shape for shape in GOAL_SHAPES if shape not in found]


def _fmt_s(s: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _verdict(row: dict) -> str:
    if row["met"] is None:
        return row.get("status", "")
    text = "met" if row["met"] else "**not met**"
    if row["kind"] != "peer" or row["threads"] != 1:
        if row["threads"] != GOAL_THREADS:
            text += f" (goal stated for {GOAL_THREADS} threads; this run: {row['threads']})"
    return text


def goal_markdown_row(row: dict, target: str) -> list:
    shape, tau = str(tuple(row["shape"])), f"{row['tau']:g}"
    if row["kind"] == "peer":
        what = (
            f"ours on {row['threads']} thread{'s' if row['threads'] != 1 else ''} vs {row['peer']}"
        )
        if row["ratio"] is None:
            return [shape, tau, what, "", "", "", f">= {row['goal']:g}x", _verdict(row)]
        ours = f"{_fmt_s(row['ours_s'])} ({row['ours_melem_per_s']:,.0f} M elem/s)"
        peer = f"{_fmt_s(row['peer_s'])} ({row['peer_label']})"
        ratio = f"{row['ratio']:.2f}x"
        goal = f">= {row['goal']:g}x"
    elif row["kind"] == "limit":
        what = f"ours on {row['threads']} threads vs the limit figure ({target})"
        ours = f"{row['ours_melem_per_s']:,.0f} M elem/s"
        peer = f"{row['limit_melem_per_s']:,.0f} M elem/s"
        ratio, goal = f"{row['ratio']:.2f}x", ">= 1x"
    else:
        what = f"ours {row['threads']} threads vs 1 thread"
        ours, peer = "", ""
        ratio, goal = f"{row['ratio']:.2f}x", f">= {row['goal']:g}x"
    return [shape, tau, what, ours, peer, ratio, goal, _verdict(row)]


GOAL_HEADER = ["shape", "tau", "comparison", "ours", "reference", "ratio", "goal", "verdict"]


def goals_markdown(report: dict, rows: list | None = None) -> list:
    """The goal table with a line for each goal shape the run did not measure."""
    rows = goal_rows(report) if rows is None else rows
    target = report["machine"]["cpu_target"]
    lines = [
        f"Goals of issue 15 for the soft forward ({GOAL_DTYPE}, last axis): ratio = "
        "reference time / our time (limit: our rate / the limit figure); per core = ours on "
        "1 thread against NumPy, which runs on one; a peer's strongest row counts.",
        "",
        "| " + " | ".join(GOAL_HEADER) + " |",
        "|" + "|".join("---" for _ in GOAL_HEADER) + "|",
    ]
    lines += ["| " + " | ".join(goal_markdown_row(r, target)) + " |" for r in rows]
    if target not in LIMITS:
        lines += ["", f"No limit figure for the `{target}` target (only avx512 and avx2)."]
    for shape in missing_goal_shapes(report):
        why = " (`--quick` skips it)" if shape in QUICK_SKIPPED_SHAPES else ""
        lines += [
            "",
            f"{shape}: not in this run{why}; `--shapes {shape[0]}x{shape[1]}` runs it.",
        ]
    return lines
