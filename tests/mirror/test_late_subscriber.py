"""What a subscriber that connects later finds on the dedicated broker: SAYMON as it is now.

A live subscriber sees the empty message that deletes a removed object's retained state; only
one that connects afterwards shows whether the broker still holds it (it does when the
deletion is published without ``retain``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import logging
from typing import Any

from homeassistant.core import HomeAssistant, callback
import pytest

from custom_components.saymon.coalesce import STORM_FLUSH_INTERVAL
from custom_components.saymon.const import (
    CONF_LINKS,
    CONF_MQTT_QUEUE_SIZE,
    CONF_PARENTS,
    CONF_SCOPE,
    DOMAIN,
    SCOPE_SELECTED,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.broker import DedicatedBroker
from tests.integration.common import serving, setup_entry
from tests.mqtt_schema import validate
from tests.util import present, wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import (
    CLASS_HOST,
    ENTITY_OBJECT,
    STATE_ALARM,
    STATE_WORKING,
    SaymonSimulator,
)

from .test_mirror import BASE, mirror, mirror_options

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=12, seed=29)) as sim:
        yield sim


async def retained_picture(broker: MosquittoBroker, settle: str) -> dict[str, bytes]:
    """Every retained topic a fresh subscriber gets, once ``settle`` has arrived."""
    subscriber = Subscriber(broker.port, f"{BASE}/#")
    await subscriber.start()
    try:
        await subscriber.wait_for(lambda: subscriber.retained(settle) is not None, what=settle)
        count = -1
        while count != len(subscriber.messages):  # the broker sends them in one burst
            count = len(subscriber.messages)
            await asyncio.sleep(0.3)
        return {m.topic: m.payload for m in subscriber.messages if m.retain}
    finally:
        await subscriber.close()


async def test_a_late_subscriber_finds_nothing_of_deleted_objects(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    """Break guarded: the removal published without ``retain`` in ``SaymonMirror``."""
    entry = await setup_entry(hass, simulator, {**mirror_options(broker), CONF_LINKS: True})
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="model-changed")
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    root = simulator.model.root_id
    leaf = await simulator.create_object("Leaf host", root, CLASS_HOST)
    doomed = await simulator.create_object("Doomed host", root, CLASS_HOST)
    child = await simulator.create_object("Doomed child", doomed, CLASS_HOST)
    link = next(iter(simulator.model.links.values()))
    await wait_for(lambda: {leaf, doomed, child} <= hub.objects_in_scope, what="new objects")
    watcher = Subscriber(broker.port, f"{BASE}/#")
    await watcher.start()
    try:
        await watcher.wait_for(
            lambda: watcher.retained(f"{BASE}/objects/{child}/state") is not None,
            what="the doomed object's retained state",
        )
        await simulator.delete_object(doomed)  # SAYMON deletes the subtree, announcing its top
        await simulator.delete_object(link.source)  # takes its links (and subtree) along
        await watcher.wait_for(
            lambda: watcher.payloads(f"{BASE}/links/{link.id}/state")[-1:] == [b""],
            what="the link's state deleted",
        )
    finally:
        await watcher.close()
    model_events = [m for m in watcher.messages if m.topic == f"{BASE}/model/event"]
    assert model_events
    assert {(m.qos, m.retain) for m in model_events} == {(1, False)}  # the configured QoS
    await wait_for(lambda: mirror(hub).transport.backlog == 0, what="everything sent")
    diagnostics = mirror(hub).diagnostics()
    # Queue figures vary with timing; metric topics have their own tests (test_stat_topics).
    assert {
        key: value
        for key, value in diagnostics.items()
        if key not in ("transport", "stat_topics_published")
    } == {
        "mode": "broker",
        "qos": 1,
        "retain": True,
        "queue_size": mirror(hub).settings.queue_size,
        "connected": True,
        "snapshots_published": 1,
        "discovery": None,
    }
    gone = set(simulator.model.objects)
    picture = await retained_picture(broker, f"{BASE}/objects/{leaf}/state")
    states = {
        topic.split("/")[-2]: validate(topic, payload)["state_id"]
        for topic, payload in picture.items()
        if topic.endswith("/state") and "/objects/" in topic
    }
    assert set(states) == gone  # the deleted objects left nothing behind
    # Nor any other retained topic of theirs (incident count, metrics).
    owners = {topic.split("/")[-2] for topic in picture if topic.startswith(f"{BASE}/objects/")}
    assert owners == gone
    assert f"{BASE}/objects/{leaf}/incidents" in picture  # a new object's count is published
    leaf_state = validate(f"{BASE}/objects/{leaf}/state", picture[f"{BASE}/objects/{leaf}/state"])
    assert leaf_state["name"] == "Leaf host"
    assert doomed not in states
    assert child not in states
    assert link.source not in states
    assert f"{BASE}/links/{link.id}/state" not in picture
    assert {
        t.split("/")[-2] for t in picture if t.startswith(f"{BASE}/links/") and t.endswith("/state")
    } == set(simulator.model.links)


async def test_an_object_out_of_scope_comes_and_goes_without_harm(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    broker: MosquittoBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An object outside the scope never had an incident count on the broker.

    Its removal deletes nothing of it, raises nothing, and the mirror goes on. Break guarded:
    ``_counts_sent.pop(topic)`` without a default in ``SaymonMirror._model_changed`` (a
    ``KeyError`` that loses the rest of the batch).
    """
    model = simulator.model
    parent = next(o.id for o in model.objects.values() if o.id != model.root_id and o.child_ids)
    options = {**mirror_options(broker), CONF_SCOPE: SCOPE_SELECTED, CONF_PARENTS: [parent]}
    entry = await setup_entry(hass, simulator, options)
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="model-changed")
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    watcher = Subscriber(broker.port, f"{BASE}/#")
    await watcher.start()
    try:
        outsider = await simulator.create_object("Outside host", model.root_id, CLASS_HOST)
        await wait_for(lambda: outsider in hub.model.objects, what="the new object")
        assert outsider not in hub.objects_in_scope
        await simulator.delete_object(outsider)
        await wait_for(lambda: outsider not in hub.model.objects, what="its removal")
        inside = next(
            o for o in sorted(hub.objects_in_scope) if model.objects[o].state_id == STATE_WORKING
        )
        await simulator.set_state(inside, STATE_ALARM)
        await watcher.wait_for(
            lambda: bool(watcher.payloads(f"{BASE}/objects/{inside}/event")), what="the change"
        )
    finally:
        await watcher.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert watcher.payloads(f"{BASE}/objects/{outsider}/incidents") == []  # never counted


