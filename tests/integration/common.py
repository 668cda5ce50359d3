"""Helpers for the integration tests: config entries pointing at a running simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME, CONF_VERIFY_SSL
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.saymon.api.url import normalize_base_url
from custom_components.saymon.const import (
    AUTH_PASSWORD,
    CONF_AUTH_METHOD,
    CONF_COMET,
    CONF_GRACE_PERIOD,
    CONF_USER_ID,
    DOMAIN,
)
from custom_components.saymon.identity import default_title
from custom_components.saymon.migration import ENTRY_MINOR_VERSION, ENTRY_VERSION
from custom_components.saymon.scope import default_scope_options
from tests.simulator import SaymonSimulator
from tests.util import wait_for


def entry_for(
    simulator: SaymonSimulator,
    options: dict[str, Any] | None = None,
    *,
    entry_id: str | None = None,
    title: str | None = None,
    **data: Any,
) -> MockConfigEntry:
    """A config entry like the flow creates for this simulator (password auth)."""
    url = normalize_base_url(simulator.rest_url)
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=entry_id,
        version=ENTRY_VERSION,
        minor_version=ENTRY_MINOR_VERSION,
        title=title or default_title(url),
        unique_id=simulator.user_id,
        data={
            CONF_URL: url,
            CONF_COMET: str(simulator.comet_port),
            CONF_VERIFY_SSL: True,
            CONF_AUTH_METHOD: AUTH_PASSWORD,
            CONF_USERNAME: simulator.login,
            CONF_PASSWORD: simulator.password,
            CONF_USER_ID: simulator.user_id,
            **data,
        },
        options={
            **default_scope_options(len(simulator.model.objects)),
            CONF_GRACE_PERIOD: 30,
            **(options or {}),
        },
    )


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
