"""The REST client against the simulator over real sockets: every endpoint and error class."""

from __future__ import annotations

import asyncio
from collections import Counter
import contextlib
import dataclasses
import logging
import socket

import aiohttp
import pytest

from custom_components.saymon.api.errors import (
    SaymonConnectionError,
    SaymonInvalidCredentialsError,
    SaymonNotFoundError,
    SaymonPermissionError,
    SaymonPlainHTTPError,
    SaymonProtocolError,
    SaymonResponseError,
    SaymonSessionExpiredError,
    SaymonTimeoutError,
)
from custom_components.saymon.api.models import EntityType, SaymonState
from custom_components.saymon.api.rest import (
    PasswordCredentials,
    SaymonRestClient,
    TokenCredentials,
    _parse_list,
)
from tools.simulator import (
    STATE_ALARM,
    STATE_WORKING,
    VIEWER_LOGIN,
    VIEWER_PASSWORD,
    SaymonSimulator,
)

from .conftest import API_TOKEN


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_password_login_and_current_user(
    rest: SaymonRestClient, simulator: SaymonSimulator
) -> None:
    sid = await rest.login()
    assert sid
    assert rest.session_id == sid
    assert '"' not in sid  # the quoted JSON body is decoded
    user = await rest.current_user()
    assert (user.id, user.login) == (simulator.user_id, simulator.login)
    assert user.permissions
    assert await rest.verify_session()


async def test_token_login(http: aiohttp.ClientSession, simulator: SaymonSimulator) -> None:
    client = SaymonRestClient(http, simulator.rest_url, TokenCredentials(API_TOKEN))
    assert (await client.current_user()).id == simulator.user_id
    assert client.logins == 1


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (PasswordCredentials("admin", "wrong"), "Invalid login or password."),
        (PasswordCredentials("nobody", "secret"), "Invalid login or password."),
        (TokenCredentials("not-the-token"), "Invalid API token."),
    ],
)
async def test_wrong_credentials(
    http: aiohttp.ClientSession,
    simulator: SaymonSimulator,
    credentials: PasswordCredentials | TokenCredentials,
    message: str,
) -> None:
    client = SaymonRestClient(http, simulator.rest_url, credentials)
    with pytest.raises(SaymonInvalidCredentialsError) as err:
        await client.current_user()
    assert str(err.value) == message  # SAYMON's nested JSON message, unwrapped


def test_credentials_repr_hides_secrets() -> None:
    assert "hunter2" not in repr(PasswordCredentials("admin", "hunter2"))
    assert "tok-secret" not in repr(TokenCredentials("tok-secret"))


async def test_objects_and_fields(rest: SaymonRestClient, simulator: SaymonSimulator) -> None:
    objects = await rest.objects()
    assert {o.id for o in objects} == set(simulator.model.objects)
    root = next(o for o in objects if o.id == simulator.model.root_id)
    assert root.parent_ids == ()
    child = next(o for o in objects if o.parent_ids == (root.id,))
    sim_child = simulator.model.objects[child.id]
    assert (child.name, child.class_id, child.state_id) == (
        sim_child.name,
        sim_child.class_id,
        str(sim_child.state_id),
    )
    assert child.id in root.child_ids
    names_only = await rest.objects(fields=["name"])
    assert all(o.class_id is None and o.name for o in names_only)
    one = await rest.object(child.id)
    assert one.id == child.id
    assert one.last_state_update == sim_child.last_state_update


async def test_links_states_classes_levels(
    rest: SaymonRestClient, simulator: SaymonSimulator
) -> None:
    links = await rest.links()
    assert {link.id for link in links} == set(simulator.model.links)
    assert all(link.source in simulator.model.objects for link in links)
    states = {s.id: s for s in await rest.states()}
    assert {"1", "3", "4", "5", "6", "7", "8", "9"} <= set(states)
    assert states["5"].name == "Alarm"
    assert states["5"].color
    classes = await rest.classes()
    assert {c.id for c in classes} >= {o.class_id for o in simulator.model.objects.values()}
    levels = {level.id: level.name for level in await rest.incident_levels()}
    assert levels == {"1": "Alarm", "2": "Warning", "3": "Cleared", "4": "Major"}


