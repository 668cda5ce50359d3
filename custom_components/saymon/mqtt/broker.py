"""The dedicated-broker client: publishes to an MQTT broker of the user's choice via paho-mqtt.

This module imports nothing from Home Assistant (like the ``api`` package), so it can be
tested against a real broker on its own. What was measured (``shared/mqtt-notes.md``) shapes it:

* paho-mqtt 2.1.0 silently loses QoS 1 messages once more than 65,535 are outstanding (its
  16-bit message ids wrap onto ids still in use). So paho never holds more than
  ``max_inflight`` unacknowledged QoS>=1 messages (and never more than the broker's MQTT 5
  Receive Maximum); everything else waits in *our* bounded queue. Message ids are also kept
  from wrapping onto an unacknowledged one when QoS 0 traffic runs far ahead of an old ack.
* A publish costs 30-57 us of CPU, too much for the event loop. The loop only appends to a
  ``deque`` (O(1)); one sender thread per broker hands messages to paho in order.
* paho is faster without its background network thread, so the sender thread drives paho's
  network I/O itself (``socket()``/``loop_read()``/``loop_write()``/``loop_misc()`` around
  one ``select``) and is woken through a socket pair when the loop queues a message after the
  thread went idle. One thread owns the paho client; nothing else touches it.
* Acknowledgements are read from paho's ``MQTTMessageInfo`` of each QoS>=1 message (brokers
  acknowledge QoS 1 in order), not from ``on_publish``: paho builds a ``ReasonCode`` and a
  ``Properties`` object for every ``on_publish`` call, QoS 0 writes included, which halved
  the QoS 0 rate here. Only MQTT 5 sets ``on_publish``, to count rejections.
* Every connection attempt uses a fresh paho client with a clean session. QoS>=1 messages
  handed to paho are remembered until acknowledged; when the connection drops, the
  unacknowledged ones go back to the *front* of the queue and are sent again after the
  reconnect (at least once: a message whose PUBACK was lost arrives twice). This does not
  depend on the broker keeping a session (a restarted broker with ``persistence false`` has
  none) nor on paho's resend-on-reconnect. QoS 0 messages already handed to a connection
  that dies may be lost, as QoS 0 allows. QoS 2 is passed to paho as such, but across a
  reconnect it gets the same at-least-once treatment as QoS 1.

The password is never logged, put into exceptions, ``repr`` or ``stats()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import logging
import random
import secrets
import select
import socket
import ssl
import threading
import time
from typing import Any, Final, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..api._compat import HookSpec, check, register

_LOGGER = logging.getLogger(__name__)

ERROR_CANNOT_CONNECT: Final = "cannot_connect"
ERROR_INVALID_AUTH: Final = "invalid_auth"
ERROR_TLS: Final = "tls_error"

STATUS_OFFLINE: Final = "offline"
"""Payload of the status topic in the Last Will and on a clean stop."""

PROTOCOLS: Final = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}

DEFAULT_QUEUE_SIZE: Final = 100_000
DEFAULT_MAX_INFLIGHT: Final = 1000
CONNECT_TIMEOUT: Final = 10.0
"""Bound on the TCP connect, the TLS handshake and the wait for CONNACK of one attempt."""

STABLE_AFTER: Final = 30.0
"""A connection that lasted this long resets the reconnect backoff; a flapping one does not."""

MID_WINDOW: Final = 60_000
"""Publishes allowed after the oldest unacknowledged QoS>=1 one; paho's ids wrap at 65,535."""

_PUMP_BATCH: Final = 256
"""Messages handed to paho between two looks at the socket (acks must not wait too long)."""

_IDLE_TICK: Final = 1.0
_READ_CHUNK: Final = 65_536
"""Bytes read from the broker's socket at once (see ``_BufferedClient``)."""
"""Longest ``select``: paho's keepalive bookkeeping (``loop_misc``) runs at least this often."""

