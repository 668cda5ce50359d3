"""What ``tests/deprecations.py`` takes for a deprecation naming this integration."""

from __future__ import annotations

import pytest

from tests.deprecations import names_us, ours


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # Home Assistant 2026.10's frame helper (report_usage), as seen on the current-HA leg.
        (
            "Detected that custom integration 'saymon' calls `device_registry.async_update_device`"
            " with one of `add_config_entry_id`, ... at custom_components/saymon/hub.py, line 701:"
            " registry.async_update_device(...). This will stop working in Home Assistant 2027.8.0,"
            " please create a bug report at https://example.invalid/issues",
            True,
        ),
        # homeassistant.helpers.deprecation: deprecated constants and functions.
        (
            "The deprecated constant X was used from saymon. It will be removed in HA Core "
            "2027.1. Use Y instead, please report it to the author of the 'saymon' custom "
            "integration",
            True,
        ),
        ("Detected that custom integration 'other' does something deprecated", False),
        ("SAYMON Comet at https://host/socket.io/ (failure 3): deprecated TLS version", False),
        ("Dropped a malformed SAYMON 'stat' event: bad value", False),
        ("Setup of saymon took 12 seconds", False),
    ],
)
def test_names_us(message: str, expected: bool) -> None:
    assert names_us(message) is expected


def test_ours() -> None:
    assert ours("custom_components/saymon/hub.py")
    assert not ours("/usr/lib/python3/asyncio/base_events.py")
    assert not ours("custom_components/saymon_other/hub.py")
