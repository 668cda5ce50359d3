"""One flush of coalesced updates per event-loop turn, spaced out while a storm lasts.

The one coalescing policy of the integration: entity state writes and the MQTT mirror's
retained topics both go through the hub's :class:`Coalescer`. Each change only marks what is
dirty and asks for a flush; the flush runs once the current batch of Comet events is handled.
While a storm's work waits (at least :data:`STORM_BACKLOG` Comet events still queued, or MQTT
messages not yet sent) flushes are at least :data:`STORM_FLUSH_INTERVAL` apart, so something
that changes many times in a storm is written once per interval with its latest value instead
of once per batch. Events themselves (bus events, MQTT event topics) are never coalesced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

STORM_FLUSH_INTERVAL: Final = 0.2
"""Seconds between flushes while work is waiting."""
STORM_BACKLOG: Final = 500
"""Items waiting (Comet events, MQTT messages) from which a flush waits for the interval: a
steady stream (e.g. 1,000 events/s) leaves a few waiting between loop turns and must still be
shown at once; a storm leaves thousands."""


class CoalescedFlush:
    """Runs ``flush`` soon after :meth:`request`; while ``busy()``, at most every interval."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        flush: Callable[[], None],
        busy: Callable[[], bool],
        interval: float = STORM_FLUSH_INTERVAL,
    ) -> None:
        """Nothing runs before the first :meth:`request`."""
        self._loop = loop
        self._flush = flush
        self._busy = busy
        self._interval = interval
        self._handle: asyncio.Handle | None = None
        self._flushed_at = -interval

    def request(self) -> None:
        """Ask for a flush after the current loop turn (one is enough for many requests)."""
        if self._handle is None:
            self._handle = self._loop.call_soon(self._run)

    def now(self) -> None:
        """Flush at once (e.g. before stopping), whatever is pending or busy."""
        self.cancel()
        self._flushed_at = self._loop.time()
        self._flush()

    def cancel(self) -> None:
        """Drop a pending flush (the owner is going away)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        due = self._flushed_at + self._interval
        if self._busy() and self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._run)
            return
        self._handle = None
        self._flushed_at = self._loop.time()
        self._flush()


class Coalescer:
    """The hub's one :class:`CoalescedFlush`, shared by every consumer of the change stream.

    Each consumer registers its flush (and what says it is busy, e.g. an MQTT queue); one
    request flushes them all, in registration order, spaced out while any of them is busy.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Nothing is registered yet."""
        self._flushes: list[Callable[[], None]] = []
        self._busy: list[Callable[[], bool]] = []
        self._flush = CoalescedFlush(loop, self._run, self.busy)

    def add(
        self, flush: Callable[[], None], busy: Callable[[], bool] | None = None
    ) -> Callable[[], None]:
        """Flush ``flush`` with the others; returns what unregisters it."""
        self._flushes.append(flush)
        if busy is not None:
            self._busy.append(busy)

        def remove() -> None:
            self._flushes.remove(flush)
            if busy is not None:
                self._busy.remove(busy)

        return remove

    def busy_when(self, busy: Callable[[], bool]) -> None:
        """Also space flushes out while ``busy()`` (e.g. Comet events are queued)."""
        self._busy.append(busy)

    def busy(self) -> bool:
        """Whether any consumer has a storm's work waiting."""
        return any(busy() for busy in self._busy)

    def request(self) -> None:
        """Ask for a flush after the current loop turn."""
        self._flush.request()

    def now(self) -> None:
        """Flush at once (e.g. before a consumer stops)."""
        self._flush.now()

    def cancel(self) -> None:
        """Drop a pending flush (the hub is going away)."""
        self._flush.cancel()

    def _run(self) -> None:
        for flush in list(self._flushes):
            flush()
