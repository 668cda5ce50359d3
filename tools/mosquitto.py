"""Real MQTT for tests: a private Mosquitto process, a slow TCP proxy and a recording subscriber.

The MQTT client under test is checked against the broker people actually run, not a mock:
message ids, acknowledgements, Last Wills and retained messages are the broker's business.

* :class:`MosquittoBroker` runs ``mosquitto`` on a free loopback port with a config written
  into a temporary directory (optional password file, TLS certificate, persistence), and can
  stop and restart it on the same port.
* :class:`SlowProxy` sits between a client and the broker. It delays everything the broker
  sends (PUBACKs among it) so acknowledgements lag far behind publishes, and it can cut all
  connections without an MQTT DISCONNECT (the broker then publishes the Last Will) and refuse
  new ones until resumed.
* :class:`Subscriber` is a paho client in its own thread that records every message in order.

Everything is asynchronous or runs in threads that are joined on close: the Home Assistant
test harness fails a test that leaves threads or tasks behind, and a blocking call here would
freeze the event loop the code under test runs in.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import secrets
import shutil
import signal
import socket
import ssl
import threading
import time
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from tools.simulator.tls import CertFiles

LOCALHOST = "127.0.0.1"


class MosquittoError(RuntimeError):
    """Mosquitto is missing or did not start."""


def find_mosquitto() -> str:
    """Return the ``mosquitto`` binary (Debian installs it in ``/usr/sbin``, often not on PATH)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise MosquittoError(
            "the MQTT tests need Mosquitto: `mosquitto` is neither on PATH nor in /usr/sbin "
            "(run scripts/setup, or install Debian's `mosquitto` package)"
        )
    return found


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _pbkdf2_line(username: str, password: str) -> str:
    """A password-file line in Mosquitto's own ``$7$`` (PBKDF2-SHA512) format."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101, 64)
    return (
        f"{username}:$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}\n"
    )


def _write_private(path: Path, text: str | None) -> None:
    """Write (or just restrict) a file only its owner may read.

    Mosquitto warns about readable password and key files; newer versions refuse them.
    """
    if text is not None:
        path.write_text(text)
    path.chmod(0o600)


class MosquittoBroker:
    """A private ``mosquitto`` on ``127.0.0.1``; the port stays the same across restarts."""

    host = LOCALHOST

    def __init__(self, directory: Path, port: int | None = None) -> None:
        """Nothing runs before :meth:`start`; ``directory`` holds config, log and data."""
        self.directory = directory
        self.port = port or free_port()
        self._process: asyncio.subprocess.Process | None = None
        self._config: Path | None = None

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.returncode is None

    @property
    def log_file(self) -> Path:
        """Mosquitto's own log (connections, refusals, errors)."""
        return self.directory / "mosquitto.log"

    def log(self) -> str:
        """The broker's log so far."""
        return self.log_file.read_text() if self.log_file.exists() else ""

    async def start(
        self,
        *,
        password: tuple[str, str] | None = None,
        tls: CertFiles | None = None,
        persistent: bool = False,
        max_inflight: int | None = None,
    ) -> None:
        """Write the config and start the broker; returns once the port accepts connections.

        ``password`` = (user, password) turns anonymous access off; ``tls`` makes the
        listener TLS-only; ``persistent`` keeps sessions and queued messages across
        :meth:`restart` (saved on the graceful stop). ``max_inflight`` sets Mosquitto's
        window of unacknowledged QoS>=1 messages *to* each subscriber (default 20, which
        makes a Python subscriber round-trip bound); it is also the Receive Maximum that
        Mosquitto announces to MQTT 5 clients.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        password_file = None
        if password is not None:
            password_file = self.directory / "passwords"
            await self._write_password_file(password_file, *password)
        self._config = self._write_config(
            password_file, tls, persistent=persistent, max_inflight=max_inflight
        )
        await self._spawn()

    async def _write_password_file(self, path: Path, username: str, password: str) -> None:
        tool = shutil.which("mosquitto_passwd") or shutil.which(
            "mosquitto_passwd", path="/usr/bin:/usr/sbin"
        )
        if tool is None:  # same format as the tool writes; Mosquitto 2.x reads it
            _write_private(path, _pbkdf2_line(username, password))
        else:
            process = await asyncio.create_subprocess_exec(
                tool,
                "-c",
                "-b",
                str(path),
                username,
                password,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await process.communicate()
            if process.returncode != 0:
                raise MosquittoError(f"mosquitto_passwd failed: {output.decode(errors='replace')}")
            _write_private(path, None)

    def _write_config(
        self,
        password_file: Path | None,
        tls: CertFiles | None,
        *,
        persistent: bool,
        max_inflight: int | None,
    ) -> Path:
        lines = [
            f"listener {self.port} {LOCALHOST}",
            *([f"certfile {tls.cert}", f"keyfile {tls.key}"] if tls is not None else []),
            f"log_dest file {self.log_file}",
            "log_timestamp_format %H:%M:%S",
            # A subscriber that lags behind a 70k-message burst must not lose messages here.
            "max_queued_messages 0",
        ]
        if max_inflight is not None:
            lines.append(f"max_inflight_messages {max_inflight}")
        if password_file is None:
            lines.append("allow_anonymous true")
        else:
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        if persistent:
            lines += [
                "persistence true",
                f"persistence_location {self.directory}/",
                "persistence_file mosquitto.db",
            ]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            # As root Mosquitto would switch to user `mosquitto`, which may not exist (chroot)
            # or may not read our temporary files.
            lines.append("user root")
        if tls is not None:
            _write_private(tls.key, None)
        config = self.directory / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    async def _spawn(self) -> None:
        if self._config is None:
            raise MosquittoError("start() the broker before restarting it")
        self._process = await asyncio.create_subprocess_exec(
            find_mosquitto(),
            "-c",
            str(self._config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        deadline = time.monotonic() + 10.0
        while True:
            if self._process.returncode is not None or time.monotonic() > deadline:
                await self.stop(hard=True)
                stderr = b""
                if self._process.stderr is not None:
                    stderr = await self._process.stderr.read()
                raise MosquittoError(
                    f"mosquitto did not start on port {self.port}: "
                    f"{stderr.decode(errors='replace')}\n{self.log()}"
                )
            try:
                _, writer = await asyncio.open_connection(LOCALHOST, self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def stop(self, *, hard: bool = False) -> None:
        """Stop the broker: SIGTERM (graceful, saves persistence) or SIGKILL with ``hard``."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or continue (SIGCONT) the broker: connections stay open, unanswered.

        A frozen broker reads nothing and acknowledges nothing, like one stalled on a slow
        disk; a publisher's queue then fills while its connection looks alive.
        """
        process = self._process
        if process is None or process.returncode is not None:
            raise MosquittoError("the broker is not running")
        process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    async def restart(self, downtime: float = 0.0, *, hard: bool = False) -> None:
        """Stop, stay down for ``downtime`` s, start again with the same config and port."""
        await self.stop(hard=hard)
        await asyncio.sleep(downtime)
        await self._spawn()

    async def __aenter__(self) -> Self:
        """Start with the defaults (anonymous, plain TCP, no persistence)."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the broker."""
        await self.stop()


