"""Home Assistant MQTT discovery: SAYMON's objects appear as devices in another Home Assistant.

Another consumer of the hub's change stream, next to the mirror whose connection and topics it
uses (:mod:`.discovery_payloads` says what the configs contain). Every config is retained:

* after every (re)connect to the broker, and whenever a consumer announces itself
  (``<prefix>/status`` = ``online``, Home Assistant's birth message), every config is
  published again;
* model changes (objects created, renamed, moved, removed; the scope follows them) and a
  changed set of SAYMON states recompute the configs at the next coalesced flush; only the
  ones that changed go out, and a device that is no longer wanted gets an empty retained
  message, which makes Home Assistant remove it. A removed object's config is cleared at
  once, before the mirror deletes its state topic;
* what was published is remembered per entry (a small store of node ids), so configs of
  objects that left the scope or SAYMON while this Home Assistant was not running, or that
  were published under an earlier prefix, are cleared as well; removing the entry clears all.

:mod:`.discovery_guard` keeps this Home Assistant from discovering its own objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.json import json_bytes
from homeassistant.helpers.storage import Store
from homeassistant.loader import async_get_integration

from ..api.events import ModelChange
from ..api.model import Change, ModelChanged
from ..api.models import EntityType
from ..const import DOMAIN
from .broker import BrokerConfig, DedicatedBroker
from .discovery_guard import LoopWatch, issue_id, listening_here, raise_issue
from .discovery_payloads import (
    MANUFACTURER,
    OBJECT_COMPONENTS,
    SERVER_COMPONENTS,
    Subject,
    config_topic,
    device_config,
    node_id,
    origin,
    state_names,
)
from .topics import Topics
from .transport import Transport

if TYPE_CHECKING:
    from ..hub import SaymonHub

_LOGGER = logging.getLogger(__name__)

BIRTH: Final = b"online"
CONFIG_QOS: Final = 1
STORE_VERSION: Final = 1
SAVE_DELAY: Final = 10.0
_UNSENT: Final = 0
"""Digest of a config that must be published again (never the hash of a real payload here)."""


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORE_VERSION, f"{DOMAIN}.discovery.{entry_id}")


class Discovery:
    """Publishes and clears the discovery configs of one entry's objects and server."""

    def __init__(
        self,
        hass: HomeAssistant,
        hub: SaymonHub,
        transport: Transport,
        topics: Topics,
        *,
        prefix: str,
        broker: BrokerConfig | None,
    ) -> None:
        """Nothing is published before :meth:`async_start` and the first connect."""
        self._hass = hass
        self._hub = hub
        self._transport = transport
        self._topics = topics
        self.prefix = prefix
        self._broker = broker
        self._entry_id = hub.entry.entry_id
        self._server_node = node_id(hub.server_key)
        self._published: dict[str, int] = {}
        """Node -> digest of the config last published (``_UNSENT``: publish again)."""
        self._leftovers: dict[str, list[str]] = {}
        """Nodes an earlier run published under another prefix, still to be cleared."""
        self._everything = False
        self._ready = False
        self._refused = False
        self._retired = False
        self._stopped = False
        self._state_names: list[str] | None = None
        self._origin: dict[str, Any] = {}
        self._store = _store(hass, self._entry_id)
        self._watch = LoopWatch(hass, self._server_node, self._loop_detected)
        self._unsubscribe: list[Callable[[], None]] = []
        self.counters = {"published": 0, "cleared": 0, "births": 0}

    @property
    def birth_topic(self) -> str:
        """Where Home Assistant (and other consumers) announce themselves."""
        return f"{self.prefix}/status"

    @property
    def refused(self) -> bool:
        """Whether discovery is off because this Home Assistant would discover itself."""
        return self._refused

    async def async_start(self) -> None:
        """Read the origin and the earlier run's nodes, check for loops, follow the hub."""
        integration = await async_get_integration(self._hass, DOMAIN)
        self._origin = origin(str(integration.version or "0"), integration.documentation)
        await self._load()
        if listening_here(self._hass, self.prefix, self._broker) or self._watch.start():
            self._refuse()
        self._transport.subscribe(self.birth_topic, self._on_birth)
        hub = self._hub
        self._unsubscribe = [hub.add_listener(self.on_changes), hub.coalescer.add(self._flush)]

    async def async_stop(self) -> None:
        """Send what is pending, stop following the hub and remember what was published."""
        if self._stopped:
            return
        self._flush()
        self._stopped = True
        self._watch.stop()
        # The issue lives as long as the refusing discovery: a reload with other settings ends it.
        ir.async_delete_issue(self._hass, DOMAIN, issue_id(self._entry_id))
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await self._store.async_save(self._data())

    async def async_retire(self) -> None:
        """Clear every config now (discovery is being turned off or moved); publish no more."""
        self._retired = True
        self._clear_all()
        await self._store.async_save(self._data())

    # -- triggers -----------------------------------------------------------------------------

    @callback
    def on_connected(self) -> None:
        """(Re)connected: publish every config again (the broker may have lost them)."""
        self._ready = True
        self._republish()

    @callback
    def _on_birth(self, payload: bytes) -> None:
        """A consumer announced itself: give it every config again."""
        if payload.strip() != BIRTH or self._stopped or self._refused:
            return
        self.counters["births"] += 1
        self._republish()

    @callback
    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Object changes recompute the configs; a removed object's config goes at once."""
        account = self._hub.server_key
        for change in changes:
            if not isinstance(change, ModelChanged) or change.entity_type is not EntityType.OBJECT:
                continue
            self._everything = True
            if change.change is ModelChange.REMOVED and self._active:
                self._clear(node_id(account, change.entity_id))
        if self._everything:
            self._hub.coalescer.request()

    def _republish(self) -> None:
        self._published = dict.fromkeys(self._published, _UNSENT)
        self._everything = True
        self._hub.coalescer.request()

    @callback
    def _loop_detected(self) -> None:
        _LOGGER.error(
            "This Home Assistant's MQTT integration discovers the SAYMON devices published "
            "under %s/: clearing them and turning SAYMON's MQTT discovery off; choose a "
            "discovery prefix this Home Assistant does not listen to",
            self.prefix,
        )
        self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        raise_issue(self._hass, self._entry_id, self.prefix)
        self._hub.coalescer.request()  # the flush clears whatever was published

    # -- publishing ---------------------------------------------------------------------------

    @property
    def _active(self) -> bool:
        return not (self._stopped or self._refused or self._retired)

    def _flush(self) -> None:
        """Publish the configs that changed and clear the ones no longer wanted."""
        if self._stopped or not self._ready:
            return
        if not self._active:
            self._clear_all()
            return
        if not self._clear_leftovers():
            return
        names = state_names(self._hub.model)
        if names != self._state_names:  # the state sensors' options changed (a few states)
            self._state_names = names
            self._everything = True
        if not self._everything:
            return
        wanted = self._configs()
        publish = self._transport.publish
        published = self._published
        for node, payload in wanted.items():
            digest = hash(payload) or 1
            if published.get(node) == digest:
                continue
            if not publish(config_topic(self.prefix, node), payload, CONFIG_QOS, True):
                self._later()
                return
            published[node] = digest
            self.counters["published"] += 1
        for node in [node for node in published if node not in wanted]:
            if not self._clear(node):
                self._later()
                return
        self._everything = False
        self._save()

    def _configs(self) -> dict[str, bytes]:
        """Every wanted config: the server first, then objects, parents before children."""
        hub = self._hub
        model, topics, account, server = hub.model, self._topics, hub.server_key, self._server_node
        configs = {
            server: json_bytes(
                device_config(
                    server,
                    {
                        "ids": [server],
                        "name": hub.entry.title,
                        "mf": MANUFACTURER,
                        "mdl": "SAYMON server",
                        "cu": hub.base_url,
                    },
                    self._origin,
                    Subject(model, topics, account),
                    SERVER_COMPONENTS,
                )
            )
        }
        devices = hub.devices
        for object_id in hub.ordered_objects():
            obj = model.objects[object_id]
            node = node_id(account, object_id)
            parent = devices.parent_in_scope(model, object_id)
            cls = model.classes.get(obj.class_id or "")
            device: dict[str, Any] = {
                "ids": [node],
                "name": obj.name or object_id,
                "mf": MANUFACTURER,
                "cu": devices.object_url(object_id),
                "via_device": server if parent is None else node_id(account, parent),
            }
            if product := (cls.name if cls is not None else obj.class_id):
                device["mdl"] = product
            configs[node] = json_bytes(
                device_config(
                    node, device, self._origin, Subject(model, topics, object_id), OBJECT_COMPONENTS
                )
            )
        return configs

    def _clear(self, node: str) -> bool:
        """Publish the empty config that removes a device; ``False`` if the queue refused it."""
        if node not in self._published:
            return True
        if not self._transport.publish(config_topic(self.prefix, node), b"", CONFIG_QOS, True):
            self._everything = True
            return False
        del self._published[node]
        self.counters["cleared"] += 1
        self._save()
        return True

    def _clear_leftovers(self) -> bool:
        """Clear what an earlier run published under another prefix; ``False`` if unfinished."""
        for prefix, nodes in list(self._leftovers.items()):
            publish = self._transport.publish
            while nodes:
                if not publish(config_topic(prefix, nodes[-1]), b"", CONFIG_QOS, True):
                    self._later()
                    return False
                nodes.pop()
                self.counters["cleared"] += 1
            del self._leftovers[prefix]
            self._save()
        return True

    def _clear_all(self) -> None:
        for node in list(self._published):
            if not self._clear(node):
                self._later()
                return
        self._clear_leftovers()

    def _later(self) -> None:
        """The queue is full: try again at a later flush (spaced out while it is busy)."""
        if self._transport.full and not self._stopped:
            self._hub.coalescer.request()

    # -- memory of what was published -----------------------------------------------------------

    async def _load(self) -> None:
        stored = await self._store.async_load() or {}
        self._leftovers = {
            prefix: list(nodes) for prefix, nodes in (stored.get("leftovers") or {}).items()
        }
        nodes = list(stored.get("nodes") or [])
        previous = stored.get("prefix")
        if previous == self.prefix:
            self._published = dict.fromkeys(nodes, _UNSENT)
        elif previous and nodes:
            self._leftovers.setdefault(previous, []).extend(nodes)
        self._leftovers.pop(self.prefix, None)

    def _data(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "nodes": sorted(self._published),
            "leftovers": {prefix: list(nodes) for prefix, nodes in self._leftovers.items()},
        }

    def _save(self) -> None:
        self._store.async_delay_save(self._data, SAVE_DELAY)

    def diagnostics(self) -> dict[str, Any]:
        """Prefix, devices published and counters (no host, user or password)."""
        return {
            "prefix": self.prefix,
            "devices": len(self._published),
            "refused": self._refused,
            **self.counters,
        }


