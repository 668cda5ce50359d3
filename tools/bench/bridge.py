"""Measurement 4: the integration against a minimal Node bridge, on the same storms.

Both are fed by the Node socket.io 4.5.0 server (replaying storms recorded from the
simulator, as fast as it can) and publish to the same local Mosquitto, one after the other:
first the integration (Home Assistant, MQTT mirror on a dedicated broker), then the bridge
(``node_bridge/bridge.js``: socket.io-client 4.5 + mqtt.js, one publish per Comet event).
A Node subscriber measures, per storm:

* state changes: event topic messages/s (ours: ``objects/<id>/event``; the bridge publishes
  one retained ``objects/<id>/state`` per event, its only topic) and the time from the first
  emit until every retained state topic holds its final value;
* incidents: ``incidents/event`` messages/s.

Our figures are reported as ratios to the bridge's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import json
import shutil
from typing import Any

from custom_components.saymon.const import (
    EVENT_INCIDENT,
    EVENT_STATE_CHANGED as SAYMON_STATE_CHANGED,
)
from tools.simulator import EVENT_INCIDENTS, EVENT_STATE_CHANGE

from . import storm as storms
from .env import (
    BASE_TOPIC,
    LineProcess,
    add_entry,
    home_assistant,
    mqtt_options,
    new_session,
    node_process,
    setup_and_settle,
    start_mosquitto,
    start_node_comet,
    start_probe,
    wait_until,
    work_dir,
)
from .report import Figure
from .storm import Storm

TRUTH_RATIO = 1.0
EVENT_RATIO = 0.5


async def _until(probe: LineProcess, done: Any, timeout: float = 240.0) -> dict[str, Any]:
    """Poll the probe until ``done(status)`` or nothing new arrived for 15 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    status = await probe.command("status")
    last, since = status["counts"]["total"], loop.time()
    while not done(status) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        status = await probe.command("status")
        if status["counts"]["total"] != last:
            last, since = status["counts"]["total"], loop.time()
        elif loop.time() - since > 15:
            break
    return status


async def _storm(
    node: Any,
    probe: LineProcess,
    storm: Storm,
    kind: str,
    expect: str | None,
    *,
    want_fn: Callable[[], Awaitable[int]] | None = None,
) -> dict[str, Any]:
    """Replay one storm; return rate (messages/s on the event topic) and time to truth.

    ``want_fn`` returns how many event messages to wait for once the storm was emitted
    (the integration publishes one per change it fired; a repeated identical incident
    update is no change); by default one per event.
    """
    body: dict[str, Any] = {"expect": expect} if expect else {}
    await probe.command(f"reset {json.dumps(body)}")
    result = await node.replay(storm.path)
    started = float(result["started_ms"])
    want = await want_fn() if want_fn is not None else storm.events

    def done(status: dict[str, Any]) -> bool:
        counts = status["counts"]
        if kind == "incidents":
            return int(counts["incident_event"]) >= want
        arrived = int(counts["object_event"]) or int(counts["state"])
        return arrived >= want and (expect is None or status["truth_ms"] is not None)

    status = await _until(probe, done)
    counts = status["counts"]
    got = int(counts["incident_event"] if kind == "incidents" else counts["object_event"])
    if kind != "incidents" and got == 0:
        got = int(counts["state"])  # the bridge: one retained state message per event
    last = status["last_event_ms"] or status["last_ms"]
    seconds = (float(last) - started) / 1000 if last else 0.0
    truth = status.get("truth_ms")
    return {
        "want": want,
        "source_rate": result["rate"],
        "received": got,
        "rate": got / seconds if seconds > 0 else None,
        "truth_s": (float(truth) - started) / 1000 if truth else None,
        "matched": status["matched"],
        "expected": status["expected"],
    }


