"""The Comet client against the real Node ``socket.io@4.5.0`` server SAYMON runs.

Each test reproduces one pitfall measured in ``shared/socketio-notes.md`` and proves the
client handles it: no reconnect after a server-side disconnect, the 1 s ``wait_timeout``,
a rejected session retried forever, the 4 MiB WebSocket cap, the 16-packet polling limit,
one task per event, ``handle_sigint`` and URL-encoding of the session id.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import itertools
import signal
from typing import Any

import aiohttp
import pytest

from custom_components.saymon.api.comet import Backoff, CometClient, Subscription
from custom_components.saymon.api.errors import (
    SaymonCometError,
    SaymonConnectionError,
    SaymonInvalidCredentialsError,
    SaymonSessionExpiredError,
)
from custom_components.saymon.api.events import (
    IncidentCountEvent,
    IncidentEvent,
    ModelChangedEvent,
    RawEvent,
    StateChangeEvent,
    StatEvent,
)
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.url import CometEndpoint
from tests.util import Recorder, wait_for
from tools.node_comet import NodeCometServer

pytestmark = pytest.mark.node

TOPICS = ("incidents", "incident-count", "state-change", "model-changed")
FAST = Backoff(base=0.05, cap=0.5)


class Sessions:
    """A stand-in for the REST login: hands out session ids and tells the server about them."""

    def __init__(self, server: NodeCometServer, first: str = "session-1") -> None:
        self.server = server
        self.current = first
        self.calls: list[bool] = []
        self.counter = itertools.count(2)
        self.refuse_credentials = False

    async def __call__(self, refresh: bool) -> str:
        self.calls.append(refresh)
        if self.refuse_credentials:
            raise SaymonInvalidCredentialsError("Invalid login or password.")
        if refresh:
            self.current = f"session-{next(self.counter)}"
            await self.server.set_sessions([self.current])
        return self.current


@pytest.fixture
async def node() -> AsyncIterator[NodeCometServer]:
    server = NodeCometServer()
    await server.start(sessions=["session-1"])
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


type MakeClient = Callable[..., Awaitable[tuple[CometClient, Recorder]]]


@pytest.fixture
async def make_client(
    node: NodeCometServer, http: aiohttp.ClientSession
) -> AsyncIterator[MakeClient]:
    clients: list[CometClient] = []

    async def make(
        *,
        sessions: Callable[[bool], Awaitable[str]] | None = None,
        transports: tuple[str, ...] = ("websocket",),
        start: bool = True,
        **kwargs: Any,
    ) -> tuple[CometClient, Recorder]:
        recorder = Recorder()
        client = CometClient(
            http,
            CometEndpoint(node.url),
            sessions or Sessions(node),
            subscriptions=[Subscription(topic) for topic in TOPICS],
            transports=transports,
            backoff=FAST,
            **{**recorder.callbacks(), **kwargs},
        )
        clients.append(client)
        if start:
            client.start()
            await wait_for(lambda: client.connected, what="Comet connection")
        return client, recorder

    yield make
    for client in clients:
        await client.stop()


async def subscribed(node: NodeCometServer, count: int = 1) -> list[str]:
    """Wait until ``count`` clients are connected with every topic; return their topics."""
    for _ in range(500):
        clients = await node.clients()
        if len(clients) == count and all(set(TOPICS) <= set(c["topics"]) for c in clients):
            return sorted(clients[0]["topics"])
        await asyncio.sleep(0.01)
    raise AssertionError(f"clients never subscribed: {await node.clients()}")


@pytest.mark.parametrize("transports", [("websocket",), ("polling",), ("polling", "websocket")])
async def test_every_event_type_in_order(
    make_client: MakeClient, node: NodeCometServer, transports: tuple[str, ...]
) -> None:
    """Both transports deliver every event kind, parsed, in order; polling bursts survive."""
    client, recorder = await make_client(transports=transports)
    assert await subscribed(node) == sorted(TOPICS)
    await node.emit("state-change", {"id": "o1", "state_id": 5, "type": 1})
    await node.emit(
        "incidents",
        {"changeType": 1, "payload": {"id": "i1", "entityId": "o1", "state": 1, "text": "Down"}},
    )
    await node.emit("incident-count", {"count": 1})
    await node.emit(
        "model-changed",
        {"changeType": 2, "id": "o1", "entityType": 1, "user": {"id": "u", "login": "admin"}},
    )
    await client.subscribe(Subscription.stat(EntityType.OBJECT, "o1"))
    for _ in range(200):
        if any(t.startswith("stat") for c in await node.clients() for t in c["topics"]):
            break
        await asyncio.sleep(0.01)
    await node.emit(
        "stat",
        {"entityId": "o1", "entityType": 1, "timestamp": 5, "payload": {"rtt": 1}},
        room="stat:1:o1",
    )
    await wait_for(
        lambda: len(recorder.events) == 5,
        what=f"five events, got {client.stats} {await node.clients()}",
    )
    kinds = [type(event) for event in recorder.events]
    assert kinds == [
        StateChangeEvent,
        IncidentEvent,
        IncidentCountEvent,
        ModelChangedEvent,
        StatEvent,
    ]
    # A burst far beyond python-engineio's 16-packets-per-poll default arrives whole and in order.
    result = await node.emit("state-change", {"id": "o2", "state_id": 3}, count=3000, seq=True)
    assert result["emitted"] == 3000
    await wait_for(lambda: len(recorder.events) == 3005, timeout=60, what="burst")
    assert client.stats.events["state-change"] == 3001
    assert recorder.disconnects == []
    assert client.connected


@pytest.mark.library_hooks
async def test_burst_runs_without_a_task_per_event(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    """python-engineio would start one task per message; ours dispatches inline."""
    client, recorder = await make_client()
    await subscribed(node)
    loop = asyncio.get_running_loop()
    created = 0
    factory = loop.get_task_factory()

    def counting_factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting_factory)
    try:
        await node.emit("state-change", {"id": "o", "state_id": 3}, count=20000, seq=True)
        await wait_for(lambda: len(recorder.events) == 20000, timeout=60, what="20k events")
    finally:
        loop.set_task_factory(factory)
    assert created < 100, f"{created} tasks for 20,000 events"
    assert client.stats.dropped == 0


async def test_session_id_is_url_encoded(make_client: MakeClient, node: NodeCometServer) -> None:
    awkward = "rotated+/=&?# session-é"
    await node.set_sessions([awkward])
    sessions = Sessions(node, first=awkward)
    await make_client(sessions=sessions)
    clients = await node.clients()
    assert [c["sessionId"] for c in clients] == [awkward]
    assert sessions.calls == [False]


async def test_rejected_session_is_renewed_not_retried_forever(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    await node.set_sessions(["something-else"])
    sessions = Sessions(node)
    client, _ = await make_client(sessions=sessions)
    # First attempt with the stale id was rejected; the next asked for a fresh login.
    assert sessions.calls[:2] == [False, True]
    assert client.stats.sessions_rejected == 1
    assert [c["sessionId"] for c in await node.clients()] == [sessions.current]


async def test_rejected_credentials_stop_the_supervisor(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    await node.set_sessions([])
    sessions = Sessions(node)
    sessions.refuse_credentials = True
    client, recorder = await make_client(sessions=sessions, start=False)
    client.start()
    await wait_for(lambda: recorder.auth_failures != [], what="auth failure")
    await asyncio.sleep(0.3)
    assert sessions.calls == [False]  # no loop: one refusal ends it
    assert not client.connected
    assert client.stats.sessions_rejected == 0


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("socket", "server disconnect"),  # python-socketio would never reconnect
        ("engine", "transport error"),
        ("destroy", "transport error"),
        ("reset", "transport error"),
    ],
)
async def test_reconnects_and_resubscribes_after_any_disconnect(
    make_client: MakeClient, node: NodeCometServer, mode: str, reason: str
) -> None:
    client, recorder = await make_client()
    await subscribed(node)
    assert await node.disconnect(mode) == 1  # type: ignore[arg-type]
    await wait_for(lambda: recorder.connected == 2, what="reconnect")
    assert recorder.disconnects == [reason]
    await subscribed(node)
    await node.emit("state-change", {"id": "o", "state_id": 5})
    await wait_for(lambda: len(recorder.events) == 1, what="event after reconnect")
    assert client.stats.reconnects == 1


async def test_engine_close_over_polling_reconnects(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    """An Engine.IO CLOSE over polling ends python-socketio's reconnection; not ours."""
    _, recorder = await make_client(transports=("polling",))
    await subscribed(node)
    await node.disconnect("engine")
    await wait_for(lambda: recorder.connected == 2, what="reconnect")
    assert recorder.disconnects == ["server disconnect"]
    await subscribed(node)


