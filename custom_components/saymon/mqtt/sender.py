"""What runs in the MQTT sender thread: connect, hand queued messages to paho, reconnect.

One thread per broker owns the paho client; nothing else touches it. The event loop only
appends to :attr:`Sender.queue` and wakes the thread (``broker.py``). What was measured
(``shared/mqtt-notes.md``) shapes the thread:

* paho-mqtt 2.1.0 silently loses QoS 1 messages once more than 65,535 are outstanding (its
  16-bit message ids wrap onto ids still in use): the :class:`~.outbox.Outbox` keeps paho
  within the in-flight limit and the id window; everything else waits in *our* bounded queue.
* The thread drives paho's network I/O itself around one ``select`` (``connection.py``) and is
  woken through a socket pair when the loop queues a message after the thread went idle.
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
* Reconnects wait by the integration's one :class:`~..api.backoff.Backoff`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..api.backoff import Backoff
from .connection import (
    CONNECT_TIMEOUT,
    ERROR_CANNOT_CONNECT,
    BrokerConfig,
    classify,
    close,
    connack_error,
    disconnect,
    make_client,
    open_connection,
    run_io,
    ssl_context,
)
from .outbox import Counters, Outbox

_LOGGER = logging.getLogger(__name__)

STATUS_OFFLINE: Final = "offline"
"""Payload of the status topic in the Last Will and on a clean stop."""

STABLE_AFTER: Final = 30.0
"""A connection that lasted this long resets the reconnect backoff; a flapping one does not."""

_IDLE_TICK: Final = 1.0
"""Longest ``select``: paho's keepalive bookkeeping (``loop_misc``) runs at least this often."""


