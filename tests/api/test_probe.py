"""The credential-free address checks against real sockets: SAYMON, Comet, and what is not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
import pytest

from custom_components.saymon.api.errors import (
    SaymonCometError,
    SaymonConnectionError,
    SaymonPlainHTTPError,
    SaymonTimeoutError,
)
from custom_components.saymon.api.probe import (
    NotSaymonError,
    plain_http_url,
    probe_api,
    probe_comet,
    speaks_plain_http,
)
from custom_components.saymon.api.url import CometEndpoint
from tests.http_proxy import NoWebSocketProxy
from tools.simulator import SaymonSimulator

from .test_rest import free_port

type Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def tcp() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start raw TCP servers on loopback; all closed at the end."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and never answer."""
    await reader.read(65536)
    await asyncio.sleep(1)
    writer.close()


def test_plain_http_url_keeps_the_port() -> None:
    assert plain_http_url("https://host") == "http://host:443"
    assert plain_http_url("https://host:8443/saymon") == "http://host:8443/saymon"


async def test_probe_api_finds_saymon(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    await probe_api(http, simulator.rest_url)
    assert simulator.accounts.sessions == {}


async def test_probe_api_on_plain_http_with_https(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(SaymonPlainHTTPError):
        await probe_api(http, simulator.rest_url.replace("http://", "https://"))


async def test_probe_api_on_something_else(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(NotSaymonError) as caught:
        await probe_api(http, f"http://127.0.0.1:{simulator.comet_port}")
    assert caught.value.status == 404


async def test_probe_api_errors(
    http: aiohttp.ClientSession, tcp: Callable[[Handler], Awaitable[int]]
) -> None:
    with pytest.raises(SaymonConnectionError):
        await probe_api(http, f"http://127.0.0.1:{free_port()}")
    port = await tcp(_silent)
    with pytest.raises(SaymonTimeoutError):
        await probe_api(http, f"http://127.0.0.1:{port}", seconds=0.3)


async def test_probe_comet_finds_comet(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    await probe_comet(http, CometEndpoint(f"http://127.0.0.1:{simulator.comet_port}"))


async def test_probe_comet_errors(
    simulator: SaymonSimulator,
    http: aiohttp.ClientSession,
    tcp: Callable[[Handler], Awaitable[int]],
) -> None:
    with pytest.raises(SaymonCometError, match="answered HTTP 404"):
        await probe_comet(http, CometEndpoint(simulator.rest_url))
    with pytest.raises(SaymonCometError, match="cannot reach"):
        await probe_comet(http, CometEndpoint(f"http://127.0.0.1:{free_port()}"))
    port = await tcp(_silent)
    with pytest.raises(SaymonCometError, match="in time"):
        await probe_comet(http, CometEndpoint(f"http://127.0.0.1:{port}"), seconds=0.3)
    with pytest.raises(SaymonPlainHTTPError):
        await probe_comet(http, CometEndpoint(f"https://127.0.0.1:{simulator.comet_port}"))


async def test_probe_comet_needs_an_engineio_open_packet(http: aiohttp.ClientSession) -> None:
    """A WebSocket server that is not Socket.IO is not Comet."""

    async def other(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str("hello")
        await socket.close()
        return socket

    app = web.Application()
    app.router.add_get("/socket.io/", other)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        with pytest.raises(SaymonCometError, match="did not open"):
            await probe_comet(http, CometEndpoint(f"http://127.0.0.1:{port}"))
    finally:
        await runner.cleanup()


async def test_speaks_plain_http_only_asks_about_https(http: aiohttp.ClientSession) -> None:
    assert await speaks_plain_http(http, f"http://127.0.0.1:{free_port()}") is False
    assert await speaks_plain_http(http, f"https://127.0.0.1:{free_port()}") is False


async def test_probe_comet_falls_back_to_long_polling_behind_a_websocket_blocker(
    simulator: SaymonSimulator, http: aiohttp.ClientSession
) -> None:
    """A proxy that refuses WebSocket: Comet is still found, reachable by long-polling."""
    direct = CometEndpoint(f"http://127.0.0.1:{simulator.comet_port}")
    assert await probe_comet(http, direct) == "websocket"
    proxy = NoWebSocketProxy(simulator.comet_port)
    await proxy.start()
    try:
        assert await probe_comet(http, CometEndpoint(proxy.url)) == "polling"
        assert proxy.refused == 1
        assert proxy.forwarded == 1
    finally:
        await proxy.close()
