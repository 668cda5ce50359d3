"""Incident lifecycle: the documented state -> incident-level mapping, acknowledge and clear.

Kept apart from the object tree because it is the part client tests care most about: which
`incidents` changeType and `incident-count` events a state change produces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .catalog import (
    CHANGE_CREATED,
    CHANGE_MODIFIED,
    CHANGE_REMOVED,
    INCIDENT_TEXT,
    LEVEL_CLEARED,
    STATE_TO_LEVEL,
)
from .entities import Incident
from .errors import NotFoundError
from .events import EVENT_INCIDENT_COUNT, EVENT_INCIDENTS, Event

EntityKey = tuple[int, str]


def _scalar(value: Any) -> tuple[int, Any]:
    """Sort key that never compares unlike types (None and containers sort last)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return (2, 0)
    return (0, value) if isinstance(value, int | float) else (1, value)


class IncidentBook:
    """Active incidents (at most one open per entity) and the history of closed ones."""

    def __init__(self, new_id: Callable[[], str]) -> None:
        """Take ids from the model's seeded factory so incident ids are reproducible too."""
        self._new_id = new_id
        self.active: dict[str, Incident] = {}
        self.history: dict[str, Incident] = {}
        self._open: dict[EntityKey, str] = {}

    def get(self, incident_id: str) -> Incident:
        """Find an incident, active or in history."""
        found = self.active.get(incident_id) or self.history.get(incident_id)
        if found is None:
            raise NotFoundError(f"Incident {incident_id} not found.")
        return found

    def open_for(self, entity: EntityKey) -> Incident | None:
        """Return the active incident of an entity, if any."""
        incident_id = self._open.get(entity)
        return None if incident_id is None else self.active[incident_id]

    def count_event(self) -> Event:
        """`incident-count` in the simulator's canonical shape (the Comet layer may reshape it)."""
        return Event(EVENT_INCIDENT_COUNT, {"count": len(self.active)})

    @staticmethod
    def _event(change_type: int, incident: Incident) -> Event:
        entity = (incident.entity_type, incident.entity_id)
        payload = {"changeType": change_type, "payload": incident.to_json()}
        return Event(EVENT_INCIDENTS, payload, entity)

    def on_state_change(
        self, entity: EntityKey, new_state: int, now: int, reason: int
    ) -> list[Event]:
        """Open, modify or clear the entity's incident after it entered `new_state`."""
        level = STATE_TO_LEVEL.get(new_state)
        current = self.open_for(entity)
        if level is None:
            return [] if current is None else self._close(current, now)
        text = INCIDENT_TEXT[new_state]
        if current is None:
            incident = Incident(
                id=self._new_id(),
                entity_id=entity[1],
                entity_type=entity[0],
                state=level,
                last_state=level,
                text=text,
                timestamp=now,
                reason_code=reason,
            )
            self.active[incident.id] = incident
            self._open[entity] = incident.id
            return [self._event(CHANGE_CREATED, incident), self.count_event()]
        current.state = current.last_state = level
        current.text = text
        current.reason_code = reason
        current.count += 1
        return [self._event(CHANGE_MODIFIED, current)]

    def _close(self, incident: Incident, now: int, *, count_event: bool = True) -> list[Event]:
        incident.state = LEVEL_CLEARED
        incident.clear_timestamp = now
        del self.active[incident.id]
        self._open.pop((incident.entity_type, incident.entity_id), None)
        self.history[incident.id] = incident
        events = [self._event(CHANGE_REMOVED, incident)]
        if count_event:
            events.append(self.count_event())
        return events

    def clear(self, incident_id: str, now: int) -> list[Event]:
        """Clear by request: state 3, `clearTimestamp`, and out of the active list."""
        incident = self.get(incident_id)
        if incident.id not in self.active:
            return []
        return self._close(incident, now)

    def clear_entity(self, entity: EntityKey, now: int) -> list[Event]:
        """Close an entity's incident because the entity was deleted (no count event)."""
        current = self.open_for(entity)
        return [] if current is None else self._close(current, now, count_event=False)

    def acknowledge(self, incident_id: str, user_id: str, now: int) -> list[Event]:
        """Set `acknowledgedBy`/`acknowledgementTimestamp` on an active incident."""
        incident = self.get(incident_id)
        if incident.id not in self.active:
            return []
        incident.acknowledged_by = user_id
        incident.acknowledgement_timestamp = now
        return [self._event(CHANGE_MODIFIED, incident)]

    def unacknowledge(self, incident_id: str) -> list[Event]:
        """Reset both acknowledgement fields to null."""
        incident = self.get(incident_id)
        if incident.id not in self.active:
            return []
        incident.acknowledged_by = None
        incident.acknowledgement_timestamp = None
        return [self._event(CHANGE_MODIFIED, incident)]

    def sorted_active(
        self, field: str = "timestamp", *, descending: bool = False
    ) -> list[Incident]:
        """Active incidents ordered by a JSON field, ties broken by id for a stable order."""
        keyed = [(_scalar(inc.to_json().get(field)), inc.id, inc) for inc in self.active.values()]
        keyed.sort(key=lambda item: (item[0], item[1]), reverse=descending)
        return [item[2] for item in keyed]

    def sorted_history(self, *, newest_first: bool) -> list[Incident]:
        """Return closed incidents ordered by clear time."""
        return sorted(
            self.history.values(),
            key=lambda inc: (inc.clear_timestamp or 0, inc.id),
            reverse=newest_first,
        )
