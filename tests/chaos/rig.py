"""The chaos rig: Home Assistant + the integration + the MQTT mirror + the simulator, and the check.

One rig runs one entry against one simulator and one dedicated Mosquitto broker. Tests break
things, mark when a fault began and cleared, and call :meth:`ChaosRig.verify`, the one check
used after every fault: once the fault is gone,

* every entity state, the model and the incident counts equal the simulator's truth;
* every retained MQTT topic, read by a fresh Mosquitto subscriber, equals the truth;
* every incident change was fired exactly once, live or ``replayed`` (:mod:`.ledger`);
* nothing crashed or stayed stuck: the entry is loaded, Comet and the broker are connected,
  no resync or fetch task is left running, the task count is back near its baseline, and no
  error was logged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
import json
import logging
import time
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.saymon.const import (
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PASSWORD,
    CONF_MQTT_PORT,
    CONF_MQTT_QOS,
    CONF_MQTT_USERNAME,
    DOMAIN,
    MQTT_BROKER,
)
from custom_components.saymon.hub import SaymonHub
from custom_components.saymon.mqtt.mirror import SaymonMirror
from custom_components.saymon.states import BUILTIN_STATE_KEYS
from tests.integration.common import entry_for, settled
from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import (
    ENTITY_OBJECT,
    EVENT_INCIDENT_COUNT,
    EVENT_INCIDENTS,
    EVENT_STATE_CHANGE,
    SaymonSimulator,
    StormResult,
)

from . import report
from .ledger import HA_DOWN, OUTAGE, BusLedger, LedgerVerdict, SimIncidentLog, Window, compare
from .proxy import FreezeProxy

BASE_TOPIC = "chaos/saymon"
STORM_KINDS = (EVENT_STATE_CHANGE, EVENT_INCIDENTS, EVENT_INCIDENT_COUNT)
BUSY_TASKS = ("saymon-resync", "saymon-incident", "saymon-model-changed")
"""Tasks that only run while a resync or a REST read is under way."""
_TASK_SLACK = 8


class LogCapture(logging.Handler):
    """Keeps every record at or above ``level`` from every logger, formatted with tracebacks."""

    def __init__(self, level: int = logging.WARNING) -> None:
        """Attach with :meth:`attach`."""
        super().__init__(level)
        self.records: list[logging.LogRecord] = []
        self.by_level: Counter[str] = Counter()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Count and keep the record."""
        self.by_level[record.levelname] += 1
        self.records.append(record)

    def attach(self) -> None:
        """Listen on the root logger."""
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        """Stop listening."""
        logging.getLogger().removeHandler(self)

    def errors(self) -> list[str]:
        """Formatted ERROR and CRITICAL records."""
        return [self.format(r) for r in self.records if r.levelno >= logging.ERROR]


@dataclass(slots=True)
class Verdict:
    """Everything :meth:`ChaosRig.verify` found after one fault."""

    fault: str
    tried: str
    truth_equal: bool
    recover_seconds: float | None
    ledger: LedgerVerdict
    problems: list[str] = field(default_factory=list)
    notes: str = ""
    ledger_checked: bool = True

    @property
    def ok(self) -> bool:
        """The fault was survived: truth restored, ledger exact, nothing stuck."""
        return (
            self.truth_equal and (self.ledger.ok or not self.ledger_checked) and not self.problems
        )

    def row(self) -> dict[str, Any]:
        """The results-table row."""
        return {
            "fault": self.fault,
            "tried": self.tried,
            "live": self.ledger.live,
            "replayed": self.ledger.replayed,
            "duplicates": self.ledger.duplicates if self.ledger_checked else None,
            "missing": self.ledger.missing + self.ledger.phantoms if self.ledger_checked else None,
            "unrecoverable": self.ledger.unrecoverable,
            "recover_s": self.recover_seconds,
            "truth_equal": self.truth_equal and not self.problems,
            "sim_opened": self.ledger.sim_opened,
            "sim_closed": self.ledger.sim_closed,
            "notes": self.notes,
            "problems": [*self.problems, *(self.ledger.problems if self.ledger_checked else [])],
        }

    def explain(self) -> str:
        """Why the fault was not survived."""
        return json.dumps(self.row(), indent=1, default=str)


def mirror_options(broker: MosquittoBroker) -> dict[str, Any]:
    """Options of an entry that mirrors to ``broker`` under :data:`BASE_TOPIC`."""
    return {
        CONF_MQTT_MODE: MQTT_BROKER,
        CONF_MQTT_HOST: broker.host,
        CONF_MQTT_PORT: broker.port,
        CONF_MQTT_BASE_TOPIC: BASE_TOPIC,
        CONF_MQTT_QOS: 1,
    }


