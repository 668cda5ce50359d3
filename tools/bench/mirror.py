"""Measurement 3: MQTT mirror throughput against a bare paho-mqtt publisher.

Home Assistant runs the integration with the mirror on a dedicated local Mosquitto. The hub's
changes are fed to the mirror the way live events reach it (state changes applied to the
model, handed to the mirror in ticks of 500, as the Comet worker does), and every message the
mirror hands to its broker client is recorded. Then a bare paho publisher in its own process
sends exactly those messages to the same broker. A Node subscriber counts what arrives: rate
= messages / (first publish → last message received), and nothing may be missing at QoS 1.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Any

from custom_components.saymon.mqtt.mirror import SaymonMirror
from tools.simulator import SaymonSimulator

from .env import (
    LineProcess,
    add_entry,
    epoch_ms,
    home_assistant,
    mqtt_options,
    python_process,
    setup_and_settle,
    start_mosquitto,
    start_probe,
    wait_until,
    work_dir,
)
from .report import Figure

TARGET_RATIO = 0.8
TICK = 500
QUEUE_HIGH = 50_000
STATES = ("3", "4", "5", "7", "8")


async def _wait_probe(probe: LineProcess, want: int, timeout: float = 120.0) -> dict[str, Any]:
    """Poll the probe until it counted ``want`` messages (or nothing new for 10 s)."""
    status = await probe.command("status")
    last, still = -1, 0.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while int(status["counts"]["total"]) < want and loop.time() < deadline:
        if status["counts"]["total"] == last:
            still += 0.05
            if still > 10:
                break
        else:
            last, still = status["counts"]["total"], 0.0
        await asyncio.sleep(0.05)
        status = await probe.command("status")
    return status


async def run(params: dict[str, Any]) -> list[Figure]:
    """One size; ``params``: objects, changes, scale."""
    objects = int(params.get("objects", 2000))
    changes = int(params.get("changes", 20_000))
    scale = str(params.get("scale", "1x"))
    figures: list[Figure] = []

    def fig(name: str, value: float | None, unit: str = "", **kw: Any) -> None:
        figures.append(Figure("3", name, value, unit, scale=scale, **kw))

    tmp = work_dir()
    sim = SaymonSimulator(objects=objects)
    await sim.start()
    broker = await start_mosquitto(tmp)
    probe = await start_probe(broker.port)
    bare: LineProcess | None = None
    try:
        async with home_assistant() as hass:
            entry = await add_entry(hass, sim, options=mqtt_options(broker.port))
            hub = await setup_and_settle(hass, entry)
            mirror: SaymonMirror | None = hub.entry.runtime_data.mirror
            assert mirror is not None
            await wait_until(lambda: mirror.transport.connected, 10, "the mirror")
            await hass.async_block_till_done()
            await asyncio.sleep(1.0)  # the retained picture of the connect goes out first
            await probe.command("reset {}")
            sent: list[tuple[str, str, int, bool]] = []
            transport = mirror.transport
            publish = transport.publish

            def recording(
                topic: str, payload: str | bytes, qos: int = 0, retain: bool = False
            ) -> bool:
                text = payload.decode() if isinstance(payload, bytes) else payload
                sent.append((topic, text, qos, retain))
                return publish(topic, payload, qos, retain)

            transport.publish = recording  # type: ignore[method-assign]
            ids = sorted(hub.objects_in_scope)
            started = epoch_ms()
            for index in range(changes):
                oid = ids[index % len(ids)]
                current = hub.model.state_of(oid)
                state = (
                    STATES[(STATES.index(current) + 1) % len(STATES)]
                    if current in STATES
                    else STATES[0]
                )
                change = hub.model.apply_state(oid, state)
                if change is not None:
                    mirror.on_changes([change], False)
                if index % TICK == TICK - 1:
                    await asyncio.sleep(0)
                    # Like a storm the mirror cannot keep up with, but without overflowing
                    # its queue (that would be loss, not throughput): wait while it is half
                    # full. The figure is the rate the mirror sustains.
                    while int(transport.stats().get("queued") or 0) > QUEUE_HIGH:
                        await asyncio.sleep(0.005)
            await asyncio.sleep(0)
            hub.coalescer.now()  # retained states still waiting for the storm interval
            transport.publish = publish  # type: ignore[method-assign]
            status = await _wait_probe(probe, len(sent))
            ours_s = (float(status["last_ms"] or started) - started) / 1000
            received = int(status["counts"]["total"])
            ours = received / ours_s if ours_s > 0 else None
            fig(
                "mirror → broker → subscriber",
                ours,
                "msg/s",
                note=f"{received:,} of {len(sent):,} messages QoS 1",
            )
            fig("mirror messages lost", len(sent) - received, op="eq", limit=0)
            stats = transport.stats()
            fig(
                "mirror queue overflow (dropped)",
                float(stats.get("dropped_overflow") or 0),
                op="eq",
                limit=0,
            )

        # The bare publisher, alone, the same messages.
        path = tmp / "messages.ndjson"
        path.write_text("".join(json.dumps(m) + "\n" for m in sent))
        await probe.command("reset {}")
        bare = python_process("tools.bench.bare_mqtt", str(broker.port), str(path))
        await bare.start()
        result = await bare.command("go", timeout=180)
        status = await _wait_probe(probe, len(sent))
        first = float(result["first_ms"])
        bare_s = (float(status["last_ms"] or first) - first) / 1000
        bare_rate = int(status["counts"]["total"]) / bare_s if bare_s > 0 else None
        fig(
            "bare paho publisher, same messages",
            bare_rate,
            "msg/s",
            note=f"{int(status['counts']['total']):,} received, CPU {result['cpu_s']:.1f} s",
        )
        fig(
            "mirror / bare paho",
            ours / bare_rate if ours and bare_rate else None,
            "x",
            op="ge",
            limit=TARGET_RATIO,
        )
    finally:
        if bare is not None:
            await bare.stop()
        await probe.stop()
        await broker.stop()
        await sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return figures
