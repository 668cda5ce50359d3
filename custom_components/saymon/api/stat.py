"""SAYMON's monitoring data (``stat``): payloads flattened into metrics, metadata, history.

SAYMON stores one *stat* per object or link: ``{taskType, period, expiryPeriod, timestamp,
agentId, payload}``, where ``payload`` is free-form nested JSON written by an agent probe (ping,
HTTP request, CPU...) or by a user. Metric names are dotted paths into it
(``percentageUsage.combined``, ``headers.Server``); there is no fixed list and no unit. Comet's
``stat`` event carries the stat in its ``payload``; ``POST /stat/search`` answers a list of
them; a "shortened stat" is the payload alone. Everything here reads those shapes tolerantly:
a value that cannot be a metric is skipped and counted, never fatal for the rest.

The REST calls (``stat/search`` in batches, ``stat/meta``, ``history``) take the
:class:`~.rest.SaymonRestClient` of the session. No Home Assistant imports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
import json
import logging
import math
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from ._fields import INT64_MAX, INT64_MIN, as_mapping, clean_text, opt_int, opt_name, req_id
from .errors import SaymonProtocolError
from .events import StatEvent
from .models import EntityType

if TYPE_CHECKING:
    from .rest import SaymonRestClient

type MetricValue = int | float | bool | str
"""A metric's value as the integration keeps it: numbers, booleans, text (lists as JSON text)."""

MAX_METRICS: Final = 1000
"""Metrics read from one payload at most; the rest of a huge payload is skipped (counted)."""
MAX_DEPTH: Final = 8
"""Nesting levels followed into a payload; deeper values are skipped (counted)."""
MAX_PATH: Final = 200
"""Longest metric path kept (it becomes part of an entity's unique id)."""
MAX_TEXT: Final = 255
"""Text values are cut here (Home Assistant's limit for a state)."""
SEARCH_BATCH: Final = 500
"""Entities asked for in one ``POST /stat/search``."""

_HEADER_KEYS: Final = frozenset(
    {"taskType", "period", "expiryPeriod", "agentId", "agentVersion", "agentBuild", "groupKey"}
)
"""Keys that tell a stat model (with its ``payload``) from a shortened stat (metrics only)."""
_LOGGER = logging.getLogger(__name__)
_RELATIVE_TIME: Final = re.compile(r"^\d{1,9}(ms|s|m|h|d|w|n|y)-ago$")


class Problem(StrEnum):
    """Why a value did not become a metric (keys of the counters in the diagnostics)."""

    TOO_MANY = "too_many_metrics"
    TOO_DEEP = "too_deep"
    BAD_PATH = "bad_path"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    NOT_AN_OBJECT = "payload_not_an_object"
    NOT_NUMERIC = "not_numeric"
    TYPE_CHANGED = "type_changed"


class MetaType(StrEnum):
    """``type`` of a field in SAYMON's stat metadata."""

    STRING = "STRING"
    BOOLEAN = "BOOLEAN"
    BYTE_QUANTITY = "BYTE_QUANTITY"
    TIMESTAMP = "TIMESTAMP"
    PERCENTILE = "PERCENTILE"
    ID = "ID"
    BINARY = "BINARY"
    LIST = "LIST"


class ChangeRate(StrEnum):
    """``changeRate`` of a field in SAYMON's stat metadata."""

    ALWAYS = "ALWAYS"
    SOMETIMES = "SOMETIMES"
    NEVER = "NEVER"


@dataclass(frozen=True, slots=True)
class MetricMeta:
    """What SAYMON's metadata says about one metric (either may be missing)."""

    type: MetaType | None = None
    change_rate: ChangeRate | None = None


@dataclass(frozen=True, slots=True)
class StatRecord:
    """One stat of one object or link, its payload flattened into metrics."""

    entity_id: str
    entity_type: EntityType
    timestamp: int | None
    """SAYMON's time of the data (ms)."""
    period: int | None
    """How often the probe runs (ms)."""
    expiry_period: int | None
    """How long after a missed period the data still counts (ms)."""
    task_type: str | None
    metrics: Mapping[str, MetricValue]


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """History of one metric: ``(timestamp ms, value)`` pairs, oldest first."""

    metric: str
    points: list[tuple[int, float]]


def readable_name(path: str) -> str:
    """A name for a metric nobody described.

    ``percentageUsage.combined`` → ``Percentage usage combined``, ``ifHCInOctets`` → ``If HC in
    octets``.
    """
    words: list[str] = []
    for part in re.split(r"[._\-\s]+", path):
        words.extend(
            re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|[A-Z]+|\d+", part) or [part]
        )
    text = " ".join(word if word.isupper() and len(word) > 1 else word.lower() for word in words)
    return (text[:1].upper() + text[1:]) or path


