"""Pieces the measurements assemble: Home Assistant, servers, and line-speaking children.

The simulator, the Node Comet server, Mosquitto, and child processes that speak one JSON line
per command.

Home Assistant is the test harness's instance (``async_test_home_assistant`` from
pytest-homeassistant-custom-component), run in a plain asyncio program rather than under
pytest, with the SAYMON integration loaded from this checkout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
import contextlib
from contextlib import asynccontextmanager
import json
import logging
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any
from unittest.mock import patch

from aiohttp.resolver import ThreadedResolver
from homeassistant import loader
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

from custom_components.saymon.const import (
    CONF_COMET,
    CONF_MQTT_BASE_TOPIC,
    CONF_MQTT_HOST,
    CONF_MQTT_MODE,
    CONF_MQTT_PORT,
    CONF_MQTT_QOS,
    CONF_MQTT_RETAIN,
    CONF_SCOPE,
    DOMAIN,
    MQTT_BROKER,
    SCOPE_ALL,
)
from custom_components.saymon.hub import SaymonHub
from tools.ha_entry import entry_for
from tools.mosquitto import MosquittoBroker
from tools.node_comet import NodeCometServer
from tools.simulator import SaymonSimulator

REPO = Path(__file__).resolve().parents[2]
BRIDGE_DIR = Path(__file__).resolve().parent / "node_bridge"
BASE_TOPIC = "saymon/bench"
_LOGGER = logging.getLogger(__name__)


class BenchError(RuntimeError):
    """A measurement could not be taken (a server did not start, a child died...)."""


def epoch_ms() -> float:
    """Wall-clock milliseconds, comparable with Node's ``performance.timeOrigin + now()``."""
    return time.time() * 1000.0


def state_writes(
    hass: HomeAssistant, hub: SaymonHub
) -> tuple[list[tuple[str, str, float]], Callable[[Event[Any]], None]]:
    """Record each write of an object's State sensor as (object id, state, epoch ms).

    Returns the list and the ``state_changed`` listener that fills it; the caller decides when
    it listens.
    """
    registry = er.async_get(hass)
    sensors: dict[str, str] = {}
    for oid in hub.objects_in_scope:
        entity_id = registry.async_get_entity_id(
            "sensor", DOMAIN, f"{hub.server_key}|object|{oid}|state"
        )
        if entity_id:
            sensors[entity_id] = oid
    writes: list[tuple[str, str, float]] = []

    @callback
    def on_write(event: Event[Any]) -> None:
        oid = sensors.get(event.data["entity_id"])
        new = event.data.get("new_state")
        if oid is not None and new is not None:
            writes.append((oid, new.state, epoch_ms()))

    return writes, on_write


