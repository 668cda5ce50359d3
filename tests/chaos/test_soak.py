"""Soak: a steady mixed load with reconnects, watching memory, queues, tasks and warnings.

The simulator changes states at ``SAYMON_CHAOS_SOAK_RATE`` per second (each change is a
``state-change`` plus, often, ``incidents`` and ``incident-count``: a few hundred Comet events per
second), renames an object every two seconds (``model-changed`` and a REST read) and drops
every Comet connection every ``SAYMON_CHAOS_SOAK_RECONNECT_SECONDS`` (a reconnect and a
resync).

Every sample records the process RSS, the Python heap (tracemalloc, without allocations made
in the simulator's and the test's own files), the asyncio tasks (without the in-process
servers' connection handlers), WARNING+ log records, and where work is waiting: the Comet
client's event queue (and raw frames it holds), the simulator's outgoing Engine.IO queues
(what SAYMON has sent that the client has not read yet), the MQTT mirror's queue and
unacknowledged messages, how far the storm is behind its schedule, Home Assistant's bus
listeners and the event loop's pending timers.

Why the heap is compared *settled*: this machine does not always keep up with the offered
load (the simulator, Home Assistant, the integration and the mirror share one process).
Whatever is not handled yet waits in those queues, and under load the heap figure is mostly
that backlog: it swings by tens of MB and says nothing about a leak. The run is therefore cut
in two storms. After the warm-up storm (the first fifth) and after the main one, the load
stops and the test waits until every queue is empty, no resync or REST read runs and the
entry is connected, collects garbage, and takes a tracemalloc snapshot. The asserted growth is
the second settled heap minus the first (long form: below :data:`HEAP_TOLERANCE_MB`); both
forms assert that the backlog drains. The growth under load (median of the last three samples
minus the median of the first three after the warm-up, as before) is still reported, with the
queue depths beside it, and the ten allocation sites that grew most between the two settled
snapshots are reported too. Measured on 2 shared cores: when the machine fell behind, the MQTT
mirror's queue reached 18,774 messages and the heap under load followed it (correlation 0.94,
0.9 KB per waiting message, up to 24 MB), yet it drained in 21 s and the settled heap grew
2 MB. What the settled figure still holds is bounded: the model's memory of closed incident
ids filling up to its 10,000, and Home Assistant's per-entity and per-device caches.

The heap figure leaves out what the simulator's and the tests' files allocate, so the tests'
ledgers must keep their own copies of what they record (:func:`.ledger.own_copy`): an incident
id kept as fired was allocated by the integration's decoder and counted as its memory.

Tasks likewise. The simulator's own tasks (python-engineio's server sockets and their ping
tasks, which outlive a dropped socket by up to the 25 s ping interval, aiohttp's request
handlers and accepts, the storm) are left out of what is asserted: the settled count must come
back to the warm-up's (within :data:`TASK_SLACK`), and under load it stays within
:data:`TASK_TOLERANCE` above that. What remains is Home Assistant's and the integration's (the
Comet supervisor, worker and Engine.IO loops, a resync with its history read and parallel REST
reads, REST reads of renamed objects). The extra tasks at the peak and the missing ones at the
low are named (task name and coroutine, the simulator's marked) in the report.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass
import gc
import hashlib
import json
import logging
import os
from pathlib import Path
import statistics
import time
import tracemalloc
from typing import Any

import pytest

from custom_components.saymon.api import comet as comet_module
from custom_components.saymon.api.comet import CometClient
from custom_components.saymon.hub import SaymonHub
from tools.simulator import EVENT_STATE_CHANGE, SaymonSimulator

from . import report
from .conftest import MakeRig
from .ledger import BusLedger
from .rig import BUSY_TASKS, ChaosRig, client_tasks, poll, task_kind
from .settings import (
    LONG,
    SOAK_FRAMES,
    SOAK_OBJECTS,
    SOAK_RATE,
    SOAK_RECONNECT_SECONDS,
    SOAK_SECONDS,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(int(SOAK_SECONDS) + 600)]

HEAP_TOLERANCE_MB = 8.0
"""Largest settled heap growth accepted over the long soak (after the warm-up)."""
TASK_TOLERANCE = 15
"""Most tasks (without the simulator's) under load beyond the settled count: a resync alone
runs seven (itself, its history read and five parallel REST reads), a rename adds a REST read."""
TASK_SLACK = 3
"""Largest settled task count above the warm-up's settled count."""
DRAIN_TIMEOUT = 300.0
"""Seconds the backlog may take to drain once the load stops."""
HISTORY_KEPT = 5000
"""The simulator keeps only this many closed incidents (its own memory must stay flat too)."""
TOP_SITES = 10
CALLERS_SHOWN = 3
_PAGE = os.sysconf("SC_PAGE_SIZE")
_MB = 1024 * 1024
_ROOT = str(Path(__file__).resolve().parents[2]) + os.sep


def _blob_id(path: str) -> str:
    """Git's blob id of a file (``git hash-object``): which version of it was measured."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


_PACKAGE = Path(comet_module.__file__).resolve().parents[1]
MEASURED = {
    name: _blob_id(str(_PACKAGE / name))[:12]
    for name in ("api/comet.py", "api/live.py", "api/model.py", "mqtt/broker.py", "mqtt/mirror.py")
}
"""Git blob ids of the integration files this run imported (they change often; the soak
measures the working tree as it was when the test started)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the process under load."""

    at: float
    rss_mb: float
    heap_mb: float
    tasks: int
    own_tasks: int
    """Tasks without the simulator's (its Engine.IO sockets, HTTP handlers and the storm)."""
    warnings: int
    events: int
    comet_queue: int
    """Events in the Comet client's queue plus raw frames it holds."""
    sim_backlog: int
    """Packets the simulator queued for its Comet sockets and did not write yet."""
    sim_backlog_mb: float
    mirror_queue: int
    mirror_inflight: int
    storm_lag: int
    """State changes the storm is behind its schedule (the loop was too busy to make them)."""
    listeners: int
    timers: int

    def row(self) -> list[Any]:
        """The compact JSON form (see :data:`SAMPLE_COLUMNS`)."""
        return [
            round(self.at),
            round(self.rss_mb, 1),
            round(self.heap_mb, 2),
            self.tasks,
            self.comet_queue,
            self.sim_backlog,
            round(self.sim_backlog_mb, 2),
            self.mirror_queue,
            self.mirror_inflight,
            self.storm_lag,
            self.listeners,
            self.timers,
        ]


SAMPLE_COLUMNS = (
    "s",
    "rss_mb",
    "heap_mb",
    "tasks",
    "comet_queue",
    "sim_backlog",
    "sim_backlog_mb",
    "mirror_queue",
    "mirror_inflight",
    "storm_lag",
    "listeners",
    "timers",
)


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * _PAGE / _MB


_FILTERS = [
    tracemalloc.Filter(inclusive=False, filename_pattern="*/tests/*"),
    tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__),
]


