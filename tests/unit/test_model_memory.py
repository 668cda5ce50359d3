"""The model's details that mutation testing showed no test held (see docs/dev/mutation.md).

Each test names what would go wrong for users: an incident announced twice, a remembered
clear time that prunes the wrong incidents, a replayed opening without its level, a Problem
sensor that turns off while another incident is open, a name that cannot be shown.
"""

from __future__ import annotations

from collections.abc import Iterable
import dataclasses
from typing import Any

from custom_components.saymon.api.events import ModelChange
from custom_components.saymon.api.model import (
    IncidentChanged,
    IncidentChangeKind,
    ModelChanged,
    SaymonModel,
    Snapshot,
    Source,
    StateChanged,
    index_by_id,
)
from custom_components.saymon.api.models import EntityType, Incident, SaymonLink, SaymonObject

CLEARED = "3"


def obj(object_id: str, state: str = "3") -> SaymonObject:
    return SaymonObject(id=object_id, name=f"N{object_id}", state_id=state)


def incident(incident_id: str, entity: str = "o1", level: str = "1", **kw: Any) -> Incident:
    return Incident(
        id=incident_id, entity_id=entity, entity_type=EntityType.OBJECT, level_id=level, **kw
    )


def cleared(open_form: Incident, at: int) -> Incident:
    """The form SAYMON lists once the incident is cleared (level 3, its clear time)."""
    return Incident(
        id=open_form.id,
        entity_id=open_form.entity_id,
        entity_type=open_form.entity_type,
        level_id=CLEARED,
        last_level_id=open_form.level_id,
        timestamp=open_form.timestamp,
        clear_timestamp=at,
    )


def model_with(*objects: str) -> SaymonModel:
    model = SaymonModel()
    for object_id in objects:
        model.upsert_object(obj(object_id))
    return model


def test_queries_about_what_the_model_does_not_have() -> None:
    model = model_with("o1")
    assert model.incidents_of("nobody") == []
    assert model.level_count("9") == 0
    model.upsert_link(SaymonLink(id="l1", source="o1", target=None))
    assert model.knows_entity(EntityType.LINK, "l1")
    assert not model.knows_entity(EntityType.OBJECT, "l1")
    assert not model.knows_entity(EntityType.LINK, "o1")
    # A link without names shows its ends' object names, "?" for an end SAYMON did not name.
    assert model.entity_name(EntityType.LINK, "l1") == "No1 → ?"


def test_the_problem_stays_on_while_another_incident_is_open() -> None:
    model = model_with("o1")
    first, second = incident("i1", timestamp=10), incident("i2", timestamp=11)
    model.apply_incident(first)
    model.apply_incident(second)
    model.apply_incident(cleared(first, 20))
    assert model.has_incident("o1")
    assert model.incidents_of("o1") == [second]
    model.apply_incident(cleared(second, 21))
    assert not model.has_incident("o1")


def test_a_replayed_opening_has_the_level_the_incident_had() -> None:
    """An incident first seen closed is replayed as opened (at its last level), then closed."""
    model = model_with("o1")
    changes = model.apply_incident(cleared(incident("i1", level="4", timestamp=5), 9))
    assert [(c.kind, c.incident.level_id, c.replayed) for c in changes] == [
        (IncidentChangeKind.OPENED, "4", True),
        (IncidentChangeKind.CLOSED, CLEARED, False),
    ]
    # SAYMON may not say what the level was: the opening then has none (not "Cleared").
    unknown = cleared(incident("i2", level=CLEARED, timestamp=5), 9)
    [opened, _] = model.apply_incident(unknown)
    assert opened.incident.level_id is None


def test_clear_times_remembered_are_saymons() -> None:
    """What the model remembers of a closed incident is when SAYMON cleared it.

    The memory of moved incidents is pruned by those times at every history read: a wrong
    time forgets an incident a later read still reports (announced again) or keeps one long.
    """
    model = model_with("o1", "o2", "o3")
    model.apply_incident(incident("late", "o3", timestamp=500))  # SAYMON's clock is at 500
    one = incident("i1", "o1", timestamp=100)
    model.apply_incident(one)
    model.apply_incident(cleared(one, 200))
    assert model.cleared["i1"] == 200  # its own clear time, not the clock (500)
    # Moved to the history with a final form that carries no clear time: still 200.
    assert model.move_to_history("i1", incident("i1", "o1", level=CLEARED)) == []
    assert model.moved["i1"] == 200
    # The same move announced again: nothing new, and nothing replayed.
    assert model.move_to_history("i1", incident("i1", "o1", level=CLEARED)) == []
    assert model.moved["i1"] == 200
    # Closed straight from open by the move (clear-remove), no clear time given: the clock.
    two = incident("i2", "o2", timestamp=300)
    model.apply_incident(two)
    [closed] = model.move_to_history("i2")
    assert closed.kind is IncidentChangeKind.CLOSED
    assert model.moved["i2"] == 500


