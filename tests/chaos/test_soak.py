"""Soak: a steady mixed load with reconnects, watching memory, tasks and warnings.

The simulator changes states at ``SAYMON_CHAOS_SOAK_RATE`` per second (each change is a
``state-change`` plus, often, ``incidents`` and ``incident-count``: a few hundred Comet events per
second), renames an object every two seconds (``model-changed`` and a REST read) and drops
every Comet connection every ``SAYMON_CHAOS_SOAK_RECONNECT_SECONDS`` (a reconnect and a
resync). Samples: the process RSS, the Python heap (tracemalloc, without the simulator's and
the test's own allocations), the number of asyncio tasks (without the in-process servers'
connection handlers) and WARNING+ log records. Growth is the median of the last three samples
minus the median of the first three after the warm-up (the first fifth). The long form
(``scripts/chaos``, 10 minutes) asserts the heap grows less than :data:`HEAP_TOLERANCE_MB`;
both forms assert a flat task count, no warnings piling up and the final truth.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import statistics
import time
import tracemalloc

import pytest

from . import report
from .conftest import MakeRig
from .rig import client_tasks
from .settings import (
    LONG,
    SOAK_OBJECTS,
    SOAK_RATE,
    SOAK_RECONNECT_SECONDS,
    SOAK_SECONDS,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(int(SOAK_SECONDS) + 300)]

HEAP_TOLERANCE_MB = 8.0
"""Largest heap growth accepted over the long soak (after warm-up)."""
TASK_TOLERANCE = 10
HISTORY_KEPT = 5000
"""The simulator keeps only this many closed incidents (its own memory must stay flat too)."""
_PAGE = os.sysconf("SC_PAGE_SIZE")
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    rss_mb: float
    heap_mb: float
    tasks: int
    warnings: int
    events: int


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * _PAGE / _MB


def heap_mb() -> float:
    """Traced memory outside the simulator, the test's ledgers and tracemalloc itself."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(inclusive=False, filename_pattern="*/tests/*"),
            tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),
        ]
    )
    return sum(stat.size for stat in snapshot.statistics("filename")) / _MB


def growth(values: list[float]) -> float:
    head, tail = values[:3], values[-3:]
    return statistics.median(tail) - statistics.median(head)


async def test_soak(make_rig: MakeRig) -> None:
    rig = await make_rig(objects=SOAK_OBJECTS, seed=11)
    hub = await rig.start()
    sim = rig.sim
    stats = hub.comet.stats
    interval = 10.0 if LONG else 4.0
    renamable = [oid for oid in sim.model.objects if oid != sim.model.root_id]
    # phcc runs the loop in debug mode (slow-callback checks, coroutine origins): several
    # times slower than Home Assistant in production, and its slow-callback warnings are
    # about the harness. The soak runs the loop as production does.
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    tracemalloc.start(1)
    samples: list[Sample] = []
    reconnects = 0
    started = time.monotonic()
    events_before = sum(stats.events.values())
    storm = rig.storm(SOAK_SECONDS, SOAK_RATE)
    try:
        next_reconnect = started + SOAK_RECONNECT_SECONDS
        next_rename = started + 2.0
        next_sample = started + interval
        while time.monotonic() - started < SOAK_SECONDS:
            now = time.monotonic()
            if now >= next_reconnect:
                await sim.drop_connections()
                reconnects += 1
                next_reconnect += SOAK_RECONNECT_SECONDS
            if now >= next_rename:
                object_id = renamable[int(now) % len(renamable)]
                await sim.rename_object(object_id, f"Renamed {int(now)}")
                next_rename += 2.0
            if now >= next_sample:
                history = sim.model.incidents.history
                for old in list(history)[: max(0, len(history) - HISTORY_KEPT)]:
                    del history[old]
                samples.append(
                    Sample(
                        at=now - started,
                        rss_mb=rss_mb(),
                        heap_mb=heap_mb(),
                        tasks=len(client_tasks()),
                        warnings=rig.logs.by_level["WARNING"] + len(rig.logs.errors()),
                        events=sum(stats.events.values()) - events_before,
                    )
                )
                next_sample += interval
            await asyncio.sleep(0.1)
        await storm
    finally:
        storm.cancel()
        tracemalloc.stop()
        loop.set_debug(debug)
    elapsed = time.monotonic() - started
    events = sum(stats.events.values()) - events_before
    steady = samples[max(1, len(samples) // 5) :]
    rss_growth = growth([s.rss_mb for s in steady])
    heap_growth = growth([s.heap_mb for s in steady])
    tasks = [s.tasks for s in steady]
    warnings = samples[-1].warnings - samples[0].warnings
    verdict = await rig.verify(
        "soak",
        f"{elapsed:.0f} s at {SOAK_RATE:.0f} changes/s, {reconnects} reconnects",
    )
    report.record(
        "soak",
        {
            "seconds": round(elapsed),
            "events": events,
            "events_per_s": round(events / elapsed),
            "reconnects": reconnects,
            "rss_growth_mb": round(rss_growth, 2),
            "heap_growth_mb": round(heap_growth, 2),
            "tasks": f"{min(tasks)}-{max(tasks)}",
            "warnings": warnings,
            "truth_equal": verdict.ok,
            "samples": [
                [round(s.at), round(s.rss_mb, 1), round(s.heap_mb, 2), s.tasks] for s in samples
            ],
        },
    )
    logging.getLogger(__name__).info("soak samples: %s", samples)
    assert verdict.ok, verdict.explain()
    assert len(steady) >= 3
    assert max(tasks) - min(tasks) <= TASK_TOLERANCE, tasks
    assert warnings <= 2, rig.logs.records[-5:]
    # The load really was sustained: each change is one to three Comet events, so a machine
    # keeping up sees at least SOAK_RATE events/s. A loaded CI machine falls behind (77/s was
    # seen on 2 cores shared with another test run); half is still a soak, not an idle run.
    assert events / elapsed >= SOAK_RATE / 2, events / elapsed
    if LONG:
        assert heap_growth < HEAP_TOLERANCE_MB, [s.heap_mb for s in steady]
