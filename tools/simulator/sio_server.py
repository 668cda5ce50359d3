"""A python-socketio AsyncServer whose background tasks can all be cancelled on stop.

python-engineio leaves per-socket ping tasks sleeping for up to `ping_interval` after a client
goes away; Home Assistant's test harness fails any test that leaves a task behind, so the
simulator tracks every task the server starts and cancels the stragglers when it stops.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio
import socketio


class _TrackingEngineIOServer(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO server that remembers the tasks it starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracked_tasks: set[asyncio.Task[Any]] = set()

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = super().start_background_task(target, *args, **kwargs)
        self.tracked_tasks.add(task)
        task.add_done_callback(self.tracked_tasks.discard)
        return task


class TrackingAsyncServer(socketio.AsyncServer):  # type: ignore[misc]
    """Socket.IO server (aiohttp mode) with `cancel_background_tasks()`."""

    def _engineio_server_class(self) -> type[_TrackingEngineIOServer]:
        return _TrackingEngineIOServer

    async def cancel_background_tasks(self) -> None:
        """Cancel and reap every task still running (call after the web server stopped)."""
        tasks: set[asyncio.Task[Any]] = set(self.eio.tracked_tasks)
        current = asyncio.current_task()
        if current is not None:
            tasks.discard(current)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