class ChaosRig:
    """One entry, its simulator and its broker, plus the ledgers and the fault windows."""

    def __init__(
        self,
        hass: HomeAssistant,
        simulator: SaymonSimulator,
        broker: MosquittoBroker,
        *,
        broker_auth: tuple[str, str] | None = None,
    ) -> None:
        """Nothing runs before :meth:`start`."""
        self.hass = hass
        self.broker_auth = broker_auth
        self.sim = simulator
        self.broker = broker
        self.entry: MockConfigEntry | None = None
        self.windows: list[Window] = []
        self.baselines: list[tuple[float, set[str]]] = []
        self.sim_log = SimIncidentLog(simulator)
        self.bus = BusLedger(hass)
        self.logs = LogCapture()
        self.logs.attach()
        self._task_baseline = 0
        self._cleared_at: float | None = None
        self.proxy: FreezeProxy | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, options: dict[str, Any] | None = None, **data: Any) -> SaymonHub:
        """Set up the entry with the mirror on; returns once connected and settled."""
        mirror = mirror_options(self.broker)
        if self.broker_auth is not None:
            mirror[CONF_MQTT_USERNAME], mirror[CONF_MQTT_PASSWORD] = self.broker_auth
        entry = entry_for(self.sim, {**mirror, **(options or {})}, **data)
        entry.add_to_hass(self.hass)
        self.entry = entry
        assert await self.hass.config_entries.async_setup(entry.entry_id)
        await self.settle()
        self.baselines.append((time.monotonic(), set(self.hub.model.incidents)))
        self._task_baseline = len(client_tasks())
        return self.hub

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until the entry is connected, resynced, and the mirror reached the broker."""
        entry = self.entry
        assert entry is not None
        await settled(self.hass, entry)
        await wait_until(
            lambda: self.mirror.transport.connected, timeout, "the mirror connected to its broker"
        )

    def close(self) -> None:
        """Stop listening (the fixture unloads the entry and stops the servers)."""
        self.bus.close()
        self.sim_log.detach()
        self.logs.detach()

    @property
    def hub(self) -> SaymonHub:
        """The entry's current hub (a new one after every reload)."""
        assert self.entry is not None
        hub: SaymonHub = self.entry.runtime_data.hub
        return hub

    @property
    def mirror(self) -> SaymonMirror:
        """The entry's MQTT mirror."""
        assert self.entry is not None
        mirror = self.entry.runtime_data.mirror
        assert isinstance(mirror, SaymonMirror)
        return mirror

    # -- faults -----------------------------------------------------------------------------

    def fault_begins(self, kind: str = OUTAGE) -> Window:
        """Mark the start of a fault."""
        window = Window(kind, time.monotonic())
        self.windows.append(window)
        return window

    def fault_clears(self, window: Window | None = None) -> None:
        """Mark the moment the fault was removed (recovery time is measured from here)."""
        self._cleared_at = time.monotonic()
        if window is not None and window.kind == HA_DOWN:
            window.end = self._cleared_at

    def storm(self, seconds: float, rate: float) -> asyncio.Task[StormResult]:
        """Random real state changes (with their incidents) for ``seconds`` at ``rate``/s."""
        return asyncio.create_task(
            self.sim.storm(max(1, int(seconds * rate)), rate, kinds=STORM_KINDS),
            name="chaos-storm",
        )

    async def restart_entry(self, downtime: float, *, blind_since: float | None = None) -> None:
        """Home Assistant restarting, as far as phcc allows: unload, stay down, set up again.

        The entry's hub, clients, model, mirror and entities are all thrown away and rebuilt
        from SAYMON's REST picture, exactly what a process restart does to this integration.
        ``blind_since``: when the old hub last had a live link (it never reconnected to
        replay what it missed since then); default: now.
        """
        entry = self.entry
        assert entry is not None
        window = self.fault_begins(HA_DOWN)
        if blind_since is not None:
            window.start = blind_since
        assert await self.hass.config_entries.async_unload(entry.entry_id)
        await asyncio.sleep(downtime)
        assert await self.hass.config_entries.async_setup(entry.entry_id)
        self.loaded_again()
        self.fault_clears(window)  # verify() waits for the rest (Comet may still be away)

    async def wait_reloaded(self, old: SaymonHub, timeout: float = 30.0) -> None:
        """Wait until the entry was set up again with a new hub (reauth, options), settled."""

        def reloaded() -> bool:
            entry = self.entry
            return (
                entry is not None
                and entry.state is ConfigEntryState.LOADED
                and getattr(getattr(entry, "runtime_data", None), "hub", old) is not old
            )

        await wait_until(reloaded, timeout, "the entry loaded again")
        await self.settle()

    def loaded_again(self) -> None:
        """Record the picture a freshly loaded entry took in without firing events."""
        self.baselines.append((time.monotonic(), set(self.hub.model.incidents)))

    # -- the check --------------------------------------------------------------------------

    async def verify(
        self,
        fault: str,
        tried: str,
        *,
        timeout: float = 90.0,
        notes: str = "",
        check_ledger: bool = True,
    ) -> Verdict:
        """The check after every fault (see the module docstring); records a results row."""
        cleared = self._cleared_at or time.monotonic()
        problems: list[str] = []
        diff: list[str] = []

        def converged() -> bool:
            nonlocal diff
            diff = self.truth_diff()
            return not diff

        truth_equal = await poll(converged, timeout)
        recovered = time.monotonic()
        for window in self.windows:
            if window.end is None:
                window.end = recovered
        if not truth_equal:
            problems += diff[:20]
        else:
            problems += await self.retained_diff()
            problems += await self.stuck()
        problems += [f"logged: {text}" for text in self.logs.errors()[:10]]
        ledger = compare(self.sim_log, self.bus, self.baselines, self.windows)
        verdict = Verdict(
            fault=fault,
            tried=tried,
            truth_equal=truth_equal,
            recover_seconds=round(recovered - cleared, 2) if truth_equal else None,
            ledger=ledger,
            problems=problems,
            notes=notes,
            ledger_checked=check_ledger,
        )
        report.record("faults", verdict.row())
        return verdict

    def truth_diff(self) -> list[str]:
        """Differences between Home Assistant (entry, model, entities) and the simulator."""
        entry = self.entry
        assert entry is not None
        if entry.state is not ConfigEntryState.LOADED:
            return [f"entry is {entry.state}"]
        hub = self.hub
        diff: list[str] = []
        if not (hub.connected and hub.comet.connected):
            diff.append("Comet is not connected")
        model = self.sim.model
        active = model.incidents.active
        if set(hub.model.incidents) != set(active):
            extra = set(hub.model.incidents) - set(active)
            lost = set(active) - set(hub.model.incidents)
            diff.append(f"incidents: {len(extra)} extra, {len(lost)} missing")
        levels = Counter(str(incident.state) for incident in active.values())
        for level_id in hub.model.levels:
            if hub.model.level_count(level_id) != levels.get(level_id, 0):
                diff.append(f"level {level_id}: {hub.model.level_count(level_id)}")
        with_incident = {inc.entity_id for inc in active.values() if inc.entity_type == 1}
        registry = er.async_get(self.hass)
        states = self.hass.states
        key = hub.server_key
        total = registry.async_get_entity_id("sensor", DOMAIN, f"{key}|active_incidents")
        if total is None or (s := states.get(total)) is None or s.state != str(len(active)):
            diff.append(f"active incidents sensor != {len(active)}")
        for level_id, count in ((lvl, levels.get(lvl, 0)) for lvl in hub.model.levels):
            entity_id = registry.async_get_entity_id(
                "sensor", DOMAIN, f"{key}|incidents_level_{level_id}"
            )
            state = states.get(entity_id) if entity_id is not None else None
            if state is not None and state.state != str(count):  # disabled ones have none
                diff.append(f"level {level_id} sensor {state.state} != {count}")
        for obj in model.objects.values():
            if hub.model.state_of(obj.id) != str(obj.state_id):
                diff.append(f"model state of {obj.id}")
                continue
            sensor = registry.async_get_entity_id("sensor", DOMAIN, f"{key}|object|{obj.id}|state")
            problem = registry.async_get_entity_id(
                "binary_sensor", DOMAIN, f"{key}|object|{obj.id}|problem"
            )
            expected = BUILTIN_STATE_KEYS.get(str(obj.state_id))
            state = states.get(sensor) if sensor is not None else None
            if state is None or state.state != expected:
                diff.append(f"state sensor of {obj.id}: {state and state.state} != {expected}")
            flag = states.get(problem) if problem is not None else None
            wanted = "on" if obj.id in with_incident else "off"
            if flag is None or flag.state != wanted:
                diff.append(f"problem sensor of {obj.id}: {flag and flag.state} != {wanted}")
        return diff

    def retained_truth(self) -> dict[str, str | int]:
        """Retained topic -> expected value (the state id, or a count) per the simulator."""
        model = self.sim.model
        active = model.incidents.active
        levels = Counter(str(incident.state) for incident in active.values())
        truth: dict[str, str | int] = {
            f"{BASE_TOPIC}/status": "online",
            f"{BASE_TOPIC}/connection": "online",
            f"{BASE_TOPIC}/incidents/count": len(active),
        }
        for level_id in self.hub.model.levels:
            truth[f"{BASE_TOPIC}/incidents/count/{level_id}"] = levels.get(level_id, 0)
        per_object = Counter(
            incident.entity_id
            for incident in active.values()
            if incident.entity_type == ENTITY_OBJECT
        )
        for obj in model.objects.values():
            truth[f"{BASE_TOPIC}/objects/{topic_level(obj.id)}/state"] = str(obj.state_id)
            truth[f"{BASE_TOPIC}/objects/{topic_level(obj.id)}/incidents"] = per_object[obj.id]
        return truth

    async def retained_diff(self, timeout: float = 30.0) -> list[str]:
        """Read the broker's retained picture with a fresh subscriber; differences found."""
        if not self.mirror.transport.connected:
            await poll(lambda: self.mirror.transport.connected, timeout)
        truth = self.retained_truth()
        subscriber = Subscriber(self.broker.port, f"{BASE_TOPIC}/#", auth=self.broker_auth)
        await subscriber.start()
        diff: list[str] = []

        def compare_retained() -> bool:
            nonlocal diff
            diff = []
            for topic, expected in truth.items():
                payload = subscriber.retained(topic)
                if payload is None:
                    diff.append(f"retained {topic} missing")
                elif _retained_value(topic, payload) != expected:
                    diff.append(f"retained {topic} = {payload[:80]!r}, expected {expected!r}")
            diff += [f"retained {topic} should not exist" for topic in unexpected_retained()]
            return not diff

        def unexpected_retained() -> list[str]:
            """Retained topics the truth has no place for (e.g. a deleted object's state).

            Metrics (``stat``) and link states are not compared, but only SAYMON's present
            objects and links may have them.
            """
            model = self.sim.model
            places = set(truth)
            places.update(f"{BASE_TOPIC}/objects/{topic_level(o)}/stat" for o in model.objects)
            for link in model.links:
                places.update(f"{BASE_TOPIC}/links/{topic_level(link)}/{leaf}" for leaf in LEAVES)
            topics = {m.topic for m in subscriber.messages if m.retain} - places
            return sorted(topic for topic in topics if subscriber.retained(topic))

        try:
            await poll(compare_retained, timeout)
        finally:
            await subscriber.close()
        return diff[:20]

    async def stuck(self, timeout: float = 15.0) -> list[str]:
        """Tasks left running, duplicated supervisors, a task count far above its baseline."""
        found: list[str] = []

        def quiet() -> bool:
            names = Counter(task.get_name() for task in asyncio.all_tasks())
            return not self.hub.live.resync_pending and not any(
                names.get(name) for name in BUSY_TASKS
            )

        if not await poll(quiet, timeout):
            found.append("resync/fetch tasks still running")
        names = Counter(task.get_name() for task in asyncio.all_tasks())
        for name in ("saymon-comet", "saymon-comet-worker"):
            if names.get(name) != 1:
                found.append(f"{names.get(name, 0)} {name} tasks")
        tasks = len(client_tasks())
        if tasks > self._task_baseline + _TASK_SLACK:
            kinds = Counter(task_kind(task) for task in client_tasks())
            found.append(
                f"{tasks} tasks, {self._task_baseline} after setup: {kinds.most_common(5)}"
            )
        if not self.mirror.transport.connected:
            found.append("mirror not connected")
        return found


