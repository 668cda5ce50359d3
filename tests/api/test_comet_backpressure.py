"""The Comet client's read-ahead limit: a storm faster than the consumer waits, it is not lost.

Against the real Node socket.io 4.5.0 server: with ``read_ahead`` far below the burst, the
read loop pauses while the worker catches up (TCP backpressure), every event arrives in
order, nothing is dropped, and the queue never holds much more than the limit. A client
stopped while its read loop waits for room shuts down cleanly.
"""

from __future__ import annotations

import asyncio

import pytest

from custom_components.saymon.api.events import StateChangeEvent
from tests.api import test_comet_node as base
from tests.api.test_comet_node import MakeClient, subscribed
from tests.node_comet import NodeCometServer
from tests.util import wait_for

pytestmark = pytest.mark.node

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
    assert 50 <= client.stats.queue_peak < 50 + 500  # paused at the limit (one batch late)
    assert [e.entity_id for e in recorder.events if isinstance(e, StateChangeEvent)] == ["o"] * 3000


async def test_stop_while_reading_is_paused(make_client: MakeClient, node: NodeCometServer) -> None:
    client, recorder = await make_client(read_ahead=10)
    await subscribed(node)
    worker = client._worker
    assert worker is not None
    worker.cancel()  # nobody drains the queue: the read loop must stop at the limit
    await node.emit("state-change", {"id": "o", "state_id": 3}, count=2000, seq=True)
    await wait_for(lambda: client.stats.queue_peak >= 10, what="the read loop to pause")
    await asyncio.sleep(0.2)
    assert client.stats.queue_peak == 10  # paused exactly at the limit, nothing dropped
    assert client.stats.dropped == 0
    await asyncio.wait_for(client.stop(), 10)  # the paused read loop is released
    assert not client.connected
    assert recorder.events == []
