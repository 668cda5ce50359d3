"""Reading SAYMON's stat: payloads into metrics, metadata, history; the metric store's rules."""

from __future__ import annotations

from collections import Counter
import contextlib
import logging
from typing import Any

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.saymon.api import stat
from custom_components.saymon.api.errors import SaymonProtocolError
from custom_components.saymon.api.events import StatEvent, parse_event
from custom_components.saymon.api.metrics import Kind, MetricStore, expiry_window
from custom_components.saymon.api.models import EntityType
from custom_components.saymon.api.stat import (
    MAX_METRICS,
    ChangeRate,
    MetaType,
    MetricMeta,
    Problem,
    StatRecord,
)

PING = {
    "taskType": "ping",
    "period": 60_000,
    "expiryPeriod": 30_000,
    "timestamp": 1_700_000_000_000,
    "agentId": "625439c60db03e3f4504b548",
    "payload": {"roundTripAverage": 12.5, "packetLossPercentile": 0, "exitCode": 0},
}


def record(metrics: dict[str, Any], timestamp: int | None = 1000, **kw: Any) -> StatRecord:
    return StatRecord(
        entity_id=kw.pop("entity_id", "o1"),
        entity_type=kw.pop("entity_type", EntityType.OBJECT),
        timestamp=timestamp,
        period=kw.pop("period", 60_000),
        expiry_period=kw.pop("expiry_period", None),
        task_type=kw.pop("task_type", "ping"),
        metrics=metrics,
    )


# -- payloads ------------------------------------------------------------------------------


def test_nested_payload_becomes_dotted_metrics() -> None:
    problems: Counter[str] = Counter()
    metrics = stat.flatten(
        {
            "percentageUsage": {"combined": 12.5, "wait": 0.25},
            "headers": {"Content-Type": "text/html"},
            "up": True,
            "interfaces": ["eth0", "eth1"],
            "missing": None,
            "empty": {},
        },
        problems,
    )
    assert metrics == {
        "percentageUsage.combined": 12.5,
        "percentageUsage.wait": 0.25,
        "headers.Content-Type": "text/html",
        "up": True,
        "interfaces": '["eth0","eth1"]',
    }
    assert not problems


def test_values_that_cannot_be_metrics_are_skipped_and_counted() -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(stat.MAX_DEPTH + 1):
        deep = {"d": deep}
    problems: Counter[str] = Counter()
    metrics = stat.flatten(
        {
            "nan": float("nan"),
            "inf": float("-inf"),
            "huge": 2**70,
            "bad\x00key": 1,
            "x" * (stat.MAX_PATH + 1): 1,
            "deep": deep,
            "list_with_nan": [float("nan")],
            "text": "é" * 300,
            "ok": 1,
        },
        problems,
    )
    assert set(metrics) == {"text", "ok"}
    assert len(str(metrics["text"])) == stat.MAX_TEXT
    assert problems == {
        Problem.NOT_FINITE: 3,
        Problem.OUT_OF_RANGE: 1,
        Problem.BAD_PATH: 2,
        Problem.TOO_DEEP: 1,
    }


def test_a_huge_payload_keeps_the_first_metrics() -> None:
    problems: Counter[str] = Counter()
    metrics = stat.flatten({f"m{i}": i for i in range(MAX_METRICS + 25)}, problems)
    assert len(metrics) == MAX_METRICS
    assert "m0" in metrics
    assert problems[Problem.TOO_MANY] == 25


def test_comet_event_shortened_stat_and_search_answer() -> None:
    event = parse_event(
        "stat",
        ({"entityId": "o1", "entityType": 1, "timestamp": 5, "payload": PING},),
    )
    assert isinstance(event, StatEvent)
    full = stat.record_from_event(event)
    assert full == StatRecord(
        "o1",
        EntityType.OBJECT,
        1_700_000_000_000,
        60_000,
        30_000,
        "ping",
        {"roundTripAverage": 12.5, "packetLossPercentile": 0, "exitCode": 0},
    )
    short = stat.record_from({"statusCode": 200}, "o2", EntityType.OBJECT, timestamp=7)
    assert (short.timestamp, short.period, short.task_type) == (7, None, None)
    assert short.metrics == {"statusCode": 200}
    as_text = stat.record_from(
        {"timestamp": 9, "payload": '{"a": {"b": 1}}'}, "o3", EntityType.OBJECT
    )
    assert as_text.metrics == {"a.b": 1}
    found = stat.record_from_search({"entityId": "l1", "entityType": "links", **PING})
    assert (found.entity_type, found.entity_id, found.expiry_period) == (
        EntityType.LINK,
        "l1",
        30_000,
    )
    with pytest.raises(SaymonProtocolError):
        stat.record_from_search({"entityType": 1, **PING})
    with pytest.raises(SaymonProtocolError):
        stat.record_from_search(["not", "a", "stat"])


