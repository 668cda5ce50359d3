"""The hub: one SAYMON server in Home Assistant, wired together.

SaymonLive (:mod:`..api.live`) reports typed changes; the hub, its listener, hands each batch in
order to the consumers of its one change stream: entities (:mod:`.signals`), bus events
(:mod:`.events`: logbook, device triggers, the incident event entity), server events
(:mod:`.server_events`), metric entities (:mod:`.metrics`) and, when on, the MQTT mirror. Model
changes first reshape scope and device tree (:mod:`.devices`); availability and repairs follow
Comet (:mod:`.availability`); one :class:`~..coalesce.Coalescer` paces all writes in a storm.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import aiohttp
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_URL, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_call_later

from ..api.comet import CometClient
from ..api.errors import SaymonError, SaymonInvalidCredentialsError
from ..api.events import ModelChange
from ..api.live import SaymonLive
from ..api.model import Change, ModelChanged, SaymonModel
from ..api.models import Incident
from ..api.rest import SaymonRestClient
from ..coalesce import STORM_BACKLOG, Coalescer
from ..const import CONF_COMET, CONF_GRACE_PERIOD, CONF_USER_ID, DEFAULT_GRACE_PERIOD, DOMAIN
from ..credentials import credentials_from
from ..identity import server_host
from ..scope import Scope
from ..server_kinds import live_options
from ..states import StateOptions
from .availability import Availability
from .devices import DeviceTree
from .events import BusEvents
from .metrics import MetricEntities
from .server_events import ServerEvents
from .signals import EntitySignals

type ChangeListener = Callable[[Sequence[Change], bool], None]


class SaymonHub:
    """Everything Home Assistant knows about one SAYMON server, kept live."""

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, session: aiohttp.ClientSession
    ) -> None:
        """Create the parts; nothing is sent before :meth:`async_setup`."""
        self.hass = hass
        self.entry = entry
        self.scope = Scope.from_options(entry.options)
        self.live = SaymonLive(
            session,
            entry.data[CONF_URL],
            credentials_from(entry.data),
            self,
            comet=entry.data.get(CONF_COMET) or None,
            ssl_context=bool(entry.data.get(CONF_VERIFY_SSL, True)),
            read_links=self.scope.links,
            scheduler=lambda delay, act: async_call_later(hass, delay, callback(lambda _: act())),
            **live_options(entry.options),
        )
        self.server_key = str(entry.data[CONF_USER_ID])
        """Account key of every unique id and device identifier (see :mod:`..identity`)."""
        self.coalescer = Coalescer(hass.loop)
        self.signals = EntitySignals(hass, entry.entry_id, self.coalescer)
        self.coalescer.busy_when(lambda: self.live.comet.backlog >= STORM_BACKLOG)
        self.devices = DeviceTree(hass, entry.entry_id, self.server_key, self.base_url, self.scope)
        self.bus = BusEvents(hass, entry.entry_id)
        self.server_events = ServerEvents(hass, entry.entry_id, self.devices)
        self.availability = Availability(
            hass,
            entry.entry_id,
            float(entry.options.get(CONF_GRACE_PERIOD, DEFAULT_GRACE_PERIOD)),
            lambda: (self.host, self.base_url, self.comet.address),
            lambda: self.signals.send_now(self.signals.availability),
        )
        self.state_options = StateOptions()
        """The state sensors' options, cached for this server's states."""
        self._listeners: list[ChangeListener] = []
        self._object_listeners: list[Callable[[set[str]], None]] = []
        self._link_listeners: list[Callable[[set[str]], None]] = []
        self._shutting_down = False
        self.metrics = MetricEntities(self)

    # -- lifecycle --------------------------------------------------------------------------

    async def async_setup(self) -> None:
        """Log in, take the first snapshot, create devices and start Comet."""
        try:
            await self.live.load()
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
        self.refresh_scope()
        await self.metrics.async_setup()
        self.live.follow()
        self.availability.start()

    async def async_shutdown(self) -> None:
        """Stop Comet, timers and pending work; log out of SAYMON.

        Runs when the entry unloads and when Home Assistant stops (which unloads nothing), so
        a second call does nothing.
        """
        if self._shutting_down:
            return
        self._shutting_down = True
        self.availability.stop()
        self.coalescer.cancel()
        await self.metrics.async_shutdown()
        await self.live.stop()

    async def async_resync(self) -> bool:
        """Re-read SAYMON now; whether it succeeded (a failure is retried by itself)."""
        return await self.live.resync()

    # -- the change stream ------------------------------------------------------------------

    def add_listener(self, listener: ChangeListener) -> Callable[[], None]:
        """Receive every batch of changes after the entities and bus events; an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def add_object_listener(self, listener: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``listener`` with object ids that entered the scope; returns an unsubscribe."""
        self._object_listeners.append(listener)
        return lambda: self._object_listeners.remove(listener)

    def add_link_listener(self, listener: Callable[[set[str]], None]) -> Callable[[], None]:
        """Call ``listener`` with link ids that entered the scope; returns an unsubscribe."""
        self._link_listeners.append(listener)
        return lambda: self._link_listeners.remove(listener)

    @callback
    def on_changes(self, changes: Sequence[Change], replayed: bool) -> None:
        """Hand changes to every consumer; model changes first reshape scope and devices.

        Removals go out while their devices still exist (so events carry the ``device_id``),
        everything else after the devices were created.
        """
        if any(isinstance(change, ModelChanged) for change in changes):
            removed = [
                c
                for c in changes
                if isinstance(c, ModelChanged) and c.change is ModelChange.REMOVED
            ]
            self._dispatch(removed, replayed)
            self.refresh_scope()
            changes = [change for change in changes if change not in removed]
        self._dispatch(changes, replayed)

    def _dispatch(self, changes: Sequence[Change], replayed: bool) -> None:
        if not changes:
            return
        model, devices = self.model, self.devices
        self.signals.on_changes(changes, model, devices)
        self.bus.on_changes(changes, replayed, model, devices)
        self.server_events.on_changes(changes, model)
        for listener in list(self._listeners):
            listener(changes, replayed)

    def refresh_scope(self) -> None:
        """Recompute the scope, mirror it in the device registry, then tell the platforms."""
        new_objects, new_links = self.devices.refresh(self.model, self.entry.title)
        if new_objects:
            for listener in list(self._object_listeners):
                listener(new_objects)
        if new_links:
            for listener in list(self._link_listeners):
                listener(new_links)

    # -- what SaymonLive tells ----------------------------------------------------------------

    @callback
    def on_connected(self) -> None:
        """Comet is back: available again, the server's entities re-rendered."""
        self.availability.connected_now(self.host)
        self.signals.mark(self.signals.server)

    @callback
    def on_disconnected(self, reason: str) -> None:
        """Comet was lost: the outage timers run."""
        self.signals.mark(self.signals.server)
        self.availability.lost(self.host, reason)

    @callback
    def on_auth_failed(self) -> None:
        """SAYMON refused the credentials: ask the user."""
        if not self._shutting_down:
            self.entry.async_start_reauth(self.hass)

    @callback
    def on_resynced(self, renamed: Collection[str]) -> None:
        """States that got their names only now are written again."""
        for entity_id in renamed:
            self.signals.mark(self.signals.entity(entity_id))

    # -- views for the platforms, actions and diagnostics ----------------------------------

    @property
    def model(self) -> SaymonModel:
        """The live model (replaced on nothing: kept true by :class:`SaymonLive`)."""
        return self.live.model

    @property
    def rest(self) -> SaymonRestClient:
        """The REST client."""
        return self.live.rest

    @property
    def comet(self) -> CometClient:
        """The Comet client."""
        return self.live.comet

    @property
    def base_url(self) -> str:
        """SAYMON's normalised web address."""
        return self.live.rest.base_url

    @property
    def host(self) -> str:
        """The server's host (and port, if not the default one), for messages."""
        return server_host(self.base_url)

    @property
    def connected(self) -> bool:
        """Whether Comet is connected (as last reported)."""
        return self.availability.connected

    @property
    def available(self) -> bool:
        """Whether entities are available (connected, or within the grace period)."""
        return self.availability.available

    @property
    def resyncs(self) -> int:
        """Resyncs that succeeded."""
        return self.live.stats.resyncs

    @property
    def resync_failures(self) -> int:
        """Resyncs that failed (each retried)."""
        return self.live.stats.resync_failures

    @property
    def objects_in_scope(self) -> set[str]:
        """Objects that are devices."""
        return self.devices.objects_in_scope

    @property
    def links_in_scope(self) -> set[str]:
        """Links that have entities."""
        return self.devices.links_in_scope

    @property
    def server_identifier(self) -> tuple[str, str]:
        """Device registry identifier of the server (service) device."""
        return self.devices.server_identifier

    def object_identifier(self, object_id: str) -> tuple[str, str]:
        """Device registry identifier of an object's device."""
        return self.devices.object_identifier(object_id)

    def device(self, identifier: tuple[str, str]) -> dr.DeviceEntry | None:
        """The entry's device with a SAYMON identifier."""
        return self.devices.device(identifier)

    def object_of_device(self, device_id: str) -> str | None:
        """SAYMON object id behind a Home Assistant device of this entry."""
        return self.devices.object_of_device(device_id)

    def ordered_objects(self) -> list[str]:
        """Objects in scope, parents first."""
        return self.devices.ordered_objects(self.model)

    def incident_data(self, incident: Incident) -> dict[str, Any]:
        """Describe an incident for actions (as ``saymon_incident`` events do)."""
        return self.bus.incident_data(incident, self.model, self.devices)

    @property
    def repair_issue_id(self) -> str:
        """Id of the "SAYMON unreachable" repair issue of this entry."""
        return self.availability.repair_issue_id