class Sender:
    """Publishes :attr:`queue` to one broker, in order, reconnecting until stopped.

    :meth:`run` is the thread's body. The event loop appends to :attr:`queue`, calls
    :meth:`wake` when :attr:`idle`, and :meth:`request_stop`; it reads :attr:`connected`,
    :attr:`last_error` and the :attr:`outbox` sizes for its stats. ``on_connected``
    and ``on_disconnected(reason)`` are called in the thread (they must be thread-safe).
    """

    def __init__(
        self,
        config: BrokerConfig,
        client_id: str,
        status_topic: str,
        *,
        max_inflight: int,
        backoff: Backoff,
        on_connected: Callable[[], None],
        on_disconnected: Callable[[str], None],
        subscriptions: Collection[str] = (),
        on_message: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """Prepare the thread's state; nothing connects before :meth:`run`.

        ``subscriptions``: topics subscribed (QoS 1) on every connection, before
        ``on_connected``; their messages go to ``on_message(topic, payload)`` (from this thread).
        """
        self._config = config
        self._client_id = client_id
        self._status_topic = status_topic
        self._backoff = backoff
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._subscriptions = subscriptions
        self._on_message_received = on_message
        self.where = f"{config.host}:{config.port}"

        # Shared with the event loop: deque appends/pops are atomic.
        self.outbox = Outbox(max_inflight)
        self.queue = self.outbox.queue
        self.counters: Counters = self.outbox.counters
        self.idle = False
        """The thread is about to block or blocks in ``select``; wake it on publish."""
        self.connected = False
        """Whether a connection is established (CONNACK accepted and not lost since)."""
        self.last_error: str | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stop_event = threading.Event()
        self._stop_deadline = 0.0

        # Owned by the thread.
        self._connack: tuple[ReasonCode, Properties | None] | None = None
        self._lost_reason: str | None = None
        self._rejected_logged = False
        self._ssl: ssl.SSLContext | None = None

    # -- called from the event loop (or any thread) ----------------------------------------

    def open_wake(self) -> None:
        """Create the socket pair that interrupts the thread's ``select`` (before :meth:`run`)."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def close_wake(self) -> None:
        """Close that socket pair (after the thread ended)."""
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()

    def wake(self) -> None:
        """Interrupt the thread's ``select`` (any thread)."""
        self.idle = False
        if self._wake_w is not None:
            # Full buffer: a wake-up is pending anyway. Closed: we are stopped.
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def request_stop(self, deadline: float) -> None:
        """Flush what is queued until ``deadline`` (monotonic), then disconnect and end."""
        self._stop_deadline = deadline
        self._stop_event.set()
        self.wake()

    # -- the thread -------------------------------------------------------------------------

    def run(self) -> None:
        """The thread's body: connect, serve, and reconnect until stopped."""
        try:
            self._supervise()
        except Exception:
            _LOGGER.exception("MQTT sender for %s failed; not publishing any more", self.where)
            self.last_error = "internal error"
        finally:
            self.connected = False

    def _supervise(self) -> None:
        """Connect, serve, and reconnect with backoff until stopped."""
        failures = 0
        outage = False  # a WARNING for the current outage was logged
        while not self._stop_event.is_set():
            attempt = self._attempt()
            if isinstance(attempt, mqtt.Client):
                if outage:
                    _LOGGER.info("Connection to MQTT broker %s restored", self.where)
                else:
                    _LOGGER.debug("Connected to MQTT broker %s", self.where)
                since = time.monotonic()
                reason = self._session(attempt)
                if reason is None or self._stop_event.is_set():
                    return
                self.last_error = f"disconnected: {reason}"
                _LOGGER.warning(
                    "Lost connection to MQTT broker %s (%s); reconnecting in the background",
                    self.where,
                    reason,
                )
                # A connection that dropped quickly keeps the backoff growing (no hot loop
                # against a broker that accepts and then closes); a long-lived one starts over.
                failures = 1 if time.monotonic() - since >= STABLE_AFTER else failures + 1
            else:
                key, text = attempt
                self.last_error = f"{key}: {text}"
                if outage:
                    _LOGGER.debug("MQTT broker %s still unavailable: %s", self.where, text)
                else:
                    _LOGGER.warning(
                        "Cannot connect to MQTT broker %s (%s); retrying in the background",
                        self.where,
                        text,
                    )
                failures += 1
            outage = True  # cleared by the next successful connect
            if self._stop_event.wait(self._backoff.delay(failures)):
                return

    def _attempt(self) -> mqtt.Client | tuple[str, str]:
        """One connection attempt: a connected client, or an error ``(key, text)``."""
        client: mqtt.Client | None = None
        try:
            if self._config.tls and self._ssl is None:
                self._ssl = ssl_context(self._config, CONNECT_TIMEOUT)
            client = self._new_client(self._ssl)
            error = self._connect(client)
        except (OSError, ValueError) as err:
            error = classify(err)
        if error is None and client is not None:
            return client
        if client is not None:
            close(client)
        return error or (ERROR_CANNOT_CONNECT, "unknown error")

    def _session(self, client: mqtt.Client) -> str | None:
        """Serve one established connection; why it ended, or ``None`` when stopped."""
        self.counters.connects += 1
        self.connected = True
        for topic in self._subscriptions:
            client.subscribe(topic, 1)
        self._on_connected()
        try:
            reason = self._serve(client)
        except Exception:
            _LOGGER.exception("MQTT connection to %s failed unexpectedly", self.where)
            reason = "internal error"
        self.connected = False
        self.outbox.requeue_inflight()
        close(client)
        if reason is not None and not self._stop_event.is_set():
            self.counters.disconnects += 1
            self._on_disconnected(reason)
        return reason

    def _new_client(self, context: ssl.SSLContext | None) -> mqtt.Client:
        client = make_client(self._config, self._client_id, context)
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
        self.outbox.new_connection()
        return client

    def _connect(self, client: mqtt.Client) -> tuple[str, str] | None:
        """Open the connection and wait for CONNACK; an error ``(key, text)`` or ``None``."""
        try:
            open_connection(client, self._config)
        except (OSError, ValueError) as err:
            return classify(err)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while self._connack is None:
            if client.socket() is None:
                return ERROR_CANNOT_CONNECT, "connection closed before CONNACK"
            now = time.monotonic()
            limit = min(deadline, self._stop_deadline) if self._stop_event.is_set() else deadline
            if now >= limit:
                return ERROR_CANNOT_CONNECT, "no CONNACK from the broker"
            run_io(client, min(limit - now, 0.25), self._wake_r)
        reason, properties = self._connack
        if reason.is_failure:
            return connack_error(reason), str(reason)
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self.outbox.new_connection(receive_maximum if isinstance(receive_maximum, int) else None)
        return None

    def _serve(self, client: mqtt.Client) -> str | None:
        """Publish until the connection is lost (its reason) or the stop finished (``None``)."""
        while True:
            if client.socket() is None:
                return self._lost_reason or "connection lost"
            if self._stop_event.is_set():
                if self.outbox.settled and not client.want_write():
                    disconnect(client)
                    return None
                if time.monotonic() >= self._stop_deadline:
                    _LOGGER.warning(
                        "MQTT broker %s: %d messages unsent and %d unacknowledged when the stop "
                        "timeout ran out; dropping the connection (the Last Will says offline)",
                        self.where,
                        len(self.queue),
                        len(self.outbox.inflight),
                    )
                    return None  # the caller closes the socket without DISCONNECT
            self.outbox.pump(client)
            if client.socket() is None:
                continue
            timeout = 0.0
            if not self.outbox.sendable(client):
                timeout = _IDLE_TICK
                if self._stop_event.is_set():
                    timeout = max(0.0, min(timeout, self._stop_deadline - time.monotonic()))
                self.idle = True
                if self.outbox.sendable(client):  # queued between the check and the flag
                    timeout = 0.0
            try:
                run_io(client, timeout, self._wake_r)
            finally:
                self.idle = False
            self.outbox.sweep()

    # paho callbacks (VERSION2), run by paho inside run_io()/_pump() in this thread.

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self._on_message_received is not None:
            self._on_message_received(message.topic, bytes(message.payload))

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
        self.counters.rejected += 1
        if not self._rejected_logged:
            self._rejected_logged = True
            _LOGGER.warning(
                "MQTT broker %s rejected a message (%s); counting further ones in stats",
                self.where,
                reason,
            )
