"""Fixtures of the chaos suite, the results table at the end of the run, hypothesis profiles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from hypothesis import HealthCheck, settings
import pytest

from custom_components.saymon.const import DOMAIN
from tools.mosquitto import MosquittoBroker
from tools.simulator import SaymonSimulator

from . import report
from .proxy import FreezeProxy
from .rig import ChaosRig
from .settings import FUZZ_EXAMPLES, INCIDENT_TIMEOUT, report_path

settings.register_profile(
    "saymon-chaos",
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

type MakeRig = Callable[..., Awaitable[ChaosRig]]


@pytest.fixture
async def make_rig(
    hass: HomeAssistant, tmp_path: Path, enable_custom_integrations: None
) -> AsyncIterator[MakeRig]:
    """Build rigs: a simulator, a dedicated broker, optionally a freezable Comet proxy.

    At teardown every SAYMON entry is unloaded while its simulator still runs, then the
    servers stop.
    """
    stack = AsyncExitStack()
    rigs: list[ChaosRig] = []

    async def make(
        *,
        proxy: bool = False,
        broker_auth: tuple[str, str] | None = None,
        **simulator_options: Any,
    ) -> ChaosRig:
        broker = MosquittoBroker(tmp_path / f"broker{len(rigs)}")
        await broker.start(password=broker_auth)
        stack.push_async_callback(broker.stop)
        simulator = SaymonSimulator(
            **{"objects": 40, "seed": 7, "incident_timeout": INCIDENT_TIMEOUT, **simulator_options}
        )
        await simulator.start()
        stack.push_async_callback(simulator.stop)
        rig = ChaosRig(hass, simulator, broker, broker_auth=broker_auth)
        rigs.append(rig)
        if proxy:
            rig.proxy = FreezeProxy(simulator.comet_port)
            await rig.proxy.start()
            stack.push_async_callback(rig.proxy.close)
        return rig

    try:
        yield make
    finally:
        for entry in hass.config_entries.async_entries(DOMAIN):
            if entry.state is ConfigEntryState.LOADED:
                await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        for rig in rigs:
            rig.close()
        await stack.aclose()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the results table of the chaos tests that ran."""
    if any(report.RESULTS.values()) and report_path() is None:  # scripts/chaos prints it
        terminalreporter.section("chaos results")
        terminalreporter.write_line(report.render(report.RESULTS))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Save the results as JSON when ``scripts/chaos`` asked for it."""
    path = report_path()
    if path is not None and any(report.RESULTS.values()):
        report.write(path)
