"""Import-time checks of the private library methods the clients override (``api/_compat.py``).

The range leg (``scripts/test-deps``) runs this file on the lowest and highest allowed
python-socketio/-engineio and paho-mqtt: every check must pass there, so a release that changes
a hook fails CI here before a user meets the fallback. ``scripts/test-deps fallback`` runs the
client tests with hooks changed (``tests/library_hooks.py``) against the same real checks.
"""

from __future__ import annotations

from importlib.metadata import version
import inspect
import logging
from typing import Any

from engineio.payload import Payload
import paho.mqtt.client as mqtt
import pytest
import socketio

from custom_components.saymon.api import _compat, _socketio
from custom_components.saymon.mqtt import connection
from tests.library_hooks import (
    COMET_HOOK,
    MQTT_HOOK,
    ORIGINALS,
    change_signature,
    changed_from_env,
)


def test_installed_libraries_pass_every_check() -> None:
    """The versions under test keep every hook we override: the overrides are in use.

    In the fallback run (``SAYMON_TEST_CHANGE_HOOKS``) the changed ones must be reported and
    unused instead, in the log's terms and in diagnostics.
    """
    changed = changed_from_env()
    fallback = {
        "comet": any(path.startswith(("socketio.", "engineio.")) for path in changed),
        "polling": False,
        "mqtt": any(path.startswith("paho.") for path in changed),
    }
    shown = _compat.diagnostics()
    assert {name: not report["problems"] for name, report in shown.items()} == {
        name: not fell_back for name, fell_back in fallback.items()
    }
    for name, fell_back in fallback.items():
        assert shown[name]["overrides"].startswith("not installed: " if fell_back else "active")
    assert shown["comet"]["versions"].startswith("python-socketio 5.")
    assert "python-engineio 4." in shown["comet"]["versions"]
    assert shown["mqtt"]["versions"].startswith("paho-mqtt 2.")
    hooked_socket = _socketio.SOCKET_CLASS is _socketio.HookedSocketIOClient
    assert hooked_socket is not fallback["comet"]
    assert (connection.CLIENT_CLASS is connection.BufferedClient) is not fallback["mqtt"]
    assert Payload.max_decode_packets >= _socketio.MAX_POLLING_PACKETS


class _Library:
    """Stands for a library class as a later release might ship it."""

    async def coroutine(self, data: Any) -> None:
        self.run_async = data

    def plain(self, bufsize: int) -> bytes:
        return self._sock_recv(bufsize)

    def _sock_recv(self, bufsize: int) -> bytes:
        return b"x" * bufsize

    @property
    def attribute(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (_compat.HookSpec(_Library, "coroutine", ("self", "data"), is_async=True), None),
        (
            _compat.HookSpec(_Library, "plain", ("self", "bufsize"), True, uses=("_sock_recv",)),
            "_Library.plain is no longer a coroutine function",
        ),
        (
            _compat.HookSpec(_Library, "coroutine", ("self", "data"), is_async=False),
            "_Library.coroutine is now a coroutine function",
        ),
        (
            _compat.HookSpec(_Library, "gone", ("self",), is_async=False),
            "_Library.gone is missing",
        ),
        (
            _compat.HookSpec(_Library, "plain", ("self", "size"), is_async=False),
            "_Library.plain takes (self, bufsize), not (self, size)",
        ),
        (
            _compat.HookSpec(_Library, "plain", None, is_async=False, uses=("_sock_recv",)),
            None,
        ),
        (
            _compat.HookSpec(_Library, "coroutine", None, is_async=True, uses=("run_async", "x")),
            "_Library.coroutine no longer refers to x",
        ),
        (
            _compat.HookSpec(_Library, "attribute", None, is_async=False),
            "_Library.attribute is no longer a plain method (property)",
        ),
    ],
)
def test_mismatch_names_each_kind_of_change(spec: _compat.HookSpec, problem: str | None) -> None:
    found = _compat.mismatch(spec)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.endswith(problem), found


