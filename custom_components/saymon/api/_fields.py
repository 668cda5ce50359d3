"""Tolerant readers for the loosely typed JSON that SAYMON versions send.

SAYMON's documentation and real servers disagree on types: ids arrive as strings or numbers,
state ids as ``"5"`` or ``5``, parent ids as a list or a single value. Every reader here
accepts the plausible variants, normalises ids to ``str``, and raises
:class:`~.errors.SaymonProtocolError` for anything else so one bad record is reported
instead of crashing a whole snapshot or event stream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
import contextlib
import json
import logging
import re
from typing import Any, Final

from .errors import SaymonProtocolError

_LOGGER = logging.getLogger(__name__)

JSONObject = Mapping[str, Any]

MAX_ID_LENGTH: Final = 128
"""Longest id accepted (SAYMON's are 24-character object ids or small numbers)."""
MAX_NAME_LENGTH: Final = 255
"""Names (objects, states, levels, classes) are cut here: Home Assistant refuses longer
states, and a device or entity name that long is unreadable anyway."""
MAX_TEXT_LENGTH: Final = 4096
"""Incident texts and other free text are cut here (attributes of Home Assistant states and
events must stay small)."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

SANITIZED: Counter[str] = Counter()
"""Text fields repaired at this boundary, by what was wrong (process-wide, for diagnostics):
``"surrogate"`` (not valid Unicode: JSON encoders, Home Assistant's included, refuse it),
``"truncated"`` (beyond its length limit)."""


def _sanitized(reason: str) -> None:
    SANITIZED[reason] += 1
    if SANITIZED[reason] == 1:
        _LOGGER.warning(
            "SAYMON sent text that had to be repaired (%s); later cases are counted in the "
            "diagnostics",
            "invalid Unicode" if reason == "surrogate" else "too long",
        )


def clean_text(value: str, limit: int = MAX_TEXT_LENGTH) -> str:
    r"""Text that every JSON encoder accepts: lone surrogates replaced, cut at ``limit``.

    JSON escapes such as ``"\ud800"`` decode to lone surrogates, which are not Unicode text: Home
    Assistant's state API, its event bus and MQTT payload encoders all fail on them.
    """
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = _SURROGATE.sub("\ufffd", value)
            _sanitized("surrogate")
    if len(value) > limit:
        value = value[: limit - 1] + "…"
        _sanitized("truncated")
    return value


def valid_id(value: str) -> bool:
    """An id fit to travel into URLs, registries and MQTT topics: short and printable.

    ``isprintable`` is false for control characters, lone surrogates and invisible format
    characters alike.
    """
    return 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def as_mapping(value: Any, what: str) -> JSONObject:
    """Return ``value`` as a JSON object; a JSON-encoded object string is decoded first."""
    if isinstance(value, str) and value[:1] == "{":
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested beyond the stack
            raise SaymonProtocolError(f"{what}: invalid JSON text") from None
    if not isinstance(value, Mapping):
        raise SaymonProtocolError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def req_id(data: JSONObject, key: str, what: str) -> str:
    """Read a mandatory id (string or integer) as a non-empty string."""
    value = opt_id(data.get(key), f"{what}.{key}")
    if value is None:
        raise SaymonProtocolError(f"{what}: missing {key}")
    return value


def opt_id(value: Any, what: str) -> str | None:
    """Read an optional id: strings and integers become strings; ``None``/empty is absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:  # str() of 4,300+ digits would raise ValueError
            raise SaymonProtocolError(f"{what}: not a valid id")
        value = str(value)
    if isinstance(value, str):
        if not valid_id(value):
            raise SaymonProtocolError(f"{what}: not a valid id")
        return value
    if isinstance(value, Mapping):  # {"id": ...} / {"_id": ...} references, one level deep
        inner = value.get("id", value.get("_id"))
        if isinstance(inner, Mapping):
            raise SaymonProtocolError(f"{what}: nested id reference")
        return opt_id(inner, what)
    raise SaymonProtocolError(f"{what}: expected an id, got {type(value).__name__}")


def id_list(value: Any, what: str) -> tuple[str, ...]:
    """Read a list of ids; a single id is a one-element list, ``None`` an empty one."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        ids = (opt_id(item, what) for item in value)
        return tuple(item for item in ids if item is not None)
    single = opt_id(value, what)
    return () if single is None else (single,)


INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


def opt_int(value: Any, what: str) -> int | None:
    """Read an optional integer (timestamps, priorities, counts); numeric strings accepted.

    Integers must fit in 64 bits: beyond that JSON encoders (Home Assistant's, the MQTT
    mirror's) refuse them, and no SAYMON value is that large.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SaymonProtocolError(f"{what}: expected a number, got a boolean")
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = int(value.strip())
    if number is None:
        raise SaymonProtocolError(f"{what}: expected an integer, got {type(value).__name__}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise SaymonProtocolError(f"{what}: {number:.3e} does not fit in 64 bits")
    return number


def opt_str(value: Any, what: str, limit: int = MAX_TEXT_LENGTH) -> str | None:
    """Read an optional text; numbers are converted, other types rejected.

    Text is repaired rather than refused (see :func:`clean_text`): one bad character in an
    incident's text must not cost the incident.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return clean_text(value, limit)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise SaymonProtocolError(f"{what}: expected text, got {type(value).__name__}")


def opt_name(value: Any, what: str) -> str | None:
    """Read an optional name (at most :data:`MAX_NAME_LENGTH` characters)."""
    return opt_str(value, what, MAX_NAME_LENGTH)


def color(data: JSONObject) -> str | None:
    """Read ``ui.colors.main`` of a state or incident level when it is there."""
    ui = data.get("ui")
    colors = ui.get("colors") if isinstance(ui, Mapping) else None
    main = colors.get("main") if isinstance(colors, Mapping) else None
    return main if isinstance(main, str) else None
