"""Sensors: active incidents (total and per level), object and link states, metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import UNDEFINED, StateType

from .api.models import LEVEL_ALARM, LEVEL_MAJOR, LEVEL_WARNING, IncidentLevel
from .entity import (
    EntityView,
    SaymonEntity,
    SaymonEntityDescription,
    ServerView,
    Subject,
    async_track_metrics,
    async_track_scope,
)
from .hub import SaymonHub
from .hub.metric_registry import metric_key
from .metric_catalog import MetricSpec, state_value
from .runtime import SaymonConfigEntry

PARALLEL_UPDATES = 0
COMMON_LEVELS = frozenset({LEVEL_ALARM, LEVEL_WARNING, LEVEL_MAJOR})
"""Levels whose count sensors are enabled by default; Cleared and custom levels are not."""


@dataclass(frozen=True, kw_only=True)
class SaymonSensorDescription(SensorEntityDescription, SaymonEntityDescription):
    """A SAYMON sensor: of the server (``server_fn``) or of an object or link (``value_fn``)."""

    server_fn: Callable[[ServerView], StateType] | None = None
    value_fn: Callable[[EntityView], StateType | datetime] | None = None
    available_fn: Callable[[EntityView], bool] | None = None
    """Whether the value can be trusted, beyond the object's own availability."""


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


@cache
def metric_description(spec: MetricSpec, link_metric: str | None = None) -> SaymonSensorDescription:
    """Describe the sensor of one metric (shared by every object or link with that metric).

    ``link_metric``: the metric's name, for a link's sensor (named after the link too).
    """
    path, known = spec.path, spec.known
    link = link_metric is not None
    return SaymonSensorDescription(
        key=metric_key(path),
        translation_key="link_metric" if link else spec.translation_key,
        name=UNDEFINED if link or known is not None else spec.fallback_name,
        icon=known.icon if link and known is not None else None,
        placeholders={"metric": link_metric} if link_metric is not None else None,
        subject=Subject.LINK if link else Subject.OBJECT,
        on_metrics=True,
        native_unit_of_measurement=spec.unit,
        device_class=spec.device_class,
        state_class=spec.state_class,
        suggested_unit_of_measurement=spec.suggested_unit,
        suggested_display_precision=spec.precision,
        entity_category=spec.category,
        entity_registry_enabled_default=spec.enabled,
        value_fn=lambda entity: state_value(
            entity.model.metrics.value(entity.entity_id, path), spec.timestamp
        ),
        available_fn=lambda entity: entity.model.metrics.fresh(entity.entity_id, path),
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
    async_track_metrics(
        entry,
        async_add_entities,
        False,
        lambda target, spec, link_metric: SaymonSensor(
            hub, metric_description(spec, link_metric), target
        ),
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
    def native_value(self) -> StateType | datetime:
        """Read the value from the model."""
        description = self.entity_description
        if description.server_fn is not None:
            return description.server_fn(self.server)
        assert description.value_fn is not None  # noqa: S101 - one of the two is given
        return description.value_fn(self.view)

    @property
    def available(self) -> bool:
        """The object's availability, and the description's own test (metrics: not expired)."""
        available_fn = self.entity_description.available_fn
        return super().available and (available_fn is None or available_fn(self.view))

    @property
    def options(self) -> list[str] | None:
        """SAYMON's states, built-in ones under translated keys (enum sensors only)."""
        if self.entity_description.device_class is not SensorDeviceClass.ENUM:
            return None
        return self.hub.state_options(self.hub.model)
