"""End to end: a real ``hass`` process with the integration, the simulator and Mosquitto.

Everything is done the way a user (or the frontend) does it, through Home Assistant's own REST
and websocket APIs only: onboarding, the config flow, the MQTT mirror options flow, automations
made from this repository's blueprints, actions, a restart and the removal of the entry. What
happens is observed in entity states, bus events, MQTT messages and the simulator itself.

One Home Assistant configuration lives through two processes (before and after the restart),
which keeps the test around half a minute: starting ``hass`` is the expensive part.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
import time
from typing import Any

import aiohttp
import pytest

from tests.deprecations import names_us
from tests.mqtt_schema import validate
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import SaymonSimulator
from tools.simulator.catalog import (
    ENTITY_OBJECT,
    STATE_ALARM,
    STATE_NO_DATA,
    STATE_OVERLOADED,
    STATE_WORKING,
)

from .hass_process import HassClient, HassProcess, HassWebSocket, Owner, onboard
from .saymon_flows import add_saymon_entry, enable_mqtt_mirror, saymon_entries, wait_settled
from .stack import around_hass

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

OWNER = Owner("E2E", "e2e", "e2e-password")
BASE_TOPIC = "saymon/e2e"
NOTIFIED_EVENT = "saymon_e2e_notified"
LIVE = 10.0
"""Seconds within which a change in SAYMON must show in Home Assistant (and on MQTT)."""

PACKAGE = """\
input_boolean:
  e2e_light_power:
    name: E2E light power
input_button:
  e2e_acknowledge:
    name: E2E acknowledge
template:
  - light:
      - name: E2E light
        unique_id: e2e_light
        state: "{{ is_state('input_boolean.e2e_light_power', 'on') }}"
        turn_on:
          - action: input_boolean.turn_on
            target:
              entity_id: input_boolean.e2e_light_power
        turn_off:
          - action: input_boolean.turn_off
            target:
              entity_id: input_boolean.e2e_light_power
"""
LIGHT = "light.e2e_light"
BUTTON = "input_button.e2e_acknowledge"


@dataclass
class Observed:
    """What the test sees of Home Assistant: live states and the bus events it asked for."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    light_on: int = 0

    def on_event(self, event: dict[str, Any]) -> None:
        if event["event_type"] == "state_changed":
            data = event["data"]
            new = data.get("new_state")
            if new is None:
                self.states.pop(data["entity_id"], None)
            else:
                self.states[data["entity_id"]] = new
                old = data.get("old_state") or {}
                if data["entity_id"] == LIGHT and new["state"] == "on" != old.get("state"):
                    self.light_on += 1
        else:
            self.events.append(event)

    def state(self, entity_id: str) -> str | None:
        found = self.states.get(entity_id)
        return None if found is None else str(found["state"])

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["event_type"] == event_type]


@dataclass
class Registry:
    """The SAYMON part of the device and entity registries."""

    devices: list[dict[str, Any]]
    entities: list[dict[str, Any]]

    @classmethod
    async def read(cls, ws: HassWebSocket) -> Registry:
        devices = await ws.command("config/device_registry/list")
        entities = await ws.command("config/entity_registry/list")
        return cls(
            [d for d in devices if any(i[0] == "saymon" for i in d["identifiers"])],
            [e for e in entities if e["platform"] == "saymon"],
        )

    def entity(self, unique_id: str) -> str:
        matches = [e["entity_id"] for e in self.entities if e["unique_id"] == unique_id]
        assert len(matches) == 1, f"{len(matches)} entities with unique id {unique_id}"
        return str(matches[0])

    def snapshot(self) -> tuple[set[str], set[str], set[str]]:
        """Device ids, entity ids and unique ids (a duplicate would change a count)."""
        return (
            {d["id"] for d in self.devices},
            {e["entity_id"] for e in self.entities},
            {e["unique_id"] for e in self.entities},
        )


