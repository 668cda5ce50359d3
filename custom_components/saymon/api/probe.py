"""Checks of an address that need no credentials: are SAYMON's API and its Comet server there.

The config flow runs them on the address step, so a wrong host, port or scheme is reported
where the user typed it, before any credentials are asked for. Each check sends one request
and reads little: ``GET /node/api/users/current`` without a session (SAYMON answers it, with
401), and an Engine.IO WebSocket handshake at the Comet address (Socket.IO servers send the
Engine.IO OPEN packet before any session check, so no credentials are needed to tell Comet
from something else). Failures are the client's typed errors; an HTTPS address served by a
plain-HTTP server is told apart from a TLS failure by asking the same host and port over HTTP.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from .errors import (
    SaymonCometError,
    SaymonConnectionError,
    SaymonError,
    SaymonPlainHTTPError,
    SaymonTimeoutError,
    SaymonTLSError,
)
from .url import CometEndpoint, api_url

PROBE_TIMEOUT: Final = 10.0
SAYMON_STATUSES: Final = frozenset({200, 401, 403})
"""What SAYMON's ``/users/current`` answers: the user (200) or a refusal without a session."""
_MAX_READ: Final = 64 * 1024


class NotSaymonError(SaymonError):
    """Something answers at the address, but not as SAYMON's API (another page, a redirect)."""

    def __init__(self, url: str, status: int) -> None:
        """Keep the HTTP status: it is what the user sees (404, a redirect's 301, ...)."""
        super().__init__(f"{url} answered HTTP {status}, not as SAYMON's API")
        self.status = status


def plain_http_url(url: str) -> str:
    """The same address with ``http`` instead of ``https`` (and the port it had)."""
    parts = urlsplit(url)
    netloc = parts.netloc if parts.port is not None else f"{parts.netloc}:443"
    return urlunsplit(("http", netloc, parts.path, "", ""))


async def speaks_plain_http(
    session: aiohttp.ClientSession, url: str, seconds: float = PROBE_TIMEOUT
) -> bool:
    """Whether the host and port of an ``https`` URL answer plain HTTP.

    A TLS ClientHello sent to an HTTP server fails with an error OpenSSL words differently
    from version to version ("wrong version number", "record layer failure", ...); asking the
    same port over HTTP is the reliable way to tell.
    """
    if urlsplit(url).scheme != "https":
        return False
    try:
        async with asyncio.timeout(seconds):
            async with session.get(plain_http_url(url), allow_redirects=False) as response:
                await response.content.read(_MAX_READ)
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False
    return True


async def _tls_failure(
    session: aiohttp.ClientSession, url: str, err: aiohttp.ClientSSLError, what: str
) -> SaymonTLSError:
    """Classify a TLS failure: a rejected certificate, plain HTTP, or another handshake error."""
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return SaymonTLSError(f"TLS certificate of {what} rejected: {err.certificate_error}")
    if await speaks_plain_http(session, url):
        return SaymonPlainHTTPError(f"{what} speaks plain HTTP, not HTTPS")
    return SaymonTLSError(f"TLS handshake with {what} failed: {err}")


async def probe_api(
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    ssl_context: ssl.SSLContext | bool = True,
    seconds: float = PROBE_TIMEOUT,
) -> None:
    """Check that SAYMON's REST API answers at ``base_url`` (no credentials are sent).

    Raises :class:`SaymonPlainHTTPError`, :class:`SaymonTLSError`, :class:`NotSaymonError`,
    :class:`SaymonTimeoutError` or :class:`SaymonConnectionError`.
    """
    url = api_url(base_url, "users/current")
    try:
        async with asyncio.timeout(seconds):
            async with session.get(
                url,
                ssl=ssl_context,
                allow_redirects=False,
                headers={"Accept": "application/json"},
            ) as response:
                status = response.status
                await response.content.read(_MAX_READ)
    except aiohttp.ClientSSLError as err:
        raise await _tls_failure(session, base_url, err, base_url) from None
    except TimeoutError:
        raise SaymonTimeoutError(f"{base_url} did not answer in time") from None
    except (aiohttp.ClientError, OSError) as err:
        raise SaymonConnectionError(f"cannot reach {base_url}: {err}") from None
    if status not in SAYMON_STATUSES:
        raise NotSaymonError(base_url, status)


async def probe_comet(
    session: aiohttp.ClientSession,
    endpoint: CometEndpoint,
    *,
    ssl_context: ssl.SSLContext | bool = True,
    seconds: float = PROBE_TIMEOUT,
) -> str:
    """Check that a Socket.IO (Comet) server answers at ``endpoint``; return the transport.

    ``"websocket"`` when it opens a WebSocket. When the WebSocket handshake is refused with
    anything but 404 (a proxy that blocks WebSocket answers 403, 400 or 502) the Engine.IO
    long-polling handshake is tried: ``"polling"`` when that opens a session.

    Raises :class:`SaymonPlainHTTPError`, :class:`SaymonTLSError` or :class:`SaymonCometError`.
    """
    parts = urlsplit(endpoint.url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode({"EIO": "4", "transport": "websocket"})
    path = "/" + endpoint.socketio_path.strip("/") + "/"
    url = urlunsplit((scheme, parts.netloc, path, query, ""))
    address = f"{endpoint.url}{path}"
    try:
        async with asyncio.timeout(seconds):
            async with session.ws_connect(url, ssl=ssl_context, autoping=False) as socket:
                message = await socket.receive()
    except aiohttp.WSServerHandshakeError as err:
        polling = urlunsplit((parts.scheme, parts.netloc, path, _POLLING_QUERY, ""))
        if err.status != 404 and await _opens_polling(session, polling, ssl_context, seconds):
            return "polling"
        raise SaymonCometError(
            f"{address} answered HTTP {err.status}, not as a Comet server"
        ) from None
    except aiohttp.ClientSSLError as err:
        raise await _tls_failure(session, endpoint.url, err, address) from None
    except TimeoutError:
        raise SaymonCometError(f"Comet at {address} did not answer in time") from None
    except (aiohttp.ClientError, OSError) as err:
        raise SaymonCometError(f"cannot reach Comet at {address}: {err}") from None
    if message.type is not aiohttp.WSMsgType.TEXT or not str(message.data).startswith("0"):
        raise SaymonCometError(f"{address} did not open an Engine.IO session")
    return "websocket"


_POLLING_QUERY: Final = urlencode({"EIO": "4", "transport": "polling"})


async def _opens_polling(
    session: aiohttp.ClientSession,
    url: str,
    ssl_context: ssl.SSLContext | bool,
    seconds: float,
) -> bool:
    """Whether an Engine.IO long-polling handshake at ``url`` opens a session (``0{...}``)."""
    try:
        async with asyncio.timeout(seconds):
            async with session.get(url, ssl=ssl_context, allow_redirects=False) as response:
                body = await response.content.read(_MAX_READ)
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False
    return response.status == 200 and body.startswith(b"0{")
