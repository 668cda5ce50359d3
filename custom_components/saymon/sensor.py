"""Sensors: active incidents (total and per level), object states, link states."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.models import LEVEL_ALARM, LEVEL_MAJOR, LEVEL_WARNING
from .entity import SaymonLinkEntity, SaymonObjectEntity, SaymonServerEntity
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
    entities.extend(_object_sensors(hub, hub.ordered_objects()))
    entities.extend(_link_sensors(hub, sorted(hub.links_in_scope)))
    async_add_entities(entities)

    @callback
    def add_objects(object_ids: set[str]) -> None:
        async_add_entities(_object_sensors(hub, sorted(object_ids)))

    @callback
    def add_links(link_ids: set[str]) -> None:
        async_add_entities(_link_sensors(hub, sorted(link_ids)))

    entry.async_on_unload(hub.add_object_listener(add_objects))
    entry.async_on_unload(hub.add_link_listener(add_links))


def _object_sensors(hub: SaymonHub, object_ids: Iterable[str]) -> list[SensorEntity]:
    return [
        SaymonObjectSensor(hub, description, object_id)
        for object_id in object_ids
        for description in OBJECT_SENSORS
    ]


def _link_sensors(hub: SaymonHub, link_ids: Iterable[str]) -> list[SensorEntity]:
    return [
        SaymonLinkSensor(hub, description, link_id)
        for link_id in link_ids
        for description in LINK_SENSORS
    ]


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


class SaymonObjectSensor(SaymonObjectEntity, SensorEntity):
    """The state of a SAYMON object."""

    entity_description: SaymonEntitySensorDescription

    @property
    def native_value(self) -> str | None:
        """Read the state from the model."""
        return self.entity_description.value_fn(self.hub, self.object_id)

    @property
    def options(self) -> list[str]:
        """SAYMON's states, built-in ones under translated keys."""
        return state_options(self.hub.model)


class SaymonLinkSensor(SaymonLinkEntity, SensorEntity):
    """The state of a SAYMON link."""

    entity_description: SaymonEntitySensorDescription

    @property
    def native_value(self) -> str | None:
        """Read the state from the model."""
        return self.entity_description.value_fn(self.hub, self.link_id)

    @property
    def options(self) -> list[str]:
        """SAYMON's states, built-in ones under translated keys."""
        return state_options(self.hub.model)
