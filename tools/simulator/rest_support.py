"""REST plumbing shared by the /node/api handlers: SAYMON error bodies, JSON I/O, auth, faults.

SAYMON answers errors as `{"code": ..., "message": ...}`; for 401 the message is itself a JSON
string `{"errorCode":3,"message":...}`. Everything here reproduces that, so handlers only raise.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler
import orjson

from .accounts import Session, User
from .core import SimulatorCore
from .errors import InvalidRequestError, NotFoundError
from .faults import REST_PREFIX

MUTATING_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GARBAGE_BODY: Final = "<html><body>502 Bad Gateway</body></html> {not json"
CORE_KEY: Final = web.AppKey("saymon_core", SimulatorCore)


class ApiError(Exception):
    """An error answered with SAYMON's `{"code", "message"}` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Remember the HTTP status and the body fields."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def unauthorized(cls, message: str, code: str = "Unauthorized") -> ApiError:
        """401 whose message is the JSON string SAYMON nests in it."""
        nested = orjson.dumps({"errorCode": 3, "message": message}).decode()
        return cls(401, code, nested)

    def response(self) -> web.Response:
        """Return the HTTP response for this error."""
        return json_response({"code": self.code, "message": self.message}, status=self.status)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON response (orjson, so a 10,000-object listing stays fast).

    Text that is not valid Unicode (a lone surrogate a hostile test planted) goes out the way
    a JavaScript server writes it, as an escape, through the standard library.
    """
    try:
        body = orjson.dumps(data)
    except TypeError:
        body = json.dumps(data).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def core_of(request: web.Request) -> SimulatorCore:
    """Return the simulator state behind this request."""
    return request.app[CORE_KEY]


async def json_body(request: web.Request) -> Any:
    """Parse the request body, answering 400 InvalidContent like SAYMON on bad JSON."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ApiError(400, "InvalidContent", f"Invalid JSON: {err}") from None


def query_int(request: web.Request, name: str, default: int | None) -> int | None:
    """Read a non-negative integer query parameter, or answer 400 BadRequest."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "BadRequest", f'Parameter "{name}" must be an integer.') from None
    if value < 0:
        raise ApiError(400, "BadRequest", f'Parameter "{name}" must not be negative.')
    return value


def query_flag(request: web.Request, name: str) -> bool:
    """Read a boolean query parameter (`true`/`1`)."""
    return request.query.get(name, "").lower() in {"true", "1", "yes"}


def _basic_user(request: web.Request) -> User | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        login, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        login = password = ""
    user = core_of(request).accounts.by_password(login, password)
    if user is None:
        raise ApiError.unauthorized("Invalid login or password.", "InvalidCredentials")
    return user


def session_id_of(request: web.Request) -> str | None:
    """Return the session id from the `sid` cookie or the `X-Session-Id` header."""
    return request.cookies.get("sid") or request.headers.get("X-Session-Id") or None


def _check_csrf(request: web.Request) -> None:
    csrf = request.cookies.get("csrf")
    if (
        request.method in MUTATING_METHODS
        and csrf is not None
        and request.headers.get("x-csrf-token") != csrf
    ):
        raise ApiError(
            403, "Forbidden", "Invalid CSRF token: x-csrf-token header missing or wrong."
        )


def current_session(request: web.Request) -> Session:
    """Return the caller's valid session, or raise SAYMON's 401 (not logged in / expired)."""
    session_id = session_id_of(request)
    if session_id is None:
        raise ApiError.unauthorized("Not logged in.")
    session = core_of(request).accounts.valid(session_id)
    if session is None:
        raise ApiError.unauthorized("Session expired.")
    _check_csrf(request)
    return session


def authenticate(request: web.Request) -> User:
    """Return the calling user: Basic auth, else the session (with the csrf check)."""
    user = _basic_user(request)
    if user is not None:
        return user
    return current_session(request).user


def require(user: User, *permissions: str) -> None:
    """403 unless the user holds one of `permissions`."""
    if not any(permission in user.permissions for permission in permissions):
        missing = " | ".join(permissions)
        raise ApiError(403, "Forbidden", f"Missing permissions: {missing}")


@web.middleware
async def rest_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count, delay, fail or garble /node/api calls per the fault knobs; map errors to bodies."""
    if not request.path.startswith(REST_PREFIX):
        return await handler(request)
    core = core_of(request)
    core.counters.rest_requests[request.path] += 1
    if core.faults.rest_delay > 0:
        await asyncio.sleep(core.faults.rest_delay)
    if core.faults.take_failure():
        return ApiError(500, "InternalError", "Simulated server failure.").response()
    if request.path in core.faults.garbage_paths:
        return web.Response(text=GARBAGE_BODY, content_type="application/json")
    try:
        response = await handler(request)
    except ApiError as err:
        return err.response()
    except NotFoundError as err:
        return ApiError(404, "NotFound", str(err)).response()
    except InvalidRequestError as err:
        return ApiError(400, "BadRequest", str(err)).response()
    except web.HTTPNotFound:
        return ApiError(404, "ResourceNotFound", f"{request.path} does not exist").response()
    except web.HTTPMethodNotAllowed:
        message = f"{request.method} is not allowed"
        return ApiError(405, "MethodNotAllowed", message).response()
    if core.faults.rest_delay_after > 0:
        # The answer was read from the model already: by the time it arrives, Comet may have
        # announced newer changes (a SAYMON under load answers with a picture already old).
        await asyncio.sleep(core.faults.rest_delay_after)
    return response
