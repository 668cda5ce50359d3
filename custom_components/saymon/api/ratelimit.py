"""Storm protection for server events: a rate limit per object and kind, before parsing.

A trap or MQTT storm (a flapping interface, a chatty sensor, a whole network going down) must
not starve state updates nor write thousands of event entity states and logbook rows a second
into the recorder. Each object and kind (``snmp-trap``, ``mqtt``, ``client-notification``, jobs,
``bulk-finished``) has a token bucket: up to :data:`BURST` events at once, then
:data:`PER_SECOND` a second; each kind as a whole has one too (:data:`TOTAL_BURST`,
:data:`TOTAL_PER_SECOND`), so a storm over many objects is bounded as well. What exceeds them is
dropped before anything else happens to it and counted; the first drop of each kind is logged
once.

The check runs as the event arrives, before it is queued and parsed
(:meth:`ServerEventGate.admit_raw`, called by the Comet client's read loop): the object id is
read straight from the documented places, so a dropped trap costs a few microseconds instead of
a parse (about 40), and never fills the event queue in front of state changes. An event whose
object cannot be found that way (a payload sent as JSON text, an unknown shape) is parsed first
and checked then (:meth:`ServerEventGate.admit_parsed`); each event is checked exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
import logging
import time
from typing import Any, Final

from ._fields import MAX_ID_LENGTH
from .events import CometEvent
from .server_events import (
    SERVER_EVENT_TYPES,
    TOPIC_BULK_FINISHED,
    TOPIC_CLIENT_NOTIFICATION,
    TOPIC_JOB_ADDED,
    TOPIC_JOB_RESULT,
    TOPIC_MQTT,
    TOPIC_SNMP_TRAP,
    JobEvent,
    ServerEvent,
)

_LOGGER = logging.getLogger(__name__)

BURST: Final = 20
"""Events of one object and kind let through at once."""
PER_SECOND: Final = 2.0
"""Events of one object and kind let through per second once the burst is used up."""
TOTAL_BURST: Final = 50
"""Events of one kind, over all objects, let through at once."""
TOTAL_PER_SECOND: Final = 20.0
"""Events of one kind, over all objects, let through per second once that burst is used up."""
MAX_BUCKETS: Final = 10_000
"""Buckets kept; beyond, full ones (objects quiet for a while) are forgotten."""

JOBS: Final = "jobs"
KIND_OF_TOPIC: Final = {
    TOPIC_SNMP_TRAP: TOPIC_SNMP_TRAP,
    TOPIC_MQTT: TOPIC_MQTT,
    TOPIC_CLIENT_NOTIFICATION: TOPIC_CLIENT_NOTIFICATION,
    TOPIC_JOB_ADDED: JOBS,
    TOPIC_JOB_RESULT: JOBS,
    TOPIC_BULK_FINISHED: TOPIC_BULK_FINISHED,
}
"""The bucket kind of each server topic (a job's start and result share one)."""


class EventRateLimit:
    """Token buckets per (kind, object)."""

    def __init__(
        self,
        burst: int = BURST,
        per_second: float = PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        total_burst: int = TOTAL_BURST,
        total_per_second: float = TOTAL_PER_SECOND,
    ) -> None:
        """Every bucket starts full."""
        self.burst = burst
        self.per_second = per_second
        self.total_burst = total_burst
        self.total_per_second = total_per_second
        self._clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._totals: dict[str, list[float]] = {}
        self.dropped: Counter[str] = Counter()
        """Events dropped, by kind."""
        self.limited: set[tuple[str, str]] = set()
        """(kind, object) pairs that had events dropped (counted, ids not shown)."""

    def admit(self, kind: str, key: str) -> bool:
        """Whether one more event of ``kind`` about object ``key`` may pass now."""
        now = self._clock()
        bucket = self._buckets.get((kind, key))
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[(kind, key)] = [float(self.burst), now]
        total = self._totals.get(kind)
        if total is None:
            total = self._totals[kind] = [float(self.total_burst), now]
        if _take(bucket, now, self.burst, self.per_second) and _take(
            total, now, self.total_burst, self.total_per_second
        ):
            return True
        self.dropped[kind] += 1
        if (kind, key) not in self.limited and len(self.limited) < MAX_BUCKETS:
            self.limited.add((kind, key))
        if self.dropped[kind] == 1:
            _LOGGER.warning(
                "SAYMON sends more %r events than the integration passes on (%d at once and %g "
                "a second per object, %d and %g in all); the rest are dropped and counted in "
                "the diagnostics",
                kind,
                self.burst,
                self.per_second,
                self.total_burst,
                self.total_per_second,
            )
        return False

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (nothing to remember about them)."""
        refill = self.burst / self.per_second
        for key in [k for k, (_, last) in self._buckets.items() if now - last >= refill]:
            del self._buckets[key]
        if len(self._buckets) >= MAX_BUCKETS:  # all busy: a hostile flood of fresh ids
            self._buckets.clear()

    def diagnostics(self) -> dict[str, Any]:
        """The limit and what it dropped (no ids)."""
        return {
            "burst": self.burst,
            "per_second": self.per_second,
            "total_burst": self.total_burst,
            "total_per_second": self.total_per_second,
            "dropped": dict(self.dropped),
            "objects_limited": len(self.limited),
        }


def _take(bucket: list[float], now: float, burst: int, per_second: float) -> bool:
    """Refill ``bucket`` ([tokens, last time]) to ``now`` and take one token if there is one."""
    tokens = min(float(burst), bucket[0] + (now - bucket[1]) * per_second)
    bucket[1] = now
    if tokens >= 1.0:
        bucket[0] = tokens - 1.0
        return True
    bucket[0] = tokens
    return False


def _entity_id(value: Any) -> str | None:
    """``entityId`` of an entity reference, or of the first of a list of them."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, Mapping):
        value = value.get("entityId", value.get("id"))
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH else None


def peek_key(topic: str, args: tuple[Any, ...]) -> str | None:
    """The object a raw server event is about, read from where SAYMON documents it.

    ``None`` when it is not there (the event is parsed and checked afterwards); ``""`` for an
    event that belongs to no object (a bulk).
    """
    if len(args) != 1:
        return None
    data = args[0]
    if topic == TOPIC_BULK_FINISHED:
        return ""
    if not isinstance(data, Mapping):
        return None
    if topic in (TOPIC_SNMP_TRAP, TOPIC_MQTT):
        return _entity_id(data.get("entity"))
    if topic == TOPIC_CLIENT_NOTIFICATION:
        return _entity_id(data)
    owner = data.get("owner_id")
    return owner if isinstance(owner, str) and 0 < len(owner) <= MAX_ID_LENGTH else None


def key_of(event: ServerEvent) -> str:
    """The object a parsed server event is about (the first one; ``""``: none)."""
    entities = event.entities
    return entities[0].entity_id if entities else ""


class ServerEventGate:
    """The rate limit of one live session, applied once per event, before parsing if it can."""

    def __init__(self, limit: EventRateLimit | None = None) -> None:
        """Use ``limit`` (the default: :data:`BURST` and :data:`PER_SECOND`)."""
        self.limit = limit or EventRateLimit()

    def admit_raw(self, topic: str, args: tuple[Any, ...]) -> bool | None:
        """As the event arrives: pass, drop, or ``None`` (its object is not where documented)."""
        kind = KIND_OF_TOPIC.get(topic)
        if kind is None:
            return True
        key = peek_key(topic, args)
        return None if key is None else self.limit.admit(kind, key)

    def admit_parsed(self, event: CometEvent) -> bool:
        """A parsed event :meth:`admit_raw` could not decide: whether to deliver it."""
        if not isinstance(event, SERVER_EVENT_TYPES):
            return True
        topic = TOPIC_JOB_RESULT if isinstance(event, JobEvent) else event.TOPIC
        return self.limit.admit(KIND_OF_TOPIC[topic], key_of(event))

    def diagnostics(self) -> dict[str, Any]:
        """See :meth:`EventRateLimit.diagnostics`."""
        return self.limit.diagnostics()
