"""The scope steps' numbers are what the entry creates: walked as a user, then set up for real.

The confirmation step says how many devices and entities a choice creates before creating
them; this follows one choice through the real entry setup against the simulator and counts
the device and entity registries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.saymon.binary_sensor import OBJECT_BINARY_SENSORS
from custom_components.saymon.const import CONF_COMET, CONF_PARENTS, DOMAIN
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.scope_flow import ENTITIES_PER_LINK, ENTITIES_PER_OBJECT
from custom_components.saymon.sensor import LINK_SENSORS, OBJECT_SENSORS
from tools.simulator import SaymonSimulator

from .common import serving, settled


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=60, seed=5)) as sim:
        yield sim


def test_entities_per_object_and_link_follow_the_platforms() -> None:
    assert len(OBJECT_SENSORS) + len(OBJECT_BINARY_SENSORS) == ENTITIES_PER_OBJECT
    assert len(LINK_SENSORS) == ENTITIES_PER_LINK


async def _step(hass: HomeAssistant, result: ConfigFlowResult, answer: Any) -> ConfigFlowResult:
    return await hass.config_entries.flow.async_configure(result["flow_id"], answer)


async def test_confirmed_numbers_are_created(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await _step(
        hass,
        result,
        {
            CONF_URL: simulator.rest_url,
            CONF_COMET: str(simulator.comet_port),
            CONF_VERIFY_SSL: True,
        },
    )
    result = await _step(hass, result, {"next_step_id": "password"})
    result = await _step(
        hass, result, {CONF_USERNAME: simulator.login, CONF_PASSWORD: simulator.password}
    )
    result = await _step(hass, result, {"next_step_id": "scope_select"})
    root = simulator.model.root_id
    site = simulator.model.objects[root].child_ids[0]
    result = await _step(hass, result, {CONF_PARENTS: [site]})
    assert result["step_id"] == "scope_confirm"
    promised = result["description_placeholders"] or {}
    assert 0 < int(promised["device_count"]) < len(simulator.model.objects)
    assert int(promised["link_count"]) > 0
    result = await _step(hass, result, {"next_step_id": "scope_create_links"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await settled(hass, entry)

    hub: SaymonHub = entry.runtime_data.hub
    server = hub.device(hub.server_identifier)
    assert server is not None
    devices = [
        device
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        if device.id != server.id
    ]
    entities = [  # metric entities are chosen apart (the options' Metrics step counts them)
        entity
        for entity in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if "|metric:" not in entity.unique_id
    ]
    # The numbers promise what shows: operation buttons are there too, but disabled.
    on_objects = [
        entity
        for entity in entities
        if entity.device_id != server.id and entity.disabled_by is None
    ]
    assert all(
        entity.domain == "button"
        for entity in entities
        if entity.device_id != server.id and entity.disabled_by is not None
    )
    links = [entity for entity in entities if entity.translation_key == "link_state"]
    assert len(devices) == int(promised["device_count"])
    assert len(on_objects) == int(promised["entity_count"])
    assert len(on_objects) + len(links) == int(promised["entity_count_links"])
    assert len(links) == int(promised["link_count"])
