"""Buttons that run SAYMON operations: one per operation of each object (and link) in scope.

Disabled by default: a server can define many operations, and running one may restart a
service. Enabled, a button runs its operation like ``saymon.run_operation`` does; the result
comes later, as a ``saymon_job`` event (and a logbook line). The operations are read once per
setup with one request per entity type, and for objects that join the scope later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import logging

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.errors import SaymonError
from .api.models import EntityType
from .api.operations import Operation
from .entity import SaymonEntity, SaymonEntityDescription, Subject
from .hub import SaymonHub
from .operations_action import async_run
from .runtime import SaymonConfigEntry

_LOGGER = logging.getLogger(__name__)
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class SaymonButtonDescription(ButtonEntityDescription, SaymonEntityDescription):
    """A button of one operation."""

    operation: Operation


def _description(operation: Operation, subject: Subject) -> SaymonButtonDescription:
    return SaymonButtonDescription(
        key=f"operation_{operation.id}",
        translation_key="link_operation" if subject is Subject.LINK else "operation",
        placeholders={"operation": operation.name},
        subject=subject,
        entity_registry_enabled_default=False,
        operation=operation,
    )


async def _operations(hub: SaymonHub, entity_type: EntityType) -> dict[str, list[Operation]]:
    """Every operation of the objects (or links); none when SAYMON does not say."""
    try:
        found = await hub.live.operations.of_all(entity_type)
    except SaymonError as err:
        _LOGGER.debug("Cannot read SAYMON's operations: %s", err)
        return {}
    for operations in found.values():
        for operation in operations:
            hub.server_events.operation_names[operation.id] = operation.name
    return found


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the operation buttons of what is in scope, and of objects that join it."""
    hub = entry.runtime_data.hub
    objects = await _operations(hub, EntityType.OBJECT)
    links = await _operations(hub, EntityType.LINK) if hub.scope.links else {}

    def buttons(
        found: dict[str, list[Operation]], ids: Iterable[str], subject: Subject
    ) -> list[SaymonOperationButton]:
        return [
            SaymonOperationButton(hub, _description(operation, subject), entity_id)
            for entity_id in ids
            for operation in found.get(entity_id, ())
        ]

    async_add_entities(
        buttons(objects, hub.ordered_objects(), Subject.OBJECT)
        + buttons(links, sorted(hub.links_in_scope), Subject.LINK)
    )

    async def joined(ids: set[str]) -> None:
        found: dict[str, list[Operation]] = {}
        for object_id in sorted(ids):
            try:
                found[object_id] = await hub.live.operations.of(EntityType.OBJECT, object_id)
            except SaymonError as err:
                _LOGGER.debug("Cannot read the operations of %s: %s", object_id, err)
        async_add_entities(buttons(found, sorted(found), Subject.OBJECT))

    def on_joined(ids: set[str]) -> None:
        entry.async_create_background_task(hass, joined(ids), "saymon-operations")

    entry.async_on_unload(hub.add_object_listener(on_joined))


class SaymonOperationButton(SaymonEntity, ButtonEntity):
    """Runs one SAYMON operation of its object or link."""

    entity_description: SaymonButtonDescription

    @property
    def update_signal(self) -> str:
        """Only availability changes rewrite a button."""
        return self.hub.signals.availability

    async def async_press(self) -> None:
        """Run the operation; its result arrives as a ``saymon_job`` event."""
        assert self.target_id is not None  # noqa: S101 - every button has its object or link
        subject = self.entity_description.subject
        await async_run(
            self.hub,
            EntityType.LINK if subject is Subject.LINK else EntityType.OBJECT,
            self.target_id,
            self.entity_description.operation.id,
        )