def flatten(
    payload: Mapping[str, Any], problems: Counter[str] | None = None
) -> dict[str, MetricValue]:
    """Read a nested payload as ``{dotted path: value}``.

    Numbers, booleans and text become metrics; a list becomes its JSON text; ``null`` means
    "no value". Values that cannot be metrics (non-finite numbers, integers beyond 64 bits,
    keys that are not printable text, paths beyond :data:`MAX_DEPTH` levels or
    :data:`MAX_PATH` characters, everything after :data:`MAX_METRICS` metrics) are skipped and
    counted in ``problems`` by :class:`Problem`.
    """
    found: dict[str, MetricValue] = {}
    _walk(payload, "", 1, found, problems if problems is not None else Counter())
    return found


def _walk(
    node: Mapping[str, Any],
    prefix: str,
    depth: int,
    found: dict[str, MetricValue],
    counts: Counter[str],
) -> None:
    """Add the metrics below ``node`` (whose path is ``prefix``) to ``found``, in order."""
    for key, value in node.items():
        if not isinstance(key, str) or not key:
            continue
        path = prefix + key
        if len(path) > MAX_PATH or not path.isprintable():
            counts[Problem.BAD_PATH] += 1
            continue
        kind = type(value)
        metric: MetricValue | None
        if kind is float or kind is int:  # the common case first: plain numbers
            metric = value
            if kind is float and not math.isfinite(value):
                counts[Problem.NOT_FINITE] += 1
                continue
            if kind is int and not INT64_MIN <= value <= INT64_MAX:
                counts[Problem.OUT_OF_RANGE] += 1
                continue
        elif isinstance(value, Mapping):
            if depth >= MAX_DEPTH:
                counts[Problem.TOO_DEEP] += 1
            else:
                _walk(value, f"{path}.", depth + 1, found, counts)
            continue
        else:
            metric = _scalar(value, counts)
            if metric is None:
                continue
        if len(found) >= MAX_METRICS:
            counts[Problem.TOO_MANY] += 1
            continue
        found[path] = metric


def _scalar(value: Any, counts: Counter[str]) -> MetricValue | None:
    if value is None:
        return None
    if isinstance(value, bool | str):
        return clean_text(value, MAX_TEXT) if isinstance(value, str) else value
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return value
        counts[Problem.OUT_OF_RANGE] += 1
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        counts[Problem.NOT_FINITE] += 1
        return None
    if isinstance(value, list | tuple):
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            counts[Problem.NOT_FINITE] += 1
            return None
        return clean_text(text, MAX_TEXT)
    return None


