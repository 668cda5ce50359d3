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

from .entity import (
    EntityView,
    SaymonEntity,
    SaymonEntityDescription,
    ServerView,
    Subject,
    async_track_scope,
)
from .runtime import SaymonConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SaymonBinarySensorDescription(BinarySensorEntityDescription, SaymonEntityDescription):
    """A SAYMON binary sensor: of the server (``server_fn``) or of an object (``is_on_fn``)."""

    server_fn: Callable[[ServerView], bool] | None = None
    is_on_fn: Callable[[EntityView], bool] | None = None


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


class SaymonBinarySensor(SaymonEntity, BinarySensorEntity):
    """The Comet link, or whether an object has an open incident."""

    entity_description: SaymonBinarySensorDescription

    @property
    def is_on(self) -> bool:
        """Read the value from the model (or the link)."""
        description = self.entity_description
        if description.server_fn is not None:
            return description.server_fn(self.server)
        assert description.is_on_fn is not None  # noqa: S101 - one of the two is given
        return description.is_on_fn(self.view)
