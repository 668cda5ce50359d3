"""The Comet client's counters, for diagnostics.

One object for two writers, both in the event loop: the supervisor (``comet.py``) counts
connections, and the inbound queue (``inbound.py``) counts events, malformed frames and the
storms it absorbed. The caller reads them as one picture (:meth:`CometStats.as_dict`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import time
from typing import Any, Final

MALFORMED_FRAME: Final = "(frame)"
"""Key of :attr:`CometStats.malformed` counting frames that are not valid Socket.IO."""


@dataclass(slots=True)
class CometStats:
    """Counters for diagnostics; monotonic timestamps from ``time.monotonic()``."""

    connects: int = 0
    connect_failures: int = 0
    sessions_rejected: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    queue_peak: int = 0
    held_peak: int = 0
    """Most frames held raw at once while the queue was full (see ``max_held_bytes``)."""
    reading_paused: int = 0
    """Times the hold was full and reading from Comet paused (TCP backpressure)."""
    last_event: float | None = None
    connected_since: float | None = None

    @property
    def reconnects(self) -> int:
        """Connections after the first one."""
        return max(self.connects - 1, 0)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly copy for diagnostics."""
        now = time.monotonic()
        return {
            "connects": self.connects,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "sessions_rejected": self.sessions_rejected,
            "disconnects": dict(self.disconnects),
            "events": dict(self.events),
            "malformed": dict(self.malformed),
            "dropped": self.dropped,
            "queue_peak": self.queue_peak,
            "held_peak": self.held_peak,
            "reading_paused": self.reading_paused,
            "last_event_age": None if self.last_event is None else round(now - self.last_event, 3),
            "connected_for": None
            if self.connected_since is None
            else round(now - self.connected_since, 3),
        }
