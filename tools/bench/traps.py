"""Measurement 7: state updates during an SNMP trap storm (10,000 traps/s for 10 s).

Home Assistant runs the integration with SNMP traps turned on (an event entity per object).
The Node server replays two recordings, paced, and returns every event's emit time: first the
*quiet* one, state changes alone (``rate`` a second for ``duration`` seconds); then the *storm*,
the same number of state changes at the same pace with ``traps`` SNMP traps a second between
them, spread over ``noisy`` objects (the rate limit lets 20 at once and 2 a second per object
through, drops the rest and counts them). For each state change the time from its emit to the
entity state written is matched (as in measurement 2); the storm's p99 must stay within twice
the quiet p99. Also reported: the traps handled per second, how many passed the limit and were
fired, and the longest event-loop stall.
"""

from __future__ import annotations

import asyncio
import gc
import random
import shutil
import time
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED
import orjson

from custom_components.saymon.states import state_key
from tools.simulator import EVENT_STATE_CHANGE, SaymonSimulator
from tools.simulator.server_events import payload, values_for

from . import storm as storms
from .env import (
    add_entry,
    epoch_ms,
    home_assistant,
    setup_and_settle,
    start_node_comet,
    state_writes,
    wait_until,
    work_dir,
)
from .latency import GcPauses, Matcher, _loop_stalls
from .report import Figure, percentile

RATIO_LIMIT = 2.0


def _trap_storm(
    sim: SaymonSimulator, quiet: storms.Storm, path: Any, traps_per_change: int, noisy: list[str]
) -> tuple[int, list[tuple[str, str] | None]]:
    """Write the quiet storm's events with ``traps_per_change`` traps after each; keys per line."""
    rng = random.Random(77)
    names = {oid: sim.model.objects[oid].name for oid in noisy}
    keys: list[tuple[str, str] | None] = []
    traps = 0
    with quiet.path.open("rb") as source, path.open("wb") as out:
        for line, key in zip(source, quiet.keys, strict=True):
            out.write(line)
            keys.append(key)
            for _ in range(traps_per_change):
                oid = rng.choice(noisy)
                values = values_for(rng, 1668076837571, (oid, names[oid]), LEVEL=rng.choice([1, 2]))
                out.write(orjson.dumps(["snmp-trap", payload("snmp-trap", "documented", values)]))
                out.write(b"\n")
                keys.append(None)
                traps += 1
    return traps, keys


