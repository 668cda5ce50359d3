"""Live behaviour: updates, bus events, replay after reconnect, availability, dynamic devices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.saymon.const import (
    CONF_GRACE_PERIOD,
    DOMAIN,
    EVENT_INCIDENT,
    EVENT_MODEL_CHANGED,
    EVENT_STATE_CHANGED,
)
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import (
    CLASS_HOST,
    STATE_ALARM,
    STATE_DOWN,
    STATE_OVERLOADED,
    STATE_WORKING,
    SaymonSimulator,
)

from .common import serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=40, seed=5)) as sim:
        yield sim


class Bus:
    """Records the integration's bus events."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        for event_type in (EVENT_INCIDENT, EVENT_STATE_CHANGED, EVENT_MODEL_CHANGED):
            hass.bus.async_listen(event_type, self._record)

    @callback
    def _record(self, event: Event) -> None:
        self.events.append((str(event.event_type), dict(event.data)))

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            data
            for kind, data in self.events
            if kind == event_type and all(data.get(k) == v for k, v in match.items())
        ]


async def connected_hub(
    hass: HomeAssistant, simulator: SaymonSimulator, **options: Any
) -> SaymonHub:
    entry = await setup_entry(hass, simulator, options or None)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="Comet and first resync")
    await simulator.wait_for_sockets(1, topic="model-changed")
    await hass.async_block_till_done()
    return hub


def working_objects(simulator: SaymonSimulator) -> list[str]:
    return [o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING]


def state_entity(hass: HomeAssistant, hub: SaymonHub, object_id: str) -> str:
    found = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|state"
    )
    assert found is not None
    return found


async def test_live_state_change_and_incident(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected_hub(hass, simulator)
    bus = Bus(hass)
    object_id = working_objects(simulator)[0]
    entity = state_entity(hass, hub, object_id)
    assert present(hass.states.get(entity)).state == "working"
    device = hub.device(hub.object_identifier(object_id))
    assert device is not None

    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(lambda: bus.of(EVENT_INCIDENT) != [], what="incident event")
    await hass.async_block_till_done()
    assert present(hass.states.get(entity)).state == "alarm"
    [state_event] = bus.of(EVENT_STATE_CHANGED)
    assert state_event | {"config_entry_id": None} == {
        "config_entry_id": None,
        "entity_type": "object",
        "object_id": object_id,
        "object_name": simulator.model.objects[object_id].name,
        "old_state_id": str(STATE_WORKING),
        "old_state": "Working",
        "new_state_id": str(STATE_ALARM),
        "new_state": "Alarm",
        "device_id": device.id,
        "replayed": False,
    }
    [opened] = bus.of(EVENT_INCIDENT)
    incident = simulator.model.incidents.open_for((1, object_id))
    assert incident is not None
    assert opened["type"] == "opened"
    assert opened["incident_id"] == incident.id
    assert opened["level"] == "Alarm"
    assert opened["device_id"] == device.id
    assert opened["replayed"] is False
    problem = present(
        er.async_get(hass).async_get_entity_id(
            "binary_sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|problem"
        )
    )
    assert present(hass.states.get(problem)).state == "on"
    event_entity = present(
        er.async_get(hass).async_get_entity_id("event", DOMAIN, f"{hub.server_key}|incidents")
    )
    assert present(hass.states.get(event_entity)).attributes["event_type"] == "opened"

    await simulator.set_state(object_id, STATE_OVERLOADED)
    await wait_for(lambda: bus.of(EVENT_INCIDENT, type="updated") != [], what="incident updated")
    await simulator.set_state(object_id, STATE_WORKING)
    await wait_for(lambda: bus.of(EVENT_INCIDENT, type="closed") != [], what="incident closed")
    await hass.async_block_till_done()
    assert present(hass.states.get(problem)).state == "off"
    assert present(hass.states.get(entity)).state == "working"
    total = present(
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|active_incidents"
        )
    )
    assert present(hass.states.get(total)).state == str(len(simulator.model.incidents.active))


async def test_replay_after_reconnect_without_duplicates(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected_hub(hass, simulator)
    bus = Bus(hass)
    live, missed, closes = working_objects(simulator)[:3]
    await simulator.set_state(live, STATE_ALARM)  # seen live
    await wait_for(lambda: len(bus.of(EVENT_INCIDENT)) == 1, what="live incident")
    await simulator.set_state(closes, STATE_DOWN)
    await wait_for(lambda: len(bus.of(EVENT_INCIDENT)) == 2, what="second live incident")

    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="disconnect")
    await simulator.set_state(missed, STATE_DOWN)  # happens while we are away
    await simulator.set_state(closes, STATE_WORKING)
    await simulator.start_comet()
    resyncs = hub.resyncs
    await wait_for(lambda: hub.connected and hub.resyncs > resyncs, what="reconnect and resync")
    await hass.async_block_till_done()

    replayed = [data for _, data in bus.events if data["replayed"]]
    assert {
        (d.get("type"), d.get("object_id") or d.get("object_id")) for d in replayed if "type" in d
    } == {
        ("opened", missed),
        ("closed", closes),
    }
    assert sorted(
        (d["object_id"], d["new_state_id"]) for d in bus.of(EVENT_STATE_CHANGED, replayed=True)
    ) == sorted([(missed, str(STATE_DOWN)), (closes, str(STATE_WORKING))])
    # The incident already seen live is not fired again.
    assert len(bus.of(EVENT_INCIDENT, object_id=live)) == 1
    assert present(hass.states.get(state_entity(hass, hub, missed))).state == "down"
    assert hub.live.stats.replayed == len(replayed)

    # A second resync with nothing new fires nothing.
    count = len(bus.events)
    await hub.async_resync()
    await hass.async_block_till_done()
    assert len(bus.events) == count


