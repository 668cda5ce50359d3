"""Measurement 5: start-up and resync; measurement 6: process memory growth per object.

Fresh process per size. Start-up: from ``async_setup`` of the entry until every entity of the
entry is in the state machine and available (scope: all objects). Also reported: until Comet
is connected and the first resync is done. Resync: Comet goes away, 20 objects change state
in SAYMON meanwhile, Comet comes back; the resync after the reconnect is timed, and the bus
events it fires are compared with what changed (each change exactly once, nothing else).
Memory: the process's resident set grows by this much per object in scope, from before the
entry was added until it is set up and settled (includes devices, entities, registries).
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.saymon import binary_sensor, event, sensor  # noqa: F401 - imported now
from custom_components.saymon.const import EVENT_INCIDENT, EVENT_STATE_CHANGED
from tools.simulator import EVENT_INCIDENTS, EVENT_STATE_CHANGE, SaymonSimulator

from .env import add_entry, home_assistant, rss_bytes, wait_until
from .report import Figure

SETUP_TARGETS = {2000: 5.0, 10_000: 10.0}
RESYNC_TARGET = 1.0
RESYNC_TARGET_OBJECTS = 10_000
CHANGES_DURING_OUTAGE = 20


def _all_available(hass: HomeAssistant, entry_id: str) -> bool:
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, entry_id)
    if not entries:
        return False
    for item in entries:
        if item.disabled_by is not None:
            continue
        state = hass.states.get(item.entity_id)
        if state is None or state.state == STATE_UNAVAILABLE:
            return False
    return True


async def run(params: dict[str, Any]) -> list[Figure]:
    """One size; ``params``: objects, scale."""
    objects = int(params.get("objects", 2000))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(number: str, name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure(number, name, value, unit, scale=scale, **kw))

    async with SaymonSimulator(objects=objects) as sim, home_assistant() as hass:
        gc.collect()
        rss0 = rss_bytes()
        entry = await add_entry(hass, sim)
        started = time.monotonic()
        setup = asyncio.create_task(hass.config_entries.async_setup(entry.entry_id))
        available = await wait_until(
            lambda: setup.done() and _all_available(hass, entry.entry_id),
            120,
            "every entity available",
            interval=0.02,
        )
        available_s = time.monotonic() - started
        await setup
        hub = entry.runtime_data.hub
        await wait_until(lambda: hub.connected and hub.resyncs >= 1, 120, "first resync")
        settled_s = time.monotonic() - started
        await hass.async_block_till_done()
        gc.collect()
        rss1 = rss_bytes()
        in_scope = len(hub.objects_in_scope)
        entities = len(er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id))
        target = SETUP_TARGETS.get(objects)
        fig(
            "5",
            f"entry setup → every entity available, {objects:,} objects (scope all)",
            available_s if available else None,
            "s",
            op="le" if target else "info",
            limit=target,
            note=f"{entities:,} entities",
        )
        fig("5", "entry setup → Comet connected and first resync done", settled_s, "s")
        fig(
            "6",
            "process RSS growth per object in scope",
            (rss1 - rss0) / max(in_scope, 1),
            "bytes",
            note=f"{(rss1 - rss0) / 2**20:,.1f} MiB for {in_scope:,} objects, "
            f"{entities:,} entities",
        )

        # Resync after a reconnect, with changes made while Comet was away.
        resyncs = hub.resyncs
        fired0 = dict(hub.bus.fired)
        published0 = dict(sim.counters.events_published)
        await sim.stop_comet()
        await wait_until(lambda: not hub.connected, 30, "the disconnect")
        rng = random.Random(5)
        candidates = sorted(oid for oid in hub.objects_in_scope if oid != sim.model.root_id)
        for oid in rng.sample(candidates, CHANGES_DURING_OUTAGE):
            current = sim.model.objects[oid].state_id
            await sim.set_state(oid, 3 if current != 3 else 5)
        expected = sum(
            sim.counters.events_published.get(kind, 0) - published0.get(kind, 0)
            for kind in (EVENT_STATE_CHANGE, EVENT_INCIDENTS)
        )
        await sim.start_comet()
        await wait_until(lambda: hub.resyncs > resyncs, 60, "the resync after reconnect")
        await hass.async_block_till_done()
        fired = sum(
            hub.bus.fired.get(kind, 0) - fired0.get(kind, 0)
            for kind in (EVENT_STATE_CHANGED, EVENT_INCIDENT)
        )
        resync_target = objects == RESYNC_TARGET_OBJECTS
        fig(
            "5",
            f"full resync after reconnect, {objects:,} objects",
            hub.live.stats.last_resync_seconds if hub.resyncs > resyncs else None,
            "s",
            op="le" if resync_target or objects < RESYNC_TARGET_OBJECTS else "info",
            limit=RESYNC_TARGET if objects <= RESYNC_TARGET_OBJECTS else None,
        )
        fig(
            "5",
            "duplicate events fired by the resync",
            max(fired - expected, 0),
            op="eq",
            limit=0,
            note=f"{fired} fired for {expected} changes while away",
        )
        fig("5", "changes missed by the resync", max(expected - fired, 0), op="eq", limit=0)
    return figures
