"""The server events' rate limit: per object and kind, in total per kind, decided before parsing."""

from __future__ import annotations

import random
from typing import Any

from custom_components.saymon.api.events import parse_event
from custom_components.saymon.api.ratelimit import (
    BURST,
    PER_SECOND,
    TOTAL_BURST,
    TOTAL_PER_SECOND,
    EventRateLimit,
    ServerEventGate,
    peek_key,
)
from tools.simulator.server_events import SHAPES, TOPICS, payload, values_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_per_object_burst_then_rate() -> None:
    clock = Clock()
    limit = EventRateLimit(clock=clock)
    assert [limit.admit("snmp-trap", "a") for _ in range(BURST + 5)].count(True) == BURST
    assert limit.admit("snmp-trap", "b")  # another object has its own bucket
    assert limit.admit("mqtt", "a")  # another kind too
    clock.now += 1.0
    assert [limit.admit("snmp-trap", "a") for _ in range(5)].count(True) == int(PER_SECOND)
    assert limit.dropped == {"snmp-trap": 5 + 5 - int(PER_SECOND)}
    assert limit.diagnostics()["objects_limited"] == 1


def test_a_storm_over_many_objects_is_bounded_in_total() -> None:
    clock = Clock()
    limit = EventRateLimit(clock=clock)
    passed = sum(limit.admit("snmp-trap", f"o{i}") for i in range(500))
    assert passed == TOTAL_BURST
    clock.now += 1.0
    passed = sum(limit.admit("snmp-trap", f"p{i}") for i in range(500))
    assert passed == int(TOTAL_PER_SECOND)
    assert limit.admit("mqtt", "o1")  # the total is per kind


def test_quiet_objects_are_forgotten() -> None:
    clock = Clock()
    limit = EventRateLimit(clock=clock)
    for i in range(20):
        limit.admit("mqtt", f"o{i}")
    clock.now += 3600
    limit._forget_full(clock.now)
    assert limit._buckets == {}


def raw(topic: str, shape: str) -> Any:
    return payload(topic, shape, values_for(random.Random(1), 1, ("obj1", "n"), JOB_ID="j"))


def test_the_object_is_read_without_parsing_where_documented() -> None:
    for topic in TOPICS:
        assert peek_key(topic, (raw(topic, "documented"),)) == (
            "" if topic == "bulk-finished" else "obj1"
        )
    # A trap whose payload came as JSON text still names its entity; an entity list works too.
    assert peek_key("snmp-trap", (raw("snmp-trap", "surprising"),)) == "obj1"
    assert peek_key("mqtt", ({"entity": [{"entityId": "x"}, {"entityId": "y"}]},)) == "x"
    # Where it is not, the decision waits for the parse.
    assert peek_key("job-added", (raw("job-added", "surprising"),)) is None  # wrapped in "job"
    assert peek_key("snmp-trap", ("text",)) is None
    assert peek_key("snmp-trap", ({"entity": {"entityId": "x" * 500}},)) is None
    assert peek_key("snmp-trap", ({}, {})) is None


def test_the_gate_decides_each_event_once() -> None:
    clock = Clock()
    gate = ServerEventGate(EventRateLimit(clock=clock))
    assert gate.admit_raw("state-change", ({"id": "x"},)) is True
    documented = (raw("snmp-trap", "documented"),)
    decisions = [gate.admit_raw("snmp-trap", documented) for _ in range(BURST + 1)]
    assert decisions == [True] * BURST + [False]
    wrapped = (raw("job-added", "surprising"),)
    assert gate.admit_raw("job-added", wrapped) is None
    event = parse_event("job-added", wrapped)
    assert [gate.admit_parsed(event) for _ in range(BURST + 1)].count(True) == BURST
    assert gate.diagnostics()["dropped"] == {"snmp-trap": 1, "jobs": 1}


def test_every_shape_has_a_key_once_parsed() -> None:
    gate = ServerEventGate()
    for topic in TOPICS:
        for shape in SHAPES:
            value = raw(topic, shape)
            assert gate.admit_raw(topic, (value,)) is not False
            assert gate.admit_parsed(parse_event(topic, (value,)))
