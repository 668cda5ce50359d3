"""The live session follows chosen objects' stat over real sockets (simulator, Node server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest

from custom_components.saymon.api import stat
from custom_components.saymon.api.live import SaymonLive
from custom_components.saymon.api.metrics import MetricsChanged
from custom_components.saymon.api.model import Change
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.rest import PasswordCredentials, SaymonRestClient
from tests.util import wait_for
from tools.node_comet import NodeCometServer
from tools.simulator import ENTITY_LINK, ENTITY_OBJECT, SaymonSimulator


class Listener:
    """Records what the live session reports."""

    def __init__(self) -> None:
        self.changes: list[tuple[Change, bool]] = []
        self.resynced = 0

    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        self.changes.extend((change, replayed) for change in changes)

    def on_connected(self) -> None:
        pass

    def on_disconnected(self, reason: str) -> None:
        pass

    def on_auth_failed(self) -> None:
        pass

    def on_resynced(self, renamed: Any) -> None:
        self.resynced += 1

    def metrics(self) -> list[tuple[MetricsChanged, bool]]:
        return [(c, r) for c, r in self.changes if isinstance(c, MetricsChanged)]


@pytest.fixture
async def simulator() -> AsyncIterator[SaymonSimulator]:
    async with SaymonSimulator(objects=40, seed=7, stat_period=60, stat_expiry=30) as sim:
        yield sim


@pytest.fixture
async def live(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[SaymonLive, Listener]]:
    listener = Listener()
    session = SaymonLive(
        http,
        simulator.rest_url,
        PasswordCredentials(simulator.login, simulator.password),
        listener,
        comet=str(simulator.comet_port),
        read_links=True,
    )
    await session.load()
    try:
        yield session, listener
    finally:
        await session.stop()


def probed(simulator: SaymonSimulator, kind: int = ENTITY_OBJECT) -> list[str]:
    return sorted(key[1] for key in simulator.model.probes.probes if key[0] == kind)


def truth(simulator: SaymonSimulator, entity_id: str, kind: int = ENTITY_OBJECT) -> dict[str, Any]:
    return stat.flatten(simulator.model.last_stat[(kind, entity_id)]["payload"])


def filtered(simulator: SaymonSimulator) -> set[str]:
    [socket] = simulator.sockets()
    return {key for topic, key in socket.filtered_topics if topic == "stat"}


async def test_follow_subscribes_exactly_and_starts_from_the_truth(
    simulator: SaymonSimulator, live: tuple[SaymonLive, Listener]
) -> None:
    session, listener = live
    objects, links = probed(simulator), probed(simulator, ENTITY_LINK)
    wanted = {objects[0]: EntityType.OBJECT, objects[1]: EntityType.OBJECT}
    wanted[links[0]] = EntityType.LINK
    session.follow()
    await session.metrics.follow(wanted)
    await wait_for(lambda: session.connected and listener.resynced >= 1, what="connected")
    await wait_for(lambda: len(filtered(simulator)) == 3, what="subscribed")
    assert filtered(simulator) == {f"1:{objects[0]}", f"1:{objects[1]}", f"2:{links[0]}"}
    store = session.model.metrics
    for entity_id, kind in ((objects[0], ENTITY_OBJECT), (links[0], ENTITY_LINK)):
        assert store.metrics(entity_id) == truth(simulator, entity_id, kind)
    assert {c.entity_id for c, _ in listener.metrics()} == set(wanted)  # initial values
    assert not any(replayed for _, replayed in listener.metrics())  # values, not missed events

    # Live values of followed objects only; others are not even sent.
    await simulator.run_probes()
    kinds = {objects[0]: ENTITY_OBJECT, objects[1]: ENTITY_OBJECT, links[0]: ENTITY_LINK}
    await wait_for(
        lambda: all(store.metrics(e) == truth(simulator, e, k) for e, k in kinds.items()),
        what="live values",
    )
    assert objects[2] not in store.entities
    assert {c.entity_id for c, _ in listener.metrics()} == set(wanted)

    # Following less unsubscribes and forgets; following more reads the new one at once.
    await session.metrics.follow({objects[1]: EntityType.OBJECT, objects[2]: EntityType.OBJECT})
    await wait_for(lambda: len(filtered(simulator)) == 2, what="unsubscribed")
    assert filtered(simulator) == {f"1:{objects[1]}", f"1:{objects[2]}"}
    assert set(store.entities) == {objects[1], objects[2]}
    assert store.metrics(objects[2]) == truth(simulator, objects[2])
    assert session.metrics.diagnostics()["followed"] == 2


async def test_a_reconnect_fills_what_comet_missed(
    simulator: SaymonSimulator, live: tuple[SaymonLive, Listener]
) -> None:
    session, listener = live
    objects = probed(simulator)[:4]
    session.follow()
    await session.metrics.follow(dict.fromkeys(objects, EntityType.OBJECT))
    await wait_for(lambda: session.connected and listener.resynced >= 1, what="connected")
    await simulator.stop_comet()
    await wait_for(lambda: not session.connected, what="disconnected")
    await simulator.run_probes()  # nobody hears these
    assert all(
        session.model.metrics.metrics(o) != truth(simulator, o) for o in objects
    )  # random values: each probe's new payload differs from the last one
    resyncs = listener.resynced
    await simulator.start_comet()
    await wait_for(lambda: listener.resynced > resyncs, timeout=30, what="resync")
    await wait_for(
        lambda: all(session.model.metrics.metrics(o) == truth(simulator, o) for o in objects),
        what="the gap filled",
    )
    assert len(filtered(simulator)) == 4  # resubscribed by the reconnect itself


async def test_unfollowed_stat_is_ignored_and_search_failures_counted(
    simulator: SaymonSimulator, live: tuple[SaymonLive, Listener]
) -> None:
    session, _ = live
    objects = probed(simulator)
    session.follow()
    await session.metrics.follow({objects[0]: EntityType.OBJECT})
    await wait_for(lambda: session.connected, what="connected")
    await simulator.send_raw(  # a stat nobody asked for (a late one, after unsubscribing)
        "stat",
        {"entityId": objects[1], "entityType": 1, "payload": {"a": 1}},
        everyone=True,
    )
    await wait_for(lambda: session.metrics.stats.ignored == 1, what="ignored")
    simulator.fail_next(1)
    await session.metrics.follow({objects[0]: EntityType.OBJECT, objects[1]: EntityType.OBJECT})
    assert session.metrics.stats.search_failures == 1
    assert objects[1] not in session.model.metrics.entities or not session.model.metrics.metrics(
        objects[1]
    )


async def test_search_is_batched(simulator: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    rest = SaymonRestClient(
        http, simulator.rest_url, PasswordCredentials(simulator.login, simulator.password)
    )
    objects = probed(simulator)
    wanted = [(EntityType.OBJECT, o) for o in objects] + [(EntityType.OBJECT, "unknown")]
    before = simulator.counters.rest_requests["/node/api/stat/search"]
    records = await stat.search(rest, wanted, batch=7)
    requests = simulator.counters.rest_requests["/node/api/stat/search"] - before
    assert requests == -(-len(wanted) // 7)
    assert sorted(r.entity_id for r in records) == objects  # no stat: left out
    assert all(r.metrics == truth(simulator, r.entity_id) for r in records)
    meta = await stat.meta(rest, objects[0])
    assert meta == stat.parse_meta(simulator.model.probes.meta((ENTITY_OBJECT, objects[0])))
    await rest.logout()


async def test_expired_metrics_are_reported(http: aiohttp.ClientSession) -> None:
    async with SaymonSimulator(objects=20, seed=3, stat_period=0.2, stat_expiry=0.1) as sim:
        listener = Listener()
        session = SaymonLive(
            http,
            sim.rest_url,
            PasswordCredentials(sim.login, sim.password),
            listener,
            comet=str(sim.comet_port),
        )
        await session.load()
        try:
            target = probed(sim)[0]
            await sim.run_probes()
            await session.metrics.follow({target: EntityType.OBJECT})
            await wait_for(
                lambda: any(c.expired for c, _ in listener.metrics()), timeout=5, what="expiry"
            )
            assert not session.model.metrics.fresh(target, next(iter(truth(sim, target))))
        finally:
            await session.stop()


@pytest.mark.node
async def test_node_probes_reach_the_store(
    simulator: SaymonSimulator, http: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """SAYMON's socket.io 4.5.0: the filtered subscriptions and per-entity stat, for real."""
    async with NodeCometServer() as node:
        await node.start(sessions=[], session_check_url=f"{simulator.api_url}/users/current")
        listener = Listener()
        session = SaymonLive(
            http,
            simulator.rest_url,
            PasswordCredentials(simulator.login, simulator.password),
            listener,
            comet=node.url,
        )
        await session.load()
        try:
            session.follow()
            await session.metrics.follow({"a": EntityType.OBJECT, "b": EntityType.LINK})
            await wait_for(lambda: session.connected, what="connected")
            await _node_subscribed(node, {"stat:1:a", "stat:2:b"})
            entities = [
                {"type": 1, "id": "a", "kind": "cpu"},
                {"type": 2, "id": "b", "kind": "ping"},
                {"type": 1, "id": "c", "kind": "memory"},
            ]
            await node.start_probes(entities, period_ms=100)
            store = session.model.metrics
            await wait_for(lambda: {"a", "b"} <= set(store.entities), what="node stat")
            await node.stop_probes()
            last = (await node.last_stats())["last"]
            await wait_for(
                lambda: store.metrics("a") == stat.flatten(last["1:a"]["payload"]),
                what="the last stat",
            )
            assert store.metrics("b") == stat.flatten(last["2:b"]["payload"])
            assert "c" not in store.entities
        finally:
            await session.stop()


async def _node_subscribed(node: NodeCometServer, rooms: set[str]) -> None:
    """Wait until the server shows the client in these rooms (Comet acknowledges nothing)."""
    async with asyncio.timeout(5):
        while not rooms <= {room for c in await node.clients() for room in c["topics"]}:
            await asyncio.sleep(0.01)
