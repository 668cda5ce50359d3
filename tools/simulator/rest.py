"""SAYMON's REST API under /node/api: sessions, users, objects, links, catalogues, incidents."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from .catalog import ENTITY_LINK, ENTITY_OBJECT
from .entities import Incident
from .faults import REST_PREFIX
from .rest_support import (
    ApiError,
    authenticate,
    core_of,
    current_session,
    json_body,
    json_response,
    query_flag,
    query_int,
    require,
)
from .stats import numeric_paths, parse_time, valid_downsample

OBJECT_DEFAULT_FIELDS: Final = (
    "id",
    "name",
    "parent_id",
    "class_id",
    "state_id",
    "last_state_update",
    "child_ids",
    "tags",
)
LINK_DEFAULT_FIELDS: Final = (
    "id",
    "class_id",
    "source",
    "target",
    "source_name",
    "target_name",
    "state_id",
    "last_state_update",
)
MANAGE_INCIDENTS: Final = "manage-incidents"


def _fields(request: web.Request, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """`fields=a,b` as a tuple with `id` first; `default` when absent (None = everything)."""
    raw = request.query.get("fields", "")
    names = [name.strip() for name in raw.split(",") if name.strip() and name.strip() != "id"]
    if not names:
        return default
    return ("id", *names)


def _project(
    items: Iterable[dict[str, Any]], fields: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    if fields is None:
        return list(items)
    return [{name: item[name] for name in fields if name in item} for item in items]


def _empty() -> web.Response:
    """SAYMON's empty 200 answer (acknowledge, clear, logout)."""
    return web.Response(status=200)


