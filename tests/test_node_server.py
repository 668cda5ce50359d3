"""Smoke tests of the Node socket.io 4.5.0 test server and its Python helper.

The wire-compatibility tests trust this server to reproduce what
``/work/shared/socketio-notes.md`` measured against a real socket.io 4.5.0
server. These tests pin that down with a plain python-socketio client (not
our integration's client), so a failure here points at the test server or at
a python-socketio/engineio upgrade, not at the integration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import itertools
import json
from pathlib import Path
from typing import Any
import urllib.parse

from aiohttp import web
import pytest
import socketio
import socketio.exceptions

from tools.node_comet import NodeCometError, NodeCometServer

pytestmark = pytest.mark.node

SESSION = "rotated+/=&?# session-é"  # needs URL-encoding; the server must see it intact
OTHER_SESSION = "other-session"


def session_url(server: NodeCometServer, session: str = SESSION) -> str:
    """Build the connect URL the way our client must: sessionId encoded by us."""
    return f"{server.url}/?{urllib.parse.urlencode({'sessionId': session})}"


def new_client(**kwargs: Any) -> socketio.AsyncClient:
    """Return a client that cannot hijack SIGINT and does not auto-reconnect by default."""
    kwargs.setdefault("reconnection", False)
    return socketio.AsyncClient(handle_sigint=False, **kwargs)


async def wait_for(
    predicate: Callable[[], Any], within: float = 5.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` (sync or async) until it is truthy, for at most ``within`` s."""
    async with asyncio.timeout(within):
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)


@pytest.fixture
async def comet(socket_enabled: None) -> AsyncIterator[NodeCometServer]:
    """Run a server for one test.

    The Home Assistant test plugin blocks socket creation; ``socket_enabled``
    lifts that while its host guard still limits connections to 127.0.0.1.
    """
    server = NodeCometServer()
    await server.start(sessions=[SESSION, OTHER_SESSION])
    try:
        yield server
    finally:
        await server.stop()


class Probe:
    """A python-socketio client that records what it sees."""

    def __init__(
        self, topics: tuple[str, ...] = ("incidents",), *, subscribe: bool = True, **kwargs: Any
    ) -> None:
        self.sio = new_client(**kwargs)
        self.topics = topics if subscribe else ()
        self.events: list[Any] = []
        self.reasons: list[str] = []
        self.connects = 0
        self.connect_errors: list[Any] = []
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect_error", self._on_connect_error)
        for topic in topics:  # listen even if not subscribing on connect
            self.sio.on(topic, self._on_event)

    async def _on_connect(self) -> None:
        self.connects += 1
        for topic in self.topics:
            await self.sio.emit("add-topics", topic)

    def _on_disconnect(self, reason: str) -> None:
        self.reasons.append(reason)

    def _on_connect_error(self, data: Any) -> None:
        self.connect_errors.append(data)

    def _on_event(self, payload: Any) -> None:
        self.events.append(payload)

    async def connect(self, server: NodeCometServer, **kwargs: Any) -> None:
        kwargs.setdefault("wait_timeout", 5)
        await self.sio.connect(session_url(server), **kwargs)
        await subscribed(server, *self.topics)

    async def close(self) -> None:
        await self.sio.shutdown()
        # python-engineio quirk: after an Engine.IO CLOSE over polling its
        # _reset() drains the queue before the write loop sees the None
        # sentinel, so the write loop (and the read loop awaiting it) linger
        # for max(ping_interval, ping_timeout) + 5 s. Wake it up.
        eio = self.sio.eio
        task = eio.write_loop_task
        if task is not None and not task.done() and eio.state != "connected":
            eio.queue.put_nowait(None)
            await asyncio.wait_for(asyncio.shield(task), 5)
        if eio.read_loop_task is not None:
            await asyncio.wait_for(asyncio.shield(eio.read_loop_task), 5)


async def subscribed(server: NodeCometServer, *topics: str) -> None:
    """Wait until some client holds every topic (add-topics has no ack)."""

    async def check() -> bool:
        return any(set(topics) <= set(c["topics"]) for c in await server.clients())

    await wait_for(check)


