"""Less common paths of the hub: scope choices, links, resync failures, odd events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.saymon.const import DOMAIN, EVENT_INCIDENT
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import CLASS_HOST, STATE_ALARM, STATE_DOWN, STATE_WORKING, SaymonSimulator

from .common import serving, setup_entry
from .test_live import Bus

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=40, seed=9)) as sim:
        yield sim


async def start(
    hass: HomeAssistant, simulator: SaymonSimulator, options: dict[str, object] | None = None
) -> SaymonHub:
    entry = await setup_entry(hass, simulator, options)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="Comet")
    await simulator.wait_for_sockets(1, topic="model-changed")
    await hass.async_block_till_done()
    return hub


async def test_selected_scope_and_links(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    site = next(
        o
        for o in simulator.model.objects.values()
        if o.parent_id == [simulator.model.root_id] and o.child_ids
    )
    hub = await start(hass, simulator, {"scope": "selected", "parents": [site.id], "links": True})
    expected = {site.id}
    frontier = list(site.child_ids)
    while frontier:
        child = frontier.pop()
        expected.add(child)
        frontier.extend(simulator.model.objects[child].child_ids)
    assert hub.objects_in_scope == expected
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), hub.entry.entry_id)
    assert len(devices) == len(expected) + 1
    site_device = present(hub.device(hub.object_identifier(site.id)))
    server = present(hub.device(hub.server_identifier))
    assert site_device.via_device_id == server.id  # its parent is not a device
    assert hub.links_in_scope == set(simulator.model.links)
    link = next(iter(simulator.model.links.values()))
    entity = present(
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|link|{link.id}|state"
        )
    )
    state = present(hass.states.get(entity))
    assert link.source_name in state.attributes["friendly_name"]
    await simulator.set_link_state(link.id, STATE_DOWN)
    await wait_for(lambda: present(hass.states.get(entity)).state == "down", what="link state")
    # Objects outside the scope change without bus state events.
    outside = next(
        o
        for o in simulator.model.objects.values()
        if o.id not in expected and o.state_id == STATE_WORKING
    )
    bus = Bus(hass)
    await simulator.set_state(outside.id, STATE_ALARM)
    await wait_for(lambda: bus.of(EVENT_INCIDENT) != [], what="incident outside the scope")
    assert bus.of("saymon_state_changed") == []
    assert bus.of(EVENT_INCIDENT)[0]["device_id"] is None
    # A new object under the site joins the scope.
    new_id = await simulator.create_object("Late host", site.id, CLASS_HOST)
    await wait_for(lambda: new_id in hub.objects_in_scope, what="new object in scope")


async def test_count_mismatch_triggers_resync(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await start(hass, simulator)
    resyncs = hub.resyncs
    await simulator.send_raw("incident-count", {"count": 999})
    await wait_for(lambda: hub.model.reported_count == 999, what="count event")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=6))
    await wait_for(lambda: hub.resyncs > resyncs, what="resync")


async def test_resync_failure_is_retried(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    hub = await start(hass, simulator)
    simulator.fail_next(5)
    await hub.async_resync()
    assert hub.resync_failures == 1
    resyncs = hub.resyncs
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=5))
    await wait_for(lambda: hub.resyncs > resyncs, what="retried resync")


async def test_resync_with_rejected_credentials_starts_reauth(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await start(hass, simulator)
    simulator.set_password("changed")
    await simulator.expire_sessions()
    await hub.async_resync()
    await hass.async_block_till_done()

    def flows() -> list[str]:
        progress = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        return [flow["context"]["source"] for flow in progress]

    # On a loaded machine the Comet client's own reconnect may meet the expired session first,
    # or a slow REST answer may time the resync out (retried with backoff): either way
    # rejected credentials end in exactly one reauth flow.
    for _ in range(5):
        if flows():
            break
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=60))
        await asyncio.sleep(0.5)
        await hass.async_block_till_done()
    assert flows() == ["reauth"]


async def test_filtered_and_unknown_events(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    hub = await start(hass, simulator)
    bus = Bus(hass)
    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(object_id), what="incident")
    incident_id = next(iter(hub.model._by_entity[object_id]))
    # An id-only (filtered) "modified" event makes the hub read the incident over REST.
    await simulator.send_raw(
        "incidents", {"changeType": 2, "filtered": True, "payload": {"id": incident_id}}
    )
    await simulator.send_raw(
        "incidents", {"changeType": 2, "filtered": True, "payload": {"id": "gone"}}
    )
    await simulator.send_raw("snmp-trap", {"oid": "1"}, everyone=True)
    await simulator.send_raw(
        "incidents", {"changeType": 3, "filtered": True, "payload": {"id": incident_id}}
    )
    await wait_for(lambda: not hub.model.has_incident(object_id), what="closed by id")
    assert bus.of(EVENT_INCIDENT, type="closed")[0]["incident_id"] == incident_id


async def test_model_events_for_links_and_unknown_objects(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    hub = await start(hass, simulator, {"links": True})
    bus = Bus(hass)
    link_id = next(iter(simulator.model.links))
    await simulator.send_raw("model-changed", {"changeType": 2, "id": link_id, "entityType": 2})
    await simulator.send_raw(
        "model-changed", {"changeType": 2, "id": "000000000000000000000000", "entityType": 1}
    )
    await simulator.send_raw("model-changed", {"changeType": 3, "id": link_id, "entityType": 2})
    await wait_for(
        lambda: bus.of("saymon_model_changed", change="removed") != [], what="link removed"
    )
    assert link_id not in hub.model.links
    assert bus.of("saymon_model_changed", entity_type="link", change="modified") != []
