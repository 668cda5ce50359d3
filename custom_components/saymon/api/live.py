"""One SAYMON server followed live: REST snapshots, the Comet stream and the model they keep true.

:class:`SaymonLive` owns the REST client, the Comet client and the :class:`~.model.SaymonModel`,
as a protocol library keeps its live state (aiounifi, aiohue). It turns every Comet event and
every REST snapshot into typed changes (:data:`~.model.Change`) and hands them, in order, to one
:class:`LiveListener`; it resyncs by itself after every (re)connect, a full event queue, a count
SAYMON cannot explain and a memory that outgrew SAYMON's lists, retrying with backoff.

The promise it keeps: every change reaches the listener exactly once and in order, live or
``replayed`` after a gap (see :meth:`SaymonLive.resync` for how a snapshot and the events around
it are reconciled). No Home Assistant imports: timers go through a :data:`Scheduler` the caller
may supply (Home Assistant's, so its tests can move time).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
import logging
import ssl
import time
from typing import Any, Final, Protocol

import aiohttp

from .backoff import Backoff
from .comet import CometClient, Subscription
from .errors import (
    SaymonConnectionError,
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonNotFoundError,
)
from .events import (
    TOPIC_INCIDENT_COUNT,
    TOPIC_INCIDENTS,
    TOPIC_MODEL_CHANGED,
    TOPIC_STATE_CHANGE,
    CometEvent,
    IncidentChange,
    IncidentCountEvent,
    IncidentEvent,
    ModelChange,
    ModelChangedEvent,
    RawEvent,
    StateChangeEvent,
    StatEvent,
)
from .incident_reads import IncidentReads
from .metric_follow import MetricFollower
from .model import (
    Change,
    IncidentChanged,
    ModelChanged,
    SaymonModel,
    Snapshot,
    Source,
    index_by_id,
    subtree_ids,
)
from .models import EntityType, Incident
from .operations import JobFollower, SaymonOperations
from .ratelimit import ServerEventGate
from .rest import Credentials, SaymonRestClient
from .server_events import (
    IGNORED_TOPICS,
    SERVER_EVENT_TYPES,
    SERVER_TOPICS,
    JobEvent,
)
from .url import comet_endpoint

_LOGGER = logging.getLogger(__name__)

OBJECT_FIELDS: Final = ("name", "parent_id", "class_id", "state_id", "tags", "last_state_update")
"""Object fields a snapshot reads (``GET /objects?fields=...``)."""
TOPICS: Final = (TOPIC_INCIDENTS, TOPIC_INCIDENT_COUNT, TOPIC_STATE_CHANGE, TOPIC_MODEL_CHANGED)
RESYNC_BACKOFF: Final = Backoff(base=2.0, cap=300.0)
"""Between failed resyncs (the same capped, jittered backoff as Comet's reconnects)."""
COUNT_CHECK_DELAY: Final = 5.0
"""Seconds SAYMON's ``incident-count`` may disagree with the model before a resync."""
CLOSED_CHECKPOINT: Final = 5_000
"""Closed incident ids the model may remember beyond what SAYMON listed at the last snapshot
before a resync lets it forget those SAYMON has moved to its history."""
CHECKPOINT_INTERVAL: Final = 60.0
"""Seconds between two of those memory resyncs at most."""
SNAPSHOT_SETTLE: Final = 0.25
"""Seconds after a snapshot arrived during which Comet events still count as possibly older
than it (SAYMON's way from a change to its Comet event), when events are flowing."""
SUBSCRIBE_SETTLE: Final = 0.5
"""Seconds between a Comet (re)connect and the resync it triggers."""
TRANSPORTS: Final = {"websocket": ("websocket",), "polling": ("polling", "websocket")}
"""Comet transports by name: WebSocket only, or long-polling that upgrades when it can (for
proxies that refuse WebSocket; the client reads any number of packets per poll, see comet.py)."""
MAX_UNKNOWN_TOPICS: Final = 100
"""Distinct unknown topic names counted; any further ones are counted together."""

type Cancel = Callable[[], None]
type Scheduler = Callable[[float, Callable[[], None]], Cancel]
"""Runs a callback after a delay in seconds; returns what cancels it."""


class LiveListener(Protocol):
    """What :class:`SaymonLive` tells its owner, always in the event loop."""

    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Changes in the order they happened (``replayed``: found by a resync)."""

    def on_connected(self) -> None:
        """Comet is connected and subscribed (a resync follows)."""

    def on_disconnected(self, reason: str) -> None:
        """Comet was lost; it is being reconnected."""

    def on_auth_failed(self) -> None:
        """SAYMON refused the credentials; nothing is retried until they change."""

    def on_resynced(self, renamed: Collection[str]) -> None:
        """A resync finished; ``renamed``: objects and links whose state got a name only now."""


def _loop_scheduler(delay: float, callback: Callable[[], None]) -> Cancel:
    return asyncio.get_running_loop().call_later(delay, callback).cancel


@dataclass(slots=True)
class LiveStats:
    """Counters for diagnostics."""

    resyncs: int = 0
    resync_failures: int = 0
    last_resync_seconds: float | None = None
    replayed: int = 0
    """Changes found by resyncs (each reported once)."""
    unverified: int = 0
    """Incident events SAYMON did not confirm over REST (fabricated or broken ids)."""
    count_resyncs: int = 0
    """Resyncs asked for because SAYMON's ``incident-count`` disagreed with the model."""
    unknown_topics: Counter[str] = field(default_factory=Counter)
    """Events of topics this library does not know, by topic (each logged once)."""


class SaymonLive:
    """REST, Comet and the model of one SAYMON server, kept true by itself."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        credentials: Credentials,
        listener: LiveListener,
        *,
        comet: str | None = None,
        ssl_context: ssl.SSLContext | bool = True,
        read_links: bool = False,
        scheduler: Scheduler | None = None,
        server_topics: Collection[str] = (),
        transport: str = "websocket",
    ) -> None:
        """Create the clients; nothing is sent before :meth:`load`.

        ``comet``: SAYMON's Comet address as the user gives it (empty: the web address; a
        port; or a full URL). ``read_links``: whether snapshots read the links too.
        ``server_topics``: the server events to subscribe to (see :mod:`.server_events`; none
        by default). ``transport``: a key of :data:`TRANSPORTS`.
        """
        self.rest = SaymonRestClient(http, base_url, credentials, ssl_context=ssl_context)
        self.gate = ServerEventGate()
        """The rate limit of server events (per object and kind), applied before parsing."""
        self.comet = CometClient(
            http,
            comet_endpoint(self.rest.base_url, comet or None),
            self._session_id,
            subscriptions=[
                Subscription(topic)
                for topic in (*TOPICS, *(t for t in SERVER_TOPICS if t in server_topics))
            ],
            on_event=self._on_event,
            on_connected=self._on_connected,
            on_disconnected=listener.on_disconnected,
            on_events_lost=self._on_events_lost,
            on_auth_failed=self._on_auth_failed,
            ssl_context=ssl_context,
            transports=TRANSPORTS[transport],
            gate=self.gate,
        )
        self.operations = SaymonOperations(self.rest)
        self.jobs = JobFollower(self.operations, self._report_job, self._spawn)
        self.incident_reads = IncidentReads(self._fetch_incident, self._spawn, self._resync_now)
        self.model = SaymonModel()
        self.stats = LiveStats()
        self.read_links = read_links
        self._listener = listener
        self._schedule = scheduler or _loop_scheduler
        self.metrics = MetricFollower(
            self.comet,
            self.rest,
            store=lambda: self.model.metrics,
            report=lambda changes, replayed: self._report(changes, replayed=replayed),
            schedule=self._schedule,
        )
        """Whose metrics (``stat``) are followed; the owner says (:meth:`MetricFollower.follow`)."""
        self._lock = asyncio.Lock()
        self._resyncing = False
        self._held: list[CometEvent] = []
        self._renamed: set[str] = set()
        self._retry: Cancel | None = None
        self._failures_in_row = 0
        self._count_check: Cancel | None = None
        self._count_resynced_for: int | None = None
        self._last_checkpoint = -CHECKPOINT_INTERVAL
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    # -- lifecycle --------------------------------------------------------------------------

    async def load(self) -> None:
        """Log in and take the first snapshot (no changes are reported for it)."""
        self.model = SaymonModel.from_snapshot(await self._fetch_snapshot())

    def follow(self) -> None:
        """Start the Comet stream; from now on the model follows SAYMON by itself."""
        self.comet.start()

    async def stop(self) -> None:
        """Stop timers, pending work and Comet; log out. A second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        for cancel in (self._retry, self._count_check):
            if cancel is not None:
                cancel()
        self._retry = self._count_check = None
        self.metrics.stop()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.comet.stop()
        await self.rest.logout()

    @property
    def connected(self) -> bool:
        """Whether Comet is connected and subscribed."""
        return self.comet.connected

    @property
    def resync_pending(self) -> bool:
        """Whether a resync is scheduled (a retry, or the one after a connect) or running."""
        return self._retry is not None or self._lock.locked()

    @property
    def server_topics(self) -> tuple[str, ...]:
        """The server event topics subscribed now."""
        subscribed = {s.topic for s in self.comet.subscriptions if s.key is None}
        return tuple(topic for topic in SERVER_TOPICS if topic in subscribed)

    async def set_server_topics(self, topics: Collection[str]) -> None:
        """Subscribe to exactly these server event topics, now and after every reconnect."""
        unknown = set(topics) - set(SERVER_TOPICS)
        if unknown:
            raise ValueError(f"not server event topics: {sorted(unknown)}")
        current = set(self.server_topics)
        for topic in SERVER_TOPICS:
            if topic in topics and topic not in current:
                await self.comet.subscribe(Subscription(topic))
            elif topic not in topics and topic in current:
                await self.comet.unsubscribe(Subscription(topic))

    async def _session_id(self, refresh: bool) -> str:
        return await self.rest.ensure_session(refresh=refresh)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run work tied to this session; :meth:`stop` cancels what is still running."""
        if self._stopped:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _report(self, changes: Sequence[Change], *, replayed: bool = False) -> None:
        if not changes:
            return
        if replayed:
            self.stats.replayed += len(changes)
        else:
            self.stats.replayed += sum(
                isinstance(change, IncidentChanged) and change.replayed for change in changes
            )
        self._listener.on_changes(changes, replayed)

    def _report_job(self, event: JobEvent) -> None:
        """A job result read over REST before Comet told (see :class:`.operations.JobFollower`)."""
        self._report([event])

    # -- snapshots and resyncs --------------------------------------------------------------

    async def _fetch_snapshot(self) -> Snapshot:
        rest = self.rest
        await rest.ensure_session()
        objects, states, levels, classes, incidents, history = await asyncio.gather(
            rest.objects(fields=OBJECT_FIELDS),
            rest.states(),
            rest.incident_levels(),
            rest.classes(),
            rest.incidents(),
            self._incident_history(),
        )
        links = await rest.links() if self.read_links else []
        return Snapshot(
            objects=index_by_id(objects),
            links=index_by_id(links),
            states=index_by_id(states),
            levels=index_by_id(levels),
            classes=index_by_id(classes),
            incidents=index_by_id(incidents),
            history=history,
        )

    async def _incident_history(self) -> list[Incident] | None:
        """Incidents closed since the last snapshot; ``None`` when SAYMON does not tell.

        Only the history shows incidents that opened and closed while Comet was down. A
        SAYMON without it (or a user not allowed to read it) still resyncs, without them.
        """
        try:
            return await self.rest.incident_history(since=self.model.history_mark)
        except (SaymonConnectionError, SaymonInvalidCredentialsError):
            raise  # the resync as a whole fails and is retried
        except SaymonError as err:
            _LOGGER.debug("SAYMON's incident history is not available: %s", err)
            return None

    async def resync(self) -> bool:
        """Re-read everything over REST and report what the stream missed, once, in order.

        Returns whether it succeeded (a failure is retried with backoff by itself).

        Comet events and the REST snapshot are reconciled without timestamps (state-change
        events carry none): events handed on while the resync runs (those already queued when
        it started included) are held, and the snapshot leaves the states and incidents they
        touch to them, since it may be older or newer than they are. Comet delivers in order
        and never skips while connected, so those events alone bring each such state and
        incident up to date, each change once and none backwards. The snapshot brings
        everything else: what was missed while no event could tell.
        """
        if self._retry is not None:
            self._retry()
            self._retry = None
        async with self._lock:
            self._resyncing = True
            started = time.monotonic()
            try:
                snapshot = await self._fetch_snapshot()
                if self._held or self.comet.backlog:
                    # Events flow: some that SAYMON sent before it read the snapshot may still
                    # be on their way. Those arriving within the settle time are held too, so
                    # the snapshot leaves what they touch to them.
                    await asyncio.sleep(SNAPSHOT_SETTLE)
            except SaymonInvalidCredentialsError:
                self._on_auth_failed(None)
                return False
            except SaymonError as err:
                self._retry_later(err)
                return False
            else:
                entities, incidents = _touched(self._held)
                changes = self.model.apply_snapshot(
                    snapshot, skip_entities=entities, skip_incidents=incidents
                )
                _LOGGER.debug(
                    "Resynced with SAYMON: %d changes found, %d events held",
                    len(changes),
                    len(self._held),
                )
                self._report(changes, replayed=True)
                renamed, self._renamed = self._renamed, set()
                stats = self.stats
                stats.resyncs += 1
                stats.last_resync_seconds = time.monotonic() - started
                self._failures_in_row = 0
                self._listener.on_resynced(renamed)
                self._spawn(self.metrics.refresh(), "saymon-metrics")
                return True
            finally:
                self._resyncing = False
                held, self._held = self._held, []
                for event in held:
                    self._handle(event)

    def _retry_later(self, err: SaymonError) -> None:
        """A resync failed: one retry is pending at most (the latest), with backoff."""
        self.stats.resync_failures += 1
        self._failures_in_row += 1
        delay = RESYNC_BACKOFF.delay(self._failures_in_row)
        _LOGGER.debug("Resync with SAYMON failed (%s); retrying in %.0f s", err, delay)
        self._resync_in(delay)

    def _resync_in(self, delay: float) -> None:
        if self._retry is not None:
            self._retry()
            self._retry = None
        if not self._stopped:
            self._retry = self._schedule(delay, self._run_retry)

    def _run_retry(self) -> None:
        self._retry = None
        self._spawn(self._resync(), "saymon-resync")

    async def _resync(self) -> None:
        await self.resync()

    def _resync_soon(self, err: SaymonError) -> None:
        """A live change could not be read over REST: a resync (retried) brings it.

        Gone (404) needs nothing: SAYMON announces the removal by itself.
        """
        if not isinstance(err, SaymonNotFoundError) and self._retry is None:
            self._retry_later(err)

    # -- the stream ---------------------------------------------------------------------------

    def _on_connected(self) -> None:
        # Events between the last snapshot and this subscription were not delivered: resync.
        # Comet does not acknowledge add-topics, so the snapshot is taken a moment later; read
        # at once, it could predate the subscription and miss what happens in between.
        self._resync_in(SUBSCRIBE_SETTLE)
        self._listener.on_connected()

    def _on_events_lost(self, dropped: int) -> None:
        _LOGGER.debug("%d SAYMON events were dropped; resyncing", dropped)
        self._resync_now()

    def _resync_now(self) -> None:
        self._spawn(self._resync(), "saymon-resync")

    def _on_auth_failed(self, _err: SaymonInvalidCredentialsError | None) -> None:
        if not self._stopped:
            self._listener.on_auth_failed()

    def _on_event(self, event: CometEvent) -> None:
        if self._resyncing:
            self._held.append(event)
        else:
            self._handle(event)

    def _handle(self, event: CometEvent) -> None:
        model = self.model
        if isinstance(event, StateChangeEvent):
            change = model.apply_state(event.entity_id, event.state_id, event.entity_type)
            if change is None:
                return
            if event.state_id not in model.states:  # an admin added a state: read its name
                self._renamed.add(event.entity_id)
                if self._retry is None:
                    self._resync_in(SUBSCRIBE_SETTLE)
            self._report([change])
        elif isinstance(event, IncidentEvent):
            self._on_incident(event)
        elif isinstance(event, IncidentCountEvent):
            model.reported_count = event.count
            self._check_count_soon()
        elif isinstance(event, ModelChangedEvent):
            self._spawn(self._apply_model_event(event), "saymon-model-changed")
        elif isinstance(event, SERVER_EVENT_TYPES):
            if not isinstance(event, JobEvent) or self.jobs.seen(event):
                self._report([event])
        elif isinstance(event, StatEvent):
            self.metrics.on_event(event)
        elif isinstance(event, RawEvent):
            self._unknown_topic(event.topic)

    def _unknown_topic(self, topic: str) -> None:
        """Count an event of a topic nobody subscribed to knowingly; log each topic once."""
        if topic in IGNORED_TOPICS:
            return
        counted = self.stats.unknown_topics
        if topic not in counted and len(counted) >= MAX_UNKNOWN_TOPICS:
            topic = "(other)"
        counted[topic] += 1
        if counted[topic] == 1:
            _LOGGER.warning(
                "SAYMON sent events of the topic %r, which this integration does not know; "
                "they are counted in the diagnostics and otherwise ignored",
                topic[:100],
            )

    def _on_incident(self, event: IncidentEvent) -> None:
        """Apply an ``incidents`` event, or read the incident first when it needs confirming.

        An event carrying only the id is read over REST. So is one about an incident the model
        does not know when the event alone would announce something it cannot vouch for: an
        object the model does not know, or an incident first seen closed (replayed as opened
        and closed). SAYMON's answer is applied instead of the event, and an id SAYMON does not
        know is dropped and counted: a broken or fabricated event never becomes an incident.
        """
        model = self.model
        incident = event.incident
        known = model.knows_incident(event.incident_id)
        if event.change is IncidentChange.CLOSED and known:
            self._report_incidents(model.move_to_history(event.incident_id, incident))
        elif incident is None or (
            not known
            and (
                event.change is IncidentChange.CLOSED
                or not incident.is_active
                or self._unknown_entity(incident)
            )
        ):
            self.incident_reads.add(event.incident_id)
        else:
            self._report_incidents(model.apply_incident(incident))

    def _unknown_entity(self, incident: Incident) -> bool:
        """Whether an incident names an object (or read link) the model does not have."""
        if incident.entity_type is EntityType.LINK and not self.read_links:
            return False  # links are not read at all: nothing to check against
        return not self.model.knows_entity(incident.entity_type, incident.entity_id)

    def _report_incidents(self, changes: Sequence[IncidentChanged]) -> None:
        self._report(changes)
        self._checkpoint_closed_memory()

    async def _fetch_incident(self, incident_id: str) -> None:
        """Read an incident SAYMON announced by id only, or that needs confirming."""
        try:
            incident = await self.rest.incident(incident_id)
        except SaymonNotFoundError:
            self.stats.unverified += 1
            _LOGGER.log(
                logging.WARNING if self.stats.unverified == 1 else logging.DEBUG,
                "SAYMON does not know incident %s that an event announced; event dropped",
                incident_id,
            )
            return
        except SaymonError as err:
            _LOGGER.debug("Cannot read SAYMON incident %s: %s", incident_id, err)
            self._resync_soon(err)
            return
        self._report_incidents(self.model.apply_incident(incident, Source.FETCHED))

    def _checkpoint_closed_memory(self) -> None:
        """Resync when the memory of closed incidents outgrows what SAYMON can still send.

        SAYMON lists a cleared incident until its incident timeout, then moves it to the
        history; the model must remember both until a history read shows that no later read
        can report them as new. A resync is that read, and it re-learns SAYMON's list.
        """
        model = self.model
        if model.closed_memory <= model.listed_cleared + CLOSED_CHECKPOINT:
            return
        now = time.monotonic()
        if now - self._last_checkpoint < CHECKPOINT_INTERVAL or self._retry is not None:
            return
        self._last_checkpoint = now
        _LOGGER.debug("Resyncing to prune %d remembered closed incidents", model.closed_memory)
        self._spawn(self._resync(), "saymon-resync")

    async def _apply_model_event(self, event: ModelChangedEvent) -> None:
        """Bring one created/modified/removed object or link into the model."""
        model = self.model
        change: ModelChanged | None
        descendants: list[ModelChanged] = []
        try:
            if event.change is ModelChange.REMOVED:
                if event.entity_type is EntityType.LINK:
                    change = model.remove_link(event.entity_id)
                else:
                    descendants = self._remove_descendants(event.entity_id)
                    change = model.remove_object(event.entity_id)
            elif event.entity_type is EntityType.LINK:
                if not self.read_links:
                    return
                links = {link.id: link for link in await self.rest.links()}
                link = links.get(event.entity_id)
                change = None if link is None else model.upsert_link(link)
            elif event.entity_type is EntityType.OBJECT:
                change = model.upsert_object(await self.rest.object(event.entity_id))
            else:
                return
        except SaymonError as err:
            _LOGGER.debug(
                "Cannot read SAYMON %s %s: %s", event.entity_type.name, event.entity_id, err
            )
            self._resync_soon(err)
            return
        if change is None and event.change is not ModelChange.MODIFIED:
            self._report(descendants)
            return
        # Reported as SAYMON sent it (with its user), even when nothing visible changed.
        self._report(
            [
                *descendants,
                ModelChanged(
                    event.change,
                    event.entity_id,
                    event.entity_type,
                    event.user_id,
                    event.user_login,
                    change.name if change is not None else None,
                ),
            ]
        )

    def _remove_descendants(self, object_id: str) -> list[ModelChanged]:
        """Remove the objects below a deleted one; their removals, to announce with the top's.

        SAYMON deletes a whole subtree but may announce only its top. A removal event it sends
        for a descendant afterwards finds nothing left to remove, so without these changes no
        bus event and no MQTT deletion would ever name the descendants.
        """
        model = self.model
        removed: list[ModelChanged] = []
        for descendant in sorted(subtree_ids(model.objects, [object_id]) - {object_id}):
            if (change := model.remove_object(descendant)) is not None:
                removed.append(change)
        return removed

    def _check_count_soon(self) -> None:
        """Resync when SAYMON's announced total disagrees with the model for a while."""
        if self._count_check is None:
            self._count_check = self._schedule(COUNT_CHECK_DELAY, self._check_count)

    def _check_count(self) -> None:
        self._count_check = None
        model = self.model
        reported = model.reported_count
        open_now = len(model.incidents)
        # SAYMON versions differ in what they count: open incidents only, or everything its
        # list holds (cleared ones too, until they age out). Either agrees.
        if reported is None or reported in (open_now, open_now + len(model.cleared)):
            self._count_resynced_for = None
            return
        if self._count_resynced_for == reported:
            return  # a resync did not explain this figure: another would not either
        self._count_resynced_for = reported
        self.stats.count_resyncs += 1
        _LOGGER.debug(
            "SAYMON reports %d incidents, model has %d open and %d cleared; resyncing",
            reported,
            open_now,
            len(model.cleared),
        )
        self._spawn(self._resync(), "saymon-resync")


def _touched(events: Iterable[CometEvent]) -> tuple[set[str], set[str]]:
    """Objects/links and incidents that held events will bring up to date themselves."""
    entities: set[str] = set()
    incidents: set[str] = set()
    for event in events:
        if isinstance(event, StateChangeEvent):
            entities.add(event.entity_id)
        elif isinstance(event, IncidentEvent):
            incidents.add(event.incident_id)
    return entities, incidents
