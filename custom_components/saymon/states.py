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
    """Return the sensor value for a state id (``None`` for one SAYMON has not listed yet).

    A state unknown to the model is not among the sensor's options, and Home Assistant
    refuses to write such a value; the hub resyncs to learn it.
    """
    if state_id is None:
        return None
    builtin = BUILTIN_STATE_KEYS.get(state_id)
    if builtin is not None:
        return builtin
    state = model.states.get(state_id)
    return state.name if state is not None else None


_options_cache: tuple[object, int, list[str]] | None = None


def state_options(model: SaymonModel) -> list[str]:
    """Return every value the state sensor can take (built-ins first, then custom states).

    Home Assistant asks for the options on every state write; the list is rebuilt only when
    the model's state table is another one (a snapshot replaces it) or changed size.
    """
    global _options_cache  # noqa: PLW0603 - one small cache for every entry
    states = model.states
    cached = _options_cache
    if cached is not None and cached[0] is states and cached[1] == len(states):
        return cached[2]
    options = list(BUILTIN_STATE_KEYS.values())
    for state_id in states:
        key = state_key(model, state_id)
        if key is not None and key not in options:
            options.append(key)
    _options_cache = (states, len(states), options)
    return options
