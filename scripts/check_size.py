"""Size limits of the C++ sources: no file over 700 lines, no function over 80 lines.

Runs lizard (its "length": the lines from a function's signature to its closing brace)
over every C/C++ source under csrc/, prints the measurement (the largest files and the
longest functions), and exits 1 listing every file or function over its limit.

    python scripts/check_size.py [--max-file-lines 700] [--max-function-lines 80] [--top 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lizard

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".inc"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=ROOT / "csrc")
    p.add_argument("--max-file-lines", type=int, default=700)
    p.add_argument("--max-function-lines", type=int, default=80)
    p.add_argument("--top", type=int, default=5, help="how many of each to print")
    args = p.parse_args()

    files = sorted(f for f in args.root.rglob("*") if f.suffix in SUFFIXES and f.is_file())
    if not files:
        print(f"check_size: no C/C++ sources under {args.root}", file=sys.stderr)
        return 1
    sizes = []  # (lines, path)
    funcs = []  # (length, path:line, name)
    for f in files:
        rel = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
        with open(f, encoding="utf-8") as fh:
            sizes.append((sum(1 for _ in fh), str(rel)))
        info = lizard.analyze_file(str(f))
        for fn in info.function_list:
            funcs.append((fn.length, f"{rel}:{fn.start_line}", fn.name))
    sizes.sort(key=lambda t: (-t[0], t[1]))
    funcs.sort(key=lambda t: (-t[0], t[1]))

    print(f"check_size: {len(files)} files, {len(funcs)} functions under {args.root}")
    print(f"largest files (limit {args.max_file_lines} lines):")
    for n, path in sizes[: args.top]:
        print(f"  {n:5d}  {path}")
    print(f"longest functions (lizard length, limit {args.max_function_lines} lines):")
    for n, where, name in funcs[: args.top]:
        print(f"  {n:5d}  {where}  {name}")

    bad = [
        f"file {path}: {n} lines > {args.max_file_lines}"
        for n, path in sizes
        if n > args.max_file_lines
    ]
    bad += [
        f"function {name} at {where}: {n} lines > {args.max_function_lines}"
        for n, where, name in funcs
        if n > args.max_function_lines
    ]
    if bad:
        print("check_size: FAILED", file=sys.stderr)
        for line in bad:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("check_size: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
