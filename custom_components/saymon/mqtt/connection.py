"""One paho-mqtt connection, driven without paho's network thread: make, open, drive, close.

The sender thread (``sender.py``) and the options flow's connection test (``probe.py``) both
connect through these functions, in a thread of their own, never in the event loop (they block).
What was measured (``shared/mqtt-notes.md``) shapes them:

* paho is faster without its background network thread, so the caller drives paho's network
  I/O itself: :func:`run_io` waits on the socket (and an optional wake-up socket) with one
  ``select`` and then lets paho read, write and do its keepalive bookkeeping.
* paho reads every packet with at least three ``recv()`` calls; :class:`BufferedClient`
  reads in chunks instead. It overrides paho's private ``_sock_recv``, so ``api/_compat.py``
  checks that method at import and, if a paho release changed it, the plain client is used
  (:data:`CLIENT_CLASS`): more system calls, the same messages.
* Nagle's algorithm is turned off, the TLS handshake is bounded, and errors are classified
  into the keys the options flow shows, never with a credential in their text.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import select
import socket
import ssl
import time
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ..api._compat import HookSpec, check, register

ERROR_CANNOT_CONNECT: Final = "cannot_connect"
ERROR_INVALID_AUTH: Final = "invalid_auth"
ERROR_TLS: Final = "tls_error"

PROTOCOLS: Final = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}

CONNECT_TIMEOUT: Final = 10.0
"""Bound on the TCP connect, the TLS handshake and the wait for CONNACK of one attempt."""

_READ_CHUNK: Final = 65_536
"""Bytes read from the broker's socket at once (see :class:`BufferedClient`)."""

_AUTH_REASONS: Final = frozenset({0x86, 0x87, 0x8C})
"""CONNACK reasons meaning the credentials were refused (bad user/password, not authorised,
bad authentication method); paho maps the MQTT 3.1.1 return codes 4 and 5 onto the first two."""


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how to connect; ``password`` (and the bulky ``ca_cert``) stay out of ``repr``."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    verify: bool = True
    """Verify the broker's certificate and host name (only with ``tls``)."""
    ca_cert: str | None = field(default=None, repr=False)
    """PEM text of a CA to trust in addition to the system's (only with ``tls`` and ``verify``)."""
    client_id: str = ""
    """``""`` picks a random ``saymon-<hex>`` id per :class:`DedicatedBroker`."""
    protocol: str = "3.1.1"
    """``"3.1.1"`` or ``"5"``."""
    keepalive: int = 60

    def __post_init__(self) -> None:
        """Reject values paho would only reject later, inside the sender thread."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unsupported MQTT protocol {self.protocol!r}; use '3.1.1' or '5'")
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid MQTT port {self.port}")
        if self.keepalive <= 0:
            raise ValueError("keepalive must be positive")


class BufferedClient(mqtt.Client):
    """paho client that reads the socket in chunks instead of a few bytes at a time.

    paho reads every packet with at least three ``recv()`` calls (the command byte, the
    remaining length byte by byte, then the rest): three system calls per PUBACK, the largest
    single cost of a QoS 1 publisher after paho's own objects. Reading up to
    :data:`_READ_CHUNK` bytes at once and handing paho the bytes it asks for from that buffer
    keeps paho's parsing unchanged; :func:`run_io` lets paho read while bytes are buffered (the
    socket itself may have nothing more to say).
    """

    _rbuf = b""
    _rpos = 0

    @property
    def buffered(self) -> bool:
        """Whether received bytes wait in the buffer for paho."""
        return self._rpos < len(self._rbuf)

    def _sock_recv(self, bufsize: int) -> bytes:
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            # paho's own call: its exceptions (BlockingIOError for "nothing now", b"" for EOF)
            # and TLS handling stay as paho expects them.
            buf = super()._sock_recv(max(bufsize, _READ_CHUNK))
            if len(buf) <= bufsize:
                self._rbuf, self._rpos = b"", 0
                return buf
            pos = 0
            self._rbuf = buf
        end = pos + bufsize
        self._rpos = end
        return buf[pos:end]


READ_HOOK_SPECS: Final = (
    HookSpec(mqtt.Client, "_sock_recv", ("self", "bufsize"), is_async=False),
    # paho reads every packet through _sock_recv; the buffer only works while it still does.
    HookSpec(mqtt.Client, "_packet_read", ("self",), is_async=False, uses=("_sock_recv",)),
)
READ_HOOKS: Final = register(
    check(
        "mqtt",
        "paho-mqtt",
        "the MQTT client lets paho read the socket by itself (more system calls, same messages)",
        READ_HOOK_SPECS,
    )
)
"""Whether :class:`BufferedClient` may override paho's private socket read (checked at import)."""

CLIENT_CLASS: Final[type[mqtt.Client]] = BufferedClient if READ_HOOKS.active else mqtt.Client
"""The paho client class every connection uses: buffered unless the hook check failed."""


