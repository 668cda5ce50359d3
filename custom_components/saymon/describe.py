"""What a change says, in words and ids: the data shared by bus events and MQTT payloads.

One description per change type, read from the typed change and the model (names of objects,
states and levels). Home Assistant's bus events add their entry, device and ``replayed``
(:mod:`.hub.events`); the MQTT mirror maps the same data onto its versioned payloads
(:mod:`.mqtt.payloads`). Pure: no Home Assistant imports.
"""

from __future__ import annotations

from typing import Any

from .api.model import ModelChanged, SaymonModel, StateChanged
from .api.models import EntityType, Incident


def entity_type_name(entity_type: EntityType) -> str:
    """``object``, ``link`` or ``flow``, as events and payloads name SAYMON's entity types."""
    return entity_type.name.lower()


def state_change(change: StateChanged, model: SaymonModel) -> dict[str, Any]:
    """An object's or link's state change, with the names of both states."""
    return {
        "entity_type": entity_type_name(change.entity_type),
        "object_id": change.entity_id,
        "object_name": model.entity_name(change.entity_type, change.entity_id),
        "old_state_id": change.old_state_id,
        "old_state": model.state_name(change.old_state_id),
        "new_state_id": change.new_state_id,
        "new_state": model.state_name(change.new_state_id),
    }


def incident(incident: Incident, model: SaymonModel) -> dict[str, Any]:
    """An incident with its level's and object's names (for events, actions, payloads)."""
    return {
        "incident_id": incident.id,
        "level_id": incident.level_id,
        "level": model.level_name(incident.level_id),
        "text": incident.text,
        "timestamp": incident.timestamp,
        "local_timestamp": incident.local_timestamp,
        "clear_timestamp": incident.clear_timestamp,
        "acknowledged_by": incident.acknowledged_by,
        "acknowledgement_timestamp": incident.acknowledgement_timestamp,
        "entity_type": entity_type_name(incident.entity_type),
        "object_id": incident.entity_id,
        "object_name": incident.owner_name
        or model.entity_name(incident.entity_type, incident.entity_id),
    }


def model_change(change: ModelChanged, model: SaymonModel) -> dict[str, Any]:
    """An object or link created, modified or removed; a removed one keeps its last name."""
    return {
        "change": change.change.name.lower(),
        "entity_type": entity_type_name(change.entity_type),
        "entity_id": change.entity_id,
        "name": change.name or model.entity_name(change.entity_type, change.entity_id),
        "user_id": change.user_id,
        "user_login": change.user_login,
    }
