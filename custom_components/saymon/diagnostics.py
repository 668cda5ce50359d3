"""Diagnostics: model sizes, subscriptions and counters; secrets, hosts and users redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .api import SANITIZED, _compat
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
from .hub import SaymonHub
from .runtime import SaymonConfigEntry

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
        "hub": hub_diagnostics(entry.runtime_data.hub),
        "mqtt": mirror.diagnostics() if (mirror := entry.runtime_data.mirror) is not None else None,
        # Which private library overrides are installed, and if one is not, why: a release of
        # python-socketio/-engineio or paho-mqtt that changed one makes us use the public path.
        "library_hooks": _compat.diagnostics(),
    }


def hub_diagnostics(hub: SaymonHub) -> dict[str, Any]:
    """Sizes and counters of one hub (no names, hosts or secrets)."""
    model, live, scope = hub.model, hub.live, hub.scope
    return {
        "connected": hub.connected,
        "available": hub.available,
        "model": {
            "objects": len(model.objects),
            "links": len(model.links),
            "states": len(model.states),
            "incident_levels": len(model.levels),
            "classes": len(model.classes),
            "active_incidents": len(model.incidents),
            "cleared_incidents_listed": len(model.cleared),
            "moved_incidents_remembered": len(model.moved),
            "forgotten_incidents_remembered": len(model.forgotten),
            "reported_incident_count": model.reported_count,
        },
        "scope": {
            "everything": scope.everything,
            "parents": len(scope.parents),
            "tags": len(scope.tags),
            "classes": len(scope.classes),
            "links": scope.links,
            "objects_in_scope": len(hub.objects_in_scope),
            "links_in_scope": len(hub.links_in_scope),
        },
        "subscriptions": [s.topic for s in hub.comet.subscriptions if s.key is None],
        "comet": hub.comet.stats.as_dict(),
        "events_fired": dict(hub.bus.fired),
        "replayed": live.stats.replayed,
        "resyncs": live.stats.resyncs,
        "resync_failures": live.stats.resync_failures,
        "count_resyncs": live.stats.count_resyncs,
        "unverified_incident_events": live.stats.unverified,
        "incident_reads_peak": live.incident_reads.peak,
        "incident_reads_replaced_by_resync": live.incident_reads.overflows,
        "repaired_text_fields": dict(SANITIZED),
        "last_resync_seconds": live.stats.last_resync_seconds,
        "rest_logins": hub.rest.logins,
        "rest_records_skipped": dict(hub.rest.rejected),
        "transport": list(hub.comet.transports),
        "server_events": {
            **hub.server_events.diagnostics(),
            "rate_limit": live.gate.diagnostics(),
            "jobs": live.jobs.diagnostics(),
            "unknown_topics": dict(live.stats.unknown_topics),
        },
        "metrics": hub.metrics.diagnostics(),
    }
