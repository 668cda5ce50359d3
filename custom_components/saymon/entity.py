"""The one base of every SAYMON entity: what it describes, its device, ids and update signal.

An entity describes the server, one object or one link (:class:`Subject`, set by its
description). From that follow its unique id (SAYMON ids only), its device (the server's, or
the object's; links hang on the server device), the dispatcher signal that tells it to write its
state, and when it is available. Platforms declare their entities as tables of descriptions
whose ``*_fn`` fields read a :class:`ServerView` or :class:`EntityView`: the thing described,
not the hub.

Entities never poll: the hub's change stream marks the signals of what changed (coalesced, see
:mod:`.hub.signals`), and one broadcast goes out when availability flips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from homeassistant.core import callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.model import SaymonModel
from .api.models import EntityType
from .hub import SaymonHub
from .hub.metric_registry import METRIC_PREFIX
from .metric_catalog import MetricSpec
from .runtime import SaymonConfigEntry
from .states import state_key


class Subject(StrEnum):
    """What an entity describes (the middle part of a tracked entity's unique id)."""

    SERVER = "server"
    OBJECT = "object"
    LINK = "link"


@dataclass(frozen=True, kw_only=True)
class SaymonEntityDescription(EntityDescription):
    """What every SAYMON description says beyond Home Assistant's own fields."""

    subject: Subject = Subject.SERVER
    on_problem: bool = False
    """Written when the object's incidents change, not when its state does."""
    always_available: bool = False
    """Reports the link itself, so it stays available while the link is down."""
    placeholders: Mapping[str, str] | None = None
    """Translation placeholders of the name (e.g. an incident level's SAYMON name)."""
    on_metrics: bool = False
    """Written when the object's (or link's) metrics change; while added, its metrics are
    followed (see :mod:`.hub.metrics`)."""


@dataclass(frozen=True, slots=True)
class ServerView:
    """The SAYMON server, as server entities read it."""

    model: SaymonModel
    connected: bool


@dataclass(frozen=True, slots=True)
class EntityView:
    """One SAYMON object or link, as its entities read it."""

    model: SaymonModel
    entity_id: str

    @property
    def state_key(self) -> str | None:
        """Its state as the state sensor shows it (translated built-ins, custom names)."""
        return state_key(self.model, self.model.state_of(self.entity_id))

    @property
    def problem(self) -> bool:
        """Whether it has an open incident."""
        return self.model.has_incident(self.entity_id)


class SaymonEntity(Entity):
    """An entity of one SAYMON server: the server's, an object's or a link's."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: SaymonEntityDescription
    _metric_shown: tuple[bool, object] | None = None
    """What a metric entity last showed (freshness and value), see ``on_metrics``."""

    def __init__(
        self, hub: SaymonHub, description: SaymonEntityDescription, target_id: str | None = None
    ) -> None:
        """Name the entity from its description; ids come from SAYMON ids only."""
        self.hub = hub
        self.entity_description = description
        self.target_id = target_id
        subject = description.subject
        if subject is Subject.SERVER or target_id is None:
            self._attr_unique_id = f"{hub.server_key}|{description.key}"
            self._attr_device_info = hub.devices.device_info(hub.server_identifier)
        else:
            self._attr_unique_id = f"{hub.server_key}|{subject}|{target_id}|{description.key}"
            identifier = (
                hub.object_identifier(target_id)
                if subject is Subject.OBJECT
                else hub.server_identifier
            )
            self._attr_device_info = hub.devices.device_info(identifier)
        placeholders = dict(description.placeholders or {})
        if subject is Subject.LINK and target_id is not None:  # the name says which link
            placeholders["link"] = hub.model.entity_name(EntityType.LINK, target_id) or target_id
        if placeholders:
            self._attr_translation_placeholders = placeholders

    @property
    def update_signal(self) -> str:
        """The dispatcher signal that tells this entity to write its state."""
        signals = self.hub.signals
        if self.target_id is None:
            return signals.server
        if self.entity_description.on_problem:
            return signals.problem(self.target_id)
        if self.entity_description.on_metrics:
            return signals.metrics(self.target_id)
        return signals.entity(self.target_id)

    @property
    def server(self) -> ServerView:
        """The server, for server descriptions' ``*_fn``."""
        return ServerView(self.hub.model, self.hub.connected)

    @property
    def view(self) -> EntityView:
        """The object or link, for their descriptions' ``*_fn``."""
        assert self.target_id is not None  # noqa: S101 - only tracked entities ask
        return EntityView(self.hub.model, self.target_id)

    @property
    def available(self) -> bool:
        """Whether the entity can be trusted now.

        Unavailable once the link was down longer than the grace period, or once the object or
        link left SAYMON.
        """
        if self.entity_description.always_available:
            return True
        if not self.hub.available:
            return False
        if self.target_id is None:
            return True
        model = self.hub.model
        collection = (
            model.links if self.entity_description.subject is Subject.LINK else (model.objects)
        )
        return self.target_id in collection

    async def async_added_to_hass(self) -> None:
        """Listen for this entity's updates, availability changes and SAYMON's deletion."""
        await super().async_added_to_hass()
        signals = self.hub.signals
        # dict.fromkeys: the event entity's update signal *is* the availability signal, and
        # connecting one method twice to one signal makes the second removal warn.
        for signal in dict.fromkeys((self.update_signal, signals.availability)):
            self.async_on_remove(
                async_dispatcher_connect(
                    self.hass,
                    signal,
                    self._async_write_if_changed
                    if self.entity_description.on_metrics and signal == self.update_signal
                    else self.async_write_ha_state,
                )
            )
        if self.target_id is not None:
            self.async_on_remove(
                async_dispatcher_connect(
                    self.hass, signals.removed(self.target_id), self._async_deleted
                )
            )
            if self.entity_description.on_metrics:
                link = self.entity_description.subject is Subject.LINK
                self.hub.metrics.subscriptions.attach(
                    self.target_id, EntityType.LINK if link else EntityType.OBJECT
                )

    async def async_will_remove_from_hass(self) -> None:
        """A metric entity that goes no longer needs its object's metrics followed."""
        await super().async_will_remove_from_hass()
        if self.entity_description.on_metrics and self.target_id is not None:
            self.hub.metrics.subscriptions.detach(self.target_id)

    @callback
    def _async_write_if_changed(self) -> None:
        """Write a metric entity only when what it shows changed.

        One signal wakes every metric entity of an object for each of its stats, and most
        stats change a few metrics only (packets sent, exit codes, totals stay the same).
        """
        store = self.hub.model.metrics
        path = self.entity_description.key.removeprefix(METRIC_PREFIX)
        target = self.target_id or ""
        shown = (store.fresh(target, path), store.value(target, path))
        if shown != self._metric_shown:
            self._metric_shown = shown
            self.async_write_ha_state()

    async def _async_deleted(self) -> None:
        """Remove this entity from the entity registry (and so from Home Assistant)."""
        registry = er.async_get(self.hass)
        if registry.async_get(self.entity_id) is not None:
            registry.async_remove(self.entity_id)  # Home Assistant then removes the entity
        else:  # not registered, or its device already took it along
            await self.async_remove(force_remove=True)


def async_track_scope(
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    objects: Callable[[Iterable[str]], Iterable[Entity]],
    links: Callable[[Iterable[str]], Iterable[Entity]] | None = None,
) -> None:
    """Add entities for what is in scope now, and for objects/links that join it later."""
    hub = entry.runtime_data.hub
    async_add_entities(objects(hub.ordered_objects()))
    entry.async_on_unload(
        hub.add_object_listener(lambda ids: async_add_entities(objects(sorted(ids))))
    )
    if links is not None:
        async_add_entities(links(sorted(hub.links_in_scope)))
        entry.async_on_unload(
            hub.add_link_listener(lambda ids: async_add_entities(links(sorted(ids))))
        )


def async_track_metrics(
    entry: SaymonConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    binary: bool,
    make: Callable[[str, MetricSpec, str | None], Entity],
) -> None:
    """Add the metric entities of one platform now, and those of metrics found later.

    ``make(target, spec, link_metric)``: ``link_metric`` is the metric's display name for a
    link's entity (named after the link too), ``None`` for an object's.
    """
    hub = entry.runtime_data.hub
    metrics = hub.metrics

    def add(items: Iterable[tuple[str, EntityType, MetricSpec]]) -> None:
        entities = [
            make(target, spec, metrics.display_name(spec) if kind is EntityType.LINK else None)
            for target, kind, spec in items
            if spec.binary is binary
        ]
        if entities:
            async_add_entities(entities)

    add(hub.metrics.in_scope())
    entry.async_on_unload(hub.metrics.add_listener(add))
