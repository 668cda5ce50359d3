"""Validate MQTT mirror messages against the JSON Schemas shipped with the integration."""

from __future__ import annotations

from functools import cache
import json
from pathlib import Path
import re
from typing import Any

import jsonschema

SCHEMA_DIR = (
    Path(__file__).resolve().parents[1] / "custom_components" / "saymon" / "mqtt" / "schema"
)

_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"/(status|connection)$"), "status"),
    (re.compile(r"/objects/[^/]+/incidents$"), "count"),
    (re.compile(r"/incidents/count(/[^/]+)?$"), "count"),
    (re.compile(r"/incidents/event$"), "incident_event"),
    (re.compile(r"/(objects|links)/[^/]+/state$"), "state"),
    (re.compile(r"/(objects|links)/[^/]+/event$"), "state_event"),
    (re.compile(r"/(objects|links)/[^/]+/stat$"), "stat"),
    (re.compile(r"/model/event$"), "model_event"),
    (re.compile(r"/traps/event$"), "trap_event"),
    (re.compile(r"/mqtt/event$"), "mqtt_event"),
    (re.compile(r"/notifications/event$"), "notification_event"),
    (re.compile(r"/jobs/event$"), "job_event"),
    (re.compile(r"/bulks/event$"), "bulk_event"),
)


@cache
def schema(name: str) -> dict[str, Any]:
    """Load one schema file."""
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def schema_for(topic: str) -> str:
    """Name of the schema a topic's payload follows."""
    for pattern, name in _ROUTES:
        if pattern.search(topic):
            return name
    raise AssertionError(f"no schema for topic {topic}")


def validate(topic: str, payload: bytes) -> Any:
    """Decode a payload and validate it against its topic's schema; return the value."""
    name = schema_for(topic)
    value: Any = payload.decode() if name == "status" else json.loads(payload)
    jsonschema.validate(value, schema(name))
    return value
