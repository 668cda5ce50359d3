"""An event entity for SAYMON incidents (opened, updated, closed) on the server device."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SaymonServerEntity
from .hub import SaymonConfigEntry, SaymonHub
from .model import IncidentChangeKind

PARALLEL_UPDATES = 0

INCIDENT_EVENTS = EventEntityDescription(
    key="incidents",
    translation_key="incidents",
    event_types=[kind.value for kind in IncidentChangeKind],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the incident event entity."""
    async_add_entities([SaymonIncidentEvent(entry.runtime_data)])


class SaymonIncidentEvent(SaymonServerEntity, EventEntity):
    """Every incident change, with the incident's details as event attributes."""

    def __init__(self, hub: SaymonHub) -> None:
        """Attach to the server device."""
        super().__init__(hub, INCIDENT_EVENTS, INCIDENT_EVENTS.key)

    async def async_added_to_hass(self) -> None:
        """Receive incident changes one by one (they are not coalesced like states)."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hub.add_incident_listener(self._incident))

    @property
    def update_signal(self) -> str:
        """Only availability changes rewrite this entity; incidents trigger it directly."""
        return self.hub.signal_availability

    @callback
    def _incident(self, kind: str, data: dict[str, Any]) -> None:
        self._trigger_event(kind, data)
        self.async_write_ha_state()
