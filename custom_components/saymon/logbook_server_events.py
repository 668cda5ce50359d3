"""Logbook lines of server events: one per trap, MQTT message, notification and job.

Each line is named after the object the event belongs to and linked to that object's event
entity of its kind (or the server device's, for an event without an object in scope). Home
Assistant does not translate what describers return, so the words are taken from the
integration's own translations of those event entities (the event type's name, attribute
names), in Home Assistant's language: English and Russian lines from ``translations/*.json``.
Bulk operations have no entity and no line (their bus event is for automations only).
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
from homeassistant.helpers.translation import async_get_cached_translations

from .const import DOMAIN
from .hub import SaymonHub
from .server_kinds import JOBS, KINDS, MQTT_MESSAGES, NOTIFICATIONS, SNMP_TRAPS, Kind

ICONS: Final = {
    SNMP_TRAPS.key: "mdi:alarm-light-outline",
    MQTT_MESSAGES.key: "mdi:message-text-outline",
    NOTIFICATIONS.key: "mdi:bell-ring-outline",
    JOBS.key: "mdi:play-circle-outline",
}
JOB_ICONS: Final = {"finished": "mdi:check-circle-outline", "failed": "mdi:close-circle-outline"}
MAX_DETAIL: Final = 120
"""Characters of a message or text shown in a line (the event keeps all of it)."""

ENGLISH: Final = {
    "trap": "SNMP trap received",
    "message": "MQTT message received",
    "notification": "Notification",
    "started": "Operation started",
    "finished": "Operation finished",
    "failed": "Operation failed",
    "exit_code": "Exit code",
}
"""What lines say when the translations are not loaded (the same as ``strings.json``)."""


def _words(hass: HomeAssistant, kind: Kind) -> Callable[[str, str], str]:
    """Translated event type and attribute names of ``kind``'s event entity."""
    cached = async_get_cached_translations(hass, hass.config.language, "entity", DOMAIN)
    prefix = f"component.{DOMAIN}.entity.event.{kind.key}.state_attributes"

    def word(attribute: str, key: str) -> str:
        path = (
            f"{prefix}.event_type.state.{key}"
            if attribute == "event_type"
            else f"{prefix}.{key}.name"
        )
        return cached.get(path) or ENGLISH.get(key, key)

    return word


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def message(hass: HomeAssistant, kind: Kind, data: dict[str, Any]) -> str:
    """What happened, in Home Assistant's language where the integration has it."""
    word = _words(hass, kind)
    what = word("event_type", str(data.get("type")))
    if kind is SNMP_TRAPS:
        detail = _short(data.get("text") or data.get("trap_oid") or "")
        level = f" ({data['level']})" if data.get("level") else ""
        return f"{what}: {detail}{level}" if detail else f"{what}{level}"
    if kind is MQTT_MESSAGES:
        return f"{what}: {_short(data.get('topic'))} = {_short(data.get('message'))}"
    if kind is NOTIFICATIONS:
        return f"{what}: {data.get('state') or data.get('state_id')}"
    operation = data.get("operation_name") or data.get("operation_id") or ""
    line = f"{what}: {operation}" if operation else what
    if data.get("exit_code") is not None:
        line += f", {word('attribute', 'exit_code')} {data['exit_code']}"
    return line


def _entity(hass: HomeAssistant, kind: Kind, data: dict[str, Any]) -> str | None:
    """The event entity of this kind on the event's object (or on the server device)."""
    entry_id = data.get("config_entry_id")
    entry = hass.config_entries.async_get_entry(entry_id) if isinstance(entry_id, str) else None
    if entry is None or entry.domain != DOMAIN or entry.state is not ConfigEntryState.LOADED:
        return None
    hub: SaymonHub = entry.runtime_data.hub
    registry = er.async_get(hass)
    object_id = data.get("object_id")
    if data.get("device_id") and object_id:
        found = registry.async_get_entity_id(
            "event", DOMAIN, f"{hub.server_key}|object|{object_id}|{kind.key}"
        )
        if found is not None:
            return found
    return registry.async_get_entity_id("event", DOMAIN, f"{hub.server_key}|{kind.key}")


def describer(hass: HomeAssistant, kind: Kind) -> Callable[[Event], dict[str, str]]:
    """The logbook describer of ``kind``'s bus event."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        data = dict(event.data)
        line = {
            LOGBOOK_ENTRY_NAME: str(data.get("object_name") or data.get("object_id") or "SAYMON"),
            LOGBOOK_ENTRY_MESSAGE: message(hass, kind, data),
            LOGBOOK_ENTRY_ICON: JOB_ICONS.get(str(data.get("type")), ICONS[kind.key])
            if kind is JOBS
            else ICONS[kind.key],
        }
        entity_id = _entity(hass, kind, data)
        if entity_id is not None:
            line[LOGBOOK_ENTRY_ENTITY_ID] = entity_id
        return line

    return describe


def async_describe_server_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe the bus events of every kind with event entities."""
    for kind in KINDS:
        if kind.key in ICONS:
            async_describe_event(DOMAIN, kind.event, describer(hass, kind))
