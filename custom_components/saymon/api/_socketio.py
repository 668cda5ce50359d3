"""Every override of python-socketio's and python-engineio's private API, in one place.

Re-verify this module on every python-socketio or python-engineio upgrade: nothing else in the
integration touches the libraries' private methods or attributes. ``_compat.py`` checks at
import that each overridden method still looks as it did when the override was written
(:data:`_compat.COMET_HOOKS`, :data:`_compat.POLLING`); if one changed, :data:`SOCKET_CLASS` is
the library's own client and the polling packet limit stays as shipped (slower, still correct).

What the overrides buy, each measured against Comet (``shared/socketio-notes.md``):

* inline dispatch: python-engineio's task per incoming message is replaced by a call into the
  client's bounded queue (order kept, TCP backpressure, no task pile-up in a storm), and frames
  are held raw while that queue is full (:class:`Holder`);
* a fast path for plain events that skips python-socketio's packet objects;
* frame guards: frames that are not valid Socket.IO are dropped and reported instead of logged
  with a traceback each or stalling the stream;
* orjson for packet JSON (:class:`FastJson`), python-engineio's module as fallback;
* polling responses of up to :data:`MAX_POLLING_PACKETS` packets;
* a close that really ends python-engineio's loops and WebSocket (:func:`close`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import logging
from typing import Any, Final, Protocol

import aiohttp
import engineio
from engineio import json as engineio_json, packet as engineio_packet
from engineio.payload import Payload
import orjson
import socketio
import socketio.exceptions

from . import _compat
from .errors import SaymonError

_LOGGER = logging.getLogger(__name__)

MAX_POLLING_PACKETS: Final = 100_000
"""Packets accepted in one polling response (python-engineio's default of 16 loses bursts)."""

MAX_ATTACHMENTS: Final = 16
"""Binary attachments a Socket.IO packet may announce; more and the packet is dropped."""

CLOSE_GRACE: Final = 2.0
"""Seconds a closing connection is given to end by itself (each stage) before it is cut."""
WS_CLOSE_GRACE: Final = 1.0
"""Seconds a dead WebSocket is given to answer our close before it is dropped."""

# Process-wide class attribute: it guards python-engineio *servers* against floods, and a
# Home Assistant process runs none; for our client it decides whether bursts are lost.
if _compat.POLLING.active:
    Payload.max_decode_packets = max(Payload.max_decode_packets, MAX_POLLING_PACKETS)


class FastJson:
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


class Holder(Protocol):
    """Where the read loop parks messages while the client's queue is full (``inbound.py``)."""

    @property
    def holding(self) -> bool:
        """Whether messages are held now (this one must queue up behind them)."""

    async def hold(self, reader: InlineEngineIOClient, data: Any) -> None:
        """Keep ``data`` raw for later; may wait (pausing ``reader``'s read loop)."""


class InlineEngineIOClient(engineio.AsyncClient):  # type: ignore[misc]
    """Engine.IO client that hands each message to Socket.IO without a task per message.

    python-engineio starts one asyncio task per incoming message and never waits for them:
    thousands pile up during a burst. Our Socket.IO handler only enqueues, so running it
    inline in the read loop is cheap, keeps order and gives TCP backpressure for free.
    """

    fast_event: Callable[..., None] | None = None
    """Receives plain events directly (see :meth:`fast_path`)."""
    socketio_client: socketio.AsyncClient | None = None
    holder: Holder | None = None
    """The queue that may hold messages and pause this read loop (see ``read_ahead``)."""

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event != "message":
            return await super()._trigger_event(event, *args, **kwargs)
        data = args[0] if args else None
        holder = self.holder
        if holder is not None and holder.holding:
            await holder.hold(self, data)
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
        if isinstance(sio, SocketIOClient):
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


class SocketIOClient(socketio.AsyncClient):  # type: ignore[misc]
    """python-socketio client as the library ships it, with the attributes the Comet client sets.

    Used as it is only when a private method that :class:`HookedSocketIOClient` overrides
    changed in the installed release (see ``_compat.py``): python-engineio then runs a task per
    message and broken frames are the library's to log, but every event still arrives in order.
    """

    on_rejected: Callable[[str], None] | None = None
    """Told about every dropped frame; runs in the read loop, so it must not raise."""
    received: Callable[[], int] = staticmethod(lambda: 0)
    """How many events reached the client so far (to tell a packet that delivered none)."""

    def route(
        self,
        on_event: Callable[..., None],
        holder: Holder,
        *,
        on_rejected: Callable[[str], None],
        received: Callable[[], int],
    ) -> None:
        """Send every event to ``on_event``, through the fast path where it is installed.

        ``holder`` may hold messages while its queue is full; ``on_rejected`` hears of dropped
        frames; ``received`` counts the events ``on_event`` got so far.
        """
        self.on_rejected = on_rejected
        self.received = received
        self.on("*", on_event)
        eio = self.eio
        eio.fast_event = on_event
        eio.holder = holder
        eio.socketio_client = self

    def reject(self, reason: str) -> None:
        """Report a dropped frame."""
        if self.on_rejected is not None:
            self.on_rejected(reason)


class HookedSocketIOClient(SocketIOClient):
    """python-socketio client using :class:`InlineEngineIOClient`; drops broken frames.

    python-socketio raises on a frame that is not valid Socket.IO (python-engineio then logs
    an error with a traceback per frame), and a binary packet announcing attachments makes it
    take every following message as one of them (up to 10^9): the event stream would stall
    without a sign. Such frames are dropped and reported to ``on_rejected`` instead; a binary
    packet may announce at most :data:`MAX_ATTACHMENTS` (SAYMON sends none).
    """

    _binary_packet: Any  # python-socketio's packet waiting for its attachments

    def _engineio_client_class(self) -> type[engineio.AsyncClient]:
        return InlineEngineIOClient

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


SOCKET_CLASS: Final[type[SocketIOClient]] = (
    HookedSocketIOClient if _compat.COMET.active else SocketIOClient
)
"""The client class the Comet client connects with: hooked unless a hook check failed."""


async def close(sio: socketio.AsyncClient) -> None:
    """Shut ``sio`` down and see that python-engineio's loops and WebSocket really end.

    Each stage gets :data:`CLOSE_GRACE`, then what is left is cut.
    """
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
