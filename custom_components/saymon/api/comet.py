"""Comet client: SAYMON's live events over Socket.IO (a Node ``socket.io`` 4.5.0 server).

python-socketio's own reconnection has gaps that lose events or hang forever against Comet
(measured in ``shared/socketio-notes.md``). This client therefore runs python-socketio with
reconnection *off* and supervises the connection itself:

* one supervisor task, so one connection attempt is in flight at a time, each with a fresh
  ``AsyncClient``; capped exponential backoff with jitter between attempts;
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
* polling responses may hold many packets (python-engineio aborts beyond 16 by default);
* incoming events are not run as one task each: python-engineio's per-message task is
  replaced by inline dispatch into one bounded queue drained in order by one worker;
* ``handle_sigint=False``, so constructing a client never takes over the process's SIGINT;
* packets are decoded with orjson (several times faster than the standard library with
  python-engineio's integer guard), falling back to python-engineio's own JSON module for
  anything orjson refuses;
* the private library methods overridden for the two points above and the frame guards are
  checked at import (``_compat.py``): if a python-socketio/-engineio release changed one, none
  is overridden and the library's public event handling is used (slower, still correct).

The client never logs or raises the session id.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
import contextlib
from dataclasses import dataclass, field
import json
import logging
import random
import ssl
import time
from typing import Any, Final, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import engineio
from engineio import json as engineio_json, packet as engineio_packet
from engineio.payload import Payload
import orjson
import socketio
import socketio.exceptions

from . import _compat
from .errors import (
    SaymonCometError,
    SaymonConnectionError,
    SaymonError,
    SaymonInvalidCredentialsError,
    SaymonProtocolError,
    SaymonSessionExpiredError,
    SaymonTLSError,
)
from .events import TOPIC_INCIDENTS, TOPIC_STAT, CometEvent, parse_event
from .models import EntityType
from .url import CometEndpoint

_LOGGER = logging.getLogger(__name__)

MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""Largest WebSocket message accepted; beyond it the connection is dropped and resynced."""

MAX_POLLING_PACKETS: Final = 100_000
"""Packets accepted in one polling response (python-engineio's default of 16 loses bursts)."""

MAX_ATTACHMENTS: Final = 16
"""Binary attachments a Socket.IO packet may announce; more and the packet is dropped."""

MALFORMED_FRAME: Final = "(frame)"
"""Key of :attr:`CometStats.malformed` counting frames that are not valid Socket.IO."""

DEFAULT_QUEUE_SIZE: Final = 50_000
DEFAULT_READ_AHEAD: Final = 20_000
"""Queued events beyond which further frames are held raw, undecoded (see ``max_held_bytes``)."""
DEFAULT_MAX_HELD_BYTES: Final = 128 * 1024 * 1024
"""Raw frames held while the queue is full; beyond it reading pauses until half are handled."""
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
_BATCH: Final = 500
"""Events the worker handles at most before yielding to the event loop."""
_BATCH_SECONDS: Final = 0.05
"""Time after which the worker yields even within a batch (a slow consumer must not starve
the read loop, which answers Comet's pings)."""
WS_CLOSE_GRACE: Final = 1.0
"""Seconds a dead WebSocket is given to answer our close before it is dropped."""
CLOSE_GRACE: Final = 2.0
"""Seconds a closing connection is given to end by itself (each stage) before it is cut."""
STABLE_AFTER: Final = 30.0
"""A connection that lasted this long resets the backoff; shorter ones keep growing it."""

type SessionProvider = Callable[[bool], Awaitable[str]]
"""Returns a SAYMON session id; called with ``True`` when Comet rejected the previous one."""


class EventGate(Protocol):
    """Decides which events are worth parsing and delivering (a rate limit, see ratelimit.py)."""

    def admit_raw(self, topic: str, args: tuple[Any, ...]) -> bool | None:
        """As an event arrives: deliver it, drop it, or ``None``: decide once it is parsed.

        Runs in the read loop: it must be quick and must not raise.
        """

    def admit_parsed(self, event: CometEvent) -> bool:
        """A parsed event the raw check could not decide: whether to deliver it."""


