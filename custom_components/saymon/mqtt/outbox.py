"""The sender thread's outbox: our bounded queue, what paho holds unacknowledged, the limits.

Kept apart from the connection supervision in ``sender.py`` because it is the part that
guards against paho-mqtt 2.1.0 losing messages (``shared/mqtt-notes.md``): paho never holds
more than the in-flight limit of unacknowledged QoS>=1 messages (nor more than the broker's
MQTT 5 Receive Maximum), its 16-bit message ids never wrap onto an unacknowledged one
(:data:`MID_WINDOW`), acknowledgements are read from each message's ``MQTTMessageInfo``
(brokers acknowledge QoS 1 in order), and what a lost connection left unacknowledged goes
back to the *front* of the queue, in order (at least once).

The event loop appends to :attr:`Outbox.queue` (deque appends are atomic) and reads the
sizes for its stats; everything else runs in the sender thread.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import logging
from typing import Final, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from .connection import abort

_LOGGER = logging.getLogger(__name__)

MID_WINDOW: Final = 60_000
"""Publishes allowed after the oldest unacknowledged QoS>=1 one; paho's ids wrap at 65,535."""

_PUMP_BATCH: Final = 256
"""Messages handed to paho between two looks at the socket (acks must not wait too long)."""


class Message(NamedTuple):
    """One queued message, as the event loop handed it over."""

    topic: str
    payload: str | bytes
    qos: int
    retain: bool


@dataclass(slots=True)
class Counters:
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

    message: Message
    info: mqtt.MQTTMessageInfo
    """paho marks it published when the PUBACK (PUBCOMP for QoS 2) arrives."""
    seq: int
    """Number of the publish on this connection (paho allocates one message id per publish)."""


class Outbox:
    """Queued messages handed to one paho connection at a time, in order, within limits."""

    def __init__(self, max_inflight: int) -> None:
        """Empty; :meth:`new_connection` before each connection."""
        self.max_inflight = max_inflight
        self.queue: deque[Message] = deque()
        self.counters = Counters()
        self.inflight: deque[_InFlight] = deque()
        self.limit = max_inflight
        """The in-flight limit of the current connection (the broker may lower it)."""
        self.invalid_logged = False
        """An invalid or unsendable message was logged (once per broker, by either side)."""
        self._handed = 0

    def new_connection(self, receive_maximum: int | None = None) -> None:
        """A fresh paho client: message ids start over, the broker's limit applies."""
        self._handed = 0
        self.limit = self.max_inflight
        if receive_maximum is not None and receive_maximum > 0:
            self.limit = min(self.max_inflight, receive_maximum)

    @property
    def settled(self) -> bool:
        """Nothing queued and nothing waiting for an acknowledgement."""
        return not self.queue and not self.inflight

    def sendable(self, client: mqtt.Client) -> bool:
        """Whether the head of the queue may be handed to paho now."""
        queue = self.queue
        if not queue or client.want_write():
            return False
        return queue[0].qos == 0 or self._room()

    def _room(self) -> bool:
        """Whether one more QoS>=1 message may go out (in-flight limit and id window)."""
        inflight = self.inflight
        if len(inflight) >= self.limit:
            return False
        return not inflight or self._handed - inflight[0].seq < MID_WINDOW

    def pump(self, client: mqtt.Client) -> None:
        """Hand queued messages to paho, in order, as far as the limits allow."""
        queue = self.queue
        inflight = self.inflight
        counters = self.counters
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
                if not self.invalid_logged:
                    self.invalid_logged = True
                    _LOGGER.error("Dropping an MQTT message to %r: %s", message.topic, err)
                continue
            self._handed += 1
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not written: the connection just failed (or, for QoS>=1, paho found the
                # message id in use, which MID_WINDOW rules out). Send it on the next one.
                queue.appendleft(message)
                abort(client)
                return
            counters.published += 1
            if message.qos:
                inflight.append(_InFlight(message, info, self._handed))
                counters.inflight_peak = max(counters.inflight_peak, len(inflight))

    def sweep(self) -> None:
        """Release acknowledged messages (brokers acknowledge QoS 1 in order, MQTT-4.6.0-2)."""
        inflight = self.inflight
        released = 0
        while inflight and inflight[0].info.is_published():
            inflight.popleft()
            released += 1
        self.counters.acknowledged += released

    def requeue_inflight(self) -> None:
        """Put unacknowledged messages back at the front of the queue, in their order."""
        self.sweep()
        lost = [entry.message for entry in self.inflight if not entry.info.is_published()]
        self.inflight.clear()
        if lost:
            self.queue.extendleft(reversed(lost))
            self.counters.requeued += len(lost)