def snapshot() -> tracemalloc.Snapshot:
    """Traced memory outside the simulator, the test's ledgers and tracemalloc itself."""
    return tracemalloc.take_snapshot().filter_traces(_FILTERS)


def heap_mb(snap: tracemalloc.Snapshot | None = None) -> float:
    snap = snap or snapshot()
    return sum(stat.size for stat in snap.statistics("filename")) / _MB


def growth(values: list[float]) -> float:
    head, tail = values[:3], values[-3:]
    return statistics.median(tail) - statistics.median(head)


def _where(frame: tracemalloc.Frame) -> str:
    name = frame.filename.replace(_ROOT, "")
    if "site-packages/" in name:
        name = name.split("site-packages/", 1)[1]
    elif "/lib/python3" in name:
        name = "stdlib:" + name.rsplit("/", 1)[1]
    return f"{name}:{frame.lineno}"


def top_growth(after: tracemalloc.Snapshot, before: tracemalloc.Snapshot) -> list[str]:
    """The allocation sites that grew most, ``file:line +KB (+blocks) <- callers``.

    Sites are ranked by the innermost frame; the callers shown are those of the call path
    that grew most at that site.
    """
    by_site: defaultdict[tracemalloc.Frame, list[tracemalloc.StatisticDiff]] = defaultdict(list)
    for diff in after.compare_to(before, "traceback"):
        by_site[diff.traceback[-1]].append(diff)  # the innermost frame is the last one
    ranked = sorted(
        by_site.items(), key=lambda item: sum(d.size_diff for d in item[1]), reverse=True
    )
    sites: list[str] = []
    for frame, diffs in ranked[:TOP_SITES]:
        size = sum(d.size_diff for d in diffs)
        count = sum(d.count_diff for d in diffs)
        path = max(diffs, key=lambda d: d.size_diff).traceback
        callers = [_where(caller) for caller in reversed(list(path)[:-1])][:CALLERS_SHOWN]
        sites.append(
            " <- ".join([f"{_where(frame)} {size / 1024:+.0f} KB ({count:+d} blocks)", *callers])
        )
    return sites