# Process-wide class attribute: it guards python-engineio *servers* against floods, and a
# Home Assistant process runs none; for our client it decides whether bursts are lost.
if _compat.POLLING.active:
    Payload.max_decode_packets = max(Payload.max_decode_packets, MAX_POLLING_PACKETS)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One Comet subscription, re-emitted on every connect.

    ``key`` selects the per-entity form (``add-filtered-topic``, used by ``stat``);
    ``filter`` is the optional third argument of ``add-topics`` (``incidents`` filters).
    """

    topic: str
    key: str | None = None
    filter: str | None = None

    @classmethod
    def incidents(cls, incident_filter: Mapping[str, Any] | str | None = None) -> Subscription:
        """Subscribe to ``incidents``, optionally with SAYMON's filter object."""
        if isinstance(incident_filter, Mapping):
            incident_filter = json.dumps(incident_filter, separators=(",", ":"))
        return cls(TOPIC_INCIDENTS, filter=incident_filter)

    @classmethod
    def stat(cls, entity_type: EntityType, entity_id: str) -> Subscription:
        """Subscribe to monitoring data of one object or link."""
        return cls(TOPIC_STAT, key=f"{int(entity_type)}:{entity_id}")

    def add_args(self) -> tuple[str, ...]:
        """Arguments of the emit that subscribes."""
        if self.key is not None:
            return ("add-filtered-topic", self.topic, self.key)
        if self.filter is not None:
            return ("add-topics", self.topic, self.filter)
        return ("add-topics", self.topic)

    def remove_args(self) -> tuple[str, ...]:
        """Arguments of the emit that unsubscribes."""
        if self.key is not None:
            return ("remove-filtered-topic", self.topic, self.key)
        return ("remove-topics", self.topic)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: ``min(cap, base * 2**n)`` scaled by 50-100 %."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next attempt after ``failures`` failures in a row."""
        if failures <= 0:
            return 0.0
        ceiling = min(self.cap, self.base * (1 << min(failures - 1, 30)))
        jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        return ceiling * jitter


@dataclass(slots=True)
class CometStats:
    """Counters for diagnostics; monotonic timestamps from ``time.monotonic()``."""

    connects: int = 0
    connect_failures: int = 0
    sessions_rejected: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)
    dropped: int = 0
    queue_peak: int = 0
    held_peak: int = 0
    """Most frames held raw at once while the queue was full (see ``max_held_bytes``)."""
    reading_paused: int = 0
    """Times the hold was full and reading from Comet paused (TCP backpressure)."""
    last_event: float | None = None
    connected_since: float | None = None

    @property
    def reconnects(self) -> int:
        """Connections after the first one."""
        return max(self.connects - 1, 0)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly copy for diagnostics."""
        now = time.monotonic()
        return {
            "connects": self.connects,
            "reconnects": self.reconnects,
            "connect_failures": self.connect_failures,
            "sessions_rejected": self.sessions_rejected,
            "disconnects": dict(self.disconnects),
            "events": dict(self.events),
            "malformed": dict(self.malformed),
            "dropped": self.dropped,
            "queue_peak": self.queue_peak,
            "held_peak": self.held_peak,
            "reading_paused": self.reading_paused,
            "last_event_age": None if self.last_event is None else round(now - self.last_event, 3),
            "connected_for": None
            if self.connected_since is None
            else round(now - self.connected_since, 3),
        }


class _FastJson:
    """The JSON "module" handed to python-socketio: orjson, with python-engineio's as fallback.

    python-socketio installs it on its packet classes, i.e. for the whole process. What orjson
    refuses (``NaN``, a dict with non-string keys to send) goes to python-engineio's module as
    before. One difference remains: orjson reads integers beyond 64 bits as floats (SAYMON
    sends none: its ids are strings, its timestamps milliseconds).
    """

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        """Parse JSON text."""
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return engineio_json.loads(text, **kwargs)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        """Serialise to compact JSON text."""
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return str(engineio_json.dumps(obj, **kwargs))


_ENGINEIO_HANDLED: Final = frozenset(
    {engineio_packet.MESSAGE, engineio_packet.PING, engineio_packet.CLOSE, engineio_packet.NOOP}
)
"""Engine.IO packet types a connected client acts on; others are counted and dropped."""

_RESERVED_EVENTS: Final = frozenset(
    {"connect", "connect_error", "disconnect", "__disconnect_final"}
)
"""python-socketio's own event names: never taken by the fast path."""


