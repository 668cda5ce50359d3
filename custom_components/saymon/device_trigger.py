"""Device triggers on SAYMON object devices: incident opened, incident closed, state changed.

The triggers of server events (trap, MQTT message, notification, operation finished) are
:mod:`.server_triggers`'.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.homeassistant.triggers import event as event_trigger
from homeassistant.const import (
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from . import server_triggers
from .const import DOMAIN, EVENT_INCIDENT, EVENT_STATE_CHANGED
from .identity import object_id_of
from .schema_lib import vol

TRIGGER_INCIDENT_OPENED = "incident_opened"
TRIGGER_INCIDENT_CLOSED = "incident_closed"
TRIGGER_STATE_CHANGED = "state_changed"

TRIGGER_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    TRIGGER_INCIDENT_OPENED: (EVENT_INCIDENT, {"type": "opened"}),
    TRIGGER_INCIDENT_CLOSED: (EVENT_INCIDENT, {"type": "closed"}),
    TRIGGER_STATE_CHANGED: (EVENT_STATE_CHANGED, {}),
}

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {
        vol.Required(CONF_TYPE): vol.In([*TRIGGER_EVENTS, *server_triggers.SERVER_TRIGGERS]),
        **server_triggers.EXTRA_FIELDS,
    }
)


def _is_object_device(hass: HomeAssistant, device_id: str) -> bool:
    device = dr.async_get(hass).async_get(device_id)
    return device is not None and any(
        domain == DOMAIN and object_id_of(key) is not None for domain, key in device.identifiers
    )


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """Offer the triggers on object devices (the server device has its event entity)."""
    if not _is_object_device(hass, device_id):
        return []
    return [
        {CONF_PLATFORM: "device", CONF_DOMAIN: DOMAIN, CONF_DEVICE_ID: device_id, CONF_TYPE: kind}
        for kind in [*TRIGGER_EVENTS, *server_triggers.offered(hass, device_id)]
    ]


async def async_get_trigger_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """The level of a trap trigger, the exit code of an operation trigger."""
    return server_triggers.capabilities(config[CONF_TYPE])


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Listen for the matching SAYMON bus event of this device."""
    if config[CONF_TYPE] in server_triggers.SERVER_TRIGGERS:
        return await server_triggers.async_attach(hass, config, action, trigger_info)
    event_type, data = TRIGGER_EVENTS[config[CONF_TYPE]]
    event_config = event_trigger.TRIGGER_SCHEMA(
        {
            CONF_PLATFORM: "event",
            event_trigger.CONF_EVENT_TYPE: event_type,
            CONF_EVENT_DATA: {CONF_DEVICE_ID: config[CONF_DEVICE_ID], **data},
        }
    )
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device"
    )
