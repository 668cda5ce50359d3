"""Binary sensors: the Comet link (diagnostic), a problem sensor per object, boolean metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

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
from homeassistant.helpers.typing import UNDEFINED

from .entity import (
    EntityView,
    SaymonEntity,
    SaymonEntityDescription,
    ServerView,
    Subject,
    async_track_metrics,
    async_track_scope,
)
from .hub.metric_registry import metric_key
from .metric_catalog import MetricSpec
from .runtime import SaymonConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SaymonBinarySensorDescription(BinarySensorEntityDescription, SaymonEntityDescription):
    """A SAYMON binary sensor: of the server (``server_fn``) or of an object (``is_on_fn``)."""

    server_fn: Callable[[ServerView], bool] | None = None
    is_on_fn: Callable[[EntityView], bool | None] | None = None
    available_fn: Callable[[EntityView], bool] | None = None
    """Whether the value can be trusted, beyond the object's own availability."""


SERVER_BINARY_SENSORS: tuple[SaymonBinarySensorDescription, ...] = (
    SaymonBinarySensorDescription(
        key="connectivity",
        translation_key="comet_connection",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        always_available=True,  # it reports the link itself, at once (no grace period)
        server_fn=lambda server: server.connected,
    ),
)

OBJECT_BINARY_SENSORS: tuple[SaymonBinarySensorDescription, ...] = (
    SaymonBinarySensorDescription(
        key="problem",
        subject=Subject.OBJECT,
        device_class=BinarySensorDeviceClass.PROBLEM,
        on_problem=True,
        is_on_fn=lambda entity: entity.problem,
    ),
)


@cache
def metric_description(
    spec: MetricSpec, link_metric: str | None = None
) -> SaymonBinarySensorDescription:
    """Describe the binary sensor of one ``BOOLEAN`` metric (shared like the sensors' ones)."""
    path = spec.path
    link = link_metric is not None
    return SaymonBinarySensorDescription(
        key=metric_key(path),
        translation_key="link_metric" if link else None,
        name=UNDEFINED if link else spec.fallback_name,
        placeholders={"metric": link_metric} if link_metric is not None else None,
        subject=Subject.LINK if link else Subject.OBJECT,
        on_metrics=True,
        entity_category=spec.category,
        entity_registry_enabled_default=spec.enabled,
        is_on_fn=lambda entity: _boolean(entity.model.metrics.value(entity.entity_id, path)),
        available_fn=lambda entity: entity.model.metrics.fresh(entity.entity_id, path),
    )


def _boolean(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the connectivity sensor and one problem sensor per object in scope."""
    hub = entry.runtime_data.hub
    async_add_entities(SaymonBinarySensor(hub, d) for d in SERVER_BINARY_SENSORS)
    async_track_scope(
        entry,
        async_add_entities,
        lambda ids: [
            SaymonBinarySensor(hub, d, target) for target in ids for d in OBJECT_BINARY_SENSORS
        ],
    )
    async_track_metrics(
        entry,
        async_add_entities,
        True,
        lambda target, spec, link_metric: SaymonBinarySensor(
            hub, metric_description(spec, link_metric), target
        ),
    )


class SaymonBinarySensor(SaymonEntity, BinarySensorEntity):
    """The Comet link, or whether an object has an open incident."""

    entity_description: SaymonBinarySensorDescription

    @property
    def available(self) -> bool:
        """The object's availability, and the description's own test (metrics: not expired)."""
        available_fn = self.entity_description.available_fn
        return super().available and (available_fn is None or available_fn(self.view))

    @property
    def is_on(self) -> bool | None:
        """Read the value from the model (or the link)."""
        description = self.entity_description
        if description.server_fn is not None:
            return description.server_fn(self.server)
        assert description.is_on_fn is not None  # noqa: S101 - one of the two is given
        return description.is_on_fn(self.view)
