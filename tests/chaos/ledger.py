"""Incident ledgers: what the simulator really did, what Home Assistant fired, and the verdict.

The simulator side wraps the simulator's publisher, so every incident it opens, modifies or
closes is recorded with the time it happened, whether or not a Comet client was connected.
The Home Assistant side counts ``saymon_incident`` bus events (live and ``replayed``).

The rule: every incident that opened after the check began must have exactly one ``opened``
event, and every incident Home Assistant knew about must have exactly one ``closed`` event once
SAYMON closed it; nothing twice, nothing SAYMON never did. That includes incidents that opened
and closed entirely while the link was down (the resync finds them in SAYMON's incident
history). One exception is *unrecoverable* and counted apart: changes made while the entry
itself was not loaded (Home Assistant restarting, or the entry reloading after a reauth): the
hub keeps no model across a restart, so it starts from SAYMON's picture without firing events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
import time
from typing import Any

from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback

from custom_components.saymon.const import EVENT_INCIDENT
from tools.simulator import EVENT_INCIDENTS, SaymonSimulator

OUTAGE = "outage"
"""The live link (Comet, the network) was down; a reconnect must replay what changed."""
HA_DOWN = "ha-down"
"""The entry was not loaded (restart, reload); no event can be replayed for this time."""

_OPENED, _MODIFIED, _CLOSED = 1, 2, 3


@dataclass(slots=True)
class Window:
    """A stretch of time during which a fault was active."""

    kind: str
    start: float
    end: float | None = None

    def covers(self, moment: float) -> bool:
        """Whether ``moment`` falls inside (an open window extends to now)."""
        return self.start <= moment <= (self.end if self.end is not None else time.monotonic())


class SimIncidentLog:
    """Every incident change the simulator makes, with its monotonic time."""

    def __init__(self, simulator: SaymonSimulator) -> None:
        """Start recording (wraps the simulator's publisher)."""
        self.opened: dict[str, float] = {}
        self.closed: dict[str, float] = {}
        self.modified = 0
        self._simulator = simulator
        self._inner = simulator.core.publisher
        simulator.core.publisher = self._publish

    async def _publish(self, events: Sequence[Any]) -> None:
        now = time.monotonic()
        for event in events:
            if event.name != EVENT_INCIDENTS:
                continue
            change = event.payload["changeType"]
            payload = event.payload["payload"]
            incident_id = str(payload["id"])
            # Closed when cleared (a modification with clearTimestamp, listed until SAYMON's
            # incident timeout) or, without that stage, when moved to the history.
            cleared = change == _CLOSED or payload.get("clearTimestamp") is not None
            if change == _OPENED:
                self.opened[incident_id] = now
            elif cleared:
                self.closed.setdefault(incident_id, now)
            else:
                self.modified += 1
        inner: Callable[[Sequence[Any]], Awaitable[None]] | None = self._inner
        if inner is not None:
            await inner(events)

    def detach(self) -> None:
        """Stop recording."""
        self._simulator.core.publisher = self._inner


@dataclass(slots=True)
class _Seen:
    opened: int = 0
    closed: int = 0
    first_opened: float | None = None
    after_close: int = 0


def own_copy(text: str) -> str:
    """A new string equal to ``text``, allocated here (in the tests' files)."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")


class BusLedger:
    """``saymon_incident`` events as Home Assistant fired them."""

    def __init__(self, hass: HomeAssistant | None) -> None:
        """Listen on the bus (without ``hass``: fed through :meth:`add`)."""
        self.by_id: dict[str, _Seen] = {}
        self.counts: Counter[str] = Counter()
        self._unsubscribe: CALLBACK_TYPE | None = (
            None if hass is None else hass.bus.async_listen(EVENT_INCIDENT, self._record)
        )

    @callback
    def _record(self, event: Event) -> None:
        data = event.data
        self.add(str(data["type"]), str(data["incident_id"]), bool(data.get("replayed")))

    def add(self, kind: str, incident_id: str, replayed: bool, at: float | None = None) -> None:
        """Count one incident event (``at``: when it was seen, default now)."""
        self.counts["replayed" if replayed else "live"] += 1
        seen = self.by_id.get(incident_id)
        if seen is None:
            # A copy made here: the id as fired was allocated by the integration's decoder, and
            # keeping that object would count every incident ever seen as integration memory
            # in the soak's heap figure (which leaves out what the tests' own files allocate).
            seen = self.by_id[own_copy(incident_id)] = _Seen()
        if seen.closed:
            seen.after_close += 1
        if kind == "opened":
            seen.opened += 1
            if seen.first_opened is None:
                seen.first_opened = time.monotonic() if at is None else at
        elif kind == "closed":
            seen.closed += 1

    def close(self) -> None:
        """Stop listening."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


@dataclass(slots=True)
class LedgerVerdict:
    """What the comparison found."""

    live: int = 0
    replayed: int = 0
    duplicates: int = 0
    missing: int = 0
    unrecoverable: int = 0
    phantoms: int = 0
    sim_opened: int = 0
    sim_closed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No duplicate, no missing change, nothing invented."""
        return not (self.duplicates or self.missing or self.phantoms)


def compare(
    sim: SimIncidentLog,
    bus: BusLedger,
    baselines: Sequence[tuple[float, set[str]]],
    windows: Sequence[Window],
) -> LedgerVerdict:
    """Check the bus ledger against the simulator's history (see the module docstring).

    ``baselines`` are the incident sets Home Assistant's model held, without events, at the
    start and after each (re)load of the entry, with the time it took each.
    """
    verdict = LedgerVerdict(
        live=bus.counts["live"],
        replayed=bus.counts["replayed"],
        sim_opened=len(sim.opened),
        sim_closed=len(sim.closed),
    )
    initial = baselines[0][1] if baselines else set()
    start = baselines[0][0] if baselines else 0.0

    def down(moment: float, kinds: tuple[str, ...]) -> Window | None:
        return next((w for w in windows if w.kind in kinds and w.covers(moment)), None)

    def problem(text: str) -> None:
        if len(verdict.problems) < 20:
            verdict.problems.append(text)

    ids = set(sim.opened) | set(sim.closed) | set(bus.by_id) | initial
    for incident_id in sorted(ids):
        seen = bus.by_id.get(incident_id, _Seen())
        opened_at = sim.opened.get(incident_id)
        closed_at = sim.closed.get(incident_id)
        loaded_at = [moment for moment, held in baselines if incident_id in held]

        extra = max(0, seen.opened - 1) + max(0, seen.closed - 1) + seen.after_close
        if seen.opened and incident_id in initial:
            extra += seen.opened
        if extra:
            verdict.duplicates += extra
            problem(f"{incident_id}: {seen.opened} opened, {seen.closed} closed events")
        if (seen.opened or seen.closed) and opened_at is None and incident_id not in initial:
            verdict.phantoms += 1
            problem(f"{incident_id}: events for an incident SAYMON never had")

        if opened_at is not None and not seen.opened:
            if any(moment >= opened_at for moment in loaded_at) or (
                closed_at is not None and _same_window(windows, HA_DOWN, opened_at, closed_at)
            ):
                verdict.unrecoverable += 1  # while the entry was not loaded: no event by design
            else:
                verdict.missing += 1
                problem(
                    f"{incident_id}: opened in SAYMON at {_at(opened_at, start)}, closed at "
                    f"{_at(closed_at, start)}, never reported (faults: {_spans(windows, start)})"
                )
        if closed_at is not None and not seen.closed:
            known = any(moment <= closed_at for moment in loaded_at) or (
                seen.first_opened is not None and seen.first_opened <= closed_at
            )
            if not known:
                continue
            if down(closed_at, (HA_DOWN,)) is not None:
                verdict.unrecoverable += 1
            else:
                verdict.missing += 1
                problem(
                    f"{incident_id}: closed in SAYMON at {_at(closed_at, start)}, never reported"
                    f" (faults: {_spans(windows, start)})"
                )
    return verdict


def _same_window(windows: Sequence[Window], kind: str, opened_at: float, closed_at: float) -> bool:
    return any(w.kind == kind and w.covers(opened_at) and w.covers(closed_at) for w in windows)


def _at(moment: float | None, start: float) -> str:
    return "-" if moment is None else f"{moment - start:+.2f} s"


def _spans(windows: Sequence[Window], start: float) -> str:
    return ", ".join(f"{w.kind} {_at(w.start, start)}..{_at(w.end, start)}" for w in windows)
