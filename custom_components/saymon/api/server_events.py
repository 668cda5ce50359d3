"""SAYMON's server events on Comet: SNMP traps, MQTT messages, client notifications, jobs, bulks.

Unlike states and incidents these are happenings, not state: nothing in the model changes and
nothing can be replayed after a gap, so each parsed event *is* the change that
:class:`~.live.SaymonLive` hands on (see :data:`ServerEvent`). Every topic is opt-in: Comet
sends it only to clients that subscribed (``add-topics``).

SAYMON documents ``snmp-trap``, ``mqtt`` and ``client-notification``; the parsers type those
fields and accept the variants seen between versions (ids and entity types as text or numbers,
the trap's entity as an object but the MQTT message's as a list, trap binding values that
arrive with their quotes embedded). ``job-added``, ``job-result-received`` and ``bulk-finished``
are not public: they are read as SAYMON's Job model where it fits and tolerated where it does
not. Every member a parser does not read is passed through in ``extra`` (bounded, see
:mod:`._json`). A payload that is not usable at all raises
:class:`~.errors.SaymonProtocolError`, which the Comet client counts and drops.

``custom-style-change`` (a user moved or resized an object's box in SAYMON's web interface) is
deliberately never subscribed: it says nothing about what is monitored, and every dashboard edit
by any SAYMON user would reach Home Assistant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import json
from typing import Any, ClassVar, Final, Self

from ._fields import MAX_NAME_LENGTH, as_mapping, opt_id, opt_int, opt_name, opt_str
from ._json import extra_fields, json_safe
from .errors import SaymonProtocolError
from .models import EntityType

TOPIC_SNMP_TRAP: Final = "snmp-trap"
TOPIC_MQTT: Final = "mqtt"
TOPIC_CLIENT_NOTIFICATION: Final = "client-notification"
TOPIC_JOB_ADDED: Final = "job-added"
TOPIC_JOB_RESULT: Final = "job-result-received"
TOPIC_BULK_FINISHED: Final = "bulk-finished"
TOPIC_CUSTOM_STYLE_CHANGE: Final = "custom-style-change"

SERVER_TOPICS: Final = (
    TOPIC_SNMP_TRAP,
    TOPIC_MQTT,
    TOPIC_CLIENT_NOTIFICATION,
    TOPIC_JOB_ADDED,
    TOPIC_JOB_RESULT,
    TOPIC_BULK_FINISHED,
)
"""Topics a caller may opt in to (each is subscribed only when chosen)."""
IGNORED_TOPICS: Final = frozenset({TOPIC_CUSTOM_STYLE_CHANGE})
"""Topics known and never subscribed: received anyway, they are dropped without a warning."""

MAX_BINDINGS: Final = 100
"""Variable bindings of one trap kept (a trap rarely has more than a dozen)."""
MAX_ENTITIES: Final = 100
"""Objects one MQTT message is attributed to, at most."""


def unquote(value: str) -> str:
    r"""A trap value without the quotes SAYMON leaves around it (``"\"TEST\""`` -> ``TEST``)."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


@dataclass(frozen=True, slots=True)
class EntityRef:
    """The object (or link) an event log entry belongs to, as SAYMON names it in the event."""

    entity_id: str
    entity_type: EntityType = EntityType.OBJECT
    name: str | None = None

    @classmethod
    def from_json(cls, value: Any, what: str) -> Self:
        """Read ``{entityId, entityType, entityName}`` (also ``id``/``name``, a bare id)."""
        if isinstance(value, str | int) and not isinstance(value, bool):
            entity_id = opt_id(value, what)
            if entity_id is None:
                raise SaymonProtocolError(f"{what}: empty entity id")
            return cls(entity_id)
        data = as_mapping(value, what)
        entity_id = opt_id(data.get("entityId", data.get("id")), f"{what}.entityId")
        if entity_id is None:
            raise SaymonProtocolError(f"{what}: missing entityId")
        raw_type = data.get("entityType", data.get("type"))
        return cls(
            entity_id,
            EntityType.OBJECT if raw_type is None else EntityType.parse(raw_type, what),
            opt_name(data.get("entityName", data.get("name")), f"{what}.entityName"),
        )


