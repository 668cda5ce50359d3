"""In-memory picture of one SAYMON server, and the changes applied to it.

Every update — a live Comet event or a REST snapshot taken after a reconnect — goes through
the same idempotent operations here, each returning the change it made (or ``None`` when the
model already said so). The hub fires Home Assistant events only for returned changes, which
is what makes replay after a reconnect exact: what was missed is fired once, marked
``replayed``, and what had already been seen live is not fired again.

No Home Assistant imports: this module is pure data and can be tested and benchmarked alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .api.events import ModelChange
from .api.models import (
    EntityType,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)


class IncidentChangeKind(StrEnum):
    """What happened to an incident, as the ``type`` of ``saymon_incident`` events."""

    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class StateChanged:
    """An object or link moved from ``old_state_id`` to ``new_state_id``."""

    entity_id: str
    entity_type: EntityType
    old_state_id: str | None
    new_state_id: str


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """An incident was opened, updated or closed; ``incident`` is its latest known form."""

    kind: IncidentChangeKind
    incident: Incident


@dataclass(frozen=True, slots=True)
class ModelChanged:
    """An object or link was created, modified or removed in SAYMON."""

    change: ModelChange
    entity_id: str
    entity_type: EntityType
    user_id: str | None = None
    user_login: str | None = None


type Change = StateChanged | IncidentChanged | ModelChanged


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the REST API said at one moment (the initial picture, or a resync)."""

    objects: dict[str, SaymonObject]
    links: dict[str, SaymonLink]
    states: dict[str, SaymonState]
    levels: dict[str, IncidentLevel]
    classes: dict[str, SaymonClass]
    incidents: dict[str, Incident]


