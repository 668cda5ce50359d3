"""The simulator's records: objects, links and incidents, each knowing its SAYMON JSON form.

Plain mutable dataclasses so the model can change them in place; `to_json` returns fresh
containers so a caller that mutates a response never corrupts the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalog import ENTITY_OBJECT


@dataclass(slots=True)
class SimObject:
    """A SAYMON object (`/objects`): a node of the monitored tree."""

    id: str
    name: str
    parent_id: list[str]
    class_id: str
    state_id: int
    last_state_update: int
    created: int
    updated: int
    child_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    properties: list[dict[str, Any]] = field(default_factory=list)
    client_data: str = "{}"
    operations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Full object as GET /objects/:id returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "parent_id": list(self.parent_id),
            "child_ids": list(self.child_ids),
            "class_id": self.class_id,
            "state_id": self.state_id,
            "last_state_update": self.last_state_update,
            "tags": list(self.tags),
            "properties": [dict(prop) for prop in self.properties],
            "created": self.created,
            "updated": self.updated,
            "client_data": self.client_data,
            "operations": [dict(operation) for operation in self.operations],
        }


@dataclass(slots=True)
class SimLink:
    """A SAYMON link (`/links`) between two objects; it has a state like an object."""

    id: str
    class_id: str
    source: str
    target: str
    source_name: str
    target_name: str
    state_id: int
    last_state_update: int
    created: int
    updated: int
    operations: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Full link; GET /links projects it with `fields`."""
        return {
            "id": self.id,
            "class_id": self.class_id,
            "source": self.source,
            "target": self.target,
            "source_name": self.source_name,
            "target_name": self.target_name,
            "state_id": self.state_id,
            "last_state_update": self.last_state_update,
            "created": self.created,
            "updated": self.updated,
            "operations": [dict(operation) for operation in self.operations],
        }


@dataclass(slots=True)
class Incident:
    """A state-change incident in SAYMON's documented Incident model.

    `clear_timestamp` is None while the incident is active; the key `clearTimestamp` is then left
    out of the JSON, as in SAYMON's examples of active incidents.
    """

    id: str
    entity_id: str
    entity_type: int
    state: int
    last_state: int
    text: str
    timestamp: int
    reason_code: int
    count: int = 1
    clear_timestamp: int | None = None
    acknowledged_by: str | None = None
    acknowledgement_timestamp: int | None = None

    @property
    def is_object(self) -> bool:
        """Whether the incident is about an object (not a link)."""
        return self.entity_type == ENTITY_OBJECT

    def to_json(self) -> dict[str, Any]:
        """Incident as GET /incidents and the `incidents` Comet event carry it."""
        data: dict[str, Any] = {
            "id": self.id,
            "entityId": self.entity_id,
            "entityType": self.entity_type,
            "type": 1,
            "state": self.state,
            "lastState": self.last_state,
            "text": self.text,
            "timestamp": self.timestamp,
            "localTimestamp": self.timestamp,
            "acknowledgedBy": self.acknowledged_by,
            "acknowledgementTimestamp": self.acknowledgement_timestamp,
            "count": self.count,
            "parentChainId": self.entity_id,
            "reason": {"code": self.reason_code},
        }
        if self.clear_timestamp is not None:
            data["clearTimestamp"] = self.clear_timestamp
        return data
