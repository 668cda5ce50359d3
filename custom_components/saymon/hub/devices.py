"""The device tree: SAYMON's objects in scope as Home Assistant devices, nested as in SAYMON.

It decides which objects and links are in scope, makes the device registry mirror them (a
service device for the server, one device per object under its parent's), and answers the
lookups the rest of the integration needs (device id of an object, object of a device).
Identifiers come from SAYMON ids only (see :mod:`..identity`).
"""

from __future__ import annotations

import inspect
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from ..api.model import SaymonModel
from ..api.models import EntityType
from ..const import DOMAIN
from ..identity import object_id_of, object_key
from ..scope import Scope

_VIA_DEVICE_ID = (
    "via_device_id" in inspect.signature(dr.DeviceRegistry.async_get_or_create).parameters
)
"""Home Assistant 2026 links devices by parent device id (``via_device`` is deprecated there)."""


class DeviceTree:
    """Scope and devices of one config entry."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, account: str, base_url: str, scope: Scope
    ) -> None:
        """Nothing is registered before :meth:`refresh`."""
        self._hass = hass
        self._entry_id = entry_id
        self._account = account
        self._base_url = base_url
        self.scope = scope
        self.objects_in_scope: set[str] = set()
        self.links_in_scope: set[str] = set()
        self._device_ids: dict[str, str] = {}
        """Device id per object in scope, filled on first use, emptied when devices change."""
        self._infos: dict[tuple[str, str], DeviceInfo] = {}

    @property
    def server_identifier(self) -> tuple[str, str]:
        """Device registry identifier of the server (service) device."""
        return (DOMAIN, self._account)

    def object_identifier(self, object_id: str) -> tuple[str, str]:
        """Device registry identifier of an object's device (from SAYMON ids only)."""
        return (DOMAIN, object_key(self._account, object_id))

    def device_info(self, identifier: tuple[str, str]) -> DeviceInfo:
        """The device info of an entity of this device, one shared by all of them.

        An object can have dozens of metric entities: one dictionary per device, not per
        entity (Home Assistant only reads it).
        """
        info = self._infos.get(identifier)
        if info is None:
            info = self._infos[identifier] = DeviceInfo(identifiers={identifier})
        return info

    def object_url(self, object_id: str) -> str:
        """Link into SAYMON's web UI for an object."""
        return f"{self._base_url}/#objects/{object_id}"

    def refresh(self, model: SaymonModel, server_name: str) -> tuple[set[str], set[str]]:
        """Recompute the scope and mirror it in the device registry.

        Returns the object and link ids that entered the scope (their entities are created).
        """
        objects = self.scope.select(model.objects)
        links = set(model.links) if self.scope.links else set()
        new_objects = objects - self.objects_in_scope
        new_links = links - self.links_in_scope
        self.objects_in_scope = objects
        self.links_in_scope = links
        self._sync(model, server_name)
        return new_objects, new_links

    def tracks(self, entity_type: EntityType, entity_id: str) -> bool:
        """Whether an object or link is in scope (its state changes are shown)."""
        in_scope = self.links_in_scope if entity_type is EntityType.LINK else self.objects_in_scope
        return entity_id in in_scope

    def parent_in_scope(self, model: SaymonModel, object_id: str) -> str | None:
        """The first parent of an object that is itself a device, if any."""
        obj = model.objects.get(object_id)
        if obj is None:
            return None
        return next((p for p in obj.parent_ids if p in self.objects_in_scope), None)

    def ordered_objects(self, model: SaymonModel) -> list[str]:
        """Objects in scope, parents before children (``via_device`` needs the parent first)."""
        order: list[str] = []
        placed: set[str] = set()

        def place(object_id: str, trail: set[str]) -> None:
            if object_id in placed or object_id in trail:
                return
            parent = self.parent_in_scope(model, object_id)
            if parent is not None:
                place(parent, trail | {object_id})
            placed.add(object_id)
            order.append(object_id)

        for object_id in sorted(self.objects_in_scope):
            place(object_id, set())
        return order

    def _sync(self, model: SaymonModel, server_name: str) -> None:
        self._device_ids.clear()
        registry = dr.async_get(self._hass)
        entry_id = self._entry_id
        registry.async_get_or_create(
            config_entry_id=entry_id,
            identifiers={self.server_identifier},
            entry_type=dr.DeviceEntryType.SERVICE,
            manufacturer="SAYMON",
            model="SAYMON server",
            name=server_name,
            configuration_url=self._base_url,
        )
        wanted = {self.server_identifier}
        for object_id in self.ordered_objects(model):
            obj = model.objects[object_id]
            parent = self.parent_in_scope(model, object_id)
            identifier = self.object_identifier(object_id)
            wanted.add(identifier)
            cls = model.classes.get(obj.class_id or "")
            via = self.object_identifier(parent) if parent is not None else self.server_identifier
            registry.async_get_or_create(
                config_entry_id=entry_id,
                identifiers={identifier},
                manufacturer="SAYMON",
                model=cls.name if cls is not None else obj.class_id,
                name=obj.name,
                configuration_url=self.object_url(object_id),
                **_via_device(registry, via, entry_id),
            )
        for device in dr.async_entries_for_config_entry(registry, entry_id):
            if not device.identifiers & wanted:
                registry.async_remove_device(device.id)  # our devices belong to this entry only

    def device_id_of(self, object_id: str | None) -> str | None:
        """Home Assistant device id of an object in scope."""
        if object_id is None or object_id not in self.objects_in_scope:
            return None
        if (cached := self._device_ids.get(object_id)) is not None:
            return cached  # every event names its device: no registry lookup per event
        device = self.device(self.object_identifier(object_id))
        if device is None:
            return None
        self._device_ids[object_id] = device.id
        return device.id

    def device(self, identifier: tuple[str, str]) -> dr.DeviceEntry | None:
        """Look up this entry's device by a SAYMON identifier."""
        return find_device(dr.async_get(self._hass), identifier, self._entry_id)

    def object_of_device(self, device_id: str) -> str | None:
        """SAYMON object id behind a Home Assistant device of this entry."""
        device = dr.async_get(self._hass).async_get(device_id)
        if device is None:
            return None
        for domain, key in device.identifiers:
            if domain == DOMAIN and (object_id := object_id_of(key, self._account)) is not None:
                return object_id
        return None


def find_device(
    registry: dr.DeviceRegistry, identifier: tuple[str, str], entry_id: str
) -> dr.DeviceEntry | None:
    """Find a device of a config entry by identifier, on every supported Home Assistant.

    Home Assistant 2026 made identifiers unique per config entry only and deprecated the
    global ``async_get_device`` lookup in favour of ``async_get_device_by_identifier``.
    """
    by_identifier = getattr(registry, "async_get_device_by_identifier", None)
    if by_identifier is not None:
        device: dr.DeviceEntry | None = by_identifier(identifier, entry_id)
        return device
    return registry.async_get_device({identifier})


def _via_device(
    registry: dr.DeviceRegistry, parent: tuple[str, str], entry_id: str
) -> dict[str, Any]:
    """Return the parent-device argument in the form this Home Assistant version expects."""
    if not _VIA_DEVICE_ID:
        return {"via_device": parent}
    device = find_device(registry, parent, entry_id)
    return {"via_device_id": device.id if device is not None else None}
