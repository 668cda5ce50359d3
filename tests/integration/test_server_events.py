"""SAYMON's server events in Home Assistant, end to end over real sockets to the simulator.

Each kind (SNMP trap, MQTT message, client notification, job) becomes a bus event with the
device of its object, an event on that object's event entity (or the server device's, without
an object in scope) and fires its device trigger in a real automation; kinds are chosen and
dropped in the options at runtime; a storm is cut by the per-object limit while state updates
go on. The logbook: test_logbook_server_events.py; MQTT: tests/mirror/test_server_events.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant, ServiceCall, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest

from custom_components.saymon.api.ratelimit import BURST
from custom_components.saymon.const import (
    DOMAIN,
    EVENT_BULK_FINISHED,
    EVENT_JOB,
    EVENT_MQTT_MESSAGE,
    EVENT_NOTIFICATION,
    EVENT_SNMP_TRAP,
    EVENT_STATE_CHANGED,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.server_kinds import KINDS
from tests.util import present, wait_for
from tools.simulator import STATE_ALARM, STATE_WORKING, SaymonSimulator

from .common import serving, settled, setup_entry

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")

ALL_ON = {kind.key: True for kind in KINDS}


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=20, seed=5)) as sim:
        yield sim


def record(hass: HomeAssistant, *event_types: str) -> list[Event]:
    seen: list[Event] = []

    @callback
    def keep(event: Event) -> None:
        seen.append(event)

    for event_type in event_types:
        hass.bus.async_listen(event_type, keep)
    return seen


def event_entity(hass: HomeAssistant, hub: SaymonHub, key: str, object_id: str | None) -> str:
    unique_id = (
        f"{hub.server_key}|{key}"
        if object_id is None
        else f"{hub.server_key}|object|{object_id}|{key}"
    )
    return present(er.async_get(hass).async_get_entity_id("event", DOMAIN, unique_id))


async def test_every_kind_reaches_bus_entity_and_trigger(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, ALL_ON)
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="bulk-finished")
    first = next(o.id for o in simulator.model.objects.values() if o.operations)
    second = next(o for o in hub.objects_in_scope if o != first)
    device = present(hub.device(hub.object_identifier(first))).id
    other = present(hub.device(hub.object_identifier(second))).id

    calls: list[dict[str, Any]] = []

    @callback
    def called(call: ServiceCall) -> None:
        calls.append(dict(call.data))

    hass.services.async_register("test", "record", called)
    triggers: dict[str, dict[str, Any]] = {
        "snmp_trap_received": {},
        "mqtt_message_received": {},
        "notification_received": {},
        "operation_finished": {},
    }
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "triggers": {
                        "trigger": "device",
                        "domain": DOMAIN,
                        "device_id": device,
                        "type": kind,
                        **extra,
                    },
                    "actions": {
                        "action": "test.record",
                        "data": {"kind": kind, "type": "{{ trigger.event.data.type }}"},
                    },
                }
                for kind, extra in triggers.items()
            ]
        },
    )
    seen = record(
        hass,
        EVENT_SNMP_TRAP,
        EVENT_MQTT_MESSAGE,
        EVENT_NOTIFICATION,
        EVENT_JOB,
        EVENT_BULK_FINISHED,
    )
    await simulator.emit_server_event("snmp-trap", first, TEXT="Link down", LEVEL=1)
    await simulator.emit_server_event(
        "mqtt", first, ENTITY2_ID=second, ENTITY2_NAME="ignored", MESSAGE="42"
    )
    await simulator.emit_server_event("client-notification", first, STATE_ID=5)
    await hass.services.async_call(
        DOMAIN,
        "run_operation",
        {"device_id": device, "operation": "Restart service", "wait": True},
        blocking=True,
        return_response=True,
    )
    await simulator.emit_server_event("bulk-finished", BULK_ID="b1")
    await wait_for(lambda: len(seen) == 6, what=f"six bus events, got {seen}")
    trap, message, note, started, finished, bulk = seen
    assert trap.event_type == EVENT_SNMP_TRAP
    assert trap.data["text"] == "Link down"  # the embedded quotes are gone
    assert trap.data["level"] == "Alarm"
    assert trap.data["object_name"] == simulator.model.objects[first].name
    assert (trap.data["device_id"], trap.data["device_ids"]) == (device, [device])
    assert trap.data["config_entry_id"] == entry.entry_id
    # One MQTT message of two objects: both devices.
    assert message.data["device_ids"] == [device, other]
    assert [o["object_id"] for o in message.data["objects"]] == [first, second]
    assert note.data["state"] == "Alarm"
    assert (started.data["type"], finished.data["type"]) == ("started", "finished")
    assert finished.data["operation_name"] == "Restart service"
    assert finished.data["exit_code"] == 0
    assert bulk.data["bulk_id"] == "b1"
    assert finished.data["object_id"] == first

    # The object's event entities, each with its event.
    states = {
        key: present(hass.states.get(event_entity(hass, hub, key, first))).attributes
        for key in ("snmp_traps", "mqtt_messages", "client_notifications", "jobs")
    }
    assert states["snmp_traps"]["event_type"] == "trap"
    assert states["snmp_traps"]["level_key"] == "alarm"
    assert states["mqtt_messages"]["message"] == "42"
    assert states["client_notifications"]["event_type"] == "notification"
    assert states["jobs"]["event_type"] == "finished"
    # The second object's MQTT entity got the same message; nothing went to the server's.
    assert (
        present(hass.states.get(event_entity(hass, hub, "mqtt_messages", second))).attributes[
            "topic"
        ]
        == "sensors/rack1/temperature"
    )
    assert present(hass.states.get(event_entity(hass, hub, "mqtt_messages", None))).state == (
        "unknown"
    )

    await wait_for(lambda: len(calls) == 4, what=f"four triggered automations, got {calls}")
    assert sorted((c["kind"], c["type"]) for c in calls) == [
        ("mqtt_message_received", "message"),
        ("notification_received", "notification"),
        ("operation_finished", "finished"),
        ("snmp_trap_received", "trap"),
    ]


async def test_trigger_conditions_level_and_exit_code(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, ALL_ON)
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="snmp-trap")
    host = next(o.id for o in simulator.model.objects.values() if o.operations)
    device = present(hub.device(hub.object_identifier(host))).id
    calls: list[str] = []

    @callback
    def called(call: ServiceCall) -> None:
        calls.append(call.data["what"])

    hass.services.async_register("test", "record", called)
    automations: list[tuple[str, dict[str, Any], str]] = [
        ("snmp_trap_received", {"level": "Alarm"}, "alarm trap"),
        ("snmp_trap_received", {"level": "2"}, "warning trap"),
        ("operation_finished", {"exit_code": 1}, "failed job"),
    ]
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "triggers": {
                        "trigger": "device",
                        "domain": DOMAIN,
                        "device_id": device,
                        "type": kind,
                        **extra,
                    },
                    "actions": {"action": "test.record", "data": {"what": what}},
                }
                for kind, extra, what in automations
            ]
        },
    )
    await simulator.emit_server_event("snmp-trap", host, LEVEL=1)
    await simulator.emit_server_event("snmp-trap", host, LEVEL=4)
    await simulator.emit_server_event("snmp-trap", host, shape="surprising")  # level "2"
    await hass.services.async_call(
        DOMAIN,
        "run_operation",
        {"device_id": device, "operation": "Ping", "wait": True},
        blocking=True,
    )
    simulator.operations.faults.fail = True
    await hass.services.async_call(
        DOMAIN,
        "run_operation",
        {"device_id": device, "operation": "Ping", "wait": True},
        blocking=True,
    )
    await wait_for(lambda: len(calls) == 3, what=f"three automations, got {calls}")
    assert sorted(calls) == ["alarm trap", "failed job", "warning trap"]


async def test_events_without_an_object_in_scope_go_to_the_server_device(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {"snmp_traps": True})
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="snmp-trap")
    seen = record(hass, EVENT_SNMP_TRAP)
    await simulator.emit_server_event(
        "snmp-trap", "5ac3a4b2a9fd5c3965dac350", TEXT="stray", ENTITY_NAME="SNMP TRAP"
    )
    await wait_for(lambda: len(seen) == 1, what="the trap")
    assert seen[0].data["device_id"] is None
    assert seen[0].data["device_ids"] == []
    assert seen[0].data["object_name"] == "SNMP TRAP"  # the name SAYMON gave in the event
    attributes = present(hass.states.get(event_entity(hass, hub, "snmp_traps", None))).attributes
    assert attributes["text"] == "stray"
    # Only the chosen kind has entities.
    registry = er.async_get(hass)
    keys = {
        e.unique_id.rpartition("|")[2]
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain == "event"
    }
    assert keys == {"incidents", "snmp_traps"}


async def test_choosing_and_dropping_kinds_at_runtime(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    """The options flow turns kinds on and off: subscriptions and entities follow."""
    entry = await setup_entry(hass, simulator)
    (socket,) = simulator.sockets()
    assert "snmp-trap" not in socket.topics
    registry = er.async_get(hass)

    def event_keys() -> set[str]:
        return {
            e.unique_id.rpartition("|")[2]
            for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            if e.domain == "event"
        }

    assert event_keys() == {"incidents"}
    for chosen, topics in (
        ({"snmp_traps": True, "jobs": True}, {"snmp-trap", "job-added", "job-result-received"}),
        ({"jobs": True}, {"job-added", "job-result-received"}),
    ):
        result = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "events"}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "events"
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {**{kind.key: False for kind in KINDS}, **chosen, "transport": "websocket"},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await settled(hass, entry)
        assert entry.state is ConfigEntryState.LOADED

        def subscribed(wanted: set[str] = topics) -> bool:
            return any(
                wanted <= s.topics and ("snmp-trap" in s.topics) == ("snmp-trap" in wanted)
                for s in simulator.sockets()
            )

        await wait_for(subscribed, what=f"subscribed to {topics}")
        assert event_keys() == {"incidents", *chosen}


async def test_a_storm_is_cut_per_object_and_states_go_on(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> None:
    entry = await setup_entry(hass, simulator, {"snmp_traps": True, "mqtt_messages": True})
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="snmp-trap")
    noisy, quiet, changing = [
        o.id
        for o in simulator.model.objects.values()
        if o.id in hub.objects_in_scope and o.state_id == STATE_WORKING
    ][:3]
    seen = record(hass, EVENT_SNMP_TRAP, EVENT_MQTT_MESSAGE, EVENT_STATE_CHANGED)
    await simulator.emit_server_event("snmp-trap", noisy, count=200)
    await simulator.set_state(changing, STATE_ALARM)
    await simulator.emit_server_event("snmp-trap", quiet, count=3)
    await simulator.emit_server_event("mqtt", noisy, count=5)  # another kind: its own limit
    await wait_for(
        lambda: sum(hub.comet.stats.events[t] for t in ("snmp-trap", "mqtt")) == 208,
        what="every event handled",
    )
    await hass.async_block_till_done()
    traps = [e for e in seen if e.event_type == EVENT_SNMP_TRAP]
    noisy_traps = [e for e in traps if e.data["object_id"] == noisy]
    # The burst, plus what refilled at 2 a second while the 200 arrived.
    assert BURST <= len(noisy_traps) <= BURST + 4
    assert len([e for e in traps if e.data["object_id"] == quiet]) == 3
    assert len([e for e in seen if e.event_type == EVENT_MQTT_MESSAGE]) == 5
    assert [e.data["object_id"] for e in seen if e.event_type == EVENT_STATE_CHANGED] == [changing]
    limit = hub.live.gate.diagnostics()
    assert limit["dropped"] == {"snmp-trap": 200 - len(noisy_traps)}
    assert limit["objects_limited"] == 1
    entity = event_entity(hass, hub, "snmp_traps", noisy)
    assert present(hass.states.get(entity)).state != "unknown"