def heap_vs_backlog(samples: list[Sample]) -> str:
    """How well the work waiting in queues explains the heap under load (a linear fit)."""
    waiting = [s.comet_queue + s.sim_backlog + s.mirror_queue + s.mirror_inflight for s in samples]
    heap = [s.heap_mb for s in samples]
    if len(samples) < 3 or len(set(waiting)) < 2 or len(set(heap)) < 2:
        return "-"
    fit = statistics.linear_regression(waiting, heap)
    r = statistics.correlation(waiting, heap)
    return (
        f"r {r:.2f}: {fit.slope * 1024:.2f} KB per waiting message, "
        f"{fit.intercept:.1f} MB with none waiting"
    )


def comet_waiting(comet: CometClient) -> int:
    """Events queued in the client plus raw frames held back (when it holds any)."""
    return comet.backlog  # the depth is what is measured


def sim_backlog(sim: SaymonSimulator) -> tuple[int, int]:
    """Packets and bytes the simulator's Engine.IO sockets have queued but not written."""
    server = sim.comet._sio  # the simulator's own server, read only
    if server is None:
        return 0, 0
    packets = size = 0
    for socket in list(server.eio.sockets.values()):
        waiting = list(getattr(socket.queue, "_queue", ()))
        for pkt in waiting:
            if pkt is None:
                continue
            packets += 1
            data = getattr(pkt, "data", None)
            if isinstance(data, str | bytes):
                size += len(data)
    return packets, size


def mirror_depth(rig: ChaosRig) -> tuple[int, int]:
    stats = rig.mirror.transport.stats()
    return int(stats.get("queued") or 0), int(stats.get("inflight") or 0)


def listener_count(rig: ChaosRig) -> int:
    return sum(rig.hass.bus.async_listeners().values())


def timer_count() -> int:
    return len(getattr(asyncio.get_running_loop(), "_scheduled", ()))


def drained(rig: ChaosRig) -> bool:
    """Nothing waits anywhere: every queue empty, no resync or REST read, connected."""
    hub = rig.hub
    names = {task.get_name() for task in asyncio.all_tasks()}
    return (
        hub.connected
        and hub.comet.connected
        and rig.mirror.transport.connected
        and comet_waiting(hub.comet) == 0
        and sim_backlog(rig.sim)[0] == 0
        and mirror_depth(rig) == (0, 0)
        and not names.intersection(BUSY_TASKS)
    )


