"""Logbook lines for SAYMON's bus events: one line per happening, with a name, icon and link.

The logbook lists every recorded state change of an entity by itself, and every bus event
that has a describer here. What an entity already shows is not described again:

* An object's (or link's) state change is the line of its **State** sensor: translated,
  with the state's icon, linked to the sensor. ``saymon_state_changed`` therefore has no
  describer; a second line would only repeat it in English.
* An incident has no entity state that tells what happened (the **Problem** sensor only
  turns on and off, the **Incidents** event entity's state is a timestamp), so
  ``saymon_incident`` is described: the object's name, what happened to the incident, its
  text and level, an icon for the change, and a link to the object's **Problem** sensor
  (or, for an incident without a device, to the **Incidents** event entity). The event
  entity's own line is written in the bus event's context, so the logbook shows this
  description as its cause.
* A model change (object created, modified, removed) is described the same way, linked to
  the object's **State** sensor while it exists.

Logbook messages are English: Home Assistant does not translate what describers return.
Server events (traps, MQTT messages, notifications, jobs) have lines of their own
(:mod:`.logbook_server_events`), worded from the integration's translations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_ICON,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .const import DOMAIN, EVENT_INCIDENT, EVENT_MODEL_CHANGED
from .hub import SaymonHub
from .logbook_server_events import async_describe_server_events

INCIDENT_ICONS: Final = {
    "opened": "mdi:alert-circle",
    "updated": "mdi:alert-circle-outline",
    "closed": "mdi:check-circle-outline",
}
"""The icons of the Incidents event entity's event types (icons.json), line by line."""
MODEL_ICONS: Final = {
    "created": "mdi:plus-circle-outline",
    "modified": "mdi:pencil-circle-outline",
    "removed": "mdi:minus-circle-outline",
}
REPLAYED: Final = ", replayed after a reconnect"


def _device_entity(hass: HomeAssistant, device_id: Any, domain: str) -> str | None:
    """Our entity of ``domain`` on a device (the object's Problem or State sensor)."""
    if not isinstance(device_id, str):
        return None
    registry = er.async_get(hass)
    return next(
        (
            entry.entity_id
            for entry in er.async_entries_for_device(registry, device_id)
            if entry.platform == DOMAIN and entry.domain == domain
        ),
        None,
    )


def _incidents_entity(hass: HomeAssistant, config_entry_id: Any) -> str | None:
    """The Incidents event entity (on the server device) of a loaded SAYMON entry."""
    if not isinstance(config_entry_id, str):
        return None
    entry = hass.config_entries.async_get_entry(config_entry_id)
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        return None
    hub: SaymonHub = entry.runtime_data.hub
    server = hub.device(hub.server_identifier)
    return None if server is None else _device_entity(hass, server.id, "event")


def _line(name: Any, message: str, icon: str, entity_id: str | None) -> dict[str, str]:
    line = {
        LOGBOOK_ENTRY_NAME: str(name or "SAYMON"),
        LOGBOOK_ENTRY_MESSAGE: message,
        LOGBOOK_ENTRY_ICON: icon,
    }
    if entity_id is not None:
        line[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
    return line


def incident_message(data: dict[str, Any]) -> str:
    """What happened to an incident, e.g. ``incident opened: CPU 97 % (Alarm)``."""
    message = f"incident {data.get('type') or 'changed'}"
    if data.get("text"):
        message += f": {data['text']}"
    if data.get("level"):
        message += f" ({data['level']})"
    return message + (REPLAYED if data.get("replayed") else "")


def _describer(
    hass: HomeAssistant, describe: Callable[[HomeAssistant, dict[str, Any]], dict[str, str]]
) -> Callable[[Event], dict[str, str]]:
    @callback
    def describe_event(event: Event) -> dict[str, str]:
        return describe(hass, dict(event.data))

    return describe_event


def describe_incident(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, str]:
    """The logbook line of a ``saymon_incident`` event."""
    entity_id = _device_entity(hass, data.get("device_id"), "binary_sensor")
    if entity_id is None:
        entity_id = _incidents_entity(hass, data.get("config_entry_id"))
    return _line(
        data.get("object_name") or data.get("object_id"),
        incident_message(data),
        INCIDENT_ICONS.get(str(data.get("type")), INCIDENT_ICONS["updated"]),
        entity_id,
    )


def describe_model_change(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, str]:
    """The logbook line of a ``saymon_model_changed`` event."""
    change = str(data.get("change") or "modified")
    who = f" by {data['user_login']}" if data.get("user_login") else ""
    return _line(
        data.get("name") or data.get("entity_id"),
        f"{data.get('entity_type') or 'object'} {change} in SAYMON{who}"
        + (REPLAYED if data.get("replayed") else ""),
        MODEL_ICONS.get(change, MODEL_ICONS["modified"]),
        _device_entity(hass, data.get("device_id"), "sensor"),
    )


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe incidents and model changes; state changes are the State sensors' lines."""
    async_describe_event(DOMAIN, EVENT_INCIDENT, _describer(hass, describe_incident))
    async_describe_event(DOMAIN, EVENT_MODEL_CHANGED, _describer(hass, describe_model_change))
    async_describe_server_events(hass, async_describe_event)
