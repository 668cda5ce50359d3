"""Device triggers of server events: trap, MQTT message, notification, operation finished.

The bus events of server events carry every device they concern in ``device_ids`` (an MQTT
message can belong to several objects), so these triggers listen to the bus event and match the
device among them. A trap trigger can require a level (its SAYMON name or id), an operation
trigger an exit code; the event's data is ``trigger.event.data`` for conditions and actions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from homeassistant.const import CONF_DEVICE_ID, CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, Event, HassJob, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .schema_lib import vol
from .server_kinds import JOBS, MQTT_MESSAGES, NOTIFICATIONS, SNMP_TRAPS, Kind, chosen

CONF_LEVEL: Final = "level"
CONF_EXIT_CODE: Final = "exit_code"

SERVER_TRIGGERS: Final[dict[str, tuple[Kind, frozenset[str] | None]]] = {
    "snmp_trap_received": (SNMP_TRAPS, None),
    "mqtt_message_received": (MQTT_MESSAGES, None),
    "notification_received": (NOTIFICATIONS, None),
    "operation_finished": (JOBS, frozenset({"finished", "failed"})),
}
"""Trigger type -> (kind, the event types it fires on; ``None``: all)."""
ALWAYS_OFFERED: Final = frozenset({"operation_finished"})
"""Results of operations run from Home Assistant are reported even with job events off."""
EXTRA_FIELDS: Final = {
    vol.Optional(CONF_LEVEL): cv.string,
    vol.Optional(CONF_EXIT_CODE): vol.Coerce(int),
}


def _entry_ids(device: Any) -> Collection[str]:
    """The config entries a device belongs to, as the running Home Assistant records them.

    Home Assistant 2026.8 gives a device one config entry (``config_entry_id``) and deprecates
    ``config_entries`` (to stop working in 2027.10); older releases have only the set. The
    registry's device types differ between the two as well, hence ``Any``.
    """
    entry_id: str | None = getattr(device, "config_entry_id", None)
    if entry_id is not None:
        return (entry_id,)
    entry_ids: Collection[str] = device.config_entries
    return entry_ids


def offered(hass: HomeAssistant, device_id: str) -> list[str]:
    """The server event triggers of an object device: of the kinds its entry has on."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return []
    keys = {
        kind.key
        for entry_id in _entry_ids(device)
        if (entry := hass.config_entries.async_get_entry(entry_id)) is not None
        and entry.domain == DOMAIN
        for kind in chosen(entry.options)
    }
    return [
        trigger
        for trigger, (kind, _) in SERVER_TRIGGERS.items()
        if kind.key in keys or trigger in ALWAYS_OFFERED
    ]


def capabilities(trigger: str) -> dict[str, vol.Schema]:
    """The extra fields of a trigger in the automation editor."""
    if trigger == "snmp_trap_received":
        return {"extra_fields": vol.Schema({vol.Optional(CONF_LEVEL): cv.string})}
    if trigger == "operation_finished":
        return {"extra_fields": vol.Schema({vol.Optional(CONF_EXIT_CODE): vol.Coerce(int)})}
    return {}


async def async_attach(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Listen for the trigger's bus event about this device."""
    kind, types = SERVER_TRIGGERS[config[CONF_TYPE]]
    device_id: str = config[CONF_DEVICE_ID]
    level: str | None = config.get(CONF_LEVEL)
    exit_code: int | None = config.get(CONF_EXIT_CODE)
    job = HassJob(action, f"saymon device trigger {trigger_info}")
    trigger_data = trigger_info["trigger_data"]

    @callback
    def matches(data: Mapping[str, Any]) -> bool:
        return (
            device_id in (data.get("device_ids") or ())
            and (types is None or data.get("type") in types)
            and (level is None or level in (str(data.get("level_id")), data.get("level")))
            and (exit_code is None or data.get("exit_code") == exit_code)
        )

    @callback
    def handle(event: Event) -> None:
        hass.loop.call_soon(
            hass.async_run_hass_job,
            job,
            {
                "trigger": {
                    **trigger_data,
                    "platform": "device",
                    "event": event,
                    "description": f"event '{event.event_type}'",
                }
            },
            event.context,
        )

    return hass.bus.async_listen(kind.event, handle, event_filter=matches)
