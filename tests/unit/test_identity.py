"""Names and keys of :mod:`custom_components.saymon.identity`."""

from __future__ import annotations

import pytest

from custom_components.saymon.identity import (
    default_title,
    legacy_title,
    object_id_of,
    object_key,
    rekey,
    server_host,
)


@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("http://127.0.0.1:18080", "SAYMON 127.0.0.1:18080"),
        ("https://10.0.0.5", "SAYMON 10.0.0.5"),
        ("https://[fd00::5]:8443", "SAYMON [fd00::5]:8443"),
        ("https://monitoring.example.com/saymon", "SAYMON monitoring.example.com"),
        ("https://saymon.example.com", "saymon.example.com"),
        ("https://SAYMON-prod.corp:8443", "SAYMON-prod.corp:8443"),
    ],
)
def test_default_title_says_saymon_once(url: str, title: str) -> None:
    assert default_title(url) == title


def test_server_host_keeps_the_port() -> None:
    assert server_host("http://127.0.0.1:18080") == "127.0.0.1:18080"
    assert server_host("https://saymon.example.com/prefix") == "saymon.example.com"


def test_legacy_title_was_the_bare_host_name() -> None:
    assert legacy_title("http://127.0.0.1:18080") == "127.0.0.1"


def test_object_keys_round_trip() -> None:
    key = object_key("64ab", "5f01")
    assert key == "64ab|object|5f01"
    assert object_id_of(key) == "5f01"
    assert object_id_of(key, "64ab") == "5f01"
    assert object_id_of(key, "other") is None
    assert object_id_of("64ab") is None  # the server device
    assert object_id_of("64ab|object|") is None


def test_rekey_moves_only_this_accounts_keys() -> None:
    old = "http://127.0.0.1:18080|64ab"
    assert rekey(old, old, "64ab") == "64ab"
    assert rekey(f"{old}|object|5f01|state", old, "64ab") == "64ab|object|5f01|state"
    assert rekey("http://127.0.0.1:18081|64ab|active_incidents", old, "64ab") is None
    assert rekey(f"{old}x|active_incidents", old, "64ab") is None