async def test_availability_follows_grace_period(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected_hub(hass, simulator, **{CONF_GRACE_PERIOD: 1})
    object_id = working_objects(simulator)[0]
    entity = state_entity(hass, hub, object_id)
    connectivity = present(
        er.async_get(hass).async_get_entity_id(
            "binary_sensor", DOMAIN, f"{hub.server_key}|connectivity"
        )
    )

    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="disconnect")
    await hass.async_block_till_done()
    assert present(hass.states.get(connectivity)).state == "off"  # at once
    # Still available inside the grace period.
    assert present(hass.states.get(entity)).state == "working"
    await wait_for(lambda: not hub.available, timeout=5, what="grace period to expire")
    await hass.async_block_till_done()
    assert present(hass.states.get(entity)).state == "unavailable"
    assert present(hass.states.get(connectivity)).state == "off"

    await simulator.start_comet()
    await wait_for(lambda: hub.connected, what="reconnect")
    await hass.async_block_till_done()
    assert present(hass.states.get(entity)).state == "working"
    assert present(hass.states.get(connectivity)).state == "on"


async def test_repair_issue_after_long_outage(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await connected_hub(hass, simulator)
    caplog.set_level("INFO", logger="custom_components.saymon")
    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="disconnect")
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, hub.repair_issue_id) is None
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=16))
    await hass.async_block_till_done()
    issue = issues.async_get_issue(DOMAIN, hub.repair_issue_id)
    assert issue is not None
    assert issue.translation_key == "unreachable"
    # It tells the user what to check, naming the addresses, and how to change them.
    placeholders = issue.translation_placeholders or {}
    assert placeholders["url"] == hub.base_url
    assert placeholders["comet_address"] == hub.comet.address
    texts = await async_get_translations(hass, "en", "issues", {DOMAIN})
    text = texts[f"component.{DOMAIN}.issues.unreachable.description"].format(**placeholders)
    assert f"the Comet server at {hub.comet.address}" in text
    assert f"Open {hub.base_url} in a browser" in text
    assert "Reconfigure" in text
    await simulator.start_comet()
    await wait_for(lambda: hub.connected, what="reconnect")
    assert issues.async_get_issue(DOMAIN, hub.repair_issue_id) is None
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    restored = [r for r in caplog.records if "restored" in r.getMessage()]
    assert len(lost) == 1
    assert len(restored) == 1


async def test_silent_relogin_after_session_expiry(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected_hub(hass, simulator)
    await simulator.expire_sessions(disconnect=True)
    await wait_for(
        lambda: hub.comet.stats.connects == 2 and hub.connected, what="reconnect with a new session"
    )
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_changed_password_starts_reauth(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected_hub(hass, simulator)
    simulator.set_password("rotated")
    await simulator.expire_sessions(disconnect=True)
    await wait_for(
        lambda: hass.config_entries.flow.async_progress_by_handler(DOMAIN) != [], what="reauth flow"
    )
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"
    assert not hub.connected


async def test_devices_follow_model_changes(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await connected_hub(hass, simulator)
    bus = Bus(hass)
    registry = dr.async_get(hass)
    parent = simulator.model.root_id
    new_id = await simulator.create_object("New host", parent, CLASS_HOST)
    await wait_for(lambda: bus.of(EVENT_MODEL_CHANGED, change="created") != [], what="created")
    await hass.async_block_till_done()
    device = hub.device(hub.object_identifier(new_id))
    assert device is not None
    assert device.name == "New host"
    root_device = present(hub.device(hub.object_identifier(parent)))
    assert device.via_device_id == root_device.id
    assert hass.states.get(state_entity(hass, hub, new_id)) is not None
    [created] = bus.of(EVENT_MODEL_CHANGED)
    assert created["user_login"] == simulator.login
    assert created["device_id"] == device.id

    await simulator.rename_object(new_id, "Renamed host")
    await wait_for(lambda: bus.of(EVENT_MODEL_CHANGED, change="modified") != [], what="modified")
    assert present(registry.async_get(device.id)).name == "Renamed host"

    other_parent = next(
        o.id
        for o in simulator.model.objects.values()
        if o.id not in (parent, new_id) and o.child_ids
    )
    await simulator.move_object(new_id, other_parent)
    await wait_for(lambda: len(bus.of(EVENT_MODEL_CHANGED, change="modified")) == 2, what="moved")
    moved = present(hub.device(hub.object_identifier(new_id)))
    new_parent = present(hub.device(hub.object_identifier(other_parent)))
    assert moved.via_device_id == new_parent.id

    await simulator.delete_object(new_id)
    await wait_for(lambda: bus.of(EVENT_MODEL_CHANGED, change="removed") != [], what="removed")
    await hass.async_block_till_done()
    assert registry.async_get(device.id) is None


async def test_stale_devices_removed_at_setup(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    registry = dr.async_get(hass)
    leaf = next(o.id for o in simulator.model.objects.values() if not o.child_ids)
    stale = hub.device(hub.object_identifier(leaf))
    assert stale is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await simulator.delete_object(leaf)  # vanishes while Home Assistant is "off"
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get(stale.id) is None


async def test_user_can_delete_only_stale_devices(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    from custom_components.saymon import async_remove_config_entry_device

    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    registry = dr.async_get(hass)
    live = present(hub.device(hub.object_identifier(simulator.model.root_id)))
    server = present(hub.device(hub.server_identifier))
    assert not await async_remove_config_entry_device(hass, entry, live)
    assert not await async_remove_config_entry_device(hass, entry, server)
    ghost = registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={hub.object_identifier("gone")}, name="Gone"
    )
    assert await async_remove_config_entry_device(hass, entry, ghost)
