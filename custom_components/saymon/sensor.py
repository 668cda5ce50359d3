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
from homeassistant.helpers.typing import StateType

from .api.models import LEVEL_ALARM, LEVEL_MAJOR, LEVEL_WARNING, IncidentLevel
from .entity import (
    EntityView,
    SaymonEntity,
    SaymonEntityDescription,
    ServerView,
    Subject,
    async_track_scope,
)
from .hub import SaymonHub
from .runtime import SaymonConfigEntry

PARALLEL_UPDATES = 0
COMMON_LEVELS = frozenset({LEVEL_ALARM, LEVEL_WARNING, LEVEL_MAJOR})
"""Levels whose count sensors are enabled by default; Cleared and custom levels are not."""


@dataclass(frozen=True, kw_only=True)
class SaymonSensorDescription(SensorEntityDescription, SaymonEntityDescription):
    """A SAYMON sensor: of the server (``server_fn``) or of an object or link (``value_fn``)."""

    server_fn: Callable[[ServerView], StateType] | None = None
    value_fn: Callable[[EntityView], StateType] | None = None


SERVER_SENSORS: tuple[SaymonSensorDescription, ...] = (
    SaymonSensorDescription(
        key="active_incidents",
        translation_key="active_incidents",
        state_class=SensorStateClass.MEASUREMENT,
        server_fn=lambda server: len(server.model.incidents),
    ),
)

OBJECT_SENSORS: tuple[SaymonSensorDescription, ...] = (
    SaymonSensorDescription(
        key="state",
        translation_key="object_state",
        subject=Subject.OBJECT,
        device_class=SensorDeviceClass.ENUM,
        value_fn=lambda entity: entity.state_key,
    ),
)

LINK_SENSORS: tuple[SaymonSensorDescription, ...] = (
    SaymonSensorDescription(
        key="state",
        translation_key="link_state",
        subject=Subject.LINK,
        device_class=SensorDeviceClass.ENUM,
        value_fn=lambda entity: entity.state_key,
    ),
)


def level_description(level: IncidentLevel) -> SaymonSensorDescription:
    """Describe the count sensor of one incident level (named after the level in SAYMON)."""
    level_id = level.id
    return SaymonSensorDescription(
        key=f"incidents_level_{level_id}",
        translation_key="level_incidents",
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=level_id in COMMON_LEVELS,
        placeholders={"level": level.name},
        server_fn=lambda server: server.model.level_count(level_id),
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the server sensors now and object/link sensors as they enter the scope."""
    hub = entry.runtime_data.hub
    async_add_entities(
        SaymonSensor(hub, description)
        for description in (
            *SERVER_SENSORS,
            *(level_description(level) for level in hub.model.levels.values()),
        )
    )
    async_track_scope(
        entry,
        async_add_entities,
        lambda ids: [SaymonSensor(hub, d, target) for target in ids for d in OBJECT_SENSORS],
        lambda ids: [SaymonSensor(hub, d, target) for target in ids for d in LINK_SENSORS],
    )


class SaymonSensor(SaymonEntity, SensorEntity):
    """A count of the server, or the state of an object or link."""

    entity_description: SaymonSensorDescription

    def __init__(
        self, hub: SaymonHub, description: SaymonSensorDescription, target_id: str | None = None
    ) -> None:
        """Describe the server, or the object or link ``target_id``."""
        super().__init__(hub, description, target_id)

    @property
    def native_value(self) -> StateType:
        """Read the value from the model."""
        description = self.entity_description
        if description.server_fn is not None:
            return description.server_fn(self.server)
        assert description.value_fn is not None  # noqa: S101 - one of the two is given
        return description.value_fn(self.view)

    @property
    def options(self) -> list[str] | None:
        """SAYMON's states, built-in ones under translated keys (enum sensors only)."""
        if self.entity_description.device_class is not SensorDeviceClass.ENUM:
            return None
        return self.hub.state_options(self.hub.model)
