"""Following the metrics of chosen objects and links: subscriptions, initial values, expiry.

SAYMON sends ``stat`` only for what a client subscribed to, one ``add-filtered-topic`` per object
or link. :class:`MetricFollower` (owned by :class:`~.live.SaymonLive`) keeps exactly the set its
owner asks for subscribed (the Comet client re-sends every subscription after a reconnect by
itself), reads their current stats in bulk with ``POST /stat/search`` when they are added and
after every resync (so a gap while Comet was away is filled at once, not a period later), applies
what Comet sends for them, and marks metrics expired when their window passes without a value.
Everything becomes :class:`~.metrics.MetricsChanged` in the live session's one change stream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import logging
import time
from typing import Any, Final

from . import stat
from .comet import CometClient, Subscription
from .errors import SaymonError
from .events import StatEvent
from .metrics import MetricsChanged, MetricStore
from .models import EntityType
from .rest import SaymonRestClient

_LOGGER = logging.getLogger(__name__)

MIN_SWEEP: Final = 1.0
"""Seconds between two expiry sweeps at least (each looks at every followed entity once)."""

type _Cancel = Callable[[], None]
type _Scheduler = Callable[[float, Callable[[], None]], _Cancel]
type _Report = Callable[[Sequence[MetricsChanged], bool], None]


def _now_ms() -> float:
    return time.time() * 1000


@dataclass(slots=True)
class FollowStats:
    """Counters for diagnostics."""

    events: int = 0
    ignored: int = 0
    """Stat events for objects or links no longer followed (in flight while unsubscribing)."""
    searched: int = 0
    """Stats read over REST (``stat/search``)."""
    search_failures: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    """Values skipped while reading payloads, by :class:`~.stat.Problem`."""


class MetricFollower:
    """Keeps the metrics of the followed objects and links subscribed, current and fresh."""

    def __init__(
        self,
        comet: CometClient,
        rest: SaymonRestClient,
        *,
        store: Callable[[], MetricStore],
        report: _Report,
        schedule: _Scheduler,
        clock: Callable[[], float] = _now_ms,
    ) -> None:
        """Follow nothing until :meth:`follow` is called.

        ``store``: where the metrics live (the live model's); ``report``: the live session's
        change stream (never ``replayed``: metrics read over REST are current values, not
        events missed); ``schedule``: the owner's timers.
        """
        self._comet = comet
        self._rest = rest
        self._store = store
        self._report = report
        self._schedule = schedule
        self._clock = clock
        self.followed: dict[str, EntityType] = {}
        self.stats = FollowStats()
        self._sweep: _Cancel | None = None
        self._sweep_at: float | None = None

    async def follow(self, entities: Mapping[str, EntityType]) -> None:
        """Follow exactly ``entities`` (id → type) from now on.

        Those no longer wanted are unsubscribed and forgotten; new ones are subscribed, then
        their current stats read (unless :meth:`discover` just did), so their metrics show
        values at once. The resync after every (re)connect reads them all again.
        """
        wanted = dict(entities)
        old, self.followed = self.followed, wanted
        forgotten = self._store().retain(wanted)
        if forgotten:
            self._report(forgotten, False)
        for entity_id, entity_type in old.items():
            if wanted.get(entity_id) is not entity_type:
                await self._comet.unsubscribe(Subscription.stat(entity_type, entity_id))
        added = [(t, i) for i, t in wanted.items() if old.get(i) is not t]
        for entity_type, entity_id in added:
            await self._comet.subscribe(Subscription.stat(entity_type, entity_id))
        entries = self._store().entities
        unread = [(t, i) for t, i in added if i not in entries or entries[i].timestamp is None]
        known = [
            MetricsChanged(i, t, entries[i].timestamp, changed=frozenset(entries[i].values))
            for t, i in added
            if i in entries and entries[i].values
        ]
        if known:  # read by discover() before: followed from now on, with these values
            self._report(known, False)
        if unread:
            await self._search(unread)

    async def discover(self, entities: Sequence[tuple[EntityType, str]]) -> None:
        """Read the current stats of ``entities`` (followed or not): which metrics they have.

        Their metrics are reported (``added`` names the ones never seen); the store forgets
        the values of those not followed at the next :meth:`follow`.
        """
        await self._search(entities)

    async def refresh(self) -> None:
        """Read every followed stat again (after a resync: what Comet could not deliver)."""
        if self.followed:
            await self._search([(t, i) for i, t in self.followed.items()])

    def on_event(self, event: StatEvent) -> None:
        """Apply one Comet ``stat`` event of a followed object or link."""
        if event.entity_id not in self.followed:
            self.stats.ignored += 1
            return
        self.stats.events += 1
        record = stat.record_from_event(event, self.stats.problems)
        store = self._store()
        change = store.apply(record, self._clock(), live=True)
        if change is not None:
            self._report([change], False)
        self._watch_expiry(store.entities[record.entity_id].deadline)

    def stop(self) -> None:
        """Cancel the expiry timer."""
        if self._sweep is not None:
            self._sweep()
        self._sweep = self._sweep_at = None

    # -- internals --------------------------------------------------------------------------

    async def _search(self, entities: Sequence[tuple[EntityType, str]]) -> None:
        try:
            records = await stat.search(self._rest, entities, problems=self.stats.problems)
        except SaymonError as err:
            self.stats.search_failures += 1
            _LOGGER.debug("Cannot read SAYMON's current metrics: %s", err)
            return
        self.stats.searched += len(records)
        store, now = self._store(), self._clock()
        changes = [
            change
            for record in records
            if (change := store.apply(record, now, live=False)) is not None
        ]
        if changes:
            self._report(changes, False)
        self._watch_expiry(store.next_deadline())

    def _watch_expiry(self, deadline: float | None) -> None:
        """Make sure a sweep runs by ``deadline`` (when a metric expires), about.

        A sweep already due no more than :data:`MIN_SWEEP` after it is kept: rescheduling on
        every event would cost more than a sweep.
        """
        if deadline is None:
            return
        if self._sweep is not None:
            if self._sweep_at is not None and deadline >= self._sweep_at - MIN_SWEEP * 1000:
                return
            self._sweep()
        self._sweep_in(deadline)

    def _sweep_in(self, deadline: float) -> None:
        delay = max(MIN_SWEEP, (deadline - self._clock()) / 1000)
        self._sweep_at = deadline
        self._sweep = self._schedule(delay, self._run_sweep)

    def _run_sweep(self) -> None:
        self._sweep = self._sweep_at = None
        store = self._store()
        changes = store.expire(self._clock())
        if changes:
            self._report(changes, False)
        deadline = store.next_deadline()
        if deadline is not None:
            self._sweep_in(deadline)

    def diagnostics(self) -> dict[str, Any]:
        """Counters and sizes (no ids)."""
        store = self._store()
        return {
            "followed": len(self.followed),
            "followed_links": sum(t is EntityType.LINK for t in self.followed.values()),
            "metric_values": store.size,
            "events": self.stats.events,
            "ignored_events": self.stats.ignored,
            "searched": self.stats.searched,
            "search_failures": self.stats.search_failures,
            "payload_problems": dict(self.stats.problems),
            "rejected_values": dict(store.rejected),
        }