def test_metadata_types_and_change_rates() -> None:
    meta = stat.parse_meta(
        {
            "entityId": "o1",
            "taskType": "cpu",
            "payload": {
                "percentageUsage": {"wait": {"type": "PERCENTILE", "changeRate": "ALWAYS"}},
                "total": {"type": "byte_quantity", "changeRate": "NEVER"},
                "since": {"type": "TIMESTAMP"},
                "odd": {"type": "COLOUR", "changeRate": 3},
                "ignored": 5,
            },
        }
    )
    assert meta == {
        "percentageUsage.wait": MetricMeta(MetaType.PERCENTILE, ChangeRate.ALWAYS),
        "total": MetricMeta(MetaType.BYTE_QUANTITY, ChangeRate.NEVER),
        "since": MetricMeta(MetaType.TIMESTAMP, None),
        "odd": MetricMeta(None, None),
    }
    # The documented ping example: the metadata alone, numeric fields often without a type.
    assert stat.parse_meta({"roundTripMaximum": {"changeRate": "ALWAYS"}}) == {
        "roundTripMaximum": MetricMeta(None, ChangeRate.ALWAYS)
    }
    with pytest.raises(SaymonProtocolError):
        stat.parse_meta([1])


def test_history_series_in_both_shapes() -> None:
    series = stat.parse_history(
        [
            {
                "metric": "roundTripAverage",
                "tags": {"entity": "obj1"},
                "aggregateTags": [],
                "dps": [[1_700_000_060_000, 2.0], [1_700_000_000_000, 1], ["x", 3], [5, True]],
            },
            {"metric": "percentageUsage.combined", "dps": {"1700000000": 12.5, "bad": 1}},
            {"dps": []},
            "junk",
        ]
    )
    assert [(s.metric, s.points) for s in series] == [
        ("roundTripAverage", [(1_700_000_000_000, 1.0), (1_700_000_060_000, 2.0)]),
        ("percentageUsage.combined", [(1_700_000_000_000, 12.5)]),
    ]
    assert stat.parse_history({"metric": "a", "dps": []})[0].points == []
    with pytest.raises(SaymonProtocolError):
        stat.parse_history("no")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("percentageUsage.combined", "Percentage usage combined"),
        ("ifHCInOctets", "If HC in octets"),
        ("headers.Content-Type", "Headers content type"),
        ("body.some_key", "Body some key"),
    ],
)
def test_unknown_metrics_get_a_readable_name(path: str, name: str) -> None:
    assert stat.readable_name(path) == name


def test_history_times() -> None:
    assert stat.valid_time("24h-ago")
    assert stat.valid_time("1700000000000")
    assert not stat.valid_time("yesterday")


# -- the store -----------------------------------------------------------------------------


def test_newer_values_win_and_missing_metrics_keep_theirs() -> None:
    store = MetricStore()
    first = store.apply(record({"a": 1, "b": "x"}, 1000), 5000, live=True)
    assert first is not None
    assert first.added == first.changed == {"a", "b"}
    assert store.apply(record({"a": 2}, 900), 5001, live=True) is None  # older: ignored
    assert store.apply(record({"a": 2}, 1000), 5002, live=False) is None  # REST, same time
    assert store.apply(record({"a": 1}, 1100), 5003, live=True) is None  # nothing new
    change = store.apply(record({"a": 3}, 1200), 5004, live=True)
    assert change is not None
    assert change.changed == {"a"}
    assert not change.added
    assert store.metrics("o1") == {"a": 3, "b": "x"}  # b missing from the payload: kept
    assert store.value("o1", "b") == "x"
    assert store.value("nobody", "a") is None
    assert store.size == 2


def test_a_metric_keeps_its_kind_and_last_good_value(caplog: pytest.LogCaptureFixture) -> None:
    store = MetricStore()
    store.apply(record({"n": 1, "flag": True, "text": "ok"}, 1), 1, live=True)
    with caplog.at_level(logging.DEBUG):
        store.apply(record({"n": "down", "flag": 1, "text": 5}, 2), 2, live=True)
        store.apply(record({"n": "n/a"}, 3), 3, live=True)
    assert store.metrics("o1") == {"n": 1, "flag": True, "text": "5"}
    assert store.rejected == {Problem.NOT_NUMERIC: 2, Problem.TYPE_CHANGED: 1}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # once per problem, later ones at debug level
    store.apply(record({"n": " 42 ", "flag": False}, 4), 4, live=True)
    assert store.metrics("o1") == {"n": 42, "flag": False, "text": "5"}
    store.apply(record({"n": "1e3"}, 5), 5, live=True)
    assert store.value("o1", "n") == 1000.0
    store.apply(record({"n": "1e400"}, 6), 6, live=True)  # not a finite number
    assert store.value("o1", "n") == 1000.0


