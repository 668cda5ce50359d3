"""SAYMON operations run from here, and their jobs followed to a result.

An operation (restart a service, ping a host, send an MQTT message) is attached to an object or
link in SAYMON and runs on the SAYMON server. Running it (``POST .../operations/:op/execute``)
answers with the id of a *job*; the job's result (exit code and output, or the MQTT message
sent) comes later, announced by Comet's ``job-result-received`` when subscribed and readable
with ``GET /jobs/:id`` at any time.

:class:`JobFollower` waits for a result both ways at once, whichever comes first, and makes
sure each result is reported once: a result found over REST is handed on as a
:class:`~.server_events.JobEvent` (``from_rest``), and the Comet event for the same job that may
follow is recognised and dropped.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
import logging
import time
from typing import Any, Final, Self
from urllib.parse import quote

from ._fields import as_mapping, opt_id, opt_int, opt_name, opt_str
from ._json import json_safe
from .errors import SaymonError, SaymonNotFoundError, SaymonProtocolError
from .models import EntityType
from .rest import SaymonRestClient
from .server_events import Job, JobEvent, JobEventKind

_LOGGER = logging.getLogger(__name__)

FOLLOW_SECONDS: Final = 600.0
"""How long a job run from here is followed for its result."""
POLL_DELAYS: Final = (0.25, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Seconds between reads of a followed job (the last one repeats)."""
MAX_FOLLOWED: Final = 100
"""Jobs read over REST at once at most; beyond, a result is only learned from Comet."""
REMEMBERED: Final = 1000
"""Finished jobs remembered, so a result reported once is not reported again."""

type Spawn = Callable[[Coroutine[Any, Any, None], str], None]


class SaymonOperationNotFoundError(SaymonNotFoundError):
    """The object or link has no operation with that id or name."""


class SaymonJobLostError(SaymonError):
    """Following a job ended before it had a result (the session stopped, or SAYMON lost it)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation of an object or link (users with ``execute-operations`` only see these)."""

    id: str
    name: str
    description: str | None = None
    type: int | None = None
    """1: sends an MQTT message; 2: runs a program or script."""

    @classmethod
    def from_json(cls, value: Any) -> Self:
        """Read an Operation model, or a bare operation id."""
        if isinstance(value, str | int) and not isinstance(value, bool):
            operation_id = opt_id(value, "operation")
            if operation_id is None:
                raise SaymonProtocolError("operation: empty id")
            return cls(operation_id, operation_id)
        data = as_mapping(value, "operation")
        operation_id = opt_id(data.get("id", data.get("_id")), "operation.id")
        if operation_id is None:
            raise SaymonProtocolError("operation: missing id")
        return cls(
            id=operation_id,
            name=opt_name(data.get("name"), "operation.name") or operation_id,
            description=opt_str(data.get("description"), "operation.description"),
            type=opt_int(data.get("type"), "operation.type"),
        )


def parse_operations(value: Any) -> list[Operation]:
    """An entity's ``operations`` field; unreadable entries are skipped (logged at debug)."""
    if not isinstance(value, list):
        return []
    operations: list[Operation] = []
    for item in value:
        try:
            operations.append(Operation.from_json(item))
        except SaymonProtocolError as err:
            _LOGGER.debug("Skipped a SAYMON operation that cannot be read: %s", err)
    return operations


def _collection(entity_type: EntityType) -> str:
    return "links" if entity_type is EntityType.LINK else "objects"


def _job_id(value: Any) -> str:
    """The job id in the answer of an execute call: the id itself, or an object carrying it."""
    if isinstance(value, Mapping):
        value = value.get("id", value.get("_id", value.get("jobId", value.get("job_id"))))
    job_id = opt_id(value, "execute")
    if job_id is None:
        raise SaymonProtocolError("execute: SAYMON answered without a job id")
    return job_id


