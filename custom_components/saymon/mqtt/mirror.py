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
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .. import describe
from ..api.events import ModelChange
from ..api.model import Change, IncidentChanged, ModelChanged, StateChanged
from ..api.models import EntityType
from ..coalesce import STORM_BACKLOG
from ..const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
    CONF_MQTT_DISCOVERY,
    CONF_MQTT_DISCOVERY_PREFIX,
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
    DEFAULT_MQTT_DISCOVERY_PREFIX,
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTT_QOS,
    DEFAULT_MQTT_QUEUE_SIZE,
    MQTT_BROKER,
    MQTT_HOME_ASSISTANT,
    MQTT_OFF,
)
from . import payloads
from .broker import BrokerConfig, DedicatedBroker
from .discovery import Discovery
from .ha_transport import HomeAssistantMqttTransport
from .server_events import ServerEventTopics
from .stat_topics import StatTopics
from .topics import Topics, clean_base, default_base
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
    discovery_prefix: str | None = None
    """Home Assistant MQTT discovery prefix; ``None`` when discovery is off."""

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
            discovery_prefix=clean_base(
                options.get(CONF_MQTT_DISCOVERY_PREFIX) or DEFAULT_MQTT_DISCOVERY_PREFIX
            )
            if options.get(CONF_MQTT_DISCOVERY)
            else None,
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
        self._incident_owners: set[str] = set()
        """Objects whose incident count topic may have moved since the last flush."""
        self._state_names: dict[str, str] | None = None
        """SAYMON's state names as last seen (retained states name them)."""
        self.discovery = (
            Discovery(
                hass,
                hub,
                self.transport,
                self.topics,
                prefix=settings.discovery_prefix,
                broker=settings.broker,
            )
            if settings.discovery_prefix is not None
            else None
        )
        self._unsubscribe: list[Callable[[], None]] = []
        self._stopped = False
        self.snapshots = 0
        self.stats = StatTopics(hub, self.topics, self.transport, settings.retain)

    async def async_start(self) -> None:
        """Follow the hub's change stream and connect."""
        hub = self._hub
        if self.discovery is not None:
            await self.discovery.async_start()  # first: its removals precede the mirror's
        self._unsubscribe = [
            hub.add_listener(self.on_changes),
            hub.add_listener(
                ServerEventTopics(hub, self.transport, self.topics, self.settings.qos).on_changes
            ),
            hub.coalescer.add(self._flush, lambda: self.transport.backlog >= STORM_BACKLOG),
            async_dispatcher_connect(
                self._hass, hub.signals.availability, self._publish_connection
            ),
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
        if self.discovery is not None:
            await self.discovery.async_stop()
        await self.transport.async_stop()

    # -- retained picture -------------------------------------------------------------------

    @callback
    def _on_connected(self) -> None:
        """(Re)publish ``online`` and every retained topic."""
        self.snapshots += 1
        publish = self.transport.publish
        publish(self.topics.status, payloads.ONLINE, RETAINED_QOS, True)
        self._publish_connection()
        self._counts_sent.clear()
        self._counts_dirty = True
        hub = self._hub
        self._incident_owners.update(hub.objects_in_scope)
        if self.discovery is not None:
            self.discovery.on_connected()
        dirty = self._dirty_states
        dirty.update(dict.fromkeys(hub.objects_in_scope, EntityType.OBJECT))
        dirty.update(dict.fromkeys(hub.links_in_scope, EntityType.LINK))
        self.stats.republish()
        self._flush()

    @callback
    def _publish_connection(self) -> None:
        """Whether SAYMON's data is live (connected, or within the grace period)."""
        available = payloads.ONLINE if self._hub.available else payloads.OFFLINE
        self.transport.publish(self.topics.connection, available, RETAINED_QOS, True)

    def _publish_counts(self) -> bool:
        """Publish the total and per-level counts that differ from what was last published.

        ``False`` when the queue was full for one of them (it is tried again later).
        """
        model = self._hub.model
        counts = {self.topics.incident_count: len(model.incidents)}
        for level_id, number in model.level_counts().items():
            counts[self.topics.level_count(level_id)] = number
        for object_id in self._incident_owners:
            counts[self.topics.object_incidents(object_id)] = len(model.incidents_of(object_id))
        sent = self._counts_sent
        publish = self.transport.publish
        for topic, number in counts.items():
            if sent.get(topic) != number:
                if not publish(topic, payloads.count(number), RETAINED_QOS, True):
                    return False
                sent[topic] = number
        self._incident_owners.clear()
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
                if not hub.devices.tracks(change.entity_type, entity_id):
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
                if change.incident.entity_id in hub.objects_in_scope:
                    self._incident_owners.add(change.incident.entity_id)
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
            if not link:
                incidents = self.topics.object_incidents(entity_id)
                self._incident_owners.discard(entity_id)
                if self._counts_sent.pop(incidents, None) is not None:
                    self.transport.publish(incidents, b"", RETAINED_QOS, True)
        else:
            self._dirty_states[entity_id] = change.entity_type
            if not link and entity_id in self._hub.objects_in_scope:
                self._incident_owners.add(entity_id)
                self._counts_dirty = True

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
        hub = self._hub
        if self._states_renamed():  # retained states carry the names: send them again
            self._dirty_states.update(dict.fromkeys(hub.objects_in_scope, EntityType.OBJECT))
            self._dirty_states.update(dict.fromkeys(hub.links_in_scope, EntityType.LINK))
        dirty, self._dirty_states = self._dirty_states, {}
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

    def _states_renamed(self) -> bool:
        """Whether SAYMON's state names changed (e.g. a resync learnt a state an admin added)."""
        names = {state_id: state.name for state_id, state in self._hub.model.states.items()}
        changed = self._state_names is not None and names != self._state_names
        self._state_names = names
        return changed

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
            "discovery": None if self.discovery is None else self.discovery.diagnostics(),
        }
