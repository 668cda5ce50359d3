"""Server events in Home Assistant: bus events, and the event entities that show them.

Each SNMP trap, MQTT message, client notification, job and bulk that passed the rate limit
(:mod:`..api.ratelimit`, applied by the live session before parsing: no consumer sees what it
dropped) becomes one bus event (``saymon_snmp_trap``, ``saymon_mqtt_message``,
``saymon_notification``, ``saymon_job``, ``saymon_bulk_finished``) with
:mod:`..describe_server_events`'s data plus the entry, ``device_id`` (the first object in scope)
and ``device_ids`` (every object in scope it belongs to: an MQTT message may belong to several).
The event entities of those objects are told, each once, in the bus event's context; an event
that belongs to no object in scope goes to the server device's entity of its kind. Never
coalesced: every event is its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from homeassistant.core import Context, HomeAssistant

from .. import describe_server_events
from ..api.model import Change, SaymonModel
from ..api.models import EntityType
from ..api.server_events import SERVER_EVENT_TYPES, ServerEvent
from ..server_kinds import Kind, kind_of
from .devices import DeviceTree

type EventListener = Callable[[str, dict[str, Any], Context], None]
"""Called with the event type, the event's data and its bus event's context."""


class ServerEvents:
    """The hub's consumer of server events: bus events and event entity listeners."""

    def __init__(self, hass: HomeAssistant, entry_id: str, tree: DeviceTree) -> None:
        """Nothing is fired before the first event."""
        self._hass = hass
        self._entry_id = entry_id
        self._tree = tree
        self.fired: Counter[str] = Counter()
        self.operation_names: dict[str, str] = {}
        """Operation id -> name, learned when listing operations (jobs carry only the id)."""
        self._listeners: defaultdict[tuple[str, str | None], list[EventListener]] = defaultdict(
            list
        )

    def add_listener(
        self, kind: Kind, object_id: str | None, listener: EventListener
    ) -> Callable[[], None]:
        """Tell ``listener`` each event of ``kind`` about ``object_id`` (``None``: no object).

        Returns what removes it.
        """
        listeners = self._listeners[(kind.key, object_id)]
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    def on_changes(self, changes: Sequence[Change], model: SaymonModel) -> None:
        """Fire the bus event of each server event and tell its entities."""
        for change in changes:
            if isinstance(change, SERVER_EVENT_TYPES):
                self._fire(change, model)

    def _fire(self, change: ServerEvent, model: SaymonModel) -> None:
        kind = kind_of(change)
        operation_id = getattr(getattr(change, "job", None), "operation_id", None)
        data = describe_server_events.server_event(
            change, model, self.operation_names.get(operation_id or "")
        )
        tree = self._tree
        objects = [
            entity.entity_id
            for entity in change.entities
            if entity.entity_type is EntityType.OBJECT and entity.entity_id in tree.objects_in_scope
        ]
        devices = [device for o in objects if (device := tree.device_id_of(o)) is not None]
        data["device_id"] = devices[0] if devices else None
        data["device_ids"] = devices
        data["config_entry_id"] = self._entry_id
        data["replayed"] = False
        context = Context()
        self.fired[kind.event] += 1
        self._hass.bus.async_fire(kind.event, data, context=context)
        event_type = data["type"]
        for object_id in dict.fromkeys(objects) or [None]:
            for listener in list(self._listeners.get((kind.key, object_id), ())):
                listener(event_type, data, context)

    def diagnostics(self) -> dict[str, Any]:
        """Fired counts (no ids)."""
        return {"fired": dict(self.fired)}
