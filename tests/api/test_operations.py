"""SAYMON operations over REST and their jobs followed to a result, against the simulator.

A job's result is learned from Comet's ``job-result-received`` or from ``GET /jobs/:id``,
whichever comes first, and reported to the listener exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.saymon.api.errors import (
    SaymonNotFoundError,
    SaymonPermissionError,
    SaymonResponseError,
)
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.operations import (
    SaymonOperationNotFoundError,
    SaymonOperations,
)
from custom_components.saymon.api.rest import PasswordCredentials, SaymonRestClient
from custom_components.saymon.api.server_events import (
    TOPIC_JOB_ADDED,
    TOPIC_JOB_RESULT,
    JobEvent,
    JobEventKind,
)
from tests.util import wait_for
from tools.simulator import SaymonSimulator

from .test_server_events import Listener, live_session as start


@pytest.fixture
async def session(simulator: SaymonSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def host_with_operations(simulator: SaymonSimulator) -> str:
    return next(o.id for o in simulator.model.objects.values() if o.operations)


def finished(listener: Listener, job_id: str) -> list[JobEvent]:
    return [
        c for c in listener.of(JobEvent) if c.kind is JobEventKind.FINISHED and c.job.id == job_id
    ]


async def test_listing_and_finding_operations(
    simulator: SaymonSimulator, rest: SaymonRestClient
) -> None:
    api = SaymonOperations(rest)
    host = host_with_operations(simulator)
    operations = await api.of(EntityType.OBJECT, host)
    assert [op.name for op in operations] == ["Ping", "Restart service", "Send MQTT"]
    assert operations[0].type == 2
    everything = await api.of_all()
    assert everything[host] == operations
    assert all(simulator.model.objects[o].operations for o in everything)
    assert (await api.find(EntityType.OBJECT, host, operations[1].id)) == operations[1]
    assert (await api.find(EntityType.OBJECT, host, "Ping")) == operations[0]
    assert (await api.find(EntityType.OBJECT, host, "restart SERVICE")) == operations[1]
    with pytest.raises(SaymonOperationNotFoundError):
        await api.find(EntityType.OBJECT, host, "Reboot")
    link = next(iter(simulator.model.links))
    assert [op.name for op in await api.of(EntityType.LINK, link)] == ["Ping"]


async def test_result_from_comet_reported_once(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    live, listener = await start(simulator, session, [TOPIC_JOB_ADDED, TOPIC_JOB_RESULT])
    try:
        host = host_with_operations(simulator)
        ping = (await live.operations.of(EntityType.OBJECT, host))[0]
        job_id = await live.operations.execute(
            EntityType.OBJECT, host, ping.id, {"host": "example.com", "count": 4}
        )
        job = await live.jobs.wait(job_id, 10)
        assert job.exit_code == 0
        assert job.succeeded is True
        # The arguments filled the operation's {{args.<name>}} macros.
        assert job.stdout == "/bin/ping -c 4 example.com: done"
        await wait_for(lambda: len(finished(listener, job_id)) == 1, what="the result event")
        added = [c for c in listener.of(JobEvent) if c.kind is JobEventKind.ADDED]
        assert [c.job.id for c in added] == [job_id]
        # The REST poll that ran meanwhile finds the same result and reports nothing more.
        await wait_for(lambda: live.jobs.following == 0, what="the follower done")
        assert len(finished(listener, job_id)) == 1
        assert not finished(listener, job_id)[0].from_rest
        assert live.jobs.from_comet == 1
    finally:
        await live.stop()


async def test_result_from_rest_when_comet_does_not_tell(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    """Without the job topics the result is read over REST and reported as an event all the same.

    A ``job-result-received`` arriving after that (the topic chosen meanwhile) is a duplicate.
    """
    live, listener = await start(simulator, session)
    try:
        host = host_with_operations(simulator)
        mqtt = (await live.operations.of(EntityType.OBJECT, host))[2]
        job_id = await live.operations.execute(EntityType.OBJECT, host, mqtt.id)
        job = await live.jobs.wait(job_id, 10)
        assert (job.topic, job.message) == ("saymon/test", f"Ping from {host}")
        assert job.succeeded is True
        (event,) = finished(listener, job_id)
        assert event.from_rest
        assert live.jobs.from_rest == 1
        # Waiting again returns the remembered result at once.
        assert await live.jobs.wait(job_id, 0.01) == job
        await live.set_server_topics([TOPIC_JOB_RESULT])
        await wait_for(lambda: TOPIC_JOB_RESULT in simulator.sockets()[0].topics, what="subscribed")
        await simulator.emit_server_event(TOPIC_JOB_RESULT, host, JOB_ID=job_id)
        await wait_for(lambda: live.jobs.duplicates == 1, what="the duplicate dropped")
        assert len(finished(listener, job_id)) == 1
    finally:
        await live.stop()


async def test_failure_refusal_permission_and_timeout(
    simulator: SaymonSimulator, session: aiohttp.ClientSession
) -> None:
    live, _ = await start(simulator, session, [TOPIC_JOB_RESULT])
    try:
        host = host_with_operations(simulator)
        ping, restart, _ = await live.operations.of(EntityType.OBJECT, host)

        simulator.operations.faults.fail = True
        job = await live.jobs.wait(
            await live.operations.execute(EntityType.OBJECT, host, restart.id), 10
        )
        assert (job.exit_code, job.succeeded) == (1, False)
        assert job.stdout == "error: host unreachable"

        simulator.operations.faults.reset()
        simulator.operations.faults.refuse = True
        with pytest.raises(SaymonResponseError) as refused:
            await live.operations.execute(EntityType.OBJECT, host, ping.id)
        assert refused.value.status == 500
        assert "script exited abnormally" in str(refused.value)

        simulator.operations.faults.reset()
        with pytest.raises(SaymonNotFoundError):
            await live.operations.execute(EntityType.OBJECT, host, "000000000000000000000000")

        simulator.operations.faults.never = True
        job_id = await live.operations.execute(EntityType.OBJECT, host, ping.id)
        with pytest.raises(TimeoutError):
            await live.jobs.wait(job_id, 0.5)
        assert live.jobs.following == 1  # still followed (the result may come later)
    finally:
        await live.stop()


async def test_no_permission(simulator: SaymonSimulator, http: aiohttp.ClientSession) -> None:
    viewer = SaymonRestClient(
        http,
        simulator.rest_url,
        PasswordCredentials(simulator.viewer_login, simulator.viewer_password),
    )
    api = SaymonOperations(viewer)
    host = host_with_operations(simulator)
    ping = (await api.of(EntityType.OBJECT, host))[0]
    with pytest.raises(SaymonPermissionError, match="execute-operations"):
        await api.execute(EntityType.OBJECT, host, ping.id)
    assert simulator.operations.executed == 0


async def test_link_operation(simulator: SaymonSimulator, session: aiohttp.ClientSession) -> None:
    live, _listener = await start(simulator, session)
    try:
        link = next(iter(simulator.model.links))
        (ping,) = await live.operations.of(EntityType.LINK, link)
        job_id = await live.operations.execute(EntityType.LINK, link, ping.id, {"host": "h"})
        job = await live.jobs.wait(job_id, 10)
        assert (job.owner_id, job.owner_type) == (link, EntityType.LINK)
        assert job.succeeded
    finally:
        await live.stop()
