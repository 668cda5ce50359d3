"""``saymon.run_operation`` and the operation buttons against the simulator's operations.

Success with and without waiting, a failing script, no permission, SAYMON refusing, an unknown
operation, no result in time, and targets that are not one SAYMON object or link; each error is
the translated one for its case. A button runs its operation and the result arrives as an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.saymon.const import CONF_USER_ID, DOMAIN, EVENT_JOB
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import VIEWER_LOGIN, VIEWER_PASSWORD, SaymonSimulator

from .common import serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=20, seed=9)) as sim:
        yield sim


@pytest.fixture
async def hub(hass: HomeAssistant, simulator: SaymonSimulator) -> SaymonHub:
    entry = await setup_entry(hass, simulator, {"links": True})
    return entry.runtime_data.hub  # type: ignore[no-any-return]


def host(simulator: SaymonSimulator) -> str:
    return next(o.id for o in simulator.model.objects.values() if o.operations)


def device_of(hub: SaymonHub, object_id: str) -> str:
    return present(hub.device(hub.object_identifier(object_id))).id


async def run(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "run_operation", data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


def jobs(hass: HomeAssistant) -> list[Event]:
    seen: list[Event] = []

    @callback
    def keep(event: Event) -> None:
        seen.append(event)

    hass.bus.async_listen(EVENT_JOB, keep)
    return seen


async def test_run_and_wait_for_the_result(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    object_id = host(simulator)
    seen = jobs(hass)
    response = await run(
        hass,
        device_id=device_of(hub, object_id),
        operation="ping",  # by name, case-insensitively
        arguments={"host": "example.com", "count": 4},
        wait=True,
    )
    ping = simulator.model.objects[object_id].operations[0]
    assert response == {
        "job_id": response["job_id"],
        "operation_id": ping["id"],
        "operation_name": "Ping",
        "entity_type": "object",
        "object_id": object_id,
        "finished": True,
        "succeeded": True,
        "exit_code": 0,
        "stdout": "/bin/ping -c 4 example.com: done",
        "topic": None,
        "message": None,
    }
    assert simulator.operations.jobs[response["job_id"]]["owner_id"] == object_id
    # Job events are not chosen: the result was read over REST and fired all the same, once.
    await wait_for(lambda: len(seen) == 1, what="the result event")
    assert seen[0].data["type"] == "finished"
    assert seen[0].data["job_id"] == response["job_id"]
    assert seen[0].data["device_id"] == device_of(hub, object_id)


async def test_without_waiting_the_result_comes_as_an_event(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    object_id = host(simulator)
    seen = jobs(hass)
    entity_id = present(
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|state"
        )
    )
    response = await run(hass, entity_id=entity_id, operation="Send MQTT")
    assert response["finished"] is False
    await wait_for(lambda: len(seen) == 1, what="the result event")
    assert seen[0].data["topic"] == "saymon/test"
    assert seen[0].data["message"] == f"Ping from {object_id}"


async def test_a_link_operation_by_its_entity(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    link = sorted(hub.links_in_scope)[0]
    entity_id = present(
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|link|{link}|state"
        )
    )
    response = await run(hass, entity_id=entity_id, operation="Ping", wait=True)
    assert (response["entity_type"], response["object_id"], response["succeeded"]) == (
        "link",
        link,
        True,
    )


async def test_a_failing_script_is_a_result_not_an_error(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    simulator.operations.faults.fail = True
    response = await run(
        hass, device_id=device_of(hub, host(simulator)), operation="Restart service", wait=True
    )
    assert (response["succeeded"], response["exit_code"]) == (False, 1)
    assert response["stdout"] == "error: host unreachable"


async def test_errors_are_translated_and_specific(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    object_id = host(simulator)
    device = device_of(hub, object_id)
    name = simulator.model.objects[object_id].name

    with pytest.raises(ServiceValidationError) as unknown:
        await run(hass, device_id=device, operation="Reboot")
    assert unknown.value.translation_key == "operation_not_found"
    assert f"{name} has no SAYMON operation Reboot" in str(unknown.value)

    simulator.operations.faults.refuse = True
    with pytest.raises(HomeAssistantError) as refused:
        await run(hass, device_id=device, operation="Ping")
    assert refused.value.translation_key == "operation_refused"
    assert "script exited abnormally" in str(refused.value)

    simulator.operations.faults.reset()
    simulator.operations.faults.never = True
    with pytest.raises(HomeAssistantError) as late:
        await run(hass, device_id=device, operation="Ping", wait=True, timeout=1)
    assert late.value.translation_key == "operation_timeout"
    assert "no result after 1 seconds" in str(late.value)

    server = present(hub.device(hub.server_identifier)).id
    with pytest.raises(ServiceValidationError) as not_saymon:
        await run(hass, device_id=server, operation="Ping")
    assert not_saymon.value.translation_key == "operation_target_invalid"
    other = next(o for o in hub.objects_in_scope if o != object_id)
    with pytest.raises(ServiceValidationError) as two:
        await run(hass, device_id=[device, device_of(hub, other)], operation="Ping")
    assert two.value.translation_key == "operation_one_target"
    with pytest.raises(ServiceValidationError) as none:
        await run(hass, operation="Ping")
    assert none.value.translation_key == "operation_one_target"
    with pytest.raises(ServiceValidationError) as area:
        await run(hass, area_id="kitchen", operation="Ping")
    assert area.value.translation_key == "operation_one_target"


async def test_no_permission(hass: HomeAssistant, simulator: SaymonSimulator) -> None:
    viewer: dict[str, Any] = {
        CONF_USERNAME: VIEWER_LOGIN,
        CONF_PASSWORD: VIEWER_PASSWORD,
        CONF_USER_ID: simulator.accounts.viewer.id,
    }
    entry = await setup_entry(hass, simulator, None, **viewer)
    hub: SaymonHub = entry.runtime_data.hub
    with pytest.raises(HomeAssistantError) as denied:
        await run(hass, device_id=device_of(hub, host(simulator)), operation="Ping")
    assert denied.value.translation_key == "operation_permission_denied"
    assert "execute-operations" in str(denied.value)
    assert simulator.operations.executed == 0


async def test_a_button_runs_its_operation(
    hass: HomeAssistant, simulator: SaymonSimulator, hub: SaymonHub
) -> None:
    object_id = host(simulator)
    registry = er.async_get(hass)
    operations = simulator.model.objects[object_id].operations
    buttons = [
        present(
            registry.async_get_entity_id(
                "button", DOMAIN, f"{hub.server_key}|object|{object_id}|operation_{op['id']}"
            )
        )
        for op in operations
    ]
    entries = [present(registry.async_get(b)) for b in buttons]
    assert all(e.disabled_by is er.RegistryEntryDisabler.INTEGRATION for e in entries)
    registry.async_update_entity(buttons[0], disabled_by=None)
    await hass.config_entries.async_reload(hub.entry.entry_id)
    await hass.async_block_till_done()
    seen = jobs(hass)
    await hass.services.async_call("button", "press", {"entity_id": buttons[0]}, blocking=True)
    await wait_for(lambda: len(seen) == 1, what="the button's result")
    assert seen[0].data["operation_name"] == "Ping"
    assert seen[0].data["object_id"] == object_id
    assert simulator.operations.executed == 1
