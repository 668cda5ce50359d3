"""Parsing of REST records and Comet events: tolerant of real SAYMON variants, strict otherwise."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.saymon.api.errors import SaymonProtocolError
from custom_components.saymon.api.events import (
    IncidentChange,
    IncidentCountEvent,
    IncidentEvent,
    ModelChange,
    ModelChangedEvent,
    RawEvent,
    StateChangeEvent,
    StatEvent,
    parse_event,
    parse_incident_count,
)
from custom_components.saymon.api.models import (
    CurrentUser,
    EntityType,
    Incident,
    IncidentLevel,
    SaymonClass,
    SaymonLink,
    SaymonObject,
    SaymonState,
)

DOC_INCIDENT: dict[str, Any] = {
    "id": "636363ca86bfdcde76a733c5",
    "entityId": 816,
    "entityType": 1,
    "type": 1,
    "data": "{}",
    "lastState": 4,
    "localTimestamp": None,
    "parentChainId": 816,
    "reason": {"code": 10},
    "state": 4,
    "text": "No data",
    "timestamp": 1667457994374,
    "acknowledgedBy": "62c2f3ce80c8654892764d56",
    "acknowledgementTimestamp": 1669288291473,
    "owner": {"_id": "x", "name": "Core switch"},
}


def test_documented_incident() -> None:
    incident = Incident.from_json(DOC_INCIDENT)
    assert incident.id == "636363ca86bfdcde76a733c5"
    assert incident.entity_id == "816"  # numbers become strings
    assert incident.entity_type is EntityType.OBJECT
    assert incident.level_id == "4"
    assert incident.last_level_id == "4"
    assert incident.local_timestamp is None
    assert incident.acknowledged_by == "62c2f3ce80c8654892764d56"
    assert incident.owner_name == "Core switch"
    assert incident.is_active


def test_cleared_incident_is_not_active() -> None:
    cleared = Incident.from_json({**DOC_INCIDENT, "state": 3, "clearTimestamp": 1666687954577})
    assert not cleared.is_active
    assert not Incident.from_json({**DOC_INCIDENT, "clearTimestamp": 1}).is_active


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, EntityType.OBJECT),
        ("1", EntityType.OBJECT),
        ("obj", EntityType.OBJECT),
        ("Object", EntityType.OBJECT),
        (2, EntityType.LINK),
        ("link", EntityType.LINK),
        (" links ", EntityType.LINK),
        (3, EntityType.FLOW),
        ("flow", EntityType.FLOW),
    ],
)
def test_entity_type_spellings(value: Any, expected: EntityType) -> None:
    assert EntityType.parse(value) is expected


@pytest.mark.parametrize("value", [0, 4, "node", None, True, 1.5, [1]])
def test_entity_type_rejects(value: Any) -> None:
    with pytest.raises(SaymonProtocolError):
        EntityType.parse(value)


def test_object_variants() -> None:
    obj = SaymonObject.from_json(
        {
            "id": 42,
            "name": "Core",
            "class_id": 34,
            "state_id": "5",
            "parent_id": "abc",
            "child_ids": ["c1", 7],
            "tags": [{"id": "t1", "name": "prod"}, "t2"],
            "last_state_update": "1667386124534",
        }
    )
    assert obj == SaymonObject(
        id="42",
        name="Core",
        class_id="34",
        state_id="5",
        parent_ids=("abc",),
        child_ids=("c1", "7"),
        tags=("t1", "t2"),
        last_state_update=1667386124534,
    )
    bare = SaymonObject.from_json({"id": "x"})
    assert bare.name == "x"
    assert bare.parent_ids == ()
    assert bare.state_id is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        "text",
        {"name": "no id"},
        {"id": True},
        {"id": "x", "state_id": [1]},
        {"id": "x", "name": {"a": 1}},
        {"id": "x", "last_state_update": "soon"},
        {"id": "x", "last_state_update": True},
        {"id": "x", "last_state_update": 1.5},
    ],
)
def test_object_rejects(value: Any) -> None:
    with pytest.raises(SaymonProtocolError):
        SaymonObject.from_json(value)


def test_small_records() -> None:
    state = SaymonState.from_json(
        {"id": 5, "name": "Alarm", "priority": 50, "ui": {"colors": {"main": "#f00"}}}
    )
    assert state == SaymonState("5", "Alarm", 50, "#f00")
    assert SaymonState.from_json({"id": 101}).name == "101"
    assert SaymonState.from_json({"id": 1, "ui": "x"}).color is None
    level = IncidentLevel.from_json({"id": "3", "name": "Cleared", "ui": {"colors": {}}})
    assert level == IncidentLevel("3", "Cleared", None, None)
    assert SaymonClass.from_json({"id": 34, "name": "Switch"}) == SaymonClass("34", "Switch")
    assert SaymonClass.from_json({"id": 35}).name == "35"
    link = SaymonLink.from_json(
        {"id": "l", "source": "a", "target": 2, "state_id": 3, "source_name": "A"}
    )
    assert (link.source, link.target, link.state_id, link.source_name) == ("a", "2", "3", "A")
    user = CurrentUser.from_json({"id": "u", "login": "admin", "permissions": ["a", 1]})
    assert user == CurrentUser("u", "admin", ("a",))
    assert CurrentUser.from_json({"id": 5, "permissions": None}).permissions == ()


def test_json_text_objects_are_decoded() -> None:
    assert SaymonClass.from_json('{"id": 1, "name": "A"}') == SaymonClass("1", "A")
    with pytest.raises(SaymonProtocolError):
        SaymonClass.from_json("{broken")


def test_state_change_event() -> None:
    event = parse_event(
        "state-change", ({"id": "5980512742d0d93ca8a3dbd4", "state_id": 5, "type": 1},)
    )
    assert event == StateChangeEvent("5980512742d0d93ca8a3dbd4", "5", EntityType.OBJECT)
    link = parse_event("state-change", ('{"id": 7, "state_id": "3", "type": "link"}',))
    assert link == StateChangeEvent("7", "3", EntityType.LINK)
    assert parse_event("state-change", ({"id": "a", "state_id": 1},)) == StateChangeEvent(
        "a", "1", EntityType.OBJECT
    )


def test_incident_events() -> None:
    full = parse_event("incidents", ({"changeType": 1, "payload": DOC_INCIDENT},))
    assert isinstance(full, IncidentEvent)
    assert full.change is IncidentChange.CREATED
    assert full.incident is not None
    assert full.incident_id == DOC_INCIDENT["id"]
    assert not full.filtered
    filtered = parse_event(
        "incidents",
        ({"changeType": 2, "filtered": True, "payload": {"id": "64cb2c803b831ede6562e155"}},),
    )
    assert filtered == IncidentEvent(
        IncidentChange.MODIFIED, "64cb2c803b831ede6562e155", None, True
    )
    closed = parse_event("incidents", ({"changeType": "3", "payload": {"_id": 9}},))
    assert closed == IncidentEvent(IncidentChange.CLOSED, "9", None, True)


@pytest.mark.parametrize(
    "payload",
    [
        {"changeType": 4, "payload": DOC_INCIDENT},
        {"payload": DOC_INCIDENT},
        {"changeType": 1},
        {"changeType": 1, "payload": {}},
        {"changeType": 1, "payload": {"id": None}},
        {"changeType": 1, "payload": {"text": "no id"}},
        [1, 2],
    ],
)
def test_incident_event_rejects(payload: Any) -> None:
    with pytest.raises(SaymonProtocolError):
        parse_event("incidents", (payload,))


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (5, IncidentCountEvent(5)),
        (0, IncidentCountEvent(0)),
        ("12", IncidentCountEvent(12)),
        (3.0, IncidentCountEvent(3)),
        ({"count": 7}, IncidentCountEvent(7)),
        ({"total": "8"}, IncidentCountEvent(8)),
        ({"count": 3, "levels": {"1": 2, "4": 1}}, IncidentCountEvent(3, {"1": 2, "4": 1})),
        ({"count": 3, "levels": {"1": "x"}}, IncidentCountEvent(3)),
        ({"1": 2, "2": 0, "4": 1}, IncidentCountEvent(3, {"1": 2, "2": 0, "4": 1})),
        ('{"count": 4}', IncidentCountEvent(4)),
    ],
)
def test_incident_count_shapes(payload: Any, expected: IncidentCountEvent) -> None:
    assert parse_incident_count(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [-1, True, None, "many", 2.5, {}, {"count": -2}, {"count": "x"}, {"a": 1}, [3], {"1": "x"}],
)
def test_incident_count_rejects(payload: Any) -> None:
    with pytest.raises(SaymonProtocolError):
        parse_incident_count(payload)


def test_model_changed_event() -> None:
    event = parse_event(
        "model-changed",
        (
            {
                "changeType": 2,
                "id": "618ffac619e52c1cb9b09d64",
                "entityType": 1,
                "user": {"id": "618fba5319e52c1cb9b09353", "login": "user.name"},
            },
        ),
    )
    assert event == ModelChangedEvent(
        ModelChange.MODIFIED,
        "618ffac619e52c1cb9b09d64",
        EntityType.OBJECT,
        "618fba5319e52c1cb9b09353",
        "user.name",
    )
    removed = parse_event("model-changed", ({"changeType": 3, "id": 1, "entityType": "link"},))
    assert removed == ModelChangedEvent(ModelChange.REMOVED, "1", EntityType.LINK)
    with pytest.raises(SaymonProtocolError):
        parse_event("model-changed", ({"changeType": 9, "id": 1},))


def test_stat_event() -> None:
    event = parse_event(
        "stat",
        (
            {
                "entityId": "634023d414d3e37c5d8c865b",
                "entityType": "obj",
                "timestamp": 1667386124534,
                "payload": {"taskType": "ping"},
            },
        ),
    )
    assert event == StatEvent(
        "634023d414d3e37c5d8c865b", EntityType.OBJECT, 1667386124534, {"taskType": "ping"}
    )
    assert parse_event("stat", ({"entityId": 1},)) == StatEvent("1", EntityType.OBJECT, None, {})


def test_unknown_topic_passes_through() -> None:
    # A topic a server extension made up (SAYMON's custom-server-event).
    assert parse_event("cas-incidents", ("a", 1)) == RawEvent("cas-incidents", ("a", 1))


def test_wrong_argument_count() -> None:
    with pytest.raises(SaymonProtocolError):
        parse_event("state-change", ())
    with pytest.raises(SaymonProtocolError):
        parse_event("state-change", ({"id": 1, "state_id": 2}, {"extra": True}))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "id",
        "state_id",
        "type",
        "changeType",
        "payload",
        "entityType",
        "entityId",
        "count",
        "user",
        "filtered",
    ]
)
EVENTISH = st.dictionaries(FIELDS, JSON, max_size=6) | JSON


@settings(max_examples=400, deadline=None)
@given(
    topic=st.sampled_from(["state-change", "incidents", "incident-count", "model-changed", "stat"]),
    payload=EVENTISH,
)
def test_event_parsers_never_raise_anything_but_protocol_errors(topic: str, payload: Any) -> None:
    with contextlib.suppress(SaymonProtocolError):
        parse_event(topic, (payload,))


RECORDISH = (
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "name",
                "class_id",
                "state_id",
                "parent_id",
                "child_ids",
                "tags",
                "last_state_update",
                "entityId",
                "entityType",
                "state",
                "text",
                "timestamp",
                "owner",
                "priority",
                "ui",
                "source",
                "target",
                "permissions",
                "login",
            ]
        ),
        JSON,
        max_size=8,
    )
    | JSON
)


@settings(max_examples=300, deadline=None)
@given(record=RECORDISH)
def test_record_parsers_never_raise_anything_but_protocol_errors(record: Any) -> None:
    for parse in (
        SaymonObject.from_json,
        SaymonLink.from_json,
        Incident.from_json,
        SaymonState.from_json,
        IncidentLevel.from_json,
        SaymonClass.from_json,
        CurrentUser.from_json,
    ):
        with contextlib.suppress(SaymonProtocolError):
            parse(record)
