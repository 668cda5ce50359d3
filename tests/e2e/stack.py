"""Everything a real-Home-Assistant run needs around ``hass``, started in order, stopped in reverse.

The end-to-end test and the chaos suite's real restart both run the simulator, Mosquitto, an
MQTT subscriber and a ``hass`` process; this is their one start-up and tear-down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import contextlib

import aiohttp

from tools.mosquitto import MosquittoBroker, Subscriber
from tools.simulator import SaymonSimulator

from .hass_process import HassProcess


@contextlib.asynccontextmanager
async def around_hass[S: Subscriber](
    sim: SaymonSimulator,
    broker: MosquittoBroker,
    subscriber: Callable[[int], S],
    hass: HassProcess,
    *,
    log_lines: int = 200,
) -> AsyncIterator[tuple[S, aiohttp.ClientSession]]:
    """Start the simulator, the broker and ``subscriber(port)``; yield it and an HTTP session.

    The caller starts ``hass`` (scenarios restart it); it is stopped here with everything else.
    When the body fails, the tail of Home Assistant's log is printed first.
    """
    async with contextlib.AsyncExitStack() as stack:
        await sim.start()
        stack.push_async_callback(sim.stop)
        await broker.start()
        stack.push_async_callback(broker.stop)
        mqtt = subscriber(broker.port)
        await mqtt.start()
        stack.push_async_callback(mqtt.close)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        stack.push_async_callback(hass.stop)
        try:
            yield mqtt, session
        except BaseException:
            print(f"--- Home Assistant output ---\n{hass.log_tail(log_lines)}")
            raise