def test_hints_fix_the_kind_before_any_value() -> None:
    store = MetricStore()
    store.hint("o1", "n", Kind.NUMBER)
    store.hint("o1", "t", Kind.TEXT)
    assert store.kind("o1", "n") is Kind.NUMBER
    assert store.kind("nobody", "n") is None
    change = store.apply(record({"n": "oops", "t": 7}, 1), 1, live=True)
    assert change is not None
    assert change.added == {"t"}  # the hinted number is still waiting for a number
    assert store.metrics("o1") == {"t": "7"}
    store.hint("o1", "t", Kind.NUMBER)  # a value is there: it wins
    assert store.kind("o1", "t") is Kind.TEXT
    store.retain(set())  # hints outlive the values of what is no longer followed
    assert store.kind("o1", "n") is Kind.NUMBER


def test_metrics_expire_after_period_and_expiry_period() -> None:
    assert expiry_window(60_000, 30_000) == 90_000
    assert expiry_window(60_000, None) == 120_000
    assert expiry_window(None, 5) is None
    store = MetricStore()
    store.apply(record({"a": 1, "b": 2}, 1, period=1000, expiry_period=500), 10_000, live=True)
    store.apply(record({"a": 1}, 2, period=1000, expiry_period=500), 11_000, live=True)
    assert store.next_deadline() == 11_500  # b was last seen at 10 000
    assert store.expire(11_499) == []
    [gone] = store.expire(11_500)
    assert gone.entity_id == "o1"
    assert gone.expired == {"b"}
    assert not gone.changed
    assert store.fresh("o1", "a")
    assert not store.fresh("o1", "b")
    assert store.value("o1", "b") == 2  # the last value stays, expired
    [both] = store.expire(12_500)
    assert both.expired == {"a"}
    assert store.next_deadline() is None
    back = store.apply(record({"b": 2}, 3, period=1000, expiry_period=500), 13_000, live=True)
    assert back is not None
    assert back.changed == {"b"}  # the same value, fresh again
    assert store.fresh("o1", "b")


def test_rest_values_date_from_their_timestamp() -> None:
    store = MetricStore()
    store.apply(record({"a": 1}, 10_000, period=1000, expiry_period=0), 50_000, live=False)
    assert store.next_deadline() == 11_000
    assert [c.expired for c in store.expire(50_000)] == [{"a"}]
    store.apply(record({"x": 1}, None, period=None, entity_id="o2"), 50_000, live=True)
    assert store.entities["o2"].deadline is None  # no period: never expires


def test_retain_forgets_what_is_no_longer_followed() -> None:
    store = MetricStore()
    store.apply(record({"a": 1}, 1, entity_id="o1"), 1, live=True)
    store.apply(record({"a": 1}, 1, entity_id="o2"), 1, live=True)
    [gone] = store.retain({"o2"})
    assert (gone.entity_id, gone.forgotten, gone.changed) == ("o1", True, frozenset())
    assert set(store.entities) == {"o2"}


def test_a_refused_value_does_not_refresh_its_metric() -> None:
    store = MetricStore()
    store.apply(record({"a": 1, "b": 2}, 1, period=1000, expiry_period=500), 10_000, live=True)
    store.apply(record({"a": "x", "c": 3}, 2, period=1000, expiry_period=500), 11_000, live=True)
    assert store.next_deadline() == 11_500  # a (refused now) and b were last fresh at 10 000
    [gone] = store.expire(11_500)
    assert gone.expired == {"a", "b"}
    store.apply(
        record({"a": 5, "b": 6, "c": 7}, 3, period=1000, expiry_period=500), 12_000, live=True
    )
    assert store.next_deadline() == 13_500


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(
    item=JSON,
    envelope=st.dictionaries(
        st.sampled_from(["entityId", "entityType", "timestamp", "period", "payload", "taskType"]),
        JSON,
    ),
)
def test_whatever_saymon_sends_reading_fails_typed_and_the_store_holds(
    item: Any, envelope: dict[str, Any]
) -> None:
    """A stat, metadata or history answer is read, or refused with a protocol error; never more."""
    store = MetricStore()
    for data in (item, envelope, {"entityId": "o1", "entityType": 1, "payload": item}):
        try:
            found = stat.record_from_search(data)
        except SaymonProtocolError:
            continue
        store.apply(found, 1.0, live=True)
        store.apply(found, 2.0, live=False)
        store.expire(1e15)
    for reader in (stat.parse_meta, stat.parse_history):
        with contextlib.suppress(SaymonProtocolError):
            reader(item)
    if isinstance(item, dict):
        assert all(isinstance(k, str) for k in stat.flatten(item))
