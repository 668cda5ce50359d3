"""An HTTP reverse proxy that refuses WebSocket, as some corporate proxies and firewalls do.

It forwards plain HTTP requests (Engine.IO's long-polling GETs and POSTs) to a Socket.IO server
on the loopback and answers every WebSocket upgrade with ``403 Forbidden``, counting both. A
client that insists on WebSocket cannot connect through it; one that starts with long-polling
stays on long-polling.
"""

from __future__ import annotations

from typing import Final

import aiohttp
from aiohttp import web

LOCALHOST: Final = "127.0.0.1"
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)


class NoWebSocketProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>``, WebSocket refused."""

    def __init__(self, upstream_port: int) -> None:
        """Nothing listens before :meth:`start`."""
        self.upstream_port = upstream_port
        self.port = 0
        self.forwarded = 0
        self.refused = 0
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The proxy's address."""
        return f"http://{LOCALHOST}:{self.port}"

    async def start(self) -> None:
        """Listen on a free port."""
        self._http = aiohttp.ClientSession(auto_decompress=True)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A long-poll in flight waits up to the server's ping interval: do not wait for it.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOCALHOST, 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            self.refused += 1
            return web.Response(status=403, text="WebSocket is not allowed here")
        assert self._http is not None
        self.forwarded += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._http.request(
            request.method,
            f"http://{LOCALHOST}:{self.upstream_port}{request.path_qs}",
            data=await request.read(),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as upstream:
            body = await upstream.read()
            answer = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=body, headers=answer)
