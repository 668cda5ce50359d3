"""Actions with two SAYMON servers loaded: each incident goes to the server that has it.

With one entry every action goes to it; with two, an incident id picks its server, an id
neither (or both) has is refused with a message that says so, ``get_incidents`` lists both
servers' incidents (filtered by entry and level), and a refresh that fails names both hosts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
import voluptuous as vol

from custom_components.saymon.const import DOMAIN
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import ENTITY_OBJECT, STATE_ALARM, STATE_DOWN, STATE_WORKING, SaymonSimulator

from .common import serving, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def first(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=8, seed=41)) as sim:
        yield sim


@pytest.fixture
async def second(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=8, seed=42)) as sim:
        yield sim


async def incident_on(sim: SaymonSimulator, hub: SaymonHub, state: int) -> str:
    """Open an incident on a quiet object and return its id once the hub has it."""
    object_id = next(
        o.id
        for o in sim.model.objects.values()
        if o.state_id == STATE_WORKING
        and sim.model.incidents.open_for((ENTITY_OBJECT, o.id)) is None
    )
    await sim.set_state(object_id, state)
    incident = present(sim.model.incidents.open_for((ENTITY_OBJECT, object_id)))
    await wait_for(lambda: incident.id in hub.model.incidents, what="the incident")
    return incident.id


async def listed(hass: HomeAssistant, **data: Any) -> list[dict[str, Any]]:
    response = cast(
        dict[str, Any],
        await hass.services.async_call(
            DOMAIN, "get_incidents", data, blocking=True, return_response=True
        ),
    )
    incidents: list[dict[str, Any]] = response["incidents"]
    return incidents


async def test_actions_find_the_server_of_an_incident(
    hass: HomeAssistant, first: SaymonSimulator, second: SaymonSimulator
) -> None:
    one: SaymonHub = (await setup_entry(hass, first)).runtime_data.hub
    two: SaymonHub = (await setup_entry(hass, second)).runtime_data.hub
    alarm = await incident_on(second, two, STATE_ALARM)
    major = await incident_on(second, two, STATE_DOWN)
    mine = await incident_on(first, one, STATE_ALARM)

    # An incident id picks its server.
    await hass.services.async_call(
        DOMAIN, "acknowledge_incident", {"incident_id": alarm}, blocking=True
    )
    assert second.model.incidents.get(alarm).acknowledged_by == second.user_id
    assert first.model.incidents.get(mine).acknowledged_by is None
    # One neither server has: refused, and the message says why.
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "acknowledge_incident", {"incident_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "ambiguous_incident"
    assert str(err.value) == (
        "Incident nope is not an active incident of exactly one SAYMON server; choose the server"
    )
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(DOMAIN, "acknowledge_incident", {}, blocking=True)

    # Both servers' incidents, each naming its entry, oldest first per server.
    everything = await listed(hass)
    by_entry: dict[str, list[str]] = {}
    for incident in everything:
        by_entry.setdefault(incident["config_entry_id"], []).append(incident["incident_id"])
    assert {key: set(ids) for key, ids in by_entry.items()} == {
        one.entry.entry_id: set(first.model.incidents.active),
        two.entry.entry_id: set(second.model.incidents.active),
    }
    for hub in (one, two):
        expected = sorted(hub.model.incidents.values(), key=lambda i: (i.timestamp or 0, i.id))
        assert by_entry[hub.entry.entry_id] == [i.id for i in expected]
    only_second = await listed(hass, config_entry_id=two.entry.entry_id)
    assert {i["incident_id"] for i in only_second} == set(second.model.incidents.active)
    majors = await listed(hass, level="Major")
    assert major in {i["incident_id"] for i in majors}
    assert {i["level"] for i in majors} == {"Major"}
    assert alarm not in {i["incident_id"] for i in majors}
    with pytest.raises(ServiceValidationError):  # a list must be asked for as a response
        await hass.services.async_call(DOMAIN, "get_incidents", {}, blocking=True)
    with pytest.raises(vol.Invalid):
        await hass.services.async_call(
            DOMAIN, "refresh", {"incident_id": alarm}, blocking=True, return_response=False
        )

    # A refresh that cannot read either server names both.
    await first.stop_rest()
    await second.stop_rest()
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
    assert failed.value.translation_placeholders == {"host": f"{one.host}, {two.host}"}
    await first.start_rest()
    await second.start_rest()
