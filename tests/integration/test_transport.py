"""The long-polling transport in Home Assistant, behind a proxy that refuses WebSocket.

Set up through the config flow, the integration finds that WebSocket is refused and keeps
long-polling; the live picture then follows SAYMON with the same guarantees as over WebSocket:
live changes, a storm, server events, and what changed during an outage replayed after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import AsyncMock

from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.saymon.const import (
    CONF_COMET,
    CONF_TRANSPORT,
    DOMAIN,
    EVENT_SNMP_TRAP,
    EVENT_STATE_CHANGED,
)
from custom_components.saymon.hub import SaymonHub
from tests.http_proxy import NoWebSocketProxy
from tests.util import present, wait_for
from tools.simulator import STATE_ALARM, STATE_DOWN, STATE_WORKING, SaymonSimulator

from .common import serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=30, seed=13)) as sim:
        yield sim


@pytest.fixture
async def proxy(simulator: SaymonSimulator) -> AsyncIterator[NoWebSocketProxy]:
    proxy = NoWebSocketProxy(simulator.comet_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def test_config_flow_keeps_long_polling_where_websocket_is_refused(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    proxy: NoWebSocketProxy,
    mock_setup_entry: AsyncMock,
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": "user"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": simulator.rest_url, CONF_COMET: proxy.url, "verify_ssl": True}
    )
    assert result["type"] is FlowResultType.MENU, result
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "password"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_USERNAME: simulator.login, CONF_PASSWORD: simulator.password},
    )
    assert result["type"] is FlowResultType.MENU, result  # the Comet handshake passed
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "scope_all"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "scope_create"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_TRANSPORT] == "polling"
    assert proxy.refused >= 1


async def test_live_over_long_polling_behind_the_proxy(
    hass: HomeAssistant, simulator: SaymonSimulator, proxy: NoWebSocketProxy
) -> None:
    entry = await setup_entry(
        hass, simulator, {CONF_TRANSPORT: "polling", "snmp_traps": True}, **{CONF_COMET: proxy.url}
    )
    hub: SaymonHub = entry.runtime_data.hub
    assert hub.comet.transports == ("polling", "websocket")
    assert proxy.refused >= 1
    registry = er.async_get(hass)
    working = [
        o.id
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING and o.id in hub.objects_in_scope
    ]

    def state_of(object_id: str) -> str:
        entity_id = present(
            registry.async_get_entity_id(
                "sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|state"
            )
        )
        return present(hass.states.get(entity_id)).state

    # Live.
    await simulator.set_state(working[0], STATE_ALARM)
    await wait_for(lambda: state_of(working[0]) == "alarm", what="a live change")

    # A storm: far more events than python-engineio reads per poll by default.
    seen: list[Event] = []

    @callback
    def keep(event: Event) -> None:
        seen.append(event)

    hass.bus.async_listen(EVENT_STATE_CHANGED, keep)
    hass.bus.async_listen(EVENT_SNMP_TRAP, keep)
    result = await simulator.storm(300, kinds=("state-change", "incidents"))
    await simulator.emit_server_event("snmp-trap", working[1])
    await wait_for(
        lambda: any(e.event_type == EVENT_SNMP_TRAP for e in seen), timeout=30, what="the trap"
    )
    assert len([e for e in seen if e.event_type == EVENT_STATE_CHANGED]) == result.by_event.get(
        "state-change", 0
    )
    assert hub.comet.stats.disconnects == {}

    # An outage: what changed meanwhile is replayed after the reconnect, still over polling.
    connects = hub.comet.stats.connects
    await simulator.stop_comet()
    await wait_for(lambda: not hub.live.connected, what="the outage")
    await simulator.set_state(working[2], STATE_DOWN)
    await simulator.start_comet()
    await wait_for(lambda: hub.comet.stats.connects > connects, timeout=30, what="reconnected")
    await wait_for(lambda: state_of(working[2]) == "down", timeout=30, what="the replayed change")
    replayed = [e for e in seen if e.data.get("replayed")]
    assert [e.data["object_id"] for e in replayed] == [working[2]]
    assert proxy.refused >= 2  # every connection tried the upgrade and stayed on polling
