"""Data model of what SAYMON's REST API returns: objects, links, states, levels, incidents.

Immutable, slotted dataclasses keep a snapshot of thousands of objects small and safe to share
between the hub and entities. ``from_json`` constructors are tolerant of the type variations
real SAYMON versions produce (see :mod:`._fields`) and raise
:class:`~.errors.SaymonProtocolError` on records they cannot use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Self

from ._fields import as_mapping, color, id_list, opt_id, opt_int, opt_name, opt_str, req_id
from .errors import SaymonProtocolError

# Incident level ids that SAYMON ships with (they can be renamed, not removed).
LEVEL_ALARM = "1"
LEVEL_WARNING = "2"
LEVEL_CLEARED = "3"
LEVEL_MAJOR = "4"


class EntityType(IntEnum):
    """What an id refers to; SAYMON sends ``1``/``2``/``3`` or ``"obj"``/``"link"``."""

    OBJECT = 1
    LINK = 2
    FLOW = 3

    @classmethod
    def parse(cls, value: Any, what: str = "entityType") -> EntityType:
        """Read every spelling SAYMON versions use; unknown values are a protocol error."""
        if isinstance(value, str):
            key = value.strip().lower()
            named = _ENTITY_TYPE_NAMES.get(key)
            if named is not None:
                return named
            if key.isdecimal() and len(key) <= 3:  # not "²" (a digit to isdigit, not int)
                value = int(key)
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        raise SaymonProtocolError(f"{what}: unknown entity type {value!r}")


_ENTITY_TYPE_NAMES = {
    "obj": EntityType.OBJECT,
    "object": EntityType.OBJECT,
    "objects": EntityType.OBJECT,
    "link": EntityType.LINK,
    "links": EntityType.LINK,
    "flow": EntityType.FLOW,
}


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The SAYMON user the client is logged in as."""

    id: str
    login: str
    permissions: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse ``GET /users/current``."""
        data = as_mapping(value, "user")
        perms = data.get("permissions")
        return cls(
            id=req_id(data, "id", "user"),
            login=opt_name(data.get("login"), "user.login") or "",
            permissions=tuple(p for p in perms if isinstance(p, str))
            if isinstance(perms, list)
            else (),
        )


@dataclass(frozen=True, slots=True)
class _NamedLevel:
    """A named, ranked and coloured entry of one of SAYMON's lists (states, incident levels)."""

    id: str
    name: str
    priority: int | None = None
    color: str | None = None

    WHAT: ClassVar[str] = "entry"

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse one element of ``GET /states`` or ``GET /incident-levels``."""
        data = as_mapping(value, cls.WHAT)
        entry_id = req_id(data, "id", cls.WHAT)
        return cls(
            id=entry_id,
            name=opt_name(data.get("name"), f"{cls.WHAT}.name") or entry_id,
            priority=opt_int(data.get("priority"), f"{cls.WHAT}.priority"),
            color=color(data),
        )


@dataclass(frozen=True, slots=True)
class SaymonState(_NamedLevel):
    """An object/link state (built-in ``1``-``9`` or a custom one)."""

    WHAT: ClassVar[str] = "state"


@dataclass(frozen=True, slots=True)
class IncidentLevel(_NamedLevel):
    """An incident level (severity): Alarm, Warning, Cleared, Major or a custom one."""

    WHAT: ClassVar[str] = "incident level"


@dataclass(frozen=True, slots=True)
class SaymonClass:
    """An object class (becomes the device model in Home Assistant)."""

    id: str
    name: str

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse one element of ``GET /classes``."""
        data = as_mapping(value, "class")
        class_id = req_id(data, "id", "class")
        return cls(id=class_id, name=opt_name(data.get("name"), "class.name") or class_id)


