"""The Comet client's inbound side: one bounded queue, raw frames held back, one worker.

The read loop (python-engineio's, made inline by ``_socketio.py``) only appends each event to
one queue; one worker parses and delivers them in arrival order and yields to the event loop
between batches, so a storm never starts a task per event and a slow consumer never starves
the read loop, which answers Comet's pings. Beyond ``read_ahead`` queued events, further frames
are held raw (undecoded, in order) and reading goes on; only when the held frames reach
``max_held_bytes`` does reading pause (TCP backpressure: Comet keeps the rest) until half of
them are handled. Beyond ``queue_size`` events (reachable only when it is the smaller limit)
events are dropped, counted and reported, so the caller resyncs. Malformed events and frames are
dropped and counted too, logged once per kind (then at debug level); the stream goes on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import logging
import time
from typing import Any, Final, Protocol

from .errors import SaymonProtocolError
from .events import CometEvent, parse_event
from .stats import MALFORMED_FRAME, CometStats

_LOGGER = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 50_000
DEFAULT_READ_AHEAD: Final = 20_000
"""Queued events beyond which further frames are held raw, undecoded (see ``max_held_bytes``)."""
DEFAULT_MAX_HELD_BYTES: Final = 128 * 1024 * 1024
"""Raw frames held while the queue is full; beyond it reading pauses until half are handled."""
_BATCH: Final = 500
"""Events the worker handles at most before yielding to the event loop."""
_BATCH_SECONDS: Final = 0.05
"""Time after which the worker yields even within a batch (a slow consumer must not starve
the read loop, which answers Comet's pings)."""


class Reader(Protocol):
    """A connection's read loop, as far as held frames go back to it."""

    def fast_path(self, data: Any) -> bool:
        """Deliver ``data`` if it is a plain event; ``False`` if the library must decode it."""

    async def deliver_to_library(self, data: Any) -> None:
        """Hand ``data`` to python-socketio to decode."""


class EventGate(Protocol):
    """Decides which events are worth parsing and delivering (a rate limit, see ratelimit.py)."""

    def admit_raw(self, topic: str, args: tuple[Any, ...]) -> bool | None:
        """As an event arrives: deliver it, drop it, or ``None``: decide once it is parsed.

        Runs in the read loop: it must be quick and must not raise.
        """

    def admit_parsed(self, event: CometEvent) -> bool:
        """A parsed event the raw check could not decide: whether to deliver it."""


class Inbound:
    """Events received from Comet and not yet handed on, and the worker that hands them on."""

    def __init__(
        self,
        stats: CometStats,
        *,
        on_event: Callable[[CometEvent], None] | None,
        on_events_lost: Callable[[int], None],
        queue_size: int,
        read_ahead: int,
        max_held_bytes: int,
        gate: EventGate | None = None,
    ) -> None:
        """Count into ``stats``; ``on_events_lost`` (which must not raise) hears of overflows.

        ``gate`` sees each event as it arrives, before it is queued and parsed, and may drop
        it (a rate limit: a storm of events nobody will see must not cost a parse each, nor
        fill the queue); dropped events count as received.
        """
        self.stats = stats
        self._on_event = on_event
        self._on_events_lost = on_events_lost
        self._queue_size = queue_size
        self._read_ahead = read_ahead
        self._max_held_bytes = max_held_bytes
        self._gate = gate
        self._queue: deque[tuple[str, tuple[Any, ...], bool]] = deque()
        """Events to parse: topic, arguments, and whether the gate must check them once parsed."""
        self._queue_ready = asyncio.Event()
        self._held: deque[tuple[Reader, Any]] = deque()
        self._held_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._overflowing = False
        self._warned: set[str] = set()
        self.received = 0
        """Events enqueued so far (a packet that raised none carried no event)."""
        self.reader: Reader | None = None
        """The open connection's read loop; held frames of closed ones only count as events."""

    @property
    def backlog(self) -> int:
        """Events and frames received but not yet handed on (a storm in progress)."""
        return len(self._queue) + len(self._held)

    @property
    def holding(self) -> bool:
        """Whether messages are held raw: the queue is full, or earlier ones are still held."""
        return bool(self._held) or len(self._queue) >= self._read_ahead

    def detach(self) -> None:
        """The connection closes: a read loop waiting for room must see it go."""
        self._room.set()
        self.reader = None

    def clear(self) -> None:
        """Drop every queued event and held frame (the client stops)."""
        self._queue.clear()
        self._held.clear()
        self._held_bytes = 0

    # -- the read loop's side (inline: enqueue or hold only) ----------------------------------

    def enqueue(self, topic: str, *args: Any) -> None:
        """Queue one event; drop it (counted, reported) when the queue is full."""
        self.received += 1
        recheck = False
        if self._gate is not None:
            verdict = self._gate.admit_raw(topic, args)
            if verdict is False:
                self.stats.events[topic] += 1
                return
            recheck = verdict is None
        queue = self._queue
        if len(queue) >= self._queue_size:
            self.stats.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                _LOGGER.warning(
                    "SAYMON event queue is full (%d events); dropping events until it drains",
                    self._queue_size,
                )
            return
        queue.append((topic, args, recheck))
        self.stats.queue_peak = max(self.stats.queue_peak, len(queue))
        self._queue_ready.set()

    async def hold(self, reader: Reader, data: Any) -> None:
        """Keep ``reader``'s message raw, after those held before it, for the worker.

        Every message is held while :attr:`holding` (order is kept) until the worker has
        handed them all on. A full hold pauses the read loop until half of it is handled or
        the connection is closed.
        """
        held = self._held
        size = len(data) if isinstance(data, str | bytes) else 0
        if held and self._held_bytes + size > self._max_held_bytes:
            self.stats.reading_paused += 1
            while self._held_bytes > self._max_held_bytes // 2 and self.reader is reader:
                self._room.clear()
                await self._room.wait()
        held.append((reader, data))
        self._held_bytes += size
        self.stats.held_peak = max(self.stats.held_peak, len(held))
        self._queue_ready.set()

    def frame_rejected(self, reason: str) -> None:
        """Count and report a frame that is not valid Socket.IO (logged once, then at debug)."""
        self.stats.malformed[MALFORMED_FRAME] += 1
        self._log_drop(MALFORMED_FRAME, "Dropped a malformed frame from SAYMON Comet: %s", reason)

    # -- the worker -------------------------------------------------------------------------

    async def run(self) -> None:
        """Parse and deliver queued events in order, yielding to the loop between batches."""
        queue, held = self._queue, self._held
        while True:
            if not queue and not held:
                self._queue_ready.clear()
                if self._overflowing:
                    self._overflowing = False
                    self._on_events_lost(self.stats.dropped)
                await self._queue_ready.wait()
            if held:
                await self._release_held(_BATCH)
            deadline = time.monotonic() + _BATCH_SECONDS
            for _ in range(min(len(queue), _BATCH)):
                topic, args, recheck = queue.popleft()
                self._deliver(topic, args, recheck)
                if (now := time.monotonic()) > deadline:
                    break
            else:
                now = time.monotonic()
            self.stats.last_event = now
            if not self._room.is_set() and self._held_bytes <= self._max_held_bytes // 2:
                self._room.set()
            await asyncio.sleep(0)

    async def _release_held(self, limit: int) -> None:
        """Hand up to ``limit`` held messages on, in order, while the queue has room."""
        held, queue = self._held, self._queue
        current = self.reader
        while held and limit > 0 and len(queue) < self._read_ahead:
            limit -= 1
            reader, data = held.popleft()
            self._held_bytes -= len(data) if isinstance(data, str | bytes) else 0
            # A closed connection's plain events still count; its control packets do not.
            if not reader.fast_path(data) and reader is current:
                await reader.deliver_to_library(data)
        if not held:
            self._held_bytes = 0

    def _deliver(self, topic: str, args: tuple[Any, ...], recheck: bool) -> None:
        stats = self.stats
        try:
            event = parse_event(topic, args)
        except SaymonProtocolError as err:
            stats.malformed[topic] += 1
            self._log_drop(topic, "Dropped a malformed SAYMON %r event: %s", topic, err)
            return
        stats.events[topic] += 1
        if recheck and self._gate is not None and not self._gate.admit_parsed(event):
            return
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                _LOGGER.exception("Error handling a SAYMON %r event", topic)

    def _log_drop(self, kind: str, message: str, *args: Any) -> None:
        """Log the first drop of each kind as a warning, later ones at debug level."""
        if kind in self._warned:
            _LOGGER.debug(message, *args)
        else:
            self._warned.add(kind)
            _LOGGER.warning(message, *args)
