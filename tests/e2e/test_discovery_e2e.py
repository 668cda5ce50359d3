"""End to end: a second Home Assistant discovers SAYMON's objects from the mirror on Mosquitto.

Two real ``hass`` processes share one real Mosquitto. The first runs the SAYMON integration
(against the simulator) with the MQTT mirror on a dedicated broker connection and discovery on
under ``homeassistant``; the second knows nothing of SAYMON: only Home Assistant's own MQTT
integration, set up through its config flow as a user does. Everything is observed through the
second one's REST and websocket APIs: the SAYMON objects appear there as devices with the right
entities, their states follow live changes in SAYMON, a removed object disappears, the mirror's
Last Will (the first process killed) makes them unavailable and its return available again,
and after the second process restarts its birth message brings everything back: the retained
configs are wiped while it is down, so only the republish on ``homeassistant/status`` can.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import SaymonSimulator
from tools.simulator.catalog import ENTITY_OBJECT, STATE_ALARM, STATE_WORKING

from .hass_process import HassClient, HassError, HassProcess, HassWebSocket, Owner, onboard
from .saymon_flows import FLOW, add_saymon_entry, enable_mqtt_mirror, wait_settled
from .stack import around_hass
from .test_e2e import LIVE, Observed, assert_log_clean

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

OWNER = Owner("E2E", "e2e", "e2e-password")
BASE_TOPIC = "saymon/e2e"
PREFIX = "homeassistant"
SLOW = 3 * LIVE
"""Starting or restarting a whole Home Assistant (and MQTT's reconnect) takes longer."""


@dataclass
class Discovered:
    """The MQTT devices and entities the second Home Assistant made of SAYMON's configs."""

    devices: dict[str, dict[str, Any]]
    """By node id (``saymon_<account>[_<object id>]``)."""
    entities: dict[str, str]
    """Entity id by unique id (``<node>_<component>``)."""

    @classmethod
    async def read(cls, ws: HassWebSocket, node_prefix: str) -> Discovered:
        devices = {
            identifier: device
            for device in await ws.command("config/device_registry/list")
            for domain, identifier in device["identifiers"]
            if domain == "mqtt" and identifier.startswith(node_prefix)
        }
        entities = {
            entity["unique_id"]: entity["entity_id"]
            for entity in await ws.command("config/entity_registry/list")
            if entity["platform"] == "mqtt" and entity["unique_id"].startswith(node_prefix)
        }
        return cls(devices, entities)


@contextlib.asynccontextmanager
async def watching(
    session: aiohttp.ClientSession, hass: HassProcess, token: str, observed: Observed
) -> AsyncIterator[HassWebSocket]:
    """A websocket into the second Home Assistant that keeps ``observed.states`` current."""
    ws = await HassWebSocket.connect(session, hass.url, token)
    try:
        await ws.subscribe_events("state_changed", observed.on_event)
        observed.states = {s["entity_id"]: s for s in await ws.command("get_states")}
        yield ws
    finally:
        await ws.close()


async def add_mqtt(client: HassClient, port: int) -> None:
    """Home Assistant's MQTT integration through its config flow (discovery on by default)."""
    result = await client.post(FLOW, {"handler": "mqtt", "show_advanced_options": False})
    if result.get("step_id") != "broker":
        raise HassError(f"unexpected MQTT flow step: {result}")
    form: dict[str, Any] = {"broker": "127.0.0.1", "port": port}
    for field in result.get("data_schema", []):
        if field.get("type") == "expandable":  # Home Assistant 2026: a collapsed form section,
            section: dict[str, Any] = {}  # sent with its defaults as the frontend does
            for inner in field["schema"]:
                suggested = (inner.get("description") or {}).get("suggested_value")
                if "default" in inner or suggested is not None:
                    section[inner["name"]] = inner.get("default", suggested)
            # What a user leaves as it is for a plain broker on this machine: no certificates.
            section.setdefault("set_client_cert", False)
            section.setdefault("set_ca_cert", "off")
            form[field["name"]] = section
    result = await client.post(f"{FLOW}/{result['flow_id']}", form)
    if result.get("type") != "create_entry":
        raise HassError(f"MQTT flow did not create an entry: {result}")


def _saved_with_discovery(hass: HassProcess) -> bool:
    """Whether Home Assistant has written the SAYMON entry with discovery on to its storage."""
    path = hass.config_dir / ".storage" / "core.config_entries"
    with contextlib.suppress(FileNotFoundError, ValueError):
        entries = json.loads(path.read_text())["data"]["entries"]
        return any(e["domain"] == "saymon" and e["options"].get("mqtt_discovery") for e in entries)
    return False


def mqtt_log_problems(hass: HassProcess) -> list[str]:
    """What the second Home Assistant's MQTT said about our configs or payloads."""
    markers = (
        "Invalid MQTT device discovery payload",
        "Unable to parse",
        "Ignoring invalid option",
        "Invalid state message",
        "Template variable",
        "Error rendering",
        "No matching payload",
    )
    return [
        line
        for line in hass.output_file.read_text(errors="replace").splitlines()
        if "homeassistant.components.mqtt" in line and any(marker in line for marker in markers)
    ]


async def test_second_home_assistant_discovers_saymon(tmp_path: Path) -> None:
    sim = SaymonSimulator(objects=6, seed=7)
    broker = MosquittoBroker(tmp_path / "mqtt")
    first = HassProcess(tmp_path / "first")
    second = HassProcess(tmp_path / "second", blueprints=False)
    async with around_hass(sim, broker, lambda port: Subscriber(port, "#"), first) as (
        mqtt,
        session,
    ):
        try:
            await _scenario(
                sim=sim, broker=broker, first=first, second=second, mqtt=mqtt, session=session
            )
        except BaseException:
            print(f"--- second Home Assistant's output ---\n{second.log_tail(200)}")
            raise
        finally:
            await second.stop()


async def _scenario(
    *,
    sim: SaymonSimulator,
    broker: MosquittoBroker,
    first: HassProcess,
    second: HassProcess,
    mqtt: Subscriber,
    session: aiohttp.ClientSession,
) -> None:
    model = sim.model
    await asyncio.gather(first.start(), second.start())
    token, token2 = await asyncio.gather(
        onboard(session, first.url, OWNER), onboard(session, second.url, OWNER)
    )
    client, client2 = HassClient(session, first.url, token), HassClient(session, second.url, token2)
    await asyncio.gather(client.wait_running(), client2.wait_running())
    await add_mqtt(client2, broker.port)

    # -- the first Home Assistant: SAYMON, mirrored with discovery ------------------------------
    entry = await add_saymon_entry(
        client,
        url=sim.rest_url,
        comet=str(sim.comet_port),
        username=sim.login,
        password=sim.password,
    )
    await wait_settled(client, entry["entry_id"])
    await enable_mqtt_mirror(
        client,
        entry["entry_id"],
        host=broker.host,
        port=broker.port,
        base_topic=BASE_TOPIC,
        discovery_prefix=PREFIX,
    )
    await wait_settled(client, entry["entry_id"])

    server = f"saymon_{sim.user_id}"
    nodes = {oid: f"{server}_{oid}" for oid in model.objects}
    observed = Observed()
    async with watching(session, second, token2, observed) as ws:
        # -- devices with the right entities appear in the second Home Assistant ---------------
        async def discovered() -> Discovered:
            return await Discovered.read(ws, server)

        found = await _until(
            discovered,
            lambda d: (
                len(d.devices) == len(model.objects) + 1 and len(d.entities) == 3 * len(nodes) + 2
            ),
            "every SAYMON device and entity discovered",
        )
        assert found.devices[server]["name"] == entry["title"]
        for oid, obj in model.objects.items():
            device = found.devices[nodes[oid]]
            assert device["name"] == obj.name
            assert device["manufacturer"] == "SAYMON"
            parent = found.devices[nodes[obj.parent_id[0]] if obj.parent_id else server]
            assert device["via_device_id"] == parent["id"]
        state_of = {oid: found.entities[f"{node}_state"] for oid, node in nodes.items()}
        problem_of = {oid: found.entities[f"{node}_problem"] for oid, node in nodes.items()}
        count_of = {oid: found.entities[f"{node}_active_incidents"] for oid, node in nodes.items()}
        total = found.entities[f"{server}_active_incidents"]
        connection = found.entities[f"{server}_connection"]

        def picture() -> bool:
            """Every object (still in SAYMON) and the total as SAYMON has them, available."""
            return observed.state(total) == str(len(model.incidents.active)) and all(
                observed.state(state_of[oid]) == model.states[obj.state_id]["name"]
                and observed.state(problem_of[oid])
                == ("on" if model.incidents.open_for((ENTITY_OBJECT, oid)) else "off")
                for oid, obj in model.objects.items()
            )

        await wait_for(picture, SLOW, "the SAYMON picture in the second Home Assistant")
        assert observed.state(connection) == "on"
        options = observed.states[state_of[next(iter(nodes))]]["attributes"]["options"]
        assert {"Working", "Alarm"} <= set(options)

        # -- live changes follow -----------------------------------------------------------------
        leaf = next(o for o in model.objects.values() if o.id != model.root_id and not o.child_ids)
        target = next(
            oid
            for oid, obj in model.objects.items()
            if obj.state_id == STATE_WORKING and oid not in {leaf.id, model.root_id}
        )
        before = int(observed.state(total) or 0)
        await sim.set_state(target, STATE_ALARM)
        await wait_for(
            lambda: (
                observed.state(state_of[target]) == "Alarm"
                and observed.state(problem_of[target]) == "on"
                and observed.state(count_of[target]) == "1"
                and observed.state(total) == str(before + 1)
            ),
            LIVE,
            "the Alarm in the second Home Assistant",
        )
        await sim.set_state(target, STATE_WORKING)
        await wait_for(
            lambda: (
                observed.state(problem_of[target]) == "off"
                and observed.state(state_of[target]) == "Working"
            ),
            LIVE,
            "back to Working",
        )

        # -- a removed object disappears -----------------------------------------------------------
        await sim.delete_object(leaf.id)
        await _until(
            discovered,
            lambda d: (
                nodes[leaf.id] not in d.devices and f"{nodes[leaf.id]}_state" not in d.entities
            ),
            "the removed object's device gone",
        )
        await wait_for(lambda: state_of[leaf.id] not in observed.states, LIVE, "its entities gone")
        live = [oid for oid in nodes if oid != leaf.id]

        # -- the mirror's Last Will: everything unavailable, then back -----------------------------
        # (Home Assistant writes its config entries a moment after a change: a crash before
        # that would lose the entry itself, which is not what this test is about.)
        await wait_for(
            lambda: _saved_with_discovery(first), SLOW, "the first Home Assistant's entries on disk"
        )
        await first.kill()
        await wait_for(
            lambda: (
                all(observed.state(state_of[oid]) == "unavailable" for oid in live)
                and observed.state(total) == "unavailable"
                and observed.state(connection) == "unavailable"
            ),
            LIVE,
            "unavailable after the first Home Assistant died",
        )
        await mqtt.wait_for(
            lambda: mqtt.retained(f"{BASE_TOPIC}/status") == b"offline", LIVE, "the Last Will"
        )
        await first.start()
        await client.wait_running()
        await wait_for(
            lambda: picture() and observed.state(connection) == "on",
            SLOW,
            "available again after the first Home Assistant returned",
        )

    # -- the second Home Assistant restarts; only its birth message can bring the devices back ---
    assert await second.stop() == 0
    configs = sorted({m.topic for m in mqtt.messages if m.topic.startswith(f"{PREFIX}/device/")})
    for topic in configs:
        mqtt.publish(topic, b"", retain=True)  # wiped, as by a broker that lost its store
    await mqtt.wait_for(
        lambda: all(mqtt.payloads(topic)[-1:] == [b""] for topic in configs),
        LIVE,
        "retained configs wiped",
    )
    wiped = len(mqtt.messages)
    await second.start()
    await client2.wait_running()
    await mqtt.wait_for(
        lambda: any(
            m.topic.startswith(f"{PREFIX}/device/") and m.payload for m in mqtt.messages[wiped:]
        ),
        SLOW,
        "configs republished after the birth message",
    )
    births = [
        i
        for i, m in enumerate(mqtt.messages)
        if i >= wiped and m.topic == f"{PREFIX}/status" and m.payload == b"online"
    ]
    republished = [
        i
        for i, m in enumerate(mqtt.messages)
        if i >= wiped and m.topic.startswith(f"{PREFIX}/device/") and m.payload
    ]
    assert births
    assert births[0] < republished[0]
    observed = Observed()
    async with watching(session, second, token2, observed) as ws:
        await wait_for(
            lambda: (
                picture()
                and not any(
                    observed.states[state_of[oid]]["attributes"].get("restored") for oid in live
                )
                and observed.state(connection) == "on"
            ),
            SLOW,
            "devices back with live states after the restart",
        )
        back = await Discovered.read(ws, server)
        assert set(back.devices) == {server} | {nodes[oid] for oid in live}
    assert mqtt_log_problems(second) == []
    assert_log_clean(first)


async def _until[T](
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str, timeout: float = SLOW
) -> T:
    """Fetch until ``done`` accepts the value; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {value!r}")
        await asyncio.sleep(0.1)
