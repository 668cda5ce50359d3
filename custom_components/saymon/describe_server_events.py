"""What a server event says, in words and ids: the data of its bus event and its MQTT message.

The companion of :mod:`.describe` for SAYMON's server events (traps, MQTT messages,
notifications, jobs, bulks). Names come from the event (SAYMON names the object in it) or from
the model; levels and states are named from the model. ``type`` is the event entity's event
type. Home Assistant's bus events add the entry and the devices (:mod:`.hub.server_events`); the
MQTT mirror maps the same data onto its payloads. Pure: no Home Assistant imports.
"""

from __future__ import annotations

from typing import Any

from .api.model import SaymonModel
from .api.server_events import (
    BulkFinished,
    ClientNotification,
    EntityRef,
    JobEvent,
    JobEventKind,
    MqttMessage,
    ServerEvent,
    SnmpTrap,
)
from .describe import entity_type_name


def _entity(entity: EntityRef | None, model: SaymonModel) -> dict[str, Any]:
    if entity is None:
        return {"entity_type": None, "object_id": None, "object_name": None}
    known = model.knows_entity(entity.entity_type, entity.entity_id)
    return {
        "entity_type": entity_type_name(entity.entity_type),
        "object_id": entity.entity_id,
        "object_name": (model.entity_name(entity.entity_type, entity.entity_id) if known else None)
        or entity.name
        or entity.entity_id,
    }


def snmp_trap(trap: SnmpTrap, model: SaymonModel) -> dict[str, Any]:
    """An SNMP trap, with its level's and object's names."""
    return {
        "type": "trap",
        "event_id": trap.event_id,
        "timestamp": trap.timestamp,
        "level_id": trap.level_id,
        "level": model.level_name(trap.level_id),
        **_entity(trap.entity, model),
        "agent_id": trap.agent_id,
        "sender_address": trap.sender_address,
        "agent_address": trap.agent_address,
        "enterprise_oid": trap.enterprise_oid,
        "trap_oid": trap.trap_oid,
        "generic_trap": trap.generic_trap,
        "specific_trap": trap.specific_trap,
        "bindings": dict(trap.bindings),
        "text": trap.text,
        "extra": dict(trap.extra),
    }


def mqtt_message(message: MqttMessage, model: SaymonModel) -> dict[str, Any]:
    """An MQTT message SAYMON received, with every object it belongs to (the first one flat)."""
    objects = [_entity(entity, model) for entity in message.entities]
    return {
        "type": "message",
        "event_id": message.event_id,
        "timestamp": message.timestamp,
        "topic": message.topic,
        "message": message.message,
        **(objects[0] if objects else _entity(None, model)),
        "objects": objects,
        "extra": dict(message.extra),
    }


def notification(note: ClientNotification, model: SaymonModel) -> dict[str, Any]:
    """A client notification: an entity's new state, named."""
    return {
        "type": "notification",
        "timestamp": note.timestamp,
        **_entity(note.entity, model),
        "state_id": note.state_id,
        "state": model.state_name(note.state_id),
        "sound_name": note.sound_name,
        "extra": dict(note.extra),
    }


def job(event: JobEvent, model: SaymonModel, operation_name: str | None = None) -> dict[str, Any]:
    """A job started, or finished (``finished`` or ``failed`` by its exit code)."""
    found = event.job
    if event.kind is JobEventKind.ADDED:
        kind = "started"
    else:
        kind = "failed" if found.succeeded is False else "finished"
    entities = found.entities
    return {
        "type": kind,
        "job_id": found.id,
        "operation_id": found.operation_id,
        "operation_name": operation_name,
        **_entity(entities[0] if entities else None, model),
        "user_id": found.user_id,
        "timestamp": found.timestamp,
        "exit_code": found.exit_code,
        "stdout": found.stdout,
        "topic": found.topic,
        "message": found.message,
        "succeeded": found.succeeded,
        "results": list(found.results),
        "extra": dict(found.extra),
    }


def bulk(event: BulkFinished) -> dict[str, Any]:
    """A bulk operation finished."""
    return {
        "type": "finished",
        "bulk_id": event.bulk_id,
        "finished": event.finished,
        "extra": dict(event.extra),
    }


def server_event(
    change: ServerEvent, model: SaymonModel, operation_name: str | None = None
) -> dict[str, Any]:
    """The data of any server event (``operation_name``: a job's, when known)."""
    if isinstance(change, SnmpTrap):
        return snmp_trap(change, model)
    if isinstance(change, MqttMessage):
        return mqtt_message(change, model)
    if isinstance(change, ClientNotification):
        return notification(change, model)
    if isinstance(change, JobEvent):
        return job(change, model, operation_name)
    return bulk(change)
