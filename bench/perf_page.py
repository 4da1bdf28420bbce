"""Regenerate the figures of docs/performance.md (and the speed claim of README.md and
docs/index.md) from ONE saved run of the suite:

    python bench/run.py                                     # saves bench/results/<date>-<target>.json
    python bench/perf_page.py bench/results/<date>-<target>.json

Only the text between marker comments is replaced; the prose around them is written by
hand and kept.  The markers, each on a line of its own:

    <!-- perf_page:NAME begin: ... -->  ...  <!-- perf_page:NAME end -->

NAME is ``main`` (the machine, the command, the soft forward against the strongest peers,
the goals of issue 15 and the ratio to the limit figures, every other row of the goal
shape against its strongest peer), ``extra`` (the second section's summary) or ``claim``
(the one-sentence speed claim; README.md and docs/index.md).  A block whose section the
run did not measure says so.  ``--check`` only reports whether the files are up to date
(exit 1 when not); ``--plot`` (default: benchmark.png next to the page) redraws the plot.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gsbench.goals import PEER_GOALS, goal_rows, goals_markdown  # noqa: E402
from gsbench.report import (  # noqa: E402
    _case,
    _markdown_table,
    extra_summary_markdown,
    fmt_time,
    machine_line,
    plot,
    problem_notes,
    strongest,
)

ROOT = Path(__file__).resolve().parent.parent
MIN_BENCH_VERSION = 2  # older runs time the float64 NumPy composition as "the" NumPy peer
CLAIM_SHAPE = (4096, 1000)
WIDTH = 88  # the generated paragraphs are wrapped to this many characters
MARKER = re.compile(
    r"^(?P<indent>[ \t]*)<!-- perf_page:(?P<name>\w+) begin(?P<rest>[^>]*)-->\n"
    r"(?P<body>.*?)"
    r"^[ \t]*<!-- perf_page:(?P=name) end -->$",
    flags=re.S | re.M,
)
# peer columns of the main table: (header, rows of which the fastest counts)
PEERS = (
    ("torch `F.gumbel_softmax`", ("torch.soft",)),
    ("JAX jitted (fastest key)", ("jax.soft", "jax.soft_rbg")),
    ("NumPy float64 `rng.gumbel`, cast", ("numpy.soft_f64",)),
)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _x(ratio: float | None) -> str:
    if ratio is None:
        return "not measured"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _faster(ratio: float | None) -> str:
    """'3.1x faster than' or, below 1, '1.25x slower than'."""
    if ratio is None:
        return "(not measured) faster than"
    return f"{_x(ratio)} faster than" if ratio >= 1 else f"{_x(1 / ratio)} slower than"


def _rate(melem: float) -> str:
    return f"{melem:,.0f}" if melem >= 100 else f"{melem:.3g}"


def run_sentence(report: dict, json_path: Path) -> str:
    stem = _rel(json_path.with_suffix(""))
    return (
        f"One run of `{_command(report)}` ({report['mode']} mode, {report['date']}, "
        f"{report['elapsed_s'] / 60:.0f} min): {machine_line(report)} Load average "
        f"(1, 5, 15 min) {report['load_average_start']} at the start, "
        f"{report['load_average_end']} at the end. Medians over repeats; float32; "
        f"`tau = 0.5` unless a row says otherwise; our calls write into a preallocated "
        f"`out=`. Every table, row and raw timing: `{stem}.{{md,json}}`."
    )


def _command(report: dict) -> str:
    """The command line, from the repository root, without the interpreter's path."""
    argv = report.get("argv")
    return "python bench/run.py" + ("" if not argv else " " + " ".join(argv))


def _main_table(results: list, threads: int) -> list:
    header = [
        "shape",
        "axis",
        "ours soft, M elem/s",
        "ours, 1 thread",
        "NumPy float32 in place (1 thread) / ours on 1 thread",
    ]
    header += [f"{name} / ours" for name, _ in PEERS]
    header += [f"ours {threads} vs 1 thread", "ours time / `np.copyto` time"]
    rows = []
    for res in results:
        soft = _case(res, "ours.soft")
        if soft is None:
            continue
        one = soft.get("one_thread")
        numpy = _case(res, "numpy.soft")
        per_core = numpy["per_call_s"] / one["per_call_s"] if numpy and one else None
        row = [
            str(tuple(res["shape"])),
            str(res["axis"]),
            f"{_rate(soft['melem_per_s'])} ({fmt_time(soft['per_call_s'])})",
            _rate(one["melem_per_s"]) if one else "",
            _x(per_core),
        ]
        for _, keys in PEERS:
            best = strongest(res, keys)
            row.append(_x(best and best["per_call_s"] / soft["per_call_s"]))
        copy = _case(res, "bound.copy")
        row.append(_x(soft.get("thread_speedup")))
        row.append(f"{soft['per_call_s'] / copy['per_call_s']:.1f}" if copy else "")
        rows.append(row)
    return _markdown_table(header, rows)