class SlowProxy:
    """A TCP proxy on ``127.0.0.1`` that delays the broker-to-client direction by ``delay`` s.

    Each chunk read from the broker is written to the client ``delay`` seconds later (order
    kept, no bandwidth limit), so a client sees its acknowledgements ``delay`` late and keeps
    about ``delay x its publish rate`` messages unacknowledged. The client-to-broker
    direction is not delayed. ``delay`` may be changed at any time; it applies to chunks
    read afterwards.
    """

    host = LOCALHOST

    def __init__(self, upstream_port: int, *, delay: float = 0.0) -> None:
        """Nothing listens before :meth:`start`."""
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (on the same port again after :meth:`cut`)."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, LOCALHOST, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def resume(self) -> None:
        """Accept connections again after :meth:`cut`."""
        await self.start()

    async def cut(self, *, refuse: bool = True) -> None:
        """Drop every connection at once (no MQTT DISCONNECT); with ``refuse`` stop listening."""
        if refuse and self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()  # also drops chunks still waiting for their delay
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if refuse and self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        """Drop everything and stop listening."""
        await self.cut(refuse=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.accepted += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(LOCALHOST, self.upstream_port)
            self._writers.add(upstream)
            await asyncio.gather(
                self._copy(reader, upstream, delayed=False),
                self._copy(up_reader, writer, delayed=True),
            )
        except OSError:
            pass
        finally:
            for side in (writer, upstream):
                if side is not None:
                    side.transport.abort()
                    self._writers.discard(side)
            self._tasks.discard(task)

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> None:
        """Copy until EOF (``delayed``: each chunk ``self.delay`` s after it was read)."""
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def write() -> None:
            while (item := await chunks.get()) is not None:
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        writing = asyncio.create_task(write())
        try:
            while data := await reader.read(65536):
                chunks.put_nowait((loop.time() + (self.delay if delayed else 0.0), data))
            chunks.put_nowait(None)
            await writing
        except OSError:
            pass
        finally:
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await writing
            writer.transport.abort()  # one side ended: end the other one too


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the subscriber got it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class Subscriber:
    """A paho MQTT 5 client in its own thread recording every message matching ``topic_filter``.

    It subscribes at QoS 1 with *retain as published*, so ``retain`` shows the flag the
    publisher set (MQTT 3.1.1 would clear it on live messages). ``persistent`` keeps the
    session (and messages queued for it) across disconnects and broker restarts with
    persistence; paho reconnects by itself within a second or two.
    """

    def __init__(
        self,
        port: int,
        topic_filter: str = "#",
        *,
        client_id: str | None = None,
        persistent: bool = False,
        auth: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Nothing connects before :meth:`start`."""
        self.port = port
        self.topic_filter = topic_filter
        self.persistent = persistent
        self.messages: list[Received] = []
        self.connects = 0
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        self._client.reconnect_delay_set(1, 1)
        if auth is not None:
            self._client.username_pw_set(*auth)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._started = False

    async def start(self, timeout: float = 10.0) -> None:
        """Connect in paho's thread and wait until the subscription is acknowledged."""
        properties = None
        if self.persistent:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 3600
        self._client.connect_async(
            LOCALHOST, self.port, clean_start=not self.persistent, properties=properties
        )
        self._client.loop_start()
        self._started = True
        await self._wait(self._subscribed.is_set, timeout, "the subscription")

    async def close(self) -> None:
        """Disconnect and join paho's thread."""
        if not self._started:
            return
        self._started = False
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish from this client (e.g. a birth message); paho sends it from its thread."""
        self._client.publish(topic, payload, qos, retain)

    def payloads(self, topic: str) -> list[bytes]:
        """Every payload received on ``topic``, in order."""
        return [message.payload for message in self.messages if message.topic == topic]

    def retained(self, topic: str) -> bytes | None:
        """The payload of the last message on ``topic`` that carried the retain flag."""
        for message in reversed(self.messages):
            if message.topic == topic and message.retain:
                return message.payload
        return None

    def last(self, topic: str) -> Received | None:
        """The last message on ``topic``."""
        for message in reversed(self.messages):
            if message.topic == topic:
                return message
        return None

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Poll ``predicate`` until true; fail with ``what`` and a summary after ``timeout``."""
        await self._wait(predicate, timeout, what)

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or predicate}; "
                    f"{len(self.messages)} messages received"
                )
            await asyncio.sleep(0.01)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            return
        self.connects += 1
        if flags.session_present:
            self._subscribed.set()
        else:
            options = SubscribeOptions(qos=1, retainAsPublished=True)
            client.subscribe(self.topic_filter, options=options)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.append(
            Received(message.topic, bytes(message.payload), message.qos, bool(message.retain))
        )

    async def __aenter__(self) -> Self:
        """Connect and subscribe."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Disconnect and join the thread."""
        await self.close()
