"""The mirror's stat topics: each followed object's (and link's) latest metrics, retained.

``<base>/objects/<id>/stat`` (``links/<id>/stat`` for links) holds the latest metrics of every
object or link whose metrics Home Assistant follows (those with an enabled metric entity): all
its metric values, the time of the newest stat, and which metrics have expired. It consumes the
hub's change stream next to the mirror's other topics and is flushed by the same coalescer, so
in a storm each object's stat topic is written once per interval with its latest values; after
every broker (re)connect it is published again; an object's deletion, or its metrics no longer
being followed, clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from homeassistant.core import callback

from ..api.events import ModelChange
from ..api.metrics import MetricsChanged
from ..api.model import Change, ModelChanged
from ..api.models import EntityType
from ..coalesce import STORM_BACKLOG
from . import payloads
from .topics import Topics
from .transport import Transport

if TYPE_CHECKING:
    from ..hub import SaymonHub

RETAINED_QOS = 1


class StatTopics:
    """Publishes the latest metrics per followed object or link on a retained topic."""

    def __init__(self, hub: SaymonHub, topics: Topics, transport: Transport, retain: bool) -> None:
        """Nothing is published before :meth:`start`."""
        self._hub = hub
        self._topics = topics
        self._transport = transport
        self._retain = retain
        self._dirty: dict[str, EntityType] = {}
        self._published: set[str] = set()
        """Objects and links whose stat topic holds a retained message."""
        self.published = 0

    def start(self) -> list[Callable[[], None]]:
        """Follow the change stream and flush with the hub's coalescer; returns the undo."""
        hub = self._hub
        return [
            hub.add_listener(self.on_changes),
            hub.coalescer.add(self.flush, lambda: self._transport.backlog >= STORM_BACKLOG),
        ]

    def topic(self, entity_id: str, entity_type: EntityType) -> str:
        """The stat topic of an object or link."""
        if entity_type is EntityType.LINK:
            return self._topics.link_stat(entity_id)
        return self._topics.object_stat(entity_id)

    @callback
    def republish(self) -> None:
        """The broker (re)connected: every followed stat again, at the next flush."""
        self._dirty.update(self._hub.live.metrics.followed)
        self._hub.coalescer.request()

    @callback
    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Mark the stat topics that changed; clear those of deleted objects and links."""
        for change in changes:
            if isinstance(change, MetricsChanged) and not change.forgotten:
                self._dirty[change.entity_id] = change.entity_type
            elif isinstance(change, MetricsChanged) or (
                isinstance(change, ModelChanged) and change.change is ModelChange.REMOVED
            ):  # no longer followed, or deleted: an empty retained message clears the topic
                self._dirty.pop(change.entity_id, None)
                if change.entity_id in self._published:
                    self._published.discard(change.entity_id)
                    self._transport.publish(
                        self.topic(change.entity_id, change.entity_type), b"", RETAINED_QOS, True
                    )
        if self._dirty:
            self._hub.coalescer.request()

    def flush(self) -> None:
        """Publish every marked stat topic; what a full queue refused stays marked."""
        dirty, self._dirty = self._dirty, {}
        model = self._hub.model
        store = model.metrics
        followed = self._hub.live.metrics.followed
        for entity_id, entity_type in dirty.items():
            entry = store.entities.get(entity_id)
            if entry is None or not entry.values or entity_id not in followed:
                continue  # discovered at setup, not followed: no topic
            payload = payloads.stat(
                entity_id,
                entity_type.name.lower(),
                model.entity_name(entity_type, entity_id),
                timestamp=entry.timestamp,
                task_type=entry.task_type,
                metrics=entry.values,
                expired=sorted(entry.expired),
            )
            topic = self.topic(entity_id, entity_type)
            if self._transport.publish(topic, payload, RETAINED_QOS, self._retain):
                self.published += 1
                self._published.add(entity_id)
            elif self._transport.full:
                self._dirty[entity_id] = entity_type
        if self._dirty:
            self._hub.coalescer.request()