async def test_incidents_paged(rest: SaymonRestClient, simulator: SaymonSimulator) -> None:
    active = await rest.incidents()
    assert active, "the seeded model starts with open incidents"
    paged = await rest.incidents(page_size=2)
    assert [i.id for i in paged] == [i.id for i in active]
    assert all(i.is_active for i in active)
    first = active[0]
    assert first.owner_name  # owner=true adds the object's name
    assert (await rest.incident(first.id)).id == first.id


async def test_incident_actions(rest: SaymonRestClient, simulator: SaymonSimulator) -> None:
    obj = next(o for o in simulator.model.objects.values() if o.state_id == STATE_WORKING)
    await simulator.set_state(obj.id, STATE_ALARM)
    incident = next(i for i in await rest.incidents() if i.entity_id == obj.id)
    assert incident.level_id == "1"
    assert incident.entity_type is EntityType.OBJECT
    await rest.acknowledge_incident(incident.id)
    assert (await rest.incident(incident.id)).acknowledged_by == simulator.user_id
    await rest.unacknowledge_incident(incident.id)
    assert (await rest.incident(incident.id)).acknowledged_by is None
    await rest.clear_incident(incident.id)
    # Cleared: still listed (with its clear time) until SAYMON's incident timeout.
    listed = {i.id: i for i in await rest.incidents()}
    assert not listed[incident.id].is_active
    assert not (await rest.incident(incident.id)).is_active
    await simulator.expire_incidents(all_cleared=True)
    assert incident.id not in {i.id for i in await rest.incidents()}
    assert incident.id in {i.id for i in await rest.incident_history()}


async def test_not_found(rest: SaymonRestClient) -> None:
    with pytest.raises(SaymonNotFoundError):
        await rest.object("000000000000000000000000")
    with pytest.raises(SaymonNotFoundError):
        await rest.incident("nope/../objects")  # quoted: cannot escape the path


async def test_permission_denied(http: aiohttp.ClientSession, simulator: SaymonSimulator) -> None:
    viewer = SaymonRestClient(
        http, simulator.rest_url, PasswordCredentials(VIEWER_LOGIN, VIEWER_PASSWORD)
    )
    incident = (await viewer.incidents())[0]
    with pytest.raises(SaymonPermissionError):
        await viewer.acknowledge_incident(incident.id)


async def test_expired_session_is_renewed_once(
    rest: SaymonRestClient, simulator: SaymonSimulator
) -> None:
    await rest.login()
    old = rest.session_id
    await simulator.expire_sessions()
    assert not await rest.verify_session()
    # Several calls racing into the expired session share one new login.
    await asyncio.gather(rest.objects(), rest.states(), rest.incidents(), rest.current_user())
    assert rest.logins == 2
    assert rest.session_id != old
    assert await rest.verify_session()


async def test_changed_password_surfaces_as_invalid_credentials(
    rest: SaymonRestClient, simulator: SaymonSimulator
) -> None:
    await rest.login()
    simulator.set_password("changed")
    await simulator.expire_sessions()
    with pytest.raises(SaymonInvalidCredentialsError):
        await rest.objects()


async def test_logout(rest: SaymonRestClient, simulator: SaymonSimulator) -> None:
    await rest.login()
    sid = rest.session_id
    await rest.logout()
    assert rest.session_id is None
    assert not await rest.verify_session()
    await rest.logout()  # nothing to do
    probe = SaymonRestClient(rest._session, simulator.rest_url, PasswordCredentials("x", "y"))
    probe._sid = sid
    assert not await probe.verify_session()


async def test_ensure_session(rest: SaymonRestClient) -> None:
    first = await rest.ensure_session()
    assert await rest.ensure_session() == first
    fresh = await rest.ensure_session(refresh=True)
    assert fresh != first
    assert rest.logins == 2


