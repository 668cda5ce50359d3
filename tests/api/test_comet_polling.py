"""Long-polling against the Node socket.io 4.5.0 server, also behind a proxy refusing WebSocket.

``transport="polling"`` starts with Engine.IO long-polling and upgrades to WebSocket when it
can; where a proxy refuses the upgrade it stays on long-polling with the same guarantees: every
event in order (bursts far beyond python-engineio's 16 packets per poll included), and after
every kind of drop a reconnect that subscribes every topic again, the opt-in ones included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import logging

import aiohttp
import pytest

from custom_components.saymon.api.comet import Backoff, CometClient, Subscription
from custom_components.saymon.api.events import StateChangeEvent
from custom_components.saymon.api.live import TRANSPORTS
from custom_components.saymon.api.ratelimit import BURST, ServerEventGate
from custom_components.saymon.api.server_events import (
    SERVER_TOPICS,
    BulkFinished,
    ClientNotification,
    JobEvent,
    MqttMessage,
    SnmpTrap,
)
from custom_components.saymon.api.url import CometEndpoint
from tests.http_proxy import NoWebSocketProxy
from tests.util import Recorder, wait_for
from tools.node_comet import CometClient as NodeClient, NodeCometServer

pytestmark = pytest.mark.node

TOPICS = ("incidents", "incident-count", "state-change", "model-changed", *SERVER_TOPICS)
FAST = Backoff(base=0.05, cap=0.5)


@pytest.fixture
async def node() -> AsyncIterator[NodeCometServer]:
    server = NodeCometServer()
    await server.start(sessions=["session-1"])
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def proxy(node: NodeCometServer) -> AsyncIterator[NoWebSocketProxy]:
    proxy = NoWebSocketProxy(node.port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def session_id(refresh: bool) -> str:
    return "session-1"


def client(http: aiohttp.ClientSession, url: str, transport: str) -> tuple[CometClient, Recorder]:
    recorder = Recorder()
    comet = CometClient(
        http,
        CometEndpoint(url),
        session_id,
        subscriptions=[Subscription(topic) for topic in TOPICS],
        transports=TRANSPORTS[transport],
        backoff=FAST,
        on_event=recorder.on_event,
        on_connected=recorder.on_connected,
        on_disconnected=recorder.on_disconnected,
    )
    return comet, recorder


async def subscribed(node: NodeCometServer) -> NodeClient:
    async def ready() -> list[NodeClient]:
        return [c for c in await node.clients() if set(TOPICS) <= set(c["topics"])]

    for _ in range(500):
        if found := await ready():
            return found[0]
        await wait_for(lambda: True)
    raise AssertionError(f"never subscribed: {await node.clients()}")


async def test_polling_through_a_proxy_that_refuses_websocket(
    node: NodeCometServer, proxy: NoWebSocketProxy, http: aiohttp.ClientSession
) -> None:
    comet, recorder = client(http, proxy.url, "polling")
    comet.start()
    try:
        await wait_for(lambda: comet.connected, what="connected through the proxy")
        info = await subscribed(node)
        await wait_for(lambda: proxy.refused >= 1, what="the upgrade refused")
        assert info["transport"] == "polling"
        for topic in SERVER_TOPICS:
            await node.server_event(topic, shape="surprising")
        await node.emit("state-change", {"id": "o1", "state_id": 5, "type": 1})
        await wait_for(lambda: len(recorder.events) == 7, what="every kind")
        assert [type(e) for e in recorder.events] == [
            SnmpTrap,
            MqttMessage,
            ClientNotification,
            JobEvent,
            JobEvent,
            BulkFinished,
            StateChangeEvent,
        ]
        # Far more than the 16 packets python-engineio decodes per poll by default, in order.
        result = await node.emit("snmp-trap", {"entity": {"entityId": "o2"}}, count=3000, seq=True)
        assert result["emitted"] == 3000
        await wait_for(lambda: len(recorder.events) == 3007, timeout=60, what="the burst")
        assert comet.stats.events["snmp-trap"] == 3001
        assert recorder.disconnects == []
        assert (await node.clients())[0]["transport"] == "polling"
        assert comet.stats.malformed == {}
    finally:
        await comet.stop()


async def test_websocket_only_cannot_pass_that_proxy(
    node: NodeCometServer,
    proxy: NoWebSocketProxy,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.saymon.api.comet")
    comet, _ = client(http, proxy.url, "websocket")
    comet.start()
    try:
        await wait_for(lambda: comet.stats.connect_failures >= 2, what="failed attempts")
        assert not comet.connected
        assert proxy.refused >= 2
        assert proxy.forwarded == 0
        assert await node.clients() == []
        assert any("use the long-polling transport" in r.getMessage() for r in caplog.records)
    finally:
        await comet.stop()


@pytest.mark.parametrize("mode", ["engine", "socket", "destroy"])
async def test_polling_reconnects_and_subscribes_again(
    node: NodeCometServer, proxy: NoWebSocketProxy, http: aiohttp.ClientSession, mode: str
) -> None:
    """Every drop over polling is followed by a reconnect that subscribes every topic again.

    After an Engine.IO CLOSE over polling or a Socket.IO disconnect python-socketio would not
    reconnect by itself; after a dropped poll it would.
    """
    comet, recorder = client(http, proxy.url, "polling")
    comet.start()
    try:
        await wait_for(lambda: comet.connected, what="connected")
        first = await subscribed(node)
        assert await node.disconnect(mode) == 1  # type: ignore[arg-type]
        await wait_for(lambda: comet.stats.connects == 2, timeout=20, what="the reconnect")
        second = await subscribed(node)
        assert second["id"] != first["id"]
        assert second["transport"] == "polling"
        await node.server_event("job-result-received")
        await wait_for(lambda: len(recorder.events) == 1, what="an event after the reconnect")
        assert isinstance(recorder.events[0], JobEvent)
    finally:
        await comet.stop()


async def test_polling_upgrades_where_websocket_is_allowed(
    node: NodeCometServer, http: aiohttp.ClientSession
) -> None:
    comet, recorder = client(http, node.url, "polling")
    comet.start()
    try:
        await wait_for(lambda: comet.connected, what="connected")
        await subscribed(node)
        for _ in range(300):
            clients = await node.clients()
            if clients and clients[0]["transport"] == "websocket":
                break
            await wait_for(lambda: True)
        # python-engineio upgrades right after the polling handshake, before Socket.IO connects.
        assert clients[0]["transport"] == "websocket"
        await node.server_event("mqtt")
        await wait_for(lambda: len(recorder.events) == 1, what="an event after the upgrade")
    finally:
        await comet.stop()


async def test_a_trap_storm_never_fills_the_queue(
    node: NodeCometServer, http: aiohttp.ClientSession
) -> None:
    """The rate limit runs as events arrive, before the queue.

    A burst of traps from the real socket.io server, far faster than they could be parsed,
    leaves only what passes in the queue, and a state change behind it is not held up.
    """
    recorder = Recorder()
    gate = ServerEventGate()
    comet = CometClient(
        http,
        CometEndpoint(node.url),
        session_id,
        subscriptions=[Subscription(topic) for topic in TOPICS],
        backoff=FAST,
        on_event=recorder.on_event,
        gate=gate,
    )
    comet.start()
    try:
        await wait_for(lambda: comet.connected, what="connected")
        await subscribed(node)
        trap = {"entity": {"entityId": "o1"}, "payload": {"text": '"Link down"'}}
        await node.emit("snmp-trap", trap, count=20_000)
        await node.emit("state-change", {"id": "o2", "state_id": 5, "type": 1})
        await wait_for(
            lambda: any(isinstance(e, StateChangeEvent) for e in recorder.events),
            timeout=60,
            what="the state change behind the storm",
        )
        traps = [e for e in recorder.events if isinstance(e, SnmpTrap)]
        assert BURST <= len(traps) <= BURST + 10
        assert gate.limit.dropped["snmp-trap"] == 20_000 - len(traps)
        assert comet.stats.events["snmp-trap"] == 20_000
        assert comet.stats.queue_peak < 100
    finally:
        await comet.stop()
