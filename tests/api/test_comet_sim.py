"""The Comet client with the REST client as its session source, against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import ssl

import aiohttp
import pytest

from custom_components.saymon.api.comet import Backoff, CometClient, Subscription
from custom_components.saymon.api.errors import SaymonTLSError
from custom_components.saymon.api.events import (
    IncidentChange,
    IncidentCountEvent,
    IncidentEvent,
    ModelChange,
    ModelChangedEvent,
    StateChangeEvent,
    StatEvent,
)
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.rest import PasswordCredentials, SaymonRestClient
from custom_components.saymon.api.url import comet_endpoint
from tests.util import Recorder, wait_for
from tools.simulator import CLASS_SWITCH, STATE_ALARM, STATE_WORKING, SaymonSimulator
from tools.simulator.tls import write_self_signed

TOPICS = ("incidents", "incident-count", "state-change", "model-changed")


def make_comet(
    http: aiohttp.ClientSession,
    simulator: SaymonSimulator,
    rest: SaymonRestClient,
    **kwargs: object,
) -> tuple[CometClient, Recorder]:
    recorder = Recorder()
    client = CometClient(
        http,
        comet_endpoint(rest.base_url, simulator.comet_port),
        lambda refresh: rest.ensure_session(refresh=refresh),
        subscriptions=[Subscription(t) for t in TOPICS],
        backoff=Backoff(base=0.05, cap=0.5),
        **{**recorder.callbacks(), **kwargs},  # type: ignore[arg-type]
    )
    return client, recorder


@pytest.fixture
async def comet(
    http: aiohttp.ClientSession, simulator: SaymonSimulator, rest: SaymonRestClient
) -> AsyncIterator[tuple[CometClient, Recorder]]:
    client, recorder = make_comet(http, simulator, rest)
    client.start()
    await wait_for(lambda: client.connected, what="connection")
    await simulator.wait_for_sockets(1, topic="model-changed")
    try:
        yield client, recorder
    finally:
        await client.stop()


def working_object(simulator: SaymonSimulator) -> str:
    return next(o.id for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)


async def test_every_event_type(
    comet: tuple[CometClient, Recorder], simulator: SaymonSimulator
) -> None:
    client, recorder = comet
    object_id = working_object(simulator)
    await simulator.set_state(object_id, STATE_ALARM)
    await wait_for(lambda: len(recorder.events) >= 3, what="state change with its incident")
    state, incident, count = recorder.events[:3]
    assert state == StateChangeEvent(object_id, str(STATE_ALARM), EntityType.OBJECT)
    assert isinstance(incident, IncidentEvent)
    assert incident.change is IncidentChange.CREATED
    assert incident.incident is not None
    assert incident.incident.entity_id == object_id
    assert incident.incident.level_id == "1"
    assert isinstance(count, IncidentCountEvent)
    assert count.count == len(simulator.model.incidents.active)

    await simulator.set_state(object_id, STATE_WORKING)
    await wait_for(
        lambda: any(
            isinstance(e, IncidentEvent)
            and e.change is IncidentChange.MODIFIED
            and e.incident is not None
            and not e.incident.is_active
            for e in recorder.events
        ),
        what="incident cleared",
    )
    await simulator.expire_incidents(all_cleared=True)
    await wait_for(
        lambda: any(
            isinstance(e, IncidentEvent) and e.change is IncidentChange.CLOSED
            for e in recorder.events
        ),
        what="incident moved to the history",
    )

    parent = simulator.model.root_id
    new_id = await simulator.create_object("New switch", parent, CLASS_SWITCH)
    await wait_for(
        lambda: (
            ModelChangedEvent(
                ModelChange.CREATED, new_id, EntityType.OBJECT, simulator.user_id, simulator.login
            )
            in recorder.events
        ),
        what="model-changed",
    )

    await client.subscribe(Subscription.stat(EntityType.OBJECT, object_id))
    await wait_for(
        lambda: ("stat", f"1:{object_id}") in simulator.sockets()[0].filtered_topics,
        what="stat subscription",
    )
    await simulator.emit_stat(object_id, {"rtt": 1.5})
    await wait_for(
        lambda: any(isinstance(e, StatEvent) and e.entity_id == object_id for e in recorder.events),
        what="stat",
    )
    assert client.stats.malformed == {}


async def test_resubscribes_after_comet_restart(
    comet: tuple[CometClient, Recorder], simulator: SaymonSimulator
) -> None:
    client, recorder = comet
    await simulator.stop_comet()
    await wait_for(lambda: not client.connected, what="disconnect")
    await simulator.start_comet()
    await wait_for(lambda: recorder.connected == 2, what="reconnect")
    sockets = await simulator.wait_for_sockets(1, topic=TOPICS[-1])
    assert set(TOPICS) <= set(sockets[0].topics)
    await simulator.set_state(working_object(simulator), STATE_ALARM)
    await wait_for(lambda: len(recorder.events) >= 3, what="events after restart")


async def test_server_disconnect_reconnects(
    comet: tuple[CometClient, Recorder], simulator: SaymonSimulator
) -> None:
    client, recorder = comet
    assert await simulator.drop_connections() == 1
    await wait_for(lambda: recorder.connected == 2, what="reconnect")
    assert recorder.disconnects == ["server disconnect"]
    assert client.stats.reconnects == 1


async def test_relogin_after_session_expiry(
    comet: tuple[CometClient, Recorder], simulator: SaymonSimulator, rest: SaymonRestClient
) -> None:
    client, recorder = comet
    assert rest.logins == 1
    await simulator.expire_sessions(disconnect=True)
    await wait_for(lambda: recorder.connected == 2, what="reconnect with a new session")
    assert client.stats.sessions_rejected == 1
    assert rest.logins == 2
    assert recorder.auth_failures == []


async def test_changed_credentials_stop_reconnecting(
    comet: tuple[CometClient, Recorder], simulator: SaymonSimulator, rest: SaymonRestClient
) -> None:
    client, recorder = comet
    simulator.set_password("rotated")
    await simulator.expire_sessions(disconnect=True)
    await wait_for(lambda: recorder.auth_failures != [], what="auth failure")
    assert not client.connected
    logins = rest.logins
    await asyncio.sleep(0.5)  # several backoff periods: nothing keeps hammering the server
    assert rest.logins == logins
    assert not client.connected


async def test_malformed_payloads_are_survived(
    comet: tuple[CometClient, Recorder], simulator: SaymonSimulator
) -> None:
    client, recorder = comet
    await simulator.send_raw("state-change", {"state_id": 5})
    await simulator.send_raw("incidents", {"changeType": 1, "payload": "nonsense"})
    await simulator.send_raw("incident-count", {"weird": True})
    await simulator.send_raw("model-changed", None)
    await simulator.set_state(working_object(simulator), STATE_ALARM)
    await wait_for(lambda: len(recorder.events) >= 3, what="good events after bad ones")
    assert client.stats.malformed == {
        "state-change": 1,
        "incidents": 1,
        "incident-count": 1,
        "model-changed": 1,
    }
    assert client.connected


@pytest.fixture
async def tls_simulator(tmp_path: Path) -> AsyncIterator[tuple[SaymonSimulator, ssl.SSLContext]]:
    files = write_self_signed(tmp_path)
    async with SaymonSimulator(objects=10, ssl_context=files.server_context()) as sim:
        yield sim, files.client_context()


async def test_tls_self_signed(
    http: aiohttp.ClientSession, tls_simulator: tuple[SaymonSimulator, ssl.SSLContext]
) -> None:
    simulator, trusted = tls_simulator
    assert simulator.rest_url.startswith("https://")
    credentials = PasswordCredentials(simulator.login, simulator.password)

    strict = SaymonRestClient(http, simulator.rest_url, credentials)
    with pytest.raises(SaymonTLSError):
        await strict.login()

    rest = SaymonRestClient(http, simulator.rest_url, credentials, ssl_context=trusted)
    assert (await rest.current_user()).login == simulator.login

    comet, _ = make_comet(http, simulator, rest)
    with pytest.raises(SaymonTLSError) as err:
        await comet.check()
    assert str(simulator.comet_port) in str(err.value)

    for ssl_option in (trusted, False):
        ok, _ = make_comet(http, simulator, rest, ssl_context=ssl_option)
        await ok.check()

    unverified = SaymonRestClient(http, simulator.rest_url, credentials, ssl_context=False)
    assert (await unverified.current_user()).login == simulator.login