@dataclass(slots=True)
class Settled:
    """The process with the load stopped and every queue drained."""

    after: float
    """Seconds the backlog took to drain."""
    heap_mb: float
    rss_mb: float
    tasks: Counter[str]
    snapshot: tracemalloc.Snapshot
    closed_ids: int
    """Closed incident ids the model remembers (bounded by ``CLOSED_MEMORY``)."""


async def settle(rig: ChaosRig) -> Settled:
    """Wait for the backlog to drain, collect garbage and look at the heap and tasks."""
    started = time.monotonic()
    assert await poll(lambda: drained(rig), DRAIN_TIMEOUT, 0.2), (
        f"backlog not drained in {DRAIN_TIMEOUT} s: Comet {comet_waiting(rig.hub.comet)}, "
        f"simulator {sim_backlog(rig.sim)}, mirror {mirror_depth(rig)}"
    )
    after = time.monotonic() - started
    await rig.hass.async_block_till_done()
    gc.collect()
    snap = snapshot()
    return Settled(
        after=after,
        heap_mb=heap_mb(snap),
        rss_mb=rss_mb(),
        tasks=Counter(task_kind(task) for task in client_tasks()),
        snapshot=snap,
        closed_ids=len(getattr(rig.hub.model, "_closed", ())),
    )


_SIMULATOR_TASKS = (
    "AsyncSocket.",
    "AsyncServer.",
    "RequestHandler.",
    "BaseSelectorEventLoop._accept_connection",
    "chaos-storm:",
)
"""Coroutines of the simulator's side: python-engineio's server sockets, aiohttp's server and
the listeners' accepts (Home Assistant and the integration run no server here)."""


def simulator_task(kind: str) -> bool:
    """Whether a task (by :func:`task_kind`) belongs to the simulator, not Home Assistant."""
    return kind.startswith(_SIMULATOR_TASKS)


def own_count(kinds: Counter[str]) -> int:
    """How many of the tasks are not the simulator's."""
    return sum(count for kind, count in kinds.items() if not simulator_task(kind))


def difference(more: Counter[str], less: Counter[str]) -> str:
    """What ``more`` has beyond ``less``, as ``3 x kind, ...`` (the simulator's marked)."""
    extra = more - less
    return (
        ", ".join(
            f"{count} x {kind}{' (simulator)' if simulator_task(kind) else ''}"
            for kind, count in extra.most_common()
        )
        or "none"
    )


