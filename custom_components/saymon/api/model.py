"""In-memory picture of one SAYMON server, and the changes applied to it.

Every update — a live Comet event, one incident read over REST, or a REST snapshot taken after
a reconnect — goes through the same idempotent operations here, each returning the changes it
made (nothing when the model already said so). The hub fires Home Assistant events only for
returned changes, which is what makes replay after a reconnect exact: what was missed is fired
once, marked ``replayed``, and what had already been seen live is not fired again.

An incident's life in SAYMON has three stages, and the model follows all of them:

1. *active*: listed by ``GET /incidents``, announced by ``incidents`` events (changeType 1/2);
2. *cleared*: still listed by ``GET /incidents`` (with ``clearTimestamp`` and level 3) until
   SAYMON's incident timeout (an hour by default), announced as a modification (changeType 2);
3. *in the history*: announced by changeType 3, listed by ``GET /incident-history`` only.

Home Assistant sees one ``closed`` at stage 2 (or at 3 when 2 was skipped, e.g. clear-remove).
To never announce an incident twice the model remembers the ids SAYMON can still send: those it
lists as cleared (:attr:`SaymonModel.cleared`, bounded by SAYMON's own list) and those moved to
the history since the last history read (:attr:`SaymonModel.moved`, pruned by every read). No
count-based eviction: a busy server cannot make the model forget what it must not re-announce.

No Home Assistant imports: this module is pure data and can be tested and benchmarked alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from itertools import islice

from .events import ModelChange
from .metrics import MetricsChanged, MetricStore
from .models import (
    LEVEL_CLEARED,
    EntityType,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)
from .server_events import ServerEvent


class IncidentChangeKind(StrEnum):
    """What happened to an incident, as the ``type`` of ``saymon_incident`` events."""

    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


FORGOTTEN_LIMIT = 50_000
"""Pruned incident ids remembered against late events (about 5 MB at most): as many as the
Comet client's inbound queue can hold, so every event still on its way finds its id here."""


class Source(Enum):
    """Where an incident's form comes from, which decides how far it is trusted.

    ``LIVE``: a Comet event. Comet delivers in order, so a live form is the newest there is
    (the hub reconciles what was queued around a resync). ``FETCHED``: one incident read over
    REST because an event carried only its id; the read may predate a later event, so it never
    reopens what is closed. ``SNAPSHOT``: a resync's list of active incidents; it is the truth
    for every incident no newer event touched.
    """

    LIVE = "live"
    FETCHED = "fetched"
    SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class StateChanged:
    """An object or link moved from ``old_state_id`` to ``new_state_id``."""

    entity_id: str
    entity_type: EntityType
    old_state_id: str | None
    new_state_id: str


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """An incident was opened, updated or closed; ``incident`` is its latest known form.

    ``replayed`` marks the opening the model reconstructs for an incident first seen already
    closed (it happened while no event could tell).
    """

    kind: IncidentChangeKind
    incident: Incident
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ModelChanged:
    """An object or link was created, modified or removed in SAYMON.

    ``name`` is the name the entity had when it was removed (afterwards the model cannot tell).
    """

    change: ModelChange
    entity_id: str
    entity_type: EntityType
    user_id: str | None = None
    user_login: str | None = None
    name: str | None = None


type Change = StateChanged | IncidentChanged | ModelChanged | ServerEvent | MetricsChanged
"""What the live session reports; a server event (a trap, a job...) and new metric values are
changes of their own."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the REST API said at one moment (the initial picture, or a resync)."""

    objects: dict[str, SaymonObject]
    links: dict[str, SaymonLink]
    states: dict[str, SaymonState]
    levels: dict[str, IncidentLevel]
    classes: dict[str, SaymonClass]
    incidents: dict[str, Incident]
    """Everything ``GET /incidents`` lists: active incidents and cleared ones not yet aged out."""
    history: Sequence[Incident] | None = None
    """Recently closed incidents (SAYMON's incident history); ``None`` when not read."""


