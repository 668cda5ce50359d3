"""Comet client: SAYMON's live events over Socket.IO (a Node ``socket.io`` 4.5.0 server).

python-socketio's own reconnection has gaps that lose events or hang forever against Comet
(measured in ``shared/socketio-notes.md``). This client therefore runs python-socketio with
reconnection *off* and supervises the connection itself:

* one supervisor task, so one connection attempt is in flight at a time, each with a fresh
  ``AsyncClient``; capped exponential backoff with jitter between attempts (``backoff.py``);
* every disconnect reason leads to a reconnect, including a server-side Socket.IO disconnect
  and an Engine.IO close over polling, which python-socketio never reconnects by itself;
* every connect waits ``connect_timeout`` for the namespace (the library's reconnect would
  use 1 s and fail forever on a slow session lookup);
* a rejected ``sessionId`` triggers a fresh REST login through ``session_provider`` instead of
  being retried forever; rejected *credentials* stop the supervisor and are reported;
* every subscription is re-emitted on every connect (4.5.0 has no connection-state recovery);
* the session id is URL-encoded into the query (python-engineio passes the query verbatim);
* WebSocket messages up to :data:`MAX_MESSAGE_BYTES` are accepted (aiohttp stops at 4 MiB and
  drops the connection); larger ones are refused by closing the connection, which the
  caller learns through the disconnect and resync path;
* ``handle_sigint=False``, so constructing a client never takes over the process's SIGINT.

The rest lives beside it: incoming events go through one bounded queue drained in order by one
worker (``inbound.py``); the overrides of python-socketio/-engineio private API (inline
dispatch, frame guards, orjson, the polling packet limit) are in ``_socketio.py``, checked at
import by ``_compat.py``; the session id is kept out of logs and messages by ``redact.py``. The
client never logs or raises the session id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
import contextlib
import logging
import ssl
import time
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
import socketio
import socketio.exceptions

from . import _socketio
from .backoff import Backoff
from .errors import (
    SaymonCometError,
    SaymonConnectionError,
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonSessionExpiredError,
    SaymonTLSError,
)
from .events import CometEvent
from .inbound import (
    DEFAULT_MAX_HELD_BYTES,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_READ_AHEAD,
    EventGate,
    Inbound,
)
from .redact import SessionSecrets, library_logger
from .stats import CometStats
from .subscription import Subscription
from .url import CometEndpoint

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "MAX_MESSAGE_BYTES",
    "STABLE_AFTER",
    "Backoff",
    "CometClient",
    "CometStats",
    "SessionProvider",
    "Subscription",
]
"""The client and the types of its constructor and ``stats`` (defined beside it)."""

_LOGGER = logging.getLogger(__name__)
_SOCKETIO_LOGGER = library_logger(f"{__name__}.socketio")
_ENGINEIO_LOGGER = library_logger(f"{__name__}.engineio")

MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""Largest WebSocket message accepted; beyond it the connection is dropped and resynced."""

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
STABLE_AFTER: Final = 30.0
"""A connection that lasted this long resets the backoff; shorter ones keep growing it."""

type SessionProvider = Callable[[bool], Awaitable[str]]
"""Returns a SAYMON session id; called with ``True`` when Comet rejected the previous one."""


def _exception_chain(err: BaseException) -> list[BaseException]:
    """Return ``err`` and the exceptions it was raised from or while handling, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


async def _send(sio: socketio.AsyncClient, args: tuple[str, ...]) -> None:
    """Emit ``args[0]`` with the rest as its arguments.

    python-socketio's ``emit(event, data, namespace)`` would read a third positional value as
    the namespace; several arguments must travel as one tuple.
    """
    await sio.emit(args[0], args[1:])


def _call[*A](callback: Callable[[*A], None] | None, *args: *A) -> None:
    """Run a caller's callback; its bugs are logged, never allowed to kill the supervisor."""
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        _LOGGER.exception("Error in a SAYMON Comet callback")


class _SessionRejectedError(SaymonCometError):
    """Comet refused the session id (the namespace CONNECT was answered with an error)."""


