"""The kinds of SAYMON server events the integration offers, each opt-in on its own.

One table says, per kind, which Comet topics it subscribes, which bus event it fires, the event
types of its event entities and the option that turns it on (the option key is also the
entities' key). The options flow, the hub, the event and button platforms, the device triggers
and the logbook all read it, so a kind is described once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .api.server_events import (
    TOPIC_BULK_FINISHED,
    TOPIC_CLIENT_NOTIFICATION,
    TOPIC_JOB_ADDED,
    TOPIC_JOB_RESULT,
    TOPIC_MQTT,
    TOPIC_SNMP_TRAP,
    BulkFinished,
    ClientNotification,
    JobEvent,
    MqttMessage,
    ServerEvent,
    SnmpTrap,
)
from .const import (
    CONF_TRANSPORT,
    EVENT_BULK_FINISHED,
    EVENT_JOB,
    EVENT_MQTT_MESSAGE,
    EVENT_NOTIFICATION,
    EVENT_SNMP_TRAP,
    TRANSPORT_WEBSOCKET,
)


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of server event."""

    key: str
    """Option key, entity key and diagnostics key."""
    topics: tuple[str, ...]
    event: str
    """The Home Assistant bus event fired for each one."""
    event_types: tuple[str, ...] = ()
    """Event types of its event entities; none: it has no entities (bus event only)."""
    change: type[Any] = object
    """The protocol library's change class of this kind."""


SNMP_TRAPS: Final = Kind("snmp_traps", (TOPIC_SNMP_TRAP,), EVENT_SNMP_TRAP, ("trap",), SnmpTrap)
MQTT_MESSAGES: Final = Kind(
    "mqtt_messages", (TOPIC_MQTT,), EVENT_MQTT_MESSAGE, ("message",), MqttMessage
)
NOTIFICATIONS: Final = Kind(
    "client_notifications",
    (TOPIC_CLIENT_NOTIFICATION,),
    EVENT_NOTIFICATION,
    ("notification",),
    ClientNotification,
)
JOBS: Final = Kind(
    "jobs",
    (TOPIC_JOB_ADDED, TOPIC_JOB_RESULT),
    EVENT_JOB,
    ("started", "finished", "failed"),
    JobEvent,
)
BULKS: Final = Kind(
    "bulk_operations", (TOPIC_BULK_FINISHED,), EVENT_BULK_FINISHED, (), BulkFinished
)

KINDS: Final = (SNMP_TRAPS, MQTT_MESSAGES, NOTIFICATIONS, JOBS, BULKS)
_BY_CHANGE: Final = {kind.change: kind for kind in KINDS}


def kind_of(change: ServerEvent) -> Kind:
    """The kind of a server event."""
    return _BY_CHANGE[type(change)]


def chosen(options: Mapping[str, Any]) -> tuple[Kind, ...]:
    """The kinds turned on in an entry's options (none by default)."""
    return tuple(kind for kind in KINDS if options.get(kind.key) is True)


def topics(kinds: tuple[Kind, ...]) -> list[str]:
    """The Comet topics of these kinds."""
    return [topic for kind in kinds for topic in kind.topics]


def live_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The live session's server topics and transport, from an entry's options."""
    return {
        "server_topics": topics(chosen(options)),
        "transport": options.get(CONF_TRANSPORT, TRANSPORT_WEBSOCKET),
    }
