"""Comet (Socket.IO) events and their parsers.

SAYMON names each event after its topic. The parsers accept what the documented SAYMON
versions send (string or integer ids and entity types, JSON objects sent as text) and raise
:class:`~.errors.SaymonProtocolError` for anything else; the Comet client counts and drops
such events without stopping the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ._fields import INT64_MAX, as_mapping, opt_id, opt_int, opt_name, req_id, valid_id
from .errors import SaymonProtocolError
from .models import EntityType, Incident
from .server_events import SERVER_EVENT_PARSERS, ServerEvent

TOPIC_INCIDENTS = "incidents"
TOPIC_INCIDENT_COUNT = "incident-count"
TOPIC_STATE_CHANGE = "state-change"
TOPIC_MODEL_CHANGED = "model-changed"
TOPIC_STAT = "stat"


class IncidentChange(IntEnum):
    """``changeType`` of an ``incidents`` event."""

    CREATED = 1
    MODIFIED = 2
    CLOSED = 3  # moved to the incident history


class ModelChange(IntEnum):
    """``changeType`` of a ``model-changed`` event."""

    CREATED = 1
    MODIFIED = 2
    REMOVED = 3


@dataclass(frozen=True, slots=True)
class StateChangeEvent:
    """An object's or link's state changed."""

    entity_id: str
    state_id: str
    entity_type: EntityType


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    """An incident was created, modified or closed.

    ``incident`` is ``None`` when SAYMON sent only the id (``filtered``: the incident does not
    match this subscription's filter); the caller fetches it over REST if it needs it.
    """

    change: IncidentChange
    incident_id: str
    incident: Incident | None
    filtered: bool = False


@dataclass(frozen=True, slots=True)
class IncidentCountEvent:
    """The number of active incidents changed (``by_level`` when the server says per level)."""

    count: int
    by_level: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class ModelChangedEvent:
    """An object or link was created, modified or removed, by ``user_login``."""

    change: ModelChange
    entity_id: str
    entity_type: EntityType
    user_id: str | None = None
    user_login: str | None = None


@dataclass(frozen=True, slots=True)
class StatEvent:
    """New monitoring data (agent stat) for one entity."""

    entity_id: str
    entity_type: EntityType
    timestamp: int | None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RawEvent:
    """An event of a topic this client has no model for, passed through unchanged."""

    topic: str
    args: tuple[Any, ...]


type CometEvent = (
    StateChangeEvent
    | IncidentEvent
    | IncidentCountEvent
    | ModelChangedEvent
    | StatEvent
    | ServerEvent
    | RawEvent
)


def _change_type[E: IntEnum](enum: type[E], data: Mapping[str, Any], topic: str) -> E:
    raw = opt_int(data.get("changeType"), f"{topic}.changeType")
    try:
        return enum(-1 if raw is None else raw)
    except ValueError:
        raise SaymonProtocolError(f"{topic}: unknown changeType {raw!r}") from None


def parse_state_change(value: Any) -> StateChangeEvent:
    """Parse ``{"id", "state_id", "type"}``."""
    data = as_mapping(value, TOPIC_STATE_CHANGE)
    raw_type = data.get("type", data.get("entityType"))
    return StateChangeEvent(
        entity_id=req_id(data, "id", TOPIC_STATE_CHANGE),
        state_id=req_id(data, "state_id", TOPIC_STATE_CHANGE),
        entity_type=EntityType.OBJECT
        if raw_type is None
        else EntityType.parse(raw_type, f"{TOPIC_STATE_CHANGE}.type"),
    )


def parse_incident_event(value: Any) -> IncidentEvent:
    """Parse ``{"changeType", "payload", "filtered"?}``."""
    data = as_mapping(value, TOPIC_INCIDENTS)
    change = _change_type(IncidentChange, data, TOPIC_INCIDENTS)
    payload = as_mapping(data.get("payload"), f"{TOPIC_INCIDENTS}.payload")
    filtered = data.get("filtered") is True
    # A filtered event carries the id only; anything with more than the id is a full incident.
    if filtered or set(payload) <= {"id", "_id"}:
        incident_id = opt_id(payload.get("id", payload.get("_id")), f"{TOPIC_INCIDENTS}.id")
        if incident_id is None:
            raise SaymonProtocolError(f"{TOPIC_INCIDENTS}: payload without id")
        return IncidentEvent(change, incident_id, None, filtered=True)
    incident = Incident.from_json(payload)
    return IncidentEvent(change, incident.id, incident)


_COUNT_KEYS = ("count", "total", "active", "activeIncidents", "value")
_LEVEL_KEYS = ("levels", "byLevel", "by_level", "counts", "severities")


def _level_counts(value: Any) -> dict[str, int] | None:
    if not isinstance(value, Mapping) or not value:
        return None
    counts: dict[str, int] = {}
    for key, item in value.items():
        number = _count_value(item)
        if number is None or not isinstance(key, str) or not valid_id(key):
            return None
        counts[key] = number
    return counts


def _count_value(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value <= INT64_MAX:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value <= INT64_MAX:
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal() and len(value) <= 18:
        return int(value)
    return None


def parse_incident_count(value: Any) -> IncidentCountEvent:
    """Parse the undocumented ``incident-count`` payload in every plausible shape.

    Accepted: a number (or numeric text); ``{"count": n}`` (or ``total``/``active``/...),
    optionally with per-level counts under ``levels``/``byLevel``; a plain mapping of level id
    to count (the total is their sum); a JSON text of any of these.
    """
    number = _count_value(value)
    if number is not None:
        return IncidentCountEvent(number)
    data = as_mapping(value, TOPIC_INCIDENT_COUNT)
    for key in _COUNT_KEYS:
        if key in data:
            number = _count_value(data[key])
            if number is None:
                break
            by_level = next(
                (
                    counts
                    for level_key in _LEVEL_KEYS
                    if (counts := _level_counts(data.get(level_key))) is not None
                ),
                None,
            )
            return IncidentCountEvent(number, by_level)
    by_level = _level_counts(data)
    if by_level is not None and all(key.isdigit() for key in by_level):
        return IncidentCountEvent(sum(by_level.values()), by_level)
    raise SaymonProtocolError(f"{TOPIC_INCIDENT_COUNT}: unrecognised payload shape")


def parse_model_changed(value: Any) -> ModelChangedEvent:
    """Parse ``{"changeType", "id", "entityType", "user": {"id", "login"}}``."""
    data = as_mapping(value, TOPIC_MODEL_CHANGED)
    change = _change_type(ModelChange, data, TOPIC_MODEL_CHANGED)
    user = data.get("user")
    user_data: Mapping[str, Any] = user if isinstance(user, Mapping) else {}
    raw_type = data.get("entityType")
    return ModelChangedEvent(
        change=change,
        entity_id=req_id(data, "id", TOPIC_MODEL_CHANGED),
        entity_type=EntityType.OBJECT
        if raw_type is None
        else EntityType.parse(raw_type, f"{TOPIC_MODEL_CHANGED}.entityType"),
        user_id=opt_id(user_data.get("id"), f"{TOPIC_MODEL_CHANGED}.user.id"),
        user_login=opt_name(user_data.get("login"), f"{TOPIC_MODEL_CHANGED}.user.login"),
    )


def parse_stat(value: Any) -> StatEvent:
    """Parse ``{"entityId", "entityType", "timestamp", "payload"}``."""
    data = as_mapping(value, TOPIC_STAT)
    payload = data.get("payload")
    return StatEvent(
        entity_id=req_id(data, "entityId", TOPIC_STAT),
        entity_type=EntityType.parse(data.get("entityType", 1), f"{TOPIC_STAT}.entityType"),
        timestamp=opt_int(data.get("timestamp"), f"{TOPIC_STAT}.timestamp"),
        payload=as_mapping(payload, f"{TOPIC_STAT}.payload") if payload is not None else {},
    )


PARSERS: Mapping[str, Callable[[Any], CometEvent]] = {
    TOPIC_STATE_CHANGE: parse_state_change,
    TOPIC_INCIDENTS: parse_incident_event,
    TOPIC_INCIDENT_COUNT: parse_incident_count,
    TOPIC_MODEL_CHANGED: parse_model_changed,
    TOPIC_STAT: parse_stat,
    **SERVER_EVENT_PARSERS,
}


def parse_event(topic: str, args: tuple[Any, ...]) -> CometEvent:
    """Turn one received Socket.IO event into its model; unknown topics pass through raw."""
    parser = PARSERS.get(topic)
    if parser is None:
        return RawEvent(topic, args)
    if len(args) != 1:
        raise SaymonProtocolError(f"{topic}: expected one argument, got {len(args)}")
    return parser(args[0])
