"""The mirror through Home Assistant's own MQTT integration (phcc's MQTT mock client)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest

from custom_components.saymon.const import CONF_MQTT_MODE, MQTT_HOME_ASSISTANT
from custom_components.saymon.hub import SaymonHub
from tests.integration.common import serving, setup_entry
from tests.mqtt_schema import validate
from tests.util import wait_for
from tools.simulator import STATE_ALARM, STATE_WORKING, SaymonSimulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=20, seed=4)) as sim:
        yield sim


def published(mqtt_mock: Any) -> list[tuple[str, bytes, int, bool]]:
    calls = []
    for call in mqtt_mock.async_publish.call_args_list:
        topic, payload, qos, retain = call.args
        calls.append(
            (topic, payload if isinstance(payload, bytes) else str(payload).encode(), qos, retain)
        )
    return calls


# Home Assistant's MQTT client keeps a one-second housekeeping timer whose socket the mock
# never closes; that timer (not ours) outlives the test.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_publishes_through_home_assistant_mqtt(
    hass: HomeAssistant, mqtt_mock: Any, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {CONF_MQTT_MODE: MQTT_HOME_ASSISTANT})
    hub: SaymonHub = entry.runtime_data.hub
    assert hub.entry.runtime_data.mirror is not None
    base = hub.entry.runtime_data.mirror.topics.base
    await wait_for(
        lambda: any(t == f"{base}/status" for t, *_ in published(mqtt_mock)), what="online"
    )
    await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="Comet")
    await simulator.wait_for_sockets(1, topic="model-changed")
    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(
        lambda: any(t == f"{base}/incidents/event" for t, *_ in published(mqtt_mock)),
        what="incident event",
    )
    await hass.async_block_till_done()
    messages = published(mqtt_mock)
    for topic, payload, _qos, _retain in messages:
        if payload:
            validate(topic, payload)
    assert (f"{base}/status", b"online", 1, True) in messages
    states = [m for m in messages if m[0] == f"{base}/objects/{object_id}/state"]
    assert validate(states[-1][0], states[-1][1])["state"] == "Alarm"
    assert states[-1][3] is True  # retained
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert published(mqtt_mock)[-1] == (f"{base}/status", b"offline", 1, True)
