"""Publishing through Home Assistant's own MQTT integration.

Home Assistant's MQTT client owns the broker connection (and its Last Will, which is Home
Assistant's); this transport waits for that client, then hands messages to it from one
bounded queue in order, so a burst of SAYMON events never becomes a burst of tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
import logging

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .payloads import OFFLINE

_LOGGER = logging.getLogger(__name__)


class HomeAssistantMqttTransport:
    """A :class:`~.transport.Transport` over Home Assistant's MQTT integration."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        status_topic: str,
        on_connected: Callable[[], None],
        queue_size: int,
    ) -> None:
        """Nothing is published before :meth:`async_start`."""
        self._hass = hass
        self._status_topic = status_topic
        self._on_connected = on_connected
        self._queue: deque[tuple[str, str | bytes, int, bool]] = deque()
        self._queue_size = queue_size
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._counters = {"published": 0, "dropped_overflow": 0, "failed": 0, "queue_peak": 0}
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._unsubscribe: list[CALLBACK_TYPE] = []

    @property
    def connected(self) -> bool:
        """Whether Home Assistant's MQTT client is available."""
        return self._connected

    @property
    def backlog(self) -> int:
        """Messages queued and not yet handed to Home Assistant's MQTT client."""
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Whether :meth:`publish` drops new messages because the queue is full."""
        return len(self._queue) >= self._queue_size

    async def async_start(self) -> None:
        """Wait for Home Assistant's MQTT client in the background, then publish."""
        self._task = self._hass.async_create_background_task(self._run(), "saymon-mqtt-ha")

    async def _run(self) -> None:
        if not await mqtt.async_wait_for_mqtt_client(self._hass):
            _LOGGER.warning("Home Assistant's MQTT integration is not available; not mirroring")
            return
        for topic, on_message in self._subscriptions.items():
            # Home Assistant's client subscribes again by itself after a reconnect.
            self._unsubscribe.append(
                await mqtt.async_subscribe(
                    self._hass, topic, _receiver(on_message), qos=1, encoding=None
                )
            )
        self._connected = True
        self._on_connected()
        while True:
            while not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
            topic, payload, qos, retain = self._queue.popleft()
            await self._send(topic, payload, qos, retain)

    async def _send(self, topic: str, payload: str | bytes, qos: int, retain: bool) -> None:
        try:
            await mqtt.async_publish(self._hass, topic, payload, qos, retain)
        except HomeAssistantError as err:
            self._counters["failed"] += 1
            _LOGGER.debug("Publishing to %s through Home Assistant failed: %s", topic, err)
        else:
            self._counters["published"] += 1

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> bool:
        """Queue a message; dropped (and counted) when the queue is full."""
        if len(self._queue) >= self._queue_size:
            self._counters["dropped_overflow"] += 1
            return False
        self._queue.append((topic, payload, qos, retain))
        self._drained.clear()
        self._counters["queue_peak"] = max(self._counters["queue_peak"], len(self._queue))
        self._wake.set()
        return True

    def subscribe(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        """Receive ``topic`` through Home Assistant's client once it is available."""
        self._subscriptions[topic] = on_message

    async def async_stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - bounds the flush
        """Flush the queue (bounded by ``timeout``), publish the offline status, stop."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        task, self._task = self._task, None
        if task is None:
            return
        if self._connected:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._drained.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._connected:
            await self._send(self._status_topic, OFFLINE, 1, True)
        self._connected = False

    def stats(self) -> dict[str, int | float | str | None]:
        """Counters for diagnostics."""
        return {**self._counters, "queued": len(self._queue)}


def _receiver(on_message: Callable[[bytes], None]) -> Callable[[mqtt.ReceiveMessage], None]:
    """A message callback that runs in the event loop and passes on the raw payload."""

    @callback
    def receive(message: mqtt.ReceiveMessage) -> None:
        payload = message.payload
        on_message(payload if isinstance(payload, bytes) else str(payload).encode())

    return receive
