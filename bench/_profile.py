"""Summarise a py-spy ``--format raw`` profile (collapsed stacks) by function.

    python -m bench._profile FILE [--top 25] [--filter aimctl]

py-spy writes one line per distinct stack: ``frame;frame;...;frame COUNT``, each frame
``function (file:line)``. *Self* is the share of samples where the function is the innermost
frame; *inclusive* the share where it is anywhere on the stack (counted once per stack).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["function_of", "main", "summarize"]

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def function_of(frame: str) -> str:
    """``name (path/to/file.py:12)`` -> ``name (file.py)``; lines are merged."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m.group("file")
    short = "/".join(path.split("/")[-2:]) if "/" in path else path
    return f"{m.group('fn')} ({short})"


def summarize(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str]]:
    """(total samples, self samples by function, inclusive samples by function)."""
    total = 0
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for line in lines:
        line = line.rstrip("\n")
        if not line or " " not in line:
            continue
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = [function_of(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for fn in set(frames):
            incl[fn] += count
    return total, own, incl


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._profile", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--filter", default="", help="only functions whose text contains this")
    args = parser.parse_args(argv)
    total, own, incl = summarize(args.file.read_text().splitlines())
    if not total:
        print("no samples")
        return 1
    for title, counts in (("self", own), ("inclusive", incl)):
        print(f"-- {title} ({total} samples)")
        shown = 0
        for fn, n in counts.most_common():
            if args.filter and args.filter not in fn:
                continue
            print(f"{100 * n / total:6.1f}%  {fn}")
            shown += 1
            if shown >= args.top:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
