"""The MQTT mirror: SAYMON's live picture on MQTT topics.

It consumes the hub's change stream (the same typed changes that become Home Assistant bus
events, replayed ones included) and publishes them: every change on an event topic, in order,
never coalesced; the latest state of each object and the incident counts on retained topics,
flushed with the hub's one coalescer (a subscriber only needs the final value). After every
(re)connect to the broker it publishes ``online`` and the whole retained picture again, so late
subscribers and a restarted broker see the truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback

from .. import describe
from ..api.events import ModelChange
from ..api.model import Change, IncidentChanged, ModelChanged, StateChanged
from ..api.models import EntityType
from ..coalesce import STORM_BACKLOG
from ..const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PASSWORD,
    CONF_MQTT_PORT,
    CONF_MQTT_PROTOCOL,
    CONF_MQTT_QOS,
    CONF_MQTT_QUEUE_SIZE,
    CONF_MQTT_RETAIN,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_MQTT_VERIFY,
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTT_QOS,
    DEFAULT_MQTT_QUEUE_SIZE,
    MQTT_BROKER,
    MQTT_HOME_ASSISTANT,
    MQTT_OFF,
)
from . import payloads
from .broker import BrokerConfig, DedicatedBroker
from .ha_transport import HomeAssistantMqttTransport
from .stat_topics import StatTopics
from .topics import Topics, default_base
from .transport import Transport

if TYPE_CHECKING:
    from ..hub import SaymonHub

_LOGGER = logging.getLogger(__name__)
RETAINED_QOS = 1


@dataclass(frozen=True, slots=True)
class MirrorSettings:
    """The mirror's options."""

    mode: str
    base_topic: str
    qos: int
    retain: bool
    queue_size: int
    broker: BrokerConfig | None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], host: str) -> MirrorSettings:
        """Read the options flow's ``mqtt_*`` keys (off when absent)."""
        mode = options.get(CONF_MQTT_MODE, MQTT_OFF)
        broker = None
        if mode == MQTT_BROKER:
            broker = BrokerConfig(
                host=options[CONF_MQTT_HOST],
                port=int(options.get(CONF_MQTT_PORT, DEFAULT_MQTT_PORT)),
                username=options.get(CONF_MQTT_USERNAME) or None,
                password=options.get(CONF_MQTT_PASSWORD) or None,
                tls=bool(options.get(CONF_MQTT_TLS, False)),
                verify=bool(options.get(CONF_MQTT_VERIFY, True)),
                ca_cert=options.get(CONF_MQTT_CA_CERT) or None,
                client_id=options.get(CONF_MQTT_CLIENT_ID) or "",
                protocol=options.get(CONF_MQTT_PROTOCOL, "3.1.1"),
            )
        return cls(
            mode=mode,
            base_topic=options.get(CONF_MQTT_BASE_TOPIC) or default_base(host),
            qos=int(options.get(CONF_MQTT_QOS, DEFAULT_MQTT_QOS)),
            retain=bool(options.get(CONF_MQTT_RETAIN, True)),
            queue_size=int(options.get(CONF_MQTT_QUEUE_SIZE, DEFAULT_MQTT_QUEUE_SIZE)),
            broker=broker,
        )

    @property
    def enabled(self) -> bool:
        """Whether the mirror runs at all."""
        return self.mode in (MQTT_BROKER, MQTT_HOME_ASSISTANT)


