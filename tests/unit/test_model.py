"""The integration's model: idempotent changes, incremental counts and snapshot diffs."""

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
    StateChanged,
    index_by_id,
    subtree_ids,
)
from custom_components.saymon.api.models import (
    EntityType,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)
from custom_components.saymon.scope import Scope, default_scope_options, object_path
from custom_components.saymon.states import StateOptions, state_key


def obj(object_id: str, parent: str | None = None, state: str = "3", **kw: Any) -> SaymonObject:
    return SaymonObject(
        id=object_id,
        name=f"N{object_id}",
        state_id=state,
        parent_ids=(parent,) if parent else (),
        **kw,
    )


def incident(incident_id: str, entity: str, level: str = "1", **kw: Any) -> Incident:
    return Incident(
        id=incident_id, entity_id=entity, entity_type=EntityType.OBJECT, level_id=level, **kw
    )


def snapshot(
    objects: Iterable[SaymonObject],
    incidents: Iterable[Incident] = (),
    links: Iterable[SaymonLink] = (),
) -> Snapshot:
    return Snapshot(
        objects=index_by_id(objects),
        links=index_by_id(links),
        states=index_by_id(
            [
                SaymonState("3", "Working"),
                SaymonState("5", "Alarm"),
                SaymonState("101", "Maintenance"),
            ]
        ),
        levels=index_by_id(
            [
                IncidentLevel("1", "Alarm"),
                IncidentLevel("2", "Warning"),
                IncidentLevel("3", "Cleared"),
            ]
        ),
        classes=index_by_id([SaymonClass("10", "Root")]),
        incidents=index_by_id(incidents),
    )


def test_state_changes_are_idempotent() -> None:
    model = SaymonModel.from_snapshot(snapshot([obj("a"), obj("b", "a")]))
    assert model.apply_state("a", "3") is None
    assert model.apply_state("a", "5") == StateChanged("a", EntityType.OBJECT, "3", "5")
    assert model.apply_state("a", "5") is None
    assert model.apply_state("unknown", "5") is None
    assert model.apply_state("unknown-link", "5", EntityType.LINK) is None
    assert model.state_name("5") == "Alarm"
    assert model.state_name("77") == "77"
    assert model.state_name(None) is None


def test_incident_lifecycle_and_counts() -> None:
    model = SaymonModel.from_snapshot(snapshot([obj("a"), obj("b")]))
    first = incident("i1", "a")
    assert model.apply_incident(first) == [IncidentChanged(IncidentChangeKind.OPENED, first)]
    assert model.apply_incident(first) == []
    assert model.apply_incident(dataclasses.replace(first, owner_name="A")) == []  # no change
    assert model.level_counts() == {"1": 1, "2": 0, "3": 0}
    warning = dataclasses.replace(first, level_id="2")
    assert model.apply_incident(warning) == [IncidentChanged(IncidentChangeKind.UPDATED, warning)]
    assert model.level_count("1") == 0
    assert model.level_count("2") == 1
    moved = dataclasses.replace(warning, entity_id="b")
    assert model.apply_incident(moved) != []
    assert not model.has_incident("a")
    assert model.incidents_of("b") == [moved]
    cleared = dataclasses.replace(moved, level_id="3", clear_timestamp=5)
    assert model.apply_incident(cleared) == [IncidentChanged(IncidentChangeKind.CLOSED, cleared)]
    assert model.cleared == {"i1": 5}
    assert model.move_to_history("i1") == []  # SAYMON's incident timeout: nothing new
    assert model.cleared == {}
    assert model.moved == {"i1": 5}
    assert model.level_counts() == {"1": 0, "2": 0, "3": 0}
    assert not model.has_incident("b")
    orphan = Incident(id="o", entity_id=None, entity_type=EntityType.OBJECT, level_id=None)
    assert model.apply_incident(orphan) != []
    assert model.move_to_history("o") != []  # clear-remove: straight to the history
    assert model.level_name("2") == "Warning"
    assert model.level_name("9") == "9"
    assert model.level_name(None) is None


