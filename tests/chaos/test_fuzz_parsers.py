"""Property-based fuzzing of every Comet event parser and REST response parser (hypothesis).

The property: whatever SAYMON sends, a parser returns its model or raises a typed
:class:`SaymonError` (which the caller counts and drops); no other exception ever escapes.
Inputs mix valid shapes with wrong types in every field, text JSON, huge and odd numbers,
unicode digits, control characters and deep nesting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import partial
import json
import sys
from typing import Any

from homeassistant.helpers.json import json_bytes
from hypothesis import given, settings, strategies as st
import pytest

from custom_components.saymon import describe_server_events
from custom_components.saymon.api import events as comet_events, server_events
from custom_components.saymon.api.errors import SaymonError
from custom_components.saymon.api.model import SaymonModel
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
from custom_components.saymon.api.operations import Operation
from custom_components.saymon.api.rest import (
    SaymonRestClient,
    _error_details,
    _parse_list,
    _raise_for_status,
)
from custom_components.saymon.api.server_events import SERVER_EVENT_TYPES, Job
from custom_components.saymon.mqtt.server_events import SEGMENTS, event_topic
from custom_components.saymon.mqtt.topics import Topics
from custom_components.saymon.server_kinds import kind_of
from tests.mqtt_schema import validate

from . import report
from .tally import Tally

pytestmark = pytest.mark.chaos

PROFILE = settings.get_profile("saymon-chaos")
FOUND_COMET = (
    "found RecursionError on deeply nested JSON text, ValueError on '\u00b2' and 5000-digit "
    "counts, unbounded nested id references (fixed)"
)
FOUND_REST = "found RecursionError on deeply nested JSON text (fixed)"

ODD_STRINGS = [
    "",
    " ",
    "²",  # a digit to str.isdigit(), not to int()
    "\u0661\u0662",  # Arabic-Indic digits
    "9" * 5000,  # beyond int()'s 4300-digit limit
    "-0",
    "1e999",
    "NaN",
    "\x00\x1f\x7f",
    "a/b/+/#",
    "<script>alert(1)</script>",
    "{",
    "{}",
    '{"id": 1}',
    "[" * 50_000,
    "{" + '"id":{' * 50_000,
]
ODD_NUMBERS: list[Any] = [
    0,
    -1,
    2**64,
    -(2**70),
    1.5,
    float("nan"),
    float("inf"),
    -float("inf"),
    True,
    False,
]


HUGE: list[Any] = [10**5000, -(10**5000)]  # kept out of strategies (hypothesis cannot repr them)


def nested(depth: int) -> Any:
    value: Any = {"id": "x"}
    for _ in range(depth):
        value = {"id": value, "payload": [value]}
    return value


def deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(ODD_STRINGS[:12])
    | st.sampled_from(ODD_NUMBERS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


ids = st.text(min_size=1, max_size=24) | st.integers(min_value=0, max_value=2**40)
numbers = st.integers(min_value=0, max_value=2**45) | st.integers().map(str)
entity_types = st.sampled_from([1, 2, 3, "1", "2", "obj", "link", "flow", " Link "])
VALID: dict[str, st.SearchStrategy[Any]] = {
    "id": ids,
    "_id": ids,
    "entityId": ids,
    "state_id": st.integers(min_value=1, max_value=120) | st.integers(1, 9).map(str),
    "state": st.integers(min_value=1, max_value=4) | st.sampled_from(["1", "2", "3", "4"]),
    "lastState": st.integers(min_value=1, max_value=4),
    "type": entity_types,
    "entityType": entity_types,
    "changeType": st.sampled_from([1, 2, 3, "1", "3"]),
    "text": st.text(max_size=40),
    "name": st.text(max_size=40),
    "login": st.text(max_size=12),
    "timestamp": numbers,
    "localTimestamp": numbers | st.none(),
    "clearTimestamp": numbers | st.none(),
    "acknowledgementTimestamp": numbers | st.none(),
    "acknowledgedBy": ids | st.none(),
    "count": st.integers(min_value=0, max_value=10**6),
    "total": st.integers(min_value=0, max_value=10**6),
    "active": st.integers(min_value=0, max_value=10**6),
    "priority": st.integers(min_value=0, max_value=100),
    "parent_id": st.lists(ids, max_size=3) | ids,
    "child_ids": st.lists(ids, max_size=3),
    "tags": st.lists(ids, max_size=3),
    "permissions": st.lists(st.text(max_size=20), max_size=3),
    "user": st.fixed_dictionaries({"id": ids, "login": st.text(max_size=12)}),
    "owner": st.fixed_dictionaries({"id": ids, "name": st.text(max_size=20)}),
    "levels": st.dictionaries(st.sampled_from(["1", "2", "4"]), st.integers(0, 99)),
    "payload": st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
}


def records(*keys: str, required: tuple[str, ...] = ("id",)) -> st.SearchStrategy[Any]:
    """Objects with (some of) the given keys: mostly well typed, any field possibly wrong.

    Sent as an object, as its JSON text, or replaced by any JSON value at all.
    """
    fields = {key: st.one_of(*[VALID.get(key, json_values)] * 9, json_values) for key in keys}
    mostly_valid = st.fixed_dictionaries(
        {key: strategy for key, strategy in fields.items() if key in required},
        optional={k: v for k, v in fields.items() if k not in required},
    )
    anything = st.fixed_dictionaries({}, optional=dict.fromkeys(keys, json_values))
    as_text = mostly_valid.map(lambda value: json.dumps(value, default=str, allow_nan=True))
    return st.one_of(*[mostly_valid] * 6, as_text, anything, json_values)


INCIDENT_KEYS = (
    "id",
    "_id",
    "entityId",
    "entityType",
    "state",
    "lastState",
    "text",
    "type",
    "timestamp",
    "localTimestamp",
    "clearTimestamp",
    "acknowledgedBy",
    "acknowledgementTimestamp",
    "count",
    "owner",
)
COMET_PAYLOADS: dict[str, st.SearchStrategy[Any]] = {
    comet_events.TOPIC_STATE_CHANGE: records(
        "id", "state_id", "type", "entityType", required=("id", "state_id")
    ),
    comet_events.TOPIC_INCIDENTS: st.fixed_dictionaries(
        {
            "changeType": st.sampled_from([1, 2, 3, "1", 0, 4, None, "x"]),
            "payload": records(*INCIDENT_KEYS),
        },
        optional={"filtered": st.booleans() | json_values},
    )
    | records("changeType", "payload", "filtered"),
    comet_events.TOPIC_INCIDENT_COUNT: records(
        "count", "total", "active", "levels", "byLevel", "1", "2", "4", required=()
    )
    | st.integers(min_value=-5, max_value=10**6),
    comet_events.TOPIC_MODEL_CHANGED: records(
        "changeType", "id", "entityType", "user", required=("changeType", "id")
    ),
    comet_events.TOPIC_STAT: records(
        "entityId", "entityType", "timestamp", "payload", required=("entityId",)
    ),
}
entities = st.fixed_dictionaries(
    {"entityId": ids},
    optional={"entityType": entity_types | json_values, "entityName": st.text(max_size=20)},
)
VALID.update(
    {
        "agentId": ids,
        "level": st.integers(1, 4) | st.sampled_from(["1", "2", "4"]),
        "entity": entities | st.lists(entities, max_size=3),
        "bindings": st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=4)
        | st.lists(st.fixed_dictionaries({"oid": st.text(max_size=12), "value": json_values})),
        "topic": st.text(max_size=20),
        "message": st.text(max_size=20) | json_values,
        "stateId": st.integers(1, 9) | st.integers(1, 9).map(str),
        "soundName": st.text(max_size=10) | st.none(),
        "operation_id": ids,
        "owner_id": ids,
        "owner_type": entity_types,
        "description": st.fixed_dictionaries(
            {}, optional={"exitCode": numbers, "stdout": st.text(max_size=20), "topic": ids}
        ),
        "results": st.lists(json_values, max_size=3),
        "bulkId": ids,
        "finished": st.booleans(),
    }
)
TRAP_PAYLOAD = records(
    "senderAddress",
    "agentAddress",
    "enterpriseOid",
    "trapOid",
    "genericTrap",
    "specificTrap",
    "bindings",
    "text",
    required=(),
)
COMET_PAYLOADS.update(
    {
        server_events.TOPIC_SNMP_TRAP: st.fixed_dictionaries(
            {"payload": TRAP_PAYLOAD},
            optional={
                key: VALID.get(key, json_values)
                for key in ("_id", "type", "agentId", "timestamp", "level", "entity")
            },
        )
        | records("_id", "payload", "entity", "level", required=()),
        server_events.TOPIC_MQTT: st.fixed_dictionaries(
            {"payload": records("topic", "message", required=("topic",))},
            optional={key: VALID.get(key, json_values) for key in ("_id", "timestamp", "entity")},
        )
        | records("payload", "entity", required=()),
        server_events.TOPIC_CLIENT_NOTIFICATION: records(
            "entityId", "entityType", "stateId", "soundName", "timestamp", required=("entityId",)
        ),
        server_events.TOPIC_JOB_ADDED: records(
            "id", "operation_id", "owner_id", "owner_type", "user_id", "timestamp", "job"
        ),
        server_events.TOPIC_JOB_RESULT: records(
            "id", "operation_id", "owner_id", "owner_type", "description", "results", "timestamp"
        ),
        server_events.TOPIC_BULK_FINISHED: records("bulkId", "id", "finished", required=()) | ids,
    }
)
REST_RECORDS: dict[str, tuple[Callable[[Any], Any], st.SearchStrategy[Any]]] = {
    "user": (CurrentUser.from_json, records("id", "login", "permissions")),
    "state": (SaymonState.from_json, records("id", "name", "priority", "ui")),
    "incident level": (IncidentLevel.from_json, records("id", "name", "priority", "ui")),
    "class": (SaymonClass.from_json, records("id", "name")),
    "object": (
        SaymonObject.from_json,
        records("id", "name", "class_id", "state_id", "parent_id", "child_ids", "tags"),
    ),
    "link": (
        SaymonLink.from_json,
        records("id", "source", "target", "class_id", "state_id", "source_name", "target_name"),
    ),
    "incident": (Incident.from_json, records(*INCIDENT_KEYS)),
    "job": (Job.from_json, records("id", "operation_id", "owner_id", "description", "results")),
    "operation": (Operation.from_json, records("id", "name", "description", "type")),
}


def test_comet_event_parsers() -> None:
    tally = Tally("Comet event parsers (hypothesis)")

    @PROFILE
    @given(
        data=st.data(),
        topic=st.sampled_from(sorted(COMET_PAYLOADS)),
        arguments=st.sampled_from([1, 1, 1, 1, 1, 1, 0, 2]),
    )
    def check(data: st.DataObject, topic: str, arguments: int) -> None:
        payload = data.draw(COMET_PAYLOADS[topic])
        args = (payload,) if arguments == 1 else tuple([payload] * arguments)
        tally.run(lambda: comet_events.parse_event(topic, args))

    check()
    for topic in COMET_PAYLOADS:
        for value in [*ODD_STRINGS, *ODD_NUMBERS, *HUGE, nested(200), deep_list(5000)]:
            tally.run(partial(comet_events.parse_event, topic, (value,)))
    report.record("inputs", tally.row(FOUND_COMET))
    assert tally.accepted
    assert tally.rejected


def test_rest_record_parsers() -> None:
    tally = Tally("REST record parsers (hypothesis)")

    @PROFILE
    @given(data=st.data(), kind=st.sampled_from(sorted(REST_RECORDS)))
    def check(data: st.DataObject, kind: str) -> None:
        parse, strategy = REST_RECORDS[kind]
        value = data.draw(strategy)
        tally.run(lambda: parse(value))
        tally.run(lambda: _parse_list([value, value], parse, kind, Counter()))
        tally.run(lambda: _parse_list(value, parse, kind, Counter()))

    check()
    for parse, _ in REST_RECORDS.values():
        for value in [*ODD_STRINGS, *ODD_NUMBERS, *HUGE, nested(200), deep_list(5000)]:
            tally.run(partial(parse, value))
    report.record("inputs", tally.row(FOUND_REST))
    assert tally.accepted
    assert tally.rejected


def test_entity_type_spellings() -> None:
    tally = Tally("entityType spellings (hypothesis)")

    @PROFILE
    @given(
        value=json_values
        | st.text(alphabet="0123456789\u00b2\u00b3\u00b9\u0661\u0662\u0663 \t", max_size=12)
    )
    def check(value: Any) -> None:
        tally.run(lambda: EntityType.parse(value))

    check()
    report.record("inputs", tally.row("found ValueError for '\u00b2' (fixed)"))
    assert tally.accepted
    assert tally.rejected


def test_rest_bodies_and_error_bodies() -> None:
    tally = Tally("REST bodies and error bodies (hypothesis)")
    bodies = (
        st.text(max_size=200)
        | json_values.map(lambda value: json.dumps(value, default=str))
        | st.sampled_from(ODD_STRINGS)
        | st.builds(
            lambda code, message: json.dumps({"code": code, "message": message}, default=str),
            json_values,
            json_values | json_values.map(lambda value: json.dumps(value, default=str)),
        )
    )

    @PROFILE
    @given(body=bodies, status=st.sampled_from([200, 400, 401, 403, 404, 409, 500, 502]))
    def check(body: str, status: int) -> None:
        tally.run(lambda: SaymonRestClient._decode(body, "fuzz"))
        tally.run(lambda: _error_details(body))
        if status >= 400:
            for login in (False, True):
                with pytest.raises(SaymonError):
                    _raise_for_status(status, body, login=login)
                tally.rejected["raised as designed"] += 1
                tally.tried += 1

    check()
    deep = "[" * 100_000 + "]" * 100_000
    for body in (deep, '{"a":' * 100_000 + "1" + "}" * 100_000):
        tally.run(partial(SaymonRestClient._decode, body, "fuzz"))
        tally.run(partial(_error_details, body))
    report.record("inputs", tally.row("found RecursionError on deep nesting (fixed)"))
    assert tally.accepted
    assert tally.rejected


def test_recursion_limit_is_untouched() -> None:
    # The parsers must not rely on a raised recursion limit (Home Assistant does not set one).
    assert sys.getrecursionlimit() <= 10_000


def test_server_events_become_data_every_encoder_takes() -> None:
    """Whatever a server event parser accepts becomes a bus event and an MQTT payload.

    Home Assistant's event bus and recorder encode event data with its JSON encoder, which
    refuses NaN, integers beyond 64 bits and lone surrogates: an accepted event must never
    carry them, however hostile the payload. Each MQTT payload validates against its schema.
    """
    tally = Tally("Server events: parse, describe, encode (hypothesis)")
    model = SaymonModel()
    topics = Topics("fuzz")
    encoded = 0

    def parse_and_encode(topic: str, value: Any) -> None:
        nonlocal encoded
        change = comet_events.parse_event(topic, (value,))
        assert isinstance(change, SERVER_EVENT_TYPES)
        data = describe_server_events.server_event(change, model)
        json_bytes(data)
        kind = kind_of(change)
        validate(event_topic(topics, kind.key), SEGMENTS[kind.key][1](data))
        encoded += 1

    @PROFILE
    @given(data=st.data(), topic=st.sampled_from(server_events.SERVER_TOPICS))
    def check(data: st.DataObject, topic: str) -> None:
        value = data.draw(COMET_PAYLOADS[topic])
        tally.run(lambda: parse_and_encode(topic, value))

    check()
    hostile = [*ODD_STRINGS, *ODD_NUMBERS, *HUGE, nested(200), deep_list(5000)]
    for topic in server_events.SERVER_TOPICS:
        for value in hostile:
            tally.run(partial(parse_and_encode, topic, value))
            tally.run(partial(parse_and_encode, topic, {"payload": value, "entity": value}))
            tally.run(partial(parse_and_encode, topic, {"id": "j", "description": value}))
    report.record("inputs", tally.row("every accepted event encoded and schema-valid"))
    assert tally.accepted == encoded > 0
    assert tally.rejected
