"""Discovery with Home Assistant's real MQTT integration connected to a real Mosquitto.

Home Assistant's MQTT client is the real one here (not phcc's mock): the route through it, its
subscription for birth messages, and the loop protection when this same Home Assistant reads
discovery on the broker and prefix the mirror publishes to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
import socket
from typing import Any

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

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
    DOMAIN,
    MQTT_BROKER,
    MQTT_HOME_ASSISTANT,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.discovery_guard import issue_id
from tests.ha_discovery import validate_device_config
from tests.integration.common import serving, settled, setup_entry
from tests.mqtt_discovery.common import (
    BASE,
    config_messages,
    config_topic,
    configs,
    discovery_of,
    node,
    options,
)
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import SaymonSimulator

pytestmark = [
    pytest.mark.usefixtures("enable_custom_integrations", "mock_hass_config"),
    # Home Assistant's MQTT client keeps a housekeeping timer after its entry unloads.
    pytest.mark.parametrize("expected_lingering_timers", [True]),
]


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=8, seed=5)) as sim:
        yield sim


@pytest.fixture
async def subscriber(broker: MosquittoBroker) -> AsyncIterator[Subscriber]:
    async with Subscriber(broker.port, "#") as sub:
        yield sub


async def add_mqtt(hass: HomeAssistant, broker: MosquittoBroker, host: str = "127.0.0.1") -> None:
    """Home Assistant's MQTT integration on the broker, discovery under ``homeassistant``."""
    entry = MockConfigEntry(
        domain=mqtt.DOMAIN,
        data={mqtt.CONF_BROKER: host, "port": broker.port},
        version=mqtt.CONFIG_ENTRY_VERSION,
        minor_version=mqtt.CONFIG_ENTRY_MINOR_VERSION,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def unload_all(hass: HomeAssistant) -> None:
    """SAYMON first (its mirror publishes through MQTT when routed there), then MQTT."""
    for domain in (DOMAIN, mqtt.DOMAIN):
        for entry in hass.config_entries.async_entries(domain):
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def devices_of(hass: HomeAssistant, domain: str) -> list[dr.DeviceEntry]:
    """The devices of every config entry of ``domain`` (no registry-wide scan: deprecated)."""
    registry = dr.async_get(hass)
    return [
        device
        for entry in hass.config_entries.async_entries(domain)
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
    ]


def mqtt_copies(hass: HomeAssistant, sim: SaymonSimulator) -> list[dr.DeviceEntry]:
    """MQTT devices of this Home Assistant carrying one of our node ids."""
    return [
        device
        for device in devices_of(hass, mqtt.DOMAIN)
        if any(
            domain == mqtt.DOMAIN and key.startswith(node(sim))
            for domain, key in device.identifiers
        )
    ]


async def test_home_assistant_route_publishes_and_answers_births(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    await add_mqtt(hass, broker)
    entry = await setup_entry(
        hass,
        simulator,
        {
            CONF_MQTT_MODE: MQTT_HOME_ASSISTANT,
            CONF_MQTT_BASE_TOPIC: BASE,
            CONF_MQTT_DISCOVERY: True,
            CONF_MQTT_DISCOVERY_PREFIX: "lab",
        },
    )
    hub: SaymonHub = entry.runtime_data.hub
    devices = len(simulator.model.objects) + 1
    await subscriber.wait_for(
        lambda: len(configs(subscriber, "lab")) == devices, what="every config through HA's MQTT"
    )
    for payload in configs(subscriber, "lab").values():
        validate_device_config(payload)
    topic = config_topic(simulator, prefix="lab")
    # A consumer's birth, through the real broker. Home Assistant's client sends its SUBSCRIBE
    # a moment after the mirror connected (it batches them), so announce until it is heard.
    for _ in range(20):
        subscriber.publish("lab/status", b"online")
        with contextlib.suppress(AssertionError):
            await subscriber.wait_for(lambda: len(config_messages(subscriber, topic)) >= 2, 0.5)
            break
    assert len(config_messages(subscriber, topic)) >= 2, "no republish after the birth"
    assert discovery_of(hub).counters["births"] >= 1
    assert mqtt_copies(hass, simulator) == []  # this Home Assistant listens to homeassistant/

    # Deleting the entry clears its configs through Home Assistant's MQTT as well.
    await hass.config_entries.async_remove(entry.entry_id)
    await subscriber.wait_for(
        lambda: set(configs(subscriber, "lab").values()) == {b""}, what="every config cleared"
    )
    await unload_all(hass)


async def test_options_flow_refuses_a_loop(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    broker: MosquittoBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "localhost" may resolve to ::1 first (Debian forky does), which the tests may not use and
    # the broker does not listen on: keep the resolver's IPv4 answers only.
    resolve = socket.getaddrinfo

    def ipv4_first(host: Any, *args: Any, **kwargs: Any) -> Any:
        found = resolve(host, *args, **kwargs)
        return [item for item in found if item[0] == socket.AF_INET] or found

    monkeypatch.setattr(socket, "getaddrinfo", ipv4_first)
    await add_mqtt(hass, broker, host="localhost")  # the same broker under another name
    entry = await setup_entry(hass, simulator)
    mirror = {
        CONF_MQTT_BASE_TOPIC: BASE,
        CONF_MQTT_QOS: "1",
        CONF_MQTT_RETAIN: True,
        CONF_MQTT_QUEUE_SIZE: 5000,
        CONF_MQTT_DISCOVERY: True,
    }
    texts = await async_get_translations(hass, "en", "options", {DOMAIN})

    async def mqtt_step(**form: Any) -> dict[str, Any]:
        result = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "mqtt"}
        )
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**mirror, **form}
        )
        return dict(result)

    result = await mqtt_step(
        **{CONF_MQTT_MODE: MQTT_HOME_ASSISTANT, CONF_MQTT_DISCOVERY_PREFIX: "homeassistant"}
    )
    assert result["errors"] == {"base": "discovery_loop"}
    message = texts[f"component.{DOMAIN}.options.error.discovery_loop"].format(
        **result["description_placeholders"]
    )
    assert "under homeassistant on this broker" in message
    result = await mqtt_step(
        **{CONF_MQTT_MODE: MQTT_HOME_ASSISTANT, CONF_MQTT_DISCOVERY_PREFIX: BASE}
    )
    assert result["errors"] == {"base": "discovery_prefix_is_base"}

    # A dedicated broker that is the one Home Assistant's MQTT reads: refused after the test.
    result = await mqtt_step(
        **{CONF_MQTT_MODE: MQTT_BROKER, CONF_MQTT_DISCOVERY_PREFIX: "/homeassistant/"}
    )
    assert result["step_id"] == "mqtt_broker"
    form = {
        CONF_MQTT_HOST: "127.0.0.1",
        CONF_MQTT_PORT: broker.port,
        CONF_MQTT_TLS: False,
        CONF_MQTT_VERIFY: True,
        CONF_MQTT_PROTOCOL: "3.1.1",
    }
    refused = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert refused["errors"] == {"base": "discovery_loop"}
    assert (refused["description_placeholders"] or {})["discovery_prefix"] == "homeassistant"

    # Another prefix is fine: it only reaches a Home Assistant that listens to it.
    result = await mqtt_step(**{CONF_MQTT_MODE: MQTT_BROKER, CONF_MQTT_DISCOVERY_PREFIX: "ha2"})
    saved = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert saved["type"] is FlowResultType.CREATE_ENTRY
    await settled(hass, entry)
    assert discovery_of(entry.runtime_data.hub).prefix == "ha2"
    await unload_all(hass)


