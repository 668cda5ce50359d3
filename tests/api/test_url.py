"""URL normalisation: what users paste becomes one canonical base URL and Comet endpoint."""

from __future__ import annotations

import pytest

from custom_components.saymon.api.url import (
    CometEndpoint,
    InvalidURLError,
    api_url,
    comet_endpoint,
    has_scheme,
    normalize_base_url,
    with_scheme,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("saymon.example.com", "https://saymon.example.com"),
        ("  SAYMON.Example.com/  ", "https://saymon.example.com"),
        ("https://saymon.example.com:443/", "https://saymon.example.com"),
        ("http://saymon.example.com:80", "http://saymon.example.com"),
        ("http://10.0.0.5:8080/node/api", "http://10.0.0.5:8080"),
        ("http://10.0.0.5:8080/node/api/objects?x=1#frag", "http://10.0.0.5:8080"),
        ("https://host/saymon/node/api/", "https://host/saymon"),
        ("https://host/saymon/", "https://host/saymon"),
        ("https://[::1]:8443/", "https://[::1]:8443"),
    ],
)
def test_normalize_base_url(text: str, expected: str) -> None:
    assert normalize_base_url(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "   ", "ftp://host", "https://", "http://user:pw@host", "http://host:99999", "http://:80"],
)
def test_normalize_base_url_rejects(text: str) -> None:
    with pytest.raises(InvalidURLError):
        normalize_base_url(text)


def test_invalid_url_error_does_not_echo_credentials() -> None:
    with pytest.raises(InvalidURLError) as err:
        normalize_base_url("http://admin:hunter2@host")
    assert "hunter2" not in str(err.value)


def test_api_url() -> None:
    assert api_url("https://h/p", "/objects") == "https://h/p/node/api/objects"
    assert api_url("https://h", "users/session") == "https://h/node/api/users/session"


@pytest.mark.parametrize(
    ("comet", "expected"),
    [
        (None, CometEndpoint("https://h.example:8443")),
        ("", CometEndpoint("https://h.example:8443")),
        (8091, CometEndpoint("https://h.example:8091")),
        (" 8091 ", CometEndpoint("https://h.example:8091")),
        ("http://comet.example:8091", CometEndpoint("http://comet.example:8091")),
        ("comet.example:8091", CometEndpoint("https://comet.example:8091")),
        ("https://h.example/comet/", CometEndpoint("https://h.example", "comet/socket.io")),
        (
            "https://h.example/comet/socket.io/",
            CometEndpoint("https://h.example", "comet/socket.io"),
        ),
        ("https://h.example/socket.io", CometEndpoint("https://h.example", "socket.io")),
    ],
)
def test_comet_endpoint(comet: str | int | None, expected: CometEndpoint) -> None:
    assert comet_endpoint("https://h.example:8443/saymon", comet) == expected


def test_comet_endpoint_port_on_ipv6_host() -> None:
    assert comet_endpoint("http://[::1]:8080", "8091") == CometEndpoint("http://[::1]:8091")


@pytest.mark.parametrize("comet", ["0", "70000", "ws://x", "https://"])
def test_comet_endpoint_rejects(comet: str) -> None:
    with pytest.raises(InvalidURLError):
        comet_endpoint("https://h", comet)


@pytest.mark.parametrize(
    ("text", "given"),
    [
        ("saymon.example.com", False),
        ("10.0.0.5:8080", False),
        ("http://h", True),
        ("https://h", True),
    ],
)
def test_has_scheme(text: str, given: bool) -> None:
    assert has_scheme(text) is given


@pytest.mark.parametrize(
    ("base", "scheme", "expected"),
    [
        ("https://saymon.example.com", "http", "http://saymon.example.com"),
        ("https://10.0.0.5:8080", "http", "http://10.0.0.5:8080"),
        ("https://host/saymon", "http", "http://host/saymon"),
        ("http://host:443", "https", "https://host"),
        ("https://[::1]:8443", "http", "http://[::1]:8443"),
    ],
)
def test_with_scheme(base: str, scheme: str, expected: str) -> None:
    """The explicit port stays, a default one is dropped: what normalisation would give."""
    assert with_scheme(base, scheme) == expected
