"""JSON payloads of the mirror's server event topics (format 1.1: topics added, nothing changed).

Built from the data of the matching bus event (:mod:`..describe_server_events`), so MQTT
subscribers and automations read the same fields. Every payload carries ``"schema": 1``: format
1.1 only adds topics, a subscriber of format 1 reads everything it knew as before. A JSON Schema
of each payload ships in ``mqtt/schema/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.helpers.json import json_bytes

from .payloads import SCHEMA_VERSION

FORMAT_VERSION: Final = "1.1"
"""The mirror's format: major (the ``schema`` of every payload) and minor (topics added)."""


def _object(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": data.get("object_id"),
        "type": data.get("entity_type"),
        "name": data.get("object_name"),
    }


def snmp_trap(data: Mapping[str, Any]) -> bytes:
    """Payload of ``traps/event``."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "id": data.get("event_id"),
            "timestamp": data.get("timestamp"),
            "level_id": data.get("level_id"),
            "level": data.get("level"),
            "object": _object(data),
            "agent_id": data.get("agent_id"),
            "sender_address": data.get("sender_address"),
            "agent_address": data.get("agent_address"),
            "enterprise_oid": data.get("enterprise_oid"),
            "trap_oid": data.get("trap_oid"),
            "generic_trap": data.get("generic_trap"),
            "specific_trap": data.get("specific_trap"),
            "bindings": data.get("bindings") or {},
            "text": data.get("text"),
            "extra": data.get("extra") or {},
        }
    )


def mqtt_message(data: Mapping[str, Any]) -> bytes:
    """Payload of ``mqtt/event``."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "id": data.get("event_id"),
            "timestamp": data.get("timestamp"),
            "topic": data.get("topic"),
            "message": data.get("message"),
            "objects": [_object(item) for item in data.get("objects") or ()],
            "extra": data.get("extra") or {},
        }
    )


def notification(data: Mapping[str, Any]) -> bytes:
    """Payload of ``notifications/event``."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "timestamp": data.get("timestamp"),
            "object": _object(data),
            "state_id": data.get("state_id"),
            "state": data.get("state"),
            "sound_name": data.get("sound_name"),
            "extra": data.get("extra") or {},
        }
    )


def job(data: Mapping[str, Any]) -> bytes:
    """Payload of ``jobs/event``."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "type": data["type"],
            "job": {
                "id": data.get("job_id"),
                "operation_id": data.get("operation_id"),
                "operation_name": data.get("operation_name"),
                "user_id": data.get("user_id"),
                "timestamp": data.get("timestamp"),
                "exit_code": data.get("exit_code"),
                "stdout": data.get("stdout"),
                "topic": data.get("topic"),
                "message": data.get("message"),
                "succeeded": data.get("succeeded"),
                "results": data.get("results") or [],
            },
            "object": _object(data),
            "extra": data.get("extra") or {},
        }
    )


def bulk(data: Mapping[str, Any]) -> bytes:
    """Payload of ``bulks/event``."""
    return json_bytes(
        {
            "schema": SCHEMA_VERSION,
            "id": data.get("bulk_id"),
            "finished": data.get("finished"),
            "extra": data.get("extra") or {},
        }
    )
