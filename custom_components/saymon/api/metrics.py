"""The latest metrics of the objects and links followed: values, freshness, kinds, bad input.

:class:`MetricStore` keeps, per object or link, the last good value of every metric seen in
its stat, when each one last had a value, and the stat's expiry window (period + expiry
period). It applies stats from Comet and from ``stat/search`` alike, newest first by SAYMON's
timestamp, so a REST answer read while events flow never steps a value back. Each application
returns a :class:`MetricsChanged` (or nothing when nothing changed), the typed change the live
session reports like any other.

SAYMON's payloads are free-form, so the store guards the picture a metric shows:

* a metric missing from a payload keeps its value ("no new value", not a deletion) until its
  window passes without one; :meth:`MetricStore.expire` then marks it expired;
* a metric's kind (number, boolean, text) is fixed by its first value, or beforehand by a
  *hint* (SAYMON's metadata, or a sensor that already records statistics); a value of another
  kind (text for a number, a number for a boolean) is rejected, counted and logged once, and
  the last good value stays. Numeric text for a number is read as the number, and a number
  for a text as its text.

No Home Assistant imports: pure data, tested and benchmarked alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import logging
import math
from typing import Final

from .models import EntityType
from .stat import MetricValue, Problem, StatRecord

_LOGGER = logging.getLogger(__name__)


class Kind(StrEnum):
    """What a metric's values are; fixed once known."""

    NUMBER = "number"
    BOOLEAN = "boolean"
    TEXT = "text"


_KINDS: Final = {int: Kind.NUMBER, float: Kind.NUMBER, bool: Kind.BOOLEAN, str: Kind.TEXT}


def kind_of(value: MetricValue) -> Kind:
    """The kind of one value."""
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, str):
        return Kind.TEXT
    return Kind.NUMBER


@dataclass(frozen=True, slots=True)
class MetricsChanged:
    """Metrics of an object or link changed: new values, new metrics, or metrics that expired.

    ``changed``: metrics whose value is new (or fresh again after expiring); ``added``: metrics
    that had no value before (the Home Assistant side may create entities for them);
    ``expired``: metrics whose window passed without a value.
    """

    entity_id: str
    entity_type: EntityType
    timestamp: int | None
    changed: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    expired: frozenset[str] = frozenset()
    forgotten: bool = False
    """No longer followed: its metrics were dropped (they are not kept up to date)."""


@dataclass(slots=True)
class EntityMetrics:
    """The metrics of one object or link."""

    entity_type: EntityType
    timestamp: int | None = None
    """SAYMON's timestamp (ms) of the newest stat applied."""
    task_type: str | None = None
    window: int | None = None
    """Milliseconds a metric stays valid after its last value (period + expiry period)."""
    values: dict[str, MetricValue] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    """Wall-clock ms at which each metric last had a value."""
    expired: set[str] = field(default_factory=set)
    deadline: float | None = None
    """When the next metric expires (wall-clock ms), if ever."""

    def update_deadline(self) -> None:
        """Recompute :attr:`deadline` after values arrived or expired."""
        window = self.window
        live = [at for path, at in self.seen.items() if path not in self.expired]
        self.deadline = None if window is None or not live else min(live) + window


def expiry_window(period: int | None, expiry_period: int | None) -> int | None:
    """How long a value stays valid: its period plus its expiry period (ms).

    SAYMON keeps a stat for ``expiryPeriod + period``; without an expiry period it uses a server
    setting the API does not tell, taken here as one more period. Without a period nothing
    expires.
    """
    if not period:
        return None
    return period + (expiry_period if expiry_period is not None else period)


