"""Actions: acknowledge, unacknowledge and clear incidents, list incidents, force a resync.

``saymon.run_operation`` lives in :mod:`.operations_action`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.util.json import JsonValueType

from .api.errors import SaymonError, SaymonNotFoundError, SaymonPermissionError
from .const import DOMAIN
from .hub import SaymonHub
from .metric_history import async_setup_metric_history
from .operations_action import async_setup_operations_action
from .runtime import SaymonConfigEntry
from .schema_lib import vol

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_INCIDENT_ID = "incident_id"
ATTR_OBJECT_ID = "object_id"
ATTR_LEVEL = "level"

SERVICE_ACKNOWLEDGE = "acknowledge_incident"
SERVICE_UNACKNOWLEDGE = "unacknowledge_incident"
SERVICE_CLEAR = "clear_incident"
SERVICE_GET_INCIDENTS = "get_incidents"
SERVICE_REFRESH = "refresh"

INCIDENT_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_INCIDENT_ID): cv.string,
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)
GET_INCIDENTS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_OBJECT_ID): cv.string,
        vol.Optional(ATTR_LEVEL): cv.string,
    }
)
REFRESH_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})


def _loaded_hubs(hass: HomeAssistant, entry_id: str | None) -> list[SaymonHub]:
    """The hubs an action addresses: one entry when given, else every loaded entry."""
    if entry_id is not None:
        entry: SaymonConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_found",
                translation_placeholders={"entry_id": entry_id},
            )
        if entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_loaded",
                translation_placeholders={"title": entry.title},
            )
        return [entry.runtime_data.hub]
    hubs = [entry.runtime_data.hub for entry in hass.config_entries.async_loaded_entries(DOMAIN)]
    if not hubs:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_entries")
    return hubs


def _hub_for_incident(hass: HomeAssistant, call: ServiceCall) -> SaymonHub:
    hubs = _loaded_hubs(hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    if len(hubs) == 1:
        return hubs[0]
    incident_id = call.data[ATTR_INCIDENT_ID]
    owners = [hub for hub in hubs if incident_id in hub.model.incidents]
    if len(owners) != 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="ambiguous_incident",
            translation_placeholders={"incident_id": incident_id},
        )
    return owners[0]


def _incident_action(
    action: Callable[[SaymonHub, str], Awaitable[None]],
) -> Callable[[ServiceCall], Coroutine[Any, Any, None]]:
    async def handle(call: ServiceCall) -> None:
        hub = _hub_for_incident(call.hass, call)
        incident_id = call.data[ATTR_INCIDENT_ID]
        placeholders = {"incident_id": incident_id}
        try:
            await action(hub, incident_id)
        except SaymonNotFoundError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="incident_not_found",
                translation_placeholders=placeholders,
            ) from err
        except SaymonPermissionError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="permission_denied",
                translation_placeholders=placeholders,
            ) from err
        except SaymonError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="action_failed",
                translation_placeholders={**placeholders, "error": str(err)},
            ) from err

    return handle


async def _get_incidents(call: ServiceCall) -> ServiceResponse:
    hubs = _loaded_hubs(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    devices = set(call.data.get(ATTR_DEVICE_ID, ()))
    object_id = call.data.get(ATTR_OBJECT_ID)
    level = call.data.get(ATTR_LEVEL)
    incidents: list[JsonValueType] = []
    for hub in hubs:
        wanted_objects: set[str] | None = None
        if devices:
            wanted_objects = {o for d in devices if (o := hub.object_of_device(d)) is not None}
        for incident in sorted(
            hub.model.incidents.values(), key=lambda i: (i.timestamp or 0, i.id)
        ):
            if object_id is not None and incident.entity_id != object_id:
                continue
            if wanted_objects is not None and incident.entity_id not in wanted_objects:
                continue
            if level is not None and level not in (
                incident.level_id,
                hub.model.level_name(incident.level_id),
            ):
                continue
            data = hub.incident_data(incident)
            data["config_entry_id"] = hub.entry.entry_id
            incidents.append(data)
    return {"incidents": incidents}


async def _refresh(call: ServiceCall) -> None:
    """Resync every chosen hub and wake its Comet reconnect; fail if any resync failed.

    The hub's resync keeps retrying in the background after a failure and does not raise;
    whether this call's resync succeeded shows in the count of completed resyncs.
    """
    failed: list[str] = []
    for hub in _loaded_hubs(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID)):
        done = hub.resyncs
        await hub.async_resync()
        hub.comet.reconnect_now()
        if hub.resyncs == done:
            failed.append(hub.host)
    if failed:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="refresh_failed",
            translation_placeholders={"host": ", ".join(failed)},
        )


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, in ``async_setup``)."""
    actions: dict[str, Callable[[SaymonHub, str], Awaitable[None]]] = {
        SERVICE_ACKNOWLEDGE: lambda hub, i: hub.rest.acknowledge_incident(i),
        SERVICE_UNACKNOWLEDGE: lambda hub, i: hub.rest.unacknowledge_incident(i),
        SERVICE_CLEAR: lambda hub, i: hub.rest.clear_incident(i),
    }
    for name, action in actions.items():
        hass.services.async_register(DOMAIN, name, _incident_action(action), INCIDENT_SCHEMA)
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_INCIDENTS,
        _get_incidents,
        GET_INCIDENTS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(DOMAIN, SERVICE_REFRESH, _refresh, REFRESH_SCHEMA)
    async_setup_operations_action(hass)
    async_setup_metric_history(hass, _loaded_hubs)