def _entities(value: Any, what: str) -> tuple[EntityRef, ...]:
    """One entity or a list of them (the documented shapes differ by topic)."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(EntityRef.from_json(item, what) for item in items[:MAX_ENTITIES])


def _text(value: Any, what: str, limit: int | None = None) -> str | None:
    """Text, with JSON (an object SAYMON already decoded) turned back into its text."""
    if isinstance(value, Mapping | list):
        value = json.dumps(json_safe(value), separators=(",", ":"), ensure_ascii=False)
    return opt_str(value, what) if limit is None else opt_str(value, what, limit)


def _level(data: Mapping[str, Any], what: str) -> str | None:
    return opt_id(data.get("level"), f"{what}.level")


@dataclass(frozen=True, slots=True)
class SnmpTrap:
    """An SNMP trap SAYMON received, attributed to ``entity`` (an Event Log entry, type 1)."""

    TOPIC: ClassVar[str] = TOPIC_SNMP_TRAP
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"_id", "id", "type", "agentId", "payload", "timestamp", "level", "entity"}
    )
    _KNOWN_PAYLOAD: ClassVar[frozenset[str]] = frozenset(
        {
            "senderAddress",
            "agentAddress",
            "enterpriseOid",
            "trapOid",
            "genericTrap",
            "specificTrap",
            "bindings",
            "text",
        }
    )

    event_id: str | None
    timestamp: int | None
    level_id: str | None
    """SAYMON's incident level of the trap (its severity)."""
    agent_id: str | None
    entity: EntityRef | None
    sender_address: str | None = None
    agent_address: str | None = None
    enterprise_oid: str | None = None
    trap_oid: str | None = None
    generic_trap: int | None = None
    specific_trap: int | None = None
    bindings: Mapping[str, str] = field(default_factory=dict)
    """Variable bindings, OID to value, without the quotes SAYMON embeds."""
    text: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entities(self) -> tuple[EntityRef, ...]:
        """The objects it belongs to (one at most)."""
        return () if self.entity is None else (self.entity,)

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse an ``snmp-trap`` event."""
        what = TOPIC_SNMP_TRAP
        data = as_mapping(value, what)
        payload = as_mapping(data.get("payload") or {}, f"{what}.payload")
        entities = _entities(data.get("entity"), f"{what}.entity")
        extra = extra_fields(data, cls._KNOWN)
        payload_extra = extra_fields(payload, cls._KNOWN_PAYLOAD)
        if payload_extra:
            extra["payload"] = payload_extra
        text = _text(payload.get("text"), f"{what}.text")
        return cls(
            event_id=opt_id(data.get("_id", data.get("id")), f"{what}._id"),
            timestamp=opt_int(data.get("timestamp"), f"{what}.timestamp"),
            level_id=_level(data, what),
            agent_id=opt_id(data.get("agentId"), f"{what}.agentId"),
            entity=entities[0] if entities else None,
            sender_address=opt_name(payload.get("senderAddress"), f"{what}.senderAddress"),
            agent_address=opt_name(payload.get("agentAddress"), f"{what}.agentAddress"),
            enterprise_oid=opt_name(payload.get("enterpriseOid"), f"{what}.enterpriseOid"),
            trap_oid=opt_name(payload.get("trapOid"), f"{what}.trapOid"),
            generic_trap=opt_int(payload.get("genericTrap"), f"{what}.genericTrap"),
            specific_trap=opt_int(payload.get("specificTrap"), f"{what}.specificTrap"),
            bindings=_bindings(payload.get("bindings"), f"{what}.bindings"),
            text=None if text is None else unquote(text),
            extra=extra,
        )


def _bindings(value: Any, what: str) -> dict[str, str]:
    """``{oid: value}``; also a list of ``{oid, value}`` objects or ``[oid, value]`` pairs."""
    if value is None:
        return {}
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                pairs.append((item.get("oid", item.get("name")), item.get("value")))
            elif isinstance(item, list) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise SaymonProtocolError(f"{what}: unreadable binding")
    else:
        raise SaymonProtocolError(f"{what}: expected bindings, got {type(value).__name__}")
    bindings: dict[str, str] = {}
    for oid, item in pairs[:MAX_BINDINGS]:
        key = opt_str(oid, f"{what}.oid", MAX_NAME_LENGTH)
        if not key:
            raise SaymonProtocolError(f"{what}: binding without an OID")
        text = _text(item, f"{what}.value")
        bindings[key] = "" if text is None else unquote(text)
    return bindings


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """An MQTT message SAYMON received, attributed to every object it belongs to."""

    TOPIC: ClassVar[str] = TOPIC_MQTT
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"_id", "id", "type", "payload", "timestamp", "entity"}
    )

    event_id: str | None
    timestamp: int | None
    topic: str
    message: str
    entities: tuple[EntityRef, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse an ``mqtt`` event (``entity`` is a list; a single object is accepted)."""
        what = TOPIC_MQTT
        data = as_mapping(value, what)
        payload = as_mapping(data.get("payload") or {}, f"{what}.payload")
        topic = opt_str(payload.get("topic"), f"{what}.topic", MAX_NAME_LENGTH)
        if topic is None:
            raise SaymonProtocolError(f"{what}: message without a topic")
        extra = extra_fields(data, cls._KNOWN)
        payload_extra = extra_fields(payload, frozenset({"topic", "message"}))
        if payload_extra:
            extra["payload"] = payload_extra
        return cls(
            event_id=opt_id(data.get("_id", data.get("id")), f"{what}._id"),
            timestamp=opt_int(data.get("timestamp"), f"{what}.timestamp"),
            topic=topic,
            message=_text(payload.get("message"), f"{what}.message") or "",
            entities=_entities(data.get("entity"), f"{what}.entity"),
            extra=extra,
        )