class _InlineEngineIOClient(engineio.AsyncClient):  # type: ignore[misc]
    """Engine.IO client that hands each message to Socket.IO without a task per message.

    python-engineio starts one asyncio task per incoming message and never waits for them:
    thousands pile up during a burst. Our Socket.IO handler only enqueues, so running it
    inline in the read loop is cheap, keeps order and gives TCP backpressure for free.
    """

    fast_event: Callable[..., None] | None = None
    """Receives plain events directly (see :meth:`fast_path`)."""
    socketio_client: socketio.AsyncClient | None = None
    comet: CometClient | None = None
    """The client whose queue may pause this read loop (see ``read_ahead``)."""

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event != "message":
            return await super()._trigger_event(event, *args, **kwargs)
        data = args[0] if args else None
        comet = self.comet
        if comet is not None and comet.holding:
            await comet.hold(self, data)
        elif not self.fast_path(data):
            await self.deliver_to_library(data)
        return None

    async def deliver_to_library(self, data: Any) -> None:
        """Hand a message that is not a plain event to python-socketio."""
        # A Socket.IO DISCONNECT ("1...") makes python-socketio call eio.disconnect(), which
        # waits for the read loop to end: inside the read loop that raises "Task cannot
        # await on itself". That one packet keeps python-engineio's task per message.
        run_async = isinstance(data, str) and data[:1] == "1"
        await super()._trigger_event("message", data, run_async=run_async)

    async def _receive_packet(self, pkt: Any) -> None:
        if pkt.packet_type in _ENGINEIO_HANDLED:
            await super()._receive_packet(pkt)
            return
        # python-engineio logs an error for every other type (an OPEN, PONG or UPGRADE in the
        # middle of a stream): a broken or hostile server could flood the log with them.
        sio = self.socketio_client
        if isinstance(sio, _SocketIOClient):
            sio.reject(f"unexpected Engine.IO packet type {pkt.packet_type!r}")

    def fast_path(self, data: Any) -> bool:
        """Deliver a plain event without python-socketio; ``False``: not one, use the library.

        A Socket.IO EVENT for the default namespace without an acknowledgement id is the text
        ``2["name",...]``. Decoding it here skips python-socketio's packet object, handler
        lookup and coroutine check: about a fifth of the CPU per event in a storm. Anything
        else (connects, errors, acks, binary events and their attachments, other namespaces,
        reserved names, JSON that orjson refuses) goes the library's way.
        """
        fast = self.fast_event
        sio = self.socketio_client
        if (
            fast is None
            or sio is None
            or not isinstance(data, str)
            or not data.startswith("2[")
            or getattr(sio, "_binary_packet", None) is not None  # attachments pending
        ):
            return False
        try:
            decoded = orjson.loads(data[1:])
        except orjson.JSONDecodeError:
            return False
        if not (
            isinstance(decoded, list)
            and decoded
            and isinstance(decoded[0], str)
            and decoded[0] not in _RESERVED_EVENTS
        ):
            return False
        fast(*decoded)
        return True