async def run(params: dict[str, Any]) -> list[Figure]:
    """``params``: objects, rate (state changes/s), traps (per s), duration, noisy, scale."""
    objects = int(params.get("objects", 500))
    rate = float(params.get("rate", 100))
    traps_rate = float(params.get("traps", 10_000))
    duration = float(params.get("duration", 10))
    noisy_count = int(params.get("noisy", 50))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure("7", name, value, unit, scale=scale, **kw))

    tmp_path = work_dir()
    sim = SaymonSimulator(objects=objects)
    await sim.start()
    node = await start_node_comet(sim)
    try:
        async with home_assistant() as hass:
            entry = await add_entry(hass, sim, comet_url=node.url, options={"snmp_traps": True})
            hub = await setup_and_settle(hass, entry)
            writes, on_write = state_writes(hass, hub)

            noisy = random.Random(5).sample(sorted(hub.objects_in_scope), noisy_count)
            changes = int(rate * duration)

            async def measure(path: Any, keys: list[Any], pace: float) -> dict[str, Any]:
                writes.clear()
                gc.collect()
                handled0 = sum(hub.comet.stats.events.values())
                unlisten = hass.bus.async_listen(EVENT_STATE_CHANGED, on_write)
                stalls: list[float] = []
                pauses = GcPauses()
                gc.callbacks.append(pauses)
                watcher = asyncio.create_task(_loop_stalls(stalls))
                cpu0 = time.process_time()
                result = await node.replay(path, rate=pace, times=True)
                await wait_until(
                    lambda: sum(hub.comet.stats.events.values()) - handled0 >= len(keys),
                    120,
                    "every event handled",
                    progress=lambda: sum(hub.comet.stats.events.values()),
                )
                await hass.async_block_till_done()
                handled_at = epoch_ms()
                cpu = time.process_time() - cpu0
                unlisten()
                watcher.cancel()
                gc.callbacks.remove(pauses)
                matcher = Matcher()
                for key, emitted in zip(keys, result["emit_times"], strict=True):
                    if key is not None:
                        oid, state_id = key
                        matcher.add((oid, state_key(hub.model, state_id) or state_id), emitted)
                latencies = [
                    lat
                    for oid, value, seen in writes
                    if (lat := matcher.latency((oid, value), seen)) is not None
                ]
                return {
                    "result": result,
                    "latencies": latencies,
                    "stalls": stalls,
                    "handled_s": (handled_at - float(result["started_ms"])) / 1000,
                    "cpu_s": cpu,
                    "gc": pauses,
                }

            quiet_storm = storms.record(
                sim, tmp_path / "quiet.ndjson", events=changes, kinds=(EVENT_STATE_CHANGE,), seed=3
            )
            quiet = await measure(quiet_storm.path, quiet_storm.keys, rate)
            storm_quiet = storms.record(
                sim, tmp_path / "base.ndjson", events=changes, kinds=(EVENT_STATE_CHANGE,), seed=4
            )
            per_change = round(traps_rate / rate)
            storm_path = tmp_path / "storm.ndjson"
            traps, keys = _trap_storm(sim, storm_quiet, storm_path, per_change, noisy)
            fired0 = hub.server_events.fired["saymon_snmp_trap"]
            dropped0 = hub.live.gate.limit.dropped["snmp-trap"]
            loud = await measure(storm_path, keys, rate * (1 + per_change))
            fired = hub.server_events.fired["saymon_snmp_trap"] - fired0
            dropped = hub.live.gate.limit.dropped["snmp-trap"] - dropped0

            quiet_p99 = percentile(quiet["latencies"], 99)
            storm_p99 = percentile(loud["latencies"], 99)
            fig(
                "quiet: state changes (paced)",
                quiet["result"]["rate"],
                "events/s",
                note=f"{changes:,} state changes",
            )
            fig("quiet: emit → entity state written, p50", percentile(quiet["latencies"], 50), "ms")
            fig("quiet: emit → entity state written, p99", quiet_p99, "ms")
            fig(
                "storm: traps + state changes (paced)",
                loud["result"]["rate"],
                "events/s",
                note=f"{traps:,} traps over {noisy_count} objects + {changes:,} state changes",
            )
            fig("storm: emit → entity state written, p50", percentile(loud["latencies"], 50), "ms")
            fig("storm: emit → entity state written, p99", storm_p99, "ms")
            ratio = None if not quiet_p99 or storm_p99 is None else storm_p99 / quiet_p99
            fig(
                "storm p99 / quiet p99",
                ratio,
                "",
                op="le",
                limit=RATIO_LIMIT,
                note=f"{len(loud['latencies']):,} of {changes:,} writes matched",
            )
            fig(
                "traps handled per second",
                traps / loud["handled_s"] if loud["handled_s"] > 0 else None,
                "traps/s",
                note=f"all {traps:,} handled {loud['handled_s']:.1f} s after the first emit",
            )
            fig(
                "traps fired (passed the limit) / dropped and counted",
                fired,
                "",
                note=f"{dropped:,} dropped; fired + dropped = {fired + dropped:,} of {traps:,}",
            )
            fig(
                "Home Assistant's CPU during the storm",
                100 * loud["cpu_s"] / loud["handled_s"] if loud["handled_s"] > 0 else None,
                "% of a core",
                note=f"{1e6 * loud['cpu_s'] / (traps + changes):.0f} µs per event; "
                f"quiet: {100 * quiet['cpu_s'] / quiet['handled_s']:.0f} %",
            )
            fig(
                "longest event-loop stall during the storm",
                max(loud["stalls"]) if loud["stalls"] else None,
                "ms",
                note=f"garbage collector: {loud['gc'].count} full collections, longest "
                f"{loud['gc'].longest:.0f} ms (quiet: {quiet['gc'].count})",
            )
    finally:
        await node.stop()
        await sim.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)
    return figures
