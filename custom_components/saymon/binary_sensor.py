"""Binary sensors: the Comet link (diagnostic) and a problem sensor per object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (  # type: ignore[attr-defined, unused-ignore]
    # Home Assistant 2026 moved the device classes to .const and re-exports them implicitly;
    # this import works on both versions at runtime.
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SaymonObjectEntity, SaymonServerEntity, async_track_scope
from .hub import SaymonConfigEntry, SaymonHub

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SaymonServerBinaryDescription(BinarySensorEntityDescription):
    """A binary sensor of the server device."""

    value_fn: Callable[[SaymonHub], bool]


@dataclass(frozen=True, kw_only=True)
class SaymonObjectBinaryDescription(BinarySensorEntityDescription):
    """A binary sensor of an object device."""

    value_fn: Callable[[SaymonHub, str], bool]


SERVER_BINARY_SENSORS: tuple[SaymonServerBinaryDescription, ...] = (
    SaymonServerBinaryDescription(
        key="connectivity",
        translation_key="comet_connection",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda hub: hub.connected,
    ),
)

OBJECT_BINARY_SENSORS: tuple[SaymonObjectBinaryDescription, ...] = (
    SaymonObjectBinaryDescription(
        key="problem",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=lambda hub, object_id: hub.model.has_incident(object_id),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the connectivity sensor and one problem sensor per object in scope."""
    hub = entry.runtime_data
    async_add_entities(
        SaymonConnectivitySensor(hub, description) for description in SERVER_BINARY_SENSORS
    )
    async_track_scope(
        entry,
        async_add_entities,
        lambda ids: [
            SaymonProblemSensor(hub, description, object_id)
            for object_id in ids
            for description in OBJECT_BINARY_SENSORS
        ],
    )


class SaymonConnectivitySensor(SaymonServerEntity, BinarySensorEntity):
    """Whether the Comet link is up, shown at once (no grace period)."""

    entity_description: SaymonServerBinaryDescription

    def __init__(self, hub: SaymonHub, description: SaymonServerBinaryDescription) -> None:
        """Attach to the server device."""
        super().__init__(hub, description, description.key)

    @property
    def available(self) -> bool:
        """Always available: it reports the link itself."""
        return True

    @property
    def is_on(self) -> bool:
        """Read the link state."""
        return self.entity_description.value_fn(self.hub)


class SaymonProblemSensor(SaymonObjectEntity, BinarySensorEntity):
    """On while the object has an open incident."""

    entity_description: SaymonObjectBinaryDescription

    @property
    def update_signal(self) -> str:
        """Only this object's incident changes (not its state changes)."""
        return self.hub.signal_problem(self.target_id)

    @property
    def is_on(self) -> bool:
        """Read from the model's active incidents."""
        return self.entity_description.value_fn(self.hub, self.target_id)