class Soak:
    """The load, the sampling and the tallies of one soak run."""

    def __init__(self, rig: ChaosRig, hub: SaymonHub) -> None:
        self.rig = rig
        self.sim = rig.sim
        self.comet = hub.comet
        self.interval = 10.0 if LONG else 2.0
        self.samples: list[Sample] = []
        self.reconnects = 0
        self.started = time.monotonic()
        self.events_before = sum(hub.comet.stats.events.values())
        self.changes_before = self.sim.counters.events_published[EVENT_STATE_CHANGE]
        self.renamable = [oid for oid in self.sim.model.objects if oid != self.sim.model.root_id]
        self.next_reconnect = self.started + SOAK_RECONNECT_SECONDS
        self.next_rename = self.started + 2.0
        self.next_sample = self.started + self.interval
        self.peak: tuple[int, Counter[str]] = (0, Counter())
        self.low: tuple[int, Counter[str]] = (1 << 30, Counter())
        self.offered = 0

    def events(self) -> int:
        return sum(self.rig.hub.comet.stats.events.values()) - self.events_before

    async def storm(self, seconds: float) -> None:
        """One storm of ``seconds`` at the soak rate, with renames, reconnects and sampling."""
        begun = time.monotonic()
        offered_before = self.offered
        storm = self.rig.storm(seconds, SOAK_RATE)
        try:
            while not storm.done() or time.monotonic() - begun < seconds:
                now = time.monotonic()
                self.offered = offered_before + min(
                    int((now - begun) * SOAK_RATE), int(seconds * SOAK_RATE)
                )
                if time.monotonic() - begun < seconds:
                    await self._disturb(now)
                if now >= self.next_sample:
                    self._sample(now)
                    self.next_sample += self.interval
                await asyncio.sleep(0.1)
            await storm
        finally:
            storm.cancel()

    async def _disturb(self, now: float) -> None:
        if now >= self.next_reconnect:
            await self.sim.drop_connections()
            self.reconnects += 1
            self.next_reconnect += SOAK_RECONNECT_SECONDS
        if now >= self.next_rename:
            object_id = self.renamable[int(now) % len(self.renamable)]
            await self.sim.rename_object(object_id, f"Renamed {int(now)}")
            self.next_rename += 2.0

    def _sample(self, now: float) -> None:
        history = self.sim.model.incidents.history
        for old in list(history)[: max(0, len(history) - HISTORY_KEPT)]:
            del history[old]
        tasks = client_tasks()
        kinds = Counter(task_kind(task) for task in tasks)
        if len(tasks) > self.peak[0]:
            self.peak = (len(tasks), kinds)
        if len(tasks) < self.low[0]:
            self.low = (len(tasks), kinds)
        backlog, backlog_bytes = sim_backlog(self.sim)
        mirror_queue, mirror_inflight = mirror_depth(self.rig)
        changes = self.sim.counters.events_published[EVENT_STATE_CHANGE] - self.changes_before
        self.samples.append(
            Sample(
                at=now - self.started,
                rss_mb=rss_mb(),
                heap_mb=heap_mb(),
                tasks=len(tasks),
                own_tasks=sum(1 for kind in kinds.elements() if not simulator_task(kind)),
                warnings=self.rig.logs.by_level["WARNING"] + len(self.rig.logs.errors()),
                events=self.events(),
                comet_queue=comet_waiting(self.rig.hub.comet),
                sim_backlog=backlog,
                sim_backlog_mb=backlog_bytes / _MB,
                mirror_queue=mirror_queue,
                mirror_inflight=mirror_inflight,
                storm_lag=max(0, self.offered - changes),
                listeners=listener_count(self.rig),
                timers=timer_count(),
            )
        )


