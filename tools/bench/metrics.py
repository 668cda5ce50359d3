"""Measurement 7: metrics (``stat``) at scale: throughput, latency, CPU, memory, recorder rows.

Two kinds of run, each in its own process:

* ``mode: stream`` (10,000 objects, about 10 metrics each, every probe on a 60 s period, the
  default tiers): the integration in Home Assistant (REST on the simulator, Comet on the Node
  socket.io 4.5.0 server) and a bare python-socketio client subscribed to the same objects'
  stat. Stats are recorded from the simulator's probes (so its REST answers are the truth) and
  replayed by the Node server: a burst, flow-controlled to both clients (stat events/s until
  every entity shows the truth, beside the bare client's rate); a paced stream at 500 stat/s
  (stat → entity state latency, each state matched to the stat whose value it shows); one
  period at its natural rate (the CPU it costs); and one period of data counted as state
  writes (the recorder's rows per minute with the default tiers; the same data as one entity
  per metric is counted from the stream: every value that changed is one row).
* ``mode: memory`` (2,000 objects): the integration set up twice in a fresh Home Assistant,
  with no metric entities and with every metric an enabled entity, under tracemalloc: what
  the integration's own code holds, per metric entity; and the state writes of one period of
  data with the default tiers and with every metric an entity (the rows the stream count
  predicts, measured).

The entity budget (10,000 enabled entities per entry) is lifted for both: the point is scale.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
import gc
import math
from pathlib import Path
import shutil
import time
import tracemalloc
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import orjson

from custom_components.saymon.api import stat
from custom_components.saymon.hub import SaymonHub, metrics as hub_metrics
from custom_components.saymon.metric_catalog import CONF_METRICS, CONF_METRICS_OTHERS
from tools.simulator import ENTITY_OBJECT, SaymonSimulator

from .env import (
    add_entry,
    epoch_ms,
    home_assistant,
    new_session,
    python_process,
    rss_bytes,
    setup_and_settle,
    start_node_comet,
    wait_until,
    work_dir,
)
from .latency import GcPauses, _loop_stalls
from .report import Figure, percentile

TARGET_RATE = 5_000.0
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
TARGET_BYTES = 1024.0
UNITS = {"GiB": 1024**3, "Mbit/s": 1_000_000}
"""Display units Home Assistant converts some metrics to (the suggested ones)."""
ROOT = str(Path(__file__).resolve().parents[2] / "custom_components" / "saymon")


def _no_budget() -> None:
    setattr(hub_metrics, "MAX_ENABLED_ENTITIES", 10**9)  # noqa: B010 - a constant, lifted


async def run(params: dict[str, Any]) -> list[Figure]:
    """One run; ``params``: mode (stream or memory), objects, rounds, scale."""
    _no_budget()
    if params.get("mode") == "memory":
        return await _memory(params)
    return await _stream(params)


# -- helpers -----------------------------------------------------------------------------------


def metric_entities(hass: HomeAssistant, hub: SaymonHub) -> dict[tuple[str, str], str]:
    """(object id, metric path) → entity id of the entry's enabled metric entities."""
    found = {}
    registry = er.async_get(hass)
    for entry in er.async_entries_for_config_entry(registry, hub.entry.entry_id):
        parts = entry.unique_id.split("|", 3)
        if len(parts) == 4 and parts[3].startswith("metric:") and entry.disabled_by is None:
            found[parts[2], parts[3].removeprefix("metric:")] = entry.entity_id
    return found


def _shows(hass: HomeAssistant, entity_id: str, value: Any) -> bool:
    state = hass.states.get(entity_id)
    if state is None:
        return False
    try:
        return math.isclose(float(state.state), float(value), rel_tol=1e-9)
    except (TypeError, ValueError):
        return state.state == str(value)


def mismatches(
    hass: HomeAssistant, entities: dict[tuple[str, str], str], sim: SaymonSimulator
) -> int:
    """Enabled numeric metric entities whose state is not the simulator's current value."""
    wrong = 0
    cache: dict[str, dict[str, Any]] = {}
    for (object_id, path), entity_id in entities.items():
        if object_id not in cache:
            cache[object_id] = stat.flatten(
                sim.model.last_stat[ENTITY_OBJECT, object_id]["payload"]
            )
        value = cache[object_id].get(path)
        state = hass.states.get(entity_id)
        if state is None or state.attributes.get("device_class") == "timestamp":
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            scale = UNITS.get(str(state.attributes.get("unit_of_measurement")), 1)
            wrong += not _shows(hass, entity_id, value / scale)
    return wrong