def _other_rows(res: dict) -> list:
    """Every other ours row of ``res`` that a peer is compared with, against the fastest
    such peer row."""
    header = ["ours", "M elem/s", "1 thread", "strongest peer measured", "peer time / ours"]
    rows = []
    for ours in res["cases"]:
        if ours["peer"] != "ours" or ours["status"] != "ok" or ours["key"] == "ours.soft":
            continue
        peers = [
            r
            for r in res["cases"]
            if r["peer"] not in ("ours", "bound")
            and r["compare_to"] == ours["key"]
            and r["status"] == "ok"
        ]
        if not peers:
            continue
        best = min(peers, key=lambda r: r["per_call_s"])
        one = ours.get("one_thread")
        rows.append(
            [
                ours["label"],
                _rate(ours["melem_per_s"]),
                _rate(one["melem_per_s"]) if one else "",
                best["label"],
                _x(best["per_call_s"] / ours["per_call_s"]),
            ]
        )
    return _markdown_table(header, rows)


def main_block(report: dict, json_path: Path) -> list:
    lines = [*_wrap(run_sentence(report, json_path), WIDTH), ""]
    results = report.get("results") or []
    if not results:
        return lines + ["The first section (`--suite main`) was not in this run."]
    threads = report["machine"]["gs_num_threads"]
    lines += _wrap(
        f"Soft forward, tau = 0.5; ours on {threads} threads unless the column says 1. "
        "Each peer column is peer time / our time (> 1: ours is faster), for the fastest "
        "version of the peer measured. The NumPy composition is the strongest a "
        "performance-minded user writes: float32, in place on buffers allocated once "
        "(`rng.random(dtype=np.float32, out=u)`, `np.log` twice in place, add the logits, "
        "scale, subtract the row max, `np.exp`, sum, divide); NumPy runs on one thread, so "
        "it is compared with ours on one thread. It has the log(0) hole: a uniform draw of "
        "exactly 0 (probability 2**-24 per element) gives an infinite noise. The float64 "
        "`Generator.gumbel` composition cast to float32 is shown for reference only.",
        WIDTH,
    )
    lines += [""] + _main_table(results, threads) + [""]
    goals = goals_markdown(report, report.get("goals") or goal_rows(report))
    lines += _wrap(goals[0], WIDTH) + goals[1:] + [""]
    for res in results:
        if res["dtype"] != "float32" or res["axis"] not in (-1, len(res["shape"]) - 1):
            continue
        others = _other_rows(res)
        notes = problem_notes(res)
        if len(others) <= 2 and not notes:
            continue
        lines += [f"At {tuple(res['shape'])}, the other rows against their strongest peer:", ""]
        lines += others if len(others) > 2 else []
        lines += [""] + [f"- {n}" for n in notes] + ([""] if notes else [])
    return lines[:-1] if lines[-1] == "" else lines


def extra_block(report: dict) -> list:
    extra = report.get("extra_results") or []
    if not extra:
        return ["The second section (`--suite extra`) was not in this run."]
    text = (
        "From the same run: each row's time / the time of the row named (for a peer, "
        "> 1: ours is faster); ours on "
        f"{report['machine']['gs_num_threads']} threads. The NumPy rows draw their noise "
        "in float32, in place (with the same log(0) hole)."
    )
    return [*_wrap(text, WIDTH), "", *extra_summary_markdown(extra)]


