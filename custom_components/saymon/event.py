"""Event entities: SAYMON incidents on the server device, and the server events chosen.

Incidents (opened, updated, closed) have one event entity on the server device. Each server
event kind turned on in the options (SNMP traps, MQTT messages, client notifications, jobs) has
one event entity per object device, and one on the server device for events that belong to no
object in scope. Each description says how its entity is told of events (``listen_fn``); one
entity class serves them all. Entities of kinds turned off are removed from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.model import IncidentChangeKind
from .api.models import LEVEL_ALARM, LEVEL_CLEARED, LEVEL_MAJOR, LEVEL_WARNING
from .entity import SaymonEntity, SaymonEntityDescription, Subject, async_track_scope
from .hub import SaymonHub
from .hub.server_events import EventListener
from .runtime import SaymonConfigEntry
from .server_kinds import KINDS, Kind, chosen

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SaymonEventDescription(EventEntityDescription, SaymonEntityDescription):
    """An event entity: what it is told of, and how its attributes are made."""

    listen_fn: Callable[[SaymonHub, str | None, EventListener], Callable[[], None]]
    """Subscribes the entity (hub, object id or ``None``, listener); returns the unsubscribe."""
    attributes_fn: Callable[[dict[str, Any]], dict[str, Any]] = dict
    """The event's attributes from its bus event's data."""


BUILTIN_LEVEL_KEYS: Final = {
    LEVEL_ALARM: "alarm",
    LEVEL_WARNING: "warning",
    LEVEL_CLEARED: "cleared",
    LEVEL_MAJOR: "major",
}
"""SAYMON's own incident levels, under keys the frontend translates (``level_key``)."""


def level_key(data: dict[str, Any]) -> str | None:
    """The translatable key of an incident's level; a custom level keeps its SAYMON name."""
    level_id = data.get("level_id")
    builtin = BUILTIN_LEVEL_KEYS.get(str(level_id)) if level_id is not None else None
    return builtin if builtin is not None else data.get("level")


INCIDENT_EVENTS = SaymonEventDescription(
    key="incidents",
    translation_key="incidents",
    event_types=[kind.value for kind in IncidentChangeKind],
    listen_fn=lambda hub, _target, listener: hub.bus.add_incident_listener(listener),
    attributes_fn=lambda data: {**data, "level_key": level_key(data)},
)


def _server_event_description(kind: Kind, subject: Subject) -> SaymonEventDescription:
    return SaymonEventDescription(
        key=kind.key,
        translation_key=kind.key,
        subject=subject,
        event_types=list(kind.event_types),
        listen_fn=lambda hub, target, listener: hub.server_events.add_listener(
            kind, target, listener
        ),
        attributes_fn=level_attributes if kind.key == "snmp_traps" else dict,
    )


def level_attributes(data: dict[str, Any]) -> dict[str, Any]:
    """A trap's data with its level's translatable key."""
    return {**data, "level_key": level_key(data)}


SERVER_EVENTS: Final = {
    kind.key: (
        _server_event_description(kind, Subject.SERVER),
        _server_event_description(kind, Subject.OBJECT),
    )
    for kind in KINDS
    if kind.event_types
}
"""Per kind with entities: the server device's description and the object devices'."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the incident event entity and those of the server event kinds turned on."""
    hub = entry.runtime_data.hub
    on = [SERVER_EVENTS[kind.key] for kind in chosen(entry.options) if kind.key in SERVER_EVENTS]
    _remove_turned_off(hass, entry, {server.key for server, _ in on})
    async_add_entities(
        [SaymonEvent(hub, INCIDENT_EVENTS), *(SaymonEvent(hub, server) for server, _ in on)]
    )

    def objects(ids: Iterable[str]) -> list[SaymonEvent]:
        return [SaymonEvent(hub, description, oid) for oid in ids for _, description in on]

    async_track_scope(entry, async_add_entities, objects)


def _remove_turned_off(hass: HomeAssistant, entry: SaymonConfigEntry, keep: set[str]) -> None:
    """Remove the event entities of server event kinds that are no longer turned on."""
    registry = er.async_get(hass)
    for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
        key = registered.unique_id.rpartition("|")[2]
        if registered.domain == "event" and key in SERVER_EVENTS and key not in keep:
            registry.async_remove(registered.entity_id)


class SaymonEvent(SaymonEntity, EventEntity):
    """Every event it is told of, one each, with the event's data as attributes.

    Not coalesced like the other entities' writes: an event is not a state that a later one
    may replace, and in a burst (several incidents in one loop tick, as a resync replays
    them) each one must reach the history and the automations that trigger on this entity.
    Each write carries the context of its bus event, so the logbook shows that event (object,
    text, level) as the cause of the entity's line.
    """

    entity_description: SaymonEventDescription

    async def async_added_to_hass(self) -> None:
        """Receive this entity's events from the hub."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.entity_description.listen_fn(self.hub, self.target_id, self._event)
        )

    @property
    def update_signal(self) -> str:
        """Only availability changes rewrite this entity; events trigger it directly."""
        return self.hub.signals.availability

    @callback
    def _event(self, event_type: str, data: dict[str, Any], context: Context) -> None:
        self._trigger_event(event_type, self.entity_description.attributes_fn(data))
        self.async_set_context(context)
        self.async_write_ha_state()
