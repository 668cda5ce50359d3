"""SAYMON's server events: parsed in every shape, subscribed only when chosen, one typed stream.

The parsers read the payloads the simulator and the Node server send (one shared file of
documented, plausible and surprising shapes). The live session is run against the simulator
over real sockets: a topic is subscribed only when chosen, can be chosen and dropped at runtime,
is subscribed again after every reconnect, and its events reach the listener in order with the
state changes around them; events of topics nobody knows are counted and logged once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
import logging
import random
import time
from typing import Any

import aiohttp
import pytest

from custom_components.saymon.api.comet import CometClient
from custom_components.saymon.api.events import RawEvent, parse_event
from custom_components.saymon.api.live import SaymonLive
from custom_components.saymon.api.model import Change, StateChanged
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.ratelimit import BURST
from custom_components.saymon.api.rest import PasswordCredentials, SaymonRestClient
from custom_components.saymon.api.server_events import (
    SERVER_EVENT_TYPES,
    SERVER_TOPICS,
    TOPIC_CUSTOM_STYLE_CHANGE,
    BulkFinished,
    ClientNotification,
    JobEvent,
    JobEventKind,
    MqttMessage,
    SnmpTrap,
    unquote,
)
from custom_components.saymon.api.url import CometEndpoint
from tests.util import wait_for
from tools.simulator import STATE_ALARM, STATE_WORKING, SaymonSimulator
from tools.simulator.server_events import SHAPES, TOPICS, payload, values_for

OBJECT = ("5ac3a4b2a9fd5c3965dac350", "SNMP TRAP")


def rendered(topic: str, shape: str, **values: Any) -> Any:
    return payload(topic, shape, values_for(random.Random(1), 1668076837571, OBJECT, **values))


# -- parsers ----------------------------------------------------------------------------------


def test_every_topic_parses_in_every_shape() -> None:
    """Documented, plausible and surprising payloads of each topic all become typed events."""
    kinds = {
        "snmp-trap": SnmpTrap,
        "mqtt": MqttMessage,
        "client-notification": ClientNotification,
        "job-added": JobEvent,
        "job-result-received": JobEvent,
        "bulk-finished": BulkFinished,
    }
    assert set(TOPICS) == set(SERVER_TOPICS) == set(kinds)
    for topic in TOPICS:
        for shape in SHAPES:
            event = parse_event(topic, (rendered(topic, shape),))
            assert isinstance(event, kinds[topic]), (topic, shape, event)


def test_documented_trap() -> None:
    trap = parse_event("snmp-trap", (rendered("snmp-trap", "documented", TEXT="TEST TEST"),))
    assert isinstance(trap, SnmpTrap)
    assert trap.entity is not None
    assert (trap.entity.entity_id, trap.entity.entity_type, trap.entity.name) == (
        OBJECT[0],
        EntityType.OBJECT,
        OBJECT[1],
    )
    assert trap.level_id == "2"
    assert trap.agent_id == "817"
    assert trap.trap_oid == ".1.3.6.1.4.1.5089.2.0.99"
    assert (trap.generic_trap, trap.specific_trap) == (1, 1)
    # The quotes SAYMON embeds in binding values are gone.
    assert trap.text == "TEST TEST"
    assert trap.bindings == {".1.3.6.1.4.1.5089.2.0.99": "TEST TEST"}
    assert trap.timestamp == 1668076837571
    assert trap.extra == {}


def test_surprising_trap() -> None:
    """Payload as JSON text, bindings as a list of objects and pairs, the entity in a list."""
    trap = parse_event("snmp-trap", (rendered("snmp-trap", "surprising", TEXT="Link down"),))
    assert isinstance(trap, SnmpTrap)
    assert trap.entity is not None
    assert trap.entity.entity_id == OBJECT[0]
    assert trap.level_id == "2"
    assert trap.text == "Link down"
    assert trap.bindings == {
        ".1.3.6.1.2.1.2.2.1.1.3": "3",
        ".1.3.6.1.2.1.2.2.1.7.3": "down",
    }
    # What the parser does not read is passed through, bounded.
    assert trap.extra["severity"] == "major"
    assert trap.extra["payload"] == {"varbindCount": 2}


def test_mqtt_entity_is_a_list_or_one_object() -> None:
    documented = parse_event("mqtt", (rendered("mqtt", "documented", ENTITY2_ID="other"),))
    assert isinstance(documented, MqttMessage)
    assert [e.entity_id for e in documented.entities] == [OBJECT[0], "other"]
    assert (documented.topic, documented.message) == ("sensors/rack1/temperature", "21.5")
    plausible = parse_event("mqtt", (rendered("mqtt", "plausible"),))
    assert isinstance(plausible, MqttMessage)
    assert [e.entity_id for e in plausible.entities] == [OBJECT[0]]
    assert plausible.message == '{"temperature": 21.5, "unit": "C"}'
    surprising = parse_event("mqtt", (rendered("mqtt", "surprising"),))
    assert isinstance(surprising, MqttMessage)
    assert surprising.topic == "sensors/rack1/temperature/датчик"
    # A message SAYMON already decoded is turned back into its JSON text.
    assert surprising.message == '{"value":1,"nested":{"deep":[1,2,3]}}'
    assert surprising.extra == {"retained": True}


def test_client_notification_shapes() -> None:
    for shape, state in (("documented", "5"), ("plausible", "5"), ("surprising", "8")):
        note = parse_event("client-notification", (rendered("client-notification", shape),))
        assert isinstance(note, ClientNotification)
        assert note.entity.entity_id == OBJECT[0]
        assert note.state_id == state
    surprising = parse_event(
        "client-notification", (rendered("client-notification", "surprising"),)
    )
    assert isinstance(surprising, ClientNotification)
    assert surprising.timestamp == 1667391064587
    assert surprising.extra["users"] == ["admin", "operator"]


def test_job_events_in_every_shape() -> None:
    values = {"JOB_ID": "j1", "OPERATION_ID": "op1", "EXIT_CODE": 3, "STDOUT": "bye"}
    for shape in SHAPES:
        added = parse_event("job-added", (rendered("job-added", shape, **values),))
        assert isinstance(added, JobEvent)
        assert added.kind is JobEventKind.ADDED
        assert (added.job.id, added.job.operation_id, added.job.owner_id) == (
            "j1",
            "op1",
            OBJECT[0],
        )
        assert not added.job.finished
        result = parse_event(
            "job-result-received", (rendered("job-result-received", shape, **values),)
        )
        assert isinstance(result, JobEvent)
        assert result.kind is JobEventKind.FINISHED
        assert result.job.finished
    script = parse_event(
        "job-result-received", (rendered("job-result-received", "surprising", **values),)
    )
    assert isinstance(script, JobEvent)
    # The description arrived as JSON text, the exit code as text.
    assert (script.job.exit_code, script.job.stdout, script.job.succeeded) == (3, "bye", False)
    assert script.job.extra["duration"] == 1.25
    mqtt = parse_event("job-result-received", (rendered("job-result-received", "plausible"),))
    assert isinstance(mqtt, JobEvent)
    assert (mqtt.job.topic, mqtt.job.message, mqtt.job.succeeded) == (
        "sensors/rack1/temperature",
        "21.5",
        True,
    )
    assert mqtt.job.results[0]["payload"] == {"note": "checked"}


def test_bulk_finished_shapes() -> None:
    for shape in SHAPES:
        bulk = parse_event("bulk-finished", (rendered("bulk-finished", shape, BULK_ID="b7"),))
        assert isinstance(bulk, BulkFinished)
        assert bulk.bulk_id == "b7"
        assert bulk.finished is True


def test_custom_style_change_has_no_model() -> None:
    """Never subscribed (screen geometry); if it comes anyway it is a raw event."""
    event = parse_event(TOPIC_CUSTOM_STYLE_CHANGE, ({"entityType": 1, "id": "x"},))
    assert isinstance(event, RawEvent)


def test_unquote() -> None:
    assert unquote('"TEST TEST"') == "TEST TEST"
    assert unquote('"say \\"hi\\""') == 'say "hi"'
    assert unquote('"') == '"'
    assert unquote("plain") == "plain"


# -- the live session against the simulator -------------------------------------------------


@dataclass
class Listener:
    """A :class:`~custom_components.saymon.api.live.LiveListener` that keeps what it is told."""

    changes: list[Change] = field(default_factory=list)
    connected: int = 0

    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        self.changes.extend(changes)

    def on_connected(self) -> None:
        self.connected += 1

    def on_disconnected(self, reason: str) -> None:
        pass

    def on_auth_failed(self) -> None:
        pass

    def on_resynced(self, renamed: Collection[str]) -> None:
        pass

    def of(self, kind: type[Any]) -> list[Any]:
        return [change for change in self.changes if isinstance(change, kind)]


@pytest.fixture
async def session(simulator: SaymonSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def live_session(
    simulator: SaymonSimulator, http: aiohttp.ClientSession, topics: Collection[str] = ()
) -> tuple[SaymonLive, Listener]:
    listener = Listener()
    live = SaymonLive(
        http,
        simulator.rest_url,
        PasswordCredentials(simulator.login, simulator.password),
        listener,
        comet=str(simulator.comet_port),
        server_topics=topics,
    )
    await live.load()
    live.follow()
    await wait_for(lambda: listener.connected == 1 and not live.resync_pending, what="connected")
    return live, listener


def socket_topics(simulator: SaymonSimulator) -> set[str]:
    (socket,) = simulator.sockets()
    return socket.topics


async def test_topics_are_subscribed_only_when_chosen(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    live, listener = await live_session(simulator, session)
    try:
        assert not socket_topics(simulator) & set(SERVER_TOPICS)
        assert live.server_topics == ()
        for topic in SERVER_TOPICS:
            await simulator.emit_server_event(topic)
        target = next(iter(simulator.model.objects))
        await simulator.set_state(target, STATE_ALARM)
        await wait_for(lambda: bool(listener.of(StateChanged)), what="the state change")
        assert [c for c in listener.changes if isinstance(c, SERVER_EVENT_TYPES)] == []
        assert simulator.counters.events_published["snmp-trap"] == 1  # sent, to nobody
    finally:
        await live.stop()


async def test_events_arrive_typed_and_in_order(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    live, listener = await live_session(simulator, session, SERVER_TOPICS)
    try:
        assert set(SERVER_TOPICS) <= socket_topics(simulator)
        working = [o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING]
        await simulator.emit_server_event("snmp-trap", working[0], TEXT="first")
        await simulator.set_state(working[1], STATE_ALARM)
        await simulator.emit_server_event("mqtt", working[2], shape="surprising")
        await simulator.emit_server_event("client-notification", working[3], shape="plausible")
        await simulator.emit_server_event("job-added", working[4], JOB_ID="job1")
        await simulator.emit_server_event("job-result-received", working[4], JOB_ID="job1")
        await simulator.emit_server_event("bulk-finished", shape="plausible", BULK_ID="b1")
        await wait_for(lambda: bool(listener.of(BulkFinished)), what="the last event")
        kinds = [
            type(c).__name__
            for c in listener.changes
            if not (isinstance(c, StateChanged) and c.entity_id != working[1])
            and type(c).__name__ != "IncidentChanged"
        ]
        assert kinds == [
            "SnmpTrap",
            "StateChanged",
            "MqttMessage",
            "ClientNotification",
            "JobEvent",
            "JobEvent",
            "BulkFinished",
        ]
        (trap,) = listener.of(SnmpTrap)
        assert trap.text == "first"
        assert trap.entity.entity_id == working[0]
        added, finished = listener.of(JobEvent)
        assert (added.kind, finished.kind) == (JobEventKind.ADDED, JobEventKind.FINISHED)
        assert live.comet.stats.malformed == {}
    finally:
        await live.stop()


async def test_opt_in_and_out_at_runtime_and_after_reconnects(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    live, listener = await live_session(simulator, session)
    try:
        await live.set_server_topics(["snmp-trap", "mqtt"])
        await wait_for(lambda: {"snmp-trap", "mqtt"} <= socket_topics(simulator), what="subscribed")
        await simulator.emit_server_event("snmp-trap")
        await wait_for(lambda: len(listener.of(SnmpTrap)) == 1, what="a trap")

        # Every reconnect subscribes the chosen topics again.
        await simulator.drop_connections()
        await wait_for(lambda: listener.connected == 2, timeout=15, what="the reconnect")
        await wait_for(
            lambda: {"snmp-trap", "mqtt"} <= socket_topics(simulator), what="resubscribed"
        )
        await simulator.emit_server_event("mqtt")
        await wait_for(lambda: len(listener.of(MqttMessage)) == 1, what="an MQTT message")

        await live.set_server_topics(["mqtt"])
        await wait_for(lambda: "snmp-trap" not in socket_topics(simulator), what="unsubscribed")
        assert live.server_topics == ("mqtt",)
        await simulator.emit_server_event("snmp-trap")
        await simulator.emit_server_event("mqtt")
        await wait_for(lambda: len(listener.of(MqttMessage)) == 2, what="the second message")
        assert len(listener.of(SnmpTrap)) == 1
        with pytest.raises(ValueError, match="stat"):
            await live.set_server_topics(["stat"])
    finally:
        await live.stop()


async def test_unknown_topics_are_counted_and_logged_once(
    simulator: SaymonSimulator,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    live, listener = await live_session(simulator, session)
    try:
        caplog.set_level(logging.WARNING)
        for _ in range(3):
            assert await simulator.send_raw("custom-server-event", {"x": 1}, everyone=True) == 1
        await simulator.send_raw(TOPIC_CUSTOM_STYLE_CHANGE, {"id": "x"}, everyone=True)
        target = next(iter(simulator.model.objects))
        await simulator.set_state(target, STATE_ALARM)
        await wait_for(lambda: bool(listener.of(StateChanged)), what="a later event")
        assert live.stats.unknown_topics == {"custom-server-event": 3}
        warnings = [r for r in caplog.records if "does not know" in r.getMessage()]
        assert len(warnings) == 1
        assert "custom-server-event" in warnings[0].getMessage()
    finally:
        await live.stop()


async def test_a_polling_connection_closes_at_once(simulator: SaymonSimulator) -> None:
    """A server that holds the pending long-poll until its next ping must not hold the close.

    python-engineio waits for its read loop, i.e. for the server to answer the poll: the
    simulator's python-engineio server answers it at its next ping, 25 s later.
    """
    async with aiohttp.ClientSession() as http:
        rest = SaymonRestClient(
            http, simulator.rest_url, PasswordCredentials(simulator.login, simulator.password)
        )
        comet = CometClient(
            http,
            CometEndpoint(simulator.comet_url),
            lambda refresh: rest.ensure_session(refresh=refresh),
            transports=("polling",),
        )
        started = time.monotonic()
        await comet.check()
        comet.start()
        await wait_for(lambda: comet.connected, what="connected over polling")
        await comet.stop()
        assert time.monotonic() - started < 8
        await rest.logout()


async def test_a_storm_is_cut_before_the_queue(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    """Traps over the limit are dropped as they arrive: they never wait in front of states."""
    live, listener = await live_session(simulator, session, ["snmp-trap"])
    try:
        target = next(iter(simulator.model.objects))
        await simulator.emit_server_event("snmp-trap", target, count=2000)
        await simulator.set_state(target, STATE_ALARM)
        await wait_for(lambda: bool(listener.of(StateChanged)), timeout=20, what="the state")
        passed = len(listener.of(SnmpTrap))
        assert BURST <= passed < BURST + 20  # the burst, and 2 a second while they came
        assert live.gate.limit.dropped == {"snmp-trap": 2000 - passed}
        assert live.comet.stats.events["snmp-trap"] == 2000  # received, counted
        assert live.comet.stats.queue_peak < 100
    finally:
        await live.stop()
