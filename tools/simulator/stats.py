"""Monitoring data (`stat`) as SAYMON agents produce it: one probe per object, history, metadata.

Every device-like object (and every link) runs one probe, chosen by its class: hosts and links
are pinged, services get an HTTP request, servers report CPU, memory or a file system, switches
an SNMP interface. Each emission is the probe's next stat in SAYMON's documented stat model
(`{taskType, period, expiryPeriod, timestamp, agentId, payload}`), with plausible values;
counters (octets, packets, errors, disk bytes) grow with time and sometimes restart from zero,
as after a device reboot. The payload field names follow SAYMON's documentation where it gives
them (ping, HTTP request, `percentageUsage`, `averageCpuLoad`, `ifHCInOctets`) and the agent's
Sigar-style names elsewhere (`usedPercent`, `usePercent`): a GUESS, as SAYMON documents no
fixed list.

Pure data: the model calls :meth:`ProbeBook.next_stat` and keeps what it returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
import math
import random
import re
from typing import Any, Final

from .catalog import CLASS_HOST, CLASS_SERVER, CLASS_SERVICE, CLASS_SWITCH, ENTITY_LINK

EntityKey = tuple[int, str]

KIND_PING: Final = "ping"
KIND_HTTP: Final = "httpRequest"
KIND_CPU: Final = "cpu"
KIND_MEMORY: Final = "memory"
KIND_FILESYSTEM: Final = "fileSystem"
KIND_INTERFACE: Final = "snmp"
KINDS: Final = (KIND_PING, KIND_HTTP, KIND_CPU, KIND_MEMORY, KIND_FILESYSTEM, KIND_INTERFACE)

DEFAULT_PERIOD_MS: Final = 60_000
HISTORY_LENGTH: Final = 2_000
"""Stats remembered per entity for `GET /objects/:id/history`."""
AGENT_ID: Final = "625439c60db03e3f4504b548"
RESET_CHANCE: Final = 0.02
"""Chance per emission that a probe's counters start again from zero (a device reboot)."""
GIB: Final = 1024**3

_PERIOD_UNITS: Final = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "n": 2_592_000_000,
    "y": 31_536_000_000,
}
_RELATIVE: Final = re.compile(r"^(\d+)(ms|s|m|h|d|w|n|y)-ago$")
_DOWNSAMPLE: Final = re.compile(r"^(\d+(?:ms|s|m|h|d|w|n|y)|all)-(avg|min|max|sum|count|last)$")


def kind_for_class(class_id: str, rng: random.Random) -> str | None:
    """The probe an object of this class runs (None: a container, no probe)."""
    if class_id == CLASS_HOST:
        return KIND_PING
    if class_id == CLASS_SERVICE:
        return KIND_HTTP
    if class_id == CLASS_SWITCH:
        return KIND_INTERFACE
    if class_id == CLASS_SERVER:
        return rng.choice((KIND_CPU, KIND_MEMORY, KIND_FILESYSTEM))
    return None


@dataclass(slots=True)
class Probe:
    """One entity's probe: its kind, its counters and its remembered stats."""

    kind: str
    rng: random.Random
    counters: dict[str, int] = field(default_factory=dict)
    resets: int = 0
    history: deque[tuple[int, dict[str, float]]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_LENGTH)
    )

    def payload(self, period_ms: int) -> dict[str, Any]:
        """The probe's next measurement."""
        rng = self.rng
        if self.counters and rng.random() < RESET_CHANCE:
            self.counters = dict.fromkeys(self.counters, 0)
            self.resets += 1
        if self.kind == KIND_PING:
            return _ping(rng)
        if self.kind == KIND_HTTP:
            return _http(rng)
        if self.kind == KIND_CPU:
            return _cpu(rng)
        if self.kind == KIND_MEMORY:
            return _memory(rng)
        if self.kind == KIND_FILESYSTEM:
            return {**_filesystem(rng), **self._grow(_DISK_RATES, period_ms)}
        return {
            **self._grow(_INTERFACE_RATES, period_ms),
            "ifOperStatus": 1,
            "ifSpeed": 1_000_000_000,
        }

    def _grow(self, rates: Mapping[str, float], period_ms: int) -> dict[str, int]:
        for key, rate in rates.items():
            step = int(rate * period_ms / 1000 * self.rng.uniform(0.5, 1.5))
            self.counters[key] = self.counters.get(key, 0) + step
        return dict(self.counters)


_DISK_RATES: Final = {
    "diskReads": 40.0,
    "diskWrites": 25.0,
    "diskReadBytes": 3_000_000.0,
    "diskWriteBytes": 1_500_000.0,
}
_INTERFACE_RATES: Final = {
    "ifHCInOctets": 2_500_000.0,
    "ifHCOutOctets": 1_200_000.0,
    "ifHCInUcastPkts": 2_000.0,
    "ifHCOutUcastPkts": 1_100.0,
    "ifInErrors": 0.02,
    "ifOutErrors": 0.01,
    "ifInDiscards": 0.05,
    "ifOutDiscards": 0.01,
}


