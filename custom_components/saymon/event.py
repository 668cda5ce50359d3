"""An event entity for SAYMON incidents (opened, updated, closed) on the server device."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.model import IncidentChangeKind
from .api.models import LEVEL_ALARM, LEVEL_CLEARED, LEVEL_MAJOR, LEVEL_WARNING
from .entity import SaymonEntity, SaymonEntityDescription
from .hub import SaymonHub
from .runtime import SaymonConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SaymonEventDescription(EventEntityDescription, SaymonEntityDescription):
    """The server's incident event entity."""


INCIDENT_EVENTS = SaymonEventDescription(
    key="incidents",
    translation_key="incidents",
    event_types=[kind.value for kind in IncidentChangeKind],
)

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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the incident event entity."""
    async_add_entities([SaymonIncidentEvent(entry.runtime_data.hub)])


class SaymonIncidentEvent(SaymonEntity, EventEntity):
    """Every incident change, one event each, with the incident's details as attributes.

    Not coalesced like the other entities' writes: an event is not a state that a later one
    may replace, and in a burst (several incidents in one loop tick, as a resync replays
    them) each one must reach the history and the automations that trigger on this entity.
    Each write carries the context of its ``saymon_incident`` bus event, so the logbook
    shows that incident (object, text, level) as the cause of the entity's line.
    """

    entity_description: SaymonEventDescription

    def __init__(self, hub: SaymonHub) -> None:
        """Attach to the server device."""
        super().__init__(hub, INCIDENT_EVENTS)

    async def async_added_to_hass(self) -> None:
        """Receive incident changes from the hub."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hub.add_incident_listener(self._incident))

    @property
    def update_signal(self) -> str:
        """Only availability changes rewrite this entity; incidents trigger it directly."""
        return self.hub.signals.availability

    @callback
    def _incident(self, kind: str, data: dict[str, Any], context: Context) -> None:
        self._trigger_event(kind, {**data, "level_key": level_key(data)})
        self.async_set_context(context)
        self.async_write_ha_state()