LEAVES = ("state", "stat")
"""A link's retained topics."""


def topic_level(saymon_id: str) -> str:
    """The README's rule for ids in topics: no ``+``, ``#``, ``/`` or control characters."""
    cleaned = "".join(c for c in saymon_id if c not in "+#/" and not (ord(c) < 32 or c == "\x7f"))
    return cleaned or "_"


def client_tasks() -> list[asyncio.Task[Any]]:
    """Every task but the in-process servers' connection handlers (kept for keep-alive)."""
    return [task for task in asyncio.all_tasks() if _SERVER_TASK not in task_kind(task)]


_SERVER_TASK = "RequestHandler.start"


def task_kind(task: asyncio.Task[Any]) -> str:
    """The task's name (unless asyncio's numbered default) and its coroutine's qualname."""
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or type(coro).__name__
    task_name = task.get_name()
    if task_name.startswith("Task-"):
        return name
    return f"{task_name}:{name}"


def _retained_value(topic: str, payload: bytes) -> str | int:
    if topic.endswith("/state"):
        try:
            return str(json.loads(payload)["state_id"])
        except (ValueError, KeyError, TypeError):
            return payload.decode(errors="replace")
    text = payload.decode(errors="replace")
    return int(text) if text.isdecimal() else text


async def poll(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Evaluate ``predicate`` until true or ``timeout``; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Like :func:`poll`, but fail with ``what`` on timeout."""
    if not await poll(predicate, timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
