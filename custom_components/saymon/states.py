"""SAYMON states as Home Assistant enum sensor options.

Built-in states get stable, translatable keys; custom states (created by SAYMON admins)
appear under the name SAYMON gives them.
"""

from __future__ import annotations

from typing import Final

from .api.model import SaymonModel

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


class StateOptions:
    """Every value the state sensor can take (built-ins first, then custom states), cached.

    Home Assistant asks for the options on every state write; the list is rebuilt only when
    the model's state table is another one (a snapshot replaces it) or changed size. One per
    entry: servers differ in their custom states.
    """

    def __init__(self) -> None:
        """Nothing cached yet."""
        self._cached: tuple[object, int, list[str]] | None = None

    def __call__(self, model: SaymonModel) -> list[str]:
        """The options for ``model``'s states."""
        states = model.states
        cached = self._cached
        if cached is not None and cached[0] is states and cached[1] == len(states):
            return cached[2]
        options = list(BUILTIN_STATE_KEYS.values())
        for state_id in states:
            key = state_key(model, state_id)
            if key is not None and key not in options:
                options.append(key)
        self._cached = (states, len(states), options)
        return options