async def test_soak(make_rig: MakeRig) -> None:
    rig = await make_rig(objects=SOAK_OBJECTS, seed=11)
    hub = await rig.start()
    # phcc runs the loop in debug mode (slow-callback checks, coroutine origins): several
    # times slower than Home Assistant in production, and its slow-callback warnings are
    # about the harness. The soak runs the loop as production does.
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(False)
    tracemalloc.start(max(1, SOAK_FRAMES))
    warm_up = SOAK_SECONDS / 5
    soak = Soak(rig, hub)
    try:
        await soak.storm(warm_up)
        first = await settle(rig)
        soak.next_sample = time.monotonic() + soak.interval
        main_started = time.monotonic()
        await soak.storm(SOAK_SECONDS - warm_up)
        loaded = time.monotonic() - main_started + warm_up
        last = await settle(rig)
    finally:
        tracemalloc.stop()
        loop.set_debug(debug)
    events = soak.events()
    samples = soak.samples
    steady = [s for s in samples if s.at >= warm_up] or samples
    rss_growth = growth([s.rss_mb for s in steady])
    heap_under_load = growth([s.heap_mb for s in steady])
    heap_settled = last.heap_mb - first.heap_mb
    tasks = [s.tasks for s in samples]
    own = [s.own_tasks for s in samples]
    warnings = samples[-1].warnings - samples[0].warnings
    sites = top_growth(last.snapshot, first.snapshot)
    worst = max(samples, key=lambda s: s.heap_mb)
    verdict = await rig.verify(
        "soak",
        f"{loaded:.0f} s at {SOAK_RATE:.0f} changes/s, {soak.reconnects} reconnects",
    )
    row = {
        "seconds": round(loaded),
        "events": events,
        "events_per_s": round(events / loaded),
        "offered_changes": soak.offered,
        "reconnects": soak.reconnects,
        "rss_growth_mb": round(rss_growth, 2),
        "heap_growth_mb": round(heap_settled, 2),
        "heap_settled_mb": [round(first.heap_mb, 2), round(last.heap_mb, 2)],
        "heap_under_load_growth_mb": round(heap_under_load, 2),
        "heap_peak": f"{worst.heap_mb:.1f} MB at {worst.at:.0f} s",
        "heap_vs_backlog": heap_vs_backlog(samples),
        "tracemalloc_frames": SOAK_FRAMES,
        "drain_s": [round(first.after, 1), round(last.after, 1)],
        "comet_queue_max": max(s.comet_queue for s in samples),
        "comet_queue_peak": hub.comet.stats.queue_peak,
        "sim_backlog_max": max(s.sim_backlog for s in samples),
        "sim_backlog_mb_max": round(max(s.sim_backlog_mb for s in samples), 2),
        "mirror_queue_max": max(s.mirror_queue for s in samples),
        "mirror_inflight_max": max(s.mirror_inflight for s in samples),
        "storm_lag_max": max(s.storm_lag for s in samples),
        "listeners": f"{min(s.listeners for s in samples)}-{max(s.listeners for s in samples)}",
        "timers": f"{min(s.timers for s in samples)}-{max(s.timers for s in samples)}",
        "tasks": f"{min(tasks)}-{max(tasks)}",
        "own_tasks": f"{min(own)}-{max(own)}",
        "tasks_settled": [sum(first.tasks.values()), sum(last.tasks.values())],
        "own_tasks_settled": [own_count(first.tasks), own_count(last.tasks)],
        "tasks_extra_at_peak": difference(soak.peak[1], first.tasks),
        "tasks_missing_at_low": difference(first.tasks, soak.low[1]),
        "tasks_left_settled": difference(last.tasks, first.tasks),
        "warnings": warnings,
        "truth_equal": verdict.ok,
        "closed_ids_remembered": [first.closed_ids, last.closed_ids],
        "measured_blobs": ", ".join(f"{name} {blob}" for name, blob in MEASURED.items()),
        "top_growth": sites,
        "sample_columns": list(SAMPLE_COLUMNS),
        "samples": [s.row() for s in samples],
    }
    report.record("soak", row)
    logging.getLogger(__name__).info("soak: %s", row)
    assert verdict.ok, verdict.explain()
    assert len(steady) >= 3
    assert max(own) <= own_count(first.tasks) + TASK_TOLERANCE, (own, row["tasks_extra_at_peak"])
    assert own_count(last.tasks) <= own_count(first.tasks) + TASK_SLACK, row
    assert warnings <= 2, rig.logs.records[-5:]
    # The load really was sustained: each change is one to three Comet events, so a machine
    # keeping up sees at least SOAK_RATE events/s. A loaded CI machine falls behind (77/s was
    # seen on 2 cores shared with another test run); half is still a soak, not an idle run.
    assert events / loaded >= SOAK_RATE / 2, events / loaded
    if LONG:
        assert heap_settled < HEAP_TOLERANCE_MB, (heap_settled, sites)


def test_ledger_keeps_no_object_of_the_integration() -> None:
    """The bus ledger copies each incident id: the soak's heap figure must not see its ids.

    The heap figure leaves out what the tests' own files allocate; an id object kept as fired
    (allocated by the integration's decoder) counted every incident of the run as integration
    memory (+1.5 MB over a long soak, linear in time).
    """
    fired = json.loads('"5f1c0a9e\\ud800"')  # decoded like the integration's, a lone surrogate
    ledger = BusLedger(None)
    ledger.add("opened", fired, replayed=False)
    ledger.add("closed", fired, replayed=False)
    (kept,) = ledger.by_id
    assert kept == fired
    assert kept is not fired
    assert ledger.by_id[fired].opened == ledger.by_id[fired].closed == 1
