"""The simulator's server events and operations, with a plain aiohttp and socketio client.

They pin down what the other tests rely on: every server topic in every shape reaches exactly
its subscribers (also through the control API), operations answer a job id and announce the
job's start and result on Comet after their run time, and the operation faults do what they say.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import time

import aiohttp
import pytest

from tools.simulator import SaymonSimulator
from tools.simulator.server_events import SHAPES, TOPICS

from .test_simulator import comet, csrf_header, get_json, login


@pytest.fixture
async def sim() -> AsyncIterator[SaymonSimulator]:
    async with SaymonSimulator(objects=20, seed=3) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # CookieJar(unsafe=True): aiohttp ignores cookies from IP-address hosts otherwise.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_every_topic_and_shape_reaches_its_subscribers(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    async with (
        comet(sim, session_id, *TOPICS) as (_, subscribed),
        comet(sim, session_id, "state-change") as (_, other),
    ):
        target = next(iter(sim.model.objects))
        for topic in TOPICS:
            for shape in SHAPES:
                await sim.emit_server_event(topic, target, shape=shape)
        # The control API sends them the same way.
        async with http.post(
            f"{sim.control_url}/server-event",
            json={"topic": "snmp-trap", "count": 2, "values": {"TEXT": "via control"}},
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["sent"] == 2
        traps = await subscribed.wait_for("snmp-trap", 5)
        assert traps[-1]["payload"]["text"] == '"via control"'
        for topic in TOPICS:
            await subscribed.wait_for(topic, len(SHAPES))
        assert other.of("snmp-trap") == []


async def test_operations_answer_a_job_and_announce_it(
    sim: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    session_id = await login(http, sim)
    host = next(o for o in sim.model.objects.values() if o.operations)
    objects = await get_json(http, f"{sim.api_url}/objects", params={"fields": "operations"})
    listed = {item["id"]: item.get("operations") for item in objects}
    assert listed[host.id] == host.operations
    assert [op["name"] for op in host.operations] == ["Ping", "Restart service", "Send MQTT"]
    ping = host.operations[0]["id"]
    async with comet(sim, session_id, "job-added", "job-result-received") as (_, recorder):
        started = time.monotonic()
        async with http.post(
            f"{sim.api_url}/objects/{host.id}/operations/{ping}/execute",
            json={"host": "example.com", "count": 2},
            headers=csrf_header(http, sim),
        ) as resp:
            assert resp.status == 200, await resp.text()
            job_id = await resp.json()
        (added,) = await recorder.wait_for("job-added")
        assert added["id"] == job_id
        assert "description" not in added
        job = await get_json(http, f"{sim.api_url}/jobs/{job_id}")
        assert job["description"] == {}  # still running
        (result,) = await recorder.wait_for("job-result-received")
        assert time.monotonic() - started >= 0.3  # Ping's run time
        assert result["description"] == {
            "stdout": "/bin/ping -c 2 example.com: done",
            "exitCode": 0,
        }
        assert (await get_json(http, f"{sim.api_url}/jobs/{job_id}"))["description"] == result[
            "description"
        ]
        assert [j["id"] for j in await get_json(http, f"{sim.api_url}/objects/{host.id}/jobs")] == [
            job_id
        ]


async def test_operation_faults(sim: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    await login(http, sim)
    host = next(o for o in sim.model.objects.values() if o.operations)
    restart = host.operations[1]["id"]
    url = f"{sim.api_url}/objects/{host.id}/operations/{restart}/execute"

    async def control(**faults: object) -> None:
        async with http.post(f"{sim.control_url}/operations/faults", json=faults) as resp:
            assert resp.status == 200

    await control(refuse=True)
    async with http.post(url, headers=csrf_header(http, sim)) as resp:
        assert resp.status == 500
        assert "script exited abnormally" in (await resp.json())["message"]
    await control(refuse=False, fail=True, delay=0.05)
    async with http.post(url, headers=csrf_header(http, sim)) as resp:
        job_id = await resp.json()
    for _ in range(100):
        job = await get_json(http, f"{sim.api_url}/jobs/{job_id}")
        if job["description"]:
            break
        await asyncio.sleep(0.02)
    assert job["description"] == {"stdout": "error: host unreachable", "exitCode": 1}
    async with http.post(
        f"{sim.api_url}/objects/{host.id}/operations/000000000000000000000000/execute",
        headers=csrf_header(http, sim),
    ) as resp:
        assert resp.status == 404
    viewer = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    try:
        await login(viewer, sim, login=sim.viewer_login, password=sim.viewer_password)
        async with viewer.post(url, headers=csrf_header(viewer, sim)) as resp:
            assert resp.status == 403
            assert "execute-operations" in (await resp.json())["message"]
    finally:
        await viewer.close()
