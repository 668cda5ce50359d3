"""Helpers for the integration tests: config entries pointing at a running simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.saymon.const import DOMAIN
from tests.util import wait_for
from tools.ha_entry import entry_for
from tools.simulator import SaymonSimulator

__all__ = ["entry_for"]


@asynccontextmanager
async def serving(
    hass: HomeAssistant, simulator: SaymonSimulator
) -> AsyncIterator[SaymonSimulator]:
    """Run a simulator for a test; unload every SAYMON entry before the simulator stops.

    Fixtures tear down in reverse order, so without this the simulator would vanish under
    loaded entries, which would then reconnect and resync during Home Assistant's teardown.
    """
    async with simulator:
        try:
            yield simulator
        finally:
            for entry in hass.config_entries.async_entries(DOMAIN):
                if entry.state is ConfigEntryState.LOADED:
                    await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()


async def settled(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Wait until a loaded entry is connected and its first resync is done.

    Tests then start (and end) with no REST or Comet request in flight, so unloading at
    teardown never cancels one half-way (aiohttp may leave its timeout timer behind then).
    """
    await hass.async_block_till_done()
    if entry.state is ConfigEntryState.LOADED:
        hub = entry.runtime_data.hub
        await wait_for(lambda: hub.connected and hub.resyncs >= 1, what="entry settled")
        await hass.async_block_till_done()


async def setup_entry(
    hass: HomeAssistant,
    simulator: SaymonSimulator,
    options: dict[str, Any] | None = None,
    **data: Any,
) -> MockConfigEntry:
    """Add and set up an entry; waits until everything started."""
    entry = entry_for(simulator, options, **data)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await settled(hass, entry)
    return entry
