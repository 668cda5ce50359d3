"""SAYMON states as Home Assistant enum sensor options.

Built-in states get stable, translatable keys; custom states (created by SAYMON admins)
appear under the name SAYMON gives them.
"""

from __future__ import annotations

from typing import Final

from .model import SaymonModel

BUILTIN_STATE_KEYS: Final = {
    "1": "created",
    "3": "working",
    "4": "overloaded",
    "5": "alarm",
    "6": "stopped",
    "7": "no_data",
    "8": "down",
    "9": "disabled",
}


def state_key(model: SaymonModel, state_id: str | None) -> str | None:
    """Return the sensor value for a state id."""
    if state_id is None:
        return None
    return BUILTIN_STATE_KEYS.get(state_id) or model.state_name(state_id)


def state_options(model: SaymonModel) -> list[str]:
    """Return every value the state sensor can take (built-ins first, then custom states)."""
    options = list(BUILTIN_STATE_KEYS.values())
    for state_id in model.states:
        key = state_key(model, state_id)
        if key is not None and key not in options:
            options.append(key)
    return options
