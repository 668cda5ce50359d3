"""Storm protection for server events: a rate limit per object and kind, with what it dropped.

A trap or MQTT storm (a flapping interface, a chatty sensor) must not starve state updates nor
write thousands of event entity states and logbook rows a second into the recorder. Each object
(and each kind: traps, MQTT messages, notifications, jobs) has a token bucket: up to
:data:`BURST` events at once, then :data:`PER_SECOND` a second. What exceeds it is dropped
before any consumer sees it (bus events, event entities, logbook, MQTT mirror alike) and
counted; the first drop of each kind is logged once. Checking costs a dictionary lookup, so the
rest of a storm is cheap to throw away.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import logging
import time
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

BURST: Final = 20
"""Events of one object and kind let through at once."""
PER_SECOND: Final = 2.0
"""Events of one object and kind let through per second once the burst is used up."""
MAX_BUCKETS: Final = 10_000
"""Buckets kept; beyond, full ones (objects quiet for a while) are forgotten."""


class EventRateLimit:
    """Token buckets per (kind, object)."""

    def __init__(
        self,
        burst: int = BURST,
        per_second: float = PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Every bucket starts full."""
        self.burst = burst
        self.per_second = per_second
        self._clock = clock
        self._buckets: dict[tuple[str, str], list[float]] = {}
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
            self._buckets[(kind, key)] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.per_second)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        self.dropped[kind] += 1
        if (kind, key) not in self.limited:
            if len(self.limited) < MAX_BUCKETS:
                self.limited.add((kind, key))
            if self.dropped[kind] == 1:
                _LOGGER.warning(
                    "SAYMON sends more %s than %d at once and %g a second for one object; the "
                    "rest are dropped and counted in the diagnostics",
                    kind.replace("_", " "),
                    self.burst,
                    self.per_second,
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
            "dropped": dict(self.dropped),
            "objects_limited": len(self.limited),
        }
