"""Tests of the SAYMON simulator itself, with a plain aiohttp client and a plain socketio client.

They pin down the wire behaviour other tests rely on: login/cookies/csrf, error bodies, endpoint
shapes, Comet rejection and topic routing, the incident lifecycle and the control API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
import json
from pathlib import Path
import re
import signal
import sys
import time
from typing import Any
from urllib.parse import quote
import uuid

import aiohttp
import pytest
import socketio
from yarl import URL

from tools.simulator import (
    CHANGE_CREATED,
    CHANGE_MODIFIED,
    CHANGE_REMOVED,
    CLASS_HOST,
    ENTITY_LINK,
    ENTITY_OBJECT,
    LEVEL_ALARM,
    LEVEL_CLEARED,
    LEVEL_MAJOR,
    LEVEL_WARNING,
    REJECT_DATA,
    REJECT_MESSAGE,
    STATE_ALARM,
    STATE_DOWN,
    STATE_OVERLOADED,
    STATE_WORKING,
    SaymonSimulator,
    SimulatorModel,
)
from tools.simulator.accounts import Accounts
from tools.simulator.tls import write_self_signed

TOKEN = "TEST-TOKEN"
HEX24 = re.compile(r"^[0-9a-f]{24}$")
REPO_ROOT = Path(__file__).resolve().parents[1]


# --- helpers ---------------------------------------------------------------------------


class Recorder:
    """Collects everything a socketio client receives, with waiting helpers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.connect_errors: list[Any] = []
        self.disconnects: list[Any] = []
        self._changed = asyncio.Event()

    def add(self, name: str, data: Any) -> None:
        self.events.append((name, data))
        self._changed.set()

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def wait_for(self, name: str, count: int = 1, seconds: float = 3.0) -> list[Any]:
        async with asyncio.timeout(seconds):
            while len(self.of(name)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(name)

    async def wait_disconnect(self, seconds: float = 3.0) -> Any:
        async with asyncio.timeout(seconds):
            while not self.disconnects:
                self._changed.clear()
                await self._changed.wait()
        return self.disconnects[-1]


def make_client(**kwargs: Any) -> tuple[socketio.AsyncClient, Recorder]:
    kwargs.setdefault("reconnection", False)
    client = socketio.AsyncClient(**kwargs)
    recorder = Recorder()

    async def on_any(event: str, *args: Any) -> None:
        recorder.add(event, args[0] if len(args) == 1 else list(args))

    async def on_connect_error(data: Any) -> None:
        recorder.connect_errors.append(data)
        recorder.add("connect_error", data)

    async def on_disconnect(reason: Any = None) -> None:
        recorder.disconnects.append(reason)
        recorder.add("disconnect", reason)

    async def on_connect() -> None:
        recorder.add("connect", None)

    client.on("*", on_any)
    client.on("connect_error", on_connect_error)
    client.on("disconnect", on_disconnect)
    client.on("connect", on_connect)
    return client, recorder


def comet_url(sim: SaymonSimulator, session_id: str) -> str:
    return f"{sim.comet_url}?sessionId={quote(session_id)}"


@contextlib.asynccontextmanager
async def comet(
    sim: SaymonSimulator, session_id: str, *topics: str, **kwargs: Any
) -> AsyncIterator[tuple[socketio.AsyncClient, Recorder]]:
    """Connect a client and subscribe it to `topics` (confirmed server-side)."""
    client, recorder = make_client(**kwargs)
    try:
        await client.connect(comet_url(sim, session_id), transports=["websocket"])
        await subscribe(sim, client, *topics)
        yield client, recorder
    finally:
        await client.shutdown()


async def subscribe(sim: SaymonSimulator, client: socketio.AsyncClient, *topics: str) -> None:
    for topic in topics:
        await client.emit("add-topics", topic)
    await wait_topics(sim, client, lambda have: set(topics) <= have)


async def wait_topics(
    sim: SaymonSimulator, client: socketio.AsyncClient, check: Callable[[set[str]], bool]
) -> None:
    sid = client.get_sid()
    async with asyncio.timeout(3):
        while not any(info.sid == sid and check(info.topics) for info in sim.sockets()):
            await asyncio.sleep(0.005)


async def login(http: aiohttp.ClientSession, sim: SaymonSimulator, **body: Any) -> str:
    payload = body or {"login": sim.login, "password": sim.password}
    async with http.post(f"{sim.api_url}/users/session", json=payload) as resp:
        assert resp.status == 200, await resp.text()
        session_id = await resp.json()
    assert isinstance(session_id, str)
    return session_id


def csrf_header(http: aiohttp.ClientSession, sim: SaymonSimulator) -> dict[str, str]:
    cookie = http.cookie_jar.filter_cookies(URL(sim.rest_url))["csrf"]
    return {"x-csrf-token": cookie.value}


async def get_json(http: aiohttp.ClientSession, url: str, status: int = 200, **kw: Any) -> Any:
    async with http.get(url, **kw) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


def error_message(body: dict[str, Any]) -> str:
    """Return the inner message of a 401 body (whose message is itself JSON)."""
    nested = json.loads(body["message"])
    assert nested["errorCode"] == 3
    return str(nested["message"])


def working_object(sim: SaymonSimulator, skip: int = 0) -> str:
    candidates = [
        obj.id
        for obj in sim.model.objects.values()
        if obj.state_id == STATE_WORKING and obj.parent_id
    ]
    return candidates[skip]


@pytest.fixture
async def sim() -> AsyncIterator[SaymonSimulator]:
    async with SaymonSimulator(objects=40, seed=1, api_token=TOKEN) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # CookieJar(unsafe=True): aiohttp ignores cookies from IP-address hosts otherwise.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


# --- model -----------------------------------------------------------------------------


def test_model_is_seeded_and_consistent() -> None:
    def dump(model: SimulatorModel) -> Any:
        return (
            [obj.to_json() for obj in model.objects.values()],
            [link.to_json() for link in model.links.values()],
            [inc.to_json() for inc in model.incidents.active.values()],
        )

    clock = lambda: 1_700_000_000_000  # noqa: E731
    first = SimulatorModel(objects=300, seed=7, clock=clock)
    assert dump(first) == dump(SimulatorModel(objects=300, seed=7, clock=clock))
    assert dump(first) != dump(SimulatorModel(objects=300, seed=8, clock=clock))
    assert len(first.objects) == 300
    root = first.objects[first.root_id]
    assert root.parent_id == []
    for obj in first.objects.values():
        assert HEX24.match(obj.id)
        for child in obj.child_ids:
            assert first.objects[child].parent_id == [obj.id]
    assert first.incidents.active, "a fresh model has open incidents"
    assert sorted(first.states) == [1, 3, 4, 5, 6, 7, 8, 9]

    started = time.perf_counter()
    big = SimulatorModel(objects=10_000, seed=1)
    assert time.perf_counter() - started < 2
    assert len(big.objects) == 10_000


def test_accounts_sessions_expire_by_time() -> None:
    now = [100.0]
    accounts = Accounts(
        login="a", password="p", api_token=None, seed=1, session_ttl=10, clock=lambda: now[0]
    )
    session = accounts.create_session(accounts.admin)
    assert uuid.UUID(session.id).version == 4
    assert accounts.valid(session.id) is session
    now[0] = 110.0
    assert accounts.valid(session.id) is None
    assert accounts.admin.api_token is not None


# --- login, sessions, csrf -------------------------------------------------------------


async def test_login_with_password_returns_quoted_id_and_cookies(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    body = {"login": sim.login, "password": sim.password}
    async with http.post(f"{sim.api_url}/users/session", json=body) as resp:
        assert resp.status == 200
        text = await resp.text()
        cookies = resp.headers.getall("Set-Cookie")
    session_id = json.loads(text)
    assert text == f'"{session_id}"'
    assert uuid.UUID(session_id).version == 4
    sid_cookie = next(c for c in cookies if c.startswith("sid="))
    assert sid_cookie.startswith(f"sid={session_id};")
    assert "HttpOnly" in sid_cookie
    assert "Path=/" in sid_cookie
    assert any(c.startswith("csrf=") and "Path=/" in c for c in cookies)
    assert await get_json(http, f"{sim.api_url}/users/session/verify/{session_id}") is True


async def test_login_with_token_and_errors(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    url = f"{sim.api_url}/users/session"
    await login(http, sim, **{"auth-token": TOKEN})

    async with http.post(url, json={"login": sim.login, "password": "wrong"}) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["code"] == "InvalidCredentials"
    assert error_message(body) == "Invalid login or password."

    async with http.post(url, json={"auth-token": "nope"}) as resp:
        assert resp.status == 401
        body = await resp.json()
    assert body["code"] == "Unauthorized"
    assert error_message(body) == "Invalid API token."

    async with http.post(
        url, data=b"{bad json", headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["code"] == "InvalidContent"
    assert body["message"].startswith("Invalid JSON")

    sim.revoke_token()
    async with http.post(url, json={"auth-token": TOKEN}) as resp:
        assert resp.status == 401
    sim.set_password("changed")
    async with http.post(url, json={"login": sim.login, "password": "secret"}) as resp:
        assert resp.status == 401
    await login(http, sim, login=sim.login, password="changed")


async def test_session_errors_expiry_and_logout(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    current = f"{sim.api_url}/users/current"
    body = await get_json(http, current, 401)
    assert body["code"] == "Unauthorized"
    assert error_message(body) == "Not logged in."
    body = await get_json(http, current, 401, headers={"X-Session-Id": "unknown"})
    assert error_message(body) == "Session expired."

    session_id = await login(http, sim)
    # Header-only authentication (a fresh client without the cookie jar's cookies).
    async with aiohttp.ClientSession() as bare:
        user = await get_json(bare, current, headers={"X-Session-Id": session_id})
    assert user["login"] == sim.login

    assert await sim.expire_sessions() == (1, 0)
    body = await get_json(http, current, 401)
    assert error_message(body) == "Session expired."
    assert await get_json(http, f"{sim.api_url}/users/session/verify/{session_id}") is False

    second = await login(http, sim)
    async with http.delete(f"{sim.api_url}/users/session", headers=csrf_header(http, sim)) as resp:
        assert resp.status == 200
        assert await resp.read() == b""
    assert await get_json(http, f"{sim.api_url}/users/session/verify/{second}") is False


async def test_csrf_is_required_on_mutations_when_cookie_present(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    incident_id = next(iter(sim.model.incidents.active))
    url = f"{sim.api_url}/incidents/{incident_id}/acknowledge"
    async with http.post(url) as resp:
        assert resp.status == 403
        body = await resp.json()
    assert body["code"] == "Forbidden"
    assert "csrf" in body["message"].lower()
    async with http.post(url, headers={"x-csrf-token": "wrong"}) as resp:
        assert resp.status == 403
    async with http.post(url, headers=csrf_header(http, sim)) as resp:
        assert resp.status == 200
    # GETs never need it; without a csrf cookie (header-only session) there is nothing to match.
    await get_json(http, f"{sim.api_url}/objects")
    async with aiohttp.ClientSession() as bare:
        unack = f"{sim.api_url}/incidents/{incident_id}/unacknowledge"
        async with bare.post(unack, headers={"X-Session-Id": session_id}) as resp:
            assert resp.status == 200
    sim.set_csrf_cookie(False)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await login(other, sim)
        assert "csrf" not in other.cookie_jar.filter_cookies(URL(sim.rest_url))


async def test_users_current_shape(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    await login(http, sim)
    user = await get_json(http, f"{sim.api_url}/users/current")
    assert user == {
        "id": sim.user_id,
        "login": sim.login,
        "group": None,
        "authenticationToken": None,
        "status": 2,
        "eventFilter": [],
        "permissions": user["permissions"],
        "contacts": [],
    }
    assert HEX24.match(user["id"])
    assert "manage-incidents" in user["permissions"]


# --- REST endpoints --------------------------------------------------------------------


async def test_objects_endpoints(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    await login(http, sim)
    objects = await get_json(http, f"{sim.api_url}/objects")
    assert len(objects) == 40
    assert set(objects[0]) == {
        "id",
        "name",
        "parent_id",
        "class_id",
        "state_id",
        "last_state_update",
        "child_ids",
        "tags",
    }
    assert all(
        isinstance(obj["state_id"], int) and isinstance(obj["class_id"], str) for obj in objects
    )
    slim = await get_json(http, f"{sim.api_url}/objects", params={"fields": "name,state_id"})
    assert set(slim[0]) == {"id", "name", "state_id"}

    root = await get_json(http, f"{sim.api_url}/objects/{sim.model.root_id}")
    assert set(root) >= {"properties", "created", "updated", "client_data"}
    assert root["parent_id"] == []
    assert isinstance(json.loads(root["client_data"]), dict)
    children = await get_json(http, f"{sim.api_url}/objects/{sim.model.root_id}/children")
    assert [child["id"] for child in children] == root["child_ids"]

    missing = await get_json(http, f"{sim.api_url}/objects/{'0' * 24}", 404)
    assert missing["code"] == "NotFound"
    assert missing["message"]
    unknown_route = await get_json(http, f"{sim.api_url}/no-such-thing", 404)
    assert set(unknown_route) == {"code", "message"}

    target = working_object(sim)
    url = f"{sim.api_url}/objects/{target}/state"
    async with http.put(
        url, json={"state_id": STATE_OVERLOADED}, headers=csrf_header(http, sim)
    ) as resp:
        assert resp.status == 200
        updated = await resp.json()
    assert updated["id"] == target
    assert updated["state_id"] == STATE_OVERLOADED
    async with http.put(url, json={}, headers=csrf_header(http, sim)) as resp:
        assert resp.status == 400


async def test_catalog_endpoints(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    await login(http, sim)
    links = await get_json(http, f"{sim.api_url}/links")
    assert links
    assert set(links[0]) == {
        "id",
        "class_id",
        "source",
        "target",
        "source_name",
        "target_name",
        "state_id",
        "last_state_update",
    }
    sim.add_state(101, "Maintenance", 5)
    states = await get_json(http, f"{sim.api_url}/states")
    assert [state["id"] for state in states] == [1, 3, 4, 5, 6, 7, 8, 9, 101]
    for state in states:
        assert isinstance(state["priority"], int)
        assert state["ui"]["colors"]["main"].startswith("#")
    classes = await get_json(http, f"{sim.api_url}/classes")
    assert all(set(c) == {"id", "name"} and c["id"].isdigit() for c in classes)
    levels = {
        level["id"]: level for level in await get_json(http, f"{sim.api_url}/incident-levels")
    }
    assert sorted(levels) == [1, 2, 3, 4]
    assert levels[LEVEL_CLEARED]["name"] == "Cleared"
    assert "priority" not in levels[LEVEL_CLEARED]
    assert all("priority" in levels[i] for i in (LEVEL_ALARM, LEVEL_WARNING, LEVEL_MAJOR))


async def test_incidents_paging_sorting_owner(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    await login(http, sim)
    for index in range(4):
        await sim.set_state(working_object(sim, index), STATE_ALARM)
    url = f"{sim.api_url}/incidents"
    everything = await get_json(http, url)
    assert len(everything) == len(sim.model.incidents.active) >= 5
    stamps = [inc["timestamp"] for inc in everything]
    assert stamps == sorted(stamps)
    pages = [
        await get_json(http, url, params={"limit": 2, "skip": skip})
        for skip in range(0, len(everything), 2)
    ]
    assert [inc for page in pages for inc in page] == everything
    newest_first = await get_json(http, url, params={"sortDirection": "desc"})
    assert [inc["timestamp"] for inc in newest_first] == sorted(stamps, reverse=True)

    with_owner = await get_json(http, url, params={"owner": "true", "limit": 1})
    owner = with_owner[0]["owner"]
    assert set(owner) == {"id", "name", "class_id", "parent_id"}
    assert owner["id"] == with_owner[0]["entityId"]

    first = everything[0]
    assert set(first) == {
        "id",
        "entityId",
        "entityType",
        "type",
        "state",
        "lastState",
        "text",
        "timestamp",
        "localTimestamp",
        "acknowledgedBy",
        "acknowledgementTimestamp",
        "count",
        "parentChainId",
        "reason",
    }
    assert await get_json(http, f"{url}/{first['id']}") == first
    assert (await get_json(http, f"{url}/{'f' * 24}", 404))["code"] == "NotFound"
    assert (await get_json(http, url, 400, params={"limit": "x"}))["code"] == "BadRequest"


async def test_incident_actions_emit_events(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    incident_id = sim.model.incidents.sorted_active()[0].id
    base = f"{sim.api_url}/incidents/{incident_id}"
    before = len(sim.model.incidents.active)
    async with comet(sim, session_id, "incidents", "incident-count") as (_, rec):
        async with http.post(f"{base}/acknowledge", headers=csrf_header(http, sim)) as resp:
            assert resp.status == 200
            assert await resp.read() == b""
        (event,) = await rec.wait_for("incidents")
        assert event["changeType"] == CHANGE_MODIFIED
        assert event["payload"]["acknowledgedBy"] == sim.user_id
        assert isinstance(event["payload"]["acknowledgementTimestamp"], int)
        assert (await get_json(http, base))["acknowledgedBy"] == sim.user_id

        async with http.post(f"{base}/unacknowledge", headers=csrf_header(http, sim)) as resp:
            assert resp.status == 200
        event = (await rec.wait_for("incidents", 2))[1]
        assert event["payload"]["acknowledgedBy"] is None
        assert event["payload"]["acknowledgementTimestamp"] is None

        async with http.post(f"{base}/clear", headers=csrf_header(http, sim)) as resp:
            assert resp.status == 200
        # Cleared: a modification; SAYMON still lists it until its incident timeout.
        event = (await rec.wait_for("incidents", 3))[2]
        assert event["changeType"] == CHANGE_MODIFIED
        assert event["payload"]["state"] == LEVEL_CLEARED
        assert (await rec.wait_for("incident-count"))[0] == {"count": before - 1}
        assert rec.of("incident-count") == [{"count": before - 1}]
        cleared = await get_json(http, base)
        assert cleared["state"] == LEVEL_CLEARED
        assert isinstance(cleared["clearTimestamp"], int)
        listed = {inc["id"]: inc for inc in await get_json(http, f"{sim.api_url}/incidents")}
        assert listed[incident_id] == cleared

        # The incident timeout moves it to the history: changeType 3, no longer listed.
        assert await sim.expire_incidents(all_cleared=True) >= 1
        event = (await rec.wait_for("incidents", 4))[3]
        assert event["changeType"] == CHANGE_REMOVED
        assert event["payload"] == cleared
    active_ids = [inc["id"] for inc in await get_json(http, f"{sim.api_url}/incidents")]
    assert incident_id not in active_ids
    history = await get_json(http, f"{sim.api_url}/incident-history", params={"inverse": "true"})
    assert incident_id in {item["id"] for item in history}


async def test_viewer_is_forbidden_to_manage(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    await login(http, sim, login=sim.viewer_login, password=sim.viewer_password)
    incident_id = next(iter(sim.model.incidents.active))
    for action in ("acknowledge", "clear"):
        url = f"{sim.api_url}/incidents/{incident_id}/{action}"
        async with http.post(url, headers=csrf_header(http, sim)) as resp:
            assert resp.status == 403
            assert await resp.json() == {
                "code": "Forbidden",
                "message": "Missing permissions: manage-incidents",
            }
    user = await get_json(http, f"{sim.api_url}/users/current")
    assert "manage-incidents" not in user["permissions"]


async def test_rest_faults_and_counters(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    await login(http, sim)
    url = f"{sim.api_url}/states"
    sim.fail_next(2)
    for _ in range(2):
        body = await get_json(http, url, 500)
        assert body["code"] == "InternalError"
    await get_json(http, url)
    sim.fail_all()
    await get_json(http, url, 500)
    sim.reset_faults()
    sim.garble("states")
    async with http.get(url) as resp:
        assert resp.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await resp.text())
    sim.reset_faults()
    sim.set_rest_delay(0.2)
    started = time.monotonic()
    await get_json(http, url)
    assert time.monotonic() - started >= 0.2
    assert sim.counters.rest_requests["/node/api/states"] == 6
    assert sim.counters.rest_requests["/node/api/users/session"] == 1


async def test_abandoned_slow_request_leaves_nothing_behind(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    sim.set_rest_delay(5)
    with pytest.raises(TimeoutError):
        await http.get(f"{sim.api_url}/states", timeout=aiohttp.ClientTimeout(total=0.2))
    # The fixture's stop() must not leave the server's delayed handler running (verify_cleanup).


# --- Comet -----------------------------------------------------------------------------


async def test_comet_rejects_unknown_and_expired_sessions(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    client, rec = make_client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(comet_url(sim, "not-a-session"), transports=["websocket"])
    await client.shutdown()
    assert rec.connect_errors == [
        {"message": "Invalid sessionId", "data": {"code": 401, "reason": "invalid-session"}}
    ]
    assert rec.connect_errors[0] == {"message": REJECT_MESSAGE, "data": REJECT_DATA}

    session_id = await login(http, sim)
    async with comet(sim, session_id) as (client, _):
        assert client.connected
    await sim.expire_sessions()
    client, rec = make_client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(comet_url(sim, session_id))  # polling then upgrade
    await client.shutdown()
    assert rec.connect_errors[0]["data"]["reason"] == "invalid-session"
    assert sim.counters.comet_rejected == 2
    assert sim.counters.comet_accepted == 1


async def test_comet_accept_delay(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    sim.set_accept_delay(0.3)
    client, _ = make_client()
    started = time.monotonic()
    await client.connect(comet_url(sim, session_id), transports=["websocket"], wait_timeout=3)
    try:
        assert time.monotonic() - started >= 0.3
        assert client.connected
    finally:
        await client.shutdown()


async def test_topics_route_events(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    async with (
        comet(sim, session_id, "state-change") as (client_a, rec_a),
        comet(sim, session_id, "model-changed") as (client_b, rec_b),
    ):
        infos = {info.sid: info for info in sim.sockets()}
        assert infos[client_a.get_sid()].topics == {"state-change"}
        assert infos[client_b.get_sid()].login == sim.login
        await sim.create_object("New host", sim.model.root_id, CLASS_HOST)
        target = working_object(sim)
        await sim.set_state(target, STATE_DOWN)
        assert (await rec_a.wait_for("state-change"))[0] == {
            "id": target,
            "state_id": STATE_DOWN,
            "type": ENTITY_OBJECT,
        }
        await rec_b.wait_for("model-changed")
        assert rec_a.of("model-changed") == []
        assert rec_b.of("state-change") == []

        await client_a.emit("remove-topics", "state-change")
        await wait_topics(sim, client_a, lambda have: not have)
        await subscribe(sim, client_a, "model-changed")
        await sim.set_state(target, STATE_WORKING)
        await sim.rename_object(target, "renamed")
        await rec_a.wait_for("model-changed")
        assert len(rec_a.of("state-change")) == 1


async def test_incident_lifecycle_on_set_state(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    target = working_object(sim)
    start = len(sim.model.incidents.active)
    async with comet(sim, session_id, "state-change", "incidents", "incident-count") as (_, rec):
        await sim.set_state(target, STATE_ALARM)
        (created,) = await rec.wait_for("incidents")
        assert created["changeType"] == CHANGE_CREATED
        incident = created["payload"]
        assert incident["entityId"] == target
        assert incident["entityType"] == ENTITY_OBJECT
        assert incident["state"] == LEVEL_ALARM
        assert "clearTimestamp" not in incident
        assert (await rec.wait_for("incident-count"))[-1] == {"count": start + 1}

        await sim.set_state(target, STATE_OVERLOADED)
        modified = (await rec.wait_for("incidents", 2))[1]
        assert modified["changeType"] == CHANGE_MODIFIED
        assert modified["payload"]["id"] == incident["id"]
        assert modified["payload"]["state"] == LEVEL_WARNING

        await sim.set_state(target, STATE_DOWN)
        assert (await rec.wait_for("incidents", 3))[2]["payload"]["state"] == LEVEL_MAJOR

        sim.set_incident_count_shape("number")
        await sim.set_state(target, STATE_WORKING)
        cleared = (await rec.wait_for("incidents", 4))[3]
        assert cleared["changeType"] == CHANGE_MODIFIED  # moved to the history later
        assert cleared["payload"]["state"] == LEVEL_CLEARED
        assert cleared["payload"]["lastState"] == LEVEL_MAJOR
        assert isinstance(cleared["payload"]["clearTimestamp"], int)
        assert (await rec.wait_for("incident-count", 2))[1] == start
        assert len(rec.of("state-change")) == 4
        assert len(rec.of("incident-count")) == 2  # modifications do not change the count

        link = next(iter(sim.model.links.values()))
        await sim.set_link_state(
            link.id, STATE_ALARM if link.state_id != STATE_ALARM else STATE_WORKING
        )
        assert (await rec.wait_for("state-change", 5))[4]["type"] == ENTITY_LINK
        assert (await rec.wait_for("incidents", 5))[4]["payload"]["entityType"] == ENTITY_LINK
    assert incident["id"] not in sim.model.incidents.active


async def test_incident_parent_filter(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    root = sim.model.objects[sim.model.root_id]
    site_a, site_b = root.child_ids[0], root.child_ids[1]
    inside = next(
        o
        for o in sim.model.objects.values()
        if o.parent_id == [site_a] and o.state_id == STATE_WORKING
    )
    outside = next(
        o
        for o in sim.model.objects.values()
        if o.parent_id == [site_b] and o.state_id == STATE_WORKING
    )
    client, rec = make_client()
    await client.connect(comet_url(sim, session_id), transports=["websocket"])
    try:
        await client.emit("add-topics", ("incidents", json.dumps({"parentFilter": site_a})))
        await wait_topics(sim, client, lambda have: "incidents" in have)
        assert sim.sockets()[0].incident_filter == {"parentFilter": site_a}
        await sim.set_state(outside.id, STATE_ALARM)
        await sim.set_state(inside.id, STATE_ALARM)
        hidden, shown = await rec.wait_for("incidents", 2)
        assert hidden["filtered"] is True
        assert set(hidden["payload"]) == {"id"}
        assert shown["payload"]["entityId"] == inside.id
        assert "filtered" not in shown
    finally:
        await client.shutdown()


async def test_model_changed_events(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    root_id = sim.model.root_id
    async with comet(sim, session_id, "model-changed") as (_, rec):
        new_id = await sim.create_object("Added", root_id, CLASS_HOST)
        site = sim.model.objects[root_id].child_ids[0]
        await sim.rename_object(new_id, "Renamed")
        await sim.move_object(new_id, site)
        await sim.delete_object(new_id)
        events = await rec.wait_for("model-changed", 4)
    user = {"id": sim.user_id, "login": sim.login}
    assert events == [
        {"changeType": CHANGE_CREATED, "id": new_id, "entityType": ENTITY_OBJECT, "user": user},
        {"changeType": CHANGE_MODIFIED, "id": new_id, "entityType": ENTITY_OBJECT, "user": user},
        {"changeType": CHANGE_MODIFIED, "id": new_id, "entityType": ENTITY_OBJECT, "user": user},
        {"changeType": CHANGE_REMOVED, "id": new_id, "entityType": ENTITY_OBJECT, "user": user},
    ]
    assert new_id not in sim.model.objects
    assert new_id not in sim.model.objects[site].child_ids


async def test_stat_filtered_topic(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    watched, other = working_object(sim, 0), working_object(sim, 1)
    client, rec = make_client()
    await client.connect(comet_url(sim, session_id), transports=["websocket"])
    try:
        await client.emit("add-filtered-topic", ("stat", f"1:{watched}"))
        async with asyncio.timeout(3):
            while not sim.sockets() or not sim.sockets()[0].filtered_topics:
                await asyncio.sleep(0.005)
        await sim.emit_stat(other)
        await sim.emit_stat(watched, {"value": 1})
        await sim.emit_stat(watched)
        first, second = await rec.wait_for("stat", 2)
        assert first["entityId"] == watched
        assert first["entityType"] == ENTITY_OBJECT
        assert first["payload"] == {"value": 1}
        assert isinstance(first["timestamp"], int)
        assert second["payload"]["taskType"] == "ping"
        assert second["payload"]["payload"]["packetsReceived"] == 5
    finally:
        await client.shutdown()


async def test_send_raw_reaches_subscribers(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    async with comet(sim, session_id, "incidents") as (_, rec):
        assert await sim.send_raw("incidents", "not an object") == 1
        assert await sim.send_raw("state-change", {"x": 1}) == 0
        assert await sim.send_raw("anything", [1, 2], everyone=True) == 1
        assert (await rec.wait_for("incidents"))[0] == "not an object"
        assert (await rec.wait_for("anything"))[0] == [1, 2]


async def test_storm_counts(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    async with comet(sim, session_id, "state-change", "incidents") as (_, rec):
        result = await sim.storm(200)
        assert result.changes == 200
        assert result.by_event["state-change"] == 200
        assert result.emitted == 200 + result.by_event.get("incidents", 0)
        assert "incident-count" not in result.by_event
        await rec.wait_for("state-change", 200)
        await rec.wait_for("incidents", result.by_event["incidents"])
        paced = await sim.storm(10, rate_per_s=100, kinds=("incident-count",))
        assert paced.elapsed >= 0.08
        assert set(paced.by_event) <= {"incident-count"}
    assert sim.counters.events_published["state-change"] == 200


async def test_drop_connections_and_session_expiry_disconnect(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    async with comet(sim, session_id, "state-change") as (client, rec):
        assert await sim.drop_connections() == 1
        assert await rec.wait_disconnect() == "server disconnect"
        assert sim.sockets() == []
        assert not client.connected

    async with comet(sim, session_id, "state-change") as (client, rec):
        await sim.expire_sessions()
        await asyncio.sleep(0.05)
        assert client.connected, "expiry alone keeps the socket"
        assert await sim.expire_sessions(disconnect=True) == (1, 1)
        await rec.wait_disconnect()
        assert sim.counters.comet_disconnected == 2


async def test_restart_keeps_model_ports_and_sessions(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    target = working_object(sim)
    await sim.set_state(target, STATE_ALARM)
    ports = (sim.rest_port, sim.comet_port)
    client, rec = make_client(reconnection=True, reconnection_delay=0.05, randomization_factor=0)
    await client.connect(comet_url(sim, session_id), transports=["websocket"])
    try:
        await sim.stop_comet()
        await rec.wait_disconnect()
        assert (await get_json(http, f"{sim.api_url}/objects/{target}"))["state_id"] == STATE_ALARM
        await sim.start_comet()
        await rec.wait_for("connect", 2, seconds=5)

        await sim.restart()
        assert (sim.rest_port, sim.comet_port) == ports
        assert (await get_json(http, f"{sim.api_url}/objects/{target}"))["state_id"] == STATE_ALARM
        await rec.wait_for("connect", 3, seconds=5)
        await subscribe(sim, client, "state-change")
        await sim.set_state(target, STATE_WORKING)
        await rec.wait_for("state-change")

        await sim.stop_rest()
        with pytest.raises(aiohttp.ClientConnectionError):
            await get_json(http, f"{sim.api_url}/states")
        assert client.connected
        await sim.start_rest()
        await get_json(http, f"{sim.api_url}/states")
    finally:
        await client.shutdown()


# --- control API, TLS, CLI -------------------------------------------------------------


async def test_control_http_routes(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    control = sim.control_url
    info = await get_json(http, f"{control}/info")
    assert info["api_url"] == sim.api_url
    assert info["comet_url"] == sim.comet_url
    assert info["api_token"] == TOKEN

    target = working_object(sim)
    async with http.post(f"{control}/state", json={"object_id": target, "state_id": 5}) as resp:
        assert resp.status == 200
        assert (await resp.json())["state_id"] == STATE_ALARM
    async with http.post(f"{control}/state", json={"object_id": "nope", "state_id": 5}) as resp:
        assert resp.status == 404
    async with http.post(f"{control}/state", json={"object_id": target}) as resp:
        assert resp.status == 400
    async with http.post(f"{control}/objects", json={"name": "ctl"}) as resp:
        new_id = (await resp.json())["id"]
    assert sim.model.objects[new_id].name == "ctl"
    async with http.post(
        f"{control}/faults", json={"fail_next": 1, "incident_count_shape": "number"}
    ) as resp:
        assert (await resp.json())["fail_next"] == 1
    assert sim.faults.incident_count_shape == "number"
    async with http.post(f"{control}/faults", json={"fail_next": "x"}) as resp:
        assert resp.status == 400
    await get_json(http, f"{sim.api_url}/states", 500)
    async with http.post(f"{control}/storm", json={"count": 5}) as resp:
        assert (await resp.json())["changes"] == 5
    async with http.post(f"{control}/sessions/expire", json={}) as resp:
        assert (await resp.json())["ok"] is True
    assert await get_json(http, f"{control}/sockets") == []
    counters = await get_json(http, f"{control}/counters")
    assert counters["rest_requests"]["/node/api/states"] == 1


async def test_tls_on_both_listeners(tmp_path: Path) -> None:
    certs = write_self_signed(tmp_path)
    async with (
        SaymonSimulator(objects=10, ssl_context=certs.server_context()) as sim,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=certs.client_context()),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        ) as http,
    ):
        assert sim.rest_url.startswith("https://")
        assert sim.comet_url.startswith("https://")
        session_id = await login(http, sim)
        client, rec = make_client(http_session=http)
        await client.connect(comet_url(sim, session_id), transports=["websocket"])
        try:
            await subscribe(sim, client, "state-change")
            await sim.set_state(working_object(sim), STATE_ALARM)
            await rec.wait_for("state-change")
        finally:
            await client.shutdown()


async def test_cli_prints_connection_info_and_stops() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.simulator",
        "--objects",
        "25",
        "--rest-port",
        "0",
        "--comet-port",
        "0",
        "--token",
        "CLI-TOKEN",
        "--tick",
        "0.1",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        banner = ""
        async with asyncio.timeout(15):
            while "Press Ctrl-C" not in banner:
                line = (await proc.stdout.readline()).decode()
                assert line, f"CLI exited early: {banner!r}"
                banner += line
        rest = re.search(r"REST URL:\s+(\S+)", banner)
        comet_match = re.search(r"Comet URL:\s+(\S+)", banner)
        assert rest is not None
        assert comet_match is not None
        assert re.match(r"http://127\.0\.0\.1:[1-9]\d*$", comet_match.group(1))
        assert "Control URL:" in banner
        assert "CLI-TOKEN" in banner
        assert "admin / secret" in banner
        async with aiohttp.ClientSession() as http:
            info = await get_json(http, f"{rest.group(1)}/control/info")
            assert info["objects"] == 25
            assert info["comet_url"] == comet_match.group(1)
            async with http.post(
                f"{rest.group(1)}/node/api/users/session", json={"auth-token": "CLI-TOKEN"}
            ) as resp:
                assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            rest_of_output = (await proc.stdout.read()).decode()
            assert await proc.wait() == 0
        assert "Stopped." in rest_of_output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_delete_subtree_removes_links_and_incidents() -> None:
    model = SimulatorModel(objects=60, seed=2)
    link = next(iter(model.links.values()))
    site = next(
        oid
        for oid in model.objects[model.root_id].child_ids
        if model.is_under((ENTITY_OBJECT, link.source), oid)
    )
    doomed = [oid for oid in model.objects if model.is_under((ENTITY_OBJECT, oid), site)]
    model.set_state(link.source, STATE_ALARM)
    user = {"id": "u", "login": "admin"}
    events = model.delete_object(site, user)
    removed = [e.payload["id"] for e in events if e.name == "model-changed"]
    assert set(doomed) | {link.id} <= set(removed)
    assert link.id not in model.links
    assert not any(model.is_under((ENTITY_OBJECT, oid), site) for oid in model.objects)
    assert all(inc.entity_id not in doomed for inc in model.incidents.active.values())
    assert events[-1].name == "incident-count"


async def test_control_lifecycle_routes(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    session_id = await login(http, sim)
    control = sim.control_url
    async with comet(sim, session_id, "incidents") as (_, rec):
        async with http.post(
            f"{control}/raw", json={"event": "incidents", "payload": {"x": 1}}
        ) as resp:
            assert (await resp.json())["sent"] == 1
        assert (await rec.wait_for("incidents"))[0] == {"x": 1}
        async with http.post(f"{control}/drop-connections") as resp:
            assert (await resp.json())["dropped"] == 1
        await rec.wait_disconnect()
    async with http.post(f"{control}/comet/stop") as resp:
        assert resp.status == 200
    assert not sim.comet.running
    async with http.post(f"{control}/comet/start") as resp:
        assert resp.status == 200
    async with http.post(f"{control}/restart", json={"delay": 0.01}) as resp:
        assert resp.status == 202
    async with asyncio.timeout(5):
        while sim.counters.restarts < 1:
            await asyncio.sleep(0.01)
    assert (await get_json(http, f"{control}/info"))["objects"] == 40
    async with http.post(f"{control}/token/new") as resp:
        token = (await resp.json())["token"]
    await login(http, sim, **{"auth-token": token})


async def test_incident_timeout_moves_cleared_incidents_to_the_history(
    http: aiohttp.ClientSession,
) -> None:
    """SAYMON's lifecycle: cleared (changeType 2, still listed), then history (changeType 3)."""
    async with SaymonSimulator(objects=20, seed=3, incident_timeout=0.4) as sim:
        session_id = await login(http, sim)
        target = working_object(sim)
        async with comet(sim, session_id, "incidents", "incident-count") as (_, rec):
            await sim.set_state(target, STATE_ALARM)
            await sim.set_state(target, STATE_WORKING)
            cleared = (await rec.wait_for("incidents", 2))[1]
            assert cleared["changeType"] == CHANGE_MODIFIED
            incident_id = cleared["payload"]["id"]
            listed = await get_json(http, f"{sim.api_url}/incidents")
            assert incident_id in {i["id"] for i in listed}
            # The timer, not a test call, moves it once the timeout passed.
            moved = (await rec.wait_for("incidents", 3, seconds=5))[2]
            assert moved == {"changeType": CHANGE_REMOVED, "payload": cleared["payload"]}
            listed = await get_json(http, f"{sim.api_url}/incidents")
            assert incident_id not in {i["id"] for i in listed}
            # clear-remove skips the cleared stage: straight to the history.
            await sim.set_state(target, STATE_ALARM)
            opened = (await rec.wait_for("incidents", 4))[3]
            await sim.clear_remove_incident(opened["payload"]["id"])
            gone = (await rec.wait_for("incidents", 5))[4]
            assert gone["changeType"] == CHANGE_REMOVED
            assert gone["payload"]["state"] == LEVEL_CLEARED


async def test_count_of_cleared_incidents_and_latency_after_the_read(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    open_before = len(sim.model.incidents.active)
    target = working_object(sim)
    async with comet(sim, session_id, "incident-count") as (_, rec):
        sim.set_count_cleared(True)
        await sim.set_state(target, STATE_ALARM)
        await sim.set_state(target, STATE_WORKING)  # cleared, still counted while listed
        counts = await rec.wait_for("incident-count", 2)
        assert counts[-1] == {"count": open_before + len(sim.model.incidents.cleared)}
    # The answer is read, then held: it describes the moment of the read, not of the reply.
    sim.faults.rest_delay_after = 0.5
    reply = asyncio.ensure_future(get_json(http, f"{sim.api_url}/objects/{target}"))
    await asyncio.sleep(0.2)
    await sim.set_state(target, STATE_DOWN)
    assert (await reply)["state_id"] == STATE_WORKING
