"""Logbook lines of server events, in English and in Russian, read as the Logbook panel does.

The real recorder and logbook run; lines are read with ``logbook/get_events`` after real traps,
MQT messages, notifications and jobs from the simulator. Each line names the object, says what
happened in Home Assistant's language (from the integration's translations) and links the
object's event entity of that kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest

from custom_components.saymon.const import DOMAIN, EVENT_SNMP_TRAP
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.server_kinds import KINDS
from tests.util import wait_for
from tools.simulator import SaymonSimulator

from .common import serving, setup_entry
from .test_logbook import entity_of, logbook, mock_recorder_before_hass, read_logbook

__all__ = ["logbook", "mock_recorder_before_hass"]  # the fixtures this module uses


@pytest.fixture
async def simulator(hass: HomeAssistant, logbook: None) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=12, seed=11)) as sim:
        yield sim


async def happen(hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub) -> str:
    """A trap, an MQTT message, a notification and an operation about one object."""
    target = next(o.id for o in simulator.model.objects.values() if o.operations)
    await simulator.wait_for_sockets(1, topic="snmp-trap")
    await simulator.emit_server_event("snmp-trap", target, TEXT="Link down", LEVEL=1)
    await simulator.emit_server_event("mqtt", target, MESSAGE="21.5")
    await simulator.emit_server_event("client-notification", target, STATE_ID=5)
    await hass.services.async_call(
        DOMAIN,
        "run_operation",
        {
            "device_id": hub.devices.device_id_of(target),
            "operation": "Ping",
            "arguments": {"host": "h", "count": 1},
            "wait": True,
        },
        blocking=True,
    )
    await wait_for(lambda: hub.server_events.fired["saymon_job"] == 2, what="both job events")
    return target


def described(lines: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [
        (line["name"], line["message"], line.get("entity_id"))
        for line in lines
        if line.get("domain") == DOMAIN
    ]


async def test_lines_in_english(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {kind.key: True for kind in KINDS})
    hub: SaymonHub = entry.runtime_data.hub
    start = dt_util.utcnow()
    target = await happen(hass, simulator, hub)
    name = simulator.model.objects[target].name

    def entity(key: str) -> str:
        return entity_of(hass, "event", f"{hub.server_key}|object|{target}|{key}")

    lines = await read_logbook(hass, hass_ws_client, start)
    assert described(lines) == [
        (name, "SNMP trap received: Link down (Alarm)", entity("snmp_traps")),
        (name, "MQTT message received: sensors/rack1/temperature = 21.5", entity("mqtt_messages")),
        (name, "Notification: Alarm", entity("client_notifications")),
        (name, "Operation started: Ping", entity("jobs")),
        (name, "Operation finished: Ping, Exit code 0", entity("jobs")),
    ]
    icons = [line["icon"] for line in lines if line.get("domain") == DOMAIN]
    assert icons[0] == "mdi:alarm-light-outline"
    assert icons[-1] == "mdi:check-circle-outline"
    # The event entity's own line names the trap as its cause.
    [trap_line] = [
        line
        for line in lines
        if line.get("entity_id") == entity("snmp_traps") and "domain" not in line
    ]
    assert trap_line["context_event_type"] == EVENT_SNMP_TRAP
    assert trap_line["context_message"] == "SNMP trap received: Link down (Alarm)"


async def test_lines_in_russian(
    hass: HomeAssistant, hass_ws_client: Any, simulator: SaymonSimulator
) -> None:
    hass.config.language = "ru"
    entry = await setup_entry(hass, simulator, {kind.key: True for kind in KINDS})
    hub: SaymonHub = entry.runtime_data.hub
    start = dt_util.utcnow()
    target = await happen(hass, simulator, hub)
    name = simulator.model.objects[target].name
    messages = [
        message for _, message, _ in described(await read_logbook(hass, hass_ws_client, start))
    ]
    assert messages == [
        "Получена SNMP-ловушка: Link down (Alarm)",
        "Получено сообщение MQTT: sensors/rack1/temperature = 21.5",
        "Уведомление: Alarm",
        "Операция запущена: Ping",
        "Операция завершена: Ping, Код завершения 0",
    ]
    assert name