@dataclass(frozen=True, slots=True)
class SaymonObject:
    """A monitored SAYMON object, a node of SAYMON's object tree."""

    id: str
    name: str
    class_id: str | None = None
    state_id: str | None = None
    parent_ids: tuple[str, ...] = ()
    child_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    last_state_update: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse an element of ``GET /objects`` or ``GET /objects/:id``."""
        data = as_mapping(value, "object")
        object_id = req_id(data, "id", "object")
        what = f"object {object_id}"
        return cls(
            id=object_id,
            name=opt_name(data.get("name"), f"{what}.name") or object_id,
            class_id=opt_id(data.get("class_id"), f"{what}.class_id"),
            state_id=opt_id(data.get("state_id"), f"{what}.state_id"),
            parent_ids=id_list(data.get("parent_id"), f"{what}.parent_id"),
            child_ids=id_list(data.get("child_ids"), f"{what}.child_ids"),
            tags=id_list(data.get("tags"), f"{what}.tags"),
            last_state_update=opt_int(data.get("last_state_update"), f"{what}.last_state_update"),
        )


@dataclass(frozen=True, slots=True)
class SaymonLink:
    """A link between two objects; it has a state of its own."""

    id: str
    source: str | None
    target: str | None
    class_id: str | None = None
    state_id: str | None = None
    source_name: str | None = None
    target_name: str | None = None
    last_state_update: int | None = None

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse an element of ``GET /links``."""
        data = as_mapping(value, "link")
        link_id = req_id(data, "id", "link")
        what = f"link {link_id}"
        return cls(
            id=link_id,
            source=opt_id(data.get("source"), f"{what}.source"),
            target=opt_id(data.get("target"), f"{what}.target"),
            class_id=opt_id(data.get("class_id"), f"{what}.class_id"),
            state_id=opt_id(data.get("state_id"), f"{what}.state_id"),
            source_name=opt_name(data.get("source_name"), f"{what}.source_name"),
            target_name=opt_name(data.get("target_name"), f"{what}.target_name"),
            last_state_update=opt_int(data.get("last_state_update"), f"{what}.last_state_update"),
        )


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as SAYMON reports it; ``level_id`` is the model's ``state`` field."""

    id: str
    entity_id: str | None
    entity_type: EntityType
    level_id: str | None
    text: str = ""
    type: int | None = None
    last_level_id: str | None = None
    timestamp: int | None = None
    local_timestamp: int | None = None
    clear_timestamp: int | None = None
    acknowledged_by: str | None = None
    acknowledgement_timestamp: int | None = None
    count: int | None = None
    owner_name: str | None = field(default=None, compare=False)
    """Only REST answers carry it (``owner=true``); not part of what makes a change."""

    @property
    def is_active(self) -> bool:
        """Whether the incident is still open (not cleared)."""
        return self.clear_timestamp is None and self.level_id != LEVEL_CLEARED

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Parse a full incident (REST, or the payload of an ``incidents`` event)."""
        data = as_mapping(value, "incident")
        incident_id = req_id(data, "id", "incident")
        what = f"incident {incident_id}"
        raw_type = data.get("entityType")
        owner = data.get("owner")
        return cls(
            id=incident_id,
            entity_id=opt_id(data.get("entityId"), f"{what}.entityId"),
            entity_type=EntityType.OBJECT
            if raw_type is None
            else EntityType.parse(raw_type, f"{what}.entityType"),
            level_id=opt_id(data.get("state"), f"{what}.state"),
            text=opt_str(data.get("text"), f"{what}.text") or "",
            type=opt_int(data.get("type"), f"{what}.type"),
            last_level_id=opt_id(data.get("lastState"), f"{what}.lastState"),
            timestamp=opt_int(data.get("timestamp"), f"{what}.timestamp"),
            local_timestamp=opt_int(data.get("localTimestamp"), f"{what}.localTimestamp"),
            clear_timestamp=opt_int(data.get("clearTimestamp"), f"{what}.clearTimestamp"),
            acknowledged_by=opt_id(data.get("acknowledgedBy"), f"{what}.acknowledgedBy"),
            acknowledgement_timestamp=opt_int(
                data.get("acknowledgementTimestamp"), f"{what}.acknowledgementTimestamp"
            ),
            count=opt_int(data.get("count"), f"{what}.count"),
            owner_name=opt_name(owner.get("name"), f"{what}.owner.name")
            if isinstance(owner, Mapping)
            else None,
        )
