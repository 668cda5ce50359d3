"""Sensors: active incidents (total and per level), object states, link states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.models import LEVEL_ALARM, LEVEL_MAJOR, LEVEL_WARNING
from .entity import (
    SaymonLinkEntity,
    SaymonObjectEntity,
    SaymonServerEntity,
    SaymonTrackedEntity,
    async_track_scope,
)
from .hub import SaymonConfigEntry, SaymonHub
from .states import state_key, state_options

PARALLEL_UPDATES = 0
COMMON_LEVELS = frozenset({LEVEL_ALARM, LEVEL_WARNING, LEVEL_MAJOR})
"""Levels whose count sensors are enabled by default; Cleared and custom levels are not."""


@dataclass(frozen=True, kw_only=True)
class SaymonServerSensorDescription(SensorEntityDescription):
    """A sensor of the server device."""

    value_fn: Callable[[SaymonHub], int | None]


@dataclass(frozen=True, kw_only=True)
class SaymonEntitySensorDescription(SensorEntityDescription):
    """A sensor of an object or link, reading its entry in the model."""

    value_fn: Callable[[SaymonHub, str], str | None]


SERVER_SENSORS: tuple[SaymonServerSensorDescription, ...] = (
    SaymonServerSensorDescription(
        key="active_incidents",
        translation_key="active_incidents",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda hub: len(hub.model.incidents),
    ),
)

OBJECT_SENSORS: tuple[SaymonEntitySensorDescription, ...] = (
    SaymonEntitySensorDescription(
        key="state",
        translation_key="object_state",
        device_class=SensorDeviceClass.ENUM,
        value_fn=lambda hub, object_id: state_key(hub.model, hub.model.state_of(object_id)),
    ),
)

LINK_SENSORS: tuple[SaymonEntitySensorDescription, ...] = (
    SaymonEntitySensorDescription(
        key="state",
        translation_key="link_state",
        device_class=SensorDeviceClass.ENUM,
        value_fn=lambda hub, link_id: state_key(hub.model, hub.model.state_of(link_id)),
    ),
)


def level_description(level_id: str) -> SaymonServerSensorDescription:
    """Describe the count sensor of one incident level."""
    return SaymonServerSensorDescription(
        key=f"incidents_level_{level_id}",
        translation_key="level_incidents",
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=level_id in COMMON_LEVELS,
        value_fn=lambda hub: hub.model.level_count(level_id),
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the server sensors now and object/link sensors as they enter the scope."""
    hub = entry.runtime_data
    entities: list[SensorEntity] = [
        SaymonServerSensor(hub, description) for description in SERVER_SENSORS
    ]
    entities.extend(
        SaymonLevelSensor(hub, level_description(level.id), level.name)
        for level in hub.model.levels.values()
    )
    async_add_entities(entities)
    async_track_scope(
        entry,
        async_add_entities,
        lambda ids: [
            SaymonObjectSensor(hub, description, object_id)
            for object_id in ids
            for description in OBJECT_SENSORS
        ],
        lambda ids: [
            SaymonLinkSensor(hub, description, link_id)
            for link_id in ids
            for description in LINK_SENSORS
        ],
    )


class SaymonServerSensor(SaymonServerEntity, SensorEntity):
    """A count on the server device."""

    entity_description: SaymonServerSensorDescription

    def __init__(self, hub: SaymonHub, description: SaymonServerSensorDescription) -> None:
        """Attach to the server device."""
        super().__init__(hub, description, description.key)

    @property
    def native_value(self) -> int | None:
        """Read the count from the model."""
        return self.entity_description.value_fn(self.hub)


class SaymonLevelSensor(SaymonServerSensor):
    """Active incidents of one level; the level's SAYMON name goes into the entity name."""

    def __init__(
        self, hub: SaymonHub, description: SaymonServerSensorDescription, level_name: str
    ) -> None:
        """Name the sensor after the level."""
        super().__init__(hub, description)
        self._attr_translation_placeholders = {"level": level_name}


class _SaymonStateSensor(SaymonTrackedEntity, SensorEntity):
    """The state of a SAYMON object or link."""

    entity_description: SaymonEntitySensorDescription

    @property
    def native_value(self) -> str | None:
        """Read the state from the model."""
        return self.entity_description.value_fn(self.hub, self.target_id)

    @property
    def options(self) -> list[str]:
        """SAYMON's states, built-in ones under translated keys."""
        return state_options(self.hub.model)


class SaymonObjectSensor(SaymonObjectEntity, _SaymonStateSensor):
    """The state of a SAYMON object, on its device."""


class SaymonLinkSensor(SaymonLinkEntity, _SaymonStateSensor):
    """The state of a SAYMON link, on the server device."""