async def test_a_loop_the_settings_cannot_tell_is_stopped(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    """The user adds Home Assistant's MQTT integration on the mirror's broker afterwards."""
    entry = await setup_entry(
        hass, simulator, options(broker, **{CONF_MQTT_DISCOVERY_PREFIX: "homeassistant"})
    )
    hub: SaymonHub = entry.runtime_data.hub
    devices = len(simulator.model.objects) + 1
    await subscriber.wait_for(
        lambda: len(configs(subscriber, "homeassistant")) == devices, what="every config"
    )
    saymon_devices = {device.id for device in devices_of(hass, DOMAIN)}

    await add_mqtt(hass, broker)  # reads homeassistant/# on the same broker: our configs
    await wait_for(lambda: discovery_of(hub).refused, what="the loop noticed")
    await subscriber.wait_for(
        lambda: set(configs(subscriber, "homeassistant").values()) == {b""},
        what="every config cleared",
    )
    assert len(saymon_devices) == devices
    await wait_for(lambda: mqtt_copies(hass, simulator) == [], what="the copies removed")
    assert saymon_devices == {device.id for device in devices_of(hass, DOMAIN)}  # they stay
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id))
    assert issue is not None
    assert issue.translation_key == "discovery_loop"
    assert issue.translation_placeholders == {"prefix": "homeassistant"}

    # Reloaded with the same settings, the configuration check refuses at once: nothing goes out.
    published = len(subscriber.messages)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await settled(hass, entry)
    discovery = discovery_of(entry.runtime_data.hub)
    assert discovery.refused
    await wait_for(lambda: entry.runtime_data.mirror.transport.connected, what="mirror")
    await hass.async_block_till_done()
    assert [m for m in subscriber.messages[published:] if "/device/" in m.topic] == []
    assert discovery.counters["published"] == 0
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id)) is not None
    await unload_all(hass)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id)) is None
