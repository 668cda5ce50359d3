"""Comet events produced by model changes, before they are routed to subscribed sockets.

The model returns these instead of emitting, which keeps it free of I/O and lets the REST,
control and storm paths share one publishing step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

EVENT_STATE_CHANGE: Final = "state-change"
EVENT_INCIDENTS: Final = "incidents"
EVENT_INCIDENT_COUNT: Final = "incident-count"
EVENT_MODEL_CHANGED: Final = "model-changed"
EVENT_STAT: Final = "stat"

# Topic joined with `add-filtered-topic` for per-entity stat.
TOPIC_STAT: Final = EVENT_STAT


@dataclass(frozen=True, slots=True)
class Event:
    """One event to publish: its name (= topic), payload, and the entity it is about.

    `entity` is `(entityType, entityId)`; it routes `stat` to `add-filtered-topic` subscribers
    and lets `incidents` honour a subscription's `parentFilter`.
    """

    name: str
    payload: Any
    entity: tuple[int, str] | None = None

    @property
    def filter_key(self) -> str | None:
        """The `"<entityType>:<entityId>"` key that `add-filtered-topic` subscribes to."""
        if self.entity is None:
            return None
        return f"{self.entity[0]}:{self.entity[1]}"