@pytest.fixture
async def probes() -> AsyncIterator[list[Probe]]:
    """Collect probes so that every test shuts its clients down, even on failure."""
    made: list[Probe] = []
    yield made
    for probe in made:
        await probe.close()


async def test_subscribe_and_burst_arrive_in_order(
    comet: NodeCometServer, probes: list[Probe]
) -> None:
    probe = Probe()
    probes.append(probe)
    await probe.connect(comet)

    [client] = await comet.clients()
    assert client["sessionId"] == SESSION
    assert client["topics"] == ["incidents"]
    assert client["transport"] == "websocket"
    assert client["upgrades"] == ["websocket"]  # the client upgraded before the namespace CONNECT

    result = await comet.emit("incidents", {"id": "x"}, count=1000, seq=True)
    assert result["emitted"] == 1000
    assert result["recipients"] == 1
    await wait_for(lambda: len(probe.events) >= 1000)
    assert [e["seq"] for e in probe.events] == list(range(1000))
    assert probe.events[0] == {"id": "x", "seq": 0}

    # Events for topics nobody subscribed to, and after remove-topics, don't arrive.
    await comet.emit("stat", {"v": 1})
    await probe.sio.emit("remove-topics", "incidents")
    await wait_for(lambda: _no_topics(comet))
    await comet.emit("incidents", {"id": "late"})
    await asyncio.sleep(0.1)
    assert len(probe.events) == 1000


async def _no_topics(comet: NodeCometServer) -> bool:
    return all(not c["topics"] for c in await comet.clients())


async def test_filtered_topic_room(comet: NodeCometServer, probes: list[Probe]) -> None:
    probe = Probe(topics=("stat",), subscribe=False)  # subscribed below, the filtered way
    probes.append(probe)
    await probe.connect(comet)
    await probe.sio.emit("add-filtered-topic", ("stat", "1:abc"))
    await subscribed(comet, "stat:1:abc")
    await comet.emit("stat", {"entityId": "abc"}, room="stat:1:abc")
    await comet.emit("stat", {"entityId": "other"}, room="stat:1:other")
    await wait_for(lambda: probe.events)
    await asyncio.sleep(0.05)
    assert probe.events == [{"entityId": "abc"}]


async def test_probes_send_stat_to_subscribers_only(
    comet: NodeCometServer, probes: list[Probe]
) -> None:
    """Each probe's stat reaches the sockets subscribed to its entity, every period."""
    probe = Probe(topics=("stat",), subscribe=False)
    probes.append(probe)
    await probe.connect(comet)
    await probe.sio.emit("add-filtered-topic", ("stat", "1:sw"))
    await probe.sio.emit("add-filtered-topic", ("stat", "2:ln"))
    await subscribed(comet, "stat:2:ln")
    entities = [
        {"type": 1, "id": "sw", "kind": "snmp"},
        {"type": 2, "id": "ln", "kind": "ping"},
        {"type": 1, "id": "unwatched", "kind": "cpu"},
    ]
    started = await comet.start_probes(entities, period_ms=100, expiry_ms=50, seed=3)
    assert started == {"entities": 3, "period_ms": 100}
    await wait_for(lambda: len([e for e in probe.events if e["entityId"] == "sw"]) >= 4)
    await probe.sio.emit("remove-filtered-topic", ("stat", "1:sw"))
    await wait_for(lambda: _rooms(comet, {"stat:2:ln"}))
    seen = len(probe.events)
    stopped = await comet.stop_probes()
    assert stopped["sent"] >= 10  # three probes: three whole periods, and the switch a fourth time
    truth = await comet.last_stats()
    assert not truth["running"]
    assert set(truth["last"]) == {"1:sw", "2:ln", "1:unwatched"}
    assert {e["entityId"] for e in probe.events} == {"sw", "ln"}
    assert all(e["entityId"] == "ln" for e in probe.events[seen:])
    switch = [e for e in probe.events if e["entityId"] == "sw"]
    stat = switch[-1]["payload"]
    assert (stat["taskType"], stat["period"], stat["expiryPeriod"]) == ("snmp", 100, 50)
    octets = [e["payload"]["payload"]["ifHCInOctets"] for e in switch]
    growing = [b > a for a, b in itertools.pairwise(octets)]
    assert octets[0] > 0
    assert sum(growing) >= len(growing) - 1  # a counter grows (a rare reset aside)
    link = next(e for e in probe.events if e["entityId"] == "ln")
    assert link["entityType"] == 2
    assert set(link["payload"]["payload"]) >= {"roundTripAverage", "packetLossPercentile"}


