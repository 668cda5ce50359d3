"""One aiohttp listener on 127.0.0.1 that can be stopped and started again on the same port.

REST and Comet each get one, because SAYMON serves Comet on its own port and tests restart
them independently.
"""

from __future__ import annotations

import ssl

from aiohttp import web

LOOPBACK = "127.0.0.1"


class Listener:
    """Serve an aiohttp application; port 0 picks a free port once and keeps it for restarts."""

    def __init__(
        self,
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        shutdown_timeout: float = 0.05,
    ) -> None:
        """`shutdown_timeout` bounds how long open requests (long polls, websockets) may linger."""
        self._port = port
        self._ssl_context = ssl_context
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        """Whether the listener is accepting connections."""
        return self._runner is not None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._port == 0:
            raise RuntimeError("The listener has not been started yet.")
        return self._port

    @property
    def scheme(self) -> str:
        """`https` when serving TLS."""
        return "https" if self._ssl_context is not None else "http"

    @property
    def url(self) -> str:
        """Base URL of the listener."""
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    async def start(self, app: web.Application) -> None:
        """Start serving `app`."""
        if self._runner is not None:
            raise RuntimeError("Already running.")
        # handler_cancellation: a request whose client went away (e.g. timed out during a
        # simulated delay) is cancelled at once instead of lingering as a task after stop().
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=self._shutdown_timeout,
            handler_cancellation=True,
        )
        await runner.setup()
        site = web.TCPSite(
            runner, LOOPBACK, self._port, ssl_context=self._ssl_context, reuse_address=True
        )
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._runner = runner

    async def add_port(self) -> str:
        """Serve the running application on one more free port too; returns its base URL.

        The same server under a second address (until `stop()`; a restart serves only the
        first port again).
        """
        runner = self._runner
        if runner is None:
            raise RuntimeError("Not running.")
        before = {address[1] for address in runner.addresses}
        site = web.TCPSite(runner, LOOPBACK, 0, ssl_context=self._ssl_context)
        await site.start()
        (port,) = {address[1] for address in runner.addresses} - before
        return f"{self.scheme}://{LOOPBACK}:{port}"

    async def stop(self) -> None:
        """Stop serving; open connections are closed after at most `shutdown_timeout`."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
