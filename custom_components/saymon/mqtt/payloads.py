"""JSON payloads of the mirror: a documented, versioned format.

Every JSON object carries ``"schema": SCHEMA_VERSION``; a change that breaks subscribers bumps
the version. ``custom_components/saymon/mqtt/schema/`` holds a JSON Schema per payload and the
tests validate every published message against it. Counts are plain JSON integers so that
displays and simple scripts can use them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from homeassistant.helpers.json import json_bytes

SCHEMA_VERSION: Final = 1
SCHEMA_MINOR: Final = 1
"""Minor version of the format (``1.<minor>``): only topics and fields were added since 1.0,
nothing a subscriber of 1.0 relies on changed. 1.1 added the stat topics."""
ONLINE: Final = "online"
OFFLINE: Final = "offline"

_INCIDENT_FIELDS: Final = (
    ("incident_id", "id"),
    ("level_id", "level_id"),
    ("level", "level"),
    ("text", "text"),
    ("timestamp", "timestamp"),
    ("local_timestamp", "local_timestamp"),
    ("clear_timestamp", "clear_timestamp"),
    ("acknowledged_by", "acknowledged_by"),
    ("acknowledgement_timestamp", "acknowledgement_timestamp"),
)


def count(value: int) -> bytes:
    """Payload of a count topic."""
    return str(value).encode()


def incident_event(data: Mapping[str, Any]) -> bytes:
    """Payload of ``incidents/event`` from the data of a ``saymon_incident`` bus event."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "type": data["type"],
            "replayed": data["replayed"],
            "incident": {key: data.get(source) for source, key in _INCIDENT_FIELDS},
            "object": {
                "id": data.get("object_id"),
                "type": data.get("entity_type"),
                "name": data.get("object_name"),
            },
        }
    )


def state(entity_id: str, name: str | None, state_id: str | None, state_name: str | None) -> bytes:
    """Payload of a retained ``objects/<id>/state`` or ``links/<id>/state`` topic."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "id": entity_id,
            "name": name,
            "state_id": state_id,
            "state": state_name,
        }
    )


def state_event(data: Mapping[str, Any]) -> bytes:
    """Payload of ``objects/<id>/event`` from a ``saymon_state_changed`` bus event."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "id": data["object_id"],
            "type": data["entity_type"],
            "name": data.get("object_name"),
            "old_state_id": data.get("old_state_id"),
            "old_state": data.get("old_state"),
            "new_state_id": data.get("new_state_id"),
            "new_state": data.get("new_state"),
            "replayed": data["replayed"],
        }
    )


def model_event(data: Mapping[str, Any]) -> bytes:
    """Payload of ``model/event`` from a ``saymon_model_changed`` bus event."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "change": data["change"],
            "type": data["entity_type"],
            "id": data["entity_id"],
            "name": data.get("name"),
            "user_login": data.get("user_login"),
            "replayed": data["replayed"],
        }
    )


def stat(
    entity_id: str,
    entity_type: str,
    name: str | None,
    *,
    timestamp: int | None,
    task_type: str | None,
    metrics: Mapping[str, Any],
    expired: Sequence[str],
) -> bytes:
    """Payload of a retained ``objects/<id>/stat`` or ``links/<id>/stat`` topic (format 1.1)."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "id": entity_id,
            "type": entity_type,
            "name": name,
            "timestamp": timestamp,
            "task_type": task_type,
            "metrics": dict(metrics),
            "expired": list(expired),
        }
    )