async def test_replayed_stat_goes_to_its_entity_room(
    comet: NodeCometServer, probes: list[Probe], tmp_path: Path
) -> None:
    probe = Probe(topics=("stat",), subscribe=False)
    probes.append(probe)
    await probe.connect(comet)
    await probe.sio.emit("add-filtered-topic", ("stat", "1:a"))
    await subscribed(comet, "stat:1:a")
    storm = tmp_path / "stat.ndjson"
    lines = [
        ["stat", {"entityId": entity, "entityType": 1, "payload": {"n": n}}]
        for n, entity in enumerate(["a", "b", "a", "c", "a"])
    ]
    storm.write_text("".join(json.dumps(line) + "\n" for line in lines))
    for flow in (False, True):
        probe.events.clear()
        await comet.replay(storm, flow=flow)
        await wait_for(lambda: len(probe.events) >= 3)
        await asyncio.sleep(0.05)
        assert [e["payload"]["n"] for e in probe.events] == [0, 2, 4]


async def _rooms(comet: NodeCometServer, rooms: set[str]) -> bool:
    return all(set(c["topics"]) == rooms for c in await comet.clients())


async def test_invalid_session_is_rejected_with_data(comet: NodeCometServer) -> None:
    sio = new_client()
    errors: list[Any] = []
    sio.on("connect_error", errors.append)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(session_url(comet, "expired"), wait_timeout=5)
    finally:
        await sio.shutdown()
    assert errors == [
        {"message": "Invalid sessionId", "data": {"code": 401, "reason": "invalid-session"}}
    ]
    assert (await comet.stats())["rejected"] == 1

    # The valid set can be replaced at run time.
    await comet.set_sessions(["expired"])
    sio = new_client()
    try:
        await sio.connect(session_url(comet, "expired"), wait_timeout=5)
    finally:
        await sio.shutdown()


@pytest.mark.parametrize(
    ("transports", "mode", "reason"),
    [
        (None, "socket", "server disconnect"),
        (None, "engine", "transport error"),
        (None, "destroy", "transport error"),
        (None, "reset", "transport error"),
        (["polling"], "socket", "server disconnect"),
        (["polling"], "engine", "server disconnect"),
        (["polling"], "destroy", "transport error"),
    ],
)
async def test_disconnect_modes(
    comet: NodeCometServer,
    probes: list[Probe],
    transports: list[str] | None,
    mode: Any,
    reason: str,
) -> None:
    probe = Probe()
    probes.append(probe)
    await probe.connect(comet, transports=transports)
    assert await comet.disconnect(mode) == 1
    await wait_for(lambda: probe.reasons)
    assert probe.reasons == [reason]
    await wait_for(lambda: _no_clients(comet))


async def _no_clients(comet: NodeCometServer) -> bool:
    return not await comet.clients()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_single_transport(
    comet: NodeCometServer, probes: list[Probe], transport: str
) -> None:
    probe = Probe()
    probes.append(probe)
    await probe.connect(comet, transports=[transport])
    [client] = await comet.clients()
    assert client["transport"] == transport
    assert client["upgrades"] == [transport]
    # Stay below python-engineio's 16-packets-per-poll decode limit on polling.
    await comet.emit("incidents", {}, count=10, seq=True)
    await wait_for(lambda: len(probe.events) >= 10)
    assert [e["seq"] for e in probe.events] == list(range(10))


async def test_restart_on_same_port_and_auto_reconnect(
    comet: NodeCometServer, probes: list[Probe]
) -> None:
    probe = Probe(reconnection=True, reconnection_delay=0.2, randomization_factor=0.1)
    probes.append(probe)
    await probe.connect(comet)
    port = comet.port
    await comet.restart(downtime=0.2)
    assert comet.port == port
    await wait_for(lambda: probe.connects == 2, within=10)
    assert probe.reasons == ["transport error"]
    await subscribed(comet, "incidents")  # the connect handler re-subscribed
    await comet.emit("incidents", {"after": "restart"})
    await wait_for(lambda: probe.events == [{"after": "restart"}])


