"""Home Assistant MQTT transport without a working MQTT integration: no crash, counted."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
import pytest

from custom_components.saymon.mqtt.ha_transport import HomeAssistantMqttTransport
from tests.util import wait_for


async def test_without_mqtt_it_stays_quiet(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    connected: list[bool] = []
    transport = HomeAssistantMqttTransport(
        hass, status_topic="t/status", on_connected=lambda: connected.append(True), queue_size=1
    )
    assert transport.publish("t/a", b"1")
    assert not transport.publish("t/b", b"2")  # the queue holds one message
    assert transport.stats()["dropped_overflow"] == 1
    await transport.async_start()
    await wait_for(lambda: "not available" in caplog.text, what="warning")
    assert not transport.connected
    assert connected == []
    await transport._send("t/c", b"3", 0, False)  # MQTT is not set up: counted, not raised
    assert transport.stats()["failed"] == 1
    await transport.async_stop()
    await transport.async_stop()  # idempotent
    assert transport.stats()["queued"] == 1
