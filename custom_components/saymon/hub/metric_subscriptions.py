"""Whose ``stat`` is followed: the objects and links with an enabled metric entity.

SAYMON sends ``stat`` per object (``add-filtered-topic``), so only what is used is subscribed. An
enabled metric entity *attaches* its object or link when Home Assistant adds it and detaches it
when it goes (disabled by the user, removed, the entry unloading); the set of attached objects
and links, and of new ones in scope still waiting for their first stat (*probing*, so their
metrics can be learned), is what the live session follows. Enabling, disabling and scope
changes so take effect without any registry bookkeeping. Updates are batched: adding a thousand
entities changes the subscriptions once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from ..api.live import SaymonLive
from ..api.models import EntityType

MAX_PROBING: Final = 100
"""New objects followed at most while waiting for their first stat."""
PROBING_SECONDS: Final = 900.0
"""How long a new object is followed for its first stat (an agent's period is minutes)."""


class MetricSubscriptions:
    """The objects and links whose metrics the live session follows."""

    def __init__(self, hass: HomeAssistant, entry_id: str, live: SaymonLive) -> None:
        """Follow nothing until entities attach."""
        self._hass = hass
        self._entry_id = entry_id
        self._live = live
        self._attached: Counter[str] = Counter()
        self._types: dict[str, EntityType] = {}
        self._probing: dict[str, EntityType] = {}
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._timers: dict[int, Callable[[], None]] = {}
        self._closed = False

    @property
    def followed(self) -> Mapping[str, EntityType]:
        """What the live session is asked to follow (id → type)."""
        attached = {entity_id: self._types[entity_id] for entity_id in self._attached}
        return {**self._probing, **attached}

    @callback
    def attach(self, entity_id: str, entity_type: EntityType) -> None:
        """An enabled metric entity was added: follow its object's or link's metrics."""
        self._types[entity_id] = entity_type
        self._attached[entity_id] += 1
        if self._attached[entity_id] == 1:
            self._update_soon()

    @callback
    def detach(self, entity_id: str) -> None:
        """A metric entity went: follow less when it was the object's last one."""
        self._attached[entity_id] -= 1
        if self._attached[entity_id] <= 0:
            del self._attached[entity_id]
            self._update_soon()

    def probe(self, ids: Sequence[str], entity_type: EntityType) -> None:
        """Follow new objects without a stat until their first one (a few, for a while)."""
        if self._closed:  # objects entering the scope while the entry unloads
            return
        ids = [i for i in ids if i not in self._probing][: MAX_PROBING - len(self._probing)]
        if not ids:
            return
        self._probing.update(dict.fromkeys(ids, entity_type))
        self._update_soon()
        key = id(ids)

        @callback
        def expired(_now: object) -> None:
            self._timers.pop(key, None)
            self.learned(ids)

        self._timers[key] = async_call_later(self._hass, PROBING_SECONDS, expired)

    @callback
    def learned(self, ids: Sequence[str]) -> None:
        """Their metrics are known (or they sent nothing for long): their entities decide now."""
        if any(self._probing.pop(entity_id, None) is not None for entity_id in ids):
            self._update_soon()

    async def async_shutdown(self) -> None:
        """Cancel the timers and a subscription update still running; probe no more."""
        self._closed = True
        for cancel in self._timers.values():
            cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _update_soon(self) -> None:
        """Update the subscriptions once the current batch of entities is added or removed."""
        if self._task is not None:
            self._again = True
            return
        self._task = self._hass.async_create_background_task(
            self._update(), f"saymon-metrics-follow-{self._entry_id}"
        )

    async def _update(self) -> None:
        try:
            while True:
                await asyncio.sleep(0)  # let the batch of entities finish
                self._again = False
                await self._live.metrics.follow(self.followed)
                if not self._again:
                    return
        finally:
            self._task = None
