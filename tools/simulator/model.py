"""The seeded in-memory SAYMON model: tree, links, states and incidents. Pure data, no I/O.

Every mutation returns the Comet events it causes; publishing them is somebody else's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import random
import time
from typing import Any

from .catalog import (
    CHANGE_CREATED,
    CHANGE_MODIFIED,
    CHANGE_REMOVED,
    CLASSES,
    ENTITY_LINK,
    ENTITY_OBJECT,
    REASON_EXTERNAL,
    REASON_MANUAL,
    STATE_ALARM,
    STATE_CREATED,
    STATE_DOWN,
    STATE_NO_DATA,
    STATE_OVERLOADED,
    STATE_STOPPED,
    STATE_WORKING,
    builtin_states,
    classes_json,
    incident_levels,
    state_json,
)
from .entities import SimLink, SimObject
from .errors import InvalidRequestError, NotFoundError
from .events import EVENT_MODEL_CHANGED, EVENT_STAT, EVENT_STATE_CHANGE, Event
from .generate import IdFactory, generate_world
from .incidents import DEFAULT_INCIDENT_TIMEOUT_MS, EntityKey, IncidentBook
from .stats import DEFAULT_PERIOD_MS, KIND_PING, ProbeBook, kind_for_class

# Weighted pool for random changes: mostly back to Working, so storms do not end all red.
_RANDOM_STATES = (
    STATE_WORKING,
    STATE_WORKING,
    STATE_WORKING,
    STATE_OVERLOADED,
    STATE_ALARM,
    STATE_NO_DATA,
    STATE_DOWN,
    STATE_STOPPED,
    STATE_CREATED,
)


def now_ms() -> int:
    """Wall-clock milliseconds, SAYMON's timestamp unit."""
    return time.time_ns() // 1_000_000


def ping_stat(rng: random.Random, timestamp: int) -> dict[str, Any]:
    """Build a ping-like stat body, the shape SAYMON documents for the `stat` payload."""
    average = round(rng.uniform(1.0, 40.0), 3)
    return {
        "taskType": "ping",
        "period": 1000,
        "timestamp": timestamp,
        "agentId": "625439c60db03e3f4504b548",
        "payload": {
            "packetsTransmitted": 5,
            "packetsReceived": 5,
            "packetLossPercentile": 0,
            "numberOfErrors": 0,
            "numberOfDuplicates": 0,
            "roundTripMinimal": round(average * 0.95, 3),
            "roundTripAverage": average,
            "roundTripMaximum": round(average * 1.05, 3),
            "exitCode": 0,
        },
    }


