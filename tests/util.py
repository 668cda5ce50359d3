"""Small helpers shared by the test modules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import time

from custom_components.saymon.api.errors import SaymonInvalidCredentialsError
from custom_components.saymon.api.events import CometEvent


def present[T](value: T | None) -> T:
    """Assert that ``value`` is not ``None`` and return it (narrows the type for mypy)."""
    assert value is not None
    return value


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail the test with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


@dataclass
class Recorder:
    """Collects what a Comet client reports through its callbacks."""

    events: list[CometEvent] = field(default_factory=list)
    connected: int = 0
    disconnects: list[str] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    auth_failures: list[SaymonInvalidCredentialsError] = field(default_factory=list)

    def on_event(self, event: CometEvent) -> None:
        self.events.append(event)

    def on_connected(self) -> None:
        self.connected += 1

    def on_disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)

    def on_events_lost(self, dropped: int) -> None:
        self.lost.append(dropped)

    def on_auth_failed(self, err: SaymonInvalidCredentialsError) -> None:
        self.auth_failures.append(err)

    def callbacks(self) -> dict[str, Callable[..., None]]:
        """Keyword arguments for ``CometClient``."""
        return {
            "on_event": self.on_event,
            "on_connected": self.on_connected,
            "on_disconnected": self.on_disconnected,
            "on_events_lost": self.on_events_lost,
            "on_auth_failed": self.on_auth_failed,
        }
