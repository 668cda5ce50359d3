"""Logbook descriptions of SAYMON's bus events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_INCIDENT, EVENT_MODEL_CHANGED, EVENT_STATE_CHANGED


def _describe_incident(event: Event) -> dict[str, str]:
    data = event.data
    level = f" ({data['level']})" if data.get("level") else ""
    text = f": {data['text']}" if data.get("text") else ""
    replayed = " [replayed]" if data.get("replayed") else ""
    return {
        LOGBOOK_ENTRY_NAME: str(data.get("object_name") or "SAYMON"),
        LOGBOOK_ENTRY_MESSAGE: f"incident {data.get('type')}{level}{text}{replayed}",
    }


def _describe_state(event: Event) -> dict[str, str]:
    data = event.data
    replayed = " [replayed]" if data.get("replayed") else ""
    return {
        LOGBOOK_ENTRY_NAME: str(data.get("object_name") or "SAYMON"),
        LOGBOOK_ENTRY_MESSAGE: (
            f"changed state from {data.get('old_state')} to {data.get('new_state')}{replayed}"
        ),
    }


def _describe_model(event: Event) -> dict[str, str]:
    data = event.data
    who = f" by {data['user_login']}" if data.get("user_login") else ""
    return {
        LOGBOOK_ENTRY_NAME: str(data.get("name") or data.get("entity_id") or "SAYMON"),
        LOGBOOK_ENTRY_MESSAGE: f"{data.get('entity_type')} {data.get('change')} in SAYMON{who}",
    }


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, Any]]], None],
) -> None:
    """Describe incidents, state changes and model changes in words."""
    async_describe_event(DOMAIN, EVENT_INCIDENT, _describe_incident)
    async_describe_event(DOMAIN, EVENT_STATE_CHANGED, _describe_state)
    async_describe_event(DOMAIN, EVENT_MODEL_CHANGED, _describe_model)