class SimulatorModel:
    """All SAYMON data the simulator serves, deterministic for a seed (timestamps aside)."""

    def __init__(
        self,
        *,
        objects: int = 40,
        seed: int = 1,
        clock: Callable[[], int] | None = None,
        incident_timeout_ms: int = DEFAULT_INCIDENT_TIMEOUT_MS,
        stat_period_ms: int = DEFAULT_PERIOD_MS,
        stat_expiry_ms: int | None = None,
    ) -> None:
        """Generate `objects` objects from `seed`; `clock` returns ms (fix it for exact tests).

        `incident_timeout_ms`: how long cleared incidents stay listed (0: to history at once).
        `stat_period_ms` / `stat_expiry_ms`: `period` and `expiryPeriod` of every probe's stat
        (every probe has a current stat from the start, as on a running SAYMON).
        """
        self.seed = seed
        self.clock = clock or now_ms
        self._rng = random.Random(seed)
        self._new_id = IdFactory(self._rng)
        self.states: dict[int, dict[str, Any]] = builtin_states()
        self.incident_levels = incident_levels()
        self.classes = classes_json()
        world = generate_world(self._rng, self._new_id, objects, self.clock())
        self.root_id = world.root_id
        self.objects: dict[str, SimObject] = world.objects
        self.links: dict[str, SimLink] = world.links
        self.tags: dict[str, str] = world.tags
        self.incidents = IncidentBook(self._new_id, incident_timeout_ms)
        self.last_stat: dict[EntityKey, dict[str, Any]] = {}
        """Each entity's current stat (`GET /objects/:id/stat`, `POST /stat/search`)."""
        self.probes = ProbeBook(stat_period_ms, stat_expiry_ms)
        probe_rng = random.Random(f"{seed}:probes")  # apart: ids and states stay as they were
        for obj in self.objects.values():
            self.probes.add(
                (ENTITY_OBJECT, obj.id), kind_for_class(obj.class_id, probe_rng), obj.id
            )
        for link in self.links.values():
            self.probes.add((ENTITY_LINK, link.id), KIND_PING, link.id)
        self._probe_rng = probe_rng
        for key in list(self.probes.probes):
            self.probe_stat(key)
        self._object_ids: list[str] | None = None
        for obj in self.objects.values():
            self.incidents.on_state_change(
                (ENTITY_OBJECT, obj.id), obj.state_id, obj.last_state_update, REASON_EXTERNAL
            )
        for link in self.links.values():
            self.incidents.on_state_change(
                (ENTITY_LINK, link.id), link.state_id, link.last_state_update, REASON_EXTERNAL
            )

    # --- lookups -------------------------------------------------------------------------

    def get_object(self, object_id: str) -> SimObject:
        """Find an object or raise NotFoundError."""
        try:
            return self.objects[object_id]
        except KeyError:
            raise NotFoundError(f"Object {object_id} not found.") from None

    def get_link(self, link_id: str) -> SimLink:
        """Find a link or raise NotFoundError."""
        try:
            return self.links[link_id]
        except KeyError:
            raise NotFoundError(f"Link {link_id} not found.") from None

    def owner_json(self, entity_type: int, entity_id: str) -> dict[str, Any] | None:
        """`owner` block of GET /incidents?owner=true, or None when the entity is gone."""
        if entity_type == ENTITY_OBJECT:
            obj = self.objects.get(entity_id)
            if obj is None:
                return None
            return {
                "id": obj.id,
                "name": obj.name,
                "class_id": obj.class_id,
                "parent_id": list(obj.parent_id),
            }
        link = self.links.get(entity_id)
        if link is None:
            return None
        name = f"{link.source_name} - {link.target_name}"
        return {"id": link.id, "name": name, "class_id": link.class_id, "parent_id": []}

    def is_under(self, entity: EntityKey, ancestor_id: str) -> bool:
        """Whether an entity is `ancestor_id` or below it (a link if either end is)."""
        if entity[0] == ENTITY_LINK:
            link = self.links.get(entity[1])
            if link is None:
                return False
            return any(
                self.is_under((ENTITY_OBJECT, end), ancestor_id)
                for end in (link.source, link.target)
            )
        pending, seen = [entity[1]], set()
        while pending:
            current = pending.pop()
            if current == ancestor_id:
                return True
            if current not in seen and current in self.objects:
                seen.add(current)
                pending.extend(self.objects[current].parent_id)
        return False

    # --- states --------------------------------------------------------------------------

    def add_state(
        self, state_id: int, name: str, priority: int = 0, color: str = "#1189d2"
    ) -> dict[str, Any]:
        """Add a custom state (e.g. 101 Maintenance); it never opens incidents."""
        if state_id in self.states:
            raise InvalidRequestError(f"State {state_id} already exists.")
        self.states[state_id] = state_json(state_id, name, priority, color)
        return self.states[state_id]

    def _check_state(self, state_id: int) -> None:
        if state_id not in self.states:
            raise InvalidRequestError(f"Unknown state {state_id}.")

    def _change(
        self, kind: int, entity: SimObject | SimLink, state_id: int, reason: int
    ) -> list[Event]:
        self._check_state(state_id)
        if entity.state_id == state_id:
            return []
        now = self.clock()
        entity.state_id = state_id
        entity.last_state_update = entity.updated = now
        events = [
            Event(
                EVENT_STATE_CHANGE,
                {"id": entity.id, "state_id": state_id, "type": kind},
                (kind, entity.id),
            )
        ]
        events += self.incidents.on_state_change((kind, entity.id), state_id, now, reason)
        return events

    def set_state(self, object_id: str, state_id: int, reason: int = REASON_MANUAL) -> list[Event]:
        """Change an object's state; no events if it already has that state."""
        return self._change(ENTITY_OBJECT, self.get_object(object_id), state_id, reason)

    def set_link_state(
        self, link_id: str, state_id: int, reason: int = REASON_MANUAL
    ) -> list[Event]:
        """Change a link's state (state-change `type` 2, incidents with `entityType` 2)."""
        return self._change(ENTITY_LINK, self.get_link(link_id), state_id, reason)

    def random_state_change(self, rng: random.Random) -> list[Event]:
        """Move a random non-root object to a random different state (storms and ticks)."""
        if self._object_ids is None:
            self._object_ids = [oid for oid in self.objects if oid != self.root_id]
        if not self._object_ids:
            return []
        obj = self.objects[rng.choice(self._object_ids)]
        state = rng.choice([s for s in _RANDOM_STATES if s != obj.state_id])
        return self.set_state(obj.id, state, REASON_EXTERNAL)

    # --- incidents -----------------------------------------------------------------------

    def acknowledge(self, incident_id: str, user_id: str) -> list[Event]:
        """Acknowledge an active incident as `user_id`."""
        return self.incidents.acknowledge(incident_id, user_id, self.clock())

    def unacknowledge(self, incident_id: str) -> list[Event]:
        """Undo an acknowledgement."""
        return self.incidents.unacknowledge(incident_id)

    def clear(self, incident_id: str) -> list[Event]:
        """Clear an incident (it moves to the history after the incident timeout)."""
        return self.incidents.clear(incident_id, self.clock())

    def clear_remove(self, incident_id: str) -> list[Event]:
        """Clear an incident and move it to the history at once."""
        return self.incidents.clear_remove(incident_id, self.clock())

    def expire_incidents(self) -> list[Event]:
        """Move cleared incidents past the incident timeout to the history."""
        return self.incidents.expire(self.clock())

    # --- tree changes --------------------------------------------------------------------

    @staticmethod
    def _model_event(
        change_type: int, entity_type: int, entity_id: str, user: Mapping[str, str]
    ) -> Event:
        payload = {
            "changeType": change_type,
            "id": entity_id,
            "entityType": entity_type,
            "user": {"id": user["id"], "login": user["login"]},
        }
        return Event(EVENT_MODEL_CHANGED, payload, (entity_type, entity_id))

    def create_object(
        self, name: str, parent_id: str, class_id: str, user: Mapping[str, str]
    ) -> tuple[str, list[Event]]:
        """Create an object in state Created under `parent_id`."""
        parent = self.get_object(parent_id)
        if class_id not in CLASSES:
            raise InvalidRequestError(f"Unknown class {class_id}.")
        now = self.clock()
        obj = SimObject(
            id=self._new_id(),
            name=name,
            parent_id=[parent.id],
            class_id=class_id,
            state_id=STATE_CREATED,
            last_state_update=now,
            created=now,
            updated=now,
        )
        self.objects[obj.id] = obj
        parent.child_ids.append(obj.id)
        self.probes.add((ENTITY_OBJECT, obj.id), kind_for_class(class_id, self._probe_rng), obj.id)
        self._object_ids = None
        return obj.id, [self._model_event(CHANGE_CREATED, ENTITY_OBJECT, obj.id, user)]

    def rename_object(self, object_id: str, name: str, user: Mapping[str, str]) -> list[Event]:
        """Rename an object (and the cached names on its links)."""
        obj = self.get_object(object_id)
        obj.name = name
        obj.updated = self.clock()
        for link in self.links.values():
            if link.source == obj.id:
                link.source_name = name
            if link.target == obj.id:
                link.target_name = name
        return [self._model_event(CHANGE_MODIFIED, ENTITY_OBJECT, obj.id, user)]

    def move_object(self, object_id: str, parent_id: str, user: Mapping[str, str]) -> list[Event]:
        """Re-parent an object; refuses to create a cycle."""
        obj = self.get_object(object_id)
        parent = self.get_object(parent_id)
        if self.is_under((ENTITY_OBJECT, parent.id), obj.id):
            raise InvalidRequestError("Cannot move an object under itself.")
        for old in obj.parent_id:
            if old in self.objects:
                self.objects[old].child_ids.remove(obj.id)
        obj.parent_id = [parent.id]
        parent.child_ids.append(obj.id)
        obj.updated = self.clock()
        return [self._model_event(CHANGE_MODIFIED, ENTITY_OBJECT, obj.id, user)]

    def delete_object(self, object_id: str, user: Mapping[str, str]) -> list[Event]:
        """Delete an object with its subtree, the links touching it, and their open incidents."""
        obj = self.get_object(object_id)
        if obj.id == self.root_id:
            raise InvalidRequestError("Cannot delete the root object.")
        now = self.clock()
        removed: list[str] = []
        pending = [obj.id]
        while pending:
            current = self.objects[pending.pop()]
            removed.append(current.id)
            pending.extend(current.child_ids)
        for parent in obj.parent_id:
            if parent in self.objects:
                self.objects[parent].child_ids.remove(obj.id)
        gone = set(removed)
        events: list[Event] = []
        for oid in removed:
            del self.objects[oid]
            self.probes.probes.pop((ENTITY_OBJECT, oid), None)
            self.last_stat.pop((ENTITY_OBJECT, oid), None)
            events += self.incidents.clear_entity((ENTITY_OBJECT, oid), now)
            events.append(self._model_event(CHANGE_REMOVED, ENTITY_OBJECT, oid, user))
        for link in [lk for lk in self.links.values() if {lk.source, lk.target} & gone]:
            del self.links[link.id]
            self.probes.probes.pop((ENTITY_LINK, link.id), None)
            self.last_stat.pop((ENTITY_LINK, link.id), None)
            events += self.incidents.clear_entity((ENTITY_LINK, link.id), now)
            events.append(self._model_event(CHANGE_REMOVED, ENTITY_LINK, link.id, user))
        if any(event.name == "incidents" for event in events):
            events.append(self.incidents.count_event())
        self._object_ids = None
        return events

    # --- stat ----------------------------------------------------------------------------

    def stat_event(
        self, object_id: str, payload: dict[str, Any] | None = None, *, link: bool = False
    ) -> Event:
        """Build a `stat` event for an object or link; remembered as its current stat.

        `payload` is the whole stat (`{taskType, period, timestamp, payload: {...}}`); without
        it, the entity's probe runs (a ping-like stat for an entity without one).
        """
        key = (
            (ENTITY_LINK, self.get_link(object_id).id)
            if link
            else (
                ENTITY_OBJECT,
                self.get_object(object_id).id,
            )
        )
        now = self.clock()
        body = payload if payload is not None else self.probes.next_stat(key, now)
        return self._stat(key, body if body is not None else ping_stat(self._rng, now), now)

    def probe_stat(self, key: EntityKey) -> Event | None:
        """Run one entity's probe: its next stat event (None without a probe)."""
        now = self.clock()
        body = self.probes.next_stat(key, now)
        return None if body is None else self._stat(key, body, now)

    def _stat(self, key: EntityKey, body: dict[str, Any], now: int) -> Event:
        self.last_stat[key] = body
        self.probes.remember(key, body)
        message = {"entityId": key[1], "entityType": key[0], "timestamp": now, "payload": body}
        return Event(EVENT_STAT, message, key)

    def stat_search(self, wanted: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """`POST /stat/search`: the current stat of each entity that has one, with its ids."""
        return [
            {"entityId": entity_id, "entityType": kind, **self.last_stat[(kind, entity_id)]}
            for kind, entity_id in wanted
            if (kind, entity_id) in self.last_stat
        ]
