"""HTTP control API under /control on the REST port: the Python control API for other processes.

It lets a developer (or a test driving the CLI) change states, break things and inspect the
simulator with curl. Loopback callers only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from .errors import InvalidRequestError, NotFoundError
from .rest_support import ApiError, json_body, json_response

if TYPE_CHECKING:
    from .server import SaymonSimulator

CONTROL_PREFIX: Final = "/control"
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1"})
_FAULT_KEYS: Final = frozenset(
    {
        "rest_delay",
        "rest_delay_after",
        "fail_next",
        "fail_all",
        "garbage_paths",
        "accept_delay",
        "incident_count_shape",
        "csrf_cookie",
    }
)


class _Body:
    """Typed access to a control request's JSON object; wrong or missing values are a 400."""

    def __init__(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", "Expected a JSON object.")
        self.data: dict[str, Any] = data

    def get(self, key: str, kind: type[Any] | tuple[type[Any], ...], default: Any = ...) -> Any:
        value = self.data.get(key, default)
        if value is ...:
            raise ApiError(400, "BadRequest", f'Missing "{key}".')
        if value is not None and not isinstance(value, kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(k.__name__ for k in kinds)
            raise ApiError(400, "BadRequest", f'"{key}" must be {names}.')
        return value


@web.middleware
async def control_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Loopback only; model errors become 404/400 bodies."""
    if not request.path.startswith(CONTROL_PREFIX):
        return await handler(request)
    if request.remote not in _LOOPBACK:
        return ApiError(403, "Forbidden", "Control API is loopback only.").response()
    try:
        return await handler(request)
    except ApiError as err:
        return err.response()
    except NotFoundError as err:
        return ApiError(404, "NotFound", str(err)).response()
    except InvalidRequestError as err:
        return ApiError(400, "BadRequest", str(err)).response()


def control_routes(sim: SaymonSimulator) -> list[web.RouteDef]:
    """Routes bound to one simulator."""

    async def body(request: web.Request) -> _Body:
        return _Body(await json_body(request))

    def ok(**data: Any) -> web.Response:
        return json_response({"ok": True, **data})

    async def info(_: web.Request) -> web.Response:
        return json_response(sim.info())

    async def counters(_: web.Request) -> web.Response:
        return json_response(sim.counters.to_json())

    async def reset_counters(_: web.Request) -> web.Response:
        sim.counters.reset()
        return ok()

    async def sockets(_: web.Request) -> web.Response:
        return json_response([info.to_json() for info in sim.sockets()])

    async def get_faults(_: web.Request) -> web.Response:
        return json_response(sim.faults.to_json())

    async def set_faults(request: web.Request) -> web.Response:
        data = (await body(request)).data
        unknown = set(data) - _FAULT_KEYS
        if unknown:
            raise ApiError(400, "BadRequest", f"Unknown knobs: {sorted(unknown)}")
        sim.configure_faults(**data)
        return json_response(sim.faults.to_json())

    async def reset_faults(_: web.Request) -> web.Response:
        sim.reset_faults()
        return json_response(sim.faults.to_json())

    async def set_state(request: web.Request) -> web.Response:
        b = await body(request)
        return json_response(await sim.set_state(b.get("object_id", str), b.get("state_id", int)))

    async def set_link_state(request: web.Request) -> web.Response:
        b = await body(request)
        return json_response(
            await sim.set_link_state(b.get("link_id", str), b.get("state_id", int))
        )

    async def add_state(request: web.Request) -> web.Response:
        b = await body(request)
        state = sim.add_state(
            b.get("id", int),
            b.get("name", str),
            b.get("priority", int, 0),
            b.get("color", str, "#1189d2"),
        )
        return json_response(state)

    async def create_object(request: web.Request) -> web.Response:
        b = await body(request)
        parent = b.get("parent_id", str, sim.model.root_id)
        object_id = await sim.create_object(
            b.get("name", str), parent, b.get("class_id", str, "15")
        )
        return ok(id=object_id)

    async def rename_object(request: web.Request) -> web.Response:
        await sim.rename_object(request.match_info["id"], (await body(request)).get("name", str))
        return ok()

    async def move_object(request: web.Request) -> web.Response:
        await sim.move_object(request.match_info["id"], (await body(request)).get("parent_id", str))
        return ok()

    async def delete_object(request: web.Request) -> web.Response:
        await sim.delete_object(request.match_info["id"])
        return ok()

    async def emit_stat(request: web.Request) -> web.Response:
        b = await body(request)
        await sim.emit_stat(
            b.get("object_id", str), b.get("payload", dict, None), link=b.get("link", bool, False)
        )
        return ok()

    async def server_event(request: web.Request) -> web.Response:
        b = await body(request)
        values = b.get("values", dict, {})
        sent = await sim.emit_server_event(
            b.get("topic", str),
            b.get("object_id", str, None),
            shape=b.get("shape", str, "documented"),
            count=b.get("count", int, 1),
            **values,
        )
        return ok(sent=len(sent))

    async def operation_faults(request: web.Request) -> web.Response:
        b = await body(request)
        faults = sim.operations.faults
        faults.delay = b.get("delay", (int, float), faults.delay)
        faults.fail = b.get("fail", bool, faults.fail)
        faults.refuse = b.get("refuse", bool, faults.refuse)
        faults.never = b.get("never", bool, faults.never)
        faults.shape = b.get("shape", str, faults.shape)
        return ok()

    async def run_probes(_: web.Request) -> web.Response:
        return ok(sent=await sim.run_probes())

    async def storm(request: web.Request) -> web.Response:
        b = await body(request)
        kinds = b.get("kinds", list, None)
        rate = b.get("rate_per_s", (int, float), None)
        result = await sim.storm(
            b.get("count", int),
            rate,
            tuple(kinds) if kinds is not None else ("state-change", "incidents"),
        )
        return json_response(
            {
                "changes": result.changes,
                "emitted": result.emitted,
                "elapsed": result.elapsed,
                "by_event": result.by_event,
            }
        )

    async def drop_connections(_: web.Request) -> web.Response:
        return ok(dropped=await sim.drop_connections())

    async def stop_comet(_: web.Request) -> web.Response:
        await sim.stop_comet()
        return ok()

    async def start_comet(_: web.Request) -> web.Response:
        await sim.start_comet()
        return ok()

    async def restart(request: web.Request) -> web.Response:
        delay = (await body(request)).get("delay", (int, float), 0.1)
        sim.restart_later(float(delay))
        return json_response({"ok": True, "restarting": True}, status=202)

    async def expire_sessions(request: web.Request) -> web.Response:
        disconnect = (await body(request)).get("disconnect", bool, False)
        expired, dropped = await sim.expire_sessions(disconnect=disconnect)
        return ok(expired=expired, disconnected=dropped)

    async def set_password(request: web.Request) -> web.Response:
        sim.set_password((await body(request)).get("password", str))
        return ok()

    async def revoke_token(_: web.Request) -> web.Response:
        sim.revoke_token()
        return ok()

    async def new_token(_: web.Request) -> web.Response:
        return ok(token=sim.new_token())

    async def send_raw(request: web.Request) -> web.Response:
        b = await body(request)
        sent = await sim.send_raw(
            b.get("event", str), b.data.get("payload"), everyone=b.get("everyone", bool, False)
        )
        return ok(sent=sent)

    async def expire_incidents(request: web.Request) -> web.Response:
        everything = (await body(request)).get("all", bool, False)
        return ok(moved=await sim.expire_incidents(all_cleared=everything))

    async def count_cleared(request: web.Request) -> web.Response:
        sim.set_count_cleared((await body(request)).get("enabled", bool))
        return ok()

    p = CONTROL_PREFIX
    post: list[tuple[str, Callable[[web.Request], Awaitable[web.Response]]]] = [
        ("counters/reset", reset_counters),
        ("faults", set_faults),
        ("faults/reset", reset_faults),
        ("state", set_state),
        ("link-state", set_link_state),
        ("states", add_state),
        ("objects", create_object),
        ("objects/{id}/rename", rename_object),
        ("objects/{id}/move", move_object),
        ("stat", emit_stat),
        ("stat/probes", run_probes),
        ("storm", storm),
        ("server-event", server_event),
        ("operations/faults", operation_faults),
        ("drop-connections", drop_connections),
        ("comet/stop", stop_comet),
        ("comet/start", start_comet),
        ("restart", restart),
        ("sessions/expire", expire_sessions),
        ("password", set_password),
        ("token/revoke", revoke_token),
        ("token/new", new_token),
        ("raw", send_raw),
        ("incidents/expire", expire_incidents),
        ("incidents/count-cleared", count_cleared),
    ]
    return [
        web.get(f"{p}/info", info),
        web.get(f"{p}/counters", counters),
        web.get(f"{p}/sockets", sockets),
        web.get(f"{p}/faults", get_faults),
        web.delete(f"{p}/objects/{{id}}", delete_object),
        *(web.post(f"{p}/{path}", handler) for path, handler in post),
    ]