# --- session and user ------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    """POST /users/session: login/password or auth-token -> quoted session id plus cookies."""
    core = core_of(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidContent", "Invalid JSON: expected an object")
    if "auth-token" in body:
        user = core.accounts.by_token(str(body["auth-token"]))
        if user is None:
            raise ApiError.unauthorized("Invalid API token.")
    else:
        user = core.accounts.by_password(str(body.get("login", "")), str(body.get("password", "")))
        if user is None:
            raise ApiError.unauthorized("Invalid login or password.", "InvalidCredentials")
    session = core.accounts.create_session(user)
    response = json_response(session.id)
    response.set_cookie("sid", session.id, path="/", httponly=True)
    if core.faults.csrf_cookie:
        response.set_cookie("csrf", session.csrf, path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    """DELETE /users/session: end the caller's session."""
    session = current_session(request)
    core_of(request).accounts.delete(session.id)
    return _empty()


async def verify_session(request: web.Request) -> web.Response:
    """GET /users/session/verify/:sid -> true / false."""
    valid = core_of(request).accounts.valid(request.match_info["sid"]) is not None
    return json_response(valid)


async def current_user(request: web.Request) -> web.Response:
    """GET /users/current."""
    return json_response(authenticate(request).to_json())


# --- objects and links -----------------------------------------------------------------


async def list_objects(request: web.Request) -> web.Response:
    """GET /objects (default fields, or `fields=`)."""
    authenticate(request)
    objects = core_of(request).model.objects.values()
    fields = _fields(request, OBJECT_DEFAULT_FIELDS)
    return json_response(_project((obj.to_json() for obj in objects), fields))


async def get_object(request: web.Request) -> web.Response:
    """GET /objects/:id (full object, or `fields=`)."""
    authenticate(request)
    obj = core_of(request).model.get_object(request.match_info["id"])
    return json_response(_project([obj.to_json()], _fields(request, None))[0])


async def object_children(request: web.Request) -> web.Response:
    """GET /objects/:id/children (full objects, or `fields=`)."""
    authenticate(request)
    model = core_of(request).model
    parent = model.get_object(request.match_info["id"])
    children = (model.objects[cid].to_json() for cid in parent.child_ids if cid in model.objects)
    return json_response(_project(children, _fields(request, None)))


async def object_stat(request: web.Request) -> web.Response:
    """GET /objects/:id/stat: the last stat emitted for the object ({} if none)."""
    authenticate(request)
    model = core_of(request).model
    obj = model.get_object(request.match_info["id"])
    return json_response(model.last_stat.get((1, obj.id), {}))


def _entity_key(item: Any) -> tuple[int, str] | None:
    """One element of a `stat/search` body: `{"type": "objects"|"links", "id": ...}`."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    kind = item.get("type", "objects")
    if kind in ("links", "link", ENTITY_LINK):
        return (ENTITY_LINK, item["id"])
    if kind in ("objects", "object", ENTITY_OBJECT):
        return (ENTITY_OBJECT, item["id"])
    return None


async def stat_search(request: web.Request) -> web.Response:
    """POST /stat/search `[{"type", "id"}]` -> the stats of those that have one."""
    authenticate(request)
    body = await json_body(request)
    if not isinstance(body, list):
        raise ApiError(400, "BadRequest", "Expected a list of {type, id}.")
    wanted = [key for item in body if (key := _entity_key(item)) is not None]
    return json_response(core_of(request).model.stat_search(wanted))


async def object_stat_meta(request: web.Request) -> web.Response:
    """GET /objects/:id/stat/meta: the metadata of the object's stat ({} without a probe)."""
    authenticate(request)
    model = core_of(request).model
    obj = model.get_object(request.match_info["id"])
    return json_response(model.probes.meta((ENTITY_OBJECT, obj.id)))


async def object_stat_metrics(request: web.Request) -> web.Response:
    """GET /objects/:id/stat/metrics: the metric names of the object's current stat."""
    authenticate(request)
    model = core_of(request).model
    obj = model.get_object(request.match_info["id"])
    payload = model.last_stat.get((ENTITY_OBJECT, obj.id), {}).get("payload", {})
    return json_response(sorted(numeric_paths(payload)))


async def object_history(request: web.Request) -> web.Response:
    """GET /objects/:id/history?metrics=a,b&from=&to=&downsample= (OpenTSDB-like series)."""
    authenticate(request)
    model = core_of(request).model
    obj = model.get_object(request.match_info["id"])
    metrics = [m for m in request.query.get("metrics", "").split(",") if m]
    start = request.query.get("from", "")
    if not metrics or not start:
        raise ApiError(400, "BadRequest", 'Parameters "metrics" and "from" are required.')
    now = model.clock()
    downsample = request.query.get("downsample") or None
    try:
        begin = parse_time(start, now)
        end = parse_time(request.query["to"], now) if request.query.get("to") else now
    except ValueError as err:
        raise ApiError(400, "BadRequest", str(err)) from None
    if downsample is not None and not valid_downsample(downsample):
        raise ApiError(400, "BadRequest", f"Bad downsample {downsample!r}.")
    series = model.probes.history((ENTITY_OBJECT, obj.id), metrics, begin, end, downsample)
    return json_response(series)


async def set_object_state(request: web.Request) -> web.Response:
    """PUT /objects/:id/state {"state_id": n} -> the updated object."""
    user = authenticate(request)
    require(user, "manage-objects", "modify-objects")
    body = await json_body(request)
    raw = body.get("state_id") if isinstance(body, dict) else None
    try:
        state_id = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError(
            400, "BadRequest", 'Mandatory "state_id" parameter is absent/empty.'
        ) from None
    return json_response(await core_of(request).set_state(request.match_info["id"], state_id))


async def list_links(request: web.Request) -> web.Response:
    """GET /links (default fields, or `fields=`)."""
    authenticate(request)
    links = core_of(request).model.links.values()
    return json_response(
        _project((link.to_json() for link in links), _fields(request, LINK_DEFAULT_FIELDS))
    )


async def get_link(request: web.Request) -> web.Response:
    """GET /links/:id."""
    authenticate(request)
    link = core_of(request).model.get_link(request.match_info["id"])
    return json_response(_project([link.to_json()], _fields(request, None))[0])


# --- catalogues ------------------------------------------------------------------------


async def list_states(request: web.Request) -> web.Response:
    """GET /states: built-in plus custom states."""
    authenticate(request)
    return json_response(list(core_of(request).model.states.values()))


async def list_classes(request: web.Request) -> web.Response:
    """GET /classes: `{id, name}` with string ids."""
    authenticate(request)
    return json_response(core_of(request).model.classes)


async def list_tags(request: web.Request) -> web.Response:
    """GET /tags: `{id, name}` (SAYMON documents the Tag model and POST /tags; GET is assumed)."""
    authenticate(request)
    tags = core_of(request).model.tags
    return json_response([{"id": tag_id, "name": name} for tag_id, name in tags.items()])


async def list_incident_levels(request: web.Request) -> web.Response:
    """GET /incident-levels."""
    authenticate(request)
    return json_response(core_of(request).model.incident_levels)


# --- incidents -------------------------------------------------------------------------


def _incidents_json(request: web.Request, incidents: list[Incident]) -> list[dict[str, Any]]:
    skip = query_int(request, "skip", 0) or 0
    limit = query_int(request, "limit", None)
    page = incidents[skip:] if limit is None else incidents[skip : skip + limit]
    with_owner = query_flag(request, "owner")
    model = core_of(request).model
    result = []
    for incident in page:
        data = incident.to_json()
        if with_owner:
            data["owner"] = model.owner_json(incident.entity_type, incident.entity_id)
        result.append(data)
    return result


async def list_incidents(request: web.Request) -> web.Response:
    """GET /incidents: active incidents, sorted (timestamp asc by default), paged, owner opt."""
    authenticate(request)
    direction = request.query.get("sortDirection", "asc").lower()
    field = request.query.get("sortField") or "timestamp"
    descending = direction in {"desc", "-1", "descending"}
    incidents = core_of(request).model.incidents.sorted_active(field, descending=descending)
    return json_response(_incidents_json(request, incidents))


async def incident_history(request: web.Request) -> web.Response:
    """GET /incident-history (`inverse=true`: newest first), paged like /incidents."""
    authenticate(request)
    history = core_of(request).model.incidents.sorted_history(
        newest_first=query_flag(request, "inverse")
    )
    return json_response(_incidents_json(request, history))


async def get_incident(request: web.Request) -> web.Response:
    """GET /incidents/:id (active or in history)."""
    authenticate(request)
    return json_response(core_of(request).model.incidents.get(request.match_info["id"]).to_json())


async def acknowledge(request: web.Request) -> web.Response:
    """POST /incidents/:id/acknowledge."""
    user = authenticate(request)
    require(user, MANAGE_INCIDENTS)
    await core_of(request).acknowledge(request.match_info["id"], user)
    return _empty()


async def unacknowledge(request: web.Request) -> web.Response:
    """POST /incidents/:id/unacknowledge."""
    require(authenticate(request), MANAGE_INCIDENTS)
    await core_of(request).unacknowledge(request.match_info["id"])
    return _empty()


async def clear(request: web.Request) -> web.Response:
    """POST /incidents/:id/clear."""
    require(authenticate(request), MANAGE_INCIDENTS)
    await core_of(request).clear(request.match_info["id"])
    return _empty()


async def clear_remove(request: web.Request) -> web.Response:
    """POST /incidents/:id/clear-remove (straight to the history)."""
    require(authenticate(request), MANAGE_INCIDENTS)
    await core_of(request).clear_remove(request.match_info["id"])
    return _empty()


def rest_routes() -> list[web.RouteDef]:
    """All /node/api routes."""
    p = REST_PREFIX
    return [
        web.post(f"{p}/users/session", login),
        web.delete(f"{p}/users/session", logout),
        web.get(f"{p}/users/session/verify/{{sid}}", verify_session),
        web.get(f"{p}/users/current", current_user),
        web.get(f"{p}/objects", list_objects),
        web.get(f"{p}/objects/{{id}}", get_object),
        web.get(f"{p}/objects/{{id}}/children", object_children),
        web.get(f"{p}/objects/{{id}}/stat", object_stat),
        web.get(f"{p}/objects/{{id}}/stat/meta", object_stat_meta),
        web.get(f"{p}/objects/{{id}}/stat/metrics", object_stat_metrics),
        web.get(f"{p}/objects/{{id}}/history", object_history),
        web.post(f"{p}/stat/search", stat_search),
        web.put(f"{p}/objects/{{id}}/state", set_object_state),
        web.get(f"{p}/links", list_links),
        web.get(f"{p}/links/{{id}}", get_link),
        web.get(f"{p}/states", list_states),
        web.get(f"{p}/classes", list_classes),
        web.get(f"{p}/tags", list_tags),
        web.get(f"{p}/incident-levels", list_incident_levels),
        web.get(f"{p}/incidents", list_incidents),
        web.get(f"{p}/incident-history", incident_history),
        web.get(f"{p}/incidents/{{id}}", get_incident),
        web.post(f"{p}/incidents/{{id}}/acknowledge", acknowledge),
        web.post(f"{p}/incidents/{{id}}/unacknowledge", unacknowledge),
        web.post(f"{p}/incidents/{{id}}/clear", clear),
        web.post(f"{p}/incidents/{{id}}/clear-remove", clear_remove),
    ]
