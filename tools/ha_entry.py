"""A config entry for a running simulator, as the config flow would create it.

Shared by the tests and the benchmarks (which run Home Assistant in-process with
pytest-homeassistant-custom-component's ``MockConfigEntry``), so both load exactly the entry a
user's setup makes.
"""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME, CONF_VERIFY_SSL
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
from tools.simulator import SaymonSimulator


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
