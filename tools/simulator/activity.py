"""Random but real model churn: bursts ("storms") for load tests and a slow tick for demos."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
import logging
import random
import time

from .core import SimulatorCore
from .events import EVENT_INCIDENTS, EVENT_STATE_CHANGE, Event

_LOGGER = logging.getLogger(__name__)
DEFAULT_STORM_KINDS: tuple[str, ...] = (EVENT_STATE_CHANGE, EVENT_INCIDENTS)
# Yield to the loop this often during an unthrottled storm so sockets keep flowing.
_YIELD_EVERY = 50


@dataclass(slots=True)
class StormResult:
    """What a storm did: model changes made, events emitted (of the chosen kinds), time taken."""

    changes: int
    emitted: int
    elapsed: float
    by_event: dict[str, int] = field(default_factory=dict)


async def run_storm(
    core: SimulatorCore,
    rng: random.Random,
    count: int,
    rate_per_s: float | None = None,
    kinds: Collection[str] = DEFAULT_STORM_KINDS,
) -> StormResult:
    """Make `count` random state changes, paced at `rate_per_s` (None: as fast as possible)."""
    by_event: Counter[str] = Counter()
    started = time.monotonic()
    emitted = 0
    for index in range(count):
        if rate_per_s:
            delay = started + index / rate_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        elif index % _YIELD_EVERY == _YIELD_EVERY - 1:
            await asyncio.sleep(0)
        events = [event for event in core.model.random_state_change(rng) if event.name in kinds]
        by_event.update(event.name for event in events)
        emitted += await core.publish(events)
    return StormResult(count, emitted, time.monotonic() - started, dict(by_event))


def _log_changes(core: SimulatorCore, events: list[Event]) -> None:
    """Log a one-line summary per change so a demo console shows what is happening."""
    for event in events:
        payload = event.payload
        if event.name == EVENT_STATE_CHANGE:
            obj = core.model.objects.get(payload["id"])
            state = core.model.states.get(payload["state_id"], {}).get("name", payload["state_id"])
            _LOGGER.info("tick: %s -> %s", obj.name if obj else payload["id"], state)
        elif event.name == EVENT_INCIDENTS:
            verb = {1: "opened", 2: "modified", 3: "cleared"}.get(payload["changeType"], "?")
            _LOGGER.info("tick:   incident %s %s", payload["payload"]["id"], verb)


async def tick_forever(core: SimulatorCore, rng: random.Random, interval: float) -> None:
    """Every `interval` seconds change one to three random objects and send one stat."""
    model = core.model
    while True:
        await asyncio.sleep(interval)
        for _ in range(rng.randint(1, 3)):
            events = model.random_state_change(rng)
            _log_changes(core, events)
            await core.publish(events)
        candidates = [oid for oid in model.objects if oid != model.root_id]
        if candidates:
            await core.emit_stat(rng.choice(candidates))