@dataclass(slots=True)
class MetricStore:
    """Latest metrics per object/link id (object and link ids never collide in SAYMON)."""

    entities: dict[str, EntityMetrics] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    """Values refused, by :class:`~.stat.Problem` (for the diagnostics)."""
    hints: dict[str, dict[str, Kind]] = field(default_factory=dict)
    """Kinds expected per object or link and metric before any value (kept while unfollowed)."""
    _warned: set[str] = field(default_factory=set)

    # -- reading ----------------------------------------------------------------------------

    def value(self, entity_id: str, path: str) -> MetricValue | None:
        """A metric's last good value (also while expired)."""
        entry = self.entities.get(entity_id)
        return None if entry is None else entry.values.get(path)

    def fresh(self, entity_id: str, path: str) -> bool:
        """Whether a metric has a value that has not expired."""
        entry = self.entities.get(entity_id)
        return entry is not None and path in entry.values and path not in entry.expired

    def metrics(self, entity_id: str) -> Mapping[str, MetricValue]:
        """Every metric value of one object or link."""
        entry = self.entities.get(entity_id)
        return {} if entry is None else entry.values

    def kind(self, entity_id: str, path: str) -> Kind | None:
        """The kind a metric is known to have: its value's, or the one it was hinted."""
        entry = self.entities.get(entity_id)
        value = None if entry is None else entry.values.get(path)
        if value is not None:
            return kind_of(value)
        return self.hints.get(entity_id, {}).get(path)

    @property
    def size(self) -> int:
        """Metric values held."""
        return sum(len(entry.values) for entry in self.entities.values())

    # -- changing ---------------------------------------------------------------------------

    def hint(self, entity_id: str, path: str, kind: Kind) -> None:
        """Expect ``kind`` for a metric before its first value (a value already there wins)."""
        self.hints.setdefault(entity_id, {})[path] = kind

    def retain(self, keep: Collection[str]) -> list[MetricsChanged]:
        """Forget the objects and links that are no longer followed; one change for each."""
        gone = [e for e in self.entities if e not in keep]
        changes = []
        for entity_id in gone:
            entry = self.entities.pop(entity_id)
            changes.append(
                MetricsChanged(entity_id, entry.entity_type, entry.timestamp, forgotten=True)
            )
        return changes

    def apply(self, record: StatRecord, now_ms: float, *, live: bool) -> MetricsChanged | None:
        """Take one stat in; what changed, or ``None``.

        A stat older than the newest one applied is ignored, and so is a REST answer as old as
        it (a Comet event of the same time may repeat it: its values are the same anyway).
        ``live``: from Comet, received now; otherwise its values date from its timestamp.
        """
        entry = self._entry(record.entity_id, record.entity_type)
        stamp, newest = record.timestamp, entry.timestamp
        if (
            stamp is not None
            and newest is not None
            and (stamp < newest or (stamp == newest and not live))
        ):
            return None
        if stamp is not None:
            entry.timestamp = stamp
        if record.task_type is not None:
            entry.task_type = record.task_type
        entry.window = expiry_window(record.period, record.expiry_period)
        seen = now_ms if live or stamp is None else min(now_ms, float(stamp))
        values, expired, seen_at = entry.values, entry.expired, entry.seen
        hints = self.hints.get(record.entity_id)
        changed: set[str] = set()
        added: set[str] = set()
        fresh = 0
        for path, raw in record.metrics.items():
            old = values.get(path)
            if old is None:
                known = hints.get(path) if hints else None
                value = raw if known is None else self._accept(record.entity_id, path, raw, known)
                if value is None:
                    continue
                added.add(path)
                changed.add(path)
            else:
                value = raw
                if _KINDS.get(type(raw)) is not _KINDS.get(type(old)):
                    value = self._accept(record.entity_id, path, raw, kind_of(old))
                    if value is None:
                        continue
                if value != old or path in expired:
                    changed.add(path)
            values[path] = value
            if seen_at.get(path) != seen:
                fresh += 1
            seen_at[path] = seen
            if expired:
                expired.discard(path)
        if fresh == len(seen_at) and not expired and entry.window is not None:
            entry.deadline = seen + entry.window  # every metric just seen (the usual stat)
        else:
            entry.update_deadline()
        if not changed:
            return None
        return MetricsChanged(
            record.entity_id,
            record.entity_type,
            stamp,
            changed=frozenset(changed),
            added=frozenset(added),
        )

    def expire(self, now_ms: float) -> list[MetricsChanged]:
        """Mark every metric whose window passed without a value; one change per entity."""
        changes: list[MetricsChanged] = []
        for entity_id, entry in self.entities.items():
            if entry.deadline is None or entry.deadline > now_ms or entry.window is None:
                continue
            window = entry.window
            gone = {
                path
                for path, at in entry.seen.items()
                if path not in entry.expired and at + window <= now_ms
            }
            entry.expired |= gone
            entry.update_deadline()
            if gone:
                changes.append(
                    MetricsChanged(
                        entity_id, entry.entity_type, entry.timestamp, expired=frozenset(gone)
                    )
                )
        return changes

    def next_deadline(self) -> float | None:
        """When the next metric expires (wall-clock ms), if any does."""
        deadlines = [e.deadline for e in self.entities.values() if e.deadline is not None]
        return min(deadlines, default=None)

    # -- internals --------------------------------------------------------------------------

    def _entry(self, entity_id: str, entity_type: EntityType) -> EntityMetrics:
        entry = self.entities.get(entity_id)
        if entry is None:
            entry = self.entities[entity_id] = EntityMetrics(entity_type)
        return entry

    def _accept(
        self, entity_id: str, path: str, value: MetricValue, known: Kind | None
    ) -> MetricValue | None:
        """``value`` as the metric's kind, or ``None`` (rejected, counted) when it is not."""
        kind = kind_of(value)
        if known is None or kind is known:
            return value
        if known is Kind.TEXT:  # a number or a boolean reads as text as well
            return str(value).lower() if isinstance(value, bool) else str(value)
        if known is Kind.NUMBER and kind is Kind.TEXT:
            number = _number(str(value))
            if number is not None:
                return number
            self._reject(Problem.NOT_NUMERIC, entity_id, path, value)
            return None
        self._reject(Problem.TYPE_CHANGED, entity_id, path, value)
        return None

    def _reject(self, problem: Problem, entity_id: str, path: str, value: MetricValue) -> None:
        self.rejected[problem] += 1
        first = problem not in self._warned
        self._warned.add(problem)
        _LOGGER.log(
            logging.WARNING if first else logging.DEBUG,
            "SAYMON metric %s of %s changed its type (now %s %r); the last good value is kept%s",
            path,
            entity_id,
            kind_of(value),
            value if not isinstance(value, str) else value[:40],
            " (later cases are counted in the diagnostics)" if first else "",
        )


_MAX_NUMBER_TEXT: Final = 40


def _number(text: str) -> int | float | None:
    """Numeric text as a number (``"42"``, ``" 3.5 "``); ``None`` for anything else."""
    text = text.strip()
    if not text or len(text) > _MAX_NUMBER_TEXT:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