@dataclass(frozen=True, slots=True)
class ClientNotification:
    """SAYMON's per-user notification about an entity's state change (its notification bell)."""

    TOPIC: ClassVar[str] = TOPIC_CLIENT_NOTIFICATION
    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"entityId", "entityType", "stateId", "soundName", "timestamp"}
    )

    entity: EntityRef
    state_id: str | None
    sound_name: str | None
    timestamp: int | None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entities(self) -> tuple[EntityRef, ...]:
        """The entity it is about."""
        return (self.entity,)

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse a ``client-notification`` event."""
        what = TOPIC_CLIENT_NOTIFICATION
        data = as_mapping(value, what)
        return cls(
            entity=EntityRef.from_json(data, what),
            state_id=opt_id(data.get("stateId", data.get("state_id")), f"{what}.stateId"),
            sound_name=opt_name(data.get("soundName"), f"{what}.soundName"),
            timestamp=opt_int(data.get("timestamp"), f"{what}.timestamp"),
            extra=extra_fields(data, cls._KNOWN | {"id", "type", "entityName"}),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """One run of a SAYMON operation (SAYMON's Job model), finished once it has a result.

    Script operations report ``exit_code`` and ``stdout``; MQTT operations the ``topic`` and
    ``message`` they sent.
    """

    _KNOWN: ClassVar[frozenset[str]] = frozenset(
        {
            "id",
            "_id",
            "jobId",
            "operation_id",
            "operationId",
            "owner_id",
            "ownerId",
            "owner_type",
            "ownerType",
            "user_id",
            "userId",
            "timestamp",
            "description",
            "results",
        }
    )

    id: str
    operation_id: str | None = None
    owner_id: str | None = None
    owner_type: EntityType = EntityType.OBJECT
    user_id: str | None = None
    timestamp: int | None = None
    exit_code: int | None = None
    stdout: str | None = None
    topic: str | None = None
    message: str | None = None
    results: tuple[Any, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether the job has its result (an exit code or output, or the MQTT message sent)."""
        return any(
            item is not None for item in (self.exit_code, self.stdout, self.topic, self.message)
        )

    @property
    def succeeded(self) -> bool | None:
        """Exit code 0, or an MQTT operation that sent its message; ``None`` while running."""
        if self.exit_code is not None:
            return self.exit_code == 0
        return True if self.finished else None

    @property
    def entities(self) -> tuple[EntityRef, ...]:
        """The object or link the operation ran for."""
        return () if self.owner_id is None else (EntityRef(self.owner_id, self.owner_type),)

    @classmethod
    def from_json(cls, value: Any, what: str = "job") -> Self:
        """Parse SAYMON's Job model; ``{"job": {...}}`` and text JSON are unwrapped."""
        data = as_mapping(value, what)
        inner = data.get("job")
        if isinstance(inner, Mapping | str) and not any(k in data for k in ("id", "_id")):
            data = as_mapping(inner, f"{what}.job")
        job_id = opt_id(data.get("id", data.get("_id", data.get("jobId"))), f"{what}.id")
        if job_id is None:
            raise SaymonProtocolError(f"{what}: missing id")
        raw_description = data.get("description")
        description = (
            as_mapping(raw_description, f"{what}.description")
            if isinstance(raw_description, Mapping) or _is_json_object(raw_description)
            else {}
        )
        raw_type = data.get("owner_type", data.get("ownerType"))
        results = data.get("results")
        return cls(
            id=job_id,
            operation_id=opt_id(
                data.get("operation_id", data.get("operationId")), f"{what}.operation_id"
            ),
            owner_id=opt_id(data.get("owner_id", data.get("ownerId")), f"{what}.owner_id"),
            owner_type=EntityType.OBJECT
            if raw_type is None
            else EntityType.parse(raw_type, f"{what}.owner_type"),
            user_id=opt_id(data.get("user_id", data.get("userId")), f"{what}.user_id"),
            timestamp=opt_int(data.get("timestamp"), f"{what}.timestamp"),
            exit_code=opt_int(description.get("exitCode"), f"{what}.exitCode"),
            stdout=_text(description.get("stdout"), f"{what}.stdout"),
            topic=opt_str(description.get("topic"), f"{what}.topic", MAX_NAME_LENGTH),
            message=_text(description.get("message"), f"{what}.message"),
            results=tuple(json_safe(results, 1)) if isinstance(results, list) else (),
            extra=extra_fields(data, cls._KNOWN),
        )


def _is_json_object(value: Any) -> bool:
    return isinstance(value, str) and value[:1] == "{"


class JobEventKind(StrEnum):
    """What happened to a job."""

    ADDED = "added"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job was created (``job-added``) or got its result (``job-result-received``).

    ``from_rest``: the result was read over REST by a caller waiting for it before Comet told
    (see :class:`~.operations.JobFollower`); each result is reported once either way.
    """

    kind: JobEventKind
    job: Job
    from_rest: bool = False

    @property
    def entities(self) -> tuple[EntityRef, ...]:
        """The object or link the operation ran for."""
        return self.job.entities


def parse_job_added(value: Any) -> JobEvent:
    """Parse ``job-added`` (not public: read as the Job model)."""
    return JobEvent(JobEventKind.ADDED, Job.from_json(value, TOPIC_JOB_ADDED))


def parse_job_result(value: Any) -> JobEvent:
    """Parse ``job-result-received`` (not public: read as the Job model, with its result)."""
    return JobEvent(JobEventKind.FINISHED, Job.from_json(value, TOPIC_JOB_RESULT))


@dataclass(frozen=True, slots=True)
class BulkFinished:
    """A bulk operation finished (not public: the id, and whatever else came)."""

    TOPIC: ClassVar[str] = TOPIC_BULK_FINISHED
    _KNOWN: ClassVar[frozenset[str]] = frozenset({"id", "_id", "bulkId", "bulk_id", "finished"})

    bulk_id: str | None
    finished: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entities(self) -> tuple[EntityRef, ...]:
        """A bulk belongs to no object."""
        return ()

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse ``bulk-finished``: an object with the bulk id, or the bare id."""
        what = TOPIC_BULK_FINISHED
        if (
            isinstance(value, int | str)
            and not isinstance(value, bool)
            and not _is_json_object(value)
        ):
            return cls(opt_id(value, f"{what}.id"))
        data = as_mapping(value, what)
        raw = data.get("bulkId", data.get("bulk_id", data.get("id", data.get("_id"))))
        finished = data.get("finished")
        return cls(
            bulk_id=opt_id(raw, f"{what}.id"),
            finished=finished if isinstance(finished, bool) else True,
            extra=extra_fields(data, cls._KNOWN),
        )


type ServerEvent = SnmpTrap | MqttMessage | ClientNotification | JobEvent | BulkFinished
"""A server event; it is also the change :class:`~.live.SaymonLive` reports for it."""

SERVER_EVENT_TYPES: Final = (SnmpTrap, MqttMessage, ClientNotification, JobEvent, BulkFinished)

SERVER_EVENT_PARSERS: Final[Mapping[str, Callable[[Any], ServerEvent]]] = {
    TOPIC_SNMP_TRAP: SnmpTrap.from_json,
    TOPIC_MQTT: MqttMessage.from_json,
    TOPIC_CLIENT_NOTIFICATION: ClientNotification.from_json,
    TOPIC_JOB_ADDED: parse_job_added,
    TOPIC_JOB_RESULT: parse_job_result,
    TOPIC_BULK_FINISHED: BulkFinished.from_json,
}