def test_failed_check_warns_once_and_shows_in_diagnostics(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=_compat.__name__):
        passed = _compat.check("ok", "paho-mqtt", "nothing", [])
        assert caplog.records == []
        report = _compat.check(
            "test",
            "python-socketio / paho-mqtt",
            "the client does it the slow way",
            [_compat.HookSpec(_Library, "gone", ("self",), is_async=False)],
            None,
            "something else changed",
        )
    assert passed.active
    assert not report.active
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert f"python-socketio {version('python-socketio')}, paho-mqtt " in message
    assert "the client does it the slow way" in message
    assert "_Library.gone is missing; something else changed" in message
    shown = report.as_dict()
    assert shown["overrides"] == "not installed: the client does it the slow way"
    assert shown["problems"] == [
        "tests.api.test_compat._Library.gone is missing",
        "something else changed",
    ]
    assert shown["versions"].startswith("python-socketio 5.")
    assert "paho-mqtt 2." in shown["versions"]


@pytest.mark.parametrize(
    ("path", "owner", "specs", "before"),
    [
        (COMET_HOOK, socketio.AsyncClient, _compat.COMET_HOOKS, "(self, data)"),
        (MQTT_HOOK, mqtt.Client, connection.READ_HOOK_SPECS, "(self, bufsize)"),
    ],
)
def test_a_changed_signature_fails_the_real_check(
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    owner: type[Any],
    specs: tuple[_compat.HookSpec, ...],
    before: str,
) -> None:
    """What ``SAYMON_TEST_CHANGE_HOOKS`` does to a method is what the real checks catch."""
    name = path.rsplit(".", 1)[1]
    # The library's own method (the fallback run has changed it already); undone after.
    monkeypatch.setattr(owner, name, ORIGINALS.get(path, inspect.getattr_static(owner, name)))
    (spec,) = [spec for spec in specs if spec.name == name]
    assert _compat.mismatch(spec) is None
    change_signature(path)
    assert _compat.mismatch(spec) == (
        f"{owner.__module__}.{owner.__qualname__}.{name} takes "
        f"(*args, released_later, **kwargs), not {before}"
    )


class _Changing:
    async def method(self, data: int) -> int:
        return data + 1

    def plain(self, data: int) -> int:
        return data * 2


async def test_a_changed_method_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    """The changed method behaves as the original: the fallback run tests real behaviour."""
    monkeypatch.setattr(_Changing, "method", _Changing.method)  # undone after
    monkeypatch.setattr(_Changing, "plain", _Changing.plain)
    change_signature(f"{__name__}._Changing.method")
    change_signature(f"{__name__}._Changing.plain")
    assert "released_later" in inspect.signature(_Changing.method).parameters
    assert "released_later" in inspect.signature(_Changing.plain).parameters
    assert await _Changing().method(1) == 2
    assert _Changing().plain(2) == 4


def test_attribute_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_binary_packet`` and ``Payload.max_decode_packets`` are attributes: checked otherwise."""
    assert _compat._binary_packet_problem() is None
    assert _compat._max_decode_packets_problem() is None
    assert _compat.versions_of("no-such-package / paho-mqtt").startswith(
        "no-such-package (version unknown), paho-mqtt 2."
    )

    monkeypatch.delattr(Payload, "max_decode_packets")
    assert _compat._max_decode_packets_problem() == (
        "engineio.payload.Payload.max_decode_packets is missing"
    )

    init = socketio.base_client.BaseClient.__init__

    def init_without(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        del self._binary_packet

    monkeypatch.setattr(socketio.base_client.BaseClient, "__init__", init_without)
    assert _compat._binary_packet_problem() == (
        "socketio.AsyncClient no longer starts with _binary_packet = None"
    )

    def init_failing(self: Any, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("changed")

    monkeypatch.setattr(socketio.base_client.BaseClient, "__init__", init_failing)
    assert _compat._binary_packet_problem() == (
        "socketio.AsyncClient() failed: RuntimeError: changed"
    )
