"""Normalisation of the addresses a user types for SAYMON's web server and its Comet server.

People paste whatever their browser shows: ``saymon.example.com``, ``https://host:443/``,
``http://host:8080/node/api/objects``. The client needs one canonical base URL (used for the
REST prefix, the entry's default name and links into the web UI) and one Comet
endpoint. python-socketio ignores the path of the URL it is given (it always talks to
``/<socketio_path>/``), so a Comet address behind a reverse-proxy prefix is split into the
origin and a ``socketio_path`` here rather than being silently mis-routed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

API_PREFIX = "/node/api"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SOCKETIO_PATH = "socket.io"


class InvalidURLError(ValueError):
    """The text cannot be read as an http(s) address."""


@dataclass(frozen=True, slots=True)
class CometEndpoint:
    """Where the Comet server listens: an origin for python-socketio plus its Socket.IO path."""

    url: str
    socketio_path: str = _SOCKETIO_PATH


def _split(text: str, default_scheme: str) -> SplitResult:
    text = text.strip()
    if not text:
        raise InvalidURLError("empty address")
    if "://" not in text:
        text = f"{default_scheme}://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise InvalidURLError(f"not a valid address: {err}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURLError(f"unsupported scheme {scheme!r}; use http or https")
    if not parts.hostname:
        raise InvalidURLError("the address has no host name")
    if parts.username or parts.password:
        raise InvalidURLError("credentials do not belong in the address")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return SplitResult(scheme, netloc, parts.path, "", "")


def normalize_base_url(text: str) -> str:
    """Return the canonical SAYMON base URL: scheme and host, default port dropped, no API prefix.

    A path before ``/node/api`` is kept (SAYMON published under a reverse-proxy prefix);
    anything from ``/node/api`` on, a trailing slash, query and fragment are dropped.
    """
    parts = _split(text, "https")
    path = parts.path
    index = path.find(API_PREFIX)
    if index >= 0:
        path = path[:index]
    path = path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def api_url(base_url: str, path: str) -> str:
    """Join the REST prefix and a method path (``/objects``) onto a normalised base URL."""
    return f"{base_url}{API_PREFIX}/{path.lstrip('/')}"


def comet_endpoint(base_url: str, comet: str | int | None) -> CometEndpoint:
    """Derive the Comet endpoint from the base URL and what the user gave for Comet.

    ``None``/empty: the same origin as the web server (Comet proxied on the main port).
    A port (``8091`` or ``"8091"``): the web server's host and scheme on that port.
    A full address: used as given, its path becoming the Socket.IO path prefix.
    """
    base = urlsplit(base_url)
    if comet is None or (isinstance(comet, str) and not comet.strip()):
        return CometEndpoint(urlunsplit((base.scheme, base.netloc, "", "", "")))
    text = str(comet).strip()
    if text.isascii() and text.isdigit():
        port = int(text)
        if not 0 < port < 65536:
            raise InvalidURLError(f"port {port} is out of range")
        host = base.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return CometEndpoint(urlunsplit((base.scheme, f"{host}:{port}", "", "", "")))
    parts = _split(text, base.scheme)
    prefix = parts.path.strip("/")
    if prefix.endswith(_SOCKETIO_PATH):
        prefix = prefix[: -len(_SOCKETIO_PATH)].strip("/")
    path = f"{prefix}/{_SOCKETIO_PATH}" if prefix else _SOCKETIO_PATH
    return CometEndpoint(urlunsplit((parts.scheme, parts.netloc, "", "", "")), path)