async def run(params: dict[str, Any]) -> list[Figure]:
    """One storm size; ``params``: objects, events, scale."""
    objects = int(params.get("objects", 2000))
    events = int(params.get("events", 100_000))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure("4", name, value, unit, scale=scale, **kw))

    tmp = work_dir()
    from tools.simulator import SaymonSimulator

    sim = SaymonSimulator(objects=objects)
    await sim.start()
    node = await start_node_comet(sim)
    broker = await start_mosquitto(tmp)
    probe = await start_probe(broker.port)
    bridge: LineProcess | None = None
    ours: dict[str, dict[str, Any]] = {}
    theirs: dict[str, dict[str, Any]] = {}
    try:
        async with home_assistant() as hass:
            entry = await add_entry(
                hass, sim, comet_url=node.url, options=mqtt_options(broker.port)
            )
            hub = await setup_and_settle(hass, entry)
            mirror = hub.entry.runtime_data.mirror
            assert mirror is not None
            await wait_until(lambda: mirror.transport.connected, 10, "the mirror")
            await asyncio.sleep(1.0)  # the retained picture of the connect goes out first
            states = storms.record(
                sim, tmp / "states.ndjson", events=events, kinds=(EVENT_STATE_CHANGE,), seed=31
            )
            incidents = storms.record(
                sim, tmp / "incidents.ndjson", events=events, kinds=(EVENT_INCIDENTS,), seed=32
            )
            expect = tmp / "expect.json"
            expect.write_text(json.dumps(states.expected_topics(BASE_TOPIC)))

            def fired_after(event_type: str, storm: Storm) -> Callable[[], Awaitable[int]]:
                applied0 = sum(hub.comet.stats.events.values())
                fired0 = hub.bus.fired[event_type]

                async def want() -> int:
                    await wait_until(
                        lambda: sum(hub.comet.stats.events.values()) - applied0 >= storm.events,
                        240,
                        "every event applied",
                        progress=lambda: sum(hub.comet.stats.events.values()),
                    )
                    return hub.bus.fired[event_type] - fired0

                return want

            ours["states"] = await _storm(
                node,
                probe,
                states,
                "states",
                str(expect),
                want_fn=fired_after(SAYMON_STATE_CHANGED, states),
            )
            ours["incidents"] = await _storm(
                node,
                probe,
                incidents,
                "incidents",
                None,
                want_fn=fired_after(EVENT_INCIDENT, incidents),
            )
            dropped = hub.comet.stats.dropped
            overflow = int(mirror.transport.stats().get("dropped_overflow") or 0)
        bridge = node_process(
            "bridge.js",
            "--comet",
            node.url,
            "--session",
            new_session(sim),
            "--mqtt-port",
            str(broker.port),
            "--base",
            BASE_TOPIC,
        )
        await bridge.start()
        theirs["states"] = await _storm(node, probe, states, "states", str(expect))
        theirs["incidents"] = await _storm(node, probe, incidents, "incidents", None)
        published = await bridge.stop()
        bridge = None
    finally:
        if bridge is not None:
            await bridge.stop()
        await probe.stop()
        await broker.stop()
        await node.stop()
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    for kind, label in (("states", "state changes"), ("incidents", "incidents")):
        o, t = ours[kind], theirs[kind]
        fig(f"source emit rate, {label}", o["source_rate"], "events/s", note="Node socket.io 4.5.0")
        fig(
            f"Node bridge: Comet → MQTT, {label}",
            t["rate"],
            "msg/s",
            note=f"{t['received']:,} of {events:,} received",
        )
        fig(
            f"integration: Comet → MQTT event topic, {label}",
            o["rate"],
            "msg/s",
            note=f"{o['received']:,} of {o['want']:,} changes received",
        )
        fig(
            f"integration / bridge, {label}",
            o["rate"] / t["rate"] if o["rate"] and t["rate"] else None,
            "x",
            op="ge",
            limit=EVENT_RATIO,
        )
    o, t = ours["states"], theirs["states"]
    fig(
        "Node bridge: first event → all retained states final",
        t["truth_s"],
        "s",
        note=f"{t['matched']:,} of {t['expected']:,} topics",
    )
    fig(
        "integration: first event → all retained states final",
        o["truth_s"],
        "s",
        note=f"{o['matched']:,} of {o['expected']:,} topics",
    )
    fig(
        "bridge time / integration time to retained truth",
        t["truth_s"] / o["truth_s"] if o["truth_s"] and t["truth_s"] else None,
        "x",
        op="ge",
        limit=TRUTH_RATIO,
        note="≥ 1: the integration is no slower",
    )
    fig("events dropped by the integration's queue", dropped, op="eq", limit=0)
    fig(
        "MQTT messages dropped by the mirror's queue",
        overflow,
        op="eq",
        limit=0,
        note="queue of 100,000 messages (the option's default)",
    )
    if published:
        fig("Node bridge publish errors", published.get("errors"), op="info")
    return figures
