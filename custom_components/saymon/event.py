"""An event entity for SAYMON incidents (opened, updated, closed) on the server device."""

from __future__ import annotations

import asyncio
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
    """The latest incident change, with the incident's details as event attributes.

    Like every other state write, the entity's writes are coalesced per event-loop tick:
    during a storm of thousands of incidents per second it shows the last change of each
    tick, while every change still reaches the bus as a ``saymon_incident`` event.
    """

    def __init__(self, hub: SaymonHub) -> None:
        """Attach to the server device."""
        super().__init__(hub, INCIDENT_EVENTS, INCIDENT_EVENTS.key)
        self._pending: tuple[str, dict[str, Any]] | None = None
        self._flush_handle: asyncio.Handle | None = None

    async def async_added_to_hass(self) -> None:
        """Receive incident changes; the last one of each loop tick is written."""
        await super().async_added_to_hass()
        self.async_on_remove(self.hub.add_incident_listener(self._incident))
        self.async_on_remove(self._cancel_flush)

    @property
    def update_signal(self) -> str:
        """Only availability changes rewrite this entity; incidents trigger it directly."""
        return self.hub.signal_availability

    @callback
    def _incident(self, kind: str, data: dict[str, Any]) -> None:
        self._pending = (kind, data)
        if self._flush_handle is None:
            self._flush_handle = self.hass.loop.call_soon(self._flush)

    @callback
    def _flush(self) -> None:
        self._flush_handle = None
        pending, self._pending = self._pending, None
        if pending is not None:
            self._trigger_event(*pending)
            self.async_write_ha_state()

    @callback
    def _cancel_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
