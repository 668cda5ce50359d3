"""The mirror through Home Assistant's own MQTT integration, connected to a real Mosquitto.

No MQTT mock: Home Assistant's MQTT config entry is set up against a private Mosquitto (its
own paho client, its own birth and Last Will), the mirror publishes through it, and an
independent subscriber reads back what the broker holds: the retained picture, the event
topics, the deletion of a removed object's retained state, ``offline`` after an unload, and
Home Assistant's Last Will when its broker connection dies without a goodbye.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.saymon.const import CONF_MQTT_BASE_TOPIC, CONF_MQTT_MODE, MQTT_HOME_ASSISTANT
from custom_components.saymon.hub import SaymonHub
from tests.integration.common import serving, setup_entry
from tests.mqtt_schema import validate
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, SlowProxy, Subscriber
from tools.simulator import CLASS_HOST, STATE_ALARM, STATE_WORKING, SaymonSimulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")
BASE = "ha-route/saymon"
HA_STATUS = "homeassistant/status"
"""Home Assistant's MQTT birth and Last Will topic (its defaults)."""


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=15, seed=23)) as sim:
        yield sim


@pytest.fixture
async def proxy(broker: MosquittoBroker) -> AsyncIterator[SlowProxy]:
    """Home Assistant reaches the broker through this proxy, so its connection can be cut."""
    between = SlowProxy(broker.port)
    await between.start()
    try:
        yield between
    finally:
        await between.close()


@pytest.fixture
async def ha_mqtt(
    hass: HomeAssistant, proxy: SlowProxy, mock_hass_config: None
) -> AsyncIterator[MockConfigEntry]:
    """Home Assistant's MQTT integration, connected (through the proxy) to Mosquitto.

    Its setup reads ``configuration.yaml`` for MQTT entities; ``mock_hass_config`` (the test
    package's) makes it read as empty, as the test configuration folder has none.
    """
    entry = MockConfigEntry(
        domain="mqtt", data={"broker": proxy.host, "port": proxy.port}, version=1, minor_version=2
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    try:
        yield entry
    finally:
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


async def subscribed(broker: MosquittoBroker, topic_filter: str) -> Subscriber:
    subscriber = Subscriber(broker.port, topic_filter)
    await subscriber.start()
    return subscriber


def retained_states(subscriber: Subscriber) -> dict[str, dict[str, Any]]:
    """Object id -> retained state payload, as a subscriber that just connected saw them."""
    return {
        message.topic.split("/")[-2]: validate(message.topic, message.payload)
        for message in subscriber.messages
        if message.retain and message.topic.startswith(f"{BASE}/objects/") and message.payload
    }


async def test_the_mirror_through_home_assistant_mqtt_on_a_real_broker(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    broker: MosquittoBroker,
    proxy: SlowProxy,
    ha_mqtt: MockConfigEntry,
) -> None:
    events = await subscribed(broker, f"{BASE}/#")
    ha_status = await subscribed(broker, HA_STATUS)
    try:
        entry = await setup_entry(
            hass,
            simulator,
            {CONF_MQTT_MODE: MQTT_HOME_ASSISTANT, CONF_MQTT_BASE_TOPIC: BASE},
        )
        hub: SaymonHub = entry.runtime_data.hub
        await simulator.wait_for_sockets(1, topic="model-changed")
        objects = set(simulator.model.objects)
        await events.wait_for(
            lambda: set(retained_states(events)) == objects, what="every object's state"
        )
        assert events.retained(f"{BASE}/status") == b"online"
        count = len(simulator.model.incidents.active)
        assert events.retained(f"{BASE}/incidents/count") == str(count).encode()

        # A live change: its events (never retained) and the new retained state.
        object_id = next(
            o.id
            for o in simulator.model.objects.values()
            if o.state_id == STATE_WORKING and o.id != simulator.model.root_id
        )
        await simulator.set_state(object_id, STATE_ALARM)
        await events.wait_for(
            lambda: any(m.topic == f"{BASE}/incidents/event" for m in events.messages),
            what="the incident event",
        )
        await events.wait_for(
            lambda: (
                events.retained(f"{BASE}/incidents/count") == str(count + 1).encode()
                and (state := events.last(f"{BASE}/objects/{object_id}/state")) is not None
                and validate(state.topic, state.payload)["state"] == "Alarm"
            ),
            what="the object's new state and the count",
        )
        [incident] = [
            validate(m.topic, m.payload)
            for m in events.messages
            if m.topic == f"{BASE}/incidents/event"
        ]
        assert (incident["type"], incident["object"]["id"]) == ("opened", object_id)
        [change] = [
            validate(m.topic, m.payload)
            for m in events.messages
            if m.topic == f"{BASE}/objects/{object_id}/event"
        ]
        assert (change["old_state"], change["new_state"]) == ("Working", "Alarm")
        assert not any(m.retain for m in events.messages if m.topic.endswith("/event"))

        # An object created and deleted: a subscriber connecting afterwards finds no state.
        new_id = await simulator.create_object("Short-lived", simulator.model.root_id, CLASS_HOST)
        await events.wait_for(
            lambda: events.last(f"{BASE}/objects/{new_id}/state") is not None,
            what="the new object's state",
        )
        await simulator.delete_object(new_id)
        await events.wait_for(
            lambda: any(
                validate(m.topic, m.payload)["change"] == "removed"
                for m in events.messages
                if m.topic == f"{BASE}/model/event"
            ),
            what="the removal",
        )
        await wait_for(
            lambda: (m := hub.entry.runtime_data.mirror) is not None and m.transport.backlog == 0
        )
        late = await subscribed(broker, f"{BASE}/#")
        try:
            await late.wait_for(
                lambda: set(retained_states(late)) >= objects, what="the late picture"
            )
            assert set(retained_states(late)) == objects  # nothing of the deleted object
            assert validate(
                f"{BASE}/objects/{object_id}/state",
                present_retained(late, f"{BASE}/objects/{object_id}/state"),
            )["state"] == ("Alarm")
        finally:
            await late.close()

        # Home Assistant's broker connection dies without a goodbye: its Last Will tells.
        await ha_status.wait_for(lambda: ha_status.payloads(HA_STATUS) == [b"online"])
        await proxy.cut(refuse=False)
        await ha_status.wait_for(
            lambda: ha_status.payloads(HA_STATUS)[-1:] == [b"offline"],
            what="Home Assistant's Last Will",
        )
        await ha_status.wait_for(
            lambda: ha_status.payloads(HA_STATUS)[-1:] == [b"online"], 20, "the reconnect"
        )

        # Unloading the entry leaves "offline" retained for everyone who connects later.
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        after = await subscribed(broker, f"{BASE}/status")
        try:
            await after.wait_for(lambda: after.retained(f"{BASE}/status") is not None)
            assert after.retained(f"{BASE}/status") == b"offline"
        finally:
            await after.close()
    finally:
        await events.close()
        await ha_status.close()


def present_retained(subscriber: Subscriber, topic: str) -> bytes:
    payload = subscriber.retained(topic)
    assert payload is not None, topic
    return payload
