"""Entity updates: which dispatcher signal each change wakes, sent once per coalesced flush.

Entities never poll. A change marks the signals of the entities it concerns (an object's
state sensor, its problem sensor, the server's counts); the hub's :class:`~..coalesce.Coalescer`
sends each marked signal once per flush, so an object that changes several times in a storm
is written once per interval, with its latest state. Availability flips, which concern every
entity and are rare, go out at once.
"""

from __future__ import annotations

from collections.abc import Sequence
import sys

from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_send

from ..api.events import ModelChange
from ..api.metrics import MetricsChanged
from ..api.model import Change, IncidentChanged, ModelChanged, SaymonModel, StateChanged
from ..coalesce import Coalescer
from ..const import DOMAIN
from .devices import DeviceTree


class EntitySignals:
    """The entry's signal names and the entity side of the change stream."""

    def __init__(self, hass: HomeAssistant, entry_id: str, coalescer: Coalescer) -> None:
        """Register the flush with the hub's one coalescer."""
        self._hass = hass
        self._prefix = f"{DOMAIN}_{entry_id}"
        self._availability = f"{self._prefix}_availability"
        self._dirty: set[str] = set()
        self._problem_marked: dict[str, bool] = {}
        """Problem value last signalled per object (the sensor reads the model when told)."""
        self._coalescer = coalescer
        coalescer.add(self._flush)

    @property
    def server(self) -> str:
        """Signal for server-level entities (counts, connectivity)."""
        return f"{self._prefix}_server"

    @property
    def availability(self) -> str:
        """Signal sent to every entity when availability flips (rare, so a broadcast)."""
        return self._availability

    def entity(self, entity_id: str) -> str:
        """Signal for the state entities of one object or link (its state changed)."""
        return f"{self._prefix}_entity_{entity_id}"

    def problem(self, entity_id: str) -> str:
        """Signal for the problem entity of one object (its incidents changed).

        Kept apart from :meth:`entity` so that a state change does not re-render the problem
        sensor and an incident does not re-render the state sensor.
        """
        return f"{self._prefix}_problem_{entity_id}"

    def metrics(self, entity_id: str) -> str:
        """Signal for the metric entities of one object or link (new values, expiry).

        Interned, like :meth:`removed`: each of an object's many metric entities keeps the
        signal names it listens to, and one string per object is enough.
        """
        return sys.intern(f"{self._prefix}_metrics_{entity_id}")

    def removed(self, entity_id: str) -> str:
        """Signal for the entities of an object or link that SAYMON deleted."""
        return sys.intern(f"{self._prefix}_removed_{entity_id}")

    def mark(self, signal: str) -> None:
        """Send ``signal`` at the next flush (once, however often it is marked)."""
        self._dirty.add(signal)
        self._coalescer.request()

    def send_now(self, signal: str) -> None:
        """Send ``signal`` at once (availability, removals)."""
        async_dispatcher_send(self._hass, signal)

    def on_changes(self, changes: Sequence[Change], model: SaymonModel, tree: DeviceTree) -> None:
        """Mark what each change concerns (the stream's entity consumer)."""
        for change in changes:
            if isinstance(change, StateChanged):
                if tree.tracks(change.entity_type, change.entity_id):
                    self.mark(self.entity(change.entity_id))
            elif isinstance(change, IncidentChanged):
                entity_id = change.incident.entity_id
                if entity_id is not None:
                    # The problem sensor shows only whether the object has an incident: most
                    # incident changes (updates, a second incident) leave it as it is.
                    problem = model.has_incident(entity_id)
                    if self._problem_marked.get(entity_id) is not problem:
                        self._problem_marked[entity_id] = problem
                        self.mark(self.problem(entity_id))
                self.mark(self.server)
            elif isinstance(change, MetricsChanged):
                self.mark(self.metrics(change.entity_id))
            elif isinstance(change, ModelChanged) and change.change is ModelChange.REMOVED:
                # Link entities hang on the server device, which stays: they must go themselves.
                self.send_now(self.removed(change.entity_id))

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for signal in dirty:
            async_dispatcher_send(self._hass, signal)
