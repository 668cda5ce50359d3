"""Identity that survives a new address, the upgrade from version 1, and the names users see.

Everything runs for real: the config flows and entry setups talk to the SAYMON simulator over
real sockets (no mocked setup), and the registries are Home Assistant's own. The version 1
registry is written here literally, in the formats version 1 made (unique ids and device
identifiers built on ``<normalised URL>|<user id>``), so the migration is tested against what
users' installations hold, not against a round trip of today's code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
import logging
from typing import Any

from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.util import slugify
import pytest
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped, unused-ignore]
    MockConfigEntry,
    async_get_device_automations,
)

from custom_components.saymon import async_remove_config_entry_device
from custom_components.saymon.api.url import normalize_base_url
from custom_components.saymon.const import (
    AUTH_PASSWORD,
    CONF_COMET,
    CONF_LINKS,
    CONF_MQTT_BASE_TOPIC,
    DOMAIN,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.mirror import MirrorSettings
from tests.util import present, wait_for
from tools.simulator import STATE_ALARM, STATE_WORKING, SaymonSimulator

from .common import entry_for, serving, settled, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=12, seed=5)) as sim:
        yield sim


def _entities(hass: HomeAssistant, entry_id: str) -> dict[str, er.RegistryEntry]:
    """The entry's registry entries by registry id (stable across any re-keying)."""
    return {e.id: e for e in er.async_entries_for_config_entry(er.async_get(hass), entry_id)}


def _devices(hass: HomeAssistant, entry_id: str) -> dict[str, dr.DeviceEntry]:
    registry = dr.async_get(hass)
    return {d.id: d for d in dr.async_entries_for_config_entry(registry, entry_id)}


# -- new installs: names --------------------------------------------------------------------


