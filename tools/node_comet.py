"""Start, stop and steer the Node.js socket.io 4.5.0 server in ``tools/node_server``.

SAYMON's push server ("Comet") is a Node socket.io 4.5.0 server. Testing our
client against a Python re-implementation of the protocol would only test it
against our own reading of the protocol, so the wire-compatibility tests run
the real library instead and reproduce the situations from
``/work/shared/socketio-notes.md`` (rejected sessions, slow session lookup,
server-side disconnects, TCP drops, late pings, bursts, big events) through
the server's HTTP control API.

Everything here is asynchronous: the Home Assistant test harness runs tests
inside its event loop, and a blocking ``subprocess.run`` or ``requests`` call
would freeze the very client under test.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from pathlib import Path
import shutil
import signal
import time
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, cast

import aiohttp

_LOGGER = logging.getLogger(__name__)

NODE_SERVER_DIR = Path(__file__).resolve().parent / "node_server"
SERVER_JS = NODE_SERVER_DIR / "server.js"

DisconnectMode = Literal["socket", "engine", "destroy", "reset"]


class NodeCometError(RuntimeError):
    """The Node server could not be started or rejected a control request."""


class CometClient(TypedDict):
    """One connected Socket.IO client as the server sees it (``GET /clients``)."""

    id: str
    engine_id: str
    sessionId: str  # the server's JSON key, named like Comet's query parameter
    topics: list[str]
    filters: dict[str, Any]
    transport: str
    upgrades: list[str]
    connected_ms: int


class EmitResult(TypedDict):
    """Outcome of ``POST /emit`` once the last event was handed to Engine.IO."""

    emitted: int
    recipients: int
    elapsed_ms: float
    rate: int | None


def _find_node() -> str:
    """Return the ``node`` executable, failing with a hint instead of a bare ENOENT."""
    node = shutil.which("node")
    if node is None:
        raise NodeCometError(
            "Node.js is required for the wire-compatibility tests, but `node` is not on PATH "
            "(install Node.js >= 18, e.g. Debian's `nodejs` package)"
        )
    if not (NODE_SERVER_DIR / "node_modules" / "socket.io").is_dir():
        raise NodeCometError(
            f"{NODE_SERVER_DIR / 'node_modules'} is missing socket.io; run scripts/setup "
            "(it runs `npm ci` there)"
        )
    return node


class NodeCometServer:
    """A socket.io 4.5.0 server process that behaves like SAYMON Comet.

    Create it, ``await start(...)``, and always ``await stop()`` (or use
    ``async with``) so that no Node process, pipe or aiohttp session outlives
    the test.
    """

    def __init__(self, *, startup_timeout: float = 15.0, verbose: bool = False) -> None:
        """Configure the helper; nothing is started until :meth:`start`.

        ``verbose`` makes server.js log connections to stderr, which is
        forwarded to this module's logger at DEBUG level (session ids are
        never logged).
        """
        self._startup_timeout = startup_timeout
        self._verbose = verbose
        self._proc: asyncio.subprocess.Process | None = None
        self._drains: list[asyncio.Task[None]] = []
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=50)
        self._http: aiohttp.ClientSession | None = None
        self._port: int | None = None
        self._control_port: int | None = None
        self._frozen = False
        # Remembered so that restart() brings back an equivalent server.
        self._sessions: list[str] = []
        self._ping_interval_ms: int | None = None
        self._ping_timeout_ms: int | None = None
        self._accept_delay_ms = 0
        self._max_http_buffer_size: int | None = None
        self._session_check_url: str | None = None

    async def __aenter__(self) -> Self:
        """Allow ``async with NodeCometServer() as server`` (start separately)."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server whatever happened in the block."""
        await self.stop()

    # ------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The Socket.IO port; stays the same across :meth:`restart`."""
        if self._port is None:
            raise NodeCometError("the server has not been started")
        return self._port

    @property
    def control_port(self) -> int:
        """The control API port; stays the same across :meth:`restart`."""
        if self._control_port is None:
            raise NodeCometError("the server has not been started")
        return self._control_port

    @property
    def url(self) -> str:
        """Base URL for a Socket.IO client (add ``/?sessionId=...`` yourself)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def control_url(self) -> str:
        """Base URL of the HTTP control API."""
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def running(self) -> bool:
        """Whether the Node process is alive (it may be frozen)."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def stderr_tail(self) -> list[str]:
        """The last lines server.js wrote to stderr, for assertion messages."""
        return list(self._stderr_tail)

    # ------------------------------------------------------------ lifecycle

    async def start(
        self,
        *,
        sessions: list[str],
        ping_interval_ms: int | None = None,
        ping_timeout_ms: int | None = None,
        accept_delay_ms: int = 0,
        max_http_buffer_size: int | None = None,
        session_check_url: str | None = None,
    ) -> None:
        """Launch server.js on free loopback ports and wait until it listens.

        ``None`` for the ping settings keeps socket.io's defaults (25 s / 20 s),
        which is what Comet presumably runs with. ``session_check_url`` (e.g. the
        simulator's ``.../node/api/users/current``) also accepts every session id
        that URL answers with 200 for, given in the ``X-Session-Id`` header.
        """
        if self.running:
            raise NodeCometError("the server is already running")
        self._sessions = list(sessions)
        self._ping_interval_ms = ping_interval_ms
        self._ping_timeout_ms = ping_timeout_ms
        self._accept_delay_ms = accept_delay_ms
        self._max_http_buffer_size = max_http_buffer_size
        self._session_check_url = session_check_url
        if self._http is None:
            # force_close: a keep-alive connection would go stale on every
            # kill/restart and fail the next control call.
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                raise_for_status=False,
            )
        try:
            await self._launch(port=0, control_port=0)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL), reap it, release everything.

        SIGTERM makes server.js call ``io.close()`` - a graceful Comet
        shutdown. Safe to call more than once and after a failed start.
        """
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if self._frozen:
                proc.send_signal(signal.SIGCONT)
                self._frozen = False
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        await self._reap()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def kill(self) -> None:
        """SIGKILL the server, like a Comet crash: no close frames, no CLOSE packets.

        The ports are remembered; :meth:`restart` (or :meth:`relaunch`)
        brings the server back on the same ones.
        """
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        self._frozen = False
        await self._reap()

    async def relaunch(self) -> None:
        """Start the server again on the same ports after :meth:`kill`.

        The session list and accept delay last set through the control API
        are carried over, so a reconnecting client meets the same rules.
        """
        if self.running:
            raise NodeCometError("the server is still running; kill() it first")
        if self._http is None:
            raise NodeCometError("the server has not been started")
        await self._launch(port=self.port, control_port=self.control_port)

    async def restart(self, *, downtime: float = 0.0) -> None:
        """Kill the server with SIGKILL and start it again on the same port.

        ``downtime`` seconds pass in between, to let clients notice the outage
        and run their reconnect backoff.
        """
        await self.kill()
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self.relaunch()

    async def freeze(self) -> None:
        """SIGSTOP the server: connections stay open but nothing is answered.

        This reproduces a hung Comet, which clients only detect through the
        Engine.IO heartbeat.
        """
        self._require_proc().send_signal(signal.SIGSTOP)
        self._frozen = True

    async def thaw(self) -> None:
        """SIGCONT a server stopped by :meth:`freeze`."""
        self._require_proc().send_signal(signal.SIGCONT)
        self._frozen = False

    async def shutdown(self) -> None:
        """Ask the server to exit through ``POST /shutdown`` and wait for it.

        Unlike :meth:`stop` this keeps the control session, so the object can
        be inspected afterwards; :meth:`stop` is still needed at the end.
        """
        proc = self._require_proc()
        await self._call("POST", "/shutdown")
        async with asyncio.timeout(5):
            await proc.wait()
        await self._reap()

    # ------------------------------------------------------------ control API

    async def clients(self) -> list[CometClient]:
        """Return the connected clients: id, decoded sessionId, topics (rooms), transport."""
        return cast(list[CometClient], await self._call("GET", "/clients"))

    async def stats(self) -> dict[str, Any]:
        """Counters since start: handshakes, accepted, rejected, disconnects, reasons."""
        return cast(dict[str, Any], await self._call("GET", "/stats"))

    async def set_sessions(self, valid: list[str]) -> None:
        """Replace the set of session ids the server accepts.

        Existing connections are not affected, like a real session expiry
        (Comet only checks the session at connect time, as far as we know).
        """
        await self._call("POST", "/sessions", {"valid": list(valid)})
        self._sessions = list(valid)

    async def set_accept_delay(self, ms: int) -> None:
        """Change how long the server takes to accept a namespace connection.

        Reproduces a slow session lookup on later (re)connects without a
        restart.
        """
        await self._call("POST", "/accept-delay", {"ms": ms})
        self._accept_delay_ms = ms

    async def emit(
        self,
        event: str,
        payload: Any,
        count: int = 1,
        room: str | None = None,
        seq: bool = False,
    ) -> EmitResult:
        """Emit ``count`` events to a room as fast as the server can.

        ``room`` defaults to the event name (the topic clients subscribe to
        with ``add-topics``); ``"*"`` means every connected client, and a
        filtered subscription ``add-filtered-topic("stat", "1:<id>")`` is the
        room ``"stat:1:<id>"``. With ``seq=True`` each payload is numbered
        0..count-1: an object payload gets a ``seq`` key, anything else
        becomes ``{"seq": i, "payload": payload}``. Returns once the last
        event was handed to Engine.IO, not when clients have received it.
        No timeout of its own (a burst of a million events takes a while);
        wrap the call in ``asyncio.timeout`` if needed.
        """
        body: dict[str, Any] = {"event": event, "payload": payload, "count": count, "seq": seq}
        if room is not None:
            body["room"] = room
        return cast(EmitResult, await self._call("POST", "/emit", body, http_timeout=None))

    async def replay(
        self,
        file: Path,
        *,
        rate: float | None = None,
        stamp: bool = False,
        times: bool = False,
        room: str | None = None,
        flow: bool = False,
    ) -> dict[str, Any]:
        """Emit the recorded events of ``file`` (one ``[event, payload]`` JSON array per line).

        Each goes to the room named after its event (``stat`` to the room of its entity, as
        ``add-filtered-topic`` joins it; or to ``room``), in order, as fast as the
        server can or paced at ``rate`` events/s. ``stamp`` adds ``emitted_at`` (epoch ms) to
        object payloads; ``times`` returns ``emit_times``, every event's emit time in epoch
        ms. Also returns ``emitted``, ``recipients`` per room, ``elapsed_ms``, ``rate``,
        ``started_ms`` and ``finished_ms``; it answers once the last event was emitted.

        ``flow``: every subscribed socket gets the whole storm as fast as it takes it: a
        socket with more than 2,000 packets or 1 MiB unsent is skipped until it drained
        (``rate``, ``stamp`` and ``times`` do not apply). ``recipients`` then maps each
        socket id to ``{"emitted", "done_ms"}``.
        """
        body: dict[str, Any] = {
            "file": str(file),
            "rate": rate,
            "stamp": stamp,
            "times": times,
            "flow": flow,
        }
        if room is not None:
            body["room"] = room
        return cast(dict[str, Any], await self._call("POST", "/replay", body, http_timeout=None))

    async def server_event(
        self,
        topic: str,
        *,
        shape: str = "documented",
        count: int = 1,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Emit SAYMON server events of ``topic`` to its room, in one of the shared shapes.

        ``shape``: ``documented``, ``plausible`` or ``surprising`` (``server_event_shapes.json``,
        shared with the simulator); ``values`` override placeholders. Returns ``emitted``,
        ``recipients`` and, for up to ten events, the ``payloads`` sent.
        """
        body = {"topic": topic, "shape": shape, "count": count, "values": values or {}}
        return cast(dict[str, Any], await self._call("POST", "/server-event", body))

    async def start_probes(
        self,
        entities: list[dict[str, Any]],
        *,
        period_ms: int = 60_000,
        expiry_ms: int | None = None,
        seed: int = 1,
    ) -> dict[str, Any]:
        """Run a probe per entity (``{"type": 1|2, "id", "kind"}``) every ``period_ms``.

        Each stat goes to the sockets that did ``add-filtered-topic("stat", "<type>:<id>")``;
        ``kind`` is one of the simulator's probes (``ping``, ``httpRequest``, ``cpu``,
        ``memory``, ``fileSystem``, ``snmp``). Replaces the probes running before.
        """
        body = {"entities": entities, "period_ms": period_ms, "expiry_ms": expiry_ms, "seed": seed}
        return cast(dict[str, Any], await self._call("POST", "/stat/start", body))

    async def stop_probes(self) -> dict[str, Any]:
        """Stop the probes; returns how many stats they sent and how many counter resets."""
        return cast(dict[str, Any], await self._call("POST", "/stat/stop", {}))

    async def last_stats(self) -> dict[str, Any]:
        """The latest stat of every probe by ``"<type>:<id>"`` (under ``last``), and counts."""
        return cast(dict[str, Any], await self._call("GET", "/stat/last"))

    async def emit_big(self, event: str, nbytes: int, room: str | None = None) -> dict[str, Any]:
        """Emit one event ``{"size": nbytes, "data": "xxx..."}`` with ``nbytes`` of data."""
        body: dict[str, Any] = {"event": event, "bytes": nbytes}
        if room is not None:
            body["room"] = room
        return cast(dict[str, Any], await self._call("POST", "/emit-big", body))

    async def disconnect(self, mode: DisconnectMode, client_id: str | None = None) -> int:
        """Drop every client (or one Socket.IO id) and return how many.

        * ``socket``: ``socket.disconnect(true)`` - a Socket.IO DISCONNECT;
          python-socketio reports ``server disconnect`` and does not reconnect.
        * ``engine``: ``socket.conn.close()`` - Engine.IO CLOSE over polling
          (``server disconnect``, no reconnect), a plain WebSocket close over
          websocket (``transport error``, reconnects).
        * ``destroy``: the TCP connection is closed under the protocol (FIN);
          ``transport error``, reconnects.
        * ``reset``: the same with an RST, like a network failure.
        """
        body: dict[str, Any] = {"mode": mode}
        if client_id is not None:
            body["id"] = client_id
        result = cast(dict[str, Any], await self._call("POST", "/disconnect", body))
        return int(result["disconnected"])

    async def stall(self, ms: int) -> dict[str, Any]:
        """Busy-block the server's event loop for ``ms``; returns when it is over.

        Pings, timers and I/O all stop meanwhile, which is how a late PING is
        produced. Run it as a task if the test must act during the stall.
        """
        return cast(
            dict[str, Any],
            await self._call("POST", "/stall", {"ms": ms}, http_timeout=ms / 1000 + 30),
        )

    # ------------------------------------------------------------ internals

    def _require_proc(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            raise NodeCometError("the server is not running")
        return self._proc

    def _command(self, port: int, control_port: int) -> list[str]:
        args = [
            str(SERVER_JS),
            "--port",
            str(port),
            "--control-port",
            str(control_port),
            # JSON rather than --sessions a,b: test session ids may contain commas.
            "--sessions-json",
            json.dumps(self._sessions),
            "--accept-delay",
            str(self._accept_delay_ms),
            # Without this a server orphaned by a crashed test run would live on.
            "--exit-on-stdin-close",
        ]
        if self._ping_interval_ms is not None:
            args += ["--ping-interval", str(self._ping_interval_ms)]
        if self._ping_timeout_ms is not None:
            args += ["--ping-timeout", str(self._ping_timeout_ms)]
        if self._max_http_buffer_size is not None:
            args += ["--max-http-buffer-size", str(self._max_http_buffer_size)]
        if self._session_check_url is not None:
            args += ["--session-check-url", self._session_check_url]
        if self._verbose:
            args.append("--verbose")
        return args

    async def _launch(self, *, port: int, control_port: int) -> None:
        """Spawn server.js and read its port line; retry briefly if a fixed port is busy.

        After a SIGKILL the kernel may need a moment before the old
        listening socket is gone, which only matters for fixed ports.
        """
        node = _find_node()
        deadline = time.monotonic() + self._startup_timeout
        while True:
            self._stderr_tail.clear()
            proc = await asyncio.create_subprocess_exec(
                node,
                *self._command(port, control_port),
                cwd=NODE_SERVER_DIR,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            self._proc = proc
            assert proc.stdout is not None
            assert proc.stderr is not None
            self._drains = [asyncio.create_task(self._drain_stderr(proc.stderr))]
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                    line = await proc.stdout.readline()
            except TimeoutError:
                line = b""
            ports = self._parse_ports(line)
            if ports is not None:
                self._port, self._control_port = ports
                self._drains.append(asyncio.create_task(self._drain_stdout(proc.stdout)))
                return
            await self.kill()
            stderr = "\n".join(self._stderr_tail)
            if "EADDRINUSE" in stderr and port and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                continue
            raise NodeCometError(
                f"server.js did not report its ports within {self._startup_timeout} s "
                f"(exit code {proc.returncode}); stderr:\n{stderr}"
            )

    @staticmethod
    def _parse_ports(line: bytes) -> tuple[int, int] | None:
        if not line:
            return None
        try:
            data = json.loads(line)
            return int(data["port"]), int(data["control_port"])
        except (ValueError, KeyError, TypeError):
            return None

    async def _drain_stdout(self, stream: asyncio.StreamReader) -> None:
        """Keep reading so a chatty process can never block on a full pipe."""
        while line := await stream.readline():
            _LOGGER.debug("server.js stdout: %s", line.decode(errors="replace").rstrip())

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        """Forward stderr to logging and keep a tail for error messages."""
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr_tail.append(text)
            _LOGGER.debug("server.js: %s", text)

    async def _reap(self) -> None:
        """Wait for the process and its pipe readers so nothing is left behind."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        await proc.wait()
        try:
            async with asyncio.timeout(5):
                await asyncio.gather(*self._drains, return_exceptions=True)
        except TimeoutError:
            for task in self._drains:
                task.cancel()
            await asyncio.gather(*self._drains, return_exceptions=True)
        self._drains = []
        self._proc = None

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        http_timeout: float | None = 30.0,
    ) -> Any:
        """Call one control route; a non-200 answer raises with the server's message."""
        if self._http is None or self._control_port is None:
            raise NodeCometError("the server has not been started")
        async with self._http.request(
            method,
            f"{self.control_url}{path}",
            json=body,
            timeout=aiohttp.ClientTimeout(total=http_timeout),
        ) as resp:
            text = await resp.text()
            try:
                data = json.loads(text)
            except ValueError:
                data = {"error": text}
            if resp.status != 200:
                error = data.get("error") if isinstance(data, dict) else data
                raise NodeCometError(f"{method} {path} failed with {resp.status}: {error}")
            return data
