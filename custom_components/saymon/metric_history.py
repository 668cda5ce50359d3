"""The ``saymon.get_metric_history`` action: what SAYMON stored for metrics, as a response.

Home Assistant records the metric sensors' own history; SAYMON keeps its own, longer one (and
for metrics that have no enabled sensor). The action reads it from ``GET /objects/:id/history``
for metric sensors (each names its object and metric), or for devices or an object together
with metric names, between two times (a date and time, or SAYMON's relative form such as
``24h-ago``), optionally downsampled (``5m-avg``). SAYMON keeps no history of links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType

from .api import stat
from .api.errors import SaymonError
from .api.models import EntityType
from .const import DOMAIN
from .hub import SaymonHub
from .hub.metric_registry import parse_unique_id
from .schema_lib import vol

SERVICE_GET_METRIC_HISTORY: Final = "get_metric_history"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
ATTR_OBJECT_ID: Final = "object_id"
ATTR_METRICS: Final = "metrics"
ATTR_FROM: Final = "from"
ATTR_TO: Final = "to"
ATTR_DOWNSAMPLE: Final = "downsample"
_DOWNSAMPLE: Final = (
    r"^(\d{1,6}(ms|s|m|h|d|w|n|y)|all)-(avg|min|max|sum|count|last|dev|zimsum|mimmin|mimmax)$"
)
"""OpenTSDB's downsample form, which SAYMON passes on: an interval (or ``all``) and a function."""


def saymon_time(value: Any) -> str:
    """A time SAYMON's history accepts: relative (``24h-ago``) as it is, a date as ms."""
    if isinstance(value, str) and stat.valid_time(value.strip()):
        return value.strip()
    try:
        when = cv.datetime(value)
    except vol.Invalid:
        raise vol.Invalid(f"{value} is not a time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt_util.get_default_time_zone())
    return str(int(when.timestamp() * 1000))


SCHEMA: Final = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_OBJECT_ID): cv.string,
        vol.Optional(ATTR_METRICS): vol.All(cv.ensure_list, [cv.string]),
        vol.Required(ATTR_FROM): saymon_time,
        vol.Optional(ATTR_TO): saymon_time,
        vol.Optional(ATTR_DOWNSAMPLE): vol.All(cv.string, vol.Match(_DOWNSAMPLE)),
    }
)


type HubLookup = Callable[[HomeAssistant, str | None], list[SaymonHub]]
"""The hubs an action addresses (one entry when given, else every loaded one)."""


def _targets(
    hass: HomeAssistant, hubs: list[SaymonHub], data: Mapping[str, Any]
) -> dict[tuple[SaymonHub, str], dict[str, str | None]]:
    """Per (hub, object): metric path → the metric sensor asked for (or ``None``)."""
    targets: dict[tuple[SaymonHub, str], dict[str, str | None]] = {}
    by_entry = {hub.entry.entry_id: hub for hub in hubs}
    registry = er.async_get(hass)
    for entity_id in data.get(ATTR_ENTITY_ID, ()):
        entry = registry.async_get(entity_id)
        hub = by_entry.get(entry.config_entry_id or "") if entry is not None else None
        parsed = parse_unique_id(entry.unique_id, hub.server_key) if entry and hub else None
        if hub is None or parsed is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="metric_not_found",
                translation_placeholders={"entity_id": entity_id},
            )
        if parsed[0] is EntityType.LINK:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="metric_history_link",
                translation_placeholders={"entity_id": entity_id},
            )
        targets.setdefault((hub, parsed[1]), {})[parsed[2]] = entity_id
    metrics = data.get(ATTR_METRICS, ())
    for hub in hubs:
        objects = {o for d in data.get(ATTR_DEVICE_ID, ()) if (o := hub.object_of_device(d))}
        if (object_id := data.get(ATTR_OBJECT_ID)) is not None and (
            object_id in hub.model.objects or len(hubs) == 1
        ):
            objects.add(object_id)
        for object_id in sorted(objects):
            wanted = targets.setdefault((hub, object_id), {})
            for path in metrics:
                wanted.setdefault(path, None)
    targets = {key: paths for key, paths in targets.items() if paths}
    if not targets:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="metric_history_target"
        )
    return targets


async def _get_metric_history(call: ServiceCall, lookup: HubLookup) -> ServiceResponse:
    data = call.data
    hubs = lookup(call.hass, data.get(ATTR_CONFIG_ENTRY_ID))
    series: list[JsonValueType] = []
    for (hub, object_id), paths in _targets(call.hass, hubs, data).items():
        name = hub.model.entity_name(EntityType.OBJECT, object_id) or object_id
        try:
            found = await stat.history(
                hub.rest,
                object_id,
                list(paths),
                data[ATTR_FROM],
                end=data.get(ATTR_TO),
                downsample=data.get(ATTR_DOWNSAMPLE),
            )
        except SaymonError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="metric_history_failed",
                translation_placeholders={"object_name": name, "error": str(err)},
            ) from err
        by_metric = {item.metric: item for item in found}
        for path, entity_id in paths.items():
            points = by_metric[path].points if path in by_metric else []
            series.append(
                {
                    "config_entry_id": hub.entry.entry_id,
                    "object_id": object_id,
                    "object_name": name,
                    "metric": path,
                    "entity_id": entity_id,
                    "points": [{"time": _iso(when), "value": value} for when, value in points],
                }
            )
    return {"series": series}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, dt_util.UTC).isoformat()


def async_setup_metric_history(hass: HomeAssistant, lookup: HubLookup) -> None:
    """Register the action (once, with the others); ``lookup`` finds the addressed hubs."""

    async def handle(call: ServiceCall) -> ServiceResponse:
        return await _get_metric_history(call, lookup)

    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_METRIC_HISTORY,
        handle,
        SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