class _CometTLSError(SaymonCometError, SaymonTLSError):
    """Comet's TLS certificate was rejected."""


def _is_session_rejection(data: Any) -> bool:
    """Tell a rejected session apart from other CONNECT errors in Comet's error data."""
    if not isinstance(data, Mapping):
        return isinstance(data, str) and "session" in data.lower()
    details = data.get("data")
    if isinstance(details, Mapping) and details.get("code") in (401, "401"):
        return True
    message = data.get("message")
    return isinstance(message, str) and any(
        word in message.lower() for word in ("session", "unauthori", "not logged")
    )


class CometClient:
    """Keeps one live, subscribed Comet connection for one SAYMON session.

    Callbacks run in the event loop: ``on_event`` for each parsed event in arrival order,
    ``on_connected`` once subscriptions are sent, ``on_disconnected`` with the reason,
    ``on_events_lost`` when the queue overflowed (the caller should resync over REST), and
    ``on_auth_failed`` when a re-login was refused (the supervisor then stops).
    """

    def __init__(
        self,
        http_session: aiohttp.ClientSession,
        endpoint: CometEndpoint,
        session_provider: SessionProvider,
        *,
        subscriptions: Iterable[Subscription] = (),
        on_event: Callable[[CometEvent], None] | None = None,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        on_events_lost: Callable[[int], None] | None = None,
        on_auth_failed: Callable[[SaymonInvalidCredentialsError], None] | None = None,
        ssl_context: ssl.SSLContext | bool = True,
        transports: tuple[str, ...] = ("websocket",),
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        backoff: Backoff | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        read_ahead: int = DEFAULT_READ_AHEAD,
        max_held_bytes: int = DEFAULT_MAX_HELD_BYTES,
        gate: EventGate | None = None,
    ) -> None:
        """Prepare the client; nothing connects before :meth:`start` or :meth:`check`.

        Events wait in a queue for the worker. Beyond ``read_ahead`` queued events, further
        frames are held raw (undecoded, in order) and reading goes on, so Engine.IO pings
        buried behind a storm are still answered in time: a storm faster than Home Assistant
        is delayed, not lost, and does not cost the connection. Only when the held frames
        reach ``max_held_bytes`` does reading pause (TCP backpressure: Comet holds the rest)
        until half of them are handled; a pause that outlasts Comet's ping timeout costs a
        reconnect and a resync. Beyond ``queue_size`` (only reachable when it is the smaller
        one) events are dropped, counted and reported through ``on_events_lost``. ``gate``
        may drop events as they arrive (see :class:`.inbound.EventGate`).
        """
        self._http = http_session
        self.endpoint = endpoint
        self._session_provider = session_provider
        self._subscriptions: dict[Subscription, None] = dict.fromkeys(subscriptions)
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_auth_failed = on_auth_failed
        self._ssl = ssl_context
        self._transports = list(transports)
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self.stats = CometStats()
        self._inbound = Inbound(
            self.stats,
            on_event=on_event,
            on_events_lost=lambda dropped: _call(on_events_lost, dropped),
            queue_size=queue_size,
            read_ahead=read_ahead,
            max_held_bytes=max_held_bytes,
            gate=gate,
        )
        self._sio: _socketio.SocketIOClient | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnect_reason = ""
        self._connect_error: Any = None
        self._secrets = SessionSecrets()

    # -- public API -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the connection is up and subscribed."""
        return self.stats.connected_since is not None

    @property
    def address(self) -> str:
        """The Comet address, for messages (no secrets in it)."""
        path = self.endpoint.socketio_path.strip("/")
        return f"{self.endpoint.url}/{path}/"

    @property
    def transports(self) -> tuple[str, ...]:
        """The Engine.IO transports tried, in order (``polling`` first: upgrades when it can)."""
        return tuple(self._transports)

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """What is re-subscribed on every connect."""
        return tuple(self._subscriptions)

    @property
    def backlog(self) -> int:
        """Events and frames received but not yet handed on (a storm in progress)."""
        return self._inbound.backlog

    @property
    def holding(self) -> bool:
        """Whether messages are held raw: the queue is full, or earlier ones are still held."""
        return self._inbound.holding

    def start(self) -> None:
        """Start the supervisor and the event worker (idempotent)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._inbound.run(), name="saymon-comet-worker")
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise(), name="saymon-comet")

    async def stop(self) -> None:
        """Disconnect, stop every task of this client and drop queued events."""
        tasks = [task for task in (self._supervisor, self._worker) if task is not None]
        self._supervisor = self._worker = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_socket()
        self._secrets.forget()
        self._inbound.clear()
        self._mark_disconnected()

    def reconnect_now(self) -> None:
        """Skip the current backoff wait (e.g. the user asked for a refresh)."""
        self._wake.set()

    async def check(self) -> None:
        """Connect once and disconnect: proves Comet accepts this session (config flow).

        Raises :class:`SaymonTLSError`, :class:`SaymonSessionExpiredError` (the session was
        rejected) or :class:`SaymonCometError` naming the address it tried.
        """
        session_id = await self._session_provider(False)
        try:
            await self._connect(session_id)
        except _SessionRejectedError as err:
            raise SaymonSessionExpiredError(str(err)) from None
        finally:
            await self._close_socket()
            self._secrets.forget()

    async def subscribe(self, subscription: Subscription) -> None:
        """Add a subscription, effective now if connected and after every reconnect."""
        if subscription in self._subscriptions:
            return
        self._subscriptions[subscription] = None
        await self._emit(subscription.add_args())

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Remove a subscription."""
        if self._subscriptions.pop(subscription, False) is None:
            await self._emit(subscription.remove_args())

    # -- supervision ------------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        refresh = False
        while True:
            if failures:
                await self._sleep(self._backoff.delay(failures))
            try:
                session_id = await self._session_provider(refresh)
            except SaymonInvalidCredentialsError as err:
                _LOGGER.debug("SAYMON refused the stored credentials; Comet stays disconnected")
                _call(self._on_auth_failed, err)
                return
            except SaymonError as err:
                failures += 1
                self._log_failure(failures, f"cannot log in to SAYMON for Comet: {err}")
                continue
            refresh = False
            try:
                await self._connect(session_id)
            except _SessionRejectedError:
                self.stats.sessions_rejected += 1
                refresh = True
                failures += 1
                await self._close_socket()
                continue
            except SaymonConnectionError as err:
                self.stats.connect_failures += 1
                failures += 1
                self._log_failure(failures, str(err))
                await self._close_socket()
                continue
            started = time.monotonic()
            self._announce_connected()
            await self._disconnected.wait()
            reason = self._disconnect_reason
            await self._close_socket()
            self._mark_disconnected()
            self.stats.disconnects[reason] += 1
            _call(self._on_disconnected, reason)
            # A connection that dropped quickly keeps the backoff growing (no hot loop against
            # a server that accepts and then closes); a long-lived one starts over gently.
            failures = 1 if time.monotonic() - started >= STABLE_AFTER else failures + 1

    async def _sleep(self, delay: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), delay)

    def _log_failure(self, failures: int, message: str) -> None:
        # Debug only: the caller learns about outages through on_disconnected and logs them
        # once; a retry loop must not flood the log while SAYMON is away.
        _LOGGER.debug(
            "SAYMON Comet at %s (failure %d): %s",
            self.address,
            failures,
            self._secrets.redact(message),
        )

    def _announce_connected(self) -> None:
        self.stats.connects += 1
        self.stats.connected_since = time.monotonic()
        _call(self._on_connected)

    def _mark_disconnected(self) -> None:
        self.stats.connected_since = None

    # -- one connection ---------------------------------------------------------------------

    def _new_socket(self) -> _socketio.SocketIOClient:
        sio = _socketio.SOCKET_CLASS(
            reconnection=False,
            handle_sigint=False,
            logger=_SOCKETIO_LOGGER,
            engineio_logger=_ENGINEIO_LOGGER,
            http_session=self._http,
            ssl_verify=self._ssl is not False,
            request_timeout=self._connect_timeout,
            websocket_extra_options=self._websocket_options(),
            json=_socketio.FastJson,
        )
        inbound = self._inbound
        sio.route(
            inbound.enqueue,
            inbound,
            on_rejected=inbound.frame_rejected,
            received=lambda: inbound.received,
        )
        sio.on("connect_error", self._handle_connect_error)
        sio.on("disconnect", self._handle_disconnect)
        return sio

    def _websocket_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"max_msg_size": MAX_MESSAGE_BYTES}
        if isinstance(self._ssl, ssl.SSLContext):
            options["ssl"] = self._ssl
        return options

    async def _connect(self, session_id: str) -> None:
        """Open one connection and send every subscription, or raise a typed error."""
        await self._close_socket()
        self._secrets.use(session_id)
        self._disconnected.clear()
        self._disconnect_reason = ""
        self._connect_error = None
        sio = self._sio = self._new_socket()
        self._inbound.reader = sio.eio
        url = f"{self.endpoint.url}/?{urlencode({'sessionId': session_id})}"
        try:
            # python-engineio bounds neither the WebSocket handshake (Home Assistant's session
            # allows 5 minutes) nor the wait for Engine.IO's OPEN packet: a connection attempt
            # into a dead network would hang. The whole attempt gets twice connect_timeout.
            async with asyncio.timeout(2 * self._connect_timeout):
                await sio.connect(
                    url,
                    socketio_path=self.endpoint.socketio_path,
                    transports=self._transports,
                    wait_timeout=self._connect_timeout,
                )
        except socketio.exceptions.ConnectionError as err:
            raise self._classify_connect_failure(err) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            raise SaymonCometError(f"cannot reach Comet at {self.address}: {err}") from None
        try:
            for subscription in self._subscriptions:
                await _send(sio, subscription.add_args())
        except socketio.exceptions.SocketIOError as err:
            raise SaymonCometError(f"Comet at {self.address} closed while subscribing") from err

    def _classify_connect_failure(self, err: Exception) -> SaymonCometError:
        chain = _exception_chain(err)
        # python-engineio reports a failed WebSocket connect as a bare "Connection error"; the
        # real reason (refused, DNS, certificate) is further down the exception chain.
        text = self._secrets.redact("; ".join(dict.fromkeys(str(e) for e in chain if str(e))))
        if any(isinstance(e, aiohttp.ClientSSLError | ssl.SSLError) for e in chain) or (
            "certificate verify failed" in text.lower()
        ):
            return _CometTLSError(f"TLS certificate of Comet at {self.address} rejected: {text}")
        if self._connect_error is not None and _is_session_rejection(self._connect_error):
            return _SessionRejectedError(f"Comet at {self.address} rejected the session")
        refused = next((e for e in chain if isinstance(e, aiohttp.WSServerHandshakeError)), None)
        if refused is not None and refused.status != 404:
            return SaymonCometError(
                f"the WebSocket connection to Comet at {self.address} was refused (HTTP "
                f"{refused.status}); a proxy may block WebSocket: use the long-polling transport"
            )
        if self._connect_error is not None:
            detail = self._secrets.redact(str(self._connect_error))
            return SaymonCometError(f"Comet at {self.address} refused the connection: {detail}")
        return SaymonCometError(f"cannot connect to Comet at {self.address}: {text}")

    async def _close_socket(self) -> None:
        self._inbound.detach()
        sio, self._sio = self._sio, None
        if sio is not None:
            await _socketio.close(sio)

    async def _emit(self, args: tuple[str, ...]) -> None:
        sio = self._sio
        if sio is None or not self.connected:
            return  # sent on the next connect
        try:
            await _send(sio, args)
        except socketio.exceptions.SocketIOError:
            _LOGGER.debug("Comet emit failed; it is repeated on reconnect")

    # -- Socket.IO handlers ------------------------------------------------------------------

    def _handle_connect_error(self, data: Any = None) -> None:
        self._connect_error = data

    def _handle_disconnect(self, reason: str = "unknown") -> None:
        self._disconnect_reason = str(reason)
        self._disconnected.set()