async def test_server_restart(make_client: MakeClient, node: NodeCometServer) -> None:
    _, recorder = await make_client()
    await subscribed(node)
    await node.restart(downtime=0.5)
    await wait_for(lambda: recorder.connected == 2, what="reconnect after restart")
    await subscribed(node)
    await node.emit("incident-count", 3)
    await wait_for(lambda: recorder.events == [IncidentCountEvent(3)], what="event after restart")


async def test_slow_namespace_accept_is_waited_for(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    """python-socketio's reconnect waits 1 s for the namespace; a 1.5 s lookup failed forever."""
    _, recorder = await make_client()
    await node.set_accept_delay(1500)
    await node.disconnect("destroy")
    await wait_for(lambda: recorder.connected == 2, timeout=15, what="slow reconnect")


async def test_large_message_over_4_mib(make_client: MakeClient, node: NodeCometServer) -> None:
    client, recorder = await make_client()
    await subscribed(node)
    await node.emit_big("incident-count", 5 * 1024 * 1024)
    await wait_for(lambda: client.stats.malformed["incident-count"] == 1, what="big event")
    assert recorder.disconnects == []  # aiohttp's default 4 MiB cap would have dropped us


async def test_malformed_events_are_counted_and_survived(
    make_client: MakeClient, node: NodeCometServer, caplog: pytest.LogCaptureFixture
) -> None:
    client, recorder = await make_client()
    await subscribed(node)
    for payload in ({"no": "id"}, "garbage", [1, 2], {"id": "x", "state_id": {"deep": 1}}):
        await node.emit("state-change", payload)
    await node.emit("incidents", {"changeType": 42, "payload": {"id": "i"}})
    await node.emit("state-change", {"id": "ok", "state_id": 3})
    await wait_for(lambda: len(recorder.events) == 1, what="the good event")
    assert client.stats.malformed == {"state-change": 4, "incidents": 1}
    warnings = [r for r in caplog.records if "malformed" in r.getMessage()]
    # Once per kind at WARNING, the rest at DEBUG.
    assert sorted(r.levelname for r in warnings) == [
        "DEBUG",
        "DEBUG",
        "DEBUG",
        "WARNING",
        "WARNING",
    ]
    assert client.connected


async def test_unknown_topics_pass_through(make_client: MakeClient, node: NodeCometServer) -> None:
    client, recorder = await make_client()
    await client.subscribe(Subscription("custom-server-event"))
    for _ in range(200):
        if any("custom-server-event" in c["topics"] for c in await node.clients()):
            break
        await asyncio.sleep(0.01)
    await node.emit("custom-server-event", {"extension": "cas"})
    expected = [RawEvent("custom-server-event", ({"extension": "cas"},))]
    await wait_for(lambda: recorder.events == expected, what="raw event")
    await client.unsubscribe(Subscription("custom-server-event"))
    await client.unsubscribe(Subscription("custom-server-event"))  # unknown: nothing to do
    for _ in range(200):
        if not any("custom-server-event" in c["topics"] for c in await node.clients()):
            break
        await asyncio.sleep(0.01)
    assert all("custom-server-event" not in c["topics"] for c in await node.clients())


async def test_queue_overflow_is_counted_and_reported(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    client, recorder = await make_client(queue_size=5)
    await subscribed(node)
    await node.emit("state-change", {"id": "o", "state_id": 3}, count=5000, seq=True)
    await wait_for(
        lambda: len(recorder.events) + client.stats.dropped == 5000, what="all accounted for"
    )
    # Each overflow episode is reported once, when the queue has drained, with the running total.
    await wait_for(lambda: recorder.lost[-1:] == [client.stats.dropped], what="loss report")
    assert client.stats.dropped > 0
    assert recorder.lost == sorted(set(recorder.lost))
    assert client.stats.queue_peak == 5


async def test_handle_sigint_left_alone(make_client: MakeClient) -> None:
    before = signal.getsignal(signal.SIGINT)
    await make_client()
    assert signal.getsignal(signal.SIGINT) is before


async def test_check_accepts_and_disconnects(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    client, _ = await make_client(start=False)
    await client.check()
    assert not client.connected
    await asyncio.sleep(0.1)
    assert await node.clients() == []


async def test_check_reports_rejected_session(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    await node.set_sessions([])
    client, _ = await make_client(start=False)
    with pytest.raises(SaymonSessionExpiredError):
        await client.check()


async def test_check_names_the_unreachable_address(http: aiohttp.ClientSession) -> None:
    async def session(_: bool) -> str:
        return "s"

    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = CometClient(
        http, CometEndpoint(f"http://127.0.0.1:{port}"), session, connect_timeout=2
    )
    with pytest.raises(SaymonCometError) as err:
        await client.check()
    assert f"127.0.0.1:{port}" in str(err.value)
    assert isinstance(err.value, SaymonConnectionError)


async def test_stop_while_server_is_down_returns_promptly(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    client, recorder = await make_client()
    await node.kill()
    await wait_for(lambda: recorder.disconnects != [], what="disconnect")
    async with asyncio.timeout(2):
        await client.stop()
    assert not client.connected


async def test_incident_filter_is_sent_with_add_topics(
    http: aiohttp.ClientSession, node: NodeCometServer
) -> None:
    client = CometClient(
        http,
        CometEndpoint(node.url),
        Sessions(node),
        subscriptions=[Subscription.incidents({"parentFilter": "p1"})],
        backoff=FAST,
    )
    client.start()
    try:
        await wait_for(lambda: client.connected, what="connection")
        for _ in range(200):
            clients = await node.clients()
            if clients and clients[0]["filters"]:
                break
            await asyncio.sleep(0.01)
        assert clients[0]["topics"] == ["incidents"]
        assert clients[0]["filters"] == {"incidents": '{"parentFilter":"p1"}'}
    finally:
        await client.stop()