async def test_new_entry_title_and_server_device_name_agree(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """A server given by IP is called "SAYMON <ip>:<port>" in the title, device and entity ids."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_URL: simulator.rest_url, CONF_COMET: str(simulator.comet_port)},
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": AUTH_PASSWORD}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: simulator.login, "password": simulator.password}
    )
    for step in ("scope_all", "scope_create"):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": step}
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await settled(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    hub: SaymonHub = entry.runtime_data.hub
    port = simulator.rest_port
    assert entry.title == f"SAYMON 127.0.0.1:{port}"
    assert present(hub.device(hub.server_identifier)).name == entry.title
    registry = er.async_get(hass)
    active = registry.async_get_entity_id("sensor", DOMAIN, f"{simulator.user_id}|active_incidents")
    assert active == f"sensor.saymon_127_0_0_1_{port}_active_incidents"
    # Renaming the entry renames the server device (entity ids stay: they are registered).
    hass.config_entries.async_update_entry(entry, title="Production")
    await hass.async_block_till_done()
    await settled(hass, entry)
    hub = entry.runtime_data.hub
    assert present(hub.device(hub.server_identifier)).name == "Production"
    assert (
        registry.async_get_entity_id("sensor", DOMAIN, f"{simulator.user_id}|active_incidents")
        == active
    )


async def test_mqtt_default_base_topic_comes_from_the_host_not_the_title(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """The title is a display name ("SAYMON 127.0.0.1:<port>"); topics keep the bare host."""
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "mqtt"}
    )
    assert result["step_id"] == "mqtt"
    schema = present(result["data_schema"]).schema
    (base,) = [marker for marker in schema if marker == CONF_MQTT_BASE_TOPIC]
    expected = f"saymon/127.0.0.1:{simulator.rest_port}"
    assert base.description["suggested_value"] == expected
    assert MirrorSettings.from_options({}, hub.host).base_topic == expected


# -- a new address of the same server -------------------------------------------------------


async def test_reconfiguring_a_loaded_entry_keeps_every_device_and_entity(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """Reconfigure to a second address of the same server: nothing is lost or re-created."""
    entry = await setup_entry(hass, simulator, {CONF_LINKS: True})
    hub: SaymonHub = entry.runtime_data.hub
    devices = _devices(hass, entry.entry_id)
    entities = _entities(hass, entry.entry_id)
    assert len(devices) == len(simulator.model.objects) + 1
    assert len(entities) > 2 * len(simulator.model.objects)
    # What a user builds on top: a renamed entity, an area.
    object_id = next(iter(sorted(simulator.model.objects)))
    device = present(hub.device(hub.object_identifier(object_id)))
    area = ar.async_get(hass).async_create("Server room")
    dr.async_get(hass).async_update_device(device.id, area_id=area.id)
    state = present(
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|state"
        )
    )
    er.async_get(hass).async_update_entity(state, new_entity_id="sensor.core_router")
    entities = _entities(hass, entry.entry_id)

    second = await simulator.add_rest_address()
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: second, CONF_COMET: str(simulator.comet_port)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    moved: SaymonHub = entry.runtime_data.hub
    assert moved is not hub  # reloaded with the new address
    await wait_for(lambda: moved.connected and moved.resyncs >= 1, what="reloaded entry settled")
    assert moved.base_url == normalize_base_url(second)

    after_devices = _devices(hass, entry.entry_id)
    after_entities = _entities(hass, entry.entry_id)
    assert {i: d.identifiers for i, d in after_devices.items()} == {
        i: d.identifiers for i, d in devices.items()
    }
    assert {i: (e.unique_id, e.entity_id) for i, e in after_entities.items()} == {
        i: (e.unique_id, e.entity_id) for i, e in entities.items()
    }
    assert after_devices[device.id].area_id == area.id
    assert present(hass.states.get("sensor.core_router")).state not in ("unavailable", "unknown")


# -- upgrade from version 1 -----------------------------------------------------------------


@dataclass
class Version1:
    """An entry and its registry as version 1 of the integration left them."""

    entry: MockConfigEntry
    key: str
    devices: dict[str, str] = field(default_factory=dict)
    """Version 1 identifier key -> device id."""
    entities: dict[str, str] = field(default_factory=dict)
    """Version 1 unique id -> registry id."""


def _version_1(
    hass: HomeAssistant, simulator: SaymonSimulator, url: str, title: str = "127.0.0.1"
) -> Version1:
    """Write what version 1 made for ``simulator`` at ``url`` (all objects and links in scope)."""
    url = normalize_base_url(url)
    key = f"{url}|{simulator.user_id}"  # version 1's entry unique id and account key
    entry = entry_for(simulator, {CONF_LINKS: True}, url=url)
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        minor_version=1,
        title=title,
        unique_id=key,
        data=dict(entry.data),
        options=dict(entry.options),
    )
    entry.add_to_hass(hass)
    made = Version1(entry, key)
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    host = url.split("://", 1)[1]
    server = devices.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, key)},
        entry_type=dr.DeviceEntryType.SERVICE,
        manufacturer="SAYMON",
        model="SAYMON server",
        name=host,
    )
    made.devices[key] = server.id

    def entity(platform: str, suffix: str, device_id: str, object_id: str) -> None:
        unique_id = f"{key}|{suffix}"
        created = entities.async_get_or_create(
            platform,
            DOMAIN,
            unique_id,
            config_entry=entry,
            device_id=device_id,
            suggested_object_id=object_id,
        )
        made.entities[unique_id] = created.id

    server_id = slugify(host)
    entity("sensor", "active_incidents", server.id, f"{server_id}_active_incidents")
    for level in simulator.model.incident_levels:
        level_name = slugify(level["name"])
        entity("sensor", f"incidents_level_{level['id']}", server.id, f"{server_id}_{level_name}")
    entity("binary_sensor", "connectivity", server.id, f"{server_id}_live_connection")
    entity("event", "incidents", server.id, f"{server_id}_incidents")
    for link_id in simulator.model.links:
        entity("sensor", f"link|{link_id}|state", server.id, f"{server_id}_link_{link_id}")
    # Parents first, as version 1 created them.
    pending = dict(simulator.model.objects)
    while pending:
        for object_id, obj in list(pending.items()):
            parent = obj.parent_id[0] if obj.parent_id else None
            if parent in pending:
                continue
            via = f"{key}|object|{parent}" if parent is not None else key
            identifier = f"{key}|object|{object_id}"
            device = devices.async_get_or_create(
                config_entry_id=entry.entry_id,
                identifiers={(DOMAIN, identifier)},
                manufacturer="SAYMON",
                name=obj.name,
            )
            devices.async_update_device(device.id, via_device_id=made.devices[via])
            made.devices[identifier] = device.id
            name = slugify(obj.name)
            entity("sensor", f"object|{object_id}|state", device.id, f"{name}_state")
            entity("binary_sensor", f"object|{object_id}|problem", device.id, f"{name}_problem")
            del pending[object_id]
    return made


async def test_upgrade_from_version_1_keeps_ids_names_areas_and_devices(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    old = _version_1(hass, simulator, simulator.rest_url)
    user = simulator.user_id
    entities = er.async_get(hass)
    devices = dr.async_get(hass)
    # What the user did with version 1: renamed entity ids, names, icons, areas, a disabled one.
    area = ar.async_get(hass).async_create("Server room")
    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    state_entity = entities.async_get(
        entities.async_get_entity_id("sensor", DOMAIN, f"{old.key}|object|{object_id}|state") or ""
    )
    assert state_entity is not None
    entities.async_update_entity(
        state_entity.entity_id,
        new_entity_id="sensor.core_router",
        name="Core router",
        icon="mdi:router",
    )
    problem_id = present(
        entities.async_get_entity_id(
            "binary_sensor", DOMAIN, f"{old.key}|object|{object_id}|problem"
        )
    )
    entities.async_update_entity(problem_id, disabled_by=er.RegistryEntryDisabler.USER)
    object_device = old.devices[f"{old.key}|object|{object_id}"]
    devices.async_update_device(object_device, area_id=area.id, name_by_user="Router in rack 3")
    before = {e.id: e for e in er.async_entries_for_config_entry(entities, old.entry.entry_id)}
    assert len(before) == len(old.entities)

    await simulator.set_state(object_id, STATE_ALARM)  # an incident to find through the device
    assert await hass.config_entries.async_setup(old.entry.entry_id)
    await settled(hass, old.entry)
    entry = old.entry
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (1, 2)
    assert entry.unique_id == user
    # The default title of version 1 (the bare host) became today's, and the server device agrees.
    port = simulator.rest_port
    assert entry.title == f"SAYMON 127.0.0.1:{port}"
    hub: SaymonHub = entry.runtime_data.hub
    assert present(hub.device(hub.server_identifier)).name == entry.title

    after = _entities(hass, entry.entry_id)
    for registry_id, was in before.items():
        now = after[registry_id]  # the same registry entry, so its history and settings
        assert now.unique_id == f"{user}{was.unique_id[len(old.key) :]}"
        assert (now.entity_id, now.name, now.icon, now.disabled_by) == (
            was.entity_id,
            was.name,
            was.icon,
            was.disabled_by,
        )
    assert not [e.unique_id for e in after.values() if e.unique_id.startswith(old.key)]
    assert present(hass.states.get("sensor.core_router")).state == "alarm"
    assert present(hass.states.get("sensor.core_router")).name == "Core router"

    now_devices = _devices(hass, entry.entry_id)
    assert set(now_devices) == set(old.devices.values())
    for identifier, device_id in old.devices.items():
        new_key = user if identifier == old.key else f"{user}{identifier[len(old.key) :]}"
        assert now_devices[device_id].identifiers == {(DOMAIN, new_key)}
    router = now_devices[object_device]
    assert (router.area_id, router.name_by_user) == (area.id, "Router in rack 3")

    # Whatever reads device identifiers follows: actions, device triggers, device removal.
    assert hub.object_of_device(object_device) == object_id
    await wait_for(lambda: hub.model.has_incident(object_id), what="incident")
    response: Any = await hass.services.async_call(
        DOMAIN,
        "get_incidents",
        {"device_id": [object_device]},
        blocking=True,
        return_response=True,
    )
    assert [i["object_id"] for i in response["incidents"]] == [object_id]
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, object_device)
    assert {t["type"] for t in triggers if t["domain"] == DOMAIN} == {
        "incident_opened",
        "incident_closed",
        "state_changed",
        "operation_finished",
    }
    server = now_devices[old.devices[old.key]]
    assert not await async_remove_config_entry_device(hass, entry, server)
    assert not await async_remove_config_entry_device(hass, entry, router)


async def test_upgrade_keeps_a_custom_title_and_refuses_a_duplicate(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Version 1 allowed one SAYMON user twice under two addresses; only one can upgrade."""
    first = _version_1(hass, simulator, simulator.rest_url, title="Production")
    assert await hass.config_entries.async_setup(first.entry.entry_id)
    await settled(hass, first.entry)
    second = _version_1_again(hass, simulator, await simulator.add_rest_address())
    assert first.entry.state is ConfigEntryState.LOADED
    assert first.entry.title == "Production"
    hub: SaymonHub = first.entry.runtime_data.hub
    assert present(hub.device(hub.server_identifier)).name == "Production"

    assert not await hass.config_entries.async_setup(second.entry.entry_id)
    assert second.entry.state is ConfigEntryState.MIGRATION_ERROR
    assert (second.entry.minor_version, second.entry.unique_id) == (1, second.key)
    (message,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "'127.0.0.1' follows the same SAYMON user as entry 'Production'" in message
    assert simulator.user_id not in message
    # The entry that could not upgrade still has its registry exactly as version 1 left it.
    left = _entities(hass, second.entry.entry_id)
    assert {e.unique_id for e in left.values()} == set(second.entities)
    assert first.entry.state is ConfigEntryState.LOADED


def _version_1_again(hass: HomeAssistant, simulator: SaymonSimulator, url: str) -> Version1:
    """A second version 1 entry of the same user, at another address (only its server parts).

    Version 1 devices are keyed per address, so both entries' registries coexist.
    """
    url = normalize_base_url(url)
    key = f"{url}|{simulator.user_id}"
    template = entry_for(simulator, url=url)
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        minor_version=1,
        title="127.0.0.1",
        unique_id=key,
        data=dict(template.data),
        options=dict(template.options),
    )
    entry.add_to_hass(hass)
    made = Version1(entry, key)
    server = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, key)}, name=url
    )
    made.devices[key] = server.id
    unique_id = f"{key}|active_incidents"
    made.entities[unique_id] = (
        er.async_get(hass)
        .async_get_or_create("sensor", DOMAIN, unique_id, config_entry=entry, device_id=server.id)
        .id
    )
    return made


@pytest.mark.parametrize(
    ("version", "minor_version", "state"),
    [
        (1, 3, ConfigEntryState.LOADED),  # a newer minor version: still readable
        (2, 1, ConfigEntryState.MIGRATION_ERROR),  # a newer major version: refused, untouched
    ],
)
async def test_entries_of_a_newer_release(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    version: int,
    minor_version: int,
    state: ConfigEntryState,
) -> None:
    """After a downgrade, entries a newer release wrote load only if they are compatible."""
    template = entry_for(simulator)
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=version,
        minor_version=minor_version,
        title=template.title,
        unique_id=template.unique_id,
        data=dict(template.data),
        options=dict(template.options),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await settled(hass, entry)
    assert entry.state is state
    assert (entry.version, entry.minor_version) == (version, minor_version)