def _ping(rng: random.Random) -> dict[str, Any]:
    average = round(rng.uniform(1.0, 40.0), 3)
    lost = rng.choice((0, 0, 0, 0, 0, 0, 0, 0, 1, 5))
    received = 5 - lost
    return {
        "packetsTransmitted": 5,
        "packetsReceived": received,
        "packetLossPercentile": lost * 20,
        "numberOfErrors": 0,
        "numberOfDuplicates": 0,
        "roundTripMinimal": round(average * 0.95, 3),
        "roundTripAverage": average,
        "roundTripMaximum": round(average * 1.05, 3),
        "exitCode": 0 if received else 1,
    }


def _http(rng: random.Random) -> dict[str, Any]:
    failed = rng.random() < 0.05
    return {
        "statusCode": 503 if failed else 200,
        "statusText": "Service Unavailable" if failed else "OK",
        "responseTimeMs": rng.randint(15, 900),
        "headers": {"Content-Type": "application/json", "Server": "nginx"},
        "body": {
            "status": "degraded" if failed else "ok",
            "version": "2.4.1",
            "queue": rng.randint(0, 40),
            "started": 1_700_000_000_000,
        },
    }


def _cpu(rng: random.Random) -> dict[str, Any]:
    user, system, wait = rng.uniform(2, 60), rng.uniform(1, 20), rng.uniform(0, 8)
    combined = min(user + system + wait, 100.0)
    return {
        "percentageUsage": {
            "user": round(user, 2),
            "sys": round(system, 2),
            "wait": round(wait, 2),
            "idle": round(100 - combined, 2),
            "combined": round(combined, 2),
        },
        "averageCpuLoad": {
            "oneMinuteAverageLoad": round(rng.uniform(0.1, 4), 2),
            "fiveMinutesAverageLoad": round(rng.uniform(0.1, 3), 2),
            "fifteenMinutesAverageLoad": round(rng.uniform(0.1, 2), 2),
        },
    }


def _memory(rng: random.Random) -> dict[str, Any]:
    total = 16 * GIB
    used = int(total * rng.uniform(0.2, 0.9))
    return {
        "total": total,
        "used": used,
        "free": total - used,
        "actualUsed": int(used * 0.8),
        "actualFree": total - int(used * 0.8),
        "usedPercent": round(used / total * 100, 2),
        "freePercent": round((total - used) / total * 100, 2),
    }


def _filesystem(rng: random.Random) -> dict[str, Any]:
    total = 512 * GIB
    used = int(total * rng.uniform(0.3, 0.95))
    return {
        "total": total,
        "used": used,
        "free": total - used,
        "avail": total - used,
        "usePercent": round(used / total * 100, 2),
    }


_META: Final[dict[str, dict[str, Any]]] = {
    KIND_PING: {
        "packetLossPercentile": {"type": "PERCENTILE", "changeRate": "SOMETIMES"},
        "roundTripAverage": {"changeRate": "ALWAYS"},
        "roundTripMaximum": {"changeRate": "ALWAYS"},
        "roundTripMinimal": {"changeRate": "ALWAYS"},
        "packetsTransmitted": {"changeRate": "NEVER"},
    },
    KIND_HTTP: {
        "statusText": {"type": "STRING", "changeRate": "SOMETIMES"},
        "headers": {
            "Content-Type": {"type": "STRING", "changeRate": "NEVER"},
            "Server": {"type": "STRING", "changeRate": "NEVER"},
        },
        "body": {
            "version": {"type": "STRING", "changeRate": "NEVER"},
            "queue": {"changeRate": "ALWAYS"},
            "started": {"type": "TIMESTAMP", "changeRate": "NEVER"},
        },
    },
    KIND_CPU: {
        "percentageUsage": {
            name: {"type": "PERCENTILE", "changeRate": "ALWAYS"}
            for name in ("user", "sys", "wait", "idle", "combined")
        }
    },
    KIND_MEMORY: {
        "total": {"type": "BYTE_QUANTITY", "changeRate": "NEVER"},
        "used": {"type": "BYTE_QUANTITY", "changeRate": "ALWAYS"},
        "free": {"type": "BYTE_QUANTITY", "changeRate": "ALWAYS"},
        "usedPercent": {"type": "PERCENTILE", "changeRate": "ALWAYS"},
    },
    KIND_FILESYSTEM: {
        "total": {"type": "BYTE_QUANTITY", "changeRate": "NEVER"},
        "usePercent": {"type": "PERCENTILE", "changeRate": "SOMETIMES"},
    },
    KIND_INTERFACE: {
        "ifHCInOctets": {"type": "BYTE_QUANTITY", "changeRate": "ALWAYS"},
        "ifHCOutOctets": {"type": "BYTE_QUANTITY", "changeRate": "ALWAYS"},
        "ifSpeed": {"changeRate": "NEVER"},
    },
}


