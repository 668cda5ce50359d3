"""The options-flow steps of the MQTT mirror, against a real Mosquitto broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
import re
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.translation import async_get_translations
import pytest

from custom_components.saymon.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_CA_CERT,
    CONF_MQTT_CLIENT_ID,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PASSWORD,
    CONF_MQTT_PORT,
    CONF_MQTT_PROTOCOL,
    CONF_MQTT_QOS,
    CONF_MQTT_QUEUE_SIZE,
    CONF_MQTT_RETAIN,
    CONF_MQTT_TLS,
    CONF_MQTT_USERNAME,
    CONF_MQTT_VERIFY,
    DOMAIN,
    MQTT_BROKER,
    MQTT_HOME_ASSISTANT,
    MQTT_OFF,
)
from custom_components.saymon.diagnostics import hub_diagnostics
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.mirror import SaymonMirror
from tests.integration.common import serving, settled, setup_entry
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, free_port
from tools.simulator import SaymonSimulator

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")
USER, PASSWORD = "mirror", "broker-secret-1"


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=15, seed=2)) as sim:
        yield sim


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    mosquitto = MosquittoBroker(tmp_path)
    await mosquitto.start(password=(USER, PASSWORD))
    try:
        yield mosquitto
    finally:
        await mosquitto.stop()


MIRROR = {
    CONF_MQTT_BASE_TOPIC: "lab/+saymon",
    CONF_MQTT_QOS: "1",
    CONF_MQTT_RETAIN: True,
    CONF_MQTT_QUEUE_SIZE: 5000,
}


def broker_form(port: int, **changes: Any) -> dict[str, Any]:
    form = {
        CONF_MQTT_HOST: "127.0.0.1",
        CONF_MQTT_PORT: port,
        CONF_MQTT_USERNAME: USER,
        CONF_MQTT_PASSWORD: PASSWORD,
        CONF_MQTT_TLS: False,
        CONF_MQTT_VERIFY: True,
        CONF_MQTT_CA_CERT: "",
        CONF_MQTT_CLIENT_ID: "",
        CONF_MQTT_PROTOCOL: "5",
    }
    form.update(changes)
    return form


async def open_mqtt_step(hass: HomeAssistant, entry_id: str) -> str:
    result = await hass.config_entries.options.async_init(entry_id)
    assert result["type"] is FlowResultType.MENU
    assert "mqtt" in result["menu_options"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "mqtt"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "mqtt"
    # The base topic's help shows a real topic (no tag-like "<server>" in the text).
    topic = (result["description_placeholders"] or {})["example_topic"]
    assert re.fullmatch(r"saymon/127\.0\.0\.1:\d+/status", topic), topic
    flow_id: str = result["flow_id"]
    return flow_id


async def test_dedicated_broker_is_tested_then_mirrors(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    entry = await setup_entry(hass, simulator)
    flow_id = await open_mqtt_step(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow_id, {CONF_MQTT_MODE: MQTT_BROKER, **MIRROR}
    )
    assert result["step_id"] == "mqtt_broker"

    result = await hass.config_entries.options.async_configure(
        flow_id, broker_form(broker.port, **{CONF_MQTT_PASSWORD: "wrong"})
    )
    assert result["errors"] == {"base": "invalid_auth"}
    port = free_port()
    result = await hass.config_entries.options.async_configure(flow_id, broker_form(port))
    assert result["errors"] == {"base": "cannot_connect"}
    # The message names what was tried: nothing answered on host:port.
    assert result["description_placeholders"] == {
        "host": "127.0.0.1",
        "port": str(port),
        "discovery_prefix": "homeassistant",
    }
    texts = await async_get_translations(hass, "en", "options", {DOMAIN})
    message = texts[f"component.{DOMAIN}.options.error.cannot_connect"].format(
        **result["description_placeholders"]
    )
    assert message.startswith(f"Nothing answered as an MQTT broker at 127.0.0.1:{port}.")
    result = await hass.config_entries.options.async_configure(flow_id, broker_form(broker.port))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_MQTT_BASE_TOPIC] == "lab/saymon"  # wildcards cleaned
    assert entry.options[CONF_MQTT_QOS] == 1
    await settled(hass, entry)
    hub: SaymonHub = entry.runtime_data.hub
    mirror = hub.entry.runtime_data.mirror
    assert isinstance(mirror, SaymonMirror)
    await wait_for(lambda: mirror.transport.connected, what="mirror connected")
    assert PASSWORD not in repr(hub_diagnostics(hub))

    # An empty password keeps the stored one; turning the mirror off applies at once.
    flow_id = await open_mqtt_step(hass, entry.entry_id)
    await hass.config_entries.options.async_configure(
        flow_id, {CONF_MQTT_MODE: MQTT_BROKER, **MIRROR}
    )
    result = await hass.config_entries.options.async_configure(
        flow_id, broker_form(broker.port, **{CONF_MQTT_PASSWORD: ""})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_MQTT_PASSWORD] == PASSWORD
    await settled(hass, entry)
    flow_id = await open_mqtt_step(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow_id, {CONF_MQTT_MODE: MQTT_OFF, **MIRROR}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await settled(hass, entry)
    assert entry.runtime_data.mirror is None


async def test_home_assistant_route_needs_its_mqtt(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    flow_id = await open_mqtt_step(hass, entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow_id, {CONF_MQTT_MODE: MQTT_HOME_ASSISTANT, **MIRROR}
    )
    assert result["errors"] == {"base": "mqtt_not_set_up"}