def claim(report: dict, docs_prefix: str) -> list:
    """The README / docs/index.md speed sentence, against the strongest peers."""
    res = next(
        (
            r
            for r in report.get("results") or []
            if tuple(r["shape"]) == CLAIM_SHAPE and r["dtype"] == "float32" and r["axis"] == -1
        ),
        None,
    )
    link = "[performance](performance.md)"  # the prefix goes in after wrapping: README.md
    # and docs/index.md then wrap alike (tests/test_docs.py compares the two)
    if res is None:
        return [f"No float32 {CLAIM_SHAPE} soft forward in the run behind {link}."]
    rows = {(tuple(r["shape"]), r["tau"], r.get("peer")): r for r in goal_rows(report)}
    numpy, torch, jax = (rows.get((CLAIM_SHAPE, 0.5, p)) for p in _peer_names())
    hard, torch_hard = _case(res, "ours.hard"), _case(res, "torch.hard")
    m = report["machine"]
    simd = "AVX-512" if "avx512f" in (m.get("cpu_flags") or []) else "AVX2"
    threads = m["gs_num_threads"]
    parts = [
        f"On a {m['cores']}-core {simd} machine (one run of the suite, {link}), a float32 "
        f"{CLAIM_SHAPE} soft sample runs {_faster(numpy and numpy['ratio'])} the float32 "
        "NumPy composition written in place, per core (ours on 1 thread; NumPy uses one), "
        f"and on {threads} threads {_faster(torch and torch['ratio'])} `F.gumbel_softmax` "
        f"and {_faster(jax and jax['ratio'])} a jitted JAX composition"
    ]
    if hard and torch_hard:
        parts.append(
            f"; a hard one runs {_faster(torch_hard['per_call_s'] / hard['per_call_s'])} "
            "`F.gumbel_softmax(hard=True)`"
        )
    load = (report.get("load_average_start") or [0.0])[0]
    if load > 0.75 * m["cores"]:  # say so where the figures are read
        parts.append(
            f" (measured on a busy machine: load average {load:g} on {m['cores']} cores, "
            "so read these as rough)"
        )
    text = "".join(parts) + "."
    return [
        line.replace(link, f"[performance]({docs_prefix}performance.md)")
        for line in _wrap(text, WIDTH - 2)
    ]


def _peer_names():
    return [peer for peer, *_ in PEER_GOALS]


def _wrap(text: str, width: int) -> list:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def fill(text: str, blocks: dict, path: Path) -> str:
    """Replace the body of every marker block of ``text`` whose name is in ``blocks``."""

    def body(m: re.Match) -> str:
        name, indent = m.group("name"), m.group("indent")
        lines = blocks[name]
        new = "".join(f"{indent}{line}".rstrip() + "\n" for line in lines)
        return f"{indent}<!-- perf_page:{name} begin{m.group('rest')}-->\n{new}{indent}<!-- perf_page:{name} end -->"

    names = [m.group("name") for m in MARKER.finditer(text)]
    unknown = [n for n in names if n not in blocks]
    if unknown:
        raise SystemExit(f"{_rel(path)}: unknown perf_page block(s) {unknown}")
    return MARKER.sub(body, text)


def load(json_path: Path) -> dict:
    report = json.loads(json_path.read_text())
    version = report.get("bench_version", 1)
    if version < MIN_BENCH_VERSION:
        raise SystemExit(
            f"{json_path} was made by an older suite (bench_version {version}): its NumPy "
            "peer is the float64 composition. Run `python bench/run.py` again."
        )
    return report


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python bench/perf_page.py",
        description="Regenerate the marked blocks of docs/performance.md, README.md and "
        "docs/index.md from one saved run of python bench/run.py.",
    )
    parser.add_argument("json", type=Path, help="the run: bench/results/<date>-<target>.json")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument(
        "--claims",
        type=Path,
        nargs="*",
        default=[ROOT / "README.md", ROOT / "docs" / "index.md"],
        help="files with a perf_page:claim block (default: README.md docs/index.md)",
    )
    parser.add_argument(
        "--plot", type=Path, default=None, help="the plot to redraw (default: next to the page)"
    )
    parser.add_argument("--no-plot", action="store_true", help="leave the plot alone")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file would change"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = load(args.json)
    page_blocks = {"main": main_block(report, args.json), "extra": extra_block(report)}
    targets = [(args.page, page_blocks)]
    for path in args.claims:
        prefix = "" if path.resolve().parent == args.page.resolve().parent else "docs/"
        targets.append((path, {"claim": claim(report, prefix)}))
    stale = []
    for path, blocks in targets:
        text = path.read_text(encoding="utf-8")
        if not MARKER.search(text):
            raise SystemExit(f"{_rel(path)} has no perf_page block")
        new = fill(text, blocks, path)
        if new != text:
            stale.append(_rel(path))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check:
        print("up to date" if not stale else "stale: " + ", ".join(stale))
        return 1 if stale else 0
    for name in stale:
        print(f"updated {name}")
    if not args.no_plot and report.get("results"):
        print(plot(report, args.plot or args.page.parent / "benchmark.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