_AUTH_REASONS: Final = frozenset({0x86, 0x87, 0x8C})
"""CONNACK reasons meaning the credentials were refused (bad user/password, not authorised,
bad authentication method); paho maps the MQTT 3.1.1 return codes 4 and 5 onto the first two."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how to connect; ``password`` (and the bulky ``ca_cert``) stay out of ``repr``."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    verify: bool = True
    """Verify the broker's certificate and host name (only with ``tls``)."""
    ca_cert: str | None = field(default=None, repr=False)
    """PEM text of a CA to trust in addition to the system's (only with ``tls`` and ``verify``)."""
    client_id: str = ""
    """``""`` picks a random ``saymon-<hex>`` id per :class:`DedicatedBroker`."""
    protocol: str = "3.1.1"
    """``"3.1.1"`` or ``"5"``."""
    keepalive: int = 60

    def __post_init__(self) -> None:
        """Reject values paho would only reject later, inside the sender thread."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unsupported MQTT protocol {self.protocol!r}; use '3.1.1' or '5'")
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid MQTT port {self.port}")
        if self.keepalive <= 0:
            raise ValueError("keepalive must be positive")


class _Message(NamedTuple):
    topic: str
    payload: str | bytes
    qos: int
    retain: bool


@dataclass(slots=True)
class _Counters:
    """What ``stats()`` reports besides the live sizes; each written by one thread only."""

    queue_peak: int = 0
    inflight_peak: int = 0
    published: int = 0
    """Hand-offs to paho (a message re-sent after a reconnect counts again)."""
    acknowledged: int = 0
    """QoS>=1 acknowledgements (PUBACK/PUBCOMP), including rejections."""
    rejected: int = 0
    """Acknowledgements with an MQTT 5 failure reason (e.g. not authorised)."""
    requeued: int = 0
    """Unacknowledged messages put back into the queue after a lost connection."""
    dropped_overflow: int = 0
    dropped_invalid: int = 0
    """Refused by ``publish`` (event loop)."""
    unsendable: int = 0
    """Refused by paho in the sender thread (e.g. payload too large); reported as invalid."""
    connects: int = 0
    disconnects: int = 0


class _InFlight(NamedTuple):
    """A QoS>=1 message handed to paho and not yet acknowledged."""

    message: _Message
    info: mqtt.MQTTMessageInfo
    """paho marks it published when the PUBACK (PUBCOMP for QoS 2) arrives."""
    seq: int
    """Number of the publish on this connection (paho allocates one message id per publish)."""


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
        self._config = config
        self._client_id = config.client_id or f"saymon-{secrets.token_hex(6)}"
        self._where = f"{config.host}:{config.port}"
        self._status_topic = status_topic
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._queue_size = queue_size
        self._max_inflight = max_inflight
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max

        # Shared between the event loop and the sender thread: deque appends/pops are atomic.
        self._queue: deque[_Message] = deque()
        self._idle = False
        """The sender thread is about to block or blocks in ``select``; wake it on publish."""
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._stop_deadline = 0.0
        self._stopped = False
        self._join: asyncio.Future[None] | None = None
        self._connected = False

        # Owned by the sender thread (the event loop only reads them for stats()).
        self._inflight: deque[_InFlight] = deque()
        self._handed = 0
        self._limit = max_inflight
        self._connack: tuple[ReasonCode, Properties | None] | None = None
        self._lost_reason: str | None = None
        self._rejected_logged = False

        self._ssl: ssl.SSLContext | None = None
        self._counters = _Counters()
        self._last_error: str | None = None
        self._overflow_logged = False
        self._invalid_logged = False

    def __repr__(self) -> str:
        """Identify the broker without any credentials."""
        return f"<DedicatedBroker {self._where} client_id={self._client_id!r}>"

    # -- event-loop API ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is established (CONNACK accepted and not lost since)."""
        return self._connected

    async def async_start(self) -> None:
        """Start the sender thread, which connects in the background; returns at once."""
        if self._thread is not None or self._stopped:
            return
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(
            target=self._run, name=f"saymon-mqtt {self._where}", daemon=True
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
        self._stop_deadline = time.monotonic() + timeout
        offline = _Message(self._status_topic, STATUS_OFFLINE, 1, True)
        self._queue.append(offline)
        self._stop_event.set()
        self._wake()
        # Shielded: a cancelled caller must not leave the clean-up undone.
        self._join = self._loop.run_in_executor(None, self._finish, thread, offline)
        await asyncio.shield(self._join)

    def _finish(self, thread: threading.Thread, offline: _Message) -> None:
        """Join the sender thread and release what it used (in an executor thread)."""
        thread.join()
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._connected = False
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
            if not self._invalid_logged:
                self._invalid_logged = True
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
        queue.append(_Message(topic, payload, qos, retain))
        if size >= self._counters.queue_peak:
            self._counters.queue_peak = size + 1
        if self._idle:
            self._wake()
        return True

    def subscribe(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        """Hand messages on ``topic`` to ``on_message`` in the event loop (before ``async_start``).

        The sender thread subscribes (QoS 1) on every connection, before ``on_connected`` runs.
        """
        self._subscriptions[topic] = on_message

    def _dispatch_message(self, on_message: Callable[[bytes], None], payload: bytes) -> None:
        if not self._stopped:
            on_message(payload)

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
        return {
            "queued": len(self._queue),
            "queue_peak": counters.queue_peak,
            "inflight": len(self._inflight),
            "inflight_peak": counters.inflight_peak,
            "inflight_limit": self._limit,
            "published": counters.published,
            "acknowledged": counters.acknowledged,
            "rejected": counters.rejected,
            "requeued": counters.requeued,
            "dropped_overflow": counters.dropped_overflow,
            "dropped_invalid": counters.dropped_invalid + counters.unsendable,
            "connects": counters.connects,
            "disconnects": counters.disconnects,
            "last_error": self._last_error,
        }

    def _wake(self) -> None:
        """Interrupt the sender thread's ``select`` (any thread)."""
        self._idle = False
        if self._wake_w is not None:
            # Full buffer: a wake-up is pending anyway. Closed: we are stopped.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _dispatch_connected(self) -> None:
        if not self._stopped and self._on_connected is not None:
            self._on_connected()

    def _dispatch_disconnected(self, reason: str) -> None:
        if not self._stopped and self._on_disconnected is not None:
            self._on_disconnected(reason)

    def _call_in_loop(self, callback: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the event loop is already closed
            self._loop.call_soon_threadsafe(callback, *args)

    # -- sender thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception:
            _LOGGER.exception("MQTT sender for %s failed; not publishing any more", self._where)
            self._last_error = "internal error"
        finally:
            self._connected = False

    def _supervise(self) -> None:
        """Connect, serve, and reconnect with backoff until stopped."""
        delay = self._reconnect_min
        outage = False  # a WARNING for the current outage was logged
        while not self._stop_event.is_set():
            attempt = self._attempt()
            if isinstance(attempt, mqtt.Client):
                if outage:
                    _LOGGER.info("Connection to MQTT broker %s restored", self._where)
                else:
                    _LOGGER.debug("Connected to MQTT broker %s", self._where)
                since = time.monotonic()
                reason = self._session(attempt)
                if reason is None or self._stop_event.is_set():
                    return
                self._last_error = f"disconnected: {reason}"
                _LOGGER.warning(
                    "Lost connection to MQTT broker %s (%s); reconnecting in the background",
                    self._where,
                    reason,
                )
                if time.monotonic() - since >= STABLE_AFTER:
                    delay = self._reconnect_min
            else:
                key, text = attempt
                self._last_error = f"{key}: {text}"
                if outage:
                    _LOGGER.debug("MQTT broker %s still unavailable: %s", self._where, text)
                else:
                    _LOGGER.warning(
                        "Cannot connect to MQTT broker %s (%s); retrying in the background",
                        self._where,
                        text,
                    )
            outage = True  # cleared by the next successful connect
            jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
            if self._stop_event.wait(delay * jitter):
                return
            delay = min(delay * 2, self._reconnect_max)

    def _attempt(self) -> mqtt.Client | tuple[str, str]:
        """One connection attempt: a connected client, or an error ``(key, text)``."""
        client: mqtt.Client | None = None
        try:
            if self._config.tls and self._ssl is None:
                self._ssl = _ssl_context(self._config, CONNECT_TIMEOUT)
            client = self._new_client(self._ssl)
            error = self._connect(client)
        except (OSError, ValueError) as err:
            error = _classify(err)
        if error is None and client is not None:
            return client
        if client is not None:
            _close(client)
        return error or (ERROR_CANNOT_CONNECT, "unknown error")

    def _session(self, client: mqtt.Client) -> str | None:
        """Serve one established connection; why it ended, or ``None`` when stopped."""
        self._counters.connects += 1
        self._connected = True
        for topic in self._subscriptions:
            client.subscribe(topic, 1)
        self._call_in_loop(self._dispatch_connected)
        try:
            reason = self._serve(client)
        except Exception:
            _LOGGER.exception("MQTT connection to %s failed unexpectedly", self._where)
            reason = "internal error"
        self._connected = False
        self._requeue_inflight()
        _close(client)
        if reason is not None and not self._stop_event.is_set():
            self._counters.disconnects += 1
            self._call_in_loop(self._dispatch_disconnected, reason)
        return reason

    def _new_client(self, context: ssl.SSLContext | None) -> mqtt.Client:
        client = _make_client(self._config, self._client_id, context)
        client.will_set(self._status_topic, STATUS_OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        if self._subscriptions:
            client.on_message = self._on_message
        if self._config.protocol == "5":
            # Only MQTT 5 acknowledgements carry a reason (e.g. not authorised). paho builds
            # two objects per call, which halves the QoS 0 rate, so 3.1.1 goes without.
            client.on_publish = self._on_publish_v5
        self._connack = None
        self._lost_reason = None
        self._handed = 0
        self._limit = self._max_inflight
        return client

    def _connect(self, client: mqtt.Client) -> tuple[str, str] | None:
        """Open the connection and wait for CONNACK; an error ``(key, text)`` or ``None``."""
        try:
            _open(client, self._config)
        except (OSError, ValueError) as err:
            return _classify(err)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while self._connack is None:
            if client.socket() is None:
                return ERROR_CANNOT_CONNECT, "connection closed before CONNACK"
            now = time.monotonic()
            limit = min(deadline, self._stop_deadline) if self._stop_event.is_set() else deadline
            if now >= limit:
                return ERROR_CANNOT_CONNECT, "no CONNACK from the broker"
            _io(client, min(limit - now, 0.25), self._wake_r)
        reason, properties = self._connack
        if reason.is_failure:
            return _connack_error(reason), str(reason)
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_maximum, int) and receive_maximum > 0:
            self._limit = min(self._max_inflight, receive_maximum)
        return None

    def _serve(self, client: mqtt.Client) -> str | None:
        """Publish until the connection is lost (its reason) or the stop finished (``None``)."""
        while True:
            if client.socket() is None:
                return self._lost_reason or "connection lost"
            if self._stop_event.is_set():
                if not self._queue and not self._inflight and not client.want_write():
                    _disconnect(client)
                    return None
                if time.monotonic() >= self._stop_deadline:
                    _LOGGER.warning(
                        "MQTT broker %s: %d messages unsent and %d unacknowledged when the stop "
                        "timeout ran out; dropping the connection (the Last Will says offline)",
                        self._where,
                        len(self._queue),
                        len(self._inflight),
                    )
                    return None  # the caller closes the socket without DISCONNECT
            self._pump(client)
            if client.socket() is None:
                continue
            timeout = 0.0
            if not self._sendable(client):
                timeout = _IDLE_TICK
                if self._stop_event.is_set():
                    timeout = max(0.0, min(timeout, self._stop_deadline - time.monotonic()))
                self._idle = True
                if self._sendable(client):  # queued between the check and the flag
                    timeout = 0.0
            try:
                _io(client, timeout, self._wake_r)
            finally:
                self._idle = False
            self._sweep()

    def _sendable(self, client: mqtt.Client) -> bool:
        """Whether the head of the queue may be handed to paho now."""
        queue = self._queue
        if not queue or client.want_write():
            return False
        return queue[0].qos == 0 or self._room()

    def _room(self) -> bool:
        """Whether one more QoS>=1 message may go out (in-flight limit and id window)."""
        inflight = self._inflight
        if len(inflight) >= self._limit:
            return False
        return not inflight or self._handed - inflight[0].seq < MID_WINDOW

    def _pump(self, client: mqtt.Client) -> None:
        """Hand queued messages to paho, in order, as far as the limits allow."""
        queue = self._queue
        inflight = self._inflight
        counters = self._counters
        for _ in range(_PUMP_BATCH):
            if not queue or client.want_write():
                return
            message = queue[0]
            if message.qos and not self._room():
                return
            queue.popleft()
            try:
                info = client.publish(message.topic, message.payload, message.qos, message.retain)
            except (ValueError, TypeError) as err:
                counters.unsendable += 1
                if not self._invalid_logged:
                    self._invalid_logged = True
                    _LOGGER.error("Dropping an MQTT message to %r: %s", message.topic, err)
                continue
            self._handed += 1
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not written: the connection just failed (or, for QoS>=1, paho found the
                # message id in use, which MID_WINDOW rules out). Send it on the next one.
                queue.appendleft(message)
                _abort(client)
                return
            counters.published += 1
            if message.qos:
                inflight.append(_InFlight(message, info, self._handed))
                counters.inflight_peak = max(counters.inflight_peak, len(inflight))

    def _sweep(self) -> None:
        """Release acknowledged messages (brokers acknowledge QoS 1 in order, MQTT-4.6.0-2)."""
        inflight = self._inflight
        released = 0
        while inflight and inflight[0].info.is_published():
            inflight.popleft()
            released += 1
        self._counters.acknowledged += released

    def _requeue_inflight(self) -> None:
        """Put unacknowledged messages back at the front of the queue, in their order."""
        self._sweep()
        lost = [entry.message for entry in self._inflight if not entry.info.is_published()]
        self._inflight.clear()
        if lost:
            self._queue.extendleft(reversed(lost))
            self._counters.requeued += len(lost)

    # paho callbacks (VERSION2), run by paho inside _io()/_pump() in the sender thread.

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connack = (reason, properties)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if flags.is_disconnect_packet_from_server:
            self._lost_reason = f"the broker closed the connection: {reason}"
        elif self._lost_reason is None:
            self._lost_reason = "connection lost"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        on_message = self._subscriptions.get(message.topic)
        if on_message is not None:
            self._call_in_loop(self._dispatch_message, on_message, bytes(message.payload))

    def _on_publish_v5(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        if not reason.is_failure:
            return
        self._counters.rejected += 1
        if not self._rejected_logged:
            self._rejected_logged = True
            _LOGGER.warning(
                "MQTT broker %s rejected a message (%s); counting further ones in stats",
                self._where,
                reason,
            )


async def async_test_connection(
    config: BrokerConfig,
    timeout: float = 10.0,  # noqa: ASYNC109 - bounds blocking work in a thread
) -> str | None:
    """Connect once and disconnect: ``None`` or ``cannot_connect``/``invalid_auth``/``tls_error``.

    Without a Last Will. Uses ``config.client_id`` if set (a broker may only admit certain
    ids; pass one different from a running connection's, or the broker drops that one),
    else a random ``saymon-test-<hex>`` id.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _test_connection, config, timeout)


def _test_connection(config: BrokerConfig, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    connack: list[ReasonCode] = []

    def on_connect(
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        connack.append(reason)

    client: mqtt.Client | None = None
    try:
        context = _ssl_context(config, timeout) if config.tls else None
        client_id = config.client_id or f"saymon-test-{secrets.token_hex(6)}"
        client = _make_client(config, client_id, context, timeout)
        client.on_connect = on_connect
        _open(client, config)
        while not connack:
            remaining = deadline - time.monotonic()
            if client.socket() is None or remaining <= 0:
                _LOGGER.debug("MQTT test connection to %s:%s: no CONNACK", config.host, config.port)
                return ERROR_CANNOT_CONNECT
            _io(client, min(remaining, 0.25), None)
    except (OSError, ValueError) as err:
        key, text = _classify(err)
        _LOGGER.debug("MQTT test connection to %s:%s failed: %s", config.host, config.port, text)
        return key
    finally:
        if client is not None and connack and not connack[0].is_failure:
            _disconnect(client)
        if client is not None:
            _close(client)
    if connack[0].is_failure:
        _LOGGER.debug(
            "MQTT test connection to %s:%s refused: %s", config.host, config.port, connack[0]
        )
        return _connack_error(connack[0])
    return None


# -- helpers shared by both -----------------------------------------------------------------


def _valid_topic(topic: object) -> bool:
    return isinstance(topic, str) and bool(topic) and "+" not in topic and "#" not in topic


class _BufferedClient(mqtt.Client):
    """paho client that reads the socket in chunks instead of a few bytes at a time.

    paho reads every packet with at least three ``recv()`` calls (the command byte, the
    remaining length byte by byte, then the rest): three system calls per PUBACK, the largest
    single cost of a QoS 1 publisher after paho's own objects. Reading up to
    :data:`_READ_CHUNK` bytes at once and handing paho the bytes it asks for from that buffer
    keeps paho's parsing unchanged; :func:`_io` lets paho read while bytes are buffered (the
    socket itself may have nothing more to say).
    """

    _rbuf = b""
    _rpos = 0

    @property
    def buffered(self) -> bool:
        """Whether received bytes wait in the buffer for paho."""
        return self._rpos < len(self._rbuf)

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            # paho's own call: its exceptions (BlockingIOError for "nothing now", b"" for EOF)
            # and TLS handling stay as paho expects them.
            buf = super()._sock_recv(max(bufsize, _READ_CHUNK))
            if len(buf) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return buf
            pos = 0
            self._rbuf = buf
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]


_READ_HOOK_SPECS: Final = (
    HookSpec(mqtt.Client, "_sock_recv", ("self", "bufsize"), is_async=False),
    # paho reads every packet through _sock_recv; the buffer only works while it still does.
    HookSpec(mqtt.Client, "_packet_read", ("self",), is_async=False, uses=("_sock_recv",)),
)
_READ_HOOKS: Final = register(
    check(
        "mqtt",
        "paho-mqtt",
        "the MQTT client lets paho read the socket by itself (more system calls, same messages)",
        _READ_HOOK_SPECS,
    )
)
"""Whether :class:`_BufferedClient` may override paho's private socket read (checked at import)."""

_CLIENT_CLASS: Final[type[mqtt.Client]] = _BufferedClient if _READ_HOOKS.active else mqtt.Client


def _make_client(
    config: BrokerConfig,
    client_id: str,
    context: ssl.SSLContext | None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> mqtt.Client:
    """A paho client for one connection attempt, driven by our own ``select`` loop."""
    protocol = PROTOCOLS[config.protocol]
    client = _CLIENT_CLASS(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if protocol == mqtt.MQTTv5 else True,
        protocol=protocol,
        # With True, paho would reconnect (blocking) from inside loop_read() on some refusals.
        reconnect_on_failure=False,
    )
    client.max_inflight_messages_set(0)  # our own limit applies; paho's queues and rescans
    client.connect_timeout = connect_timeout
    if config.username is not None or config.password is not None:
        client.username_pw_set(config.username or "", config.password)
    if context is not None:
        client.tls_set_context(context)
    return client


def _open(client: mqtt.Client, config: BrokerConfig) -> None:
    """Blocking TCP connect (+ TLS handshake) and CONNECT; raises ``OSError``/``ValueError``."""
    if config.protocol == "5":
        client.connect(config.host, config.port, config.keepalive, clean_start=True)
    else:
        client.connect(config.host, config.port, config.keepalive)
    setsockopt = getattr(client.socket(), "setsockopt", None)
    if setsockopt is not None:
        # paho leaves Nagle's algorithm on: a message written while the previous one is not
        # yet acknowledged by TCP would wait for that ACK (up to 40 ms with delayed ACKs).
        with contextlib.suppress(OSError):
            setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _ssl_context(config: BrokerConfig, handshake_timeout: float) -> ssl.SSLContext:
    """Client TLS context; blocking (reads the system CA store), so never in the event loop."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    if config.verify:
        context.load_default_certs()
        if config.ca_cert:
            context.load_verify_locations(cadata=config.ca_cert)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _bounded_handshake(handshake_timeout)
    return context


def _bounded_handshake(timeout: float) -> type[ssl.SSLSocket]:
    """An ``SSLSocket`` whose handshake gives up after ``timeout`` s and then closes itself.

    paho runs the handshake with the *keepalive* as socket timeout (60 s by default), which
    would also hold up ``async_stop`` (it joins the thread) against a silent server; and
    when the handshake fails (certificate rejected), paho drops the socket unclosed.
    """

    class _SSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            previous = self.gettimeout()
            self.settimeout(timeout)
            try:
                super().do_handshake(block)
            except BaseException:
                self.close()
                raise
            self.settimeout(previous)

    return _SSLSocket


def _io(client: mqtt.Client, timeout: float, wake: socket.socket | None) -> None:
    """Wait up to ``timeout`` for the socket (or ``wake``), then let paho read/write/ping."""
    sock = client.socket()
    if sock is None:
        return
    pending = (sock.pending() if isinstance(sock, ssl.SSLSocket) else 0) or (
        isinstance(client, _BufferedClient) and client.buffered
    )
    rlist: list[Any] = [sock] if wake is None else [sock, wake]
    wlist: list[Any] = [sock] if client.want_write() else []
    readable, writable, _ = select.select(rlist, wlist, [], 0.0 if pending else timeout)
    if wake is not None and wake in readable:
        with contextlib.suppress(OSError):
            wake.recv(4096)
    if pending or sock in readable:
        client.loop_read()
    if writable and client.socket() is not None:
        client.loop_write()
    if client.socket() is not None:
        client.loop_misc()


def _disconnect(client: mqtt.Client) -> None:
    """Send DISCONNECT (so the broker discards the Last Will) and wait briefly for it to go."""
    client.disconnect()
    deadline = time.monotonic() + 1.0
    while client.socket() is not None and client.want_write() and time.monotonic() < deadline:
        _io(client, 0.05, None)


def _abort(client: mqtt.Client) -> None:
    """Cut the connection under paho's feet; its next read sees EOF and reports the loss."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]


def _close(client: mqtt.Client) -> None:
    """Close the client's socket without DISCONNECT (the broker then publishes the Will)."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _classify(err: BaseException) -> tuple[str, str]:
    """Error key and a short text (never containing credentials) for a failed attempt."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return ERROR_TLS, f"certificate rejected: {err.verify_message or err.reason}"
    if isinstance(err, ssl.SSLError):
        return ERROR_TLS, f"TLS failed: {err.reason or err.__class__.__name__}"
    if isinstance(err, socket.gaierror):
        return ERROR_CANNOT_CONNECT, f"cannot resolve host: {err.strerror}"
    if isinstance(err, TimeoutError):
        return ERROR_CANNOT_CONNECT, "timed out"
    if isinstance(err, OSError):
        return ERROR_CANNOT_CONNECT, err.strerror or err.__class__.__name__
    return ERROR_CANNOT_CONNECT, str(err)


def _connack_error(reason: ReasonCode) -> str:
    return ERROR_INVALID_AUTH if reason.value in _AUTH_REASONS else ERROR_CANNOT_CONNECT
