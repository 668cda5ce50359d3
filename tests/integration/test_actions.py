"""Actions, device triggers and diagnostics (the logbook: test_logbook.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_get_device_automations
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.saymon.const import DOMAIN
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import (
    STATE_ALARM,
    STATE_WORKING,
    VIEWER_LOGIN,
    VIEWER_PASSWORD,
    SaymonSimulator,
)

from .common import serving, settled, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=30, seed=11)) as sim:
        yield sim


@pytest.fixture
async def hub(hass: HomeAssistant, simulator: SaymonSimulator) -> SaymonHub:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="Comet")
    await simulator.wait_for_sockets(1, topic="model-changed")
    return hub


async def open_incident(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> tuple[str, str]:
    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(object_id), what="incident in the model")
    incident = simulator.model.incidents.open_for((1, object_id))
    assert incident is not None
    return object_id, incident.id


async def test_acknowledge_unacknowledge_clear(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    _, incident_id = await open_incident(hass, simulator, hub)
    await hass.services.async_call(
        DOMAIN, "acknowledge_incident", {"incident_id": incident_id}, blocking=True
    )
    assert simulator.model.incidents.get(incident_id).acknowledged_by == simulator.user_id
    await wait_for(
        lambda: hub.model.incidents[incident_id].acknowledged_by == simulator.user_id,
        what="ack event",
    )
    await hass.services.async_call(
        DOMAIN,
        "unacknowledge_incident",
        {"incident_id": incident_id, "config_entry_id": hub.entry.entry_id},
        blocking=True,
    )
    assert simulator.model.incidents.get(incident_id).acknowledged_by is None
    await hass.services.async_call(
        DOMAIN, "clear_incident", {"incident_id": incident_id}, blocking=True
    )
    await wait_for(lambda: incident_id not in hub.model.incidents, what="closed")


async def test_action_failures(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "acknowledge_incident", {"incident_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "incident_not_found"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "acknowledge_incident",
            {"incident_id": "x", "config_entry_id": "missing"},
            blocking=True,
        )
    assert err.value.translation_key == "entry_not_found"
    simulator.fail_next(3)
    _, incident_id = next(iter([(None, i) for i in hub.model.incidents]))
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN, "clear_incident", {"incident_id": incident_id}, blocking=True
        )
    assert failed.value.translation_key == "action_failed"


async def test_permission_denied(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    entry = await setup_entry(hass, simulator, username=VIEWER_LOGIN, password=VIEWER_PASSWORD)
    incident_id = next(iter(entry.runtime_data.hub.model.incidents))
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN, "acknowledge_incident", {"incident_id": incident_id}, blocking=True
        )
    assert err.value.translation_key == "permission_denied"


async def test_actions_need_a_loaded_entry(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    assert await hass.config_entries.async_unload(hub.entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
    assert err.value.translation_key == "no_entries"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "refresh", {"config_entry_id": hub.entry.entry_id}, blocking=True
        )
    assert err.value.translation_key == "entry_not_loaded"


async def test_get_incidents_filters(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    object_id, incident_id = await open_incident(hass, simulator, hub)
    every = cast(
        dict[str, Any],
        await hass.services.async_call(
            DOMAIN, "get_incidents", {}, blocking=True, return_response=True
        ),
    )
    assert {i["incident_id"] for i in every["incidents"]} == set(simulator.model.incidents.active)
    device = present(hub.device(hub.object_identifier(object_id)))
    by_device = cast(
        dict[str, Any],
        await hass.services.async_call(
            DOMAIN, "get_incidents", {"device_id": device.id}, blocking=True, return_response=True
        ),
    )
    assert [i["incident_id"] for i in by_device["incidents"]] == [incident_id]
    by_object = await hass.services.async_call(
        DOMAIN, "get_incidents", {"object_id": object_id}, blocking=True, return_response=True
    )
    assert by_object == by_device
    by_level = cast(
        dict[str, Any],
        await hass.services.async_call(
            DOMAIN, "get_incidents", {"level": "Alarm"}, blocking=True, return_response=True
        ),
    )
    assert incident_id in {i["incident_id"] for i in by_level["incidents"]}
    assert all(i["level"] == "Alarm" for i in by_level["incidents"])
    by_level_id = await hass.services.async_call(
        DOMAIN, "get_incidents", {"level": "1"}, blocking=True, return_response=True
    )
    assert by_level_id == by_level


async def test_refresh_resyncs(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    before = hub.resyncs
    await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
    assert hub.resyncs == before + 1


async def test_refresh_that_cannot_read_saymon_fails(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    """A refresh whose resync failed says so (it used to report success)."""
    await simulator.stop_rest()
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == "refresh_failed"
    assert caught.value.translation_placeholders == {"host": hub.host}
    assert str(caught.value).startswith(f"SAYMON at {hub.host} could not be read again.")

    await simulator.start_rest()
    before = hub.resyncs
    await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
    assert hub.resyncs == before + 1


async def test_device_triggers(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    object_id = next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    device = present(hub.device(hub.object_identifier(object_id)))
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, device.id)
    ours = [t for t in triggers if t["domain"] == DOMAIN]
    # With no server events chosen, only the operation trigger is added (results of operations
    # run from Home Assistant are always reported).
    assert {t["type"] for t in ours} == {
        "incident_opened",
        "incident_closed",
        "state_changed",
        "operation_finished",
    }
    server = present(hub.device(hub.server_identifier))
    server_triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, server.id
    )
    assert [t for t in server_triggers if t["domain"] == DOMAIN] == []

    calls: list[dict[str, Any]] = []

    @callback
    def record(call: ServiceCall) -> None:
        calls.append(dict(call.data))

    hass.services.async_register("test", "record", record)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "trigger": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": device.id,
                        "type": kind,
                    },
                    "action": {"service": "test.record", "data": {"kind": kind}},
                }
                for kind in ("incident_opened", "incident_closed", "state_changed")
            ]
        },
    )
    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(lambda: len(calls) == 2, what="opened + state triggers")
    await simulator.set_state(object_id, STATE_WORKING)
    await wait_for(lambda: len(calls) == 4, what="closed + state triggers")
    assert sorted(c["kind"] for c in calls) == [
        "incident_closed",
        "incident_opened",
        "state_changed",
        "state_changed",
    ]


async def test_diagnostics_are_redacted(
    hass: HomeAssistant, hass_client: Any, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    assert await async_setup_component(hass, "diagnostics", {})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, hub.entry)
    text = repr(diagnostics)
    for secret in (
        simulator.password,
        hub.rest.session_id or "x-none",
        simulator.user_id,
        "127.0.0.1",
        simulator.login,
    ):
        assert secret not in text, secret
    assert diagnostics["hub"]["model"]["objects"] == len(simulator.model.objects)
    assert diagnostics["hub"]["comet"]["connects"] >= 1
    assert diagnostics["hub"]["subscriptions"] == [
        "incidents",
        "incident-count",
        "state-change",
        "model-changed",
    ]
    assert diagnostics["entry"]["data"]["password"] == "**REDACTED**"
    hooks = diagnostics["library_hooks"]
    assert {name: hooks[name]["overrides"] for name in hooks} == dict.fromkeys(
        ("comet", "polling", "mqtt"), "active"
    )


async def test_options_change_reloads(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    entry = hub.entry
    hass.config_entries.async_update_entry(entry, options={**entry.options, "grace_period": 5})
    await settled(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.hub is not hub
    assert entry.runtime_data.hub.availability._grace_period == 5
