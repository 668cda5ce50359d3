"""Metric entities of one server: which exist, and whose ``stat`` is followed.

Which metrics exist is learned, not configured: from the entity registry (what earlier runs
created, with the state class each already records statistics with), from ``stat/search`` over
the objects and links in scope (at setup and when objects join the scope), and from metrics that
appear later in the stream. :mod:`..metric_catalog` decides what entity each one becomes; SAYMON's
metadata is read for unknown numeric metrics (once per probe kind: agents describe a task's
fields alike). The sensor and binary sensor platforms create the entities this module announces;
:mod:`.metric_registry` reads the registry.

Whose stat is followed is :mod:`.metric_subscriptions`' job (objects and links with an
enabled metric entity, and new ones until their first stat). A
budget keeps new metric entities of one entry from pushing it past
:data:`~..metric_catalog.MAX_ENABLED_ENTITIES` enabled entities: beyond it they are created
disabled.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import callback
from homeassistant.helpers.translation import async_get_cached_translations

from ..api import stat
from ..api.errors import SaymonError
from ..api.metrics import Kind, MetricsChanged
from ..api.model import Change
from ..api.models import EntityType
from ..api.stat import MetricMeta, readable_name
from ..const import DOMAIN
from ..metric_catalog import KNOWN, MAX_ENABLED_ENTITIES, MetricOptions, MetricSpec, describe
from .metric_registry import registered_metrics
from .metric_subscriptions import MetricSubscriptions

if TYPE_CHECKING:
    from .hub import SaymonHub

_LOGGER = logging.getLogger(__name__)

META_TIMEOUT: Final = 10.0
"""Seconds setup waits for SAYMON's metadata of unknown metrics before going on without."""

type MetricListener = Callable[[Sequence[tuple[str, EntityType, MetricSpec]]], None]


