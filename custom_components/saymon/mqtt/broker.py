"""The dedicated-broker client: publishes to an MQTT broker of the user's choice via paho-mqtt.

Like the ``api`` package, this client (``broker.py``, ``sender.py``, ``connection.py``,
``probe.py``) imports nothing from Home Assistant, so it can be tested against a real broker on
its own. This module is what Home Assistant's event loop calls; it never blocks. A publish costs
paho 30-57 us of CPU (``shared/mqtt-notes.md``), too much for the event loop, so
:meth:`DedicatedBroker.publish` only appends to a ``deque`` (O(1)) and one sender thread per
broker hands the messages to paho in order (``sender.py``), over one paho connection at a time
(``connection.py``). The options flow's connection test is ``probe.py``.

The password is never logged, put into exceptions, ``repr`` or ``stats()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from functools import partial
import logging
import secrets
import threading
import time
from typing import Any, Final

from ..api.backoff import Backoff
from .connection import BrokerConfig
from .outbox import MID_WINDOW, Message
from .sender import STATUS_OFFLINE, Sender

__all__ = ["DEFAULT_MAX_INFLIGHT", "DEFAULT_QUEUE_SIZE", "BrokerConfig", "DedicatedBroker"]
"""The client and the configuration it takes (defined in ``connection.py``)."""

_LOGGER = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 100_000
DEFAULT_MAX_INFLIGHT: Final = 1000


class DedicatedBroker:
    """Publishes to one broker from a bounded queue, in order, reconnecting forever.

    ``publish`` (event loop) appends to the queue; one thread (``saymon-mqtt ...``) connects,
    hands queued messages to paho while fewer than the in-flight limit are unacknowledged,
    and reconnects with capped exponential backoff (``reconnect_min`` to ``reconnect_max``
    seconds, with jitter) after any failure. The Last Will puts ``"offline"`` (retained,
    QoS 1) on ``status_topic`` when the connection dies; ``async_stop`` publishes it itself.

    ``on_connected`` runs in the event loop after every successful (re)connect;
    ``on_disconnected(reason)`` after an established connection is lost. Neither runs once
    ``async_stop`` has begun. A lost broker is logged once at WARNING, its return once at
    INFO; the attempts in between only at DEBUG.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: BrokerConfig,
        *,
        status_topic: str,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        reconnect_min: float = 1.0,
        reconnect_max: float = 30.0,
    ) -> None:
        """Nothing connects before :meth:`async_start`; messages published before it wait."""
        if not _valid_topic(status_topic):
            raise ValueError(f"invalid status topic {status_topic!r}")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if not 0 < max_inflight <= MID_WINDOW:
            raise ValueError(f"max_inflight must be between 1 and {MID_WINDOW}")
        if not 0 < reconnect_min <= reconnect_max:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self._loop = loop
        self._client_id = config.client_id or f"saymon-{secrets.token_hex(6)}"
        self._status_topic = status_topic
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._queue_size = queue_size
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._sender = Sender(
            config,
            self._client_id,
            status_topic,
            max_inflight=max_inflight,
            backoff=Backoff(base=reconnect_min, cap=reconnect_max),
            on_connected=partial(self._call_in_loop, self._dispatch_connected),
            on_disconnected=partial(self._call_in_loop, self._dispatch_disconnected),
            subscriptions=self._subscriptions,
            on_message=partial(self._call_in_loop, self._dispatch_message),
        )
        self._where = self._sender.where
        # The thread boundary: the loop appends, the sender thread pops (deque ops are atomic).
        self._queue = self._sender.queue
        self._counters = self._sender.counters
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._join: asyncio.Future[None] | None = None
        self._overflow_logged = False

    def __repr__(self) -> str:
        """Identify the broker without any credentials."""
        return f"<DedicatedBroker {self._where} client_id={self._client_id!r}>"

    @property
    def connected(self) -> bool:
        """Whether a connection is established (CONNACK accepted and not lost since)."""
        return self._sender.connected

    async def async_start(self) -> None:
        """Start the sender thread, which connects in the background; returns at once."""
        if self._thread is not None or self._stopped:
            return
        self._sender.open_wake()
        self._thread = threading.Thread(
            target=self._sender.run, name=f"saymon-mqtt {self._where}", daemon=True
        )
        self._thread.start()

    async def async_stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - bounds a thread
        """Publish ``offline``, flush for up to ``timeout`` s, disconnect, join the thread.

        A clean DISCONNECT is sent only once everything queued (``offline`` last) has been
        acknowledged; if ``timeout`` runs out first, the connection is dropped without one,
        so the broker publishes the Last Will (``offline``) instead of keeping ``online``.
        Messages still queued then are discarded and logged. Idempotent.
        """
        if self._join is not None:
            await asyncio.shield(self._join)
            return
        self._stopped = True
        thread = self._thread
        if thread is None:
            self._join = self._loop.create_future()
            self._join.set_result(None)
            return
        offline = Message(self._status_topic, STATUS_OFFLINE, 1, True)
        self._queue.append(offline)
        self._sender.request_stop(time.monotonic() + timeout)
        # Shielded: a cancelled caller must not leave the clean-up undone.
        self._join = self._loop.run_in_executor(None, self._finish, thread, offline)
        await asyncio.shield(self._join)

    def _finish(self, thread: threading.Thread, offline: Message) -> None:
        """Join the sender thread and release what it used (in an executor thread)."""
        thread.join()
        self._sender.close_wake()
        self._sender.connected = False
        undelivered = sum(1 for message in self._queue if message is not offline)
        if undelivered:
            _LOGGER.warning(
                "MQTT broker %s: %d queued messages were not delivered before stopping",
                self._where,
                undelivered,
            )

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> bool:
        """Queue a message; ``False`` if it was dropped (queue full, invalid, or stopped).

        O(1) and non-blocking; never raises. When the queue is full the *new* message is
        dropped (and counted), so what is queued keeps its order.
        """
        if self._stopped:
            return False
        if qos not in (0, 1, 2) or not _valid_topic(topic):
            self._counters.dropped_invalid += 1
            if not self._sender.outbox.invalid_logged:
                self._sender.outbox.invalid_logged = True
                _LOGGER.error("Not publishing to invalid MQTT topic %r with QoS %r", topic, qos)
            return False
        queue = self._queue
        size = len(queue)
        if size >= self._queue_size:
            self._counters.dropped_overflow += 1
            if not self._overflow_logged:
                self._overflow_logged = True
                _LOGGER.warning(
                    "MQTT queue for %s is full (%d messages); dropping new messages until "
                    "the broker catches up",
                    self._where,
                    size,
                )
            return False
        if self._overflow_logged and size < self._queue_size // 2:
            self._overflow_logged = False
            _LOGGER.info(
                "MQTT queue for %s has room again; %d messages dropped so far",
                self._where,
                self._counters.dropped_overflow,
            )
        queue.append(Message(topic, payload, qos, retain))
        if size >= self._counters.queue_peak:
            self._counters.queue_peak = size + 1
        if self._sender.idle:
            self._sender.wake()
        return True

    @property
    def backlog(self) -> int:
        """Messages queued and not yet handed to paho."""
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Whether :meth:`publish` drops new messages because the queue is full."""
        return len(self._queue) >= self._queue_size

    def stats(self) -> dict[str, int | float | str | None]:
        """Counters for diagnostics (no secrets)."""
        counters = self._counters
        sender = self._sender
        return {
            "queued": len(self._queue),
            "queue_peak": counters.queue_peak,
            "inflight": len(sender.outbox.inflight),
            "inflight_peak": counters.inflight_peak,
            "inflight_limit": sender.outbox.limit,
            "published": counters.published,
            "acknowledged": counters.acknowledged,
            "rejected": counters.rejected,
            "requeued": counters.requeued,
            "dropped_overflow": counters.dropped_overflow,
            "dropped_invalid": counters.dropped_invalid + counters.unsendable,
            "connects": counters.connects,
            "disconnects": counters.disconnects,
            "last_error": sender.last_error,
        }

    def subscribe(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        """Hand messages on ``topic`` to ``on_message`` in the event loop (before ``async_start``).

        The sender thread subscribes (QoS 1) on every connection, before ``on_connected`` runs.
        """
        self._subscriptions[topic] = on_message

    # -- what the sender thread reports, run in the event loop ------------------------------

    def _dispatch_message(self, topic: str, payload: bytes) -> None:
        on_message = self._subscriptions.get(topic)
        if not self._stopped and on_message is not None:
            on_message(payload)

    def _dispatch_connected(self) -> None:
        if not self._stopped and self._on_connected is not None:
            self._on_connected()

    def _dispatch_disconnected(self, reason: str) -> None:
        if not self._stopped and self._on_disconnected is not None:
            self._on_disconnected(reason)

    def _call_in_loop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` in the event loop (called from the sender thread)."""
        with contextlib.suppress(RuntimeError):  # the event loop is already closed
            self._loop.call_soon_threadsafe(callback, *args)


def _valid_topic(topic: object) -> bool:
    return isinstance(topic, str) and bool(topic) and "+" not in topic and "#" not in topic