async def test_big_event_and_stall(comet: NodeCometServer, probes: list[Probe]) -> None:
    probe = Probe()
    probes.append(probe)
    await probe.connect(comet)
    await comet.emit_big("incidents", 100_000)
    await wait_for(lambda: probe.events)
    assert probe.events[0]["size"] == 100_000
    assert len(probe.events[0]["data"]) == 100_000

    stalled = await comet.stall(300)
    assert stalled["stalled_ms"] >= 300
    assert probe.sio.connected


@pytest.mark.usefixtures("socket_enabled")
async def test_control_errors_and_stop_is_idempotent() -> None:
    server = NodeCometServer()
    with pytest.raises(NodeCometError, match="not been started"):
        _ = server.url
    await server.start(sessions=[])
    try:
        with pytest.raises(NodeCometError, match="unknown disconnect mode"):
            await server.disconnect("bogus")  # type: ignore[arg-type]
        await server.shutdown()
        assert not server.running
    finally:
        await server.stop()
        await server.stop()


async def test_replay_in_order_paced_and_stamped(
    comet: NodeCometServer, probes: list[Probe], tmp_path: Path
) -> None:
    """POST /replay emits a recorded storm in order, fast or paced, with emit times."""
    probe = Probe(("state-change", "incidents"))
    probes.append(probe)
    await probe.connect(comet)
    lines = [
        ["state-change", {"id": f"o{i}", "state_id": 3 + i % 3, "type": 1}] for i in range(4)
    ] + [["incidents", {"changeType": 1, "payload": {"id": "i1"}}]]
    storm = tmp_path / "storm.ndjson"
    storm.write_text("".join(json.dumps(line) + "\n" for line in lines))

    fast = await comet.replay(storm)
    assert fast["emitted"] == 5
    assert fast["recipients"] == {"state-change": 1, "incidents": 1}
    assert fast["emit_times"] is None
    await wait_for(lambda: len(probe.events) == 5)
    assert probe.events == [payload for _, payload in lines]

    paced = await comet.replay(storm, rate=100, stamp=True, times=True)
    times = paced["emit_times"]
    assert len(times) == 5
    assert times == sorted(times)
    assert times[-1] - times[0] >= 35  # 5 events at 100/s: 40 ms from the first to the last
    await wait_for(lambda: len(probe.events) == 10)
    stamped = probe.events[5:]
    assert [e["emitted_at"] for e in stamped] == pytest.approx(times, abs=1)
    assert [{k: v for k, v in e.items() if k != "emitted_at"} for e in stamped] == [
        payload for _, payload in lines
    ]

    storm.write_text('{"not": "a pair"}\n')
    with pytest.raises(NodeCometError, match="400"):
        await comet.replay(storm)
    with pytest.raises(NodeCometError, match="400"):
        await comet.replay(tmp_path / "missing.ndjson")


async def test_session_check_url(socket_enabled: None) -> None:
    """With --session-check-url, a session the REST API accepts is accepted too."""
    checked: list[str] = []

    async def current_user(request: web.Request) -> web.Response:
        session = request.headers.get("X-Session-Id", "")
        checked.append(session)
        return web.json_response({}, status=200 if session == "from-rest" else 401)

    app = web.Application()
    app.router.add_get("/node/api/users/current", current_user)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server = NodeCometServer()
    try:
        await server.start(
            sessions=["listed"], session_check_url=f"http://127.0.0.1:{port}/node/api/users/current"
        )
        for session, accepted in (("listed", True), ("from-rest", True), ("unknown", False)):
            sio = new_client()
            url = f"{server.url}/?{urllib.parse.urlencode({'sessionId': session})}"
            try:
                if accepted:
                    await sio.connect(url, wait_timeout=5)
                    assert sio.connected
                else:
                    with pytest.raises(socketio.exceptions.ConnectionError):
                        await sio.connect(url, wait_timeout=5)
            finally:
                await sio.shutdown()
        assert checked == ["from-rest", "unknown"]  # listed sessions need no REST call
    finally:
        await server.stop()
        await runner.cleanup()