@dataclass(slots=True)
class SaymonModel:
    """Objects, links and active incidents of one server, kept current by events."""

    objects: dict[str, SaymonObject] = field(default_factory=dict)
    links: dict[str, SaymonLink] = field(default_factory=dict)
    states: dict[str, SaymonState] = field(default_factory=dict)
    levels: dict[str, IncidentLevel] = field(default_factory=dict)
    classes: dict[str, SaymonClass] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    entity_states: dict[str, str] = field(default_factory=dict)
    """Current state id of every object and link (kept apart so a state change is one store)."""
    _by_entity: dict[str, set[str]] = field(default_factory=dict)
    _level_counts: dict[str, int] = field(default_factory=dict)
    reported_count: int | None = None
    """The total SAYMON last announced in ``incident-count`` (a consistency check)."""

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> SaymonModel:
        """Build the initial model; no changes are reported for it."""
        model = cls()
        model.apply_snapshot(snapshot)
        return model

    # -- queries ---------------------------------------------------------------------------

    def state_of(self, entity_id: str) -> str | None:
        """Current state id of an object or link."""
        return self.entity_states.get(entity_id)

    def state_name(self, state_id: str | None) -> str | None:
        """Display name of a state id (custom states keep the name SAYMON gives them)."""
        if state_id is None:
            return None
        state = self.states.get(state_id)
        return state.name if state is not None else state_id

    def level_name(self, level_id: str | None) -> str | None:
        """Display name of an incident level id."""
        if level_id is None:
            return None
        level = self.levels.get(level_id)
        return level.name if level is not None else level_id

    def incidents_of(self, entity_id: str) -> list[Incident]:
        """Active incidents of one object or link."""
        return [self.incidents[i] for i in self._by_entity.get(entity_id, ())]

    def has_incident(self, entity_id: str) -> bool:
        """Whether the entity has at least one active incident."""
        return bool(self._by_entity.get(entity_id))

    def level_counts(self) -> dict[str, int]:
        """Active incidents per level id (every known level present, zeros included)."""
        counts = dict.fromkeys(self.levels, 0)
        counts.update(self._level_counts)
        return counts

    def level_count(self, level_id: str) -> int:
        """Active incidents of one level (kept incrementally: no scan per event)."""
        return self._level_counts.get(level_id, 0)

    def entity_name(self, entity_type: EntityType, entity_id: str | None) -> str | None:
        """Name of an object, or "source → target" of a link."""
        if entity_id is None:
            return None
        if entity_type is EntityType.LINK:
            link = self.links.get(entity_id)
            if link is None:
                return None
            source = link.source_name or self._object_name(link.source)
            target = link.target_name or self._object_name(link.target)
            return f"{source} → {target}"
        return self._object_name(entity_id)

    def _object_name(self, object_id: str | None) -> str:
        obj = self.objects.get(object_id) if object_id else None
        return obj.name if obj is not None else (object_id or "?")

    # -- live updates ----------------------------------------------------------------------

    def apply_state(
        self, entity_id: str, state_id: str, entity_type: EntityType = EntityType.OBJECT
    ) -> StateChanged | None:
        """Record a state; a change is returned only when the state really differs."""
        old = self.entity_states.get(entity_id)
        if old == state_id:
            return None
        if entity_type is EntityType.LINK:
            if entity_id not in self.links:
                return None
        elif entity_id not in self.objects:
            return None  # an object we have not seen yet: its model-changed brings it
        self.entity_states[entity_id] = state_id
        return StateChanged(entity_id, entity_type, old, state_id)

    def apply_incident(self, incident: Incident) -> IncidentChanged | None:
        """Record an incident's latest form: opened, updated, closed, or nothing new."""
        if not incident.is_active:
            return self.close_incident(incident.id, incident)
        previous = self.incidents.get(incident.id)
        if previous == incident:
            return None
        self.incidents[incident.id] = incident
        self._count(incident, 1)
        if previous is None:
            if incident.entity_id is not None:
                self._by_entity.setdefault(incident.entity_id, set()).add(incident.id)
            return IncidentChanged(IncidentChangeKind.OPENED, incident)
        self._count(previous, -1)
        if previous.entity_id != incident.entity_id:
            self._unindex(previous)
            if incident.entity_id is not None:
                self._by_entity.setdefault(incident.entity_id, set()).add(incident.id)
        return IncidentChanged(IncidentChangeKind.UPDATED, incident)

    def close_incident(
        self, incident_id: str, final: Incident | None = None
    ) -> IncidentChanged | None:
        """Forget an active incident; ``final`` is its closed form when SAYMON sent one."""
        previous = self.incidents.pop(incident_id, None)
        if previous is None:
            return None
        self._unindex(previous)
        self._count(previous, -1)
        return IncidentChanged(IncidentChangeKind.CLOSED, final or previous)

    def _count(self, incident: Incident, delta: int) -> None:
        level = incident.level_id
        if level is not None:
            self._level_counts[level] = self._level_counts.get(level, 0) + delta

    def _unindex(self, incident: Incident) -> None:
        if incident.entity_id is None:
            return
        ids = self._by_entity.get(incident.entity_id)
        if ids is not None:
            ids.discard(incident.id)
            if not ids:
                del self._by_entity[incident.entity_id]

    def upsert_object(self, obj: SaymonObject) -> ModelChanged | None:
        """Add or replace an object; its state is taken from the record when it has one."""
        previous = self.objects.get(obj.id)
        self.objects[obj.id] = obj
        if obj.state_id is not None:
            self.entity_states.setdefault(obj.id, obj.state_id)
        if previous is None:
            return ModelChanged(ModelChange.CREATED, obj.id, EntityType.OBJECT)
        if _same_object(previous, obj):
            return None
        return ModelChanged(ModelChange.MODIFIED, obj.id, EntityType.OBJECT)

    def remove_object(self, object_id: str) -> ModelChanged | None:
        """Forget an object (its incidents close with it in SAYMON; they are dropped here)."""
        if self.objects.pop(object_id, None) is None:
            return None
        self.entity_states.pop(object_id, None)
        return ModelChanged(ModelChange.REMOVED, object_id, EntityType.OBJECT)

    def upsert_link(self, link: SaymonLink) -> ModelChanged | None:
        """Add or replace a link."""
        previous = self.links.get(link.id)
        self.links[link.id] = link
        if link.state_id is not None:
            self.entity_states.setdefault(link.id, link.state_id)
        if previous is None:
            return ModelChanged(ModelChange.CREATED, link.id, EntityType.LINK)
        if previous.source == link.source and previous.target == link.target:
            return None
        return ModelChanged(ModelChange.MODIFIED, link.id, EntityType.LINK)

    def remove_link(self, link_id: str) -> ModelChanged | None:
        """Forget a link."""
        if self.links.pop(link_id, None) is None:
            return None
        self.entity_states.pop(link_id, None)
        return ModelChanged(ModelChange.REMOVED, link_id, EntityType.LINK)

    # -- snapshots -------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: Snapshot) -> list[Change]:
        """Bring the model to a REST snapshot and return what changed, in a sensible order.

        Objects appear first (so later events can name them), then states, then incidents
        (closed before opened, as they would have happened), then removals.
        """
        self.states = snapshot.states
        self.levels = snapshot.levels
        self.classes = snapshot.classes
        changes: list[Change] = []
        for obj in snapshot.objects.values():
            if (change := self.upsert_object(obj)) is not None:
                changes.append(change)
        for link in snapshot.links.values():
            if (change := self.upsert_link(link)) is not None:
                changes.append(change)
        for entity_id, entity_type, state_id in _states(snapshot):
            if (state := self.apply_state(entity_id, state_id, entity_type)) is not None:
                changes.append(state)
        for incident_id in [i for i in self.incidents if i not in snapshot.incidents]:
            if (closed := self.close_incident(incident_id)) is not None:
                changes.append(closed)
        for incident in snapshot.incidents.values():
            if (opened := self.apply_incident(incident)) is not None:
                changes.append(opened)
        changes.extend(
            removed
            for object_id in [o for o in self.objects if o not in snapshot.objects]
            if (removed := self.remove_object(object_id)) is not None
        )
        changes.extend(
            removed
            for link_id in [link for link in self.links if link not in snapshot.links]
            if (removed := self.remove_link(link_id)) is not None
        )
        return changes


def _same_object(a: SaymonObject, b: SaymonObject) -> bool:
    """Whether two records describe the same device (state and timestamps aside)."""
    return (a.name, a.class_id, a.parent_ids, a.tags) == (b.name, b.class_id, b.parent_ids, b.tags)


def _states(snapshot: Snapshot) -> Iterable[tuple[str, EntityType, str]]:
    for obj in snapshot.objects.values():
        if obj.state_id is not None:
            yield obj.id, EntityType.OBJECT, obj.state_id
    for link in snapshot.links.values():
        if link.state_id is not None:
            yield link.id, EntityType.LINK, link.state_id


def index_by_id[T: (SaymonObject, SaymonLink, SaymonState, IncidentLevel, SaymonClass, Incident)](
    items: Iterable[T],
) -> dict[str, T]:
    """Key records by their SAYMON id (the last one wins on duplicates)."""
    return {item.id: item for item in items}


def active_only(incidents: Mapping[str, Incident]) -> dict[str, Incident]:
    """Keep the incidents that are still open (SAYMON lists cleared ones until they age out)."""
    return {key: value for key, value in incidents.items() if value.is_active}
