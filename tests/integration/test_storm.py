"""An incident storm faster than Home Assistant: coalesced writes and retained topics, no loss.

The storm is computed by the simulator's model (real state changes with the incidents they
open and close) and emitted by the real Node socket.io 4.5.0 server, which accepts the
simulator's sessions: it sends far faster than the integration consumes, so Comet events
wait in the client's queue, which is what a core-switch failure looks like to SAYMON users.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import orjson
import pytest

from custom_components.saymon.coalesce import STORM_FLUSH_INTERVAL
from custom_components.saymon.const import (
    CONF_MQTT_QUEUE_SIZE,
    DOMAIN,
    EVENT_INCIDENT,
    EVENT_STATE_CHANGED,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.states import state_key
from tests.mirror.test_mirror import BASE, mirror_options
from tests.util import present, wait_for
from tools.bench import storm as storms
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.node_comet import NodeCometServer
from tools.simulator import EVENT_INCIDENTS, EVENT_STATE_CHANGE, SaymonSimulator

from .common import serving, setup_entry

pytestmark = [pytest.mark.usefixtures("enable_custom_integrations"), pytest.mark.node]


def assert_spaced(
    sent: Counter[str], subjects: dict[str, str], storm: storms.Storm, took: float, busy: int
) -> None:
    """Each subject (entity or topic -> object id) was written at most once per interval.

    ``busy``: how many changes the storm's busiest object must have had, so that the bound
    means something for it.
    """
    changes = Counter(key[0] for key in storm.keys if key is not None)
    busiest = max(subjects, key=lambda subject: changes[subjects[subject]])
    assert changes[subjects[busiest]] > busy
    allowed = took / STORM_FLUSH_INTERVAL + 3
    assert sent[busiest] <= allowed, (sent[busiest], changes[subjects[busiest]], took)
    assert max(sent.values()) <= allowed


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=60, seed=9)) as sim:
        yield sim


@pytest.fixture
async def node(simulator: SaymonSimulator) -> AsyncIterator[NodeCometServer]:
    server = NodeCometServer()
    await server.start(sessions=[], session_check_url=f"{simulator.api_url}/users/current")
    try:
        yield server
    finally:
        await server.stop()


async def test_storm_coalesces_writes_and_loses_no_event(
    hass: HomeAssistant, simulator: SaymonSimulator, node: NodeCometServer, tmp_path: Path
) -> None:
    """While Comet events wait, each entity is written at most once per flush interval.

    Every bus event is fired and the final states are the simulator's; only the writes of
    intermediate states are coalesced. Without the interval every worker batch (500 events
    or 50 ms) wrote each object it touched.
    """
    entry = await setup_entry(hass, simulator, comet=node.url)
    hub: SaymonHub = entry.runtime_data.hub
    registry = er.async_get(hass)
    entities = {
        present(
            registry.async_get_entity_id("sensor", DOMAIN, f"{hub.server_key}|object|{oid}|state")
        ): oid
        for oid in hub.objects_in_scope
    }
    writes: Counter[str] = Counter()
    fired: Counter[str] = Counter()

    @callback
    def on_write(event: Event) -> None:
        if event.data["entity_id"] in entities:
            writes[event.data["entity_id"]] += 1

    @callback
    def on_fired(event: Event) -> None:
        fired[str(event.event_type)] += 1

    hass.bus.async_listen("state_changed", on_write)
    for event_type in (EVENT_STATE_CHANGED, EVENT_INCIDENT):
        hass.bus.async_listen(event_type, on_fired)

    storm = storms.record(simulator, tmp_path / "storm.ndjson", events=20_000)
    started = hass.loop.time()
    await node.replay(storm.path)
    await wait_for(
        lambda: (
            fired[EVENT_STATE_CHANGED] == storm.by_event[EVENT_STATE_CHANGE]
            and fired[EVENT_INCIDENT] == storm.by_event[EVENT_INCIDENTS]
        ),
        timeout=120,
        what="every event of the storm fired",
    )
    took = hass.loop.time() - started
    assert hub.comet.stats.queue_peak > 1000, "no backlog: not a storm"
    assert hub.comet.stats.dropped == 0

    def truth(entity: str, oid: str) -> bool:
        want = state_key(hub.model, str(simulator.model.objects[oid].state_id))
        problem = simulator.model.incidents.open_for((1, oid)) is not None
        return present(hass.states.get(entity)).state == want and present(
            hass.states.get(problems[oid])
        ).state == ("on" if problem else "off")

    problems = {
        oid: present(
            registry.async_get_entity_id(
                "binary_sensor", DOMAIN, f"{hub.server_key}|object|{oid}|problem"
            )
        )
        for oid in entities.values()
    }
    await wait_for(lambda: all(truth(e, o) for e, o in entities.items()), what="final states")
    assert_spaced(writes, entities, storm, took, busy=100)


async def test_storm_mirror_sends_every_event_and_coalesces_retained_states(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    node: NodeCometServer,
    broker: MosquittoBroker,
    tmp_path: Path,
) -> None:
    """Every event reaches its event topic; retained states are sent once per interval.

    The mirror's retained flush follows the same rule as entity writes: while Comet events or
    MQTT messages wait, an object's retained state goes out at most once per interval, with
    its latest value, and the final retained picture is the simulator's.
    """
    entry = await setup_entry(hass, simulator, mirror_options(broker), comet=node.url)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(
        lambda: (
            hub.entry.runtime_data.mirror is not None
            and hub.entry.runtime_data.mirror.transport.connected
        ),
        what="broker",
    )
    subscriber = Subscriber(broker.port, f"{BASE}/#")
    await subscriber.start()
    try:
        state_topics = {f"{BASE}/objects/{oid}/state": oid for oid in hub.objects_in_scope}
        await subscriber.wait_for(
            lambda: set(state_topics) <= {m.topic for m in subscriber.messages}
        )
        before = len(subscriber.messages)
        storm = storms.record(simulator, tmp_path / "storm.ndjson", events=8_000)
        started = hass.loop.time()
        await node.replay(storm.path)

        def received(suffix: str) -> int:
            return sum(1 for m in subscriber.messages[before:] if m.topic.endswith(suffix))

        await subscriber.wait_for(
            lambda: (
                received("/event")
                == storm.by_event[EVENT_STATE_CHANGE] + storm.by_event[EVENT_INCIDENTS]
            ),
            timeout=120,
        )
        took = hass.loop.time() - started

        def retained_truth() -> bool:
            latest = {m.topic: m.payload for m in subscriber.messages if m.topic in state_topics}
            return all(
                orjson.loads(latest[topic])["state_id"]
                == str(simulator.model.objects[oid].state_id)
                for topic, oid in state_topics.items()
            )

        await subscriber.wait_for(retained_truth, timeout=30)
        sent = Counter(m.topic for m in subscriber.messages[before:] if m.topic in state_topics)
        assert_spaced(sent, state_topics, storm, took, busy=50)
    finally:
        await subscriber.close()


async def test_storm_overflowing_the_mirror_queue_keeps_the_retained_truth(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    node: NodeCometServer,
    broker: MosquittoBroker,
    tmp_path: Path,
) -> None:
    """A stalled broker overflows the queue: event messages are lost (counted), states not.

    Retained states the full queue refused are offered again at later flushes, so once the
    broker answers again every retained state topic holds the simulator's truth, although the
    connection never dropped (no reconnect republishes the picture).
    """
    options = mirror_options(broker, **{CONF_MQTT_QUEUE_SIZE: 1_000})
    entry = await setup_entry(hass, simulator, options, comet=node.url)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(
        lambda: (
            hub.entry.runtime_data.mirror is not None
            and hub.entry.runtime_data.mirror.transport.connected
        ),
        what="broker",
    )
    mirror = hub.entry.runtime_data.mirror
    assert mirror is not None
    transport = mirror.transport
    await wait_for(lambda: transport.backlog == 0, what="the first retained picture sent")
    snapshots = mirror.snapshots
    storm = storms.record(simulator, tmp_path / "storm.ndjson", events=6_000)
    broker.freeze()
    try:
        await node.replay(storm.path)
        await wait_for(lambda: sum(hub.comet.stats.events.values()) >= storm.events, timeout=60)
        assert transport.full
        await asyncio.sleep(5 * STORM_FLUSH_INTERVAL)  # the broker stays stalled a while
        assert transport.full
    finally:
        broker.freeze(False)
    await wait_for(lambda: transport.backlog == 0, timeout=60, what="the queue drained")
    dropped = transport.stats()["dropped_overflow"]
    assert isinstance(dropped, int)
    assert dropped > 0
    assert mirror.snapshots == snapshots  # no reconnect: the truth comes from the retries
    truth = {
        f"{BASE}/objects/{oid}/state": str(simulator.model.objects[oid].state_id)
        for oid in hub.objects_in_scope
    }
    subscriber = Subscriber(broker.port, f"{BASE}/objects/+/state")
    await subscriber.start()
    try:

        def retained_truth() -> bool:
            latest = {m.topic: m.payload for m in subscriber.messages}
            return all(
                topic in latest and orjson.loads(latest[topic])["state_id"] == state
                for topic, state in truth.items()
            )

        await subscriber.wait_for(retained_truth, timeout=30)
    finally:
        await subscriber.close()