class MetricEntities:
    """The metric entities of one entry and the objects and links whose metrics are followed."""

    def __init__(self, hub: SaymonHub) -> None:
        """Join the hub's change stream and scope; nothing is read before :meth:`async_setup`."""
        self._hass = hub.hass
        self._entry_id = hub.entry.entry_id
        self._account = hub.server_key
        self._live = hub.live
        self._devices = hub.devices
        self.options = MetricOptions.from_options(hub.entry.options)
        self.specs: dict[str, dict[str, MetricSpec]] = {}
        """Created metric entities: object or link id → path → what the entity is."""
        self.types: dict[str, EntityType] = {}
        self.paths: dict[str, tuple[str, ...]] = {}
        """Every metric learned per object or link, created as an entity or not."""
        self.path_counts: Counter[str] = Counter()
        """How many objects and links have each metric (the options flow counts with it)."""
        self._shipped: dict[tuple[str, str], str | None] = {}
        """Registered metric entities → the state class they record statistics with."""
        self._listeners: list[MetricListener] = []
        self._shared: dict[MetricSpec, MetricSpec] = {}
        self.subscriptions = MetricSubscriptions(hub.hass, hub.entry.entry_id, hub.live)
        self._meta: dict[str, dict[str, MetricMeta] | None] = {}
        self._waiting: dict[str, list[tuple[str, str]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._enabled = 0
        self.disabled_by_budget = 0
        self._ready = False
        hub.add_listener(self.on_changes)
        hub.add_object_listener(lambda ids: self.scope_grew(ids, EntityType.OBJECT))
        hub.add_link_listener(lambda ids: self.scope_grew(ids, EntityType.LINK))

    # -- setup ------------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Learn the registered metrics, then what SAYMON has now for everything in scope."""
        objects, links = self._devices.objects_in_scope, self._devices.links_in_scope
        self._enabled = len(objects) * 2 + len(links) + 10  # the entry's other entities
        store = self._live.model.metrics
        for metric in registered_metrics(self._hass, self._entry_id, self._account):
            entity_id, path = metric.target_id, metric.path
            self._shipped[entity_id, path] = metric.state_class
            if path not in KNOWN:
                store.hint(entity_id, path, metric.kind)
            elif metric.state_class is not None:
                store.hint(entity_id, path, Kind.NUMBER)
            self.types[entity_id] = metric.entity_type
            self._enabled += metric.entry.disabled_by is None
        await self._live.metrics.discover(
            [(EntityType.OBJECT, i) for i in sorted(objects)]
            + [(EntityType.LINK, i) for i in sorted(links)]
        )
        if self._tasks:  # metadata of unknown metrics, asked for by the discovery
            await asyncio.wait(list(self._tasks), timeout=META_TIMEOUT)
        restored = [
            (entity_id, path)
            for entity_id, path in self._shipped
            if path not in self.specs.get(entity_id, {})
            and (entity_id in objects or entity_id in links)
        ]
        self._describe(restored)  # registered, SAYMON sent nothing now: keep the entity
        self._ready = True

    def add_listener(self, listener: MetricListener) -> Callable[[], None]:
        """Call ``listener`` with metric entities to create; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def in_scope(self) -> list[tuple[str, EntityType, MetricSpec]]:
        """Every metric entity of the objects and links in scope (the platforms' start)."""
        return [
            (entity_id, self.types[entity_id], spec)
            for entity_id, specs in self.specs.items()
            if self._in_scope(entity_id)
            for spec in specs.values()
        ]

    @callback
    def scope_grew(self, ids: Collection[str], entity_type: EntityType) -> None:
        """Objects or links joined the scope: read which metrics they have.

        A new object usually has no stat yet (its agent runs a period later): those are
        followed until their first stat tells which metrics they have (a few at most).
        """
        if self._ready:  # the first scope is read by async_setup
            self._spawn(self._discover_new(sorted(ids), entity_type))

    async def _discover_new(self, ids: list[str], entity_type: EntityType) -> None:
        await self._live.metrics.discover([(entity_type, i) for i in ids])
        self.subscriptions.probe([i for i in ids if i not in self.paths], entity_type)

    async def async_shutdown(self) -> None:
        """Cancel metadata reads, subscription updates and timers still running."""
        await self.subscriptions.async_shutdown()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the change stream -------------------------------------------------------------------

    @callback
    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Describe metrics seen for the first time (the platforms create their entities)."""
        new: list[tuple[str, str]] = []
        for change in changes:
            if isinstance(change, MetricsChanged) and change.added:
                self.types[change.entity_id] = change.entity_type
                new.extend((change.entity_id, path) for path in sorted(change.added))
                self.subscriptions.learned([change.entity_id])
        if new:
            self._describe(new)

    def _describe(self, metrics: Sequence[tuple[str, str]]) -> None:
        store = self._live.model.metrics
        created: list[tuple[str, EntityType, MetricSpec]] = []
        for entity_id, path in metrics:
            self._learn(entity_id, path)
            if path in self.specs.get(entity_id, {}):
                continue
            kind = store.kind(entity_id, path)
            shipped = self._shipped.get((entity_id, path))
            meta: MetricMeta | None = None
            if kind is Kind.NUMBER and shipped is None and path not in KNOWN:
                task_type = store.entities[entity_id].task_type or f"#{entity_id}"
                if task_type not in self._meta:
                    self._read_meta(task_type, entity_id, path)
                    continue
                metas = self._meta[task_type]
                if metas is None:  # still being read
                    self._waiting[task_type].append((entity_id, path))
                    continue
                meta = metas.get(path)
            spec = describe(path, kind, self.options, meta, shipped)
            if spec is None:
                continue
            if spec.enabled and (entity_id, path) not in self._shipped:
                if self._enabled >= MAX_ENABLED_ENTITIES:
                    self._over_budget()
                    spec = replace(spec, enabled=False)
                else:
                    self._enabled += 1
            spec = self._shared.setdefault(spec, spec)  # objects share their metrics' specs
            self.specs.setdefault(entity_id, {})[path] = spec
            if self._in_scope(entity_id):
                created.append((entity_id, self.types[entity_id], spec))
        if created:
            for listener in list(self._listeners):
                listener(created)

    def _learn(self, entity_id: str, path: str) -> None:
        known = self.paths.get(entity_id, ())
        if path not in known:
            self.paths[entity_id] = (*known, path)
            self.path_counts[path] += 1

    def count(self, options: MetricOptions) -> tuple[int, int]:
        """How many metric entities ``options`` create, and how many of them enabled."""
        created = enabled = 0
        for path, number in self.path_counts.items():
            created += number if options.creates(path) else 0
            enabled += number if options.enables(path) else 0
        return created, enabled

    def _read_meta(self, task_type: str, entity_id: str, path: str) -> None:
        self._meta[task_type] = None
        self._waiting[task_type] = [(entity_id, path)]
        self._spawn(self._fetch_meta(task_type, entity_id))

    async def _fetch_meta(self, task_type: str, entity_id: str) -> None:
        metas: dict[str, MetricMeta] = {}
        if self.types.get(entity_id) is EntityType.OBJECT:  # links have no metadata route
            try:
                metas = await stat.meta(self._live.rest, entity_id)
            except SaymonError as err:
                _LOGGER.debug("No metadata for SAYMON's %s metrics: %s", task_type, err)
        self._meta[task_type] = metas
        self._describe(self._waiting.pop(task_type, []))

    def _over_budget(self) -> None:
        self.disabled_by_budget += 1
        if self.disabled_by_budget == 1:
            _LOGGER.warning(
                "SAYMON entry has %d enabled entities; new metric entities are created disabled",
                MAX_ENABLED_ENTITIES,
            )

    def display_name(self, spec: MetricSpec) -> str:
        """The metric's name in Home Assistant's language (part of a link metric's name)."""
        return self.name_of(spec.path) if spec.known is not None else spec.fallback_name

    def name_of(self, path: str) -> str:
        """A metric's name in Home Assistant's language (known ones translated)."""
        known = KNOWN.get(path)
        if known is None:
            return readable_name(path)
        translations = async_get_cached_translations(
            self._hass, self._hass.config.language, "entity", DOMAIN
        )
        key = f"component.{DOMAIN}.entity.sensor.metric_{known.key}.name"
        return translations.get(key) or readable_name(path)

    def _in_scope(self, entity_id: str) -> bool:
        devices = self._devices
        return entity_id in devices.objects_in_scope or entity_id in devices.links_in_scope

    def _spawn(self, coro: Any) -> None:
        task = self._hass.async_create_background_task(coro, f"saymon-metrics-{self._entry_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def diagnostics(self) -> dict[str, Any]:
        """Sizes and counters (no ids or names)."""
        specs = [spec for specs in self.specs.values() for spec in specs.values()]
        return {
            "metric_entities": len(specs),
            "enabled_by_default": sum(spec.enabled for spec in specs),
            "unknown_metrics": sum(spec.known is None for spec in specs),
            "disabled_by_budget": self.disabled_by_budget,
            "metadata_read": sum(value is not None for value in self._meta.values()),
            **self._live.metrics.diagnostics(),
        }