def test_removed_objects_and_links_leave_no_state_behind() -> None:
    model = model_with("o1", "o2")
    model.apply_state("o1", "5")
    model.upsert_link(SaymonLink(id="l1", source="o1", target="o2", state_id="3"))
    assert model.remove_object("o1") == ModelChanged(
        ModelChange.REMOVED, "o1", EntityType.OBJECT, name="No1"
    )
    assert model.state_of("o1") is None
    assert model.remove_link("l1") is not None
    assert model.state_of("l1") is None
    # Objects and links SAYMON never gave a state can be removed too.
    model.upsert_object(SaymonObject(id="o3", name="No3", state_id=None))
    assert model.remove_object("o3") is not None
    model.upsert_link(SaymonLink(id="l3", source="o2", target=None))
    assert model.remove_link("l3") is not None
    model.upsert_link(SaymonLink(id="l2", source="o2", target=None))
    assert model.upsert_link(SaymonLink(id="l2", source="o2", target="o2")) == ModelChanged(
        ModelChange.MODIFIED, "l2", EntityType.LINK
    )


def snapshot(
    objects: Iterable[SaymonObject] = (),
    incidents: Iterable[Incident] = (),
    links: Iterable[SaymonLink] = (),
    history: Iterable[Incident] | None = None,
) -> Snapshot:
    return Snapshot(
        objects=index_by_id(objects),
        links=index_by_id(links),
        states={},
        levels={},
        classes={},
        incidents=index_by_id(incidents),
        history=None if history is None else list(history),
    )


def test_a_cleared_incident_reopens_only_from_what_may_reopen_it() -> None:
    """SAYMON's undo-clear (a live event) reopens; a REST read older than the event does not.

    An incident SAYMON moved to its history is never live again; only a snapshot, which is
    SAYMON's own list, may show it active.
    """
    model = model_with("o1", "o2")
    one = incident("i1", "o1", timestamp=1)
    model.apply_incident(one)
    model.apply_incident(cleared(one, 2))
    assert model.apply_incident(one, Source.FETCHED) == []
    assert [c.kind for c in model.apply_incident(one, Source.LIVE)] == [IncidentChangeKind.OPENED]
    two = incident("i2", "o2", timestamp=1)
    model.apply_incident(two)
    model.move_to_history("i2")
    assert model.apply_incident(two, Source.LIVE) == []
    assert model.apply_incident(two, Source.FETCHED) == []
    assert [c.kind for c in model.apply_incident(two, Source.SNAPSHOT)] == [
        IncidentChangeKind.OPENED
    ]


def test_the_clock_is_the_newest_time_an_incident_carries() -> None:
    model = model_with("o1")
    model.apply_incident(incident("i0", level="1"))  # no times at all
    assert model.clock == 0
    model.apply_incident(incident("i1", timestamp=10, acknowledgement_timestamp=30))
    assert model.clock == 30
    model.apply_incident(cleared(incident("i1", timestamp=10), 40))
    assert model.clock == 40
    model.apply_incident(incident("i2", timestamp=50))
    assert model.clock == 50


def test_a_snapshot_leaves_only_what_events_touch_and_reads_links_states() -> None:
    model = SaymonModel.from_snapshot(
        snapshot(
            [obj("o1"), obj("o2")],
            links=[SaymonLink(id="l1", source="o1", target="o2", state_id="3")],
        )
    )
    changes = model.apply_snapshot(
        snapshot(
            [obj("o1", "5"), obj("o2", "5")],
            links=[SaymonLink(id="l1", source="o1", target="o2", state_id="5")],
        ),
        skip_entities={"o1"},
    )
    assert changes == [
        StateChanged("o2", EntityType.OBJECT, "3", "5"),
        StateChanged("l1", EntityType.LINK, "3", "5"),
    ]
    assert model.state_of("o1") == "3"  # its events bring it


def test_a_snapshot_closes_with_the_historys_final_form() -> None:
    """Gone from SAYMON's list: closed, as the history has it; in the history: closed for good.

    SAYMON's two lists are read concurrently, so an incident may appear in both; the history
    wins. A cleared incident no longer listed was moved to the history.
    """
    model = model_with("o1", "o2", "o3", "o4")
    gone = incident("i1", "o1", timestamp=1)
    both = incident("i2", "o2", timestamp=1)
    kept = incident("i4", "o4", timestamp=1)
    for form in (gone, both, kept):
        model.apply_incident(form)
    aged = incident("i3", "o3", timestamp=1)
    model.apply_incident(aged)
    model.apply_incident(cleared(aged, 2))
    listed_cleared = incident("i5", "o4", timestamp=1)
    model.apply_incident(listed_cleared)
    model.apply_incident(cleared(listed_cleared, 2))
    final = dataclasses.replace(cleared(gone, 5), text="resolved by the night shift")
    changes = model.apply_snapshot(
        snapshot(
            [obj(o) for o in ("o1", "o2", "o3", "o4")],
            incidents=[both, kept, cleared(listed_cleared, 2)],
            history=[final, cleared(both, 6)],
        )
    )
    closed = {
        c.incident.id: c.incident
        for c in changes
        if isinstance(c, IncidentChanged) and c.kind is IncidentChangeKind.CLOSED
    }
    assert set(closed) == {"i1", "i2"}
    assert closed["i1"].text == "resolved by the night shift"
    assert closed["i2"].clear_timestamp == 6
    assert set(model.incidents) == {"i4"}
    assert "i3" not in model.cleared  # moved, and older than the history read: forgotten
    assert not model.knows_incident("i3")
    assert "i5" in model.cleared


