"""What each metric becomes: tiers, units, state classes, the options, and the promises kept."""

from __future__ import annotations

from datetime import UTC, datetime
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import EntityCategory
import pytest

from custom_components.saymon.api.metrics import Kind
from custom_components.saymon.api.stat import ChangeRate, MetaType, MetricMeta
from custom_components.saymon.metric_catalog import (
    CONF_METRICS,
    CONF_METRICS_OTHERS,
    DEFAULT_METRICS,
    KNOWN,
    MetricOptions,
    Others,
    Tier,
    describe,
    matching,
    state_value,
)

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "saymon"

SHIPPED: dict[str, str | None] = {
    "roundTripAverage": "measurement",
    "roundTripMinimal": "measurement",
    "roundTripMaximum": "measurement",
    "packetLossPercentile": "measurement",
    "packetsTransmitted": "measurement",
    "packetsReceived": "measurement",
    "numberOfErrors": "measurement",
    "numberOfDuplicates": "measurement",
    "exitCode": None,
    "responseTimeMs": "measurement",
    "statusCode": None,
    "statusText": None,
    "percentageUsage.combined": "measurement",
    "percentageUsage.user": "measurement",
    "percentageUsage.sys": "measurement",
    "percentageUsage.wait": "measurement",
    "percentageUsage.idle": "measurement",
    "percentageUsage.nice": "measurement",
    "percentageUsage.irq": "measurement",
    "percentageUsage.softIrq": "measurement",
    "percentageUsage.stolen": "measurement",
    "averageCpuLoad.oneMinuteAverageLoad": "measurement",
    "averageCpuLoad.fiveMinutesAverageLoad": "measurement",
    "averageCpuLoad.fifteenMinutesAverageLoad": "measurement",
    "usedPercent": "measurement",
    "freePercent": "measurement",
    "actualUsed": "measurement",
    "actualFree": "measurement",
    "total": "measurement",
    "used": "measurement",
    "free": "measurement",
    "usePercent": "measurement",
    "avail": "measurement",
    "diskReads": "total_increasing",
    "diskWrites": "total_increasing",
    "diskReadBytes": "total_increasing",
    "diskWriteBytes": "total_increasing",
    "ifHCInOctets": "total_increasing",
    "ifHCOutOctets": "total_increasing",
    "ifInOctets": "total_increasing",
    "ifOutOctets": "total_increasing",
    "ifHCInUcastPkts": "total_increasing",
    "ifHCOutUcastPkts": "total_increasing",
    "ifInErrors": "total_increasing",
    "ifOutErrors": "total_increasing",
    "ifInDiscards": "total_increasing",
    "ifOutDiscards": "total_increasing",
    "ifOperStatus": None,
    "ifSpeed": "measurement",
}
"""The state class every known metric shipped with (release 0.1.x). A metric that records
statistics must keep its state class in every later release: extend this list, never change
a value that is not ``None``."""


def test_no_known_metric_ever_loses_its_state_class() -> None:
    for path, shipped in SHIPPED.items():
        known = KNOWN[path]
        if shipped is not None:
            assert known.state_class is not None, path
            assert known.state_class.value == shipped, path
        spec = describe(path, Kind.NUMBER if not known.text else Kind.TEXT, MetricOptions())
        assert spec is not None
        assert (spec.state_class.value if spec.state_class else None) == shipped, path
    assert set(KNOWN) == set(SHIPPED), "add new known metrics to SHIPPED"


def test_known_metrics_are_named_iconed_and_documented() -> None:
    strings = json.loads((INTEGRATION / "strings.json").read_text())["entity"]["sensor"]
    russian = json.loads((INTEGRATION / "translations" / "ru.json").read_text())["entity"]
    icons = json.loads((INTEGRATION / "icons.json").read_text())["entity"]["sensor"]
    docs = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    for path, known in KNOWN.items():
        key = f"metric_{known.key}"
        assert strings[key]["name"], path
        assert russian["sensor"][key]["name"] != strings[key]["name"], path
        assert icons[key]["default"] == known.icon, path
        assert f"| `{path}` | {strings[key]['name']} |" in docs, path
    assert set(DEFAULT_METRICS) == {p for p, k in KNOWN.items() if k.tier is Tier.DEFAULT}
    assert len(DEFAULT_METRICS) == 6


def test_known_metrics_get_their_units_and_classes() -> None:
    options = MetricOptions()
    average = describe("roundTripAverage", Kind.NUMBER, options)
    assert average is not None
    assert (average.unit, average.device_class, average.state_class) == (
        "ms",
        SensorDeviceClass.DURATION,
        SensorStateClass.MEASUREMENT,
    )
    assert (average.enabled, average.translation_key) == (True, "metric_round_trip_average")
    octets = describe("ifHCInOctets", None, options)
    assert octets is not None
    assert (octets.unit, octets.suggested_unit, octets.state_class, octets.enabled) == (
        "B",
        "GiB",
        SensorStateClass.TOTAL_INCREASING,
        False,
    )
    text = describe("statusText", Kind.TEXT, options)
    assert text is not None
    assert (text.kind, text.unit, text.state_class, text.category) == (
        Kind.TEXT,
        None,
        None,
        EntityCategory.DIAGNOSTIC,
    )
    # SAYMON sends a known number as text: the data wins, without a unit or state class.
    odd = describe("statusCode", Kind.TEXT, options)
    assert odd is not None
    assert (odd.kind, odd.state_class, odd.unit) == (Kind.TEXT, None, None)


