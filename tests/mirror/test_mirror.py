"""The MQTT mirror to a dedicated Mosquitto broker, checked by a real subscriber."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
import pytest

from custom_components.saymon.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PORT,
    CONF_MQTT_QOS,
    MQTT_BROKER,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.mirror import SaymonMirror
from tests.integration.common import serving, setup_entry
from tests.mqtt_schema import validate
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import (
    CLASS_HOST,
    STATE_ALARM,
    STATE_DOWN,
    STATE_WORKING,
    SaymonSimulator,
)

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")
BASE = "test/saymon"


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=30, seed=21)) as sim:
        yield sim


@pytest.fixture
async def subscriber(broker: MosquittoBroker) -> AsyncIterator[Subscriber]:
    sub = Subscriber(broker.port, f"{BASE}/#")
    await sub.start()
    try:
        yield sub
    finally:
        await sub.close()


HA_EXECUTORS = ("SyncWorker", "ImportExecutor")
"""Home Assistant's own executor threads, started on first use; not ours to stop."""


def mirror_options(broker: MosquittoBroker, **extra: Any) -> dict[str, Any]:
    return {
        CONF_MQTT_MODE: MQTT_BROKER,
        CONF_MQTT_HOST: broker.host,
        CONF_MQTT_PORT: broker.port,
        CONF_MQTT_BASE_TOPIC: BASE,
        CONF_MQTT_QOS: 1,
        **extra,
    }


async def start(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> SaymonHub:
    entry = await setup_entry(hass, simulator, mirror_options(broker))
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="Comet")
    await simulator.wait_for_sockets(1, topic="model-changed")
    return hub


def mirror(hub: SaymonHub) -> SaymonMirror:
    assert isinstance(hub.entry.runtime_data.mirror, SaymonMirror)
    return hub.entry.runtime_data.mirror


def latest(subscriber: Subscriber, topic: str) -> Any:
    found = [m for m in subscriber.messages if m.topic == topic]
    assert found, topic
    return validate(topic, found[-1].payload)


def all_valid(subscriber: Subscriber) -> None:
    for message in subscriber.messages:
        if message.payload:
            validate(message.topic, message.payload)


