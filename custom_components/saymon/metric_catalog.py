"""Which SAYMON metrics become which entities: the known-metrics table, tiers and options.

SAYMON's metrics are dotted paths into free-form payloads, without units. Metrics of common
probes (ping, HTTP request, CPU, memory, file system, SNMP interface) are *known*: this table
gives them a translated name, a unit, a device and state class and an icon. Like the best
monitoring integrations, not everything is switched on:

1. **default**: a small set, enabled (ping round trip and loss, CPU, memory and disk usage,
   HTTP response time);
2. **secondary**: the other known metrics, created disabled;
3. **unknown**: everything else, created disabled in the diagnostic category (or, by option,
   not at all), named after its path, typed by SAYMON's metadata when it has some, and by its
   values otherwise.

The options (:class:`MetricOptions`) choose which metric names or patterns are enabled and what
happens to the rest. A metric's state class, once shipped, is kept (``shipped_state_class``):
dropping it would cut users' long-term statistics. Pure decisions, no entities here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from fnmatch import fnmatchcase
import re
from typing import Any, Final

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfDataRate,
    UnitOfInformation,
    UnitOfTime,
)
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .api.metrics import Kind
from .api.stat import ChangeRate, MetaType, MetricMeta, MetricValue, readable_name

CONF_METRICS: Final = "metrics"
"""Metric names or patterns whose entities are created enabled."""
CONF_METRICS_OTHERS: Final = "metrics_others"
"""What becomes of the other metrics (:class:`Others`)."""
MAX_ENABLED_ENTITIES: Final = 10_000
"""Home Assistant's advice for one integration entry; metric entities beyond it are disabled."""


class Tier(IntEnum):
    """How prominent a metric is by default."""

    DEFAULT = 1
    SECONDARY = 2
    UNKNOWN = 3


class Others(StrEnum):
    """What becomes of the metrics that are not enabled by the options."""

    DISABLED = "disabled"
    """Known and unknown ones are created disabled (the default)."""
    KNOWN = "known"
    """Known ones are created disabled; unknown ones are not created."""
    NONE = "none"
    """Only the enabled ones are created."""


@dataclass(frozen=True, slots=True)
class KnownMetric:
    """A metric of a common SAYMON probe: how Home Assistant should show it."""

    key: str
    """Translation key (``metric_<key>``) and icon key."""
    tier: Tier
    unit: str | None = None
    device_class: SensorDeviceClass | None = None
    state_class: SensorStateClass | None = SensorStateClass.MEASUREMENT
    suggested_unit: str | None = None
    precision: int | None = None
    category: EntityCategory | None = None
    text: bool = False
    icon: str | None = None
    """Also in ``icons.json``; here for link metrics, whose name has its own translation."""


def _ms(key: str, tier: Tier, icon: str = "mdi:timer-outline") -> KnownMetric:
    return KnownMetric(
        key, tier, UnitOfTime.MILLISECONDS, SensorDeviceClass.DURATION, precision=1, icon=icon
    )


def _pct(key: str, tier: Tier, icon: str) -> KnownMetric:
    return KnownMetric(key, tier, PERCENTAGE, precision=1, icon=icon)


def _bytes(key: str, icon: str, counter: bool = False) -> KnownMetric:
    return KnownMetric(
        key,
        Tier.SECONDARY,
        UnitOfInformation.BYTES,
        SensorDeviceClass.DATA_SIZE,
        SensorStateClass.TOTAL_INCREASING if counter else SensorStateClass.MEASUREMENT,
        suggested_unit=UnitOfInformation.GIBIBYTES,
        precision=2,
        icon=icon,
    )


def _count(key: str, icon: str, counter: bool = False) -> KnownMetric:
    state_class = SensorStateClass.TOTAL_INCREASING if counter else SensorStateClass.MEASUREMENT
    return KnownMetric(key, Tier.SECONDARY, state_class=state_class, icon=icon)


def _diagnostic(key: str, icon: str, text: bool = False) -> KnownMetric:
    return KnownMetric(
        key,
        Tier.SECONDARY,
        state_class=None,
        category=EntityCategory.DIAGNOSTIC,
        text=text,
        icon=icon,
    )


