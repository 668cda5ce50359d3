"""Server events on the MQTT mirror's event topics, read by a real subscriber on Mosquitto.

Every kind has its own non-retained topic under the base topic; every message validates against
its JSON Schema (format 1.1); what the per-object limit dropped is not published either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.saymon.api.ratelimit import BURST
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.server_kinds import KINDS
from tests.integration.common import serving, setup_entry
from tests.mqtt_schema import validate
from tests.util import wait_for
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import SaymonSimulator

from .test_mirror import BASE, mirror, mirror_options

pytestmark = pytest.mark.usefixtures("enable_custom_integrations")


@pytest.fixture
async def simulator(hass: HomeAssistant) -> AsyncIterator[SaymonSimulator]:
    async with serving(hass, SaymonSimulator(objects=20, seed=3)) as sim:
        yield sim


@pytest.fixture
async def subscriber(broker: MosquittoBroker) -> AsyncIterator[Subscriber]:
    sub = Subscriber(broker.port, f"{BASE}/+/event")
    await sub.start()
    try:
        yield sub
    finally:
        await sub.close()


async def test_each_kind_on_its_topic(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    options = mirror_options(broker, **{kind.key: True for kind in KINDS})
    entry = await setup_entry(hass, simulator, options)
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    await simulator.wait_for_sockets(1, topic="snmp-trap")
    target = next(o for o in simulator.model.objects.values() if o.operations)
    await simulator.emit_server_event("snmp-trap", target.id, shape="surprising", TEXT="Down")
    await simulator.emit_server_event("mqtt", target.id, MESSAGE="on")
    await simulator.emit_server_event("client-notification", target.id, shape="plausible")
    await simulator.emit_server_event("job-added", target.id, shape="surprising", JOB_ID="j1")
    await simulator.emit_server_event("job-result-received", target.id, JOB_ID="j1", EXIT_CODE=2)
    await simulator.emit_server_event("bulk-finished", shape="surprising", BULK_ID="b9")
    topics = [f"{BASE}/{level}/event" for level in ("traps", "mqtt", "notifications", "jobs")]
    await subscriber.wait_for(lambda: len(subscriber.messages) == 6)
    by_topic: dict[str, list[Any]] = {}
    for message in subscriber.messages:
        assert not message.retain
        by_topic.setdefault(message.topic, []).append(validate(message.topic, message.payload))
    assert set(by_topic) == {*topics, f"{BASE}/bulks/event"}
    (trap,) = by_topic[f"{BASE}/traps/event"]
    assert trap["text"] == "Down"
    assert trap["object"] == {"id": target.id, "type": "object", "name": target.name}
    assert trap["bindings"] == {".1.3.6.1.2.1.2.2.1.1.3": "3", ".1.3.6.1.2.1.2.2.1.7.3": "down"}
    assert trap["extra"] == {"severity": "major", "payload": {"varbindCount": 2}}
    (mqtt,) = by_topic[f"{BASE}/mqtt/event"]
    assert (mqtt["topic"], mqtt["message"]) == ("sensors/rack1/temperature", "on")
    started, finished = by_topic[f"{BASE}/jobs/event"]
    assert (started["type"], finished["type"]) == ("started", "failed")
    assert finished["job"]["exit_code"] == 2
    (bulk,) = by_topic[f"{BASE}/bulks/event"]
    assert bulk["id"] == "b9"


async def test_the_storm_limit_applies_to_the_mirror_too(
    hass: HomeAssistant, simulator: SaymonSimulator, broker: MosquittoBroker, subscriber: Subscriber
) -> None:
    entry = await setup_entry(hass, simulator, mirror_options(broker, snmp_traps=True))
    hub: SaymonHub = entry.runtime_data.hub
    await wait_for(lambda: mirror(hub).transport.connected, what="broker")
    await simulator.wait_for_sockets(1, topic="snmp-trap")
    target = next(iter(hub.objects_in_scope))
    await simulator.emit_server_event("snmp-trap", target, count=100)
    await wait_for(lambda: hub.comet.stats.events["snmp-trap"] == 100, what="the storm handled")
    fired = hub.server_events.fired["saymon_snmp_trap"]
    assert BURST <= fired < 100
    await subscriber.wait_for(lambda: len(subscriber.messages) == fired)
    await hass.async_block_till_done()
    assert len(subscriber.messages) == fired
    assert hub.live.gate.limit.dropped["snmp-trap"] == 100 - fired
