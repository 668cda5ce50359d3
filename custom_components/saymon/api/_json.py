"""Undocumented JSON passed through: bounded, and safe for every JSON encoder downstream.

SAYMON documents some payloads only in part (jobs, bulks) and the rest of a payload must still
reach automations. Passing foreign JSON on unchanged would let one payload break Home
Assistant's event bus or the MQTT mirror (``NaN``, integers beyond 64 bits, lone surrogates) or
fill the recorder (megabytes of nesting). :func:`json_safe` keeps what is plain JSON, repairs
text, and cuts size and depth.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any, Final

from ._fields import INT64_MAX, INT64_MIN, MAX_NAME_LENGTH, clean_text

MAX_DEPTH: Final = 4
"""Nesting kept; deeper values become ``None``."""
MAX_ITEMS: Final = 50
"""Elements of a list or members of an object kept."""
MAX_STRING: Final = 1024
"""Characters of a passed-through string kept (typed text fields have their own limits)."""


def json_safe(value: Any, depth: int = 0) -> Any:
    """A bounded copy of ``value`` that every JSON encoder accepts (anything else: ``None``)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean_text(value, MAX_STRING)
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, list | tuple):
        return [json_safe(item, depth + 1) for item in value[:MAX_ITEMS]]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if len(out) >= MAX_ITEMS:
                break
            if isinstance(key, str):
                out[clean_text(key, MAX_NAME_LENGTH)] = json_safe(item, depth + 1)
        return out
    return None


def extra_fields(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The members of ``data`` a parser does not read, passed through (bounded)."""
    return {
        clean_text(key, MAX_NAME_LENGTH): json_safe(item, 1)
        for key, item in list(data.items())[: MAX_ITEMS * 2]
        if isinstance(key, str) and key not in known
    }
