"""The logbook as a user reads it: one line per happening, with a name, an icon and a link.

Home Assistant's real recorder (SQLite in memory) and logbook are loaded, and the lines are
read through the websocket command the Logbook panel, a device page and an entity's more-info
dialog use (``logbook/get_events``), after real changes in the SAYMON simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.saymon.const import DOMAIN, EVENT_INCIDENT
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import CLASS_HOST, STATE_ALARM, STATE_WORKING, SaymonSimulator

from .common import serving, setup_entry

type Lines = list[dict[str, Any]]


@pytest.fixture
async def mock_recorder_before_hass(async_setup_recorder_instance: Any) -> None:
    """Prepare the recorder's database before ``hass`` exists (the fixture requires it)."""


@pytest.fixture
async def logbook(recorder_mock: Any, hass: HomeAssistant, tmp_path: Path) -> None:
    """The real logbook; its frontend dependency is served from an empty folder."""
    frontend = tmp_path / "hass_frontend"
    for folder in ("static", "frontend_latest", "frontend_es5"):
        (frontend / folder).mkdir(parents=True)
    assert await async_setup_component(
        hass, "frontend", {"frontend": {"development_repo": str(tmp_path)}}
    )
    assert await async_setup_component(hass, "logbook", {})


@pytest.fixture
async def simulator(hass: HomeAssistant, logbook: None) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=12, seed=11)) as sim:
        yield sim


@pytest.fixture
async def hub(hass: HomeAssistant, simulator: SaymonSimulator) -> SaymonHub:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="model-changed")
    return hub


async def read_logbook(
    hass: HomeAssistant, hass_ws_client: Any, start: datetime, **filters: list[str]
) -> Lines:
    """``logbook/get_events`` as the frontend sends it, once everything is recorded."""
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)
    client = await hass_ws_client()
    await client.send_json_auto_id(
        {"type": "logbook/get_events", "start_time": start.isoformat(), **filters}
    )
    answer = await client.receive_json()
    assert answer["success"], answer
    lines: Lines = answer["result"]
    return lines


def entity_of(hass: HomeAssistant, domain: str, unique_id: str) -> str:
    return present(er.async_get(hass).async_get_entity_id(domain, DOMAIN, unique_id))


