"""A loopback TCP proxy that can go silent: the network cut that closes nothing.

While frozen it keeps every connection open but forwards no byte in either direction, and new
connections are accepted and then ignored, like packets lost on a dead link. Only a ping
timeout can notice that. Thawing drops the connections that were open when the cut began (the
server has given up on them by then) and lets everything else flow again.
"""

from __future__ import annotations

import asyncio
import contextlib

LOCALHOST = "127.0.0.1"


class FreezeProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream_port>`` until frozen."""

    def __init__(self, upstream_port: int) -> None:
        """Nothing listens before :meth:`start`."""
        self.upstream_port = upstream_port
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._generation = 0
        self._connections: dict[asyncio.Task[None], int] = {}
        self._writers: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}

    @property
    def frozen(self) -> bool:
        """Whether forwarding is stopped."""
        return not self._flowing.is_set()

    async def start(self) -> None:
        """Listen on a free port (kept for the proxy's life)."""
        self._server = await asyncio.start_server(self._handle, LOCALHOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        """Stop forwarding; every connection stays open."""
        self._generation += 1
        self._flowing.clear()

    async def thaw(self) -> None:
        """Drop the connections the cut caught, then forward again."""
        caught = [task for task, gen in self._connections.items() if gen < self._generation]
        for task in caught:
            for writer in self._writers.get(task, []):
                writer.transport.abort()
            task.cancel()
        await asyncio.gather(*caught, return_exceptions=True)
        self._flowing.set()

    async def close(self) -> None:
        """Drop everything and stop listening."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            for writer in self._writers.get(task, []):
                writer.transport.abort()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.accepted += 1
        self._connections[task] = self._generation
        self._writers[task] = [writer]
        try:
            await self._flowing.wait()  # a connection made during the cut hangs
            up_reader, upstream = await asyncio.open_connection(LOCALHOST, self.upstream_port)
            self._writers[task].append(upstream)
            await asyncio.gather(self._pump(reader, upstream), self._pump(up_reader, writer))
        except OSError:
            pass
        finally:
            for side in self._writers.pop(task, []):
                side.transport.abort()
            self._connections.pop(task, None)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.transport.abort()