def record(sim: SaymonSimulator, path: Path, keys: list[tuple[int, str]], rounds: int) -> int:
    """Run the probes of ``keys`` ``rounds`` times in the simulator; write their stat events."""
    model = sim.model
    count = 0
    with path.open("wb") as out:
        for _ in range(rounds):
            for key in keys:
                event = model.probe_stat(key)
                if event is not None:
                    out.write(orjson.dumps(["stat", event.payload]) + b"\n")
                    count += 1
    return count


def _applied(hub: SaymonHub) -> int:
    return hub.comet.stats.events["stat"]


class Writes:
    """``state_changed`` of the entry's metric entities: count, last time, per entity."""

    def __init__(self, hass: HomeAssistant, entity_ids: set[str]) -> None:
        """Listen from now on."""
        self.entity_ids = entity_ids
        self.count = 0
        self.last_ms = 0.0
        self.seen: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.keep = False
        self._unlisten = hass.bus.async_listen(EVENT_STATE_CHANGED, self._on)

    @callback
    def _on(self, event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        if entity_id in self.entity_ids:
            self.count += 1
            self.last_ms = epoch_ms()
            if self.keep and (new := event.data.get("new_state")) is not None:
                self.seen[entity_id].append((self.last_ms, new.state))

    def stop(self) -> None:
        """Stop listening."""
        self._unlisten()


def changed_values(events: list[dict[str, Any]], before: dict[str, dict[str, Any]]) -> int:
    """How many (object, metric) values the events change: rows if every metric were an entity."""
    rows = 0
    last = {key: dict(values) for key, values in before.items()}
    for payload in events:
        object_id = payload["entityId"]
        metrics = stat.flatten(payload["payload"]["payload"])
        old = last.setdefault(object_id, {})
        rows += sum(old.get(path) != value for path, value in metrics.items())
        old.update(metrics)
    return rows


# -- 10,000 objects: the stream -----------------------------------------------------------------


async def _stream(params: dict[str, Any]) -> list[Figure]:
    objects = int(params.get("objects", 10_000))
    rounds = int(params.get("rounds", 8))
    latency_seconds = float(params.get("latency_seconds", 10.0))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure("7", name, value, unit, scale=scale, **kw))

    tmp = work_dir()
    sim = SaymonSimulator(objects=objects)
    await sim.start()
    node = await start_node_comet(sim)
    bare = None
    try:
        async with home_assistant() as hass:
            entry = await add_entry(hass, sim, comet_url=node.url)
            started = time.monotonic()
            hub = await setup_and_settle(hass, entry, timeout=600)
            setup_s = time.monotonic() - started
            await wait_until(
                lambda: len(hub.live.metrics.followed) == len(hub.metrics.subscriptions.followed),
                60,
                "follow",
            )
            entities = metric_entities(hass, hub)
            followed = sorted(hub.live.metrics.followed)
            probed = [k for k in sim.model.probes.probes if k[0] == ENTITY_OBJECT]
            created = sum(len(s) for s in hub.metrics.specs.values())
            fig(
                "setup with metric discovery",
                setup_s,
                "s",
                note=f"{objects:,} objects; {created:,} metric entities, {len(entities):,} "
                f"enabled (default tiers), {len(followed):,} objects followed",
            )
            keys_file = tmp / "keys.txt"
            keys_file.write_text("\n".join(f"1:{o}" for o in followed))
            bare = python_process(
                "tools.bench.bare_sio", node.url, new_session(sim), str(keys_file)
            )
            await bare.start()
            writes = Writes(hass, set(entities.values()))

            # The burst: `rounds` stats of every followed object, as fast as each client takes them.
            burst = tmp / "burst.ndjson"
            events = record(sim, burst, [(ENTITY_OBJECT, o) for o in followed], rounds)
            applied0, dropped0 = _applied(hub), hub.comet.stats.dropped
            gc.collect()
            cpu0 = time.process_time()
            result = await node.replay(burst, flow=True)
            begin = float(result["started_ms"])
            done = await wait_until(
                lambda: _applied(hub) - applied0 >= events,
                600,
                "every stat applied",
                0.005,
                progress=lambda: _applied(hub),
            )
            applied_ms = epoch_ms()
            cpu = time.process_time() - cpu0
            # The last coalesced writes follow the last stat applied by a flush interval at most;
            # the truth is checked once (checking it while the burst runs would cost CPU here).
            await hass.async_block_till_done()
            await asyncio.sleep(0.5)
            settled = mismatches(hass, entities, sim) == 0
            states_ms = max(writes.last_ms, applied_ms)
            status = await bare.command("status")
            into_states = events / ((states_ms - begin) / 1000) if done and settled else None
            fig(
                "stat events into entity states (burst)",
                into_states,
                "events/s",
                op="ge",
                limit=TARGET_RATE,
                note=f"{events:,} stats ({rounds} per object), first emit → every state true",
            )
            fig(
                "stat events applied to the model",
                events / ((applied_ms - begin) / 1000) if done else None,
                "events/s",
            )
            bare_rate = None
            if status.get("last_ms"):
                bare_rate = int(status["count"]) / ((float(status["last_ms"]) - begin) / 1000)
            fig(
                "bare python-socketio client, same stream",
                bare_rate,
                "events/s",
                note=f"{status.get('count', 0):,} events",
            )
            fig(
                "integration / bare client",
                into_states / bare_rate if into_states and bare_rate else None,
                "x",
                op="ge",
                limit=TARGET_RATIO,
            )
            fig("process CPU per stat event", cpu / max(events, 1) * 1e6, "µs", note="HA process")
            fig(
                "metric state writes in the burst",
                writes.count,
                note="coalesced: one per entity per flush at most",
            )
            fig(
                "stat events dropped",
                hub.comet.stats.dropped - dropped0,
                op="eq",
                limit=0,
            )
            fig(
                "entities differing from the truth",
                mismatches(hass, entities, sim),
                op="eq",
                limit=0,
                note=f"{len(entities):,} enabled metric entities",
            )

            # Latency at 500 stat/s: each state matched to the stat whose value it shows.
            rate = 500.0
            tracked = _tracked(entities, followed)
            pace = tmp / "paced.ndjson"
            order = [o for o in followed if o in tracked]
            count = int(rate * latency_seconds)
            keys = [(ENTITY_OBJECT, order[i % len(order)]) for i in range(count)]
            record(sim, pace, keys, 1)
            values = [
                stat.flatten(orjson.loads(line)[1]["payload"]["payload"]).get(tracked[k[1]][1])
                for k, line in zip(keys, pace.read_bytes().splitlines(), strict=True)
            ]
            writes.keep = True
            writes.seen.clear()
            # A full collection of this heap (Home Assistant's registries of 100,000 entities
            # dominate it) takes seconds; it runs once after the set-up and the burst grew the
            # heap, then rarely (a quarter more long-lived objects). It is made here, timed and
            # reported, so the window measures the steady state.
            collect0 = time.perf_counter()
            gc.collect()
            collect_ms = (time.perf_counter() - collect0) * 1000
            pauses = GcPauses()
            gc.callbacks.append(pauses)
            stalls: list[float] = []
            watcher = asyncio.create_task(_loop_stalls(stalls))
            result = await node.replay(pace, rate=rate, times=True)
            await wait_until(lambda: _applied(hub) - applied0 >= events + count, 60, "paced")
            await asyncio.sleep(0.5)
            watcher.cancel()
            gc.callbacks.remove(pauses)
            writes.keep = False
            latencies = _match(keys, values, result["emit_times"], tracked, writes.seen)
            fig(
                "stat → entity state, p50",
                percentile(latencies, 50),
                "ms",
                note=f"{rate:.0f} stat/s for {latency_seconds:.0f} s",
            )
            fig(
                "stat → entity state, p99",
                percentile(latencies, 99),
                "ms",
                op="le",
                limit=TARGET_P99_MS,
                note=f"{len(latencies):,} of {count:,} stats matched",
            )
            fig("stat → entity state, max", max(latencies, default=None), "ms")
            fig(
                "longest event-loop stall meanwhile",
                max(stalls, default=None),
                "ms",
                note=f"{pauses.count} full garbage collections, longest {pauses.longest:.0f} ms",
            )
            fig(
                "one full garbage collection of this heap",
                collect_ms,
                "ms",
                note=f"{len(gc.get_objects()):,} objects tracked; made before the window",
            )

            # One period at its natural rate: the CPU the stream costs.
            period = tmp / "period.ndjson"
            before = {key[1]: stat.flatten(sim.model.last_stat[key]["payload"]) for key in probed}
            count = record(sim, period, probed, 1)
            natural = count / 60.0
            writes.count = 0
            cpu0, wall0 = time.process_time(), time.monotonic()
            await node.replay(period, rate=natural * 6)  # 10 s: a sixth of a period each second
            await wait_until(
                lambda: (
                    _applied(hub) - applied0 >= events + int(rate * latency_seconds) + len(followed)
                ),
                60,
                "the period",
            )
            await asyncio.sleep(0.5)
            cpu_share = (time.process_time() - cpu0) / (time.monotonic() - wall0) / 6
            fig(
                "CPU for 10,000 objects on a 60 s period",
                cpu_share * 100,
                "% of a core",
                note=f"{natural:.0f} stat/s; measured at six times that rate",
            )
            fig(
                "recorder rows per minute, default tiers",
                writes.count,
                "rows/min",
                note="state writes of the metric entities for one period of data",
            )
            lines = [orjson.loads(line)[1] for line in period.read_bytes().splitlines()]
            all_rows = changed_values(lines, before)
            fig(
                "recorder rows per minute, every metric an entity",
                all_rows,
                "rows/min",
                note="the same data: every (object, metric) value that changed",
            )
            fig(
                "rows saved by the tiers",
                (1 - writes.count / all_rows) * 100 if all_rows else None,
                "%",
            )
            writes.stop()
    finally:
        if bare is not None:
            await bare.stop()
        await node.stop()
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


