"""Storms recorded from the simulator's model, replayed by the Node socket.io server.

The simulator's own Comet (python-socketio) cannot emit as fast as the integration consumes,
so the storm is computed by the simulator's model — real state changes with the incidents
they open, update and close, exactly what the simulator would send — and written to a file
that the Node socket.io 4.5.0 server (``POST /replay``) emits as fast as it can, or paced.
The model ends in the storm's final state, so the simulator's REST API and the truth checks
agree with the last event of the storm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
import random

import orjson

from tools.simulator import EVENT_INCIDENTS, EVENT_STATE_CHANGE, SaymonSimulator


@dataclass(slots=True)
class Storm:
    """A recorded storm: the file, what is in it, and the final truth."""

    path: Path
    events: int
    changes: int
    by_event: Counter[str] = field(default_factory=Counter)
    keys: list[tuple[str, str] | None] = field(default_factory=list)
    """Per event: (object id, new state id) of a state-change, ``None`` for other events."""
    final_states: dict[str, str] = field(default_factory=dict)
    """Final state id of every object the storm changed."""

    def expected_topics(self, base: str) -> dict[str, str]:
        """Retained state topic -> final state id, for the MQTT probe."""
        return {f"{base}/objects/{oid}/state": state for oid, state in self.final_states.items()}


def record(
    sim: SaymonSimulator,
    path: Path,
    *,
    changes: int | None = None,
    events: int | None = None,
    kinds: Collection[str] = (EVENT_STATE_CHANGE, EVENT_INCIDENTS),
    seed: int = 7,
) -> Storm:
    """Make random state changes in ``sim``'s model and write the events they cause.

    Stops after ``changes`` changes or once ``events`` events (of ``kinds``) were written;
    a change's events are always written together (a storm cut between a state change and
    the incident it opened would leave the simulator's truth out of the storm).
    """
    if changes is None and events is None:
        raise ValueError("give changes or events")
    rng = random.Random(seed)
    model = sim.model
    storm = Storm(path, 0, 0)
    with path.open("wb") as out:
        while (changes is None or storm.changes < changes) and (
            events is None or storm.events < events
        ):
            storm.changes += 1
            for event in model.random_state_change(rng):
                if event.name not in kinds:
                    continue
                out.write(orjson.dumps([event.name, event.payload]))
                out.write(b"\n")
                storm.events += 1
                storm.by_event[event.name] += 1
                if event.name == EVENT_STATE_CHANGE:
                    oid, state = event.payload["id"], str(event.payload["state_id"])
                    storm.keys.append((oid, state))
                    storm.final_states[oid] = state
                else:
                    storm.keys.append(None)
    return storm
