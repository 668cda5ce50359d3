"""Coalesced flushes: once per loop turn when idle, spaced out while work is waiting."""

from __future__ import annotations

import asyncio

from custom_components.saymon.coalesce import CoalescedFlush

INTERVAL = 0.1


class Owner:
    """Something with dirty state: counts flushes and says whether work is waiting."""

    def __init__(self) -> None:
        self.flushes: list[float] = []
        self.busy = False
        loop = asyncio.get_running_loop()
        self.flusher = CoalescedFlush(loop, self.flush, lambda: self.busy, INTERVAL)

    def flush(self) -> None:
        self.flushes.append(asyncio.get_running_loop().time())


async def test_idle_requests_flush_once_per_loop_turn() -> None:
    owner = Owner()
    for _ in range(100):
        owner.flusher.request()
    assert owner.flushes == []  # not inside the turn that asked
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(owner.flushes) == 1
    owner.flusher.request()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(owner.flushes) == 2  # idle: no spacing, the next turn flushes again


async def test_busy_requests_are_spaced_by_the_interval() -> None:
    owner = Owner()
    owner.busy = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 10 * INTERVAL:
        owner.flusher.request()
        await asyncio.sleep(0.005)
    elapsed = loop.time() - started
    assert 2 <= len(owner.flushes) <= elapsed / INTERVAL + 2
    gaps = [b - a for a, b in zip(owner.flushes, owner.flushes[1:], strict=False)]
    assert min(gaps) >= INTERVAL * 0.99
    owner.busy = False
    flushed = len(owner.flushes)
    owner.flusher.request()  # joins a flush still pending from the busy time, if any
    await asyncio.sleep(INTERVAL * 1.5)
    assert len(owner.flushes) == flushed + 1


async def test_busy_ending_flushes_at_the_due_time_and_now_flushes_at_once() -> None:
    owner = Owner()
    owner.flusher.request()
    await asyncio.sleep(0.01)
    assert len(owner.flushes) == 1
    owner.busy = True
    owner.flusher.request()
    await asyncio.sleep(INTERVAL / 4)
    assert len(owner.flushes) == 1  # waiting for the interval
    owner.flusher.now()  # e.g. stopping: flush what is dirty, drop the pending timer
    assert len(owner.flushes) == 2
    await asyncio.sleep(INTERVAL * 1.5)
    assert len(owner.flushes) == 2
    owner.flusher.request()
    owner.flusher.cancel()
    await asyncio.sleep(INTERVAL * 1.5)
    assert len(owner.flushes) == 2
