"""SAYMON's operations and jobs REST API: run an operation, read a job.

``POST /objects/:id/operations/:op/execute`` (and the link form) need ``execute-operations``;
the body fills the operation's ``{{args.<name>}}`` macros; the answer is the job id.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from .catalog import ENTITY_LINK, ENTITY_OBJECT
from .faults import REST_PREFIX
from .operations import EXECUTE_OPERATIONS, OperationRefusedError, OperationsBook
from .rest_support import ApiError, authenticate, json_body, json_response, require

OPERATIONS_KEY: Final = web.AppKey("saymon_operations", OperationsBook)


def _book(request: web.Request) -> OperationsBook:
    return request.app[OPERATIONS_KEY]


async def _execute(request: web.Request, entity_type: int) -> web.Response:
    user = authenticate(request)
    require(user, EXECUTE_OPERATIONS)
    body = await json_body(request)
    arguments = body if isinstance(body, dict) else {}
    try:
        job_id = await _book(request).execute(
            entity_type,
            request.match_info["id"],
            request.match_info["op"],
            arguments,
            user.id,
        )
    except OperationRefusedError as err:
        raise ApiError(500, "InternalError", str(err)) from None
    return json_response(job_id)


async def execute_object_operation(request: web.Request) -> web.Response:
    """POST /objects/:id/operations/:op/execute -> the job id."""
    return await _execute(request, ENTITY_OBJECT)


async def execute_link_operation(request: web.Request) -> web.Response:
    """POST /links/:id/operations/:op/execute -> the job id."""
    return await _execute(request, ENTITY_LINK)


async def get_job(request: web.Request) -> web.Response:
    """GET /jobs/:id."""
    authenticate(request)
    return json_response(_book(request).job(request.match_info["id"]))


async def object_jobs(request: web.Request) -> web.Response:
    """GET /objects/:id/jobs."""
    authenticate(request)
    return json_response(_book(request).jobs_of(request.match_info["id"]))


def operations_routes() -> list[web.RouteDef]:
    """The operations and jobs routes."""
    p = REST_PREFIX
    return [
        web.post(f"{p}/objects/{{id}}/operations/{{op}}/execute", execute_object_operation),
        web.post(f"{p}/links/{{id}}/operations/{{op}}/execute", execute_link_operation),
        web.get(f"{p}/jobs/{{id}}", get_job),
        web.get(f"{p}/objects/{{id}}/jobs", object_jobs),
    ]
