"""Setting up an entry against the simulator: devices, entities, failures, unload."""

from __future__ import annotations

from collections.abc import AsyncIterator
import threading

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.saymon.const import DOMAIN
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import SaymonSimulator

from .common import entry_for, serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=40, seed=3)) as sim:
        yield sim


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


async def test_devices_mirror_the_object_tree(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    assert entry.state is ConfigEntryState.LOADED
    hub: SaymonHub = entry.runtime_data.hub
    registry = dr.async_get(hass)
    devices = dr.async_entries_for_config_entry(registry, entry.entry_id)
    assert len(devices) == len(simulator.model.objects) + 1  # plus the server device
    server = hub.device(hub.server_identifier)
    assert server is not None
    assert server.entry_type is dr.DeviceEntryType.SERVICE
    for obj in simulator.model.objects.values():
        device = hub.device(hub.object_identifier(obj.id))
        assert device is not None
        assert device.name == obj.name
        parent = hub.device(hub.object_identifier(obj.parent_id[0])) if obj.parent_id else server
        assert parent is not None
        assert device.via_device_id == parent.id
        assert device.model == hub.model.classes[obj.class_id].name
        assert device.configuration_url is not None
        assert obj.id in device.configuration_url


async def test_entities_show_the_server_state(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    key = hub.server_key
    active = len(simulator.model.incidents.active)
    assert active > 0
    active_incidents = present(
        hass.states.get(entity_id(hass, "sensor", f"{key}|active_incidents"))
    )
    assert active_incidents.state == str(active)
    await wait_for(lambda: hub.connected, what="Comet")
    await hass.async_block_till_done()
    connectivity = present(hass.states.get(entity_id(hass, "binary_sensor", f"{key}|connectivity")))
    assert connectivity.state == "on"
    names = {"working": 0}
    for obj in simulator.model.objects.values():
        state = hass.states.get(entity_id(hass, "sensor", f"{key}|object|{obj.id}|state"))
        assert state is not None
        problem = present(
            hass.states.get(entity_id(hass, "binary_sensor", f"{key}|object|{obj.id}|problem"))
        )
        has_incident = simulator.model.incidents.open_for((1, obj.id)) is not None
        assert problem.state == ("on" if has_incident else "off")
        names["working"] += state.state == "working"
    assert names["working"] > 0
    # Level sensors: common ones enabled, Cleared disabled by default.
    ent_reg = er.async_get(hass)
    alarm = ent_reg.async_get(entity_id(hass, "sensor", f"{key}|incidents_level_1"))
    cleared = ent_reg.async_get(entity_id(hass, "sensor", f"{key}|incidents_level_3"))
    assert alarm is not None
    assert alarm.disabled_by is None
    assert cleared is not None
    assert cleared.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_unreachable_server_is_not_ready(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    await simulator.stop_rest()
    entry = entry_for(simulator)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_rejected_credentials_start_reauth(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = entry_for(simulator, password="wrong")
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_home_assistant_stop_logs_out(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Home Assistant unloads nothing when it stops; the entry closes Comet and logs out itself."""
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1)
    (session_id,) = {s.session_id for s in simulator.sockets()}
    assert session_id in simulator.accounts.sessions
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    await wait_for(lambda: simulator.sockets() == [], what="Comet socket closed")
    assert session_id not in simulator.accounts.sessions
    assert hub.rest.session_id is None
    assert "lost" not in caplog.text  # stopping is not a lost connection
    # The entry unloads later (here, or never in a real stop): nothing is closed twice.
    logins = hub.rest.logins
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert hub.rest.logins == logins
    assert "Error" not in caplog.text


async def test_unload_leaves_nothing_running(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    threads = set(threading.enumerate())
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: hub.connected, what="Comet")
    await simulator.wait_for_sockets(1)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    await wait_for(lambda: simulator.sockets() == [], what="Comet socket closed")
    assert not hub.comet.connected
    # Home Assistant's own executor workers may start; nothing of ours may linger.
    assert [
        t.name for t in set(threading.enumerate()) - threads if not t.name.startswith("SyncWorker")
    ] == []
    # The session was deleted on the server too.
    assert hub.rest.session_id is None
