"""The mirror's server event topics: each trap, MQTT message, notification, job and bulk.

A consumer of the hub's change stream next to the mirror's own: it sees the server events that
passed the rate limit (the same ones that became bus events) and publishes each on its kind's
event topic, not retained, at the mirror's QoS, in order. Never coalesced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from .. import describe_server_events
from ..api.model import Change
from ..api.server_events import SERVER_EVENT_TYPES
from ..server_kinds import BULKS, JOBS, MQTT_MESSAGES, NOTIFICATIONS, SNMP_TRAPS, kind_of
from . import server_payloads
from .topics import Topics
from .transport import Transport

if TYPE_CHECKING:
    from ..hub import SaymonHub

SEGMENTS: Final[Mapping[str, tuple[str, Callable[[Mapping[str, Any]], bytes]]]] = {
    SNMP_TRAPS.key: ("traps", server_payloads.snmp_trap),
    MQTT_MESSAGES.key: ("mqtt", server_payloads.mqtt_message),
    NOTIFICATIONS.key: ("notifications", server_payloads.notification),
    JOBS.key: ("jobs", server_payloads.job),
    BULKS.key: ("bulks", server_payloads.bulk),
}
"""Kind -> (topic level under the base topic, payload builder)."""


def event_topic(topics: Topics, kind_key: str) -> str:
    """``<base>/<kind>/event``."""
    return f"{topics.base}/{SEGMENTS[kind_key][0]}/event"


class ServerEventTopics:
    """Publishes the server events of one hub's change stream."""

    def __init__(self, hub: SaymonHub, transport: Transport, topics: Topics, qos: int) -> None:
        """Publish through the mirror's transport, under its topics."""
        self._hub = hub
        self._transport = transport
        self._topics = topics
        self._qos = qos

    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Publish every server event of the batch."""
        hub = self._hub
        for change in changes:
            if not isinstance(change, SERVER_EVENT_TYPES):
                continue
            kind = kind_of(change)
            operation_id = getattr(getattr(change, "job", None), "operation_id", None)
            data = describe_server_events.server_event(
                change, hub.model, hub.server_events.operation_names.get(operation_id or "")
            )
            _, build = SEGMENTS[kind.key]
            self._transport.publish(
                event_topic(self._topics, kind.key), build(data), self._qos, False
            )
