"""``scripts/bench``: run the measurements of issues 6 and 16 and print them beside their targets.

Every measurement at every scale runs in a child process (``python -m tools.bench.child``)
with a time limit; a failure or a timeout becomes a FAIL row with the reason, and the run
goes on. The table goes to stdout, the figures (with the machine's load before and after)
to a JSON file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
import datetime as dt
import json
import os
from pathlib import Path
import platform
import subprocess
import sys
import time
from typing import Any

from .child import RESULT_PREFIX
from .report import Figure, table

REPO = Path(__file__).resolve().parents[2]
DEFAULT_JSON_DIR = REPO / ".dev" / "bench"
SCALES = {"1": "1x", "5": "5x", "10": "10x"}
NAMES = {
    "1": "pipeline",
    "2": "latency",
    "3": "mirror",
    "4": "bridge",
    "5": "startup",
    "6": "memory",
    "7": "traps",
    "8": "metrics",
}


@dataclass(slots=True)
class Job:
    """One child run."""

    name: str
    params: dict[str, Any]
    timeout: float
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


def plan(names: Sequence[str], scales: Sequence[str], quick: bool) -> list[Job]:
    """The child runs for the chosen measurements and scales, in a sensible order."""
    jobs: list[Job] = []
    for name in names:
        for factor in scales:
            n = int(factor)
            label = SCALES[factor]
            params: dict[str, Any] = {"scale": label, "factor": n}
            if name == "pipeline":
                params |= {"objects": 2000 * n, "duration": (5 if quick else 30) if n == 1 else 5}
                jobs.append(Job(name, params, 420))
            elif name == "latency":
                params |= {
                    "objects": 2000,
                    "rate": 1000 * n,
                    "duration": 5 if quick or n > 1 else 10,
                }
                jobs.append(Job(name, params, 240))
            elif name == "mirror":
                params |= {"changes": 20_000 * n, "objects": 2000}
                jobs.append(Job(name, params, 300))
            elif name == "bridge":
                # 10x is the 100,000-event storm of the issue.
                params |= {"events": 10_000 * n, "objects": 2000}
                jobs.append(Job(name, params, 420))
            elif name == "startup":
                params |= {"objects": 2000 * n}
                jobs.append(Job(name, params, 300))
            elif name == "memory":
                params |= {"objects": 2000 * n}
                jobs.append(Job(name, params, 240))
            elif name == "traps" and n == 1:
                # The storm: 10,000 traps/s for 10 s (one Python process parses ~40k
                # events/s: higher scales would measure the parser, not the limit).
                params |= {"objects": 500, "rate": 100, "traps": 10_000}
                params |= {"duration": 5 if quick else 10, "noisy": 50}
                jobs.append(Job(name, params, 300))
            elif name == "metrics" and n == 1:
                # The scale: 10,000 objects x ~10 metrics, a 60 s period.
                stream = {"mode": "stream", "objects": 10_000, "rounds": 3 if quick else 8}
                jobs.append(Job(name, params | stream, 1200))
                jobs.append(Job(name, params | {"mode": "memory", "objects": 2000}, 1200))
    return jobs


def run_job(job: Job) -> None:
    """Run one child; fill in its figures or its error."""
    started = time.monotonic()
    argv = [sys.executable, "-m", "tools.bench.child", job.name, json.dumps(job.params)]
    try:
        proc = subprocess.run(  # noqa: S603 - our own module
            argv,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=job.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        job.error = f"timed out after {job.timeout:.0f} s"
        _tail(err.stderr if isinstance(err.stderr, str) else "")
    else:
        result = None
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX) :])
        if result is None:
            job.error = f"exited {proc.returncode} without a result"
            _tail(proc.stderr)
        else:
            job.figures = [Figure.from_json(f) for f in result["figures"]]
            job.error = result["error"]
            if job.error:
                _tail(proc.stderr)
    job.seconds = time.monotonic() - started


def _tail(text: str) -> None:
    for line in text.splitlines()[-15:]:
        sys.stderr.write(f"    {line}\n")


def environment() -> dict[str, Any]:
    """What the figures depend on."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    from homeassistant.const import __version__ as ha_version

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "python": platform.python_version(),
        "home_assistant": ha_version,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
    }


def _names(only: str | None) -> list[str]:
    if not only:
        return list(NAMES.values())
    chosen = []
    for raw in only.split(","):
        item = raw.strip()
        name = NAMES.get(item, item)
        if name not in NAMES.values():
            raise SystemExit(
                f"unknown measurement {item!r}; choose from {', '.join(NAMES)} or names"
            )
        chosen.append(name)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print, write JSON. Exit status 1 when a target failed."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmarks of the SAYMON integration (issue 6): figures beside targets.",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, 1x scale only")
    parser.add_argument(
        "--only",
        help="measurements to run, by number or name: "
        + ", ".join(f"{k}={v}" for k, v in NAMES.items()),
    )
    parser.add_argument("--scales", help="comma-separated factors out of 1,5,10 (default all)")
    parser.add_argument("--json", type=Path, help=f"result file (default {DEFAULT_JSON_DIR}/)")
    parser.add_argument("--list", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    scales = (args.scales or ("1" if args.quick else "1,5,10")).split(",")
    for factor in scales:
        if factor not in SCALES:
            parser.error(f"unknown scale {factor!r}; choose from 1, 5, 10")
    jobs = plan(_names(args.only), scales, args.quick)
    if args.list:
        for job in jobs:
            print(job.name, json.dumps(job.params))
        return 0
    env = environment()
    started = time.monotonic()
    for index, job in enumerate(jobs, 1):
        sys.stderr.write(
            f"[{index}/{len(jobs)}] {job.name} {job.params.get('scale', '')} "
            f"{json.dumps({k: v for k, v in job.params.items() if k not in ('scale', 'factor')})}\n"
        )
        run_job(job)
        status = f"error: {job.error}" if job.error else f"{len(job.figures)} figures"
        sys.stderr.write(f"    {job.seconds:.0f} s, {status}\n")
    env["load_after"] = os.getloadavg()
    env["seconds"] = round(time.monotonic() - started, 1)
    figures: list[Figure] = []
    for job in jobs:
        figures += job.figures
        if job.error:
            number = next(k for k, v in NAMES.items() if v == job.name)
            figures.append(
                Figure(
                    number,
                    f"{job.name} run",
                    None,
                    op="eq",
                    limit=0,
                    scale=str(job.params.get("scale", "")),
                    note=job.error,
                )
            )
    figures.sort(
        key=lambda f: (
            int(f.measurement),
            list(SCALES.values()).index(f.scale) if f.scale in SCALES.values() else 9,
        )
    )
    print(table(figures))
    failed = [f for f in figures if f.passed is False]
    print(
        f"\n{len(figures)} figures, {len(failed)} failed; {env['seconds']:.0f} s; "
        f"load average before {env['load_before'][0]:.2f}, after {env['load_after'][0]:.2f} "
        f"on {env['cpus']} CPUs"
    )
    path = args.json or DEFAULT_JSON_DIR / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"environment": env, "figures": [f.as_json() for f in figures]}
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    if args.json is None:
        (DEFAULT_JSON_DIR / "latest.json").write_text(path.read_text())
    print(f"JSON: {path}")
    return 1 if failed else 0