def _is_stat_model(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is a stat (headers plus ``payload``) rather than a payload alone."""
    inner = data.get("payload")
    if not isinstance(inner, Mapping) and not (isinstance(inner, str) and inner[:1] == "{"):
        return False
    return not _HEADER_KEYS.isdisjoint(data) or "timestamp" in data


def _ms(value: Any, what: str) -> int | None:
    number = opt_int(value, what)
    return number if number is None or number >= 0 else None


def record_from(
    data: Mapping[str, Any],
    entity_id: str,
    entity_type: EntityType,
    timestamp: int | None = None,
    problems: Counter[str] | None = None,
) -> StatRecord:
    """Read a stat (or a shortened stat: the payload alone) of one entity.

    ``timestamp`` is the envelope's, used when the stat carries none of its own.
    """
    header: Mapping[str, Any] = {}
    payload: Mapping[str, Any] = data
    if _is_stat_model(data):
        header = data
        payload = as_mapping(data["payload"], "stat.payload")
    task_type = opt_name(header.get("taskType"), "stat.taskType") if header else None
    return StatRecord(
        entity_id=entity_id,
        entity_type=entity_type,
        timestamp=_ms(header.get("timestamp"), "stat.timestamp") or timestamp,
        period=_ms(header.get("period"), "stat.period") or None,
        expiry_period=_ms(header.get("expiryPeriod"), "stat.expiryPeriod"),
        task_type=task_type,
        metrics=flatten(payload, problems),
    )


def record_from_event(event: StatEvent, problems: Counter[str] | None = None) -> StatRecord:
    """Read a Comet ``stat`` event (its payload is the stat)."""
    return record_from(event.payload, event.entity_id, event.entity_type, event.timestamp, problems)


def record_from_search(item: Any, problems: Counter[str] | None = None) -> StatRecord:
    """Read one element of ``POST /stat/search``'s answer."""
    data = as_mapping(item, "stat/search")
    entity_type = EntityType.parse(data.get("entityType", 1), "stat/search.entityType")
    return record_from(data, req_id(data, "entityId", "stat/search"), entity_type, None, problems)


def parse_meta(data: Any) -> dict[str, MetricMeta]:
    """Read ``GET /objects/:id/stat/meta``: per metric path, its type and change rate.

    The metadata is nested like the stat; a field's description is an object holding ``type``
    and/or ``changeRate``. Unknown types and rates are left out (``None``).
    """
    root = as_mapping(data, "stat/meta")
    if _is_stat_model(root):
        root = as_mapping(root["payload"], "stat/meta.payload")
    found: dict[str, MetricMeta] = {}
    stack: list[tuple[str, Mapping[str, Any], int]] = [("", root, 0)]
    while stack:
        prefix, node, depth = stack.pop()
        for key, value in node.items():
            if not isinstance(key, str) or not isinstance(value, Mapping) or depth >= MAX_DEPTH:
                continue
            path = f"{prefix}{key}"
            if "type" in value or "changeRate" in value:
                found[path] = MetricMeta(
                    _enum(MetaType, value.get("type")), _enum(ChangeRate, value.get("changeRate"))
                )
            else:
                stack.append((f"{path}.", value, depth + 1))
    return found


def _enum[E: StrEnum](enum: type[E], value: Any) -> E | None:
    if not isinstance(value, str):
        return None
    try:
        return enum(value.strip().upper())
    except ValueError:
        return None


def parse_history(data: Any) -> list[MetricSeries]:
    """Read ``GET /objects/:id/history``: OpenTSDB-like series.

    ``[{"metric", "tags", "aggregateTags", "dps"}]`` where ``dps`` is a list of
    ``[timestamp, value]`` pairs or an object ``{"timestamp": value}``. Timestamps in seconds
    are turned into milliseconds; points that are not numbers are skipped.
    """
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise SaymonProtocolError("history: expected a list of series")
    series: list[MetricSeries] = []
    for item in data:
        if not isinstance(item, Mapping) or not isinstance(item.get("metric"), str):
            continue
        raw = item.get("dps")
        pairs: Iterable[Any] = (
            raw.items() if isinstance(raw, Mapping) else raw if isinstance(raw, list) else ()
        )
        points: list[tuple[int, float]] = []
        for pair in pairs:
            point = _point(pair)
            if point is not None:
                points.append(point)
        points.sort()
        series.append(MetricSeries(clean_text(item["metric"], MAX_PATH), points))
    return series


def _point(pair: Any) -> tuple[int, float] | None:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return None
    stamp, value = pair
    try:
        when = float(stamp)
    except (TypeError, ValueError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (math.isfinite(when) and math.isfinite(value)) or when < 0:
        return None
    if when < 1e11:  # seconds (OpenTSDB's own unit)
        when *= 1000
    return int(when), float(value)


def valid_time(value: str) -> bool:
    """Whether ``value`` is a time SAYMON's history accepts: ms since the epoch, or ``1h-ago``."""
    return value.isdecimal() or bool(_RELATIVE_TIME.match(value))


# -- REST ------------------------------------------------------------------------------------


def _kind(entity_type: EntityType) -> str:
    return "links" if entity_type is EntityType.LINK else "objects"


async def search(
    rest: SaymonRestClient,
    entities: Sequence[tuple[EntityType, str]],
    *,
    batch: int = SEARCH_BATCH,
    problems: Counter[str] | None = None,
) -> list[StatRecord]:
    """Current stats of many objects and links (``POST /stat/search``, in batches).

    SAYMON leaves out entities without a stat or without permission; a record that cannot be
    read is skipped and counted under ``rest.rejected["stat/search"]``.
    """
    records: list[StatRecord] = []
    for start in range(0, len(entities), batch):
        body = [
            {"type": _kind(kind), "id": entity_id}
            for kind, entity_id in entities[start : start + batch]
        ]
        answer = await rest.call("POST", "stat/search", json_body=body)
        if answer is None:
            continue
        if not isinstance(answer, list):
            raise SaymonProtocolError("stat/search: expected a list")
        for item in answer:
            try:
                records.append(record_from_search(item, problems))
            except SaymonProtocolError as err:
                rest.rejected["stat/search"] += 1
                _LOGGER.log(
                    logging.WARNING if rest.rejected["stat/search"] == 1 else logging.DEBUG,
                    "Skipped a SAYMON stat that cannot be read: %s",
                    err,
                )
    return records


async def meta(rest: SaymonRestClient, object_id: str) -> dict[str, MetricMeta]:
    """SAYMON's metadata of an object's stat (``GET /objects/:id/stat/meta``)."""
    answer = await rest.call("GET", f"objects/{quote(object_id, safe='')}/stat/meta")
    return parse_meta(answer if answer is not None else {})


async def history(
    rest: SaymonRestClient,
    object_id: str,
    metrics: Sequence[str],
    start: str,
    *,
    end: str | None = None,
    downsample: str | None = None,
) -> list[MetricSeries]:
    """Stored values of an object's metrics (``GET /objects/:id/history``).

    ``start``/``end``: ms since the epoch or SAYMON's relative form (``24h-ago``);
    ``downsample``: e.g. ``5m-avg``.
    """
    params = {"metrics": ",".join(metrics), "from": start}
    if end is not None:
        params["to"] = end
    if downsample:
        params["downsample"] = downsample
    answer = await rest.call("GET", f"objects/{quote(object_id, safe='')}/history", params=params)
    return parse_history(answer if answer is not None else [])
