"""In-memory picture of one SAYMON server, and the changes applied to it.

Every update — a live Comet event or a REST snapshot taken after a reconnect — goes through
the same idempotent operations here, each returning the change it made (or ``None`` when the
model already said so). The hub fires Home Assistant events only for returned changes, which
is what makes replay after a reconnect exact: what was missed is fired once, marked
``replayed``, and what had already been seen live is not fired again.

No Home Assistant imports: this module is pure data and can be tested and benchmarked alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from .api.events import ModelChange
from .api.models import (
    LEVEL_CLEARED,
    EntityType,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)

CLOSED_MEMORY = 10_000
"""How many closed incident ids the model remembers to ignore stale events about them."""


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
    history: Sequence[Incident] | None = None
    """Recently closed incidents (SAYMON's incident history); ``None`` when not read."""


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
    _closed: dict[str, None] = field(default_factory=dict)
    """Recently closed incident ids, oldest first (at most :data:`CLOSED_MEMORY`)."""
    history_mark: int | None = None
    """Newest ``clearTimestamp`` (SAYMON's clock) of the incident history already accounted
    for; ``None`` until the history was first read."""

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

    def apply_incident(
        self, incident: Incident, *, authoritative: bool = False
    ) -> IncidentChanged | None:
        """Record an incident's latest form: opened, updated, closed, or nothing new.

        A closed incident never opens again in SAYMON (it moved to the history), so an active
        form of one that was closed here is a stale event (e.g. held during a resync whose
        snapshot already saw it closed) and is ignored, unless ``authoritative`` (a REST
        snapshot says it is active: the earlier close was wrong).
        """
        if not incident.is_active:
            return self.close_incident(incident.id, incident)
        if incident.id in self._closed:
            if not authoritative:
                return None
            del self._closed[incident.id]
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
        self._remember_closed(incident_id)
        previous = self.incidents.pop(incident_id, None)
        if previous is None:
            return None
        self._unindex(previous)
        self._count(previous, -1)
        return IncidentChanged(IncidentChangeKind.CLOSED, final or previous)

    def _remember_closed(self, incident_id: str) -> None:
        self._closed[incident_id] = None
        if len(self._closed) > CLOSED_MEMORY:
            del self._closed[next(iter(self._closed))]

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
        history = {record.id: record for record in snapshot.history or ()}
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
        changes.extend(self._replay_history(snapshot.history))
        # An incident in the history is closed for good, even if the (concurrently read)
        # list of active incidents still had it.
        active = {key: value for key, value in snapshot.incidents.items() if key not in history}
        for incident_id in [i for i in self.incidents if i not in active]:
            if (closed := self.close_incident(incident_id, history.get(incident_id))) is not None:
                changes.append(closed)
        for incident in active.values():
            if (opened := self.apply_incident(incident, authoritative=True)) is not None:
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

    def _replay_history(self, history: Sequence[Incident] | None) -> list[Change]:
        """Incidents that opened *and* closed while the event stream was down: both, once.

        The list of active incidents cannot show them; SAYMON's incident history can. The
        first history read only sets :attr:`history_mark`; later ones replay every incident
        closed since then that the model has never seen (not active here, not closed here).
        Incidents still active here are left to the snapshot, which closes them.
        """
        if history is None:
            return []
        newest = max((record.clear_timestamp or 0 for record in history), default=0)
        mark, self.history_mark = self.history_mark, max(self.history_mark or 0, newest)
        if mark is None:  # the first read: what is in the history now is old news
            for record in history:
                self._remember_closed(record.id)
            return []
        changes: list[Change] = []
        for record in sorted(history, key=lambda item: (item.timestamp or 0, item.id)):
            if (record.clear_timestamp or 0) >= mark:
                changes.extend(self.replay_unseen(record))
        return changes

    def replay_unseen(self, closed: Incident) -> list[IncidentChanged]:
        """A closed incident the model never saw open: its opening, then its closing.

        Nothing when the model knows it (active here: the caller closes it; closed here: an
        old story). The opening shows the level the incident had (``lastState``).
        """
        if closed.id in self.incidents or closed.id in self._closed:
            return []
        level = closed.last_level_id if closed.last_level_id != LEVEL_CLEARED else None
        changes: list[IncidentChanged] = []
        if (
            opened := self.apply_incident(replace(closed, level_id=level, clear_timestamp=None))
        ) is not None:
            changes.append(opened)
        if (change := self.close_incident(closed.id, closed)) is not None:
            changes.append(change)
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