class _SocketIOClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio client as the library ships it, with the attributes the Comet client sets.

    Used as it is only when a private method that :class:`_HookedSocketIOClient` overrides
    changed in the installed release (see ``_compat.py``): python-engineio then runs a task per
    message and broken frames are the library's to log, but every event still arrives in order.
    """

    on_rejected: Callable[[str], None] | None = None
    received: Callable[[], int] = staticmethod(lambda: 0)
    """How many events reached the client so far (to tell a packet that delivered none)."""

    def reject(self, reason: str) -> None:
        """Report a dropped frame."""
        _call(self.on_rejected, reason)


class _HookedSocketIOClient(_SocketIOClient):
    """python-socketio client using :class:`_InlineEngineIOClient`; drops broken frames.

    python-socketio raises on a frame that is not valid Socket.IO (python-engineio then logs
    an error with a traceback per frame), and a binary packet announcing attachments makes it
    take every following message as one of them (up to 10^9): the event stream would stall
    without a sign. Such frames are dropped and reported to ``on_rejected`` instead; a binary
    packet may announce at most :data:`MAX_ATTACHMENTS` (SAYMON sends none).
    """

    _binary_packet: Any  # python-socketio's packet waiting for its attachments

    def _engineio_client_class(self) -> type[engineio.AsyncClient]:
        return _InlineEngineIOClient

    async def _handle_eio_message(self, data: Any) -> None:
        # Every text frame ends a pending binary packet, a CONNECT or CONNECT_ERROR too (else
        # the binary frame after it would be swallowed as an attachment, uncounted).
        if self._binary_packet is not None and not isinstance(data, bytes):
            self._binary_packet = None  # attachments are binary: the announcement was bogus
            self.reject("binary packet without its attachments")
        if self.connected and isinstance(data, str) and data[:1] in ("0", "4"):
            # A CONNECT or CONNECT_ERROR once connected: python-socketio would mark itself
            # disconnected while the transport lives on, and then never report the real
            # disconnect (the supervisor would wait forever).
            self.reject("connect packet on an established connection")
            return
        before = self.received()
        try:
            await super()._handle_eio_message(data)
        except Exception as err:  # noqa: BLE001 - whatever a broken frame makes it raise
            self._binary_packet = None
            self.reject(f"undecodable Socket.IO packet ({type(err).__name__})")
            return
        pending = self._binary_packet
        if pending is not None and pending.attachment_count > MAX_ATTACHMENTS:
            self._binary_packet = None
            self.reject(f"binary packet announcing {pending.attachment_count} attachments")
        elif (
            self.connected
            and pending is None
            and self.received() == before
            and not (isinstance(data, str) and data[:1] == "1")  # DISCONNECT: handled
        ):
            self.reject("a packet that carries no event (acknowledgement, other namespace)")

    async def _handle_event(self, namespace: Any, id: Any, data: Any) -> None:  # noqa: A002
        # Only events of the default namespace named by a string reach the handlers: a server
        # event called "disconnect" would otherwise run python-socketio's disconnect handler.
        if (namespace or "/") != "/" or not (
            isinstance(data, list)
            and data
            and isinstance(data[0], str)
            and data[0] not in _RESERVED_EVENTS
        ):
            return  # counted by _handle_eio_message: no event was delivered
        await super()._handle_event(namespace, id, data)


_SOCKET_CLASS: Final[type[_SocketIOClient]] = (
    _HookedSocketIOClient if _compat.COMET.active else _SocketIOClient
)
"""The client class :class:`CometClient` connects with: hooked unless a hook check failed."""


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
        one) events are dropped, counted and reported through ``on_events_lost``.

        ``gate`` sees each event as it arrives, before it is queued and parsed, and may drop
        it (a rate limit: a storm of events nobody will see must not cost a parse each, nor
        fill the queue); dropped events count as received.
        """
        self._http = http_session
        self.endpoint = endpoint
        self._session_provider = session_provider
        self._subscriptions: dict[Subscription, None] = dict.fromkeys(subscriptions)
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._on_events_lost = on_events_lost
        self._on_auth_failed = on_auth_failed
        self._gate = gate
        self._ssl = ssl_context
        self._transports = list(transports)
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self._queue_size = queue_size
        self._read_ahead = read_ahead
        self._max_held_bytes = max_held_bytes
        self._held: deque[tuple[_InlineEngineIOClient, Any]] = deque()
        self._held_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._queue: deque[tuple[str, tuple[Any, ...], bool]] = deque()
        """Events to parse: topic, arguments, and whether the gate must check them once parsed."""
        self._queue_ready = asyncio.Event()
        self._overflowing = False
        self._warned: set[str] = set()
        self._received = 0
        self._sio: _SocketIOClient | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnect_reason = ""
        self._connect_error: Any = None
        self._secrets: tuple[str, ...] = ()
        self.stats = CometStats()

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

    def start(self) -> None:
        """Start the supervisor and the event worker (idempotent)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work(), name="saymon-comet-worker")
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
        self._forget_secrets()
        self._queue.clear()
        self._held.clear()
        self._held_bytes = 0
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
            self._forget_secrets()

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
            "SAYMON Comet at %s (failure %d): %s", self.address, failures, self._redact(message)
        )

    def _announce_connected(self) -> None:
        self.stats.connects += 1
        self.stats.connected_since = time.monotonic()
        _call(self._on_connected)

    def _mark_disconnected(self) -> None:
        self.stats.connected_since = None

    # -- one connection ---------------------------------------------------------------------

    def _new_socket(self) -> _SocketIOClient:
        sio = _SOCKET_CLASS(
            reconnection=False,
            handle_sigint=False,
            logger=_SOCKETIO_LOGGER,
            engineio_logger=_ENGINEIO_LOGGER,
            http_session=self._http,
            ssl_verify=self._ssl is not False,
            request_timeout=self._connect_timeout,
            websocket_extra_options=self._websocket_options(),
            json=_FastJson,
        )
        sio.on_rejected = self._frame_rejected
        sio.received = lambda: self._received
        sio.on("connect_error", self._handle_connect_error)
        sio.on("disconnect", self._handle_disconnect)
        sio.on("*", self._handle_message)
        sio.eio.fast_event = self._handle_message
        sio.eio.comet = self
        sio.eio.socketio_client = sio
        return sio

    def _websocket_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"max_msg_size": MAX_MESSAGE_BYTES}
        if isinstance(self._ssl, ssl.SSLContext):
            options["ssl"] = self._ssl
        return options

    async def _connect(self, session_id: str) -> None:
        """Open one connection and send every subscription, or raise a typed error."""
        await self._close_socket()
        self._forget_secrets()
        self._secrets = _secret_forms(session_id)
        _REDACTOR.remember(self._secrets)
        self._disconnected.clear()
        self._disconnect_reason = ""
        self._connect_error = None
        sio = self._sio = self._new_socket()
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
        text = self._redact("; ".join(dict.fromkeys(str(e) for e in chain if str(e))))
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
            detail = self._redact(str(self._connect_error))
            return SaymonCometError(f"Comet at {self.address} refused the connection: {detail}")
        return SaymonCometError(f"cannot connect to Comet at {self.address}: {text}")

    @property
    def backlog(self) -> int:
        """Events and frames received but not yet handed on (a storm in progress)."""
        return len(self._queue) + len(self._held)

    @property
    def holding(self) -> bool:
        """Whether messages are held raw: the queue is full, or earlier ones are still held."""
        return bool(self._held) or len(self._queue) >= self._read_ahead

    async def hold(self, reader: _InlineEngineIOClient, data: Any) -> None:
        """Keep ``reader``'s message raw, after those held before it, for the worker.

        Every message is held while :attr:`holding` (order is kept) until the worker has
        handed them all on. A full hold pauses the read loop until half of it is handled or
        the connection is closed.
        """
        held = self._held
        size = len(data) if isinstance(data, str | bytes) else 0
        if held and self._held_bytes + size > self._max_held_bytes:
            self.stats.reading_paused += 1
            while (
                self._held_bytes > self._max_held_bytes // 2
                and self._sio is not None
                and self._sio.eio is reader
            ):
                self._room.clear()
                await self._room.wait()
        held.append((reader, data))
        self._held_bytes += size
        self.stats.held_peak = max(self.stats.held_peak, len(held))
        self._queue_ready.set()

    async def _release_held(self, limit: int) -> None:
        """Hand up to ``limit`` held messages on, in order, while the queue has room."""
        held, queue = self._held, self._queue
        current = self._sio.eio if self._sio is not None else None
        while held and limit > 0 and len(queue) < self._read_ahead:
            limit -= 1
            reader, data = held.popleft()
            self._held_bytes -= len(data) if isinstance(data, str | bytes) else 0
            # A closed connection's plain events still count; its control packets do not.
            if not reader.fast_path(data) and reader is current:
                await reader.deliver_to_library(data)
        if not held:
            self._held_bytes = 0

    async def _close_socket(self) -> None:
        self._room.set()  # a read loop waiting for room must see the connection go
        sio, self._sio = self._sio, None
        if sio is None:
            return
        try:
            # Over polling python-engineio waits for the pending long-poll to be answered, which
            # a server may hold until its next ping (25 s): the close is bounded, the rest cut.
            async with asyncio.timeout(CLOSE_GRACE):
                await sio.shutdown()
        except TimeoutError:
            _LOGGER.debug("Comet did not end the connection in time; dropping it")
        except (SaymonError, socketio.exceptions.SocketIOError, aiohttp.ClientError, OSError):
            _LOGGER.debug("Error while closing a Comet connection", exc_info=True)
        # python-engineio 4.15: after an Engine.IO CLOSE over polling, _reset() empties the
        # send queue before the write loop reads its stop marker, leaving that loop waiting
        # for max(pingInterval, pingTimeout) + 5 s. Hand it the marker and let both loops end.
        eio = sio.eio
        loops = [
            task
            for task in (
                getattr(eio, "read_loop_task", None),
                getattr(eio, "write_loop_task", None),
            )
            if isinstance(task, asyncio.Task) and not task.done()
        ]
        if loops:
            with contextlib.suppress(Exception):
                eio.queue.put_nowait(None)
            _, pending = await asyncio.wait(loops, timeout=CLOSE_GRACE)
            for task in pending:  # a long-poll still pending: aiohttp drops its request
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        ws = getattr(eio, "ws", None)
        if isinstance(ws, aiohttp.ClientWebSocketResponse) and not ws.closed:
            # python-engineio never closes a WebSocket that died by a ping timeout: its
            # response (socket and aiohttp's timeout timer) would stay open until garbage
            # collection, which logs "Unclosed response". A close that gets no answer within
            # WS_CLOSE_GRACE is cancelled, and aiohttp then drops the connection.
            with contextlib.suppress(TimeoutError, aiohttp.ClientError, OSError):
                async with asyncio.timeout(WS_CLOSE_GRACE):
                    await ws.close()

    async def _emit(self, args: tuple[str, ...]) -> None:
        sio = self._sio
        if sio is None or not self.connected:
            return  # sent on the next connect
        try:
            await _send(sio, args)
        except socketio.exceptions.SocketIOError:
            _LOGGER.debug("Comet emit failed; it is repeated on reconnect")

    def _forget_secrets(self) -> None:
        _REDACTOR.forget(self._secrets)
        self._secrets = ()

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- Socket.IO handlers (run inline in the read loop: enqueue only) -------------------

    def _frame_rejected(self, reason: str) -> None:
        self.stats.malformed[MALFORMED_FRAME] += 1
        if MALFORMED_FRAME not in self._warned:
            self._warned.add(MALFORMED_FRAME)
            _LOGGER.warning("Dropped a malformed frame from SAYMON Comet: %s", reason)
        else:
            _LOGGER.debug("Dropped a malformed frame from SAYMON Comet: %s", reason)

    def _handle_connect_error(self, data: Any = None) -> None:
        self._connect_error = data

    def _handle_disconnect(self, reason: str = "unknown") -> None:
        self._disconnect_reason = str(reason)
        self._disconnected.set()

    def _handle_message(self, topic: str, *args: Any) -> None:
        self._received += 1
        recheck = False
        if self._gate is not None:
            verdict = self._gate.admit_raw(topic, args)
            if verdict is False:
                self.stats.events[topic] += 1
                return
            recheck = verdict is None
        queue = self._queue
        if len(queue) >= self._queue_size:
            self.stats.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                _LOGGER.warning(
                    "SAYMON event queue is full (%d events); dropping events until it drains",
                    self._queue_size,
                )
            return
        queue.append((topic, args, recheck))
        self.stats.queue_peak = max(self.stats.queue_peak, len(queue))
        self._queue_ready.set()

    # -- the worker -------------------------------------------------------------------------

    async def _work(self) -> None:
        """Parse and deliver queued events in order, yielding to the loop between batches."""
        queue, held = self._queue, self._held
        while True:
            if not queue and not held:
                self._queue_ready.clear()
                if self._overflowing:
                    self._overflowing = False
                    _call(self._on_events_lost, self.stats.dropped)
                await self._queue_ready.wait()
            if held:
                await self._release_held(_BATCH)
            deadline = time.monotonic() + _BATCH_SECONDS
            for _ in range(min(len(queue), _BATCH)):
                topic, args, recheck = queue.popleft()
                self._deliver(topic, args, recheck)
                if (now := time.monotonic()) > deadline:
                    break
            else:
                now = time.monotonic()
            self.stats.last_event = now
            if not self._room.is_set() and self._held_bytes <= self._max_held_bytes // 2:
                self._room.set()
            await asyncio.sleep(0)

    def _deliver(self, topic: str, args: tuple[Any, ...], recheck: bool) -> None:
        stats = self.stats
        try:
            event = parse_event(topic, args)
        except SaymonProtocolError as err:
            stats.malformed[topic] += 1
            if topic not in self._warned:
                self._warned.add(topic)
                _LOGGER.warning("Dropped a malformed SAYMON %r event: %s", topic, err)
            else:
                _LOGGER.debug("Dropped a malformed SAYMON %r event: %s", topic, err)
            return
        stats.events[topic] += 1
        if recheck and self._gate is not None and not self._gate.admit_parsed(event):
            return
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                _LOGGER.exception("Error handling a SAYMON %r event", topic)


class _CometTLSError(SaymonCometError, SaymonTLSError):
    """Comet's TLS certificate was rejected."""