KNOWN: Final[Mapping[str, KnownMetric]] = {
    # ping
    "roundTripAverage": _ms("round_trip_average", Tier.DEFAULT),
    "roundTripMinimal": _ms("round_trip_minimal", Tier.SECONDARY),
    "roundTripMaximum": _ms("round_trip_maximum", Tier.SECONDARY),
    "packetLossPercentile": _pct("packet_loss", Tier.DEFAULT, "mdi:lan-disconnect"),
    "packetsTransmitted": _count("packets_transmitted", "mdi:upload-network-outline"),
    "packetsReceived": _count("packets_received", "mdi:download-network-outline"),
    "numberOfErrors": _count("ping_errors", "mdi:alert-circle-outline"),
    "numberOfDuplicates": _count("ping_duplicates", "mdi:content-duplicate"),
    "exitCode": _diagnostic("exit_code", "mdi:console"),
    # HTTP request
    "responseTimeMs": _ms("response_time", Tier.DEFAULT, "mdi:web-clock"),
    "statusCode": KnownMetric("status_code", Tier.SECONDARY, state_class=None, icon="mdi:web"),
    "statusText": _diagnostic("status_text", "mdi:web", text=True),
    # CPU
    "percentageUsage.combined": _pct("cpu_usage", Tier.DEFAULT, "mdi:cpu-64-bit"),
    "percentageUsage.user": _pct("cpu_user", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.sys": _pct("cpu_system", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.wait": _pct("cpu_iowait", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.idle": _pct("cpu_idle", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.nice": _pct("cpu_nice", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.irq": _pct("cpu_irq", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.softIrq": _pct("cpu_softirq", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "percentageUsage.stolen": _pct("cpu_stolen", Tier.SECONDARY, "mdi:cpu-64-bit"),
    "averageCpuLoad.oneMinuteAverageLoad": _count("load_1m", "mdi:chip"),
    "averageCpuLoad.fiveMinutesAverageLoad": _count("load_5m", "mdi:chip"),
    "averageCpuLoad.fifteenMinutesAverageLoad": _count("load_15m", "mdi:chip"),
    # memory (Sigar-style names, as SAYMON's agent)
    "usedPercent": _pct("memory_usage", Tier.DEFAULT, "mdi:memory"),
    "freePercent": _pct("memory_free", Tier.SECONDARY, "mdi:memory"),
    "actualUsed": _bytes("memory_actual_used", "mdi:memory"),
    "actualFree": _bytes("memory_actual_free", "mdi:memory"),
    # memory and file systems
    "total": _bytes("total_size", "mdi:database"),
    "used": _bytes("used_size", "mdi:database"),
    "free": _bytes("free_size", "mdi:database-outline"),
    # file system
    "usePercent": _pct("disk_usage", Tier.DEFAULT, "mdi:harddisk"),
    "avail": _bytes("available_size", "mdi:database-outline"),
    "diskReads": _count("disk_reads", "mdi:harddisk", counter=True),
    "diskWrites": _count("disk_writes", "mdi:harddisk", counter=True),
    "diskReadBytes": _bytes("disk_read", "mdi:harddisk", counter=True),
    "diskWriteBytes": _bytes("disk_written", "mdi:harddisk", counter=True),
    # SNMP interface (IF-MIB counters)
    "ifHCInOctets": _bytes("received", "mdi:download-network", counter=True),
    "ifHCOutOctets": _bytes("sent", "mdi:upload-network", counter=True),
    "ifInOctets": _bytes("received", "mdi:download-network", counter=True),
    "ifOutOctets": _bytes("sent", "mdi:upload-network", counter=True),
    "ifHCInUcastPkts": _count("received_packets", "mdi:download-network", counter=True),
    "ifHCOutUcastPkts": _count("sent_packets", "mdi:upload-network", counter=True),
    "ifInErrors": _count("receive_errors", "mdi:alert-circle-outline", counter=True),
    "ifOutErrors": _count("send_errors", "mdi:alert-circle-outline", counter=True),
    "ifInDiscards": _count("receive_discards", "mdi:delete-outline", counter=True),
    "ifOutDiscards": _count("send_discards", "mdi:delete-outline", counter=True),
    "ifOperStatus": _diagnostic("oper_status", "mdi:ethernet"),
    "ifSpeed": KnownMetric(
        "link_speed",
        Tier.SECONDARY,
        UnitOfDataRate.BITS_PER_SECOND,
        SensorDeviceClass.DATA_RATE,
        suggested_unit=UnitOfDataRate.MEGABITS_PER_SECOND,
        category=EntityCategory.DIAGNOSTIC,
        icon="mdi:speedometer",
    ),
}

DEFAULT_METRICS: Final = tuple(path for path, known in KNOWN.items() if known.tier is Tier.DEFAULT)
"""What the options enable when the user never chose."""

_COUNTER: Final = re.compile(
    r"(^|\.)(if(HC)?(In|Out)\w*(Octets|Pkts|Errors|Discards)|\w*[Cc]ounter)$"
)
"""Unknown metrics that only grow (SNMP interface counters, anything called a counter)."""
_TEXT_TYPES: Final = frozenset({MetaType.STRING, MetaType.ID, MetaType.LIST, MetaType.BINARY})


@dataclass(frozen=True, slots=True)
class MetricOptions:
    """The options' choice of metric entities."""

    enabled: tuple[str, ...] = DEFAULT_METRICS
    others: Others = Others.DISABLED

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> MetricOptions:
        """Read an entry's options (defaults for what was never set)."""
        enabled = options.get(CONF_METRICS)
        others = options.get(CONF_METRICS_OTHERS, Others.DISABLED)
        return cls(
            tuple(enabled) if isinstance(enabled, list | tuple) else DEFAULT_METRICS,
            Others(others) if others in tuple(Others) else Others.DISABLED,
        )

    def enables(self, path: str) -> bool:
        """Whether a metric's entity is created enabled."""
        return any(fnmatchcase(path, pattern) for pattern in self.enabled)

    def creates(self, path: str) -> bool:
        """Whether a metric gets an entity at all."""
        if self.others is Others.DISABLED or self.enables(path):
            return True
        return self.others is Others.KNOWN and path in KNOWN


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """The entity one metric becomes."""

    path: str
    kind: Kind
    known: KnownMetric | None
    enabled: bool
    """Enabled by default (when the entity is first registered)."""
    unit: str | None = None
    device_class: SensorDeviceClass | None = None
    state_class: SensorStateClass | None = None
    suggested_unit: str | None = None
    precision: int | None = None
    category: EntityCategory | None = None
    timestamp: bool = False
    """Milliseconds since the epoch, shown as a time (SAYMON's ``TIMESTAMP``)."""

    @property
    def binary(self) -> bool:
        """A binary sensor (``BOOLEAN``), not a sensor."""
        return self.kind is Kind.BOOLEAN

    @property
    def translation_key(self) -> str | None:
        """Of a known metric; unknown ones are named after their path."""
        return None if self.known is None else f"metric_{self.known.key}"

    @property
    def fallback_name(self) -> str:
        """The name from the path (unknown metrics, and before translations are loaded)."""
        return readable_name(self.path)


def describe(
    path: str,
    kind: Kind | None,
    options: MetricOptions,
    meta: MetricMeta | None = None,
    shipped_state_class: str | None = None,
) -> MetricSpec | None:
    """What entity a metric becomes, or ``None`` when the options create none for it.

    ``kind``: what its values are (``None``: not known yet, taken from the metadata or the
    table); ``meta``: SAYMON's metadata of the metric; ``shipped_state_class``: the state class
    its entity already has in Home Assistant's registry, which it keeps.
    """
    if not options.creates(path):
        return None
    enabled = options.enables(path)
    known = KNOWN.get(path)
    if shipped_state_class is not None:
        kind = Kind.NUMBER  # statistics are recorded: the metric stays numeric
    if known is not None:
        return _known_spec(path, known, kind, enabled, shipped_state_class)
    meta = meta or MetricMeta()
    kind = kind or _meta_kind(meta.type)
    category = None if enabled else EntityCategory.DIAGNOSTIC
    if kind is not Kind.NUMBER:
        return MetricSpec(path, kind, None, enabled, category=category)
    if meta.change_rate is ChangeRate.NEVER:
        category = EntityCategory.DIAGNOSTIC
    if meta.type is MetaType.TIMESTAMP and shipped_state_class is None:
        return MetricSpec(
            path,
            kind,
            None,
            enabled,
            device_class=SensorDeviceClass.TIMESTAMP,
            category=category,
            timestamp=True,
        )
    state_class = SensorStateClass.MEASUREMENT
    if _COUNTER.search(path):
        state_class = SensorStateClass.TOTAL_INCREASING
    if shipped_state_class is not None:
        state_class = SensorStateClass(shipped_state_class)
    if meta.type is MetaType.PERCENTILE:
        return MetricSpec(
            path,
            kind,
            None,
            enabled,
            PERCENTAGE,
            state_class=state_class,
            precision=1,
            category=category,
        )
    if meta.type is MetaType.BYTE_QUANTITY:
        return MetricSpec(
            path,
            kind,
            None,
            enabled,
            UnitOfInformation.BYTES,
            SensorDeviceClass.DATA_SIZE,
            state_class,
            suggested_unit=UnitOfInformation.MEBIBYTES,
            precision=1,
            category=category,
        )
    return MetricSpec(path, kind, None, enabled, state_class=state_class, category=category)


def _known_spec(
    path: str,
    known: KnownMetric,
    kind: Kind | None,
    enabled: bool,
    shipped_state_class: str | None,
) -> MetricSpec:
    expected = Kind.TEXT if known.text else Kind.NUMBER
    if kind is not None and kind is not expected:  # SAYMON sends it otherwise: believe the data
        return MetricSpec(path, kind, known, enabled, category=known.category)
    state_class = known.state_class
    if shipped_state_class is not None:
        state_class = SensorStateClass(shipped_state_class)
    return MetricSpec(
        path,
        expected,
        known,
        enabled,
        None if expected is Kind.TEXT else known.unit,
        known.device_class,
        state_class if expected is Kind.NUMBER else None,
        known.suggested_unit,
        known.precision,
        known.category,
    )


def _meta_kind(meta_type: MetaType | None) -> Kind:
    if meta_type is MetaType.BOOLEAN:
        return Kind.BOOLEAN
    if meta_type in _TEXT_TYPES:
        return Kind.TEXT
    return Kind.NUMBER


def state_value(value: MetricValue | None, timestamp: bool) -> StateType | datetime:
    """A metric's value as its sensor's state (SAYMON's ``TIMESTAMP`` in ms becomes a time)."""
    if timestamp and isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return dt_util.utc_from_timestamp(seconds)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, bool):
        return None  # a boolean is a binary sensor's, never a sensor's state
    return value


def matching(paths: Sequence[str], pattern: str) -> int:
    """How many of ``paths`` a name or pattern matches (the options show it)."""
    return sum(fnmatchcase(path, pattern) for path in paths)