@contextlib.asynccontextmanager
async def connected(
    session: aiohttp.ClientSession, hass: HassProcess, token: str, observed: Observed
) -> AsyncIterator[HassWebSocket]:
    """A websocket that keeps ``observed`` current (states and the events the test watches)."""
    ws = await HassWebSocket.connect(session, hass.url, token)
    try:
        for event_type in (
            "state_changed",
            "saymon_incident",
            "saymon_state_changed",
            NOTIFIED_EVENT,
        ):
            await ws.subscribe_events(event_type, observed.on_event)
        observed.states = {s["entity_id"]: s for s in await ws.command("get_states")}
        yield ws
    finally:
        await ws.close()


async def eventually(
    predicate: Callable[[], bool], what: str, show: Callable[[], object] | None = None
) -> None:
    """Wait up to :data:`LIVE` s for ``predicate``; on timeout also report ``show()``."""
    try:
        await wait_for(predicate, LIVE, what)
    except AssertionError as err:
        if show is None:
            raise
        raise AssertionError(f"{err}; seen: {show()!r}") from None


async def poll[T](fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], what: str) -> T:
    """Fetch until ``done`` accepts the value (up to :data:`LIVE` s); return that value."""
    deadline = time.monotonic() + LIVE
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {LIVE} s waiting for {what}; last: {value!r}")
        await asyncio.sleep(0.05)


def mqtt_json(subscriber: Subscriber, topic: str) -> list[Any]:
    """Every payload on ``topic``, decoded and validated against the mirror's JSON Schema."""
    return [validate(topic, payload) for payload in subscriber.payloads(topic)]


async def automation(client: HassClient, key: str, blueprint: str, inputs: dict[str, Any]) -> None:
    """Create an automation from one of our blueprints through the config API."""
    await client.post(
        f"/api/config/automation/config/{key}",
        {
            "alias": f"E2E {key}",
            "description": "",
            "use_blueprint": {"path": f"saymon/{blueprint}", "input": inputs},
        },
    )


def assert_log_clean(hass: HassProcess) -> None:
    """Our integration logged no error, traceback or deprecation, and no dispatcher misuse."""
    text = hass.output_file.read_text(errors="replace")
    problems = [
        line
        for line in text.splitlines()
        if (" ERROR " in line and "custom_components.saymon" in line)
        or "custom_components/saymon/" in line
        or names_us(line)  # Home Assistant's deprecation reports (tests/deprecations.py)
        or "Unable to remove unknown dispatcher" in line
        or ("blueprint" in line.lower() and " ERROR " in line)
        or ("automation" in line and " ERROR " in line)
    ]
    assert not problems, "\n".join(problems)


async def test_end_to_end(tmp_path: Path) -> None:
    sim = SaymonSimulator(objects=12, seed=1)
    broker = MosquittoBroker(tmp_path / "mqtt")
    hass = HassProcess(tmp_path / "config", packages={"e2e": PACKAGE})
    topics = f"{BASE_TOPIC}/#"
    async with around_hass(sim, broker, lambda port: Subscriber(port, topics), hass) as (
        subscriber,
        session,
    ):
        await _scenario(sim, broker, hass, subscriber, session)