class SaymonOperations:
    """Listing and running operations, reading jobs (REST, through the session's client)."""

    def __init__(self, rest: SaymonRestClient) -> None:
        """Use ``rest``'s session."""
        self._rest = rest

    async def of(self, entity_type: EntityType, entity_id: str) -> list[Operation]:
        """The operations of one object or link."""
        data = await self._rest.call(
            "GET",
            f"{_collection(entity_type)}/{quote(entity_id, safe='')}",
            params={"fields": "id,operations"},
        )
        return parse_operations(as_mapping(data, "entity").get("operations"))

    async def of_all(
        self, entity_type: EntityType = EntityType.OBJECT
    ) -> dict[str, list[Operation]]:
        """The operations of every object (or link) that has some, in one request."""
        data = await self._rest.call(
            "GET", _collection(entity_type), params={"fields": "id,operations"}
        )
        found: dict[str, list[Operation]] = {}
        for item in data if isinstance(data, list) else []:
            if not isinstance(item, Mapping):
                continue
            try:
                entity_id = opt_id(item.get("id"), "entity.id")
            except SaymonProtocolError:
                continue
            operations = parse_operations(item.get("operations"))
            if entity_id is not None and operations:
                found[entity_id] = operations
        return found

    async def find(self, entity_type: EntityType, entity_id: str, wanted: str) -> Operation:
        """The operation with id ``wanted``, or else the one named so (case-insensitively)."""
        operations = await self.of(entity_type, entity_id)
        folded = wanted.casefold()
        for found in (
            [op for op in operations if op.id == wanted],
            [op for op in operations if op.name == wanted],
            [op for op in operations if op.name.casefold() == folded],
        ):
            if len(found) == 1:
                return found[0]
        raise SaymonOperationNotFoundError(f"no operation {wanted!r} on {entity_id}")

    async def execute(
        self,
        entity_type: EntityType,
        entity_id: str,
        operation_id: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        """Run an operation; returns the id of its job (the result comes later).

        ``arguments`` fill the operation's ``{{args.<name>}}`` macros.
        """
        data = await self._rest.call(
            "POST",
            f"{_collection(entity_type)}/{quote(entity_id, safe='')}/operations/"
            f"{quote(operation_id, safe='')}/execute",
            json_body=json_safe(dict(arguments or {})),
        )
        return _job_id(data)

    async def job(self, job_id: str) -> Job:
        """One job, finished or not."""
        return Job.from_json(await self._rest.call("GET", f"jobs/{quote(job_id, safe='')}"))


def _delays() -> Iterator[float]:
    yield from POLL_DELAYS
    while True:
        yield POLL_DELAYS[-1]


class JobFollower:
    """Waits for job results from Comet and REST at once; reports each result once."""

    def __init__(
        self, api: SaymonOperations, report: Callable[[JobEvent], None], spawn: Spawn
    ) -> None:
        """``report`` hands a result found over REST on; ``spawn`` runs the polling tasks."""
        self._api = api
        self._report = report
        self._spawn = spawn
        self._waiting: dict[str, asyncio.Future[Job]] = {}
        self._finished: OrderedDict[str, Job] = OrderedDict()
        self.from_comet = 0
        self.from_rest = 0
        self.duplicates = 0

    def seen(self, event: JobEvent) -> bool:
        """A job event from Comet: whether to report it (a result already reported is not)."""
        job = event.job
        if event.kind is not JobEventKind.FINISHED or not job.finished:
            return True
        if not self._remember(job):
            self.duplicates += 1
            return False
        self.from_comet += 1
        self._resolve(job)
        return True

    def follow(self, job_id: str) -> None:
        """Read the job over REST until it has a result (or :data:`FOLLOW_SECONDS` passed)."""
        if job_id in self._waiting or job_id in self._finished:
            return
        self._waiting[job_id] = asyncio.get_running_loop().create_future()
        self._spawn(self._poll(job_id, read=len(self._waiting) <= MAX_FOLLOWED), "saymon-job")

    async def wait(self, job_id: str, seconds: float) -> Job:
        """The finished job; :class:`TimeoutError` when it has no result within ``seconds``."""
        finished = self._finished.get(job_id)
        if finished is not None:
            return finished
        self.follow(job_id)
        future = self._waiting[job_id]
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.shield(future)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and (task is None or not task.cancelling()):
                raise SaymonJobLostError(f"job {job_id} was not followed to its end") from None
            raise

    @property
    def following(self) -> int:
        """Jobs waiting for their result."""
        return len(self._waiting)

    def _remember(self, job: Job) -> bool:
        if job.id in self._finished:
            return False
        self._finished[job.id] = job
        while len(self._finished) > REMEMBERED:
            self._finished.popitem(last=False)
        return True

    def _resolve(self, job: Job) -> None:
        future = self._waiting.pop(job.id, None)
        if future is not None and not future.done():
            future.set_result(job)

    async def _poll(self, job_id: str, *, read: bool) -> None:
        """Read the job until it has a result; with ``read`` off, only wait for Comet."""
        deadline = time.monotonic() + FOLLOW_SECONDS
        try:
            if not read:
                await asyncio.sleep(FOLLOW_SECONDS)
                return
            for delay in _delays():
                await asyncio.sleep(delay)
                future = self._waiting.get(job_id)
                if future is None or future.done():
                    return  # Comet told first
                try:
                    job = await self._api.job(job_id)
                except SaymonError as err:  # not readable yet, or SAYMON away: try again
                    _LOGGER.debug("Cannot read SAYMON job %s yet: %s", job_id, err)
                    job = None
                if job is not None and job.finished:
                    if self._remember(job):
                        self.from_rest += 1
                        self._report(JobEvent(JobEventKind.FINISHED, job, from_rest=True))
                    self._resolve(job)
                    return
                if time.monotonic() > deadline:
                    _LOGGER.debug("SAYMON job %s has no result in time", job_id)
                    return
        finally:
            future = self._waiting.pop(job_id, None)
            if future is not None and not future.done():
                future.cancel()  # waiters learn it was not followed to its end

    def diagnostics(self) -> dict[str, int]:
        """Counters (no ids)."""
        return {
            "following": self.following,
            "results_from_comet": self.from_comet,
            "results_from_rest": self.from_rest,
            "duplicate_results_dropped": self.duplicates,
        }
