"""Hostile and broken input through the whole integration: ids, names, sizes, shapes.

* Ids with MQTT wildcards, slashes, unicode and control characters, and names with HTML,
  script, template and control content: entities, devices, bus events and MQTT payloads keep
  them verbatim (text, never interpreted); topics never carry a wildcard or an extra level.
* Oversized input is bounded: a Comet message over ``MAX_MESSAGE_BYTES`` (64 MiB) drops the
  connection (the client reconnects and resyncs), one below it is delivered; a REST answer
  over ``MAX_RESPONSE_BYTES`` (64 MiB) is a protocol error.
* Huge events (100,000 levels in one ``incident-count``, 100,000 fields in one incident,
  100,000 arguments in one Socket.IO event, a burst of 20,000 events) do not stall the stream.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
from aiohttp import web
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest

from custom_components.saymon.api.comet import MAX_MESSAGE_BYTES
from custom_components.saymon.api.errors import SaymonProtocolError
from custom_components.saymon.api.rest import (
    MAX_RESPONSE_BYTES,
    PasswordCredentials,
    SaymonRestClient,
)
from custom_components.saymon.const import DOMAIN, EVENT_STATE_CHANGED
from tests.util import wait_for
from tools.mosquitto import Subscriber
from tools.simulator import CLASS_HOST, STATE_ALARM, STATE_DOWN, STATE_WORKING
from tools.simulator.entities import SimObject

from . import report
from .conftest import MakeRig
from .rig import BASE_TOPIC, ChaosRig, topic_level, wait_until
from .settings import LONG

pytestmark = pytest.mark.chaos

BURST = 20_000 if LONG else 5_000

HOSTILE_IDS = [
    "obj+plus",
    "obj#hash",
    "obj/with/slashes",
    "quote\"'%20id",  # control characters are no id at all: see test_integration_hostile
    "юникод-ид-\U0001f4a5",
    "  spaced id  ",
    "<b>id</b>",
    "+",
]
HOSTILE_NAMES = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "Tom & Jerry \"quoted\" 'single'",
    "\u202eRTL override \u200b zero width",
    "line\nbreak\ttab",
    "emoji \U0001f4a5\U0001f525",
    "{{ states('sun.sun') }} {% raw %}",
    "${jndi:ldap://127.0.0.1/x}",
]


def add_hostile_objects(rig: ChaosRig) -> dict[str, str]:
    """Objects with hostile ids and names under the root, some in Alarm (with incidents)."""
    model = rig.sim.model
    root = model.objects[model.root_id]
    now = model.clock()
    added: dict[str, str] = {}
    for object_id, name in zip(HOSTILE_IDS, HOSTILE_NAMES, strict=True):
        model.objects[object_id] = SimObject(
            id=object_id,
            name=name,
            parent_id=[root.id],
            class_id=CLASS_HOST,
            state_id=STATE_WORKING,
            last_state_update=now,
            created=now,
            updated=now,
        )
        root.child_ids.append(object_id)
        added[object_id] = name
    model._object_ids = None  # the storm's pick list includes them now
    for object_id in HOSTILE_IDS[::2]:
        model.set_state(object_id, STATE_ALARM)
    return added


async def test_hostile_ids_and_names(hass: HomeAssistant, make_rig: MakeRig) -> None:
    rig = await make_rig(objects=12)
    added = add_hostile_objects(rig)
    hub = await rig.start()
    fired: list[dict[str, Any]] = []

    @callback
    def record(event: Event) -> None:
        fired.append(dict(event.data))

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    for object_id in HOSTILE_IDS:
        await rig.sim.set_state(object_id, STATE_DOWN)
    await wait_for(lambda: len(fired) >= len(HOSTILE_IDS), what="state events")
    storm = rig.storm(2.0, 60.0)
    await storm
    verdict = await rig.verify(
        "hostile ids and names",
        f"{len(added)} objects with wildcard/slash/unicode/control ids and HTML/script names",
    )
    assert verdict.ok, verdict.explain()

    # Verbatim everywhere: bus events, devices, entity names.
    assert {e["object_id"]: e["object_name"] for e in fired[: len(HOSTILE_IDS)]} == added
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    for object_id, name in added.items():
        device = hub.device(hub.object_identifier(object_id))
        assert device is not None
        assert device.name == name
        assert devices.async_get(device.id) is not None
        entity_id = entities.async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|object|{object_id}|state"
        )
        assert entity_id is not None
        state = hass.states.get(entity_id)
        assert state is not None
        assert name in str(state.attributes.get("friendly_name"))

    # MQTT: one clean level per id, the payload keeps id and name verbatim.
    subscriber = Subscriber(rig.broker.port, f"{BASE_TOPIC}/#")
    await subscriber.start()
    try:
        topics = {f"{BASE_TOPIC}/objects/{topic_level(i)}/state": i for i in added}
        await subscriber.wait_for(lambda: all(subscriber.retained(t) for t in topics))
        for topic, object_id in topics.items():
            payload = json.loads(subscriber.retained(topic) or b"{}")
            assert payload["id"] == object_id
            assert payload["name"] == added[object_id]
        for message in subscriber.messages:
            levels = message.topic.split("/")
            assert not any(c in message.topic for c in "+#\x00")
            assert all(level for level in levels)
            if "/objects/" in message.topic:
                assert len(levels) == len(BASE_TOPIC.split("/")) + 3
    finally:
        await subscriber.close()
    report.record(
        "inputs",
        {
            "target": "hostile ids and names (entities, devices, events, MQTT)",
            "tried": len(added) * 2,
            "accepted": len(added) * 2,
            "rejected": 0,
            "crashes": 0,
            "notes": "kept verbatim; topic levels cleaned of + # / and control characters",
        },
    )


async def test_oversized_comet_messages_are_bounded(make_rig: MakeRig) -> None:
    rig = await make_rig(objects=10)
    hub = await rig.start()
    stats = hub.comet.stats
    object_id = next(iter(rig.sim.model.objects))
    stat_events = stats.events["stat"]
    connects = stats.connects
    below = {"entityId": object_id, "entityType": 1, "payload": {"blob": "x" * (5 << 20)}}
    await rig.sim.send_raw("stat", below, everyone=True)
    await wait_for(lambda: stats.events["stat"] > stat_events, 20, "a 5 MiB event")
    assert stats.connects == connects

    started = time.monotonic()
    above = "x" * (MAX_MESSAGE_BYTES + 1)
    await rig.sim.send_raw("state-change", above, everyone=True)
    del above
    await wait_for(lambda: stats.connects > connects, 30, "a reconnect after the oversized frame")
    refused_in = time.monotonic() - started
    verdict = await rig.verify(
        "oversized Comet message",
        f"one {MAX_MESSAGE_BYTES + 1:,}-byte message (limit {MAX_MESSAGE_BYTES:,})",
        check_ledger=False,
        notes="refused by dropping the connection; reconnected and resynced",
    )
    assert verdict.ok, verdict.explain()
    report.record(
        "inputs",
        {
            "target": "oversized Comet message",
            "tried": 2,
            "accepted": 1,
            "rejected": 1,
            "crashes": 0,
            "notes": f"5 MiB delivered; 64 MiB + 1 refused (connection dropped, back in "
            f"{refused_in:.1f} s)",
        },
    )


async def test_oversized_rest_answers_are_refused() -> None:
    async def login(request: web.Request) -> web.Response:
        return web.json_response("session-1")

    async def objects(request: web.Response) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)  # type: ignore[arg-type]
        chunk = b"[" + b" " * (1 << 20)
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
            await response.write(chunk)
        return response

    app = web.Application()
    app.router.add_post("/node/api/users/session", login)
    app.router.add_get("/node/api/objects", objects)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            rest = SaymonRestClient(
                session,
                f"http://127.0.0.1:{port}",
                PasswordCredentials("admin", "secret"),
                request_timeout=60,
            )
            with pytest.raises(SaymonProtocolError, match="exceeds"):
                await rest.objects()
    finally:
        await runner.cleanup()


async def test_huge_events_do_not_stall_the_stream(make_rig: MakeRig) -> None:
    rig = await make_rig(objects=10)
    hub = await rig.start()
    stats = hub.comet.stats
    target = next(o for o in rig.sim.model.objects.values() if o.state_id == STATE_WORKING)
    started = time.monotonic()
    levels = {str(level): 1 for level in range(100_000)}
    await rig.sim.send_raw("incident-count", {"count": 3, "levels": levels})
    incident = {"id": "5f00000000000000000000aa", "entityId": target.id, "state": 1}
    incident.update({f"field{n}": n for n in range(100_000)})
    await rig.sim.send_raw("incidents", {"changeType": 3, "payload": incident})
    frame = '42["state-change"' + ', {"id": "x", "state_id": 1}' * 100_000 + "]"
    await rig.sim.send_frames([frame])
    burst = [
        f'42["state-change",{{"id":"{target.id}","state_id":{5 if n % 2 else 3},"type":1}}]'
        for n in range(BURST)
    ]
    await rig.sim.send_frames(burst)
    await rig.sim.set_state(target.id, STATE_DOWN)  # a real event after all that
    await wait_until(lambda: hub.model.state_of(target.id) == str(STATE_DOWN), 60, "the stream")
    elapsed = time.monotonic() - started
    assert stats.dropped == 0
    verdict = await rig.verify(
        "huge events",
        f"100k levels, 100k incident fields, 100k arguments, a {BURST:,}-event burst",
        check_ledger=False,
        notes=f"stream through in {elapsed:.1f} s; nothing dropped",
    )
    assert verdict.ok, verdict.explain()
    report.record(
        "inputs",
        {
            "target": f"huge events (100k entries in one event, {BURST:,}-event burst)",
            "tried": 3 + len(burst),
            "accepted": 2 + len(burst),
            "rejected": 1,
            "crashes": 0,
            "notes": f"through in {elapsed:.1f} s",
        },
    )