def make_client(
    config: BrokerConfig,
    client_id: str,
    context: ssl.SSLContext | None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> mqtt.Client:
    """A paho client for one connection attempt, driven by our own ``select`` loop."""
    protocol = PROTOCOLS[config.protocol]
    client = CLIENT_CLASS(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if protocol == mqtt.MQTTv5 else True,
        protocol=protocol,
        # With True, paho would reconnect (blocking) from inside loop_read() on some refusals.
        reconnect_on_failure=False,
    )
    client.max_inflight_messages_set(0)  # our own limit applies; paho's queues and rescans
    client.connect_timeout = connect_timeout
    if config.username is not None or config.password is not None:
        client.username_pw_set(config.username or "", config.password)
    if context is not None:
        client.tls_set_context(context)
    return client


def open_connection(client: mqtt.Client, config: BrokerConfig) -> None:
    """Blocking TCP connect (+ TLS handshake) and CONNECT; raises ``OSError``/``ValueError``."""
    if config.protocol == "5":
        client.connect(config.host, config.port, config.keepalive, clean_start=True)
    else:
        client.connect(config.host, config.port, config.keepalive)
    setsockopt = getattr(client.socket(), "setsockopt", None)
    if setsockopt is not None:
        # paho leaves Nagle's algorithm on: a message written while the previous one is not
        # yet acknowledged by TCP would wait for that ACK (up to 40 ms with delayed ACKs).
        with contextlib.suppress(OSError):
            setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def ssl_context(config: BrokerConfig, handshake_timeout: float) -> ssl.SSLContext:
    """Client TLS context; blocking (reads the system CA store), so never in the event loop."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    if config.verify:
        context.load_default_certs()
        if config.ca_cert:
            context.load_verify_locations(cadata=config.ca_cert)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _bounded_handshake(handshake_timeout)
    return context


def _bounded_handshake(timeout: float) -> type[ssl.SSLSocket]:
    """An ``SSLSocket`` whose handshake gives up after ``timeout`` s and then closes itself.

    paho runs the handshake with the *keepalive* as socket timeout (60 s by default), which
    would also hold up ``async_stop`` (it joins the thread) against a silent server; and
    when the handshake fails (certificate rejected), paho drops the socket unclosed.
    """

    class _SSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            previous = self.gettimeout()
            self.settimeout(timeout)
            try:
                super().do_handshake(block)
            except BaseException:
                self.close()
                raise
            self.settimeout(previous)

    return _SSLSocket


def run_io(client: mqtt.Client, timeout: float, wake: socket.socket | None) -> None:
    """Wait up to ``timeout`` for the socket (or ``wake``), then let paho read/write/ping."""
    sock = client.socket()
    if sock is None:
        return
    pending = (sock.pending() if isinstance(sock, ssl.SSLSocket) else 0) or (
        isinstance(client, BufferedClient) and client.buffered
    )
    rlist: list[Any] = [sock] if wake is None else [sock, wake]
    wlist: list[Any] = [sock] if client.want_write() else []
    readable, writable, _ = select.select(rlist, wlist, [], 0.0 if pending else timeout)
    if wake is not None and wake in readable:
        with contextlib.suppress(OSError):
            wake.recv(4096)
    if pending or sock in readable:
        client.loop_read()
    if writable and client.socket() is not None:
        client.loop_write()
    if client.socket() is not None:
        client.loop_misc()


def disconnect(client: mqtt.Client) -> None:
    """Send DISCONNECT (so the broker discards the Last Will) and wait briefly for it to go."""
    client.disconnect()
    deadline = time.monotonic() + 1.0
    while client.socket() is not None and client.want_write() and time.monotonic() < deadline:
        run_io(client, 0.05, None)


def abort(client: mqtt.Client) -> None:
    """Cut the connection under paho's feet; its next read sees EOF and reports the loss."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # type: ignore[attr-defined]


def close(client: mqtt.Client) -> None:
    """Close the client's socket without DISCONNECT (the broker then publishes the Will)."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def classify(err: BaseException) -> tuple[str, str]:
    """Error key and a short text (never containing credentials) for a failed attempt."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return ERROR_TLS, f"certificate rejected: {err.verify_message or err.reason}"
    if isinstance(err, ssl.SSLError):
        return ERROR_TLS, f"TLS failed: {err.reason or err.__class__.__name__}"
    if isinstance(err, socket.gaierror):
        return ERROR_CANNOT_CONNECT, f"cannot resolve host: {err.strerror}"
    if isinstance(err, TimeoutError):
        return ERROR_CANNOT_CONNECT, "timed out"
    if isinstance(err, OSError):
        return ERROR_CANNOT_CONNECT, err.strerror or err.__class__.__name__
    return ERROR_CANNOT_CONNECT, str(err)


def connack_error(reason: ReasonCode) -> str:
    """Error key of a refused CONNACK: ``invalid_auth`` for refused credentials."""
    return ERROR_INVALID_AUTH if reason.value in _AUTH_REASONS else ERROR_CANNOT_CONNECT
