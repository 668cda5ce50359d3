"""Metric entities against the simulator: values, live updates, subscriptions, expiry, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.saymon.const import DOMAIN
from custom_components.saymon.hub import SaymonHub
from tests.simulator import ENTITY_OBJECT, SaymonSimulator

from .common import serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=40, seed=5)) as sim:
        yield sim


def metric_entities(hass: HomeAssistant, hub: SaymonHub) -> dict[tuple[str, str], str]:
    registry = er.async_get(hass)
    found = {}
    for entry in er.async_entries_for_config_entry(registry, hub.entry.entry_id):
        parts = entry.unique_id.split("|", 3)
        if len(parts) == 4 and parts[3].startswith("metric:"):
            found[parts[2], parts[3][7:]] = entry.entity_id
    return found


def truth(simulator: SaymonSimulator, object_id: str, path: str) -> Any:
    value: Any = simulator.model.last_stat[(ENTITY_OBJECT, object_id)]["payload"]
    for part in path.split("."):
        value = value[part]
    return value


async def test_smoke(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    entities = metric_entities(hass, hub)
    enabled = {k: v for k, v in entities.items() if hass.states.get(v) is not None}
    print(len(entities), len(enabled))
    for (object_id, path), entity_id in sorted(enabled.items())[:10]:
        state = hass.states.get(entity_id)
        print(entity_id, state.state if state else None, state.attributes if state else None, truth(simulator, object_id, path))
    print(simulator.sockets()[0].filtered_topics)
    print(hub.metrics.diagnostics())
    assert False