async def test_changes_missed_in_an_outage_are_published_as_replayed(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    """The event topics tell a change seen live from one recovered after a reconnect."""
    entry = await setup_entry(hass, simulator, mirror_options(broker))
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="model-changed")
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    live, missed = [
        o.id
        for o in simulator.model.objects.values()
        if o.state_id == STATE_WORKING and o.id != simulator.model.root_id
    ][:2]
    subscriber = Subscriber(broker.port, f"{BASE}/#")
    await subscriber.start()
    try:
        await simulator.set_state(live, STATE_ALARM)
        await subscriber.wait_for(lambda: bool(subscriber.payloads(f"{BASE}/objects/{live}/event")))
        await simulator.stop_comet()
        await wait_for(lambda: not hub.connected, what="the outage")
        await simulator.set_state(missed, STATE_ALARM)
        await simulator.start_comet()
        await subscriber.wait_for(
            lambda: bool(subscriber.payloads(f"{BASE}/objects/{missed}/event")), 20, "the replay"
        )
        await subscriber.wait_for(
            lambda: len(subscriber.payloads(f"{BASE}/incidents/event")) == 2, what="incidents"
        )
    finally:
        await subscriber.close()

    def replayed(topic: str) -> list[tuple[str, bool]]:
        return [
            (str(data.get("new_state") or data["type"]), data["replayed"])
            for data in (validate(topic, payload) for payload in subscriber.payloads(topic))
        ]

    assert replayed(f"{BASE}/objects/{live}/event") == [("Alarm", False)]
    assert replayed(f"{BASE}/objects/{missed}/event") == [("Alarm", True)]
    assert replayed(f"{BASE}/incidents/event") == [("opened", False), ("opened", True)]


