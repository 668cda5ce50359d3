"""The Comet client's read-ahead limit: a storm faster than the consumer waits, it is not lost.

Against the real Node socket.io 4.5.0 server: with ``read_ahead`` far below the burst, later
frames are held raw while the worker catches up, every event arrives in order, nothing is
dropped, and the queue never holds more than the limit. Reading goes on while frames are
held, so the server's pings, queued behind a long storm, are answered in time and a slow
consumer does not cost the connection. Only a full hold pauses reading (TCP backpressure),
and a client stopped while its read loop waits for room shuts down cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import time

import aiohttp
import pytest

from custom_components.saymon.api.comet import CometClient, Subscription
from custom_components.saymon.api.events import CometEvent, StateChangeEvent
from custom_components.saymon.api.url import CometEndpoint
from tests.api import test_comet_node as base
from tests.api.test_comet_node import MakeClient, subscribed
from tests.util import Recorder, wait_for
from tools.node_comet import NodeCometServer

# Holding frames raw while the queue is full is done by the inline Engine.IO client.
pytestmark = [pytest.mark.node, pytest.mark.library_hooks]

# The Node server and client fixtures of the Comet wire tests.
node = base.node
http = base.http
make_client = base.make_client


async def test_burst_beyond_read_ahead_is_delayed_not_dropped(
    make_client: MakeClient, node: NodeCometServer
) -> None:
    client, recorder = await make_client(read_ahead=50)
    await subscribed(node)
    await node.emit("state-change", {"id": "o", "state_id": 3}, count=3000, seq=True)
    await wait_for(lambda: len(recorder.events) == 3000, what="every event")
    assert client.stats.dropped == 0
    assert recorder.lost == []
    assert client.stats.queue_peak == 50  # the rest was held at the limit
    assert client.stats.held_peak > 0
    assert [e.entity_id for e in recorder.events if isinstance(e, StateChangeEvent)] == ["o"] * 3000


FRAME = len('2["state-change",{"id":"o","state_id":3,"seq":1000}]')


async def test_stop_while_reading_is_paused(make_client: MakeClient, node: NodeCometServer) -> None:
    client, recorder = await make_client(read_ahead=10, max_held_bytes=20 * FRAME)
    await subscribed(node)
    worker = client._worker
    assert worker is not None
    worker.cancel()  # nobody drains the queue or the hold: the read loop must stop at the limit
    await node.emit("state-change", {"id": "o", "state_id": 3}, count=2000, seq=True)
    await wait_for(lambda: client.stats.reading_paused > 0, what="the read loop to pause")
    await asyncio.sleep(0.2)
    assert client.stats.queue_peak == 10  # queued exactly up to the limit, nothing dropped
    assert 10 <= client.stats.held_peak <= 21  # held up to max_held_bytes (one frame over)
    assert client.stats.reading_paused == 1
    assert client.stats.dropped == 0
    assert client.holding  # the public view of the hold: every frame waits in it
    assert client.backlog == 10 + client.stats.held_peak
    await asyncio.wait_for(client.stop(), 10)  # the paused read loop is released
    assert not client.connected
    assert recorder.events == []
    assert (client.holding, client.backlog) == (False, 0)


PING_INTERVAL_MS = 300
PING_TIMEOUT_MS = 1500


@pytest.fixture
async def quick_pings() -> AsyncIterator[NodeCometServer]:
    """A Node server that drops a client whose pong is 1.5 s late (pings every 0.3 s)."""
    server = NodeCometServer()
    await server.start(
        sessions=["session-1"], ping_interval_ms=PING_INTERVAL_MS, ping_timeout_ms=PING_TIMEOUT_MS
    )
    try:
        yield server
    finally:
        await server.stop()


async def test_slow_consumer_keeps_answering_pings(
    http: aiohttp.ClientSession, quick_pings: NodeCometServer
) -> None:
    """A storm that takes seconds to handle keeps its connection: pings are read past it.

    The server queues every event before its next ping, so the ping reaches the client only
    after the whole storm was read. A read loop that paused for the consumer (reading at its
    pace) saw that ping seconds late and was dropped by the server after 1.8 s; a worker that
    held the event loop for a whole batch of slow events would delay the pong as much.
    """
    handled: list[CometEvent] = []

    def slow(event: CometEvent) -> None:
        time.sleep(0.002)  # Home Assistant's work per event, twenty times over
        handled.append(event)

    count = 2_000
    recorder = Recorder()
    client = CometClient(
        http,
        CometEndpoint(quick_pings.url),
        base.Sessions(quick_pings),
        subscriptions=[Subscription(topic) for topic in base.TOPICS],
        backoff=base.FAST,
        on_event=slow,
        on_disconnected=recorder.on_disconnected,
        read_ahead=100,
    )
    client.start()
    try:
        await subscribed(quick_pings)
        before = [c["id"] for c in await quick_pings.clients()]
        started = time.monotonic()
        await quick_pings.emit("state-change", {"id": "o", "state_id": 3}, count=count, seq=True)
        await wait_for(lambda: len(handled) == count, timeout=60, what="every event")
        took = time.monotonic() - started
        assert took > 4.0, f"the storm took {took:.1f} s: not longer than the ping timeout"
        # A late pong is punished up to one ping period plus the timeout later.
        await asyncio.sleep((PING_INTERVAL_MS + PING_TIMEOUT_MS) / 1000 + 0.5)
        assert recorder.disconnects == [], f"dropped during a {took:.1f} s storm"
        assert [c["id"] for c in await quick_pings.clients()] == before
        assert client.stats.connects == 1
        assert client.stats.reading_paused == 0
        assert client.stats.held_peak > count // 2  # read ahead of the consumer
        assert client.stats.dropped == 0
    finally:
        await client.stop()