@dataclass(slots=True)
class SaymonModel:
    """Objects, links and incidents of one server, kept current by events."""

    objects: dict[str, SaymonObject] = field(default_factory=dict)
    links: dict[str, SaymonLink] = field(default_factory=dict)
    states: dict[str, SaymonState] = field(default_factory=dict)
    levels: dict[str, IncidentLevel] = field(default_factory=dict)
    classes: dict[str, SaymonClass] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    """Open incidents (stage 1)."""
    entity_states: dict[str, str] = field(default_factory=dict)
    """Current state id of every object and link (kept apart so a state change is one store)."""
    cleared: dict[str, int] = field(default_factory=dict)
    """Closed incidents SAYMON still lists as cleared (stage 2), with their clear time."""
    moved: dict[str, int] = field(default_factory=dict)
    """Incidents moved to the history (stage 3) that a history read could still report as new:
    cleared at or after :attr:`history_mark`. Pruned whenever the mark moves on."""
    forgotten: dict[str, None] = field(default_factory=dict)
    """Incidents pruned from :attr:`moved`: fully accounted for, yet an event about them may
    still be on its way. The newest :data:`FORGOTTEN_LIMIT` ids, oldest dropped first."""
    _by_entity: dict[str, set[str]] = field(default_factory=dict)
    _level_counts: dict[str, int] = field(default_factory=dict)
    reported_count: int | None = None
    """The total SAYMON last announced in ``incident-count`` (a consistency check)."""
    history_mark: int | None = None
    """Newest ``clearTimestamp`` (SAYMON's clock) of the incident history already accounted
    for; ``None`` until the history was first read."""
    clock: int = 0
    """The newest SAYMON timestamp seen on any incident (ms): SAYMON's clock, as far as known.
    Stands in for the clear time of an incident closed by an event that carried none."""
    listed_cleared: int = 0
    """How many cleared incidents the last snapshot listed (the expected size of
    :attr:`cleared`; the hub resyncs when the memory outgrows what SAYMON can still send)."""
    metrics: MetricStore = field(default_factory=MetricStore)
    """The latest metrics (``stat``) of the objects and links whose metrics are followed."""

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

    def knows_incident(self, incident_id: str) -> bool:
        """Whether the incident is open, cleared or recently moved to the history here."""
        return (
            incident_id in self.incidents
            or incident_id in self.cleared
            or (incident_id in self.moved)
        )

    def knows_entity(self, entity_type: EntityType, entity_id: str | None) -> bool:
        """Whether an incident's object or link is in the model."""
        if entity_id is None:
            return False
        collection = self.links if entity_type is EntityType.LINK else self.objects
        return entity_id in collection

    @property
    def closed_memory(self) -> int:
        """Closed incident ids remembered (cleared in SAYMON's list, or recently moved)."""
        return len(self.cleared) + len(self.moved)

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
        self, incident: Incident, source: Source = Source.LIVE
    ) -> list[IncidentChanged]:
        """Record an incident's latest form (stage 1 or 2): opened, updated, closed or nothing.

        A cleared form closes an open incident; one the model never saw is replayed as opened
        and closed (it happened while no event could tell). An active form of a closed
        incident reopens it only from a live event about a cleared incident (SAYMON's
        undo-clear) or from a snapshot; SAYMON never brings an incident back from its history.
        """
        self._observe(incident)
        if not incident.is_active:
            return self._close(incident, moved=False, source=source)
        incident_id = incident.id
        if self._late(incident_id, source):
            return []
        if incident_id in self.cleared:
            if source is Source.FETCHED:
                return []
            del self.cleared[incident_id]
        elif incident_id in self.moved:
            if source is not Source.SNAPSHOT:
                return []
            del self.moved[incident_id]
        previous = self.incidents.get(incident_id)
        if previous == incident:
            return []
        self.incidents[incident_id] = incident
        self._count(incident, 1)
        if previous is None:
            self._index(incident)
            return [IncidentChanged(IncidentChangeKind.OPENED, incident)]
        self._count(previous, -1)
        if previous.entity_id != incident.entity_id:
            self._unindex(previous)
            self._index(incident)
        return [IncidentChanged(IncidentChangeKind.UPDATED, incident)]

    def move_to_history(
        self, incident_id: str, final: Incident | None = None, source: Source = Source.LIVE
    ) -> list[IncidentChanged]:
        """SAYMON moved an incident to its history (stage 3; changeType 3).

        Closes it when it was still open (SAYMON skipped the cleared stage, e.g. clear-remove),
        replays it when the model never saw it and ``final`` tells what it was, and otherwise
        only notes that SAYMON will not list it as cleared any more.
        """
        if final is not None:
            self._observe(final)
        if incident_id in self.incidents or final is not None:
            return self._close(final, moved=True, incident_id=incident_id, source=source)
        if incident_id in self.cleared:
            self.moved[incident_id] = self.cleared.pop(incident_id)
        return []

    def _close(
        self,
        final: Incident | None,
        *,
        moved: bool,
        source: Source,
        incident_id: str | None = None,
    ) -> list[IncidentChanged]:
        """Bring an incident to stage 2 (``moved``: 3); report a close only the first time.

        A live or read form of an incident the model has :attr:`forgotten` is a late word about
        one already accounted for (pruned once no history read could report it as new, while its
        event was still on its way): nothing. One the model never knew is replayed, whatever
        its clear time: a resync leaves the incidents of held events to those events.
        """
        incident_id = final.id if final is not None else incident_id
        assert incident_id is not None  # noqa: S101 - one of the two is always given
        if self._late(incident_id, source):
            return []
        previous = self.incidents.pop(incident_id, None)
        remembered = self.cleared.pop(incident_id, None)
        if remembered is None:
            remembered = self.moved.pop(incident_id, None)
        changes: list[IncidentChanged] = []
        if previous is not None:
            self._unindex(previous)
            self._count(previous, -1)
            changes.append(IncidentChanged(IncidentChangeKind.CLOSED, final or previous))
        elif remembered is None and final is not None:
            changes = self._replay(final)
        if final is not None and final.clear_timestamp is not None:
            cleared_at = final.clear_timestamp
        else:
            cleared_at = remembered if remembered is not None else self.clock
        (self.moved if moved else self.cleared)[incident_id] = cleared_at
        return changes

    def _replay(self, closed: Incident) -> list[IncidentChanged]:
        """A closed incident the model never saw open: its opening, then its closing."""
        level = closed.last_level_id if closed.last_level_id != LEVEL_CLEARED else None
        opened = replace(closed, level_id=level, clear_timestamp=None)
        return [
            IncidentChanged(IncidentChangeKind.OPENED, opened, replayed=True),
            IncidentChanged(IncidentChangeKind.CLOSED, closed),
        ]

    def _observe(self, incident: Incident) -> None:
        """Advance :attr:`clock` with the newest timestamp an incident carries."""
        newest = max(
            incident.timestamp or 0,
            incident.clear_timestamp or 0,
            incident.acknowledgement_timestamp or 0,
        )
        self.clock = max(self.clock, newest)

    def _count(self, incident: Incident, delta: int) -> None:
        level = incident.level_id
        if level is not None:
            self._level_counts[level] = self._level_counts.get(level, 0) + delta

    def _index(self, incident: Incident) -> None:
        if incident.entity_id is not None:
            self._by_entity.setdefault(incident.entity_id, set()).add(incident.id)

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
        """Forget an object; its incidents are left to SAYMON's word.

        SAYMON does not document what becomes of a deleted object's incidents. Closing them here
        would fire ``closed`` for incidents SAYMON may still list; they close by SAYMON's events,
        or, when SAYMON drops them silently, by the resync that its ``incident-count`` asks for.
        """
        obj = self.objects.get(object_id)
        if obj is None:
            return None
        name = obj.name
        del self.objects[object_id]
        self.entity_states.pop(object_id, None)
        return ModelChanged(ModelChange.REMOVED, object_id, EntityType.OBJECT, name=name)

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
        name = self.entity_name(EntityType.LINK, link_id)
        if self.links.pop(link_id, None) is None:
            return None
        self.entity_states.pop(link_id, None)
        return ModelChanged(ModelChange.REMOVED, link_id, EntityType.LINK, name=name)

    # -- snapshots -------------------------------------------------------------------------

    def apply_snapshot(
        self,
        snapshot: Snapshot,
        *,
        skip_entities: Collection[str] = (),
        skip_incidents: Collection[str] = (),
    ) -> list[Change]:
        """Bring the model to a REST snapshot and return what changed, in a sensible order.

        Objects appear first (so later events can name them), then states, then incidents
        (closed before opened, as they would have happened), then removals.

        ``skip_entities`` / ``skip_incidents``: states and incidents that Comet events received
        after the snapshot was requested will bring up to date. The snapshot may be older or
        newer than those events; applying it to them as well would show a change twice, or
        step back in time before the events step forward again.
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
            if entity_id in skip_entities:
                continue
            if (state := self.apply_state(entity_id, state_id, entity_type)) is not None:
                changes.append(state)
        changes.extend(self._apply_incident_lists(snapshot, skip_incidents))
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

    def _apply_incident_lists(
        self, snapshot: Snapshot, skip: Collection[str]
    ) -> list[IncidentChanged]:
        """Reconcile the open and cleared incidents with SAYMON's two lists.

        The history wins over the (concurrently read) list of active incidents: an incident in
        the history is closed for good. Incidents that left both lists moved to the history
        while no event could tell.
        """
        history = {record.id: record for record in snapshot.history or ()}
        listed = {
            key: value
            for key, value in snapshot.incidents.items()
            if key not in history and key not in skip
        }
        changes: list[IncidentChanged] = []
        # Open here, gone from SAYMON's list: closed (its final form from the history, if any).
        for incident_id in [i for i in self.incidents if i not in listed and i not in skip]:
            changes.extend(
                self.move_to_history(incident_id, history.get(incident_id), Source.SNAPSHOT)
            )
        # Cleared here, no longer listed: SAYMON moved them to its history.
        for incident_id in [i for i in self.cleared if i not in listed and i not in skip]:
            self.move_to_history(incident_id, source=Source.SNAPSHOT)
        changes.extend(self._replay_history(snapshot.history, skip))
        for incident in sorted(listed.values(), key=lambda item: item.is_active):
            changes.extend(self.apply_incident(incident, Source.SNAPSHOT))
        self.listed_cleared = sum(not incident.is_active for incident in listed.values())
        return changes

    def _late(self, incident_id: str, source: Source) -> bool:
        """Whether a form is a late word about a forgotten incident (a snapshot revives it)."""
        if source is Source.SNAPSHOT:
            self.forgotten.pop(incident_id, None)
            return False
        return incident_id in self.forgotten

    def _forget(self, incident_ids: Iterable[str]) -> None:
        """Remember pruned ids (bounded) so a late event about one says nothing."""
        forgotten = self.forgotten
        for incident_id in incident_ids:
            forgotten[incident_id] = None
        for incident_id in list(islice(forgotten, max(0, len(forgotten) - FORGOTTEN_LIMIT))):
            del forgotten[incident_id]

    def _replay_history(
        self, history: Sequence[Incident] | None, skip: Collection[str]
    ) -> list[IncidentChanged]:
        """Incidents that opened *and* moved to the history while the stream was down.

        The list of active incidents cannot show them; SAYMON's incident history can. The
        first history read only sets :attr:`history_mark`; later ones replay every incident
        cleared since then that the model does not know. Then :attr:`moved` forgets what no
        later read can report as new (cleared before the new mark).
        """
        if history is None:
            return []
        newest = max((record.clear_timestamp or 0 for record in history), default=0)
        mark, self.history_mark = self.history_mark, max(self.history_mark or 0, newest)
        changes: list[IncidentChanged] = []
        new_mark = self.history_mark
        for record in sorted(history, key=lambda item: (item.timestamp or 0, item.id)):
            cleared_at = record.clear_timestamp or 0
            if record.id in skip or self.knows_incident(record.id):
                continue
            if mark is not None and cleared_at >= mark:
                changes.extend(self.move_to_history(record.id, record, Source.SNAPSHOT))
            elif cleared_at >= new_mark:  # old news now, but the next read lists it again
                self.moved[record.id] = cleared_at
        kept = {key: when for key, when in self.moved.items() if when >= new_mark}
        self._forget(key for key in self.moved if key not in kept)
        self.moved = kept
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


def children_index(objects: Iterable[SaymonObject]) -> dict[str, list[str]]:
    """Map each object id to its children's ids, from ``parent_ids`` (always present)."""
    children: dict[str, list[str]] = {}
    for obj in objects:
        for parent in obj.parent_ids:
            children.setdefault(parent, []).append(obj.id)
    return children


def subtree_ids(objects: Mapping[str, SaymonObject], roots: Collection[str]) -> set[str]:
    """Return ``roots`` (those that exist) and all their descendants; cycles are tolerated."""
    children = children_index(objects.values())
    seen: set[str] = set()
    stack = [root for root in roots if root in objects]
    while stack:
        object_id = stack.pop()
        if object_id in seen:
            continue
        seen.add(object_id)
        stack.extend(children.get(object_id, ()))
    return seen


def index_by_id[T: (SaymonObject, SaymonLink, SaymonState, IncidentLevel, SaymonClass, Incident)](
    items: Iterable[T],
) -> dict[str, T]:
    """Key records by their SAYMON id (the last one wins on duplicates)."""
    return {item.id: item for item in items}
