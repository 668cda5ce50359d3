"""Fixtures for Home Assistant integration tests: custom integrations on, a simulator, setup mocked.

The config flow is tested against the SAYMON simulator over real sockets; only the entry setup
that follows a finished flow is replaced, as Home Assistant core's flow tests do, so a flow test
does not depend on (or start) the hub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import ssl
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.core import HomeAssistant
import pytest

from tools.simulator import SaymonSimulator

API_TOKEN = "tok-5d2b7a91"


@pytest.fixture(autouse=True)
def _custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load ``custom_components.saymon``."""


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Replace the entry setup that runs after a flow creates or reloads an entry."""
    with (
        patch("custom_components.saymon.async_setup_entry", return_value=True, create=True) as mock,
        patch("custom_components.saymon.async_unload_entry", return_value=True, create=True),
    ):
        yield mock


@pytest.fixture
async def simulator() -> AsyncIterator[SaymonSimulator]:
    """A small SAYMON server (40 objects: "all objects" is the default scope)."""
    async with SaymonSimulator(objects=40, api_token=API_TOKEN) as sim:
        yield sim


@pytest.fixture
def server_handshake_errors_ignored(hass: HomeAssistant) -> Iterator[None]:
    """Drop the simulator's own report of a TLS handshake the client aborted.

    When the client rejects a self-signed certificate, the in-process TLS server's accept
    fails and asyncio reports it to the loop's exception handler, which the ``hass`` fixture
    turns into a test failure. A real SAYMON server runs elsewhere; only that report is
    dropped, everything else still fails the test.
    """
    loop = hass.loop
    handler = loop.get_exception_handler()

    def filtered(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith(
            "Error on transport creation for incoming connection"
        ) and isinstance(context.get("exception"), ConnectionResetError | ssl.SSLError):
            return
        if handler is None:
            loop.default_exception_handler(context)
        else:
            handler(loop, context)

    loop.set_exception_handler(filtered)
    yield
    loop.set_exception_handler(handler)