def test_history_reads_replay_each_missed_incident_once_in_order() -> None:
    """Incidents that opened and moved to SAYMON's history while no event could tell.

    The first history read only sets the mark; later reads replay what was cleared since, in
    the order the incidents opened, once, and remember what the next read lists again.
    """
    model = model_with("o1", "o2", "o3")
    old = cleared(incident("old", "o1", timestamp=10), 100)
    assert model.apply_snapshot(snapshot([obj("o1"), obj("o2"), obj("o3")], history=[old])) == []
    assert model.history_mark == 100
    assert model.moved == {"old": 100}  # the next read lists it again: not news then
    late = cleared(incident("a-late", "o2", timestamp=30), 150)  # ids sort the other way
    early = cleared(incident("b-early", "o3", timestamp=20), 140)
    read = snapshot([obj("o1"), obj("o2"), obj("o3")], history=[old, late, early])
    changes = model.apply_snapshot(read)
    assert [(c.kind.value, c.incident.id) for c in changes if isinstance(c, IncidentChanged)] == [
        ("opened", "b-early"),
        ("closed", "b-early"),
        ("opened", "a-late"),
        ("closed", "a-late"),
    ]
    assert model.history_mark == 150
    assert model.apply_snapshot(read) == []  # the same read again: nothing new
    assert model.moved == {"a-late": 150}


def test_history_reads_skip_what_events_bring() -> None:
    model = model_with("o1", "o2")
    model.apply_snapshot(snapshot([obj("o1"), obj("o2")], history=[]))
    known = incident("k", "o1", timestamp=5)
    model.apply_incident(known)
    model.apply_incident(cleared(known, 50))
    missed = cleared(incident("m", "o2", timestamp=6), 60)
    held = cleared(incident("h", "o2", timestamp=7), 70)
    changes = model.apply_snapshot(
        snapshot([obj("o1"), obj("o2")], history=[cleared(known, 50), missed, held]),
        skip_incidents={"h"},
    )
    assert [(c.kind.value, c.incident.id) for c in changes if isinstance(c, IncidentChanged)] == [
        ("opened", "m"),
        ("closed", "m"),
    ]


def test_a_snapshot_may_show_a_moved_incident_active_again() -> None:
    """SAYMON's own list is the truth for what no newer event touched."""
    model = model_with("o1")
    form = incident("i1", "o1", timestamp=1)
    model.apply_incident(form)
    model.move_to_history("i1")
    changes = model.apply_snapshot(snapshot([obj("o1")], incidents=[form]))
    assert [(c.kind.value, c.incident.id) for c in changes if isinstance(c, IncidentChanged)] == [
        ("opened", "i1")
    ]
    assert model.level_count("1") == 1
    assert model.level_count("2") == 0


def test_a_late_word_about_a_pruned_incident_says_nothing_until_a_snapshot_lists_it() -> None:
    """An incident pruned from the memory of moved ones stays accounted for.

    A live or read form that arrives after the prune (its event was still on its way) would
    otherwise announce it again: opened for an active form, opened and closed for a final
    one. SAYMON's own list, a snapshot, may still show it active: that reopens it.
    """
    objects = [obj("o1"), obj("o2")]
    old = cleared(incident("old", "o1", timestamp=10), 100)
    model = SaymonModel.from_snapshot(snapshot(objects))
    model.apply_snapshot(snapshot(objects, history=[old]))  # the mark: 100
    newer = cleared(incident("new", "o2", timestamp=30), 150)
    model.apply_snapshot(snapshot(objects, history=[old, newer]))  # "old" is pruned
    assert not model.knows_incident("old")
    active = incident("old", "o1", timestamp=10, acknowledgement_timestamp=20)
    assert model.apply_incident(active, Source.LIVE) == []
    assert model.apply_incident(old, Source.FETCHED) == []
    assert model.move_to_history("old", old) == []
    assert not model.knows_incident("old")
    reopened = model.apply_incident(active, Source.SNAPSHOT)
    assert [(c.kind, c.incident.id) for c in reopened] == [(IncidentChangeKind.OPENED, "old")]
