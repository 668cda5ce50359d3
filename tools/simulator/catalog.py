"""Static SAYMON catalogues: built-in states, incident levels, classes and the wire constants.

They live apart from the seeded model so that tests (and the client under test) can refer to the
ids by name instead of repeating SAYMON's magic numbers.
"""

from __future__ import annotations

from typing import Any, Final

# Entity states (GET /states); SAYMON has no built-in state 2.
STATE_CREATED: Final = 1
STATE_WORKING: Final = 3
STATE_OVERLOADED: Final = 4
STATE_ALARM: Final = 5
STATE_STOPPED: Final = 6
STATE_NO_DATA: Final = 7
STATE_DOWN: Final = 8
STATE_DISABLE: Final = 9

# Incident levels (GET /incident-levels); an incident's `state` is one of these.
LEVEL_ALARM: Final = 1
LEVEL_WARNING: Final = 2
LEVEL_CLEARED: Final = 3
LEVEL_MAJOR: Final = 4

# Documented default mapping of entity state to incident level; other states clear the incident.
STATE_TO_LEVEL: Final[dict[int, int]] = {
    STATE_ALARM: LEVEL_ALARM,
    STATE_OVERLOADED: LEVEL_WARNING,
    STATE_NO_DATA: LEVEL_MAJOR,
    STATE_DOWN: LEVEL_MAJOR,
}

# `entityType` / `type` values in incidents, state-change, model-changed and stat.
ENTITY_OBJECT: Final = 1
ENTITY_LINK: Final = 2

# `changeType` values in `incidents` and `model-changed` events.
CHANGE_CREATED: Final = 1
CHANGE_MODIFIED: Final = 2
CHANGE_REMOVED: Final = 3

# State-change reason codes used by the simulator (SAYMON's `reason.code`).
REASON_EXTERNAL: Final = 12
REASON_MANUAL: Final = 13

# Class ids are numeric-looking strings, as SAYMON sends them.
CLASS_ROOT: Final = "10"
CLASS_SITE: Final = "11"
CLASS_RACK: Final = "12"
CLASS_SWITCH: Final = "13"
CLASS_SERVER: Final = "14"
CLASS_HOST: Final = "15"
CLASS_SERVICE: Final = "16"
CLASS_LINK: Final = "34"

CLASSES: Final[dict[str, str]] = {
    CLASS_ROOT: "Root",
    CLASS_SITE: "Site",
    CLASS_RACK: "Rack",
    CLASS_SWITCH: "Switch",
    CLASS_SERVER: "Server",
    CLASS_HOST: "Host",
    CLASS_SERVICE: "Service",
    CLASS_LINK: "Link",
}

# id -> (name, priority, main colour)
_STATES: Final[dict[int, tuple[str, int, str]]] = {
    STATE_CREATED: ("Created", 10, "#9e9e9e"),
    STATE_WORKING: ("Working", 20, "#4caf50"),
    STATE_OVERLOADED: ("Overloaded", 60, "#ffc107"),
    STATE_ALARM: ("Alarm", 80, "#f44336"),
    STATE_STOPPED: ("Stopped", 30, "#607d8b"),
    STATE_NO_DATA: ("NoData", 50, "#795548"),
    STATE_DOWN: ("Down", 70, "#b71c1c"),
    STATE_DISABLE: ("Disable", 0, "#cfd8dc"),
}

# id -> (name, priority or None, main colour)
_LEVELS: Final[dict[int, tuple[str, int | None, str]]] = {
    LEVEL_ALARM: ("Alarm", 30, "#f44336"),
    LEVEL_WARNING: ("Warning", 10, "#ffc107"),
    LEVEL_CLEARED: ("Cleared", None, "#4caf50"),
    LEVEL_MAJOR: ("Major", 20, "#ff5722"),
}

# Human text of the incident an entity state raises.
INCIDENT_TEXT: Final[dict[int, str]] = {
    STATE_ALARM: "Alarm",
    STATE_OVERLOADED: "Overloaded",
    STATE_NO_DATA: "No data",
    STATE_DOWN: "Down",
}


def state_json(state_id: int, name: str, priority: int, color: str) -> dict[str, Any]:
    """Build one GET /states entry; shared by built-in and custom states so they look alike."""
    return {"id": state_id, "name": name, "priority": priority, "ui": {"colors": {"main": color}}}


def builtin_states() -> dict[int, dict[str, Any]]:
    """Return fresh copies of the built-in states so a model can add custom ones safely."""
    return {sid: state_json(sid, *spec) for sid, spec in _STATES.items()}


def incident_levels() -> list[dict[str, Any]]:
    """Return GET /incident-levels; `Cleared` carries no priority, as documented."""
    levels: list[dict[str, Any]] = []
    for level_id, (name, priority, color) in _LEVELS.items():
        level: dict[str, Any] = {"id": level_id, "name": name, "ui": {"colors": {"main": color}}}
        if priority is not None:
            level["priority"] = priority
        levels.append(level)
    return levels


def classes_json() -> list[dict[str, Any]]:
    """Return GET /classes: a list of `{id, name}` with string ids."""
    return [{"id": cid, "name": name} for cid, name in CLASSES.items()]
