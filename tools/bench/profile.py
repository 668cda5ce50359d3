"""Summarise a py-spy ``--format raw`` profile: where the time goes, self and inclusive.

``python -m tools.bench.profile FILE [N]`` (``scripts/bench --profile NAME`` runs it).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
import sys


def _short(frame: str) -> str:
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    path = path.split("site-packages/")[-1].split("/work/main/")[-1].split("/checkout/")[-1]
    return f"{name} ({path})"


def summarise(path: str, top: int = 40) -> str:
    """The ``top`` functions by own samples and by samples including callees."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            frames = [_short(f) for f in stack.split(";")]
            total += samples
            own[frames[-1]] += samples
            for frame in set(frames):
                inclusive[frame] += samples
    out = [f"{total} samples", "", "own time:"]
    out += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "including callees:"]
    out += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(out)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40))
