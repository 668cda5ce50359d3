"""Shared fixtures.

Our ``custom_components`` package is imported first, before pytest-homeassistant-custom-
component puts its own testing ``custom_components`` on the path and would shadow ours.
"""

from __future__ import annotations

import pytest

import custom_components.saymon  # noqa: F401  (must come before the phcc plugin's imports)


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Let tests open real sockets; pytest-socket still confines them to 127.0.0.1."""
