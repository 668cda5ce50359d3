"""Diagnostics: model sizes, subscriptions and counters; secrets, hosts and users redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .api import _compat
from .const import (
    CONF_API_TOKEN,
    CONF_COMET,
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
    CONF_MQTT_HOST,
    CONF_MQTT_PASSWORD,
    CONF_MQTT_USERNAME,
    CONF_USER_ID,
)
from .hub import SaymonConfigEntry

TO_REDACT = {
    CONF_API_TOKEN,
    CONF_COMET,
    CONF_PASSWORD,
    CONF_URL,
    CONF_USERNAME,
    CONF_USER_ID,
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
    CONF_MQTT_HOST,
    CONF_MQTT_PASSWORD,
    CONF_MQTT_USERNAME,
    "title",
    "unique_id",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SaymonConfigEntry
) -> dict[str, Any]:
    """Return what helps a bug report, without anything that identifies the server or user."""
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "hub": entry.runtime_data.diagnostics(),
        # Which private library overrides are installed, and if one is not, why: a release of
        # python-socketio/-engineio or paho-mqtt that changed one makes us use the public path.
        "library_hooks": _compat.diagnostics(),
    }