def _tracked(
    entities: dict[tuple[str, str], str], followed: list[str]
) -> dict[str, tuple[str, str]]:
    """Per followed object, one enabled entity whose value changes with every stat."""
    changing = ("roundTripAverage", "percentageUsage.combined", "usedPercent", "usePercent")
    tracked = {}
    for object_id in followed:
        for path in changing:
            if (object_id, path) in entities:
                tracked[object_id] = (entities[object_id, path], path)
                break
    return tracked


def _match(
    keys: list[tuple[int, str]],
    values: list[Any],
    emitted: list[float],
    tracked: dict[str, tuple[str, str]],
    seen: dict[str, list[tuple[float, str]]],
) -> list[float]:
    """Latency of every stat whose value a later state of its entity shows."""
    latencies = []
    for (_, object_id), value, sent in zip(keys, values, emitted, strict=True):
        entity_id = tracked[object_id][0]
        for when, state in seen.get(entity_id, ()):
            if when >= sent - 1 and _same(state, value):
                latencies.append(max(0.0, when - sent))
                break
    return latencies


def _same(state: str, value: Any) -> bool:
    try:
        return float(state) == float(value)
    except (TypeError, ValueError):
        return False


# -- 2,000 objects: memory and rows --------------------------------------------------------------


async def _memory(params: dict[str, Any]) -> list[Figure]:
    objects = int(params.get("objects", 2000))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []
    sim = SaymonSimulator(objects=objects)
    await sim.start()
    tmp = work_dir()
    measured: dict[str, tuple[int, int, int, int]] = {}
    try:
        for label, options in (
            ("none", {CONF_METRICS: [], CONF_METRICS_OTHERS: "none"}),
            ("default", {}),
            ("all", {CONF_METRICS: ["*"]}),
        ):
            measured[label] = await _one_setup(sim, options, tmp / label)
    finally:
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    base_ours, base_rss, _, _ = measured["none"]
    ours, rss, entities, _ = measured["all"]
    per_ours = (ours - base_ours) / entities if entities else None
    figures.append(
        Figure(
            "7",
            "memory per metric entity, integration code (tracemalloc)",
            per_ours,
            "bytes",
            op="le",
            limit=TARGET_BYTES,
            scale=scale,
            note=f"{entities:,} metric entities on {objects:,} objects, all enabled; "
            "allocations made by custom_components/saymon",
        )
    )
    figures.append(
        Figure(
            "7",
            "memory per metric entity, whole process (RSS)",
            (rss - base_rss) / entities if entities else None,
            "bytes",
            scale=scale,
            note="Home Assistant's own share included (state, registry entry, entity base)",
        )
    )
    for label in ("default", "all"):
        _, _, enabled, rows = measured[label]
        figures.append(
            Figure(
                "7",
                "state writes for one period, "
                + ("default tiers" if label == "default" else "every metric an entity"),
                rows,
                "rows",
                scale=scale,
                note=f"{enabled:,} enabled metric entities, {objects:,} objects",
            )
        )
    return figures