def test_snapshot_diff_reports_only_what_changed() -> None:
    model = SaymonModel.from_snapshot(
        snapshot(
            [obj("a"), obj("b", "a"), obj("c", "a")], [incident("i1", "b"), incident("i2", "c")]
        )
    )
    changes = model.apply_snapshot(
        snapshot(
            [obj("a", state="5"), obj("b", "a"), obj("d", "a")],
            [incident("i1", "b"), incident("i3", "a"), incident("i4", "b", clear_timestamp=1)],
        )
    )
    replayed = incident("i4", "b", clear_timestamp=1)
    assert changes == [
        ModelChanged(ModelChange.CREATED, "d", EntityType.OBJECT),
        StateChanged("a", EntityType.OBJECT, "3", "5"),
        IncidentChanged(IncidentChangeKind.CLOSED, incident("i2", "c")),
        # Listed as cleared, never seen: it opened and cleared while no event could tell.
        IncidentChanged(
            IncidentChangeKind.OPENED,
            dataclasses.replace(replayed, clear_timestamp=None, level_id=None),
            replayed=True,
        ),
        IncidentChanged(IncidentChangeKind.CLOSED, replayed),
        IncidentChanged(IncidentChangeKind.OPENED, incident("i3", "a")),
        ModelChanged(ModelChange.REMOVED, "c", EntityType.OBJECT, name="Nc"),
    ]
    assert (
        model.apply_snapshot(
            snapshot(
                [obj("a", state="5"), obj("b", "a"), obj("d", "a")],
                [incident("i1", "b"), incident("i3", "a")],
            )
        )
        == []
    )


def test_object_and_link_upserts() -> None:
    model = SaymonModel.from_snapshot(snapshot([obj("a")]))
    assert model.upsert_object(obj("a")) is None
    assert model.upsert_object(dataclasses.replace(obj("a"), name="Renamed")) == ModelChanged(
        ModelChange.MODIFIED, "a", EntityType.OBJECT
    )
    assert model.remove_object("a") == ModelChanged(
        ModelChange.REMOVED, "a", EntityType.OBJECT, name="Renamed"
    )
    assert model.remove_object("a") is None
    link = SaymonLink(id="l", source="a", target="b", state_id="3", source_name="A")
    assert model.upsert_link(link) == ModelChanged(ModelChange.CREATED, "l", EntityType.LINK)
    assert model.upsert_link(link) is None
    assert model.upsert_link(dataclasses.replace(link, target="c")) is not None
    assert model.apply_state("l", "5", EntityType.LINK) == StateChanged(
        "l", EntityType.LINK, "3", "5"
    )
    assert model.entity_name(EntityType.LINK, "l") == "A → c"
    assert model.entity_name(EntityType.LINK, "zz") is None
    assert model.entity_name(EntityType.OBJECT, None) is None
    assert model.remove_link("l") is not None
    assert model.remove_link("l") is None
    changes = model.apply_snapshot(snapshot([obj("x")], links=[link]))
    assert ModelChanged(ModelChange.CREATED, "l", EntityType.LINK) in changes
    # A removed link is named as it was: the model cannot tell afterwards.
    assert ModelChanged(
        ModelChange.REMOVED, "l", EntityType.LINK, name="A → b"
    ) in model.apply_snapshot(snapshot([obj("x")]))


def test_scope_selection() -> None:
    objects = index_by_id(
        [
            obj("root"),
            obj("site", "root"),
            obj("rack", "site"),
            obj("host", "rack", tags=("prod",)),
            obj("other", "root", class_id="14"),
            obj("loop1", "loop2"),
            obj("loop2", "loop1"),
        ]
    )
    assert Scope().select(objects) == set(objects)
    assert subtree_ids(objects, ["site", "missing"]) == {"site", "rack", "host"}
    assert subtree_ids(objects, ["loop1"]) == {"loop1", "loop2"}
    selected = Scope.from_options(
        {
            "scope": "selected",
            "parents": ["rack"],
            "tags": ["prod"],
            "classes": ["14"],
            "links": True,
        }
    )
    assert selected.links
    assert selected.select(objects) == {"rack", "host", "other"}
    assert Scope.from_options({"scope": "selected"}).select(objects) == set()
    assert object_path(objects, "host") == "Nroot / Nsite / Nrack / Nhost"
    assert object_path(objects, "loop1").count("/") <= 2
    assert default_scope_options(300)["scope"] == "all"
    assert default_scope_options(301)["scope"] == "selected"


def test_state_keys() -> None:
    model = SaymonModel.from_snapshot(snapshot([obj("a")]))
    assert state_key(model, "5") == "alarm"
    assert state_key(model, "101") == "Maintenance"
    assert state_key(model, None) is None
    options = StateOptions()(model)
    assert options[:8] == [
        "created",
        "working",
        "overloaded",
        "alarm",
        "stopped",
        "no_data",
        "down",
        "disabled",
    ]
    assert options[-1] == "Maintenance"
