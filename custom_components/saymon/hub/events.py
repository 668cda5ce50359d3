"""Home Assistant bus events of the change stream, one per change.

``saymon_incident``, ``saymon_state_changed`` and ``saymon_model_changed`` carry the data that
automations, the logbook and device triggers read.

Each event's data is :mod:`..describe`'s description of the change plus the entry, the HA
device of the object (when in scope) and ``replayed``. Incident listeners (the incident event
entity) get each incident's data with the context its bus event was fired with, so what they
write is tied to that event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from homeassistant.core import Context, HomeAssistant

from .. import describe
from ..api.model import Change, IncidentChanged, ModelChanged, SaymonModel, StateChanged
from ..api.models import EntityType, Incident
from ..const import EVENT_INCIDENT, EVENT_MODEL_CHANGED, EVENT_STATE_CHANGED
from .devices import DeviceTree

type IncidentListener = Callable[[str, dict[str, Any], Context], None]


class BusEvents:
    """Fires one bus event per change (state changes of objects and links in scope only)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Nothing is fired before the first change."""
        self._hass = hass
        self._entry_id = entry_id
        self.fired: Counter[str] = Counter()
        self._incident_listeners: list[IncidentListener] = []

    def add_incident_listener(self, listener: IncidentListener) -> Callable[[], None]:
        """Call ``listener(kind, data, context)`` for every incident change; returns an unsubscribe.

        ``context`` is the one the ``saymon_incident`` bus event was fired with, so what the
        listener writes is tied to that event (the logbook shows it as the cause).
        """
        self._incident_listeners.append(listener)
        return lambda: self._incident_listeners.remove(listener)

    def on_changes(
        self, changes: Sequence[Change], replayed: bool, model: SaymonModel, tree: DeviceTree
    ) -> None:
        """Fire the bus event of each change (the stream's bus consumer)."""
        for change in changes:
            again = replayed or (isinstance(change, IncidentChanged) and change.replayed)
            if isinstance(change, StateChanged):
                if tree.tracks(change.entity_type, change.entity_id):
                    data = describe.state_change(change, model)
                    data["device_id"] = tree.device_id_of(change.entity_id)
                    self._fire(EVENT_STATE_CHANGED, data, again)
            elif isinstance(change, IncidentChanged):
                data = self.incident_data(change.incident, model, tree)
                data["type"] = change.kind.value
                context = Context()
                self._fire(EVENT_INCIDENT, data, again, context)
                for listener in self._incident_listeners:
                    listener(change.kind.value, data, context)
            elif isinstance(change, ModelChanged):
                data = describe.model_change(change, model)
                data["device_id"] = (
                    tree.device_id_of(change.entity_id)
                    if change.entity_type is EntityType.OBJECT
                    else None
                )
                self._fire(EVENT_MODEL_CHANGED, data, again)

    def incident_data(
        self, incident: Incident, model: SaymonModel, tree: DeviceTree
    ) -> dict[str, Any]:
        """Describe an incident for events, actions and the event entity."""
        data = describe.incident(incident, model)
        data["device_id"] = (
            tree.device_id_of(incident.entity_id)
            if incident.entity_type is EntityType.OBJECT
            else None
        )
        return data

    def _fire(
        self,
        event_type: str,
        data: dict[str, Any],
        replayed: bool,
        context: Context | None = None,
    ) -> None:
        data["config_entry_id"] = self._entry_id
        data["replayed"] = replayed
        self.fired[event_type] += 1
        self._hass.bus.async_fire(event_type, data, context=context)