async def async_remove_discovery(
    hass: HomeAssistant,
    entry_id: str,
    *,
    enabled: bool,
    broker: BrokerConfig | None,
    status_topic: str,
) -> None:
    """The entry is being removed: clear every config it published, then forget them.

    ``enabled`` says whether the mirror is on, ``broker`` is its dedicated broker (``None``
    for Home Assistant's MQTT) and ``status_topic`` its status topic (offline already). Runs
    after the entry was unloaded, so it publishes on a connection of its own.
    """
    store = _store(hass, entry_id)
    stored = await store.async_load() or {}
    topics = [config_topic(str(stored["prefix"]), node) for node in stored.get("nodes") or []]
    for prefix, nodes in (stored.get("leftovers") or {}).items():
        topics.extend(config_topic(prefix, node) for node in nodes)
    await store.async_remove()
    if not topics or not enabled:
        return
    if broker is None:
        if not hass.config_entries.async_loaded_entries(mqtt.DOMAIN):
            _LOGGER.warning("MQTT is not loaded: %d discovery configs stay retained", len(topics))
            return
        for topic in topics:
            await mqtt.async_publish(hass, topic, b"", CONFIG_QOS, True)
        return
    client = DedicatedBroker(
        hass.loop, broker, status_topic=status_topic, queue_size=len(topics) + 1
    )
    await client.async_start()
    for topic in topics:
        client.publish(topic, b"", CONFIG_QOS, True)
    await client.async_stop(timeout=10.0)