async def _scenario(
    sim: SaymonSimulator,
    broker: MosquittoBroker,
    hass: HassProcess,
    mqtt: Subscriber,
    session: aiohttp.ClientSession,
) -> None:
    model = sim.model
    await hass.start()
    token = await onboard(session, hass.url, OWNER)
    client = HassClient(session, hass.url, token)
    await client.wait_running()
    observed = Observed()

    async with connected(session, hass, token, observed) as ws:
        # -- the config flow, as the frontend posts it --------------------------------------
        entry = await add_saymon_entry(
            client,
            url=sim.rest_url,
            comet=str(sim.comet_port),
            username=sim.login,
            password=sim.password,
        )
        entry_id = entry["entry_id"]
        assert entry["state"] == "loaded"
        await wait_settled(client, entry_id)
        # the flow's own check logged out again: only the entry's session is left
        assert sim.accounts.sessions.keys() == {s.session_id for s in sim.sockets()}

        # -- the MQTT mirror, through the options flow ---------------------------------------
        await enable_mqtt_mirror(
            client, entry_id, host=broker.host, port=broker.port, base_topic=BASE_TOPIC
        )
        await mqtt.wait_for(
            lambda: mqtt.retained(f"{BASE_TOPIC}/status") == b"online", LIVE, "mirror online"
        )

        # the options change reloads the entry
        diagnostics = await wait_settled(client, entry_id)
        assert diagnostics["mqtt"] is not None

        # -- devices and entities -------------------------------------------------------------
        registry = await Registry.read(ws)
        server_key = sim.user_id  # the SAYMON account, never the address
        object_devices = [
            d for d in registry.devices if ["saymon", server_key] not in d["identifiers"]
        ]
        (server_device,) = [d for d in registry.devices if d not in object_devices]
        (entry,) = await saymon_entries(client)
        assert (
            server_device["name"]
            == entry["title"]
            == "SAYMON " + sim.rest_url.removeprefix("http://")
        )
        assert len(registry.devices) == len(model.objects) + 1, [
            d["name"] for d in registry.devices
        ]
        assert {d["name"] for d in object_devices} >= {o.name for o in model.objects.values()}
        state_of = {
            oid: registry.entity(f"{server_key}|object|{oid}|state") for oid in model.objects
        }
        problem_of = {
            oid: registry.entity(f"{server_key}|object|{oid}|problem") for oid in model.objects
        }
        active = registry.entity(f"{server_key}|active_incidents")
        alarms = registry.entity(f"{server_key}|incidents_level_1")
        connectivity = registry.entity(f"{server_key}|connectivity")
        # the seeded model starts with one Alarm incident (its object is in state Alarm)
        (initial,) = model.incidents.active.values()
        keys = {STATE_WORKING: "working", STATE_ALARM: "alarm"}
        await wait_for(
            lambda: (
                observed.state(active) == "1"
                and observed.state(alarms) == "1"
                and observed.state(connectivity) == "on"
                and all(
                    observed.state(state_of[oid]) == keys[obj.state_id]
                    for oid, obj in model.objects.items()
                )
                and observed.state(problem_of[initial.entity_id]) == "on"
            ),
            LIVE,
            "the initial picture",
        )
        await mqtt.wait_for(
            lambda: (
                mqtt.retained(f"{BASE_TOPIC}/incidents/count") == b"1"
                and all(mqtt.retained(f"{BASE_TOPIC}/objects/{oid}/state") for oid in model.objects)
            ),
            LIVE,
            "the retained picture",
        )

        # -- closing an incident in SAYMON ----------------------------------------------------
        await sim.set_state(initial.entity_id, STATE_WORKING)
        await eventually(
            lambda: (
                observed.state(active) == "0"
                and observed.state(problem_of[initial.entity_id]) == "off"
                and any(
                    e["type"] == "closed" and e["incident_id"] == initial.id
                    for e in observed.of_type("saymon_incident")
                )
            ),
            "the initial incident closed",
            lambda: (observed.state(active), observed.of_type("saymon_incident")),
        )

        # -- automations from the blueprints ----------------------------------------------------
        await automation(
            client,
            "notify_alarm",
            "notify_incident.yaml",
            {
                "minimum_level": "alarm",
                "notify_action": [
                    {
                        "event": NOTIFIED_EVENT,
                        "event_data": {
                            "object_name": "{{ object_name }}",
                            "text": "{{ text }}",
                            "level": "{{ level }}",
                            "incident_id": "{{ incident_id }}",
                        },
                    }
                ],
            },
        )
        await automation(client, "notify_default", "notify_incident.yaml", {"server": entry_id})
        await automation(
            client,
            "flash",
            "flash_light_on_alarm.yaml",
            {"incident_sensor": alarms, "light": LIGHT, "on_time": 0.2, "off_time": 0.2},
        )
        await automation(client, "acknowledge", "acknowledge_with_button.yaml", {"button": BUTTON})
        automations = [
            f"automation.e2e_{key}"
            for key in ("notify_alarm", "notify_default", "flash", "acknowledge")
        ]
        await wait_for(
            lambda: all(observed.state(a) == "on" for a in automations), LIVE, "automations on"
        )
        assert observed.state(LIGHT) == "off"

        # -- an Alarm in SAYMON: entities, events, MQTT, all four automations -------------------
        objects = [oid for oid in model.objects if oid != model.root_id]
        first, second = objects[-1], objects[-2]
        await sim.set_state(first, STATE_ALARM)
        incident = model.incidents.open_for((ENTITY_OBJECT, first))
        assert incident is not None
        await wait_for(
            lambda: (
                observed.state(state_of[first]) == "alarm"
                and observed.state(problem_of[first]) == "on"
                and observed.state(alarms) == "1"
                and any(
                    e["type"] == "opened"
                    and e["incident_id"] == incident.id
                    and e["level"] == "Alarm"
                    and e["object_name"] == model.objects[first].name
                    and e["device_id"] in {d["id"] for d in object_devices}
                    and e["replayed"] is False
                    for e in observed.of_type("saymon_incident")
                )
                and any(
                    e["object_id"] == first and e["new_state"] == "Alarm"
                    for e in observed.of_type("saymon_state_changed")
                )
            ),
            LIVE,
            "the Alarm in entities and bus events",
        )
        await mqtt.wait_for(
            lambda: (
                any(
                    m["type"] == "opened" and m["incident"]["id"] == incident.id
                    for m in mqtt_json(mqtt, f"{BASE_TOPIC}/incidents/event")
                )
                and mqtt.retained(f"{BASE_TOPIC}/incidents/count/1") == b"1"
                and json.loads(mqtt.retained(f"{BASE_TOPIC}/objects/{first}/state") or b"{}").get(
                    "state_id"
                )
                == str(STATE_ALARM)
            ),
            LIVE,
            "the Alarm on MQTT",
        )
        assert [m["new_state"] for m in mqtt_json(mqtt, f"{BASE_TOPIC}/objects/{first}/event")] == [
            "Alarm"
        ]
        # blueprint: notify at or above Alarm, with the object and the text
        await wait_for(
            lambda: any(e["incident_id"] == incident.id for e in observed.of_type(NOTIFIED_EVENT)),
            LIVE,
            "the notify blueprint's action",
        )
        (notified,) = observed.of_type(NOTIFIED_EVENT)
        assert notified == {
            "object_name": model.objects[first].name,
            "text": incident.text,
            "level": "Alarm",
            "incident_id": incident.id,
        }

        # blueprint with its default action: a persistent notification
        async def notifications() -> dict[str, Any]:
            found: dict[str, Any] = {
                n["notification_id"]: n for n in await ws.command("persistent_notification/get")
            }
            return found

        note = (
            await poll(
                notifications, lambda found: f"saymon_{incident.id}" in found, "a notification"
            )
        )[f"saymon_{incident.id}"]
        assert note["title"] == f"SAYMON Alarm: {model.objects[first].name}"
        assert note["message"] == incident.text
        # blueprint: the light flashes while the Alarm is open
        await wait_for(lambda: observed.light_on >= 2, LIVE, "the light flashing")

        # -- the acknowledge action, through REST ------------------------------------------------
        await client.call_service("saymon", "acknowledge_incident", {"incident_id": incident.id})
        assert incident.acknowledged_by == sim.user_id
        await wait_for(
            lambda: any(
                e["type"] == "updated"
                and e["incident_id"] == incident.id
                and e["acknowledged_by"] == sim.user_id
                for e in observed.of_type("saymon_incident")
            ),
            LIVE,
            "the acknowledgement coming back from SAYMON",
        )

        # -- a Warning: below the first automation's minimum; acknowledged by the button --------
        await sim.set_state(second, STATE_OVERLOADED)
        warning = model.incidents.open_for((ENTITY_OBJECT, second))
        assert warning is not None
        found = await poll(
            notifications, lambda found: f"saymon_{warning.id}" in found, "a notification"
        )
        assert found[f"saymon_{warning.id}"]["title"] == (
            f"SAYMON Warning: {model.objects[second].name}"
        )
        await client.call_service("input_button", "press", {"entity_id": BUTTON})
        await wait_for(
            lambda: (
                warning.acknowledged_by == sim.user_id
                and any(
                    e["type"] == "updated"
                    and e["incident_id"] == warning.id
                    and e["acknowledged_by"] == sim.user_id
                    for e in observed.of_type("saymon_incident")
                )
            ),
            LIVE,
            "the button's acknowledgement",
        )
        result = await client.call_service("saymon", "get_incidents", return_response=True)
        assert {
            i["incident_id"]: i["acknowledged_by"] for i in result["service_response"]["incidents"]
        } == {
            incident.id: sim.user_id,
            warning.id: sim.user_id,
        }

        # -- closing both: counts back to 0, the light back off, the flashing stops -------------
        await sim.set_state(first, STATE_WORKING)
        await sim.set_state(second, STATE_WORKING)
        await wait_for(
            lambda: (
                observed.state(active) == "0"
                and observed.state(alarms) == "0"
                and observed.state(state_of[first]) == "working"
                and observed.states["automation.e2e_flash"]["attributes"].get("current") == 0
                and observed.state(LIGHT) == "off"
            ),
            LIVE,
            "incidents closed and the light restored",
        )
        await mqtt.wait_for(
            lambda: (
                mqtt.retained(f"{BASE_TOPIC}/incidents/count") == b"0"
                and any(
                    m["type"] == "closed" and m["incident"]["id"] == incident.id
                    for m in mqtt_json(mqtt, f"{BASE_TOPIC}/incidents/event")
                )
            ),
            LIVE,
            "the closed incident on MQTT",
        )
        assert [e["incident_id"] for e in observed.of_type(NOTIFIED_EVENT)] == [incident.id]
        before = registry.snapshot()
        # nothing ever ran twice for one change
        opened = [
            e["incident_id"] for e in observed.of_type("saymon_incident") if e["type"] == "opened"
        ]
        assert sorted(opened) == sorted([incident.id, warning.id])

    # -- restart Home Assistant: same entities, no duplicates -----------------------------------
    # Home Assistant unloads no entry when it stops; the integration closes Comet and logs out
    # on the stop event itself, so a restart leaves no SAYMON session behind.
    (session_before_restart,) = {s.session_id for s in sim.sockets()}
    assert session_before_restart in sim.accounts.sessions
    assert await hass.stop() == 0
    assert sim.sockets() == [], "Comet still connected after Home Assistant stopped"
    assert session_before_restart not in sim.accounts.sessions, "stopping did not log out"
    await hass.start()
    await client.wait_running()
    observed = Observed()
    async with connected(session, hass, token, observed) as ws:
        await wait_settled(client, entry_id)
        await wait_for(lambda: len(sim.sockets()) == 1, LIVE, "one Comet socket")
        (current_session,) = {s.session_id for s in sim.sockets()}
        assert current_session != session_before_restart
        after = await Registry.read(ws)
        assert after.snapshot() == before
        assert len(after.entities) == len({e["unique_id"] for e in after.entities})
        assert not [e for e in after.snapshot()[1] if re.search(r"_2$", e) and e not in before[1]]
        await wait_for(
            lambda: (
                observed.state(active) == "0"
                and all(observed.state(state_of[oid]) == "working" for oid in model.objects)
                and all(observed.state(a) == "on" for a in automations)
            ),
            LIVE,
            "entities back after the restart",
        )
        # still live after the restart
        await sim.set_state(first, STATE_NO_DATA)
        await wait_for(
            lambda: observed.state(state_of[first]) == "no_data" and observed.state(active) == "1",
            LIVE,
            "a live change after the restart",
        )

        # -- removing the entry leaves nothing behind -------------------------------------------
        await client.delete(f"/api/config/config_entries/entry/{entry_id}")
        gone = await Registry.read(ws)
        assert gone.devices == []
        assert gone.entities == []
        assert await saymon_entries(client) == []
        await wait_for(
            lambda: not any(e in observed.states for e in before[1]), LIVE, "entities removed"
        )
        await wait_for(lambda: sim.sockets() == [], LIVE, "Comet socket closed")
        assert current_session not in sim.accounts.sessions, "the session was not logged out"
        assert sim.accounts.sessions == {}, "a SAYMON session outlived the entry"
        await mqtt.wait_for(
            lambda: mqtt.retained(f"{BASE_TOPIC}/status") == b"offline", LIVE, "mirror offline"
        )
    assert await hass.stop() == 0
    assert_log_clean(hass)
