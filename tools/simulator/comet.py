"""SAYMON's Comet server: Socket.IO on its own port, sessionId check, topics, event routing.

Routing follows SAYMON's documented protocol: `add-topics`/`remove-topics` with the event name
(plus an optional filter for `incidents`), `add-filtered-topic`/`remove-filtered-topic` with
`("stat", "<entityType>:<entityId>")`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
import json
import logging
import ssl
from typing import Any, Final
from urllib.parse import parse_qs

from aiohttp import web
from engineio import packet as eio_packet
from socketio.exceptions import ConnectionRefusedError as SioConnectionRefusedError

from .core import SimulatorCore
from .events import EVENT_INCIDENT_COUNT, EVENT_INCIDENTS, TOPIC_STAT, Event
from .listener import Listener
from .sio_server import TrackingAsyncServer

_LOGGER = logging.getLogger(__name__)

# What SAYMON's socket.io 4.5.0 server sends in CONNECT_ERROR when `io.use()` rejects the
# sessionId with `next(err)` (err.message + err.data); python-socketio builds the same
# `{"message": ..., "data": ...}` from ConnectionRefusedError(message, data).
REJECT_MESSAGE: Final = "Invalid sessionId"
REJECT_DATA: Final = {"code": 401, "reason": "invalid-session"}


@dataclass(slots=True)
class SocketInfo:
    """A connected Comet socket and its subscriptions."""

    sid: str
    session_id: str
    login: str
    topics: set[str] = field(default_factory=set)
    filtered_topics: set[tuple[str, str]] = field(default_factory=set)
    incident_filter: Any = None

    def copy(self) -> SocketInfo:
        """Return a snapshot, so assertions are not affected by later changes."""
        return SocketInfo(
            self.sid,
            self.session_id,
            self.login,
            set(self.topics),
            set(self.filtered_topics),
            self.incident_filter,
        )

    def to_json(self) -> dict[str, Any]:
        """GET /control/sockets entry."""
        return {
            "sid": self.sid,
            "session_id": self.session_id,
            "login": self.login,
            "topics": sorted(self.topics),
            "filtered_topics": [list(item) for item in sorted(self.filtered_topics)],
            "incident_filter": self.incident_filter,
        }


class _RawFrame(eio_packet.Packet):  # type: ignore[misc]
    """A WebSocket frame sent exactly as given, Engine.IO type character and all (wire fuzzing)."""

    def __init__(self, frame: str | bytes) -> None:
        super().__init__(eio_packet.MESSAGE, data="<raw frame>")
        self.frame = frame

    def encode(self, b64: bool = False) -> str | bytes:
        """Return the frame unchanged (python-engineio writes `encode()` to the WebSocket)."""
        return self.frame


def _topic_names(value: Any) -> list[str]:
    """Topic argument as a list: SAYMON documents one string; an array is accepted too."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _parse_filter(value: Any) -> Any:
    """Parse the `incidents` subscription filter: an object, or the JSON string of one."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class CometServer:
    """Socket.IO server (python-socketio, aiohttp mode) bound to its own port."""

    def __init__(
        self,
        core: SimulatorCore,
        *,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
    ) -> None:
        """Prepare (not start) the server; `port` 0 picks a free port on first start."""
        self._core = core
        self._listener = Listener(port, ssl_context=ssl_context)
        self._ping = (ping_interval, ping_timeout)
        self._sio: TrackingAsyncServer | None = None
        self._sockets: dict[str, SocketInfo] = {}

    @property
    def listener(self) -> Listener:
        """The underlying listener (port, URL)."""
        return self._listener

    @property
    def running(self) -> bool:
        """Whether Comet accepts connections."""
        return self._sio is not None

    async def start(self) -> None:
        """Start a fresh Socket.IO server (no sockets survive a restart, as in SAYMON)."""
        if self._sio is not None:
            return
        sio = TrackingAsyncServer(
            async_mode="aiohttp",
            ping_interval=self._ping[0],
            ping_timeout=self._ping[1],
            cors_allowed_origins="*",
            logger=False,
            engineio_logger=False,
        )
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        sio.on("add-topics", self._on_add_topics)
        sio.on("remove-topics", self._on_remove_topics)
        sio.on("add-filtered-topic", self._on_add_filtered_topic)
        sio.on("remove-filtered-topic", self._on_remove_filtered_topic)
        app = web.Application()
        sio.attach(app)
        await self._listener.start(app)
        self._sio = sio

    async def stop(self) -> None:
        """Stop like a crashed server: connections are cut without a Socket.IO DISCONNECT."""
        sio, self._sio = self._sio, None
        if sio is None:
            return
        await sio.shutdown()
        await self._listener.stop()
        await sio.cancel_background_tasks()
        self._sockets.clear()

    # --- socket.io handlers --------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        session_id = (query.get("sessionId") or [""])[0]
        if self._core.faults.accept_delay > 0:
            await asyncio.sleep(self._core.faults.accept_delay)
        session = self._core.accounts.valid(session_id)
        if session is None:
            self._core.counters.comet_rejected += 1
            raise SioConnectionRefusedError(REJECT_MESSAGE, dict(REJECT_DATA))
        self._core.counters.comet_accepted += 1
        self._sockets[sid] = SocketInfo(sid, session_id, session.user.login)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self._sockets.pop(sid, None) is not None:
            self._core.counters.comet_disconnected += 1

    async def _on_add_topics(
        self, sid: str, topic: Any = None, options: Any = None, *_: Any
    ) -> None:
        info = self._sockets.get(sid)
        if info is None:
            return
        for name in _topic_names(topic):
            info.topics.add(name)
            if name == EVENT_INCIDENTS:
                info.incident_filter = _parse_filter(options)

    async def _on_remove_topics(self, sid: str, topic: Any = None, *_: Any) -> None:
        info = self._sockets.get(sid)
        if info is not None:
            info.topics.difference_update(_topic_names(topic))

    async def _on_add_filtered_topic(
        self, sid: str, topic: Any = None, key: Any = None, *_: Any
    ) -> None:
        info = self._sockets.get(sid)
        if info is not None and isinstance(topic, str) and isinstance(key, str):
            info.filtered_topics.add((topic, key))

    async def _on_remove_filtered_topic(
        self, sid: str, topic: Any = None, key: Any = None, *_: Any
    ) -> None:
        info = self._sockets.get(sid)
        if info is not None and isinstance(topic, str) and isinstance(key, str):
            info.filtered_topics.discard((topic, key))

    # --- publishing ----------------------------------------------------------------------

    def _payload_for(self, info: SocketInfo, event: Event) -> tuple[bool, Any]:
        """Whether this socket gets the event, and in which form."""
        if event.name == TOPIC_STAT:
            return (TOPIC_STAT, event.filter_key or "") in info.filtered_topics, event.payload
        if event.name not in info.topics:
            return False, None
        if (
            event.name == EVENT_INCIDENT_COUNT
            and self._core.faults.incident_count_shape == "number"
        ):
            return True, event.payload["count"]
        if event.name == EVENT_INCIDENTS and event.entity is not None:
            parent = (
                info.incident_filter.get("parentFilter")
                if isinstance(info.incident_filter, dict)
                else None
            )
            if parent and not self._core.model.is_under(event.entity, str(parent)):
                payload = event.payload
                return True, {
                    "changeType": payload["changeType"],
                    "filtered": True,
                    "payload": {"id": payload["payload"]["id"]},
                }
        return True, event.payload

    async def publish(self, events: Sequence[Event]) -> None:
        """Send each event to the sockets subscribed to it."""
        sio = self._sio
        if sio is None:
            return
        for event in events:
            for info in list(self._sockets.values()):
                wanted, payload = self._payload_for(info, event)
                if wanted:
                    await sio.emit(event.name, payload, to=info.sid)

    async def send_raw(self, event: str, payload: Any, *, everyone: bool = False) -> int:
        """Emit anything (even malformed) as `event` to its subscribers, or to every socket."""
        sio = self._sio
        if sio is None:
            return 0
        targets = [info.sid for info in self._sockets.values() if everyone or event in info.topics]
        for sid in targets:
            await sio.emit(event, payload, to=sid)
        return len(targets)

    async def send_frames(self, frames: Sequence[str | bytes]) -> int:
        """Write raw WebSocket frames (text or binary, not validated) to every socket, in order.

        The frames bypass Socket.IO and Engine.IO encoding, so they may be anything a broken
        or hostile server could send: `42["state-change",{...}]`, truncated JSON, unknown
        packet types, binary garbage. Returns the number of sockets written to.
        """
        sio = self._sio
        if sio is None:
            return 0
        targets = list(self._sockets)
        for sid in targets:
            eio_sid = sio.manager.eio_sid_from_sid(sid, "/")
            if eio_sid is None:
                continue
            for frame in frames:
                await sio.eio.send_packet(eio_sid, _RawFrame(frame))
        return len(targets)

    async def disconnect(self, session_ids: set[str] | None = None) -> int:
        """Server-side `socket.disconnect()` of every socket (or those of the given sessions)."""
        sio = self._sio
        if sio is None:
            return 0
        targets = [
            info.sid
            for info in self._sockets.values()
            if session_ids is None or info.session_id in session_ids
        ]
        for sid in targets:
            await sio.disconnect(sid)
        return len(targets)

    def sockets(self) -> list[SocketInfo]:
        """Snapshots of the connected sockets and their topics."""
        return [info.copy() for info in self._sockets.values()]
