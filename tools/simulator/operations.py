"""SAYMON operations and their jobs: run on request, finished later, announced on Comet.

Every switch, server and host gets three operations (seeded ids): two scripts with a run time
(``Ping`` with ``{{args.host}}``/``{{args.count}}`` macros, ``Restart service``) and one MQTT
operation, whose result is immediate. Running one creates a job (``job-added``) and, after the
operation's run time, gives it its result (``job-result-received``), like SAYMON's server does.
:class:`OperationFaults` make SAYMON slow, fail the script, refuse to run it, lose the result, or
send the job events in another shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
import random
import re
from typing import Any, Final

from .catalog import CLASS_HOST, CLASS_SERVER, CLASS_SWITCH, ENTITY_LINK, ENTITY_OBJECT
from .errors import NotFoundError
from .events import Event
from .model import SimulatorModel
from .server_events import payload, values_for

EXECUTE_OPERATIONS: Final = "execute-operations"
TYPE_MQTT: Final = 1
TYPE_SCRIPT: Final = 2
EVENT_JOB_ADDED: Final = "job-added"
EVENT_JOB_RESULT: Final = "job-result-received"
_MACRO: Final = re.compile(r"\{\{\s*args\.([A-Za-z0-9_]+)\s*\}\}")

Publish = Callable[[Sequence[Event]], Awaitable[int]]


class OperationRefusedError(Exception):
    """SAYMON refused to run the operation (answered 500)."""


@dataclass(slots=True)
class OperationFaults:
    """How operations misbehave; :meth:`reset` makes them healthy."""

    delay: float | None = None
    """Seconds every script takes (``None``: its own run time)."""
    fail: bool = False
    """Scripts end with exit code 1 and an error message."""
    refuse: bool = False
    """Execute answers 500 and creates no job."""
    never: bool = False
    """Jobs never get their result."""
    shape: str = "documented"
    """Shape of the job events (see ``server_event_shapes.json``)."""

    def reset(self) -> None:
        """Back to healthy."""
        self.delay = None
        self.fail = self.refuse = self.never = False
        self.shape = "documented"


def _operations(rng: random.Random) -> list[dict[str, Any]]:
    def new_id() -> str:
        return f"{rng.getrandbits(96):024x}"

    return [
        {
            "id": new_id(),
            "name": "Ping",
            "description": "Ping a host from the SAYMON server",
            "type": TYPE_SCRIPT,
            "parameters": {
                "type": "fileSystem",
                "path": "/bin/ping",
                "args": ["-c", "{{args.count}}", "{{args.host}}"],
            },
            "duration": 0.3,
        },
        {
            "id": new_id(),
            "name": "Restart service",
            "description": "Restart the monitored service",
            "type": TYPE_SCRIPT,
            "parameters": {"type": "scriptText", "path": "systemctl restart app"},
            "duration": 0.5,
        },
        {
            "id": new_id(),
            "name": "Send MQTT",
            "description": "Publish a test message",
            "type": TYPE_MQTT,
            "parameters": {"topic": "saymon/test", "message": "Ping from {{id}}"},
            "duration": 0.0,
        },
    ]


def _visible(operation: dict[str, Any]) -> dict[str, Any]:
    """The operation as the API shows it (the run time is the simulator's own)."""
    return {key: value for key, value in operation.items() if key != "duration"}


class OperationsBook:
    """The operations of objects and links, the jobs they ran, and their faults."""

    def __init__(self, model: SimulatorModel, publish: Publish, seed: int) -> None:
        """Give every switch, server and host (and every link) its operations."""
        self._model = model
        self._publish = publish
        self._rng = random.Random(f"{seed}:operations")
        self._defined: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.faults = OperationFaults()
        self.executed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        for obj in model.objects.values():
            if obj.class_id in (CLASS_SWITCH, CLASS_SERVER, CLASS_HOST):
                operations = _operations(self._rng)
                self._defined[(ENTITY_OBJECT, obj.id)] = operations
                obj.operations = [_visible(op) for op in operations]
        for link in model.links.values():
            operations = _operations(self._rng)[:1]
            self._defined[(ENTITY_LINK, link.id)] = operations
            link.operations = [_visible(op) for op in operations]

    def operations_of(self, entity_type: int, entity_id: str) -> list[dict[str, Any]]:
        """The operations of an object or link (as defined, run time included)."""
        return self._defined.get((entity_type, entity_id), [])

    def _owner(self, entity_type: int, entity_id: str) -> str:
        if entity_type == ENTITY_LINK:
            self._model.get_link(entity_id)
            return entity_id
        return self._model.get_object(entity_id).id

    async def execute(
        self,
        entity_type: int,
        entity_id: str,
        operation_id: str,
        arguments: dict[str, Any],
        user_id: str,
    ) -> str:
        """Run an operation; returns its job id. The result follows after its run time."""
        owner = self._owner(entity_type, entity_id)
        operation = next(
            (op for op in self.operations_of(entity_type, owner) if op["id"] == operation_id),
            None,
        )
        if operation is None:
            raise NotFoundError(f"Operation {operation_id} not found.")
        if self.faults.refuse:
            raise OperationRefusedError("Operation execution failed: script exited abnormally.")
        self.executed += 1
        job: dict[str, Any] = {
            "id": f"{self._rng.getrandbits(96):024x}",
            "operation_id": operation_id,
            "owner_id": owner,
            "owner_type": entity_type,
            "user_id": user_id,
            "process_meta": None,
            "timestamp": self._model.clock(),
            "description": {},
            "results": [],
        }
        self.jobs[job["id"]] = job
        added = {key: value for key, value in job.items() if key not in ("description", "results")}
        await self._publish([self._event(EVENT_JOB_ADDED, job, added)])
        task = asyncio.create_task(self._finish(job, operation, arguments))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return str(job["id"])

    async def _finish(
        self, job: dict[str, Any], operation: dict[str, Any], arguments: dict[str, Any]
    ) -> None:
        delay = operation["duration"] if operation["type"] == TYPE_MQTT else self.faults.delay
        await asyncio.sleep(operation["duration"] if delay is None else delay)
        if self.faults.never:
            return
        if operation["type"] == TYPE_MQTT:
            parameters = operation["parameters"]
            job["description"] = {
                "topic": parameters["topic"],
                "message": parameters["message"].replace("{{id}}", job["owner_id"]),
            }
        elif self.faults.fail:
            job["description"] = {"stdout": "error: host unreachable", "exitCode": 1}
        else:
            command = [operation["parameters"]["path"], *operation["parameters"].get("args", [])]
            text = " ".join(
                _MACRO.sub(lambda m: str(arguments.get(m.group(1), "")), part) for part in command
            )
            job["description"] = {"stdout": f"{text}: done", "exitCode": 0}
        job["timestamp"] = self._model.clock()
        await self._publish([self._event(EVENT_JOB_RESULT, job, job)])

    def _event(self, topic: str, job: dict[str, Any], documented: dict[str, Any]) -> Event:
        """A job event in the chosen shape (``documented``: SAYMON's Job model itself)."""
        shape = self.faults.shape
        if shape == "documented":
            body: Any = dict(documented)
        else:
            description = job.get("description") or {}
            body = payload(
                topic,
                shape,
                values_for(
                    self._rng,
                    job["timestamp"],
                    (job["owner_id"], ""),
                    JOB_ID=job["id"],
                    OPERATION_ID=job["operation_id"],
                    USER_ID=job["user_id"],
                    EXIT_CODE=description.get("exitCode", 0),
                    STDOUT=description.get("stdout", ""),
                    TOPIC=description.get("topic", "saymon/test"),
                    MESSAGE=description.get("message", ""),
                ),
            )
        return Event(topic, body, (job["owner_type"], job["owner_id"]))

    def job(self, job_id: str) -> dict[str, Any]:
        """A job or NotFoundError."""
        try:
            return self.jobs[job_id]
        except KeyError:
            raise NotFoundError(f"Job {job_id} not found.") from None

    def jobs_of(self, entity_id: str) -> list[dict[str, Any]]:
        """An object's jobs, oldest first."""
        return [job for job in self.jobs.values() if job["owner_id"] == entity_id]

    async def close(self) -> None:
        """Cancel results still pending (the simulator stops)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
