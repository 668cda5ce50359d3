"""The Incidents event entity: one event per incident change, none dropped, readable attributes."""

from __future__ import annotations

from collections.abc import AsyncIterator
import logging
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest

from custom_components.saymon.const import DOMAIN, EVENT_INCIDENT, EVENT_STATE_CHANGED
from custom_components.saymon.hub import SaymonHub
from tests.util import present, wait_for
from tools.simulator import (
    STATE_ALARM,
    STATE_DOWN,
    STATE_OVERLOADED,
    STATE_WORKING,
    SaymonSimulator,
)

from .common import serving, setup_entry


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=20, seed=4)) as sim:
        yield sim


async def test_every_incident_of_a_burst_is_its_own_event(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """A resync replays what Comet missed in one loop tick; each change is one event."""
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    entity = present(
        er.async_get(hass).async_get_entity_id("event", DOMAIN, f"{hub.server_key}|incidents")
    )
    fired: list[tuple[str, str, Any]] = []
    written: list[tuple[str, str, Any]] = []
    turned: list[bool] = []  # appended to one loop turn after the first replayed event
    same_turn: list[bool] = []  # per replayed event: still in the first one's loop turn

    @callback
    def on_incident(event: Event) -> None:
        fired.append((event.data["type"], event.data["incident_id"], event.context.id))
        if event.data["replayed"]:
            if not same_turn:
                hass.loop.call_soon(turned.append, True)
            same_turn.append(not turned)

    @callback
    def on_state(event: Event) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] == entity and new is not None:
            attributes = new.attributes
            written.append((attributes["event_type"], attributes["incident_id"], new.context.id))

    hass.bus.async_listen(EVENT_INCIDENT, on_incident)
    hass.bus.async_listen("state_changed", on_state)

    updates, closes, opens = [
        o.id
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING and o.id in hub.objects_in_scope
    ][:3]
    await simulator.set_state(updates, STATE_ALARM)
    await simulator.set_state(closes, STATE_DOWN)
    await wait_for(lambda: len(fired) == 2, what="two live incidents")
    await hass.async_block_till_done()

    await simulator.stop_comet()
    await wait_for(lambda: not hub.connected, what="disconnect")
    await simulator.set_state(opens, STATE_ALARM)
    await simulator.set_state(updates, STATE_OVERLOADED)
    await simulator.set_state(closes, STATE_WORKING)
    await simulator.start_comet()
    await wait_for(lambda: len(fired) == 5, what="three replayed incidents")
    await hass.async_block_till_done()

    assert sorted(kind for kind, _, _ in fired[2:]) == ["closed", "opened", "updated"]
    assert same_turn == [True, True, True], "the resync replays in one loop turn"
    # Each change is its own event, in order (before, a burst showed only its last change)...
    assert [(kind, incident) for kind, incident, _ in written] == [
        (kind, incident) for kind, incident, _ in fired
    ]
    # ...written in its bus event's context, so the logbook names the incident as the cause.
    assert [context for *_, context in written] == [context for *_, context in fired]
    state = present(hass.states.get(entity))
    assert state.attributes["event_type"] == fired[-1][0]
    assert state.attributes["replayed"] is True


async def test_event_attributes_name_the_incident(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    entity = present(
        er.async_get(hass).async_get_entity_id("event", DOMAIN, f"{hub.server_key}|incidents")
    )
    target = next(
        o
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING and o.id in hub.objects_in_scope
    )
    await simulator.set_state(target.id, STATE_ALARM)
    await wait_for(lambda: hub.model.has_incident(target.id), what="incident")
    await hass.async_block_till_done()
    incident = present(simulator.model.incidents.open_for((1, target.id)))
    attributes = present(hass.states.get(entity)).attributes
    assert {key: attributes[key] for key in ("event_type", "object_name", "object_id")} == {
        "event_type": "opened",
        "object_name": target.name,
        "object_id": target.id,
    }
    assert attributes["incident_id"] == incident.id
    assert attributes["text"] == incident.text
    assert attributes["level"] == "Alarm"
    assert attributes["level_key"] == "alarm"  # translated by the frontend (strings.json)
    assert attributes["replayed"] is False


async def test_a_removed_incidents_entity_lets_go_of_the_hub(
    hass: HomeAssistant, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The Incidents entity removed while its entry runs, then the entry unloaded: no error.

    Its incident listener is unsubscribed as it goes. Break guarded: the unsubscribe that
    ``BusEvents.add_incident_listener`` returns removing the wrong listener (a ``ValueError``
    as the entity goes, and the entry does not unload cleanly).
    """
    entry = await setup_entry(hass, simulator)
    hub: SaymonHub = entry.runtime_data.hub
    registry = er.async_get(hass)
    entity = present(registry.async_get_entity_id("event", DOMAIN, f"{hub.server_key}|incidents"))
    registry.async_remove(entity)
    await hass.async_block_till_done()
    assert hass.states.get(entity) is None
    fired: list[str] = []
    hass.bus.async_listen(EVENT_INCIDENT, callback(lambda event: fired.append(event.data["type"])))
    object_id = next(
        o.id
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING and o.id in hub.objects_in_scope
    )
    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(lambda: fired == ["opened"], what="the incident")
    await hass.async_block_till_done()
    assert hass.states.get(entity) is None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_link_state_change_is_a_bus_event(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """With links read, a link's state change fires ``saymon_state_changed`` like an object's.

    Break guarded: ``BusEvents.on_changes`` asking the scope about the change without its
    entity type (a link then counts as an object, which it is not, and fires nothing).
    """
    entry = await setup_entry(hass, simulator, options={"links": True})
    hub: SaymonHub = entry.runtime_data.hub
    link = next(iter(simulator.model.links.values()))
    await wait_for(lambda: link.id in hub.links_in_scope, what="the link in scope")
    fired: list[dict[str, Any]] = []
    hass.bus.async_listen(
        EVENT_STATE_CHANGED, callback(lambda event: fired.append(dict(event.data)))
    )
    await simulator.set_link_state(link.id, STATE_ALARM)
    await wait_for(lambda: bool(fired), what="the link's bus event")
    await hass.async_block_till_done()
    assert [(e["entity_type"], e["object_id"], e["new_state"], e["device_id"]) for e in fired] == [
        ("link", link.id, "Alarm", None)
    ]
