"""Small, direct tests of client pieces the network tests do not reach."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import aiohttp
import pytest

from custom_components.saymon.api.backoff import Backoff
from custom_components.saymon.api.comet import CometClient, _call, _is_session_rejection
from custom_components.saymon.api.errors import (
    SaymonCometError,
    SaymonConnectionError,
    SaymonProtocolError,
)
from custom_components.saymon.api.events import StateChangeEvent
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.redact import REDACTOR
from custom_components.saymon.api.rest import (
    PasswordCredentials,
    SaymonRestClient,
    _error_details,
)
from custom_components.saymon.api.stats import CometStats
from custom_components.saymon.api.subscription import Subscription
from custom_components.saymon.api.url import CometEndpoint
from tests.util import Recorder, wait_for
from tools.simulator import SaymonSimulator


def test_subscription_arguments() -> None:
    assert Subscription("state-change").add_args() == ("add-topics", "state-change")
    assert Subscription("state-change").remove_args() == ("remove-topics", "state-change")
    stat = Subscription.stat(EntityType.LINK, "abc")
    assert stat.add_args() == ("add-filtered-topic", "stat", "2:abc")
    assert stat.remove_args() == ("remove-filtered-topic", "stat", "2:abc")
    assert Subscription.incidents('{"parentFilter":""}').add_args() == (
        "add-topics",
        "incidents",
        '{"parentFilter":""}',
    )
    assert Subscription.incidents().add_args() == ("add-topics", "incidents")


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base=1, cap=8)
    assert backoff.delay(0) == 0.0
    for failures, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (40, 8)):
        delay = backoff.delay(failures)
        assert ceiling / 2 <= delay <= ceiling


def test_stats_as_dict() -> None:
    stats = CometStats()
    assert stats.as_dict()["last_event_age"] is None
    stats.connects = 3
    stats.last_event = stats.connected_since = 0.0
    data = stats.as_dict()
    assert data["reconnects"] == 2
    assert data["last_event_age"] > 0
    assert data["connected_for"] > 0


@pytest.mark.parametrize(
    ("data", "rejected"),
    [
        ({"message": "Invalid sessionId", "data": {"code": 401}}, True),
        ({"message": "x", "data": {"code": "401"}}, True),
        ({"message": "Not logged in."}, True),
        ({"message": "Unauthorized"}, True),
        ({"message": "Connection error"}, False),
        ({"message": 5}, False),
        ("invalid session", True),
        ("Connection error", False),
        (None, False),
    ],
)
def test_session_rejection_detection(data: object, rejected: bool) -> None:
    assert _is_session_rejection(data) is rejected


def test_callbacks_errors_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("bug in the caller")

    _call(broken)
    _call(None)
    assert "Error in a SAYMON Comet callback" in caplog.text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"code": "X", "message": "plain"}', ("X", "plain")),
        (
            '{"code": "Unauthorized", '
            '"message": "{\\"errorCode\\":3,\\"message\\":\\"Session expired.\\"}"}',
            ("Unauthorized", "Session expired."),
        ),
        ('{"code": "Unauthorized", "message": "{not json"}', ("Unauthorized", "{not json")),
        ("[1]", (None, None)),
        ("<html>bad gateway</html>", (None, "<html>bad gateway</html>")),
        ("", (None, None)),
        ('{"code": 5, "message": null}', (None, None)),
    ],
)
def test_error_details(body: str, expected: tuple[str | None, str | None]) -> None:
    assert _error_details(body) == expected


async def test_worker_survives_a_broken_event_handler(caplog: pytest.LogCaptureFixture) -> None:
    async def session(_: bool) -> str:
        return "s"

    seen: list[object] = []

    def handler(event: object) -> None:
        seen.append(event)
        raise RuntimeError("handler bug")

    async with aiohttp.ClientSession() as http:
        client = CometClient(http, CometEndpoint("http://127.0.0.1:9"), session, on_event=handler)
        client._worker = asyncio.create_task(client._inbound.run())
        client._inbound.enqueue("state-change", {"id": "a", "state_id": 1})
        client._inbound.enqueue("state-change", {"id": "b", "state_id": 1})
        await wait_for(lambda: len(seen) == 2, what="both events")
        assert seen[0] == StateChangeEvent("a", "1", EntityType.OBJECT)
        assert "Error handling a SAYMON 'state-change' event" in caplog.text
        assert not client.connected
        await client.subscribe(Subscription("x"))  # remembered, sent on connect
        await client.subscribe(Subscription("x"))
        assert client.subscriptions == (Subscription("x"),)
        client.reconnect_now()
        await client.stop()
        await client.stop()


async def test_supervisor_retries_when_login_fails() -> None:
    attempts: list[bool] = []

    async def session(refresh: bool) -> str:
        attempts.append(refresh)
        raise SaymonConnectionError("SAYMON is down")

    async with aiohttp.ClientSession() as http:
        recorder = Recorder()
        client = CometClient(
            http,
            CometEndpoint("http://127.0.0.1:9"),
            session,
            backoff=Backoff(base=0.01, cap=0.02),
            **recorder.callbacks(),  # type: ignore[arg-type]
        )
        client.start()
        client.start()  # idempotent
        await wait_for(lambda: len(attempts) >= 3, what="retries")
        await client.stop()
    assert recorder.connected == 0


def test_redacting_filter_hides_live_session_ids() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "url %s", ("http://h/?sessionId=abc%2B1",), None
    )
    redactor = REDACTOR
    redactor.remember(["abc%2B1"])
    redactor.remember(["abc%2B1"])  # a second client on the same session
    try:
        assert redactor.filter(record)
        assert record.getMessage() == "url http://h/?sessionId=***"
        redactor.forget(["abc%2B1"])  # the first client stops: still in use
        assert "abc%2B1" in redactor.secrets
    finally:
        redactor.forget(["abc%2B1"])
    assert "abc%2B1" not in redactor.secrets


async def test_check_forgets_its_session_id(http: aiohttp.ClientSession) -> None:
    """A one-shot check (the config flow's) leaves no secret behind, failed or not."""

    async def session(_: bool) -> str:
        return "forget-me"

    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = CometClient(
        http, CometEndpoint(f"http://127.0.0.1:{port}"), session, connect_timeout=2
    )
    with pytest.raises(SaymonCometError):
        await client.check()
    assert "forget-me" not in REDACTOR.secrets


async def test_login_body_without_session_uses_cookie(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    """Some servers answer an empty body and only set the cookie; others send neither."""
    client = SaymonRestClient(
        http, simulator.rest_url, PasswordCredentials(simulator.login, simulator.password)
    )
    simulator.garble("/users/session")
    with pytest.raises(SaymonProtocolError):
        await client.login()


def test_library_chatter_only_at_debug() -> None:
    logger = logging.getLogger("custom_components.saymon.api.comet.engineio")
    record = logger.makeRecord(
        logger.name, logging.WARNING, __file__, 1, "Server sent close", (), None
    )
    previous = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not REDACTOR.filter(record)
        logger.setLevel(logging.DEBUG)
        assert REDACTOR.filter(record)
    finally:
        logger.setLevel(previous)