async def _one_setup(
    sim: SaymonSimulator, options: dict[str, Any], _directory: Path
) -> tuple[int, int, int, int]:
    """Set an entry up under tracemalloc: our code's bytes, RSS, metric entities, period rows."""
    gc.collect()
    async with home_assistant() as hass:
        rss0 = rss_bytes()
        tracemalloc.start(1)
        entry = await add_entry(hass, sim, options=options)
        hub = await setup_and_settle(hass, entry, timeout=900)
        await wait_until(
            lambda: len(hub.live.metrics.followed) == len(hub.metrics.subscriptions.followed),
            120,
            "follow",
        )
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        ours = sum(
            stat_.size
            for stat_ in snapshot.filter_traces([tracemalloc.Filter(True, f"{ROOT}/*")]).statistics(
                "filename"
            )
        )
        rss = rss_bytes() - rss0
        entities = metric_entities(hass, hub)
        writes = Writes(hass, set(entities.values()))
        probed = [k for k in sim.model.probes.probes if k[0] == ENTITY_OBJECT]
        await sim.run_probes(probed)
        await wait_until(lambda: mismatches(hass, entities, sim) == 0, 60, "one period shown", 0.5)
        await hass.async_block_till_done()
        writes.stop()
        del snapshot
        return ours, rss, len(entities), writes.count
