"""A real Home Assistant process restarted in the middle of a fault (long form only).

``tests/e2e/hass_process.py`` runs a real ``hass``; SAYMON is added through the config flow and
the MQTT mirror through the options flow, as the UI does. During an incident storm Comet dies,
then Home Assistant is stopped (SIGTERM) and started again while Comet is still away; Comet
comes back. The check is the suite's: entity states (REST API) and retained topics equal the
simulator's truth, and every incident change appears exactly once on the mirror's
``incidents/event`` topic (a persistent subscriber outside Home Assistant sees both processes),
apart from what happened while no integration could see it. Home Assistant's log holds no error
of the integration. About a minute, so CI's short form leaves it out
(``SAYMON_CHAOS_REAL_RESTART=1`` forces it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
import json
import os
from pathlib import Path
import time
from typing import Any

import aiohttp
import pytest

from custom_components.saymon.states import BUILTIN_STATE_KEYS
from tests.e2e.hass_process import HassClient, HassProcess, HassWebSocket, Owner, onboard
from tests.e2e.saymon_flows import add_saymon_entry, enable_mqtt_mirror, wait_settled
from tests.e2e.stack import around_hass
from tools.mosquitto import MosquittoBroker, Received, Subscriber
from tools.simulator import SaymonSimulator

from . import report
from .ledger import HA_DOWN, BusLedger, SimIncidentLog, Window, compare
from .rig import STORM_KINDS, poll, topic_level
from .settings import LONG, OUTAGE_SECONDS, STORM_RATE

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        not LONG and os.environ.get("SAYMON_CHAOS_REAL_RESTART") != "1",
        reason="about a minute: long form only (scripts/chaos)",
    ),
]

BASE = "chaos/real"
OWNER = Owner("Chaos", "chaos", "chaos-password")


class Timed(Subscriber):
    """A subscriber that also notes when each message arrived (for the ledger)."""

    def __init__(self, port: int, topic_filter: str) -> None:
        super().__init__(port, topic_filter)
        self.arrived: list[float] = []
        inner = self._on_message

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            self.arrived.append(time.monotonic())
            inner(client, userdata, message)

        self._client.on_message = on_message


async def entity_ids(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, str]:
    ws = await HassWebSocket.connect(session, url, token)
    try:
        entities = await ws.command("config/entity_registry/list")
    finally:
        await ws.close()
    return {e["unique_id"]: e["entity_id"] for e in entities if e["platform"] == "saymon"}


def truth_diff(sim: SaymonSimulator, states: dict[str, str], ids: dict[str, str]) -> list[str]:
    key = sim.user_id  # entities are keyed on the SAYMON account, not the address
    active = sim.model.incidents.active
    with_incident = {i.entity_id for i in active.values() if i.entity_type == 1}
    diff = []
    if states.get(ids.get(f"{key}|active_incidents", "")) != str(len(active)):
        diff.append("active incidents")
    for obj in sim.model.objects.values():
        state = states.get(ids.get(f"{key}|object|{obj.id}|state", ""))
        if state != BUILTIN_STATE_KEYS.get(str(obj.state_id)):
            diff.append(f"state of {obj.id}: {state}")
        problem = states.get(ids.get(f"{key}|object|{obj.id}|problem", ""))
        if problem != ("on" if obj.id in with_incident else "off"):
            diff.append(f"problem of {obj.id}: {problem}")
    return diff


def retained_diff(sim: SaymonSimulator, subscriber: Subscriber) -> list[str]:
    diff = []
    count = subscriber.retained(f"{BASE}/incidents/count")
    if count != str(len(sim.model.incidents.active)).encode():
        diff.append(f"count {count!r}")
    for obj in sim.model.objects.values():
        payload = subscriber.retained(f"{BASE}/objects/{topic_level(obj.id)}/state")
        if payload is None or json.loads(payload)["state_id"] != str(obj.state_id):
            diff.append(f"retained state of {obj.id}")
    return diff


async def quiet(subscriber: Subscriber, seconds: float = 1.0) -> None:
    """Wait until no message arrived for ``seconds``."""
    count = -1
    while count != len(subscriber.messages):
        count = len(subscriber.messages)
        await asyncio.sleep(seconds)


def feed(ledger: BusLedger, messages: list[Received], arrived: list[float]) -> None:
    for message, at in zip(messages, arrived, strict=False):
        if message.topic == f"{BASE}/incidents/event":
            event = json.loads(message.payload)
            ledger.add(event["type"], event["incident"]["id"], event["replayed"], at)


async def test_real_home_assistant_restart(tmp_path: Path) -> None:
    sim = SaymonSimulator(objects=20, seed=13)
    broker = MosquittoBroker(tmp_path / "mqtt")
    hass = HassProcess(tmp_path / "config")
    topics = f"{BASE}/#"
    async with around_hass(sim, broker, lambda port: Timed(port, topics), hass, log_lines=150) as (
        events,
        session,
    ):
        await scenario(sim, broker, hass, events, session)


async def scenario(
    sim: SaymonSimulator,
    broker: MosquittoBroker,
    hass: HassProcess,
    events: Timed,
    session: aiohttp.ClientSession,
) -> None:
    await hass.start()
    token = await onboard(session, hass.url, OWNER)
    client = HassClient(session, hass.url, token)
    await client.wait_running()
    entry = await add_saymon_entry(
        client,
        url=sim.rest_url,
        comet=str(sim.comet_port),
        username=sim.login,
        password=sim.password,
    )
    entry_id = entry["entry_id"]
    await enable_mqtt_mirror(client, entry_id, host=broker.host, port=broker.port, base_topic=BASE)
    await wait_settled(client, entry_id)
    sim_log = SimIncidentLog(sim)
    baselines = [(time.monotonic(), set(sim.model.incidents.active))]
    window = Window(HA_DOWN, time.monotonic())
    storm = asyncio.create_task(
        sim.storm(int((OUTAGE_SECONDS + 30) * STORM_RATE / 4), STORM_RATE / 4, kinds=STORM_KINDS)
    )
    await asyncio.sleep(1.0)
    window.start = time.monotonic()  # the running Home Assistant goes blind here
    await sim.stop_comet()
    await hass.restart()  # SIGTERM (the integration logs out, the mirror says offline), start
    await client.wait_running()
    comet_back = time.monotonic()
    await sim.start_comet()
    await wait_settled(client, entry_id, timeout=60)
    window.end = time.monotonic()
    baselines.append((window.end, set(sim.model.incidents.active)))
    await storm
    ids = await entity_ids(session, hass.url, token)

    diff: list[str] = []

    async def states() -> dict[str, str]:
        return {s["entity_id"]: s["state"] for s in await client.states()}

    deadline = time.monotonic() + 60
    while True:
        diff = truth_diff(sim, await states(), ids)
        if not diff or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    recovered = time.monotonic() - comet_back
    fresh = Subscriber(broker.port, f"{BASE}/#")
    await fresh.start()
    try:
        await poll(lambda: not retained_diff(sim, fresh), 30)
        diff += retained_diff(sim, fresh)
    finally:
        await fresh.close()
    sim_log.detach()
    ledger = BusLedger(None)
    await quiet(events)  # the last QoS 1 event messages of the storm arrive
    feed(ledger, list(events.messages), list(events.arrived))
    verdict = compare(sim_log, ledger, baselines, [window])
    log = hass.output_file.read_text(errors="replace")
    errors = [line for line in log.splitlines() if " ERROR " in line and "saymon" in line]
    statuses = Counter(m.payload for m in events.messages if m.topic == f"{BASE}/status")
    report.record(
        "faults",
        {
            "fault": "real Home Assistant restart",
            "tried": "a real hass stopped and started while Comet was dead, mid-storm",
            "live": verdict.live,
            "replayed": verdict.replayed,
            "duplicates": verdict.duplicates,
            "missing": verdict.missing + verdict.phantoms,
            "unrecoverable": verdict.unrecoverable,
            "recover_s": round(recovered, 2),
            "truth_equal": not diff and not errors,
            "notes": "tests/e2e/hass_process.py; changes while Home Assistant could not see "
            "them are in the final picture, not fired",
            "problems": [*diff[:10], *errors[:5], *verdict.problems],
        },
    )
    assert not diff, diff[:20]
    assert not errors, errors[:5]
    assert verdict.ok, verdict.problems
    assert statuses[b"offline"] >= 1  # the stopping process said so (its Last Will or stop)
