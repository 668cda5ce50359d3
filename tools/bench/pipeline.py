"""Measurement 1: pipeline throughput, Comet storm → model → entities, beside a bare client.

The Node socket.io 4.5.0 server replays storms recorded from the simulator (see
:mod:`.storm`) to two clients at once: the integration inside Home Assistant (REST and
sessions on the simulator) and a bare python-socketio client in its own process. First a
20,000-event burst, emitted as fast as the server can (its emit rate is the source's
capacity; the integration's rate on it sizes the real storm), then the sustained storm, long
enough to last ``duration`` s at the integration's pace, *flow-controlled*: each client gets
the whole storm as fast as it takes it, and the server never holds more than ~1 MiB for a
client. (Without that a client slower than the server has a growing backlog in the server's
buffers, its Engine.IO pings wait behind it, and after ~25 s the connection is dropped for a
missed heartbeat: every Python client slower than Node has that problem in a long storm.)
Figures: events/s applied to the model (first emit → last event applied), entity state
writes/s, the bare client's rate on the same storm, the slowest second, and the checks: no
event dropped, every bus event fired, final entity states equal the truth.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import gc
import logging
import shutil
import time
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from custom_components.saymon.const import (
    DOMAIN,
    EVENT_INCIDENT,
    EVENT_STATE_CHANGED as SAYMON_STATE,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.states import state_key
from tools.simulator import EVENT_STATE_CHANGE, SaymonSimulator

from . import storm as storms
from .env import (
    add_entry,
    epoch_ms,
    home_assistant,
    new_session,
    python_process,
    setup_and_settle,
    start_node_comet,
    wait_until,
    work_dir,
)
from .report import Figure

_LOGGER = logging.getLogger(__name__)
TARGET_RATE = 10_000.0
TARGET_SECONDS = 30.0


@dataclass(slots=True)
class Counters:
    """State writes seen on the bus."""

    writes: int = 0
    last_write_ms: float = 0.0


def _applied(hub: SaymonHub) -> int:
    return sum(hub.comet.stats.events.values())


def truth_mismatches(hass: HomeAssistant, hub: SaymonHub, sim: SaymonSimulator) -> int:
    """Objects whose state sensor or problem sensor differs from the simulator's truth."""
    registry = er.async_get(hass)
    wrong = 0
    shown = 0
    for oid in hub.objects_in_scope:
        obj = sim.model.objects.get(oid)
        if obj is None:
            continue
        sensor = registry.async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|object|{oid}|state"
        )
        problem = registry.async_get_entity_id(
            "binary_sensor", DOMAIN, f"{hub.server_key}|object|{oid}|problem"
        )
        want_state = state_key(hub.model, str(obj.state_id))
        want_problem = "on" if sim.model.incidents.open_for((1, oid)) is not None else "off"
        got_state = hass.states.get(sensor) if sensor else None
        got_problem = hass.states.get(problem) if problem else None
        if (
            got_state is None
            or got_state.state != want_state
            or got_problem is None
            or got_problem.state != want_problem
        ):
            wrong += 1
            if shown < 5:
                shown += 1
                _LOGGER.warning(
                    "%s: state %s (truth %s, model %s), problem %s (truth %s, model %s)",
                    oid,
                    got_state.state if got_state else None,
                    want_state,
                    hub.model.state_of(oid),
                    got_problem.state if got_problem else None,
                    want_problem,
                    hub.model.has_incident(oid),
                )
    return wrong