async def test_one_line_per_happening(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    target = next(
        o
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING
        and o.id in hub.objects_in_scope
        and o.id != simulator.model.root_id
    )
    state = entity_of(hass, "sensor", f"{hub.server_key}|object|{target.id}|state")
    problem = entity_of(hass, "binary_sensor", f"{hub.server_key}|object|{target.id}|problem")
    events = entity_of(hass, "event", f"{hub.server_key}|incidents")
    start = dt_util.utcnow()

    await simulator.set_state(target.id, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(target.id), what="incident")
    incident = present(simulator.model.incidents.open_for((1, target.id)))
    lines = await read_logbook(hass, hass_ws_client, start)

    # The state change: its State sensor's line only (no English copy of it).
    assert [line.get("state") for line in lines if line.get("entity_id") == state] == ["alarm"]
    assert not [line for line in lines if "changed state" in str(line.get("message"))]
    # The incident: one described line with the object's name, an icon and a link.
    [opened] = [line for line in lines if line.get("domain") == DOMAIN]
    assert opened | {"when": None} == {
        "name": target.name,
        "message": f"incident opened: {incident.text} (Alarm)",
        "icon": "mdi:alert-circle",
        "entity_id": problem,
        "domain": DOMAIN,
        "when": None,
    }
    assert hass.states.get(problem) is not None  # the link leads somewhere
    # The event entity's own line (Home Assistant lists every event entity trigger) names
    # this incident as its cause instead of only "detected an event".
    [triggered] = [line for line in lines if line.get("entity_id") == events]
    assert triggered["context_event_type"] == EVENT_INCIDENT
    assert triggered["context_name"] == target.name
    assert triggered["context_message"] == opened["message"]

    # A model change: one line, linked to the object's State sensor.
    start = dt_util.utcnow()
    await simulator.rename_object(target.id, "core-router-1")
    await wait_for(lambda: hub.model.objects[target.id].name == "core-router-1", what="rename")
    lines = await read_logbook(hass, hass_ws_client, start)
    [modified] = [line for line in lines if line.get("domain") == DOMAIN]
    assert modified | {"when": None} == {
        "name": "core-router-1",
        "message": f"object modified in SAYMON by {simulator.login}",
        "icon": "mdi:pencil-circle-outline",
        "entity_id": state,
        "domain": DOMAIN,
        "when": None,
    }


async def test_device_and_event_entity_logbooks(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    """A device page lists each happening once; the event entity's history names incidents.

    The event entity's lines carry the incident they were written for as their cause, instead
    of only "detected an event".
    """
    target = next(
        o
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING
        and o.id in hub.objects_in_scope
        and o.id != simulator.model.root_id
    )
    device = present(hub.device(hub.object_identifier(target.id)))
    events = entity_of(hass, "event", f"{hub.server_key}|incidents")
    start = dt_util.utcnow()
    await simulator.set_state(target.id, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(target.id), what="incident")
    await simulator.set_state(target.id, STATE_WORKING)
    await wait_for(lambda: not hub.model.has_incident(target.id), what="closed")

    # A device page asks for the device and its entities.
    entities = [e.entity_id for e in er.async_entries_for_device(er.async_get(hass), device.id)]
    on_device = await read_logbook(
        hass, hass_ws_client, start, device_ids=[device.id], entity_ids=entities
    )
    described = [line["message"].split(":")[0] for line in on_device if line.get("domain")]
    assert described == ["incident opened", "incident closed"]
    states = [
        line["state"] for line in on_device if line.get("entity_id", "").startswith("sensor.")
    ]
    assert states == ["alarm", "working"]

    history = await read_logbook(hass, hass_ws_client, start, entity_ids=[events])
    assert [(line["context_name"], line["context_message"]) for line in history] == [
        (target.name, f"incident opened: {incident_text(simulator, target.id)} (Alarm)"),
        (target.name, f"incident closed: {incident_text(simulator, target.id)} (Cleared)"),
    ]
    assert all(line["context_event_type"] == EVENT_INCIDENT for line in history)


def incident_text(simulator: SaymonSimulator, object_id: str) -> str:
    book = simulator.model.incidents  # cleared: listed until SAYMON's incident timeout
    closed = [
        i for i in (*book.history.values(), *book.cleared.values()) if i.entity_id == object_id
    ]
    return closed[-1].text


async def test_incident_without_a_device_links_the_event_entity(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, options={"links": True})
    hub: SaymonHub = entry.runtime_data.hub
    link = next(iter(simulator.model.links.values()))
    events = entity_of(hass, "event", f"{hub.server_key}|incidents")
    start = dt_util.utcnow()
    await simulator.set_link_state(link.id, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(link.id), what="link incident")
    lines = await read_logbook(hass, hass_ws_client, start)
    [opened] = [line for line in lines if line.get("domain") == DOMAIN]
    assert opened["name"] == f"{link.source_name} → {link.target_name}"
    assert opened["icon"] == "mdi:alert-circle"
    assert opened["entity_id"] == events


async def test_replayed_changes_say_so(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    """What happened while Comet was down is listed once, marked as replayed.

    The incident's and the new object's lines say "replayed after a reconnect" (break
    guarded: a blank ``REPLAYED`` in ``logbook.py``); the object's state change is its State
    sensor's one line, as for a live change (the replayed flag of a state change is in the
    ``saymon_state_changed`` event and on MQTT, see ``test_live.py`` and
    ``tests/mirror/test_late_subscriber.py``).
    """
    target = next(
        o
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING
        and o.id in hub.objects_in_scope
        and o.id != simulator.model.root_id
    )
    state = entity_of(hass, "sensor", f"{hub.server_key}|object|{target.id}|state")
    problem = entity_of(hass, "binary_sensor", f"{hub.server_key}|object|{target.id}|problem")
    start = dt_util.utcnow()
    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="the outage")
    await simulator.set_state(target.id, STATE_ALARM)
    new_id = await simulator.create_object("Added meanwhile", target.id, CLASS_HOST)
    resyncs = hub.resyncs
    await simulator.start_comet()
    await wait_for(lambda: hub.connected and hub.resyncs > resyncs, what="the resync")
    incident = present(simulator.model.incidents.open_for((1, target.id)))
    lines = await read_logbook(hass, hass_ws_client, start)

    new_state = entity_of(hass, "sensor", f"{hub.server_key}|object|{new_id}|state")
    described = [line for line in lines if line.get("domain") == DOMAIN]
    assert sorted(
        (line["name"], line["message"], line["entity_id"], line["icon"]) for line in described
    ) == [
        (
            "Added meanwhile",
            "object created in SAYMON, replayed after a reconnect",
            new_state,
            "mdi:plus-circle-outline",
        ),
        (
            target.name,
            f"incident opened: {incident.text} (Alarm), replayed after a reconnect",
            problem,
            "mdi:alert-circle",
        ),
    ]
    assert [line.get("state") for line in lines if line.get("entity_id") == state] == ["alarm"]


async def test_lines_of_events_with_missing_fields(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    """The logbook also describes events recorded long ago (older releases, other entries).

    Such events may lack fields, name a link, or belong to an entry that is gone or unloaded;
    each still gets a readable line, and a link only where it leads somewhere.
    """
    start = dt_util.utcnow()
    hass.bus.async_fire("saymon_model_changed", {"entity_id": "x1"})
    hass.bus.async_fire("saymon_model_changed", {"entity_id": "x2", "change": "renamed"})
    hass.bus.async_fire(
        "saymon_model_changed",
        {"change": "removed", "entity_type": "link", "entity_id": "l1", "name": "a → b"},
    )
    hass.bus.async_fire(
        EVENT_INCIDENT, {"object_id": "o9", "device_id": "gone", "config_entry_id": "gone"}
    )
    hass.bus.async_fire(EVENT_INCIDENT, {})
    assert await hass.config_entries.async_unload(hub.entry.entry_id)
    hass.bus.async_fire(
        EVENT_INCIDENT,
        {"type": "opened", "object_name": "Link", "config_entry_id": hub.entry.entry_id},
    )
    lines = await read_logbook(hass, hass_ws_client, start)
    described = [
        {key: line.get(key) for key in ("name", "message", "icon", "entity_id")}
        for line in lines
        if line.get("domain") == DOMAIN
    ]
    assert described == [
        {
            "name": "x1",
            "message": "object modified in SAYMON",
            "icon": "mdi:pencil-circle-outline",
            "entity_id": None,
        },
        {
            "name": "x2",
            "message": "object renamed in SAYMON",
            "icon": "mdi:pencil-circle-outline",  # a change this release does not know
            "entity_id": None,
        },
        {
            "name": "a → b",
            "message": "link removed in SAYMON",
            "icon": "mdi:minus-circle-outline",
            "entity_id": None,
        },
        {
            "name": "o9",
            "message": "incident changed",
            "icon": "mdi:alert-circle-outline",
            "entity_id": None,
        },
        {
            "name": "SAYMON",
            "message": "incident changed",
            "icon": "mdi:alert-circle-outline",
            "entity_id": None,
        },
        {
            "name": "Link",
            "message": "incident opened",
            "icon": "mdi:alert-circle",
            "entity_id": None,  # the entry is not loaded: its event entity is not there
        },
    ]
