"""MQTT discovery through the dedicated broker, read back from a real Mosquitto.

Every config is checked with Home Assistant's own discovery schemas (``tests/ha_discovery.py``),
and every entity's value template is rendered by Home Assistant's template engine against the
retained topic it reads, so what a second Home Assistant would show is checked here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.saymon.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_DISCOVERY,
    CONF_MQTT_DISCOVERY_PREFIX,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PORT,
    CONF_MQTT_PROTOCOL,
    CONF_MQTT_QOS,
    CONF_MQTT_QUEUE_SIZE,
    CONF_MQTT_RETAIN,
    CONF_MQTT_TLS,
    CONF_MQTT_VERIFY,
    CONF_PARENTS,
    CONF_SCOPE,
    MQTT_BROKER,
    SCOPE_SELECTED,
)
from custom_components.saymon.hub import SaymonHub
from tests.ha_discovery import check_topic, validate_device_config
from tests.integration.common import serving, settled, setup_entry
from tests.mqtt_discovery.common import (
    BASE,
    PREFIX,
    config_messages,
    config_topic,
    configs,
    discovery_of,
    node,
    options,
    render,
)
from tests.mqtt_schema import validate
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import CLASS_HOST, STATE_ALARM, STATE_WORKING, SaymonSimulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=12, seed=3)) as sim:
        yield sim


@pytest.fixture
async def subscriber(broker: MosquittoBroker) -> AsyncIterator[Subscriber]:
    async with Subscriber(broker.port, "#") as sub:
        yield sub


async def start(
    hass: HomeAssistant, sim: SaymonSimulator, broker: MosquittoBroker, **extra: Any
) -> SaymonHub:
    entry = await setup_entry(hass, sim, options(broker, **extra))
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="Comet")
    await sim.wait_for_sockets(1, topic="model-changed")
    return hub


async def test_every_object_becomes_a_valid_device(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    model = simulator.model
    wanted = {node(simulator)} | {node(simulator, oid) for oid in model.objects}
    await subscriber.wait_for(lambda: set(configs(subscriber)) == wanted, what="every config")
    messages = [m for m in subscriber.messages if m.topic.startswith(f"{PREFIX}/device/")]
    assert all(m.retain and m.qos == 1 for m in messages)
    found = {check_topic(PREFIX, m.topic): validate_device_config(m.payload) for m in messages}

    server = found[node(simulator)]
    assert server["device"]["identifiers"] == [node(simulator)]
    assert server["device"]["name"] == hub.entry.title
    assert server["origin"]["name"] == "SAYMON"
    assert server["origin"]["support_url"].startswith("https://")
    assert server["availability_mode"] == "all"
    assert [a["topic"] for a in server["availability"]] == [f"{BASE}/status", f"{BASE}/connection"]
    assert set(server["components"]) == {"active_incidents", "connection"}
    connection = server["components"]["connection"]
    assert connection["device_class"] == "connectivity"
    assert [a["topic"] for a in connection["availability"]] == [f"{BASE}/status"]

    for object_id, obj in model.objects.items():
        config = found[node(simulator, object_id)]
        parent = obj.parent_id[0] if obj.parent_id else None
        assert config["device"]["name"] == obj.name
        assert config["device"]["via_device"] == (
            node(simulator) if parent is None else node(simulator, parent)
        )
        components = config["components"]
        assert {key: c["platform"] for key, c in components.items()} == {
            "state": "sensor",
            "problem": "binary_sensor",
            "active_incidents": "sensor",
        }
        assert components["state"]["device_class"] == "enum"
        assert "Working" in components["state"]["options"]
        assert components["state"]["unique_id"] == f"{node(simulator, object_id)}_state"
        assert components["state"]["state_topic"] == f"{BASE}/objects/{object_id}/state"
        assert components["problem"]["state_topic"] == f"{BASE}/objects/{object_id}/incidents"
        assert "name" in components["state"]
        assert "object_id" not in components["state"]

    # The entities read the mirror's own retained topics: render them as Home Assistant would.
    await subscriber.wait_for(
        lambda: all(subscriber.retained(f"{BASE}/objects/{o}/incidents") for o in model.objects),
        what="per-object incident counts",
    )
    for object_id, obj in model.objects.items():
        components = found[node(simulator, object_id)]["components"]
        state = subscriber.retained(f"{BASE}/objects/{object_id}/state")
        incidents = subscriber.retained(f"{BASE}/objects/{object_id}/incidents")
        assert state is not None
        assert incidents is not None
        validate(f"{BASE}/objects/{object_id}/incidents", incidents)
        expected = hub.model.state_name(str(obj.state_id))
        assert render(hass, components["state"], state) == expected
        open_incidents = len(hub.model.incidents_of(object_id))
        assert render(hass, components["active_incidents"], incidents) == str(open_incidents)
        assert render(hass, components["problem"], incidents) == ("ON" if open_incidents else "OFF")
    assert subscriber.retained(f"{BASE}/connection") == b"online"
    # An object removed from SAYMON deletes its retained state; the template says unknown.
    assert render(hass, found[node(simulator, object_id)]["components"]["state"], b"") == "None"

    # Live changes move only the mirror's topics: no config is published again for them.
    before = len(subscriber.messages)
    count = len(messages)
    object_id = next(o.id for o in model.objects.values() if o.state_id == STATE_WORKING)
    await simulator.set_state(object_id, STATE_ALARM)
    await subscriber.wait_for(
        lambda: subscriber.retained(f"{BASE}/objects/{object_id}/incidents") == b"1",
        what="the incident on the object's count",
    )
    state = subscriber.retained(f"{BASE}/objects/{object_id}/state")
    assert state is not None
    assert render(hass, found[node(simulator, object_id)]["components"]["state"], state) == "Alarm"
    assert len(subscriber.messages) > before
    assert len([m for m in subscriber.messages if m.topic.startswith(f"{PREFIX}/")]) == count
    assert discovery_of(hub).diagnostics() == {
        "prefix": PREFIX,
        "devices": len(wanted),
        "refused": False,
        "published": len(wanted),
        "cleared": 0,
        "births": 0,
    }


async def test_renames_moves_removals_and_new_states(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    model = simulator.model
    await subscriber.wait_for(
        lambda: len(configs(subscriber)) == len(model.objects) + 1, what="every config"
    )
    leaf = next(o for o in model.objects.values() if o.id != model.root_id and not o.child_ids)
    topic = config_topic(simulator, leaf.id)

    await simulator.rename_object(leaf.id, "Renamed host")
    await subscriber.wait_for(
        lambda: (
            validate_device_config(configs(subscriber)[node(simulator, leaf.id)])["device"]["name"]
            == "Renamed host"
        ),
        what="the renamed device",
    )
    assert len(config_messages(subscriber, topic)) == 2  # only the renamed one went out again

    created = await simulator.create_object("Child host", leaf.id, CLASS_HOST)
    await subscriber.wait_for(
        lambda: node(simulator, created) in configs(subscriber), what="the new object's device"
    )
    child = validate_device_config(configs(subscriber)[node(simulator, created)])
    assert child["device"]["via_device"] == node(simulator, leaf.id)

    # Deleting the leaf deletes its subtree: both devices are cleared, each config before the
    # retained state it reads is deleted (a second Home Assistant never renders an empty state).
    await simulator.delete_object(leaf.id)
    await subscriber.wait_for(
        lambda: (
            configs(subscriber).get(node(simulator, leaf.id)) == b""
            and configs(subscriber).get(node(simulator, created)) == b""
        ),
        what="both configs cleared",
    )
    state = f"{BASE}/objects/{leaf.id}/state"

    def cleared() -> list[str]:
        return [m.topic for m in subscriber.messages if m.payload == b""]

    await subscriber.wait_for(lambda: state in cleared(), what="the retained state deleted")
    assert cleared().index(topic) < cleared().index(state)
    await subscriber.wait_for(
        lambda: subscriber.payloads(f"{BASE}/objects/{leaf.id}/incidents")[-1:] == [b""],
        what="the object's incident count cleared",
    )

    # An admin adds a state and an object enters it: the state sensors' options follow (the
    # hub reads the new state's name), and the object's retained state names it.
    simulator.model.add_state(101, "Maintenance")
    some = next(o for o in model.objects if o not in {model.root_id, leaf.id, created})
    await simulator.set_state(some, 101)
    await subscriber.wait_for(
        lambda: (
            "Maintenance"
            in validate_device_config(configs(subscriber)[node(simulator, some)])["components"][
                "state"
            ]["options"]
        ),
        what="the new state among the options",
    )
    await subscriber.wait_for(
        lambda: (
            validate(
                f"{BASE}/objects/{some}/state",
                subscriber.retained(f"{BASE}/objects/{some}/state") or b"",
            )["state"]
            == "Maintenance"
        ),
        what="the retained state named",
    )
    assert hub.resyncs >= 2


async def test_birth_message_republishes_every_config(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    devices = len(simulator.model.objects) + 1
    topic = config_topic(simulator)
    await subscriber.wait_for(lambda: len(configs(subscriber)) == devices, what="every config")
    await subscriber.wait_for(lambda: len(config_messages(subscriber, topic)) == 1)
    subscriber.publish(f"{PREFIX}/status", b"offline")
    subscriber.publish(f"{PREFIX}/status", b"online")
    await subscriber.wait_for(
        lambda: len(config_messages(subscriber, topic)) == 2, what="the republished config"
    )
    await wait_for(lambda: discovery_of(hub).counters["published"] == 2 * devices)
    assert discovery_of(hub).counters["births"] == 1  # "offline" is no birth

    def by_node() -> Counter[str]:
        return Counter(
            m.topic for m in subscriber.messages if m.topic.startswith(f"{PREFIX}/device/")
        )

    # Published is not yet received on a loaded machine: wait until each config came twice.
    await subscriber.wait_for(
        lambda: len(by_node()) == devices and min(by_node().values()) >= 2,
        what="every config twice",
    )
    assert set(by_node().values()) == {2}


async def test_scope_change_and_restart_clear_what_left(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    model = simulator.model
    await subscriber.wait_for(
        lambda: len(configs(subscriber)) == len(model.objects) + 1, what="every config"
    )
    parent = next(o for o in model.objects.values() if o.id != model.root_id and o.child_ids)
    subtree, pending = set(), [parent.id]
    while pending:
        subtree.add(current := pending.pop())
        pending.extend(model.objects[current].child_ids)
    assert 1 < len(subtree) < len(model.objects)
    entry = hub.entry
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_SCOPE: SCOPE_SELECTED, CONF_PARENTS: [parent.id]}
    )
    await hass.async_block_till_done()
    await settled(hass, entry)
    kept = {node(simulator)} | {node(simulator, oid) for oid in subtree}
    await subscriber.wait_for(
        lambda: {n for n, payload in configs(subscriber).items() if payload} == kept,
        what="configs outside the new scope cleared",
    )

    # Objects deleted in SAYMON while this Home Assistant is not running are cleared too.
    assert await hass.config_entries.async_unload(entry.entry_id)
    gone = next(oid for oid in subtree if not model.objects[oid].child_ids)
    await simulator.delete_object(gone)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await settled(hass, entry)
    await subscriber.wait_for(
        lambda: configs(subscriber)[node(simulator, gone)] == b"", what="the vanished object"
    )
    late = Subscriber(broker.port, f"{PREFIX}/#")
    await late.start()
    try:
        await late.wait_for(lambda: len(late.messages) >= len(kept) - 1)
        assert {check_topic(PREFIX, m.topic) for m in late.messages} == kept - {
            node(simulator, gone)
        }
    finally:
        await late.close()


async def test_entry_removal_clears_every_config(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    devices = len(simulator.model.objects) + 1
    await subscriber.wait_for(lambda: len(configs(subscriber)) == devices, what="every config")
    await hass.config_entries.async_remove(hub.entry.entry_id)
    await hass.async_block_till_done()
    await subscriber.wait_for(
        lambda: set(configs(subscriber).values()) == {b""}, what="every config cleared"
    )
    assert hub.entry.state is ConfigEntryState.NOT_LOADED
    assert subscriber.retained(f"{BASE}/status") == b"offline"


async def test_options_moving_or_turning_off_discovery_clear_its_configs(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    hub = await start(hass, simulator, broker)
    entry = hub.entry
    devices = len(simulator.model.objects) + 1
    await subscriber.wait_for(lambda: len(configs(subscriber)) == devices, what="every config")

    async def save(discovery: bool, prefix: str) -> None:
        result = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "mqtt"}
        )
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_MQTT_MODE: MQTT_BROKER,
                CONF_MQTT_BASE_TOPIC: BASE,
                CONF_MQTT_QOS: "1",
                CONF_MQTT_RETAIN: True,
                CONF_MQTT_QUEUE_SIZE: 5000,
                CONF_MQTT_DISCOVERY: discovery,
                CONF_MQTT_DISCOVERY_PREFIX: prefix,
            },
        )
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_MQTT_HOST: broker.host,
                CONF_MQTT_PORT: broker.port,
                CONF_MQTT_TLS: False,
                CONF_MQTT_VERIFY: True,
                CONF_MQTT_PROTOCOL: "3.1.1",
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await settled(hass, entry)

    await save(True, "ha3")  # another prefix: the old configs go, the new ones come
    await subscriber.wait_for(
        lambda: set(configs(subscriber).values()) == {b""}, what="ha2 configs cleared"
    )
    await subscriber.wait_for(
        lambda: len([p for p in configs(subscriber, "ha3").values() if p]) == devices,
        what="ha3 configs",
    )
    await save(False, "ha3")  # off: cleared before the entry reloads without discovery
    await subscriber.wait_for(
        lambda: set(configs(subscriber, "ha3").values()) == {b""}, what="ha3 configs cleared"
    )
    mirror = entry.runtime_data.mirror
    assert mirror is not None
    assert mirror.discovery is None
