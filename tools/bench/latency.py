"""Measurement 2: latency at a steady rate, emit → entity state written and → MQTT message.

The Node server replays a simulator storm paced at ``rate`` events/s and returns every
event's emit time (epoch ms; client and server share the host's clock). Home Assistant runs
the integration with the MQTT mirror on a local Mosquitto; a Node subscriber (its own
process) notes when each object event message arrives. A state-change event is matched to
the entity write / MQTT message that shows its (object, new state); state writes coalesced
within one tick count for the latest event they show.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import defaultdict
import gc
import shutil
import time
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED

from custom_components.saymon.states import state_key
from tools.simulator import SaymonSimulator

from . import storm as storms
from .env import (
    add_entry,
    home_assistant,
    mqtt_options,
    setup_and_settle,
    start_mosquitto,
    start_node_comet,
    start_probe,
    state_writes,
    wait_until,
    work_dir,
)
from .report import Figure, percentile

STATE_P99_MS = 10.0
MQTT_P99_MS = 15.0


class GcPauses:
    """``gc.callbacks`` entry timing the collector's full (generation 2) collections."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.count = 0
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """Called by the collector before and after each collection."""
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.longest = max(self.longest, (time.perf_counter() - self._started) * 1000)


async def _loop_stalls(out: list[float], interval: float = 0.005) -> None:
    """Record how late each short sleep wakes up (ms): the event loop's stalls."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval)
        out.append((loop.time() - before - interval) * 1000)


class Matcher:
    """Finds, for something seen at time t, the latest emit of the same key at or before t."""

    def __init__(self) -> None:
        """Empty."""
        self._times: dict[tuple[str, str], list[float]] = defaultdict(list)

    def add(self, key: tuple[str, str], emitted: float) -> None:
        """Record an emit (in time order)."""
        self._times[key].append(emitted)

    def latency(self, key: tuple[str, str], seen: float) -> float | None:
        """Milliseconds from the matching emit, or ``None``."""
        times = self._times.get(key)
        if not times:
            return None
        index = bisect.bisect_right(times, seen) - 1
        return None if index < 0 else seen - times[index]


async def run(params: dict[str, Any]) -> list[Figure]:
    """One rate; ``params``: objects, rate, duration, scale."""
    objects = int(params.get("objects", 2000))
    rate = float(params.get("rate", 1000))
    duration = float(params.get("duration", 10))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure("2", name, value, unit, scale=scale, **kw))

    tmp = work_dir()
    sim = SaymonSimulator(objects=objects)
    await sim.start()
    node = await start_node_comet(sim)
    broker = await start_mosquitto(tmp)
    probe = await start_probe(broker.port)
    try:
        async with home_assistant() as hass:
            entry = await add_entry(
                hass, sim, comet_url=node.url, options=mqtt_options(broker.port)
            )
            hub = await setup_and_settle(hass, entry)
            writes, on_write = state_writes(hass, hub)

            storm = storms.record(sim, tmp / "storm.ndjson", events=int(rate * duration), seed=21)
            mirror = hub.entry.runtime_data.mirror
            assert mirror is not None
            await wait_until(lambda: mirror.transport.connected, 10, "the mirror")
            await hass.async_block_till_done()
            await probe.command('reset {"latency": true}')
            # The storm recording above allocated a lot; collect it now so the collector's
            # next full pass is not triggered by the benchmark's own garbage mid-run.
            gc.collect()
            unlisten = hass.bus.async_listen(EVENT_STATE_CHANGED, on_write)
            pauses = GcPauses()
            gc.callbacks.append(pauses)
            stalls: list[float] = []
            watcher = asyncio.create_task(_loop_stalls(stalls))
            applied0 = sum(hub.comet.stats.events.values())
            result = await node.replay(storm.path, rate=rate, times=True)
            await wait_until(
                lambda: sum(hub.comet.stats.events.values()) - applied0 >= storm.events,
                60,
                "every event applied",
                progress=lambda: sum(hub.comet.stats.events.values()),
            )
            await hass.async_block_till_done()
            unlisten()
            watcher.cancel()
            gc.callbacks.remove(pauses)
            want = storm.by_event["state-change"]
            status: dict[str, Any] = {}

            async def probe_has_all() -> bool:
                nonlocal status
                status = await probe.command("status")
                return int(status["counts"]["object_event"]) >= want

            for _ in range(200):
                if await probe_has_all():
                    break
                await asyncio.sleep(0.05)
            report = await probe.command("report")

            emits: list[float] = result["emit_times"]
            by_state = Matcher()
            by_mqtt = Matcher()
            for key, emitted in zip(storm.keys, emits, strict=True):
                if key is None:
                    continue
                oid, state_id = key
                by_mqtt.add((oid, state_id), emitted)
                by_state.add((oid, state_key(hub.model, state_id) or state_id), emitted)
            state_ms = [
                lat
                for oid, value, seen in writes
                if (lat := by_state.latency((oid, value), seen)) is not None
            ]
            mqtt_ms = [
                lat
                for seen, oid, state_id in report["samples"]
                if oid and state_id and (lat := by_mqtt.latency((oid, state_id), seen)) is not None
            ]
            fig("source rate (paced)", result["rate"], "events/s", note=f"{storm.events:,} events")
            fig("emit → entity state written, p50", percentile(state_ms, 50), "ms")
            fig(
                "emit → entity state written, p99",
                percentile(state_ms, 99),
                "ms",
                op="le",
                limit=STATE_P99_MS,
                note=f"{len(state_ms):,} writes matched",
            )
            fig("emit → MQTT message received, p50", percentile(mqtt_ms, 50), "ms")
            fig(
                "emit → MQTT message received, p99",
                percentile(mqtt_ms, 99),
                "ms",
                op="le",
                limit=MQTT_P99_MS,
                note=f"{len(mqtt_ms):,} of {want:,} object events received",
            )
            fig("emit → MQTT message received, max", max(mqtt_ms) if mqtt_ms else None, "ms")
            fig(
                "longest event-loop stall during the run",
                max(stalls) if stalls else None,
                "ms",
                note=f"garbage collector: {pauses.count} full collections, longest "
                f"{pauses.longest:.0f} ms",
            )
    finally:
        await probe.stop()
        await broker.stop()
        await node.stop()
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return figures