def work_dir() -> Path:
    """A scratch directory for storms, configs and logs (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix="saymon-bench-"))


async def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
    *,
    progress: Callable[[], object] | None = None,
    stall: float = 20.0,
) -> bool:
    """Poll ``predicate()`` until true; ``False`` (not an exception) after ``timeout`` s.

    With ``progress``, also give up once its value has not changed for ``stall`` s.
    """
    deadline = time.monotonic() + timeout
    last = progress() if progress is not None else None
    moved = time.monotonic()
    while not predicate():
        now = time.monotonic()
        if progress is not None:
            value = progress()
            if value != last:
                last, moved = value, now
            elif now - moved > stall:
                _LOGGER.warning("no progress for %.0f s waiting for %s", stall, what)
                return False
        if now > deadline:
            _LOGGER.warning("timed out after %.0f s waiting for %s", timeout, what)
            return False
        await asyncio.sleep(interval)
    return True


# -- Home Assistant ---------------------------------------------------------------------------


@asynccontextmanager
async def home_assistant() -> AsyncIterator[HomeAssistant]:
    """A running Home Assistant core (the test harness's) with custom integrations enabled.

    The harness normally swaps Home Assistant's zeroconf-backed DNS resolver for a plain one
    through a pytest fixture; the same is done here by hand (only 127.0.0.1 is used anyway).
    """
    config_dir = tempfile.mkdtemp(prefix="saymon-bench-ha-")
    with patch(
        "homeassistant.helpers.aiohttp_client._async_make_resolver",
        return_value=ThreadedResolver(),
    ):
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(loader.DATA_CUSTOM_COMPONENTS, None)
            try:
                yield hass
            finally:
                for entry in hass.config_entries.async_entries(DOMAIN):
                    if entry.state is ConfigEntryState.LOADED:
                        with contextlib.suppress(Exception):
                            await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_block_till_done()
                await hass.async_stop(force=True)
    shutil.rmtree(config_dir, ignore_errors=True)


def mqtt_options(port: int, qos: int = 1) -> dict[str, Any]:
    """Entry options that turn the MQTT mirror on, to a dedicated broker."""
    return {
        CONF_MQTT_MODE: MQTT_BROKER,
        CONF_MQTT_HOST: "127.0.0.1",
        CONF_MQTT_PORT: port,
        CONF_MQTT_BASE_TOPIC: BASE_TOPIC,
        CONF_MQTT_QOS: qos,
        CONF_MQTT_RETAIN: True,
    }


async def add_entry(
    hass: HomeAssistant,
    sim: SaymonSimulator,
    *,
    comet_url: str | None = None,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Add an entry for ``sim`` (scope: all objects unless ``options`` say otherwise).

    ``comet_url`` points Comet elsewhere (the Node server) while REST stays on the simulator.
    Returns without waiting; see :func:`setup_and_settle`.
    """
    data: dict[str, Any] = {}
    if comet_url is not None:
        data[CONF_COMET] = comet_url
    entry = entry_for(sim, {CONF_SCOPE: SCOPE_ALL, **(options or {})}, **data)
    entry.add_to_hass(hass)
    return entry


async def setup_and_settle(
    hass: HomeAssistant, entry: MockConfigEntry, timeout: float = 120.0
) -> SaymonHub:
    """Set the entry up and wait until Comet is connected and the first resync is done."""
    if not await hass.config_entries.async_setup(entry.entry_id):
        raise BenchError(f"entry setup failed: {entry.state}")
    hub: SaymonHub = entry.runtime_data.hub
    if not await wait_until(
        lambda: hub.connected and hub.resyncs >= 1, timeout, "the entry to settle"
    ):
        raise BenchError("the entry did not connect to Comet / finish its first resync")
    await hass.async_block_till_done()
    await flush_storage(hass)
    return hub


async def flush_storage(hass: HomeAssistant) -> None:
    """Write the registries now instead of 10 s after the entry set them up.

    A new entry creates thousands of devices and entities; Home Assistant serialises its
    registries (in the event loop) 10 s later, a one-time start-up cost of 0.1-0.3 s that
    would otherwise land in the middle of a throughput or latency measurement. The final-
    write event is what Home Assistant fires at shutdown to flush delayed writes.
    """
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()


# -- servers ----------------------------------------------------------------------------------


async def start_node_comet(sim: SaymonSimulator) -> NodeCometServer:
    """The Node socket.io 4.5.0 server, accepting every session the simulator accepts."""
    server = NodeCometServer()
    await server.start(sessions=[], session_check_url=f"{sim.api_url}/users/current")
    return server


class BenchBroker(MosquittoBroker):
    """The test broker with ``set_tcp_nodelay``: messages to subscribers go out at once.

    Mosquitto leaves Nagle's algorithm on by default, which holds a small message back until
    the previous one is acknowledged by TCP; a latency-minded installation turns it off.
    """

    def _write_config(self, *args: Any, **kwargs: Any) -> Path:
        config = super()._write_config(*args, **kwargs)
        config.write_text(config.read_text() + "set_tcp_nodelay true\n")
        return config


async def start_mosquitto(directory: Path) -> MosquittoBroker:
    """A private broker; the subscriber window is opened wide so the probe never throttles."""
    broker = BenchBroker(directory / "mosquitto")
    await broker.start(max_inflight=0)
    return broker


def new_session(sim: SaymonSimulator) -> str:
    """A fresh SAYMON session of the admin, for clients other than the integration."""
    return sim.accounts.create_session(sim.accounts.admin).id


# -- child processes --------------------------------------------------------------------------


def ensure_node_bridge() -> None:
    """``npm ci`` in the bridge folder when its node_modules are missing."""
    if (BRIDGE_DIR / "node_modules" / "mqtt").is_dir() and (
        BRIDGE_DIR / "node_modules" / "socket.io-client"
    ).is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm is needed for the Node bridge and the MQTT probe")
    subprocess.run(  # noqa: S603 - fixed command
        [npm, "ci", "--no-audit", "--no-fund"], cwd=BRIDGE_DIR, check=True
    )


class LineProcess:
    """A child process that answers each stdin line with one JSON line on stdout."""

    def __init__(self, argv: Sequence[str], *, cwd: Path | None = None, name: str = "") -> None:
        """Nothing runs before :meth:`start`."""
        self.argv = list(argv)
        self.cwd = cwd
        self.name = name or Path(self.argv[0]).name
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: list[str] = []
        self._drain: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Start it and return its first line (``{"ready": true}`` by convention)."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=self.cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=256 * 1024 * 1024,
        )
        assert self._proc.stderr is not None
        self._drain = asyncio.create_task(self._drain_stderr(self._proc.stderr))
        return await self.read(timeout)

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self._stderr.append(text)
            del self._stderr[:-30]
            _LOGGER.debug("%s: %s", self.name, text)

    async def read(self, timeout: float = 30.0) -> dict[str, Any]:
        """The next JSON line."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise BenchError(f"{self.name} is not running")
        try:
            async with asyncio.timeout(timeout):
                line = await proc.stdout.readline()
        except TimeoutError:
            raise BenchError(f"{self.name} did not answer within {timeout} s") from None
        if not line:
            await asyncio.sleep(0.1)
            raise BenchError(f"{self.name} exited: {' | '.join(self._stderr[-5:])}")
        result: dict[str, Any] = json.loads(line)
        return result

    async def command(self, text: str, timeout: float = 30.0) -> dict[str, Any]:
        """Send one line, return the answer."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise BenchError(f"{self.name} is not running")
        proc.stdin.write(text.encode() + b"\n")
        await proc.stdin.drain()
        return await self.read(timeout)

    async def stop(self) -> dict[str, Any] | None:
        """Close stdin (the child's signal to report and exit), collect a last line if any."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        last: dict[str, Any] | None = None
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if proc.stdout is not None:
            with contextlib.suppress(TimeoutError, ValueError):
                async with asyncio.timeout(5):
                    line = await proc.stdout.readline()
                    if line:
                        last = json.loads(line)
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        return last


def node_process(script: str, *args: str) -> LineProcess:
    """A Node script of the bridge folder."""
    node = shutil.which("node")
    if node is None:
        raise BenchError("node is not on PATH")
    ensure_node_bridge()
    return LineProcess([node, str(BRIDGE_DIR / script), *args], cwd=BRIDGE_DIR, name=script)


def python_process(module: str, *args: str) -> LineProcess:
    """A Python module of this package, run with this interpreter from the repository root."""
    return LineProcess([sys.executable, "-m", module, *args], cwd=REPO, name=module)


async def start_probe(port: int) -> LineProcess:
    """The MQTT subscriber (Node, mqtt.js) on every bench topic."""
    probe = node_process("probe.js", "--port", str(port), "--filter", f"{BASE_TOPIC}/#")
    await probe.start()
    return probe


def rss_bytes() -> int:
    """Resident set size of the current process."""
    statm = Path(f"/proc/{os.getpid()}/statm").read_text(encoding="ascii")
    return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