async def test_csrf_header_is_sent_on_mutations(
    rest: SaymonRestClient, simulator: SaymonSimulator
) -> None:
    """The simulator refuses mutations without x-csrf-token when a csrf cookie was issued."""
    await rest.login()
    assert rest._csrf
    incident = (await rest.incidents())[0]
    await rest.acknowledge_incident(incident.id)
    rest._csrf = None  # as if the header were forgotten, with the old cookie dropped too
    simulator.set_csrf_cookie(False)
    await rest.login()
    await rest.unacknowledge_incident(incident.id)  # servers without csrf need nothing


async def test_server_errors(rest: SaymonRestClient, simulator: SaymonSimulator) -> None:
    await rest.login()
    simulator.fail_next(1)
    with pytest.raises(SaymonResponseError) as err:
        await rest.states()
    assert err.value.status == 500
    assert "500" in str(err.value)
    assert len(await rest.states()) >= 8  # only the next call failed


async def test_garbage_answer_is_a_protocol_error(
    rest: SaymonRestClient, simulator: SaymonSimulator
) -> None:
    await rest.login()
    simulator.garble("/objects")
    with pytest.raises(SaymonProtocolError):
        await rest.objects()


def test_wrong_shape_is_a_protocol_error() -> None:
    with pytest.raises(SaymonProtocolError, match="expected a list"):
        _parse_list({"id": 1}, SaymonState.from_json, "states", Counter())


async def test_one_broken_record_is_skipped_and_counted(
    rest: SaymonRestClient, simulator: SaymonSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 20: an id with control characters (or a lone surrogate) is not an id; the record is
    # skipped, counted and logged once, and the rest of the list is read as usual.
    model = simulator.model
    good = next(iter(model.objects.values()))
    for bad_id in ("ctrl\x01id", "surrogate\ud800id"):
        model.objects[bad_id] = dataclasses.replace(good, id=bad_id, child_ids=[])
    objects = await rest.objects()
    assert {o.id for o in objects} == set(model.objects) - {"ctrl\x01id", "surrogate\ud800id"}
    assert rest.rejected == {"objects": 2}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == [
        "Skipped a SAYMON objects record that cannot be read"
    ]


async def test_timeout(http: aiohttp.ClientSession, simulator: SaymonSimulator) -> None:
    client = SaymonRestClient(
        http,
        simulator.rest_url,
        PasswordCredentials(simulator.login, simulator.password),
        request_timeout=0.3,
    )
    simulator.set_rest_delay(2.0)
    with pytest.raises(SaymonTimeoutError):
        await client.login()
    simulator.set_rest_delay(0)


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    client = SaymonRestClient(
        http, f"http://127.0.0.1:{free_port()}", PasswordCredentials("a", "secret-pw")
    )
    with pytest.raises(SaymonConnectionError) as err:
        await client.login()
    assert "secret-pw" not in str(err.value)
    assert not isinstance(err.value, SaymonSessionExpiredError)


async def test_tags_by_id(rest: SaymonRestClient, simulator: SaymonSimulator) -> None:
    """Objects carry tag ids; GET /tags gives their names."""
    tags = await rest.tags()
    assert tags == simulator.model.tags
    assert all(tag in tags for obj in simulator.model.objects.values() for tag in obj.tags)


async def test_https_against_plain_http_is_told_apart(
    http: aiohttp.ClientSession, simulator: SaymonSimulator
) -> None:
    """A TLS handshake with a plain-HTTP server is not a certificate problem: it says so."""
    https = simulator.rest_url.replace("http://", "https://")
    rest = SaymonRestClient(http, https, PasswordCredentials(simulator.login, simulator.password))
    with pytest.raises(SaymonPlainHTTPError, match="speaks plain HTTP, not HTTPS"):
        await rest.login()


async def test_tls_handshake_failure_without_http_is_a_tls_error(
    http: aiohttp.ClientSession,
) -> None:
    """A server that closes the connection on the ClientHello is not called plain HTTP."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        rest = SaymonRestClient(
            http, f"https://127.0.0.1:{port}", PasswordCredentials("user", "secret")
        )
        with pytest.raises(SaymonConnectionError) as caught:
            await rest.login()
        assert not isinstance(caught.value, SaymonPlainHTTPError)
    finally:
        server.close()
        await server.wait_closed()