async def test_links_have_their_own_topics(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    """A link's state changes go to its event topic; a modified link republishes its state."""
    options = {**mirror_options(broker), CONF_LINKS: True, CONF_MQTT_QUEUE_SIZE: 5_000}
    entry = await setup_entry(hass, simulator, options)
    hub: SaymonHub = entry.runtime_data.hub
    transport = mirror(hub).transport
    assert isinstance(transport, DedicatedBroker)
    assert transport._queue_size == 5_000  # the option reaches the broker client
    await simulator.wait_for_sockets(1, topic="model-changed")
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    link = next(iter(simulator.model.links.values()))
    state_topic, event_topic = f"{BASE}/links/{link.id}/state", f"{BASE}/links/{link.id}/event"
    subscriber = Subscriber(broker.port, f"{BASE}/links/#")
    await subscriber.start()
    try:
        await subscriber.wait_for(lambda: subscriber.retained(state_topic) is not None)
        retained = validate(state_topic, present(subscriber.retained(state_topic)))
        assert retained["name"] == f"{link.source_name} → {link.target_name}"
        await simulator.set_link_state(link.id, STATE_ALARM)
        await subscriber.wait_for(lambda: bool(subscriber.payloads(event_topic)), what="event")
        await subscriber.wait_for(
            lambda: validate(state_topic, subscriber.payloads(state_topic)[-1])["state"] == "Alarm",
            what="the link's new state",
        )
        [event] = [m for m in subscriber.messages if m.topic == event_topic]
        assert (event.retain, event.qos) == (False, 1)
        payload = validate(event_topic, event.payload)
        assert (payload["type"], payload["name"], payload["new_state"]) == (
            "link",
            f"{link.source_name} → {link.target_name}",
            "Alarm",
        )
        published = len(subscriber.payloads(state_topic))
        changes: list[dict[str, Any]] = []
        hass.bus.async_listen(
            "saymon_model_changed", callback(lambda event: changes.append(dict(event.data)))
        )
        # SAYMON says the link changed (its ends may have new names): its state is sent again.
        await simulator.send_raw("model-changed", {"changeType": 2, "id": link.id, "entityType": 2})
        await subscriber.wait_for(
            lambda: len(subscriber.payloads(state_topic)) == published + 1, what="republished"
        )
        assert present(subscriber.last(state_topic)).retain
        assert [(c["change"], c["entity_type"], c["name"]) for c in changes] == [
            ("modified", "link", f"{link.source_name} → {link.target_name}")
        ]
    finally:
        await subscriber.close()


async def test_incident_counts_per_level_are_sent_when_they_change(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    """Each level's count has its retained topic; a change resends only the counts it moved."""
    subscriber = Subscriber(broker.port, f"{BASE}/incidents/count/#")
    await subscriber.start()
    try:
        entry = await setup_entry(hass, simulator, mirror_options(broker))
        hub: SaymonHub = entry.runtime_data.hub
        await simulator.wait_for_sockets(1, topic="model-changed")
        levels = sorted(hub.model.levels)

        def truth() -> dict[str, int]:
            counts = dict.fromkeys(levels, 0)
            for incident in simulator.model.incidents.active.values():
                counts[str(incident.state)] += 1
            return counts

        def shown() -> dict[str, int | None]:
            return {
                level: validate(topic, payload) if (payload := subscriber.retained(topic)) else None
                for level in levels
                if (topic := f"{BASE}/incidents/count/{level}")
            }

        await subscriber.wait_for(lambda: shown() == truth(), what="every level's count")

        def messages(level: str) -> int:
            return len(subscriber.payloads(f"{BASE}/incidents/count/{level}"))

        sent = {level: messages(level) for level in levels}
        object_id = next(
            o.id
            for o in simulator.model.objects.values()
            if o.state_id == STATE_WORKING and o.id != simulator.model.root_id
        )
        await simulator.set_state(object_id, STATE_ALARM)  # one more Alarm (level 1) incident
        await subscriber.wait_for(lambda: shown() == truth(), what="the Alarm count")
        await wait_for(lambda: mirror(hub).transport.backlog == 0, what="everything sent")
        await asyncio.sleep(0.3)
        again = {level: messages(level) - sent[level] for level in levels}
        assert again == {level: 1 if level == "1" else 0 for level in levels}
    finally:
        await subscriber.close()


async def test_an_incident_just_before_a_removal_leaves_no_count_of_the_deleted_object(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker
) -> None:
    """An incident and the removal of its object in one flush interval: no count survives.

    SAYMON deletes an object, and an incident event about it follows the removal. Both arrive
    while a resync waits for SAYMON's answer, so both are held and handed on together when it
    ends: the incident is applied at once (the object is still known), the removal in its own
    task just after, and the one flush comes after both. The object's incident count must not
    be published again. Break guarded: ``_incident_owners.discard(entity_id)`` in
    ``SaymonMirror._model_changed`` (the flush republished a retained count of ``0`` for the
    deleted object).
    """
    entry = await setup_entry(hass, simulator, mirror_options(broker))
    hub: SaymonHub = entry.runtime_data.hub
    await simulator.wait_for_sockets(1, topic="model-changed")
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    model = simulator.model
    doomed = next(
        o.id
        for o in model.objects.values()
        if o.id != model.root_id
        and o.id in hub.objects_in_scope
        and not o.child_ids
        and o.state_id == STATE_WORKING
        and model.incidents.open_for((ENTITY_OBJECT, o.id)) is None
    )
    count_topic = f"{BASE}/objects/{doomed}/incidents"
    watcher = Subscriber(broker.port, f"{BASE}/#")
    await watcher.start()
    try:
        await watcher.wait_for(lambda: watcher.retained(count_topic) == b"0", what="its count")
        requests = simulator.counters.rest_requests
        read = {path: requests[path] for path in ("/node/api/objects", "/node/api/incidents")}
        simulator.faults.rest_delay_after = 1.5  # a wide window, also on a loaded machine
        refresh = asyncio.ensure_future(
            hass.services.async_call(DOMAIN, "refresh", {}, blocking=True)
        )
        await wait_for(
            lambda: all(requests[path] > count for path, count in read.items()),
            what="SAYMON read the snapshot",
        )
        await simulator.delete_object(doomed)
        now = model.clock()
        incident = {
            "id": "77aa00bb11cc22dd33ee44ff",
            "entityId": doomed,
            "entityType": ENTITY_OBJECT,
            "state": 1,
            "lastState": 1,
            "text": "Alarm",
            "timestamp": now,
        }
        await simulator.send_raw("incidents", {"changeType": 1, "payload": incident})
        await wait_for(lambda: hub.comet.stats.events["incidents"] >= 1, what="the incident")
        assert not refresh.done(), "both events must arrive while the resync waits for SAYMON"
        await refresh
        simulator.faults.rest_delay_after = 0.0
        await hass.async_block_till_done()
        await wait_for(lambda: doomed not in hub.model.objects, what="the removal")
        await watcher.wait_for(
            lambda: bool(watcher.payloads(f"{BASE}/incidents/event")), what="the incident event"
        )
        await watcher.wait_for(lambda: b"" in watcher.payloads(count_topic), what="its deletion")
        await wait_for(lambda: mirror(hub).transport.backlog == 0, what="everything sent")
        await asyncio.sleep(2 * STORM_FLUSH_INTERVAL)
    finally:
        await watcher.close()
    assert watcher.payloads(count_topic)[-1:] == [b""]  # nothing published after the deletion
    [opened] = [
        validate(f"{BASE}/incidents/event", payload)
        for payload in watcher.payloads(f"{BASE}/incidents/event")
    ]
    assert (opened["type"], opened["replayed"], opened["object"]["id"]) == ("opened", False, doomed)
    picture = await retained_picture(broker, f"{BASE}/status")
    assert not [topic for topic in picture if f"/{doomed}/" in topic]
