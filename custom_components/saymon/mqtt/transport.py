"""What the mirror needs from an MQTT connection (a dedicated broker or Home Assistant's)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Transport(Protocol):
    """A non-blocking MQTT publisher with its own bounded queue."""

    @property
    def connected(self) -> bool:
        """Whether messages currently reach the broker."""

    @property
    def backlog(self) -> int:
        """Messages queued and not yet handed to the broker."""

    @property
    def full(self) -> bool:
        """Whether :meth:`publish` drops new messages because the queue is full."""

    async def async_start(self) -> None:
        """Begin connecting; ``on_connected`` fires after every (re)connect."""

    async def async_stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - bounds the flush
        """Publish the offline status, flush what is queued (bounded by ``timeout``), stop."""

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> bool:
        """Queue one message without blocking; ``False`` when it had to be dropped."""

    def subscribe(self, topic: str, on_message: Callable[[bytes], None]) -> None:
        """Hand every message on ``topic`` to ``on_message`` in the event loop.

        Call before :meth:`async_start`; the subscription is made again after every reconnect.
        """

    def stats(self) -> dict[str, int | float | str | None]:
        """Counters for diagnostics."""
