"""Fixtures for the SAYMON client tests: a simulator and an aiohttp session per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.saymon.api.rest import PasswordCredentials, SaymonRestClient
from tools.simulator import SaymonSimulator

API_TOKEN = "tok-3f9c1e2a"


@pytest.fixture
async def simulator() -> AsyncIterator[SaymonSimulator]:
    async with SaymonSimulator(objects=40, seed=7, api_token=API_TOKEN) as sim:
        yield sim


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def rest(simulator: SaymonSimulator, http: aiohttp.ClientSession) -> SaymonRestClient:
    return SaymonRestClient(
        http, simulator.rest_url, PasswordCredentials(simulator.login, simulator.password)
    )
