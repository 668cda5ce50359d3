"""The hub: one SAYMON server's live connection, model, devices and events.

It owns the REST client and the Comet client, keeps :class:`~.model.SaymonModel` current,
and turns each change into (1) a dispatcher signal to the entities it concerns — one signal per
object, coalesced per event-loop tick — and (2) a Home Assistant bus event. After every
(re)connect it takes the REST snapshot again and fires what was missed, marked ``replayed``.
Events that arrive while a resync is running are held and applied after it, so nothing is
fired twice or out of order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
import inspect
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME, CONF_VERIFY_SSL
from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later

from .api._fields import SANITIZED
from .api.comet import CometClient, Subscription
from .api.errors import (
    SaymonConnectionError,
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonNotFoundError,
)
from .api.events import (
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
    StateChangeEvent,
)
from .api.models import EntityType, Incident
from .api.rest import Credentials, PasswordCredentials, SaymonRestClient, TokenCredentials
from .api.url import comet_endpoint
from .coalesce import STORM_BACKLOG, CoalescedFlush
from .const import (
    AUTH_TOKEN,
    CONF_API_TOKEN,
    CONF_AUTH_METHOD,
    CONF_COMET,
    CONF_GRACE_PERIOD,
    CONF_USER_ID,
    DEFAULT_GRACE_PERIOD,
    DOMAIN,
    EVENT_INCIDENT,
    EVENT_MODEL_CHANGED,
    EVENT_STATE_CHANGED,
    UNREACHABLE_REPAIR_AFTER,
)
from .identity import object_id_of, object_key, server_host
from .model import (
    Change,
    IncidentChanged,
    ModelChanged,
    SaymonModel,
    Snapshot,
    Source,
    StateChanged,
    index_by_id,
)
from .scope import Scope, subtree_ids

if TYPE_CHECKING:
    from .mqtt.mirror import SaymonMirror

_LOGGER = logging.getLogger(__name__)

OBJECT_FIELDS = ("name", "parent_id", "class_id", "state_id", "tags", "last_state_update")
TOPICS = (TOPIC_INCIDENTS, TOPIC_INCIDENT_COUNT, TOPIC_STATE_CHANGE, TOPIC_MODEL_CHANGED)
RESYNC_RETRY_MAX = 300.0
COUNT_CHECK_DELAY = 5.0
CLOSED_CHECKPOINT = 5_000
"""Closed incident ids the model may remember beyond what SAYMON listed at the last snapshot
before a resync lets it forget those SAYMON has moved to its history."""
CHECKPOINT_INTERVAL = 60.0
"""Seconds between two of those memory resyncs at most."""
SNAPSHOT_SETTLE = 0.25
"""Seconds after a snapshot arrived during which Comet events still count as possibly older
than it (SAYMON's way from a change to its Comet event), when events are flowing."""
SUBSCRIBE_SETTLE = 0.5
"""Seconds between a Comet (re)connect and the resync it triggers."""

type SaymonConfigEntry = ConfigEntry[SaymonHub]


def credentials_from(data: dict[str, Any] | Any) -> Credentials:
    """Build client credentials from config entry data."""
    if data.get(CONF_AUTH_METHOD) == AUTH_TOKEN:
        return TokenCredentials(data[CONF_API_TOKEN])
    return PasswordCredentials(data[CONF_USERNAME], data[CONF_PASSWORD])


class SaymonHub:
    """Everything Home Assistant knows about one SAYMON server, kept live."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SaymonConfigEntry,
        session: aiohttp.ClientSession,
    ) -> None:
        """Create the clients; nothing is sent before :meth:`async_setup`."""
        self.hass = hass
        self.entry = entry
        verify_ssl = bool(entry.data.get(CONF_VERIFY_SSL, True))
        self.rest = SaymonRestClient(
            session, entry.data[CONF_URL], credentials_from(entry.data), ssl_context=verify_ssl
        )
        self.base_url = self.rest.base_url
        self.server_key = str(entry.data[CONF_USER_ID])
        """Account key of every unique id and device identifier (see :mod:`.identity`)."""
        self.comet = CometClient(
            session,
            comet_endpoint(self.base_url, entry.data.get(CONF_COMET) or None),
            self._session_id,
            subscriptions=[Subscription(topic) for topic in TOPICS],
            on_event=self._on_event,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
            on_events_lost=self._on_events_lost,
            on_auth_failed=self._on_auth_failed,
            ssl_context=verify_ssl,
        )
        self.model = SaymonModel()
        self.scope = Scope.from_options(entry.options)
        self.objects_in_scope: set[str] = set()
        self.links_in_scope: set[str] = set()
        self.grace_period = float(entry.options.get(CONF_GRACE_PERIOD, DEFAULT_GRACE_PERIOD))
        self.connected = False
        self.available = True
        self.fired: Counter[str] = Counter()
        self.replayed = 0
        self.resyncs = 0
        self.resync_failures = 0
        self.last_resync_seconds: float | None = None
        self._resyncing = False
        self._held: list[CometEvent] = []
        self._count_resynced_for: int | None = None
        self._last_checkpoint = -CHECKPOINT_INTERVAL
        self.unverified = 0
        """Incident events SAYMON did not confirm over REST (fabricated or broken ids)."""
        self._awaiting_states: set[str] = set()
        self._resync_lock = asyncio.Lock()
        self._resync_retry: CALLBACK_TYPE | None = None
        self._resync_failures_in_row = 0
        self._grace_timer: CALLBACK_TYPE | None = None
        self._repair_timer: CALLBACK_TYPE | None = None
        self._count_check: CALLBACK_TYPE | None = None
        self._down_logged = False
        self._dirty: set[str] = set()
        self._flusher = CoalescedFlush(
            hass.loop, self._flush, lambda: self.comet.backlog >= STORM_BACKLOG
        )
        self._device_ids: dict[str, str] = {}
        self._problem_marked: dict[str, bool] = {}
        """Problem value last signalled per object (the sensor reads the model when told)."""
        """Device id per object in scope, filled on first use, emptied when devices change."""
        self._object_listeners: list[Callable[[set[str]], None]] = []
        self._link_listeners: list[Callable[[set[str]], None]] = []
        self._incident_listeners: list[Callable[[str, dict[str, Any], Context], None]] = []
        self._change_listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self.mirror: SaymonMirror | None = None
        """The MQTT mirror (``SaymonMirror``) when it is on; set by the entry setup."""
        self._shutting_down = False

    # -- signals ----------------------------------------------------------------------------

    @property
    def signal_server(self) -> str:
        """Signal for server-level entities (counts, connectivity, incident events)."""
        return f"{DOMAIN}_{self.entry.entry_id}_server"

    @property
    def signal_availability(self) -> str:
        """Signal sent to every entity when availability flips (rare, so a broadcast)."""
        return f"{DOMAIN}_{self.entry.entry_id}_availability"

    def signal_entity(self, entity_id: str) -> str:
        """Signal for the state entities of one object or link (its state changed)."""
        return f"{DOMAIN}_{self.entry.entry_id}_entity_{entity_id}"

    def signal_removed(self, entity_id: str) -> str:
        """Signal for the entities of an object or link that SAYMON deleted."""
        return f"{DOMAIN}_{self.entry.entry_id}_removed_{entity_id}"

    def signal_problem(self, entity_id: str) -> str:
        """Signal for the problem entity of one object (its incidents changed).

        Kept apart from :meth:`signal_entity` so that a state change does not re-render the
        problem sensor and an incident does not re-render the state sensor.
        """
        return f"{DOMAIN}_{self.entry.entry_id}_problem_{entity_id}"

    def _mark(self, signal: str) -> None:
        """Coalesce entity updates: each signal is sent at most once per flush.

        A flush follows the current batch of Comet events; while more events wait (a storm)
        flushes are spaced out (see :mod:`.coalesce`), so an object that changes several
        times meanwhile is written once, with its last state.
        """
        self._dirty.add(signal)
        self._flusher.request()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for signal in dirty:
            async_dispatcher_send(self.hass, signal)

    # -- identities -------------------------------------------------------------------------

    @property
    def server_identifier(self) -> tuple[str, str]:
        """Device registry identifier of the server (service) device."""
        return (DOMAIN, self.server_key)

    def object_identifier(self, object_id: str) -> tuple[str, str]:
        """Device registry identifier of an object's device (from SAYMON ids only)."""
        return (DOMAIN, object_key(self.server_key, object_id))

    def object_url(self, object_id: str) -> str:
        """Link into SAYMON's web UI for an object."""
        return f"{self.base_url}/#objects/{object_id}"

    @property
    def host(self) -> str:
        """The server's host (and port, if not the default one), for messages."""
        return server_host(self.base_url)

    # -- lifecycle --------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Log in, take the first snapshot, create devices and start Comet."""
        try:
            snapshot = await self._fetch_snapshot()
        except SaymonInvalidCredentialsError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except SaymonError as err:
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"host": self.host, "error": str(err)},
            ) from err
        self.model = SaymonModel.from_snapshot(snapshot)
        self.refresh_scope()
        self.comet.start()
        self._start_outage_timers()

    async def async_shutdown(self) -> None:
        """Stop Comet, timers and pending work; log out of SAYMON.

        Runs when the entry unloads and when Home Assistant stops (which unloads nothing), so
        a second call does nothing.
        """
        if self._shutting_down:
            return
        self._shutting_down = True
        for cancel in (
            self._grace_timer,
            self._repair_timer,
            self._resync_retry,
            self._count_check,
        ):
            if cancel is not None:
                cancel()
        self._grace_timer = self._repair_timer = self._resync_retry = self._count_check = None
        self._flusher.cancel()
        await self.comet.stop()
        await self.rest.logout()

    async def _session_id(self, refresh: bool) -> str:
        return await self.rest.ensure_session(refresh=refresh)

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run work tied to the entry: Home Assistant cancels it when the entry unloads."""
        self.entry.async_create_background_task(self.hass, coro, name)

    # -- snapshot and resync ----------------------------------------------------------------

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
        links = await rest.links() if self.scope.links else []
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

    async def async_resync(self) -> None:
        """Re-read everything over REST and fire what the event stream missed, once, in order.

        Comet events and the REST snapshot are reconciled without timestamps (state-change
        events carry none): events handed on while the resync runs (those already queued when
        it started included) are held, and the snapshot leaves the states and incidents they
        touch to them, since it may be older or newer than they are. Comet delivers in order
        and never skips while connected, so those events alone bring each such state and
        incident up to date, each change once and none backwards. The snapshot brings
        everything else: what was missed while no event could tell.
        """
        if self._resync_retry is not None:
            self._resync_retry()
            self._resync_retry = None
        async with self._resync_lock:
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
                return
            except SaymonError as err:
                self._schedule_resync_retry(err)
                return
            else:
                entities, incidents = _touched(self._held)
                changes = self.model.apply_snapshot(
                    snapshot, skip_entities=entities, skip_incidents=incidents
                )
                self._apply_changes(changes, replayed=True)
                for entity_id in self._awaiting_states:  # their state has a name now
                    self._mark(self.signal_entity(entity_id))
                self._awaiting_states.clear()
                self.resyncs += 1
                self._resync_failures_in_row = 0
                self.last_resync_seconds = time.monotonic() - started
            finally:
                self._resyncing = False
                held, self._held = self._held, []
                for event in held:
                    self._handle(event)

    def _schedule_resync_retry(self, err: SaymonError) -> None:
        self.resync_failures += 1
        self._resync_failures_in_row += 1
        delay = min(RESYNC_RETRY_MAX, 2.0 ** min(self._resync_failures_in_row, 9))
        _LOGGER.debug("Resync with SAYMON failed (%s); retrying in %.0f s", err, delay)
        if self._resync_retry is not None:  # one pending retry at most (the later one)
            self._resync_retry()
            self._resync_retry = None
        if not self._shutting_down:
            self._resync_retry = async_call_later(self.hass, delay, self._retry_resync)

    def _learn_states(self) -> None:
        """A state SAYMON has not listed (an admin added it since): resync to read it."""
        if self._resync_retry is None and not self._shutting_down:
            self._resync_retry = async_call_later(self.hass, SUBSCRIBE_SETTLE, self._retry_resync)

    def _resync_later(self, err: SaymonError) -> None:
        """A live change could not be read over REST: a resync (retried with backoff) brings it.

        Gone (404) needs nothing: SAYMON announces the removal by itself.
        """
        if not isinstance(err, SaymonNotFoundError) and self._resync_retry is None:
            self._schedule_resync_retry(err)

    @callback
    def _retry_resync(self, _now: Any) -> None:
        self._resync_retry = None
        self._background(self.async_resync(), "saymon-resync")

    def _apply_changes(self, changes: Iterable[Change], *, replayed: bool) -> None:
        """Publish changes; model changes also reshape the scope and the device tree.

        Removals are published while their devices still exist (so events carry the
        ``device_id``), everything else after the devices were created.
        """
        pending = list(changes)
        if any(isinstance(change, ModelChanged) for change in pending):
            removed: list[Change] = [
                item
                for item in pending
                if isinstance(item, ModelChanged) and item.change is ModelChange.REMOVED
            ]
            for item in removed:
                self._publish(item, replayed=replayed)
            self.refresh_scope()
            pending = [item for item in pending if item not in removed]
        for change in pending:
            self._publish(change, replayed=replayed)

    # -- Comet callbacks --------------------------------------------------------------------

    @callback
    def _on_event(self, event: CometEvent) -> None:
        if self._resyncing:
            self._held.append(event)
        else:
            self._handle(event)

    def _handle(self, event: CometEvent) -> None:
        model = self.model
        if isinstance(event, StateChangeEvent):
            change: Change | None = model.apply_state(
                event.entity_id, event.state_id, event.entity_type
            )
            if change is not None and event.state_id not in model.states:
                self._awaiting_states.add(event.entity_id)
                self._learn_states()
        elif isinstance(event, IncidentEvent):
            self._on_incident(event)
            return
        elif isinstance(event, IncidentCountEvent):
            model.reported_count = event.count
            self._check_count_soon()
            return
        elif isinstance(event, ModelChangedEvent):
            self._background(self._apply_model_event(event), "saymon-model-changed")
            return
        else:
            return
        if change is not None:
            self._publish(change, replayed=False)

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
            self._publish_all(model.move_to_history(event.incident_id, incident))
        elif incident is None or (
            not known
            and (
                event.change is IncidentChange.CLOSED
                or not incident.is_active
                or self._unknown_entity(incident)
            )
        ):
            self._background(self._fetch_incident(event.incident_id), "saymon-incident")
        else:
            self._publish_all(model.apply_incident(incident))

    def _unknown_entity(self, incident: Incident) -> bool:
        """Whether an incident names an object (or tracked link) the model does not have."""
        if incident.entity_type is EntityType.LINK and not self.scope.links:
            return False  # links are not read at all: nothing to check against
        return not self.model.knows_entity(incident.entity_type, incident.entity_id)

    def _publish_all(self, changes: Iterable[IncidentChanged]) -> None:
        for change in changes:
            self._publish(change, replayed=change.replayed)
        self._checkpoint_closed_memory()

    async def _fetch_incident(self, incident_id: str) -> None:
        """Read an incident SAYMON announced by id only, or that needs confirming."""
        try:
            incident = await self.rest.incident(incident_id)
        except SaymonNotFoundError:
            self.unverified += 1
            _LOGGER.log(
                logging.WARNING if self.unverified == 1 else logging.DEBUG,
                "SAYMON does not know incident %s that an event announced; event dropped",
                incident_id,
            )
            return
        except SaymonError as err:
            _LOGGER.debug("Cannot read SAYMON incident %s: %s", incident_id, err)
            self._resync_later(err)
            return
        self._publish_all(self.model.apply_incident(incident, Source.FETCHED))

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
        if now - self._last_checkpoint < CHECKPOINT_INTERVAL or self._resync_retry is not None:
            return
        self._last_checkpoint = now
        _LOGGER.debug("Resyncing to prune %d remembered closed incidents", model.closed_memory)
        self._background(self.async_resync(), "saymon-resync")

    async def _apply_model_event(self, event: ModelChangedEvent) -> None:
        """Bring one created/modified/removed object or link into the model and devices."""
        change: ModelChanged | None
        try:
            if event.change is ModelChange.REMOVED:
                change = (
                    self.model.remove_link(event.entity_id)
                    if event.entity_type is EntityType.LINK
                    else self._remove_subtree(event.entity_id)
                )
            elif event.entity_type is EntityType.LINK:
                if not self.scope.links:
                    return
                links = {link.id: link for link in await self.rest.links()}
                link = links.get(event.entity_id)
                change = None if link is None else self.model.upsert_link(link)
            elif event.entity_type is EntityType.OBJECT:
                change = self.model.upsert_object(await self.rest.object(event.entity_id))
            else:
                return
        except SaymonError as err:
            _LOGGER.debug(
                "Cannot read SAYMON %s %s: %s", event.entity_type.name, event.entity_id, err
            )
            self._resync_later(err)
            return
        # Report the event as SAYMON sent it (with its user), even when nothing visible changed.
        self._apply_changes(
            [
                ModelChanged(
                    event.change,
                    event.entity_id,
                    event.entity_type,
                    event.user_id,
                    event.user_login,
                    change.name if change is not None else None,
                )
            ]
            if change is not None or event.change is ModelChange.MODIFIED
            else [],
            replayed=False,
        )

    def _remove_subtree(self, object_id: str) -> ModelChanged | None:
        """Remove an object and its descendants (SAYMON deletes subtrees, announcing the top)."""
        descendants = subtree_ids(self.model.objects, [object_id]) - {object_id}
        for descendant in descendants:
            self.model.remove_object(descendant)
        return self.model.remove_object(object_id)

    def _check_count_soon(self) -> None:
        """Resync when SAYMON's announced total disagrees with the model for a while."""
        if self._count_check is not None:
            return

        @callback
        def check(_now: Any) -> None:
            self._count_check = None
            model = self.model
            reported = model.reported_count
            open_now = len(model.incidents)
            # SAYMON versions differ in what they count: open incidents only, or everything
            # its list holds (cleared ones too, until they age out). Either agrees.
            if reported is None or reported in (open_now, open_now + len(model.cleared)):
                self._count_resynced_for = None
                return
            if self._count_resynced_for == reported:
                return  # a resync did not explain this figure: another would not either
            self._count_resynced_for = reported
            _LOGGER.debug(
                "SAYMON reports %d incidents, model has %d open and %d cleared; resyncing",
                reported,
                open_now,
                len(model.cleared),
            )
            self._background(self.async_resync(), "saymon-resync")

        self._count_check = async_call_later(self.hass, COUNT_CHECK_DELAY, check)

    @callback
    def _on_connected(self) -> None:
        self.connected = True
        self._cancel_outage_timers()
        ir.async_delete_issue(self.hass, DOMAIN, self.repair_issue_id)
        if self._down_logged:
            _LOGGER.info("Connection to SAYMON at %s restored", self.host)
            self._down_logged = False
        if not self.available:
            self.available = True
            async_dispatcher_send(self.hass, self.signal_availability)
        self._mark(self.signal_server)
        # Events between the last snapshot and this subscription were not delivered: resync.
        # Comet does not acknowledge add-topics, so the snapshot is taken a moment later; read
        # at once, it could predate the subscription and miss what happens in between.
        if self._resync_retry is not None:
            self._resync_retry()
        self._resync_retry = async_call_later(self.hass, SUBSCRIBE_SETTLE, self._retry_resync)

    @callback
    def _on_disconnected(self, reason: str) -> None:
        self.connected = False
        self._mark(self.signal_server)
        if not self._down_logged and not self._shutting_down:
            _LOGGER.info("Connection to SAYMON at %s lost (%s); reconnecting", self.host, reason)
            self._down_logged = True
        self._start_outage_timers()

    @callback
    def _on_events_lost(self, dropped: int) -> None:
        _LOGGER.debug("%d SAYMON events were dropped; resyncing", dropped)
        self._background(self.async_resync(), "saymon-resync")

    @callback
    def _on_auth_failed(self, _err: SaymonInvalidCredentialsError | None) -> None:
        if not self._shutting_down:
            self.entry.async_start_reauth(self.hass)

    # -- availability -----------------------------------------------------------------------

    @property
    def repair_issue_id(self) -> str:
        """Id of the "SAYMON unreachable" repair issue of this entry."""
        return f"unreachable_{self.entry.entry_id}"

    def _start_outage_timers(self) -> None:
        if self.connected or self._shutting_down:
            return
        if self._grace_timer is None and self.available:
            self._grace_timer = async_call_later(self.hass, self.grace_period, self._grace_expired)
        if self._repair_timer is None:
            self._repair_timer = async_call_later(
                self.hass, UNREACHABLE_REPAIR_AFTER, self._raise_repair
            )

    def _cancel_outage_timers(self) -> None:
        for cancel in (self._grace_timer, self._repair_timer):
            if cancel is not None:
                cancel()
        self._grace_timer = self._repair_timer = None

    @callback
    def _grace_expired(self, _now: Any) -> None:
        self._grace_timer = None
        if not self.connected and self.available:
            self.available = False
            async_dispatcher_send(self.hass, self.signal_availability)

    @callback
    def _raise_repair(self, _now: Any) -> None:
        self._repair_timer = None
        if self.connected:
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self.repair_issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="unreachable",
            translation_placeholders={
                "host": self.host,
                "url": self.base_url,
                "comet_address": self.comet.address,
                "minutes": str(int(UNREACHABLE_REPAIR_AFTER.total_seconds() // 60)),
            },
        )

    # -- scope and devices ------------------------------------------------------------------

    def add_object_listener(self, listener: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``listener`` with object ids that entered the scope; returns an unsubscribe."""
        self._object_listeners.append(listener)
        return lambda: self._object_listeners.remove(listener)

    def add_link_listener(self, listener: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``listener`` with link ids that entered the scope; returns an unsubscribe."""
        self._link_listeners.append(listener)
        return lambda: self._link_listeners.remove(listener)

    def add_incident_listener(
        self, listener: Callable[[str, dict[str, Any], Context], None]
    ) -> Callable[[], None]:
        """Call ``listener(kind, data, context)`` for every incident change; returns an unsubscribe.

        ``context`` is the one the ``saymon_incident`` bus event was fired with, so what the
        listener writes is tied to that event (the logbook shows it as the cause).
        """
        self._incident_listeners.append(listener)
        return lambda: self._incident_listeners.remove(listener)

    def add_change_listener(
        self, listener: Callable[[str, dict[str, Any]], None]
    ) -> Callable[[], None]:
        """Call ``listener(event_type, data)`` with every bus event the hub fires."""
        self._change_listeners.append(listener)
        return lambda: self._change_listeners.remove(listener)

    def refresh_scope(self) -> None:
        """Recompute the scope, mirror it in the device registry, then tell the platforms."""
        objects = self.scope.select(self.model.objects)
        links = set(self.model.links) if self.scope.links else set()
        new_objects = objects - self.objects_in_scope
        new_links = links - self.links_in_scope
        self.objects_in_scope = objects
        self.links_in_scope = links
        self.sync_devices()
        if new_objects:
            for listener in list(self._object_listeners):
                listener(new_objects)
        if new_links:
            for listener in list(self._link_listeners):
                listener(new_links)

    def parent_in_scope(self, object_id: str) -> str | None:
        """The first parent of an object that is itself a device, if any."""
        obj = self.model.objects.get(object_id)
        if obj is None:
            return None
        return next((p for p in obj.parent_ids if p in self.objects_in_scope), None)

    def ordered_objects(self) -> list[str]:
        """Objects in scope, parents before children (``via_device`` needs the parent first)."""
        order: list[str] = []
        placed: set[str] = set()

        def place(object_id: str, trail: set[str]) -> None:
            if object_id in placed or object_id in trail:
                return
            parent = self.parent_in_scope(object_id)
            if parent is not None:
                place(parent, trail | {object_id})
            placed.add(object_id)
            order.append(object_id)

        for object_id in sorted(self.objects_in_scope):
            place(object_id, set())
        return order

    def sync_devices(self) -> None:
        """Make the device registry mirror SAYMON's tree for the objects in scope."""
        self._device_ids.clear()
        registry = dr.async_get(self.hass)
        entry_id = self.entry.entry_id
        registry.async_get_or_create(
            config_entry_id=entry_id,
            identifiers={self.server_identifier},
            entry_type=dr.DeviceEntryType.SERVICE,
            manufacturer="SAYMON",
            model="SAYMON server",
            name=self.entry.title,
            configuration_url=self.base_url,
        )
        wanted = {self.server_identifier}
        for object_id in self.ordered_objects():
            obj = self.model.objects[object_id]
            parent = self.parent_in_scope(object_id)
            identifier = self.object_identifier(object_id)
            wanted.add(identifier)
            cls = self.model.classes.get(obj.class_id or "")
            via = self.object_identifier(parent) if parent is not None else self.server_identifier
            registry.async_get_or_create(
                config_entry_id=entry_id,
                identifiers={identifier},
                manufacturer="SAYMON",
                model=cls.name if cls is not None else obj.class_id,
                name=obj.name,
                configuration_url=self.object_url(object_id),
                **_via_device(registry, via, entry_id),
            )
        for device in dr.async_entries_for_config_entry(registry, entry_id):
            if not device.identifiers & wanted:
                registry.async_remove_device(device.id)  # our devices belong to this entry only

    def device_id_of(self, object_id: str | None) -> str | None:
        """Home Assistant device id of an object in scope."""
        if object_id is None or object_id not in self.objects_in_scope:
            return None
        if (cached := self._device_ids.get(object_id)) is not None:
            return cached  # every event names its device: no registry lookup per event
        device = self.device(self.object_identifier(object_id))
        if device is None:
            return None
        self._device_ids[object_id] = device.id
        return device.id

    def device(self, identifier: tuple[str, str]) -> dr.DeviceEntry | None:
        """Look up this entry's device by a SAYMON identifier."""
        return find_device(dr.async_get(self.hass), identifier, self.entry.entry_id)

    def object_of_device(self, device_id: str) -> str | None:
        """SAYMON object id behind a Home Assistant device of this entry."""
        device = dr.async_get(self.hass).async_get(device_id)
        if device is None:
            return None
        for domain, key in device.identifiers:
            if domain == DOMAIN and (object_id := object_id_of(key, self.server_key)) is not None:
                return object_id
        return None

    # -- publishing -------------------------------------------------------------------------

    def _publish(self, change: Change, *, replayed: bool) -> None:
        """Update the entities a change concerns and fire its bus event."""
        if replayed:
            self.replayed += 1
        if isinstance(change, StateChanged):
            in_scope = (
                change.entity_id in self.links_in_scope
                if change.entity_type is EntityType.LINK
                else change.entity_id in self.objects_in_scope
            )
            if not in_scope:
                return
            self._mark(self.signal_entity(change.entity_id))
            self._fire(EVENT_STATE_CHANGED, self._state_event_data(change, replayed))
        elif isinstance(change, IncidentChanged):
            entity_id = change.incident.entity_id
            if entity_id is not None:
                # The problem sensor shows only whether the object has an incident: most
                # incident changes (updates, a second incident) leave it as it is.
                problem = self.model.has_incident(entity_id)
                if self._problem_marked.get(entity_id) is not problem:
                    self._problem_marked[entity_id] = problem
                    self._mark(self.signal_problem(entity_id))
            self._mark(self.signal_server)
            data = self.incident_event_data(change, replayed)
            context = Context()
            self._fire(EVENT_INCIDENT, data, context)
            for listener in self._incident_listeners:
                listener(change.kind.value, data, context)
        else:
            if change.change is ModelChange.REMOVED:
                # Link entities hang on the server device, which stays: they must go themselves.
                async_dispatcher_send(self.hass, self.signal_removed(change.entity_id))
            self._fire(
                EVENT_MODEL_CHANGED,
                {
                    "config_entry_id": self.entry.entry_id,
                    "change": change.change.name.lower(),
                    "entity_type": _entity_type_name(change.entity_type),
                    "entity_id": change.entity_id,
                    "name": change.name
                    or self.model.entity_name(change.entity_type, change.entity_id),
                    "device_id": self.device_id_of(change.entity_id)
                    if change.entity_type is EntityType.OBJECT
                    else None,
                    "user_id": change.user_id,
                    "user_login": change.user_login,
                    "replayed": replayed,
                },
            )

    def _fire(self, event_type: str, data: dict[str, Any], context: Context | None = None) -> None:
        self.fired[event_type] += 1
        self.hass.bus.async_fire(event_type, data, context=context)
        for listener in self._change_listeners:
            try:
                listener(event_type, data)
            except Exception:  # the mirror's trouble must not stop the hub or the other listeners
                _LOGGER.exception("Error in a SAYMON change listener")

    def _state_event_data(self, change: StateChanged, replayed: bool) -> dict[str, Any]:
        model = self.model
        return {
            "config_entry_id": self.entry.entry_id,
            "entity_type": _entity_type_name(change.entity_type),
            "object_id": change.entity_id,
            "object_name": model.entity_name(change.entity_type, change.entity_id),
            "old_state_id": change.old_state_id,
            "old_state": model.state_name(change.old_state_id),
            "new_state_id": change.new_state_id,
            "new_state": model.state_name(change.new_state_id),
            "device_id": self.device_id_of(change.entity_id),
            "replayed": replayed,
        }

    def incident_event_data(self, change: IncidentChanged, replayed: bool) -> dict[str, Any]:
        """The data of a ``saymon_incident`` event (also used by the event entity)."""
        data = self.incident_data(change.incident)
        data.update(type=change.kind.value, config_entry_id=self.entry.entry_id, replayed=replayed)
        return data

    def incident_data(self, incident: Incident) -> dict[str, Any]:
        """Describe an incident for events, actions and the event entity."""
        model = self.model
        return {
            "incident_id": incident.id,
            "level_id": incident.level_id,
            "level": model.level_name(incident.level_id),
            "text": incident.text,
            "timestamp": incident.timestamp,
            "local_timestamp": incident.local_timestamp,
            "clear_timestamp": incident.clear_timestamp,
            "acknowledged_by": incident.acknowledged_by,
            "acknowledgement_timestamp": incident.acknowledgement_timestamp,
            "entity_type": _entity_type_name(incident.entity_type),
            "object_id": incident.entity_id,
            "object_name": incident.owner_name
            or model.entity_name(incident.entity_type, incident.entity_id),
            "device_id": self.device_id_of(incident.entity_id)
            if incident.entity_type is EntityType.OBJECT
            else None,
        }

    # -- diagnostics ------------------------------------------------------------------------

    def diagnostics(self) -> dict[str, Any]:
        """Sizes and counters (no names, hosts or secrets)."""
        return {
            "connected": self.connected,
            "available": self.available,
            "model": {
                "objects": len(self.model.objects),
                "links": len(self.model.links),
                "states": len(self.model.states),
                "incident_levels": len(self.model.levels),
                "classes": len(self.model.classes),
                "active_incidents": len(self.model.incidents),
                "cleared_incidents_listed": len(self.model.cleared),
                "moved_incidents_remembered": len(self.model.moved),
                "reported_incident_count": self.model.reported_count,
            },
            "scope": {
                "everything": self.scope.everything,
                "parents": len(self.scope.parents),
                "tags": len(self.scope.tags),
                "classes": len(self.scope.classes),
                "links": self.scope.links,
                "objects_in_scope": len(self.objects_in_scope),
                "links_in_scope": len(self.links_in_scope),
            },
            "subscriptions": [s.topic for s in self.comet.subscriptions],
            "comet": self.comet.stats.as_dict(),
            "events_fired": dict(self.fired),
            "replayed": self.replayed,
            "resyncs": self.resyncs,
            "resync_failures": self.resync_failures,
            "unverified_incident_events": self.unverified,
            "repaired_text_fields": dict(SANITIZED),
            "last_resync_seconds": self.last_resync_seconds,
            "rest_logins": self.rest.logins,
            "rest_records_skipped": dict(self.rest.rejected),
            "mqtt": self.mirror.diagnostics() if self.mirror is not None else None,
        }


_VIA_DEVICE_ID = (
    "via_device_id" in inspect.signature(dr.DeviceRegistry.async_get_or_create).parameters
)
"""Home Assistant 2026 links devices by parent device id (``via_device`` is deprecated there)."""


def find_device(
    registry: dr.DeviceRegistry, identifier: tuple[str, str], entry_id: str
) -> dr.DeviceEntry | None:
    """Find a device of a config entry by identifier, on every supported Home Assistant.

    Home Assistant 2026 made identifiers unique per config entry only and deprecated the
    global ``async_get_device`` lookup in favour of ``async_get_device_by_identifier``.
    """
    by_identifier = getattr(registry, "async_get_device_by_identifier", None)
    if by_identifier is not None:
        device: dr.DeviceEntry | None = by_identifier(identifier, entry_id)
        return device
    return registry.async_get_device({identifier})


def _via_device(
    registry: dr.DeviceRegistry, parent: tuple[str, str], entry_id: str
) -> dict[str, Any]:
    """Return the parent-device argument in the form this Home Assistant version expects."""
    if not _VIA_DEVICE_ID:
        return {"via_device": parent}
    device = find_device(registry, parent, entry_id)
    return {"via_device_id": device.id if device is not None else None}


def _entity_type_name(entity_type: EntityType) -> str:
    return entity_type.name.lower()


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
