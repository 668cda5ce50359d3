"""Shared fixtures.

Our ``custom_components`` package is imported first, before pytest-homeassistant-custom-
component puts its own testing ``custom_components`` on the path and would shadow ours. Before
that, ``SAYMON_TEST_CHANGE_HOOKS`` may change private library methods (``tests/library_hooks.py``)
so that the import-time hook checks fail and the tests run on the libraries' public behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.library_hooks import apply_from_env

CHANGED_HOOKS = apply_from_env()  # before our package is imported: its checks run at import

import custom_components.saymon  # noqa: E402, F401  (must come before the phcc plugin's imports)
from custom_components.saymon.api import _compat, _socketio  # noqa: E402
from custom_components.saymon.mqtt import connection  # noqa: E402
from tools.mosquitto import MosquittoBroker  # noqa: E402

pytest_plugins = ["tests.deprecations"]  # a deprecation naming this integration fails the run


def pytest_configure(config: pytest.Config) -> None:
    """With changed hooks, refuse to run unless the real checks noticed and the clients fell back.

    A fallback run that silently used the overrides after all would prove nothing.
    """
    if not CHANGED_HOOKS:
        return
    active = {report.name: report.active for report in _compat.REPORTS}
    expected = {
        "comet": not any(path.startswith(("socketio.", "engineio.")) for path in CHANGED_HOOKS),
        "mqtt": not any(path.startswith("paho.") for path in CHANGED_HOOKS),
    }
    in_use = {
        "comet": _socketio.SOCKET_CLASS is _socketio.HookedSocketIOClient,
        "mqtt": connection.CLIENT_CLASS is connection.BufferedClient,
    }
    for name, wanted in expected.items():
        if active[name] != wanted or in_use[name] != wanted:
            raise pytest.UsageError(
                f"changed {', '.join(CHANGED_HOOKS)}: the {name} check says "
                f"{'active' if active[name] else 'fallback'} and the overrides are "
                f"{'in use' if in_use[name] else 'not in use'}"
            )


def pytest_report_header() -> str | None:
    """Say that the run uses the public fallback, so it cannot pass for a normal one."""
    if not CHANGED_HOOKS:
        return None
    fallback = [report.name for report in _compat.REPORTS if not report.active]
    return f"library hooks changed ({', '.join(CHANGED_HOOKS)}): fallback for {', '.join(fallback)}"


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Let tests open real sockets; pytest-socket still confines them to 127.0.0.1."""


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoBroker]:
    """A private Mosquitto on a free loopback port (a test module may define its own)."""
    async with MosquittoBroker(tmp_path) as mosquitto:
        yield mosquitto