@pytest.mark.parametrize(
    ("path", "kind", "meta", "expected"),
    [
        ("a.pct", Kind.NUMBER, MetricMeta(MetaType.PERCENTILE), ("%", None, "measurement")),
        (
            "a.size",
            Kind.NUMBER,
            MetricMeta(MetaType.BYTE_QUANTITY),
            ("B", "data_size", "measurement"),
        ),
        ("a.when", Kind.NUMBER, MetricMeta(MetaType.TIMESTAMP), (None, "timestamp", None)),
        ("a.n", Kind.NUMBER, None, (None, None, "measurement")),
        ("ifHCInBroadcastPkts", Kind.NUMBER, None, (None, None, "total_increasing")),
        ("x.requestCounter", Kind.NUMBER, None, (None, None, "total_increasing")),
        ("a.s", None, MetricMeta(MetaType.STRING), (None, None, None)),
        ("a.l", None, MetricMeta(MetaType.LIST), (None, None, None)),
    ],
)
def test_unknown_metrics_follow_the_metadata_and_their_values(
    path: str, kind: Kind | None, meta: MetricMeta | None, expected: tuple[str | None, ...]
) -> None:
    spec = describe(path, kind, MetricOptions(), meta)
    assert spec is not None
    assert spec.known is None
    assert not spec.enabled
    assert spec.category is EntityCategory.DIAGNOSTIC
    assert spec.fallback_name
    got = (
        spec.unit,
        spec.device_class.value if spec.device_class else None,
        spec.state_class.value if spec.state_class else None,
    )
    assert got == expected


def test_unknown_booleans_are_binary_and_never_changing_ones_diagnostic() -> None:
    flag = describe("up", None, MetricOptions(), MetricMeta(MetaType.BOOLEAN))
    assert flag is not None
    assert flag.binary
    options = MetricOptions(("fixed",))
    fixed = describe("fixed", Kind.NUMBER, options, MetricMeta(None, ChangeRate.NEVER))
    assert fixed is not None
    assert fixed.enabled
    assert fixed.category is EntityCategory.DIAGNOSTIC
    chosen = describe("chosen", Kind.NUMBER, MetricOptions(("chosen",)))
    assert chosen is not None
    assert chosen.category is None  # enabled on purpose: not hidden among diagnostics


def test_a_shipped_state_class_wins_over_todays_rules() -> None:
    spec = describe("statusCode", Kind.TEXT, MetricOptions(), shipped_state_class="measurement")
    assert spec is not None
    assert (spec.kind, spec.state_class) == (Kind.NUMBER, SensorStateClass.MEASUREMENT)
    unknown = describe("when", None, MetricOptions(), MetricMeta(MetaType.TIMESTAMP), "measurement")
    assert unknown is not None
    assert (unknown.device_class, unknown.state_class) == (None, SensorStateClass.MEASUREMENT)
    counter = describe("ifHCInOctets", None, MetricOptions(), shipped_state_class="measurement")
    assert counter is not None
    assert counter.state_class is SensorStateClass.MEASUREMENT


def test_options_choose_what_is_created_and_enabled() -> None:
    default = MetricOptions.from_options({})
    assert default == MetricOptions(DEFAULT_METRICS, Others.DISABLED)
    odd = MetricOptions.from_options({CONF_METRICS: "x", CONF_METRICS_OTHERS: "sometimes"})
    assert odd == MetricOptions(DEFAULT_METRICS, Others.DISABLED)
    known_only = MetricOptions.from_options(
        {CONF_METRICS: ["percentageUsage.*"], CONF_METRICS_OTHERS: "known"}
    )
    assert known_only.enables("percentageUsage.wait")
    assert not known_only.enables("roundTripAverage")
    assert known_only.creates("roundTripAverage")
    assert not known_only.creates("body.status")
    assert describe("body.status", Kind.TEXT, known_only) is None
    none = MetricOptions(("if?C*Octets",), Others.NONE)
    assert none.creates("ifHCInOctets")
    assert not none.creates("roundTripAverage")
    assert matching(["ifHCInOctets", "ifHCOutOctets", "ifInOctets"], "if?C*Octets") == 2


def test_state_values() -> None:
    assert state_value(1_700_000_000_000, True) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert state_value(1_700_000_000, True) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert state_value(1e30, True) is None
    assert state_value(True, False) is None
    assert state_value("text", True) == "text"
    assert state_value(None, False) is None
    assert state_value(2.5, False) == 2.5


def test_docs_yaml_cards_name_metric_sensors() -> None:
    from homeassistant.util.yaml import parse_yaml

    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    blocks = [parse_yaml(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)]
    cards: list[dict[str, Any]] = [c for c in blocks if isinstance(c, dict) and "type" in c]
    assert cards
    for card in cards:
        assert card["type"] in {"statistics-graph", "history-graph", "entities", "gauge"}
        assert all(re.fullmatch(r"sensor\.\w+", e) for e in card["entities"])
        assert set(card.get("stat_types", [])) <= {"mean", "min", "max", "state", "sum", "change"}