def numeric_paths(payload: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a payload by dotted path (what the history stores)."""
    found: dict[str, float] = {}
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found.update(numeric_paths(value, f"{path}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[path] = float(value)
    return found


@dataclass(slots=True)
class ProbeBook:
    """The probes of every entity that has one, and the stat model they produce."""

    period_ms: int = DEFAULT_PERIOD_MS
    expiry_ms: int | None = None
    probes: dict[EntityKey, Probe] = field(default_factory=dict)

    def add(self, key: EntityKey, kind: str | None, seed: str) -> None:
        """Give an entity a probe (None: none)."""
        if kind is not None:
            self.probes[key] = Probe(kind, random.Random(seed))

    def next_stat(self, key: EntityKey, timestamp: int) -> dict[str, Any] | None:
        """The stat of the probe's next run, or None when the entity has no probe."""
        probe = self.probes.get(key)
        if probe is None:
            return None
        return self.stat(probe.kind, probe.payload(self.period_ms), timestamp)

    def stat(self, kind: str, payload: dict[str, Any], timestamp: int) -> dict[str, Any]:
        """A stat model around a payload."""
        body: dict[str, Any] = {
            "taskType": kind,
            "period": self.period_ms,
            "timestamp": timestamp,
            "agentId": AGENT_ID,
            "payload": payload,
        }
        if self.expiry_ms is not None:
            body["expiryPeriod"] = self.expiry_ms
        return body

    def remember(self, key: EntityKey, body: Mapping[str, Any]) -> None:
        """Keep a stat for the history (numeric metrics only, as SAYMON's time series)."""
        probe = self.probes.get(key)
        payload = body.get("payload")
        if probe is not None and isinstance(payload, Mapping):
            stamp = body.get("timestamp")
            if isinstance(stamp, int):
                probe.history.append((stamp, numeric_paths(payload)))

    def meta(self, key: EntityKey) -> dict[str, Any]:
        """`GET /objects/:id/stat/meta` of an entity ({} without a probe)."""
        probe = self.probes.get(key)
        if probe is None:
            return {}
        return {
            "entityId": key[1],
            "entityType": key[0],
            "taskType": probe.kind,
            "period": self.period_ms,
            "agentId": AGENT_ID,
            "payload": _META.get(probe.kind, {}),
        }

    def history(
        self,
        key: EntityKey,
        metrics: Iterable[str],
        start: int,
        end: int,
        downsample: str | None,
    ) -> list[dict[str, Any]]:
        """SAYMON's (OpenTSDB's) answer for some metrics of an entity between two times."""
        probe = self.probes.get(key)
        rows = [] if probe is None else [r for r in probe.history if start <= r[0] <= end]
        prefix = "link" if key[0] == ENTITY_LINK else "obj"
        answer: list[dict[str, Any]] = []
        for metric in metrics:
            points = [(stamp, values[metric]) for stamp, values in rows if metric in values]
            if not points:
                continue
            answer.append(
                {
                    "metric": metric,
                    "tags": {"entity": f"{prefix}{key[1]}"},
                    "aggregateTags": [],
                    "dps": [[stamp, value] for stamp, value in _downsample(points, downsample)],
                }
            )
        return answer


def parse_time(value: str, now: int) -> int:
    """`from`/`to` of the history: ms since the epoch or `<n><unit>-ago`; ValueError otherwise."""
    value = value.strip()
    if value.isdecimal():
        return int(value)
    match = _RELATIVE.match(value)
    if match is None:
        raise ValueError(f"bad time {value!r}")
    return now - int(match.group(1)) * _PERIOD_UNITS[match.group(2)]


def valid_downsample(value: str) -> bool:
    """Whether SAYMON would accept this downsample (e.g. `5m-avg`, `all-max`)."""
    return bool(_DOWNSAMPLE.match(value))


def _downsample(points: list[tuple[int, float]], spec: str | None) -> list[tuple[int, float]]:
    if not spec:
        return points
    match = _DOWNSAMPLE.match(spec)
    if match is None:
        return points
    span, how = match.groups()
    if span == "all":
        buckets: dict[int, list[float]] = {points[0][0]: [value for _, value in points]}
    else:
        number, unit = re.match(r"(\d+)(\D+)", span).groups()  # type: ignore[union-attr]
        width = max(1, int(number) * _PERIOD_UNITS[unit])
        buckets = {}
        for stamp, value in points:
            buckets.setdefault(stamp - stamp % width, []).append(value)
    return [(stamp, _reduce(how, values)) for stamp, values in sorted(buckets.items())]


def _reduce(how: str, values: list[float]) -> float:
    if how == "avg":
        return math.fsum(values) / len(values)
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    if how == "sum":
        return math.fsum(values)
    if how == "count":
        return float(len(values))
    return values[-1]
