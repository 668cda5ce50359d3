"""Base entities: shared availability, device info and update signals.

Entities never poll. The hub sends a dispatcher signal per object (coalesced per loop tick)
and one broadcast when availability flips, so an event reaches only the entities it concerns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.models import EntityType
from .hub import SaymonConfigEntry, SaymonHub


class SaymonEntity(Entity):
    """An entity of one SAYMON server."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, hub: SaymonHub, description: EntityDescription, unique_suffix: str) -> None:
        """Name the entity from its description; ids come from SAYMON ids only."""
        self.hub = hub
        self.entity_description = description
        self._attr_unique_id = f"{hub.server_key}|{unique_suffix}"

    @property
    def update_signal(self) -> str:
        """The dispatcher signal that tells this entity to write its state."""
        return self.hub.signal_server

    @property
    def available(self) -> bool:
        """Unavailable only once the Comet link has been down longer than the grace period."""
        return self.hub.available

    async def async_added_to_hass(self) -> None:
        """Listen for this entity's updates and for availability changes."""
        await super().async_added_to_hass()
        # dict.fromkeys: the event entity's update signal *is* the availability signal, and
        # connecting one method twice to one signal makes the second removal warn.
        for signal in dict.fromkeys((self.update_signal, self.hub.signal_availability)):
            self.async_on_remove(
                async_dispatcher_connect(self.hass, signal, self.async_write_ha_state)
            )


class SaymonServerEntity(SaymonEntity):
    """An entity of the server (service) device."""

    def __init__(self, hub: SaymonHub, description: EntityDescription, unique_suffix: str) -> None:
        """Attach to the server device."""
        super().__init__(hub, description, unique_suffix)
        self._attr_device_info = DeviceInfo(identifiers={hub.server_identifier})


class SaymonTrackedEntity(SaymonEntity):
    """An entity of one SAYMON object or link: updated by that entity's signal only."""

    def __init__(
        self,
        hub: SaymonHub,
        description: EntityDescription,
        entity_type: EntityType,
        target_id: str,
    ) -> None:
        """Remember which SAYMON entity this is; the unique id says it too."""
        super().__init__(
            hub, description, f"{entity_type.name.lower()}|{target_id}|{description.key}"
        )
        self.entity_type = entity_type
        self.target_id = target_id

    @property
    def update_signal(self) -> str:
        """Only this SAYMON entity's changes."""
        return self.hub.signal_entity(self.target_id)

    async def async_added_to_hass(self) -> None:
        """Also leave Home Assistant when SAYMON deletes the object or link."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, self.hub.signal_removed(self.target_id), self._async_deleted
            )
        )

    async def _async_deleted(self) -> None:
        """Remove this entity from the entity registry (and so from Home Assistant)."""
        registry = er.async_get(self.hass)
        if registry.async_get(self.entity_id) is not None:
            registry.async_remove(self.entity_id)  # Home Assistant then removes the entity
        else:  # not registered, or its device already took it along
            await self.async_remove(force_remove=True)

    @property
    def available(self) -> bool:
        """Unavailable while the link is down, or once the entity left SAYMON."""
        collection = (
            self.hub.model.links if self.entity_type is EntityType.LINK else self.hub.model.objects
        )
        return super().available and self.target_id in collection


class SaymonObjectEntity(SaymonTrackedEntity):
    """An entity of one SAYMON object's device."""

    def __init__(self, hub: SaymonHub, description: EntityDescription, object_id: str) -> None:
        """Attach to the object's device."""
        super().__init__(hub, description, EntityType.OBJECT, object_id)
        self._attr_device_info = DeviceInfo(identifiers={hub.object_identifier(object_id)})


class SaymonLinkEntity(SaymonTrackedEntity):
    """An entity of a SAYMON link, shown on the server device."""

    def __init__(self, hub: SaymonHub, description: EntityDescription, link_id: str) -> None:
        """Attach to the server device; the name says which link."""
        super().__init__(hub, description, EntityType.LINK, link_id)
        self._attr_device_info = DeviceInfo(identifiers={hub.server_identifier})
        self._attr_translation_placeholders = {
            "link": hub.model.entity_name(EntityType.LINK, link_id) or link_id
        }


def async_track_scope(
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    objects: Callable[[Iterable[str]], Iterable[Entity]],
    links: Callable[[Iterable[str]], Iterable[Entity]] | None = None,
) -> None:
    """Add entities for what is in scope now, and for objects/links that join it later."""
    hub = entry.runtime_data
    async_add_entities(objects(hub.ordered_objects()))
    entry.async_on_unload(
        hub.add_object_listener(lambda ids: async_add_entities(objects(sorted(ids))))
    )
    if links is not None:
        async_add_entities(links(sorted(hub.links_in_scope)))
        entry.async_on_unload(
            hub.add_link_listener(lambda ids: async_add_entities(links(sorted(ids))))
        )
