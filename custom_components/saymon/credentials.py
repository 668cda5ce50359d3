"""The SAYMON credentials a config entry (or a flow's answers) holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_PASSWORD, CONF_USERNAME

from .api.rest import Credentials, PasswordCredentials, TokenCredentials
from .const import AUTH_TOKEN, CONF_API_TOKEN, CONF_AUTH_METHOD


def credentials_from(data: Mapping[str, Any]) -> Credentials:
    """An API token when the entry says so, else a login and password (entries before tokens)."""
    if data.get(CONF_AUTH_METHOD) == AUTH_TOKEN:
        return TokenCredentials(data[CONF_API_TOKEN])
    return PasswordCredentials(data[CONF_USERNAME], data[CONF_PASSWORD])