async def test_retained_picture_and_incident_lifecycle(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    await subscriber.wait_for(lambda: any(m.topic == f"{BASE}/status" for m in subscriber.messages))
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    await subscriber.wait_for(
        lambda: (
            len({m.topic for m in subscriber.messages if m.topic.endswith("/state")})
            == len(simulator.model.objects)
        )
    )
    assert latest(subscriber, f"{BASE}/status") == "online"
    assert latest(subscriber, f"{BASE}/incidents/count") == len(simulator.model.incidents.active)

    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    await simulator.set_state(object_id, STATE_ALARM)
    await subscriber.wait_for(
        lambda: any(m.topic == f"{BASE}/incidents/event" for m in subscriber.messages)
    )
    await simulator.set_state(object_id, STATE_WORKING)
    await subscriber.wait_for(
        lambda: (
            [
                validate(m.topic, m.payload)["type"]
                for m in subscriber.messages
                if m.topic == f"{BASE}/incidents/event"
            ]
            == ["opened", "closed"]
        )
    )
    await subscriber.wait_for(
        lambda: latest(subscriber, f"{BASE}/objects/{object_id}/state")["state"] == "Working"
    )
    events = [
        validate(m.topic, m.payload)
        for m in subscriber.messages
        if m.topic == f"{BASE}/objects/{object_id}/event"
    ]
    assert [(e["old_state"], e["new_state"]) for e in events] == [
        ("Working", "Alarm"),
        ("Alarm", "Working"),
    ]
    opened = next(
        validate(m.topic, m.payload)
        for m in subscriber.messages
        if m.topic == f"{BASE}/incidents/event"
    )
    assert opened["object"] == {
        "id": object_id,
        "type": "object",
        "name": simulator.model.objects[object_id].name,
    }
    assert opened["incident"]["level"] == "Alarm"
    assert not any(m.retain for m in subscriber.messages if m.topic.endswith("/event"))
    assert all(m.retain for m in subscriber.messages if not m.topic.endswith("/event"))
    assert {m.qos for m in subscriber.messages} == {1}  # events at the configured QoS 1
    all_valid(subscriber)

    # A late subscriber sees the whole retained truth at once.
    late = Subscriber(broker.port, f"{BASE}/#")
    await late.start()
    try:
        await late.wait_for(
            lambda: any(m.topic == f"{BASE}/objects/{object_id}/state" for m in late.messages)
        )
        assert latest(late, f"{BASE}/objects/{object_id}/state")["state"] == "Working"
        assert latest(late, f"{BASE}/status") == "online"
        assert all(m.retain for m in late.messages)
    finally:
        await late.close()


async def test_model_changes_and_removed_objects(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    new_id = await simulator.create_object("Fresh host", simulator.model.root_id, CLASS_HOST)
    await subscriber.wait_for(
        lambda: any(m.topic == f"{BASE}/objects/{new_id}/state" for m in subscriber.messages)
    )
    await simulator.delete_object(new_id)
    await subscriber.wait_for(
        lambda: any(
            m.topic == f"{BASE}/objects/{new_id}/state" and m.payload == b""
            for m in subscriber.messages
        )
    )
    changes = [
        validate(m.topic, m.payload)["change"]
        for m in subscriber.messages
        if m.topic == f"{BASE}/model/event"
    ]
    assert changes == ["created", "removed"]


async def test_storm_ends_with_the_true_retained_states(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    result = await simulator.storm(300)
    await wait_for(
        lambda: all(
            hub.model.state_of(o.id) == str(o.state_id) for o in simulator.model.objects.values()
        ),
        timeout=20,
        what="model converged",
    )

    def retained_truth() -> bool:
        return all(
            latest(subscriber, f"{BASE}/objects/{obj.id}/state")["state_id"] == str(obj.state_id)
            for obj in simulator.model.objects.values()
        )

    await subscriber.wait_for(retained_truth, what="every retained state equals SAYMON's")
    events = [
        m for m in subscriber.messages if m.topic.endswith("/event") and "/objects/" in m.topic
    ]
    assert len(events) == hub.bus.fired["saymon_state_changed"]
    assert result.changes > 0
    await subscriber.wait_for(  # coalesced apart from the states: it may come a flush later
        lambda: (
            latest(subscriber, f"{BASE}/incidents/count") == len(simulator.model.incidents.active)
        ),
        what="the retained count equals SAYMON's",
    )


async def test_broker_restart_republishes_the_picture(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    hub = await start(hass, simulator, broker)
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    snapshots = mirror(hub).snapshots
    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    await broker.restart(downtime=0.5)  # persistence off: retained messages are gone
    await simulator.set_state(object_id, STATE_DOWN)  # happens while the broker is away or back
    await wait_for(lambda: mirror(hub).snapshots > snapshots, timeout=30, what="republish")
    late = Subscriber(broker.port, f"{BASE}/#")
    await late.start()
    try:
        await late.wait_for(
            lambda: any(m.topic == f"{BASE}/objects/{object_id}/state" for m in late.messages)
        )
        await late.wait_for(
            lambda: latest(late, f"{BASE}/objects/{object_id}/state")["state"] == "Down"
        )
        # Messages queued while the broker was away go out first, then the fresh picture.
        await late.wait_for(lambda: any(m.topic == f"{BASE}/status" for m in late.messages))
        assert latest(late, f"{BASE}/status") == "online"
    finally:
        await late.close()


async def test_unload_publishes_offline_and_stops_threads(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    import threading

    before = {t.name for t in threading.enumerate()}
    hub = await start(hass, simulator, broker)
    the_mirror = mirror(hub)
    await wait_for(lambda: the_mirror.transport.connected, what="broker")
    assert await hass.config_entries.async_unload(hub.entry.entry_id)
    await subscriber.wait_for(lambda: latest(subscriber, f"{BASE}/status") == "offline")
    leftover = {t.name for t in threading.enumerate()} - before
    assert [name for name in leftover if not name.startswith(HA_EXECUTORS)] == []
    assert the_mirror.diagnostics()["transport"]["connects"] >= 1


async def test_home_assistant_stop_publishes_offline_and_stops_threads(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    """Home Assistant unloads nothing on stop: the mirror says offline and joins its thread."""
    import threading

    before = {t.name for t in threading.enumerate()}
    hub = await start(hass, simulator, broker)
    the_mirror = mirror(hub)
    await wait_for(lambda: the_mirror.transport.connected, what="broker")
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    await subscriber.wait_for(lambda: latest(subscriber, f"{BASE}/status") == "offline")
    leftover = {t.name for t in threading.enumerate()} - before
    assert [name for name in leftover if not name.startswith(HA_EXECUTORS)] == []
    # The later unload finds everything closed already.
    assert await hass.config_entries.async_unload(hub.entry.entry_id)
