"""SaymonSimulator: the REST listener, the Comet listener and the control API around one model.

Tests drive it in-process through this class; the CLI (`python -m tools.simulator`) wraps it
for manual runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
import random
import ssl
import time
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .accounts import VIEWER_LOGIN, VIEWER_PASSWORD, Accounts
from .activity import DEFAULT_STORM_KINDS, StormResult, run_storm, tick_forever
from .comet import CometServer, SocketInfo
from .control import CONTROL_PREFIX, control_middleware, control_routes
from .core import SimulatorCore
from .errors import InvalidRequestError
from .events import Event
from .faults import REST_PREFIX, Counters, Faults, IncidentCountShape, api_path
from .incidents import DEFAULT_INCIDENT_TIMEOUT_MS
from .listener import Listener
from .model import SimulatorModel
from .operations import OperationsBook
from .rest import rest_routes
from .rest_operations import OPERATIONS_KEY, operations_routes
from .rest_support import CORE_KEY, rest_middleware
from .server_events import payload, values_for
from .stats import DEFAULT_PERIOD_MS
from .web import web_routes

DEFAULT_LOGIN = "admin"
DEFAULT_PASSWORD = "secret"
_KNOB_TYPES: dict[str, type[Any] | tuple[type[Any], ...]] = {
    "rest_delay": (int, float),
    "rest_delay_after": (int, float),
    "fail_next": int,
    "fail_all": bool,
    "garbage_paths": list,
    "accept_delay": (int, float),
    "incident_count_shape": str,
    "csrf_cookie": bool,
}


class SaymonSimulator:
    """A fake SAYMON server: REST on one port, Comet (Socket.IO) on another, both 127.0.0.1.

    Use as `async with SaymonSimulator(...) as sim:` or call `start()`/`stop()`. Every control
    method changes the model for real and publishes the Comet events SAYMON would.
    """

    def __init__(
        self,
        *,
        objects: int = 40,
        seed: int = 1,
        login: str = DEFAULT_LOGIN,
        password: str = DEFAULT_PASSWORD,
        api_token: str | None = None,
        rest_port: int = 0,
        comet_port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        session_ttl: float = 3600.0,
        tick: float | None = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        clock: Callable[[], int] | None = None,
        incident_timeout: float = DEFAULT_INCIDENT_TIMEOUT_MS / 1000,
        stat_period: float = DEFAULT_PERIOD_MS / 1000,
        stat_expiry: float | None = None,
        run_probes: bool = False,
    ) -> None:
        """Build the model now; nothing listens until `start()`. Ports 0 = pick free ports.

        `incident_timeout`: seconds a cleared incident stays in GET /incidents before SAYMON
        moves it to the history (changeType 3); 0 moves it at once. `stat_period` /
        `stat_expiry`: seconds, the `period` / `expiryPeriod` of every probe's stat;
        `run_probes`: run every probe once per period, spread over it (otherwise stats are
        sent only when a test asks).
        """
        self.model = SimulatorModel(
            objects=objects,
            seed=seed,
            clock=clock,
            incident_timeout_ms=round(incident_timeout * 1000),
            stat_period_ms=round(stat_period * 1000),
            stat_expiry_ms=None if stat_expiry is None else round(stat_expiry * 1000),
        )
        self.accounts = Accounts(
            login=login, password=password, api_token=api_token, seed=seed, session_ttl=session_ttl
        )
        self.core = SimulatorCore(self.model, self.accounts)
        self.comet = CometServer(
            self.core,
            port=comet_port,
            ssl_context=ssl_context,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        self.core.publisher = self.comet.publish
        self.operations = OperationsBook(self.model, self.core.publish, seed)
        """Operations of objects and links, their jobs, and the faults of both."""
        self._event_rng = random.Random(f"{seed}:server-events")
        self._rest = Listener(rest_port, ssl_context=ssl_context)
        self._rng = random.Random(f"{seed}:activity")
        self._tick = tick
        self._background: set[asyncio.Task[Any]] = set()
        self._tick_task: asyncio.Task[None] | None = None
        self._expiry_task: asyncio.Task[None] | None = None
        self._run_probes = run_probes
        self._probe_task: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Start serving."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        await self.stop()

    async def start(self) -> None:
        """Start REST, Comet and (if configured) the random tick."""
        await self.start_rest()
        await self.start_comet()
        if self._tick and self._tick_task is None:
            self._tick_task = asyncio.create_task(tick_forever(self.core, self._rng, self._tick))
        if self._expiry_task is None and self.model.incidents.timeout_ms > 0:
            self._expiry_task = asyncio.create_task(self._expire_forever())
        if self._run_probes and self._probe_task is None:
            self._probe_task = asyncio.create_task(self._probe_forever())

    async def stop(self) -> None:
        """Stop everything and cancel all background work (no task is left behind)."""
        tasks = [
            task
            for task in (self._tick_task, self._expiry_task, self._probe_task, *self._background)
            if task is not None
        ]
        self._tick_task = self._expiry_task = self._probe_task = None
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not current), return_exceptions=True)
        await self.operations.close()
        await self.stop_comet()
        await self.stop_rest()

    async def start_rest(self) -> None:
        """Start the REST listener (with the control routes and the web page on the same port)."""
        if self._rest.running:
            return
        app = web.Application(middlewares=[control_middleware, rest_middleware])
        app[CORE_KEY] = self.core
        app[OPERATIONS_KEY] = self.operations
        app.add_routes(rest_routes())
        app.add_routes(operations_routes())
        app.add_routes(control_routes(self))
        app.add_routes(web_routes())
        await self._rest.start(app)

    async def _expire_forever(self) -> None:
        """SAYMON's incident timeout: move aged cleared incidents to the history."""
        interval = min(1.0, self.model.incidents.timeout_ms / 4000)
        while True:
            await asyncio.sleep(interval)
            await self.core.expire_incidents()

    async def _probe_forever(self) -> None:
        """Every probe runs once per period, the probes spread evenly over it (as agents do)."""
        loop = asyncio.get_running_loop()
        period = self.model.probes.period_ms / 1000
        while True:
            started = loop.time()
            keys = list(self.model.probes.probes)
            done = 0
            while done < len(keys):
                due = int((loop.time() - started) / period * len(keys)) + 1
                if due > done:
                    await self.core.run_probes(keys[done:due])
                    done = due
                await asyncio.sleep(min(0.02, period / max(len(keys), 1)))
            await asyncio.sleep(max(0.0, started + period - loop.time()))

    async def add_rest_address(self) -> str:
        """Serve REST on one more port too (the same server at a second address); its URL."""
        return await self._rest.add_port()

    async def stop_rest(self) -> None:
        """Stop the REST listener only (Comet keeps running)."""
        await self._rest.stop()

    async def start_comet(self) -> None:
        """Start the Comet listener on its (remembered) port."""
        await self.comet.start()

    async def stop_comet(self) -> None:
        """Stop Comet as if the process died: sockets are cut, clients see a transport error."""
        await self.comet.stop()

    async def restart(self) -> None:
        """Restart REST and Comet on the same ports; the model and sessions are kept."""
        await self.stop_comet()
        await self.stop_rest()
        await self.start_rest()
        await self.start_comet()
        self.counters.restarts += 1

    def restart_later(self, delay: float = 0.1) -> None:
        """Schedule `restart()` (used by the control route, which runs on the REST listener)."""

        async def later() -> None:
            await asyncio.sleep(delay)
            await self.restart()

        task = asyncio.create_task(later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- connection details --------------------------------------------------------------

    @property
    def rest_port(self) -> int:
        """REST port."""
        return self._rest.port

    @property
    def comet_port(self) -> int:
        """Comet port."""
        return self.comet.listener.port

    @property
    def rest_url(self) -> str:
        """Base URL of the REST server, e.g. `http://127.0.0.1:8080` (API under /node/api)."""
        return self._rest.url

    @property
    def api_url(self) -> str:
        """`rest_url` + `/node/api`."""
        return f"{self.rest_url}{REST_PREFIX}"

    @property
    def comet_url(self) -> str:
        """Comet URL, e.g. `http://127.0.0.1:8091` (Socket.IO path /socket.io/)."""
        return self.comet.listener.url

    @property
    def control_url(self) -> str:
        """Base URL of the HTTP control API."""
        return f"{self.rest_url}{CONTROL_PREFIX}"

    @property
    def login(self) -> str:
        """Admin login."""
        return self.accounts.admin.login

    @property
    def password(self) -> str:
        """Admin password (current)."""
        return self.accounts.admin.password

    @property
    def api_token(self) -> str | None:
        """Admin API token (None once revoked)."""
        return self.accounts.admin.api_token

    @property
    def user_id(self) -> str:
        """Admin user id."""
        return self.accounts.admin.id

    @property
    def viewer_login(self) -> str:
        """Login of the read-only user (no manage rights)."""
        return VIEWER_LOGIN

    @property
    def viewer_password(self) -> str:
        """Password of the read-only user."""
        return VIEWER_PASSWORD

    @property
    def faults(self) -> Faults:
        """Fault knobs (also settable through the methods below)."""
        return self.core.faults

    @property
    def counters(self) -> Counters:
        """Request/connection/event counters."""
        return self.core.counters

    def info(self) -> dict[str, Any]:
        """Everything a client needs to connect (GET /control/info, CLI banner)."""
        return {
            "rest_url": self.rest_url,
            "api_url": self.api_url,
            "comet_url": self.comet_url,
            "control_url": self.control_url,
            "login": self.login,
            "password": self.password,
            "api_token": self.api_token,
            "user_id": self.user_id,
            "viewer_login": self.viewer_login,
            "viewer_password": self.viewer_password,
            "objects": len(self.model.objects),
            "links": len(self.model.links),
            "active_incidents": len(self.model.incidents.active),
            "root_id": self.model.root_id,
        }

    # --- model changes -------------------------------------------------------------------

    async def set_state(self, object_id: str, state_id: int) -> dict[str, Any]:
        """Set an object's state: state-change, incident lifecycle, incident-count."""
        return await self.core.set_state(object_id, state_id)

    async def set_link_state(self, link_id: str, state_id: int) -> dict[str, Any]:
        """Set a link's state (events with type/entityType 2)."""
        return await self.core.set_link_state(link_id, state_id)

    async def clear_incident(self, incident_id: str) -> None:
        """Clear an incident (changeType 2; listed until the incident timeout)."""
        await self.core.clear(incident_id)

    async def clear_remove_incident(self, incident_id: str) -> None:
        """Clear an incident and move it to the history at once (changeType 3)."""
        await self.core.clear_remove(incident_id)

    async def expire_incidents(self, *, all_cleared: bool = False) -> int:
        """Run SAYMON's incident timeout now (``all_cleared``: as if it had passed for all).

        Returns how many cleared incidents moved to the history.
        """
        book = self.model.incidents
        if all_cleared:
            saved, book.timeout_ms = book.timeout_ms, -(2**62)
            try:
                return await self.core.expire_incidents()
            finally:
                book.timeout_ms = saved
        return await self.core.expire_incidents()

    def set_count_cleared(self, enabled: bool) -> None:
        """Whether `incident-count` counts cleared incidents still listed."""
        self.model.incidents.count_cleared = enabled

    def add_state(
        self, state_id: int, name: str, priority: int = 0, color: str = "#1189d2"
    ) -> dict[str, Any]:
        """Add a custom state such as 101 "Maintenance"."""
        return self.model.add_state(state_id, name, priority, color)

    async def create_object(self, name: str, parent_id: str, class_id: str) -> str:
        """Create an object (model-changed 1 by the admin user); returns its id."""
        return await self.core.create_object(name, parent_id, class_id)

    async def rename_object(self, object_id: str, name: str) -> None:
        """Rename an object (model-changed 2)."""
        await self.core.rename_object(object_id, name)

    async def move_object(self, object_id: str, parent_id: str) -> None:
        """Re-parent an object (model-changed 2)."""
        await self.core.move_object(object_id, parent_id)

    async def delete_object(self, object_id: str) -> None:
        """Delete an object and its subtree (model-changed 3 each; links and incidents go too)."""
        await self.core.delete_object(object_id)

    async def emit_stat(
        self, object_id: str, payload: dict[str, Any] | None = None, *, link: bool = False
    ) -> None:
        """Send `stat` to sockets that did add-filtered-topic("stat", "1:<id>") ("2:" links).

        `payload`: the whole stat; without it the entity's probe runs.
        """
        await self.core.emit_stat(object_id, payload, link=link)

    async def run_probes(self, keys: Iterable[tuple[int, str]] | None = None) -> int:
        """Run probes now (default: every one) and send their stats; returns how many."""
        return await self.core.run_probes(keys)

    async def emit_server_event(
        self,
        topic: str,
        object_id: str | None = None,
        *,
        shape: str = "documented",
        count: int = 1,
        **values: Any,
    ) -> list[Any]:
        """Send ``count`` server events (``snmp-trap``, ``mqtt``, ...) about an object.

        ``shape`` picks the documented, a plausible or a surprising payload (see
        ``server_event_shapes.json``); ``values`` override placeholders (``LEVEL``, ``TEXT``,
        ``TOPIC``...). Only sockets subscribed to the topic get them. Returns the payloads.
        """
        if object_id is None:
            object_id = next(iter(self.model.objects))
        obj = self.model.objects.get(object_id)
        name = obj.name if obj is not None else object_id
        payloads = [
            payload(
                topic,
                shape,
                values_for(
                    self._event_rng, self.model.clock(), (object_id, name), SEQ=seq, **values
                ),
            )
            for seq in range(count)
        ]
        await self.core.publish([Event(topic, body, (1, object_id)) for body in payloads])
        return payloads

    async def storm(
        self,
        count: int,
        rate_per_s: float | None = None,
        kinds: Collection[str] = DEFAULT_STORM_KINDS,
    ) -> StormResult:
        """`count` random real state changes; emits only events named in `kinds`."""
        return await run_storm(self.core, self._rng, count, rate_per_s, kinds)

    # --- connections and sessions --------------------------------------------------------

    def sockets(self) -> list[SocketInfo]:
        """Return the connected Comet sockets with their topics."""
        return self.comet.sockets()

    async def wait_for_sockets(
        self, count: int = 1, *, topic: str | None = None, seconds: float = 5.0
    ) -> list[SocketInfo]:
        """Wait until `count` sockets are connected (and subscribed to `topic`, if given)."""
        deadline = time.monotonic() + seconds
        while True:
            matching = [info for info in self.sockets() if topic is None or topic in info.topics]
            if len(matching) >= count:
                return matching
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(matching)} of {count} sockets (topic {topic!r})")
            await asyncio.sleep(0.01)

    async def drop_connections(self) -> int:
        """Server-side disconnect of every Comet socket (clients see "server disconnect")."""
        return await self.comet.disconnect()

    async def expire_sessions(self, *, disconnect: bool = False) -> tuple[int, int]:
        """Expire all sessions; optionally also disconnect their sockets. Returns both counts."""
        expired = self.accounts.expire_all()
        dropped = await self.comet.disconnect(expired) if disconnect else 0
        return len(expired), dropped

    def set_password(self, password: str) -> None:
        """Change the admin password."""
        self.accounts.set_password(password)

    def revoke_token(self) -> None:
        """Revoke the admin API token."""
        self.accounts.revoke_token()

    def new_token(self) -> str:
        """Issue a new admin API token."""
        return self.accounts.new_token()

    async def send_raw(self, event: str, payload: Any, *, everyone: bool = False) -> int:
        """Emit an arbitrary payload as `event` to its subscribers (or all sockets)."""
        return await self.comet.send_raw(event, payload, everyone=everyone)

    async def send_frames(self, frames: Sequence[str | bytes]) -> int:
        """Write raw WebSocket frames to every Comet socket (wire fuzzing); see CometServer."""
        return await self.comet.send_frames(frames)

    # --- fault knobs ---------------------------------------------------------------------

    def set_rest_delay(self, seconds: float) -> None:
        """Delay every REST call by `seconds`."""
        self.faults.rest_delay = seconds

    def fail_next(self, count: int) -> None:
        """Answer the next `count` REST calls with 500 InternalError."""
        self.faults.fail_next = count

    def fail_all(self, enabled: bool = True) -> None:
        """Answer every REST call with 500 until turned off or reset."""
        self.faults.fail_all = enabled

    def garble(self, path: str, enabled: bool = True) -> None:
        """Answer `path` (e.g. "objects" or "/node/api/objects") with a non-JSON body."""
        full = api_path(path)
        if enabled:
            self.faults.garbage_paths.add(full)
        else:
            self.faults.garbage_paths.discard(full)

    def set_accept_delay(self, seconds: float) -> None:
        """Delay the Comet sessionId check by `seconds`."""
        self.faults.accept_delay = seconds

    def set_incident_count_shape(self, shape: IncidentCountShape) -> None:
        """`object` sends `{"count": n}`, `number` sends a bare `n`."""
        self.faults.incident_count_shape = shape

    def set_csrf_cookie(self, enabled: bool) -> None:
        """Whether login issues the csrf cookie (some SAYMON versions do not)."""
        self.faults.csrf_cookie = enabled

    def configure_faults(self, **knobs: Any) -> None:
        """Set several knobs by name (the control route's entry point); validates values."""
        for name, value in knobs.items():
            expected = _KNOB_TYPES.get(name)
            if expected is None:
                raise InvalidRequestError(f"Unknown knob {name!r}.")
            if not isinstance(value, expected) or (
                expected is not bool and isinstance(value, bool)
            ):
                raise InvalidRequestError(f"Bad value for {name!r}: {value!r}.")
        shape = knobs.get("incident_count_shape", "object")
        if shape not in {"object", "number"}:
            raise InvalidRequestError("incident_count_shape must be 'object' or 'number'.")
        for name, value in knobs.items():
            if name == "garbage_paths":
                self.faults.garbage_paths = {api_path(str(path)) for path in value}
            else:
                setattr(self.faults, name, value)

    def reset_faults(self) -> None:
        """Back to a healthy server."""
        self.faults.reset()