async def run(params: dict[str, Any]) -> list[Figure]:
    """Run one scale; ``params``: objects, duration, scale."""
    objects = int(params.get("objects", 2000))
    duration = float(params.get("duration", TARGET_SECONDS))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure("1", name, value, unit, scale=scale, **kw))

    tmp = work_dir()
    sim = SaymonSimulator(objects=objects)
    await sim.start()
    node = await start_node_comet(sim)
    bare = python_process("tools.bench.bare_sio", node.url, new_session(sim))
    try:
        async with home_assistant() as hass:
            entry = await add_entry(hass, sim, comet_url=node.url)
            hub = await setup_and_settle(hass, entry)
            counters = Counters()

            @callback
            def on_write(_event: Event[Any]) -> None:
                counters.writes += 1
                counters.last_write_ms = epoch_ms()

            unlisten = hass.bus.async_listen(EVENT_STATE_CHANGED, on_write)
            await bare.start()

            # Calibration: a short storm sizes the real one so that it lasts `duration` s (with
            # a margin: a long storm goes faster than the burst, its entity writes coalesce).
            calib = storms.record(sim, tmp / "calibration.ndjson", events=20_000, seed=11)
            rate, burst_rate = await _replay_and_wait(hass, hub, node, calib, timeout=120)
            await bare.command("reset")
            per_s = max(rate or TARGET_RATE, TARGET_RATE)
            storm = storms.record(
                sim, tmp / "storm.ndjson", events=int(per_s * duration * 1.4), seed=12
            )
            fired0 = dict(hub.bus.fired)
            applied0 = _applied(hub)
            dropped0 = hub.comet.stats.dropped
            replayed0 = hub.live.stats.replayed
            counters.writes = 0
            samples: list[tuple[float, int]] = []
            gc.collect()  # the recording's garbage, not the integration's
            sampler = asyncio.create_task(_sample(hub, applied0, samples))
            cpu0 = time.process_time()
            result = await node.replay(storm.path, flow=True)
            started = float(result["started_ms"])
            done = await wait_until(
                lambda: _applied(hub) - applied0 >= storm.events,
                timeout=max(120.0, duration * 6),
                what="every storm event applied",
                interval=0.005,
                progress=lambda: _applied(hub),
            )
            applied_ms = epoch_ms()
            cpu = time.process_time() - cpu0
            sampler.cancel()
            await hass.async_block_till_done()
            # Entity writes are coalesced while a storm lasts: the last ones follow the last
            # event applied by up to one flush interval.
            settled = await wait_until(
                lambda: truth_mismatches(hass, hub, sim) == 0, 10.0, "entities settled", 0.01
            )
            settled_ms = epoch_ms() - applied_ms
            bare_status = await _bare_wait(bare, storm.events)
            unlisten()

            applied = _applied(hub) - applied0
            seconds = (applied_ms - started) / 1000
            fig(
                "source emit rate, 20,000-event burst",
                burst_rate,
                "events/s",
                note="Node socket.io 4.5.0, to both clients at once",
            )
            fig(
                "source rate delivered, flow-controlled",
                result["rate"],
                "events/s",
                note="sum over both clients, each as fast as it takes them",
            )
            fig(
                "events applied to the model",
                applied / seconds if done and seconds > 0 else None,
                "events/s",
                op="ge",
                limit=TARGET_RATE,
                note=f"{storm.events:,} events in {seconds:.1f} s",
            )
            fig("sustained for", seconds if done else None, "s", op="ge", limit=duration)
            writes_s = (counters.last_write_ms - started) / 1000
            fig(
                "entity state writes",
                counters.writes / writes_s if writes_s > 0 else None,
                "writes/s",
                note=f"{counters.writes:,} writes (coalesced, see below)",
            )
            bare_rate = None
            if bare_status.get("last_ms"):
                bare_s = (float(bare_status["last_ms"]) - started) / 1000
                bare_rate = int(bare_status["count"]) / bare_s if bare_s > 0 else None
            fig(
                "bare python-socketio client, same stream",
                bare_rate,
                "events/s",
                note=f"{bare_status.get('count', 0):,} events",
            )
            ours = applied / seconds if done and seconds > 0 else None
            fig(
                "integration / bare client",
                ours / bare_rate if ours and bare_rate else None,
                "x",
                op="ge",
                limit=0.5,
            )
            fig("process CPU per event", cpu / max(applied, 1) * 1e6, "µs", note="HA process")
            if samples:
                fig(
                    "slowest 1 s window",
                    _slowest_window(samples, started),
                    "events/s",
                    note="applied per second, worst second of the run",
                )
            fig(
                "events dropped by the client queue",
                hub.comet.stats.dropped - dropped0,
                op="eq",
                limit=0,
            )
            want_bus = storm.by_event[EVENT_STATE_CHANGE] + storm.by_event["incidents"]
            got_bus = (
                hub.bus.fired[SAYMON_STATE]
                - fired0.get(SAYMON_STATE, 0)
                + hub.bus.fired[EVENT_INCIDENT]
                - fired0.get(EVENT_INCIDENT, 0)
            )
            fig(
                "bus events missing",
                want_bus - got_bus,
                op="eq",
                limit=0,
                note=f"{got_bus:,} of {want_bus:,} fired "
                f"({hub.live.stats.replayed - replayed0} replayed)",
            )
            fig(
                "entity states settled after the last event applied",
                settled_ms if settled else None,
                "ms",
                note="writes are coalesced in a storm (one per object per 0.2 s at most)",
            )
            fig(
                "entities differing from the truth",
                truth_mismatches(hass, hub, sim),
                op="eq",
                limit=0,
                note=f"{len(hub.objects_in_scope):,} objects x (state, problem)",
            )
    finally:
        await bare.stop()
        await node.stop()
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return figures


async def _bare_wait(bare: Any, want: int, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = await bare.command("status")
    while int(status.get("count", 0)) < want and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await bare.command("status")
    return status


async def _replay_and_wait(
    hass: HomeAssistant, hub: SaymonHub, node: Any, storm: storms.Storm, timeout: float
) -> tuple[float | None, float | None]:
    """Replay a storm as fast as the server can; return the applied and the emit rate."""
    applied0 = _applied(hub)
    result = await node.replay(storm.path)
    ok = await wait_until(
        lambda: _applied(hub) - applied0 >= storm.events,
        timeout,
        "calibration",
        0.005,
        progress=lambda: _applied(hub),
    )
    seconds = (epoch_ms() - float(result["started_ms"])) / 1000
    await hass.async_block_till_done()
    return (storm.events / seconds if ok and seconds > 0 else None), result["rate"]


async def _sample(hub: SaymonHub, base: int, out: list[tuple[float, int]]) -> None:
    while True:
        out.append((epoch_ms(), _applied(hub) - base))
        await asyncio.sleep(0.1)


def _slowest_window(samples: list[tuple[float, int]], started: float) -> float | None:
    """Lowest events/s over any 1 s window between the first and the last event applied."""
    points = [(t, n) for t, n in samples if t >= started]
    last_n = points[-1][1] if points else 0
    points = [(t, n) for t, n in points if 0 < n < last_n] or points
    worst: float | None = None
    j = 0
    for i, (t, n) in enumerate(points):
        while j < len(points) and points[j][0] < t + 1000:
            j += 1
        if j >= len(points):
            break
        t2, n2 = points[j]
        rate = (n2 - n) / ((t2 - t) / 1000)
        worst = rate if worst is None else min(worst, rate)
        del i
    return worst
