"""The bounded queue of incident reads: few in flight, each id once, a resync past the backlog."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from custom_components.saymon.api.incident_reads import BACKLOG, PARALLEL, IncidentReads


class Reads:
    """Real tasks and a gate: reads block until the test opens it."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.read: list[str] = []
        self.started: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.resyncs = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.queue = IncidentReads(self._read, self._spawn, self._resync)

    async def _read(self, incident_id: str) -> None:
        self.started.append(incident_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            self.read.append(incident_id)
        finally:
            self.in_flight -= 1

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro, name=name))

    def _resync(self) -> None:
        self.resyncs += 1

    async def finish(self) -> None:
        self.gate.set()
        await asyncio.gather(*self.tasks)


async def test_a_storm_of_reads_waits_for_a_few_readers_and_reads_each_id_once() -> None:
    reads = Reads()
    ids = [f"i{n}" for n in range(50)]
    for incident_id in ids + ids[10:20]:  # the second mention of a waiting id adds nothing
        reads.queue.add(incident_id)
    await asyncio.sleep(0)
    assert len(reads.tasks) == PARALLEL
    assert reads.queue.waiting == len(ids) - PARALLEL
    await reads.finish()
    assert reads.most_in_flight == PARALLEL
    assert sorted(reads.read) == sorted(ids)
    assert reads.started == ids  # in the order announced
    assert reads.queue.waiting == 0
    assert reads.resyncs == 0
    reads.queue.add("late")  # readers start again after they ran dry
    await asyncio.sleep(0)
    await asyncio.gather(*reads.tasks)
    assert reads.read[-1] == "late"


async def test_a_backlog_beyond_the_bound_becomes_one_resync() -> None:
    reads = Reads()
    for n in range(BACKLOG):
        reads.queue.add(f"i{n}")
    await asyncio.sleep(0)  # the readers take the first ones
    for n in range(BACKLOG, BACKLOG + PARALLEL):
        reads.queue.add(f"i{n}")
    assert reads.queue.waiting == BACKLOG
    assert reads.resyncs == 0
    reads.queue.add("one too many")
    assert reads.resyncs == 1
    assert reads.queue.overflows == 1
    assert reads.queue.waiting == 0
    assert reads.queue.peak == BACKLOG
    await reads.finish()
    assert len(reads.read) == PARALLEL  # what was in flight completes; the rest is the resync's
