"""Incident lifecycle: the documented state -> incident-level mapping, acknowledge and clear.

Kept apart from the object tree because it is the part client tests care most about: which
`incidents` changeType and `incident-count` events a state change produces.

As SAYMON documents it, clearing an incident (its entity recovers, or a user clears it) sets
level 3 and `clearTimestamp` and announces a *modification* (changeType 2); the cleared incident
stays in `GET /incidents` until SAYMON's incident timeout (`incident_timeout` in the server
configuration, an hour by default), when it moves to the history with changeType 3. Deleting
the entity (like clear-remove) moves its incident to the history at once.
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


DEFAULT_INCIDENT_TIMEOUT_MS = 60_000
"""How long a cleared incident stays listed (SAYMON: an hour; shorter here to be observable)."""


class IncidentBook:
    """Open incidents (one per entity), cleared ones still listed, and the history."""

    def __init__(
        self, new_id: Callable[[], str], timeout_ms: int = DEFAULT_INCIDENT_TIMEOUT_MS
    ) -> None:
        """Take ids from the model's seeded factory so incident ids are reproducible too."""
        self._new_id = new_id
        self.active: dict[str, Incident] = {}
        """Open incidents (not cleared)."""
        self.cleared: dict[str, Incident] = {}
        """Cleared incidents still listed by GET /incidents until the incident timeout."""
        self.history: dict[str, Incident] = {}
        self._open: dict[EntityKey, str] = {}
        self.timeout_ms = timeout_ms
        """Incident timeout; 0 moves cleared incidents to the history at once."""
        self.count_cleared = False
        """Whether `incident-count` counts cleared incidents still listed (versions differ)."""

    def get(self, incident_id: str) -> Incident:
        """Find an incident: open, cleared or in history."""
        found = (
            self.active.get(incident_id)
            or self.cleared.get(incident_id)
            or self.history.get(incident_id)
        )
        if found is None:
            raise NotFoundError(f"Incident {incident_id} not found.")
        return found

    def listed(self) -> dict[str, Incident]:
        """What GET /incidents lists: open and cleared-but-not-yet-aged-out incidents."""
        return {**self.active, **self.cleared}

    def open_for(self, entity: EntityKey) -> Incident | None:
        """Return the active incident of an entity, if any."""
        incident_id = self._open.get(entity)
        return None if incident_id is None else self.active[incident_id]

    def count_event(self) -> Event:
        """`incident-count` in the simulator's canonical shape (the Comet layer may reshape it)."""
        count = len(self.active) + (len(self.cleared) if self.count_cleared else 0)
        return Event(EVENT_INCIDENT_COUNT, {"count": count})

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

    def _close(self, incident: Incident, now: int) -> list[Event]:
        """Clear: level 3 and `clearTimestamp`, announced as a modification.

        The incident stays listed until the incident timeout (0: in the history at once).
        """
        incident.state = LEVEL_CLEARED
        incident.clear_timestamp = now
        del self.active[incident.id]
        self._open.pop((incident.entity_type, incident.entity_id), None)
        self.cleared[incident.id] = incident
        events = [self._event(CHANGE_MODIFIED, incident), self.count_event()]
        if self.timeout_ms <= 0:
            events += self._to_history(incident)
        return events

    def _to_history(self, incident: Incident) -> list[Event]:
        self.active.pop(incident.id, None)
        self.cleared.pop(incident.id, None)
        self._open.pop((incident.entity_type, incident.entity_id), None)
        self.history[incident.id] = incident
        return [self._event(CHANGE_REMOVED, incident)]

    def expire(self, now: int) -> list[Event]:
        """Move cleared incidents older than the incident timeout to the history."""
        due = [
            incident
            for incident in self.cleared.values()
            if (incident.clear_timestamp or 0) + self.timeout_ms <= now
        ]
        events = [event for incident in due for event in self._to_history(incident)]
        if due and self.count_cleared:
            events.append(self.count_event())
        return events

    def clear(self, incident_id: str, now: int) -> list[Event]:
        """Clear by request: state 3, `clearTimestamp` (history after the timeout)."""
        incident = self.get(incident_id)
        if incident.id not in self.active:
            return []
        return self._close(incident, now)

    def clear_remove(self, incident_id: str, now: int) -> list[Event]:
        """Clear and remove: straight to the history (changeType 3 only)."""
        incident = self.get(incident_id)
        if incident.id in self.history:
            return []
        if incident.clear_timestamp is None:
            incident.state = LEVEL_CLEARED
            incident.clear_timestamp = now
        return [*self._to_history(incident), self.count_event()]

    def clear_entity(self, entity: EntityKey, now: int) -> list[Event]:
        """The entity was deleted: its incidents go to the history at once (no count event)."""
        events: list[Event] = []
        current = self.open_for(entity)
        if current is not None:
            current.state = LEVEL_CLEARED
            current.clear_timestamp = now
            events += self._to_history(current)
        for incident in [
            i for i in self.cleared.values() if (i.entity_type, i.entity_id) == entity
        ]:
            events += self._to_history(incident)
        return events

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
        """Listed incidents (open and cleared) ordered by a JSON field, ties broken by id."""
        keyed = [(_scalar(inc.to_json().get(field)), inc.id, inc) for inc in self.listed().values()]
        keyed.sort(key=lambda item: (item[0], item[1]), reverse=descending)
        return [item[2] for item in keyed]

    def sorted_history(self, *, newest_first: bool) -> list[Incident]:
        """Return closed incidents ordered by clear time."""
        return sorted(
            self.history.values(),
            key=lambda inc: (inc.clear_timestamp or 0, inc.id),
            reverse=newest_first,
        )