_HANDLED_LIBRARY_ERRORS: Final = frozenset({"packet queue is empty, aborting"})
"""python-engineio errors that only announce a disconnect this client handles (its write loop
gives up when it had nothing to send for ``max(pingInterval, pingTimeout) + 5`` s, e.g. while a
burst delays the server's ping); shown at debug level like the library's other chatter."""


class _RedactingFilter(logging.Filter):
    """Removes live session ids from python-socketio/-engineio log records.

    python-engineio logs the connection URL, session id included, at INFO level; with debug
    logging on in Home Assistant that would put a secret in the log.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: Counter[str] = Counter()
        """Secrets in use, counted: clients of one process may share a session id."""

    def remember(self, secrets: Iterable[str]) -> None:
        """Redact ``secrets`` until :meth:`forget` was called as often for them."""
        self.secrets.update(secret for secret in secrets if secret)

    def forget(self, secrets: Iterable[str]) -> None:
        """Stop redacting ``secrets`` once no client uses them any more."""
        self.secrets.subtract(secret for secret in secrets if secret)
        for secret in [secret for secret, uses in self.secrets.items() if uses <= 0]:
            del self.secrets[secret]

    def filter(self, record: logging.LogRecord) -> bool:
        # python-socketio/-engineio warn about things this client handles itself (e.g. "Server
        # sent close packet" on every clean disconnect); their chatter shows at debug level only,
        # the caller reports outages through the connected/disconnected callbacks.
        level = record.levelno
        if level >= logging.ERROR and record.msg in _HANDLED_LIBRARY_ERRORS:
            level = logging.INFO
        if level < logging.ERROR and not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


_REDACTOR = _RedactingFilter()
_SOCKETIO_LOGGER = logging.getLogger(f"{__name__}.socketio")
_ENGINEIO_LOGGER = logging.getLogger(f"{__name__}.engineio")
for _logger in (_SOCKETIO_LOGGER, _ENGINEIO_LOGGER):
    _logger.addFilter(_REDACTOR)


def _secret_forms(session_id: str) -> tuple[str, ...]:
    """Return the session id as given and as URL-encoded, so every spelling can be redacted."""
    return tuple({session_id, quote(session_id, safe=""), urlencode({"": session_id})[1:]})
