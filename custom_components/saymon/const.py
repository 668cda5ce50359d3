"""Constants of the SAYMON integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "saymon"

# Config entry data
CONF_COMET: Final = "comet"
"""Comet address: empty (same host), a port, or a full URL."""
CONF_AUTH_METHOD: Final = "auth_method"
AUTH_PASSWORD: Final = "password"
AUTH_TOKEN: Final = "token"
CONF_API_TOKEN: Final = "api_token"
CONF_USER_ID: Final = "user_id"

# Options
CONF_SCOPE: Final = "scope"
SCOPE_ALL: Final = "all"
SCOPE_SELECTED: Final = "selected"
CONF_PARENTS: Final = "parents"
"""Object ids whose whole subtree (the object included) is in scope."""
CONF_TAGS: Final = "tags"
CONF_CLASSES: Final = "classes"
CONF_LINKS: Final = "links"
CONF_GRACE_PERIOD: Final = "grace_period"
DEFAULT_GRACE_PERIOD: Final = 30
"""Seconds the Comet link may be down before entities turn unavailable."""

AUTO_ALL_LIMIT: Final = 300
"""Servers with at most this many objects default to "all objects" in scope."""

UNREACHABLE_REPAIR_AFTER: Final = timedelta(minutes=15)

# Bus events
EVENT_INCIDENT: Final = "saymon_incident"
EVENT_STATE_CHANGED: Final = "saymon_state_changed"
EVENT_MODEL_CHANGED: Final = "saymon_model_changed"
