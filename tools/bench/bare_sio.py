"""A bare python-socketio client with an empty handler: the ceiling for any Python client.

Run as a child process (``python -m tools.bench.bare_sio URL SESSION [STAT_KEYS]``) so it does
not share the measured process's CPU core or GIL. Default ``AsyncClient`` (one task per event,
as the library does it), WebSocket, subscribed to ``state-change`` and ``incidents`` (or, with
a file of stat keys, to those objects' ``stat``). Prints
``{"ready": true}`` once subscribed; answers ``status`` with how many events arrived, when
the first and the last arrived (epoch ms) and the CPU time it used.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import sys
import time
from typing import Any
from urllib.parse import urlencode

import socketio


async def main(url: str, session: str, stat_keys: list[str] | None = None) -> None:
    """Connect, count, answer commands until stdin closes.

    ``stat_keys``: ``"<type>:<id>"`` keys; then the client subscribes to those objects'
    ``stat`` (``add-filtered-topic``) instead of the state and incident topics.
    """
    count = 0
    first: float | None = None
    last: float | None = None

    def handler(*_: Any) -> None:
        nonlocal count, first, last
        now = time.time() * 1000
        if first is None:
            first = now
        last = now
        count += 1

    sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
    sio.on("state-change", handler)
    sio.on("incidents", handler)
    sio.on("stat", handler)
    await sio.connect(f"{url}/?{urlencode({'sessionId': session})}", transports=["websocket"])
    if stat_keys is None:
        for topic in ("state-change", "incidents"):
            await sio.emit("add-topics", topic)
    else:
        for key in stat_keys:
            await sio.emit("add-filtered-topic", ("stat", key))
    await asyncio.sleep(0.2)  # Comet has no ack for add-topics
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    cpu0 = time.process_time()
    while line := await reader.readline():
        if line.strip() == b"reset":
            count, first, last, cpu0 = 0, None, None, time.process_time()
        status = {
            "count": count,
            "first_ms": first,
            "last_ms": last,
            "cpu_s": time.process_time() - cpu0,
        }
        print(json.dumps(status), flush=True)
    await sio.shutdown()


if __name__ == "__main__":
    KEYS = Path(sys.argv[3]).read_text(encoding="utf-8").split() if len(sys.argv) > 3 else None
    asyncio.run(main(sys.argv[1], sys.argv[2], KEYS))