class SaymonMirror:
    """Publishes one hub's changes and retained picture to MQTT."""

    def __init__(self, hass: HomeAssistant, hub: SaymonHub, settings: MirrorSettings) -> None:
        """Choose the transport; nothing is published before :meth:`async_start`."""
        self._hass = hass
        self._hub = hub
        self.settings = settings
        self.topics = Topics(settings.base_topic)
        self.transport: Transport
        if settings.broker is not None:
            self.transport = DedicatedBroker(
                hass.loop,
                settings.broker,
                status_topic=self.topics.status,
                on_connected=self._on_connected,
                queue_size=settings.queue_size,
            )
        else:
            self.transport = HomeAssistantMqttTransport(
                hass,
                status_topic=self.topics.status,
                on_connected=self._on_connected,
                queue_size=settings.queue_size,
            )
        self._dirty_states: dict[str, EntityType] = {}
        self._counts_dirty = False
        self._counts_sent: dict[str, int] = {}
        """Count topic -> value last published, so a flush sends only the counts that moved."""
        self._unsubscribe: list[Callable[[], None]] = []
        self._stopped = False
        self.snapshots = 0
        self.stats = StatTopics(hub, self.topics, self.transport, settings.retain)

    async def async_start(self) -> None:
        """Follow the hub's change stream and connect."""
        hub = self._hub
        self._unsubscribe = [
            hub.add_listener(self.on_changes),
            hub.coalescer.add(self._flush, lambda: self.transport.backlog >= STORM_BACKLOG),
            *self.stats.start(),
        ]
        await self.transport.async_start()

    async def async_stop(self) -> None:
        """Stop following the hub; the transport publishes ``offline`` and stops.

        Runs when the entry unloads and when Home Assistant stops; a second call does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        self._flush()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self.transport.async_stop()

    # -- retained picture -------------------------------------------------------------------

    @callback
    def _on_connected(self) -> None:
        """(Re)publish ``online`` and every retained topic."""
        self.snapshots += 1
        publish = self.transport.publish
        publish(self.topics.status, payloads.ONLINE, RETAINED_QOS, True)
        self._counts_sent.clear()
        self._counts_dirty = True
        hub = self._hub
        dirty = self._dirty_states
        dirty.update(dict.fromkeys(hub.objects_in_scope, EntityType.OBJECT))
        dirty.update(dict.fromkeys(hub.links_in_scope, EntityType.LINK))
        self.stats.republish()
        self._flush()

    def _publish_counts(self) -> bool:
        """Publish the total and per-level counts that differ from what was last published.

        ``False`` when the queue was full for one of them (it is tried again later).
        """
        model = self._hub.model
        counts = {self.topics.incident_count: len(model.incidents)}
        for level_id, number in model.level_counts().items():
            counts[self.topics.level_count(level_id)] = number
        sent = self._counts_sent
        publish = self.transport.publish
        for topic, number in counts.items():
            if sent.get(topic) != number:
                if not publish(topic, payloads.count(number), RETAINED_QOS, True):
                    return False
                sent[topic] = number
        return True

    def _publish_state(self, entity_id: str, entity_type: EntityType) -> bool:
        model = self._hub.model
        state_id = model.state_of(entity_id)
        topic = (
            self.topics.link_state(entity_id)
            if entity_type is EntityType.LINK
            else self.topics.object_state(entity_id)
        )
        return self.transport.publish(
            topic,
            payloads.state(
                entity_id,
                model.entity_name(entity_type, entity_id),
                state_id,
                model.state_name(state_id),
            ),
            RETAINED_QOS,
            self.settings.retain,
        )

    # -- live changes -----------------------------------------------------------------------

    @callback
    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Publish each change's event topic now; mark the retained topics it touches."""
        hub = self._hub
        model = hub.model
        qos = self.settings.qos
        publish = self.transport.publish
        topics = self.topics
        for change in changes:
            again = replayed or (isinstance(change, IncidentChanged) and change.replayed)
            if isinstance(change, StateChanged):
                link = change.entity_type is EntityType.LINK
                entity_id = change.entity_id
                if entity_id not in (hub.links_in_scope if link else hub.objects_in_scope):
                    continue
                data = describe.state_change(change, model)
                data["replayed"] = again
                topic = topics.link_event(entity_id) if link else topics.object_event(entity_id)
                publish(topic, payloads.state_event(data), qos, False)
                self._dirty_states[entity_id] = change.entity_type
            elif isinstance(change, IncidentChanged):
                data = describe.incident(change.incident, model)
                data.update(type=change.kind.value, replayed=again)
                publish(topics.incident_event, payloads.incident_event(data), qos, False)
                self._counts_dirty = True
            elif isinstance(change, ModelChanged):
                data = describe.model_change(change, model)
                data["replayed"] = again
                publish(topics.model_event, payloads.model_event(data), qos, False)
                self._model_changed(change)
        self._hub.coalescer.request()

    def _model_changed(self, change: ModelChanged) -> None:
        entity_id = change.entity_id
        link = change.entity_type is EntityType.LINK
        if change.change is ModelChange.REMOVED:
            # An empty retained message deletes the retained state of a vanished entity.
            topic = (
                self.topics.link_state(entity_id) if link else self.topics.object_state(entity_id)
            )
            self._dirty_states.pop(entity_id, None)
            self.transport.publish(topic, b"", RETAINED_QOS, True)
        else:
            self._dirty_states[entity_id] = change.entity_type

    def _flush(self) -> None:
        """Publish the latest retained values of everything that changed since the last flush.

        While Comet events or MQTT messages wait (a storm) flushes are spaced out (see
        :mod:`..coalesce`): an object's retained state is sent once per interval with its
        latest value, which leaves the broker connection to the event topics. What the full
        queue refused stays dirty and is tried again at the next flush, so a storm that
        overflows the queue loses event messages (counted) but never the retained truth.
        """
        if self._counts_dirty:
            self._counts_dirty = not self._publish_counts() and self.transport.full
        dirty, self._dirty_states = self._dirty_states, {}
        hub = self._hub
        refused = False
        for entity_id, entity_type in dirty.items():
            if not refused:
                in_scope = (
                    hub.links_in_scope if entity_type is EntityType.LINK else hub.objects_in_scope
                )
                # Refused by anything but a full queue (e.g. stopped): nothing to try again.
                refused = (
                    entity_id in in_scope
                    and not self._publish_state(entity_id, entity_type)
                    and self.transport.full
                )
            if refused:
                self._dirty_states[entity_id] = entity_type
        if (self._dirty_states or self._counts_dirty) and not self._stopped:
            self._hub.coalescer.request()  # a full queue is busy: the next try waits

    def diagnostics(self) -> dict[str, Any]:
        """Mode, counters and queue figures (no host, user or password)."""
        return {
            "mode": self.settings.mode,
            "qos": self.settings.qos,
            "retain": self.settings.retain,
            "queue_size": self.settings.queue_size,
            "connected": self.transport.connected,
            "snapshots_published": self.snapshots,
            "stat_topics_published": self.stats.published,
            "transport": self.transport.stats(),
        }
