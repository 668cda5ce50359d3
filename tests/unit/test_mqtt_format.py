"""The mirror's topics and payloads, validated against the shipped JSON Schemas."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from custom_components.saymon import describe_server_events
from custom_components.saymon.api.events import parse_event
from custom_components.saymon.api.model import SaymonModel
from custom_components.saymon.api.server_events import SERVER_EVENT_TYPES
from custom_components.saymon.mqtt import payloads
from custom_components.saymon.mqtt.server_events import SEGMENTS, event_topic
from custom_components.saymon.mqtt.topics import Topics, clean_base, clean_segment, default_base
from custom_components.saymon.server_kinds import kind_of
from tests.mqtt_schema import SCHEMA_DIR, schema, validate
from tools.simulator.server_events import SHAPES, TOPICS as SERVER_EVENT_TOPICS, payload, values_for


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("abc", "abc"),
        ("a+b", "ab"),
        ("#", "_"),
        ("a/b", "ab"),
        ("x\x00\x1f\x7fy", "xy"),
        ("", "_"),
        ("é", "é"),
    ],
)
def test_segments_are_cleaned(raw: str, clean: str) -> None:
    assert clean_segment(raw) == clean


def test_topics() -> None:
    topics = Topics("/home//saymon/+/")
    assert topics.base == "home/saymon/_"
    assert topics.status == "home/saymon/_/status"
    assert topics.object_state("a/#b") == "home/saymon/_/objects/ab/state"
    assert topics.level_count("1") == "home/saymon/_/incidents/count/1"
    assert topics.link_event("l") == "home/saymon/_/links/l/event"
    assert topics.object_incidents("a+b") == "home/saymon/_/objects/ab/incidents"
    assert topics.connection == "home/saymon/_/connection"
    assert topics.object_stat("o+1") == "home/saymon/_/objects/o1/stat"
    assert topics.link_stat("l") == "home/saymon/_/links/l/stat"
    assert clean_base("   ") == "saymon"
    assert default_base("host.example:8080") == "saymon/host.example:8080"


def test_every_schema_is_a_valid_schema() -> None:
    names = sorted(path.stem for path in SCHEMA_DIR.glob("*.json"))
    assert names == [
        "bulk_event",
        "count",
        "incident_event",
        "job_event",
        "model_event",
        "mqtt_event",
        "notification_event",
        "stat",
        "state",
        "state_event",
        "status",
        "trap_event",
    ]
    for name in names:
        jsonschema.Draft202012Validator.check_schema(schema(name))


def test_payloads_match_their_schemas() -> None:
    incident = {
        "type": "opened",
        "replayed": False,
        "incident_id": "i1",
        "level_id": "1",
        "level": "Alarm",
        "text": "<script>alert(1)</script>",
        "timestamp": 1,
        "local_timestamp": None,
        "clear_timestamp": None,
        "acknowledged_by": None,
        "acknowledgement_timestamp": None,
        "entity_type": "object",
        "object_id": "o1",
        "object_name": "Core",
    }
    event = validate("b/incidents/event", payloads.incident_event(incident))
    assert event["incident"]["text"] == "<script>alert(1)</script>"  # text stays text
    validate("b/objects/o1/state", payloads.state("o1", "Core", "5", "Alarm"))
    validate("b/links/l1/state", payloads.state("l1", None, None, None))
    validate(
        "b/objects/o1/event",
        payloads.state_event(
            {
                "object_id": "o1",
                "entity_type": "object",
                "object_name": "Core",
                "old_state_id": None,
                "old_state": None,
                "new_state_id": "5",
                "new_state": "Alarm",
                "replayed": True,
            }
        ),
    )
    validate(
        "b/model/event",
        payloads.model_event(
            {
                "change": "removed",
                "entity_type": "link",
                "entity_id": "l1",
                "name": None,
                "user_login": None,
                "replayed": False,
            }
        ),
    )
    stat = validate(
        "b/objects/o1/stat",
        payloads.stat(
            "o1",
            "object",
            "Core",
            timestamp=1_700_000_000_000,
            task_type="ping",
            metrics={"roundTripAverage": 1.5, "exitCode": 0, "up": True, "body.status": "ok"},
            expired=["packetLossPercentile"],
        ),
    )
    assert stat["metrics"]["roundTripAverage"] == 1.5
    validate(
        "b/links/l1/stat",
        payloads.stat("l1", "link", None, timestamp=None, task_type=None, metrics={}, expired=[]),
    )
    with pytest.raises(jsonschema.ValidationError):  # a metric value is never an object
        validate(
            "b/objects/o/stat",
            payloads.stat(
                "o", "object", None, timestamp=None, task_type=None, metrics={"a": {}}, expired=[]
            ),
        )
    assert validate("b/incidents/count", payloads.count(3)) == 3
    assert validate("b/incidents/count/4", payloads.count(0)) == 0
    assert validate("b/status", payloads.ONLINE.encode()) == "online"
    with pytest.raises(jsonschema.ValidationError):
        validate("b/status", b"maybe")
    with pytest.raises(jsonschema.ValidationError):
        validate("b/objects/o/state", json.dumps({"schema": 2}).encode())


def test_server_event_payloads_match_their_schemas() -> None:
    """Every shape of every server event, described and built, validates (format 1.1)."""
    model = SaymonModel()
    topics = Topics("b")
    for topic in SERVER_EVENT_TOPICS:
        for shape in SHAPES:
            value = payload(topic, shape, values_for(random.Random(2), 1, ("o1", "Core")))
            change = parse_event(topic, (value,))
            assert isinstance(change, SERVER_EVENT_TYPES)
            kind = kind_of(change)
            data = describe_server_events.server_event(change, model)
            body = SEGMENTS[kind.key][1](data)
            validated = validate(event_topic(topics, kind.key), body)
            assert validated["schema"] == 1
